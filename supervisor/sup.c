/* The supervisor loop (sup.h): states, events and the control commands. */
#include "supervisor/sup.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "supervisor/sup_control.h"
#include "supervisor/sup_history.h"
#include "supervisor/sup_notify.h"
#include "supervisor/sup_policy.h"
#include "supervisor/sup_proc.h"
#include "supervisor/sup_status.h"
#include "workers/worker.h"

#define SUP_LINE_BYTES_MAX 512 /* one line on a readiness pipe */
#define SUP_TICK_MS_MAX 1000   /* the timer fires at least this often */
#define SUP_STATUS_FILE "status.json"
#define SUP_NO_REASON (-1)

enum sup_start_kind { SUP_START_FIRST = 0, SUP_START_AUTO, SUP_START_MANUAL };

struct sup_child {
	enum sk_worker_id id;
	enum sup_state state;
	struct sup_proc proc; /* pid 0 when no process */
	struct event *ev_exit;
	struct event *ev_ready;
	char line[SUP_LINE_BYTES_MAX];
	size_t line_len;
	bool ready;
	uint64_t started_ms; /* monotonic */
	uint64_t ready_ms;
	uint64_t deadline_ms; /* starting: ready timeout; stopping: SIGKILL */
	bool killed;          /* SIGKILL sent */
	int kill_reason;      /* enum sup_reason to record at exit, or SUP_NO_REASON */
	char detail[SUP_DETAIL_BYTES_MAX];
	/* a stop in progress: picked in reverse order, one worker at a time */
	bool stop_wanted;
	bool restart_after_stop;
	int stop_reason;
	/* backoff */
	uint64_t restart_at_ms;
	enum sup_start_kind next_start;
	uint64_t restarts_auto;
	uint64_t restarts_manual;
	bool has_exit;
	struct sup_exit last_exit;
	struct sup *sup;
};

struct sup {
	const sk_config *cfg;
	const char *exe;
	struct event_base *base;
	struct event *ev_timer;
	struct event *ev_signal[3]; /* SIGTERM, SIGINT, SIGCHLD */
	struct event *ev_control;
	struct sup_child child[SK_WORKER_COUNT];
	struct sup_policy policy;
	struct sup_fds fds;
	sup_control *control;
	sup_history *history;
	struct sup_notify notify;
	int lock_fd;
	int run_lock_fd;
	uint64_t started_ms;
	uint64_t watchdog_next_ms;
	uint64_t rng;
	bool stopping;
	int stop_signals; /* SIGTERM/SIGINT received */
	int exit_code;
	bool ready_notified;
	bool dirty; /* status.json must be rewritten */
	char status_path[SK_PATH_BYTES_MAX + 32];
	char control_path[SK_PATH_BYTES_MAX + 32];
};

static void sup_step(struct sup *s);

/* xorshift64*: jitter only, needs no quality beyond "not in lockstep". */
static uint64_t sup_rand_cb(void *ctx)
{
	struct sup *s = ctx;
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545F4914F6CDD1Dull;
}

static const char *wname(const struct sup_child *c) { return cfg_worker_name(c->id); }

static void child_set_state(struct sup_child *c, enum sup_state st)
{
	if (c->state != st)
		c->sup->dirty = true;
	c->state = st;
}

static bool child_settled(const struct sup_child *c)
{
	return c->state == SUP_STATE_RUNNING || c->state == SUP_STATE_FAILED ||
	       c->state == SUP_STATE_STOPPED;
}

static void child_kill(struct sup_child *c, int reason, const char *event)
{
	if (c->proc.pid <= 0 || c->killed)
		return;
	sup_proc_signal(&c->proc, SIGKILL);
	c->killed = true;
	if (reason != SUP_NO_REASON)
		c->kill_reason = reason;
	log_warn(event, "worker=%s pid=%d", wname(c), (int)c->proc.pid);
}

/* ---- readiness pipe ---- */

