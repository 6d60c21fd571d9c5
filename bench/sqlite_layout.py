#!/usr/bin/env python3
"""What the SQLite store's table layout costs a commit, measured on SQLite alone.

Usage: python3 bench/sqlite_layout.py [COMMITS] [RUNS]

Commits of G single creates (an operation row and an audit row each, the organisation's
row updated, the audit indexed in batches of 1,024 as D142 does) in WAL mode with
`synchronous=FULL`, as `crates/store/src/sqlite.rs` writes them, for three layouts:

- `shared`: today's tables, every organisation in one `operations` table (WITHOUT ROWID,
  keyed by organisation and revision) and one `audit` table (keyed by organisation and
  sequence, an index beside the rows);
- `audit-rowid`: the audit in a table of its own whose rowid is the sequence;
- `per-org`: both the log and the audit in tables of their own, rowid = revision / sequence.

Prints the median commits/s, processor µs a commit and WAL pages a commit of RUNS runs.
The figures include Python's own work per row: compare the layouts, not the absolute numbers
with the server's.
"""
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time

AUDIT_INDEX_BATCH = 1024
OP = '{"op":"insert_record","table":"account","owner":"alice","fields":{"name":"Account %d","telephone1":"555-0100"},"guid":"%s"}'
DETAIL = '{"new":{"name":"Account %d","telephone1":"555-0100"},"guid":"%s"}'


def schema(layout):
    audit_cols = ("revision INTEGER NOT NULL, at_ms INTEGER NOT NULL, retention_days INTEGER NOT NULL, "
                  "action TEXT NOT NULL, table_name TEXT, record TEXT, user_name TEXT, impersonator TEXT, "
                  "detail TEXT NOT NULL, hash TEXT NOT NULL, indexed INTEGER NOT NULL")
    shared_ops = ("CREATE TABLE operations (org TEXT NOT NULL, revision INTEGER NOT NULL, at_ms INTEGER NOT NULL, "
                  "operation TEXT NOT NULL, mac TEXT, PRIMARY KEY (org, revision)) STRICT, WITHOUT ROWID;")
    own_ops = ("CREATE TABLE operations_1 (revision INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, "
               "operation TEXT NOT NULL, mac TEXT) STRICT;")
    if layout == "shared":
        ddl = shared_ops + f"CREATE TABLE audit (org TEXT NOT NULL, seq INTEGER NOT NULL, {audit_cols}, PRIMARY KEY (org, seq)) STRICT;"
        idx = [("audit_by_record", "org, record, seq"), ("audit_by_user", "org, user_name, seq"),
               ("audit_by_time", "org, at_ms"), ("audit_by_table", "org, table_name, seq")]
        table, org = "audit", "'demo', "
    else:
        ddl = (shared_ops if layout == "audit-rowid" else own_ops)
        ddl += f"CREATE TABLE audit_1 (seq INTEGER PRIMARY KEY, {audit_cols}) STRICT;"
        idx = [("audit_by_record", "record, seq"), ("audit_by_user", "user_name, seq"),
               ("audit_by_time", "at_ms"), ("audit_by_table", "table_name, seq")]
        table, org = "audit_1", ""
    ddl += "".join(f"CREATE INDEX {n} ON {table} ({c}) WHERE indexed = 1;" for n, c in idx)
    ops = ("INSERT INTO operations VALUES ('demo', ?, ?, ?, ?)" if layout != "per-org"
           else "INSERT INTO operations_1 VALUES (?, ?, ?, ?)")
    aud = f"INSERT INTO {table} VALUES ({org}?, ?, ?, 0, 'create', 'account', ?, 'alice', NULL, ?, ?, 0)"
    where_org = "org = 'demo' AND " if layout == "shared" else ""
    index = f"UPDATE {table} SET indexed = 1 WHERE {where_org}seq > ? AND seq <= ? AND indexed = 0"
    return ddl, ops, aud, index


def run(layout, commits, group, folder):
    path = os.path.join(folder, f"{layout}-{group}.db")
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(path + ext):
            os.remove(path + ext)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute("PRAGMA wal_autocheckpoint=0")
    ddl, ops, aud, index = schema(layout)
    c.executescript("CREATE TABLE organizations (name TEXT PRIMARY KEY, revision INTEGER, audit_head_seq INTEGER, "
                    "h1 TEXT, h2 TEXT, h3 TEXT, h4 TEXT, indexed INTEGER) STRICT;"
                    "INSERT INTO organizations VALUES ('demo', 0, 0, '', '', '', '', 0);" + ddl)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rev = indexed = frames = 0
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(commits):
        c.execute("BEGIN IMMEDIATE")
        c.execute("SELECT * FROM organizations WHERE name = 'demo'").fetchone()
        for _ in range(group):
            rev += 1
            g = "%032x" % random.getrandbits(128)
            c.execute(ops, (rev, 1_700_000_000_000 + rev, OP % (rev, g), "%064x" % random.getrandbits(256)))
            c.execute(aud, (rev, rev, 1_700_000_000_000 + rev, g, DETAIL % (rev, g), "%064x" % random.getrandbits(256)))
        if rev - indexed >= AUDIT_INDEX_BATCH:
            c.execute(index, (indexed, rev))
            indexed = rev
        c.execute("UPDATE organizations SET revision = ?, audit_head_seq = ?, h1 = ?, h2 = ?, h3 = ?, h4 = ?, "
                  "indexed = ? WHERE name = 'demo'", (rev, rev, "a" * 64, "b" * 64, "c" * 64, "d" * 64, indexed))
        c.execute("COMMIT")
        if i % 1000 == 999:
            frames += c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    frames += c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    c.close()
    return commits / wall, 1e6 * cpu / commits, frames / commits


def main():
    commits = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    layouts = ["shared", "audit-rowid", "per-org"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
        print(f"{commits} commits a run, {runs} runs alternated, medians; SQLite {sqlite3.sqlite_version}")
        print(f"| layout | creates a commit | commits/s | µs processor a commit | WAL pages a commit | commits/s vs shared |")
        print("|---|---:|---:|---:|---:|---:|")
        for group in (7, 26):
            results = {l: [] for l in layouts}
            for _ in range(runs):
                for layout in layouts:
                    results[layout].append(run(layout, commits, group, folder))
            base = statistics.median(r[0] for r in results["shared"])
            for layout in layouts:
                rate = statistics.median(r[0] for r in results[layout])
                cpu = statistics.median(r[1] for r in results[layout])
                pages = statistics.median(r[2] for r in results[layout])
                print(f"| {layout} | {group} | {rate:,.0f} | {cpu:,.0f} | {pages:.2f} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
