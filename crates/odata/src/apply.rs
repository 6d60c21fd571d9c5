//! Aggregation (D163): OData's `$apply` and FetchXML's `aggregate="true"`, read into one
//! [`Aggregation`] that the server answers over the records the readers may read.
//!
//! `$apply` takes what Dataverse documents:
//!
//! ```text
//! $apply=filter(statecode eq 0)/groupby((statuscode,_ownerid_value),aggregate($count as count,revenue with sum as total))
//! $apply=aggregate(revenue with average as average,revenue with countdistinct as kinds)
//! $apply=groupby((address1_city))
//! ```
//!
//! `filter(…)` transformations (a `$filter` each, all of them holding) first, then at most one
//! `groupby((columns)[,aggregate(…)])` or `aggregate(…)`; an aggregate is `$count as alias` or
//! `column with sum|average|min|max|countdistinct as alias`. Refused as not supported, by name:
//! other transformations (`compute`, `topcount`, `expand`, …), grouping by a related table's
//! column (`primarycontactid/fullname`), and anything after the grouping.

use strata_engine::Filter;

use crate::{Aliases, MAX_FILTER_CHARS, MAX_FILTER_TERMS, ODataError, parse_filter};

/// The part name in errors.
const PART: &str = "$apply";

/// The most columns an aggregation groups by and aggregates, together.
pub const MAX_AGGREGATE_COLUMNS: usize = 32;

/// The most records one aggregation reads: Dataverse's `AggregateQueryRecordLimit`.
pub const MAX_AGGREGATE_RECORDS: usize = 50_000;

/// The longest alias.
const MAX_ALIAS_CHARS: usize = 64;

/// What an aggregate computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// The records (`$count`; FetchXML's `count`).
    Count,
    /// The records whose column holds a value (FetchXML's `countcolumn`).
    CountValues,
    /// The distinct values of the column (`countdistinct`; `countcolumn` with `distinct`).
    CountDistinct,
    /// The sum of the column's numbers.
    Sum,
    /// The mean of the column's numbers.
    Average,
    /// The least value.
    Min,
    /// The greatest value.
    Max,
}

/// One aggregate of the answer's rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measure {
    /// What it computes.
    pub function: Function,
    /// Its column as the Web API names it (`None` for [`Function::Count`]).
    pub column: Option<String>,
    /// Its name in each row.
    pub alias: String,
}

/// The part of a date a FetchXML `dategrouping` groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatePart {
    /// The day of the month (1–31).
    Day,
    /// The ISO 8601 week of the year (1–53).
    Week,
    /// The month (1–12).
    Month,
    /// The quarter (1–4).
    Quarter,
    /// The year.
    Year,
}

/// A column the rows are grouped by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The column as the Web API names it.
    pub column: String,
    /// Its name in each row (the column's own name in `$apply`).
    pub alias: String,
    /// Grouped by a part of the date it holds (FetchXML's `dategrouping`).
    pub date: Option<DatePart>,
}

/// An aggregation: one row per distinct combination of the groups' values (one row in all
/// without groups), each with its measures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aggregation {
    /// The columns grouped by.
    pub groups: Vec<Group>,
    /// The aggregates.
    pub measures: Vec<Measure>,
    /// The rows' order: an alias (a group's or a measure's) and whether descending; the groups'
    /// values ascending break ties.
    pub order: Vec<(String, bool)>,
}

impl Aggregation {
    /// Every alias of a row, groups first.
    #[must_use]
    pub fn aliases(&self) -> Vec<&str> {
        self.groups
            .iter()
            .map(|g| g.alias.as_str())
            .chain(self.measures.iter().map(|m| m.alias.as_str()))
            .collect()
    }

    /// Adds a group, checking its alias and the count of columns.
    pub(crate) fn push_group(
        &mut self,
        group: Group,
        part: &str,
        at: usize,
    ) -> Result<(), ODataError> {
        self.check_new(&group.alias, part, at)?;
        self.groups.push(group);
        Ok(())
    }

