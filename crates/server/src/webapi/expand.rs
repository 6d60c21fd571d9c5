//! `$expand`: the related records of each record an answer gives, as the readers see them
//! (D148, D159). Parsed by `strata_odata` (at most 10 navigation properties in all, two
//! levels), then checked against the tables level by level before any record is read, so an
//! error never depends on which records a page holds:
//!
//! - a single-valued navigation property (a lookup, `ownerid`, `owninguser`, `owningteam`,
//!   `owningbusinessunit`, `createdby`, `modifiedby`) takes `$select`, and a nested `$expand`
//!   where it leads to a record (a lookup, `owninguser`, `createdby`, `modifiedby`);
//! - a collection-valued one (a one-to-many relationship's name) takes `$select`, `$filter`,
//!   `$orderby`, `$top` (1 to 5,000) and a nested `$expand`.
//!
//! Every related record is read as the readers (the caller, and an impersonated user) may read
//! it; what they may not read is left out (a collection) or null (a single-valued property).
//! The related records one answer gives and looks at are bounded in all levels together.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use strata_engine::{Order, Organization, RecordId, RelationshipId, TableId, UserId};
use strata_odata::{Aliases, Expand};

use super::entity::{self, Target};
use super::records::{
    check_select, encode, entity_as_seen, filterable, odata_error, resolve_filter, target_table,
    unknown_property,
};
use super::{Call, WebError, bad};

/// Most related records one collection-valued `$expand` gives per record (more: a
/// `<nav>@odata.nextLink` to the related list; D148).
const EXPAND_COLLECTION: usize = 5_000;
/// Most related records the collection-valued `$expand`s of one answer give in all, nested ones
/// included (D148).
const EXPAND_COLLECTION_BUDGET: usize = 50_000;
/// Most related records the collection-valued `$expand`s of one answer look at in all, readable
/// or not, nested ones included (D148): a record with many children the reader may not read
/// costs a bounded amount.
const EXPAND_COLLECTION_LOOKED_AT: usize = 1_000_000;

/// The request's `$expand` (none when not given), parsed but not yet checked against a table
/// ([`Expansion::new`] checks it).
pub(crate) fn parse(call: &Call<'_>, aliases: &Aliases) -> Result<Vec<Expand>, WebError> {
    match call.param("$expand") {
        None => Ok(Vec::new()),
        Some(text) => strata_odata::parse_expand_option(text, aliases).map_err(odata_error),
    }
}

/// The request's parameter aliases as given (`@p1=…`), for [`Expansion::new`].
pub(crate) fn alias_params(call: &Call<'_>) -> Vec<(String, String)> {
    call.query
        .iter()
        .filter(|(k, _)| k.starts_with('@'))
        .cloned()
        .collect()
}

/// Where an item's navigation property leads from its table.
#[derive(Clone, Copy)]
pub(crate) enum Leads {
    /// To one record, user, team or business unit; `Some` the table when it is always a record
    /// (a lookup, `owninguser`), which may then be expanded further.
    One(Option<TableId>),
    /// To the records of a one-to-many relationship.
    Many(RelationshipId),
}

/// A collection-valued item's checked options.
struct Collection {
    relationship: RelationshipId,
    select: Option<Vec<String>>,
    filter: Option<strata_engine::Filter>,
}

/// An item's identity within the request's `$expand` (the tree lives as long as the answer).
fn key(e: &Expand) -> usize {
    std::ptr::from_ref(e).addr()
}

/// What expanding the records of one answer shares: each item's checked options, the nested
/// `$select` of single-valued items checked once per related table (an owner may be a user or
/// a team), the related records collection-valued items may still give and look at, and the
/// service root, for links.
pub(crate) struct Expansion<'a> {
    collections: HashMap<usize, Arc<Collection>>,
    selects: HashMap<(usize, TableId), Vec<String>>,
    budget: usize,
    looked_at: usize,
    /// The comparisons the items' `$filter`s may still make in this answer (a list's work
    /// budget, `MAX_LIST_WORK`, for all of them together).
    work: u64,
    base: &'a str,
    /// The request's parameter aliases (`@p1=…`), carried into links whose `$filter` uses them.
    aliases: Vec<(String, String)>,
}

impl<'a> Expansion<'a> {
    /// Checks `expand` against `table` (the table of the records expanded), every level.
    pub(crate) fn new(
        o: &Organization,
        table: TableId,
        expand: &[Expand],
        base: &'a str,
        aliases: Vec<(String, String)>,
    ) -> Result<Self, WebError> {
        let mut expansion = Expansion {
            collections: HashMap::new(),
            selects: HashMap::new(),
            budget: EXPAND_COLLECTION_BUDGET,
            looked_at: EXPAND_COLLECTION_LOOKED_AT,
            work: crate::limits::MAX_LIST_WORK,
            base,
            aliases,
        };
        expansion.check(o, table, expand)?;
        Ok(expansion)
    }

