//! Resource paths: what follows `/api/data/v9.x/` in a Web API URL, as typed segments.
//!
//! ```text
//! accounts                                           entity set
//! accounts(00000000-0000-0000-0000-000000000001)     by primary key
//! accounts(accountnumber='A-1')                      by alternate key
//! accounts/$count                                    count (text/plain)
//! teams(<id>)/teammembership_association/$ref        association
//! teams(<id>)/teammembership_association(<id>)/$ref  one association
//! accounts(<id>)/primarycontactid                    single-valued navigation
//! systemusers(<id>)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)
//! WhoAmI()   GrantAccess   $metadata   $batch   $1
//! EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata
//! ```
//!
//! Whether `name(a=1)` is an alternate key or a function's parameters, and whether a
//! qualified name is a type cast or an operation, depends on the schema: the parser keeps the
//! shape ([`Segment`] with [`Args`]) and the server decides by looking the name up. Names keep
//! their case (Dataverse's entity sets are lowercase; the server matches). Each segment is
//! percent-decoded on its own, so `%2F` inside a key does not split it; `+` is not a space
//! here. Parameter aliases (`Target=@p1`) are resolved from the query's aliases.

use std::collections::BTreeSet;

use percent_encoding::percent_decode_str;

use crate::lex::{ParamValue, Token, is_plain_name, is_qualified_name, literal_of, tokenize};
use crate::{Aliases, MAX_PATH_BYTES, MAX_PATH_SEGMENTS, MAX_SEGMENT_PARAMS, ODataError};

/// The part name in errors.
const PART: &str = "path";

/// The prefix of qualified operation and type names.
pub const NAMESPACE: &str = "Microsoft.Dynamics.CRM.";

/// A Web API version in the URL (`/api/data/v9.2/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// `v9.0`.
    V9_0,
    /// `v9.1`.
    V9_1,
    /// `v9.2`.
    V9_2,
}

impl ApiVersion {
    /// `v9.0`, `v9.1` or `v9.2` (the `v` in either case).
    #[must_use]
    pub fn parse(text: &str) -> Option<ApiVersion> {
        match text.to_ascii_lowercase().as_str() {
            "v9.0" => Some(ApiVersion::V9_0),
            "v9.1" => Some(ApiVersion::V9_1),
            "v9.2" => Some(ApiVersion::V9_2),
            _ => None,
        }
    }

    /// The version as written in URLs: `v9.2`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V9_0 => "v9.0",
            ApiVersion::V9_1 => "v9.1",
            ApiVersion::V9_2 => "v9.2",
        }
    }
}

/// A URL split into its Web API version, resource path and query string (not decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceUrl<'a> {
    /// The version, when the URL is absolute (`http://host/api/data/v9.2/…`) or rooted
    /// (`/api/data/v9.2/…`); `None` for a path relative to the service root (`contacts`,
    /// `/contacts(<id>)`, `$1`).
    pub version: Option<ApiVersion>,
    /// The resource path after `/api/data/v9.x/` (not decoded).
    pub path: &'a str,
    /// The query string after `?`, without it (not decoded; empty when there is none).
    pub query: &'a str,
}

