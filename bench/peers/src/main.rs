//! Strata's `check` against Cedar (`cedar-policy`) and Casbin (`casbin`) on the same read
//! decisions, in process.
//!
//! The generated organisation (`strata bench generate`) is translated to each peer for what it can
//! express directly: ownership, Business Unit and Parent:Child depth (through each record's unit
//! path), Organization depth and explicit shares to the user. Team ownership, team shares,
//! inherited access and hierarchy are left out, so the queries compare users without teams or
//! reports on records without a parent. Before timing, a differential gate: every peer must give
//! Strata's answer to every query.
//!
//! Casbin is RBAC with domains (`g = _, _, _`) over flat policy rows; it has no unit tree, no
//! record attributes unless the request carries them, and no notion of "the user holds some read
//! privilege" (the precondition on owner and share access), so the translation precomputes all
//! three into rows. A domain (scope) is either a business unit or one record:
//! - Business Unit grant: `g, user, reader, unit`.
//! - Parent:Child grant: the anchor's subtree is expanded, one `g, user, reader, unit` per unit
//!   below it. Casbin's domains are flat; a domain-matching function (`keyMatch` on unit paths)
//!   would need the request to carry the record's whole unit path, and makes every role lookup
//!   scan all domains. The expansion must be redone when a unit moves; Strata needs no such step.
//! - Organization grant: `g2, user, reader` (no domain). Expanding it to every unit, like
//!   Parent:Child, gives about 1.2 million rows and makes every unit's role graph as large as the
//!   number of organisation-wide readers.
//! - Owner, and an explicit share with read: `g, user, reader, record`, only for users holding
//!   some read privilege on accounts (as Strata requires).
//!
//! Casbin is given the request `(user, record's unit, record, "read")`: the application knows the
//! record's owning unit when it loads the record; owner and shares are not passed. The matcher
//! tests the `reader` role on the record, in the record's unit, then organisation-wide, against
//! one `p` row. In casbin-rs a role lookup for a user absent from the domain scans that domain's
//! role graph, so denials cost more than allows.
//!
//! The ordinary Casbin ACL puts per-record permissions in `p` rows (`p, user, record, read`);
//! `enforce` evaluates the matcher once per `p` row, so that encoding is timed too, on fewer
//! decisions. With the `cached` feature, `CachedEnforcer` is timed as well (see `Cargo.toml`).

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use casbin::{CoreApi, DefaultModel, Enforcer, StringAdapter};
use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request};
use serde_json::json;
use strata_engine::{Depth, Organization, Owner, Principal, Privilege, RecordId, TableId, UserId};

const POLICIES: &str = r#"
permit(principal, action == Action::"read", resource) when { principal.own && resource.owner == principal };
permit(principal, action == Action::"read", resource) when { principal.bu_units.contains(resource.unit) };
permit(principal, action == Action::"read", resource) when { principal.deep_units.containsAny(resource.unit_path) };
permit(principal, action == Action::"read", resource) when { principal.all };
permit(principal, action == Action::"read", resource) when { principal.own && resource.readers.contains(principal) };
"#;

/// Casbin, RBAC with domains: `reader` is held in a domain (a business unit or one record, `g`)
/// or organisation-wide (`g2`); one `p` row. The record's domain is tested first: it is the
/// smallest role graph, and a role lookup that misses scans the domain's graph.
const CASBIN_SCOPES: &str = r#"
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, act

[role_definition]
g = _, _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.act == p.act && (g(r.sub, p.sub, r.obj) || g(r.sub, p.sub, r.dom) || g2(r.sub, p.sub))
"#;

/// Casbin, the ordinary ACL plus RBAC with domains: `p, reader, *, read` for the `reader` role
/// (per unit in `g`, organisation-wide in `g2`) and one `p, user, record, read` row per owner or
/// share.
const CASBIN_ACL: &str = r#"
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = (p.obj == "*" || r.obj == p.obj) && (g(r.sub, p.sub, r.dom) || g2(r.sub, p.sub)) && r.act == p.act
"#;

/// Decisions timed for the ACL encoding, whose `enforce` is linear in its `p` rows.
const ACL_DECISIONS: usize = 500;

/// Casbin's rows for the modelled users and accounts: who holds `reader` organisation-wide, who
/// holds it in which unit, and who reads which record as its owner or through a share (only for
/// users holding some read privilege on accounts, as Strata requires).
struct CasbinRows {
    everywhere: Vec<String>,
    units: Vec<(String, String)>,
    records: Vec<(String, String)>,
}

