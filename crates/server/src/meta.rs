//! Health, readiness, Prometheus metrics, the OpenAPI document, and the answers to unknown
//! routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::schema::ReadyAnswer;

/// Counters exported at `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    authenticated: AtomicU64,
    decisions: AtomicU64,
    operations: AtomicU64,
    latency_us_total: AtomicU64,
}

impl Metrics {
    pub(crate) fn authenticated(&self) {
        self.authenticated.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn decided(&self, n: usize) {
        self.decisions.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn wrote(&self, n: usize) {
        self.operations.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Counts every request, its status class and its latency; logs it.
pub(crate) async fn observe(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let start = std::time::Instant::now();
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = match over_limits(&request) {
        Some(error) => error.into_response(),
        None => match state.shedding.admit(&request) {
            Ok(_admitted) => json_errors(next.run(request).await).await,
            Err(refused) => *refused,
        },
    };
    let m = &state.metrics;
    m.requests.fetch_add(1, Ordering::Relaxed);
    let status = response.status();
    if status.is_client_error() {
        m.client_errors.fetch_add(1, Ordering::Relaxed);
    } else if status.is_server_error() {
        m.server_errors.fetch_add(1, Ordering::Relaxed);
    }
    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    m.latency_us_total.fetch_add(micros, Ordering::Relaxed);
    tracing::debug!(%method, %path, status = status.as_u16(), micros, "request");
    response
}

/// The refusal of a request whose URI or headers are over the server's limits, before routing.
fn over_limits(request: &Request) -> Option<ApiError> {
    use crate::limits::{MAX_HEADER_BYTES, MAX_URI_BYTES};
    if request.uri().to_string().len() > MAX_URI_BYTES {
        return Some(ApiError::new(
            "uri_too_long",
            format!("the request's URI is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (header_bytes > MAX_HEADER_BYTES).then(|| {
        ApiError::new(
            "headers_too_large",
            format!(
                "the request's headers hold {header_bytes} bytes: at most {MAX_HEADER_BYTES} are taken"
            ),
        )
    })
}

/// Rejections made before a handler runs (body over the limit, a bad query string) come as
/// plain text from the framework: they are answered as the same JSON errors as the rest. A
/// `multipart/mixed` answer is a Web API `$batch` that failed at a part (it carries that part's
/// status, as Dataverse answers): its body holds the parts' own errors and goes as it is; so
/// does an HTML page (the console's refusals).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let content_type = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let written = content_type.is_some_and(|v| {
        v.starts_with("application/json")
            || v.starts_with("multipart/mixed")
            || v.starts_with("text/html")
    });
    if written || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "unknown_route",
        s if s.is_server_error() => "internal",
        _ if text.contains("query string") => "bad_query",
        _ => "invalid_request",
    };
    let mut error = ApiError::new(
        code,
        if text.is_empty() {
            status.to_string()
        } else {
            text.clone()
        },
    );
    if let Some(field) = text
        .split("unknown field `")
        .nth(1)
        .or_else(|| text.split("query string: ").nth(1))
        .and_then(|rest| rest.split(['`', ':']).next())
        .filter(|f| !f.is_empty() && !f.contains(' '))
    {
        error = error.at(field.to_owned());
    }
    let mut answer = error.into_response();
    *answer.status_mut() = status;
    answer
}

pub(crate) async fn healthz() -> Response {
    (
        StatusCode::OK,
        axum::Json(crate::schema::HealthAnswer { status: "ok" }),
    )
        .into_response()
}

/// Ready when the database answers and this node has been caught up with it within the
/// configured lag (`--max-lag-ms`); otherwise 503 with the reason. A node recovers by itself:
/// the follower keeps trying, and the pool reconnects.
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let listed = crate::blocking(&state.store, |store| Ok(store.organizations()?)).await;
    let status = state.follow.status();
    let lag = status.caught_up_at.elapsed();
    let lag_ms = u64::try_from(lag.as_millis()).unwrap_or(u64::MAX);
    let max_lag_ms = u64::try_from(state.follow.max_lag.as_millis()).unwrap_or(u64::MAX);
    let isolated = state.registry.isolated();
    let ready = |status: &'static str| ReadyAnswer {
        behind: None,
        code: None,
        error: None,
        isolated: None,
        lag_ms,
        organizations: None,
        status,
    };
    let (code, answer) = match listed {
        // An organisation whose log failed verification is not served: named here, with 503,
        // while the others are served.
        Ok(listed) if !isolated.is_empty() => (
            StatusCode::SERVICE_UNAVAILABLE,
            ReadyAnswer {
                behind: Some(state.registry.behind(&listed)),
                code: Some("corrupt_log".to_owned()),
                error: Some(format!(
                    "{} organization(s) not served, their operation log failed verification: {}",
                    isolated.len(),
                    isolated
                        .iter()
                        .map(|(n, _)| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                isolated: Some(
                    isolated
                        .iter()
                        .map(|(n, e)| crate::schema::IsolatedOrg {
                            code: e.code.to_owned(),
                            error: e.message.clone(),
                            organization: n.clone(),
                        })
                        .collect(),
                ),
                organizations: Some(listed.len()),
                ..ready("degraded")
            },
        ),
        Ok(listed) if lag <= state.follow.max_lag => (
            StatusCode::OK,
            ReadyAnswer {
                behind: Some(state.registry.behind(&listed)),
                organizations: Some(listed.len()),
                ..ready("ready")
            },
        ),
        Ok(listed) => (
            StatusCode::SERVICE_UNAVAILABLE,
            ReadyAnswer {
                behind: Some(state.registry.behind(&listed)),
                code: Some("behind".to_owned()),
                error: Some(format!(
                    "this node has not been caught up with the database for {lag_ms} ms (at most {max_lag_ms} ms allowed){}",
                    status.error.map(|e| format!(": {e}")).unwrap_or_default()
                )),
                ..ready("behind")
            },
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            ReadyAnswer {
                code: Some(e.code.to_owned()),
                error: Some(e.message.clone()),
                ..ready("unavailable")
            },
        ),
    };
    (code, axum::Json(answer)).into_response()
}

pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let m = &state.metrics;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let mut text = String::new();
    let mut counter = |name: &str, help: &str, value: u64| {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    };
    counter(
        "strata_http_requests_total",
        "HTTP requests answered.",
        get(&m.requests),
    );
    counter(
        "strata_http_client_errors_total",
        "Requests answered with a 4xx status.",
        get(&m.client_errors),
    );
    counter(
        "strata_http_server_errors_total",
        "Requests answered with a 5xx status.",
        get(&m.server_errors),
    );
    counter(
        "strata_http_request_duration_microseconds_total",
        "Time spent answering requests.",
        get(&m.latency_us_total),
    );
    counter(
        "strata_authenticated_requests_total",
        "Requests with valid credentials.",
        get(&m.authenticated),
    );
    counter(
        "strata_decisions_total",
        "Access decisions made.",
        get(&m.decisions),
    );
    counter(
        "strata_operations_total",
        "Operations written.",
        get(&m.operations),
    );
    counter(
        "strata_writes_forwarded_total",
        "Writes sent to their organisation's write leader, another node, and answered by it (D150).",
        get(&state.leadership.forwarded),
    );
    counter(
        "strata_writes_leader_unreachable_total",
        "Writes made here because their organisation's write leader could not be reached.",
        get(&state.leadership.fell_back),
    );
    let commits = strata_app::commit_stats();
    counter(
        "strata_group_commits_total",
        "Store transactions that committed a group of writes.",
        commits.commits,
    );
    counter(
        "strata_group_commit_writes_total",
        "Writes (requests) those transactions committed.",
        commits.writes,
    );
    counter(
        "strata_group_commit_operations_total",
        "Operations those transactions committed.",
        commits.operations,
    );
    counter(
        "strata_group_commit_store_microseconds_total",
        "Time spent in those transactions, their fsync included.",
        commits.store_micros,
    );
    text.push_str(&format!(
        "# HELP strata_organizations Organizations hosted.\n# TYPE strata_organizations gauge\nstrata_organizations {}\n",
        state.registry.list().len()
    ));
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

pub(crate) async fn unknown_route(request: Request) -> Response {
    ApiError::new(
        "unknown_route",
        format!("no route `{} {}`", request.method(), request.uri().path()),
    )
    .into_response()
}

pub(crate) async fn method_not_allowed(request: Request) -> Response {
    ApiError::new(
        "method_not_allowed",
        format!(
            "`{}` is not allowed on `{}`",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

pub(crate) async fn openapi() -> Response {
    (StatusCode::OK, axum::Json(document())).into_response()
}

/// A Web API operation (docs/webapi.md): its summary, the bearer key, and the answers (the
/// Web API answers OData JSON and Dataverse's errors, not described here).
fn web_op(summary: &str) -> serde_json::Value {
    json!({
        "summary": summary,
        "security": [{ "apiKey": [] }],
        "responses": {
            "200": { "description": "OK", "content": { "application/json": {} } },
            "4XX": { "description": "Error", "content": { "application/json": {} } }
        }
    })
}

/// The OpenAPI 3.1 document of the API: every native and AuthZEN route generated from the
/// route table and the types of its requests and answers (`routes.rs`, `schema.rs`), and the
/// Web API's routes with their summaries.
#[must_use]
pub fn document() -> serde_json::Value {
    use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
    let (native, schemas) = crate::routes::paths();
    let components = utoipa::openapi::ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "apiKey",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .build();
    let api = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Strata")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("The Dataverse security model as a service")),
        )
        .paths(native)
        .components(Some(components))
        .build();
    let mut document = serde_json::to_value(&api).unwrap_or_else(|_| json!({}));
    document["openapi"] = json!("3.1.0");
    // The error code: one of the stable codes.
    if let Some(code) = document
        .pointer_mut("/components/schemas/ErrorDetail/properties/code")
        .and_then(serde_json::Value::as_object_mut)
    {
        code.insert(
            "enum".to_owned(),
            json!(
                crate::error::CODES
                    .iter()
                    .map(|(c, _, _)| *c)
                    .collect::<Vec<_>>()
            ),
        );
        code.insert(
            "description".to_owned(),
            json!("stable code; docs/errors.md gives each one's HTTP status and meaning"),
        );
    }
    let mut paths = serde_json::Map::new();
    let mut add = |path: String, method: &str, summary: &str| {
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[method] = web_op(summary);
    };
    // The Dataverse Web API (docs/webapi.md): OData routes under every version.
    let data = "/api/data/{version}";
    for (path, method, summary) in [
        (
            format!("{data}/"),
            "get",
            "Web API: the service document (every entity set)",
        ),
        (
            format!("{data}/$metadata"),
            "get",
            "Web API: CSDL XML of entity types, keys, properties and navigation properties",
        ),
        (
            format!("{data}/EntityDefinitions"),
            "get",
            "Web API: table metadata ($select; $filter on LogicalName; keys (LogicalName='x') and (<MetadataId>); /Attributes and typed casts)",
        ),
        (
            format!("{data}/WhoAmI()"),
            "get",
            "Web API: UserId, BusinessUnitId, OrganizationId",
        ),
        (
            format!("{data}/{{entityset}}"),
            "get",
            "Web API: records the caller may read ($select, $filter, $orderby, $top, $count, $expand; Prefer: odata.maxpagesize; absolute @odata.nextLink)",
        ),
        (
            format!("{data}/{{entityset}}"),
            "post",
            "Web API: create (204 and OData-EntityId; Prefer: return=representation gives 201 and the record)",
        ),
        (
            format!("{data}/{{entityset}}/$count"),
            "get",
            "Web API: how many records the caller may read (text/plain)",
        ),
        (
            format!("{data}/{{entityset}}({{key}})"),
            "get",
            "Web API: one record by GUID or alternate key ($select, $expand)",
        ),
        (
            format!("{data}/{{entityset}}({{key}})"),
            "patch",
            "Web API: update (If-Match), create only (If-None-Match: *), or upsert",
        ),
        (
            format!("{data}/{{entityset}}({{key}})"),
            "delete",
            "Web API: delete (If-Match)",
        ),
        (
            format!("{data}/{{entityset}}({{key}})/{{navigation}}/$ref"),
            "post",
            "Web API: associate (team membership, roles, one-to-many relationships)",
        ),
        (
            format!("{data}/{{entityset}}({{key}})/{{navigation}}/$ref"),
            "put",
            "Web API: set a single-valued lookup",
        ),
        (
            format!("{data}/{{entityset}}({{key}})/{{navigation}}/$ref"),
            "delete",
            "Web API: disassociate (`?$id=` or a single-valued lookup)",
        ),
        (
            format!("{data}/{{entityset}}({{key}})/{{operation}}"),
            "get",
            "Web API: bound functions (RetrievePrincipalAccess, RetrieveUserPrivileges)",
        ),
        (
            format!("{data}/{{entityset}}({{key}})/{{operation}}"),
            "post",
            "Web API: bound actions (AddMembersTeam, RemoveMembersTeam, AddUserToRecordTeam, RemoveUserFromRecordTeam)",
        ),
        (
            format!("{data}/{{entityset}}/{{operation}}"),
            "post",
            "Web API: CreateMultiple, UpdateMultiple, UpsertMultiple (all or nothing)",
        ),
        (
            format!("{data}/{{operation}}"),
            "get",
            "Web API: unbound functions (RetrievePrincipalAccess, RetrieveSharedPrincipalsAndAccess)",
        ),
        (
            format!("{data}/{{operation}}"),
            "post",
            "Web API: unbound actions (GrantAccess, ModifyAccess, RevokeAccess)",
        ),
        (
            format!("{data}/$batch"),
            "post",
            "Web API: multipart/mixed batch; change sets commit atomically; Content-ID references",
        ),
    ] {
        add(path, method, summary);
    }
    if let Some(native) = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    {
        native.extend(paths);
    }
    document
}
