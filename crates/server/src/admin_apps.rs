//! The administrator's questions about apps and columns (D51–D53): the apps and their roles,
//! who can open an app, why a user cannot, the smallest role set, who can read or update a
//! column, and a column check or explanation. Questions about other users follow D27/D35 as
//! `check` and `who-has-access` do.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_engine::{AppId, Organization, TableId};

use crate::error::ApiError;
use crate::request::{CHECK_ACCESS_OF_OTHERS, OrgRequest, may_ask_about};

type ApiResult = Result<Response, ApiError>;

fn ok(mut value: Value, revision: u64) -> ApiResult {
    value["revision"] = json!(revision);
    Ok((StatusCode::OK, Json(value)).into_response())
}

/// Query parameters of these routes.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    #[serde(default)]
    user: Option<String>,
}

fn app_id(org: &Organization, name: &str) -> Result<AppId, ApiError> {
    org.app_id(name)
        .ok_or_else(|| ApiError::not_found(format!("unknown app `{name}`")))
}

fn table_id(org: &Organization, name: &str) -> Result<TableId, ApiError> {
    org.table_id(name)
        .ok_or_else(|| ApiError::not_found(format!("unknown table `{name}`")))
}

/// `GET …/apps`: every app with its roles and needs. The apps are what a user of the
/// organisation picks from: any user of it may list them (D51).
pub(crate) async fn list_apps(request: OrgRequest, Query(_p): Query<AppParams>) -> ApiResult {
    let loaded = request.handle.read().await;
    ok(strata_ops::apps_json(&loaded.org), loaded.revision)
}

/// `GET …/apps/{app}`: its roles, its needs and who can open it — about other users, so for
/// the root key and users with `prvCheckAccessOfOthers` (D35), naming only the users the asker
/// may ask about.
pub(crate) async fn show_app(
    request: OrgRequest,
    Path((_, app)): Path<(String, String)>,
    Query(_p): Query<AppParams>,
) -> ApiResult {
    let loaded = request.handle.read().await;
    let o = &loaded.org;
    let a = app_id(o, &app)?;
    request.require_misc(o, CHECK_ACCESS_OF_OTHERS)?;
    let users: Vec<Value> = o
        .who_can_open(a)
        .into_iter()
        .filter(|(u, _)| {
            request
                .acting
                .each()
                .all(|me| may_ask_about(o, me, *u).is_ok())
        })
        .map(|(u, access)| strata_ops::app_access_json(o, u, access))
        .collect();
    let mut out = strata_ops::app_json(o, a);
    out["users"] = json!(users);
    ok(out, loaded.revision)
}

/// `GET …/apps/{app}/access?user=U`: whether U opens the app, how, or every reason not (never
/// null), and the app's needs U's roles do not meet.
pub(crate) async fn app_access(
    request: OrgRequest,
    Path((_, app)): Path<(String, String)>,
    Query(params): Query<AppParams>,
) -> ApiResult {
    let loaded = request.handle.read().await;
    let o = &loaded.org;
    let user = request.subject(o, params.user.as_deref())?;
    let a = app_id(o, &app)?;
    ok(strata_ops::app_diagnosis_json(o, user, a), loaded.revision)
}

/// `GET …/apps/{app}/roles-needed?user=U`: the smallest set of roles that would let U open the
/// app and meet its needs (D51).
pub(crate) async fn roles_needed(
    request: OrgRequest,
    Path((_, app)): Path<(String, String)>,
    Query(params): Query<AppParams>,
) -> ApiResult {
    let handle = std::sync::Arc::clone(&request.handle);
    tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        let user = request.subject(o, params.user.as_deref())?;
        let a = app_id(o, &app)?;
        let set = o
            .roles_needed(user, a)
            .map_err(|e| ApiError::from(strata_ops::role_set_error(&e)))?;
        ok(strata_ops::role_set_json(o, user, a, &set), loaded.revision)
    })
    .await
    .map_err(|e| strata_app::AppError::internal(format!("roles-needed task failed: {e}")))?
}

/// `GET …/tables/{table}/columns/{column}/access`: who can read or update the column, through
/// which profile, team or System Administrator — about other users (D35, as who-has-access).
pub(crate) async fn column_access(
    request: OrgRequest,
    Path((_, table, column)): Path<(String, String, String)>,
    Query(_p): Query<AppParams>,
) -> ApiResult {
    let handle = std::sync::Arc::clone(&request.handle);
    tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        let t = table_id(o, &table)?;
        request.require_misc(o, CHECK_ACCESS_OF_OTHERS)?;
        let holders = o
            .column_holders(t, &column)
            .map_err(|e| ApiError::new(e.code(), e.to_string()))?
            .map(|list| {
                list.into_iter()
                    .filter(|h| {
                        request
                            .acting
                            .each()
                            .all(|me| may_ask_about(o, me, h.user).is_ok())
                    })
                    .collect::<Vec<_>>()
            });
        ok(
            strata_ops::column_holders_json(o, &table, &column, holders.as_deref()),
            loaded.revision,
        )
    })
    .await
    .map_err(|e| strata_app::AppError::internal(format!("column access task failed: {e}")))?
}

/// The body of a column check or explanation.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnRequest {
    #[serde(default)]
    user: Option<String>,
    record: String,
    column: String,
    /// `read` (default) or `update`.
    #[serde(default)]
    access: Option<String>,
    #[serde(default)]
    min_revision: Option<u64>,
}

async fn column_verdict(
    state: &crate::AppState,
    request: &OrgRequest,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Value, u64), ApiError> {
    let req: ColumnRequest = crate::json::parse(headers, body)?;
    if let Some(revision) = req.min_revision {
        crate::request::ready(state, &request.handle, revision).await?;
    }
    let loaded = request.handle.read().await;
    let o = &loaded.org;
    let user = request
        .subject(o, req.user.as_deref())
        .map_err(|e| match e.field.as_deref() {
            Some("user") => e.at("/user"),
            _ => e,
        })?;
    let record = o
        .record_id(&req.record)
        .or_else(|| req.record.parse().ok().and_then(|g| o.record_by_guid(g)))
        .ok_or_else(|| {
            ApiError::not_found(format!("record `{}` does not exist", req.record)).at("/record")
        })?;
    request
        .may_ask_about_record(o, Some(user), record, &req.record)
        .map_err(|e| e.at("/record"))?;
    let update = match req.access.as_deref() {
        None | Some("read") => false,
        Some("update") => true,
        Some(other) => {
            return Err(ApiError::new(
                "invalid_body",
                format!("access `{other}` is not `read` or `update`"),
            )
            .at("/access"));
        }
    };
    let verdict = o
        .explain_column(user, record, &req.column, update)
        .map_err(|e| ApiError::new(e.code(), e.to_string()).at("/column"))?;
    Ok((
        strata_ops::column_verdict_json(o, &verdict),
        loaded.revision,
    ))
}

/// `POST …/columns/check`: may the user read or update the column of the record (D53).
pub(crate) async fn column_check(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let (v, revision) = column_verdict(&state, &request, &headers, &body).await?;
    ok(json!({ "allowed": v["allowed"] }), revision)
}

/// `POST …/columns/explain`: the column decision with the record decision and every source.
pub(crate) async fn column_explain(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let (v, revision) = column_verdict(&state, &request, &headers, &body).await?;
    ok(v, revision)
}
