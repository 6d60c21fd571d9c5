//! The access review as a file (docs/review.md, D70–D72):
//! `GET /api/v1/orgs/{org}/review?format=xlsx|csv&inactive_days=N`. The views are the engine's
//! (`Organization::access_review`), the last accesses the user-access audit's and the files
//! `strata_app::review`'s; this module decides who may take the review (D70) and answers the
//! file with its content type and a download name.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use strata_app::review::{self, ReviewFormat};
use strata_engine::{Organization, Privilege, ReviewOptions};

use crate::AppState;
use crate::error::ApiError;
use crate::request::{CHECK_ACCESS_OF_OTHERS, OrgRequest, may_ask_about, require_role_read};

/// The audit summary privilege: the review reads each user's last access from the audit.
const READ_AUDIT_SUMMARY: &str = "prvReadAuditSummary";

#[derive(Deserialize, Clone, Copy, Debug, Default)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Xlsx,
    Csv,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    #[serde(default)]
    format: Format,
    #[serde(default)]
    inactive_days: Option<u32>,
}

fn denied(org: &Organization, user: strata_engine::UserId, what: &str) -> ApiError {
    ApiError::new(
        "denied",
        format!(
            "user `{}` may not take the access review: {what} (D70)",
            org.user(user).name
        ),
    )
}

/// Whether every acting user may take the review (D70). The review is about everyone's access,
/// whole or refused: the root key and System Administrators may; another user needs
/// `prvCheckAccessOfOthers` and the right to ask about every user (D35), `prvReadAuditSummary`
/// (last accesses come from the audit, D36), Read on `role` over every role's unit (D42), and
/// Read on every record the shares view names (D34).
pub(crate) fn may_review(request: &OrgRequest, org: &Organization) -> Result<(), ApiError> {
    for u in request.acting.each() {
        if org.system_administrator(u).is_some() {
            continue;
        }
        for privilege in [CHECK_ACCESS_OF_OTHERS, READ_AUDIT_SUMMARY] {
            if !org.holds_misc(u, privilege) {
                return Err(denied(org, u, &format!("it needs {privilege}")));
            }
        }
        let units: BTreeSet<_> = org
            .role_ids()
            .filter(|r| !org.role(*r).deleted)
            .map(|r| org.role(r).business_unit)
            .collect();
        for unit in units {
            require_role_read(org, u, unit, "every role (the access review)")?;
        }
        for target in org.user_ids() {
            may_ask_about(org, u, target).map_err(|e| denied(org, u, &e.message))?;
        }
        for t in org.table_ids() {
            for r in org.table_records(t) {
                let record = org.record(*r);
                if record.alive
                    && !(record.shares.is_empty() && record.field_shares.is_empty())
                    && !org.check(u, Privilege::Read, *r)
                {
                    return Err(denied(
                        org,
                        u,
                        &format!(
                            "the shares view names record `{}` of `{}`, which the user may not read",
                            record.key,
                            org.table(t).name
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The review's file: its bytes, content type and download name.
pub(crate) struct ReviewFile {
    pub(crate) bytes: Vec<u8>,
    pub(crate) content_type: &'static str,
    pub(crate) name: String,
}

/// `inactive_days` checked against its bound (default [`strata_engine::DEFAULT_INACTIVE_DAYS`]).
pub(crate) fn inactive_days(given: Option<u32>) -> Result<u32, ApiError> {
    let days = given.unwrap_or(strata_engine::DEFAULT_INACTIVE_DAYS);
    if days > strata_engine::MAX_INACTIVE_DAYS {
        return Err(ApiError::new(
            "bad_query",
            format!(
                "`inactive_days` must be at most {}",
                strata_engine::MAX_INACTIVE_DAYS
            ),
        )
        .at("inactive_days"));
    }
    Ok(days)
}

/// The access review as a file, for whoever may take it (D70) — the one implementation behind
/// `GET …/review` and the console's review screen. Every view, the audit read and the file on
/// a blocking thread, never an async worker; the audit is read without the organisation's lock.
pub(crate) async fn review_file(
    state: &Arc<AppState>,
    request: OrgRequest,
    format: ReviewFormat,
    inactive_days: u32,
) -> Result<ReviewFile, ApiError> {
    let handle = Arc::clone(&request.handle);
    let store = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || {
        let users = {
            let loaded = handle.read_blocking();
            may_review(&request, &loaded.org)?;
            review::user_names(&loaded.org)
        };
        let last_seen = review::last_seen(store.as_ref(), &handle.name, &users)?;
        let now_ms = strata_app::now_ms();
        let answer = {
            // A long read: in the writer's turn, so that checks are not held up.
            let loaded = handle.read_long_blocking();
            may_review(&request, &loaded.org)?;
            loaded.org.access_review(&ReviewOptions {
                organization: handle.name.clone(),
                revision: loaded.revision,
                now_ms,
                inactive_days,
                last_seen,
            })
        };
        let (bytes, content_type) = match format {
            ReviewFormat::Xlsx => (review::xlsx(&answer)?, review::XLSX_CONTENT_TYPE),
            ReviewFormat::Csv => (review::csv_zip(&answer)?, review::ZIP_CONTENT_TYPE),
        };
        Ok::<ReviewFile, ApiError>(ReviewFile {
            bytes,
            content_type,
            name: review::file_name(&handle.name, now_ms, format),
        })
    })
    .await
    .map_err(|e| strata_app::AppError::internal(format!("access review task failed: {e}")))?
}

impl ReviewFile {
    /// The file as a download.
    pub(crate) fn into_response(self) -> Response {
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, self.content_type.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", self.name),
                ),
            ],
            self.bytes,
        )
            .into_response()
    }
}

/// `GET …/review`: the access review as an XLSX workbook (default) or a zip of CSV files.
pub(crate) async fn review(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Query(params): Query<ReviewParams>,
) -> Result<Response, ApiError> {
    let inactive_days = inactive_days(params.inactive_days)?;
    let format = match params.format {
        Format::Xlsx => ReviewFormat::Xlsx,
        Format::Csv => ReviewFormat::Csv,
    };
    Ok(review_file(&state, request, format, inactive_days)
        .await?
        .into_response())
}
