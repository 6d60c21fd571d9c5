//! Dry runs and their access difference, against an oracle: on random organisations, random
//! batches of actions and setup operations (the journal tests' 41 kinds of change) run as dry
//! runs leave the organisation exactly as it was, and their difference equals a before/after
//! comparison of single `check`s (Read, for every user × record) and of the deepest grant (for
//! every user × table × privilege).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{DEPTHS, Rng, organisation};
use proptest::prelude::*;
use strata_engine::{
    AccessMask, Actor, AuditSettings, Cascade, Column, ColumnPermission, CreateRecord, FieldShare,
    HierarchyModel, HierarchySettings, Inheritance, NewRecord, Organization, Owner, Ownership,
    Principal, Privilege, RecordState, RoleDefinition, Settings, ShareMode, TeamType, Value,
};
use strata_engine::{Depth, TableId, UserDifference, UserId};

/// Kinds of change [`step`] makes: the authorized actions, then the setup operations.
const KINDS: usize = 41;

/// Extra model the generator does not make: positions, an app, a profile.
fn enrich(org: &mut Organization) {
    let mut s = org.setup();
    let top = s.add_position("Top", None).unwrap();
    s.add_position("Middle", Some(top)).unwrap();
    let role = s.org().role_ids().next().unwrap();
    s.add_app("Sales Hub", vec![role]).unwrap();
    let account = s.org().table_id("account").unwrap();
    s.add_profile(
        "Secrets",
        vec![Principal::User(s.org().user_ids().next().unwrap())],
        vec![ColumnPermission {
            table: account,
            column: "secret".into(),
            read: true,
            update: false,
            create: false,
        }],
    )
    .unwrap();
}

/// Parents for some records, so that inherited access is there before a batch.
fn link(org: &mut Organization, rng: &mut Rng) {
    let records: Vec<_> = org.record_ids().collect();
    let relationships: Vec<_> = org.relationship_ids().collect();
    let mut s = org.setup();
    for _ in 0..6 {
        let (child, parent) = (pick(rng, &records), pick(rng, &records));
        let _ = s.set_lookup(child, pick(rng, &relationships), parent);
    }
}

fn start(seed: u64) -> (Organization, Rng) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut org = organisation(&mut rng);
    enrich(&mut org);
    link(&mut org, &mut rng);
    (org, rng)
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len())]
}

