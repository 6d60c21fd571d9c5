//! `strata`: the command line. Arguments are in `args.rs`; each command is a module.

/// mimalloc: lists and Web API answers allocate many small strings; the system allocator
/// spent a quarter of a list request in `malloc` and `free` (BENCHMARKS.md). Built with its
/// `no_thp` feature and run with transparent huge pages off ([`no_huge_pages`], D134).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the process's memory out of transparent huge pages (D134): first thing in `main`,
/// `prctl(PR_SET_THP_DISABLE)` for the whole process, and mimalloc is built not to ask for
/// them (`no_thp`, which also covers what it maps before `main`).
///
/// A huge page is resident whole. mimalloc asked for huge pages on its arena
/// (`MADV_HUGEPAGE`), so the first touch of a 2 MiB range faulted in all of it, and the
/// kernel's khugepaged, when its round over the machine reached the process — minutes after
/// the start, whenever the other processes let it —, collapsed each 2 MiB range holding at
/// least one resident page into a whole huge page (`max_ptes_none` is 511 by default): the
/// free pages mimalloc had returned were resident again. The soak's server went from
/// 72–78 MiB to 98–145 MiB in minutes and fell back only as slowly as mimalloc purged pieces
/// of the huge pages (RELIABILITY.md, "Load and soak"). The call also covers kernels whose
/// huge pages are on for every mapping (`always`). A kernel that refuses it changes nothing
/// else.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("warning: transparent huge pages stay on: {e}");
    }
}

