//! FetchXML lists: `GET /<set>?fetchXml=…` (D162). The query is read by `strata_odata::fetch`
//! and answered by the engine's list as the readers see the table, as a `$filter` list is:
//! the same filter resolution, the same checks of the columns, the same records.
//!
//! Paging is Dataverse's: `count` records a page, `page` numbering them from 1. With
//! `Prefer: odata.include-annotations` naming them (or `*`), a page that has more after it
//! carries `@Microsoft.Dynamics.CRM.morerecords` and `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`,
//! whose cookie (URL-encoded twice, as Dataverse writes it) holds this server's signed cursor;
//! sent back as the next page's `paging-cookie`, the page starts there. Without it (or with
//! the cookie of another page) the page is counted from the first record ("simple paging"),
//! up to [`MAX_SIMPLE_PAGING_RECORDS`] records, as Dataverse limits it.

use std::sync::Arc;

use axum::http::StatusCode;
use std::collections::HashSet;

use serde_json::{Map, Value as Json, json};
use strata_engine::{
    Fact, Filter, ListQuery, Organization, Plan, Privilege, RecordId, Referent, RelationshipId,
    TableId, UserId,
};
use strata_odata::apply::MAX_AGGREGATE_RECORDS;
use strata_odata::fetch::{
    Fetch, FetchContext, Link, LinkKind, MAX_SIMPLE_PAGING_RECORDS, parse_fetch,
};

use super::entity::{self, Set};
use super::records::{
    annotations, check_select, context, filterable, odata_error, open_page, readable_at_most,
    readers, require_read, resolve_filter,
};
use super::{Call, WebError, WebResult, bad};

/// Dataverse's page when `count` is not given.
const DEFAULT_PAGE: u32 = 5_000;

/// The most records of a link's table an inner link (or a link's filter) may match, as the
/// readers see them: the entity's records are those whose lookup names one of them.
pub(crate) const MAX_LINKED_RECORDS: usize = 5_000;

/// The most records an inner link alone picks from the record index (its related records'
/// children); past it, each record's lookup is tested instead, under the list's work budget.
const MAX_INDEXED_CHILDREN: usize = 100_000;

/// A link's columns in each record of the answer.
struct Joined {
    alias: String,
    rel: RelationshipId,
    /// Its columns (`None`: all of them).
    select: Option<Vec<String>>,
    /// The related records its filter matches (`None`: no filter).
    matching: Option<HashSet<RecordId>>,
}

