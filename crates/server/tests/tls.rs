//! HTTPS: the server over TLS answers clients that trust its certificate, over HTTP/1.1 and
//! HTTP/2 (ALPN); plain HTTP, failed and stalled handshakes on the TLS port disturb no other
//! connection; graceful shutdown finishes a request in flight; certificate and key files that
//! cannot serve are refused with an error naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_server::tls::{self, TlsConfig, TlsError};
use strata_server::{ServerConfig, ServerOptions, serve_with};
use strata_store::{MemoryStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOT: &str = "root-key-for-tls-tests";

/// A server over TLS on a loopback port, on its own thread and runtime.
struct TlsServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl TlsServer {
    fn start(tls: TlsConfig) -> TlsServer {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new().unwrap());
        TlsServer::serve(store, move |_| ServerOptions {
            tls: Some(tls),
            ..ServerOptions::default()
        })
    }

    /// A server on `store`, with the options made for the address it listens on.
    fn serve(
        store: Arc<dyn Store>,
        options: impl FnOnce(SocketAddr) -> ServerOptions + Send + 'static,
    ) -> TlsServer {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> std::io::Result<()> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?;
                let _ = addr_tx.send(addr);
                let config = ServerConfig {
                    store,
                    root_key: Some(ROOT.to_owned()),
                };
                serve_with(config, options(addr), listener, async move {
                    let _ = rx.await;
                })
                .await
            })
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the server did not start");
        TlsServer {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Asks for a graceful shutdown and returns at once.
    fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Shuts down gracefully; panics unless `serve` returned `Ok` within `within`.
    fn stop_within(mut self, within: Duration) {
        self.begin_shutdown();
        let thread = self.thread.take().unwrap();
        let start = Instant::now();
        while !thread.is_finished() {
            assert!(
                start.elapsed() < within,
                "the server did not stop within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        thread.join().unwrap().unwrap();
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.begin_shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A self-signed certificate in a temporary directory: the directory, the certificate file,
/// the configuration.
fn self_signed() -> (tempfile::TempDir, PathBuf, TlsConfig) {
    let dir = tempfile::tempdir().unwrap();
    let made = tls::self_signed(dir.path(), None).unwrap();
    assert!(made.created);
    (dir, made.cert, made.config)
}

/// An HTTP/1.1 client (ureq) that trusts only the certificate in `cert`.
fn trusting(cert: &Path) -> ureq::Agent {
    let pem = std::fs::read(cert).unwrap();
    let root = ureq::tls::Certificate::from_pem(&pem).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn healthz(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut response = agent.get(&format!("{url}/healthz")).call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// A rustls client configuration that trusts only `cert` and offers `alpn`.
fn client_config(cert: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let pem = std::fs::read(cert).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for der in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        let der: rustls::pki_types::CertificateDer<'static> = der.unwrap();
        roots.add(der).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `addr` as `name`.
async fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Everything the peer sends until it closes (or the timeout passes: then a panic).
fn read_to_close(socket: &mut TcpStream, timeout: Duration) -> Vec<u8> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut received = Vec::new();
    loop {
        let mut buf = [0u8; 4096];
        match socket.read(&mut buf) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return received,
            Err(e) => panic!("the server kept the socket open: {e}"),
        }
    }
}

#[test]
fn https_answers_a_client_that_trusts_the_certificate_by_ip_and_by_name() {
    let (_dir, cert, config) = self_signed();
    let server = TlsServer::start(config);
    let agent = trusting(&cert);
    let port = server.addr.port();
    for url in [
        format!("https://127.0.0.1:{port}"),
        format!("https://localhost:{port}"),
    ] {
        let (status, body) = healthz(&agent, &url);
        assert_eq!(status, 200, "{url}: {body}");
        assert!(body.contains("ok"), "{url}: {body}");
    }
    // The same routes as over plain HTTP: an unknown route, the root key's organisations.
    let mut response = agent
        .get(&format!("https://127.0.0.1:{port}/nowhere"))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert!(
        response
            .body_mut()
            .read_to_string()
            .unwrap()
            .contains("unknown_route")
    );
    let response = agent
        .get(&format!("https://127.0.0.1:{port}/api/v1/orgs"))
        .header("Authorization", &format!("Bearer {ROOT}"))
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // A client that does not trust the certificate (the public roots) is refused.
    let untrusting: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let refused = untrusting
        .get(&format!("https://127.0.0.1:{port}/healthz"))
        .call();
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    // And the server goes on.
    assert_eq!(healthz(&agent, &format!("https://127.0.0.1:{port}")).0, 200);
    server.stop_within(Duration::from_secs(10));
}

#[test]
fn alpn_offers_http2_and_http11_and_both_answer() {
    let (_dir, cert, config) = self_signed();
    let server = TlsServer::start(config);
    let addr = server.addr;
    runtime().block_on(async {
        // HTTP/2, chosen by ALPN.
        let stream = connect(
            addr,
            "localhost",
            client_config(&cert, &[b"h2", b"http/1.1"]),
        )
        .await;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let request =
            axum::http::Request::get(format!("https://localhost:{}/healthz", addr.port()))
                .body(http_body_util::Empty::<axum::body::Bytes>::new())
                .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.version(), axum::http::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("ok"));

        // HTTP/1.1, chosen by ALPN.
        let mut stream = connect(addr, "localhost", client_config(&cert, &[b"http/1.1"])).await;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    });
    server.stop_within(Duration::from_secs(10));
}

#[test]
fn plain_http_and_stalled_handshakes_on_the_tls_port_do_not_disturb_a_good_request() {
    let (_dir, cert, config) = self_signed();
    let server = TlsServer::start(config);
    let agent = trusting(&cert);
    let url = format!("https://127.0.0.1:{}", server.addr.port());

    // A socket that never says anything, one that stops in the middle of a TLS record header,
    // and one that speaks plain HTTP: all open while a good request is made.
    let idle = TcpStream::connect(server.addr).unwrap();
    let mut partial = TcpStream::connect(server.addr).unwrap();
    partial.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let mut plain = TcpStream::connect(server.addr).unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    assert_eq!(healthz(&agent, &url).0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the good request waited behind the others: {:?}",
        started.elapsed()
    );

    // Plain HTTP gets nothing that looks like an answer, and its socket is closed.
    let answer = read_to_close(&mut plain, Duration::from_secs(15));
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // Many more bad connections, interleaved with good requests.
    for _ in 0..20 {
        let mut bad = TcpStream::connect(server.addr).unwrap();
        bad.write_all(b"\x16\x03\x01\x00\x05hello").unwrap();
        assert_eq!(healthz(&agent, &url).0, 200);
    }
    drop((idle, partial));
    server.stop_within(Duration::from_secs(10));
}

#[test]
fn a_stalled_handshake_is_closed_after_the_handshake_timeout() {
    let (_dir, _cert, mut config) = self_signed();
    config.handshake_timeout = Duration::from_millis(300);
    let server = TlsServer::start(config);
    let started = Instant::now();
    let mut idle = TcpStream::connect(server.addr).unwrap();
    let mut partial = TcpStream::connect(server.addr).unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    assert!(read_to_close(&mut idle, Duration::from_secs(5)).is_empty());
    assert!(read_to_close(&mut partial, Duration::from_secs(5)).is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "closed before the timeout: {waited:?}"
    );
    server.stop_within(Duration::from_secs(10));
}

#[test]
fn graceful_shutdown_finishes_a_request_in_flight_and_closes_idle_connections() {
    let (_dir, cert, config) = self_signed();
    let mut server = TlsServer::start(config);
    let addr = server.addr;
    // An idle keep-alive connection and a stalled handshake stay open through the shutdown.
    let agent = trusting(&cert);
    assert_eq!(
        healthz(&agent, &format!("https://127.0.0.1:{}", addr.port())).0,
        200
    );
    let _stalled = TcpStream::connect(addr).unwrap();

    let rt = runtime();
    let mut stream = rt.block_on(connect(
        addr,
        "127.0.0.1",
        client_config(&cert, &[b"http/1.1"]),
    ));
    let body = br#"{"name": "created-during-shutdown"}"#;
    let head = format!(
        "POST /api/v1/orgs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ROOT}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    rt.block_on(async {
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..10]).await.unwrap();
        stream.flush().await.unwrap();
    });
    // The request is in flight (its body half sent) when the shutdown begins.
    std::thread::sleep(Duration::from_millis(300));
    server.begin_shutdown();
    std::thread::sleep(Duration::from_millis(300));
    let response = rt.block_on(async {
        stream.write_all(&body[10..]).await.unwrap();
        stream.flush().await.unwrap();
        let mut response = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
            .await
            .expect("the response did not come");
        response
    });
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    server.stop_within(Duration::from_secs(10));
}

#[test]
fn rsa_pkcs1_and_ec_sec1_keys_serve() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    for (cert, key) in [
        ("rsa-cert.pem", "rsa-key-pkcs1.pem"),
        ("ec-cert.pem", "ec-key-sec1.pem"),
    ] {
        let cert = fixtures.join(cert);
        let config = TlsConfig::from_pem_files(&cert, &fixtures.join(key)).unwrap();
        let server = TlsServer::start(config);
        let (status, _) = healthz(
            &trusting(&cert),
            &format!("https://localhost:{}", server.addr.port()),
        );
        assert_eq!(status, 200, "{}", cert.display());
        server.stop_within(Duration::from_secs(10));
    }
}

