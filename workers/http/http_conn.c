/* Connection slots: the bound on open connections and the slow-client timeout
 * that evhttp (libevent 2.1) does not have.
 *
 * evhttp gives no hook when it accepts or frees a connection, so:
 *   - evhttp_set_bevcb makes evhttp ask us for each new connection's
 *     bufferevent; we take a slot and activate the slot's event;
 *   - that event runs before the loop polls again (so before any byte of the
 *     connection is read): by then evhttp has set the bufferevent's callbacks,
 *     whose argument is the evhttp_connection (bufferevent_getcb). Over
 *     [http] connections_max we answer 503 on the socket and free it; else we
 *     set a close callback that gives the slot back.
 *   - evhttp's timeout only catches a connection that sends nothing for
 *     idle_timeout_ms; one that trickles a byte now and then would hold its
 *     slot forever. A sweep closes every connection that has no request in a
 *     handler, no answer still being written, and has not completed a request
 *     for idle_timeout_ms: a whole request must arrive within idle_timeout_ms.
 * Slots are found again from a request through the socket's fd (unique among
 * open connections). */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/log.h"
#include "workers/http/http_worker.h"

#define CONN_SPARE_SLOTS 64      /* accepted in one loop pass beyond the limit, then refused */
#define CONN_FD_INDEX_MAX (1u << 20)
#define CONN_SWEEP_MS_MIN 100
#define CONN_SWEEP_MS_MAX 1000

enum conn_state { CONN_FREE = 0, CONN_NEW, CONN_LIVE };

struct conn_slot {
	struct bufferevent *bev;
	struct evhttp_connection *evcon;
	struct event *attach_ev;
	int fd;
	uint32_t busy; /* requests handed to a handler and not answered yet */
	uint64_t active_ms;
	uint8_t state;
};

static struct {
	struct event_base *base;
	struct conn_slot *slots;
	uint32_t cap;
	uint32_t *free_list;
	uint32_t free_count;
	int32_t *by_fd;
	uint32_t by_fd_cap;
	uint32_t live;
	uint32_t max;
	uint32_t idle_ms;
	uint64_t refused;
	struct event *sweep_ev;
} C;

#define CONN_REFUSAL_BODY                                                                         \
	"{\"error\":\"too_many_connections\",\"message\":\"The server has too many open "             \
	"connections; retry.\"}"

static char conn_refusal[256]; /* the whole 503 response, built at init */
static int conn_refusal_len;

static void slot_put(struct conn_slot *s)
{
	if (s->state == CONN_LIVE) {
		if (s->fd >= 0 && (uint32_t)s->fd < C.by_fd_cap)
			C.by_fd[s->fd] = -1;
		C.live--;
	}
	s->state = CONN_FREE;
	s->bev = NULL;
	s->evcon = NULL;
	s->fd = -1;
	s->busy = 0;
	C.free_list[C.free_count++] = (uint32_t)(s - C.slots);
}

static void conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	struct conn_slot *s = arg;
	if (s->state == CONN_LIVE && s->evcon == evcon)
		slot_put(s);
}

/* Answer 503 on the raw socket (best effort, it is tiny) and drop the connection. */
static void conn_refuse(struct evhttp_connection *evcon, int fd)
{
	C.refused++;
	if (fd >= 0)
		(void)send(fd, conn_refusal, (size_t)conn_refusal_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	evhttp_connection_free(evcon);
}

static struct evhttp_connection *bev_evcon(struct bufferevent *bev)
{
	void *arg = NULL;
	bufferevent_getcb(bev, NULL, NULL, NULL, &arg);
	return arg;
}

static void conn_attach_cb(evutil_socket_t unused, short what, void *arg)
{
	struct conn_slot *s = arg;
	struct evhttp_connection *evcon = bev_evcon(s->bev);
	int fd = bufferevent_getfd(s->bev);
	if (!evcon) {
		log_warn("http_conn_untracked", "reason=\"no evhttp connection behind a bufferevent\"");
		slot_put(s);
		return;
	}
	if (C.live >= C.max) {
		slot_put(s);
		conn_refuse(evcon, fd);
		return;
	}
	/* Request/response traffic: without TCP_NODELAY a reply written in two pieces
	 * waits for the client's delayed ACK (tens of ms per consume page). */
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	s->evcon = evcon;
	s->fd = fd;
	s->state = CONN_LIVE;
	s->active_ms = clock_mono_ms();
	C.live++;
	if (fd >= 0 && (uint32_t)fd < C.by_fd_cap)
		C.by_fd[fd] = (int32_t)(s - C.slots);
	evhttp_connection_set_closecb(evcon, conn_closed_cb, s);
}

/* No slot left in this loop pass: refuse without one. */
static void conn_refuse_cb(evutil_socket_t unused, short what, void *arg)
{
	struct bufferevent *bev = arg;
	struct evhttp_connection *evcon = bev_evcon(bev);
	if (evcon)
		conn_refuse(evcon, bufferevent_getfd(bev));
}

struct bufferevent *http_conn_bev_cb(struct event_base *base, void *arg)
{
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!bev)
		return NULL; /* evhttp makes its own; that connection goes untracked */
	if (C.free_count == 0) {
		static const struct timeval now = {0, 0};
		event_base_once(base, -1, EV_TIMEOUT, conn_refuse_cb, bev, &now);
		return bev;
	}
	struct conn_slot *s = &C.slots[C.free_list[--C.free_count]];
	s->state = CONN_NEW;
	s->bev = bev;
	s->busy = 0;
	event_active(s->attach_ev, EV_TIMEOUT, 1);
	return bev;
}

