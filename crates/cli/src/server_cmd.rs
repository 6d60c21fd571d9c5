//! `strata serve` and the local administration verbs (`api-key`, `audit`) on a database file.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use strata_store::{AuditQuery, SqliteStore, Store, Verification};

/// Opens (creating) the SQLite store.
pub fn open_store(db: &Path) -> anyhow::Result<Arc<SqliteStore>> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(Arc::new(SqliteStore::open(db).with_context(|| {
        format!("cannot open {}", db.display())
    })?))
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

/// Runs the server until Ctrl-C or SIGTERM.
pub fn serve(
    store: Arc<dyn Store>,
    listen: &str,
    root_key: Option<String>,
    options: strata_server::ServerOptions,
    banner: Option<String>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "strata is serving");
        if let Some(b) = banner {
            println!("{}", b.replace("{addr}", &addr.to_string()));
        } else {
            println!("strata is serving on http://{addr}");
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

/// `strata api-key create`.
pub fn api_key_create(db: &Path, org: &str, user: &str) -> anyhow::Result<()> {
    let store = open_store(db)?;
    let (org_state, _) = strata_store::load_organization(store.as_ref(), org)?;
    if org_state.user_id(user).is_none() {
        bail!("unknown user `{user}` in organization `{org}`");
    }
    let (record, secret) =
        strata_server::auth::create_api_key(store.as_ref(), org, user, strata_server::now_ms())
            .map_err(|e| anyhow!(e.message))?;
    println!("{secret}");
    eprintln!(
        "created API key {} for `{user}` in `{org}`; the key is shown once",
        record.id
    );
    Ok(())
}

/// `strata api-key revoke`.
pub fn api_key_revoke(db: &Path, org: &str, id: &str) -> anyhow::Result<()> {
    let store = open_store(db)?;
    if !store.revoke_api_key(org, id, strata_server::now_ms())? {
        bail!("no API key `{id}` in organization `{org}`");
    }
    println!("revoked {id}");
    Ok(())
}

/// `strata api-key list`.
pub fn api_key_list(db: &Path, org: &str) -> anyhow::Result<()> {
    let store = open_store(db)?;
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

/// `strata audit verify`: exit status 0 when intact, 1 when tampered.
pub fn audit_verify(db: &Path, org: &str) -> anyhow::Result<bool> {
    let store = open_store(db)?;
    match store.verify_audit(org)? {
        Verification::Intact { entries } => {
            println!("audit of `{org}` is intact: {entries} entries verified");
            Ok(true)
        }
        Verification::Tampered { seq, problem } => {
            println!("audit of `{org}` was TAMPERED WITH at entry {seq}: {problem}");
            Ok(false)
        }
    }
}

/// `strata audit query`: entries as JSON lines.
pub fn audit_query(db: &Path, org: &str, query: AuditQuery) -> anyhow::Result<()> {
    let store = open_store(db)?;
    for e in store.audit(org, &query)? {
        println!("{}", serde_json::to_string(&e)?);
    }
    Ok(())
}
