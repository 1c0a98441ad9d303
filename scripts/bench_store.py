#!/usr/bin/env python3
"""Store benchmark (issue 3): the durable path through the ingress ring into the
journal, beside the raw fdatasync rate of the same disk, and the writer's time to
ready after SIGKILL with 8 million records in the journal.

    scripts/bench_store.sh [--quick] [--dir DIR]

Needs a built tree in SKIFF_BUILD_DIR (default: build): supervisor/skiffd,
supervisor/skiffctl and tests/integration/ring_producer (built here with cc from
the tree's static libraries if the CMake target is not there). A real skiffd runs
in a temporary directory (on the disk under test) and the producer attaches to its
ingress ring, so the figures cover ring -> writer -> journal + fdatasync -> ring
release; HTTP is not involved (scripts/bench_http.sh measures that). Timings are
printed, never asserted.

Targets (issue 3, 2-core machine): >= 1,000,000 durable 64 B records/s with large
batches; >= 90 % of the raw fdatasync rate with one record per batch; writer ready
within 100 ms of a SIGKILL whatever the journal size.

One record per batch: the producer pushes one request and waits until the writer
stores the ring's durable_seq before it pushes the next, so every group commit holds
one record. The producer waits in one of two ways:
  - "producer polls" (ring_producer --wait spin): it watches durable_seq (bounded,
    yielding the CPU now and then) instead of sleeping, so what is measured is what
    the store adds to a fdatasync (ring hand-off, frame, index entry, durable
    publish, the wake-ups of raft and http), which is what the target is about.
    Polling only helps while the producer has a CPU to itself: when other work
    keeps it off the CPU it falls back to sleeping for a while, and the line says
    which share of the waits polled (well below 100 %: the machine was busy).
  - "producer sleeps" (--wait sleep, what a real client of the ring does): the same
    plus the scheduler's wake-up of a second process after every fdatasync (on this
    VM 10-100 us when that vCPU was halted), a cost of the client's way of waiting,
    not of the store. Shown so it is not hidden.
The raw rate is noisy on this VM (it moves by 2x when other work runs), so it is
measured on the same file layout as a journal segment (SEGMENT_BYTES, preallocated,
zero-filled) for as many fdatasyncs as the round makes, just before and just after
each round of each phase; a round's ratio is against the mean of the two, and a
phase's ratio is the median of its rounds' ratios (many short rounds: a minute of
noise moves a few of them, not the median).
Where the fdatasync is issued from matters on this VM: the disk's completion
interrupt goes to one vCPU, and a fdatasync issued from the other one waits for
the wake-up of a halted vCPU, ~1.6-2x slower (the "raw disk per CPU" line shows
it in every run). Writer, producer and raw loop are left where the scheduler puts
them (skiffd pins nothing: pinning the writer to the interrupt's CPU cost 10-15 %
of HTTP produce throughput at 64 connections in an A/B on this VM), so from round
to round each side lands on either CPU, and that lottery spreads the rounds more
than the store does. Hence many short rounds and their median, and a second view
that the lottery does not move: each line splits the time per commit into the
part inside fdatasync (the writer's own skiff_fsync_duration_seconds; the raw
loop times its os.fdatasync calls) and the rest, the store's own work and the
hand-offs ("outside"). "at equal fdatasync" is the rate the store would reach
against the raw loop if both waited the raw loop's fdatasync time: raw cycle /
(raw fdatasync + store outside).
Each line also gives the steal time (/proc/stat) over its phase: when the
hypervisor runs other guests on our vCPUs, the raw rate can halve and the store,
with more processes to schedule, falls further; a phase with STEAL_NOISY % or
more is marked as noise.
"""

import calendar
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.environ.get("SKIFF_BUILD_DIR", os.path.join(ROOT, "build")))
SKIFFD = os.path.join(BUILD, "supervisor", "skiffd")
SKIFFCTL = os.path.join(BUILD, "supervisor", "skiffctl")
PRODUCER = os.path.join(BUILD, "tests", "integration", "ring_producer")
QUICK = "--quick" in sys.argv
RAW_SECONDS = 2.0 if QUICK else 4.0
FILL_RECORDS = 1_000_000 if QUICK else 8_000_000
SEGMENT_BYTES = 64 * 1024 * 1024  # [storage] segment_bytes of the daemon below
ONE_ROUNDS = 11 if QUICK else 31  # rounds per one-record phase, raw measured around each
ONE_RECORDS = 400  # records per round, and raw fdatasyncs either side
RECORD_HEADER_BYTES = 8  # store/record.h SK_RECORD_HEADER_BYTES: a 56 B value is a 64 B record
STEAL_NOISY = 5  # % of CPU time stolen by the hypervisor during a phase that marks it as noise


