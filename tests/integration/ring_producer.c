/* A test producer for the ingress ring (test_store_writer_kill.py).
 *
 *   ring_producer --pid HTTP_PID --topic-id N [--partition P] [--max N] [--value-bytes N]
 *                 [--drain-timeout-ms N] [--stdin-stops 0|1] [--records-per-request K]
 *                 [--rate RECORDS_PER_S] [--one-in-flight 0|1] [--wait sleep|spin]
 *
 * --one-in-flight 1 waits for each request to be durable before pushing the next
 * (every group commit then holds one request: the benchmark's fdatasync-bound case).
 * --wait says how it waits for durable_seq: sleep (the default) sets the ring's
 * waiting flag and sleeps in poll() on the eventfd, so the writer pays an eventfd
 * write and this process a wake-up per request; spin first polls durable_seq with a
 * pause instruction for up to PRODUCER_SPIN_NS, yielding the CPU every
 * PRODUCER_YIELD_NS (flag clear: the writer writes no eventfd), then sleeps as above.
 * spin burns a core: a benchmark option, it shows the store's cost without the
 * scheduler's wake-up of this process. It only pays while this process has a CPU to
 * itself: once it finds it was kept off the CPU while polling (another process needed
 * it: the writer, raft, http, or someone else's work), it waits by sleeping for the
 * next PRODUCER_SPIN_BACKOFF requests. The first output line counts both kinds of wait.
 *
 * It takes the ingress ring memfd and its two eventfds from the running http worker
 * with pidfd_getfd() (they sit at the fixed numbers of ipc/fds.h in every worker),
 * attaches as the ring's producer, and pushes produce requests, one record each,
 * whose values are "rec-<i>" for i = 1, 2, 3, ... It stops pushing when stdin
 * reaches end-of-file (unless --stdin-stops 0) or after --max records, then waits until the writer has
 * declared every pushed sequence durable (ring durable_seq) and prints, on stdout:
 *
 *   pushed N last_seq S durable_seq D max_durable_seen M elapsed_us T waits_polled P waits_slept Q
 *   then one line per record: "<i> <seq>" (not with RING_PRODUCER_QUIET set); with
 *   --records-per-request K, each request holds K records (values i .. i+K-1)
 *
 * The http worker is attached as a producer too; it must not push while this runs
 * (the test sends it no request that produces). Exit 0 on success, 1 on a failure. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/cpu.h"
#include "ipc/fds.h"
#include "ipc/msg.h"
#include "ipc/ring.h"
#include "store/record.h"

#define PRODUCER_MAX_DEFAULT 1000000u
#define PRODUCER_WINDOW_MS 60000
#define PRODUCER_SPIN_NS 2000000     /* --wait spin: poll this long before sleeping */
#define PRODUCER_YIELD_NS 5000       /* and yield the CPU this often while polling */
#define PRODUCER_OFF_CPU_NS 500000   /* a gap this long between two polls: kept off the CPU */
#define PRODUCER_SPIN_BACKOFF 256    /* then this many requests wait by sleeping */

static uint64_t waits_polled, waits_slept;
static uint32_t spin_backoff; /* requests left that wait by sleeping */

static int grab_fd(int pidfd, int target)
{
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, target, 0);
	if (fd < 0) {
		fprintf(stderr, "ring_producer: pidfd_getfd(%d): %s\n", target, strerror(errno));
		exit(1);
	}
	return fd;
}

static bool stdin_closed(void)
{
	struct pollfd p = {.fd = 0, .events = POLLIN};
	if (poll(&p, 1, 0) <= 0)
		return false;
	char buf[256];
	ssize_t n = read(0, buf, sizeof(buf));
	return n <= 0;
}

/* Push one produce request of k records (values "rec-<i>", "rec-<i+1>", ...) ; waits
 * (bounded) while the ring is full. */
