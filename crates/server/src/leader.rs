//! Several nodes, one writer per organisation (D150).
//!
//! Nodes sharing a PostgreSQL database may each write every organisation: the store's row lock
//! keeps the log in order. But two nodes writing one organisation take turns on that lock, and
//! each applies the other's operations before its own, so two nodes write no faster than one.
//! So a node started with `--advertise-url` takes a **write lease** on each organisation it
//! writes: a row in the store naming the node and where it takes requests, renewed while it
//! writes and run out when it stops (or given up when it shuts down). Another node that knows
//! the lease **forwards** each write to the holder as it came — the caller's own request,
//! credentials included, so the leader authenticates and authorizes it itself and no trust
//! between nodes is added — and answers only once its own memory holds the revision the leader
//! answered (`Strata-Revision`), so the caller reads its write on either node.
//!
//! Forwarding is a shortcut, never a rule: a node that cannot reach the leader (the connection
//! fails before anything is sent) writes itself, which the store's lock keeps correct; a
//! request that arrives forwarded (`Strata-Forwarded`) is written where it arrives, so a
//! request is forwarded at most once whatever the nodes believe; and a caller that sends that
//! header itself only makes the node write, as it always may.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use strata_store::{LeaseClaim, WriteLease};

use crate::error::ApiError;
use crate::{AppState, blocking, limits, request};

/// Sent with a forwarded request, naming the node that forwarded it: the request is written
/// where it arrives.
pub(crate) const FORWARDED: HeaderName = HeaderName::from_static("strata-forwarded");

/// On the answer to a forwarded write: the organisation's revision on the node that wrote it,
/// once the write was made (the forwarding node answers once it holds that revision too).
pub(crate) const REVISION: HeaderName = HeaderName::from_static("strata-revision");

/// How long a write lease runs unless renewed, by default; the holder renews it every third
/// of that while it writes.
pub const DEFAULT_WRITE_LEASE: Duration = Duration::from_secs(3);