static void child_line(struct sup_child *c, char *line)
{
	if (strcmp(line, "ready") == 0) {
		if (c->state != SUP_STATE_STARTING || c->ready)
			return;
		uint64_t now = clock_mono_ms();
		c->ready = true;
		c->ready_ms = now;
		child_set_state(c, SUP_STATE_RUNNING);
		log_info("ready", "worker=%s pid=%d start_ms=%llu", wname(c), (int)c->proc.pid,
			 (unsigned long long)(now - c->started_ms));
	} else if (strncmp(line, "fail ", 5) == 0) {
		char *msg = strchr(line + 5, ' ');
		const char *text = msg ? msg + 1 : "";
		for (char *p = (char *)text; *p; p++)
			if ((unsigned char)*p < 0x20)
				*p = '?';
		snprintf(c->detail, sizeof(c->detail), "%s", text);
		c->sup->dirty = true;
	} else {
		char q[128];
		log_warn("bad_ready_line", "worker=%s line=%s", wname(c), log_quote(q, sizeof(q), line));
	}
}

/* Read whatever waits on the pipe; lines longer than the buffer are cut. Returns false
 * at EOF or error (the pipe is done). */
static bool child_read_pipe(struct sup_child *c)
{
	for (int rounds = 0; rounds < 64; rounds++) {
		char buf[256];
		ssize_t n = read(c->proc.ready_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		if (n == 0)
			return false;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				c->line[c->line_len] = 0;
				child_line(c, c->line);
				c->line_len = 0;
			} else if (c->line_len < sizeof(c->line) - 1) {
				c->line[c->line_len++] = buf[i];
			}
		}
	}
	return true;
}

static void child_close_pipe(struct sup_child *c)
{
	if (c->ev_ready) {
		event_free(c->ev_ready);
		c->ev_ready = NULL;
	}
	if (c->proc.ready_fd >= 0) {
		close(c->proc.ready_fd);
		c->proc.ready_fd = -1;
	}
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sup_child *c = arg;
	if (!child_read_pipe(c))
		child_close_pipe(c);
	sup_step(c->sup);
}

/* ---- exits ---- */

static void child_record_exit(struct sup *s, struct sup_child *c, int status, uint64_t now)
{
	struct sup_exit *e = &c->last_exit;
	memset(e, 0, sizeof(*e));
	e->worker = c->id;
	e->pid = c->proc.pid;
	e->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	e->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	e->core = WIFSIGNALED(status) && WCOREDUMP(status);
	e->reason = c->kill_reason != SUP_NO_REASON ? (enum sup_reason)c->kill_reason
			: e->signal	? SUP_REASON_SIGNAL
					: SUP_REASON_EXIT;
	e->at_ms = clock_real_ms();
	e->uptime_ms = now - c->started_ms;
	e->restarts_auto = c->restarts_auto;
	e->restarts_manual = c->restarts_manual;
	snprintf(e->detail, sizeof(e->detail), "%s", c->detail);
	c->has_exit = true;
	char q[SUP_DETAIL_BYTES_MAX + 8];
	log_event(e->reason == SUP_REASON_EXIT && e->code == 0 ? LOG_INFO : LOG_WARN, "exit",
		  "worker=%s pid=%d reason=%s code=%d signal=%d core=%d uptime_ms=%llu%s%s",
		  wname(c), (int)e->pid, sup_reason_name(e->reason), e->code, e->signal, e->core,
		  (unsigned long long)e->uptime_ms, e->detail[0] ? " detail=" : "",
		  e->detail[0] ? log_quote(q, sizeof(q), e->detail) : "");
	if (s->history && sup_history_add(s->history, e) != SK_OK)
		log_warn("history_write_failed", "worker=%s", wname(c));
}

/* The process is gone: release its descriptors and events. */
static void child_forget_proc(struct sup *s, struct sup_child *c)
{
	if (c->proc.ready_fd >= 0)
		child_read_pipe(c); /* a last "fail" line may wait */
	child_close_pipe(c);
	if (c->ev_exit) {
		event_free(c->ev_exit);
		c->ev_exit = NULL;
	}
	if (c->proc.pidfd >= 0)
		close(c->proc.pidfd);
	c->proc.pidfd = -1;
	c->proc.pid = 0;
	c->ready = false;
	atomic_store(&s->fds.page->ready[c->id], 0);
	s->dirty = true;
}

/* A stop we asked for is over. */
static void child_finish_stop(struct sup *s, struct sup_child *c)
{
	c->stop_wanted = false;
	if (c->restart_after_stop && !s->stopping)
		child_set_state(c, SUP_STATE_BACKOFF);
	else if (c->state != SUP_STATE_FAILED)
		child_set_state(c, SUP_STATE_STOPPED);
	c->restart_after_stop = false;
}

