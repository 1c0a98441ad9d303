#!/bin/sh
# Install dependencies, build (gcc normal build and clang ASan+UBSan build),
# run every test through ctest, exit non-zero on any failure.
#   SKIFF_TEST_FILTER=regex   run only the tests whose name matches (ctest -R)
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
start=$(date +%s)

echo "== build (gcc, RelWithDebInfo)"
normal="$(./scripts/build.sh normal)"
echo "== build (clang, ASan + UBSan)"
asan="$(./scripts/build.sh asan)"

filter="${SKIFF_TEST_FILTER:-.}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

status=0
echo "== tests: unit, fuzz and integration ($normal)"
ctest --test-dir "$normal" --output-on-failure --timeout 900 -R "$filter" || status=1
echo "== tests under ASan + UBSan: unit, fuzz and the integration tests labelled asan ($asan)"
ctest --test-dir "$asan" --output-on-failure --timeout 900 -R "$filter" -L 'unit|fuzz|asan' || status=1

echo "== done in $(( $(date +%s) - start )) s: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
