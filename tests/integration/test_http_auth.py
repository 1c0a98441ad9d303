"""Bearer tokens: a token is required, a wrong one is refused with 401, health
can be left open by configuration, and skiffd refuses to serve a non-loopback
address without tokens."""

import json

import skiff_testlib as st

TOKEN_A = "token-a-0123456789abcdef"
TOKEN_B = "token-b-fedcba9876543210"


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def get(d, path, headers=None):
    return st.curl_json(d.url(path), headers=headers)


def test_a_token_is_required_and_checked():
    with st.Skiffd(http={"tokens": "%s, %s" % (TOKEN_A, TOKEN_B)}) as d:
        d.start()
        for path in ("/broker/topics", "/status", "/nope", "/broker/consume/t/g/0"):
            for hdrs in (None, bearer("wrong-token-0123456789"), bearer(TOKEN_A + "x"),
                         bearer(TOKEN_A[:-1]), {"Authorization": TOKEN_A},
                         {"Authorization": "Basic " + TOKEN_A}):
                status, h, doc = get(d, path, hdrs)
                st.check(status == 401 and doc["error"] == "unauthorized",
                         "%s with %r: %s %r" % (path, hdrs, status, doc))
                st.check(h.get("www-authenticate", "").startswith("Bearer"), repr(h))
        status, _, doc = st.curl_json(d.url("/broker/topics"), "POST",
                                      json.dumps({"name": "t", "partitions": 1}),
                                      {"Authorization": "Bearer nope-nope-nope-nope"})
        st.check(status == 401, "create without a valid token: %s" % status)
        status, _, doc = st.curl_json(d.url("/broker/topics"), "POST",
                                      json.dumps({"name": "t", "partitions": 1}),
                                      bearer(TOKEN_B))
        st.check(status == 201, "create with token B: %s %r" % (status, doc))
        status, _, doc = get(d, "/broker/topics", {"Authorization": "bearer   " + TOKEN_A})
        st.check(status == 200 and doc["topics"][0]["name"] == "t", "%s %r" % (status, doc))
        status, _, _ = get(d, "/status", bearer(TOKEN_A))
        st.check(status == 200, "/status with a token: %s" % status)
        # Health, readiness and metrics are open by default (open_health, open_metrics).
        for path in ("/health", "/ready", "/metrics"):
            status, _, _ = st.curl(d.url(path))
            st.check(status == 200, "%s without a token: %s" % (path, status))
        d.stop()


def test_health_and_metrics_can_be_closed():
    with st.Skiffd(http={"tokens": TOKEN_A, "open_health": "false",
                         "open_metrics": "false"}) as d:
        d.start()
        for path in ("/health", "/ready", "/metrics"):
            status, _, _ = st.curl(d.url(path))
            st.check(status == 401, "%s without a token: %s" % (path, status))
            status, _, _ = st.curl(d.url(path), headers=bearer(TOKEN_A))
            st.check(status == 200, "%s with a token: %s" % (path, status))
        d.stop()


def test_a_public_address_without_tokens_is_refused():
    # The worker refuses before it binds anything: no socket is opened on 0.0.0.0.
    port = st.free_port()
    with st.Skiffd(http={"listen": "0.0.0.0:%d" % port}) as d:
        d.start(wait=False)

        def refused():
            if not d.alive():
                return True
            rc, s = d.status()
            return s is not None and d.worker("http", s)["state"] == "failed"

        st.wait_for(refused, 60, "the http worker to be refused (exit 78, not restarted)")
        if d.alive():
            w = d.worker("http")
            st.check((w.get("last_exit") or {}).get("code") == st.EXIT_CONFIG, repr(w))
        st.check("allow_anonymous" in d.log_text(), "the log does not say how to fix it")
        status, _, _ = st.curl("http://127.0.0.1:%d/health" % port, timeout_s=5)
        st.check(status == 0, "something answers on the refused port: %s" % status)
        if d.alive():
            d.proc.terminate()
            d.wait_exit()
        d.assert_no_process_left()


if __name__ == "__main__":
    st.main(globals())
