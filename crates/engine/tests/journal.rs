//! The undo journal: on random organisations, random batches of actions and setup operations
//! rolled back leave the organisation exactly as it was — the canonical dump, the names, the
//! derived indexes and the record index equal the pre-batch ones — and the next operation gets
//! the ids it gets on an organisation that never saw the batch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Rng;
use common::steps::{KINDS, assert_same, start, step};
use proptest::prelude::*;
use strata_engine::{Actor, CreateRecord, Organization, Owner, RecordState, Value};

/// One more change of each of a few kinds gives the same result (ids included) on both.
fn assert_same_future(org: &mut Organization, expected: &mut Organization, seed: u64) {
    for kind in [0, 27, 31, 18, 22, 34, 8, 1] {
        let mut a = Rng(seed | 1);
        let mut b = Rng(seed | 1);
        let ra = step(org, &mut a, kind, "after");
        let rb = step(expected, &mut b, kind, "after");
        assert_eq!(ra, rb, "kind {kind} after the rollback");
    }
    assert_same(org, expected, "after further changes");
}

/// Applies a random batch and rolls it back; returns how many of its changes were applied.
fn batch_then_rollback(seed: u64, kinds: &[usize]) -> usize {
    batch_then_rollback_as(seed, kinds, false)
}

/// [`batch_then_rollback`], the batch opened as a try (the column indexes left as they are
/// until the rollback) when `trying`.
fn batch_then_rollback_as(seed: u64, kinds: &[usize], trying: bool) -> usize {
    let (mut org, mut rng) = start(seed);
    let mut untouched = org.clone();
    let checkpoint = if trying {
        org.checkpoint_for_try()
    } else {
        org.checkpoint()
    };
    let mut applied = 0;
    for (i, kind) in kinds.iter().enumerate() {
        if step(&mut org, &mut rng, *kind, &format!("b{i}")).is_ok() {
            applied += 1;
        }
    }
    org.rollback(checkpoint).unwrap();
    assert!(!org.checkpoint_open());
    assert_eq!(org.journal_len(), 0);
    assert_same(&org, &untouched, &format!("seed {seed}, kinds {kinds:?}"));
    assert_same_future(&mut org, &mut untouched, seed);
    applied
}

proptest! {
    // 256 cases; `PROPTEST_CASES` sets more.
    #![proptest_config(ProptestConfig::default())]

    /// A random batch of actions and setup operations, rolled back, leaves nothing behind.
    #[test]
    fn rollback_restores_exactly(seed in 1..u64::MAX, kinds in prop::collection::vec(0..KINDS, 1..12)) {
        batch_then_rollback(seed, &kinds);
    }

    /// A try (D149) rolled back leaves nothing behind either, column indexes included.
    #[test]
    fn a_try_rolled_back_restores_exactly(seed in 1..u64::MAX, kinds in prop::collection::vec(0..KINDS, 1..12)) {
        batch_then_rollback_as(seed, &kinds, true);
    }

    /// A committed batch equals the same batch applied with no checkpoint; a try kept (its
    /// column indexes rebuilt) too.
    #[test]
    fn commit_keeps_the_batch(seed in 1..u64::MAX, kinds in prop::collection::vec(0..KINDS, 1..8), trying in any::<bool>()) {
        let (mut org, rng) = start(seed);
        let mut plain = org.clone();
        let (mut rng_a, mut rng_b) = (Rng(rng.0), Rng(rng.0));
        let checkpoint = if trying { org.checkpoint_for_try() } else { org.checkpoint() };
        for (i, kind) in kinds.iter().enumerate() {
            let a = step(&mut org, &mut rng_a, *kind, &format!("c{i}"));
            let b = step(&mut plain, &mut rng_b, *kind, &format!("c{i}"));
            prop_assert_eq!(a, b);
        }
        org.commit(checkpoint).unwrap();
        prop_assert_eq!(org.journal_len(), 0);
        assert_same(&org, &plain, "committed");
    }

    /// Nested checkpoints: the inner rollback restores the state at the inner checkpoint, the
    /// outer one the state at the outer checkpoint.
    #[test]
    fn nested_checkpoints(
        seed in 1..u64::MAX,
        first in prop::collection::vec(0..KINDS, 0..6),
        second in prop::collection::vec(0..KINDS, 1..6),
        third in prop::collection::vec(0..KINDS, 0..6),
        commit_inner in any::<bool>(),
        trying in any::<bool>(),
    ) {
        let (mut org, mut rng) = start(seed);
        let untouched = org.clone();
        let outer = if trying { org.checkpoint_for_try() } else { org.checkpoint() };
        for (i, kind) in first.iter().enumerate() {
            let _ = step(&mut org, &mut rng, *kind, &format!("o{i}"));
        }
        let middle = org.clone();
        let inner = org.checkpoint();
        for (i, kind) in second.iter().enumerate() {
            let _ = step(&mut org, &mut rng, *kind, &format!("i{i}"));
        }
        if commit_inner {
            org.commit(inner).unwrap();
        } else {
            org.rollback(inner).unwrap();
            if trying {
                // Inside the try, the column indexes are behind on purpose: equal to the state
                // before the inner checkpoint, not to a rebuild.
                let differences = org.differences(&middle);
                prop_assert!(differences.is_empty(), "inner rollback: {:?} differ", differences);
            } else {
                assert_same(&org, &middle, "inner rollback");
            }
        }
        for (i, kind) in third.iter().enumerate() {
            let _ = step(&mut org, &mut rng, *kind, &format!("t{i}"));
        }
        org.rollback(outer).unwrap();
        assert_same(&org, &untouched, "outer rollback");
    }
}

