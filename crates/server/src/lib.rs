//! The Strata server: the native JSON API (`/api/v1`), the OpenID AuthZEN 1.0 endpoints
//! (`/access/v1`), health, metrics and the OpenAPI document, over one store holding any number
//! of isolated organisations.
//!
//! Architecture invariant: this crate is a shell. Decisions come from `strata-engine`, changes
//! are `strata-ops` operations, persistence is `strata-store`, and the organisations, the write
//! path, audit and following are `strata-app`'s: the server resolves who acts and answers HTTP.

mod admin_apps;
mod admin_export;
mod admin_import;
mod admin_licences;
mod admin_review;
mod admin_roles;
mod admin_rules;
mod api;
mod audit_pages;
pub mod auth;
mod console;
/// List cursors (public for the fuzzer and tests: `Cursors` with a key of the caller's).
#[doc(hidden)]
pub mod cursor;
mod dryrun;
mod error;
mod json;
pub mod leader;
mod meta;
pub mod oidc;
mod peer;
mod request;
mod routes;
mod schema;
mod shed;
pub mod tls;
mod webapi;
mod wire;

use std::sync::Arc;

use axum::Router;
use strata_store::Store;

pub use error::{ApiError, CODES, status_of};
pub use strata_app::{LoadProgress, LoadProgressFn, OrgHandle, Registry, now_ms};

/// Limits of the server; each is enforced with an error that names it.
pub mod limits {
    /// Largest request body.
    pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
    /// Most operations in one write.
    pub const MAX_BATCH: usize = 10_000;
    /// Most evaluations in one AuthZEN batch.
    pub const MAX_EVALUATIONS: usize = 10_000;
    /// Default page size of lists.
    pub const DEFAULT_PAGE: usize = 100;
    /// Largest page size of lists.
    pub const MAX_PAGE: usize = 5_000;
    /// The most columns a list's `select` names.
    pub const MAX_SELECT: usize = 500;
    /// The most filter comparisons one list may evaluate (records tested × comparisons the
    /// column indexes do not answer): about a quarter of a second of one core.
    pub const MAX_LIST_WORK: u64 = 10_000_000;
    /// Longest request URI (path and query), in bytes (`uri_too_long`; below hyper's own
    /// limit of 65,534, whose bare answer is made JSON too, `wire.rs`).
    pub const MAX_URI_BYTES: usize = 16 * 1024;
    /// Largest request header block: the header fields' names and values, in bytes
    /// (`headers_too_large`).
    pub const MAX_HEADER_BYTES: usize = 32 * 1024;
    /// Most header fields in a request: hyper's own limit, whose bare 431 is answered as
    /// `headers_too_large` (`wire.rs`).
    pub const MAX_HEADER_FIELDS: usize = 100;
    /// Deepest JSON body.
    pub const MAX_JSON_DEPTH: usize = crate::json::MAX_JSON_DEPTH;
    /// User access is audited once per user in this interval (Dataverse's default: 4 hours).
    pub const USER_ACCESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(4 * 3600);
    /// How long a read waits for `min_revision`, by default.
    pub const MIN_REVISION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
    /// How long a node may go without being caught up with the store before `/readyz` says
    /// it is not ready, by default.
    pub const MAX_LAG: std::time::Duration = std::time::Duration::from_secs(10);
    /// How often a node looks at the store for other nodes' writes when no notification
    /// woke it, by default.
    pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
}

