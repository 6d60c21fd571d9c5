//! HTTPS: the certificate and key from PEM files, the listener that does the TLS handshakes
//! (ALPN `h2` and `http/1.1`) before the connections reach the one router, and self-signed
//! certificates for development.
//!
//! TLS is only the connection layer: [`crate::serve_with`] hands a [`TlsListener`] to the same
//! `axum::serve` (and graceful shutdown) that plain HTTP uses.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its TLS handshake before its socket is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most handshakes in progress at once; past it, new connections wait in the kernel's
/// accept queue until one finishes or times out.
pub const MAX_PENDING_HANDSHAKES: usize = 1024;

/// The file name of a self-signed certificate made by [`self_signed`].
pub const SELF_SIGNED_CERT_FILE: &str = "strata-tls-cert.pem";

/// The file name of a self-signed certificate's private key made by [`self_signed`].
pub const SELF_SIGNED_KEY_FILE: &str = "strata-tls-key.pem";

/// The names every self-signed certificate is for.
const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long a self-signed certificate is valid.
const SELF_SIGNED_DAYS: i64 = 365;

/// A self-signed certificate is made anew when it would expire within this time.
const RENEW_BEFORE: Duration = Duration::from_secs(24 * 3600);

/// What is wrong with a certificate or key file, or with making a self-signed one.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file does not exist.
    #[error("the TLS {what} file `{}` does not exist", path.display())]
    NotFound {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A file cannot be read.
    #[error("cannot read the TLS {what} file `{}`: {source}", path.display())]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error(
        "no certificate in `{}`: expected a PEM `CERTIFICATE` block (the server's certificate first, then its chain)",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The certificate file is not valid PEM, or a certificate in it does not parse.
    #[error("the certificate in `{}` does not parse: {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key file holds no private key block.
    #[error(
        "no private key in `{}`: expected a PEM `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1) block",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key file is not valid PEM, or the key in it is not one rustls can use.
    #[error("the private key in `{}` does not parse: {reason}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error(
        "the private key in `{}` does not match the certificate in `{}`",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A self-signed certificate cannot be made for this name.
    #[error("cannot make a self-signed certificate for `{name}`: {reason}")]
    BadName {
        /// The host name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A self-signed certificate or its key cannot be written.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The TLS library refused what it was given.
    #[error("TLS: {0}")]
    Rustls(String),
}

/// The crypto provider: ring.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// How the server speaks TLS: its certificate chain and key, ALPN `h2` then `http/1.1`.
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<rustls::ServerConfig>,
    /// The certificate chain served: other nodes' certificates are checked against it too
    /// (nodes that share a certificate or its authority, D150).
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// How long a client may take to finish its handshake ([`HANDSHAKE_TIMEOUT`] by default).
    pub handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("alpn", &self.server.alpn_protocols)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain (the server's certificate first) and a PEM private key
    /// (PKCS#8, PKCS#1 RSA or SEC1 EC), and checks that the key is the certificate's.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let cert_pem = read(cert, "certificate")?;
        let key_pem = read(key, "private key")?;
        let chain = certificates(cert, &cert_pem)?;
        let key_der = private_key(key, &key_pem)?;
        let provider = provider();
        let signing_key = provider
            .key_provider
            .load_private_key(key_der.clone_key())
            .map_err(|e| TlsError::BadKey {
                path: key.to_owned(),
                reason: e.to_string(),
            })?;
        match rustls::sign::CertifiedKey::new(chain.clone(), signing_key).keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::KeyMismatch {
                    cert: cert.to_owned(),
                    key: key.to_owned(),
                });
            }
            Err(e) => {
                return Err(TlsError::BadCertificate {
                    path: cert.to_owned(),
                    reason: e.to_string(),
                });
            }
        }
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key_der)
            .map_err(|e| TlsError::BadCertificate {
                path: cert.to_owned(),
                reason: e.to_string(),
            })?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsConfig {
            server: Arc::new(server),
            chain,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        })
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => TlsError::NotFound {
            what,
            path: path.to_owned(),
        },
        _ => TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        },
    })
}

/// What is wrong with a PEM file, in words (the library's own text shows bytes).
fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a PEM block has no END line".to_owned(),
        Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".to_owned(),
        Error::Base64Decode(e) => format!("a PEM block is not valid base64 ({e})"),
        other => other.to_string(),
    }
}

/// The certificates of a PEM file (`--peer-ca-file`: the authorities other nodes' certificates
/// are checked against).
///
/// # Errors
/// The file cannot be read, is not PEM, or holds no certificate.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certificates(path, &read(path, "certificate")?)
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: path.to_owned(),
            reason: pem_problem(&e),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_owned(),
        },
        e => TlsError::BadKey {
            path: path.to_owned(),
            reason: pem_problem(&e),
        },
    })
}

