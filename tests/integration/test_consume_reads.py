"""Consume end to end with the real curl against a real skiffd: offsets, limit,
max_bytes, both encodings round-tripping every byte value and a 1 MiB value,
consumer groups resuming after their own commits, reads outside the log (416
carrying log_start and high_watermark) and the topic's partition info. The API
choices are in workers/http/API_NOTES_READ.md."""

import json
import os

import skiff_testlib as st

JSON = {"Content-Type": "application/json"}


def call(d, method, path, data=None, headers=None, timeout_s=30):
    return st.curl_json(d.url(path), method, data, headers, timeout_s)


def expect(got, status, what):
    st.check(got[0] == status, "%s: status %s, expected %s, body %r" % (what, got[0], status, got[2]))
    return got[2]


def create(d, name, partitions):
    expect(call(d, "POST", "/broker/topics", json.dumps({"name": name, "partitions": partitions}),
                JSON), 201, "create %s" % name)


def produce(d, topic, value, query="partition=0", timeout_s=60):
    doc = expect(call(d, "POST", "/broker/topics/%s/produce?%s" % (topic, query), value, None,
                      timeout_s), 200, "produce to %s" % topic)
    return doc["offset"]


def commit(d, topic, group, partition, offset):
    return call(d, "POST", "/broker/commit", json.dumps(
        {"topic": topic, "group": group, "partition": partition, "offset": offset}), JSON)


def page(d, topic, partition=0, group="g", status=200, **query):
    return expect(st.consume_page(d, topic, group, partition, **query), status,
                  "consume %s/%s/%d %r" % (topic, group, partition, query))


def offsets(doc):
    return [m["offset"] for m in doc["messages"]]


def test_offsets_limit_and_next_offset():
    with st.Skiffd() as d:
        d.start()
        create(d, "seq", 2)
        for i in range(20):
            st.check(produce(d, "seq", "v%d" % i) == i, "produce %d" % i)
        produce(d, "seq", "other", "partition=1")
        doc = page(d, "seq", offset=3, limit=4)
        st.check(offsets(doc) == [3, 4, 5, 6] and doc["count"] == 4 and doc["next_offset"] == 7,
                 repr(doc))
        st.check([m["value"] for m in doc["messages"]] == ["v3", "v4", "v5", "v6"], repr(doc))
        st.check(all(m["partition"] == 0 and isinstance(m["timestamp_ms"], int) and m["key"] is None
                     for m in doc["messages"]), repr(doc))
        st.check(doc["high_watermark"] == 20 and doc["log_start"] == 0 and
                 doc["committed_offset"] is None, repr(doc))
        # Walking by next_offset visits every record once, in order.
        seen, at = [], 0
        for _ in range(20):
            doc = page(d, "seq", offset=at, limit=7)
            if not doc["messages"]:
                break
            seen += offsets(doc)
            at = doc["next_offset"]
        st.check(seen == list(range(20)) and at == 20, "walk saw %r, ended at %d" % (seen, at))
        doc = page(d, "seq", offset=20)
        st.check(doc["messages"] == [] and doc["count"] == 0 and doc["next_offset"] == 20, repr(doc))
        doc = page(d, "seq", partition=1, offset=0)
        st.check([m["value"] for m in doc["messages"]] == ["other"] and doc["high_watermark"] == 1,
                 "partitions are separate: %r" % doc)
        doc = page(d, "seq", offset=0, limit=100000)
        st.check(offsets(doc) == list(range(20)), repr(offsets(doc)))
        d.stop()


def test_max_bytes_bounds_a_page_but_always_returns_one_record():
    with st.Skiffd() as d:
        d.start()
        create(d, "mb", 1)
        for i in range(10):
            produce(d, "mb", bytes([65 + i]) * 100)
        doc = page(d, "mb", offset=0, max_bytes=250)
        st.check(offsets(doc) == [0, 1], "250 bytes of 100-byte values: %r" % offsets(doc))
        st.check(doc["next_offset"] == 2, repr(doc["next_offset"]))
        doc = page(d, "mb", offset=2, max_bytes=1)
        st.check(offsets(doc) == [2], "a value larger than max_bytes still comes: %r"
                 % offsets(doc))
        doc = page(d, "mb", offset=0, max_bytes=1000)
        st.check(offsets(doc) == list(range(10)), repr(offsets(doc)))
        doc = page(d, "mb", offset=0, max_bytes=1000, limit=3)
        st.check(offsets(doc) == [0, 1, 2], "limit wins when it is smaller: %r" % offsets(doc))
        d.stop()


