//! The admin console under `/console` (docs/console.md): server-rendered HTML (maud templates,
//! checked by the compiler), one stylesheet and the vendored htmx, served by the binary itself
//! with no CDN and no external font.
//!
//! Architecture invariant: the console is a door like the API. It opens a request as the API
//! does (the signed-in user is resolved by `request.rs`, unknown or disabled users are refused,
//! never "the system"), asks the same questions (`strata-engine`, the JSON of `strata-ops`),
//! applies the same rules of whom a user may ask about (D27) and writes only through the
//! application layer (`OrgHandle::write`, `OrgHandle::dry_run`), so a delegated administrator
//! sees and changes exactly what the API would let them.

mod access;
mod assets;
mod audit;
mod import;
mod oidc;
mod review;
mod roles;
mod rules;
mod session;

pub(crate) use session::cookie_id as session_cookie;
mod users;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use maud::{DOCTYPE, Markup, html};
use strata_engine::{Depth, Organization};

use crate::AppState;
use crate::auth::{Caller, hash_secret};
use crate::error::{ApiError, status_of};
use crate::request::{OrgRequest, access_to_audit, org_at, resolve_acting};
pub(crate) use session::{Flash, Sessions, same_secret};

/// The console's routes (merged into the server's router by `lib.rs`).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    let sessions = Arc::new(Sessions::default());
    Router::new()
        .route("/console", get(home))
        .route("/console/", get(home))
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/oidc/start", get(oidc::start))
        .route("/console/oidc/callback", get(oidc::callback))
        .route("/console/assets/{file}", get(assets::serve))
        .route("/console/units", get(users::units))
        .route("/console/units/change", post(users::change_unit))
        .route("/console/users", get(users::list))
        .route("/console/users/{user}", get(users::show))
        .route("/console/users/{user}/change", post(users::change))
        .route("/console/teams", get(users::teams))
        .route("/console/teams/change", post(users::change_team))
        .route("/console/roles", get(roles::list))
        .route("/console/roles/{role}", get(roles::editor))
        .route("/console/roles/{role}/edit", post(roles::edit))
        .route("/console/roles/{role}/save", post(roles::save))
        .route("/console/roles/{role}/manage", post(roles::manage))
        .route("/console/rules", get(rules::rules))
        .route("/console/rules/change", post(rules::change))
        .route("/console/access", get(access::check))
        .route("/console/who", get(access::who))
        .route("/console/compare", get(access::compare))
        .route("/console/apps", get(access::apps))
        .route("/console/licences", get(access::licences))
        .route("/console/audit", get(audit::audit))
        .route("/console/review", get(review::page))
        .route("/console/review/download", get(review::download))
        .route("/console/import", get(import::page))
        .route(
            "/console/import/preview",
            post(import::upload).layer(axum::extract::DefaultBodyLimit::max(
                import::MAX_UPLOAD_BODY,
            )),
        )
        .route("/console/import/replan", post(import::replan))
        .route("/console/import/apply", post(import::apply))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(Extension(sessions))
}

