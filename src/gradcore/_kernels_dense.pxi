# Dense-network kernels: activations, dense, layernorm, batchnorm, losses.
# Each area declares its own C functions here (cdef extern from "gradcore.h").
