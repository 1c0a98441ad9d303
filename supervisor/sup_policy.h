/* The restart policy of the supervision tree (Erlang/OTP semantics) as a pure
 * state machine: no clock, no randomness and no I/O of its own. The caller
 * passes "now" (CLOCK_MONOTONIC ms) and a random source, so tests drive it
 * with a fake clock and a fixed sequence of numbers.
 *
 * What it decides when a child exits on its own (not asked to by us):
 *   - exit 78 (config) or 65 (damaged journal): FAIL, never restarted;
 *   - restart type: permanent always restarts, transient only after an
 *     abnormal exit (non-zero code, signal, hang, ready timeout), temporary never;
 *   - intensity: more than `intensity` restarts within the last `period_ms`
 *     -> ESCALATE (stop everything, exit SUP_EXIT_ESCALATED);
 *   - strategy: one_for_one restarts the child; rest_for_one first stops the
 *     children started after it, then restarts it and them in order;
 *     one_for_all stops all the others and restarts all of them;
 *   - backoff: delay = min(backoff_max, backoff_min * 2^n) for the n-th
 *     restart in a row of that child (n from 0), with "equal jitter": the
 *     delay is drawn uniformly from [delay/2, delay]. n returns to 0 once the
 *     child has run for stable_after_ms before it exits. backoff_min_ms = 0
 *     turns backoff off (every delay is 0).
 * One crash counts once against the intensity, however many children the
 * strategy restarts with it (as in OTP). Manual restarts do not count. */
#ifndef SK_SUP_POLICY_H
#define SK_SUP_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/sk_limits.h"

#define SUP_CHILDREN_MAX SK_WORKER_COUNT

enum sup_exit_kind {
	SUP_EXIT_NORMAL = 0,    /* exit code 0 */
	SUP_EXIT_ABNORMAL = 1,  /* other code, a signal, killed for hang or ready timeout */
	SUP_EXIT_PERMANENT = 2, /* 78 (config) or 65 (data): a restart cannot help */
};

enum sup_action {
	SUP_ACT_NONE = 0,     /* leave it stopped (temporary; transient after a normal exit) */
	SUP_ACT_FAIL = 1,     /* permanent failure: state failed, the others keep running */
	SUP_ACT_RESTART = 2,  /* stop stop_mask (reverse order), restart restart_mask after delay_ms */
	SUP_ACT_ESCALATE = 3, /* intensity exceeded: stop every child and exit */
};

struct sup_policy_cfg {
	enum sk_strategy strategy;
	uint32_t intensity;
	uint32_t period_ms;
	uint32_t backoff_min_ms;
	uint32_t backoff_max_ms;
	uint32_t stable_after_ms;
	uint32_t child_count; /* 1..SUP_CHILDREN_MAX, in start order */
	enum sk_restart restart[SUP_CHILDREN_MAX];
};

struct sup_policy {
	struct sup_policy_cfg cfg;
	/* times of the restarts still inside the period, oldest first, as a ring */
	uint64_t restart_ms[SK_SUP_INTENSITY_MAX + 1];
	uint32_t restart_first;
	uint32_t restart_count;
	uint32_t in_a_row[SUP_CHILDREN_MAX]; /* restarts since the child last ran stable_after_ms */
};

struct sup_decision {
	enum sup_action action;
	uint32_t stop_mask;    /* bit i: child i must be stopped first (reason killed-by-strategy) */
	uint32_t restart_mask; /* bit i: child i starts again (in order), the exited one included */
	uint32_t delay_ms;     /* backoff before the first of them starts */
	uint32_t restarts_in_period; /* counted after this decision */
};

/* A source of uniformly distributed 64-bit numbers. */
typedef uint64_t (*sup_rand_fn)(void *ctx);

/* Copy cfg (checked by cfg_load: intensity, backoff_min <= backoff_max) and clear the history. */
void sup_policy_init(struct sup_policy *p, const struct sup_policy_cfg *cfg);
/* Build the policy configuration from a loaded INI. */
void sup_policy_cfg_from(struct sup_policy_cfg *out, const sk_config *cfg);
/* Classify how a child ended: exited with code (>= 0), or killed by sig (> 0). */
enum sup_exit_kind sup_exit_classify(int code, int sig);
/* Decide what follows the exit of child (which we did not ask for). uptime_ms is how long
 * it ran; now_ms the monotonic clock. Updates the intensity window and backoff counters. */
void sup_policy_decide(struct sup_policy *p, uint32_t child, enum sup_exit_kind kind,
		       uint64_t now_ms, uint64_t uptime_ms, sup_rand_fn rnd, void *rnd_ctx,
		       struct sup_decision *out);
/* Restarts counted against the intensity within the period ending at now_ms. */
uint32_t sup_policy_restarts_in_period(struct sup_policy *p, uint64_t now_ms);
/* The backoff for the n-th restart in a row (n from 0), jitter drawn from rnd. */
uint32_t sup_policy_backoff_ms(const struct sup_policy *p, uint32_t n, sup_rand_fn rnd,
			       void *rnd_ctx);

#endif
