//! Durable storage of organisations.
//!
//! The source of truth of an organisation is its **operation log**: every accepted
//! [`Operation`], in order, each with its revision. The engine is deterministic, so applying the
//! log to an empty organisation gives back exactly the state that was acknowledged; the same
//! log is the changelog that other nodes follow. Each row carries an HMAC-SHA-256 chained to
//! the previous row's, under a key kept outside the database, and the organisation keeps a
//! sealed head: every read of the log checks the rows it returns ([`StoreError::CorruptLog`]).
//! Beside it: the **audit** trail, chained the same way so that an edited, inserted or deleted
//! entry is detected, and **API keys**, stored hashed.
//!
//! One trait, [`Store`], with closure-scoped write transactions; three backends,
//! [`MemoryStore`], [`SqliteStore`] and [`PostgresStore`], held to one conformance suite
//! (`tests/conformance.rs`).

mod chain;
mod checkpoint;
mod memory;
mod postgres;
mod sqlite;

use serde::{Deserialize, Serialize};
use strata_ops::Operation;

pub use chain::{AuditKey, ChainedRows, Chainer};
#[doc(hidden)]
pub use checkpoint::RawCheckpoint;
pub use checkpoint::{CheckpointInfo, KEEP_CHECKPOINTS};
pub use memory::MemoryStore;
#[doc(hidden)]
pub use postgres::testing as postgres_testing;
pub use postgres::{PostgresStore, is_postgres_url, redact_database_url};
pub use sqlite::{AUDIT_INDEX_BATCH, SqliteStore};

/// The position of an operation in its organisation's log; 0 = empty.
pub type Revision = u64;

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No organisation of this name.
    #[error("unknown organization `{0}`")]
    UnknownOrganization(String),
    /// An organisation of this name exists already.
    #[error("organization `{0}` exists already")]
    DuplicateOrganization(String),
    /// A name the store refuses.
    #[error("invalid name `{0}`: use 1 to 64 letters, digits, `-` or `_`")]
    BadName(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(String),
    /// The disk (or the database's space) is full: nothing was written; writes succeed again
    /// once space is freed. Reads keep working.
    #[error("storage full: {0}")]
    Full(String),
    /// A stored value could not be read back.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The caller's closure refused to go on; nothing was written.
    #[error("{0}")]
    Aborted(String),
    /// A database URL that cannot be used.
    #[error("bad database URL: {0}")]
    BadUrl(String),
    /// The database server cannot be reached (refused, timed out, authentication failed,
    /// no such database, connection lost).
    #[error("database unreachable: {0}")]
    Unreachable(String),
    /// The audit key is missing, unreadable, or not the key the database's chain was started
    /// with.
    #[error("audit key: {0}")]
    AuditKey(String),
    /// An organisation's operation log fails verification: a row was edited, inserted,
    /// deleted, or the log was cut or extended past its sealed head. The organisation must not
    /// be served from it.
    #[error(
        "organization `{organization}`: the operation log is corrupt at revision {revision} ({damage}): {detail}"
    )]
    CorruptLog {
        /// The organisation.
        organization: String,
        /// The first revision that does not verify (or is missing).
        revision: Revision,
        /// What kind of damage.
        damage: LogDamage,
        /// What is wrong, in words.
        detail: String,
    },
    /// A checkpoint fails verification: torn (a chunk missing, a length that does not add up),
    /// edited, moved from another organisation or revision, or not taken after the log row at
    /// its revision. It is never used; an older one or the whole log is read instead.
    #[error(
        "organization `{organization}`: the checkpoint at revision {revision} is corrupt: {detail}"
    )]
    CorruptCheckpoint {
        /// The organisation.
        organization: String,
        /// The checkpoint's revision.
        revision: Revision,
        /// What is wrong, in words.
        detail: String,
    },
}

/// What is wrong with an operation log that fails verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogDamage {
    /// A row does not match its MAC: its operation, time or MAC was edited (or removed), or
    /// rows were inserted, moved or reordered.
    Edited,
    /// A revision is missing in the middle: a row was deleted.
    Gap,
    /// Rows after the sealed head: added at the end.
    Appended,
    /// The log ends before its sealed head: rows were removed at the end.
    Truncated,
    /// The sealed head (the revision and the last row's MAC) was altered or removed, or does not
    /// name the last row.
    Head,
}

impl LogDamage {
    /// A stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            LogDamage::Edited => "edited",
            LogDamage::Gap => "gap",
            LogDamage::Appended => "appended",
            LogDamage::Truncated => "truncated",
            LogDamage::Head => "head",
        }
    }
}

