#!/usr/bin/env bash
# Sustained load on `whereis-bot serve`: GET /api/v1/locate against the simulated office of the demo
# (4 sources, 3 username variants each → 12 requests per lookup), an audit row and a rate-limit
# reservation per lookup on SQLite. Prints wrk's throughput and latency distribution and the
# server's resident memory every 5 s; the numbers go to BENCHMARKS.md.
#
#   bash bench/load.sh [SECONDS] [CONNECTIONS] [locate|roster]
#                                   (defaults: 30 s, 64 connections, locate; wrk -t2)
#
# `roster` asks for the page listing everyone in one of the demo's five buildings instead
# (/buildings/{name}: every source's list API, the opt-outs, an audit row per person listed).
#
# Needs wrk (Debian: apt install wrk). Builds the release binary unless WHEREIS_BIN names one.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
connections=${2:-64}
target=${3:-locate}
case "$target" in locate | roster) ;; *) echo "unknown target $target (locate or roster)" >&2; exit 2 ;; esac
sim_port=${SIM_PORT:-18400}
api_port=${API_PORT:-18480}

if [ -z "${WHEREIS_BIN:-}" ]; then
    cargo build --release -p whereis >&2
    WHEREIS_BIN=target/release/whereis-bot
fi
command -v wrk >/dev/null || { echo "wrk not found (apt install wrk)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$WHEREIS_BIN" sim --scenario crates/sim/scenarios/demo.toml --listen "127.0.0.1:$sim_port" \
    >"$work/sim.log" 2>&1 &
pids+=($!)

source_entry() { # name kind port username password
    printf '\n[[sources]]\nname = "%s"\nkind = "%s"\nurl = "http://127.0.0.1:%s"\nusername = "%s"\npassword_file = "%s.password"\n' \
        "$1" "$2" "$3" "$4" "$1"
    printf '%s' "$5" >"$work/$1.password"
}
{
    printf '[server]\nlisten = "127.0.0.1:%s"\n\n' "$api_port"
    printf '[lookup]\nusername_variants = ["{user}", "CORP\\\\{user}", "corp\\\\{user}"]\n\n'
    # Requesters rotate through 1,000 addresses, each well within its allowance: every lookup
    # still reserves one and writes its audit row.
    printf '[privacy]\nrate_limit_per_hour = 1000000\n\n'
    # wrk plays the authenticating proxy: the requester's email in a header, from loopback.
    printf '[web]\nauth = "proxy"\nheader = "X-Whereis-Requester"\ntrusted_proxies = ["127.0.0.1"]\nbuilding_roster = true\n'
    source_entry cmx-north cmx $((sim_port + 0)) api sim-north-password
    source_entry cmx-south cmx $((sim_port + 1)) api sim-south-password
    source_entry cmx-legacy cmx-v2 $((sim_port + 2)) admin sim-legacy-password
    source_entry mse-legacy mse $((sim_port + 3)) mse-api sim-mse-password
} >"$work/whereis.toml"

WHEREIS_LOG=warn "$WHEREIS_BIN" serve --config "$work/whereis.toml" >"$work/serve.log" 2>&1 &
server=$!
pids+=($server)
base="http://127.0.0.1:$api_port"
for _ in $(seq 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS -H 'X-Whereis-Requester: warmup@example.com' "$base/api/v1/locate?q=jdoe" >/dev/null

if [ "$target" = roster ]; then
    cat >"$work/rotate.lua" <<'LUA'
-- Each request from one of 1,000 requesters, listing one of the five buildings.
local paths = {}
for b, name in ipairs({"Building%205", "Building%209", "Innovation%20Centre", "Tower%20A", "Annex"}) do
  paths[b] = "/buildings/" .. name
end
local n = 0
request = function()
  n = n + 1
  local headers = {["X-Whereis-Requester"] = "user" .. (n % 1000) .. "@example.com"}
  return wrk.format("GET", paths[n % #paths + 1], headers)
end
LUA
else
    cat >"$work/rotate.lua" <<'LUA'
-- Each request from one of 1,000 requesters, asking for one of the office's seven people.
local people = {"jdoe", "bsmith", "akumar", "mgarcia", "lchen", "oolsen", "tnguyen"}
local n = 0
request = function()
  n = n + 1
  local headers = {["X-Whereis-Requester"] = "user" .. (n % 1000) .. "@example.com"}
  return wrk.format("GET", "/api/v1/locate?q=" .. people[n % #people + 1], headers)
end
LUA
fi

rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
echo "resident memory before: $(rss) KiB"
(
    for _ in $(seq $((seconds / 5))); do
        sleep 5
        echo "resident memory: $(rss) KiB"
    done
) &
sampler=$!
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/rotate.lua" "$base"
wait "$sampler" 2>/dev/null || true
echo "resident memory after: $(rss) KiB"
echo "audit rows: $(curl -fsS "$base/metrics" | awk '/^whereis_lookups_total/ {s += $NF} END {print s}') lookups counted"
