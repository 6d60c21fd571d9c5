//! Roles as things to manage, over HTTP: describe a role, its holders, who may assign it,
//! two roles and two users side by side, and the role administration (copy, rename, delete
//! with a replacement, deprecate, replace for every holder, one cell of the grid, columns of
//! a table). Reads follow D42; writes are operations on the one write path.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as J, json};
use strata_engine::{Organization, Privilege, RoleId, UserId};
use strata_ops::{ColumnOp, Operation};

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Acting, OrgRequest};
use strata_app::AppError;

type ApiResult = Result<Response, ApiError>;

fn ok(value: J) -> ApiResult {
    Ok((StatusCode::OK, Json(value)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    /// `DELETE …/roles/{role}`: the role every holder and app moves to.
    #[serde(default)]
    replacement: Option<String>,
}

fn role_id(org: &Organization, name: &str) -> Result<RoleId, ApiError> {
    org.role_id(name)
        .ok_or_else(|| ApiError::not_found(format!("unknown role `{name}`")))
}

/// D42: reading a role (its grid, holders, who may assign it, a comparison) needs Read on the
/// `role` system table at a depth covering the role's unit, for every acting user; the root
/// key and System Administrators read every role.
fn require_role_read(org: &Organization, acting: Acting, role: RoleId) -> Result<(), ApiError> {
    let r = org.role(role);
    acting.each().try_for_each(|u| {
        crate::request::require_role_read(org, u, r.business_unit, &format!("role `{}`", r.name))
    })
}

/// D42: the users a role question names are those whose `systemuser` record every acting user
/// may read (all of them for the root key and System Administrators).
fn may_see(org: &Organization, acting: Acting, user: UserId) -> bool {
    acting.each().all(|me| {
        me == user
            || org.system_administrator(me).is_some()
            || org.check(me, Privilege::Read, org.user(user).record)
    })
}

/// Runs a read of the organisation on a blocking thread (comparisons and who-may-assign walk
/// every user or table).
async fn read(
    request: OrgRequest,
    work: impl FnOnce(&Organization, Acting) -> Result<J, ApiError> + Send + 'static,
) -> ApiResult {
    let handle = Arc::clone(&request.handle);
    let acting = request.acting;
    tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        let mut out = work(&loaded.org, acting)?;
        out["revision"] = json!(loaded.revision);
        ok(out)
    })
    .await
    .map_err(|e| AppError::internal(format!("role question failed: {e}")))?
}

pub(crate) async fn describe(
    request: OrgRequest,
    Path((_, role)): Path<(String, String)>,
    Query(_params): Query<Params>,
) -> ApiResult {
    read(request, move |o, acting| {
        let id = role_id(o, &role)?;
        require_role_read(o, acting, id)?;
        Ok(strata_ops::role_json(o, id))
    })
    .await
}

pub(crate) async fn holders(
    request: OrgRequest,
    Path((_, role)): Path<(String, String)>,
    Query(_params): Query<Params>,
) -> ApiResult {
    read(request, move |o, acting| {
        let id = role_id(o, &role)?;
        require_role_read(o, acting, id)?;
        Ok(strata_ops::role_holders_json(o, id, |u| {
            may_see(o, acting, u)
        }))
    })
    .await
}

pub(crate) async fn assigners(
    request: OrgRequest,
    Path((_, role)): Path<(String, String)>,
    Query(_params): Query<Params>,
) -> ApiResult {
    read(request, move |o, acting| {
        let id = role_id(o, &role)?;
        require_role_read(o, acting, id)?;
        Ok(strata_ops::assigners_json(o, id, |u| may_see(o, acting, u)))
    })
    .await
}

pub(crate) async fn compare_roles(
    request: OrgRequest,
    Path((_, left, right)): Path<(String, String, String)>,
    Query(_params): Query<Params>,
) -> ApiResult {
    read(request, move |o, acting| {
        let (l, r) = (role_id(o, &left)?, role_id(o, &right)?);
        require_role_read(o, acting, l)?;
        require_role_read(o, acting, r)?;
        Ok(strata_ops::compare_roles_json(o, l, r))
    })
    .await
}

pub(crate) async fn compare_users(
    request: OrgRequest,
    Path((_, left, right)): Path<(String, String, String)>,
    Query(_params): Query<Params>,
) -> ApiResult {
    let (l, r) = {
        let loaded = request.handle.read().await;
        // D35: a question about another user's access, for each of the two users.
        (
            request.subject(&loaded.org, Some(&left))?,
            request.subject(&loaded.org, Some(&right))?,
        )
    };
    read(request, move |o, _| {
        Ok(strata_ops::compare_users_json(o, l, r))
    })
    .await
}

// ----- administration: operations on the one write path -----

