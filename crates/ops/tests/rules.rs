//! Role rules on the write path (D45–D47): random batches of role assignments, removals, team
//! membership changes and unit moves against an oracle — a batch is refused for a rule exactly
//! when applying it unchecked would leave some user breaking a rule they did not break before —
//! and the property that after any accepted sequence no user breaks a rule they did not
//! already break when the sequence began.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use serde_json::json;
use strata_engine::Organization;
use strata_ops::{Operation, apply_all, apply_batch, apply_checked};

fn ops(v: serde_json::Value) -> Vec<Operation> {
    serde_json::from_value(v).unwrap()
}

const ROLES: [&str; 6] = ["A", "B", "C", "D", "E", "F"];
const USERS: [&str; 4] = ["u0", "u1", "u2", "u3"];
const TEAMS: [&str; 2] = ["T0", "T1"];

fn base() -> Organization {
    let mut org = Organization::new();
    let mut list = vec![
        json!({"op": "add_business_unit", "name": "Root"}),
        json!({"op": "add_business_unit", "name": "Sub", "parent": "Root"}),
        json!({"op": "add_role", "name": "System Administrator", "system_administrator": true}),
    ];
    for r in ROLES {
        list.push(json!({"op": "add_role", "name": r}));
    }
    for u in USERS {
        list.push(json!({"op": "add_user", "name": u}));
    }
    for t in TEAMS {
        list.push(json!({"op": "add_team", "name": t}));
    }
    apply_all(&mut org, &ops(serde_json::Value::Array(list))).unwrap();
    org
}

/// Consistent rules: A needs B or C, B needs C, E needs A, D never with E, F direct only.
fn rules() -> Vec<Operation> {
    ops(json!([
        {"op": "add_role_rule", "role": "A", "requires": ["B", "C"]},
        {"op": "add_role_rule", "role": "B", "requires": ["C"]},
        {"op": "add_role_rule", "role": "E", "requires": ["A"]},
        {"op": "add_role_rule", "role": "D", "excludes": "E"},
        {"op": "add_role_rule", "role": "F", "direct_only": true}
    ]))
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[usize::try_from(self.next() % list.len() as u64).unwrap()]
    }
}

fn random_op(rng: &mut Rng) -> Operation {
    let principal = if rng.next().is_multiple_of(3) {
        format!("team:{}", rng.pick(&TEAMS))
    } else {
        rng.pick(&USERS).to_owned()
    };
    let v = match rng.next() % 8 {
        0..=2 => json!({"op": "assign_role", "principal": principal, "role": rng.pick(&ROLES)}),
        3 | 4 => json!({"op": "remove_role", "principal": principal, "role": rng.pick(&ROLES)}),
        5 => json!({"op": "add_team_member", "team": rng.pick(&TEAMS), "user": rng.pick(&USERS)}),
        6 => {
            json!({"op": "remove_team_member", "team": rng.pick(&TEAMS), "user": rng.pick(&USERS)})
        }
        _ => {
            json!({"op": "move_user", "user": rng.pick(&USERS), "business_unit": rng.pick(&["Root", "Sub"])})
        }
    };
    serde_json::from_value(v).unwrap()
}

/// (user, rule) pairs broken.
fn broken(org: &Organization) -> BTreeSet<(String, String)> {
    org.rule_violations()
        .iter()
        .map(|v| (org.user(v.user).name.clone(), v.rule.text(org)))
        .collect()
}

