//! The security suite (issue 9): each finding of the attack on the server as a regression test
//! that fails on the code before its fix. Engine-level findings (column security on every
//! write, team membership, self-promotion, identity columns) are scenario files
//! (`tests/scenarios/security-*.yaml`); the operation log's integrity is in the store's
//! conformance suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

use std::collections::BTreeSet;

use common::{Fixture, SALES_RECORDS};
use serde_json::{Value, json};

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Adds a role that impersonates (and reads every account) and gives it to carol.
fn carol_impersonates(f: &Fixture) {
    f.root().write(
        &f.org,
        &json!([
            {"op": "add_role", "name": "Impersonator", "misc": ["prvActOnBehalfOfAnotherUser"],
             "privileges": {"account": {"read": "organization"}}},
            {"op": "assign_role", "principal": "carol", "role": "Impersonator"}
        ]),
    );
}

/// Finding 1: asking as another user returned that user's data (`?user=admin`).
#[test]
fn data_is_read_as_the_caller_never_as_a_named_user() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    // A record alice cannot read, and a secured column she cannot read, through `?user=`.
    for path in [
        "/records/c001?user=admin",
        "/records/a001?user=admin",
        "/records/a001?user=bob",
        "/tables/account/records?user=admin",
        "/tables/account/records?user=admin&count=true",
    ] {
        let err = alice.get(&f.url(path)).expect_error(403, "denied");
        assert_eq!(err["field"], json!("user"), "{path}");
    }
    // Naming herself is allowed, and changes nothing.
    let own = alice.get(&f.url("/records/a001?user=alice")).expect(200);
    assert_eq!(own["fields"]["creditlimit"], Value::Null);
    // Questions about another user's access need prvCheckAccessOfOthers (D27).
    for (method, path, body) in [
        (
            "POST",
            "/check",
            Some(json!({"user": "admin", "privilege": "read", "record": "c001"})),
        ),
        (
            "POST",
            "/explain",
            Some(json!({"user": "admin", "privilege": "read", "record": "c001"})),
        ),
        ("GET", "/records/c001/access?user=admin", None),
        ("GET", "/apps/Sales%20Hub/access?user=admin", None),
        ("GET", "/users/admin/privileges", None),
        ("GET", "/records/a001/who-has-access", None),
    ] {
        let resp = match body {
            Some(b) => alice.post(&f.url(path), &b),
            None => alice.raw(method, &f.url(path), &[], b""),
        };
        resp.expect_error(403, "denied");
    }
    let az = json!({"subject": {"type": "user", "id": "admin"}, "action": {"name": "read"},
        "resource": {"type": "account", "id": "c001"}});
    alice
        .post("/access/v1/evaluation", &az)
        .expect_error(403, "denied");
    alice
        .post(
            "/access/v1/search/resource",
            &json!({"subject": {"type": "user", "id": "admin"}, "action": {"name": "read"},
                "resource": {"type": "account"}}),
        )
        .expect_error(403, "denied");
    // The auditor holds prvCheckAccessOfOthers and reads users: she may ask — and gets
    // decisions, never data: `?user=` on data is refused to her too.
    let audrey = f.as_(&f.keys.audrey);
    let d = audrey
        .post(
            &f.url("/check"),
            &json!({"user": "bob", "privilege": "read", "record": "a001"}),
        )
        .expect(200);
    assert_eq!(d["allowed"], json!(true));
    audrey
        .get(&f.url("/records/a001?user=bob"))
        .expect_error(403, "denied");
    // The root key names the user it reads as.
    let as_bob = f.root().get(&f.url("/records/a001?user=bob")).expect(200);
    assert_eq!(as_bob["fields"]["creditlimit"], json!(1001));
    f.root()
        .get(&f.url("/records/a001"))
        .expect_error(400, "invalid_body");
}