/// Splits a request URL as found in a request line, a `$batch` part or an `@odata.id` /
/// `@odata.bind` value: absolute (`http://127.0.0.1/api/data/v9.2/contacts?$top=1`), rooted
/// (`/api/data/v9.2/contacts`) or relative to the service root (`contacts`, `/contacts(<id>)`,
/// `$1/primarycontactid`). An absolute URL must have the `/api/data/v9.x/` path. A fragment
/// is dropped.
pub fn split_url(url: &str) -> Result<ServiceUrl<'_>, ODataError> {
    const URL: &str = "url";
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let starts = |text: &str, prefix: &str| {
        text.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    let mut rooted = path;
    let mut absolute = false;
    for scheme in ["http://", "https://"] {
        if starts(path, scheme) {
            let after = &path[scheme.len()..];
            rooted = after.find('/').map_or("", |slash| &after[slash..]);
            absolute = true;
        }
    }
    let api = starts(rooted, "/api/data/") || rooted.eq_ignore_ascii_case("/api/data");
    if !absolute && !api {
        // Relative to the service root; a leading `/` too (`@odata.bind` values such as
        // `/contacts(<id>)`).
        return Ok(ServiceUrl {
            version: None,
            path: path.strip_prefix('/').unwrap_or(path),
            query,
        });
    }
    let at = path.chars().count() - rooted.chars().count();
    let Some(after) = rooted
        .get(.."/api/data/".len())
        .filter(|p| p.eq_ignore_ascii_case("/api/data/"))
        .and_then(|_| rooted.get("/api/data/".len()..))
    else {
        return Err(ODataError::syntax(
            URL,
            at,
            "not a Web API URL: expected `/api/data/v9.0/`, `v9.1/` or `v9.2/`",
        ));
    };
    let (version_text, rest) = after.split_once('/').unwrap_or((after, ""));
    let version = ApiVersion::parse(version_text).ok_or_else(|| {
        ODataError::syntax(
            URL,
            at + "/api/data/".len(),
            format!("unknown Web API version `{version_text}` (v9.0, v9.1, v9.2)"),
        )
    })?;
    Ok(ServiceUrl {
        version: Some(version),
        path: rest,
        query,
    })
}

/// A resource path: its segments in order (none for the service document).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourcePath {
    /// The segments.
    pub segments: Vec<PathSegment>,
}

impl ResourcePath {
    /// The service document (`/api/data/v9.2/`).
    #[must_use]
    pub fn is_service_document(&self) -> bool {
        self.segments.is_empty()
    }

    /// The first segment when it is named (the entity set, operation or metadata collection).
    #[must_use]
    pub fn first(&self) -> Option<&Segment> {
        match self.segments.first() {
            Some(PathSegment::Named(s)) => Some(s),
            _ => None,
        }
    }
}

/// One path segment.
#[derive(Clone, Debug, PartialEq)]
pub enum PathSegment {
    /// `$metadata` (the only segment).
    Metadata,
    /// `$batch` (the only segment).
    Batch,
    /// `$count` (last, after a collection: an entity set or a collection-valued navigation).
    Count,
    /// `$ref` (last, after a navigation property).
    Ref,
    /// `$value` (last, after a property).
    Value,
    /// `$1`: a reference to the request with this `Content-ID` earlier in a `$batch` change
    /// set (first segment only); the text after `$`.
    ContentId(String),
    /// A name, with or without arguments: an entity set, a navigation property, a property,
    /// a metadata collection, a type cast, a bound or unbound function or action.
    Named(Segment),
}

/// A named segment: `accounts`, `accounts(<guid>)`, `accounts(accountnumber='A-1')`,
/// `WhoAmI()`, `Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// The name as given (qualified names keep their namespace).
    pub name: String,
    /// The parenthesised part, when there is one.
    pub args: Option<Args>,
}

impl Segment {
    /// The name without the `Microsoft.Dynamics.CRM.` namespace.
    #[must_use]
    pub fn local_name(&self) -> &str {
        self.name
            .get(..NAMESPACE.len())
            .filter(|p| p.eq_ignore_ascii_case(NAMESPACE))
            .and_then(|_| self.name.get(NAMESPACE.len()..))
            .unwrap_or(&self.name)
    }

    /// Whether the name is qualified (`Microsoft.Dynamics.CRM.X`): a type cast or an operation.
    #[must_use]
    pub fn is_qualified(&self) -> bool {
        self.name.contains('.')
    }

    /// The primary key, when the arguments are one GUID.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        match &self.args {
            Some(Args::Id(id)) => Some(id),
            _ => None,
        }
    }
}

/// The parenthesised part of a segment.
#[derive(Clone, Debug, PartialEq)]
pub enum Args {
    /// One GUID: a primary key (lowercase).
    Id(String),
    /// One other value.
    Value(ParamValue),
    /// Named values, in the order given: an alternate key (`accountnumber='A-1'`,
    /// `LogicalName='account'`) or a function's parameters (`Target=@p1`, aliases resolved);
    /// empty for `()`.
    Named(Vec<(String, ParamValue)>),
}

