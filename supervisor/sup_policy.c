/* The restart policy (sup_policy.h): pure, so every rule is tested with a fake clock. */
#include "supervisor/sup_policy.h"

#include <assert.h>
#include <string.h>

#include "workers/worker.h"

#define SUP_RESTART_RING (SK_SUP_INTENSITY_MAX + 1)

void sup_policy_init(struct sup_policy *p, const struct sup_policy_cfg *cfg)
{
	assert(cfg->child_count >= 1 && cfg->child_count <= SUP_CHILDREN_MAX);
	assert(cfg->intensity >= SK_SUP_INTENSITY_MIN && cfg->intensity <= SK_SUP_INTENSITY_MAX);
	assert(cfg->backoff_min_ms <= cfg->backoff_max_ms);
	memset(p, 0, sizeof(*p));
	p->cfg = *cfg;
}

void sup_policy_cfg_from(struct sup_policy_cfg *out, const sk_config *cfg)
{
	memset(out, 0, sizeof(*out));
	out->strategy = cfg->strategy;
	out->intensity = cfg->intensity;
	out->period_ms = cfg->period_ms;
	out->backoff_min_ms = cfg->backoff_min_ms;
	out->backoff_max_ms = cfg->backoff_max_ms;
	out->stable_after_ms = cfg->stable_after_ms;
	out->child_count = SK_WORKER_COUNT;
	for (uint32_t i = 0; i < SK_WORKER_COUNT; i++)
		out->restart[i] = cfg->workers[i].restart;
}

enum sup_exit_kind sup_exit_classify(int code, int sig)
{
	if (sig > 0)
		return SUP_EXIT_ABNORMAL;
	if (code == 0)
		return SUP_EXIT_NORMAL;
	if (code == SK_EXIT_CONFIG || code == SK_EXIT_DATAERR)
		return SUP_EXIT_PERMANENT;
	return SUP_EXIT_ABNORMAL;
}

/* Drop restarts that left the window (now - period_ms, now]. */
static void policy_expire(struct sup_policy *p, uint64_t now_ms)
{
	while (p->restart_count > 0) {
		uint64_t t = p->restart_ms[p->restart_first];
		if (t + p->cfg.period_ms > now_ms)
			break;
		p->restart_first = (p->restart_first + 1) % SUP_RESTART_RING;
		p->restart_count--;
	}
}

uint32_t sup_policy_restarts_in_period(struct sup_policy *p, uint64_t now_ms)
{
	policy_expire(p, now_ms);
	return p->restart_count;
}

/* Count one restart at now_ms; false when that exceeds the intensity. The ring holds
 * intensity + 1 entries at most: one more than allowed is already an escalation. */
static bool policy_count_restart(struct sup_policy *p, uint64_t now_ms)
{
	policy_expire(p, now_ms);
	if (p->restart_count == SUP_RESTART_RING)
		return false; /* already past the intensity */
	uint32_t slot = (p->restart_first + p->restart_count) % SUP_RESTART_RING;
	p->restart_ms[slot] = now_ms;
	p->restart_count++;
	return p->restart_count <= p->cfg.intensity;
}

uint32_t sup_policy_backoff_ms(const struct sup_policy *p, uint32_t n, sup_rand_fn rnd,
			       void *rnd_ctx)
{
	uint64_t delay = p->cfg.backoff_min_ms; /* 0 turns backoff off */
	for (uint32_t i = 0; i < n && delay > 0 && delay < p->cfg.backoff_max_ms; i++)
		delay *= 2;
	if (delay > p->cfg.backoff_max_ms)
		delay = p->cfg.backoff_max_ms;
	uint64_t half = delay / 2;
	uint64_t span = delay - half + 1; /* [half, delay] inclusive */
	uint64_t out = half + rnd(rnd_ctx) % span;
	assert(out <= p->cfg.backoff_max_ms);
	return (uint32_t)out;
}

static bool policy_wants_restart(enum sk_restart restart, enum sup_exit_kind kind)
{
	switch (restart) {
	case SK_RESTART_PERMANENT:
		return true;
	case SK_RESTART_TRANSIENT:
		return kind == SUP_EXIT_ABNORMAL;
	case SK_RESTART_TEMPORARY:
		return false;
	}
	return false;
}

/* Which other children the strategy takes down with child, and which come back. */
static void policy_masks(const struct sup_policy *p, uint32_t child, struct sup_decision *out)
{
	uint32_t all = (1u << p->cfg.child_count) - 1;
	uint32_t others = 0;
	switch (p->cfg.strategy) {
	case SK_ONE_FOR_ONE:
		others = 0;
		break;
	case SK_REST_FOR_ONE:
		others = all & ~((1u << (child + 1)) - 1);
		break;
	case SK_ONE_FOR_ALL:
		others = all & ~(1u << child);
		break;
	}
	out->stop_mask = others;
	out->restart_mask = 1u << child;
	/* A temporary child taken down by the strategy is not started again (OTP). */
	for (uint32_t i = 0; i < p->cfg.child_count; i++)
		if ((others & (1u << i)) && p->cfg.restart[i] != SK_RESTART_TEMPORARY)
			out->restart_mask |= 1u << i;
}

void sup_policy_decide(struct sup_policy *p, uint32_t child, enum sup_exit_kind kind,
		       uint64_t now_ms, uint64_t uptime_ms, sup_rand_fn rnd, void *rnd_ctx,
		       struct sup_decision *out)
{
	assert(child < p->cfg.child_count);
	memset(out, 0, sizeof(*out));
	if (uptime_ms >= p->cfg.stable_after_ms)
		p->in_a_row[child] = 0;
	if (kind == SUP_EXIT_PERMANENT) {
		out->action = SUP_ACT_FAIL;
	} else if (!policy_wants_restart(p->cfg.restart[child], kind)) {
		out->action = SUP_ACT_NONE;
	} else if (!policy_count_restart(p, now_ms)) {
		out->action = SUP_ACT_ESCALATE;
	} else {
		out->action = SUP_ACT_RESTART;
		out->delay_ms = sup_policy_backoff_ms(p, p->in_a_row[child], rnd, rnd_ctx);
		if (p->in_a_row[child] < UINT32_MAX)
			p->in_a_row[child]++;
		policy_masks(p, child, out);
	}
	out->restarts_in_period = p->restart_count;
}