#[test]
fn batches_are_refused_exactly_when_they_break_a_rule_anew() {
    let (mut accepted, mut refused_for_rules) = (0, 0);
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut org = base();
        // Some assignments before the rules: they may break them (D46, reported, not refused).
        let early: Vec<Operation> = (0..6).map(|_| random_op(&mut rng)).collect();
        for op in &early {
            let _ = apply_all(&mut org, std::slice::from_ref(op));
        }
        apply_all(&mut org, &rules()).unwrap();
        let start = broken(&org);
        for _ in 0..25 {
            let n = 1 + usize::try_from(rng.next() % 3).unwrap();
            let batch: Vec<Operation> = (0..n).map(|_| random_op(&mut rng)).collect();
            let before = broken(&org);
            let dump = org.canonical_dump();
            // The oracle: the same batch unchecked, on a copy.
            let mut copy = org.clone();
            let unchecked = apply_all(&mut copy, &batch);
            let result = apply_batch(&mut org, &batch, None, None);
            match (&unchecked, &result) {
                (Err(_), Ok(_)) => panic!("seed {seed}: {batch:?} applied but invalid"),
                (Err((i, e)), Err((j, f))) => {
                    assert_eq!((i, e.code), (j, f.code), "seed {seed}: {batch:?}");
                    assert_eq!(org.canonical_dump(), dump);
                }
                (Ok(()), outcome) => {
                    // New pairs: broken after, not before, among users the batch touched (the
                    // others cannot change).
                    let new: Vec<_> = broken(&copy).difference(&before).cloned().collect();
                    match outcome {
                        Ok(_) => {
                            assert!(
                                new.is_empty(),
                                "seed {seed}: {batch:?} accepted, breaks {new:?}"
                            );
                            accepted += 1;
                        }
                        Err((_, e)) => {
                            assert_eq!(e.code, "role_rule_violated", "seed {seed}: {e:?}");
                            assert!(!new.is_empty(), "seed {seed}: {batch:?} refused: {e:?}");
                            assert!(
                                new.iter()
                                    .any(|(u, rule)| e.message.contains(&format!("`{u}`"))
                                        && e.message
                                            .contains(&rule.split(' ').next().unwrap().to_owned())),
                                "seed {seed}: {} names none of {new:?}",
                                e.message
                            );
                            assert_eq!(org.canonical_dump(), dump);
                            refused_for_rules += 1;
                        }
                    }
                }
            }
            // The property: nothing broken that was not broken when the sequence began.
            let now = broken(&org);
            assert!(
                now.is_subset(&start),
                "seed {seed}: {:?}",
                now.difference(&start)
            );
        }
    }
    assert!(
        accepted > 100 && refused_for_rules > 50,
        "{accepted} {refused_for_rules}"
    );
}

#[test]
fn a_batch_may_assign_a_role_and_what_it_requires_in_either_order() {
    let mut org = base();
    apply_all(&mut org, &rules()).unwrap();
    let one = ops(json!([{"op": "assign_role", "principal": "u0", "role": "B"}]));
    let (i, e) = apply_batch(&mut org, &one, None, None).unwrap_err();
    assert_eq!((i, e.code), (0, "role_rule_violated"));
    assert!(
        e.message.contains(
            "user `u0` holds `B` (directly) without `C`: assign `C` first or in the same batch"
        ),
        "{}",
        e.message
    );
    let both = ops(json!([
        {"op": "assign_role", "principal": "u0", "role": "B"},
        {"op": "assign_role", "principal": "u0", "role": "C"}
    ]));
    apply_batch(&mut org, &both, None, None).unwrap();
    // Removing C, which B needs, is refused; removing both is not.
    let remove = ops(json!([{"op": "remove_role", "principal": "u0", "role": "C"}]));
    let (_, e) = apply_batch(&mut org, &remove, None, None).unwrap_err();
    assert_eq!(e.code, "role_rule_violated");
    let e = apply_checked(&mut org, &remove[0], None).unwrap_err();
    assert_eq!(e.code, "role_rule_violated");
    let both = ops(json!([
        {"op": "remove_role", "principal": "u0", "role": "C"},
        {"op": "remove_role", "principal": "u0", "role": "B"}
    ]));
    apply_batch(&mut org, &both, None, None).unwrap();
    assert!(org.rule_violations().is_empty());
    // A rule added in the batch binds the batch's own assignments.
    let batch = ops(json!([
        {"op": "add_role_rule", "role": "C", "excludes": "D"},
        {"op": "assign_role", "principal": "u1", "role": "C"},
        {"op": "assign_role", "principal": "u1", "role": "D"}
    ]));
    let (i, e) = apply_batch(&mut org, &batch, None, None).unwrap_err();
    assert_eq!((i, e.code), (2, "role_rule_violated"));
    assert_eq!(org.role_rules().len(), 5);
}

