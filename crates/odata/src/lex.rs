//! Literals and tokens shared by keys, function parameters, parameter aliases and `$filter`.
//!
//! Literals as Dataverse clients write them: `'text'` (`''` for a quote), integers and decimals
//! (negative too), unquoted GUIDs, dates and date-times (`2024-01-01`, `2024-01-01T00:00:00Z`),
//! `null`, `true`, `false`, enum members `Microsoft.Dynamics.CRM.EntityFilters'Entity'` and, as a
//! parameter alias's whole value, JSON (`{"@odata.id":"accounts(…)"}`).

use strata_engine::Value;

use crate::ODataError;

/// A literal value: in a key (`accounts(accountnumber='A-1')`), a function parameter
/// (`Target=@p1`) or a parameter alias's value (`@p1=…`).
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// Any other number (a decimal point, an exponent, or too large for 64 bits).
    Decimal(f64),
    /// `'text'`, without the quotes and with `''` read as one quote.
    Text(String),
    /// An unquoted GUID, in lowercase.
    Guid(String),
    /// A date or date-time literal, as written (`2024-01-01`, `2024-01-01T00:00:00Z`).
    DateTime(String),
    /// An enum member: `Microsoft.Dynamics.CRM.EntityFilters'Entity'`.
    Enum {
        /// The qualified type name, as written.
        type_name: String,
        /// The member (or comma-separated members) between the quotes.
        value: String,
    },
    /// JSON (an object or an array): only as a parameter alias's whole value, such as
    /// `@p1={"@odata.id":"accounts(…)"}`.
    Json(serde_json::Value),
}

impl ParamValue {
    /// Parses a parameter alias's value (the text after `@p1=`, already decoded); `alias` names
    /// it in errors.
    pub fn parse(text: &str, alias: &str) -> Result<ParamValue, ODataError> {
        let trimmed = text.trim_start();
        let lead = text.chars().count() - trimmed.chars().count();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return serde_json::from_str(text)
                .map(ParamValue::Json)
                .map_err(|e| {
                    let position = if e.line() <= 1 {
                        e.column().saturating_sub(1)
                    } else {
                        lead
                    };
                    ODataError::syntax(alias, position, format!("not JSON: {e}"))
                });
        }
        let chars: Vec<char> = text.chars().collect();
        let tokens = tokenize(&chars, alias)?;
        match tokens.as_slice() {
            [(position, token)] => literal_of(token)
                .ok_or_else(|| ODataError::syntax(alias, *position, "expected a value")),
            [] => Err(ODataError::syntax(alias, chars.len(), "the value is empty")),
            [_, (position, _), ..] => Err(ODataError::syntax(
                alias,
                *position,
                "unexpected text after the value",
            )),
        }
    }

    /// The engine value for a filter comparison: GUIDs and dates as their text, decimals as
    /// floats; `None` for enum members and JSON.
    #[must_use]
    pub fn to_value(&self) -> Option<Value> {
        Some(match self {
            ParamValue::Null => Value::Null,
            ParamValue::Bool(b) => Value::Bool(*b),
            ParamValue::Int(i) => Value::Int(*i),
            ParamValue::Decimal(x) => Value::Float(*x),
            ParamValue::Text(s) | ParamValue::Guid(s) | ParamValue::DateTime(s) => {
                Value::Text(s.clone())
            }
            ParamValue::Enum { .. } | ParamValue::Json(_) => return None,
        })
    }
}

/// The literal a token stands for: a literal token, or `null`/`true`/`false`.
pub(crate) fn literal_of(token: &Token) -> Option<ParamValue> {
    match token {
        Token::Literal(v) => Some(v.clone()),
        Token::Ident(w) if w == "null" => Some(ParamValue::Null),
        Token::Ident(w) if w == "true" => Some(ParamValue::Bool(true)),
        Token::Ident(w) if w == "false" => Some(ParamValue::Bool(false)),
        _ => None,
    }
}

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Token {
    /// A name: `[A-Za-z_][A-Za-z0-9_.]*` (dots for qualified names).
    Ident(String),
    /// A parameter alias, `@` included: `@p1`.
    Alias(String),
    /// A literal (not `null`/`true`/`false`, which are `Ident`s).
    Literal(ParamValue),
    /// A double-quoted JSON-style string (only `PropertyValues=["a","b"]` takes it).
    Quoted(String),
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// `,`.
    Comma,
    /// `=`.
    Equals,
    /// `[`.
    OpenBracket,
    /// `]`.
    CloseBracket,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Characters that may not directly follow a number, a GUID or a date.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '+')
}

fn digits(chars: &[char], at: usize, n: usize) -> Option<u32> {
    let mut value = 0u32;
    for k in 0..n {
        let d = chars.get(at + k)?.to_digit(10)?;
        value = value * 10 + d;
    }
    Some(value)
}

