//! Group commit (D95) and readers that never wait for a commit (D96): concurrent writes are
//! committed together, each answered with its own gap-free revision, a refused write never
//! holding the others back; memory always equals a replay of the store; a read answers while
//! a commit is in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use strata_app::{Actor, Loader, Registry};
use strata_ops::Operation;
use strata_store::{
    ApiKeyRecord, AuditEntry, AuditQuery, CheckpointInfo, LogEntry, MemoryStore, Revision, Store,
    StoreError, Transaction, Verification,
};

fn ops(value: serde_json::Value) -> Vec<Operation> {
    serde_json::from_value(value).unwrap()
}

/// A batch written by the user `writer`, on a task of its own.
fn spawn_write(
    handle: &Arc<strata_app::OrgHandle>,
    store: &Arc<dyn Store>,
    batch: Vec<Operation>,
) -> tokio::task::JoinHandle<Result<strata_app::Written, strata_app::AppError>> {
    let (handle, store) = (Arc::clone(handle), Arc::clone(store));
    let batch = batch
        .into_iter()
        .map(|op| strata_app::run_as(op, "writer"))
        .collect();
    tokio::spawn(async move {
        handle
            .write(store, batch, Actor::User("writer".to_owned()))
            .await
    })
}

/// A store whose commits take `delay` and are counted: a slow disk, made visible.
struct SlowStore {
    inner: Box<dyn Store>,
    /// The SQLite store's directory, kept while the store is.
    _dir: Option<tempfile::TempDir>,
    delay: Duration,
    commits: AtomicUsize,
    /// Set while a commit is in flight (between the writer's rows and the return).
    committing: Arc<AtomicBool>,
    /// Set when a commit began while another was in flight.
    overlapped: AtomicBool,
}

impl Store for SlowStore {
    fn create_organization(
        &self,
        name: &str,
        at_ms: i64,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        self.inner.create_organization(name, at_ms, f)
    }
    fn delete_organization(&self, name: &str) -> Result<(), StoreError> {
        self.inner.delete_organization(name)
    }
    fn organizations(&self) -> Result<Vec<(String, Revision)>, StoreError> {
        self.inner.organizations()
    }
    fn write(
        &self,
        org: &str,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        self.inner.write(org, &mut |tx| {
            f(tx)?;
            // The rows are written: the commit (an fsync) takes its time now.
            if self.committing.swap(true, Ordering::SeqCst) {
                self.overlapped.store(true, Ordering::SeqCst);
            }
            std::thread::sleep(self.delay);
            self.committing.store(false, Ordering::SeqCst);
            self.commits.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
    fn revision(&self, org: &str) -> Result<Revision, StoreError> {
        self.inner.revision(org)
    }
    fn operations(&self, org: &str, after: Revision) -> Result<Vec<LogEntry>, StoreError> {
        self.inner.operations(org, after)
    }
    fn audit(&self, org: &str, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.audit(org, query)
    }
    fn verify_audit(&self, org: &str) -> Result<Verification, StoreError> {
        self.inner.verify_audit(org)
    }
    fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.inner.derived_key(purpose)
    }
    fn expire_audit(&self, org: &str, now_ms: i64) -> Result<u64, StoreError> {
        self.inner.expire_audit(org, now_ms)
    }
    fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.inner.put_api_key(key)
    }
    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.inner.api_key_by_hash(key_hash)
    }
    fn api_keys(&self, org: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.inner.api_keys(org)
    }
    fn revoke_api_key(&self, org: &str, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.inner.revoke_api_key(org, id, at_ms)
    }
    fn put_checkpoint(
        &self,
        org: &str,
        revision: Revision,
        format: u32,
        bytes: &[u8],
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.inner
            .put_checkpoint(org, revision, format, bytes, at_ms)
    }
    fn checkpoints(&self, org: &str) -> Result<Vec<CheckpointInfo>, StoreError> {
        self.inner.checkpoints(org)
    }
    fn read_checkpoint(
        &self,
        org: &str,
        revision: Revision,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.read_checkpoint(org, revision)
    }
}

