"""A model's constructor config as plain JSON data, so a checkpoint can say
how to rebuild the model it holds (``gradcore doctor`` reads it).

Save it with the checkpoint::

    gradcore.save(path, model, optimizer, model_spec=model_spec(model))

Kinds: ``"mlp"`` (:class:`gradcore.nn.MLP`: sizes, activation,
output_activation, norm, residual, dtype) and ``"sequence"`` (a recurrent
cell "rnn" | "lstm" | "gru" with a Dense head on the last step or every step,
the models of ``gradcore.experiments``: input_size, hidden_size,
output_size, nonlinearity, every_step, dtype).

>>> import gradcore
>>> spec = model_spec(gradcore.nn.MLP([3, 8, 1], activation="tanh"))
>>> spec["kind"], spec["sizes"], spec["activation"]
('mlp', [3, 8, 1], 'tanh')
>>> build_model(spec).sizes
[3, 8, 1]
"""

from __future__ import annotations

import json
from typing import Any

KINDS = ("mlp", "sequence")


def model_spec(model) -> dict:
    """The JSON-able config that :func:`build_model` rebuilds ``model`` from
    (ValueError for a model of another kind: give the spec by hand)."""
    from ..experiments._seq import SequenceModel
    from ..nn import MLP

    if isinstance(model, MLP):
        return {"kind": "mlp", "sizes": list(model.sizes), "activation": model.activation,
                "output_activation": model.output_activation, "norm": model.norm, "residual": model.residual,
                "dtype": str(model.dtype)}
    if isinstance(model, SequenceModel):
        rnn: Any = dict(model.children())["rnn"]
        head: Any = dict(model.children())["head"]
        return {"kind": "sequence", "cell": type(rnn).__name__.lower(), "input_size": rnn.input_size,
                "hidden_size": rnn.hidden_size, "output_size": head.out_features,
                "nonlinearity": getattr(rnn, "nonlinearity", "tanh"), "every_step": model.every_step,
                "dtype": str(model.dtype)}
    raise ValueError(f"model_spec: no spec for a {type(model).__name__}; supported: gradcore.nn.MLP and the "
                     "experiments' SequenceModel (a recurrent cell with a Dense head)")


def build_model(spec):
    """A new model from a spec (a dict, or its JSON text)."""
    from ..experiments._seq import SequenceModel
    from ..nn import GRU, LSTM, MLP, RNN, Dense

    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ValueError(f"model spec: not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or spec.get("kind") not in KINDS:
        raise ValueError(f"model spec: expected a dict with 'kind' in {KINDS}, got {spec!r}")
    s = dict(spec)
    kind = s.pop("kind")
    try:
        if kind == "mlp":
            return MLP(s.pop("sizes"), **s)
        cell = s["cell"]
        dt = s.get("dtype", "float32")
        if cell == "rnn":
            c = RNN(s["input_size"], s["hidden_size"], nonlinearity=s.get("nonlinearity", "tanh"), dtype=dt)
        elif cell in ("lstm", "gru"):
            c = (LSTM if cell == "lstm" else GRU)(s["input_size"], s["hidden_size"], dtype=dt)
        else:
            raise ValueError(f"model spec: cell must be 'rnn', 'lstm' or 'gru', got {cell!r}")
        return SequenceModel(c, Dense(s["hidden_size"], s["output_size"], dtype=dt),
                             every_step=bool(s.get("every_step", False)))
    except KeyError as exc:
        raise ValueError(f"model spec ({kind}): missing entry {exc}") from None
    except TypeError as exc:
        raise ValueError(f"model spec ({kind}): {exc}") from None
