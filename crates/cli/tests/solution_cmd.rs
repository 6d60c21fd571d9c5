//! `strata import roles` and `strata export roles` on a database file: a dry run by default,
//! `--apply` writes one batch, errors name the file and line (exit status 2, nothing written),
//! and what is exported re-imports unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::strata;

#[test]
fn roles_are_imported_exported_and_reimported_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("roles.db");
    let db = db.to_string_lossy().into_owned();
    common::create_org(
        None,
        &db,
        "o",
        &common::repo().join("tests/scenarios/admin/17-replace-role.yaml"),
    );
    let fixtures = common::repo().join("tests/fixtures/solution");
    let file = |f: &str| fixtures.join(f).to_string_lossy().into_owned();
    let (sales, case, packed) = (
        file("Roles/Sales Rep.xml"),
        file("Roles/Case Agent.xml"),
        file("customizations.xml"),
    );
    let run = |args: &[&str]| {
        let (code, out, err) = strata(args);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        out
    };
    let at = ["--db", db.as_str(), "--org", "o"];
    let args = |head: &[&str]| -> Vec<String> {
        head.iter()
            .chain(at.iter())
            .map(|s| (*s).to_owned())
            .collect()
    };
    let call = |head: &[&str]| {
        let a = args(head);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run(&refs)
    };

    // The default is a dry run: per role the privileges by level and what would happen.
    let out = call(&["import", "roles", &sales, &case, &packed]);
    assert!(out.starts_with("Dry run: nothing written"), "{out}");
    let row = out.lines().find(|l| l.starts_with("Sales Rep")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[2..8], ["3", "2", "1", "4", "2", "7"], "{row}");
    assert!(row.ends_with("would create"), "{row}");
    assert!(out.contains("Unknown tables"), "{out}");

    // Applied with the tables created: one batch.
    let answer: serde_json::Value = serde_json::from_str(&call(&[
        "import",
        "roles",
        &sales,
        &case,
        &packed,
        "--apply",
        "--create-tables",
        "--json",
    ]))
    .unwrap();
    assert_eq!(answer["dry_run"], false);
    assert_eq!(answer["tables_created"].as_array().unwrap().len(), 4);
    let shown: serde_json::Value =
        serde_json::from_str(&call(&["role", "show", "Sales Rep", "--json"])).unwrap();
    assert_eq!(shown["privileges"]["opportunity"]["read"], "parent_child");

    // Exported to a folder, the files re-import unchanged (matched by GUID).
    let out_dir = dir.path().join("export");
    let out_dir_s = out_dir.to_string_lossy().into_owned();
    call(&["export", "roles", "--out", &out_dir_s]);
    let exported = std::fs::read_to_string(out_dir.join("Roles/Sales Rep.xml")).unwrap();
    assert!(
        exported.contains("<RolePrivilege name=\"prvReadOpportunity\" level=\"Deep\" />"),
        "{exported}"
    );
    let packed_out = out_dir
        .join("customizations.xml")
        .to_string_lossy()
        .into_owned();
    let again: serde_json::Value =
        serde_json::from_str(&call(&["import", "roles", &packed_out, "--json"])).unwrap();
    assert_eq!(again["operations"], 0, "{again}");
    assert!(
        again["roles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "unchanged" && r["matched_by"] == "guid"),
        "{again}"
    );

    // A bad file: exit status 2, file and line named, nothing written.
    let bad = dir.path().join("bad.xml");
    std::fs::write(
        &bad,
        "<Role name=\"Bad\">\n<RolePrivileges>\n<RolePrivilege name=\"prvReadAccount\" level=\"Everything\"/>\n</RolePrivileges>\n</Role>\n",
    )
    .unwrap();
    let bad = bad.to_string_lossy().into_owned();
    let a = args(&["import", "roles", &bad, "--apply"]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, _, err) = strata(&refs);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("solution_unknown_level"), "{err}");
    assert!(err.contains("bad.xml:3:1"), "{err}");
}

/// The same import against a running server (`POST …/roles/import`), several unpacked files
/// sent as one body, one batch.
#[test]
fn import_roles_talks_to_a_server() {
    const ROOT: &str = "root-key-for-the-import-verbs";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("served.db");
    let db = db.to_string_lossy().into_owned();
    common::create_org(
        None,
        &db,
        "o",
        &common::repo().join("tests/scenarios/admin/17-replace-role.yaml"),
    );
    let (mut child, url) = common::spawn_serving(
        std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["serve", "--db", &db, "--listen", "127.0.0.1:0"])
            .args(["--root-key", ROOT]),
    );
    let fixtures = common::repo().join("tests/fixtures/solution/Roles");
    let (sales, lead) = (
        fixtures
            .join("Sales Rep.xml")
            .to_string_lossy()
            .into_owned(),
        fixtures
            .join("Project Lead.xml")
            .to_string_lossy()
            .into_owned(),
    );
    let at = |verb: &[&str]| -> (i32, String, String) {
        let mut args: Vec<&str> = verb.to_vec();
        args.extend(["--server", &url, "--org", "o", "--key", ROOT]);
        strata(&args)
    };
    let (code, out, err) = at(&["import", "roles", &sales, &lead]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("Dry run"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Project Lead") && l.ends_with("would create")),
        "{out}"
    );
    let (code, out, err) = at(&[
        "import",
        "roles",
        &sales,
        &lead,
        "--apply",
        "--create-tables",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["dry_run"], false, "{answer}");
    assert_eq!(answer["roles"][1]["levels"]["deep"], 1, "{answer}");
    let (code, out, err) = at(&["role", "show", "Project Lead", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let role: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(role["privileges"]["cr123_project"]["read"], "parent_child");
    assert_eq!(role["inheritance"], "team_only", "{role}");
    let out_dir = dir.path().join("from-server");
    let out_dir_s = out_dir.to_string_lossy().into_owned();
    let (code, out, err) = at(&["export", "roles", "--out", &out_dir_s]);
    assert_eq!(code, 0, "{out}{err}");
    let lead = std::fs::read_to_string(out_dir.join("Roles/Project Lead.xml")).unwrap();
    assert!(
        lead.contains("<RolePrivilege name=\"prvReadcr123_project\" level=\"Deep\" />"),
        "{lead}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