#[test]
fn rule_operations_name_what_is_wrong_and_are_role_administration() {
    let mut org = base();
    apply_all(&mut org, &rules()).unwrap();
    let refuse = |org: &mut Organization, v: serde_json::Value| {
        let op: Operation = serde_json::from_value(v).unwrap();
        let e = apply_checked(org, &op, None).unwrap_err();
        (e.code, e.message)
    };
    let (code, msg) = refuse(
        &mut org,
        json!({"op": "add_role_rule", "role": "C", "excludes": "A"}),
    );
    assert_eq!(code, "contradictory_rule", "{msg}");
    let (code, msg) = refuse(
        &mut org,
        json!({"op": "add_role_rule", "role": "C", "requires": ["E"]}),
    );
    assert_eq!(code, "rule_cycle", "{msg}");
    assert!(msg.contains("`C` requires `E`"), "{msg}");
    let (code, msg) = refuse(
        &mut org,
        json!({"op": "add_role_rule", "role": "Nope", "direct_only": true}),
    );
    assert_eq!(code, "unknown_reference");
    assert!(msg.contains("`Nope`"));
    let (code, _) = refuse(
        &mut org,
        json!({"op": "add_role_rule", "role": "A", "excludes": "B", "direct_only": true}),
    );
    assert_eq!(code, "bad_rule");
    let (code, _) = refuse(
        &mut org,
        json!({"op": "add_role_rule", "role": "A", "requires": []}),
    );
    assert_eq!(code, "bad_rule");
    let (code, _) = refuse(
        &mut org,
        json!({"op": "add_role_rule", "role": "System Administrator", "requires": ["A"]}),
    );
    assert_eq!(code, "rule_on_system_administrator");
    let (code, _) = refuse(
        &mut org,
        json!({"op": "remove_role_rule", "role": "A", "excludes": "F"}),
    );
    assert_eq!(code, "unknown_rule");
    assert!(
        serde_json::from_value::<Operation>(
            json!({"op": "add_role_rule", "role": "A", "needs": ["B"]})
        )
        .is_err()
    );
    // Users: Write on `role` over each named role's unit.
    apply_all(
        &mut org,
        &ops(json!([
            {"op": "add_role", "name": "Role Editor", "privileges": {"role": {"write": "organization", "read": "organization"}}},
            {"op": "add_role", "name": "Role Reader", "privileges": {"role": {"read": "organization"}}},
            {"op": "add_user", "name": "editor"},
            {"op": "add_user", "name": "reader"},
            {"op": "assign_role", "principal": "editor", "role": "Role Editor"},
            {"op": "assign_role", "principal": "reader", "role": "Role Reader"}
        ])),
    )
    .unwrap();
    let rule: Operation =
        serde_json::from_value(json!({"op": "add_role_rule", "role": "C", "excludes": "F"}))
            .unwrap();
    let e = apply_checked(&mut org, &rule, Some("reader")).unwrap_err();
    assert_eq!(e.code, "denied");
    apply_checked(&mut org, &rule, Some("editor")).unwrap();
    let remove: Operation =
        serde_json::from_value(json!({"op": "remove_role_rule", "role": "F", "excludes": "C"}))
            .unwrap();
    assert_eq!(
        apply_checked(&mut org, &remove, Some("reader"))
            .unwrap_err()
            .code,
        "denied"
    );
    apply_checked(&mut org, &remove, Some("editor")).unwrap();
    // Round trip through JSON, as the operation log keeps them.
    for op in rules() {
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(serde_json::from_str::<Operation>(&text).unwrap(), op);
        assert!(!text.contains("direct_only\":false"), "{text}");
    }
}
