//! An organisation whose operation log was tampered with is not served, and named by
//! `/readyz`, while the other organisations are served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use common::{Db, Server, setup_org};
use serde_json::json;

#[test]
fn a_tampered_log_isolates_its_organization_only() {
    let db = Db::new();
    let server = Server::start(&db.path);
    let contoso = setup_org(&server, "contoso", "Contoso");
    let fabrikam = setup_org(&server, "fabrikam", "Fabrikam");
    let revision = server.root().revision("fabrikam");
    server.stop();

    // Anyone with write access to the file moves a user to another unit in the log.
    // (The organisation's log is a table of its own in the file: D161.)
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    let number: i64 = conn
        .query_row(
            "SELECT number FROM organizations WHERE name = 'contoso'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (edited, operation): (i64, String) = conn
        .query_row(
            &format!("SELECT revision, operation FROM log_{number} WHERE operation LIKE '%add_user%\"Sales\"%' ORDER BY revision LIMIT 1"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    conn.execute(
        &format!("UPDATE log_{number} SET operation = ?2 WHERE revision = ?1"),
        rusqlite::params![edited, operation.replace("\"Sales\"", "\"Support\"")],
    )
    .unwrap();
    drop(conn);

    let server = Server::start(&db.path);
    let anon = server.client(None);
    let ready = anon.get("/readyz").expect(503);
    assert_eq!(ready["status"], json!("degraded"));
    assert_eq!(ready["code"], json!("corrupt_log"));
    assert_eq!(ready["isolated"][0]["organization"], json!("contoso"));
    let error = ready["isolated"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("`contoso`")
            && error.contains(&format!("revision {edited}"))
            && error.contains("edited"),
        "{error}"
    );
    assert_eq!(ready["isolated"].as_array().unwrap().len(), 1);

    // The other organisation is served as before.
    assert_eq!(server.root().revision("fabrikam"), revision);
    server
        .client(Some(&fabrikam.alice))
        .get("/api/v1/orgs/fabrikam/records/a001")
        .expect(200);
    // The tampered one is not: not from memory, not reloaded from the log.
    let refused = server
        .client(Some(&contoso.alice))
        .get("/api/v1/orgs/contoso/records/a001")
        .expect_error(500, "corrupt_log");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("not served")),
        "{refused}"
    );
    server
        .root()
        .get("/api/v1/orgs/contoso/revision?min_revision=1")
        .expect_error(500, "corrupt_log");
    server
        .client(Some(&contoso.alice))
        .post(
            "/api/v1/orgs/contoso/operations",
            &json!({"op": "update", "record": "a001", "fields": {"name": "x"}}),
        )
        .expect_error(500, "corrupt_log");

    // Deleting it (to restore it from elsewhere) makes the node ready again.
    assert_eq!(server.root().delete("/api/v1/orgs/contoso").status, 204);
    assert_eq!(anon.get("/readyz").expect(200)["status"], json!("ready"));
    server.stop();
}
