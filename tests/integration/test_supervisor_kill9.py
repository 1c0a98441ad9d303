"""kill -9 each worker 20 times in a row: it comes back ready each time and
the counters match; under one_for_one the other workers keep their pids,
under rest_for_one the later ones are restarted (and the earlier ones are
not), under one_for_all every worker is."""
import os
import signal

import skiff_testlib as st

KILLS = 20
# Fast and never escalating: up to 1000 restarts per 100 ms.
FAST = {"intensity": "1000", "period_ms": "100", "backoff_min_ms": "1",
        "backoff_max_ms": "20"}


def kill9(pid):
    os.kill(pid, signal.SIGKILL)


def auto(w):
    return w["restarts"]["auto"]


def test_one_for_one_keeps_the_other_pids():
    with st.Skiffd(supervisor=dict(FAST, strategy="one_for_one")) as d:
        d.start()
        for name in st.WORKERS:
            for i in range(KILLS):
                before = d.status_dict()
                pids = d.pids(before)
                kill9(pids[name])
                w = d.wait_restarted(name, pids[name])
                now = d.status_dict()
                w = d.worker(name, now)
                st.check(auto(w) == i + 1, "%s restarts.auto %d after %d kills" % (name, auto(w), i + 1))
                for other in st.WORKERS:
                    if other != name:
                        st.check(d.pids(now)[other] == pids[other],
                                 "%s changed pid when %s was killed" % (other, name))
                        st.check(d.worker(other, now)["state"] == "running", "%s not running" % other)
            e = d.worker(name)["last_exit"]
            st.check(e["reason"] == "signal" and e["signal"] == 9 and e["code"] is None,
                     "last_exit of %s: %r" % (name, e))
        final = d.status_dict()
        for name in st.WORKERS:
            w = d.worker(name, final)
            st.check(auto(w) == KILLS and w["restarts"]["manual"] == 0,
                     "%s restarts %r" % (name, w["restarts"]))
            events = d.events(name)
            st.check(len(events) == KILLS, "%s has %d exits recorded" % (name, len(events)))
            st.check(all(e["signal"] == 9 and e["reason"] == "signal" for e in events),
                     "unexpected events for %s" % name)
        d.stop()


def test_rest_for_one_restarts_the_later_workers():
    with st.Skiffd(supervisor=dict(FAST, strategy="rest_for_one")) as d:
        d.start()
        expected = {n: 0 for n in st.WORKERS}
        for k, name in enumerate(st.WORKERS):
            for _ in range(KILLS):
                pids = d.pids()
                kill9(pids[name])
                later = st.WORKERS[k:]
                for n in later:
                    d.wait_restarted(n, pids[n])
                    expected[n] += 1
                d.wait_ready()
                now = d.status_dict()
                for n in st.WORKERS[:k]:
                    st.check(d.pids(now)[n] == pids[n], "%s restarted when %s was killed" % (n, name))
                for n in st.WORKERS:
                    st.check(auto(d.worker(n, now)) == expected[n],
                             "%s restarts.auto %d, expected %d" % (n, auto(d.worker(n, now)), expected[n]))
            for n in st.WORKERS[k + 1:]:
                e = d.worker(n)["last_exit"]
                st.check(e["reason"] == "killed-by-strategy", "%s last_exit %r" % (n, e))
        # writer: 20; raft: 40; replay: 60; http: 80
        st.check([expected[n] for n in st.WORKERS] == [20, 40, 60, 80], "expected %r" % expected)
        d.stop()


def test_one_for_all_restarts_everyone():
    with st.Skiffd(supervisor=dict(FAST, strategy="one_for_all")) as d:
        d.start()
        for i in range(3):
            pids = d.pids()
            kill9(pids["http"])
            for n in st.WORKERS:
                d.wait_restarted(n, pids[n])
            now = d.wait_ready()
            for n in st.WORKERS:
                st.check(auto(d.worker(n, now)) == i + 1, "%s restarts %r" % (n, d.worker(n, now)))
        for n in st.WORKERS[:3]:
            st.check(d.worker(n)["last_exit"]["reason"] == "killed-by-strategy", "reason of %s" % n)
        d.stop()


def test_exits_are_seen_without_pidfd():
    """The SIGCHLD + waitpid fallback (kernels without pidfd_open) sees every exit."""
    with st.Skiffd(env={"SKIFF_FAULT_NO_PIDFD": "1"}, supervisor=FAST) as d:
        d.start()
        for name in st.WORKERS:
            for i in range(3):
                pid = d.worker(name)["pid"]
                kill9(pid)
                w = d.wait_restarted(name, pid)
                st.check(auto(w) == i + 1, "%s restarts %r" % (name, w["restarts"]))
        d.stop()


if __name__ == "__main__":
    st.main(globals())