/// Each kind of change alone, applied then rolled back, on many organisations, as a plain
/// checkpoint and as a try; every kind is applied (not only refused) at least once.
fn each_kind(kind: usize) {
    let mut applied = 0;
    for seed in 1..=40u64 {
        applied += batch_then_rollback(seed, &[kind, kind, kind]);
        applied += batch_then_rollback_as(seed, &[kind, kind, kind], true);
    }
    assert!(applied > 0, "kind {kind} was never applied");
}

macro_rules! kind_tests {
    ($($name:ident = $kind:expr;)*) => {
        $(
            #[test]
            fn $name() {
                each_kind($kind);
            }
        )*
    };
}

kind_tests! {
    undo_create_record = 0;
    undo_update_record = 1;
    undo_delete_record = 2;
    undo_assign_record = 3;
    undo_share_record = 4;
    undo_revoke_share = 5;
    undo_associate = 6;
    undo_disassociate = 7;
    undo_add_access_team_member = 8;
    undo_remove_access_team_member = 9;
    undo_assign_role = 10;
    undo_remove_role = 11;
    undo_add_team_member = 12;
    undo_remove_team_member = 13;
    undo_move_user = 14;
    undo_set_manager = 15;
    undo_setup_settings = 16;
    undo_setup_audit = 17;
    undo_setup_add_business_unit = 18;
    undo_setup_move_business_unit = 19;
    undo_setup_add_table = 20;
    undo_setup_built_in_columns = 21;
    undo_setup_add_relationship = 22;
    undo_setup_add_role = 23;
    undo_setup_role_privileges = 24;
    undo_setup_user_enabled = 25;
    undo_setup_position = 26;
    undo_setup_add_user = 27;
    undo_setup_assign_user_role = 28;
    undo_setup_manager = 29;
    undo_setup_user_fields = 30;
    undo_setup_add_team = 31;
    undo_setup_assign_team_role = 32;
    undo_setup_add_template = 33;
    undo_setup_add_record = 34;
    undo_setup_set_lookup = 35;
    undo_setup_share = 36;
    undo_setup_access_team_member = 37;
    undo_setup_add_profile = 38;
    undo_setup_field_share = 39;
    undo_setup_apps = 40;
    undo_setup_rename_role = 41;
    undo_setup_copy_role = 42;
    undo_setup_role_privilege = 43;
    undo_setup_role_deprecation = 44;
    undo_setup_replace_role = 45;
    undo_setup_delete_role = 46;
    undo_setup_rename_business_unit = 47;
    undo_setup_role_misc_privilege = 48;
}

/// A refused token is refused, and an organisation with no open checkpoint journals nothing.
#[test]
fn tokens_and_idle_journal() {
    let (mut org, mut rng) = start(7);
    for i in 0..20 {
        let _ = step(&mut org, &mut rng, i % KINDS, &format!("idle{i}"));
    }
    assert_eq!(org.journal_len(), 0);
    let mut other = org.clone();
    let foreign = other.checkpoint();
    let mine = org.checkpoint();
    assert!(org.rollback(foreign).is_err());
    org.commit(mine).unwrap();
    assert!(!org.checkpoint_open());
}

/// A try whose nested checkpoint rebuilds the record index (a column declared on an existing
/// table) and is then rolled back, inside the try: the column indexes still end as they were
/// before the try once the try is rolled back (D149).
#[test]
fn a_rebuild_rolled_back_inside_a_try_leaves_the_column_indexes_as_before() {
    let mut rebuilt = 0;
    for seed in 1..=40u64 {
        let (mut org, mut rng) = start(seed);
        let untouched = org.clone();
        let outer = org.checkpoint_for_try();
        for i in 0..4 {
            let _ = step(&mut org, &mut rng, 0, &format!("o{i}"));
            let _ = step(&mut org, &mut rng, 1, &format!("u{i}"));
        }
        // A record of a table with declared columns, with a value in one of them.
        let account = org.table_id("account").unwrap();
        let owner = org.user_ids().next().unwrap();
        org.create_record(
            Actor::System,
            CreateRecord {
                key: "wide".into(),
                table: account,
                owner: Some(Owner::User(owner)),
                business_unit: None,
                state: RecordState::Active,
                lookups: Vec::new(),
                fields: vec![("secret".into(), Value::Int(5))],
            },
        )
        .unwrap();
        let middle = org.clone();
        let inner = org.checkpoint();
        if step(&mut org, &mut rng, 21, "rebuild").is_ok() {
            rebuilt += 1;
        }
        org.rollback(inner).unwrap();
        let differences = org.differences(&middle);
        assert!(
            differences.is_empty(),
            "seed {seed}: inner rollback: {differences:?} differ"
        );
        org.rollback(outer).unwrap();
        assert_same(
            &org,
            &untouched,
            &format!("seed {seed}: the try rolled back"),
        );
    }
    assert!(rebuilt > 0, "no step rebuilt the index");
}
