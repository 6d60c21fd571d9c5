//! Lists page by a keyset cursor: records that did not change are neither skipped nor repeated
//! across pages while other records are created, updated and deleted between the pages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use strata_engine::{
    Actor, Column, CreateRecord, Depth, Inheritance, ListQuery, Order, Organization, Owner, Plan,
    Privilege, RecordState, RoleDefinition, Value,
};

fn org() -> Organization {
    let mut org = Organization::new();
    {
        let mut s = org.setup();
        let root = s.add_business_unit("Root", None).unwrap();
        let name = Column {
            name: "name".into(),
            secured: false,
        };
        let t = s.add_table("account", None, vec![name]).unwrap();
        let role = s
            .add_role(RoleDefinition {
                name: "All".into(),
                business_unit: None,
                inheritance: Inheritance::UserAndTeam,
                system_administrator: false,
                privileges: Privilege::ALL
                    .iter()
                    .map(|p| (t, *p, Depth::Organization))
                    .collect(),
                misc: Vec::new(),
            })
            .unwrap();
        let u = s.add_user("u", root, true).unwrap();
        s.assign_user_role(u, role, None).unwrap();
    }
    org
}

fn create(org: &mut Organization, key: &str, name: &str) {
    let (u, t) = (org.user_id("u").unwrap(), org.table_id("account").unwrap());
    org.create_record(
        Actor::User(u),
        CreateRecord {
            key: key.into(),
            table: t,
            owner: Some(Owner::User(u)),
            business_unit: None,
            state: RecordState::Active,
            lookups: Vec::new(),
            fields: vec![("name".into(), Value::Text(name.into()))],
        },
    )
    .unwrap();
}

#[test]
fn pages_stay_correct_while_writes_happen() {
    pages_stay_correct(Plan::SecurityFirst);
    pages_stay_correct(Plan::AttributeOrder);
}

