/* The supervisor: one single-threaded libevent loop that starts the workers
 * in order (writer, raft, replay, http; each after the one before reported
 * ready), watches them (pidfd, SIGCHLD, readiness pipe, heartbeats on the
 * status page), restarts them under sup_policy, answers the control socket
 * and stops everything in reverse order.
 *
 * Per worker, a state x event table (s6-supervise style):
 *
 *   state     | event                       -> action, next state
 *   ----------+------------------------------------------------------------
 *   backoff   | restart time passed and the  -> fork+exec, starting
 *             | workers before it are settled
 *   starting  | "ready\n" on the pipe        -> running
 *             | SK_WORKER_READY_TIMEOUT_MS   -> SIGKILL (reason ready-timeout)
 *   running   | heartbeat older than         -> SIGKILL (reason hang)
 *             | hang_timeout_ms
 *   any alive | picked by a stop (reverse    -> SIGTERM, stopping
 *             | order, one at a time)
 *   stopping  | shutdown_ms passed           -> SIGKILL
 *   any alive | exit, stop in progress       -> backoff (group restart) or stopped
 *             | exit, unexpected             -> sup_policy_decide(): backoff,
 *             |                                 failed, stopped or escalation
 *
 * "Settled" means running, failed or stopped. A "fail CODE MESSAGE\n" line
 * on the pipe is kept as the exit's detail.
 *
 * Exit codes of skiffd: 0 after SIGTERM, SIGINT or `skiffctl stop`;
 * SUP_EXIT_ESCALATED when the restart intensity was exceeded (every worker
 * stopped first); SUP_EXIT_START when it could not start (data_dir locked,
 * cannot create the shared memory, the control socket, ...); 78 for a bad
 * configuration (checked before sup_run). */
#ifndef SK_SUP_H
#define SK_SUP_H

#include "common/config.h"

#define SUP_EXIT_START 1      /* could not start: the message says why */
#define SUP_EXIT_ESCALATED 75 /* EX_TEMPFAIL: restart intensity exceeded, all workers stopped */

/* Run the supervisor in the foreground on a loaded configuration; exe is the absolute path
 * of the skiffd binary (re-executed as `exe worker NAME -c cfg->path`). Returns the process
 * exit code. */
int sup_run(const sk_config *cfg, const char *exe);

#endif
