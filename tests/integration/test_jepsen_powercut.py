#!/usr/bin/env python3
"""The power-cut layer (jepsen/powercut/): a child process writes under
LD_PRELOAD and SIGKILLs itself; the cut then keeps exactly what was made
durable (file fsync for bytes, directory fsync for names) and nothing else."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import unittest

SRC = os.environ.get("SKIFF_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(SRC, "jepsen"))
import powercut_build  # noqa: E402

LIB = TOOL = None

PRELUDE = """
import os, signal, sqlite3, sys
D = sys.argv[1]
def p(*a): return os.path.join(D, *a)
def dsync(path=D):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
def put(name, data, sync=True, flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC):
    fd = os.open(p(name), flags, 0o644)
    os.write(fd, data)
    if sync:
        os.fsync(fd)
    os.close(fd)
def cut():
    os.kill(os.getpid(), signal.SIGKILL)
"""


def setUpModule():
    global LIB, TOOL
    LIB, TOOL = powercut_build.build()  # into $SKIFF_BUILD_DIR/jepsen-powercut


class PowerCutTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="jepsen-powercut-")
        self.data = os.path.join(self.dir, "data")
        self.state = os.path.join(self.dir, "state")
        os.mkdir(self.data)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def child(self, body, expect_kill=True):
        """Run body under the layer; it ends with cut() (SIGKILL) unless told not to."""
        env = powercut_build.env_for(LIB, self.data, self.state)
        script = PRELUDE + textwrap.dedent(body)
        p = subprocess.run([sys.executable, "-c", script, self.data], env=env,
                           capture_output=True, text=True, timeout=120)
        if expect_kill:
            self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
        else:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def cut(self):
        summary = powercut_build.restore(TOOL, self.data, self.state)
        self.assertEqual(summary.get("errors"), 0, summary)
        warnings, errors = powercut_build.status(TOOL, self.state)
        self.assertEqual(errors, [])
        return summary

    def read(self, *names):
        with open(os.path.join(self.data, *names), "rb") as f:
            return f.read()

    def exists(self, *names):
        return os.path.exists(os.path.join(self.data, *names))

    # ------------------------------------------------------------ bytes

    def test_only_synced_bytes_survive(self):
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            fd = os.open(p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"AAAA")
            os.fsync(fd)
            dsync()
            os.write(fd, b"BBBB")
            cut()
        """)
        self.assertEqual(self.read("f"), b"AAAABBBB")  # before the cut, the page cache
        self.cut()
        self.assertEqual(self.read("f"), b"AAAA")

    def test_fdatasync_overwrite_and_append(self):
        with open(os.path.join(self.data, "f"), "wb") as f:
            f.write(b"0123456789")
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            fd = os.open(p("f"), os.O_RDWR)
            os.pwrite(fd, b"xy", 2)
            os.fdatasync(fd)
            os.pwrite(fd, b"ZZ", 6)        # not synced
            a = os.open(p("f"), os.O_WRONLY | os.O_APPEND)
            os.writev(a, [b"ab", b"c"])     # synced below, by another descriptor
            os.fdatasync(fd)
            os.write(a, b"tail")            # not synced
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("f"), b"01xy45ZZ89abc")

    def test_truncate_and_o_trunc_need_a_sync(self):
        put_old = b"old contents"
        for name in ("t1", "t2"):
            with open(os.path.join(self.data, name), "wb") as f:
                f.write(put_old)
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            put("t1", b"new", sync=False)                 # O_TRUNC rewrite, no fsync
            fd = os.open(p("t2"), os.O_RDWR)
            os.ftruncate(fd, 3)
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("t1"), b"old contents")
        self.assertEqual(self.read("t2"), b"old contents")

    def test_synced_truncate_survives(self):
        with open(os.path.join(self.data, "t"), "wb") as f:
            f.write(b"old contents")
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            fd = os.open(p("t"), os.O_RDWR)
            os.ftruncate(fd, 3)
            os.fsync(fd)
            os.ftruncate(fd, 100)   # extension not synced
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("t"), b"old")

    def test_sync_of_one_process_covers_another_s_writes(self):
        with open(os.path.join(self.data, "shared"), "wb"):
            pass
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            fd = os.open(p("shared"), os.O_WRONLY)
            os.write(fd, b"from-the-dead")
            cut()
        """)
        self.child("""
            fd = os.open(p("shared"), os.O_RDONLY)
            os.fsync(fd)                             # page cache holds the dead one's bytes
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("shared"), b"from-the-dead")

    def test_o_sync_descriptor_is_durable_at_each_write(self):
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            fd = os.open(p("s"), os.O_WRONLY | os.O_CREAT | os.O_DSYNC, 0o644)
            dsync()
            os.write(fd, b"durable")
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("s"), b"durable")

    # ------------------------------------------------------------ names

    def test_new_file_without_directory_sync_vanishes(self):
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            put("kept", b"k")
            dsync()
            put("lost", b"synced data, unsynced name")
            os.mkdir(p("sub"))
            put("sub/x", b"x")
            dsync(p("sub"))       # the parent never learns about sub
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("kept"), b"k")
        self.assertFalse(self.exists("lost"))
        self.assertFalse(self.exists("sub"))

    def test_rename_needs_a_directory_sync(self):
        with open(os.path.join(self.data, "cfg"), "wb") as f:
            f.write(b"v1")
        with open(os.path.join(self.data, "cfg2"), "wb") as f:
            f.write(b"v1")
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            put("cfg.tmp", b"v2")
            os.rename(p("cfg.tmp"), p("cfg"))      # no directory fsync: undone
            os.unlink(p("cfg2"))                    # no directory fsync: undone
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("cfg"), b"v1")
        self.assertEqual(self.read("cfg2"), b"v1")
        self.assertFalse(self.exists("cfg.tmp"))
        self.child("""
            put("cfg.tmp", b"v2")
            os.rename(p("cfg.tmp"), p("cfg"))
            os.unlink(p("cfg2"))
            dsync()
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("cfg"), b"v2")
        self.assertFalse(self.exists("cfg2"))

    def test_directory_tree_and_hard_links(self):
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            os.makedirs(p("a", "b"))
            put("a/b/f", b"deep")
            os.link(p("a/b/f"), p("a/b/g"))
            dsync(p("a", "b")); dsync(p("a")); dsync()
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("a", "b", "f"), b"deep")
        st_f = os.stat(os.path.join(self.data, "a", "b", "f"))
        st_g = os.stat(os.path.join(self.data, "a", "b", "g"))
        self.assertEqual(st_f.st_ino, st_g.st_ino)

    def test_restore_is_repeatable_after_init(self):
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            put("f", b"one"); dsync()
            cut()
        """)
        self.cut()
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            fd = os.open(p("f"), os.O_WRONLY | os.O_APPEND)
            os.write(fd, b"two")
            cut()
        """)
        self.cut()
        self.assertEqual(self.read("f"), b"one")

    # ------------------------------------------------------------ sqlite

    def test_sqlite_wal_keeps_synced_commits(self):
        powercut_build.init(TOOL, self.data, self.state)
        self.child("""
            db = sqlite3.connect(p("meta.db"), isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            for i in range(50):
                db.execute("INSERT INTO t VALUES (?, ?)", (i, "durable-%d" % i))
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for i in range(50, 80):
                db.execute("INSERT INTO t VALUES (?, ?)", (i, "durable-%d" % i))
            db.execute("PRAGMA synchronous=OFF")
            for i in range(80, 200):
                db.execute("INSERT INTO t VALUES (?, ?)", (i, "lost-%d" % i))
            cut()
        """)
        self.assertTrue(self.exists("meta.db-shm"))
        self.cut()
        self.assertFalse(self.exists("meta.db-shm"))
        db = sqlite3.connect(os.path.join(self.data, "meta.db"))
        try:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
            rows = db.execute("SELECT k, v FROM t ORDER BY k").fetchall()
        finally:
            db.close()
        self.assertEqual([k for k, _ in rows][:80], list(range(80)))
        self.assertTrue(all(v.startswith("durable") for k, v in rows if k < 80))
        self.assertLess(len(rows), 200, "unsynced commits must not all survive")


if __name__ == "__main__":
    unittest.main(verbosity=2)
