//! User access auditing (D12): with `user_access` on, a user's first request in each interval is
//! recorded once, in the chained audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use strata_server::{ServerConfig, router};
use strata_store::{AuditQuery, MemoryStore, Store, Verification};
use tower::ServiceExt;

async fn call(
    app: &axum::Router,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[tokio::test]
async fn first_access_in_an_interval_is_audited_once() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new().unwrap());
    let app = router(&ServerConfig {
        store: Arc::clone(&store),
        root_key: Some("root".into()),
    })
    .unwrap();
    call(
        &app,
        "root",
        "POST",
        "/api/v1/orgs",
        Some(json!({ "name": "o" })),
    )
    .await;
    let setup = json!([
        { "op": "add_business_unit", "name": "Root" },
        { "op": "add_user", "name": "alice" },
        { "op": "set_audit", "enabled": true, "user_access": true }
    ]);
    call(
        &app,
        "root",
        "POST",
        "/api/v1/orgs/o/operations",
        Some(setup),
    )
    .await;
    let key = call(
        &app,
        "root",
        "POST",
        "/api/v1/orgs/o/api-keys",
        Some(json!({ "user": "alice" })),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        call(&app, &key, "GET", "/api/v1/orgs/o/revision", None).await;
        call(&app, &key, "GET", "/api/v1/orgs/o/records/alice", None).await;
    }
    let query = AuditQuery {
        record: Some("alice".into()),
        limit: 100,
        ..AuditQuery::default()
    };
    let mut entries = Vec::new();
    for _ in 0..100 {
        entries = store.audit("o", &query).unwrap();
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let access: Vec<_> = entries
        .iter()
        .filter(|e| e.record.action == "user_access")
        .collect();
    assert_eq!(access.len(), 1, "{entries:?}");
    assert_eq!(access[0].record.user.as_deref(), Some("alice"));
    assert!(matches!(
        store.verify_audit("o").unwrap(),
        Verification::Intact { .. }
    ));
}
