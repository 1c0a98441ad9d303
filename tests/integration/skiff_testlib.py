"""Shared helpers for skiff's integration tests (python3, stdlib only).

A test makes a Skiffd (a temporary directory with a complete INI: data_dir and
run_dir inside it, [http] listen on a free 127.0.0.1 port, short timeouts),
starts it, waits until every worker is running and ready (`skiffctl status
--json`), does its work against the real processes, and stops it, checking
that no process and no socket is left behind. Every wait is bounded in time
and count; nothing asserts on a timing.

    import skiff_testlib as st

    def test_something():
        with st.Skiffd(supervisor={"strategy": "rest_for_one"}) as d:
            d.start()
            pid = d.worker("raft")["pid"]
            ...
            d.stop()

    if __name__ == "__main__":
        st.main(globals())

Environment (set by ctest): SKIFFD, SKIFFCTL, SKIFF_BUILD_DIR, SKIFF_SOURCE_DIR.
Other engineers may add new functions at the end of this file; existing ones
keep their behaviour.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request

WORKERS = ["writer", "raft", "replay", "http"]
EXIT_CONFIG = 78
EXIT_ESCALATED = 75
CTL_NOT_RUNNING = 3
CTL_UNREACHABLE = 4

POLL_S = 0.05
READY_TIMEOUT_S = 90.0  # bound for a whole start (real writer recovery, ASan builds)
STOP_TIMEOUT_S = 60.0


def _binary(env_name, rel):
    path = os.environ.get(env_name)
    if path:
        return path
    build = os.environ.get("SKIFF_BUILD_DIR", "build")
    return os.path.join(build, rel)


SKIFFD = _binary("SKIFFD", "supervisor/skiffd")
SKIFFCTL = _binary("SKIFFCTL", "supervisor/skiffctl")


class TestFailure(AssertionError):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout_s, what, poll_s=POLL_S):
    """Poll pred() until it returns a true value (returned), at most timeout_s."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            fail("timed out after %.1fs waiting for %s" % (timeout_s, what))
        time.sleep(poll_s)


def proc_state(pid):
    """'R', 'S', 'Z', ... or None when the process does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2]


def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def pids_with_arg(needle):
    """Live processes whose command line contains needle (e.g. our INI path)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline.split("\0") and pid_alive(pid) and pid != os.getpid():
            out.append(pid)
    return out


def default_ini(tmp, http_port):
    """A complete INI as {section: {key: value}}: everything inside tmp, short timeouts."""
    ini = {
        "node": {"id": "1", "data_dir": os.path.join(tmp, "data"),
                 "run_dir": os.path.join(tmp, "run"), "log_level": "info"},
        "http": {"listen": "127.0.0.1:%d" % http_port, "body_bytes_max": "1048576"},
        "storage": {"segment_bytes": "1048576", "ring_bytes": "8388608"},
        "supervisor": {"strategy": "one_for_one", "intensity": "100", "period_ms": "10000",
                       "backoff_min_ms": "10", "backoff_max_ms": "200",
                       "stable_after_ms": "10000", "hang_timeout_ms": "3000"},
    }
    for w in WORKERS:
        ini["worker." + w] = {"restart": "permanent", "shutdown_ms": "2000"}
    return ini


def write_ini(path, sections):
    with open(path, "w") as f:
        for section, keys in sections.items():
            f.write("[%s]\n" % section)
            for k, v in keys.items():
                f.write("%s = %s\n" % (k, v))
            f.write("\n")


