//! The PostgreSQL backend: tokio-postgres through a deadpool pool, versioned migrations, one
//! row lock per organisation to order its revisions.
//!
//! The [`Store`] trait is synchronous. The store owns a small tokio runtime; each call spawns
//! its work there and waits for the answer on a plain channel, so it may be called from any
//! thread — a blocking task, a plain thread, or even an async task (which then waits like a
//! SQLite call does; the server keeps its calls in blocking tasks). `Runtime::block_on` is not
//! used: it panics inside an async context.
//!
//! A write is a transaction that first locks the organisation's row (`SELECT … FOR UPDATE`),
//! so writes to one organisation serialise across every process using the database and a
//! later revision can never commit, or become visible, before an earlier one. The caller's
//! closure runs on the caller's thread while the lock is held; its operations and audit entries
//! are buffered and sent in bulk (`UNNEST`) before the commit. A write from the head this store
//! itself last committed skips the locking read: it is one statement that takes the row's lock
//! and moves it only if the row is still exactly that head, writing nothing otherwise (then the
//! write is made the locked way; D144), so the same order holds.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::types::FromSql;

use crate::chain::{
    self, AuditKey, CHAINED_LEGACY_LOGS, GENESIS, LogHead, LogKey, LogVerifier,
    SEALED_AUDIT_PER_ORGANIZATION, Seal,
};
use crate::checkpoint::{self as cp, CheckpointInfo, KEEP_CHECKPOINTS, RawCheckpoint};
use crate::{
    ApiKeyRecord, AuditEntry, AuditQuery, AuditRecord, LeaseClaim, LogEntry, Revision, Store,
    StoreError, StoredOperation, Transaction, Verification, WriteLease, check_org_name, expired,
};

/// Migrations, in order. A database records the ones it has applied in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"CREATE TABLE organizations (
        name TEXT COLLATE "C" PRIMARY KEY,
        created_ms BIGINT NOT NULL,
        revision BIGINT NOT NULL DEFAULT 0,
        audit_head_seq BIGINT NOT NULL DEFAULT 0,
        audit_head_hash TEXT NOT NULL,
        audit_head_seal TEXT NOT NULL,
        audit_anchor_seq BIGINT NOT NULL DEFAULT 0,
        audit_anchor_hash TEXT NOT NULL,
        audit_anchor_seal TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE operations (
        org TEXT COLLATE "C" NOT NULL REFERENCES organizations(name) ON DELETE CASCADE,
        revision BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        operation TEXT NOT NULL,
        PRIMARY KEY (org, revision)
    );
    CREATE TABLE audit (
        org TEXT COLLATE "C" NOT NULL REFERENCES organizations(name) ON DELETE CASCADE,
        seq BIGINT NOT NULL,
        revision BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        retention_days BIGINT NOT NULL,
        action TEXT NOT NULL,
        table_name TEXT,
        record TEXT,
        user_name TEXT,
        impersonator TEXT,
        detail TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (org, seq)
    );
    CREATE INDEX audit_by_record ON audit (org, record, seq);
    CREATE INDEX audit_by_user ON audit (org, user_name, seq);
    CREATE INDEX audit_by_time ON audit (org, at_ms);
    CREATE TABLE api_keys (
        id TEXT COLLATE "C" PRIMARY KEY,
        org TEXT COLLATE "C" NOT NULL REFERENCES organizations(name) ON DELETE CASCADE,
        user_name TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_ms BIGINT NOT NULL,
        revoked_ms BIGINT
    );
    CREATE INDEX api_keys_by_org ON api_keys (org, created_ms, id);
    CREATE TABLE audit_key (
        id SMALLINT PRIMARY KEY CHECK (id = 1),
        fingerprint TEXT NOT NULL
    );"#,
    ),
    // The operation log's chain: each row's MAC, and the organisation's sealed head. Rows
    // written before it are chained by the keyed step `CHAINED_LEGACY_LOGS`, once the key is
    // known.
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
        r#"CREATE TABLE checkpoints (
        org TEXT COLLATE "C" NOT NULL REFERENCES organizations(name) ON DELETE CASCADE,
        revision BIGINT NOT NULL,
        format BIGINT NOT NULL,
        at_ms BIGINT NOT NULL,
        length BIGINT NOT NULL,
        log_mac TEXT NOT NULL,
        mac TEXT NOT NULL,
        PRIMARY KEY (org, revision)
    );
    CREATE TABLE checkpoint_chunks (
        org TEXT COLLATE "C" NOT NULL,
        revision BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        bytes BYTEA NOT NULL,
        PRIMARY KEY (org, revision, seq),
        FOREIGN KEY (org, revision) REFERENCES checkpoints(org, revision) ON DELETE CASCADE
    );"#,
    ),
    // The log and audit rows no longer check their organisation by a foreign key: a check per
    // inserted row (a query each) was a sixth of the database's time on a write (D144). Every
    // write inserts them under its organisation's row, locked or claimed, and a deletion
    // removes them with it.
    (
        5,
        "ALTER TABLE operations DROP CONSTRAINT IF EXISTS operations_org_fkey;
         ALTER TABLE audit DROP CONSTRAINT IF EXISTS audit_org_fkey;",
    ),
    // Write leases (D150): the node that takes an organisation's writes, until `expires_ms`
    // by the database's clock; `mac` binds the organisation, the node and its URL under a key
    // derived from the audit key, so that a row written by anyone but a node (an attacker with
    // the database) sends no node's requests, credentials included, elsewhere.
    (
        6,
        r#"CREATE TABLE write_leases (
        org TEXT COLLATE "C" PRIMARY KEY,
        node TEXT NOT NULL,
        url TEXT NOT NULL,
        mac TEXT NOT NULL,
        expires_ms BIGINT NOT NULL
    );"#,
    ),
    // The audit's indexed text columns compare bytes (D152): under the database's default
    // collation (a locale's, as most installations have) every comparison in their indexes,
    // on each inserted row, went through the locale. They are only ever compared for
    // equality, which the two collations answer alike. The table is not rewritten; the three
    // indexes are rebuilt once.
    (
        7,
        r#"ALTER TABLE audit
            ALTER COLUMN table_name TYPE TEXT COLLATE "C",
            ALTER COLUMN record TYPE TEXT COLLATE "C",
            ALTER COLUMN user_name TYPE TEXT COLLATE "C";"#,
    ),
];

/// The database's clock in milliseconds since the epoch: leases are judged by one clock,
/// whatever the nodes' own clocks say.
const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Held by the migration runner so that two processes starting together migrate one at a time.
const MIGRATION_LOCK: i64 = 0x5354_5241_5441; // "STRATA"

/// The channel of `LISTEN`/`NOTIFY` on which writes announce themselves (the payload is the
/// organisation's name).
const CHANNEL: &str = "strata_changes";

/// Connections in the pool.
const POOL_SIZE: usize = 16;

/// Rows sent per bulk insert.
const CHUNK: usize = 5_000;

const ENTRY_COLUMNS: &str = "seq, revision, at_ms, retention_days, action, table_name, record, user_name, impersonator, hash, detail";
const KEY_COLUMNS: &str = "id, org, user_name, key_hash, created_ms, revoked_ms";

/// Whether a database argument names a PostgreSQL database (`postgres://` or `postgresql://`)
/// rather than a SQLite file.
#[must_use]
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The URL with its password (in the user part or a `password=` parameter) replaced by `***`,
/// for messages and logs.
#[must_use]
pub fn redact_database_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Parses a URL into a connection configuration: a 5 s connect timeout and
/// `application_name=strata` unless the URL says otherwise, and the password from
/// `PGPASSWORD` when the URL has none.
fn pg_config(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let shown = redact_database_url(url);
    if !is_postgres_url(url) {
        return Err(StoreError::BadUrl(format!(
            "`{shown}`: a PostgreSQL URL starts with postgres:// or postgresql://"
        )));
    }
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        StoreError::BadUrl(format!("`{shown}`: {}", describe(&e)))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name("strata");
    }
    if config.get_password().is_none()
        && let Some(password) = std::env::var_os("PGPASSWORD")
    {
        config.password(password.as_encoded_bytes());
    }
    Ok(config)
}

