"""The acknowledgement path writer -> raft -> http, with a real skiffd: every
produce is answered by the wake-up chain (the writer wakes raft once per group
commit, raft wakes http, http drains the writer's answers on that wake-up), not
by http's 10 ms safety-net tick; and when raft loses its wake-ups (a fault hook)
the tick still answers every request and the counter shows it. Also checks the
scheduling each worker asks for: raft and http SCHED_BATCH, and the writer's
segment-preparing thread in the idle I/O class."""

import http.client
import json
import os
import re

import skiff_testlib as st

PRODUCES = 200


def produce_n(d, topic, n):
    """n produces one after the other on one keep-alive connection; all must be 200."""
    conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=30)
    try:
        for i in range(n):
            conn.request("POST", "/broker/topics/%s/produce" % topic, body=b"record-%d" % i)
            r = conn.getresponse()
            body = r.read()
            st.check(r.status == 200, "produce %d: %s %r" % (i, r.status, body))
            st.check(json.loads(body)["offset"] == i, "produce %d: %r" % (i, body))
    finally:
        conn.close()


def tick_answers(d):
    status, _, body = st.curl(d.url("/metrics"))
    st.check(status == 200, "/metrics: %s" % status)
    m = re.search(r"^skiff_http_tick_answers_total (\d+)$", body.decode(), re.M)
    st.check(m is not None, "skiff_http_tick_answers_total missing from /metrics")
    return int(m.group(1))


def create(d, topic):
    status, _, doc = st.curl_json(d.url("/broker/topics"), "POST",
                                  json.dumps({"name": topic, "partitions": 1}),
                                  {"Content-Type": "application/json"})
    st.check(status == 201, "create %s: %s %r" % (topic, status, doc))


def io_class(tid):
    """The I/O scheduling class of one thread, as ionice (util-linux) names it."""
    r = st.run(["ionice", "-p", str(tid)])
    st.check(r.returncode == 0, "ionice -p %d: %r" % (tid, r.stderr))
    return r.stdout.split(":")[0].strip()


def test_workers_scheduling_policy_and_io_class():
    with st.Skiffd() as d:
        d.start()
        pids = d.pids()
        for name in st.WORKERS:
            want = os.SCHED_BATCH if name in ("raft", "http") else os.SCHED_OTHER
            got = os.sched_getscheduler(pids[name])
            st.check(got == want, "%s: scheduling policy %d, expected %d" % (name, got, want))
        st.check("sched_batch_refused" not in d.log_text(), "a worker could not set SCHED_BATCH")
        # The writer's segment-preparing thread yields the disk to group commits;
        # the writer's own thread does not.
        writer = pids["writer"]
        tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % writer))
        classes = {tid: io_class(tid) for tid in tids}
        st.check(classes[writer] != "idle", "writer main thread in the idle I/O class: %r" % classes)
        st.check(list(classes.values()).count("idle") == 1,
                 "expected exactly one idle-class thread (segment preparation): %r" % classes)
        st.check("journal_prepare_ioprio" not in d.log_text(), "the idle I/O class was refused")
        d.stop()


def test_produces_are_answered_by_wake_ups():
    with st.Skiffd() as d:
        d.start()
        create(d, "acks")
        before = tick_answers(d)
        produce_n(d, "acks", PRODUCES)
        late = tick_answers(d) - before
        # A lost wake-up costs a whole tick and shows here as one per produce; a
        # tick that happens to run in the microseconds between raft's store of the
        # commit index and its wake-up may take one now and then.
        st.check(late <= PRODUCES // 20,
                 "%d of %d produces were answered by the safety-net tick, not a wake-up"
                 % (late, PRODUCES))
        d.stop()


def test_lost_commit_wake_ups_are_caught_by_the_tick():
    n = 20
    with st.Skiffd(env={"SKIFF_FAULT_NO_COMMIT_WAKE": "raft"}) as d:
        d.start()
        create(d, "silent")
        before = tick_answers(d)
        produce_n(d, "silent", n)
        late = tick_answers(d) - before
        st.check(late >= n, "raft never woke http, yet only %d of %d produces show as tick answers"
                 % (late, n))
        d.stop()


if __name__ == "__main__":
    st.main(globals())
