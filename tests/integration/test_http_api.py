"""The HTTP API end to end, with the real curl against a real skiffd: every
route, the error statuses, binary values, base64, idempotency, NDJSON batches,
consumer groups, commit and resume (across a restart), long-poll, delete-before
and retention. The field names are the seed API's (see workers/http/API_NOTES.md)."""

import base64
import json
import os
import threading

import skiff_testlib as st

JSON = {"Content-Type": "application/json"}


def call(d, method, path, data=None, headers=None, timeout_s=30):
    return st.curl_json(d.url(path), method, data, headers, timeout_s)


def create(d, name, partitions):
    return call(d, "POST", "/broker/topics", json.dumps({"name": name, "partitions": partitions}),
                JSON)


def produce(d, topic, value, query="", timeout_s=30):
    path = "/broker/topics/%s/produce%s" % (topic, ("?" + query) if query else "")
    return call(d, "POST", path, value, None, timeout_s)


def expect(got, status, what):
    st.check(got[0] == status, "%s: status %s, expected %s, body %r" % (what, got[0], status, got[2]))
    return got[2]


def expect_error(got, status, code, what):
    doc = expect(got, status, what)
    st.check(isinstance(doc, dict) and doc.get("error") == code and doc.get("message"),
             "%s: error body %r, expected code %s" % (what, doc, code))
    return doc


def test_topics_are_created_listed_and_checked():
    with st.Skiffd() as d:
        d.start()
        doc = expect(create(d, "events", 4), 201, "create")
        st.check(doc == {"ok": True, "topic": "events", "partitions": 4, "created": True}, repr(doc))
        doc = expect(create(d, "events", 4), 200, "create again, same count")
        st.check(doc["created"] is False, repr(doc))
        expect_error(create(d, "events", 3), 409, "conflict", "create with another count")
        for bad in ("a b", "..", ".", "x" * 129, "", "caf\u00e9", "a/b"):
            expect_error(create(d, bad, 1), 400, "bad_request", "name %r" % bad)
        expect_error(create(d, "t0", 0), 400, "bad_request", "0 partitions")
        expect_error(create(d, "t65", 65), 400, "bad_request", "over partitions_max")
        for body in ("{", "[]", '{"partitions":2}', '{"name":7}', '{"name":"t","partitions":"2"}',
                     '{"name":"t","partitions":1.5}', '{"name":"t","name":"u"}', ""):
            expect_error(call(d, "POST", "/broker/topics", body, JSON), 400, "bad_request",
                         "body %r" % body)
        status, _, doc = call(d, "GET", "/broker/topics")
        st.check(status == 200 and [t["name"] for t in doc["topics"]] == ["events"], repr(doc))
        st.check(doc["topics"][0]["partitions"] == 4, repr(doc))
        expect(produce(d, "events", "x", "partition=2"), 200, "produce")
        doc = expect(call(d, "GET", "/broker/topics/events"), 200, "topic info")
        parts = doc["partitions"]
        st.check(len(parts) == 4, repr(doc))
        for p in parts:
            st.check({"log_start", "high_watermark", "bytes"} <= set(p), repr(p))
        st.check(parts[2]["high_watermark"] == 1, repr(parts))
        expect_error(call(d, "GET", "/broker/topics/nope"), 404, "not_found", "unknown topic info")
        d.stop()


