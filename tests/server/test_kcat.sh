#!/bin/bash
# test_kcat.sh - Debian's real kcat against a live shardbusd.
#
# 1. 100,000 keyed messages with headers (kcat -P -K<TAB> -H ...; keys and values of varied
#    lengths holding every byte but NUL, TAB and LF; one header with an empty value, one null,
#    one with UTF-8, '=' and ',') into a topic of 4 partitions (auto-created on first use with
#    --default-partitions 4; kcat's partitioner spreads the keys), consumed back from the
#    beginning (kcat -C -e, no group): every key, value and header byte-identical, offsets
#    0, 1, 2... per partition, production order per partition. Again with
#    compression.codec=gzip, snappy, lz4 and zstd, one topic each (and, when the segments can
#    be found in the data dir, the compressed topics take less room than the plain one).
# 2. Where consuming starts: the beginning, the end (nothing old; exactly what is produced
#    after the consumer started), an absolute offset (exactly the tail from there), the last N
#    (-o -N), and a timestamp (-o s@MS: two phases produced a second apart, asking for the
#    second phase's start gives exactly the second phase).
# 3. kcat -L lists every topic with its partition count.
#
# Usage: test_kcat.sh PATH-TO-SHARDBUSD   (exit 77 while shardbusd or its engine is missing;
# SB_TEST_SCALE shrinks the 100,000)
set -u -o pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=server_env.sh
source "$here/server_env.sh"

command -v kcat >/dev/null || sb_skip "kcat is not installed (apt-get install kcat)"
sb_env_init "${1:-}"
sb_start --default-partitions 4

N=$(sb_scaled 100000 1000)
PARTS=4
CODECS=(none gzip snappy lz4 zstd)
KCAT_TIMEOUT=120
B=$SB_BOOTSTRAP
T=$SB_TMP
echo "broker $B, $N messages per codec"

kc() { timeout "$KCAT_TIMEOUT" kcat -b "$B" "$@"; }

# ---- the messages: "KEY<TAB>VALUE" lines, KEY = 6-digit sequence number, ':' and random bytes
# (1..30 of them), VALUE = 1..300 random bytes and sometimes a run of 'z' (so compression has
# something to do). Bytes 0x01..0xff except TAB and LF, from a fixed seed.
gen_start=$SECONDS
awk -v N="$N" 'BEGIN {
    srand(20261126)
    for (c = 1; c < 256; c++) if (c != 9 && c != 10) alpha = alpha sprintf("%c", c)
    na = length(alpha)
    for (i = 0; i < 256; i++) {
        chunk = ""
        for (j = 0; j < 256; j++) chunk = chunk substr(alpha, int(rand() * na) + 1, 1)
        pool = pool chunk
    }
    np = length(pool)
    zs = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
    for (n = 0; n < N; n++) {
        kl = 1 + int(rand() * 30); vl = 1 + int(rand() * 300)
        key = sprintf("%06d:", n) substr(pool, int(rand() * (np - kl)) + 1, kl)
        val = substr(pool, int(rand() * (np - vl)) + 1, vl)
        if (n % 3 == 0) val = val substr(zs, 1, 1 + int(rand() * 100))
        printf "%s\t%s\n", key, val
    }
}' >"$T/input" || sb_fail "cannot generate the messages"
[[ $(wc -l <"$T/input") -eq $N ]] || sb_fail "generated $(wc -l <"$T/input") lines, expected $N"
echo "generated $N messages ($(wc -c <"$T/input") bytes) in $((SECONDS - gen_start)) s"

# Headers: plain, empty value, null value (no '='), UTF-8 with '=' and ',' in the value.
HDR_ARGS=(-H "source=kcat-test" -H "empty=" -H "nullvalue" -H $'utf8=caf\xc3\xa9 \xe2\x82\xac=1,2')
export SB_HDRS=$'source=kcat-test,empty=,nullvalue=NULL,utf8=caf\xc3\xa9 \xe2\x82\xac=1,2'
FMT='%p\t%o\t%k\t%s\t%h\n'

