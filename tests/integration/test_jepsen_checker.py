#!/usr/bin/env python3
"""The jepsen history checker's unit tests (jepsen/test_checker.py). No daemon."""

import os
import subprocess
import sys

SRC = os.environ.get("SKIFF_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

if __name__ == "__main__":
    test = os.path.join(SRC, "jepsen", "test_checker.py")
    sys.exit(subprocess.run([sys.executable, test, "-v"], timeout=300).returncode)
