#!/bin/bash
# HTTP benchmark (issue 4), a script and not a test: starts its own skiffd and
# its own redis-server in a temporary directory on 127.0.0.1, measures with wrk
# (Lua scripts written below) and redis-benchmark, prints req/s, p50, p99 and
# records per fdatasync, then skiff's figures as ratios to Redis Streams' XADD
# rate, beside the targets. Stops everything it started.
#
#   SKIFF_BUILD_DIR=build scripts/bench_http.sh        (BENCH_SECONDS=10 per run)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${SKIFF_BUILD_DIR:-build}"
SKIFFD="${SKIFFD:-$BUILD/supervisor/skiffd}"
SECS="${BENCH_SECONDS:-10}"
for tool in wrk redis-server redis-benchmark redis-cli curl python3; do
	command -v "$tool" >/dev/null || { echo "bench_http: $tool is missing (scripts/deps.sh --bench)" >&2; exit 2; }
done
[ -x "$SKIFFD" ] || { echo "bench_http: no skiffd at $SKIFFD" >&2; exit 2; }

TMP="$(mktemp -d /tmp/skiff-bench-http.XXXXXX)"
SKIFF_PID=""
REDIS_PID=""
cleanup() {
	if [ -n "$SKIFF_PID" ] && kill -0 "$SKIFF_PID" 2>/dev/null; then
		kill -TERM "$SKIFF_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$SKIFF_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$SKIFF_PID" 2>/dev/null || true
	fi
	if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
		kill -TERM "$REDIS_PID" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$REDIS_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- skiffd ----
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
cat >"$TMP/skiff.ini" <<EOF
[node]
id = 1
data_dir = $TMP/data
run_dir = $TMP/run
log_level = warn
[http]
listen = 127.0.0.1:$PORT
body_bytes_max = 8388608
batch_records_max = 10000
connections_max = 1024
[storage]
ring_bytes = 67108864
EOF
"$SKIFFD" -c "$TMP/skiff.ini" >"$TMP/skiffd.log" 2>&1 &
SKIFF_PID=$!
for _ in $(seq 1 600); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/ready" || true)" = 200 ] && break
	kill -0 "$SKIFF_PID" 2>/dev/null || { echo "bench_http: skiffd exited" >&2; tail -20 "$TMP/skiffd.log" >&2; exit 1; }
	sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/ready")" = 200 ] || { echo "bench_http: skiffd not ready" >&2; exit 1; }
curl -sf -X POST "$BASE/broker/topics" -d '{"name":"bench","partitions":1}' >/dev/null

# ---- wrk scripts ----
VALUE="$(head -c 64 /dev/zero | tr '\0' v)"
cat >"$TMP/produce.lua" <<EOF
wrk.method = "POST"
wrk.body = "$VALUE"
wrk.headers["Content-Type"] = "application/octet-stream"
EOF
cat >"$TMP/ndjson.lua" <<EOF
wrk.method = "POST"
local lines = {}
for i = 1, 1000 do lines[i] = "$VALUE" end
wrk.body = table.concat(lines, "\n") .. "\n"
wrk.headers["Content-Type"] = "application/x-ndjson"
EOF
# Consume walks the partition 1000 records at a time from offset 0, wrapping before the end.
cat >"$TMP/consume.lua" <<'EOF'
local hw = tonumber(os.getenv("BENCH_HW"))
local n = 0
request = function()
	local off = (n * 1000) % (hw - 1000)
	n = n + 1
	return wrk.format("GET", "/broker/consume/bench/g/0?offset=" .. off .. "&limit=1000&encoding=text")
end
EOF

