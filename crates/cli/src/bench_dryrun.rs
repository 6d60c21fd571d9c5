//! `strata bench dry-run`: dry runs (apply under a checkpoint → access difference → rollback,
//! `Organization::dry_run`) of a few kinds of change on the generated organisation, against
//! the same batch applied and rolled back without a difference; prints a table.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde_json::json;
use strata_engine::Organization;
use strata_ops::Operation;

use crate::bench_cmd::{build, time};

fn ops(value: serde_json::Value) -> anyhow::Result<Vec<Operation>> {
    Ok(serde_json::from_value(value)?)
}

/// The batch applied and rolled back (no difference): what a dry run costs at least.
fn apply_and_roll_back(org: &mut Organization, batch: &[Operation]) -> anyhow::Result<()> {
    let checkpoint = org.checkpoint();
    let applied = strata_ops::apply_all(org, batch);
    org.rollback(checkpoint)?;
    applied.map_err(|(i, e)| anyhow!("operation {i}: {}", e.message))
}

/// The dry run; returns how many users its difference names and their records gained + lost.
fn dry_run(org: &mut Organization, batch: &[Operation]) -> anyhow::Result<(usize, u64)> {
    let found = org
        .dry_run(|o| strata_ops::apply_all(o, batch))?
        .map_err(|(i, e)| anyhow!("operation {i}: {}", e.message))?;
    let difference = found.1;
    let records = difference
        .users
        .iter()
        .flat_map(|u| &u.records)
        .map(|r| r.gained + r.lost)
        .sum();
    Ok((difference.users.len(), records))
}

/// The dry run as a server runs it (D54): in steps of `slice`, each applying the batch, taking
/// some users' access after it and rolling back, then the comparison. Returns how many steps
/// and the longest (what a reader waits at most for the write lock).
fn stepped(
    org: &mut Organization,
    batch: &[Operation],
    slice: Duration,
) -> anyhow::Result<(usize, Duration)> {
    let (mut taking, mut steps, mut longest) = (None, 0, Duration::ZERO);
    loop {
        let start = Instant::now();
        let (_, step) = org
            .dry_run_step(taking.take(), Some(slice), &|| true, |o| {
                strata_ops::apply_all(o, batch)
            })?
            .map_err(|(i, e)| anyhow!("operation {i}: {}", e.message))?;
        longest = longest.max(start.elapsed());
        steps += 1;
        match step.finish() {
            Ok(after) => {
                std::hint::black_box(org.access_difference(after));
                return Ok((steps, longest));
            }
            Err(step) => taking = Some(step),
        }
    }
}

/// `strata bench dry-run`.
pub fn run(records: usize, seed: u64, runs: usize) -> anyhow::Result<()> {
    let (mut org, built) = build(records, seed)?;
    println!(
        "generated organisation: {} users, {} records in {:.1} s",
        org.user_ids().count(),
        org.record_count(),
        built.as_secs_f64()
    );
    let grid = |read: &str| json!({ "read": read, "write": "user", "create": "user", "share": "user", "append": "user", "append_to": "user" });
    let cases = [
        (
            "role edit: Read Unit → Parent:Child read (half the users hold it)",
            ops(json!([{ "op": "set_role_privileges", "role": "Read Unit",
                "privileges": { "account": grid("parent_child"), "contact": grid("parent_child") } }]))?,
            runs,
        ),
        (
            "role edit: Read Own → Business Unit read",
            ops(json!([{ "op": "set_role_privileges", "role": "Read Own",
                "privileges": { "account": grid("business_unit"), "contact": grid("business_unit") } }]))?,
            runs,
        ),
        (
            "assign role: Read Deep to one user",
            ops(json!([{ "op": "assign_role", "principal": "reader_user", "role": "Read Deep" }]))?,
            runs,
        ),
        (
            "team membership: one user joins a team",
            ops(json!([{ "op": "add_team_member", "team": "team1", "user": "reader_user" }]))?,
            runs,
        ),
        (
            "share: one account to a team",
            ops(
                json!([{ "op": "share", "record": "r1", "principal": "team:team2", "rights": ["read"] }]),
            )?,
            runs,
        ),
        (
            "unit move: a level-1 unit under another (its subtree moved in the index; every user compared)",
            ops(json!([{ "op": "move_business_unit", "name": "U1", "parent": "U2" }]))?,
            runs.min(3),
        ),
    ];
    println!();
    println!("dry runs, {runs} runs each (3 for the unit move); milliseconds");
    println!(
        "| change | users named | records gained + lost | apply + rollback p50 | dry run p50 | p99 \
         | write lock held in one step p50 | stepped (2 ms): dry run p50 | steps | longest step |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, batch, runs) in cases {
        let digest = org.canonical_dump().len();
        let (users, changed) = dry_run(&mut org, &batch)?;
        let mut failed = None;
        let plain = time(runs, || {
            if let Err(e) = apply_and_roll_back(&mut org, &batch) {
                failed = Some(e);
            }
        });
        let dry = time(runs, || {
            if let Err(e) = dry_run(&mut org, &batch) {
                failed = Some(e);
            }
        });
        let one_hold = time(runs, || {
            match org.dry_run_after(|o| strata_ops::apply_all(o, &batch)) {
                Ok(Ok(_)) => {}
                Ok(Err((i, e))) => failed = Some(anyhow!("operation {i}: {}", e.message)),
                Err(e) => failed = Some(e.into()),
            }
        });
        let (mut steps, mut longest) = (0, Duration::ZERO);
        let in_steps = time(runs, || {
            match stepped(&mut org, &batch, Duration::from_millis(2)) {
                Ok(found) => (steps, longest) = (found.0, longest.max(found.1)),
                Err(e) => failed = Some(e),
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if org.canonical_dump().len() != digest {
            return Err(anyhow!("{name}: the dry run changed the organisation"));
        }
        println!(
            "| {name} | {users} | {changed} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {steps} | {:.2} |",
            plain.0,
            dry.0,
            dry.1,
            one_hold.0,
            in_steps.0,
            longest.as_secs_f64() * 1e3
        );
    }
    let start = Instant::now();
    let current = org.indexes_are_current() && org.record_index_is_current();
    println!(
        "\nindexes equal a rebuild afterwards: {current} ({:.1} s to verify)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
