//! `GET /api/v1/orgs/{org}/export` (D66): the whole model as YAML for the root key and System
//! Administrators only; rebuilt from the answer, the organisation has the digest the server
//! reports; `?records=true` adds the records; unknown query parameters are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared fixture")]
mod common;

use std::sync::Arc;

use serde_json::json;
use sha2::Digest as _;
use strata_store::{MemoryStore, Store};

use common::call;

/// A GET answered as text: status, content type, body.
async fn get_text(app: &axum::Router, key: &str, path: &str) -> (u16, String, String) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method("GET")
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, kind, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn only_system_administrators_export_and_the_export_rebuilds_the_digest() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new().unwrap());
    let app = common::router_with_org(&store).await;
    let setup = json!([
        { "op": "add_business_unit", "name": "Root" },
        { "op": "add_business_unit", "name": "Ventes: Île-de-France", "parent": "Root" },
        { "op": "add_table", "name": "account", "columns": [{ "name": "name" }, { "name": "secret", "secured": true }] },
        { "op": "add_role", "name": "System Administrator", "system_administrator": true },
        { "op": "add_role", "name": "Reader", "misc": ["prvCheckAccessOfOthers"],
          "privileges": { "account": { "read": "organization" }, "systemuser": { "read": "organization" } } },
        { "op": "add_user", "name": "admin" },
        { "op": "add_user", "name": "reader", "business_unit": "Ventes: Île-de-France" },
        { "op": "assign_role", "principal": "admin", "role": "System Administrator" },
        { "op": "assign_role", "principal": "reader", "role": "Reader" },
        { "op": "insert_record", "id": "a1", "table": "account", "owner": "reader",
          "fields": { "name": "yes", "secret": "007" } },
        { "op": "set_audit", "enabled": true, "tables": ["account"] },
        { "op": "deprecate_role", "role": "Reader", "message": "old" }
    ]);
    let (status, body) = call(
        &app,
        "root",
        "POST",
        "/api/v1/orgs/o/operations",
        Some(setup),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let key = |user: &'static str| {
        let app = app.clone();
        async move {
            call(
                &app,
                "root",
                "POST",
                "/api/v1/orgs/o/api-keys",
                Some(json!({ "user": user })),
            )
            .await
            .1["key"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (admin, reader) = (key("admin").await, key("reader").await);

    let (status, kind, text) = get_text(&app, &admin, "/api/v1/orgs/o/export?records=true").await;
    assert_eq!(status, 200, "{text}");
    assert!(kind.starts_with("application/yaml"), "{kind}");
    assert!(text.contains("name: \"Ventes: Île-de-France\""), "{text}");
    assert!(text.contains("secret: \"007\""), "{text}");
    let scenario = strata_scenario::load_str(&text).unwrap();
    let rebuilt = strata_scenario::engine_target::build(&scenario).unwrap();
    let (_, digest) = call(&app, &admin, "GET", "/api/v1/orgs/o/digest", None).await;
    assert_eq!(
        digest["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(rebuilt.canonical_dump().as_bytes()))
    );
    // The root key too; the model alone leaves the records out.
    let (status, _, model) = get_text(&app, "root", "/api/v1/orgs/o/export").await;
    assert_eq!(status, 200);
    assert!(!model.contains("records:") && text.contains("records:"));

    let (status, _, body) = get_text(&app, &reader, "/api/v1/orgs/o/export").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("forbidden") || body.contains("denied"),
        "{body}"
    );
    let (status, _, _) = get_text(&app, &admin, "/api/v1/orgs/o/export?record=true").await;
    assert_eq!(status, 400);
    let (status, _, _) = get_text(&app, "root", "/api/v1/orgs/nope/export").await;
    assert_eq!(status, 404);
}