/// A command that prints ends quietly when the reader of its output goes away
/// (`strata … | head`), as `cat` does: the signal's default action. Rust programs start with
/// SIGPIPE ignored, and every print to a closed pipe would then panic. Servers and benches
/// keep it ignored: a closed socket is an error they answer, never the end of the process.
#[allow(
    unsafe_code,
    reason = "a signal disposition has no safe interface in std or rustix's safe API"
)]
fn quiet_on_closed_pipe(command: &Command) {
    #[cfg(unix)]
    if !matches!(
        command,
        Command::Serve { .. } | Command::Demo { .. } | Command::Bench { .. }
    ) {
        // SAFETY: setting a signal's disposition to its default, before any thread starts;
        // no handler runs.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
}

mod app_cmd;
mod apply_cmd;
mod args;
mod bench_admin;
mod bench_cmd;
mod bench_console;
mod bench_crash;
mod bench_dryrun;
mod bench_import;
mod bench_memory;
mod bench_soak;
mod bench_writes;
mod checkpoint_cmd;
mod demo_cmd;
mod dryrun_cmd;
mod export_cmd;
mod licence_cmd;
mod list_cmd;
mod org_cmd;
mod pack_cmd;
mod question_cmd;
mod remote;
mod review_cmd;
mod role_cmd;
mod rules_cmd;
mod server_cmd;
mod solution_cmd;
mod source;
mod table;

use std::process::ExitCode;

use clap::Parser;
use strata_store::Store;

use args::{AuditCommand, BenchCommand, Cli, Command, KeyCommand, LogCommand};

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Test {
            paths,
            server,
            root_key,
        } => question_cmd::test(&paths, server, root_key),
        Command::Explain {
            source,
            json,
            user,
            privilege,
            record,
        } => question_cmd::explain(&source, json, &user, &privilege, &record),
        Command::Check {
            source,
            user,
            privilege,
            record,
        } => question_cmd::check(&source, &user, &privilege, &record),
        Command::Apply {
            file,
            target,
            dry_run,
            json,
        } => {
            if dry_run {
                dryrun_cmd::run(&target, &file, json)?;
            } else {
                apply_cmd::run(&target, &file)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::List {
            source,
            table,
            user,
            filter,
            orderby,
            count,
            limit,
            cursor,
        } => {
            let args = list_cmd::ListArgs {
                table: &table,
                user: user.as_deref(),
                filter: filter.as_deref(),
                orderby: orderby.as_deref(),
                count,
                limit,
            };
            if let Some(server) = source.server() {
                list_cmd::remote(server.url, server.key, server.org, &args, cursor.as_deref())?;
            } else {
                list_cmd::local(&question_cmd::organisation(&source)?, &args)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Licence { command } => {
            licence_cmd::run(&command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::WhoHasAccess {
            source,
            record,
            privilege,
        } => {
            question_cmd::who_has_access(&source, &record, &privilege)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            db,
            listen,
            root_key,
            tls,
            oidc,
            nodes,
        } => {
            server_cmd::init_logging();
            // Before the database is opened: a bad certificate creates nothing.
            let tls = server_cmd::tls(&tls, &db, &listen)?;
            let store = server_cmd::open_store(&db)?;
            let mut options = oidc.options();
            nodes.apply(&mut options);
            options.tls = tls.map(|t| t.config);
            server_cmd::serve(store, &listen, root_key, options, None)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            db,
            listen,
            admin_key,
            root_key,
            records,
            tls,
        } => {
            demo_cmd::run(&db, &listen, admin_key, root_key, records, &tls)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Org { command } => {
            org_cmd::run(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ApiKey { command } => {
            match command {
                KeyCommand::Create { db, org, user } => {
                    server_cmd::api_key_create(&db, &org, &user)?
                }
                KeyCommand::Revoke { db, org, id } => server_cmd::api_key_revoke(&db, &org, &id)?,
                KeyCommand::List { db, org } => server_cmd::api_key_list(&db, &org)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint { db, org, list } => {
            checkpoint_cmd::run(&db, org.as_deref(), list)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Log { command } => match command {
            LogCommand::Verify { db, org } => Ok(if server_cmd::log_verify(&db, org.as_deref())? {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }),
        },
        Command::Audit { command } => match command {
            AuditCommand::Verify { db, org } => Ok(if server_cmd::audit_verify(&db, &org)? {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }),
            AuditCommand::Query {
                db,
                org,
                record,
                user,
                from,
                to,
                after,
                limit,
            } => {
                let query = strata_store::AuditQuery {
                    record,
                    user,
                    from_ms: from,
                    to_ms: to,
                    after_seq: after,
                    limit,
                    ..strata_store::AuditQuery::default()
                };
                server_cmd::audit_query(&db, &org, query)?;
                Ok(ExitCode::SUCCESS)
            }
            AuditCommand::Expire { db, org } => {
                let n = server_cmd::open_existing_store(&db)?
                    .expire_audit(&org, strata_server::now_ms())?;
                println!("expired {n} audit entries of `{org}`");
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Bench { command } => {
            match command {
                BenchCommand::Generate {
                    records,
                    seed,
                    db,
                    org,
                } => bench_cmd::generate_into(&db, &org, records, seed)?,
                BenchCommand::List {
                    records,
                    seed,
                    runs,
                } => bench_cmd::list(records, seed, runs)?,
                BenchCommand::Memory {
                    records,
                    seed,
                    checkpoint,
                    json,
                } => bench_memory::run(records, seed, checkpoint, json)?,
                BenchCommand::Names { keys, runs } => {
                    bench_cmd::names(keys as usize, runs as usize)?
                }
                BenchCommand::Records { records, runs } => {
                    bench_cmd::records(records as usize, runs as usize)?
                }
                BenchCommand::Replay { db, org, runs } => bench_cmd::replay(&db, &org, runs)?,
                BenchCommand::Startup {
                    records,
                    seed,
                    tail,
                    dir,
                } => checkpoint_cmd::bench_startup(records, seed, tail, dir.as_deref())?,
                BenchCommand::Export { records, seed, dir } => {
                    bench_cmd::export(records, seed, &dir)?
                }
                BenchCommand::DryRun {
                    records,
                    seed,
                    runs,
                } => bench_dryrun::run(records, seed, runs)?,
                BenchCommand::Admin {
                    records,
                    seed,
                    runs,
                } => bench_admin::run(records, seed, runs)?,
                BenchCommand::Import { runs } => bench_import::run(runs)?,
                BenchCommand::Crash {
                    cycles,
                    clients,
                    min_ms,
                    max_ms,
                    seed,
                    checkpoint_every,
                    postgres,
                    dir,
                    inject,
                } => bench_crash::run(&bench_crash::CrashOptions {
                    cycles,
                    clients,
                    min_ms,
                    max_ms,
                    seed: seed.unwrap_or_else(bench_crash::time_seed),
                    checkpoint_every,
                    postgres,
                    dir,
                    inject,
                })?,
                BenchCommand::Console {
                    records,
                    seed,
                    runs,
                } => bench_console::run(records, seed, runs)?,
                BenchCommand::Writes {
                    writes,
                    bulk,
                    bulk_clients,
                    postgres,
                    dir,
                    group_commit_max,
                    clients,
                    no_alone,
                    columns,
                    guid_ids,
                } => bench_writes::bench_writes(&bench_writes::WritesOptions {
                    writes,
                    bulk,
                    bulk_clients,
                    postgres: postgres.as_deref(),
                    dir: dir.as_deref(),
                    group_max: group_commit_max,
                    clients: &clients,
                    alone: !no_alone,
                    columns,
                    guid_ids,
                })?,
                BenchCommand::Mixed {
                    seconds,
                    rate,
                    check_rate,
                    records,
                    dir,
                    dry_runs,
                } => bench_writes::bench_mixed(
                    seconds,
                    rate,
                    check_rate,
                    records,
                    dir.as_deref(),
                    dry_runs,
                )?,
                BenchCommand::Soak {
                    minutes,
                    rate,
                    out,
                    dir,
                    only,
                } => bench_soak::run(minutes, rate, &out, dir.as_deref(), only.as_deref())?,
                BenchCommand::Review {
                    records,
                    seed,
                    runs,
                } => review_cmd::bench(records, seed, runs)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::App { command } => app_cmd::app(command),
        Command::Column { command } => app_cmd::column(command),
        Command::WriteLoop { db, org } => {
            org_cmd::write_loop(&db, &org)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Role { command } => {
            role_cmd::role(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command } => {
            role_cmd::user(command)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rules { command } => rules_cmd::run(command),
        Command::Export {
            command: Some(command),
            ..
        } => solution_cmd::export(command).map(|()| ExitCode::SUCCESS),
        Command::Export {
            command: None,
            source,
            records,
            output,
        } => export_cmd::run(&source, records, output.as_deref()).map(|()| ExitCode::SUCCESS),
        Command::Import {
            command: args::ImportCommand::Pack(command),
        } => pack_cmd::run(command),
        Command::Import {
            command: args::ImportCommand::Roles(command),
        } => solution_cmd::import(command).map(|()| ExitCode::SUCCESS),
        Command::Review {
            source,
            format,
            out,
            inactive_days,
        } => {
            review_cmd::run(&source, format, out.as_deref(), inactive_days)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    no_huge_pages();
    let cli = Cli::parse();
    quiet_on_closed_pipe(&cli.command);
    if let Some(file) = cli.audit_key_file {
        server_cmd::set_audit_key_file(file);
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
