//! User access auditing (D12): with `user_access` on, a user's first request in each interval is
//! recorded once, in the chained audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared fixture")]
mod common;

use std::sync::Arc;

use serde_json::{Value, json};
use strata_store::{AuditQuery, MemoryStore, Store, Verification};

/// The body of an answer.
async fn call(
    app: &axum::Router,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Value {
    common::call(app, key, method, path, body).await.1
}

#[tokio::test]
async fn first_access_in_an_interval_is_audited_once() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new().unwrap());
    let app = common::router_with_org(&store).await;
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
