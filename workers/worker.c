/* The runtime every worker shares (worker.h): parent-death signal, config,
 * status page, one libevent loop with a heartbeat and SIGTERM handling, and
 * the readiness line protocol on SK_FD_READY:
 *
 *   "ready\n"             once, when the worker serves
 *   "fail CODE MESSAGE\n" just before exit(CODE); MESSAGE is one line, at most
 *                         WORKER_FAIL_BYTES_MAX bytes, control characters replaced
 *
 * Each line is written with one write(2) (a pipe write below PIPE_BUF is atomic). */
#include "workers/worker_rt.h"

#include <errno.h>
#include <sched.h>
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "ipc/fds.h"

#define WORKER_FAIL_BYTES_MAX 400

static struct worker_ctx worker_g_ctx;
static sk_config worker_g_cfg;
static bool worker_g_ready_sent;
static const struct worker_ops *worker_g_ops;

static void worker_write_line(const char *line, size_t len)
{
	ssize_t w;
	while ((w = write(SK_FD_READY, line, len)) < 0 && errno == EINTR)
		;
	/* EBADF when run by hand without skiffd: nobody listens, nothing to do. */
}

static void worker_heartbeat(struct worker_ctx *ctx)
{
	if (ctx->page)
		atomic_store_explicit(&ctx->page->heartbeat_ms[ctx->id], clock_mono_ms(),
				      memory_order_release);
}

#ifdef SKIFF_FAULTS
bool worker_fault(const char *what, enum sk_worker_id id, int *arg)
{
	const char *v = getenv(what);
	const char *name = cfg_worker_name(id);
	size_t n = strlen(name);
	for (const char *p = v; p && *p; p += strcspn(p, ","), p += *p == ',') {
		if (strncmp(p, name, n) != 0 || (p[n] != ':' && p[n] != ',' && p[n] != 0))
			continue;
		*arg = p[n] == ':' ? atoi(p + n + 1) : 0;
		return true;
	}
	return false;
}
#endif

void worker_ready(struct worker_ctx *ctx)
{
	if (worker_g_ready_sent)
		return;
#ifdef SKIFF_FAULTS
	int arg;
	if (worker_fault("SKIFF_FAULT_NO_READY", ctx->id, &arg)) {
		log_warn("fault", "what=no_ready");
		return;
	}
#endif
	worker_g_ready_sent = true;
	worker_heartbeat(ctx);
	if (ctx->page)
		atomic_store_explicit(&ctx->page->ready[ctx->id], 1, memory_order_release);
	worker_write_line("ready\n", 6);
	log_info("ready", "pid=%d", (int)getpid());
}

void worker_fail(struct worker_ctx *ctx, int code, const char *fmt, ...)
{
	char msg[WORKER_FAIL_BYTES_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	char q[WORKER_FAIL_BYTES_MAX + 8];
	log_error("fail", "code=%d why=%s", code, log_quote(q, sizeof(q), msg));
	char line[WORKER_FAIL_BYTES_MAX + 32];
	int n = snprintf(line, sizeof(line), "fail %d %s\n", code, msg);
	if (n > 0)
		worker_write_line(line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	(void)ctx;
	/* _exit, not exit: no atexit handler (a sanitizer's leak report among them) may
	 * replace CODE, which tells the supervisor whether a restart can help. */
	fflush(NULL);
	_exit(code);
}

/* PR_SET_PDEATHSIG, then make sure the parent did not die before it was armed. */
static bool worker_parent_alive(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		return false;
	const char *v = getenv(SK_ENV_SUPERVISOR_PID);
	pid_t ppid = getppid();
	if (v)
		return ppid == (pid_t)strtol(v, NULL, 10);
	return ppid != 1; /* run by hand: at least not orphaned */
}

static void worker_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
	worker_heartbeat(arg);
}

static void worker_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker_ctx *ctx = arg;
	log_info("stopping", "signal=%d", (int)sig);
	if (worker_g_ops->stop)
		worker_g_ops->stop(ctx);
	event_base_loopexit(ctx->base, NULL);
}

static enum log_level worker_log_level(const char *name)
{
	static const char *const names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return (enum log_level)i;
	return LOG_INFO;
}

