//! The questions: `explain`, `check`, `who-has-access` and `test` (scenario files), from a
//! scenario's organisation, a database or a server.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use strata_engine::{Organization, Privilege};
use strata_scenario::{EngineTarget, Target, run_paths};

use crate::args::Source;
use crate::remote::encode;
use crate::server_cmd;

pub(crate) fn load_scenario(path: &Path) -> anyhow::Result<strata_scenario::Scenario> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    strata_scenario::load_str(&source)
        .map_err(|e| anyhow!("{}:{}: {}", path.display(), e.line, e.message))
}

pub(crate) fn organisation(source: &Source) -> anyhow::Result<Organization> {
    match (&source.scenario, &source.db, &source.org) {
        (Some(path), _, _) => {
            let scenario = load_scenario(path)?;
            let mut target = EngineTarget::new();
            target
                .load(&scenario)
                .map_err(|e| anyhow!("{}:{}: {}", path.display(), e.line, e.message))?;
            Ok(target.organization().clone())
        }
        (None, Some(db), Some(org)) => {
            let store = server_cmd::open_existing_store(db)?;
            Ok(strata_store::load_organization(store.as_ref(), org)?.0)
        }
        _ => bail!("name the organisation: --scenario FILE, or --db FILE --org NAME"),
    }
}

/// The decision as JSON, from the organisation named by `source` (local or on a server).
fn decide(
    source: &Source,
    user: &str,
    privilege_name: &str,
    record: &str,
) -> anyhow::Result<serde_json::Value> {
    if let Some(server) = source.server() {
        let body =
            serde_json::json!({ "user": user, "privilege": privilege_name, "record": record });
        return server.send("POST", "/explain", Some(body));
    }
    let org = organisation(source)?;
    let p = privilege(privilege_name)?;
    let u = org
        .user_id(user)
        .ok_or_else(|| anyhow!("unknown user `{user}`"))?;
    let r = org
        .record_id(record)
        .ok_or_else(|| anyhow!("unknown record `{record}`"))?;
    Ok(strata_ops::decision_json(&org, &org.explain(u, p, r)))
}

fn privilege(name: &str) -> anyhow::Result<Privilege> {
    Privilege::from_name(name).ok_or_else(|| {
        anyhow!(
            "unknown privilege `{name}` (create read write delete append append_to assign share)"
        )
    })
}

/// `strata test`: scenario files in process, or against a server with its root key.
pub(crate) fn test(
    paths: &[PathBuf],
    server: Option<String>,
    root_key: Option<String>,
) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let summary = match server {
        None => run_paths(
            paths,
            &mut || Box::new(EngineTarget::new()) as Box<dyn Target>,
            &mut out,
        ),
        Some(url) => {
            let key = root_key.ok_or_else(|| {
                anyhow!("--server needs the server's root key (--root-key or STRATA_ROOT_KEY)")
            })?;
            strata_scenario::http_client::HttpClient::new(&url, std::time::Duration::from_secs(30))
                .map_err(|e| anyhow!("--server {url}: {e}"))?;
            run_paths(
                paths,
                &mut || Box::new(strata_scenario::HttpTarget::new(&url, &key)) as Box<dyn Target>,
                &mut out,
            )
        }
    };
    Ok(ExitCode::from(
        u8::try_from(summary.exit_code()).unwrap_or(2),
    ))
}

/// Exit status 0 when allowed, 1 when denied.
fn verdict(allowed: bool) -> ExitCode {
    if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `strata explain`: every grant path, or what is missing (`--json` for the decision as JSON).
pub(crate) fn explain(
    source: &Source,
    json: bool,
    user: &str,
    privilege: &str,
    record: &str,
) -> anyhow::Result<ExitCode> {
    let decision = decide(source, user, privilege, record)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        println!("{}", decision["explanation"].as_str().unwrap_or_default());
    }
    Ok(verdict(decision["allowed"] == true))
}

/// `strata check`: `allow` or `deny`.
pub(crate) fn check(
    source: &Source,
    user: &str,
    privilege: &str,
    record: &str,
) -> anyhow::Result<ExitCode> {
    let allowed = decide(source, user, privilege, record)?["allowed"] == true;
    println!("{}", if allowed { "allow" } else { "deny" });
    Ok(verdict(allowed))
}

/// `strata who-has-access`: the users holding a privilege on a record.
pub(crate) fn who_has_access(source: &Source, record: &str, p: &str) -> anyhow::Result<()> {
    if let Some(server) = source.server() {
        let answer = server.get(&format!(
            "/records/{}/who-has-access?privilege={}",
            encode(record),
            encode(p)
        ))?;
        for u in answer["users"].as_array().into_iter().flatten() {
            println!("{}", u.as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let org = organisation(source)?;
    let p = privilege(p)?;
    let r = org
        .record_id(record)
        .ok_or_else(|| anyhow!("unknown record `{record}`"))?;
    for u in org.who_has_access(r, p) {
        println!("{}", org.user(u).name);
    }
    Ok(())
}
