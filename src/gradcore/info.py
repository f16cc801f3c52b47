"""``gradcore.info()``: version, SIMD path, BLAS, backend and thread settings."""

from __future__ import annotations

import os
import platform


def info() -> dict:
    """Describe this installation: version, chosen SIMD path, BLAS in use."""
    import numpy as np
    import scipy

    from . import __version__, _kernels
    from .backend import get_backend

    blas = "unknown"
    try:
        cfg = scipy.__config__.CONFIG["Build Dependencies"]["blas"]
        blas = f"{cfg.get('name', '?')} {cfg.get('version', '')}".strip()
        extra = cfg.get("openblas configuration")
        if extra:
            blas += f" ({extra})"
    except Exception:  # pragma: no cover - depends on the scipy build
        pass
    return {
        "version": __version__,
        "simd": _kernels.simd_name(),
        "cpu_has_avx2_fma": _kernels.cpu_has_avx2(),
        "cpu_has_avx512": _kernels.cpu_has_avx512(),
        "blas": f"scipy.linalg.cython_blas -> {blas}",
        "backend": get_backend(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    }


def format_info(d: dict | None = None) -> str:
    d = info() if d is None else d
    lines = []
    for k, v in d.items():
        lines.append(f"{k:>18}: {v}")
    return "\n".join(lines)
