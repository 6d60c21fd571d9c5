//! Entity set requests: lists (`$select`, `$filter`, `$orderby`, `$top`, `$count`, `$expand`,
//! paging by `Prefer: odata.maxpagesize` and an absolute `@odata.nextLink`), `$count`,
//! retrieve by id and by alternate key, create, update, upsert, delete, and `$ref`
//! (associate and disassociate). Each write is the native API's operations on the one write
//! path; each read is the engine's, as the caller.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Map, Value as Json, json};
use strata_engine::{Guid, Organization, Privilege, RecordId, TableId, UserId, Value};
use strata_odata::Expand;
use strata_ops::Operation;

use super::entity::{self, Set, Target};
use super::path::{Arg, Args, Segment};
use super::{Call, WebError, WebResult, bad, json_response, limits, messages, no_content};
use crate::error::ApiError;

/// Routes a path that begins with an entity set.
pub(crate) async fn dispatch(call: &Call<'_>) -> WebResult {
    let segments = call.path.segments.as_slice();
    let Some(Segment::Named {
        name: set_name,
        args,
    }) = segments.first()
    else {
        return Err(bad("odata_unknown", "no entity set"));
    };
    let (set, table) = {
        let loaded = call.request.handle.read().await;
        entity::resolve_set(&loaded.org, set_name)?
    };
    match (&segments[1..], args, &call.method) {
        ([], None, &Method::GET) => list(call, set_name, set, table).await,
        ([], None, &Method::POST) => create(call, set_name, set, table).await,
        ([Segment::Count], None, &Method::GET) => count(call, set, table).await,
        ([Segment::Named { name, args: None }], None, &Method::POST)
            if messages::is_multiple(name) =>
        {
            messages::multiple(call, set_name, set, table, name).await
        }
        ([], Some(key), &Method::GET) => retrieve(call, set_name, set, table, key).await,
        ([Segment::Named { name, args: None }], Some(key), &Method::GET)
            if !messages::is_bound_operation(name) =>
        {
            navigation(call, set, table, key, name).await
        }
        ([Segment::Named { name, args: None }, Segment::Value], Some(key), &Method::GET) => {
            raw_value(call, set, table, key, name).await
        }
        ([], Some(key), &Method::PATCH) => patch(call, set_name, set, table, key).await,
        ([], Some(key), &Method::DELETE) => delete(call, set, table, key).await,
        ([Segment::Named { name, args: None }, Segment::Ref], Some(key), method) => {
            reference(call, set, table, key, name, None, method).await
        }
        (
            [
                Segment::Named {
                    name,
                    args: Some(Args::Id(related)),
                },
                Segment::Ref,
            ],
            Some(key),
            &Method::DELETE,
        ) => reference(call, set, table, key, name, Some(*related), &Method::DELETE).await,
        (
            [
                Segment::Named {
                    name,
                    args: op_args,
                },
            ],
            Some(key),
            _,
        ) if messages::is_bound_operation(name) => {
            messages::bound(call, set, table, key, name, op_args.as_ref()).await
        }
        ([], _, _) | ([Segment::Count], _, _) => Err(bad(
            "method_not_allowed",
            format!("{} is not allowed on this resource", call.method),
        )),
        (rest, _, _) => Err(bad(
            "odata_unknown",
            format!(
                "Resource not found for the segment '{}'.",
                rest.first().map(ToString::to_string).unwrap_or_default()
            ),
        )),
    }
}

/// The readers of a data request: the acting user and the impersonator (D27).
pub(crate) fn readers(
    call: &Call<'_>,
    o: &Organization,
) -> Result<(UserId, Option<UserId>), WebError> {
    call.request.reader(o, None).map_err(|e| {
        if e.field.as_deref() == Some("user") {
            WebError(ApiError::new(
                "bad_actor",
                "the root key reads no data on the Web API: use a user's key or token",
            ))
        } else {
            WebError(e)
        }
    })
}

/// Resolves a key (`(<guid>)` or an alternate key) to an entity, as `reader` sees the table.
pub(crate) fn resolve_key(
    o: &Organization,
    set: Set,
    table: TableId,
    key: &Args,
    reader: Option<UserId>,
) -> Result<Target, WebError> {
    match key {
        Args::Id(g) => entity::by_guid(o, set, table, *g),
        Args::Empty => Err(bad("odata_syntax", "an empty key `()`")),
        Args::Named(parts) => {
            if let (
                Set::Templates | Set::Teams | Set::Units | Set::Roles,
                [(k, Arg::Value(Value::Text(v)))],
            ) = (set, parts.as_slice())
                && k == "name"
            {
                return match set {
                    Set::Teams => o.team_id(v).map(Target::Team),
                    Set::Units => o.business_unit_id(v).map(Target::Unit),
                    Set::Roles => o.role_id(v).map(Target::Role),
                    _ => o.template_id(v).map(Target::Template),
                }
                .ok_or_else(|| not_found(o, table, &format!("name='{v}'")));
            }
            let Set::Records(t) = set else {
                return Err(bad(
                    "odata_syntax",
                    "this entity set is keyed by its GUID (or `name='…'`)",
                ));
            };
            let filter = alternate_key_filter(o, t, parts)?;
            let Some(reader) = reader else {
                return Err(bad(
                    "bad_actor",
                    "an alternate key is looked up as a user: use a user's key or token",
                ));
            };
            let query = strata_engine::ListQuery {
                filter: Some(filter),
                limit: 2,
                work_budget: Some(crate::limits::MAX_LIST_WORK),
                ..Default::default()
            };
            let page = o
                .list(reader, t, &query)
                .map_err(|e| bad("bad_filter", e.to_string()))?;
            match page.records.as_slice() {
                [one] => Ok(if o.table(t).name == "systemuser" {
                    match o.record(*one).owner {
                        strata_engine::Owner::User(u) => Target::User(u),
                        _ => Target::Record(*one),
                    }
                } else {
                    Target::Record(*one)
                }),
                [] => Err(not_found(o, table, &key_text(parts))),
                _ => Err(bad(
                    "duplicate",
                    format!(
                        "more than one {} record has the key {}",
                        o.table(t).name,
                        key_text(parts)
                    ),
                )),
            }
        }
    }
}

