//! `strata import roles FILE…` and `strata export roles`: Dataverse solution roles in and out
//! (docs/solutions.md). An import is one batch through the application layer (a database, as
//! `--as` or the system) or a server's `…/roles/import` route; without `--apply` it is a dry
//! run (the batch tried and rolled back) that prints per role the privileges by level and what
//! would be created, updated or skipped.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use strata_scenario::http_client::HttpClient;
use strata_solution::{
    ImportOptions, SolutionRole, plan, read_roles_many, roles_as_customizations,
};

use crate::args::{Source, WriteTarget};
use crate::question_cmd::organisation;
use crate::remote::encode;
use crate::source::{LocalOrg, Place};
use crate::table;

#[derive(Subcommand, Debug)]
pub(crate) enum ImportCommand {
    /// Import security roles from Dataverse solution files: unpacked `Roles/*.xml`, a packed
    /// `customizations.xml` or a solution `.zip`. A dry run unless --apply.
    Roles {
        /// The files (read by content: zip or XML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        target: WriteTarget,
        /// Write the import (default: a dry run that writes nothing).
        #[arg(long)]
        apply: bool,
        /// Create the standard and custom tables the roles name that the organisation lacks
        /// (user-owned); otherwise their privileges are skipped.
        #[arg(long)]
        create_tables: bool,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ExportCommand {
    /// Export security roles as Dataverse solution XML: with --out DIR, `Roles/<name>.xml` per
    /// role and a `customizations.xml`; with --out FILE.xml or without --out (standard output),
    /// the `customizations.xml`.
    Roles {
        #[command(flatten)]
        source: Source,
        /// Only these roles (repeatable; default: every role but System Administrator roles).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A folder (unpacked files and customizations.xml) or a `.xml` file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The files read: (name, bytes).
type Inputs = Vec<(String, Vec<u8>)>;

/// Reads the files (each whole, refused over the limit before reading) into roles.
fn read_files(files: &[PathBuf]) -> anyhow::Result<(Vec<SolutionRole>, Inputs)> {
    let mut inputs = Vec::new();
    for f in files {
        let size = std::fs::metadata(f)
            .map_err(|e| anyhow!("{}: {e}", f.display()))?
            .len();
        if size > strata_solution::MAX_FILE_BYTES as u64 {
            bail!(
                "{}: solution_too_large: the file has {size} bytes; the limit is {}",
                f.display(),
                strata_solution::MAX_FILE_BYTES
            );
        }
        let bytes = std::fs::read(f).map_err(|e| anyhow!("{}: {e}", f.display()))?;
        inputs.push((f.display().to_string(), bytes));
    }
    let roles = read_roles_many(inputs.iter().map(|(n, b)| (n.as_str(), b.as_slice())))
        .map_err(|e| anyhow!("{}: {e}", e.code))?;
    Ok((roles, inputs))
}

pub(crate) fn import(command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Roles {
        files,
        target,
        apply,
        create_tables,
        json,
    } = command;
    let (roles, inputs) = read_files(&files)?;
    let options = ImportOptions { create_tables };
    let answer = match target.place()? {
        Place::Local { db, user } => {
            let local = LocalOrg::open(db, &target.org, user)?;
            let planned = local.read(|org| plan(org, &roles, options));
            let mut answer = planned.to_json();
            answer["dry_run"] = json!(!apply);
            let ops = local.as_actor(planned.operations);
            if ops.is_empty() {
                answer["revision"] = json!(local.revision());
            } else if apply {
                let written = local.write(ops)?;
                answer["revision"] = json!(written.revision);
            } else {
                let tried = local.dry_run(ops)?.to_json();
                answer["revision"] = tried["revision"].clone();
                answer["difference"] = tried["difference"].clone();
            }
            answer
        }
        Place::Server(server) => {
            let (name, body) = match inputs.as_slice() {
                [(name, bytes)] => (name.clone(), bytes.clone()),
                _ => (
                    "roles.xml".to_owned(),
                    roles_as_customizations(&roles).into_bytes(),
                ),
            };
            let query = format!(
                "?dry_run={}&create_tables={create_tables}&file={}",
                !apply,
                encode(&name)
            );
            post_bytes(
                server.url,
                server.key,
                &format!("/api/v1/orgs/{}/roles/import{query}", encode(server.org)),
                &body,
            )?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", render(&answer));
    }
    Ok(())
}

fn post_bytes(server: &str, key: &str, path: &str, body: &[u8]) -> anyhow::Result<Value> {
    let client =
        HttpClient::new(server, std::time::Duration::from_secs(120)).map_err(|e| anyhow!(e))?;
    let auth = format!("Bearer {key}");
    let response = client
        .request(
            "POST",
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/octet-stream"),
            ],
            Some(body),
        )
        .map_err(|e| anyhow!(e))?;
    let value: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if response.status != 200 {
        bail!(
            "HTTP {}: {}: {}",
            response.status,
            value["error"]["code"].as_str().unwrap_or("error"),
            value["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(value)
}

fn count(v: &Value) -> String {
    v.as_u64().map_or_else(String::new, |n| n.to_string())
}

/// The import's answer for a person: one row per role, then skipped privileges, notes and
/// tables.
pub(crate) fn render(answer: &Value) -> String {
    let empty = Vec::new();
    let roles = answer["roles"].as_array().unwrap_or(&empty);
    let mut out = String::new();
    let dry = answer["dry_run"] == true;
    out.push_str(if dry {
        "Dry run: nothing written (--apply writes it).\n\n"
    } else {
        "Imported.\n\n"
    });
    let rows: Vec<Vec<String>> = roles
        .iter()
        .map(|r| {
            let action = match (r["action"].as_str().unwrap_or(""), dry) {
                ("create", true) => "would create".to_owned(),
                ("create", false) => "created".to_owned(),
                ("update", d) => {
                    let verb = if d { "would update" } else { "updated" };
                    let by = r["matched_by"].as_str().unwrap_or("");
                    match r["renamed_from"].as_str() {
                        Some(from) => format!("{verb} (by {by}, renamed from {from})"),
                        None => format!("{verb} (by {by})"),
                    }
                }
                ("unchanged", _) => "unchanged".to_owned(),
                ("skip", _) => format!("skipped: {}", r["reason"].as_str().unwrap_or("")),
                (other, _) => other.to_owned(),
            };
            vec![
                r["name"].as_str().unwrap_or("").to_owned(),
                count(&r["levels"]["basic"]),
                count(&r["levels"]["local"]),
                count(&r["levels"]["deep"]),
                count(&r["levels"]["global"]),
                count(&r["misc_privileges"]),
                r["skipped"].as_array().map_or(0, Vec::len).to_string(),
                action,
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "role", "basic", "local", "deep", "global", "misc", "skipped", "action",
        ],
        &rows,
    ));
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    for r in roles {
        let name = r["name"].as_str().unwrap_or("");
        for s in r["skipped"].as_array().unwrap_or(&empty) {
            skipped.push(vec![
                name.to_owned(),
                s["privilege"].as_str().unwrap_or("").to_owned(),
                s["level"].as_str().unwrap_or("").to_owned(),
                s["reason"].as_str().unwrap_or("").to_owned(),
            ]);
        }
        for n in r["notes"].as_array().unwrap_or(&empty) {
            notes.push(format!("{name}: {}", n.as_str().unwrap_or("")));
        }
    }
    if !skipped.is_empty() {
        out.push_str("\nSkipped privileges:\n");
        out.push_str(&table::render(
            &["role", "privilege", "level", "reason"],
            &skipped,
        ));
    }
    let list = |key: &str| -> Vec<String> {
        answer[key]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect()
    };
    let created = list("tables_created");
    if !created.is_empty() {
        out.push_str(&format!(
            "\nTables {}: {}\n",
            if dry { "to create" } else { "created" },
            created.join(", ")
        ));
    }
    let unknown = list("tables_unknown");
    if !unknown.is_empty() {
        out.push_str(&format!(
            "\nUnknown tables (privileges skipped; --create-tables creates standard and custom ones): {}\n",
            unknown.join(", ")
        ));
    }
    for n in notes {
        out.push_str(&format!("note: {n}\n"));
    }
    if let Some(users) = answer["difference"]["users"].as_array() {
        out.push_str(&format!(
            "\nUsers whose access would change: {}\n",
            users.len()
        ));
    }
    out
}

pub(crate) fn export(command: ExportCommand) -> anyhow::Result<()> {
    let ExportCommand::Roles { source, roles, out } = command;
    let files: Vec<(String, String)> = match source.server() {
        Some(server) => {
            let rest = match roles.as_slice() {
                [] => "/roles/export".to_owned(),
                [one] => format!("/roles/export?role={}", encode(one)),
                _ => bail!("through a server, export one --role or every role"),
            };
            let answer = server.get(&rest)?;
            let withheld = answer["withheld"].as_u64().unwrap_or(0);
            if withheld > 0 {
                eprintln!("{withheld} roles you may not read were left out");
            }
            answer["files"]
                .as_array()
                .ok_or_else(|| anyhow!("the server answered no files"))?
                .iter()
                .map(|f| {
                    (
                        f["path"].as_str().unwrap_or("").to_owned(),
                        f["text"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        }
        None => {
            let org = organisation(&source)?;
            strata_solution::export(&org, &roles)
                .map_err(|e| anyhow!(e))?
                .into_iter()
                .map(|f| (f.path, f.text))
                .collect()
        }
    };
    let packed = files
        .iter()
        .find(|(p, _)| p == "customizations.xml")
        .ok_or_else(|| anyhow!("nothing exported"))?;
    let count = files.len() - 1;
    match out {
        None => print!("{}", packed.1),
        Some(path)
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("xml")) =>
        {
            write(&path, &packed.1)?;
            eprintln!("{count} roles written to {}", path.display());
        }
        Some(dir) => {
            for (p, text) in &files {
                let inside = Path::new(p)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
                if !inside {
                    bail!("refusing to write outside {}: {p}", dir.display());
                }
                write(&dir.join(p), text)?;
            }
            eprintln!(
                "{count} roles written to {} (Roles/*.xml and customizations.xml)",
                dir.display()
            );
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| anyhow!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| anyhow!("{}: {e}", path.display()))
}
