//! `strata apply`: operations from a JSON file (one operation or a list), applied atomically to
//! an organisation of a database file (with audit, as the server does) or of a running server.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use strata_app::{Actor, run_as};
use strata_ops::Operation;
use strata_store::Store;

use crate::server_cmd;

pub(crate) fn read_operations(file: &Path) -> anyhow::Result<(Vec<Operation>, Vec<u8>)> {
    let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{}: not JSON", file.display()))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    let mut ops = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        ops.push(
            serde_json::from_value(item)
                .map_err(|e| anyhow!("{}: operation {i}: {e}", file.display()))?,
        );
    }
    Ok((ops, text))
}

/// Applies to a local database file through the application layer's write path, acting as
/// `user` (an unknown name is `unknown_user`, never the system) or as the system (`#system`).
pub fn local(db: &Path, org: &str, file: &Path, user: Option<String>) -> anyhow::Result<()> {
    let (ops, _) = read_operations(file)?;
    let store: Arc<dyn Store> = server_cmd::open_existing_store(db)?;
    let registry = strata_app::Registry::load(store.as_ref(), None).map_err(|e| anyhow!(e))?;
    let handle = registry.get(org).map_err(|e| anyhow!(e))?;
    let actor = match &user {
        None => Actor::System,
        Some(name) => Actor::user_of(&handle.read_blocking().org, name).map_err(|e| anyhow!(e))?,
    };
    // The user's actions run as that user.
    let ops: Vec<Operation> = match actor.user() {
        None => ops,
        Some(name) => ops.into_iter().map(|op| run_as(op, name)).collect(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let written = runtime
        .block_on(handle.write(store, ops, actor))
        .map_err(|e| anyhow!(e))?;
    println!(
        "applied {} operations: revision {}",
        written.changes.len(),
        written.revision
    );
    Ok(())
}

/// Applies through a running server with an API key (the key's user acts).
pub fn remote(server: &str, key: &str, org: &str, file: &Path) -> anyhow::Result<()> {
    let (_, body) = read_operations(file)?;
    let client =
        strata_scenario::http_client::HttpClient::new(server, std::time::Duration::from_secs(60))
            .map_err(|e| anyhow!(e))?;
    let path = format!(
        "/api/v1/orgs/{}/operations",
        strata_scenario::http_client::encode_component(org)
    );
    let auth = format!("Bearer {key}");
    let response = client
        .request(
            "POST",
            &path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
        )
        .map_err(|e| anyhow!(e))?;
    let text = String::from_utf8_lossy(&response.body);
    if response.status != 200 {
        bail!("HTTP {}: {text}", response.status);
    }
    println!("{text}");
    Ok(())
}
