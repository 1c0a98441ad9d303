"""Long-poll consume (wait_ms) against a real skiffd: a waiting consume answers as
soon as a record arrives in its partition, answers empty once wait_ms has passed,
works for a group's resume position, and is not woken for other partitions'
records. Each waiting consume runs in a thread with its own curl; every wait is
bounded."""

import json
import threading
import time

import skiff_testlib as st

JSON = {"Content-Type": "application/json"}
LONG_WAIT_MS = 30000  # far longer than any test needs: a missed wake-up fails by content


def expect(got, status, what):
    st.check(got[0] == status, "%s: status %s, expected %s, body %r" % (what, got[0], status, got[2]))
    return got[2]


def create(d, name, partitions):
    expect(st.curl_json(d.url("/broker/topics"), "POST",
                        json.dumps({"name": name, "partitions": partitions}), JSON), 201, "create")


def produce(d, topic, value, partition):
    path = "/broker/topics/%s/produce?partition=%d" % (topic, partition)
    return expect(st.curl_json(d.url(path), "POST", value), 200, "produce")["offset"]


class Poll:
    """One consume in a thread; .result is (status, headers, doc) once done."""

    def __init__(self, d, topic, partition, group="g", **query):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(d, topic, partition, group, query))
        self.thread.start()

    def _run(self, d, topic, partition, group, query):
        self.result = st.consume_page(d, topic, group, partition, timeout_s=90, **query)

    def join(self, what):
        self.thread.join(120)
        st.check(not self.thread.is_alive(), "%s: the consume never returned" % what)
        return expect(self.result, 200, what)


def wait_until_parked(d):
    """Give the polls time to reach the server and park. This only orders events for
    the test: if a produce still overtook a poll, the poll finds the record at once
    and the assertions (made on content) hold just the same."""
    time.sleep(0.3)


def test_long_poll_returns_when_a_record_arrives():
    with st.Skiffd() as d:
        d.start()
        create(d, "lp", 1)
        produce(d, "lp", "old", 0)
        poll = Poll(d, "lp", 0, offset=1, wait_ms=LONG_WAIT_MS, encoding="text")
        wait_until_parked(d)
        produce(d, "lp", "new", 0)
        doc = poll.join("long-poll at the end")
        st.check([(m["offset"], m["value"]) for m in doc["messages"]] == [(1, "new")] and
                 doc["next_offset"] == 2 and doc["high_watermark"] == 2, repr(doc))
        d.stop()


def test_long_poll_returns_empty_after_wait_ms():
    with st.Skiffd() as d:
        d.start()
        create(d, "quiet", 1)
        produce(d, "quiet", "only", 0)
        t0 = time.monotonic()
        doc = expect(st.consume_page(d, "quiet", "g", 0, offset=1, wait_ms=400), 200, "quiet poll")
        waited = time.monotonic() - t0
        st.check(doc["messages"] == [] and doc["count"] == 0 and doc["next_offset"] == 1 and
                 doc["high_watermark"] == 1 and doc["log_start"] == 0, repr(doc))
        # A lower bound, not a timing target: answering before wait_ms would be a bug.
        st.check(waited >= 0.4, "answered after %.3fs, before wait_ms=400 passed" % waited)
        # Records already there: no wait at all, whatever wait_ms says.
        doc = expect(st.consume_page(d, "quiet", "g", 0, offset=0, wait_ms=LONG_WAIT_MS,
                                     timeout_s=90), 200, "poll with data")
        st.check([m["offset"] for m in doc["messages"]] == [0], repr(doc))
        d.stop()


def test_long_poll_waits_at_a_groups_resume_position():
    with st.Skiffd() as d:
        d.start()
        create(d, "cg", 1)
        for i in range(3):
            produce(d, "cg", "v%d" % i, 0)
        expect(st.curl_json(d.url("/broker/commit"), "POST", json.dumps(
            {"topic": "cg", "group": "w", "partition": 0, "offset": 2}), JSON), 200, "commit")
        poll = Poll(d, "cg", 0, group="w", wait_ms=LONG_WAIT_MS, encoding="text")
        wait_until_parked(d)
        produce(d, "cg", "v3", 0)
        doc = poll.join("group long-poll")
        st.check([(m["offset"], m["value"]) for m in doc["messages"]] == [(3, "v3")] and
                 doc["committed_offset"] == 2, repr(doc))
        d.stop()


