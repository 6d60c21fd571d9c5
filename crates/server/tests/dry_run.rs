//! Dry runs over HTTP (`POST …/operations?dry_run=true`, D54–D56): the answer's changes and
//! access difference, nothing written (revision, digest and audit unchanged), refusals as the
//! real write's, and users the caller may not ask about withheld.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use strata_server::{ServerConfig, router};
use strata_store::{AuditQuery, MemoryStore, Store};
use tower::ServiceExt;

async fn call(
    app: &axum::Router,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const OPS: &str = "/api/v1/orgs/o/operations";
const DRY: &str = "/api/v1/orgs/o/operations?dry_run=true";

struct Org {
    app: axum::Router,
    store: Arc<dyn Store>,
    alice: String,
    auditor: String,
}

async fn org() -> Org {
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
    let own = json!({ "read": "user", "share": "user", "write": "user", "append": "user", "append_to": "user" });
    let setup = json!([
        { "op": "add_business_unit", "name": "Root" },
        { "op": "add_business_unit", "name": "Sales", "parent": "Root" },
        { "op": "add_table", "name": "account" },
        { "op": "add_role", "name": "Own", "privileges": { "account": own } },
        { "op": "add_role", "name": "Auditor", "misc": ["prvCheckAccessOfOthers"],
          "privileges": { "systemuser": { "read": "organization" } } },
        { "op": "add_user", "name": "alice", "business_unit": "Sales" },
        { "op": "add_user", "name": "bob", "business_unit": "Sales" },
        { "op": "add_user", "name": "audra", "business_unit": "Sales" },
        { "op": "set_audit", "enabled": true },
        { "op": "insert_record", "id": "a1", "table": "account", "owner": "alice" },
        { "op": "insert_record", "id": "a2", "table": "account", "owner": "alice" },
        { "op": "insert_record", "id": "b1", "table": "account", "owner": "bob" },
        { "op": "insert_record", "id": "d1", "table": "account", "owner": "audra" },
        { "op": "assign_role", "principal": "alice", "role": "Own" },
        { "op": "assign_role", "principal": "bob", "role": "Own" },
        { "op": "assign_role", "principal": "audra", "role": "Own" },
        { "op": "assign_role", "principal": "audra", "role": "Auditor" }
    ]);
    let (status, body) = call(&app, "root", "POST", OPS, Some(setup)).await;
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
    let (alice, auditor) = (key("alice").await, key("audra").await);
    Org {
        app,
        store,
        alice,
        auditor,
    }
}

/// Revision, digest and the number of audit entries: what must not move.
async fn state(o: &Org) -> (Value, Value, usize) {
    let revision = call(&o.app, "root", "GET", "/api/v1/orgs/o/revision", None)
        .await
        .1;
    let digest = call(&o.app, "root", "GET", "/api/v1/orgs/o/digest", None)
        .await
        .1;
    let audit = o.store.audit("o", &AuditQuery::default()).unwrap().len();
    (revision, digest, audit)
}

fn user<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["difference"]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == name)
        .unwrap_or_else(|| panic!("`{name}` not in {answer}"))
}

