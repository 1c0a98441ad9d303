"""Per-worker kill test (issue 4): a load generator produces numbered records
with idempotency keys, retrying on dropped connections and 503s with the same
key, while `skiffctl kill --signal KILL` hits a random worker every 200 ms (100
kills, every worker 25 times). Afterwards a full consume of every partition
must hold every acknowledged record exactly once, at the offset it was
acknowledged with, with dense offsets and each producer's order kept.

Each producer thread owns one partition slot (thread i writes to partition
i % PARTITIONS) and sends record n+1 only after record n was acknowledged, so
its records must appear in the log in order."""

import http.client
import random
import threading
import time

import skiff_testlib as st

PARTITIONS = 4
THREADS = 8
KILLS_PER_WORKER = 25
KILL_EVERY_S = 0.2
RECORD_RETRY_S = 90.0  # bound for one record to get through (restarts, timeouts)
TOPIC = "killtest"


class Producer(threading.Thread):
    def __init__(self, d, idx, stop):
        super().__init__(daemon=True)
        self.d = d
        self.idx = idx
        self.partition = idx % PARTITIONS
        self.stop = stop
        self.acked = []       # (n, offset)
        self.unexpected = []  # (status, body) that are neither 200 nor 503
        self.error = None
        self.conn = None

    def send(self, rid):
        """One attempt: (status, parsed body) or (None, None) on a dropped connection."""
        import json
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.d.http_port, timeout=10)
            self.conn.request("POST", "/broker/topics/%s/produce?partition=%d&idempotency_key=%s"
                              % (TOPIC, self.partition, rid), body=rid.encode())
            resp = self.conn.getresponse()
            body = resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            try:
                return resp.status, json.loads(body)
            except ValueError:
                return resp.status, body
        except (OSError, http.client.HTTPException):
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return None, None

    def produce(self, n):
        rid = "t%d-%06d" % (self.idx, n)
        deadline = time.monotonic() + RECORD_RETRY_S
        while time.monotonic() < deadline:
            status, doc = self.send(rid)
            if status == 200:
                st.check(doc["partition"] == self.partition, "%s acked on %r" % (rid, doc))
                self.acked.append((n, doc["offset"]))
                return
            if status not in (None, 503):
                self.unexpected.append((status, doc))
            time.sleep(0.02)
        st.fail("record %s was not acknowledged within %.0fs" % (rid, RECORD_RETRY_S))

    def run(self):
        try:
            n = 0
            while not self.stop.is_set():
                self.produce(n)
                n += 1
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = e


def kill_randomly(d):
    """100 SIGKILLs, every worker 25 times, in random order, one every 200 ms."""
    order = [w for w in st.WORKERS for _ in range(KILLS_PER_WORKER)]
    random.Random(4).shuffle(order)
    done = {w: 0 for w in st.WORKERS}
    for w in order:
        t0 = time.monotonic()
        if d.ctl("kill", w, "--signal", "KILL").returncode == 0:
            done[w] += 1
        time.sleep(max(0.0, KILL_EVERY_S - (time.monotonic() - t0)))
    return done


def check_partition(d, p, producers):
    recs = st.consume_all(d, TOPIC, p)  # checks that offsets are dense
    where = {}
    for offset, _, value, _ in recs:
        rid = value.decode()
        st.check(rid not in where, "%s appears twice in partition %d (offsets %d and %d)"
                 % (rid, p, where.get(rid, -1), offset))
        where[rid] = offset
    for pr in producers:
        if pr.partition != p:
            continue
        last = -1
        for n, offset in pr.acked:
            rid = "t%d-%06d" % (pr.idx, n)
            st.check(where.get(rid) == offset, "%s acknowledged at offset %d, found at %r"
                     % (rid, offset, where.get(rid)))
            st.check(offset > last, "%s is out of order" % rid)
            last = offset
    return len(recs)


def test_killing_any_worker_loses_no_acknowledged_record():
    with st.Skiffd(http={"request_timeout_ms": "2000"},
                   supervisor={"intensity": "1000", "period_ms": "10000"}) as d:
        d.start()
        status, _, doc = st.curl_json(d.url("/broker/topics"), "POST",
                                      '{"name":"%s","partitions":%d}' % (TOPIC, PARTITIONS))
        st.check(status == 201, "create: %s %r" % (status, doc))
        stop = threading.Event()
        producers = [Producer(d, i, stop) for i in range(THREADS)]
        for pr in producers:
            pr.start()
        try:
            kills = kill_randomly(d)
        finally:
            stop.set()
            for pr in producers:
                pr.join(RECORD_RETRY_S + 30)
        for pr in producers:
            st.check(not pr.is_alive(), "producer %d did not finish" % pr.idx)
            if pr.error:
                raise pr.error
            st.check(not pr.unexpected, "producer %d got %r" % (pr.idx, pr.unexpected[:3]))
            st.check(pr.acked, "producer %d got no acknowledgement at all" % pr.idx)
        for w, n in kills.items():
            st.check(n >= 3, "%s was killed only %d times" % (w, n))
        d.wait_ready()
        total = sum(check_partition(d, p, producers) for p in range(PARTITIONS))
        acked = sum(len(pr.acked) for pr in producers)
        st.check(total >= acked, "%d records for %d acknowledgements" % (total, acked))
        print("kills %r, %d acknowledged, %d in the log" % (kills, acked, total), flush=True)
        d.stop()


if __name__ == "__main__":
    st.main(globals())