static struct conn_slot *conn_of(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (!evcon)
		return NULL;
	int fd = bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
	if (fd < 0 || (uint32_t)fd >= C.by_fd_cap || C.by_fd[fd] < 0)
		return NULL;
	struct conn_slot *s = &C.slots[C.by_fd[fd]];
	return s->state == CONN_LIVE && s->evcon == evcon ? s : NULL;
}

void http_conn_busy(struct evhttp_request *req)
{
	struct conn_slot *s = conn_of(req);
	if (s)
		s->busy++;
}

void http_conn_idle(struct evhttp_request *req)
{
	struct conn_slot *s = conn_of(req);
	if (!s)
		return;
	if (s->busy)
		s->busy--;
	s->active_ms = clock_mono_ms();
}

static void conn_sweep_cb(evutil_socket_t unused, short what, void *arg)
{
	uint64_t now = clock_mono_ms();
	for (uint32_t i = 0; i < C.cap; i++) {
		struct conn_slot *s = &C.slots[i];
		if (s->state != CONN_LIVE || s->busy || now - s->active_ms <= C.idle_ms)
			continue;
		/* An answer still being written is evhttp's write timeout's business. */
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
			continue;
		struct evhttp_connection *evcon = s->evcon;
		evhttp_connection_set_closecb(evcon, NULL, NULL);
		slot_put(s);
		evhttp_connection_free(evcon);
	}
}

uint32_t http_conn_open_count(void) { return C.live; }
uint64_t http_conn_refused_count(void) { return C.refused; }

static uint32_t conn_fd_bound(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > CONN_FD_INDEX_MAX)
		return CONN_FD_INDEX_MAX;
	return (uint32_t)rl.rlim_cur;
}

static sk_err conn_alloc(uint32_t connections_max)
{
	C.cap = connections_max + CONN_SPARE_SLOTS;
	C.by_fd_cap = conn_fd_bound();
	C.slots = calloc(C.cap, sizeof(*C.slots));
	C.free_list = calloc(C.cap, sizeof(*C.free_list));
	C.by_fd = malloc((size_t)C.by_fd_cap * sizeof(*C.by_fd));
	if (!C.slots || !C.free_list || !C.by_fd)
		return SK_ENOMEM;
	memset(C.by_fd, 0xff, (size_t)C.by_fd_cap * sizeof(*C.by_fd));
	for (uint32_t i = C.cap; i-- > 0;) {
		struct conn_slot *s = &C.slots[i];
		s->fd = -1;
		s->attach_ev = event_new(C.base, -1, 0, conn_attach_cb, s);
		if (!s->attach_ev)
			return SK_ENOMEM;
		C.free_list[C.free_count++] = i;
	}
	return SK_OK;
}

sk_err http_conn_init(struct event_base *base, uint32_t connections_max, uint32_t idle_timeout_ms)
{
	memset(&C, 0, sizeof(C));
	C.base = base;
	C.max = connections_max;
	C.idle_ms = idle_timeout_ms;
	conn_refusal_len = snprintf(conn_refusal, sizeof(conn_refusal),
				    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
				    "Retry-After: 1\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
				    sizeof(CONN_REFUSAL_BODY) - 1, CONN_REFUSAL_BODY);
	sk_err err = conn_alloc(connections_max);
	if (err != SK_OK)
		return err;
	uint32_t sweep_ms = idle_timeout_ms / 4;
	sweep_ms = sweep_ms < CONN_SWEEP_MS_MIN ? CONN_SWEEP_MS_MIN : sweep_ms;
	sweep_ms = sweep_ms > CONN_SWEEP_MS_MAX ? CONN_SWEEP_MS_MAX : sweep_ms;
	struct timeval tv = {.tv_sec = sweep_ms / 1000, .tv_usec = (sweep_ms % 1000) * 1000};
	C.sweep_ev = event_new(base, -1, EV_PERSIST, conn_sweep_cb, NULL);
	if (!C.sweep_ev || event_add(C.sweep_ev, &tv) != 0)
		return SK_ENOMEM;
	return SK_OK;
}

void http_conn_fini(void)
{
	if (C.sweep_ev)
		event_free(C.sweep_ev);
	for (uint32_t i = 0; C.slots && i < C.cap; i++)
		if (C.slots[i].attach_ev)
			event_free(C.slots[i].attach_ev);
	free(C.slots);
	free(C.free_list);
	free(C.by_fd);
	memset(&C, 0, sizeof(C));
}
