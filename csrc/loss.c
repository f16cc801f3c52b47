/* loss.c -- dense-network kernels (see the dense-networks section of gradcore.h). */
#include "kernel.h"
