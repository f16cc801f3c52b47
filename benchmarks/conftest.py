"""Benchmarks run with one thread per library (set before numpy is imported)."""

from _common import pin_threads

pin_threads(1)
