//! Actions on random organisations: a refused action changes nothing, an action that reports
//! no change changes nothing, and the organisation's invariants hold after every step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_engine::{
    AccessMask, Actor, CreateRecord, Organization, Owner, Principal, Privilege, RecordState,
    ShareMode, Value,
};

mod common;

use common::{Rng, organisation};

fn fingerprint(org: &Organization) -> String {
    let mut s = String::new();
    for u in org.user_ids() {
        s.push_str(&format!("{:?}\n", org.user(u)));
    }
    for t in org.team_ids() {
        s.push_str(&format!("{:?}\n", org.team(t)));
    }
    for id in org.record_ids() {
        s.push_str(&format!("{:?}\n", org.record(id)));
        let mut children = org.children(id).to_vec();
        children.sort();
        s.push_str(&format!("{children:?}\n"));
    }
    s
}

/// Every filtered, ordered, paged list equals a brute force over single checks and the record
/// as the user sees it (column security included).
fn check_lists(org: &Organization) {
    use strata_engine::{CompareOp, Filter, ListQuery, Order};
    let table = org.table_id("account").unwrap();
    let filters = [
        None,
        Some(Filter::StartsWith {
            column: "name".into(),
            text: "n1".into(),
        }),
        Some(Filter::Compare {
            column: "secret".into(),
            op: CompareOp::Gt,
            value: Value::Int(3),
        }),
        Some(Filter::Or(vec![
            Filter::Compare {
                column: "secret".into(),
                op: CompareOp::Eq,
                value: Value::Null,
            },
            Filter::Not(Box::new(Filter::Contains {
                column: "name".into(),
                text: "x".into(),
            })),
        ])),
        // Equality tests the column index answers before any record is read: exactly, and
        // with a rest to test on each record.
        Some(Filter::In {
            column: "name".into(),
            values: vec![
                Value::Text("x".into()),
                Value::Text("n1".into()),
                Value::Null,
            ],
        }),
        Some(Filter::And(vec![
            Filter::Compare {
                column: "name".into(),
                op: CompareOp::Eq,
                value: Value::Text("x".into()),
            },
            Filter::Compare {
                column: "secret".into(),
                op: CompareOp::Gt,
                value: Value::Int(3),
            },
        ])),
        Some(Filter::And(vec![Filter::Compare {
            column: "name".into(),
            op: CompareOp::Eq,
            value: Value::Text("n2".into()),
        }])),
        Some(Filter::Not(Box::new(Filter::EndsWith {
            column: "name".into(),
            text: "1".into(),
        }))),
    ];
    let orders = [
        vec![],
        vec![Order {
            column: "name".into(),
            descending: true,
        }],
        vec![Order {
            column: "secret".into(),
            descending: false,
        }],
    ];
    for user in org.user_ids() {
        for (i, filter) in filters.iter().enumerate() {
            let order = &orders[i % orders.len()];
            // Brute force.
            let mut expected: Vec<(Vec<Value>, u32)> = Vec::new();
            for r in org.list_readable_by_checks(user, table) {
                let seen = org.read_record(user, r).unwrap();
                let value = |c: &str| {
                    seen.iter()
                        .find(|(k, _)| k == c)
                        .map_or(Value::Null, |(_, v)| v.clone())
                };
                let name = value("name");
                let secret_over_3 = matches!(value("secret"), Value::Int(v) if v > 3);
                let keep = match i {
                    0 => true,
                    1 => matches!(&name, Value::Text(t) if t.starts_with("n1")),
                    2 => secret_over_3,
                    3 => {
                        value("secret") == Value::Null
                            || !matches!(&name, Value::Text(t) if t.contains('x'))
                    }
                    4 => {
                        matches!(&name, Value::Null)
                            || matches!(&name, Value::Text(t) if t == "x" || t == "n1")
                    }
                    5 => matches!(&name, Value::Text(t) if t == "x") && secret_over_3,
                    6 => matches!(&name, Value::Text(t) if t == "n2"),
                    _ => !matches!(&name, Value::Text(t) if t.ends_with('1')),
                };
                if keep {
                    expected.push((order.iter().map(|o| value(&o.column)).collect(), r.get()));
                }
            }
            expected.sort_by(|a, b| {
                for (k, o) in order.iter().enumerate() {
                    let c = strata_engine::compare_values(&a.0[k], &b.0[k]);
                    let c = if o.descending { c.reverse() } else { c };
                    if c != std::cmp::Ordering::Equal {
                        return c;
                    }
                }
                a.1.cmp(&b.1)
            });
            let want: Vec<u32> = expected.iter().map(|(_, id)| *id).collect();
            // Pages of two, by each plan, with and without the count.
            for plan in [
                strata_engine::Plan::SecurityFirst,
                strata_engine::Plan::AttributeOrder,
            ] {
                for count in [true, false] {
                    let mut got = Vec::new();
                    let mut after = None;
                    loop {
                        let query = ListQuery {
                            filter: filter.clone(),
                            order: order.clone(),
                            after,
                            limit: 2,
                            count,
                            plan,
                            work_budget: None,
                            impersonator: None,
                        };
                        let page = org.list(user, table, &query).unwrap();
                        if count {
                            assert_eq!(page.total, Some(expected.len()));
                        }
                        got.extend(page.records.iter().map(|r| r.get()));
                        match page.next {
                            Some(next) => after = Some(next),
                            None => break,
                        }
                    }
                    assert_eq!(
                        got, want,
                        "{plan:?} list of {filter:?} ordered by {order:?}"
                    );
                }
            }
        }
    }
}