impl std::fmt::Display for LogDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StoreError {
    /// A stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::UnknownOrganization(_) => "unknown_organization",
            StoreError::DuplicateOrganization(_) => "duplicate_organization",
            StoreError::BadName(_) => "bad_name",
            StoreError::Database(_) => "database",
            StoreError::Full(_) => "storage_full",
            StoreError::Corrupt(_) => "corrupt_store",
            StoreError::Aborted(_) => "aborted",
            StoreError::BadUrl(_) => "bad_database_url",
            StoreError::Unreachable(_) => "database_unreachable",
            StoreError::AuditKey(_) => "audit_key",
            StoreError::CorruptLog { .. } => "corrupt_log",
            StoreError::CorruptCheckpoint { .. } => "corrupt_checkpoint",
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        // SQLITE_FULL: the disk is full (or the file reached its size limit). The transaction
        // is rolled back; the write can be retried when space returns.
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            return StoreError::Full(e.to_string());
        }
        StoreError::Database(e.to_string())
    }
}

/// One entry of an organisation's operation log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Its revision.
    pub revision: Revision,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The operation.
    pub operation: Operation,
}

/// One row of an operation log as stored: the memory store's form, which its tamper hook
/// ([`MemoryStore::tamper_log`]) edits.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLogRow {
    /// Its revision.
    pub revision: Revision,
    /// When it was accepted (ms).
    pub at_ms: i64,
    /// The operation's JSON, as its MAC covers it.
    pub operation: String,
    /// The chained MAC (hex).
    pub mac: Option<String>,
}

/// What an audit entry says (D12).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The event: `create`, `update`, `delete`, `assign`, `share`, `modify_share`, `unshare`,
    /// `associate`, `disassociate`, `assign_role`, `remove_role`, `add_member`, `remove_member`,
    /// `move_user`, `set_manager`, `user_access`, `privileges_changed`, `audit_settings`…
    pub action: String,
    /// The table of the record concerned.
    pub table: Option<String>,
    /// The record concerned (a record id, a user's or a team's name).
    pub record: Option<String>,
    /// The acting user (`None` = the system).
    pub user: Option<String>,
    /// The impersonating user, when the action ran on behalf of `user` (D7).
    pub impersonator: Option<String>,
    /// Details: old → new values per changed column, old and new rights, the role…
    pub detail: serde_json::Value,
    /// The detail's text, when its maker wrote it directly (a record's create, on the bulk
    /// path): exactly what `detail.to_string()` writes for the detail it stands for, and
    /// `detail` is then `Null`. Stores write and hash this text as it is; an entry read back
    /// has its `detail` and no text ([`AuditRecord::with_detail`]).
    #[serde(skip)]
    pub detail_text: Option<String>,
}

impl AuditRecord {
    /// The detail as stored: its text when written directly, else `detail` written.
    #[must_use]
    pub fn detail_string(&self) -> String {
        match &self.detail_text {
            Some(text) => text.clone(),
            None => self.detail.to_string(),
        }
    }

    /// The same record with its detail as a value and no text (what a store reads back).
    #[must_use]
    pub fn with_detail(&self) -> AuditRecord {
        let mut record = self.clone();
        if let Some(text) = record.detail_text.take() {
            record.detail = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        }
        record
    }
}

/// A stored audit entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the organisation's audit chain, from 1.
    pub seq: u64,
    /// The revision of the operation that wrote it.
    pub revision: Revision,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Retention in force when it was written, in days (-1 = forever).
    pub retention_days: i64,
    /// What happened.
    #[serde(flatten)]
    pub record: AuditRecord,
    /// The chained HMAC of this entry (hex).
    pub hash: String,
}

/// The order in which audit entries are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuditOrder {
    /// Oldest first (`seq` ascending).
    #[default]
    Ascending,
    /// Newest first (`seq` descending).
    Descending,
}

/// The SQL of an order (both databases).
pub(crate) fn order_sql(order: AuditOrder) -> &'static str {
    match order {
        AuditOrder::Ascending => "ASC",
        AuditOrder::Descending => "DESC",
    }
}

/// A value of an audit query's filter, in the order of its placeholder.
#[derive(Debug)]
pub(crate) enum AuditParam<'a> {
    Text(&'a str),
    Int(i64),
}

