//! The OpenAPI document against the router and the real answers.
//!
//! - The route list is `strata_server::native_routes()`: the table the router is built from
//!   (`route_table` in lib.rs), so no served route escapes the check; whether a route reads a
//!   body comes from its handler's extractor types, not from the document.
//! - Every route is called on the test organisation (the model of `common`, with apps,
//!   licences, rules and a team added), and every answer — successes and errors — is validated
//!   against the document's schema for that route and status (`jsonschema`, `$ref`s resolved
//!   in the document's components). A route that no request reached fails the test.
//! - Every body a route took validates against its request schema.
//! - Every JSON answer's bytes are its keys in sorted order, compact: what the handlers sent
//!   when they built their answers with `json!`, before they built them from types.
//! - The document is OpenAPI 3.1, and every `$ref` in it resolves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared fixture")]
mod common;

use std::collections::BTreeSet;

use common::{Client, Fixture};
use serde_json::{Value, json};

fn document(f: &Fixture) -> Value {
    f.server
        .client(None)
        .get("/api/v1/openapi.json")
        .expect(200)
}

/// The schema of an operation's answer (`status`, else `4XX`): `None` when not documented.
fn answer_schema(op: &Value, status: u16) -> Option<&Value> {
    let responses = &op["responses"];
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get(format!("{}XX", status / 100)))?;
    response["content"]["application/json"].get("schema")
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push(r.to_owned());
                    }
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_route_of_the_router_is_documented_with_its_schemas() {
    let f = Fixture::new();
    let doc = document(&f);
    let routes = strata_server::native_routes();
    assert!(routes.len() >= 50, "too few routes: {}", routes.len());
    let mut seen = BTreeSet::new();
    for (method, path, reads_body) in &routes {
        assert!(
            seen.insert((method.clone(), path.clone())),
            "{method} {path} is in the table twice"
        );
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path} has no summary"
        );
        // A success answer with a schema (or a 204 without a body).
        let responses = op["responses"].as_object().unwrap();
        let success: Vec<_> = responses
            .iter()
            .filter(|(status, _)| status.starts_with('2'))
            .collect();
        assert!(!success.is_empty(), "{method} {path} has no success answer");
        for (status, response) in success {
            if status != "204" {
                let content = response["content"].as_object().unwrap();
                assert!(
                    content.values().all(|c| c["schema"].is_object()),
                    "{method} {path} answers {status} without a schema"
                );
            }
        }
        // A route that reads a body documents it.
        let body = &op["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(
            body.is_object(),
            *reads_body,
            "{method} {path}: the handler {} a body, the document {} one",
            if *reads_body { "reads" } else { "reads no" },
            if body.is_object() {
                "gives"
            } else {
                "gives no"
            }
        );
        // Every path parameter is documented.
        let documented: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let in_path: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|r| r.split('}').next())
            .collect();
        assert_eq!(documented, in_path, "{method} {path}: path parameters");
        // Authenticated routes say so, and document their error answers.
        if !["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"].contains(&path.as_str()) {
            assert_eq!(op["security"], json!([{"apiKey": []}]), "{method} {path}");
            for status in [400, 401, 403, 404] {
                assert_eq!(
                    answer_schema(op, status),
                    Some(&json!({"$ref": "#/components/schemas/ErrorAnswer"})),
                    "{method} {path}: {status}"
                );
            }
        }
    }
    // Every native path of the document is served (the Web API's are documented by hand).
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path.starts_with("/api/data/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            assert!(
                seen.contains(&(method.clone(), path.clone())),
                "{method} {path} is documented but not served"
            );
        }
    }
}

#[test]
fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let f = Fixture::new();
    let doc = document(&f);
    assert_eq!(doc["openapi"], json!("3.1.0"));
    assert_eq!(doc["info"]["title"], json!("Strata"));
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKey"],
        json!({"type": "http", "scheme": "bearer"})
    );
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100, "too few references: {}", all.len());
    for r in &all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external reference {r}"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    // Every component is a valid JSON Schema (2020-12, OpenAPI 3.1's dialect).
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in schemas.keys() {
        validator(
            &doc,
            &json!({"$ref": format!("#/components/schemas/{name}")}),
        );
    }
    // The error code is one of the stable codes.
    let codes = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
    assert!(
        codes
            .as_array()
            .unwrap()
            .contains(&json!("unauthenticated"))
    );
}

