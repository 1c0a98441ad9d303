"""Clients: the operations of the workload over skiff's HTTP API, and the
history they are recorded in (format in checker.py).

Outcomes. ok: the server said it happened. fail: the server said it did not
happen (a 4xx that changes nothing, or a connection that was never
established, so no byte of the request left). info: anything else (timeout,
dropped connection, 5xx): the operation may or may not have happened. A
produce that ends in info is retried with the same value and idempotency key
until it is acknowledged or definitely refused.
"""

import base64
import http.client
import json
import random
import socket
import threading
import time
import urllib.parse

# Produce answers that mean "nothing was written" (docs/http-api.md, "What a
# failed produce means"): every 4xx, and these error codes under 503 / 507.
# 503 "timeout" stays indeterminate (info): the record may still be written.
PRODUCE_DEFINITE_FAIL = {400, 401, 403, 404, 405, 409, 411, 413, 414, 415, 431}
PRODUCE_503_NOT_ENQUEUED = {"unavailable", "too_many_connections"}
PRODUCE_507_NOT_WRITTEN = {"insufficient_storage"}


class History:
    """Thread-safe JSONL history; each event's time is taken under the lock, so
    the file is in time order."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "w", encoding="utf-8")
        self.lock = threading.Lock()
        self.count = 0

    def record(self, process, typ, f, value):
        with self.lock:
            t = time.monotonic_ns()
            self.f.write(json.dumps({"process": process, "type": typ, "f": f, "value": value,
                                     "time": t}, separators=(",", ":")) + "\n")
            self.count += 1
            if self.count % 512 == 0:
                self.f.flush()
            return t

    def close(self):
        with self.lock:
            if not self.f.closed:
                self.f.close()


class Result:
    __slots__ = ("status", "body", "error", "sent")

    def __init__(self, status=None, body=None, error=None, sent=True):
        self.status, self.body, self.error, self.sent = status, body, error, sent

    def code(self):
        return self.body.get("error") if isinstance(self.body, dict) else None

    def describe(self):
        if self.status is None:
            return self.error
        msg = self.body.get("message") if isinstance(self.body, dict) else None
        return "%s %s%s" % (self.status, self.code() or "", (": " + msg) if msg else "")


def call(node, method, path, body=None, timeout_s=5.0, content_type=None):
    """One request on a fresh connection. sent=False only when the connection
    was never established (the request cannot have reached the server)."""
    conn = http.client.HTTPConnection(node.host, node.port, timeout=timeout_s)
    try:
        try:
            conn.connect()
        except OSError as e:
            return Result(error="connect: %s" % e.__class__.__name__, sent=False)
        headers = {"Connection": "close"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except socket.timeout:
            return Result(error="timeout")
        except (OSError, http.client.HTTPException) as e:
            return Result(error=e.__class__.__name__)
    finally:
        conn.close()
    try:
        parsed = json.loads(data) if data else None
    except ValueError:
        parsed = {"raw": data[:200].decode(errors="replace")}
    return Result(resp.status, parsed)


def q(s):
    return urllib.parse.quote(str(s), safe="")


def message_value(m):
    if "value" in m:
        return m["value"]
    if m.get("value_b64") is not None:
        return base64.b64decode(m["value_b64"]).decode("utf-8", "replace")
    return None


class Ops:
    """The operations, recorded in a history. One Ops per process."""

    def __init__(self, history, process, topic, produce_timeout_ms=3000, read_limit=200):
        self.h, self.process, self.topic = history, process, topic
        self.produce_timeout_ms = produce_timeout_ms
        self.read_limit = read_limit
        self.refused = False  # the last request could not connect

    def _call(self, *args, **kw):
        r = call(*args, **kw)
        self.refused = not r.sent
        return r

    def produce(self, node, partition, value, key, attempt):
        v = {"topic": self.topic, "partition": partition, "value": value, "key": key,
             "attempt": attempt, "node": node.name}
        self.h.record(self.process, "invoke", "produce", v)
        path = "/broker/topics/%s/produce?partition=%d&idempotency_key=%s&timeout_ms=%d" % (
            q(self.topic), partition, q(key), self.produce_timeout_ms)
        r = self._call(node, "POST", path, body=value.encode(),
                       timeout_s=self.produce_timeout_ms / 1000 + 3,
                       content_type="application/octet-stream")
        body = r.body if isinstance(r.body, dict) else {}
        if r.status == 200 and body.get("ok") and isinstance(body.get("offset"), int):
            v.update(offset=body["offset"], duplicate=bool(body.get("duplicate")),
                     durable=body.get("durable"))
            typ = "ok"
        elif not r.sent:
            typ = "fail"
        elif r.status in PRODUCE_DEFINITE_FAIL:
            typ = "fail"
        elif r.status == 503 and r.code() in PRODUCE_503_NOT_ENQUEUED:
            typ = "fail"
        elif r.status == 507 and r.code() in PRODUCE_507_NOT_WRITTEN:
            typ = "fail"
        else:
            typ = "info"
        v["error"] = None if typ == "ok" else r.describe()
        self.h.record(self.process, typ, "produce", v)
        return typ, v

    def consume(self, node, partition, group, offset=None, cont=False, final=False, limit=None,
                process=None):
        limit = limit or self.read_limit
        v = {"topic": self.topic, "partition": partition, "group": group, "offset": offset,
             "limit": limit, "continue": cont, "final": final, "node": node.name}
        proc = self.process if process is None else process
        self.h.record(proc, "invoke", "consume", v)
        path = "/broker/consume/%s/%s/%d?limit=%d&encoding=text" % (q(self.topic), q(group),
                                                                      partition, limit)
        if offset is not None:
            path += "&offset=%d" % offset
        r = self._call(node, "GET", path, timeout_s=10.0)
        body = r.body if isinstance(r.body, dict) else {}
        if r.status == 200 and isinstance(body.get("messages"), list):
            v.update(messages=[[m["offset"], message_value(m)] for m in body["messages"]],
                     next_offset=body.get("next_offset"), high_watermark=body.get("high_watermark"),
                     log_start=body.get("log_start"), committed_offset=body.get("committed_offset"))
            typ = "ok"
        elif r.status is not None and 400 <= r.status < 500:
            typ = "fail"
            if isinstance(body.get("log_start"), int):
                v["log_start"] = body["log_start"]
        else:
            typ = "info"
        if typ != "ok":
            v["error"] = r.describe()
        self.h.record(proc, typ, "consume", v)
        return typ, v

    def commit(self, node, partition, group, offset):
        v = {"topic": self.topic, "partition": partition, "group": group, "offset": offset,
             "node": node.name}
        self.h.record(self.process, "invoke", "commit", v)
        body = json.dumps({"topic": self.topic, "group": group, "partition": partition,
                           "offset": offset}).encode()
        r = self._call(node, "POST", "/broker/commit", body=body, timeout_s=10.0,
                 content_type="application/json")
        rb = r.body if isinstance(r.body, dict) else {}
        if r.status == 200:
            typ = "ok"
        elif not r.sent or (r.status is not None and 400 <= r.status < 500):
            typ = "fail"
            if r.status == 409 and isinstance(rb.get("committed_offset"), int):
                v["current"] = rb["committed_offset"]
        else:
            typ = "info"
        if typ != "ok":
            v["error"] = r.describe()
        self.h.record(self.process, typ, "commit", v)
        return typ, v

    def topic_info(self, node, process=None):
        proc = self.process if process is None else process
        v = {"topic": self.topic, "node": node.name}
        self.h.record(proc, "invoke", "topic-info", v)
        r = self._call(node, "GET", "/broker/topics/%s" % q(self.topic), timeout_s=10.0)
        body = r.body if isinstance(r.body, dict) else {}
        if r.status == 200 and isinstance(body.get("partitions"), list):
            v["partitions"] = body["partitions"]
            typ = "ok"
        else:
            typ = "fail" if r.status is not None and 400 <= r.status < 500 else "info"
            v["error"] = r.describe()
        self.h.record(proc, typ, "topic-info", v)
        return typ, v


class Client(threading.Thread):
    """One client process: a closed loop of random operations until the deadline.
    A produce in progress at the deadline keeps retrying (same key) until
    retry_deadline, so indeterminate outcomes get resolved after the heal."""

    def __init__(self, process, nodes, history, topic, partitions, seed, deadline, retry_deadline,
                 stop, groups=("g0", "g1"), weights=(0.6, 0.2, 0.2), produce_attempts_max=50):
        super().__init__(name="client-%d" % process, daemon=True)
        self.process, self.nodes, self.partitions = process, nodes, partitions
        self.ops = Ops(history, process, topic)
        self.rng = random.Random(seed)
        self.deadline, self.retry_deadline = deadline, retry_deadline
        self.stop_event = stop
        self.groups, self.weights = groups, weights
        self.produce_attempts_max = produce_attempts_max
        self.counter = 0
        self.cursor = {}  # partition -> next offset of this client's last read
        self.hw = {}      # partition -> highest high watermark seen
        self.error = None

    def node(self):
        return self.rng.choice(self.nodes)

    def run(self):
        try:
            while time.monotonic() < self.deadline and not self.stop_event.is_set():
                x = self.rng.random()
                if x < self.weights[0]:
                    self.produce_one()
                elif x < self.weights[0] + self.weights[1]:
                    self.read_one()
                else:
                    self.group_one()
                if self.ops.refused:
                    time.sleep(0.05)  # the node is down: do not spin
        except Exception as e:  # noqa: BLE001 - reported by the harness
            self.error = repr(e)

    def produce_one(self):
        self.counter += 1
        value = "%d-%d" % (self.process, self.counter)
        key = "k" + value
        partition = self.rng.randrange(self.partitions)
        uncertain = False
        for attempt in range(1, self.produce_attempts_max + 1):
            typ, v = self.ops.produce(self.node(), partition, value, key, attempt)
            if typ == "ok":
                return
            if typ == "fail" and not uncertain:
                return
            uncertain = uncertain or typ == "info"
            if time.monotonic() > self.retry_deadline or self.stop_event.is_set():
                return
            time.sleep(min(0.5, 0.02 * attempt) * (0.5 + self.rng.random()))

    def read_one(self):
        p = self.rng.randrange(self.partitions)
        group = "r%d" % self.process  # never commits: explicit-offset reads only
        if p in self.cursor and self.rng.random() < 0.8:
            offset, cont = self.cursor[p], True
        else:
            offset, cont = self.rng.randint(0, max(0, self.hw.get(p, 0))), False
        typ, v = self.ops.consume(self.node(), p, group, offset=offset, cont=cont)
        if typ == "ok":
            self.cursor[p] = v["next_offset"]
            self.hw[p] = max(self.hw.get(p, 0), v.get("high_watermark") or 0)
        else:
            self.cursor.pop(p, None)
            if isinstance(v.get("log_start"), int):
                self.hw[p] = max(self.hw.get(p, 0), v["log_start"])

    def group_one(self):
        p = self.rng.randrange(self.partitions)
        group = self.rng.choice(self.groups)
        node = self.node()
        typ, v = self.ops.consume(node, p, group)
        if typ == "ok" and v["messages"]:
            self.ops.commit(node, p, group, v["messages"][-1][0])