    /// Adds an aggregate, checking its alias and the count of columns.
    pub(crate) fn push_measure(
        &mut self,
        measure: Measure,
        part: &str,
        at: usize,
    ) -> Result<(), ODataError> {
        self.check_new(&measure.alias, part, at)?;
        self.measures.push(measure);
        Ok(())
    }

    fn check_new(&self, alias: &str, part: &str, at: usize) -> Result<(), ODataError> {
        if self.groups.len() + self.measures.len() == MAX_AGGREGATE_COLUMNS {
            return Err(ODataError::limit(
                part,
                at,
                format!("more than {MAX_AGGREGATE_COLUMNS} columns grouped by and aggregated"),
            ));
        }
        check_alias(alias, part, at)?;
        if self.aliases().contains(&alias) {
            return Err(ODataError::syntax(
                part,
                at,
                format!("two columns of the answer are named `{alias}`"),
            ));
        }
        Ok(())
    }
}

/// A name of the answer's rows: a plain name, as a column's.
fn check_alias(alias: &str, part: &str, at: usize) -> Result<(), ODataError> {
    let plain = alias.chars().count() <= MAX_ALIAS_CHARS
        && alias
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        Ok(())
    } else {
        Err(ODataError::syntax(
            part,
            at,
            format!(
                "`{alias}` is not a plain name (letters, digits and `_`, up to {MAX_ALIAS_CHARS})"
            ),
        ))
    }
}

/// A `$apply`: the records' filter and their aggregation.
#[derive(Clone, Debug, PartialEq)]
pub struct Apply {
    /// The `filter(…)` transformations, all holding.
    pub filter: Option<Filter>,
    /// The grouping and aggregates.
    pub aggregation: Aggregation,
}

/// Parses `$apply` (already percent-decoded).
pub fn parse_apply(text: &str, aliases: &Aliases) -> Result<Apply, ODataError> {
    let chars: Vec<char> = text.chars().collect();
    // A filter inside is bounded by its own limit; the whole by the filter's and the columns'.
    if chars.len() > MAX_FILTER_CHARS * 2 {
        return Err(ODataError::limit(
            PART,
            MAX_FILTER_CHARS * 2,
            format!("$apply is longer than {} characters", MAX_FILTER_CHARS * 2),
        ));
    }
    let mut filters = Vec::new();
    let mut aggregation = None;
    for (start, end) in split_top(&chars, 0, chars.len(), '/')? {
        let (name, inner) = call(&chars, start, end)?;
        if aggregation.is_some() {
            return Err(ODataError::UnsupportedOption {
                name: format!("a transformation after groupby or aggregate (`{name}`)"),
            });
        }
        match name.as_str() {
            "filter" => {
                let text: String = chars[inner.0..inner.1].iter().collect();
                filters.push(parse_filter(&text, aliases).map_err(|e| within(e, inner.0))?);
            }
            "aggregate" => {
                let mut a = Aggregation::default();
                measures(&chars, inner, &mut a)?;
                aggregation = Some(a);
            }
            "groupby" => aggregation = Some(groupby(&chars, inner)?),
            other => {
                return Err(ODataError::UnsupportedOption {
                    name: format!("the $apply transformation `{other}`"),
                });
            }
        }
    }
    let filter = match filters.len() {
        0 => None,
        1 => filters.pop(),
        _ => Some(Filter::And(filters)),
    };
    // Several `filter(…)`s are one filter: its comparisons are bounded as one `$filter`'s.
    if let Some(f) = &filter
        && f.terms() > MAX_FILTER_TERMS
    {
        return Err(ODataError::limit(
            PART,
            0,
            format!("the filters hold more than {MAX_FILTER_TERMS} comparisons"),
        ));
    }
    let aggregation = aggregation.ok_or_else(|| {
        ODataError::syntax(
            PART,
            chars.len(),
            "no groupby or aggregate: $apply here groups or aggregates the records",
        )
    })?;
    Ok(Apply {
        filter,
        aggregation,
    })
}

