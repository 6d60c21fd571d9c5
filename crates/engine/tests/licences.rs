//! Licences (D48–D50): caps on derived grants against an oracle organisation whose roles are
//! capped by hand, explanations, the cheapest licence set against brute force, the report,
//! rollback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{DEPTHS, Rng, organisation};
use strata_engine::{
    Depth, Licence, LicenceFit, Need, Organization, Ownership, Privilege, RoleDefinition, TableId,
    Uncovered, ceiling_covers,
};

fn random_licence(rng: &mut Rng, org: &Organization, name: &str) -> Licence {
    let mut ceilings = BTreeMap::new();
    for t in org.table_ids() {
        if rng.chance(60) {
            let mut d = [Depth::None; 8];
            for p in Privilege::ALL {
                d[p.index()] = DEPTHS[rng.below(5)];
            }
            if org.table(t).ownership == Ownership::Organization {
                for x in &mut d {
                    if *x != Depth::None {
                        *x = Depth::Organization;
                    }
                }
            }
            ceilings.insert(t, d);
        }
    }
    Licence {
        name: name.to_owned(),
        price: 1 + rng.below(6) as u32,
        default_ceiling: DEPTHS[rng.below(5)],
        ceilings,
        all_misc: rng.chance(30),
        misc: Vec::new(),
        all_apps: rng.chance(30),
        apps: Vec::new(),
    }
}

fn capped(org: &Organization, ceiling: Depth, table: TableId, depth: Depth) -> Depth {
    let ownership = org.table(table).ownership;
    if ceiling_covers(ownership, ceiling, depth) {
        depth
    } else if ownership == Ownership::Organization {
        Depth::None
    } else {
        ceiling
    }
}

/// Every user holds the same licence set: the organisation must decide exactly as an
/// organisation without licences whose (editable) roles are capped by hand.
#[test]
fn capped_grants_decide_as_hand_capped_roles() {
    let mut taken_away = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed * 7919);
        let base = organisation(&mut rng);
        let licences: Vec<Licence> = (0..1 + rng.below(3))
            .map(|i| random_licence(&mut rng, &base, &format!("L{i}")))
            .collect();
        let names: Vec<String> = licences.iter().map(|l| l.name.clone()).collect();
        let mut licensed = base.clone();
        {
            let mut s = licensed.setup();
            for l in &licences {
                s.add_licence(l.clone()).unwrap();
            }
            for u in base.user_ids() {
                s.set_user_licences(u, &names).unwrap();
            }
        }
        assert!(licensed.indexes_are_current());
        let mut oracle = base.clone();
        {
            let mut s = oracle.setup();
            for r in base.role_ids() {
                let role = base.role(r);
                if role.system_administrator {
                    continue;
                }
                let mut grid = Vec::new();
                for (t, depths) in &role.privileges {
                    for p in Privilege::ALL {
                        let ceiling = licences
                            .iter()
                            .map(|l| l.ceiling(*t, p))
                            .max()
                            .unwrap_or(Depth::None);
                        grid.push((*t, p, capped(&base, ceiling, *t, depths[p.index()])));
                    }
                }
                s.set_role_privileges(r, grid, role.misc.clone()).unwrap();
            }
        }
        for u in base.user_ids() {
            for t in base.table_ids() {
                for p in Privilege::ALL {
                    assert_eq!(
                        licensed.max_depth(u, t, p),
                        oracle.max_depth(u, t, p),
                        "seed {seed}"
                    );
                }
                assert_eq!(
                    licensed.list_readable(u, t),
                    oracle.list_readable(u, t),
                    "seed {seed}"
                );
            }
            for r in base.record_ids() {
                for p in Privilege::ALL {
                    let allowed = licensed.check(u, p, r);
                    assert_eq!(allowed, oracle.check(u, p, r), "seed {seed}");
                    taken_away += usize::from(base.check(u, p, r) && !allowed);
                    let d = licensed.explain(u, p, r);
                    assert_eq!(allowed, d.allowed, "seed {seed}");
                    // A cap is named exactly when a role gives more than the licences allow.
                    let table = base.record(r).table;
                    if !allowed && licensed.system_administrator(u).is_none() {
                        let over = licensed.licence_need(u).cells.iter().any(|c| {
                            c.table == table
                                && c.privilege == p
                                && !ceiling_covers(
                                    base.table(table).ownership,
                                    licensed.licence_ceiling(u, table, p),
                                    c.depth,
                                )
                        });
                        assert_eq!(over, !d.licence_caps.is_empty(), "seed {seed}");
                        if over {
                            assert!(licensed.render_decision(&d).contains(" caps `"));
                        }
                    }
                }
            }
        }
    }
    assert!(
        taken_away > 100,
        "licences took away too little: {taken_away}"
    );
}