/// D7 and D27: a caller with prvActOnBehalfOfAnotherUser reads as the impersonated user,
/// intersected with their own view.
#[test]
fn impersonated_reads_are_the_intersection_of_both_views() {
    let f = Fixture::new();
    let carol = f.as_(&f.keys.carol);
    // A GET by carol on behalf of `user`.
    let get_as =
        |path: &str, user: &str| carol.raw("GET", &f.url(path), &[("MSCRMCallerID", user)], b"");
    // Without the privilege: refused.
    get_as("/records/a001", "bob").expect_error(403, "denied");
    carol_impersonates(&f);
    // Bob reads creditlimit (Credit Viewers), carol does not: impersonated, it is null.
    let r = get_as("/records/a001", "bob").expect(200);
    assert_eq!(r["fields"]["creditlimit"], Value::Null);
    // carol reads c001 herself, bob (Sales) does not: impersonated, refused.
    get_as("/records/c001", "bob").expect_error(403, "denied");
    // A list is what both read: bob's view (Sales), within carol's (every account).
    let page = get_as("/tables/account/records?limit=5000&count=true", "bob").expect(200);
    let mut bobs = common::alice_readable();
    bobs.remove("s1");
    assert_eq!(strings(&page["records"]), bobs);
    assert_eq!(page["count"], json!(SALES_RECORDS + 1));
    // Filtering on a column the impersonator cannot read finds nothing.
    let page = get_as(
        "/tables/account/records?filter=creditlimit%20gt%200&count=true",
        "bob",
    )
    .expect(200);
    assert_eq!(page["count"], json!(0));
    // Impersonating a disabled user, or one that does not exist.
    get_as("/records/a001", "erin").expect_error(403, "user_disabled");
    get_as("/records/a001", "ghost").expect_error(404, "not_found");
}

/// Finding 2: a nested filter overflowed the stack and killed the process.
#[test]
fn deep_and_long_filters_are_errors_and_the_server_lives() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let parens = format!("{}name%20eq%201{}", "(".repeat(2_700), ")".repeat(2_700));
    let err = alice
        .get(&f.url(&format!("/tables/account/records?filter={parens}")))
        .expect_error(400, "bad_filter");
    assert!(
        err["message"].as_str().unwrap().contains("deeper than 32"),
        "{err}"
    );
    let nots = format!("{}name%20eq%201", "not%20".repeat(1_500));
    alice
        .get(&f.url(&format!("/tables/account/records?filter={nots}")))
        .expect_error(400, "bad_filter");
    // 8,000 `not`: past the URI limit, answered 414 with a JSON error (and past hyper's own
    // limit too: `request_heads_over_the_limits_are_json_errors`).
    let nots = format!("{}name%20eq%201", "not%20".repeat(8_000));
    let err = alice
        .get(&f.url(&format!("/tables/account/records?filter={nots}")))
        .expect_error(414, "uri_too_long");
    assert!(err["message"].as_str().unwrap().contains("bytes"));
    // Finding 9: 1,500 `contains` terms are refused before any work (past the URI limit, and
    // past the filter's 500 comparisons).
    let many = vec!["contains(name,'x')"; 1_500].join("%20or%20");
    alice
        .get(&f.url(&format!("/tables/account/records?filter={many}")))
        .expect_error(414, "uri_too_long");
    let many = vec!["name%20eq%201"; 501].join("%20or%20");
    let err = alice
        .get(&f.url(&format!("/tables/account/records?filter={many}")))
        .expect_error(400, "bad_filter");
    assert!(err["message"].as_str().unwrap().contains("500 comparisons"));
    // A deep JSON body.
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    alice
        .post_bytes(&f.url("/operations"), deep.as_bytes())
        .expect_error(400, "invalid_body");
    f.server.client(None).get("/healthz").expect(200);
    alice.get(&f.url("/records/a001")).expect(200);
}

