//! The SQLite backend: one file, WAL journal, `synchronous = FULL`, versioned migrations.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::chain::{
    self, AuditKey, CHAINED_LEGACY_LOGS, ChainedRows, Chainer, GENESIS, LogHead, LogKey,
    LogVerifier, SEALED_AUDIT_PER_ORGANIZATION, Seal,
};
use crate::checkpoint::{self as cp, CheckpointInfo, KEEP_CHECKPOINTS, RawCheckpoint};
use crate::{
    ApiKeyRecord, AuditEntry, AuditQuery, AuditRecord, LogEntry, Revision, Store, StoreError,
    StoredOperation, Transaction, Verification, check_org_name, expired,
};

/// Migrations, in order. A database records the ones it has applied in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE organizations (
        name TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        revision INTEGER NOT NULL DEFAULT 0,
        audit_head_seq INTEGER NOT NULL DEFAULT 0,
        audit_head_hash TEXT NOT NULL,
        audit_head_seal TEXT NOT NULL,
        audit_anchor_seq INTEGER NOT NULL DEFAULT 0,
        audit_anchor_hash TEXT NOT NULL,
        audit_anchor_seal TEXT NOT NULL DEFAULT ''
    ) STRICT;
    CREATE TABLE operations (
        org TEXT NOT NULL REFERENCES organizations(name) ON DELETE CASCADE,
        revision INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        operation TEXT NOT NULL,
        PRIMARY KEY (org, revision)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE audit (
        org TEXT NOT NULL REFERENCES organizations(name) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        revision INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        retention_days INTEGER NOT NULL,
        action TEXT NOT NULL,
        table_name TEXT,
        record TEXT,
        user_name TEXT,
        impersonator TEXT,
        detail TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (org, seq)
    ) STRICT;
    CREATE INDEX audit_by_record ON audit (org, record, seq);
    CREATE INDEX audit_by_user ON audit (org, user_name, seq);
    CREATE INDEX audit_by_time ON audit (org, at_ms);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        org TEXT NOT NULL REFERENCES organizations(name) ON DELETE CASCADE,
        user_name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        revoked_ms INTEGER
    ) STRICT;",
    ),
    // The operation log's chain: each row's MAC, and the organisation's sealed head. Rows
    // written before it are chained by the keyed step `CHAINED_LEGACY_LOGS`.
    (
        2,
        "ALTER TABLE operations ADD COLUMN mac TEXT;
         ALTER TABLE organizations ADD COLUMN log_head_mac TEXT;
         ALTER TABLE organizations ADD COLUMN log_head_seal TEXT;",
    ),
    // The audit read by table (newest or oldest first).
    (
        3,
        "CREATE INDEX audit_by_table ON audit (org, table_name, seq);",
    ),
    // Checkpoints: a row per checkpoint and its bytes in chunks (crate::checkpoint).
    (
        4,
        "CREATE TABLE checkpoints (
        org TEXT NOT NULL REFERENCES organizations(name) ON DELETE CASCADE,
        revision INTEGER NOT NULL,
        format INTEGER NOT NULL,
        at_ms INTEGER NOT NULL,
        length INTEGER NOT NULL,
        log_mac TEXT NOT NULL,
        mac TEXT NOT NULL,
        PRIMARY KEY (org, revision)
    ) STRICT;
    CREATE TABLE checkpoint_chunks (
        org TEXT NOT NULL,
        revision INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (org, revision, seq),
        FOREIGN KEY (org, revision) REFERENCES checkpoints(org, revision) ON DELETE CASCADE
    ) STRICT;",
    ),
    // The audit indexed in batches (D142): a row goes in with `indexed = 0`, outside the
    // partial indexes, and a batch of rows is indexed at once later; `audit_indexed_seq` is
    // the organisation's last entry indexed so far — every row after it may not be.
    (
        5,
        "ALTER TABLE audit ADD COLUMN indexed INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE organizations ADD COLUMN audit_indexed_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE organizations SET audit_indexed_seq = audit_head_seq;
    DROP INDEX IF EXISTS audit_by_record;
    DROP INDEX IF EXISTS audit_by_user;
    DROP INDEX IF EXISTS audit_by_time;
    DROP INDEX IF EXISTS audit_by_table;
    CREATE INDEX audit_by_record ON audit (org, record, seq) WHERE indexed = 1;
    CREATE INDEX audit_by_user ON audit (org, user_name, seq) WHERE indexed = 1;
    CREATE INDEX audit_by_time ON audit (org, at_ms) WHERE indexed = 1;
    CREATE INDEX audit_by_table ON audit (org, table_name, seq) WHERE indexed = 1;",
    ),
];

/// An organisation's audit rows are indexed once this many wait unindexed (D142): the
/// indexes' leaf pages are then written once for the batch rather than once per commit, and
/// a query reads at most this many rows outside the indexes.
pub const AUDIT_INDEX_BATCH: u64 = 1024;

/// Organisations in one SQLite file. The audit key lives beside it in `<file>.audit-key`.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    key: AuditKey,
    log_key: LogKey,
    /// The writer's connection (writes, and reads inside them).
    conn: Mutex<Connection>,
    /// Audit rows indexed together ([`AUDIT_INDEX_BATCH`]; smaller in tests).
    audit_index_batch: u64,
    /// A second connection for reads outside writes: WAL lets it read the last commit while
    /// a write is being committed, so a read (an API key, the audit, the log) never waits for
    /// an fsync.
    reader: Mutex<Connection>,
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL) STRICT;",
    )?;
    for (version, sql) in MIGRATIONS {
        let done: bool = conn
            .query_row(
                "SELECT 1 FROM schema_migrations WHERE version = ?1",
                [version],
                |_| Ok(true),
            )
            .optional()?
            .unwrap_or(false);
        if done {
            continue;
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
            params![version, now_ms()],
        )?;
        tx.commit()?;
    }
    tables_per_organization(conn)
}

