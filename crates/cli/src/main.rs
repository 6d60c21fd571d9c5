//! `strata`: the command line. Parses arguments and calls the library crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Test { paths } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let summary = run_paths(
                &paths,
                &mut || Box::new(EngineTarget::new()) as Box<dyn Target>,
                &mut out,
            );
            ExitCode::from(u8::try_from(summary.exit_code()).unwrap_or(2))
        }
    }
}
