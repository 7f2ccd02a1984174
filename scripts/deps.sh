#!/usr/bin/env bash
# deps.sh - installs the Debian 12 packages branchsync needs, and only those
# that are missing (idempotent). Works as root or through sudo.
#   scripts/deps.sh build    compilers, libraries, meson
#   scripts/deps.sh test     build + Check, clang/libFuzzer, sqlite3 tool
set -euo pipefail

build_pkgs=(gcc pkg-config meson ninja-build libsodium-dev libsqlite3-dev
            libcurl4-openssl-dev libssl-dev libmicrohttpd-dev zlib1g-dev libzstd-dev sqlite3
            ca-certificates)
test_pkgs=(check clang libclang-rt-14-dev openssl python3)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = test ]; then
	want+=("${test_pkgs[@]}")
fi

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
