//! `strata rules list|add|remove|check`: the role rules of an organisation (docs/semantics.md
//! D45–D47) — from a scenario's organisation, a database or a server; adding and removing go
//! through the write path (audited), locally as `--as USER` or the system, or through a server.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use strata_app::Actor;
use strata_ops::{Operation, rule_json, violation_json};
use strata_store::Store;

use crate::args::Source;
use crate::question_cmd::organisation;
use crate::remote::{encode, remote};
use crate::server_cmd;

/// The rule a command names: a role and one of --requires (repeatable), --excludes,
/// --direct-only.
#[derive(Args, Debug)]
pub(crate) struct RuleArgs {
    /// The role the rule is about.
    #[arg(long)]
    role: String,
    /// The role needs one of these roles (repeat the flag for several).
    #[arg(long, conflicts_with_all = ["excludes", "direct_only"])]
    requires: Vec<String>,
    /// The role never goes with this one.
    #[arg(long, conflicts_with = "direct_only")]
    excludes: Option<String>,
    /// The role must be assigned to users directly, not through a team.
    #[arg(long)]
    direct_only: bool,
}

/// Where a rule is written: a database file's organisation (as `--as USER` or the system) or a
/// server's (as the key's user).
#[derive(Args, Debug)]
pub(crate) struct WriteTarget {
    /// The organisation.
    #[arg(long)]
    org: String,
    /// A Strata database: a SQLite file, or a postgres:// URL.
    #[arg(long, visible_alias = "database", conflicts_with = "server")]
    db: Option<PathBuf>,
    /// Act as this user (local only; default: the system).
    #[arg(long = "as", requires = "db")]
    user: Option<String>,
    /// A Strata server's URL (http://host:port).
    #[arg(long, requires = "key")]
    server: Option<String>,
    /// The API key to use with --server; also read from STRATA_API_KEY.
    #[arg(long, env = "STRATA_API_KEY", hide_env_values = true)]
    key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum RulesCommand {
    /// The rules in force.
    List {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a rule (refused when it contradicts the rules in force, closes a cycle of
    /// requirements or constrains System Administrator).
    Add {
        #[command(flatten)]
        target: WriteTarget,
        #[command(flatten)]
        rule: RuleArgs,
    },
    /// Remove a rule.
    Remove {
        #[command(flatten)]
        target: WriteTarget,
        #[command(flatten)]
        rule: RuleArgs,
    },
    /// The violations report: users breaking a rule (assignments that predate it). Exits 1
    /// when there is any.
    Check {
        #[command(flatten)]
        source: Source,
        /// Only this user.
        #[arg(long)]
        user: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(command: RulesCommand) -> anyhow::Result<ExitCode> {
    match command {
        RulesCommand::List { source, json } => list(&source, json).map(|()| ExitCode::SUCCESS),
        RulesCommand::Add { target, rule } => {
            write(&target, &rule, true).map(|()| ExitCode::SUCCESS)
        }
        RulesCommand::Remove { target, rule } => {
            write(&target, &rule, false).map(|()| ExitCode::SUCCESS)
        }
        RulesCommand::Check { source, user, json } => check(&source, user.as_deref(), json),
    }
}

fn remote_of(source: &Source) -> Option<(&str, &str, &str)> {
    match (&source.server, &source.org, &source.key) {
        (Some(s), Some(o), Some(k)) => Some((s, o, k)),
        _ => None,
    }
}

fn held_text(direct: bool, teams: &[String]) -> String {
    let through = teams
        .iter()
        .map(|t| format!("team {t}"))
        .collect::<Vec<_>>()
        .join(", ");
    match (direct, teams.is_empty()) {
        (true, true) => "direct".to_owned(),
        (true, false) => format!("direct, {through}"),
        (false, _) => through,
    }
}

/// Prints rows as aligned columns under a header.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        line(row.clone());
    }
}

fn list(source: &Source, as_json: bool) -> anyhow::Result<()> {
    let rules: Vec<Value> = match remote_of(source) {
        Some((server, org, key)) => {
            let answer = remote(
                server,
                key,
                "GET",
                &format!("/api/v1/orgs/{}/rules", encode(org)),
                None,
            )?;
            answer["rules"].as_array().cloned().unwrap_or_default()
        }
        None => {
            let org = organisation(source)?;
            org.role_rules()
                .iter()
                .map(|r| rule_json(&org, r))
                .collect()
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "rules": rules }))?
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            let what = match s("kind").as_str() {
                "requires" => r["requires"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(" or ")
                    })
                    .unwrap_or_default(),
                "excludes" => s("excludes"),
                _ => String::new(),
            };
            vec![s("role"), s("kind"), what]
        })
        .collect();
    table(&["ROLE", "RULE", "ROLES"], &rows);
    Ok(())
}

