"""Checkpoints: a model, optionally its optimizer, and metadata in one file.

Contract
--------
``save(path, model, optimizer=None, **metadata)`` writes ONE ``.npz`` file
(a zip of ``.npy`` arrays, no pickle anywhere: ``np.load(path,
allow_pickle=False)`` reads it) holding

- ``__format__`` ("gradcore-checkpoint") and ``__version__`` (``FORMAT_VERSION``);
- ``model/<name>``: every parameter and buffer (``model.state_dict()``);
- ``optimizer/<key>``: ``optimizer.state_dict()`` (scalars as 0-d arrays);
- ``meta/<key>``: metadata values that are ndarrays, and ``__metadata__``,
  one JSON text with the other metadata (JSON-able values only).

The file is written to a temporary name in the same directory, flushed,
``fsync``-ed and renamed over ``path`` (``os.replace``), so a crash at any
moment leaves either the previous checkpoint or the new one, never a mix.

``load(path, model, optimizer=None) -> metadata`` reads the whole file (zip
CRCs checked), refuses a truncated or corrupt file, another format or a newer
version with :class:`CheckpointError`, and a model / optimizer mismatch
(names, shapes, dtypes, optimizer kind) with the ``KeyError`` / ``ValueError``
/ ``TypeError`` of ``load_state_dict``; on any error nothing is changed.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from typing import Any, Dict, Optional

import numpy as np

__all__ = ["save", "load", "read", "split", "peek", "write_arrays", "CheckpointError", "FORMAT_VERSION"]

FORMAT = "gradcore-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a complete, readable gradcore checkpoint."""


def _to_array(value, what: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"{what}: object arrays cannot be saved without pickle")
        return value
    if isinstance(value, (bool, int, float, str, np.generic)) or (
            isinstance(value, tuple) and all(isinstance(v, (bool, int, float)) for v in value)):
        return np.asarray(value)
    raise TypeError(f"{what}: cannot store a {type(value).__name__} ({value!r})")


def _json_value(value, key: str):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _json_value(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v, key) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"metadata {key!r}: expected an ndarray or a JSON-able value (numbers, strings, "
                    f"lists, dicts), got {type(value).__name__}")


def _entries(model, optimizer, metadata: Dict[str, Any]) -> Dict[str, np.ndarray]:
    if not callable(getattr(model, "state_dict", None)):
        raise TypeError(f"model: expected a gradcore.nn.Module, got {type(model).__name__}")
    out = {"__format__": np.asarray(FORMAT), "__version__": np.asarray(FORMAT_VERSION)}
    for k, v in model.state_dict().items():
        out[f"model/{k}"] = np.asarray(v)
    if optimizer is not None:
        if not callable(getattr(optimizer, "state_dict", None)):
            raise TypeError(f"optimizer: expected a gradcore optimizer (with state_dict()), "
                            f"got {type(optimizer).__name__}")
        for k, v in optimizer.state_dict().items():
            out[f"optimizer/{k}"] = _to_array(v, f"optimizer state {k!r}")
    plain = {}
    for k, v in metadata.items():
        if isinstance(v, np.ndarray):
            out[f"meta/{k}"] = _to_array(v, f"metadata {k!r}")
        else:
            plain[k] = _json_value(v, k)
    out["__metadata__"] = np.asarray(json.dumps(plain, allow_nan=True))
    return out


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_arrays(path, entries: Dict[str, np.ndarray]) -> str:
    """Write ``entries`` as an uncompressed ``.npz`` at ``path``, atomically
    (temporary file in the same directory, fsync, rename). Returns the path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **entries)  # type: ignore[arg-type]  # numpy stubs: allow_pickle
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)
    return path


def save(path, model, optimizer=None, **metadata) -> str:
    """Save ``model`` (parameters and buffers), ``optimizer`` (its full state)
    and ``metadata`` to ``path`` in one atomic write; returns the path.

    >>> import os, tempfile, gradcore
    >>> from gradcore import nn, optim
    >>> m = nn.Dense(3, 2, seed=0); opt = optim.Adam(m)
    >>> p = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> _ = gradcore.save(p, m, opt, epoch=3)
    >>> gradcore.load(p, nn.Dense(3, 2, seed=1), optim.Adam(m))["epoch"]
    3
    """
    return write_arrays(path, _entries(model, optimizer, metadata))


def read(path) -> Dict[str, np.ndarray]:
    """Every array of the checkpoint at ``path`` (validated: complete file,
    gradcore format, a version this build reads)."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        size = os.path.getsize(path) if os.path.exists(path) else 0
        raise CheckpointError(f"{path}: not a complete checkpoint ({size} bytes; truncated or corrupt: "
                              f"{type(exc).__name__}: {exc})") from None
    fmt = arrays.get("__format__")
    if fmt is None or fmt.shape != () or str(fmt) != FORMAT:
        raise CheckpointError(f"{path}: not a gradcore checkpoint (no '__format__' = {FORMAT!r} entry)")
    version = int(arrays["__version__"]) if "__version__" in arrays else -1
    if version != FORMAT_VERSION:
        newer = "a newer" if version > FORMAT_VERSION else "an unknown"
        raise CheckpointError(f"{path}: checkpoint format version {version}; this gradcore reads version "
                              f"{FORMAT_VERSION} ({newer} format)")
    if "__metadata__" not in arrays:
        raise CheckpointError(f"{path}: checkpoint has no '__metadata__' entry")
    return arrays


def split(arrays: Dict[str, np.ndarray]):
    """(model state, optimizer state or None, metadata) from :func:`read`'s arrays."""
    model_sd = {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}
    opt_sd = {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer/")} or None
    meta = json.loads(str(arrays["__metadata__"]))
    meta.update({k[5:]: v for k, v in arrays.items() if k.startswith("meta/")})
    return model_sd, opt_sd, meta


def load(path, model, optimizer=None) -> Dict[str, Any]:
    """Load the checkpoint at ``path`` into ``model`` (and ``optimizer``);
    returns the metadata saved with it (see the module docstring)."""
    path = os.fspath(path)
    model_sd, opt_sd, meta = split(read(path))
    if optimizer is not None and opt_sd is None:
        raise KeyError(f"{path}: the checkpoint holds no optimizer state (saved without an optimizer)")
    restore = model.state_dict()
    model.load_state_dict(model_sd)
    if optimizer is not None:
        try:
            optimizer.load_state_dict(opt_sd)
        except BaseException:
            model.load_state_dict(restore)
            raise
    return meta


def peek(path) -> Optional[Dict[str, Any]]:
    """The metadata of the checkpoint at ``path``, or None when there is no
    file there (errors as :func:`read`)."""
    if not os.path.exists(os.fspath(path)):
        return None
    return split(read(path))[2]
