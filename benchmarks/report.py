#!/usr/bin/env python
"""Ratio report: median time of every implementation of every workload, and
how many times faster gradcore is than each peer, measured in one run with
one thread per library.

    python benchmarks/report.py                      # every group
    python benchmarks/report.py --group clip         # one group (repeatable)
    python benchmarks/report.py --group clip --json report.json

Workloads come from ``benchmarks/workloads_<group>.py`` (see ``_common.py``
for the contract); each group's ``TARGETS`` are checked and printed.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import pathlib
import platform
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import discover, pin_threads, time_interleaved  # noqa: E402

PEERS = ("numpy", "torch", "jax", "optax")


def run_group(module, budget, only=None):
    results = {}
    # workload modules whose workloads() takes ``only`` build just those
    built = module.workloads(only) if only and inspect.signature(module.workloads).parameters else module.workloads()
    for wname, impls in built.items():
        if only and not any(s in wname for s in only):
            continue
        row = {}
        for impl, (med, times) in time_interleaved(impls, budget=budget).items():
            row[impl] = {"median_ms": med * 1e3, "min_ms": min(times) * 1e3, "repeats": len(times)}
        base = row.get("gradcore")
        if base:
            for impl, r in row.items():
                r["gradcore_speedup"] = r["median_ms"] / base["median_ms"]
        results[wname] = row
        print(format_row(wname, row), flush=True)
    return results


def format_row(wname, row):
    cells = [f"{wname:<24}"]
    base = row.get("gradcore")
    cells.append(f"gradcore {base['median_ms']:9.3f} ms" if base else "gradcore        n/a")
    for impl in [i for i in row if i != "gradcore"]:
        r = row[impl]
        ratio = f" ({r['gradcore_speedup']:6.1f}x)" if base else ""
        cells.append(f"{impl} {r['median_ms']:9.3f} ms{ratio}")
    return " | ".join(cells)


def check_targets(module, results):
    lines, ok_all = [], True
    for t in getattr(module, "TARGETS", []):
        wname, peer, need = t[:3]
        peer_w = t[3] if len(t) > 3 else wname
        if wname not in results or peer_w not in results or "gradcore" not in results[wname]:
            continue
        if peer not in results[peer_w]:
            lines.append(f"  {wname} vs {peer} ({peer_w}): {peer} not installed")
            continue
        got = results[peer_w][peer]["median_ms"] / results[wname]["gradcore"]["median_ms"]
        ok = got >= need
        ok_all &= ok
        where = "" if peer_w == wname else f" on {peer_w}"
        lines.append(f"  [{'ok' if ok else 'MISSED'}] {wname}: {got:.2f}x faster than {peer}{where} (target >= {need}x)")
    for wname, impl, max_ms in getattr(module, "ABS_TARGETS", []):
        if impl not in results.get(wname, {}):
            continue
        got = results[wname][impl]["median_ms"]
        ok = got <= max_ms
        ok_all &= ok
        lines.append(f"  [{'ok' if ok else 'MISSED'}] {wname}: {impl} {got:.3f} ms (target <= {max_ms} ms)")
    return lines, ok_all


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", action="append", help="workload group (default: all); repeatable")
    ap.add_argument("--only", action="append", help="run only workloads whose name contains this")
    ap.add_argument("--budget", type=float, default=1.5, help="seconds of timed rounds per workload")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--list", action="store_true", help="list the groups and exit")
    args = ap.parse_args(argv)

    how = pin_threads(1)  # before numpy / torch / jax are imported
    modules = discover(args.group)
    if args.list:
        print("\n".join(modules))
        return 0
    if not modules:
        print(f"no workload group matches {args.group}", file=sys.stderr)
        return 2

    import gradcore

    info = gradcore.info()
    print(f"gradcore {info['version']}  simd={info['simd']}  threads: {how}")
    print("median of single calls, implementations interleaved; (Nx) = peer time / gradcore time\n")
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "gradcore": {k: v for k, v in info.items() if k != "threads"},
        "threads": how,
        "groups": {},
    }
    for group, module in modules.items():
        print(f"== {group}")
        results = run_group(module, args.budget, args.only)
        lines, _ = check_targets(module, results)
        if lines:
            print("targets:")
            print("\n".join(lines))
        if hasattr(module, "summary"):
            print("\n".join(module.summary(results)))
        report["groups"][group] = results
        print()
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
