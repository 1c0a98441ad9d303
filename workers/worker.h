/* The runtime every worker shares: `skiffd worker NAME -c FILE` lands here.
 *
 * worker_run():
 *   1. prctl(PR_SET_PDEATHSIG, SIGKILL), then exit at once if getppid() is no
 *      longer the skiffd that forked us (it died before the prctl);
 *   2. loads the INI (exit 78 on error), log_init(NAME), maps the status page;
 *   3. one libevent event_base; SIGTERM/SIGINT -> ops->stop() then loop exit;
 *      a heartbeat timer writes status_page.heartbeat_ms[id] every
 *      SK_WORKER_HEARTBEAT_MS from inside the loop (so a stuck loop is a hang);
 *   4. ops->init(); the worker calls worker_ready() once it serves;
 *   5. runs the loop; ops->fini(); exits 0.
 *
 * The supervisor reads lines on SK_FD_READY:
 *   "ready\n"             the worker serves
 *   "fail CODE MESSAGE\n" the worker is about to exit with CODE because of MESSAGE
 */
#ifndef SK_WORKER_H
#define SK_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/sk_error.h"
#include "ipc/status_page.h"

/* Exit codes: the supervisor restarts on anything but the permanent ones. */
#define SK_EXIT_OK 0
#define SK_EXIT_SOFTWARE 70 /* bug or unexpected failure: restart */
#define SK_EXIT_IOERR 74    /* I/O failure (e.g. fdatasync): restart, recovery re-reads the disk */
#define SK_EXIT_DATAERR 65  /* damaged journal: permanent, an operator must look */
/* SK_EXIT_CONFIG (78, common/config.h): permanent */

struct event_base;

struct worker_ctx {
	enum sk_worker_id id;
	const sk_config *cfg;
	struct event_base *base;
	struct sk_status_page *page;
	void *state; /* the worker's own */
};

struct worker_ops {
	const char *name;
	/* Set up; call worker_ready() now or later from the loop. Error -> exit SK_EXIT_SOFTWARE
	 * unless the worker already called worker_fail(). */
	sk_err (*init)(struct worker_ctx *ctx);
	/* SIGTERM: start a graceful stop; the runtime exits the loop right after. */
	void (*stop)(struct worker_ctx *ctx);
	/* After the loop ends: release everything. */
	void (*fini)(struct worker_ctx *ctx);
	/* Run as SCHED_BATCH: a wake-up of this worker never preempts the task on the
	 * CPU (it runs when that task blocks or its slice ends). For the workers the
	 * writer wakes after every group commit (raft, then http): preempting the
	 * writer there puts their run between its fdatasync and its next batch; on a
	 * small box they should run while it waits in the next fdatasync instead. */
	bool sched_batch;
};

extern const struct worker_ops writer_ops;
extern const struct worker_ops raft_ops;
extern const struct worker_ops replay_ops;
extern const struct worker_ops http_ops;

#ifdef SKIFF_FAULTS
/* Test hooks, never in a release: SKIFF_FAULT_<what>=name[:arg],name[:arg]. Returns
 * true when this worker is listed; its arg (or 0) in *arg. */
bool worker_fault(const char *what, enum sk_worker_id id, int *arg);
#endif

/* Entry point of `skiffd worker NAME -c FILE`; returns the process exit code. */
int worker_run(enum sk_worker_id id, const char *config_path);
/* Report readiness to the supervisor (once) and set status_page.ready[id]. */
void worker_ready(struct worker_ctx *ctx);
/* Tell the supervisor why, then exit(code) at once. Never returns. */
__attribute__((noreturn, format(printf, 3, 4))) void worker_fail(struct worker_ctx *ctx, int code,
								 const char *fmt, ...);

#endif
