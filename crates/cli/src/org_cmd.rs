//! `strata org` (create, list, delete) and the write loop of the crash and node tests.

use std::path::Path;

use anyhow::anyhow;
use strata_store::Store;

use crate::args::OrgCommand;
use crate::question_cmd::load_scenario;
use crate::server_cmd;

/// `strata org create | list | delete`.
pub(crate) fn run(command: OrgCommand) -> anyhow::Result<()> {
    match command {
        OrgCommand::Create { db, org, scenario } => create_org(&db, &org, scenario.as_deref())?,
        OrgCommand::List { db } => {
            for (name, revision) in server_cmd::open_existing_store(&db)?.organizations()? {
                println!("{name}\t{revision}");
            }
        }
        OrgCommand::Delete { db, org } => {
            server_cmd::open_existing_store(&db)?.delete_organization(&org)?;
            println!("deleted organization `{org}`");
        }
    }
    Ok(())
}

fn create_org(db: &Path, org: &str, scenario: Option<&Path>) -> anyhow::Result<()> {
    let store = server_cmd::open_store(db)?;
    let ops: Vec<strata_ops::Operation> = match scenario {
        None => Vec::new(),
        Some(path) => strata_scenario::engine_target::setup_operations(&load_scenario(path)?)
            .into_iter()
            .map(|(_, op)| op)
            .collect(),
    };
    // Through the application layer: the creation and the operations with their audit
    // entries, by the system.
    let mut loader = strata_app::Loader::new(store.as_ref(), org, strata_app::Actor::System)
        .map_err(|e| anyhow!(e))?;
    let revision = loader
        .append(&ops, &mut |_| {})
        .map_err(|e| anyhow!("operation: {e}"))?;
    println!("created organization `{org}` at revision {revision}");
    Ok(())
}

pub(crate) fn write_loop(db: &Path, org: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let store: std::sync::Arc<dyn Store> = server_cmd::open_store(db)?;
    if store.revision(org).is_err() {
        let setup: Vec<strata_ops::Operation> = serde_json::from_value(serde_json::json!([
            {"op": "add_business_unit", "name": "Root"},
            {"op": "add_table", "name": "note"},
            {"op": "add_role", "name": "Writer", "privileges": {"note": {"create": "user", "read": "user"}}},
            {"op": "add_user", "name": "writer"},
            {"op": "assign_role", "principal": "writer", "role": "Writer"},
            {"op": "set_audit", "enabled": true, "tables": ["note"]}
        ]))?;
        strata_app::Loader::new(store.as_ref(), org, strata_app::Actor::System)
            .and_then(|mut loader| loader.append(&setup, &mut |_| {}))
            .map_err(|e| anyhow!(e))?;
    }
    // Every write through the application layer's write path, audited as the writer.
    let registry = strata_app::Registry::load(store.as_ref(), None).map_err(|e| anyhow!(e))?;
    let handle = registry.get(org).map_err(|e| anyhow!(e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0u64.. {
        let key = format!("n{}-{i}", std::process::id());
        let op: strata_ops::Operation = serde_json::from_value(serde_json::json!(
            {"op": "create", "as": "writer", "table": "note", "id": key, "fields": {"i": i}}
        ))?;
        let written = runtime
            .block_on(handle.write(
                std::sync::Arc::clone(&store),
                vec![op],
                strata_app::Actor::User("writer".into()),
            ))
            .map_err(|e| anyhow!(e))?;
        writeln!(out, "ack {} {key}", written.revision)?;
        out.flush()?;
    }
    Ok(())
}