fn key_text(parts: &[(String, Arg)]) -> String {
    parts
        .iter()
        .map(|(k, v)| match v {
            Arg::Value(v) => format!("{k}={v}"),
            other => format!("{k}={other:?}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn not_found(o: &Organization, table: TableId, key: &str) -> WebError {
    WebError(ApiError::new(
        "not_found",
        format!("{} With Id = {key} Does Not Exist", o.table(table).name),
    ))
}

fn alternate_key_filter(
    o: &Organization,
    table: TableId,
    parts: &[(String, Arg)],
) -> Result<strata_engine::Filter, WebError> {
    let known = entity::known_columns(o, table);
    let mut terms = Vec::new();
    for (column, value) in parts {
        if !known.contains(column) || column.starts_with('_') {
            return Err(unknown_property(o, table, column));
        }
        let Arg::Value(value) = value else {
            return Err(bad(
                "odata_syntax",
                format!("key `{column}` takes a literal"),
            ));
        };
        terms.push(strata_engine::Filter::Compare {
            column: column.clone(),
            op: strata_engine::CompareOp::Eq,
            value: value.clone(),
        });
    }
    Ok(strata_engine::Filter::And(terms))
}

pub(crate) fn unknown_property(o: &Organization, table: TableId, name: &str) -> WebError {
    bad(
        "unknown_column",
        format!(
            "Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{}'.",
            o.table(table).name
        ),
    )
}

/// `$select`, checked against the table's columns.
fn select(
    call: &Call<'_>,
    o: &Organization,
    table: TableId,
) -> Result<Option<Vec<String>>, WebError> {
    let Some(text) = call.param("$select") else {
        return Ok(None);
    };
    parse_select(o, table, text).map(Some)
}

fn parse_select(o: &Organization, table: TableId, text: &str) -> Result<Vec<String>, WebError> {
    let columns: Vec<String> = text
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    check_select(o, table, &columns)
}

/// `$select` columns, checked against the table's columns.
pub(super) fn check_select(
    o: &Organization,
    table: TableId,
    columns: &[String],
) -> Result<Vec<String>, WebError> {
    let known = entity::known_columns(o, table);
    if columns.len() > limits::MAX_SELECT {
        return Err(bad(
            "odata_limit",
            format!("$select names more than {} columns", limits::MAX_SELECT),
        ));
    }
    for c in columns {
        if !known.contains(c) {
            return Err(unknown_property(o, table, c));
        }
    }
    Ok(columns.to_vec())
}

/// An entity as the readers see it (`None` when they may not read it).
pub(super) fn entity_as_seen(
    o: &Organization,
    target: Target,
    readers: (UserId, Option<UserId>),
    select: Option<&[String]>,
    annotations: entity::Annotations,
) -> Option<Map<String, Json>> {
    if !seen(o, target, readers) {
        return None;
    }
    // A team, unit or role: its JSON, narrowed to `$select` and its key.
    let selected = |id: &str, mut json: Map<String, Json>| {
        if let Some(columns) = select {
            json.retain(|k, _| k == id || columns.iter().any(|c| c == k));
        }
        json
    };
    Some(match target {
        Target::Record(r) => entity::record_json(o, r, readers, select, annotations),
        Target::User(u) => entity::record_json(o, o.user(u).record, readers, select, annotations),
        Target::Team(t) => selected("teamid", entity::team_json(o, t)),
        Target::Unit(u) => selected("businessunitid", entity::unit_json(o, u)),
        Target::Role(r) => selected("roleid", entity::role_json(o, r)),
        Target::Template(t) => entity::template_json(o, t),
        Target::Pending(..) => return None,
    })
}

/// Whether the readers may read an entity: a record (or user) by the record's Read, a team,
/// unit or role by Read on its table at a depth that covers its unit.
fn seen(o: &Organization, target: Target, readers: (UserId, Option<UserId>)) -> bool {
    let record = match target {
        Target::Record(r) => r,
        Target::User(u) => o.user(u).record,
        Target::Team(t) => return visible_on_unit(o, readers, "team", o.team(t).business_unit),
        Target::Unit(u) => return visible_on_unit(o, readers, "businessunit", u),
        Target::Role(r) => return visible_on_unit(o, readers, "role", o.role(r).business_unit),
        Target::Template(_) => return true,
        Target::Pending(..) => return false,
    };
    std::iter::once(readers.0)
        .chain(readers.1)
        .all(|u| o.check(u, Privilege::Read, record))
}

/// Refuses a read of a table's records to readers who hold no Read privilege on it at any
/// depth: Dataverse answers "principal user is missing prvRead… privilege" rather than an empty
/// list or a not-found.
pub(super) fn require_read(
    o: &Organization,
    readers: (UserId, Option<UserId>),
    table: TableId,
) -> Result<(), WebError> {
    for u in std::iter::once(readers.0).chain(readers.1) {
        if o.max_depth(u, table, Privilege::Read) == strata_engine::Depth::None {
            return Err(bad(
                "denied",
                format!(
                    "user `{}` lacks the Read privilege on table `{}`",
                    o.user(u).name,
                    o.table(table).name
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the readers may read an entity of a business-owned system table in `unit`.
pub(crate) fn visible_on_unit(
    o: &Organization,
    readers: (UserId, Option<UserId>),
    table: &str,
    unit: strata_engine::BusinessUnitId,
) -> bool {
    let Some(t) = o.table_id(table) else {
        return false;
    };
    std::iter::once(readers.0)
        .chain(readers.1)
        .all(|u| o.explain_on_unit(u, t, Privilege::Read, unit).allowed)
}

pub(super) fn annotations(call: &Call<'_>) -> entity::Annotations {
    entity::Annotations::asked(
        call.headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// An entity's name as the readers see it: the record's primary name column (a user's full
/// name, a team's, a unit's name), `None` when they may not read the entity or the column
/// (D147).
pub(crate) fn name_as_seen(
    o: &Organization,
    target: Target,
    readers: (UserId, Option<UserId>),
) -> Option<String> {
    let record = match target {
        Target::Record(r) => r,
        Target::User(u) => o.user(u).record,
        Target::Team(t) => {
            return visible_on_unit(o, readers, "team", o.team(t).business_unit)
                .then(|| o.team(t).name.clone());
        }
        Target::Unit(u) => {
            return visible_on_unit(o, readers, "businessunit", u)
                .then(|| o.units().name(u).to_owned());
        }
        Target::Role(_) | Target::Template(_) | Target::Pending(..) => return None,
    };
    let rec = o.record(record);
    let table = o.table(rec.table);
    let column = entity::primary_name(table);
    let readable = std::iter::once(readers.0).chain(readers.1).all(|u| {
        o.check(u, Privilege::Read, record)
            && (!table.is_secured(&column)
                || o.column_access(u, rec.table, &column, Some(record)).read)
    });
    if !readable {
        return None;
    }
    match rec.field(&column) {
        Value::Text(name) => Some(name.to_string()),
        _ if table.name == "systemuser" => match rec.owner {
            strata_engine::Owner::User(u) if o.user(u).record == record => {
                Some(o.user(u).name.clone())
            }
            _ => None,
        },
        _ => None,
    }
}

/// The `$filter` of a list, as the engine's filter.
fn filter(
    o: &Organization,
    table: TableId,
    text: &str,
    aliases: &strata_odata::Aliases,
) -> Result<strata_engine::Filter, WebError> {
    let f = strata_odata::parse_filter(text, aliases).map_err(odata_error)?;
    resolve_filter(o, table, f)
}

/// An error of the OData parsers, with its code.
pub(crate) fn odata_error(e: strata_odata::ODataError) -> WebError {
    let code = match e.code() {
        "odata_limit" => "odata_limit",
        // What a query names wrongly is a bad request (400), not a missing resource.
        "odata_unknown_option" | "odata_unknown_function" => "odata_syntax",
        "odata_unsupported_option" => "odata_unsupported",
        _ => "odata_syntax",
    };
    bad(code, e.to_string())
}

/// The query's parameter aliases (`@p1=…`).
pub(super) fn aliases(call: &Call<'_>) -> Result<strata_odata::Aliases, WebError> {
    let mut out = strata_odata::Aliases::new();
    for (k, v) in &call.query {
        if k.starts_with('@') {
            out.insert(
                k.clone(),
                strata_odata::ParamValue::parse(v, k).map_err(odata_error)?,
            );
        }
    }
    Ok(out)
}

/// The filter as the engine takes it: the table's own columns as they are, the record's
/// facts the JSON shows as columns (its primary id, `_ownerid_value`, `_owninguser_value`,
/// `_owningteam_value`, `_owningbusinessunit_value`, `_createdby_value`, `_modifiedby_value`,
/// lookups `_x_value`) as tests of those
/// facts by GUID, and `statuscode` as the record's state. Anything else is refused by name.
pub(super) fn resolve_filter(
    o: &Organization,
    table: TableId,
    f: strata_engine::Filter,
) -> Result<strata_engine::Filter, WebError> {
    use strata_engine::{CompareOp, Filter as F};
    let fact_filter = |column: &str, op: Option<CompareOp>, values: Vec<Value>| {
        let Some(fact) = fact_column(o, table, column) else {
            return Ok(None);
        };
        let negate = match op {
            None | Some(CompareOp::Eq) => false,
            Some(CompareOp::Ne) => true,
            Some(_) => return Err(fact_unsupported(column)),
        };
        let mut targets = Vec::with_capacity(values.len());
        for v in values {
            targets.extend(referent(o, fact.1, column, &v)?);
        }
        let f = F::Refers {
            fact: fact.0,
            targets,
        };
        Ok(Some(if negate { F::Not(Box::new(f)) } else { f }))
    };
    match f {
        F::Compare { column, op, value } => {
            if let Some(f) = fact_filter(&column, Some(op), vec![value.clone()])? {
                return Ok(f);
            }
            if let Some(state) = status_as_state(o, table, &column, op, &value)? {
                return Ok(state);
            }
            filterable(o, table, &column)?;
            Ok(F::Compare { column, op, value })
        }
        F::In { column, values } => {
            if let Some(f) = fact_filter(&column, None, values.clone())? {
                return Ok(f);
            }
            filterable(o, table, &column)?;
            Ok(F::In { column, values })
        }
        F::Contains { ref column, .. }
        | F::StartsWith { ref column, .. }
        | F::EndsWith { ref column, .. } => {
            if fact_column(o, table, column).is_some() {
                return Err(fact_unsupported(column));
            }
            filterable(o, table, column)?;
            Ok(f)
        }
        F::And(items) => Ok(F::And(
            items
                .into_iter()
                .map(|i| resolve_filter(o, table, i))
                .collect::<Result<_, _>>()?,
        )),
        F::Or(items) => Ok(F::Or(
            items
                .into_iter()
                .map(|i| resolve_filter(o, table, i))
                .collect::<Result<_, _>>()?,
        )),
        F::Not(inner) => Ok(F::Not(Box::new(resolve_filter(o, table, *inner)?))),
        F::Refers { .. } => Ok(f),
    }
}

/// Which kinds of principal a fact column may name.
#[derive(Clone, Copy)]
enum Names {
    Records,
    Owners,
    Users,
    Teams,
    Units,
    /// A user, or null for the system (`_createdby_value`, `_modifiedby_value`: D165).
    Writers,
}

/// The record fact a column of the JSON stands for, unless the table has a column of that name.
fn fact_column(
    o: &Organization,
    table: TableId,
    column: &str,
) -> Option<(strata_engine::Fact, Names)> {
    use strata_engine::Fact;
    if o.has_column(table, column) {
        return None;
    }
    let t = o.table(table);
    let owned = t.ownership == strata_engine::Ownership::UserOrTeam;
    if column == entity::primary_id(t) {
        return Some((Fact::Record, Names::Records));
    }
    match column {
        "_owningbusinessunit_value" => return Some((Fact::OwningUnit, Names::Units)),
        "_ownerid_value" if owned => return Some((Fact::Owner, Names::Owners)),
        "_owninguser_value" if owned => return Some((Fact::Owner, Names::Users)),
        "_owningteam_value" if owned => return Some((Fact::Owner, Names::Teams)),
        "_createdby_value" => return Some((Fact::CreatedBy, Names::Writers)),
        "_modifiedby_value" => return Some((Fact::ModifiedBy, Names::Writers)),
        _ => {}
    }
    let lookup = column.strip_prefix('_')?.strip_suffix("_value")?;
    let rel = o.relationship_by_lookup(table, lookup)?;
    Some((Fact::Lookup(rel), Names::Records))
}

/// What a GUID (or null) in a filter on a fact column refers to: `None` when it names nothing
/// of the right kind, so that it matches no record.
fn referent(
    o: &Organization,
    names: Names,
    column: &str,
    value: &Value,
) -> Result<Option<Option<strata_engine::Referent>>, WebError> {
    use strata_engine::Referent as R;
    let text = match value {
        Value::Null if matches!(names, Names::Users | Names::Teams) => {
            // `_owninguser_value eq null` holds for team-owned records: not a null owner.
            return Err(fact_unsupported(column));
        }
        Value::Null => return Ok(Some(None)),
        Value::Text(t) => t,
        _ => {
            return Err(bad(
                "bad_value",
                format!("`{column}` is compared with a GUID or null, not `{value}`"),
            ));
        }
    };
    let guid = Guid::parse_canonical(text)
        .ok_or_else(|| bad("bad_value", format!("`{column}`: `{text}` is not a GUID")))?;
    let found = match names {
        Names::Records => o.record_by_guid(guid).map(R::Record),
        Names::Units => o.unit_by_guid(guid).map(R::Unit),
        Names::Users | Names::Writers => o.user_by_guid(guid).map(R::User),
        Names::Teams => o.team_by_guid(guid).map(R::Team),
        Names::Owners => o
            .user_by_guid(guid)
            .map(R::User)
            .or_else(|| o.team_by_guid(guid).map(R::Team)),
    };
    Ok(found.map(Some))
}

fn fact_unsupported(column: &str) -> WebError {
    bad(
        "odata_unsupported",
        format!(
            "`{column}` is compared with eq, ne or In on a GUID (or null) only (docs/webapi.md)"
        ),
    )
}

/// `statuscode eq N` as the record's state: Strata keeps the two default statuses, 1 (active)
/// and 2 (inactive), one per state.
fn status_as_state(
    o: &Organization,
    table: TableId,
    column: &str,
    op: strata_engine::CompareOp,
    value: &Value,
) -> Result<Option<strata_engine::Filter>, WebError> {
    use strata_engine::CompareOp;
    if column != "statuscode" || o.has_column(table, column) {
        return Ok(None);
    }
    if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
        return Err(bad(
            "odata_unsupported",
            "`statuscode` is compared with eq or ne only (docs/webapi.md)",
        ));
    }
    let Value::Int(code) = value else {
        return Err(bad(
            "bad_value",
            format!("`statuscode` is compared with 1 (active) or 2 (inactive), not `{value}`"),
        ));
    };
    Ok(Some(strata_engine::Filter::Compare {
        column: strata_engine::STATE_COLUMN.to_owned(),
        op,
        value: Value::Int(code.saturating_sub(1)),
    }))
}

pub(super) fn filterable(o: &Organization, table: TableId, column: &str) -> Result<(), WebError> {
    // The engine's lists take the table's own columns and the record's state (`statecode`).
    if o.has_column(table, column) {
        return Ok(());
    }
    if entity::system_columns(o, table).iter().any(|c| c == column) {
        return Err(bad(
            "odata_unsupported",
            format!("filtering or ordering by `{column}` is not supported (docs/webapi.md)"),
        ));
    }
    Err(unknown_property(o, table, column))
}

/// The skip token of the next page: how many records were returned so far, and the signed
/// cursor of the engine's list.
fn skip_token(returned: usize, cursor: &str) -> String {
    format!("{returned}.{cursor}")
}

fn parse_skip_token(text: &str) -> Result<(usize, &str), WebError> {
    text.split_once('.')
        .and_then(|(n, c)| n.parse().ok().map(|n| (n, c)))
        .ok_or_else(|| bad("bad_cursor", "the $skiptoken is not one this server gave"))
}

/// `$top`, a whole number.
pub(super) fn top(call: &Call<'_>) -> Result<Option<usize>, WebError> {
    call.param("$top")
        .map(|t| {
            t.parse::<usize>()
                .map_err(|_| bad("odata_syntax", format!("$top `{t}` is not a whole number")))
        })
        .transpose()
}

/// Refuses a query option a list does not take: 400, as Dataverse answers (a query option is
/// part of the request, not a resource).
fn list_options(call: &Call<'_>) -> Result<(), WebError> {
    for (name, _) in &call.query {
        if name.starts_with('$')
            && !matches!(
                name.as_str(),
                "$select" | "$filter" | "$orderby" | "$top" | "$count" | "$expand" | "$skiptoken"
            )
        {
            let code = if matches!(
                name.as_str(),
                "$skip" | "$search" | "$format" | "$levels" | "$compute" | "$index"
            ) {
                "odata_unsupported"
            } else {
                "odata_syntax"
            };
            return Err(bad(
                code,
                format!("The query parameter '{name}' is not supported"),
            ));
        }
    }
    Ok(())
}

async fn list(call: &Call<'_>, set_name: &str, set: Set, table: TableId) -> WebResult {
    if call.param("fetchXml").is_some() {
        return super::fetch::list(call, set_name, set, table).await;
    }
    if call.param("$apply").is_some() {
        return super::aggregate::apply_list(call, set_name, set, table).await;
    }
    list_options(call)?;
    let top = top(call)?;
    let count = match call.param("$count") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(bad(
                "odata_syntax",
                format!("$count is true or false, not `{other}`"),
            ));
        }
    };
    let page_size = call.max_page_size()?.unwrap_or(limits::MAX_PAGE);
    let Set::Records(_) = set else {
        return system_list(call, set_name, (set, table), top).await;
    };
    let aliases = aliases(call)?;
    let expand = super::expand::parse(call, &aliases)?;
    let alias_params = super::expand::alias_params(call);
    let filter_text = call.param("$filter").map(str::to_owned);
    let order_text = call.param("$orderby").map(str::to_owned);
    let token = call.param("$skiptoken").map(str::to_owned);
    let select_text = call.param("$select").map(str::to_owned);
    let app = Arc::clone(call.state);
    let handle = Arc::clone(&call.request.handle);
    let base = call.base.clone();
    let set_name = set_name.to_owned();
    let annotate = annotations(call);
    let readers_result = {
        let loaded = call.request.handle.read().await;
        readers(call, &loaded.org).and_then(|r| require_read(&loaded.org, r, table).map(|()| r))
    };
    let readers = readers_result?;
    let next_query = query_but_token(call);
    let service_root = call.base.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, usize), WebError> {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        let select = select_text
            .as_deref()
            .map(|s| parse_select(o, table, s))
            .transpose()?;
        let filter = filter_text
            .as_deref()
            .map(|f| filter(o, table, f, &aliases))
            .transpose()?;
        let order = match order_text.as_deref() {
            None => Vec::new(),
            Some(text) => {
                let order = strata_ops::parse_order(text)
                    .map_err(|e| bad("bad_order", format!("$orderby: {e}")))?;
                for x in &order {
                    filterable(o, table, &x.column)?;
                }
                order
            }
        };
        // Checked before any record is read: an error never depends on the page.
        let mut expansion =
            super::expand::Expansion::new(o, table, &expand, &service_root, alias_params)?;
        let query_id = format!(
            "webapi\n{}\n{table:?}\n{}\n{}\n{}\n{}\n{}",
            handle.name,
            o.user(readers.0).name,
            readers
                .1
                .map(|i| o.user(i).name.as_str())
                .unwrap_or_default(),
            filter_text.as_deref().unwrap_or_default(),
            order_text.as_deref().unwrap_or_default(),
            top.map(|t| t.to_string()).unwrap_or_default(),
        );
        let (returned, after) = match token.as_deref() {
            None => (0, None),
            Some(t) => {
                let (n, cursor) = parse_skip_token(t)?;
                (
                    n,
                    // The count returned so far is signed with the position: `$top` holds.
                    Some(
                        app.cursors
                            .decode(cursor, &format!("{query_id}\n{n}"))
                            .map_err(WebError)?,
                    ),
                )
            }
        };
        let remaining = top.map_or(usize::MAX, |t| t.saturating_sub(returned));
        let limit = page_size.min(remaining).max(1);
        let query = strata_engine::ListQuery {
            filter,
            order,
            after,
            limit,
            count,
            plan: strata_engine::Plan::Auto,
            work_budget: Some(crate::limits::MAX_LIST_WORK),
            impersonator: readers.1,
        };
        let page = if remaining == 0 {
            None
        } else {
            Some(
                o.list(readers.0, table, &query)
                    .map_err(|e| WebError(crate::api::list_error(&e, &query)))?,
            )
        };
        let (page_records, page_next, page_total) = match page {
            Some(p) => (p.records, p.next, p.total),
            None => (Vec::new(), None, None),
        };
        // The page is written straight into the body, in Dataverse's order: context, count,
        // the records, the next link.
        let shown = returned + page_records.len();
        let mut out = Vec::with_capacity(256 + page_records.len() * 256);
        let mut head = Map::new();
        head.insert(
            "@odata.context".into(),
            Json::String(context(&base, &set_name, select.as_deref())),
        );
        if let Some(total) = page_total {
            head.insert("@odata.count".into(), json!(total));
        }
        open_page(&mut out, head);
        for (i, &r) in page_records.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // The engine's list holds only what every reader may read.
            if expand.is_empty() {
                let mut item = entity::Writer::open(&mut out);
                entity::render_record(&mut item, o, r, readers, select.as_deref(), annotate);
                item.close();
            } else {
                let mut item = entity::record_json(o, r, readers, select.as_deref(), annotate);
                expansion.expand_into(o, r, &expand, readers, annotate, &mut item)?;
                serde_json::to_writer(&mut out, &item)
                    .map_err(|e| bad("internal", format!("writing a record: {e}")))?;
            }
        }
        out.push(b']');
        let more = top.is_none_or(|t| shown < t);
        if let Some(next) = page_next.as_ref().filter(|_| more) {
            let cursor = app.cursors.encode(next, &format!("{query_id}\n{shown}"));
            let link = next_link(&base, &set_name, &next_query, &skip_token(shown, &cursor));
            out.extend_from_slice(b",\"@odata.nextLink\":");
            serde_json::to_writer(&mut out, &link)
                .map_err(|e| bad("internal", format!("writing a link: {e}")))?;
        }
        out.push(b'}');
        Ok((out, page_records.len()))
    })
    .await
    .map_err(|e| bad("internal", format!("list task failed: {e}")))??;
    call.state.metrics.decided(body.1);
    let mut response = super::json_bytes_response(StatusCode::OK, body.0);
    page_size_applied(call, &mut response)?;
    Ok(response)
}

/// The records of `table` the readers may read that `filter` matches, in one list under one
/// work budget: `None` when more than `limit` match (the caller names its own limit).
pub(super) fn readable_at_most(
    o: &Organization,
    readers: (UserId, Option<UserId>),
    table: TableId,
    filter: Option<strata_engine::Filter>,
    limit: usize,
) -> Result<Option<Vec<RecordId>>, WebError> {
    let query = strata_engine::ListQuery {
        filter,
        limit: limit + 1,
        work_budget: Some(crate::limits::MAX_LIST_WORK),
        impersonator: readers.1,
        ..Default::default()
    };
    let page = o
        .list(readers.0, table, &query)
        .map_err(|e| WebError(crate::api::list_error(&e, &query)))?;
    Ok((page.records.len() <= limit).then_some(page.records))
}

/// Writes a list page's opening into `out`: its context and annotations (`head`, in order),
/// then `,"value":[`, for the records to be written straight after.
pub(super) fn open_page(out: &mut Vec<u8>, head: Map<String, Json>) {
    let head = Json::Object(head).to_string();
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"value\":[");
}

/// Answers `Prefer: odata.maxpagesize=N` with `Preference-Applied`.
fn page_size_applied(
    call: &Call<'_>,
    response: &mut axum::response::Response,
) -> Result<(), WebError> {
    if let Some(n) = call.max_page_size()?
        && let Ok(v) = HeaderValue::from_str(&format!("odata.maxpagesize={n}"))
    {
        response.headers_mut().insert("preference-applied", v);
    }
    Ok(())
}

pub(super) fn target_table(o: &Organization, t: Target) -> Result<TableId, WebError> {
    let name = match t {
        Target::Record(r) => return Ok(o.record(r).table),
        Target::Pending(t, _) => return Ok(t),
        Target::User(u) => return Ok(o.record(o.user(u).record).table),
        Target::Team(_) | Target::Template(_) => "team",
        Target::Unit(_) => "businessunit",
        Target::Role(_) => "role",
    };
    o.table_id(name)
        .ok_or_else(|| bad("internal", format!("no built-in table `{name}`")))
}

/// `@odata.context` of a collection or an entity.
pub(crate) fn context(base: &str, set: &str, select: Option<&[String]>) -> String {
    match select {
        Some(columns) => format!("{base}$metadata#{set}({})", columns.join(",")),
        None => format!("{base}$metadata#{set}"),
    }
}

/// The request's query without its `$skiptoken`: what a next link repeats.
fn query_but_token(call: &Call<'_>) -> Vec<(String, String)> {
    call.query
        .iter()
        .filter(|(k, _)| k != "$skiptoken")
        .cloned()
        .collect()
}

fn next_link(base: &str, set: &str, query: &[(String, String)], token: &str) -> String {
    let mut out = format!("{base}{set}?");
    for (k, v) in query {
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
        out.push('&');
    }
    out.push_str("$skiptoken=");
    out.push_str(&encode(token));
    out
}

/// Percent-encodes what a query value may not hold raw (keeping `$`, `,`, `(`, `)`, `'`).
pub(super) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~$,()'*:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Lists of teams, business units, roles and templates: every one the caller may read.
async fn system_list(
    call: &Call<'_>,
    set_name: &str,
    (set, table): (Set, TableId),
    top: Option<usize>,
) -> WebResult {
    if call.param("$filter").is_some() || call.param("$orderby").is_some() {
        return Err(bad(
            "odata_unsupported",
            format!(
                "$filter and $orderby are not supported on {set_name}: it is small, read it whole"
            ),
        ));
    }
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let readers = readers(call, o)?;
    // A template's JSON is not the team table's: its `$select` is not read.
    let select = match set {
        Set::Templates => None,
        _ => select(call, o, table)?,
    };
    let targets: Vec<Target> = match set {
        Set::Teams => o
            .team_ids()
            .filter(|t| o.team(*t).record_team.is_none())
            .map(Target::Team)
            .collect(),
        Set::Units => o.units().ids().map(Target::Unit).collect(),
        Set::Roles => o.role_ids().map(Target::Role).collect(),
        Set::Templates => o.template_ids().map(Target::Template).collect(),
        Set::Records(_) => Vec::new(),
    };
    entities_answer(
        call,
        o,
        readers,
        (set_name, set_name, select.as_deref()),
        targets,
        top,
    )
}

/// A collection of entities held in memory (teams, units, roles, a user's roles…): those the
/// readers may read, narrowed to `$select`, counted (`$count`) before `$top`, in pages of
/// `odata.maxpagesize` (5,000) whose `@odata.nextLink` carries the position (`$skiptoken`).
/// Only a page's entities are written.
fn entities_answer(
    call: &Call<'_>,
    o: &Organization,
    readers: (UserId, Option<UserId>),
    (set, path, select): (&str, &str, Option<&[String]>),
    targets: Vec<Target>,
    top: Option<usize>,
) -> WebResult {
    if call.param("$expand").is_some() {
        return Err(bad(
            "odata_unsupported",
            format!("$expand is supported on records and users, not on {set}"),
        ));
    }
    let page = call.max_page_size()?.unwrap_or(limits::MAX_PAGE);
    let from = match call.param("$skiptoken") {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| bad("bad_cursor", "the $skiptoken is not one this server gave"))?,
    };
    let seen: Vec<Target> = targets
        .into_iter()
        .filter(|t| seen(o, *t, readers))
        .collect();
    let until = top.map_or(seen.len(), |t| t.min(seen.len()));
    let (from, to) = (from.min(until), until.min(from.saturating_add(page)));
    let value: Vec<Json> = seen[from..to]
        .iter()
        .filter_map(|t| entity_as_seen(o, *t, readers, select, entity::Annotations::default()))
        .map(Json::Object)
        .collect();
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        Json::String(context(&call.base, set, select)),
    );
    if call.param("$count") == Some("true") {
        out.insert("@odata.count".into(), json!(seen.len()));
    }
    out.insert("value".into(), Json::Array(value));
    if to < until {
        out.insert(
            "@odata.nextLink".into(),
            Json::String(next_link(
                &call.base,
                path,
                &query_but_token(call),
                &to.to_string(),
            )),
        );
    }
    let mut response = json_response(StatusCode::OK, &Json::Object(out));
    page_size_applied(call, &mut response)?;
    Ok(response)
}

/// Where `<set>(key)/<navigation property>` leads once the lock is let go: a retrieve of the
/// related entity, or the child table's list.
enum Related {
    /// A single-valued property: the related entity's set, table and GUID.
    One(String, Set, TableId, Guid),
    /// A one-to-many relationship: the child table's set name, table and filter (the lookup's,
    /// and the request's own joined with `and`).
    Many(String, TableId, String),
}

/// `GET <set>(key)/<navigation property or column>`: the related entity (204 when there is
/// none), the related records as a list with the request's options, a built-in association's
/// entities, or a column's value. The entity navigated from is read as the readers first: one
/// they may not read leads nowhere.
async fn navigation(call: &Call<'_>, set: Set, table: TableId, key: &Args, nav: &str) -> WebResult {
    let unknown = || {
        bad(
            "odata_unknown",
            format!("Resource not found for the segment '{nav}'."),
        )
    };
    let related = {
        let loaded = call.request.handle.read().await;
        let o = &loaded.org;
        let (readers, target) = path_entity(call, o, (set, table), key)?;
        let association = match (target, nav) {
            (Target::User(u), "systemuserroles_association") => Some((
                o.user(u)
                    .roles
                    .iter()
                    .map(|a| Target::Role(a.role))
                    .collect(),
                "role",
            )),
            (Target::User(u), "teammembership_association") => Some((
                o.user(u)
                    .teams
                    .iter()
                    .filter(|t| o.team(**t).record_team.is_none())
                    .map(|t| Target::Team(*t))
                    .collect(),
                "team",
            )),
            (Target::Team(t), "teammembership_association") => Some((
                o.team(t).members.iter().map(|u| Target::User(*u)).collect(),
                "systemuser",
            )),
            (Target::Team(t), "teamroles_association") => Some((
                o.team(t).roles.iter().map(|r| Target::Role(*r)).collect(),
                "role",
            )),
            _ => None,
        };
        if let Some((targets, of)) = association {
            return association_answer(call, o, readers, (target, nav), targets, of);
        }
        let record = match target {
            Target::Record(r) => r,
            Target::User(u) => o.user(u).record,
            _ => return Err(unknown()),
        };
        let from = o.record(record).table;
        match super::expand::leads(o, from, nav) {
            Err(_) if entity::known_columns(o, from).iter().any(|c| c == nav) => {
                return Ok(column_value(call, o, record, readers, nav));
            }
            Err(_) => return Err(unknown()),
            Ok(super::expand::Leads::Many(rel)) => {
                let rel = o.relationship(rel);
                let mut filter = format!("_{}_value eq {}", rel.lookup, o.record_guid(record));
                if let Some(theirs) = call.param("$filter") {
                    // Their filter must stand on its own: `a) or (b` would otherwise escape the
                    // parentheses and the list the path names.
                    self::filter(o, rel.child, theirs, &aliases(call)?)?;
                    filter = format!("{filter} and ({theirs})");
                }
                Related::Many(o.table(rel.child).entity_set(), rel.child, filter)
            }
            Ok(super::expand::Leads::One(_)) => {
                let Some(t) = super::expand::navigate(o, record, nav)? else {
                    return Ok(no_content());
                };
                let guid = match t {
                    Target::Record(r) => o.record_guid(r),
                    Target::User(u) => o.user_guid(u),
                    Target::Team(x) => o.team_guid(x),
                    Target::Unit(x) => o.unit_guid(x),
                    _ => return Err(unknown()),
                };
                let set_name = o.table(target_table(o, t)?).entity_set();
                let (set, table) = entity::resolve_set(o, &set_name)?;
                Related::One(set_name, set, table, guid)
            }
        }
    };
    match related {
        Related::One(set_name, set, table, guid) => {
            retrieve(call, &set_name, set, table, &Args::Id(guid)).await
        }
        Related::Many(set_name, child, filter) => {
            // The related list: the child table's list with that filter, its next links
            // continuing the same list.
            let mut query: Vec<(String, String)> = call
                .query
                .iter()
                .filter(|(k, _)| k != "$filter")
                .cloned()
                .collect();
            query.push(("$filter".into(), filter));
            let related = Call {
                state: call.state,
                request: call.request,
                base: call.base.clone(),
                method: call.method.clone(),
                path: call.path.clone(),
                query,
                headers: call.headers.clone(),
                body: call.body.clone(),
                planned: None,
            };
            Box::pin(list(&related, &set_name, Set::Records(child), child)).await
        }
    }
}

/// A built-in many-to-many association of `from` (`systemusers(<id>)/systemuserroles_association`…):
/// its entities of built-in table `of`, as a small collection.
fn association_answer(
    call: &Call<'_>,
    o: &Organization,
    readers: (UserId, Option<UserId>),
    (from, nav): (Target, &str),
    targets: Vec<Target>,
    of: &str,
) -> WebResult {
    list_options(call)?;
    if call.param("$filter").is_some() || call.param("$orderby").is_some() {
        return Err(bad(
            "odata_unsupported",
            format!("$filter and $orderby are not supported on {nav}: read it whole"),
        ));
    }
    let table = o
        .table_id(of)
        .ok_or_else(|| bad("internal", format!("no built-in table `{of}`")))?;
    let path = match from {
        Target::User(u) => format!("systemusers({})/{nav}", o.user_guid(u)),
        Target::Team(t) => format!("teams({})/{nav}", o.team_guid(t)),
        _ => return Err(bad("internal", format!("`{nav}` is a user's or a team's"))),
    };
    let select = select(call, o, table)?;
    entities_answer(
        call,
        o,
        readers,
        (&o.table(table).entity_set(), &path, select.as_deref()),
        targets,
        top(call)?,
    )
}

/// `<set>(key)/<column>`: the column's value as the readers see it (`{"value": …}`), 204 when
/// it is null — a secured column they may not read included.
fn column_value(
    call: &Call<'_>,
    o: &Organization,
    record: RecordId,
    readers: (UserId, Option<UserId>),
    column: &str,
) -> axum::response::Response {
    match value_as_seen(o, record, readers, column) {
        Json::Null => no_content(),
        value => {
            let context = format!(
                "{}$metadata#{}({})/{column}",
                call.base,
                o.table(o.record(record).table).entity_set(),
                o.record_guid(record)
            );
            json_response(
                StatusCode::OK,
                &json!({"@odata.context": context, "value": value}),
            )
        }
    }
}

/// A record's column as the readers see it in its JSON (null when secured from them).
fn value_as_seen(
    o: &Organization,
    record: RecordId,
    readers: (UserId, Option<UserId>),
    column: &str,
) -> Json {
    let columns = [column.to_owned()];
    let mut json = entity::record_json(
        o,
        record,
        readers,
        Some(&columns),
        entity::Annotations::default(),
    );
    json.remove(column).unwrap_or(Json::Null)
}

/// The entity a path starts from, read first as the readers (D160): their Read on its table,
/// then on the entity itself.
fn path_entity(
    call: &Call<'_>,
    o: &Organization,
    (set, table): (Set, TableId),
    key: &Args,
) -> Result<((UserId, Option<UserId>), Target), WebError> {
    let readers = readers(call, o)?;
    if let Set::Records(_) = set {
        require_read(o, readers, table)?;
    }
    let target = resolve_key(o, set, table, key, Some(readers.0))?;
    require_seen(o, target, readers)?;
    Ok((readers, target))
}

/// `<set>(key)/<column>/$value`: the column's value as the readers see it, as text
/// (`text/plain`: a number or boolean as JSON writes it, a GUID bare), 204 when it is null — a
/// secured column they may not read included. The record is read first, as a path's is.
async fn raw_value(
    call: &Call<'_>,
    set: Set,
    table: TableId,
    key: &Args,
    column: &str,
) -> WebResult {
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let (readers, target) = path_entity(call, o, (set, table), key)?;
    let record = match target {
        Target::Record(r) => r,
        Target::User(u) => o.user(u).record,
        _ => {
            return Err(bad(
                "odata_unsupported",
                "$value is answered on a record's column",
            ));
        }
    };
    if !entity::known_columns(o, o.record(record).table)
        .iter()
        .any(|c| c == column)
    {
        return Err(bad(
            "odata_unknown",
            format!("Resource not found for the segment '{column}'."),
        ));
    }
    let text = match value_as_seen(o, record, readers, column) {
        Json::Null => return Ok(no_content()),
        Json::String(text) => text,
        other => other.to_string(),
    };
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response();
    response
        .headers_mut()
        .insert("odata-version", HeaderValue::from_static("4.0"));
    Ok(response)
}

/// Refuses an entity the readers may not read: a record (or user) with Dataverse's words and
/// the engine's explanation, a team, unit or role by the Read its unit needs.
fn require_seen(
    o: &Organization,
    target: Target,
    readers: (UserId, Option<UserId>),
) -> Result<(), WebError> {
    let record = match target {
        Target::Record(r) => Some(r),
        Target::User(u) => Some(o.user(u).record),
        _ => None,
    };
    if let Some(r) = record {
        for reader in std::iter::once(readers.0).chain(readers.1) {
            if !o.check(reader, Privilege::Read, r) {
                return Err(denied(o, reader, Privilege::Read, r));
            }
        }
    }
    if seen(o, target, readers) {
        return Ok(());
    }
    Err(bad(
        "denied",
        format!(
            "user `{}` may not read this {}",
            o.user(readers.0).name,
            target_table(o, target).map_or("entity", |t| o.table(t).name.as_str())
        ),
    ))
}

/// `<set>/$count`: the number of records the caller may read, as text.
async fn count(call: &Call<'_>, set: Set, table: TableId) -> WebResult {
    let Set::Records(_) = set else {
        return Err(bad(
            "odata_unsupported",
            "$count is answered for record tables",
        ));
    };
    let handle = Arc::clone(&call.request.handle);
    let readers = {
        let loaded = handle.read().await;
        let readers = readers(call, &loaded.org)?;
        require_read(&loaded.org, readers, table)?;
        readers
    };
    // `/$count?$filter=…` counts what the filter matches (OData's rule), never everything.
    let filter_text = call.param("$filter").map(str::to_owned);
    let aliases = aliases(call)?;
    let n = tokio::task::spawn_blocking(move || -> Result<u64, WebError> {
        let loaded = handle.read_blocking();
        let query = strata_engine::ListQuery {
            filter: filter_text
                .as_deref()
                .map(|f| filter(&loaded.org, table, f, &aliases))
                .transpose()?,
            limit: 1,
            count: true,
            work_budget: Some(crate::limits::MAX_LIST_WORK),
            impersonator: readers.1,
            ..Default::default()
        };
        let page = loaded
            .org
            .list(readers.0, table, &query)
            .map_err(|e| WebError(crate::api::list_error(&e, &query)))?;
        Ok(page.total.unwrap_or_default() as u64)
    })
    .await
    .map_err(|e| bad("internal", format!("count task failed: {e}")))??;
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        n.to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert("odata-version", HeaderValue::from_static("4.0"));
    Ok(response)
}

async fn retrieve(
    call: &Call<'_>,
    set_name: &str,
    set: Set,
    table: TableId,
    key: &Args,
) -> WebResult {
    let asked = Retrieve {
        set_name: set_name.to_owned(),
        set,
        table,
        key: key.clone(),
        select: call.param("$select").map(str::to_owned),
        // Kept as a result: a bad `$expand` is reported after the key and `$select`, as before.
        expand: aliases(call).and_then(|a| super::expand::parse(call, &a)),
        alias_params: super::expand::alias_params(call),
        annotate: annotations(call),
        base: call.base.clone(),
    };
    let loaded = call.request.handle.read().await;
    let readers = readers(call, &loaded.org)?;
    let item = if asked.expand.as_ref().is_ok_and(|e| !e.is_empty()) {
        // An expansion may read up to D148's bounds: on a blocking thread, as a list's is.
        drop(loaded);
        let handle = Arc::clone(&call.request.handle);
        tokio::task::spawn_blocking(move || asked.entity(&handle.read_blocking().org, readers))
            .await
            .map_err(|e| bad("internal", format!("retrieve task failed: {e}")))??
    } else {
        asked.entity(&loaded.org, readers)?
    };
    let etag = item
        .get("@odata.etag")
        .and_then(Json::as_str)
        .map(str::to_owned);
    // A conditional retrieve (`If-None-Match`): unchanged since the client's copy is 304, once
    // the readers were allowed to read it.
    if let (Some(tag), Some(theirs)) = (&etag, header_text(call, "if-none-match"))
        && (theirs == "*" || theirs.split(',').any(|t| t.trim() == tag))
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(tag) {
            response.headers_mut().insert(header::ETAG, v);
        }
        return Ok(response);
    }
    let mut response = json_response(StatusCode::OK, &Json::Object(item));
    if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

/// A retrieve's request, owned: it may be answered on a blocking thread.
struct Retrieve {
    set_name: String,
    set: Set,
    table: TableId,
    key: Args,
    select: Option<String>,
    expand: Result<Vec<Expand>, WebError>,
    alias_params: Vec<(String, String)>,
    annotate: entity::Annotations,
    base: String,
}

impl Retrieve {
    /// The entity as the readers see it, expanded, with its `@odata.context`.
    fn entity(
        self,
        o: &Organization,
        readers: (UserId, Option<UserId>),
    ) -> Result<Map<String, Json>, WebError> {
        let (set, table) = (self.set, self.table);
        if let Set::Records(_) = set {
            require_read(o, readers, table)?;
        }
        let target = resolve_key(o, set, table, &self.key, Some(readers.0))?;
        // A template's JSON is not the team table's: its `$select` is not read.
        let select = self
            .select
            .as_deref()
            .filter(|_| !matches!(target, Target::Template(_)))
            .map(|s| parse_select(o, target_table(o, target)?, s))
            .transpose()?;
        let expand = self.expand?;
        let record = match target {
            Target::Record(r) => Some(r),
            Target::User(u) => Some(o.user(u).record),
            _ => None,
        };
        if record.is_none() && !expand.is_empty() {
            return Err(bad(
                "odata_unsupported",
                format!(
                    "$expand is supported on records and users, not on a {} entity",
                    self.set_name
                ),
            ));
        }
        let mut expansion = super::expand::Expansion::new(
            o,
            target_table(o, target)?,
            &expand,
            &self.base,
            self.alias_params,
        )?;
        require_seen(o, target, readers)?;
        let mut item = entity_as_seen(o, target, readers, select.as_deref(), self.annotate)
            .ok_or_else(|| bad("not_found", "the entity is not there to read"))?;
        if let Some(r) = record {
            expansion.expand_into(o, r, &expand, readers, self.annotate, &mut item)?;
        }
        item.insert(
            "@odata.context".into(),
            Json::String(format!(
                "{}/$entity",
                context(&self.base, &self.set_name, select.as_deref())
            )),
        );
        Ok(item)
    }
}

/// A refusal as Dataverse words it, with the engine's explanation.
pub(crate) fn denied(o: &Organization, user: UserId, p: Privilege, r: RecordId) -> WebError {
    let decision = o.explain(user, p, r);
    WebError(ApiError::new("denied", o.render_decision(&decision)))
}

/// Runs operations on the one write path, as the request's acting principal.
pub(crate) async fn write(call: &Call<'_>, ops: Vec<Operation>) -> Result<u64, WebError> {
    if let Some(planned) = call.planned {
        // Inside a change set: planned now, written with the whole set.
        planned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .ops
            .extend(ops);
        return Ok(0);
    }
    if ops.is_empty() {
        let loaded = call.request.handle.read().await;
        return Ok(loaded.revision);
    }
    let actor = {
        let loaded = call.request.handle.read().await;
        call.request.acting.actor(&loaded.org)
    };
    if actor.impersonator().is_some() && ops.iter().any(Operation::is_setup) {
        return Err(bad(
            "bad_actor",
            "administration is not done on behalf of another user",
        ));
    }
    let ops: Vec<Operation> = match actor.user() {
        None => ops,
        Some(name) => {
            let name = name.to_owned();
            ops.into_iter()
                .map(|op| strata_app::run_as(op, &name))
                .collect()
        }
    };
    let written = call
        .request
        .handle
        .write(Arc::clone(&call.state.store), ops, actor)
        .await?;
    call.state.metrics.wrote(written.changes.len());
    Ok(written.revision)
}

/// The operations that set a body's changes on an existing record (or user).
pub(crate) fn update_ops(
    o: &Organization,
    target: Target,
    body: entity::Body,
) -> Result<Vec<Operation>, WebError> {
    let mut ops = Vec::new();
    match target {
        Target::User(u) => {
            let user = o.user(u).name.clone();
            let mut fields = body.fields;
            if let Some(disabled) = fields.remove("isdisabled") {
                let disabled = disabled
                    .as_bool()
                    .ok_or_else(|| bad("bad_value", "`isdisabled` is true or false"))?;
                ops.push(Operation::SetUserEnabled {
                    user: user.clone(),
                    enabled: !disabled,
                });
            }
            for read_only in ["domainname"] {
                if fields.contains_key(read_only) {
                    return Err(bad(
                        "bad_value",
                        format!("`{read_only}` is the user's name and cannot be changed"),
                    ));
                }
            }
            if !fields.is_empty() {
                ops.push(Operation::SetUserFields {
                    user: user.clone(),
                    fields,
                });
            }
            if let Some(unit) = body.business_unit {
                ops.push(Operation::MoveUser {
                    actor: None,
                    user: user.clone(),
                    business_unit: unit,
                });
            }
            if let Some(manager) = body.manager {
                ops.push(Operation::SetManager {
                    actor: None,
                    user: user.clone(),
                    manager,
                });
            }
            if body.owner.is_some() || !body.lookups.is_empty() || body.state.is_some() {
                return Err(bad(
                    "bad_value",
                    "a user's owner, lookups and state are not set through the Web API",
                ));
            }
        }
        Target::Record(_) | Target::Pending(..) => {
            // A record, or one an earlier request of this change set creates (`PATCH $1`).
            let key = entity::record_of(o, target)
                .map(|(_, key)| key)
                .unwrap_or_default();
            let state = match target {
                Target::Record(r) => Some(o.record(r).state),
                _ => None,
            };
            if body.state.is_some_and(|s| Some(s) != state) {
                return Err(bad(
                    "odata_unsupported",
                    "changing `statecode` is not supported; the state is set when a record is created",
                ));
            }
            if body.business_unit.is_some() || body.manager.is_some() {
                return Err(bad(
                    "bad_value",
                    "businessunitid and parentsystemuserid are a user's",
                ));
            }
            if !body.fields.is_empty() {
                ops.push(Operation::Update {
                    actor: None,
                    record: key.clone(),
                    fields: body.fields,
                });
            }
            for (lookup, parent) in body.lookups {
                ops.push(match parent {
                    Some(parent) => Operation::Associate {
                        actor: None,
                        record: key.clone(),
                        lookup,
                        parent,
                    },
                    None => Operation::Disassociate {
                        actor: None,
                        record: key.clone(),
                        lookup,
                    },
                });
            }
            if let Some(owner) = body.owner {
                ops.push(Operation::Assign {
                    actor: None,
                    record: key,
                    owner,
                });
            }
        }
        _ => {
            return Err(bad(
                "odata_unsupported",
                "teams, business units, roles and templates are changed through the native API's operations",
            ));
        }
    }
    Ok(ops)
}

/// The operation that creates a record of `table` from a body, with its key.
pub(crate) fn create_op(
    o: &Organization,
    table: TableId,
    body: entity::Body,
    key: String,
) -> Result<Operation, WebError> {
    if o.table(table).built_in {
        return Err(bad(
            "odata_unsupported",
            format!(
                "{} records are created through the native API's operations (add_user, add_team…)",
                o.table(table).name
            ),
        ));
    }
    if body.business_unit.is_some() || body.manager.is_some() {
        return Err(bad(
            "bad_value",
            "businessunitid and parentsystemuserid are a user's",
        ));
    }
    let lookups: BTreeMap<String, String> = body
        .lookups
        .into_iter()
        .filter_map(|(l, p)| p.map(|p| (l, p)))
        .collect();
    Ok(Operation::Create {
        actor: None,
        table: o.table(table).name.clone(),
        id: key,
        owner: body.owner,
        business_unit: None,
        state: body.state.map(|s| match s {
            strata_engine::RecordState::Active => "active".to_owned(),
            strata_engine::RecordState::Inactive => "inactive".to_owned(),
        }),
        lookups,
        fields: body.fields,
    })
}

/// The last GUID this process made ([`new_guid`]): its millisecond and sequence, as
/// `ms << 12 | sequence`.
static LAST_GUID: AtomicU64 = AtomicU64::new(0);

/// A new record GUID, time-ordered (D156): each is after every other this process made, so
/// records created together are neighbours in every index on their keys.
fn new_guid() -> Result<Guid, WebError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // Never behind the clock, then one past the last GUID made: every caller gets its own
    // number, in the order they took it. More than 4,096 GUIDs in one millisecond (or a clock
    // set back) run on into the next milliseconds' numbers, still in order.
    LAST_GUID.fetch_max((now << 12).saturating_sub(1), Ordering::Relaxed);
    let made = LAST_GUID.fetch_add(1, Ordering::Relaxed) + 1;
    let mut bytes = [0u8; 8];
    crate::auth::random_fill(&mut bytes)?;
    Ok(Guid::time_ordered(
        made >> 12,
        (made & 0xfff) as u16,
        u64::from_be_bytes(bytes),
    ))
}

/// A new record's key: the GUID the client chose, or a new time-ordered one (D156).
pub(crate) fn new_key(id: Option<Guid>) -> Result<String, WebError> {
    let guid = match id {
        Some(g) => {
            if g.is_derived_form() {
                return Err(bad(
                    "bad_value",
                    "a new record's id may not be of the form Strata derives (53545241-…)",
                ));
            }
            g
        }
        None => new_guid()?,
    };
    Ok(guid.to_string())
}

/// The answer to a create planned inside a change set: 204 and the new entity's id (the
/// record exists only once the set is written).
fn planned_answer(call: &Call<'_>, set_name: &str, key: &str) -> WebResult {
    let guid =
        Guid::parse_canonical(key).ok_or_else(|| bad("internal", "a planned key is not a GUID"))?;
    let mut response = no_content();
    if let Ok(v) = HeaderValue::from_str(&entity_id(&call.base, set_name, guid)) {
        response.headers_mut().insert("odata-entityid", v.clone());
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

fn entity_id(base: &str, set: &str, guid: Guid) -> String {
    format!("{base}{set}({guid})")
}

/// The answer to a create or an update: 204 with `OData-EntityId`, or the entity itself when
/// `Prefer: return=representation` asks (read back as the caller).
async fn written_answer(
    call: &Call<'_>,
    set_name: &str,
    table: TableId,
    target: Target,
    created: bool,
) -> WebResult {
    let loaded = call.request.handle.read().await;
    let o = &loaded.org;
    let guid = match target {
        Target::Record(r) => o.record_guid(r),
        Target::User(u) => o.user_guid(u),
        Target::Pending(_, g) => g,
        _ => return Ok(no_content()),
    };
    let id = entity_id(&call.base, set_name, guid);
    // Inside a change set nothing is written yet: the representation would be the state
    // before the set, so the answer is 204 with the entity's id (as for a create).
    let mut response = if call.prefers("return=representation") && call.planned.is_none() {
        let readers = readers(call, o)?;
        let select = select(call, o, table)?;
        let mut item = entity_as_seen(o, target, readers, select.as_deref(), annotations(call))
            .unwrap_or_default();
        item.insert(
            "@odata.context".into(),
            Json::String(format!(
                "{}/$entity",
                context(&call.base, set_name, select.as_deref())
            )),
        );
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut r = json_response(status, &Json::Object(item));
        r.headers_mut().insert(
            "preference-applied",
            HeaderValue::from_static("return=representation"),
        );
        r
    } else {
        no_content()
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("odata-entityid", v.clone());
        if created {
            response.headers_mut().insert(header::LOCATION, v);
        }
    }
    Ok(response)
}

fn body_json(call: &Call<'_>) -> Result<Json, WebError> {
    Ok(crate::json::strict_value(&call.headers, &call.body)?)
}

async fn create(call: &Call<'_>, set_name: &str, set: Set, table: TableId) -> WebResult {
    let Set::Records(_) = set else {
        return Err(bad(
            "odata_unsupported",
            format!("{set_name} are created through the native API's operations"),
        ));
    };
    let value = body_json(call)?;
    let (ops, places, key) = {
        let loaded = call.request.handle.read().await;
        let mut deep = DeepInsert {
            o: &loaded.org,
            ops: Vec::new(),
            places: Vec::new(),
            keys: std::collections::HashSet::new(),
        };
        let key = deep.create(table, &value, None, "", 0)?;
        (deep.ops, deep.places, key)
    };
    if let Err(WebError(e)) = write(call, ops).await {
        // A refused operation is named by its record's place in the body (the created record
        // itself: no place).
        let place = e
            .field
            .as_deref()
            .and_then(|f| f.strip_prefix('/')?.parse::<usize>().ok())
            .and_then(|i| places.get(i));
        return Err(WebError(match place {
            Some(place) if place.is_empty() => {
                crate::error::ApiError::new(e.code, e.message.clone())
            }
            Some(place) => crate::error::ApiError::new(e.code, e.message.clone()).at(place.clone()),
            None => e,
        }));
    }
    if call.planned.is_some() {
        return planned_answer(call, set_name, &key);
    }
    let target = {
        let loaded = call.request.handle.read().await;
        loaded
            .org
            .record_id(&key)
            .map(Target::Record)
            .ok_or_else(|| bad("internal", "the created record is not there"))?
    };
    written_answer(call, set_name, table, target, true).await
}

/// Most levels of related records in one create (deep insert, D146).
const DEEP_INSERT_LEVELS: usize = 10;
/// Most records one create makes, itself and the related ones (as `CreateMultiple`'s targets).
const DEEP_INSERT_RECORDS: usize = 1_000;

/// A create and the related records in its body (deep insert, D146): their operations in
/// order — each record after the parents its lookups refer to, before its children.
struct DeepInsert<'a> {
    o: &'a Organization,
    ops: Vec<Operation>,
    /// Each operation's record's place in the body (a JSON pointer; empty for the created one).
    places: Vec<String>,
    /// The keys of the records planned so far.
    keys: std::collections::HashSet<String>,
}

impl DeepInsert<'_> {
    /// Plans the record `value` of `table` and the records it holds; `parent`: a lookup that
    /// refers to the record holding this one (a child of a collection); `at`: where in the
    /// body (a JSON pointer, for errors). Returns the new record's key.
    fn create(
        &mut self,
        table: TableId,
        value: &Json,
        parent: Option<(&str, &str)>,
        at: &str,
        level: usize,
    ) -> Result<String, WebError> {
        let o = self.o;
        let located = |e: WebError| {
            if at.is_empty() {
                e
            } else {
                WebError(e.0.at(at.to_owned()))
            }
        };
        if level > DEEP_INSERT_LEVELS {
            return Err(located(bad(
                "odata_limit",
                format!("a create holds related records at most {DEEP_INSERT_LEVELS} levels deep"),
            )));
        }
        if self.keys.len() >= DEEP_INSERT_RECORDS {
            return Err(located(bad(
                "odata_limit",
                format!(
                    "a create makes at most {DEEP_INSERT_RECORDS} records, itself and the related ones"
                ),
            )));
        }
        let mut body = entity::read_body(o, table, value).map_err(located)?;
        let key = new_key(body.id)?;
        if o.record_id(&key).is_some() || !self.keys.insert(key.clone()) {
            return Err(located(bad(
                "duplicate",
                format!("A record with the id {key} already exists"),
            )));
        }
        let nested = std::mem::take(&mut body.nested);
        let mut children = Vec::new();
        let set_lookup = |body: &mut entity::Body, lookup: &str, parent_key: String| {
            if body.lookups.contains_key(lookup) {
                return Err(located(bad(
                    "bad_value",
                    format!("`{lookup}` is given twice: bound and as a related record"),
                )));
            }
            body.lookups.insert(lookup.to_owned(), Some(parent_key));
            Ok(())
        };
        if let Some((lookup, parent_key)) = parent {
            set_lookup(&mut body, lookup, parent_key.to_owned())?;
        }
        for n in nested {
            match n {
                entity::Nested::Parent {
                    property,
                    lookup,
                    table: parent_table,
                } => {
                    let parent_key = self.create(
                        parent_table,
                        &value[property.as_str()],
                        None,
                        &format!("{at}/{property}"),
                        level + 1,
                    )?;
                    set_lookup(&mut body, &lookup, parent_key)?;
                }
                later @ entity::Nested::Children { .. } => children.push(later),
            }
        }
        self.ops
            .push(create_op(o, table, body, key.clone()).map_err(located)?);
        self.places.push(at.to_owned());
        for n in children {
            let entity::Nested::Children {
                property,
                lookup,
                table: child_table,
            } = n
            else {
                continue;
            };
            let bodies = value[property.as_str()]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            for (i, child) in bodies.iter().enumerate() {
                self.create(
                    child_table,
                    child,
                    Some((&lookup, &key)),
                    &format!("{at}/{property}/{i}"),
                    level + 1,
                )?;
            }
        }
        Ok(key)
    }
}

fn header_text<'a>(call: &'a Call<'_>, name: &str) -> Option<&'a str> {
    call.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

async fn patch(call: &Call<'_>, set_name: &str, set: Set, table: TableId, key: &Args) -> WebResult {
    let value = body_json(call)?;
    let if_match = header_text(call, "if-match").map(str::to_owned);
    let if_none_match = header_text(call, "if-none-match").map(str::to_owned);
    let (ops, target, created_key) = {
        let loaded = call.request.handle.read().await;
        let o = &loaded.org;
        let readers = readers(call, o).ok();
        let body = entity::read_body(o, table, &value)?.flat()?;
        let found = match resolve_key(o, set, table, key, readers.map(|r| r.0)) {
            Ok(t) => Some(t),
            Err(WebError(e)) if e.code == "not_found" => None,
            Err(e) => return Err(e),
        };
        match found {
            Some(target) => {
                if if_none_match.as_deref() == Some("*") {
                    return Err(bad(
                        "precondition_failed",
                        "the record exists and If-None-Match: * asks for a create only",
                    ));
                }
                if let (Some(tag), Target::Record(r)) = (&if_match, target)
                    && tag != "*"
                    && *tag != entity::etag(o, r)
                {
                    return Err(bad(
                        "precondition_failed",
                        "The version of the existing record doesn't match the RowVersion property provided.",
                    ));
                }
                (update_ops(o, target, body)?, Some(target), None)
            }
            None => {
                if if_match.is_some() {
                    return Err(not_found(
                        o,
                        table,
                        &match key {
                            Args::Id(g) => g.to_string(),
                            Args::Named(parts) => key_text(parts),
                            Args::Empty => String::new(),
                        },
                    ));
                }
                let Set::Records(_) = set else {
                    return Err(not_found(o, table, "the key"));
                };
                let (key_text, body) = match key {
                    Args::Id(g) => {
                        if body.id.is_some_and(|b| b != *g) {
                            return Err(bad("bad_value", "the body's id differs from the URL's"));
                        }
                        (new_key(Some(*g))?, body)
                    }
                    Args::Named(parts) => {
                        let mut body = body;
                        for (column, arg) in parts {
                            if let Arg::Value(v) = arg {
                                body.fields.insert(column.clone(), strata_ops::to_json(v));
                            }
                        }
                        (new_key(body.id)?, body)
                    }
                    Args::Empty => return Err(bad("odata_syntax", "an empty key `()`")),
                };
                (
                    vec![create_op(o, table, body, key_text.clone())?],
                    None,
                    Some(key_text),
                )
            }
        }
    };
    write(call, ops).await?;
    match (target, created_key) {
        (Some(target), _) => written_answer(call, set_name, table, target, false).await,
        (None, Some(key)) if call.planned.is_some() => planned_answer(call, set_name, &key),
        (None, Some(key)) => {
            let target = {
                let loaded = call.request.handle.read().await;
                loaded
                    .org
                    .record_id(&key)
                    .map(Target::Record)
                    .ok_or_else(|| bad("internal", "the created record is not there"))?
            };
            written_answer(call, set_name, table, target, true).await
        }
        (None, None) => Ok(no_content()),
    }
}

async fn delete(call: &Call<'_>, set: Set, table: TableId, key: &Args) -> WebResult {
    let if_match = header_text(call, "if-match").map(str::to_owned);
    let op = {
        let loaded = call.request.handle.read().await;
        let o = &loaded.org;
        let readers = readers(call, o).ok();
        match resolve_key(o, set, table, key, readers.map(|r| r.0))? {
            Target::Record(r) => {
                if let Some(tag) = &if_match
                    && tag != "*"
                    && *tag != entity::etag(o, r)
                {
                    return Err(bad(
                        "precondition_failed",
                        "The version of the existing record doesn't match the RowVersion property provided.",
                    ));
                }
                Operation::Delete {
                    actor: None,
                    record: o.record(r).key.to_string(),
                }
            }
            // A record an earlier request of this change set creates (`DELETE $1`).
            Target::Pending(_, g) => Operation::Delete {
                actor: None,
                record: g.to_string(),
            },
            _ => {
                return Err(bad(
                    "odata_unsupported",
                    "users, teams, business units and roles are not deleted through the Web API",
                ));
            }
        }
    };
    write(call, vec![op]).await?;
    Ok(no_content())
}

/// `$ref`: associate (POST a collection, PUT a single-valued navigation property) and
/// disassociate (DELETE), mapped to team membership, role assignment and lookups.
async fn reference(
    call: &Call<'_>,
    set: Set,
    table: TableId,
    key: &Args,
    nav: &str,
    related: Option<Guid>,
    method: &Method,
) -> WebResult {
    let body_ref = if matches!(*method, Method::POST | Method::PUT) {
        let value = body_json(call)?;
        let text = value
            .get("@odata.id")
            .and_then(Json::as_str)
            .ok_or_else(|| {
                bad(
                    "invalid_body",
                    "the body is {\"@odata.id\": \"<entity URL>\"}",
                )
            })?
            .to_owned();
        Some(text)
    } else {
        call.param("$id").map(str::to_owned)
    };
    let op = {
        let loaded = call.request.handle.read().await;
        let o = &loaded.org;
        let readers = readers(call, o).ok();
        let this = resolve_key(o, set, table, key, readers.map(|r| r.0))?;
        let other = match (&body_ref, related) {
            (Some(text), _) => Some(entity::reference(o, text)?),
            (None, Some(g)) => Some(related_by_guid(o, nav, g)?),
            (None, None) => None,
        };
        reference_op(o, this, nav, other, method)?
    };
    write(call, vec![op]).await?;
    Ok(no_content())
}

/// The entity a `nav(<guid>)` segment names, by the relationship's other side.
fn related_by_guid(o: &Organization, nav: &str, g: Guid) -> Result<Target, WebError> {
    let found = match nav {
        "teammembership_association" => o
            .user_by_guid(g)
            .map(Target::User)
            .or_else(|| o.team_by_guid(g).map(Target::Team)),
        "systemuserroles_association" | "teamroles_association" => o
            .role_by_guid(g)
            .map(Target::Role)
            .or_else(|| o.user_by_guid(g).map(Target::User))
            .or_else(|| o.team_by_guid(g).map(Target::Team)),
        _ => o.record_by_guid(g).map(Target::Record),
    };
    found.ok_or_else(|| WebError(ApiError::new("not_found", format!("no entity with id {g}"))))
}

fn reference_op(
    o: &Organization,
    this: Target,
    nav: &str,
    other: Option<Target>,
    method: &Method,
) -> Result<Operation, WebError> {
    let adding = *method != Method::DELETE;
    let need = |t: Option<Target>| {
        t.ok_or_else(|| {
            bad(
                "invalid_body",
                "name the related entity (`$id`, or `nav(<id>)/$ref`)",
            )
        })
    };
    let member = |a: Target, b: Target| -> Result<(String, String), WebError> {
        match (a, b) {
            (Target::Team(t), Target::User(u)) | (Target::User(u), Target::Team(t)) => {
                Ok((o.team(t).name.clone(), o.user(u).name.clone()))
            }
            _ => Err(bad(
                "bad_reference",
                "teammembership_association relates a team and a systemuser",
            )),
        }
    };
    let role = |a: Target, b: Target| -> Result<(String, String), WebError> {
        match (a, b) {
            (Target::Role(r), p) | (p, Target::Role(r)) => {
                Ok((entity::principal_name(o, p)?, o.role(r).name.clone()))
            }
            _ => Err(bad(
                "bad_reference",
                "a role association relates a role and a principal",
            )),
        }
    };
    Ok(match nav {
        "teammembership_association" => {
            let (team, user) = member(this, need(other)?)?;
            if adding {
                Operation::AddTeamMember {
                    actor: None,
                    team,
                    user,
                }
            } else {
                Operation::RemoveTeamMember {
                    actor: None,
                    team,
                    user,
                }
            }
        }
        "systemuserroles_association" | "teamroles_association" => {
            let (principal, role) = role(this, need(other)?)?;
            let is_team = principal.starts_with("team:");
            if is_team != (nav == "teamroles_association") {
                return Err(bad(
                    "bad_reference",
                    format!(
                        "{nav} relates a role and a {}",
                        if nav == "teamroles_association" {
                            "team"
                        } else {
                            "systemuser"
                        }
                    ),
                ));
            }
            if adding {
                Operation::AssignRole {
                    actor: None,
                    principal,
                    role,
                    business_unit: None,
                }
            } else {
                Operation::RemoveRole {
                    actor: None,
                    principal,
                    role,
                }
            }
        }
        "businessunitid" | "parentsystemuserid" => {
            let Target::User(u) = this else {
                return Err(bad(
                    "odata_unknown",
                    format!("no navigation property `{nav}` here"),
                ));
            };
            let user = o.user(u).name.clone();
            match (nav, other, adding) {
                ("businessunitid", Some(Target::Unit(unit)), true) => Operation::MoveUser {
                    actor: None,
                    user,
                    business_unit: o.units().name(unit).to_owned(),
                },
                ("parentsystemuserid", Some(Target::User(m)), true) => Operation::SetManager {
                    actor: None,
                    user,
                    manager: Some(o.user(m).name.clone()),
                },
                ("parentsystemuserid", _, false) => Operation::SetManager {
                    actor: None,
                    user,
                    manager: None,
                },
                _ => {
                    return Err(bad(
                        "bad_reference",
                        format!(
                            "`{nav}` takes a {}",
                            if nav == "businessunitid" {
                                "business unit"
                            } else {
                                "systemuser"
                            }
                        ),
                    ));
                }
            }
        }
        lookup => {
            // A single-valued lookup of this record, or a one-to-many relationship by its name
            // (the child is the related record).
            // Either side may be a record an earlier request of this change set creates
            // (`PUT $1/<lookup>/$ref` with `{"@odata.id": "$2"}`).
            let Some((table, key)) = entity::record_of(o, this) else {
                return Err(bad(
                    "odata_unknown",
                    format!("no navigation property `{lookup}` here"),
                ));
            };
            if o.relationship_by_lookup(table, lookup).is_some() {
                if adding {
                    let parent = match need(other)? {
                        Target::User(u) => o.record(o.user(u).record).key.to_string(),
                        target => entity::record_of(o, target)
                            .map(|(_, key)| key)
                            .ok_or_else(|| {
                                bad("bad_reference", format!("`{lookup}` refers to a record"))
                            })?,
                    };
                    Operation::Associate {
                        actor: None,
                        record: key,
                        lookup: lookup.to_owned(),
                        parent,
                    }
                } else {
                    Operation::Disassociate {
                        actor: None,
                        record: key,
                        lookup: lookup.to_owned(),
                    }
                }
            } else if let Some(rel) = o
                .relationship_ids()
                .find(|x| o.relationship(*x).name == lookup && o.relationship(*x).parent == table)
            {
                let record = entity::record_of(o, need(other)?)
                    .filter(|(child, _)| *child == o.relationship(rel).child)
                    .map(|(_, key)| key)
                    .ok_or_else(|| {
                        bad(
                            "bad_reference",
                            format!(
                                "`{lookup}` relates `{}` records",
                                o.table(o.relationship(rel).child).name
                            ),
                        )
                    })?;
                let lookup = o.relationship(rel).lookup.clone();
                if adding {
                    Operation::Associate {
                        actor: None,
                        record,
                        lookup,
                        parent: key,
                    }
                } else {
                    Operation::Disassociate {
                        actor: None,
                        record,
                        lookup,
                    }
                }
            } else {
                return Err(unknown_property(o, table, lookup));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// D156: the keys the server makes sort in the order they were made, even thousands in one
    /// millisecond and from several threads, and are version 7 GUIDs that parse back.
    #[test]
    fn new_keys_are_time_ordered_version_7_guids() -> Result<(), String> {
        let made = || {
            (0..5_000)
                .map(|_| new_key(None).map_err(|e| format!("{e:?}")))
                .collect::<Result<Vec<_>, _>>()
        };
        let keys = made()?;
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys out of order");
        for key in &keys {
            let guid = Guid::parse_canonical(key).ok_or(format!("{key}: not a GUID"))?;
            assert_eq!(&key[14..15], "7", "{key}");
            assert!(!guid.is_derived_form());
        }
        // Made on several threads at once: every key is new, and each thread's are in order.
        let threads: Vec<_> = (0..4).map(|_| std::thread::spawn(made)).collect();
        let mut all = std::collections::BTreeSet::from_iter(keys);
        for thread in threads {
            let made = thread.join().map_err(|_| "a thread panicked")??;
            assert!(made.windows(2).all(|w| w[0] < w[1]));
            all.extend(made);
        }
        assert_eq!(all.len(), 25_000);
        // The client's own GUID is kept as it is.
        let theirs = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        let guid = Guid::parse_canonical(theirs).ok_or("not a GUID")?;
        assert_eq!(new_key(Some(guid)).map_err(|e| format!("{e:?}"))?, theirs);
        Ok(())
    }
}
