/* HTTP/1.1 server for the http worker (see http_server.h).
 *
 * Why not evhttp: a durable 64-byte produce is a few hundred bytes of HTTP
 * each way, and evhttp spent about two thirds of the worker's CPU on it
 * (perf, 64 connections: ~15 mallocs per request, a printf per header, sscanf,
 * an epoll_ctl pair per request). Framing is left to libhttp-parser (Debian's
 * libhttp-parser-dev, the parser wrk and Node used for a decade, kept by Debian
 * with its security fixes); this file only owns buffers, limits and the socket.
 *
 * A connection:
 *   buf       the bytes read and not yet consumed. A request's head (request
 *             line + headers, at most headers_bytes_max) is parsed only once it
 *             is all in buf, so the parser reports every name and value in one
 *             piece; they stay in buf (NUL-terminated in place) until the reply.
 *             Body bytes are copied into the request's body evbuffer as they are
 *             parsed and dropped from buf, so buf never holds more than one head
 *             plus one read.
 *   busy      a request is in a handler. Nothing further is parsed (pipelined
 *             requests wait in buf, in order) until it is answered; reading stops
 *             when buf is full.
 *   wbuf      reply bytes the socket did not take at once; the write event runs
 *             until it is empty, then the next request is parsed.
 *   dead      the socket failed or closed under a busy request: the slot waits
 *             for the handler's reply, drops it, and is freed.
 *   linger    the server closes after a refusal (400/413/431) or "Connection:
 *             close": shut the write side, read and drop what the client still
 *             sends for up to HTTP_LINGER_MS, then close, so the client reads the
 *             reply instead of a reset.
 * Limits: connections_max (past it: a canned 503 and close), headers_bytes_max
 * (431), body_bytes_max (413, from Content-Length before any body byte is read,
 * or from the running total of a chunked body), idle_timeout_ms (a sweep closes a
 * connection that has not completed a request, or whose reply write has not moved,
 * for that long; requests in handlers are the handlers' business). */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "workers/http/http_parse.h"
#include "workers/http/http_server.h"

#define HTTP_READ_BYTES (32 * 1024)       /* room for one read beyond a full head */
#define HTTP_REQ_HEADERS_MAX 100          /* more header lines: 431 */
#define HTTP_REPLY_HEADERS_BYTES 512      /* headers a handler adds to one reply */
#define HTTP_REPLY_HEAD_BYTES (HTTP_REPLY_HEADERS_BYTES + 256)
#define HTTP_WRITE_IOVS 64
#define HTTP_SPARE_SLOTS 64 /* accepted beyond the limit in one pass, then refused */
#define HTTP_LINGER_MS 2000
#define HTTP_SWEEP_MS_MIN 100
#define HTTP_SWEEP_MS_MAX 1000
#define HTTP_LISTEN_BACKLOG 1024

struct http_hdr {
	uint32_t name_off, name_len;
	uint32_t value_off, value_len;
};

struct http_conn;

struct http_req {
	struct http_conn *conn;
	uint8_t method;
	bool keep_alive;
	bool framed;
	bool value_last; /* the parser's last header callback was a value */
	uint32_t url_off, url_len;
	uint32_t path_len;
	uint32_t query_off; /* 0: no query */
	uint32_t nhdr;
	struct http_hdr hdr[HTTP_REQ_HEADERS_MAX];
	struct evbuffer *body;
	struct evbuffer *out;
	char added[HTTP_REPLY_HEADERS_BYTES];
	uint32_t added_len;
	bool added_type; /* a Content-Type was added */
};

enum conn_state { CONN_FREE = 0, CONN_OPEN, CONN_DEAD, CONN_LINGER };

