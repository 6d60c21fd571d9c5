//! The random organisations the property tests start from.
#![allow(dead_code, reason = "each test uses its part")]

pub mod steps;

use strata_engine::{
    AccessMask, Cascade, CascadeType, Column, DeleteBehavior, Depth, FieldShare, HierarchyModel,
    HierarchySettings, Inheritance, NewRecord, Organization, Owner, Principal, Privilege,
    RecordState, RoleDefinition, Settings, TeamType, Value,
};

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

pub const DEPTHS: [Depth; 5] = [
    Depth::None,
    Depth::User,
    Depth::BusinessUnit,
    Depth::ParentChild,
    Depth::Organization,
];

pub fn organisation(rng: &mut Rng) -> Organization {
    let mut org = Organization::new();
    {
        let mut s = org.setup();
        s.set_settings(Settings {
            share_to_previous_owner_on_assign: rng.chance(50),
            ownership_across_business_units: false,
            do_not_remove_roles_on_change_business_unit: rng.chance(50),
            always_move_record_to_owner_business_unit: true,
            hierarchy: rng.chance(50).then_some(HierarchySettings {
                model: HierarchyModel::Manager,
                depth: 2,
                tables: None,
                managers_must_be_in_same_or_parent_business_unit: true,
            }),
        })
        .unwrap();
        let root = s.add_business_unit("Root", None).unwrap();
        let mut units = vec![root];
        for i in 0..4 {
            let parent = units[rng.below(units.len())];
            units.push(s.add_business_unit(&format!("U{i}"), Some(parent)).unwrap());
        }
        let account = s
            .add_table(
                "account",
                None,
                vec![
                    Column {
                        name: "name".into(),
                        secured: false,
                    },
                    Column {
                        name: "secret".into(),
                        secured: true,
                    },
                ],
            )
            .unwrap();
        let contact = s.add_table("contact", None, Vec::new()).unwrap();
        let cascades = [
            Cascade::PARENTAL,
            Cascade::REFERENTIAL,
            Cascade::REFERENTIAL_RESTRICT_DELETE,
            Cascade {
                assign: CascadeType::UserOwned,
                share: CascadeType::Active,
                unshare: CascadeType::None,
                reparent: CascadeType::Cascade,
                delete: DeleteBehavior::RemoveLink,
            },
        ];
        s.add_relationship(
            "account_contacts",
            account,
            contact,
            "parentid",
            cascades[rng.below(4)],
        )
        .unwrap();
        s.add_relationship(
            "account_parent",
            account,
            account,
            "parentaccountid",
            cascades[rng.below(4)],
        )
        .unwrap();
        let builtin = |n: &str| s.org().table_id(n).unwrap();
        let tables = [
            account,
            contact,
            builtin("role"),
            builtin("team"),
            builtin("systemuser"),
        ];
        let mut roles = Vec::new();
        for i in 0..4 {
            let mut privileges = Vec::new();
            for table in tables {
                for p in Privilege::ALL {
                    if rng.chance(60) {
                        privileges.push((table, p, DEPTHS[rng.below(5)]));
                    }
                }
            }
            roles.push(
                s.add_role(RoleDefinition {
                    name: format!("R{i}"),
                    business_unit: None,
                    inheritance: if rng.chance(30) {
                        Inheritance::TeamOnly
                    } else {
                        Inheritance::UserAndTeam
                    },
                    system_administrator: i == 3 && rng.chance(30),
                    privileges,
                    misc: Vec::new(),
                })
                .unwrap(),
            );
        }
        let mut users = Vec::new();
        for i in 0..6 {
            let u = s
                .add_user(
                    &format!("user{i}"),
                    units[rng.below(units.len())],
                    rng.chance(90),
                )
                .unwrap();
            for r in &roles {
                if rng.chance(40) {
                    s.assign_user_role(u, *r, None).unwrap();
                }
            }
            if i > 0 && rng.chance(50) {
                s.set_manager(u, Some(users[rng.below(users.len())]))
                    .unwrap();
            }
            users.push(u);
        }
        for i in 0..2 {
            let kind = if i == 0 {
                TeamType::Owner
            } else {
                TeamType::Access
            };
            let t = s
                .add_team(&format!("team{i}"), kind, units[rng.below(units.len())])
                .unwrap();
            for u in &users {
                if rng.chance(40) {
                    s.add_team_member(t, *u);
                }
            }
            if kind == TeamType::Owner {
                s.assign_team_role(t, roles[rng.below(roles.len())])
                    .unwrap();
            }
        }
        s.add_template(
            "deal",
            account,
            AccessMask::of(&[Privilege::Read, Privilege::Write]),
        )
        .unwrap();
        for i in 0..8 {
            let table = if rng.chance(50) { account } else { contact };
            let owner = Owner::User(users[rng.below(users.len())]);
            let r = s
                .add_record(NewRecord {
                    key: format!("r{i}"),
                    table,
                    owner,
                    business_unit: None,
                    state: if rng.chance(80) {
                        RecordState::Active
                    } else {
                        RecordState::Inactive
                    },
                    fields: vec![
                        ("name".into(), Value::Text(format!("n{i}"))),
                        ("secret".into(), Value::Int(i)),
                    ],
                })
                .unwrap();
            if rng.chance(30) {
                let to = Principal::User(users[rng.below(users.len())]);
                s.share(r, to, AccessMask::of(&[Privilege::Read])).unwrap();
            }
            if table == account && rng.chance(30) {
                let share = FieldShare {
                    column: "secret".into(),
                    principal: Principal::User(users[0]),
                    read: true,
                    update: rng.chance(50),
                };
                s.add_field_share(r, share).unwrap();
            }
        }
    }
    org
}

/// A role of the root business unit, for users and teams, not System Administrator, with
/// these grid cells and miscellaneous privileges.
pub fn role_definition(
    name: &str,
    privileges: Vec<(strata_engine::TableId, Privilege, Depth)>,
    misc: &[&str],
) -> RoleDefinition {
    RoleDefinition {
        name: name.into(),
        business_unit: None,
        inheritance: Inheritance::UserAndTeam,
        system_administrator: false,
        privileges,
        misc: misc.iter().map(|m| (*m).to_owned()).collect(),
    }
}
