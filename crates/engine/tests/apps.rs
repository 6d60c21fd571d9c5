//! App diagnosis and the smallest role set (D51) against brute force over role subsets on small
//! random organisations; explain's granting roles (D52) checked by assigning each of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{DEPTHS, Rng};
use strata_engine::{
    AppBlock, AppNeed, Depth, Inheritance, Organization, Privilege, RoleDefinition, RoleId,
    RoleSetError, RoleToAssign, Settings, TeamType, UserId,
};

/// A small organisation with roles in several units, teams holding roles, and one app that
/// needs a few privileges.
fn app_organisation(rng: &mut Rng) -> Organization {
    let mut org = Organization::new();
    // Ownership across units (the matrix model) in a third of them: roles of other units can
    // then be given, in their own unit.
    let across = rng.chance(33);
    {
        let mut s = org.setup();
        if across {
            s.set_settings(Settings {
                ownership_across_business_units: true,
                ..Settings::default()
            })
            .unwrap();
        }
        let root = s.add_business_unit("Root", None).unwrap();
        let mut units = vec![root];
        for i in 0..3 {
            let parent = units[rng.below(units.len())];
            units.push(s.add_business_unit(&format!("U{i}"), Some(parent)).unwrap());
        }
        let tables = [
            s.add_table("incident", None, Vec::new()).unwrap(),
            s.add_table("account", None, Vec::new()).unwrap(),
        ];
        let mut roles = Vec::new();
        for i in 0..9 {
            let mut privileges = Vec::new();
            for table in tables {
                for p in [Privilege::Read, Privilege::Write, Privilege::Append] {
                    if rng.chance(35) {
                        privileges.push((table, p, DEPTHS[1 + rng.below(4)]));
                    }
                }
            }
            roles.push(
                s.add_role(RoleDefinition {
                    name: format!("R{i}"),
                    business_unit: Some(units[if rng.chance(60) { 0 } else { rng.below(4) }]),
                    inheritance: if rng.chance(30) {
                        Inheritance::TeamOnly
                    } else {
                        Inheritance::UserAndTeam
                    },
                    system_administrator: i == 8 && rng.chance(50),
                    privileges,
                    misc: Vec::new(),
                })
                .unwrap(),
            );
        }
        let mut users = Vec::new();
        for i in 0..4 {
            let unit = units[rng.below(units.len())];
            let u = s
                .add_user(&format!("user{i}"), unit, rng.chance(85))
                .unwrap();
            for r in &roles {
                if rng.chance(12) {
                    let _ = s.assign_user_role(u, *r, None);
                }
            }
            users.push(u);
        }
        let team = s.add_team("T", TeamType::Owner, units[0]).unwrap();
        for r in &roles {
            if rng.chance(20) {
                let _ = s.assign_team_role(team, *r);
            }
        }
        for u in &users {
            if rng.chance(40) {
                s.add_team_member(team, *u);
            }
        }
        let app_roles: Vec<RoleId> = roles.iter().copied().filter(|_| rng.chance(30)).collect();
        let app = s.add_app("App", app_roles).unwrap();
        let mut needs = Vec::new();
        for table in tables {
            for p in [Privilege::Read, Privilege::Write, Privilege::Append] {
                if rng.chance(40) {
                    needs.push(AppNeed {
                        table,
                        privilege: p,
                        depth: if rng.chance(70) {
                            Depth::User
                        } else {
                            DEPTHS[2 + rng.below(3)]
                        },
                    });
                }
            }
        }
        s.set_app_needs(app, needs).unwrap();
    }
    org
}

/// Whether the user opens the app and meets its needs.
fn satisfied(org: &Organization, user: UserId) -> bool {
    let d = org.diagnose_app(user, org.app_id("App").unwrap());
    d.access.is_some() && d.missing.is_empty() && d.blocks.is_empty()
}

/// The organisation with `roles` assigned to `user` directly, or `None` when one cannot be
/// given: in the user's unit when usable there, else (the matrix model) in the role's own unit.
fn with_roles(org: &Organization, user: UserId, roles: &[RoleId]) -> Option<Organization> {
    let mut copy = org.clone();
    let unit = org.user(user).business_unit;
    {
        let mut s = copy.setup();
        for r in roles {
            let home = org.role(*r).business_unit;
            let assigned_in = if org.units().contains(home, unit) {
                None
            } else {
                Some(home)
            };
            if org
                .user(user)
                .roles
                .iter()
                .any(|a| a.role == *r && a.business_unit == assigned_in)
            {
                continue;
            }
            s.assign_user_role(user, *r, assigned_in).ok()?;
        }
    }
    Some(copy)
}

/// `given` assigned to `user` as the answer says.
fn with_assignments(org: &Organization, user: UserId, given: &[RoleToAssign]) -> Organization {
    let mut copy = org.clone();
    {
        let mut s = copy.setup();
        for g in given {
            s.assign_user_role(user, g.role, g.business_unit).unwrap();
        }
    }
    copy
}

