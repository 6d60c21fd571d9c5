//! `strata rules list|add|remove|check` on a database file: tables for a person, `--json` for a
//! script, the write path's refusals named, exit status 1 when a rule is broken.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run strata: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rules_are_listed_added_removed_and_checked() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let db = dir.path().join("strata.db");
    let db = db.to_string_lossy();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/scenarios/admin/rules-violations.yaml");
    let scenario = scenario.to_string_lossy();
    let (code, _, err) = run(&[
        "org",
        "create",
        "--db",
        &db,
        "--org",
        "o",
        "--scenario",
        &scenario,
    ]);
    assert_eq!(code, 0, "{err}");
    let local = ["--db", &*db, "--org", "o"];
    let with = |verb: &[&str], extra: &[&str]| {
        let mut args = vec!["rules"];
        args.extend_from_slice(verb);
        args.extend_from_slice(&local);
        args.extend_from_slice(extra);
        run(&args)
    };

    let (code, out, err) = with(&["list"], &[]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ROLE") && lines[1].starts_with("----"),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Omnichannel API access")
            && l.contains("excludes")
            && l.ends_with("Omnichannel agent")),
        "{out}"
    );

    // The report: exit 1 while a rule is broken, one row per user and rule.
    let (code, out, _) = with(&["check"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("pat ") && l.contains("missing Basic User")),
        "{out}"
    );
    let (code, out, _) = with(&["check"], &["--user", "pat", "--json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let kinds: Vec<&str> = json["violations"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["missing", "conflict"]);

    // Adding through the write path: refusals named, exit 2; a user without the right denied.
    let (code, _, err) = with(
        &["add"],
        &["--role", "Basic User", "--excludes", "Omnichannel agent"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("contradicts"), "{err}");
    let (code, _, err) = with(
        &["add"],
        &["--as", "quinn", "--role", "Basic User", "--direct-only"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("lacks `write`") && err.contains("`role`"),
        "{err}"
    );
    let (code, out, err) = with(
        &["add"],
        &[
            "--as",
            "admin",
            "--role",
            "Productivity tools user",
            "--requires",
            "Basic User",
            "--requires",
            "Omnichannel agent",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("added: revision "), "{out}");
    let (_, out, _) = with(&["list"], &["--json"]);
    assert!(
        out.contains("Productivity tools user requires one of Basic User, Omnichannel agent"),
        "{out}"
    );

    // Removing every rule leaves nothing broken: exit 0.
    for rule in [
        &[
            "--role",
            "Productivity tools user",
            "--requires",
            "Basic User",
            "--requires",
            "Omnichannel agent",
        ][..],
        &[
            "--role",
            "Omnichannel administrator",
            "--requires",
            "System Administrator",
        ][..],
        &["--role", "Omnichannel agent", "--requires", "Basic User"][..],
        &[
            "--role",
            "Omnichannel agent",
            "--excludes",
            "Omnichannel API access",
        ][..],
    ] {
        let (code, _, err) = with(&["remove"], rule);
        assert_eq!(code, 0, "{rule:?}: {err}");
    }
    let (code, _, err) = with(
        &["remove"],
        &["--role", "Omnichannel agent", "--requires", "Basic User"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no rule"), "{err}");
    let (code, out, _) = with(&["check"], &[]);
    assert_eq!((code, out.trim()), (0, "no violations"));
}

#[test]
fn rules_through_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("strata.db");
    let db = db.to_string_lossy();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/scenarios/admin/rules-violations.yaml");
    let (code, _, err) = run(&[
        "org",
        "create",
        "--db",
        &db,
        "--org",
        "o",
        "--scenario",
        &scenario.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, key, err) = run(&[
        "api-key", "create", "--db", &db, "--org", "o", "--user", "admin",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, quinn, err) = run(&[
        "api-key", "create", "--db", &db, "--org", "o", "--user", "quinn",
    ]);
    assert_eq!(code, 0, "{err}");
    let (key, quinn) = (key.trim().to_owned(), quinn.trim().to_owned());
    let (mut child, url) =
        common::spawn_serving(Command::new(env!("CARGO_BIN_EXE_strata")).args([
            "serve",
            "--db",
            &db,
            "--listen",
            "127.0.0.1:0",
            "--root-key",
            "root-key-for-rules-test-0123456789",
        ]));
    let remote = |verb: &str, key: &str, extra: &[&str]| {
        let mut args = vec!["rules", verb, "--server", &url, "--key", key, "--org", "o"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let (code, out, err) = remote(
        "add",
        &key,
        &["--role", "Productivity tools user", "--direct-only"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("added: revision "), "{out}");
    let (code, _, err) = remote("add", &quinn, &["--role", "Basic User", "--direct-only"]);
    assert_eq!(code, 2);
    assert!(err.contains("HTTP 403"), "{err}");
    let (code, out, err) = remote("list", &key, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Productivity tools user") && l.contains("direct_only")),
        "{out}"
    );
    let (code, out, _) = remote("check", &key, &["--json"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("ola: Omnichannel administrator requires System Administrator"),
        "{out}"
    );
    let (code, out, _) = remote("check", &quinn, &["--user", "quinn"]);
    assert_eq!((code, out.trim()), (0, "no violations"));
    let (code, _, err) = remote(
        "remove",
        &key,
        &["--role", "Productivity tools user", "--direct-only"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = remote(
        "remove",
        &key,
        &["--role", "Productivity tools user", "--direct-only"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("HTTP 404"), "{err}");
    child.kill().unwrap();
    let _ = child.wait();
}
