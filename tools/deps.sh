# tools/deps.sh - sourced by tools/run and tools/test: install the Debian 12 packages shardbus
# needs, and only those that are missing. Works as root or through sudo.

# Build toolchain and the libraries the design calls for.
SB_BUILD_PACKAGES=(gcc g++ make cmake ninja-build pkg-config
                   liburing-dev libjemalloc-dev libbenchmark-dev libboost-dev libck-dev
                   librdkafka-dev libinih-dev libnats-dev libhiredis-dev
                   zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev)
# Only the test command needs these: the second compiler the code must build cleanly with, and
# its runtime libraries for libFuzzer.
SB_TEST_PACKAGES=(clang libclang-rt-14-dev kcat)

# tools/bench runs these peers and tools beside shardbusd (fio: the disk's fdatasync latency).
SB_BENCH_PACKAGES=(nats-server redis-server jq gnuplot-nox python3 fio)

sb_missing_packages() {
  local pkg
  for pkg in "$@"; do
    if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
      echo "$pkg"
    fi
  done
}

# sb_install_packages PKG...: apt-get install whatever of PKG... is not installed yet.
sb_install_packages() {
  local missing
  missing=$(sb_missing_packages "$@" | tr '\n' ' ')
  [ -n "${missing// /}" ] || return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "$0: need root or sudo to install: $missing" >&2; return 1; }
    sudo=(sudo)
  fi
  echo "$0: installing missing Debian packages: $missing" >&2
  "${sudo[@]}" apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
