/* The http worker: one thread, one libevent loop, the API that curl talks to.
 *
 * HTTP itself (connections, framing, limits, timeouts, the reply's standard
 * headers) is http_server.c; this file is the router, auth and the small routes.
 * Requests go: route -> auth -> 404/405 -> handler. Handlers answer through
 * http_send()/http_fail(), which count the request for /metrics. Requests the
 * server refuses before they are whole (400 malformed, 413, 431) are answered
 * through refuse_cb, counted under the route "none". */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
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
#include "workers/http/http_server.h"
#include "workers/http/http_worker.h"

#define HTTP_STATUS_FILE_BYTES_MAX (1024 * 1024)
#define HTTP_TOKEN_HASH_BYTES 32
#define HTTP_MSG_BYTES 512

struct worker_ctx *http_ctx;

static struct {
	bool listening;
	uint8_t token_key[crypto_generichash_KEYBYTES];
	uint8_t token_hash[SK_HTTP_TOKENS_MAX][HTTP_TOKEN_HASH_BYTES];
	uint32_t token_count;
	bool read_up;
} H;

/* ---- replies ---- */

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

static void error_body(struct http_req *req, int status, const char *code, const char *fmt,
		       va_list ap)
{
	char msg[HTTP_MSG_BYTES];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	struct evbuffer *out = http_req_out(req);
	evbuffer_drain(out, evbuffer_get_length(out));
	evbuffer_add_printf(out, "{\"error\":\"%s\",\"message\":\"", code);
	http_json_escape(out, msg, strlen(msg));
	evbuffer_add(out, "\"}", 2);
	if (status == 503)
		http_req_add_header(req, "Retry-After", "1");
}

void http_reply_json(struct http_req *req, int status, struct evbuffer *body)
{
	if (body)
		evbuffer_add_buffer(http_req_out(req), body);
	http_req_reply(req, status);
}

void http_reply_error(struct http_req *req, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	error_body(req, status, code, fmt, ap);
	va_end(ap);
	http_req_reply(req, status);
}

void http_send(struct http_req *req, enum http_route route, int status)
{
	http_metrics_count_route(route, status);
	http_req_reply(req, status);
}

void http_fail(struct http_req *req, enum http_route route, int status, const char *code,
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
static bool auth_token_ok(struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");
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

static void handle_health(struct http_req *req)
{
	evbuffer_add(http_req_out(req), "{\"ok\":true}", 11);
	http_send(req, HTTP_R_HEALTH, 200);
}

static const char *writer_state_name(uint32_t st)
{
	static const char *const names[] = {"starting", "ok", "storage_full", "failed"};
	return st < 4 ? names[st] : "unknown";
}

static void handle_ready(struct http_req *req)
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
	evbuffer_add(http_req_out(req), "{\"ready\":true}", 14);
	http_send(req, HTTP_R_READY, 200);
}

static void handle_metrics(struct http_req *req)
{
	http_metrics_render(http_req_out(req), http_ctx->page);
	http_req_add_header(req, "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	http_send(req, HTTP_R_METRICS, 200);
}

/* GET /status: the supervisor's RUN_DIR/status.json, as it is. */
static void handle_status(struct http_req *req)
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
	struct evbuffer *out = http_req_out(req);
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

static void handle_topics_list(struct http_req *req)
{
	struct evbuffer *out = http_req_out(req);
	evbuffer_add(out, "{\"topics\":[", 11);
	if (http_topics_each(list_one, out) != SK_OK) {
		http_fail(req, HTTP_R_TOPICS, 503, "unavailable", "The topic list cannot be read yet.");
		return;
	}
	evbuffer_add(out, "]}", 2);
	http_send(req, HTTP_R_TOPICS, 200);
}

/* ---- read side (http_read.c serves these) ---- */

static const struct meta_topic *read_topic(struct http_req *req, enum http_route route,
					   const char *name, size_t len)
{
	struct http_topic *t = http_topic_or_fail(req, route, name, len);
	return t ? &t->t : NULL;
}

static bool consume_args(struct http_req *req, const struct http_match *m,
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

static void handle_consume(struct http_req *req, const struct http_match *m,
			   const char *query)
{
	const struct meta_topic *t = read_topic(req, HTTP_R_CONSUME, m->topic, m->topic_len);
	struct http_consume_args a;
	if (t && consume_args(req, m, query, t, &a))
		http_read_consume(req, t, &a);
}

static void handle_topic_info(struct http_req *req, const struct http_match *m)
{
	const struct meta_topic *t = read_topic(req, HTTP_R_TOPIC_INFO, m->topic, m->topic_len);
	if (t)
		http_read_topic_info(req, t);
}

/* ---- dispatch ---- */

static void dispatch(struct http_req *req, enum http_route route, const struct http_match *m,
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

static void request_cb(struct http_req *req)
{
	size_t path_len;
	const char *path = http_req_path(req, &path_len);
	struct http_match m;
	enum http_route route = http_route_match(path, path_len, &m);
	if (!auth_open(route) && !auth_token_ok(req)) {
		http_req_add_header(req, "WWW-Authenticate", "Bearer realm=\"skiff\"");
		http_fail(req, route, 401, "unauthorized",
			  "Send a valid token as Authorization: Bearer <token>.");
		return;
	}
	if (route == HTTP_R_NONE) {
		http_fail(req, route, 404, "not_found", "No such path.");
		return;
	}
	unsigned method = http_req_method(req);
	if (!(http_route_methods(route) & method)) {
		http_req_add_header(req, "Allow", http_route_allow(route));
		http_fail(req, route, 405, "method_not_allowed", "This path accepts %s.",
			  http_route_allow(route));
		return;
	}
	dispatch(req, route, &m, method, http_req_query(req));
}

static void refuse_cb(struct http_req *req, int status, const char *code, const char *message)
{
	http_fail(req, HTTP_R_NONE, status, code, "%s", message);
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

static sk_err http_listen(struct worker_ctx *ctx, const sk_config *cfg)
{
	char host[sizeof(cfg->http_host)];
	listen_host(cfg, host, sizeof(host));
	const struct http_server_limits lim = {
		.connections_max = cfg->http_connections_max,
		.idle_timeout_ms = cfg->http_idle_timeout_ms,
		.body_bytes_max = cfg->http_body_bytes_max,
		.headers_bytes_max = SK_HTTP_HEADERS_BYTES_MAX,
	};
	sk_err err = http_server_start(ctx->base, host, cfg->http_port, &lim, request_cb, refuse_cb);
	if (err == SK_ENOMEM)
		return err;
	if (err != SK_OK)
		worker_fail(ctx, SK_EXIT_SOFTWARE, "cannot listen on %s port %u: %s", host,
			    cfg->http_port, strerror(errno));
	H.listening = true;
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
	http_server_stop_accepting();
	log_info("http_stopping", "open=%u", http_server_open_count());
}

static void http_fini_cb(struct worker_ctx *ctx)
{
	/* Forget waiting requests before the server frees them with their connections. */
	http_produce_fini();
	if (H.read_up)
		http_read_fini();
	if (H.listening)
		http_server_free();
	http_topics_fini();
	memset(&H, 0, sizeof(H));
	http_ctx = NULL;
}

const struct worker_ops http_ops = {
	.name = "http",
	.init = http_init_cb,
	.stop = http_stop_cb,
	.fini = http_fini_cb,
	.sched_batch = true,
};