async fn write(state: &AppState, request: &OrgRequest, ops: Vec<Operation>) -> ApiResult {
    let actor = {
        let loaded = request.handle.read().await;
        if request.acting.impersonator().is_some() {
            return Err(ApiError::new(
                "bad_actor",
                "administration is not done on behalf of another user",
            ));
        }
        request.acting.actor(&loaded.org)
    };
    let written = request
        .handle
        .write(Arc::clone(&state.store), ops, actor)
        .await?;
    state.metrics.wrote(written.changes.len());
    Ok((
        StatusCode::OK,
        Json(crate::schema::WrittenAnswer {
            changes: written.changes,
            revision: written.revision,
        }),
    )
        .into_response())
}

/// The role named in the path, which must exist (`not_found` otherwise).
async fn known_role(request: &OrgRequest, role: &str) -> Result<(), ApiError> {
    let loaded = request.handle.read().await;
    role_id(&loaded.org, role).map(|_| ())
}

/// A change to a named role from a JSON body: the body read (bad JSON refused first), the role
/// known, then the operation `op` makes of them written.
async fn write_role<B: serde::de::DeserializeOwned>(
    state: &AppState,
    request: &OrgRequest,
    role: String,
    (headers, body): (&HeaderMap, &Bytes),
    op: impl FnOnce(String, B) -> Operation,
) -> ApiResult {
    let b: B = crate::json::parse(headers, body)?;
    known_role(request, &role).await?;
    write(state, request, vec![op(role, b)]).await
}

/// A role's new name (copy, rename).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NameBody {
    name: String,
}

/// The role that replaces another for every holder.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplaceBody {
    replacement: String,
}

/// A deprecation: the message, and the roles to use instead.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeprecateBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    successors: Vec<String>,
}

/// One cell's depth: none user business_unit parent_child organization.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DepthBody {
    depth: String,
}

/// Columns to add to a table.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnsBody {
    #[schema(value_type = Vec<crate::schema::ColumnSpec>)]
    columns: Vec<ColumnOp>,
}

pub(crate) async fn copy(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Path((_, role)): Path<(String, String)>,
    Query(_params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    write_role(
        &state,
        &request,
        role,
        (&headers, &body),
        |role, b: NameBody| Operation::CopyRole { role, name: b.name },
    )
    .await
}

pub(crate) async fn rename(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Path((_, role)): Path<(String, String)>,
    Query(_params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    write_role(
        &state,
        &request,
        role,
        (&headers, &body),
        |role, b: NameBody| Operation::RenameRole { role, name: b.name },
    )
    .await
}

pub(crate) async fn replace(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Path((_, role)): Path<(String, String)>,
    Query(_params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    write_role(
        &state,
        &request,
        role,
        (&headers, &body),
        |role, b: ReplaceBody| Operation::ReplaceRole {
            role,
            replacement: b.replacement,
        },
    )
    .await
}

pub(crate) async fn delete(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Path((_, role)): Path<(String, String)>,
    Query(params): Query<Params>,
) -> ApiResult {
    known_role(&request, &role).await?;
    let op = Operation::DeleteRole {
        role,
        replacement: params.replacement,
    };
    write(&state, &request, vec![op]).await
}

pub(crate) async fn deprecate(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Path((_, role)): Path<(String, String)>,
    Query(_params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    write_role(
        &state,
        &request,
        role,
        (&headers, &body),
        |role, b: DeprecateBody| Operation::DeprecateRole {
            role,
            deprecated: true,
            message: b.message,
            successors: b.successors,
        },
    )
    .await
}

pub(crate) async fn undeprecate(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Path((_, role)): Path<(String, String)>,
    Query(_params): Query<Params>,
) -> ApiResult {
    known_role(&request, &role).await?;
    let op = Operation::DeprecateRole {
        role,
        deprecated: false,
        message: String::new(),
        successors: Vec::new(),
    };
    write(&state, &request, vec![op]).await
}

pub(crate) async fn set_cell(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Path((_, role, table, privilege)): Path<(String, String, String, String)>,
    Query(_params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    write_role(
        &state,
        &request,
        role,
        (&headers, &body),
        |role, b: DepthBody| Operation::SetRolePrivilege {
            role,
            table,
            privilege,
            depth: b.depth,
        },
    )
    .await
}

pub(crate) async fn add_columns(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Path((_, table)): Path<(String, String)>,
    Query(_params): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let b: ColumnsBody = crate::json::parse(&headers, &body)?;
    {
        let loaded = request.handle.read().await;
        if loaded.org.table_id(&table).is_none() {
            return Err(ApiError::not_found(format!("unknown table `{table}`")));
        }
    }
    let op = Operation::AddColumns {
        table,
        columns: b.columns,
    };
    write(&state, &request, vec![op]).await
}
