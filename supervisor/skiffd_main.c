/* skiffd: the supervisor, and (re-executed by it) each worker.
 *
 *   skiffd -c FILE                 supervise the workers in the foreground
 *   skiffd --check-config -c FILE  validate FILE and exit (0, or 78 with one line)
 *   skiffd verify -c FILE          check the journal and indexes offline
 *   skiffd worker NAME -c FILE     one worker (started by skiffd, not by hand)
 *   skiffd --version | --help
 *
 * Exit codes: 0 clean stop; 78 bad configuration; 75 restart intensity
 * exceeded (sup.h); 64 bad command line; 1 could not start. verify: those of
 * store/verify.h (0 clean, 65 a problem found, 74 could not read). */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "store/verify.h"
#include "supervisor/sup.h"
#include "workers/worker.h"

#define EXIT_USAGE 64

static const char usage[] =
	"usage: skiffd -c FILE                 run the supervisor in the foreground\n"
	"       skiffd --check-config -c FILE  validate FILE and exit\n"
	"       skiffd verify -c FILE          check the journal and indexes offline\n"
	"       skiffd worker NAME -c FILE     one worker (skiffd starts these itself)\n"
	"       skiffd --version | --help\n"
	"exit codes: 0 stopped cleanly, 78 bad configuration, 75 restart intensity exceeded,\n"
	"            64 bad command line, 1 could not start\n";

struct args {
	const char *config;
	const char *worker; /* NULL unless `worker NAME` */
	bool check_config;
	bool verify;
};

static int usage_error(const char *what)
{
	fprintf(stderr, "skiffd: %s (try skiffd --help)\n", what);
	return EXIT_USAGE;
}

/* Returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, struct args *a)
{
	int i = 1;
	if (argc > 1 && strcmp(argv[1], "worker") == 0) {
		if (argc < 3)
			return usage_error("worker needs a NAME");
		a->worker = argv[2];
		i = 3;
	} else if (argc > 1 && strcmp(argv[1], "verify") == 0) {
		a->verify = true;
		i = 2;
	}
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("skiffd %s\n", SKIFF_VERSION);
			return 0;
		} else if (strcmp(argv[i], "--check-config") == 0) {
			a->check_config = true;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
			   i + 1 < argc) {
			a->config = argv[++i];
		} else {
			fprintf(stderr, "skiffd: unknown argument \"%s\" (try skiffd --help)\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (!a->config)
		return usage_error("-c FILE is required");
	return -1;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	int rc = parse_args(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if (a.worker) {
		enum sk_worker_id id;
		if (!cfg_worker_parse(a.worker, &id))
			return usage_error("unknown worker (workers are writer, raft, replay, http)");
		return worker_run(id, a.config);
	}
	static sk_config cfg;
	char err[SK_PATH_BYTES_MAX + 512];
	if (cfg_load(a.config, &cfg, err, sizeof(err)) != SK_OK) {
		fprintf(stderr, "skiffd: %s\n", err);
		return SK_EXIT_CONFIG;
	}
	if (a.check_config) {
		printf("%s: ok\n", cfg.path);
		return 0;
	}
	if (a.verify)
		return verify_main(&cfg);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		fprintf(stderr, "skiffd: cannot find its own binary (/proc/self/exe)\n");
		return SUP_EXIT_START;
	}
	exe[n] = 0;
	log_init("supervisor");
	static const char *const levels[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcmp(cfg.log_level, levels[i]) == 0)
			log_set_level((enum log_level)i);
	return sup_run(&cfg, exe);
}
