"""kill -9 of skiffd: every worker is gone within 1 s (PR_SET_PDEATHSIG), and a
new skiffd starts on the same directories (lock released, stale socket
replaced)."""
import time

import skiff_testlib as st


def test_kill9_of_skiffd_takes_every_worker():
    with st.Skiffd() as d:
        d.start()
        pids = list(d.pids().values())
        st.check(all(st.pid_alive(p) for p in pids), "a worker is not alive before the kill")
        d.kill9()  # returns once skiffd is dead and reaped
        deadline = time.monotonic() + 1.0
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = [p for p in pids if st.pid_alive(p)]
            time.sleep(0.01)
        alive = [p for p in pids if st.pid_alive(p)]
        st.check(not alive, "workers still alive 1 s after skiffd died: %r" % alive)
        d.assert_no_process_left()
        # A new skiffd on the same data_dir and run_dir starts cleanly.
        d.start()
        st.check(all(p not in pids for p in d.pids().values()), "old pids reused?")
        d.stop()


if __name__ == "__main__":
    st.main(globals())