def log(msg):
    print(msg, flush=True)


def build_producer():
    if os.path.exists(PRODUCER):
        return
    r = subprocess.run(["cmake", "--build", BUILD, "--target", "ring_producer"], capture_output=True)
    if r.returncode == 0 and os.path.exists(PRODUCER):
        return
    os.makedirs(os.path.dirname(PRODUCER), exist_ok=True)
    libs = [os.path.join(BUILD, p) for p in ("store/libsk_store.a", "ipc/libsk_ipc.a", "common/libsk_common.a")]
    cmd = ["cc", "-O2", "-std=gnu17", "-D_GNU_SOURCE", "-I", ROOT, "-o", PRODUCER,
           os.path.join(ROOT, "tests", "integration", "ring_producer.c")] + libs + ["-lsqlite3", "-linih", "-lpthread"]
    subprocess.run(cmd, check=True)


class RawDisk:
    """fdatasync/s after an append (64 B, or a one-record phase's record size) into
    preallocated, zero-filled space (what the journal does), on the disk under test.
    One file the size of a journal segment, prepared once and appended to by every
    measurement (wrapping at its end), so a measurement neither creates nor deletes
    64 MiB next to the journal it is compared with."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "raw-fsync.bin")
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        chunk = b"\0" * (1 << 20)
        for off in range(0, SEGMENT_BYTES, len(chunk)):
            os.pwrite(self.fd, chunk, off)
        os.fdatasync(self.fd)
        self.off = 0
        self.sync_s = 0.0  # seconds spent inside os.fdatasync, summed
        self.payload = b"x" * 4096

    def _append_sync(self, size=64):
        if self.off + size > SEGMENT_BYTES:
            self.off = 0
        os.pwrite(self.fd, self.payload[:size], self.off)
        t0 = time.perf_counter()
        os.fdatasync(self.fd)
        self.sync_s += time.perf_counter() - t0
        self.off += size

    def rate(self, seconds):
        n = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            self._append_sync()
            n += 1
        return n / (time.monotonic() - t0)

    def rate_count(self, n, cpus=None, size=64):
        """fdatasync/s over n appends of size bytes (a round's worth, so both sides
        of a ratio cover as many fdatasyncs and about the same stretch of time), run
        on cpus (a set; None: wherever the scheduler puts this process)."""
        old = os.sched_getaffinity(0) if cpus else None
        if cpus:
            os.sched_setaffinity(0, cpus)
        try:
            t0 = time.monotonic()
            for _ in range(n):
                self._append_sync(size)
            return n / (time.monotonic() - t0)
        finally:
            if old:
                os.sched_setaffinity(0, old)

    def close(self):
        os.close(self.fd)
        os.unlink(self.path)


class Daemon:
    def __init__(self, base):
        self.base = base
        self.ini = os.path.join(base, "skiff.ini")
        self.port = 17000 + os.getpid() % 20000
        with open(self.ini, "w") as f:
            f.write("[node]\nid = 1\ndata_dir = %s/data\nrun_dir = %s/run\nlog_level = info\n"
                    "[http]\nlisten = 127.0.0.1:%d\n"
                    "[storage]\nsegment_bytes = %d\nring_bytes = 67108864\n"
                    "[supervisor]\nbackoff_min_ms = 0\nbackoff_max_ms = 10\nintensity = 1000\n"
                    "period_ms = 1000\nhang_timeout_ms = 30000\n" % (base, base, self.port, SEGMENT_BYTES))
        self.log_path = os.path.join(base, "skiffd.log")
        self.proc = None

    def start(self):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SKIFFD, "-c", self.ini], stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.status_ok():
                return
            time.sleep(0.05)
        raise SystemExit("skiffd did not become ready; see %s" % self.log_path)

    def status(self):
        r = subprocess.run([SKIFFCTL, "-c", self.ini, "status", "--json"], capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def status_ok(self):
        st = self.status()
        return st is not None and all(w["state"] == "running" and w["ready"] for w in st["workers"])

    def pid(self, name):
        return {w["name"]: w["pid"] for w in self.status()["workers"]}[name]

    def http(self, method, path, body=None):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=body, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def metrics(self):
        text = self.http("GET", "/metrics").decode()
        out = {}
        for name in ("skiff_fsync_total", "skiff_fsync_records_total", "skiff_fsync_bytes_total",
                     "skiff_fsync_duration_seconds_sum"):
            m = re.search(r"^%s (\S+)$" % name, text, re.M)
            out[name] = float(m.group(1)) if m else 0.0
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


def produce(d, topic_id, records, value_bytes, per_request=1, one_in_flight=False, wait="sleep"):
    """Push records through the ring; returns (seconds, metric deltas)."""
    before = d.metrics()
    cmd = [PRODUCER, "--pid", str(d.pid("http")), "--topic-id", str(topic_id), "--max", str(records),
           "--value-bytes", str(value_bytes), "--records-per-request", str(per_request),
           "--stdin-stops", "0", "--one-in-flight", "1" if one_in_flight else "0", "--wait", wait]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, RING_PRODUCER_QUIET="1"))
    if r.returncode != 0:
        raise SystemExit("ring_producer failed: %s %s" % (r.stdout, r.stderr))
    m = re.search(r"elapsed_us (\d+)", r.stdout)
    seconds = int(m.group(1)) / 1e6
    after = d.metrics()
    delta = {k: after[k] - before[k] for k in after}
    w = re.search(r"waits_polled (\d+) waits_slept (\d+)", r.stdout)
    if w:
        delta["waits_polled"], delta["waits_slept"] = int(w.group(1)), int(w.group(2))
    return seconds, delta


def report(label, records, record_bytes, seconds, delta):
    fsyncs = delta["skiff_fsync_total"] or 1
    mb = delta["skiff_fsync_bytes_total"] / 1e6
    log("  %-34s %10.0f records/s %8.1f MB/s %9.1f records/fdatasync %8.0f fdatasyncs/s"
        % (label, records / seconds, mb / seconds, delta["skiff_fsync_records_total"] / fsyncs,
           fsyncs / seconds))
    return records / seconds


def wait_writeback_settled(limit_kib=16384, timeout_s=20.0):
    """Wait (bounded) until little dirty or in-flight file data is left: after the bulk
    phases the writer's helper thread may still be zero-filling the next 64 MiB
    segment, and its writes would slow every fdatasync of the phase after (the roll
    it serves is paid by the bulk phases, not by single records). Returns the
    seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        with open("/proc/meminfo") as f:
            kib = sum(int(line.split()[1]) for line in f if line.startswith(("Dirty:", "Writeback:")))
        if kib < limit_kib:
            break
        time.sleep(0.1)
    return time.monotonic() - t0


