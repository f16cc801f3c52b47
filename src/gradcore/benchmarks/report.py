"""Ratio report: median time of every implementation of every workload, and
how many times faster gradcore is than each peer, measured in one run with
one thread per library.

    gradcore bench                                   # every group
    gradcore bench --group clip                      # one group (repeatable)
    gradcore bench --group clip --json report.json   # every timing, ratio and the machine facts
    python -m gradcore.benchmarks --group clip       # the same without the CLI

Workloads come from ``gradcore/benchmarks/workloads_<group>.py`` (see
``_common.py`` for the contract); each group's ``TARGETS`` are checked and
printed. Peers that are not installed are named and left out.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import pathlib
import sys

from ._common import discover, machine_facts, missing_peers, pin_threads, thread_facts, time_interleaved


def run_group(module, budget, only=None):
    results = {}
    # workload modules whose workloads() takes ``only`` build just those
    built = module.workloads(only) if only and inspect.signature(module.workloads).parameters else module.workloads()
    for wname, impls in built.items():
        if only and not any(s in wname for s in only):
            continue
        row = {}
        rounds = {"min_rounds": 1} if budget == 0 else {}  # budget 0: a smoke run, one timed round
        calls = steady_calls(module)
        for impl, (med, times, cold) in time_interleaved(impls, budget=budget, calls=calls, **rounds).items():
            row[impl] = {"median_ms": med * 1e3, "min_ms": min(times) * 1e3, "repeats": len(times),
                         "times_ms": [t * 1e3 for t in times]}
            if cold is not None:  # the first call of each block, right after another implementation
                row[impl]["cold_median_ms"] = cold * 1e3
        base = row.get("gradcore")
        if base:
            for impl, r in row.items():
                r["gradcore_speedup"] = r["median_ms"] / base["median_ms"]
        results[wname] = row
        print(format_row(wname, row), flush=True)
    return results


def steady_calls(module) -> int:
    """Calls per implementation and round for a workload module (``STEADY_CALLS``, default 1)."""
    return int(getattr(module, "STEADY_CALLS", 1))


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


def _seconds(text):
    value = float(text)
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text}")
    return value


def build_parser(ap=None):
    """The report's options (``gradcore bench`` adds the same to its subparser)."""
    if ap is None:
        ap = argparse.ArgumentParser(prog="python -m gradcore.benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", action="append", help="workload group (default: all); repeatable")
    ap.add_argument("--only", action="append", help="run only workloads whose name contains this; repeatable")
    ap.add_argument("--budget", type=_seconds, default=1.5, help="seconds of timed rounds per workload (at least 5 rounds; 0: one round, a smoke run)")
    ap.add_argument("--json", metavar="FILE", help="write every timing, ratio and the machine facts to FILE")
    ap.add_argument("--list", action="store_true", help="list the groups and exit")
    return ap


def run(groups=None, only=None, budget=1.5, json_path=None, threads=1, list_groups=False):
    """Time ``groups`` (default: all) and print the table; 0 on success, 2
    when no group matches. Pins this process to ``threads`` threads first."""
    how = pin_threads(threads)  # before torch / jax are imported
    modules = discover(groups)
    if list_groups:
        print("\n".join(modules))
        return 0
    if not modules:
        print(f"no workload group matches {groups}; groups: {', '.join(discover())}", file=sys.stderr)
        return 2

    import gradcore

    info = gradcore.info()
    print(f"gradcore {info['version']}  simd={info['simd']}  threads: {how}")
    print("median of single calls, implementations interleaved; (Nx) = peer time / gradcore time\n"
          "(groups marked 'steady state': each round runs each implementation k calls in a row and times the\n"
          " k - 1 after the first, each following a call of itself, as in a training loop)\n")
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "gradcore": {k: v for k, v in info.items() if k != "threads"},
        "threads": {"pinned": how, **thread_facts()},
        "budget_s": budget,
        "groups": {},
    }
    for group, module in modules.items():
        calls = steady_calls(module)
        print(f"== {group}" + (f"  (steady state: {calls} calls in a row, the last {calls - 1} timed)" if calls > 1 else ""))
        missing = missing_peers(module)
        for peer, why in missing.items():
            print(f"  {peer}: not installed, left out ({why})")
        results = run_group(module, budget, only)
        lines, ok = check_targets(module, results)
        if lines:
            print("targets:")
            print("\n".join(lines))
        extra = module.summary(results) if hasattr(module, "summary") else []
        if extra:
            print("\n".join(extra))
        report["groups"][group] = {"steady_calls": calls, "workloads": results, "targets": lines, "targets_met": ok,
                                   "not_installed": missing, "summary": extra}
        print()
    if json_path:
        pathlib.Path(json_path).write_text(json.dumps(report, indent=2))
        print(f"wrote {json_path}")
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run(args.group, args.only, args.budget, args.json, list_groups=args.list)
