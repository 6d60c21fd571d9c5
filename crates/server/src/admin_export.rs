//! `GET /api/v1/orgs/{org}/export[?records=true]`: the whole model as a scenario file
//! (`strata_scenario::export`, docs/export.md), for System Administrators and the root key
//! only, like `GET …/model` (D66). The answer is YAML text (`application/yaml`).

use std::sync::Arc;

use axum::extract::Query;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_app::AppError;
use strata_scenario::export::{ExportOptions, export as export_model};

use crate::error::ApiError;
use crate::request::OrgRequest;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    /// Records, shares, column shares and record access team members too.
    #[serde(default)]
    records: bool,
}

/// The organisation as a scenario file, written on a blocking thread (with records it walks
/// every record).
pub(crate) async fn export(
    request: OrgRequest,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let handle = Arc::clone(&request.handle);
    {
        let loaded = handle.read().await;
        request.require_system_administrator(&loaded.org, "export the whole model")?;
    }
    let name = handle.name.clone();
    let text = tokio::task::spawn_blocking(move || {
        // A long read: in the writer's turn, so that checks are not held up (read_long_blocking).
        let loaded = handle.read_long_blocking();
        let options = ExportOptions {
            name,
            records: params.records,
        };
        export_model(&loaded.org, &options)
    })
    .await
    .map_err(|e| AppError::internal(format!("export failed: {e}")))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
        text,
    )
        .into_response())
}