/// An error with its causes: tokio-postgres prints only its kind ("db error") at the top.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(db) = e
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::as_db_error)
    {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    // Each cause after the first, unless it repeats the one before it.
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(db) = cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
        {
            parts.push(format!("{} (SQLSTATE {})", db.message(), db.code().code()));
            break;
        }
        let text = cause.to_string();
        match parts.last_mut() {
            Some(last) if text.starts_with(last.as_str()) => *last = text,
            _ => parts.push(text),
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Why the pool gave no connection.
fn pool_problem(e: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::{PoolError, TimeoutType};
    match e {
        PoolError::Backend(e) => describe(e),
        PoolError::Timeout(TimeoutType::Create) => "connecting timed out".to_owned(),
        PoolError::Timeout(TimeoutType::Wait) => {
            format!("all {POOL_SIZE} pooled connections stayed busy for 30 s")
        }
        PoolError::Timeout(TimeoutType::Recycle) => {
            "checking a pooled connection timed out".to_owned()
        }
        other => describe(other),
    }
}

/// What a failed statement means for its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The database is not there for now: `database_unreachable` (503).
    Unavailable,
    /// Out of disk space: `storage_full` (507).
    Full,
    /// Anything else: `database` (500).
    Other,
}

/// Classifies a failure by whether the connection was lost and by its SQLSTATE: class 08
/// (connection exception) and the operator-intervention codes 57P01 `admin_shutdown`, 57P02
/// `crash_shutdown` (another backend crashed — a PANIC, for instance on a full write-ahead log —
/// and the server is restarting), 57P03 `cannot_connect_now` (starting up or in recovery) are
/// unavailability; 53100 `disk_full` is a full disk (the statement failed, its transaction was
/// rolled back; a PANIC on a full write-ahead log is reported with it too).
fn classify(lost: bool, sqlstate: Option<&str>) -> Failure {
    match sqlstate {
        _ if lost => Failure::Unavailable,
        Some("53100") => Failure::Full,
        Some("57P01" | "57P02" | "57P03") => Failure::Unavailable,
        Some(code) if code.starts_with("08") => Failure::Unavailable,
        _ => Failure::Other,
    }
}

/// A failed statement: a lost connection or a server going away is `database_unreachable`, a
/// full disk `storage_full`, anything else `database`.
fn db_err(e: tokio_postgres::Error) -> StoreError {
    let lost = e.is_closed()
        || std::error::Error::source(&e)
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    match classify(lost, sqlstate(&e)) {
        Failure::Unavailable => StoreError::Unreachable(describe(&e)),
        Failure::Full => StoreError::Full(describe(&e)),
        Failure::Other => StoreError::Database(describe(&e)),
    }
}

#[cfg(test)]
mod failure_tests {
    use super::{Failure, classify};

    #[test]
    fn sqlstates_map_to_the_store_errors() {
        assert_eq!(classify(false, Some("53100")), Failure::Full);
        assert_eq!(classify(true, Some("53100")), Failure::Unavailable);
        for code in ["57P01", "57P02", "57P03", "08006", "08003", "08001"] {
            assert_eq!(classify(false, Some(code)), Failure::Unavailable, "{code}");
        }
        for code in ["23505", "40001", "53200", "XX000"] {
            assert_eq!(classify(false, Some(code)), Failure::Other, "{code}");
        }
        assert_eq!(classify(true, None), Failure::Unavailable);
        assert_eq!(classify(false, None), Failure::Other);
    }
}

fn sqlstate(e: &tokio_postgres::Error) -> Option<&str> {
    e.code().map(tokio_postgres::error::SqlState::code)
}

/// The MAC of the log row at `revision`, as stored.
async fn pg_row_mac(
    tx: &tokio_postgres::Transaction<'_>,
    org: &str,
    revision: Revision,
) -> Result<Option<String>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT mac FROM operations WHERE org = $1 AND revision = $2",
            &[&org, &(revision as i64)],
        )
        .await
        .map_err(db_err)?;
    match row {
        Some(r) => col::<Option<String>>(&r, 0),
        None => Ok(None),
    }
}

fn col<'a, T: FromSql<'a>>(row: &'a tokio_postgres::Row, i: usize) -> Result<T, StoreError> {
    row.try_get(i)
        .map_err(|e| StoreError::Corrupt(describe(&e)))
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The pool and what error messages name it by.
#[derive(Debug)]
struct Db {
    pool: Pool,
    /// The URL without its password.
    target: String,
}

impl Db {
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| {
            StoreError::Unreachable(format!(
                "cannot connect to {}: {}",
                self.target,
                pool_problem(&e)
            ))
        })
    }
}

/// A pooled connection inside a transaction opened with `BEGIN`. Dropped before [`release`],
/// the connection is closed (the server rolls the transaction back) instead of going back to
/// the pool with a transaction open — after an error, or if the caller's closure panicked.
///
/// [`release`]: InTransaction::release
struct InTransaction(Option<Object>);

impl InTransaction {
    fn client(&self) -> Result<&Object, StoreError> {
        self.0
            .as_ref()
            .ok_or_else(|| StoreError::Database("the transaction's connection is gone".to_owned()))
    }

    /// The transaction ended (committed or rolled back): the connection goes back to the pool.
    fn release(mut self) {
        drop(self.0.take());
    }
}

impl Drop for InTransaction {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
}

/// What the listening connection has heard: a counter moved by every notification (and by
/// every reconnection, since notifications sent while it was away are lost), and a condition
/// variable to wait on it.
#[derive(Debug, Default)]
struct Changes {
    counter: std::sync::Mutex<u64>,
    moved: std::sync::Condvar,
}

impl Changes {
    fn bump(&self) {
        let mut counter = self
            .counter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counter += 1;
        self.moved.notify_all();
    }

    fn get(&self) -> u64 {
        *self
            .counter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let counter = self
            .counter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (counter, _) = self
            .moved
            .wait_timeout_while(counter, timeout, |c| *c == seen)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *counter
    }
}

/// Keeps one connection (outside the pool) listening on [`CHANNEL`], for as long as the
/// store's runtime runs; reconnects after a second when it is lost.
async fn listen(
    config: tokio_postgres::Config,
    changes: Arc<Changes>,
    target: String,
    node: Arc<str>,
) {
    let mut reported = false;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (heard, node) = (Arc::clone(&changes), Arc::clone(&node));
                let driver = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            // This store's own writes are in its node's memory already.
                            Ok(tokio_postgres::AsyncMessage::Notification(n))
                                if sent_by(n.payload(), &node) => {}
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => heard.bump(),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        if reported {
                            tracing::info!(database = %target, "listening for changes again");
                        }
                        reported = false;
                        // Whatever was notified while nobody listened: look again.
                        changes.bump();
                        let _ = driver.await;
                    }
                    Err(_) => driver.abort(),
                }
                drop(client);
            }
            Err(e) => {
                if !reported {
                    tracing::warn!(database = %target, error = %describe(&e), "cannot listen for changes; polling meanwhile");
                    reported = true;
                }
            }
        }
        changes.bump();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A name for a store, unique among the stores on a database (process, time, and a count
/// within the process).
fn node_id() -> String {
    static STORES: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}-{nanos:x}-{:x}",
        std::process::id(),
        STORES.fetch_add(1, Ordering::Relaxed)
    )
}

/// Whether a notification's text says `node` sent it ([`Engine::notice`]).
fn sent_by(payload: &str, node: &str) -> bool {
    payload
        .rsplit_once('\n')
        .is_some_and(|(_, sender)| sender == node)
}

/// The store's runtime and pool. Dropping it stops the runtime without waiting for it.
struct Engine {
    db: Arc<Db>,
    changes: Arc<Changes>,
    /// This store's name in its notifications, to leave its own aside.
    node: Arc<str>,
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which panics inside an async context.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Engine {
    /// Starts the runtime, builds the pool and applies the migrations.
    fn connect(url: &str) -> Result<Self, StoreError> {
        let config = pg_config(url)?;
        let target = redact_database_url(url);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strata-postgres")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Database(format!("cannot start the PostgreSQL runtime: {e}"))
            })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::BadUrl(format!("`{target}`: {e}")))?;
        let changes = Arc::new(Changes::default());
        let node: Arc<str> = node_id().into();
        runtime.spawn(listen(
            config.clone(),
            Arc::clone(&changes),
            target.clone(),
            Arc::clone(&node),
        ));
        let engine = Engine {
            db: Arc::new(Db { pool, target }),
            changes,
            node,
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        };
        let db = Arc::clone(&engine.db);
        engine
            .run(async move { migrate(&db).await })
            .map_err(|e| engine.named(e))?;
        Ok(engine)
    }

    /// A notification's text: the organisation that changed, and after a line break the
    /// store that changed it (older nodes sent the organisation alone; every node reads any
    /// notification as "look again" and only this store's own are left aside).
    fn notice(&self, org: &str) -> String {
        format!("{org}\n{}", self.node)
    }

    /// A database error naming the database (for errors while opening).
    fn named(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Database(m) => StoreError::Database(format!("{}: {m}", self.db.target)),
            other => other,
        }
    }

    /// Runs `work` on the store's runtime and waits for it. Works from any thread, async or
    /// not: the wait is on a plain channel, the work on the store's own threads.
    fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv().map_err(|_| {
            StoreError::Database("the PostgreSQL store's task stopped without an answer".to_owned())
        })?
    }

    /// Checks `key` against the fingerprint the database keeps, recording it if the database
    /// has none.
    fn check_key(&self, key: &AuditKey) -> Result<(), StoreError> {
        let db = Arc::clone(&self.db);
        let mine = key.fingerprint();
        let theirs = {
            let mine = mine.clone();
            self.run(async move { claim_fingerprint(&db, mine).await })
                .map_err(|e| self.named(e))?
        };
        if theirs != mine {
            return Err(StoreError::AuditKey(format!(
                "this is not the key the audit chains of {} were started with: every process using the database needs the same key file",
                self.db.target
            )));
        }
        Ok(())
    }
}

/// Organisations in a PostgreSQL database. The audit key is kept outside it, in a file (see
/// [`PostgresStore::open`]); the database keeps only the key's fingerprint, to refuse another
/// key.
pub struct PostgresStore {
    engine: Engine,
    key: AuditKey,
    log_key: LogKey,
    /// Per organisation, its row as this store last committed it, for writes in one round
    /// trip (D144).
    heads: std::sync::Mutex<HashMap<String, KnownRow>>,
    /// Writes sent in one round trip, and those of them another writer had overtaken.
    claims: (AtomicU64, AtomicU64),
}

/// An organisation's row as this store last committed it, and when a write may next be sent
/// in one round trip (not for a second after another writer overtook one).
#[derive(Debug, Default)]
struct KnownRow {
    row: Option<Locked>,
    claim_after: Option<std::time::Instant>,
}

/// How long a store writes an organisation the locked way after another writer overtook a
/// write sent in one round trip (D144): other nodes are writing it too.
const CLAIM_PAUSE: Duration = Duration::from_secs(1);

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.engine.db.target)
            .finish_non_exhaustive()
    }
}