#[tokio::test]
async fn role_edit_dry_run_answers_the_difference_and_writes_nothing() {
    let o = org().await;
    let before = state(&o).await;
    let edit = json!({ "op": "set_role_privileges", "role": "Own",
        "privileges": { "account": { "read": "business_unit" } } });
    let (status, answer) = call(&o.app, "root", "POST", DRY, Some(edit.clone())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["dry_run"], true);
    assert_eq!(answer["changes"][0]["op"], "set_role_privileges");
    // alice reads her 2 accounts and gains bob's and audra's; bob gains alice's 2 and audra's.
    let alice = user(&answer, "alice");
    assert_eq!(
        alice["records"],
        json!([{ "table": "account", "gained": 2, "lost": 0 }])
    );
    assert_eq!(user(&answer, "bob")["records"][0]["gained"], 3);
    let read = alice["privileges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["table"] == "account" && p["privilege"] == "read")
        .unwrap();
    assert_eq!(
        (&read["before"], &read["after"]),
        (&json!("user"), &json!("business_unit"))
    );
    assert_eq!(read["gained"][0]["role"], "Own");
    assert_eq!(read["gained"][0]["business_unit"], "Sales");
    // Share and write were dropped by the edit: lost, down to none.
    assert!(
        alice["privileges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["privilege"] == "share" && p["after"] == "none")
    );
    assert_eq!(state(&o).await, before, "a dry run writes nothing");
    // The real write then does what the dry run said.
    let (status, _) = call(&o.app, "root", "POST", OPS, Some(edit)).await;
    assert_eq!(status, 200);
    let (_, list) = call(
        &o.app,
        &o.alice,
        "GET",
        "/api/v1/orgs/o/tables/account/records",
        None,
    )
    .await;
    assert_eq!(list["records"].as_array().map(Vec::len), Some(4), "{list}");
}

#[tokio::test]
async fn failing_dry_run_is_refused_as_the_write_is() {
    let o = org().await;
    let before = state(&o).await;
    let batch = json!([
        { "op": "assign_role", "principal": "bob", "role": "Auditor" },
        { "op": "assign_role", "principal": "bob", "role": "Nobody" }
    ]);
    let (dry_status, dry) = call(&o.app, "root", "POST", DRY, Some(batch.clone())).await;
    assert_eq!(state(&o).await, before);
    let (status, real) = call(&o.app, "root", "POST", OPS, Some(batch)).await;
    assert_eq!((dry_status, &dry), (status, &real));
    assert_eq!(dry["error"]["field"], "/1", "{dry}");
    assert_eq!(state(&o).await, before);
}

#[tokio::test]
async fn a_user_is_authorized_as_for_the_write_and_sees_only_whom_they_may_ask_about() {
    let o = org().await;
    let before = state(&o).await;
    // alice may not hand out roles: refused as the write is.
    let assign = json!({ "op": "assign_role", "principal": "bob", "role": "Auditor" });
    let (status, dry) = call(&o.app, &o.alice, "POST", DRY, Some(assign.clone())).await;
    assert_eq!(state(&o).await, before);
    let (real_status, real) = call(&o.app, &o.alice, "POST", OPS, Some(assign)).await;
    assert_eq!(status, 403, "{dry}");
    assert_eq!((status, &dry), (real_status, &real));
    // alice may share her account with bob; bob's gain is not hers to see (D56).
    let share = json!({ "op": "share", "record": "a1", "principal": "bob", "rights": ["read"] });
    let (status, dry) = call(&o.app, &o.alice, "POST", DRY, Some(share.clone())).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["changes"][0]["changes"][0]["change"], "share_changed");
    assert_eq!(dry["difference"]["users"], json!([]));
    assert_eq!(dry["difference"]["withheld"], 1);
    // The root key sees bob gain one account.
    let as_alice = json!({ "op": "share", "as": "alice", "record": "a1", "principal": "bob", "rights": ["read"] });
    let (_, dry) = call(&o.app, "root", "POST", DRY, Some(as_alice)).await;
    assert_eq!(
        user(&dry, "bob")["records"],
        json!([{ "table": "account", "gained": 1, "lost": 0 }])
    );
    assert_eq!(dry["difference"]["withheld"], 0);
    // A user with prvCheckAccessOfOthers and Read on bob's record sees bob.
    let share = json!({ "op": "share", "record": "a1", "principal": "bob", "rights": ["read"] });
    let (status, _) = call(&o.app, &o.alice, "POST", OPS, Some(share)).await;
    assert_eq!(status, 200);
    let revoke = json!({ "op": "revoke", "record": "a1", "principal": "bob" });
    let (status, dry) = call(&o.app, &o.alice, "POST", DRY, Some(revoke)).await;
    assert_eq!(
        (status, &dry["difference"]["withheld"]),
        (200, &json!(1)),
        "{dry}"
    );
    let remove = json!({ "op": "remove_role", "principal": "bob", "role": "Own" });
    let (_, dry) = call(&o.app, "root", "POST", DRY, Some(remove.clone())).await;
    assert_eq!(
        user(&dry, "bob")["records"],
        json!([{ "table": "account", "gained": 0, "lost": 2 }])
    );
    // audra may not remove roles: refused before any difference is shown.
    let (status, dry) = call(&o.app, &o.auditor, "POST", DRY, Some(remove)).await;
    assert_eq!(status, 403, "{dry}");
    // audra holds prvCheckAccessOfOthers and Read on bob's record: she sees bob.
    let share = json!({ "op": "share", "record": "d1", "principal": "bob", "rights": ["read"] });
    let (status, dry) = call(&o.app, &o.auditor, "POST", DRY, Some(share)).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        user(&dry, "bob")["records"],
        json!([{ "table": "account", "gained": 1, "lost": 0 }])
    );
    assert_eq!(dry["difference"]["withheld"], 0);
}

#[tokio::test]
async fn the_openapi_document_has_the_dry_run() {
    let o = org().await;
    let (_, doc) = call(&o.app, "root", "GET", "/api/v1/openapi.json", None).await;
    let post = &doc["paths"]["/api/v1/orgs/{org}/operations"]["post"];
    assert!(
        post["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "dry_run"),
        "{post}"
    );
    assert!(post["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["difference"].is_object());
}
