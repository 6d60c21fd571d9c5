//! `POST …/roles/import`: Dataverse solution roles over HTTP — XML or zip by content, a dry run
//! that writes nothing, one batch, re-imports that change nothing, errors with file and line,
//! authorized as role administration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

use std::io::Write as _;

use common::Fixture;
use serde_json::json;

fn fixture_bytes(path: &str) -> Vec<u8> {
    std::fs::read(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/solution")
            .join(path),
    )
    .unwrap()
}

fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(name, options).unwrap();
        zip.write_all(bytes).unwrap();
        zip.finish().unwrap();
    }
    out.into_inner()
}

#[test]
fn a_solution_zip_is_tried_then_imported_in_one_batch() {
    let f = Fixture::new();
    let admin = f.as_(&f.keys.admin);
    let before = admin.revision(&f.org);
    let zip = zip_of("customizations.xml", &fixture_bytes("customizations.xml"));
    let path = f.url("/roles/import?dry_run=true&create_tables=true&file=Sales.zip");
    let tried = admin
        .raw("POST", &path, &[("Content-Type", "application/zip")], &zip)
        .expect(200);
    assert_eq!(tried["dry_run"], json!(true));
    assert_eq!(tried["tables_created"], json!(["contact", "incident"]));
    let roles = tried["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 2);
    assert_eq!(roles[0]["name"], json!("Service Manager"));
    assert_eq!(roles[0]["action"], json!("create"));
    assert_eq!(
        roles[0]["levels"],
        json!({"basic": 1, "local": 1, "deep": 2, "global": 3})
    );
    assert_eq!(admin.revision(&f.org), before, "a dry run writes nothing");

    let path = f.url("/roles/import?create_tables=true");
    let done = admin.raw("POST", &path, &[], &zip).expect(200);
    assert_eq!(done["dry_run"], json!(false));
    // One atomic write of the four operations (two tables, two roles).
    assert_eq!(done["operations"], json!(4));
    assert_eq!(done["revision"], json!(before + 4));
    assert_eq!(admin.revision(&f.org), before + 4);
    let role = admin.get(&f.url("/roles/Service%20Manager")).expect(200);
    assert_eq!(
        role["privileges"]["incident"]["write"],
        json!("parent_child")
    );

    // Out again as solution XML: the role file and the customizations.xml.
    let out = admin
        .get(&f.url("/roles/export?role=Service%20Manager"))
        .expect(200);
    let files = out["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["path"], json!("Roles/Service Manager.xml"));
    assert!(
        files[0]["text"]
            .as_str()
            .unwrap()
            .contains("<RolePrivilege name=\"prvWriteIncident\" level=\"Deep\" />")
    );
    let everything = admin.get(&f.url("/roles/export")).expect(200);
    assert_eq!(everything["withheld"], json!(0));
    // alice reads no role: a named one is refused, the rest withheld.
    let alice = f.as_(&f.keys.alice);
    alice
        .get(&f.url("/roles/export?role=Service%20Manager"))
        .expect_error(403, "denied");
    let none = alice.get(&f.url("/roles/export")).expect(200);
    assert_eq!(none["files"].as_array().unwrap().len(), 1);
    assert!(none["withheld"].as_u64().unwrap() >= 2);

    // The same file again: every role unchanged, nothing written.
    let again = admin.raw("POST", &path, &[], &zip).expect(200);
    assert_eq!(again["operations"], json!(0));
    assert_eq!(again["roles"][1]["action"], json!("unchanged"));
    assert_eq!(admin.revision(&f.org), before + 4);
}

#[test]
fn bad_files_are_refused_with_file_line_and_nothing_imported() {
    let f = Fixture::new();
    let admin = f.as_(&f.keys.admin);
    let before = admin.revision(&f.org);
    let path = f.url("/roles/import?file=Roles%2FBad.xml");
    let body = b"<Role name=\"Bad\">\n <RolePrivileges>\n  <RolePrivilege name=\"prvReadAccount\" level=\"Everything\" />\n </RolePrivileges>\n</Role>\n";
    let e = admin
        .raw("POST", &path, &[], body)
        .expect_error(400, "solution_unknown_level");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("Roles/Bad.xml:3:3"), "{message}");
    assert!(message.contains("Everything"), "{message}");

    let zip = zip_of("solution.xml", b"<ImportExportXml />");
    admin
        .raw("POST", &f.url("/roles/import"), &[], &zip)
        .expect_error(400, "solution_no_customizations");
    admin
        .raw(
            "POST",
            &f.url("/roles/import"),
            &[],
            b"<Role name=\"x\"><RolePrivileges>",
        )
        .expect_error(400, "solution_malformed_xml");
    admin
        .raw(
            "POST",
            &f.url("/roles/import"),
            &[],
            b"<Role name=\"x\"><RolePrivileges><RolePrivilege name=\"prvBulkEditt\" level=\"Global\"/></RolePrivileges></Role>",
        )
        .expect_error(400, "solution_unknown_privilege");
    assert_eq!(admin.revision(&f.org), before);
}

#[test]
fn an_import_is_authorized_as_role_administration() {
    let f = Fixture::new();
    let alice = f.as_(&f.keys.alice);
    let body = fixture_bytes("Roles/Sales Rep.xml");
    // alice holds no privilege on `role`: refused, dry run or not.
    alice
        .raw("POST", &f.url("/roles/import?dry_run=true"), &[], &body)
        .expect_error(403, "denied");
    alice
        .raw("POST", &f.url("/roles/import"), &[], &body)
        .expect_error(403, "denied");
    // Re-importing an existing role asks to read it first: alice may not learn it exists.
    let admin = f.as_(&f.keys.admin);
    admin
        .raw("POST", &f.url("/roles/import"), &[], &body)
        .expect(200);
    alice
        .raw("POST", &f.url("/roles/import?dry_run=true"), &[], &body)
        .expect_error(403, "denied");
}
