"""Checkpoint size and save/load time for a ~1M-parameter model with Adam.

    taskset -c 1 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/checkpoint_save.py [DIR]

Prints the parameter count, the file size, and median save / load times
over 7 repeats (atomic write: temp file + fsync + rename, so the time
includes the disk flush).
"""

import os
import statistics
import sys
import tempfile
import time

import numpy as np

import gradcore
from gradcore import losses, nn, optim


def main(directory=None):
    directory = directory or tempfile.mkdtemp()
    model = nn.MLP([1000, 999, 2], activation="tanh", seed=0)       # 1,001,999 parameters, float32
    opt = optim.Adam(model, lr=1e-3)
    x = np.random.default_rng(0).normal(size=(32, 1000)).astype(np.float32)
    L, d = losses.mse(model.forward(x), np.zeros((32, 2), np.float32))
    model.backward(d)
    opt.step()
    path = os.path.join(directory, "ckpt.npz")
    saves, loads = [], []
    for _ in range(7):
        t = time.perf_counter()
        gradcore.save(path, model, opt, step=1)
        saves.append(time.perf_counter() - t)
        t = time.perf_counter()
        gradcore.load(path, model, opt)
        loads.append(time.perf_counter() - t)
    n = model.num_parameters()
    size = os.path.getsize(path)
    print(f"parameters {n:,}; checkpoint {size / 2**20:.2f} MiB ({size / (3 * 4 * n):.4f} x params+m+v); "
          f"save median {statistics.median(saves) * 1e3:.1f} ms, load median {statistics.median(loads) * 1e3:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
