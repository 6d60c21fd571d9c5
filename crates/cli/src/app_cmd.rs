//! `strata app list|show|why|needs` and `strata column who`: the administrator's questions about
//! apps and columns (D51–D53), from a scenario, a database or a server; tables for a person,
//! `--json` for scripts.

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::Value;
use strata_engine::Organization;

use crate::args::Source;
use crate::remote::encode;
use crate::table;

#[derive(Subcommand, Debug)]
pub(crate) enum AppCommand {
    /// Every app with its roles and the table privileges it needs.
    List {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One app: its roles, its needs and who can open it (and how).
    Show {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The app.
        app: String,
    },
    /// Why a user can or cannot open an app: every reason, and the needs their roles miss.
    /// Exits 0 when the user opens the app, 1 otherwise.
    Why {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The app.
        app: String,
        /// The user.
        user: String,
    },
    /// The smallest set of roles that would let a user open an app and do its work (D51).
    Needs {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The app.
        app: String,
        /// The user.
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ColumnCommand {
    /// Who can read or update a secured column, through which profile, team or System
    /// Administrator.
    Who {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// May a user read (or update) a column of a record: prints allow or deny and exits 0 or 1.
    Check {
        #[command(flatten)]
        column: ColumnQuestion,
    },
    /// Why a user may or may not read (or update) a column of a record: the record decision,
    /// the column's profiles, teams and field shares.
    Explain {
        #[command(flatten)]
        column: ColumnQuestion,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A column read or update of one record by one user.
#[derive(clap::Args, Debug)]
pub(crate) struct ColumnQuestion {
    #[command(flatten)]
    source: Source,
    /// The user.
    #[arg(long)]
    user: String,
    /// The record id (or GUID).
    #[arg(long)]
    record: String,
    /// The column.
    #[arg(long)]
    column: String,
    /// Ask about updating the column, not reading it.
    #[arg(long)]
    update: bool,
}

impl ColumnQuestion {
    /// The verdict as JSON (`POST …/columns/explain` on a server).
    fn verdict(&self) -> anyhow::Result<Value> {
        let access = if self.update { "update" } else { "read" };
        if let Some(server) = self.source.server() {
            let body = serde_json::json!({
                "user": self.user, "record": self.record, "column": self.column, "access": access,
            });
            return server.send("POST", "/columns/explain", Some(body));
        }
        let org = crate::question_cmd::organisation(&self.source)?;
        let u = user_id(&org, &self.user)?;
        let r = org
            .record_id(&self.record)
            .or_else(|| self.record.parse().ok().and_then(|g| org.record_by_guid(g)))
            .ok_or_else(|| anyhow!("not_found: record `{}` does not exist", self.record))?;
        let v = org
            .explain_column(u, r, &self.column, self.update)
            .map_err(|e| anyhow!("{}: {e}", e.code()))?;
        Ok(strata_ops::column_verdict_json(&org, &v))
    }
}

/// Exit status 0 when allowed, 1 when denied.
fn verdict_exit(v: &Value) -> ExitCode {
    if v["allowed"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn app_id(org: &Organization, name: &str) -> anyhow::Result<strata_engine::AppId> {
    org.app_id(name)
        .ok_or_else(|| anyhow!("unknown app `{name}`"))
}

fn user_id(org: &Organization, name: &str) -> anyhow::Result<strata_engine::UserId> {
    org.user_id(name)
        .ok_or_else(|| anyhow!("unknown user `{name}`"))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// One row per item of a list: the text of each of `fields`.
fn rows(list: &Value, fields: &[&str]) -> Vec<Vec<String>> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|item| fields.iter().map(|f| text(&item[*f])).collect())
        .collect()
}

fn names(v: &Value) -> String {
    let list: Vec<String> = v.as_array().into_iter().flatten().map(text).collect();
    if list.is_empty() {
        "-".to_owned()
    } else {
        list.join(", ")
    }
}

fn needs(v: &Value) -> String {
    let list: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            format!(
                "{} {} ≥ {}",
                text(&n["table"]),
                text(&n["privilege"]),
                text(&n["depth"])
            )
        })
        .collect();
    if list.is_empty() {
        "-".to_owned()
    } else {
        list.join(", ")
    }
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `strata app …`.
pub(crate) fn app(command: AppCommand) -> anyhow::Result<ExitCode> {
    match command {
        AppCommand::List { source, json } => {
            let v = source.answer("/apps", |org| Ok(strata_ops::apps_json(org)))?;
            if json {
                print_json(&v)?;
            } else {
                let rows: Vec<Vec<String>> = v["apps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| vec![text(&a["name"]), names(&a["roles"]), needs(&a["needs"])])
                    .collect();
                table::print(&["APP", "ROLES", "NEEDS"], &rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Show { source, json, app } => {
            let v = source.answer(&format!("/apps/{}", encode(&app)), |org| {
                let a = app_id(org, &app)?;
                let mut v = strata_ops::app_json(org, a);
                let users: Vec<Value> = org
                    .who_can_open(a)
                    .into_iter()
                    .map(|(u, access)| strata_ops::app_access_json(org, u, access))
                    .collect();
                v["users"] = Value::Array(users);
                Ok(v)
            })?;
            if json {
                print_json(&v)?;
            } else {
                println!("app:   {}", text(&v["name"]));
                println!("roles: {}", names(&v["roles"]));
                println!("needs: {}", needs(&v["needs"]));
                println!();
                table::print(
                    &["USER", "VIA", "ROLE", "TEAM"],
                    &rows(&v["users"], &["user", "via", "role", "team"]),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AppCommand::Why {
            source,
            json,
            app,
            user,
        } => {
            let rest = format!("/apps/{}/access?user={}", encode(&app), encode(&user));
            let v = source.answer(&rest, |org| {
                Ok(strata_ops::app_diagnosis_json(
                    org,
                    user_id(org, &user)?,
                    app_id(org, &app)?,
                ))
            })?;
            let allowed = v["allowed"] == true;
            if json {
                print_json(&v)?;
            } else {
                println!(
                    "{}: user `{}` {} app `{}`",
                    if allowed { "allow" } else { "deny" },
                    text(&v["user"]),
                    if allowed { "opens" } else { "cannot open" },
                    text(&v["app"])
                );
                if allowed {
                    println!("  + {}", text(&v["reason"]));
                }
                for r in v["reasons"].as_array().into_iter().flatten() {
                    println!("  - {}: {}", text(&r["code"]), text(&r["text"]));
                }
                let missing = rows(&v["missing"], &["table", "privilege", "depth", "held"]);
                if !missing.is_empty() {
                    println!("\nthe app needs what the user's roles do not give:");
                    table::print(&["TABLE", "PRIVILEGE", "NEEDS", "HOLDS"], &missing);
                }
            }
            Ok(if allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AppCommand::Needs {
            source,
            json,
            app,
            user,
        } => {
            let rest = format!("/apps/{}/roles-needed?user={}", encode(&app), encode(&user));
            let v = source.answer(&rest, |org| {
                let (u, a) = (user_id(org, &user)?, app_id(org, &app)?);
                let set = org
                    .roles_needed(u, a)
                    .map_err(|e| anyhow!("{}: {e}", e.code()))?;
                Ok(strata_ops::role_set_json(org, u, a, &set))
            })?;
            if json {
                print_json(&v)?;
            } else {
                let roles: Vec<String> = v["roles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                if roles.is_empty() {
                    println!(
                        "user `{}` already opens app `{}` and holds what it needs",
                        text(&v["user"]),
                        text(&v["app"])
                    );
                } else {
                    println!(
                        "give user `{}` {} role{} to open app `{}` and do its work{}:",
                        text(&v["user"]),
                        roles.len(),
                        if roles.len() == 1 { "" } else { "s" },
                        text(&v["app"]),
                        if v["exact"] == true {
                            ""
                        } else {
                            " (the best found within the search limit, not proven smallest)"
                        }
                    );
                    for a in v["assignments"].as_array().into_iter().flatten() {
                        match a["business_unit"].as_str() {
                            Some(unit) => println!(
                                "  {} (assigned in business unit `{unit}`)",
                                text(&a["role"])
                            ),
                            None => println!("  {}", text(&a["role"])),
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `strata column …`.
pub(crate) fn column(command: ColumnCommand) -> anyhow::Result<ExitCode> {
    match command {
        ColumnCommand::Who {
            source,
            json,
            table,
            column,
        } => {
            let rest = format!(
                "/tables/{}/columns/{}/access",
                encode(&table),
                encode(&column)
            );
            let v = source.answer(&rest, |org| {
                let t = org
                    .table_id(&table)
                    .ok_or_else(|| anyhow!("unknown table `{table}`"))?;
                let holders = org
                    .column_holders(t, &column)
                    .map_err(|e| anyhow!("{}: {e}", e.code()))?;
                Ok(strata_ops::column_holders_json(
                    org,
                    &table,
                    &column,
                    holders.as_deref(),
                ))
            })?;
            if json {
                print_json(&v)?;
            } else if v["secured"] != true {
                println!("{}.{}: {}", table, column, text(&v["note"]));
            } else {
                let yes = |b: &Value| if *b == true { "yes" } else { "no" }.to_owned();
                let rows: Vec<Vec<String>> = v["users"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|u| {
                        let through: Vec<String> = u["sources"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|s| text(&s["text"]))
                            .collect();
                        vec![
                            text(&u["user"]),
                            yes(&u["read"]),
                            yes(&u["update"]),
                            yes(&u["create"]),
                            through.join("; "),
                        ]
                    })
                    .collect();
                table::print(&["USER", "READ", "UPDATE", "CREATE", "THROUGH"], &rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        ColumnCommand::Check { column } => {
            let v = column.verdict()?;
            println!(
                "{}",
                if v["allowed"] == true {
                    "allow"
                } else {
                    "deny"
                }
            );
            Ok(verdict_exit(&v))
        }
        ColumnCommand::Explain { column, json } => {
            let v = column.verdict()?;
            if json {
                print_json(&v)?;
            } else {
                println!("{}", text(&v["explanation"]));
            }
            Ok(verdict_exit(&v))
        }
    }
}
