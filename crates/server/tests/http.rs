//! HTTP integration tests: the real server (`strata_server::serve`) on a loopback port over a
//! SQLite file, driven over TCP by a small HTTP/1.1 client (`common`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

use std::collections::BTreeSet;

use common::{
    Client, Db, Fixture, ROOT, SALES_RECORDS, SUPPORT_RECORDS, Server, alice_readable, sales_key,
    setup_org, support_key,
};
use serde_json::{Value, json};

const BAD_KEY: &str = "strata_0000000000000000000000000000000000000000000000";

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_owned()
        })
        .collect()
}

/// Every page of `tables/{table}/records` (with `query`, e.g. `limit=7`): the records in page
/// order, and the number of pages.
fn all_pages(client: &Client, base: &str, query: &str) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{base}?{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = client.get(&url).expect(200);
        pages += 1;
        assert!(pages < 1000, "pagination does not end");
        out.extend(strings(&page["records"]));
        match &page["next_cursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("bad next_cursor {other}"),
        }
    }
    (out, pages)
}

/// Every page of the AuthZEN resource search.
fn all_search_pages(
    client: &Client,
    extra: &[(&str, &str)],
    user: &str,
    action: &str,
    limit: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let mut body = json!({
            "subject": {"type": "user", "id": user},
            "action": {"name": action},
            "resource": {"type": "account"},
            "page": {"limit": limit},
        });
        if let Some(t) = &token {
            body["page"]["next_token"] = json!(t);
        }
        let page = client
            .post_with("/access/v1/search/resource", &body, extra)
            .expect(200);
        let results = page["results"].as_array().unwrap();
        assert!(results.len() <= limit, "page larger than its limit");
        for r in results {
            assert_eq!(r["type"], json!("account"));
            out.push(r["id"].as_str().unwrap().to_owned());
        }
        match page["page"]["next_token"].as_str() {
            Some("") | None => return out,
            Some(t) => token = Some(t.to_owned()),
        }
    }
    panic!("search pagination does not end")
}

fn assert_unique(list: &[String]) -> BTreeSet<String> {
    let unique: BTreeSet<String> = list.iter().cloned().collect();
    assert_eq!(unique.len(), list.len(), "a record appears on two pages");
    unique
}

// ---------------------------------------------------------------------------------------------
// 1. Health, readiness, metrics, OpenAPI
// ---------------------------------------------------------------------------------------------

#[test]
fn health_readiness_metrics_and_openapi_need_no_credentials() {
    let db = Db::new();
    let server = Server::start(&db.path);
    let anon = server.client(None);

    let health = anon.get("/healthz").expect(200);
    assert_eq!(health["status"], json!("ok"));

    let ready = anon.get("/readyz").expect(200);
    assert_eq!(ready["status"], json!("ready"));
    assert_eq!(ready["organizations"], json!(0));

    let metrics = anon.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    let text = metrics.text();
    assert!(text.contains("# TYPE strata_http_requests_total counter"));
    for name in [
        "strata_group_commits_total",
        "strata_group_commit_writes_total",
        "strata_group_commit_operations_total",
        "strata_group_commit_store_microseconds_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} counter\n{name} ")),
            "{name}"
        );
    }
    let count = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("strata_http_requests_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no strata_http_requests_total in {text}"))
    };
    let before = count(&text);
    assert!(before >= 2, "healthz and readyz were counted");
    anon.get("/healthz").expect(200);
    anon.get("/nope").expect_error(404, "unknown_route");
    let after = count(&anon.get("/metrics").text());
    assert!(
        after >= before + 3,
        "requests are counted: {before} → {after}"
    );

    let doc = anon.get("/api/v1/openapi.json");
    assert!(
        doc.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let doc = doc.expect(200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));

    // Bad credentials do not matter on these routes.
    let bad = server.client(Some(BAD_KEY));
    bad.get("/healthz").expect(200);
    bad.get("/readyz").expect(200);
    assert_eq!(bad.get("/metrics").status, 200);
    bad.get("/api/v1/openapi.json").expect(200);

    // Readiness counts organisations.
    server
        .root()
        .post("/api/v1/orgs", &json!({"name": "one"}))
        .expect(201);
    assert_eq!(anon.get("/readyz").expect(200)["organizations"], json!(1));
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// 2. An organisation's lifecycle
// ---------------------------------------------------------------------------------------------