/// The message of the error loading `cert` and `key`.
fn refusal(cert: &Path, key: &Path) -> (TlsError, String) {
    let e = TlsConfig::from_pem_files(cert, key).unwrap_err();
    let message = e.to_string();
    (e, message)
}

#[test]
fn certificate_and_key_files_that_cannot_serve_are_refused_naming_the_file() {
    let (dir, cert, _) = self_signed();
    let key = dir.path().join(tls::SELF_SIGNED_KEY_FILE);
    let missing = dir.path().join("missing.pem");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    let (e, m) = refusal(&missing, &key);
    assert!(matches!(e, TlsError::NotFound { .. }), "{m}");
    assert!(
        m.contains("certificate") && m.contains("missing.pem") && m.contains("does not exist"),
        "{m}"
    );
    let (e, m) = refusal(&cert, &missing);
    assert!(matches!(e, TlsError::NotFound { .. }), "{m}");
    assert!(
        m.contains("private key") && m.contains("missing.pem"),
        "{m}"
    );

    // The files swapped: no certificate in the key file, no key in the certificate file.
    let (e, m) = refusal(&key, &key);
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{m}");
    assert!(m.contains(tls::SELF_SIGNED_KEY_FILE), "{m}");
    let (e, m) = refusal(&cert, &cert);
    assert!(matches!(e, TlsError::NoKey { .. }), "{m}");
    assert!(m.contains(tls::SELF_SIGNED_CERT_FILE), "{m}");

    // Not PEM at all, or a PEM block that is not base64.
    let text = write("text.pem", "hello, this is no certificate\n");
    let (e, m) = refusal(&text, &key);
    assert!(matches!(e, TlsError::NoCertificate { .. }), "{m}");
    let bad_base64 = write(
        "bad-base64.pem",
        "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n",
    );
    let (e, m) = refusal(&bad_base64, &key);
    assert!(matches!(e, TlsError::BadCertificate { .. }), "{m}");
    assert!(
        m.contains("bad-base64.pem") && m.contains("does not parse"),
        "{m}"
    );
    let unterminated = write("unterminated.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
    let (e, m) = refusal(&unterminated, &key);
    assert!(matches!(e, TlsError::BadCertificate { .. }), "{m}");
    assert!(m.contains("END"), "{m}");

    // Well-formed PEM whose contents are not a certificate or a key.
    let junk_cert = write(
        "junk-cert.pem",
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    );
    let (e, m) = refusal(&junk_cert, &key);
    assert!(matches!(e, TlsError::BadCertificate { .. }), "{m}");
    assert!(m.contains("junk-cert.pem"), "{m}");
    let junk_key = write(
        "junk-key.pem",
        "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n",
    );
    let (e, m) = refusal(&cert, &junk_key);
    assert!(matches!(e, TlsError::BadKey { .. }), "{m}");
    assert!(
        m.contains("junk-key.pem") && m.contains("does not parse"),
        "{m}"
    );

    // Another certificate's key.
    let other = tempfile::tempdir().unwrap();
    tls::self_signed(other.path(), None).unwrap();
    let other_key = other.path().join(tls::SELF_SIGNED_KEY_FILE);
    let (e, m) = refusal(&cert, &other_key);
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{m}");
    assert!(
        m.contains("does not match") && m.contains(&other_key.display().to_string()),
        "{m}"
    );
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let (e, m) = refusal(&cert, &fixtures.join("rsa-key-pkcs1.pem"));
    assert!(matches!(e, TlsError::KeyMismatch { .. }), "{m}");
}

#[test]
fn a_self_signed_certificate_is_reused_while_valid_and_made_anew_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let first = tls::self_signed(dir.path(), None).unwrap();
    assert!(first.created);
    let cert_pem = std::fs::read(&first.cert).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&first.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }

    // Reused: the same names.
    let again = tls::self_signed(dir.path(), Some("127.0.0.1")).unwrap();
    assert!(!again.created);
    assert_eq!(std::fs::read(&again.cert).unwrap(), cert_pem);

    // Another listen host: made anew, for it too; the unspecified address is no name.
    assert_eq!(
        tls::self_signed_names(Some("0.0.0.0")),
        ["localhost", "127.0.0.1", "::1"]
    );
    assert_eq!(
        tls::self_signed_names(Some("[::1]")),
        ["localhost", "127.0.0.1", "::1"]
    );
    let named = tls::self_signed(dir.path(), Some("strata.test")).unwrap();
    assert!(named.created);
    assert_ne!(std::fs::read(&named.cert).unwrap(), cert_pem);
    assert!(
        !tls::self_signed(dir.path(), Some("strata.test"))
            .unwrap()
            .created
    );

    // A damaged or mismatched pair is replaced.
    std::fs::write(&named.key, "damaged").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(&named.key, readable).unwrap();
    }
    let mended = tls::self_signed(dir.path(), None).unwrap();
    assert!(mended.created);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&mended.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file mode {mode:o}");
    }
    let server = TlsServer::start(mended.config);
    assert_eq!(
        healthz(
            &trusting(&mended.cert),
            &format!("https://localhost:{}", server.addr.port())
        )
        .0,
        200
    );
    server.stop_within(Duration::from_secs(10));
}

