//! Resource paths and query strings of the Web API: `accounts(<guid>)`,
//! `accounts(accountnumber='A-1')`, `teams(<id>)/teammembership_association/$ref`,
//! `systemusers(<id>)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)`, with
//! explicit limits.

use std::fmt;

use strata_engine::{Guid, Value};

use super::{WebError, bad};

/// The longest path, in bytes (after the service root).
pub const MAX_PATH_BYTES: usize = 4_096;
/// The most segments in a path.
pub const MAX_SEGMENTS: usize = 8;
/// The most parts of a key or parameters of a function.
pub const MAX_ARGS: usize = 16;
/// The most query parameters.
pub const MAX_QUERY_PARAMS: usize = 64;

/// A parsed resource path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Path {
    pub(crate) segments: Vec<Segment>,
}

/// One segment of a path.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Segment {
    /// `$metadata`.
    Metadata,
    /// `$batch`.
    Batch,
    /// `$count`.
    Count,
    /// `$ref`.
    Ref,
    /// `$value`: a property's raw value.
    Value,
    /// `$1`: a Content-ID reference inside a `$batch` change set.
    ContentId(String),
    /// A name (entity set, navigation property, function or action, cast), with what was in
    /// its parentheses: a key or parameters.
    Named {
        /// The name, without a `Microsoft.Dynamics.CRM.` prefix.
        name: String,
        /// The text between the parentheses, when there were parentheses.
        args: Option<Args>,
    },
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Metadata => f.write_str("$metadata"),
            Segment::Batch => f.write_str("$batch"),
            Segment::Count => f.write_str("$count"),
            Segment::Ref => f.write_str("$ref"),
            Segment::Value => f.write_str("$value"),
            Segment::ContentId(id) => write!(f, "${id}"),
            Segment::Named { name, .. } => f.write_str(name),
        }
    }
}

/// What parentheses after a name held.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Args {
    /// `()`.
    Empty,
    /// `(<guid>)`.
    Id(Guid),
    /// `(name=value,…)`: an alternate key or function parameters, aliases resolved.
    Named(Vec<(String, Arg)>),
}

/// One value inside parentheses.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    /// A literal: text, number, boolean, null, or a GUID (as lowercase text).
    Value(Value),
    /// A JSON value from a parameter alias (`@p1={"@odata.id":"accounts(…)"}`).
    Json(serde_json::Value),
    /// An enum literal (`Microsoft.Dynamics.CRM.AccessRights'ReadAccess'`), as written.
    Enum(String),
}

/// Decodes a query string: `%XX` escapes and `+` as a space, as both raw OData clients and
/// form-encoding clients send them. Names and values are decoded alike (`%24select`).
pub(crate) fn query_pairs(query: &str) -> Result<Vec<(String, String)>, WebError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_QUERY_PARAMS {
            return Err(bad(
                "odata_limit",
                format!("more than {MAX_QUERY_PARAMS} query parameters"),
            ));
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let mut name = decode(name, true)?;
        // FetchXML is read on a list of records, which checks that the request is one (D162).
        if name.eq_ignore_ascii_case("fetchXml") {
            name = "fetchXml".to_owned();
        }
        let value = decode(value, true)?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(bad(
                "odata_syntax",
                format!("the query option `{name}` is given twice"),
            ));
        }
        // A saved query is a query: answering without it would answer another one (here, so
        // that a `$batch` part is refused as a request is).
        if ["savedQuery", "userQuery"]
            .iter()
            .any(|q| name.eq_ignore_ascii_case(q))
        {
            return Err(bad(
                "odata_unsupported",
                format!(
                    "`{name}` is not supported: ask with fetchXml, or $select, $filter, $orderby, $top and $expand (docs/webapi.md)"
                ),
            ));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Percent-decodes (and with `plus`, turns `+` into a space), refusing what is not UTF-8.
pub(crate) fn decode(text: &str, plus: bool) -> Result<String, WebError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        bad(
                            "odata_syntax",
                            format!("a malformed %-escape at byte {i} of `{}`", clip(text)),
                        )
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad("odata_syntax", "the URL is not UTF-8 once decoded"))
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Parses the path after the service root (`accounts(…)/…`), resolving parameter aliases from
/// the query.
pub(crate) fn parse(raw: &str, query: &[(String, String)]) -> Result<Path, WebError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(bad(
            "odata_limit",
            format!("the resource path is longer than {MAX_PATH_BYTES} bytes"),
        ));
    }
    let text = decode(raw, false)?;
    let mut segments = Vec::new();
    for part in split_unquoted(&text, '/')? {
        if part.is_empty() {
            continue;
        }
        if segments.len() == MAX_SEGMENTS {
            return Err(bad(
                "odata_limit",
                format!("more than {MAX_SEGMENTS} path segments"),
            ));
        }
        segments.push(segment(part, query)?);
    }
    Ok(Path { segments })
}

