//! The administrator's app and column questions over HTTP (D51–D53): the apps, who can open
//! one, why a user cannot, the smallest role set, who can read a column, column checks, and
//! explain's granting roles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared fixture")]
mod common;

use common::Fixture;
use serde_json::json;

fn workspace(f: &Fixture) {
    f.root().write(
        &f.org,
        &json!([
            {"op": "add_table", "name": "incident"},
            {"op": "add_role", "name": "App Profile User"},
            {"op": "add_role", "name": "Customer Service Representative", "privileges": {"incident": {
                "create": "user", "read": "business_unit", "write": "user", "append": "user", "append_to": "user"}}},
            {"op": "add_role", "name": "Sales Everything", "business_unit": "Sales", "privileges": {"incident": {
                "read": "organization", "write": "organization", "append": "organization", "append_to": "organization"}}},
            {"op": "add_app", "name": "Customer Service Workspace", "roles": ["App Profile User"]},
            {"op": "set_app_needs", "app": "Customer Service Workspace", "needs": {"incident": {
                "read": "user", "write": "user", "append": "user", "append_to": "user"}}},
            {"op": "add_team", "name": "Desk", "business_unit": "Support"},
            {"op": "assign_role", "principal": "team:Desk", "role": "App Profile User"},
        ]),
    );
}

