"""Nodes under test: a skiffd per node in its own directory, started, crashed,
paused, power-cut and stopped by the harness. Single node for now: a
LocalNode runs on 127.0.0.1 with a free port. The cluster work adds peers to
the INI and reuses everything else (run.py and the nemesis take a list).

Every process a node starts runs in its own session (start_new_session), so
the node finds skiffd and every worker by session id even after skiffd died
(workers call setpgid and are reparented); teardown kills the whole session.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import powercut_build

WORKERS = ("writer", "raft", "replay", "http")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
PDEATHSIG_WAIT_S = 3.0  # workers must be gone this long after skiffd's SIGKILL


class NodeError(Exception):
    pass


def default_binary(env_name, rel):
    if os.environ.get(env_name):
        return os.environ[env_name]
    for base in (os.environ.get("SKIFF_BUILD_DIR"), "build", "/tmp/build-jepsen"):
        if base and os.path.exists(os.path.join(base, rel)):
            return os.path.join(base, rel)
    return os.path.join(os.environ.get("SKIFF_BUILD_DIR") or "build", rel)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid):
    """{state, ppid, pgrp, session, start} of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return {"state": fields[0], "ppid": int(fields[1]), "pgrp": int(fields[2]),
            "session": int(fields[3]), "start": int(fields[19])}


def alive(pid, start=None):
    st = proc_stat(pid)
    return st is not None and st["state"] not in ("Z", "X") and (start is None or st["start"] == start)


