//! Builds the demo organisation and answers the tour's questions:
//! `cargo run -p strata-demo --example tour`.

use std::process::ExitCode;
use std::time::Instant;

use strata_engine::{Privilege, Value};

fn main() -> ExitCode {
    let started = Instant::now();
    let org = match strata_demo::organization(strata_demo::DEFAULT_RECORDS_PER_TABLE) {
        Ok(org) => org,
        Err((i, e)) => {
            eprintln!("operation {i} refused: {}", e.message);
            return ExitCode::FAILURE;
        }
    };
    println!(
        "demo: {} users, {} teams, {} roles, {} tables, {} records in {:?}",
        org.user_ids().count(),
        org.team_ids().count(),
        org.role_ids().count(),
        org.table_ids().count(),
        org.record_count(),
        started.elapsed()
    );
    for (question, command) in strata_demo::tour() {
        println!("\n> {question}\n  {command}");
        let words: Vec<&str> = command.split_whitespace().collect();
        let arg = |name: &str| {
            words
                .windows(2)
                .find(|w| w[0] == name)
                .map(|w| w[1].to_owned())
        };
        let user = arg("--user").and_then(|u| org.user_id(&u));
        let record = arg("--record").and_then(|r| org.record_id(&r));
        let privilege = arg("--privilege").and_then(|p| Privilege::from_name(&p));
        match (words.first().copied(), user, record, privilege) {
            (Some("explain"), Some(u), Some(r), Some(p)) => {
                println!("{}", org.render_decision(&org.explain(u, p, r)));
            }
            (Some("who-has-access"), _, Some(r), Some(p)) => {
                let names: Vec<String> = org
                    .who_has_access(r, p)
                    .into_iter()
                    .map(|u| org.user(u).name.clone())
                    .collect();
                println!("{}", names.join(", "));
            }
            _ => {
                let Some((_, query)) = command.split_once("?user=") else {
                    continue;
                };
                let Some(u) = org.user_id(query) else {
                    continue;
                };
                if let Some(app) = command
                    .split("/apps/")
                    .nth(1)
                    .and_then(|a| a.split('/').next())
                {
                    let app = app.replace("%20", " ");
                    let access = org.app_id(&app).and_then(|a| org.app_access(u, a));
                    println!("{app}: {access:?}");
                } else if let Some(key) = command
                    .split("/records/")
                    .nth(1)
                    .and_then(|k| k.split('?').next())
                    && let Some(r) = org.record_id(key)
                {
                    let fields = org.read_record(u, r).unwrap_or_default();
                    for (name, value) in fields {
                        let shown = match value {
                            Value::Null => "(blank)".to_owned(),
                            other => format!("{other:?}"),
                        };
                        println!("{name} = {shown}");
                    }
                }
            }
        }
    }
    ExitCode::SUCCESS
}
