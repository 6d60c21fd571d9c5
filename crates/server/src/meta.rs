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
        None => json_errors(next.run(request).await).await,
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
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
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
    match listed {
        // An organisation whose log failed verification is not served: named here, with 503,
        // while the others are served.
        Ok(listed) if !isolated.is_empty() => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "status": "degraded",
                "code": "corrupt_log",
                "error": format!(
                    "{} organization(s) not served, their operation log failed verification: {}",
                    isolated.len(),
                    isolated.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ),
                "isolated": isolated
                    .iter()
                    .map(|(n, e)| json!({"organization": n, "code": e.code, "error": e.message}))
                    .collect::<Vec<_>>(),
                "organizations": listed.len(),
                "behind": state.registry.behind(&listed),
                "lag_ms": lag_ms,
            })),
        )
            .into_response(),
        Ok(listed) if lag <= state.follow.max_lag => (
            StatusCode::OK,
            axum::Json(json!({
                "status": "ready",
                "organizations": listed.len(),
                "behind": state.registry.behind(&listed),
                "lag_ms": lag_ms,
            })),
        )
            .into_response(),
        Ok(listed) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "status": "behind",
                "code": "behind",
                "error": format!(
                    "this node has not been caught up with the database for {lag_ms} ms (at most {max_lag_ms} ms allowed){}",
                    status.error.map(|e| format!(": {e}")).unwrap_or_default()
                ),
                "behind": state.registry.behind(&listed),
                "lag_ms": lag_ms,
            })),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "status": "unavailable",
                "error": e.message,
                "code": e.code,
                "lag_ms": lag_ms,
            })),
        )
            .into_response(),
    }
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

fn op(summary: &str, auth: bool) -> serde_json::Value {
    let mut o = json!({
        "summary": summary,
        "responses": {
            "200": { "description": "OK", "content": { "application/json": {} } },
            "4XX": { "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
        }
    });
    if auth {
        o["security"] = json!([{ "apiKey": [] }]);
        o["parameters"] = json!([
            { "name": "MSCRMCallerID", "in": "header", "required": false, "schema": { "type": "string" },
              "description": "act on behalf of this user (needs prvActOnBehalfOfAnotherUser): every decision must hold for both users, and data is what both may read (D7, D27)" },
            { "name": "min_revision", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0 },
              "description": "answer once this node has applied this revision (or fail with revision_not_reached)" }
        ]);
    }
    o
}