/// Splits on `sep` outside quotes and parentheses.
fn split_unquoted(text: &str, sep: char) -> Result<Vec<&str>, WebError> {
    let mut parts = Vec::new();
    let (mut depth, mut quoted, mut start) = (0usize, false, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    bad(
                        "odata_syntax",
                        format!("an unmatched `)` at character {i} of `{}`", clip(text)),
                    )
                })?;
            }
            c if c == sep && !quoted && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if quoted || depth != 0 {
        return Err(bad(
            "odata_syntax",
            format!("an unterminated quote or parenthesis in `{}`", clip(text)),
        ));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn segment(part: &str, query: &[(String, String)]) -> Result<Segment, WebError> {
    match part {
        "$metadata" => return Ok(Segment::Metadata),
        "$batch" => return Ok(Segment::Batch),
        "$count" => return Ok(Segment::Count),
        "$ref" => return Ok(Segment::Ref),
        "$value" => return Ok(Segment::Value),
        _ => {}
    }
    if let Some(id) = part.strip_prefix('$') {
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Ok(Segment::ContentId(id.to_owned()));
        }
        return Err(bad(
            "odata_unknown",
            format!("Resource not found for the segment '{part}'."),
        ));
    }
    let (name, args) = match part.find('(') {
        None => (part, None),
        Some(open) => {
            let inner = part[open + 1..].strip_suffix(')').ok_or_else(|| {
                bad(
                    "odata_syntax",
                    format!("the segment `{}` does not end with `)`", clip(part)),
                )
            })?;
            (&part[..open], Some(args(inner, query)?))
        }
    };
    let name = name.strip_prefix("Microsoft.Dynamics.CRM.").unwrap_or(name);
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    {
        return Err(bad(
            "odata_unknown",
            format!("Resource not found for the segment '{}'.", clip(part)),
        ));
    }
    Ok(Segment::Named {
        name: name.to_owned(),
        args,
    })
}

fn args(inner: &str, query: &[(String, String)]) -> Result<Args, WebError> {
    let inner = inner.trim();
    if inner.is_empty() {
        return Ok(Args::Empty);
    }
    if let Ok(guid) = inner.parse::<Guid>() {
        return Ok(Args::Id(guid));
    }
    let mut out = Vec::new();
    for item in split_unquoted(inner, ',')? {
        if out.len() == MAX_ARGS {
            return Err(bad(
                "odata_limit",
                format!("more than {MAX_ARGS} key parts or parameters"),
            ));
        }
        let (name, value) = item.split_once('=').ok_or_else(|| {
            bad(
                "odata_syntax",
                format!("`{}` is neither a GUID nor name=value", clip(item)),
            )
        })?;
        let name = name.trim();
        let value = value.trim();
        let arg = match value.strip_prefix('@') {
            Some(alias) => {
                let text = query
                    .iter()
                    .find(|(k, _)| k.strip_prefix('@') == Some(alias))
                    .map(|(_, v)| v.as_str())
                    .ok_or_else(|| {
                        bad(
                            "odata_syntax",
                            format!("the parameter alias `@{alias}` has no value in the query"),
                        )
                    })?;
                alias_value(text)?
            }
            None => literal(value)?,
        };
        out.push((name.to_owned(), arg));
    }
    Ok(Args::Named(out))
}

fn alias_value(text: &str) -> Result<Arg, WebError> {
    let t = text.trim();
    if t.starts_with('{') || t.starts_with('[') {
        let value = crate::json::strict_bytes(t.as_bytes())
            .map_err(|e| bad("odata_syntax", format!("a parameter alias: {}", e.message)))?;
        return Ok(Arg::Json(value));
    }
    literal(t)
}