/// A request head over the limits is answered with a JSON error and a stable code, whichever
/// layer refuses it: the server's limits (a URI over 16 KiB, headers over 32 KiB) and hyper's
/// own (a URI over 65,534 bytes, a head over its read buffer, more than 100 header fields, a head
/// that does not parse), which used to be answered with a bare status and no body.
#[test]
fn request_heads_over_the_limits_are_json_errors() {
    let f = Fixture::new();
    let addr = f.server.addr;
    let get = |target: &str, fields: &str| {
        let mut responses = common::exchange(
            addr,
            format!("GET {target} HTTP/1.1\r\nHost: strata\r\n{fields}Connection: close\r\n\r\n")
                .into_bytes(),
        );
        assert_eq!(responses.len(), 1);
        responses.remove(0)
    };
    let list = f.url("/tables/account/records");
    // The server's limits.
    let filter = format!("{list}?filter={}", "a".repeat(20_000));
    get(&filter, "").expect_error(414, "uri_too_long");
    let big = format!("X-Big: {}\r\n", "b".repeat(40_000));
    let err = get("/healthz", &big).expect_error(431, "headers_too_large");
    assert!(err["message"].as_str().unwrap().contains("32768"), "{err}");
    // Hyper's: a URI it will not parse, a head past its buffer, too many fields.
    let filter = format!("{list}?filter={}", "a".repeat(70_000));
    let err = get(&filter, "").expect_error(414, "uri_too_long");
    assert!(err["message"].as_str().unwrap().contains("16384"), "{err}");
    // Past hyper's read buffer: answered by hyper (431) or, when the connection builder's buffer
    // takes it, by the server's own URI limit (414); a JSON error either way.
    let filter = format!("{list}?filter={}", "a".repeat(500_000));
    let answer = get(&filter, "");
    match answer.status {
        431 => {
            answer.expect_error(431, "headers_too_large");
        }
        _ => {
            answer.expect_error(414, "uri_too_long");
        }
    }
    let fields: String = (0..120).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    get("/healthz", &fields).expect_error(431, "headers_too_large");
    get("/healthz", "Bad Header\r\n").expect_error(400, "invalid_request");
    // After an answer on the same connection (pipelined requests).
    let mut pipelined = b"GET /healthz HTTP/1.1\r\nHost: strata\r\n\r\n".to_vec();
    pipelined.extend_from_slice(
        format!(
            "GET /healthz?{} HTTP/1.1\r\nHost: strata\r\n\r\n",
            "a".repeat(70_000)
        )
        .as_bytes(),
    );
    let responses = common::exchange(addr, pipelined);
    assert_eq!(responses.len(), 2, "{responses:?}");
    responses[0].expect(200);
    responses[1].expect_error(414, "uri_too_long");
    // The server goes on.
    f.as_(&f.keys.alice)
        .get(&f.url("/records/a001"))
        .expect(200);
}

/// Finding 11: duplicate JSON keys were taken (last wins), media types were case-sensitive,
/// cursors were bound by an unkeyed hash.
#[test]
fn strict_json_media_types_and_signed_cursors() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let before = alice.revision(&f.org);
    let err = alice
        .post_bytes(
            &f.url("/operations"),
            br#"{"op":"update","op":"delete","record":"a001","fields":{}}"#,
        )
        .expect_error(400, "invalid_body");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("duplicate key `op`")
    );
    assert_eq!(alice.revision(&f.org), before, "nothing written");
    alice.get(&f.url("/records/a001")).expect(200);
    // Upper-case media type, with parameters.
    let r = alice.raw(
        "POST",
        &f.url("/check"),
        &[("Content-Type", "APPLICATION/JSON; charset=UTF-8")],
        br#"{"privilege":"read","record":"a001"}"#,
    );
    assert_eq!(r.expect(200)["allowed"], json!(true));
    alice
        .raw(
            "POST",
            &f.url("/check"),
            &[("Content-Type", "text/plain")],
            br#"{"privilege":"read","record":"a001"}"#,
        )
        .expect_error(415, "unsupported_media_type");
    // Cursors: signed, bound to the query and the reader.
    let page = alice
        .get(&f.url("/tables/account/records?limit=2"))
        .expect(200);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    alice
        .get(&f.url(&format!("/tables/account/records?limit=2&cursor={cursor}")))
        .expect(200);
    let bob = f.as_(&f.keys.bob);
    bob.get(&f.url(&format!("/tables/account/records?limit=2&cursor={cursor}")))
        .expect_error(400, "bad_cursor");
    // The same position, re-encoded without the key: refused.
    let (_, body) = cursor.split_once('.').unwrap();
    let forged = format!("{}.{body}", "0".repeat(32));
    alice
        .get(&f.url(&format!("/tables/account/records?limit=2&cursor={forged}")))
        .expect_error(400, "bad_cursor");
}

