//! The audit: entries filtered by record, user and time, a page at a time (the store's `seq`
//! cursor), each shown as the API shows it to this reader (`prvReadAuditSummary`, then
//! `strata_app::audit::as_seen_by`: entries about records the reader may not read left out,
//! secured values they may not read nulled), updates as old → new; and the chain's
//! verification on request.

use std::sync::Arc;

use axum::extract::Query;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use strata_engine::UserId;
use strata_store::AuditQuery;

use super::{Console, encode, user_link};
use crate::blocking;
use crate::error::ApiError;

/// Entries on one page.
const PAGE: usize = 50;

/// The miscellaneous privilege that opens the audit (as the API's `…/audit`).
pub(crate) const READ_AUDIT: &str = "prvReadAuditSummary";

#[derive(Deserialize, Default)]
pub(crate) struct AuditParams {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    user: Option<String>,
    /// `YYYY-MM-DD` (UTC), from the start of that day.
    #[serde(default)]
    from: Option<String>,
    /// `YYYY-MM-DD` (UTC), to the end of that day.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    verify: Option<String>,
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Milliseconds since the epoch as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `YYYY-MM-DD` → the millisecond its day starts (UTC).
fn day_start(text: &str, field: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::new(
            "bad_query",
            format!("`{field}` must be a date YYYY-MM-DD, not `{text}`"),
        )
        .at(field)
    };
    let mut parts = text.splitn(3, '-').map(str::parse::<i64>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d))) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return Err(bad());
    }
    Ok(days_from_civil(y, m, d) * 86_400_000)
}

/// An entry's detail: an update's columns as old → new; anything else as compact JSON.
fn detail(entry: &strata_store::AuditEntry) -> Markup {
    let d = &entry.record.detail;
    let changes = d.as_object().filter(|o| {
        !o.is_empty()
            && o.values().all(|v| {
                v.as_object()
                    .is_some_and(|c| c.contains_key("old") && c.contains_key("new"))
            })
    });
    // A setup operation: `{old, new}` with the operation as `new`; a grid cell as its depths.
    if let (Some(new), Some(old)) = (d.get("new").and_then(Value::as_object), d.get("old")) {
        if new.get("op").and_then(Value::as_str) == Some("set_role_privilege") {
            let field = |k: &str| new.get(k).and_then(Value::as_str).unwrap_or("");
            let before = old["privileges"][field("table")][field("privilege")]
                .as_str()
                .unwrap_or("none");
            return html! {
                span.cell-change { "role " strong { (field("role")) } ": " (field("table")) " " (field("privilege")) " "
                    span.old { (before) } " → " span.new { (field("depth")) } }
            };
        }
        return html! {
            ul.changes {
                @for (k, v) in new.iter().filter(|(k, _)| k.as_str() != "op") {
                    li { code { (k) } ": " (v) }
                }
            }
            @if !old.is_null() { details { summary { "before" } code.detail { (old) } } }
        };
    }
    match changes {
        Some(columns) => html! {
            ul.changes {
                @for (column, c) in columns {
                    li { code { (column) } ": " span.old { (c["old"]) } " → " span.new { (c["new"]) } }
                }
            }
        },
        None if d.is_null() => html! {},
        None => html! { code.detail { (d) } },
    }
}

