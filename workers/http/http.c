/* The http worker: libevent's evhttp, one thread, the API that curl talks to.
 *
 * Every unbounded evhttp default is set explicitly at start:
 *   headers   evhttp_set_max_headers_size(4 x SK_HTTP_HEADERS_BYTES_MAX). libevent
 *             2.1 answers a header section over its limit with 400 and no hook,
 *             so its limit is the hard stop and the handler answers 431 for a
 *             section over SK_HTTP_HEADERS_BYTES_MAX (req->headers_size).
 *   body      evhttp_set_max_body_size([http] body_bytes_max): evhttp answers 413
 *             (lingering close, so the client reads it).
 *   timeouts  evhttp_set_timeout_tv([http] idle_timeout_ms) for idle reads and
 *             writes; http_conn.c closes connections that trickle.
 *   conns     http_conn.c refuses connections past [http] connections_max (503).
 *   methods   every method evhttp parses is let through so a wrong one gets
 *             405 with Allow (evhttp itself would say 501).
 * Requests go: 431 check -> route -> auth -> 404/405 -> handler. Handlers answer
 * through http_send()/http_fail(), which count the request for /metrics.
 *
 * Every reply goes out through reply_send(), which first adds the headers evhttp
 * would add itself (see headers_prefill): same headers, same order, same bytes,
 * without evhttp's per-reply gmtime + two snprintf calls. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "ipc/read_msg.h"
#include "ipc/status_page.h"
#include "workers/http/http_worker.h"

#define HTTP_HEADERS_HARD_BYTES (4 * SK_HTTP_HEADERS_BYTES_MAX)
#define HTTP_STATUS_FILE_BYTES_MAX (1024 * 1024)
#define HTTP_TOKEN_HASH_BYTES 32
#define HTTP_MSG_BYTES 512
#define HTTP_CONTENT_TYPE_DEFAULT "application/json"

struct worker_ctx *http_ctx;

static struct {
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	uint8_t token_key[crypto_generichash_KEYBYTES];
	uint8_t token_hash[SK_HTTP_TOKENS_MAX][HTTP_TOKEN_HASH_BYTES];
	uint32_t token_count;
	bool read_up;
} H;

/* ---- replies ---- */

static const char *reason_of(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 416: return "Range Not Satisfiable";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Unknown";
	}
}

/* evhttp 2.1 (evhttp_make_header_response) adds to a response, when the request
 * is HTTP/1.1 and the response has a body (not HEAD, not 1xx/204/304): Date if
 * missing, Content-Length if neither it nor Transfer-Encoding is there, then
 * Content-Type (the server default) if missing, in that order, each appended. It
 * formats Date with gmtime + snprintf and the length with snprintf on every reply,
 * a visible share of a 64-byte produce. Adding the same headers, in the same order,
 * just before evhttp_send_reply makes its checks find them, so it formats nothing;
 * Date comes from a string rebuilt once a second. Other requests are left to evhttp. */
static struct {
	time_t sec;
	char text[32]; /* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 1123, as evutil_date_rfc1123) */
} date_cache = {.sec = -1};

