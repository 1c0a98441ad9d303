"""Issue 3, Integration: the writer SIGKILLed 100 times at random moments while a
test producer pushes numbered records into the ingress ring.

The producer (tests/integration/ring_producer, a C helper) takes the ring and its
eventfds from the http worker with pidfd_getfd() and pushes produce requests whose
values are rec-1, rec-2, ... while this script SIGKILLs the writer at random
moments and waits for the supervisor to bring it back each time. Then the producer
stops, waits until the writer has declared every pushed sequence durable, and
afterwards:
  - every record pushed (so every one the writer reported durable) is in the
    partition exactly once, in push order, at dense offsets 0, 1, 2, ...
  - `skiffd verify` finds the journal clean.
No HTTP request that produces is sent while the producer runs (the http worker is
attached to the same ring as a producer and must stay idle).

Environment: SKIFF_WRITER_KILLS (default 100), SKIFF_TEST_SEED (default: time).
"""

import json
import os
import random
import signal
import subprocess
import time

import skiff_testlib as st

KILLS = int(os.environ.get("SKIFF_WRITER_KILLS", "100"))
VALUE_BYTES = 64
PRODUCER_MAX = 2000000
PRODUCER_RATE = 20000  # records/s: spread the records over the whole kill phase
READ_LIMIT = 10000


def producer_path():
    build = os.environ.get("SKIFF_BUILD_DIR", "build")
    path = os.path.join(build, "tests", "integration", "ring_producer")
    st.check(os.path.exists(path), "%s is missing: tests/CMakeLists.txt must add_subdirectory(integration)"
             % path)
    return path


def read_partition(d, topic, count):
    """Every record of partition 0 from offset 0, as a list of (offset, value)."""
    out = []
    offset = 0
    for _ in range(count // 100 + 100):  # bounded: each read returns at least one record
        if offset >= count:
            break
        status, _, body = d.http_get("/broker/consume/%s/verifier/0?offset=%d&limit=%d"
                                     % (topic, offset, READ_LIMIT))
        st.check(status == 200, "consume at offset %d: HTTP %d %s" % (offset, status, body[:200]))
        doc = json.loads(body)
        msgs = doc["messages"]
        st.check(msgs, "consume at offset %d returned nothing (high watermark %s)"
                 % (offset, doc.get("high_watermark")))
        for m in msgs:
            out.append((m["offset"], m["value"]))
        offset = doc["next_offset"]
    return out


def kill_writer_repeatedly(d, prod, rng):
    for k in range(KILLS):
        time.sleep(rng.uniform(0.0, 0.03))
        if prod.poll() is not None:
            st.fail("the producer exited early (kill %d, exit %s): %s"
                    % (k, prod.returncode, prod.stderr.read()))
        pid = d.worker("writer")["pid"]
        os.kill(pid, signal.SIGKILL)
        d.wait_restarted("writer", pid)


def test_writer_killed_100_times_keeps_every_durable_record_exactly_once():
    seed = int(os.environ.get("SKIFF_TEST_SEED", str(int(time.time()))))
    print("seed %d kills %d" % (seed, KILLS), flush=True)
    rng = random.Random(seed)
    with st.Skiffd(supervisor={"intensity": "1000", "period_ms": "1000", "backoff_min_ms": "0",
                               "backoff_max_ms": "20", "hang_timeout_ms": "20000"},
                   storage={"segment_bytes": "1048576"}) as d:
        d.start()
        status, _, body = d.http_post("/broker/topics", json.dumps({"name": "kill", "partitions": 1}))
        st.check(status in (200, 201), "create topic: HTTP %d %s" % (status, body))
        # The first topic of a fresh data_dir has id 1.
        prod = subprocess.Popen([producer_path(), "--pid", str(d.worker("http")["pid"]), "--topic-id", "1",
                                 "--max", str(PRODUCER_MAX), "--value-bytes", str(VALUE_BYTES),
                                 "--rate", str(PRODUCER_RATE)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            kill_writer_repeatedly(d, prod, rng)
            out, err = prod.communicate(timeout=300)  # closes stdin: the producer stops
        finally:
            if prod.poll() is None:
                prod.kill()
                prod.wait(timeout=30)
        st.check(prod.returncode == 0, "producer failed (%s): %s" % (prod.returncode, err))
        lines = out.splitlines()
        head = lines[0].split()
        pushed, last_seq, durable = int(head[1]), int(head[3]), int(head[5])
        print("pushed %d records, last seq %d, durable seq %d" % (pushed, last_seq, durable), flush=True)
        st.check(pushed > 0 and durable >= last_seq, "not everything durable: %s" % lines[0])

        records = read_partition(d, "kill", pushed)
        st.check(len(records) == pushed, "%d records in the partition, %d pushed" % (len(records), pushed))
        for i, (offset, value) in enumerate(records):
            st.check(offset == i, "offset %d at position %d (not dense)" % (offset, i))
            want = "rec-%d" % (i + 1)
            st.check(value.rstrip(".") == want, "offset %d holds %r, expected %s (lost, reordered or "
                     "duplicated)" % (offset, value[:40], want))
        status, _, body = d.http_get("/broker/consume/kill/verifier/0?offset=%d&limit=10" % pushed)
        st.check(status == 200 and json.loads(body)["count"] == 0,
                 "records past the last one pushed: %s" % body[:300])
        log = d.log_text()
        print("writer restarts that answered ring records already in the journal: %d, torn tails cut: %d"
              % (log.count("writer ring_replayed"), log.count("journal_torn_tail_cut")), flush=True)
        d.stop()
        r = st.run([st.SKIFFD, "verify", "-c", d.ini_path], timeout_s=300)
        st.check(r.returncode == 0, "skiffd verify exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
        st.check("result: clean" in r.stdout, "verify output:\n%s" % r.stdout)
        st.check("%d records" % pushed in r.stdout, "verify counts differ:\n%s" % r.stdout)


if __name__ == "__main__":
    st.main(globals())