#[test]
fn organisation_lifecycle_as_a_user() {
    let f = Fixture::new();
    let root = f.root();
    let alice = f.as_(&f.keys.alice);
    let bob = f.as_(&f.keys.bob);
    let carol = f.as_(&f.keys.carol);
    let admin = f.as_(&f.keys.admin);
    let audrey = f.as_(&f.keys.audrey);
    let rev0 = alice.revision(&f.org);
    assert_eq!(root.revision(&f.org), rev0);
    assert!(rev0 > 0);

    // --- check: allow and deny ---
    let check = alice
        .post(
            &f.url("/check"),
            &json!({"privilege": "read", "record": "a001"}),
        )
        .expect(200);
    assert_eq!(check, json!({"allowed": true, "revision": rev0}));
    let check = alice
        .post(
            &f.url("/check"),
            &json!({"privilege": "delete", "record": "c001"}),
        )
        .expect(200);
    assert_eq!(check["allowed"], json!(false));
    let check = alice
        .post(
            &f.url("/check"),
            &json!({"privilege": "read", "record": "c001"}),
        )
        .expect(200);
    assert_eq!(check["allowed"], json!(false));
    // A create check against the default owner (the user).
    let check = alice
        .post(
            &f.url("/check"),
            &json!({"privilege": "create", "table": "account"}),
        )
        .expect(200);
    assert_eq!(check["allowed"], json!(true));
    // Asking about oneself by name is allowed; the root key asks about anyone.
    let check = alice
        .post(
            &f.url("/check"),
            &json!({"user": "alice", "privilege": "write", "record": "b1"}),
        )
        .expect(200);
    assert_eq!(check["allowed"], json!(false));
    let check = root
        .post(
            &f.url("/check"),
            &json!({"user": "bob", "privilege": "write", "record": "b1"}),
        )
        .expect(200);
    assert_eq!(check["allowed"], json!(true));
    // The auditor reads other users' records, so may ask about them.
    let check = audrey
        .post(
            &f.url("/check"),
            &json!({"user": "carol", "privilege": "read", "record": "c001"}),
        )
        .expect(200);
    assert_eq!(check["allowed"], json!(true));

    // --- explain: paths with kinds ---
    let ex = alice
        .post(
            &f.url("/explain"),
            &json!({"privilege": "read", "record": "s1"}),
        )
        .expect(200);
    assert_eq!(ex["allowed"], json!(true));
    assert_eq!(ex["user"], json!("alice"));
    assert_eq!(ex["privilege"], json!("read"));
    assert_eq!(ex["table"], json!("account"));
    assert_eq!(ex["record"], json!("s1"));
    assert_eq!(ex["revision"], json!(rev0));
    let kinds: Vec<&str> = ex["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["share"], "{ex}");
    assert!(
        ex["paths"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(ex["explanation"].as_str().is_some_and(|t| !t.is_empty()));
    let ex = alice
        .post(
            &f.url("/explain"),
            &json!({"privilege": "write", "record": "a001"}),
        )
        .expect(200);
    let kinds: Vec<&str> = ex["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"ownership"), "{ex}");
    let ex = admin
        .post(
            &f.url("/explain"),
            &json!({"privilege": "delete", "record": "c001"}),
        )
        .expect(200);
    assert_eq!(ex["paths"][0]["kind"], json!("system_administrator"));
    let ex = alice
        .post(
            &f.url("/explain"),
            &json!({"privilege": "read", "record": "c001"}),
        )
        .expect(200);
    assert_eq!(ex["allowed"], json!(false));
    assert_eq!(ex["paths"], json!([]));
    assert!(ex["explanation"].as_str().is_some_and(|t| !t.is_empty()));

    // --- records/{id}: column security ---
    let rec = alice.get(&f.url("/records/a001")).expect(200);
    assert_eq!(rec["id"], json!("a001"));
    assert_eq!(rec["table"], json!("account"));
    assert_eq!(rec["owner"], json!("alice"));
    assert_eq!(rec["business_unit"], json!("Sales"));
    assert_eq!(rec["state"], json!("active"));
    assert_eq!(rec["revision"], json!(rev0));
    assert_eq!(rec["fields"]["name"], json!("Contoso a001"));
    assert_eq!(
        rec["fields"]["creditlimit"],
        Value::Null,
        "a secured column without a profile reads null: {rec}"
    );
    assert!(
        rec["fields"]
            .as_object()
            .unwrap()
            .contains_key("creditlimit")
    );
    let rec = bob.get(&f.url("/records/a001")).expect(200);
    assert_eq!(rec["fields"]["creditlimit"], json!(1001));
    let rec = admin.get(&f.url("/records/a001")).expect(200);
    assert_eq!(rec["fields"]["creditlimit"], json!(1001));
    let rec = root.get(&f.url("/records/a001?user=alice")).expect(200);
    assert_eq!(rec["fields"]["creditlimit"], Value::Null);
    carol
        .get(&f.url("/records/a001"))
        .expect_error(403, "denied");

    // --- records/{id}/access: rights and AccessRights bits ---
    let acc = alice.get(&f.url("/records/a001/access")).expect(200);
    assert_eq!(acc["user"], json!("alice"));
    assert_eq!(acc["record"], json!("a001"));
    assert_eq!(
        strings(&acc["rights"]),
        vec![
            "read",
            "write",
            "append",
            "append_to",
            "delete",
            "share",
            "assign"
        ]
    );
    assert_eq!(acc["access_rights"], json!(851_991));
    assert_eq!(
        acc["AccessRights"],
        json!(
            "ReadAccess, WriteAccess, AppendAccess, AppendToAccess, DeleteAccess, ShareAccess, AssignAccess"
        )
    );
    let acc = bob.get(&f.url("/records/a001/access")).expect(200);
    assert_eq!(strings(&acc["rights"]), vec!["read"]);
    assert_eq!(acc["access_rights"], json!(1));
    assert_eq!(acc["AccessRights"], json!("ReadAccess"));
    let acc = alice.get(&f.url("/records/c001/access")).expect(200);
    assert_eq!(acc["rights"], json!([]));
    assert_eq!(acc["access_rights"], json!(0));
    assert_eq!(acc["AccessRights"], json!("None"));
    let acc = alice.get(&f.url("/records/s1/access")).expect(200);
    assert_eq!(acc["access_rights"], json!(1));

    // --- who-has-access: a question about others' access (D27) ---
    alice
        .get(&f.url("/records/a001/who-has-access"))
        .expect_error(403, "denied");
    let audrey = f.as_(&f.keys.audrey);
    let who = audrey
        .get(&f.url("/records/a001/who-has-access"))
        .expect(200);
    assert_eq!(who["privilege"], json!("read"));
    assert_eq!(who["record"], json!("a001"));
    assert_eq!(
        strings(&who["users"]).into_iter().collect::<BTreeSet<_>>(),
        set(&["admin", "alice", "bob", "audrey"])
    );
    let who = audrey
        .get(&f.url("/records/a001/who-has-access?privilege=delete"))
        .expect(200);
    assert_eq!(
        strings(&who["users"]).into_iter().collect::<BTreeSet<_>>(),
        set(&["admin", "alice"])
    );
    let who = f
        .root()
        .get(&f.url("/records/s1/who-has-access"))
        .expect(200);
    assert_eq!(
        strings(&who["users"]).into_iter().collect::<BTreeSet<_>>(),
        set(&["admin", "alice", "carol", "audrey"])
    );

    // --- tables/{table}/records: cursor pages, never truncated ---
    let base = f.url("/tables/account/records");
    let expected = alice_readable();
    let first = alice.get(&base).expect(200);
    assert_eq!(first["table"], json!("account"));
    assert_eq!(first["records"].as_array().unwrap().len(), 100);
    assert!(first["next_cursor"].is_string());
    assert_eq!(first["revision"], json!(rev0));
    for query in ["", "limit=7", "limit=151", "limit=152", "limit=5000"] {
        let (list, pages) = all_pages(&alice, &base, query);
        assert_eq!(assert_unique(&list), expected, "query `{query}`");
        assert!(pages >= 1);
        if query == "limit=7" {
            assert_eq!(pages, expected.len().div_ceil(7));
        }
    }
    let (carols, _) = all_pages(&carol, &base, "limit=9");
    let mut carol_expected: BTreeSet<String> = (0..SUPPORT_RECORDS).map(support_key).collect();
    carol_expected.insert("s1".to_owned());
    assert_eq!(assert_unique(&carols), carol_expected);
    let (all, _) = all_pages(&admin, &base, "limit=64");
    assert_eq!(all.len(), SALES_RECORDS + SUPPORT_RECORDS + 2);
    // The root key lists for a named user.
    let (as_alice, _) = all_pages(&root, &base, "user=alice&limit=50");
    assert_eq!(assert_unique(&as_alice), expected);

    // `select` adds each record's columns as its reader sees them: alice may not read the
    // secured `creditlimit` (null), bob (in the profile) may.
    let rows = |c: &Client| {
        let page = c
            .get(&format!("{base}?limit=3&select=name,creditlimit"))
            .expect(200);
        let keys = page["records"].clone();
        let rows = page["rows"].as_array().unwrap().clone();
        assert_eq!(
            rows.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(),
            keys.as_array().unwrap().clone()
        );
        rows
    };
    let alice_rows = rows(&alice);
    assert_eq!(alice_rows.len(), 3);
    assert!(alice_rows[0]["fields"]["name"].is_string());
    assert_eq!(alice_rows[0]["fields"]["creditlimit"], Value::Null);
    assert!(rows(&bob)[0]["fields"]["creditlimit"].is_number());
    alice
        .get(&format!("{base}?select=name,nope"))
        .expect_error(400, "unknown_column");
    assert!(
        alice
            .get(&format!("{base}?limit=2"))
            .expect(200)
            .get("rows")
            .is_none()
    );

    // --- apps ---
    let app = alice.get(&f.url("/apps/Sales%20Hub/access")).expect(200);
    assert_eq!(app["app"], json!("Sales Hub"));
    assert_eq!(app["user"], json!("alice"));
    assert_eq!(app["allowed"], json!(true));
    assert_eq!(app["reason"], json!("role `Rep`"));
    let app = carol.get(&f.url("/apps/Sales%20Hub/access")).expect(200);
    assert_eq!(app["allowed"], json!(false));
    assert_eq!(
        app["reason"],
        json!(
            "no role of the user, directly or through a team, is associated with app `Sales Hub`; its roles: `Rep`"
        )
    );
    assert_eq!(app["reasons"][0]["code"], json!("no_associated_role"));
    assert_eq!(app["reasons"][0]["roles"], json!(["Rep"]));
    let app = admin.get(&f.url("/apps/Sales%20Hub/access")).expect(200);
    assert_eq!(app["reason"], json!("system_administrator"));
    let app = admin
        .get(&f.url("/apps/Sales%20Hub/access?user=carol"))
        .expect(200);
    assert_eq!(app["user"], json!("carol"));
    assert_eq!(app["allowed"], json!(false));
    alice
        .get(&f.url("/apps/Nope/access"))
        .expect_error(404, "not_found");

    // --- writes as the key's user, `as` absent ---
    let ops = f.url("/operations");
    let written = alice
        .post(
            &ops,
            &json!({"op": "create", "table": "account", "id": "n1", "fields": {"name": "New"}}),
        )
        .expect(200);
    let rev1 = written["revision"].as_u64().unwrap();
    assert!(rev1 > rev0);
    assert_eq!(written["changes"].as_array().map(Vec::len), Some(1));
    assert_eq!(alice.revision(&f.org), rev1);
    let rec = alice.get(&f.url("/records/n1")).expect(200);
    assert_eq!(rec["owner"], json!("alice"), "the key's user acted");
    assert_eq!(rec["business_unit"], json!("Sales"));
    assert_eq!(rec["fields"]["name"], json!("New"));
    assert_eq!(rec["revision"], json!(rev1));

    let rev2 = alice.write(
        &f.org,
        &json!([{"op": "update", "record": "n1", "fields": {"name": "Renamed"}}]),
    );
    assert!(rev2 > rev1);
    // `as` may repeat the key's user.
    let rev3 = alice.write(
        &f.org,
        &json!({"op": "update", "as": "alice", "record": "n1", "fields": {"name": "Again"}}),
    );
    assert!(rev3 > rev2);

    // `as` naming another user is refused, and changes nothing.
    let err = alice
        .post(
            &ops,
            &json!({"op": "update", "as": "bob", "record": "n1", "fields": {"name": "Bob's"}}),
        )
        .expect_error(403, "forbidden");
    assert_eq!(err["field"], json!("/as"));
    assert_eq!(root.revision(&f.org), rev3);

    // A refused action: 403 `denied`, nothing changes.
    let err = alice
        .post(&ops, &json!({"op": "delete", "record": "c001"}))
        .expect_error(403, "denied");
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(root.revision(&f.org), rev3);
    carol.get(&f.url("/records/c001")).expect(200);
    // A batch whose second action is refused: nothing of it is written.
    let err = alice
        .post(
            &ops,
            &json!([
                {"op": "update", "record": "n1", "fields": {"name": "Half"}},
                {"op": "update", "record": "c002", "fields": {"name": "Not mine"}},
            ]),
        )
        .expect_error(403, "denied");
    assert_eq!(err["field"], json!("/1"));
    assert_eq!(root.revision(&f.org), rev3);
    let rec = alice.get(&f.url("/records/n1")).expect(200);
    assert_eq!(rec["fields"]["name"], json!("Again"));
    let rec = carol.get(&f.url("/records/c002")).expect(200);
    assert_eq!(rec["fields"]["name"], json!("Contoso c002"));
    // Writing a secured column without create permission is refused.
    alice
        .post(
            &ops,
            &json!({"op": "create", "table": "account", "id": "n2", "fields": {"creditlimit": 1}}),
        )
        .expect_error(403, "denied");
    alice
        .get(&f.url("/records/n2"))
        .expect_error(404, "not_found");
    assert_eq!(root.revision(&f.org), rev3);

    // An invalid action: 400, nothing changes.
    let err = alice
        .post(
            &ops,
            &json!({"op": "update", "record": "nope", "fields": {"name": "x"}}),
        )
        .expect_error(400, "unknown_reference");
    assert!(err["message"].as_str().unwrap().contains("nope"));
    assert_eq!(root.revision(&f.org), rev3);

    // Delete.
    let rev4 = alice.write(&f.org, &json!({"op": "delete", "record": "n1"}));
    assert!(rev4 > rev3);
    alice
        .get(&f.url("/records/n1"))
        .expect_error(404, "not_found");
    let (list, _) = all_pages(&alice, &base, "limit=50");
    assert_eq!(assert_unique(&list), expected, "the deleted record is gone");

    // --- min_revision reads ---
    let check = alice
        .post(
            &f.url("/check"),
            &json!({"privilege": "read", "record": "a001", "min_revision": rev4}),
        )
        .expect(200);
    assert_eq!(check["revision"], json!(rev4));
    let rec = alice
        .get(&f.url(&format!("/records/a001?min_revision={rev1}")))
        .expect(200);
    assert_eq!(rec["revision"], json!(rev4));
    let page = alice
        .get(&f.url(&format!(
            "/tables/account/records?min_revision={rev4}&limit=1"
        )))
        .expect(200);
    assert_eq!(page["revision"], json!(rev4));

    // --- audit ---
    let audit = audrey.get(&f.url("/audit?record=n1")).expect(200);
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["create", "update", "update", "delete"],
        "{audit}"
    );
    let mut last_seq = 0;
    for (e, rev) in entries.iter().zip([rev1, rev2, rev3, rev4]) {
        assert_eq!(e["record"], json!("n1"));
        assert_eq!(e["table"], json!("account"));
        assert_eq!(e["user"], json!("alice"));
        assert_eq!(e["revision"], json!(rev));
        assert!(e["hash"].as_str().is_some_and(|h| h.len() >= 32));
        let seq = e["seq"].as_u64().unwrap();
        assert!(seq > last_seq);
        last_seq = seq;
    }
    assert_eq!(entries[1]["detail"]["name"]["old"], json!("New"));
    assert_eq!(entries[1]["detail"]["name"]["new"], json!("Renamed"));
    assert_eq!(audit["next_after"], Value::Null);
    // Paging through the same entries.
    let mut after = 0;
    let mut paged = Vec::new();
    for _ in 0..10 {
        let page = audrey
            .get(&f.url(&format!("/audit?record=n1&limit=1&after={after}")))
            .expect(200);
        paged.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_after"].as_u64() {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(&paged, entries);
    // Newest first, paged with `before`, and back with `after`: the same entries reversed.
    let newest = audrey
        .get(&f.url("/audit?record=n1&order=desc"))
        .expect(200);
    let mut reversed = entries.clone();
    reversed.reverse();
    assert_eq!(newest["entries"].as_array().unwrap(), &reversed);
    assert_eq!(newest["next_before"], Value::Null);
    let mut before: Option<u64> = None;
    let mut paged = Vec::new();
    let mut pages = Vec::new();
    for _ in 0..10 {
        let cursor = before.map(|b| format!("&before={b}")).unwrap_or_default();
        let page = audrey
            .get(&f.url(&format!("/audit?record=n1&order=desc&limit=3{cursor}")))
            .expect(200);
        paged.extend(page["entries"].as_array().unwrap().iter().cloned());
        pages.push(page.clone());
        match page["next_before"].as_u64() {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(paged, reversed);
    assert_eq!(pages.len(), 2);
    // From the second page back to the first: its `next_after`, newest first.
    let back = pages[1]["next_after"].as_u64().unwrap();
    let first_again = audrey
        .get(&f.url(&format!("/audit?record=n1&order=desc&limit=3&after={back}")))
        .expect(200);
    assert_eq!(first_again["entries"], pages[0]["entries"]);
    // By table and action.
    let by_table = audrey
        .get(&f.url("/audit?table=account&action=update&limit=5000"))
        .expect(200);
    let by_table = by_table["entries"].as_array().unwrap();
    assert!(!by_table.is_empty());
    assert!(
        by_table
            .iter()
            .all(|e| e["table"] == json!("account") && e["action"] == json!("update"))
    );
    audrey
        .get(&f.url("/audit?order=sideways"))
        .expect_error(400, "bad_query");
    // The root key reads the audit too; filters by user.
    let by_alice = root.get(&f.url("/audit?user=alice&limit=5000")).expect(200);
    assert!(
        by_alice["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["user"] == json!("alice"))
    );
    assert_eq!(by_alice["entries"].as_array().unwrap().len(), 4);

    let verify = audrey.get(&f.url("/audit/verify")).expect(200);
    assert_eq!(verify["intact"], json!(true));
    assert!(verify["entries"].as_u64().unwrap() > 4);
    let verify_root = root.get(&f.url("/audit/verify")).expect(200);
    assert_eq!(verify, verify_root);

    // The organisation listing shows the revision.
    let orgs = root.get("/api/v1/orgs").expect(200);
    assert_eq!(
        orgs["organizations"],
        json!([{"name": "contoso", "revision": rev4}])
    );
}

#[test]
fn min_revision_waits_for_the_write_and_times_out_otherwise() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let rev = alice.revision(&f.org);
    let waiting = {
        let alice = alice.clone();
        let url = f.url(&format!("/records/a001?min_revision={}", rev + 1));
        std::thread::spawn(move || alice.get(&url))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let written = alice.write(
        &f.org,
        &json!({"op": "update", "record": "a001", "fields": {"name": "Waited"}}),
    );
    let rec = waiting.join().unwrap().expect(200);
    assert!(rec["revision"].as_u64().unwrap() > rev);
    assert_eq!(rec["revision"], json!(written));
    assert_eq!(rec["fields"]["name"], json!("Waited"));

    // A revision that never comes: 503 after the wait.
    let started = std::time::Instant::now();
    alice
        .post(
            &f.url("/check"),
            &json!({"privilege": "read", "record": "a001", "min_revision": written + 100}),
        )
        .expect_error(503, "revision_not_reached");
    assert!(started.elapsed() >= std::time::Duration::from_secs(4));
}

// ---------------------------------------------------------------------------------------------
// 3. Isolation between organisations
// ---------------------------------------------------------------------------------------------

#[test]
fn organisations_are_isolated() {
    let f = Fixture::new();
    let fab = setup_org(&f.server, "fabrikam", "Fabrikam");
    let root = f.root();
    let c_alice = f.as_(&f.keys.alice);
    let f_alice = f.as_(&fab.alice);
    let c_admin = f.as_(&f.keys.admin);

    // Same names, own contents.
    let rec = c_alice.get("/api/v1/orgs/contoso/records/a001").expect(200);
    assert_eq!(rec["fields"]["name"], json!("Contoso a001"));
    let rec = f_alice
        .get("/api/v1/orgs/fabrikam/records/a001")
        .expect(200);
    assert_eq!(rec["fields"]["name"], json!("Fabrikam a001"));

    // A write in one is invisible in the other.
    let f_rev = root.revision("fabrikam");
    c_alice.write(
        "contoso",
        &json!({"op": "create", "table": "account", "id": "only-contoso"}),
    );
    c_alice
        .get("/api/v1/orgs/contoso/records/only-contoso")
        .expect(200);
    f_alice
        .get("/api/v1/orgs/fabrikam/records/only-contoso")
        .expect_error(404, "not_found");
    assert_eq!(root.revision("fabrikam"), f_rev);
    c_alice.write(
        "contoso",
        &json!({"op": "update", "record": "a002", "fields": {"name": "Changed"}}),
    );
    let rec = f_alice
        .get("/api/v1/orgs/fabrikam/records/a002")
        .expect(200);
    assert_eq!(rec["fields"]["name"], json!("Fabrikam a002"));

    // A key of one organisation on the other's routes: 403, even for its administrator.
    for key in [&f.keys.alice, &f.keys.admin] {
        let c = f.as_(key);
        for (method, path, body) in [
            ("GET", "/api/v1/orgs/fabrikam/revision", None),
            ("GET", "/api/v1/orgs/fabrikam/records/a001", None),
            ("GET", "/api/v1/orgs/fabrikam/records/a001/access", None),
            (
                "GET",
                "/api/v1/orgs/fabrikam/records/a001/who-has-access",
                None,
            ),
            ("GET", "/api/v1/orgs/fabrikam/tables/account/records", None),
            ("GET", "/api/v1/orgs/fabrikam/apps/Sales%20Hub/access", None),
            ("GET", "/api/v1/orgs/fabrikam/audit", None),
            ("GET", "/api/v1/orgs/fabrikam/audit/verify", None),
            (
                "POST",
                "/api/v1/orgs/fabrikam/check",
                Some(json!({"privilege": "read", "record": "a001"})),
            ),
            (
                "POST",
                "/api/v1/orgs/fabrikam/explain",
                Some(json!({"privilege": "read", "record": "a001"})),
            ),
            (
                "POST",
                "/api/v1/orgs/fabrikam/operations",
                Some(json!({"op": "delete", "record": "a001"})),
            ),
            (
                "POST",
                "/api/v1/orgs/fabrikam/api-keys",
                Some(json!({"user": "alice"})),
            ),
        ] {
            let resp = match body {
                Some(b) => c.post(path, &b),
                None => c.raw(method, path, &[], b""),
            };
            resp.expect_error(403, "forbidden");
        }
    }
    assert_eq!(root.revision("fabrikam"), f_rev);
    f_alice
        .get("/api/v1/orgs/fabrikam/records/a001")
        .expect(200);

    // AuthZEN answers from the key's own organisation.
    let eval = json!({
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "account", "id": "only-contoso"},
    });
    let d = c_alice.post("/access/v1/evaluation", &eval).expect(200);
    assert_eq!(d["decision"], json!(true));
    let d = f_alice.post("/access/v1/evaluation", &eval).expect(200);
    assert_eq!(d["decision"], json!(false));
    let d = root
        .post_with(
            "/access/v1/evaluation",
            &eval,
            &[("X-Strata-Organization", "fabrikam")],
        )
        .expect(200);
    assert_eq!(d["decision"], json!(false));

    // An administrator of one cannot make keys in the other; keys made in one do not open
    // the other.
    let extra = c_admin.key_for("contoso", "bob");
    f.as_(&extra)
        .get("/api/v1/orgs/fabrikam/revision")
        .expect_error(403, "forbidden");

    let orgs = root.get("/api/v1/orgs").expect(200);
    let names: Vec<&str> = orgs["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["contoso", "fabrikam"]);
}

#[test]
fn deleting_an_organisation_removes_it() {
    let db = Db::new();
    let server = Server::start(&db.path);
    let root = server.root();
    let keys = setup_org(&server, "temp", "Temp");
    let keep = setup_org(&server, "keep", "Keep");
    let alice = server.client(Some(&keys.alice));
    alice.get("/api/v1/orgs/temp/records/a001").expect(200);

    root.post("/api/v1/orgs", &json!({"name": "temp"}))
        .expect_error(409, "duplicate_organization");
    root.post("/api/v1/orgs", &json!({"name": "bad name!"}))
        .expect_error(400, "bad_name");

    let resp = root.delete("/api/v1/orgs/temp");
    assert_eq!(resp.status, 204, "{}", resp.brief());
    root.get("/api/v1/orgs/temp/revision")
        .expect_error(404, "unknown_organization");
    root.post(
        "/api/v1/orgs/temp/check",
        &json!({"user": "alice", "privilege": "read", "record": "a001"}),
    )
    .expect_error(404, "unknown_organization");
    root.delete("/api/v1/orgs/temp")
        .expect_error(404, "unknown_organization");
    // Its keys went with it.
    alice
        .get("/api/v1/orgs/temp/records/a001")
        .expect_error(401, "unauthenticated");
    alice
        .post(
            "/access/v1/evaluation",
            &json!({"subject": {"id": "alice"}, "action": {"name": "read"}, "resource": {"id": "a001"}}),
        )
        .expect_error(401, "unauthenticated");
    let orgs = root.get("/api/v1/orgs").expect(200);
    assert_eq!(orgs["organizations"].as_array().unwrap().len(), 1);
    assert_eq!(orgs["organizations"][0]["name"], json!("keep"));
    // The other organisation is untouched.
    server
        .client(Some(&keep.alice))
        .get("/api/v1/orgs/keep/records/a001")
        .expect(200);

    // A new organisation of the same name starts empty; old keys stay dead.
    root.post("/api/v1/orgs", &json!({"name": "temp"}))
        .expect(201);
    assert_eq!(root.revision("temp"), 0);
    alice
        .get("/api/v1/orgs/temp/revision")
        .expect_error(401, "unauthenticated");
    root.get("/api/v1/orgs/temp/records/a001?user=alice")
        .expect_error(404, "not_found");
    server.stop();
}

// ---------------------------------------------------------------------------------------------
// 4. The route authorization matrix
// ---------------------------------------------------------------------------------------------

/// The routes of `crates/server/src/lib.rs`, as (METHOD, path template), read from the source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    let org_prefix = src
        .split("let org = \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("`let org = \"…\"` in lib.rs");
    let mut out = BTreeSet::new();
    for args in common::route_args(&src) {
        // The first argument, up to the first comma outside parentheses.
        let mut depth = 0;
        let mut split = args.len();
        for (i, c) in args.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    split = i;
                    break;
                }
                _ => {}
            }
        }
        let (first, handlers) = (args[..split].trim(), &args[split..]);
        let path = if first == "org" {
            org_prefix.to_owned()
        } else {
            let literal = first
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("cannot read route path `{first}`"));
            if first.starts_with("&format!") || first.starts_with("format!") {
                literal
                    .replace("{{", "\u{0}")
                    .replace("}}", "\u{1}")
                    .replace("{org}", org_prefix)
                    .replace('\u{0}', "{")
                    .replace('\u{1}', "}")
            } else {
                literal.to_owned()
            }
        };
        let mut methods = 0;
        for m in ["get", "post", "put", "patch", "delete", "head", "options"] {
            let needle = format!("{m}(");
            let mut from = 0;
            while let Some(i) = handlers[from..].find(&needle) {
                let pos = from + i;
                let before = handlers[..pos].chars().next_back().unwrap_or(' ');
                if !(before.is_alphanumeric() || before == '_') {
                    out.insert((m.to_uppercase(), path.clone()));
                    methods += 1;
                }
                from = pos + needle.len();
            }
        }
        assert!(methods > 0, "no method found for route `{path}`");
    }
    out
}

/// One route of the matrix: a request that the right caller gets answered, and refusals.
struct Route {
    method: &'static str,
    template: &'static str,
    path: String,
    body: Option<Value>,
    /// `None`: a public route.
    ok_key: Option<String>,
    ok_headers: Vec<(&'static str, String)>,
    ok_status: u16,
    /// (key, path, body, code): a valid key lacking the needed right; always 403.
    refusals: Vec<(String, String, Option<Value>, &'static str)>,
    /// The error code for a disabled user's key (`None` on public routes).
    disabled: Option<&'static str>,
}

fn call(
    c: &Client,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> common::Response {
    match body {
        Some(b) => {
            let mut h = vec![("Content-Type", "application/json")];
            h.extend_from_slice(headers);
            c.raw(method, path, &h, b.to_string().as_bytes())
        }
        None => c.raw(method, path, headers, b""),
    }
}

fn matrix(f: &Fixture, other_admin: &str) -> Vec<Route> {
    let k = &f.keys;
    let o = |rest: &str| f.url(rest);
    let route = |method: &'static str, template: &'static str, path: String| Route {
        method,
        template,
        path,
        body: None,
        ok_key: None,
        ok_headers: Vec::new(),
        ok_status: 200,
        refusals: Vec::new(),
        disabled: None,
    };
    let about_bob = json!({"user": "bob", "privilege": "read", "record": "a001"});
    let az_bob = json!({
        "subject": {"type": "user", "id": "bob"},
        "action": {"name": "read"},
        "resource": {"type": "account", "id": "a001"},
    });
    let az_alice = json!({
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "account", "id": "a001"},
    });
    let foreign = |path: &str, body: Option<Value>| {
        (other_admin.to_owned(), path.to_owned(), body, "forbidden")
    };
    // A route of the organisation answered to `ok_key`, refused (`denied`) to each key of
    // `denied` with its path and body, to another organisation's administrator (`forbidden`)
    // and to a disabled user (`user_disabled`).
    let guarded = |method: &'static str,
                   template: &'static str,
                   path: String,
                   body: Option<Value>,
                   ok_key: &str,
                   denied: Vec<(String, String, Option<Value>)>| {
        let mut refusals: Vec<_> = denied
            .into_iter()
            .map(|(key, path, body)| (key, path, body, "denied"))
            .collect();
        refusals.push(foreign(&path, body.clone()));
        Route {
            body,
            ok_key: Some(ok_key.to_owned()),
            refusals,
            disabled: Some("user_disabled"),
            ..route(method, template, path)
        }
    };
    // The rule that POST adds and DELETE then removes.
    let rule = json!({"role": "Rep", "excludes": "Support Rep"});
    vec![
        route("GET", "/healthz", "/healthz".into()),
        route("GET", "/readyz", "/readyz".into()),
        route("GET", "/metrics", "/metrics".into()),
        route("GET", "/api/v1/openapi.json", "/api/v1/openapi.json".into()),
        Route {
            body: Some(json!({"name": "matrix-new"})),
            ok_key: Some(ROOT.into()),
            ok_status: 201,
            refusals: vec![
                (
                    k.admin.clone(),
                    "/api/v1/orgs".into(),
                    Some(json!({"name": "by-admin"})),
                    "forbidden",
                ),
                (
                    k.alice.clone(),
                    "/api/v1/orgs".into(),
                    Some(json!({"name": "by-alice"})),
                    "forbidden",
                ),
            ],
            disabled: Some("forbidden"),
            ..route("POST", "/api/v1/orgs", "/api/v1/orgs".into())
        },
        Route {
            ok_key: Some(ROOT.into()),
            refusals: vec![(k.admin.clone(), "/api/v1/orgs".into(), None, "forbidden")],
            disabled: Some("forbidden"),
            ..route("GET", "/api/v1/orgs", "/api/v1/orgs".into())
        },
        Route {
            ok_key: Some(ROOT.into()),
            ok_status: 204,
            refusals: vec![
                (
                    k.admin.clone(),
                    "/api/v1/orgs/scratch".into(),
                    None,
                    "forbidden",
                ),
                (k.admin.clone(), o(""), None, "forbidden"),
            ],
            disabled: Some("forbidden"),
            ..route(
                "DELETE",
                "/api/v1/orgs/{org}",
                "/api/v1/orgs/scratch".into(),
            )
        },
        Route {
            ok_key: Some(k.alice.clone()),
            refusals: vec![foreign(&o("/revision"), None)],
            disabled: Some("user_disabled"),
            ..route("GET", "/api/v1/orgs/{org}/revision", o("/revision"))
        },
        Route {
            ok_key: Some(k.admin.clone()),
            refusals: vec![
                (k.alice.clone(), o("/digest"), None, "denied"),
                foreign(&o("/digest"), None),
            ],
            disabled: Some("user_disabled"),
            ..route("GET", "/api/v1/orgs/{org}/digest", o("/digest"))
        },
        Route {
            ok_key: Some(k.admin.clone()),
            refusals: vec![
                (k.alice.clone(), o("/model"), None, "denied"),
                foreign(&o("/model"), None),
            ],
            disabled: Some("user_disabled"),
            ..route("GET", "/api/v1/orgs/{org}/model", o("/model"))
        },
        Route {
            ok_key: Some(k.admin.clone()),
            refusals: vec![
                (k.alice.clone(), o("/export"), None, "denied"),
                foreign(&o("/export"), None),
            ],
            disabled: Some("user_disabled"),
            ..route("GET", "/api/v1/orgs/{org}/export", o("/export"))
        },
        Route {
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (
                    k.carol.clone(),
                    o("/users/alice/privileges"),
                    None,
                    "denied",
                ),
                foreign(&o("/users/alice/privileges"), None),
            ],
            disabled: Some("user_disabled"),
            ..route(
                "GET",
                "/api/v1/orgs/{org}/users/{user}/privileges",
                o("/users/alice/privileges"),
            )
        },
        Route {
            body: Some(json!([{"op": "update", "record": "a003", "fields": {"name": "Matrix"}}])),
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (
                    k.alice.clone(),
                    o("/operations"),
                    Some(
                        json!([{"op": "add_business_unit", "name": "Rogue", "parent": "Contoso"}]),
                    ),
                    "denied",
                ),
                (
                    k.carol.clone(),
                    o("/operations"),
                    Some(json!({"op": "add_user", "name": "mallory"})),
                    "denied",
                ),
                (
                    k.carol.clone(),
                    o("/operations"),
                    Some(json!({"op": "update", "record": "a003", "fields": {"name": "Carol"}})),
                    "denied",
                ),
                foreign(
                    &o("/operations"),
                    Some(json!({"op": "delete", "record": "a003"})),
                ),
            ],
            disabled: Some("user_disabled"),
            ..route("POST", "/api/v1/orgs/{org}/operations", o("/operations"))
        },
        Route {
            body: Some(json!({"privilege": "read", "record": "a001"})),
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (
                    k.alice.clone(),
                    o("/check"),
                    Some(about_bob.clone()),
                    "denied",
                ),
                foreign(&o("/check"), Some(about_bob.clone())),
            ],
            disabled: Some("user_disabled"),
            ..route("POST", "/api/v1/orgs/{org}/check", o("/check"))
        },
        Route {
            body: Some(json!({"privilege": "read", "record": "a001"})),
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (
                    k.alice.clone(),
                    o("/explain"),
                    Some(about_bob.clone()),
                    "denied",
                ),
                foreign(&o("/explain"), Some(about_bob.clone())),
            ],
            disabled: Some("user_disabled"),
            ..route("POST", "/api/v1/orgs/{org}/explain", o("/explain"))
        },
        Route {
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (k.alice.clone(), o("/records/a001?user=bob"), None, "denied"),
                (k.carol.clone(), o("/records/a001"), None, "denied"),
                foreign(&o("/records/a001"), None),
            ],
            disabled: Some("user_disabled"),
            ..route("GET", "/api/v1/orgs/{org}/records/{id}", o("/records/a001"))
        },
        Route {
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (
                    k.alice.clone(),
                    o("/records/a001/access?user=bob"),
                    None,
                    "denied",
                ),
                foreign(&o("/records/a001/access"), None),
            ],
            disabled: Some("user_disabled"),
            ..route(
                "GET",
                "/api/v1/orgs/{org}/records/{id}/access",
                o("/records/a001/access"),
            )
        },
        Route {
            ok_key: Some(k.audrey.clone()),
            refusals: vec![
                (
                    k.carol.clone(),
                    o("/records/a001/who-has-access"),
                    None,
                    "denied",
                ),
                (
                    k.alice.clone(),
                    o("/records/a001/who-has-access"),
                    None,
                    "denied",
                ),
                foreign(&o("/records/a001/who-has-access"), None),
            ],
            disabled: Some("user_disabled"),
            ..route(
                "GET",
                "/api/v1/orgs/{org}/records/{id}/who-has-access",
                o("/records/a001/who-has-access"),
            )
        },
        Route {
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (
                    k.alice.clone(),
                    o("/tables/account/records?user=bob"),
                    None,
                    "denied",
                ),
                foreign(&o("/tables/account/records"), None),
            ],
            disabled: Some("user_disabled"),
            ..route(
                "GET",
                "/api/v1/orgs/{org}/tables/{table}/records",
                o("/tables/account/records"),
            )
        },
        Route {
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (
                    k.alice.clone(),
                    o("/apps/Sales%20Hub/access?user=bob"),
                    None,
                    "denied",
                ),
                foreign(&o("/apps/Sales%20Hub/access"), None),
            ],
            disabled: Some("user_disabled"),
            ..route(
                "GET",
                "/api/v1/orgs/{org}/apps/{app}/access",
                o("/apps/Sales%20Hub/access"),
            )
        },
        guarded(
            "GET",
            "/api/v1/orgs/{org}/apps",
            o("/apps"),
            None,
            &k.alice,
            vec![],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/apps/{app}",
            o("/apps/Sales%20Hub"),
            None,
            &k.audrey,
            vec![(k.alice.clone(), o("/apps/Sales%20Hub"), None)],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/apps/{app}/roles-needed",
            o("/apps/Sales%20Hub/roles-needed"),
            None,
            &k.alice,
            vec![(
                k.alice.clone(),
                o("/apps/Sales%20Hub/roles-needed?user=carol"),
                None,
            )],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/tables/{table}/columns/{column}/access",
            o("/tables/account/columns/creditlimit/access"),
            None,
            &k.audrey,
            vec![(
                k.alice.clone(),
                o("/tables/account/columns/creditlimit/access"),
                None,
            )],
        ),
        Route {
            body: Some(json!({"record": "a001", "column": "creditlimit"})),
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (
                    k.alice.clone(),
                    o("/columns/check"),
                    Some(json!({"user": "bob", "record": "a001", "column": "creditlimit"})),
                    "denied",
                ),
                foreign(
                    &o("/columns/check"),
                    Some(json!({"user": "bob", "record": "a001", "column": "creditlimit"})),
                ),
            ],
            disabled: Some("user_disabled"),
            ..route(
                "POST",
                "/api/v1/orgs/{org}/columns/check",
                o("/columns/check"),
            )
        },
        Route {
            body: Some(json!({"record": "a001", "column": "creditlimit", "access": "update"})),
            ok_key: Some(k.alice.clone()),
            refusals: vec![
                (
                    k.alice.clone(),
                    o("/columns/explain"),
                    Some(json!({"user": "bob", "record": "a001", "column": "creditlimit"})),
                    "denied",
                ),
                foreign(
                    &o("/columns/explain"),
                    Some(json!({"user": "bob", "record": "a001", "column": "creditlimit"})),
                ),
            ],
            disabled: Some("user_disabled"),
            ..route(
                "POST",
                "/api/v1/orgs/{org}/columns/explain",
                o("/columns/explain"),
            )
        },
        Route {
            ok_key: Some(k.audrey.clone()),
            refusals: vec![
                (k.alice.clone(), o("/audit"), None, "denied"),
                foreign(&o("/audit"), None),
            ],
            disabled: Some("user_disabled"),
            ..route("GET", "/api/v1/orgs/{org}/audit", o("/audit"))
        },
        Route {
            ok_key: Some(k.audrey.clone()),
            refusals: vec![
                (k.alice.clone(), o("/audit/verify"), None, "denied"),
                foreign(&o("/audit/verify"), None),
            ],
            disabled: Some("user_disabled"),
            ..route("GET", "/api/v1/orgs/{org}/audit/verify", o("/audit/verify"))
        },
        Route {
            body: Some(json!({"user": "bob"})),
            ok_key: Some(k.admin.clone()),
            ok_status: 201,
            refusals: vec![
                (
                    k.alice.clone(),
                    o("/api-keys"),
                    Some(json!({"user": "bob"})),
                    "denied",
                ),
                (
                    k.audrey.clone(),
                    o("/api-keys"),
                    Some(json!({"user": "audrey"})),
                    "denied",
                ),
                foreign(&o("/api-keys"), Some(json!({"user": "bob"}))),
            ],
            disabled: Some("user_disabled"),
            ..route("POST", "/api/v1/orgs/{org}/api-keys", o("/api-keys"))
        },
        guarded(
            "GET",
            "/api/v1/orgs/{org}/licences",
            o("/licences"),
            None,
            &k.alice,
            vec![],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/licences/report",
            o("/licences/report"),
            None,
            &k.audrey,
            vec![(k.alice.clone(), o("/licences/report"), None)],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/licences/users/{user}",
            o("/licences/users/alice"),
            None,
            &k.alice,
            vec![(k.alice.clone(), o("/licences/users/bob"), None)],
        ),
        Route {
            // The organisation `other` holds a licence (`route_authorization_matrix`).
            ok_key: Some(other_admin.to_owned()),
            refusals: vec![foreign(&o("/licences/Full/exceeds"), None)],
            disabled: Some("forbidden"),
            ..route(
                "GET",
                "/api/v1/orgs/{org}/licences/{licence}/exceeds",
                "/api/v1/orgs/other/licences/Full/exceeds?role=Rep".to_owned(),
            )
        },
        Route {
            body: Some(az_alice.clone()),
            ok_key: Some(k.alice.clone()),
            refusals: vec![(
                k.alice.clone(),
                "/access/v1/evaluation".into(),
                Some(az_bob.clone()),
                "denied",
            )],
            disabled: Some("user_disabled"),
            ..route(
                "POST",
                "/access/v1/evaluation",
                "/access/v1/evaluation".into(),
            )
        },
        Route {
            body: Some(
                json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                "evaluations": [{"resource": {"type": "account", "id": "a001"}}]}),
            ),
            ok_key: Some(k.alice.clone()),
            refusals: vec![(
                k.alice.clone(),
                "/access/v1/evaluations".into(),
                Some(
                    json!({"action": {"name": "read"}, "resource": {"type": "account", "id": "a001"},
                    "evaluations": [{"subject": {"type": "user", "id": "alice"}}, {"subject": {"type": "user", "id": "bob"}}]}),
                ),
                "denied",
            )],
            disabled: Some("user_disabled"),
            ..route(
                "POST",
                "/access/v1/evaluations",
                "/access/v1/evaluations".into(),
            )
        },
        Route {
            body: Some(
                json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                "resource": {"type": "account"}}),
            ),
            ok_key: Some(k.alice.clone()),
            refusals: vec![(
                k.alice.clone(),
                "/access/v1/search/resource".into(),
                Some(
                    json!({"subject": {"type": "user", "id": "bob"}, "action": {"name": "read"},
                    "resource": {"type": "account"}}),
                ),
                "denied",
            )],
            disabled: Some("user_disabled"),
            ..route(
                "POST",
                "/access/v1/search/resource",
                "/access/v1/search/resource".into(),
            )
        },
        // Roles as things to manage (admin_roles.rs): reads need Read on `role` (D42), users
        // are compared under D35, writes are the role operations' authorization. The writes
        // work on a copy, in order: copy, rename, one cell, deprecate and back, replace, delete.
        guarded(
            "GET",
            "/api/v1/orgs/{org}/roles/{role}",
            o("/roles/Rep"),
            None,
            &k.admin,
            vec![(k.alice.clone(), o("/roles/Rep"), None)],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/roles/{role}/holders",
            o("/roles/Rep/holders"),
            None,
            &k.admin,
            vec![(k.alice.clone(), o("/roles/Rep/holders"), None)],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/roles/{role}/assigners",
            o("/roles/Rep/assigners"),
            None,
            &k.admin,
            vec![(k.alice.clone(), o("/roles/Rep/assigners"), None)],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/roles/{role}/compare/{other}",
            o("/roles/Rep/compare/Auditor"),
            None,
            &k.admin,
            vec![(k.alice.clone(), o("/roles/Rep/compare/Auditor"), None)],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/users/{user}/compare/{other}",
            o("/users/alice/compare/carol"),
            None,
            &k.audrey,
            vec![(k.alice.clone(), o("/users/alice/compare/carol"), None)],
        ),
        guarded(
            "POST",
            "/api/v1/orgs/{org}/roles/{role}/copy",
            o("/roles/Rep/copy"),
            Some(json!({"name": "RepCopy"})),
            &k.admin,
            vec![(
                k.alice.clone(),
                o("/roles/Rep/copy"),
                Some(json!({"name": "ByAlice"})),
            )],
        ),
        guarded(
            "POST",
            "/api/v1/orgs/{org}/roles/{role}/rename",
            o("/roles/RepCopy/rename"),
            Some(json!({"name": "RepTwo"})),
            &k.admin,
            vec![(
                k.alice.clone(),
                o("/roles/RepCopy/rename"),
                Some(json!({"name": "ByAlice"})),
            )],
        ),
        guarded(
            "PUT",
            "/api/v1/orgs/{org}/roles/{role}/privileges/{table}/{privilege}",
            o("/roles/RepTwo/privileges/account/delete"),
            Some(json!({"depth": "none"})),
            &k.admin,
            vec![(
                k.alice.clone(),
                o("/roles/RepTwo/privileges/account/delete"),
                Some(json!({"depth": "none"})),
            )],
        ),
        guarded(
            "POST",
            "/api/v1/orgs/{org}/roles/{role}/deprecation",
            o("/roles/RepTwo/deprecation"),
            Some(json!({"message": "use Rep", "successors": ["Rep"]})),
            &k.admin,
            vec![(
                k.alice.clone(),
                o("/roles/RepTwo/deprecation"),
                Some(json!({"successors": ["Rep"]})),
            )],
        ),
        guarded(
            "DELETE",
            "/api/v1/orgs/{org}/roles/{role}/deprecation",
            o("/roles/RepTwo/deprecation"),
            None,
            &k.admin,
            vec![(k.alice.clone(), o("/roles/RepTwo/deprecation"), None)],
        ),
        guarded(
            "POST",
            "/api/v1/orgs/{org}/roles/{role}/replace",
            o("/roles/RepTwo/replace"),
            Some(json!({"replacement": "Rep"})),
            &k.admin,
            vec![(
                k.alice.clone(),
                o("/roles/Rep/replace"),
                Some(json!({"replacement": "Support Rep"})),
            )],
        ),
        guarded(
            "DELETE",
            "/api/v1/orgs/{org}/roles/{role}",
            o("/roles/RepTwo"),
            None,
            &k.admin,
            vec![(k.alice.clone(), o("/roles/RepTwo"), None)],
        ),
        Route {
            body: Some(json!({"columns": [{"name": "rating"}]})),
            ok_key: Some(k.admin.clone()),
            refusals: vec![(
                k.alice.clone(),
                o("/tables/account/columns"),
                Some(json!({"columns": [{"name": "byalice"}]})),
                "denied",
            )],
            disabled: Some("user_disabled"),
            ..route(
                "POST",
                "/api/v1/orgs/{org}/tables/{table}/columns",
                o("/tables/account/columns"),
            )
        },
        // Solution roles out: a named role needs Read on `role` (alice has none).
        guarded(
            "GET",
            "/api/v1/orgs/{org}/roles/export",
            o("/roles/export?role=Rep"),
            None,
            &k.admin,
            vec![(k.alice.clone(), o("/roles/export?role=Rep"), None)],
        ),
        // Solution roles (admin_import.rs): a dry run of creating a role, refused to a user
        // without Create on `role`. The body is the XML (here as a JSON string).
        guarded(
            "POST",
            "/api/v1/orgs/{org}/roles/import",
            o("/roles/import?dry_run=true"),
            Some(json!(
                "<Role name=\"Imported\"><RolePrivileges><RolePrivilege name=\"prvReadAccount\" level=\"Basic\"/></RolePrivileges></Role>"
            )),
            &k.admin,
            vec![(
                k.alice.clone(),
                o("/roles/import?dry_run=true"),
                Some(json!(
                    "<Role name=\"Imported\"><RolePrivileges><RolePrivilege name=\"prvReadAccount\" level=\"Basic\"/></RolePrivileges></Role>"
                )),
            )],
        ),
        // Role rules (D45–D47): reading needs Read on `role`, writing Write on `role`, the
        // report prvCheckAccessOfOthers. POST adds the rule that DELETE then removes.
        guarded(
            "GET",
            "/api/v1/orgs/{org}/rules",
            o("/rules"),
            None,
            &k.admin,
            vec![(k.alice.clone(), o("/rules"), None)],
        ),
        guarded(
            "POST",
            "/api/v1/orgs/{org}/rules",
            o("/rules"),
            Some(rule.clone()),
            &k.admin,
            vec![(k.alice.clone(), o("/rules"), Some(rule.clone()))],
        ),
        guarded(
            "DELETE",
            "/api/v1/orgs/{org}/rules",
            o("/rules"),
            Some(rule.clone()),
            &k.admin,
            vec![(k.alice.clone(), o("/rules"), Some(rule.clone()))],
        ),
        guarded(
            "GET",
            "/api/v1/orgs/{org}/rules/violations",
            o("/rules/violations"),
            None,
            &k.audrey,
            vec![
                (k.alice.clone(), o("/rules/violations"), None),
                (k.alice.clone(), o("/rules/violations?user=bob"), None),
            ],
        ),
        // The access review (D70): the root key, System Administrators, or a reviewer with
        // every right; the auditor cannot read roles.
        guarded(
            "GET",
            "/api/v1/orgs/{org}/review",
            o("/review?format=csv"),
            None,
            &k.admin,
            vec![
                (k.alice.clone(), o("/review"), None),
                (k.audrey.clone(), o("/review?format=xlsx"), None),
            ],
        ),
    ]
}

