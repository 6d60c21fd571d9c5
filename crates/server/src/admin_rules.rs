//! Role rules over HTTP (issue 11 §2, docs/semantics.md D45–D47): the rules in force, adding
//! and removing one (the operations `add_role_rule` / `remove_role_rule` on the write path),
//! and the violations report.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use strata_engine::{Organization, Privilege, RoleRule, UserId};
use strata_ops::{Operation, rule_json, violation_json};

use crate::AppState;
use crate::error::ApiError;
use crate::request::{CHECK_ACCESS_OF_OTHERS, OrgRequest, may_ask_about};

type ApiResult = Result<Response, ApiError>;

/// A rule as the routes take it: `role` and exactly one of `requires`, `excludes`,
/// `direct_only: true` (the fields of `add_role_rule`).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = RoleRule)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleBody {
    role: String,
    #[serde(default)]
    requires: Option<Vec<String>>,
    #[serde(default)]
    excludes: Option<String>,
    #[serde(default)]
    direct_only: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    #[serde(default)]
    user: Option<String>,
}

/// Whether `user` may read a rule: Read on `role` over the unit of every role it names (D47).
fn may_read_rule(org: &Organization, user: UserId, rule: &RoleRule) -> bool {
    rule.roles().into_iter().all(|r| {
        crate::request::require_role_read(org, user, org.role(r).business_unit, "roles").is_ok()
    })
}

/// `GET …/rules`: the rules in force that the caller may read. The root key and System
/// Administrators read them all; a user needs Read on `role` (any depth), and sees each rule
/// whose roles all lie within it (D47).
pub(crate) async fn list(request: OrgRequest, Query(_params): Query<ReadParams>) -> ApiResult {
    let loaded = request.handle.read().await;
    let o = &loaded.org;
    if let Some(table) = o.table_id("role") {
        for u in request.acting.each() {
            if o.system_administrator(u).is_none()
                && o.max_depth(u, table, Privilege::Read) == strata_engine::Depth::None
            {
                return Err(ApiError::new(
                    "denied",
                    format!(
                        "user `{}` may not read role rules: that needs Read on `role`",
                        o.user(u).name
                    ),
                ));
            }
        }
    }
    let rules: Vec<Value> = o
        .role_rules()
        .iter()
        .filter(|r| request.acting.each().all(|u| may_read_rule(o, u, r)))
        .map(|r| rule_json(o, r))
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({ "rules": rules, "revision": loaded.revision })),
    )
        .into_response())
}

/// `GET …/rules/violations[?user=]`: every user breaking a rule in force (D46). A user's own
/// report, or another's under D35 (`prvCheckAccessOfOthers` and Read on their record); the
/// whole report needs `prvCheckAccessOfOthers` and names only the users the caller may ask
/// about.
pub(crate) async fn violations(request: OrgRequest, Query(params): Query<ReadParams>) -> ApiResult {
    let handle = Arc::clone(&request.handle);
    tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        let list: Vec<Value> = match params.user.as_deref() {
            Some(name) => {
                let user = request.subject(o, Some(name))?;
                o.user_rule_violations(user)
                    .iter()
                    .map(|v| violation_json(o, v))
                    .collect()
            }
            None => {
                request.require_misc(o, CHECK_ACCESS_OF_OTHERS)?;
                o.rule_violations()
                    .iter()
                    .filter(|v| {
                        request
                            .acting
                            .each()
                            .all(|me| may_ask_about(o, me, v.user).is_ok())
                    })
                    .map(|v| violation_json(o, v))
                    .collect()
            }
        };
        Ok((
            StatusCode::OK,
            Json(json!({ "violations": list, "revision": loaded.revision })),
        )
            .into_response())
    })
    .await
    .map_err(|e| strata_app::AppError::internal(format!("violations task failed: {e}")))?
}

fn operation(headers: &HeaderMap, body: &Bytes, add: bool) -> Result<Operation, ApiError> {
    let value = crate::json::strict_value(headers, body)?;
    let b: RuleBody = crate::json::from_value(&value, "")?;
    Ok(if add {
        Operation::AddRoleRule {
            role: b.role,
            requires: b.requires,
            excludes: b.excludes,
            direct_only: b.direct_only,
        }
    } else {
        Operation::RemoveRoleRule {
            role: b.role,
            requires: b.requires,
            excludes: b.excludes,
            direct_only: b.direct_only,
        }
    })
}

async fn write(state: &Arc<AppState>, request: &OrgRequest, op: Operation) -> ApiResult {
    let actor = {
        let loaded = request.handle.read().await;
        let actor = request.acting.actor(&loaded.org);
        if actor.user().is_some() && actor.impersonator().is_some() {
            return Err(ApiError::new(
                "bad_actor",
                "administration is not done on behalf of another user",
            ));
        }
        actor
    };
    let written = request
        .handle
        .write(Arc::clone(&state.store), vec![op], actor)
        .await?;
    state.metrics.wrote(written.changes.len());
    Ok((
        StatusCode::OK,
        Json(crate::schema::RevisionAnswer {
            revision: written.revision,
        }),
    )
        .into_response())
}

/// `POST …/rules`: adds a rule (`add_role_rule`, audited; role administration, D47).
pub(crate) async fn add(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let op = operation(&headers, &body, true)?;
    write(&state, &request, op).await
}

/// `DELETE …/rules`: removes the rule the body names (`remove_role_rule`).
pub(crate) async fn remove(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let op = operation(&headers, &body, false)?;
    write(&state, &request, op).await
}
