#!/usr/bin/env bash
# Checks deploy/whereis.service with `systemd-analyze verify` where systemd is installed; any
# warning (an unknown key, a bad value) fails. ExecStart must name an existing binary, so the unit
# is checked with the given one: bash .ci/systemd.sh target/debug/whereis-bot
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:?the whereis-bot binary to check the unit with}")
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "systemd-analyze not available: the unit is not checked here"
    exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/whereis-bot|$binary|g" deploy/whereis.service >"$dir/whereis.service"
if ! out=$(systemd-analyze verify "$dir/whereis.service" 2>&1) || [ -n "$out" ]; then
    echo "$out" >&2
    echo "deploy/whereis.service: systemd-analyze verify complained" >&2
    exit 1
fi
echo "deploy/whereis.service: verified"
