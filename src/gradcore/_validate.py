"""Older import path of the array, scalar and aliasing checks; they live in
:mod:`gradcore._contract`."""

from ._contract import (FLOAT_DTYPES, _extent, _same_memory, bounds_text, check_float_array, describe,
                        in_bounds, int_arg, real_arg, resolve_aliases, seed_arg)

__all__ = ["FLOAT_DTYPES", "bounds_text", "check_float_array", "describe", "in_bounds", "int_arg", "real_arg",
           "resolve_aliases", "seed_arg", "_extent", "_same_memory"]