/// The migration step that moves each organisation's log and audit rows out of the shared
/// `operations` and `audit` tables into tables of its own (D161), in one transaction.
const TABLES_PER_ORGANIZATION: i64 = 6;

fn tables_per_organization(conn: &mut Connection) -> Result<(), StoreError> {
    let Some(tx) = begin_step(conn, TABLES_PER_ORGANIZATION)? else {
        return Ok(());
    };
    tx.execute_batch("ALTER TABLE organizations ADD COLUMN number INTEGER;")?;
    let orgs: Vec<String> = {
        let mut stmt = tx.prepare("SELECT name FROM organizations ORDER BY created_ms, name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for (n, org) in orgs.iter().enumerate() {
        let tables = OrgTables(n as i64 + 1);
        tx.execute(
            "UPDATE organizations SET number = ?2 WHERE name = ?1",
            params![org, tables.0],
        )?;
        tables.create(&tx)?;
        let log = tx.execute(
            &format!(
                "INSERT INTO {} (revision, at_ms, operation, mac) SELECT revision, at_ms, operation, mac FROM operations WHERE org = ?1 ORDER BY revision",
                tables.log()
            ),
            [org],
        )?;
        let audit = tx.execute(
            &format!(
                "INSERT INTO {} ({AUDIT_COLUMNS}) SELECT {AUDIT_COLUMNS} FROM audit WHERE org = ?1 ORDER BY seq",
                tables.audit()
            ),
            [org],
        )?;
        tracing::info!(org = %org, log, audit, "organisation's log and audit moved to tables of its own");
    }
    tx.execute_batch(
        "DROP TABLE operations;
         DROP TABLE audit;
         CREATE UNIQUE INDEX organizations_by_number ON organizations (number);",
    )?;
    finish_step(tx, TABLES_PER_ORGANIZATION)
}

/// An audit row's columns, as stored.
const AUDIT_COLUMNS: &str = "seq, revision, at_ms, retention_days, action, table_name, record, user_name, impersonator, detail, hash, indexed";

/// An organisation's own tables (D161), named by its number (`organizations.number`): its log
/// `log_<n>`, keyed by revision, and its audit `audit_<n>`, keyed by sequence — each row's
/// rowid, so an append fills the table's last page and no index is written beside it.
#[derive(Clone, Copy, Debug)]
struct OrgTables(i64);

impl OrgTables {
    /// The tables of `org`.
    fn of(conn: &Connection, org: &str) -> Result<Self, StoreError> {
        conn.prepare_cached("SELECT number FROM organizations WHERE name = ?1")?
            .query_row([org], |r| r.get(0))
            .optional()?
            .map(OrgTables)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))
    }

    fn log(self) -> String {
        format!("log_{}", self.0)
    }

    fn audit(self) -> String {
        format!("audit_{}", self.0)
    }

    /// Makes the tables (and the audit's partial indexes: D142).
    fn create(self, tx: &Connection) -> Result<(), StoreError> {
        let (log, audit) = (self.log(), self.audit());
        tx.execute_batch(&format!(
            "CREATE TABLE {log} (
                revision INTEGER PRIMARY KEY,
                at_ms INTEGER NOT NULL,
                operation TEXT NOT NULL,
                mac TEXT
            ) STRICT;
            CREATE TABLE {audit} (
                seq INTEGER PRIMARY KEY,
                revision INTEGER NOT NULL,
                at_ms INTEGER NOT NULL,
                retention_days INTEGER NOT NULL,
                action TEXT NOT NULL,
                table_name TEXT,
                record TEXT,
                user_name TEXT,
                impersonator TEXT,
                detail TEXT NOT NULL,
                hash TEXT NOT NULL,
                indexed INTEGER NOT NULL DEFAULT 1
            ) STRICT;
            CREATE INDEX {audit}_by_record ON {audit} (record, seq) WHERE indexed = 1;
            CREATE INDEX {audit}_by_user ON {audit} (user_name, seq) WHERE indexed = 1;
            CREATE INDEX {audit}_by_time ON {audit} (at_ms) WHERE indexed = 1;
            CREATE INDEX {audit}_by_table ON {audit} (table_name, seq) WHERE indexed = 1;"
        ))?;
        Ok(())
    }

    /// Drops the tables (their indexes with them).
    fn drop(self, tx: &Connection) -> Result<(), StoreError> {
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {};",
            self.log(),
            self.audit()
        ))?;
        Ok(())
    }
}

/// The keyed migration step: chains the logs written before rows carried MACs, once.
fn chain_legacy_logs(conn: &mut Connection, key: &LogKey) -> Result<(), StoreError> {
    let Some(tx) = begin_step(conn, CHAINED_LEGACY_LOGS)? else {
        return Ok(());
    };
    let orgs: Vec<(String, i64)> = {
        let mut stmt =
            tx.prepare("SELECT name, revision FROM organizations WHERE log_head_seal IS NULL")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (org, revision) in orgs {
        let log = OrgTables::of(&tx, &org)?.log();
        let rows: Vec<(Revision, i64, String)> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT revision, at_ms, operation FROM {log} ORDER BY revision"
            ))?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let (macs, head_mac, seal) = chain::chain_legacy(key, &org, revision as u64, &rows);
        let mut stmt = tx.prepare(&format!("UPDATE {log} SET mac = ?2 WHERE revision = ?1"))?;
        for ((revision, _, _), mac) in rows.iter().zip(&macs) {
            stmt.execute(params![*revision as i64, mac])?;
        }
        tx.execute(
            "UPDATE organizations SET log_head_mac = ?2, log_head_seal = ?3 WHERE name = ?1",
            params![org, head_mac, seal],
        )?;
        if !rows.is_empty() {
            tracing::info!(org = %org, rows = rows.len(), "operation log chained (written before rows carried MACs)");
        }
    }
    finish_step(tx, CHAINED_LEGACY_LOGS)
}