/// What the server needs.
#[derive(Clone)]
pub struct ServerConfig {
    /// Where organisations are kept.
    pub store: Arc<dyn Store>,
    /// The root key (hosting administration: creating and deleting organisations).
    pub root_key: Option<String>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("root_key", &self.root_key.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// Optional features of the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Accept OIDC bearer tokens from this issuer.
    pub oidc: Option<oidc::OidcConfig>,
    /// How long a read carrying `min_revision` waits for this node to apply it.
    pub min_revision_wait: std::time::Duration,
    /// `/readyz` answers 503 when the node has not been caught up with the store for longer.
    pub max_lag: std::time::Duration,
    /// How often the node looks at the store when no notification woke it.
    pub poll_interval: std::time::Duration,
    /// Told how a start-up load goes: organisation, operations applied, operations in its log.
    pub load_progress: Option<LoadProgress>,
    /// The key that signs list cursors (by default one derived from the store's audit key, the
    /// same on every node of a deployment).
    pub cursor_key: Option<[u8; 32]>,
    /// Serve HTTPS with this certificate (otherwise plain HTTP).
    pub tls: Option<tls::TlsConfig>,
    /// Build absolute links from `X-Forwarded-Host`/`-Proto` (behind a proxy that sets them).
    pub trust_forwarded_headers: bool,
    /// Take a checkpoint of an organisation once its log has grown by this many operations
    /// since its newest one (0 = never; looked at every poll interval).
    pub checkpoint_every: u64,
    /// At most this many requests handled at once; one more is answered `503 server_busy`
    /// with `Retry-After` (health, readiness and metrics excepted).
    pub max_in_flight: usize,
    /// Requests a second allowed per credential on average (0: no limit); over it, `429
    /// rate_limited` with `Retry-After`.
    pub key_rate: f64,
    /// Requests a credential may make at once before `key_rate` applies.
    pub key_burst: f64,
    /// Where other nodes reach this one (`http://host:port`): with it, this node takes the
    /// write lease of each organisation it writes, and other nodes forward those writes to it
    /// (D150). Without it, the node never leads, and forwards to a node that does.
    pub advertise_url: Option<String>,
    /// How long a write lease runs unless renewed.
    pub write_lease: std::time::Duration,
    /// Authorities another node's `https://` certificate may be signed by, besides this
    /// node's own certificate chain and the public roots (a PEM file).
    pub peer_ca_file: Option<std::path::PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            oidc: None,
            min_revision_wait: limits::MIN_REVISION_WAIT,
            max_lag: limits::MAX_LAG,
            poll_interval: limits::POLL_INTERVAL,
            load_progress: None,
            cursor_key: None,
            tls: None,
            trust_forwarded_headers: false,
            checkpoint_every: strata_app::checkpoint::DEFAULT_CHECKPOINT_EVERY,
            max_in_flight: shed::DEFAULT_MAX_IN_FLIGHT,
            key_rate: 0.0,
            key_burst: 100.0,
            advertise_url: None,
            write_lease: leader::DEFAULT_WRITE_LEASE,
            peer_ca_file: None,
        }
    }
}

/// Following the store: what the follower last saw.
#[derive(Debug)]
pub(crate) struct Follow {
    pub(crate) min_revision_wait: std::time::Duration,
    pub(crate) max_lag: std::time::Duration,
    poll_interval: std::time::Duration,
    status: std::sync::Mutex<FollowStatus>,
}

#[derive(Debug, Clone)]
pub(crate) struct FollowStatus {
    /// When a pass last ended with every organisation at the revision the store had when
    /// the pass began.
    pub(crate) caught_up_at: std::time::Instant,
    /// Why the last pass failed, if it did.
    pub(crate) error: Option<String>,
}

impl Follow {
    pub(crate) fn status(&self) -> FollowStatus {
        self.status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn record(&self, result: Result<u64, strata_app::AppError>) {
        let mut status = self
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match result {
            Ok(_) => {
                if let Some(error) = status.error.take() {
                    tracing::info!(previous_error = %error, "following the database again");
                }
                status.caught_up_at = std::time::Instant::now();
            }
            Err(e) => {
                if status.error.is_none() {
                    tracing::warn!(error = %e.message, "cannot follow the database");
                }
                status.error = Some(e.message);
            }
        }
    }
}

/// Runs store work in a blocking task: a store call may wait on the disk (SQLite) or the
/// network (PostgreSQL), which must not hold up the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    work: impl FnOnce(&dyn Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || work(store.as_ref()))
        .await
        .map_err(|e| strata_app::AppError::internal(format!("store task failed: {e}")))?
}

/// Follows the store until the server's state is dropped: a pass (see [`Registry::follow`])
/// whenever the store says something changed, and at least every poll interval.
fn follow(state: std::sync::Weak<AppState>) {
    loop {
        let Some(app) = state.upgrade() else {
            return;
        };
        let store = Arc::clone(&app.store);
        // Read before the pass: a change notified during it wakes the next wait at once.
        let seen = store.change_seen();
        let result = app.registry.follow(store.as_ref());
        app.follow.record(result);
        let poll = app.follow.poll_interval;
        drop(app);
        store.wait_for_change(seen, poll);
    }
}