static char *put_2d(char *p, int v)
{
	*p++ = (char)('0' + v / 10 % 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

static const char *date_now(void)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t now = time(NULL);
	if (now == date_cache.sec)
		return date_cache.text;
	struct tm tm;
	date_cache.sec = now;
	date_cache.text[0] = 0; /* empty: evhttp formats the header itself */
	if (!gmtime_r(&now, &tm) || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
		return date_cache.text;
	char *p = date_cache.text;
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
	memcpy(p, " GMT", 5);
	return date_cache.text;
}

static bool response_has_body(const struct evhttp_request *req, int status)
{
	return status >= 200 && status != 204 && status != 304 &&
	       evhttp_request_get_command(req) != EVHTTP_REQ_HEAD;
}

/* The headers evhttp would add to this reply (see date_cache), added now. */
static void headers_prefill(struct evhttp_request *req, int status, size_t body_bytes)
{
	if (req->major != 1 || req->minor < 1 || !response_has_body(req, status) ||
	    date_now()[0] == 0)
		return;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	bool none = h->tqh_first == NULL; /* the usual case: nothing to look up */
	if (none || !evhttp_find_header(h, "Date"))
		evhttp_add_header(h, "Date", date_cache.text);
	if (none || (!evhttp_find_header(h, "Transfer-Encoding") &&
		     !evhttp_find_header(h, "Content-Length"))) {
		char len[24];
		int n = sizeof(len) - 1;
		len[n] = 0;
		do {
			len[--n] = (char)('0' + body_bytes % 10);
			body_bytes /= 10;
		} while (body_bytes);
		evhttp_add_header(h, "Content-Length", len + n);
	}
	if (none || !evhttp_find_header(h, "Content-Type"))
		evhttp_add_header(h, "Content-Type", HTTP_CONTENT_TYPE_DEFAULT);
}

/* Every reply: prefill, then evhttp. body (may be NULL) is added after the output buffer. */
static void reply_send(struct evhttp_request *req, int status, struct evbuffer *body)
{
	size_t n = evbuffer_get_length(evhttp_request_get_output_buffer(req));
	headers_prefill(req, status, n + (body ? evbuffer_get_length(body) : 0));
	evhttp_send_reply(req, status, reason_of(status), body);
}

void http_json_escape(struct evbuffer *out, const char *s, size_t len)
{
	/* Messages are ASCII sentences; a byte outside it (from a parser's quote of the
	 * input) becomes '?' so the reply stays valid UTF-8. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			evbuffer_add_printf(out, "\\%c", c);
		else if (c < 0x20)
			evbuffer_add_printf(out, "\\u%04x", c);
		else
			evbuffer_add(out, c < 0x80 ? &s[i] : "?", 1);
	}
}

static void error_body(struct evhttp_request *req, int status, const char *code, const char *fmt,
		       va_list ap)
{
	char msg[HTTP_MSG_BYTES];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	evbuffer_drain(out, evbuffer_get_length(out));
	evbuffer_add_printf(out, "{\"error\":\"%s\",\"message\":\"", code);
	http_json_escape(out, msg, strlen(msg));
	evbuffer_add(out, "\"}", 2);
	if (status == 503)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
}

void http_reply_json(struct evhttp_request *req, int status, struct evbuffer *body)
{
	http_conn_idle(req);
	reply_send(req, status, body);
	/* When the client is gone evhttp frees the request without taking the body. */
	if (body)
		evbuffer_drain(body, evbuffer_get_length(body));
}

void http_reply_error(struct evhttp_request *req, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_body(req, status, code, fmt, ap);
	va_end(ap);
	http_conn_idle(req);
	reply_send(req, status, NULL);
}

void http_send(struct evhttp_request *req, enum http_route route, int status)
{
	http_metrics_count_route(route, status);
	http_conn_idle(req);
	reply_send(req, status, NULL);
}

void http_fail(struct evhttp_request *req, enum http_route route, int status, const char *code,
	       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_body(req, status, code, fmt, ap);
	va_end(ap);
	http_send(req, route, status);
}

/* ---- auth ---- */

static void token_hash(const char *tok, size_t len, uint8_t out[HTTP_TOKEN_HASH_BYTES])
{
	crypto_generichash(out, HTTP_TOKEN_HASH_BYTES, (const unsigned char *)tok, len, H.token_key,
			   sizeof(H.token_key));
}

/* "Authorization: Bearer <token>": the token is hashed with a per-process key and the
 * hash compared with every configured token's hash by sodium_memcmp, with no early
 * exit: the time taken says nothing about how much of a token matched. */
static bool auth_token_ok(struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	size_t len = strlen(tok);
	while (len && tok[len - 1] == ' ')
		len--;
	if (len == 0 || len >= SK_HTTP_TOKEN_BYTES_MAX)
		return false;
	uint8_t got[HTTP_TOKEN_HASH_BYTES];
	token_hash(tok, len, got);
	int match = 0;
	for (uint32_t i = 0; i < H.token_count; i++)
		match |= sodium_memcmp(got, H.token_hash[i], HTTP_TOKEN_HASH_BYTES) == 0;
	return match != 0;
}

static bool auth_open(enum http_route route)
{
	const sk_config *cfg = http_ctx->cfg;
	if (H.token_count == 0)
		return true;
	if (http_route_is_health(route))
		return cfg->http_open_health;
	if (route == HTTP_R_METRICS)
		return cfg->http_open_metrics;
	return false;
}

/* ---- small routes ---- */

static void handle_health(struct evhttp_request *req)
{
	evbuffer_add(evhttp_request_get_output_buffer(req), "{\"ok\":true}", 11);
	http_send(req, HTTP_R_HEALTH, 200);
}

static const char *writer_state_name(uint32_t st)
{
	static const char *const names[] = {"starting", "ok", "storage_full", "failed"};
	return st < 4 ? names[st] : "unknown";
}

static void handle_ready(struct evhttp_request *req)
{
	const struct sk_status_page *pg = http_ctx->page;
	char why[256] = "";
	size_t at = 0;
	for (int w = 0; w < SK_WORKER_COUNT; w++)
		if (!atomic_load(&pg->ready[w]) && at < sizeof(why))
			at += (size_t)snprintf(why + at, sizeof(why) - at, "%s%s is not ready",
					       at ? "; " : "", cfg_worker_name((enum sk_worker_id)w));
	uint32_t st = atomic_load(&pg->writer_state);
	if (st != SK_WRITER_OK && at < sizeof(why))
		at += (size_t)snprintf(why + at, sizeof(why) - at, "%sthe writer is %s",
				       at ? "; " : "", writer_state_name(st));
	if (!http_read_replay_up() && at < sizeof(why))
		at += (size_t)snprintf(why + at, sizeof(why) - at, "%sthe replay worker does not answer",
				       at ? "; " : "");
	if (at) {
		why[0] = (char)(why[0] - 'a' + 'A'); /* every reason starts lower case */
		http_fail(req, HTTP_R_READY, 503, "not_ready", "%s.", why);
		return;
	}
	evbuffer_add(evhttp_request_get_output_buffer(req), "{\"ready\":true}", 14);
	http_send(req, HTTP_R_READY, 200);
}

static void handle_metrics(struct evhttp_request *req)
{
	http_metrics_render(evhttp_request_get_output_buffer(req), http_ctx->page);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	http_send(req, HTTP_R_METRICS, 200);
}

/* GET /status: the supervisor's RUN_DIR/status.json, as it is. */
static void handle_status(struct evhttp_request *req)
{
	char path[SK_PATH_BYTES_MAX + 16];
	snprintf(path, sizeof(path), "%s/status.json", http_ctx->cfg->run_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 ||
	    st.st_size > HTTP_STATUS_FILE_BYTES_MAX) {
		if (fd >= 0)
			close(fd);
		http_fail(req, HTTP_R_STATUS, 503, "unavailable",
			  "The supervisor's status is not available yet.");
		return;
	}
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	ev_ssize_t left = (ev_ssize_t)st.st_size;
	int n = 1;
	while (left > 0 && (n = evbuffer_read(out, fd, (int)left)) > 0)
		left -= n;
	close(fd);
	if (n < 0) {
		http_fail(req, HTTP_R_STATUS, 500, "internal", "The status file could not be read.");
		return;
	}
	http_send(req, HTTP_R_STATUS, 200);
}

static void list_one(const struct http_topic *t, void *arg)
{
	struct evbuffer *out = arg;
	size_t len = evbuffer_get_length(out);
	evbuffer_add_printf(out,
			    "%s{\"name\":\"%s\",\"partitions\":%u,\"retention_bytes\":%llu,"
			    "\"retention_ms\":%llu}",
			    len > 11 ? "," : "", t->t.name, t->t.partitions,
			    (unsigned long long)t->t.retention_bytes,
			    (unsigned long long)t->t.retention_ms);
}

static void handle_topics_list(struct evhttp_request *req)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	evbuffer_add(out, "{\"topics\":[", 11);
	if (http_topics_each(list_one, out) != SK_OK) {
		http_fail(req, HTTP_R_TOPICS, 503, "unavailable", "The topic list cannot be read yet.");
		return;
	}
	evbuffer_add(out, "]}", 2);
	http_send(req, HTTP_R_TOPICS, 200);
}

/* ---- read side (http_read.c serves these) ---- */

static const struct meta_topic *read_topic(struct evhttp_request *req, enum http_route route,
					   const char *name, size_t len)
{
	struct http_topic *t = http_topic_or_fail(req, route, name, len);
	return t ? &t->t : NULL;
}

static bool consume_args(struct evhttp_request *req, const struct http_match *m,
			 const char *query, const struct meta_topic *t,
			 struct http_consume_args *a)
{
	const enum http_route route = HTTP_R_CONSUME;
	uint64_t part;
	struct http_query q;
	char why[HTTP_WHY_BYTES];
	if (!http_name_valid(m->group, m->group_len)) {
		http_fail(req, route, 400, "bad_request", "Group names match [A-Za-z0-9._-]{1,128}.");
		return false;
	}
	if (!http_parse_u64(m->partition, m->partition_len, UINT32_MAX, &part)) {
		http_fail(req, route, 400, "bad_request", "The partition must be a whole number.");
		return false;
	}
	if (part >= t->partitions) {
		http_fail(req, route, 404, "not_found", "Topic %s has no partition %llu (it has %u).",
			  t->name, (unsigned long long)part, t->partitions);
		return false;
	}
	if (http_query_parse(query, query ? strlen(query) : 0, &q, why, sizeof(why)) != SK_OK) {
		http_fail(req, route, 400, "bad_request", "%s.", why);
		return false;
	}
	memset(a, 0, sizeof(*a));
	a->partition = (uint32_t)part;
	memcpy(a->group, m->group, m->group_len);
	a->has_offset = q.has_offset;
	a->offset = q.offset;
	a->limit = q.has_limit ? q.limit : HTTP_CONSUME_LIMIT_DEFAULT;
	a->max_bytes = q.has_max_bytes ? q.max_bytes : HTTP_CONSUME_BYTES_DEFAULT;
	a->encoding = q.has_encoding ? q.encoding : READ_ENC_TEXT;
	a->wait_ms = q.has_wait ? q.wait_ms : 0;
	return true;
}

static void handle_consume(struct evhttp_request *req, const struct http_match *m,
			   const char *query)
{
	const struct meta_topic *t = read_topic(req, HTTP_R_CONSUME, m->topic, m->topic_len);
	struct http_consume_args a;
	if (t && consume_args(req, m, query, t, &a))
		http_read_consume(req, t, &a);
}

static void handle_topic_info(struct evhttp_request *req, const struct http_match *m)
{
	const struct meta_topic *t = read_topic(req, HTTP_R_TOPIC_INFO, m->topic, m->topic_len);
	if (t)
		http_read_topic_info(req, t);
}

/* ---- dispatch ---- */

static unsigned method_bit(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET: return HTTP_M_GET;
	case EVHTTP_REQ_POST: return HTTP_M_POST;
	case EVHTTP_REQ_HEAD: return HTTP_M_HEAD;
	default: return HTTP_M_OTHER;
	}
}

