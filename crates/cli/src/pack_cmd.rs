//! `strata import pack NAME|FILE --org O (--db DB | --server URL --key KEY) [--apply]`: a role
//! pack (`packs/`, docs/export.md) brought into an organisation by name, as one batch through
//! the application layer. A dry run unless `--apply`: what would be created, updated, left
//! unchanged or skipped, and the access difference (the dry-run machinery, D54).

use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use strata_engine::Organization;
use strata_scenario::pack::{self, Plan};

use crate::args::WriteTarget;
use crate::remote::{encode, post_operations};
use crate::source::{LocalOrg, Place, Server};
use crate::{dryrun_cmd, server_cmd, table};

/// `strata import …`.
#[derive(Subcommand, Debug)]
pub(crate) enum ImportCommand {
    /// Bring a role pack into an organisation (a dry run unless --apply). Built-in packs:
    /// customer-service-workspace, omnichannel, work365, licences; or a pack file.
    Pack {
        /// A built-in pack's name or a pack file.
        pack: String,
        #[command(flatten)]
        target: WriteTarget,
        /// Write the batch (default: a dry run that writes nothing).
        #[arg(long)]
        apply: bool,
        /// The plan and the answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: ImportCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        ImportCommand::Pack {
            pack,
            target,
            apply,
            json,
        } => import_pack(&pack, &target, apply, json)?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The pack's text: a built-in pack by name, else a file.
fn pack_text(name: &str) -> anyhow::Result<(String, String)> {
    if let Some(text) = pack::built_in(name) {
        return Ok((name.to_owned(), text.to_owned()));
    }
    let path = PathBuf::from(name);
    if !path.exists() {
        let names: Vec<&str> = pack::BUILT_IN.iter().map(|(n, _)| *n).collect();
        bail!(
            "no built-in pack `{name}` and no such file (built-in packs: {})",
            names.join(", ")
        );
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    Ok((path.display().to_string(), text))
}

/// The organisation as it stands: replayed from the database, or rebuilt from the server's
/// export (System Administrators).
fn current(place: Place<'_>, org: &str) -> anyhow::Result<Organization> {
    match place {
        Place::Local { db, .. } => {
            let store = server_cmd::open_existing_store(db)?;
            Ok(strata_store::load_organization(store.as_ref(), org)?.0)
        }
        Place::Server(server) => from_export(server),
    }
}

fn from_export(server: Server<'_>) -> anyhow::Result<Organization> {
    let client = strata_scenario::http_client::HttpClient::new(
        server.url,
        std::time::Duration::from_secs(600),
    )
    .map_err(|e| anyhow!(e))?;
    let auth = format!("Bearer {}", server.key);
    let response = client
        .request(
            "GET",
            &format!("/api/v1/orgs/{}/export", encode(server.org)),
            &[("Authorization", &auth)],
            None,
        )
        .map_err(|e| anyhow!(e))?;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if response.status != 200 {
        bail!("HTTP {} reading the organisation: {text}", response.status);
    }
    let scenario = strata_scenario::load_str(&text)
        .map_err(|e| anyhow!("the server's export, line {}: {}", e.line, e.message))?;
    strata_scenario::engine_target::build(&scenario)
        .map_err(|e| anyhow!("the server's export, line {}: {}", e.line, e.message))
}

fn plan_json(plan: &Plan) -> Value {
    Value::Array(
        plan.lines
            .iter()
            .map(|l| json!({ "action": l.action, "kind": l.kind, "name": l.name, "detail": l.detail }))
            .collect(),
    )
}

fn import_pack(name: &str, target: &WriteTarget, apply: bool, json: bool) -> anyhow::Result<()> {
    let (label, text) = pack_text(name)?;
    let spec = pack::parse(&text).map_err(|e| anyhow!("{label}:{}: {}", e.line, e.message))?;
    let place = target.place()?;
    let org = current(place, &target.org)?;
    let plan = pack::plan(&org, &spec);
    let [created, updated, unchanged, skipped] = plan.counts();
    let summary = format!(
        "pack `{}` ({label}): {created} to create, {updated} to update, {unchanged} unchanged, {skipped} skipped",
        spec.name
    );
    let answer = if plan.ops.is_empty() {
        json!({ "revision": null, "nothing_to_do": true })
    } else {
        let body = serde_json::to_vec(&plan.ops)?;
        match (place, apply) {
            (Place::Local { db, user }, false) => {
                let local = LocalOrg::open(db, &target.org, user)?;
                let ops = local.as_actor(plan.ops.clone());
                local.dry_run(ops)?.to_json()
            }
            (Place::Local { db, user }, true) => {
                let local = LocalOrg::open(db, &target.org, user)?;
                let ops = local.as_actor(plan.ops.clone());
                let written = local.write(ops)?;
                json!({ "revision": written.revision })
            }
            (Place::Server(server), write) => serde_json::from_str(&post_operations(
                server.url,
                server.key,
                server.org,
                if write { "" } else { "?dry_run=true" },
                &body,
            )?)?,
        }
    };
    if json {
        let out = json!({
            "pack": spec.name,
            "applied": apply && !plan.ops.is_empty(),
            "plan": plan_json(&plan),
            "answer": answer,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("{summary}");
    let rows: Vec<Vec<String>> = plan
        .lines
        .iter()
        .map(|l| {
            vec![
                l.action.to_owned(),
                l.kind.to_owned(),
                l.name.clone(),
                l.detail.clone(),
            ]
        })
        .collect();
    table::print(&["action", "kind", "name", "detail"], &rows);
    if plan.ops.is_empty() {
        println!("\nthe organisation already holds the pack: nothing to do");
    } else if apply {
        println!(
            "\napplied as one batch at revision {}",
            answer["revision"]
                .as_u64()
                .map_or_else(String::new, |r| r.to_string())
        );
    } else {
        println!();
        print!("{}", dryrun_cmd::render(&answer));
        println!("\nrun again with --apply to write it");
    }
    Ok(())
}
