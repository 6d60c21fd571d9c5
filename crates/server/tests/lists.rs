//! `GET …/tables/{table}/records` with filter, order, count and cursor, and its bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared fixture")]
mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Value, json};
use strata_store::{MemoryStore, Store};

/// A request with the root key.
async fn call(
    app: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, body) = common::call(app, "root", method, path, body).await;
    (StatusCode::from_u16(status).unwrap(), body)
}

#[tokio::test]
async fn filtered_ordered_counted_pages() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new().unwrap());
    let app = common::router_with_org(&store).await;
    let mut ops = vec![
        json!({ "op": "add_business_unit", "name": "Root" }),
        json!({ "op": "add_business_unit", "name": "Sales", "parent": "Root" }),
        json!({ "op": "add_table", "name": "account", "columns": [{ "name": "city" }, { "name": "revenue" }, { "name": "secret", "secured": true }] }),
        json!({ "op": "add_role", "name": "Rep", "privileges": { "account": { "read": "business_unit" } } }),
        json!({ "op": "add_user", "name": "rep", "business_unit": "Sales" }),
        json!({ "op": "add_user", "name": "other", "business_unit": "Root" }),
        json!({ "op": "assign_role", "principal": "rep", "role": "Rep" }),
    ];
    let cities = ["Oslo", "Bergen", "Oslo", "Paris"];
    for i in 0..40 {
        let owner = if i % 4 == 3 { "other" } else { "rep" };
        ops.push(json!({ "op": "insert_record", "id": format!("a{i:02}"), "table": "account", "owner": owner,
            "fields": { "city": cities[i % 4], "revenue": i * 10, "secret": i } }));
    }
    let (status, body) = call(
        &app,
        "POST",
        "/api/v1/orgs/o/operations",
        Some(Value::Array(ops)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let base = "/api/v1/orgs/o/tables/account/records?user=rep";
    // Oslo accounts the rep can read, by revenue descending, 4 per page, with the exact count.
    let query = "filter=city%20eq%20'Oslo'%20and%20revenue%20ge%2050&orderby=revenue%20desc&count=true&limit=4";
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("{base}&{query}"),
            Some(c) => format!("{base}&{query}&cursor={c}"),
        };
        let (status, body) = call(&app, "GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["count"], 17, "{body}");
        got.extend(
            body["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let want: Vec<String> = (5..40)
        .rev()
        .filter(|i| i % 4 != 3 && cities[i % 4] == "Oslo")
        .map(|i| format!("a{i:02}"))
        .collect();
    assert_eq!(got, want);
    // A secured column the user cannot read is null: filtering on it reveals nothing.
    let (_, body) = call(
        &app,
        "GET",
        &format!("{base}&filter=secret%20ge%200&count=true"),
        None,
    )
    .await;
    assert_eq!(body["count"], 0, "{body}");
    let (_, body) = call(
        &app,
        "GET",
        &format!("{base}&filter=secret%20eq%20null&count=true"),
        None,
    )
    .await;
    assert_eq!(body["count"], 30, "{body}");
    // Bad input: a clear 4xx naming the problem.
    for (path, code, field) in [
        (
            format!("{base}&filter=town%20eq%20'Oslo'"),
            "unknown_column",
            "filter",
        ),
        (format!("{base}&orderby=town"), "unknown_column", "orderby"),
        (format!("{base}&filter=city%20eq"), "bad_filter", "filter"),
        (
            format!("{base}&filter=revenue%20gt%20true"),
            "bad_value",
            "filter",
        ),
        (
            format!("{base}&orderby=city%20sideways"),
            "bad_order",
            "orderby",
        ),
        (format!("{base}&limit=100000"), "bad_page_size", "limit"),
        (format!("{base}&cursor=zz"), "bad_cursor", "cursor"),
    ] {
        let (status, body) = call(&app, "GET", &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(
            (
                body["error"]["code"].as_str(),
                body["error"]["field"].as_str()
            ),
            (Some(code), Some(field)),
            "{path}: {body}"
        );
    }
    // A cursor from another query is refused.
    let (_, body) = call(&app, "GET", &format!("{base}&{query}"), None).await;
    let c = body["next_cursor"].as_str().unwrap();
    let (status, body) = call(
        &app,
        "GET",
        &format!("{base}&orderby=city&cursor={c}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_cursor")),
        "{body}"
    );
}
