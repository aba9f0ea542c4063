#!/usr/bin/env bash
# smoke.sh BENCH DAEMON - the bench-smoke test of shardbus-bench: first ~1 s of BENCH --system
# embedded (the bus in-process through the C API), memory only and with a data dir in a temp
# folder; then start DAEMON (shardbusd) on free loopback ports in a temp dir, run ~1 s of
# BENCH --system shardbus (librdkafka) and of --system shardbus-native (the bench's own
# Kafka-protocol client) at a low fixed rate and then as fast as possible with tiny counts, and
# pass when all exit 0 (every message arrived once, intact). No timing is asserted. When DAEMON
# is not built only the embedded runs are made.
set -u
bench=$1
daemon=${2:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sb-bench-smoke-XXXXXX") || exit 1
pid=
cleanup() {
    local rc=$?
    if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    if [[ $rc -ne 0 && $rc -ne 77 && -f $tmp/shardbusd.log ]]; then
        echo "---- shardbusd log ----"; tail -n 40 "$tmp/shardbusd.log"
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The bus in this process: memory only (fixed rate, then 2 producers x 2 consumers over 3
# partitions on 2 shards), and with the durable log in an empty data dir (durability batch).
"$bench" --system embedded --warmup 0.2 --duration 0.5 --rate 2000 --quiet --drain-timeout 10 \
    --json "$tmp/embedded-rate.json" || { echo "FAIL: embedded, fixed-rate run"; exit 1; }
"$bench" --system embedded --warmup 0.2 --duration 0.5 --producers 2 --consumers 2 --partitions 3 \
    --shards 2 --quiet --drain-timeout 10 --json "$tmp/embedded-tput.json" ||
    { echo "FAIL: embedded, throughput run"; exit 1; }
"$bench" --system embedded --warmup 0.2 --duration 0.5 --partitions 2 --data-dir "$tmp/embedded-data" \
    --durability batch --quiet --drain-timeout 10 --json "$tmp/embedded-batch.json" ||
    { echo "FAIL: embedded with a data dir, throughput run"; exit 1; }
for j in embedded-rate embedded-tput embedded-batch; do
    grep -q '"ok": true' "$tmp/$j.json" && grep -q '"client": "C API"' "$tmp/$j.json" ||
        { echo "FAIL: $j JSON does not say ok (embedded)"; exit 1; }
done
grep -q '"durability": "batch"' "$tmp/embedded-batch.json" ||
    { echo "FAIL: embedded-batch JSON does not name its durability"; exit 1; }
echo "embedded runs verified"

[[ -n $daemon && -x $daemon ]] || { echo "PASS (embedded only: shardbusd is not built)"; exit 0; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 30000))
}

for attempt in 1 2 3 4 5; do
    port=$(free_port)
    mport=$(free_port)
    "$daemon" --listen "127.0.0.1:$port" --data-dir "$tmp/data" --metrics-listen "127.0.0.1:$mport" \
        --durability none </dev/null >>"$tmp/shardbusd.log" 2>&1 &
    pid=$!
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break 2
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if grep -qi "not implemented" "$tmp/shardbusd.log"; then
        pid=
        echo "SKIP: the server engine is not implemented"
        exit 77
    fi
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
    [[ $attempt == 5 ]] && { echo "FAIL: shardbusd did not start"; exit 1; }
done
echo "shardbusd pid $pid on 127.0.0.1:$port"

"$bench" --system shardbus --addr "127.0.0.1:$port" --warmup 0.2 --duration 0.5 --rate 2000 --quiet \
    --drain-timeout 10 --server-pid "$pid" --json "$tmp/rate.json" || { echo "FAIL: fixed-rate run"; exit 1; }
grep -q '"server_us_per_msg": [0-9]' "$tmp/rate.json" ||
    { echo "FAIL: JSON has no server CPU figure (--server-pid $pid)"; exit 1; }
"$bench" --system shardbus --addr "127.0.0.1:$port" --warmup 0.2 --duration 0.5 --producers 2 --consumers 2 \
    --partitions 3 --quiet --drain-timeout 10 || { echo "FAIL: throughput run"; exit 1; }
grep -q '"ok": true' "$tmp/rate.json" || { echo "FAIL: JSON does not say ok"; exit 1; }
"$bench" --system shardbus-native --addr "127.0.0.1:$port" --warmup 0.2 --duration 0.5 --rate 2000 \
    --batch 100 --linger-ms 1 --quiet --drain-timeout 10 --json "$tmp/native-rate.json" ||
    { echo "FAIL: native client, fixed-rate run"; exit 1; }
"$bench" --system shardbus-native --addr "127.0.0.1:$port" --warmup 0.2 --duration 0.5 --producers 2 \
    --consumers 2 --partitions 3 --batch 500 --linger-ms 1 --inflight 4 --quiet --drain-timeout 10 \
    --json "$tmp/native-tput.json" || { echo "FAIL: native client, throughput run"; exit 1; }
for j in native-rate native-tput; do
    grep -q '"ok": true' "$tmp/$j.json" && grep -q '"client": "native"' "$tmp/$j.json" ||
        { echo "FAIL: $j JSON does not say ok (native client)"; exit 1; }
done
echo "PASS"