/// Finding 10: auditors read secured values they could not read on the record, and the audit
/// of records they could not read; user changes lacked table, record and old values; root-key
/// writes had no actor.
#[test]
fn the_audit_is_read_with_record_access_and_column_security() {
    let f = Fixture::new();
    let root = f.root();
    root.write(
        &f.org,
        &json!([
            {"op": "add_table", "name": "secret", "columns": [{"name": "name"}]},
            {"op": "set_audit", "enabled": true, "tables": ["account", "secret", "systemuser"]},
            {"op": "insert_record", "id": "k1", "table": "secret", "owner": "admin",
             "fields": {"name": "launch codes"}}
        ]),
    );
    let admin = f.as_(&f.keys.admin);
    admin.write(
        &f.org,
        &json!([
            {"op": "update", "record": "c001", "fields": {"creditlimit": 123456}},
            {"op": "update", "record": "k1", "fields": {"name": "new codes"}},
            {"op": "set_user_fields", "user": "bob", "fields": {"jobtitle": "Lead"}}
        ]),
    );
    let audrey = f.as_(&f.keys.audrey);
    let entries = audrey.get(&f.url("/audit?limit=5000")).expect(200)["entries"].clone();
    let entries = entries.as_array().unwrap();
    let update = entries
        .iter()
        .find(|e| e["action"] == "update" && e["record"] == "c001")
        .expect("the auditor sees the update of a record she reads");
    assert_eq!(
        update["detail"]["creditlimit"],
        json!({"old": null, "new": null}),
        "a secured value the auditor cannot read: {update}"
    );
    assert!(
        !entries.iter().any(|e| e["record"] == "k1"),
        "the auditor cannot read k1, so not its audit either"
    );
    let user = entries
        .iter()
        .find(|e| e["action"] == "set_user_fields")
        .expect("user field changes are audited");
    assert_eq!(user["table"], json!("systemuser"));
    assert_eq!(user["record"], json!("bob"));
    assert_eq!(
        user["detail"]["jobtitle"],
        json!({"old": null, "new": "Lead"})
    );
    // A System Administrator sees everything, values included.
    let all = admin.get(&f.url("/audit?limit=5000")).expect(200)["entries"].clone();
    let all = all.as_array().unwrap();
    let update = all
        .iter()
        .find(|e| e["action"] == "update" && e["record"] == "c001")
        .unwrap();
    assert_eq!(update["detail"]["creditlimit"]["new"], json!(123456));
    let by_root = all
        .iter()
        .find(|e| e["action"] == "insert_record" && e["record"] == "k1")
        .expect("the root key's insert is audited, about its record");
    assert_eq!(by_root["user"], json!("#root"));
    assert_eq!(by_root["table"], json!("secret"));
    // The organisation's creation by the root key is the first entry.
    assert_eq!(all[0]["action"], json!("create_organization"), "{}", all[0]);
    assert_eq!(all[0]["user"], json!("#root"));
}

/// Finding 11 (fail open): an action naming a user who does not exist ran as the system.
#[test]
fn an_unknown_acting_user_is_an_error_never_the_system() {
    let f = Fixture::new();
    let root = f.root();
    let before = root.revision(&f.org);
    let resp = root.post(
        &f.url("/operations"),
        &json!({"op": "delete", "as": "ghost", "record": "a001"}),
    );
    assert!(resp.status == 404 || resp.status == 400, "{}", resp.brief());
    assert_eq!(root.revision(&f.org), before);
    f.as_(&f.keys.alice)
        .get(&f.url("/records/a001"))
        .expect(200);
}