impl Args {
    /// A named value, by name as given.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        match self {
            Args::Named(list) => list.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Parses a resource path (after `/api/data/v9.x/`, without the query string); `aliases`
/// holds the query's parameter aliases.
pub fn parse_path(path: &str, aliases: &Aliases) -> Result<ResourcePath, ODataError> {
    if path.len() > MAX_PATH_BYTES {
        let position = path
            .char_indices()
            .take_while(|(b, _)| *b < MAX_PATH_BYTES)
            .count();
        return Err(ODataError::limit(
            PART,
            position,
            format!("the path is longer than {MAX_PATH_BYTES} bytes"),
        ));
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Ok(ResourcePath::default());
    }
    let mut segments = Vec::new();
    let mut offsets = Vec::new();
    let mut offset = 0;
    for (index, raw) in path.split('/').enumerate() {
        if index == MAX_PATH_SEGMENTS {
            return Err(ODataError::limit(
                PART,
                offset,
                format!("the path has more than {MAX_PATH_SEGMENTS} segments"),
            ));
        }
        let text = percent_decode_str(raw).decode_utf8().map_err(|_| {
            ODataError::syntax(PART, offset, "a segment is not UTF-8 once percent-decoded")
        })?;
        segments.push(segment(&text, index, offset, aliases)?);
        offsets.push(offset);
        offset += text.chars().count() + 1;
    }
    check_shape(&segments, &offsets)?;
    Ok(ResourcePath { segments })
}

/// One decoded segment; `offset` is its position in the decoded path.
fn segment(
    text: &str,
    index: usize,
    offset: usize,
    aliases: &Aliases,
) -> Result<PathSegment, ODataError> {
    if text.is_empty() {
        return Err(ODataError::syntax(PART, offset, "an empty segment"));
    }
    if let Some(word) = text.strip_prefix('$') {
        return match word.to_ascii_lowercase().as_str() {
            "metadata" => Ok(PathSegment::Metadata),
            "batch" => Ok(PathSegment::Batch),
            "count" => Ok(PathSegment::Count),
            "ref" => Ok(PathSegment::Ref),
            "value" => Ok(PathSegment::Value),
            _ if index == 0
                && !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
            {
                Ok(PathSegment::ContentId(word.to_owned()))
            }
            _ => Err(ODataError::syntax(
                PART,
                offset,
                format!("unknown segment `{text}`"),
            )),
        };
    }
    let chars: Vec<char> = text.chars().collect();
    let name_len = chars.iter().take_while(|c| **c != '(').count();
    let name: String = chars[..name_len].iter().collect();
    if !is_qualified_name(&name) {
        return Err(ODataError::syntax(
            PART,
            offset,
            format!("`{name}` is not a name"),
        ));
    }
    if name_len == chars.len() {
        return Ok(PathSegment::Named(Segment { name, args: None }));
    }
    let tokens =
        tokenize(&chars[name_len..], PART).map_err(|e| e.shifted(PART, offset + name_len))?;
    let args = args(&tokens, offset + name_len, chars.len() - name_len, aliases)?;
    Ok(PathSegment::Named(Segment {
        name,
        args: Some(args),
    }))
}

/// The arguments from the tokens of `(…)`; `offset` is the position of `(` in the path and
/// `len` the characters from there to the segment's end.
fn args(
    tokens: &[(usize, Token)],
    offset: usize,
    len: usize,
    aliases: &Aliases,
) -> Result<Args, ODataError> {
    let at = |i: usize| offset + tokens.get(i).map_or(len, |(p, _)| *p);
    let close = match tokens.iter().position(|(_, t)| *t == Token::Close) {
        Some(close) if close + 1 == tokens.len() => close,
        Some(close) => {
            return Err(ODataError::syntax(
                PART,
                at(close + 1),
                "unexpected text after `)`",
            ));
        }
        None => return Err(ODataError::syntax(PART, at(tokens.len()), "expected `)`")),
    };
    let inner = &tokens[1..close];
    let value = |i: usize| -> Result<ParamValue, ODataError> {
        match inner.get(i).map(|(_, t)| t) {
            Some(Token::Alias(name)) => aliases.get(name).cloned().ok_or_else(|| {
                ODataError::syntax(
                    PART,
                    at(i + 1),
                    format!("the parameter alias `{name}` has no value in the query"),
                )
            }),
            Some(token) => literal_of(token)
                .ok_or_else(|| ODataError::syntax(PART, at(i + 1), "expected a value")),
            None => Err(ODataError::syntax(PART, at(i + 1), "expected a value")),
        }
    };
    match inner {
        [] => return Ok(Args::Named(Vec::new())),
        [_] => {
            return Ok(match value(0)? {
                ParamValue::Guid(id) => Args::Id(id),
                other => Args::Value(other),
            });
        }
        _ => {}
    }
    let mut named = Vec::new();
    let mut seen = BTreeSet::new();
    let mut i = 0;
    loop {
        if named.len() == MAX_SEGMENT_PARAMS {
            return Err(ODataError::limit(
                PART,
                at(i + 1),
                format!("a segment takes at most {MAX_SEGMENT_PARAMS} named values"),
            ));
        }
        let name = match inner.get(i).map(|(_, t)| t) {
            Some(Token::Ident(name)) if is_plain_name(name) => name.clone(),
            _ => return Err(ODataError::syntax(PART, at(i + 1), "expected `name=value`")),
        };
        if inner.get(i + 1).map(|(_, t)| t) != Some(&Token::Equals) {
            return Err(ODataError::syntax(PART, at(i + 2), "expected `=`"));
        }
        if !seen.insert(name.clone()) {
            return Err(ODataError::syntax(
                PART,
                at(i + 1),
                format!("`{name}` is given twice"),
            ));
        }
        named.push((name, value(i + 2)?));
        match inner.get(i + 3).map(|(_, t)| t) {
            None => return Ok(Args::Named(named)),
            Some(Token::Comma) => i += 4,
            Some(_) => return Err(ODataError::syntax(PART, at(i + 4), "expected `,` or `)`")),
        }
    }
}

/// Where `$metadata`, `$batch`, `$count`, `$ref` and `$value` may stand; `offsets` holds
/// each segment's position.
fn check_shape(segments: &[PathSegment], offsets: &[usize]) -> Result<(), ODataError> {
    let last = segments.len().saturating_sub(1);
    for (i, segment) in segments.iter().enumerate() {
        let after_named = i > 0 && matches!(segments[i - 1], PathSegment::Named(_));
        let problem = match segment {
            PathSegment::Metadata | PathSegment::Batch if segments.len() > 1 => {
                Some("`$metadata` and `$batch` stand alone")
            }
            PathSegment::Count if i != last => Some("`$count` must be the last segment"),
            PathSegment::Count
                if !matches!(
                    segments.get(i.wrapping_sub(1)),
                    Some(PathSegment::Named(Segment { args: None, .. }))
                ) =>
            {
                Some("`$count` follows a collection")
            }
            PathSegment::Ref | PathSegment::Value if i != last => {
                Some("`$ref` and `$value` must be the last segment")
            }
            PathSegment::Ref | PathSegment::Value if !(after_named && i >= 2) => {
                Some("`$ref` and `$value` follow a navigation property or a property")
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(ODataError::syntax(
                PART,
                offsets.get(i).copied().unwrap_or(0),
                problem,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "00000000-0000-0000-0000-000000000001";

    fn parse(path: &str) -> Result<ResourcePath, ODataError> {
        parse_path(path, &Aliases::new())
    }

    fn named(name: &str, args: Option<Args>) -> PathSegment {
        PathSegment::Named(Segment {
            name: name.into(),
            args,
        })
    }

    fn id() -> Option<Args> {
        Some(Args::Id(ID.into()))
    }

    fn text(s: &str) -> ParamValue {
        ParamValue::Text(s.into())
    }

    #[test]
    fn entity_sets_keys_and_navigation() -> Result<(), ODataError> {
        assert_eq!(parse("accounts")?.segments, vec![named("accounts", None)]);
        assert_eq!(
            parse(&format!("accounts({})", ID.to_uppercase()))?.segments,
            vec![named("accounts", id())]
        );
        assert_eq!(
            parse(&format!("accounts({ID})"))?
                .first()
                .and_then(Segment::id),
            Some(ID)
        );
        assert_eq!(
            parse("accounts(accountnumber='A-1')")?.segments,
            vec![named(
                "accounts",
                Some(Args::Named(vec![("accountnumber".into(), text("A-1"))]))
            )]
        );
        assert_eq!(
            parse("accounts(accountnumber=%27A-1%27)")?,
            parse("accounts(accountnumber='A-1')")?
        );
        assert_eq!(
            parse("x(a='1',b=2)")?.segments,
            vec![named(
                "x",
                Some(Args::Named(vec![
                    ("a".into(), text("1")),
                    ("b".into(), ParamValue::Int(2))
                ]))
            )]
        );
        assert_eq!(
            parse("x(a='it''s %2F (here)')")?.segments,
            vec![named(
                "x",
                Some(Args::Named(vec![("a".into(), text("it's / (here)"))]))
            )]
        );
        assert_eq!(
            parse("accounts/$count")?.segments,
            vec![named("accounts", None), PathSegment::Count]
        );
        assert_eq!(
            parse(&format!("teams({ID})/teammembership_association/$ref"))?.segments,
            vec![
                named("teams", id()),
                named("teammembership_association", None),
                PathSegment::Ref
            ]
        );
        assert_eq!(
            parse(&format!(
                "teams({ID})/teammembership_association({ID})/$ref"
            ))?
            .segments,
            vec![
                named("teams", id()),
                named("teammembership_association", id()),
                PathSegment::Ref
            ]
        );
        assert_eq!(
            parse(&format!("accounts({ID})/primarycontactid"))?.segments,
            vec![named("accounts", id()), named("primarycontactid", None)]
        );
        assert_eq!(
            parse(&format!("accounts({ID})/contact_customer_accounts/$count"))?.segments,
            vec![
                named("accounts", id()),
                named("contact_customer_accounts", None),
                PathSegment::Count
            ]
        );
        assert_eq!(
            parse(&format!("accounts({ID})/name/$value"))?.segments,
            vec![
                named("accounts", id()),
                named("name", None),
                PathSegment::Value
            ]
        );
        assert_eq!(parse("accounts/")?, parse("accounts")?);
        assert_eq!(parse("/accounts")?, parse("accounts")?);
        assert!(parse("")?.is_service_document());
        assert!(parse("/")?.is_service_document());
        Ok(())
    }

    #[test]
    fn operations_and_metadata() -> Result<(), ODataError> {
        let mut aliases = Aliases::new();
        aliases.insert(
            "@p1".into(),
            ParamValue::Json(serde_json::json!({"@odata.id": format!("accounts({ID})")})),
        );
        let path = parse_path(
            &format!(
                "systemusers({ID})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)"
            ),
            &aliases,
        )?;
        let Some(PathSegment::Named(op)) = path.segments.get(1) else {
            return Err(ODataError::syntax("test", 0, "no operation"));
        };
        assert_eq!(op.local_name(), "RetrievePrincipalAccess");
        assert!(op.is_qualified());
        assert_eq!(
            op.args.as_ref().and_then(|a| a.get("Target")),
            Some(&ParamValue::Json(
                serde_json::json!({"@odata.id": format!("accounts({ID})")})
            ))
        );
        assert_eq!(
            parse(&format!("systemusers({ID})/RetrieveUserPrivileges()"))?.segments,
            vec![
                named("systemusers", id()),
                named("RetrieveUserPrivileges", Some(Args::Named(vec![])))
            ]
        );
        assert_eq!(
            parse("WhoAmI()")?.segments,
            vec![named("WhoAmI", Some(Args::Named(vec![])))]
        );
        assert_eq!(
            parse("GrantAccess")?.segments,
            vec![named("GrantAccess", None)]
        );
        assert_eq!(
            parse_path("RetrieveSharedPrincipalsAndAccess(Target=@p1)", &aliases)?
                .first()
                .map(|s| s.name.as_str()),
            Some("RetrieveSharedPrincipalsAndAccess")
        );
        assert_eq!(
            parse(&format!(
                "RetrievePrincipalAccess(Target=@p1,Principal={ID},Depth=Microsoft.Dynamics.CRM.PrivilegeDepth'Global',Flag=true,N=-1.5,When=2024-01-01)"
            ))
            .err()
            .map(|e| e.to_string()),
            Some("`path` at character 31: the parameter alias `@p1` has no value in the query".into())
        );
        let op = parse(&format!(
            "RetrievePrincipalAccess(Principal={ID},Depth=Microsoft.Dynamics.CRM.PrivilegeDepth'Global',Flag=true,N=-1.5,When=2024-01-01,Nothing=null)"
        ))?;
        assert_eq!(
            op.first().and_then(|s| s.args.clone()),
            Some(Args::Named(vec![
                ("Principal".into(), ParamValue::Guid(ID.into())),
                (
                    "Depth".into(),
                    ParamValue::Enum {
                        type_name: "Microsoft.Dynamics.CRM.PrivilegeDepth".into(),
                        value: "Global".into()
                    }
                ),
                ("Flag".into(), ParamValue::Bool(true)),
                ("N".into(), ParamValue::Decimal(-1.5)),
                ("When".into(), ParamValue::DateTime("2024-01-01".into())),
                ("Nothing".into(), ParamValue::Null),
            ]))
        );
        assert_eq!(parse("$metadata")?.segments, vec![PathSegment::Metadata]);
        assert_eq!(parse("$batch")?.segments, vec![PathSegment::Batch]);
        let attributes = named("Attributes", None);
        let entity = named(
            "EntityDefinitions",
            Some(Args::Named(vec![("LogicalName".into(), text("account"))])),
        );
        assert_eq!(
            parse("EntityDefinitions(LogicalName='account')/Attributes")?.segments,
            vec![entity.clone(), attributes.clone()]
        );
        assert_eq!(
            parse("EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata")?.segments,
            vec![
                entity.clone(),
                attributes,
                named("Microsoft.Dynamics.CRM.PicklistAttributeMetadata", None)
            ]
        );
        assert_eq!(
            parse("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')")?
                .segments,
            vec![
                entity,
                named(
                    "Attributes",
                    Some(Args::Named(vec![("LogicalName".into(), text("name"))]))
                )
            ]
        );
        assert_eq!(
            parse("$1")?.segments,
            vec![PathSegment::ContentId("1".into())]
        );
        assert_eq!(
            parse("$1/primarycontactid/$ref")?.segments,
            vec![
                PathSegment::ContentId("1".into()),
                named("primarycontactid", None),
                PathSegment::Ref
            ]
        );
        assert_eq!(
            parse("accounts('x')")?.segments,
            vec![named("accounts", Some(Args::Value(text("x"))))]
        );
        Ok(())
    }

    #[test]
    fn malformed_paths_name_the_position() {
        let err = |p: &str| parse(p).err().map(|e| e.to_string());
        assert_eq!(
            err("accounts(1)x"),
            Some("`path` at character 11: unexpected text after `)`".into())
        );
        assert_eq!(
            err("accounts(name='x'"),
            Some("`path` at character 17: expected `)`".into())
        );
        assert_eq!(
            err("accounts(name='x)"),
            Some("`path` at character 14: unterminated text literal".into())
        );
        assert_eq!(
            err("a/b c"),
            Some("`path` at character 2: `b c` is not a name".into())
        );
        assert_eq!(
            err("accounts//x"),
            Some("`path` at character 9: an empty segment".into())
        );
        assert_eq!(
            err("accounts/$frob"),
            Some("`path` at character 9: unknown segment `$frob`".into())
        );
        assert_eq!(
            err("accounts/$1"),
            Some("`path` at character 9: unknown segment `$1`".into())
        );
        assert_eq!(
            err("accounts/$count/x"),
            Some("`path` at character 9: `$count` must be the last segment".into())
        );
        assert_eq!(
            err(&format!("accounts({ID})/$count")),
            Some("`path` at character 47: `$count` follows a collection".into())
        );
        assert!(err("$count").is_some());
        assert!(err("accounts/$ref").is_some());
        assert!(err("$ref").is_some());
        assert!(err("$metadata/x").is_some());
        assert!(err("accounts/$batch").is_some());
        assert!(err("accounts(a=1,a=2)").is_some_and(|m| m.contains("twice")));
        assert!(err("accounts(a=1 b=2)").is_some_and(|m| m.contains("`,` or `)`")));
        assert!(err("accounts(a 1)").is_some_and(|m| m.contains("`=`")));
        assert!(err("accounts(1=1)").is_some_and(|m| m.contains("name=value")));
        assert!(err("accounts(a=)").is_some_and(|m| m.contains("expected a value")));
        assert!(err("accounts(a=b)").is_some_and(|m| m.contains("expected a value")));
        assert!(err("accounts(a=[1])").is_some());
        assert!(err("accounts(\"x\")").is_some());
        assert!(err("accounts(%FF)").is_some_and(|m| m.contains("UTF-8")));
        assert!(err("(x)").is_some());
        assert!(err("1accounts").is_some());
    }

    #[test]
    fn limits_are_errors() {
        let code = |p: &str| parse(p).err().map(|e| e.code());
        assert_eq!(
            code(&"a/".repeat(MAX_PATH_SEGMENTS + 1)),
            Some("odata_limit")
        );
        assert_eq!(
            parse(&vec!["a"; MAX_PATH_SEGMENTS].join("/")).map(|p| p.segments.len()),
            Ok(16)
        );
        assert_eq!(code(&"a".repeat(MAX_PATH_BYTES + 1)), Some("odata_limit"));
        let params: Vec<String> = (0..=MAX_SEGMENT_PARAMS)
            .map(|i| format!("p{i}=1"))
            .collect();
        assert_eq!(
            code(&format!("f({})", params.join(","))),
            Some("odata_limit")
        );
        let deep = format!("f({}", "(".repeat(5_000));
        assert!(code(&deep).is_some());
    }

    #[test]
    fn urls_split_into_version_path_and_query() -> Result<(), ODataError> {
        assert_eq!(
            split_url("http://127.0.0.1:47111/api/data/v9.2/contacts?$top=1#frag")?,
            ServiceUrl {
                version: Some(ApiVersion::V9_2),
                path: "contacts",
                query: "$top=1"
            }
        );
        assert_eq!(
            split_url("HTTPS://example.org/API/Data/V9.0/")?,
            ServiceUrl {
                version: Some(ApiVersion::V9_0),
                path: "",
                query: ""
            }
        );
        assert_eq!(
            split_url("/api/data/v9.1")?,
            ServiceUrl {
                version: Some(ApiVersion::V9_1),
                path: "",
                query: ""
            }
        );
        assert_eq!(
            split_url("$1/primarycontactid/$ref")?,
            ServiceUrl {
                version: None,
                path: "$1/primarycontactid/$ref",
                query: ""
            }
        );
        assert_eq!(
            split_url("accounts?$select=name")?,
            ServiceUrl {
                version: None,
                path: "accounts",
                query: "$select=name"
            }
        );
        let err = |u: &str| split_url(u).err().map(|e| e.to_string());
        assert_eq!(
            err("/api/data/v8.2/accounts"),
            Some("`url` at character 10: unknown Web API version `v8.2` (v9.0, v9.1, v9.2)".into())
        );
        assert_eq!(
            err("http://host/other/accounts"),
            Some(
                "`url` at character 11: not a Web API URL: expected `/api/data/v9.0/`, `v9.1/` or `v9.2/`"
                    .into()
            )
        );
        assert!(err("http://host").is_some());
        assert_eq!(
            split_url("/contacts(1)")?,
            ServiceUrl {
                version: None,
                path: "contacts(1)",
                query: ""
            }
        );
        assert_eq!(ApiVersion::V9_2.as_str(), "v9.2");
        assert_eq!(ApiVersion::parse("V9.1"), Some(ApiVersion::V9_1));
        assert_eq!(ApiVersion::parse("v10"), None);
        Ok(())
    }
}
