//! The command line: every command, subcommand and flag (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "A self-hosted security engine implementing the Dataverse security model"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// The audit chain's key file: needed with a PostgreSQL database (created on first use;
    /// every process using the database needs the same one); for a SQLite file it replaces the
    /// `<file>.audit-key` beside it.
    #[arg(long, global = true, env = "STRATA_AUDIT_KEY_FILE")]
    pub(crate) audit_key_file: Option<PathBuf>,
}

/// Where an organisation comes from: a scenario file's setup, or an organisation of a database.
#[derive(Args, Debug)]
pub(crate) struct Source {
    /// A scenario file whose setup is the organisation (its steps are not run).
    #[arg(long, conflicts_with_all = ["db", "org"])]
    pub(crate) scenario: Option<PathBuf>,
    /// A Strata database: a SQLite file, or a postgres:// URL.
    #[arg(long, visible_alias = "database", requires = "org")]
    pub(crate) db: Option<PathBuf>,
    /// The organisation (in the database, or on the server).
    #[arg(long)]
    pub(crate) org: Option<String>,
    /// A Strata server's URL (http://host:port), with --org and --key.
    #[arg(long, conflicts_with_all = ["scenario", "db"], requires_all = ["org", "key"])]
    pub(crate) server: Option<String>,
    /// The API key to use with --server; also read from STRATA_API_KEY.
    #[arg(long, env = "STRATA_API_KEY", hide_env_values = true)]
    pub(crate) key: Option<String>,
}