static void sup_begin_stop(struct sup *s, int exit_code, const char *why)
{
	if (s->stopping)
		return;
	s->stopping = true;
	s->exit_code = exit_code;
	sup_notify_send(&s->notify, "STOPPING=1");
	log_info("stopping", "why=%s", why);
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		struct sup_child *c = &s->child[i];
		c->restart_after_stop = false;
		if (c->proc.pid > 0) {
			c->stop_wanted = true;
			if (c->state != SUP_STATE_STOPPING)
				c->stop_reason = SUP_NO_REASON;
		} else if (c->state == SUP_STATE_BACKOFF) {
			child_set_state(c, SUP_STATE_STOPPED);
		}
	}
}

/* Apply a restart decision: the exited child waits out the backoff; the others of its
 * group are stopped (reverse order) and then wait for the same moment. */
static void sup_apply_restart(struct sup *s, struct sup_child *c, const struct sup_decision *d,
			      uint64_t now)
{
	uint64_t at = now + d->delay_ms;
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		struct sup_child *o = &s->child[i];
		bool restart = d->restart_mask & (1u << i);
		if (o == c) {
			o->restart_at_ms = at;
			o->next_start = SUP_START_AUTO;
			child_set_state(o, SUP_STATE_BACKOFF);
		} else if ((d->stop_mask & (1u << i)) && o->proc.pid > 0) {
			o->stop_wanted = true;
			o->restart_after_stop = o->restart_after_stop || restart;
			o->stop_reason = SUP_REASON_STRATEGY;
			o->restart_at_ms = at;
			o->next_start = SUP_START_AUTO;
		} else if ((d->stop_mask & (1u << i)) && o->state == SUP_STATE_BACKOFF) {
			if (o->restart_at_ms < at)
				o->restart_at_ms = at;
		}
	}
	log_info("restart", "worker=%s strategy=%s delay_ms=%u restarts_in_period=%u intensity=%u",
		 wname(c), cfg_strategy_name(s->cfg->strategy), d->delay_ms, d->restarts_in_period,
		 s->cfg->intensity);
}

static void sup_decide(struct sup *s, struct sup_child *c, uint64_t now)
{
	const struct sup_exit *e = &c->last_exit;
	enum sup_exit_kind kind = sup_exit_classify(e->code, e->signal);
	struct sup_decision d;
	sup_policy_decide(&s->policy, c->id, kind, now, e->uptime_ms, sup_rand_cb, s, &d);
	char q[SUP_DETAIL_BYTES_MAX + 8];
	switch (d.action) {
	case SUP_ACT_NONE:
		child_set_state(c, SUP_STATE_STOPPED);
		log_info("not_restarted", "worker=%s restart=%s", wname(c),
			 cfg_restart_name(s->cfg->workers[c->id].restart));
		break;
	case SUP_ACT_FAIL:
		child_set_state(c, SUP_STATE_FAILED);
		log_error("failed", "worker=%s code=%d why=%s restarting=no others=running", wname(c),
			  e->code,
			  log_quote(q, sizeof(q), e->detail[0] ? e->detail : "permanent exit code"));
		break;
	case SUP_ACT_ESCALATE:
		child_set_state(c, SUP_STATE_STOPPED);
		log_error("escalate", "worker=%s restarts_in_period=%u intensity=%u period_ms=%u",
			  wname(c), d.restarts_in_period, s->cfg->intensity, s->cfg->period_ms);
		sup_begin_stop(s, SUP_EXIT_ESCALATED, "restart-intensity-exceeded");
		break;
	case SUP_ACT_RESTART:
		sup_apply_restart(s, c, &d, now);
		break;
	}
}

static void child_exited(struct sup *s, struct sup_child *c, int status)
{
	uint64_t now = clock_mono_ms();
	child_record_exit(s, c, status, now);
	enum sup_state was = c->state;
	child_forget_proc(s, c);
	if (was == SUP_STATE_STOPPING || c->stop_wanted)
		child_finish_stop(s, c);
	else if (s->stopping)
		child_set_state(c, SUP_STATE_STOPPED);
	else
		sup_decide(s, c, now);
}

/* Reap every child that ended: ours are dispatched, orphans we adopted as subreaper are
 * only collected. Bounded: at most one pass per possible child plus orphans. */
