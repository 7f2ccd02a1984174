#!/usr/bin/env bash
# test.sh - installs what is missing, builds, and runs every test.
#   scripts/test.sh              the default suite (build dir: build/)
#   scripts/test.sh --sanitize   the same under AddressSanitizer + UBSan
#                                (build dir: build-san/)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

dir=build
opts=()
if [ "${1:-}" = --sanitize ]; then
	dir=build-san
	opts=(-Db_sanitize=address,undefined -Db_lundef=false)
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
fi

if [ -d "$dir" ]; then
	meson setup --reconfigure "$dir" "${opts[@]}" >/dev/null
else
	meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir"
meson test -C "$dir" --print-errorlogs --num-processes 2