/// A GUID (8-4-4-4-12 hex digits) at `at`, not followed by a word character.
fn guid_at(chars: &[char], at: usize) -> bool {
    let Some(slice) = chars.get(at..at + 36) else {
        return false;
    };
    let shape = slice.iter().enumerate().all(|(k, c)| {
        if matches!(k, 8 | 13 | 18 | 23) {
            *c == '-'
        } else {
            c.is_ascii_hexdigit()
        }
    });
    shape && !chars.get(at + 36).is_some_and(|c| is_word_char(*c))
}

/// The end of a date (`yyyy-mm-dd`) or date-time (`yyyy-mm-ddThh:mm[:ss[.fffffff]][Z|±hh:mm]`)
/// at `at`, not followed by a word character.
fn datetime_at(chars: &[char], at: usize) -> Option<usize> {
    let _year = digits(chars, at, 4)?;
    let month = (chars.get(at + 4) == Some(&'-')).then(|| digits(chars, at + 5, 2))??;
    let day = (chars.get(at + 7) == Some(&'-')).then(|| digits(chars, at + 8, 2))??;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut end = at + 10;
    if chars.get(end) == Some(&'T') {
        let hour = digits(chars, end + 1, 2)?;
        let minute = (chars.get(end + 3) == Some(&':')).then(|| digits(chars, end + 4, 2))??;
        if hour > 23 || minute > 59 {
            return None;
        }
        end += 6;
        if chars.get(end) == Some(&':') {
            let second = digits(chars, end + 1, 2)?;
            if second > 59 {
                return None;
            }
            end += 3;
            if chars.get(end) == Some(&'.') {
                let fraction = chars
                    .get(end + 1..)
                    .unwrap_or(&[])
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                if !(1..=9).contains(&fraction) {
                    return None;
                }
                end += 1 + fraction;
            }
        }
        match chars.get(end) {
            Some('Z') => end += 1,
            Some('+' | '-') => {
                let hours = digits(chars, end + 1, 2)?;
                let minutes =
                    (chars.get(end + 3) == Some(&':')).then(|| digits(chars, end + 4, 2))??;
                if hours > 23 || minutes > 59 {
                    return None;
                }
                end += 6;
            }
            _ => {}
        }
    }
    if chars.get(end).is_some_and(|c| is_word_char(*c)) {
        return None;
    }
    Some(end)
}

/// A number at `at` (`-?digits[.digits][e[±]digits]`): its end and value.
fn number_at(chars: &[char], at: usize, part: &str) -> Result<(usize, ParamValue), ODataError> {
    let mut end = at;
    if chars.get(end) == Some(&'-') {
        end += 1;
    }
    let count = |from: usize| {
        chars
            .get(from..)
            .unwrap_or(&[])
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let whole = count(end);
    end += whole;
    let mut integer = true;
    if chars.get(end) == Some(&'.') && chars.get(end + 1).is_some_and(char::is_ascii_digit) {
        integer = false;
        end += 1 + count(end + 1);
    }
    if matches!(chars.get(end), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(end + 1), Some('+' | '-')));
        let exponent = count(end + 1 + sign);
        if exponent > 0 {
            integer = false;
            end += 1 + sign + exponent;
        }
    }
    let word_end = end
        + chars[end..]
            .iter()
            .take_while(|c| is_word_char(**c))
            .count();
    let word: String = chars[at..word_end].iter().collect();
    let bad = || {
        ODataError::syntax(
            part,
            at,
            format!("`{word}` is not a number, a date or a GUID"),
        )
    };
    if word_end != end || whole == 0 {
        return Err(bad());
    }
    if integer && let Ok(i) = word.parse::<i64>() {
        return Ok((end, ParamValue::Int(i)));
    }
    match word.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok((end, ParamValue::Decimal(x))),
        _ => Err(bad()),
    }
}

/// A `'text'` literal starting at `at` (the opening quote): its end and text.
fn text_at(chars: &[char], at: usize, part: &str) -> Result<(usize, String), ODataError> {
    let mut s = String::new();
    let mut i = at + 1;
    loop {
        match chars.get(i) {
            None => return Err(ODataError::syntax(part, at, "unterminated text literal")),
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                s.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((i + 1, s)),
            Some(c) => {
                s.push(*c);
                i += 1;
            }
        }
    }
}

