"""Dense-network workloads (issue: dense networks), float32, one thread.

- ``mlp-D{depth}-W{width}-B{batch}``: forward + backward of a whole MLP of
  ``depth`` Dense layers width x width (relu hidden, identity output, He
  normal init), loss = sum(output * dy). gradcore accumulates into its
  gradient buffer (``+=``, no zeroing inside the timing); torch sets its
  gradients to None first so its backward writes them directly. No
  gradient with respect to the input is computed (``input_grad=False``; torch
  input without ``requires_grad``; ``jax.grad`` with respect to the
  parameters only).
  Implementations: ``gradcore`` (C kernels), ``numpy`` (the same gradcore
  model on the reference backend), ``torch`` (nn.Sequential of Linear+ReLU),
  ``jax`` (``jax.jit(jax.grad(loss))``) and, for the two larger sizes,
  ``blas-gemms``: the same GEMMs (forward x W^T, dW += dZ^T X, dX = dZ W)
  alone through scipy's BLAS (the library gradcore calls), into
  preallocated outputs.
- ``adam-16.8M``: one Adam step with clip_norm=1.0 over 16.8M float32
  parameters in the clip benchmark's layout (66 arrays). gradcore: one norm
  pass over the arena's gradient buffer + one fused update pass; torch:
  ``clip_grad_norm_`` + ``torch.optim.Adam(foreach=True)``; optax:
  ``chain(clip_by_global_norm, adam)`` jitted.

Targets (the issue): mlp-D50-W64-B16 <= 0.45 ms (absolute, checked by
``gradcore bench --group mlp``); mlp-D20-W256-B64 >= 1.1x faster than numpy and
>= 1.5x faster than torch and jax; mlp-D8-W2048-B256 within 10% of
blas-gemms; adam-16.8M >= 2x faster than torch.
"""

from __future__ import annotations

import numpy as np

from ._common import optional

GROUP = "mlp"
#: the cheapest workload: the test suite runs it once per implementation
SMOKE = "mlp-D50-W64-B16"

SIZES = [(50, 64, 16), (20, 256, 64), (8, 2048, 256)]
GEMM_ALONE = {(20, 256, 64), (8, 2048, 256)}
ADAM_SHAPES = [(1024, 1024), (1024,), (256, 1024), (256,)] * 16 + [(4, 1024, 32), (32,)]

TARGETS = [
    ("mlp-D20-W256-B64", "numpy", 1.1),
    ("mlp-D20-W256-B64", "torch", 1.5),
    ("mlp-D20-W256-B64", "jax", 1.5),
    ("mlp-D8-W2048-B256", "blas-gemms", 1 / 1.1),
    ("adam-16.8M", "torch", 2.0),
]

#: absolute targets (workload, impl, max milliseconds)
ABS_TARGETS = [("mlp-D50-W64-B16", "gradcore", 0.45)]


def _mlp_impls(depth, width, batch, seed=0):
    import gradcore
    from gradcore import nn

    model = nn.MLP([width] * (depth + 1), activation="relu", init="he_normal", dtype="float32", seed=seed,
                   input_grad=False)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((batch, width), dtype=np.float32)
    dy = rng.standard_normal((batch, width), dtype=np.float32)

    def gc():
        model.forward(x)
        model.backward(dy)

    def ref():
        with gradcore.use_backend("numpy"):
            gc()

    impls = {"gradcore": gc, "numpy": ref}
    params = model.parameters()
    names = list(params)

    torch = optional("torch")
    if torch is not None:
        layers = []
        for i in range(depth):
            lin = torch.nn.Linear(width, width)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(params[f"{i}.weight"]))
                lin.bias.copy_(torch.from_numpy(params[f"{i}.bias"]))
            layers.append(lin)
            if i < depth - 1:
                layers.append(torch.nn.ReLU())
        tm = torch.nn.Sequential(*layers)
        tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)

        def tc():
            tm.zero_grad(set_to_none=True)
            tm(tx).backward(tdy)

        impls["torch"] = tc

    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        jax = None
    if jax is not None:
        jparams = [(jnp.asarray(params[f"{i}.weight"]), jnp.asarray(params[f"{i}.bias"])) for i in range(depth)]
        jx, jdy = jnp.asarray(x), jnp.asarray(dy)

        def loss(ps, xx):
            h = xx
            for i, (w, b) in enumerate(ps):
                h = h @ w.T + b
                if i < depth - 1:
                    h = jax.nn.relu(h)
            return jnp.sum(h * jdy)

        grad = jax.jit(jax.grad(loss))
        jax.block_until_ready(grad(jparams, jx))

        def jx_case():
            jax.block_until_ready(grad(jparams, jx))

        impls["jax"] = jx_case

    if (depth, width, batch) in GEMM_ALONE:
        impls["blas-gemms"] = _gemms_alone(depth, width, batch, params, names, x, dy)
    return impls


