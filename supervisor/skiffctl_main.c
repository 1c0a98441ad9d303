/* skiffctl: the operator's CLI. It talks to skiffd over the control socket
 * (ipc://RUN_DIR/control.sock, run_dir from the INI) and never opens data files.
 *
 *   skiffctl -c FILE status [--json]
 *   skiffctl -c FILE kill WORKER [--signal NAME]   (default TERM, like kill(1))
 *   skiffctl -c FILE restart WORKER                (waits until it runs again)
 *   skiffctl -c FILE stop                          (waits until skiffd is gone)
 *   skiffctl -c FILE events [WORKER] [--limit N] [--json]
 *
 * Exit codes: 0 every worker running (status) / done; 3 some worker not running;
 * 4 skiffd cannot be reached; 78 bad configuration; 64 bad command line; 1 other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/config.h"
#include "supervisor/sup_control.h"
#include "supervisor/sup_status.h"

#define CTL_EXIT_ERROR 1
#define CTL_EXIT_NOT_RUNNING 3
#define CTL_EXIT_UNREACHABLE 4
#define CTL_EXIT_USAGE 64
#define CTL_POLL_MS 50

static const char usage[] =
	"usage: skiffctl -c FILE status [--json]\n"
	"       skiffctl -c FILE kill WORKER [--signal NAME]   (default TERM)\n"
	"       skiffctl -c FILE restart WORKER\n"
	"       skiffctl -c FILE stop\n"
	"       skiffctl -c FILE events [WORKER] [--limit N] [--json]\n"
	"workers: writer raft replay http\n"
	"exit codes: 0 all workers running / done, 3 a worker is not running,\n"
	"            4 skiffd cannot be reached, 78 bad configuration, 64 bad command line\n";

struct ctl_args {
	const char *config;
	const char *cmd;
	const char *worker;
	const char *signal;
	const char *limit;
	bool json;
};

static int ctl_usage(const char *what)
{
	fprintf(stderr, "skiffctl: %s (try skiffctl --help)\n", what);
	return CTL_EXIT_USAGE;
}

/* -1 to go on, else an exit code. */
static int ctl_parse(int argc, char **argv, struct ctl_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		bool has_next = i + 1 < argc;
		if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(s, "--version") == 0) {
			printf("skiffctl %s\n", SKIFF_VERSION);
			return 0;
		} else if ((strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) && has_next) {
			a->config = argv[++i];
		} else if (strcmp(s, "--json") == 0) {
			a->json = true;
		} else if (strcmp(s, "--signal") == 0 && has_next) {
			a->signal = argv[++i];
		} else if (strcmp(s, "--limit") == 0 && has_next) {
			a->limit = argv[++i];
		} else if (s[0] == '-') {
			fprintf(stderr, "skiffctl: unknown option \"%s\" (try skiffctl --help)\n", s);
			return CTL_EXIT_USAGE;
		} else if (!a->cmd) {
			a->cmd = s;
		} else if (!a->worker) {
			a->worker = s;
		} else {
			fprintf(stderr, "skiffctl: unexpected argument \"%s\"\n", s);
			return CTL_EXIT_USAGE;
		}
	}
	if (!a->config)
		a->config = getenv("SKIFF_CONFIG");
	if (!a->config)
		return ctl_usage("-c FILE is required (or SKIFF_CONFIG)");
	if (!a->cmd)
		return ctl_usage("a command is required");
	return -1;
}

static int ctl_exit_for(sk_err rc)
{
	return rc == SK_ECLOSED || rc == SK_ETIMEDOUT ? CTL_EXIT_UNREACHABLE : CTL_EXIT_ERROR;
}

/* One call; on failure prints the one-line error and returns the exit code, else -1. */
static int ctl_call(const sk_config *cfg, const struct sup_request *req, json_t **result,
		    bool quiet)
{
	char err[SK_PATH_BYTES_MAX + 256];
	sk_err rc = sup_control_call(cfg->run_dir, req, result, err, sizeof(err));
	if (rc == SK_OK)
		return -1;
	if (!quiet)
		fprintf(stderr, "skiffctl: %s\n", err);
	return ctl_exit_for(rc);
}

