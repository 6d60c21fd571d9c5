//! The Web API driven by a real Dataverse client (issue 10): `tests/webapi-client/client.mjs`
//! runs the npm `dynamics-web-api` client, unchanged, against `strata demo`, once over HTTP and
//! once over HTTPS with the demo's self-signed certificate (as real Dataverse clients connect),
//! and against the second of two nodes on PostgreSQL, which forwards its writes to the first
//! (D150; when `STRATA_TEST_POSTGRES` names a server).
//!
//! The tests need Node and `npm ci` run in `tests/webapi-client`. Without them they print a
//! note and pass, so that a developer without npm can still run the suite; under CI (`CI` set)
//! they fail instead: `.ci/run` installs both. Every step runs here: the script's
//! `STRATA_SKIP_BATCH` (for a server without `$batch`) is removed from its environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_KEY: &str = "webapi-client-admin-key";
const ROOT_KEY: &str = "webapi-client-root-key";
/// Enough accounts for several pages of 7 with a filter.
const RECORDS: &str = "60";
/// The longest the client may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/webapi-client")
}

/// Whether Node and the installed client are here; without them a note, or under CI a failure.
fn client_installed(test: &str) -> bool {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let package = client_dir()
        .join("node_modules/dynamics-web-api/package.json")
        .exists();
    if node && package {
        return true;
    }
    let missing = if node {
        "tests/webapi-client/node_modules (run `npm ci` there)"
    } else {
        "node"
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI runs the real-client test, but {missing} is missing (.ci/run installs it)"
    );
    eprintln!("note: {test}: skipped, {missing} is missing");
    false
}

/// `strata demo` on `db`, on a port the system picks, with the test's keys and records.
fn demo_args(db: &str) -> [&str; 11] {
    [
        "demo",
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--records",
        RECORDS,
        "--admin-key",
        ADMIN_KEY,
        "--root-key",
        ROOT_KEY,
    ]
}

/// Starts the demo on a free port in `dir` (with TLS when asked), runs the client against it,
/// and fails with the client's output unless every step passed.
fn run_client(dir: &Path, tls: bool) {
    let db = dir.join("demo.db");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_strata"));
    demo.args(demo_args(db.to_str().unwrap()));
    if tls {
        demo.arg("--tls-self-signed");
    }
    let (mut server, url) = common::spawn_serving(&mut demo);
    assert_eq!(url.starts_with("https://"), tls, "{url}");
    let cert = dir.join("strata-tls-cert.pem");
    client_against(&url, tls.then_some(cert.as_path()));
    server.kill().unwrap();
    let _ = server.wait();
}

/// Runs the client against the demo organisation at `url` (trusting `cert` for HTTPS) and
/// fails with the client's output unless every step passed.
fn client_against(url: &str, cert: Option<&Path>) {
    let mut node = Command::new("node");
    node.arg("client.mjs")
        .current_dir(client_dir())
        .env("STRATA_URL", url)
        .env("STRATA_ADMIN_KEY", ADMIN_KEY)
        .env("STRATA_ROOT_KEY", ROOT_KEY)
        .env("STRATA_ORG", "demo")
        // The client sends every request through a lowercase *_proxy, with no NO_PROXY.
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("NODE_OPTIONS")
        .env_remove("STRATA_SKIP_BATCH")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cert) = cert {
        assert!(cert.exists(), "no certificate at {}", cert.display());
        node.env("NODE_EXTRA_CA_CERTS", cert);
    } else {
        node.env_remove("NODE_EXTRA_CA_CERTS");
    }
    let mut child = node.spawn().expect("node runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > CLIENT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let status = status
        .unwrap_or_else(|| panic!("the client did not finish in {CLIENT_TIMEOUT:?}\n{out}\n{err}"));
    assert!(
        status.success(),
        "the dynamics-web-api client failed against {url} ({status})\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.contains("steps passed"), "{out}\n{err}");
    println!("{out}");
}

#[test]
fn the_dynamics_web_api_client_passes_every_step_over_http() {
    if !client_installed("the_dynamics_web_api_client_passes_every_step_over_http") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run_client(dir.path(), false);
}

#[test]
fn the_dynamics_web_api_client_passes_every_step_over_https() {
    if !client_installed("the_dynamics_web_api_client_passes_every_step_over_https") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    run_client(dir.path(), true);
}

/// Two nodes on one PostgreSQL database, each advertising itself (D150): the client runs
/// against the node that does not hold the demo organisation's write lease, which forwards
/// every write the client makes to the one that does — and every step passes as on one node.
#[test]
fn the_dynamics_web_api_client_passes_every_step_on_a_node_that_forwards_its_writes() {
    let test = "the_dynamics_web_api_client_passes_every_step_on_a_node_that_forwards_its_writes";
    if !client_installed(test) {
        return;
    }
    let Some(server) = strata_store::postgres_testing::server_or_skip(test) else {
        return;
    };
    let scratch = strata_store::postgres_testing::ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("audit-key");
    let strata = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
        command.args(["--audit-key-file", key_file.to_str().unwrap()]);
        command
    };
    // The demo organisation, built in the database; then two nodes on it.
    let (mut demo, _) = common::spawn_serving(strata().args(demo_args(scratch.url())));
    demo.kill().unwrap();
    let _ = demo.wait();
    let node = || {
        let listen = format!("127.0.0.1:{}", common::free_port());
        let (child, url) = common::spawn_serving(strata().args([
            "serve",
            "--db",
            scratch.url(),
            "--root-key",
            ROOT_KEY,
            "--listen",
            &listen,
            "--advertise-url",
            &format!("http://{listen}"),
        ]));
        let client =
            strata_scenario::http_client::HttpClient::new(&url, Duration::from_secs(30)).unwrap();
        (child, url, client)
    };
    let (mut a, _, a_client) = node();
    let (mut b, b_url, b_client) = node();
    let auth = format!("Bearer {ROOT_KEY}");
    let write = |client: &strata_scenario::http_client::HttpClient| {
        let r = client
            .request(
                "POST",
                "/api/v1/orgs/demo/operations",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                Some(br#"{"op": "set_audit", "enabled": true}"#),
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    };
    let forwarded = || {
        let r = b_client.request("GET", "/metrics", &[], None).unwrap();
        String::from_utf8(r.body)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("strata_writes_forwarded_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap()
    };
    // A writes first and takes the lease; B writes until it forwards to A.
    write(&a_client);
    std::thread::sleep(Duration::from_millis(1200));
    let start = Instant::now();
    while forwarded() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "B never forwarded"
        );
        write(&a_client);
        write(&b_client);
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = forwarded();
    client_against(&b_url, None);
    assert!(
        forwarded() > before,
        "the client's writes were not forwarded"
    );
    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