/// Takes periodic checkpoints until the server's state is dropped: every poll interval, each
/// organisation whose log grew by `every` operations since its newest checkpoint gets one.
fn checkpoints(state: std::sync::Weak<AppState>, every: u64) {
    loop {
        let Some(app) = state.upgrade() else {
            return;
        };
        let store = Arc::clone(&app.store);
        app.registry.checkpoint_pass(store.as_ref(), every);
        let poll = app.follow.poll_interval;
        drop(app);
        std::thread::sleep(poll);
    }
}

/// Shared state of the handlers.
pub struct AppState {
    pub(crate) oidc: Option<oidc::Oidc>,
    pub(crate) object_ids: oidc::ObjectIds,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Registry,
    pub(crate) root_key_hash: Option<String>,
    pub(crate) keys: auth::KeyCache,
    pub(crate) access_seen:
        std::sync::Mutex<std::collections::HashMap<(String, String), std::time::Instant>>,
    pub(crate) metrics: meta::Metrics,
    pub(crate) follow: Follow,
    pub(crate) cursors: cursor::Cursors,
    /// Whether clients reach this server over TLS (the Web API's absolute URLs say https).
    pub(crate) tls: bool,
    /// Links follow `X-Forwarded-Host`/`-Proto`.
    pub(crate) trust_forwarded_headers: bool,
    /// The load limits (requests in flight, per credential).
    pub(crate) shedding: shed::Shedding,
    /// Which node takes each organisation's writes (D150).
    pub(crate) leadership: leader::Leadership,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// Builds the router over a store (loading every organisation from it).
pub fn router(config: &ServerConfig) -> Result<Router, ApiError> {
    router_with(config, &ServerOptions::default())
}

/// Builds the router with optional features.
pub fn router_with(config: &ServerConfig, options: &ServerOptions) -> Result<Router, ApiError> {
    Ok(build(config, options)?.0)
}

/// The router and the state its handlers share.
fn build(
    config: &ServerConfig,
    options: &ServerOptions,
) -> Result<(Router, Arc<AppState>), ApiError> {
    let advertise_url = options
        .advertise_url
        .as_deref()
        .map(leader::check_advertise_url)
        .transpose()
        .map_err(|e| ApiError::new("bad_advertise_url", format!("--advertise-url: {e}")))?;
    let mut node = [0u8; 16];
    auth::random_fill(&mut node)?;
    // Other nodes' certificates are checked against this node's own chain, the peer
    // authorities and the public roots.
    let mut anchors = options
        .tls
        .as_ref()
        .map(|t| t.chain.clone())
        .unwrap_or_default();
    if let Some(file) = &options.peer_ca_file {
        anchors.extend(
            tls::read_certificates(file)
                .map_err(|e| ApiError::new("bad_peer_ca", format!("--peer-ca-file: {e}")))?,
        );
    }
    let connector = peer::Connector::new(&anchors, leader::CONNECT_TIMEOUT)
        .map_err(|e| ApiError::new("bad_peer_ca", format!("--peer-ca-file: {e}")))?;
    let oidc = match &options.oidc {
        None => None,
        Some(c) => Some(
            oidc::Oidc::load(c.clone())
                .map_err(|e| ApiError::new("bad_oidc", format!("OIDC: {e}")))?,
        ),
    };
    // Cursors are signed with a key derived from the store's audit key, so that every node
    // sharing the database (and its key file) accepts the others' cursors.
    let cursor_key = options
        .cursor_key
        .unwrap_or_else(|| config.store.derived_key("list cursors"));
    let state = Arc::new(AppState {
        cursors: cursor::Cursors::new(cursor_key),
        tls: options.tls.is_some(),
        trust_forwarded_headers: options.trust_forwarded_headers,
        oidc,
        object_ids: oidc::ObjectIds::default(),
        registry: Registry::load(config.store.as_ref(), options.load_progress.as_ref())?,
        store: Arc::clone(&config.store),
        root_key_hash: config.root_key.as_deref().map(auth::hash_secret),
        keys: auth::KeyCache::default(),
        access_seen: std::sync::Mutex::default(),
        metrics: meta::Metrics::default(),
        shedding: shed::Shedding::new(options.max_in_flight, options.key_rate, options.key_burst),
        leadership: leader::Leadership::new(
            hex::encode(node),
            advertise_url,
            options
                .write_lease
                .max(std::time::Duration::from_millis(30)),
            &route_table(),
            connector,
        ),
        follow: Follow {
            min_revision_wait: options.min_revision_wait,
            max_lag: options.max_lag,
            poll_interval: options.poll_interval,
            status: std::sync::Mutex::new(FollowStatus {
                caught_up_at: std::time::Instant::now(),
                error: None,
            }),
        },
    });
    {
        let weak = Arc::downgrade(&state);
        std::thread::Builder::new()
            .name("strata-follower".to_owned())
            .spawn(move || follow(weak))
            .map_err(|e| {
                strata_app::AppError::internal(format!("cannot start the follower: {e}"))
            })?;
    }
    if options.checkpoint_every > 0 {
        let (weak, every) = (Arc::downgrade(&state), options.checkpoint_every);
        std::thread::Builder::new()
            .name("strata-checkpoints".to_owned())
            .spawn(move || checkpoints(weak, every))
            .map_err(|e| {
                strata_app::AppError::internal(format!("cannot start the checkpoints: {e}"))
            })?;
    }
    {
        let weak = Arc::downgrade(&state);
        std::thread::Builder::new()
            .name("strata-leases".to_owned())
            .spawn(move || leader::keep_leases(weak))
            .map_err(|e| {
                strata_app::AppError::internal(format!("cannot start the write leases: {e}"))
            })?;
    }
    // Every native and AuthZEN route comes from the one table that the OpenAPI document is
    // generated from.
    let router = route_table()
        .router()
        .merge(webapi::routes())
        .merge(console::routes())
        .fallback(meta::unknown_route)
        .method_not_allowed_fallback(meta::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            leader::route_writes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            meta::observe,
        ))
        .with_state(Arc::clone(&state));
    Ok((router, state))
}