/// Findings 8 and 9: a refused batch replayed the whole log under the write lock, and heavy
/// filters stalled the server; readers blocked async workers on a lock held across a commit.
/// Attackers in one organisation send refused batches and the heaviest filters the limits
/// allow while another organisation's checks are timed: their latency stays bounded.
#[test]
fn refused_batches_and_heavy_filters_do_not_stall_other_organisations() {
    let f = Fixture::new();
    let other = common::setup_org(&f.server, "other", "Other");
    let alice = f.as_(&f.keys.alice);
    let before = alice.revision(&f.org);
    // A batch whose second operation is refused changes nothing, in memory or in the store.
    let refused = json!([
        {"op": "update", "record": "a001", "fields": {"name": "changed"}},
        {"op": "delete", "record": "c001"}
    ]);
    let err = alice
        .post(&f.url("/operations"), &refused)
        .expect_error(403, "denied");
    assert_eq!(err["field"], json!("/1"));
    assert_eq!(alice.revision(&f.org), before);
    let a001 = alice.get(&f.url("/records/a001")).expect(200);
    assert_ne!(a001["fields"]["name"], json!("changed"));

    let heavy = format!(
        "/tables/account/records?count=true&orderby=name%20desc&filter={}",
        vec!["contains(name,'zz')"; 100].join("%20or%20")
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut attackers = Vec::new();
    for kind in 0..2 {
        let (alice, stop) = (alice.clone(), std::sync::Arc::clone(&stop));
        let (url, heavy, refused) = (f.url("/operations"), f.url(&heavy), refused.clone());
        attackers.push(std::thread::spawn(move || {
            let mut sent = 0u32;
            let mut micros = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && sent < 5_000 {
                let start = std::time::Instant::now();
                if kind == 0 {
                    alice.post(&url, &refused).expect_error(403, "denied");
                } else {
                    alice.get(&heavy).expect(200);
                }
                micros.push(start.elapsed().as_micros());
                sent += 1;
            }
            micros.sort_unstable();
            (kind, micros)
        }));
    }
    let admin = f.as_(&other.admin);
    let timed = |n: usize| {
        let mut latencies = Vec::with_capacity(n);
        for _ in 0..n {
            let start = std::time::Instant::now();
            admin
                .post(
                    "/api/v1/orgs/other/check",
                    &json!({"privilege": "read", "record": "a001"}),
                )
                .expect(200);
            latencies.push(start.elapsed().as_micros());
        }
        latencies.sort_unstable();
        latencies
    };
    // Let the attack get going first.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut latencies = Vec::new();
    for _ in 0..3_000 {
        let start = std::time::Instant::now();
        admin
            .post(
                "/api/v1/orgs/other/check",
                &json!({"privilege": "read", "record": "a001"}),
            )
            .expect(200);
        latencies.push(start.elapsed().as_micros());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    latencies.sort_unstable();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[latencies.len() * 99 / 100];
    for a in attackers {
        let (kind, micros) = a.join().unwrap();
        let what = if kind == 0 {
            "refused 2-op batch"
        } else {
            "100-term filter, counted"
        };
        if !micros.is_empty() {
            println!(
                "attacker ({what}): {} requests, p50 {} µs, p99 {} µs",
                micros.len(),
                micros[micros.len() / 2],
                micros[micros.len() * 99 / 100]
            );
        }
    }
    let quiet = timed(1_000);
    println!(
        "other organisation's checks under attack: p50 {p50} µs, p99 {p99} µs; without the attack: p50 {} µs, p99 {} µs",
        quiet[quiet.len() / 2],
        quiet[quiet.len() * 99 / 100]
    );
    assert!(p99 < 250_000, "p99 {p99} µs");
    assert_eq!(
        alice.revision(&f.org),
        before,
        "refused batches wrote nothing"
    );
}

/// Column security over every way a value can leave (D9): a record read, a list's filter and
/// order, an explanation, the audit. alice holds no profile for `account.creditlimit`; bob is
/// in Credit Viewers.
#[test]
fn a_secured_column_leaves_by_no_path() {
    let f = Fixture::new();
    let (alice, bob) = (f.as_(&f.keys.alice), f.as_(&f.keys.bob));
    // Read: null, indistinguishable from a real null.
    let r = alice.get(&f.url("/records/a001")).expect(200);
    assert_eq!(r["fields"]["creditlimit"], Value::Null);
    assert_eq!(
        bob.get(&f.url("/records/a001")).expect(200)["fields"]["creditlimit"],
        json!(1001)
    );
    // Filter: nothing matches a value alice cannot read (bob, reading the same records, finds them).
    let q = "/tables/account/records?count=true&filter=creditlimit%20ge%201000";
    assert_eq!(alice.get(&f.url(q)).expect(200)["count"], json!(0));
    assert_eq!(
        bob.get(&f.url(q)).expect(200)["count"],
        json!(SALES_RECORDS)
    );
    let q = "/tables/account/records?count=true&filter=creditlimit%20eq%201001";
    assert_eq!(alice.get(&f.url(q)).expect(200)["count"], json!(0));
    assert_eq!(bob.get(&f.url(q)).expect(200)["count"], json!(1));
    // Order: for alice every value is null, so both directions give the same page.
    let page = |c: &common::Client, dir: &str| {
        c.get(&f.url(&format!(
            "/tables/account/records?limit=5&orderby=creditlimit%20{dir}"
        )))
        .expect(200)["records"]
            .clone()
    };
    assert_eq!(page(&alice, "asc"), page(&alice, "desc"));
    assert_ne!(page(&bob, "asc"), page(&bob, "desc"));
    // An explanation names paths, never values.
    let ex = alice
        .post(
            &f.url("/explain"),
            &json!({"privilege": "read", "record": "a149"}),
        )
        .expect(200);
    assert!(!ex.to_string().contains("1149"), "{ex}");
    // The audit: covered by the_audit_is_read_with_record_access_and_column_security.
}

/// Cursors are signed with a key derived from the store's audit key: a second server on the
/// same database accepts the first one's cursors (several nodes behind one address).
#[test]
fn another_node_on_the_same_database_accepts_a_cursor() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let page = alice
        .get(&f.url("/tables/account/records?limit=2"))
        .expect(200);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let second = common::Server::start(&f._db.path);
    let next = second
        .client(Some(&f.keys.alice))
        .get(&f.url(&format!("/tables/account/records?limit=2&cursor={cursor}")))
        .expect(200);
    let again = alice
        .get(&f.url(&format!("/tables/account/records?limit=2&cursor={cursor}")))
        .expect(200);
    assert_eq!(next["records"], again["records"]);
}

/// Findings 3, 5 and 6 over HTTP: a user with Write on every user record and on teams cannot
/// take over an identity, disable or move the administrator, promote herself, or join a team
/// that holds System Administrator.
#[test]
fn no_escalation_through_identity_users_or_teams() {
    let f = Fixture::new();
    f.root().write(
        &f.org,
        &json!([
            {"op": "add_role", "name": "HR", "privileges": {
                "systemuser": {"read": "organization", "write": "organization"},
                "team": {"read": "organization", "write": "organization"}}},
            {"op": "assign_role", "principal": "carol", "role": "HR"},
            {"op": "add_team", "name": "Admins", "business_unit": "Contoso"},
            {"op": "assign_role", "principal": "team:Admins", "role": "Admin"}
        ]),
    );
    let carol = f.as_(&f.keys.carol);
    let before = carol.revision(&f.org);
    for op in [
        json!({"op": "set_user_fields", "user": "admin", "fields": {"azureactivedirectoryobjectid": "carol-oid"}}),
        json!({"op": "set_user_fields", "user": "carol", "fields": {"azureactivedirectoryobjectid": "admin-oid"}}),
        json!({"op": "set_user_enabled", "user": "admin", "enabled": false}),
        json!({"op": "move_user", "user": "carol", "business_unit": "Contoso"}),
        json!({"op": "move_user", "user": "admin", "business_unit": "Support"}),
        json!({"op": "set_manager", "user": "admin", "manager": "carol"}),
        json!({"op": "add_team_member", "team": "Admins", "user": "carol"}),
        json!({"op": "add_team_member", "team": "Admins", "user": "alice"}),
        json!({"op": "assign_role", "principal": "carol", "role": "HR"}),
    ] {
        let resp = carol.post(&f.url("/operations"), &op);
        assert_eq!(resp.status, 403, "{op}: {}", resp.brief());
        assert_eq!(resp.json()["error"]["code"], json!("denied"), "{op}");
    }
    assert_eq!(carol.revision(&f.org), before, "nothing was written");
    // What HR may still do: edit an ordinary column of a user who holds less than she does.
    carol.write(
        &f.org,
        &json!({"op": "set_user_fields", "user": "erin", "fields": {"jobtitle": "Clerk"}}),
    );
}

/// AuthZEN search tokens are signed and bound to their query like list cursors: a bare record
/// number, or another subject's token, is refused.
#[test]
fn authzen_search_tokens_are_signed() {
    let f = Fixture::new();
    let admin = f.as_(&f.keys.admin);
    let search = |subject: &str, token: Option<&str>| {
        let mut body = json!({"subject": {"type": "user", "id": subject}, "action": {"name": "read"},
            "resource": {"type": "account"}, "page": {"limit": 2}});
        if let Some(t) = token {
            body["page"]["next_token"] = json!(t);
        }
        admin.post("/access/v1/search/resource", &body)
    };
    let first = search("alice", None).expect(200);
    let token = first["page"]["next_token"].as_str().unwrap().to_owned();
    assert!(!token.is_empty());
    search("alice", Some(&token)).expect(200);
    search("bob", Some(&token)).expect_error(400, "bad_cursor");
    search("alice", Some("5")).expect_error(400, "bad_cursor");
}

/// A large AuthZEN batch (decided on a blocking thread) answers every evaluation, in order, and
/// a question about another user inside it is still refused.
#[test]
fn a_large_authzen_batch_is_answered_whole() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let evaluations: Vec<Value> = (0..100)
        .map(|i| json!({"resource": {"type": "account", "id": format!("a{:03}", i % 150)}}))
        .collect();
    let body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
        "evaluations": evaluations});
    let answer = alice.post("/access/v1/evaluations", &body).expect(200);
    let decisions = answer["evaluations"].as_array().unwrap();
    assert_eq!(decisions.len(), 100);
    assert!(decisions.iter().all(|d| d["decision"] == json!(true)));
    let mut body = body;
    body["evaluations"][99]["subject"] = json!({"type": "user", "id": "bob"});
    let err = alice
        .post("/access/v1/evaluations", &body)
        .expect_error(403, "denied");
    assert_eq!(err["field"], json!("/evaluations/99/subject/id"));
}