def session_members(sid):
    """Live pids in session sid (skiffd and its workers, wherever reparented)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st["session"] == sid and st["state"] not in ("Z", "X"):
                out.append(int(entry))
    return out


def describe(pids):
    """pid -> command line, for findings."""
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                out[str(pid)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            out[str(pid)] = "?"
    return out


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class LocalNode:
    """One skiffd on this machine. findings collects what the node did that the
    contract forbids even though no history anomaly shows it (a worker that
    outlived skiffd, skiffd exiting on its own, a failed verify)."""

    def __init__(self, name, node_id, root, skiffd, skiffctl, powercut=None, ini_overrides=None,
                 log=None):
        self.name, self.id = name, node_id
        self.dir = os.path.join(root, name)
        self.data_dir = os.path.join(self.dir, "data")
        self.run_dir = os.path.join(self.dir, "run")
        self.ini = os.path.join(self.dir, "skiff.ini")
        self.log_path = os.path.join(self.dir, "skiffd.log")
        self.state_dir = os.path.join(self.dir, "powercut-state")
        self.skiffd, self.skiffctl = skiffd, skiffctl
        self.powercut = powercut  # (library, tool) or None
        self.host, self.port = "127.0.0.1", free_port()
        self.ini_overrides = ini_overrides or {}
        self.proc = None
        self.sid = None
        self.starts = 0
        self.expect_down = False
        self.findings = []
        self.log = log or (lambda msg: None)
        self._log_file = None

    # ------------------------------------------------------------ config

    def config(self):
        ini = {
            "node": {"id": str(self.id), "data_dir": self.data_dir, "run_dir": self.run_dir,
                     "log_level": "info"},
            "http": {"listen": "%s:%d" % (self.host, self.port),
                     "idempotency_window_ms": "3600000", "request_timeout_ms": "3000"},
            # Faults come every second or so: restart without giving up, quickly.
            "supervisor": {"strategy": "one_for_one", "intensity": "1000", "period_ms": "10000",
                           "backoff_min_ms": "10", "backoff_max_ms": "200",
                           "stable_after_ms": "2000", "hang_timeout_ms": "1000"},
        }
        for section, keys in self.ini_overrides.items():
            ini.setdefault(section, {}).update(keys)
        return ini

    def write_config(self):
        for d in (self.dir, self.data_dir, self.run_dir):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.run_dir, 0o700)
        with open(self.ini, "w") as f:
            for section, keys in self.config().items():
                f.write("[%s]\n" % section)
                for k, v in keys.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")

    # ------------------------------------------------------------ life cycle

    def start(self, timeout_s=READY_TIMEOUT_S):
        if self.running():
            raise NodeError("%s: skiffd already running" % self.name)
        if self.starts == 0:
            self.write_config()
            if self.powercut:
                powercut_build.init(self.powercut[1], self.data_dir, self.state_dir)
        self.starts += 1
        if self._log_file is None:
            self._log_file = open(self.log_path, "ab")
        self._log_file.write(("=== jepsen: start %d of %s (monotonic %d ns)\n"
                              % (self.starts, self.name, time.monotonic_ns())).encode())
        self._log_file.flush()
        env = dict(os.environ)
        if self.powercut:
            env = powercut_build.env_for(self.powercut[0], self.data_dir, self.state_dir, env)
        try:
            self.proc = subprocess.Popen([self.skiffd, "-c", self.ini], stdin=subprocess.DEVNULL,
                                         stdout=self._log_file, stderr=self._log_file, env=env,
                                         start_new_session=True)
        except OSError as e:
            raise NodeError("%s: cannot start %s: %s" % (self.name, self.skiffd, e))
        self.sid = self.proc.pid
        self.expect_down = False
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s=READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.running():
                raise NodeError("%s: skiffd exited with status %s while starting:\n%s"
                                % (self.name, self.proc.returncode if self.proc else None,
                                   tail(self.log_path)))
            status, _ = self.http("GET", "/ready", timeout_s=1.0)
            if status == 200:
                return
            last = "GET /ready answered %s" % status
            time.sleep(0.1)
        raise NodeError("%s: not ready after %.0f s (%s):\n%s"
                        % (self.name, timeout_s, last, tail(self.log_path)))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        """False (and a finding) when skiffd exited although nobody stopped it."""
        if self.proc is None or self.expect_down or self.running():
            return True
        self.expect_down = True
        self.finding("unexpected-exit", "skiffd exited on its own with status %s"
                     % self.proc.returncode, log=tail(self.log_path, 15))
        self._reap_session()
        return False

    def finding(self, kind, message, **extra):
        f = {"node": self.name, "kind": kind, "message": message, "time": time.monotonic_ns()}
        f.update(extra)
        self.findings.append(f)
        self.log("FINDING %s %s: %s" % (self.name, kind, message))

    # ------------------------------------------------------------ talking to it

    def http(self, method, path, body=None, timeout_s=5.0):
        """(status, parsed JSON or text) or (None, error string)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
        try:
            conn.request(method, path, body=body, headers={"Connection": "close"})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            return None, repr(e)
        finally:
            conn.close()
        try:
            return resp.status, json.loads(data)
        except ValueError:
            return resp.status, data.decode(errors="replace")

    def status(self, timeout_s=5.0):
        """`skiffctl status --json` as a dict, or None when skiffd cannot be reached."""
        try:
            p = subprocess.run([self.skiffctl, "-c", self.ini, "status", "--json"],
                               capture_output=True, text=True, timeout=timeout_s)
            return json.loads(p.stdout)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return None

    def worker_pid(self, name):
        """(pid, start time) of a running worker, checked to be in this node's session."""
        st = self.status()
        for w in (st or {}).get("workers", []):
            pid = w.get("pid") or 0
            if w.get("name") == name and pid > 0:
                s = proc_stat(pid)
                if s and s["session"] == self.sid and s["state"] not in ("Z", "X"):
                    return pid, s["start"]
        return None

    def members(self):
        return session_members(self.sid) if self.sid else []

    # ------------------------------------------------------------ faults

    def signal_skiffd(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def crash(self):
        """SIGKILL skiffd alone; its workers must follow (PR_SET_PDEATHSIG).
        Returns the pids that outlived it (then killed; each is a finding)."""
        self.expect_down = True
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        self._wait_proc(10)
        deadline = time.monotonic() + PDEATHSIG_WAIT_S
        while self.members() and time.monotonic() < deadline:
            time.sleep(0.02)
        orphans = self.members()
        if orphans:
            self.finding("orphan-worker", "%d process(es) outlived skiffd's SIGKILL by %.0f s"
                         % (len(orphans), PDEATHSIG_WAIT_S), pids=describe(orphans))
            self._reap_session()
        return orphans

    def cut_power(self):
        """Every process of the node dies at once, then every write not made
        durable is dropped. Returns the power-cut tool's summary."""
        if not self.powercut:
            raise NodeError("%s: power cut needs the node started with the power-cut layer"
                            % self.name)
        self.expect_down = True
        unmodelled = [pid for pid in self.members()
                      if not powercut_build.loaded_in(pid, self.powercut[0])]
        unmodelled = describe(unmodelled)
        self._reap_session()
        if unmodelled:
            self.finding("powercut-not-loaded", "processes ran without the power-cut layer, so "
                         "their writes were not modelled", pids=unmodelled)
        return powercut_build.restore(self.powercut[1], self.data_dir, self.state_dir)

    def _reap_session(self):
        """SIGKILL every process of the session until none is left (bounded)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pids = self.members()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        self._wait_proc(5)
        left = self.members()
        if left:
            raise NodeError("%s: processes %s survive SIGKILL" % (self.name, left))

    def _wait_proc(self, timeout_s):
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass

    def resume_all(self):
        for pid in self.members():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    # ------------------------------------------------------------ end of run

    def stop(self, timeout_s=STOP_TIMEOUT_S):
        """Graceful stop (SIGTERM); a stop that hangs or fails is a finding."""
        if not self.running():
            self._reap_session()
            return
        self.expect_down = True
        self.resume_all()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout_s)
            if rc != 0:
                self.finding("stop-failed", "SIGTERM: skiffd exited with status %s" % rc,
                             log=tail(self.log_path, 15))
        except subprocess.TimeoutExpired:
            self.finding("stop-timeout", "skiffd did not stop within %.0f s of SIGTERM" % timeout_s)
        deadline = time.monotonic() + 1.0
        while self.members() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.members():
            self.finding("stop-left-processes", "processes left after skiffd stopped",
                         pids=describe(self.members()))
        self._reap_session()

    def verify(self, timeout_s=120):
        """`skiffd verify -c INI` on the stopped node: (exit status, output)."""
        try:
            p = subprocess.run([self.skiffd, "verify", "-c", self.ini], capture_output=True,
                               text=True, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, repr(e)
        return p.returncode, (p.stdout + p.stderr)[-4000:]

    def powercut_notes(self):
        if not self.powercut:
            return [], []
        return powercut_build.status(self.powercut[1], self.state_dir)

    def teardown(self):
        """Kill whatever is left; never raises."""
        try:
            self.expect_down = True
            self._reap_session()
        except Exception as e:  # noqa: BLE001 - teardown must go on
            self.log("teardown of %s: %s" % (self.name, e))
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def save_logs(self, run_dir):
        if os.path.exists(self.log_path):
            shutil.copyfile(self.log_path, os.path.join(run_dir, "%s.skiffd.log" % self.name))
