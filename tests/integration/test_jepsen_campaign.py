#!/usr/bin/env python3
"""A short Jepsen campaign against the real skiffd: every fault mode once
(worker SIGKILL, skiffd SIGKILL, worker pause, skiffd pause, and power cuts
alternating with worker SIGKILLs, since a cut after a restart is where the
store is most fragile), about two minutes in all. Fails on any anomaly or finding, on a vacuous run (fewer
acknowledged produces than the minimum, or no fault injected) and on a run
that could not be carried out. Everything is bounded in time: a daemon that
never becomes ready fails the first run within a minute and the rest are
skipped. Run directories (history, timeline.html, logs) are kept under
/tmp/jepsen-campaign-* for a look after a failure."""

import os
import subprocess
import sys

SRC = os.environ.get("SKIFF_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
MODES = "kill-worker,kill-skiffd,pause-worker,pause-skiffd,power-cut+kill-worker"
DURATION_S = 15
MIN_ACKS = 60      # per 15 s run; a loaded 2-core CI box still makes several hundred
BUDGET_S = 420      # the campaign stops starting runs past this
HARD_LIMIT_S = 560  # below ctest's 600 s


def main():
    skiffd = os.environ.get("SKIFFD") or os.path.join(
        os.environ.get("SKIFF_BUILD_DIR", "build"), "supervisor", "skiffd")
    if not os.access(skiffd, os.X_OK):
        print("FAIL: no skiffd binary at %s (set SKIFFD or SKIFF_BUILD_DIR)" % skiffd)
        return 1
    cmd = [sys.executable, os.path.join(SRC, "jepsen", "campaign.py"), "--modes", MODES,
           "--durations", str(DURATION_S), "--min-acks", str(MIN_ACKS), "--budget", str(BUDGET_S),
           "--stop-on-error"]
    print("$ " + " ".join(cmd), flush=True)
    try:
        p = subprocess.run(cmd, timeout=HARD_LIMIT_S, start_new_session=True)
    except subprocess.TimeoutExpired:
        print("FAIL: the campaign did not finish within %d s" % HARD_LIMIT_S)
        return 1
    if p.returncode != 0:
        print("FAIL: campaign exit status %d (see the table above and the run directories)"
              % p.returncode)
    return 1 if p.returncode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
