//! The Dataverse Web API (`/api/data/v9.2/`, also `v9.0` and `v9.1`): what existing Dataverse
//! clients send, answered by the same request opening, engine decisions, write path and audit
//! as the native API. This module only translates: an OData request becomes the same
//! operations (`strata_ops::Operation`) and questions the native API uses, and their answers
//! become Dataverse's JSON. It holds no rule of its own.
//!
//! The map of what is supported is `docs/webapi.md`.

mod aggregate;
mod batch;
mod entity;
mod expand;
mod fetch;
mod messages;
mod metadata;
mod path;
mod records;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use crate::AppState;
use crate::error::ApiError;
use crate::request::OrgRequest;
use path::{Path, Segment};

/// The versions answered.
pub const VERSIONS: [&str; 3] = ["v9.0", "v9.1", "v9.2"];

/// Limits of the Web API (each enforced with an error naming it).
pub mod limits {
    /// Dataverse's largest page (`Prefer: odata.maxpagesize`, and the default page).
    pub const MAX_PAGE: usize = 5_000;
    /// The most records `CreateMultiple`, `UpdateMultiple` and `UpsertMultiple` take.
    pub const MAX_MULTIPLE: usize = 1_000;
    /// The most entity set queries (lists and counts) in one `$batch`: each may spend the list
    /// work budget.
    pub const MAX_BATCH_QUERIES: usize = 32;
    /// The most `$select` columns (as the native API's `select`).
    pub const MAX_SELECT: usize = crate::limits::MAX_SELECT;
}

/// A Web API answer or error.
pub(crate) type WebResult = Result<Response, WebError>;

/// An error answered as Dataverse does: `{"error":{"code":"0x8004…","message":…}}`, with the
/// native API's stable code beside it.
#[derive(Debug)]
pub(crate) struct WebError(pub(crate) ApiError);

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError(e)
    }
}

impl From<strata_app::AppError> for WebError {
    fn from(e: strata_app::AppError) -> Self {
        WebError(e.into())
    }
}

/// Dataverse's error code (an HRESULT) for one of Strata's codes.
pub(crate) fn dataverse_code(code: &str) -> &'static str {
    match code {
        // "Principal user is missing privilege": SecLib::AccessDenied.
        "denied" | "forbidden" | "user_disabled" => "0x80040220",
        // ObjectDoesNotExist.
        "not_found" | "unknown_user" => "0x80040217",
        // DuplicateRecord.
        "duplicate" => "0x80040237",
        // "Resource not found for the segment '…'." (answered 404): an unknown entity set,
        // segment, function or option.
        "unknown_route" | "odata_unknown" => "0x8006088a",
        // OData: an unknown property; a malformed query.
        "unknown_column" | "odata_syntax" | "bad_filter" | "bad_order" => "0x80060888",
        // AggregateQueryRecordLimit exceeded.
        "aggregate_limit" => "0x8004e023",
        // The If-Match / If-None-Match precondition failed (ConcurrencyVersionMismatch).
        "precondition_failed" => "0x80060882",
        "unauthenticated" => "0x80040326",
        "payload_too_large" | "uri_too_long" | "query_too_expensive" | "odata_limit" => {
            "0x8004431a"
        }
        // UnExpected: the server's or its database's failures, not the client's.
        "internal"
        | "database_unreachable"
        | "corrupt_log"
        | "corrupt_store"
        | "database"
        | "storage_full" => "0x80040216",
        // InvalidArgument: everything else a client sent wrong.
        _ => "0x80040203",
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = crate::error::status_of(e.code);
        let message = match &e.field {
            Some(field) => format!("{} ({field})", e.message),
            None => e.message.clone(),
        };
        let body = json!({ "error": {
            "code": dataverse_code(e.code),
            "message": message,
            "strata_code": e.code,
        }});
        let mut response = (status, axum::Json(body)).into_response();
        odata_headers(response.headers_mut());
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn odata_headers(headers: &mut HeaderMap) {
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
}

/// A JSON answer with Dataverse's headers.
pub(crate) fn json_response(status: StatusCode, body: &Json) -> Response {
    json_bytes_response(status, body.to_string().into_bytes())
}

/// An answer whose JSON body is already written.
pub(crate) fn json_bytes_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; odata.metadata=minimal"),
        )],
        body,
    )
        .into_response();
    odata_headers(response.headers_mut());
    response
}

/// An empty answer (204) with Dataverse's headers.
pub(crate) fn no_content() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    odata_headers(response.headers_mut());
    response
}

/// A Web API error with a code and a message.
pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> WebError {
    WebError(ApiError::new(code, message))
}

/// One request as the handlers see it: who asks, where, and what.
pub(crate) struct Call<'a> {
    pub(crate) state: &'a Arc<AppState>,
    pub(crate) request: &'a OrgRequest,
    /// The service root as the client reached it: `http://host/api/data/v9.2/`.
    pub(crate) base: String,
    pub(crate) method: Method,
    pub(crate) path: Path,
    /// The query's parameters, decoded (`%24select` and `$select` alike; `+` is a space).
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// Inside a `$batch` change set: where the request's operations are planned instead of
    /// written (the set writes them at once).
    pub(crate) planned: Option<&'a std::sync::Mutex<batch::Planned>>,
}