static void dispatch(struct evhttp_request *req, enum http_route route, const struct http_match *m,
		     unsigned method, const char *query)
{
	switch (route) {
	case HTTP_R_HEALTH: handle_health(req); return;
	case HTTP_R_READY: handle_ready(req); return;
	case HTTP_R_METRICS: handle_metrics(req); return;
	case HTTP_R_STATUS: handle_status(req); return;
	case HTTP_R_TOPICS:
		if (method == HTTP_M_POST)
			http_handle_create_topic(req);
		else
			handle_topics_list(req);
		return;
	case HTTP_R_TOPIC_INFO: handle_topic_info(req, m); return;
	case HTTP_R_PRODUCE:
	case HTTP_R_PRODUCE_NDJSON: http_handle_produce(req, route, m, query); return;
	case HTTP_R_CONSUME: handle_consume(req, m, query); return;
	case HTTP_R_COMMIT: http_handle_commit(req); return;
	case HTTP_R_DELETE_BEFORE: http_handle_delete_before(req); return;
	case HTTP_R_RETENTION: http_handle_retention(req); return;
	default: http_fail(req, route, 404, "not_found", "No such path."); return;
	}
}

static void request_cb(struct evhttp_request *req, void *arg)
{
	http_conn_busy(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	struct http_match m;
	enum http_route route = path ? http_route_match(path, strlen(path), &m) : HTTP_R_NONE;
	if (req->headers_size > SK_HTTP_HEADERS_BYTES_MAX) {
		http_fail(req, route, 431, "headers_too_large", "The request headers exceed %d bytes.",
			  SK_HTTP_HEADERS_BYTES_MAX);
		return;
	}
	if (!auth_open(route) && !auth_token_ok(req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
				  "Bearer realm=\"skiff\"");
		http_fail(req, route, 401, "unauthorized",
			  "Send a valid token as Authorization: Bearer <token>.");
		return;
	}
	if (route == HTTP_R_NONE) {
		http_fail(req, route, 404, "not_found", "No such path.");
		return;
	}
	unsigned method = method_bit(evhttp_request_get_command(req));
	if (!(http_route_methods(route) & method)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
				  http_route_allow(route));
		http_fail(req, route, 405, "method_not_allowed", "This path accepts %s.",
			  http_route_allow(route));
		return;
	}
	dispatch(req, route, &m, method, uri ? evhttp_uri_get_query(uri) : NULL);
}

