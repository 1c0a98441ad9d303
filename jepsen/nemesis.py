"""The nemesis: injects faults into nodes while the clients run, and heals.

Fault kinds (single node):
  kill-worker   SIGKILL of one worker (writer, raft, replay, http in turn); its
                pid comes from `skiffctl status --json`
  kill-skiffd   SIGKILL of skiffd alone (workers must follow by PDEATHSIG), then
                restart it and wait until ready
  pause-worker  SIGSTOP of one worker for a while, then SIGCONT (a pause past
                [supervisor] hang_timeout_ms gets the worker restarted)
  pause-skiffd  SIGSTOP / SIGCONT of skiffd itself; workers keep running
  power-cut     every process of the node SIGKILLed at once, every write not
                made durable dropped (jepsen/powercut/), then restart

Each fault is one nemesis operation in the history: invoked when it starts,
completed (type info, value.fault = kind) when it is over, so its window is
drawn on the timeline. A fault that could not be injected (say, the worker was
restarting and had no pid) completes without value.fault and is not counted.
"""

import os
import random
import signal
import threading
import time

from nodes import WORKERS, NodeError, alive

FAULTS = ("kill-worker", "kill-skiffd", "pause-worker", "pause-skiffd", "power-cut")


class Nemesis(threading.Thread):

    def __init__(self, nodes, faults, history, log, seed, deadline, stop, interval=(0.5, 1.5),
                 pause=(0.2, 1.6)):
        super().__init__(name="nemesis", daemon=True)
        unknown = set(faults) - set(FAULTS)
        if unknown:
            raise ValueError("unknown fault kinds: %s (known: %s)"
                             % (", ".join(sorted(unknown)), ", ".join(FAULTS)))
        self.nodes, self.faults, self.h, self.log = nodes, list(faults), history, log
        self.rng = random.Random(seed)
        self.deadline, self.stop_event = deadline, stop
        self.interval, self.pause = interval, pause
        self.turn = self.rng.randrange(len(WORKERS))
        self.fault_turn = 0
        self.counts = {}
        self.error = None

    # ------------------------------------------------------------ loop

    def run(self):
        try:
            while not self.stop_event.is_set():
                wait = self.rng.uniform(*self.interval)
                if time.monotonic() + wait >= self.deadline:
                    break
                if self.stop_event.wait(wait):
                    break
                for n in self.nodes:
                    self.ensure_up(n)
                kind = self.faults[self.fault_turn % len(self.faults)]
                self.fault_turn += 1
                self.inject(kind, self.rng.choice(self.nodes))
        except Exception as e:  # noqa: BLE001 - reported by the harness
            self.error = repr(e)
            self.log("nemesis stopped: %r" % e)

    def ensure_up(self, node):
        """Restart a node whose skiffd exited on its own (a finding)."""
        if not node.check_alive():
            self.log("%s: skiffd had exited on its own; restarting it" % node.name)
            node.start()

    def next_worker(self):
        self.turn += 1
        return WORKERS[self.turn % len(WORKERS)]

    # ------------------------------------------------------------ faults

    def inject(self, kind, node):
        target = self.next_worker() if kind.endswith("-worker") else "skiffd"
        v = {"node": node.name, "target": target}
        self.h.record("nemesis", "invoke", kind, v)
        self.log("%s %s %s: start" % (kind, node.name, target))
        try:
            detail = getattr(self, "_" + kind.replace("-", "_"))(node, target)
        except NodeError as e:
            detail = {"error": str(e)[:2000]}
            node.finding("fault-error", "%s of %s failed: %s" % (kind, target, str(e)[:2000]))
            try:
                node.teardown()
                node.start()
            except NodeError as e2:
                self.h.record("nemesis", "info", kind, dict(v, **detail))
                raise NodeError("%s could not be restarted after %s: %s" % (node.name, kind, e2))
        v.update(detail)
        if "skipped" not in detail and "error" not in detail:
            v["fault"] = kind
            self.counts[kind] = self.counts.get(kind, 0) + 1
        self.h.record("nemesis", "info", kind, v)
        self.log("%s %s %s: done %s" % (kind, node.name, target,
                                        {k: x for k, x in detail.items() if k != "log"}))

    def _kill_worker(self, node, target):
        found = node.worker_pid(target)
        if not found:
            return {"skipped": "%s has no running pid right now" % target}
        pid, start = found
        os.kill(pid, signal.SIGKILL)
        return {"pid": pid}

    def _pause_worker(self, node, target):
        found = node.worker_pid(target)
        if not found:
            return {"skipped": "%s has no running pid right now" % target}
        pid, start = found
        seconds = self.rng.uniform(*self.pause)
        os.kill(pid, signal.SIGSTOP)
        try:
            self.stop_event.wait(seconds)
        finally:
            restarted = not alive(pid, start)
            if not restarted:
                os.kill(pid, signal.SIGCONT)
        return {"pid": pid, "seconds": round(seconds, 3), "killed_while_paused": restarted}

    def _pause_skiffd(self, node, target):
        seconds = self.rng.uniform(*self.pause)
        pid = node.proc.pid
        node.signal_skiffd(signal.SIGSTOP)
        try:
            self.stop_event.wait(seconds)
        finally:
            node.signal_skiffd(signal.SIGCONT)
        return {"pid": pid, "seconds": round(seconds, 3)}

    def _kill_skiffd(self, node, target):
        pid = node.proc.pid
        orphans = node.crash()
        node.start()
        return {"pid": pid, "orphans": orphans}

    def _power_cut(self, node, target):
        pid = node.proc.pid
        summary = node.cut_power()
        node.start()
        return {"pid": pid, "dropped_bytes": summary.get("bytes_before", 0) - summary.get("bytes", 0),
                "restore": summary}

    # ------------------------------------------------------------ heal

    def heal(self):
        """Resume every process, restart dead nodes, wait until all are ready."""
        self.h.record("nemesis", "invoke", "heal", {})
        for n in self.nodes:
            n.resume_all()
            self.ensure_up(n)
            n.wait_ready()
        self.h.record("nemesis", "info", "heal", {})
        self.log("heal: every node resumed and ready")
