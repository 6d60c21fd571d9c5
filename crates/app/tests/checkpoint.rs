//! Start-up from a checkpoint: the newest checkpoint that verifies plus the log after it gives
//! the organisation a replay of the whole log gives (state, names, derived indexes, record
//! index), on the demo and on the generated organisation; a torn or tampered checkpoint is
//! never used (an older one, or the whole log, is); a tampered tail is still `corrupt_log`;
//! periodic checkpoints count operations; writes go on after a start from a checkpoint; a
//! checkpoint of the state alone loads (D120), one of a format before records kept their
//! stamps is replaced by the log (D165).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_app::checkpoint::load;
use strata_app::{Actor, Loader, Registry};
use strata_engine::Organization;
use strata_ops::Operation;
use strata_store::{MemoryStore, Store, StoreError, load_organization};

/// Stores `chunks` as one organisation `o`, a chunk per transaction, and returns the revision
/// after each chunk.
fn stored(store: &dyn Store, chunks: &[Vec<Operation>]) -> Vec<u64> {
    let mut loader = Loader::new(store, "o", Actor::System).unwrap();
    chunks
        .iter()
        .map(|c| loader.append(c, &mut |_| {}).unwrap())
        .collect()
}

/// The state at `revision`, replayed from the log.
fn state_at(store: &dyn Store, revision: u64) -> Organization {
    let mut entries = store.operations("o", 0).unwrap();
    entries.truncate(revision as usize);
    strata_store::replay("o", entries, &mut |_, _| {})
        .unwrap()
        .0
}

fn checkpoint_at(store: &dyn Store, revision: u64) {
    let bytes = strata_checkpoint::encode(&state_at(store, revision));
    assert!(
        store
            .put_checkpoint("o", revision, strata_checkpoint::FORMAT_VERSION, &bytes, 1)
            .unwrap()
    );
}

#[track_caller]
fn assert_same(a: &Organization, b: &Organization) {
    assert_eq!(a.differences(b), Vec::<&str>::new());
    assert_eq!(a.canonical_dump(), b.canonical_dump());
    // The stamps (D165), which the dump leaves out, and at the log's times (never 0).
    assert_eq!(a.stamps_dump(), b.stamps_dump());
    assert!(a.record_ids().all(|r| a.record(r).stamps.created_at > 0));
    assert!(a.indexes_are_current() && a.record_index_is_current());
}

fn generated(records: usize) -> Vec<Vec<Operation>> {
    let mut chunks = vec![strata_demo::generate::setup(5)];
    let step = records / 4;
    for i in 0..4 {
        chunks.push(strata_demo::generate::records(5, i * step, (i + 1) * step));
    }
    chunks
}

#[test]
fn the_generated_organisation_loads_from_a_checkpoint_and_its_tail() {
    let store = MemoryStore::new().unwrap();
    let revisions = stored(&store, &generated(2_000));
    let (full, head) = load_organization(&store, "o").unwrap();
    assert_eq!(head, *revisions.last().unwrap());
    // No checkpoint: the whole log.
    let (org, revision, from) = load(&store, "o", &mut |_, _| {}).unwrap();
    assert_eq!((revision, from.checkpoint), (head, None));
    assert_same(&org, &full);
    // A checkpoint in the middle: it and the tail.
    let at = revisions[2];
    checkpoint_at(&store, at);
    let mut seen = Vec::new();
    let (org, revision, from) = load(&store, "o", &mut |done, all| seen.push((done, all))).unwrap();
    assert_eq!((revision, from.checkpoint), (head, Some(at)));
    assert_eq!(from.replayed as u64, head - at);
    assert_same(&org, &full);
    // Progress: the checkpoint's revision at once, then the tail, up to the head.
    assert!(seen.contains(&(at as usize, head as usize)), "{seen:?}");
    assert_eq!(seen.last(), Some(&(head as usize, head as usize)));
    // A checkpoint at the head: no tail.
    checkpoint_at(&store, head);
    let (org, _, from) = load(&store, "o", &mut |_, _| {}).unwrap();
    assert_eq!((from.checkpoint, from.replayed), (Some(head), 0));
    assert_same(&org, &full);
}

