/* The writer worker: the only process that writes the journal and meta.db.
 *
 * init: map the rings, recover (store/recovery.h), publish the durable index,
 * report ready. Then one libevent loop whose unit of work is a group commit:
 *
 *   1. take every ingress record waiting, up to the batch limit and to the room
 *      left for completions (malformed records are dropped, logged and counted);
 *   2. wcore: validate, assign offsets, one frame per request, one pwritev, ONE
 *      fdatasync, index entries, one meta transaction if needed;
 *   3. publish durable index/term (stores only);
 *   4. push the completions (quietly), store the ring's durable sequence, and only
 *      then release the ingress records (move head), which wakes a waiting
 *      ingress producer first;
 *   5. fsync metrics, wake raft (SK_FD_DURABLE). http is woken for the completions
 *      only when the batch wrote no frame: otherwise the durable index moved, raft
 *      will move commit and wake http, and http drains its completions on that
 *      wake-up (one process wake-up per group commit fewer, on the ack path).
 * Batches, and a short spin for more work after each, run back to back for up to
 * WRITER_RUN_NS; then the loop runs again through a user event, so timers and the
 * heartbeat run between them. A failed fdatasync (or journal/meta/index I/O)
 * ends the process with SK_EXIT_IOERR: never retried, recovery re-reads the disk.
 * Damage found by recovery ends it with SK_EXIT_DATAERR, nothing truncated. */
#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/cpu.h"
#include "common/log.h"
#include "ipc/fds.h"
#include "ipc/msg.h"
#include "ipc/ring.h"
#include "ipc/status_page.h"
#include "workers/worker.h"
#include "workers/writer/writer_core.h"

#define WRITER_TICK_MS 100
#define WRITER_IDLE_CHECKPOINT_MS 1000 /* checkpoint after this long without a batch */
#define WRITER_RETENTION_MS 5000
#define WRITER_COMPLETION_REC_BYTES 80 /* ring header 24 + completion 56, 8-aligned */
/* Requests per group commit: large enough that the fdatasync is amortised (a few
 * thousand per fdatasync is already < 1 % of its cost), small enough that what
 * recovery re-reads after a SIGKILL stays short (see WC_CHECKPOINT_FRAMES). */
#define WRITER_BATCH_RECORDS 16384
#ifndef WRITER_SPIN_NS
#define WRITER_SPIN_NS 50000 /* look for more work this long after a batch before sleeping */
#endif
#define WRITER_SPIN_YIELD_NS 5000 /* and yield the CPU this often while spinning */
#define WRITER_RUN_NS 1000000 /* the loop runs (timers, heartbeat) at least this often */

struct writer {
	struct worker_ctx *ctx;
	struct sk_status_page *page;
	wcore *wc;
	ring *ing;
	ring *comp;
	struct event *ev_data;
	struct event *ev_space;
	struct event *ev_kick;
	struct event *ev_tick;
	uint64_t last_batch_ms;
	uint64_t last_retention_ms;
	uint64_t skipped_seen;
	uint64_t malformed;
	bool spin_allowed; /* a batch ran since the last spin */
};

static struct writer W;

/* Run the batch loop again at the next loop iteration. A zero-timeout timer, not
 * event_active(): libevent runs events activated from a callback in the same pass,
 * so a busy writer would never let the heartbeat or the housekeeping timer run. */
static void kick(void)
{
	static const struct timeval zero = {0, 0};
	evtimer_add(W.ev_kick, &zero);
}

static void set_state(enum sk_writer_state s)
{
	atomic_store(&W.page->writer_state, (uint32_t)s);
}

