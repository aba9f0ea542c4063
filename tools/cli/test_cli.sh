#!/usr/bin/env bash
# test_cli.sh CLI HELPER - the shardbus CLI without shardbusd:
#   --help; bad flags (exit 2, one line naming the flag); an unreachable server (exit 1 with
#   the one-line message, within seconds, for every server command); a port that accepts but
#   does not speak Kafka (bounded by --timeout-ms); then topic list/describe, produce and consume
#   (plain, keyed, JSON with escapes and base64, offsets, counts, failures) against librdkafka's
#   mock Kafka broker, and stats against a fake /metrics. HELPER is test_cli_helper.
# Exit 0 when every check passed, 1 otherwise.
set -u
CLI=$1
HELPER=$2
T=$(mktemp -d)
failures=0
checks=0
pids=()
cleanup() {
    exec 9>&- 2>/dev/null
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
ok() { checks=$((checks + 1)); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# run EXPECTED_RC ARGS...: runs the CLI (stdin from $T/stdin if present), output in $T/out and
# $T/err, elapsed milliseconds in $elapsed; a failure if the exit status differs.
run() {
    local want=$1
    shift
    local start rc
    start=$(now_ms)
    if [ -f "$T/stdin" ]; then
        timeout 60 "$CLI" "$@" <"$T/stdin" >"$T/out" 2>"$T/err"
    else
        timeout 60 "$CLI" "$@" </dev/null >"$T/out" 2>"$T/err"
    fi
    rc=$?
    elapsed=$(($(now_ms) - start))
    if [ "$rc" != "$want" ]; then
        fail "shardbus $* exited $rc, not $want; stderr: $(head -c 400 "$T/err")"
        return 1
    fi
    ok
    return 0
}

one_line_err() { # the stderr of the last run is exactly one line
    local n
    n=$(wc -l <"$T/err")
    [ "$n" = 1 ] || fail "shardbus $*: $n lines on stderr, not 1: $(head -c 400 "$T/err")"
}

# --- usage ---
if run 0 --help; then
    for word in "topic create" "topic list" "topic describe" "topic delete" "produce TOPIC" \
        "consume TOPIC" "stats" "--bootstrap" "SHARDBUS_BOOTSTRAP" "--json" "--timeout-ms" \
        "--keyed" "--from beginning|end|OFFSET" "--acks 0|1|all" "--idempotent" "--raw" \
        "--metrics" "--verbose" "--debug" "log verify" "log dump" "Exit status"; do
        grep -qF -- "$word" "$T/out" || fail "--help does not mention \"$word\""
    done
fi
run 0 produce --help && { grep -qF "consume TOPIC" "$T/out" || fail "produce --help: no usage"; }
run 0 --version && { grep -q "^shardbus [0-9]" "$T/out" || fail "--version: $(cat "$T/out")"; }

# --- bad flags: exit 2, one line naming the flag, nothing attempted ---
bad() { # FLAG_NAMED ARGS...
    local named=$1
    shift
    if run 2 "$@"; then
        one_line_err "$@"
        grep -qF -- "$named" "$T/err" || fail "shardbus $*: the message does not name $named: $(cat "$T/err")"
        [ ! -s "$T/out" ] || fail "shardbus $*: wrote to stdout"
    fi
}
bad --bogus topic list --bogus
bad --bogus topic create t --bogus=1
bad --partitions topic create t --partitions 0
bad --retention-ms topic create t --retention-ms soon
bad --acks produce t --acks 2
bad --idempotent produce t --idempotent --acks 1
bad --partition produce t --partition -1
bad --count consume t --count x
bad --from consume t --from yesterday
bad --timeout-ms consume t --timeout-ms
bad --metrics stats --metrics
bad --raw stats --raw --json
bad --json topic list --json=1
bad frobnicate topic frobnicate
bad frobnicate frobnicate
bad --frob --frob
bad TOPIC produce
bad --debug topic list --debug nonsense
bad NAME topic describe

# --- nothing listening: exit 1 at once with the one-line message ---
port=$("$HELPER" free-port) || { echo "FAIL: no free port"; exit 1; }
want="shardbus: cannot reach a server at 127.0.0.1:$port (connection refused)"
unreachable() {
    if run 1 "$@"; then
        [ "$(cat "$T/err")" = "$want" ] || fail "shardbus $*: stderr is \"$(cat "$T/err")\", not \"$want\""
        [ "$elapsed" -lt 5000 ] || fail "shardbus $*: took $elapsed ms to give up"
    fi
}
for cmd in "topic list" "topic create t --partitions 2" "topic describe t" "topic delete t" \
    "consume t" "consume t --follow" "produce t --value v" "produce t --json --value v"; do
    # shellcheck disable=SC2086
    unreachable $cmd --bootstrap "127.0.0.1:$port"
done
printf 'a\nb\n' >"$T/stdin"
unreachable produce t --bootstrap "127.0.0.1:$port"
rm -f "$T/stdin"
SHARDBUS_BOOTSTRAP=127.0.0.1:$port unreachable topic list
if run 1 stats --metrics "127.0.0.1:$port"; then
    w="shardbus: cannot reach the metrics listener at 127.0.0.1:$port (connection refused)"
    [ "$(cat "$T/err")" = "$w" ] || fail "stats: \"$(cat "$T/err")\", not \"$w\""
fi

# --- stats against a fake /metrics ---
cat >"$T/metrics" <<'EOF'
# HELP sb_events_in_total Events produced.
# TYPE sb_events_in_total counter
sb_events_in_total{topic="orders"} 1000
sb_events_in_total{topic="a\"b"} 5
# TYPE sb_connections gauge
sb_connections 3
# TYPE sb_request_seconds histogram
sb_request_seconds_bucket{api="produce",le="0.001"} 90
sb_request_seconds_bucket{api="produce",le="0.01"} 99
sb_request_seconds_bucket{api="produce",le="+Inf"} 100
sb_request_seconds_sum{api="produce"} 0.25
sb_request_seconds_count{api="produce"} 100
sb_request_seconds_bucket{api="fetch",le="+Inf"} 0
sb_request_seconds_sum{api="fetch"} 0
sb_request_seconds_count{api="fetch"} 0
sb_up NaN
EOF
"$HELPER" http "$T/metrics" >"$T/http.port" &
pids+=($!)
for _ in $(seq 50); do [ -s "$T/http.port" ] && break; sleep 0.1; done
hp=$(cat "$T/http.port")
if run 0 stats --metrics "127.0.0.1:$hp" --raw; then
    cmp -s "$T/out" "$T/metrics" || fail "stats --raw is not the /metrics text byte for byte"
fi
if run 0 stats --metrics "127.0.0.1:$hp"; then
    cat >"$T/want" <<EOF
metrics from http://127.0.0.1:$hp/metrics
  sb_events_in_total{topic="orders"}  1000
  sb_events_in_total{topic="a\"b"}  5
  sb_connections  3
  sb_request_seconds{api="produce"}  count 100, mean 0.0025, p50 <= 0.001, p99 <= 0.01
  sb_request_seconds{api="fetch"}  count 0
  sb_up  NaN
EOF
    diff "$T/want" "$T/out" >/dev/null || fail "stats summary: $(diff "$T/want" "$T/out")"
fi
if run 0 stats --metrics "127.0.0.1:$hp" --json; then
    w='{"samples":[{"name":"sb_events_in_total","labels":{"topic":"orders"},"value":1000},{"name":"sb_events_in_total","labels":{"topic":"a\"b"},"value":5},{"name":"sb_connections","labels":{},"value":3},{"name":"sb_request_seconds_bucket","labels":{"api":"produce","le":"0.001"},"value":90},{"name":"sb_request_seconds_bucket","labels":{"api":"produce","le":"0.01"},"value":99},{"name":"sb_request_seconds_bucket","labels":{"api":"produce","le":"+Inf"},"value":100},{"name":"sb_request_seconds_sum","labels":{"api":"produce"},"value":0.25},{"name":"sb_request_seconds_count","labels":{"api":"produce"},"value":100},{"name":"sb_request_seconds_bucket","labels":{"api":"fetch","le":"+Inf"},"value":0},{"name":"sb_request_seconds_sum","labels":{"api":"fetch"},"value":0},{"name":"sb_request_seconds_count","labels":{"api":"fetch"},"value":0},{"name":"sb_up","labels":{},"value":"NaN"}]}'
    [ "$(cat "$T/out")" = "$w" ] || fail "stats --json: $(cat "$T/out")"
fi

# A port that accepts but never answers in Kafka: bounded by --timeout-ms, one line, exit 1.
if run 1 topic list --bootstrap "127.0.0.1:$hp" --timeout-ms 1500; then
    one_line_err topic list against HTTP
    grep -qF "shardbus: cannot reach a server at 127.0.0.1:$hp (" "$T/err" || fail "not-Kafka: $(cat "$T/err")"
    [ "$elapsed" -lt 6000 ] || fail "not-Kafka: took $elapsed ms with --timeout-ms 1500"
fi

# --- against librdkafka's mock broker ---
mkfifo "$T/hold"
"$HELPER" mock-broker one:1 three:3 <"$T/hold" >"$T/mock.out" &
pids+=($!)
exec 9>"$T/hold" # the mock serves until this closes
for _ in $(seq 100); do [ -s "$T/mock.out" ] && break; sleep 0.1; done
export SHARDBUS_BOOTSTRAP
SHARDBUS_BOOTSTRAP=$(cat "$T/mock.out")
[ -n "$SHARDBUS_BOOTSTRAP" ] || { echo "FAIL: the mock broker did not start"; exit 1; }

if run 0 topic list; then
    grep -Eq '^one +1$' "$T/out" && grep -Eq '^three +3$' "$T/out" || fail "topic list: $(cat "$T/out")"
fi
if run 0 topic list --json; then
    [ "$(cat "$T/out")" = '[{"topic":"one","partitions":1},{"topic":"three","partitions":3}]' ] ||
        fail "topic list --json: $(cat "$T/out")"
fi

# 1000 lines, in order, byte for byte, on one partition (values with \, ", UTF-8, a TAB).
for i in $(seq 1000); do printf 'value %d \\ "q" \303\251\tx\n' "$i"; done >"$T/lines"
cp "$T/lines" "$T/stdin"
if run 0 produce one; then
    [ "$(cat "$T/out")" = "produced 1000 messages to one" ] || fail "produce: $(cat "$T/out")"
fi
rm -f "$T/stdin"
if run 0 consume one; then
    cmp -s "$T/out" "$T/lines" || fail "consume one: not the 1000 lines produced, in order"
fi
if run 0 consume one --from 500 --count 500; then
    tail -n 500 "$T/lines" | cmp -s - "$T/out" || fail "consume --from 500 --count 500: wrong lines"
fi
if run 0 consume one --from end --timeout-ms 5000; then
    [ ! -s "$T/out" ] || fail "consume --from end printed messages"
fi
if run 1 consume one --count 1001 --timeout-ms 1000; then
    grep -qF "1000 of 1001 messages" "$T/err" || fail "consume --count 1001: $(cat "$T/err")"
    [ "$(wc -l <"$T/out")" = 1000 ] || fail "consume --count 1001: not the 1000 there are"
fi
run 1 consume one --from 5000 && { grep -qi "out of range" "$T/err" || fail "--from 5000: $(cat "$T/err")"; }

# Keyed, across 3 partitions: the same set of KEY<TAB>VALUE lines; describe counts them.
for i in $(seq 1000); do printf 'key-%d\tvalue %d\twith tab\n' "$i" "$i"; done >"$T/keyed"
cp "$T/keyed" "$T/stdin"
run 0 produce three --keyed --acks 1
rm -f "$T/stdin"
if run 0 consume three --keyed; then
    sort "$T/out" | cmp -s - <(sort "$T/keyed") || fail "consume three --keyed: not the lines produced"
fi
if run 0 topic describe three; then
    total=$(awk '$1 ~ /^[0-9]+$/ { n += $5 } END { print n }' "$T/out")
    [ "$total" = 1000 ] || fail "topic describe three: $total messages, not 1000: $(cat "$T/out")"
    [ "$(grep -c '^  [0-9]' "$T/out")" = 3 ] || fail "topic describe three: not 3 partitions"
fi
if run 0 topic describe one --json; then
    grep -qE '^\{"topic":"one","partitions":\[\{"partition":0,"leader":1,"leader_address":"[^"]+","earliest":0,"latest":1000\}\]\}$' "$T/out" ||
        fail "topic describe one --json: $(cat "$T/out")"
fi

# JSON: escapes, UTF-8, bytes that are not UTF-8 as base64, headers in order.
printf 'a\001b\377' >"$T/stdin"
run 0 produce one --key 'k"\' --header 'h=v"' --header bare --json &&
    { grep -qE '^\{"topic":"one","produced":1,"failed":0,"partition":0,"offset":1000\}$' "$T/out" || fail "produce --json: $(cat "$T/out")"; }
rm -f "$T/stdin"
run 0 produce one --value "$(printf 'tab\there \303\251 \001')"
if run 0 consume one --from 1000 --json; then
    sed 's/"timestamp":[0-9]*,/"timestamp":T,/' "$T/out" >"$T/json"
    cat >"$T/want" <<'EOF'
{"topic":"one","partition":0,"offset":1000,"timestamp":T,"key":"k\"\\","value":"YQFi/w==","value_encoding":"base64","headers":[{"key":"h","value":"v\""},{"key":"bare","value":null}]}
{"topic":"one","partition":0,"offset":1001,"timestamp":T,"key":null,"value":"tab\there é \u0001","headers":[]}
EOF
    diff "$T/want" "$T/json" >/dev/null || fail "consume --json: $(diff "$T/want" "$T/json")"
fi

# Failures name their reason.
run 1 produce one --value x --partition 7 && { grep -qi "unknown partition" "$T/err" || fail "produce --partition 7: $(cat "$T/err")"; }
run 1 consume nope && { [ "$(cat "$T/err")" = "shardbus: consume: no topic \"nope\" at $SHARDBUS_BOOTSTRAP" ] || fail "consume nope: $(cat "$T/err")"; }
run 1 consume one --partition 3 && one_line_err consume --partition 3
run 1 topic describe nope && one_line_err topic describe nope
# The mock has no CreateTopics: the admin request must still end within the timeout.
if run 1 topic create fresh --timeout-ms 1500; then
    one_line_err topic create on the mock
    [ "$elapsed" -lt 6000 ] || fail "topic create: $elapsed ms with --timeout-ms 1500"
fi

echo "test_cli: $checks commands run, $failures failures"
[ "$failures" = 0 ]
