//! Strata's `check` against Cedar (`cedar-policy`) on the same read decisions, in process.
//!
//! The generated organisation (`strata bench generate`) is translated to Cedar entities and
//! policies for what Cedar can express directly: ownership, Business Unit and Parent:Child depth
//! (through each record's unit path), Organization depth and explicit shares to the user. Team
//! ownership, team shares, inherited access and hierarchy are left out, so the queries compare
//! users without teams or reports on records without a parent. Before timing, a differential gate:
//! both engines must give the same answer to every query.

use std::time::Instant;

use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request};
use serde_json::json;
use strata_engine::{Depth, Organization, Owner, Principal, Privilege, RecordId, UserId};

const POLICIES: &str = r#"
permit(principal, action == Action::"read", resource) when { principal.own && resource.owner == principal };
permit(principal, action == Action::"read", resource) when { principal.bu_units.contains(resource.unit) };
permit(principal, action == Action::"read", resource) when { principal.deep_units.containsAny(resource.unit_path) };
permit(principal, action == Action::"read", resource) when { principal.all };
permit(principal, action == Action::"read", resource) when { principal.own && resource.readers.contains(principal) };
"#;

fn uid(kind: &str, id: &str) -> serde_json::Value {
    json!({ "type": kind, "id": id })
}

/// An entity reference as an attribute value.
fn eref(kind: &str, id: &str) -> serde_json::Value {
    json!({ "__entity": { "type": kind, "id": id } })
}

