//! `strata serve` and the local administration verbs (`api-key`, `audit`) on a database: a
//! SQLite file, or a PostgreSQL database named by a `postgres://` or `postgresql://` URL.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, anyhow, bail};

use crate::args::TlsArgs;
use strata_store::{
    ApiKeyRecord, AuditEntry, AuditKey, AuditQuery, LogEntry, PostgresStore, Revision, SqliteStore,
    Store, StoreError, Transaction, Verification,
};

/// The audit key file given with `--audit-key-file` (or `STRATA_AUDIT_KEY_FILE`), set once at
/// start-up.
static AUDIT_KEY_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Uses this audit key file for every store this process opens.
pub fn set_audit_key_file(path: PathBuf) {
    let _ = AUDIT_KEY_FILE.set(path);
}

/// The database as it may be shown: a URL without its password.
pub fn shown(db: &Path) -> String {
    strata_store::redact_database_url(&db.to_string_lossy())
}

/// The store a `--db` argument names.
#[derive(Debug)]
pub enum Database {
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// A PostgreSQL database.
    Postgres(PostgresStore),
}

macro_rules! each {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Database::Sqlite($store) => $call,
            Database::Postgres($store) => $call,
        }
    };
}

impl Store for Database {
    fn create_organization(
        &self,
        name: &str,
        at_ms: i64,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        each!(self, s => s.create_organization(name, at_ms, f))
    }
    fn delete_organization(&self, name: &str) -> Result<(), StoreError> {
        each!(self, s => s.delete_organization(name))
    }
    fn organizations(&self) -> Result<Vec<(String, Revision)>, StoreError> {
        each!(self, s => s.organizations())
    }
    fn write(
        &self,
        org: &str,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        each!(self, s => s.write(org, f))
    }
    fn write_known(
        &self,
        org: &str,
        known: Revision,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        each!(self, s => s.write_known(org, known, f))
    }
    fn revision(&self, org: &str) -> Result<Revision, StoreError> {
        each!(self, s => s.revision(org))
    }
    fn operations(&self, org: &str, after: Revision) -> Result<Vec<LogEntry>, StoreError> {
        each!(self, s => s.operations(org, after))
    }
    fn audit(&self, org: &str, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        each!(self, s => s.audit(org, query))
    }
    fn verify_audit(&self, org: &str) -> Result<Verification, StoreError> {
        each!(self, s => s.verify_audit(org))
    }
    fn derived_key(&self, purpose: &str) -> [u8; 32] {
        each!(self, s => s.derived_key(purpose))
    }
    fn expire_audit(&self, org: &str, now_ms: i64) -> Result<u64, StoreError> {
        each!(self, s => s.expire_audit(org, now_ms))
    }
    fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        each!(self, s => s.put_api_key(key))
    }
    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        each!(self, s => s.api_key_by_hash(key_hash))
    }
    fn api_keys(&self, org: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        each!(self, s => s.api_keys(org))
    }
    fn revoke_api_key(&self, org: &str, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        each!(self, s => s.revoke_api_key(org, id, at_ms))
    }
    fn put_checkpoint(
        &self,
        org: &str,
        revision: Revision,
        format: u32,
        bytes: &[u8],
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        each!(self, s => s.put_checkpoint(org, revision, format, bytes, at_ms))
    }
    fn checkpoints(&self, org: &str) -> Result<Vec<strata_store::CheckpointInfo>, StoreError> {
        each!(self, s => s.checkpoints(org))
    }
    fn read_checkpoint(
        &self,
        org: &str,
        revision: Revision,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        each!(self, s => s.read_checkpoint(org, revision))
    }
    fn write_leases(
        &self,
        orgs: &[String],
        claim: Option<&strata_store::LeaseClaim<'_>>,
    ) -> Result<Vec<strata_store::WriteLease>, StoreError> {
        each!(self, s => s.write_leases(orgs, claim))
    }
    fn release_write_leases(&self, node: &str) -> Result<(), StoreError> {
        each!(self, s => s.release_write_leases(node))
    }
    fn change_seen(&self) -> u64 {
        each!(self, s => s.change_seen())
    }
    fn wait_for_change(&self, seen: u64, timeout: std::time::Duration) -> u64 {
        each!(self, s => s.wait_for_change(seen, timeout))
    }
}

/// Opens (creating) the store a `--db` argument names: a PostgreSQL database for a
/// `postgres://` or `postgresql://` URL (its audit key in `--audit-key-file`, which it needs),
/// otherwise a SQLite file (its audit key beside it, unless `--audit-key-file` says otherwise).
/// Opens a database that must exist already (verbs that read or change an organisation):
/// a SQLite path that names no file is an error, never a new empty database.
pub fn open_existing_store(db: &Path) -> anyhow::Result<Arc<Database>> {
    let is_url = db.to_str().is_some_and(strata_store::is_postgres_url);
    if !is_url && !db.exists() {
        bail!(
            "no database at {}: create one with `strata org create --db FILE --org NAME` or `strata demo --db FILE`",
            db.display()
        );
    }
    open_store(db)
}