def test_produce_then_consume_in_text_and_base64():
    with st.Skiffd() as d:
        d.start()
        expect(create(d, "orders", 1), 201, "create")
        values = ["hello", '{"item":"widget"}', "", "third \u00e9"]
        for i, v in enumerate(values):
            doc = expect(produce(d, "orders", v.encode(), "key=k%d" % i), 200, "produce")
            st.check(doc["ok"] is True and doc["offset"] == i and doc["partition"] == 0 and
                     doc["durable"] is True and doc["duplicate"] is False and
                     doc["topic"] == "orders", repr(doc))
        doc = expect(call(d, "GET", "/broker/consume/orders/g/0?offset=0&encoding=text"), 200,
                     "consume text")
        st.check([m["value"] for m in doc["messages"]] == values, repr(doc))
        st.check([m["key"] for m in doc["messages"]] == ["k0", "k1", "k2", "k3"], repr(doc))
        st.check(doc["count"] == 4 and doc["next_offset"] == 4 and doc["high_watermark"] == 4,
                 repr(doc))
        for m in doc["messages"]:
            st.check(m["partition"] == 0 and isinstance(m["timestamp_ms"], int), repr(m))
        doc = expect(call(d, "GET", "/broker/consume/orders/g/0?offset=1&limit=2&encoding=b64"),
                     200, "consume b64")
        got = [base64.b64decode(m["value_b64"]).decode() for m in doc["messages"]]
        st.check(got == values[1:3] and doc["next_offset"] == 3, repr(doc))
        st.check(base64.b64decode(doc["messages"][0]["key_b64"]) == b"k1", repr(doc))
        d.stop()


def test_binary_values_survive_byte_for_byte():
    with st.Skiffd() as d:
        d.start()
        expect(create(d, "bin", 1), 201, "create")
        every_byte = bytes(range(256))
        big = os.urandom(1024 * 1024 - 4096)  # 1 MiB less what headers and key take
        key = bytes([0, 0xff, ord("&"), ord("="), ord("%")])
        quoted = "".join("%%%02X" % b for b in key)
        expect(produce(d, "bin", every_byte, "key=" + quoted), 200, "all 256 bytes")
        expect(produce(d, "bin", big, timeout_s=60), 200, "1 MiB value")
        expect(produce(d, "bin", every_byte[::-1]), 200, "reversed")
        recs = st.consume_all(d, "bin", 0, limit=2)
        st.check([r[0] for r in recs] == [0, 1, 2], repr([r[0] for r in recs]))
        st.check(recs[0][1] == key and recs[0][2] == every_byte, "all-bytes record differs")
        st.check(recs[1][2] == big, "the 1 MiB value differs")
        st.check(recs[2][2] == every_byte[::-1], "reversed record differs")
        d.stop()


def test_idempotent_retries_return_the_first_offset():
    with st.Skiffd() as d:
        d.start()
        expect(create(d, "idem", 2), 201, "create")
        first = expect(produce(d, "idem", "a", "idempotency_key=req-1&partition=1"), 200, "first")
        again = expect(produce(d, "idem", "a", "idempotency_key=req-1&partition=1"), 200, "retry")
        st.check(again["offset"] == first["offset"] and again["duplicate"] is True and
                 first["duplicate"] is False, "%r then %r" % (first, again))
        other = expect(produce(d, "idem", "b", "idempotency_key=req-2&partition=1"), 200, "other")
        st.check(other["offset"] == first["offset"] + 1, repr(other))
        batch = "x\ny\n"
        b1 = expect(call(d, "POST", "/broker/topics/idem/produce-ndjson?partition=0&"
                         "idempotency_key=batch-1", batch), 200, "batch")
        b2 = expect(call(d, "POST", "/broker/topics/idem/produce-ndjson?partition=0&"
                         "idempotency_key=batch-1", batch), 200, "batch retry")
        st.check(b2["first_offset"] == b1["first_offset"] and b2["duplicate"] is True, repr(b2))
        st.check(len(st.consume_all(d, "idem", 1)) == 2, "partition 1 holds 2 records")
        st.check(len(st.consume_all(d, "idem", 0)) == 2, "partition 0 holds one batch of 2")
        d.stop()
        d.start()  # the keys live in meta.db and survive a restart
        again = expect(produce(d, "idem", "a", "idempotency_key=req-1&partition=1"), 200,
                       "retry after restart")
        st.check(again["offset"] == first["offset"] and again["duplicate"] is True, repr(again))
        d.stop()


