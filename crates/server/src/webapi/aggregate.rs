//! Aggregates (D163): `GET <set>?$apply=…` and FetchXML's `aggregate="true"`, answered over the
//! records the readers may read — the engine's list, as a `$filter` list reads them — with
//! each column as they see it (a secured column they may not read is null, so it groups as
//! null and is not counted, summed or compared). At most [`MAX_AGGREGATE_RECORDS`] records
//! (Dataverse's `AggregateQueryRecordLimit`), read in one list under the list's work budget.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{Map, Value as Json};
use strata_engine::{Filter, Organization, TableId, UserId};
use strata_odata::apply::{Aggregation, DatePart, Function, MAX_AGGREGATE_RECORDS};
use strata_odata::date::Date;

use super::entity::{self, Set};
use super::records::{
    check_select, odata_error, open_page, readable_at_most, readers, require_read, resolve_filter,
};
use super::{Call, WebError, WebResult, bad};

/// What one aggregate has gathered.
enum Acc {
    Count(u64),
    Values(u64),
    /// The values seen, by their fingerprints (a copy of each would multiply the memory a
    /// request holds by the aggregates over one column).
    Distinct(HashSet<u128>),
    Sum(Option<Number>),
    Average(f64, u64),
    Least(Option<Json>),
    Greatest(Option<Json>),
}

#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Acc {
    fn new(function: Function) -> Self {
        match function {
            Function::Count => Acc::Count(0),
            Function::CountValues => Acc::Values(0),
            Function::CountDistinct => Acc::Distinct(HashSet::new()),
            Function::Sum => Acc::Sum(None),
            Function::Average => Acc::Average(0.0, 0),
            Function::Min => Acc::Least(None),
            Function::Max => Acc::Greatest(None),
        }
    }

    /// Takes one record's value (`Null` when it has none or the readers may not see it).
    fn add(&mut self, value: &Json, wrong: impl Fn(&str) -> WebError) -> Result<(), WebError> {
        match self {
            Acc::Count(n) => *n += 1,
            _ if value.is_null() => {}
            Acc::Values(n) => *n += 1,
            Acc::Distinct(seen) => {
                seen.insert(fingerprint(value));
            }
            Acc::Sum(sum) => {
                let add = number(value).ok_or_else(|| wrong("sum takes numbers"))?;
                *sum = Some(match (*sum, add) {
                    (None, x) => x,
                    (Some(Number::Int(a)), Number::Int(b)) => Number::Int(a + b),
                    (Some(a), b) => Number::Float(float(a) + float(b)),
                });
            }
            Acc::Average(sum, n) => {
                let add = number(value).ok_or_else(|| wrong("average takes numbers"))?;
                *sum += float(add);
                *n += 1;
            }
            Acc::Least(best) => extreme(best, value, Ordering::Less, wrong)?,
            Acc::Greatest(best) => extreme(best, value, Ordering::Greater, wrong)?,
        }
        Ok(())
    }

    fn value(self) -> Json {
        match self {
            Acc::Count(n) | Acc::Values(n) => Json::from(n),
            Acc::Distinct(seen) => Json::from(seen.len()),
            Acc::Sum(None) | Acc::Least(None) | Acc::Greatest(None) | Acc::Average(_, 0) => {
                Json::Null
            }
            Acc::Sum(Some(Number::Int(n))) => match i64::try_from(n) {
                Ok(n) => Json::from(n),
                Err(_) => Json::from(n as f64),
            },
            Acc::Sum(Some(Number::Float(x))) => Json::from(x),
            Acc::Average(sum, n) => Json::from(sum / n as f64),
            Acc::Least(Some(v)) | Acc::Greatest(Some(v)) => v,
        }
    }
}

/// Keeps the value if it sorts to `side` of the best so far (values of one kind).
fn extreme(
    best: &mut Option<Json>,
    value: &Json,
    side: Ordering,
    wrong: impl Fn(&str) -> WebError,
) -> Result<(), WebError> {
    match best.as_ref() {
        Some(b) if rank(b) != rank(value) => Err(wrong("min and max compare values of one kind")),
        Some(b) if compare(value, b) != side => Ok(()),
        None if !matches!(value, Json::Number(_) | Json::String(_) | Json::Bool(_)) => {
            Err(wrong("min and max compare numbers, text or booleans"))
        }
        _ => {
            *best = Some(value.clone());
            Ok(())
        }
    }
}