struct http_conn {
	uint8_t state;
	bool busy;      /* a request is in a handler */
	bool head_done; /* the current request's head is parsed */
	bool msg_done;  /* ... and its body */
	bool in_run;    /* conn_run is on the stack */
	bool reading;   /* the read event is added */
	bool close_after; /* close once the current reply is out */
	bool peer_eof;
	int fd;
	char *buf;
	uint32_t len;  /* bytes in buf */
	uint32_t pos;  /* parsed up to here */
	uint32_t scan; /* the head's end was not found before here */
	uint32_t head_end;
	int fail_status; /* set by a parser callback: refuse this request */
	const char *fail_code;
	const char *fail_msg;
	uint64_t active_ms; /* accepted, or last reply queued */
	uint64_t wprogress_ms;
	uint64_t linger_until_ms;
	http_parser parser;
	struct http_req req;
	struct evbuffer *wbuf;
	struct event rev, wev;
};

static struct {
	struct event_base *base;
	struct evconnlistener *listener;
	struct http_server_limits lim;
	http_request_fn on_request;
	http_refuse_fn on_refuse;
	http_parser_settings settings;
	struct http_conn *slots;
	uint32_t cap;
	uint32_t *free_list;
	uint32_t free_count;
	uint32_t live;
	uint64_t refused;
	struct event *sweep_ev;
	uint32_t buf_cap;
} S;

#define REFUSAL_BODY                                                                              \
	"{\"error\":\"too_many_connections\",\"message\":\"The server has too many open "             \
	"connections; retry.\"}"
#define REFUSAL                                                                                   \
	"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: "       \
	"1\r\nConnection: close\r\nContent-Length: 93\r\n\r\n" REFUSAL_BODY
_Static_assert(sizeof(REFUSAL_BODY) - 1 == 93, "the refusal's Content-Length");

static void conn_run(struct http_conn *c);

/* ---- small helpers ---- */

static const char *status_line(int status)
{
	switch (status) {
	case 100: return "HTTP/1.1 100 Continue\r\n";
	case 200: return "HTTP/1.1 200 OK\r\n";
	case 201: return "HTTP/1.1 201 Created\r\n";
	case 400: return "HTTP/1.1 400 Bad Request\r\n";
	case 401: return "HTTP/1.1 401 Unauthorized\r\n";
	case 404: return "HTTP/1.1 404 Not Found\r\n";
	case 405: return "HTTP/1.1 405 Method Not Allowed\r\n";
	case 409: return "HTTP/1.1 409 Conflict\r\n";
	case 411: return "HTTP/1.1 411 Length Required\r\n";
	case 413: return "HTTP/1.1 413 Payload Too Large\r\n";
	case 416: return "HTTP/1.1 416 Range Not Satisfiable\r\n";
	case 431: return "HTTP/1.1 431 Request Header Fields Too Large\r\n";
	case 500: return "HTTP/1.1 500 Internal Server Error\r\n";
	case 503: return "HTTP/1.1 503 Service Unavailable\r\n";
	case 507: return "HTTP/1.1 507 Insufficient Storage\r\n";
	default: return NULL;
	}
}

