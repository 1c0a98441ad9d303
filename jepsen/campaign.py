#!/usr/bin/env python3
"""A campaign: a matrix of runs (fault modes x durations x repeats), a summary
table on stdout and summary.json in the campaign directory.

    python3 jepsen/campaign.py --modes kill-worker,power-cut,mixed --durations 10,30 \\
        --repeats 3 [--out DIR] [--clients 4] [--min-acks 50] [--budget 900]

A mode is one fault kind (see nemesis.py), "mixed" (every kind in turn) or a
'+'-joined list of kinds. Each run gets its own directory under the campaign
directory (run.py describes its contents). Exit status: 0 when every run is
valid, 1 when any run found anomalies or findings, is vacuous, or could not be
carried out. --budget bounds the whole campaign in seconds: runs that would
not finish within it are skipped, and a skipped run fails the campaign.
"""

import argparse
import collections
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import nemesis as nemesis_mod  # noqa: E402
import run as run_mod  # noqa: E402


def faults_of(mode):
    if mode == "mixed":
        return list(nemesis_mod.FAULTS)
    kinds = mode.split("+")
    unknown = [k for k in kinds if k not in nemesis_mod.FAULTS]
    if unknown:
        raise ValueError("unknown fault mode %s (kinds: %s, or mixed)"
                         % (mode, ", ".join(nemesis_mod.FAULTS)))
    return kinds


def row_of(mode, duration, repeat, result):
    s = result["checker"]["stats"]
    return {
        "mode": mode, "duration_s": duration, "repeat": repeat,
        "verdict": result["verdict"], "pass": result["verdict"] == "valid",
        "operations": s["operations"], "acknowledged": s["acknowledged"],
        "faults": s["faults_by_kind"], "anomalies": result["checker"]["anomaly_counts"],
        "findings": collections.Counter(f["kind"] for f in result["findings"]),
        "errors": result["errors"], "seconds": result["seconds"], "run_dir": result["run_dir"],
    }


def table(rows):
    head = ("mode", "s", "#", "verdict", "ops", "acked", "faults", "anomalies / findings")
    lines = [head]
    for r in rows:
        bad = dict(r["anomalies"])
        bad.update({"finding:" + k: v for k, v in r["findings"].items()})
        if r["errors"]:
            bad["error"] = len(r["errors"])
        lines.append((r["mode"], "%g" % r["duration_s"], str(r["repeat"]), r["verdict"].upper(),
                      str(r["operations"]), str(r["acknowledged"]),
                      ",".join("%s=%d" % kv for kv in sorted(r["faults"].items())) or "-",
                      ",".join("%s=%d" % kv for kv in sorted(bad.items())) or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def campaign(modes, durations, repeats, out=None, budget_s=None, seed=None, stop_on_error=False,
             **run_args):
    out = out or tempfile.mkdtemp(prefix="jepsen-campaign-%s-" % time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out, exist_ok=True)
    started = time.monotonic()
    rows, skipped = [], []
    matrix = [(m, d, r) for r in range(1, repeats + 1) for m in modes for d in durations]
    for i, (mode, duration, repeat) in enumerate(matrix):
        elapsed = time.monotonic() - started
        gave_up = stop_on_error and rows and rows[-1]["verdict"] == "error"
        if gave_up or (budget_s is not None and elapsed + duration > budget_s):
            skipped.append({"mode": mode, "duration_s": duration, "repeat": repeat,
                            "why": "previous run could not be carried out" if gave_up else "budget"})
            continue
        run_dir = os.path.join(out, "%s-%gs-%d" % (mode, duration, repeat))
        print("== run %s, %g s, repeat %d -> %s" % (mode, duration, repeat, run_dir), flush=True)
        result = run_mod.run_test(time_s=duration, faults=faults_of(mode), out=run_dir,
                                  seed=None if seed is None else seed + i, **run_args)
        rows.append(row_of(mode, duration, repeat, result))
        print("   " + run_mod.summary_line(result), flush=True)
    totals = collections.Counter()
    faults, anomalies, verdicts = collections.Counter(), collections.Counter(), collections.Counter()
    for r in rows:
        totals["operations"] += r["operations"]
        totals["acknowledged"] += r["acknowledged"]
        faults.update(r["faults"])
        anomalies.update(r["anomalies"])
        verdicts[r["verdict"]] += 1
    summary = {
        "dir": out, "seconds": round(time.monotonic() - started, 1),
        "runs": len(rows), "passed": sum(r["pass"] for r in rows), "skipped": skipped,
        "operations": totals["operations"], "acknowledged": totals["acknowledged"],
        "faults_by_kind": dict(sorted(faults.items())),
        "anomalies_by_kind": dict(sorted(anomalies.items())),
        "verdicts": dict(verdicts),
        "ok": bool(rows) and not skipped and all(r["pass"] for r in rows),
        "per_run": rows,
    }
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, sort_keys=True, default=str)
        f.write("\n")
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="kill-worker,kill-skiffd,pause-worker,pause-skiffd,"
                                       "power-cut,mixed")
    ap.add_argument("--durations", default="20", help="comma-separated seconds")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", help="campaign directory (default a new one under /tmp)")
    ap.add_argument("--clients", type=int, default=run_mod.DEFAULTS["clients"])
    ap.add_argument("--partitions", type=int, default=run_mod.DEFAULTS["partitions"])
    ap.add_argument("--min-acks", type=int, default=run_mod.DEFAULTS["min_acks"])
    ap.add_argument("--interval", default="0.5:1.5", help="seconds between faults, MIN:MAX")
    ap.add_argument("--budget", type=float, help="seconds the campaign may take at most")
    ap.add_argument("--seed", type=int, help="seed of the first run (then seed+1, ...)")
    ap.add_argument("--stop-on-error", action="store_true",
                    help="skip the remaining runs after one that could not be carried out")
    ap.add_argument("--skiffd")
    ap.add_argument("--skiffctl")
    a = ap.parse_args(argv)
    try:
        modes = a.modes.split(",")
        for m in modes:
            faults_of(m)
    except ValueError as e:
        ap.error(str(e))
    summary = campaign(modes, [float(d) for d in a.durations.split(",")], a.repeats, out=a.out,
                       budget_s=a.budget, clients=a.clients, partitions=a.partitions,
                       min_acks=a.min_acks, interval_s=run_mod.parse_range(a.interval),
                       seed=a.seed, stop_on_error=a.stop_on_error, skiffd=a.skiffd,
                       skiffctl=a.skiffctl)
    print()
    print(table(summary["per_run"]))
    for s in summary["skipped"]:
        print("SKIPPED (%s): %s %g s #%d" % (s["why"], s["mode"], s["duration_s"], s["repeat"]))
    print("\n%d/%d runs passed, %d operations, %d acknowledged writes, faults %s, anomalies %s "
          "(%.0f s) -> %s" % (summary["passed"], summary["runs"], summary["operations"],
                              summary["acknowledged"], summary["faults_by_kind"] or "none",
                              summary["anomalies_by_kind"] or "none", summary["seconds"],
                              os.path.join(summary["dir"], "summary.json")))
    print("CAMPAIGN %s" % ("PASS" if summary["ok"] else "FAIL"))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
