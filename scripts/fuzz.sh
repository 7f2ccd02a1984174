#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets with clang and runs each of them.
#   scripts/fuzz.sh            60 s per target
#   scripts/fuzz.sh --smoke    10 s per target (what CI runs)
#   scripts/fuzz.sh SECONDS    that long per target
# Corpora grow in build-fuzz/corpus/<target> (seeded from fuzz/corpus/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

secs=60
case "${1:-}" in
--smoke) secs=10 ;;
'') ;;
*) secs=$1 ;;
esac

if [ ! -d build-fuzz ]; then
	CC=clang meson setup build-fuzz -Dfuzz=true -Db_lundef=false \
		-Dbuildtype=debugoptimized >/dev/null
fi
ninja -C build-fuzz >/dev/null

for exe in build-fuzz/fuzz/fuzz_*; do
	[ -f "$exe" ] && [ -x "$exe" ] || continue
	t=${exe##*/fuzz_}
	corpus=build-fuzz/corpus/$t
	mkdir -p "$corpus"
	[ -d "fuzz/corpus/$t" ] && cp -n fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
	echo "fuzz $t: ${secs}s" >&2
	"$exe" -max_total_time="$secs" -print_final_stats=1 "$corpus" 2>build-fuzz/$t.log ||
		{ tail -40 build-fuzz/$t.log >&2; echo "fuzz $t: FAILED" >&2; exit 1; }
	grep -E 'stat::number_of_executed_units' build-fuzz/$t.log | sed "s/^/fuzz $t: /" >&2
done
echo "fuzz: all targets ran clean for ${secs}s each" >&2
