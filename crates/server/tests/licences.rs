//! Licence routes (seed 003, D48–D50): the catalogue, the report, one user's answer, where roles
//! exceed a licence; caps seen through check and explain; refusals without the privilege.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

use common::{Db, Server};
use serde_json::{Value, json};

const ORG: &str = "/api/v1/orgs/lic";

fn model() -> Value {
    json!([
        {"op": "add_business_unit", "name": "Contoso"},
        {"op": "add_table", "name": "account"},
        {"op": "add_table", "name": "opportunity"},
        {"op": "add_role", "name": "Admin", "system_administrator": true},
        {"op": "add_role", "name": "Salesperson", "privileges": {
            "account": {"read": "organization", "write": "organization"},
            "opportunity": {"read": "organization", "write": "organization", "append": "organization"}}},
        {"op": "add_role", "name": "Auditor", "misc": ["prvCheckAccessOfOthers"],
            "privileges": {"systemuser": {"read": "organization"}}},
        {"op": "add_user", "name": "admin"},
        {"op": "add_user", "name": "seller"},
        {"op": "add_user", "name": "pro"},
        {"op": "add_user", "name": "auditor"},
        {"op": "add_user", "name": "nobody"},
        {"op": "assign_role", "principal": "admin", "role": "Admin"},
        {"op": "assign_role", "principal": "seller", "role": "Salesperson"},
        {"op": "assign_role", "principal": "pro", "role": "Salesperson"},
        {"op": "assign_role", "principal": "auditor", "role": "Auditor"},
        {"op": "assign_role", "principal": "nobody", "role": "Salesperson"},
        {"op": "add_licence", "name": "Professional", "price": 4, "default": "organization",
            "all_misc": true, "all_apps": true},
        {"op": "add_licence", "name": "Basic", "price": 2, "default": "organization",
            "tables": {"opportunity": {"read": "organization", "append": "organization"}},
            "misc": ["prvExportToExcel"], "all_apps": true},
        {"op": "set_user_licence", "user": "seller", "licences": ["Basic"]},
        {"op": "set_user_licence", "user": "pro", "licences": ["Professional"]},
        {"op": "set_user_licence", "user": "auditor", "licences": ["Professional"]},
        {"op": "insert_record", "id": "o1", "table": "opportunity", "owner": "pro"},
    ])
}