/// Every native and AuthZEN route with its handler and documentation: the router is built from
/// this table and the OpenAPI document is generated from it (`routes.rs` says how to add one).
#[allow(clippy::too_many_lines, reason = "one table, one entry per route")]
pub(crate) fn route_table() -> routes::Table {
    use routes::{PRIVILEGE, USER, delete, get, post, put};
    use schema::{
        AllowedAnswer, AppAnswer, AppDiagnosis, AppsAnswer, AssignersAnswer, AuditPage,
        AuditVerification, AzDecision, AzDecisions, AzSearchAnswer, CatalogueAnswer,
        ColumnAccessAnswer, ColumnVerdict, CompareRolesAnswer, CompareUsersAnswer, DigestAnswer,
        ExceedsAnswer, ExplainAnswer, HealthAnswer, HoldersAnswer, KeyAnswer, LicenceReport,
        ListAnswer, ModelAnswer, OperationsAnswer, OperationsBody, OrgAnswer, OrgList,
        PrivilegesAnswer, ReadyAnswer, RecordAccessAnswer, RecordAnswer, RevisionAnswer,
        RoleAnswer, RoleSetAnswer, RulesAnswer, UserLicencesAnswer, ViolationsAnswer,
        WhoHasAccessAnswer, WrittenAnswer,
    };
    let org = "/api/v1/orgs/{org}";
    routes::Table::default()
        .route(
            "/healthz",
            get(meta::healthz)
            .public()
            .summary("Liveness")
            .answer::<HealthAnswer>(),
        )
        .route(
            "/readyz",
            get(meta::readyz)
            .public()
            .summary("Readiness: the database answers, this node is caught up with it (within --max-lag-ms), and no organization is isolated for an operation log that failed verification")
            .answer::<ReadyAnswer>()
            .also::<ReadyAnswer>(503),
        )
        .route(
            "/metrics",
            get(meta::metrics)
            .public()
            .summary("Prometheus metrics")
            .answers(routes::Answer::Text),
        )
        .route(
            "/api/v1/openapi.json",
            get(meta::openapi)
            .public()
            .summary("This document")
            .answers(routes::Answer::Document),
        )
        .route(
            "/api/v1/orgs",
            post(api::create_org)
            .summary("Create an organization (root key)")
            .body::<api::NewOrg>()
            .created::<OrgAnswer>()
            .errors(&[409]),
        )
        .route(
            "/api/v1/orgs",
            get(api::list_orgs)
            .summary("List organizations (root key)")
            .answer::<OrgList>(),
        )
        .route(
            org,
            delete(api::delete_org)
            .summary("Delete an organization (root key)")
            .no_content(),
        )
        .route(
            &format!("{org}/revision"),
            get(api::revision)
            .summary("The organization's revision")
            .answer::<RevisionAnswer>(),
        )
        .route(
            &format!("{org}/digest"),
            get(api::digest)
            .summary("SHA-256 of the canonical dump at this node's revision, and whether the indexes equal a rebuild (root key, System Administrators)")
            .query(&[("indexes", "boolean", "rebuild the indexes and compare them (default true; false leaves out the costly part)")])
            .answer::<DigestAnswer>(),
        )
        .route(
            &format!("{org}/model"),
            get(api::model)
            .summary("The configuration: units, tables, roles and grids, users, teams, profiles, settings (System Administrators)")
            .answer::<ModelAnswer>(),
        )
        .route(
            &format!("{org}/users/{{user}}/privileges"),
            get(api::user_privileges)
            .summary("What a user can do: privileges per table with depth and source")
            .answer::<PrivilegesAnswer>(),
        )
        .route(
            &format!("{org}/operations"),
            post(api::operations)
            .writes()
            .summary("Apply one operation or a list, atomically; returns the revision (`?min_revision=` applies that revision first). With `?dry_run=true`: authorized and applied in memory, then rolled back — nothing written, no audit, no revision; answers the changes and the access difference (users' privileges gained or lost with their sources, records gained or lost on Read per table)")
            .query(&[routes::DRY_RUN])
            .body::<OperationsBody>()
            .answer_inline::<OperationsAnswer>()
            .errors(&[409]),
        )
        .route(
            &format!("{org}/check"),
            post(api::check)
            .summary("Check a privilege on a record (or create against an owner)")
            .body::<api::CheckRequest>()
            .answer::<AllowedAnswer>(),
        )
        .route(
            &format!("{org}/explain"),
            post(api::explain)
            .summary("Explain a decision: every grant path, or what is missing")
            .body::<api::CheckRequest>()
            .answer::<ExplainAnswer>(),
        )
        .route(
            &format!("{org}/records/{{id}}"),
            get(api::read_record)
            .summary("The record as the user sees it (column security applied)")
            .query(&[USER])
            .answer::<RecordAnswer>(),
        )
        .route(
            &format!("{org}/records/{{id}}/access"),
            get(api::record_access)
            .summary("Effective rights (RetrievePrincipalAccess)")
            .query(&[USER])
            .answer::<RecordAccessAnswer>(),
        )
        .route(
            &format!("{org}/records/{{id}}/who-has-access"),
            get(api::who_has_access)
            .summary("Users holding a privilege on the record")
            .query(&[PRIVILEGE])
            .answer::<WhoHasAccessAnswer>(),
        )
        .route(
            &format!("{org}/tables/{{table}}/records"),
            get(api::list_records)
            .summary("Readable records of a table, by cursor pages: filter, orderby, count, limit, cursor; select=a,b adds rows with those columns as the caller sees them")
            .query(&routes::LIST)
            .answer::<ListAnswer>()
            .errors(&[422]),
        )
        .route(
            &format!("{org}/apps/{{app}}/access"),
            get(admin_apps::app_access)
            .summary("Whether the user opens the app and how, or every reason not (never null), and the needs the user's roles do not meet")
            .query(&[USER])
            .answer::<AppDiagnosis>(),
        )
        .route(
            &format!("{org}/apps"),
            get(admin_apps::list_apps)
            .summary("Every app with its roles and the table privileges it needs")
            .answer::<AppsAnswer>(),
        )
        .route(
            &format!("{org}/apps/{{app}}"),
            get(admin_apps::show_app)
            .summary("An app: its roles, its needs, and who can open it (direct, through a team, System Administrator, maker); needs prvCheckAccessOfOthers")
            .answer::<AppAnswer>(),
        )
        .route(
            &format!("{org}/apps/{{app}}/roles-needed"),
            get(admin_apps::roles_needed)
            .summary("The smallest set of roles that would let the user open the app and meet its needs (D51)")
            .query(&[USER])
            .answer::<RoleSetAnswer>()
            .errors(&[422]),
        )
        .route(
            &format!("{org}/tables/{{table}}/columns/{{column}}/access"),
            get(admin_apps::column_access)
        .summary("Who can read or update a secured column, through which profile, team or System Administrator; needs prvCheckAccessOfOthers")
        .answer::<ColumnAccessAnswer>(),
        )
        .route(
            &format!("{org}/columns/check"),
            post(admin_apps::column_check)
            .summary("May the user read or update a column of a record (record access and column security)")
            .body::<admin_apps::ColumnRequest>()
            .answer::<AllowedAnswer>(),
        )
        .route(
            &format!("{org}/columns/explain"),
            post(admin_apps::column_explain)
            .summary("A column read or update decided, with the record decision and every column permission source")
            .body::<admin_apps::ColumnRequest>()
            .answer::<ColumnVerdict>(),
        )
        .route(
            &format!("{org}/audit"),
            get(api::audit)
            .summary("Audit entries by record, user, table, action and time, oldest or newest first, by pages in both directions")
            .query(&routes::AUDIT)
            .answer::<AuditPage>(),
        )
        .route(
            &format!("{org}/audit/verify"),
            get(api::audit_verify)
            .summary("Verify the audit hash chain")
            .answer::<AuditVerification>(),
        )
        .route(
            &format!("{org}/api-keys"),
            post(api::create_key)
            .summary("Create an API key for a user")
            .body::<api::NewKey>()
            .created::<KeyAnswer>(),
        )
        .route(
            &format!("{org}/licences"),
            get(admin_licences::catalogue)
            .summary("The licence catalogue (seed 003): prices and use rights (ceilings per table and privilege, misc privileges, apps); whether licensing is enforced (D48)")
            .answer::<CatalogueAnswer>(),
        )
        .route(
            &format!("{org}/licences/report"),
            get(admin_licences::report)
            .summary("Licence report: each user's licences, the cheapest covering set, over- and under-licensed users, today's total against the cheapest mix (System Administrators, or prvCheckAccessOfOthers: the users one may ask about)")
            .answer::<LicenceReport>(),
        )
        .route(
            &format!("{org}/licences/users/{{user}}"),
            get(admin_licences::user)
            .summary("One user's licences against what their roles give: the cheapest covering set, the fit, what is not covered (D35)")
            .answer::<UserLicencesAnswer>(),
        )
        .route(
            &format!("{org}/licences/{{licence}}/exceeds"),
            get(admin_licences::exceeds)
            .summary("Where a role (`?role=`) or every role exceeds a licence, cell by cell (Read on `role`)")
            .query(&[("role", "string", "one role (default: every role that exceeds the licence)")])
            .answer::<ExceedsAnswer>(),
        )
        .route(
            &format!("{org}/roles/{{role}}"),
            get(admin_roles::describe)
            .summary("Describe a role: unit, inheritance, deprecation, the grid with depth names, miscellaneous privileges, apps (Read on `role`, D42)")
            .answer::<RoleAnswer>(),
        )
        .route(
            &format!("{org}/roles/{{role}}"),
            delete(admin_roles::delete)
            .writes()
            .summary("Delete a role; refused (`role_in_use`) while held or associated with apps unless `?replacement=` names the role every holder and app moves to")
            .query(&[("replacement", "string", "the role every holder and app moves to")])
            .answer::<WrittenAnswer>()
            .errors(&[409]),
        )
        .route(
            &format!("{org}/roles/{{role}}/holders"),
            get(admin_roles::holders)
            .summary("Who holds a role: users directly, teams, and the teams' members with the team (Read on `role`, D42)")
            .answer::<HoldersAnswer>(),
        )
        .route(
            &format!("{org}/roles/{{role}}/assigners"),
            get(admin_roles::assigners)
            .summary("Who may assign a role (D20 and D11 for every user), with the units whose principals they may give it to")
            .answer::<AssignersAnswer>(),
        )
        .route(
            &format!("{org}/roles/{{role}}/compare/{{other}}"),
            get(admin_roles::compare_roles)
            .summary("Two roles side by side: every table x privilege with both depths, mismatches marked, miscellaneous privileges")
            .answer::<CompareRolesAnswer>(),
        )
        .route(
            &format!("{org}/users/{{user}}/compare/{{other}}"),
            get(admin_roles::compare_users)
            .summary("Two users' effective permissions side by side: depth and source role (direct or via team) per cell, mismatches marked (D35 for each user)")
            .answer::<CompareUsersAnswer>(),
        )
        .route(
            &format!("{org}/roles/{{role}}/copy"),
            post(admin_roles::copy)
            .writes()
            .summary("Copy a role under `{name}`: same grid, miscellaneous privileges, unit and inheritance")
            .body::<admin_roles::NameBody>()
            .answer::<WrittenAnswer>()
            .errors(&[409]),
        )
        .route(
            &format!("{org}/roles/{{role}}/rename"),
            post(admin_roles::rename)
            .writes()
            .summary("Rename a role to `{name}` (not System Administrator)")
            .body::<admin_roles::NameBody>()
            .answer::<WrittenAnswer>()
            .errors(&[409]),
        )
        .route(
            &format!("{org}/roles/{{role}}/replace"),
            post(admin_roles::replace)
            .writes()
            .summary("Replace the role by `{replacement}` for every user and team holding it, in one audited change")
            .body::<admin_roles::ReplaceBody>()
            .answer::<WrittenAnswer>()
            .errors(&[409]),
        )
        .route(
            &format!("{org}/roles/{{role}}/deprecation"),
            post(admin_roles::deprecate)
            .writes()
            .summary("Deprecate a role with `{message, successors}`: assigning it is then refused (`role_deprecated`) naming the successors")
            .body::<admin_roles::DeprecateBody>()
            .answer::<WrittenAnswer>(),
        )
        .route(
            &format!("{org}/roles/{{role}}/deprecation"),
            delete(admin_roles::undeprecate)
            .writes()
            .summary("Take a role's deprecation back")
            .answer::<WrittenAnswer>(),
        )
        .route(
            &format!("{org}/roles/{{role}}/privileges/{{table}}/{{privilege}}"),
            put(admin_roles::set_cell)
            .writes()
        .summary("Set one cell of a role's grid to `{depth}` (D11 for the resulting grid)")
        .body::<admin_roles::DepthBody>()
        .answer::<WrittenAnswer>(),
        )
        .route(
            &format!("{org}/tables/{{table}}/columns"),
            post(admin_roles::add_columns)
            .writes()
            .summary("Add `{columns}` to an existing table (customization: System Administrators, D32)")
            .body::<admin_roles::ColumnsBody>()
            .answer::<WrittenAnswer>()
            .errors(&[409]),
        )
        .route(
            "/access/v1/evaluation",
            post(api::az_evaluation)
            .summary("AuthZEN: one evaluation")
            .body::<api::AzEvaluation>()
            .answer::<AzDecision>(),
        )
        .route(
            "/access/v1/evaluations",
            post(api::az_evaluations)
            .summary("AuthZEN: a batch of evaluations")
            .body::<api::AzEvaluations>()
            .answer::<AzDecisions>(),
        )
        .route(
            "/access/v1/search/resource",
            post(api::az_search_resource)
            .summary("AuthZEN: resources a subject may act on")
            .body::<api::AzSearch>()
            .answer::<AzSearchAnswer>(),
        )
        .route(
            &format!("{org}/rules"),
            get(admin_rules::list)
            .summary("The role rules in force (requires, excludes, direct only) that the caller may read: Read on `role` over every role a rule names (D47)")
            .answer::<RulesAnswer>(),
        )
        .route(
            &format!("{org}/rules"),
            post(admin_rules::add)
            .writes()
            .summary("Add a role rule: `role` and one of `requires` (roles), `excludes` (a role), `direct_only: true`; contradictory rules, cycles and rules on System Administrator are refused (D45–D47)")
            .body::<admin_rules::RuleBody>()
            .answer::<RevisionAnswer>(),
        )
        .route(
            &format!("{org}/rules"),
            delete(admin_rules::remove)
            .writes()
            .summary("Remove the role rule the body names (as for adding one); `unknown_rule` (404) when no such rule is in force")
            .body::<admin_rules::RuleBody>()
            .answer::<RevisionAnswer>(),
        )
        .route(
            &format!("{org}/rules/violations"),
            get(admin_rules::violations)
            .summary("Users breaking a role rule (assignments that predate it, D46): user, rule, the missing or conflicting role, directly or through which teams; `?user=` for one user (D35)")
            .query(&[("user", "string", "one user's violations (D35)")])
            .answer::<ViolationsAnswer>(),
        )
        .route(
            &format!("{org}/export"),
            get(admin_export::export)
            .summary("The whole model as a scenario file (application/yaml, docs/export.md); `?records=true` adds records, shares and access team members (System Administrators, D66)")
            .query(&[("records", "boolean", "also export records, shares and access team members")])
            .answers(routes::Answer::File(&["application/yaml"])),
        )
        .route(
            &format!("{org}/roles/export"),
            get(admin_import::export)
            .summary("Export roles as Dataverse solution XML: `files` (every Roles/<name>.xml and the customizations.xml, byte-stable), the roles the caller may read but System Administrator roles, `withheld` the others; `?role=` one role (docs/solutions.md)")
            .query(&[("role", "string", "only this role")])
            .answer::<schema::RolesExportAnswer>(),
        )
        .route(
            &format!("{org}/roles/import"),
            post(admin_import::import)
            .writes()
            .summary("Import Dataverse solution roles: the body is an unpacked Roles/*.xml, a customizations.xml or a solution zip (by content), or a JSON string of the XML; `?dry_run=true` tries the one batch and answers per role the privileges by level and what would be created, updated or skipped; `?create_tables=true` creates the standard and custom tables named; authorized as role creation and editing (docs/solutions.md)")
            .query(&[
                ("dry_run", "boolean", "try the batch and answer what it would do, writing nothing"),
                ("create_tables", "boolean", "create the standard and custom tables the roles name that the organisation lacks"),
                ("file", "string", "the file's name, for errors (default `body`)"),
            ])
            .body::<schema::RoleFileText>()
            .file_body(&["application/xml", "application/zip", "application/octet-stream"])
            .body_limit(strata_solution::MAX_FILE_BYTES)
            .answer::<schema::RolesImportAnswer>(),
        )
        .route(
            &format!("{org}/review"),
            get(admin_review::review)
            .summary("The access review (seed 002): `?format=xlsx` (default, a sheet per view) or `csv` (a zip, a file per view), `inactive_days` (default 90): users and roles, the role grid with depths, effective privileges with their source, column profiles, shares, System Administrators, organisation-wide delete, users without roles, inactive users, deprecated role holders, rule violations, licences. The root key, System Administrators, or prvCheckAccessOfOthers with prvReadAuditSummary, Read on every user, role and shared record (D70)")
            .query(&[
                ("format", "string", "xlsx (default) or csv (a zip of one file per view)"),
                ("inactive_days", "integer", "users not seen for this many days are inactive (default 90)"),
            ])
            .answers(routes::Answer::File(&[
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/zip",
            ])),
        )
}

