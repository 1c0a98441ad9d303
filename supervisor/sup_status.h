/* What `skiffctl status` shows and run_dir/status.json holds, and the exit
 * records kept in the history. The JSON has exactly these names:
 *
 * {"supervisor": {"pid": 41, "uptime_ms": 5003, "strategy": "one_for_one",
 *                 "intensity": 5, "period_ms": 10000, "restarts_in_period": 1},
 *  "workers": [{"name": "writer", "state": "running", "pid": 42, "ready": true,
 *               "uptime_ms": 4990, "restarts": {"auto": 1, "manual": 0},
 *               "last_exit": {"reason": "signal", "code": null, "signal": 9,
 *                             "core": false, "at": 1763776800123, "detail": null},
 *               "next_restart_ms": null}, ...]}
 *
 *   state            starting | running | stopping | backoff | failed | stopped
 *   pid              null when no process runs
 *   uptime_ms        0 when no process runs
 *   last_exit        null until the first exit in this daemon's life
 *     reason         exit | signal | hang | killed-by-strategy | manual | ready-timeout
 *     code           exit code, null when killed by a signal
 *     signal         signal number, null when it exited
 *     at             wall clock, ms since the Unix epoch
 *     detail         the MESSAGE of a "fail CODE MESSAGE" line, else null (an addition
 *                    to the names in issue 2: why a permanent failure happened)
 *   next_restart_ms  ms until the next start while in backoff, else null */
#ifndef SK_SUP_STATUS_H
#define SK_SUP_STATUS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/sk_error.h"
#include "common/sk_limits.h"

#define SUP_DETAIL_BYTES_MAX 256 /* a "fail" line's MESSAGE kept per exit */
#define SUP_STATUS_JSON_BYTES_MAX 8192

enum sup_state {
	SUP_STATE_STOPPED = 0,
	SUP_STATE_STARTING,
	SUP_STATE_RUNNING,
	SUP_STATE_STOPPING,
	SUP_STATE_BACKOFF,
	SUP_STATE_FAILED,
};

enum sup_reason {
	SUP_REASON_EXIT = 0,
	SUP_REASON_SIGNAL,
	SUP_REASON_HANG,
	SUP_REASON_STRATEGY, /* "killed-by-strategy" */
	SUP_REASON_MANUAL,
	SUP_REASON_READY_TIMEOUT,
	SUP_REASON_COUNT
};

/* One worker exit, as shown in status and kept in the history. */
struct sup_exit {
	uint32_t worker;        /* enum sk_worker_id */
	int32_t pid;
	enum sup_reason reason;
	int32_t code;           /* -1 when killed by a signal */
	int32_t signal;         /* 0 when it exited */
	bool core;
	uint64_t at_ms;         /* wall clock */
	uint64_t uptime_ms;
	uint64_t restarts_auto; /* the worker's counters when it exited */
	uint64_t restarts_manual;
	char detail[SUP_DETAIL_BYTES_MAX]; /* "" when none */
};

struct sup_status_worker {
	uint32_t id; /* enum sk_worker_id */
	enum sup_state state;
	int32_t pid; /* 0 when none */
	bool ready;
	uint64_t uptime_ms;
	uint64_t restarts_auto;
	uint64_t restarts_manual;
	bool has_exit;
	struct sup_exit last_exit;
	int64_t next_restart_ms; /* -1 when none */
};

struct sup_status {
	int32_t pid;
	uint64_t uptime_ms;
	uint32_t strategy; /* enum sk_strategy */
	uint32_t intensity;
	uint32_t period_ms;
	uint32_t restarts_in_period;
	uint32_t worker_count;
	struct sup_status_worker workers[SK_WORKER_COUNT];
};

const char *sup_state_name(enum sup_state s);
const char *sup_reason_name(enum sup_reason r);
bool sup_reason_parse(const char *name, enum sup_reason *out);

/* The status as a new JSON object (caller json_decref()s it); NULL when out of memory. */
json_t *sup_status_to_json(const struct sup_status *st);
/* One exit as a new JSON object, with "worker", "pid", "uptime_ms" and "restarts" beside
 * the last_exit names (used by `skiffctl events`). */
json_t *sup_exit_to_json(const struct sup_exit *e, bool with_worker);
/* Encode into buf (NUL-terminated); SK_EFULL when it does not fit, SK_ENOMEM. */
sk_err sup_status_encode(const struct sup_status *st, char *buf, size_t buf_len, size_t *len_out);

/* skiffctl side, on the JSON received: true when every worker is running and ready. */
bool sup_status_all_running(const json_t *status);
/* Print the status JSON as a table a person reads at a glance. SK_EINVAL when it does not
 * have the expected shape. */
sk_err sup_status_print_table(const json_t *status, FILE *out);
/* Print an events array (newest first) as one line per exit. */
sk_err sup_events_print(const json_t *events, FILE *out);
/* "5m03s", "1h02m", "850ms": a duration for people, into buf. */
const char *sup_fmt_duration(uint64_t ms, char *buf, size_t buf_len);

#endif
