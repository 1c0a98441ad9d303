#!/usr/bin/env python3
"""Supervisor timings (a benchmark, not a test).

- time to ready: from exec of skiffd until every worker is ready;
- restart latency per worker: from SIGKILL until a new pid is ready.
Readiness is read from run_dir/status.json, which skiffd rewrites atomically on
every change, polled every 0.5 ms.
"""
import json, os, signal, socket, statistics, subprocess, sys, tempfile, time

BUILD = os.environ.get("SKIFF_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
SKIFFD = os.path.join(BUILD, "supervisor", "skiffd")
KILLS = int(os.environ.get("BENCH_KILLS", "20"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def read_status(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def wait(pred, path, limit_s=30.0):
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        st = read_status(path)
        if st and pred(st):
            return st
        time.sleep(0.0005)
    raise TimeoutError("status did not reach the expected state")


def all_ready(st):
    return all(w["state"] == "running" and w["ready"] for w in st["workers"])


def main():
    tmp = tempfile.mkdtemp(prefix="skiff-bench-sup-")
    ini = os.path.join(tmp, "skiff.ini")
    with open(ini, "w") as f:
        f.write(f"""[node]
data_dir = data
run_dir = run
[http]
listen = 127.0.0.1:{free_port()}
[storage]
segment_bytes = 8388608
ring_bytes = 67108864
[supervisor]
intensity = 1000
period_ms = 1000
backoff_min_ms = 0
backoff_max_ms = 0
""")
    status = os.path.join(tmp, "run", "status.json")
    t0 = time.monotonic()
    proc = subprocess.Popen([SKIFFD, "-c", ini], stderr=open(os.path.join(tmp, "skiffd.log"), "w"))
    try:
        st = wait(all_ready, status)
        print(f"time to ready (all four workers): {(time.monotonic() - t0) * 1000:.1f} ms")
        for w in ("writer", "raft", "replay", "http"):
            lat = []
            for _ in range(KILLS):
                pid = next(x["pid"] for x in st["workers"] if x["name"] == w)
                t = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                st = wait(lambda s: all_ready(s) and next(x["pid"] for x in s["workers"] if x["name"] == w) != pid, status)
                lat.append((time.monotonic() - t) * 1000)
            lat.sort()
            print(f"restart latency {w:6}: p50 {statistics.median(lat):6.1f} ms  max {lat[-1]:6.1f} ms  ({KILLS} kills)")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
