#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds a program outside the tree against it,
# with pkg-config and with CMake's find_package, and runs it.
# Usage: test_install.sh BUILD_DIR CONSUMER_SOURCE_DIR C_COMPILER
set -euo pipefail
build=$1 src=$2 cc=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(find "$prefix" -name shardbus.pc | head -n1)
[ -n "$pc" ] || { echo "test_install: no shardbus.pc installed" >&2; exit 1; }
[ -f "$prefix/include/shardbus.h" ] || { echo "test_install: shardbus.h not installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")

# pkg-config, shared library
export PKG_CONFIG_PATH=$(dirname "$pc")
"$cc" -o "$work/pc_consumer" "$src/main.c" $(pkg-config --cflags --libs shardbus)
LD_LIBRARY_PATH=$libdir "$work/pc_consumer"
# pkg-config, static library
"$cc" -o "$work/pc_consumer_static" "$src/main.c" $(pkg-config --cflags shardbus) \
  "$libdir/libshardbus.a" $(pkg-config --libs --static shardbus | sed 's/-lshardbus\b//')
"$work/pc_consumer_static"

# find_package, shared and static
cmake -S "$src" -B "$work/cmake_build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build "$work/cmake_build" >/dev/null
LD_LIBRARY_PATH=$libdir "$work/cmake_build/consumer_shared"
"$work/cmake_build/consumer_static"
echo "test_install: pkg-config and find_package both work"
