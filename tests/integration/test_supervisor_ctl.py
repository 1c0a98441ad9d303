"""skiffctl against a real skiffd: the status table and JSON, exit codes,
kill and restart (manual counters), events and their persistence across
daemon restarts, status.json, permanent failures (exit 65 / 78: failed, the
others keep running, the reason shown), a ready timeout, and the restart
types temporary and transient."""
import json
import os
import signal

import skiff_testlib as st

FAULT = {"SKIFF_FAULT_FAIL": "", "SKIFF_FAULT_NO_READY": "", "SKIFF_FAULT_READY_TIMEOUT_MS": ""}


def test_status_table_and_json():
    with st.Skiffd() as d:
        d.start()
        r = d.ctl("status")
        st.check(r.returncode == 0, "status exit %d" % r.returncode)
        for name in st.WORKERS:
            st.check(name in r.stdout, "%s missing from the table" % name)
        st.check("strategy one_for_one" in r.stdout and "restarts 0 of 100" in r.stdout, r.stdout)
        s = d.status_dict()
        st.check(set(s) == {"supervisor", "workers"}, "top-level keys %r" % list(s))
        st.check(set(s["supervisor"]) == {"pid", "uptime_ms", "strategy", "intensity", "period_ms",
                                          "restarts_in_period"}, "supervisor keys")
        st.check(s["supervisor"]["pid"] == d.pid, "supervisor pid")
        for w in s["workers"]:
            st.check(set(w) == {"name", "state", "pid", "ready", "uptime_ms", "restarts",
                                "last_exit", "next_restart_ms"}, "worker keys %r" % list(w))
            st.check(w["state"] == "running" and w["ready"] and w["last_exit"] is None, repr(w))
        with open(os.path.join(d.run_dir, "status.json")) as f:
            on_disk = json.load(f)
        st.check([w["pid"] for w in on_disk["workers"]] == [w["pid"] for w in s["workers"]],
                 "status.json disagrees with skiffctl")
        d.stop()


def test_kill_restart_and_events_survive_a_daemon_restart():
    with st.Skiffd() as d:
        d.start()
        old = d.worker("raft")["pid"]
        r = d.ctl("restart", "raft")
        st.check(r.returncode == 0, "restart: %d %s" % (r.returncode, r.stderr))
        w = d.worker("raft")
        st.check(w["pid"] != old and w["restarts"] == {"auto": 0, "manual": 1}, repr(w))
        st.check(w["last_exit"]["reason"] == "manual", repr(w["last_exit"]))
        old = d.worker("http")["pid"]
        r = d.ctl("kill", "http", "--signal", "KILL")
        st.check(r.returncode == 0, "kill: %s" % r.stderr)
        w = d.wait_restarted("http", old)
        st.check(w["last_exit"]["signal"] == 9 and w["restarts"]["auto"] == 1, repr(w))
        r = d.ctl("kill", "http", "--signal", "BOGUS")
        st.check(r.returncode == 64, "bad signal name: exit %d" % r.returncode)
        r = d.ctl("restart", "printer")
        st.check(r.returncode == 64, "unknown worker: exit %d" % r.returncode)
        events = d.events()
        st.check([e["worker"] for e in events[:2]] == ["http", "raft"], "events %r" % events)
        st.check(len(d.events("raft")) == 1 and len(d.events(limit=1)) == 1, "events filters")
        r = d.ctl("events")
        st.check(r.returncode == 0 and "raft" in r.stdout and "manual" in r.stdout, r.stdout)
        d.stop()
        d.start()
        events = d.events()
        st.check([e["worker"] for e in events[-2:]] == ["http", "raft"],
                 "history lost across restart: %r" % events)
        d.stop()


def test_permanent_failure_keeps_the_others_running():
    for code in (65, 78):
        env = dict(FAULT, SKIFF_FAULT_FAIL="replay:%d" % code)
        with st.Skiffd(env=env) as d:
            d.start(wait=False)
            w = d.wait_worker("replay", lambda w: w["state"] == "failed", what="replay failed")
            e = w["last_exit"]
            st.check(e["code"] == code and "SKIFF_FAULT_FAIL" in (e["detail"] or ""), repr(e))
            st.check(w["restarts"]["auto"] == 0 and w["pid"] is None, repr(w))
            # The rest start and run; skiffctl reports "not all running" (3).
            d.wait_worker("http", lambda w: w["state"] == "running" and w["ready"], what="http up")
            rc, s = d.status()
            st.check(rc == st.CTL_NOT_RUNNING, "status exit %d" % rc)
            r = d.ctl("status")
            st.check(r.returncode == 3 and "failed" in r.stdout and "SKIFF_FAULT_FAIL" in r.stdout,
                     r.stdout)
            st.check(" failed worker=replay" in d.log_text(), "no failed line in the log")
            d.stop()


def test_ready_timeout_kills_and_restarts():
    env = dict(FAULT, SKIFF_FAULT_NO_READY="raft", SKIFF_FAULT_READY_TIMEOUT_MS="raft:300")
    with st.Skiffd(env=env, supervisor={"backoff_max_ms": "50"}) as d:
        d.start(wait=False)
        w = d.wait_worker("raft", lambda w: w["restarts"]["auto"] >= 2, what="raft restarted twice")
        st.check(w["last_exit"]["reason"] == "ready-timeout" and w["last_exit"]["signal"] == 9,
                 repr(w["last_exit"]))
        # Workers after raft wait for it: never started.
        st.check(d.worker("replay")["pid"] is None, "replay started before raft was ready")
        d.stop()


def test_temporary_and_transient_workers():
    with st.Skiffd(**{"worker.replay": {"restart": "temporary"},
                      "worker.http": {"restart": "transient"}}) as d:
        d.start()
        os.kill(d.worker("replay")["pid"], signal.SIGKILL)
        d.wait_worker("replay", lambda w: w["state"] == "stopped", what="replay stopped")
        # transient: an exit 0 (after SIGTERM) is the end; a crash is restarted.
        old = d.worker("http")["pid"]
        os.kill(old, signal.SIGKILL)
        d.wait_restarted("http", old)
        r = d.ctl("kill", "http", "--signal", "TERM")
        st.check(r.returncode == 0, r.stderr)
        w = d.wait_worker("http", lambda w: w["state"] == "stopped", what="http stopped")
        st.check(w["last_exit"]["code"] == 0, repr(w))
        st.check(d.ctl("status").returncode == st.CTL_NOT_RUNNING, "status should exit 3")
        # An operator can start a stopped worker again.
        r = d.ctl("restart", "replay")
        st.check(r.returncode == 0, r.stderr)
        st.check(d.worker("replay")["restarts"]["manual"] == 1, "manual counter")
        d.stop()


if __name__ == "__main__":
    st.main(globals())