#[test]
fn the_matrix_lists_every_route_of_the_router() {
    let f = Fixture::new();
    let in_source = routes_in_source();
    assert!(
        in_source.len() >= 20,
        "parsed too few routes: {in_source:?}"
    );
    let in_matrix: BTreeSet<(String, String)> = matrix(&f, "x")
        .iter()
        .map(|r| (r.method.to_owned(), r.template.to_owned()))
        .collect();
    let missing: Vec<_> = in_source.difference(&in_matrix).collect();
    assert!(
        missing.is_empty(),
        "routes of lib.rs missing from the matrix: {missing:?}"
    );
    let stale: Vec<_> = in_matrix.difference(&in_source).collect();
    assert!(
        stale.is_empty(),
        "matrix routes that lib.rs does not have: {stale:?}"
    );

    // Every route the router serves is documented in the OpenAPI document (the document
    // itself aside).
    let doc = f
        .server
        .client(None)
        .get("/api/v1/openapi.json")
        .expect(200);
    for (method, path) in &in_source {
        if path == "/api/v1/openapi.json" {
            continue;
        }
        assert!(
            doc["paths"][path.as_str()][method.to_lowercase()].is_object(),
            "{method} {path} is not in the OpenAPI document"
        );
    }
}

#[test]
fn route_authorization_matrix() {
    let f = Fixture::new();
    let root = f.root();
    let other = setup_org(&f.server, "other", "Other");
    root.write(
        "other",
        &json!([{"op": "add_licence", "name": "Full", "price": 4, "default": "organization",
            "all_misc": true, "all_apps": true}]),
    );
    root.post("/api/v1/orgs", &json!({"name": "scratch"}))
        .expect(201);
    let routes = matrix(&f, &other.admin);
    let anon = f.server.client(None);
    let bad = f.server.client(Some(BAD_KEY));
    let disabled = f.as_(&f.keys.erin);
    let revisions = |root: &Client| -> Vec<(String, u64)> {
        root.get("/api/v1/orgs").expect(200)["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["name"].as_str().unwrap().to_owned(),
                    o["revision"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    for r in &routes {
        let what = format!("{} {}", r.method, r.template);
        let body = r.body.as_ref();
        let before = revisions(&root);
        let no_creds = call(&anon, r.method, &r.path, body, &[]);
        let bad_key = call(&bad, r.method, &r.path, body, &[]);
        let bad_x_api_key = call(&anon, r.method, &r.path, body, &[("X-Api-Key", BAD_KEY)]);
        let bad_scheme = call(
            &anon,
            r.method,
            &r.path,
            body,
            &[("Authorization", &format!("Basic {BAD_KEY}"))],
        );
        match &r.ok_key {
            None => {
                assert_eq!(no_creds.status, 200, "{what} without credentials");
                assert_eq!(bad_key.status, 200, "{what} with a bad key");
            }
            Some(_) => {
                for (resp, how) in [
                    (&no_creds, "without credentials"),
                    (&bad_key, "with a bad bearer key"),
                    (&bad_x_api_key, "with a bad X-Api-Key"),
                    (&bad_scheme, "with a Basic authorization"),
                ] {
                    assert_eq!(resp.status, 401, "{what} {how}: {}", resp.brief());
                    assert_eq!(
                        resp.json()["error"]["code"],
                        json!("unauthenticated"),
                        "{what} {how}"
                    );
                }
            }
        }
        for (key, path, rbody, code) in &r.refusals {
            let resp = call(&f.as_(key), r.method, path, rbody.as_ref(), &[]);
            assert_eq!(
                resp.status,
                403,
                "{what}: {path} with a key lacking the right: {}",
                resp.brief()
            );
            assert_eq!(resp.json()["error"]["code"], json!(code), "{what}: {path}");
        }
        if let Some(code) = r.disabled {
            let resp = call(&disabled, r.method, &r.path, body, &[]);
            assert_eq!(
                resp.status,
                403,
                "{what} as a disabled user: {}",
                resp.brief()
            );
            assert_eq!(resp.json()["error"]["code"], json!(code), "{what} disabled");
        }
        // Impersonation without prvActOnBehalfOfAnotherUser, and of a user who does not
        // exist, on every route an organisation's user may call.
        if r.disabled == Some("user_disabled") {
            let carol = f.as_(&f.keys.carol);
            let resp = call(
                &carol,
                r.method,
                &r.path,
                body,
                &[("MSCRMCallerID", "alice")],
            );
            assert_eq!(
                (resp.status, resp.json()["error"]["code"].clone()),
                (403, json!("denied")),
                "{what} impersonating without the privilege: {}",
                resp.brief()
            );
            let resp = call(
                &carol,
                r.method,
                &r.path,
                body,
                &[("MSCRMCallerID", "ghost")],
            );
            assert_eq!(
                resp.status,
                404,
                "{what} impersonating a user who does not exist: {}",
                resp.brief()
            );
        }
        assert_eq!(
            revisions(&root),
            before,
            "{what}: a refused request wrote something"
        );
        // The right caller is answered.
        let ok = match &r.ok_key {
            Some(key) => {
                let headers: Vec<(&str, &str)> =
                    r.ok_headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                call(&f.as_(key), r.method, &r.path, body, &headers)
            }
            None => no_creds,
        };
        assert_eq!(
            ok.status,
            r.ok_status,
            "{what} as the right caller: {}",
            ok.brief()
        );
    }
    // The successful calls did what they say.
    root.get("/api/v1/orgs/scratch/revision")
        .expect_error(404, "unknown_organization");
    assert_eq!(root.revision("matrix-new"), 0);
    let rec = f
        .as_(&f.keys.alice)
        .get(&f.url("/records/a003"))
        .expect(200);
    assert_eq!(rec["fields"]["name"], json!("Matrix"));
    // A valid key in X-Api-Key works as well as a bearer key.
    f.server
        .client(None)
        .raw(
            "GET",
            &f.url("/revision"),
            &[("X-Api-Key", &f.keys.alice)],
            b"",
        )
        .expect(200);
}

#[test]
fn a_disabled_users_key_is_refused_with_user_disabled() {
    let f = Fixture::new();
    let erin = f.as_(&f.keys.erin);
    let rev = f.root().revision(&f.org);
    let err = erin
        .post(
            &f.url("/check"),
            &json!({"privilege": "read", "record": "a001"}),
        )
        .expect_error(403, "user_disabled");
    assert!(err["message"].as_str().unwrap().contains("erin"));
    erin.get(&f.url("/revision"))
        .expect_error(403, "user_disabled");
    erin.post(
        &f.url("/operations"),
        &json!({"op": "create", "table": "account", "id": "by-erin"}),
    )
    .expect_error(403, "user_disabled");
    assert_eq!(f.root().revision(&f.org), rev);
    // Others may still ask about the disabled user: she is refused everything.
    let check = f
        .as_(&f.keys.admin)
        .post(
            &f.url("/check"),
            &json!({"user": "erin", "privilege": "read", "record": "a001"}),
        )
        .expect(200);
    assert_eq!(check["allowed"], json!(false));
}

// ---------------------------------------------------------------------------------------------
// 5. Bad input
// ---------------------------------------------------------------------------------------------

/// Runs `f` and asserts that the organisation's revision did not move.
fn unchanged(fx: &Fixture, f: impl FnOnce()) {
    let before = fx.root().revision(&fx.org);
    let audit_before = fx.root().get(&fx.url("/audit/verify")).expect(200);
    f();
    assert_eq!(fx.root().revision(&fx.org), before, "something was written");
    assert_eq!(
        fx.root().get(&fx.url("/audit/verify")).expect(200),
        audit_before,
        "the audit grew"
    );
}

#[test]
fn malformed_json_is_400_malformed_json() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    unchanged(&f, || {
        for body in [
            &b"{\"op\": \"delete\", "[..],
            b"[{\"op\": \"delete\", \"record\": \"a001\"}",
            b"not json",
            b"",
        ] {
            alice
                .post_bytes(&f.url("/operations"), body)
                .expect_error(400, "malformed_json");
        }
        alice
            .post_bytes(&f.url("/check"), b"{\"privilege\":")
            .expect_error(400, "malformed_json");
        alice
            .post_bytes("/access/v1/evaluation", b"{")
            .expect_error(400, "malformed_json");
        f.root()
            .post_bytes("/api/v1/orgs", b"{\"name\": ")
            .expect_error(400, "malformed_json");
    });
}

#[test]
fn unknown_fields_are_400_with_the_field_path() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    unchanged(&f, || {
        let err = alice
            .post(
                &f.url("/check"),
                &json!({"privilege": "read", "record": "a001", "recrod": "x"}),
            )
            .expect_error(400, "invalid_body");
        assert!(err["message"].as_str().unwrap().contains("recrod"));
        assert!(
            err["field"].as_str().is_some_and(|p| p.contains("recrod")),
            "no field path: {err}"
        );
        f.root()
            .post("/api/v1/orgs", &json!({"name": "x", "nmae": "y"}))
            .expect_error(400, "invalid_body");
    });
}

#[test]
fn unknown_fields_in_operations_name_the_field_path() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    unchanged(&f, || {
        let err = alice
            .post(
                &f.url("/operations"),
                &json!({"op": "delete", "record": "a001", "recrod": "x"}),
            )
            .expect_error(400, "invalid_body");
        assert!(err["message"].as_str().unwrap().contains("recrod"), "{err}");
        assert!(
            err["field"].as_str().is_some_and(|p| p.contains("recrod")),
            "no field path: {err}"
        );
        let err = alice
            .post(
                &f.url("/operations"),
                &json!([
                    {"op": "update", "record": "a001", "fields": {"name": "ok"}},
                    {"op": "delete", "record": "a001", "recrod": "x"}
                ]),
            )
            .expect_error(400, "invalid_body");
        let field = err["field"].as_str().unwrap_or_default();
        assert!(
            field.contains("recrod") && field.contains('1'),
            "the path names the operation and the field: {err}"
        );
    });
}