def test_every_byte_value_round_trips_in_both_encodings():
    with st.Skiffd() as d:
        d.start()
        create(d, "bytes", 1)
        every = bytes(range(256))
        key = b"\xffk\x00"
        produce(d, "bytes", every, "partition=0&key=%FFk%00")       # offset 0
        produce(d, "bytes", bytes(range(128)), "partition=0&key=ascii")  # offset 1
        utf8 = "h\u00e9llo \u20ac \U0001F600 \"q\" \\ \t\n".encode()
        produce(d, "bytes", utf8)                                    # offset 2
        for b in range(256):                                         # offsets 3..258
            produce(d, "bytes", bytes([b]))
        for enc in ("b64", "text"):
            doc = page(d, "bytes", offset=0, limit=1000, encoding=enc)
            msgs = doc["messages"]
            st.check(offsets(doc) == list(range(259)), "%s: %d messages" % (enc, len(msgs)))
            st.check(st.message_bytes(msgs[0], "value") == every, "%s: all 256 bytes" % enc)
            st.check(st.message_bytes(msgs[0], "key") == key, "%s: binary key" % enc)
            st.check(st.message_bytes(msgs[1], "value") == bytes(range(128)), "%s: ascii" % enc)
            st.check(st.message_bytes(msgs[2], "value") == utf8, "%s: utf-8" % enc)
            for b in range(256):
                st.check(st.message_bytes(msgs[3 + b], "value") == bytes([b]),
                         "%s: byte 0x%02x came back as %r" % (enc, b, msgs[3 + b]))
            if enc == "b64":
                st.check(all("value_b64" in m and "key_b64" in m for m in msgs), "b64 fields")
                continue
            # Text: valid UTF-8 is a JSON string, anything else base64 for that message only.
            st.check(msgs[0].get("key_b64") is not None and msgs[0].get("value_b64") is not None,
                     "invalid UTF-8 falls back to base64: %r" % msgs[0])
            st.check(msgs[1]["value"] == "".join(map(chr, range(128))) and msgs[1]["key"] == "ascii",
                     "every ASCII byte, control bytes included, is text: %r" % msgs[1])
            st.check(msgs[2]["value"] == utf8.decode(), repr(msgs[2]))
            for b in range(256):
                field = "value" if b < 0x80 else "value_b64"
                st.check(field in msgs[3 + b], "byte 0x%02x: %r" % (b, msgs[3 + b]))
        d.stop()