pub fn open_store(db: &Path) -> anyhow::Result<Arc<Database>> {
    let key_file = AUDIT_KEY_FILE.get();
    if let Some(url) = db.to_str().filter(|d| strata_store::is_postgres_url(d)) {
        let Some(key_file) = key_file else {
            bail!(
                "cannot open {}: a PostgreSQL database needs --audit-key-file FILE (or STRATA_AUDIT_KEY_FILE): the audit chain's key is kept outside the database it protects; the file is created on first use, and every process using the database needs the same one",
                shown(db)
            );
        };
        let store =
            PostgresStore::open(url, key_file).map_err(|e| anyhow!("{e} ({})", e.code()))?;
        return Ok(Arc::new(Database::Postgres(store)));
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let store = match key_file {
        None => SqliteStore::open(db),
        Some(file) => {
            AuditKey::load_or_create(file).and_then(|key| SqliteStore::open_with_key(db, key))
        }
    };
    let store = store.with_context(|| format!("cannot open {}", db.display()))?;
    Ok(Arc::new(Database::Sqlite(store)))
}

/// Logs as JSON lines when `STRATA_LOG_JSON` is set, readable text otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var_os("STRATA_LOG_JSON").is_some() {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// A progress bar per organisation while the server replays its log at start.
fn load_bar() -> strata_server::LoadProgress {
    let current: std::sync::Mutex<Option<(String, indicatif::ProgressBar)>> =
        std::sync::Mutex::new(None);
    strata_server::LoadProgress(Arc::new(move |org, done, all| {
        let mut current = current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.as_ref().is_none_or(|(name, _)| name != org) {
            let bar = crate::demo_cmd::progress(all as u64, &format!("loading {org}"));
            *current = Some((org.to_owned(), bar));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.set_position(done as u64);
            if done >= all {
                bar.finish_and_clear();
            }
        }
    }))
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn serve(
    store: Arc<dyn Store>,
    listen: &str,
    root_key: Option<String>,
    options: strata_server::ServerOptions,
    banner: Option<String>,
) -> anyhow::Result<()> {
    let mut options = options;
    if options.load_progress.is_none() {
        options.load_progress = Some(load_bar());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(%addr, scheme, "strata is serving");
        if let Some(b) = banner {
            println!("{}", b.replace("{addr}", &addr.to_string()));
        } else {
            println!("strata is serving on {scheme}://{addr}");
        }
        strata_server::serve_with(
            strata_server::ServerConfig { store, root_key },
            options,
            listener,
            shutdown_signal(),
        )
        .await
        .map_err(|e| anyhow!("server: {e}"))
    })
}

/// The server's TLS, as the command line asks for it.
#[derive(Debug)]
pub(crate) struct Tls {
    /// The certificate and key.
    pub(crate) config: strata_server::tls::TlsConfig,
    /// The self-signed certificate's file, which clients must trust (`--tls-self-signed`).
    pub(crate) self_signed: Option<PathBuf>,
}

/// Loads `--tls-cert` and `--tls-key`, or makes (or reuses) the self-signed certificate of
/// `--tls-self-signed` beside the database and says where it is; `None` without these flags.
/// Every problem with the files is an error here, before anything listens.
pub(crate) fn tls(args: &TlsArgs, db: &Path, listen: &str) -> anyhow::Result<Option<Tls>> {
    match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
        (Some(_), Some(_), true) => {
            bail!("--tls-self-signed cannot be used with --tls-cert and --tls-key")
        }
        (Some(cert), Some(key), false) => {
            let config = strata_server::tls::TlsConfig::from_pem_files(cert, key)?;
            tracing::info!(cert = %cert.display(), key = %key.display(), "serving HTTPS");
            Ok(Some(Tls {
                config,
                self_signed: None,
            }))
        }
        (Some(_), None, _) => bail!("--tls-cert needs --tls-key FILE"),
        (None, Some(_), _) => bail!("--tls-key needs --tls-cert FILE"),
        (None, None, false) => Ok(None),
        (None, None, true) => {
            let dir = std::path::absolute(tls_dir(db))
                .with_context(|| format!("cannot find the directory of {}", shown(db)))?;
            let host = listen_host(listen);
            let made = strata_server::tls::self_signed(&dir, host)?;
            println!(
                "TLS: self-signed certificate for {} {} {} (key {})",
                strata_server::tls::self_signed_names(host).join(", "),
                if made.created {
                    "made in"
                } else {
                    "reused from"
                },
                made.cert.display(),
                made.key.display()
            );
            println!(
                "     clients must trust it, e.g. NODE_EXTRA_CA_CERTS={} or curl --cacert {}",
                made.cert.display(),
                made.cert.display()
            );
            Ok(Some(Tls {
                config: made.config,
                self_signed: Some(made.cert),
            }))
        }
    }
}

