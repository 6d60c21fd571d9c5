//! `strata apply --dry-run`: the access difference as tables and as JSON, nothing written, and
//! a batch the write would refuse refused the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{repo, strata_with};

fn strata(key_file: &Path, args: &[&str]) -> (i32, String, String) {
    strata_with(Some(key_file), args)
}

#[test]
fn dry_run_prints_the_access_difference_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-key");
    let db = dir.path().join("strata.db");
    let db = db.to_str().unwrap();
    let scenario = repo().join("tests/scenarios/examples/seed002-hierarchy.yaml");
    common::create_org(Some(&key), db, "o", &scenario);
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
