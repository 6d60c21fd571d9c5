//! `strata apply`: operations from a JSON file (one operation or a list), applied atomically to
//! an organisation of a database file (with audit, as the server does) or of a running server.

use std::path::Path;

use anyhow::{Context, anyhow};
use strata_ops::Operation;

use crate::args::WriteTarget;
use crate::remote::post_operations;
use crate::source::{LocalOrg, Place};

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

/// Applies to the target: locally through the application layer's write path, acting as
/// `--as USER` (the user's actions run as that user) or as the system (`#system`); or through a
/// running server with an API key (the key's user acts).
pub(crate) fn run(target: &WriteTarget, file: &Path) -> anyhow::Result<()> {
    let place = target.place()?;
    let (ops, body) = read_operations(file)?;
    match place {
        Place::Local { db, user } => {
            let local = LocalOrg::open(db, &target.org, user)?;
            let ops = local.as_actor(ops);
            let written = local.write(ops)?;
            println!(
                "applied {} operations: revision {}",
                written.changes.len(),
                written.revision
            );
        }
        Place::Server(server) => {
            println!(
                "{}",
                post_operations(server.url, server.key, server.org, "", &body)?
            );
        }
    }
    Ok(())
}
