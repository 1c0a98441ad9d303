"""Refusals: a second skiffd on the same data_dir names the pid holding the
lock and disturbs nothing; a bad INI exits 78 with one line naming its line
number, before creating anything; skiffctl without skiffd exits 4."""
import os

import skiff_testlib as st


def test_second_skiffd_is_refused():
    with st.Skiffd() as d:
        d.start()
        pids = d.pids()
        r = st.run([st.SKIFFD, "-c", d.ini_path], timeout_s=30)
        st.check(r.returncode != 0, "second skiffd exited 0")
        st.check("locked by pid %d" % d.pid in r.stderr, "stderr: %r" % r.stderr)
        # Same data_dir, other run_dir: refused too.
        other = dict(d.ini)
        other["node"] = dict(d.ini["node"], run_dir=os.path.join(d.tmp, "run2"))
        other_ini = os.path.join(d.tmp, "other.ini")
        st.write_ini(other_ini, other)
        r = st.run([st.SKIFFD, "-c", other_ini], timeout_s=30)
        st.check(r.returncode != 0 and "locked by pid %d" % d.pid in r.stderr,
                 "other run_dir: rc %d stderr %r" % (r.returncode, r.stderr))
        st.check(d.pids() == pids, "the first skiffd's workers changed")
        st.check(d.ctl("status").returncode == 0, "the first skiffd is disturbed")
        d.stop()


BAD = [
    # (text, line, fragment)
    ("[node]\nid = 1\n[http]\nlisten = 127.0.0.1:7070\nlisten_backlog = 5\n", 5, "unknown key"),
    ("[node]\nid = 1\n\n[supervisor]\nintensity = 0\n", 5, "out of range"),
    ("[node]\nid = 1\n[supervisor]\nstrategy = one_for_some\n", 4, "one_for_one"),
    ("[node]\nid = x\n", 2, "not an integer"),
    ("[nodes]\nid = 1\n", 2, "unknown section"),
    ("[worker.writer]\nrestart = sometimes\n", 2, "permanent"),
    ("[node]\nthis line is broken\n", 2, ""),
]


def test_bad_ini_is_refused_with_its_line():
    with st.Skiffd() as d:
        for i, (text, line, frag) in enumerate(BAD):
            path = os.path.join(d.tmp, "bad%d.ini" % i)
            with open(path, "w") as f:
                f.write(text)
            for args in (["-c", path], ["--check-config", "-c", path]):
                r = st.run([st.SKIFFD] + args, timeout_s=30)
                st.check(r.returncode == st.EXIT_CONFIG, "%r: exit %d" % (text, r.returncode))
                lines = r.stderr.strip().splitlines()
                st.check(len(lines) == 1, "%r: not one line: %r" % (text, r.stderr))
                st.check("%s:%d:" % (path, line) in lines[0], "%r: no line number in %r" % (text, lines[0]))
                st.check(frag in lines[0], "%r: %r not in %r" % (text, frag, lines[0]))
        # Nothing was created next to the bad files (default var/ relative to the INI).
        st.check(not os.path.exists(os.path.join(d.tmp, "var")), "a bad INI created var/")
        missing = os.path.join(d.tmp, "missing.ini")
        r = st.run([st.SKIFFD, "-c", missing], timeout_s=30)
        st.check(r.returncode == st.EXIT_CONFIG and missing in r.stderr, "missing file: %r" % r.stderr)
        r = st.run([st.SKIFFD, "--check-config", "-c", d.ini_path], timeout_s=30)
        st.check(r.returncode == 0, "good INI refused: %r" % r.stderr)
        st.check(not d.procs(), "a process was started")


def test_skiffctl_without_skiffd_exits_4():
    with st.Skiffd() as d:
        for args in (["status"], ["status", "--json"], ["restart", "raft"], ["stop"], ["events"]):
            r = d.ctl(*args)
            st.check(r.returncode == st.CTL_UNREACHABLE, "%r: exit %d" % (args, r.returncode))
            st.check(len(r.stderr.strip().splitlines()) == 1, "%r: stderr %r" % (args, r.stderr))
        r = d.ctl("frobnicate")
        st.check(r.returncode == 64, "unknown command: exit %d" % r.returncode)


if __name__ == "__main__":
    st.main(globals())
