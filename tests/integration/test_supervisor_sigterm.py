"""Graceful stop: SIGTERM, SIGINT or `skiffctl stop` stop the workers in
reverse order, skiffd exits 0 and leaves no process, socket or status file.
With NOTIFY_SOCKET set skiffd speaks sd_notify (READY=1, WATCHDOG=1,
STOPPING=1) and does not pass the variables on to its workers."""
import os
import signal
import socket

import skiff_testlib as st


def stop_order(d):
    return [line.split("worker=")[1].split()[0] for line in d.log_text().splitlines()
            if " supervisor stop " in line]


def test_sigterm_stops_cleanly_in_reverse_order():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with st.Skiffd() as d:
            d.start()
            st.check(os.path.exists(os.path.join(d.run_dir, "control.sock")), "no control.sock")
            st.check(os.path.exists(os.path.join(d.run_dir, "status.json")), "no status.json")
            st.check(os.stat(d.run_dir).st_mode & 0o777 == 0o700, "run_dir is not mode 0700")
            pids = list(d.pids().values())
            d.stop(sig)  # exit 0, no process, no control.sock, no status.json
            st.check(stop_order(d) == ["http", "replay", "raft", "writer"],
                     "stop order %r" % stop_order(d))
            st.check(not any(st.pid_alive(p) for p in pids), "a worker survived")
            log = d.log_text()
            st.check("reason=exit code=0" in log, "workers did not exit 0 on SIGTERM")
            st.check("stopped exit_code=0" in log, "no final line")


def test_skiffctl_stop():
    with st.Skiffd() as d:
        d.start()
        r = d.ctl("stop")
        st.check(r.returncode == 0, "skiffctl stop: %d %s" % (r.returncode, r.stderr))
        st.check(d.wait_exit() == 0, "skiffd exit code after skiffctl stop")
        d.assert_nothing_left()


class NotifyListener:
    """A datagram socket standing in for systemd; keeps every message received."""

    def __init__(self, name):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name[1:] if name.startswith("@") else name)
        self.sock.setblocking(False)
        self.msgs = []

    def drain(self):
        for _ in range(10000):
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                break
        return self.msgs

    def count(self, what):
        return sum(what in m.split("\n") for m in self.drain())

    def close(self):
        self.sock.close()


def test_sd_notify_ready_watchdog_stopping():
    for abstract in (False, True):
        with st.Skiffd() as d:
            name = "@skiff-test-%d" % os.getpid() if abstract else os.path.join(d.tmp, "notify.sock")
            n = NotifyListener(name)
            d.env.update({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "200000"})
            d.start()
            st.wait_for(lambda: n.count("READY=1"), 30, "READY=1")
            st.wait_for(lambda: n.count("WATCHDOG=1") >= 2, 30, "WATCHDOG=1 twice")
            for pid in d.pids().values():
                with open("/proc/%d/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
                st.check(not any(e.startswith(b"NOTIFY_SOCKET=") or e.startswith(b"WATCHDOG_USEC=")
                                 for e in env), "a worker inherited NOTIFY_SOCKET")
            d.stop()
            st.check(n.count("STOPPING=1") == 1, "STOPPING=1 not sent once: %r" % n.msgs[-5:])
            st.check(n.count("READY=1") == 1, "READY=1 not sent once")
            n.close()


if __name__ == "__main__":
    st.main(globals())
