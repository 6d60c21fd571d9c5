#!/usr/bin/env bash
# HTTP list benchmark on loopback: the generated organisation stored in a file, served by
# `strata serve`, and wrk asking for pages of readable accounts as each kind of reader.
# Usage: bench/lists.sh [records] [seconds]   (installs wrk from Debian when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-1000000}
secs=${2:-5}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --release -q -p strata-cli
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
strata=./target/release/strata
$strata bench generate --records "$records" --db "$dir/bench.db" --org bench
readers=(reader_user reader_unit reader_deep reader_org reader_sharee reader_manager)
start=$(date +%s%N)
$strata serve --db "$dir/bench.db" --listen "127.0.0.1:$port" --root-key bench-root >"$dir/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
  kill -0 $pid 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
  sleep 0.2
done
echo "server ready in $(( ($(date +%s%N) - start) / 1000000 )) ms (log replay and index rebuild):"
grep -iE 'index|replay|loaded' "$dir/serve.log" | sed 's/^/  /' | head -5
# An API key per reader, made through the server with the root key.
declare -A keys
for r in "${readers[@]}"; do
  keys[$r]=$(curl -sf -H "Authorization: Bearer bench-root" -H 'Content-Type: application/json' \
    "http://127.0.0.1:$port/api/v1/orgs/bench/api-keys" -d "{\"user\":\"$r\"}" | sed -E 's/.*"key":"([^"]+)".*/\1/')
done
base="/api/v1/orgs/bench/tables/account/records"
# The three questions, URL-encoded: a first page, a first page with an exact count, and the
# accounts in Oslo ordered by name.
declare -A queries=(
  [first_page]="$base?limit=50"
  [count]="$base?limit=50&count=true"
  [oslo_by_name]="$base?limit=50&filter=city%20eq%20%27Oslo%27&orderby=name"
)
echo
echo "$records generated records; wrk, 1 thread, 8 connections, ${secs}s per row; milliseconds"
echo "| reader | question | requests/s | p50 | p99 |"
echo "|---|---|---:|---:|---:|"
for r in "${readers[@]}"; do
  for q in first_page count oslo_by_name; do
    out=$(wrk -t1 -c8 -d"${secs}s" --latency -H "Authorization: Bearer ${keys[$r]}" \
      "http://127.0.0.1:$port${queries[$q]}")
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${keys[$r]}" "http://127.0.0.1:$port${queries[$q]}")
    [ "$code" = 200 ] || { echo "$r $q: HTTP $code" >&2; exit 1; }
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    ms() { awk -v p="$1" '$1 == p {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.2f", v}' <<<"$out"; }
    echo "| $r | $q | $rps | $(ms 50%) | $(ms 99%) |"
  done
done
