//! Dry runs and their access difference, against an oracle: on random organisations, random
//! batches of actions and setup operations (the journal tests' kinds of change) run as dry
//! runs leave the organisation exactly as it was, and their difference equals a before/after
//! comparison of single `check`s (Read, for every user × record) and of the deepest grant (for
//! every user × table × privilege).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::Rng;
use common::steps::{KINDS, assert_same, start, step};
use proptest::prelude::*;
use strata_engine::{
    Actor, Inheritance, NewRecord, Organization, Owner, Privilege, RecordState, RoleDefinition,
    TeamType,
};
use strata_engine::{Depth, TableId, UserDifference, UserId};

/// What the oracle expects of one user: Read gained/lost per table, deepest grant
/// before/after per (table, privilege) where it changes, System Administrator and enabled.
#[derive(Debug, Default, PartialEq, Eq)]
struct Expected {
    records: BTreeMap<String, (u64, u64)>,
    depths: BTreeMap<(String, &'static str), (Depth, Depth)>,
    admin: (bool, bool),
    enabled: (bool, bool),
}

impl Expected {
    fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.depths.is_empty()
            && self.admin.0 == self.admin.1
            && self.enabled.0 == self.enabled.1
    }
}

fn deepest(org: &Organization, user: UserId, table: TableId, privilege: Privilege) -> Depth {
    org.grants(user, table, privilege)
        .iter()
        .map(|g| g.depth)
        .max()
        .unwrap_or(Depth::None)
}