/// `GET <set>?fetchXml=…`.
pub(super) async fn list(call: &Call<'_>, set_name: &str, set: Set, table: TableId) -> WebResult {
    for (name, value) in &call.query {
        let taken = name == "fetchXml"
            || !name.starts_with('$')
            || (name == "$count" && matches!(value.as_str(), "true" | "false"));
        if !taken {
            return Err(bad(
                "odata_syntax",
                format!("`{name}` cannot be given with fetchXml: the FetchXML says what to read"),
            ));
        }
    }
    if !matches!(set, Set::Records(_)) {
        return Err(bad(
            "odata_unsupported",
            format!("fetchXml is answered on record tables, not on `{set_name}`"),
        ));
    }
    let xml = call.param("fetchXml").unwrap_or_default().to_owned();
    let odata_count = call.param("$count") == Some("true");
    let annotate = annotations(call);
    let readers = {
        let loaded = call.request.handle.read().await;
        readers(call, &loaded.org).and_then(|r| require_read(&loaded.org, r, table).map(|()| r))?
    };
    let app = Arc::clone(call.state);
    let handle = Arc::clone(&call.request.handle);
    let base = call.base.clone();
    let set_name = set_name.to_owned();
    let body = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, usize), WebError> {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        let fetch = read(o, table, readers.0, &xml)?;
        let select = fetch
            .attributes
            .as_deref()
            .map(|columns| check_select(o, table, columns))
            .transpose()?;
        let mut filter = fetch
            .filter
            .clone()
            .map(|f| resolve_filter(o, table, f))
            .transpose()?;
        for x in &fetch.order {
            filterable(o, table, &x.column)?;
        }
        let mut joined = Vec::new();
        for link in &fetch.links {
            let (rel, linked, one_to_many) = link_of(o, table, link)?;
            require_read(o, readers, linked)?;
            let link_filter = link
                .filter
                .clone()
                .map(|f| resolve_filter(o, linked, f))
                .transpose()?;
            if one_to_many || link.kind == LinkKind::NotAny {
                // A link that only filters: the records with (or, `not any`, without) a related
                // record the readers read and the link's filter matches.
                let related = linked_records(o, readers, (linked, &link.alias), link_filter)?;
                let refers = if one_to_many {
                    let mut parents: Vec<RecordId> = related
                        .iter()
                        .filter_map(|child| o.record(*child).lookup(rel))
                        .collect();
                    parents.sort_unstable();
                    parents.dedup();
                    Filter::Refers {
                        fact: Fact::Record,
                        targets: parents.into_iter().map(|p| Some(Referent::Record(p))).collect(),
                    }
                } else {
                    Filter::Refers {
                        fact: Fact::Lookup(rel),
                        targets: related.into_iter().map(|r| Some(Referent::Record(r))).collect(),
                    }
                };
                let refers = match link.kind {
                    LinkKind::NotAny => Filter::Not(Box::new(refers)),
                    _ => refers,
                };
                filter = Some(match filter.take() {
                    None => refers,
                    Some(f) => Filter::And(vec![f, refers]),
                });
                continue;
            }
            let outer = link.kind == LinkKind::Outer;
            let select = link
                .attributes
                .as_deref()
                .map(|columns| check_select(o, linked, columns))
                .transpose()?;
            let matching = if outer && link_filter.is_none() {
                None
            } else {
                Some(linked_records(o, readers, (linked, &link.alias), link_filter)?)
            };
            if let (false, Some(parents)) = (outer, &matching) {
                // An inner link: the records whose lookup names a related record it matches.
                // Alone, as those records themselves (the related records' children through
                // the lookup), which the list takes from the record index instead of testing
                // each record's lookup against every related record.
                // At most MAX_INDEXED_CHILDREN of them: a request never makes the server hold
                // every child of thousands of related records.
                let children: Vec<Option<Referent>> = if filter.is_none() {
                    parents
                        .iter()
                        .flat_map(|p| o.children(*p))
                        .filter(|(r, _)| *r == rel)
                        .map(|(_, child)| Some(Referent::Record(*child)))
                        .take(MAX_INDEXED_CHILDREN + 1)
                        .collect()
                } else {
                    Vec::new()
                };
                let refers = if filter.is_none() && children.len() <= MAX_INDEXED_CHILDREN {
                    Filter::Refers {
                        fact: Fact::Record,
                        targets: children,
                    }
                } else {
                    Filter::Refers {
                        fact: Fact::Lookup(rel),
                        targets: parents.iter().map(|r| Some(Referent::Record(*r))).collect(),
                    }
                };
                filter = Some(match filter.take() {
                    None => refers,
                    Some(f) => Filter::And(vec![f, refers]),
                });
            }
            if select.as_ref().is_none_or(|columns| !columns.is_empty()) {
                joined.push(Joined {
                    alias: link.alias.clone(),
                    rel,
                    select,
                    matching: matching.map(|m| m.into_iter().collect()),
                });
            }
        }
        if let Some(aggregation) = &fetch.aggregation {
            let limit = fetch
                .aggregate_limit
                .map_or(MAX_AGGREGATE_RECORDS, |l| l as usize);
            let top = fetch.top.or(fetch.count).map(|t| t as usize);
            let (rows, read) =
                super::aggregate::rows(o, table, readers, filter, aggregation, (limit, top))?;
            let mut head = Map::new();
            head.insert("@odata.context".into(), Json::String(context(&base, &set_name, None)));
            let rows: Vec<Json> = rows.into_iter().map(Json::Object).collect();
            return Ok((super::aggregate::page(head, &rows)?, read));
        }
        // The query a cookie's cursor is signed for: everything but the page and the cookie.
        let query_id = format!(
            "fetchxml\n{}\n{table:?}\n{}\n{}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            handle.name,
            o.user(readers.0).name,
            readers.1.map(|i| o.user(i).name.as_str()).unwrap_or_default(),
            fetch.attributes,
            fetch.filter,
            fetch.links,
            fetch.order,
            (fetch.top, fetch.count),
        );
        let page = fetch.page.unwrap_or(1);
        let page_size = fetch.top.or(fetch.count).unwrap_or(DEFAULT_PAGE) as usize;
        let query = |after, limit, count| ListQuery {
            filter: filter.clone(),
            order: fetch.order.clone(),
            after,
            limit,
            count,
            plan: Plan::Auto,
            work_budget: Some(crate::limits::MAX_LIST_WORK),
            impersonator: readers.1,
        };
        let list = |q: &ListQuery| {
            o.list(readers.0, table, q)
                .map_err(|e| WebError(crate::api::list_error(&e, q)))
        };
        // Where the page starts: after the cookie's cursor, or counted from the first record.
        let mut after = match fetch.paging_cookie.as_deref().and_then(|c| cookie(c, page)) {
            Some(cursor) => Some(
                app.cursors
                    .decode(&cursor, &format!("{query_id}\n{}", page - 1))
                    .map_err(WebError)?,
            ),
            None => None,
        };
        if after.is_none() && page > 1 {
            let skip = u64::from(page - 1) * page_size as u64;
            if skip + page_size as u64 > MAX_SIMPLE_PAGING_RECORDS {
                return Err(bad(
                    "odata_limit",
                    format!(
                        "page {page} of {page_size} records passes the {MAX_SIMPLE_PAGING_RECORDS} records a page is counted to without its paging cookie: send the paging-cookie of page {}",
                        page - 1
                    ),
                ));
            }
            let mut skipped = 0u64;
            while skipped < skip {
                let limit = (skip - skipped).min(u64::from(DEFAULT_PAGE)) as usize;
                let part = list(&query(after.take(), limit, false))?;
                skipped += part.records.len() as u64;
                match part.next {
                    Some(next) => after = Some(next),
                    // Past the last record: an empty page, as Dataverse answers.
                    None => break,
                }
            }
            if after.is_none() {
                let mut head = Map::new();
                if annotate.paging {
                    head.insert("@Microsoft.Dynamics.CRM.morerecords".into(), Json::Bool(false));
                }
                let body = page_body(o, (&base, &set_name), (select.as_deref(), &joined), readers, annotate, &[], head);
                return Ok((body, 0));
            }
        }
        let result = list(&query(
            after,
            page_size,
            fetch.total_record_count || odata_count,
        ))?;
        let more = fetch.top.is_none() && result.next.is_some();
        let cookie = result
            .next
            .as_ref()
            .filter(|_| more && annotate.paging)
            .map(|next| {
                let cursor = app.cursors.encode(next, &format!("{query_id}\n{page}"));
                paging_cookie(page, &cursor)
            });
        let mut head = Map::new();
        if let Some(total) = result.total {
            if odata_count {
                head.insert("@odata.count".into(), json!(total));
            }
            if fetch.total_record_count {
                head.insert("@Microsoft.Dynamics.CRM.totalrecordcount".into(), json!(total));
                head.insert(
                    "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded".into(),
                    Json::Bool(false),
                );
            }
        }
        if annotate.paging {
            if let Some(cookie) = cookie {
                head.insert("@Microsoft.Dynamics.CRM.fetchxmlpagingcookie".into(), Json::String(cookie));
            }
            head.insert("@Microsoft.Dynamics.CRM.morerecords".into(), Json::Bool(more));
        }
        let body = page_body(o, (&base, &set_name), (select.as_deref(), &joined), readers, annotate, &result.records, head);
        Ok((body, result.records.len()))
    })
    .await
    .map_err(|e| bad("internal", format!("fetchXml task failed: {e}")))??;
    call.state.metrics.decided(body.1);
    Ok(super::json_bytes_response(StatusCode::OK, body.0))
}

