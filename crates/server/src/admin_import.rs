//! `POST /api/v1/orgs/{org}/roles/import`: Dataverse solution roles (docs/solutions.md). The
//! body is the file's bytes — an unpacked `Roles/<name>.xml`, a packed `customizations.xml` or
//! a solution `.zip`, told apart by content — or a JSON string holding the XML text. The roles are planned against the organisation
//! (`strata_solution::plan`) and the plan's operations written as ONE batch on the one write
//! path, authorized as role creation and editing are (D26: Create / Write on `role`; creating
//! tables is customization, System Administrators only). `?dry_run=true` tries the batch and
//! rolls it back, answering the plan and the access difference (D54–D56).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use strata_solution::{ImportOptions, plan, read_roles};

use crate::AppState;
use crate::error::ApiError;
use crate::request::OrgRequest;
use strata_app::AppError;

/// The query of an import.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    /// Try the batch and answer what it would do, writing nothing.
    #[serde(default)]
    dry_run: Option<bool>,
    /// Create the standard and custom tables the roles name that the organisation lacks.
    #[serde(default)]
    create_tables: Option<bool>,
    /// The file's name, for errors (default `body`).
    #[serde(default)]
    file: Option<String>,
}

pub(crate) async fn import(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Query(params): Query<ImportParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let file = params.file.clone().unwrap_or_else(|| "body".to_owned());
    // A JSON string body holds the XML text (for JSON clients); anything else is the file.
    let body: Vec<u8> = if body.trim_ascii_start().starts_with(b"\"") {
        serde_json::from_slice::<String>(&body)
            .map_err(|e| {
                ApiError::new("malformed_json", format!("a JSON body is one string: {e}"))
            })?
            .into_bytes()
    } else {
        body.to_vec()
    };
    let roles = tokio::task::spawn_blocking(move || read_roles(&file, &body))
        .await
        .map_err(|e| AppError::internal(format!("reading the roles failed: {e}")))?
        .map_err(|e| ApiError::new(e.code, e.to_string()).at("body"))?;
    let options = ImportOptions {
        create_tables: params.create_tables == Some(true),
    };
    let (actor, planned) = {
        let loaded = request.handle.read().await;
        if request.acting.impersonator().is_some() {
            return Err(ApiError::new(
                "bad_actor",
                "administration is not done on behalf of another user",
            ));
        }
        let planned = plan(&loaded.org, &roles, options);
        // The answer tells whether roles exist and how they differ: reading them is asked
        // as `GET …/roles/{role}` asks it.
        for existing in planned.roles.iter().filter_map(|r| r.existing) {
            let role = loaded.org.role(existing);
            for user in request.acting.each() {
                crate::request::require_role_read(
                    &loaded.org,
                    user,
                    role.business_unit,
                    &format!("role `{}`", role.name),
                )?;
            }
        }
        (request.acting.actor(&loaded.org), planned)
    };
    let mut answer = planned.to_json();
    let dry_run = params.dry_run == Some(true);
    answer["dry_run"] = json!(dry_run);
    if planned.operations.is_empty() {
        answer["revision"] = json!(request.handle.read().await.revision);
    } else if dry_run {
        let may_see = crate::dryrun::may_see(&actor);
        let tried = request
            .handle
            .dry_run(Arc::clone(&state.store), planned.operations, actor, may_see)
            .await?
            .to_json();
        answer["revision"] = tried["revision"].clone();
        answer["difference"] = tried["difference"].clone();
    } else {
        let written = request
            .handle
            .write(Arc::clone(&state.store), planned.operations, actor)
            .await?;
        state.metrics.wrote(written.changes.len());
        answer["revision"] = json!(written.revision);
    }
    Ok((StatusCode::OK, Json(answer)).into_response())
}

/// The query of an export.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    /// Only this role (default: every role the caller may read but System Administrator roles).
    #[serde(default)]
    role: Option<String>,
}

/// `GET …/roles/export`: the roles as solution XML (`files`: every `Roles/<name>.xml` and the
/// `customizations.xml`), byte-stable. Only roles the caller may read (Read on `role` over the
/// role's unit, as `GET …/roles/{role}`): a named role the caller may not read is refused, the
/// others are left out and counted in `withheld`.
pub(crate) async fn export(
    request: OrgRequest,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let handle = Arc::clone(&request.handle);
    let acting = request.acting;
    tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        let org = &loaded.org;
        let may_read = |id: strata_engine::RoleId| {
            let role = org.role(id);
            acting.each().try_for_each(|u| {
                crate::request::require_role_read(
                    org,
                    u,
                    role.business_unit,
                    &format!("role `{}`", role.name),
                )
            })
        };
        let (names, withheld) = match &params.role {
            Some(name) => {
                let id = org
                    .role_id(name)
                    .ok_or_else(|| ApiError::not_found(format!("unknown role `{name}`")))?;
                may_read(id)?;
                (vec![name.clone()], 0)
            }
            None => {
                let mut names = Vec::new();
                let mut withheld = 0;
                for id in org.role_ids() {
                    let role = org.role(id);
                    if role.deleted || role.system_administrator {
                        continue;
                    }
                    if may_read(id).is_ok() {
                        names.push(role.name.clone());
                    } else {
                        withheld += 1;
                    }
                }
                (names, withheld)
            }
        };
        let files = if names.is_empty() {
            vec![strata_solution::ExportedFile {
                path: "customizations.xml".to_owned(),
                text: strata_solution::customizations_xml(org, &[]),
            }]
        } else {
            strata_solution::export(org, &names).map_err(|e| ApiError::new("invalid", e))?
        };
        let files: Vec<serde_json::Value> = files
            .into_iter()
            .map(|f| json!({ "path": f.path, "text": f.text }))
            .collect();
        Ok((
            StatusCode::OK,
            Json(json!({ "files": files, "withheld": withheld, "revision": loaded.revision })),
        )
            .into_response())
    })
    .await
    .map_err(|e| AppError::internal(format!("the export failed: {e}")))?
}