async fn migrate(db: &Db) -> Result<(), StoreError> {
    let mut client = db.client().await?;
    let tx = client.transaction().await.map_err(db_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )
    .await
    .map_err(db_err)?;
    for (version, sql) in MIGRATIONS {
        let done = tx
            .query_opt(
                "SELECT 1 FROM schema_migrations WHERE version = $1",
                &[version],
            )
            .await
            .map_err(db_err)?
            .is_some();
        if done {
            continue;
        }
        tx.batch_execute(sql).await.map_err(db_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
            &[version, &now_ms()],
        )
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

/// The keyed migration step: chains the logs written before rows carried MACs, once (under
/// the migration lock, so that two processes starting together do it once).
async fn chain_legacy_logs(db: &Db, key: &LogKey) -> Result<(), StoreError> {
    let mut client = db.client().await?;
    let Some(tx) = begin_step(&mut client, CHAINED_LEGACY_LOGS).await? else {
        return Ok(());
    };
    let orgs = tx
        .query(
            "SELECT name, revision FROM organizations WHERE log_head_seal IS NULL FOR UPDATE",
            &[],
        )
        .await
        .map_err(db_err)?;
    for org in &orgs {
        let (name, revision): (String, i64) = (col(org, 0)?, col(org, 1)?);
        let rows = tx
            .query(
                "SELECT revision, at_ms, operation FROM operations WHERE org = $1 ORDER BY revision",
                &[&name],
            )
            .await
            .map_err(db_err)?;
        let rows = rows
            .iter()
            .map(|r| Ok((col::<i64>(r, 0)? as u64, col(r, 1)?, col(r, 2)?)))
            .collect::<Result<Vec<(Revision, i64, String)>, StoreError>>()?;
        let (macs, head_mac, seal) = chain::chain_legacy(key, &name, revision as u64, &rows);
        let revisions: Vec<i64> = rows.iter().map(|r| r.0 as i64).collect();
        for start in (0..rows.len()).step_by(CHUNK) {
            let end = (start + CHUNK).min(rows.len());
            tx.execute(
                "UPDATE operations SET mac = u.mac FROM UNNEST($2::bigint[], $3::text[]) AS u(revision, mac)
                 WHERE operations.org = $1 AND operations.revision = u.revision",
                &[&name, &&revisions[start..end], &&macs[start..end]],
            )
            .await
            .map_err(db_err)?;
        }
        tx.execute(
            "UPDATE organizations SET log_head_mac = $2, log_head_seal = $3 WHERE name = $1",
            &[&name, &head_mac, &seal],
        )
        .await
        .map_err(db_err)?;
        if !rows.is_empty() {
            tracing::info!(org = %name, rows = rows.len(), "operation log chained (written before rows carried MACs)");
        }
    }
    finish_step(tx, CHAINED_LEGACY_LOGS).await
}

/// Opens a keyed migration step's transaction under the migration lock: `None` when the step
/// was done already.
async fn begin_step(
    client: &mut Object,
    version: i64,
) -> Result<Option<deadpool_postgres::Transaction<'_>>, StoreError> {
    let tx = client.transaction().await.map_err(db_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db_err)?;
    let done = tx
        .query_opt(
            "SELECT 1 FROM schema_migrations WHERE version = $1",
            &[&version],
        )
        .await
        .map_err(db_err)?
        .is_some();
    if done {
        tx.commit().await.map_err(db_err)?;
        return Ok(None);
    }
    Ok(Some(tx))
}

/// Records a keyed migration step as done, in its transaction, and commits.
async fn finish_step(
    tx: deadpool_postgres::Transaction<'_>,
    version: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
        &[&version, &now_ms()],
    )
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

/// The keyed migration step: re-seals, once, the audit heads and anchors sealed before seals
/// named the organisation (under the migration lock; a seal that does not hold under the old
/// form is left as it is).
async fn seal_audit_per_organization(db: &Db, key: &AuditKey) -> Result<(), StoreError> {
    let mut client = db.client().await?;
    let Some(tx) = begin_step(&mut client, SEALED_AUDIT_PER_ORGANIZATION).await? else {
        return Ok(());
    };
    let orgs = tx
        .query(
            "SELECT name, audit_head_seq, audit_head_hash, audit_head_seal, audit_anchor_seq, audit_anchor_hash, audit_anchor_seal FROM organizations FOR UPDATE",
            &[],
        )
        .await
        .map_err(db_err)?;
    for row in &orgs {
        let name: String = col(row, 0)?;
        let (hs, hh, hseal): (i64, String, String) = (col(row, 1)?, col(row, 2)?, col(row, 3)?);
        let (as_, ah, aseal): (i64, String, String) = (col(row, 4)?, col(row, 5)?, col(row, 6)?);
        let (head, anchor) =
            key.reseal_legacy(&name, (hs as u64, &hh, &hseal), (as_ as u64, &ah, &aseal));
        if let Some(seal) = head {
            tx.execute(
                "UPDATE organizations SET audit_head_seal = $2 WHERE name = $1",
                &[&name, &seal],
            )
            .await
            .map_err(db_err)?;
        }
        if let Some(seal) = anchor {
            tx.execute(
                "UPDATE organizations SET audit_anchor_seal = $2 WHERE name = $1",
                &[&name, &seal],
            )
            .await
            .map_err(db_err)?;
        }
    }
    finish_step(tx, SEALED_AUDIT_PER_ORGANIZATION).await
}

async fn stored_fingerprint(db: &Db) -> Result<Option<String>, StoreError> {
    let client = db.client().await?;
    let row = client
        .query_opt("SELECT fingerprint FROM audit_key WHERE id = 1", &[])
        .await
        .map_err(db_err)?;
    row.map(|r| col(&r, 0)).transpose()
}

/// Warns (once per process) when PostgreSQL may lose commits it has acknowledged if it
/// crashes — `synchronous_commit` or `fsync` off —, since Strata acknowledges a write when
/// its commit returns (D113, docs/deployment.md).
async fn warn_if_not_durable(db: &Db) -> Result<(), StoreError> {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT current_setting('synchronous_commit'), current_setting('fsync')",
            &[],
        )
        .await
        .map_err(db_err)?;
    let (commit, fsync): (String, String) = (col(&row, 0)?, col(&row, 1)?);
    if commit == "off" || fsync == "off" {
        WARNED.call_once(|| {
            tracing::warn!(
                database = %db.target,
                synchronous_commit = %commit,
                fsync = %fsync,
                "PostgreSQL can lose commits it acknowledged if it crashes: writes Strata acknowledged could be lost; keep synchronous_commit and fsync on (docs/deployment.md)"
            );
        });
    }
    Ok(())
}

