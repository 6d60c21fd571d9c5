//! Query strings: the system query options (`$select`, `$filter`, `$orderby`, `$top`,
//! `$count`, `$expand`, `$skiptoken`, `$apply`) and parameter aliases (`@p1=…`).
//!
//! A query string arrives raw (`$select=name,accountid&$filter=name%20eq%20%27Contoso%27`) or
//! form-encoded (`%24select=name%2Caccountid&%24filter=name+eq+%27Contoso%27`); both are read
//! the same way: split on `&`, each name and value with `+` read as a space and then
//! percent-decoded (a literal `+` must therefore be sent as `%2B`). Option names match without
//! regard to case. An unknown `$` option is refused, so is an OData option this service does
//! not support (`$skip`, `$search`, …) and any option or alias given twice; other
//! parameters are ignored.

use std::collections::BTreeSet;

use percent_encoding::percent_decode_str;
use strata_engine::{Filter, Order};

use crate::filter::parse_filter;
use crate::lex::{ParamValue, is_plain_name};
use crate::{
    Aliases, MAX_EXPAND_DEPTH, MAX_EXPAND_ITEMS, MAX_ORDER_COLUMNS, MAX_QUERY_BYTES,
    MAX_SELECT_COLUMNS, MAX_TOP, ODataError,
};

/// The system query options of OData that this service refuses as unsupported (rather than
/// unknown).
const UNSUPPORTED: [&str; 10] = [
    "$skip",
    "$search",
    "$format",
    "$levels",
    "$compute",
    "$index",
    "$id",
    "$deltatoken",
    "$schemaversion",
    "$crossjoin",
];

/// The options of a request's query string.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueryOptions {
    /// `$select`: the columns to return, in the order given (`None`: every column).
    pub select: Option<Vec<String>>,
    /// `$filter`.
    pub filter: Option<Filter>,
    /// `$orderby` (empty when not given).
    pub order_by: Vec<Order>,
    /// `$top`: at most this many records (0 to [`MAX_TOP`]).
    pub top: Option<u32>,
    /// `$count=true`: include `@odata.count`.
    pub count: bool,
    /// `$expand`: related records to include.
    pub expand: Vec<Expand>,
    /// `$skiptoken`: where the previous page ended, as the server wrote it in
    /// `@odata.nextLink` (opaque here).
    pub skip_token: Option<String>,
    /// `$apply`: the records grouped and aggregated (D163).
    pub apply: Option<crate::Apply>,
    /// Parameter aliases (`@p1=…`), by name with the `@`.
    pub aliases: Aliases,
    /// Every parameter as decoded, in the order given (for writing `@odata.nextLink`).
    pub given: Vec<(String, String)>,
}

/// One `$expand` item: `primarycontactid($select=fullname;$filter=…;$orderby=…;$top=5)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expand {
    /// The navigation property, as given.
    pub property: String,
    /// Nested `$select`.
    pub select: Option<Vec<String>>,
    /// Nested `$filter` (collection-valued navigation properties).
    pub filter: Option<Filter>,
    /// The nested `$filter` as given, for a link to the rest of the related records.
    pub filter_text: Option<String>,
    /// Nested `$orderby`.
    pub order_by: Vec<Order>,
    /// Nested `$top`.
    pub top: Option<u32>,
    /// Nested `$expand` (at most [`MAX_EXPAND_DEPTH`] levels in all).
    pub expand: Vec<Expand>,
}

