#!/bin/sh
# Install dependencies, build, and run skiffd in the foreground on
# etc/skiff.ini (single node, 127.0.0.1:7070, data under ./var/).
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
dir="$(./scripts/build.sh normal)"
mkdir -p var
cat <<'MSG' >&2
skiffd is starting on http://127.0.0.1:7070 (Ctrl-C stops it). In another shell try:
  curl -s -XPOST localhost:7070/broker/topics -d '{"name":"demo","partitions":1}'
  curl -s -XPOST 'localhost:7070/broker/topics/demo/produce?partition=0' --data-binary 'hello'
  curl -s 'localhost:7070/broker/consume/demo/g1/0?offset=0&encoding=text'
  curl -s -XPOST localhost:7070/broker/commit -d '{"topic":"demo","group":"g1","partition":0,"offset":0}'
  ./build/supervisor/skiffctl -c etc/skiff.ini status
MSG
exec "$dir/supervisor/skiffd" -c etc/skiff.ini
