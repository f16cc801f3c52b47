#!/usr/bin/env python
"""A/B timing of the recurrent layers between two builds of gradcore, each in
its own process (one thread, pinned), rounds interleaved so load from other
processes hits both alike.

    python benchmarks/ab_recurrent.py --a /path/to/unpacked/wheel [--rounds 15]

``--a``: a directory holding another build's ``gradcore`` package (e.g. an
unpacked wheel of an earlier commit); B is the gradcore this interpreter
imports. Prints the median per-call time of every workload (forward +
backward(None, d_hT), float32) and the B/A ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKLOADS = [("rnn", 1, 1, 8, 8), ("lstm", 1, 1, 8, 8), ("gru", 1, 1, 8, 8),
             ("rnn", 1000, 1, 8, 32), ("lstm", 1000, 1, 8, 32), ("gru", 1000, 1, 8, 32),
             ("rnn", 1000, 32, 32, 128), ("lstm", 500, 32, 32, 128), ("gru", 500, 32, 32, 128),
             ("rnn", 200, 64, 64, 512)]

WORKER = r"""
import sys, json, time
path = sys.argv[1]
if path != "-":
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower()
                        and "skbc" not in type(f).__module__.lower()]
    sys.path.insert(0, path)
import numpy as np
import gradcore
from gradcore import nn
cases = {}
for kind, T, B, I, H in json.loads(sys.argv[2]):
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    cell = cls(I, H, dtype="float32", seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((T, B, I), dtype=np.float32)
    d = rng.standard_normal((B, H), dtype=np.float32)
    def fn(cell=cell, x=x, d=d):
        cell.forward(x)
        cell.backward(None, d_hT=d)
    fn()
    cases[f"{kind}-T{T}-B{B}-I{I}-H{H}"] = fn
print(json.dumps({"file": gradcore.__file__}), flush=True)
for line in sys.stdin:
    name, n = line.split()
    n = int(n)
    fn = cases[name]
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    print((time.perf_counter() - t0) / n, flush=True)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--cpu", default="1")
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    spec = json.dumps(WORKLOADS)
    procs = {}
    for side, path in (("A", args.a), ("B", "-")):
        procs[side] = subprocess.Popen(["taskset", "-c", args.cpu, sys.executable, "-c", WORKER, path, spec],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        print(side, json.loads(procs[side].stdout.readline())["file"])
    print(f"{'workload':<28} {'A ms':>10} {'B ms':>10} {'B/A':>6}")
    for kind, T, B, I, H in WORKLOADS:
        name = f"{kind}-T{T}-B{B}-I{I}-H{H}"
        work = T * B * H * (H + I) * (4 if kind == "lstm" else 3 if kind == "gru" else 1)
        n = max(1, int(2e7 / max(work, 1)))
        n = min(n, 2000)
        times = {"A": [], "B": []}
        for r in range(args.rounds):
            for side in (("A", "B") if r % 2 == 0 else ("B", "A")):
                p = procs[side]
                p.stdin.write(f"{name} {n}\n")
                p.stdin.flush()
                times[side].append(float(p.stdout.readline()))
        a, b = statistics.median(times["A"]) * 1e3, statistics.median(times["B"]) * 1e3
        print(f"{name:<28} {a:10.4f} {b:10.4f} {b / a:6.3f}", flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait()


if __name__ == "__main__":
    main()
