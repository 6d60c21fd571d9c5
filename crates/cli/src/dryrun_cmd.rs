//! `strata apply --dry-run FILE`: the batch tried, not written — what it would change and the
//! access difference, as tables (names, not ids) or, with `--json`, as the API answers it.

use std::path::Path;

use serde_json::Value;

use crate::apply_cmd::read_operations;
use crate::args::WriteTarget;
use crate::remote::post_operations;
use crate::source::{LocalOrg, Place};
use crate::table;

/// A dry run of the file's batch on the target: locally as `--as USER` or the system (the
/// operator of the database sees every user's difference), or through a running server
/// (`?dry_run=true`) as the key's user.
pub(crate) fn run(target: &WriteTarget, file: &Path, json: bool) -> anyhow::Result<()> {
    let place = target.place()?;
    let (ops, body) = read_operations(file)?;
    let answer = match place {
        Place::Local { db, user } => {
            let local = LocalOrg::open(db, &target.org, user)?;
            let ops = local.as_actor(ops);
            local.dry_run(ops)?.to_json()
        }
        Place::Server(server) => serde_json::from_str(&post_operations(
            server.url,
            server.key,
            server.org,
            "?dry_run=true",
            &body,
        )?)?,
    };
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
        out.push_str(&table::render_indented(
            &["USER", "STATUS", "BEFORE", "AFTER"],
            &status,
        ));
    }
    if !privileges.is_empty() {
        out.push_str("privileges:\n");
        out.push_str(&table::render_indented(
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
        out.push_str(&table::render_indented(
            &["USER", "TABLE", "GAINED", "LOST"],
            &records,
        ));
    }
    let withheld = answer["difference"]["withheld"].as_u64().unwrap_or(0);
    if withheld > 0 {
        out.push_str(&format!(
            "{withheld} more users' access changes; you may not ask about them (prvCheckAccessOfOthers)\n"
        ));
    }
    out
}
