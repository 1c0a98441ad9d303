/* The raft worker, single node: a one-member group (raft_single.h). On every
 * durable-index wake-up from the writer (SK_FD_DURABLE), and on a timer as a
 * safety net, it steps the core and publishes commit index, term and leader on the
 * status page, then wakes http (SK_FD_COMMIT_HTTP), which answers produces and
 * long-polls (replay is asked by http, so it needs no wake-up of its own).
 * Every acknowledgement waits for commit_index, so killing this worker pauses
 * acknowledgements until the supervisor restarts it. */
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "ipc/fds.h"
#include "ipc/status_page.h"
#include "workers/raft/raft_single.h"
#include "workers/worker.h"

#define RAFT_POLL_MS 50

static struct {
	struct worker_ctx *ctx;
	struct raft_single core;
	struct event *ev_durable;
	struct event *ev_poll;
	bool silent; /* fault hook: publish commit but never wake http */
} R;

static void eventfd_kick(int fd)
{
	uint64_t one = 1;
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void eventfd_drain(int fd)
{
	uint64_t n;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
}

/* Publish in the order readers need: term and leader first, commit index last. */
static void publish(void)
{
	struct sk_status_page *pg = R.ctx->page;
	atomic_store(&pg->term, R.core.term);
	atomic_store(&pg->leader_id, R.core.leader_id);
	atomic_store(&pg->commit_index, R.core.commit_index);
	if (!R.silent)
		eventfd_kick(SK_FD_COMMIT_HTTP);
}

static void step(void)
{
	struct sk_status_page *pg = R.ctx->page;
	uint64_t term = atomic_load(&pg->durable_term);
	uint64_t durable = atomic_load(&pg->durable_index);
	if (raft_single_step(&R.core, R.ctx->cfg->node_id, durable, term))
		publish();
}

static void durable_cb(evutil_socket_t fd, short what, void *arg)
{
	eventfd_drain(SK_FD_DURABLE);
	step();
}

static void poll_cb(evutil_socket_t fd, short what, void *arg) { step(); }

static sk_err raft_init_cb(struct worker_ctx *ctx)
{
	memset(&R, 0, sizeof(R));
	R.ctx = ctx;
#ifdef SKIFF_FAULTS
	/* Tests (SKIFF_FAULT_NO_COMMIT_WAKE=raft): lose every commit wake-up, so http
	 * answers only on its safety-net tick (skiff_http_tick_answers_total shows it). */
	int arg;
	R.silent = worker_fault("SKIFF_FAULT_NO_COMMIT_WAKE", ctx->id, &arg);
#endif
	/* Never publish a commit index below the one already out (a restart). */
	R.core.commit_index = atomic_load(&ctx->page->commit_index);
	R.core.term = atomic_load(&ctx->page->term);
	R.ev_durable = event_new(ctx->base, SK_FD_DURABLE, EV_READ | EV_PERSIST, durable_cb, NULL);
	R.ev_poll = event_new(ctx->base, -1, EV_PERSIST, poll_cb, NULL);
	struct timeval tv = {.tv_sec = 0, .tv_usec = RAFT_POLL_MS * 1000};
	if (!R.ev_durable || !R.ev_poll || event_add(R.ev_durable, NULL) != 0 || event_add(R.ev_poll, &tv) != 0)
		return SK_ENOMEM;
	step();
	publish(); /* commit = durable at once, even if nothing changed */
	atomic_fetch_add(&ctx->page->raft_epoch, 1);
	log_info("single_node", "node_id=%" PRIu32 " commit_index=%" PRIu64 " term=%" PRIu64, ctx->cfg->node_id,
		 R.core.commit_index, R.core.term);
	worker_ready(ctx);
	return SK_OK;
}

static void raft_stop_cb(struct worker_ctx *ctx) { (void)ctx; }

static void raft_fini_cb(struct worker_ctx *ctx)
{
	if (R.ev_durable)
		event_free(R.ev_durable);
	if (R.ev_poll)
		event_free(R.ev_poll);
	memset(&R, 0, sizeof(R));
}

const struct worker_ops raft_ops = {
	.name = "raft",
	.init = raft_init_cb,
	.stop = raft_stop_cb,
	.fini = raft_fini_cb,
	.sched_batch = true,
};