#[test]
fn wrong_types_are_400_with_the_field_path() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    unchanged(&f, || {
        let err = alice
            .post(&f.url("/check"), &json!({"privilege": 5, "record": "a001"}))
            .expect_error(400, "invalid_body");
        assert_eq!(err["field"], json!("/privilege"));
        let err = alice
            .post(
                &f.url("/check"),
                &json!({"privilege": "read", "record": "a001", "min_revision": "soon"}),
            )
            .expect_error(400, "invalid_body");
        assert_eq!(err["field"], json!("/min_revision"));
        let err = f
            .as_(&f.keys.admin)
            .post(&f.url("/api-keys"), &json!({"user": ["bob"]}))
            .expect_error(400, "invalid_body");
        assert_eq!(err["field"], json!("/user"));
        let err = alice
            .post(
                "/access/v1/evaluations",
                &json!({"evaluations": [{"subject": {"id": 7}}]}),
            )
            .expect_error(400, "invalid_body");
        assert!(
            err["field"]
                .as_str()
                .is_some_and(|p| p.contains("evaluations")),
            "{err}"
        );
        // A body of the wrong shape.
        alice
            .post(&f.url("/operations"), &json!("delete a001"))
            .expect_error(400, "invalid_body");
        alice
            .post(&f.url("/operations"), &json!([]))
            .expect_error(400, "bad_batch");
    });
}