/// The `WHERE … ORDER BY … LIMIT …` of an audit query (both databases), with only the filters
/// the query sets: a generic statement (`?3 IS NULL OR record = ?3`) cannot use the indexes by
/// record, user or table, so every filtered read scanned the organisation's whole audit.
/// `placeholder(n)` writes the n-th placeholder (`?n`, `$n`); the organisation is the first.
pub(crate) fn audit_where<'a>(
    org: &'a str,
    q: &'a AuditQuery,
    placeholder: fn(usize) -> String,
) -> (String, Vec<AuditParam<'a>>) {
    audit_where_and(Some(org), q, placeholder, "")
}

/// [`audit_where`] with one more condition (SQL text, no parameter; empty for none), and
/// the organisation's condition only when its rows share the table (`org`: SQLite keeps a
/// table per organisation, D161).
pub(crate) fn audit_where_and<'a>(
    org: Option<&'a str>,
    q: &'a AuditQuery,
    placeholder: fn(usize) -> String,
    and: &str,
) -> (String, Vec<AuditParam<'a>>) {
    let mut params = Vec::new();
    let mut conditions = Vec::new();
    let mut add = |condition: &str, value: AuditParam<'a>| {
        params.push(value);
        conditions.push(format!("{condition} {}", placeholder(params.len())));
    };
    if let Some(org) = org {
        add("org =", AuditParam::Text(org));
    }
    if q.after_seq > 0 {
        add(
            "seq >",
            AuditParam::Int(q.after_seq.min(i64::MAX as u64) as i64),
        );
    }
    if let Some(before) = q.before_seq {
        add("seq <", AuditParam::Int(before.min(i64::MAX as u64) as i64));
    }
    if let Some(record) = &q.record {
        add("record =", AuditParam::Text(record));
    }
    if let Some(user) = &q.user {
        add("user_name =", AuditParam::Text(user));
    }
    if let Some(table) = &q.table {
        add("table_name =", AuditParam::Text(table));
    }
    if let Some(action) = &q.action {
        add("action =", AuditParam::Text(action));
    }
    if let Some(from) = q.from_ms {
        add("at_ms >=", AuditParam::Int(from));
    }
    if let Some(to) = q.to_ms {
        add("at_ms <", AuditParam::Int(to));
    }
    if !and.is_empty() {
        conditions.push(and.to_owned());
    }
    if conditions.is_empty() {
        conditions.push("TRUE".to_owned());
    }
    let mut sql = conditions.join(" AND ");
    sql.push_str(&format!(
        " ORDER BY seq {} LIMIT {}",
        order_sql(q.order),
        q.limit.clamp(1, i64::MAX as usize)
    ));
    (sql, params)
}

/// Which audit entries to read. Results come in `seq` order (`order`: ascending or
/// descending), at most `limit`: the first `limit` entries in that order that match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries about this record.
    pub record: Option<String>,
    /// Only entries by this acting user.
    pub user: Option<String>,
    /// Only entries about a record of this table (its logical name, exactly).
    pub table: Option<String>,
    /// Only entries of this action (`user_access`, `update`, …).
    pub action: Option<String>,
    /// Only entries at or after this time (ms).
    pub from_ms: Option<i64>,
    /// Only entries before this time (ms).
    pub to_ms: Option<i64>,
    /// Only entries after this sequence number (the cursor of the previous page when reading
    /// ascending; of the page before, when paging back through a descending read).
    pub after_seq: u64,
    /// Only entries before this sequence number (the cursor of the previous page when reading
    /// descending; of the page after, when paging back through an ascending read).
    pub before_seq: Option<u64>,
    /// Oldest or newest first.
    pub order: AuditOrder,
    /// Page size (at least 1).
    pub limit: usize,
}

/// The result of verifying an audit chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Every entry is intact.
    Intact {
        /// Entries checked.
        entries: u64,
    },
    /// The chain is broken at `seq`.
    Tampered {
        /// The first entry that does not verify (or where one is missing).
        seq: u64,
        /// What is wrong.
        problem: String,
    },
}

/// An API key as stored: only the SHA-256 of the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// A public identifier, shown in listings and used to revoke.
    pub id: String,
    /// The organisation.
    pub organization: String,
    /// The user the key acts as.
    pub user: String,
    /// SHA-256 of the key, hex.
    pub key_hash: String,
    /// Creation time (ms).
    pub created_ms: i64,
    /// Revocation time (ms), if revoked.
    pub revoked_ms: Option<i64>,
}