#[test]
fn the_demo_loads_from_a_checkpoint_and_its_tail() {
    let store = MemoryStore::new().unwrap();
    let ops = strata_demo::operations(20);
    let half = ops.len() / 2;
    let revisions = stored(&store, &[ops[..half].to_vec(), ops[half..].to_vec()]);
    let (full, _) = load_organization(&store, "o").unwrap();
    checkpoint_at(&store, revisions[0]);
    let (org, _, from) = load(&store, "o", &mut |_, _| {}).unwrap();
    assert_eq!(from.checkpoint, Some(revisions[0]));
    assert_same(&org, &full);
}

/// A checkpoint of the state alone (format 3) loads: its record index rebuilt, the same
/// organisation as the whole log; a newer one with the index stored (format 4) is preferred,
/// and gives the same organisation too. A checkpoint of a format written before records kept
/// their stamps (1 or 2, D165) is not read: the log, which has every operation's time, is.
#[test]
fn a_checkpoint_of_the_state_alone_loads_with_its_index_rebuilt() {
    let store = MemoryStore::new().unwrap();
    let revisions = stored(&store, &generated(1_200));
    let (full, _) = load_organization(&store, "o").unwrap();
    for (format, at) in [(1, revisions[0]), (2, revisions[1])] {
        let bytes = strata_checkpoint::encode_state(&state_at(&store, at).state_ref());
        assert!(store.put_checkpoint("o", at, format, &bytes, 1).unwrap());
        let (org, _, from) = load(&store, "o", &mut |_, _| {}).unwrap();
        assert_eq!(from.checkpoint, None, "format {format}");
        assert_same(&org, &full);
    }
    let state = strata_checkpoint::encode_state(&state_at(&store, revisions[2]).state_ref());
    assert!(
        store
            .put_checkpoint(
                "o",
                revisions[2],
                strata_checkpoint::STATE_FORMAT_VERSION,
                &state,
                1
            )
            .unwrap()
    );
    let (org, _, from) = load(&store, "o", &mut |_, _| {}).unwrap();
    assert_eq!(from.checkpoint, Some(revisions[2]));
    assert_same(&org, &full);
    checkpoint_at(&store, revisions[3]);
    let (org, _, from) = load(&store, "o", &mut |_, _| {}).unwrap();
    assert_eq!(from.checkpoint, Some(revisions[3]));
    assert_same(&org, &full);
}

#[test]
fn a_torn_or_tampered_checkpoint_is_never_used() {
    let store = MemoryStore::new().unwrap();
    let revisions = stored(&store, &generated(800));
    let (full, _) = load_organization(&store, "o").unwrap();
    checkpoint_at(&store, revisions[1]);
    checkpoint_at(&store, revisions[3]);
    // Torn: the newer one loses its bytes; the older one is used.
    store.tamper_checkpoints("o", &mut |c| {
        c.get_mut(&revisions[3]).unwrap().chunks.clear();
    });
    assert!(matches!(
        store.read_checkpoint("o", revisions[3]),
        Err(StoreError::CorruptCheckpoint { .. })
    ));
    let (org, _, from) = load(&store, "o", &mut |_, _| {}).unwrap();
    assert_eq!(from.checkpoint, Some(revisions[1]));
    assert_same(&org, &full);
    // Tampered (a byte changed) too: the whole log.
    store.tamper_checkpoints("o", &mut |c| {
        c.get_mut(&revisions[1]).unwrap().chunks[0].1[20] ^= 1;
    });
    let (org, _, from) = load(&store, "o", &mut |_, _| {}).unwrap();
    assert_eq!(from.checkpoint, None);
    assert_same(&org, &full);
}