#[test]
fn smallest_role_set_matches_brute_force_over_role_subsets() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut answered = 0;
    let mut unreachable = 0;
    let mut across = 0;
    for _ in 0..60 {
        let org = app_organisation(&mut rng);
        let app = org.app_id("App").unwrap();
        // Candidates for the oracle: every role but System Administrator; usability is
        // decided by the assignment itself.
        let roles: Vec<RoleId> = org
            .role_ids()
            .filter(|r| !org.role(*r).system_administrator)
            .collect();
        for user in org.user_ids() {
            let answer = org.roles_needed(user, app);
            if !org.user(user).enabled {
                assert!(matches!(answer, Err(RoleSetError::UserDisabled { .. })));
                let d = org.diagnose_app(user, app);
                assert!(d.blocks.contains(&AppBlock::UserDisabled));
                continue;
            }
            let mut best: Option<usize> = None;
            for mask in 0u32..1 << roles.len() {
                let subset: Vec<RoleId> = roles
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask >> i & 1 == 1)
                    .map(|(_, r)| *r)
                    .collect();
                if best.is_some_and(|b| subset.len() >= b) {
                    continue;
                }
                if let Some(copy) = with_roles(&org, user, &subset)
                    && satisfied(&copy, user)
                {
                    // Roles already held count as nothing to give.
                    let new = subset
                        .iter()
                        .filter(|r| !org.user(user).roles.iter().any(|a| a.role == **r))
                        .count();
                    best = Some(best.map_or(new, |b| b.min(new)));
                }
            }
            match (answer, best) {
                (Ok(set), Some(b)) => {
                    assert!(set.exact);
                    assert_eq!(set.roles.len(), b, "user {}", org.user(user).name);
                    assert!(satisfied(&with_assignments(&org, user, &set.roles), user));
                    answered += 1;
                    across += usize::from(set.roles.iter().any(|g| g.business_unit.is_some()));
                }
                (Err(RoleSetError::Unreachable { .. }), None) => unreachable += 1,
                (answer, best) => panic!(
                    "user {}: engine {answer:?}, brute force {best:?}",
                    org.user(user).name
                ),
            }
        }
    }
    assert!(
        answered > 50 && unreachable > 5 && across > 3,
        "{answered} {unreachable} {across}"
    );
}

#[test]
fn diagnosis_gives_every_reason_and_the_apps_roles() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..60 {
        let org = app_organisation(&mut rng);
        let app = org.app_id("App").unwrap();
        let who: Vec<UserId> = org.who_can_open(app).into_iter().map(|(u, _)| u).collect();
        for user in org.user_ids() {
            let d = org.diagnose_app(user, app);
            assert_eq!(d.access.is_some(), who.contains(&user));
            assert_eq!(d.access.is_some(), d.blocks.is_empty());
            assert_eq!(
                d.blocks.contains(&AppBlock::UserDisabled),
                !org.user(user).enabled
            );
            for b in &d.blocks {
                if let AppBlock::NoAssociatedRole { roles } = b {
                    assert_eq!(roles, &org.app(app).roles);
                    assert!(org.system_administrator(user).is_none());
                }
            }
            // A disabled user with an app role is refused for that reason only.
            if !org.user(user).enabled {
                let mut enabled = org.clone();
                enabled.setup().set_user_enabled(user, true);
                let opens = enabled.app_access(user, app).is_some();
                assert_eq!(d.blocks.len(), if opens { 1 } else { 2 });
            }
        }
    }
}

#[test]
fn explain_names_roles_that_would_grant_and_each_does() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut remedies = 0;
    for _ in 0..25 {
        let org = common::organisation(&mut rng);
        for user in org.user_ids() {
            for record in org.record_ids().take(12) {
                for p in [Privilege::Read, Privilege::Write, Privilege::Delete] {
                    let d = org.explain(user, p, record);
                    let Some(remedy) = &d.remedy else {
                        continue;
                    };
                    assert!(!d.allowed);
                    for role in &remedy.roles {
                        let mut copy = org.clone();
                        if org.user(user).roles.iter().any(|a| a.role == *role) {
                            continue;
                        }
                        copy.setup().assign_user_role(user, *role, None).unwrap();
                        assert!(
                            copy.check(user, p, record),
                            "{}\nassigning `{}` did not grant",
                            org.render_decision(&d),
                            org.role(*role).name
                        );
                        remedies += 1;
                    }
                    assert!(
                        org.render_decision(&d).contains("would be granted by role")
                            || org
                                .render_decision(&d)
                                .contains("only System Administrator would")
                    );
                }
            }
        }
    }
    assert!(remedies > 20, "{remedies}");
}