/// An organisation's write lease: the node that takes its writes when several nodes share the
/// store (D150). Other nodes forward their writes to it; a lease not renewed runs out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteLease {
    /// The organisation.
    pub organization: String,
    /// The holding node's identifier (random, made when it starts).
    pub node: String,
    /// Where the holding node takes requests (its `--advertise-url`).
    pub url: String,
    /// How long the lease still runs, by the store's clock (ms).
    pub remaining_ms: i64,
}

/// A node asking for write leases: who it is and where it takes requests.
#[derive(Clone, Debug)]
pub struct LeaseClaim<'a> {
    /// The node's identifier.
    pub node: &'a str,
    /// Where the node takes requests.
    pub url: &'a str,
    /// How long a lease taken or renewed runs (ms).
    pub ttl_ms: i64,
}

/// An operation as its log row stores it: its JSON text, as `serde_json` writes an
/// [`Operation`] (the bytes the row's MAC covers, parsed back when the log is read). Made
/// only from an operation, so a row always holds one; a writer makes it before it queues the
/// write, on its own thread, rather than in the transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOperation(String);

impl StoredOperation {
    /// The stored text of `operation`.
    pub fn new(operation: &Operation) -> Result<Self, StoreError> {
        serde_json::to_string(operation)
            .map(StoredOperation)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The JSON text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0
    }
}

/// The writes of one transaction.
pub trait Transaction {
    /// Appends an operation to the log; returns its revision.
    fn append_operation(
        &mut self,
        operation: &Operation,
        at_ms: i64,
    ) -> Result<Revision, StoreError> {
        self.append_stored(StoredOperation::new(operation)?, at_ms)
    }
    /// Appends an operation already written as its row stores it (the same row as
    /// [`Transaction::append_operation`] of that operation); returns its revision.
    fn append_stored(
        &mut self,
        operation: StoredOperation,
        at_ms: i64,
    ) -> Result<Revision, StoreError>;
    /// Appends an audit entry, chained to the previous one, for the last appended operation.
    fn append_audit(
        &mut self,
        record: &AuditRecord,
        at_ms: i64,
        retention_days: i64,
    ) -> Result<u64, StoreError>;
    /// The organisation's revision in this transaction: the last committed one (which the
    /// transaction's lock holds still) plus what it appended.
    fn revision(&self) -> Revision;
    /// The log entries after `after` up to the revision this transaction started from, read
    /// under its lock: no other writer can add to them meanwhile. A node that is behind reads
    /// what other nodes wrote, to apply it before its own operations (issue 5).
    fn operations_after(&mut self, after: Revision) -> Result<Vec<LogEntry>, StoreError>;
    /// Tells the store that about `audit_entries` audit entries will be appended: a hint, which
    /// changes nothing read back, right or wrong (only when rows are indexed). SQLite puts them
    /// straight into the audit's indexes when they complete a batch anyway (D142, D157) rather
    /// than indexing them after.
    fn expect_audit_entries(&mut self, audit_entries: usize) {
        let _ = audit_entries;
    }
    /// A [`Chainer`] continuing this transaction's chains from their heads as they are now, to
    /// hash rows on another thread while this one appends others (D158); `None` when the store
    /// hashes only as it appends (memory; PostgreSQL, whose appends only gather rows for one
    /// statement, so that hashing as it appends overlaps the caller's other work).
    fn chainer(&self) -> Option<Chainer> {
        None
    }
    /// Appends rows a [`Chainer`] made, as [`Transaction::append_stored`] and
    /// [`Transaction::append_audit`] would have: refused with [`StoreError::Aborted`] (nothing
    /// appended) unless they continue this transaction's heads.
    fn append_chained(&mut self, rows: ChainedRows) -> Result<(), StoreError> {
        Err(StoreError::Aborted(format!(
            "organization `{}`: this store takes no chained rows",
            rows.org
        )))
    }
}