/// The headers of every console response (D75): a Content-Security-Policy that allows only
/// this server's own script and stylesheet (no inline script, no frame, forms only to here),
/// no framing, no referrer, no sniffing; pages are never cached.
async fn security_headers(request: Request, next: axum::middleware::Next) -> Response {
    let is_asset = request.uri().path().starts_with("/console/assets/");
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let took = started.elapsed().as_secs_f64() * 1e3;
    let h = response.headers_mut();
    // The server's time for the page, rendering included (`strata bench console` reads it).
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={took:.3}")) {
        h.insert("server-timing", v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !is_asset {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A signed-in request: the session, and the organisation request opened for its user exactly
/// as the API opens one for that user's key.
pub(crate) struct Console {
    pub(crate) state: Arc<AppState>,
    pub(crate) request: OrgRequest,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) id: String,
    pub(crate) csrf: String,
    /// The signed-in user's name.
    pub(crate) user: String,
    pub(crate) flash: Option<Flash>,
}

/// Back to the sign-in page (htmx follows `HX-Redirect`; a plain request the 303).
fn to_sign_in(htmx: bool, why: &str) -> Response {
    let to = format!("/console/sign-in?why={why}");
    if htmx {
        let mut r = StatusCode::OK.into_response();
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert("hx-redirect", v);
        }
        return r;
    }
    redirect(&to)
}

/// A `303 See Other`.
pub(crate) fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

impl FromRequestParts<Arc<AppState>> for Console {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let htmx = parts.headers.contains_key("hx-request");
        let sessions = parts
            .extensions
            .get::<Arc<Sessions>>()
            .cloned()
            .ok_or_else(|| {
                plain_error(&ApiError::from(strata_app::AppError::internal(
                    "no console sessions",
                )))
            })?;
        let Some(id) = session::cookie_id(&parts.headers) else {
            return Err(to_sign_in(htmx, "signed-out"));
        };
        let reading = parts.method == Method::GET || parts.method == Method::HEAD;
        let Some((org, user, credential, csrf, flash)) = sessions.with(&id, |s| {
            (
                s.org.clone(),
                s.user.clone(),
                s.credential.clone(),
                s.csrf.clone(),
                if reading { s.flash.take() } else { None },
            )
        }) else {
            return Err(to_sign_in(htmx, "expired"));
        };
        // The key is checked again (a revoked key ends its sessions within the key cache's
        // lifetime), then the user, as the API checks them.
        if let session::Credential::Key(key_hash) = &credential {
            let key = state.keys.get(&state.store, key_hash).await;
            let key_ok = matches!(&key, Ok(Some(k)) if k.revoked_ms.is_none() && k.organization == org && k.user == user);
            if !key_ok {
                sessions.close(&id);
                return Err(to_sign_in(htmx, "revoked"));
            }
        }
        let caller = Caller::User {
            org: org.clone(),
            user: user.clone(),
        };
        let handle = org_at(state, &caller, &org)
            .await
            .map_err(|e| plain_error(&e))?;
        // An OIDC session: the id token's identity must still map to this user (an object id
        // changed or cleared by an administrator ends the session), as a bearer token would.
        if let session::Credential::Token(identity) = &credential {
            let loaded = handle.read().await;
            let by_object_id = |oid: &str| state.object_ids.user(&handle, &loaded.org, oid);
            let same = crate::request::calling_user(
                &loaded.org,
                &Caller::Identity(identity.clone()),
                &by_object_id,
            )
            .ok()
            .flatten()
            .is_some_and(|u| loaded.org.user(u).name == user);
            if !same {
                sessions.close(&id);
                return Err(to_sign_in(htmx, "revoked"));
            }
        }
        let acting = {
            let loaded = handle.read().await;
            resolve_acting(&loaded.org, &caller, None, &|_| None)
                .map(|a| (a, access_to_audit(&loaded.org, a)))
        };
        let (acting, access) = match acting {
            Ok(a) => a,
            Err(_) => {
                sessions.close(&id);
                return Err(to_sign_in(htmx, "disabled"));
            }
        };
        if !reading {
            session::same_origin(&parts.headers).map_err(|e| plain_error(&e))?;
        }
        let request = OrgRequest { handle, acting };
        // D12: console use is user access, audited as the API's requests are.
        if let Some((name, retention)) = access {
            request.note_access(state, name, retention);
        }
        Ok(Console {
            state: Arc::clone(state),
            request,
            sessions,
            id,
            csrf,
            user,
            flash,
        })
    }
}

/// A change: the signed-in request, its form, and the session's CSRF token checked (D75) —
/// every POST handler takes this, so none can forget the check.
pub(crate) struct Change {
    pub(crate) console: Console,
    pub(crate) form: HashMap<String, String>,
}

impl FromRequest<Arc<AppState>> for Change {
    type Rejection = Response;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let console = Console::from_request_parts(&mut parts, state).await?;
        let header_token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let req = Request::from_parts(parts, body);
        let Form(form) = Form::<HashMap<String, String>>::from_request(req, state)
            .await
            .map_err(|e| plain_error(&ApiError::new("invalid_body", format!("the form: {e}"))))?;
        let presented = form
            .get("csrf")
            .cloned()
            .or(header_token)
            .unwrap_or_default();
        if !session::same_secret(&presented, &console.csrf) {
            return Err(plain_error(&ApiError::forbidden(
                "this change does not carry the session's CSRF token: reload the page and try again",
            )));
        }
        Ok(Change { console, form })
    }
}