/// Where a write goes: a database file's organisation (as `--as USER` or the system) or a
/// server's (as the key's user).
#[derive(Args, Debug)]
pub(crate) struct WriteTarget {
    /// The organisation.
    #[arg(long)]
    pub(crate) org: String,
    /// A Strata database: a SQLite file, or a postgres:// URL.
    #[arg(long, visible_alias = "database", conflicts_with = "server")]
    pub(crate) db: Option<PathBuf>,
    /// Act as this user (local only; default: the system).
    #[arg(long = "as", requires = "db")]
    pub(crate) user: Option<String>,
    /// A Strata server's URL (http://host:port).
    #[arg(long, requires = "key")]
    pub(crate) server: Option<String>,
    /// The API key to use with --server; also read from STRATA_API_KEY.
    #[arg(long, env = "STRATA_API_KEY", hide_env_values = true)]
    pub(crate) key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
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
        #[command(flatten)]
        target: WriteTarget,
        /// Try the batch, write nothing: print what it would change and the access difference.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: print the answer as JSON.
        #[arg(long, requires = "dry_run")]
        json: bool,
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
    /// Licences (seed 003): the catalogue, the report, one user, a role against a licence.
    Licence {
        #[command(subcommand)]
        command: crate::licence_cmd::LicenceCommand,
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
        #[command(flatten)]
        tls: TlsArgs,
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
        tls: TlsArgs,
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
    /// Take a checkpoint of organisations on a database now: each organisation's state at its
    /// revision, so that a server starting loads it and replays only the log after it
    /// (docs/storage.md, "Checkpoints"). `strata serve` also takes them every
    /// --checkpoint-every operations.
    Checkpoint {
        #[arg(long, visible_alias = "database")]
        db: PathBuf,
        /// Only this organisation (default: every one).
        #[arg(long)]
        org: Option<String>,
        /// List the stored checkpoints (newest first) instead of taking one.
        #[arg(long)]
        list: bool,
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
    /// Apps: the list, one app (roles, needs, who can open it), why a user cannot open one,
    /// and the smallest set of roles that would let them (D51).
    App {
        #[command(subcommand)]
        command: crate::app_cmd::AppCommand,
    },
    /// Columns: who can read or update a secured column, and through what (D53).
    Column {
        #[command(subcommand)]
        command: crate::app_cmd::ColumnCommand,
    },
    /// Roles as things to manage: show, holders, assigners, compare; copy, rename, delete,
    /// deprecate, replace, set one cell.
    Role {
        #[command(subcommand)]
        command: crate::role_cmd::RoleCommand,
    },
    /// Users: compare two users' effective permissions.
    User {
        #[command(subcommand)]
        command: crate::role_cmd::UserCommand,
    },
    /// Role rules: requires, excludes, direct only (list, add, remove, check for violations).
    Rules {
        #[command(subcommand)]
        command: crate::rules_cmd::RulesCommand,
    },
    /// Write the whole model of an organisation as a scenario file (`org create --scenario`
    /// rebuilds it; docs/export.md); `export roles` writes Dataverse solution XML.
    #[command(args_conflicts_with_subcommands = true)]
    Export {
        #[command(subcommand)]
        command: Option<crate::solution_cmd::ExportCommand>,
        #[command(flatten)]
        source: Source,
        /// Records, shares, column shares and record access team members too.
        #[arg(long)]
        records: bool,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Import into an organisation: `import pack` (role packs, docs/export.md), `import roles
    /// FILE…` (Dataverse solution roles, docs/solutions.md).
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// The access review (seed 002): users and roles, the role grid, effective privileges,
    /// column profiles, shares, administrators, organisation-wide delete, users without
    /// roles, inactive users, deprecated roles, rule violations, licences; as a workbook or
    /// CSV files.
    Review {
        #[command(flatten)]
        source: Source,
        /// xlsx: a sheet per view; csv: a file per view (a folder, or a zip when --out ends
        /// in .zip).
        #[arg(long, value_enum, default_value = "xlsx")]
        format: crate::review_cmd::FileFormat,
        /// Where to write (default: strata-review-ORG-DATE.xlsx, or that folder for csv).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Users not seen (user-access audit) for this many days are listed as inactive.
        #[arg(long, default_value_t = strata_engine::DEFAULT_INACTIVE_DAYS)]
        inactive_days: u32,
    },
}

/// HTTPS: a certificate and key, or a self-signed certificate for development.
#[derive(Args, Debug)]
pub(crate) struct TlsArgs {
    /// Serve HTTPS with this PEM certificate chain (the server's certificate first); needs
    /// --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert: PKCS#8, PKCS#1 (RSA) or SEC1 (EC); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate for localhost, 127.0.0.1, ::1 and the listen
    /// host (development): strata-tls-cert.pem and strata-tls-key.pem beside the database,
    /// made on first use and reused while valid.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub(crate) tls_self_signed: bool,
}

/// Several nodes on one database: how a node follows the others.
#[derive(Args, Debug)]
pub(crate) struct NodeArgs {
    /// How long a read carrying `min_revision` waits for this node to apply it before failing
    /// with `revision_not_reached` (503).
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub(crate) min_revision_timeout_ms: u64,
    /// /readyz answers 503 when this node has not been caught up with the database for longer.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub(crate) max_lag_ms: u64,
    /// How often to look at the database for other nodes' writes when no notification came
    /// (PostgreSQL notifies; SQLite is polled).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub(crate) poll_ms: u64,
    /// Behind a reverse proxy: build the Web API's absolute links (`@odata.nextLink`,
    /// `OData-EntityId`) from `X-Forwarded-Host` and `X-Forwarded-Proto`. Off by default: a
    /// client could otherwise make the server hand out links to another host.
    #[arg(long)]
    pub(crate) trust_forwarded_headers: bool,
    /// Take a checkpoint of an organisation (its state, so that the next start loads it and
    /// replays only the log after it) once its log has grown by this many operations since its
    /// newest one; 0 = never.
    #[arg(long, default_value_t = strata_app::checkpoint::DEFAULT_CHECKPOINT_EVERY, value_name = "OPERATIONS")]
    pub(crate) checkpoint_every: u64,
    /// Group commit: at most this many operations committed together in one transaction (one
    /// fsync) per organisation; 1 commits each write on its own.
    #[arg(long, default_value_t = strata_app::DEFAULT_GROUP_OPERATIONS, value_name = "OPERATIONS")]
    pub(crate) group_commit_max: usize,
    /// Group commit pipelined: the next group is tried while the group before it commits
    /// (D130; off by default until measured on a quiet machine, D131).
    #[arg(long, env = "STRATA_GROUP_COMMIT_PIPELINE")]
    pub(crate) group_commit_pipeline: bool,
    /// Group commit streamed: a group of at least this many operations is tried on a thread of
    /// its own while its rows are written (D143); 0 never streams.
    #[arg(long, env = "STRATA_GROUP_COMMIT_STREAM", default_value_t = strata_app::DEFAULT_STREAM_OPERATIONS, value_name = "OPERATIONS")]
    pub(crate) group_commit_stream: usize,
    /// A dry run holds the write lock at least this long before it lets a waiting read in
    /// (D54); a large value holds it for the whole first half of the dry run, as before.
    #[arg(
        long,
        env = "STRATA_DRY_RUN_SLICE_MS",
        default_value_t = 2,
        value_name = "MS"
    )]
    pub(crate) dry_run_slice_ms: u64,
    /// At most this many requests handled at once; one more is answered 503 `server_busy` with
    /// `Retry-After` (health, readiness and metrics are never refused).
    #[arg(long, default_value_t = 1024, value_name = "REQUESTS")]
    pub(crate) max_in_flight: usize,
    /// Requests a second each credential (API key, token, console session) may make on
    /// average; over it, 429 `rate_limited` with `Retry-After`. 0 = no limit.
    #[arg(long, default_value_t = 0.0, value_name = "PER_SECOND")]
    pub(crate) key_rate: f64,
    /// Requests a credential may make at once before `--key-rate` applies.
    #[arg(long, default_value_t = 100.0, value_name = "REQUESTS")]
    pub(crate) key_burst: f64,
    /// Where the other nodes reach this one (`http://host:port`, or `https://host:port` when it
    /// serves TLS): this node then takes the write lease of each organisation it writes, and
    /// the other nodes forward that organisation's writes to it (PostgreSQL; D150). Without it,
    /// the node never leads, and forwards writes to a node that does.
    #[arg(long, env = "STRATA_ADVERTISE_URL", value_name = "URL")]
    pub(crate) advertise_url: Option<String>,
    /// How long a write lease runs unless its node renews it (every third of it, while it
    /// writes): how long the other nodes may keep forwarding to a node that stopped without
    /// giving its leases up.
    #[arg(long, default_value_t = 3000, value_name = "MS")]
    pub(crate) write_lease_ms: u64,
    /// A PEM file of the authorities that sign the other nodes' certificates (their
    /// `https://` advertise URLs are checked against it, this node's own --tls-cert chain and
    /// the public roots).
    #[arg(long, env = "STRATA_PEER_CA_FILE", value_name = "FILE")]
    pub(crate) peer_ca_file: Option<PathBuf>,
}

impl NodeArgs {
    pub(crate) fn apply(&self, options: &mut strata_server::ServerOptions) {
        use std::time::Duration;
        options.min_revision_wait = Duration::from_millis(self.min_revision_timeout_ms);
        options.max_lag = Duration::from_millis(self.max_lag_ms);
        options.poll_interval = Duration::from_millis(self.poll_ms.max(10));
        options.trust_forwarded_headers = self.trust_forwarded_headers;
        options.checkpoint_every = self.checkpoint_every;
        strata_app::set_group_operations(self.group_commit_max);
        strata_app::set_pipelined(self.group_commit_pipeline);
        strata_app::set_dry_run_slice(Duration::from_millis(self.dry_run_slice_ms));
        strata_app::set_stream_operations(match self.group_commit_stream {
            0 => usize::MAX,
            least => least,
        });
        options.max_in_flight = self.max_in_flight;
        options.key_rate = self.key_rate;
        options.key_burst = self.key_burst;
        options.advertise_url.clone_from(&self.advertise_url);
        options.write_lease = Duration::from_millis(self.write_lease_ms.max(30));
        options.peer_ca_file.clone_from(&self.peer_ca_file);
    }
}

/// OIDC bearer tokens.
#[derive(Args, Debug)]
pub(crate) struct OidcArgs {
    /// Accept bearer tokens from this issuer (`iss`).
    #[arg(long, requires_all = ["oidc_audience", "oidc_jwks"])]
    pub(crate) oidc_issuer: Option<String>,
    /// The audience (`aud`) tokens must carry.
    #[arg(long)]
    pub(crate) oidc_audience: Option<String>,
    /// The issuer's signing keys: a JWKS file, or an http(s) URL.
    #[arg(long)]
    pub(crate) oidc_jwks: Option<String>,
    /// The organisation every token of this issuer belongs to (otherwise each token names its
    /// own in the `strata_organization` claim).
    #[arg(long, value_name = "ORG")]
    pub(crate) oidc_organization: Option<String>,
    /// Map the token's `sub` to the user of that name, instead of its `oid` to the user whose
    /// `azureactivedirectoryobjectid` holds it.
    #[arg(long)]
    pub(crate) oidc_subject_is_user_name: bool,
    /// Console sign-in (authorization code with PKCE): the issuer's authorization endpoint.
    #[arg(long, requires_all = ["oidc_issuer", "oidc_token_endpoint", "oidc_client_id"], value_name = "URL")]
    pub(crate) oidc_authorization_endpoint: Option<String>,
    /// Console sign-in: the issuer's token endpoint.
    #[arg(long, requires = "oidc_authorization_endpoint", value_name = "URL")]
    pub(crate) oidc_token_endpoint: Option<String>,
    /// Console sign-in: this server's client id at the issuer (the id token's audience).
    #[arg(long, requires = "oidc_authorization_endpoint", value_name = "ID")]
    pub(crate) oidc_client_id: Option<String>,
    /// Console sign-in: the client secret of a confidential client.
    #[arg(
        long,
        requires = "oidc_authorization_endpoint",
        env = "STRATA_OIDC_CLIENT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub(crate) oidc_client_secret: Option<String>,
    /// Console sign-in: the callback URL registered at the issuer (`https://HOST/console/oidc/callback`);
    /// by default made from the request's host.
    #[arg(long, requires = "oidc_authorization_endpoint", value_name = "URL")]
    pub(crate) oidc_redirect_uri: Option<String>,
}

impl OidcArgs {
    pub(crate) fn options(&self) -> strata_server::ServerOptions {
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
                sign_in: match (
                    &self.oidc_authorization_endpoint,
                    &self.oidc_token_endpoint,
                    &self.oidc_client_id,
                ) {
                    (Some(authorization), Some(token), Some(client)) => {
                        Some(strata_server::oidc::OidcSignIn {
                            authorization_endpoint: authorization.clone(),
                            token_endpoint: token.clone(),
                            client_id: client.clone(),
                            client_secret: self.oidc_client_secret.clone(),
                            redirect_uri: self.oidc_redirect_uri.clone(),
                        })
                    }
                    _ => None,
                },
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
pub(crate) enum BenchCommand {
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
    /// Start-up time: a generated organisation in a fresh SQLite file, loaded from its whole
    /// log and from a checkpoint plus the log after it, in the same run; prints a table and
    /// checks that both give the same organisation.
    Startup {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Operations in the log after the checkpoint.
        #[arg(long, default_value_t = 1_000)]
        tail: usize,
        /// Where to make the scratch database (default: the system's temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Where the generated organisation's memory goes: bytes per structure (records, strings,
    /// column values, record index, derived grants, model), per record and as a share, beside
    /// the resident memory and its peak; `--checkpoint` adds a load from checkpoint bytes.
    Memory {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also encode a checkpoint, drop the organisation and measure the load from it.
        #[arg(long)]
        checkpoint: bool,
        /// JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// The map from record keys to records (D153): GUID-like keys named one by one, as
    /// creates name them — the time per name, the slowest single name (a growth of the
    /// table, which a create pays holding the write lock) and the time per lookup; prints a
    /// table.
    Names {
        #[arg(long, default_value_t = 7_400_000, value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
        keys: u64,
        /// Runs (each a fresh map).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        runs: u64,
    },
    /// The records by id: records appended one by one, as creates append them, kept as one
    /// vector grown by an eighth (the design before) and in chunks of 65,536 (today's), side
    /// by side — the time per append, the slowest single append (a growth, which a create
    /// pays holding the write lock) and the time per read by id; prints a table.
    Records {
        #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
        records: u64,
        /// Runs (each design once per run).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=100))]
        runs: u64,
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
    /// Dry runs (role edits, an assignment, team membership, a share, a unit move) with their
    /// access difference on a generated organisation in memory; prints a table.
    DryRun {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Timed runs per figure.
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// The administrator's answers (smallest role set among 100 roles, the licence report,
    /// a user's cheapest licence, who may open an app, a dry run of a role edit) on a
    /// generated organisation in memory; prints a table.
    Admin {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Timed runs per figure.
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// Importing Dataverse solution roles: the 30 KB all-Global role and a generated 600 KB
    /// customizations.xml, read, planned and applied in memory; prints a table.
    Import {
        /// Timed runs per input.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Writes over HTTP to `strata serve` processes: record creates and shares, one operation
    /// a request, from 16 and 64 connections, with group commit and with each write committed
    /// on its own, on SQLite (and PostgreSQL, one and two nodes, with `--postgres`); then bulk
    /// loads. Prints a table.
    Writes {
        /// Single-operation writes per figure (a fifth of it with each write alone; 0: none, the bulk figure only).
        #[arg(long, default_value_t = 20_000)]
        writes: usize,
        /// Records created in batches of 1,000 for each bulk figure: native batches of operations, then
        /// the Web API's `CreateMultiple` as an ordinary user (0: none).
        #[arg(long, default_value_t = 200_000)]
        bulk: usize,
        /// Clients sending the bulk batches at once.
        #[arg(long, default_value_t = 4)]
        bulk_clients: usize,
        /// A PostgreSQL server (a scratch database is made on it and dropped).
        #[arg(long)]
        postgres: Option<String>,
        /// Where to make the SQLite files (default: the system's temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The servers' `--group-commit-max` for the group-commit rows and the bulk loads
        /// (default: the server's own default).
        #[arg(long)]
        group_commit_max: Option<usize>,
        /// The client counts measured, each a row.
        #[arg(long, value_delimiter = ',', default_value = "16,64")]
        clients: Vec<usize>,
        /// Leave out the rows with each write committed on its own (the design before group
        /// commit), for profiles and quick comparisons.
        #[arg(long)]
        no_alone: bool,
        /// Declared columns of the account table besides `name` and `region`, each set by every
        /// create (a list's column index each): a wider record, as business tables have.
        #[arg(long, default_value_t = 0, value_name = "COLUMNS")]
        columns: usize,
        /// The native bulk rows' records take random GUIDs as ids, as clients that choose their
        /// own give them, instead of `bulk-0`, `bulk-1` … (ids that sort together).
        #[arg(long)]
        guid_ids: bool,
    },
    /// Check latency over HTTP, idle and while writers keep a paced rate of writes on the same
    /// organisation (SQLite, group commit). Prints a table.
    Mixed {
        /// Seconds per condition.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Writes per second while checking.
        #[arg(long, default_value_t = 5_000)]
        rate: usize,
        /// Checks per second in all (0: each connection as fast as it is answered, which
        /// measures the machine's saturation rather than waiting).
        #[arg(long, default_value_t = 2_000)]
        check_rate: usize,
        /// Records in the organisation before the checks.
        #[arg(long, default_value_t = 10_000)]
        records: usize,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Also check while dry runs of a unit move (every user's access compared) repeat
        /// back to back; adds 10,000 users holding the role first.
        #[arg(long)]
        dry_runs: bool,
    },
    /// A soak: checks, lists, record reads, writes, Web API calls and console pages at a fixed
    /// rate (by default half the capacity measured first) against a `strata serve` process;
    /// memory, open files, p50/p99 and errors sampled every 10 s, written as CSV and an SVG
    /// plot, and the run judged (no errors, memory flat, p99 stable).
    Soak {
        #[arg(long, default_value_t = 30.0)]
        minutes: f64,
        /// Requests a second (default: half the measured capacity).
        #[arg(long)]
        rate: Option<f64>,
        /// Where to write soak.csv and soak.svg.
        #[arg(long, default_value = "soak")]
        out: PathBuf,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Every request of one kind instead of the mix (check, list, read, write, webapi,
        /// console): which kind a change of memory follows.
        #[arg(long)]
        only: Option<String>,
    },
    /// The crash checker (RELIABILITY.md): a `strata serve` process on a fresh database takes a
    /// mixed stream of writes from several clients and is killed with SIGKILL at a random
    /// moment, again and again; after each restart, every acknowledged write must be in the
    /// log at its revision, every write in flight wholly there or wholly absent, the log and
    /// audit chains must verify and the served digest equal a fresh replay's. Prints a table;
    /// fails when anything is lost, half-applied or does not verify.
    Crash {
        /// Kill and restart cycles.
        #[arg(long, default_value_t = 100)]
        cycles: usize,
        /// Concurrent writing clients.
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// The earliest kill after the clients start (ms).
        #[arg(long, default_value_t = 50)]
        min_ms: u64,
        /// The latest kill after the clients start (ms).
        #[arg(long, default_value_t = 1500)]
        max_ms: u64,
        /// The seed of the writes and kill moments (default: the time; printed).
        #[arg(long)]
        seed: Option<u64>,
        /// The server's `--checkpoint-every`, so that restarts load checkpoints too.
        #[arg(long, default_value_t = 500, value_name = "OPERATIONS")]
        checkpoint_every: u64,
        /// A PostgreSQL server URL: the run uses a scratch database made on it (and dropped
        /// after). Without it, a SQLite file in a temporary folder.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
        /// Where to keep the SQLite file and the audit key (default: a temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The checker's self-test (`lost` or `half`): a pretended fault its checks must find.
        #[arg(long, hide = true)]
        inject: Option<crate::bench_crash::Inject>,
    },
    /// The admin console's pages served in process: the demo organisation (or the generated
    /// one with `--records`), every screen requested `--runs` times as a System Administrator;
    /// prints each page's server time at p50 and p99.
    Console {
        /// Records of the generated organisation (without it, the demo organisation).
        #[arg(long)]
        records: Option<usize>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Requests per page.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// The access review of a generated organisation in memory: the views, the XLSX workbook
    /// and the zipped CSV files; prints times and sizes.
    Review {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Timed runs per figure.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum OrgCommand {
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
pub(crate) enum KeyCommand {
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
pub(crate) enum LogCommand {
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
pub(crate) enum AuditCommand {
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

/// `strata import …`: packs and Dataverse solution roles.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum ImportCommand {
    #[command(flatten)]
    Pack(crate::pack_cmd::ImportCommand),
    #[command(flatten)]
    Roles(crate::solution_cmd::ImportCommand),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use clap::Parser;

    use super::{Cli, Command};

    fn serve(args: &[&str]) -> Result<Option<strata_server::oidc::OidcConfig>, clap::Error> {
        let mut all = vec!["strata", "serve"];
        all.extend_from_slice(args);
        match Cli::try_parse_from(all)?.command {
            Command::Serve { oidc, .. } => Ok(oidc.options().oidc),
            other => panic!("not serve: {other:?}"),
        }
    }

    /// The console's OIDC sign-in flags build its configuration; they need the bearer token
    /// flags and each other.
    #[test]
    fn oidc_sign_in_flags() {
        let base = [
            "--oidc-issuer",
            "https://login.example/t",
            "--oidc-audience",
            "api",
            "--oidc-jwks",
            "https://login.example/keys",
        ];
        let none = serve(&base).unwrap().unwrap();
        assert!(none.sign_in.is_none());
        let mut full = base.to_vec();
        full.extend([
            "--oidc-authorization-endpoint",
            "https://login.example/authorize",
            "--oidc-token-endpoint",
            "https://login.example/token",
            "--oidc-client-id",
            "console",
            "--oidc-client-secret",
            "s",
            "--oidc-redirect-uri",
            "https://strata.example/console/oidc/callback",
        ]);
        let config = serve(&full).unwrap().unwrap();
        let sign_in = config.sign_in.unwrap();
        assert_eq!(
            (
                sign_in.authorization_endpoint.as_str(),
                sign_in.token_endpoint.as_str(),
                sign_in.client_id.as_str(),
                sign_in.client_secret.as_deref(),
                sign_in.redirect_uri.as_deref(),
            ),
            (
                "https://login.example/authorize",
                "https://login.example/token",
                "console",
                Some("s"),
                Some("https://strata.example/console/oidc/callback"),
            )
        );
        // An authorization endpoint without the token endpoint and client id, or without the
        // issuer, is refused.
        let mut partial = base.to_vec();
        partial.extend([
            "--oidc-authorization-endpoint",
            "https://login.example/authorize",
        ]);
        assert!(serve(&partial).is_err());
        assert!(
            serve(&[
                "--oidc-authorization-endpoint",
                "a",
                "--oidc-token-endpoint",
                "b",
                "--oidc-client-id",
                "c"
            ])
            .is_err()
        );
    }
}