check_consumed() { # FILE WHAT: the whole input back, per partition in order, headers exact
    local out=$1 what=$2
    awk -F'\t' -v N="$N" -v what="$what" '
        function bad(msg) { printf "%s: line %d: %s\n", what, NR, msg > "/dev/stderr"; err = 1; exit 1 }
        {
            if (NF != 5) bad("expected 5 tab-separated fields, got " NF)
            p = $1; o = $2; seq = substr($3, 1, 6) + 0
            if (!(p in nx)) { nx[p] = 0; parts++ }
            if (o != nx[p]) bad("partition " p ": offset " o ", expected " nx[p])
            nx[p]++
            if ((p in last) && seq <= last[p]) bad("partition " p ": message " seq " after " last[p])
            last[p] = seq
            if ($5 != ENVIRON["SB_HDRS"]) bad("headers differ: " $5)
            n++
        }
        END {
            if (err) exit 1
            if (n != N) { printf "%s: %d messages, expected %d\n", what, n, N > "/dev/stderr"; exit 1 }
            if (parts < 2) { printf "%s: all messages in %d partition(s)\n", what, parts > "/dev/stderr"; exit 1 }
            printf "%s: %d messages in %d partitions, offsets contiguous, in order, headers exact\n", what, n, parts
        }' "$out" || sb_fail "$what: consumed messages wrong"
    # Keys and values byte for byte: the consumed pairs, in sequence order, are the input.
    cut -f3,4 "$out" | sort >"$out.kv"
    if ! cmp -s "$out.kv" "$T/input"; then
        cmp "$out.kv" "$T/input" | head -n 3 >&2
        diff <(cut -c1-60 "$out.kv") <(cut -c1-60 "$T/input") | head -n 10 | cat -v >&2
        sb_fail "$what: keys and values differ from what was produced"
    fi
    rm -f "$out.kv"
}

# ---- 1. produce and consume, plain and with each codec ----
for codec in "${CODECS[@]}"; do
    topic=kcat-$codec
    t0=$SECONDS
    kc -P -t "$topic" -K $'\t' "${HDR_ARGS[@]}" -X compression.codec="$codec" \
        -X linger.ms=10 <"$T/input" 2>"$T/produce-$codec.err" ||
        { cat "$T/produce-$codec.err" >&2; sb_fail "kcat -P ($codec) failed"; }
    grep -q "Delivery failed\|ERROR" "$T/produce-$codec.err" &&
        { head "$T/produce-$codec.err" >&2; sb_fail "kcat -P ($codec) reported errors"; }
    t1=$SECONDS
    kc -C -t "$topic" -e -o beginning -f "$FMT" >"$T/out-$codec" 2>"$T/consume-$codec.err" ||
        { cat "$T/consume-$codec.err" >&2; sb_fail "kcat -C ($codec) failed"; }
    echo "$codec: produced in $((t1 - t0)) s, consumed in $((SECONDS - t1)) s"
    check_consumed "$T/out-$codec" "$codec"
    rm -f "$T/out-$codec"
done

# Compression took effect: the segments of a compressed topic are smaller than the plain one's.
# (Only when the data dir holds Kafka-style TOPIC-PARTITION folders; else say so.)
topic_bytes() {
    find "$T/data" -type d -name "kcat-$1-[0-9]*" -print0 2>/dev/null |
        xargs -0 -r -I{} find {} -type f -name '*.log' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'
}
if [[ -z $SB_EXTERNAL ]]; then
    plain=$(topic_bytes none)
    if ((plain > 0)); then
        for codec in gzip snappy lz4 zstd; do
            size=$(topic_bytes "$codec")
            echo "$codec: $size bytes of segments (plain: $plain)"
            ((size > 0 && size * 10 < plain * 9)) ||
                sb_fail "the $codec topic takes $size bytes, the plain one $plain: not compressed?"
        done
    else
        echo "note: no kcat-none-N/*.log segments under $T/data, compression not checked on disk"
    fi
fi

# ---- 2. where consuming starts: one partition, phases a, b, (c, produced later) ----
OT=kcat-offsets
NA=1000
NB=500
NC=200
phase() { # LETTER COUNT: lines "LETTER000000<TAB>value-LETTER-0..."
    awk -v l="$1" -v n="$2" 'BEGIN { for (i = 0; i < n; i++) printf "%s%06d\tvalue-%s-%d-%s\n", l, i, l, i, substr("abcdefghijklmnopqrstuvwxyz", 1, i % 27) }'
}
produce_phase() {
    phase "$1" "$2" | kc -P -t "$OT" -p 0 -K $'\t' 2>"$T/p-$1.err" ||
        { cat "$T/p-$1.err" >&2; sb_fail "kcat -P phase $1 failed"; }
}
expect_from() { # WHAT FIRST-OFFSET FILE [PHASES...]: FILE is exactly offsets FIRST.. of a+b(+c)
    local what=$1 first=$2 file=$3
    { phase a $NA; phase b $NB; [[ ${4:-} == c ]] && phase c $NC; } |
        awk -F'\t' -v first="$first" '{ if (NR - 1 >= first) printf "%d\t%s\t%s\n", NR - 1, $1, $2 }' >"$T/expected"
    if ! cmp -s "$T/expected" "$file"; then
        diff "$T/expected" "$file" | head -n 10 >&2
        sb_fail "$what: wrong messages ($(wc -l <"$file") lines, expected $(wc -l <"$T/expected"))"
    fi
    echo "ok: $what: exactly offsets $first..$(($(wc -l <"$T/expected") + first - 1))"
}
OFMT='%o\t%k\t%s\n'

