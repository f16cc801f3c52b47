"""``gradcore bench``: time the canonical workloads with gradcore, the NumPy
reference backend, and PyTorch / JAX when installed, and print the ratios
(peer time / gradcore time; > 1 means gradcore is faster).

When the project's benchmark registry is reachable (``benchmarks/report.py``
and ``benchmarks/workloads_<group>.py`` in ``$GRADCORE_BENCHMARKS``, in the
current directory, or next to a source checkout of the package) its workload
groups are run through ``report.run_group`` with their targets checked;
an installed package without the source tree falls back to a small built-in
set (global norm, clipping, MLP forward+backward). The BLAS threads are
limited to one for the run (the CLI's ``--threads``); for the other libraries
pin ``OMP_NUM_THREADS=1 MKL_NUM_THREADS=1`` as well.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np


def _time(fn: Callable, repeat: int) -> float:
    fn()  # warm-up (and jit compile)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _torch():
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means "not installed"
        return None
    return torch


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except Exception:  # noqa: BLE001
        return None
    return jax, jnp


def _grads(n_arrays: int, size: int, seed=0) -> List[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(size).astype(np.float32) for _ in range(n_arrays)]


def w_global_norm(quick: bool):
    import gradcore

    n, size = (32, 16384) if quick else (64, 262144)
    name = f"global-norm {n}x{size} f32"
    grads = _grads(n, size)
    impl: Dict[str, Callable[..., Any]] = {}
    impl["gradcore"] = lambda: gradcore.global_norm(grads)

    def ref():
        with gradcore.use_backend("numpy"):
            gradcore.global_norm(grads)

    impl["numpy"] = ref
    torch = _torch()
    if torch is not None:
        tg = [torch.from_numpy(g) for g in grads]
        impl["torch"] = lambda: torch.linalg.vector_norm(torch.stack(torch._foreach_norm(tg)))
    jx = _jax()
    if jx is not None:
        jax, jnp = jx
        jg = [jnp.asarray(g) for g in grads]
        f = jax.jit(lambda gs: jnp.sqrt(sum(jnp.sum(g * g) for g in gs)))
        impl["jax"] = lambda: f(jg).block_until_ready()
    return name, impl


def w_clip(quick: bool):
    import gradcore

    n, size = (32, 16384) if quick else (64, 262144)
    name = f"clip_grad_norm_ {n}x{size} f32"
    grads = _grads(n, size)
    base = gradcore.global_norm(grads)
    impl = {"gradcore": lambda: gradcore.clip_grad_norm_(grads, 0.999 * gradcore.global_norm(grads))}

    def ref():
        with gradcore.use_backend("numpy"):
            gradcore.clip_grad_norm_(grads, 0.999 * gradcore.global_norm(grads))

    impl["numpy"] = ref
    torch = _torch()
    if torch is not None:
        params = []
        for g in grads:
            p = torch.zeros(g.shape, dtype=torch.float32, requires_grad=True)
            p.grad = torch.from_numpy(g.copy()) * (base / 10.0)
            params.append(p)
        impl["torch"] = lambda: torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
    return name, impl


def w_mlp(quick: bool):
    import gradcore
    from gradcore import nn

    D, W, B = (10, 128, 32) if quick else (20, 256, 64)
    name = f"mlp-D{D}-W{W}-B{B} fwd+bwd f32"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, W)).astype(np.float32)
    dy = rng.standard_normal((B, W)).astype(np.float32)
    impl: Dict[str, Callable[..., Any]] = {}
    for backend in ("c", "numpy"):
        with gradcore.use_backend(backend):
            model = nn.MLP([W] * (D + 1), activation="relu", dtype="float32", seed=0)

        def run(model=model, backend=backend):
            with gradcore.use_backend(backend):
                model.zero_grad()
                model.forward(x)
                model.backward(dy)

        impl["gradcore" if backend == "c" else "numpy"] = run
    torch = _torch()
    if torch is not None:
        layers = []
        for _ in range(D):
            layers += [torch.nn.Linear(W, W), torch.nn.ReLU()]
        tm = torch.nn.Sequential(*layers)
        tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)

        def trun():
            tm.zero_grad()
            (tm(tx) * tdy).sum().backward()

        impl["torch"] = trun
    return name, impl


#: (short name used by --only, workload factory)
WORKLOADS = [("global-norm", w_global_norm), ("clip_grad_norm_", w_clip), ("mlp", w_mlp)]


def find_registry() -> Optional[str]:
    """The benchmarks/ directory holding report.py and _common.py, or None."""
    import pathlib

    import gradcore

    cands = [os.environ.get("GRADCORE_BENCHMARKS"), os.path.join(os.getcwd(), "benchmarks"),
             str(pathlib.Path(gradcore.__file__).resolve().parents[2] / "benchmarks")]
    for c in cands:
        if c and os.path.isfile(os.path.join(c, "report.py")) and os.path.isfile(os.path.join(c, "_common.py")):
            return c
    return None


def run_registry(path: str, groups=None, only: Optional[str] = None, budget: float = 0.4) -> int:
    """Run the registry's workload groups (``benchmarks/report.py``)."""
    import importlib.util
    import sys

    if path not in sys.path:
        sys.path.insert(0, path)
    spec = importlib.util.spec_from_file_location("gradcore_bench_report", os.path.join(path, "report.py"))
    assert spec is not None and spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    modules = report.discover(groups)
    if not modules:
        print(f"no workload group matches {groups}; groups in {path}: {', '.join(report.discover(None))}")
        return 2
    print(f"workloads from {path}; median of single calls; (Nx) = peer time / gradcore time")
    for group, module in modules.items():
        print(f"== {group}")
        results = report.run_group(module, budget, [only] if only else None)
        lines, _ = report.check_targets(module, results)
        if lines:
            print("targets:")
            print("\n".join(lines))
    return 0


def run_bench(repeat: int = 5, quick: bool = False, only: Optional[str] = None, groups=None,
              builtin: bool = False, budget: Optional[float] = None) -> int:
    if not builtin:
        path = find_registry()
        if path is not None:
            return run_registry(path, groups, only, budget if budget is not None else (0.1 if quick else 0.4))
        print("benchmark registry (benchmarks/) not found: running the built-in workloads")
    pinned = all(os.environ.get(k) == "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"))
    if not pinned:
        print("note: threads are not pinned; for comparable numbers run with "
              "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1")
    peers = ["gradcore", "numpy", "torch", "jax"]
    rows: List[Tuple[str, Dict[str, float]]] = []
    for short, make in WORKLOADS:
        if only and only not in short:
            continue
        try:
            name, impl = make(quick)
        except Exception as exc:  # noqa: BLE001 - a workload this build cannot run is skipped, and said so
            print(f"skipped {short}: {type(exc).__name__}: {exc}")
            continue
        times = {}
        for peer, fn in impl.items():
            try:
                times[peer] = _time(fn, repeat)
            except Exception as exc:  # noqa: BLE001
                print(f"{name}: {peer} failed: {type(exc).__name__}: {exc}")
        rows.append((name, times))
        line = f"{name:<36}" + "".join(
            f"  {p} {times[p] * 1e3:8.3f} ms" + (f" ({times[p] / times['gradcore']:.2f}x)" if p != "gradcore"
                                                 and "gradcore" in times else "")
            for p in peers if p in times)
        print(line, flush=True)
    if not rows:
        print("no workload ran")
        return 1
    print("ratios are peer time / gradcore time (median of", repeat, "runs); > 1: gradcore is faster")
    return 0
