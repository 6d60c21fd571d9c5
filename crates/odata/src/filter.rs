//! `$filter` text into the engine's [`Filter`].
//!
//! ```text
//! contains(name,'Con') and (createdon ge 2024-01-01T00:00:00Z or not statecode eq 1)
//! Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['a','b'])
//! _parentcustomerid_value eq 00000000-0000-0000-0000-000000000001
//! ```
//!
//! Comparisons `eq ne gt ge lt le` of a column with a literal; `contains`, `startswith`,
//! `endswith`; `Microsoft.Dynamics.CRM.In` and `Microsoft.Dynamics.CRM.NotIn`; the date query
//! functions (`Microsoft.Dynamics.CRM.Today(PropertyName='x')`, `…LastXDays(PropertyName='x',
//! PropertyValue=7)`, `…OnOrAfter`, …: the days FetchXML's date operators keep, D164); `and`, `or`,
//! `not` and parentheses. Precedence as in OData: a comparison binds tightest, then `not`,
//! `and`, `or`. GUIDs become lowercase text and dates their text as written; lookup columns
//! (`_parentcustomerid_value`) keep the name given, for the server to map. Parameter aliases
//! (`name eq @p1`) take their value from the query. Every limit is an error naming it, never a
//! crash: [`MAX_FILTER_CHARS`], [`MAX_FILTER_DEPTH`], [`MAX_FILTER_TERMS`], [`MAX_IN_VALUES`].

use serde_json::Value as Json;
use strata_engine::{CompareOp, Filter, Value};

use crate::date::{Date, Days};
use crate::lex::{ParamValue, Token, is_plain_name, literal_of, tokenize};
use crate::{
    Aliases, MAX_FILTER_CHARS, MAX_FILTER_DEPTH, MAX_FILTER_TERMS, MAX_IN_VALUES, ODataError,
};

/// The part name in errors.
const PART: &str = "$filter";

/// Parses `$filter` text (already decoded); `aliases` holds the query's parameter aliases.
/// The date query functions (`Microsoft.Dynamics.CRM.LastXDays`, …) count from today in UTC.
pub fn parse_filter(text: &str, aliases: &Aliases) -> Result<Filter, ODataError> {
    parse_filter_on(text, aliases, Date::today())
}

