"""Restart intensity exceeded: skiffd stops every worker (reverse order),
removes its socket and status file, and exits with its escalation code (75);
no worker process is left."""
import os
import signal

import skiff_testlib as st


def test_intensity_exceeded_escalates():
    sup = {"strategy": "one_for_one", "intensity": "3", "period_ms": "600000",
           "backoff_min_ms": "1", "backoff_max_ms": "10"}
    with st.Skiffd(supervisor=sup) as d:
        d.start()
        worker_pids = set(d.pids().values())
        # Three restarts are allowed within the period...
        for i, name in enumerate(["raft", "replay", "raft"]):
            pid = d.worker(name)["pid"]
            os.kill(pid, signal.SIGKILL)
            d.wait_restarted(name, pid)
            worker_pids |= set(d.pids().values())
            st.check(d.status_dict()["supervisor"]["restarts_in_period"] == i + 1,
                     "restarts_in_period after %d kills" % (i + 1))
        # ...the fourth is one too many.
        os.kill(d.worker("http")["pid"], signal.SIGKILL)
        rc = d.wait_exit()
        st.check(rc == st.EXIT_ESCALATED, "skiffd exit code %s, expected %d" % (rc, st.EXIT_ESCALATED))
        d.assert_nothing_left()
        for pid in worker_pids:
            st.check(not st.pid_alive(pid), "worker pid %d still alive" % pid)
        log = d.log_text()
        st.check(" escalate " in log and "restarts_in_period=4" in log, "no escalate line in the log")
        # The survivors were stopped in reverse order: replay, raft, writer.
        stops = [line.split("worker=")[1].split()[0] for line in log.splitlines()
                 if " supervisor stop " in line]
        st.check(stops == ["replay", "raft", "writer"], "stop order %r" % stops)
        st.check(d.ctl("status").returncode == st.CTL_UNREACHABLE, "skiffctl still reaches skiffd")


if __name__ == "__main__":
    st.main(globals())