impl Change {
    /// A form field, or `invalid_body` naming it.
    pub(crate) fn field(&self, name: &str) -> Result<&str, ApiError> {
        self.form
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ApiError::new("invalid_body", format!("the form needs `{name}`")).at(name)
            })
    }
}

impl Console {
    /// Leaves a message for the next page.
    pub(crate) fn flash(&self, error: bool, text: impl Into<String>) {
        let text = text.into();
        self.sessions
            .with(&self.id, |s| s.flash = Some(Flash { error, text }));
    }

    /// Runs `f` on this session.
    pub(crate) fn session<T>(&self, f: impl FnOnce(&mut session::Session) -> T) -> Option<T> {
        self.sessions.with(&self.id, f)
    }

    /// The page around `body`.
    pub(crate) fn page(&self, title: &str, body: Markup) -> Response {
        let headers = serde_json::json!({ "X-CSRF-Token": self.csrf }).to_string();
        let org = self.request.handle.name.clone();
        let nav = [
            ("/console/units", "Business units"),
            ("/console/users", "Users"),
            ("/console/teams", "Teams"),
            ("/console/roles", "Roles"),
            ("/console/rules", "Rules"),
            ("/console/access", "Check access"),
            ("/console/who", "Who has access"),
            ("/console/compare", "Compare users"),
            ("/console/apps", "App access"),
            ("/console/licences", "Licences"),
            ("/console/audit", "Audit"),
            ("/console/review", "Access review"),
            ("/console/import", "Import roles"),
        ];
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body hx-headers=(headers) {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        span.brand { "Strata console" }
                        span.org { "organization " strong { (org) } }
                        nav aria-label="Screens" {
                            ul { @for (href, label) in nav { li { a href=(href) { (label) } } } }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(self.csrf);
                            span { "signed in as " strong #whoami { (self.user) } " " }
                            button type="submit" { "Sign out" }
                        }
                    }
                    main #main {
                        div #flash-area aria-live="polite" {
                            @if let Some(f) = &self.flash {
                                p.flash.error[f.error] role=(if f.error { "alert" } else { "status" }) #flash { (f.text) }
                            }
                        }
                        h1 { (title) }
                        (body)
                    }
                }
            }
        };
        html_response(StatusCode::OK, markup)
    }

    /// A refusal or failure, on the page.
    pub(crate) fn error(&self, title: &str, e: &ApiError) -> Response {
        self.refused(title, html! {}, e)
    }

    /// A screen's page with `before` (its form) and the refusal's box, answered with the
    /// refusal's status, as the API answers it (403 for a question the caller may not ask).
    pub(crate) fn refused(&self, title: &str, before: Markup, e: &ApiError) -> Response {
        let mut r = self.page(title, html! { (before) (error_box(e)) });
        *r.status_mut() = status_of(e.code);
        r
    }
}

/// An error as a box on a page.
pub(crate) fn error_box(e: &ApiError) -> Markup {
    html! {
        div.refusal role="alert" {
            p { strong { (e.code) } ": " (e.message) }
            @if let Some(f) = &e.field { p.small { "field: " code { (f) } } }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="referrer" content="no-referrer";
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}"#;
            title { (title) " · Strata" }
            link rel="stylesheet" href=(assets::url("console.css"));
            script src=(assets::url("htmx.min.js")) defer {}
        }
    }
}

pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// An error page without a session (a failed sign-in, a refused request).
pub(crate) fn plain_error(e: &ApiError) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head("Refused"))
            body { main #main { h1 { "Refused" } (error_box(e)) p { a href="/console" { "Back to the console" } } } }
        }
    };
    html_response(status_of(e.code), markup)
}

async fn home(headers: axum::http::HeaderMap) -> Response {
    if session::cookie_id(&headers).is_some() {
        redirect("/console/users")
    } else {
        redirect("/console/sign-in")
    }
}