static void sup_reap(struct sup *s)
{
	for (int rounds = 0; rounds < 1024; rounds++) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		bool ours = false;
		for (int i = 0; i < SK_WORKER_COUNT && !ours; i++)
			if (s->child[i].proc.pid == pid) {
				ours = true;
				child_exited(s, &s->child[i], status);
			}
		if (!ours)
			log_debug("reaped_orphan", "pid=%d", (int)pid);
	}
}

static void exit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sup_child *c = arg;
	struct sup *s = c->sup;
	sup_reap(s);
	sup_step(s);
}

/* ---- starting and stopping ---- */

/* SK_WORKER_READY_TIMEOUT_MS, or for tests SKIFF_FAULT_READY_TIMEOUT_MS=name:ms,...
 * (never compiled into a release). */
static uint64_t sup_ready_timeout_ms(enum sk_worker_id id)
{
#ifdef SKIFF_FAULTS
	const char *v = getenv("SKIFF_FAULT_READY_TIMEOUT_MS");
	const char *name = cfg_worker_name(id);
	size_t n = strlen(name);
	for (const char *p = v; p && *p; p += strcspn(p, ","), p += *p == ',')
		if (strncmp(p, name, n) == 0 && p[n] == ':' && atoi(p + n + 1) > 0)
			return (uint64_t)atoi(p + n + 1);
#endif
	return SK_WORKER_READY_TIMEOUT_MS;
}

static void child_spawn(struct sup *s, struct sup_child *c, uint64_t now)
{
	if (c->next_start == SUP_START_AUTO)
		c->restarts_auto++;
	else if (c->next_start == SUP_START_MANUAL)
		c->restarts_manual++;
	if (c->next_start != SUP_START_FIRST)
		atomic_fetch_add(&s->fds.page->worker_restarts[c->id], 1);
	c->next_start = SUP_START_AUTO;
	c->killed = false;
	c->kill_reason = SUP_NO_REASON;
	c->detail[0] = 0;
	c->line_len = 0;
	c->ready = false;
	c->started_ms = now;
	c->deadline_ms = now + sup_ready_timeout_ms(c->id);
	child_set_state(c, SUP_STATE_STARTING);
	if (sup_proc_spawn(&s->fds, s->exe, c->id, s->cfg->path, &c->proc) != SK_OK) {
		log_error("spawn_failed", "worker=%s errno=%d", wname(c), errno);
		c->proc.pid = -1;
		/* Seen as an abnormal exit, so the policy paces and bounds the retries. */
		child_record_exit(s, c, 127 << 8, now);
		c->proc.pid = 0;
		sup_decide(s, c, now);
		return;
	}
	log_info("spawn", "worker=%s pid=%d restarts_auto=%llu restarts_manual=%llu", wname(c),
		 (int)c->proc.pid, (unsigned long long)c->restarts_auto,
		 (unsigned long long)c->restarts_manual);
	if (c->proc.ready_fd >= 0) {
		c->ev_ready = event_new(s->base, c->proc.ready_fd, EV_READ | EV_PERSIST, ready_cb, c);
		event_add(c->ev_ready, NULL);
	}
	if (c->proc.pidfd >= 0) {
		c->ev_exit = event_new(s->base, c->proc.pidfd, EV_READ | EV_PERSIST, exit_cb, c);
		event_add(c->ev_exit, NULL);
	}
}

/* Start the first worker that is due, only once every worker before it is settled:
 * starts are strictly one at a time, in order. None while a stop is in progress. */
static void sup_advance_starts(struct sup *s, uint64_t now)
{
	if (s->stopping)
		return;
	for (int i = 0; i < SK_WORKER_COUNT; i++)
		if (s->child[i].stop_wanted)
			return;
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		struct sup_child *c = &s->child[i];
		if (child_settled(c))
			continue;
		if (c->state == SUP_STATE_BACKOFF && now >= c->restart_at_ms)
			child_spawn(s, c, now);
		return;
	}
}

/* Stop the last worker that must stop; the ones before it wait for its exit. */
static void sup_advance_stops(struct sup *s, uint64_t now)
{
	for (int i = SK_WORKER_COUNT - 1; i >= 0; i--) {
		struct sup_child *c = &s->child[i];
		if (!c->stop_wanted)
			continue;
		if (c->state == SUP_STATE_STOPPING)
			return;
		if (c->proc.pid > 0) {
			sup_proc_signal(&c->proc, SIGTERM);
			c->deadline_ms = now + s->cfg->workers[c->id].shutdown_ms;
			if (c->stop_reason != SUP_NO_REASON)
				c->kill_reason = c->stop_reason;
			child_set_state(c, SUP_STATE_STOPPING);
			log_info("stop", "worker=%s pid=%d shutdown_ms=%u", wname(c), (int)c->proc.pid,
				 s->cfg->workers[c->id].shutdown_ms);
			return;
		}
		child_finish_stop(s, c);
	}
}