static char *put_2d(char *p, int v)
{
	*p++ = (char)('0' + v / 10 % 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

/* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" (RFC 9110 IMF-fixdate), rebuilt once a second. */
static const char *date_header(size_t *len)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	static time_t sec = -1;
	static char text[48];
	static size_t text_len;
	time_t now = time(NULL);
	struct tm tm;
	if (now == sec)
		goto done;
	sec = now;
	text_len = 0;
	if (!gmtime_r(&now, &tm) || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
		goto done; /* no Date rather than a wrong one */
	char *p = text;
	memcpy(p, "Date: ", 6);
	p += 6;
	memcpy(p, days[tm.tm_wday], 3);
	p += 3;
	*p++ = ',';
	*p++ = ' ';
	p = put_2d(p, tm.tm_mday);
	*p++ = ' ';
	memcpy(p, months[tm.tm_mon], 3);
	p += 3;
	*p++ = ' ';
	p = put_2d(p, (tm.tm_year + 1900) / 100);
	p = put_2d(p, (tm.tm_year + 1900) % 100);
	*p++ = ' ';
	p = put_2d(p, tm.tm_hour);
	*p++ = ':';
	p = put_2d(p, tm.tm_min);
	*p++ = ':';
	p = put_2d(p, tm.tm_sec);
	memcpy(p, " GMT\r\n", 6);
	text_len = (size_t)(p + 6 - text);
done:
	*len = text_len;
	return text;
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* ---- connection slots ---- */

static void conn_reset_request(struct http_conn *c)
{
	struct http_req *r = &c->req;
	r->method = 0;
	r->keep_alive = false;
	r->framed = false;
	r->value_last = false;
	r->url_off = r->url_len = r->path_len = r->query_off = 0;
	r->nhdr = 0;
	r->added_len = 0;
	r->added_type = false;
	evbuffer_drain(r->body, evbuffer_get_length(r->body));
	evbuffer_drain(r->out, evbuffer_get_length(r->out));
	c->head_done = false;
	c->msg_done = false;
	c->scan = 0;
	c->head_end = 0;
	c->fail_status = 0;
}

static void conn_free(struct http_conn *c)
{
	if (c->reading)
		event_del(&c->rev);
	event_del(&c->wev);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	/* Reply bytes may hold references (a consume's nng message): free them now. */
	evbuffer_drain(c->wbuf, evbuffer_get_length(c->wbuf));
	evbuffer_drain(c->req.body, evbuffer_get_length(c->req.body));
	evbuffer_drain(c->req.out, evbuffer_get_length(c->req.out));
	c->state = CONN_FREE;
	c->busy = false;
	c->reading = false;
	S.live--;
	S.free_list[S.free_count++] = (uint32_t)(c - S.slots);
}

/* The socket is finished with. A request in a handler keeps the slot until its reply. */
static void conn_kill(struct http_conn *c)
{
	if (c->busy || c->in_run) {
		if (c->reading)
			event_del(&c->rev);
		c->reading = false;
		event_del(&c->wev);
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		c->state = CONN_DEAD;
		return;
	}
	conn_free(c);
}

static void conn_read_on(struct http_conn *c, bool on)
{
	if (on == c->reading || c->fd < 0)
		return;
	if (on)
		event_add(&c->rev, NULL);
	else
		event_del(&c->rev);
	c->reading = on;
}

/* Shut our side and drop what the client still sends, for a while (see top). */
static void conn_linger(struct http_conn *c)
{
	shutdown(c->fd, SHUT_WR);
	c->state = CONN_LINGER;
	c->linger_until_ms = clock_mono_ms() + HTTP_LINGER_MS;
	conn_read_on(c, true);
}

/* ---- parser callbacks (libhttp-parser) ---- */

static struct http_conn *conn_of(http_parser *p) { return p->data; }

static uint32_t off_in(const struct http_conn *c, const char *at)
{
	return (uint32_t)(at - c->buf);
}

static int fail_with(struct http_conn *c, int status, const char *code, const char *msg)
{
	c->fail_status = status;
	c->fail_code = code;
	c->fail_msg = msg;
	http_parser_pause(&c->parser, 1);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	if (c->req.url_len == 0)
		c->req.url_off = off_in(c, at);
	c->req.url_len += (uint32_t)len;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	struct http_req *r = &c->req;
	if (c->head_done)
		return 0; /* chunked trailers: not used */
	if (r->nhdr == 0 || r->value_last) {
		if (r->nhdr == HTTP_REQ_HEADERS_MAX)
			return fail_with(c, 431, "headers_too_large",
					 "The request has more header lines than the server takes.");
		r->hdr[r->nhdr++] = (struct http_hdr){.name_off = off_in(c, at)};
		r->value_last = false;
	}
	r->hdr[r->nhdr - 1].name_len += (uint32_t)len;
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	struct http_req *r = &c->req;
	if (c->head_done || r->nhdr == 0)
		return 0;
	struct http_hdr *h = &r->hdr[r->nhdr - 1];
	if (!r->value_last)
		h->value_off = off_in(c, at);
	/* A folded continuation line extends the value over the fold. */
	h->value_len = off_in(c, at) + (uint32_t)len - h->value_off;
	r->value_last = true;
	return 0;
}

static unsigned method_bit(unsigned m)
{
	switch (m) {
	case HTTP_GET: return HTTP_M_GET;
	case HTTP_POST: return HTTP_M_POST;
	case HTTP_HEAD: return HTTP_M_HEAD;
	default: return HTTP_M_OTHER;
	}
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	struct http_req *r = &c->req;
	r->method = (uint8_t)method_bit(p->method);
	r->keep_alive = http_should_keep_alive(p) != 0;
	r->framed = (p->flags & (F_CHUNKED | F_CONTENTLENGTH)) != 0;
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > S.lim.body_bytes_max)
		return fail_with(c, 413, "too_large", "The request body is larger than body_bytes_max.");
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *c = conn_of(p);
	struct evbuffer *b = c->req.body;
	if (evbuffer_get_length(b) + len > S.lim.body_bytes_max)
		return fail_with(c, 413, "too_large", "The request body is larger than body_bytes_max.");
	if (evbuffer_add(b, at, len) != 0)
		return fail_with(c, 503, "unavailable", "The server is out of memory for this body.");
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *c = conn_of(p);
	c->msg_done = true;
	http_parser_pause(p, 1);
	return 0;
}

/* ---- framing ---- */

enum parse_result { PARSE_MORE, PARSE_REQUEST, PARSE_REFUSE };

/* The end of the head (just past its empty line) in buf[from, to), or 0. Lines
 * may end in CRLF or a bare LF, as the parser accepts both. */
static uint32_t head_end_in(const char *buf, uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i + 1 < to; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < to && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* RFC 9112 §2.2: empty lines before a request line are ignored (some clients
 * send CRLF after a body). Dropped here so the head search starts at the line. */
static void skip_blank_lines(struct http_conn *c)
{
	uint32_t k = 0;
	while (k < c->len && (c->buf[k] == '\r' || c->buf[k] == '\n'))
		k++;
	if (k == 0)
		return;
	memmove(c->buf, c->buf + k, c->len - k);
	c->len -= k;
	c->scan = 0;
}

/* After the head is parsed: NUL-terminate the path, the query and every header
 * name and value in place (the byte after each is a separator the parser passed). */
static void head_terminate(struct http_conn *c)
{
	struct http_req *r = &c->req;
	char *url = c->buf + r->url_off;
	url[r->url_len] = 0;
	char *q = memchr(url, '?', r->url_len);
	char *frag = memchr(url, '#', r->url_len);
	if (frag)
		*frag = 0;
	if (q && (!frag || q < frag)) {
		*q = 0;
		r->query_off = (uint32_t)(q + 1 - c->buf);
	}
	r->path_len = (uint32_t)strlen(url);
	for (uint32_t i = 0; i < r->nhdr; i++) {
		struct http_hdr *h = &r->hdr[i];
		c->buf[h->name_off + h->name_len] = 0;
		if (h->value_len)
			c->buf[h->value_off + h->value_len] = 0;
	}
}

static const char *refuse_parse_error(struct http_conn *c)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
	c->fail_status = 400;
	c->fail_code = "bad_request";
	c->fail_msg = e == HPE_INVALID_METHOD ? "The request method is not one HTTP knows."
		      : e == HPE_INVALID_VERSION ? "The request's HTTP version is not valid."
		      : e == HPE_INVALID_URL ? "The request target is not a valid URL."
		      : e == HPE_INVALID_CONTENT_LENGTH || e == HPE_UNEXPECTED_CONTENT_LENGTH
			      ? "The request's Content-Length is not valid."
		      : e == HPE_INVALID_TRANSFER_ENCODING || e == HPE_INVALID_CHUNK_SIZE
			      ? "The request's chunked body is not valid."
			      : "The request is not valid HTTP/1.1.";
	return c->fail_msg;
}

/* Run the parser over buf[from, to); PARSE_REFUSE when it (or a callback) refused. */
static enum parse_result parse_span(struct http_conn *c, uint32_t from, uint32_t to,
				    uint32_t *used)
{
	if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED)
		http_parser_pause(&c->parser, 0);
	*used = (uint32_t)http_parser_execute(&c->parser, &S.settings, c->buf + from, to - from);
	if (c->fail_status)
		return PARSE_REFUSE;
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
	if (e != HPE_OK && e != HPE_PAUSED) {
		refuse_parse_error(c);
		return PARSE_REFUSE;
	}
	if (c->parser.upgrade)
		c->close_after = true; /* no protocol switch here: answer, then close */
	return c->msg_done ? PARSE_REQUEST : PARSE_MORE;
}

/* Expect: 100-continue (curl sends it for large bodies): say go on. */
static void maybe_continue(struct http_conn *c)
{
	const char *e = http_req_header(&c->req, "Expect");
	if (!e || strcasecmp(e, "100-continue") != 0 || c->msg_done || c->pos < c->head_end ||
	    c->len > c->head_end)
		return;
	static const char go[] = "HTTP/1.1 100 Continue\r\n\r\n";
	if (send(c->fd, go, sizeof(go) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof(go) - 1)
		c->close_after = true; /* the client may wait a second and send anyway */
}

static enum parse_result conn_parse(struct http_conn *c)
{
	uint32_t used;
	enum parse_result pr;
	if (!c->head_done) {
		skip_blank_lines(c);
		uint32_t end = head_end_in(c->buf, c->scan, c->len);
		if (end == 0 || end > S.lim.headers_bytes_max) {
			if (end == 0 && c->len <= S.lim.headers_bytes_max) {
				c->scan = c->len > 2 ? c->len - 2 : 0;
				return PARSE_MORE;
			}
			fail_with(c, 431, "headers_too_large", "The request headers are too large.");
			return PARSE_REFUSE;
		}
		c->head_end = end;
		pr = parse_span(c, 0, end, &used);
		if (pr == PARSE_REFUSE)
			return pr;
		if (used != end) {
			refuse_parse_error(c);
			return PARSE_REFUSE;
		}
		c->head_done = true;
		c->pos = end;
		head_terminate(c);
		if (pr == PARSE_REQUEST)
			return pr;
		maybe_continue(c);
	}
	while (!c->msg_done && c->pos < c->len) {
		pr = parse_span(c, c->pos, c->len, &used);
		if (pr == PARSE_REFUSE)
			return pr;
		c->pos += used;
		if (!c->msg_done) {
			/* Everything read was body, now copied: make room for more. */
			c->len = c->pos = c->head_end;
		}
	}
	return c->msg_done ? PARSE_REQUEST : PARSE_MORE;
}

/* Drop the answered request from buf: pipelined bytes after it move to the front. */
static void conn_next_request(struct http_conn *c)
{
	uint32_t rest = c->len - c->pos;
	if (rest)
		memmove(c->buf, c->buf + c->pos, rest);
	c->len = rest;
	c->pos = 0;
	conn_reset_request(c);
}

static void conn_refuse_request(struct http_conn *c)
{
	c->busy = true;
	c->close_after = true;
	c->req.keep_alive = false;
	S.on_refuse(&c->req, c->fail_status, c->fail_code, c->fail_msg);
}

/* Parse and hand out requests while the connection is free to take one. */
static void conn_run(struct http_conn *c)
{
	if (c->in_run)
		return;
	c->in_run = true;
	while (c->state == CONN_OPEN && !c->busy && !c->close_after &&
	       evbuffer_get_length(c->wbuf) == 0) {
		enum parse_result pr = conn_parse(c);
		if (pr == PARSE_MORE) {
			if (c->peer_eof)
				conn_kill(c); /* the client ended mid-request or between requests */
			break;
		}
		if (pr == PARSE_REFUSE) {
			conn_refuse_request(c);
			break;
		}
		c->busy = true;
		S.on_request(&c->req);
	}
	c->in_run = false;
	if (c->state == CONN_DEAD && !c->busy) {
		conn_free(c);
		return;
	}
	if (c->state != CONN_OPEN)
		return;
	if (c->close_after && !c->busy && evbuffer_get_length(c->wbuf) == 0)
		conn_linger(c);
	else
		conn_read_on(c, c->len < S.buf_cap && !c->peer_eof);
}

/* ---- socket events ---- */

static void conn_flushed(struct http_conn *c)
{
	if (c->close_after) {
		conn_linger(c);
		return;
	}
	conn_run(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	int n = evbuffer_write(c->wbuf, fd);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		conn_kill(c);
		return;
	}
	if (n > 0)
		c->wprogress_ms = clock_mono_ms();
	if (evbuffer_get_length(c->wbuf) > 0)
		return;
	event_del(&c->wev);
	conn_flushed(c);
}

static void linger_read(struct http_conn *c)
{
	char sink[4096];
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(c->fd, sink, sizeof(sink));
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		conn_free(c);
		return;
	}
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	if (c->state == CONN_LINGER) {
		linger_read(c);
		return;
	}
	if (c->len >= S.buf_cap) {
		conn_read_on(c, false);
		return;
	}
	ssize_t n = read(fd, c->buf + c->len, S.buf_cap - c->len);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_kill(c);
		return;
	}
	if (n == 0) {
		/* The client shut its side: a request in a handler still gets its reply. */
		c->peer_eof = true;
		conn_read_on(c, false);
		if (!c->busy && evbuffer_get_length(c->wbuf) == 0)
			conn_run(c);
		return;
	}
	c->len += (uint32_t)n;
	conn_run(c);
}

