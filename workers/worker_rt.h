/* Private to the worker runtime: worker_run() (worker_run.c) maps a worker id
 * to its ops and calls worker_main() (worker.c). Kept apart so that a test
 * linking one worker library does not pull in every worker's ops. */
#ifndef SK_WORKER_RT_H
#define SK_WORKER_RT_H

#include "workers/worker.h"

/* Set by skiffd to its pid before it forks any worker: a worker whose parent is
 * someone else (skiffd died before PR_SET_PDEATHSIG was armed) exits at once. */
#define SK_ENV_SUPERVISOR_PID "SKIFF_SUPERVISOR_PID"

/* The whole life of a worker process; returns its exit code. */
int worker_main(enum sk_worker_id id, const char *config_path, const struct worker_ops *ops);

#endif
