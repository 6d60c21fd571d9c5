//! Roles as things to manage: holders, comparisons of roles and of users, who may assign a
//! role, and the role administration (rename, copy, deprecate, replace, delete, one cell),
//! each undone whole by a rollback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::role_definition as role;
use common::{DEPTHS, Rng, organisation};
use strata_engine::{
    Actor, CellSource, Depth, DirectHolder, Organization, Principal, Privilege, RoleId, TeamType,
    Via,
};

/// Root ⊃ Sales. Rep: account read BU, write User, prvExportToExcel. Manager: account read
/// Organization, write BU, role assign Organization, prvExportToExcel. alice holds Rep; bob
/// holds Manager and is in team T (holds Rep) with carol (in Sales); root holds System
/// Administrator.
fn org() -> Organization {
    let mut org = Organization::new();
    {
        let mut s = org.setup();
        let root = s.add_business_unit("Root", None).unwrap();
        let sales = s.add_business_unit("Sales", Some(root)).unwrap();
        let account = s.add_table("account", None, Vec::new()).unwrap();
        let role_table = s.org().table_id("role").unwrap();
        let rep = s
            .add_role(role(
                "Rep",
                vec![
                    (account, Privilege::Read, Depth::BusinessUnit),
                    (account, Privilege::Write, Depth::User),
                ],
                &["prvExportToExcel"],
            ))
            .unwrap();
        let manager = s
            .add_role(role(
                "Manager",
                vec![
                    (account, Privilege::Read, Depth::Organization),
                    (account, Privilege::Write, Depth::BusinessUnit),
                    (role_table, Privilege::Assign, Depth::Organization),
                ],
                &["prvExportToExcel"],
            ))
            .unwrap();
        let mut sa = role("System Administrator", Vec::new(), &[]);
        sa.system_administrator = true;
        let sa = s.add_role(sa).unwrap();
        s.add_role(role(
            "Successor",
            vec![(account, Privilege::Read, Depth::User)],
            &[],
        ))
        .unwrap();
        let alice = s.add_user("alice", root, true).unwrap();
        let bob = s.add_user("bob", root, true).unwrap();
        let carol = s.add_user("carol", sales, true).unwrap();
        let admin = s.add_user("admin", root, true).unwrap();
        s.assign_user_role(alice, rep, None).unwrap();
        s.assign_user_role(bob, manager, None).unwrap();
        s.assign_user_role(admin, sa, None).unwrap();
        let t = s.add_team("T", TeamType::Owner, root).unwrap();
        s.add_team_member(t, bob);
        s.add_team_member(t, carol);
        s.assign_team_role(t, rep).unwrap();
        s.add_app("Sales Hub", vec![rep]).unwrap();
    }
    org
}

fn ids(org: &Organization, names: &[&str]) -> Vec<RoleId> {
    names.iter().map(|n| org.role_id(n).unwrap()).collect()
}

#[test]
fn holders_are_direct_users_teams_and_their_members() {
    let org = org();
    let rep = org.role_id("Rep").unwrap();
    let h = org.role_holders(rep);
    let u = |n| org.user_id(n).unwrap();
    assert_eq!(
        h.users,
        vec![DirectHolder {
            user: u("alice"),
            business_unit: None
        }]
    );
    let t = org.team_id("T").unwrap();
    assert_eq!(h.teams, vec![t]);
    assert_eq!(h.through_teams, vec![(u("bob"), t), (u("carol"), t)]);
    assert_eq!(h.apps, vec![org.app_id("Sales Hub").unwrap()]);
    assert!(
        org.role_holders(org.role_id("Successor").unwrap())
            .is_empty()
    );
}

#[test]
fn two_roles_compare_cell_by_cell() {
    let org = org();
    let [rep, manager] = ids(&org, &["Rep", "Manager"])[..] else {
        panic!()
    };
    let c = org.compare_roles(rep, manager);
    let account = org.table_id("account").unwrap();
    let cell = |t, p| {
        *c.cells
            .iter()
            .find(|x| x.table == t && x.privilege == p)
            .unwrap()
    };
    let read = cell(account, Privilege::Read);
    assert_eq!(
        (read.left, read.right),
        (Depth::BusinessUnit, Depth::Organization)
    );
    assert!(read.differs());
    let delete = cell(account, Privilege::Delete);
    assert!(!delete.differs());
    // The role table is in Manager's grid only: every privilege of it is listed.
    let assign = cell(org.table_id("role").unwrap(), Privilege::Assign);
    assert_eq!(
        (assign.left, assign.right),
        (Depth::None, Depth::Organization)
    );
    assert_eq!(c.cells.len(), 16);
    assert_eq!(c.misc.len(), 1);
    assert!(c.misc[0].left && c.misc[0].right && !c.misc[0].differs());
}