/// Makes one change of `kind` (it may be refused: `Ok` = applied); `tag` keeps names unique.
#[allow(clippy::too_many_lines, reason = "one arm per kind of change")]
fn step(org: &mut Organization, rng: &mut Rng, kind: usize, tag: &str) -> Result<(), String> {
    let users: Vec<_> = org.user_ids().collect();
    let teams: Vec<_> = org.team_ids().collect();
    let roles: Vec<_> = org.role_ids().collect();
    let units: Vec<_> = org.units().ids().collect();
    let records: Vec<_> = org.record_ids().collect();
    let (account, contact) = (
        org.table_id("account").unwrap(),
        org.table_id("contact").unwrap(),
    );
    let template = org.template_id("deal").unwrap();
    let actor = if rng.chance(50) {
        Actor::System
    } else {
        Actor::User(pick(rng, &users))
    };
    let (record, other, user, team, role, unit) = (
        pick(rng, &records),
        pick(rng, &records),
        pick(rng, &users),
        pick(rng, &teams),
        pick(rng, &roles),
        pick(rng, &units),
    );
    let read_write = AccessMask::of(&[Privilege::Read, Privilege::Write]);
    let action = match kind {
        0 => org.create_record(
            actor,
            CreateRecord {
                key: format!("new-{tag}"),
                table: if rng.chance(50) { account } else { contact },
                owner: rng.chance(50).then_some(Owner::User(user)),
                business_unit: None,
                state: RecordState::Active,
                lookups: if rng.chance(50) {
                    vec![("parentid".into(), other)]
                } else {
                    Vec::new()
                },
                fields: vec![
                    ("secret".into(), Value::Int(1)),
                    (format!("extra{}", rng.below(3)), Value::Bool(true)),
                ],
            },
        ),
        1 => org.update_record(
            actor,
            record,
            vec![
                ("name".into(), Value::Text(format!("x{}", rng.below(3)))),
                ("secret".into(), Value::Int(9)),
                (format!("col{}", rng.below(3)), Value::Int(2)),
            ],
        ),
        2 => org.delete_record(actor, record),
        3 => org.assign_record(actor, record, Owner::User(user)),
        4 => org.share_record(
            actor,
            record,
            Principal::User(user),
            read_write,
            ShareMode::Grant,
        ),
        5 => org.revoke_share(actor, record, Principal::User(user)),
        6 => {
            let lookup = if rng.chance(50) {
                "parentid"
            } else {
                "parentaccountid"
            };
            org.associate(actor, record, lookup, other)
        }
        7 => org.disassociate(actor, record, "parentid"),
        8 => org.add_access_team_member(actor, record, template, user),
        9 => org.remove_access_team_member(actor, record, template, user),
        10 => org.assign_role(actor, Principal::User(user), role, None),
        11 => {
            let principal = if rng.chance(50) {
                Principal::User(user)
            } else {
                Principal::Team(team)
            };
            org.remove_role(actor, principal, role)
        }
        12 => org.add_team_member(actor, team, user),
        13 => org.remove_team_member(actor, team, user),
        14 => org.move_user(actor, user, unit),
        15 => org.set_manager(actor, user, Some(pick(rng, &users))),
        _ => return setup_step(org, rng, kind, tag),
    };
    action.map(|_| ()).map_err(|e| e.to_string())
}

