#!/bin/sh
# Supervisor timings: time to ready at start, restart latency after kill -9.
set -eu
cd "$(dirname "$0")/.."
exec python3 scripts/bench_sup.py "$@"