#[test]
fn wrong_types_in_operations_name_the_field_path() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let mut problems = Vec::new();
    unchanged(&f, || {
        for (body, wanted) in [
            (
                json!({"op": "update", "record": "a001", "fields": "oops"}),
                "/fields",
            ),
            (
                json!([{"op": "update", "record": "a001", "fields": {"name": "ok"}},
                    {"op": "share", "record": "a001", "principal": "bob", "rights": "read"}]),
                "/1/rights",
            ),
        ] {
            let err = alice
                .post(&f.url("/operations"), &body)
                .expect_error(400, "invalid_body");
            if err["field"] != json!(wanted) {
                problems.push(format!("{body}: wanted field `{wanted}`, got {err}"));
            }
        }
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn an_unknown_operation_is_400() {
    let f = Fixture::new();
    let root = f.root();
    unchanged(&f, || {
        let err = root
            .post(
                &f.url("/operations"),
                &json!({"op": "frobnicate", "record": "a001"}),
            )
            .expect_error(400, "invalid_body");
        assert!(
            err["message"].as_str().unwrap().contains("frobnicate"),
            "{err}"
        );
        assert_eq!(err["field"], json!("/op"));
        let err = root
            .post(
                &f.url("/operations"),
                &json!([{"op": "add_business_unit", "name": "X", "parent": "Contoso"}, {"op": "frobnicate"}]),
            )
            .expect_error(400, "invalid_body");
        assert!(
            err["message"].as_str().unwrap().contains("frobnicate"),
            "{err}"
        );
        assert_eq!(err["field"], json!("/1/op"));
        root.post(&f.url("/operations"), &json!({"record": "a001"}))
            .expect_error(400, "invalid_body");
    });
}

#[test]
fn an_unknown_privilege_is_400_unknown_privilege() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    unchanged(&f, || {
        let err = alice
            .post(
                &f.url("/check"),
                &json!({"privilege": "fly", "record": "a001"}),
            )
            .expect_error(400, "unknown_privilege");
        assert_eq!(err["field"], json!("/privilege"));
        let err = alice
            .post(
                &f.url("/explain"),
                &json!({"privilege": "fly", "record": "a001"}),
            )
            .expect_error(400, "unknown_privilege");
        assert_eq!(err["field"], json!("/privilege"));
        let err = alice
            .get(&f.url("/records/a001/who-has-access?privilege=fly"))
            .expect_error(400, "unknown_privilege");
        assert_eq!(err["field"], json!("privilege"));
        let err = alice
            .post(
                "/access/v1/evaluation",
                &json!({"subject": {"id": "alice"}, "action": {"name": "fly"}, "resource": {"id": "a001"}}),
            )
            .expect_error(400, "unknown_privilege");
        assert_eq!(err["field"], json!("/action/name"));
        alice
            .post(
                &f.url("/operations"),
                &json!({"op": "share", "record": "a001", "principal": "bob", "rights": ["fly"]}),
            )
            .expect_error(400, "unknown_privilege");
    });
}

#[test]
fn an_unknown_record_is_404_not_found() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    unchanged(&f, || {
        let err = alice
            .post(
                &f.url("/check"),
                &json!({"privilege": "read", "record": "nope"}),
            )
            .expect_error(404, "not_found");
        assert_eq!(err["field"], json!("/record"));
        alice
            .post(
                &f.url("/explain"),
                &json!({"privilege": "read", "record": "nope"}),
            )
            .expect_error(404, "not_found");
        alice
            .get(&f.url("/records/nope"))
            .expect_error(404, "not_found");
        alice
            .get(&f.url("/records/nope/access"))
            .expect_error(404, "not_found");
        alice
            .get(&f.url("/records/nope/who-has-access"))
            .expect_error(404, "not_found");
        alice
            .get(&f.url("/tables/nope/records"))
            .expect_error(404, "not_found");
        let err = alice
            .post(
                &f.url("/check"),
                &json!({"privilege": "create", "table": "nope"}),
            )
            .expect_error(404, "not_found");
        assert_eq!(err["field"], json!("/table"));
        let err = alice
            .post(
                &f.url("/check"),
                &json!({"user": "nobody", "privilege": "read", "record": "a001"}),
            )
            .expect_error(404, "not_found");
        assert_eq!(err["field"], json!("/user"));
        let err = f
            .as_(&f.keys.admin)
            .post(&f.url("/api-keys"), &json!({"user": "nobody"}))
            .expect_error(404, "not_found");
        assert_eq!(err["field"], json!("/user"));
        f.root()
            .get("/api/v1/orgs/nope/revision")
            .expect_error(404, "unknown_organization");
        // In an operation, an unknown record is an invalid request.
        alice
            .post(
                &f.url("/operations"),
                &json!({"op": "delete", "record": "nope"}),
            )
            .expect_error(400, "unknown_reference");
    });
}