#[test]
fn licence_routes_answer_and_refuse() {
    let db = Db::new();
    let server = Server::start(&db.path);
    let root = server.root();
    root.post("/api/v1/orgs", &json!({"name": "lic"}))
        .expect(201);
    root.write("lic", &model());
    let admin = server.client(Some(&root.key_for("lic", "admin")));
    let key = |u: &str| server.client(Some(&admin.key_for("lic", u)));
    let (seller, auditor, nobody) = (key("seller"), key("auditor"), key("nobody"));

    // The catalogue, for any user of the organisation.
    let cat = seller.get(&format!("{ORG}/licences")).expect(200);
    assert_eq!(cat["enforced"], json!(true));
    let names: Vec<&str> = cat["licences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Professional", "Basic"]);
    assert_eq!(
        cat["licences"][1]["tables"]["opportunity"]["write"],
        json!("none")
    );
    assert_eq!(
        cat["licences"][1]["tables"]["opportunity"]["read"],
        json!("organization")
    );

    // The cap, through check and explain.
    let ex = seller
        .post(
            &format!("{ORG}/explain"),
            &json!({"privilege": "write", "record": "o1"}),
        )
        .expect(200);
    assert_eq!(ex["allowed"], json!(false));
    let text = ex["explanation"].as_str().unwrap();
    assert!(
        text.contains("licence Basic caps `write` on `opportunity` at none"),
        "{text}"
    );
    let ch = seller
        .post(
            &format!("{ORG}/check"),
            &json!({"privilege": "read", "record": "o1"}),
        )
        .expect(200);
    assert_eq!(ch["allowed"], json!(true));
    let ch = nobody
        .post(
            &format!("{ORG}/check"),
            &json!({"privilege": "read", "record": "o1"}),
        )
        .expect(200);
    assert_eq!(ch["allowed"], json!(false));

    // One user's answer: about oneself, or about others with prvCheckAccessOfOthers.
    let me = seller
        .get(&format!("{ORG}/licences/users/seller"))
        .expect(200);
    assert_eq!(me["held"], json!(["Basic"]));
    assert_eq!(me["fit"], json!("under_licensed"));
    assert_eq!(
        me["cheapest"],
        json!({"licences": ["Professional"], "price": 4})
    );
    assert!(
        me["uncovered"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["table"] == json!("opportunity") && u["privilege"] == json!("write"))
    );
    seller
        .get(&format!("{ORG}/licences/users/pro"))
        .expect_error(403, "denied");
    let pro = auditor
        .get(&format!("{ORG}/licences/users/pro"))
        .expect(200);
    assert_eq!(pro["fit"], json!("fits"));
    seller
        .get(&format!("{ORG}/licences/users/ghost"))
        .expect_error(404, "not_found");

    // The report: refused without prvCheckAccessOfOthers; the auditor sees the users whose
    // records they may read; totals against the cheapest mix.
    seller
        .get(&format!("{ORG}/licences/report"))
        .expect_error(403, "denied");
    let report = admin.get(&format!("{ORG}/licences/report")).expect(200);
    let users = report["users"].as_array().unwrap();
    assert_eq!(users.len(), 5);
    // Held: Basic 2 (seller) + Professional 4 (pro) + Professional 4 (auditor: Basic does not
    // allow prvCheckAccessOfOthers). Cheapest: seller 4, pro 4, auditor 4, nobody 4, admin 0
    // (System Administrators are not capped, D48).
    assert_eq!(report["total_held"], json!(10));
    assert_eq!(report["total_cheapest"], json!(16));
    assert_eq!(report["under_licensed"], json!(2));
    let audited = auditor.get(&format!("{ORG}/licences/report")).expect(200);
    assert_eq!(audited["users"].as_array().unwrap().len(), 5);

    // Role excess, cell by cell; needs Read on `role`.
    let ex = admin
        .get(&format!("{ORG}/licences/Basic/exceeds?role=Salesperson"))
        .expect(200);
    let cells: Vec<String> = ex["roles"][0]["exceeds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}.{}",
                c["table"].as_str().unwrap(),
                c["privilege"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(cells, ["opportunity.write"]);
    let all = admin
        .get(&format!("{ORG}/licences/Basic/exceeds"))
        .expect(200);
    let roles: Vec<&str> = all["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["Salesperson", "Auditor"]);
    seller
        .get(&format!("{ORG}/licences/Basic/exceeds?role=Salesperson"))
        .expect_error(403, "denied");
    admin
        .get(&format!("{ORG}/licences/Gold/exceeds"))
        .expect_error(404, "not_found");
    admin
        .get(&format!("{ORG}/licences/Basic/exceeds?role=Nobody"))
        .expect_error(404, "not_found");

    // Writes: customization for System Administrators; a user's licences per D50.
    let ops = format!("{ORG}/operations");
    seller
        .post(
            &ops,
            &json!({"op": "set_user_licence", "user": "seller", "licences": ["Professional"]}),
        )
        .expect_error(403, "denied");
    seller
        .post(
            &ops,
            &json!({"op": "add_licence", "name": "Free", "price": 0, "default": "organization"}),
        )
        .expect_error(403, "denied");
    admin
        .post(
            &ops,
            &json!({"op": "add_licence", "name": "Bad", "price": 1,
            "tables": {"acount": {"read": "organization"}}}),
        )
        .expect_error(400, "unknown_reference");
    admin
        .post(&ops, &json!({"op": "set_audit", "enabled": true}))
        .expect(200);
    admin
        .post(
            &ops,
            &json!({"op": "set_user_licence", "user": "seller", "licences": ["Professional"]}),
        )
        .expect(200);
    // Audited on the user's record, old → new.
    let audit = admin.get(&format!("{ORG}/audit?record=seller")).expect(200);
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == json!("set_user_licence"))
        .unwrap_or_else(|| panic!("no set_user_licence entry: {audit}"));
    assert_eq!(entry["detail"]["old"], json!(["Basic"]));
    assert_eq!(entry["detail"]["new"], json!(["Professional"]));
    let ch = seller
        .post(
            &format!("{ORG}/check"),
            &json!({"privilege": "write", "record": "o1"}),
        )
        .expect(200);
    assert_eq!(ch["allowed"], json!(true));

    // The OpenAPI document lists the routes.
    let doc = server.client(None).get("/api/v1/openapi.json").expect(200);
    for path in [
        "/licences",
        "/licences/report",
        "/licences/users/{user}",
        "/licences/{licence}/exceeds",
    ] {
        assert!(
            doc["paths"][format!("/api/v1/orgs/{{org}}{path}")]["get"].is_object(),
            "{path}"
        );
    }
    server.stop();
}