#[test]
fn two_users_compare_with_the_source_of_each_cell() {
    let org = org();
    let (alice, bob, carol) = (
        org.user_id("alice").unwrap(),
        org.user_id("bob").unwrap(),
        org.user_id("carol").unwrap(),
    );
    let [rep, manager] = ids(&org, &["Rep", "Manager"])[..] else {
        panic!()
    };
    let t = org.team_id("T").unwrap();
    let account = org.table_id("account").unwrap();
    let c = org.compare_users(alice, bob);
    let cell = |p| {
        c.cells
            .iter()
            .find(|x| x.table == account && x.privilege == p)
            .unwrap()
            .clone()
    };
    let read = cell(Privilege::Read);
    assert_eq!(read.left.depth, Depth::BusinessUnit);
    assert_eq!(
        read.left.sources,
        vec![CellSource::Role {
            role: rep,
            via: Via::Direct
        }]
    );
    assert_eq!(read.right.depth, Depth::Organization);
    assert_eq!(
        read.right.sources,
        vec![CellSource::Role {
            role: manager,
            via: Via::Direct
        }]
    );
    assert!(read.differs());
    // The same role directly and through a team: the same depth, both sources.
    let c2 = org.compare_users(alice, carol);
    let write = c2
        .cells
        .iter()
        .find(|x| x.table == account && x.privilege == Privilege::Write)
        .unwrap();
    assert_eq!(
        (write.left.depth, write.right.depth),
        (Depth::User, Depth::User)
    );
    assert!(!write.differs());
    assert_eq!(
        write.right.sources,
        vec![CellSource::Role {
            role: rep,
            via: Via::Team {
                team: t,
                team_only: false
            }
        }]
    );
    // Miscellaneous privileges with their sources on each side.
    let misc = &c.misc[0];
    assert_eq!(misc.name, "prvExportToExcel");
    assert_eq!(misc.left.len(), 1);
    assert_eq!(
        misc.right.len(),
        2,
        "bob: Manager directly and Rep through T"
    );
    // The effective depth is what the derived grants give.
    for cell in &c.cells {
        assert_eq!(
            cell.left.depth,
            org.max_depth(alice, cell.table, cell.privilege)
        );
        assert_eq!(
            cell.right.depth,
            org.max_depth(bob, cell.table, cell.privilege)
        );
    }
    // A System Administrator holds everything on every table.
    let admin = org.user_id("admin").unwrap();
    let c3 = org.compare_users(alice, admin);
    assert_eq!(c3.cells.len(), org.table_ids().count() * 8);
    assert!(
        c3.cells
            .iter()
            .all(|c| c.right.depth == Depth::Organization)
    );
}

#[test]
fn who_may_assign_applies_d11_to_every_user() {
    let org = org();
    let rep = org.role_id("Rep").unwrap();
    let list = org.who_may_assign(rep);
    let name = |u| org.user(u).name.clone();
    let users: Vec<String> = list.iter().map(|a| name(a.user)).collect();
    assert_eq!(users, vec!["bob", "admin"]);
    // bob's write is business-unit deep in Root: Sales principals are beyond it.
    let root = org.business_unit_id("Root").unwrap();
    assert_eq!(list[0].units, vec![root]);
    assert_eq!(list[1].units.len(), 2);
    // Whoever the list names could assign it; the others cannot.
    let mut o = org.clone();
    let carol = o.user_id("carol").unwrap();
    let alice = o.user_id("alice").unwrap();
    let bob = o.user_id("bob").unwrap();
    let successor = o.role_id("Successor").unwrap();
    assert!(
        o.assign_role(Actor::User(bob), Principal::User(carol), rep, None)
            .is_err()
    );
    assert!(
        o.assign_role(Actor::User(alice), Principal::User(bob), successor, None)
            .is_err()
    );
    // The list is exactly who `assign_role` lets assign it, to whom: every (assigner, unit)
    // pair, against every other user of that unit.
    for r in [rep, successor, org.role_id("Manager").unwrap()] {
        let list = org.who_may_assign(r);
        for caller in org.user_ids() {
            for target in org.user_ids().filter(|t| *t != caller) {
                let unit = org.user(target).business_unit;
                let listed = list
                    .iter()
                    .any(|a| a.user == caller && a.units.contains(&unit));
                let mut o = org.clone();
                let allowed = o
                    .assign_role(Actor::User(caller), Principal::User(target), r, None)
                    .is_ok();
                assert_eq!(
                    listed,
                    allowed,
                    "{} assigning {} to {}",
                    org.user(caller).name,
                    org.role(r).name,
                    org.user(target).name
                );
            }
        }
    }
}