/// The native and AuthZEN routes the router serves, from the table it is built from: (method
/// in lower case, path, whether the handler reads a body — from its extractors' types). For
/// `tests/openapi.rs`, which checks the OpenAPI document against them.
#[doc(hidden)]
#[must_use]
pub fn native_routes() -> Vec<(String, String, bool)> {
    route_table()
        .routes
        .iter()
        .map(|r| {
            let method = serde_json::to_value(&r.method)
                .ok()
                .and_then(|m| m.as_str().map(str::to_lowercase))
                .unwrap_or_default();
            (method, r.path.clone(), r.reads_body)
        })
        .collect()
}

/// Deletes expired audit entries of every organisation, once at start and then hourly.
async fn expire_audit_hourly(store: Arc<dyn Store>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let store = Arc::clone(&store);
        let _ = tokio::task::spawn_blocking(move || {
            for (org, _) in store.organizations().unwrap_or_default() {
                match store.expire_audit(&org, now_ms()) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(%org, expired = n, "audit retention"),
                    Err(e) => tracing::warn!(%org, error = %e, "audit retention"),
                }
            }
        })
        .await;
    }
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(config, ServerOptions::default(), listener, shutdown).await
}

/// Serves with optional features until `shutdown` resolves.
pub async fn serve_with(
    config: ServerConfig,
    options: ServerOptions,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Loading replays every organisation's log from the store: a blocking task.
    let (app, state) = {
        let (config, options) = (config.clone(), options.clone());
        tokio::task::spawn_blocking(move || build(&config, &options))
            .await
            .map_err(std::io::Error::other)?
            .map_err(|e| std::io::Error::other(strata_app::AppError::from(e).message))?
    };
    tokio::spawn(expire_audit_hourly(Arc::clone(&config.store)));
    // TLS is only the connection layer: the same router and graceful shutdown either way; and
    // hyper's own answers (a request head over its limits) leave as JSON errors on both.
    let served = match &options.tls {
        None => {
            axum::serve(wire::Listener(listener), app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            axum::serve(wire::Listener(tls::TlsListener::new(listener, tls)?), app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    // Stopping: another node takes this one's organisations' writes at once.
    let _ = tokio::task::spawn_blocking(move || leader::release(&state)).await;
    served
}
