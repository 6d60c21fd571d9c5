//! A generated organisation for benchmarks, deterministic for a seed: a 5-level unit tree,
//! users with roles of every depth, owner teams, a manager hierarchy, a parental relationship
//! (contacts under accounts), 5 % of records shared, 1 % team-owned, and columns to filter and
//! sort on. Six named users stand for the kinds of reader the list benchmark measures.

use serde_json::json;
use strata_ops::Operation;

use crate::rng::Rng;

/// The readers the list benchmark measures, by name: (name, what kind of reader).
pub const READERS: [(&str, &str); 6] = [
    ("reader_user", "User depth (own records)"),
    ("reader_unit", "Business Unit depth"),
    ("reader_deep", "Parent:Child depth (a level-1 unit)"),
    ("reader_org", "Organization depth"),
    ("reader_sharee", "heavy sharee (User depth + many shares)"),
    ("reader_manager", "manager (User depth + hierarchy)"),
];

/// Cities of the `city` column.
pub const CITIES: [&str; 8] = [
    "Oslo", "Bergen", "Paris", "Lyon", "Austin", "Boston", "Kyoto", "Osaka",
];

const UNITS_PER_LEVEL: [usize; 5] = [1, 6, 36, 216, 741];
const USERS: usize = 10_000;
const TEAMS: usize = 500;

fn op(value: serde_json::Value) -> Operation {
    // The generator only writes operations it knows to be well-formed.
    serde_json::from_value(value).unwrap_or(Operation::AddTable {
        name: "unreachable".into(),
        ownership: None,
        columns: Vec::new(),
        entity_set: None,
    })
}

/// The unit names, parents first.
fn units() -> Vec<(String, Option<String>)> {
    let mut out = vec![("U0".to_owned(), None)];
    let mut previous = vec!["U0".to_owned()];
    let mut n = 1;
    for count in &UNITS_PER_LEVEL[1..] {
        let mut level = Vec::with_capacity(*count);
        for i in 0..*count {
            let name = format!("U{n}");
            n += 1;
            out.push((name.clone(), Some(previous[i % previous.len()].clone())));
            level.push(name);
        }
        previous = level;
    }
    out
}

