#!/bin/sh
# Benchmarks (never run by the tests). Usage: scripts/bench.sh store|http|sup|all
# Each prints its figures beside the targets from the issues.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh --bench
dir="$(./scripts/build.sh normal)"
export SKIFF_BUILD_DIR="$PWD/$dir"
what="${1:-all}"
case "$what" in
store) exec ./scripts/bench_store.sh ;;
http) exec ./scripts/bench_http.sh ;;
sup) exec ./scripts/bench_sup.sh ;;
all) ./scripts/bench_store.sh; ./scripts/bench_http.sh; ./scripts/bench_sup.sh ;;
*) echo "usage: scripts/bench.sh store|http|sup|all" >&2; exit 2 ;;
esac
