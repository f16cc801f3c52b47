"""Clipping workloads (issue: gradient-norm / clipping kernels), float32.

- clip-large: 16 x [(1024,1024), (1024,), (256,1024), (256,)] + [(4,1024,32), (32,)]
  = 66 arrays, 16.8M values;
- clip-small: 1000 arrays of shape (16,16), from the list API;
- clip-small-flat: the same values in one flat buffer.

Variants: ``clip`` (max_norm=1.0, norm >> 1: every call scales; inputs are
restored untimed before each call) and ``noclip`` (max_norm=1e12). Peers:
the NumPy reference backend, ``torch.nn.utils.clip_grad_norm_`` (same memory,
via ``torch.from_numpy``) and jitted ``optax.clip_by_global_norm``.
"""

from __future__ import annotations

import numpy as np

from ._common import optional

GROUP = "clip"
#: the cheapest workload: the test suite runs it once per implementation
SMOKE = "clip-small-flat:noclip"

LARGE_SHAPES = [(1024, 1024), (1024,), (256, 1024), (256,)] * 16 + [(4, 1024, 32), (32,)]
SMALL_SHAPES = [(16, 16)] * 1000
VARIANTS = {"clip": 1.0, "noclip": 1e12}

# gradcore must be at least this many times faster (issue targets).
TARGETS = [
    ("clip-large:clip", "torch", 2.5),
    ("clip-large:noclip", "torch", 2.5),
    ("clip-large:clip", "numpy", 1.0),
    ("clip-large:noclip", "numpy", 1.0),
    ("clip-small:clip", "torch", 10.0),
    ("clip-small:noclip", "torch", 10.0),
    ("clip-small-flat:clip", "torch", 50.0, "clip-small:clip"),
    ("clip-small-flat:noclip", "torch", 50.0, "clip-small:noclip"),
]


def make_arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s, dtype=np.float32) for s in shapes]


def _restorer(arrays):
    pristine = [a.copy() for a in arrays]

    def setup():
        for a, a0 in zip(arrays, pristine):
            np.copyto(a, a0)

    return setup


def _impls(arrays, max_norm, mutates):
    import gradcore

    setup = _restorer(arrays) if mutates else None

    def case(fn):
        return (setup, fn) if setup else fn

    def gc():
        gradcore.clip_grad_norm_(arrays, max_norm)

    def ref():
        with gradcore.use_backend("numpy"):
            gradcore.clip_grad_norm_(arrays, max_norm)

    impls = {"gradcore": case(gc), "numpy": case(ref)}

    torch = optional("torch")
    if torch is not None:
        params = []
        for a in arrays:
            p = torch.zeros(a.shape, dtype=torch.float32, requires_grad=True)
            p.grad = torch.from_numpy(a)  # shares memory: the restore covers it
            params.append(p)

        def tc():
            torch.nn.utils.clip_grad_norm_(params, max_norm)

        impls["torch"] = case(tc)

    try:
        import jax
        import optax
    except ImportError:
        optax = None
    if optax is not None:
        tx = optax.clip_by_global_norm(max_norm)
        grads = [jax.numpy.asarray(a) for a in arrays]
        state = tx.init(grads)
        update = jax.jit(lambda g: tx.update(g, state)[0])
        jax.block_until_ready(update(grads))  # compile outside the timing

        def ox():
            jax.block_until_ready(update(grads))

        impls["optax"] = ox  # functional: inputs never change
    return impls


def workloads(only=None):
    """``only``: build just the workloads whose name contains one of these strings."""
    def wanted(name):
        return not only or any(s in name for s in only)

    out = {}
    small = make_arrays(SMALL_SHAPES, seed=1)
    arrays = {"clip-large": None, "clip-small": small, "clip-small-flat": [np.concatenate([a.reshape(-1) for a in small])]}
    for variant, max_norm in VARIANTS.items():
        mutates = variant == "clip"
        for base in arrays:
            name = f"{base}:{variant}"
            if not wanted(name):
                continue
            if arrays[base] is None:
                arrays[base] = make_arrays(LARGE_SHAPES, seed=0)
            out[name] = _impls(arrays[base], max_norm, mutates)
    return out
