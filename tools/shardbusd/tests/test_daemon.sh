#!/usr/bin/env bash
# test_daemon.sh SHARDBUSD - the daemon's life around the server engine: start on free ports
# with a fresh data dir, wait for "listening on", GET /healthz and /metrics from the metrics
# listener, a second instance on the same data dir refused (exit 1, the message), SIGTERM ->
# the shutdown steps logged, exit 0, and every log line in the documented format.
# Exits 77 (skipped) while sb_server_start() is the placeholder returning -ENOSYS. The Kafka
# protocol itself is tested in tests/server/, not here.
set -u
bin=$1
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  echo "--- daemon log:" >&2
  cat "$tmp/log" >&2
  exit 1
}

# http_get PORT PATH: the whole answer (bash's /dev/tcp: no curl needed).
http_get() {
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n' "$2" >&3
  timeout 5 cat <&3
  exec 3<&-
}

for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  "$bin" --listen "127.0.0.1:$port" --metrics-listen 127.0.0.1:0 --data-dir "$tmp/data" \
    --shards 2 2>"$tmp/log" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "listening on 127.0.0.1:$port" "$tmp/log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if grep -q "listening on 127.0.0.1:$port" "$tmp/log"; then
    break
  fi
  wait "$pid"
  rc=$?
  pid=
  if grep -q "Function not implemented" "$tmp/log"; then
    echo "test_daemon: the server engine is the placeholder (ENOSYS): skipped"
    exit 77
  fi
  grep -q "Address already in use" "$tmp/log" || fail "did not start (exit $rc)"
done
[ -n "$pid" ] || fail "no free port in 5 attempts"

mport=$(grep -o 'metrics on http://127.0.0.1:[0-9]*' "$tmp/log" | grep -o '[0-9]*$')
[ -n "$mport" ] || fail "no 'metrics on' line"
health=$(http_get "$mport" /healthz) || fail "GET /healthz: no connection"
case $health in "HTTP/1.1 200 OK"*ok) ;; *) fail "GET /healthz: $health" ;; esac
metrics=$(http_get "$mport" /metrics) || fail "GET /metrics: no connection"
case $metrics in
  "HTTP/1.1 200 OK"*"Content-Type: text/plain; version=0.0.4"*) ;;
  *) fail "GET /metrics: $metrics" ;;
esac

"$bin" --listen "127.0.0.1:$((port + 1))" --metrics-listen off --data-dir "$tmp/data" \
  2>"$tmp/second.log"
rc=$?
[ $rc -eq 1 ] || fail "second instance on the same data dir: exit $rc"
grep -q "data dir $tmp/data is in use by another shardbus process" "$tmp/second.log" ||
  fail "second instance: $(cat "$tmp/second.log")"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "exit $rc after SIGTERM"
for step in "SIGTERM from pid" "metrics listener stopped" "stopping the Kafka server" \
  "closing the bus" "INFO stopped"; do
  grep -q "$step" "$tmp/log" || fail "no '$step' line"
done
bad=$(grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z shardbusd\[[0-9]+\] (INFO|WARN|ERROR) .' "$tmp/log")
[ -z "$bad" ] || fail "lines not in the log format: $bad"
echo "test_daemon: ok"