#[test]
fn an_oversized_body_is_413_payload_too_large() {
    let f = Fixture::new();
    let root = f.root();
    // A valid JSON list of operations, a little over 4 MiB.
    let mut body = String::from("[");
    let mut i = 0;
    while body.len() <= 4 * 1024 * 1024 + 16 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"op\":\"insert_record\",\"id\":\"big{i:07}\",\"table\":\"account\",\"owner\":\"alice\",\"fields\":{{\"name\":\"{}\"}}}}",
            "x".repeat(200)
        ));
        i += 1;
    }
    body.push(']');
    assert!(body.len() > 4 * 1024 * 1024);
    let mut answers = Vec::new();
    unchanged(&f, || {
        answers.push(root.post_bytes(&f.url("/operations"), body.as_bytes()));
        answers.push(
            f.as_(&f.keys.alice)
                .post_bytes(&f.url("/check"), body.as_bytes()),
        );
    });
    root.get(&f.url("/records/big0000000?user=admin"))
        .expect_error(404, "not_found");
    // Refused with 413 (checked first), as a JSON error (checked last).
    for a in &answers {
        assert_eq!(a.status, 413, "{}", a.brief());
    }
    for a in &answers {
        a.expect_error(413, "payload_too_large");
    }
}

#[test]
fn an_unknown_route_is_404_unknown_route() {
    let f = Fixture::new();
    let anon = f.server.client(None);
    for path in [
        "/",
        "/api/v1/nope",
        "/api/v1/orgs/contoso/nope",
        "/access/v1/nope",
    ] {
        anon.get(path).expect_error(404, "unknown_route");
    }
    f.as_(&f.keys.alice)
        .post(&f.url("/records/a001/nope"), &json!({}))
        .expect_error(404, "unknown_route");
}