/// Records the key's fingerprint if the database has none yet; returns the one it keeps.
async fn claim_fingerprint(db: &Db, fingerprint: String) -> Result<String, StoreError> {
    let client = db.client().await?;
    client
        .execute(
            "INSERT INTO audit_key (id, fingerprint) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            &[&fingerprint],
        )
        .await
        .map_err(db_err)?;
    let row = client
        .query_one("SELECT fingerprint FROM audit_key WHERE id = 1", &[])
        .await
        .map_err(db_err)?;
    col(&row, 0)
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`), applies the
    /// migrations, and reads the audit key from `key_file` — creating the file (mode 0600, a
    /// random key) when it does not exist and the database has no audit key yet. Every process
    /// using the database must use the same key file.
    pub fn open(url: &str, key_file: &Path) -> Result<Self, StoreError> {
        let engine = Engine::connect(url)?;
        let db = Arc::clone(&engine.db);
        let stored = engine
            .run(async move { stored_fingerprint(&db).await })
            .map_err(|e| engine.named(e))?;
        let key = match (AuditKey::load(key_file)?, stored) {
            (Some(key), _) => key,
            (None, None) => AuditKey::load_or_create(key_file)?,
            (None, Some(_)) => {
                return Err(StoreError::AuditKey(format!(
                    "the key file {} does not exist, but the audit chains of {} were started with a key: use that key's file (every process using the database needs the same one)",
                    key_file.display(),
                    engine.db.target
                )));
            }
        };
        Self::keyed(engine, key)
    }

    /// Connects with a given audit key (tests, and embedding with a key from elsewhere).
    pub fn open_with_key(url: &str, key: AuditKey) -> Result<Self, StoreError> {
        let engine = Engine::connect(url)?;
        Self::keyed(engine, key)
    }

    /// Checks the key against the database's, and runs the keyed migration steps.
    fn keyed(engine: Engine, key: AuditKey) -> Result<Self, StoreError> {
        engine.check_key(&key)?;
        let log_key = key.log_key();
        let (db, k, audit_key) = (Arc::clone(&engine.db), log_key.clone(), key.clone());
        engine
            .run(async move {
                chain_legacy_logs(&db, &k).await?;
                seal_audit_per_organization(&db, &audit_key).await
            })
            .map_err(|e| engine.named(e))?;
        let db = Arc::clone(&engine.db);
        // Only a warning: the settings are the operator's (D113).
        let _ = engine.run(async move { warn_if_not_durable(&db).await });
        Ok(PostgresStore {
            engine,
            key,
            log_key,
            heads: std::sync::Mutex::default(),
            claims: (AtomicU64::new(0), AtomicU64::new(0)),
        })
    }

    /// The database, without its password.
    #[must_use]
    pub fn target(&self) -> &str {
        &self.engine.db.target
    }

    fn db(&self) -> Arc<Db> {
        Arc::clone(&self.engine.db)
    }

    fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        self.engine.run(work)
    }
}

impl PostgresStore {
    /// Runs `f` on `org`, whose row `conn`'s transaction holds locked (`locked`: the row as
    /// read), then sends what it appended and commits (`prefetched`: the log rows from a
    /// revision on, read with the lock). An error of `f` rolls back.
    fn write_locked(
        &self,
        org: &str,
        conn: InTransaction,
        locked: Locked,
        prefetched: Option<(Revision, Vec<tokio_postgres::Row>)>,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        let (revision, head_seq, head_hash, head_seal, log_mac, log_seal) = &locked;
        let opened = LogHead::opened(
            &self.log_key,
            org,
            *revision as u64,
            log_mac.clone(),
            log_seal.clone(),
        )
        .and_then(|head| {
            self.key
                .check_seal(Seal::Head, org, (*head_seq as u64, head_hash, head_seal))?;
            Ok(head)
        });
        let log_head = match opened {
            Ok(head) => head,
            Err(e) => {
                let _ = self.run(rollback(conn));
                return Err(e);
            }
        };
        let locked_mac = log_head.mac.clone();
        let mut state = PgTx {
            store: self,
            conn: Some(conn),
            org,
            base: *revision as u64,
            key: &self.key,
            log_key: &self.log_key,
            log_head,
            locked_mac,
            prefetched,
            head: (*head_seq as u64, head_hash.clone()),
            log: LogRows::default(),
            audit: AuditRows::default(),
        };
        let result = f(&mut state);
        let PgTx {
            conn,
            log_head,
            head,
            log,
            audit,
            ..
        } = state;
        let Some(conn) = conn else {
            // A read inside the transaction lost its connection (which closed it: the server
            // rolled back).
            return Err(result.err().unwrap_or_else(|| {
                StoreError::Database("the transaction's connection is gone".to_owned())
            }));
        };
        if let Err(e) = result {
            // Nothing was sent: end the transaction and give the connection back.
            let _ = self.run(rollback(conn));
            return Err(e);
        }
        let pending = self.pending(org, log_head, head, log, audit);
        let row = pending.row();
        match self.run(finish_write(conn, pending, locked)) {
            Ok(()) => {
                let revision = row.0 as u64;
                self.known(org, |known| known.row = Some(row));
                Ok(revision)
            }
            Err(e) => {
                self.known(org, |known| known.row = None);
                Err(e)
            }
        }
    }

    /// What a closure appended, sealed, to send.
    fn pending(
        &self,
        org: &str,
        log_head: LogHead,
        head: (u64, String),
        log: LogRows,
        audit: AuditRows,
    ) -> Pending {
        Pending {
            org: org.to_owned(),
            notice: self.engine.notice(org),
            log,
            audit,
            revision: log_head.revision as i64,
            log_seal: log_head.seal(&self.log_key),
            log_mac: log_head.mac,
            head_seq: head.0 as i64,
            head_seal: self.key.seal(Seal::Head, org, head.0, &head.1),
            head_hash: head.1,
        }
    }

    /// Changes what this store knows of `org`'s row.
    fn known(&self, org: &str, change: impl FnOnce(&mut KnownRow)) {
        let mut heads = self
            .heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(heads.entry(org.to_owned()).or_default());
    }

    /// The row to claim for a write from `known`: the one this store last committed, if it
    /// is at `known` and no other writer overtook a claim lately.
    fn claimable(&self, org: &str, known: Revision) -> Option<Locked> {
        let heads = self
            .heads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known_row = heads.get(org)?;
        if known_row
            .claim_after
            .is_some_and(|after| std::time::Instant::now() < after)
        {
            return None;
        }
        known_row
            .row
            .clone()
            .filter(|row| row.0 as u64 == known && row.4.is_some() && row.5.is_some())
    }

    /// Runs `f` from `row` — the organisation's row as this store last committed it — and
    /// sends what it appended in one round trip, claiming the row only if it is still so
    /// (D144). `None` when `f` refused or another writer had moved the row: nothing was
    /// written, and the write must be made the locked way.
    fn write_claimed(
        &self,
        org: &str,
        row: Locked,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Option<Result<Revision, StoreError>> {
        let log_head = LogHead {
            org: org.to_owned(),
            revision: row.0 as u64,
            mac: row.4.clone().unwrap_or_default(),
        };
        let mut state = PgTx {
            store: self,
            conn: None,
            org,
            base: row.0 as u64,
            key: &self.key,
            log_key: &self.log_key,
            locked_mac: log_head.mac.clone(),
            log_head,
            prefetched: None,
            head: (row.1 as u64, row.2.clone()),
            log: LogRows::default(),
            audit: AuditRows::default(),
        };
        if f(&mut state).is_err() {
            // Nothing was sent. Judged again under the lock, from what the store holds then: a
            // write refused from this node's head may be accepted from another node's.
            return None;
        }
        let PgTx {
            log_head,
            head,
            log,
            audit,
            ..
        } = state;
        let pending = self.pending(org, log_head, head, log, audit);
        let next = pending.row();
        self.claims.0.fetch_add(1, Ordering::Relaxed);
        match self.run(claimed_write(self.db(), pending, row)) {
            Ok(true) => {
                let revision = next.0 as u64;
                self.known(org, |known| known.row = Some(next));
                Some(Ok(revision))
            }
            Ok(false) => {
                self.claims.1.fetch_add(1, Ordering::Relaxed);
                self.known(org, |known| {
                    known.row = None;
                    known.claim_after = Some(std::time::Instant::now() + CLAIM_PAUSE);
                });
                None
            }
            Err(e) => {
                self.known(org, |known| known.row = None);
                Some(Err(e))
            }
        }
    }

    /// Writes sent in one round trip since the store was opened, and how many of them another
    /// writer had overtaken (each then made the locked way).
    #[must_use]
    pub fn claimed_writes(&self) -> (u64, u64) {
        (
            self.claims.0.load(Ordering::Relaxed),
            self.claims.1.load(Ordering::Relaxed),
        )
    }
}

/// Tells the listening nodes that `org` changed (created, deleted); `notice` is
/// [`Engine::notice`]'s.
async fn notify(client: &Object, notice: &str) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &notice])
        .await
        .map_err(db_err)?;
    Ok(())
}

async fn org_exists(client: &Object, org: &str) -> Result<(), StoreError> {
    let stmt = client
        .prepare_cached("SELECT 1 FROM organizations WHERE name = $1")
        .await
        .map_err(db_err)?;
    match client.query_opt(&stmt, &[&org]).await.map_err(db_err)? {
        Some(_) => Ok(()),
        None => Err(StoreError::UnknownOrganization(org.to_owned())),
    }
}

/// The audit entries of one write, column by column (for `UNNEST`).
#[derive(Default)]
struct AuditRows {
    seq: Vec<i64>,
    revision: Vec<i64>,
    at_ms: Vec<i64>,
    retention_days: Vec<i64>,
    action: Vec<String>,
    table: Vec<Option<String>>,
    record: Vec<Option<String>>,
    user: Vec<Option<String>>,
    impersonator: Vec<Option<String>>,
    detail: Vec<String>,
    hash: Vec<String>,
}

/// The log entries of one write, column by column.
#[derive(Default)]
struct LogRows {
    revision: Vec<i64>,
    at_ms: Vec<i64>,
    operation: Vec<String>,
    mac: Vec<String>,
}

/// A write in progress: what the closure appended, kept until it returns.
struct PgTx<'a> {
    store: &'a PostgresStore,
    /// The locked transaction's connection (taken while a read inside it runs on the store's
    /// runtime; `None` after such a read failed, which closed it).
    conn: Option<InTransaction>,
    org: &'a str,
    /// The revision committed before this write (held by the row lock).
    base: Revision,
    key: &'a AuditKey,
    log_key: &'a LogKey,
    /// The log's head, moved by each appended operation.
    log_head: LogHead,
    /// The last MAC of the log as the locked row holds it (its seal was checked): what a
    /// read of the rows up to `base` verifies against.
    locked_mac: String,
    /// The rows from a revision on, read together with the lock ([`Store::write_known`]).
    prefetched: Option<(Revision, Vec<tokio_postgres::Row>)>,
    head: (u64, String),
    log: LogRows,
    audit: AuditRows,
}

impl Transaction for PgTx<'_> {
    fn append_stored(
        &mut self,
        operation: StoredOperation,
        at_ms: i64,
    ) -> Result<Revision, StoreError> {
        let (text, mac) = self.log_head.append(self.log_key, at_ms, operation);
        self.log.revision.push(self.log_head.revision as i64);
        self.log.at_ms.push(at_ms);
        self.log.operation.push(text);
        self.log.mac.push(mac);
        Ok(self.log_head.revision)
    }

    fn append_audit(
        &mut self,
        record: &AuditRecord,
        at_ms: i64,
        retention_days: i64,
    ) -> Result<u64, StoreError> {
        let (seq, detail, hash) = self.key.next_entry(
            &mut self.head,
            self.log_head.revision,
            at_ms,
            retention_days,
            record,
        );
        let a = &mut self.audit;
        a.seq.push(seq as i64);
        a.revision.push(self.log_head.revision as i64);
        a.at_ms.push(at_ms);
        a.retention_days.push(retention_days);
        a.action.push(record.action.clone());
        a.table.push(record.table.clone());
        a.record.push(record.record.clone());
        a.user.push(record.user.clone());
        a.impersonator.push(record.impersonator.clone());
        a.detail.push(detail);
        a.hash.push(hash);
        Ok(seq)
    }

    fn revision(&self) -> Revision {
        self.log_head.revision
    }

    fn operations_after(&mut self, after: Revision) -> Result<Vec<LogEntry>, StoreError> {
        if after >= self.base {
            // Nothing committed after it (nor anything to read, when the organisation is being
            // created by this transaction).
            return Ok(Vec::new());
        }
        // Read in the locked transaction itself (one round trip): every revision up to `base`
        // was committed before the row lock was granted, so a statement of this read-committed
        // transaction sees them, and none can be added while the lock is held. Verified against
        // the head the locked row holds.
        let rows = match self.prefetched.take() {
            // Read with the lock, from the same revision (the row at it is the anchor).
            Some((known, rows)) if known == after => rows,
            _ => {
                let conn = self.conn.take().ok_or_else(|| {
                    StoreError::Database("the transaction's connection is gone".to_owned())
                })?;
                let (org, base) = (self.org.to_owned(), self.base as i64);
                let first = after.max(1) as i64;
                let (conn, rows) = self.store.run(async move {
                    let rows = read_rows(&conn, &org, first, base).await?;
                    Ok((conn, rows))
                })?;
                self.conn = Some(conn);
                rows
            }
        };
        let mac = self.locked_mac.clone();
        let seal = self.log_key.head_seal(self.org, self.base, &mac);
        let mut verifier = LogVerifier::new(
            self.log_key,
            self.org,
            after,
            self.base,
            Some(mac),
            Some(seal),
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let revision: i64 = col(row, 0)?;
            if revision as u64 > self.base {
                // Not reached: nothing commits past the locked revision while the lock is held.
                break;
            }
            let text: &str = col(row, 2)?;
            let mac: Option<&str> = col(row, 3)?;
            if let Some(entry) = verifier.row(revision as u64, col(row, 1)?, text, mac)? {
                out.push(entry);
            }
        }
        verifier.finish()?;
        Ok(out)
    }
}

/// The log rows of `org` from `first` to `last`, read in the open transaction `conn`.
async fn read_rows(
    conn: &InTransaction,
    org: &str,
    first: i64,
    last: i64,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let client = conn.client()?;
    let stmt = client.prepare_cached(READ_ROWS).await.map_err(db_err)?;
    client
        .query(&stmt, &[&org, &first, &last])
        .await
        .map_err(db_err)
}

/// What a write reads under its row lock: the revision, the audit head (seq, hash, seal), the
/// log head's MAC and seal.
type Locked = (i64, i64, String, String, Option<String>, Option<String>);

/// The log rows of an organisation between two revisions (both included).
const READ_ROWS: &str = "SELECT revision, at_ms, operation, mac FROM operations WHERE org = $1 AND revision >= $2 AND revision <= $3 ORDER BY revision";

/// The rows a write may read with its lock: those from `known` on.
type Prefetched = Option<Vec<tokio_postgres::Row>>;

/// Opens the write transaction and locks the organisation's row: its revision, audit head and
/// log head. `BEGIN` and the locking read are sent together ([`pipelined`], in that order: one
/// round trip), and with `known`, the read of the log rows from that revision on, which runs
/// once the lock is held (so it sees every committed revision, and none can follow).
async fn begin_write(
    db: &Db,
    org: &str,
    known: Option<Revision>,
) -> Result<(InTransaction, Locked, Prefetched), StoreError> {
    let conn = InTransaction(Some(db.client().await?));
    let client = conn.client()?;
    let stmt = client.prepare_cached(LOCK_ROW).await.map_err(db_err)?;
    let rows_stmt = match known {
        Some(_) => Some(client.prepare_cached(READ_ROWS).await.map_err(db_err)?),
        None => None,
    };
    let (mut row, mut rows) = (None, None);
    {
        let (stmt, row) = (&stmt, &mut row);
        let mut sent: Vec<Sent<'_>> = Vec::with_capacity(3);
        // Read committed, whatever the database's default: the locking read then sees the row
        // as the writer it waited for left it (a stricter level would fail with a
        // serialization error).
        sent.push(Box::pin(
            client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED"),
        ));
        sent.push(Box::pin(async move {
            *row = client.query_opt(stmt, &[&org]).await?;
            Ok(())
        }));
        if let (Some(known), Some(rows_stmt)) = (known, rows_stmt.as_ref()) {
            let rows = &mut rows;
            let first = known.max(1) as i64;
            sent.push(Box::pin(async move {
                *rows = Some(client.query(rows_stmt, &[&org, &first, &i64::MAX]).await?);
                Ok(())
            }));
        }
        pipelined(sent).await.map_err(db_err)?;
    }
    let Some(row) = row else {
        rollback(conn).await?;
        return Err(StoreError::UnknownOrganization(org.to_owned()));
    };
    let locked = locked(&row)?;
    Ok((conn, locked, rows))
}

/// The locking read of an organisation's row.
const LOCK_ROW: &str = "SELECT revision, audit_head_seq, audit_head_hash, audit_head_seal, log_head_mac, log_head_seal FROM organizations WHERE name = $1 FOR UPDATE";

fn locked(row: &tokio_postgres::Row) -> Result<Locked, StoreError> {
    Ok((
        col(row, 0)?,
        col(row, 1)?,
        col(row, 2)?,
        col(row, 3)?,
        col(row, 4)?,
        col(row, 5)?,
    ))
}

/// Takes a pooled connection and opens a transaction on it.
async fn begin(db: &Db) -> Result<InTransaction, StoreError> {
    let conn = InTransaction(Some(db.client().await?));
    // Read committed, whatever the database's default: the locking read then sees the row as
    // the writer it waited for left it (a stricter level would fail with a serialization error).
    conn.client()?
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(db_err)?;
    Ok(conn)
}

/// Locks the organisation's row in the open transaction `conn`: its revision, audit head and
/// log head. An unknown organisation ends the transaction.
async fn lock_row(conn: InTransaction, org: &str) -> Result<(InTransaction, Locked), StoreError> {
    let client = conn.client()?;
    let stmt = client.prepare_cached(LOCK_ROW).await.map_err(db_err)?;
    let Some(row) = client.query_opt(&stmt, &[&org]).await.map_err(db_err)? else {
        rollback(conn).await?;
        return Err(StoreError::UnknownOrganization(org.to_owned()));
    };
    let locked = locked(&row)?;
    Ok((conn, locked))
}

/// Opens a transaction that inserts the organisation's row (a name in use ends it: duplicate)
/// and locks it, as [`begin_write`] locks an existing one. A concurrent creation of the same
/// name waits on the first one's row, then finds it (or, if it rolled back, inserts its own).
async fn begin_create(
    db: &Db,
    name: &str,
    at_ms: i64,
    audit_seal: &str,
    log_seal: &str,
) -> Result<(InTransaction, Locked), StoreError> {
    let conn = begin(db).await?;
    let inserted = conn
        .client()?
        .execute(
            "INSERT INTO organizations (name, created_ms, audit_head_hash, audit_head_seal, audit_anchor_hash, log_head_mac, log_head_seal)
             VALUES ($1, $2, $3, $4, $3, $3, $5) ON CONFLICT (name) DO NOTHING",
            &[&name, &at_ms, &GENESIS, &audit_seal, &log_seal],
        )
        .await
        .map_err(db_err)?;
    if inserted == 0 {
        rollback(conn).await?;
        return Err(StoreError::DuplicateOrganization(name.to_owned()));
    }
    lock_row(conn, name).await
}

/// What a finished closure leaves to write.
struct Pending {
    org: String,
    /// What the listening nodes are told at commit ([`Engine::notice`]).
    notice: String,
    log: LogRows,
    audit: AuditRows,
    revision: i64,
    head_seq: i64,
    head_hash: String,
    head_seal: String,
    log_mac: String,
    log_seal: String,
}

/// Statements of one connection sent without waiting for each other's answers.
type Sent<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a>>;

/// Runs statements of one connection pipelined: each is sent when it is first polled, and they
/// are polled in order, so the server receives and runs them in that order (tokio-postgres
/// sends a request before its first wait; every statement here is prepared, so none waits for a
/// preparation first). Waits for every answer; the first error in order, if any. After an
/// error the server refuses the statements after it in the transaction, and a `COMMIT` among
/// them rolls back.
async fn pipelined(mut sent: Vec<Sent<'_>>) -> Result<(), tokio_postgres::Error> {
    let mut results: Vec<Option<Result<(), tokio_postgres::Error>>> =
        sent.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, result) in sent.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => *result = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

impl Pending {
    /// The organisation's row as this write leaves it.
    fn row(&self) -> Locked {
        (
            self.revision,
            self.head_seq,
            self.head_hash.clone(),
            self.head_seal.clone(),
            Some(self.log_mac.clone()),
            Some(self.log_seal.clone()),
        )
    }
}

/// Sends the buffered rows, moves the organisation's row from `locked` (as read under its lock)
/// to the write's head, and commits, in one round trip: [`CLAIMED_WRITE`] and `COMMIT`,
/// pipelined. Any error fails the write, and the transaction is then rolled back (its
/// connection closed).
async fn finish_write(conn: InTransaction, p: Pending, locked: Locked) -> Result<(), StoreError> {
    let client = conn.client()?;
    let stmt = client.prepare_cached(CLAIMED_WRITE).await.map_err(db_err)?;
    let mut claimed = 0;
    {
        let (stmt, claimed, p, locked) = (&stmt, &mut claimed, &p, &locked);
        let sent: Vec<Sent<'_>> = vec![
            Box::pin(async move {
                *claimed = write_rows(client, stmt, p, locked).await?;
                Ok(())
            }),
            Box::pin(client.batch_execute("COMMIT")),
        ];
        pipelined(sent).await.map_err(db_err)?;
    }
    conn.release();
    if claimed != 1 {
        // Nothing was written: the row is locked by this transaction.
        return Err(StoreError::Corrupt(format!(
            "organization `{}`: its row changed under this write's lock",
            p.org
        )));
    }
    Ok(())
}

/// A write from `expected`, the organisation's row as this store last committed it, in one
/// round trip and one statement, its own transaction (D144): the row moved to the write's head
/// only if it is still exactly `expected`, and the rows inserted and the listening nodes told
/// only if it was ([`CLAIMED_WRITE`]). `false` when another writer had moved the row: nothing
/// was written.
async fn claimed_write(db: Arc<Db>, p: Pending, expected: Locked) -> Result<bool, StoreError> {
    let client = db.client().await?;
    let stmt = client.prepare_cached(CLAIMED_WRITE).await.map_err(db_err)?;
    match write_rows(&client, &stmt, &p, &expected).await {
        Ok(rows) => Ok(rows == 1),
        // A stricter isolation level than the database's default of read committed fails the
        // claim that waited for another writer instead of finding the row moved: the same.
        Err(e) if sqlstate(&e) == Some("40001") => Ok(false),
        Err(e) => Err(db_err(e)),
    }
}

/// Runs [`CLAIMED_WRITE`] (prepared as `stmt`) for `p` from `expected`: 1 when the row was
/// claimed and everything written, 0 when it had moved and nothing was.
async fn write_rows(
    client: &Object,
    stmt: &tokio_postgres::Statement,
    p: &Pending,
    expected: &Locked,
) -> Result<u64, tokio_postgres::Error> {
    let (l, a) = (&p.log, &p.audit);
    let (was, was_seq, was_hash, was_seal, was_mac, was_log_seal) = expected;
    client
        .execute(
            stmt,
            &[
                &p.org,
                &p.revision,
                &p.head_seq,
                &p.head_hash,
                &p.head_seal,
                &p.log_mac,
                &p.log_seal,
                was,
                was_seq,
                was_hash,
                was_seal,
                was_mac,
                was_log_seal,
                &l.revision,
                &l.at_ms,
                &l.operation,
                &l.mac,
                &a.seq,
                &a.revision,
                &a.at_ms,
                &a.retention_days,
                &a.action,
                &a.table,
                &a.record,
                &a.user,
                &a.impersonator,
                &a.detail,
                &a.hash,
                &CHANNEL,
                &p.notice,
            ],
        )
        .await
}

/// A write's statement (D144): the organisation's row moved to the write's head (`$2`–`$7`)
/// only if it holds exactly what the writer read under its lock or last committed itself
/// (`$8`–`$13`), and only then the log rows (`$14`–`$17`) and audit rows (`$18`–`$28`)
/// inserted and the listening nodes told (`$29`, `$30`; delivered at commit). One row when the
/// row was claimed, none when another writer had moved it (and nothing was written).
const CLAIMED_WRITE: &str = "WITH claimed AS (
    UPDATE organizations SET revision = $2, audit_head_seq = $3, audit_head_hash = $4, audit_head_seal = $5, log_head_mac = $6, log_head_seal = $7
    WHERE name = $1 AND revision = $8 AND audit_head_seq = $9 AND audit_head_hash = $10 AND audit_head_seal = $11
        AND log_head_mac IS NOT DISTINCT FROM $12 AND log_head_seal IS NOT DISTINCT FROM $13
    RETURNING 1
), logged AS (
    INSERT INTO operations (org, revision, at_ms, operation, mac)
    SELECT $1::text, o.* FROM UNNEST($14::bigint[], $15::bigint[], $16::text[], $17::text[]) AS o
    WHERE EXISTS (SELECT 1 FROM claimed)
), audited AS (
    INSERT INTO audit (org, seq, revision, at_ms, retention_days, action, table_name, record, user_name, impersonator, detail, hash)
    SELECT $1::text, a.* FROM UNNEST($18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[], $22::text[], $23::text[], $24::text[], $25::text[], $26::text[], $27::text[], $28::text[]) AS a
    WHERE EXISTS (SELECT 1 FROM claimed)
)
SELECT pg_notify($29, $30) FROM claimed";

async fn rollback(conn: InTransaction) -> Result<(), StoreError> {
    conn.client()?
        .batch_execute("ROLLBACK")
        .await
        .map_err(db_err)?;
    conn.release();
    Ok(())
}

fn read_entry(row: &tokio_postgres::Row) -> Result<(AuditEntry, String), StoreError> {
    Ok((
        AuditEntry {
            seq: col::<i64>(row, 0)? as u64,
            revision: col::<i64>(row, 1)? as u64,
            at_ms: col(row, 2)?,
            retention_days: col(row, 3)?,
            record: AuditRecord {
                action: col(row, 4)?,
                table: col(row, 5)?,
                record: col(row, 6)?,
                user: col(row, 7)?,
                impersonator: col(row, 8)?,
                detail: serde_json::Value::Null,
                detail_text: None,
            },
            hash: col(row, 9)?,
        },
        col(row, 10)?,
    ))
}

fn read_key(row: &tokio_postgres::Row) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: col(row, 0)?,
        organization: col(row, 1)?,
        user: col(row, 2)?,
        key_hash: col(row, 3)?,
        created_ms: col(row, 4)?,
        revoked_ms: col(row, 5)?,
    })
}

/// An organisation's log head as stored: revision, last MAC, seal.
type LogHeadRow = (i64, Option<String>, Option<String>);

/// What `verify_audit` reads in one snapshot: the anchor, the head, and every entry.
type ChainRows = (
    (i64, String, String),
    (i64, String, String),
    Vec<(AuditEntry, String)>,
);

impl Store for PostgresStore {
    fn create_organization(
        &self,
        name: &str,
        at_ms: i64,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        check_org_name(name)?;
        let (db, owned) = (self.db(), name.to_owned());
        let seal = self.key.seal(Seal::Head, name, 0, GENESIS);
        let log_seal = self.log_key.head_seal(name, 0, GENESIS);
        let (conn, locked) =
            self.run(async move { begin_create(&db, &owned, at_ms, &seal, &log_seal).await })?;
        self.write_locked(name, conn, locked, None, f)
    }

    fn delete_organization(&self, name: &str) -> Result<(), StoreError> {
        self.known(name, |known| known.row = None);
        let (db, notice, name) = (self.db(), self.engine.notice(name), name.to_owned());
        self.run(async move {
            let conn = begin(&db).await?;
            let client = conn.client()?;
            // The row first: it waits for a write holding it, and stops any write after.
            let n = client
                .execute("DELETE FROM organizations WHERE name = $1", &[&name])
                .await
                .map_err(db_err)?;
            if n == 0 {
                rollback(conn).await?;
                return Err(StoreError::UnknownOrganization(name));
            }
            for table in ["operations", "audit", "write_leases"] {
                client
                    .execute(&format!("DELETE FROM {table} WHERE org = $1"), &[&name])
                    .await
                    .map_err(db_err)?;
            }
            notify(client, &notice).await?;
            client.batch_execute("COMMIT").await.map_err(db_err)?;
            conn.release();
            Ok(())
        })
    }

    fn organizations(&self) -> Result<Vec<(String, Revision)>, StoreError> {
        let db = self.db();
        self.run(async move {
            let client = db.client().await?;
            let stmt = client
                .prepare_cached("SELECT name, revision FROM organizations ORDER BY name")
                .await
                .map_err(db_err)?;
            let rows = client.query(&stmt, &[]).await.map_err(db_err)?;
            rows.iter()
                .map(|r| Ok((col(r, 0)?, col::<i64>(r, 1)? as u64)))
                .collect()
        })
    }

    fn write(
        &self,
        org: &str,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        let (db, name) = (self.db(), org.to_owned());
        let (conn, locked, _) = self.run(async move { begin_write(&db, &name, None).await })?;
        self.write_locked(org, conn, locked, None, f)
    }

    fn write_known(
        &self,
        org: &str,
        known: Revision,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        if let Some(row) = self.claimable(org, known)
            && let Some(written) = self.write_claimed(org, row, f)
        {
            return written;
        }
        let (db, name) = (self.db(), org.to_owned());
        let (conn, locked, rows) =
            self.run(async move { begin_write(&db, &name, Some(known)).await })?;
        self.write_locked(org, conn, locked, rows.map(|r| (known, r)), f)
    }

    fn revision(&self, org: &str) -> Result<Revision, StoreError> {
        let (db, org) = (self.db(), org.to_owned());
        self.run(async move {
            let client = db.client().await?;
            let stmt = client
                .prepare_cached("SELECT revision FROM organizations WHERE name = $1")
                .await
                .map_err(db_err)?;
            match client.query_opt(&stmt, &[&org]).await.map_err(db_err)? {
                Some(row) => Ok(col::<i64>(&row, 0)? as u64),
                None => Err(StoreError::UnknownOrganization(org)),
            }
        })
    }

    fn put_checkpoint(
        &self,
        org: &str,
        revision: Revision,
        format: u32,
        bytes: &[u8],
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let (db, name, key) = (self.db(), org.to_owned(), self.log_key.clone());
        let bytes = bytes.to_vec();
        self.run(async move {
            let mut client = db.client().await?;
            let tx = client.transaction().await.map_err(db_err)?;
            if tx
                .query_opt("SELECT 1 FROM organizations WHERE name = $1", &[&name])
                .await
                .map_err(db_err)?
                .is_none()
            {
                return Err(StoreError::UnknownOrganization(name));
            }
            let Some(log_mac) = pg_row_mac(&tx, &name, revision).await? else {
                return Err(StoreError::Aborted(format!(
                    "organization `{name}` has no log row at revision {revision} to take a checkpoint at"
                )));
            };
            let raw = cp::sealed(&key, &name, revision, format, at_ms, &log_mac, &bytes);
            let inserted = tx
                .execute(
                    "INSERT INTO checkpoints (org, revision, format, at_ms, length, log_mac, mac) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                    &[
                        &name,
                        &(revision as i64),
                        &i64::from(raw.format),
                        &raw.at_ms,
                        &(raw.length as i64),
                        &raw.log_mac,
                        &raw.mac,
                    ],
                )
                .await
                .map_err(db_err)?;
            if inserted == 0 {
                return Ok(false);
            }
            for (seq, chunk) in &raw.chunks {
                tx.execute(
                    "INSERT INTO checkpoint_chunks (org, revision, seq, bytes) VALUES ($1, $2, $3, $4)",
                    &[&name, &(revision as i64), &i64::from(*seq), chunk],
                )
                .await
                .map_err(db_err)?;
            }
            tx.execute(
                "DELETE FROM checkpoints WHERE org = $1 AND revision NOT IN (SELECT revision FROM checkpoints WHERE org = $1 ORDER BY revision DESC LIMIT $2)",
                &[&name, &(KEEP_CHECKPOINTS as i64)],
            )
            .await
            .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
    }

    fn checkpoints(&self, org: &str) -> Result<Vec<CheckpointInfo>, StoreError> {
        let (db, name) = (self.db(), org.to_owned());
        self.run(async move {
            let client = db.client().await?;
            if client
                .query_opt("SELECT 1 FROM organizations WHERE name = $1", &[&name])
                .await
                .map_err(db_err)?
                .is_none()
            {
                return Err(StoreError::UnknownOrganization(name));
            }
            let rows = client
                .query(
                    "SELECT revision, format, length, at_ms FROM checkpoints WHERE org = $1 ORDER BY revision DESC",
                    &[&name],
                )
                .await
                .map_err(db_err)?;
            rows.iter()
                .map(|r| {
                    Ok(CheckpointInfo {
                        revision: col::<i64>(r, 0)? as u64,
                        format: u32::try_from(col::<i64>(r, 1)?).unwrap_or(u32::MAX),
                        length: col::<i64>(r, 2)? as u64,
                        at_ms: col(r, 3)?,
                    })
                })
                .collect()
        })
    }

    fn read_checkpoint(
        &self,
        org: &str,
        revision: Revision,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (db, name) = (self.db(), org.to_owned());
        let found = self.run(async move {
            let mut client = db.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(db_err)?;
            if tx
                .query_opt("SELECT 1 FROM organizations WHERE name = $1", &[&name])
                .await
                .map_err(db_err)?
                .is_none()
            {
                return Err(StoreError::UnknownOrganization(name));
            }
            let Some(row) = tx
                .query_opt(
                    "SELECT format, at_ms, length, log_mac, mac FROM checkpoints WHERE org = $1 AND revision = $2",
                    &[&name, &(revision as i64)],
                )
                .await
                .map_err(db_err)?
            else {
                return Ok(None);
            };
            let chunks = tx
                .query(
                    "SELECT seq, bytes FROM checkpoint_chunks WHERE org = $1 AND revision = $2 ORDER BY seq",
                    &[&name, &(revision as i64)],
                )
                .await
                .map_err(db_err)?;
            let chunks = chunks
                .iter()
                .map(|r| {
                    Ok((
                        u32::try_from(col::<i64>(r, 0)?).unwrap_or(u32::MAX),
                        col::<Vec<u8>>(r, 1)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let raw = RawCheckpoint {
                revision,
                format: u32::try_from(col::<i64>(&row, 0)?).unwrap_or(u32::MAX),
                at_ms: col(&row, 1)?,
                length: u64::try_from(col::<i64>(&row, 2)?).unwrap_or(u64::MAX),
                log_mac: col(&row, 3)?,
                mac: col(&row, 4)?,
                chunks,
            };
            let row_mac = pg_row_mac(&tx, &name, revision).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(Some((raw, row_mac)))
        })?;
        match found {
            None => Ok(None),
            Some((raw, row_mac)) => {
                cp::verified(&self.log_key, org, raw, row_mac.as_deref()).map(Some)
            }
        }
    }

    fn operations(&self, org: &str, after: Revision) -> Result<Vec<LogEntry>, StoreError> {
        let (db, name) = (self.db(), org.to_owned());
        let first = after.max(1) as i64;
        // One snapshot: a write committing between reading the head and the rows would
        // otherwise look like rows added past the head.
        // Four statements in one round trip (pipelined, prepared once per connection).
        let (head, rows): (LogHeadRow, Vec<tokio_postgres::Row>) = self.run(async move {
            let conn = InTransaction(Some(db.client().await?));
            let client = conn.client()?;
            let head_stmt = client
                .prepare_cached(
                    "SELECT revision, log_head_mac, log_head_seal FROM organizations WHERE name = $1",
                )
                .await
                .map_err(db_err)?;
            let rows_stmt = client.prepare_cached(READ_ROWS).await.map_err(db_err)?;
            let (mut head, mut rows) = (None, Vec::new());
            {
                let (head, rows, name) = (&mut head, &mut rows, name.as_str());
                let (head_stmt, rows_stmt) = (&head_stmt, &rows_stmt);
                let mut sent: Vec<Sent<'_>> = Vec::with_capacity(4);
                sent.push(Box::pin(client.batch_execute(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                )));
                sent.push(Box::pin(async move {
                    *head = client.query_opt(head_stmt, &[&name]).await?;
                    Ok(())
                }));
                sent.push(Box::pin(async move {
                    *rows = client
                        .query(rows_stmt, &[&name, &first, &i64::MAX])
                        .await?;
                    Ok(())
                }));
                sent.push(Box::pin(client.batch_execute("COMMIT")));
                pipelined(sent).await.map_err(db_err)?;
            }
            conn.release();
            let head = head.ok_or_else(|| StoreError::UnknownOrganization(name.clone()))?;
            let head = (col(&head, 0)?, col(&head, 1)?, col(&head, 2)?);
            Ok((head, rows))
        })?;
        let mut verifier =
            LogVerifier::new(&self.log_key, org, after, head.0 as u64, head.1, head.2)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let revision: i64 = col(row, 0)?;
            let text: &str = col(row, 2)?;
            let mac: Option<&str> = col(row, 3)?;
            if let Some(entry) = verifier.row(revision as u64, col(row, 1)?, text, mac)? {
                out.push(entry);
            }
        }
        verifier.finish()?;
        Ok(out)
    }

    fn audit(&self, org: &str, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let (db, org, q) = (self.db(), org.to_owned(), q.clone());
        let rows = self.run(async move {
            let client = db.client().await?;
            org_exists(&client, &org).await?;
            let (filter, values) = crate::audit_where(&org, &q, |n| format!("${n}"));
            let stmt = client
                .prepare_cached(&format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE {filter}"))
                .await
                .map_err(db_err)?;
            let values: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = values
                .into_iter()
                .map(|v| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
                    match v {
                        crate::AuditParam::Text(t) => Box::new(t.to_owned()),
                        crate::AuditParam::Int(i) => Box::new(i),
                    }
                })
                .collect();
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
                .iter()
                .map(|v| v.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            let rows = client.query(&stmt, &refs).await.map_err(db_err)?;
            rows.iter().map(read_entry).collect::<Result<Vec<_>, _>>()
        })?;
        rows.into_iter()
            .map(|(mut e, detail)| {
                e.record.detail = serde_json::from_str(&detail).map_err(corrupt)?;
                Ok(e)
            })
            .collect()
    }

    fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.key.derive(purpose)
    }

    fn verify_audit(&self, org: &str) -> Result<Verification, StoreError> {
        let (db, name) = (self.db(), org.to_owned());
        // One snapshot: a write committing between reading the head and the entries would
        // otherwise look like tampering.
        let (anchor, head, rows): ChainRows = self.run(async move {
            let mut client = db.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(db_err)?;
            let row = tx
                .query_opt(
                    "SELECT audit_head_seq, audit_head_hash, audit_head_seal, audit_anchor_seq, audit_anchor_hash, audit_anchor_seal FROM organizations WHERE name = $1",
                    &[&name],
                )
                .await
                .map_err(db_err)?
                .ok_or_else(|| StoreError::UnknownOrganization(name.clone()))?;
            let head = (col(&row, 0)?, col(&row, 1)?, col(&row, 2)?);
            let anchor = (col(&row, 3)?, col(&row, 4)?, col(&row, 5)?);
            let rows = tx
                .query(
                    &format!("SELECT {ENTRY_COLUMNS} FROM audit WHERE org = $1 ORDER BY seq"),
                    &[&name],
                )
                .await
                .map_err(db_err)?;
            let entries = rows.iter().map(read_entry).collect::<Result<Vec<_>, _>>()?;
            tx.commit().await.map_err(db_err)?;
            Ok((anchor, head, entries))
        })?;
        let mut entries = Vec::with_capacity(rows.len());
        for (mut e, detail) in rows {
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
        Ok(chain::verify(
            &self.key,
            org,
            (anchor.0 as u64, &anchor.1, &anchor.2),
            &entries,
            (head.0 as u64, &head.1, &head.2),
        ))
    }

    fn expire_audit(&self, org: &str, now_ms: i64) -> Result<u64, StoreError> {
        let (db, org) = (self.db(), org.to_owned());
        let key = self.key.clone();
        self.run(async move {
            let mut client = db.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
                .start()
                .await
                .map_err(db_err)?;
            // The same lock as writes: the chain does not move while its start is cut.
            let anchor = tx
                .query_opt(
                    "SELECT audit_anchor_seq, audit_anchor_hash, audit_anchor_seal FROM organizations WHERE name = $1 FOR UPDATE",
                    &[&org],
                )
                .await
                .map_err(db_err)?
                .ok_or_else(|| StoreError::UnknownOrganization(org.clone()))?;
            let (anchor_seq, anchor_hash, anchor_seal): (i64, String, String) =
                (col(&anchor, 0)?, col(&anchor, 1)?, col(&anchor, 2)?);
            key.check_seal(
                Seal::Anchor,
                &org,
                (anchor_seq as u64, &anchor_hash, &anchor_seal),
            )?;
            // The oldest entries, a page at a time, up to the first one still retained.
            let stmt = tx
                .prepare(
                    "SELECT seq, at_ms, retention_days, hash FROM audit WHERE org = $1 ORDER BY seq",
                )
                .await
                .map_err(db_err)?;
            let portal = tx.bind(&stmt, &[&org]).await.map_err(db_err)?;
            let mut last: Option<(i64, String)> = None;
            'pages: loop {
                let rows = tx.query_portal(&portal, 1_000).await.map_err(db_err)?;
                for row in &rows {
                    let (seq, at, days): (i64, i64, i64) =
                        (col(row, 0)?, col(row, 1)?, col(row, 2)?);
                    if !expired(at, days, now_ms) {
                        break 'pages;
                    }
                    last = Some((seq, col(row, 3)?));
                }
                if rows.len() < 1_000 {
                    break;
                }
            }
            let Some((seq, hash)) = last else {
                tx.commit().await.map_err(db_err)?;
                return Ok(0);
            };
            let n = tx
                .execute(
                    "DELETE FROM audit WHERE org = $1 AND seq <= $2",
                    &[&org, &seq],
                )
                .await
                .map_err(db_err)?;
            let seal = key.seal(Seal::Anchor, &org, seq as u64, &hash);
            tx.execute(
                "UPDATE organizations SET audit_anchor_seq = $2, audit_anchor_hash = $3, audit_anchor_seal = $4 WHERE name = $1",
                &[&org, &seq, &hash, &seal],
            )
            .await
            .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(n)
        })
    }

    fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let (db, key) = (self.db(), key.clone());
        self.run(async move {
            let client = db.client().await?;
            org_exists(&client, &key.organization).await?;
            let inserted = client
                .execute(
                    &format!(
                        "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
                    ),
                    &[
                        &key.id,
                        &key.organization,
                        &key.user,
                        &key.key_hash,
                        &key.created_ms,
                        &key.revoked_ms,
                    ],
                )
                .await;
            match inserted {
                Ok(_) => Ok(()),
                // foreign_key_violation: the organisation went in the meantime.
                Err(e) if sqlstate(&e) == Some("23503") => {
                    Err(StoreError::UnknownOrganization(key.organization))
                }
                Err(e) => Err(db_err(e)),
            }
        })
    }

    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let (db, hash) = (self.db(), key_hash.to_owned());
        self.run(async move {
            let client = db.client().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
                ))
                .await
                .map_err(db_err)?;
            let row = client.query_opt(&stmt, &[&hash]).await.map_err(db_err)?;
            row.as_ref().map(read_key).transpose()
        })
    }

    fn api_keys(&self, org: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let (db, org) = (self.db(), org.to_owned());
        self.run(async move {
            let client = db.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org = $1 ORDER BY created_ms, id"
                    ),
                    &[&org],
                )
                .await
                .map_err(db_err)?;
            rows.iter().map(read_key).collect()
        })
    }

    fn change_seen(&self) -> u64 {
        self.engine.changes.get()
    }

    fn wait_for_change(&self, seen: u64, timeout: Duration) -> u64 {
        self.engine.changes.wait(seen, timeout)
    }

    fn write_leases(
        &self,
        orgs: &[String],
        claim: Option<&LeaseClaim<'_>>,
    ) -> Result<Vec<WriteLease>, StoreError> {
        if orgs.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.key.derive("write leases");
        let mac = move |org: &str, node: &str, url: &str| {
            chain::keyed_mac(
                key,
                &[
                    org.as_bytes(),
                    b"\n",
                    node.as_bytes(),
                    b"\n",
                    url.as_bytes(),
                ],
            )
        };
        let db = self.db();
        let orgs = orgs.to_vec();
        let claim = claim.map(|c| {
            let macs: Vec<String> = orgs.iter().map(|o| mac(o, c.node, c.url)).collect();
            (c.node.to_owned(), c.url.to_owned(), c.ttl_ms, macs)
        });
        let rows = self.run(async move {
            let client = db.client().await?;
            let rows = match &claim {
                // One statement: take or renew what may be taken, then answer every lease of
                // `orgs` that runs still (the rows this statement changed as it changed them,
                // the others as they were).
                Some((node, url, ttl, macs)) => {
                    let sql = format!(
                        "WITH now AS (SELECT {DB_NOW_MS} AS ms),
                         claimed AS (
                           INSERT INTO write_leases (org, node, url, mac, expires_ms)
                           SELECT o, $2, $3, m, (SELECT ms FROM now) + $4
                             FROM unnest($1::text[], $5::text[]) AS t(o, m)
                           ON CONFLICT (org) DO UPDATE
                             SET node = EXCLUDED.node, url = EXCLUDED.url, mac = EXCLUDED.mac,
                                 expires_ms = EXCLUDED.expires_ms
                             WHERE write_leases.expires_ms < (SELECT ms FROM now)
                                OR write_leases.node = EXCLUDED.node
                           RETURNING org, node, url, mac, expires_ms)
                         SELECT org, node, url, mac, expires_ms - (SELECT ms FROM now) FROM claimed
                         UNION ALL
                         SELECT l.org, l.node, l.url, l.mac, l.expires_ms - (SELECT ms FROM now)
                           FROM write_leases l
                          WHERE l.org = ANY($1) AND l.expires_ms > (SELECT ms FROM now)
                            AND NOT EXISTS (SELECT 1 FROM claimed c WHERE c.org = l.org)"
                    );
                    let stmt = client.prepare_cached(&sql).await.map_err(db_err)?;
                    client
                        .query(&stmt, &[&orgs, node, url, ttl, macs])
                        .await
                        .map_err(db_err)?
                }
                None => {
                    let sql = format!(
                        "SELECT org, node, url, mac, expires_ms - {DB_NOW_MS} FROM write_leases
                          WHERE org = ANY($1) AND expires_ms > {DB_NOW_MS}"
                    );
                    let stmt = client.prepare_cached(&sql).await.map_err(db_err)?;
                    client.query(&stmt, &[&orgs]).await.map_err(db_err)?
                }
            };
            rows.iter()
                .map(|r| {
                    Ok((
                        WriteLease {
                            organization: col(r, 0)?,
                            node: col(r, 1)?,
                            url: col(r, 2)?,
                            remaining_ms: col(r, 4)?,
                        },
                        col::<String>(r, 3)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })?;
        // A lease whose MAC does not hold was not written by a node: it is not followed.
        Ok(rows
            .into_iter()
            .filter_map(|(lease, stored)| {
                let expected = mac(&lease.organization, &lease.node, &lease.url);
                if chain::constant_time_eq(expected.as_bytes(), stored.as_bytes()) {
                    Some(lease)
                } else {
                    tracing::warn!(org = %lease.organization, url = %lease.url, "a write lease that no node wrote (its MAC does not hold): ignored");
                    None
                }
            })
            .collect())
    }

    fn release_write_leases(&self, node: &str) -> Result<(), StoreError> {
        let (db, node) = (self.db(), node.to_owned());
        self.run(async move {
            let client = db.client().await?;
            client
                .execute("DELETE FROM write_leases WHERE node = $1", &[&node])
                .await
                .map_err(db_err)?;
            Ok(())
        })
    }

    fn revoke_api_key(&self, org: &str, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let (db, org, id) = (self.db(), org.to_owned(), id.to_owned());
        self.run(async move {
            let client = db.client().await?;
            let n = client
                .execute(
                    "UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, $3) WHERE org = $1 AND id = $2",
                    &[&org, &id, &at_ms],
                )
                .await
                .map_err(db_err)?;
            Ok(n > 0)
        })
    }
}

/// Test support: scratch databases on a PostgreSQL server, and plain SQL against one (as an
/// attacker with write access to the database would, for the tamper tests).
#[doc(hidden)]
pub mod testing {
    use super::{StoreError, db_err, describe, pg_config, redact_database_url};

    /// Runs SQL statements on the database at `url`, on a thread of its own (so it works from
    /// any context).
    pub fn execute(url: &str, sql: &str) -> Result<(), StoreError> {
        let config = pg_config(url)?;
        let target = redact_database_url(url);
        let sql = sql.to_owned();
        std::thread::scope(|s| {
            s.spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                runtime.block_on(async move {
                    let (client, connection) =
                        config.connect(tokio_postgres::NoTls).await.map_err(|e| {
                            StoreError::Unreachable(format!(
                                "cannot connect to {target}: {}",
                                describe(&e)
                            ))
                        })?;
                    let driver = tokio::spawn(connection);
                    let done = client.batch_execute(&sql).await.map_err(db_err);
                    drop(client);
                    let _ = driver.await;
                    done
                })
            })
            .join()
            .unwrap_or_else(|_| Err(StoreError::Database("the SQL thread panicked".to_owned())))
        })
    }

    /// The PostgreSQL server the tests use: `STRATA_TEST_POSTGRES` (a URL such as
    /// `postgresql://postgres@127.0.0.1:5432/postgres`); `None` when it is not set, which is an
    /// error under CI (`CI` set), where the PostgreSQL tests must run.
    pub fn server_from_env() -> Result<Option<String>, String> {
        match std::env::var("STRATA_TEST_POSTGRES") {
            Ok(url) if !url.trim().is_empty() => Ok(Some(url.trim().to_owned())),
            _ if std::env::var_os("CI").is_some() => Err(
                "CI is set but STRATA_TEST_POSTGRES is not: .ci/run starts a PostgreSQL server and sets it"
                    .to_owned(),
            ),
            _ => Ok(None),
        }
    }

    /// The server for the test named `test`, or `None` after a note that it is skipped; panics
    /// under CI without a server.
    #[allow(
        clippy::panic,
        reason = "a test helper: failing the test is its purpose"
    )]
    pub fn server_or_skip(test: &str) -> Option<String> {
        match server_from_env() {
            Ok(Some(url)) => Some(url),
            Ok(None) => {
                eprintln!("note: {test}: skipped, STRATA_TEST_POSTGRES is not set");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// A database created for one test on the server of `admin_url`, dropped with it.
    #[derive(Debug)]
    pub struct ScratchDatabase {
        admin_url: String,
        name: String,
        url: String,
    }

    impl ScratchDatabase {
        /// Creates a uniquely named database.
        pub fn create(admin_url: &str) -> Result<Self, StoreError> {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let name = format!(
                "strata_test_{}_{}_{nanos}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            execute(admin_url, &format!("CREATE DATABASE {name}"))?;
            Ok(ScratchDatabase {
                url: with_dbname(admin_url, &name)?,
                admin_url: admin_url.to_owned(),
                name,
            })
        }

        /// Its URL.
        #[must_use]
        pub fn url(&self) -> &str {
            &self.url
        }
    }

    impl Drop for ScratchDatabase {
        fn drop(&mut self) {
            let _ = execute(
                &self.admin_url,
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            );
        }
    }

    /// The URL with another database name (the path), keeping its parameters.
    fn with_dbname(url: &str, name: &str) -> Result<String, StoreError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| StoreError::BadUrl(redact_database_url(url)))?;
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let query = tail.split_once('?').map(|(_, q)| q);
        Ok(match query {
            Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
            None => format!("{scheme}://{authority}/{name}"),
        })
    }
}
