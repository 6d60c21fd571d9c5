//! `strata checkpoint` takes a checkpoint a server then starts from, giving the state a server
//! started from the whole log gives (the same digest); `strata serve --checkpoint-every` takes
//! them by itself; `strata bench startup` prints its table and checks the two loads agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{spawn_serving, strata};

const ROOT: &str = "root-key-for-checkpoint-test-0123456789";

fn generate(db: &str) {
    let (code, _, err) = strata(&["bench", "generate", "--records", "1500", "--db", db]);
    assert_eq!(code, 0, "{err}");
}

/// Serves `db`, returns the digest of `bench` (its SHA-256 and revision), and stops.
fn served_digest(db: &str, extra: &[&str]) -> (String, u64) {
    let mut args = vec![
        "serve",
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--root-key",
        ROOT,
    ];
    args.extend_from_slice(extra);
    let (mut child, url) = spawn_serving(Command::new(env!("CARGO_BIN_EXE_strata")).args(&args));
    let digest = |query: &str| -> serde_json::Value {
        let body = ureq::get(&format!("{url}/api/v1/orgs/bench/digest{query}"))
            .header("Authorization", &format!("Bearer {ROOT}"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    };
    let v = digest("");
    let quick = digest("?indexes=false");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(v["indexes_current"], true, "{v}");
    assert_eq!(v["record_index_current"], true, "{v}");
    // Without the rebuilds: the same dump, no index fields.
    assert_eq!(quick["sha256"], v["sha256"], "{quick}");
    assert!(quick.get("indexes_current").is_none(), "{quick}");
    assert!(quick.get("record_index_current").is_none(), "{quick}");
    (
        v["sha256"].as_str().unwrap().to_owned(),
        v["revision"].as_u64().unwrap(),
    )
}

#[test]
fn a_server_started_from_a_checkpoint_holds_what_the_whole_log_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        dir.path().join("a.db").to_string_lossy().into_owned(),
        dir.path().join("b.db").to_string_lossy().into_owned(),
    );
    generate(&a);
    generate(&b);
    let (code, out, err) = strata(&["checkpoint", "--db", &a, "--org", "bench"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("checkpoint of `bench` at revision"), "{out}");
    assert!(out.contains("loaded from the whole log"), "{out}");
    let (code, out, err) = strata(&["checkpoint", "--db", &a, "--list"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("bench ")).count(),
        1,
        "{out}"
    );
    // The format this build writes, and when it was taken (RFC 3339).
    let row = out.lines().find(|l| l.starts_with("bench ")).unwrap();
    assert!(
        row.contains(&format!(" {} ", strata_checkpoint::FORMAT_VERSION))
            && row.trim_end().ends_with('Z'),
        "{out}"
    );
    let (code, out, err) = strata(&["checkpoint", "--db", &a]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("has a checkpoint at revision"), "{out}");
    // The same generated log, one started from a checkpoint, one from the whole log.
    let from_checkpoint = served_digest(&a, &["--checkpoint-every", "0"]);
    let from_log = served_digest(&b, &["--checkpoint-every", "0"]);
    assert_eq!(from_checkpoint, from_log);
    // An unknown organisation, a missing database.
    let (code, _, err) = strata(&["checkpoint", "--db", &a, "--org", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown organization"), "{err}");
    let missing = dir.path().join("none.db").to_string_lossy().into_owned();
    let (code, _, _) = strata(&["checkpoint", "--db", &missing]);
    assert_ne!(code, 0);
}

#[test]
fn serve_takes_periodic_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db").to_string_lossy().into_owned();
    generate(&db);
    let mut args = vec![
        "serve",
        "--db",
        &db,
        "--listen",
        "127.0.0.1:0",
        "--root-key",
        ROOT,
    ];
    args.extend_from_slice(&["--checkpoint-every", "1", "--poll-ms", "50"]);
    let (mut child, _url) = spawn_serving(Command::new(env!("CARGO_BIN_EXE_strata")).args(&args));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let taken = loop {
        let (code, out, err) = strata(&["checkpoint", "--db", &db, "--list"]);
        assert_eq!(code, 0, "{err}");
        if out.lines().any(|l| l.starts_with("bench ")) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(taken, "the server took no checkpoint");
}

#[test]
fn bench_startup_prints_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = strata(&[
        "bench",
        "startup",
        "--records",
        "1000",
        "--tail",
        "50",
        "--dir",
        &dir.path().to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{err}");
    for row in [
        "full replay",
        "checkpoint size",
        "checkpoint load + tail (whole)",
        "tail read + verify (50 operations)",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("same organisation") && l.trim_end().ends_with("yes")),
        "{out}"
    );
}