#[test]
fn a_wrong_method_is_405_method_not_allowed() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    unchanged(&f, || {
        alice
            .get(&f.url("/check"))
            .expect_error(405, "method_not_allowed");
        alice
            .get(&f.url("/operations"))
            .expect_error(405, "method_not_allowed");
        alice
            .raw(
                "PUT",
                &f.url("/operations"),
                &[("Content-Type", "application/json")],
                b"[]",
            )
            .expect_error(405, "method_not_allowed");
        alice
            .delete(&f.url("/records/a001"))
            .expect_error(405, "method_not_allowed");
        alice
            .post(&f.url("/revision"), &json!({}))
            .expect_error(405, "method_not_allowed");
        f.server
            .client(None)
            .delete("/healthz")
            .expect_error(405, "method_not_allowed");
        f.server
            .client(None)
            .get("/access/v1/evaluation")
            .expect_error(405, "method_not_allowed");
    });
}

#[test]
fn a_wrong_content_type_is_415() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let valid_op = json!({"op": "create", "table": "account", "id": "typed"}).to_string();
    unchanged(&f, || {
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/xml",
        ] {
            alice
                .raw(
                    "POST",
                    &f.url("/operations"),
                    &[("Content-Type", ct)],
                    valid_op.as_bytes(),
                )
                .expect_error(415, "unsupported_media_type");
            alice
                .raw(
                    "POST",
                    &f.url("/check"),
                    &[("Content-Type", ct)],
                    br#"{"privilege":"read","record":"a001"}"#,
                )
                .expect_error(415, "unsupported_media_type");
        }
        alice
            .raw(
                "POST",
                "/access/v1/evaluation",
                &[("Content-Type", "text/plain")],
                br#"{"subject":{"id":"alice"},"action":{"name":"read"},"resource":{"id":"a001"}}"#,
            )
            .expect_error(415, "unsupported_media_type");
    });
    alice
        .get(&f.url("/records/typed"))
        .expect_error(404, "not_found");
    // `application/json; charset=utf-8` is JSON.
    alice
        .raw(
            "POST",
            &f.url("/check"),
            &[("Content-Type", "application/json; charset=utf-8")],
            br#"{"privilege":"read","record":"a001"}"#,
        )
        .expect(200);
}

#[test]
fn a_bad_page_size_is_400_bad_page_size() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    unchanged(&f, || {
        for limit in ["0", "5001", "1000000"] {
            let err = alice
                .get(&f.url(&format!("/tables/account/records?limit={limit}")))
                .expect_error(400, "bad_page_size");
            assert_eq!(err["field"], json!("limit"));
        }
        let err = f
            .as_(&f.keys.audrey)
            .get(&f.url("/audit?limit=0"))
            .expect_error(400, "bad_page_size");
        assert_eq!(err["field"], json!("limit"));
        let err = alice
            .post(
                "/access/v1/search/resource",
                &json!({"subject": {"id": "alice"}, "action": {"name": "read"},
                    "resource": {"type": "account"}, "page": {"limit": 0}}),
            )
            .expect_error(400, "bad_page_size");
        assert_eq!(err["field"], json!("/page/limit"));
    });
    // The largest page size is accepted.
    alice
        .get(&f.url("/tables/account/records?limit=5000"))
        .expect(200);
}

#[test]
fn a_bad_cursor_is_400_bad_cursor() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    unchanged(&f, || {
        for cursor in ["abc", "-1", "1.5"] {
            let err = alice
                .get(&f.url(&format!("/tables/account/records?cursor={cursor}")))
                .expect_error(400, "bad_cursor");
            assert_eq!(err["field"], json!("cursor"));
        }
        let err = alice
            .post(
                "/access/v1/search/resource",
                &json!({"subject": {"id": "alice"}, "action": {"name": "read"},
                    "resource": {"type": "account"}, "page": {"next_token": "zz"}}),
            )
            .expect_error(400, "bad_cursor");
        assert_eq!(err["field"], json!("/page/next_token"));
        let err = f
            .as_(&f.keys.audrey)
            .get(&f.url("/audit?after=abc"))
            .expect_error(400, "bad_query");
        assert_eq!(err["field"], json!("after"));
        let err = f
            .as_(&f.keys.audrey)
            .get(&f.url("/audit?recrod=a001"))
            .expect_error(400, "bad_query");
        assert_eq!(err["field"], json!("recrod"));
    });
}

#[test]
fn query_string_errors_are_json_errors() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let mut failures = Vec::new();
    unchanged(&f, || {
        // A page size that is not a number, and an unknown parameter, on the routes that read
        // their query into typed parameters.
        for url in [
            f.url("/tables/account/records?limit=abc"),
            f.url("/tables/account/records?limit=-1"),
            f.url("/tables/account/records?bogus=1"),
            f.url("/records/a001?min_revision=soon"),
            f.url("/records/a001/access?bogus=1"),
            f.url("/records/a001/who-has-access?bogus=1"),
            f.url("/apps/Sales%20Hub/access?bogus=1"),
        ] {
            let resp = alice.get(&url);
            let ct = resp.header("content-type").unwrap_or_default().to_owned();
            let coded = ct.starts_with("application/json")
                && serde_json::from_slice::<Value>(&resp.body)
                    .ok()
                    .and_then(|b| b["error"]["code"].as_str().map(str::to_owned))
                    .is_some_and(|c| !c.is_empty());
            if resp.status != 400 || !coded {
                failures.push(format!("{url}: {} `{ct}` {:?}", resp.status, resp.brief()));
            }
        }
    });
    assert!(
        failures.is_empty(),
        "query-string errors that are not 400 JSON errors with a code:\n{}",
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// 6. AuthZEN
// ---------------------------------------------------------------------------------------------

fn az(user: &str, action: &str, kind: Option<&str>, id: &str) -> Value {
    let mut resource = json!({"id": id});
    if let Some(k) = kind {
        resource["type"] = json!(k);
    }
    json!({
        "subject": {"type": "user", "id": user},
        "action": {"name": action},
        "resource": resource,
    })
}

#[test]
fn authzen_evaluation() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let root = f.root();
    let contoso = [("X-Strata-Organization", "contoso")];

    let d = alice
        .post(
            "/access/v1/evaluation",
            &az("alice", "read", Some("account"), "a001"),
        )
        .expect(200);
    assert_eq!(d["decision"], json!(true));
    assert!(
        strings(&d["context"]["grants"]).contains(&"ownership".to_owned()),
        "{d}"
    );
    assert!(
        d["context"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    let d = alice
        .post("/access/v1/evaluation", &az("alice", "read", None, "s1"))
        .expect(200);
    assert_eq!(d["decision"], json!(true));
    assert_eq!(strings(&d["context"]["grants"]), vec!["share"]);
    let d = alice
        .post(
            "/access/v1/evaluation",
            &az("alice", "read", Some("account"), "c001"),
        )
        .expect(200);
    assert_eq!(d["decision"], json!(false));
    assert_eq!(d["context"]["grants"], json!([]));
    // A resource of another type, or none: denied, with a reason.
    let d = alice
        .post(
            "/access/v1/evaluation",
            &az("alice", "read", Some("contact"), "a001"),
        )
        .expect(200);
    assert_eq!(d["decision"], json!(false));
    assert!(d["context"]["reason"].as_str().unwrap().contains("contact"));
    let d = alice
        .post(
            "/access/v1/evaluation",
            &az("alice", "read", Some("account"), "nope"),
        )
        .expect(200);
    assert_eq!(d["decision"], json!(false));
    // Missing parts name the field.
    let err = alice
        .post(
            "/access/v1/evaluation",
            &json!({"action": {"name": "read"}, "resource": {"id": "a001"}}),
        )
        .expect_error(400, "invalid_body");
    assert_eq!(err["field"], json!("/subject"));
    let err = alice
        .post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "group", "id": "alice"}, "action": {"name": "read"}, "resource": {"id": "a001"}}),
        )
        .expect_error(400, "invalid_body");
    assert_eq!(err["field"], json!("/subject/type"));
    let err = alice
        .post(
            "/access/v1/evaluation",
            &json!({"subject": {"id": "alice"}, "action": {"name": "read"}, "resource": {"type": "account"}}),
        )
        .expect_error(400, "invalid_body");
    assert_eq!(err["field"], json!("/resource/id"));
    // Another user: needs prvCheckAccessOfOthers and read on that user's record (D27).
    alice
        .post("/access/v1/evaluation", &az("bob", "read", None, "a001"))
        .expect_error(403, "denied");
    let d = f
        .as_(&f.keys.audrey)
        .post("/access/v1/evaluation", &az("bob", "read", None, "a001"))
        .expect(200);
    assert_eq!(d["decision"], json!(true));

    // The root key names the organisation in a header.
    let d = root
        .post_with(
            "/access/v1/evaluation",
            &az("carol", "read", None, "c001"),
            &contoso,
        )
        .expect(200);
    assert_eq!(d["decision"], json!(true));
    let d = root
        .post_with(
            "/access/v1/evaluation",
            &az("carol", "read", None, "a001"),
            &contoso,
        )
        .expect(200);
    assert_eq!(d["decision"], json!(false));
    root.post("/access/v1/evaluation", &az("carol", "read", None, "c001"))
        .expect_error(400, "invalid_body");
    root.post_with(
        "/access/v1/evaluation",
        &az("carol", "read", None, "c001"),
        &[("X-Strata-Organization", "nope")],
    )
    .expect_error(404, "unknown_organization");
    let err = root
        .post_with(
            "/access/v1/evaluation",
            &az("nobody", "read", None, "c001"),
            &contoso,
        )
        .expect_error(404, "not_found");
    assert_eq!(err["field"], json!("/subject/id"));
}