def test_long_polls_wake_for_their_own_partition():
    with st.Skiffd() as d:
        d.start()
        create(d, "two", 2)
        p0 = Poll(d, "two", 0, offset=0, wait_ms=LONG_WAIT_MS, encoding="text")
        p1 = Poll(d, "two", 1, offset=0, wait_ms=LONG_WAIT_MS, encoding="text")
        wait_until_parked(d)
        produce(d, "two", "for-1", 1)
        doc = p1.join("partition 1 poll")
        st.check([m["value"] for m in doc["messages"]] == ["for-1"], repr(doc))
        st.check(p0.thread.is_alive(), "the partition 0 poll returned for a partition 1 record: %r"
                 % (p0.result,))
        produce(d, "two", "for-0", 0)
        doc = p0.join("partition 0 poll")
        st.check([(m["partition"], m["value"]) for m in doc["messages"]] == [(0, "for-0")],
                 repr(doc))
        d.stop()


def test_long_poll_wakes_while_other_partitions_are_busy():
    """Commits to partition 1 keep coming (each re-checks the waiting read, at a
    bounded rate); the read on partition 0 still wakes for its own record."""
    with st.Skiffd() as d:
        d.start()
        create(d, "busy", 2)
        stop = threading.Event()

        def churn():
            for i in range(2000):  # bounded: at most this many produces
                if stop.is_set():
                    return
                produce(d, "busy", "noise-%d" % i, 1)

        noise = threading.Thread(target=churn)
        noise.start()
        try:
            poll = Poll(d, "busy", 0, offset=0, wait_ms=LONG_WAIT_MS, encoding="text")
            wait_until_parked(d)
            st.check(poll.thread.is_alive(), "returned for partition 1 records: %r" % (poll.result,))
            produce(d, "busy", "signal", 0)
            doc = poll.join("poll on the quiet partition")
        finally:
            stop.set()
            noise.join(120)
        st.check([(m["partition"], m["value"]) for m in doc["messages"]] == [(0, "signal")],
                 repr(doc))
        d.stop()


def test_many_long_polls_all_wake():
    with st.Skiffd() as d:
        d.start()
        create(d, "many", 1)
        polls = [Poll(d, "many", 0, group="g%d" % i, offset=0, wait_ms=LONG_WAIT_MS,
                      encoding="text") for i in range(20)]
        wait_until_parked(d)
        produce(d, "many", "all", 0)
        for i, p in enumerate(polls):
            doc = p.join("poll %d" % i)
            st.check([m["value"] for m in doc["messages"]] == ["all"], "poll %d: %r" % (i, doc))
        d.stop()


def test_long_polls_whose_clients_left_do_no_harm():
    with st.Skiffd() as d:
        d.start()
        create(d, "gone", 2)
        # Two clients give up after 1 s: one poll is then answered with a record, the other
        # at the end of its wait, both to a closed connection.
        for p in (0, 1):
            got = st.consume_page(d, "gone", "g", p, timeout_s=1, offset=0, wait_ms=2500)
            st.check(got[0] == 0, "the client should have given up first: %r" % (got,))
        produce(d, "gone", "after", 0)
        time.sleep(2.5)  # past both waits: the answers went to closed connections
        for p in (0, 1):
            doc = expect(st.consume_page(d, "gone", "g", p, offset=0, encoding="text"), 200,
                         "partition %d afterwards" % p)
            st.check([m["value"] for m in doc["messages"]] == (["after"] if p == 0 else []),
                     repr(doc))
        d.stop()  # checks the log for sanitizer reports in the ASan build


if __name__ == "__main__":
    st.main(globals())