/// The invariants an action must keep.
fn check_invariants(org: &Organization) {
    assert!(
        org.indexes_are_current(),
        "derived indexes differ from a full rebuild"
    );
    assert!(
        org.record_index_is_current(),
        "the record index differs from a rebuild"
    );
    check_lists(org);
    for u in org.user_ids() {
        for t in org.table_ids() {
            assert_eq!(
                org.list_readable(u, t),
                org.list_readable_by_checks(u, t),
                "the indexed list differs from the checks"
            );
        }
    }
    for id in org.record_ids() {
        let r = org.record(id);
        if !r.alive {
            assert!(
                org.record_id(&r.key) != Some(id),
                "a deleted record keeps its key"
            );
            assert!(
                org.children(id).is_empty(),
                "a deleted record keeps children"
            );
            continue;
        }
        assert_eq!(org.record_id(&r.key), Some(id));
        for (rel, parent) in &r.lookups {
            assert!(
                org.record(*parent).alive,
                "record {} points at a deleted parent",
                r.key
            );
            assert!(
                org.children(*parent).contains(&(*rel, id)),
                "children index misses {}",
                r.key
            );
        }
        for (rel, child) in org.children(id) {
            assert_eq!(org.record(*child).lookup(*rel), Some(id));
        }
        assert!(org.table_records(r.table).contains(&id));
    }
    for t in org.team_ids() {
        for m in &org.team(t).members {
            assert!(org.is_member(*m, t));
        }
    }
}

#[test]
fn refused_actions_change_nothing() {
    let (mut refused, mut applied) = (0, 0);
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut org = organisation(&mut rng);
        let users: Vec<_> = org.user_ids().collect();
        let roles: Vec<_> = org.role_ids().collect();
        let units: Vec<_> = org.units().ids().collect();
        let (account, contact) = (
            org.table_id("account").unwrap(),
            org.table_id("contact").unwrap(),
        );
        let template = org.template_id("deal").unwrap();
        for step in 0..40 {
            let records: Vec<_> = org.record_ids().collect();
            let actor = if rng.chance(10) {
                Actor::System
            } else {
                Actor::User(users[rng.below(users.len())])
            };
            let record = records[rng.below(records.len())];
            let other = records[rng.below(records.len())];
            let user = users[rng.below(users.len())];
            let before = fingerprint(&org);
            let read_write = AccessMask::of(&[Privilege::Read, Privilege::Write]);
            let result = match rng.below(12) {
                0 => org.create_record(
                    actor,
                    CreateRecord {
                        key: format!("new{seed}-{step}"),
                        table: if rng.chance(50) { account } else { contact },
                        owner: rng.chance(50).then_some(Owner::User(user)),
                        business_unit: None,
                        state: RecordState::Active,
                        lookups: if rng.chance(50) {
                            vec![("parentid".into(), other)]
                        } else {
                            Vec::new()
                        },
                        fields: vec![("secret".into(), Value::Int(1))],
                    },
                ),
                1 => org.update_record(
                    actor,
                    record,
                    vec![
                        ("name".into(), Value::Text("x".into())),
                        ("secret".into(), Value::Int(9)),
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
                9 => org.assign_role(
                    actor,
                    Principal::User(user),
                    roles[rng.below(roles.len())],
                    None,
                ),
                10 => org.move_user(actor, user, units[rng.below(units.len())]),
                _ => org.set_manager(actor, user, Some(users[rng.below(users.len())])),
            };
            match result {
                Err(e) => {
                    refused += 1;
                    assert_eq!(
                        before,
                        fingerprint(&org),
                        "seed {seed} step {step}: refused action changed the state: {e}"
                    );
                }
                Ok(changes) => {
                    applied += 1;
                    if changes.is_empty() {
                        assert_eq!(
                            before,
                            fingerprint(&org),
                            "seed {seed} step {step}: no change reported, state changed"
                        );
                    }
                }
            }
            check_invariants(&org);
        }
    }
    assert!(
        refused > 1000 && applied > 1000,
        "refused {refused}, applied {applied}"
    );
}
