//! The undo journal: on random organisations, random batches of actions and setup operations
//! rolled back leave the organisation exactly as it was — the canonical dump, the names, the
//! derived indexes and the record index equal the pre-batch ones — and the next operation gets
//! the ids it gets on an organisation that never saw the batch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{DEPTHS, Rng, organisation};
use proptest::prelude::*;
use strata_engine::{
    AccessMask, Actor, AuditSettings, Cascade, Column, ColumnPermission, CreateRecord, FieldShare,
    HierarchyModel, HierarchySettings, Inheritance, NewRecord, Organization, Owner, Ownership,
    Principal, Privilege, RecordState, RoleDefinition, Settings, ShareMode, TeamType, Value,
};

/// Kinds of change [`step`] makes: the authorized actions, then the setup operations.
const KINDS: usize = 47;

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
        41 => s.rename_role(role, &format!("renamed-{tag}")),
        42 => s.copy_role(role, &format!("copy-{tag}")).map(|_| ()),
        43 => s.set_role_privilege(
            role,
            table,
            Privilege::ALL[rng.below(8)],
            DEPTHS[rng.below(5)],
        ),
        44 => {
            let successor = pick(rng, &roles);
            let deprecation = rng
                .chance(75)
                .then(|| (format!("retired {tag}"), vec![successor]));
            s.set_role_deprecation(role, deprecation)
        }
        45 => s.replace_role(role, pick(rng, &roles)).map(|_| ()),
        46 => s.delete_role(role, rng.chance(75).then(|| pick(rng, &roles))),
        _ => {
            s.set_app_roles(app, vec![role]);
            s.set_app_needs(
                app,
                vec![strata_engine::AppNeed {
                    table: account,
                    privilege: Privilege::Write,
                    depth: strata_engine::Depth::BusinessUnit,
                }],
            )
            .map_err(|e| e.to_string())?;
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
    let (mut org, mut rng) = start(seed);
    let mut untouched = org.clone();
    let checkpoint = org.checkpoint();
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

    /// A committed batch equals the same batch applied with no checkpoint.
    #[test]
    fn commit_keeps_the_batch(seed in 1..u64::MAX, kinds in prop::collection::vec(0..KINDS, 1..8)) {
        let (mut org, rng) = start(seed);
        let mut plain = org.clone();
        let (mut rng_a, mut rng_b) = (Rng(rng.0), Rng(rng.0));
        let checkpoint = org.checkpoint();
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
    ) {
        let (mut org, mut rng) = start(seed);
        let untouched = org.clone();
        let outer = org.checkpoint();
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
            assert_same(&org, &middle, "inner rollback");
        }
        for (i, kind) in third.iter().enumerate() {
            let _ = step(&mut org, &mut rng, *kind, &format!("t{i}"));
        }
        org.rollback(outer).unwrap();
        assert_same(&org, &untouched, "outer rollback");
    }
}

/// Each kind of change alone, applied then rolled back, on many organisations; every kind is
/// applied (not only refused) at least once.
fn each_kind(kind: usize) {
    let mut applied = 0;
    for seed in 1..=40u64 {
        applied += batch_then_rollback(seed, &[kind, kind, kind]);
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
