#!/usr/bin/env bash
# The Web API beside the native API, on the same questions over HTTP (loopback, the demo):
# a list page of 50 accounts, a record read by id, and a user's rights on a record.
# Usage: bench/webapi.sh [seconds]   (installs wrk from Debian when missing)
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
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done
key=$(curl -sf -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  "$base/api/v1/orgs/demo/api-keys" -d '{"user":"mgr_na"}' | sed -E 's/.*"key":"([^"]+)".*/\1/')
auth="Authorization: Bearer $key"
guid=$(curl -sf -H "$auth" "$base/api/v1/orgs/demo/records/acc-0001" | sed -E 's/.*"guid":"([^"]+)".*/\1/')
user=$(curl -sf -H "$auth" "$base/api/data/v9.2/WhoAmI()" | sed -E 's/.*"UserId":"([^"]+)".*/\1/')
pairs=(
  "list page (50)|$base/api/v1/orgs/demo/tables/account/records?limit=50&select=name|$base/api/data/v9.2/accounts?\$top=50&\$select=name"
  "retrieve by id|$base/api/v1/orgs/demo/records/acc-0001|$base/api/data/v9.2/accounts($guid)"
  "rights on a record|$base/api/v1/orgs/demo/records/acc-0001/access|$base/api/data/v9.2/systemusers($user)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)?@p1=%7B%22@odata.id%22:%22accounts($guid)%22%7D"
)
run() { wrk -t1 -c16 -d"${secs}s" --latency -H "$auth" "$1" >"$dir/out.txt"; 
  rps=$(awk '/Requests\/sec/ {print $2}' "$dir/out.txt")
  p50=$(awk '$1=="50%" {print $2}' "$dir/out.txt"); p99=$(awk '$1=="99%" {print $2}' "$dir/out.txt")
  non=$(awk '/Non-2xx/ {print $5}' "$dir/out.txt"); echo "$rps $p50 $p99 ${non:-0}"; }
printf '%-20s | %-34s | %-34s | %s\n' "question" "native: req/s  p50  p99" "Web API: req/s  p50  p99" "Web API / native"
for pair in "${pairs[@]}"; do
  IFS='|' read -r name native web <<<"$pair"
  read -r nr n50 n99 nbad <<<"$(run "$native")"
  read -r wr w50 w99 wbad <<<"$(run "$web")"
  [ "$nbad$wbad" = "00" ] || { echo "errors: native $nbad, Web API $wbad" >&2; exit 1; }
  printf '%-20s | %10s %8s %8s       | %10s %8s %8s       | %.2f\n' "$name" "$nr" "$n50" "$n99" "$wr" "$w50" "$w99" "$(echo "$wr / $nr" | bc -l)"
done
