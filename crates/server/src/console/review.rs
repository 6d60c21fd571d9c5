//! The access review download (docs/review.md): the XLSX workbook or the zipped CSV files, with
//! the inactive-days option — the same files and the same rule of who may take the review (D70)
//! as `GET …/review`, through `admin_review::review_file`, the one implementation.

use axum::extract::Query;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use strata_app::review::ReviewFormat;

use super::{Console, read};
use crate::admin_review::{inactive_days, may_review, review_file};
use crate::error::{ApiError, status_of};

/// The views the files hold (a sheet or a CSV file each), as `strata_engine`'s review names
/// them; shown so that a reviewer knows what they download.
const VIEWS: [(&str, &str); 14] = [
    ("Summary", "summary"),
    ("Users and roles", "user_roles"),
    ("Role privileges", "role_privileges"),
    ("Role misc privileges", "role_misc_privileges"),
    ("Effective privileges", "effective_privileges"),
    ("Organisation-wide delete", "organization_delete"),
    ("Column security profiles", "column_profiles"),
    ("Shares", "shares"),
    ("System Administrators", "system_administrators"),
    ("Users without roles", "users_without_roles"),
    ("Inactive users", "inactive_users"),
    ("Deprecated role holders", "deprecated_role_holders"),
    ("Rule violations", "rule_violations"),
    ("Licences", "licences"),
];

#[derive(Deserialize, Default)]
pub(crate) struct ReviewParams {
    #[serde(default)]
    inactive_days: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

/// The inactive-days field: empty is the default; anything else a whole number in bounds.
fn days(p: &ReviewParams) -> Result<u32, ApiError> {
    let given = match p.inactive_days.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(text.parse::<u32>().map_err(|_| {
            ApiError::new(
                "bad_query",
                format!("`inactive_days` must be a whole number of days, not `{text}`"),
            )
            .at("inactive_days")
        })?),
    };
    inactive_days(given)
}

/// `GET /console/review`: what the review holds, whether this user may take it, and the two
/// downloads.
pub(crate) async fn page(c: Console, Query(p): Query<ReviewParams>) -> Response {
    let days = days(&p);
    let allowed = read(&c, |org, request| may_review(request, org)).await;
    let refusal = match allowed {
        Ok(Ok(())) => None,
        Ok(Err(e)) | Err(e) => Some(e),
    };
    let shown_days = match &days {
        Ok(d) => d.to_string(),
        Err(_) => p.inactive_days.clone().unwrap_or_default(),
    };
    let link = |format: &str| {
        format!(
            "/console/review/download?format={format}&inactive_days={}",
            super::encode(&shown_days)
        )
    };
    let body = html! {
        p { "The access review of the organisation at its current revision: every view as a sheet of one XLSX workbook, or as one CSV file each in a zip (RFC 4180; text a spreadsheet would read as a formula is prefixed with an apostrophe). The same files as the API's " code { "GET …/review" } "." }
        form.question method="get" action="/console/review" {
            div.field {
                label for="inactive_days" { "Inactive after (days without access)" }
                input #inactive_days type="number" min="0" max=(strata_engine::MAX_INACTIVE_DAYS) name="inactive_days" value=(shown_days);
            }
            button type="submit" { "Apply" }
        }
        @if let Err(e) = &days { (super::error_box(e)) }
        @match &refusal {
            Some(e) => { (super::error_box(e)) }
            None => {
                @if days.is_ok() {
                    ul.downloads #downloads {
                        li { a #download-xlsx href=(link("xlsx")) download { "Download the workbook (XLSX)" } }
                        li { a #download-csv href=(link("csv")) download { "Download the CSV files (zip)" } }
                    }
                }
            }
        }
        h2 { "Views" }
        table.list #views {
            thead { tr { th scope="col" { "Sheet" } th scope="col" { "CSV file" } } }
            tbody { @for (title, file) in VIEWS { tr { td { (title) } td { code { (file) ".csv" } } } } }
        }
    };
    let mut r = c.page("Access review", body);
    if let Some(e) = refusal.as_ref().or(days.as_ref().err()) {
        *r.status_mut() = status_of(e.code);
    }
    r
}

/// `GET /console/review/download?format=xlsx|csv&inactive_days=N`: the file, or the refusal
/// on a page.
pub(crate) async fn download(c: Console, Query(p): Query<ReviewParams>) -> Response {
    let format = match p.format.as_deref() {
        None | Some("xlsx") => Ok(ReviewFormat::Xlsx),
        Some("csv") => Ok(ReviewFormat::Csv),
        Some(other) => Err(ApiError::new(
            "bad_query",
            format!("`format` must be `xlsx` or `csv`, not `{other}`"),
        )
        .at("format")),
    };
    let days = days(&p);
    let (format, days) = match (format, days) {
        (Ok(f), Ok(d)) => (f, d),
        (Err(e), _) | (_, Err(e)) => return c.error("Access review", &e),
    };
    let request = crate::request::OrgRequest {
        handle: std::sync::Arc::clone(&c.request.handle),
        acting: c.request.acting,
    };
    match review_file(&c.state, request, format, days).await {
        Ok(file) => file.into_response(),
        Err(e) => c.error("Access review", &e),
    }
}
