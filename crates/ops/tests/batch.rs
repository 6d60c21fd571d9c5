//! Batches all or nothing: a refused operation undoes the ones before it through the undo
//! journal, exactly and in microseconds, where the server used to replay the whole log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use serde_json::json;
use strata_demo::generate;
use strata_engine::Organization;
use strata_ops::{
    BatchStep, OpError, OpErrorKind, Operation, apply, apply_all, apply_batch, apply_batch_open,
};

fn ops(v: serde_json::Value) -> Vec<Operation> {
    serde_json::from_value(v).unwrap()
}

fn org() -> Organization {
    let mut org = Organization::new();
    apply_all(
        &mut org,
        &ops(json!([
            {"op": "add_business_unit", "name": "Contoso"},
            {"op": "add_business_unit", "name": "Sales", "parent": "Contoso"},
            {"op": "add_table", "name": "account", "columns": [{"name": "name"}]},
            {"op": "add_table", "name": "contact"},
            {"op": "add_relationship", "name": "account_contacts", "parent": "account",
             "child": "contact", "lookup": "parentid", "behavior": "parental"},
            {"op": "add_role", "name": "Delegated Admin", "privileges": {
                "businessunit": {"create": "business_unit"},
                "account": {"read": "organization"}
            }},
            {"op": "add_role", "name": "Seller", "privileges": {
                "account": {"create": "user", "read": "user", "write": "user", "append_to": "user"},
                "contact": {"create": "user", "read": "user", "append": "user"}
            }},
            {"op": "add_role", "name": "System Administrator", "system_administrator": true},
            {"op": "add_user", "name": "delegate", "business_unit": "Sales"},
            {"op": "add_user", "name": "root", "business_unit": "Contoso"},
            {"op": "add_user", "name": "seller", "business_unit": "Sales"},
            {"op": "assign_role", "principal": "delegate", "role": "Delegated Admin"},
            {"op": "assign_role", "principal": "root", "role": "System Administrator"},
            {"op": "assign_role", "principal": "seller", "role": "Seller"},
            {"op": "insert_record", "id": "acc-root", "table": "account", "owner": "root"}
        ])),
    )
    .unwrap();
    org
}

fn assert_same(org: &Organization, expected: &Organization) {
    assert_eq!(org.differences(expected), Vec::<&str>::new());
    assert!(!org.checkpoint_open());
    assert_eq!(org.journal_len(), 0);
}

/// The next operations get the same ids (and results) as on an organisation that never saw
/// the refused batch.
fn assert_same_future(org: &mut Organization, expected: &mut Organization) {
    let next = ops(json!([
        {"op": "create", "as": "seller", "table": "account", "id": "later"},
        {"op": "add_user", "name": "later", "business_unit": "Sales"}
    ]));
    for op in &next {
        assert_eq!(apply(org, op), apply(expected, op));
    }
    assert_same(org, expected);
}

#[test]
fn a_refused_batch_changes_nothing() {
    let mut org = org();
    let mut untouched = org.clone();
    let batch = ops(json!([
        {"op": "create", "as": "seller", "table": "account", "id": "a1", "fields": {"name": "A"}},
        {"op": "create", "as": "seller", "table": "contact", "id": "c1", "lookups": {"parentid": "a1"}},
        {"op": "add_user", "name": "newcomer", "business_unit": "Sales"},
        {"op": "update", "as": "seller", "record": "acc-root", "fields": {"name": "mine"}}
    ]));
    let (i, e) = apply_batch(&mut org, &batch, None, None).unwrap_err();
    assert_eq!((i, e.kind), (3, OpErrorKind::Denied));
    assert_same(&org, &untouched);
    assert_same_future(&mut org, &mut untouched);
}

#[test]
fn a_batch_applies_whole() {
    let mut org = org();
    let batch = ops(json!([
        {"op": "create", "as": "seller", "table": "account", "id": "a1"},
        {"op": "update", "as": "seller", "record": "a1", "fields": {"name": "renamed"}},
        {"op": "add_user", "name": "newcomer", "business_unit": "Sales"}
    ]));
    let mut plain = org.clone();
    apply_all(&mut plain, &batch).unwrap();
    let changes = apply_batch(&mut org, &batch, None, None).unwrap();
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[0].len(), 1);
    assert!(
        changes[2].is_empty(),
        "setup operations report no engine change"
    );
    assert_same(&org, &plain);
}

#[test]
fn setup_operations_are_authorized_for_the_sender() {
    let mut org = org();
    let untouched = org.clone();
    let batch = ops(json!([
        {"op": "add_business_unit", "name": "Sales West", "parent": "Sales"},
        {"op": "add_table", "name": "invoice"}
    ]));
    // The delegate may add units but not customize.
    let (i, e) = apply_batch(&mut org, &batch, None, Some("delegate")).unwrap_err();
    assert_eq!((i, e.kind), (1, OpErrorKind::Denied));
    assert_same(&org, &untouched);
    apply_batch(&mut org, &batch, None, Some("root")).unwrap();
    assert!(org.table_id("invoice").is_some());
}

#[test]
fn on_behalf_needs_the_privilege_for_every_operation() {
    let mut org = org();
    let untouched = org.clone();
    let batch = ops(json!([
        {"op": "create", "as": "seller", "table": "account", "id": "a1"}
    ]));
    let (i, e) = apply_batch(&mut org, &batch, Some("delegate"), None).unwrap_err();
    assert_eq!((i, e.kind), (0, OpErrorKind::Denied));
    assert_same(&org, &untouched);
    apply_batch(&mut org, &batch, Some("root"), None).unwrap();
    assert!(org.record_id("a1").is_some());
}