def test_a_1_mib_value_round_trips():
    # ring_bytes must hold 4 bodies of body_bytes_max (+ 64 KiB each).
    with st.Skiffd(http={"body_bytes_max": "4194304"},
                   storage={"segment_bytes": "1048576", "ring_bytes": "33554432"}) as d:
        d.start()
        create(d, "big", 1)
        binary = os.urandom(1 << 20)
        line = "text with \"quotes\", \\backslashes\\, tabs\t, \u00e9 and \u20ac\n"
        text = (line * ((1 << 20) // len(line.encode()) + 1)).encode()[:1 << 20]
        text = text[:len(text.decode(errors="ignore").encode())]  # whole characters only
        produce(d, "big", binary)
        produce(d, "big", text)
        for enc in ("b64", "text"):
            doc = page(d, "big", offset=0, encoding=enc, max_bytes=4 << 20, timeout_s=60)
            st.check(offsets(doc) == [0, 1], "%s: %r" % (enc, offsets(doc)))
            st.check(st.message_bytes(doc["messages"][0], "value") == binary,
                     "%s: the 1 MiB binary value differs" % enc)
            st.check(st.message_bytes(doc["messages"][1], "value") == text,
                     "%s: the 1 MiB text value differs" % enc)
        doc = page(d, "big", offset=1, encoding="text", timeout_s=60)
        st.check("value" in doc["messages"][0], "valid UTF-8 stays text, however long")
        d.stop()


def test_groups_are_isolated_and_resume_after_their_own_commit():
    with st.Skiffd() as d:
        d.start()
        create(d, "grp", 1)
        for i in range(6):
            produce(d, "grp", "v%d" % i)
        expect(commit(d, "grp", "a", 0, 2), 200, "commit a")
        expect(commit(d, "grp", "b", 0, 0), 200, "commit b")
        doc = page(d, "grp", group="a", limit=2)
        st.check(offsets(doc) == [3, 4] and doc["committed_offset"] == 2, "a: %r" % doc)
        doc = page(d, "grp", group="b", limit=2)
        st.check(offsets(doc) == [1, 2] and doc["committed_offset"] == 0, "b: %r" % doc)
        doc = page(d, "grp", group="new", limit=2)
        st.check(offsets(doc) == [0, 1] and doc["committed_offset"] is None,
                 "a group that never committed starts at the log start: %r" % doc)
        # Reading does not commit: the same resume point again.
        doc = page(d, "grp", group="a", limit=2)
        st.check(offsets(doc) == [3, 4], "a again: %r" % doc)
        # An explicit offset overrides the resume point but still reports the commit.
        doc = page(d, "grp", group="a", offset=0, limit=1)
        st.check(offsets(doc) == [0] and doc["committed_offset"] == 2, repr(doc))
        expect(commit(d, "grp", "a", 0, 5), 200, "commit a to the end")
        doc = page(d, "grp", group="a")
        st.check(doc["messages"] == [] and doc["next_offset"] == 6, "a is caught up: %r" % doc)
        doc = page(d, "grp", group="b", limit=1)
        st.check(offsets(doc) == [1], "b did not move: %r" % doc)
        d.stop()
        d.start()  # commits are journal control entries: they survive a restart
        doc = page(d, "grp", group="b", limit=1)
        st.check(offsets(doc) == [1] and doc["committed_offset"] == 0, "b after restart: %r" % doc)
        d.stop()


def test_reads_outside_the_log_are_416_with_log_start():
    with st.Skiffd() as d:
        d.start()
        create(d, "del", 1)
        for i in range(10):
            produce(d, "del", "v%d" % i)
        expect(commit(d, "del", "slow", 0, 1), 200, "commit slow")
        expect(call(d, "POST", "/broker/delete-before",
                    json.dumps({"topic": "del", "partition": 0, "before_offset": 4}), JSON),
               200, "delete-before 4")
        for off in (0, 3):
            doc = page(d, "del", status=416, offset=off)
            st.check(doc["error"] == "out_of_range" and doc["log_start"] == 4 and
                     doc["high_watermark"] == 10 and doc["offset"] == off and doc["message"],
                     "below the log start: %r" % doc)
        # A group whose resume point was deleted is told so too, not silently moved on.
        doc = page(d, "del", group="slow", status=416)
        st.check(doc["log_start"] == 4 and doc["offset"] == 2, repr(doc))
        doc = page(d, "del", group="fresh")
        st.check(offsets(doc)[:1] == [4] and doc["log_start"] == 4, repr(doc))
        doc = page(d, "del", offset=4, limit=2)
        st.check(offsets(doc) == [4, 5] and doc["log_start"] == 4, repr(doc))
        doc = page(d, "del", status=416, offset=11)
        st.check(doc["high_watermark"] == 10 and doc["log_start"] == 4,
                 "past the high watermark: %r" % doc)
        doc = page(d, "del", offset=10, wait_ms=0)
        st.check(doc["messages"] == [] and doc["next_offset"] == 10, "at the end: %r" % doc)
        doc = expect(call(d, "GET", "/broker/topics/del"), 200, "topic info")
        st.check(doc["partitions"][0]["log_start"] == 4 and
                 doc["partitions"][0]["high_watermark"] == 10, repr(doc))
        d.stop()


def test_topic_info_lists_every_partition():
    with st.Skiffd() as d:
        d.start()
        create(d, "info", 3)
        for i in range(5):
            produce(d, "info", "x" * 10, "partition=%d" % (i % 2))
        doc = expect(call(d, "GET", "/broker/topics/info"), 200, "topic info")
        st.check(doc["name"] == "info" and len(doc["partitions"]) == 3, repr(doc))
        parts = doc["partitions"]
        st.check([p["partition"] for p in parts] == [0, 1, 2], repr(parts))
        st.check([p["high_watermark"] for p in parts] == [3, 2, 0], repr(parts))
        st.check(all(p["log_start"] == 0 for p in parts), repr(parts))
        st.check(parts[0]["bytes"] > parts[1]["bytes"] > 0 and parts[2]["bytes"] == 0, repr(parts))
        d.stop()


if __name__ == "__main__":
    st.main(globals())
