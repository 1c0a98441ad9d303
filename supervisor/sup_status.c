/* Status JSON (sup_status.h): encoded by skiffd, printed by skiffctl. */
#include "supervisor/sup_status.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "common/config.h"

static const char *const state_names[] = {
	[SUP_STATE_STOPPED] = "stopped", [SUP_STATE_STARTING] = "starting",
	[SUP_STATE_RUNNING] = "running", [SUP_STATE_STOPPING] = "stopping",
	[SUP_STATE_BACKOFF] = "backoff", [SUP_STATE_FAILED] = "failed",
};

static const char *const reason_names[SUP_REASON_COUNT] = {
	[SUP_REASON_EXIT] = "exit",
	[SUP_REASON_SIGNAL] = "signal",
	[SUP_REASON_HANG] = "hang",
	[SUP_REASON_STRATEGY] = "killed-by-strategy",
	[SUP_REASON_MANUAL] = "manual",
	[SUP_REASON_READY_TIMEOUT] = "ready-timeout",
};

const char *sup_state_name(enum sup_state s)
{
	return (unsigned)s <= SUP_STATE_FAILED ? state_names[s] : "?";
}

const char *sup_reason_name(enum sup_reason r)
{
	return (unsigned)r < SUP_REASON_COUNT ? reason_names[r] : "?";
}

bool sup_reason_parse(const char *name, enum sup_reason *out)
{
	for (int i = 0; i < SUP_REASON_COUNT; i++)
		if (strcmp(name, reason_names[i]) == 0) {
			*out = (enum sup_reason)i;
			return true;
		}
	return false;
}

/* json_object_set_new() that remembers a failure instead of leaking or crashing. */
static void set_new(json_t *obj, const char *key, json_t *value, bool *ok)
{
	if (!value || json_object_set_new(obj, key, value) != 0)
		*ok = false;
}

