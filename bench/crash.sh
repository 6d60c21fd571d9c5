#!/usr/bin/env bash
# The crash checker (issue 15, RELIABILITY.md "Crashes and faults"): `strata bench crash` runs a
# real `strata serve` on a fresh database, sends it a mixed stream of writes from several
# clients (records created, updated and deleted, shares granted and revoked, roles, team
# membership, batches), kills it with SIGKILL at a random moment, restarts it on the same
# database and checks: every acknowledged write is in the log at its revision, every write in
# flight is wholly there or wholly absent, revisions have no gap, the operation log and audit
# chains verify, and the served digest equals a fresh replay of the whole log. CYCLES times on
# SQLite, then on PostgreSQL; a table per store.
#
#   bench/crash.sh [CYCLES]             # 100 by default; PostgreSQL from STRATA_TEST_POSTGRES
#   STRATA_TEST_POSTGRES=postgresql://postgres@127.0.0.1:5433/postgres bench/crash.sh 100
#
# Knobs: STRATA_CRASH_CLIENTS (4), STRATA_CRASH_MIN_MS / STRATA_CRASH_MAX_MS (50 / 1500: the
# kill comes at a random moment in between), STRATA_CRASH_SEED (default: the time, printed),
# STRATA_CRASH_PROFILE (release; `debug` reuses the test build). Without STRATA_TEST_POSTGRES
# the PostgreSQL part is skipped with a note. Exits non-zero when anything is lost,
# half-applied or fails to verify.
set -euo pipefail
cd "$(dirname "$0")/.."

CYCLES=${1:-100}
PROFILE=${STRATA_CRASH_PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release -q -p strata-cli
  BIN=${CARGO_TARGET_DIR:-target}/release/strata
else
  cargo build -q -p strata-cli
  BIN=${CARGO_TARGET_DIR:-target}/debug/strata
fi

ARGS=(--cycles "$CYCLES" --clients "${STRATA_CRASH_CLIENTS:-4}"
  --min-ms "${STRATA_CRASH_MIN_MS:-50}" --max-ms "${STRATA_CRASH_MAX_MS:-1500}")
if [ -n "${STRATA_CRASH_SEED:-}" ]; then ARGS+=(--seed "$STRATA_CRASH_SEED"); fi

echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $PROFILE build"
status=0
"$BIN" bench crash "${ARGS[@]}" || status=1
if [ -n "${STRATA_TEST_POSTGRES:-}" ]; then
  "$BIN" bench crash "${ARGS[@]}" --postgres "$STRATA_TEST_POSTGRES" || status=1
else
  echo "note: PostgreSQL skipped: set STRATA_TEST_POSTGRES to a server (a scratch database is made on it)"
fi
exit $status