/* Ready timeouts, hangs and stop deadlines. */
static void sup_check_deadlines(struct sup *s, uint64_t now)
{
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		struct sup_child *c = &s->child[i];
		if (c->proc.pid <= 0 || c->killed)
			continue;
		if (c->state == SUP_STATE_STARTING && now >= c->deadline_ms) {
			child_kill(c, SUP_REASON_READY_TIMEOUT, "ready_timeout");
		} else if (c->state == SUP_STATE_STOPPING && now >= c->deadline_ms) {
			child_kill(c, SUP_NO_REASON, "stop_timeout");
		} else if (c->state == SUP_STATE_RUNNING) {
			uint64_t hb = atomic_load(&s->fds.page->heartbeat_ms[c->id]);
			if (hb < c->ready_ms)
				hb = c->ready_ms;
			if (now > hb + s->cfg->hang_timeout_ms)
				child_kill(c, SUP_REASON_HANG, "hang");
		}
	}
}

static uint64_t sup_next_deadline(struct sup *s, uint64_t now)
{
	uint64_t next = now + SUP_TICK_MS_MAX;
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		struct sup_child *c = &s->child[i];
		uint64_t t = next;
		if ((c->state == SUP_STATE_STARTING || c->state == SUP_STATE_STOPPING) && !c->killed)
			t = c->deadline_ms;
		else if (c->state == SUP_STATE_RUNNING && !c->killed)
			t = atomic_load(&s->fds.page->heartbeat_ms[c->id]) + s->cfg->hang_timeout_ms + 1;
		else if (c->state == SUP_STATE_BACKOFF && c->restart_at_ms > now)
			t = c->restart_at_ms;
		if (t < next)
			next = t;
	}
	if (s->notify.watchdog_ms && s->watchdog_next_ms < next)
		next = s->watchdog_next_ms;
	return next > now ? next : now;
}

/* ---- status ---- */

static void sup_snapshot(struct sup *s, struct sup_status *st, uint64_t now)
{
	memset(st, 0, sizeof(*st));
	st->pid = (int32_t)getpid();
	st->uptime_ms = now - s->started_ms;
	st->strategy = s->cfg->strategy;
	st->intensity = s->cfg->intensity;
	st->period_ms = s->cfg->period_ms;
	st->restarts_in_period = sup_policy_restarts_in_period(&s->policy, now);
	st->worker_count = SK_WORKER_COUNT;
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		const struct sup_child *c = &s->child[i];
		struct sup_status_worker *w = &st->workers[i];
		w->id = c->id;
		w->state = c->state;
		w->next_restart_ms = -1;
		if (c->state == SUP_STATE_BACKOFF && c->restart_at_ms > now)
			w->next_restart_ms = (int64_t)(c->restart_at_ms - now);
		else if (c->state == SUP_STATE_BACKOFF)
			w->state = SUP_STATE_STARTING; /* due: waits only for the workers before it */
		w->pid = c->proc.pid > 0 ? c->proc.pid : 0;
		w->ready = c->ready;
		w->uptime_ms = c->proc.pid > 0 ? now - c->started_ms : 0;
		w->restarts_auto = c->restarts_auto;
		w->restarts_manual = c->restarts_manual;
		w->has_exit = c->has_exit;
		w->last_exit = c->last_exit;
	}
}

static void sup_write_status(struct sup *s, uint64_t now)
{
	struct sup_status st;
	sup_snapshot(s, &st, now);
	char buf[SUP_STATUS_JSON_BYTES_MAX];
	size_t len;
	if (sup_status_encode(&st, buf, sizeof(buf) - 1, &len) != SK_OK) {
		log_warn("status_encode_failed", "path=%s", s->status_path);
		return;
	}
	buf[len++] = '\n';
	if (sup_write_atomic(s->status_path, buf, len) != SK_OK)
		log_warn("status_write_failed", "path=%s errno=%d", s->status_path, errno);
	s->dirty = false;
}