def _gemms_alone(depth, width, batch, params, names, x, dy):
    """The network's GEMMs through scipy's BLAS (row-major arrays passed as
    transposed column-major ones, no copies), into preallocated outputs."""
    from scipy.linalg.blas import sgemm

    ws = [params[f"{i}.weight"] for i in range(depth)]
    acts = [x] + [np.zeros((batch, width), np.float32) for _ in range(depth)]
    dws = [np.zeros((width, width), np.float32) for _ in range(depth)]
    dxs = [np.zeros((batch, width), np.float32) for _ in range(depth)]

    def run():
        # forward: Y (B,O) = X (B,I) W^T  <=>  Y^T (O,B) = W (O,I) X^T (I,B), column-major
        for i in range(depth):
            sgemm(1.0, ws[i].T, acts[i].T, 0.0, acts[i + 1].T, trans_a=1, overwrite_c=1)
        g = dy
        for i in reversed(range(depth)):
            # dW (O,I) += dZ^T X  <=>  dW^T (I,O) += X^T (I,B) dZ (B,O)
            sgemm(1.0, acts[i].T, g.T, 1.0, dws[i].T, trans_b=1, overwrite_c=1)
            if i > 0:
                # dX (B,I) = dZ (B,O) W (O,I)  <=>  dX^T (I,B) = W^T (I,O) dZ^T (O,B)
                sgemm(1.0, ws[i].T, g.T, 0.0, dxs[i].T, overwrite_c=1)
                g = dxs[i]

    return run


def _adam_impls(seed=0):
    import gradcore
    from gradcore import nn, optim

    names = [f"p{i}" for i in range(len(ADAM_SHAPES))]
    arena = nn.Arena(list(zip(names, ADAM_SHAPES)), "float32")
    rng = np.random.default_rng(seed)
    arena.data[:] = rng.standard_normal(arena.size, dtype=np.float32)
    arena.grad[:] = rng.standard_normal(arena.size, dtype=np.float32)
    opt = optim.Adam(arena, lr=1e-3)
    ref_arena = nn.Arena(list(zip(names, ADAM_SHAPES)), "float32")
    ref_arena.data[:] = arena.data
    ref_arena.grad[:] = arena.grad
    ref_opt = optim.Adam(ref_arena, lr=1e-3)

    def gc():
        opt.step(clip_norm=1.0)

    def ref():
        with gradcore.use_backend("numpy"):
            ref_opt.step(clip_norm=1.0)

    impls = {"gradcore": gc, "numpy": ref}
    torch = optional("torch")
    if torch is not None:
        tparams = []
        for n in names:
            p = torch.nn.Parameter(torch.from_numpy(arena.params[n].copy()))
            p.grad = torch.from_numpy(arena.grads[n].copy())
            tparams.append(p)
        topt = torch.optim.Adam(tparams, lr=1e-3, foreach=True)

        def tc():
            torch.nn.utils.clip_grad_norm_(tparams, 1.0)
            topt.step()

        tc_grads = [p.grad.clone() for p in tparams]

        def restore():  # clip_grad_norm_ scales the gradients in place
            for p, g in zip(tparams, tc_grads):
                p.grad.copy_(g)

        impls["torch"] = (restore, tc)
    try:
        import jax
        import optax
    except ImportError:
        optax = None
    if optax is not None:
        tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
        jp = [jax.numpy.asarray(arena.params[n]) for n in names]
        jg = [jax.numpy.asarray(arena.grads[n]) for n in names]
        state = [tx.init(jp)]
        holder = [jp]

        @jax.jit
        def step(p, s, g):
            u, s = tx.update(g, s, p)
            return optax.apply_updates(p, u), s

        holder[0], state[0] = step(holder[0], state[0], jg)
        jax.block_until_ready(holder[0])

        def ox():
            holder[0], state[0] = step(holder[0], state[0], jg)
            jax.block_until_ready(holder[0])

        impls["optax"] = ox
    return impls


def workloads(only=None):
    """``only``: build just the workloads whose name contains one of these strings."""
    def wanted(name):
        return not only or any(s in name for s in only)

    out = {}
    for depth, width, batch in SIZES:
        name = f"mlp-D{depth}-W{width}-B{batch}"
        if wanted(name):
            out[name] = _mlp_impls(depth, width, batch)
    if wanted("adam-16.8M"):
        out["adam-16.8M"] = _adam_impls()
    return out