    fn check(
        &mut self,
        o: &Organization,
        table: TableId,
        expand: &[Expand],
    ) -> Result<(), WebError> {
        for e in expand {
            let nav = e.property.as_str();
            match leads(o, table, nav)? {
                Leads::One(to) => {
                    let collection_only = [
                        ("$top", e.top.is_some()),
                        ("$filter", e.filter.is_some()),
                        ("$orderby", !e.order_by.is_empty()),
                    ];
                    if let Some((option, _)) = collection_only.iter().find(|(_, given)| *given) {
                        return Err(bad(
                            "odata_syntax",
                            format!(
                                "`{nav}`: {option} inside $expand is for a collection-valued navigation property"
                            ),
                        ));
                    }
                    if let (Some(to), Some(columns)) = (to, e.select.as_deref()) {
                        let checked = check_select(o, to, columns)?;
                        self.selects.insert((key(e), to), checked);
                    }
                    if e.expand.is_empty() {
                        continue;
                    }
                    let Some(to) = to else {
                        return Err(bad(
                            "odata_unsupported",
                            format!(
                                "`{nav}` may lead to a team or a business unit: a nested $expand is supported under a lookup or `owninguser`"
                            ),
                        ));
                    };
                    self.check(o, to, &e.expand)?;
                }
                Leads::Many(relationship) => {
                    let child = o.relationship(relationship).child;
                    if let Some(top) = e.top
                        && !(1..=EXPAND_COLLECTION).contains(&(top as usize))
                    {
                        return Err(bad(
                            "odata_limit",
                            format!("$top inside $expand is 1 to {EXPAND_COLLECTION}, not `{top}`"),
                        ));
                    }
                    let select = e
                        .select
                        .as_deref()
                        .map(|columns| check_select(o, child, columns))
                        .transpose()?;
                    let filter = e
                        .filter
                        .clone()
                        .map(|f| resolve_filter(o, child, f))
                        .transpose()?;
                    for x in &e.order_by {
                        filterable(o, child, &x.column)?;
                    }
                    // The columns are known by now (`filterable`): what is left is a value of
                    // the wrong kind for its comparison.
                    o.check_list(child, filter.as_ref(), &e.order_by)
                        .map_err(|err| {
                            bad(
                                crate::api::list_error_code(&err),
                                format!("`{nav}`: $filter inside $expand: {err}"),
                            )
                        })?;
                    self.check(o, child, &e.expand)?;
                    self.collections.insert(
                        key(e),
                        Arc::new(Collection {
                            relationship,
                            select,
                            filter,
                        }),
                    );
                }
            }
        }
        Ok(())
    }