/// `+` as a space, then percent-decoding; `None` when the result is not UTF-8.
fn decode_component(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Parses a query string (the text after `?`; a leading `?` is allowed), raw or form-encoded.
pub fn parse_query(raw: &str) -> Result<QueryOptions, ODataError> {
    let raw = raw.strip_prefix('?').unwrap_or(raw);
    if raw.len() > MAX_QUERY_BYTES {
        let position = raw
            .char_indices()
            .take_while(|(b, _)| *b < MAX_QUERY_BYTES)
            .count();
        return Err(ODataError::limit(
            "query",
            position,
            format!("the query string is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let mut options = QueryOptions::default();
    let mut offset = 0;
    for piece in raw.split('&') {
        let at = offset;
        offset += piece.chars().count() + 1;
        if piece.is_empty() {
            continue;
        }
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        let decoded = decode_component(name).zip(decode_component(value));
        let Some((name, value)) = decoded else {
            return Err(ODataError::syntax(
                "query",
                at,
                "a parameter is not UTF-8 once percent-decoded",
            ));
        };
        options.given.push((name, value));
    }
    let mut seen = BTreeSet::new();
    for (name, value) in &options.given {
        if !(name.starts_with('@') || name.starts_with('$')) {
            continue;
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(ODataError::DuplicateOption { name: name.clone() });
        }
        if let Some(alias) = name.strip_prefix('@') {
            if !is_plain_name(alias) {
                return Err(ODataError::syntax(
                    name,
                    0,
                    format!("`{name}` is not a parameter alias name"),
                ));
            }
            let parsed = ParamValue::parse(value, name)?;
            options.aliases.insert(name.clone(), parsed);
        }
    }
    let given = std::mem::take(&mut options.given);
    for (name, value) in &given {
        if !name.starts_with('$') {
            continue;
        }
        match name.to_ascii_lowercase().as_str() {
            "$select" => options.select = Some(parse_select(value, "$select")?),
            "$filter" => options.filter = Some(parse_filter(value, &options.aliases)?),
            "$orderby" => options.order_by = parse_order_by(value, "$orderby")?,
            "$top" => options.top = Some(parse_top(value, "$top")?),
            "$count" => options.count = parse_count(value)?,
            "$apply" => options.apply = Some(crate::parse_apply(value, &options.aliases)?),
            "$expand" => options.expand = parse_expand_option(value, &options.aliases)?,
            "$skiptoken" => {
                if value.is_empty() {
                    return Err(ODataError::syntax("$skiptoken", 0, "the token is empty"));
                }
                options.skip_token = Some(value.clone());
            }
            lower if UNSUPPORTED.contains(&lower) => {
                return Err(ODataError::UnsupportedOption { name: name.clone() });
            }
            _ => return Err(ODataError::UnknownOption { name: name.clone() }),
        }
    }
    options.given = given;
    Ok(options)
}

/// Splits on `separator`: each item with its 0-based character position.
fn items(text: &str, separator: char) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for item in text.split(separator) {
        out.push((offset, item));
        offset += item.chars().count() + 1;
    }
    out
}

/// The leading whitespace of `text`, in characters.
fn leading_spaces(text: &str) -> usize {
    text.chars().take_while(|c| c.is_whitespace()).count()
}

/// `$select=name,accountid`.
fn parse_select(text: &str, part: &str) -> Result<Vec<String>, ODataError> {
    let mut columns = Vec::new();
    for (at, item) in items(text, ',') {
        let column = item.trim();
        let position = at + leading_spaces(item);
        if columns.len() == MAX_SELECT_COLUMNS {
            return Err(ODataError::limit(
                part,
                position,
                format!("`$select` takes at most {MAX_SELECT_COLUMNS} columns"),
            ));
        }
        if !is_plain_name(column) {
            return Err(ODataError::syntax(
                part,
                position,
                if column.is_empty() {
                    "expected a column name".to_owned()
                } else {
                    format!("`{column}` is not a column name")
                },
            ));
        }
        columns.push(column.to_owned());
    }
    Ok(columns)
}

/// `$orderby=name desc, createdon asc`.
fn parse_order_by(text: &str, part: &str) -> Result<Vec<Order>, ODataError> {
    let mut orders = Vec::new();
    for (at, item) in items(text, ',') {
        let position = at + leading_spaces(item);
        if orders.len() == MAX_ORDER_COLUMNS {
            return Err(ODataError::limit(
                part,
                position,
                format!("`$orderby` takes at most {MAX_ORDER_COLUMNS} columns"),
            ));
        }
        let words: Vec<&str> = item.split_whitespace().collect();
        let (column, descending) = match words.as_slice() {
            [column] => (*column, false),
            [column, dir] if dir.eq_ignore_ascii_case("asc") => (*column, false),
            [column, dir] if dir.eq_ignore_ascii_case("desc") => (*column, true),
            _ => {
                return Err(ODataError::syntax(
                    part,
                    position,
                    format!("`{}` is not `column [asc|desc]`", item.trim()),
                ));
            }
        };
        if !is_plain_name(column) {
            return Err(ODataError::syntax(
                part,
                position,
                format!("`{column}` is not a column name"),
            ));
        }
        orders.push(Order {
            column: column.to_owned(),
            descending,
        });
    }
    Ok(orders)
}

/// `$top=50`.
fn parse_top(text: &str, part: &str) -> Result<u32, ODataError> {
    let digits = text.trim();
    let position = leading_spaces(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ODataError::syntax(
            part,
            position,
            format!("`{digits}` is not a number of records (0 to {MAX_TOP})"),
        ));
    }
    match digits.parse::<u32>() {
        Ok(n) if n <= MAX_TOP => Ok(n),
        _ => Err(ODataError::limit(
            part,
            position,
            format!("`$top` is at most {MAX_TOP}"),
        )),
    }
}

/// `$count=true|false`.
fn parse_count(text: &str) -> Result<bool, ODataError> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("true") => Ok(true),
        t if t.eq_ignore_ascii_case("false") => Ok(false),
        t => Err(ODataError::syntax(
            "$count",
            0,
            format!("`{t}` is not `true` or `false`"),
        )),
    }
}

/// Splits `text` on `separator` outside parentheses and quotes: each item with its character
/// position. An unbalanced parenthesis or quote is an error.
fn split_outside(chars: &[char], separator: char) -> Result<Vec<(usize, usize)>, (usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut open_at = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\'' => {
                let close = chars[i + 1..].iter().position(|c| *c == '\'');
                match close {
                    Some(n) => i += n + 1,
                    None => return Err((i, "unterminated text literal")),
                }
            }
            '"' => {
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err((i, "unterminated text literal")),
                        Some('\\') => j += 2,
                        Some('"') => break,
                        Some(_) => j += 1,
                    }
                }
                i = j;
            }
            '(' => {
                depth += 1;
                open_at.push(i);
            }
            ')' => {
                if depth == 0 {
                    return Err((i, "`)` without `(`"));
                }
                depth -= 1;
                open_at.pop();
            }
            c if c == separator && depth == 0 => {
                out.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(at) = open_at.first() {
        return Err((*at, "`(` without `)`"));
    }
    out.push((start, chars.len()));
    Ok(out)
}

