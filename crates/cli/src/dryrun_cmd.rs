//! `strata apply --dry-run FILE`: the batch tried, not written — what it would change and the
//! access difference, as tables (names, not ids) or, with `--json`, as the API answers it.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use serde_json::Value;
use strata_app::{Actor, run_as};
use strata_ops::Operation;
use strata_store::Store;

use crate::apply_cmd::read_operations;
use crate::server_cmd;

/// A dry run on a database file's organisation, as `user` or as the system. The operator of
/// the database sees every user's difference.
pub fn local(
    db: &Path,
    org: &str,
    file: &Path,
    user: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let (ops, _) = read_operations(file)?;
    let store: Arc<dyn Store> = server_cmd::open_existing_store(db)?;
    let registry = strata_app::Registry::load(store.as_ref(), None).map_err(|e| anyhow!(e))?;
    let handle = registry.get(org).map_err(|e| anyhow!(e))?;
    let actor = match &user {
        None => Actor::System,
        Some(name) => Actor::user_of(&handle.read_blocking().org, name).map_err(|e| anyhow!(e))?,
    };
    let ops: Vec<Operation> = match actor.user() {
        None => ops,
        Some(name) => ops.into_iter().map(|op| run_as(op, name)).collect(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let found = runtime
        .block_on(handle.dry_run(store, ops, actor, Arc::new(|_, _| true)))
        .map_err(|e| anyhow!(e))?;
    print(&found.to_json(), json)
}

/// A dry run through a running server (`?dry_run=true`), as the key's user.
pub fn remote(server: &str, key: &str, org: &str, file: &Path, json: bool) -> anyhow::Result<()> {
    let (_, body) = read_operations(file)?;
    let client =
        strata_scenario::http_client::HttpClient::new(server, std::time::Duration::from_secs(60))
            .map_err(|e| anyhow!(e))?;
    let path = format!(
        "/api/v1/orgs/{}/operations?dry_run=true",
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
    let answer: Value = serde_json::from_str(&text)?;
    print(&answer, json)
}

fn print(answer: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(answer)?);
    } else {
        print!("{}", render(answer));
    }
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Rows as a table with aligned columns.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

fn source(g: &Value) -> String {
    let via = match g["team"].as_str() {
        Some(team) if g["team_only"] == true => format!("team {team}, team only"),
        Some(team) => format!("team {team}"),
        None => "direct".to_owned(),
    };
    format!(
        "{} {} ({via}, from {})",
        text(&g["role"]),
        text(&g["depth"]),
        text(&g["business_unit"])
    )
}

/// The answer for a person.
pub fn render(answer: &Value) -> String {
    let empty = Vec::new();
    let list = |v: &Value| v.as_array().unwrap_or(&empty).clone();
    let mut out = format!(
        "dry run at revision {}: nothing was written\n\nchanges:\n",
        text(&answer["revision"])
    );
    for op in list(&answer["changes"]) {
        let changes = list(&op["changes"]);
        if changes.is_empty() {
            out.push_str(&format!("  {}\n", text(&op["op"])));
        }
        for c in changes {
            let mut parts = vec![text(&c["change"])];
            if let Some(fields) = c.as_object() {
                for (k, v) in fields {
                    if k != "change" {
                        let v = match v {
                            Value::Object(r) => format!(
                                "{} {}",
                                text(r.get("table").unwrap_or(&Value::Null)),
                                text(r.get("record").unwrap_or(&Value::Null))
                            ),
                            other => text(other),
                        };
                        parts.push(format!("{k}={v}"));
                    }
                }
            }
            out.push_str(&format!("  {}: {}\n", text(&op["op"]), parts.join(" ")));
        }
    }
    let users = list(&answer["difference"]["users"]);
    let mut privileges = Vec::new();
    let mut records = Vec::new();
    let mut status = Vec::new();
    for u in &users {
        let name = text(&u["user"]);
        for field in ["enabled", "system_administrator"] {
            if u[field]["before"] != u[field]["after"] {
                status.push(vec![
                    name.clone(),
                    field.to_owned(),
                    text(&u[field]["before"]),
                    text(&u[field]["after"]),
                ]);
            }
        }
        for p in list(&u["privileges"]) {
            let lost: Vec<String> = list(&p["lost"])
                .iter()
                .map(|g| format!("-{}", source(g)))
                .collect();
            let gained: Vec<String> = list(&p["gained"])
                .iter()
                .map(|g| format!("+{}", source(g)))
                .collect();
            privileges.push(vec![
                name.clone(),
                text(&p["table"]),
                text(&p["privilege"]),
                text(&p["before"]),
                text(&p["after"]),
                lost.into_iter()
                    .chain(gained)
                    .collect::<Vec<_>>()
                    .join("; "),
            ]);
        }
        for r in list(&u["records"]) {
            records.push(vec![
                name.clone(),
                text(&r["table"]),
                text(&r["gained"]),
                text(&r["lost"]),
            ]);
        }
    }
    out.push_str("\naccess difference:\n");
    if users.is_empty() {
        out.push_str("  no user's access changes\n");
    }
    if !status.is_empty() {
        out.push_str(&table(&["USER", "STATUS", "BEFORE", "AFTER"], &status));
    }
    if !privileges.is_empty() {
        out.push_str("privileges:\n");
        out.push_str(&table(
            &[
                "USER",
                "TABLE",
                "PRIVILEGE",
                "BEFORE",
                "AFTER",
                "GRANTS LOST (-) / GAINED (+)",
            ],
            &privileges,
        ));
    }
    if !records.is_empty() {
        out.push_str("records readable:\n");
        out.push_str(&table(&["USER", "TABLE", "GAINED", "LOST"], &records));
    }
    let withheld = answer["difference"]["withheld"].as_u64().unwrap_or(0);
    if withheld > 0 {
        out.push_str(&format!(
            "{withheld} more users' access changes; you may not ask about them (prvCheckAccessOfOthers)\n"
        ));
    }
    out
}
