//! `strata demo`: the demo organisation built from the seeds, in an embedded SQLite file, served.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use strata_store::Store;

use crate::args::TlsArgs;
use crate::server_cmd;

/// The organisation's name in the demo database.
pub const ORG: &str = "demo";

/// A progress bar (hidden when stderr is not a terminal).
pub(crate) fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Creates the demo organisation in the store unless it exists; returns whether it was created.
pub fn ensure(store: &dyn Store, records_per_table: usize) -> anyhow::Result<bool> {
    if store.revision(ORG).is_ok() {
        return Ok(false);
    }
    let ops = strata_demo::operations(records_per_table);
    let bar = progress(ops.len() as u64 * 2, "building");
    // Through the application layer: the operations with their audit entries, in one
    // transaction, by the system.
    let mut loader =
        strata_app::Loader::new(store, ORG, strata_app::Actor::System).map_err(|e| anyhow!(e))?;
    loader
        .append(&ops, &mut |n| bar.inc(n))
        .map_err(|e| anyhow!("demo operation: {e}"))?;
    bar.finish_and_clear();
    Ok(true)
}

/// The curl command of a tour step, against the server at `origin` (`http://…` or `https://…`);
/// `cacert` is the self-signed certificate curl must trust.
fn curl(origin: &str, cacert: Option<&Path>, key: &str, command: &str) -> String {
    let cacert = cacert
        .map(|c| format!("--cacert '{}' ", c.display()))
        .unwrap_or_default();
    let auth = format!("{cacert}-H 'Authorization: Bearer {key}'");
    let words: Vec<&str> = command.split_whitespace().collect();
    let flag = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .and_then(|i| words.get(i + 1))
            .copied()
            .unwrap_or_default()
    };
    match words.first().copied() {
        Some("GET") => {
            // `GET path as USER`: read as that user, impersonated (data is read as the caller).
            let on_behalf = match (words.get(2), words.get(3)) {
                (Some(&"as"), Some(user)) => format!(" -H 'MSCRMCallerID: {user}'"),
                _ => String::new(),
            };
            format!(
                "curl -s {auth}{on_behalf} '{origin}{}'",
                words.get(1).copied().unwrap_or_default()
            )
        }
        Some("explain") => format!(
            "curl -s {auth} -H 'Content-Type: application/json' {origin}/api/v1/orgs/{ORG}/explain -d '{{\"user\":\"{}\",\"privilege\":\"{}\",\"record\":\"{}\"}}'",
            flag("--user"),
            flag("--privilege"),
            flag("--record")
        ),
        Some("who-has-access") => format!(
            "curl -s {auth} '{origin}/api/v1/orgs/{ORG}/records/{}/who-has-access?privilege={}'",
            flag("--record"),
            flag("--privilege")
        ),
        _ => command.to_owned(),
    }
}

/// `strata demo`.
pub fn run(
    db: &Path,
    listen: &str,
    admin_key: Option<String>,
    root_key: Option<String>,
    records: usize,
    tls: &TlsArgs,
) -> anyhow::Result<()> {
    server_cmd::init_logging();
    // Before the database is opened: a bad certificate creates nothing.
    let tls = server_cmd::tls(tls, db, listen)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let cacert = tls.as_ref().and_then(|t| t.self_signed.clone());
    let store = server_cmd::open_store(db)?;
    let created = ensure(store.as_ref(), records)?;
    let now = strata_server::now_ms();
    let key = match admin_key {
        Some(k) => {
            strata_server::auth::register_api_key(store.as_ref(), ORG, strata_demo::ADMIN, &k, now)
                .map_err(|e| anyhow!(e.message.clone()))?;
            k
        }
        None => {
            strata_server::auth::create_api_key(store.as_ref(), ORG, strata_demo::ADMIN, now)
                .map_err(|e| anyhow!(e.message.clone()))?
                .1
        }
    };
    let (org, revision) =
        strata_store::load_organization(store.as_ref(), ORG).context("loading the demo")?;
    let records_total: usize = org.table_ids().map(|t| org.table_records(t).len()).sum();
    let mut banner = format!(
        "Strata demo: organization `{ORG}` ({}) in {}: {} business units, {} users, {} records, revision {revision}.\n\
         Serving on {scheme}://{{addr}} — the administrator `{}` has the API key\n\n    {key}\n\n\
         The admin console: {scheme}://{{addr}}/console (sign in with that key)\n\nTry:\n",
        if created {
            "just built from the seeds"
        } else {
            "already there"
        },
        server_cmd::shown(db),
        org.units().len(),
        org.user_ids().count(),
        records_total,
        strata_demo::ADMIN,
    );
    for (question, command) in strata_demo::tour() {
        banner.push_str(&format!(
            "\n  # {question}\n  {}\n",
            curl(
                &format!("{scheme}://{{addr}}"),
                cacert.as_deref(),
                &key,
                command
            )
        ));
    }
    // The same organisation through the Dataverse Web API, as any Dataverse client asks it.
    for (question, path) in [
        (
            "the Dataverse Web API (docs/webapi.md): who am I?",
            "GET /api/data/v9.2/WhoAmI()",
        ),
        (
            "the first five accounts I may read, with their owners, as a Dataverse client asks",
            "GET /api/data/v9.2/accounts?$select=name,_ownerid_value&$top=5",
        ),
    ] {
        banner.push_str(&format!(
            "\n  # {question}\n  {}\n",
            curl(
                &format!("{scheme}://{{addr}}"),
                cacert.as_deref(),
                &key,
                path
            )
        ));
    }
    banner.push_str(&format!(
        "\n  # every command also works offline on the file, for example\n  strata explain --db {} --org {ORG} --user rep_east --privilege write --record acc-0002\n\nPress Ctrl-C to stop.",
        server_cmd::shown(db)
    ));
    let store: Arc<dyn Store> = store;
    let options = strata_server::ServerOptions {
        tls: tls.map(|t| t.config),
        ..strata_server::ServerOptions::default()
    };
    server_cmd::serve(store, listen, root_key, options, Some(banner))
}