static void eventfd_kick(int fd)
{
	uint64_t one = 1;
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

__attribute__((noreturn)) static void writer_die(int code, const char *what, sk_err err)
{
	set_state(SK_WRITER_FAILED);
	worker_fail(W.ctx, code, "%s: %s", what, sk_strerror(err));
}

/* Completions that fit in the completion ring now (one record slack for a pad). */
static uint32_t completion_room(void)
{
	uint64_t free_bytes = ring_free_bytes(W.comp);
	if (free_bytes < 2 * WRITER_COMPLETION_REC_BYTES)
		return 0;
	uint64_t n = (free_bytes - WRITER_COMPLETION_REC_BYTES) / WRITER_COMPLETION_REC_BYTES;
	return n > WRITER_BATCH_RECORDS ? WRITER_BATCH_RECORDS : (uint32_t)n;
}

static void count_malformed(uint64_t seq, const char *why)
{
	atomic_fetch_add(&W.page->ring_malformed, 1);
	if (W.malformed++ % 1000 == 0)
		log_warn("ring_malformed", "seq=%" PRIu64 " why=%s count=%" PRIu64, seq, why, W.malformed);
}

/* Phase 1: take what waits. *cursor_out: where the ring is consumed to. */
static uint32_t take_batch(uint32_t room, uint64_t *cursor_out, uint64_t *last_seq_out)
{
	uint64_t cursor = ring_head(W.ing);
	uint32_t taken = 0;
	for (;;) {
		if (taken >= room)
			break;
		uint64_t prev = cursor;
		struct ring_rec rec;
		sk_err err = ring_peek(W.ing, &cursor, &rec);
		if (err == SK_EAGAIN || err == SK_EINVAL)
			break;
		if (err != SK_OK) {
			count_malformed(0, "ring record");
			/* A record the consumer can step over is dropped; a broken tail leaves
			 * the cursor where it was and no progress is possible in this ring.
			 * Exit: the supervisor's intensity limit then restarts the whole
			 * daemon, which creates fresh rings. */
			if (cursor == prev)
				worker_fail(W.ctx, SK_EXIT_SOFTWARE,
					    "ingress ring tail is damaged at cursor %" PRIu64, cursor);
			continue;
		}
		struct msg_req req;
		if (msg_req_decode(rec.payload, rec.len, &req) != SK_OK) {
			count_malformed(rec.seq, "request");
			continue;
		}
		enum wcore_take t = wcore_take(W.wc, rec.seq, &req);
		if (t == WCORE_NO_ROOM) {
			cursor = prev;
			break;
		}
		taken++;
		*last_seq_out = rec.seq;
		if (t == WCORE_TAKEN_END)
			break;
	}
	*cursor_out = cursor;
	return taken;
}

/* Phase 3: the durable index moved (and the topics, before any answer says so).
 * Stores only: raft is woken later (publish_wake). */
static void publish_durable_index(const struct wcore_stats *st)
{
	atomic_store(&W.page->durable_term, wcore_durable_term(W.wc));
	atomic_store(&W.page->durable_index, wcore_durable_index(W.wc));
	if (st->topics_changed)
		atomic_fetch_add(&W.page->topics_version, 1);
}

/* The fsync counters, then raft's wake-up (an http ack waits for raft, so the
 * counters already include the batch it acknowledges), for a durable index already
 * published. */
static void publish_wake(const struct wcore_stats *st)
{
	if (st->last_frames > 0) {
		status_page_count_fsync(W.page, st->last_fsync_ns, st->last_records, st->last_bytes);
		atomic_fetch_add(&W.page->frames_appended, st->last_frames);
	}
	eventfd_kick(SK_FD_DURABLE);
}

static void publish_durable(const struct wcore_stats *st)
{
	publish_durable_index(st);
	publish_wake(st);
}

/* Phase 4: answers, then the ring's durable sequence, then release. The answers are
 * pushed quietly: http is woken once, after the release (run_batch). Returns how
 * many were pushed. */
static uint32_t push_completions(void)
{
	uint32_t n, pushed = 0;
	const struct msg_completion *c = wcore_completions(W.wc, &n);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t buf[SK_MSG_COMPLETION_BYTES];
		msg_completion_encode(buf, &c[i]);
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
		sk_err err = ring_push_quiet(W.comp, &iov, 1, NULL);
		if (err == SK_OK)
			pushed++;
		else /* room was reserved: a broken consumer */
			log_error("completion_push_failed", "seq=%" PRIu64 " err=%s", c[i].req_seq, sk_errname(err));
	}
	uint64_t skipped = wcore_skipped(W.wc);
	if (skipped != W.skipped_seen) {
		atomic_fetch_add(&W.page->ring_skipped, skipped - W.skipped_seen);
		log_info("ring_replayed", "requests=%" PRIu64 " why=already_in_journal", skipped - W.skipped_seen);
		W.skipped_seen = skipped;
	}
	return pushed;
}

