#!/usr/bin/env bash
# bench.sh - builds an optimised branchsync and runs the benchmarks: each
# figure beside a baseline measured in the same run, as one table on stdout
# and as JSON (with machine details) in bench/results.json.
#   scripts/bench.sh            every benchmark
# Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

if [ ! -d build-bench ]; then
	meson setup build-bench -Dbuildtype=release -Db_ndebug=true \
		-Dtest_hooks=false >/dev/null
fi
ninja -C build-bench >/dev/null

work=$(mktemp -d /tmp/bs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
lines="$work/figures.jsonl"
: >"$lines"
# the sync benchmarks run the programs of this build
export BRANCHSYNC_BIN="$PWD/build-bench/client/branchsync" \
	BRANCHSYNCD_BIN="$PWD/build-bench/server/branchsyncd" \
	FAULTPROXY_BIN="$PWD/build-bench/tests/faultproxy"
for b in capture ingest audit sync_wire sync_initial sync_noop sync_memory; do
	echo "bench: $b" >&2
	"build-bench/bench/bench_$b" "$work" >>"$lines"
done

python3 - "$lines" <<'PY'
import json, os, platform, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def fmt(v):
    if v is None: return "-"
    if isinstance(v, float) and v < 100: return f"{v:.3f}"
    return f"{v:,.0f}"
w = max(len(r["figure"]) for r in rows)
print(f"{'figure':<{w}}  {'value':>12}  {'baseline':>12}  {'ratio':>7}  {'goal':<32} ok")
for r in rows:
    unit = r.get("unit", "")
    print(f"{r['figure']:<{w}}  {fmt(r['value']):>9} {unit:<3}  {fmt(r['baseline']):>12}  "
          f"{fmt(r['ratio']):>7}  {r['goal']:<32} {'yes' if r['ok'] else 'NO'}")
cpu = "unknown"
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip(); break
except OSError:
    pass
def version(cmd):
    try: return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except Exception: return "unknown"
out = {"machine": {"cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                   "sqlite": version(["sqlite3", "--version"]),
                   "compiler": version(["cc", "--version"])},
       "figures": rows}
json.dump(out, open("bench/results.json", "w"), indent=2, ensure_ascii=False)
print("\nresults written to bench/results.json", file=sys.stderr)
PY
