//! `strata`: the command line. Parses arguments and calls the library crates.

mod apply_cmd;
mod bench_cmd;
mod demo_cmd;
mod list_cmd;
mod server_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use strata_engine::{Organization, Privilege};
use strata_scenario::{EngineTarget, Target, run_paths};
use strata_store::Store;

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "A self-hosted security engine implementing the Dataverse security model"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The audit chain's key file: needed with a PostgreSQL database (created on first use;
    /// every process using the database needs the same one); for a SQLite file it replaces the
    /// `<file>.audit-key` beside it.
    #[arg(long, global = true, env = "STRATA_AUDIT_KEY_FILE")]
    audit_key_file: Option<PathBuf>,
}

/// Where an organisation comes from: a scenario file's setup, or an organisation of a database.
#[derive(Args, Debug)]
struct Source {
    /// A scenario file whose setup is the organisation (its steps are not run).
    #[arg(long, conflicts_with_all = ["db", "org"])]
    scenario: Option<PathBuf>,
    /// A Strata database: a SQLite file, or a postgres:// URL.
    #[arg(long, visible_alias = "database", requires = "org")]
    db: Option<PathBuf>,
    /// The organisation (in the database, or on the server).
    #[arg(long)]
    org: Option<String>,
    /// A Strata server's URL (http://host:port), with --org and --key.
    #[arg(long, conflicts_with_all = ["scenario", "db"], requires_all = ["org", "key"])]
    server: Option<String>,
    /// The API key to use with --server; also read from STRATA_API_KEY.
    #[arg(long, env = "STRATA_API_KEY", hide_env_values = true)]
    key: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run scenario files (format 1): every *.yaml under the given files and folders.
    Test {
        /// Scenario files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Run against a Strata server (each file in a fresh organisation, removed afterwards)
        /// instead of the engine in this process.
        #[arg(long)]
        server: Option<String>,
        /// The server's root key (with --server); also read from STRATA_ROOT_KEY.
        #[arg(
            long,
            env = "STRATA_ROOT_KEY",
            hide_env_values = true,
            requires = "server"
        )]
        root_key: Option<String>,
    },
    /// Explain a decision: every grant path, or what is missing.
    Explain {
        #[command(flatten)]
        source: Source,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
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
    /// Check a privilege: prints allow or deny and exits 0 or 1.
    Check {
        #[command(flatten)]
        source: Source,
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
    /// Apply operations from a JSON file (one or a list), atomically, to a database file's
    /// organisation or through a server.
    Apply {
        /// The JSON file of operations.
        file: PathBuf,
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
    },
    /// List the records of a table a user may read: filtered, ordered, counted (every record,
    /// or pages of --limit through a server with their cursor).
    List {
        #[command(flatten)]
        source: Source,
        /// The table.
        #[arg(long)]
        table: String,
        /// Whose readable records (through a server, the key's own user by default).
        #[arg(long = "as")]
        user: Option<String>,
        /// A filter, e.g. "city eq 'Oslo' and revenue gt 1000".
        #[arg(long)]
        filter: Option<String>,
        /// An order, e.g. "name desc,city".
        #[arg(long)]
        orderby: Option<String>,
        /// Print the exact count (on stderr) too.
        #[arg(long)]
        count: bool,
        /// At most this many records (through a server: one page, and its cursor on stderr).
        #[arg(long)]
        limit: Option<usize>,
        /// Continue from a cursor a server returned (with --server).
        #[arg(long, requires = "server")]
        cursor: Option<String>,
    },
    /// List the users who hold a privilege on a record.
    WhoHasAccess {
        #[command(flatten)]
        source: Source,
        /// The record id.
        #[arg(long)]
        record: String,
        /// The privilege (default read).
        #[arg(long, default_value = "read")]
        privilege: String,
    },
    /// Build the demo organisation from the seeds (first run) and serve it.
    Demo {
        /// The database: a SQLite file (created if missing), or a postgres:// URL.
        #[arg(long, visible_alias = "database", default_value = "strata-demo.db")]
        db: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Make this a valid API key of the demo's administrator (otherwise one is created).
        #[arg(long, env = "STRATA_ADMIN_KEY", hide_env_values = true)]
        admin_key: Option<String>,
        /// The root key (hosting administration); also read from STRATA_ROOT_KEY.
        #[arg(long, env = "STRATA_ROOT_KEY", hide_env_values = true)]
        root_key: Option<String>,
        /// Records per main table on the first run.
        #[arg(long, default_value_t = strata_demo::DEFAULT_RECORDS_PER_TABLE)]
        records: usize,
    },
    /// Serve the API over a database (a SQLite file, or PostgreSQL).
    Serve {
        /// The database: a SQLite file (created if missing), or a postgres:// URL.
        #[arg(long, visible_alias = "database", default_value = "strata.db")]
        db: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// The root key (hosting administration); also read from STRATA_ROOT_KEY.
        #[arg(long, env = "STRATA_ROOT_KEY", hide_env_values = true)]
        root_key: Option<String>,
        #[command(flatten)]
        oidc: OidcArgs,
        #[command(flatten)]
        nodes: NodeArgs,
    },
    /// Organisations of a database.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// API keys of a database.
    ApiKey {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// The audit trail of a database.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The operation logs of a database.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Benchmarks on a generated organisation.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Test support: writes records forever, printing each acknowledged revision.
    #[command(hide = true)]
    WriteLoop {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        #[arg(long)]
        org: String,
    },
}

/// Several nodes on one database: how a node follows the others.
#[derive(Args, Debug)]
struct NodeArgs {
    /// How long a read carrying `min_revision` waits for this node to apply it before failing
    /// with `revision_not_reached` (503).
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    min_revision_timeout_ms: u64,
    /// /readyz answers 503 when this node has not been caught up with the database for longer.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    max_lag_ms: u64,
    /// How often to look at the database for other nodes' writes when no notification came
    /// (PostgreSQL notifies; SQLite is polled).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    poll_ms: u64,
}

impl NodeArgs {
    fn apply(&self, options: &mut strata_server::ServerOptions) {
        use std::time::Duration;
        options.min_revision_wait = Duration::from_millis(self.min_revision_timeout_ms);
        options.max_lag = Duration::from_millis(self.max_lag_ms);
        options.poll_interval = Duration::from_millis(self.poll_ms.max(10));
    }
}

/// OIDC bearer tokens.
#[derive(Args, Debug)]
struct OidcArgs {
    /// Accept bearer tokens from this issuer (`iss`).
    #[arg(long, requires_all = ["oidc_audience", "oidc_jwks"])]
    oidc_issuer: Option<String>,
    /// The audience (`aud`) tokens must carry.
    #[arg(long)]
    oidc_audience: Option<String>,
    /// The issuer's signing keys: a JWKS file, or an http(s) URL.
    #[arg(long)]
    oidc_jwks: Option<String>,
    /// The organisation every token of this issuer belongs to (otherwise each token names its
    /// own in the `strata_organization` claim).
    #[arg(long, value_name = "ORG")]
    oidc_organization: Option<String>,
    /// Map the token's `sub` to the user of that name, instead of its `oid` to the user whose
    /// `azureactivedirectoryobjectid` holds it.
    #[arg(long)]
    oidc_subject_is_user_name: bool,
}

impl OidcArgs {
    fn options(&self) -> strata_server::ServerOptions {
        let oidc = match (&self.oidc_issuer, &self.oidc_audience, &self.oidc_jwks) {
            (Some(issuer), Some(audience), Some(jwks)) => Some(strata_server::oidc::OidcConfig {
                issuer: issuer.clone(),
                audience: audience.clone(),
                jwks: if jwks.starts_with("http://") || jwks.starts_with("https://") {
                    strata_server::oidc::JwksSource::Url(jwks.clone())
                } else {
                    strata_server::oidc::JwksSource::File(PathBuf::from(jwks))
                },
                organization: self.oidc_organization.clone(),
                subject_is_user_name: self.oidc_subject_is_user_name,
            }),
            _ => None,
        };
        strata_server::ServerOptions {
            oidc,
            ..strata_server::ServerOptions::default()
        }
    }
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Store a generated organisation (deterministic for a seed) in a database.
    Generate {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, visible_alias = "database", default_value = "strata-bench.db")]
        db: PathBuf,
        #[arg(long, default_value = "bench")]
        org: String,
    },
    /// Write the generated organisation's accounts, grants, units and shares as CSV files (for
    /// the PostgreSQL row-level security comparison, bench/rls.sh); prints each reader's count.
    Export {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Times the replay of an organisation's log from a SQLite file: the read without and with
    /// verification (MACs, gaps, sealed head), and the apply; prints a table.
    Replay {
        #[arg(long, visible_alias = "database", default_value = "strata-bench.db")]
        db: PathBuf,
        #[arg(long, default_value = "bench")]
        org: String,
        /// Timed runs per figure (the median is shown).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Lists per kind of reader (first page, 100th page, count, filtered and ordered) on a
    /// generated organisation in memory; prints a table.
    List {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Timed runs per figure.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
}

#[derive(Subcommand, Debug)]
enum OrgCommand {
    /// Create an organisation, optionally set up from a scenario file.
    Create {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        #[arg(long)]
        org: String,
        /// A scenario file whose setup is loaded into the new organisation.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// List the organisations and their revisions.
    List {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
    },
    /// Delete an organisation with its log, audit and keys.
    Delete {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        #[arg(long)]
        org: String,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Create an API key for a user; prints the key (shown once).
    Create {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        #[arg(long)]
        org: String,
        #[arg(long)]
        user: String,
    },
    /// Revoke an API key by its id.
    Revoke {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        #[arg(long)]
        org: String,
        #[arg(long)]
        id: String,
    },
    /// List API keys (ids and users, never the keys).
    List {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        #[arg(long)]
        org: String,
    },
}

#[derive(Subcommand, Debug)]
enum LogCommand {
    /// Verify the operation log's chain (MACs, no gap, sealed head), of one organisation or
    /// of every one: exit status 0 when intact, 1 when tampered with.
    Verify {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        /// Only this organisation (default: every one).
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Verify the audit hash chain and the operation log's chain: exit status 0 when both are
    /// intact, 1 when either was tampered with.
    Verify {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        #[arg(long)]
        org: String,
    },
    /// Audit entries as JSON lines, by record, user and time range.
    Query {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        #[arg(long)]
        org: String,
        #[arg(long)]
        record: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// From this time, in milliseconds since the epoch.
        #[arg(long)]
        from: Option<i64>,
        /// Before this time, in milliseconds since the epoch.
        #[arg(long)]
        to: Option<i64>,
        /// After this sequence number (the previous page's last).
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Delete the entries whose retention has run out.
    Expire {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        #[arg(long)]
        org: String,
    },
}

fn load_scenario(path: &Path) -> anyhow::Result<strata_scenario::Scenario> {
    let source =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    strata_scenario::load_str(&source)
        .map_err(|e| anyhow!("{}:{}: {}", path.display(), e.line, e.message))
}

fn organisation(source: &Source) -> anyhow::Result<Organization> {
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
    if let (Some(server), Some(org), Some(key)) = (&source.server, &source.org, &source.key) {
        let body =
            serde_json::json!({ "user": user, "privilege": privilege_name, "record": record });
        return remote(
            server,
            key,
            "POST",
            &format!("/api/v1/orgs/{}/explain", encode(org)),
            Some(body),
        );
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

fn encode(text: &str) -> String {
    strata_scenario::http_client::encode_component(text)
}

/// One request to a server; a non-2xx answer is an error carrying the server's message.
fn remote(
    server: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let client =
        strata_scenario::http_client::HttpClient::new(server, std::time::Duration::from_secs(60))
            .map_err(|e| anyhow!(e))?;
    let auth = format!("Bearer {key}");
    let bytes = body.map(|b| b.to_string().into_bytes());
    let response = client
        .request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            bytes.as_deref(),
        )
        .map_err(|e| anyhow!(e))?;
    let value: serde_json::Value =
        serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
    if !(200..300).contains(&response.status) {
        bail!(
            "HTTP {}: {}",
            response.status,
            value["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(value)
}

fn privilege(name: &str) -> anyhow::Result<Privilege> {
    Privilege::from_name(name).ok_or_else(|| {
        anyhow!(
            "unknown privilege `{name}` (create read write delete append append_to assign share)"
        )
    })
}

fn create_org(db: &Path, org: &str, scenario: Option<&Path>) -> anyhow::Result<()> {
    let store = server_cmd::open_store(db)?;
    let ops: Vec<strata_ops::Operation> = match scenario {
        None => Vec::new(),
        Some(path) => strata_scenario::engine_target::setup_operations(&load_scenario(path)?)
            .into_iter()
            .map(|(_, op)| op)
            .collect(),
    };
    // Through the application layer: the creation and the operations with their audit
    // entries, by the system.
    let mut loader = strata_app::Loader::new(store.as_ref(), org, strata_app::Actor::System)
        .map_err(|e| anyhow!(e))?;
    let revision = loader
        .append(&ops, &mut |_| {})
        .map_err(|e| anyhow!("operation: {e}"))?;
    println!("created organization `{org}` at revision {revision}");
    Ok(())
}

fn write_loop(db: &Path, org: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let store = server_cmd::open_store(db)?;
    if store.revision(org).is_err() {
        store.create_organization(org, 0)?;
        let setup: Vec<strata_ops::Operation> = serde_json::from_value(serde_json::json!([
            {"op": "add_business_unit", "name": "Root"},
            {"op": "add_table", "name": "note"},
            {"op": "add_role", "name": "Writer", "privileges": {"note": {"create": "user", "read": "user"}}},
            {"op": "add_user", "name": "writer"},
            {"op": "assign_role", "principal": "writer", "role": "Writer"},
            {"op": "set_audit", "enabled": true, "tables": ["note"]}
        ]))?;
        store.write(org, &mut |tx| {
            for op in &setup {
                tx.append_operation(op, 0)?;
            }
            Ok(())
        })?;
    }
    let (mut state, _) = strata_store::load_organization(store.as_ref(), org)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0u64.. {
        let key = format!("n{}-{i}", std::process::id());
        let op: strata_ops::Operation = serde_json::from_value(serde_json::json!(
            {"op": "create", "as": "writer", "table": "note", "id": key, "fields": {"i": i}}
        ))?;
        strata_ops::apply(&mut state, &op).map_err(|e| anyhow!(e.message))?;
        let audit = strata_store::AuditRecord {
            action: "create".into(),
            table: Some("note".into()),
            record: Some(key.clone()),
            user: Some("writer".into()),
            impersonator: None,
            detail: serde_json::json!({ "i": i }),
        };
        let revision = store.write(org, &mut |tx| {
            tx.append_operation(&op, 1)?;
            tx.append_audit(&audit, 1, -1)?;
            Ok(())
        })?;
        writeln!(out, "ack {revision} {key}")?;
        out.flush()?;
    }
    Ok(())
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Test {
            paths,
            server,
            root_key,
        } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let summary = match server {
                None => run_paths(
                    &paths,
                    &mut || Box::new(EngineTarget::new()) as Box<dyn Target>,
                    &mut out,
                ),
                Some(url) => {
                    let key = root_key.ok_or_else(|| {
                        anyhow!(
                            "--server needs the server's root key (--root-key or STRATA_ROOT_KEY)"
                        )
                    })?;
                    strata_scenario::http_client::HttpClient::new(
                        &url,
                        std::time::Duration::from_secs(30),
                    )
                    .map_err(|e| anyhow!("--server {url}: {e}"))?;
                    run_paths(
                        &paths,
                        &mut || {
                            Box::new(strata_scenario::HttpTarget::new(&url, &key))
                                as Box<dyn Target>
                        },
                        &mut out,
                    )
                }
            };
            Ok(ExitCode::from(
                u8::try_from(summary.exit_code()).unwrap_or(2),
            ))
        }
        Command::Explain {
            source,
            json,
            user,
            privilege: p,
            record,
        } => {
            let decision = decide(&source, &user, &p, &record)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&decision)?);
            } else {
                println!("{}", decision["explanation"].as_str().unwrap_or_default());
            }
            Ok(if decision["allowed"] == true {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Check {
            source,
            user,
            privilege: p,
            record,
        } => {
            let allowed = decide(&source, &user, &p, &record)?["allowed"] == true;
            println!("{}", if allowed { "allow" } else { "deny" });
            Ok(if allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Apply {
            file,
            org,
            db,
            user,
            server,
            key,
        } => {
            match (db, server, key) {
                (Some(db), None, _) => apply_cmd::local(&db, &org, &file, user)?,
                (None, Some(server), Some(key)) => apply_cmd::remote(&server, &key, &org, &file)?,
                _ => bail!("give --db FILE, or --server URL with --key KEY"),
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
            if let (Some(server), Some(org), Some(key)) = (&source.server, &source.org, &source.key)
            {
                list_cmd::remote(server, key, org, &args, cursor.as_deref())?;
            } else {
                list_cmd::local(&organisation(&source)?, &args)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::WhoHasAccess {
            source,
            record,
            privilege: p,
        } => {
            if let (Some(server), Some(org), Some(key)) = (&source.server, &source.org, &source.key)
            {
                let path = format!(
                    "/api/v1/orgs/{}/records/{}/who-has-access?privilege={}",
                    encode(org),
                    encode(&record),
                    encode(&p)
                );
                let answer = remote(server, key, "GET", &path, None)?;
                for u in answer["users"].as_array().into_iter().flatten() {
                    println!("{}", u.as_str().unwrap_or_default());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let org = organisation(&source)?;
            let p = privilege(&p)?;
            let r = org
                .record_id(&record)
                .ok_or_else(|| anyhow!("unknown record `{record}`"))?;
            for u in org.who_has_access(r, p) {
                println!("{}", org.user(u).name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            db,
            listen,
            root_key,
            oidc,
            nodes,
        } => {
            server_cmd::init_logging();
            let store = server_cmd::open_store(&db)?;
            let mut options = oidc.options();
            nodes.apply(&mut options);
            server_cmd::serve(store, &listen, root_key, options, None)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            db,
            listen,
            admin_key,
            root_key,
            records,
        } => {
            demo_cmd::run(&db, &listen, admin_key, root_key, records)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Org { command } => {
            match command {
                OrgCommand::Create { db, org, scenario } => {
                    create_org(&db, &org, scenario.as_deref())?
                }
                OrgCommand::List { db } => {
                    for (name, revision) in server_cmd::open_existing_store(&db)?.organizations()? {
                        println!("{name}\t{revision}");
                    }
                }
                OrgCommand::Delete { db, org } => {
                    server_cmd::open_existing_store(&db)?.delete_organization(&org)?;
                    println!("deleted organization `{org}`");
                }
            }
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
                BenchCommand::Replay { db, org, runs } => bench_cmd::replay(&db, &org, runs)?,
                BenchCommand::Export { records, seed, dir } => {
                    bench_cmd::export(records, seed, &dir)?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::WriteLoop { db, org } => {
            write_loop(&db, &org)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
