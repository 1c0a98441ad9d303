"""The read path when the replay worker dies or hangs, against a real skiffd:
reads get 503 with Retry-After (never a wrong or empty success) while replay is
down, produces keep working, and reads recover once replay is back, including a
long-poll that was waiting across the restart."""

import json
import os
import random
import signal
import threading
import time

import skiff_testlib as st

JSON = {"Content-Type": "application/json"}
RECORDS = 200


def expect(got, status, what):
    st.check(got[0] == status, "%s: status %s, expected %s, body %r" % (what, got[0], status, got[2]))
    return got[2]


def setup(d, topic="k"):
    expect(st.curl_json(d.url("/broker/topics"), "POST",
                        json.dumps({"name": topic, "partitions": 1}), JSON), 201, "create")
    body = "".join("v%03d\n" % i for i in range(RECORDS))
    doc = expect(st.curl_json(d.url("/broker/topics/%s/produce-ndjson?partition=0" % topic),
                              "POST", body), 200, "produce batch")
    st.check(doc["first_offset"] == 0 and doc["count"] == RECORDS, repr(doc))


def check_page(doc, offset, what):
    """A 200 page must hold exactly the records from offset on, in order."""
    got = [(m["offset"], m["value"]) for m in doc["messages"]]
    want = [(o, "v%03d" % o) for o in range(offset, offset + len(got))]
    st.check(got == want and got, "%s: page at %d is %r" % (what, offset, got[:3]))


def expect_unavailable(got, what):
    status, headers, doc = got
    st.check(status == 503 and headers.get("retry-after") == "1" and
             isinstance(doc, dict) and doc.get("error") == "unavailable",
             "%s: %s %r %r" % (what, status, headers.get("retry-after"), doc))


def wait_reads_work(d, topic="k", timeout_s=30):
    """Until a consume answers 200 again (nng redials within a few hundred ms)."""
    def probe():
        status, _, doc = st.consume_page(d, topic, "g", 0, offset=0, limit=1)
        return doc if status == 200 else None
    return st.wait_for(probe, timeout_s, "reads to work again")


def test_reads_get_503_while_replay_is_down_then_recover():
    with st.Skiffd(**{"worker.replay": {"restart": "temporary"}}) as d:
        d.start()
        setup(d)
        check_page(expect(st.consume_page(d, "k", "g", 0, offset=5, limit=3), 200, "before"), 5,
                   "before")
        os.kill(d.worker("replay")["pid"], signal.SIGKILL)
        d.wait_worker("replay", lambda w: w["state"] == "stopped", what="replay stopped")
        for q in ({"offset": 0}, {}, {"offset": 0, "wait_ms": 1000}):
            expect_unavailable(st.consume_page(d, "k", "g", 0, **q), "consume %r" % q)
        expect_unavailable(st.curl_json(d.url("/broker/topics/k")), "topic info")
        st.check(st.curl_json(d.url("/ready"))[0] == 503, "/ready while replay is down")
        # The write path does not depend on replay.
        doc = expect(st.curl_json(d.url("/broker/topics/k/produce?partition=0"), "POST",
                                  "v%03d" % RECORDS), 200, "produce while replay is down")
        st.check(doc["offset"] == RECORDS, repr(doc))
        r = d.ctl("restart", "replay")
        st.check(r.returncode == 0, r.stderr)
        d.wait_worker("replay", lambda w: w["state"] == "running" and w["ready"],
                      what="replay back")
        wait_reads_work(d)
        recs = st.consume_all(d, "k", 0, limit=64)
        st.check([r[2] for r in recs] == [b"v%03d" % i for i in range(RECORDS + 1)],
                 "%d records after the restart" % len(recs))
        d.stop()


def test_replay_killed_under_reads_never_serves_a_wrong_page():
    with st.Skiffd() as d:
        d.start()
        setup(d)
        stop = threading.Event()
        seen = {"ok": 0, "unavailable": 0}
        errors = []

        def reader():
            rnd = random.Random(7)
            deadline = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < deadline:
                off = rnd.randrange(RECORDS)
                got = st.consume_page(d, "k", "g", 0, offset=off, limit=50, encoding="text")
                try:
                    if got[0] == 200:
                        check_page(got[2], off, "during kills")
                        seen["ok"] += 1
                    else:
                        expect_unavailable(got, "during kills")
                        seen["unavailable"] += 1
                except st.TestFailure as e:
                    errors.append(str(e))
                    return

        t = threading.Thread(target=reader)
        t.start()
        try:
            for _ in range(5):
                old = d.worker("replay")["pid"]
                os.kill(old, signal.SIGKILL)
                d.wait_restarted("replay", old)
                wait_reads_work(d)
        finally:
            stop.set()
            t.join(150)
        st.check(not t.is_alive(), "the reader thread did not stop")
        st.check(not errors, errors[0] if errors else "")
        st.check(seen["ok"] > 0, "no read succeeded: %r" % seen)
        check_page(expect(st.consume_page(d, "k", "g", 0, offset=100, limit=100, encoding="text"),
                          200, "after"), 100, "after the kills")
        d.stop()


def test_long_poll_waiting_across_a_replay_restart_still_wakes():
    with st.Skiffd() as d:
        d.start()
        setup(d)
        result = {}

        def poll():
            result["got"] = st.consume_page(d, "k", "g", 0, timeout_s=90, offset=RECORDS,
                                            wait_ms=30000, encoding="text")

        t = threading.Thread(target=poll)
        t.start()
        time.sleep(0.3)  # let it park (if it has not, it still gets the record below)
        old = d.worker("replay")["pid"]
        os.kill(old, signal.SIGKILL)
        d.wait_restarted("replay", old)
        wait_reads_work(d)
        expect(st.curl_json(d.url("/broker/topics/k/produce?partition=0"), "POST", "late"), 200,
               "produce")
        t.join(120)
        st.check(not t.is_alive(), "the long-poll never returned")
        status, headers, doc = result["got"]
        if status == 503:
            # It was in flight (not parked) when replay died: a 503 is the honest answer.
            expect_unavailable(result["got"], "long-poll in flight at the kill")
        else:
            st.check(status == 200 and [m["value"] for m in doc["messages"]] == ["late"],
                     "long-poll across the restart: %s %r" % (status, doc))
        d.stop()


def test_a_hung_replay_gets_503_not_a_hung_client():
    with st.Skiffd() as d:
        d.start()
        setup(d)
        pid = d.worker("replay")["pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            expect_unavailable(st.consume_page(d, "k", "g", 0, offset=0, timeout_s=60),
                               "consume while replay is stopped")
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass  # the supervisor's hang detection killed it meanwhile
        wait_reads_work(d)
        check_page(expect(st.consume_page(d, "k", "g", 0, offset=7, limit=5, encoding="text"), 200,
                          "after"), 7, "after the hang")
        d.stop()


if __name__ == "__main__":
    st.main(globals())
