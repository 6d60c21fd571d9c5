#!/usr/bin/env bash
# HTTP benchmark on loopback: single checks and AuthZEN batch evaluations against the demo.
# Usage: bench/http.sh [seconds]   (installs wrk from Debian when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release -q -p strata-cli
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
admin=bench-admin-key
./target/release/strata demo --db "$dir/demo.db" --listen "127.0.0.1:$port" --admin-key "$admin" >"$dir/demo.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
key=$(curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  "http://127.0.0.1:$port/api/v1/orgs/demo/api-keys" -d '{"user":"rep_east"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
hdr=(-H "Authorization: Bearer $key" -H "Content-Type: application/json")
echo "== single checks, as fast as possible (1 wrk thread, 32 connections, ${secs}s)"
wrk -t1 -c32 -d"${secs}s" --latency "${hdr[@]}" -s bench/check.lua "http://127.0.0.1:$port" | tee "$dir/max.txt"
max=$(awk '/Requests\/sec/ {print int($2)}' "$dir/max.txt")
# About half that load: each connection waits 1 ms between requests, so N connections offer
# at most N*1000/(1 + latency in ms) requests per second; N = max/2000 offers about half.
conns=$(( max / 2000 > 0 ? max / 2000 : 1 ))
echo "== single checks at about half that load (${conns} connections pacing 1 ms each)"
STRATA_DELAY_MS=1 wrk -t1 -c"$conns" -d"${secs}s" --latency "${hdr[@]}" -s bench/check.lua "http://127.0.0.1:$port"
echo "== AuthZEN batch evaluations, 100 decisions per request (1 thread, 8 connections)"
wrk -t1 -c8 -d"${secs}s" --latency "${hdr[@]}" -s bench/evaluations.lua "http://127.0.0.1:$port" | tee "$dir/batch.txt"
batch=$(awk '/Requests\/sec/ {print int($2)}' "$dir/batch.txt")
echo "decisions per second through batch evaluation: $((batch * 100))"