#[test]
fn a_deprecated_role_is_refused_naming_its_successor_and_replaced_for_every_holder() {
    let mut org = org();
    let [rep, successor] = ids(&org, &["Rep", "Successor"])[..] else {
        panic!()
    };
    {
        let mut s = org.setup();
        s.set_role_deprecation(rep, Some(("use the new role".into(), vec![successor])))
            .unwrap();
    }
    let carol = org.user_id("carol").unwrap();
    let err = org
        .assign_role(Actor::System, Principal::User(carol), rep, None)
        .unwrap_err();
    assert_eq!(err.code(), "role_deprecated");
    assert!(err.to_string().contains("`Successor`"), "{err}");
    assert!(org.who_may_assign(rep).is_empty());
    let before = org.canonical_dump();
    let cp = org.checkpoint();
    {
        let mut s = org.setup();
        let moved = s.replace_role(rep, successor).unwrap();
        assert_eq!(moved.users.len(), 1);
        assert_eq!(moved.teams.len(), 1);
    }
    let h = org.role_holders(rep);
    assert!(h.users.is_empty() && h.teams.is_empty());
    assert_eq!(h.apps.len(), 1, "replace leaves apps alone");
    let h = org.role_holders(successor);
    assert_eq!((h.users.len(), h.teams.len()), (1, 1));
    let alice = org.user_id("alice").unwrap();
    let account = org.table_id("account").unwrap();
    assert_eq!(org.max_depth(alice, account, Privilege::Read), Depth::User);
    org.rollback(cp).unwrap();
    assert_eq!(org.canonical_dump(), before);
    assert_eq!(
        org.max_depth(alice, account, Privilege::Read),
        Depth::BusinessUnit
    );
    // Taken back: assignable again.
    {
        let mut s = org.setup();
        s.set_role_deprecation(rep, None).unwrap();
    }
    assert!(
        org.assign_role(Actor::System, Principal::User(carol), rep, None)
            .is_ok()
    );
}

#[test]
fn delete_is_refused_while_held_and_moves_everything_with_a_replacement() {
    let mut org = org();
    let [rep, successor] = ids(&org, &["Rep", "Successor"])[..] else {
        panic!()
    };
    let before = org.canonical_dump();
    {
        let mut s = org.setup();
        let err = s.delete_role(rep, None).unwrap_err();
        assert_eq!(err.code(), "role_in_use");
        assert!(err.to_string().contains("1 user(s)"), "{err}");
    }
    assert_eq!(org.canonical_dump(), before);
    let cp = org.checkpoint();
    {
        let mut s = org.setup();
        s.delete_role(rep, Some(successor)).unwrap();
    }
    assert_eq!(org.role_id("Rep"), None);
    assert!(!org.role_ids().any(|r| r == rep));
    let h = org.role_holders(successor);
    assert_eq!((h.users.len(), h.teams.len(), h.apps.len()), (1, 1, 1));
    assert!(org.role_by_guid(org.role_guid(rep)).is_none());
    org.rollback(cp).unwrap();
    assert_eq!(org.canonical_dump(), before);
    assert_eq!(org.role_id("Rep"), Some(rep));
    // A role nobody holds is deleted, and its name is free again.
    {
        let mut s = org.setup();
        s.delete_role(successor, None).unwrap();
        s.add_role(role("Successor", Vec::new(), &[])).unwrap();
    }
    assert_ne!(org.role_id("Successor"), Some(successor));
}