static void refuse_connection(int fd)
{
	S.refused++;
	(void)send(fd, REFUSAL, sizeof(REFUSAL) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

sk_err http_server_adopt(int fd)
{
	if (S.live >= S.lim.connections_max || S.free_count == 0) {
		refuse_connection(fd);
		return SK_EFULL;
	}
	char *buf = malloc(S.buf_cap);
	if (!buf) {
		refuse_connection(fd);
		return SK_ENOMEM;
	}
	struct http_conn *c = &S.slots[S.free_list[--S.free_count]];
	S.live++;
	/* Request/response traffic: without TCP_NODELAY a reply written in two pieces
	 * waits for the client's delayed ACK. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->state = CONN_OPEN;
	c->fd = fd;
	c->buf = buf;
	c->len = c->pos = 0;
	c->busy = c->in_run = c->reading = c->close_after = c->peer_eof = false;
	c->active_ms = c->wprogress_ms = clock_mono_ms();
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	conn_reset_request(c);
	event_assign(&c->rev, S.base, fd, EV_READ | EV_PERSIST, read_cb, c);
	event_assign(&c->wev, S.base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
	conn_read_on(c, true);
	return SK_OK;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	(void)l, (void)sa, (void)salen, (void)arg;
	(void)http_server_adopt(fd);
}

/* ---- replies ---- */

sk_err http_req_add_header(struct http_req *req, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	if (req->added_len + nl + vl + 4 > sizeof(req->added)) {
		log_error("http_reply_header_refused", "name=%s bytes=%zu", name, nl + vl);
		return SK_EFULL;
	}
	char *p = req->added + req->added_len;
	p = put(p, name, nl);
	p = put(p, ": ", 2);
	p = put(p, value, vl);
	p = put(p, "\r\n", 2);
	req->added_len = (uint32_t)(p - req->added);
	if (strcasecmp(name, "Content-Type") == 0)
		req->added_type = true;
	return SK_OK;
}

/* The status line and headers of this reply into head; its length. */
static size_t reply_head(struct http_req *req, int status, uint64_t body_len, bool closing,
			 char head[HTTP_REPLY_HEAD_BYTES])
{
	char line[64];
	const char *sl = status_line(status);
	if (!sl) {
		snprintf(line, sizeof(line), "HTTP/1.1 %d Status\r\n", status);
		sl = line;
	}
	size_t dl;
	const char *date = date_header(&dl);
	char *p = put(head, sl, strlen(sl));
	p = put(p, date, dl);
	if (!req->added_type)
		p = put(p, "Content-Type: application/json\r\n", 32);
	p = put(p, "Content-Length: ", 16);
	p = put_u64(p, body_len);
	p = put(p, "\r\n", 2);
	p = put(p, req->added, req->added_len);
	if (closing)
		p = put(p, "Connection: close\r\n", 19);
	else if (req->conn->parser.http_minor == 0)
		p = put(p, "Connection: keep-alive\r\n", 24);
	p = put(p, "\r\n", 2);
	return (size_t)(p - head);
}

/* One writev of head + body; whatever the socket does not take goes to wbuf. */
static void conn_send(struct http_conn *c, const char *head, size_t hlen, struct evbuffer *body)
{
	size_t done = 0;
	if (evbuffer_get_length(c->wbuf) == 0) {
		struct iovec iov[HTTP_WRITE_IOVS];
		struct evbuffer_iovec v[HTTP_WRITE_IOVS - 1];
		int nv = evbuffer_peek(body, -1, NULL, v, HTTP_WRITE_IOVS - 1);
		if (nv > HTTP_WRITE_IOVS - 1)
			nv = HTTP_WRITE_IOVS - 1;
		iov[0] = (struct iovec){(void *)head, hlen};
		for (int i = 0; i < nv; i++)
			iov[i + 1] = (struct iovec){v[i].iov_base, v[i].iov_len};
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)nv + 1};
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_kill(c);
			return;
		}
		done = n > 0 ? (size_t)n : 0;
	}
	if (done < hlen) {
		evbuffer_add(c->wbuf, head + done, hlen - done);
		done = hlen;
	}
	evbuffer_drain(body, done - hlen);
	evbuffer_add_buffer(c->wbuf, body);
	if (evbuffer_get_length(c->wbuf) > 0) {
		c->wprogress_ms = clock_mono_ms();
		event_add(&c->wev, NULL);
	}
}