/// Where a self-signed certificate is kept: beside a SQLite file; for a PostgreSQL database,
/// beside its audit key file (the one file such a deployment keeps), else the working directory.
fn tls_dir(db: &Path) -> PathBuf {
    let beside = |file: &Path| {
        file.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_owned)
    };
    let dir = if db.to_str().is_some_and(strata_store::is_postgres_url) {
        AUDIT_KEY_FILE.get().and_then(|f| beside(f))
    } else {
        beside(db)
    };
    dir.unwrap_or_else(|| PathBuf::from("."))
}

/// The host of a listen address (`host:port`, `[v6]:port`).
fn listen_host(listen: &str) -> Option<&str> {
    match listen.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map(|(host, _)| host),
        None => listen.rsplit_once(':').map(|(host, _)| host),
    }
}

/// `strata api-key create`.
pub fn api_key_create(db: &Path, org: &str, user: &str) -> anyhow::Result<()> {
    let store = open_existing_store(db)?;
    let (org_state, _) = strata_store::load_organization(store.as_ref(), org)?;
    if org_state.user_id(user).is_none() {
        bail!("unknown user `{user}` in organization `{org}`");
    }
    let (record, secret) =
        strata_server::auth::create_api_key(store.as_ref(), org, user, strata_server::now_ms())
            .map_err(|e| anyhow!(e.message.clone()))?;
    println!("{secret}");
    eprintln!(
        "created API key {} for `{user}` in `{org}`; the key is shown once",
        record.id
    );
    Ok(())
}

/// `strata api-key revoke`.
pub fn api_key_revoke(db: &Path, org: &str, id: &str) -> anyhow::Result<()> {
    let store = open_existing_store(db)?;
    if !store.revoke_api_key(org, id, strata_server::now_ms())? {
        bail!("no API key `{id}` in organization `{org}`");
    }
    println!("revoked {id}");
    Ok(())
}

/// `strata api-key list`.
pub fn api_key_list(db: &Path, org: &str) -> anyhow::Result<()> {
    let store = open_existing_store(db)?;
    for k in store.api_keys(org)? {
        let state = if k.revoked_ms.is_some() {
            "revoked"
        } else {
            "active"
        };
        println!("{}\t{}\t{state}", k.id, k.user);
    }
    Ok(())
}

/// `strata audit verify`: the audit chain and the operation log; exit status 0 when both are
/// intact, 1 when either was tampered with.
pub fn audit_verify(db: &Path, org: &str) -> anyhow::Result<bool> {
    let store = open_existing_store(db)?;
    let audit = match store.verify_audit(org)? {
        Verification::Intact { entries } => {
            println!("audit of `{org}` is intact: {entries} entries verified");
            true
        }
        Verification::Tampered { seq, problem } => {
            println!("audit of `{org}` was TAMPERED WITH at entry {seq}: {problem}");
            false
        }
    };
    let log = verify_log(store.as_ref(), org)?;
    Ok(audit && log)
}

/// `strata log verify`: one organisation's operation log, or every one's; exit status 0 when
/// intact, 1 when any was tampered with.
pub fn log_verify(db: &Path, org: Option<&str>) -> anyhow::Result<bool> {
    let store = open_store(db)?;
    let names = match org {
        Some(org) => vec![org.to_owned()],
        None => store.organizations()?.into_iter().map(|(n, _)| n).collect(),
    };
    let mut intact = true;
    for name in &names {
        intact &= verify_log(store.as_ref(), name)?;
    }
    Ok(intact)
}

/// Reads an organisation's whole operation log, which verifies it; prints the outcome.
fn verify_log(store: &dyn Store, org: &str) -> anyhow::Result<bool> {
    let start = std::time::Instant::now();
    match store.operations(org, 0) {
        Ok(entries) => {
            println!(
                "operation log of `{org}` is intact: {} operations verified in {:.2} s",
                entries.len(),
                start.elapsed().as_secs_f64()
            );
            Ok(true)
        }
        Err(e @ StoreError::CorruptLog { .. }) => {
            println!(
                "operation log of `{org}` was TAMPERED WITH: {e} ({})",
                e.code()
            );
            Ok(false)
        }
        Err(e) => Err(anyhow!("{e} ({})", e.code())),
    }
}

/// `strata audit query`: entries as JSON lines.
pub fn audit_query(db: &Path, org: &str, query: AuditQuery) -> anyhow::Result<()> {
    let store = open_existing_store(db)?;
    for e in store.audit(org, &query)? {
        println!("{}", serde_json::to_string(&e)?);
    }
    Ok(())
}
