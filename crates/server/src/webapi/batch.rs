//! `$batch`: a multipart/mixed body of requests and change sets (`strata_odata::parse_batch`).
//!
//! A request on its own runs as if it came alone. A **change set** commits atomically: its
//! requests are planned one after another into operations (none is written), a later request
//! may refer to an entity an earlier one creates by its `Content-ID` (`$1` as the URL, or
//! `"…@odata.bind": "$1"`), and the operations of the whole set go through the write path in
//! one call — one authorization pass under one undo-journal checkpoint, one store transaction.
//! Any refused request refuses the whole set and nothing is written. Without
//! `Prefer: odata.continue-on-error`, the first failed part ends the batch, which then answers
//! with that part's status (as Dataverse does); with it, every part runs and the batch is 200.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_engine::{Guid, TableId};
use strata_odata::{BatchPart, BatchRequest, PartResponse, ResponsePart};
use strata_ops::Operation;

use super::{Call, WebError, WebResult, bad, path};

/// What a change set has planned so far.
#[derive(Debug, Default)]
pub(crate) struct Planned {
    /// The operations of every request so far, in order.
    pub(crate) ops: Vec<Operation>,
    /// Entities created earlier in the set, by Content-ID: entity set and GUID.
    pub(crate) created: HashMap<String, (String, Guid)>,
}

tokio::task_local! {
    /// Records created earlier in the change set being planned: GUID → (table, key).
    pub(crate) static PENDING: HashMap<Guid, (TableId, String)>;
}

/// The record an earlier request of this change set creates, by GUID.
pub(crate) fn pending(guid: Guid) -> Option<(TableId, String)> {
    PENDING.try_with(|p| p.get(&guid).cloned()).ok().flatten()
}

async fn to_part(response: Response, content_id: Option<String>) -> PartResponse {
    let status = response.status().as_u16();
    let mut headers = Vec::new();
    for (name, value) in response.headers() {
        if matches!(
            name.as_str(),
            "content-type" | "odata-entityid" | "location" | "etag" | "preference-applied"
        ) && let Ok(v) = value.to_str()
        {
            let shown = match name.as_str() {
                "content-type" => "Content-Type",
                "odata-entityid" => "OData-EntityId",
                "location" => "Location",
                "etag" => "ETag",
                _ => "Preference-Applied",
            };
            headers.push((shown.to_owned(), v.to_owned()));
        }
    }
    let body = axum::body::to_bytes(response.into_body(), crate::limits::MAX_BODY_BYTES)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    PartResponse {
        content_id,
        status,
        reason: None,
        headers,
        body,
    }
}