/// The oracle: single checks and grants, before and after.
fn oracle(before: &Organization, after: &Organization) -> BTreeMap<String, Expected> {
    let users_before = before.user_ids().count();
    let records_before = before.record_ids().count();
    let tables_before = before.table_ids().count();
    let mut out = BTreeMap::new();
    for u in after.user_ids() {
        let existed = u.index() < users_before;
        let mut e = Expected {
            admin: (
                existed && before.system_administrator(u).is_some(),
                after.system_administrator(u).is_some(),
            ),
            enabled: (existed && before.user(u).enabled, after.user(u).enabled),
            ..Expected::default()
        };
        for r in after.record_ids() {
            let was = existed && r.index() < records_before && before.check(u, Privilege::Read, r);
            let is = after.check(u, Privilege::Read, r);
            if was != is {
                let table = after.table(after.record(r).table).name.clone();
                let entry = e.records.entry(table).or_default();
                if is {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
        for t in after.table_ids() {
            for p in Privilege::ALL {
                let was = if existed && t.index() < tables_before {
                    deepest(before, u, t, p)
                } else {
                    Depth::None
                };
                let is = deepest(after, u, t, p);
                if was != is {
                    e.depths
                        .insert((after.table(t).name.clone(), p.name()), (was, is));
                }
            }
        }
        if !e.is_empty() || !existed {
            out.insert(after.user(u).name.clone(), e);
        }
    }
    out
}

fn reported(d: &UserDifference) -> Expected {
    let mut e = Expected {
        admin: d.system_administrator,
        enabled: d.enabled,
        ..Expected::default()
    };
    for r in &d.records {
        assert!(r.gained > 0 || r.lost > 0, "an empty row for {}", d.name);
        e.records.insert(r.table.clone(), (r.gained, r.lost));
    }
    for p in &d.privileges {
        assert!(
            !p.lost.is_empty() || !p.gained.is_empty(),
            "a privilege row without a grant change for {}",
            d.name
        );
        if p.before != p.after {
            e.depths
                .insert((p.table.clone(), p.privilege.name()), (p.before, p.after));
        }
    }
    e
}

/// Runs `kinds` as a dry run on the organisation of `seed` and checks it against the oracle;
/// returns how many users the difference names.
fn dry_run_matches_oracle(seed: u64, kinds: &[usize]) -> usize {
    let (mut org, rng) = start(seed);
    let before = org.clone();
    let mut after = org.clone();
    let (mut rng_a, mut rng_b) = (Rng(rng.0), Rng(rng.0));
    for (i, kind) in kinds.iter().enumerate() {
        let _ = step(&mut after, &mut rng_a, *kind, &format!("d{i}"));
    }
    let revision_digest = org.canonical_dump();
    let ((), difference) = org
        .dry_run(|o| {
            for (i, kind) in kinds.iter().enumerate() {
                let _ = step(o, &mut rng_b, *kind, &format!("d{i}"));
            }
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
    let context = format!("seed {seed}, kinds {kinds:?}");
    // In steps of one user each (as a server lets readers in between them, D54): the same
    // difference, the change applied again at every step.
    let mut taking = None;
    let stepped = loop {
        let mut rng_c = Rng(rng.0);
        let ((), step) = org
            .dry_run_step(
                taking.take(),
                Some(std::time::Duration::ZERO),
                &|| true,
                |o| {
                    for (i, kind) in kinds.iter().enumerate() {
                        let _ = step(o, &mut rng_c, *kind, &format!("d{i}"));
                    }
                    Ok::<(), ()>(())
                },
            )
            .unwrap()
            .unwrap();
        match step.finish() {
            Ok(after) => break org.access_difference(after),
            Err(step) => taking = Some(step),
        }
    };
    assert_eq!(stepped, difference, "{context}: in steps");
    assert_same(&org, &before, &context);
    assert_eq!(org.canonical_dump(), revision_digest, "{context}");
    assert!(!org.checkpoint_open(), "{context}");
    let expected = oracle(&before, &after);
    let mut got = BTreeMap::new();
    for d in &difference.users {
        assert_eq!(after.user(d.user).name, d.name, "{context}");
        assert_eq!(
            d.new,
            d.user.index() >= before.user_ids().count(),
            "{context}"
        );
        got.insert(d.name.clone(), reported(d));
    }
    // Users the difference names for a change of grant source only (same deepest depth).
    for (name, e) in &got {
        if !expected.contains_key(name) {
            assert!(
                e.is_empty(),
                "{context}: `{name}` reported {e:?}, the oracle sees no change"
            );
        }
    }
    for (name, e) in &expected {
        assert_eq!(got.get(name), Some(e), "{context}: user `{name}`");
    }
    difference.users.len()
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// Random batches of any kind of change.
    #[test]
    fn difference_equals_single_checks(seed in 1..u64::MAX, kinds in prop::collection::vec(0..KINDS, 1..8)) {
        dry_run_matches_oracle(seed, &kinds);
    }

    /// Batches of the changes the difference is for: role edits, assignments, team membership,
    /// user and unit moves, shares, record owners and parents.
    #[test]
    fn difference_of_access_changes(
        seed in 1..u64::MAX,
        kinds in prop::collection::vec(prop::sample::select(vec![3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 19, 24, 28, 32, 36]), 1..6),
    ) {
        dry_run_matches_oracle(seed, &kinds);
    }
}

/// Each kind of change alone finds differences on some organisations (the test can fail).
#[test]
fn each_kind_alone() {
    let mut named = 0;
    for kind in 0..KINDS {
        for seed in 1..6 {
            named += dry_run_matches_oracle(seed * 7919 + kind as u64, &[kind]);
        }
    }
    assert!(named > 0);
}

/// A role edit shows the holders' privileges and records, with the role as the source.
#[test]
fn role_edit_names_holders_and_sources() {
    let (mut org, _) = start(42);
    let account = org.table_id("account").unwrap();
    let role = org
        .role_ids()
        .find(|r| !org.role(*r).system_administrator)
        .unwrap();
    let role_name = org.role(role).name.clone();
    let before = org.clone();
    let ((), difference) = org
        .dry_run(|o| {
            o.setup()
                .set_role_privileges(
                    role,
                    vec![(account, Privilege::Read, Depth::Organization)],
                    Vec::new(),
                )
                .map_err(|e| e.to_string())
        })
        .unwrap()
        .unwrap();
    assert_same(&org, &before, "role edit");
    let mut after = org.clone();
    after
        .setup()
        .set_role_privileges(
            role,
            vec![(account, Privilege::Read, Depth::Organization)],
            Vec::new(),
        )
        .unwrap();
    assert_eq!(
        oracle(&before, &after).len(),
        difference.users.len(),
        "{difference:?}"
    );
    let holder = difference
        .users
        .iter()
        .flat_map(|u| &u.privileges)
        .find(|p| p.table == "account" && p.privilege == Privilege::Read)
        .expect("a holder gains read on account");
    assert!(
        holder
            .gained
            .iter()
            .any(|g| g.role == role_name && g.depth == Depth::Organization)
    );
}

/// A failing change is rolled back and its error returned; nothing changes.
#[test]
fn failing_dry_run_changes_nothing() {
    let (mut org, mut rng) = start(7);
    let before = org.clone();
    let result = org
        .dry_run(|o| {
            let _ = step(o, &mut rng, 10, "ok");
            let _ = step(o, &mut rng, 24, "ok");
            Err::<(), _>("refused")
        })
        .unwrap();
    assert_eq!(result, Err("refused"));
    assert_same(&org, &before, "refused dry run");
}

/// Joining a team that holds no role changes no grant, yet gives what the team owns: the
/// difference sees the member's teams, not only grants.
#[test]
fn joining_a_team_without_roles_gives_its_records() {
    let (mut org, _) = start(11);
    let account = org.table_id("account").unwrap();
    let unit = org.units().root().unwrap();
    let (user, team) = {
        let mut s = org.setup();
        let role = s
            .add_role(RoleDefinition {
                name: "Own only".into(),
                business_unit: None,
                inheritance: Inheritance::UserAndTeam,
                system_administrator: false,
                privileges: vec![(account, Privilege::Read, Depth::User)],
                misc: Vec::new(),
            })
            .unwrap();
        let user = s.add_user("joiner", unit, true).unwrap();
        s.assign_user_role(user, role, None).unwrap();
        let team = s.add_team("Roleless", TeamType::Owner, unit).unwrap();
        for i in 0..3 {
            s.add_record(NewRecord {
                key: format!("team-owned-{i}"),
                table: account,
                owner: Owner::Team(team),
                business_unit: None,
                state: RecordState::Active,
                fields: Vec::new(),
            })
            .unwrap();
        }
        (user, team)
    };
    let before = org.clone();
    let mut after = org.clone();
    after.add_team_member(Actor::System, team, user).unwrap();
    let ((), difference) = org
        .dry_run(|o| o.add_team_member(Actor::System, team, user).map(|_| ()))
        .unwrap()
        .unwrap();
    assert_same(&org, &before, "team join");
    let joiner = difference
        .users
        .iter()
        .find(|u| u.name == "joiner")
        .unwrap();
    assert!(joiner.privileges.is_empty(), "{joiner:?}");
    assert_eq!(joiner.records.len(), 1, "{joiner:?}");
    assert_eq!((joiner.records[0].gained, joiner.records[0].lost), (3, 0));
    assert_eq!(
        oracle(&before, &after).get("joiner"),
        Some(&reported(joiner))
    );
}