/* ---- start and stop ---- */

/* Loopback: 127.0.0.0/8, ::1, ::ffff:127.x, "localhost". A host name that is not
 * "localhost" counts as not loopback: it may resolve to anything. */
static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (strcmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) != 1)
		return false;
	if (IN6_IS_ADDR_LOOPBACK(&a6))
		return true;
	return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

/* The listen host without IPv6 brackets. */
static void listen_host(const sk_config *cfg, char *out, size_t cap)
{
	size_t n = strlen(cfg->http_host);
	if (n >= 2 && cfg->http_host[0] == '[' && cfg->http_host[n - 1] == ']')
		snprintf(out, cap, "%.*s", (int)(n - 2), cfg->http_host + 1);
	else
		snprintf(out, cap, "%s", cfg->http_host);
}

static void tokens_init(struct worker_ctx *ctx, const sk_config *cfg)
{
	if (sodium_init() < 0)
		worker_fail(ctx, SK_EXIT_SOFTWARE, "libsodium could not start");
	randombytes_buf(H.token_key, sizeof(H.token_key));
	H.token_count = cfg->http_token_count;
	for (uint32_t i = 0; i < H.token_count; i++)
		token_hash(cfg->http_tokens[i], strlen(cfg->http_tokens[i]), H.token_hash[i]);
}

