#!/usr/bin/env bash
# Memory of `whereis-bot serve` holding Cisco Spaces streams of many devices: simulated tenants of
# 5,000 devices each (as many as DEVICES needs; one location update per device per round, a round
# every ROUND seconds — the simulator sends a round as one burst, and a reader that falls too far
# behind is cut and replays, so each tenant stays within its replay window) stream to serve, which
# writes them into the live table (SQLite). The server's resident memory (VmRSS, and the peak
# VmHWM) and the devices held are printed every 5 s for SECONDS. The numbers go to BENCHMARKS.md.
#
#   bash bench/live_memory.sh [DEVICES] [SECONDS] [ROUND]      (defaults: 100000, 90, 20)
#
# Builds the release binary unless WHEREIS_BIN names one. Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

devices=${1:-100000}
seconds=${2:-90}
round=${3:-20}
sim_port=${SIM_PORT:-18500}

if [ -z "${WHEREIS_BIN:-}" ]; then
    cargo build --release -p whereis >&2
    WHEREIS_BIN=target/release/whereis-bot
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

tenants=$(( (devices + 4999) / 5000 ))
python3 - "$devices" "$round" "$tenants" >"$work/scenario.toml" <<'PY'
import sys
devices, round_s, tenants = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for t in range(tenants):
    print(f'[[servers]]\nname = "spaces-{t}"\nkind = "spaces"\nusername = "unused"\npassword = "bench-key"\ninterval_ms = {round_s * 1000}\n')
print('[[campuses]]\nname = "HQ"\n[[campuses.buildings]]\nname = "Building 1"')
for f in range(10):
    print(f'[[campuses.buildings.floors]]\nname = "Level {f}"\nfloor_ref_id = "{1000 + f}"\nwidth = 300.0\nlength = 150.0\nimage = "l{f}.png"')
for i in range(devices):
    mac = ":".join(f"{b:02x}" for b in (0x02, 0, (i >> 16) & 255, (i >> 8) & 255, i & 255, 1))
    print(f'[[people]]\nusername = "u{i}"\ndisplay_name = "User {i}"\n[[people.devices]]\nmac = "{mac}"\n'
          f'identity = "CORP\\\\u{i}"\nservers = ["spaces-{i % tenants}"]\nfloor = "HQ>Building 1>Level {i % 10}"\n'
          f'x = {i % 300}.0\ny = {i % 150}.0')
PY
printf 'bench-key' >"$work/key"
cat >"$work/whereis.toml" <<TOML
[server]
listen = "127.0.0.1:0"
[store]
url = "sqlite://$work/whereis.db"
[web]
auth = "none"
requester = "bench@example.com"
TOML
for ((t = 0; t < tenants; t++)); do
    printf '[[sources]]\nname = "spaces-%d"\nkind = "spaces"\nurl = "http://127.0.0.1:%d"\napi_key_file = "key"\n' \
        "$t" "$((sim_port + t))" >>"$work/whereis.toml"
done

"$WHEREIS_BIN" sim --scenario "$work/scenario.toml" --listen "127.0.0.1:$sim_port" >"$work/sim.log" 2>&1 &
pids+=($!)
until grep -q "Ctrl-C" "$work/sim.log" 2>/dev/null; do sleep 0.5; done
"$WHEREIS_BIN" serve --config "$work/whereis.toml" >"$work/serve.log" 2>&1 &
serve=$!
pids+=($serve)
until grep -q "whereis listening on" "$work/serve.log" 2>/dev/null; do sleep 0.5; done

echo "seconds  rss_mib  peak_mib  devices_held"
for ((t = 0; t <= seconds; t += 5)); do
    rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$serve/status")
    hwm=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$serve/status")
    held=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from device_locations').fetchone()[0])" "$work/whereis.db" 2>/dev/null || echo "?")
    printf '%7d  %7d  %8d  %12s\n' "$t" "$rss" "$hwm" "$held"
    sleep 5
done