static bool push_one(ring *r, uint32_t topic_id, uint32_t partition, uint64_t i, uint32_t k,
		     size_t value_bytes, uint64_t *seq_out)
{
	static uint8_t body[1 << 20];
	size_t used = 0;
	for (uint32_t n = 0; n < k; n++) {
		char value[4096];
		memset(value, '.', sizeof(value));
		int len = snprintf(value, sizeof(value), "rec-%llu", (unsigned long long)(i + n));
		value[len] = '.'; /* no NUL inside the value */
		size_t vlen = value_bytes > (size_t)len ? value_bytes : (size_t)len;
		if (vlen > sizeof(value))
			vlen = sizeof(value);
		if (used + SK_RECORD_HEADER_BYTES + vlen > sizeof(body))
			return false;
		record_encode_header(body + used, 0, 0, (uint32_t)vlen);
		memcpy(body + used + SK_RECORD_HEADER_BYTES, value, vlen);
		used += SK_RECORD_HEADER_BYTES + vlen;
	}
	uint8_t hdr[SK_MSG_REQ_HEADER_BYTES];
	struct msg_req req = {.kind = MSG_REQ_PRODUCE, .ack = SK_ACK_LOCAL, .topic_id = topic_id,
			      .partition = partition, .record_count = k, .arg2 = PRODUCER_WINDOW_MS,
			      .now_ms = clock_real_ms(), .body_len = (uint32_t)used};
	msg_req_encode_header(hdr, &req);
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {body, used}};
	for (int waits = 0; waits < 600; waits++) {
		sk_err err = ring_push(r, iov, 2, seq_out);
		if (err == SK_OK)
			return true;
		if (err != SK_EFULL) {
			fprintf(stderr, "ring_producer: push: %s\n", sk_strerror(err));
			return false;
		}
		ring_wait_prepare(r);
		if (ring_free_bytes(r) < sizeof(hdr) + used + 64) {
			struct pollfd p = {.fd = ring_wait_fd(r), .events = POLLIN};
			poll(&p, 1, 100);
		}
		ring_wait_done(r);
	}
	fprintf(stderr, "ring_producer: ring full for 60 s\n");
	return false;
}

/* --wait spin: true when seq became durable within PRODUCER_SPIN_NS. Yields the CPU
 * every PRODUCER_YIELD_NS: on 2 cores the writer is often runnable on this very CPU
 * (woken here, or preempted by raft and http), and a plain spin would keep it off
 * until the scheduler's slice ends, milliseconds later. Kept off the CPU itself for
 * longer than raft and http take per batch (so by a slice of some other process), it
 * gives up polling for a while: with the CPUs contended a poller only takes time from
 * the processes it waits for. */
static bool spin_durable(ring *r, uint64_t seq)
{
	if (spin_backoff > 0) {
		spin_backoff--;
		return false;
	}
	uint64_t now = clock_mono_ns(), until = now + PRODUCER_SPIN_NS, yield_at = now + PRODUCER_YIELD_NS;
	while (ring_durable_seq(r) < seq) {
		cpu_relax();
		uint64_t before = now;
		now = clock_mono_ns();
		if (now - before > PRODUCER_OFF_CPU_NS) {
			spin_backoff = PRODUCER_SPIN_BACKOFF;
			return false;
		}
		if (now > until)
			return false;
		if (now > yield_at) {
			sched_yield();
			yield_at = now + PRODUCER_YIELD_NS;
		}
	}
	return true;
}

/* Wait until the writer declared seq durable (it wakes a waiting producer when it
 * releases the ring, right after storing the durable sequence); with spin, poll for
 * a while first. */
static bool wait_durable(ring *r, uint64_t seq, bool spin, uint64_t deadline_ms)
{
	if (spin && spin_durable(r, seq)) {
		waits_polled++;
		return true;
	}
	if (spin)
		waits_slept++;
	while (ring_durable_seq(r) < seq) {
		if (clock_mono_ms() > deadline_ms) {
			fprintf(stderr, "ring_producer: seq %llu not durable in time\n", (unsigned long long)seq);
			return false;
		}
		ring_wait_prepare(r);
		if (ring_durable_seq(r) < seq) {
			struct pollfd p = {.fd = ring_wait_fd(r), .events = POLLIN};
			poll(&p, 1, 10);
		}
		ring_wait_done(r);
	}
	return true;
}

struct opts {
	long pid;
	uint32_t topic_id;
	uint32_t partition;
	uint64_t max;
	uint64_t drain_ms;
	size_t value_bytes;
	bool watch_stdin;
	uint32_t per_request;
	uint64_t rate; /* records/s, 0: as fast as possible */
	bool one_in_flight;
	bool wait_spin;
};

