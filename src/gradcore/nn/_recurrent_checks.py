"""The recurrent driver's argument checks (:class:`DriverChecks`, a mixin of
:class:`gradcore.nn._recurrent._Driver`): x, the states, d_out and the
forward cache, each with a message naming the layer. The driver's fast
path tests the cheap conditions itself and calls these only for an
unusual argument, or after the kernel refused one (then ``force=True``
re-raises the kernel's own error when the argument was fine)."""

from __future__ import annotations

import numpy as np

_ndarray = np.ndarray


class DriverChecks:
    """Checks of one layer and direction's arguments (the host provides
    ``input_size``, ``hidden_size``, ``dtype``, ``_bufs`` and ``_label()``)."""

    def _check_array(self, a, name, shape_text):
        """An ndarray of the layer's dtype in native byte order, or a
        TypeError naming ``name`` and the expected shape."""
        if type(a) is _ndarray and a.dtype is self.dtype:
            return a
        who = self._label()
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{who}: expected {name} as a {self.dtype} numpy array of shape "
                            f"{shape_text}, got {type(a).__name__}")
        if a.dtype != self.dtype:
            raise TypeError(f"{who}: expected {self.dtype} {name}, got {a.dtype} (convert it "
                            f"explicitly, e.g. {name}.astype(np.{self.dtype}); gradcore never "
                            "converts silently)")
        if not a.dtype.isnative:
            raise TypeError(f"{who}: expected native byte order {name}, got {a.dtype.str}")
        return a

    def _check_x(self, x, force=False):
        who = self._label()
        I = self.input_size
        x = self._check_array(x, "x", f"(T, B, {I})")
        if x.ndim != 3:
            raise ValueError(f"{who}: expected a 3-D input x (T, B, {I}) (time-major), got shape {x.shape}")
        if x.shape[2] != I:
            raise ValueError(f"{who}: expected x with {I} features (T, B, {I}), got shape {x.shape}")
        if x.shape[0] < 1:
            raise ValueError(f"{who}: the sequence is empty (T = 0, x shape {x.shape}); need T >= 1")
        if x.shape[1] < 1:
            raise ValueError(f"{who}: the batch is empty (B = 0, x shape {x.shape}); need B >= 1")
        if not x.flags.c_contiguous or not x.flags.aligned:
            x = np.ascontiguousarray(x)
        elif force:
            raise   # x was fine: re-raise the kernel's own error
        return x

    def _check_state(self, s, name, B, own=False):
        """None, (B, H) or PyTorch's (1, B, H) -> None or a C-contiguous (B, H).
        ``own``: a state living in this layer's sequence buffers (the state
        the last forward returned) is copied, as the kernel overwrites them."""
        if s is None:
            return None
        H = self.hidden_size
        if type(s) is not _ndarray or s.dtype is not self.dtype:
            s = self._check_array(s, name, f"({B}, {H}) or (1, {B}, {H})")
        if s.shape == (1, B, H):
            s = s[0]
        if s.shape != (B, H):
            raise ValueError(f"{self._label()}: expected {name} of shape ({B}, {H}) or (1, {B}, {H}), "
                             f"got {s.shape}")
        if own and self._bufs is not None and s.base is not None:
            base = s.base
            if any(base is buf for buf in self._bufs.values()):
                return s.copy()
        return np.ascontiguousarray(s)

    def _check_cache(self):
        who = self._label()
        if self._x is None:
            raise RuntimeError(f"{who}: backward called before forward")
        raise RuntimeError(f"{who}: backward already consumed this forward's gate cache "
                           "(LSTM/GRU backward overwrites it); call forward again")

    def _check_d_out(self, d_out, T, B, force=False):
        H = self.hidden_size
        d_out = self._check_array(d_out, "d_out", f"{(T, B, H)} or None")
        if d_out.shape != (T, B, H):
            raise ValueError(f"{self._label()}: d_out has shape {d_out.shape}, but the last forward "
                             f"output has shape {(T, B, H)}")
        if not d_out.flags.c_contiguous or not d_out.flags.aligned:
            return np.ascontiguousarray(d_out)
        if force:
            raise       # d_out was fine: re-raise the kernel's own error
        return d_out