    /// Item `e`'s `$select` on `table` (a single-valued item, whose related table may vary),
    /// checked once.
    fn select(
        &mut self,
        o: &Organization,
        e: &Expand,
        table: TableId,
    ) -> Result<Option<&[String]>, WebError> {
        let Some(columns) = e.select.as_deref() else {
            return Ok(None);
        };
        let checked = match self.selects.entry((key(e), table)) {
            std::collections::hash_map::Entry::Occupied(v) => v.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(check_select(o, table, columns)?)
            }
        };
        Ok(Some(checked.as_slice()))
    }

    /// Adds a record's expanded navigation properties to its JSON: each related entity as the
    /// readers see it, or null; each collection as the related records they may read.
    pub(crate) fn expand_into(
        &mut self,
        o: &Organization,
        record: RecordId,
        expand: &[Expand],
        readers: (UserId, Option<UserId>),
        annotations: entity::Annotations,
        item: &mut Map<String, Json>,
    ) -> Result<(), WebError> {
        for e in expand {
            if let Some(c) = self.collections.get(&key(e)).map(Arc::clone) {
                self.expand_collection(o, record, (e, &c), readers, annotations, item)?;
                continue;
            }
            let json = match navigate(o, record, &e.property)? {
                None => Json::Null,
                Some(target) => {
                    let table = target_table(o, target)?;
                    let select = self.select(o, e, table)?;
                    match entity_as_seen(o, target, readers, select, annotations) {
                        None => Json::Null,
                        Some(mut related) => {
                            let nested = match target {
                                Target::Record(r) => Some(r),
                                Target::User(u) => Some(o.user(u).record),
                                _ => None,
                            };
                            if let Some(r) = nested.filter(|_| !e.expand.is_empty()) {
                                self.expand_into(
                                    o,
                                    r,
                                    &e.expand,
                                    readers,
                                    annotations,
                                    &mut related,
                                )?;
                            }
                            Json::Object(related)
                        }
                    }
                }
            };
            item.insert(e.property.clone(), json);
        }
        Ok(())
    }

    /// A collection-valued item for one record: its related records the readers may read and
    /// the item's `$filter` keeps, in its `$orderby` (or the order they were related), at most
    /// `$top` (or [`EXPAND_COLLECTION`], then a `<nav>@odata.nextLink` to the related list).
    fn expand_collection(
        &mut self,
        o: &Organization,
        record: RecordId,
        (e, c): (&Expand, &Collection),
        readers: (UserId, Option<UserId>),
        annotations: entity::Annotations,
        item: &mut Map<String, Json>,
    ) -> Result<(), WebError> {
        let relationship = c.relationship;
        let most = e.top.map_or(EXPAND_COLLECTION, |t| t as usize);
        let ordered = !e.order_by.is_empty();
        let mut related = Vec::new();
        let mut more = false;
        for &(r, child) in o.children(record) {
            spend(&mut self.looked_at, || {
                format!(
                    "the collection-valued $expand items of one answer look at most at {EXPAND_COLLECTION_LOOKED_AT} related records: ask for a smaller page"
                )
            })?;
            let readable = r == relationship
                && o.record(child).alive
                && std::iter::once(readers.0)
                    .chain(readers.1)
                    .all(|u| o.check(u, strata_engine::Privilege::Read, child));
            if !readable {
                continue;
            }
            if let Some(f) = &c.filter {
                // Each record tested costs the filter's comparisons, as in a list.
                self.work = self.work.checked_sub(f.terms() as u64).ok_or_else(|| {
                    bad(
                        "query_too_expensive",
                        format!(
                            "the $filter items inside $expand of one answer make at most {} comparisons: ask for a smaller page",
                            crate::limits::MAX_LIST_WORK
                        ),
                    )
                })?;
                if !o.record_matches(readers, child, f) {
                    continue;
                }
            }
            // In the order they were related, the page ends at `most`; ordered otherwise, every
            // match is kept (within what the answer may look at) and sorted first.
            if !ordered && related.len() == most {
                more = true;
                break;
            }
            related.push(child);
        }
        if ordered {
            o.sort_as_seen(readers, &mut related, &e.order_by);
            if related.len() > most {
                related.truncate(most);
                more = true;
            }
        }
        let mut out = Vec::with_capacity(related.len());
        for child in related {
            spend(&mut self.budget, || {
                format!(
                    "the collection-valued $expand items of one answer give at most {EXPAND_COLLECTION_BUDGET} related records: ask for a smaller page or a $top inside $expand"
                )
            })?;
            let mut json = entity::record_json(o, child, readers, c.select.as_deref(), annotations);
            if !e.expand.is_empty() {
                self.expand_into(o, child, &e.expand, readers, annotations, &mut json)?;
            }
            out.push(Json::Object(json));
        }
        item.insert(e.property.clone(), Json::Array(out));
        if more && e.top.is_none() {
            let link = self.related_list_link(o, record, relationship, e);
            item.insert(format!("{}@odata.nextLink", e.property), Json::String(link));
        }
        Ok(())
    }

    /// The related list of `record` through `relationship` as item `e` asks for it: the
    /// lookup's filter (and the item's), order, `$select` and nested `$expand`.
    fn related_list_link(
        &self,
        o: &Organization,
        record: RecordId,
        relationship: RelationshipId,
        e: &Expand,
    ) -> String {
        let rel = o.relationship(relationship);
        let mut filter = format!("_{}_value eq {}", rel.lookup, o.record_guid(record));
        if let Some(text) = &e.filter_text {
            filter = format!("{filter} and ({text})");
        }
        let mut link = format!(
            "{}{}?$filter={}",
            self.base,
            o.table(rel.child).entity_set(),
            encode(&filter)
        );
        if !e.order_by.is_empty() {
            link.push_str("&$orderby=");
            link.push_str(&encode(&order_text(&e.order_by)));
        }
        if let Some(select) = &e.select {
            link.push_str("&$select=");
            link.push_str(&encode(&select.join(",")));
        }
        if !e.expand.is_empty() {
            link.push_str("&$expand=");
            link.push_str(&encode(&expand_text(&e.expand)));
        }
        if e.filter_text.is_some() {
            for (name, value) in &self.aliases {
                link.push('&');
                link.push_str(&encode(name));
                link.push('=');
                link.push_str(&encode(value));
            }
        }
        link
    }
}

