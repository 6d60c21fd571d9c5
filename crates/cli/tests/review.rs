//! `strata review`: the access review from a database (a workbook, a folder of CSV files, a
//! zip), from a scenario file, and through a server (the route's file; refused without D70's
//! rights).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::strata;

fn scenario() -> std::path::PathBuf {
    common::repo().join("tests/scenarios/admin/rules-violations.yaml")
}

#[test]
fn review_from_a_database_and_a_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("strata.db");
    let db = db.to_string_lossy();
    common::create_org(None, &db, "o", &scenario());

    let book = dir.path().join("review.xlsx");
    let book_text = book.to_string_lossy();
    let (code, out, err) = strata(&["review", "--db", &db, "--org", "o", "--out", &book_text]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("wrote {book_text}")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("rule_violations") && !l.trim_end().ends_with(" 0")),
        "{out}"
    );
    assert!(std::fs::read(&book).unwrap().starts_with(b"PK"));

    // CSV: a folder of one file per view, or a zip.
    let folder = dir.path().join("csv");
    let folder_text = folder.to_string_lossy();
    let (code, out, err) = strata(&[
        "review",
        "--db",
        &db,
        "--org",
        "o",
        "--format",
        "csv",
        "--out",
        &folder_text,
        "--inactive-days",
        "7",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wrote 14 CSV files"), "{out}");
    let summary = std::fs::read_to_string(folder.join("summary.csv")).unwrap();
    assert!(
        summary.starts_with("item,value\r\norganization,o\r\n"),
        "{summary}"
    );
    assert!(summary.contains("inactive_days,7\r\n"), "{summary}");
    let violations = std::fs::read_to_string(folder.join("rule_violations.csv")).unwrap();
    assert!(
        violations.starts_with("user,enabled,rule,kind,detail\r\n"),
        "{violations}"
    );
    assert!(violations.lines().count() > 1, "{violations}");
    let zip = dir.path().join("review.zip");
    let zip_text = zip.to_string_lossy();
    let (code, out, err) = strata(&[
        "review", "--db", &db, "--org", "o", "--format", "csv", "--out", &zip_text,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(std::fs::read(&zip).unwrap().starts_with(b"PK"));

    // The same organisation from its scenario file: the same views.
    let from_scenario = dir.path().join("scenario");
    let (code, out, err) = strata(&[
        "review",
        "--scenario",
        &scenario().to_string_lossy(),
        "--format",
        "csv",
        "--out",
        &from_scenario.to_string_lossy(),
        "--inactive-days",
        "7",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for view in ["user_roles", "effective_privileges", "rule_violations"] {
        assert_eq!(
            std::fs::read_to_string(from_scenario.join(format!("{view}.csv"))).unwrap(),
            std::fs::read_to_string(folder.join(format!("{view}.csv"))).unwrap(),
            "{view}"
        );
    }

    // An unknown organisation, and too many days.
    let (code, _, err) = strata(&["review", "--db", &db, "--org", "ghost"]);
    assert_eq!(code, 2);
    assert!(err.contains("ghost"), "{err}");
    let (code, _, err) = strata(&[
        "review",
        "--db",
        &db,
        "--org",
        "o",
        "--inactive-days",
        "100000",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--inactive-days"), "{err}");
}

#[test]
fn review_through_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("strata.db");
    let db = db.to_string_lossy();
    common::create_org(None, &db, "o", &scenario());
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
            "root-key-for-review-test-0123456789",
        ]));
    let remote = |key: &str, format: &str, out: &std::path::Path| {
        strata(&[
            "review",
            "--server",
            &url,
            "--key",
            key,
            "--org",
            "o",
            "--format",
            format,
            "--out",
            &out.to_string_lossy(),
        ])
    };
    let book = dir.path().join("remote.xlsx");
    let (code, out, err) = remote(&admin, "xlsx", &book);
    assert_eq!(code, 0, "{out}{err}");
    assert!(std::fs::read(&book).unwrap().starts_with(b"PK"));
    let folder = dir.path().join("remote-csv");
    let (code, out, err) = remote(&admin, "csv", &folder);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("wrote 14 CSV files"), "{out}");
    let admins = std::fs::read_to_string(folder.join("system_administrators.csv")).unwrap();
    assert!(admins.contains("\r\nadmin,"), "{admins}");
    let (code, _, err) = remote(&quinn, "xlsx", &dir.path().join("quinn.xlsx"));
    assert_eq!(code, 2);
    assert!(err.contains("HTTP 403") && err.contains("D70"), "{err}");
    child.kill().unwrap();
    let _ = child.wait();
}