produce_phase a $NA
sleep 1.2                    # a gap between the phases' timestamps
ts=$(date +%s%3N)            # the second phase starts at or after this
sleep 0.1
produce_phase b $NB

kc -C -t "$OT" -p 0 -e -o beginning -f "$OFMT" >"$T/o-begin" 2>/dev/null || sb_fail "kcat -o beginning failed"
expect_from "-o beginning" 0 "$T/o-begin"
kc -C -t "$OT" -p 0 -e -o 1234 -f "$OFMT" >"$T/o-abs" 2>/dev/null || sb_fail "kcat -o 1234 failed"
expect_from "-o 1234 (absolute)" 1234 "$T/o-abs"
kc -C -t "$OT" -p 0 -e -o -10 -f "$OFMT" >"$T/o-last" 2>/dev/null || sb_fail "kcat -o -10 failed"
expect_from "-o -10 (the last ten)" $((NA + NB - 10)) "$T/o-last"
kc -C -t "$OT" -p 0 -e -o "s@$ts" -f "$OFMT" >"$T/o-ts" 2>/dev/null || sb_fail "kcat -o s@$ts failed"
expect_from "-o s@<second phase's start> (timestamp)" $NA "$T/o-ts"
kc -C -t "$OT" -p 0 -e -o "s@$(($(date +%s%3N) + 3600000))" -f "$OFMT" >"$T/o-future" 2>/dev/null ||
    sb_fail "kcat -o s@<an hour ahead> failed"
[[ ! -s $T/o-future ]] || sb_fail "-o s@<an hour ahead> returned messages"
echo "ok: -o s@<an hour ahead>: nothing"

# The end: a consumer started at the end gets nothing old and exactly what comes after.
kc -C -t "$OT" -p 0 -o end -c "$NC" -f "$OFMT" >"$T/o-end" 2>"$T/o-end.err" &
end_pid=$!
deadline=$((SECONDS + 30))
until grep -q "Reached end of topic" "$T/o-end.err"; do
    ((SECONDS < deadline)) || sb_fail "kcat -o end never reached the end of the partition"
    kill -0 "$end_pid" 2>/dev/null || { cat "$T/o-end.err" >&2; sb_fail "kcat -o end exited early"; }
    sleep 0.05
done
[[ ! -s $T/o-end ]] || sb_fail "kcat -o end returned old messages: $(head -n 3 "$T/o-end")"
produce_phase c $NC
wait "$end_pid" || sb_fail "kcat -o end -c $NC failed (or timed out)"
expect_from "-o end, then $NC new messages" $((NA + NB)) "$T/o-end" c

# ---- 3. kcat -L ----
kc -L >"$T/list" 2>&1 || { cat "$T/list" >&2; sb_fail "kcat -L failed"; }
for codec in "${CODECS[@]}"; do
    grep -q "topic \"kcat-$codec\" with $PARTS partitions" "$T/list" ||
        { cat "$T/list" >&2; sb_fail "kcat -L does not list kcat-$codec with $PARTS partitions"; }
done
grep -q "topic \"$OT\" with $PARTS partitions" "$T/list" || sb_fail "kcat -L does not list $OT"
grep -q "broker .* at 127.0.0.1:${B##*:}" "$T/list" || sb_fail "kcat -L does not name our broker"
ntopics=$(grep -c '^  topic "' "$T/list")
[[ $ntopics -eq $((${#CODECS[@]} + 1)) ]] || { cat "$T/list" >&2; sb_fail "kcat -L lists $ntopics topics, expected $((${#CODECS[@]} + 1))"; }
kc -L -t kcat-zstd >"$T/list1" 2>&1 || sb_fail "kcat -L -t failed"
grep -q "topic \"kcat-zstd\" with $PARTS partitions" "$T/list1" || sb_fail "kcat -L -t kcat-zstd"
echo "ok: kcat -L lists the $ntopics topics with their partitions"

sb_stop
echo PASS