/* One group commit. Returns true when it consumed anything. */
static bool run_batch(void)
{
	uint32_t room = completion_room();
	if (room == 0) {
		ring_wait_prepare(W.comp);
		room = completion_room();
		if (room == 0)
			return false; /* woken by SK_FD_COMPLETION_SPACE */
	}
	uint64_t head = ring_head(W.ing), cursor = head, last_seq = 0;
	wcore_batch_begin(W.wc);
	uint32_t taken = take_batch(room, &cursor, &last_seq);
	if (taken == 0 && cursor == head)
		return false;
	struct wcore_stats st;
	sk_err err = wcore_batch_commit(W.wc, &st);
	if (err == SK_EIO)
		writer_die(SK_EXIT_IOERR, "journal, index or meta.db write failed", err);
	set_state(err == SK_EFULL || wcore_storage_full(W.wc) ? SK_WRITER_STORAGE_FULL : SK_WRITER_OK);
	/* Index entries and meta.db are in place (wcore_batch_commit): publish. Until the
	 * release below nothing but stores, so the first process woken is the ingress
	 * producer when it waits for durable_seq or room (an ack-per-request client: its
	 * next request is this writer's next batch); raft and http right after. */
	if (st.last_frames > 0)
		publish_durable_index(&st);
	uint32_t answers = push_completions();
	if (last_seq > ring_durable_seq(W.ing))
		ring_set_durable_seq(W.ing, last_seq);
	ring_release(W.ing, cursor);
	if (st.last_frames > 0)
		publish_wake(&st);
	else if (answers > 0)
		ring_wake_consumer(W.comp); /* no commit will follow: answers only */
	W.last_batch_ms = clock_mono_ms();
	W.spin_allowed = true;
	/* After the release: frames of records still in the ring stay after the checkpoint. */
	err = wcore_checkpoint_if_due(W.wc, false);
	if (err != SK_OK)
		writer_die(SK_EXIT_IOERR, "checkpoint failed", err);
	return true;
}

/* After a batch, the next request often arrives within microseconds (a client
 * that waits for its answer and sends the next): look for it a little while before
 * paying for a sleep and an eventfd wake-up. Bounded, and only right after work.
 * It yields the CPU now and then: raft and http (SCHED_BATCH, woken by this batch)
 * may be queued on this very CPU, and the next request comes through them. */
static bool spin_for_work(void)
{
	uint64_t now = clock_mono_ns(), until = now + WRITER_SPIN_NS, yield_at = now + WRITER_SPIN_YIELD_NS;
	for (;;) {
		if (ring_depth_bytes(W.ing) > 0)
			return true;
		cpu_relax();
		now = clock_mono_ns();
		if (now >= until)
			return false;
		if (now >= yield_at) {
			sched_yield();
			yield_at = now + WRITER_SPIN_YIELD_NS;
		}
	}
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	/* Batches (and the spins after them) back to back for up to WRITER_RUN_NS: a
	 * pass through the loop costs an epoll_wait that would sit on the path of an
	 * ack-per-request client's next request. Then the loop runs. */
	uint64_t until = clock_mono_ns() + WRITER_RUN_NS;
	for (;;) {
		if (run_batch()) {
			if (clock_mono_ns() < until)
				continue;
			kick(); /* more may wait: go round the loop first */
			return;
		}
		if (!W.spin_allowed || !spin_for_work())
			break;
		W.spin_allowed = false;
	}
	W.spin_allowed = false;
	/* Idle: arm the wake-up, then look once more before sleeping. */
	ring_wait_prepare(W.ing);
	if (ring_depth_bytes(W.ing) > 0 && completion_room() > 0)
		kick();
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	ring_wait_done(arg);
	kick_cb(-1, 0, NULL); /* at once: this is the latency of a lone produce */
}