#[allow(clippy::too_many_lines, reason = "one arm per kind of change")]
fn setup_step(org: &mut Organization, rng: &mut Rng, kind: usize, tag: &str) -> Result<(), String> {
    let users: Vec<_> = org.user_ids().collect();
    let teams: Vec<_> = org.team_ids().collect();
    let roles: Vec<_> = org.role_ids().collect();
    let units: Vec<_> = org.units().ids().collect();
    let records: Vec<_> = org.record_ids().collect();
    let tables: Vec<_> = org.table_ids().collect();
    let account = org.table_id("account").unwrap();
    let template = org.template_id("deal").unwrap();
    let (record, other, user, team, role, unit, table) = (
        pick(rng, &records),
        pick(rng, &records),
        pick(rng, &users),
        pick(rng, &teams),
        pick(rng, &roles),
        pick(rng, &units),
        if rng.chance(50) {
            tables[tables.len() - 1]
        } else {
            pick(rng, &tables)
        },
    );
    let relationship = org.relationship_ids().next().unwrap();
    let top = org.position_id("Top").unwrap();
    let app = org.app_id("Sales Hub").unwrap();
    let mut privileges = Vec::new();
    for t in [account, table] {
        for p in Privilege::ALL {
            if rng.chance(50) {
                privileges.push((t, p, DEPTHS[rng.below(5)]));
            }
        }
    }
    let mut s = org.setup();
    let r = match kind {
        16 => s.set_settings(Settings {
            share_to_previous_owner_on_assign: rng.chance(50),
            ownership_across_business_units: rng.chance(50),
            do_not_remove_roles_on_change_business_unit: rng.chance(50),
            always_move_record_to_owner_business_unit: rng.chance(50),
            hierarchy: rng.chance(50).then_some(HierarchySettings {
                model: if rng.chance(50) {
                    HierarchyModel::Manager
                } else {
                    HierarchyModel::Position
                },
                depth: 3,
                tables: None,
                managers_must_be_in_same_or_parent_business_unit: rng.chance(50),
            }),
        }),
        17 => s.set_audit(AuditSettings {
            enabled: true,
            retention_days: 7,
            user_access: rng.chance(50),
            tables: ["account".to_owned()].into(),
            columns_off: ["account.secret".to_owned()].into(),
        }),
        18 => s
            .add_business_unit(&format!("bu-{tag}"), Some(unit))
            .map(|_| ()),
        19 => s.move_business_unit(unit, pick(rng, &units)),
        20 => s
            .add_table(
                &format!("table-{tag}"),
                None,
                vec![Column {
                    name: "c".into(),
                    secured: false,
                }],
            )
            .map(|_| ()),
        21 => s
            .add_table(
                "systemuser",
                None,
                vec![Column {
                    name: format!("c{}", rng.below(3)),
                    secured: rng.chance(50),
                }],
            )
            .map(|_| ()),
        22 => s
            .add_relationship(
                &format!("rel-{tag}"),
                account,
                table,
                &format!("lookup-{tag}"),
                Cascade::PARENTAL,
            )
            .map(|_| ()),
        23 => s
            .add_role(RoleDefinition {
                name: format!("role-{tag}"),
                business_unit: Some(unit),
                inheritance: Inheritance::UserAndTeam,
                system_administrator: false,
                privileges,
                misc: vec!["prvActOnBehalfOfAnotherUser".into()],
            })
            .map(|_| ()),
        24 => s.set_role_privileges(role, privileges, Vec::new()),
        25 => {
            s.set_user_enabled(user, rng.chance(50));
            Ok(())
        }
        26 => s
            .add_position(&format!("pos-{tag}"), Some(top))
            .map(|p| s.set_position(user, Some(p))),
        27 => s.add_user(&format!("user-{tag}"), unit, true).map(|_| ()),
        28 => s.assign_user_role(user, role, None),
        29 => s.set_manager(user, Some(pick(rng, &users))),
        30 => {
            s.set_user_fields(
                user,
                vec![(format!("f{}", rng.below(3)), Value::Text("v".into()))],
            );
            Ok(())
        }
        31 => s
            .add_team(&format!("team-{tag}"), TeamType::Owner, unit)
            .map(|t| s.add_team_member(t, user)),
        32 => s.assign_team_role(team, role),
        33 => s
            .add_template(
                &format!("tpl-{tag}"),
                account,
                AccessMask::of(&[Privilege::Read]),
            )
            .map(|_| ()),
        34 => s
            .add_record(NewRecord {
                key: format!("setup-{tag}"),
                table,
                owner: match s.org().table(table).ownership {
                    Ownership::UserOrTeam => Owner::User(user),
                    _ => Owner::None,
                },
                business_unit: None,
                state: RecordState::Active,
                fields: vec![("name".into(), Value::Text(tag.to_owned()))],
            })
            .map(|_| ()),
        35 => s.set_lookup(record, relationship, other),
        36 => s.share(
            record,
            Principal::User(user),
            AccessMask::of(&[Privilege::Read]),
        ),
        37 => s.add_access_team_member(record, template, user),
        38 => s
            .add_profile(
                &format!("profile-{tag}"),
                vec![Principal::Team(team)],
                Vec::new(),
            )
            .map(|_| ()),
        39 => s.add_field_share(
            record,
            FieldShare {
                column: "secret".into(),
                principal: Principal::User(user),
                read: true,
                update: true,
            },
        ),
        _ => {
            s.set_app_roles(app, vec![role]);
            s.add_app(&format!("app-{tag}"), vec![role]).map(|_| ())
        }
    };
    r.map_err(|e| e.to_string())
}

/// Asserts that `org` is exactly `expected`, with current indexes.
fn assert_same(org: &Organization, expected: &Organization, context: &str) {
    let differences = org.differences(expected);
    assert!(differences.is_empty(), "{context}: {differences:?} differ");
    assert!(
        org.indexes_are_current(),
        "{context}: derived indexes stale"
    );
    assert!(
        org.record_index_is_current(),
        "{context}: record index stale"
    );
}

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