impl CasbinRows {
    fn new(org: &Organization, account: TableId, users: &[UserId], records: &[RecordId]) -> Self {
        let units = org.units();
        let mut everywhere = Vec::new();
        let mut unit_rows = Vec::new();
        let mut readers = HashSet::new();
        for u in users {
            let grants = org.grants(*u, account, Privilege::Read);
            if !grants.is_empty() {
                readers.insert(*u);
            }
            let name = &org.user(*u).name;
            if grants.iter().any(|g| g.depth == Depth::Organization) {
                everywhere.push(name.clone());
                continue;
            }
            let mut scope = BTreeSet::new();
            for g in grants {
                match g.depth {
                    Depth::BusinessUnit => {
                        scope.insert(g.anchor);
                    }
                    Depth::ParentChild => {
                        scope.extend(units.ids().filter(|d| units.contains(g.anchor, *d)));
                    }
                    Depth::User | Depth::Organization | Depth::None => {}
                }
            }
            unit_rows.extend(
                scope
                    .into_iter()
                    .map(|d| (name.clone(), units.name(d).to_owned())),
            );
        }
        let mut record_rows = Vec::new();
        for r in records {
            let rec = org.record(*r);
            let owner = match rec.owner {
                Owner::User(o) => Some(o),
                _ => None,
            };
            let shared = rec
                .shares
                .iter()
                .filter(|s| s.mask.contains(Privilege::Read))
                .filter_map(|s| match s.principal {
                    Principal::User(x) => Some(x),
                    _ => None,
                });
            let mut seen = BTreeSet::new();
            for u in owner.into_iter().chain(shared) {
                if readers.contains(&u) && seen.insert(u) {
                    record_rows.push((org.user(u).name.clone(), rec.key.clone()));
                }
            }
        }
        Self {
            everywhere,
            units: unit_rows,
            records: record_rows,
        }
    }

    /// The policy text for [`CASBIN_SCOPES`].
    fn scopes(&self) -> String {
        let mut text = String::from("p, reader, read\n");
        for (user, domain) in self.units.iter().chain(&self.records) {
            text += &format!("g, {user}, reader, {domain}\n");
        }
        for user in &self.everywhere {
            text += &format!("g2, {user}, reader\n");
        }
        text
    }

    /// The policy text for [`CASBIN_ACL`].
    fn acl(&self) -> String {
        let mut text = String::from("p, reader, *, read\n");
        for (user, record) in &self.records {
            text += &format!("p, {user}, {record}, read\n");
        }
        for (user, unit) in &self.units {
            text += &format!("g, {user}, reader, {unit}\n");
        }
        for user in &self.everywhere {
            text += &format!("g2, {user}, reader\n");
        }
        text
    }
}

/// Loads a Casbin enforcer from model and policy text; returns it with the load time in ms.
fn load_casbin(rt: &tokio::runtime::Runtime, model: &str, policy: String) -> (Enforcer, f64) {
    let start = Instant::now();
    let enforcer = rt.block_on(async {
        let model = DefaultModel::from_str(model)
            .await
            .unwrap_or_else(|e| panic!("casbin model: {e}"));
        Enforcer::new(model, StringAdapter::new(policy))
            .await
            .unwrap_or_else(|e| panic!("casbin policy: {e}"))
    });
    (enforcer, start.elapsed().as_secs_f64() * 1e3)
}