json_t *sup_exit_to_json(const struct sup_exit *e, bool with_worker)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	bool ok = true;
	if (with_worker) {
		set_new(o, "worker", json_string(cfg_worker_name((enum sk_worker_id)e->worker)), &ok);
		set_new(o, "pid", json_integer(e->pid), &ok);
		set_new(o, "uptime_ms", json_integer((json_int_t)e->uptime_ms), &ok);
		json_t *r = json_object();
		if (r) {
			set_new(r, "auto", json_integer((json_int_t)e->restarts_auto), &ok);
			set_new(r, "manual", json_integer((json_int_t)e->restarts_manual), &ok);
		}
		set_new(o, "restarts", r, &ok);
	}
	set_new(o, "reason", json_string(sup_reason_name(e->reason)), &ok);
	set_new(o, "code", e->signal > 0 ? json_null() : json_integer(e->code), &ok);
	set_new(o, "signal", e->signal > 0 ? json_integer(e->signal) : json_null(), &ok);
	set_new(o, "core", json_boolean(e->core), &ok);
	set_new(o, "at", json_integer((json_int_t)e->at_ms), &ok);
	set_new(o, "detail", e->detail[0] ? json_string(e->detail) : json_null(), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *status_worker_json(const struct sup_status_worker *w)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	bool ok = true;
	set_new(o, "name", json_string(cfg_worker_name((enum sk_worker_id)w->id)), &ok);
	set_new(o, "state", json_string(sup_state_name(w->state)), &ok);
	set_new(o, "pid", w->pid > 0 ? json_integer(w->pid) : json_null(), &ok);
	set_new(o, "ready", json_boolean(w->ready), &ok);
	set_new(o, "uptime_ms", json_integer((json_int_t)w->uptime_ms), &ok);
	json_t *r = json_object();
	if (r) {
		set_new(r, "auto", json_integer((json_int_t)w->restarts_auto), &ok);
		set_new(r, "manual", json_integer((json_int_t)w->restarts_manual), &ok);
	}
	set_new(o, "restarts", r, &ok);
	set_new(o, "last_exit", w->has_exit ? sup_exit_to_json(&w->last_exit, false) : json_null(),
		&ok);
	set_new(o, "next_restart_ms",
		w->next_restart_ms >= 0 ? json_integer(w->next_restart_ms) : json_null(), &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *sup_status_to_json(const struct sup_status *st)
{
	json_t *root = json_object();
	json_t *sup = json_object();
	json_t *workers = json_array();
	bool ok = root && sup && workers;
	if (!ok)
		goto out_fail;
	set_new(sup, "pid", json_integer(st->pid), &ok);
	set_new(sup, "uptime_ms", json_integer((json_int_t)st->uptime_ms), &ok);
	set_new(sup, "strategy", json_string(cfg_strategy_name((enum sk_strategy)st->strategy)), &ok);
	set_new(sup, "intensity", json_integer(st->intensity), &ok);
	set_new(sup, "period_ms", json_integer(st->period_ms), &ok);
	set_new(sup, "restarts_in_period", json_integer(st->restarts_in_period), &ok);
	for (uint32_t i = 0; i < st->worker_count && ok; i++) {
		json_t *w = status_worker_json(&st->workers[i]);
		if (!w || json_array_append_new(workers, w) != 0)
			ok = false;
	}
	set_new(root, "supervisor", sup, &ok);
	sup = NULL;
	set_new(root, "workers", workers, &ok);
	workers = NULL;
	if (ok)
		return root;
out_fail:
	json_decref(root);
	json_decref(sup);
	json_decref(workers);
	return NULL;
}

sk_err sup_status_encode(const struct sup_status *st, char *buf, size_t buf_len, size_t *len_out)
{
	json_t *root = sup_status_to_json(st);
	if (!root)
		return SK_ENOMEM;
	size_t need = json_dumpb(root, NULL, 0, JSON_COMPACT);
	sk_err err = SK_OK;
	if (need == 0)
		err = SK_ENOMEM;
	else if (need + 1 > buf_len)
		err = SK_EFULL;
	else {
		json_dumpb(root, buf, need, JSON_COMPACT);
		buf[need] = 0;
		*len_out = need;
	}
	json_decref(root);
	return err;
}

/* ---- skiffctl side ---- */

bool sup_status_all_running(const json_t *status)
{
	const json_t *workers = json_object_get(status, "workers");
	if (!json_is_array(workers) || json_array_size(workers) == 0)
		return false;
	size_t i;
	const json_t *w;
	json_array_foreach(workers, i, w)
	{
		const char *state = json_string_value(json_object_get(w, "state"));
		if (!state || strcmp(state, "running") != 0 || !json_is_true(json_object_get(w, "ready")))
			return false;
	}
	return true;
}

const char *sup_fmt_duration(uint64_t ms, char *buf, size_t buf_len)
{
	uint64_t s = ms / 1000;
	if (ms < 1000)
		snprintf(buf, buf_len, "%" PRIu64 "ms", ms);
	else if (s < 60)
		snprintf(buf, buf_len, "%" PRIu64 ".%01" PRIu64 "s", s, (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(buf, buf_len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, buf_len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, buf_len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, (s % 86400) / 3600);
	return buf;
}

static json_int_t int_or(const json_t *o, const char *key, json_int_t dflt)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

/* "signal KILL 3.2s ago" / "exit 65 1m02s ago" / "-" */
static const char *fmt_last_exit(const json_t *e, char *buf, size_t buf_len)
{
	if (!json_is_object(e))
		return "-";
	const char *reason = json_string_value(json_object_get(e, "reason"));
	json_int_t code = int_or(e, "code", -1);
	json_int_t sig = int_or(e, "signal", 0);
	json_int_t at = int_or(e, "at", 0);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	char ago[32];
	sup_fmt_duration(at > 0 && (uint64_t)at <= now_ms ? now_ms - (uint64_t)at : 0, ago,
			 sizeof(ago));
	char what[48];
	if (sig > 0)
		snprintf(what, sizeof(what), "SIG%s%s", sigabbrev_np((int)sig) ? sigabbrev_np((int)sig) : "?",
			 json_is_true(json_object_get(e, "core")) ? " (core)" : "");
	else
		snprintf(what, sizeof(what), "code %lld", (long long)code);
	snprintf(buf, buf_len, "%s %s, %s ago", reason ? reason : "?", what, ago);
	return buf;
}

static void print_worker_row(const json_t *w, FILE *out)
{
	char uptime[32] = "-", last[128], next[32] = "-";
	const char *name = json_string_value(json_object_get(w, "name"));
	const char *state = json_string_value(json_object_get(w, "state"));
	json_int_t pid = int_or(w, "pid", 0);
	char pid_s[24] = "-";
	if (pid > 0) {
		snprintf(pid_s, sizeof(pid_s), "%lld", (long long)pid);
		sup_fmt_duration((uint64_t)int_or(w, "uptime_ms", 0), uptime, sizeof(uptime));
	}
	json_int_t next_ms = int_or(w, "next_restart_ms", -1);
	if (next_ms >= 0) {
		char d[24];
		snprintf(next, sizeof(next), "in %s", sup_fmt_duration((uint64_t)next_ms, d, sizeof(d)));
	}
	const json_t *r = json_object_get(w, "restarts");
	char restarts[48];
	snprintf(restarts, sizeof(restarts), "%lld/%lld", (long long)int_or(r, "auto", 0),
		 (long long)int_or(r, "manual", 0));
	const json_t *e = json_object_get(w, "last_exit");
	fprintf(out, "%-8s %-9s %-8s %-9s %-6s %-10s %-34s %s\n", name ? name : "?",
		state ? state : "?", pid_s, uptime, json_is_true(json_object_get(w, "ready")) ? "yes" : "no",
		restarts, fmt_last_exit(e, last, sizeof(last)), next);
	const char *detail = json_string_value(json_object_get(e, "detail"));
	if (detail && state && strcmp(state, "failed") == 0)
		fprintf(out, "         why: %s\n", detail);
}

sk_err sup_status_print_table(const json_t *status, FILE *out)
{
	const json_t *sup = json_object_get(status, "supervisor");
	const json_t *workers = json_object_get(status, "workers");
	if (!json_is_object(sup) || !json_is_array(workers))
		return SK_EINVAL;
	char up[32];
	const char *strategy = json_string_value(json_object_get(sup, "strategy"));
	fprintf(out, "skiffd pid %lld, up %s, strategy %s, restarts %lld of %lld allowed in %lld ms\n",
		(long long)int_or(sup, "pid", 0),
		sup_fmt_duration((uint64_t)int_or(sup, "uptime_ms", 0), up, sizeof(up)),
		strategy ? strategy : "?", (long long)int_or(sup, "restarts_in_period", 0),
		(long long)int_or(sup, "intensity", 0), (long long)int_or(sup, "period_ms", 0));
	fprintf(out, "%-8s %-9s %-8s %-9s %-6s %-10s %-34s %s\n", "WORKER", "STATE", "PID", "UPTIME",
		"READY", "RESTARTS", "LAST EXIT", "NEXT START");
	size_t i;
	const json_t *w;
	json_array_foreach(workers, i, w)
	{
		if (!json_is_object(w))
			return SK_EINVAL;
		print_worker_row(w, out);
	}
	fprintf(out, "(restarts: automatic/manual)\n");
	return SK_OK;
}

sk_err sup_events_print(const json_t *events, FILE *out)
{
	if (!json_is_array(events))
		return SK_EINVAL;
	size_t i;
	const json_t *e;
	json_array_foreach(events, i, e)
	{
		json_int_t at = int_or(e, "at", 0);
		time_t secs = (time_t)(at / 1000);
		struct tm tm;
		char when[64] = "?";
		if (gmtime_r(&secs, &tm))
			snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
				 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
				 tm.tm_sec, (int)(at % 1000));
		char what[128], up[32];
		const char *worker = json_string_value(json_object_get(e, "worker"));
		const json_t *r = json_object_get(e, "restarts");
		fprintf(out, "%s %-7s pid=%lld %s uptime=%s restarts=%lld/%lld", when,
			worker ? worker : "?", (long long)int_or(e, "pid", 0),
			fmt_last_exit(e, what, sizeof(what)),
			sup_fmt_duration((uint64_t)int_or(e, "uptime_ms", 0), up, sizeof(up)),
			(long long)int_or(r, "auto", 0), (long long)int_or(r, "manual", 0));
		const char *detail = json_string_value(json_object_get(e, "detail"));
		if (detail)
			fprintf(out, " detail=\"%s\"", detail);
		fputc('\n', out);
	}
	return SK_OK;
}