void http_req_reply(struct http_req *req, int status)
{
	struct http_conn *c = req->conn;
	c->busy = false;
	if (c->state != CONN_OPEN) {
		/* The client went away while the handler worked. */
		if (!c->in_run)
			conn_free(c);
		return;
	}
	bool closing = !req->keep_alive || c->close_after || c->peer_eof;
	c->close_after = closing;
	struct evbuffer *out = req->out;
	uint64_t blen = evbuffer_get_length(out);
	if (req->method == HTTP_M_HEAD)
		evbuffer_drain(out, blen); /* HEAD: the length of what GET would send, no body */
	char head[HTTP_REPLY_HEAD_BYTES];
	size_t hlen = reply_head(req, status, blen, closing, head);
	conn_send(c, head, hlen, out);
	if (c->state != CONN_OPEN) {
		if (c->state == CONN_DEAD && !c->in_run)
			conn_free(c);
		return;
	}
	conn_next_request(c);
	c->active_ms = clock_mono_ms();
	if (c->in_run || evbuffer_get_length(c->wbuf) > 0)
		return; /* conn_run's loop, or the write event, carries on */
	conn_flushed(c);
}

/* ---- request accessors ---- */

unsigned http_req_method(const struct http_req *req) { return req->method; }

const char *http_req_path(const struct http_req *req, size_t *len)
{
	*len = req->path_len;
	return req->path_len || req->url_len ? req->conn->buf + req->url_off : "";
}

