//! The Strata server: the native JSON API (`/api/v1`), the OpenID AuthZEN 1.0 endpoints
//! (`/access/v1`), health, metrics and the OpenAPI document, over one store holding any number
//! of isolated organisations.
//!
//! Architecture invariant: this crate is a shell. Decisions come from `strata-engine`, changes
//! are `strata-ops` operations, persistence is `strata-store`, and the organisations, the write
//! path, audit and following are `strata-app`'s: the server resolves who acts and answers HTTP.

mod admin_apps;
mod admin_licences;
mod admin_roles;
mod admin_rules;
mod api;
pub mod auth;
mod console;
mod cursor;
mod dryrun;
mod error;
mod json;
mod meta;
pub mod oidc;
mod request;
pub mod tls;
mod webapi;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
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
    let org = "/api/v1/orgs/{org}";
    Ok(Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/metrics", get(meta::metrics))
        .route("/api/v1/openapi.json", get(meta::openapi))
        .route("/api/v1/orgs", post(api::create_org).get(api::list_orgs))
        .route(org, axum::routing::delete(api::delete_org))
        .route(&format!("{org}/revision"), get(api::revision))
        .route(&format!("{org}/digest"), get(api::digest))
        .route(&format!("{org}/model"), get(api::model))
        .route(
            &format!("{org}/users/{{user}}/privileges"),
            get(api::user_privileges),
        )
        .route(&format!("{org}/operations"), post(api::operations))
        .route(&format!("{org}/check"), post(api::check))
        .route(&format!("{org}/explain"), post(api::explain))
        .route(&format!("{org}/records/{{id}}"), get(api::read_record))
        .route(
            &format!("{org}/records/{{id}}/access"),
            get(api::record_access),
        )
        .route(
            &format!("{org}/records/{{id}}/who-has-access"),
            get(api::who_has_access),
        )
        .route(
            &format!("{org}/tables/{{table}}/records"),
            get(api::list_records),
        )
        .route(
            &format!("{org}/apps/{{app}}/access"),
            get(admin_apps::app_access),
        )
        .route(&format!("{org}/apps"), get(admin_apps::list_apps))
        .route(&format!("{org}/apps/{{app}}"), get(admin_apps::show_app))
        .route(
            &format!("{org}/apps/{{app}}/roles-needed"),
            get(admin_apps::roles_needed),
        )
        .route(
            &format!("{org}/tables/{{table}}/columns/{{column}}/access"),
            get(admin_apps::column_access),
        )
        .route(
            &format!("{org}/columns/check"),
            post(admin_apps::column_check),
        )
        .route(
            &format!("{org}/columns/explain"),
            post(admin_apps::column_explain),
        )
        .route(&format!("{org}/audit"), get(api::audit))
        .route(&format!("{org}/audit/verify"), get(api::audit_verify))
        .route(&format!("{org}/api-keys"), post(api::create_key))
        .route(&format!("{org}/licences"), get(admin_licences::catalogue))
        .route(
            &format!("{org}/licences/report"),
            get(admin_licences::report),
        )
        .route(
            &format!("{org}/licences/users/{{user}}"),
            get(admin_licences::user),
        )
        .route(
            &format!("{org}/licences/{{licence}}/exceeds"),
            get(admin_licences::exceeds),
        )
        .route(
            &format!("{org}/roles/{{role}}"),
            get(admin_roles::describe).delete(admin_roles::delete),
        )
        .route(
            &format!("{org}/roles/{{role}}/holders"),
            get(admin_roles::holders),
        )
        .route(
            &format!("{org}/roles/{{role}}/assigners"),
            get(admin_roles::assigners),
        )
        .route(
            &format!("{org}/roles/{{role}}/compare/{{other}}"),
            get(admin_roles::compare_roles),
        )
        .route(
            &format!("{org}/users/{{user}}/compare/{{other}}"),
            get(admin_roles::compare_users),
        )
        .route(
            &format!("{org}/roles/{{role}}/copy"),
            post(admin_roles::copy),
        )
        .route(
            &format!("{org}/roles/{{role}}/rename"),
            post(admin_roles::rename),
        )
        .route(
            &format!("{org}/roles/{{role}}/replace"),
            post(admin_roles::replace),
        )
        .route(
            &format!("{org}/roles/{{role}}/deprecation"),
            post(admin_roles::deprecate).delete(admin_roles::undeprecate),
        )
        .route(
            &format!("{org}/roles/{{role}}/privileges/{{table}}/{{privilege}}"),
            axum::routing::put(admin_roles::set_cell),
        )
        .route(
            &format!("{org}/tables/{{table}}/columns"),
            post(admin_roles::add_columns),
        )
        .route("/access/v1/evaluation", post(api::az_evaluation))
        .route("/access/v1/evaluations", post(api::az_evaluations))
        .route("/access/v1/search/resource", post(api::az_search_resource))
        .route(
            &format!("{org}/rules"),
            get(admin_rules::list)
                .post(admin_rules::add)
                .delete(admin_rules::remove),
        )
        .route(
            &format!("{org}/rules/violations"),
            get(admin_rules::violations),
        )
        .merge(webapi::routes())
        .merge(console::routes())
        .fallback(meta::unknown_route)
        .method_not_allowed_fallback(meta::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            meta::observe,
        ))
        .with_state(state))
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
    let app = {
        let (config, options) = (config.clone(), options.clone());
        tokio::task::spawn_blocking(move || router_with(&config, &options))
            .await
            .map_err(std::io::Error::other)?
            .map_err(|e| std::io::Error::other(strata_app::AppError::from(e).message))?
    };
    tokio::spawn(expire_audit_hourly(Arc::clone(&config.store)));
    // TLS is only the connection layer: the same router and graceful shutdown either way; and
    // hyper's own answers (a request head over its limits) leave as JSON errors on both.
    match &options.tls {
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
    }
}