static void housekeeping(uint64_t now_ms)
{
	bool idle = now_ms - W.last_batch_ms >= WRITER_IDLE_CHECKPOINT_MS;
	sk_err err = wcore_checkpoint_if_due(W.wc, idle);
	if (err != SK_OK)
		writer_die(SK_EXIT_IOERR, "checkpoint failed", err);
	const sk_config *cfg = W.ctx->cfg;
	if (now_ms - W.last_retention_ms < WRITER_RETENTION_MS)
		return;
	W.last_retention_ms = now_ms;
	bool changed = false;
	err = wcore_retention(W.wc, cfg->retention_bytes, cfg->retention_ms, clock_real_ms(), &changed);
	if (err != SK_OK)
		writer_die(SK_EXIT_IOERR, "retention failed", err);
	if (changed) {
		struct wcore_stats st = {0};
		st.topics_changed = true;
		publish_durable(&st);
	}
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	housekeeping(clock_mono_ms());
	kick(); /* safety net for a lost wake-up */
}

/* The first ingress sequence still in the ring (0: none). */
static uint64_t first_waiting_seq(void)
{
	uint64_t cursor = ring_head(W.ing);
	for (int i = 0; i < 1024; i++) {
		struct ring_rec rec;
		sk_err err = ring_peek(W.ing, &cursor, &rec);
		if (err == SK_OK)
			return rec.seq;
		if (err != SK_ECORRUPT)
			return 0;
	}
	return 0;
}

static void attach_rings(struct worker_ctx *ctx)
{
	sk_err err = ring_attach(SK_FD_INGRESS_RING, SK_RING_ID_INGRESS, RING_CONSUMER, SK_FD_INGRESS_DATA,
				 SK_FD_INGRESS_SPACE, &W.ing);
	if (err == SK_OK)
		err = ring_attach(SK_FD_COMPLETION_RING, SK_RING_ID_COMPLETION, RING_PRODUCER,
				  SK_FD_COMPLETION_DATA, SK_FD_COMPLETION_SPACE, &W.comp);
	if (err != SK_OK)
		worker_fail(ctx, SK_EXIT_SOFTWARE, "cannot attach the rings: %s", sk_strerror(err));
}