def test_partition_choice_by_key_and_round_robin():
    with st.Skiffd() as d:
        d.start()
        expect(create(d, "spread", 4), 201, "create")
        seen = {expect(produce(d, "spread", "v", "key=user-7"), 200, "keyed")["partition"]
                for _ in range(5)}
        st.check(len(seen) == 1, "one key went to partitions %r" % seen)
        rr = [expect(produce(d, "spread", "v"), 200, "unkeyed")["partition"] for _ in range(8)]
        st.check(sorted(set(rr)) == [0, 1, 2, 3], "round robin used %r" % rr)
        expect_error(produce(d, "spread", "v", "partition=4"), 404, "not_found", "partition 4")
        d.stop()


def test_ack_none_answers_before_the_record_is_durable():
    with st.Skiffd() as d:
        d.start()
        expect(create(d, "fast", 1), 201, "create")
        doc = expect(produce(d, "fast", "v", "ack=none"), 200, "ack=none")
        st.check(doc["durable"] is False and doc["offset"] is None and doc["duplicate"] is None,
                 repr(doc))
        st.wait_for(lambda: len(st.consume_all(d, "fast", 0)) == 1, 30, "the ack=none record")
        d.stop()


def test_ndjson_batches_are_all_or_nothing():
    with st.Skiffd(http={"batch_records_max": "1000"}) as d:
        d.start()
        expect(create(d, "nd", 1), 201, "create")
        lines = ["line-%d" % i for i in range(1000)]
        doc = expect(call(d, "POST", "/broker/topics/nd/produce-ndjson",
                          "\r\n".join(lines) + "\n"), 200, "1000 lines")
        st.check(doc["first_offset"] == 0 and doc["count"] == 1000 and doc["durable"] is True,
                 repr(doc))
        expect_error(call(d, "POST", "/broker/topics/nd/produce-ndjson",
                          "\n".join(lines + ["one too many"])), 400, "bad_request", "1001 lines")
        expect_error(call(d, "POST", "/broker/topics/nd/produce-ndjson", "\n\n"), 400,
                     "bad_request", "no records")
        doc = expect(call(d, "POST", "/broker/topics/nd/produce-ndjson",
                          '"alpha"\n{"b":2}\n\n"t\\tab"'), 200, "mixed lines")
        st.check(doc["first_offset"] == 1000 and doc["count"] == 3, repr(doc))
        recs = st.consume_all(d, "nd", 0)
        st.check(len(recs) == 1003, "%d records" % len(recs))
        st.check([r[2] for r in recs[1000:]] == [b"alpha", b'{"b":2}', b"t\tab"], repr(recs[1000:]))
        st.check(recs[999][2] == b"line-999", repr(recs[999]))
        d.stop()


def test_consumer_groups_are_isolated_and_resume_after_commit():
    with st.Skiffd() as d:
        d.start()
        expect(create(d, "cg", 2), 201, "create")
        for i in range(10):
            expect(produce(d, "cg", "v%d" % i, "partition=1"), 200, "produce")

        def commit(group, offset, partition=1):
            return call(d, "POST", "/broker/commit", json.dumps(
                {"topic": "cg", "group": group, "partition": partition, "offset": offset}), JSON)

        def resume(group):
            return expect(call(d, "GET", "/broker/consume/cg/%s/1?limit=3" % group), 200, "resume")

        doc = expect(commit("g1", 4), 200, "commit")
        st.check(doc["ok"] is True and doc["offset"] == 4, repr(doc))
        doc = resume("g1")
        st.check([m["offset"] for m in doc["messages"]] == [5, 6, 7] and
                 doc["committed_offset"] == 4, repr(doc))
        doc = resume("g2")
        st.check([m["offset"] for m in doc["messages"]] == [0, 1, 2] and
                 doc["committed_offset"] is None, repr(doc))
        err = expect_error(commit("g1", 2), 409, "conflict", "backwards commit")
        st.check(err.get("committed_offset") == 4, repr(err))
        err = expect_error(commit("g1", 500), 400, "out_of_range", "commit past the end")
        err = expect_error(commit("g1", 10), 400, "out_of_range", "commit of the high watermark")
        st.check(err.get("high_watermark") == 10, repr(err))
        expect_error(commit("g1", 1, partition=7), 404, "not_found", "commit to partition 7")
        for body in ('{"topic":"cg","group":"g1","partition":1}', '{"topic":"cg"',
                     '{"topic":"cg","group":"g 1","partition":1,"offset":1}',
                     '{"topic":"cg","group":"g1","partition":1,"offset":"1"}'):
            expect_error(call(d, "POST", "/broker/commit", body, JSON), 400, "bad_request", body)
        expect(commit("g1", 7), 200, "commit forward")
        d.stop()
        d.start()  # committed offsets are durable control entries
        doc = resume("g1")
        st.check([m["offset"] for m in doc["messages"]] == [8, 9] and doc["committed_offset"] == 7,
                 repr(doc))
        d.stop()