/// Where navigation property `nav` leads from `table`, or the error naming an unknown one.
pub(crate) fn leads(o: &Organization, table: TableId, nav: &str) -> Result<Leads, WebError> {
    match nav {
        "owninguser" | "createdby" | "modifiedby" => {
            return Ok(Leads::One(o.table_id("systemuser")));
        }
        "ownerid" | "owningteam" | "owningbusinessunit" => return Ok(Leads::One(None)),
        _ => {}
    }
    if o.table(table).name == "systemuser" {
        match nav {
            "businessunitid" => return Ok(Leads::One(None)),
            "parentsystemuserid" => return Ok(Leads::One(Some(table))),
            _ => {}
        }
    }
    if let Some((_, rel)) = entity::lookup_of(o, table, nav) {
        return Ok(Leads::One(Some(o.relationship(rel).parent)));
    }
    match entity::children_of(o, table, nav) {
        Some(rel) => Ok(Leads::Many(rel)),
        None => Err(unknown_property(o, table, nav)),
    }
}

/// The related record (or user) an expanded navigation property names, for one record.
pub(crate) fn navigate(
    o: &Organization,
    record: RecordId,
    nav: &str,
) -> Result<Option<Target>, WebError> {
    let rec = o.record(record);
    // A user's own record: its unit and manager.
    if let (Some(u), "businessunitid" | "parentsystemuserid") = (user_of(o, record), nav) {
        let user = o.user(u);
        return Ok(match nav {
            "businessunitid" => Some(Target::Unit(user.business_unit)),
            _ => user.manager.map(Target::User),
        });
    }
    let target = match nav {
        "ownerid" | "owninguser" | "owningteam" => match rec.owner {
            strata_engine::Owner::User(u) if nav != "owningteam" => Some(Target::User(u)),
            strata_engine::Owner::Team(t) if nav != "owninguser" => Some(Target::Team(t)),
            _ => None,
        },
        "owningbusinessunit" => Some(Target::Unit(rec.business_unit)),
        // The writers (D165); none for the system.
        "createdby" => rec.stamps.creator().map(Target::User),
        "modifiedby" => rec.stamps.modifier().map(Target::User),
        lookup => {
            let (_, rel) = entity::lookup_of(o, rec.table, lookup)
                .ok_or_else(|| unknown_property(o, rec.table, lookup))?;
            rec.lookup(rel)
                .map(|parent| user_of(o, parent).map_or(Target::Record(parent), Target::User))
        }
    };
    Ok(target)
}

/// The user whose own `systemuser` record `record` is.
fn user_of(o: &Organization, record: RecordId) -> Option<UserId> {
    let rec = o.record(record);
    match rec.owner {
        strata_engine::Owner::User(u)
            if o.table(rec.table).name == "systemuser" && o.user(u).record == record =>
        {
            Some(u)
        }
        _ => None,
    }
}

/// Takes one from what an answer may still spend, or refuses with `odata_limit` (`limit`
/// says which limit) when nothing is left.
fn spend(left: &mut usize, limit: impl FnOnce() -> String) -> Result<(), WebError> {
    *left = left
        .checked_sub(1)
        .ok_or_else(|| bad("odata_limit", limit()))?;
    Ok(())
}

/// An `$orderby` as text: `name desc,createdon`.
fn order_text(order: &[Order]) -> String {
    order
        .iter()
        .map(|o| {
            if o.descending {
                format!("{} desc", o.column)
            } else {
                o.column.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// An `$expand` as text, as `strata_odata` reads it back.
fn expand_text(expand: &[Expand]) -> String {
    expand
        .iter()
        .map(|e| {
            let mut options = Vec::new();
            if let Some(select) = &e.select {
                options.push(format!("$select={}", select.join(",")));
            }
            if let Some(filter) = &e.filter_text {
                options.push(format!("$filter={filter}"));
            }
            if !e.order_by.is_empty() {
                options.push(format!("$orderby={}", order_text(&e.order_by)));
            }
            if let Some(top) = e.top {
                options.push(format!("$top={top}"));
            }
            if !e.expand.is_empty() {
                options.push(format!("$expand={}", expand_text(&e.expand)));
            }
            if options.is_empty() {
                e.property.clone()
            } else {
                format!("{}({})", e.property, options.join(";"))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use strata_odata::{Aliases, ODataError, parse_expand_option};

    use super::expand_text;

    #[test]
    fn an_expand_written_as_text_reads_back_the_same() -> Result<(), ODataError> {
        let aliases = Aliases::new();
        for text in [
            "a",
            "a($select=x,y),b",
            "b($select=n;$filter=contains(n,'a;b)') and m eq 2;$orderby=n desc,m;$top=5;$expand=c($select=z),d)",
        ] {
            let parsed = parse_expand_option(text, &aliases)?;
            assert_eq!(
                parse_expand_option(&expand_text(&parsed), &aliases)?,
                parsed,
                "{text}"
            );
        }
        Ok(())
    }
}