/// The setup: units, tables, roles, users, teams, hierarchy (no records).
#[must_use]
pub fn setup(seed: u64) -> Vec<Operation> {
    let mut rng = Rng::new(seed);
    let mut ops = Vec::new();
    let units = units();
    for (name, parent) in &units {
        ops.push(op(
            json!({ "op": "add_business_unit", "name": name, "parent": parent }),
        ));
    }
    ops.push(op(
        json!({ "op": "add_table", "name": "account", "columns": [
        { "name": "name" }, { "name": "city" }, { "name": "revenue" }] }),
    ));
    ops.push(op(json!({ "op": "add_table", "name": "contact", "columns": [{ "name": "name" }, { "name": "city" }] })));
    ops.push(op(
        json!({ "op": "add_relationship", "name": "account_contacts", "parent": "account",
        "child": "contact", "lookup": "parentcustomerid", "behavior": "parental" }),
    ));
    ops.push(op(
        json!({ "op": "settings", "hierarchy": { "model": "manager", "depth": 3 } }),
    ));
    for (depth, name) in [
        ("user", "Read Own"),
        ("business_unit", "Read Unit"),
        ("parent_child", "Read Deep"),
        ("organization", "Read All"),
    ] {
        let grid = json!({ "read": depth, "write": "user", "create": "user", "share": "user", "append": "user", "append_to": "user" });
        ops.push(op(json!({ "op": "add_role", "name": name, "privileges": { "account": grid, "contact": grid } })));
    }
    let level1: Vec<&String> = units
        .iter()
        .skip(1)
        .take(UNITS_PER_LEVEL[1])
        .map(|(n, _)| n)
        .collect();
    let leaves: Vec<&String> = units
        .iter()
        .skip(units.len() - UNITS_PER_LEVEL[4])
        .map(|(n, _)| n)
        .collect();
    for (name, _) in READERS {
        let unit = if name == "reader_deep" {
            level1[0]
        } else {
            leaves[0]
        };
        ops.push(op(
            json!({ "op": "add_user", "name": name, "business_unit": unit }),
        ));
    }
    for (name, role) in [
        ("reader_user", "Read Own"),
        ("reader_unit", "Read Unit"),
        ("reader_deep", "Read Deep"),
        ("reader_org", "Read All"),
        ("reader_sharee", "Read Own"),
        ("reader_manager", "Read Own"),
    ] {
        ops.push(op(
            json!({ "op": "assign_role", "principal": name, "role": role }),
        ));
    }
    // Setup operations first (one setup session), then the system actions that link them.
    let roles = [
        "Read Own",
        "Read Unit",
        "Read Unit",
        "Read Unit",
        "Read Deep",
        "Read All",
    ];
    for i in 0..USERS {
        ops.push(op(json!({ "op": "add_user", "name": format!("u{i}"), "business_unit": leaves[i % leaves.len()] })));
    }
    for t in 0..TEAMS {
        ops.push(op(json!({ "op": "add_team", "name": format!("team{t}"), "business_unit": leaves[t % leaves.len()] })));
    }
    for i in 0..USERS {
        ops.push(op(json!({ "op": "assign_role", "principal": format!("u{i}"), "role": roles[rng.below(roles.len())] })));
    }
    // Direct reports in the manager's own unit (users u0, u741, … share the first leaf), so the
    // unit rule lets the hierarchy through; each of them manages two more.
    let mut k = 0;
    while k * leaves.len() < USERS {
        let report = format!("u{}", k * leaves.len());
        ops.push(op(
            json!({ "op": "set_manager", "user": report, "manager": "reader_manager" }),
        ));
        k += 1;
    }
    for t in 0..TEAMS {
        let name = format!("team{t}");
        ops.push(op(json!({ "op": "assign_role", "principal": format!("team:{name}"), "role": "Read Unit" })));
        for m in 0..5 {
            ops.push(op(json!({ "op": "add_team_member", "team": name, "user": format!("u{}", (t * 7 + m * 131) % USERS) })));
        }
    }
    ops
}

/// Records `from..to` of the generated organisation: accounts, and for every other one a
/// contact under an account; 1 % team-owned, 5 % shared (a tenth of the shares to
/// `reader_sharee`). Deterministic per seed and index.
#[must_use]
pub fn records(seed: u64, from: usize, to: usize) -> Vec<Operation> {
    let mut ops = Vec::with_capacity((to - from) * 2);
    for i in from..to {
        let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let owner = if rng.below(100) == 0 {
            format!("team:team{}", rng.below(TEAMS))
        } else if i % 50 == 0 {
            // Every reader owns a share of records, so User depth lists are not empty.
            READERS[(i / 50) % READERS.len()].0.to_owned()
        } else {
            format!("u{}", rng.below(USERS))
        };
        let is_contact = i % 2 == 1;
        let table = if is_contact { "contact" } else { "account" };
        let id = format!("r{i}");
        let city = CITIES[rng.below(CITIES.len())];
        let fields = if is_contact {
            json!({ "name": format!("Contact {:08}", rng.below(100_000_000)), "city": city })
        } else {
            json!({ "name": format!("Account {:08}", rng.below(100_000_000)), "city": city, "revenue": rng.below(1_000_000) })
        };
        ops.push(op(json!({ "op": "insert_record", "id": id, "table": table, "owner": owner, "fields": fields })));
        if is_contact && i > 0 {
            ops.push(op(json!({ "op": "associate", "record": id, "lookup": "parentcustomerid", "parent": format!("r{}", i - 1) })));
        }
        if rng.below(100) < 5 {
            let principal = if rng.below(10) == 0 {
                "reader_sharee".to_owned()
            } else if rng.below(3) == 0 {
                format!("team:team{}", rng.below(TEAMS))
            } else {
                format!("u{}", rng.below(USERS))
            };
            ops.push(op(
                json!({ "op": "share", "record": id, "principal": principal, "rights": ["read"] }),
            ));
        }
    }
    ops
}
