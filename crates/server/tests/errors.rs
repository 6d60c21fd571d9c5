//! The one table of error codes (`strata_server::CODES`): every code the crates can produce is
//! in it with a status, and `docs/errors.md` says the same.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literal after each occurrence of `marker` (skipping whitespace).
fn literals_after(text: &str, marker: &str, out: &mut BTreeSet<String>) {
    for (i, _) in text.match_indices(marker) {
        let rest = text[i + marker.len()..].trim_start();
        if let Some(rest) = rest.strip_prefix('"')
            && let Some((code, _)) = rest.split_once('"')
            && !code.is_empty()
            && code.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            out.insert(code.to_owned());
        }
    }
}

#[test]
fn every_code_the_crates_produce_has_a_status() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in ["engine", "ops", "store", "app", "server"] {
        sources(&root.join(krate).join("src"), &mut files);
    }
    let mut produced = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for marker in [
            "ApiError::new(",
            "AppError::new(",
            "OpError::invalid(",
            "code: ",
            "bad(",
        ] {
            literals_after(&text, marker, &mut produced);
        }
        // `fn code(&self)` tables map variants to codes: `=> "code"` inside those functions.
        for (start, _) in text.match_indices("fn code(") {
            let body = &text[start..];
            let end = body.find("\n    }\n").unwrap_or(body.len());
            literals_after(&body[..end], "=> ", &mut produced);
        }
    }
    let table: BTreeSet<String> = strata_server::CODES
        .iter()
        .map(|(c, _, _)| (*c).to_owned())
        .collect();
    assert_eq!(
        table.len(),
        strata_server::CODES.len(),
        "a code twice in CODES"
    );
    assert!(produced.len() > 40, "parsed too few codes: {produced:?}");
    let missing: Vec<_> = produced.difference(&table).collect();
    assert!(
        missing.is_empty(),
        "codes without a status in CODES: {missing:?}"
    );
}

#[test]
fn the_documented_table_is_the_table() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md"),
    )
    .unwrap();
    let rows: Vec<(String, u16)> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .map(|l| {
            let (code, rest) = l.split_once("` | ").unwrap();
            let status = rest.split(" | ").next().unwrap().parse().unwrap();
            (code.to_owned(), status)
        })
        .collect();
    let table: Vec<(String, u16)> = strata_server::CODES
        .iter()
        .map(|(c, s, _)| ((*c).to_owned(), *s))
        .collect();
    assert_eq!(rows, table, "docs/errors.md differs from CODES");
}
