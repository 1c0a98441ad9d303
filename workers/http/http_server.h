/* The http worker's HTTP/1.1 server (http_server.c): connections on the
 * worker's libevent loop, requests framed by libhttp-parser, one request in a
 * handler per connection at a time, replies written with one writev.
 *
 * A request is handed to the handler once its head and whole body are in; the
 * handler answers it, now or later (a produce waits for its commit), with
 * http_req_reply(). Until then the request stays valid even if the client goes
 * away: the reply is then dropped and the connection freed. After the reply the
 * pointer must not be used again (the connection's next request reuses it). */
#ifndef SK_HTTP_SERVER_H
#define SK_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sk_error.h"

struct event_base;
struct evbuffer;
struct http_req;

struct http_server_limits {
	uint32_t connections_max; /* more are answered 503 too_many_connections and closed */
	uint32_t idle_timeout_ms; /* a whole request, or a stalled reply write, within this */
	uint64_t body_bytes_max;  /* larger bodies: 413 before they are read */
	uint32_t headers_bytes_max; /* request line + headers; larger: 431 */
};

/* Called for every complete request. */
typedef void (*http_request_fn)(struct http_req *req);
/* Called for a request the server refuses before it is complete (400 malformed,
 * 413 body too large, 431 headers too large): the handler writes the error body
 * (code, sentence) and replies; the connection closes after that reply. */
typedef void (*http_refuse_fn)(struct http_req *req, int status, const char *code,
			       const char *message);

/* Listen on host:port (host: an address or a name getaddrinfo resolves; NULL:
 * no listener, connections come only through http_server_adopt). */
sk_err http_server_start(struct event_base *base, const char *host, uint16_t port,
			 const struct http_server_limits *lim, http_request_fn on_request,
			 http_refuse_fn on_refuse);
/* Serve a connected, non-blocking stream socket as if it had been accepted
 * (the fuzz target uses a socketpair). Takes fd; SK_EFULL when over the limit. */
sk_err http_server_adopt(int fd);
/* Stop taking connections; open ones carry on. */
void http_server_stop_accepting(void);
/* Close every connection and free everything (requests in handlers included). */
void http_server_free(void);
uint32_t http_server_open_count(void);
uint64_t http_server_refused_count(void);

/* ---- one request ---- */
/* HTTP_M_GET, HTTP_M_POST, HTTP_M_HEAD or HTTP_M_OTHER (workers/http/http_parse.h). */
unsigned http_req_method(const struct http_req *req);
/* The request target's path (not decoded) and its query after '?' (NULL when
 * there is none); both NUL-terminated. */
const char *http_req_path(const struct http_req *req, size_t *len);
const char *http_req_query(const struct http_req *req);
/* The first header with this name (case-insensitive), NUL-terminated, or NULL. */
const char *http_req_header(const struct http_req *req, const char *name);
/* True when the request said how long its body is (Content-Length or chunked). */
bool http_req_body_framed(const struct http_req *req);
/* The whole body, and the buffer the reply's body is written into. */
struct evbuffer *http_req_body(struct http_req *req);
struct evbuffer *http_req_out(struct http_req *req);
/* Add a reply header. Content-Type replaces the default (application/json). The
 * reply holds HTTP_REPLY_HEADERS_BYTES of added headers; past that the header is
 * refused (logged) rather than cut. */
sk_err http_req_add_header(struct http_req *req, const char *name, const char *value);
/* Send the reply: status, the standard headers, the added ones, http_req_out(). */
void http_req_reply(struct http_req *req, int status);

#endif
