#!/bin/sh
# test_cli.sh SHARDBUSD - the daemon's command line as a user meets it: --help, --version,
# usage errors (exit 2, one line naming the flag or file:line:key), flags overriding the config
# file, --check-config, and a data dir locked by another process (exit 1, a clear message, log
# lines in the documented format). Starts no server. Run from a scratch folder.
set -u
bin=$1
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run ARGS...: $rc, $out (stdout), $err (stderr)
run() {
  "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

run --help
[ $rc -eq 0 ] || fail "--help exit $rc"
echo "$out" | grep -q '^usage: shardbusd' || fail "--help: no usage line"
echo "$out" | grep -q -- '--metrics-listen' || fail "--help lacks --metrics-listen"

run --version
[ $rc -eq 0 ] || fail "--version exit $rc"
echo "$out" | grep -Eqx 'shardbusd [0-9]+\.[0-9]+\.[0-9]+' || fail "--version printed '$out'"

# usage_error ARGS... -- NEEDLE: exit 2, one line on stderr containing NEEDLE, nothing on stdout.
usage_error() {
  needle=$(eval echo "\${$#}")
  args=""
  while [ $# -gt 1 ]; do args="$args '$1'"; shift; done
  eval run "$args"
  [ $rc -eq 2 ] || fail "$args: exit $rc, expected 2"
  [ -z "$out" ] || fail "$args: printed to stdout: $out"
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "$args: not one line: $err"
  case $err in *"$needle"*) ;; *) fail "$args: '$err' lacks '$needle'" ;; esac
}
usage_error --bogus "'--bogus'"
usage_error --shards lots "--shards: bad value 'lots'"
usage_error --durability always "--durability: bad value 'always'"
usage_error --listen 9092 "--listen: bad value '9092'"
usage_error --auto-create-topics maybe "--auto-create-topics"
usage_error --data-dir "'--data-dir' needs a value"
usage_error extra "'extra'"

printf '[shardbusd]\nshards = 2\ndurability = none\n\nsegment_bytes = 4096\n' >"$tmp/bad.conf"
usage_error --config "$tmp/bad.conf" "$tmp/bad.conf:5: unknown key 'segment_bytes'"
printf 'retention-ms = soon\n' >"$tmp/bad2.conf"
usage_error --config "$tmp/bad2.conf" "$tmp/bad2.conf:1: key 'retention-ms': bad value 'soon'"
usage_error --config "$tmp/missing.conf" "cannot read '$tmp/missing.conf'"

# Flags override the file; --check-config prints the result and exits 0.
printf '[shardbusd]\nshards = 2\ndurability = none\nlisten = 0.0.0.0:9093\n' >"$tmp/good.conf"
run --config "$tmp/good.conf" --shards 3 --check-config
[ $rc -eq 0 ] || fail "--check-config exit $rc: $err"
echo "$out" | grep -qx 'shards = 3' || fail "flag did not override the file: $out"
echo "$out" | grep -qx 'durability = none' || fail "file setting lost: $out"
echo "$out" | grep -qx 'listen = 0.0.0.0:9093' || fail "file listen lost: $out"
# ... and its output is a config file giving the same settings.
echo "$out" >"$tmp/round.conf"
first=$out
run --config "$tmp/round.conf" --check-config
{ [ $rc -eq 0 ] && [ "$out" = "$first" ]; } || fail "--check-config output does not read back"

# A data dir another process holds (the bus's flock on DIR/.lock): exit 1 and the message.
if command -v flock >/dev/null; then
  mkdir "$tmp/data"
  # This shell holds the lock on fd 9; the daemon opens the file anew, so its flock conflicts.
  exec 9>"$tmp/data/.lock"
  flock -n 9 || fail "could not take the lock for the test"
  run --data-dir "$tmp/data" --listen 127.0.0.1:1 --metrics-listen off
  exec 9>&-
  [ $rc -eq 1 ] || fail "locked data dir: exit $rc"
  echo "$err" | grep -q "ERROR data dir $tmp/data is in use by another shardbus process" ||
    fail "locked data dir: message missing: $err"
  # Every line: 2026-11-26T20:01:02.123Z shardbusd[PID] LEVEL message
  bad_lines=$(echo "$err" |
    grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z shardbusd\[[0-9]+\] (INFO|WARN|ERROR) .')
  [ -z "$bad_lines" ] || fail "log lines not in the format: $bad_lines"
  echo "$err" | grep -q "INFO shardbusd [0-9.]* starting: listen 127.0.0.1:1, data dir $tmp/data" ||
    fail "no startup line: $err"
else
  echo "test_cli: no flock(1), locked-data-dir part skipped"
fi

if [ $fails -ne 0 ]; then
  echo "test_cli: $fails failed" >&2
  exit 1
fi
echo "test_cli: ok"
