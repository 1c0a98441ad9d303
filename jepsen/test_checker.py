#!/usr/bin/env python3
"""Unit tests of jepsen/checker.py: small handmade histories, each holding
exactly one anomaly, which must be reported alone; a clean history must pass.

    python3 jepsen/test_checker.py -v
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402


class H:
    """A history builder. Every event advances the clock by 1 µs, so the order
    in which a test writes events is their real-time order."""

    def __init__(self, fault=True):
        self.ev = []
        self.t = 0
        if fault:
            self.fault()

    def _add(self, p, typ, f, value):
        self.t += 1000
        self.ev.append({"process": p, "type": typ, "f": f, "value": value, "time": self.t})
        return self

    def inv(self, p, f, **v):
        return self._add(p, "invoke", f, v)

    def done(self, p, typ, f, **v):
        return self._add(p, typ, f, v)

    # produce: invoke and complete at once unless split with inv_produce/end_produce
    def inv_produce(self, p, value, partition=0, key=None):
        return self.inv(p, "produce", topic="t", partition=partition, value=value,
                        key=key or "k-" + value)

    def end_produce(self, p, value, typ="ok", offset=None, partition=0, key=None):
        extra = {"offset": offset, "duplicate": False} if typ == "ok" else {"error": "x"}
        return self.done(p, typ, "produce", topic="t", partition=partition, value=value,
                         key=key or "k-" + value, **extra)

    def produce(self, p, value, offset=None, typ="ok", partition=0, key=None):
        self.inv_produce(p, value, partition, key)
        return self.end_produce(p, value, typ, offset, partition, key)

    def read(self, p, offset, msgs, hw, partition=0, group="g", ls=0, committed=None,
             final=False, cont=False):
        v = dict(topic="t", partition=partition, group=group, offset=offset, limit=100,
                 final=final, **({"continue": True} if cont else {}))
        self.inv(p, "consume", **v)
        start = offset if offset is not None else (-1 if committed is None else committed) + 1
        nxt = msgs[-1][0] + 1 if msgs else max(start, ls)
        return self.done(p, "ok", "consume", messages=[list(m) for m in msgs], next_offset=nxt,
                         high_watermark=hw, log_start=ls, committed_offset=committed, **v)

    def drain(self, msgs, hw, partition=0, ls=0, offset=None):
        return self.read("drain", ls if offset is None else offset, msgs, hw,
                         partition=partition, group="drain", ls=ls, final=True)

    def commit(self, p, offset, typ="ok", group="g", partition=0, current=None):
        v = dict(topic="t", partition=partition, group=group, offset=offset)
        self.inv(p, "commit", **v)
        if current is not None:
            v["current"] = current
        return self.done(p, typ, "commit", **v)

    def fault(self, kind="kill-writer"):
        self.inv("nemesis", "kill", target="writer")
        return self.done("nemesis", "info", "kill", target="writer", fault=kind)


def run(h, **kw):
    kw.setdefault("min_acks", 0)
    return checker.check(h.ev, **kw)


class CheckerTest(unittest.TestCase):

    def assert_only(self, h, kind, count=1):
        report = run(h)
        self.assertEqual(report["anomaly_counts"], {kind: count},
                         json.dumps(report["anomalies"], indent=1)[:3000])
        self.assertFalse(report["valid"])
        self.assertEqual(checker.exit_code(report), 1)
        for entry in report["anomalies"][kind]:
            self.assertTrue(entry["ops"], "an anomaly names the operations involved")
        return report["anomalies"][kind]

    # ------------------------------------------------------------ clean

    def clean(self):
        h = H()
        h.produce(0, "a", 0).produce(1, "b", 1).produce(0, "c", 2)
        h.produce(1, "d", typ="info")          # indeterminate, never seen: fine
        h.produce(1, "e", typ="fail")          # definitely failed, never seen: fine
        h.produce(0, "x", 0, partition=1)
        h.produce(1, "y", typ="info", partition=1)
        h.produce(1, "y", 1, partition=1)      # retried with the same key
        h.read(2, 0, [(0, "a"), (1, "b")], hw=3)
        h.read(2, 2, [(2, "c")], hw=3, cont=True)
        h.read(3, None, [(0, "a"), (1, "b"), (2, "c")], hw=3, committed=None)
        h.commit(3, 2)
        h.read(3, None, [], hw=3, committed=2)
        h.commit(4, 1, typ="fail", current=2)  # a 409 backwards commit
        h.read(2, 0, [(0, "x"), (1, "y")], hw=2, partition=1)
        h.drain([(0, "a"), (1, "b"), (2, "c")], hw=3)
        h.drain([(0, "x"), (1, "y")], hw=2, partition=1)
        return h

    def test_clean_history_passes(self):
        report = run(self.clean(), min_acks=5, require_drain=True)
        self.assertEqual(report["anomaly_counts"], {}, json.dumps(report["anomalies"])[:3000])
        self.assertIs(report["valid"], True)
        self.assertEqual(report["vacuous"], [])
        self.assertEqual(report["stats"]["acknowledged"], 5)
        self.assertEqual(report["stats"]["faults_by_kind"], {"kill-writer": 1})
        self.assertEqual(checker.exit_code(report), 0)

    def test_indeterminate_produce_read_later_counts_as_written(self):
        h = H()
        h.produce(0, "a", typ="info")
        h.produce(1, "b", 1)
        h.read(2, 0, [(0, "a"), (1, "b")], hw=2)
        h.drain([(0, "a"), (1, "b")], hw=2)
        self.assertEqual(run(h)["anomaly_counts"], {})

    # ------------------------------------------------------------ vacuous

    def test_run_without_fault_is_vacuous(self):
        h = self.clean()
        h.ev = [e for e in h.ev if e["process"] != "nemesis"]
        report = run(h, min_acks=1)
        self.assertEqual(report["valid"], "vacuous")
        self.assertEqual(checker.exit_code(report), 2)
        self.assertIn("faults", report["vacuous"][0])

    def test_run_with_too_few_acks_is_vacuous(self):
        report = run(self.clean(), min_acks=100)
        self.assertEqual(report["valid"], "vacuous")
        self.assertEqual(checker.exit_code(report), 2)

    def test_run_without_drain_is_vacuous_when_required(self):
        h = H()
        h.produce(0, "a", 0)
        report = run(h, require_drain=True)
        self.assertEqual(report["valid"], "vacuous")
        self.assertTrue(report["skipped_checks"])

    # ------------------------------------------------------------ anomalies

    def test_inconsistent_offsets(self):
        h = H()
        h.inv_produce(0, "a").inv_produce(1, "b")
        h.end_produce(0, "a", offset=0).end_produce(1, "b", offset=0)
        h.read(2, 0, [(0, "a")], hw=1)
        h.read(3, 0, [(0, "b")], hw=1)
        (e,) = self.assert_only(h, "inconsistent-offsets")
        self.assertEqual(e["values"], ["a", "b"])
        self.assertEqual(e["offset"], 0)

    def test_duplicate(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 2)
        h.read(1, 0, [(0, "a"), (1, "a"), (2, "b")], hw=3)
        (e,) = self.assert_only(h, "duplicate")
        self.assertEqual(e["at"], ["t/0@0", "t/0@1"])

    def test_aborted_read(self):
        h = H()
        h.produce(0, "a", typ="fail")
        h.read(1, 0, [(0, "a")], hw=1)
        (e,) = self.assert_only(h, "aborted-read")
        self.assertEqual(e["value"], "a")

    def test_phantom_read(self):
        h = H()
        h.read(1, 0, [(0, "zzz")], hw=1)
        self.assert_only(h, "phantom-read")

    def test_lost_write(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 1)
        h.read(1, 1, [(1, "b")], hw=2)
        (e,) = self.assert_only(h, "lost-write")
        self.assertEqual((e["value"], e["offset"], e["reached"]), ("a", 0, 1))

    def test_unseen(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 1)
        h.drain([(0, "a")], hw=1)
        (e,) = self.assert_only(h, "unseen")
        self.assertEqual(e["value"], "b")

    def test_gap(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "c", 2)
        h.drain([(0, "a"), (2, "c")], hw=3)
        (e,) = self.assert_only(h, "gap")
        self.assertEqual(e["offsets"], [1, 1])

    def test_poll_skip_within_a_read(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 1).produce(0, "c", 2)
        h.read(1, 0, [(0, "a"), (2, "c")], hw=3)
        h.read(2, 1, [(1, "b")], hw=3)
        (e,) = self.assert_only(h, "poll-skip")
        self.assertEqual(e["skipped"], [1])

    def test_poll_skip_between_reads_of_one_consumer(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 1).produce(0, "c", 2)
        h.read(1, 0, [(0, "a")], hw=3)
        h.read(1, 2, [(2, "c")], hw=3, cont=True)  # server said next_offset 2
        h.read(2, 1, [(1, "b")], hw=3)
        (e,) = self.assert_only(h, "poll-skip")
        self.assertEqual(e["where"], "since previous read")

    def test_an_empty_jump_moves_the_consumer(self):
        # Seen in a campaign: a read jumps to the high watermark and finds
        # nothing; the next read continues from there. Nothing was skipped.
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 1)
        h.read(1, 0, [(0, "a")], hw=2)
        h.read(1, 2, [], hw=2)
        h.produce(0, "c", 2)
        h.read(1, 2, [(2, "c")], hw=3, cont=True)
        h.read(2, 0, [(0, "a"), (1, "b"), (2, "c")], hw=3)
        h.drain([(0, "a"), (1, "b"), (2, "c")], hw=3)
        report = run(h)
        self.assertEqual(report["anomaly_counts"], {}, json.dumps(report["anomalies"])[:2000])
        self.assertIs(report["valid"], True)

    def test_nonmonotonic_poll(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 1)
        h.read(1, 1, [(1, "b"), (0, "a")], hw=2)
        self.assert_only(h, "nonmonotonic-poll")

    def test_nonmonotonic_send(self):
        h = H()
        h.produce(0, "a", 1).produce(0, "b", 0)
        (e,) = self.assert_only(h, "nonmonotonic-send")
        self.assertEqual(e["offsets"], [1, 0])

    def test_real_time_order(self):
        h = H()
        h.produce(0, "a", 1).produce(1, "b", 0)
        (e,) = self.assert_only(h, "real-time-order")
        self.assertEqual([op["process"] for op in e["ops"]], [0, 1])

    def test_concurrent_produces_may_commit_in_any_order(self):
        h = H()
        h.inv_produce(0, "a").inv_produce(1, "b")
        h.end_produce(0, "a", offset=1).end_produce(1, "b", offset=0)
        self.assertEqual(run(h)["anomaly_counts"], {})

    def test_high_watermark_order(self):
        h = H()
        h.produce(0, "a", 0)
        h.read(1, 0, [], hw=0)
        (e,) = self.assert_only(h, "high-watermark-order")
        self.assertEqual(e["high_watermark"], 0)

    def test_committed_offset_regression(self):
        h = H()
        h.commit(1, 2)
        h.commit(2, 1)  # accepted although it moves backwards
        (e,) = self.assert_only(h, "committed-offset-regression")
        self.assertEqual(e["offsets"], [2, 1])

    def test_committed_offset_read_regression(self):
        h = H()
        h.commit(1, 2)
        h.read(2, None, [], hw=3, committed=None)  # forgot the commit
        self.assert_only(h, "committed-offset-regression")

    def test_commit_resume(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 1).produce(0, "c", 2)
        h.commit(1, 0)
        h.read(1, None, [(2, "c")], hw=3, committed=0)
        h.read(3, 0, [(0, "a"), (1, "b")], hw=3, group="other")
        (e,) = self.assert_only(h, "commit-resume")
        self.assertEqual(e["skipped"], [1])

    def test_commit_resume_redelivers(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 1)
        h.commit(1, 0)
        h.read(1, None, [(0, "a"), (1, "b")], hw=2, committed=0)
        self.assert_only(h, "commit-resume")

    def test_idempotency_value_stored_twice(self):
        h = H()
        h.produce(0, "a", typ="info")
        h.produce(0, "a", 0)  # retry, same key
        h.read(1, 0, [(0, "a"), (1, "a")], hw=2)
        (e,) = self.assert_only(h, "idempotency")
        self.assertEqual(e["reasons"], ["stored-twice"])

    def test_idempotency_acks_disagree(self):
        h = H()
        h.produce(0, "a", 0)
        h.produce(0, "a", 1)  # the same key acknowledged at another offset
        (e,) = self.assert_only(h, "idempotency")
        self.assertIn("acks-disagree", e["reasons"])

    def test_log_start_regression_moves_backwards(self):
        h = H()
        h.read(1, 5, [], hw=5, ls=5)
        h.read(2, 3, [], hw=5, ls=3)
        (e,) = self.assert_only(h, "log-start-regression")
        self.assertEqual(e["what"], "moved backwards")

    def test_log_start_regression_read_below_succeeds(self):
        h = H()
        h.read(1, 0, [], hw=5, ls=5)
        (e,) = self.assert_only(h, "log-start-regression")
        self.assertEqual(e["what"], "read below log start")

    def test_incomplete_drain(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "b", 1)
        h.drain([(0, "a")], hw=2)
        self.assert_only(h, "incomplete-drain")

    def test_incomplete_drain_leaves_out_a_partition(self):
        h = H()
        h.produce(0, "a", 0).produce(0, "x", 0, partition=1)
        h.read(1, 0, [(0, "x")], hw=1, partition=1)
        h.drain([(0, "a")], hw=1)
        (e,) = self.assert_only(h, "incomplete-drain")
        self.assertEqual(e["partition"], "t/1")

    def test_every_kind_has_a_test(self):
        names = " ".join(n for n in dir(self) if n.startswith("test_"))
        for kind in checker.ANOMALY_KINDS:
            self.assertIn(kind.replace("-", "_"), names)

    # ------------------------------------------------------------ command line

    def test_command_line_exit_codes_and_json(self):
        with tempfile.TemporaryDirectory(prefix="jepsen-checker-") as d:
            cases = {"clean": (self.clean(), 0), "lost": (H(), 1), "vacuous": (H(fault=False), 2)}
            cases["lost"][0].produce(0, "a", 0).produce(0, "b", 1).read(1, 1, [(1, "b")], hw=2)
            cases["vacuous"][0].produce(0, "a", 0)
            for name, (h, want) in cases.items():
                path = os.path.join(d, name + ".jsonl")
                with open(path, "w") as f:
                    for e in h.ev:
                        f.write(json.dumps(e) + "\n")
                out = os.path.join(d, name + ".json")
                p = subprocess.run([sys.executable, checker.__file__, path, "--out", out],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(p.returncode, want, p.stdout + p.stderr)
                with open(out) as f:
                    self.assertIn("valid", json.load(f))


if __name__ == "__main__":
    unittest.main()