fn pages_stay_correct(plan: Plan) {
    let mut org = org();
    for i in 0..40 {
        create(
            &mut org,
            &format!("r{i:02}"),
            &format!("name {:02}", (i * 7) % 40),
        );
    }
    let (u, t) = (org.user_id("u").unwrap(), org.table_id("account").unwrap());
    let unchanged: HashSet<String> = (0..40)
        .filter(|i| i % 5 != 0)
        .map(|i| format!("r{i:02}"))
        .collect();
    let mut seen: Vec<String> = Vec::new();
    let mut after = None;
    let mut round = 0;
    loop {
        let query = ListQuery {
            filter: None,
            order: vec![Order {
                column: "name".into(),
                descending: false,
            }],
            after: after.clone(),
            limit: 6,
            count: false,
            plan,
            work_budget: None,
            impersonator: None,
        };
        let page = org.list(u, t, &query).unwrap();
        seen.extend(page.records.iter().map(|r| org.record(*r).key.to_string()));
        // Between pages: delete one of the changing records, rename another, add new ones.
        let victim = format!("r{:02}", (round * 5) % 40);
        if let Some(id) = org.record_id(&victim) {
            if round % 2 == 0 {
                org.delete_record(Actor::User(u), id).unwrap();
            } else {
                let renamed = vec![("name".into(), Value::Text(format!("name {round:02}x")))];
                org.update_record(Actor::User(u), id, renamed).unwrap();
            }
        }
        create(
            &mut org,
            &format!("new{round}"),
            &format!("name {:02}", round * 3),
        );
        round += 1;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    for key in &unchanged {
        assert_eq!(
            seen.iter().filter(|k| *k == key).count(),
            1,
            "{key} must appear exactly once: {seen:?}"
        );
    }
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no record repeats across pages");
}

#[test]
fn moving_a_unit_moves_what_parent_child_reaches() {
    use strata_engine::NewRecord;
    let mut org = Organization::new();
    let (reader, table, b) = {
        let mut s = org.setup();
        let root = s.add_business_unit("Root", None).unwrap();
        let a = s.add_business_unit("A", Some(root)).unwrap();
        let b = s.add_business_unit("B", Some(root)).unwrap();
        let c = s.add_business_unit("C", Some(b)).unwrap();
        let t = s.add_table("account", None, Vec::new()).unwrap();
        let role = s
            .add_role(RoleDefinition {
                name: "Deep".into(),
                business_unit: None,
                inheritance: Inheritance::UserAndTeam,
                system_administrator: false,
                privileges: vec![(t, Privilege::Read, Depth::ParentChild)],
                misc: Vec::new(),
            })
            .unwrap();
        let reader = s.add_user("reader", a, true).unwrap();
        s.assign_user_role(reader, role, None).unwrap();
        let owner = s.add_user("owner", c, true).unwrap();
        for i in 0..5 {
            s.add_record(NewRecord {
                key: format!("r{i}"),
                table: t,
                owner: Owner::User(owner),
                business_unit: None,
                state: RecordState::Active,
                fields: Vec::new(),
            })
            .unwrap();
        }
        (reader, t, b)
    };
    assert!(org.list_readable(reader, table).is_empty());
    {
        let mut s = org.setup();
        let a = s.org().business_unit_id("A").unwrap();
        s.move_business_unit(b, a).unwrap();
    }
    assert_eq!(org.list_readable(reader, table).len(), 5);
    assert_eq!(
        org.list_readable(reader, table),
        org.list_readable_by_checks(reader, table)
    );
    assert!(org.record_index_is_current());
}

#[test]
fn lists_filter_and_order_by_the_record_state() {
    let mut org = org();
    let (u, t) = (org.user_id("u").unwrap(), org.table_id("account").unwrap());
    for (key, state) in [
        ("a1", RecordState::Active),
        ("a2", RecordState::Inactive),
        ("a3", RecordState::Active),
    ] {
        org.create_record(
            Actor::User(u),
            CreateRecord {
                key: key.into(),
                table: t,
                owner: Some(Owner::User(u)),
                business_unit: None,
                state,
                lookups: Vec::new(),
                fields: vec![("name".into(), Value::Text(key.into()))],
            },
        )
        .unwrap();
    }
    let keys = |org: &Organization, query: &ListQuery| -> Vec<String> {
        org.list(u, t, query)
            .unwrap()
            .records
            .iter()
            .map(|r| org.record(*r).key.to_string())
            .collect()
    };
    let filter = |value: i64| ListQuery {
        filter: Some(strata_engine::Filter::Compare {
            column: strata_engine::STATE_COLUMN.into(),
            op: strata_engine::CompareOp::Eq,
            value: Value::Int(value),
        }),
        limit: 10,
        count: true,
        ..Default::default()
    };
    assert_eq!(keys(&org, &filter(0)), ["a1", "a3"]);
    assert_eq!(keys(&org, &filter(1)), ["a2"]);
    assert_eq!(org.list(u, t, &filter(0)).unwrap().total, Some(2));
    let ordered = ListQuery {
        order: vec![Order {
            column: strata_engine::STATE_COLUMN.into(),
            descending: true,
        }],
        limit: 10,
        ..Default::default()
    };
    assert_eq!(keys(&org, &ordered), ["a2", "a1", "a3"]);
}

#[test]
fn filters_on_record_facts_agree_with_the_records() {
    use strata_engine::{Cascade, Fact, Filter, Referent};
    let mut org = org();
    let (u, t) = (org.user_id("u").unwrap(), org.table_id("account").unwrap());
    let root = org.business_unit_id("Root").unwrap();
    let (rel, v, sub) = {
        let mut s = org.setup();
        let rel = s
            .add_relationship(
                "parent_account",
                t,
                t,
                "parentaccountid",
                Cascade::REFERENTIAL,
            )
            .unwrap();
        let sub = s.add_business_unit("Sub", Some(root)).unwrap();
        let v = s.add_user("v", sub, true).unwrap();
        (rel, v, sub)
    };
    let mut ids = Vec::new();
    for i in 0..60u32 {
        let parent = (i % 3 == 1).then(|| ids[(i as usize) / 2]);
        org.create_record(
            Actor::System,
            CreateRecord {
                key: format!("r{i}"),
                table: t,
                owner: Some(Owner::User(if i % 2 == 0 { u } else { v })),
                business_unit: None,
                state: RecordState::Active,
                lookups: parent
                    .map(|p| ("parentaccountid".to_owned(), p))
                    .into_iter()
                    .collect(),
                fields: vec![("name".into(), Value::Text(format!("n{}", i % 7)))],
            },
        )
        .unwrap();
        ids.push(org.record_id(&format!("r{i}")).unwrap());
    }
    let facts = |r: strata_engine::RecordId, fact: Fact| -> Option<Referent> {
        let rec = org.record(r);
        match fact {
            Fact::Record => Some(Referent::Record(r)),
            Fact::Owner => match rec.owner {
                Owner::User(x) => Some(Referent::User(x)),
                _ => None,
            },
            Fact::OwningUnit => Some(Referent::Unit(rec.business_unit)),
            Fact::Lookup(_) => rec.lookup(rel).map(Referent::Record),
            Fact::CreatedBy => rec.stamps.creator().map(Referent::User),
            Fact::ModifiedBy => rec.stamps.modifier().map(Referent::User),
        }
    };
    let cases = [
        (
            Fact::Record,
            vec![
                Some(Referent::Record(ids[3])),
                Some(Referent::Record(ids[40])),
            ],
        ),
        (Fact::Owner, vec![Some(Referent::User(v))]),
        (Fact::OwningUnit, vec![Some(Referent::Unit(sub))]),
        (Fact::Lookup(rel), vec![Some(Referent::Record(ids[2]))]),
        (Fact::Lookup(rel), vec![None]),
    ];
    for (fact, targets) in cases {
        for negate in [false, true] {
            for extra in [false, true] {
                let refers = Filter::Refers {
                    fact,
                    targets: targets.clone(),
                };
                let refers = if negate {
                    Filter::Not(Box::new(refers))
                } else {
                    refers
                };
                // With an equality the column index answers beside it, and alone.
                let filter = if extra {
                    Filter::And(vec![
                        refers,
                        Filter::Compare {
                            column: "name".into(),
                            op: strata_engine::CompareOp::Eq,
                            value: Value::Text("n2".into()),
                        },
                    ])
                } else {
                    refers
                };
                let expected: Vec<String> = ids
                    .iter()
                    .filter(|r| targets.contains(&facts(**r, fact)) != negate)
                    .filter(|r| {
                        !extra || *org.record(**r).field("name") == Value::Text("n2".into())
                    })
                    .map(|r| org.record(*r).key.to_string())
                    .collect();
                for order in [
                    Vec::new(),
                    vec![Order {
                        column: "name".into(),
                        descending: false,
                    }],
                ] {
                    let page = org
                        .list(
                            u,
                            t,
                            &ListQuery {
                                filter: Some(filter.clone()),
                                order: order.clone(),
                                limit: 100,
                                count: true,
                                ..Default::default()
                            },
                        )
                        .unwrap();
                    let mut got: Vec<String> = page
                        .records
                        .iter()
                        .map(|r| org.record(*r).key.to_string())
                        .collect();
                    let mut want = expected.clone();
                    got.sort();
                    want.sort();
                    assert_eq!(
                        got, want,
                        "{fact:?} {targets:?} negate={negate} extra={extra}"
                    );
                    assert_eq!(page.total, Some(want.len()));
                }
            }
        }
    }
}

/// D165: lists filter, order and page by `createdon`/`modifiedon` (RFC 3339 text to the second),
/// a cursor's stamp read back as the time it names; an update moves `modifiedon` only, a share
/// moves neither.
#[test]
fn lists_filter_order_and_page_by_the_stamps() {
    use strata_engine::{CREATED_ON, CompareOp, Filter, MODIFIED_ON, rfc3339};
    let mut org = org();
    let (u, t) = (org.user_id("u").unwrap(), org.table_id("account").unwrap());
    let base = 1_800_000_000_000_i64;
    // Created in a shuffled order of times, some in the same second.
    let seconds = [5, 1, 9, 1, 7, 3, 3, 8, 0, 2, 6, 4];
    for (i, s) in seconds.iter().enumerate() {
        org.set_clock(base + s * 1_000 + 250);
        create(&mut org, &format!("r{i}"), "n");
    }
    let id = |org: &Organization, key: &str| org.record_id(key).unwrap();
    let stamps = |org: &Organization, key: &str| org.record(id(org, key)).stamps;
    assert_eq!(stamps(&org, "r2").created_at, 1_800_000_009);
    assert_eq!(stamps(&org, "r2").created_by, u.get());
    // An update later moves modifiedon; a share does not.
    org.set_clock(base + 60_000);
    org.update_record(
        Actor::User(u),
        id(&org, "r1"),
        vec![("name".into(), Value::Text("changed".into()))],
    )
    .unwrap();
    org.set_clock(base + 120_000);
    let v = {
        let root = org.business_unit_id("Root").unwrap();
        org.setup().add_user("v", root, true).unwrap()
    };
    let shared = org
        .share_record(
            Actor::User(u),
            id(&org, "r3"),
            strata_engine::Principal::User(v),
            strata_engine::AccessMask::INHERITED,
            strata_engine::ShareMode::Grant,
        )
        .unwrap();
    assert!(!shared.is_empty());
    assert_eq!(stamps(&org, "r1").created_at, 1_800_000_001);
    assert_eq!(stamps(&org, "r1").modified_at, 1_800_000_060);
    assert_eq!(stamps(&org, "r3").modified_at, 1_800_000_001);
    let at = |s: i64| Value::Text(rfc3339((base / 1000 + s) * 1000));
    // Every page of two, ordered by createdon descending (ties by id): the whole order.
    for plan in [Plan::Auto, Plan::SecurityFirst] {
        let mut query = ListQuery {
            order: vec![Order {
                column: CREATED_ON.into(),
                descending: true,
            }],
            limit: 2,
            plan,
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = org.list(u, t, &query).unwrap();
            seen.extend(page.records.iter().map(|r| org.record(*r).key.to_string()));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        let mut expected: Vec<(i64, usize)> =
            seconds.iter().enumerate().map(|(i, s)| (-s, i)).collect();
        expected.sort_unstable();
        let expected: Vec<String> = expected.iter().map(|(_, i)| format!("r{i}")).collect();
        assert_eq!(seen, expected, "{plan:?}");
    }
    // Synchronising: what changed after a time.
    let changed = ListQuery {
        filter: Some(Filter::Compare {
            column: MODIFIED_ON.into(),
            op: CompareOp::Gt,
            value: at(9),
        }),
        limit: 100,
        ..Default::default()
    };
    let page = org.list(u, t, &changed).unwrap();
    let keys: Vec<String> = page
        .records
        .iter()
        .map(|r| org.record(*r).key.to_string())
        .collect();
    assert_eq!(keys, ["r1"]);
}