/// A filter's error, placed in the whole `$apply`.
fn within(e: ODataError, offset: usize) -> ODataError {
    match e {
        ODataError::Syntax {
            position, message, ..
        } => ODataError::syntax(PART, offset + position, message),
        ODataError::Limit {
            position, message, ..
        } => ODataError::limit(PART, offset + position, message),
        ODataError::UnknownFunction { position, name, .. } => ODataError::UnknownFunction {
            part: PART.to_owned(),
            position: offset + position,
            name,
        },
        other => other,
    }
}

/// `groupby((a,b)[,aggregate(…)])`'s inside.
fn groupby(chars: &[char], (start, end): (usize, usize)) -> Result<Aggregation, ODataError> {
    let parts = split_top(chars, start, end, ',')?;
    let mut a = Aggregation::default();
    let Some(&(first, first_end)) = parts.first() else {
        return Err(ODataError::syntax(PART, start, "groupby names no columns"));
    };
    let (open, close) = trimmed(chars, first, first_end);
    if chars.get(open) != Some(&'(') || close == open || chars.get(close - 1) != Some(&')') {
        return Err(ODataError::syntax(
            PART,
            open,
            "groupby's columns are in parentheses: groupby((column,…))",
        ));
    }
    for (s, e) in split_top(chars, open + 1, close - 1, ',')? {
        let (s, e) = trimmed(chars, s, e);
        let column = name(chars, s, e, "a column")?;
        a.push_group(
            Group {
                alias: column.clone(),
                column,
                date: None,
            },
            PART,
            s,
        )?;
    }
    match parts.get(1..).unwrap_or_default() {
        [] => {}
        [(s, e)] => {
            let (name, inner) = call(chars, *s, *e)?;
            if name != "aggregate" {
                return Err(ODataError::UnsupportedOption {
                    name: format!("the groupby transformation `{name}`"),
                });
            }
            measures(chars, inner, &mut a)?;
        }
        [_, (s, _), ..] => {
            return Err(ODataError::syntax(
                PART,
                *s,
                "groupby takes its columns and one aggregate(…)",
            ));
        }
    }
    Ok(a)
}

/// `aggregate(…)`'s inside: `$count as alias` or `column with method as alias`, by commas.
fn measures(
    chars: &[char],
    (start, end): (usize, usize),
    a: &mut Aggregation,
) -> Result<(), ODataError> {
    for (s, e) in split_top(chars, start, end, ',')? {
        let text: String = chars[s..e].iter().collect();
        let words: Vec<&str> = text.split_whitespace().collect();
        let at = s + text.len() - text.trim_start().len();
        let (function, column, alias) = match words.as_slice() {
            ["$count", "as", alias] => (Function::Count, None, *alias),
            [column, "with", method, "as", alias] => {
                let function = match *method {
                    "sum" => Function::Sum,
                    "average" => Function::Average,
                    "min" => Function::Min,
                    "max" => Function::Max,
                    "countdistinct" => Function::CountDistinct,
                    other => {
                        return Err(ODataError::syntax(
                            PART,
                            at,
                            format!(
                                "`{other}` is not an aggregation method: sum, average, min, max or countdistinct"
                            ),
                        ));
                    }
                };
                let chars_of: Vec<char> = column.chars().collect();
                (
                    function,
                    Some(
                        name(&chars_of, 0, chars_of.len(), "a column")
                            .map_err(|e| within(e, at))?,
                    ),
                    *alias,
                )
            }
            _ => {
                return Err(ODataError::syntax(
                    PART,
                    at,
                    "an aggregate is `$count as alias` or `column with sum|average|min|max|countdistinct as alias`",
                ));
            }
        };
        a.push_measure(
            Measure {
                function,
                column,
                alias: alias.to_owned(),
            },
            PART,
            at,
        )?;
    }
    Ok(())
}

