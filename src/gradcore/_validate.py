"""Older import path of the array and bound checks; they live in
:mod:`gradcore._contract`."""

from ._contract import FLOAT_DTYPES, bounds_text, check_float_array, describe, in_bounds

__all__ = ["FLOAT_DTYPES", "bounds_text", "check_float_array", "describe", "in_bounds"]