#[test]
fn rename_copy_and_one_cell() {
    let mut org = org();
    let [rep, sa] = ids(&org, &["Rep", "System Administrator"])[..] else {
        panic!()
    };
    let account = org.table_id("account").unwrap();
    {
        let mut s = org.setup();
        s.rename_role(rep, "Representative").unwrap();
        assert_eq!(
            s.rename_role(rep, "Manager").unwrap_err().code(),
            "duplicate"
        );
        assert_eq!(
            s.rename_role(sa, "Boss").unwrap_err().code(),
            "system_administrator_not_editable"
        );
        assert_eq!(
            s.delete_role(sa, None).unwrap_err().code(),
            "system_administrator_not_editable"
        );
        let copy = s.copy_role(rep, "Rep 2").unwrap();
        let (a, b) = (s.org().role(rep), s.org().role(copy));
        assert_eq!(a.privileges, b.privileges);
        assert_eq!(
            (a.misc.clone(), a.business_unit, a.inheritance),
            (b.misc.clone(), b.business_unit, b.inheritance)
        );
        s.set_role_privilege(rep, account, Privilege::Delete, Depth::User)
            .unwrap();
    }
    assert_eq!(org.role_id("Rep"), None);
    let rep = org.role_id("Representative").unwrap();
    assert_eq!(org.role(rep).depth(account, Privilege::Delete), Depth::User);
    assert_eq!(
        org.role(rep).depth(account, Privilege::Read),
        Depth::BusinessUnit
    );
    let alice = org.user_id("alice").unwrap();
    assert_eq!(
        org.max_depth(alice, account, Privilege::Delete),
        Depth::User
    );
}

/// On random organisations, with a random assigner role given to random users: who may assign
/// each role is exactly who `assign_role` lets assign it to every other enabled user, and each
/// cell of a comparison of two users is the user's highest derived depth.
#[test]
fn who_may_assign_and_compare_users_agree_with_the_engine_on_random_organisations() {
    let (mut listed_users, mut refused_pairs) = (0, 0);
    for seed in 1..=25u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut org = organisation(&mut rng);
        {
            let mut s = org.setup();
            let tables: Vec<_> = s.org().table_ids().collect();
            let role_table = s.org().table_id("role").unwrap();
            let mut grid = vec![(role_table, Privilege::Assign, DEPTHS[1 + rng.below(4)])];
            for t in tables {
                for p in Privilege::ALL {
                    if rng.chance(40) {
                        grid.push((t, p, DEPTHS[rng.below(5)]));
                    }
                }
            }
            let mut def = role("Assigner", grid, &[]);
            if rng.chance(30) {
                def.misc = vec!["prvActOnBehalfOfAnotherUser".into()];
            }
            if let Ok(assigner) = s.add_role(def) {
                let users: Vec<_> = s.org().user_ids().collect();
                for _ in 0..3 {
                    let u = users[rng.below(users.len())];
                    let _ = s.assign_user_role(u, assigner, None);
                }
            }
        }
        let users: Vec<_> = org.user_ids().collect();
        for r in org.role_ids().collect::<Vec<_>>() {
            let list = org.who_may_assign(r);
            for &caller in &users {
                for &target in users.iter().filter(|t| **t != caller) {
                    if !org.user(target).enabled {
                        continue;
                    }
                    let unit = org.user(target).business_unit;
                    let listed = list
                        .iter()
                        .any(|a| a.user == caller && a.units.contains(&unit));
                    let mut o = org.clone();
                    let allowed = o
                        .assign_role(Actor::User(caller), Principal::User(target), r, None)
                        .is_ok();
                    if listed && org.system_administrator(caller).is_none() {
                        listed_users += 1;
                    }
                    if !listed {
                        refused_pairs += 1;
                    }
                    assert_eq!(
                        listed,
                        allowed,
                        "seed {seed}: {} assigning {} to {}",
                        org.user(caller).name,
                        org.role(r).name,
                        org.user(target).name
                    );
                }
            }
        }
        for _ in 0..5 {
            let (a, b) = (users[rng.below(users.len())], users[rng.below(users.len())]);
            let c = org.compare_users(a, b);
            for cell in &c.cells {
                assert_eq!(
                    cell.left.depth,
                    org.max_depth(a, cell.table, cell.privilege)
                );
                assert_eq!(
                    cell.right.depth,
                    org.max_depth(b, cell.table, cell.privilege)
                );
                assert_eq!(cell.left.sources.is_empty(), cell.left.depth == Depth::None);
            }
            // Every table either user holds anything on is compared.
            for g in org.all_grants(a).iter().chain(org.all_grants(b)) {
                assert!(
                    c.cells
                        .iter()
                        .any(|x| x.table == g.table && x.privilege == g.privilege)
                );
            }
        }
    }
    // Both answers occur: users who are not System Administrators may assign, and pairs are refused.
    assert!(
        listed_users > 0 && refused_pairs > 0,
        "{listed_users} {refused_pairs}"
    );
}
