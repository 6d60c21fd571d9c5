//! Roles as things to manage over HTTP: describe, holders, comparisons, who may assign, and the
//! role administration routes, with their refusals (D42–D44).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

use common::Fixture;
use serde_json::{Value, json};

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v[key].as_str().unwrap().to_owned())
        .collect()
}

fn cell<'a>(answer: &'a Value, table: &str, privilege: &str) -> &'a Value {
    answer["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["table"] == json!(table) && c["privilege"] == json!(privilege))
        .unwrap_or_else(|| panic!("no cell {table}/{privilege}"))
}

/// The fixture, plus a team holding Rep with carol in it, and `roleadmin` who holds Write and
/// Read on `role` and business-unit deep account privileges in Contoso.
fn fixture() -> (Fixture, String) {
    let f = Fixture::new();
    let root = f.root();
    root.write(
        &f.org,
        &json!([
            {"op": "add_team", "name": "Floor", "business_unit": "Contoso"},
            {"op": "assign_role", "principal": "team:Floor", "role": "Rep"},
            {"op": "add_team_member", "team": "Floor", "user": "carol"},
            {"op": "add_role", "name": "Role Editor", "privileges": {
                "role": {"read": "organization", "write": "organization", "create": "organization"},
                "account": {"create": "business_unit", "read": "business_unit", "write": "business_unit",
                    "delete": "business_unit", "append": "business_unit", "append_to": "business_unit",
                    "assign": "business_unit", "share": "business_unit"}}},
            {"op": "add_user", "name": "roleadmin", "business_unit": "Contoso"},
            {"op": "assign_role", "principal": "roleadmin", "role": "Role Editor"},
        ]),
    );
    let key = f.as_(&f.keys.admin).key_for(&f.org, "roleadmin");
    (f, key)
}

#[test]
fn a_role_is_described_with_its_holders_and_who_may_assign_it() {
    let (f, roleadmin) = fixture();
    let admin = f.as_(&f.keys.admin);
    let rep = admin.get(&f.url("/roles/Rep")).expect(200);
    assert_eq!(rep["business_unit"], json!("Contoso"));
    assert_eq!(rep["privileges"]["account"]["read"], json!("business_unit"));
    assert_eq!(rep["apps"], json!(["Sales Hub"]));
    assert_eq!(rep["deprecated"], json!(false));
    let holders = admin.get(&f.url("/roles/Rep/holders")).expect(200);
    assert_eq!(names(&holders["users"], "user"), vec!["alice", "bob"]);
    assert_eq!(names(&holders["teams"], "team"), vec!["Floor"]);
    assert_eq!(
        holders["through_teams"],
        json!([{"user": "carol", "team": "Floor"}])
    );
    // D42: Read on `role` is enough to read a role; the users named are those the reader may
    // read (roleadmin reads no `systemuser` record but its own).
    let ra = f.as_(&roleadmin);
    ra.get(&f.url("/roles/Rep")).expect(200);
    let seen = ra.get(&f.url("/roles/Rep/holders")).expect(200);
    assert_eq!(seen["users"], json!([]));
    assert_eq!(names(&seen["teams"], "team"), vec!["Floor"]);
    // Without Read on `role`: refused.
    let alice = f.as_(&f.keys.alice);
    alice.get(&f.url("/roles/Rep")).expect_error(403, "denied");
    alice
        .get(&f.url("/roles/Rep/holders"))
        .expect_error(403, "denied");
    admin
        .get(&f.url("/roles/Nope"))
        .expect_error(404, "not_found");
    // Who may assign Rep: the System Administrator; roleadmin lacks Assign on `role`.
    let who = admin.get(&f.url("/roles/Rep/assigners")).expect(200);
    assert_eq!(names(&who["assigners"], "user"), vec!["admin"]);
    assert_eq!(
        who["assigners"][0]["business_units"],
        json!(["Contoso", "Sales", "Support"])
    );
}