def cpu_ticks():
    """(steal, total) jiffies of all CPUs from /proc/stat: how much of the time the
    hypervisor ran something else on our vCPUs."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def one_record_phase(d, raw, label, topic_id, value_bytes, wait):
    """ONE_ROUNDS x (ONE_RECORDS raw fdatasyncs, ONE_RECORDS requests of one record,
    each its own group commit, ONE_RECORDS raw fdatasyncs again); each round's ratio is
    against the mean of the raw rate just before and just after it, the raw loop
    appending as many bytes per fdatasync as one record is (64 B or 1 KiB). Prints
    two lines; returns the medians of the rounds' ratios: (end to end, at equal
    fdatasync)."""
    record_bytes = value_bytes + RECORD_HEADER_BYTES
    seconds, delta, raws, ratios = 0.0, {}, [], []
    parts = []  # per round: (store in, store out, raw in, raw out, ratio at equal fdatasync), us
    steal0, total0 = cpu_ticks()
    for _ in range(ONE_ROUNDS):
        sync0 = raw.sync_s
        before = raw.rate_count(ONE_RECORDS, size=record_bytes)
        s, dd = produce(d, topic_id, ONE_RECORDS, value_bytes, 1, one_in_flight=True, wait=wait)
        after = raw.rate_count(ONE_RECORDS, size=record_bytes)
        r = (before + after) / 2
        seconds += s
        for k, v in dd.items():
            delta[k] = delta.get(k, 0.0) + v
        raws.append(r)
        ratios.append(ONE_RECORDS / s / r)
        commits = dd["skiff_fsync_total"] or 1
        s_in = 1e6 * dd["skiff_fsync_duration_seconds_sum"] / commits
        s_out = 1e6 * s / commits - s_in
        r_in = 1e6 * (raw.sync_s - sync0) / (2 * ONE_RECORDS)
        r_out = 1e6 * (1 / before + 1 / after) / 2 - r_in
        parts.append((s_in, s_out, r_in, r_out, (r_in + r_out) / (r_in + s_out)))
    steal1, total1 = cpu_ticks()
    steal = 100 * (steal1 - steal0) / max(1, total1 - total0)
    fsyncs = delta["skiff_fsync_total"] or 1
    n = ONE_RECORDS * ONE_ROUNDS
    q = statistics.quantiles(ratios, n=4)
    s_in, s_out, r_in, r_out, equal = (statistics.median(p[i] for p in parts) for i in range(5))
    polled = ""
    if wait == "spin":
        waits = delta.get("waits_polled", 0) + delta.get("waits_slept", 0)
        polled = " | %3.0f %% of waits polled" % (100 * delta.get("waits_polled", 0) / (waits or 1))
    log("  %-22s %6.0f records/s %4.2f records/fdatasync %6.0f fdatasyncs/s, raw around %6.0f fdatasync/s:"
        " %3.0f %% (%d rounds: middle half %.0f-%.0f %%)%s"
        % (label, n / seconds, delta["skiff_fsync_records_total"] / fsyncs, fsyncs / seconds,
           statistics.median(raws), 100 * statistics.median(ratios), len(ratios), 100 * q[0], 100 * q[2], polled))
    log("  %-22s per commit (medians) %5.1f us in fdatasync + %4.1f us outside (raw loop %5.1f + %4.1f us);"
        " at equal fdatasync: %3.0f %% | steal %.0f %%%s"
        % ("", s_in, s_out, r_in, r_out, 100 * equal, steal,
           " (the hypervisor took the CPUs: read this phase as noise)" if steal >= STEAL_NOISY else ""))
    return statistics.median(ratios), equal


def log_ready_ms(d, killed_at_unix_ms, old_pid):
    """ms from the SIGKILL to the supervisor's 'ready worker=writer' line for a new pid."""
    deadline = time.monotonic() + 60
    pat = re.compile(r"^(\S+) info  supervisor ready worker=writer pid=(\d+) start_ms=(\d+)")
    while time.monotonic() < deadline:
        with open(d.log_path) as f:
            for line in f:
                m = pat.match(line)
                if not m or int(m.group(2)) == old_pid:
                    continue
                t = time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S")
                ms = calendar.timegm(t) * 1000 + int(m.group(1)[20:23])
                if ms >= killed_at_unix_ms - 5:
                    return ms - killed_at_unix_ms, int(m.group(3))
        time.sleep(0.02)
    raise SystemExit("writer not ready again after SIGKILL")


