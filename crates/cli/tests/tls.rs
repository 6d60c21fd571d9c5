//! HTTPS through the command line: `strata demo --tls-self-signed` and `strata serve` with its
//! certificate answer over HTTPS and print `https://` URLs; the TLS flags' mistakes are refused
//! before anything listens, each with its error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn strata() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
    command.env_remove("STRATA_AUDIT_KEY_FILE");
    command
}

/// An HTTP client that trusts only the certificate in `cert`.
fn trusting(cert: &Path) -> ureq::Agent {
    let root = ureq::tls::Certificate::from_pem(&std::fs::read(cert).unwrap()).unwrap();
    ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
                .build(),
        )
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn get(agent: &ureq::Agent, url: &str, key: Option<&str>) -> (u16, String) {
    let mut request = agent.get(url);
    if let Some(key) = key {
        request = request.header("Authorization", &format!("Bearer {key}"));
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// Runs `strata` expecting it to fail by itself (within a minute): its exit status and stderr.
fn fails(args: &[&str]) -> (i32, String) {
    let mut child = strata()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("`strata {}` did not stop by itself", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("serving") && !stdout.contains("Serving"),
        "it served: {stdout}"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_with_a_self_signed_certificate_answers_over_https_and_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("demo.db");
    let db = db.to_str().unwrap();
    let demo = [
        "demo",
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--records",
        "20",
        "--admin-key",
        "demo-admin-key",
        "--tls-self-signed",
    ];
    let (mut child, url) = common::spawn_serving(strata().args(demo));
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let cert = dir.path().join("data").join("strata-tls-cert.pem");
    let key = dir.path().join("data").join("strata-tls-key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    let agent = trusting(&cert);
    let (status, body) = get(&agent, &format!("{url}/healthz"), None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(
        &agent,
        &format!("{url}/api/v1/orgs/demo/revision"),
        Some("demo-admin-key"),
    );
    assert_eq!(status, 200, "{body}");
    let localhost = url.replace("127.0.0.1", "localhost");
    assert_eq!(get(&agent, &format!("{localhost}/healthz"), None).0, 200);
    child.kill().unwrap();
    let _ = child.wait();

    // Started again, the demo keeps its certificate: clients that trust it still do.
    let cert_pem = std::fs::read(&cert).unwrap();
    let key_pem = std::fs::read(&key).unwrap();
    let (mut child, url) = common::spawn_serving(strata().args(demo));
    assert_eq!(std::fs::read(&cert).unwrap(), cert_pem);
    assert_eq!(std::fs::read(&key).unwrap(), key_pem);
    assert_eq!(get(&agent, &format!("{url}/healthz"), None).0, 200);
    child.kill().unwrap();
    let _ = child.wait();

    // `serve` on the same database with the same certificate, given as files.
    let (mut child, url) = common::spawn_serving(strata().args([
        "serve",
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]));
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let (status, body) = get(
        &agent,
        &format!("{url}/api/v1/orgs/demo/revision"),
        Some("demo-admin-key"),
    );
    assert_eq!(status, 200, "{body}");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn serve_over_plain_http_still_prints_an_http_url() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("plain.db");
    let (mut child, url) = common::spawn_serving(strata().args([
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    child.kill().unwrap();
    let _ = child.wait();
    assert!(!dir.path().join("strata-tls-cert.pem").exists());
}

#[test]
fn tls_flag_mistakes_are_refused_before_anything_listens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.db");
    let db = db.to_str().unwrap();
    let made = strata_server::tls::self_signed(&dir.path().join("a"), None).unwrap();
    let other = strata_server::tls::self_signed(&dir.path().join("b"), None).unwrap();
    let (cert, key) = (made.cert.to_str().unwrap(), made.key.to_str().unwrap());
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let serve = |extra: &[&str]| {
        let mut args = vec!["serve", "--db", db, "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        fails(&args)
    };

    // One flag without the other names the missing one.
    let (code, err) = serve(&["--tls-cert", cert]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--tls-key"), "{err}");
    let (code, err) = serve(&["--tls-key", key]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--tls-cert"), "{err}");
    // Self-signed and a certificate of one's own exclude each other.
    let (code, err) = serve(&["--tls-self-signed", "--tls-cert", cert, "--tls-key", key]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--tls-self-signed") && err.contains("--tls-cert"),
        "{err}"
    );

    // Files that cannot serve: each error names the file and what is wrong.
    let (code, err) = serve(&["--tls-cert", missing, "--tls-key", key]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("missing.pem") && err.contains("does not exist"),
        "{err}"
    );
    let (code, err) = serve(&["--tls-cert", cert, "--tls-key", missing]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("private key") && err.contains("missing.pem"),
        "{err}"
    );
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (code, err) = serve(&["--tls-cert", bad.to_str().unwrap(), "--tls-key", key]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bad.pem") && err.contains("does not parse"),
        "{err}"
    );
    let (code, err) = serve(&["--tls-cert", cert, "--tls-key", cert]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no private key in"), "{err}");
    let (code, err) = serve(&["--tls-cert", cert, "--tls-key", other.key.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not match"), "{err}");

    // `demo` takes the same flags, with the same errors.
    let (code, err) = fails(&[
        "demo",
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert,
        "--tls-key",
        other.key.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("does not match"), "{err}");

    // None of these made a database.
    assert!(!Path::new(db).exists());
}