#[test]
fn roles_and_users_compare_side_by_side() {
    let (f, _) = fixture();
    let admin = f.as_(&f.keys.admin);
    let c = admin
        .get(&f.url("/roles/Rep/compare/Support%20Rep"))
        .expect(200);
    let append = cell(&c, "account", "append");
    assert_eq!(
        (
            append["left"].clone(),
            append["right"].clone(),
            append["differs"].clone()
        ),
        (json!("user"), json!("none"), json!(true))
    );
    assert_eq!(cell(&c, "account", "read")["differs"], json!(false));
    assert_eq!(c["differences"], json!(3));
    // Users: audrey holds prvCheckAccessOfOthers and Read on every user.
    let audrey = f.as_(&f.keys.audrey);
    let u = audrey.get(&f.url("/users/alice/compare/carol")).expect(200);
    let read = cell(&u, "account", "read");
    assert_eq!(read["left"]["depth"], json!("business_unit"));
    assert_eq!(
        read["left"]["sources"],
        json!([{"role": "Rep", "via": "direct"}])
    );
    // carol: Support Rep directly and Rep through Floor, both business-unit deep.
    assert_eq!(read["right"]["sources"].as_array().unwrap().len(), 2);
    assert!(
        read["right"]["sources"]
            .as_array()
            .unwrap()
            .contains(&json!({"role": "Rep", "via": {"team": "Floor", "team_only": false}}))
    );
    let against_admin = audrey.get(&f.url("/users/alice/compare/admin")).expect(200);
    let delete = cell(&against_admin, "account", "delete");
    assert_eq!(delete["right"]["depth"], json!("organization"));
    assert_eq!(
        delete["right"]["sources"][0]["system_administrator"],
        json!(true)
    );
    assert_eq!(delete["differs"], json!(true));
    // D35: alice may not ask about carol.
    f.as_(&f.keys.alice)
        .get(&f.url("/users/alice/compare/carol"))
        .expect_error(403, "denied");
    audrey
        .get(&f.url("/users/alice/compare/ghost"))
        .expect_error(404, "not_found");
}

#[test]
fn deprecate_replace_and_delete_move_holders_or_refuse() {
    let (f, _) = fixture();
    let admin = f.as_(&f.keys.admin);
    admin
        .post(
            &f.url("/roles/Rep/deprecation"),
            &json!({"message": "retired", "successors": ["Support Rep"]}),
        )
        .expect(200);
    assert_eq!(
        admin.get(&f.url("/roles/Rep")).expect(200)["deprecation"],
        json!({"message": "retired", "successors": ["Support Rep"]})
    );
    // Assigning a deprecated role is refused, naming the successor.
    let err = admin
        .post(
            &f.url("/operations"),
            &json!({"op": "assign_role", "principal": "audrey", "role": "Rep"}),
        )
        .expect_error(400, "role_deprecated");
    assert!(
        err["message"].as_str().unwrap().contains("`Support Rep`"),
        "{err}"
    );
    // Delete is refused while the role is held.
    let err = admin
        .delete(&f.url("/roles/Rep"))
        .expect_error(409, "role_in_use");
    assert!(err["message"].as_str().unwrap().contains("replacement"));
    // With a replacement, every holder and the app move at once.
    let before = f.root().revision(&f.org);
    admin
        .delete(&f.url("/roles/Rep?replacement=Support%20Rep"))
        .expect(200);
    assert_eq!(f.root().revision(&f.org), before + 1, "one audited change");
    admin
        .get(&f.url("/roles/Rep"))
        .expect_error(404, "not_found");
    let holders = admin
        .get(&f.url("/roles/Support%20Rep/holders"))
        .expect(200);
    assert_eq!(
        names(&holders["users"], "user"),
        vec!["alice", "bob", "carol"]
    );
    assert_eq!(names(&holders["teams"], "team"), vec!["Floor"]);
    assert_eq!(holders["apps"], json!(["Sales Hub"]));
    // The audit entry names the holders that moved.
    let audit = admin.get(&f.url("/audit?limit=1000")).expect(200);
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == json!("delete_role"))
        .expect("a delete_role audit entry");
    assert_eq!(
        names(&entry["detail"]["old"]["users"], "user"),
        vec!["alice", "bob"]
    );
    // Replace for all holders, then back, in one change each.
    admin
        .post(
            &f.url("/roles/Support%20Rep/copy"),
            &json!({"name": "Desk"}),
        )
        .expect(200);
    admin
        .post(
            &f.url("/roles/Support%20Rep/replace"),
            &json!({"replacement": "Desk"}),
        )
        .expect(200);
    let desk = admin.get(&f.url("/roles/Desk/holders")).expect(200);
    assert_eq!(names(&desk["users"], "user"), vec!["alice", "bob", "carol"]);
    let sr = admin
        .get(&f.url("/roles/Support%20Rep/holders"))
        .expect(200);
    assert_eq!(sr["users"], json!([]));
    assert_eq!(
        sr["apps"],
        json!(["Sales Hub"]),
        "replace leaves apps alone"
    );
    // The System Administrator role is not deleted, renamed or deprecated (D10).
    admin
        .delete(&f.url("/roles/Admin"))
        .expect_error(400, "system_administrator_not_editable");
    admin
        .post(&f.url("/roles/Admin/rename"), &json!({"name": "Boss"}))
        .expect_error(400, "system_administrator_not_editable");
}

