# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, embedsignature=True
"""Binding of gradcore's C kernels (csrc/).

Validates arrays (dtype, contiguity, shape, writeability), takes their
pointers, releases the GIL for the whole C call and turns status codes into
Python exceptions. No maths here. Each area of the C API has its own include
file (``_kernels_*.pxi``); they are all part of this one extension module.
"""

cimport numpy as cnp          # (the C declarations: _kernels.pxd)
from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, free
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_GetName

import numpy as np
import scipy.linalg.cython_blas as _cython_blas

from gradcore import _contract

cnp.import_array()

include "_kernels_common.pxi"
include "_kernels_gradnorm.pxi"
include "_kernels_dense.pxi"
include "_kernels_dense_stack.pxi"
include "_kernels_optim.pxi"
include "_kernels_rnn.pxi"
include "_kernels_recplan.pxi"
include "_kernels_unitnorm.pxi"