/// A store with the organisation `o`: a writer who may create notes and read their own, a
/// reader who may do nothing.
fn slow_store(delay: Duration) -> Arc<SlowStore> {
    slow_store_on(delay, false)
}

/// [`slow_store`] on a SQLite file (`sqlite`), whose transactions hash streamed groups' rows
/// ahead on the trying thread (D158), or in memory.
fn slow_store_on(delay: Duration, sqlite: bool) -> Arc<SlowStore> {
    let (inner, dir): (Box<dyn Store>, _) = if sqlite {
        let dir = tempfile::tempdir().unwrap();
        let store = strata_store::SqliteStore::open(&dir.path().join("strata.db")).unwrap();
        (Box::new(store), Some(dir))
    } else {
        (Box::new(MemoryStore::new().unwrap()), None)
    };
    let store = SlowStore {
        inner,
        _dir: dir,
        delay: Duration::ZERO,
        commits: AtomicUsize::new(0),
        committing: Arc::new(AtomicBool::new(false)),
        overlapped: AtomicBool::new(false),
    };
    let mut loader = Loader::new(store.inner.as_ref(), "o", Actor::System).unwrap();
    loader
        .append(
            &ops(json!([
                {"op": "add_business_unit", "name": "Root"},
                {"op": "add_table", "name": "note"},
                {"op": "set_audit", "enabled": true, "tables": ["note"]},
                {"op": "add_role", "name": "Writer", "privileges": {"note": {"create": "user", "read": "user", "write": "user"}}},
                {"op": "add_user", "name": "writer"},
                {"op": "assign_role", "principal": "writer", "role": "Writer"},
                {"op": "add_user", "name": "nobody"}
            ])),
            &mut |_| {},
        )
        .unwrap();
    Arc::new(SlowStore { delay, ..store })
}

fn note(id: &str) -> Vec<Operation> {
    ops(json!([{"op": "create", "table": "note", "id": id, "fields": {"name": id}}]))
}

/// Memory holds what a replay of the store gives (at `revision`, when given), its indexes
/// current, no journal checkpoint left open, and the audit verifies.
fn memory_is_the_store(
    handle: &strata_app::OrgHandle,
    store: &dyn Store,
    revision: Option<Revision>,
) {
    let loaded = handle.read_blocking();
    if let Some(expected) = revision {
        assert_eq!(loaded.revision, expected);
    }
    let (replayed, at) = strata_store::load_organization(store, "o").unwrap();
    assert_eq!(at, loaded.revision);
    assert_eq!(replayed.canonical_dump(), loaded.org.canonical_dump());
    // Every record stamped as the replay of its log row stamps it (D165), and at a real time.
    assert_eq!(replayed.stamps_dump(), loaded.org.stamps_dump());
    for id in loaded.org.record_ids() {
        assert!(loaded.org.record(id).stamps.created_at > 0);
    }
    assert!(loaded.org.indexes_are_current() && loaded.org.record_index_is_current());
    assert!(!loaded.org.checkpoint_open());
    // The audit chain holds (its entries hashed by the transaction or ahead of it, D158).
    assert!(
        matches!(
            store.verify_audit("o").unwrap(),
            Verification::Intact { .. }
        ),
        "the audit chain verifies"
    );
}

/// The committer's mode for one test: pipelined (D130) or serial. The mode is the process's
/// (`set_pipelined`) and the tests of this file run on parallel threads, so each holds this
/// lock for its whole run: a serial test never runs pipelined because another set it.
fn committer(pipelined: bool) -> std::sync::MutexGuard<'static, ()> {
    static MODE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = MODE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    strata_app::set_pipelined(pipelined);
    strata_app::set_stream_operations(strata_app::DEFAULT_STREAM_OPERATIONS);
    guard
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// 96 concurrent writes — single notes, two-note batches, and refused ones (a user without the
/// privilege, a batch whose second operation fails) — each accepted write gets its own
/// revisions, gap-free, holding exactly its operations; refused writes leave no trace; they are
/// committed in far fewer transactions than writes; and memory equals a replay of the store.
#[test]
fn concurrent_writes_commit_together_each_with_its_own_revision() {
    let _mode = committer(false);
    concurrent_writes(false);
}