/// Opens a keyed migration step's transaction (which holds the database's write lock): `None`
/// when the step was done already.
fn begin_step(
    conn: &mut Connection,
    version: i64,
) -> Result<Option<rusqlite::Transaction<'_>>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let done = tx
        .query_row(
            "SELECT 1 FROM schema_migrations WHERE version = ?1",
            [version],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    Ok((!done).then_some(tx))
}

/// Records a keyed migration step as done, in its transaction, and commits.
fn finish_step(tx: rusqlite::Transaction<'_>, version: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
        params![version, now_ms()],
    )?;
    tx.commit()?;
    Ok(())
}

/// The keyed migration step: re-seals, once, the audit heads and anchors sealed before seals
/// named the organisation (a seal that does not hold under the old form is left as it is).
fn seal_audit_per_organization(conn: &mut Connection, key: &AuditKey) -> Result<(), StoreError> {
    let Some(tx) = begin_step(conn, SEALED_AUDIT_PER_ORGANIZATION)? else {
        return Ok(());
    };
    type Seals = (String, i64, String, String, i64, String, String);
    let orgs: Vec<Seals> = {
        let mut stmt = tx.prepare(
            "SELECT name, audit_head_seq, audit_head_hash, audit_head_seal, audit_anchor_seq, audit_anchor_hash, audit_anchor_seal FROM organizations",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for (org, hs, hh, hseal, as_, ah, aseal) in orgs {
        let (head, anchor) =
            key.reseal_legacy(&org, (hs as u64, &hh, &hseal), (as_ as u64, &ah, &aseal));
        if let Some(seal) = head {
            tx.execute(
                "UPDATE organizations SET audit_head_seal = ?2 WHERE name = ?1",
                params![org, seal],
            )?;
        }
        if let Some(seal) = anchor {
            tx.execute(
                "UPDATE organizations SET audit_anchor_seal = ?2 WHERE name = ?1",
                params![org, seal],
            )?;
        }
    }
    finish_step(tx, SEALED_AUDIT_PER_ORGANIZATION)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn unreadable(e: rusqlite::types::FromSqlError) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A read transaction on the reader's connection, ended when dropped.
struct Reading<'a> {
    conn: MutexGuard<'a, Connection>,
}

impl std::ops::Deref for Reading<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        // A read changes nothing: ending it cannot lose anything.
        let _ = self.conn.execute_batch("COMMIT");
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its audit key file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut key_path = path.as_os_str().to_owned();
        key_path.push(".audit-key");
        let key = AuditKey::load_or_create(Path::new(&key_path))?;
        Self::open_with_key(path, key)
    }

    /// Opens the database with a given audit key.
    pub fn open_with_key(path: &Path, key: AuditKey) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Foreign keys are not checked (D151): every write looks up its organisation's row
        // first, and the deletes remove the rows that hang off what they delete
        // themselves; a check per inserted log and audit row cost a lookup each.
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        // The writer's page cache: a group's inserts touch the tails of the log, the audit
        // and its indexes, kept in memory between commits.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        // Statement journals (a multi-row insert's undo inside the group's transaction) in
        // memory: on the default, SQLite created and removed a temporary file for each commit.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn)?;
        let log_key = key.log_key();
        chain_legacy_logs(&mut conn, &log_key)?;
        seal_audit_per_organization(&mut conn, &key)?;
        // Room for the write path's statements (the row inserts of each size, the heads) and
        // the reads that share this connection.
        conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
        conn.wal_hook(Some(background_checkpoints(path)?))?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            key,
            log_key,
            conn: Mutex::new(conn),
            audit_index_batch: AUDIT_INDEX_BATCH,
            reader: Mutex::new(reader),
        })
    }

    /// Indexes the audit in batches of `rows` instead of [`AUDIT_INDEX_BATCH`] (at least 1:
    /// every commit indexes its own rows), to test both sides of a batch.
    #[must_use]
    pub fn with_audit_index_batch(mut self, rows: u64) -> Self {
        self.audit_index_batch = rows.max(1);
        self
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The reader's connection inside a read transaction: every statement of the read sees
    /// the same commit (the log's rows and its sealed head together).
    fn read(&self) -> Result<Reading<'_>, StoreError> {
        let conn = self
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.execute_batch("BEGIN DEFERRED")?;
        Ok(Reading { conn })
    }
}

