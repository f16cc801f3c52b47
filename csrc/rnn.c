/* rnn.c -- recurrent kernels (see the recurrent section of gradcore.h). */
#include "kernel.h"