def test_long_poll_answers_when_a_record_arrives():
    with st.Skiffd() as d:
        d.start()
        expect(create(d, "lp", 1), 201, "create")
        doc = expect(call(d, "GET", "/broker/consume/lp/g/0?offset=0&wait_ms=200"), 200,
                     "empty long-poll")
        st.check(doc["count"] == 0 and doc["messages"] == [], repr(doc))
        result = {}

        def poll():
            result["got"] = call(d, "GET", "/broker/consume/lp/g/0?offset=0&wait_ms=20000",
                                 timeout_s=60)

        t = threading.Thread(target=poll)
        t.start()
        # The poll is waiting (it cannot have an answer before the produce below).
        expect(produce(d, "lp", "wake up"), 200, "produce")
        t.join(60)
        st.check(not t.is_alive(), "the long-poll did not return")
        doc = expect(result["got"], 200, "long-poll")
        st.check([m["value"] for m in doc["messages"]] == ["wake up"], repr(doc))
        d.stop()


def test_delete_before_and_retention():
    with st.Skiffd() as d:
        d.start()
        expect(create(d, "ret", 1), 201, "create")
        for i in range(10):
            expect(produce(d, "ret", "v%d" % i), 200, "produce")
        doc = expect(call(d, "POST", "/broker/delete-before",
                          '{"topic":"ret","partition":0,"before_offset":5}', JSON), 200,
                     "delete-before")
        st.check(doc["ok"] is True and doc["before_offset"] == 5, repr(doc))
        status, _, doc = call(d, "GET", "/broker/consume/ret/g/0?offset=2")
        st.check(status >= 400 and doc.get("log_start") == 5,
                 "a read below log_start: %s %r" % (status, doc))
        recs = st.consume_all(d, "ret", 0, start=5)
        st.check([r[2] for r in recs] == [b"v%d" % i for i in range(5, 10)], repr(recs))
        expect_error(call(d, "POST", "/broker/delete-before",
                          '{"topic":"ret","partition":0,"before_offset":99}', JSON), 400,
                     "out_of_range", "delete past the end")
        doc = expect(call(d, "POST", "/broker/retention", '{"topic":"ret","ttl_ms":60000}', JSON),
                     200, "retention")
        st.check(doc["ttl_ms"] == 60000 and doc["max_bytes"] == 0, repr(doc))
        for body in ('{"topic":"*","ttl_ms":1}', '{"topic":"ret","partition":0,"ttl_ms":1}',
                     '{"topic":"ret"}', '{"topic":"ret","ttl_ms":-1}'):
            expect_error(call(d, "POST", "/broker/retention", body, JSON), 400, "bad_request", body)
        expect_error(call(d, "POST", "/broker/retention", '{"topic":"nope","ttl_ms":1}', JSON),
                     404, "not_found", "retention of an unknown topic")
        d.stop()


