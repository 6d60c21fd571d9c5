//! The access review route (D70–D72): `GET …/review?format=xlsx|csv&inactive_days=N` answers
//! a file with its content type and download name to the root key, System Administrators and
//! a reviewer holding every right D70 names; everyone else is refused; the last accesses come
//! from the user-access audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

use std::io::{Cursor, Read};

use common::Fixture;
use serde_json::json;

/// The CSV file `name` of a zipped review.
fn csv_of(zip: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip.to_vec())).unwrap();
    let mut text = String::new();
    archive
        .by_name(&format!("{name}.csv"))
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn the_review_is_a_file_for_administrators_and_refused_to_others() {
    let f = Fixture::new();
    let today: String = strata_engine::rfc3339(strata_server::now_ms())
        .chars()
        .take(10)
        .collect();

    // A System Administrator: the workbook.
    let admin = f.as_(&f.keys.admin);
    let xlsx = admin.get(&f.url("/review"));
    assert_eq!(xlsx.status, 200, "{}", xlsx.brief());
    assert_eq!(
        xlsx.header("content-type"),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    assert_eq!(
        xlsx.header("content-disposition").unwrap(),
        format!("attachment; filename=\"strata-review-contoso-{today}.xlsx\"")
    );
    assert!(xlsx.body.starts_with(b"PK"), "not a zip container");

    // CSV: a zip of one file per view.
    let csv = admin.get(&f.url("/review?format=csv&inactive_days=30"));
    assert_eq!(csv.status, 200, "{}", csv.brief());
    assert_eq!(csv.header("content-type"), Some("application/zip"));
    assert_eq!(
        csv.header("content-disposition").unwrap(),
        format!("attachment; filename=\"strata-review-contoso-{today}.zip\"")
    );
    let admins = csv_of(&csv.body, "system_administrators");
    assert_eq!(
        admins,
        "user,business_unit,enabled,role,held,team\r\nadmin,Contoso,yes,Admin,direct,\r\n"
    );
    assert!(csv_of(&csv.body, "summary").contains("inactive_days,30\r\n"));

    // Without credentials; a user without the rights; the auditor, who may ask about others
    // and read the audit but not read roles.
    f.server
        .client(None)
        .get(&f.url("/review"))
        .expect_error(401, "unauthenticated");
    let err = f
        .as_(&f.keys.alice)
        .get(&f.url("/review"))
        .expect_error(403, "denied");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("prvCheckAccessOfOthers"),
        "{err}"
    );
    let err = f
        .as_(&f.keys.audrey)
        .get(&f.url("/review"))
        .expect_error(403, "denied");
    assert!(err["message"].as_str().unwrap().contains("role"), "{err}");

    // Bad parameters.
    admin
        .get(&f.url("/review?format=pdf"))
        .expect_error(400, "bad_query");
    admin
        .get(&f.url("/review?inactive_days=99999"))
        .expect_error(400, "bad_query");
    admin
        .get(&f.url("/review?colour=red"))
        .expect_error(400, "bad_query");

    // A reviewer with every right D70 names: Read on users, roles and the shared records.
    let root = f.root();
    root.write(
        &f.org,
        &json!([
            {"op": "add_role", "name": "Reviewer", "business_unit": "Contoso",
                "misc": ["prvCheckAccessOfOthers", "prvReadAuditSummary"],
                "privileges": {"systemuser": {"read": "organization"},
                    "role": {"read": "organization"}, "account": {"read": "organization"}}},
            {"op": "add_user", "name": "rita", "business_unit": "Contoso"},
            {"op": "assign_role", "principal": "rita", "role": "Reviewer"},
        ]),
    );
    let rita = f.as_(&admin.key_for(&f.org, "rita"));
    let answer = rita.get(&f.url("/review?format=csv"));
    assert_eq!(answer.status, 200, "{}", answer.brief());
    // Without Read on the shared record's table, the reviewer is refused.
    root.write(
        &f.org,
        &json!([{"op": "set_role_privilege", "role": "Reviewer", "table": "account",
            "privilege": "read", "depth": "none"}]),
    );
    let err = rita.get(&f.url("/review")).expect_error(403, "denied");
    assert!(err["message"].as_str().unwrap().contains("s1"), "{err}");
}

#[test]
fn inactive_users_come_from_the_user_access_audit() {
    let f = Fixture::new();
    let root = f.root();
    root.write(
        &f.org,
        &json!([{"op": "set_audit", "enabled": true, "tables": ["account"], "user_access": true}]),
    );
    // bob signs in; alice and the others do not.
    let bob = f.as_(&f.keys.bob);
    bob.get(&f.url("/revision")).expect(200);
    let admin = f.as_(&f.keys.admin);
    let mut inactive = String::new();
    for _ in 0..200 {
        let zip = admin.get(&f.url("/review?format=csv"));
        assert_eq!(zip.status, 200, "{}", zip.brief());
        inactive = csv_of(&zip.body, "inactive_users");
        // Both entries are written in the background.
        if !inactive
            .lines()
            .any(|l| l.starts_with("bob,") || l.starts_with("admin,"))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let users: Vec<&str> = inactive
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    // The administrator's own request was audited too; erin is disabled.
    assert_eq!(users, ["alice", "audrey", "carol"], "{inactive}");
    // With no day of grace, bob and admin are listed with their last access.
    let zip = admin.get(&f.url("/review?format=csv&inactive_days=0"));
    let inactive = csv_of(&zip.body, "inactive_users");
    let bob_line = inactive
        .lines()
        .find(|l| l.starts_with("bob,"))
        .unwrap_or_else(|| panic!("{inactive}"));
    let fields: Vec<&str> = bob_line.split(',').collect();
    assert!(
        fields[2].ends_with('Z') && fields[2].len() == 20,
        "{bob_line}"
    );
    assert_eq!(fields[3], "0");
}