static void sup_notify_progress(struct sup *s, uint64_t now)
{
	if (s->notify.watchdog_ms && now >= s->watchdog_next_ms) {
		sup_notify_send(&s->notify, "WATCHDOG=1");
		s->watchdog_next_ms = now + s->notify.watchdog_ms;
	}
	if (s->ready_notified || s->stopping)
		return;
	int running = 0;
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		if (!child_settled(&s->child[i]))
			return;
		running += s->child[i].state == SUP_STATE_RUNNING;
	}
	char msg[96];
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%d of %d workers running", running,
		 SK_WORKER_COUNT);
	sup_notify_send(&s->notify, msg);
	s->ready_notified = true;
	log_info("started", "running=%d workers=%d", running, SK_WORKER_COUNT);
}

static bool sup_all_gone(const struct sup *s)
{
	for (int i = 0; i < SK_WORKER_COUNT; i++)
		if (s->child[i].proc.pid > 0 || s->child[i].stop_wanted)
			return false;
	return true;
}

/* After every event: move every worker as far as it can go, then sleep until the
 * next deadline. Idempotent. */
static void sup_step(struct sup *s)
{
	uint64_t now = clock_mono_ms();
	sup_check_deadlines(s, now);
	sup_advance_stops(s, now);
	sup_advance_starts(s, now);
	sup_notify_progress(s, now);
	if (s->dirty)
		sup_write_status(s, now);
	if (s->stopping && sup_all_gone(s)) {
		event_base_loopbreak(s->base);
		return;
	}
	uint64_t ms = sup_next_deadline(s, now) - now;
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	evtimer_add(s->ev_timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) { sup_step(arg); }

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct sup *s = arg;
	if (sig == SIGCHLD) {
		sup_reap(s);
	} else if (++s->stop_signals == 1) {
		sup_begin_stop(s, 0, sig == SIGTERM ? "SIGTERM" : "SIGINT");
	} else {
		/* A second request to stop: stop waiting for shutdown_ms. */
		log_warn("stop_now", "signal=%d", (int)sig);
		for (int i = 0; i < SK_WORKER_COUNT; i++)
			child_kill(&s->child[i], SUP_NO_REASON, "kill");
	}
	sup_step(s);
}

/* ---- control commands ---- */

static json_t *cmd_events(struct sup *s, const struct sup_request *req, const char **error)
{
	if (!s->history) {
		*error = "the exit history is not available (see skiffd's log)";
		return NULL;
	}
	struct sup_exit *rows = calloc(req->limit, sizeof(*rows));
	uint32_t n = 0;
	if (!rows || sup_history_list(s->history, req->worker, req->limit, rows, &n) != SK_OK) {
		free(rows);
		*error = "cannot read the exit history";
		return NULL;
	}
	json_t *arr = json_array();
	for (uint32_t i = 0; arr && i < n; i++)
		json_array_append_new(arr, sup_exit_to_json(&rows[i], true));
	free(rows);
	return json_pack("{s:o*}", "events", arr);
}

static json_t *cmd_kill(struct sup *s, const struct sup_request *req, const char **error)
{
	struct sup_child *c = &s->child[req->worker];
	if (c->proc.pid <= 0) {
		*error = "that worker has no process now";
		return NULL;
	}
	log_info("manual_signal", "worker=%s pid=%d signal=%d", wname(c), (int)c->proc.pid,
		 req->signal);
	sup_proc_signal(&c->proc, req->signal);
	return json_pack("{s:i, s:i}", "pid", (int)c->proc.pid, "signal", req->signal);
}

static json_t *cmd_restart(struct sup *s, const struct sup_request *req, uint64_t now,
			   const char **error)
{
	struct sup_child *c = &s->child[req->worker];
	if (s->stopping) {
		*error = "skiffd is stopping";
		return NULL;
	}
	log_info("manual_restart", "worker=%s state=%s", wname(c), sup_state_name(c->state));
	c->next_start = SUP_START_MANUAL;
	c->restart_at_ms = now;
	if (c->proc.pid > 0) {
		c->stop_wanted = true;
		c->restart_after_stop = true;
		if (c->state != SUP_STATE_STOPPING)
			c->stop_reason = SUP_REASON_MANUAL;
	} else {
		child_set_state(c, SUP_STATE_BACKOFF);
	}
	return json_pack("{s:i}", "pid", c->proc.pid > 0 ? (int)c->proc.pid : 0);
}

