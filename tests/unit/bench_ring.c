/* Ring throughput between two processes: a forked producer pushes N records
 * of a fixed payload size; the parent peeks, checks the sequence and releases
 * (in batches, as the writer does), sleeping on the eventfd handshake when
 * there is nothing to do. Prints records/s and MB/s. Not a test: timings go
 * to benchmark output, never into asserts.
 *
 *   bench_ring [ring_bytes] [seconds_per_size]
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/sk_limits.h"
#include "ipc/ring.h"

#define BENCH_RELEASE_EVERY 4096 /* records per release (the writer: per group commit) */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wait_fd(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	poll(&p, 1, 100);
}

static void producer(int memfd, int efd_data, int efd_space, size_t len, uint64_t count)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	ring *r;
	if (ring_attach(memfd, SK_RING_ID_INGRESS, RING_PRODUCER, efd_data, efd_space, &r) != SK_OK)
		_exit(2);
	static uint8_t buf[1 << 16];
	memset(buf, 0xab, len);
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	uint64_t seq;
	for (uint64_t i = 0; i < count;) {
		sk_err err = ring_push(r, &iov, 1, &seq);
		if (err == SK_OK) {
			i++;
			continue;
		}
		if (err != SK_EFULL)
			_exit(3);
		ring_wait_prepare(r);
		if (ring_push(r, &iov, 1, &seq) == SK_OK)
			i++;
		else
			wait_fd(efd_space);
		ring_wait_done(r);
	}
	_exit(0);
}

/* Consume count records; returns 0 when every one arrived in order. */
static int consumer(ring *r, int efd_data, size_t len, uint64_t count)
{
	uint64_t cursor = ring_head(r);
	uint64_t last = 0, got = 0, since_release = 0;
	while (got < count) {
		struct ring_rec rec;
		sk_err err = ring_peek(r, &cursor, &rec);
		if (err == SK_OK) {
			if (rec.seq <= last || rec.len != len)
				return 1;
			last = rec.seq;
			got++;
			if (++since_release == BENCH_RELEASE_EVERY) {
				ring_release(r, cursor);
				since_release = 0;
			}
			continue;
		}
		if (err != SK_EAGAIN)
			return 1;
		ring_release(r, cursor);
		since_release = 0;
		ring_wait_prepare(r);
		err = ring_peek(r, &cursor, &rec);
		if (err == SK_EAGAIN)
			wait_fd(efd_data);
		ring_wait_done(r);
		if (err == SK_OK) {
			if (rec.seq <= last || rec.len != len)
				return 1;
			last = rec.seq;
			got++;
			since_release++;
		}
	}
	ring_release(r, cursor);
	return 0;
}

static int bench_one(uint64_t ring_bytes, size_t len, double seconds)
{
	int memfd;
	if (ring_create(SK_RING_ID_INGRESS, ring_bytes, 4096, &memfd) != SK_OK) {
		fprintf(stderr, "bench_ring: bad ring size %llu\n", (unsigned long long)ring_bytes);
		return 1;
	}
	int efd_data = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int efd_space = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ring *r;
	if (ring_attach(memfd, SK_RING_ID_INGRESS, RING_CONSUMER, efd_data, efd_space, &r) != SK_OK)
		return 1;
	/* Size the run from a short calibration guess: ~3 M records/s for small payloads. */
	uint64_t count = (uint64_t)(seconds * (len <= 128 ? 3e6 : 1e6));
	double t0 = now_s();
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0)
		producer(memfd, efd_data, efd_space, len, count);
	int bad = consumer(r, efd_data, len, count);
	double dt = now_s() - t0;
	int status;
	waitpid(pid, &status, 0);
	if (bad || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench_ring: run failed (payload %zu)\n", len);
		return 1;
	}
	printf(
	    "payload %5zu B  ring %8llu B  %10llu records  %6.2f s  %11.0f records/s  %8.1f MB/s\n",
	    len, (unsigned long long)ring_bytes, (unsigned long long)count, dt, (double)count / dt,
	    (double)count * (double)len / dt / 1e6);
	ring_detach(r);
	close(efd_data);
	close(efd_space);
	close(memfd);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t ring_bytes = argc > 1 ? strtoull(argv[1], NULL, 0) : 4u * 1024 * 1024;
	double seconds = argc > 2 ? strtod(argv[2], NULL) : 2.0;
	if (seconds <= 0 || seconds > 60) {
		fprintf(stderr, "usage: bench_ring [ring_bytes] [seconds_per_size (0..60]]\n");
		return 2;
	}
	int rc = 0;
	rc |= bench_one(ring_bytes, 64, seconds);
	rc |= bench_one(ring_bytes, 1024, seconds);
	return rc;
}
