#!/bin/sh
# Configure and build one tree. Usage: scripts/build.sh [normal|asan|clang]
# Prints the build directory on stdout.
set -eu
cd "$(dirname "$0")/.."
kind="${1:-normal}"
jobs="$(nproc 2>/dev/null || echo 2)"
case "$kind" in
normal) dir=build; opts="-DCMAKE_BUILD_TYPE=RelWithDebInfo" ;;
asan) dir=build-asan; opts="-DCMAKE_BUILD_TYPE=Debug -DSKIFF_SANITIZE=ON -DCMAKE_C_COMPILER=clang" ;;
clang) dir=build-clang; opts="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang" ;;
*) echo "scripts/build.sh: unknown build kind '$kind' (normal, asan, clang)" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
cmake -S . -B "$dir" $opts >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log" >&2; exit 1; }
cmake --build "$dir" -j "$jobs" >"$dir.build.log" 2>&1 || { grep -E "error|Error" "$dir.build.log" >&2 || cat "$dir.build.log" >&2; exit 1; }
echo "$dir"