const char *http_req_query(const struct http_req *req)
{
	return req->query_off ? req->conn->buf + req->query_off : NULL;
}

const char *http_req_header(const struct http_req *req, const char *name)
{
	const char *buf = req->conn->buf;
	for (uint32_t i = 0; i < req->nhdr; i++)
		if (strcasecmp(buf + req->hdr[i].name_off, name) == 0)
			return req->hdr[i].value_len ? buf + req->hdr[i].value_off : "";
	return NULL;
}

bool http_req_body_framed(const struct http_req *req) { return req->framed; }
struct evbuffer *http_req_body(struct http_req *req) { return req->body; }
struct evbuffer *http_req_out(struct http_req *req) { return req->out; }

/* ---- the sweep: idle and slow connections ---- */

static void sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = clock_mono_ms();
	for (uint32_t i = 0; i < S.cap; i++) {
		struct http_conn *c = &S.slots[i];
		if (c->state == CONN_LINGER && now >= c->linger_until_ms)
			conn_free(c);
		if (c->state != CONN_OPEN || c->busy)
			continue;
		bool writing = evbuffer_get_length(c->wbuf) > 0;
		uint64_t since = writing ? c->wprogress_ms : c->active_ms;
		if (now - since > S.lim.idle_timeout_ms)
			conn_free(c);
	}
}