fn main() {
    let records: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut org = Organization::new();
    strata_ops::apply_all(&mut org, &strata_demo::generate::setup(1))
        .unwrap_or_else(|(i, e)| panic!("setup {i}: {e}"));
    strata_ops::apply_all(&mut org, &strata_demo::generate::records(1, 0, records))
        .unwrap_or_else(|(i, e)| panic!("records {i}: {e}"));
    let account = org
        .table_id("account")
        .unwrap_or_else(|| panic!("no account table"));
    // Users Cedar can model: no team, no reports.
    let users: Vec<UserId> = org
        .user_ids()
        .filter(|u| org.user(*u).teams.is_empty() && org.hierarchy_reports(*u).is_empty())
        .collect();
    let units = org.units();
    let mut entities = Vec::new();
    for u in units.ids() {
        let parents: Vec<_> = units
            .parent(u)
            .map(|p| uid("Unit", units.name(p)))
            .into_iter()
            .collect();
        entities
            .push(json!({ "uid": uid("Unit", units.name(u)), "attrs": {}, "parents": parents }));
    }
    for u in &users {
        let grants = org.grants(*u, account, Privilege::Read);
        let at = |d: Depth| -> Vec<_> {
            grants
                .iter()
                .filter(|g| g.depth == d)
                .map(|g| eref("Unit", units.name(g.anchor)))
                .collect()
        };
        entities.push(json!({
            "uid": uid("User", &org.user(*u).name),
            "attrs": {
                "own": !grants.is_empty(),
                "bu_units": at(Depth::BusinessUnit),
                "deep_units": at(Depth::ParentChild),
                "all": grants.iter().any(|g| g.depth == Depth::Organization),
            },
            "parents": []
        }));
    }
    let nobody = uid("User", "nobody");
    entities.push(json!({ "uid": nobody.clone(), "attrs": { "own": false, "bu_units": [], "deep_units": [], "all": false }, "parents": [] }));
    let mut queried: Vec<RecordId> = Vec::new();
    for r in org.table_records(account) {
        let rec = org.record(*r);
        if !rec.lookups.is_empty() || !matches!(rec.owner, Owner::User(_)) {
            continue;
        }
        let owner = match rec.owner {
            Owner::User(o) if users.contains(&o) => eref("User", &org.user(o).name),
            _ => eref("User", "nobody"),
        };
        let readers: Vec<_> = rec
            .shares
            .iter()
            .filter(|s| s.mask.contains(Privilege::Read))
            .filter_map(|s| match s.principal {
                Principal::User(x) => Some(eref("User", &org.user(x).name)),
                _ => None,
            })
            .collect();
        let unit_path: Vec<_> = units
            .ancestors(rec.business_unit)
            .map(|a| eref("Unit", units.name(a)))
            .collect();
        entities.push(json!({
            "uid": uid("Account", &rec.key),
            "attrs": { "owner": owner, "unit": eref("Unit", units.name(rec.business_unit)), "unit_path": unit_path, "readers": readers },
            "parents": []
        }));
        // Only records shared with no team: team shares are not modelled.
        if rec
            .shares
            .iter()
            .all(|s| matches!(s.principal, Principal::User(_)))
        {
            queried.push(*r);
        }
    }
    let entities = Entities::from_json_value(serde_json::Value::Array(entities), None)
        .unwrap_or_else(|e| panic!("entities: {e}"));
    let policies: PolicySet = POLICIES.parse().unwrap_or_else(|e| panic!("policies: {e}"));
    let authorizer = Authorizer::new();
    let action: EntityUid = r#"Action::"read""#
        .parse()
        .unwrap_or_else(|e| panic!("action: {e}"));
    // Queries: a fixed-step walk over (user, record) pairs.
    let n = 200_000usize;
    let pairs: Vec<(UserId, RecordId)> = (0..n)
        .map(|i| {
            (
                users[(i * 7919) % users.len()],
                queried[(i * 104_729) % queried.len()],
            )
        })
        .collect();
    let requests: Vec<Request> = pairs
        .iter()
        .map(|(u, r)| {
            let p: EntityUid = format!("User::\"{}\"", org.user(*u).name)
                .parse()
                .unwrap_or_else(|e| panic!("{e}"));
            let res: EntityUid = format!("Account::\"{}\"", org.record(*r).key)
                .parse()
                .unwrap_or_else(|e| panic!("{e}"));
            Request::new(p, action.clone(), res, Context::empty(), None)
                .unwrap_or_else(|e| panic!("request: {e}"))
        })
        .collect();
    // The differential gate.
    let mut allowed = 0;
    for ((u, r), req) in pairs.iter().zip(&requests) {
        let strata = org.check(*u, Privilege::Read, *r);
        let cedar = authorizer
            .is_authorized(req, &policies, &entities)
            .decision()
            == cedar_policy::Decision::Allow;
        assert_eq!(
            strata,
            cedar,
            "{} on {}: strata {strata}, cedar {cedar}",
            org.user(*u).name,
            org.record(*r).key
        );
        allowed += usize::from(strata);
    }
    println!(
        "differential gate: {n} read decisions ({allowed} allow) identical in Strata and Cedar; {} users, {} accounts",
        users.len(),
        queried.len()
    );
    let time = |f: &mut dyn FnMut(usize) -> bool| {
        let mut per_call = Vec::new();
        for round in 0..5 {
            let start = Instant::now();
            let mut hits = 0usize;
            for i in 0..n {
                hits += usize::from(f((i + round) % n));
            }
            per_call.push(start.elapsed().as_nanos() as f64 / n as f64);
            std::hint::black_box(hits);
        }
        per_call.sort_by(f64::total_cmp);
        per_call[per_call.len() / 2]
    };
    let strata = time(&mut |i| org.check(pairs[i].0, Privilege::Read, pairs[i].1));
    let cedar = time(&mut |i| {
        authorizer
            .is_authorized(&requests[i], &policies, &entities)
            .decision()
            == cedar_policy::Decision::Allow
    });
    println!("| engine | ns per decision (median of 5 rounds of {n}) |");
    println!("|---|---:|");
    println!("| Strata `check` | {strata:.0} |");
    println!("| Cedar `is_authorized` (request prebuilt) | {cedar:.0} |");
    println!("ratio: Strata is {:.1}x faster", cedar / strata);
}