#[test]
fn one_cell_is_set_without_resending_the_grid_and_escalation_is_refused() {
    let (f, roleadmin) = fixture();
    let ra = f.as_(&roleadmin);
    // Raising Support Rep's read beyond what roleadmin holds over Contoso: D11 refuses.
    let err = ra
        .raw(
            "PUT",
            &f.url("/roles/Support%20Rep/privileges/account/read"),
            &[("Content-Type", "application/json")],
            br#"{"depth": "organization"}"#,
        )
        .expect_error(403, "denied");
    assert!(err["message"].as_str().unwrap().contains("read"), "{err}");
    // Lowering it is within roleadmin's reach.
    ra.raw(
        "PUT",
        &f.url("/roles/Support%20Rep/privileges/account/read"),
        &[("Content-Type", "application/json")],
        br#"{"depth": "user"}"#,
    )
    .expect(200);
    let sr = ra.get(&f.url("/roles/Support%20Rep")).expect(200);
    assert_eq!(sr["privileges"]["account"]["read"], json!("user"));
    assert_eq!(
        sr["privileges"]["account"]["write"],
        json!("user"),
        "the rest is kept"
    );
    // Bad input names what is wrong.
    ra.raw(
        "PUT",
        &f.url("/roles/Support%20Rep/privileges/account/read"),
        &[("Content-Type", "application/json")],
        br#"{"depth": "galaxy"}"#,
    )
    .expect_error(400, "unknown_depth");
    ra.raw(
        "PUT",
        &f.url("/roles/Support%20Rep/privileges/nosuch/read"),
        &[("Content-Type", "application/json")],
        br#"{"depth": "user"}"#,
    )
    .expect_error(400, "unknown_reference");
    // Renaming and copying are role administration too; deleting needs Delete on `role`.
    ra.post(
        &f.url("/roles/Support%20Rep/rename"),
        &json!({"name": "Support"}),
    )
    .expect(200);
    ra.post(&f.url("/roles/Support/copy"), &json!({"name": "Support 2"}))
        .expect(200);
    ra.delete(&f.url("/roles/Support%202"))
        .expect_error(403, "denied");
    // Adding columns to a table is customization.
    ra.post(
        &f.url("/tables/account/columns"),
        &json!({"columns": [{"name": "rating"}]}),
    )
    .expect_error(403, "denied");
    f.as_(&f.keys.admin)
        .post(
            &f.url("/tables/account/columns"),
            &json!({"columns": [{"name": "rating"}]}),
        )
        .expect(200);
}

#[test]
fn a_batch_with_role_changes_commits_whole_or_not_at_all() {
    let (f, _) = fixture();
    let admin = f.as_(&f.keys.admin);
    let before = f.root().revision(&f.org);
    let err = admin
        .post(
            &f.url("/operations"),
            &json!([
                {"op": "replace_role", "role": "Rep", "replacement": "Auditor"},
                {"op": "deprecate_role", "role": "Support Rep", "successors": ["Auditor"]},
                {"op": "assign_role", "principal": "audrey", "role": "Support Rep"},
            ]),
        )
        .expect_error(400, "role_deprecated");
    assert!(
        err["message"].as_str().unwrap().contains("`Auditor`"),
        "{err}"
    );
    assert_eq!(f.root().revision(&f.org), before, "nothing written");
    let holders = admin.get(&f.url("/roles/Rep/holders")).expect(200);
    assert_eq!(names(&holders["users"], "user"), vec!["alice", "bob"]);
    let sr = admin.get(&f.url("/roles/Support%20Rep")).expect(200);
    assert_eq!(sr["deprecated"], json!(false));
}