def test_error_statuses():
    with st.Skiffd(http={"body_bytes_max": "65536"}) as d:
        d.start()
        expect(create(d, "err", 2), 201, "create")
        expect_error(call(d, "GET", "/nope"), 404, "not_found", "unknown path")
        expect_error(produce(d, "missing", "x"), 404, "not_found", "unknown topic")
        expect_error(produce(d, "bad%20name", "x"), 400, "bad_request", "bad topic in path")
        status, hdrs, doc = call(d, "GET", "/broker/topics/err/produce")
        expect_error((status, hdrs, doc), 405, "method_not_allowed", "GET on produce")
        st.check(hdrs.get("allow") == "POST", repr(hdrs))
        expect_error(call(d, "DELETE", "/broker/topics"), 405, "method_not_allowed", "DELETE")
        # curl -X POST without data sends neither Content-Length nor a body.
        expect_error(call(d, "POST", "/broker/topics/err/produce"), 411, "length_required",
                     "no Content-Length")
        for hdrs in ({"Expect": "100-continue"}, {}):
            status, _, _ = st.curl(d.url("/broker/topics/err/produce"), "POST", b"x" * 70000,
                                   hdrs, expect_continue=True)
            st.check(status == 413, "a body over body_bytes_max (%r): %s" % (hdrs, status))
        big = {"X-Pad": "p" * 20000}
        expect_error(call(d, "GET", "/health", headers=big), 431, "headers_too_large",
                     "20 KB of headers")
        for q in ("partition=x", "partition=1&partition=1", "ack=sometimes", "timeout_ms=0",
                  "key=%zz"):
            expect_error(produce(d, "err", "x", q), 400, "bad_request", q)
        for q in ("limit=0", "encoding=hex", "wait_ms=99999999", "offset=-1"):
            expect_error(call(d, "GET", "/broker/consume/err/g/0?" + q), 400, "bad_request", q)
        expect_error(call(d, "GET", "/broker/consume/err/g/9"), 404, "not_found", "partition 9")
        expect_error(call(d, "GET", "/broker/consume/err/g/x"), 400, "bad_request", "partition x")
        expect_error(call(d, "GET", "/broker/consume/err/g%20x/0"), 400, "bad_request", "group")
        # Nothing above changed anything.
        doc = expect(call(d, "GET", "/broker/topics/err"), 200, "topic info")
        st.check(all(p["high_watermark"] == 0 for p in doc["partitions"]), repr(doc))
        d.stop()


def test_health_ready_metrics_and_status():
    with st.Skiffd() as d:
        d.start()
        doc = expect(call(d, "GET", "/health"), 200, "health")
        st.check(doc == {"ok": True}, repr(doc))
        doc = st.wait_for(lambda: call(d, "GET", "/ready")[2] == {"ready": True}, 30, "/ready")
        expect(create(d, "m", 1), 201, "create")
        expect(produce(d, "m", "x"), 200, "produce")
        status, hdrs, body = st.curl(d.url("/metrics"))
        text = body.decode()
        st.check(status == 200 and hdrs.get("content-type", "").startswith("text/plain"),
                 "%s %r" % (status, hdrs))
        for name in ('skiff_http_requests_total{route="produce",status="200"} 1',
                     "skiff_produce_latency_seconds_bucket", "skiff_fsync_records_total",
                     "skiff_fsync_duration_seconds_count", "skiff_ingress_ring_bytes",
                     'skiff_worker_restarts_total{worker="writer"}', "skiff_records_per_fsync"):
            st.check(name in text, "%s missing from /metrics" % name)
        status, _, doc = call(d, "GET", "/status")
        st.check(status == 200 and [w["name"] for w in doc["workers"]] == st.WORKERS, repr(doc))
        status, _, _ = st.curl(d.url("/health"), "HEAD")
        st.check(status == 200, "HEAD /health: %s" % status)
        d.stop()


if __name__ == "__main__":
    st.main(globals())