/// Median ns per call of `f` over 5 rounds of `n` calls.
fn time(n: usize, f: &mut dyn FnMut(usize) -> bool) -> f64 {
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
}

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
    let mut modelled: Vec<RecordId> = Vec::new();
    let mut queried: Vec<RecordId> = Vec::new();
    for r in org.table_records(account) {
        let rec = org.record(*r);
        if !rec.lookups.is_empty() || !matches!(rec.owner, Owner::User(_)) {
            continue;
        }
        modelled.push(*r);
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
    // Casbin: the same organisation as policy rows, and the same pairs as requests carrying the
    // user, the record's unit, the record and the action.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let rows = CasbinRows::new(&org, account, &users, &modelled);
    let (scopes, scopes_ms) = load_casbin(&rt, CASBIN_SCOPES, rows.scopes());
    let (acl, acl_ms) = load_casbin(&rt, CASBIN_ACL, rows.acl());
    let casbin_requests: Vec<[&str; 3]> = pairs
        .iter()
        .map(|(u, r)| {
            let rec = org.record(*r);
            [
                org.user(*u).name.as_str(),
                units.name(rec.business_unit),
                rec.key.as_str(),
            ]
        })
        .collect();
    let enforce = |e: &Enforcer, [user, unit, record]: [&str; 3]| {
        e.enforce((user, unit, record, "read"))
            .unwrap_or_else(|err| panic!("casbin: {err}"))
    };
    let gate = |name: &str, count: usize, decide: &dyn Fn(usize) -> bool| {
        let mut allowed = 0;
        for (i, (u, r)) in pairs.iter().enumerate().take(count) {
            let strata = org.check(*u, Privilege::Read, *r);
            let peer = decide(i);
            assert_eq!(
                strata,
                peer,
                "{} on {}: strata {strata}, {name} {peer}",
                org.user(*u).name,
                org.record(*r).key
            );
            allowed += usize::from(strata);
        }
        println!(
            "differential gate: {count} read decisions ({allowed} allow) identical in Strata and {name}"
        );
    };
    gate("Casbin (scopes)", n, &|i| {
        enforce(&scopes, casbin_requests[i])
    });
    gate("Casbin (ACL rows)", ACL_DECISIONS, &|i| {
        enforce(&acl, casbin_requests[i])
    });
    #[cfg(feature = "cached")]
    let cached = {
        use casbin::{CachedApi, CachedEnforcer, DefaultCache};
        let mut cached = rt.block_on(async {
            let model = DefaultModel::from_str(CASBIN_SCOPES)
                .await
                .unwrap_or_else(|e| panic!("casbin model: {e}"));
            CachedEnforcer::new(model, StringAdapter::new(rows.scopes()))
                .await
                .unwrap_or_else(|e| panic!("casbin policy: {e}"))
        });
        cached.set_cache(Box::new(DefaultCache::new(n)));
        gate("Casbin CachedEnforcer (scopes)", n, &|i| {
            let [user, unit, record] = casbin_requests[i];
            cached
                .enforce((user, unit, record, "read"))
                .unwrap_or_else(|err| panic!("casbin: {err}"))
        });
        cached
    };
    #[cfg(feature = "cached")]
    println!(
        "note: built with casbin's `cached` feature: its role manager caches links for every Casbin row"
    );
    let (unit_rows, record_rows, org_rows) =
        (rows.units.len(), rows.records.len(), rows.everywhere.len());
    println!(
        "Casbin policy rows: scopes {} (1 p; g: {unit_rows} unit, {record_rows} record; {org_rows} g2), loaded in {scopes_ms:.0} ms; \
         ACL {} (1 + {record_rows} record p; {unit_rows} g; {org_rows} g2), loaded in {acl_ms:.0} ms",
        1 + unit_rows + record_rows + org_rows,
        1 + unit_rows + record_rows + org_rows,
    );
    let strata = time(n, &mut |i| {
        org.check(pairs[i].0, Privilege::Read, pairs[i].1)
    });
    let cedar = time(n, &mut |i| {
        authorizer
            .is_authorized(&requests[i], &policies, &entities)
            .decision()
            == cedar_policy::Decision::Allow
    });
    let casbin = time(n, &mut |i| enforce(&scopes, casbin_requests[i]));
    let casbin_acl = time(ACL_DECISIONS, &mut |i| enforce(&acl, casbin_requests[i]));
    println!();
    println!(
        "| engine | decisions per round | ns per decision (median of 5 rounds) | Strata faster by |"
    );
    println!("|---|---:|---:|---:|");
    println!("| Strata `check` | {n} | {strata:.0} | |");
    println!(
        "| Cedar `is_authorized` (request prebuilt) | {n} | {cedar:.0} | {:.1}x |",
        cedar / strata
    );
    println!(
        "| Casbin `Enforcer::enforce` (scopes as domains, 1 p row) | {n} | {casbin:.0} | {:.1}x |",
        casbin / strata
    );
    println!(
        "| Casbin `Enforcer::enforce` (ACL: {} p rows; first {ACL_DECISIONS} pairs only) | {ACL_DECISIONS} | {casbin_acl:.0} | {:.0}x |",
        1 + rows.records.len(),
        casbin_acl / strata
    );
    #[cfg(feature = "cached")]
    {
        let warm = time(n, &mut |i| {
            let [user, unit, record] = casbin_requests[i];
            cached
                .enforce((user, unit, record, "read"))
                .unwrap_or_else(|err| panic!("casbin: {err}"))
        });
        println!(
            "| Casbin `CachedEnforcer::enforce` (scopes; warm: every pair cached by the gate) | {n} | {warm:.0} | {:.1}x |",
            warm / strata
        );
    }
}