/// Where organisations are kept.
pub trait Store: Send + Sync {
    /// Creates an organisation and runs `f` on it in the same transaction, as [`Store::write`]
    /// does on an existing one: the organisation and everything `f` appends (the audit entry of
    /// its creation first, then any operations) commit together, or nothing does — an `Err`
    /// from `f` or a failed append leaves no organisation. A name in use is
    /// [`StoreError::DuplicateOrganization`], and then `f` is not called and nothing is
    /// written. Returns the organisation's revision afterwards.
    fn create_organization(
        &self,
        name: &str,
        at_ms: i64,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError>;
    /// Removes an organisation with its log, audit and keys.
    fn delete_organization(&self, name: &str) -> Result<(), StoreError>;
    /// Every organisation and its revision.
    fn organizations(&self) -> Result<Vec<(String, Revision)>, StoreError>;
    /// Runs `f` in one transaction on `org`: everything it writes commits together, or nothing
    /// does (an `Err` from `f` rolls back). Returns the organisation's revision afterwards.
    fn write(
        &self,
        org: &str,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError>;
    /// [`Store::write`] by a writer that holds the organisation at revision `known` (and will
    /// ask [`Transaction::operations_after`]`(known)` when the store is ahead of it): a store
    /// may read those rows together with its lock, saving a round trip under it. The same
    /// result as `write`.
    ///
    /// `f` may be called twice: a store may first run it from the organisation's head as it
    /// last committed it and send the result without taking its lock first, and when another
    /// writer had moved the organisation meanwhile, or when `f` returned an error (nothing of
    /// that call is written), run it again under its lock (PostgreSQL, D144). Each call
    /// starts again from nothing appended.
    fn write_known(
        &self,
        org: &str,
        known: Revision,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        let _ = known;
        self.write(org, f)
    }
    /// The organisation's current revision.
    fn revision(&self, org: &str) -> Result<Revision, StoreError>;
    /// The log entries after `after`, in order, verified: revisions follow each other with no
    /// hole, every row returned matches its chained MAC, and the log ends at its sealed head
    /// ([`StoreError::CorruptLog`] otherwise). With `after` > 0, the chain starts from the row at
    /// `after`, whose own MAC was checked by the read that reached it.
    fn operations(&self, org: &str, after: Revision) -> Result<Vec<LogEntry>, StoreError>;
    /// Audit entries matching a query.
    fn audit(&self, org: &str, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    /// Checks the audit chain end to end.
    fn verify_audit(&self, org: &str) -> Result<Verification, StoreError>;
    /// A secret for `purpose` derived from the store's audit key: the same in every process
    /// that opens the store with the same key (list cursors are signed with one).
    fn derived_key(&self, purpose: &str) -> [u8; 32];
    /// Deletes audit entries whose retention has run out at `now_ms`, oldest first, stopping at
    /// the first entry still retained (the chain keeps an anchor). Returns how many went.
    fn expire_audit(&self, org: &str, now_ms: i64) -> Result<u64, StoreError>;
    /// Stores an API key.
    fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    /// Finds an API key by the hash of the key.
    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// The API keys of an organisation.
    fn api_keys(&self, org: &str) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Revokes an API key; false when there is no such key.
    fn revoke_api_key(&self, org: &str, id: &str, at_ms: i64) -> Result<bool, StoreError>;
    /// Stores a checkpoint: `bytes`, the state of `org` at `revision` (a revision its log
    /// holds) in `format`, in one transaction of its own, sealed with a MAC under the log's key
    /// that binds the organisation, the revision, the format, the time, the length and the MAC
    /// of the log row at `revision` (read by the store, in the same transaction). Large bytes
    /// are cut into chunks. The organisation keeps its newest [`KEEP_CHECKPOINTS`]; older ones
    /// are removed in the same transaction. Returns false, writing nothing, when a checkpoint
    /// at this revision exists already (another node took it). The log is left as it is.
    fn put_checkpoint(
        &self,
        org: &str,
        revision: Revision,
        format: u32,
        bytes: &[u8],
        at_ms: i64,
    ) -> Result<bool, StoreError>;
    /// The organisation's checkpoints, newest first, as their rows declare them (reading one
    /// verifies it).
    fn checkpoints(&self, org: &str) -> Result<Vec<CheckpointInfo>, StoreError>;
    /// The bytes of the checkpoint at `revision`, verified (see [`StoreError::CorruptCheckpoint`]);
    /// `None` when there is none at this revision.
    fn read_checkpoint(&self, org: &str, revision: Revision)
    -> Result<Option<Vec<u8>>, StoreError>;
    /// The write leases of `orgs` that run still (D150). With `claim`, first takes each lease
    /// that has run out or is held by no one, and renews each the claiming node holds, in one
    /// statement; a lease another node holds that runs still is left to it. Organisations
    /// with no lease running are left out of the answer. Stores that one process owns
    /// (SQLite, memory) keep no leases: the default answers none, and every node writes
    /// itself.
    fn write_leases(
        &self,
        orgs: &[String],
        claim: Option<&LeaseClaim<'_>>,
    ) -> Result<Vec<WriteLease>, StoreError> {
        let _ = (orgs, claim);
        Ok(Vec::new())
    }
    /// Gives up every lease `node` holds (a node stopping), so that another node takes the
    /// writes at once rather than when the leases run out.
    fn release_write_leases(&self, node: &str) -> Result<(), StoreError> {
        let _ = node;
        Ok(())
    }
    /// A counter of the changes this store has been told about by other processes (and by its
    /// own writes): pass it to [`Store::wait_for_change`]. Read it *before* looking at the
    /// store, so that a change made in between is not missed. Stores without notifications
    /// keep it at 0.
    fn change_seen(&self) -> u64 {
        0
    }
    /// Blocks until the counter moves past `seen` or `timeout` passes; returns the counter.
    /// PostgreSQL is woken by `LISTEN`/`NOTIFY` (a write notifies inside its transaction, so
    /// the notification is delivered when it commits); the default waits the whole timeout,
    /// and the caller polls.
    fn wait_for_change(&self, seen: u64, timeout: std::time::Duration) -> u64 {
        std::thread::sleep(timeout);
        seen
    }
}

/// Checks an organisation name: 1 to 64 ASCII letters, digits, `-` or `_`.
pub fn check_org_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadName(name.chars().take(80).collect()))
    }
}

