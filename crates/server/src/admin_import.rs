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
use strata_solution::{ImportOptions, Plan, plan, read_roles};

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

/// Why a role file was not read.
pub(crate) enum ReadFailure {
    /// The file is refused: its code, file, line, column and value.
    File(strata_solution::SolutionError),
    /// The reading task failed.
    Failed(ApiError),
}

impl From<ReadFailure> for ApiError {
    fn from(f: ReadFailure) -> Self {
        match f {
            ReadFailure::File(e) => ApiError::new(e.code, e.to_string()).at("body"),
            ReadFailure::Failed(e) => e,
        }
    }
}

/// Reads a role file (`read_roles`: Roles/*.xml, customizations.xml or a solution zip, by
/// content) on a blocking thread; a refusal names the file, line and column.
pub(crate) async fn read_file(
    file: String,
    body: Vec<u8>,
) -> Result<Vec<strata_solution::SolutionRole>, ReadFailure> {
    tokio::task::spawn_blocking(move || read_roles(&file, &body))
        .await
        .map_err(|e| {
            ReadFailure::Failed(AppError::internal(format!("reading the roles failed: {e}")).into())
        })?
        .map_err(ReadFailure::File)
}

/// The roles planned against the organisation for the caller: administration is not done on
/// behalf of another user, and since the plan tells whether roles exist and how they differ,
/// the caller must read every role it matches as `GET …/roles/{role}` asks it. Answers the
/// actor the batch is written as.
pub(crate) async fn plan_for(
    request: &OrgRequest,
    roles: &[strata_solution::SolutionRole],
    options: ImportOptions,
) -> Result<(strata_app::Actor, Plan), ApiError> {
    let loaded = request.handle.read().await;
    if request.acting.impersonator().is_some() {
        return Err(ApiError::new(
            "bad_actor",
            "administration is not done on behalf of another user",
        ));
    }
    let planned = plan(&loaded.org, roles, options);
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
    Ok((request.acting.actor(&loaded.org), planned))
}

/// What carrying out a plan did.
pub(crate) enum Carried {
    /// The plan had no operation: the revision it was read at.
    Nothing { revision: u64 },
    /// A dry run: tried and rolled back (D54–D56).
    Tried(strata_app::DryRun),
    /// Written as one batch: its revision.
    Written { revision: u64 },
}

/// Tries (`dry_run`) or writes a plan's batch as `actor` through the application layer — one
/// batch on the one write path, authorized as role creation and editing are (D26).
pub(crate) async fn carry_out(
    state: &Arc<AppState>,
    request: &OrgRequest,
    actor: strata_app::Actor,
    operations: Vec<strata_ops::Operation>,
    dry_run: bool,
) -> Result<Carried, ApiError> {
    if operations.is_empty() {
        return Ok(Carried::Nothing {
            revision: request.handle.read().await.revision,
        });
    }
    if dry_run {
        let may_see = crate::dryrun::may_see(&actor);
        return Ok(Carried::Tried(
            request
                .handle
                .dry_run(Arc::clone(&state.store), operations, actor, may_see)
                .await?,
        ));
    }
    let written = request
        .handle
        .write(Arc::clone(&state.store), operations, actor)
        .await?;
    state.metrics.wrote(written.changes.len());
    Ok(Carried::Written {
        revision: written.revision,
    })
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
    let roles = read_file(file, body).await?;
    let options = ImportOptions {
        create_tables: params.create_tables == Some(true),
    };
    let (actor, planned) = plan_for(&request, &roles, options).await?;
    let mut answer = planned.to_json();
    let dry_run = params.dry_run == Some(true);
    answer["dry_run"] = json!(dry_run);
    match carry_out(&state, &request, actor, planned.operations, dry_run).await? {
        Carried::Nothing { revision } | Carried::Written { revision } => {
            answer["revision"] = json!(revision);
        }
        Carried::Tried(tried) => {
            let tried = tried.to_json();
            answer["revision"] = tried["revision"].clone();
            answer["difference"] = tried["difference"].clone();
        }
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
        // The roles only (model-sized): a plain read. A long read's turn would make any user
        // who may read roles able to line up with the writes (D140).
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
