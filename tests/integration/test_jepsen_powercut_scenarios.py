#!/usr/bin/env python3
"""Power cuts at chosen moments against the real skiffd (the campaign finds
such moments at random; these replay the ones it found, deterministically).
After each cut skiffd must become ready again and every acknowledged record
must be readable at its offset.

  after_checkpoint          produce, idle checkpoint, produce, cut
  after_skiffd_restart      produce, SIGKILL skiffd, restart, produce, idle
                            checkpoint, cut: the new writer inherited index
                            files whose directory entries the dead writer never
                            fsync'd (found by the campaign: every partition then
                            read empty)
  after_restart_with_tail   the same with records after the checkpoint
                            (found by the campaign: recovery then failed for
                            good, "applying frame index N: invalid argument")
  after_writer_restart      the same, with only the writer SIGKILLed
"""

import os
import shutil
import signal
import sys
import tempfile
import time
import unittest

SRC = os.environ.get("SKIFF_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(SRC, "jepsen"))
import client  # noqa: E402
import nodes  # noqa: E402
import powercut_build  # noqa: E402

IDLE_CHECKPOINT_S = 2.5  # the writer checkpoints after 1 s without a batch
PARTITIONS = 3


class Scenario(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lib, cls.tool = powercut_build.build()
        cls.skiffd = nodes.default_binary("SKIFFD", "supervisor/skiffd")
        cls.skiffctl = nodes.default_binary("SKIFFCTL", "supervisor/skiffctl")

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="jepsen-scenario-")
        self.node = nodes.LocalNode("n1", 1, self.root, self.skiffd, self.skiffctl,
                                    powercut=(self.lib, self.tool))
        self.acked = {}  # (partition, offset) -> value
        self.n = 0
        self.done = False

    def tearDown(self):
        self.node.teardown()
        if self.done:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            print("kept %s (skiffd log: %s)" % (self.root, self.node.log_path))

    def start(self):
        try:
            self.node.start(timeout_s=30)
        except nodes.NodeError as e:
            self.fail("skiffd did not come back: %s" % e)

    def produce(self, count):
        for _ in range(count):
            p, value = self.n % PARTITIONS, "v%d" % self.n
            self.n += 1
            r = client.call(self.node, "POST", "/broker/topics/t/produce?partition=%d" % p,
                            body=value.encode(), timeout_s=10)
            self.assertEqual(r.status, 200, r.describe())
            self.acked[(p, r.body["offset"])] = value

    def check_all_readable(self):
        for p in range(PARTITIONS):
            r = client.call(self.node, "GET", "/broker/consume/t/check/%d?offset=0&limit=1000" % p,
                            timeout_s=10)
            self.assertEqual(r.status, 200, r.describe())
            got = {(p, m["offset"]): m.get("value") for m in r.body["messages"]}
            want = {k: v for k, v in self.acked.items() if k[0] == p}
            missing = sorted(k[1] for k in want if got.get(k) != want[k])
            self.assertEqual(missing, [], "partition %d: acknowledged offsets missing or changed "
                             "after the cut (high_watermark %s)" % (p, r.body.get("high_watermark")))

    def cut_and_restart(self):
        self.node.cut_power()
        self.start()
        self.check_all_readable()
        self.done = True

    def begin(self):
        self.start()
        r = client.call(self.node, "POST", "/broker/topics",
                        body=b'{"name":"t","partitions":%d}' % PARTITIONS)
        self.assertIn(r.status, (200, 201), r.describe())

    def test_after_checkpoint(self):
        self.begin()
        self.produce(30)
        time.sleep(IDLE_CHECKPOINT_S)
        self.produce(15)
        self.cut_and_restart()

    def test_after_skiffd_restart(self):
        self.begin()
        self.produce(30)
        self.node.crash()
        self.start()
        self.produce(15)
        time.sleep(IDLE_CHECKPOINT_S)
        self.cut_and_restart()

    def test_after_restart_with_tail(self):
        self.begin()
        self.produce(30)
        self.node.crash()
        self.start()
        self.produce(15)
        time.sleep(IDLE_CHECKPOINT_S)
        self.produce(15)
        self.cut_and_restart()

    def test_after_writer_restart(self):
        self.begin()
        self.produce(30)
        pid, _ = self.node.worker_pid("writer")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = self.node.worker_pid("writer")
            if found and found[0] != pid and client.call(self.node, "GET", "/ready").status == 200:
                break
            time.sleep(0.1)
        self.produce(15)
        time.sleep(IDLE_CHECKPOINT_S)
        self.produce(15)
        self.cut_and_restart()


if __name__ == "__main__":
    unittest.main(verbosity=2)