/// Whether an audit entry written at `at_ms` with `retention_days` has expired at `now_ms`.
#[must_use]
pub fn expired(at_ms: i64, retention_days: i64, now_ms: i64) -> bool {
    retention_days >= 0 && at_ms.saturating_add(retention_days.saturating_mul(86_400_000)) <= now_ms
}

/// Rebuilds an organisation from its log: the exact state that was acknowledged. The log is
/// verified as it is read ([`Store::operations`]): a tampered log is [`StoreError::CorruptLog`],
/// never replayed.
pub fn load_organization(
    store: &dyn Store,
    org: &str,
) -> Result<(strata_engine::Organization, Revision), StoreError> {
    load_organization_with(store, org, &mut |_, _| {})
}

/// Operations applied between two calls of a load's progress.
const LOAD_STEP: usize = 20_000;

/// [`load_organization`], telling `progress` how many of the log's operations are applied (and
/// how many there are) as it goes.
pub fn load_organization_with(
    store: &dyn Store,
    org: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(strata_engine::Organization, Revision), StoreError> {
    replay(org, store.operations(org, 0)?, progress)
}

/// Applies a whole log (revisions 1, 2, 3… with no hole, as a verified read returns them) to an
/// empty organisation. Public for the replay benchmark, which compares verified and unverified
/// reads.
#[doc(hidden)]
pub fn replay(
    org: &str,
    entries: Vec<LogEntry>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(strata_engine::Organization, Revision), StoreError> {
    let (organization, revision) = replay_onto(
        org,
        strata_engine::Organization::new(),
        0,
        entries,
        progress,
    )?;
    Ok((organization, revision))
}

/// Applies the log entries after `base` (revisions `base + 1`, `base + 2`… with no hole, as a
/// verified read after `base` returns them) to `organization`, the state at `base` (a
/// checkpoint's, or an empty organisation at 0). Returns it and its revision.
pub fn replay_onto(
    org: &str,
    mut organization: strata_engine::Organization,
    base: Revision,
    entries: Vec<LogEntry>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(strata_engine::Organization, Revision), StoreError> {
    let revision = entries.last().map_or(base, |e| e.revision);
    if let Some(first) = entries.first()
        && first.revision != base + 1
    {
        return Err(StoreError::Corrupt(format!(
            "organization `{org}`: the log after revision {base} starts at {}",
            first.revision
        )));
    }
    // The operation at index i is revision base + i + 1, accepted at times[i] (its records
    // stamped at that time, D165).
    let times: Vec<i64> = entries.iter().map(|e| e.at_ms).collect();
    let ops: Vec<Operation> = entries.into_iter().map(|e| e.operation).collect();
    let mut from = 0;
    progress(0, ops.len());
    while from < ops.len() {
        // A step never splits a run of setup operations: they share one setup session.
        let mut to = (from + LOAD_STEP).min(ops.len());
        while to < ops.len() && ops[to].is_setup() && ops[to - 1].is_setup() {
            to += 1;
        }
        strata_ops::apply_all_at(&mut organization, &ops[from..to], &times[from..to]).map_err(
            |(i, e)| {
                StoreError::Corrupt(format!(
                    "organization `{org}`: logged operation {} no longer applies: {}",
                    base as usize + from + i + 1,
                    e.message
                ))
            },
        )?;
        from = to;
        progress(from, ops.len());
    }
    Ok((organization, revision))
}