fn covers(org: &Organization, set: &[&Licence], need: &Need) -> bool {
    need.cells.iter().all(|c| {
        set.iter().any(|l| {
            ceiling_covers(
                org.table(c.table).ownership,
                l.ceiling(c.table, c.privilege),
                c.depth,
            )
        })
    }) && need
        .misc
        .iter()
        .all(|m| set.iter().any(|l| l.allows_misc(m)))
        && need
            .apps
            .iter()
            .all(|a| set.iter().any(|l| l.allows_app(*a)))
}

#[test]
fn cheapest_licences_match_brute_force_over_subsets() {
    let mut found = 0;
    for seed in 1..=150u64 {
        let mut rng = Rng(seed * 104_729);
        let mut org = organisation(&mut rng);
        let n = 1 + rng.below(6);
        {
            let mut s = org.setup();
            for i in 0..n {
                let l = random_licence(&mut rng, s.org(), &format!("L{i}"));
                s.add_licence(l).unwrap();
            }
        }
        let catalogue: Vec<&Licence> = org.licences().iter().collect();
        for u in org.user_ids() {
            let need = org.licence_need(u);
            let mut best: Option<u64> = None;
            for mask in 0u32..(1 << n) {
                let set: Vec<&Licence> = (0..n)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| catalogue[i])
                    .collect();
                if covers(&org, &set, &need) {
                    let price = set.iter().map(|l| u64::from(l.price)).sum();
                    best = Some(best.map_or(price, |b: u64| b.min(price)));
                }
            }
            let got = org.cheapest_licences(u);
            assert_eq!(got.as_ref().map(|c| c.price), best, "seed {seed}");
            if let Some(c) = got {
                found += 1;
                let set: Vec<&Licence> = c
                    .licences
                    .iter()
                    .map(|name| org.licence(name).unwrap())
                    .collect();
                assert!(covers(&org, &set, &need), "seed {seed}");
                assert_eq!(set.iter().map(|l| u64::from(l.price)).sum::<u64>(), c.price);
            }
        }
    }
    assert!(
        found > 100,
        "the random catalogues cover too few users: {found}"
    );
}

/// Seed 003's shape: Professional (4) covers everything, Basic (2) everything but
/// opportunities beyond read and append.
fn sales() -> Organization {
    let mut org = Organization::new();
    {
        let mut s = org.setup();
        let root = s.add_business_unit("Contoso", None).unwrap();
        let account = s.add_table("account", None, Vec::new()).unwrap();
        let opportunity = s.add_table("opportunity", None, Vec::new()).unwrap();
        let full = |t| Privilege::ALL.map(|p| (t, p, Depth::Organization));
        let mut sales = full(account).to_vec();
        sales.extend(full(opportunity));
        let salesperson = s
            .add_role(RoleDefinition {
                name: "Salesperson".into(),
                business_unit: None,
                inheritance: strata_engine::Inheritance::UserAndTeam,
                system_administrator: false,
                privileges: sales,
                misc: vec!["prvExportToExcel".into()],
            })
            .unwrap();
        let clerk = s
            .add_role(RoleDefinition {
                name: "Clerk".into(),
                business_unit: None,
                inheritance: strata_engine::Inheritance::UserAndTeam,
                system_administrator: false,
                privileges: vec![
                    (account, Privilege::Read, Depth::Organization),
                    (account, Privilege::Write, Depth::User),
                    (opportunity, Privilege::Read, Depth::Organization),
                ],
                misc: Vec::new(),
            })
            .unwrap();
        for (name, role) in [("seller", salesperson), ("clerk", clerk), ("idle", clerk)] {
            let u = s.add_user(name, root, true).unwrap();
            s.assign_user_role(u, role, None).unwrap();
        }
        let mut opp = [Depth::None; 8];
        opp[Privilege::Read.index()] = Depth::Organization;
        opp[Privilege::Append.index()] = Depth::Organization;
        s.add_licence(Licence {
            name: "Professional".into(),
            price: 4,
            default_ceiling: Depth::Organization,
            ceilings: BTreeMap::new(),
            all_misc: true,
            misc: Vec::new(),
            all_apps: true,
            apps: Vec::new(),
        })
        .unwrap();
        s.add_licence(Licence {
            name: "Basic".into(),
            price: 2,
            default_ceiling: Depth::Organization,
            ceilings: BTreeMap::from([(opportunity, opp)]),
            all_misc: false,
            misc: vec!["prvExportToExcel".into()],
            all_apps: true,
            apps: Vec::new(),
        })
        .unwrap();
        let u = |n| s.org().user_id(n).unwrap();
        let (seller, clerk) = (u("seller"), u("clerk"));
        s.set_user_licences(seller, &["Basic".into()]).unwrap();
        s.set_user_licences(clerk, &["Professional".into()])
            .unwrap();
        let a = s
            .add_record(strata_engine::NewRecord {
                key: "o1".into(),
                table: opportunity,
                owner: strata_engine::Owner::User(seller),
                business_unit: None,
                state: strata_engine::RecordState::Active,
                fields: Vec::new(),
            })
            .unwrap();
        let _ = a;
    }
    org
}

