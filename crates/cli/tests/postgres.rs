//! Every verb that takes `--db` works on a PostgreSQL database given as a URL, with the audit key
//! in `--audit-key-file`; bad URLs, unreachable servers and a missing key file are refused with
//! their codes. The tests that need a server run when `STRATA_TEST_POSTGRES` names one (each in a
//! fresh database), print a note when it is not set, and fail under CI without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

mod common;

use common::{repo, strata_with as strata};
use strata_store::postgres_testing::{self, ScratchDatabase};

/// The server of `STRATA_TEST_POSTGRES`, or `None` after a note (a failure under CI).
fn postgres(test: &str) -> Option<String> {
    postgres_testing::server_or_skip(test)
}

/// Runs `strata` with the audit key file and expects success; returns stdout.
fn ok(key_file: &Path, args: &[&str]) -> String {
    let (code, out, err) = strata(Some(key_file), args);
    assert_eq!(code, 0, "strata {args:?}: {out}{err}");
    out
}

#[test]
fn every_database_verb_works_on_postgres() {
    let Some(server) = postgres("every_database_verb_works_on_postgres") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let db = scratch.url();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-key");
    let scenario = repo().join("tests/scenarios/examples/seed002-sales-representative.yaml");

    let out = common::create_org(Some(&key), db, "contoso", &scenario);
    assert!(out.contains("created organization `contoso`"), "{out}");
    assert!(key.exists(), "the key file is created on first use");
    ok(&key, &["org", "create", "--db", db, "--org", "spare"]);
    let listed = ok(&key, &["org", "list", "--db", db]);
    assert!(listed.starts_with("contoso\t"), "{listed}");
    ok(&key, &["org", "delete", "--db", db, "--org", "spare"]);
    assert_eq!(ok(&key, &["org", "list", "--db", db]).lines().count(), 1);

    // Audit everything on accounts, then write as a user.
    let ops = dir.path().join("ops.json");
    std::fs::write(
        &ops,
        r#"[{"op": "set_audit", "enabled": true, "user_access": true, "tables": ["account"]}]"#,
    )
    .unwrap();
    ok(
        &key,
        &[
            "apply",
            ops.to_str().unwrap(),
            "--db",
            db,
            "--org",
            "contoso",
        ],
    );
    std::fs::write(
        &ops,
        r#"{"op": "update", "record": "acc_own", "fields": {"name": "Renamed"}}"#,
    )
    .unwrap();
    let applied = ok(
        &key,
        &[
            "apply",
            ops.to_str().unwrap(),
            "--db",
            db,
            "--org",
            "contoso",
            "--as",
            "rep_east",
        ],
    );
    assert!(applied.contains("applied 1 operations"), "{applied}");

    let who = ok(
        &key,
        &[
            "who-has-access",
            "--db",
            db,
            "--org",
            "contoso",
            "--record",
            "acc_peer",
        ],
    );
    assert!(who.lines().any(|l| l == "rep_east"), "{who}");
    let (code, out, err) = strata(
        Some(&key),
        &[
            "check",
            "--db",
            db,
            "--org",
            "contoso",
            "--user",
            "rep_east",
            "--privilege",
            "write",
            "--record",
            "acc_peer",
        ],
    );
    assert_eq!((code, out.trim()), (1, "deny"), "{err}");

    let secret = ok(
        &key,
        &[
            "api-key", "create", "--db", db, "--org", "contoso", "--user", "rep_east",
        ],
    );
    assert!(secret.trim().starts_with("strata_"), "{secret}");
    let keys = ok(&key, &["api-key", "list", "--db", db, "--org", "contoso"]);
    let id = keys.split('\t').next().unwrap().to_owned();
    assert!(keys.contains("\trep_east\tactive"), "{keys}");
    ok(
        &key,
        &[
            "api-key", "revoke", "--db", db, "--org", "contoso", "--id", &id,
        ],
    );
    assert!(ok(&key, &["api-key", "list", "--db", db, "--org", "contoso"]).contains("revoked"));

    let entries = ok(
        &key,
        &[
            "audit", "query", "--db", db, "--org", "contoso", "--record", "acc_own",
        ],
    );
    let first: serde_json::Value = serde_json::from_str(entries.lines().next().unwrap()).unwrap();
    assert_eq!(first["action"], "update", "{entries}");
    assert_eq!(first["user"], "rep_east", "{entries}");
    let verified = ok(&key, &["audit", "verify", "--db", db, "--org", "contoso"]);
    assert!(verified.contains("is intact"), "{verified}");
    ok(&key, &["audit", "expire", "--db", db, "--org", "contoso"]);

    // Edited with SQL: verification fails with exit status 1.
    postgres_testing::execute(
        db,
        "UPDATE audit SET user_name = 'mallory' WHERE org = 'contoso'",
    )
    .unwrap();
    let (code, out, _) = strata(
        Some(&key),
        &["audit", "verify", "--db", db, "--org", "contoso"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED"), "{out}");

    let generated = ok(
        &key,
        &[
            "bench",
            "generate",
            "--db",
            db,
            "--org",
            "bench",
            "--records",
            "300",
        ],
    );
    assert!(generated.contains("300 generated records"), "{generated}");

    // The operation logs: intact, then one row edited with SQL: exit status 1, naming it.
    let logs = ok(&key, &["log", "verify", "--db", db]);
    assert!(
        logs.contains("operation log of `contoso` is intact")
            && logs.contains("operation log of `bench` is intact"),
        "{logs}"
    );
    postgres_testing::execute(
        db,
        "UPDATE operations SET at_ms = at_ms + 1 WHERE org = 'contoso' AND revision = 2",
    )
    .unwrap();
    let (code, out, _) = strata(Some(&key), &["log", "verify", "--db", db]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("operation log of `contoso` was TAMPERED WITH")
            && out.contains("revision 2 (edited)")
            && out.contains("(corrupt_log)")
            && out.contains("operation log of `bench` is intact"),
        "{out}"
    );

    // Without the key file, a PostgreSQL database is refused.
    let (code, _, err) = strata(None, &["org", "list", "--db", db]);
    assert_eq!(code, 2);
    assert!(err.contains("--audit-key-file"), "{err}");
    // With another key file, too: the database knows its key's fingerprint.
    let (code, _, err) = strata(
        Some(&dir.path().join("other-key")),
        &["org", "list", "--db", db],
    );
    assert_eq!(code, 2);
    assert!(err.contains("(audit_key)"), "{err}");
}

/// `strata serve --db postgresql://…` serves what the CLI stored, and writes through the API
/// land in PostgreSQL.
#[test]
fn serve_and_demo_run_on_postgres() {
    let Some(server) = postgres("serve_and_demo_run_on_postgres") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let db = scratch.url();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-key");

    // `demo` builds its organisation in PostgreSQL, then serves it.
    let (mut child, addr) = spawn_server(&[
        "demo",
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--records",
        "20",
        "--admin-key",
        "demo-admin-key",
        "--audit-key-file",
        key.to_str().unwrap(),
    ]);
    let client =
        strata_scenario::http_client::HttpClient::new(&addr, std::time::Duration::from_secs(10))
            .unwrap();
    let ready = client.request("GET", "/readyz", &[], None).unwrap();
    assert_eq!(ready.status, 200);
    let auth = [("Authorization", "Bearer demo-admin-key")];
    let revision = client
        .request("GET", "/api/v1/orgs/demo/revision", &auth, None)
        .unwrap();
    assert_eq!(
        revision.status,
        200,
        "{}",
        String::from_utf8_lossy(&revision.body)
    );
    child.kill().unwrap();
    let _ = child.wait();
    let listed = ok(&key, &["org", "list", "--db", db]);
    assert!(listed.starts_with("demo\t"), "{listed}");

    // `serve` on the same database: a write through the API, then read back by the CLI.
    let (mut child, addr) = spawn_server(&[
        "serve",
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--root-key",
        "root",
        "--audit-key-file",
        key.to_str().unwrap(),
    ]);
    let client =
        strata_scenario::http_client::HttpClient::new(&addr, std::time::Duration::from_secs(10))
            .unwrap();
    let root = [
        ("Authorization", "Bearer root"),
        ("Content-Type", "application/json"),
    ];
    let created = client
        .request("POST", "/api/v1/orgs", &root, Some(br#"{"name": "fresh"}"#))
        .unwrap();
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let written = client
        .request(
            "POST",
            "/api/v1/orgs/fresh/operations",
            &root,
            Some(br#"[{"op": "add_business_unit", "name": "Root"}, {"op": "set_audit", "enabled": true}]"#),
        )
        .unwrap();
    assert_eq!(
        written.status,
        200,
        "{}",
        String::from_utf8_lossy(&written.body)
    );
    let verify = client
        .request("GET", "/api/v1/orgs/fresh/audit/verify", &root, None)
        .unwrap();
    assert_eq!(verify.status, 200);
    let verify: serde_json::Value = serde_json::from_slice(&verify.body).unwrap();
    assert_eq!(verify["intact"], true, "{verify}");
    child.kill().unwrap();
    let _ = child.wait();
    let listed = ok(&key, &["org", "list", "--db", db]);
    assert!(listed.contains("fresh\t2"), "{listed}");
}

/// Starts `strata` serving on a free port; returns the child and its URL.
fn spawn_server(args: &[&str]) -> (std::process::Child, String) {
    common::spawn_serving(Command::new(env!("CARGO_BIN_EXE_strata")).args(args))
}

#[test]
fn bad_urls_and_unreachable_servers_are_refused_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-key");
    let (code, _, err) = strata(
        Some(&key),
        &[
            "org",
            "list",
            "--db",
            "postgresql://u:hunter2@127.0.0.1:x/db",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("(bad_database_url)"), "{err}");
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    // Nothing listens on port 1.
    let (code, _, err) = strata(
        Some(&key),
        &[
            "audit",
            "verify",
            "--db",
            "postgresql://u:hunter2@127.0.0.1:1/db",
            "--org",
            "o",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("(database_unreachable)"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2"), "the password is shown: {err}");
    assert!(!key.exists(), "no key file for a database never reached");
}