def recovered_line(d, pid):
    with open(d.log_path) as f:
        for line in f:
            if " writer recovered " in line and ("pid=%d" % pid) in line:
                return line.strip()
    return ""


def time_to_ready(d, kills, under_load):
    out = []
    prod = None
    if under_load:
        prod = subprocess.Popen([PRODUCER, "--pid", str(d.pid("http")), "--topic-id", "1", "--max", "100000000",
                                 "--value-bytes", "56", "--rate", "200000"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    for _ in range(kills):
        pid = d.pid("writer")
        killed = int(time.time() * 1000)
        os.kill(pid, signal.SIGKILL)
        total_ms, start_ms = log_ready_ms(d, killed, pid)
        out.append((total_ms, start_ms))
        deadline = time.monotonic() + 30
        while not d.status_ok() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.7 if under_load else 1.5)  # idle: let the writer store its checkpoint
    if prod:
        prod.stdin.close()
        prod.wait(timeout=300)
    return out


def main():
    for p in (SKIFFD, SKIFFCTL):
        if not os.path.exists(p):
            raise SystemExit("%s missing: build first (scripts/build.sh normal)" % p)
    build_producer()
    base_parent = None
    if "--dir" in sys.argv:
        base_parent = sys.argv[sys.argv.index("--dir") + 1]
    base = tempfile.mkdtemp(prefix="skiff-bench-store-", dir=base_parent)
    log("store benchmark: build %s, data in %s, %d cores, load %s"
        % (BUILD, base, os.cpu_count(), " ".join("%.1f" % x for x in os.getloadavg())))
    raw = RawDisk(base)
    log("raw disk: %.0f fdatasync/s (64 B append into preallocated, zero-filled space)"
        % raw.rate(RAW_SECONDS))
    d = Daemon(base)
    try:
        d.start()
        d.http("POST", "/broker/topics", json.dumps({"name": "b64", "partitions": 1}).encode())
        d.http("POST", "/broker/topics", json.dumps({"name": "b1k", "partitions": 1}).encode())
        n = 200_000 if QUICK else 2_000_000
        log("through the ring into the journal (one frame per ring request):")
        big64 = report("64 B, 100 records/request", n * 2,  0, *produce(d, 1, n * 2, 56, 100))
        report("64 B, 10 records/request", n, 0, *produce(d, 1, n, 56, 10))
        report("64 B, 1 record/request", n, 0, *produce(d, 1, n, 56, 1))
        report("1 KiB, 100 records/request", n // 4, 0, *produce(d, 2, n // 4, 1016, 100))
        report("1 KiB, 1 record/request", n // 4, 0, *produce(d, 2, n // 4, 1016, 1))
        settled = wait_writeback_settled()
        per_cpu = {c: raw.rate_count(ONE_RECORDS * 2, {c}) for c in sorted(os.sched_getaffinity(0))}
        log("raw disk per CPU (where the fdatasync is issued from): %s"
            % ", ".join("CPU %d %.0f/s" % (c, r) for c, r in per_cpu.items()))
        log("one record per batch (%d rounds of %d each, raw fdatasync measured just before and after each round;"
            " waited %.1f s for background writeback to settle):" % (ONE_ROUNDS, ONE_RECORDS, settled))
        p64 = one_record_phase(d, raw, "64 B, producer polls", 1, 56, "spin")
        s64 = one_record_phase(d, raw, "64 B, producer sleeps", 1, 56, "sleep")
        p1k = one_record_phase(d, raw, "1 KiB, producer polls", 2, 1016, "spin")
        s1k = one_record_phase(d, raw, "1 KiB, producer sleeps", 2, 1016, "sleep")
        log("  store overhead with a polling producer: 64 B %.0f %%, 1 KiB %.0f %% of the raw fdatasync rate"
            " (target >= 90 %%); at equal fdatasync %.0f %%, %.0f %%"
            % (100 * p64[0], 100 * p1k[0], 100 * p64[1], 100 * p1k[1]))
        log("  with a sleeping producer (adds its wake-up per record): 64 B %.0f %%, 1 KiB %.0f %%;"
            " at equal fdatasync %.0f %%, %.0f %%" % (100 * s64[0], 100 * s1k[0], 100 * s64[1], 100 * s1k[1]))
        log("  large batches, 64 B: %.0f records/s (target >= 1,000,000)" % big64)

        have = n * 2 + n + n + 4 * ONE_ROUNDS * ONE_RECORDS
        fill = max(0, FILL_RECORDS - have)
        if fill:
            t0 = time.monotonic()
            produce(d, 1, fill, 56, 1)
            log("filled the journal to %d records (%d more, 1 record/request) in %.0f s"
                % (have + fill, fill, time.monotonic() - t0))
        du = subprocess.run(["du", "-sh", os.path.join(base, "data")], capture_output=True, text=True).stdout.split()[0]
        log("time to ready after SIGKILL, %d records in the journal (data_dir %s):" % (have + fill, du))
        for label, load in (("idle", False), ("under load (200k records/s)", True)):
            res = time_to_ready(d, 3 if QUICK else 5, load)
            totals = [t for t, _ in res]
            starts = [s for _, s in res]
            log("  %-28s kill->ready median %d ms, max %d ms (spawn->ready median %d ms); all: %s"
                % (label, statistics.median(totals), max(totals), statistics.median(starts),
                   " ".join(str(t) for t in totals)))
        last = recovered_line(d, d.pid("writer"))
        if last:
            log("  last recovery: %s" % last.split(" writer ")[1])
    finally:
        d.stop()
        raw.close()
        if not os.environ.get("SKIFF_KEEP_TMP"):
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