/// A `"text"` literal with JSON escapes starting at `at`: its end and text.
fn quoted_at(chars: &[char], at: usize, part: &str) -> Result<(usize, String), ODataError> {
    let mut s = String::new();
    let mut i = at + 1;
    loop {
        match chars.get(i) {
            None => return Err(ODataError::syntax(part, at, "unterminated text literal")),
            Some('"') => return Ok((i + 1, s)),
            Some('\\') => {
                let escaped = match chars.get(i + 1) {
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some('/') => '/',
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('u') => {
                        let hex: String = chars.get(i + 2..i + 6).unwrap_or(&[]).iter().collect();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                ODataError::syntax(part, i, "a bad `\\u` escape in a text literal")
                            })?;
                        s.push(c);
                        i += 6;
                        continue;
                    }
                    _ => {
                        return Err(ODataError::syntax(
                            part,
                            i,
                            "a bad `\\` escape in a text literal",
                        ));
                    }
                };
                s.push(escaped);
                i += 2;
            }
            Some(c) => {
                s.push(*c);
                i += 1;
            }
        }
    }
}

/// The tokens of `chars`, each with its 0-based character position; `part` names the text in
/// errors.
pub(crate) fn tokenize(chars: &[char], part: &str) -> Result<Vec<(usize, Token)>, ODataError> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let start = i;
        let punctuation = match c {
            ' ' | '\t' | '\r' | '\n' => {
                i += 1;
                continue;
            }
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            ',' => Some(Token::Comma),
            '=' => Some(Token::Equals),
            '[' => Some(Token::OpenBracket),
            ']' => Some(Token::CloseBracket),
            _ => None,
        };
        if let Some(token) = punctuation {
            out.push((start, token));
            i += 1;
            continue;
        }
        let token = if c == '\'' {
            let (end, s) = text_at(chars, i, part)?;
            i = end;
            Token::Literal(ParamValue::Text(s))
        } else if c == '"' {
            let (end, s) = quoted_at(chars, i, part)?;
            i = end;
            Token::Quoted(s)
        } else if c == '@' {
            let len = chars[i + 1..]
                .iter()
                .take_while(|c| is_name_char(**c))
                .count();
            if len == 0 || !chars.get(i + 1).is_some_and(|c| is_name_start(*c)) {
                return Err(ODataError::syntax(
                    part,
                    start,
                    "expected a parameter alias name after `@`",
                ));
            }
            i += 1 + len;
            Token::Alias(chars[start..i].iter().collect())
        } else if guid_at(chars, i) {
            i += 36;
            let guid: String = chars[start..i].iter().collect();
            Token::Literal(ParamValue::Guid(guid.to_ascii_lowercase()))
        } else if let Some(end) = datetime_at(chars, i) {
            i = end;
            Token::Literal(ParamValue::DateTime(chars[start..i].iter().collect()))
        } else if c.is_ascii_digit() || c == '-' {
            let (end, value) = number_at(chars, i, part)?;
            i = end;
            Token::Literal(value)
        } else if is_name_start(c) {
            let len = chars[i..]
                .iter()
                .take_while(|c| is_name_char(**c) || **c == '.')
                .count();
            i += len;
            let name: String = chars[start..i].iter().collect();
            if chars.get(i) == Some(&'\'') && name.contains('.') {
                let (end, value) = text_at(chars, i, part)?;
                i = end;
                Token::Literal(ParamValue::Enum {
                    type_name: name,
                    value,
                })
            } else {
                Token::Ident(name)
            }
        } else {
            return Err(ODataError::syntax(part, start, format!("unexpected `{c}`")));
        };
        out.push((start, token));
    }
    Ok(out)
}

