/* Process plumbing for the supervisor: the shared memory and eventfds every
 * worker inherits, fork + exec of `skiffd worker NAME -c FILE`, signals by
 * pidfd, the data_dir/run_dir locks and atomic file writes. No policy here. */
#ifndef SK_SUP_PROC_H
#define SK_SUP_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/sk_error.h"
#include "ipc/fds.h"
#include "ipc/status_page.h"
#include "workers/worker_rt.h" /* SK_ENV_SUPERVISOR_PID */

#define SUP_FD_HIGH_MIN 64 /* skiffd keeps inherited fds here, above every fixed child number */
#define SUP_COMPLETION_RING_BYTES (4u * 1024 * 1024)
#define SUP_COMPLETION_RECORD_BYTES_MAX 256
#define SUP_LOCK_FILE "skiffd.lock"

/* Everything created once for skiffd's whole life and dup2()ed into each child. */
struct sup_fds {
	int null_fd;       /* /dev/null, the children's stdin */
	int status_fd;     /* SK_FD_STATUS_PAGE */
	int ingress_fd;    /* SK_FD_INGRESS_RING */
	int completion_fd; /* SK_FD_COMPLETION_RING */
	int efd[SK_FD_FIRST_FREE - SK_FD_INGRESS_DATA]; /* SK_FD_INGRESS_DATA .. SK_FD_COMMIT_HTTP */
	struct sk_status_page *page;
};

/* A spawned child: its pid, a pidfd (-1 when the kernel has none: SIGCHLD then) and the
 * read end of its readiness pipe (non-blocking). */
struct sup_proc {
	pid_t pid;
	int pidfd;
	int ready_fd;
};

/* Create the status page, both rings (ingress sized from cfg) and the eventfds. SK_EIO
 * with the failing step in err. */
sk_err sup_fds_create(struct sup_fds *fds, const sk_config *cfg, char *err, size_t err_len);
void sup_fds_close(struct sup_fds *fds);

/* fork + exec exe as `exe worker NAME -c cfg_path` with the fds at their fixed numbers and
 * everything else closed. Ring sides are recorded (ring_set_side) before the child may run
 * past its gate. SK_EIO when fork or a pipe fails. */
sk_err sup_proc_spawn(const struct sup_fds *fds, const char *exe, enum sk_worker_id id,
		      const char *cfg_path, struct sup_proc *out);
/* Send sig to the child (by pidfd when it has one). */
void sup_proc_signal(const struct sup_proc *p, int sig);

/* mkdir -p path with mode for the last component. */
sk_err sup_mkdirs(const char *path, mode_t mode);
/* Take an exclusive flock on dir/skiffd.lock and write our pid into it. SK_EBUSY with
 * "... is locked by pid N" in err when another process holds it. */
sk_err sup_lock_dir(const char *dir, const char *what, int *fd_out, char *err, size_t err_len);
/* Write data into path by temp file + rename, so readers see the old or the new file. */
sk_err sup_write_atomic(const char *path, const char *data, size_t len);

#endif