/* ---- start and stop ---- */

static sk_err slots_alloc(void)
{
	S.cap = S.lim.connections_max + HTTP_SPARE_SLOTS;
	S.slots = calloc(S.cap, sizeof(*S.slots));
	S.free_list = calloc(S.cap, sizeof(*S.free_list));
	if (!S.slots || !S.free_list)
		return SK_ENOMEM;
	for (uint32_t i = S.cap; i-- > 0;) {
		struct http_conn *c = &S.slots[i];
		c->fd = -1;
		c->req.conn = c;
		c->req.body = evbuffer_new();
		c->req.out = evbuffer_new();
		c->wbuf = evbuffer_new();
		if (!c->req.body || !c->req.out || !c->wbuf)
			return SK_ENOMEM;
		S.free_list[S.free_count++] = i;
	}
	return SK_OK;
}

static sk_err listen_on(const char *host, uint16_t port)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	int rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc != 0) {
		log_error("http_listen_failed", "host=%s reason=\"%s\"", host, gai_strerror(rc));
		errno = EADDRNOTAVAIL;
		return SK_EIO;
	}
	S.listener = evconnlistener_new_bind(S.base, accept_cb, NULL,
					     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						     LEV_OPT_CLOSE_ON_EXEC,
					     HTTP_LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	return S.listener ? SK_OK : SK_EIO;
}

