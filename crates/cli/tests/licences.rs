//! `strata licence …` on seed 003's Basic use rights (the corpus file): tables for people,
//! `--json` for scripts, unknown names refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

/// `strata licence ARGS --scenario` seed 003's file: success, and stdout then stderr.
fn strata(args: &[&str]) -> (bool, String) {
    let scenario = common::repo().join("tests/scenarios/admin/licences-basic-use-rights.yaml");
    let scenario = scenario.to_string_lossy();
    let mut all = vec!["licence"];
    all.extend_from_slice(args);
    all.extend(["--scenario", &scenario]);
    let (code, out, err) = common::strata(&all);
    (code == 0, out + &err)
}

#[test]
fn licence_verbs_print_tables_and_json() {
    let (ok, text) = strata(&["report"]);
    assert!(ok, "{text}");
    let seller = text
        .lines()
        .find(|l| l.starts_with("seller "))
        .unwrap_or_default();
    assert!(
        seller.contains("Basic (2)")
            && seller.contains("Professional (4)")
            && seller.contains("under_licensed"),
        "{text}"
    );
    assert!(
        text.contains("over-licensed 2 · under-licensed 3"),
        "{text}"
    );

    let (ok, text) = strata(&["user", "supervisor", "--json"]);
    assert!(ok, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(answer["fit"], "over_licensed", "{text}");
    assert_eq!(answer["cheapest"]["licences"][0], "Basic", "{text}");

    let (ok, text) = strata(&["exceeds", "Salesperson", "Basic"]);
    assert!(ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("opportunity write") && l.contains("user") && l.ends_with("none")),
        "{text}"
    );

    let (ok, text) = strata(&["list"]);
    assert!(ok && text.contains("licensing enforced"), "{text}");
    assert!(text.contains("account(all:organization)"), "{text}");

    let (ok, text) = strata(&["user", "ghost"]);
    assert!(!ok && text.contains("unknown user `ghost`"), "{text}");
    let (ok, text) = strata(&["exceeds", "Salesperson", "Gold"]);
    assert!(!ok && text.contains("unknown licence `Gold`"), "{text}");
}