static int ctl_status(const sk_config *cfg, const struct ctl_args *a)
{
	struct sup_request req = {.cmd = SUP_CMD_STATUS, .worker = -1};
	json_t *st;
	int rc = ctl_call(cfg, &req, &st, false);
	if (rc >= 0)
		return rc;
	if (a->json) {
		json_dumpf(st, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (sup_status_print_table(st, stdout) != SK_OK) {
		fprintf(stderr, "skiffctl: skiffd sent a status of an unexpected shape\n");
		json_decref(st);
		return CTL_EXIT_ERROR;
	}
	rc = sup_status_all_running(st) ? 0 : CTL_EXIT_NOT_RUNNING;
	json_decref(st);
	return rc;
}

static const json_t *ctl_worker(const json_t *st, const char *name)
{
	size_t i;
	const json_t *w;
	json_array_foreach(json_object_get(st, "workers"), i, w)
	{
		const char *n = json_string_value(json_object_get(w, "name"));
		if (n && strcmp(n, name) == 0)
			return w;
	}
	return NULL;
}

/* After a restart request: poll until the worker runs again with another pid. */
static int ctl_wait_restarted(const sk_config *cfg, const char *name, json_int_t old_pid)
{
	enum sk_worker_id id;
	cfg_worker_parse(name, &id);
	uint64_t budget_ms = cfg->workers[id].shutdown_ms + cfg->backoff_max_ms +
			     SK_WORKER_READY_TIMEOUT_MS + 5000;
	uint64_t deadline = clock_mono_ms() + budget_ms;
	struct sup_request req = {.cmd = SUP_CMD_STATUS, .worker = -1};
	while (clock_mono_ms() < deadline) {
		json_t *st;
		int rc = ctl_call(cfg, &req, &st, false);
		if (rc >= 0)
			return rc;
		const json_t *w = ctl_worker(st, name);
		const char *state = json_string_value(json_object_get(w, "state"));
		json_int_t pid = json_integer_value(json_object_get(w, "pid"));
		bool done = state && strcmp(state, "running") == 0 && pid > 0 && pid != old_pid;
		bool failed = state && strcmp(state, "failed") == 0;
		json_decref(st);
		if (done) {
			printf("%s restarted: pid %lld -> %lld\n", name, (long long)old_pid,
			       (long long)pid);
			return 0;
		}
		if (failed) {
			fprintf(stderr, "skiffctl: %s failed after the restart (see skiffctl status)\n",
				name);
			return CTL_EXIT_NOT_RUNNING;
		}
		clock_sleep_ms(CTL_POLL_MS);
	}
	fprintf(stderr, "skiffctl: %s did not run again within %llu ms\n", name,
		(unsigned long long)budget_ms);
	return CTL_EXIT_NOT_RUNNING;
}

static int ctl_kill_or_restart(const sk_config *cfg, const struct ctl_args *a)
{
	enum sk_worker_id id;
	if (!a->worker || !cfg_worker_parse(a->worker, &id))
		return ctl_usage("name a worker: writer, raft, replay or http");
	bool kill = strcmp(a->cmd, "kill") == 0;
	struct sup_request req = {.cmd = kill ? SUP_CMD_KILL : SUP_CMD_RESTART, .worker = (int)id};
	if (kill) {
		req.signal = sup_signal_parse(a->signal ? a->signal : "TERM");
		if (req.signal == 0)
			return ctl_usage("unknown signal (use a name like KILL, TERM, STOP or a number)");
	}
	json_t *res;
	int rc = ctl_call(cfg, &req, &res, false);
	if (rc >= 0)
		return rc;
	json_int_t pid = json_integer_value(json_object_get(res, "pid"));
	json_decref(res);
	if (kill) {
		printf("sent signal %d to %s (pid %lld)\n", req.signal, a->worker, (long long)pid);
		return 0;
	}
	return ctl_wait_restarted(cfg, a->worker, pid);
}

static int ctl_stop(const sk_config *cfg)
{
	struct sup_request req = {.cmd = SUP_CMD_STOP, .worker = -1};
	json_t *res;
	int rc = ctl_call(cfg, &req, &res, false);
	if (rc >= 0)
		return rc;
	json_decref(res);
	uint64_t budget_ms = 10000;
	for (int i = 0; i < SK_WORKER_COUNT; i++)
		budget_ms += cfg->workers[i].shutdown_ms;
	uint64_t deadline = clock_mono_ms() + budget_ms;
	struct sup_request st = {.cmd = SUP_CMD_STATUS, .worker = -1};
	while (clock_mono_ms() < deadline) {
		json_t *s;
		if (ctl_call(cfg, &st, &s, true) >= 0) {
			printf("skiffd stopped\n");
			return 0;
		}
		json_decref(s);
		clock_sleep_ms(CTL_POLL_MS);
	}
	fprintf(stderr, "skiffctl: skiffd still answers %llu ms after stop\n",
		(unsigned long long)budget_ms);
	return CTL_EXIT_ERROR;
}

static int ctl_events(const sk_config *cfg, const struct ctl_args *a)
{
	struct sup_request req = {.cmd = SUP_CMD_EVENTS, .worker = -1,
				  .limit = SUP_EVENTS_LIMIT_DEFAULT};
	if (a->worker) {
		enum sk_worker_id id;
		if (!cfg_worker_parse(a->worker, &id))
			return ctl_usage("unknown worker (workers are writer, raft, replay, http)");
		req.worker = (int)id;
	}
	if (a->limit) {
		char *end;
		long l = strtol(a->limit, &end, 10);
		if (*end != 0 || l < 1 || l > SUP_EVENTS_LIMIT_MAX)
			return ctl_usage("--limit must be 1..200");
		req.limit = (uint32_t)l;
	}
	json_t *res;
	int rc = ctl_call(cfg, &req, &res, false);
	if (rc >= 0)
		return rc;
	const json_t *events = json_object_get(res, "events");
	if (a->json) {
		json_dumpf(events, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else if (sup_events_print(events, stdout) != SK_OK) {
		fprintf(stderr, "skiffctl: skiffd sent events of an unexpected shape\n");
		json_decref(res);
		return CTL_EXIT_ERROR;
	}
	json_decref(res);
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl_args a = {0};
	int rc = ctl_parse(argc, argv, &a);
	if (rc >= 0)
		return rc;
	static sk_config cfg;
	char err[SK_PATH_BYTES_MAX + 512];
	if (cfg_load(a.config, &cfg, err, sizeof(err)) != SK_OK) {
		fprintf(stderr, "skiffctl: %s\n", err);
		return SK_EXIT_CONFIG;
	}
	if (strcmp(a.cmd, "status") == 0)
		return ctl_status(&cfg, &a);
	if (strcmp(a.cmd, "kill") == 0 || strcmp(a.cmd, "restart") == 0)
		return ctl_kill_or_restart(&cfg, &a);
	if (strcmp(a.cmd, "stop") == 0)
		return ctl_stop(&cfg);
	if (strcmp(a.cmd, "events") == 0)
		return ctl_events(&cfg, &a);
	fprintf(stderr, "skiffctl: unknown command \"%s\" (try skiffctl --help)\n", a.cmd);
	return CTL_EXIT_USAGE;
}