/// The OpenAPI 3.1 document of the API.
#[must_use]
pub fn document() -> serde_json::Value {
    let org = "/api/v1/orgs/{org}";
    let mut paths = serde_json::Map::new();
    let mut add = |path: String, method: &str, summary: &str, auth: bool| {
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[method] = op(summary, auth);
    };
    add("/healthz".into(), "get", "Liveness", false);
    add(
        "/readyz".into(),
        "get",
        "Readiness: the database answers, this node is caught up with it (within --max-lag-ms), and no organization is isolated for an operation log that failed verification",
        false,
    );
    add("/metrics".into(), "get", "Prometheus metrics", false);
    add("/api/v1/openapi.json".into(), "get", "This document", false);
    add(
        "/api/v1/orgs".into(),
        "post",
        "Create an organization (root key)",
        true,
    );
    add(
        "/api/v1/orgs".into(),
        "get",
        "List organizations (root key)",
        true,
    );
    add(
        org.into(),
        "delete",
        "Delete an organization (root key)",
        true,
    );
    add(
        format!("{org}/revision"),
        "get",
        "The organization's revision",
        true,
    );
    add(
        format!("{org}/digest"),
        "get",
        "SHA-256 of the canonical dump at this node's revision, and whether the indexes equal a rebuild (root key, System Administrators)",
        true,
    );
    add(
        format!("{org}/model"),
        "get",
        "The configuration: units, tables, roles and grids, users, teams, profiles, settings (System Administrators)",
        true,
    );
    add(
        format!("{org}/users/{{user}}/privileges"),
        "get",
        "What a user can do: privileges per table with depth and source",
        true,
    );
    add(
        format!("{org}/operations"),
        "post",
        "Apply one operation or a list, atomically; returns the revision (`?min_revision=` applies that revision first). With `?dry_run=true`: authorized and applied in memory, then rolled back — nothing written, no audit, no revision; answers the changes and the access difference (users' privileges gained or lost with their sources, records gained or lost on Read per table)",
        true,
    );
    add(
        format!("{org}/check"),
        "post",
        "Check a privilege on a record (or create against an owner)",
        true,
    );
    add(
        format!("{org}/explain"),
        "post",
        "Explain a decision: every grant path, or what is missing",
        true,
    );
    add(
        format!("{org}/records/{{id}}"),
        "get",
        "The record as the user sees it (column security applied)",
        true,
    );
    add(
        format!("{org}/records/{{id}}/access"),
        "get",
        "Effective rights (RetrievePrincipalAccess)",
        true,
    );
    add(
        format!("{org}/records/{{id}}/who-has-access"),
        "get",
        "Users holding a privilege on the record",
        true,
    );
    add(
        format!("{org}/tables/{{table}}/records"),
        "get",
        "Readable records of a table, by cursor pages: filter, orderby, count, limit, cursor; select=a,b adds rows with those columns as the caller sees them",
        true,
    );
    add(
        format!("{org}/apps/{{app}}/access"),
        "get",
        "Whether the user opens the app and how, or every reason not (never null), and the needs the user's roles do not meet",
        true,
    );
    add(
        format!("{org}/audit"),
        "get",
        "Audit entries by record, user and time, by pages",
        true,
    );
    add(
        format!("{org}/audit/verify"),
        "get",
        "Verify the audit hash chain",
        true,
    );
    add(
        format!("{org}/api-keys"),
        "post",
        "Create an API key for a user",
        true,
    );
    for (path, summary) in crate::admin_licences::OPENAPI {
        add(format!("{org}{path}"), "get", summary, true);
    }
    add(
        "/access/v1/evaluation".into(),
        "post",
        "AuthZEN: one evaluation",
        true,
    );
    add(
        "/access/v1/evaluations".into(),
        "post",
        "AuthZEN: a batch of evaluations",
        true,
    );
    add(
        "/access/v1/search/resource".into(),
        "post",
        "AuthZEN: resources a subject may act on",
        true,
    );
    for (path, method, summary) in crate::admin_apps::DOCUMENTED {
        add(format!("{org}{path}"), method, summary, true);
    }
    // Roles as things to manage (admin_roles.rs; D42–D44).
    for (path, method, summary) in [
        (
            format!("{org}/roles/{{role}}"),
            "get",
            "Describe a role: unit, inheritance, deprecation, the grid with depth names, miscellaneous privileges, apps (Read on `role`, D42)",
        ),
        (
            format!("{org}/roles/{{role}}"),
            "delete",
            "Delete a role; refused (`role_in_use`) while held or associated with apps unless `?replacement=` names the role every holder and app moves to",
        ),
        (
            format!("{org}/roles/{{role}}/holders"),
            "get",
            "Who holds a role: users directly, teams, and the teams' members with the team (Read on `role`, D42)",
        ),
        (
            format!("{org}/roles/{{role}}/assigners"),
            "get",
            "Who may assign a role (D20 and D11 for every user), with the units whose principals they may give it to",
        ),
        (
            format!("{org}/roles/{{role}}/compare/{{other}}"),
            "get",
            "Two roles side by side: every table x privilege with both depths, mismatches marked, miscellaneous privileges",
        ),
        (
            format!("{org}/users/{{user}}/compare/{{other}}"),
            "get",
            "Two users' effective permissions side by side: depth and source role (direct or via team) per cell, mismatches marked (D35 for each user)",
        ),
        (
            format!("{org}/roles/{{role}}/copy"),
            "post",
            "Copy a role under `{name}`: same grid, miscellaneous privileges, unit and inheritance",
        ),
        (
            format!("{org}/roles/{{role}}/rename"),
            "post",
            "Rename a role to `{name}` (not System Administrator)",
        ),
        (
            format!("{org}/roles/{{role}}/replace"),
            "post",
            "Replace the role by `{replacement}` for every user and team holding it, in one audited change",
        ),
        (
            format!("{org}/roles/{{role}}/deprecation"),
            "post",
            "Deprecate a role with `{message, successors}`: assigning it is then refused (`role_deprecated`) naming the successors",
        ),
        (
            format!("{org}/roles/{{role}}/deprecation"),
            "delete",
            "Take a role's deprecation back",
        ),
        (
            format!("{org}/roles/{{role}}/privileges/{{table}}/{{privilege}}"),
            "put",
            "Set one cell of a role's grid to `{depth}` (D11 for the resulting grid)",
        ),
        (
            format!("{org}/tables/{{table}}/columns"),
            "post",
            "Add `{columns}` to an existing table (customization: System Administrators, D32)",
        ),
    ] {
        add(path, method, summary, true);
    }
    add(
        format!("{org}/rules"),
        "get",
        "The role rules in force (requires, excludes, direct only) that the caller may read: Read on `role` over every role a rule names (D47)",
        true,
    );
    add(
        format!("{org}/rules"),
        "post",
        "Add a role rule: `role` and one of `requires` (roles), `excludes` (a role), `direct_only: true`; contradictory rules, cycles and rules on System Administrator are refused (D45–D47)",
        true,
    );
    add(
        format!("{org}/rules"),
        "delete",
        "Remove the role rule the body names (as for adding one)",
        true,
    );
    add(
        format!("{org}/rules/violations"),
        "get",
        "Users breaking a role rule (assignments that predate it, D46): user, rule, the missing or conflicting role, directly or through which teams; `?user=` for one user (D35)",
        true,
    );
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
        add(path, method, summary, true);
    }
    crate::admin_rules::document(&mut paths, org);
    crate::dryrun::document(&mut paths, &format!("{org}/operations"));
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Strata", "version": env!("CARGO_PKG_VERSION"), "description": "The Dataverse security model as a service" },
        "paths": paths,
        "components": {
            "securitySchemes": { "apiKey": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "properties": {
                        "code": { "type": "string", "enum": crate::error::CODES.iter().map(|(c, _, _)| *c).collect::<Vec<_>>(),
                            "description": "stable code; docs/errors.md gives each one's HTTP status and meaning" },
                        "message": { "type": "string" },
                        "field": { "type": "string", "description": "a JSON Pointer into the body (`/0/fields/name`), or the query parameter or header at fault" }
                    }, "required": ["code", "message"] } }
                },
                "RoleRule": crate::admin_rules::rule_schema(),
                "RuleViolation": crate::admin_rules::violation_schema()
            }
        }
    })
}