#[test]
fn authzen_evaluations_batch_with_defaults_and_overrides() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let root = f.root();
    let contoso = [("X-Strata-Organization", "contoso")];
    let batch = json!({
        "subject": {"type": "user", "id": "alice"},
        "action": {"name": "read"},
        "resource": {"type": "account", "id": "a001"},
        "evaluations": [
            {},
            {"resource": {"type": "account", "id": "c001"}},
            {"resource": {"type": "account", "id": "s1"}},
            {"action": {"name": "delete"}, "resource": {"type": "account", "id": "s1"}},
            {"action": {"name": "delete"}},
            {"resource": {"type": "account", "id": "b1"}},
            {"action": {"name": "write"}, "resource": {"type": "account", "id": "b1"}},
            {"resource": {"type": "contact", "id": "a001"}},
        ]
    });
    let out = alice.post("/access/v1/evaluations", &batch).expect(200);
    let decisions: Vec<bool> = out["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect();
    assert_eq!(
        decisions,
        vec![true, false, true, false, true, true, false, false]
    );
    // No list: the defaults are the one evaluation.
    let out = alice
        .post("/access/v1/evaluations", &az("alice", "read", None, "c001"))
        .expect(200);
    assert_eq!(out["evaluations"].as_array().map(Vec::len), Some(1));
    assert_eq!(out["evaluations"][0]["decision"], json!(false));

    // Per-item subjects with the root key.
    let batch = json!({
        "action": {"name": "read"},
        "resource": {"type": "account", "id": "c001"},
        "evaluations": [
            {"subject": {"type": "user", "id": "alice"}},
            {"subject": {"type": "user", "id": "carol"}},
            {"subject": {"type": "user", "id": "admin"}},
            {"subject": {"type": "user", "id": "erin"}},
            {"subject": {"type": "user", "id": "audrey"}, "action": {"name": "write"}},
        ]
    });
    let out = root
        .post_with("/access/v1/evaluations", &batch, &contoso)
        .expect(200);
    let decisions: Vec<bool> = out["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect();
    assert_eq!(decisions, vec![false, true, true, false, false]);

    // An item with a bad part names it.
    let err = alice
        .post(
            "/access/v1/evaluations",
            &json!({"subject": {"id": "alice"}, "resource": {"id": "a001"},
                "evaluations": [{"action": {"name": "read"}}, {"action": {"name": "fly"}}]}),
        )
        .expect_error(400, "unknown_privilege");
    assert_eq!(err["field"], json!("/evaluations/1/action/name"));
    let err = alice
        .post(
            "/access/v1/evaluations",
            &json!({"subject": {"id": "alice"}, "evaluations": [{"resource": {"id": "a001"}}]}),
        )
        .expect_error(400, "invalid_body");
    assert_eq!(err["field"], json!("/evaluations/0/action"));
}

#[test]
fn authzen_search_resource_pages() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let root = f.root();
    let contoso = [("X-Strata-Organization", "contoso")];
    let expected = alice_readable();
    for limit in [1, 13, 100, 5000] {
        if limit == 1 {
            // One result per page: a page per readable record.
            let list = all_search_pages(&alice, &[], "alice", "read", limit);
            assert_eq!(list.len(), expected.len());
            continue;
        }
        let list = all_search_pages(&alice, &[], "alice", "read", limit);
        assert_eq!(assert_unique(&list), expected, "limit {limit}");
    }
    // The same set as the native list.
    let (native, _) = all_pages(&alice, &f.url("/tables/account/records"), "limit=100");
    assert_eq!(
        all_search_pages(&alice, &[], "alice", "read", 100),
        native,
        "search and list agree, in order"
    );
    // Another privilege.
    let deletable = all_search_pages(&alice, &[], "alice", "delete", 50);
    let mine: BTreeSet<String> = (0..SALES_RECORDS).map(sales_key).collect();
    assert_eq!(assert_unique(&deletable), mine);
    // With the root key, any user.
    let carols = all_search_pages(&root, &contoso, "carol", "read", 30);
    let mut carol_expected: BTreeSet<String> = (0..SUPPORT_RECORDS).map(support_key).collect();
    carol_expected.insert("s1".to_owned());
    assert_eq!(assert_unique(&carols), carol_expected);
    // Default page size.
    let page = alice
        .post(
            "/access/v1/search/resource",
            &json!({"subject": {"id": "alice"}, "action": {"name": "read"}, "resource": {"type": "account"}}),
        )
        .expect(200);
    assert_eq!(page["results"].as_array().map(Vec::len), Some(100));
    assert!(
        page["page"]["next_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    // Errors.
    alice
        .post(
            "/access/v1/search/resource",
            &json!({"subject": {"id": "alice"}, "action": {"name": "read"}, "resource": {"type": "nope"}}),
        )
        .expect_error(404, "not_found");
    let err = alice
        .post(
            "/access/v1/search/resource",
            &json!({"subject": {"id": "alice"}, "action": {"name": "read"}, "resource": {}}),
        )
        .expect_error(400, "invalid_body");
    assert_eq!(err["field"], json!("/resource/type"));
    root.post(
        "/access/v1/search/resource",
        &json!({"subject": {"id": "carol"}, "action": {"name": "read"}, "resource": {"type": "account"}}),
    )
    .expect_error(400, "invalid_body");
}

#[test]
fn concurrent_writes_get_distinct_increasing_revisions() {
    let f = Fixture::new();
    let start = f.root().revision(&f.org);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let alice = f.as_(&f.keys.alice);
            let carol = f.as_(&f.keys.carol);
            let org = f.org.clone();
            std::thread::spawn(move || {
                let mut revs = Vec::new();
                for i in 0..5 {
                    revs.push(alice.write(
                        &org,
                        &json!({"op": "update", "record": sales_key(t), "fields": {"name": format!("t{t} i{i}")}}),
                    ));
                    // A refused write in between changes nothing.
                    carol
                        .post(
                            &format!("/api/v1/orgs/{org}/operations"),
                            &json!({"op": "delete", "record": sales_key(t)}),
                        )
                        .expect_error(403, "denied");
                }
                revs
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        let revs = t.join().unwrap();
        assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");
        all.extend(revs);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (start + 1..=start + 40).collect();
    assert_eq!(all, expected, "every accepted write has its own revision");
    assert_eq!(f.root().revision(&f.org), start + 40);
    let verify = f
        .as_(&f.keys.audrey)
        .get(&f.url("/audit/verify"))
        .expect(200);
    assert_eq!(verify["intact"], json!(true));
}

// ---------------------------------------------------------------------------------------------
// 7. Restart
// ---------------------------------------------------------------------------------------------

/// What the tests compare across a restart.
fn snapshot(server: &Server, keys: &common::Keys) -> Value {
    let alice = server.client(Some(&keys.alice));
    let audrey = server.client(Some(&keys.audrey));
    let root = server.root();
    let (list, pages) = all_pages(
        &alice,
        "/api/v1/orgs/contoso/tables/account/records",
        "limit=40",
    );
    json!({
        "revision": root.revision("contoso"),
        "orgs": root.get("/api/v1/orgs").expect(200),
        "check": alice.post("/api/v1/orgs/contoso/check", &json!({"privilege": "write", "record": "a001"})).expect(200),
        "deny": alice.post("/api/v1/orgs/contoso/check", &json!({"privilege": "read", "record": "c001"})).expect(200),
        "explain": alice.post("/api/v1/orgs/contoso/explain", &json!({"privilege": "read", "record": "s1"})).expect(200),
        "record": alice.get("/api/v1/orgs/contoso/records/r1").expect(200),
        "access": alice.get("/api/v1/orgs/contoso/records/a001/access").expect(200),
        "who": audrey.get("/api/v1/orgs/contoso/records/a001/who-has-access").expect(200),
        "list": list,
        "pages": pages,
        "app": alice.get("/api/v1/orgs/contoso/apps/Sales%20Hub/access").expect(200),
        "audit": audrey.get("/api/v1/orgs/contoso/audit?limit=5000").expect(200),
        "verify": audrey.get("/api/v1/orgs/contoso/audit/verify").expect(200),
        "az": alice.post("/access/v1/evaluation", &az("alice", "read", None, "r1")).expect(200),
    })
}

#[test]
fn a_restart_on_the_same_file_answers_the_same() {
    let db = Db::new();
    let server = Server::start(&db.path);
    let keys = setup_org(&server, "contoso", "Contoso");
    let alice = server.client(Some(&keys.alice));
    alice.write(
        "contoso",
        &json!([
            {"op": "create", "table": "account", "id": "r1", "fields": {"name": "Restart"}},
            {"op": "update", "record": "r1", "fields": {"name": "Restarted"}},
            {"op": "share", "record": "r1", "principal": "carol", "rights": ["read", "write"]},
        ]),
    );
    // A refused write before the restart leaves no trace after it.
    alice
        .post(
            "/api/v1/orgs/contoso/operations",
            &json!({"op": "delete", "record": "c001"}),
        )
        .expect_error(403, "denied");
    let before = snapshot(&server, &keys);
    assert_eq!(before["verify"]["intact"], json!(true));
    server.stop();

    let server = Server::start(&db.path);
    let after = snapshot(&server, &keys);
    for (k, v) in before.as_object().unwrap() {
        assert_eq!(&after[k.as_str()], v, "`{k}` differs after the restart");
    }
    // Writes go on from the same revision, and the chain stays intact.
    let rev = before["revision"].as_u64().unwrap();
    let next = server.client(Some(&keys.alice)).write(
        "contoso",
        &json!({"op": "update", "record": "r1", "fields": {"name": "After"}}),
    );
    assert_eq!(next, rev + 1);
    let verify = server
        .client(Some(&keys.audrey))
        .get("/api/v1/orgs/contoso/audit/verify")
        .expect(200);
    assert_eq!(verify["intact"], json!(true));
    assert_eq!(
        verify["entries"].as_u64().unwrap(),
        before["verify"]["entries"].as_u64().unwrap() + 1
    );
    server.stop();

    // And once more, after that write.
    let server = Server::start(&db.path);
    assert_eq!(server.root().revision("contoso"), rev + 1);
    let rec = server
        .client(Some(&keys.carol))
        .get("/api/v1/orgs/contoso/records/r1")
        .expect(200);
    assert_eq!(rec["fields"]["name"], json!("After"));
    server.stop();
}