/// The value of a `$expand` option (already percent-decoded), with its parameter aliases: at
/// most [`MAX_EXPAND_ITEMS`] navigation properties in all, [`MAX_EXPAND_DEPTH`] levels.
///
/// # Errors
///
/// What [`parse_query`] answers for the same `$expand`.
pub fn parse_expand_option(text: &str, aliases: &Aliases) -> Result<Vec<Expand>, ODataError> {
    let mut budget = MAX_EXPAND_ITEMS;
    parse_expand(text, 1, &mut budget, aliases)
}

/// `$expand=nav($select=a,b;$filter=…),other`: `depth` is this list's level (1 at the top),
/// `budget` the items still allowed in the whole `$expand`. Positions are relative to `text`.
fn parse_expand(
    text: &str,
    depth: usize,
    budget: &mut usize,
    aliases: &Aliases,
) -> Result<Vec<Expand>, ODataError> {
    const PART: &str = "$expand";
    let chars: Vec<char> = text.chars().collect();
    let spans = split_outside(&chars, ',')
        .map_err(|(at, message)| ODataError::syntax(PART, at, message))?;
    let mut out = Vec::new();
    for (start, end) in spans {
        let item = &chars[start..end];
        let lead = item.iter().take_while(|c| c.is_whitespace()).count();
        let position = start + lead;
        if *budget == 0 {
            return Err(ODataError::limit(
                PART,
                position,
                format!("`$expand` takes at most {MAX_EXPAND_ITEMS} navigation properties"),
            ));
        }
        *budget -= 1;
        let name_len = item[lead..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
            .count();
        let property: String = item[lead..lead + name_len].iter().collect();
        if !is_plain_name(&property) {
            return Err(ODataError::syntax(
                PART,
                position,
                "expected a navigation property name",
            ));
        }
        let mut expand = Expand {
            property,
            ..Expand::default()
        };
        let rest = &item[lead + name_len..];
        let rest_at = position + name_len;
        let trimmed: String = rest.iter().collect::<String>().trim_end().to_owned();
        if !trimmed.is_empty() {
            let inner = trimmed
                .strip_prefix('(')
                .and_then(|t| t.strip_suffix(')'))
                .ok_or_else(|| {
                    ODataError::syntax(PART, rest_at, "expected `,` or `(` after the property")
                })?;
            expand_options(&mut expand, inner, rest_at + 1, depth, budget, aliases)?;
        }
        out.push(expand);
    }
    Ok(out)
}

/// The options inside `nav(…)`, separated by `;`; `offset` is the position of `inner` in the
/// whole `$expand` text.
fn expand_options(
    expand: &mut Expand,
    inner: &str,
    offset: usize,
    depth: usize,
    budget: &mut usize,
    aliases: &Aliases,
) -> Result<(), ODataError> {
    const PART: &str = "$expand";
    let chars: Vec<char> = inner.chars().collect();
    let spans = split_outside(&chars, ';')
        .map_err(|(at, message)| ODataError::syntax(PART, offset + at, message))?;
    let mut seen = BTreeSet::new();
    for (start, end) in spans {
        let option: String = chars[start..end].iter().collect();
        let at = offset + start + leading_spaces(&option);
        let Some((name, value)) = option.split_once('=') else {
            return Err(ODataError::syntax(
                PART,
                at,
                format!("expected `$option=value`, not `{}`", option.trim()),
            ));
        };
        let value_at = offset + start + name.chars().count() + 1;
        let name = name.trim();
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(ODataError::DuplicateOption {
                name: name.to_owned(),
            });
        }
        let shift = |e: ODataError| e.shifted(PART, value_at);
        match name.to_ascii_lowercase().as_str() {
            "$select" => expand.select = Some(parse_select(value, PART).map_err(shift)?),
            "$filter" => {
                expand.filter = Some(parse_filter(value, aliases).map_err(shift)?);
                expand.filter_text = Some(value.to_owned());
            }
            "$orderby" => expand.order_by = parse_order_by(value, PART).map_err(shift)?,
            "$top" => expand.top = Some(parse_top(value, PART).map_err(shift)?),
            "$expand" => {
                if depth >= MAX_EXPAND_DEPTH {
                    return Err(ODataError::limit(
                        PART,
                        at,
                        format!("`$expand` nests at most {MAX_EXPAND_DEPTH} levels"),
                    ));
                }
                expand.expand = parse_expand(value, depth + 1, budget, aliases).map_err(shift)?;
            }
            lower if UNSUPPORTED.contains(&lower) || lower == "$count" => {
                return Err(ODataError::UnsupportedOption {
                    name: name.to_owned(),
                });
            }
            _ => {
                return Err(ODataError::UnknownOption {
                    name: name.to_owned(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use strata_engine::{CompareOp, Value};

    use super::*;

    fn order(column: &str, descending: bool) -> Order {
        Order {
            column: column.into(),
            descending,
        }
    }

    #[test]
    fn raw_and_form_encoded_queries_read_the_same() -> Result<(), ODataError> {
        let raw = parse_query("$select=name,accountid&$filter=name%20eq%20%27Contoso%27")?;
        let form = parse_query("%24select=name%2Caccountid&%24filter=name+eq+%27Contoso%27")?;
        assert_eq!(raw.select, form.select);
        assert_eq!(raw.filter, form.filter);
        assert_eq!(
            raw.select,
            Some(vec!["name".to_owned(), "accountid".to_owned()])
        );
        assert_eq!(
            raw.filter,
            Some(Filter::Compare {
                column: "name".into(),
                op: CompareOp::Eq,
                value: Value::Text("Contoso".into())
            })
        );
        assert_eq!(
            form.given,
            vec![
                ("$select".to_owned(), "name,accountid".to_owned()),
                ("$filter".to_owned(), "name eq 'Contoso'".to_owned())
            ]
        );
        Ok(())
    }

    #[test]
    fn every_option() -> Result<(), ODataError> {
        let q = parse_query(
            "?$orderby=name desc, createdon asc,revenue&$top=0&$count=true&$skiptoken=abc%3D&@p1='x'&other=1&&",
        )?;
        assert_eq!(
            q.order_by,
            vec![
                order("name", true),
                order("createdon", false),
                order("revenue", false)
            ]
        );
        assert_eq!(q.top, Some(0));
        assert!(q.count);
        assert_eq!(q.skip_token.as_deref(), Some("abc="));
        assert_eq!(q.aliases.get("@p1"), Some(&ParamValue::Text("x".into())));
        assert_eq!(q.given.len(), 6);
        assert!(!parse_query("$count=false")?.count);
        assert!(parse_query("$COUNT=TRUE")?.count);
        assert_eq!(parse_query("$top=5000")?.top, Some(5000));
        assert_eq!(parse_query("")?, QueryOptions::default());
        assert_eq!(parse_query("?")?, QueryOptions::default());
        Ok(())
    }

    #[test]
    fn expand_with_nested_options() -> Result<(), ODataError> {
        let q = parse_query(
            "$expand=primarycontactid($select=fullname),contact_customer_accounts($select=fullname,emailaddress1;$filter=contains(fullname,'a;b)');$orderby=fullname desc;$top=5;$expand=owninguser($select=fullname))",
        )?;
        assert_eq!(q.expand.len(), 2);
        assert_eq!(
            q.expand[0],
            Expand {
                property: "primarycontactid".into(),
                select: Some(vec!["fullname".into()]),
                ..Expand::default()
            }
        );
        let second = &q.expand[1];
        assert_eq!(second.property, "contact_customer_accounts");
        assert_eq!(
            second.select,
            Some(vec!["fullname".into(), "emailaddress1".into()])
        );
        assert_eq!(
            second.filter,
            Some(Filter::Contains {
                column: "fullname".into(),
                text: "a;b)".into()
            })
        );
        assert_eq!(
            second.filter_text.as_deref(),
            Some("contains(fullname,'a;b)')")
        );
        assert_eq!(second.order_by, vec![order("fullname", true)]);
        assert_eq!(second.top, Some(5));
        assert_eq!(second.expand.len(), 1);
        assert_eq!(second.expand[0].property, "owninguser");
        assert_eq!(
            parse_query("$expand=a, b")?
                .expand
                .iter()
                .map(|e| e.property.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        Ok(())
    }

    fn error(query: &str) -> Option<(&'static str, String)> {
        parse_query(query).err().map(|e| (e.code(), e.to_string()))
    }

    #[test]
    fn unknown_unsupported_and_duplicate_options_are_refused() {
        assert_eq!(
            error("$frobnicate=1"),
            Some((
                "odata_unknown_option",
                "unknown query option `$frobnicate`".into()
            ))
        );
        for option in ["$skip", "$search"] {
            assert_eq!(
                error(&format!("{option}=1")),
                Some((
                    "odata_unsupported_option",
                    format!("the query option `{option}` is not supported")
                ))
            );
        }
        assert_eq!(
            error("$top=1&$TOP=2"),
            Some((
                "odata_duplicate_option",
                "the query option `$TOP` is given more than once".into()
            ))
        );
        assert_eq!(
            error("@p1=1&@p1=2").map(|e| e.0),
            Some("odata_duplicate_option")
        );
        assert_eq!(
            error("$expand=a($select=x;$select=y)").map(|e| e.0),
            Some("odata_duplicate_option")
        );
        assert_eq!(
            error("$expand=a($levels=2)").map(|e| e.0),
            Some("odata_unsupported_option")
        );
        assert_eq!(
            error("$expand=a($bogus=2)").map(|e| e.0),
            Some("odata_unknown_option")
        );
        assert_eq!(
            parse_query("select=x&top=abc").ok(),
            Some(QueryOptions {
                given: vec![("select".into(), "x".into()), ("top".into(), "abc".into())],
                ..QueryOptions::default()
            })
        );
    }

    #[test]
    fn malformed_options_name_the_position() {
        assert_eq!(
            error("$select=name,,x").map(|e| e.1),
            Some("`$select` at character 5: expected a column name".into())
        );
        assert_eq!(
            error("$select=name, a-b").map(|e| e.1),
            Some("`$select` at character 6: `a-b` is not a column name".into())
        );
        assert_eq!(
            error("$orderby=name, city sideways").map(|e| e.1),
            Some("`$orderby` at character 6: `city sideways` is not `column [asc|desc]`".into())
        );
        assert_eq!(
            error("$filter=name%20eq").map(|e| e.1),
            Some(
                "`$filter` at character 7: expected a value ('text', a number, a GUID, a date, true, false or null)"
                    .into()
            )
        );
        assert!(error("$top=-1").is_some_and(|e| e.0 == "odata_syntax"));
        assert!(error("$top=").is_some_and(|e| e.0 == "odata_syntax"));
        assert!(error("$top=1.5").is_some_and(|e| e.0 == "odata_syntax"));
        assert!(error("$count=yes").is_some_and(|e| e.1.contains("`yes`")));
        assert!(error("$skiptoken=").is_some());
        assert!(error("@p1=nope").is_some_and(|e| e.1.starts_with("`@p1`")));
        assert!(error("@1=2").is_some());
        assert!(error("$filter=%FF").is_some_and(|e| e.1.contains("UTF-8")));
        // Nested errors: positions in the whole `$expand` text.
        assert_eq!(
            error("$expand=primarycontactid($filter=name eq)").map(|e| e.1),
            Some(
                "`$expand` at character 32: expected a value ('text', a number, a GUID, a date, true, false or null)"
                    .into()
            )
        );
        assert_eq!(
            error("$expand=a($select=x,)").map(|e| e.1),
            Some("`$expand` at character 12: expected a column name".into())
        );
        assert_eq!(
            error("$expand=a($select=x").map(|e| e.1),
            Some("`$expand` at character 1: `(` without `)`".into())
        );
        assert_eq!(
            error("$expand=a)").map(|e| e.1),
            Some("`$expand` at character 1: `)` without `(`".into())
        );
        assert!(error("$expand=a(x)").is_some_and(|e| e.1.contains("$option=value")));
        assert!(error("$expand=a b").is_some_and(|e| e.1.contains("expected `,` or `(`")));
        assert!(error("$expand=,a").is_some_and(|e| e.1.contains("navigation property")));
        assert!(error("$expand=a($filter='x)").is_some_and(|e| e.1.contains("unterminated")));
    }

    #[test]
    fn limits_are_errors() {
        let columns = vec!["c"; MAX_SELECT_COLUMNS + 1].join(",");
        assert!(
            error(&format!("$select={columns}"))
                .is_some_and(|e| e.0 == "odata_limit" && e.1.contains("500"))
        );
        let columns = vec!["c"; MAX_SELECT_COLUMNS].join(",");
        assert!(parse_query(&format!("$select={columns}")).is_ok());
        assert!(
            error("$orderby=a,b,c,d,e,f,g,h,i")
                .is_some_and(|e| e.0 == "odata_limit" && e.1.contains("character 16"))
        );
        assert!(parse_query("$orderby=a,b,c,d,e,f,g,h").is_ok());
        assert!(error("$top=5001").is_some_and(|e| e.0 == "odata_limit"));
        assert!(error("$top=99999999999999999999").is_some_and(|e| e.0 == "odata_limit"));
        let items = ["a"; MAX_EXPAND_ITEMS + 1].join(",");
        assert!(error(&format!("$expand={items}")).is_some_and(|e| e.0 == "odata_limit"));
        let items = ["a"; MAX_EXPAND_ITEMS].join(",");
        assert!(parse_query(&format!("$expand={items}")).is_ok());
        // Nested items count against the same budget.
        let nested = format!("$expand=a($expand={}),b", ["c"; 9].join(","));
        assert!(error(&nested).is_some_and(|e| e.0 == "odata_limit"));
        assert!(parse_query("$expand=a($expand=b($select=x))").is_ok());
        assert!(
            error("$expand=a($expand=b($expand=c))")
                .is_some_and(|e| e.0 == "odata_limit" && e.1.contains("2 levels"))
        );
        let deep = format!("$expand={}{}", "a(".repeat(10_000), ")".repeat(10_000));
        assert!(error(&deep).is_some());
        let long = format!("$filter=name eq '{}'", "x".repeat(MAX_QUERY_BYTES));
        assert!(error(&long).is_some_and(|e| e.0 == "odata_limit" && e.1.starts_with("`query`")));
        let filter = format!("$filter={}", "(".repeat(10_000));
        assert!(error(&filter).is_some_and(|e| e.0 == "odata_limit"));
    }
}