/// Runs a `$batch` request.
pub(crate) async fn run(call: &Call<'_>) -> WebResult {
    let content_type = call
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let batch = strata_odata::parse_batch(content_type, &call.body).map_err(|e| {
        let code = if e.code() == "batch_limit" {
            "odata_limit"
        } else {
            "odata_syntax"
        };
        bad(code, format!("$batch: {e}"))
    })?;
    let continue_on_error = call.prefers("odata.continue-on-error");
    let mut parts = Vec::new();
    // Without `odata.continue-on-error`, the first failed part ends the batch and the batch
    // answers with that part's status (Dataverse: "the batch error represents the error of
    // the first failing request"); the body still holds the parts answered so far.
    let mut status = StatusCode::OK;
    let mut queries = 0usize;
    for part in batch.parts {
        let part = match part {
            BatchPart::Request(r) => {
                let id = r.content_id.clone();
                // Each list may spend the list work budget: a batch holds only so many, so that
                // one request cannot buy a thousand lists' worth of work.
                let query = is_query(&r);
                queries += usize::from(query);
                let result = if query && queries > super::limits::MAX_BATCH_QUERIES {
                    Err(bad(
                        "odata_limit",
                        format!(
                            "a $batch holds at most {} queries of entity sets (lists and counts)",
                            super::limits::MAX_BATCH_QUERIES
                        ),
                    ))
                } else {
                    one(call, &r, None).await
                };
                ResponsePart::Single(match result {
                    Ok(response) => to_part(response, id).await,
                    Err(e) => to_part(e.into_response(), id).await,
                })
            }
            BatchPart::ChangeSet(set) => change_set(call, set.requests).await,
        };
        let failed = match &part {
            ResponsePart::Single(p) if p.status >= 400 => Some(p.status),
            _ => None,
        };
        parts.push(part);
        if let Some(failed) = failed
            && !continue_on_error
        {
            status = StatusCode::from_u16(failed).unwrap_or(StatusCode::BAD_REQUEST);
            break;
        }
    }
    let mut seed = [0u8; 16];
    crate::auth::random_fill(&mut seed)?;
    let written = strata_odata::write_batch_response(
        &parts,
        &strata_odata::BoundaryToken::from_seed(u128::from_be_bytes(seed)),
    );
    let mut response = (status, written.body).into_response();
    if let Ok(v) = HeaderValue::from_str(&written.content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
        .headers_mut()
        .insert("odata-version", HeaderValue::from_static("4.0"));
    Ok(response)
}

/// Plans a change set's requests, then writes their operations at once.
async fn change_set(call: &Call<'_>, requests: Vec<BatchRequest>) -> ResponsePart {
    let planned = Mutex::new(Planned::default());
    let mut answers = Vec::new();
    for r in &requests {
        let id = r.content_id.clone();
        let response = match one(call, r, Some(&planned)).await {
            Ok(response) => response,
            Err(e) => return ResponsePart::Single(to_part(e.into_response(), id).await),
        };
        if response.status().as_u16() >= 400 {
            return ResponsePart::Single(to_part(response, id).await);
        }
        // A created entity may be referred to by its Content-ID from now on.
        if let (Some(id), Some(entity)) = (
            &id,
            response
                .headers()
                .get("odata-entityid")
                .and_then(|v| v.to_str().ok()),
        ) && let Some((set, guid)) = entity_of(entity)
        {
            planned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .created
                .insert(id.clone(), (set, guid));
        }
        answers.push(to_part(response, id).await);
    }
    let ops = std::mem::take(
        &mut planned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .ops,
    );
    if let Err(e) = super::records::write(call, ops).await {
        let id = requests.first().and_then(|r| r.content_id.clone());
        return ResponsePart::Single(to_part(e.into_response(), id).await);
    }
    ResponsePart::ChangeSet(answers)
}

/// Whether a batch part queries an entity set (`GET accounts?…`, `GET accounts/$count`): the
/// parts that may each spend a list's work budget.
fn is_query(r: &BatchRequest) -> bool {
    if r.method != strata_odata::Method::Get {
        return false;
    }
    let Ok(url) = strata_odata::split_url(&r.url) else {
        return false;
    };
    let path = url.path.trim_start_matches('/');
    let (first, rest) = path.split_once('/').unwrap_or((path, ""));
    !first.is_empty()
        && !first.contains('(')
        && !first.starts_with('$')
        && first != "EntityDefinitions"
        && (rest.is_empty() || rest == "$count")
}

/// `http://host/api/data/v9.2/accounts(<guid>)` → (`accounts`, guid).
fn entity_of(url: &str) -> Option<(String, Guid)> {
    let tail = url.rsplit('/').next()?;
    let (set, rest) = tail.split_once('(')?;
    let guid = rest.strip_suffix(')')?.parse().ok()?;
    Some((set.to_owned(), guid))
}

/// Runs one request of a batch (planning only, inside a change set).
async fn one(call: &Call<'_>, r: &BatchRequest, planned: Option<&Mutex<Planned>>) -> WebResult {
    let url = strata_odata::split_url(&r.url)
        .map_err(|e| bad("odata_syntax", format!("a $batch request's URL: {e}")))?;
    // `$1` stands for what the request with Content-ID 1 created.
    let created: HashMap<String, (String, Guid)> = planned
        .map(|p| {
            p.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .created
                .clone()
        })
        .unwrap_or_default();
    let mut path_text = url.path.to_owned();
    if let Some(rest) = path_text.strip_prefix('$') {
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        match created.get(id) {
            Some((set, guid)) => {
                path_text = if tail.is_empty() {
                    format!("{set}({guid})")
                } else {
                    format!("{set}({guid})/{tail}")
                };
            }
            // The service's own resources, not references: `$metadata` is answered, `$batch`
            // refused below.
            None if matches!(id, "metadata" | "batch") => {}
            None => return Err(unknown_reference(id)),
        }
    }
    let query = path::query_pairs(url.query)?;
    let parsed = path::parse(&path_text, &query)?;
    if matches!(parsed.segments.first(), Some(path::Segment::Batch)) {
        return Err(bad("odata_syntax", "a $batch inside a $batch"));
    }
    let mut headers: HeaderMap = call.headers.clone();
    for name in ["content-type", "prefer", "if-match", "if-none-match"] {
        headers.remove(name);
    }
    for (name, value) in &r.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            // Who acts is the outer request's: inner credentials or impersonation are ignored.
            if matches!(
                n.as_str(),
                "authorization" | "mscrmcallerid" | "callerobjectid" | "x-strata-on-behalf-of"
            ) {
                continue;
            }
            headers.insert(n, v);
        }
    }
    let body = if r.body.is_empty() {
        Vec::new()
    } else {
        with_references(&r.body, &created)?
    };
    let method = match r.method {
        strata_odata::Method::Get => Method::GET,
        strata_odata::Method::Post => Method::POST,
        strata_odata::Method::Patch => Method::PATCH,
        strata_odata::Method::Put => Method::PUT,
        strata_odata::Method::Delete => Method::DELETE,
    };
    let sub = Call {
        state: call.state,
        request: call.request,
        base: call.base.clone(),
        method,
        path: parsed,
        query,
        headers,
        body: Bytes::from(body),
        planned,
    };
    let pending: HashMap<Guid, (TableId, String)> = if created.is_empty() {
        HashMap::new()
    } else {
        let loaded = call.request.handle.read().await;
        created
            .values()
            .filter_map(|(set, guid)| {
                super::entity::resolve_set(&loaded.org, set)
                    .ok()
                    .map(|(_, table)| (*guid, (table, guid.to_string())))
            })
            .collect()
    };
    PENDING
        .scope(pending, Box::pin(super::dispatch(&sub)))
        .await
}

