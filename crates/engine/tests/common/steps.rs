//! The random changes the journal and dry-run property tests make: 47 kinds, the authorized
//! actions then the setup operations, on [`super::organisation`]s with a few more parts.

use super::{DEPTHS, Rng, organisation};
use strata_engine::{
    AccessMask, Actor, AuditSettings, Cascade, Column, ColumnPermission, CreateRecord, FieldShare,
    HierarchyModel, HierarchySettings, Inheritance, NewRecord, Organization, Owner, Ownership,
    Principal, Privilege, RecordState, RoleDefinition, Settings, ShareMode, TeamType, Value,
};

/// Kinds of change [`step`] makes: the authorized actions, then the setup operations.
pub const KINDS: usize = 49;

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

pub fn start(seed: u64) -> (Organization, Rng) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut org = organisation(&mut rng);
    enrich(&mut org);
    link(&mut org, &mut rng);
    (org, rng)
}

pub fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len())]
}

/// Makes one change of `kind` (it may be refused: `Ok` = applied); `tag` keeps names unique.
#[allow(clippy::too_many_lines, reason = "one arm per kind of change")]
pub fn step(org: &mut Organization, rng: &mut Rng, kind: usize, tag: &str) -> Result<(), String> {
    // Each change at a time of its own, so that the records' stamps (D165) differ.
    org.set_clock(1_700_000_000_000 + rng.below(1_000_000) as i64 * 1_000);
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
        30 => s.set_user_fields(
            user,
            vec![(format!("f{}", rng.below(3)), Value::Text("v".into()))],
        ),
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
        // A fresh name, or (refused) another unit's.
        47 => {
            let other = s.org().units().name(pick(rng, &units)).to_owned();
            let name = if rng.chance(75) {
                format!("renamed-{tag}")
            } else {
                other
            };
            s.rename_business_unit(unit, &name)
        }
        48 => {
            let misc = ["prvExportToExcel", "prvReadAuditSummary", "prvBulkDelete"][rng.below(3)];
            s.set_role_misc_privilege(role, misc, rng.chance(60))
        }
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
pub fn assert_same(org: &Organization, expected: &Organization, context: &str) {
    let differences = org.differences(expected);
    assert!(differences.is_empty(), "{context}: {differences:?} differ");
    assert_eq!(
        org.stamps_dump(),
        expected.stamps_dump(),
        "{context}: stamps differ"
    );
    assert!(
        org.indexes_are_current(),
        "{context}: derived indexes stale"
    );
    assert!(
        org.record_index_is_current(),
        "{context}: record index stale"
    );
}
