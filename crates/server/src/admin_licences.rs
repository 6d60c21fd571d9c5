//! Licence answers (seed 003, docs/semantics.md D48–D50) under `/api/v1/orgs/{org}/licences`:
//! the catalogue, the organisation's licence report, one user's answer, and where roles exceed a
//! licence. The engine answers (`strata_engine::licences`); the JSON is `strata_ops`'s, shared
//! with the CLI.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use strata_engine::Organization;

use crate::error::ApiError;
use crate::request::{CHECK_ACCESS_OF_OTHERS, OrgRequest, may_ask_about};

type ApiResult = Result<Response, ApiError>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct LicenceParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    #[serde(default)]
    role: Option<String>,
}

fn ok(value: serde_json::Value) -> ApiResult {
    Ok((StatusCode::OK, Json(value)).into_response())
}

/// `GET …/licences`: the catalogue. Licence names, prices and use rights are configuration
/// every user of the organisation may read (as Dataverse shows a user's licence to them).
pub(crate) async fn catalogue(
    request: OrgRequest,
    Query(_params): Query<LicenceParams>,
) -> ApiResult {
    let loaded = request.handle.read().await;
    let mut out = strata_ops::catalogue_json(&loaded.org);
    out["revision"] = json!(loaded.revision);
    ok(out)
}

/// `GET …/licences/report`: every user the asker may ask about (D35: System Administrators, or
/// `prvCheckAccessOfOthers` and Read on the user's record), their licences, the cheapest
/// covering set, and the totals over those users. Without `prvCheckAccessOfOthers` (or System
/// Administrator) the report is refused.
pub(crate) async fn report(request: OrgRequest, Query(_params): Query<LicenceParams>) -> ApiResult {
    // Every user's cheapest covering set: a blocking thread, never an async worker.
    let handle = std::sync::Arc::clone(&request.handle);
    tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        if request
            .acting
            .each()
            .any(|u| o.system_administrator(u).is_none())
        {
            request.require_misc(o, CHECK_ACCESS_OF_OTHERS)?;
        }
        let lines: Vec<_> = o
            .licence_report()
            .users
            .into_iter()
            .filter(|l| {
                request
                    .acting
                    .each()
                    .all(|u| may_ask_about(o, u, l.user).is_ok())
            })
            .collect();
        let mut out = strata_ops::report_json(o, &lines);
        out["revision"] = json!(loaded.revision);
        ok(out)
    })
    .await
    .map_err(|e| strata_app::AppError::internal(format!("licence report task failed: {e}")))?
}

/// `GET …/licences/users/{user}`: one user's licences against what their roles need (a question
/// about that user, D35).
pub(crate) async fn user(
    request: OrgRequest,
    Path((_, user)): Path<(String, String)>,
    Query(_params): Query<LicenceParams>,
) -> ApiResult {
    let loaded = request.handle.read().await;
    let o = &loaded.org;
    let target = request.subject(o, Some(&user))?;
    let mut out = strata_ops::user_report_json(o, &o.user_licence_report(target));
    out["revision"] = json!(loaded.revision);
    ok(out)
}

/// Whether every acting user may read role definitions: Read on `role` covering the role's
/// unit (System Administrators always).
fn may_read_roles(
    request: &OrgRequest,
    o: &Organization,
    role: Option<&str>,
) -> Result<(), ApiError> {
    let unit = match role.and_then(|r| o.role_id(r)) {
        Some(r) => o.role(r).business_unit,
        None => o
            .units()
            .root()
            .ok_or_else(|| ApiError::new("no_root", "the organisation has no root unit"))?,
    };
    request
        .acting
        .each()
        .try_for_each(|u| crate::request::require_role_read(o, u, unit, "roles"))
}

/// `GET …/licences/{licence}/exceeds[?role=R]`: where a role (or every role) gives more than the
/// licence allows, cell by cell. Needs Read on `role` over the role's unit (the root's for every
/// role).
pub(crate) async fn exceeds(
    request: OrgRequest,
    Path((_, licence)): Path<(String, String)>,
    Query(params): Query<LicenceParams>,
) -> ApiResult {
    let loaded = request.handle.read().await;
    let o = &loaded.org;
    if o.licence(&licence).is_none() {
        return Err(ApiError::not_found(format!("unknown licence `{licence}`")));
    }
    if let Some(r) = params.role.as_deref()
        && o.role_id(r).is_none()
    {
        return Err(ApiError::not_found(format!("unknown role `{r}`")).at("role"));
    }
    may_read_roles(&request, o, params.role.as_deref())?;
    let mut out = strata_ops::exceeds_json(o, &licence, params.role.as_deref())?;
    out["revision"] = json!(loaded.revision);
    ok(out)
}