/// A value's 128-bit fingerprint (two keyed SipHash-1-3 of its JSON): among the at most
/// 50,000 values of an aggregate, two different values share one with a probability below
/// 10^-28.
fn fingerprint(value: &Json) -> u128 {
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static KEYS: (std::hash::RandomState, std::hash::RandomState) =
            (std::hash::RandomState::new(), std::hash::RandomState::new());
    }
    let text = value.to_string();
    KEYS.with(|(a, b)| {
        let half = |k: &std::hash::RandomState| {
            let mut h = k.build_hasher();
            h.write(text.as_bytes());
            h.finish()
        };
        (u128::from(half(a)) << 64) | u128::from(half(b))
    })
}

fn number(value: &Json) -> Option<Number> {
    let n = value.as_number()?;
    n.as_i64()
        .map(|i| Number::Int(i128::from(i)))
        .or_else(|| n.as_f64().map(Number::Float))
}

fn float(n: Number) -> f64 {
    match n {
        Number::Int(i) => i as f64,
        Number::Float(x) => x,
    }
}

/// Kinds in the order values sort: null, booleans, numbers, text, anything else.
fn rank(v: &Json) -> u8 {
    match v {
        Json::Null => 0,
        Json::Bool(_) => 1,
        Json::Number(_) => 2,
        Json::String(_) => 3,
        _ => 4,
    }
}

/// The rows' order of values: by kind, then numbers by value, text by its characters.
fn compare(a: &Json, b: &Json) -> Ordering {
    match (a, b) {
        (Json::Bool(x), Json::Bool(y)) => x.cmp(y),
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Json::String(x), Json::String(y)) => x.cmp(y),
        _ => rank(a)
            .cmp(&rank(b))
            .then_with(|| a.to_string().cmp(&b.to_string())),
    }
}

/// A date's part: the value is ISO 8601 text (`2026-12-04`, `2026-12-04T10:00:00Z`), read as
/// written (no time zone is applied).
fn date_part(value: &Json, part: DatePart) -> Option<Json> {
    let d = Date::parse(value.as_str()?)?;
    Some(Json::from(match part {
        DatePart::Year => d.year,
        DatePart::Quarter => i64::from((d.month - 1) / 3 + 1),
        DatePart::Month => i64::from(d.month),
        DatePart::Day => i64::from(d.day),
        DatePart::Week => i64::from(d.iso_week()),
    }))
}

