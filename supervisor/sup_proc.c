/* Process plumbing (sup_proc.h). Between fork() and exec() the child makes
 * only async-signal-safe calls (read, sigprocmask, setpgid, dup2, close_range,
 * execv, _exit): skiffd runs nng threads, and nng is not fork-safe. */
#include <assert.h>
#include "supervisor/sup_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ipc/ring.h"

/* Move fd above every fixed child number, close-on-exec; -1 on failure (fd closed). */
static int fd_high(int fd)
{
	if (fd < 0)
		return -1;
	int high = fcntl(fd, F_DUPFD_CLOEXEC, SUP_FD_HIGH_MIN);
	close(fd);
	return high;
}

static sk_err fds_fail(char *err, size_t err_len, const char *what, sk_err rc)
{
	snprintf(err, err_len, "%s: %s%s%s", what, sk_strerror(rc), errno ? ": " : "",
		 errno ? strerror(errno) : "");
	return rc;
}

sk_err sup_fds_create(struct sup_fds *fds, const sk_config *cfg, char *err, size_t err_len)
{
	memset(fds, 0xff, sizeof(*fds)); /* every fd -1 */
	fds->page = NULL;
	errno = 0;
	if ((fds->null_fd = fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC))) < 0)
		return fds_fail(err, err_len, "open /dev/null", SK_EIO);
	sk_err rc = status_page_create(&fds->status_fd, &fds->page);
	if (rc != SK_OK || (fds->status_fd = fd_high(fds->status_fd)) < 0)
		return fds_fail(err, err_len, "status page", rc ? rc : SK_EIO);
	/* A record holds one produce request: the body plus its header and names. */
	uint64_t rec_max = cfg->http_body_bytes_max + SK_RING_REQUEST_OVERHEAD_BYTES;
	assert(rec_max <= cfg->ring_bytes / 4); /* cfg_load refuses anything else */
	rc = ring_create(SK_RING_ID_INGRESS, cfg->ring_bytes, (uint32_t)rec_max, &fds->ingress_fd);
	if (rc != SK_OK || (fds->ingress_fd = fd_high(fds->ingress_fd)) < 0)
		return fds_fail(err, err_len, "ingress ring", rc ? rc : SK_EIO);
	rc = ring_create(SK_RING_ID_COMPLETION, SUP_COMPLETION_RING_BYTES,
			 SUP_COMPLETION_RECORD_BYTES_MAX, &fds->completion_fd);
	if (rc != SK_OK || (fds->completion_fd = fd_high(fds->completion_fd)) < 0)
		return fds_fail(err, err_len, "completion ring", rc ? rc : SK_EIO);
	for (size_t i = 0; i < sizeof(fds->efd) / sizeof(fds->efd[0]); i++)
		if ((fds->efd[i] = fd_high(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))) < 0)
			return fds_fail(err, err_len, "eventfd", SK_EIO);
	return SK_OK;
}

void sup_fds_close(struct sup_fds *fds)
{
	int *all[] = {&fds->null_fd, &fds->status_fd, &fds->ingress_fd, &fds->completion_fd};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (*all[i] >= 0) {
			close(*all[i]);
			*all[i] = -1;
		}
	for (size_t i = 0; i < sizeof(fds->efd) / sizeof(fds->efd[0]); i++)
		if (fds->efd[i] >= 0) {
			close(fds->efd[i]);
			fds->efd[i] = -1;
		}
	status_page_detach(fds->page);
	fds->page = NULL;
}

/* In the child, between fork and exec: async-signal-safe calls only. Waits at the gate
 * until the parent has recorded the ring sides, then execs. Never returns. */
__attribute__((noreturn)) static void child_exec(const struct sup_fds *fds, int gate_fd,
						 int ready_fd, const char *exe, char *const argv[])
{
	char go;
	ssize_t r;
	while ((r = read(gate_fd, &go, 1)) < 0 && errno == EINTR)
		;
	if (r != 1)
		_exit(127); /* the parent died or gave up on us */
	/* skiffd's handlers (libevent's) would write into skiffd's own signal pipe: back to
	 * the defaults while every signal is still blocked, then unblock. */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Own process group: a Ctrl-C on skiffd's terminal reaches skiffd only, which then
	 * stops the workers in order. */
	setpgid(0, 0);
	const int map[][2] = {
		{fds->null_fd, STDIN_FILENO},
		{ready_fd, SK_FD_READY},
		{fds->status_fd, SK_FD_STATUS_PAGE},
		{fds->ingress_fd, SK_FD_INGRESS_RING},
		{fds->completion_fd, SK_FD_COMPLETION_RING},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (dup2(map[i][0], map[i][1]) < 0)
			_exit(127);
	for (int i = 0; i < SK_FD_FIRST_FREE - SK_FD_INGRESS_DATA; i++)
		if (dup2(fds->efd[i], SK_FD_INGRESS_DATA + i) < 0)
			_exit(127);
	if (syscall(SYS_close_range, SK_FD_FIRST_FREE, ~0u, 0) != 0)
		for (int fd = SK_FD_FIRST_FREE; fd < 65536; fd++)
			close(fd);
	execv(exe, argv);
	_exit(127);
}

/* Parent, after fork: the writer consumes ingress and produces completions; http the other
 * way round. raft and replay use neither ring. */
static void proc_set_ring_sides(const struct sup_fds *fds, enum sk_worker_id id, pid_t pid)
{
	if (id == SK_W_WRITER) {
		ring_set_side(fds->ingress_fd, RING_CONSUMER, pid);
		ring_set_side(fds->completion_fd, RING_PRODUCER, pid);
	} else if (id == SK_W_HTTP) {
		ring_set_side(fds->ingress_fd, RING_PRODUCER, pid);
		ring_set_side(fds->completion_fd, RING_CONSUMER, pid);
	}
}

static int proc_pidfd_open(pid_t pid)
{
#ifdef SKIFF_FAULTS
	if (getenv("SKIFF_FAULT_NO_PIDFD"))
		return -1; /* tests take the SIGCHLD path; never in a release */
#endif
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd >= 0) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		return fd_high(fd);
	}