/// The FetchXML, read against the table and the acting user.
fn read(
    o: &Organization,
    table: TableId,
    user: strata_engine::UserId,
    xml: &str,
) -> Result<Fetch, WebError> {
    let is_lookup = |of: &str, name: &str| {
        let Some(t) = (if of == o.table(table).name {
            Some(table)
        } else {
            o.table_id(of)
        }) else {
            return false;
        };
        let known = entity::known_columns(o, t);
        known
            .iter()
            .any(|k| k.strip_prefix('_').and_then(|k| k.strip_suffix("_value")) == Some(name))
    };
    let user_guid = o.user_guid(user).to_string();
    let unit_guid = o.unit_guid(o.user(user).business_unit).to_string();
    let fetch = parse_fetch(
        xml,
        &FetchContext {
            is_lookup: &is_lookup,
            user: &user_guid,
            business_unit: &unit_guid,
            today: strata_odata::date::Date::today(),
        },
    )
    .map_err(odata_error)?;
    let name = &o.table(table).name;
    if fetch.entity != *name {
        return Err(bad(
            "odata_syntax",
            format!(
                "the FetchXML's entity `{}` is not this entity set's table `{name}`",
                fetch.entity
            ),
        ));
    }
    Ok(fetch)
}

/// A link's relationship and table, checked: `to` is a lookup of the entity's table to the
/// link's table, and `from` (when given) that table's key; or (one-to-many, `true`) `to` is the
/// entity's key and `from` the link's table's lookup of it, for a link that only filters.
fn link_of(
    o: &Organization,
    table: TableId,
    link: &Link,
) -> Result<(RelationshipId, TableId, bool), WebError> {
    let outer = o.table(table);
    if link.to == entity::primary_id(outer) {
        let from_link = o.relationship_ids().find(|r| {
            let rel = o.relationship(*r);
            rel.parent == table && rel.lookup == link.from && o.table(rel.child).name == link.name
        });
        let Some(rel) = from_link else {
            return Err(bad(
                "odata_syntax",
                format!(
                    "link `{}`: `{}` is not a lookup of `{}` to `{}`: a link to the records that look the entity up names their lookup in `from`",
                    link.alias, link.from, link.name, outer.name
                ),
            ));
        };
        if !matches!(link.kind, LinkKind::Exists | LinkKind::NotAny) {
            return Err(bad(
                "odata_unsupported",
                format!(
                    "link `{}`: a one-to-many link (`to` the entity's key) gives a row per related record; filter by them with link-type=\"exists\" (or \"any\", \"not any\")",
                    link.alias
                ),
            ));
        }
        return Ok((rel, o.relationship(rel).child, true));
    }
    // The relationship of this lookup to the link's table: a polymorphic lookup
    // (`parentcustomerid`) has one per table it may name.
    let to_link = o.relationship_ids().find(|r| {
        let rel = o.relationship(*r);
        rel.child == table && rel.lookup == link.to && o.table(rel.parent).name == link.name
    });
    let Some(rel) = to_link.or_else(|| o.relationship_by_lookup(table, &link.to)) else {
        return Err(
            if entity::known_columns(o, table)
                .iter()
                .any(|c| *c == format!("_{}_value", link.to))
            {
                bad(
                    "odata_unsupported",
                    format!(
                        "link `{}`: `{}` is not a relationship's lookup (links to owners and business units are not answered: filter on `_{}_value`)",
                        link.alias, link.to, link.to
                    ),
                )
            } else {
                super::records::unknown_property(o, table, &link.to)
            },
        );
    };
    let parent = o.relationship(rel).parent;
    let parent_table = o.table(parent);
    if parent_table.name != link.name {
        return Err(bad(
            "odata_syntax",
            format!(
                "link `{}`: the lookup `{}` leads to `{}`, not `{}`",
                link.alias, link.to, parent_table.name, link.name
            ),
        ));
    }
    if !link.from.is_empty() && link.from != entity::primary_id(parent_table) {
        return Err(bad(
            "odata_unsupported",
            format!(
                "link `{}`: `from` is the key of `{}` (`{}`), not `{}`",
                link.alias,
                link.name,
                entity::primary_id(parent_table),
                link.from
            ),
        ));
    }
    Ok((rel, parent, false))
}

