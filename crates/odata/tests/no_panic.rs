//! No input makes a parser panic or recurse without bound: random bytes, and random strings
//! built from the languages' own tokens (which reach far deeper than bytes do).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use strata_odata::{
    Aliases, FetchContext, ParamValue, parse_apply, parse_batch, parse_fetch, parse_filter,
    parse_path, parse_query, parse_request_target, split_url,
};

/// Runs every text parser on `text`.
fn every_parser(text: &str) {
    let mut aliases = Aliases::new();
    aliases.insert("@p1".into(), ParamValue::Text("x".into()));
    aliases.insert(
        "@p2".into(),
        ParamValue::Json(serde_json::json!(["a", 1, {"b": 2}])),
    );
    let _ = parse_filter(text, &aliases);
    let _ = parse_apply(text, &aliases);
    let _ = parse_path(text, &aliases);
    let _ = parse_query(text);
    let _ = split_url(text);
    let _ = parse_request_target(text);
    let _ = ParamValue::parse(text, "@p");
    let _ = parse_batch(text, text.as_bytes());
    let lookups = |_: &str, n: &str| n == "ownerid";
    let _ = parse_fetch(
        text,
        &FetchContext {
            is_lookup: &lookups,
            user: "u",
            business_unit: "b",
            today: strata_odata::date::Date {
                year: 2026,
                month: 12,
                day: 7,
            },
        },
    );
}

/// Pieces of filters, paths, queries and batches.
const PIECES: &[&str] = &[
    " ",
    "(",
    ")",
    ",",
    "'",
    "''",
    "\"",
    "=",
    "[",
    "]",
    "/",
    "?",
    "&",
    ";",
    "@p1",
    "@p2",
    "$",
    "%",
    "%2",
    "%27",
    "%FF",
    "+",
    "-",
    ".",
    "0",
    "-1",
    "1.5e3",
    "e",
    "not ",
    " and ",
    " or ",
    " eq ",
    " gt ",
    "null",
    "true",
    "name",
    "contains(",
    "endswith(",
    "startswith(",
    "Microsoft.Dynamics.CRM.In(",
    "Microsoft.Dynamics.CRM.X'",
    "PropertyName=",
    "PropertyValues=",
    "00000000-0000-0000-0000-000000000001",
    "2024-01-01",
    "T00:00:00Z",
    "+01:00",
    "$filter=",
    "$select=",
    "$expand=",
    "$orderby=",
    "$top=",
    "$count=",
    "$skip=",
    "$ref",
    "$count",
    "$1",
    "$metadata",
    "accounts",
    "(LogicalName='a')",
    "WhoAmI()",
    "/api/data/v9.2/",
    "http://h",
    "--b",
    "--b--",
    "\r\n",
    "\n",
    "Content-Type: application/http",
    "Content-Type: multipart/mixed;boundary=b",
    "multipart/mixed;boundary=b",
    "GET ",
    "POST ",
    " HTTP/1.1",
    "Content-ID: 1",
    "Content-Length: 3",
    "{",
    "}",
    ":",
    "\\",
    "\\u00",
    "é",
    "\u{10000}",
    "<fetch>",
    "</fetch>",
    "<entity name='account'>",
    "</entity>",
    "<filter type='or'>",
    "</filter>",
    "<condition attribute='name' operator='in'>",
    "<condition attribute='ownerid' operator='eq-userid'/>",
    "</condition>",
    "<value>",
    "</value>",
    "<attribute name='name'/>",
    "<order attribute='name' descending='true'/>",
    "<link-entity name='contact' from='contactid' to='primarycontactid' alias='pc'>",
    "</link-entity>",
    "&amp;",
    "&#x10FFFF;",
    "<!DOCTYPE x>",
    "filter(",
    "groupby((",
    "aggregate(",
    "name",
    " with sum as ",
    " with countdistinct as ",
    "$count as n",
    "$apply=",
    "<fetch aggregate='true'>",
    "<attribute name='revenue' aggregate='sum' alias='s'/>",
    "<attribute name='ownerid' groupby='true' dategrouping='week'/>",
    "<attribute name='name' aggregate='countcolumn' distinct='true' alias='d'/>",
    "<order alias='s'/>",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        every_parser(&text);
        let _ = parse_batch("multipart/mixed;boundary=b", &bytes);
    }

    #[test]
    fn random_strings_never_panic(text in "\\PC{0,200}") {
        every_parser(&text);
    }

    #[test]
    fn token_soup_never_panics(text in token_soup()) {
        every_parser(&text);
        let _ = parse_batch("multipart/mixed;boundary=b", text.as_bytes());
        let _ = parse_query(&format!("$filter={text}"));
        let _ = parse_query(&format!("$expand=a({text})"));
        let _ = parse_request_target(&format!("/api/data/v9.2/accounts({text})?@p1={text}"));
    }

    /// Batches shaped like real ones, with random parts spliced in.
    #[test]
    fn batch_soup_never_panics(parts in prop::collection::vec(token_soup(), 0..8)) {
        let mut body = String::new();
        for part in &parts {
            body.push_str("--b\r\nContent-Type: application/http\r\n\r\n");
            body.push_str(part);
            body.push_str("\r\n");
        }
        body.push_str("--b--\r\n");
        let _ = parse_batch("multipart/mixed;boundary=b", body.as_bytes());
        let nested = format!("--b\r\nContent-Type: multipart/mixed;boundary=c\r\n\r\n{}\r\n--b--", body.replace("--b", "--c"));
        let _ = parse_batch("multipart/mixed;boundary=b", nested.as_bytes());
    }
}

/// Every string of up to three pieces, exhaustively.
#[test]
fn every_short_combination_never_panics() {
    for a in PIECES {
        for b in PIECES {
            every_parser(&format!("{a}{b}"));
            for c in ["(", ")", "'", "%", "$", "@p1", "-", "\n"] {
                every_parser(&format!("{a}{b}{c}"));
            }
        }
    }
}

/// Deep nesting in every language is refused, not recursed into.
#[test]
fn deep_nesting_is_an_error() {
    let aliases = Aliases::new();
    for depth in [33, 1_000, 10_000, 100_000] {
        let parens = format!("{}a eq 1{}", "(".repeat(depth), ")".repeat(depth));
        assert!(parse_filter(&parens, &aliases).is_err());
        let nots = format!("{}a eq 1", "not ".repeat(depth));
        assert!(parse_filter(&nots, &aliases).is_err());
        let expand = format!(
            "$expand={}{}",
            "a($expand=".repeat(depth),
            ")".repeat(depth)
        );
        assert!(parse_query(&expand).is_err());
        // serde_json refuses JSON nested deeper than 128 levels.
        let json = format!("@p1={}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(parse_query(&json).is_err(), depth > 128);
        let path = format!("f({}", "(".repeat(depth));
        assert!(parse_path(&path, &aliases).is_err());
    }
    let nots = format!("{}a eq 1", "not ".repeat(20_000));
    assert!(parse_filter(&nots, &aliases).is_err_and(|e| e.code() == "odata_limit"));
    let parens = format!("{}a eq 1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse_filter(&parens, &aliases).is_err_and(|e| e.code() == "odata_limit"));
}