/// A literal: `'text'` (`''` for a quote), a GUID, a number, `true`, `false`, `null`, or an
/// enum literal `Microsoft.Dynamics.CRM.Type'Value'`.
pub(crate) fn literal(text: &str) -> Result<Arg, WebError> {
    let t = text.trim();
    if let Some(body) = t.strip_prefix('\'').and_then(|b| b.strip_suffix('\'')) {
        return Ok(Arg::Value(Value::Text(body.replace("''", "'"))));
    }
    if let Ok(guid) = t.parse::<Guid>() {
        return Ok(Arg::Value(Value::Text(guid.to_string())));
    }
    match t {
        "true" => return Ok(Arg::Value(Value::Bool(true))),
        "false" => return Ok(Arg::Value(Value::Bool(false))),
        "null" => return Ok(Arg::Value(Value::Null)),
        _ => {}
    }
    if let Ok(i) = t.parse::<i64>() {
        return Ok(Arg::Value(Value::Int(i)));
    }
    if let Ok(x) = t.parse::<f64>()
        && x.is_finite()
    {
        return Ok(Arg::Value(Value::Float(x)));
    }
    if t.starts_with("Microsoft.Dynamics.CRM.") && t.ends_with('\'') {
        return Ok(Arg::Enum(t.to_owned()));
    }
    Err(bad(
        "odata_syntax",
        format!(
            "`{}` is not a literal (text in quotes, a number, a GUID, true, false or null)",
            clip(t)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(path: &Path) -> Vec<String> {
        path.segments.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn paths_of_the_client() -> Result<(), WebError> {
        let q = query_pairs(
            "@p1={%22@odata.id%22:%22accounts(11111111-1111-1111-1111-111111111111)%22}",
        )?;
        let p = parse(
            "systemusers(22222222-2222-2222-2222-222222222222)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)",
            &q,
        )?;
        assert_eq!(names(&p), ["systemusers", "RetrievePrincipalAccess"]);
        let Segment::Named {
            args: Some(Args::Named(params)),
            ..
        } = &p.segments[1]
        else {
            return Err(bad("internal", "no parameters"));
        };
        assert_eq!(params[0].0, "Target");
        assert!(
            matches!(&params[0].1, Arg::Json(v) if v["@odata.id"] == "accounts(11111111-1111-1111-1111-111111111111)")
        );
        let p = parse("accounts(accountnumber=%27A-1%27)", &[])?;
        assert_eq!(
            p.segments[0],
            Segment::Named {
                name: "accounts".into(),
                args: Some(Args::Named(vec![(
                    "accountnumber".into(),
                    Arg::Value(Value::Text("A-1".into()))
                )]))
            }
        );
        let p = parse(
            "teams(33333333-3333-3333-3333-333333333333)/teammembership_association(22222222-2222-2222-2222-222222222222)/$ref",
            &[],
        )?;
        assert_eq!(names(&p), ["teams", "teammembership_association", "$ref"]);
        assert_eq!(names(&parse("WhoAmI()", &[])?), ["WhoAmI"]);
        assert_eq!(
            names(&parse("accounts/$count", &[])?),
            ["accounts", "$count"]
        );
        assert_eq!(names(&parse("$1", &[])?), ["$1"]);
        assert_eq!(
            names(&parse(
                "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
                &[]
            )?),
            [
                "EntityDefinitions",
                "Attributes",
                "PicklistAttributeMetadata"
            ]
        );
        Ok(())
    }

    #[test]
    fn queries_raw_and_form_encoded_read_alike() -> Result<(), WebError> {
        let raw = query_pairs("$select=name,accountid&$filter=name%20eq%20%27Contoso%27")?;
        let form = query_pairs("%24select=name%2Caccountid&%24filter=name+eq+%27Contoso%27")?;
        assert_eq!(raw, form);
        assert!(query_pairs("$top=1&$top=2").is_err());
        assert!(matches!(
            query_pairs("savedQuery=00000000-0000-0000-0000-000000000001"),
            Err(WebError(e)) if e.code == "odata_unsupported"
        ));
        assert_eq!(
            query_pairs("FETCHXML=%3Cfetch%2F%3E")?,
            [("fetchXml".to_owned(), "<fetch/>".to_owned())]
        );
        Ok(())
    }

    #[test]
    fn malformed_paths_are_errors() {
        for bad_path in [
            "accounts(",
            "accounts('x)",
            "accounts)x(",
            "accounts(x)",
            "acc ounts",
            "$",
            "$a.b",
            "a/b/c/d/e/f/g/h/i",
            "accounts(%ZZ)",
        ] {
            assert!(parse(bad_path, &[]).is_err(), "{bad_path}");
        }
        let deep = "(".repeat(100_000);
        assert!(parse(&deep, &[]).is_err());
    }
}