/// A validator of `schema` with the document's components beside it.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
}

/// Sends requests and checks each answer against the document.
struct Checker<'a> {
    f: &'a Fixture,
    doc: Value,
    routes: Vec<(String, String, bool)>,
    /// (method, path template) answered with success.
    succeeded: BTreeSet<(String, String)>,
    checked: usize,
}

impl Checker<'_> {
    /// The route template `path` matches.
    fn template(&self, method: &str, path: &str) -> String {
        let path = path.split('?').next().unwrap();
        let parts: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .filter(|(m, _, _)| m == method)
            .map(|(_, t, _)| t)
            .filter(|t| {
                let ts: Vec<&str> = t.split('/').collect();
                ts.len() == parts.len()
                    && ts
                        .iter()
                        .zip(&parts)
                        .all(|(t, p)| t.starts_with('{') || t == p)
            })
            // The most literal template wins (`/licences/report` before `/licences/{x}`).
            .min_by_key(|t| t.matches('{').count())
            .unwrap_or_else(|| panic!("no route for {method} {path}"))
            .clone()
    }

    /// Sends a request with `key` and validates the answer; returns it.
    fn call(
        &mut self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
        expect: u16,
    ) -> Value {
        let client: Client = self.f.server.client(key);
        let response = match &body {
            Some(b) => client.raw(
                &method.to_uppercase(),
                path,
                &[("Content-Type", "application/json")],
                b.to_string().as_bytes(),
            ),
            None => client.raw(&method.to_uppercase(), path, &[], b""),
        };
        assert_eq!(
            response.status,
            expect,
            "{method} {path}: {}",
            response.brief()
        );
        let template = self.template(method, path);
        let op = &self.doc["paths"][&template][method];
        // A body the route took validates against its request schema.
        if let Some(b) = body.as_ref().filter(|_| response.status < 300) {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{method} {template}: no request schema");
            let errors: Vec<String> = validator(&self.doc, schema)
                .iter_errors(b)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{method} {path}: the body taken does not match {schema}: {errors:?}\n{b}"
            );
        }
        if response.status == 204 {
            assert!(
                op["responses"]["204"].is_object(),
                "{method} {template}: 204"
            );
        } else if let Some(media) = response
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or_default().trim().to_owned())
            .filter(|m| m != "application/json")
        {
            // A file or text answer: its media type is the one documented for its status.
            assert!(
                op["responses"][response.status.to_string()]["content"][&media].is_object(),
                "{method} {template}: answered {media}, not documented"
            );
        } else {
            let value = response.json();
            // The answers were `json!` objects, whose keys serialize sorted and compact: typed
            // answers keep those bytes (their fields are declared in that order).
            assert_eq!(
                response.text(),
                value.to_string(),
                "{method} {path}: the answer's bytes changed order"
            );
            let schema = answer_schema(op, response.status).unwrap_or_else(|| {
                panic!(
                    "{method} {template} answered {} (not in the document): {value}",
                    response.status
                )
            });
            let v = validator(&self.doc, schema);
            let errors: Vec<String> = v
                .iter_errors(&value)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{method} {path} ({}): the answer does not match {schema}: {errors:?}\n{value}",
                response.status
            );
            self.checked += 1;
            if response.status < 300 {
                self.succeeded.insert((method.to_owned(), template));
            }
            return value;
        }
        self.checked += 1;
        if response.status < 300 {
            self.succeeded.insert((method.to_owned(), template));
        }
        Value::Null
    }
}

