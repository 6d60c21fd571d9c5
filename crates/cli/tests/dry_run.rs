//! `strata apply --dry-run`: the access difference as tables and as JSON, nothing written, and
//! a batch the write would refuse refused the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn strata(key_file: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env_remove("STRATA_AUDIT_KEY_FILE")
        .arg("--audit-key-file")
        .arg(key_file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dry_run_prints_the_access_difference_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-key");
    let db = dir.path().join("strata.db");
    let db = db.to_str().unwrap();
    let scenario = repo().join("tests/scenarios/examples/seed002-hierarchy.yaml");
    let (code, out, err) = strata(
        &key,
        &[
            "org",
            "create",
            "--db",
            db,
            "--org",
            "o",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let listed = || strata(&key, &["org", "list", "--db", db]).1;
    let before = listed();
    // a_rep moves from rep1 (under manager_na, vp_sales) to vp_service.
    let ops = dir.path().join("ops.json");
    std::fs::write(
        &ops,
        r#"[{"op": "assign", "record": "a_rep", "owner": "vp_service"}]"#,
    )
    .unwrap();
    let ops = ops.to_str().unwrap();
    let (code, out, err) = strata(&key, &["apply", ops, "--db", db, "--org", "o", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing was written"), "{out}");
    assert!(out.contains("owner_changed"), "{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip_while(|l| !l.starts_with("records readable"))
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["manager_na", "account", "0", "1"],
            ["rep1", "account", "0", "1"],
            ["vp_sales", "account", "0", "1"],
            ["vp_service", "account", "1", "0"],
        ],
        "{out}"
    );
    let (code, out, err) = strata(
        &key,
        &[
            "apply",
            ops,
            "--db",
            db,
            "--org",
            "o",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["dry_run"], true);
    assert_eq!(
        answer["difference"]["users"].as_array().map(Vec::len),
        Some(4),
        "{out}"
    );
    assert_eq!(listed(), before, "the revision did not move");
    // A refused batch: the write's error, nothing printed on stdout.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"[{"op": "assign", "record": "a_rep", "owner": "vp_service"}, {"op": "assign", "record": "nope", "owner": "ceo"}]"#).unwrap();
    let (code, out, err) = strata(
        &key,
        &[
            "apply",
            bad.to_str().unwrap(),
            "--db",
            db,
            "--org",
            "o",
            "--dry-run",
        ],
    );
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("nope"), "{err}");
    assert_eq!(listed(), before);
}