fn given(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `GET /console/audit`.
pub(crate) async fn audit(c: Console, Query(p): Query<AuditParams>) -> Response {
    let (record, user) = (given(p.record.as_ref()), given(p.user.as_ref()));
    let (from, to) = (given(p.from.as_ref()), given(p.to.as_ref()));
    let form = html! {
        form.question method="get" action="/console/audit" {
            div.field { label for="record" { "Record" } input #record type="text" name="record" value=[record.as_deref()]; }
            div.field { label for="user" { "User" } input #user type="text" name="user" value=[user.as_deref()]; }
            div.field { label for="from" { "From (UTC)" } input #from type="date" name="from" value=[from.as_deref()]; }
            div.field { label for="to" { "To (UTC)" } input #to type="date" name="to" value=[to.as_deref()]; }
            button type="submit" { "Filter" }
        }
    };
    let answer = page(&c, &p, (record, user, from, to)).await;
    match answer {
        Ok(body) => c.page("Audit", html! { (form) (body) }),
        Err(e) => c.page("Audit", html! { (form) (super::error_box(&e)) }),
    }
}

async fn page(
    c: &Console,
    p: &AuditParams,
    (record, user, from, to): (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
) -> Result<Markup, ApiError> {
    {
        let loaded = c.request.handle.read().await;
        c.request.require_misc(&loaded.org, READ_AUDIT)?;
    }
    let query = AuditQuery {
        record: record.clone(),
        user: user.clone(),
        from_ms: from.as_deref().map(|f| day_start(f, "from")).transpose()?,
        to_ms: to
            .as_deref()
            .map(|t| day_start(t, "to").map(|ms| ms + 86_400_000 - 1))
            .transpose()?,
        after_seq: p.after.unwrap_or(0),
        limit: PAGE + 1,
    };
    let org = c.request.handle.name.clone();
    let mut entries = blocking(&c.state.store, move |store| Ok(store.audit(&org, &query)?)).await?;
    let next = (entries.len() > PAGE).then(|| {
        entries.truncate(PAGE);
        entries.last().map_or(0, |e| e.seq)
    });
    let readers: Vec<UserId> = c.request.acting.each().collect();
    let entries: Vec<strata_store::AuditEntry> = {
        let loaded = c.request.handle.read().await;
        entries
            .into_iter()
            .filter_map(|e| strata_app::audit::as_seen_by(&loaded.org, &readers, e))
            .collect()
    };
    let verification = if p.verify.is_some() {
        let org = c.request.handle.name.clone();
        let store = Arc::clone(&c.state.store);
        Some(blocking(&store, move |store| Ok(store.verify_audit(&org)?)).await?)
    } else {
        None
    };
    let mut keep = Vec::new();
    for (k, v) in [
        ("record", &record),
        ("user", &user),
        ("from", &from),
        ("to", &to),
    ] {
        if let Some(v) = v {
            keep.push(format!("{k}={}", encode(v)));
        }
    }
    let keep = keep.join("&");
    let link = |extra: &str| {
        let q = [keep.as_str(), extra]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("&");
        format!("/console/audit?{q}")
    };
    Ok(html! {
        section #verification aria-label="Audit chain" {
            @match &verification {
                Some(strata_store::Verification::Intact { entries }) => {
                    p.flash role="status" { "The audit chain is intact: " (entries) " entries verified at " (rfc3339(crate::now_ms())) "." }
                }
                Some(strata_store::Verification::Tampered { seq, problem }) => {
                    p.flash.error role="alert" { "The audit chain is broken at entry " (seq) ": " (problem) " (verified at " (rfc3339(crate::now_ms())) ")." }
                }
                None => { a href=(link("verify=1")) { "Verify the audit chain now" } }
            }
        }
        table.list #audit {
            thead { tr {
                th scope="col" { "Time (UTC)" } th scope="col" { "Revision" } th scope="col" { "By" }
                th scope="col" { "Action" } th scope="col" { "Table" } th scope="col" { "Record" } th scope="col" { "Change" }
            } }
            tbody {
                @for e in &entries {
                    tr {
                        td { (rfc3339(e.at_ms)) }
                        td { (e.revision) }
                        td {
                            @match e.record.user.as_deref() {
                                Some(u) if !u.starts_with('#') => { (user_link(u)) }
                                Some(u) => { (u) }
                                None => {}
                            }
                            @if let Some(i) = &e.record.impersonator { " (by " (i) ")" }
                        }
                        td { (e.record.action) }
                        td { (e.record.table.as_deref().unwrap_or("")) }
                        td { @if let Some(r) = &e.record.record { a href={ "/console/audit?record=" (encode(r)) } { (r) } } }
                        td { (detail(e)) }
                    }
                }
            }
        }
        @if entries.is_empty() { p { "No entry you may read matches." } }
        nav.pages aria-label="Pages" {
            @if p.after.is_some() { a href=(link("")) { "First page" } " " }
            @if let Some(next) = next { a rel="next" href=(link(&format!("after={next}"))) { "Next page" } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(day_start("2000-02-29", "from").ok(), Some(951_782_400_000));
        assert!(day_start("2000-13-01", "from").is_err());
        assert!(day_start("yesterday", "from").is_err());
    }
}