impl SqliteStore {
    /// Runs `f` on `org` inside `tx` (an immediate transaction, which holds the database's
    /// write lock) and moves the organisation's heads; the caller commits.
    fn write_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        org: &str,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        type Head = (
            i64,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            i64,
            i64,
        );
        let (revision, head_seq, head_hash, head_seal, log_mac, log_seal, indexed_seq, number): Head = tx
            .prepare_cached(
                "SELECT revision, audit_head_seq, audit_head_hash, audit_head_seal, log_head_mac, log_head_seal, audit_indexed_seq, number FROM organizations WHERE name = ?1",
            )?
            .query_row([org], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
            })
            .optional()?
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        let log = LogHead::opened(&self.log_key, org, revision as u64, log_mac, log_seal)?;
        self.key
            .check_seal(Seal::Head, org, (head_seq as u64, &head_hash, &head_seal))?;
        let tables = OrgTables(number);
        let mut state = SqliteTx {
            tx,
            operations: Rows::new(format!(
                "INSERT OR ROLLBACK INTO {} (revision, at_ms, operation, mac)",
                tables.log()
            )),
            audit: Rows::new(format!(
                "INSERT OR ROLLBACK INTO {} ({AUDIT_COLUMNS})",
                tables.audit()
            )),
            key: &self.key,
            log_key: &self.log_key,
            org,
            base: revision as u64,
            log,
            head: (head_seq as u64, head_hash),
            // The rows from this seq on are indexed by this transaction anyway (D142): they
            // go straight into the indexes.
            indexed_from: (indexed_seq.max(0) as u64).saturating_add(self.audit_index_batch),
        };
        f(&mut state)?;
        state.flush()?;
        let (log, head) = (state.log, &state.head);
        let seal = self.key.seal(Seal::Head, org, head.0, &head.1);
        let revision = log.revision;
        // The batch's rows into the indexes, all at once (D142): those inserted outside them.
        let mut indexed = indexed_seq.max(0) as u64;
        if head.0 >= state.indexed_from {
            tx.prepare_cached(&format!(
                "UPDATE {} SET indexed = 1 WHERE seq > ?1 AND seq <= ?2 AND indexed = 0",
                tables.audit()
            ))?
            .execute(params![indexed as i64, head.0 as i64])?;
            indexed = head.0;
        }
        tx.prepare_cached(
            "UPDATE organizations SET revision = ?2, audit_head_seq = ?3, audit_head_hash = ?4, audit_head_seal = ?5, log_head_mac = ?6, log_head_seal = ?7, audit_indexed_seq = ?8 WHERE name = ?1",
        )?
        .execute(params![org, revision as i64, head.0 as i64, head.1, seal, log.mac, log.seal(&self.log_key), indexed as i64])?;
        Ok(revision)
    }
}

/// The MAC of the log row at `revision`, as stored.
fn row_mac(conn: &Connection, org: &str, revision: Revision) -> Result<Option<String>, StoreError> {
    let log = OrgTables::of(conn, org)?.log();
    let mac: Option<Option<String>> = conn
        .query_row(
            &format!("SELECT mac FROM {log} WHERE revision = ?1"),
            [revision as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(mac.flatten())
}

fn org_exists(conn: &Connection, org: &str) -> Result<(), StoreError> {
    let found: Option<i64> = conn
        .query_row("SELECT 1 FROM organizations WHERE name = ?1", [org], |r| {
            r.get(0)
        })
        .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))
}

/// WAL pages after which a commit asks the checkpointer thread to copy them into the database
/// (SQLite's own automatic checkpoint, 1,000 pages, ran on the writer's thread after its
/// commit).
const CHECKPOINT_PAGES: i32 = 1_000;

/// WAL pages after which the writer copies them itself: the checkpointer fell behind (or a
/// run of commits never left it a moment when the whole log was copied).
const CHECKPOINT_PAGES_INLINE: i32 = 16_384;

/// The writer's WAL hook, with a thread of its own that copies the WAL into the database
/// (D151): a commit only signals it, so the writer goes on to its next group while the last
/// ones are copied and the database file is synced. The thread ends with the writer's
/// connection (the hook, which holds the signal, is dropped with it).
fn background_checkpoints(
    path: &Path,
) -> Result<
    impl FnMut(&mut rusqlite::hooks::Wal, std::ffi::c_int) -> rusqlite::Result<()> + Send + 'static,
    StoreError,
> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("strata-sqlite-checkpoint".to_owned())
        .spawn(move || {
            while woken.recv().is_ok() {
                // Commits close together are copied at once.
                std::thread::sleep(std::time::Duration::from_millis(20));
                while woken.try_recv().is_ok() {}
                // A checkpoint that fails (busy, the disk) leaves the frames in the WAL, where
                // they are read as before; the next signal or the writer copies them.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        })
        .map_err(|e| StoreError::Database(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(
        move |wal: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
            if pages >= CHECKPOINT_PAGES_INLINE {
                let _ = wal.checkpoint();
            } else if pages >= CHECKPOINT_PAGES {
                let _ = wake.try_send(());
            }
            Ok(())
        },
    )
}

/// Statements the writer's connection keeps prepared: an organisation's write uses up to 18
/// (its log's and audit's inserts of each size, the heads, the audit's indexing: D161), and
/// the reads that share the connection a few more.
const STATEMENTS_CACHED: usize = 160;

/// The writer connection's page cache, in KiB (SQLite's `cache_size` when negative).
const WRITER_CACHE_KIB: i64 = -32_768;

/// Rows appended but not yet inserted: several go in one statement.
const ROWS_PER_INSERT: usize = 64;

/// Rows of one table waiting to be inserted, their values in column order. The inserts are `INSERT OR
/// ROLLBACK`: a row that fails ends the whole transaction (which the write path does anyway),
/// so SQLite keeps no statement journal to undo a single statement (D151).
struct Rows<const N: usize> {
    /// `INSERT INTO table (columns)`.
    insert: String,
    values: Vec<Value>,
    /// The statements inserting 1, 2, 4 … [`ROWS_PER_INSERT`] rows, written when first used:
    /// any number of rows goes in at most 7 statements of these sizes, so that the connection's
    /// statement cache holds every one (a statement per number of rows would not fit it, and
    /// preparing a statement of hundreds of parameters costs more than running it).
    sql: [Option<String>; 7],
}

impl<const N: usize> Rows<N> {
    fn new(insert: String) -> Self {
        Rows {
            insert,
            values: Vec::with_capacity(N * ROWS_PER_INSERT),
            sql: Default::default(),
        }
    }

    fn rows(&self) -> usize {
        self.values.len() / N
    }

    fn push(&mut self, row: [Value; N]) {
        self.values.extend(row);
    }

    /// Inserts the waiting rows, in statements of 64, 32 … 1 rows (each cached).
    fn flush(&mut self, tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
        let mut rows = self.rows();
        while rows > 0 {
            // The largest power of two that fits (at most ROWS_PER_INSERT = 2^6).
            let power = (usize::BITS - 1 - rows.leading_zeros()).min(6) as usize;
            let batch = 1 << power;
            let insert = &self.insert;
            let sql = self.sql[power].get_or_insert_with(|| {
                let row = format!("(?{})", ", ?".repeat(N - 1));
                format!("{insert} VALUES {}", vec![row; batch].join(", "))
            });
            let mut stmt = tx.prepare_cached(sql)?;
            stmt.execute(rusqlite::params_from_iter(self.values.drain(..batch * N)))?;
            rows -= batch;
        }
        Ok(())
    }
}

struct SqliteTx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    /// Log rows waiting to be inserted.
    operations: Rows<4>,
    /// Audit rows waiting to be inserted (unindexed: D142).
    audit: Rows<12>,
    key: &'a AuditKey,
    log_key: &'a LogKey,
    org: &'a str,
    /// The revision committed before this write (held by the write lock).
    base: Revision,
    /// The log's head, moved by each appended operation.
    log: LogHead,
    head: (u64, String),
    /// Audit rows from this seq on are inserted into the indexes (this transaction indexes the
    /// batch they complete); those before it, outside them (D142).
    indexed_from: u64,
}

impl SqliteTx<'_> {
    /// Inserts every row appended so far.
    fn flush(&mut self) -> Result<(), StoreError> {
        self.operations.flush(self.tx)?;
        self.audit.flush(self.tx)
    }

    /// Queues a log row (inserted with the next batch).
    fn push_operation(
        &mut self,
        revision: Revision,
        at_ms: i64,
        text: String,
        mac: String,
    ) -> Result<(), StoreError> {
        self.operations.push([
            Value::Integer(revision as i64),
            Value::Integer(at_ms),
            Value::Text(text),
            Value::Text(mac),
        ]);
        if self.operations.rows() == ROWS_PER_INSERT {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues an audit row: its seq, revision, time and retention, then the record's action,
    /// table, record, user and impersonator, its detail's text and its hash.
    fn push_audit(
        &mut self,
        (seq, revision, at_ms, retention_days): (u64, Revision, i64, i64),
        action: String,
        [table, record, user, impersonator]: [Option<String>; 4],
        detail: String,
        hash: String,
    ) -> Result<(), StoreError> {
        let text = |v: Option<String>| v.map_or(Value::Null, Value::Text);
        self.audit.push([
            Value::Integer(seq as i64),
            Value::Integer(revision as i64),
            Value::Integer(at_ms),
            Value::Integer(retention_days),
            Value::Text(action),
            text(table),
            text(record),
            text(user),
            text(impersonator),
            Value::Text(detail),
            Value::Text(hash),
            Value::Integer(i64::from(seq >= self.indexed_from)),
        ]);
        if self.audit.rows() == ROWS_PER_INSERT {
            self.flush()?;
        }
        Ok(())
    }
}

impl Transaction for SqliteTx<'_> {
    fn append_stored(
        &mut self,
        operation: StoredOperation,
        at_ms: i64,
    ) -> Result<Revision, StoreError> {
        let (text, mac) = self.log.append(self.log_key, at_ms, operation);
        self.push_operation(self.log.revision, at_ms, text, mac)?;
        Ok(self.log.revision)
    }

    fn append_audit(
        &mut self,
        record: &AuditRecord,
        at_ms: i64,
        retention_days: i64,
    ) -> Result<u64, StoreError> {
        let (seq, detail, hash) = self.key.next_entry(
            &mut self.head,
            self.log.revision,
            at_ms,
            retention_days,
            record,
        );
        self.push_audit(
            (seq, self.log.revision, at_ms, retention_days),
            record.action.clone(),
            [
                record.table.clone(),
                record.record.clone(),
                record.user.clone(),
                record.impersonator.clone(),
            ],
            detail,
            hash,
        )?;
        Ok(seq)
    }

    fn chainer(&self) -> Option<Chainer> {
        Some(Chainer::new(self.key, self.log_key, &self.log, &self.head))
    }

    fn append_chained(&mut self, rows: ChainedRows) -> Result<(), StoreError> {
        rows.check(self.org, &self.log, &self.head)?;
        let (revision, mac, head) = rows.heads();
        for row in rows.log {
            self.push_operation(row.revision, row.at_ms, row.text, row.mac)?;
        }
        for row in rows.audit {
            let r = row.record;
            self.push_audit(
                (row.seq, row.revision, row.at_ms, row.retention_days),
                r.action,
                [r.table, r.record, r.user, r.impersonator],
                row.detail,
                row.hash,
            )?;
        }
        (self.log.revision, self.log.mac, self.head) = (revision, mac, head);
        Ok(())
    }

    fn revision(&self) -> Revision {
        self.log.revision
    }

    fn expect_audit_entries(&mut self, audit_entries: usize) {
        // These rows complete the batch (D142): the commit would index every unindexed row
        // anyway, so they go straight into the indexes instead of in and then indexed again
        // (each an update of its row, D157). The rows before them are indexed at the commit.
        let last = self.head.0.saturating_add(audit_entries as u64);
        if last >= self.indexed_from {
            self.indexed_from = self.indexed_from.min(self.head.0 + 1);
        }
    }

    fn operations_after(&mut self, after: Revision) -> Result<Vec<LogEntry>, StoreError> {
        // Up to the committed head: rows this transaction appended are after it (whether
        // inserted yet or still waiting).
        read_operations(self.tx, self.log_key, self.org, after, Some(self.base))
    }
}

fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditEntry, String)> {
    let detail: String = row.get(10)?;
    Ok((
        AuditEntry {
            seq: row.get::<_, i64>(0)? as u64,
            revision: row.get::<_, i64>(1)? as u64,
            at_ms: row.get(2)?,
            retention_days: row.get(3)?,
            record: AuditRecord {
                action: row.get(4)?,
                table: row.get(5)?,
                record: row.get(6)?,
                user: row.get(7)?,
                impersonator: row.get(8)?,
                detail: serde_json::Value::Null,
                detail_text: None,
            },
            hash: row.get(9)?,
        },
        detail,
    ))
}

const ENTRY_COLUMNS: &str = "seq, revision, at_ms, retention_days, action, table_name, record, user_name, impersonator, hash, detail";

fn parse_entries(rows: Vec<(AuditEntry, String)>) -> Result<Vec<AuditEntry>, StoreError> {
    rows.into_iter()
        .map(|(mut e, detail)| {
            e.record.detail = serde_json::from_str(&detail).map_err(corrupt)?;
            Ok(e)
        })
        .collect()
}

/// The audit rows matching `q` and the condition `and`, in `q`'s order, at most `q.limit`.
fn audit_rows(
    conn: &Connection,
    tables: OrgTables,
    q: &AuditQuery,
    and: &str,
) -> Result<Vec<(AuditEntry, String)>, StoreError> {
    let (filter, values) = crate::audit_where_and(None, q, |n| format!("?{n}"), and);
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM {} WHERE {filter}",
        tables.audit()
    );
    let values: Vec<rusqlite::types::Value> = values
        .into_iter()
        .map(|v| match v {
            crate::AuditParam::Text(t) => rusqlite::types::Value::Text(t.to_owned()),
            crate::AuditParam::Int(i) => rusqlite::types::Value::Integer(i),
        })
        .collect();
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), read_entry)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn read_key(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: row.get(0)?,
        organization: row.get(1)?,
        user: row.get(2)?,
        key_hash: row.get(3)?,
        created_ms: row.get(4)?,
        revoked_ms: row.get(5)?,
    })
}