static bool parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.max = PRODUCER_MAX_DEFAULT, .drain_ms = 120000, .watch_stdin = true,
			   .per_request = 1};
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--pid") == 0)
			o->pid = strtol(v, NULL, 10);
		else if (strcmp(k, "--topic-id") == 0)
			o->topic_id = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(k, "--partition") == 0)
			o->partition = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(k, "--max") == 0)
			o->max = strtoull(v, NULL, 10);
		else if (strcmp(k, "--value-bytes") == 0)
			o->value_bytes = strtoul(v, NULL, 10);
		else if (strcmp(k, "--one-in-flight") == 0)
			o->one_in_flight = strcmp(v, "0") != 0;
		else if (strcmp(k, "--wait") == 0 && (strcmp(v, "spin") == 0 || strcmp(v, "sleep") == 0))
			o->wait_spin = strcmp(v, "spin") == 0;
		else if (strcmp(k, "--rate") == 0)
			o->rate = strtoull(v, NULL, 10);
		else if (strcmp(k, "--records-per-request") == 0)
			o->per_request = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(k, "--stdin-stops") == 0)
			o->watch_stdin = strcmp(v, "0") != 0;
		else if (strcmp(k, "--drain-timeout-ms") == 0)
			o->drain_ms = strtoull(v, NULL, 10);
		else
			return false;
	}
	return o->pid > 0 && o->topic_id != 0 && o->per_request >= 1 && o->per_request <= 10000;
}

/* The ingress ring of the process pid (the http worker), attached as its producer. */
static ring *attach_ring(long pid)
{
	int pidfd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (pidfd < 0) {
		fprintf(stderr, "ring_producer: pidfd_open(%ld): %s\n", pid, strerror(errno));
		exit(1);
	}
	int memfd = grab_fd(pidfd, SK_FD_INGRESS_RING);
	int efd_data = grab_fd(pidfd, SK_FD_INGRESS_DATA);
	int efd_space = grab_fd(pidfd, SK_FD_INGRESS_SPACE);
	ring *r;
	sk_err err = ring_attach(memfd, SK_RING_ID_INGRESS, RING_PRODUCER, efd_data, efd_space, &r);
	if (err != SK_OK) {
		fprintf(stderr, "ring_producer: attach: %s\n", sk_strerror(err));
		exit(1);
	}
	return r;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (!parse_args(argc, argv, &o)) {
		fprintf(stderr, "usage: ring_producer --pid HTTP_PID --topic-id N [--partition P] [--max N] ...\n");
		return 1;
	}
	ring *r = attach_ring(o.pid);
	uint64_t *seqs = calloc(o.max + o.per_request + 1, sizeof(*seqs));
	if (seqs == NULL)
		return 1;
	uint64_t pushed = 0, max_durable = 0, seq = 0;
	uint64_t t0_ns = clock_mono_ns();
	while (pushed < o.max && !(o.watch_stdin && stdin_closed())) {
		if (!push_one(r, o.topic_id, o.partition, pushed + 1, o.per_request, o.value_bytes, &seq))
			return 1;
		for (uint32_t n = 0; n < o.per_request; n++)
			seqs[pushed + 1 + n] = seq;
		pushed += o.per_request;
		if (o.one_in_flight && !wait_durable(r, seq, o.wait_spin, clock_mono_ms() + o.drain_ms))
			return 1;
		/* Paced: sleep while ahead of rate records per second. */
		while (o.rate > 0 && pushed * 1000000000ull / o.rate > clock_mono_ns() - t0_ns)
			clock_sleep_ms(1);
		uint64_t d = ring_durable_seq(r);
		max_durable = d > max_durable ? d : max_durable;
	}
	uint64_t last_seq = pushed ? seqs[pushed] : 0;
	bool drained = wait_durable(r, last_seq, false, clock_mono_ms() + o.drain_ms);
	uint64_t elapsed_us = (clock_mono_ns() - t0_ns) / 1000;
	printf("pushed %llu last_seq %llu durable_seq %llu max_durable_seen %llu elapsed_us %llu waits_polled %llu "
	       "waits_slept %llu\n",
	       (unsigned long long)pushed, (unsigned long long)last_seq,
	       (unsigned long long)ring_durable_seq(r), (unsigned long long)max_durable,
	       (unsigned long long)elapsed_us, (unsigned long long)waits_polled, (unsigned long long)waits_slept);
	if (getenv("RING_PRODUCER_QUIET") == NULL)
		for (uint64_t i = 1; i <= pushed; i++)
			printf("%llu %llu\n", (unsigned long long)i, (unsigned long long)seqs[i]);
	ring_detach(r);
	free(seqs);
	return drained ? 0 : 1;
}