#[test]
fn the_hook_sees_each_step_and_can_refuse() {
    let mut org = org();
    let untouched = org.clone();
    let batch = ops(json!([
        {"op": "create", "as": "seller", "table": "account", "id": "a1"},
        {"op": "create", "as": "seller", "table": "account", "id": "a2"}
    ]));
    let mut seen = Vec::new();
    let refused = apply_batch_open(&mut org, &batch, None, |org, i, _, step| {
        seen.push((i, matches!(step, BatchStep::After(_)), org.record_count()));
        match step {
            BatchStep::After(changes) if i == 1 => {
                assert_eq!(changes.len(), 1);
                Err(OpError {
                    kind: OpErrorKind::Invalid,
                    code: "store_full",
                    message: "no room".into(),
                })
            }
            _ => Ok(()),
        }
    });
    assert_eq!(refused.unwrap_err().1.code, "store_full");
    let n = untouched.record_count();
    assert_eq!(
        seen,
        vec![
            (0, false, n),
            (0, true, n + 1),
            (1, false, n + 1),
            (1, true, n + 2)
        ]
    );
    assert_same(&org, &untouched);
    // Left open, the checkpoint is the caller's to keep or undo (a store that failed).
    let (checkpoint, _) = apply_batch_open(&mut org, &batch, None, |_, _, _, _| Ok(())).unwrap();
    assert!(org.checkpoint_open());
    org.rollback(checkpoint).unwrap();
    assert_same(&org, &untouched);
}

/// The generated benchmark organisation with `records` records, as operations.
fn generated(records: usize) -> Vec<Operation> {
    let mut all = generate::setup(1);
    all.extend(generate::records(1, 0, records));
    all
}

/// `[a valid operation, a refused one]` as an ordinary user: the valid one updates a record
/// the user owns, the refused one deletes a record (the user holds no Delete privilege).
fn attack() -> Vec<Operation> {
    ops(json!([
        {"op": "update", "as": "reader_user", "record": "r0", "fields": {"city": "Atlantis"}},
        {"op": "delete", "as": "reader_user", "record": "r1"}
    ]))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Runs the refused batch `runs` times; the organisation is unchanged after each.
fn refused_batch_cost(org: &mut Organization, runs: usize) -> Duration {
    let batch = attack();
    let samples = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let (i, _) = apply_batch(org, &batch, None, Some("reader_user")).unwrap_err();
            let took = start.elapsed();
            assert_eq!(i, 1);
            took
        })
        .collect();
    median(samples)
}

#[test]
fn a_refused_batch_on_a_generated_organisation_changes_nothing() {
    let all = generated(2_000);
    let mut org = Organization::new();
    apply_all(&mut org, &all).unwrap();
    let untouched = org.clone();
    refused_batch_cost(&mut org, 3);
    assert_same(&org, &untouched);
    assert!(org.record_index_is_current() && org.indexes_are_current());
}

/// The cost of a refused 2-operation batch against the full replay the server did before. Runs
/// small in the suite; the figures in BENCHMARKS.md come from
/// `STRATA_BATCH_RECORDS=100000 cargo test --release -p strata-ops --test batch refused_batch_against_replay -- --nocapture`.
#[test]
fn refused_batch_against_replay() {
    let records = std::env::var("STRATA_BATCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let all = generated(records);
    let replay = |all: &[Operation]| {
        let start = Instant::now();
        let mut org = Organization::new();
        apply_all(&mut org, all).unwrap();
        (start.elapsed(), org)
    };
    let (first, mut org) = replay(&all);
    let replays = median(vec![first, replay(&all).0, replay(&all).0]);
    let untouched = org.clone();
    let batch = refused_batch_cost(&mut org, 501);
    assert_same(&org, &untouched);
    // For scale: the valid operation alone, committed (alternating values, so each changes).
    let kept: Vec<Duration> = (0..101)
        .map(|k| {
            let city = if k % 2 == 0 { "Lemuria" } else { "Atlantis" };
            let valid = ops(json!([
                {"op": "update", "as": "reader_user", "record": "r0", "fields": {"city": city}}
            ]));
            let start = Instant::now();
            apply_batch(&mut org, &valid, None, Some("reader_user")).unwrap();
            start.elapsed()
        })
        .collect();
    let alone = median(kept);
    println!(
        "organisation: {} operations, {} records, {} users",
        all.len(),
        org.record_count(),
        org.user_ids().count()
    );
    println!("full replay (what a refused batch cost): median of 3 = {replays:?}");
    println!("refused 2-operation batch with the journal: median of 501 = {batch:?}");
    println!("the valid operation alone, committed: median of 101 = {alone:?}");
}

/// `add_columns` (added with the security rules) goes through the journal's accessors: a
/// refused batch takes the new column and its index away again.
#[test]
fn a_refused_batch_takes_added_columns_away() {
    let mut org = org();
    let untouched = org.clone();
    let batch = ops(json!([
        {"op": "add_columns", "table": "account", "columns": [{"name": "city"}]},
        {"op": "insert_record", "id": "acc-2", "table": "account", "owner": "root",
         "fields": {"name": "B", "city": "Oslo"}},
        {"op": "delete", "as": "seller", "record": "acc-root"}
    ]));
    let refused = apply_batch(&mut org, &batch, None, None);
    assert!(matches!(refused, Err((2, _))), "{refused:?}");
    assert_same(&org, &untouched);
    assert!(org.record_index_is_current() && org.indexes_are_current());
    // The column is unknown again.
    let update = ops(json!([
        {"op": "update", "as": "root", "record": "acc-root", "fields": {"city": "Oslo"}}
    ]));
    let err = apply_batch(&mut org, &update, None, None).unwrap_err();
    assert_eq!(err.1.code, "unknown_column");
}