/* The scheduling policy the worker asks for (worker_ops.sched_batch). Allowed
 * without privilege; if refused the worker runs as SCHED_OTHER, only slower. */
static void worker_sched(const struct worker_ops *ops)
{
	if (!ops->sched_batch)
		return;
	struct sched_param sp = {.sched_priority = 0};
	if (sched_setscheduler(0, SCHED_BATCH, &sp) != 0)
		log_warn("sched_batch_refused", "errno=%d", errno);
}

/* Config and status page; any failure here is reported and ends the process. */
static void worker_setup(struct worker_ctx *ctx, enum sk_worker_id id, const char *config_path)
{
	char err[SK_PATH_BYTES_MAX + 256];
	ctx->id = id;
	sk_err rc = cfg_load(config_path, &worker_g_cfg, err, sizeof(err));
	if (rc != SK_OK)
		worker_fail(ctx, SK_EXIT_CONFIG, "%s", err);
	ctx->cfg = &worker_g_cfg;
	log_set_level(worker_log_level(worker_g_cfg.log_level));
	rc = status_page_attach(SK_FD_STATUS_PAGE, &ctx->page);
	if (rc != SK_OK)
		worker_fail(ctx, SK_EXIT_SOFTWARE, "cannot map the status page on fd %d: %s",
			    SK_FD_STATUS_PAGE, sk_strerror(rc));
	worker_heartbeat(ctx);
#ifdef SKIFF_FAULTS
	int code;
	if (worker_fault("SKIFF_FAULT_FAIL", id, &code))
		worker_fail(ctx, code, "fault injected by SKIFF_FAULT_FAIL (exit %d)", code);
#endif
}

int worker_main(enum sk_worker_id id, const char *config_path, const struct worker_ops *ops)
{
	if (!worker_parent_alive())
		return SK_EXIT_SOFTWARE; /* skiffd is gone: nobody to serve */
	signal(SIGPIPE, SIG_IGN);
	log_init(cfg_worker_name(id));
	worker_g_ops = ops;
	struct worker_ctx *ctx = &worker_g_ctx;
	worker_setup(ctx, id, config_path);
	/* The epoll changelist coalesces the add/del pairs made on every
	 * request into one epoll_ctl (4.0 -> 2.95 per produce, ~5 us of CPU). Its
	 * caveat is fds cloned with dup() while registered; no worker does that:
	 * the inherited eventfds stay open until exit and sockets are our own. */
	struct event_config *ev_cfg = event_config_new();
	if (ev_cfg && event_config_set_flag(ev_cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
		ctx->base = event_base_new_with_config(ev_cfg);
	if (ev_cfg)
		event_config_free(ev_cfg);
	if (!ctx->base)
		worker_fail(ctx, SK_EXIT_SOFTWARE, "cannot create the event loop");
	struct event *ev_term = evsignal_new(ctx->base, SIGTERM, worker_signal_cb, ctx);
	struct event *ev_int = evsignal_new(ctx->base, SIGINT, worker_signal_cb, ctx);
	struct event *ev_hb = event_new(ctx->base, -1, EV_PERSIST, worker_heartbeat_cb, ctx);
	struct timeval hb = {.tv_sec = 0, .tv_usec = SK_WORKER_HEARTBEAT_MS * 1000};
	if (!ev_term || !ev_int || !ev_hb || event_add(ev_term, NULL) != 0 ||
	    event_add(ev_int, NULL) != 0 || event_add(ev_hb, &hb) != 0)
		worker_fail(ctx, SK_EXIT_SOFTWARE, "cannot create the runtime events");
	log_info("start", "pid=%d", (int)getpid());
	worker_sched(ops);
	sk_err rc = ops->init(ctx);
	if (rc != SK_OK)
		worker_fail(ctx, SK_EXIT_SOFTWARE, "init failed: %s", sk_strerror(rc));
	event_base_dispatch(ctx->base);
	if (ops->fini)
		ops->fini(ctx);
	event_free(ev_hb);
	event_free(ev_int);
	event_free(ev_term);
	event_base_free(ctx->base);
	ctx->base = NULL;
	status_page_detach(ctx->page);
	ctx->page = NULL;
	log_info("stopped", "pid=%d", (int)getpid());
	return SK_EXIT_OK;
}