/// How long a node waits for the leader's answer to a forwarded write.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a node tries to connect to the leader before it writes itself.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Checks an `--advertise-url`: `http://host:port` or `https://host:port` (a path prefix
/// allowed, nothing else).
///
/// # Errors
/// What is wrong with it.
pub fn check_advertise_url(url: &str) -> Result<String, String> {
    let parsed: Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        return Err(format!("`{url}` must begin with http:// or https://"));
    }
    let Some(authority) = parsed.authority() else {
        return Err(format!("`{url}` names no host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!("`{url}` must not carry credentials"));
    }
    if authority.port_u16().is_none_or(|p| p == 0) && authority.port().is_some() {
        return Err(format!("`{url}` names port 0"));
    }
    if parsed.query().is_some() {
        return Err(format!("`{url}` must not carry a query"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// The node another node forwards an organisation's writes to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Leader {
    node: String,
    url: String,
}

/// What this node knows of an organisation's write lease.
#[derive(Debug)]
struct Known {
    /// `None`: this node holds it.
    leader: Option<Leader>,
    /// When the lease runs out, as the store last said.
    until: Instant,
    /// A write was forwarded since the keeper last looked at the lease.
    forwarded: bool,
    /// The leader could not be reached: write here until then.
    unreachable_until: Option<Instant>,
}

/// The write routes and leases of one node.
pub(crate) struct Leadership {
    /// This node (random, made when the server starts).
    pub(crate) node: String,
    /// Where other nodes reach this one; without it, this node never takes a lease.
    url: Option<String>,
    lease: Duration,
    known: Mutex<HashMap<String, Known>>,
    /// Some organisation is led by another node (the common one-node case skips the rest).
    elsewhere: AtomicBool,
    /// The native routes that write: method, path segments (`{…}` matches any) and the
    /// largest body the route reads.
    write_routes: Vec<(Method, Vec<String>, usize)>,
    client: Client<crate::peer::Connector, Body>,
    /// Writes forwarded, and writes made here because the leader could not be reached.
    pub(crate) forwarded: AtomicU64,
    pub(crate) fell_back: AtomicU64,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("node", &self.node)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Leadership {
    pub(crate) fn new(
        node: String,
        url: Option<String>,
        lease: Duration,
        table: &crate::routes::Table,
        connector: crate::peer::Connector,
    ) -> Leadership {
        let write_routes = table
            .routes
            .iter()
            .filter(|r| r.writes)
            .map(|r| {
                let method = serde_json::to_value(&r.method)
                    .ok()
                    .and_then(|m| m.as_str().and_then(|m| m.to_uppercase().parse().ok()))
                    .unwrap_or(Method::POST);
                let segments = r.path.split('/').map(str::to_owned).collect();
                (method, segments, r.body_bytes)
            })
            .collect();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Leadership {
            node,
            url,
            lease,
            known: Mutex::default(),
            elsewhere: AtomicBool::new(false),
            write_routes,
            client,
            forwarded: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a request changes its organisation — a native write route (not a dry run), or
    /// any Web API request but a read (a `$batch` may hold writes) — with the largest body its
    /// route reads.
    fn writes(&self, method: &Method, uri: &Uri) -> Option<usize> {
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return None;
        }
        if uri.path().starts_with("/api/data/") {
            return Some(limits::MAX_BODY_BYTES);
        }
        if uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "dry_run=true"))
        {
            return None;
        }
        let segments: Vec<&str> = uri.path().split('/').collect();
        self.write_routes
            .iter()
            .find(|(m, template, _)| {
                m == method
                    && template.len() == segments.len()
                    && template.iter().zip(&segments).all(|(t, s)| {
                        (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                    })
            })
            .map(|(_, _, body)| *body)
    }

    /// The node to forward a write of `org` to: one that holds a running lease and has not
    /// just failed to answer; `None` to write here.
    fn leader_of(&self, org: &str) -> Option<Leader> {
        let mut known = self.known();
        let k = known.get_mut(org)?;
        let now = Instant::now();
        if k.until <= now || k.unreachable_until.is_some_and(|u| u > now) {
            return None;
        }
        let leader = k.leader.clone()?;
        k.forwarded = true;
        Some(leader)
    }

    /// The leader of `org` could not be reached: write here until the lease would run out.
    fn unreachable(&self, org: &str, leader: &Leader) {
        if let Some(k) = self.known().get_mut(org)
            && k.leader.as_ref() == Some(leader)
        {
            k.unreachable_until = Some(Instant::now() + self.lease);
        }
    }

    /// The organisations whose writes were forwarded since the last call.
    fn take_forwarded(&self) -> Vec<String> {
        self.known()
            .iter_mut()
            .filter_map(|(org, k)| std::mem::take(&mut k.forwarded).then(|| org.clone()))
            .collect()
    }

    /// What the store said of the leases of `asked`.
    fn learn(&self, asked: &[String], leases: &[WriteLease]) {
        let now = Instant::now();
        let mut known = self.known();
        for org in asked {
            let Some(lease) = leases.iter().find(|l| &l.organization == org) else {
                known.remove(org);
                continue;
            };
            let leader = (lease.node != self.node).then(|| Leader {
                node: lease.node.clone(),
                url: lease.url.clone(),
            });
            let until = now + Duration::from_millis(u64::try_from(lease.remaining_ms).unwrap_or(0));
            let k = known.entry(org.clone()).or_insert(Known {
                leader: None,
                until,
                forwarded: false,
                unreachable_until: None,
            });
            if k.leader != leader {
                if let Some(l) = &leader {
                    tracing::info!(org = %org, leader = %l.node, url = %l.url, "writes go to another node");
                } else {
                    tracing::info!(org = %org, "this node takes the writes");
                }
                k.unreachable_until = None;
            }
            k.leader = leader;
            k.until = until;
        }
        let elsewhere = known.values().any(|k| k.leader.is_some());
        self.elsewhere.store(elsewhere, Ordering::Relaxed);
    }
}

/// Sends a write to its organisation's leader when another node holds the lease; answers a
/// forwarded write with the revision it reached.
pub(crate) async fn route_writes(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let leadership = &state.leadership;
    let forwarded = request.headers().contains_key(&FORWARDED);
    // The common case first: no organisation is led elsewhere and nothing came forwarded, so
    // the request is not even matched against the write routes.
    if !forwarded && !leadership.elsewhere.load(Ordering::Relaxed) {
        return next.run(request).await;
    }
    let Some(body_limit) = leadership.writes(request.method(), request.uri()) else {
        return next.run(request).await;
    };
    if forwarded {
        return answer_forwarded(&state, request, next).await;
    }
    // The caller is authenticated here first: a request without valid credentials is
    // refused where it arrives, never sent on.
    let Ok(org) = request::organization_of(&state, request.uri().path(), request.headers()).await
    else {
        return next.run(request).await;
    };
    match leadership.leader_of(&org) {
        None => next.run(request).await,
        Some(leader) => forward(&state, &org, &leader, body_limit, request, next).await,
    }
}

/// A forwarded write, made here: its answer carries the organisation's revision after it (only
/// when it succeeded, so that it tells nothing a caller may not read).
async fn answer_forwarded(state: &Arc<AppState>, request: Request, next: Next) -> Response {
    let org = request::organization_of(state, request.uri().path(), request.headers())
        .await
        .ok();
    let mut response = next.run(request).await;
    if response.status().is_success()
        && let Some(org) = org
        && let Ok(handle) = state.registry.get(&org)
    {
        response
            .headers_mut()
            .insert(REVISION, HeaderValue::from(handle.applied()));
    }
    response
}

/// Headers that belong to one connection, not to the request or answer they travel with
/// (`Expect` was answered by this node already, which read the whole body).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "expect"
    ) || name == FORWARDED
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !hop_by_hop(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// Sends the request to the leader and answers what it answers, once this node holds the
/// revision the leader reached; writes here when the leader cannot be reached.
async fn forward(
    state: &Arc<AppState>,
    org: &str,
    leader: &Leader,
    body_limit: usize,
    request: Request,
    next: Next,
) -> Response {
    let leadership = &state.leadership;
    let (parts, body) = request.into_parts();
    // Read whole (bounded as the route bounds it), so that it can still be written here.
    let Ok(body) = axum::body::to_bytes(body, body_limit).await else {
        return ApiError::new(
            "payload_too_large",
            format!("the body is larger than {body_limit} bytes"),
        )
        .into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let sent = match format!("{}{path}", leader.url).parse::<Uri>() {
        Ok(uri) => {
            let mut out = Request::new(Body::from(body.clone()));
            *out.method_mut() = parts.method.clone();
            *out.uri_mut() = uri;
            copy_headers(&parts.headers, out.headers_mut());
            if let Ok(node) = HeaderValue::from_str(&leadership.node) {
                out.headers_mut().insert(FORWARDED, node);
            }
            tokio::time::timeout(FORWARD_TIMEOUT, leadership.client.request(out)).await
        }
        Err(_) => {
            leadership.unreachable(org, leader);
            return next.run(Request::from_parts(parts, Body::from(body))).await;
        }
    };
    match sent {
        Ok(Ok(answer)) => {
            leadership.forwarded.fetch_add(1, Ordering::Relaxed);
            let revision = answer
                .headers()
                .get(&REVISION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if answer.status().is_success()
                && let Some(revision) = revision
            {
                reach(state, org, revision).await;
            }
            let (from, incoming) = answer.into_parts();
            let mut response = Response::new(Body::new(incoming));
            *response.status_mut() = from.status;
            copy_headers(&from.headers, response.headers_mut());
            response
        }
        Ok(Err(e)) if e.is_connect() => {
            tracing::warn!(org = %org, leader = %leader.node, url = %leader.url, error = %e, "cannot reach the write leader: writing here");
            leadership.unreachable(org, leader);
            leadership.fell_back.fetch_add(1, Ordering::Relaxed);
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Ok(Err(e)) => leader_failed(org, leader, &e.to_string()),
        Err(_) => leader_failed(
            org,
            leader,
            &format!("no answer within {} s", FORWARD_TIMEOUT.as_secs()),
        ),
    }
}

/// The leader took the request but gave no answer: whether the write was made is not known.
fn leader_failed(org: &str, leader: &Leader, why: &str) -> Response {
    tracing::warn!(org = %org, leader = %leader.node, url = %leader.url, error = %why, "the write leader did not answer");
    ApiError::new(
        "write_leader_failed",
        format!(
            "this node sent the write to organization `{org}`'s write leader ({}), which did not answer ({why}): the write may or may not have been made; read before retrying",
            leader.url
        ),
    )
    .into_response()
}

/// Waits until this node holds `revision` of `org` (bounded by `--min-revision-timeout-ms`):
/// the forwarded write's answer then holds here too. Past the wait, the answer goes anyway —
/// the write was made — and a read naming the revision waits for it.
async fn reach(state: &Arc<AppState>, org: &str, revision: u64) {
    let handle = match state.registry.get(org) {
        Ok(handle) => handle,
        Err(_) => {
            let (app, name) = (Arc::clone(state), org.to_owned());
            match blocking(&state.store, move |store| {
                Ok(app.registry.find(store, &name)?)
            })
            .await
            {
                Ok(handle) => handle,
                Err(e) => {
                    tracing::warn!(org = %org, error = %e.message, "a forwarded write's organisation");
                    return;
                }
            }
        }
    };
    if let Err(e) = request::ready(state, &handle, revision).await {
        tracing::warn!(org = %org, revision, error = %e.message, "a forwarded write's revision");
    }
}

/// Keeps this node's view of the write leases until the server's state is dropped: every
/// third of a lease, the leases of the organisations written or forwarded since the last look
/// are taken or renewed (with `--advertise-url`) or read.
pub(crate) fn keep_leases(state: Weak<AppState>) {
    let mut asked: HashMap<String, u64> = HashMap::new();
    loop {
        let Some(app) = state.upgrade() else {
            return;
        };
        let leadership = &app.leadership;
        let mut active = leadership.take_forwarded();
        let listed = app.registry.list();
        asked.retain(|name, _| listed.iter().any(|(n, _)| n == name));
        for (name, _) in listed {
            let Ok(handle) = app.registry.get(&name) else {
                continue;
            };
            let writes = handle.writes_asked();
            if asked.insert(name.clone(), writes).unwrap_or(0) != writes && !active.contains(&name)
            {
                active.push(name);
            }
        }
        if !active.is_empty() {
            let ttl_ms = i64::try_from(leadership.lease.as_millis()).unwrap_or(i64::MAX);
            let claim = leadership.url.as_deref().map(|url| LeaseClaim {
                node: &leadership.node,
                url,
                ttl_ms,
            });
            match app.store.write_leases(&active, claim.as_ref()) {
                Ok(leases) => leadership.learn(&active, &leases),
                Err(e) => tracing::warn!(error = %e, "cannot read the write leases"),
            }
        }
        let pause = leadership.lease / 3;
        drop(app);
        std::thread::sleep(pause);
    }
}

/// Gives up this node's leases (it is stopping), so that another node takes the writes at once.
pub(crate) fn release(state: &AppState) {
    if state.leadership.url.is_some()
        && let Err(e) = state.store.release_write_leases(&state.leadership.node)
    {
        tracing::warn!(error = %e, "cannot give up the write leases");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_advertise_url_is_plain_http_to_a_host() {
        assert_eq!(
            check_advertise_url("http://10.0.0.5:8080/").unwrap(),
            "http://10.0.0.5:8080"
        );
        assert!(check_advertise_url("http://node-a.internal:8080").is_ok());
        assert!(check_advertise_url("https://node-a.internal:8443").is_ok());
        for (bad, why) in [
            ("ftp://node-a", "must begin with http://"),
            ("node-a:8080", "must begin with http://"),
            ("http://user:pw@node-a:8080", "credentials"),
            ("http://node-a:8080/?x=1", "query"),
            ("http://node-a:0", "port 0"),
            ("not a url", "not a URL"),
        ] {
            let e = check_advertise_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_write_routes_are_the_ones_the_table_marks_and_the_web_api_s_changes() {
        let leadership = Leadership::new(
            "n".to_owned(),
            None,
            DEFAULT_WRITE_LEASE,
            &crate::route_table(),
            crate::peer::Connector::new(&[], CONNECT_TIMEOUT).unwrap(),
        );
        let writes =
            |method: Method, uri: &str| leadership.writes(&method, &uri.parse().unwrap()).is_some();
        assert!(writes(Method::POST, "/api/v1/orgs/o/operations"));
        assert!(writes(
            Method::POST,
            "/api/v1/orgs/o/operations?min_revision=3"
        ));
        assert!(!writes(
            Method::POST,
            "/api/v1/orgs/o/operations?dry_run=true"
        ));
        assert!(writes(
            Method::PUT,
            "/api/v1/orgs/o/roles/Rep/privileges/account/read"
        ));
        assert!(writes(Method::DELETE, "/api/v1/orgs/o/roles/Rep"));
        assert!(writes(
            Method::POST,
            "/api/v1/orgs/o/roles/import?dry_run=false"
        ));
        assert!(writes(Method::PATCH, "/api/data/v9.2/accounts(1)"));
        assert!(writes(Method::POST, "/api/data/v9.2/$batch"));
        // Reads, and changes that are not the organisation's operations.
        assert!(!writes(Method::GET, "/api/v1/orgs/o/operations"));
        assert!(!writes(Method::GET, "/api/data/v9.2/accounts"));
        assert!(!writes(Method::POST, "/api/v1/orgs/o/check"));
        assert!(!writes(Method::POST, "/api/v1/orgs/o/columns/explain"));
        assert!(!writes(Method::POST, "/api/v1/orgs/o/api-keys"));
        assert!(!writes(Method::DELETE, "/api/v1/orgs/o"));
        assert!(!writes(Method::POST, "/api/v1/orgs"));
        assert!(!writes(Method::POST, "/access/v1/evaluation"));
        assert!(!writes(Method::POST, "/api/v1/orgs//operations"));
    }
}