/// Whether `name` is a plain name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Whether `name` is a name, qualified or not: `[A-Za-z_][A-Za-z0-9_]*` joined by dots.
pub(crate) fn is_qualified_name(name: &str) -> bool {
    name.split('.').all(is_plain_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(text: &str) -> Result<Vec<Token>, ODataError> {
        let chars: Vec<char> = text.chars().collect();
        Ok(tokenize(&chars, "t")?.into_iter().map(|(_, t)| t).collect())
    }

    fn lit(v: ParamValue) -> Token {
        Token::Literal(v)
    }

    #[test]
    fn literals_lex_as_dataverse_clients_write_them() -> Result<(), ODataError> {
        assert_eq!(
            lex("'O''Neil' -3 4.5 1e3 9223372036854775808 null @p1")?,
            vec![
                lit(ParamValue::Text("O'Neil".into())),
                lit(ParamValue::Int(-3)),
                lit(ParamValue::Decimal(4.5)),
                lit(ParamValue::Decimal(1000.0)),
                lit(ParamValue::Decimal(9_223_372_036_854_775_808.0)),
                Token::Ident("null".into()),
                Token::Alias("@p1".into()),
            ]
        );
        assert_eq!(
            lex("00000000-0000-0000-0000-00000000000A ABCDEF01-2345-6789-abcd-ef0123456789")?,
            vec![
                lit(ParamValue::Guid(
                    "00000000-0000-0000-0000-00000000000a".into()
                )),
                lit(ParamValue::Guid(
                    "abcdef01-2345-6789-abcd-ef0123456789".into()
                )),
            ]
        );
        assert_eq!(
            lex(
                "2024-01-01 2024-01-01T00:00:00Z 2024-02-29T23:59:59.1234567+01:00 2024-01-01T10:30"
            )?,
            vec![
                lit(ParamValue::DateTime("2024-01-01".into())),
                lit(ParamValue::DateTime("2024-01-01T00:00:00Z".into())),
                lit(ParamValue::DateTime(
                    "2024-02-29T23:59:59.1234567+01:00".into()
                )),
                lit(ParamValue::DateTime("2024-01-01T10:30".into())),
            ]
        );
        assert_eq!(
            lex("Microsoft.Dynamics.CRM.EntityFilters'Entity,Attributes'")?,
            vec![lit(ParamValue::Enum {
                type_name: "Microsoft.Dynamics.CRM.EntityFilters".into(),
                value: "Entity,Attributes".into()
            })]
        );
        assert_eq!(
            lex(r#"["a\"b","\u00e9"]"#)?,
            vec![
                Token::OpenBracket,
                Token::Quoted("a\"b".into()),
                Token::Comma,
                Token::Quoted("é".into()),
                Token::CloseBracket
            ]
        );
        Ok(())
    }

    #[test]
    fn malformed_literals_name_their_position() {
        let at = |text: &str| lex(text).err().map(|e| e.to_string());
        assert_eq!(
            at("a eq 'open"),
            Some("`t` at character 5: unterminated text literal".into())
        );
        assert_eq!(
            at("x 2024-13-01"),
            Some("`t` at character 2: `2024-13-01` is not a number, a date or a GUID".into())
        );
        assert_eq!(
            at("12ab"),
            Some("`t` at character 0: `12ab` is not a number, a date or a GUID".into())
        );
        assert_eq!(
            at("0000000-0000-0000-0000-000000000000"),
            Some(
                "`t` at character 0: `0000000-0000-0000-0000-000000000000` is not a number, a date or a GUID"
                    .into()
            )
        );
        assert!(at("- 1").is_some());
        assert!(at("1e999").is_some());
        assert!(at("@ x").is_some());
        assert!(at("a ; b").is_some_and(|m| m.contains("unexpected `;`")));
        assert!(at(r#""\x""#).is_some());
        assert!(at(r#""\u12""#).is_some());
    }

    #[test]
    fn alias_values_parse_as_literals_or_json() -> Result<(), ODataError> {
        assert_eq!(
            ParamValue::parse("'Contoso'", "@p1")?,
            ParamValue::Text("Contoso".into())
        );
        assert_eq!(ParamValue::parse("true", "@p1")?, ParamValue::Bool(true));
        assert_eq!(ParamValue::parse(" 42 ", "@p1")?, ParamValue::Int(42));
        assert_eq!(
            ParamValue::parse(r#"{"@odata.id":"accounts(1)"}"#, "@p1")?,
            ParamValue::Json(serde_json::json!({"@odata.id": "accounts(1)"}))
        );
        assert_eq!(
            ParamValue::parse(r#"["a","b"]"#, "@p1")?,
            ParamValue::Json(serde_json::json!(["a", "b"]))
        );
        let e = ParamValue::parse("{\"a\":", "@p2").err();
        assert_eq!(e.as_ref().map(ODataError::code), Some("odata_syntax"));
        assert!(e.is_some_and(|e| e.to_string().starts_with("`@p2`")));
        assert!(ParamValue::parse("", "@p1").is_err());
        assert!(
            ParamValue::parse("'a' 'b'", "@p1")
                .is_err_and(|e| e.to_string().contains("character 4"))
        );
        assert!(ParamValue::parse("name", "@p1").is_err());
        assert!(ParamValue::parse("@p2", "@p1").is_err());
        Ok(())
    }

    #[test]
    fn values_convert_for_filters() {
        assert_eq!(
            ParamValue::Guid("ab".into()).to_value(),
            Some(Value::Text("ab".into()))
        );
        assert_eq!(ParamValue::Decimal(1.5).to_value(), Some(Value::Float(1.5)));
        assert_eq!(ParamValue::Json(serde_json::Value::Null).to_value(), None);
        assert!(is_plain_name("_parentcustomerid_value"));
        assert!(!is_plain_name("a.b"));
        assert!(is_qualified_name("Microsoft.Dynamics.CRM.In"));
        assert!(!is_qualified_name("a..b"));
        assert!(!is_qualified_name(""));
    }
}