def run(cmd, timeout_s=60, env=None):
    """Run a command to completion; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout_s, env=env)


class Skiffd:
    """One skiffd in its own temporary directory. Keyword arguments override INI
    sections: Skiffd(supervisor={"strategy": "rest_for_one"}, **{"worker.raft": {...}})."""

    def __init__(self, env=None, **sections):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="skiff-it-"))
        self.http_port = free_port()
        self.ini = default_ini(self.tmp, self.http_port)
        for section, keys in sections.items():
            self.ini.setdefault(section, {}).update(keys)
        self.ini_path = os.path.join(self.tmp, "skiff.ini")
        write_ini(self.ini_path, self.ini)
        self.data_dir = self.ini["node"]["data_dir"]
        self.run_dir = self.ini["node"]["run_dir"]
        self.log_path = os.path.join(self.tmp, "skiffd.log")
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self._log = None

    # ---- life cycle ----

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.dump_log()
        self.cleanup()
        return False

    def start(self, wait=True, timeout_s=READY_TIMEOUT_S):
        """Start skiffd in the foreground (stderr into skiffd.log); wait until all run."""
        check(self.proc is None or self.proc.poll() is not None, "skiffd already running")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SKIFFD, "-c", self.ini_path], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log, env=self.env)
        if wait:
            self.wait_ready(timeout_s)
        return self.proc

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s=READY_TIMEOUT_S):
        """Until every worker is running and ready; returns the status."""
        def ready():
            if not self.alive():
                fail("skiffd exited with %s before all workers were ready"
                     % (self.proc.returncode if self.proc else None))
            rc, st = self.status()
            return st if rc == 0 else None
        return wait_for(ready, timeout_s, "every worker running and ready")

    def wait_exit(self, timeout_s=STOP_TIMEOUT_S):
        """Wait for skiffd to exit; returns its exit code."""
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            fail("skiffd did not exit within %.0fs" % timeout_s)

    def stop(self, sig=signal.SIGTERM, expect_rc=0, timeout_s=STOP_TIMEOUT_S):
        """Signal skiffd, wait for it, check its exit code and that nothing is left."""
        check(self.alive(), "skiffd is not running (exit code %s)"
              % (self.proc.returncode if self.proc else None))
        self.proc.send_signal(sig)
        rc = self.wait_exit(timeout_s)
        check(rc == expect_rc, "skiffd exited with %s, expected %s" % (rc, expect_rc))
        self.assert_nothing_left()
        self.assert_log_clean()
        return rc

    def kill9(self):
        """SIGKILL skiffd itself and reap it."""
        self.proc.kill()
        return self.proc.wait(timeout=STOP_TIMEOUT_S)

    def procs(self):
        """Every live skiffd or worker process started for this INI."""
        return pids_with_arg(self.ini_path)

    def assert_no_process_left(self, timeout_s=10.0):
        wait_for(lambda: not self.procs(), timeout_s, "no process of this skiffd left")

    def assert_nothing_left(self):
        self.assert_no_process_left()
        for name in ("control.sock", "status.json"):
            path = os.path.join(self.run_dir, name)
            check(not os.path.exists(path), "%s left behind after stop" % path)

    def assert_log_clean(self):
        """No sanitizer report from skiffd or any worker (the ASan + UBSan build)."""
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(marker not in self.log_text(), "%s in %s" % (marker, self.log_path))

    def cleanup(self):
        """Kill whatever is left (a failed test), then remove the directory."""
        for _ in range(3):
            pids = self.procs()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        if self._log:
            self._log.close()
            self._log = None
        if not os.environ.get("SKIFF_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def dump_log(self, lines=80):
        text = self.log_text().splitlines()
        sys.stderr.write("---- last %d lines of %s ----\n" % (lines, self.log_path))
        for line in text[-lines:]:
            sys.stderr.write(line + "\n")
        sys.stderr.write("---- end of log ----\n")

    # ---- skiffctl ----

    def ctl(self, *args, timeout_s=60):
        """Run `skiffctl -c INI args...`; returns CompletedProcess."""
        return run([SKIFFCTL, "-c", self.ini_path] + [str(a) for a in args], timeout_s,
                   env=self.env)

    def status(self):
        """(exit code, status dict or None) of `skiffctl status --json`."""
        r = self.ctl("status", "--json")
        if r.returncode not in (0, CTL_NOT_RUNNING):
            return r.returncode, None
        return r.returncode, json.loads(r.stdout)

    def status_dict(self):
        rc, st = self.status()
        check(st is not None, "skiffctl status failed with exit code %d" % rc)
        return st

    def worker(self, name, st=None):
        st = st or self.status_dict()
        for w in st["workers"]:
            if w["name"] == name:
                return w
        fail("no worker %s in status" % name)

    def pids(self, st=None):
        """{name: pid} of every worker."""
        st = st or self.status_dict()
        return {w["name"]: w["pid"] for w in st["workers"]}

    def wait_worker(self, name, pred, timeout_s=READY_TIMEOUT_S, what=None):
        """Until pred(worker dict) holds; returns that worker dict."""
        def probe():
            if not self.alive():
                fail("skiffd exited with %s" % self.proc.returncode)
            rc, st = self.status()
            if st is None:
                return None
            w = self.worker(name, st)
            return w if pred(w) else None
        return wait_for(probe, timeout_s, what or ("worker %s condition" % name))

    def wait_restarted(self, name, old_pid, timeout_s=READY_TIMEOUT_S):
        """Until worker name runs, ready, with a pid other than old_pid."""
        return self.wait_worker(
            name, lambda w: w["state"] == "running" and w["ready"] and w["pid"]
            and w["pid"] != old_pid, timeout_s, "%s back with a new pid" % name)

    def events(self, worker=None, limit=200):
        args = ["events"] + ([worker] if worker else []) + ["--limit", limit, "--json"]
        r = self.ctl(*args)
        check(r.returncode == 0, "skiffctl events failed: %s" % r.stderr.strip())
        return json.loads(r.stdout)

    # ---- HTTP ----

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def http(self, method, path, body=None, headers=None, timeout_s=30):
        """(status, headers dict, body bytes); HTTP errors are returned, not raised."""
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.url(path), data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def http_get(self, path, headers=None, timeout_s=30):
        return self.http("GET", path, None, headers, timeout_s)

    def http_post(self, path, body, headers=None, timeout_s=30):
        return self.http("POST", path, body, headers, timeout_s)


def main(namespace):
    """Run every test_* function of namespace in order; exit 1 if any failed."""
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    only = sys.argv[1:]
    failed = []
    for name, fn in tests:
        if only and name not in only:
            continue
        t0 = time.monotonic()
        try:
            fn()
        except Exception:  # noqa: BLE001 - every failure is reported, then the next test runs
            failed.append(name)
            traceback.print_exc()
            print("FAIL %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
            continue
        print("ok   %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
    if failed:
        print("%d failed: %s" % (len(failed), " ".join(failed)), flush=True)
        sys.exit(1)
    sys.exit(0)


# ---- HTTP API helpers (added by the http worker's engineer) ----

def _split_curl_output(raw):
    """curl -D - -o - output -> (status, headers, body); skips 1xx header blocks."""
    while True:
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            return 0, {}, raw
        head, raw = raw[:end].decode("latin-1"), raw[end + 4:]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if 100 <= status < 200:
            continue
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return status, headers, raw


def curl(url, method="GET", data=None, headers=None, timeout_s=30, expect_continue=False):
    """One request with the real curl. Returns (status, headers with lower-case names,
    body bytes); status 0 when curl could not complete it (refused, reset, timeout).
    data (bytes or str) is sent byte for byte with --data-binary."""
    # -X HEAD would wait for a body that never comes: HEAD is curl -I.
    verb = ["-I"] if method == "HEAD" else ["-X", method]
    cmd = ["curl", "-sS"] + verb + ["--max-time", str(timeout_s), "-D", "-", "-o", "-"]
    if not expect_continue:
        cmd += ["-H", "Expect:"]
    for k, v in (headers or {}).items():
        cmd += ["-H", "%s: %s" % (k, v)]
    stdin = None
    if data is not None:
        stdin = data.encode() if isinstance(data, str) else data
        cmd += ["--data-binary", "@-"]
    cmd.append(url)
    r = subprocess.run(cmd, input=stdin if stdin is not None else b"", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout_s + 15)
    if r.returncode != 0 and not r.stdout:
        return 0, {}, r.stderr
    return _split_curl_output(r.stdout)


def curl_json(url, method="GET", data=None, headers=None, timeout_s=30, expect_continue=False):
    """curl(), then the body parsed as JSON (None when it is not JSON)."""
    status, hdrs, body = curl(url, method, data, headers, timeout_s, expect_continue)
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    return status, hdrs, doc


def consume_all(d, topic, partition, group="check", headers=None, limit=1000, start=0,
                max_calls=100000):
    """Every record of a partition from offset start, base64 encoding: a list of
    (offset, key bytes or None, value bytes, timestamp_ms). Fails on a gap."""
    import base64
    out = []
    offset = start
    for _ in range(max_calls):
        path = "/broker/consume/%s/%s/%d?offset=%d&limit=%d&encoding=b64" % (
            topic, group, partition, offset, limit)
        status, _, doc = curl_json(d.url(path), headers=headers)
        check(status == 200 and doc is not None, "consume %s -> %s %r" % (path, status, doc))
        for m in doc["messages"]:
            check(m["offset"] == offset, "offset %d where %d was expected (%s/%d)"
                  % (m["offset"], offset, topic, partition))
            key = base64.b64decode(m["key_b64"]) if m.get("key_b64") is not None else None
            out.append((m["offset"], key, base64.b64decode(m["value_b64"]), m.get("timestamp_ms")))
            offset += 1
        if not doc["messages"]:
            check(doc["next_offset"] == offset, "next_offset %r at the end, expected %d"
                  % (doc["next_offset"], offset))
            return out
    fail("consume_all: more than %d calls" % max_calls)


# ---- consume helpers (added by the read path's engineer) ----

def consume_page(d, topic, group, partition, timeout_s=30, **query):
    """GET /broker/consume/{topic}/{group}/{partition}?query with curl: (status, headers,
    doc). Query values are percent-encoded; pass encoding="b64", offset=5, ..."""
    from urllib.parse import urlencode
    path = "/broker/consume/%s/%s/%d" % (topic, group, partition)
    if query:
        path += "?" + urlencode(query)
    return curl_json(d.url(path), timeout_s=timeout_s)


def message_bytes(m, field):
    """The raw bytes of a consumed message's "key" or "value", whichever way the server
    wrote it ("value" as text or "value_b64"); None for a null key. Fails when the
    message carries both forms or neither."""
    import base64
    has_text, has_b64 = field in m, field + "_b64" in m
    check(has_text != has_b64, "message %r has %s and %s_b64 both or neither" % (m, field, field))
    if has_text:
        return None if m[field] is None else m[field].encode("utf-8")
    return None if m[field + "_b64"] is None else base64.b64decode(m[field + "_b64"], validate=True)