impl Store for SqliteStore {
    fn create_organization(
        &self,
        name: &str,
        at_ms: i64,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        check_org_name(name)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if org_exists(&tx, name).is_ok() {
            return Err(StoreError::DuplicateOrganization(name.to_owned()));
        }
        let seal = self.key.seal(Seal::Head, name, 0, GENESIS);
        let log_seal = self.log_key.head_seal(name, 0, GENESIS);
        // A number never held by an organisation of the file now (D161); a deleted
        // organisation's tables went with it.
        let tables = OrgTables(tx.query_row(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM organizations",
            [],
            |r| r.get(0),
        )?);
        tx.execute(
            "INSERT INTO organizations (name, created_ms, audit_head_hash, audit_head_seal, audit_anchor_hash, log_head_mac, log_head_seal, number) VALUES (?1, ?2, ?3, ?4, ?3, ?3, ?5, ?6)",
            params![name, at_ms, GENESIS, seal, log_seal, tables.0],
        )?;
        tables.create(&tx)?;
        // Dropped without a commit (an error of `f` or of an append), the transaction rolls
        // back: no organisation.
        let revision = self.write_in(&tx, name, f)?;
        tx.commit()?;
        Ok(revision)
    }

    fn delete_organization(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.lock();
        // Checked and deleted under the database's write lock: foreign keys are not enforced
        // (D151), so nothing may be added to the organisation between the two.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        OrgTables::of(&tx, name)?.drop(&tx)?;
        for table in ["checkpoint_chunks", "checkpoints", "api_keys"] {
            tx.execute(&format!("DELETE FROM {table} WHERE org = ?1"), [name])?;
        }
        tx.execute("DELETE FROM organizations WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(())
    }

    fn organizations(&self) -> Result<Vec<(String, Revision)>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare("SELECT name, revision FROM organizations ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn write(
        &self,
        org: &str,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let revision = self.write_in(&tx, org, f)?;
        tx.commit()?;
        Ok(revision)
    }

    fn revision(&self, org: &str) -> Result<Revision, StoreError> {
        let conn = self.read()?;
        let r: Option<i64> = conn
            .query_row(
                "SELECT revision FROM organizations WHERE name = ?1",
                [org],
                |r| r.get(0),
            )
            .optional()?;
        r.map(|r| r as u64)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))
    }

    fn operations(&self, org: &str, after: Revision) -> Result<Vec<LogEntry>, StoreError> {
        let conn = self.read()?;
        read_operations(&conn, &self.log_key, org, after, None)
    }

    fn put_checkpoint(
        &self,
        org: &str,
        revision: Revision,
        format: u32,
        bytes: &[u8],
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        org_exists(&tx, org)?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM checkpoints WHERE org = ?1 AND revision = ?2",
                params![org, revision as i64],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Ok(false);
        }
        let Some(log_mac) = row_mac(&tx, org, revision)? else {
            return Err(StoreError::Aborted(format!(
                "organization `{org}` has no log row at revision {revision} to take a checkpoint at"
            )));
        };
        let raw = cp::sealed(&self.log_key, org, revision, format, at_ms, &log_mac, bytes);
        tx.execute(
            "INSERT INTO checkpoints (org, revision, format, at_ms, length, log_mac, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                org,
                revision as i64,
                i64::from(raw.format),
                raw.at_ms,
                raw.length as i64,
                raw.log_mac,
                raw.mac
            ],
        )?;
        {
            let mut stmt = tx.prepare(
                "INSERT INTO checkpoint_chunks (org, revision, seq, bytes) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (seq, chunk) in &raw.chunks {
                stmt.execute(params![org, revision as i64, i64::from(*seq), chunk])?;
            }
        }
        // Keep the newest few (their chunks first: foreign keys are not enforced, D151).
        for table in ["checkpoint_chunks", "checkpoints"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE org = ?1 AND revision NOT IN (SELECT revision FROM checkpoints WHERE org = ?1 ORDER BY revision DESC LIMIT ?2)"),
                params![org, KEEP_CHECKPOINTS as i64],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn checkpoints(&self, org: &str) -> Result<Vec<CheckpointInfo>, StoreError> {
        let conn = self.read()?;
        org_exists(&conn, org)?;
        let mut stmt = conn.prepare(
            "SELECT revision, format, length, at_ms FROM checkpoints WHERE org = ?1 ORDER BY revision DESC",
        )?;
        let rows = stmt.query_map([org], |r| {
            Ok(CheckpointInfo {
                revision: r.get::<_, i64>(0)? as u64,
                format: r.get::<_, i64>(1)? as u32,
                length: r.get::<_, i64>(2)? as u64,
                at_ms: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn read_checkpoint(
        &self,
        org: &str,
        revision: Revision,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.read()?;
        org_exists(&conn, org)?;
        let row: Option<(i64, i64, i64, String, String)> = conn
            .query_row(
                "SELECT format, at_ms, length, log_mac, mac FROM checkpoints WHERE org = ?1 AND revision = ?2",
                params![org, revision as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
        let Some((format, at_ms, length, log_mac, mac)) = row else {
            return Ok(None);
        };
        let chunks: Vec<(u32, Vec<u8>)> = {
            let mut stmt = conn.prepare(
                "SELECT seq, bytes FROM checkpoint_chunks WHERE org = ?1 AND revision = ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![org, revision as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?;
            rows.map(|r| r.map(|(seq, b)| (u32::try_from(seq).unwrap_or(u32::MAX), b)))
                .collect::<Result<_, _>>()?
        };
        let raw = RawCheckpoint {
            revision,
            format: u32::try_from(format).unwrap_or(u32::MAX),
            at_ms,
            length: u64::try_from(length).unwrap_or(u64::MAX),
            log_mac,
            mac,
            chunks,
        };
        let row_mac = row_mac(&conn, org, revision)?;
        cp::verified(&self.log_key, org, raw, row_mac.as_deref()).map(Some)
    }

    fn audit(&self, org: &str, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.read()?;
        let (indexed, tables): (i64, i64) = conn
            .query_row(
                "SELECT audit_indexed_seq, number FROM organizations WHERE name = ?1",
                [org],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        let tables = OrgTables(tables);
        // The indexed part through the (partial) indexes — the same plans as full indexes
        // gave —, the tail after `audit_indexed_seq` by `seq` (D142), merged in the order
        // asked, an entry in both once. Every row up to `audit_indexed_seq` is in the indexes,
        // which the audit's verification checks.
        let indexed_part = audit_rows(&conn, tables, q, "indexed = 1")?;
        let tail = audit_rows(&conn, tables, q, &format!("seq > {}", indexed.max(0)))?;
        let mut merged = Vec::with_capacity(q.limit.min(indexed_part.len() + tail.len()));
        let (mut a, mut b) = (
            indexed_part.into_iter().peekable(),
            tail.into_iter().peekable(),
        );
        while merged.len() < q.limit.max(1) {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => match q.order {
                    crate::AuditOrder::Ascending => x.0.seq < y.0.seq,
                    crate::AuditOrder::Descending => x.0.seq > y.0.seq,
                },
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_a { a.next() } else { b.next() };
            if let Some(entry) = next
                && merged
                    .last()
                    .is_none_or(|last: &(AuditEntry, String)| last.0.seq != entry.0.seq)
            {
                merged.push(entry);
            }
        }
        parse_entries(merged)
    }

    fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.key.derive(purpose)
    }

    fn verify_audit(&self, org: &str) -> Result<Verification, StoreError> {
        let conn = self.read()?;
        type Heads = (i64, String, String, i64, String, String, i64, i64);
        let (hs, hh, hseal, as_, ah, aseal, indexed, tables): Heads = conn
            .query_row(
                "SELECT audit_head_seq, audit_head_hash, audit_head_seal, audit_anchor_seq, audit_anchor_hash, audit_anchor_seal, audit_indexed_seq, number FROM organizations WHERE name = ?1",
                [org],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        let audit = OrgTables(tables).audit();
        let mut stmt =
            conn.prepare(&format!("SELECT {ENTRY_COLUMNS} FROM {audit} ORDER BY seq"))?;
        let rows = stmt.query_map([], read_entry)?;
        let mut entries = Vec::new();
        for row in rows {
            let (mut e, detail) = row?;
            match serde_json::from_str(&detail) {
                Ok(d) => e.record.detail = d,
                Err(_) => {
                    return Ok(Verification::Tampered {
                        seq: e.seq,
                        problem: "the entry's detail is not valid JSON: edited".to_owned(),
                    });
                }
            }
            entries.push(e);
        }
        let verdict = chain::verify(
            &self.key,
            org,
            (as_ as u64, &ah, &aseal),
            &entries,
            (hs as u64, &hh, &hseal),
        );
        if !matches!(verdict, Verification::Intact { .. }) {
            return Ok(verdict);
        }
        // The `indexed` flag is outside the chain: an entry taken out of the indexes by hand
        // would be missing from every query (D142).
        let hidden: Option<i64> = conn.query_row(
            &format!("SELECT MIN(seq) FROM {audit} WHERE indexed IS NOT 1 AND seq <= ?1"),
            [indexed],
            |r| r.get(0),
        )?;
        Ok(match hidden {
            Some(seq) => Verification::Tampered {
                seq: seq as u64,
                problem: "the entry was taken out of the audit's indexes (its `indexed` flag was edited): queries would not find it".to_owned(),
            },
            None => verdict,
        })
    }

    fn expire_audit(&self, org: &str, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (anchor_seq, anchor_hash, anchor_seal, tables): (i64, String, String, i64) = tx
            .query_row(
                "SELECT audit_anchor_seq, audit_anchor_hash, audit_anchor_seal, number FROM organizations WHERE name = ?1",
                [org],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        self.key.check_seal(
            Seal::Anchor,
            org,
            (anchor_seq as u64, &anchor_hash, &anchor_seal),
        )?;
        let audit = OrgTables(tables).audit();
        let mut last: Option<(i64, String)> = None;
        {
            let mut stmt = tx.prepare(&format!(
                "SELECT seq, at_ms, retention_days, hash FROM {audit} ORDER BY seq"
            ))?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (seq, at, days, hash): (i64, i64, i64, String) =
                    (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
                if !expired(at, days, now_ms) {
                    break;
                }
                last = Some((seq, hash));
            }
        }
        let Some((seq, hash)) = last else {
            return Ok(0);
        };
        let n = tx.execute(&format!("DELETE FROM {audit} WHERE seq <= ?1"), [seq])?;
        let seal = self.key.seal(Seal::Anchor, org, seq as u64, &hash);
        tx.execute(
            "UPDATE organizations SET audit_anchor_seq = ?2, audit_anchor_hash = ?3, audit_anchor_seal = ?4 WHERE name = ?1",
            params![org, seq, hash, seal],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut conn = self.lock();
        // The organisation checked and the key added under the database's write lock: with
        // foreign keys not enforced (D151), a key must never outlive its organisation's
        // deletion by another process sharing the file (it would open an organisation made
        // again under the name).
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        org_exists(&tx, &key.organization)?;
        tx.execute(
            "INSERT INTO api_keys (id, org, user_name, key_hash, created_ms, revoked_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![key.id, key.organization, key.user, key.key_hash, key.created_ms, key.revoked_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let conn = self.read()?;
        Ok(conn
            .query_row(
                "SELECT id, org, user_name, key_hash, created_ms, revoked_ms FROM api_keys WHERE key_hash = ?1",
                [key_hash],
                read_key,
            )
            .optional()?)
    }

    fn api_keys(&self, org: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare("SELECT id, org, user_name, key_hash, created_ms, revoked_ms FROM api_keys WHERE org = ?1 ORDER BY created_ms, id")?;
        let rows = stmt.query_map([org], read_key)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn revoke_api_key(&self, org: &str, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let conn = self.lock();
        let n = conn.execute(
            "UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, ?3) WHERE org = ?1 AND id = ?2",
            params![org, id, at_ms],
        )?;
        Ok(n > 0)
    }
}

/// The log entries of `org` after `after`, in order, verified against the chain and the sealed
/// head (the one committed: `upto` is the revision a write transaction started from, whose own
/// rows are not read).
fn read_operations(
    conn: &Connection,
    key: &LogKey,
    org: &str,
    after: Revision,
    upto: Option<Revision>,
) -> Result<Vec<LogEntry>, StoreError> {
    let (revision, mac, seal, tables): (i64, Option<String>, Option<String>, i64) = conn
        .prepare_cached(
            "SELECT revision, log_head_mac, log_head_seal, number FROM organizations WHERE name = ?1",
        )?
        .query_row([org], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?
        .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
    let mut verifier = LogVerifier::new(key, org, after, revision as u64, mac, seal)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT revision, at_ms, operation, mac FROM {} WHERE revision >= ?1 AND revision <= ?2 ORDER BY revision",
        OrgTables(tables).log()
    ))?;
    let mut rows = stmt.query(params![
        verifier.first() as i64,
        upto.map_or(i64::MAX, |u| u as i64)
    ])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let revision = row.get::<_, i64>(0)?;
        let text = row.get_ref(2)?.as_str().map_err(unreadable)?;
        let mac = row.get_ref(3)?.as_str_or_null().map_err(unreadable)?;
        if let Some(entry) = verifier.row(revision as u64, row.get(1)?, text, mac)? {
            out.push(entry);
        }
    }
    verifier.finish()?;
    Ok(out)
}

impl SqliteStore {
    /// Test and benchmark support: the log read as before it was verified (rows parsed, no
    /// MAC, gap or head checked), to measure what verification costs.
    #[doc(hidden)]
    pub fn operations_unverified(&self, org: &str) -> Result<Vec<LogEntry>, StoreError> {
        let conn = self.read()?;
        let log = OrgTables::of(&conn, org)?.log();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT revision, at_ms, operation FROM {log} ORDER BY revision"
        ))?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let revision = row.get::<_, i64>(0)?;
            out.push(LogEntry {
                revision: revision as u64,
                at_ms: row.get(1)?,
                operation: serde_json::from_str(row.get_ref(2)?.as_str().map_err(unreadable)?)
                    .map_err(|e| {
                        StoreError::Corrupt(format!(
                            "organization `{org}` revision {revision}: {e}"
                        ))
                    })?,
            });
        }
        Ok(out)
    }
}
