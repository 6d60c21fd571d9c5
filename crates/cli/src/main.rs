//! `strata`: the command line. Parses arguments and calls the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Parser, Subcommand};
use strata_engine::{Organization, Privilege};
use strata_scenario::{EngineTarget, Target, run_paths};

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "A self-hosted security engine implementing the Dataverse security model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenario files (format 1): every *.yaml under the given files and folders.
    Test {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Explain a decision in the organisation a scenario file sets up (its steps are not run).
    Explain {
        /// The scenario file whose setup is the organisation.
        #[arg(long)]
        scenario: PathBuf,
        /// The user.
        #[arg(long)]
        user: String,
        /// The privilege: create read write delete append append_to assign share.
        #[arg(long)]
        privilege: String,
        /// The record id.
        #[arg(long)]
        record: String,
    },
    /// List the users who hold a privilege on a record, in a scenario file's organisation.
    WhoHasAccess {
        /// The scenario file whose setup is the organisation.
        #[arg(long)]
        scenario: PathBuf,
        /// The record id.
        #[arg(long)]
        record: String,
        /// The privilege (default read).
        #[arg(long, default_value = "read")]
        privilege: String,
    },
}

fn organisation(path: &PathBuf) -> anyhow::Result<Organization> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let scenario = strata_scenario::load_str(&source)
        .map_err(|e| anyhow!("{}:{}: {}", path.display(), e.line, e.message))?;
    let mut target = EngineTarget::new();
    target
        .load(&scenario)
        .map_err(|e| anyhow!("{}:{}: {}", path.display(), e.line, e.message))?;
    Ok(target.organization().clone())
}

fn privilege(name: &str) -> anyhow::Result<Privilege> {
    Privilege::from_name(name).ok_or_else(|| {
        anyhow!(
            "unknown privilege `{name}` (create read write delete append append_to assign share)"
        )
    })
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Test { paths } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let summary = run_paths(
                &paths,
                &mut || Box::new(EngineTarget::new()) as Box<dyn Target>,
                &mut out,
            );
            Ok(ExitCode::from(
                u8::try_from(summary.exit_code()).unwrap_or(2),
            ))
        }
        Command::Explain {
            scenario,
            user,
            privilege: p,
            record,
        } => {
            let org = organisation(&scenario)?;
            let p = privilege(&p)?;
            let u = org
                .user_id(&user)
                .ok_or_else(|| anyhow!("unknown user `{user}`"))?;
            let r = org
                .record_id(&record)
                .ok_or_else(|| anyhow!("unknown record `{record}`"))?;
            let decision = org.explain(u, p, r);
            println!("{}", org.render_decision(&decision));
            Ok(if decision.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::WhoHasAccess {
            scenario,
            record,
            privilege: p,
        } => {
            let org = organisation(&scenario)?;
            let p = privilege(&p)?;
            let r = org
                .record_id(&record)
                .ok_or_else(|| anyhow!("unknown record `{record}`"))?;
            for u in org.who_has_access(r, p) {
                println!("{}", org.user(u).name);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