#endif
	(void)pid;
	return -1; /* old kernel: exits are seen through SIGCHLD */
}

sk_err sup_proc_spawn(const struct sup_fds *fds, const char *exe, enum sk_worker_id id,
		      const char *cfg_path, struct sup_proc *out)
{
	int gate[2], ready[2];
	if (pipe2(gate, O_CLOEXEC) != 0)
		return SK_EIO;
	if (pipe2(ready, O_CLOEXEC) != 0)
		goto out_close_gate;
	/* Sources above the fixed numbers, so no dup2() in the child overwrites another source. */
	gate[0] = fd_high(gate[0]);
	ready[1] = fd_high(ready[1]);
	if (gate[0] < 0 || ready[1] < 0)
		goto out_close_ready;
	char *const argv[] = {(char *)exe, "worker", (char *)cfg_worker_name(id), "-c",
			      (char *)cfg_path, NULL};
	atomic_store(&fds->page->ready[id], 0);
	/* No signal handler may run in the child before it resets them (child_exec). */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid_t pid = fork();
	if (pid == 0)
		child_exec(fds, gate[0], ready[1], exe, argv);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		goto out_close_ready;
	close(gate[0]);
	close(ready[1]);
	proc_set_ring_sides(fds, id, pid);
	out->pid = pid;
	out->pidfd = proc_pidfd_open(pid);
	out->ready_fd = fd_high(ready[0]);
	if (out->ready_fd >= 0)
		fcntl(out->ready_fd, F_SETFL, O_NONBLOCK);
	ssize_t w = write(gate[1], "g", 1); /* open the gate: the child may exec now */
	(void)w;
	close(gate[1]);
	return SK_OK;

out_close_ready:
	if (ready[0] >= 0)
		close(ready[0]);
	if (ready[1] >= 0)
		close(ready[1]);
out_close_gate:
	if (gate[0] >= 0)
		close(gate[0]);
	close(gate[1]);
	return SK_EIO;
}

void sup_proc_signal(const struct sup_proc *p, int sig)
{
#ifdef SYS_pidfd_send_signal
	if (p->pidfd >= 0 && syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) == 0)
		return;
#endif
	/* The pid cannot be reused before we reap it, so kill() is safe too. */
	if (p->pid > 0)
		kill(p->pid, sig);
}

sk_err sup_mkdirs(const char *path, mode_t mode)
{
	char buf[SK_PATH_BYTES_MAX];
	int n = snprintf(buf, sizeof(buf), "%s", path);
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return SK_EINVAL;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return SK_EIO;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return SK_EIO;
	struct stat st;
	if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return SK_EIO;
	}
	return SK_OK;
}

sk_err sup_lock_dir(const char *dir, const char *what, int *fd_out, char *err, size_t err_len)
{
	char path[SK_PATH_BYTES_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, SUP_LOCK_FILE);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return SK_EIO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		char pid[32] = "";
		ssize_t r = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[r > 0 ? r : 0] = 0;
		pid[strcspn(pid, "\n")] = 0;
		close(fd);
		if (e == EWOULDBLOCK) {
			snprintf(err, err_len, "%s %s is locked by pid %s (another skiffd runs on it)",
				 what, dir, pid[0] ? pid : "?");
			return SK_EBUSY;
		}
		snprintf(err, err_len, "%s: flock: %s", path, strerror(e));
		return SK_EIO;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		snprintf(err, err_len, "%s: write: %s", path, strerror(errno));
		close(fd);
		return SK_EIO;
	}
	*fd_out = fd_high(fd);
	return SK_OK;
}

sk_err sup_write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[SK_PATH_BYTES_MAX + 16];
	int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return SK_EINVAL;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return SK_EIO;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(fd);
	if (off != len || rename(tmp, path) != 0) {
		unlink(tmp);
		return SK_EIO;
	}
	return SK_OK;
}
