//! Role packs (`packs/`): each built-in pack parses, applies to an organisation that has none of
//! it, and applying it again changes nothing; the demo is built from them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_engine::Organization;
use strata_scenario::pack::{self, BUILT_IN, plan};

fn base() -> Organization {
    let mut org = Organization::new();
    let ops: Vec<strata_ops::Operation> = serde_json::from_value(serde_json::json!([
        { "op": "add_business_unit", "name": "Root" },
        { "op": "add_role", "name": "System Administrator", "system_administrator": true },
        { "op": "add_user", "name": "admin" },
        { "op": "assign_role", "principal": "admin", "role": "System Administrator" }
    ]))
    .unwrap();
    strata_ops::apply_all(&mut org, &ops).unwrap();
    org
}

#[test]
fn every_built_in_pack_parses() {
    for (name, text) in BUILT_IN {
        let p =
            pack::parse(text).unwrap_or_else(|e| panic!("{name}: line {}: {}", e.line, e.message));
        assert!(!p.name.is_empty(), "{name}");
    }
}

#[test]
fn packs_apply_in_order_and_again_change_nothing() {
    let mut org = base();
    for (name, text) in BUILT_IN {
        let p = pack::parse(text).unwrap();
        let first = plan(&org, &p);
        assert!(
            first.counts()[0] > 0,
            "{name} creates something: {:?}",
            first.lines
        );
        strata_ops::apply_all(&mut org, &first.ops)
            .unwrap_or_else(|(i, e)| panic!("{name}: operation {i}: {}", e.message));
        let before = org.canonical_dump();
        let second = plan(&org, &p);
        assert!(second.ops.is_empty(), "{name} again: {:?}", second.ops);
        assert_eq!(
            second.counts()[0] + second.counts()[1],
            0,
            "{name}: {:?}",
            second.lines
        );
        assert_eq!(org.canonical_dump(), before);
    }
    // Work 365's rules keep the CRM roles this organisation has: Basic User and Customer
    // Service Representative (the workspace pack), not Sales Representative.
    let w365 = org.role_id("Work 365 Sales").unwrap();
    let basic = org.role_id("Basic User").unwrap();
    assert!(org.role_rules().iter().any(|r| matches!(r,
        strata_engine::RoleRule::Requires { role, any_of } if *role == w365 && any_of.contains(&basic) && any_of.len() == 2)));
    let legacy = org.role_id("Work365 User (Deprecated)").unwrap();
    assert!(org.role(legacy).deprecation.is_some());
    let secrets = org.profile_id("Omnichannel Channel Secrets").unwrap();
    assert_eq!(org.profile(secrets).permissions.len(), 21);
    assert_eq!(org.licences().len(), 5);
}

#[test]
fn a_pack_alone_skips_what_names_missing_roles_and_tables() {
    let org = base();
    let p = pack::parse(pack::built_in("work365").unwrap()).unwrap();
    let planned = plan(&org, &p);
    let skipped: Vec<_> = planned
        .lines
        .iter()
        .filter(|l| l.action == "skip")
        .collect();
    assert_eq!(skipped.len(), 6, "the six prerequisite rules: {skipped:?}");
    assert!(
        skipped
            .iter()
            .all(|l| l.kind == "rule" && l.detail.contains("not a role"))
    );
    let mut org = org;
    strata_ops::apply_all(&mut org, &planned.ops).unwrap();
    let licences = pack::parse(pack::built_in("licences").unwrap()).unwrap();
    let planned = plan(&org, &licences);
    let basic = planned.lines.iter().find(|l| l.name == "Basic").unwrap();
    assert!(
        basic.detail.contains("left out") && basic.detail.contains("msdyn_presence"),
        "{basic:?}"
    );
    strata_ops::apply_all(&mut org, &planned.ops).unwrap();
    assert!(plan(&org, &licences).ops.is_empty());
}

#[test]
fn a_changed_role_is_updated_in_place() {
    let mut org = base();
    let p = pack::parse(pack::built_in("customer-service-workspace").unwrap()).unwrap();
    let first = plan(&org, &p);
    strata_ops::apply_all(&mut org, &first.ops).unwrap();
    let csr = org.role_id("Customer Service Representative").unwrap();
    let ops: Vec<strata_ops::Operation> = serde_json::from_value(serde_json::json!([
        { "op": "set_role_privilege", "role": "Customer Service Representative", "table": "incident", "privilege": "delete", "depth": "organization" },
        { "op": "set_app_roles", "app": "Customer Service Workspace", "roles": ["App Profile User"] }
    ]))
    .unwrap();
    strata_ops::apply_all(&mut org, &ops).unwrap();
    let again = plan(&org, &p);
    let updated: Vec<_> = again
        .lines
        .iter()
        .filter(|l| l.action == "update")
        .map(|l| (l.kind, l.name.as_str()))
        .collect();
    assert_eq!(
        updated,
        [
            ("role", "Customer Service Representative"),
            ("app", "Customer Service Workspace")
        ]
    );
    strata_ops::apply_all(&mut org, &again.ops).unwrap();
    assert_eq!(
        org.role_id("Customer Service Representative"),
        Some(csr),
        "in place"
    );
    assert!(plan(&org, &p).ops.is_empty());
}

#[test]
fn a_pack_refuses_units_users_and_undeclared_tables() {
    let bad = [
        ("format: 1\nname: x\nusers: []\n", "users"),
        (
            "format: 1\nname: x\nroles:\n  - name: R\n    privileges: { account: { read: user } }\n",
            "account",
        ),
        (
            "format: 1\nname: x\ntables: [{ name: t }]\nroles:\n  - name: R\n    business_unit: Sales\n",
            "root unit",
        ),
        (
            "format: 1\nname: x\ntables: [{ name: t, columns: [{ name: c, secured: true }] }]\nfield_security:\n  profiles:\n    - { name: P, members: [bob], permissions: [{ table: t, column: c, read: true }] }\n",
            "no members",
        ),
    ];
    for (text, says) in bad {
        let e = pack::parse(text).expect_err(text);
        assert!(e.message.contains(says), "{text}: {}", e.message);
    }
}

#[test]
fn the_demo_holds_every_pack() {
    // The demo is built from the packs: planning any of them on it has nothing to do.
    let org = strata_demo::organization(10).unwrap();
    for (name, text) in BUILT_IN {
        let planned = plan(&org, &pack::parse(text).unwrap());
        assert!(planned.ops.is_empty(), "{name}: {:?}", planned.lines);
        assert_eq!(planned.counts()[3], 0, "{name}: {:?}", planned.lines);
    }
}