fn check(source: &Source, user: Option<&str>, as_json: bool) -> anyhow::Result<ExitCode> {
    let violations: Vec<Value> = match remote_of(source) {
        Some((server, org, key)) => {
            let query = user.map_or(String::new(), |u| format!("?user={}", encode(u)));
            let answer = remote(
                server,
                key,
                "GET",
                &format!("/api/v1/orgs/{}/rules/violations{query}", encode(org)),
                None,
            )?;
            answer["violations"].as_array().cloned().unwrap_or_default()
        }
        None => {
            let org = organisation(source)?;
            let list = match user {
                Some(name) => org.user_rule_violations(
                    org.user_id(name)
                        .ok_or_else(|| anyhow!("unknown user `{name}`"))?,
                ),
                None => org.rule_violations(),
            };
            list.iter().map(|v| violation_json(&org, v)).collect()
        }
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "violations": violations }))?
        );
    } else if violations.is_empty() {
        println!("no violations");
    } else {
        let rows: Vec<Vec<String>> = violations
            .iter()
            .map(|v| {
                let s = |x: &Value| x.as_str().unwrap_or_default().to_owned();
                let teams = |h: &Value| -> Vec<String> {
                    h["teams"]
                        .as_array()
                        .map(|a| a.iter().map(s).collect())
                        .unwrap_or_default()
                };
                let held = held_text(v["held"]["direct"] == true, &teams(&v["held"]));
                let problem = match s(&v["kind"]).as_str() {
                    "missing" => format!(
                        "missing {}",
                        v["missing"]
                            .as_array()
                            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(" or "))
                            .unwrap_or_default()
                    ),
                    "conflict" => format!(
                        "with {} ({})",
                        s(&v["conflicting"]),
                        held_text(
                            v["conflicting_held"]["direct"] == true,
                            &teams(&v["conflicting_held"])
                        )
                    ),
                    _ => "not assigned directly".to_owned(),
                };
                vec![s(&v["user"]), s(&v["rule"]["text"]), held, problem]
            })
            .collect();
        table(&["USER", "RULE", "HELD", "PROBLEM"], &rows);
    }
    Ok(if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write(target: &WriteTarget, rule: &RuleArgs, add: bool) -> anyhow::Result<()> {
    let requires = (!rule.requires.is_empty()).then(|| rule.requires.clone());
    let body = {
        let mut b = json!({ "role": rule.role });
        if let Some(r) = &requires {
            b["requires"] = json!(r);
        }
        if let Some(e) = &rule.excludes {
            b["excludes"] = json!(e);
        }
        if rule.direct_only {
            b["direct_only"] = json!(true);
        }
        b
    };
    let verb = if add { "added" } else { "removed" };
    match (&target.db, &target.server, &target.key) {
        (None, Some(server), Some(key)) => {
            let answer = remote(
                server,
                key,
                if add { "POST" } else { "DELETE" },
                &format!("/api/v1/orgs/{}/rules", encode(&target.org)),
                Some(body),
            )?;
            println!("{verb}: revision {}", answer["revision"]);
            Ok(())
        }
        (Some(db), None, _) => {
            let op = if add {
                Operation::AddRoleRule {
                    role: rule.role.clone(),
                    requires,
                    excludes: rule.excludes.clone(),
                    direct_only: rule.direct_only,
                }
            } else {
                Operation::RemoveRoleRule {
                    role: rule.role.clone(),
                    requires,
                    excludes: rule.excludes.clone(),
                    direct_only: rule.direct_only,
                }
            };
            let store: Arc<dyn Store> = server_cmd::open_existing_store(db)?;
            let registry =
                strata_app::Registry::load(store.as_ref(), None).map_err(|e| anyhow!(e))?;
            let handle = registry.get(&target.org).map_err(|e| anyhow!(e))?;
            let actor = match &target.user {
                None => Actor::System,
                Some(name) => {
                    Actor::user_of(&handle.read_blocking().org, name).map_err(|e| anyhow!(e))?
                }
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let written = runtime
                .block_on(handle.write(store, vec![op], actor))
                .map_err(|e| anyhow!(e))?;
            println!("{verb}: revision {}", written.revision);
            Ok(())
        }
        _ => bail!("give --db FILE, or --server URL with --key KEY"),
    }
}
