#!/usr/bin/env bash
# demo-story.sh - the branchsync story with real processes on temporary
# files: a district server, two village branches and a district laptop that
# work offline, sync, see a conflict, the district's report, a roster from
# Excel, a USB bundle from a branch without a link, and an audit.
# Run by scripts/demo.sh after the build; BUILD=dir selects the build.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
bs="$PWD/$build/client/branchsync"
bsd="$PWD/$build/server/branchsyncd"
work=$(mktemp -d /tmp/branchsync-demo.XXXXXX)
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
export BRANCHSYNC_PASSPHRASE="demo passphrase 示例"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s#$work#\$DEMO#g; s#$PWD/$build/[a-z]*/##g"; "$@"; }

start_server() {
	rm -f "$work/port"
	"$bsd" serve --data "$work/district" --listen 127.0.0.1:0 \
		--port-file "$work/port" --quiet &
	server_pid=$!
	for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
	url="http://127.0.0.1:$(cat "$work/port")"
}

stop_server() {
	kill "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

say "1. The district office sets up its server"
run "$bsd" init --data "$work/district" --district "青山区团委" --no-passphrase >/dev/null
run "$bsd" branch add --data "$work/district" --id xiaohe --name "小河村团支部" --kind village
run "$bsd" branch add --data "$work/district" --id dashan --name "大山村团支部" --kind village
start_server
echo "server listening on $url"

say "2. Each PC makes its own key and enrolls with a one-time token"
for dev in xiaohe dashan; do
	tok=$("$bsd" token --data "$work/district" --role branch --branch "$dev")
	run "$bs" init --db "$work/$dev.db" --name "$dev PC" >/dev/null
	run "$bs" enroll --db "$work/$dev.db" --server "$url" --token "$tok" 2>/dev/null
done
tok=$("$bsd" token --data "$work/district" --role district)
run "$bs" init --db "$work/office.db" --name "district laptop" >/dev/null
run "$bs" enroll --db "$work/office.db" --server "$url" --token "$tok" 2>/dev/null

say "3. Xiaohe records members offline, then syncs"
m1=$(run "$bs" put --db "$work/xiaohe.db" members name=张小红 gender=女 \
	birth_date=2001-05-04 phone=13800001234 status=active occupation=种植户 | tail -1)
echo "$m1"
run "$bs" put --db "$work/xiaohe.db" needs member_id="$m1" category=training \
	detail="电商培训" >/dev/null
run "$bs" put --db "$work/xiaohe.db" activities title="三下乡义诊" held_on=2026-07-15 \
	participants=35 >/dev/null
run "$bs" status --db "$work/xiaohe.db" | grep -E "pending|enrolled" || true
run "$bs" sync --db "$work/xiaohe.db"
run "$bs" sync --db "$work/office.db"

say "4. Offline on both sides, the office and the branch edit the same member"
run "$bs" put --db "$work/xiaohe.db" members --id "$m1" status=away away_city=深圳 >/dev/null
run "$bs" put --db "$work/office.db" members --id "$m1" status=transferred >/dev/null
run "$bs" sync --db "$work/xiaohe.db"
run "$bs" sync --db "$work/office.db"
run "$bs" sync --db "$work/xiaohe.db"
run "$bs" conflicts --db "$work/office.db"
run "$bs" get --db "$work/xiaohe.db" members "$m1"

say "5. Dashan imports its roster, saved from Excel in GB18030"
cat >"$work/roster-utf8.csv" <<'CSV'
name,gender,birth_date,status,away_city
李四,男,1999-11-02,away,"广州, 天河"
王芳,女,2003-01-20,active,
赵强,男,2000-08-08,away,杭州
CSV
iconv -f UTF-8 -t GB18030 "$work/roster-utf8.csv" >"$work/roster.csv"
run "$bs" import-csv --db "$work/dashan.db" members "$work/roster.csv"
printf 'name,birth_date\n孙丽,2002-02-30\n' >"$work/bad.csv"
run "$bs" import-csv --db "$work/dashan.db" members "$work/bad.csv" || echo "(exit $?: refused, nothing applied)"

if "$bs" --help | grep -q '  bundle '; then
	say "6. Dashan has no link: its changes travel on a USB stick"
	run "$bs" bundle export --db "$work/dashan.db" --out "$work/usb-dashan.bundle"
	run "$bs" bundle import --db "$work/office.db" "$work/usb-dashan.bundle"
	run "$bs" sync --db "$work/office.db"
	echo "(days later Dashan gets a link: its change set is already at the district)"
	run "$bs" sync --db "$work/dashan.db" --json
else
	say "6. Dashan syncs (bundles are not in this build)"
	run "$bs" sync --db "$work/dashan.db"
fi

say "7. The district's figures"
run "$bsd" report --data "$work/district"

say "8. An auditor checks the whole log without trusting the server"
stop_server
run "$bsd" export-log --data "$work/district" --out "$work/district.log"
if "$bs" --help | grep -q '  audit '; then
	run "$bs" audit --log "$work/district.log"
else
	echo "(the audit command is not in this build)"
fi
echo
echo "demo finished; everything above ran on temporary files under /tmp"