sk_err http_server_start(struct event_base *base, const char *host, uint16_t port,
			 const struct http_server_limits *lim, http_request_fn on_request,
			 http_refuse_fn on_refuse)
{
	memset(&S, 0, sizeof(S));
	S.base = base;
	S.lim = *lim;
	S.on_request = on_request;
	S.on_refuse = on_refuse;
	S.buf_cap = lim->headers_bytes_max + HTTP_READ_BYTES;
	http_parser_settings_init(&S.settings);
	S.settings.on_url = on_url;
	S.settings.on_header_field = on_header_field;
	S.settings.on_header_value = on_header_value;
	S.settings.on_headers_complete = on_headers_complete;
	S.settings.on_body = on_body;
	S.settings.on_message_complete = on_message_complete;
	sk_err err = slots_alloc();
	if (err != SK_OK)
		return err;
	uint32_t sweep_ms = lim->idle_timeout_ms / 4;
	sweep_ms = sweep_ms < HTTP_SWEEP_MS_MIN ? HTTP_SWEEP_MS_MIN : sweep_ms;
	sweep_ms = sweep_ms > HTTP_SWEEP_MS_MAX ? HTTP_SWEEP_MS_MAX : sweep_ms;
	struct timeval tv = {.tv_sec = sweep_ms / 1000, .tv_usec = (sweep_ms % 1000) * 1000};
	S.sweep_ev = event_new(base, -1, EV_PERSIST, sweep_cb, NULL);
	if (!S.sweep_ev || event_add(S.sweep_ev, &tv) != 0)
		return SK_ENOMEM;
	return host ? listen_on(host, port) : SK_OK;
}

void http_server_stop_accepting(void)
{
	if (S.listener)
		evconnlistener_free(S.listener);
	S.listener = NULL;
}

void http_server_free(void)
{
	http_server_stop_accepting();
	if (S.sweep_ev)
		event_free(S.sweep_ev);
	for (uint32_t i = 0; S.slots && i < S.cap; i++) {
		struct http_conn *c = &S.slots[i];
		if (c->state != CONN_FREE) {
			c->busy = false;
			c->in_run = false;
			conn_free(c);
		}
		if (c->req.body)
			evbuffer_free(c->req.body);
		if (c->req.out)
			evbuffer_free(c->req.out);
		if (c->wbuf)
			evbuffer_free(c->wbuf);
	}
	free(S.slots);
	free(S.free_list);
	memset(&S, 0, sizeof(S));
}

uint32_t http_server_open_count(void) { return S.live; }
uint64_t http_server_refused_count(void) { return S.refused; }
