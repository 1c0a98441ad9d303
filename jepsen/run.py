#!/usr/bin/env python3
"""One Jepsen-style run against skiff: fresh nodes, N clients for T seconds
while the nemesis injects faults, heal, final drain, check, run directory.

    python3 jepsen/run.py --time 20 --clients 4 --faults kill-worker,power-cut \\
        [--nodes n1] [--out DIR] [--skiffd PATH] [--skiffctl PATH] [--seed N]

The run directory (default /tmp/jepsen-runs/<time>-<faults>) holds:
  history.jsonl   every operation (checker.py describes the format)
  nemesis.log     what the nemesis did and when, one line each
  <node>.skiffd.log  each node's skiffd stderr, all restarts appended
  result.json     verdict, checker report, findings, configuration
  timeline.html   operations and fault windows on one time axis

Exit status: 0 valid, 1 anomalies or findings, 2 vacuous, 3 the run could not
be carried out (a node would not start, ...). Every wait is bounded; every
process started is killed in a finally block.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checker  # noqa: E402
import client  # noqa: E402
import nemesis as nemesis_mod  # noqa: E402
import nodes as nodes_mod  # noqa: E402
import powercut_build  # noqa: E402
import timeline  # noqa: E402

TOPIC = "jepsen"
DRAIN_GROUP = "jepsen-drain"
DEFAULTS = {
    "nodes": ["n1"], "clients": 4, "time_s": 20.0, "faults": list(nemesis_mod.FAULTS),
    "partitions": 3, "seed": None, "min_acks": 50, "min_faults": 1, "interval_s": (0.5, 1.5),
    "pause_s": (0.2, 1.6), "retry_grace_s": 20.0, "drain_timeout_s": 60.0, "out": None,
    "skiffd": None, "skiffctl": None, "keep": "on-failure", "verify": True,
    "powercut_build_dir": None,
}


class Log:
    """nemesis.log: one timestamped line per event, also kept for result.json."""

    def __init__(self, path, echo=False):
        self.f = open(path, "w", encoding="utf-8")
        self.lock = threading.Lock()
        self.echo = echo

    def __call__(self, msg):
        line = "%d %s %s" % (time.monotonic_ns(), time.strftime("%H:%M:%S"), msg)
        with self.lock:
            if not self.f.closed:
                self.f.write(line + "\n")
                self.f.flush()
        if self.echo:
            print(line, flush=True)

    def close(self):
        with self.lock:
            self.f.close()


def create_topic(node, partitions, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    body = json.dumps({"name": TOPIC, "partitions": partitions}).encode()
    last = None
    while time.monotonic() < deadline:
        r = client.call(node, "POST", "/broker/topics", body=body, timeout_s=5.0,
                        content_type="application/json")
        if r.status in (200, 201):
            return
        last = r.describe()
        time.sleep(0.2)
    raise nodes_mod.NodeError("cannot create topic %s on %s: %s" % (TOPIC, node.name, last))


def drain(nodes, history, partitions, timeout_s, log):
    """Read every partition from its log start to its high watermark (final
    reads, process "drain"). Returns the partitions that could not be drained."""
    ops = client.Ops(history, "drain", TOPIC, read_limit=1000)
    deadline = time.monotonic() + timeout_s
    node = nodes[0]
    starts = {}
    while time.monotonic() < deadline:
        typ, v = ops.topic_info(node)
        if typ == "ok":
            starts = {p.get("partition"): p.get("log_start") or 0 for p in v["partitions"]}
            break
        time.sleep(0.2)
    undrained = []
    for p in range(partitions):
        offset, cont, done = starts.get(p, 0), False, False
        while time.monotonic() < deadline:
            typ, v = ops.consume(node, p, DRAIN_GROUP, offset=offset, cont=cont, final=True)
            if typ == "ok":
                nxt, hw = v.get("next_offset"), v.get("high_watermark")
                if not isinstance(nxt, int) or not isinstance(hw, int):
                    break
                if nxt >= hw and not v["messages"]:
                    done = True
                    break
                offset, cont = nxt, True
            elif typ == "fail" and isinstance(v.get("log_start"), int) and v["log_start"] > offset:
                offset, cont = v["log_start"], False
            else:
                time.sleep(0.2)
        if not done:
            undrained.append(p)
            log("drain: partition %d not drained within %.0f s" % (p, timeout_s))
    return undrained


def run_dir_for(cfg):
    if cfg["out"]:
        os.makedirs(cfg["out"], exist_ok=True)
        return cfg["out"]
    base = os.path.join(tempfile.gettempdir(), "jepsen-runs")
    os.makedirs(base, exist_ok=True)
    name = "%s-%s" % (time.strftime("%Y%m%d-%H%M%S"), "+".join(cfg["faults"]) or "none")
    return tempfile.mkdtemp(prefix=name + "-", dir=base)


def run_test(**overrides):
    """Carry out one run; returns the result dict (also written to result.json)."""
    cfg = dict(DEFAULTS)
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if cfg["seed"] is None:
        cfg["seed"] = random.randrange(1 << 31)
    cfg["skiffd"] = cfg["skiffd"] or nodes_mod.default_binary("SKIFFD", "supervisor/skiffd")
    cfg["skiffctl"] = cfg["skiffctl"] or nodes_mod.default_binary("SKIFFCTL", "supervisor/skiffctl")
    run_dir = run_dir_for(cfg)
    work = tempfile.mkdtemp(prefix="jepsen-nodes-", dir=tempfile.gettempdir())
    log = Log(os.path.join(run_dir, "nemesis.log"), echo=cfg.get("echo", False))
    history = client.History(os.path.join(run_dir, "history.jsonl"))
    rng = random.Random(cfg["seed"])
    node_list, errors, undrained, verify = [], [], [], {}
    started = time.monotonic()
    log("run %s: %s" % (run_dir, json.dumps({k: v for k, v in cfg.items() if k != "echo"},
                                             default=str)))
    stop = threading.Event()
    clients, nem = [], None
    try:
        powercut = None
        if "power-cut" in cfg["faults"]:
            powercut = powercut_build.build(cfg["powercut_build_dir"])
        for i, name in enumerate(cfg["nodes"], 1):
            node_list.append(nodes_mod.LocalNode(name, i, work, cfg["skiffd"], cfg["skiffctl"],
                                                 powercut=powercut, log=log))
        if len(node_list) != 1:
            raise nodes_mod.NodeError("only single-node runs exist so far (got %d nodes)"
                                      % len(node_list))
        for n in node_list:
            n.start()
            log("%s: skiffd pid %d ready on %s:%d" % (n.name, n.proc.pid, n.host, n.port))
        create_topic(node_list[0], cfg["partitions"])
        now = time.monotonic()
        deadline = now + cfg["time_s"]
        retry_deadline = deadline + cfg["retry_grace_s"]
        for i in range(cfg["clients"]):
            clients.append(client.Client(i, node_list, history, TOPIC, cfg["partitions"],
                                         rng.randrange(1 << 31), deadline, retry_deadline, stop))
        nem = nemesis_mod.Nemesis(node_list, cfg["faults"], history, log, rng.randrange(1 << 31),
                                  deadline, stop, interval=cfg["interval_s"], pause=cfg["pause_s"])
        for c in clients:
            c.start()
        if cfg["faults"]:
            nem.start()
            nem.join(cfg["time_s"] + 300)
            if nem.is_alive():
                raise nodes_mod.NodeError("the nemesis did not finish in time")
            if nem.error:
                errors.append("nemesis: %s" % nem.error)
        else:
            time.sleep(cfg["time_s"])
        nem.heal()
        for c in clients:
            c.join(max(1.0, retry_deadline - time.monotonic() + 15))
            if c.is_alive():
                errors.append("client %d did not finish" % c.process)
            elif c.error:
                errors.append("client %d: %s" % (c.process, c.error))
        undrained = drain(node_list, history, cfg["partitions"], cfg["drain_timeout_s"], log)
        for n in node_list:
            n.stop()
            if cfg["verify"]:
                rc, out = n.verify()
                verify[n.name] = {"exit": rc, "output": out}
                if rc != 0:
                    n.finding("verify-failed", "skiffd verify exited with %s" % rc, output=out)
    except (nodes_mod.NodeError, RuntimeError, OSError, ValueError) as e:
        errors.append(str(e))
        log("ERROR: %s" % e)
    except Exception as e:  # noqa: BLE001 - a harness bug still gets a result.json
        errors.append("harness: %s" % traceback.format_exc()[-3000:])
        log("ERROR (harness): %r" % e)
    finally:
        stop.set()
        for c in clients:
            c.join(10)
        for n in node_list:
            n.teardown()
            n.save_logs(run_dir)
        history.close()
    return finish(cfg, run_dir, work, node_list, errors, undrained, verify, started, nem, log)


def finish(cfg, run_dir, work, node_list, errors, undrained, verify, started, nem, log):
    report = checker.check(checker.load_history(os.path.join(run_dir, "history.jsonl")),
                           min_acks=cfg["min_acks"], min_faults=cfg["min_faults"],
                           require_drain=True)
    findings = [f for n in node_list for f in n.findings]
    powercut = {}
    for n in node_list:
        warnings, errs = n.powercut_notes()
        if warnings or errs:
            powercut[n.name] = {"warnings": warnings[:50], "errors": errs[:50]}
        for e in errs[:5]:
            findings.append({"node": n.name, "kind": "powercut-model-error", "message": e})
    if undrained:
        errors.append("partitions not drained: %s" % undrained)
    if errors:
        verdict = "error"
    elif report["anomaly_counts"] or findings:
        verdict = "invalid"
    elif report["vacuous"]:
        verdict = "vacuous"
    else:
        verdict = "valid"
    result = {
        "verdict": verdict,
        "valid": verdict == "valid",
        "run_dir": run_dir,
        "seconds": round(time.monotonic() - started, 1),
        "config": {k: v for k, v in cfg.items() if k != "echo"},
        "errors": errors,
        "findings": findings,
        "faults": nem.counts if nem else {},
        "powercut": powercut,
        "verify": verify,
        "checker": report,
    }
    if verdict == "valid" or cfg["keep"] == "never":
        shutil.rmtree(work, ignore_errors=True)
    else:
        result["node_dirs"] = work
    with open(os.path.join(run_dir, "result.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, sort_keys=True, default=str)
        f.write("\n")
    try:
        timeline.render(os.path.join(run_dir, "history.jsonl"), dict(report, findings=findings),
                        os.path.join(run_dir, "timeline.html"),
                        title="skiff jepsen: %s, %.0f s" % ("+".join(cfg["faults"]) or "no faults",
                                                           cfg["time_s"]))
    except Exception as e:  # noqa: BLE001 - a broken drawing must not hide the verdict
        log("timeline.html failed: %r" % e)
    log("verdict %s" % verdict)
    log.close()
    return result


EXIT = {"valid": 0, "invalid": 1, "vacuous": 2, "error": 3}


def summary_line(result):
    s = result["checker"]["stats"]
    return ("%s: %d ops, %d acknowledged, faults %s, anomalies %s, findings %d%s -> %s" % (
        result["verdict"].upper(), s["operations"], s["acknowledged"],
        s["faults_by_kind"] or "none", result["checker"]["anomaly_counts"] or "none",
        len(result["findings"]), (", errors: " + "; ".join(result["errors"])[:500])
        if result["errors"] else "", result["run_dir"]))


def parse_range(s):
    a, _, b = s.partition(":")
    return (float(a), float(b or a))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="n1", help="comma-separated node names (one for now)")
    ap.add_argument("--clients", type=int, default=DEFAULTS["clients"])
    ap.add_argument("--time", type=float, default=DEFAULTS["time_s"], help="seconds of workload")
    ap.add_argument("--faults", default="all",
                    help="comma-separated: %s; 'all' or 'none'" % ",".join(nemesis_mod.FAULTS))
    ap.add_argument("--partitions", type=int, default=DEFAULTS["partitions"])
    ap.add_argument("--seed", type=int)
    ap.add_argument("--min-acks", type=int, default=DEFAULTS["min_acks"],
                    help="fewer acknowledged produces makes the run vacuous")
    ap.add_argument("--interval", default="0.5:1.5", help="seconds between faults, MIN:MAX")
    ap.add_argument("--pause", default="0.2:1.6", help="seconds a pause lasts, MIN:MAX")
    ap.add_argument("--out", help="run directory (default under /tmp/jepsen-runs)")
    ap.add_argument("--skiffd")
    ap.add_argument("--skiffctl")
    ap.add_argument("--keep", choices=("on-failure", "never"), default="on-failure",
                    help="keep the nodes' data directories after a failed run")
    ap.add_argument("--no-verify", action="store_true", help="skip `skiffd verify` at the end")
    ap.add_argument("-v", "--verbose", action="store_true", help="echo nemesis.log")
    a = ap.parse_args(argv)
    faults = {"all": list(nemesis_mod.FAULTS), "none": []}.get(a.faults, a.faults.split(","))
    result = run_test(nodes=a.nodes.split(","), clients=a.clients, time_s=a.time, faults=faults,
                      partitions=a.partitions, seed=a.seed, min_acks=a.min_acks,
                      min_faults=1 if faults else 0, interval_s=parse_range(a.interval),
                      pause_s=parse_range(a.pause), out=a.out, skiffd=a.skiffd,
                      skiffctl=a.skiffctl, keep=a.keep, verify=not a.no_verify, echo=a.verbose)
    print(checker.format_report(result["checker"]))
    for f in result["findings"]:
        print("FINDING %s %s: %s" % (f.get("node"), f.get("kind"), f.get("message")))
    print(summary_line(result))
    return EXIT[result["verdict"]]


if __name__ == "__main__":
    sys.exit(main())