#[test]
#[allow(clippy::too_many_lines, reason = "one request or more per route")]
fn every_route_answers_as_documented() {
    let f = Fixture::new();
    let doc = document(&f);
    let mut c = Checker {
        f: &f,
        doc,
        routes: strata_server::native_routes(),
        succeeded: BTreeSet::new(),
        checked: 0,
    };
    let k = f.keys.clone();
    let (root, admin, alice, audrey, carol) = (
        Some(common::ROOT),
        Some(k.admin.as_str()),
        Some(k.alice.as_str()),
        Some(k.audrey.as_str()),
        Some(k.carol.as_str()),
    );
    let o = |rest: &str| f.url(rest);

    // What the administrators' answers need: an app with needs, a team holding a role,
    // licences, a rule that carol breaks, a deprecated role.
    c.call(
        root,
        "post",
        &o("/operations"),
        Some(json!([
            {"op": "add_table", "name": "incident"},
            {"op": "add_role", "name": "Desk Role", "misc": ["prvExportToExcel"],
                "privileges": {"incident": {"read": "business_unit", "write": "user"}}},
            {"op": "add_app", "name": "Service", "roles": ["Desk Role"]},
            {"op": "set_app_needs", "app": "Service", "needs": {"incident": {"read": "user"}}},
            {"op": "add_team", "name": "Desk", "business_unit": "Support"},
            {"op": "add_team_member", "team": "Desk", "user": "carol"},
            {"op": "assign_role", "principal": "team:Desk", "role": "Desk Role"},
            {"op": "add_licence", "name": "Professional", "price": 4, "default": "organization",
                "all_misc": true, "all_apps": true},
            {"op": "add_licence", "name": "Basic", "price": 2, "default": "user",
                "tables": {"account": {"read": "organization"}}, "misc": ["prvExportToExcel"]},
            {"op": "set_user_licence", "user": "admin", "licences": ["Professional"]},
            {"op": "set_user_licence", "user": "alice", "licences": ["Professional"]},
            {"op": "set_user_licence", "user": "bob", "licences": ["Basic"]},
            {"op": "set_user_licence", "user": "carol", "licences": ["Basic"]},
            {"op": "set_user_licence", "user": "audrey", "licences": ["Professional"]},
            {"op": "assign_role", "principal": "bob", "role": "Support Rep"},
            {"op": "add_role", "name": "Old Rep", "privileges": {"account": {"read": "user"}}},
            {"op": "deprecate_role", "role": "Old Rep", "message": "use Rep", "successors": ["Rep"]},
        ])),
        200,
    );
    c.call(
        admin,
        "post",
        &o("/rules"),
        Some(json!({"role": "Support Rep", "requires": ["Auditor"]})),
        200,
    );
    c.call(
        admin,
        "post",
        &o("/rules"),
        Some(json!({"role": "Desk Role", "direct_only": true})),
        200,
    );

    // Health, metrics, this document.
    c.call(None, "get", "/healthz", None, 200);
    c.call(None, "get", "/readyz", None, 200);
    c.call(None, "get", "/metrics", None, 200);
    c.call(None, "get", "/api/v1/openapi.json", None, 200);

    // Organisations (root key).
    c.call(
        root,
        "post",
        "/api/v1/orgs",
        Some(json!({"name": "scratch"})),
        201,
    );
    c.call(
        root,
        "post",
        "/api/v1/orgs",
        Some(json!({"name": "scratch"})),
        409,
    );
    c.call(root, "get", "/api/v1/orgs", None, 200);
    c.call(admin, "get", "/api/v1/orgs", None, 403);
    c.call(root, "delete", "/api/v1/orgs/scratch", None, 204);
    c.call(root, "delete", "/api/v1/orgs/scratch", None, 404);

    // The organisation.
    c.call(alice, "get", &o("/revision"), None, 200);
    c.call(admin, "get", &o("/digest"), None, 200);
    c.call(alice, "get", &o("/digest"), None, 403);
    c.call(admin, "get", &o("/model"), None, 200);
    c.call(admin, "get", &o("/export"), None, 200);
    c.call(admin, "get", &o("/export?records=true"), None, 200);
    c.call(alice, "get", &o("/export"), None, 403);

    // Dataverse solution roles: a customizations.xml sent as a JSON string, tried then imported.
    let xml = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/solution/customizations.xml"),
    )
    .unwrap();
    let tried = c.call(
        admin,
        "post",
        &o("/roles/import?dry_run=true&create_tables=true"),
        Some(json!(xml)),
        200,
    );
    assert!(tried["difference"].is_object(), "{tried}");
    c.call(
        admin,
        "post",
        &o("/roles/import?create_tables=true"),
        Some(json!(xml)),
        200,
    );
    c.call(
        admin,
        "post",
        &o("/roles/import"),
        Some(json!("<Role")),
        400,
    );
    c.call(admin, "get", &o("/roles/export"), None, 200);
    // The access review: a workbook, or a zip of CSV files.
    c.call(admin, "get", &o("/review"), None, 200);
    c.call(
        admin,
        "get",
        &o("/review?format=csv&inactive_days=30"),
        None,
        200,
    );
    c.call(alice, "get", &o("/review"), None, 403);
    c.call(admin, "get", &o("/review?format=pdf"), None, 400);
    c.call(
        admin,
        "get",
        &o("/roles/export?role=Service%20Manager"),
        None,
        200,
    );
    c.call(admin, "get", &o("/users/carol/privileges"), None, 200);
    c.call(alice, "get", &o("/users/alice/privileges"), None, 200);
    c.call(
        admin,
        "post",
        &o("/operations"),
        Some(json!({"op": "insert_record", "id": "n1", "table": "account", "owner": "alice"})),
        200,
    );
    c.call(
        admin,
        "post",
        &o("/operations?dry_run=true"),
        Some(json!([
            {"op": "assign_role", "principal": "bob", "role": "Auditor"},
            {"op": "assign_role", "principal": "team:Desk", "role": "Auditor"},
            {"op": "share", "record": "c000", "principal": "alice", "rights": ["read", "write"]},
        ])),
        200,
    );
    c.call(
        admin,
        "post",
        &o("/operations"),
        Some(json!({"op": "no_such_op"})),
        400,
    );

    // Questions.
    let check = json!({"user": "alice", "privilege": "read", "record": "a000"});
    c.call(admin, "post", &o("/check"), Some(check.clone()), 200);
    c.call(admin, "post", &o("/explain"), Some(check), 200);
    c.call(
        admin,
        "post",
        &o("/explain"),
        Some(json!({"user": "carol", "privilege": "write", "record": "a000"})),
        200,
    );
    c.call(
        alice,
        "post",
        &o("/check"),
        Some(json!({"privilege": "create", "table": "account"})),
        200,
    );
    c.call(
        alice,
        "post",
        &o("/check"),
        Some(json!({"privilege": "fly", "record": "a000"})),
        400,
    );
    c.call(alice, "post", &o("/explain"), Some(json!([1])), 400);
    c.call(alice, "get", &o("/records/a000"), None, 200);
    c.call(bob_key(&f), "get", &o("/records/s1"), None, 403);
    c.call(alice, "get", &o("/records/nope"), None, 404);
    c.call(alice, "get", &o("/records/a000/access"), None, 200);
    c.call(
        audrey,
        "get",
        &o("/records/a000/who-has-access?privilege=write"),
        None,
        200,
    );
    c.call(alice, "get", &o("/records/a000/who-has-access"), None, 403);
    let page = c.call(
        alice,
        "get",
        &o("/tables/account/records?limit=2&count=true&select=name,creditlimit"),
        None,
        200,
    );
    assert!(page["next_cursor"].is_string());
    c.call(
        alice,
        "get",
        &o("/tables/account/records?filter=nonsense%20%3D"),
        None,
        400,
    );

    // Apps and columns.
    c.call(alice, "get", &o("/apps"), None, 200);
    c.call(audrey, "get", &o("/apps/Service"), None, 200);
    c.call(alice, "get", &o("/apps/Service"), None, 403);
    c.call(
        audrey,
        "get",
        &o("/apps/Service/access?user=carol"),
        None,
        200,
    );
    c.call(
        audrey,
        "get",
        &o("/apps/Service/access?user=alice"),
        None,
        200,
    );
    c.call(audrey, "get", &o("/apps/Nope/access"), None, 404);
    c.call(
        audrey,
        "get",
        &o("/apps/Service/roles-needed?user=alice"),
        None,
        200,
    );
    c.call(
        audrey,
        "get",
        &o("/tables/account/columns/creditlimit/access"),
        None,
        200,
    );
    c.call(
        audrey,
        "get",
        &o("/tables/account/columns/name/access"),
        None,
        200,
    );
    let column = json!({"user": "bob", "record": "a000", "column": "creditlimit"});
    c.call(
        admin,
        "post",
        &o("/columns/check"),
        Some(column.clone()),
        200,
    );
    c.call(admin, "post", &o("/columns/explain"), Some(column), 200);

    // Audit.
    c.call(audrey, "get", &o("/audit?limit=3"), None, 200);
    c.call(
        audrey,
        "get",
        &o("/audit?order=desc&limit=2&before=1000&table=account&action=create"),
        None,
        200,
    );
    c.call(alice, "get", &o("/audit"), None, 403);
    c.call(audrey, "get", &o("/audit?bogus=1"), None, 400);
    c.call(audrey, "get", &o("/audit/verify"), None, 200);

    // Keys.
    c.call(
        admin,
        "post",
        &o("/api-keys"),
        Some(json!({"user": "bob"})),
        201,
    );
    c.call(
        admin,
        "post",
        &o("/api-keys"),
        Some(json!({"user": "nobody"})),
        404,
    );

    // Licences.
    c.call(alice, "get", &o("/licences"), None, 200);
    c.call(admin, "get", &o("/licences/report"), None, 200);
    c.call(alice, "get", &o("/licences/report"), None, 403);
    c.call(admin, "get", &o("/licences/users/carol"), None, 200);
    c.call(admin, "get", &o("/licences/Basic/exceeds"), None, 200);
    c.call(
        admin,
        "get",
        &o("/licences/Basic/exceeds?role=Rep"),
        None,
        200,
    );
    c.call(admin, "get", &o("/licences/Nope/exceeds"), None, 404);

    // Roles.
    c.call(admin, "get", &o("/roles/Old%20Rep"), None, 200);
    c.call(admin, "get", &o("/roles/Desk%20Role/holders"), None, 200);
    c.call(admin, "get", &o("/roles/Rep/holders"), None, 200);
    c.call(admin, "get", &o("/roles/Rep/assigners"), None, 200);
    c.call(
        admin,
        "get",
        &o("/roles/Rep/compare/Desk%20Role"),
        None,
        200,
    );
    c.call(admin, "get", &o("/users/carol/compare/admin"), None, 200);
    c.call(alice, "get", &o("/users/carol/compare/bob"), None, 403);
    c.call(
        admin,
        "post",
        &o("/roles/Rep/copy"),
        Some(json!({"name": "Rep Copy"})),
        200,
    );
    c.call(
        admin,
        "post",
        &o("/roles/Rep%20Copy/rename"),
        Some(json!({"name": "Rep Two"})),
        200,
    );
    c.call(
        admin,
        "post",
        &o("/roles/Nope/rename"),
        Some(json!({"name": "x"})),
        404,
    );
    c.call(
        admin,
        "put",
        &o("/roles/Rep%20Two/privileges/account/read"),
        Some(json!({"depth": "organization"})),
        200,
    );
    c.call(
        admin,
        "post",
        &o("/roles/Rep%20Two/deprecation"),
        Some(json!({"message": "use Rep", "successors": ["Rep"]})),
        200,
    );
    c.call(
        admin,
        "delete",
        &o("/roles/Rep%20Two/deprecation"),
        None,
        200,
    );
    c.call(
        admin,
        "post",
        &o("/roles/Old%20Rep/replace"),
        Some(json!({"replacement": "Rep"})),
        200,
    );
    c.call(admin, "delete", &o("/roles/Rep"), None, 409);
    c.call(admin, "delete", &o("/roles/Rep%20Two"), None, 200);
    c.call(
        admin,
        "post",
        &o("/tables/account/columns"),
        Some(json!({"columns": [{"name": "phone"}]})),
        200,
    );
    c.call(
        alice,
        "post",
        &o("/tables/account/columns"),
        Some(json!({"columns": [{"name": "fax"}]})),
        403,
    );

    // Role rules.
    c.call(admin, "get", &o("/rules"), None, 200);
    c.call(audrey, "get", &o("/rules/violations"), None, 200);
    c.call(carol, "get", &o("/rules/violations?user=carol"), None, 200);
    c.call(
        admin,
        "delete",
        &o("/rules"),
        Some(json!({"role": "Desk Role", "direct_only": true})),
        200,
    );
    c.call(
        admin,
        "post",
        &o("/rules"),
        Some(json!({"role": "Rep", "excludes": "Support Rep"})),
        200,
    );
    c.call(admin, "get", &o("/rules"), None, 200);
    let report = c.call(audrey, "get", &o("/rules/violations"), None, 200);
    let kinds: BTreeSet<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["kind"].as_str())
        .collect();
    assert_eq!(kinds, BTreeSet::from(["conflict", "missing"]), "{report}");
    c.call(
        admin,
        "delete",
        &o("/rules"),
        Some(json!({"role": "Desk Role", "direct_only": true})),
        404,
    );
    c.call(
        admin,
        "post",
        &o("/rules"),
        Some(json!({"role": "Nope", "direct_only": true})),
        400,
    );

    // AuthZEN.
    let evaluation = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
        "resource": {"type": "account", "id": "a000"}});
    c.call(
        alice,
        "post",
        "/access/v1/evaluation",
        Some(evaluation.clone()),
        200,
    );
    c.call(
        alice,
        "post",
        "/access/v1/evaluation",
        Some(
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
            "resource": {"type": "account", "id": "zz"}}),
        ),
        200,
    );
    c.call(
        alice,
        "post",
        "/access/v1/evaluations",
        Some(
            json!({"subject": {"type": "user", "id": "alice"}, "evaluations": [
                {"action": {"name": "read"}, "resource": {"type": "account", "id": "a000"}},
                {"action": {"name": "write"}, "resource": {"type": "account", "id": "c000"}},
            ]}),
        ),
        200,
    );
    c.call(
        alice,
        "post",
        "/access/v1/search/resource",
        Some(
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
            "resource": {"type": "account"}, "page": {"limit": 2}}),
        ),
        200,
    );
    c.call(alice, "post", "/access/v1/evaluation", Some(json!({})), 400);

    // A URI over the limit, before routing.
    let long = format!("/healthz?x={}", "a".repeat(17 * 1024));
    c.call(None, "get", &long, None, 414);
    let long = format!("{}?user={}", o("/revision"), "a".repeat(17 * 1024));
    c.call(alice, "get", &long, None, 414);

    // Without credentials, every authenticated route answers 401 as documented.
    for (method, path, _) in strata_server::native_routes() {
        if ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"].contains(&path.as_str()) {
            continue;
        }
        let concrete = path
            .replace("{org}", &f.org)
            .replace("{user}", "alice")
            .replace("{other}", "bob")
            .replace("{role}", "Rep")
            .replace("{app}", "Service")
            .replace("{table}", "account")
            .replace("{column}", "name")
            .replace("{privilege}", "read")
            .replace("{licence}", "Basic")
            .replace("{id}", "a000");
        let body =
            (method == "post" || method == "put" || path.ends_with("/rules")).then(|| json!({}));
        c.call(None, &method, &concrete, body, 401);
    }

    // Every route was answered with success at least once.
    let missing: Vec<_> = c
        .routes
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .filter(|r| !c.succeeded.contains(r))
        .collect();
    assert!(missing.is_empty(), "routes never answered: {missing:?}");
    assert!(c.checked > 130, "{} answers checked", c.checked);
}

