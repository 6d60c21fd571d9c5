//! Role rules (D45–D47) on random organisations: with the rules in force before a sequence of
//! role assignments, removals, team membership changes and unit moves, each change checked by a
//! [`RuleGuard`] as the write path checks a batch (refused changes rolled back through the undo
//! journal), no user ever breaks a rule; and a refused change leaves the organisation as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use strata_engine::{
    Actor, Inheritance, Organization, Principal, RoleDefinition, RoleRule, RuleGuard, TeamType,
    UserId,
};

const ROLES: usize = 6;
const USERS: usize = 4;
const TEAMS: usize = 2;

/// Roles R0…R5, users u0…u3 in `Root`, owner teams T0 and T1 in `Root`, a unit `Sub`; the
/// rules picked from a consistent set by `mask`.
fn organisation(mask: u8) -> Organization {
    let mut org = Organization::new();
    {
        let mut s = org.setup();
        let root = s.add_business_unit("Root", None).unwrap();
        s.add_business_unit("Sub", Some(root)).unwrap();
        for i in 0..ROLES {
            s.add_role(RoleDefinition {
                name: format!("R{i}"),
                business_unit: None,
                inheritance: Inheritance::UserAndTeam,
                system_administrator: false,
                privileges: Vec::new(),
                misc: Vec::new(),
            })
            .unwrap();
        }
        for i in 0..USERS {
            s.add_user(&format!("u{i}"), root, true).unwrap();
        }
        for i in 0..TEAMS {
            s.add_team(&format!("T{i}"), TeamType::Owner, root).unwrap();
        }
    }
    let r = |i: usize| org.role_id(&format!("R{i}")).unwrap();
    let candidates = [
        RoleRule::requires(r(0), [r(1), r(2)]),
        RoleRule::requires(r(1), [r(2)]),
        RoleRule::requires(r(4), [r(0)]),
        RoleRule::Excludes {
            role: r(3),
            other: r(4),
        },
        RoleRule::Excludes {
            role: r(5),
            other: r(2),
        },
        RoleRule::DirectOnly { role: r(5) },
    ];
    for (i, rule) in candidates.into_iter().enumerate() {
        if mask & (1 << i) != 0 {
            org.setup().add_role_rule(rule).unwrap();
        }
    }
    org
}

/// One change: (kind, user or team index, role index, target).
type Change = (u8, usize, usize, bool);

fn change() -> impl Strategy<Value = Change> {
    (0u8..6, 0..USERS.max(TEAMS), 0..ROLES, any::<bool>())
}

/// Applies a change the way a batch of one is applied on the write path: noted, applied,
/// checked, kept or rolled back. Returns whether it was kept.
fn apply(org: &mut Organization, (kind, who, role, flag): Change) -> bool {
    let user = org.user_id(&format!("u{}", who % USERS)).unwrap();
    let team = org.team_id(&format!("T{}", who % TEAMS)).unwrap();
    let role = org.role_id(&format!("R{role}")).unwrap();
    let mut guard = RuleGuard::new();
    let checkpoint = org.checkpoint();
    let principal = if flag && kind < 2 {
        guard.note_team(org, team, 0);
        Principal::Team(team)
    } else {
        guard.note_user(org, user, 0);
        Principal::User(user)
    };
    let result = match kind {
        0 => org.assign_role(Actor::System, principal, role, None),
        1 => org.remove_role(Actor::System, principal, role),
        2 => org.add_team_member(Actor::System, team, user),
        3 => org.remove_team_member(Actor::System, team, user),
        4 => {
            let unit = org
                .business_unit_id(if flag { "Sub" } else { "Root" })
                .unwrap();
            org.move_user(Actor::System, user, unit)
        }
        _ => org.assign_role(Actor::System, Principal::User(user), role, None),
    };
    if result.is_ok() && guard.finish(org).is_ok() {
        org.commit(checkpoint).unwrap();
        true
    } else {
        org.rollback(checkpoint).unwrap();
        false
    }
}

fn broken(org: &Organization) -> Vec<(UserId, String)> {
    org.rule_violations()
        .iter()
        .map(|v| (v.user, v.rule.text(org)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_rule_added_before_a_sequence_is_ever_broken(
        mask in 1u8..64,
        changes in proptest::collection::vec(change(), 1..40),
    ) {
        let mut org = organisation(mask);
        prop_assert!(broken(&org).is_empty());
        let mut kept = 0;
        for c in changes {
            let before = org.canonical_dump();
            if apply(&mut org, c) {
                kept += 1;
            } else {
                prop_assert_eq!(org.canonical_dump(), before);
            }
            prop_assert!(broken(&org).is_empty(), "{:?} after {:?}", broken(&org), c);
            prop_assert!(org.indexes_are_current());
        }
        prop_assert!(kept <= 40);
    }
}

#[test]
fn the_guard_is_not_vacuous() {
    // With every rule, assigning R0 alone is refused, R2 alone is kept.
    let mut org = organisation(63);
    assert!(!apply(&mut org, (0, 0, 0, false)));
    assert!(apply(&mut org, (0, 0, 2, false)));
    assert!(apply(&mut org, (0, 0, 0, false)));
    // R2 is now needed by R0: removing it is refused.
    assert!(!apply(&mut org, (1, 0, 2, false)));
    // R5 only through a team is refused for a member.
    assert!(apply(&mut org, (2, 1, 0, false)));
    assert!(!apply(&mut org, (0, 1, 5, true)));
}
