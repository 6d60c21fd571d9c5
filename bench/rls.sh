#!/usr/bin/env bash
# PostgreSQL 15 row-level security against Strata's lists: the same generated organisation,
# the same readers, the same questions (first page of 50 in a stable order, exact count).
# Usage: bench/rls.sh [records] [runs]. Installs PostgreSQL 15 from Debian when missing.
# STRATA_SKIP_LIST=1 leaves out Strata's own table at the end (at 10M it takes as long again).
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-100000}
runs=${2:-20}
pgbin=/usr/lib/postgresql/15/bin
[ -x "$pgbin/initdb" ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15; }
# STRATA_BIN=path uses a strata binary already built.
[ -n "${STRATA_BIN:-}" ] || cargo build --release -q -p strata-cli
strata_bin=${STRATA_BIN:-./target/release/strata}
dir=$(mktemp -d)
chmod 755 "$dir"
$strata_bin bench export --records "$records" --dir "$dir/csv" > "$dir/strata-counts.txt"
chmod -R a+r "$dir/csv"
port=$((40000 + RANDOM % 20000))
mkdir "$dir/data" && chown postgres "$dir/data" "$dir"
su postgres -c "$pgbin/initdb -D $dir/data -A trust -U postgres" >/dev/null
su postgres -c "$pgbin/pg_ctl -D $dir/data -o '-p $port -k $dir -c shared_buffers=1GB -c work_mem=64MB' -l $dir/pg.log -w start" >/dev/null
trap 'su postgres -c "$pgbin/pg_ctl -D $dir/data -m fast stop" >/dev/null 2>&1; rm -rf "$dir"' EXIT
psql=(psql -h "$dir" -p "$port" -U postgres -q -v ON_ERROR_STOP=1)
"${psql[@]}" <<SQL
create table unit_closure (ancestor text, descendant text, primary key (ancestor, descendant));
create table grants (username text, depth text, anchor text);
create table accounts (id text primary key, seq bigint not null, owner text, unit text, name text, city text, revenue bigint);
create table shares (record text, username text);
\copy unit_closure from '$dir/csv/unit_closure.csv' csv
\copy grants from '$dir/csv/grants.csv' csv
\copy accounts from '$dir/csv/accounts.csv' csv
\copy shares from '$dir/csv/shares.csv' csv
create index on accounts (seq);
create index on accounts (unit, seq);
create index on accounts (owner, seq);
create index on shares (username, record);
create index on shares (record, username);
create index on grants (username, depth, anchor);
create index on unit_closure (descendant, ancestor);
analyze;
create role reader;
grant select on all tables in schema public to reader;
alter table accounts enable row level security;
create policy read_accounts on accounts for select to reader using (
  owner = current_setting('strata.reader')
  or exists (select 1 from grants g where g.username = current_setting('strata.reader') and (
       g.depth = 'organization'
    or (g.depth = 'business_unit' and g.anchor = accounts.unit)
    or (g.depth = 'parent_child' and exists (
          select 1 from unit_closure c where c.ancestor = g.anchor and c.descendant = accounts.unit))))
  or exists (select 1 from shares s where s.record = accounts.id and s.username = current_setting('strata.reader')));
SQL
stats() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; p=a[int(NR*0.99+0.999)]; printf "%.2f | %.2f", m, p}'; }
timed() { # reader, query
  { echo "set role reader;"; echo "set strata.reader = '$1';"; echo '\timing on'
    for _ in $(seq "$runs"); do echo "$2;"; done; } \
    | "${psql[@]}" -A -t 2>&1 | awk '/^Time:/ {print $2}' | stats
}
echo "PostgreSQL 15 row-level security, $records generated records ($runs runs each; milliseconds)."
echo "Differential gate: each reader's readable count must be the same in Strata and PostgreSQL."
echo "| reader | readable (Strata) | readable (RLS) | first page p50 | p99 | count p50 | p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for reader in reader_user reader_unit reader_deep reader_org reader_sharee; do
  strata=$(awk -v r="$reader" '$1 == r {print $2}' "$dir/strata-counts.txt")
  rls=$( { echo "set role reader;"; echo "set strata.reader = '$reader';"; echo "select count(*) from accounts;"; } | "${psql[@]}" -A -t)
  if [ "$strata" != "$rls" ]; then
    echo "differential gate failed for $reader: Strata reads $strata accounts, RLS $rls" >&2
    exit 1
  fi
  first=$(timed "$reader" "select id from accounts order by seq limit 50")
  count=$(timed "$reader" "select count(*) from accounts")
  echo "| $reader | $strata | $rls | $first | $count |"
done
[ -n "${STRATA_SKIP_LIST:-}" ] && exit 0
echo
echo "Strata on the same organisation (first page and count per reader):"
$strata_bin bench list --records "$records" --runs "$runs" | grep -E '^\||^record index|^generated'