/// The records of a link's table its filter matches, as the readers read them: at most
/// [`MAX_LINKED_RECORDS`].
fn linked_records(
    o: &Organization,
    readers: (UserId, Option<UserId>),
    (table, alias): (TableId, &str),
    filter: Option<Filter>,
) -> Result<Vec<RecordId>, WebError> {
    readable_at_most(o, readers, table, filter, MAX_LINKED_RECORDS)?.ok_or_else(|| {
        bad(
            "odata_limit",
            format!(
                "link `{alias}` matches more than {MAX_LINKED_RECORDS} records of `{}` the caller may read: narrow its filter",
                o.table(table).name
            ),
        )
    })
}

/// The cursor of a paging cookie this server gave for the page before `page` (`None`: another
/// page's cookie, or one it did not give, which Dataverse ignores too).
fn cookie(text: &str, page: u32) -> Option<String> {
    let rest = text.trim().strip_prefix("<cookie page=\"")?;
    let (given, rest) = rest.split_once('"')?;
    if given.parse::<u32>().ok()?.checked_add(1)? != page {
        return None;
    }
    let (_, rest) = rest.split_once("<strata after=\"")?;
    let (cursor, _) = rest.split_once('"')?;
    Some(cursor.to_owned())
}

/// The `@Microsoft.Dynamics.CRM.fetchxmlpagingcookie` of `page`: the cookie's XML URL-encoded
/// twice inside a `cookie` element, as Dataverse writes it.
fn paging_cookie(page: u32, cursor: &str) -> String {
    let inner = format!("<cookie page=\"{page}\"><strata after=\"{cursor}\" /></cookie>");
    format!(
        "<cookie pagenumber=\"{}\" pagingcookie=\"{}\" istracking=\"False\" />",
        page + 1,
        encode(&encode(&inner))
    )
}

