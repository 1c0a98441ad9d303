"""Connection limits of the HTTP server: connections past [http] connections_max
are answered 503 and closed, and idle or trickling connections are closed after
[http] idle_timeout_ms, so no client can hold a slot forever."""

import socket
import time

import skiff_testlib as st

CLOSE_BOUND_S = 20.0  # generous bound for "the server closed it"; not a timing assertion


def connect(d):
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    s.settimeout(10)
    return s


def read_response(s):
    """One HTTP/1.1 response with a Content-Length body; b"" when the server closed."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def health(s):
    s.sendall(b"GET /health HTTP/1.1\r\nHost: skiff\r\n\r\n")
    return read_response(s)


def closed_by_server(s, bound_s):
    """True when the server closes s (EOF or reset) within bound_s."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if s.recv(4096) == b"":
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
    return False


def test_connections_past_the_limit_are_refused():
    with st.Skiffd(http={"connections_max": "4"}) as d:
        d.start()
        held = [connect(d) for _ in range(4)]
        for s in held:  # every one is accepted and served, and stays open (keep-alive)
            st.check(health(s).startswith(b"HTTP/1.1 200"), "a held connection is not served")
        extra = connect(d)
        try:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: skiff\r\n\r\n")
        except OSError:
            pass
        got = b""
        try:
            got = read_response(extra)
        except (ConnectionResetError, socket.timeout):
            pass
        st.check(got == b"" or (got.startswith(b"HTTP/1.1 503") and b"too_many_connections" in got),
                 "the fifth connection got %r" % got[:200])
        st.check(closed_by_server(extra, CLOSE_BOUND_S), "the fifth connection stays open")
        extra.close()
        held[0].close()

        def served():
            s = connect(d)
            try:
                return health(s).startswith(b"HTTP/1.1 200")
            except OSError:
                return False
            finally:
                s.close()

        st.wait_for(served, CLOSE_BOUND_S, "a new connection once a slot is free", poll_s=0.2)
        for s in held[1:]:
            st.check(health(s).startswith(b"HTTP/1.1 200"), "a held connection was dropped")
            s.close()
        status, _, body = st.curl(d.url("/metrics"))
        st.check(b"skiff_http_connections_refused_total" in body, "no refusal counter")
        d.stop()


def test_idle_and_trickling_connections_are_closed():
    with st.Skiffd(http={"idle_timeout_ms": "1000"}) as d:
        d.start()
        idle = connect(d)
        st.check(health(idle).startswith(b"HTTP/1.1 200"), "not served")
        st.check(closed_by_server(idle, CLOSE_BOUND_S), "an idle keep-alive connection stays open")
        idle.close()
        # A client that sends one header byte every 200 ms never completes a request.
        slow = connect(d)
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: skiff\r\nX-Slow: ")
        deadline = time.monotonic() + CLOSE_BOUND_S
        closed = False
        while time.monotonic() < deadline and not closed:
            try:
                slow.sendall(b"a")
            except OSError:
                closed = True
                break
            closed = closed_by_server(slow, 0.2)
        st.check(closed, "a trickling client kept its connection for %.0fs" % CLOSE_BOUND_S)
        slow.close()
        status, _, _ = st.curl(d.url("/health"))
        st.check(status == 200, "the server is fine afterwards: %s" % status)
        d.stop()


def pause(d, worker):
    r = d.ctl("kill", worker, "--signal", "STOP")
    st.check(r.returncode == 0, "skiffctl kill %s --signal STOP: %s" % (worker, r.stderr))


def resume(d, worker):
    r = d.ctl("kill", worker, "--signal", "CONT")
    st.check(r.returncode == 0, "skiffctl kill %s --signal CONT: %s" % (worker, r.stderr))


def test_paused_acknowledgements_time_out_with_503_and_retry_is_safe():
    # hang_timeout_ms is long enough that the paused raft is not restarted meanwhile.
    with st.Skiffd(supervisor={"hang_timeout_ms": "60000"}) as d:
        d.start()
        status, _, _ = st.curl(d.url("/broker/topics"), "POST", '{"name":"p","partitions":1}')
        st.check(status == 201, "create: %s" % status)
        pause(d, "raft")
        try:
            path = "/broker/topics/p/produce?idempotency_key=slow-1&timeout_ms=300"
            status, hdrs, doc = st.curl_json(d.url(path), "POST", "v")
            st.check(status == 503 and doc["error"] == "timeout" and
                     "idempotency_key" in doc["message"], "%s %r" % (status, doc))
            st.check(hdrs.get("retry-after") == "1", repr(hdrs))
        finally:
            resume(d, "raft")
        status, _, doc = st.curl_json(d.url("/broker/topics/p/produce?idempotency_key=slow-1"),
                                      "POST", "v")
        st.check(status == 200 and doc["offset"] == 0 and doc["duplicate"] is True,
                 "the retry after the timeout: %s %r" % (status, doc))
        st.check(len(st.consume_all(d, "p", 0)) == 1, "the record is there once")
        d.stop()


def test_a_full_ingress_ring_answers_503():
    big = b"r" * 60000
    with st.Skiffd(http={"body_bytes_max": "65536"}, storage={"ring_bytes": "524288"},
                   supervisor={"hang_timeout_ms": "60000"}) as d:
        d.start()
        status, _, _ = st.curl(d.url("/broker/topics"), "POST", '{"name":"r","partitions":1}')
        st.check(status == 201, "create: %s" % status)
        pause(d, "writer")
        accepted, full = 0, None
        try:
            for _ in range(64):  # 64 x 60 KB is far more than the 512 KiB ring holds
                status, hdrs, doc = st.curl_json(d.url("/broker/topics/r/produce?ack=none"),
                                                 "POST", big)
                if status == 200:
                    accepted += 1
                    continue
                full = (status, hdrs, doc)
                break
        finally:
            resume(d, "writer")
        st.check(full is not None, "the ring never filled (%d accepted)" % accepted)
        status, hdrs, doc = full
        st.check(status == 503 and doc["error"] == "unavailable" and
                 hdrs.get("retry-after") == "1", "%s %r %r" % (status, hdrs, doc))
        st.check(accepted >= 1, "nothing was accepted before the ring filled")
        st.wait_for(lambda: len(st.consume_all(d, "r", 0, limit=4)) == accepted, 60,
                    "the %d accepted records to be written" % accepted)
        d.stop()


if __name__ == "__main__":
    st.main(globals())