#[test]
fn a_checkpoint_that_verifies_but_does_not_decode_is_not_used() {
    let store = MemoryStore::new().unwrap();
    let revisions = stored(&store, &generated(400));
    let (full, _) = load_organization(&store, "o").unwrap();
    // Sealed by the store, but not a checkpoint of this format (a bug, or a future format
    // under the same number): refused by the decoder, the log is used.
    store
        .put_checkpoint(
            "o",
            revisions[2],
            strata_checkpoint::FORMAT_VERSION,
            b"SCKP\x01\x00\x00\x00garbage",
            1,
        )
        .unwrap();
    // A checkpoint of another format is not even read.
    store
        .put_checkpoint("o", revisions[3], 999, b"future", 1)
        .unwrap();
    let (org, _, from) = load(&store, "o", &mut |_, _| {}).unwrap();
    assert_eq!(from.checkpoint, None);
    assert_same(&org, &full);
}

#[test]
fn a_tampered_tail_is_still_a_corrupt_log() {
    let store = MemoryStore::new().unwrap();
    let revisions = stored(&store, &generated(400));
    checkpoint_at(&store, revisions[2]);
    let edited = revisions[3] - 3;
    store.tamper_log("o", &mut |rows, _| {
        let row = rows.iter_mut().find(|r| r.revision == edited).unwrap();
        row.at_ms += 1;
    });
    let e = load(&store, "o", &mut |_, _| {}).unwrap_err();
    assert_eq!(e.code, "corrupt_log", "{e}");
    // And the registry isolates the organisation rather than serve it.
    let registry = Registry::load(&store, None).unwrap();
    assert!(registry.get("o").is_err());
    assert_eq!(registry.isolated()[0].1.code, "corrupt_log");
}

#[test]
fn the_registry_starts_from_checkpoints_takes_them_and_writes_go_on() {
    let store = std::sync::Arc::new(MemoryStore::new().unwrap());
    let revisions = stored(store.as_ref(), &generated(400));
    let head = *revisions.last().unwrap();
    checkpoint_at(store.as_ref(), revisions[1]);
    let registry = Registry::load(store.as_ref(), None).unwrap();
    let handle = registry.get("o").unwrap();
    assert_eq!(handle.checkpointed(), revisions[1]);
    assert_eq!(handle.applied(), head);
    // Fewer operations than `every` since the checkpoint: nothing; then one is taken.
    let every = head - revisions[1] + 1;
    assert!(registry.checkpoint_pass(store.as_ref(), every).is_empty());
    let taken = registry.checkpoint_pass(store.as_ref(), every - 1);
    assert_eq!(taken.len(), 1);
    let t = taken[0].1.as_ref().unwrap();
    assert_eq!((t.revision, t.written), (head, true));
    assert_eq!(handle.checkpointed(), head);
    assert_eq!(
        store
            .checkpoints("o")
            .unwrap()
            .iter()
            .map(|c| c.revision)
            .collect::<Vec<_>>(),
        vec![head, revisions[1]]
    );
    // 0 = never.
    assert!(registry.checkpoint_pass(store.as_ref(), 0).is_empty());
    // A write after the start from a checkpoint, then a restart: the same organisation.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let op: Operation = serde_json::from_value(serde_json::json!(
        {"op": "add_business_unit", "name": "After", "parent": "U0"}
    ))
    .unwrap();
    let dyn_store: std::sync::Arc<dyn Store> = store.clone();
    let written = runtime
        .block_on(handle.write(dyn_store, vec![op], Actor::System))
        .unwrap();
    assert_eq!(written.revision, head + 1);
    let restarted = Registry::load(store.as_ref(), None).unwrap();
    let again = restarted.get("o").unwrap();
    assert_eq!(again.checkpointed(), head);
    let (full, _) = load_organization(store.as_ref(), "o").unwrap();
    assert_same(&again.read_blocking().org, &full);
    assert_same(&handle.read_blocking().org, &full);
}