/// A column's name: a plain name; a path through a related table is not answered.
fn name(chars: &[char], start: usize, end: usize, what: &str) -> Result<String, ODataError> {
    let text: String = chars[start..end].iter().collect();
    if text.contains('/') {
        return Err(ODataError::UnsupportedOption {
            name: format!("grouping or aggregating a related table's column (`{text}`)"),
        });
    }
    check_alias(&text, PART, start).map_err(|_| {
        ODataError::syntax(
            PART,
            start,
            format!("expected {what}'s name, found `{text}`"),
        )
    })?;
    Ok(text)
}

/// `name(inside)` between `start` and `end`: the name and where its inside is.
fn call(chars: &[char], start: usize, end: usize) -> Result<(String, (usize, usize)), ODataError> {
    let (start, end) = trimmed(chars, start, end);
    let open = (start..end).find(|&i| chars[i] == '(');
    match open {
        Some(open) if chars.get(end.wrapping_sub(1)) == Some(&')') && end > open + 1 => {
            let name: String = chars[start..open].iter().collect();
            Ok((name.trim().to_owned(), (open + 1, end - 1)))
        }
        _ => {
            let text: String = chars[start..end].iter().collect();
            Err(ODataError::syntax(
                PART,
                start,
                format!("expected a transformation such as groupby((…)), found `{text}`"),
            ))
        }
    }
}

/// Trims spaces at both ends of a span.
fn trimmed(chars: &[char], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && chars[start].is_whitespace() {
        start += 1;
    }
    while end > start && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    (start, end)
}

