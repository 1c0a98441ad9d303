"""HTTP/1.1 on the wire, with raw sockets: what curl never shows. Pipelined
requests are answered in order; Expect: 100-continue; chunked bodies;
HTTP/1.0 keep-alive rules; HEAD; requests the server refuses before they are
whole (not HTTP, body too large, too many header lines) get the JSON error and
a close, and change nothing; a client that goes away while its produce waits
for the commit does not disturb the worker, and the record is written once."""

import json
import socket
import time

import skiff_testlib as st

CLOSE_BOUND_S = 20.0  # generous bound for "the server closed it"; not a timing assertion


def connect(d):
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    s.settimeout(10)
    return s


class Reader:
    """Reads HTTP/1.1 responses (Content-Length bodies) off one socket."""

    def __init__(self, s):
        self.s = s
        self.buf = b""

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise EOFError("closed")
        self.buf += chunk

    def response(self, head=False):
        """(status, headers, body) of the next response; head: a reply to HEAD (no body)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        top, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = top.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode()
        length = int(hdrs.get("content-length", "0"))
        if status == 100 or head:
            return status, hdrs, b""
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, hdrs, body

    def closed(self, bound_s=CLOSE_BOUND_S):
        """True when the server closes the socket (EOF or reset) within bound_s."""
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            self.s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                if self.s.recv(4096) == b"":
                    return True
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
        return False


def produce_req(topic, value, extra=""):
    return (b"POST /broker/topics/%s/produce?partition=0%s HTTP/1.1\r\nHost: t\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (topic.encode(), extra.encode(), len(value), value))


def high_watermark(d, topic):
    status, _, doc = st.curl_json(d.url("/broker/topics/" + topic))
    st.check(status == 200, "topic info: %s" % status)
    return doc["partitions"][0]["high_watermark"]


def expect_refusal(r, status, code):
    got, hdrs, body = r.response()
    st.check(got == status, "expected %d, got %d %r" % (status, got, body[:200]))
    doc = json.loads(body)
    st.check(doc["error"] == code and doc["message"], "error body %r" % doc)
    st.check(hdrs.get("connection") == "close", "no Connection: close on a refusal: %r" % hdrs)
    st.check(hdrs.get("content-type") == "application/json", repr(hdrs))
    st.check(r.closed(), "the connection stays open after a %d" % status)


def test_pipelined_requests_are_answered_in_order():
    with st.Skiffd() as d:
        d.start()
        st.curl(d.url("/broker/topics"), "POST", '{"name":"p","partitions":1}')
        s = connect(d)
        r = Reader(s)
        # Ten produces, a read and a bad path in one write, split at odd places.
        wire = b"".join(produce_req("p", b"v%d" % i) for i in range(10))
        wire += b"GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
        s.sendall(wire[:7])
        time.sleep(0.05)
        s.sendall(wire[7:333])
        s.sendall(wire[333:])
        for i in range(10):
            status, _, body = r.response()
            doc = json.loads(body)
            st.check(status == 200 and doc["offset"] == i, "produce %d: %s %r" % (i, status, doc))
        status, _, body = r.response()
        st.check(status == 200 and json.loads(body) == {"ok": True}, "health: %s %r" % (status, body))
        status, _, _ = r.response()
        st.check(status == 404, "bad path: %s" % status)
        values = [value for _, _, value, _ in st.consume_all(d, "p", 0)]
        st.check(values == [b"v%d" % i for i in range(10)], "log: %r" % values)
        s.close()
        d.stop()


def test_expect_continue_chunked_head_and_http10():
    with st.Skiffd() as d:
        d.start()
        st.curl(d.url("/broker/topics"), "POST", '{"name":"w","partitions":1}')
        s = connect(d)
        r = Reader(s)
        # Expect: 100-continue: the server says go on before the body is sent.
        s.sendall(b"POST /broker/topics/w/produce?partition=0 HTTP/1.1\r\nHost: t\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        status, _, _ = r.response()
        st.check(status == 100, "no 100 Continue: %s" % status)
        s.sendall(b"first")
        status, _, body = r.response()
        st.check(status == 200 and json.loads(body)["offset"] == 0, "%s %r" % (status, body))
        # A chunked body, binary, with a chunk extension and a trailer.
        value = bytes(range(256))
        s.sendall(b"POST /broker/topics/w/produce?partition=0 HTTP/1.1\r\nHost: t\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"
                  b"80;ext=1\r\n" + value[:128] + b"\r\n80\r\n" + value[128:] + b"\r\n"
                  b"0\r\nX-Trailer: 1\r\n\r\n")
        status, _, body = r.response()
        st.check(status == 200 and json.loads(body)["offset"] == 1, "%s %r" % (status, body))
        # HEAD: the headers GET would send, no body; the connection goes on.
        s.sendall(b"HEAD /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        status, hdrs, _ = r.response(head=True)
        st.check(status == 200 and hdrs["content-length"] == "11", "HEAD: %s %r" % (status, hdrs))
        status, _, body = r.response()
        st.check(status == 200 and body == b'{"ok":true}', "after HEAD: %s %r" % (status, body))
        s.close()
        msgs = st.consume_all(d, "w", 0)
        st.check([v for _, _, v, _ in msgs] == [b"first", value], "log: %r" % msgs)
        # HTTP/1.0: closed after the reply unless the client asks for keep-alive.
        s = connect(d)
        r = Reader(s)
        s.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        status, hdrs, _ = r.response()
        st.check(status == 200 and hdrs.get("connection") == "keep-alive", repr(hdrs))
        s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        status, hdrs, _ = r.response()
        st.check(status == 200 and hdrs.get("connection") == "close", repr(hdrs))
        st.check(r.closed(), "an HTTP/1.0 connection without keep-alive stays open")
        s.close()
        d.stop()


def test_refused_requests_get_json_and_close_and_change_nothing():
    with st.Skiffd(http={"body_bytes_max": "4096"}) as d:
        d.start()
        st.curl(d.url("/broker/topics"), "POST", '{"name":"x","partitions":1}')
        cases = [
            (b"BREW /coffee HTCPCP/1.0\r\n\r\n", 400, "bad_request"),
            (b"GET /health HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400,
             "bad_request"),
            (b"POST /broker/topics/x/produce HTTP/1.1\r\nContent-Length: 9999999\r\n\r\n", 413,
             "too_large"),
            (b"POST /broker/topics/x/produce HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"1000\r\n" + b"z" * 4096 + b"\r\n1\r\nz\r\n0\r\n\r\n", 413, "too_large"),
            (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) +
             b"\r\n", 431, "headers_too_large"),
            (b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431,
             "headers_too_large"),
        ]
        for wire, status, code in cases:
            s = connect(d)
            try:
                s.sendall(wire)
            except OSError:
                pass  # the server may answer and close before it has read everything
            expect_refusal(Reader(s), status, code)
            s.close()
        # 413 before the body: with Expect, no 100 and the refusal at once.
        s = connect(d)
        s.sendall(b"POST /broker/topics/x/produce HTTP/1.1\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 5000\r\n\r\n")
        expect_refusal(Reader(s), 413, "too_large")
        s.close()
        st.check(high_watermark(d, "x") == 0, "a refused request wrote something")
        status, _, body = st.curl(d.url("/metrics"))
        st.check(b'route="none",status="413"' in body, "refusals are not counted")
        d.stop()


def test_client_gone_while_its_produce_waits():
    # hang_timeout_ms keeps the paused raft from being restarted meanwhile.
    with st.Skiffd(supervisor={"hang_timeout_ms": "60000"}) as d:
        d.start()
        st.curl(d.url("/broker/topics"), "POST", '{"name":"g","partitions":1}')
        status, _, doc = st.curl_json(d.url("/status"))
        http_pid = [w for w in doc["workers"] if w["name"] == "http"][0]["pid"]
        r = d.ctl("kill", "raft", "--signal", "STOP")
        st.check(r.returncode == 0, "pause raft: %s" % r.stderr)
        try:
            socks = []
            for i in range(20):
                s = connect(d)
                s.sendall(produce_req("g", b"gone-%d" % i, "&idempotency_key=gone-%d" % i))
                socks.append(s)
            time.sleep(0.3)  # the produces are in the ring, waiting for the commit
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()  # reset: the server finds out only when it answers
        finally:
            r = d.ctl("kill", "raft", "--signal", "CONT")
            st.check(r.returncode == 0, "resume raft: %s" % r.stderr)
        st.wait_for(lambda: high_watermark(d, "g") == 20, 30, "the 20 records to be committed")
        # The retries find their records; the worker serves on (no restart).
        for i in range(20):
            status, _, doc = st.curl_json(
                d.url("/broker/topics/g/produce?partition=0&idempotency_key=gone-%d" % i), "POST",
                "gone-%d" % i)
            st.check(status == 200 and doc["duplicate"] is True, "retry %d: %s %r" % (i, status, doc))
        st.check(high_watermark(d, "g") == 20, "a retry wrote a second copy")
        status, _, doc = st.curl_json(d.url("/status"))
        http = [w for w in doc["workers"] if w["name"] == "http"][0]
        st.check(http["pid"] == http_pid and http["last_exit"] is None,
                 "the http worker restarted: %r" % http)
        d.stop()


if __name__ == "__main__":
    st.main(globals())
