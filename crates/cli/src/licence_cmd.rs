//! `strata licence list|report|user U|exceeds ROLE LICENCE`: licences (seed 003) — the
//! catalogue, the organisation's report (cheapest mix, over- and under-licensed users), one
//! user's answer, and where a role exceeds a licence. The same JSON as the server's
//! `/licences…` routes (`strata_ops`), printed as tables or, with `--json`, as is.

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::Value;

use crate::args::Source;
use crate::remote::encode;
use crate::table;

/// The `licence` verbs.
#[derive(Subcommand, Debug)]
pub(crate) enum LicenceCommand {
    /// The catalogue: each licence's price and use rights.
    List {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every user's licences against the cheapest covering set, and the totals.
    Report {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One user's licences, the cheapest covering set, and what is not covered.
    User {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The user.
        user: String,
    },
    /// Where a role gives more than a licence allows, cell by cell.
    Exceeds {
        #[command(flatten)]
        source: Source,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The role.
        role: String,
        /// The licence.
        licence: String,
    },
}

fn s(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Null => "-".to_owned(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(s).collect::<Vec<_>>().join(" + "),
        other => other.to_string(),
    }
}

fn uncovered(u: &Value) -> String {
    match u["kind"].as_str() {
        Some("misc") => format!("misc {}", s(&u["privilege"])),
        Some("app") => format!("app {}", s(&u["app"])),
        _ => format!(
            "{} {} {} > {}",
            s(&u["table"]),
            s(&u["privilege"]),
            s(&u["needed"]),
            s(&u["ceiling"])
        ),
    }
}

fn print_catalogue(answer: &Value) {
    println!(
        "licensing {}",
        if answer["enforced"] == Value::Bool(true) {
            "enforced"
        } else {
            "not enforced (no licence in the catalogue)"
        }
    );
    let rows: Vec<Vec<String>> = answer["licences"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let tables = l["tables"]
                .as_object()
                .map(|t| {
                    t.iter()
                        .map(|(name, row)| {
                            let cells: Vec<(&String, &Value)> =
                                row.as_object().into_iter().flatten().collect();
                            let mut granted: Vec<String> = cells
                                .iter()
                                .filter(|(_, d)| d.as_str() != Some("none"))
                                .map(|(p, d)| format!("{p}:{}", s(d)))
                                .collect();
                            if cells.len() == 8
                                && let Some((_, first)) = cells.first()
                                && first.as_str() != Some("none")
                                && cells.iter().all(|(_, d)| d == first)
                            {
                                granted = vec![format!("all:{}", s(first))];
                            }
                            format!(
                                "{name}({})",
                                if granted.is_empty() {
                                    "none".to_owned()
                                } else {
                                    granted.join(",")
                                }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let all_or = |all: &Value, list: &Value| {
                if all == &Value::Bool(true) {
                    "all".to_owned()
                } else {
                    s(list)
                }
            };
            vec![
                s(&l["name"]),
                s(&l["price"]),
                s(&l["default"]),
                if tables.is_empty() {
                    "-".to_owned()
                } else {
                    tables
                },
                all_or(&l["all_misc"], &l["misc"]),
                all_or(&l["all_apps"], &l["apps"]),
            ]
        })
        .collect();
    table::print(
        &["LICENCE", "PRICE", "OTHER TABLES", "TABLES", "MISC", "APPS"],
        &rows,
    );
}

fn user_row(u: &Value) -> Vec<String> {
    let cheapest = match &u["cheapest"] {
        Value::Null => "no set covers".to_owned(),
        c => format!("{} ({})", s(&c["licences"]), s(&c["price"])),
    };
    vec![
        s(&u["user"]),
        format!("{} ({})", s(&u["held"]), s(&u["held_price"])),
        cheapest,
        s(&u["fit"]),
        u["uncovered"]
            .as_array()
            .map(|list| {
                let mut text: Vec<String> = list.iter().take(3).map(uncovered).collect();
                if list.len() > 3 {
                    text.push(format!("… {} more", list.len() - 3));
                }
                text.join("; ")
            })
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "-".to_owned()),
    ]
}

const USER_HEADER: [&str; 5] = ["USER", "HELD", "CHEAPEST", "FIT", "NOT COVERED"];

fn print_report(answer: &Value) {
    let rows: Vec<Vec<String>> = answer["users"]
        .as_array()
        .into_iter()
        .flatten()
        .map(user_row)
        .collect();
    table::print(&USER_HEADER, &rows);
    println!(
        "\ntoday {} · cheapest mix {} · savings {} · over-licensed {} · under-licensed {}",
        s(&answer["total_held"]),
        s(&answer["total_cheapest"]),
        s(&answer["savings"]),
        s(&answer["over_licensed"]),
        s(&answer["under_licensed"])
    );
}

fn print_user(answer: &Value) {
    table::print(&USER_HEADER, &[user_row(answer)]);
    let list = answer["uncovered"].as_array().cloned().unwrap_or_default();
    if list.len() > 3 {
        println!("\nnot covered:");
        for u in &list {
            println!("  {}", uncovered(u));
        }
    }
}

fn print_exceeds(answer: &Value) {
    let mut rows = Vec::new();
    for role in answer["roles"].as_array().into_iter().flatten() {
        for c in role["exceeds"].as_array().into_iter().flatten() {
            let (what, gives, allows) = match c["kind"].as_str() {
                Some("misc") => (
                    format!("misc {}", s(&c["privilege"])),
                    "held".to_owned(),
                    "not allowed".to_owned(),
                ),
                Some("app") => (
                    format!("app {}", s(&c["app"])),
                    "associated".to_owned(),
                    "not allowed".to_owned(),
                ),
                _ => (
                    format!("{} {}", s(&c["table"]), s(&c["privilege"])),
                    s(&c["role_depth"]),
                    s(&c["ceiling"]),
                ),
            };
            rows.push(vec![s(&role["role"]), what, gives, allows]);
        }
    }
    if rows.is_empty() {
        println!("within licence {}", s(&answer["licence"]));
    } else {
        let allows = format!("{} ALLOWS", s(&answer["licence"]).to_uppercase());
        table::print(&["ROLE", "PRIVILEGE", "ROLE GIVES", allows.as_str()], &rows);
    }
}

/// Runs a `licence` verb.
pub(crate) fn run(command: &LicenceCommand) -> anyhow::Result<()> {
    let (answer, json, print): (Value, bool, fn(&Value)) = match command {
        LicenceCommand::List { source, json } => (
            source.answer("/licences", |org| Ok(strata_ops::catalogue_json(org)))?,
            *json,
            print_catalogue,
        ),
        LicenceCommand::Report { source, json } => (
            source.answer("/licences/report", |org| {
                Ok(strata_ops::report_json(org, &org.licence_report().users))
            })?,
            *json,
            print_report,
        ),
        LicenceCommand::User { source, json, user } => (
            source.answer(&format!("/licences/users/{}", encode(user)), |org| {
                let u = org
                    .user_id(user)
                    .ok_or_else(|| anyhow!("unknown user `{user}`"))?;
                Ok(strata_ops::user_report_json(
                    org,
                    &org.user_licence_report(u),
                ))
            })?,
            *json,
            print_user,
        ),
        LicenceCommand::Exceeds {
            source,
            json,
            role,
            licence,
        } => {
            let rest = format!(
                "/licences/{}/exceeds?role={}",
                encode(licence),
                encode(role)
            );
            let answer = source.answer(&rest, |org| {
                strata_ops::exceeds_json(org, licence, Some(role)).map_err(|e| anyhow!(e.message))
            })?;
            (answer, *json, print_exceeds)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print(&answer);
    }
    Ok(())
}
