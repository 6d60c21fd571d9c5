#!/usr/bin/env bash
# Several nodes (issue 5): write throughput (records/s, shares/s) on SQLite and on PostgreSQL
# (one node; two nodes taking writes to one organisation together), and the lag from a write
# acknowledged on node A to a read carrying its revision answered on node B (p50/p99), idle and
# with 4 writers busy. Real `strata serve` processes over loopback TCP, one connection per
# request, single-operation writes.
#
#   bench/nodes.sh                      # starts a throwaway PostgreSQL 15 (as .ci/run does)
#   STRATA_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5432/postgres bench/nodes.sh
#
# Knobs: STRATA_BENCH_WRITES (4000 per figure), STRATA_BENCH_CLIENTS (16),
# STRATA_BENCH_LAG_SAMPLES (1000). The throwaway server runs with fsync=off and
# synchronous_commit=off, like CI's: the figures measure Strata, not the disk.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${STRATA_TEST_POSTGRES:-}" ]; then
  PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort | tail -1)}
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
    echo "no PostgreSQL found: install postgresql-15 or set STRATA_TEST_POSTGRES" >&2
    exit 1
  fi
  as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
  }
  PG_DIR=$(mktemp -d /tmp/strata-bench-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PG_DIR"; fi
  stop_postgres() {
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  }
  trap stop_postgres EXIT
  as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >/dev/null
  PG_PORT=$((20000 + RANDOM % 40000))
  as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 30 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null
  export STRATA_TEST_POSTGRES="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
fi

echo "== cores: $(nproc); PostgreSQL: ${STRATA_TEST_POSTGRES}"
export STRATA_BENCH_WRITES=${STRATA_BENCH_WRITES:-4000} STRATA_BENCH_CLIENTS=${STRATA_BENCH_CLIENTS:-16} \
  STRATA_BENCH_LAG_SAMPLES=${STRATA_BENCH_LAG_SAMPLES:-1000}
cargo test --release -q -p strata-cli --test nodes -- --exact writes_from_many_clients_on_one_and_two_nodes --nocapture 2>&1 \
  | grep -E "^(SQLite|PostgreSQL|write on|[0-9]+ single)"