/// A `$<id>` that no earlier request of the change set created (Dataverse answers 400).
fn unknown_reference(id: &str) -> WebError {
    bad(
        "odata_syntax",
        format!(
            "Content-ID Reference: `${id}` does not exist in the batch context (it names no entity created earlier in this change set)"
        ),
    )
}

/// A body whose `"…@odata.bind": "$1"` and `"@odata.id": "$1"` values become the created
/// entities' paths; a `$<id>` that names nothing is refused. A body that is not strict JSON is
/// left as it is, for the handler to refuse; one without references is passed on unchanged.
fn with_references(
    body: &[u8],
    created: &HashMap<String, (String, Guid)>,
) -> Result<Vec<u8>, WebError> {
    let Ok(mut value) = crate::json::strict_bytes(body) else {
        return Ok(body.to_vec());
    };
    let mut changed = false;
    if let Some(map) = value.as_object_mut() {
        for (key, v) in map.iter_mut() {
            if !key.ends_with("@odata.bind") && key != "@odata.id" {
                continue;
            }
            if let Some(id) = v.as_str().and_then(|s| s.strip_prefix('$')) {
                let (set, guid) = created.get(id).ok_or_else(|| unknown_reference(id))?;
                *v = serde_json::Value::String(format!("/{set}({guid})"));
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(body.to_vec());
    }
    serde_json::to_vec(&value).map_err(|e| bad("internal", format!("a $batch body: {e}")))
}