#[derive(serde::Deserialize)]
struct SignInQuery {
    #[serde(default)]
    why: Option<String>,
}

/// The sign-in page with a refusal, and no session.
pub(crate) fn sign_in_refusal(state: &AppState, status: StatusCode, text: &str) -> Response {
    html_response(
        status,
        sign_in_form(Some((true, text)), oidc_sign_in(state)),
    )
}

/// The issuer to offer "Sign in with …" for, when OIDC sign-in is configured.
pub(crate) fn oidc_sign_in(state: &AppState) -> Option<&str> {
    state
        .oidc
        .as_ref()
        .filter(|o| o.config().sign_in.is_some())
        .map(|o| o.config().issuer.as_str())
}

fn sign_in_form(message: Option<(bool, &str)>, issuer: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.signin {
                main #main {
                    h1 { "Strata console" }
                    @if let Some((error, text)) = message {
                        p.flash.error[error] role=(if error { "alert" } else { "status" }) #flash { (text) }
                    }
                    @if let Some(issuer) = issuer {
                        p { a.button #oidc-sign-in href="/console/oidc/start" { "Sign in with " (issuer) } }
                        p.small { "Or with an API key:" }
                    }
                    form method="post" action="/console/sign-in" {
                        label for="key" { "API key" }
                        input #key type="password" name="key" autocomplete="off" required autofocus;
                        p.small { "The key of a user of your organization (" code { "strata api-key create" } ", or the key " code { "strata demo" } " prints)." }
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

async fn sign_in_page(
    State(state): State<Arc<AppState>>,
    axum::extract::Query(q): axum::extract::Query<SignInQuery>,
) -> Response {
    let message = match q.why.as_deref() {
        Some("expired") => Some((false, "Your session ended: sign in again.")),
        Some("signed-out") => Some((false, "Sign in to continue.")),
        Some("bye") => Some((false, "You are signed out.")),
        Some("revoked") => Some((
            true,
            "The key of this session was revoked or no longer exists.",
        )),
        Some("disabled") => Some((
            true,
            "The user of this session is disabled or no longer exists.",
        )),
        _ => None,
    };
    html_response(StatusCode::OK, sign_in_form(message, oidc_sign_in(&state)))
}

/// `POST /console/sign-in`: an API key of a user → a new session (D74). The root key and
/// unknown, revoked or disabled users are refused on the sign-in page.
async fn sign_in(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: axum::http::HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let refuse = |status: StatusCode, text: &str| {
        let mut r = html_response(
            status,
            sign_in_form(Some((true, text)), oidc_sign_in(&state)),
        );
        *r.status_mut() = status;
        r
    };
    if let Err(e) = session::same_origin(&headers) {
        return refuse(StatusCode::FORBIDDEN, &e.message);
    }
    let key = form.get("key").map(|k| k.trim()).unwrap_or("");
    if key.is_empty() {
        return refuse(StatusCode::UNAUTHORIZED, "Enter an API key.");
    }
    let hash = hash_secret(key);
    if state.root_key_hash.as_deref() == Some(hash.as_str()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "The root key administers organizations and has no user: sign in with the key of a user of your organization.",
        );
    }
    let record = match state.keys.get(&state.store, &hash).await {
        Ok(Some(k)) if k.revoked_ms.is_none() => k,
        Ok(_) => return refuse(StatusCode::UNAUTHORIZED, "Unknown or revoked API key."),
        Err(e) => return plain_error(&e),
    };
    let caller = Caller::User {
        org: record.organization.clone(),
        user: record.user.clone(),
    };
    let handle = match org_at(&state, &caller, &record.organization).await {
        Ok(h) => h,
        Err(e) => return plain_error(&e),
    };
    {
        let loaded = handle.read().await;
        if let Err(e) = resolve_acting(&loaded.org, &caller, None, &|_| None) {
            return refuse(StatusCode::UNAUTHORIZED, &e.message);
        }
    }
    if let Some(old) = session::cookie_id(&headers) {
        sessions.close(&old);
    }
    let id = match sessions.open(
        record.organization,
        record.user,
        session::Credential::Key(hash),
    ) {
        Ok(id) => id,
        Err(e) => return plain_error(&e),
    };
    let mut r = redirect("/console/users");
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, state.tls)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /console/sign-out`: the session is destroyed and the cookie removed.
async fn sign_out(change: Change) -> Response {
    let c = &change.console;
    c.sessions.close(&c.id);
    let mut r = redirect("/console/sign-in?why=bye");
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(c.state.tls)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

// ----- shared pieces of the screens -----

/// Dataverse's circle for a depth.
pub(crate) fn circle(depth: Depth) -> &'static str {
    match depth {
        Depth::None => "○",
        Depth::User => "◔",
        Depth::BusinessUnit => "◑",
        Depth::ParentChild => "◕",
        Depth::Organization => "●",
    }
}

/// A depth as Dataverse's role editor names it.
pub(crate) fn depth_label(depth: Depth) -> &'static str {
    match depth {
        Depth::None => "None",
        Depth::User => "User",
        Depth::BusinessUnit => "Business Unit",
        Depth::ParentChild => "Parent: Child Business Units",
        Depth::Organization => "Organization",
    }
}

/// The legend of the circles.
pub(crate) fn legend() -> Markup {
    html! {
        ul.legend aria-label="Depth legend" {
            @for d in Depth::ALL {
                li { span.circle aria-hidden="true" { (circle(d)) } " " (depth_label(d)) }
            }
        }
    }
}

/// A link to a user's page.
pub(crate) fn user_link(name: &str) -> Markup {
    html! { a href={ "/console/users/" (encode(name)) } { (name) } }
}

/// A link to a role's page.
pub(crate) fn role_link(name: &str) -> Markup {
    html! { a href={ "/console/roles/" (encode(name)) } { (name) } }
}

/// Percent-encodes a path segment or query value.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs a read of the organisation on a blocking thread (a screen may walk every user).
pub(crate) async fn read<T: Send + 'static>(
    c: &Console,
    work: impl FnOnce(&Organization, &OrgRequest) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let handle = Arc::clone(&c.request.handle);
    let request = OrgRequest {
        handle: Arc::clone(&handle),
        acting: c.request.acting,
    };
    tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        work(&loaded.org, &request)
    })
    .await
    .map_err(|e| strata_app::AppError::internal(format!("console read failed: {e}")).into())
}

/// The signed-in user's actor, as the API resolves it for a write.
pub(crate) async fn actor(c: &Console) -> strata_app::Actor {
    let loaded = c.request.handle.read().await;
    c.request.acting.actor(&loaded.org)
}

/// Operations as the signed-in user would send them to the API: each user action runs as the
/// user (`as`), setup operations are authorized for them (D26).
fn as_user(
    ops: Vec<strata_ops::Operation>,
    actor: &strata_app::Actor,
) -> Vec<strata_ops::Operation> {
    match actor.user() {
        None => ops,
        Some(name) => ops
            .into_iter()
            .map(|op| strata_app::run_as(op, name))
            .collect(),
    }
}

/// Writes `ops` as the signed-in user through the application layer (the one write path:
/// authorization, audit, the store); answers the new revision.
pub(crate) async fn write(c: &Console, ops: Vec<strata_ops::Operation>) -> Result<u64, ApiError> {
    let actor = actor(c).await;
    let ops = as_user(ops, &actor);
    let written = c
        .request
        .handle
        .write(Arc::clone(&c.state.store), ops, actor)
        .await?;
    c.state.metrics.wrote(written.changes.len());
    Ok(written.revision)
}

/// Tries `ops` as the signed-in user would write them and rolls them back (D54), showing only
/// the users they may ask about (D56).
pub(crate) async fn dry_run(
    c: &Console,
    ops: Vec<strata_ops::Operation>,
) -> Result<strata_app::DryRun, ApiError> {
    let actor = actor(c).await;
    let ops = as_user(ops, &actor);
    let may_see = crate::dryrun::may_see(&actor);
    Ok(c.request
        .handle
        .dry_run(Arc::clone(&c.state.store), ops, actor, may_see)
        .await?)
}
