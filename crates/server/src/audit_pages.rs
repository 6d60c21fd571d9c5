//! The audit a page at a time, as its reader may see it — the one implementation behind
//! `GET …/audit` and the console's audit screen: `prvReadAuditSummary`; the store's query (by
//! record, user, table, action and time) oldest or newest first, paged in both directions with
//! the store's `seq` cursors; then each entry as `strata_app::audit::as_seen_by` lets this reader
//! see it (entries about records they may not read left out, secured values nulled).

use std::sync::Arc;

use strata_engine::UserId;
use strata_store::{AuditEntry, AuditOrder, AuditQuery};

use crate::error::ApiError;
use crate::request::OrgRequest;
use crate::{AppState, blocking};

/// The miscellaneous privilege that opens the audit.
pub(crate) const READ_AUDIT: &str = "prvReadAuditSummary";

/// A page to read.
#[derive(Clone, Debug, Default)]
pub(crate) struct PageQuery {
    pub(crate) record: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) table: Option<String>,
    pub(crate) action: Option<String>,
    pub(crate) from_ms: Option<i64>,
    pub(crate) to_ms: Option<i64>,
    pub(crate) order: AuditOrder,
    /// Entries after this `seq` only.
    pub(crate) after: Option<u64>,
    /// Entries before this `seq` only.
    pub(crate) before: Option<u64>,
    /// Entries on the page (at least 1).
    pub(crate) limit: usize,
}

/// A page read: its entries in the order asked, and the cursors of its neighbours.
#[derive(Debug)]
pub(crate) struct Page {
    /// The entries the reader may see, in the order asked.
    pub(crate) entries: Vec<AuditEntry>,
    /// The `after` that reads the entries following this page's highest `seq` (none when
    /// there are none, as far as the read could tell).
    pub(crate) after: Option<u64>,
    /// The `before` that reads the entries preceding this page's lowest `seq`.
    pub(crate) before: Option<u64>,
}

/// Reads a page. A query in one order with only the cursor of the other direction (`before`
/// oldest first, `after` newest first) is a step back: the store is read in the opposite order
/// from that cursor and the page turned round, so paging back costs what paging on costs.
/// Cursors are the store's `seq` numbers, taken before entries are hidden from the reader, so a
/// page of entries the reader may not see still leads on.
pub(crate) async fn read(
    state: &Arc<AppState>,
    request: &OrgRequest,
    q: PageQuery,
) -> Result<Page, ApiError> {
    {
        let loaded = request.handle.read().await;
        request.require_misc(&loaded.org, READ_AUDIT)?;
    }
    let limit = q.limit.max(1);
    let stepping_back = match q.order {
        AuditOrder::Ascending => q.before.is_some() && q.after.is_none(),
        AuditOrder::Descending => q.after.is_some() && q.before.is_none(),
    };
    let read_order = match (q.order, stepping_back) {
        (o, false) => o,
        (AuditOrder::Ascending, true) => AuditOrder::Descending,
        (AuditOrder::Descending, true) => AuditOrder::Ascending,
    };
    let query = AuditQuery {
        record: q.record,
        user: q.user,
        table: q.table,
        action: q.action,
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        after_seq: q.after.unwrap_or(0),
        before_seq: q.before,
        order: read_order,
        limit: limit + 1,
    };
    let org = request.handle.name.clone();
    let mut entries = blocking(&state.store, move |store| Ok(store.audit(&org, &query)?)).await?;
    let more = entries.len() > limit;
    entries.truncate(limit);
    let lowest = entries.iter().map(|e| e.seq).min();
    let highest = entries.iter().map(|e| e.seq).max();
    // Reading up, `more` says whether entries follow; reading down, whether entries precede.
    // The other side is known to hold entries when the read started from a cursor there.
    let (after, before) = match read_order {
        AuditOrder::Ascending => (
            highest.filter(|_| more),
            lowest.filter(|_| q.after.is_some()),
        ),
        AuditOrder::Descending => (
            highest.filter(|_| q.before.is_some()),
            lowest.filter(|_| more),
        ),
    };
    if read_order != q.order {
        entries.reverse();
    }
    let readers: Vec<UserId> = request.acting.each().collect();
    let entries = {
        let loaded = request.handle.read().await;
        entries
            .into_iter()
            .filter_map(|e| strata_app::audit::as_seen_by(&loaded.org, &readers, e))
            .collect()
    };
    Ok(Page {
        entries,
        after,
        before,
    })
}