/// [`parse_filter`], the date query functions counting from `today`.
pub fn parse_filter_on(text: &str, aliases: &Aliases, today: Date) -> Result<Filter, ODataError> {
    let end = text.chars().count();
    if end > MAX_FILTER_CHARS {
        return Err(ODataError::limit(
            PART,
            MAX_FILTER_CHARS,
            format!("the filter is longer than {MAX_FILTER_CHARS} characters"),
        ));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser {
        tokens: tokenize(&chars, PART)?,
        at: 0,
        end,
        depth: 0,
        terms: 0,
        aliases,
        today,
    };
    if p.tokens.is_empty() {
        return Err(p.syntax("the filter is empty"));
    }
    let filter = p.or()?;
    if p.at < p.tokens.len() {
        return Err(p.syntax("unexpected text after the filter (expected `and`, `or` or `)`)"));
    }
    Ok(filter)
}

struct Parser<'a> {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
    /// Nesting of parentheses and `not` at this point.
    depth: usize,
    /// Comparisons read so far.
    terms: usize,
    aliases: &'a Aliases,
    /// Today, for the date query functions (D164).
    today: Date,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.at + ahead).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(p, _)| *p)
    }

    fn syntax(&self, message: impl Into<String>) -> ODataError {
        ODataError::syntax(PART, self.position(), message)
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token, what: &str) -> Result<(), ODataError> {
        if self.peek() == Some(token) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.syntax(format!("expected {what}")))
        }
    }

    fn column(&mut self) -> Result<String, ODataError> {
        match self.peek() {
            Some(Token::Ident(w)) if is_plain_name(w) => {
                let w = w.clone();
                self.at += 1;
                Ok(w)
            }
            Some(Token::Ident(w)) => Err(self.syntax(format!("`{w}` is not a column name"))),
            _ => Err(self.syntax("expected a column name")),
        }
    }

    /// A literal or a parameter alias, as a parameter value.
    fn param(&mut self, what: &str) -> Result<ParamValue, ODataError> {
        let value = match self.peek() {
            Some(Token::Alias(name)) => match self.aliases.get(name) {
                Some(v) => v.clone(),
                None => {
                    return Err(self.syntax(format!(
                        "the parameter alias `{name}` has no value in the query"
                    )));
                }
            },
            Some(token) => match literal_of(token) {
                Some(v) => v,
                None => return Err(self.syntax(format!("expected {what}"))),
            },
            None => return Err(self.syntax(format!("expected {what}"))),
        };
        self.at += 1;
        Ok(value)
    }

    /// A value to compare a column with.
    fn value(&mut self) -> Result<Value, ODataError> {
        const WHAT: &str = "a value ('text', a number, a GUID, a date, true, false or null)";
        let position = self.position();
        let param = self.param(WHAT)?;
        param
            .to_value()
            .ok_or_else(|| ODataError::syntax(PART, position, format!("expected {WHAT}")))
    }

    fn text(&mut self) -> Result<String, ODataError> {
        let position = self.position();
        match self.param("a 'text' literal")? {
            ParamValue::Text(s) => Ok(s),
            _ => Err(ODataError::syntax(
                PART,
                position,
                "expected a 'text' literal",
            )),
        }
    }

    fn or(&mut self) -> Result<Filter, ODataError> {
        let mut list = vec![self.and()?];
        while self.keyword("or") {
            list.push(self.and()?);
        }
        Ok(if list.len() == 1 {
            list.remove(0)
        } else {
            Filter::Or(list)
        })
    }

    fn and(&mut self) -> Result<Filter, ODataError> {
        let mut list = vec![self.not()?];
        while self.keyword("and") {
            list.push(self.not()?);
        }
        Ok(if list.len() == 1 {
            list.remove(0)
        } else {
            Filter::And(list)
        })
    }

    /// Goes one level deeper, refusing past [`MAX_FILTER_DEPTH`].
    fn descend(&mut self) -> Result<(), ODataError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(ODataError::limit(
                PART,
                self.position(),
                format!(
                    "the filter nests deeper than {MAX_FILTER_DEPTH} levels of parentheses and `not`"
                ),
            ));
        }
        Ok(())
    }

    /// Counts a comparison, refusing past [`MAX_FILTER_TERMS`].
    fn term(&mut self) -> Result<(), ODataError> {
        self.terms += 1;
        if self.terms > MAX_FILTER_TERMS {
            return Err(ODataError::limit(
                PART,
                self.position(),
                format!("the filter has more than {MAX_FILTER_TERMS} comparisons"),
            ));
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Filter, ODataError> {
        if matches!(self.peek(), Some(Token::Ident(w)) if w.eq_ignore_ascii_case("not"))
            && self.peek_at(1).is_some_and(|t| {
                !matches!(t, Token::Ident(w) if ["eq", "ne", "gt", "ge", "lt", "le"]
                    .iter()
                    .any(|op| w.eq_ignore_ascii_case(op)))
            })
        {
            self.at += 1;
            self.descend()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Filter, ODataError> {
        if self.peek() == Some(&Token::Open) {
            self.descend()?;
            self.at += 1;
            let inner = self.or()?;
            self.expect(&Token::Close, "`)`")?;
            self.depth -= 1;
            return Ok(inner);
        }
        if let (Some(Token::Ident(name)), Some(Token::Open)) = (self.peek(), self.peek_at(1)) {
            let name = name.clone();
            return self.function(&name);
        }
        self.term()?;
        let column = self.column()?;
        let op = match self.peek() {
            Some(Token::Ident(w)) => match w.to_ascii_lowercase().as_str() {
                "eq" => CompareOp::Eq,
                "ne" => CompareOp::Ne,
                "lt" => CompareOp::Lt,
                "le" => CompareOp::Le,
                "gt" => CompareOp::Gt,
                "ge" => CompareOp::Ge,
                _ => {
                    return Err(self.syntax(format!("unknown operator `{w}` (eq ne gt ge lt le)")));
                }
            },
            _ => return Err(self.syntax("expected an operator (eq ne gt ge lt le)")),
        };
        self.at += 1;
        let position = self.position();
        let value = self.value()?;
        if !matches!(op, CompareOp::Eq | CompareOp::Ne)
            && matches!(value, Value::Null | Value::Bool(_))
        {
            return Err(ODataError::syntax(
                PART,
                position,
                format!(
                    "`{}` needs a number, a text or a date, not `{value}`",
                    format!("{op:?}").to_lowercase()
                ),
            ));
        }
        Ok(Filter::Compare { column, op, value })
    }

    /// A function call: `contains(col,'x')`, `Microsoft.Dynamics.CRM.In(…)`, ….
    fn function(&mut self, name: &str) -> Result<Filter, ODataError> {
        let position = self.position();
        let lower = name.to_ascii_lowercase();
        match lower.as_str() {
            "contains" | "startswith" | "endswith" => {
                self.term()?;
                self.at += 2;
                let column = self.column()?;
                self.expect(&Token::Comma, "`,`")?;
                let text = self.text()?;
                self.expect(&Token::Close, "`)`")?;
                Ok(match lower.as_str() {
                    "contains" => Filter::Contains { column, text },
                    "startswith" => Filter::StartsWith { column, text },
                    _ => Filter::EndsWith { column, text },
                })
            }
            "microsoft.dynamics.crm.in" | "microsoft.dynamics.crm.notin" => {
                self.term()?;
                self.at += 2;
                let filter = self.property_values()?;
                Ok(if lower.ends_with("notin") {
                    Filter::Not(Box::new(filter))
                } else {
                    filter
                })
            }
            other => match Days::operator_of_function(other) {
                Some(operator) => {
                    self.at += 2;
                    self.date_function(operator, position)
                }
                None => Err(ODataError::UnknownFunction {
                    part: PART.to_owned(),
                    position,
                    name: name.to_owned(),
                }),
            },
        }
    }

    /// A date query function's `PropertyName='col'` and `PropertyValue=…` (either order) and
    /// its `)`, as the days it keeps (D164).
    fn date_function(&mut self, operator: &str, position: usize) -> Result<Filter, ODataError> {
        let (column, value) = self.property_params("PropertyValue", |p| {
            Ok(match p.value()? {
                Value::Text(t) => t,
                other => other.to_string(),
            })
        })?;
        let column =
            column.ok_or_else(|| self.syntax("a date query function needs `PropertyName`"))?;
        let days = Days::of(operator, value.as_deref(), self.today)
            .map_err(|m| ODataError::syntax(PART, position, m))?
            .ok_or_else(|| self.syntax("not a date query function"))?;
        for _ in 0..days.terms() {
            self.term()?;
        }
        Ok(days.filter(&column))
    }

    /// A query function's `PropertyName='col'` and one other named parameter, `other`, read
    /// by `read` (either order, each at most once), and its `)`.
    fn property_params<T>(
        &mut self,
        other: &str,
        mut read: impl FnMut(&mut Self) -> Result<T, ODataError>,
    ) -> Result<(Option<String>, Option<T>), ODataError> {
        let mut column = None;
        let mut value = None;
        loop {
            let position = self.position();
            let name = match self.peek() {
                Some(Token::Ident(w)) => w.clone(),
                _ => return Err(self.syntax(format!("expected `PropertyName=` or `{other}=`"))),
            };
            self.at += 1;
            self.expect(&Token::Equals, "`=`")?;
            if name.eq_ignore_ascii_case("PropertyName") && column.is_none() {
                let text_at = self.position();
                let text = self.text()?;
                if !is_plain_name(&text) {
                    return Err(ODataError::syntax(
                        PART,
                        text_at,
                        format!("`{text}` is not a column name"),
                    ));
                }
                column = Some(text);
            } else if name.eq_ignore_ascii_case(other) && value.is_none() {
                value = Some(read(self)?);
            } else {
                return Err(ODataError::syntax(
                    PART,
                    position,
                    format!("unexpected parameter `{name}` (PropertyName, {other})"),
                ));
            }
            if self.peek() == Some(&Token::Comma) {
                self.at += 1;
                continue;
            }
            self.expect(&Token::Close, "`,` or `)`")?;
            return Ok((column, value));
        }
    }

    /// `PropertyName='col',PropertyValues=['a','b'])` (either order; the values also
    /// double-quoted or numbers, or a parameter alias holding a JSON array).
    fn property_values(&mut self) -> Result<Filter, ODataError> {
        let (column, values) = self.property_params("PropertyValues", Self::value_list)?;
        match (column, values) {
            (Some(column), Some(values)) => Ok(Filter::In { column, values }),
            _ => Err(self.syntax("`In` needs both `PropertyName` and `PropertyValues`")),
        }
    }

    /// `['a','b',…]` or `["a","b"]` or a parameter alias holding a JSON array.
    fn value_list(&mut self) -> Result<Vec<Value>, ODataError> {
        let too_many = |p: &Self| {
            ODataError::limit(
                PART,
                p.position(),
                format!("`In` takes at most {MAX_IN_VALUES} values"),
            )
        };
        if let Some(Token::Alias(name)) = self.peek() {
            let position = self.position();
            let Some(ParamValue::Json(Json::Array(items))) = self.aliases.get(name) else {
                return Err(self.syntax(format!(
                    "the parameter alias `{name}` does not hold a JSON array of values"
                )));
            };
            if items.len() > MAX_IN_VALUES {
                return Err(too_many(self));
            }
            let values = items
                .iter()
                .map(json_value)
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    ODataError::syntax(
                        PART,
                        position,
                        "`PropertyValues` takes at least one text, number, true, false or null",
                    )
                })?;
            self.at += 1;
            return Ok(values);
        }
        self.expect(&Token::OpenBracket, "`[`")?;
        let mut values = Vec::new();
        loop {
            if values.len() == MAX_IN_VALUES {
                return Err(too_many(self));
            }
            if let Some(Token::Quoted(s)) = self.peek() {
                values.push(Value::Text(s.clone()));
                self.at += 1;
            } else {
                values.push(self.value()?);
            }
            match self.peek() {
                Some(Token::Comma) => self.at += 1,
                Some(Token::CloseBracket) => {
                    self.at += 1;
                    return Ok(values);
                }
                _ => return Err(self.syntax("expected `,` or `]`")),
            }
        }
    }
}

/// A JSON scalar as a value.
fn json_value(json: &Json) -> Option<Value> {
    Some(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64()?),
        },
        Json::String(s) => Value::Text(s.clone()),
        Json::Array(_) | Json::Object(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Filter, ODataError> {
        parse_filter(text, &Aliases::new())
    }

    fn cmp(column: &str, op: CompareOp, value: Value) -> Filter {
        Filter::Compare {
            column: column.into(),
            op,
            value,
        }
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn comparisons_and_literals() -> Result<(), ODataError> {
        let cases = [
            (
                "name eq 'Contoso'",
                cmp("name", CompareOp::Eq, text("Contoso")),
            ),
            (
                "name ne 'O''Neil'",
                cmp("name", CompareOp::Ne, text("O'Neil")),
            ),
            (
                "revenue gt 1000",
                cmp("revenue", CompareOp::Gt, Value::Int(1000)),
            ),
            (
                "revenue ge -2.5",
                cmp("revenue", CompareOp::Ge, Value::Float(-2.5)),
            ),
            (
                "revenue lt -7",
                cmp("revenue", CompareOp::Lt, Value::Int(-7)),
            ),
            (
                "revenue le 1.5e2",
                cmp("revenue", CompareOp::Le, Value::Float(150.0)),
            ),
            ("phone eq null", cmp("phone", CompareOp::Eq, Value::Null)),
            (
                "donotemail eq true",
                cmp("donotemail", CompareOp::Eq, Value::Bool(true)),
            ),
            (
                "donotemail ne false",
                cmp("donotemail", CompareOp::Ne, Value::Bool(false)),
            ),
            (
                "_parentcustomerid_value eq 00000000-0000-0000-0000-00000000ABCD",
                cmp(
                    "_parentcustomerid_value",
                    CompareOp::Eq,
                    text("00000000-0000-0000-0000-00000000abcd"),
                ),
            ),
            (
                "createdon ge 2024-01-01T00:00:00Z",
                cmp("createdon", CompareOp::Ge, text("2024-01-01T00:00:00Z")),
            ),
            (
                "birthdate lt 2024-01-01",
                cmp("birthdate", CompareOp::Lt, text("2024-01-01")),
            ),
            ("Name EQ 'x'", cmp("Name", CompareOp::Eq, text("x"))),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input)?, expected, "{input}");
        }
        Ok(())
    }

    #[test]
    fn date_functions_keep_the_days_of_fetchxml_operators() -> Result<(), ODataError> {
        // A Monday.
        let today = Date::parse("2026-12-07").unwrap_or(Date::from_days(0));
        let parse = |t: &str| parse_filter_on(t, &Aliases::new(), today);
        let within = |a: &str, b: &str| {
            let at = |op, v: &str| Filter::Compare {
                column: "closedate".into(),
                op,
                value: Value::Text(v.into()),
            };
            Filter::And(vec![at(CompareOp::Ge, a), at(CompareOp::Lt, b)])
        };
        for (text, expected) in [
            (
                "Microsoft.Dynamics.CRM.Today(PropertyName='closedate')",
                within("2026-12-07", "2026-12-08"),
            ),
            (
                "Microsoft.Dynamics.CRM.Last7Days(PropertyName='closedate')",
                within("2026-11-30", "2026-12-08"),
            ),
            (
                "Microsoft.Dynamics.CRM.ThisMonth(PropertyName='closedate')",
                within("2026-12-01", "2027-01-01"),
            ),
            (
                "Microsoft.Dynamics.CRM.LastXDays(PropertyName='closedate',PropertyValue=3)",
                within("2026-12-04", "2026-12-08"),
            ),
            (
                "Microsoft.Dynamics.CRM.NextXMonths(PropertyValue=1,PropertyName='closedate')",
                within("2026-12-07", "2027-01-08"),
            ),
            (
                "Microsoft.Dynamics.CRM.OlderThanXYears(PropertyName='closedate',PropertyValue=1)",
                within("0", "2025-12-07"),
            ),
            (
                "Microsoft.Dynamics.CRM.On(PropertyName='closedate',PropertyValue='2026-02-28')",
                within("2026-02-28", "2026-03-01"),
            ),
            (
                "Microsoft.Dynamics.CRM.OnOrAfter(PropertyName='closedate',PropertyValue=2026-02-28)",
                within("2026-02-28", ":"),
            ),
            (
                "microsoft.dynamics.crm.onorbefore(PropertyName='closedate',PropertyValue='2026-02-28T10:00:00Z')",
                within("0", "2026-03-01"),
            ),
        ] {
            assert_eq!(parse(text)?, expected, "{text}");
        }
        for text in [
            "Microsoft.Dynamics.CRM.Today(PropertyName='closedate',PropertyValue=1)",
            "Microsoft.Dynamics.CRM.LastXDays(PropertyName='closedate')",
            "Microsoft.Dynamics.CRM.LastXDays(PropertyName='closedate',PropertyValue=0)",
            "Microsoft.Dynamics.CRM.On(PropertyName='closedate',PropertyValue='soon')",
            "Microsoft.Dynamics.CRM.Today(PropertyValue=1)",
            "Microsoft.Dynamics.CRM.Today(PropertyName='a b')",
            "Microsoft.Dynamics.CRM.Today(Other='x')",
            "Microsoft.Dynamics.CRM.Today(PropertyName='x'",
        ] {
            assert_eq!(
                parse(text).map_err(|e| e.code()),
                Err("odata_syntax"),
                "{text}"
            );
        }
        Ok(())
    }

    #[test]
    fn functions() -> Result<(), ODataError> {
        assert_eq!(
            parse("contains(name,'Con')")?,
            Filter::Contains {
                column: "name".into(),
                text: "Con".into()
            }
        );
        assert_eq!(
            parse("startswith(name, 'A')")?,
            Filter::StartsWith {
                column: "name".into(),
                text: "A".into()
            }
        );
        assert_eq!(
            parse("endswith(emailaddress1,'@contoso.com')")?,
            Filter::EndsWith {
                column: "emailaddress1".into(),
                text: "@contoso.com".into()
            }
        );
        let in_filter = Filter::In {
            column: "name".into(),
            values: vec![text("a"), text("b")],
        };
        assert_eq!(
            parse("Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['a','b'])")?,
            in_filter
        );
        assert_eq!(
            parse(r#"Microsoft.Dynamics.CRM.In(PropertyValues=["a","b"], PropertyName='name')"#)?,
            in_filter
        );
        assert_eq!(
            parse("Microsoft.Dynamics.CRM.NotIn(PropertyName='name',PropertyValues=['a','b'])")?,
            Filter::Not(Box::new(in_filter))
        );
        assert_eq!(
            parse("Microsoft.Dynamics.CRM.In(PropertyName='statecode',PropertyValues=[0,1])")?,
            Filter::In {
                column: "statecode".into(),
                values: vec![Value::Int(0), Value::Int(1)]
            }
        );
        Ok(())
    }

    #[test]
    fn precedence_is_not_then_and_then_or() -> Result<(), ODataError> {
        let a = cmp("a", CompareOp::Eq, Value::Int(1));
        let b = cmp("b", CompareOp::Eq, Value::Int(2));
        let c = cmp("c", CompareOp::Eq, Value::Int(3));
        assert_eq!(
            parse("a eq 1 or b eq 2 and c eq 3")?,
            Filter::Or(vec![a.clone(), Filter::And(vec![b.clone(), c.clone()])])
        );
        assert_eq!(
            parse("(a eq 1 or b eq 2) and c eq 3")?,
            Filter::And(vec![Filter::Or(vec![a.clone(), b.clone()]), c.clone()])
        );
        assert_eq!(
            parse("not a eq 1 and b eq 2")?,
            Filter::And(vec![Filter::Not(Box::new(a.clone())), b.clone()])
        );
        assert_eq!(
            parse("not (a eq 1 or b eq 2)")?,
            Filter::Not(Box::new(Filter::Or(vec![a.clone(), b.clone()])))
        );
        assert_eq!(
            parse("not not a eq 1")?,
            Filter::Not(Box::new(Filter::Not(Box::new(a.clone()))))
        );
        assert_eq!(
            parse("not contains(name,'x')")?,
            Filter::Not(Box::new(Filter::Contains {
                column: "name".into(),
                text: "x".into()
            }))
        );
        // A column named `not` still compares.
        assert_eq!(parse("not eq 1")?, cmp("not", CompareOp::Eq, Value::Int(1)));
        Ok(())
    }

    #[test]
    fn aliases_supply_values() -> Result<(), ODataError> {
        let mut aliases = Aliases::new();
        aliases.insert("@p1".into(), ParamValue::Text("Contoso".into()));
        aliases.insert(
            "@p2".into(),
            ParamValue::Json(serde_json::json!(["a", 2, null])),
        );
        aliases.insert("@p3".into(), ParamValue::Json(serde_json::json!({"a": 1})));
        assert_eq!(
            parse_filter("name eq @p1", &aliases)?,
            cmp("name", CompareOp::Eq, text("Contoso"))
        );
        assert_eq!(
            parse_filter("contains(name,@p1)", &aliases)?,
            Filter::Contains {
                column: "name".into(),
                text: "Contoso".into()
            }
        );
        assert_eq!(
            parse_filter(
                "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=@p2)",
                &aliases
            )?,
            Filter::In {
                column: "name".into(),
                values: vec![text("a"), Value::Int(2), Value::Null]
            }
        );
        let err = |t: &str| parse_filter(t, &aliases).err().map(|e| e.to_string());
        assert_eq!(
            err("name eq @p9"),
            Some(
                "`$filter` at character 8: the parameter alias `@p9` has no value in the query"
                    .into()
            )
        );
        assert!(err("name eq @p3").is_some_and(|m| m.contains("character 8")));
        assert!(err("Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=@p1)").is_some());
        Ok(())
    }

    #[test]
    fn errors_name_the_position() {
        let at = |t: &str| parse(t).err().map(|e| (e.code(), e.to_string()));
        assert_eq!(
            at("name eq"),
            Some((
                "odata_syntax",
                "`$filter` at character 7: expected a value ('text', a number, a GUID, a date, true, false or null)".into()
            ))
        );
        assert_eq!(
            at("name equals 'x'"),
            Some((
                "odata_syntax",
                "`$filter` at character 5: unknown operator `equals` (eq ne gt ge lt le)".into()
            ))
        );
        assert_eq!(
            at("a eq 1 and tolower(name) eq 'x'"),
            Some((
                "odata_unknown_function",
                "`$filter` at character 11: unknown function `tolower`".into()
            ))
        );
        assert_eq!(
            at("Microsoft.Dynamics.CRM.LastXHours(PropertyName='createdon',PropertyValue=2)")
                .map(|e| e.0),
            Some("odata_unknown_function")
        );
        assert_eq!(
            at("(a eq 1").map(|e| e.1),
            Some("`$filter` at character 7: expected `)`".into())
        );
        assert_eq!(
            at("a eq 1 b eq 2").map(|e| e.1),
            Some(
                "`$filter` at character 7: unexpected text after the filter (expected `and`, `or` or `)`)"
                    .into()
            )
        );
        assert!(at("").is_some_and(|e| e.1.contains("empty")));
        assert!(at("   ").is_some_and(|e| e.1.contains("empty")));
        assert!(at("a gt null").is_some_and(|e| e.1.contains("character 5")));
        assert!(at("a lt true").is_some());
        assert!(at("a.b eq 1").is_some_and(|e| e.1.contains("not a column name")));
        assert!(at("primarycontactid/fullname eq 'x'").is_some_and(|e| e.1.contains("`/`")));
        assert!(at("a eq b").is_some());
        assert!(at("contains(name, 3)").is_some_and(|e| e.1.contains("character 15")));
        assert!(at("contains('x', name)").is_some());
        assert!(at("a eq Microsoft.Dynamics.CRM.X'y'").is_some());
        assert!(at("Microsoft.Dynamics.CRM.In(PropertyName='name')").is_some());
        assert!(at("Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyName='x')").is_some());
        assert!(at("Microsoft.Dynamics.CRM.In(PropertyName='a b',PropertyValues=[1])").is_some());
        assert!(at("Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=[])").is_some());
        assert!(at("Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=[1 2])").is_some());
        assert!(at("a eq 1 and").is_some());
        assert!(at("not").is_some());
        assert!(at("a eq 1)").is_some());
    }

    #[test]
    fn limits_are_errors_not_crashes() {
        let code = |t: &str| parse(t).err().map(|e| (e.code(), e.to_string()));
        let deep = format!("{}a eq 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(code(&deep).is_some_and(|e| e.0 == "odata_limit" && e.1.contains("8192")));
        let nots = format!("{}a eq 1", "not ".repeat(20_000));
        assert!(code(&nots).is_some_and(|e| e.0 == "odata_limit"));
        let deep = format!("{}a eq 1{}", "(".repeat(4_000), ")".repeat(4_000));
        assert!(
            code(&deep).is_some_and(|e| e.0 == "odata_limit" && e.1.contains("deeper than 32"))
        );
        let nots = format!("{}a eq 1", "not ".repeat(33));
        assert!(code(&nots).is_some_and(|e| e.1.contains("deeper than 32")));
        let ok = format!("{}a eq 1{}", "(".repeat(32), ")".repeat(32));
        assert!(parse(&ok).is_ok());
        let ok = format!("{}a eq 1", "not ".repeat(32));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}a eq 1{}", "(".repeat(33), ")".repeat(33));
        assert!(code(&deep).is_some_and(|e| e.1.contains("character 32")));
        let many = vec!["a eq 1"; 501].join(" or ");
        assert!(
            code(&many).is_some_and(|e| e.0 == "odata_limit" && e.1.contains("500 comparisons"))
        );
        let hundred = vec!["a eq 1"; 500].join(" and ");
        assert!(parse(&hundred).is_ok());
        let values = vec!["'v'"; 1_001].join(",");
        let too_many =
            format!("Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=[{values}])");
        assert!(code(&too_many).is_some_and(|e| e.0 == "odata_limit" && e.1.contains("1000")));
        let values = vec!["'v'"; 1_000].join(",");
        let enough =
            format!("Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=[{values}])");
        assert!(parse(&enough).is_ok());
        let long = format!("name eq '{}'", "x".repeat(MAX_FILTER_CHARS));
        assert!(code(&long).is_some_and(|e| e.0 == "odata_limit"));
        let mut aliases = Aliases::new();
        aliases.insert(
            "@p1".into(),
            ParamValue::Json(serde_json::Value::Array(vec![
                serde_json::Value::Null;
                1_001
            ])),
        );
        assert!(
            parse_filter(
                "Microsoft.Dynamics.CRM.In(PropertyName='a',PropertyValues=@p1)",
                &aliases
            )
            .is_err_and(|e| e.code() == "odata_limit")
        );
    }
}