metric() { curl -s "$BASE/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

# One wrk thread, as redis-benchmark is one thread: on 2 cores a second client
# thread only takes CPU from the server it measures (64 connections, interleaved
# runs: 54-80 k req/s with one thread, 35-61 k with two).
WRK_THREADS="${BENCH_WRK_THREADS:-1}"

# run NAME CONNECTIONS RECORDS_PER_REQUEST SCRIPT PATH
run() {
	local name=$1 conns=$2 per=$3 script=$4 path=$5 threads=$WRK_THREADS
	[ "$conns" -lt "$threads" ] && threads=$conns
	local f0 r0 f1 r1 out
	f0=$(metric skiff_fsync_total); r0=$(metric skiff_fsync_records_total)
	out=$(wrk -t"$threads" -c"$conns" -d"${SECS}s" --latency -s "$script" "$BASE$path")
	f1=$(metric skiff_fsync_total); r1=$(metric skiff_fsync_records_total)
	local rps p50 p99 bad
	rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
	p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
	p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
	bad=$(echo "$out" | awk '/Non-2xx/ { print $5 }')
	local per_fsync="-"
	if [ "${f1:-0}" != "${f0:-0}" ]; then
		per_fsync=$(awk -v a="$r1" -v b="$r0" -v c="$f1" -v d="$f0" 'BEGIN { printf "%.1f", (a - b) / (c - d) }')
	fi
	local recs
	recs=$(awk -v r="$rps" -v p="$per" 'BEGIN { printf "%.0f", r * p }')
	printf '%-30s %5s %12s %14s %10s %10s %11s %s\n' "$name" "$conns" "$rps" "$recs" "$p50" "$p99" "$per_fsync" "${bad:+non-2xx=$bad}"
	eval "R_${6}=$recs"
}

echo "skiff http benchmark: ${SECS}s per run, $(nproc) cores, skiffd $SKIFFD"
printf '%-30s %5s %12s %14s %10s %10s %11s\n' scenario conns req/s records/s p50 p99 recs/fsync
# ---- Redis Streams baseline, started now so both can be measured turn about ----
RPORT="$(free_port)"
mkdir -p "$TMP/redis"
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$TMP/redis" --appendonly yes \
	--appendfsync always --save "" --daemonize no --logfile "$TMP/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
XADD_N=$(awk -v s="$SECS" 'BEGIN { printf "%d", s * 40000 }')
xadd() {
	redis-benchmark -h 127.0.0.1 -p "$RPORT" -c 32 -n "$XADD_N" --csv XADD bench '*' f "$VALUE" |
		awk -F'"' '/XADD/ { print $4 }' | tail -1
}

run "produce 64 B durable" 1 1 "$TMP/produce.lua" "/broker/topics/bench/produce?partition=0" P1
run "produce 64 B durable" 16 1 "$TMP/produce.lua" "/broker/topics/bench/produce?partition=0" P16
# The 1.3 x target is a ratio on a shared 2-core VM whose speed drifts by tens of
# percent from minute to minute (both sides are CPU-bound with their load
# generator): skiff at 64 connections and Redis at 32 take turns, ROUNDS times,
# and the median of the per-round ratios is the figure.
ROUNDS="${BENCH_ROUNDS:-5}"
RATIOS=""
XADDS=""
for r in $(seq 1 "$ROUNDS"); do
	run "produce 64 B durable (round $r)" 64 1 "$TMP/produce.lua" "/broker/topics/bench/produce?partition=0" P64
	x=$(xadd)
	echo "redis XADD 64 B, appendfsync always, 32 connections (round $r): ${x} req/s"
	RATIOS="$RATIOS $(awk -v a="$R_P64" -v b="$x" 'BEGIN { printf "%.3f", a / b }')"
	XADDS="$XADDS $x"
	eval "R_P64_$r=$R_P64"
done
median() { echo "$@" | tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
XADD=$(median $XADDS)
R_P64=$(median $(for r in $(seq 1 "$ROUNDS"); do eval "echo \$R_P64_$r"; done))
RATIO_P64=$(median $RATIOS)
run "produce-ndjson 1000 x 64 B" 16 1000 "$TMP/ndjson.lua" "/broker/topics/bench/produce-ndjson?partition=0" ND
HW=$(curl -s "$BASE/broker/topics/bench" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitions"][0]["high_watermark"])')
if [ "${HW:-0}" -gt 2000 ]; then
	export BENCH_HW=$HW
	run "consume 1000 per request" 16 1000 "$TMP/consume.lua" "/" CO
else
	echo "consume: only ${HW:-0} records in the partition, skipped"; R_CO=0
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "skiff against Redis XADD (median ${XADD}/s; records/s divided by XADD/s):"
echo "  durable produce, 64 connections: median ${R_P64}/s; per-round ratios:${RATIOS}; median $(printf '%.2f' "$RATIO_P64") x   (target >= 1.3 x)"
echo "  durable produce, 16 connections: ${R_P16}/s = $(ratio "$R_P16" "$XADD") x"
echo "  durable produce, 1 connection:   ${R_P1}/s = $(ratio "$R_P1" "$XADD") x   (target p50 <= 0.5 ms: first line)"
echo "  produce-ndjson:                  ${R_ND} records/s = $(ratio "$R_ND" "$XADD") x   (target >= 1,000,000 records/s)"
echo "  consume:                         ${R_CO} records/s = $(ratio "$R_CO" "$XADD") x   (target >= 1,000,000 records/s)"