static void sup_handle_request(struct sup *s, const struct sup_request *req)
{
	uint64_t now = clock_mono_ms();
	const char *error = NULL;
	json_t *result = NULL;
	switch (req->cmd) {
	case SUP_CMD_STATUS: {
		struct sup_status st;
		sup_snapshot(s, &st, now);
		result = sup_status_to_json(&st);
		break;
	}
	case SUP_CMD_KILL:
		result = cmd_kill(s, req, &error);
		break;
	case SUP_CMD_RESTART:
		result = cmd_restart(s, req, now, &error);
		break;
	case SUP_CMD_STOP:
		sup_begin_stop(s, 0, "skiffctl-stop");
		result = json_object();
		break;
	case SUP_CMD_EVENTS:
		result = cmd_events(s, req, &error);
		break;
	}
	if (!result && !error)
		error = "out of memory";
	sup_control_reply(s->control, result, error);
}

static void control_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sup *s = arg;
	for (int i = 0; i < 64; i++) {
		struct sup_request req;
		char err[256];
		sk_err rc = sup_control_next(s->control, &req, err, sizeof(err));
		if (rc == SK_EAGAIN)
			break;
		if (rc == SK_OK)
			sup_handle_request(s, &req);
		else
			log_warn("bad_control_request", "why=%s", err);
	}
	sup_step(s);
}

/* ---- start-up and tear-down ---- */

static int sup_fail(const char *msg)
{
	fprintf(stderr, "skiffd: %s\n", msg);
	return SUP_EXIT_START;
}

/* Directories and locks: one skiffd per data_dir (and per run_dir). */
static int sup_open_dirs(struct sup *s)
{
	char err[SK_PATH_BYTES_MAX + 256];
	const sk_config *cfg = s->cfg;
	if (sup_mkdirs(cfg->data_dir, 0750) != SK_OK) {
		snprintf(err, sizeof(err), "cannot create data_dir %s: %s", cfg->data_dir, strerror(errno));
		return sup_fail(err);
	}
	if (sup_lock_dir(cfg->data_dir, "data_dir", &s->lock_fd, err, sizeof(err)) != SK_OK)
		return sup_fail(err);
	if (sup_mkdirs(cfg->run_dir, 0700) != SK_OK || chmod(cfg->run_dir, 0700) != 0) {
		snprintf(err, sizeof(err), "cannot create run_dir %s (mode 0700): %s", cfg->run_dir,
			 strerror(errno));
		return sup_fail(err);
	}
	if (strcmp(cfg->run_dir, cfg->data_dir) != 0 &&
	    sup_lock_dir(cfg->run_dir, "run_dir", &s->run_lock_fd, err, sizeof(err)) != SK_OK)
		return sup_fail(err);
	snprintf(s->status_path, sizeof(s->status_path), "%s/%s", cfg->run_dir, SUP_STATUS_FILE);
	snprintf(s->control_path, sizeof(s->control_path), "%s/%s", cfg->run_dir,
		 SUP_CONTROL_SOCKET);
	/* Left by a skiffd that was killed: we hold the lock, so nobody else uses them. */
	unlink(s->control_path);
	unlink(s->status_path);
	return 0;
}

static void sup_open_history(struct sup *s)
{
	char path[SK_PATH_BYTES_MAX + 32], err[512];
	snprintf(path, sizeof(path), "%s/%s", s->cfg->data_dir, SUP_HISTORY_FILE);
	if (sup_history_open(path, SK_SUP_HISTORY_ROWS_MAX, &s->history, err, sizeof(err)) != SK_OK) {
		char q[600];
		/* The workers matter more than their history: run without it, loudly. */
		log_error("history_unavailable", "why=%s", log_quote(q, sizeof(q), err));
		s->history = NULL;
	}
}