/// A listener that accepts TCP connections and hands on those whose TLS handshake succeeded.
///
/// Handshakes run in their own tasks, each bounded by the handshake timeout, so that a slow
/// or failed one never holds up another connection; a failure is logged at debug level.
#[derive(Debug)]
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`; the accepting stops when this value is dropped.
    pub(crate) fn new(listener: TcpListener, config: &TlsConfig) -> io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(Arc::clone(&config.server)),
            config.handshake_timeout,
            tx,
        ));
        Ok(TlsListener { ready, local_addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task ends only when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    timeout: Duration,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            () = ready.closed() => return,
            permit = Arc::clone(&pending).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = ready.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        // TLS records are small writes: do not let Nagle's algorithm hold them back.
        let _ = tcp.set_nodelay(true);
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(timeout, acceptor.accept(tcp)).await;
            drop(permit);
            match handshake {
                Ok(Ok(stream)) => {
                    // Fails only when the server stopped accepting: the connection is dropped.
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, ?timeout, "TLS handshake timed out"),
            }
        });
    }
}

/// As axum does for plain TCP: a connection's own error is ignored; anything else (out of
/// file descriptors, say) is logged and waited out.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// A self-signed certificate made or reused by [`self_signed`].
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate file: what clients must trust.
    pub cert: PathBuf,
    /// The private key file (mode 0600).
    pub key: PathBuf,
    /// Whether it was made now (otherwise the files were there and valid).
    pub created: bool,
    /// The server's TLS configuration with it.
    pub config: TlsConfig,
}

/// The names a self-signed certificate is made for: `localhost`, `127.0.0.1`, `::1`, and
/// `host` when it is another name (an unspecified address such as `0.0.0.0` is not a name).
pub fn self_signed_names(host: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = LOCAL_NAMES.iter().map(|n| (*n).to_owned()).collect();
    if let Some(host) = host.map(|h| h.trim_start_matches('[').trim_end_matches(']'))
        && !host.is_empty()
        && !host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
        && !names.iter().any(|n| n.eq_ignore_ascii_case(host))
    {
        names.push(host.to_owned());
    }
    names
}

/// The self-signed certificate in `dir` ([`SELF_SIGNED_CERT_FILE`], [`SELF_SIGNED_KEY_FILE`]):
/// reused when both files are there, the key is the certificate's, and the certificate is
/// valid for a day more for every name of [`self_signed_names`]; otherwise made anew (the key
/// file readable by its owner only).
pub fn self_signed(dir: &Path, host: Option<&str>) -> Result<SelfSigned, TlsError> {
    let cert = dir.join(SELF_SIGNED_CERT_FILE);
    let key = dir.join(SELF_SIGNED_KEY_FILE);
    let names = self_signed_names(host);
    if let Ok(config) = TlsConfig::from_pem_files(&cert, &key)
        && std::fs::read(&cert)
            .ok()
            .and_then(|pem| CertificateDer::from_pem_slice(&pem).ok())
            .is_some_and(|der| valid_for(&der, &names, RENEW_BEFORE))
    {
        return Ok(SelfSigned {
            cert,
            key,
            created: false,
            config,
        });
    }
    let (cert_pem, key_pem) = generate(&names)?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    write_file(&key, key_pem.as_bytes(), true)?;
    write_file(&cert, cert_pem.as_bytes(), false)?;
    let config = TlsConfig::from_pem_files(&cert, &key)?;
    Ok(SelfSigned {
        cert,
        key,
        created: true,
        config,
    })
}

/// Whether `cert`, trusted as its own root, is valid for every name now and for `margin` more.
fn valid_for(cert: &CertificateDer<'static>, names: &[String], margin: Duration) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(cert.clone()).is_err() {
        return false;
    }
    let Ok(verifier) =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
    else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    [now, now + margin].into_iter().all(|at| {
        names.iter().all(|name| {
            ServerName::try_from(name.as_str()).is_ok_and(|server_name| {
                verifier
                    .verify_server_cert(
                        cert,
                        &[],
                        &server_name.to_owned(),
                        &[],
                        UnixTime::since_unix_epoch(at),
                    )
                    .is_ok()
            })
        })
    })
}

/// A new ECDSA P-256 key and a certificate for `names` it signs: PEM certificate, PEM key.
fn generate(names: &[String]) -> Result<(String, String), TlsError> {
    let generation = |e: rcgen::Error| TlsError::Rustls(format!("certificate generation: {e}"));
    let mut params = rcgen::CertificateParams::new(Vec::new()).map_err(generation)?;
    for name in names {
        let san =
            match name.parse::<std::net::IpAddr>() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName(name.clone().try_into().map_err(
                    |e: rcgen::Error| TlsError::BadName {
                        name: name.clone(),
                        reason: e.to_string(),
                    },
                )?),
            };
        params.subject_alt_names.push(san);
    }
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(
        rcgen::DnType::CommonName,
        "Strata self-signed (development)",
    );
    params.distinguished_name = subject;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    // A day back, for clocks that are behind.
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(SELF_SIGNED_DAYS);
    let key = rcgen::KeyPair::generate().map_err(generation)?;
    let cert = params.self_signed(&key).map_err(generation)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a file whole: to a temporary file beside it (this process's own), then renamed over it. A `secret` file is
/// readable and writable by its owner only.
fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), TlsError> {
    use std::io::Write;
    let failed = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&temporary).map_err(failed)?;
    file.write_all(contents).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(failed)
}
