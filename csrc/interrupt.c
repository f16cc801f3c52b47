/* interrupt.c -- the interrupt check long kernels poll (see gradcore.h).
 * The binding installs a check that asks Python whether a signal (Ctrl-C)
 * is pending; plain C users install their own or none. */
#include "gradcore.h"

static int (*volatile g_check)(void) = 0;

void gc_interrupt_set(int (*check)(void)) { g_check = check; }

int gc_interrupt_poll(void) {
    int (*check)(void) = g_check;
    return check ? check() : 0;
}
