"""What the model has: normalization layers, skip connections, recurrent
layers, depth (Dense layers on the longest path), and the clipping in use."""

from __future__ import annotations

import numbers

from ..nn import BatchNorm1d, Dense, LayerNorm, Residual


def measure_structure(model, clipping=None) -> dict:
    norms, skips, dense, rec = [], [], 0, []
    for name, mod in model.named_modules():
        if isinstance(mod, (LayerNorm, BatchNorm1d)):
            norms.append(name)
        elif isinstance(mod, Residual):
            skips.append(name)
        elif isinstance(mod, Dense):
            dense += 1
        if "weight_hh" in getattr(mod, "_param_names", ()):
            rec.append(name)
    if clipping is None:
        clip = None
    elif isinstance(clipping, numbers.Real) and not isinstance(clipping, bool):
        clip = f"global norm {float(clipping):g}"
    else:
        clip = repr(clipping)
    return {"normalization": norms, "skip_connections": skips, "dense_layers": dense,
            "recurrent_layers": rec, "clipping": clip}
