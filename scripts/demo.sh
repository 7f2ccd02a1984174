#!/usr/bin/env bash
# demo.sh - installs what is missing, builds, and runs the branchsync demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build >/dev/null
exec scripts/demo-story.sh
