#!/bin/sh
# Store benchmark (issue 3): records/s, MB/s, records per fdatasync and fdatasyncs/s
# for 64 B and 1 KiB records through the ingress ring into the journal, beside the
# raw fdatasync rate of the same disk, and the writer's time to ready after SIGKILL
# with 8 million records in the journal. Usage: scripts/bench_store.sh [--quick] [--dir DIR]
# (SKIFF_BUILD_DIR: the built tree, default build; scripts/bench.sh sets it.)
set -eu
cd "$(dirname "$0")/.."
exec python3 scripts/bench_store.py "$@"
