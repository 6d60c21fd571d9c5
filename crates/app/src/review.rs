//! The access review as files (docs/review.md, D70–D72): the last access of each user from the
//! user-access audit, then the engine's views ([`strata_engine::Organization::access_review`])
//! written as an XLSX workbook (a sheet per view, frozen header row, filters, depth colours)
//! or as CSV (RFC 4180, one file per view, in a folder or a zip; text that a spreadsheet
//! would take for a formula is prefixed with `'`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use strata_engine::{AccessReview, Cell, Depth, Organization, ReviewView, UserId};
use strata_store::{AuditOrder, AuditQuery, Store};

use crate::AppError;

/// The two formats of the review.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReviewFormat {
    /// One workbook, a sheet per view.
    Xlsx,
    /// One CSV file per view (a zip over HTTP, a folder or a zip from the CLI).
    Csv,
}

/// The content type of an XLSX workbook.
pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// The content type of the CSV views, zipped.
pub const ZIP_CONTENT_TYPE: &str = "application/zip";

/// The file name of a review: `strata-review-ORG-YYYY-MM-DD.xlsx` (or `.zip`).
#[must_use]
pub fn file_name(organization: &str, now_ms: i64, format: ReviewFormat) -> String {
    let date: String = strata_engine::rfc3339(now_ms).chars().take(10).collect();
    let safe: String = organization
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ext = match format {
        ReviewFormat::Xlsx => "xlsx",
        ReviewFormat::Csv => "zip",
    };
    format!("strata-review-{safe}-{date}.{ext}")
}

/// Every user of the organisation with their name: what [`last_seen`] looks up (taken under
/// the organisation's lock, so that the audit is read without it).
#[must_use]
pub fn user_names(org: &Organization) -> Vec<(UserId, String)> {
    org.user_ids()
        .map(|u| (u, org.user(u).name.clone()))
        .collect()
}

/// Each user's newest `user_access` entry still in the audit (entries past their retention
/// are gone), read per user through the audit's index by record, newest first.
///
/// # Errors
///
/// The store's.
pub fn last_seen(
    store: &dyn Store,
    organization: &str,
    users: &[(UserId, String)],
) -> Result<HashMap<UserId, i64>, AppError> {
    const PAGE: usize = 16;
    let mut out = HashMap::new();
    for (u, name) in users {
        // The newest access entries about the user, through the audit's index by record,
        // newest first: one short read per user, not a walk through everything the audit says
        // about them. Only the record and the action filter the read, so that the store
        // reads by record; the rest is checked here.
        let mut query = AuditQuery {
            record: Some(name.clone()),
            action: Some("user_access".to_owned()),
            order: AuditOrder::Descending,
            limit: PAGE,
            ..AuditQuery::default()
        };
        loop {
            let entries = store.audit(organization, &query)?;
            let seen = entries.iter().find(|e| {
                e.record.table.as_deref() == Some("systemuser")
                    && e.record.user.as_deref() == Some(name.as_str())
            });
            if let Some(entry) = seen {
                out.insert(*u, entry.at_ms);
                break;
            }
            match entries.last() {
                Some(last) if entries.len() == PAGE => query.before_seq = Some(last.seq),
                _ => break,
            }
        }
    }
    Ok(out)
}

