//! The Strata server: the native JSON API (`/api/v1`), the OpenID AuthZEN 1.0 endpoints
//! (`/access/v1`), health, metrics and the OpenAPI document, over one store holding any number
//! of isolated organisations.
//!
//! Architecture invariant: this crate is a shell. Decisions come from `strata-engine`, changes
//! are `strata-ops` operations, persistence is `strata-store`.

mod api;
mod audit;
pub mod auth;
mod error;
mod meta;
pub mod oidc;
mod state;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use strata_store::Store;

pub use error::{ApiError, status_of};
pub use state::{OrgHandle, Registry, now_ms};

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
    /// User access is audited once per user in this interval (Dataverse's default: 4 hours).
    pub const USER_ACCESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(4 * 3600);
    /// How long a read waits for `min_revision`.
    pub const MIN_REVISION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
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
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Accept OIDC bearer tokens from this issuer.
    pub oidc: Option<oidc::OidcConfig>,
}

/// Shared state of the handlers.
pub struct AppState {
    pub(crate) oidc: Option<oidc::Oidc>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: Registry,
    pub(crate) root_key_hash: Option<String>,
    pub(crate) keys: auth::KeyCache,
    pub(crate) access_seen:
        std::sync::Mutex<std::collections::HashMap<(String, String), std::time::Instant>>,
    pub(crate) metrics: meta::Metrics,
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
    let state = Arc::new(AppState {
        oidc,
        registry: Registry::load(config.store.as_ref())?,
        store: Arc::clone(&config.store),
        root_key_hash: config.root_key.as_deref().map(auth::hash_secret),
        keys: auth::KeyCache::default(),
        access_seen: std::sync::Mutex::default(),
        metrics: meta::Metrics::default(),
    });
    let org = "/api/v1/orgs/{org}";
    Ok(Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/metrics", get(meta::metrics))
        .route("/api/v1/openapi.json", get(meta::openapi))
        .route("/api/v1/orgs", post(api::create_org).get(api::list_orgs))
        .route(org, axum::routing::delete(api::delete_org))
        .route(&format!("{org}/revision"), get(api::revision))
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
        .route(&format!("{org}/apps/{{app}}/access"), get(api::app_access))
        .route(&format!("{org}/audit"), get(api::audit))
        .route(&format!("{org}/audit/verify"), get(api::audit_verify))
        .route(&format!("{org}/api-keys"), post(api::create_key))
        .route("/access/v1/evaluation", post(api::az_evaluation))
        .route("/access/v1/evaluations", post(api::az_evaluations))
        .route("/access/v1/search/resource", post(api::az_search_resource))
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
            .map_err(|e| std::io::Error::other(e.message))?
    };
    tokio::spawn(expire_audit_hourly(Arc::clone(&config.store)));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