/// The same, every group streamed (D143): tried on a thread of its own while its rows are
/// appended. The refused writes are refused before any of their rows are handed over.
#[test]
fn streamed_groups_commit_as_serial_ones_do() {
    let _mode = committer(false);
    strata_app::set_stream_operations(1);
    concurrent_writes(false);
}

/// The same on SQLite, whose transaction gives the trying thread a chainer: the rows arrive
/// hashed (D158), and the log and the audit verify.
#[test]
fn streamed_groups_chained_ahead_commit_as_serial_ones_do() {
    let _mode = committer(false);
    strata_app::set_stream_operations(1);
    concurrent_writes(true);
}

fn concurrent_writes(sqlite: bool) {
    let store = slow_store_on(Duration::from_millis(5), sqlite);
    let registry = Registry::load(store.as_ref(), None).unwrap();
    let handle = registry.get("o").unwrap();
    let base = handle.applied();
    let dyn_store: Arc<dyn Store> = store.clone();
    let rt = runtime();
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..96 {
            let (handle, store) = (Arc::clone(&handle), Arc::clone(&dyn_store));
            tasks.push(tokio::spawn(async move {
                let (batch, actor) = match i % 4 {
                    0 => (note(&format!("n{i}")), Actor::User("writer".to_owned())),
                    1 => (
                        ops(json!([
                            {"op": "create", "table": "note", "id": format!("n{i}"), "fields": {}},
                            {"op": "create", "table": "note", "id": format!("m{i}"), "fields": {}}
                        ])),
                        Actor::User("writer".to_owned()),
                    ),
                    // No privilege to create notes.
                    2 => (note(&format!("n{i}")), Actor::User("nobody".to_owned())),
                    // The second operation refers to a record that does not exist.
                    _ => (
                        ops(json!([
                            {"op": "create", "table": "note", "id": format!("n{i}"), "fields": {}},
                            {"op": "update", "record": "missing", "fields": {"name": "x"}}
                        ])),
                        Actor::User("writer".to_owned()),
                    ),
                };
                let user = match &actor {
                    Actor::User(user) => user.clone(),
                    _ => unreachable!(),
                };
                let batch: Vec<Operation> = batch
                    .into_iter()
                    .map(|op| strata_app::run_as(op, &user))
                    .collect();
                let sent = batch.clone();
                (i, sent, handle.write(store, batch, actor).await)
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        results
    });
    let log = store.operations("o", base).unwrap();
    let mut revisions = Vec::new();
    for (i, sent, result) in &results {
        match i % 4 {
            0 | 1 => {
                let written = result.as_ref().unwrap();
                let first = written.revision + 1 - sent.len() as Revision;
                for (k, op) in sent.iter().enumerate() {
                    let entry = log
                        .iter()
                        .find(|e| e.revision == first + k as Revision)
                        .unwrap();
                    assert_eq!(
                        &entry.operation, op,
                        "write {i}: revision {}",
                        entry.revision
                    );
                    revisions.push(entry.revision);
                }
            }
            2 => assert_eq!(result.as_ref().unwrap_err().code, "denied", "write {i}"),
            _ => {
                let e = result.as_ref().unwrap_err();
                assert_eq!(e.field.as_deref(), Some("/1"), "write {i}: {e:?}");
            }
        }
    }
    revisions.sort_unstable();
    let expected: Vec<Revision> = (base + 1..=base + 72).collect();
    assert_eq!(revisions, expected, "gap-free, each revision once");
    assert_eq!(log.len(), 72, "refused writes left nothing in the log");
    let commits = store.commits.load(Ordering::SeqCst);
    assert!(
        commits < 48,
        "48 accepted writes were committed in {commits} transactions: not grouped"
    );
    // Memory is the store's state at its revision.
    memory_is_the_store(&handle, store.as_ref(), Some(base + 72));
}

/// While a commit takes 300 ms, a read of the organisation answers at once, and sees the
/// state before the write (memory holds only what is committed); once the write is answered,
/// reads see it.
#[test]
fn a_read_never_waits_for_a_commit() {
    let _mode = committer(false);
    let store = slow_store(Duration::from_millis(300));
    let registry = Registry::load(store.as_ref(), None).unwrap();
    let handle = registry.get("o").unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let rt = runtime();
    rt.block_on(async {
        let writing = spawn_write(&handle, &dyn_store, note("slow"));
        let started = Instant::now();
        while !store.committing.load(Ordering::SeqCst) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the commit never began"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let asked = Instant::now();
        let seen = {
            let loaded = handle.read().await;
            loaded.org.record_id("slow").is_some()
        };
        let waited = asked.elapsed();
        assert!(
            store.committing.load(Ordering::SeqCst),
            "the commit was still in flight"
        );
        assert!(
            waited < Duration::from_millis(100),
            "a read waited {waited:?} for a commit"
        );
        assert!(!seen, "a read saw a write before its commit");
        let written = writing.await.unwrap().unwrap();
        let loaded = handle.read().await;
        assert_eq!(loaded.revision, written.revision);
        assert!(loaded.org.record_id("slow").is_some());
    });
}

/// A commit that fails answers every accepted write of its group with the failure and leaves
/// memory as the store has it; the next write goes through.
#[test]
fn a_failed_commit_fails_its_group_and_changes_nothing() {
    let _mode = committer(false);
    let store = MemoryStore::new().unwrap();
    let mut loader = Loader::new(&store, "o", Actor::System).unwrap();
    loader
        .append(
            &ops(json!([
                {"op": "add_business_unit", "name": "Root"},
                {"op": "add_table", "name": "note"}
            ])),
            &mut |_| {},
        )
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let registry = Registry::load(store.as_ref(), None).unwrap();
    let handle = registry.get("o").unwrap();
    let before = handle.read_blocking().org.canonical_dump();
    let rt = runtime();
    // Deleting the organisation in the store makes the next commit fail.
    store.delete_organization("o").unwrap();
    let failed = rt
        .block_on(handle.write(Arc::clone(&store), note("a"), Actor::System))
        .unwrap_err();
    assert_ne!(failed.code, "internal", "{failed:?}");
    assert_eq!(handle.read_blocking().org.canonical_dump(), before);
}

/// Pipelining (D130): while a group's commit is in flight, the next write is tried — against
/// the state the group in flight leaves, so it may update the record that group creates —
/// and it is committed after it, with the next revision; readers see neither until each is
/// committed, and no two commits overlap.
#[test]
fn the_next_group_is_tried_while_a_commit_is_in_flight() {
    let _mode = committer(true);
    let store = slow_store(Duration::from_millis(300));
    let registry = Registry::load(store.as_ref(), None).unwrap();
    let handle = registry.get("o").unwrap();
    let base = handle.applied();
    let dyn_store: Arc<dyn Store> = store.clone();
    let rt = runtime();
    rt.block_on(async {
        let write = |batch: Vec<Operation>| spawn_write(&handle, &dyn_store, batch);
        let first = write(note("a"));
        let started = Instant::now();
        while !store.committing.load(Ordering::SeqCst) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the commit never began"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let generation = handle.generation();
        // Updates the record the group in flight creates.
        let second = write(ops(json!([
            {"op": "update", "record": "a", "fields": {"name": "changed"}}
        ])));
        // A third write, refused: `a` exists already once the first group is applied.
        let third = write(note("a"));
        let asked = Instant::now();
        while handle.generation() == generation {
            assert!(
                asked.elapsed() < Duration::from_millis(200),
                "the next writes were not tried while the commit was in flight"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            store.committing.load(Ordering::SeqCst),
            "the first commit was still in flight when the next group was tried"
        );
        {
            let loaded = handle.read().await;
            assert!(
                loaded.org.record_id("a").is_none(),
                "a read saw a write before its commit"
            );
            assert_eq!(loaded.revision, base);
        }
        let first = first.await.unwrap().unwrap();
        let second = second.await.unwrap().unwrap();
        let refused = third.await.unwrap().unwrap_err();
        assert_eq!(first.revision, base + 1);
        assert_eq!(second.revision, base + 2);
        assert_ne!(refused.code, "internal", "{refused:?}");
        assert!(
            !store.overlapped.load(Ordering::SeqCst),
            "two commits were in flight at once"
        );
    });
    let log = store.operations("o", base).unwrap();
    assert_eq!(log.len(), 2, "the refused write left nothing in the log");
    memory_is_the_store(&handle, store.as_ref(), Some(base + 2));
}

/// A big group in flight (more than 256 operations) is landed before the next group is tried:
/// the writes behind it are still accepted in order, each with its own revisions, and memory
/// equals a replay of the store.
#[test]
fn writes_behind_a_big_group_follow_it_in_order() {
    let _mode = committer(true);
    let store = slow_store(Duration::from_millis(50));
    let registry = Registry::load(store.as_ref(), None).unwrap();
    let handle = registry.get("o").unwrap();
    let base = handle.applied();
    let dyn_store: Arc<dyn Store> = store.clone();
    let rt = runtime();
    let (big, small) = rt.block_on(async {
        let big: Vec<Operation> = (0..300)
            .flat_map(|i| note(&format!("big{i}")))
            .map(|op| strata_app::run_as(op, "writer"))
            .collect();
        let writer = Actor::User("writer".to_owned());
        let first = {
            let (handle, store, writer) =
                (Arc::clone(&handle), Arc::clone(&dyn_store), writer.clone());
            tokio::spawn(async move { handle.write(store, big, writer).await })
        };
        while !store.committing.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let update = ops(json!([{"op": "update", "record": "big7", "fields": {"name": "x"}}]))
            .into_iter()
            .map(|op| strata_app::run_as(op, "writer"))
            .collect();
        let second = handle.write(Arc::clone(&dyn_store), update, writer).await;
        (first.await.unwrap().unwrap(), second.unwrap())
    });
    assert_eq!(big.revision, base + 300);
    assert_eq!(small.revision, base + 301);
    assert!(!store.overlapped.load(Ordering::SeqCst));
    memory_is_the_store(&handle, store.as_ref(), None);
}

/// Pipelined, a write that memory would refuse because another node wrote what it needs is
/// not refused on the strength of a stale memory: the store's revision is checked under its
/// lock first, and the write is tried again after catching up.
#[test]
fn a_write_is_not_refused_by_a_node_that_is_behind() {
    let _mode = committer(true);
    let store = slow_store(Duration::ZERO);
    let dyn_store: Arc<dyn Store> = store.clone();
    let one = Registry::load(store.as_ref(), None).unwrap();
    let two = Registry::load(store.as_ref(), None).unwrap();
    let (a, b) = (one.get("o").unwrap(), two.get("o").unwrap());
    let rt = runtime();
    rt.block_on(async {
        // Node one creates a note; node two has not seen it.
        let writer = || Actor::User("writer".to_owned());
        let mine = |batch: Vec<Operation>| -> Vec<Operation> {
            batch
                .into_iter()
                .map(|op| strata_app::run_as(op, "writer"))
                .collect()
        };
        a.write(Arc::clone(&dyn_store), mine(note("n1")), writer())
            .await
            .unwrap();
        let update = ops(json!([{"op": "update", "record": "n1", "fields": {"name": "x"}}]));
        let written = b
            .write(Arc::clone(&dyn_store), mine(update), writer())
            .await
            .unwrap();
        assert_eq!(written.revision, a.applied() + 1);
    });
}

/// A long read (an export, a review, a digest) holds up a write, as it must, but not the reads
/// queued after that write: the write waits for the writer's turn, not in the lock's queue,
/// where tokio's fair lock would line every later read up behind it.
#[test]
fn a_long_read_does_not_hold_up_the_reads_behind_a_waiting_write() {
    let _mode = committer(false);
    let store = slow_store(Duration::from_millis(1));
    let registry = Registry::load(store.as_ref(), None).unwrap();
    let handle = registry.get("o").unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let (held, holding) = std::sync::mpsc::channel();
    let long = {
        let handle = Arc::clone(&handle);
        std::thread::spawn(move || {
            let loaded = handle.read_long_blocking();
            held.send(loaded.revision).unwrap();
            std::thread::sleep(Duration::from_millis(800));
        })
    };
    let before = holding.recv().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let long_began = Instant::now();
        let writing = spawn_write(&handle, &dyn_store, note("after the long read"));
        // The write is waiting for the long read by now.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let asked = Instant::now();
        let revision = handle.read().await.revision;
        let waited = asked.elapsed();
        assert!(
            long_began.elapsed() < Duration::from_millis(700),
            "the long read was still held when the read was answered"
        );
        assert!(
            waited < Duration::from_millis(200),
            "a read waited {waited:?} behind a write waiting for a long read"
        );
        assert_eq!(revision, before, "the write waited for the long read");
        let written = writing.await.unwrap().unwrap();
        assert_eq!(written.revision, before + 1);
    });
    long.join().unwrap();
}

/// A streamed group (D143) whose write is refused after some of its rows were handed over
/// (its 80th operation fails, after 64 were handed over) is committed again the serial way:
/// the writes around it get their revisions, it is refused naming its operation, and none of
/// its rows reach the log.
#[test]
fn a_streamed_write_refused_after_its_rows_were_handed_over_leaves_nothing() {
    refused_after_handed_over(false);
}

/// The same on SQLite, the rows hashed ahead (D158): the chains the aborted first attempt had
/// hashed leave no trace either, and the log and the audit verify.
#[test]
fn a_write_refused_after_its_rows_were_chained_ahead_leaves_nothing() {
    refused_after_handed_over(true);
}

fn refused_after_handed_over(sqlite: bool) {
    let _mode = committer(false);
    strata_app::set_stream_operations(1);
    let store = slow_store_on(Duration::from_millis(50), sqlite);
    let registry = Registry::load(store.as_ref(), None).unwrap();
    let handle = registry.get("o").unwrap();
    let base = handle.applied();
    let dyn_store: Arc<dyn Store> = store.clone();
    let creates = |prefix: &str, n: usize| -> Vec<serde_json::Value> {
        (0..n)
            .map(|k| json!({"op": "create", "table": "note", "id": format!("{prefix}{k}"), "fields": {}}))
            .collect()
    };
    let mut refused = creates("b", 100);
    refused[80] = json!({"op": "update", "record": "missing", "fields": {"name": "x"}});
    let rt = runtime();
    let (first, a, b, c) = rt.block_on(async {
        // The first write's commit takes 50 ms: the three behind it make one group.
        let first = spawn_write(&handle, &dyn_store, note("first"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let a = spawn_write(
            &handle,
            &dyn_store,
            ops(serde_json::Value::Array(creates("a", 100))),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let b = spawn_write(&handle, &dyn_store, ops(serde_json::Value::Array(refused)));
        tokio::time::sleep(Duration::from_millis(5)).await;
        let c = spawn_write(&handle, &dyn_store, note("c"));
        (
            first.await.unwrap(),
            a.await.unwrap(),
            b.await.unwrap(),
            c.await.unwrap(),
        )
    });
    assert_eq!(first.unwrap().revision, base + 1);
    assert_eq!(a.unwrap().revision, base + 101);
    let e = b.unwrap_err();
    assert_eq!(e.field.as_deref(), Some("/80"), "{e:?}");
    assert_eq!(c.unwrap().revision, base + 102);
    let log = store.operations("o", base).unwrap();
    assert_eq!(log.len(), 102, "the refused write left nothing in the log");
    assert_eq!(
        store.commits.load(Ordering::SeqCst),
        2,
        "one group behind the first"
    );
    memory_is_the_store(&handle, store.as_ref(), Some(base + 102));
}

/// A dry run takes the access after its batch in steps, letting the write lock go between
/// them when reads wait (D54): a unit move compares every user, and with one user a step,
/// readers get in many times while the dry run runs (under one long hold of the write lock
/// they could not); with no read waiting it is one step. The difference is the one a single
/// step gives, and memory is as before.
#[test]
fn readers_go_on_between_the_steps_of_a_dry_run() {
    const USERS: usize = 2_000;
    // Not beside this file's other tests, which would take the processors.
    let _mode = committer(false);
    let store = Arc::new(MemoryStore::new().unwrap());
    let mut setup = vec![
        json!({"op": "add_business_unit", "name": "Root"}),
        json!({"op": "add_business_unit", "name": "A", "parent": "Root"}),
        json!({"op": "add_business_unit", "name": "B", "parent": "Root"}),
        json!({"op": "add_table", "name": "note"}),
        json!({"op": "add_role", "name": "Deep", "privileges": {"note": {"create": "user", "read": "deep"}}}),
    ];
    for i in 0..USERS {
        let (user, unit) = (format!("u{i}"), if i % 2 == 0 { "A" } else { "B" });
        setup.push(json!({"op": "add_user", "name": user, "business_unit": unit}));
        setup.push(json!({"op": "assign_role", "principal": user, "role": "Deep"}));
        setup.push(json!({"op": "create", "table": "note", "id": format!("n{i}"), "owner": user, "fields": {}}));
    }
    let mut loader = Loader::new(store.as_ref(), "d", Actor::System).unwrap();
    loader
        .append(&ops(serde_json::Value::Array(setup)), &mut |_| {})
        .unwrap();
    let registry = Registry::load(store.as_ref(), None).unwrap();
    let handle = registry.get("d").unwrap();
    let dyn_store: Arc<dyn Store> = store.clone();
    let rt = runtime();
    let dry_run = |slice: Duration| {
        strata_app::set_dry_run_slice(slice);
        let answer = rt
            .block_on(handle.dry_run(
                Arc::clone(&dyn_store),
                ops(json!([{"op": "move_business_unit", "name": "A", "parent": "B"}])),
                Actor::System,
                Arc::new(|_, _| true),
            ))
            .unwrap();
        strata_app::set_dry_run_slice(Duration::from_millis(2));
        (answer.to_json(), answer.steps)
    };
    let (whole, steps) = dry_run(Duration::from_secs(60));
    assert_eq!(steps, 1);
    // With no read waiting, the lock is never let go.
    let (alone, steps) = dry_run(Duration::ZERO);
    assert_eq!((&alone, steps), (&whole, 1));
    // B's users gain A's notes.
    assert_eq!(
        whole["difference"]["users"].as_array().unwrap().len(),
        USERS / 2
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (reading, started) = std::sync::mpsc::channel();
    let reader = {
        let (handle, stop) = (Arc::clone(&handle), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut seen = std::collections::HashSet::new();
            reading.send(()).unwrap();
            while !stop.load(Ordering::SeqCst) {
                let loaded = handle.read_blocking();
                seen.insert(handle.generation());
                drop(loaded);
            }
            seen.len()
        })
    };
    started.recv().unwrap();
    let (stepped, steps) = dry_run(Duration::ZERO);
    stop.store(true, Ordering::SeqCst);
    let generations = reader.join().unwrap();
    assert_eq!(stepped, whole);
    assert!(steps > 2, "{steps} steps with a reader waiting");
    // One hold of the write lock shows a reader two states at most: before it and after it.
    assert!(
        generations > 2,
        "readers saw {generations} states of the lock during a dry run of {USERS} steps"
    );
    let loaded = handle.read_blocking();
    let (replayed, _) = strata_store::load_organization(store.as_ref(), "d").unwrap();
    assert_eq!(replayed.canonical_dump(), loaded.org.canonical_dump());
    assert!(loaded.org.indexes_are_current() && loaded.org.record_index_is_current());
    assert!(!loaded.org.checkpoint_open());
}