/// Percent-encodes every byte but the unreserved ones, lowercase as Dataverse writes it.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// A page's body: the context, the annotations, the records as the readers see them, each
/// with its links' columns (`alias_x002e_column`, as Dataverse names them) from its related record when the readers may read
/// it and it matches the link's filter.
fn page_body(
    o: &Organization,
    (base, set_name): (&str, &str),
    (select, joined): (Option<&[String]>, &[Joined]),
    readers: (UserId, Option<UserId>),
    annotate: entity::Annotations,
    records: &[RecordId],
    head: Map<String, Json>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + records.len() * 256);
    let mut top = Map::new();
    top.insert(
        "@odata.context".into(),
        Json::String(context(base, set_name, select)),
    );
    top.extend(head);
    open_page(&mut out, top);
    for (i, &r) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if joined.is_empty() {
            let mut item = entity::Writer::open(&mut out);
            entity::render_record(&mut item, o, r, readers, select, annotate);
            item.close();
            continue;
        }
        let mut item = entity::record_json(o, r, readers, select, annotate);
        for link in joined {
            let Some(parent) = o.record(r).lookup(link.rel) else {
                continue;
            };
            let seen = std::iter::once(readers.0)
                .chain(readers.1)
                .all(|u| o.check(u, Privilege::Read, parent));
            if !seen || link.matching.as_ref().is_some_and(|m| !m.contains(&parent)) {
                continue;
            }
            let columns = entity::record_json(o, parent, readers, link.select.as_deref(), annotate);
            for (column, value) in columns {
                if !column.starts_with('@') {
                    item.insert(format!("{}_x002e_{column}", link.alias), value);
                }
            }
        }
        // A map of JSON values always serializes.
        let _ = serde_json::to_writer(&mut out, &item);
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_read_back_for_the_next_page_only() {
        let given = paging_cookie(3, "ab12.cd34");
        assert!(given.starts_with(
            "<cookie pagenumber=\"4\" pagingcookie=\"%253ccookie%2520page%253d%25223%2522%253e"
        ));
        // As a client sends it back: decoded twice, XML-unescaped by the FetchXML's reader.
        let inner = "<cookie page=\"3\"><strata after=\"ab12.cd34\" /></cookie>";
        assert_eq!(cookie(inner, 4).as_deref(), Some("ab12.cd34"));
        assert_eq!(cookie(inner, 5), None);
        assert_eq!(cookie(inner, 3), None);
        assert_eq!(
            cookie(
                "<cookie page=\"3\"><accountid last=\"{X}\" first=\"{Y}\" /></cookie>",
                4
            ),
            None
        );
        assert_eq!(cookie("nonsense", 2), None);
    }
}