static int sup_open_loop(struct sup *s)
{
	char err[SK_PATH_BYTES_MAX + 256];
	s->base = event_base_new();
	if (!s->base)
		return sup_fail("cannot create the event loop");
	s->ev_timer = evtimer_new(s->base, timer_cb, s);
	const int sigs[3] = {SIGTERM, SIGINT, SIGCHLD};
	for (int i = 0; i < 3; i++) {
		s->ev_signal[i] = evsignal_new(s->base, sigs[i], signal_cb, s);
		if (!s->ev_signal[i] || event_add(s->ev_signal[i], NULL) != 0)
			return sup_fail("cannot install signal handlers");
	}
	if (sup_control_listen(s->cfg->run_dir, &s->control, err, sizeof(err)) != SK_OK)
		return sup_fail(err);
	s->ev_control = event_new(s->base, sup_control_fd(s->control), EV_READ | EV_PERSIST,
				  control_cb, s);
	if (!s->ev_timer || !s->ev_control || event_add(s->ev_control, NULL) != 0)
		return sup_fail("cannot create events");
	return 0;
}

static void sup_init_children(struct sup *s)
{
	struct sup_policy_cfg pcfg;
	sup_policy_cfg_from(&pcfg, s->cfg);
	sup_policy_init(&s->policy, &pcfg);
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		struct sup_child *c = &s->child[i];
		memset(c, 0, sizeof(*c));
		c->sup = s;
		c->id = (enum sk_worker_id)i;
		c->proc.pidfd = -1;
		c->proc.ready_fd = -1;
		c->kill_reason = SUP_NO_REASON;
		c->stop_reason = SUP_NO_REASON;
		c->state = SUP_STATE_BACKOFF; /* due at once, in order */
		c->next_start = SUP_START_FIRST;
	}
}

static void sup_close(struct sup *s)
{
	for (int i = 0; i < SK_WORKER_COUNT; i++) {
		child_close_pipe(&s->child[i]);
		if (s->child[i].ev_exit)
			event_free(s->child[i].ev_exit);
		if (s->child[i].proc.pidfd >= 0)
			close(s->child[i].proc.pidfd);
	}
	if (s->control) {
		sup_control_close(s->control);
		unlink(s->control_path);
	}
	if (s->ev_control)
		event_free(s->ev_control);
	for (int i = 0; i < 3; i++)
		if (s->ev_signal[i])
			event_free(s->ev_signal[i]);
	if (s->ev_timer)
		event_free(s->ev_timer);
	if (s->base)
		event_base_free(s->base);
	sup_history_close(s->history);
	sup_fds_close(&s->fds);
	sup_notify_close(&s->notify);
	if (s->run_lock_fd >= 0)
		close(s->run_lock_fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
}

static int sup_open(struct sup *s)
{
	int rc = sup_open_dirs(s);
	if (rc != 0)
		return rc;
	/* Orphaned grandchildren come to us, not to init, and are reaped in sup_reap(). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	char pid[24];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv(SK_ENV_SUPERVISOR_PID, pid, 1);
	signal(SIGPIPE, SIG_IGN);
	sup_notify_init(&s->notify);
	char err[256];
	if (sup_fds_create(&s->fds, s->cfg, err, sizeof(err)) != SK_OK)
		return sup_fail(err);
	sup_open_history(s);
	return sup_open_loop(s);
}

int sup_run(const sk_config *cfg, const char *exe)
{
	struct sup *s = calloc(1, sizeof(*s));
	if (!s)
		return sup_fail("out of memory");
	s->cfg = cfg;
	s->exe = exe;
	s->lock_fd = s->run_lock_fd = -1;
	s->fds.null_fd = s->fds.status_fd = s->fds.ingress_fd = s->fds.completion_fd = -1;
	for (size_t i = 0; i < sizeof(s->fds.efd) / sizeof(s->fds.efd[0]); i++)
		s->fds.efd[i] = -1;
	s->notify.fd = -1;
	s->started_ms = clock_mono_ms();
	if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng) || s->rng == 0)
		s->rng = clock_mono_ns() ^ ((uint64_t)getpid() << 32) ^ 1;
	sup_init_children(s);
	int rc = sup_open(s);
	if (rc == 0) {
		log_info("start", "pid=%d strategy=%s intensity=%u period_ms=%u data_dir=%s",
			 (int)getpid(), cfg_strategy_name(cfg->strategy), cfg->intensity, cfg->period_ms,
			 cfg->data_dir);
		s->watchdog_next_ms = s->started_ms;
		s->dirty = true;
		sup_step(s);
		event_base_dispatch(s->base);
		rc = s->exit_code;
		unlink(s->status_path);
		log_info("stopped", "exit_code=%d", rc);
	}
	sup_close(s);
	free(s);
	return rc;
}