static void evhttp_limits(const sk_config *cfg)
{
	struct timeval idle = {.tv_sec = cfg->http_idle_timeout_ms / 1000,
			       .tv_usec = (cfg->http_idle_timeout_ms % 1000) * 1000};
	evhttp_set_max_headers_size(H.http, HTTP_HEADERS_HARD_BYTES);
	evhttp_set_max_body_size(H.http, (ev_ssize_t)cfg->http_body_bytes_max);
	evhttp_set_timeout_tv(H.http, &idle);
	evhttp_set_allowed_methods(H.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
						   EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						   EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
						   EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_default_content_type(H.http, HTTP_CONTENT_TYPE_DEFAULT);
	evhttp_set_flags(H.http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_bevcb(H.http, http_conn_bev_cb, NULL);
	evhttp_set_gencb(H.http, request_cb, NULL);
}

static sk_err http_listen(struct worker_ctx *ctx, const sk_config *cfg)
{
	char host[sizeof(cfg->http_host)];
	listen_host(cfg, host, sizeof(host));
	H.http = evhttp_new(ctx->base);
	if (!H.http)
		return SK_ENOMEM;
	evhttp_limits(cfg);
	H.bound = evhttp_bind_socket_with_handle(H.http, host, cfg->http_port);
	if (!H.bound)
		worker_fail(ctx, SK_EXIT_SOFTWARE, "cannot listen on %s port %u: %s", host,
			    cfg->http_port, strerror(errno));
	log_info("http_listening", "host=%s port=%u tokens=%u", host, cfg->http_port,
		 H.token_count);
	return SK_OK;
}

static sk_err http_init_cb(struct worker_ctx *ctx)
{
	const sk_config *cfg = ctx->cfg;
	char host[sizeof(cfg->http_host)];
	memset(&H, 0, sizeof(H));
	http_ctx = ctx;
	listen_host(cfg, host, sizeof(host));
	if (!host_is_loopback(host) && cfg->http_token_count == 0 && !cfg->http_allow_anonymous)
		worker_fail(ctx, SK_EXIT_CONFIG,
			    "[http] listen = %s is not a loopback address and [http] tokens is empty: "
			    "set tokens, or allow_anonymous = true to serve without them",
			    cfg->http_host);
	tokens_init(ctx, cfg);
	sk_err err = http_topics_init(cfg->data_dir, ctx->page);
	if (err == SK_OK)
		err = http_produce_init(ctx->base, ctx->page);
	if (err == SK_OK)
		err = http_conn_init(ctx->base, cfg->http_connections_max, cfg->http_idle_timeout_ms);
	if (err == SK_OK)
		err = http_read_init(ctx);
	if (err != SK_OK) {
		log_error("http_init_failed", "err=%s", sk_errname(err));
		return err;
	}
	H.read_up = true;
	err = http_listen(ctx, cfg);
	if (err == SK_OK)
		worker_ready(ctx);
	return err;
}

static void http_stop_cb(struct worker_ctx *ctx)
{
	/* Stop taking connections; requests in flight see their connection drop and
	 * retry with their idempotency key. */
	if (H.http && H.bound) {
		evhttp_del_accept_socket(H.http, H.bound);
		H.bound = NULL;
	}
	log_info("http_stopping", "waiting=%u", http_conn_open_count());
}

static void http_fini_cb(struct worker_ctx *ctx)
{
	/* Forget waiting requests before evhttp frees them with their connections. */
	http_produce_fini();
	if (H.read_up)
		http_read_fini();
	if (H.http)
		evhttp_free(H.http);
	http_conn_fini();
	http_topics_fini();
	memset(&H, 0, sizeof(H));
	http_ctx = NULL;
}

const struct worker_ops http_ops = {
	.name = "http",
	.init = http_init_cb,
	.stop = http_stop_cb,
	.fini = http_fini_cb,
};
