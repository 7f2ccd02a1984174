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
for b in capture ingest audit sync_wire sync_initial sync_noop sync_memory \
	sync_cut \
	load; do
	echo "bench: $b" >&2
	"build-bench/bench/bench_$b" "$work" >>"$lines"
done

# PouchDB, the baseline of the sync figures, installed here (not committed)
echo "bench: pouchdb" >&2
pouch=bench/pouchdb
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
	echo "bench: node or npm missing: the PouchDB baselines are null" >&2
elif ! (cd "$pouch" && [ -d node_modules/pouchdb-adapter-memory ] ||
	timeout 300 npm install --no-package-lock --no-audit --no-fund \
		--loglevel=error >&2); then
	echo "bench: npm unreachable: the PouchDB baselines are null" >&2
else
	node "$pouch/bench.js" "$work" >>"$lines"
fi

python3 - "$lines" <<'PY'
import json, os, platform, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
# branchsync's figures beside PouchDB's, measured above in the same run
pouch = {r["pouchdb"]: r["value"] for r in rows if "pouchdb" in r}
mine = {r["figure"]: r["value"] for r in rows}
pairs = [  # figure, branchsync's figure, PouchDB's key, goal, test(value, base)
    ("initial pull, 20,000-member branch: time vs PouchDB",
     "initial sync, fresh device of a 20,000-member branch: time", "pull_s",
     ">= 30x faster", lambda v, b: b >= 30 * v),
    ("initial pull, 20,000-member branch: bytes vs PouchDB",
     "initial sync, fresh device of a 20,000-member branch: wire bytes",
     "pull_bytes", ">= 5x fewer bytes", lambda v, b: b >= 5 * v),
    ("1 one-cell edit synced: bytes vs PouchDB push",
     "wire bytes, 1 one-cell edit synced (push+pull, HTTP incl.)",
     "push1_bytes", "<= 1 KB", lambda v, b: v <= 1024),
    ("1,000 edits, one command each: bytes vs PouchDB push",
     "wire bytes, 1,000 one-cell edits by 1,000 puts, 1 sync",
     "push1000_bytes", ">= 5x fewer", lambda v, b: b >= 5 * v),
    ("1,000 edits in one import: bytes vs PouchDB push",
     "wire bytes, 1,000 one-cell edits by 1 import, 1 sync",
     "push1000_bytes", ">= 20x fewer", lambda v, b: b >= 20 * v),
    ("no-op sync: bytes vs PouchDB no-op sync", "no-op sync: wire bytes",
     "noop_bytes", "<= 1 KB", lambda v, b: v <= 1024),
]
for name, fig, key, goal, test in pairs:
    v = mine.get(fig)
    if v is None:
        continue
    b = pouch.get(key)
    rows.append({"figure": name, "value": v, "unit": "s" if key == "pull_s" else "B",
                 "baseline": b,
                 "baseline_name": "PouchDB 9 + express-pouchdb 4" if b is not None
                 else "PouchDB (npm unreachable)",
                 "ratio": round(v / b, 4) if b else None, "goal": goal,
                 "ok": test(v, b) if b is not None else None})
def fmt(v):
    if v is None: return "-"
    if isinstance(v, float) and v < 100: return f"{v:.3f}"
    return f"{v:,.0f}"
w = max(len(r["figure"]) for r in rows)
print(f"{'figure':<{w}}  {'value':>12}  {'baseline':>12}  {'ratio':>7}  {'goal':<32} ok")
for r in rows:
    unit = r.get("unit", "")
    print(f"{r['figure']:<{w}}  {fmt(r['value']):>9} {unit:<3}  {fmt(r['baseline']):>12}  "
          f"{fmt(r['ratio']):>7}  {r['goal']:<32} "
          f"{'n/a' if r['ok'] is None else 'yes' if r['ok'] else 'NO'}")
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