fn bob_key(f: &Fixture) -> Option<&str> {
    Some(f.keys.bob.as_str())
}

/// The checks catch a wrong schema: an answer with a field the schema lacks, or missing a
/// field it requires, does not validate.
#[test]
fn a_wrong_answer_does_not_validate() {
    let f = Fixture::new();
    let doc = document(&f);
    let schema = answer_schema(&doc["paths"]["/api/v1/orgs/{org}/revision"]["get"], 200)
        .unwrap()
        .clone();
    let v = validator(&doc, &schema);
    assert!(v.is_valid(&json!({"revision": 3})));
    assert!(!v.is_valid(&json!({"revision": 3, "extra": 1})));
    assert!(!v.is_valid(&json!({})));
    assert!(!v.is_valid(&json!({"revision": "3"})));
    let explain = validator(
        &doc,
        answer_schema(&doc["paths"]["/api/v1/orgs/{org}/explain"]["post"], 200).unwrap(),
    );
    let real = f
        .as_(&f.keys.alice)
        .post(
            &f.url("/explain"),
            &json!({"privilege": "read", "record": "a000"}),
        )
        .expect(200);
    assert!(explain.is_valid(&real));
    let mut wrong = real.clone();
    wrong["paths"] = json!([{"kind": 1, "text": "x"}]);
    assert!(!explain.is_valid(&wrong));
    let mut wrong = real;
    wrong.as_object_mut().unwrap().remove("explanation");
    assert!(!explain.is_valid(&wrong));
}