/// The aggregation's rows over the records of `table` the readers may read that `filter`
/// matches, in its order, at most `top`. More than `record_limit` records is `aggregate_limit`.
pub(super) fn rows(
    o: &Organization,
    table: TableId,
    readers: (UserId, Option<UserId>),
    filter: Option<Filter>,
    a: &Aggregation,
    (record_limit, top): (usize, Option<usize>),
) -> Result<(Vec<Map<String, Json>>, usize), WebError> {
    let mut columns: Vec<String> = Vec::new();
    for c in a
        .groups
        .iter()
        .map(|g| &g.column)
        .chain(a.measures.iter().filter_map(|m| m.column.as_ref()))
    {
        if !columns.contains(c) {
            columns.push(c.clone());
        }
    }
    let columns = check_select(o, table, &columns)?;
    let records = readable_at_most(o, readers, table, filter, record_limit)?.ok_or_else(|| {
        bad(
            "aggregate_limit",
            format!(
                "AggregateQueryRecordLimit exceeded: an aggregate reads at most {record_limit} records and more match; narrow the filter"
            ),
        )
    })?;
    // The groups by their keys' fingerprints: each key is held once, in `groups`.
    let mut index: HashMap<u128, usize> = HashMap::new();
    let mut groups: Vec<(Vec<Json>, Vec<Acc>)> = Vec::new();
    for &r in &records {
        let values = entity::record_json(
            o,
            r,
            readers,
            Some(&columns),
            entity::Annotations::default(),
        );
        let wrong = |column: &str, value: &Json| {
            let value = value.clone();
            let column = column.to_owned();
            move |why: &str| {
                bad(
                    "bad_value",
                    format!(
                        "`{column}` of record {} holds {value}: {why}",
                        o.record_guid(r)
                    ),
                )
            }
        };
        let mut key = Vec::with_capacity(a.groups.len());
        for g in &a.groups {
            let value = values.get(&g.column).cloned().unwrap_or(Json::Null);
            key.push(match g.date {
                None => value,
                Some(_) if value.is_null() => value,
                Some(part) => date_part(&value, part).ok_or_else(|| {
                    wrong(&g.column, &value)("a date grouping takes dates (`2026-12-04…`)")
                })?,
            });
        }
        let at = *index
            .entry(fingerprint(&Json::Array(key.clone())))
            .or_insert_with(|| {
                groups.push((
                    key,
                    a.measures.iter().map(|m| Acc::new(m.function)).collect(),
                ));
                groups.len() - 1
            });
        for (m, acc) in a.measures.iter().zip(groups[at].1.iter_mut()) {
            // Several aggregates may read one column.
            let value = match &m.column {
                Some(c) => values.get(c).cloned().unwrap_or(Json::Null),
                None => Json::Null,
            };
            let column = m.column.as_deref().unwrap_or_default();
            acc.add(&value, wrong(column, &value))?;
        }
    }
    if a.groups.is_empty() && groups.is_empty() {
        groups.push((
            Vec::new(),
            a.measures.iter().map(|m| Acc::new(m.function)).collect(),
        ));
    }
    let mut rows: Vec<(Vec<Json>, Vec<Json>)> = groups
        .into_iter()
        .map(|(key, accs)| (key, accs.into_iter().map(Acc::value).collect()))
        .collect();
    let aliases = a.aliases();
    let by: Vec<(usize, bool)> = a
        .order
        .iter()
        .filter_map(|(alias, desc)| aliases.iter().position(|x| x == alias).map(|i| (i, *desc)))
        .collect();
    let at = |row: &(Vec<Json>, Vec<Json>), i: usize| -> Json {
        row.0
            .get(i)
            .or_else(|| row.1.get(i - row.0.len()))
            .cloned()
            .unwrap_or(Json::Null)
    };
    rows.sort_by(|x, y| {
        by.iter()
            .map(|&(i, desc)| {
                let o = compare(&at(x, i), &at(y, i));
                if desc { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| {
                x.0.iter()
                    .zip(&y.0)
                    .map(|(a, b)| compare(a, b))
                    .find(|o| o.is_ne())
                    .unwrap_or(Ordering::Equal)
            })
    });
    if let Some(top) = top {
        rows.truncate(top);
    }
    let rows = rows
        .into_iter()
        .map(|(key, values)| {
            let mut row = Map::new();
            for (alias, v) in aliases.iter().zip(key.into_iter().chain(values)) {
                row.insert((*alias).to_owned(), v);
            }
            row
        })
        .collect();
    Ok((rows, records.len()))
}

/// `GET <set>?$apply=…`: beside it `$orderby` (the rows' columns) and `$top` only.
pub(super) async fn apply_list(
    call: &Call<'_>,
    set_name: &str,
    set: Set,
    table: TableId,
) -> WebResult {
    for (name, _) in &call.query {
        if name.starts_with('$') && !matches!(name.as_str(), "$apply" | "$orderby" | "$top") {
            return Err(bad(
                "odata_unsupported",
                format!(
                    "`{name}` cannot be given with $apply: filter inside it (`filter(…)/groupby(…)`); order and limit the rows with $orderby and $top"
                ),
            ));
        }
    }
    if !matches!(set, Set::Records(_)) {
        return Err(bad(
            "odata_unsupported",
            format!("$apply is answered on record tables, not on `{set_name}`"),
        ));
    }
    let aliases = super::records::aliases(call)?;
    let apply = strata_odata::parse_apply(call.param("$apply").unwrap_or_default(), &aliases)
        .map_err(odata_error)?;
    let mut aggregation = apply.aggregation;
    if let Some(text) = call.param("$orderby") {
        let order = strata_ops::parse_order(text)
            .map_err(|e| bad("bad_order", format!("$orderby: {e}")))?;
        let names = aggregation.aliases();
        for x in &order {
            if !names.contains(&x.column.as_str()) {
                return Err(bad(
                    "bad_order",
                    format!(
                        "$orderby: `{}` is not a column of the aggregate's rows ({})",
                        x.column,
                        names.join(", ")
                    ),
                ));
            }
        }
        aggregation.order = order
            .into_iter()
            .map(|x| (x.column, x.descending))
            .collect();
    }
    let top = super::records::top(call)?;
    let readers = {
        let loaded = call.request.handle.read().await;
        readers(call, &loaded.org).and_then(|r| require_read(&loaded.org, r, table).map(|()| r))?
    };
    let handle = Arc::clone(&call.request.handle);
    let context = format!(
        "{}$metadata#{set_name}({})",
        call.base,
        aggregation.aliases().join(",")
    );
    let body = tokio::task::spawn_blocking(move || -> Result<(Vec<u8>, usize), WebError> {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        let filter = apply
            .filter
            .map(|f| resolve_filter(o, table, f))
            .transpose()?;
        let (rows, read) = rows(
            o,
            table,
            readers,
            filter,
            &aggregation,
            (MAX_AGGREGATE_RECORDS, top),
        )?;
        let mut head = Map::new();
        head.insert("@odata.context".into(), Json::String(context));
        // Each row as Dataverse writes an aggregate's: no entity behind it.
        let rows: Vec<Json> = rows
            .into_iter()
            .map(|row| {
                let mut out = Map::new();
                out.insert("@odata.id".into(), Json::Null);
                out.extend(row);
                Json::Object(out)
            })
            .collect();
        Ok((page(head, &rows)?, read))
    })
    .await
    .map_err(|e| bad("internal", format!("$apply task failed: {e}")))??;
    call.state.metrics.decided(body.1);
    Ok(super::json_bytes_response(StatusCode::OK, body.0))
}

/// A page of rows: the head's annotations, then `value`.
pub(super) fn page(head: Map<String, Json>, rows: &[Json]) -> Result<Vec<u8>, WebError> {
    let mut out = Vec::with_capacity(256 + rows.len() * 64);
    open_page(&mut out, head);
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, row)
            .map_err(|e| bad("internal", format!("writing a row: {e}")))?;
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_parts_are_read_from_iso_dates() {
        let d = |s: &str, p| date_part(&Json::from(s), p);
        assert_eq!(
            d("2026-12-04T10:00:00Z", DatePart::Year),
            Some(Json::from(2026))
        );
        assert_eq!(d("2026-12-04", DatePart::Quarter), Some(Json::from(4)));
        assert_eq!(d("2026-02-04", DatePart::Month), Some(Json::from(2)));
        assert_eq!(d("2026-02-04", DatePart::Day), Some(Json::from(4)));
        assert_eq!(d("2027-01-01", DatePart::Week), Some(Json::from(53)));
        assert_eq!(d("2026-02-30", DatePart::Day), None);
        assert_eq!(d("yesterday", DatePart::Day), None);
        assert_eq!(date_part(&Json::from(5), DatePart::Day), None);
    }

    #[test]
    fn aggregates_gather_as_dataverse_answers() {
        let wrong = |why: &str| bad("bad_value", why.to_owned());
        let mut sum = Acc::new(Function::Sum);
        for v in [Json::from(2), Json::Null, Json::from(3)] {
            assert!(sum.add(&v, wrong).is_ok());
        }
        assert_eq!(sum.value(), Json::from(5));
        let mut sum = Acc::new(Function::Sum);
        assert!(sum.add(&Json::from("x"), wrong).is_err());
        let mut mean = Acc::new(Function::Average);
        for v in [Json::from(1), Json::from(2.5)] {
            assert!(mean.add(&v, wrong).is_ok());
        }
        assert_eq!(mean.value(), Json::from(1.75));
        let mut least = Acc::new(Function::Min);
        let mut most = Acc::new(Function::Max);
        for v in ["b", "a", "c"] {
            assert!(least.add(&Json::from(v), wrong).is_ok());
            assert!(most.add(&Json::from(v), wrong).is_ok());
        }
        assert_eq!(
            (least.value(), most.value()),
            (Json::from("a"), Json::from("c"))
        );
        let mut mixed = Acc::new(Function::Max);
        assert!(mixed.add(&Json::from(1), wrong).is_ok());
        assert!(mixed.add(&Json::from("a"), wrong).is_err());
        let mut distinct = Acc::new(Function::CountDistinct);
        let mut values = Acc::new(Function::CountValues);
        let mut count = Acc::new(Function::Count);
        for v in [Json::from("a"), Json::Null, Json::from("a"), Json::from(1)] {
            for acc in [&mut distinct, &mut values, &mut count] {
                assert!(acc.add(&v, wrong).is_ok());
            }
        }
        assert_eq!(
            (distinct.value(), values.value(), count.value()),
            (Json::from(2), Json::from(3), Json::from(4))
        );
        for f in [
            Function::Sum,
            Function::Average,
            Function::Min,
            Function::Max,
        ] {
            assert_eq!(Acc::new(f).value(), Json::Null);
        }
    }
}