/// A node of a two-node deployment over TLS on one PostgreSQL database, advertising
/// `https://127.0.0.1:PORT` (D150); `peer_ca` is what it trusts besides its own certificate.
fn tls_node(db: &str, key_file: &Path, tls: TlsConfig, peer_ca: Option<PathBuf>) -> TlsServer {
    let store: Arc<dyn Store> = Arc::new(strata_store::PostgresStore::open(db, key_file).unwrap());
    TlsServer::serve(store, move |addr| ServerOptions {
        tls: Some(tls),
        advertise_url: Some(format!("https://127.0.0.1:{}", addr.port())),
        write_lease: Duration::from_millis(600),
        peer_ca_file: peer_ca,
        ..ServerOptions::default()
    })
}

/// A request with the root key over HTTPS; the status and the body.
fn call(agent: &ureq::Agent, method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let auth = format!("Bearer {ROOT}");
    let mut response = match body {
        Some(body) => agent
            .post(url)
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap(),
        None if method == "GET" => agent
            .get(url)
            .header("Authorization", &auth)
            .call()
            .unwrap(),
        None => panic!("{method} without a body"),
    };
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

/// A `/metrics` counter of the node at `url`.
fn counter(agent: &ureq::Agent, url: &str, name: &str) -> u64 {
    let (_, text) = call(agent, "GET", &format!("{url}/metrics"), None);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Writes on both nodes until one has forwarded to the other or given up on it; the totals of
/// (forwarded, leader unreachable) over both.
fn write_on_both(agent: &ureq::Agent, urls: &[String; 2], prefix: &str) -> (u64, u64) {
    let totals = || {
        urls.iter().fold((0, 0), |(f, u), url| {
            (
                f + counter(agent, url, "strata_writes_forwarded_total"),
                u + counter(agent, url, "strata_writes_leader_unreachable_total"),
            )
        })
    };
    let start = Instant::now();
    for i in 0.. {
        let url = &urls[i % 2];
        let op = format!(
            r#"{{"op":"create","as":"admin","table":"account","id":"{prefix}{i}","fields":{{"name":"x"}}}}"#
        );
        let (status, body) = call(
            agent,
            "POST",
            &format!("{url}/api/v1/orgs/o/operations"),
            Some(&op),
        );
        assert_eq!(status, 200, "{body}");
        let (forwarded, unreachable) = totals();
        if forwarded + unreachable > 0 && i > 20 {
            return (forwarded, unreachable);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no node forwarded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unreachable!()
}

/// Two nodes over TLS (D150): a node forwards writes to the write leader over HTTPS, checking
/// its certificate — trusted when both serve the same certificate, or the other's is in
/// `--peer-ca-file`; a leader whose certificate it does not trust is never sent the request
/// (the handshake fails before anything is sent) and the node writes itself.
#[test]
fn writes_are_forwarded_over_https_only_to_a_node_whose_certificate_is_trusted() {
    let Some(server) = strata_store::postgres_testing::server_or_skip(
        "writes_are_forwarded_over_https_only_to_a_node_whose_certificate_is_trusted",
    ) else {
        return;
    };
    let scratch = strata_store::postgres_testing::ScratchDatabase::create(&server).unwrap();
    let (_dir1, cert1, config1) = self_signed();
    let (_dir2, cert2, config2) = self_signed();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("audit-key");
    // One certificate on both nodes: each trusts the other.
    let bundle = keys.path().join("both.pem");
    let mut pem = std::fs::read(&cert1).unwrap();
    pem.extend(std::fs::read(&cert2).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let agent = {
        let roots = [&cert1, &cert2]
            .iter()
            .map(|c| ureq::tls::Certificate::from_pem(&std::fs::read(c).unwrap()).unwrap())
            .collect::<Vec<_>>();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots)))
            .build();
        ureq::Agent::from(
            ureq::Agent::config_builder()
                .tls_config(tls)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build(),
        )
    };

    let a = tls_node(scratch.url(), &key_file, config1.clone(), None);
    let b = tls_node(scratch.url(), &key_file, config1.clone(), None);
    let urls = [a.addr, b.addr].map(|addr| format!("https://127.0.0.1:{}", addr.port()));
    let (status, body) = call(
        &agent,
        "POST",
        &format!("{}/api/v1/orgs", urls[0]),
        Some(r#"{"name":"o"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let model = r#"[{"op":"add_business_unit","name":"Root"},{"op":"add_table","name":"account","columns":[{"name":"name"}]},{"op":"add_role","name":"Admin","system_administrator":true},{"op":"add_user","name":"admin","business_unit":"Root"},{"op":"assign_role","principal":"admin","role":"Admin"}]"#;
    let (status, body) = call(
        &agent,
        "POST",
        &format!("{}/api/v1/orgs/o/operations", urls[0]),
        Some(model),
    );
    assert_eq!(status, 200, "{body}");
    let (forwarded, unreachable) = write_on_both(&agent, &urls, "same");
    assert!(
        forwarded > 0 && unreachable == 0,
        "{forwarded} {unreachable}"
    );
    a.stop_within(Duration::from_secs(10));
    b.stop_within(Duration::from_secs(10));

    // Different certificates, neither trusting the other's: every write is made where it
    // arrives.
    let a = tls_node(scratch.url(), &key_file, config1.clone(), None);
    let b = tls_node(scratch.url(), &key_file, config2.clone(), None);
    let urls = [a.addr, b.addr].map(|addr| format!("https://127.0.0.1:{}", addr.port()));
    let (forwarded, unreachable) = write_on_both(&agent, &urls, "untrusted");
    assert!(
        forwarded == 0 && unreachable > 0,
        "{forwarded} {unreachable}"
    );
    a.stop_within(Duration::from_secs(10));
    b.stop_within(Duration::from_secs(10));

    // The other's certificate in --peer-ca-file: forwarded again.
    let a = tls_node(scratch.url(), &key_file, config1, Some(bundle.clone()));
    let b = tls_node(scratch.url(), &key_file, config2, Some(bundle));
    let urls = [a.addr, b.addr].map(|addr| format!("https://127.0.0.1:{}", addr.port()));
    let (forwarded, unreachable) = write_on_both(&agent, &urls, "peer-ca");
    assert!(
        forwarded > 0 && unreachable == 0,
        "{forwarded} {unreachable}"
    );
}
