//! The audit: entries filtered by record, user, table, action and time, newest first by default
//! (or oldest first), a page at a time in both directions with the store's `seq` cursors; a
//! user's access history (their `user_access` entries: when they used the API or the console).
//! Read through `audit_pages::read`, the one implementation the API's `…/audit` uses:
//! `prvReadAuditSummary`, then each entry as `strata_app::audit::as_seen_by` lets this reader
//! see it (entries about records the reader may not read left out, secured values nulled);
//! updates shown as old → new; and the chain's verification on request.

use std::sync::Arc;

use axum::extract::Query;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use strata_store::AuditOrder;

use super::{Console, encode, user_link};
use crate::audit_pages::{self, PageQuery};
use crate::blocking;
use crate::error::ApiError;

/// Entries on one page.
const PAGE: usize = 50;

/// The miscellaneous privilege that opens the audit (as the API's `…/audit`).
pub(crate) const READ_AUDIT: &str = "prvReadAuditSummary";
/// The action of user access entries (D12).
const USER_ACCESS: &str = "user_access";

#[derive(Deserialize, Default)]
pub(crate) struct AuditParams {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    user: Option<String>,
    /// A table's logical name.
    #[serde(default)]
    table: Option<String>,
    /// `user_access` for access history; empty for every action.
    #[serde(default)]
    action: Option<String>,
    /// `YYYY-MM-DD` (UTC), from the start of that day.
    #[serde(default)]
    from: Option<String>,
    /// `YYYY-MM-DD` (UTC), to the end of that day.
    #[serde(default)]
    to: Option<String>,
    /// `newest` (the default) or `oldest` first.
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    before: Option<u64>,
    #[serde(default)]
    verify: Option<String>,
}

/// Times as RFC 3339 in UTC, to the second.
pub(crate) use strata_engine::rfc3339;

/// `YYYY-MM-DD` → the millisecond its day starts (UTC).
fn day_start(text: &str, field: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::new(
            "bad_query",
            format!("`{field}` must be a date YYYY-MM-DD, not `{text}`"),
        )
        .at(field)
    };
    match strata_engine::date::Date::parse(text) {
        Some(d) if text.len() == 10 && d.year >= 1970 => Ok(d.days() * 86_400_000),
        _ => Err(bad()),
    }
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

/// The filters of a page, as the form shows them and the links keep them.
#[derive(Clone)]
struct Filters {
    record: Option<String>,
    user: Option<String>,
    table: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    order: AuditOrder,
}

impl Filters {
    fn of(p: &AuditParams) -> Result<Self, ApiError> {
        let order = match given(p.order.as_ref()).as_deref() {
            None | Some("newest") => AuditOrder::Descending,
            Some("oldest") => AuditOrder::Ascending,
            Some(other) => {
                return Err(ApiError::new(
                    "bad_query",
                    format!("`order` must be `newest` or `oldest`, not `{other}`"),
                )
                .at("order"));
            }
        };
        Ok(Filters {
            record: given(p.record.as_ref()),
            user: given(p.user.as_ref()),
            table: given(p.table.as_ref()),
            action: given(p.action.as_ref()),
            from: given(p.from.as_ref()),
            to: given(p.to.as_ref()),
            order,
        })
    }

    /// The query string that keeps these filters, with `extra` added.
    fn link(&self, extra: &str) -> String {
        let order = match self.order {
            AuditOrder::Descending => None,
            AuditOrder::Ascending => Some("oldest".to_owned()),
        };
        let mut keep = Vec::new();
        for (k, v) in [
            ("record", &self.record),
            ("user", &self.user),
            ("table", &self.table),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
            ("order", &order),
        ] {
            if let Some(v) = v {
                keep.push(format!("{k}={}", encode(v)));
            }
        }
        if !extra.is_empty() {
            keep.push(extra.to_owned());
        }
        format!("/console/audit?{}", keep.join("&"))
    }

    /// A user's access history: their user access entries only.
    fn history_of(&self) -> Option<&str> {
        match (&self.user, self.action.as_deref()) {
            (Some(u), Some(USER_ACCESS)) => Some(u),
            _ => None,
        }
    }

