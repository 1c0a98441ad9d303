"""SIGSTOP of a worker: its heartbeat stops, skiffd SIGKILLs it after
hang_timeout_ms and restarts it with reason "hang"; the others keep their
pids (one_for_one)."""
import os
import signal

import skiff_testlib as st


def test_sigstop_is_a_hang():
    with st.Skiffd(supervisor={"hang_timeout_ms": "2000"}) as d:
        d.start()
        for name in ("replay", "writer"):
            pids = d.pids()
            os.kill(pids[name], signal.SIGSTOP)
            w = d.wait_restarted(name, pids[name])
            e = w["last_exit"]
            st.check(e["reason"] == "hang" and e["signal"] == 9,
                     "last_exit of %s after SIGSTOP: %r" % (name, e))
            st.wait_for(lambda: not st.pid_alive(pids[name]), 10, "the stopped process gone")
            now = d.pids()
            for other in st.WORKERS:
                if other != name:
                    st.check(now[other] == pids[other], "%s restarted because %s hung" % (other, name))
            ev = d.events(name, limit=1)
            st.check(ev and ev[0]["reason"] == "hang" and ev[0]["pid"] == pids[name],
                     "events: %r" % ev)
        st.check(" hang worker=replay" in d.log_text(), "no hang line in the log")
        d.stop()


if __name__ == "__main__":
    st.main(globals())
