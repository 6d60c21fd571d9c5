//! `strata export` and `strata import pack` as processes: an organisation exported from one
//! database and created in another exports to the same bytes; over HTTP only a System
//! Administrator may export; a pack's dry run writes nothing, `--apply` writes one batch, and
//! applying it again has nothing to do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::strata;

fn rules_violations() -> std::path::PathBuf {
    common::repo().join("tests/scenarios/admin/rules-violations.yaml")
}

fn revision(db: &str) -> String {
    let (code, out, err) = strata(&["org", "list", "--db", db]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_owned()
}

#[test]
fn an_export_rebuilds_the_organisation_and_exports_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let (a, b) = (a.to_string_lossy(), b.to_string_lossy());
    let model = dir.path().join("model.yaml");
    let model_path = model.to_string_lossy();
    common::create_org(None, &a, "o", &rules_violations());
    // Records too, and an operation that changes the model after the setup.
    let (code, _, err) = strata(&[
        "export",
        "--db",
        &a,
        "--org",
        "o",
        "--records",
        "--output",
        &model_path,
    ]);
    assert_eq!(code, 0, "{err}");
    let first = std::fs::read_to_string(&model).unwrap();
    assert!(first.starts_with("format: 1\nname: o\n"), "{first}");
    assert!(first.contains("role_rules:"), "{first}");
    common::create_org(None, &b, "o", &model);
    let (code, again, err) = strata(&["export", "--db", &b, "--org", "o", "--records"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(first, again);
    // The scenario file itself exports the same model.
    let scenario = rules_violations();
    let (code, from_file, err) = strata(&[
        "export",
        "--scenario",
        &scenario.to_string_lossy(),
        "--records",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        from_file.lines().skip(2).collect::<Vec<_>>(),
        first.lines().skip(2).collect::<Vec<_>>()
    );
}

#[test]
fn a_pack_is_tried_then_applied_then_already_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let db = db.to_string_lossy();
    common::create_org(None, &db, "o", &rules_violations());
    let before = revision(&db);
    let args = ["import", "pack", "omnichannel", "--db", &*db, "--org", "o"];
    let (code, out, err) = strata(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dry run at revision"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("update") && l.contains("Omnichannel agent")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("create") && l.contains("Omnichannel Channel Secrets")),
        "{out}"
    );
    assert_eq!(revision(&db), before, "a dry run writes nothing");
    let mut apply = args.to_vec();
    apply.push("--apply");
    let (code, out, err) = strata(&apply);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("applied as one batch at revision"), "{out}");
    assert_ne!(revision(&db), before);
    let after = revision(&db);
    let (code, out, err) = strata(&apply);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(revision(&db), after, "applying again writes nothing");
    // Through the write path as a user: refused without the privileges to change roles.
    let (code, _, err) = strata(&[
        "import", "pack", "work365", "--db", &db, "--org", "o", "--as", "quinn",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("denied") || err.contains("privilege"), "{err}");
    // A pack from a file, and an unknown one.
    let file = common::repo().join("packs/work365.yaml");
    let (code, out, err) = strata(&[
        "import",
        "pack",
        &file.to_string_lossy(),
        "--db",
        &db,
        "--org",
        "o",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["pack"], "Work 365");
    assert_eq!(json["applied"], false);
    let (code, _, err) = strata(&["import", "pack", "no-such-pack", "--db", &db, "--org", "o"]);
    assert_ne!(code, 0);
    assert!(err.contains("work365"), "{err}");
    // A malformed pack: the file and the line.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "format: 1\nname: bad\nusers: []\n").unwrap();
    let (code, _, err) = strata(&[
        "import",
        "pack",
        &bad.to_string_lossy(),
        "--db",
        &db,
        "--org",
        "o",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("bad.yaml:3:") && err.contains("not `users`"),
        "{err}"
    );
}

#[test]
fn over_http_only_a_system_administrator_exports() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_string_lossy();
    common::create_org(None, &db, "o", &rules_violations());
    let (_, local, _) = strata(&["export", "--db", &db, "--org", "o", "--records"]);
    let key = |user: &str| {
        let (code, key, err) = strata(&[
            "api-key", "create", "--db", &db, "--org", "o", "--user", user,
        ]);
        assert_eq!(code, 0, "{err}");
        key.trim().to_owned()
    };
    let (admin, quinn) = (key("admin"), key("quinn"));
    let (mut child, url) =
        common::spawn_serving(Command::new(env!("CARGO_BIN_EXE_strata")).args([
            "serve",
            "--db",
            &db,
            "--listen",
            "127.0.0.1:0",
            "--root-key",
            "root-key-for-export-test-0123456789",
        ]));
    let remote = |key: &str| {
        strata(&[
            "export",
            "--server",
            &url,
            "--key",
            key,
            "--org",
            "o",
            "--records",
        ])
    };
    let (code, out, err) = remote(&admin);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, local, "the route answers what the database gives");
    let (code, out, err) = remote(&quinn);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("HTTP 403"), "{err}");
    // A pack's dry run through the server (planned from its export), as the administrator.
    let (code, out, err) = strata(&[
        "import",
        "pack",
        "customer-service-workspace",
        "--server",
        &url,
        "--key",
        &admin,
        "--org",
        "o",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dry run at revision"), "{out}");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "pack",
            "customer-service-workspace",
            "--server",
            &url,
            "--key",
            &admin,
            "--org",
            "o",
        ];
        args.extend_from_slice(extra);
        strata(&args)
    };
    let (code, out, err) = import(&["--apply"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("applied as one batch at revision"), "{out}");
    let (code, out, err) = import(&["--apply"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing to do"), "{out}");
    // A user who is not a System Administrator cannot read the organisation to plan.
    let (code, _, err) = strata(&[
        "import", "pack", "work365", "--server", &url, "--key", &quinn, "--org", "o",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("HTTP 403"), "{err}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Every extension the export writes, through `org create` (the application layer's loader).
const EXTENSIONS: &str = r#"format: 1
name: extensions
audit: { enabled: true, retention_days: 90, user_access: true, tables: [account], columns_off: [account.name] }
business_units: [{ name: Root }, { name: "Sales: EMEA", parent: Root }]
tables:
  - { name: account, columns: [{ name: name }, { name: rating }] }
relationships:
  - { name: parent_account, parent: account, child: account, lookup: parentaccountid, behavior: parental }
roles:
  - { name: Old, privileges: { account: { read: user } }, deprecation: { message: "use: New", successors: [New] } }
  - { name: Gone, privileges: { account: { read: organization } }, deleted: true }
  - { name: New, privileges: { account: { read: business_unit, write: user } } }
  - { name: Gone, privileges: { account: { read: user } } }
users:
  - { name: ann, business_unit: "Sales: EMEA", roles: [Old, New], fields: [{ title: x }, { age: 3 }] }
  - { name: bob, after_record: a1, enabled: false }
records:
  - { id: a0, table: account, owner: ann, fields: { name: gone }, deleted: true }
  - { id: a1, table: account, owner: ann, fields: [{ rating: 1 }, { name: first }] }
  - { id: a2, table: account, owner: bob }
  - { id: a3, table: account, owner: ann }
lookups:
  - { record: a3, lookup: parentaccountid, parent: a1 }
  - { record: a2, lookup: parentaccountid, parent: a1 }
steps: []
"#;

#[test]
fn every_extension_survives_org_create_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ext.yaml");
    std::fs::write(&file, EXTENSIONS).unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let (a, b) = (a.to_string_lossy(), b.to_string_lossy());
    common::create_org(None, &a, "o", &file);
    let (code, first, err) = strata(&["export", "--db", &a, "--org", "o", "--records"]);
    assert_eq!(code, 0, "{err}");
    for part in [
        "deleted: true",
        "deprecation: { message: \"use: New\", successors: [New] }",
        "after_record: a1",
        "fields: [{ title: \"x\" }, { age: 3 }]",
        "fields: [{ rating: 1 }, { name: \"first\" }]",
        "lookups:\n  - { record: a3, lookup: parentaccountid, parent: a1 }",
        "columns_off: [account.name]",
        "enabled: false",
        "deleted: true\n  - id: a1",
    ] {
        assert!(first.contains(part), "{part}:\n{first}");
    }
    let exported = dir.path().join("model.yaml");
    std::fs::write(&exported, &first).unwrap();
    common::create_org(None, &b, "o", &exported);
    let (_, again, _) = strata(&["export", "--db", &b, "--org", "o", "--records"]);
    assert_eq!(first, again);
}
