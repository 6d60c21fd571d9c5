//! Role rules over HTTP (docs/semantics.md D45–D47): adding, listing and removing rules, the
//! write path refusing assignments that break them, the violations report, bad rules refused
//! with their codes, and who may do each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

use common::Fixture;
use serde_json::{Value, json};

fn delete_with(c: &common::Client, path: &str, body: &Value) -> common::Response {
    c.raw(
        "DELETE",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn lines(body: &Value) -> Vec<String> {
    body["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["line"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn rules_are_enforced_reported_and_administered_over_http() {
    let f = Fixture::new();
    let (root, admin) = (f.root(), f.as_(&f.keys.admin));
    let (alice, audrey) = (f.as_(&f.keys.alice), f.as_(&f.keys.audrey));
    let rules = f.url("/rules");

    // Adding is role administration: alice holds no Write on `role`.
    let excl = json!({"role": "Rep", "excludes": "Support Rep"});
    alice.post(&rules, &excl).expect_error(403, "denied");
    let r1 = admin.post(&rules, &excl).expect(200)["revision"]
        .as_u64()
        .unwrap();
    assert_eq!(root.revision(&f.org), r1);
    let listed = admin.get(&rules).expect(200);
    assert_eq!(
        listed["rules"],
        json!([{"kind": "excludes", "role": "Rep", "excludes": "Support Rep", "text": "Rep excludes Support Rep"}])
    );
    alice.get(&rules).expect_error(403, "denied");
    assert_eq!(root.get(&rules).expect(200)["rules"], listed["rules"]);

    // The write path refuses an assignment that breaks it, naming the rule, and writes nothing.
    let err = admin
        .post(
            &f.url("/operations"),
            &json!([
                {"op": "assign_role", "principal": "audrey", "role": "Rep"},
                {"op": "assign_role", "principal": "carol", "role": "Rep"}
            ]),
        )
        .expect_error(409, "role_rule_violated");
    assert_eq!(err["field"], json!("/1"));
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("`Rep` excludes `Support Rep`") && message.contains("user `carol`"),
        "{message}"
    );
    assert_eq!(root.revision(&f.org), r1);

    // A rule that existing holders break is added and reported (D46).
    let req = json!({"role": "Rep", "requires": ["Auditor"]});
    admin.post(&rules, &req).expect(200);
    let report = audrey.get(&f.url("/rules/violations")).expect(200);
    assert_eq!(
        lines(&report),
        ["alice: Rep requires Auditor", "bob: Rep requires Auditor"]
    );
    let first = &report["violations"][0];
    assert_eq!(first["kind"], json!("missing"));
    assert_eq!(first["held"], json!({"direct": true, "teams": []}));
    assert_eq!(first["missing"], json!(["Auditor"]));
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("assign `Auditor` first or in the same batch")
    );
    // Others' violations need prvCheckAccessOfOthers; one's own do not.
    alice
        .get(&f.url("/rules/violations"))
        .expect_error(403, "denied");
    let own = alice
        .get(&f.url("/rules/violations?user=alice"))
        .expect(200);
    assert_eq!(lines(&own), ["alice: Rep requires Auditor"]);
    alice
        .get(&f.url("/rules/violations?user=bob"))
        .expect_error(403, "denied");
    assert_eq!(
        lines(&root.get(&f.url("/rules/violations")).expect(200)).len(),
        2
    );

    // Bad rules, with their codes.
    for (body, status, code) in [
        (
            json!({"role": "Auditor", "excludes": "Rep"}),
            400,
            "contradictory_rule",
        ),
        (
            json!({"role": "Auditor", "requires": ["Rep"]}),
            400,
            "rule_cycle",
        ),
        (
            json!({"role": "Admin", "requires": ["Rep"]}),
            400,
            "rule_on_system_administrator",
        ),
        (
            json!({"role": "Nope", "direct_only": true}),
            400,
            "unknown_reference",
        ),
        (
            json!({"role": "Rep", "excludes": "Support Rep"}),
            409,
            "duplicate",
        ),
        (json!({"role": "Rep"}), 400, "bad_rule"),
        (
            json!({"role": "Rep", "needs": ["Auditor"]}),
            400,
            "invalid_body",
        ),
    ] {
        let e = admin.post(&rules, &body).expect_error(status, code);
        assert!(!e["message"].as_str().unwrap().is_empty());
    }

    // Removing: the same rule written either way round; twice is unknown.
    delete_with(&alice, &rules, &req).expect_error(403, "denied");
    delete_with(&admin, &rules, &req).expect(200);
    delete_with(&admin, &rules, &req).expect_error(404, "unknown_rule");
    delete_with(
        &admin,
        &rules,
        &json!({"role": "Support Rep", "excludes": "Rep"}),
    )
    .expect(200);
    assert_eq!(admin.get(&rules).expect(200)["rules"], json!([]));
    assert!(lines(&audrey.get(&f.url("/rules/violations")).expect(200)).is_empty());

    // Every change was audited by the write path.
    let audit = admin.get(&f.url("/audit?user=admin")).expect(200);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.ends_with("role_rule"))
        .collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "add_role_rule").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "remove_role_rule").count(),
        2,
        "{actions:?}"
    );

    // The OpenAPI document describes the routes with their bodies.
    let doc = f
        .server
        .client(None)
        .get("/api/v1/openapi.json")
        .expect(200);
    let path = &doc["paths"]["/api/v1/orgs/{org}/rules"];
    assert_eq!(
        path["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        json!("#/components/schemas/RoleRule")
    );
    assert!(doc["components"]["schemas"]["RuleViolation"]["properties"]["held"].is_object());
    assert!(doc["paths"]["/api/v1/orgs/{org}/rules/violations"]["get"].is_object());
}