/// A CSV field (RFC 4180): text that a spreadsheet would read as a formula (beginning with
/// `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`; a field holding a
/// comma, a quote, a CR or an LF is quoted, quotes doubled.
#[must_use]
pub fn csv_field(cell: &Cell) -> String {
    let mut text = cell.text();
    if matches!(cell, Cell::Text(_)) && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        text.insert(0, '\'');
    }
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One view as CSV: the header, then the rows, each line ending in CRLF; UTF-8 without a byte
/// order mark.
#[must_use]
pub fn csv_view(view: &ReviewView) -> String {
    let mut out = String::new();
    let header: Vec<String> = view
        .columns
        .iter()
        .map(|c| csv_field(&Cell::Text((*c).to_owned())))
        .collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for row in &view.rows {
        let fields: Vec<String> = row.iter().map(csv_field).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The deflate level of the review's zips, the workbook's and the CSV files' (D138).
const ZIP_LEVEL: u8 = 2;

/// The views as CSV files in a zip (`summary.csv`, `user_roles.csv`, …), deflated.
///
/// # Errors
///
/// `internal` when the zip cannot be written (memory only: never expected).
pub fn csv_zip(review: &AccessReview) -> Result<Vec<u8>, AppError> {
    let zip_error = |e: &dyn std::fmt::Display| AppError::internal(format!("review zip: {e}"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(i64::from(ZIP_LEVEL)));
    for view in &review.views {
        zip.start_file(format!("{}.csv", view.name), options)
            .map_err(|e| zip_error(&e))?;
        zip.write_all(csv_view(view).as_bytes())
            .map_err(|e| zip_error(&e))?;
    }
    Ok(zip.finish().map_err(|e| zip_error(&e))?.into_inner())
}

/// The views as CSV files in `dir` (created if missing); the paths written.
///
/// # Errors
///
/// `internal`, naming the file, when one cannot be written.
pub fn csv_folder(review: &AccessReview, dir: &Path) -> Result<Vec<PathBuf>, AppError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| AppError::internal(format!("cannot create `{}`: {e}", dir.display())))?;
    let mut written = Vec::new();
    for view in &review.views {
        let path = dir.join(format!("{}.csv", view.name));
        std::fs::write(&path, csv_view(view))
            .map_err(|e| AppError::internal(format!("cannot write `{}`: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

/// The fill of a depth cell: no fill for none, then paler to stronger as the reach grows
/// (organisation-wide is red: the cells a review looks at first).
fn depth_fill(depth: Depth) -> Option<u32> {
    match depth {
        Depth::None => None,
        Depth::User => Some(0x00FF_F2CC),
        Depth::BusinessUnit => Some(0x00FF_E699),
        Depth::ParentChild => Some(0x00F4_B183),
        Depth::Organization => Some(0x00F8_696B),
    }
}

/// Width of a column: its longest cell among the first rows, within bounds.
fn column_width(view: &ReviewView, col: usize) -> f64 {
    let longest = view
        .rows
        .iter()
        .take(1_000)
        .map(|r| r.get(col).map_or(0, |c| c.text().chars().count()))
        .chain([view.columns[col].chars().count()])
        .max()
        .unwrap_or(8);
    (longest.clamp(6, 60) + 2) as f64
}

/// The review as an XLSX workbook: a sheet per view named by its title, the header row bold
/// and frozen, a filter over every column, depths coloured by reach.
///
/// # Errors
///
/// `invalid` when a view has more rows than a sheet holds (1,048,575) or a cell more text than
/// one holds (32,767 characters); `internal` otherwise.
pub fn xlsx(review: &AccessReview) -> Result<Vec<u8>, AppError> {
    use crate::xlsx::{Book, StyleSpec, Value};
    use std::borrow::Cow;
    const MAX_ROWS: usize = crate::xlsx::MAX_ROWS - 1;
    if let Some(v) = review.views.iter().find(|v| v.rows.len() > MAX_ROWS) {
        return Err(AppError::new(
            "invalid",
            format!(
                "the view `{}` has {} rows, more than a sheet holds ({MAX_ROWS}): ask for format csv",
                v.name,
                v.rows.len()
            ),
        ));
    }
    // Style 1: the header; 2–6: the depths in `Depth::ALL` order (the order of the enum).
    let mut styles = vec![StyleSpec {
        bold: true,
        fill: Some(0x00D9_E1F2),
        font: None,
    }];
    styles.extend(Depth::ALL.into_iter().map(|d| match depth_fill(d) {
        Some(rgb) => StyleSpec {
            fill: Some(rgb),
            ..StyleSpec::default()
        },
        None => StyleSpec {
            font: Some(0x00A6_A6A6),
            ..StyleSpec::default()
        },
    }));
    // Deflate level 2 (D138): two fifths less time than the default 6 for a sixth more bytes.
    let mut book = Book::new(&styles, ZIP_LEVEL);
    for view in &review.views {
        let widths: Vec<f64> = (0..view.columns.len())
            .map(|c| column_width(view, c))
            .collect();
        let rows = view.rows.iter().map(|row| {
            // Text is written as text, never as a formula: no prefix is needed here.
            row.iter()
                .map(|cell| match cell {
                    Cell::Empty => (Value::Empty, 0),
                    Cell::Number(n) => (Value::Number(*n), 0),
                    Cell::Depth(d) => (Value::Text(Cow::Borrowed(d.name())), 2 + *d as u16),
                    Cell::Text(t) => (Value::Text(Cow::Borrowed(t)), 0),
                    Cell::Flag(yes) => (
                        Value::Text(Cow::Borrowed(if *yes { "yes" } else { "no" })),
                        0,
                    ),
                    Cell::Time(_) => (Value::Text(Cow::Owned(cell.text())), 0),
                })
                .collect()
        });
        book.sheet(view.title, view.columns, 1, &widths, rows)
            .map_err(|e| match e {
                // A cell too long for a sheet (a user with thousands of roles, say): the CSV
                // files have no such limit.
                crate::xlsx::XlsxError::Limit(m) => AppError::new(
                    "invalid",
                    format!("the view `{}`: {m}: ask for format csv", view.name),
                ),
                crate::xlsx::XlsxError::Zip(m) => {
                    AppError::internal(format!("review sheet `{}`: {m}", view.name))
                }
            })?;
    }
    book.finish()
        .map_err(|e| AppError::internal(format!("review workbook: {e}")))
}