#[test]
fn apps_who_can_open_why_not_and_the_smallest_role_set() {
    let f = Fixture::new();
    workspace(&f);
    let admin = f.as_(&f.keys.admin);
    let alice = f.as_(&f.keys.alice);
    let audrey = f.as_(&f.keys.audrey);

    let apps = alice.get(&f.url("/apps")).expect(200);
    assert_eq!(apps["apps"][0]["name"], json!("Sales Hub"));
    assert_eq!(apps["apps"][0]["roles"], json!(["Rep"]));
    assert_eq!(apps["apps"][1]["name"], json!("Customer Service Workspace"));
    assert_eq!(
        apps["apps"][1]["needs"],
        json!([
            {"table": "incident", "privilege": "read", "depth": "user"},
            {"table": "incident", "privilege": "write", "depth": "user"},
            {"table": "incident", "privilege": "append", "depth": "user"},
            {"table": "incident", "privilege": "append_to", "depth": "user"},
        ])
    );

    // Who can open: System Administrators and the Rep holders, each with how.
    let hub = audrey.get(&f.url("/apps/Sales%20Hub")).expect(200);
    let users: Vec<(String, String)> = hub["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["user"].as_str().unwrap().to_owned(),
                u["via"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            ("admin".to_owned(), "system_administrator".to_owned()),
            ("alice".to_owned(), "direct".to_owned()),
            ("bob".to_owned(), "direct".to_owned()),
        ]
    );
    alice
        .get(&f.url("/apps/Sales%20Hub"))
        .expect_error(403, "denied");
    alice
        .get(&f.url("/apps/Nope"))
        .expect_error(404, "not_found");

    // Why carol cannot open the workspace: no associated role, and every need unmet.
    let why = admin
        .get(&f.url("/apps/Customer%20Service%20Workspace/access?user=carol"))
        .expect(200);
    assert_eq!(why["allowed"], json!(false));
    assert_eq!(why["reasons"][0]["code"], json!("no_associated_role"));
    assert_eq!(why["reasons"][0]["roles"], json!(["App Profile User"]));
    assert!(why["reason"].as_str().unwrap().contains("App Profile User"));
    assert_eq!(why["missing"].as_array().unwrap().len(), 4);
    assert_eq!(why["missing"][0]["held"], json!("none"));
    // Through a team she opens it, but still cannot do its work.
    f.root().write(
        &f.org,
        &json!([{"op": "add_team_member", "team": "Desk", "user": "carol"}]),
    );
    let why = admin
        .get(&f.url("/apps/Customer%20Service%20Workspace/access?user=carol"))
        .expect(200);
    assert_eq!(why["allowed"], json!(true));
    assert_eq!(why["access"]["via"], json!("team"));
    assert_eq!(why["access"]["team"], json!("Desk"));
    assert_eq!(why["missing"].as_array().unwrap().len(), 4);
    // A disabled user: every reason.
    let why = admin
        .get(&f.url("/apps/Customer%20Service%20Workspace/access?user=erin"))
        .expect(200);
    let codes: Vec<&str> = why["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["user_disabled", "no_associated_role"]);

    // The smallest set: carol (Support) now needs only the representative role; bob (Sales)
    // needs the app's role and one role meeting every need (Sales Everything is usable only in
    // Sales and below).
    let set = admin
        .get(&f.url("/apps/Customer%20Service%20Workspace/roles-needed?user=carol"))
        .expect(200);
    assert_eq!(set["roles"], json!(["Customer Service Representative"]));
    assert_eq!(set["exact"], json!(true));
    let set = admin
        .get(&f.url("/apps/Customer%20Service%20Workspace/roles-needed?user=bob"))
        .expect(200);
    assert_eq!(
        set["roles"],
        json!(["App Profile User", "Customer Service Representative"])
    );
    let set = alice
        .get(&f.url("/apps/Sales%20Hub/roles-needed"))
        .expect(200);
    assert_eq!(set["roles"], json!([]));
    admin
        .get(&f.url("/apps/Customer%20Service%20Workspace/roles-needed?user=erin"))
        .expect_error(400, "assignee_disabled");
    f.root().write(
        &f.org,
        &json!([{"op": "set_app_needs", "app": "Customer Service Workspace",
            "needs": {"incident": {"delete": "organization"}}}]),
    );
    let none = admin
        .get(&f.url("/apps/Customer%20Service%20Workspace/roles-needed?user=bob"))
        .expect_error(422, "no_role_set");
    assert!(
        none["message"]
            .as_str()
            .unwrap()
            .contains("hold `delete` on `incident` at `organization`")
    );
    // Bad needs are refused, naming what is wrong.
    f.root()
        .post(
            &f.url("/operations"),
            &json!([{"op": "set_app_needs", "app": "Customer Service Workspace",
                "needs": {"incident": {"read": "none"}}}]),
        )
        .expect_error(400, "unknown_depth");
    f.root()
        .post(
            &f.url("/operations"),
            &json!([{"op": "set_app_needs", "app": "Nope", "needs": {}}]),
        )
        .expect_error(400, "unknown_reference");
    // Only System Administrators change an app.
    alice
        .post(
            &f.url("/operations"),
            &json!([{"op": "set_app_needs", "app": "Sales Hub", "needs": {}}]),
        )
        .expect_error(403, "denied");
}

#[test]
fn explain_denials_name_the_roles_that_would_grant() {
    let f = Fixture::new();
    let admin = f.as_(&f.keys.admin);
    // alice (Sales) on carol's record in Support: a role usable in Sales with organization read.
    let ex = admin
        .post(
            &f.url("/explain"),
            &json!({"user": "alice", "privilege": "read", "record": "c001"}),
        )
        .expect(200);
    assert_eq!(ex["allowed"], json!(false));
    assert_eq!(
        ex["would_grant"],
        json!({"depth": "organization", "roles": ["Auditor"]})
    );
    assert!(
        ex["explanation"]
            .as_str()
            .unwrap()
            .contains("would be granted by role `Auditor`")
    );
    // carol deleting alice's record: no role but System Administrator gives delete that deep.
    let ex = admin
        .post(
            &f.url("/explain"),
            &json!({"user": "carol", "privilege": "delete", "record": "a001"}),
        )
        .expect(200);
    assert_eq!(ex["would_grant"]["roles"], json!([]));
    assert!(
        ex["explanation"]
            .as_str()
            .unwrap()
            .contains("only System Administrator would")
    );
    let allowed = admin
        .post(
            &f.url("/explain"),
            &json!({"user": "alice", "privilege": "read", "record": "a001"}),
        )
        .expect(200);
    assert_eq!(allowed["would_grant"], json!(null));
}

#[test]
fn who_can_read_a_column_and_column_checks() {
    let f = Fixture::new();
    let audrey = f.as_(&f.keys.audrey);
    let admin = f.as_(&f.keys.admin);
    let who = audrey
        .get(&f.url("/tables/account/columns/creditlimit/access"))
        .expect(200);
    assert_eq!(who["secured"], json!(true));
    let users: Vec<(&str, &str)> = who["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["user"].as_str().unwrap(),
                u["sources"][0]["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [("admin", "system_administrator"), ("bob", "profile")]
    );
    assert_eq!(
        who["users"][1]["sources"][0]["profile"],
        json!("Credit Viewers")
    );
    assert_eq!(who["users"][1]["update"], json!(false));
    let open = audrey
        .get(&f.url("/tables/account/columns/name/access"))
        .expect(200);
    assert_eq!(open["secured"], json!(false));
    audrey
        .get(&f.url("/tables/account/columns/nope/access"))
        .expect_error(400, "unknown_column");
    audrey
        .get(&f.url("/tables/nope/columns/x/access"))
        .expect_error(404, "not_found");

    let check = |user: &str, access: &str| {
        admin
            .post(
                &f.url("/columns/check"),
                &json!({"user": user, "record": "a001", "column": "creditlimit", "access": access}),
            )
            .expect(200)["allowed"]
            .clone()
    };
    assert_eq!(check("bob", "read"), json!(true));
    assert_eq!(check("bob", "update"), json!(false));
    assert_eq!(check("alice", "read"), json!(false));
    assert_eq!(check("carol", "read"), json!(false));
    assert_eq!(check("admin", "update"), json!(true));
    let ex = admin
        .post(
            &f.url("/columns/explain"),
            &json!({"user": "alice", "record": "a001", "column": "creditlimit"}),
        )
        .expect(200);
    assert_eq!(ex["record_allowed"], json!(true));
    assert_eq!(ex["allowed"], json!(false));
    assert!(
        ex["explanation"]
            .as_str()
            .unwrap()
            .contains("no field security profile")
    );
    let ex = admin
        .post(
            &f.url("/columns/explain"),
            &json!({"user": "bob", "record": "a001", "column": "creditlimit"}),
        )
        .expect(200);
    assert_eq!(ex["sources"][0]["profile"], json!("Credit Viewers"));
    admin
        .post(
            &f.url("/columns/check"),
            &json!({"user": "bob", "record": "a001", "column": "creditlimit", "access": "delete"}),
        )
        .expect_error(400, "invalid_body");
    admin
        .post(
            &f.url("/columns/check"),
            &json!({"user": "bob", "record": "zzz", "column": "creditlimit"}),
        )
        .expect_error(404, "not_found");
}
