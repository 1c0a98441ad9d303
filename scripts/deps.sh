#!/bin/sh
# Install, with apt-get, exactly the Debian packages skiff needs that are
# missing. Idempotent and silent when nothing is missing.
#   scripts/deps.sh          build + test dependencies
#   scripts/deps.sh --bench  also the benchmark tools (wrk, redis-server)
set -eu

pkgs="gcc clang cmake make pkg-config libevent-dev libnng-dev libsqlite3-dev
libinih-dev libcmocka-dev libjansson-dev libsodium-dev libhttp-parser-dev python3 curl procps"
if [ "${1:-}" = "--bench" ]; then
	pkgs="$pkgs wrk redis-server redis-tools"
fi

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "scripts/deps.sh: missing packages:$missing" >&2
	echo "scripts/deps.sh: not root and no sudo; install them as root: apt-get install$missing" >&2
	exit 1
fi

echo "scripts/deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