impl Call<'_> {
    /// A query parameter by name.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `Prefer` header's preferences (comma-separated, in any case).
    pub(crate) fn prefers(&self, preference: &str) -> bool {
        self.headers.get_all("prefer").iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|p| p.trim().eq_ignore_ascii_case(preference))
            })
        })
    }

    /// `Prefer: odata.maxpagesize=N`.
    pub(crate) fn max_page_size(&self) -> Result<Option<usize>, WebError> {
        for v in self.headers.get_all("prefer") {
            let Ok(v) = v.to_str() else { continue };
            for p in v.split(',') {
                let p = p.trim();
                if let Some(n) = p
                    .strip_prefix("odata.maxpagesize=")
                    .or_else(|| p.strip_prefix("odata.maxpagesize ="))
                {
                    let n: usize = n.trim().parse().map_err(|_| {
                        bad(
                            "bad_page_size",
                            format!("odata.maxpagesize `{n}` is not a number"),
                        )
                    })?;
                    if n == 0 || n > limits::MAX_PAGE {
                        return Err(bad(
                            "bad_page_size",
                            format!("odata.maxpagesize must be 1 to {}", limits::MAX_PAGE),
                        ));
                    }
                    return Ok(Some(n));
                }
            }
        }
        Ok(None)
    }
}

/// The Web API's routes, under the server's state.
pub(crate) fn routes() -> axum::Router<Arc<AppState>> {
    axum::Router::new()
        .route("/api/data/{version}", axum::routing::any(serve))
        .route("/api/data/{version}/", axum::routing::any(serve))
        .route("/api/data/{version}/{*rest}", axum::routing::any(serve))
}

async fn serve(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    request: Result<OrgRequest, ApiError>,
    body: Bytes,
) -> Response {
    match answer(&state, method, &uri, headers, request, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn answer(
    state: &Arc<AppState>,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    request: Result<OrgRequest, ApiError>,
    body: Bytes,
) -> WebResult {
    let raw_path = uri.path();
    let rest = raw_path
        .strip_prefix("/api/data/")
        .ok_or_else(|| bad("unknown_route", "not a Web API path"))?;
    let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if !VERSIONS.contains(&version) {
        return Err(bad(
            "unknown_route",
            format!("the Web API answers v9.0, v9.1 and v9.2, not `{version}`"),
        ));
    }
    // Authentication comes first: nothing about the service is told to an unknown caller.
    let request = request?;
    let base = format!("{}/api/data/{version}/", origin(state, &headers));
    let query = path::query_pairs(uri.query().unwrap_or(""))?;
    let path = path::parse(rest, &query)?;
    let call = Call {
        state,
        request: &request,
        base,
        method,
        path,
        query,
        headers,
        body,
        planned: None,
    };
    dispatch(&call).await
}

/// The scheme and host the client used (`Host`; the first `X-Forwarded-Host` and
/// `X-Forwarded-Proto` only when the server was told to trust them), so that `@odata.nextLink`
/// and `OData-EntityId` begin exactly with the client's own base URL.
pub(crate) fn origin(state: &AppState, headers: &HeaderMap) -> String {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or(v).trim())
    };
    let forwarded = |name: &str| {
        if state.trust_forwarded_headers {
            text(name)
        } else {
            None
        }
    };
    let host = forwarded("x-forwarded-host")
        .or_else(|| text("host"))
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .unwrap_or("localhost");
    let scheme = match forwarded("x-forwarded-proto") {
        Some("https") => "https",
        Some("http") => "http",
        _ if state.tls => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

pub(crate) async fn dispatch(call: &Call<'_>) -> WebResult {
    let segments = &call.path.segments;
    let first = segments.first();
    // FetchXML is answered on a list of records only (D162): anywhere else it would be
    // ignored, and the request answered as another one.
    let on_a_collection = call.method == Method::GET
        && segments.len() == 1
        && matches!(first, Some(Segment::Named { name, args: None })
            if name != "EntityDefinitions" && !messages::is_unbound_operation(name));
    // So is an aggregation (D163).
    for query in ["fetchXml", "$apply"] {
        if call.param(query).is_some() && !on_a_collection {
            return Err(bad(
                "odata_unsupported",
                format!(
                    "{query} is answered on a collection of records: GET <entity set>?{query}=…"
                ),
            ));
        }
    }
    match (&call.method, first) {
        (&Method::GET, None) => metadata::service_document(call).await,
        (_, None) => Err(bad(
            "method_not_allowed",
            "the service document is read with GET",
        )),
        (&Method::GET, Some(Segment::Metadata)) if segments.len() == 1 => {
            metadata::csdl(call).await
        }
        (_, Some(Segment::Metadata)) => Err(bad("method_not_allowed", "$metadata is read only")),
        (&Method::POST, Some(Segment::Batch)) if segments.len() == 1 => {
            Box::pin(batch::run(call)).await
        }
        (_, Some(Segment::Batch)) => Err(bad("method_not_allowed", "$batch takes POST")),
        (_, Some(Segment::Named { name, .. })) if name == "EntityDefinitions" => {
            metadata::entity_definitions(call).await
        }
        (_, Some(Segment::Named { name, .. }))
            if messages::is_unbound_operation(name) && segments.len() == 1 =>
        {
            messages::unbound(call).await
        }
        (_, Some(Segment::Named { .. })) => records::dispatch(call).await,
        (_, Some(other)) => Err(bad(
            "odata_unknown",
            format!("Resource not found for the segment '{other}'."),
        )),
    }
}
