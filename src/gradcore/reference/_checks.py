"""Older import path of the kernel argument checks; they live in
:mod:`gradcore._contract`."""

from .._contract import (ACTIVATIONS, activation_code as check_act, check_array, check_labels,
                         check_number, check_range, check_slope)

__all__ = ["ACTIVATIONS", "check_act", "check_array", "check_labels", "check_number", "check_range",
           "check_slope"]