static void recover(struct worker_ctx *ctx)
{
	const sk_config *cfg = ctx->cfg;
	struct wcore_opts o = {.data_dir = cfg->data_dir, .segment_bytes = cfg->segment_bytes,
			       .partitions_max = cfg->http_partitions_max, .prepare_async = true,
			       .batch_records_max = WRITER_BATCH_RECORDS,
			       .batch_bytes_max = SK_JOURNAL_BATCH_BYTES_MAX};
	if (cfg->segment_bytes % SK_FRAME_ALIGN != 0)
		worker_fail(ctx, SK_EXIT_CONFIG, "%s: [storage] segment_bytes = %" PRIu64 " must be a multiple of %d",
			    cfg->path, cfg->segment_bytes, SK_FRAME_ALIGN);
	uint64_t t_open = clock_mono_ns();
	sk_err err = wcore_open(&o, &W.wc);
	if (err != SK_OK)
		writer_die(SK_EXIT_IOERR, "cannot open the store", err);
	uint64_t t0 = clock_mono_ns();
	struct recovery_result res;
	char why[SK_RECOVERY_WHY_BYTES];
	err = wcore_recover(W.wc, first_waiting_seq(), &res, why, sizeof(why));
	if (err == SK_ECORRUPT) {
		set_state(SK_WRITER_FAILED);
		worker_fail(ctx, SK_EXIT_DATAERR, "journal damaged: %s", why);
	}
	if (err != SK_OK) {
		set_state(SK_WRITER_FAILED);
		worker_fail(ctx, SK_EXIT_IOERR, "recovery failed: %s (%s)", sk_strerror(err), why);
	}
	uint64_t t1 = clock_mono_ns();
	log_info("recovered", "pid=%d last_index=%" PRIu64 " frames_scanned=%" PRIu64 " bytes_scanned=%" PRIu64
		 " tail_cut=%d max_ingress_seq=%" PRIu64 " open_us=%" PRIu64 " recover_us=%" PRIu64
		 " meta_read_us=%" PRIu64 " index_truncate_us=%" PRIu64 " scan_us=%" PRIu64 " sync_us=%" PRIu64
		 " meta_commit_us=%" PRIu64, (int)getpid(), res.last_index, res.frames, res.bytes, res.tail_cut,
		 res.max_ingress_seq, (t0 - t_open) / 1000, (t1 - t0) / 1000, res.open_ns / 1000,
		 res.index_truncate_ns / 1000, res.scan_ns / 1000, res.sync_ns / 1000, res.meta_commit_ns / 1000);
	/* A new ring (skiffd restarted) counts from 1: make its producer continue above
	 * every sequence in the journal, so none is taken for one already written. */
	if (ring_durable_seq(W.ing) == 0 && ring_head(W.ing) == 0 && res.max_ingress_seq > 0)
		ring_set_durable_seq(W.ing, res.max_ingress_seq);
}

static sk_err add_events(struct worker_ctx *ctx)
{
	W.ev_data = event_new(ctx->base, SK_FD_INGRESS_DATA, EV_READ | EV_PERSIST, wake_cb, W.ing);
	W.ev_space = event_new(ctx->base, SK_FD_COMPLETION_SPACE, EV_READ | EV_PERSIST, wake_cb, W.comp);
	W.ev_kick = event_new(ctx->base, -1, 0, kick_cb, NULL);
	W.ev_tick = event_new(ctx->base, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tick = {.tv_sec = 0, .tv_usec = WRITER_TICK_MS * 1000};
	if (!W.ev_data || !W.ev_space || !W.ev_kick || !W.ev_tick || event_add(W.ev_data, NULL) != 0 ||
	    event_add(W.ev_space, NULL) != 0 || event_add(W.ev_tick, &tick) != 0)
		return SK_ENOMEM;
	return SK_OK;
}

static sk_err writer_init_cb(struct worker_ctx *ctx)
{
	memset(&W, 0, sizeof(W));
	W.ctx = ctx;
	W.page = ctx->page;
	set_state(SK_WRITER_STARTING);
	attach_rings(ctx);
	recover(ctx);
	struct wcore_stats st = {.topics_changed = true};
	publish_durable(&st);
	atomic_fetch_add(&W.page->writer_epoch, 1);
	set_state(SK_WRITER_OK);
	if (add_events(ctx) != SK_OK)
		return SK_ENOMEM;
	W.last_batch_ms = clock_mono_ms();
	W.last_retention_ms = W.last_batch_ms;
	worker_ready(ctx);
	kick();
	return SK_OK;
}

static void writer_stop_cb(struct worker_ctx *ctx) { (void)ctx; }

static void writer_fini_cb(struct worker_ctx *ctx)
{
	if (W.ev_data)
		event_free(W.ev_data);
	if (W.ev_space)
		event_free(W.ev_space);
	if (W.ev_kick)
		event_free(W.ev_kick);
	if (W.ev_tick)
		event_free(W.ev_tick);
	wcore_close(W.wc);
	ring_detach(W.ing);
	ring_detach(W.comp);
	memset(&W, 0, sizeof(W));
}

const struct worker_ops writer_ops = {
	.name = "writer",
	.init = writer_init_cb,
	.stop = writer_stop_cb,
	.fini = writer_fini_cb,
};
