/* Fuzz target for the http worker's HTTP/1.1 server (workers/http/http_server.c):
 * the input is what a client sends on one connection, byte for byte. The
 * connection is one end of a socketpair handed to the server; the other end
 * writes the input in pieces whose sizes come from the input's first byte,
 * then shuts its side, and the loop runs until the server has closed the
 * connection. Handlers answer at once, or (path /later) from the next loop pass, so both
 * reply paths are driven. Besides "no crash, no sanitizer report", it checks
 * what must always hold: every byte the server sends is whole responses that
 * start with a status line, and the connection is closed and its slot freed
 * once the client has gone (no slot leaks, bounded iterations). */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workers/http/http_parse.h"
#include "workers/http/http_server.h"

#define FUZZ_LOOPS_MAX 4000
#define FUZZ_OUT_MAX (4 * 1024 * 1024)

static void check(int ok)
{
	if (!ok)
		abort();
}

static struct event_base *base;
static struct http_req *later_req;
static struct event *later_ev;

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what, (void)arg;
	struct http_req *req = later_req;
	later_req = NULL;
	if (req) {
		if (http_req_method(req) != HTTP_M_HEAD)
			evbuffer_add(http_req_out(req), "{\"later\":true}", 14);
		http_req_reply(req, 200);
	}
}

static void on_request(struct http_req *req)
{
	size_t len;
	const char *path = http_req_path(req, &len);
	check(strlen(path) == len);
	const char *q = http_req_query(req);
	if (q)
		check(strlen(q) < 65536);
	(void)http_req_header(req, "Content-Type");
	size_t body = evbuffer_get_length(http_req_body(req));
	if (strcmp(path, "/later") == 0 && !later_req) {
		later_req = req; /* answered from the next loop pass */
		event_active(later_ev, EV_TIMEOUT, 1);
		return;
	}
	if (strcmp(path, "/type") == 0)
		http_req_add_header(req, "Content-Type", "text/plain");
	/* HEAD replies carry the length of a body they do not send: keep it 0 so the
	 * response walk below stays in step. */
	if (http_req_method(req) != HTTP_M_HEAD)
		evbuffer_add_printf(http_req_out(req), "{\"body\":%zu}", body);
	http_req_reply(req, body % 7 == 3 ? 503 : 200);
}

static void on_refuse(struct http_req *req, int status, const char *code, const char *msg)
{
	evbuffer_add_printf(http_req_out(req), "{\"error\":\"%s\",\"message\":\"%s\"}", code, msg);
	http_req_reply(req, status);
}

static void setup(void)
{
	base = event_base_new();
	check(base != NULL);
	later_ev = event_new(base, -1, 0, later_cb, NULL);
	const struct http_server_limits lim = {.connections_max = 4, .idle_timeout_ms = 60000,
					       .body_bytes_max = 8192, .headers_bytes_max = 2048};
	check(http_server_start(base, NULL, 0, &lim, on_request, on_refuse) == 0);
}

/* Every response in out[0, n) starts with "HTTP/1.1 ": walk them by Content-Length. */
static void check_responses(const char *out, size_t n)
{
	size_t at = 0;
	while (at < n) {
		check(n - at >= 9 && memcmp(out + at, "HTTP/1.1 ", 9) == 0);
		const char *end = memmem(out + at, n - at, "\r\n\r\n", 4);
		check(end != NULL);
		const char *cl = memmem(out + at, (size_t)(end - (out + at)), "Content-Length: ", 16);
		size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
		if (memcmp(out + at + 9, "100 ", 4) == 0)
			body = 0;
		at = (size_t)(end + 4 - out) + body;
		check(at <= n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!base)
		setup();
	if (size == 0)
		return 0;
	size_t piece = 1 + data[0] % 64 * 37;
	data++;
	size--;
	int sv[2];
	check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	check(http_server_adopt(sv[0]) == 0);
	static char out[FUZZ_OUT_MAX];
	size_t out_n = 0, sent = 0;
	bool shut = false;
	for (int i = 0; i < FUZZ_LOOPS_MAX && http_server_open_count() > 0; i++) {
		if (sent < size) {
			size_t n = size - sent < piece ? size - sent : piece;
			ssize_t w = send(sv[1], data + sent, n, MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN)
				sent = size; /* the server closed: stop sending */
		} else if (!shut) {
			shutdown(sv[1], SHUT_WR);
			shut = true;
		}
		event_base_loop(base, EVLOOP_NONBLOCK);
		ssize_t r;
		while (out_n < sizeof(out) && (r = recv(sv[1], out + out_n, sizeof(out) - out_n, 0)) > 0)
			out_n += (size_t)r;
	}
	check(http_server_open_count() == 0);
	check(later_req == NULL);
	close(sv[1]);
	check_responses(out, out_n);
	return 0;
}

size_t sk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

/* Seeds: the first byte sets the write piece size; the rest is the wire. */
size_t sk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	static const char *const seeds[] = {
		"\x05POST /broker/topics/t/produce?partition=0 HTTP/1.1\r\nHost: a\r\n"
		"Content-Length: 5\r\n\r\nhelloGET /later HTTP/1.1\r\n\r\nHEAD /x HTTP/1.1\r\n\r\n",
		"\x01POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
		"3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n\r\nGET /type?a=b#f HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"\x09GET / HTTP/1.1\nX: y\n\nPOST /big HTTP/1.1\r\nContent-Length: 99999\r\n\r\n",
		"\x02GET /up HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nrest",
	};
	if (i >= sizeof(seeds) / sizeof(seeds[0]))
		return 0;
	size_t n = strlen(seeds[i]);
	if (n > cap)
		return 0;
	memcpy(buf, seeds[i], n);
	return n;
}