    fn form(&self) -> Markup {
        let newest = self.order == AuditOrder::Descending;
        let access = self.action.as_deref() == Some(USER_ACCESS);
        html! {
            form.question method="get" action="/console/audit" {
                div.field { label for="record" { "Record" } input #record type="text" name="record" value=[self.record.as_deref()]; }
                div.field { label for="user" { "User" } input #user type="text" name="user" value=[self.user.as_deref()]; }
                div.field { label for="table" { "Table" } input #table type="text" name="table" value=[self.table.as_deref()]; }
                div.field {
                    label for="action" { "Entries" }
                    select #action name="action" {
                        option value="" selected[!access] { "Every action" }
                        option value=(USER_ACCESS) selected[access] { "User access only (access history)" }
                    }
                }
                div.field { label for="from" { "From (UTC)" } input #from type="date" name="from" value=[self.from.as_deref()]; }
                div.field { label for="to" { "To (UTC)" } input #to type="date" name="to" value=[self.to.as_deref()]; }
                div.field {
                    label for="order" { "Order" }
                    select #order name="order" {
                        option value="newest" selected[newest] { "Newest first" }
                        option value="oldest" selected[!newest] { "Oldest first" }
                    }
                }
                button type="submit" { "Filter" }
            }
        }
    }
}

/// `GET /console/audit`.
pub(crate) async fn audit(c: Console, Query(p): Query<AuditParams>) -> Response {
    let filters = match Filters::of(&p) {
        Ok(f) => f,
        Err(e) => return c.error("Audit", &e),
    };
    let title = match filters.history_of() {
        Some(u) => format!("Access history of {u}"),
        None => "Audit".to_owned(),
    };
    let answer = page(&c, &p, &filters).await;
    match answer {
        Ok(body) => c.page(&title, html! { (filters.form()) (body) }),
        Err(e) => c.refused(&title, filters.form(), &e),
    }
}

async fn page(c: &Console, p: &AuditParams, f: &Filters) -> Result<Markup, ApiError> {
    let query = PageQuery {
        record: f.record.clone(),
        user: f.user.clone(),
        table: f.table.clone(),
        action: f.action.clone(),
        from_ms: f
            .from
            .as_deref()
            .map(|d| day_start(d, "from"))
            .transpose()?,
        to_ms: f
            .to
            .as_deref()
            .map(|t| day_start(t, "to").map(|ms| ms + 86_400_000 - 1))
            .transpose()?,
        order: f.order,
        after: p.after,
        before: p.before,
        limit: PAGE,
    };
    let page = audit_pages::read(&c.state, &c.request, query).await?;
    let verification = if p.verify.is_some() {
        let org = c.request.handle.name.clone();
        let store = Arc::clone(&c.state.store);
        Some(blocking(&store, move |store| Ok(store.verify_audit(&org)?)).await?)
    } else {
        None
    };
    let entries = &page.entries;
    // Newest first, the entries before the page are older; oldest first, they are earlier.
    let (on, back) = match f.order {
        AuditOrder::Descending => (
            page.before
                .map(|s| ("Older entries", format!("before={s}"))),
            page.after.map(|s| ("Newer entries", format!("after={s}"))),
        ),
        AuditOrder::Ascending => (
            page.after.map(|s| ("Later entries", format!("after={s}"))),
            page.before
                .map(|s| ("Earlier entries", format!("before={s}"))),
        ),
    };
    let paged = p.after.is_some() || p.before.is_some();
    Ok(html! {
        section #verification aria-label="Audit chain" {
            @match &verification {
                Some(strata_store::Verification::Intact { entries }) => {
                    p.flash role="status" { "The audit chain is intact: " (entries) " entries verified at " (rfc3339(crate::now_ms())) "." }
                }
                Some(strata_store::Verification::Tampered { seq, problem }) => {
                    p.flash.error role="alert" { "The audit chain is broken at entry " (seq) ": " (problem) " (verified at " (rfc3339(crate::now_ms())) ")." }
                }
                None => { a href=(f.link("verify=1")) { "Verify the audit chain now" } }
            }
        }
        p.small #audit-order {
            @match f.order {
                AuditOrder::Descending => { "Newest first. " a href=(f.link("order=oldest")) { "Oldest first" } }
                AuditOrder::Ascending => { "Oldest first. " a href=(Filters { order: AuditOrder::Descending, ..f.clone() }.link("")) { "Newest first" } }
            }
        }
        table.list #audit {
            thead { tr {
                th scope="col" { "Time (UTC)" } th scope="col" { "Revision" } th scope="col" { "By" }
                th scope="col" { "Action" } th scope="col" { "Table" } th scope="col" { "Record" } th scope="col" { "Change" }
            } }
            tbody {
                @for e in entries {
                    tr data-seq=(e.seq) data-action=(e.record.action) data-table=(e.record.table.as_deref().unwrap_or("")) {
                        td { (rfc3339(e.at_ms)) }
                        td { (e.revision) }
                        td {
                            @match e.record.user.as_deref() {
                                Some(u) if !u.starts_with('#') => {
                                    (user_link(u)) " "
                                    a.small href={ "/console/audit?user=" (encode(u)) "&action=" (USER_ACCESS) } title={ "Access history of " (u) } { "(access)" }
                                }
                                Some(u) => { (u) }
                                None => {}
                            }
                            @if let Some(i) = &e.record.impersonator { " (by " (i) ")" }
                        }
                        td { (e.record.action) }
                        td {
                            @if let Some(t) = &e.record.table { a href={ "/console/audit?table=" (encode(t)) } { (t) } }
                        }
                        td { @if let Some(r) = &e.record.record { a href={ "/console/audit?record=" (encode(r)) } { (r) } } }
                        td { (detail(e)) }
                    }
                }
            }
        }
        @if entries.is_empty() { p { "No entry you may read matches." } }
        nav.pages aria-label="Pages" {
            @if paged { a href=(f.link("")) { "First page" } " " }
            @if let Some((label, q)) = &back { a rel="prev" href=(f.link(q)) { (label) } " " }
            @if let Some((label, q)) = &on { a rel="next" href=(f.link(q)) { (label) } }
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
        for bad in ["2026-02-30", "1969-12-31", "2026-12-07T00:00", "2026-1-5"] {
            assert!(day_start(bad, "from").is_err(), "{bad}");
        }
    }
}