#[test]
fn a_basic_licence_caps_write_on_opportunity_and_explain_says_so() {
    let org = sales();
    let seller = org.user_id("seller").unwrap();
    let o1 = org.record_id("o1").unwrap();
    assert!(org.check(seller, Privilege::Read, o1));
    assert!(org.check(seller, Privilege::Append, o1));
    assert!(!org.check(seller, Privilege::Write, o1));
    let text = org.render_decision(&org.explain(seller, Privilege::Write, o1));
    assert!(
        text.contains(
            "licence Basic caps `write` on `opportunity` at none (role `Salesperson` gives `organization`)"
        ),
        "{text}"
    );
    assert!(
        text.contains("gives `write` on `opportunity` within the user's licences"),
        "{text}"
    );
    // The idle clerk holds no licence: nothing at all (D48).
    let idle = org.user_id("idle").unwrap();
    assert!(!org.check(idle, Privilege::Read, o1));
    let text = org.render_decision(&org.explain(idle, Privilege::Read, o1));
    assert!(
        text.contains("the user holds no licence, which caps `read`"),
        "{text}"
    );
    // Misc privileges are capped too.
    assert!(org.holds_misc(seller, "prvExportToExcel"));
    assert!(!org.holds_misc(idle, "prvExportToExcel"));
}

#[test]
fn the_report_finds_over_and_under_licensed_users() {
    let org = sales();
    let report = org.licence_report();
    assert!(report.enforced);
    let line = |n: &str| {
        report
            .users
            .iter()
            .find(|l| org.user(l.user).name == n)
            .unwrap()
    };
    let seller = line("seller");
    assert_eq!(seller.fit, LicenceFit::UnderLicensed);
    assert_eq!(seller.cheapest.as_ref().unwrap().licences, ["Professional"]);
    assert!(seller.uncovered.iter().any(|u| matches!(
        u,
        Uncovered::Cell { need, ceiling: Depth::None } if need.privilege == Privilege::Write
    )));
    let clerk = line("clerk");
    assert_eq!(clerk.fit, LicenceFit::OverLicensed);
    assert_eq!(clerk.cheapest.as_ref().unwrap().licences, ["Basic"]);
    let idle = line("idle");
    assert_eq!(idle.fit, LicenceFit::UnderLicensed);
    assert_eq!(report.total_held, 2 + 4);
    assert_eq!(report.total_cheapest, 4 + 2 + 2);
    // Cell by cell: Salesperson exceeds Basic on opportunity's write, create, delete, append
    // to, assign, share.
    let basic = org.licence("Basic").unwrap();
    let excess = org.role_exceeds_licence(org.role_id("Salesperson").unwrap(), basic);
    assert_eq!(excess.len(), 6, "{excess:?}");
}

#[test]
fn licence_changes_roll_back_whole() {
    let mut org = sales();
    let before = org.canonical_dump();
    let cp = org.checkpoint();
    {
        let mut s = org.setup();
        s.remove_licence("Basic").unwrap_err();
        let seller = s.org().user_id("seller").unwrap();
        s.set_user_licences(seller, &[]).unwrap();
        s.remove_licence("Basic").unwrap();
    }
    assert_ne!(org.canonical_dump(), before);
    org.rollback(cp).unwrap();
    assert_eq!(org.canonical_dump(), before);
    assert!(org.indexes_are_current());
    let seller = org.user_id("seller").unwrap();
    assert_eq!(org.user_licences(seller)[0].name, "Basic");
}

#[test]
fn without_a_catalogue_nothing_is_capped() {
    let mut rng = Rng(99);
    let org = organisation(&mut rng);
    assert!(!org.licensing_enforced());
    for u in org.user_ids() {
        for t in org.table_ids() {
            assert_eq!(
                org.licence_ceiling(u, t, Privilege::Read),
                Depth::Organization
            );
        }
    }
    assert!(!org.canonical_dump().contains("Licensing"));
}