/// Splits a span at `sep` outside parentheses and quoted text; unbalanced parentheses or an
/// open quote are errors.
fn split_top(
    chars: &[char],
    start: usize,
    end: usize,
    sep: char,
) -> Result<Vec<(usize, usize)>, ODataError> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut from = start;
    for (i, &c) in chars.iter().enumerate().take(end).skip(start) {
        match c {
            '\'' => quoted = !quoted,
            _ if quoted => {}
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| ODataError::syntax(PART, i, "a `)` closes no parenthesis"))?;
            }
            _ if c == sep && depth == 0 => {
                parts.push((from, i));
                from = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(ODataError::syntax(PART, end, "a quoted text is not closed"));
    }
    if depth > 0 {
        return Err(ODataError::syntax(PART, end, "a parenthesis is not closed"));
    }
    parts.push((from, end));
    if let Some(&(s, _)) = parts
        .iter()
        .find(|&&(s, e)| trimmed(chars, s, e).0 == trimmed(chars, s, e).1)
    {
        return Err(ODataError::syntax(
            PART,
            s,
            format!("nothing between `{sep}`s"),
        ));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_engine::{CompareOp, Value};

    fn apply(text: &str) -> Result<Apply, ODataError> {
        parse_apply(text, &Aliases::new())
    }

    fn measure(function: Function, column: Option<&str>, alias: &str) -> Measure {
        Measure {
            function,
            column: column.map(str::to_owned),
            alias: alias.to_owned(),
        }
    }

    #[test]
    fn groupings_and_aggregates_read() -> Result<(), ODataError> {
        let a = apply(
            "filter(statecode eq 0)/groupby((statuscode, _ownerid_value),aggregate($count as count,revenue with sum as total))",
        )?;
        assert_eq!(
            a.filter,
            Some(Filter::Compare {
                column: "statecode".into(),
                op: CompareOp::Eq,
                value: Value::Int(0),
            })
        );
        let groups: Vec<&str> = a
            .aggregation
            .groups
            .iter()
            .map(|g| g.column.as_str())
            .collect();
        assert_eq!(groups, ["statuscode", "_ownerid_value"]);
        assert_eq!(
            a.aggregation.measures,
            [
                measure(Function::Count, None, "count"),
                measure(Function::Sum, Some("revenue"), "total"),
            ]
        );
        let a = apply(
            "aggregate(revenue with average as mean, name with countdistinct as names, revenue with min as least, revenue with max as most)",
        )?;
        assert!(a.filter.is_none() && a.aggregation.groups.is_empty());
        let functions: Vec<Function> = a.aggregation.measures.iter().map(|m| m.function).collect();
        assert_eq!(
            functions,
            [
                Function::Average,
                Function::CountDistinct,
                Function::Min,
                Function::Max
            ]
        );
        let a =
            apply("filter(contains(name,'a/b(')) /filter(revenue gt 5)/groupby((address1_city))")?;
        assert!(matches!(a.filter, Some(Filter::And(ref parts)) if parts.len() == 2));
        assert!(a.aggregation.measures.is_empty());
        Ok(())
    }

    #[test]
    fn what_is_not_answered_is_refused_by_name() {
        for (text, named) in [
            ("compute(revenue mul 2 as double)", "compute"),
            (
                "groupby((primarycontactid/fullname))",
                "primarycontactid/fullname",
            ),
            (
                "groupby((statuscode))/filter(statuscode eq 1)",
                "after groupby",
            ),
            ("groupby((statuscode),topcount(2,revenue))", "topcount"),
        ] {
            let result = apply(text);
            assert!(
                matches!(&result, Err(ODataError::UnsupportedOption { name }) if name.contains(named)),
                "{text}: {result:?}"
            );
        }
    }

    #[test]
    fn malformed_applies_are_syntax_errors() {
        for text in [
            "",
            "filter(statecode eq 0)",
            "groupby(statuscode)",
            "groupby(())",
            "groupby((a),aggregate($count as n),aggregate($count as m))",
            "aggregate(revenue with median as m)",
            "aggregate(revenue with sum)",
            "aggregate($count as n, $count as n)",
            "groupby((a),aggregate($count as a))",
            "aggregate($count as n",
            "aggregate($count as n))",
            "filter(name eq 'open)",
            "aggregate($count as n)//",
            "groupby((a,,b))",
            "aggregate($count as na-me)",
            "filter(statecode eq)/aggregate($count as n)",
        ] {
            let result = apply(text);
            assert!(
                matches!(&result, Err(ODataError::Syntax { .. })),
                "{text}: {result:?}"
            );
        }
    }

    #[test]
    fn limits_are_errors() {
        let columns: Vec<String> = (0..=MAX_AGGREGATE_COLUMNS)
            .map(|i| format!("c{i}"))
            .collect();
        let text = format!("groupby(({}))", columns.join(","));
        assert_eq!(apply(&text).map_err(|e| e.code()), Err("odata_limit"));
        let long = format!(
            "filter(name eq '{}')/aggregate($count as n)",
            "x".repeat(MAX_FILTER_CHARS * 2)
        );
        assert_eq!(apply(&long).map_err(|e| e.code()), Err("odata_limit"));
        // Each filter within the limit, together past it.
        let half: Vec<String> = (0..MAX_FILTER_TERMS / 2 + 1)
            .map(|i| format!("a eq {i}"))
            .collect();
        let half = half.join(" or ");
        assert!(apply(&format!("filter({half})/aggregate($count as n)")).is_ok());
        let both = apply(&format!(
            "filter({half})/filter({half})/aggregate($count as n)"
        ));
        assert!(
            matches!(&both, Err(e @ ODataError::Limit { .. }) if e.to_string().contains("comparisons")),
            "{both:?}"
        );
        let alias = "a".repeat(MAX_ALIAS_CHARS + 1);
        assert_eq!(
            apply(&format!("aggregate($count as {alias})")).map_err(|e| e.code()),
            Err("odata_syntax")
        );
    }
}
