//! The access review (docs/review.md, D70–D72): the exact rows of every view on a small
//! organisation built by hand, every view non-empty on the demo where it has data, the XLSX
//! workbook read back (calamine), and CSV quoting and formula injection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{Cursor, Read};

use calamine::{Reader, Xlsx, open_workbook_from_rs};
use serde_json::json;
use strata_app::review::{csv_field, csv_view, csv_zip, xlsx};
use strata_engine::{AccessReview, Cell, Organization, ReviewOptions, ReviewView};
use strata_ops::Operation;

/// 2026-12-05T00:00:00Z.
const NOW: i64 = 1_796_428_800_000;
const DAY: i64 = 86_400_000;

fn build(ops: serde_json::Value) -> Organization {
    let ops: Vec<Operation> = serde_json::from_value(ops).unwrap();
    let mut org = Organization::new();
    strata_ops::apply_all(&mut org, &ops).unwrap();
    org
}

/// Units, one table with a secured column, five roles (a System Administrator, a deprecated
/// one, one with a misc privilege held through a team), a rule the team member breaks, a
/// profile with a user and a team, shares to a user, a team and the organisation, a column
/// share, licences, and a disabled user.
fn small() -> Organization {
    build(json!([
        {"op": "add_business_unit", "name": "Contoso"},
        {"op": "add_business_unit", "name": "Sales", "parent": "Contoso"},
        {"op": "add_table", "name": "account", "columns": [
            {"name": "name"}, {"name": "creditlimit", "secured": true}]},
        {"op": "add_role", "name": "Admin", "system_administrator": true},
        {"op": "add_role", "name": "Rep", "privileges": {"account": {
            "read": "business_unit", "write": "user", "delete": "user"}}},
        {"op": "add_role", "name": "Manager", "misc": ["prvExportToExcel"], "privileges": {
            "account": {"read": "organization", "delete": "organization"}}},
        {"op": "add_role", "name": "Old", "privileges": {"account": {"read": "user"}}},
        {"op": "add_user", "name": "admin", "business_unit": "Contoso"},
        {"op": "add_user", "name": "alice", "business_unit": "Sales"},
        {"op": "add_user", "name": "bob", "business_unit": "Sales"},
        {"op": "add_user", "name": "carol", "business_unit": "Sales"},
        {"op": "add_user", "name": "dave", "business_unit": "Sales"},
        {"op": "add_user", "name": "erin", "business_unit": "Sales"},
        {"op": "add_team", "name": "Managers", "business_unit": "Sales"},
        {"op": "add_profile", "name": "Credit", "members": ["alice", "team:Managers"],
            "permissions": [{"table": "account", "column": "creditlimit", "read": true}]},
        {"op": "insert_record", "id": "a1", "table": "account", "owner": "alice",
            "fields": {"name": "Acme, Inc."}},
        {"op": "insert_record", "id": "a2", "table": "account", "owner": "bob",
            "fields": {"name": "=HYPERLINK(\"x\")"}},
        {"op": "add_field_share", "record": "a1", "column": "creditlimit", "principal": "dave",
            "read": true},
        {"op": "assign_role", "principal": "admin", "role": "Admin"},
        {"op": "assign_role", "principal": "alice", "role": "Rep"},
        {"op": "assign_role", "principal": "team:Managers", "role": "Manager"},
        {"op": "add_team_member", "team": "Managers", "user": "bob"},
        {"op": "assign_role", "principal": "carol", "role": "Old"},
        {"op": "assign_role", "principal": "erin", "role": "Rep"},
        {"op": "set_user_enabled", "user": "erin", "enabled": false},
        {"op": "deprecate_role", "role": "Old", "message": "use Rep", "successors": ["Rep"]},
        {"op": "add_role_rule", "role": "Manager", "requires": ["Rep"]},
        {"op": "share", "record": "a1", "principal": "carol", "rights": ["read", "write"]},
        {"op": "share", "record": "a2", "principal": "team:Managers", "rights": ["read"]},
    ]))
}

fn options(org: &Organization) -> ReviewOptions {
    let mut last_seen = HashMap::new();
    last_seen.insert(org.user_id("alice").unwrap(), NOW - DAY);
    last_seen.insert(org.user_id("admin").unwrap(), NOW - 200 * DAY);
    ReviewOptions {
        organization: "small".into(),
        revision: 7,
        now_ms: NOW,
        inactive_days: 90,
        last_seen,
    }
}

fn view<'a>(review: &'a AccessReview, name: &str) -> &'a ReviewView {
    review
        .views
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no view `{name}`"))
}

fn rows(review: &AccessReview, name: &str) -> Vec<Vec<String>> {
    let v = view(review, name);
    for r in &v.rows {
        assert_eq!(r.len(), v.columns.len(), "{name}: {r:?}");
    }
    v.rows
        .iter()
        .map(|r| r.iter().map(Cell::text).collect())
        .collect()
}

fn expect(review: &AccessReview, name: &str, expected: &[&[&str]]) {
    let expected: Vec<Vec<String>> = expected
        .iter()
        .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
        .collect();
    assert_eq!(rows(review, name), expected, "view `{name}`");
}

#[test]
fn every_view_of_a_small_organisation_has_exactly_its_rows() {
    let org = small();
    let review = org.access_review(&options(&org));
    let names: Vec<&str> = review.views.iter().map(|v| v.name).collect();
    assert_eq!(
        names,
        [
            "summary",
            "user_roles",
            "role_privileges",
            "role_misc_privileges",
            "effective_privileges",
            "column_profiles",
            "shares",
            "system_administrators",
            "organization_delete",
            "users_without_roles",
            "inactive_users",
            "deprecated_role_holders",
            "rule_violations",
            "licences",
        ]
    );
    expect(
        &review,
        "user_roles",
        &[
            &[
                "admin", "Contoso", "yes", "Admin", "Contoso", "direct", "", "", "no",
            ],
            &[
                "alice", "Sales", "yes", "Rep", "Contoso", "direct", "", "", "no",
            ],
            &[
                "bob", "Sales", "yes", "Manager", "Contoso", "team", "Managers", "", "no",
            ],
            &[
                "carol", "Sales", "yes", "Old", "Contoso", "direct", "", "", "yes",
            ],
            &[
                "erin", "Sales", "no", "Rep", "Contoso", "direct", "", "", "no",
            ],
        ],
    );
    let org_row = |role: &'static str| -> Vec<&'static str> {
        let mut r = vec![role, "Contoso", "?"];
        r.extend(["organization"; 8]);
        r
    };
    let mut grid: Vec<Vec<&str>> = ["account", "businessunit", "role", "systemuser", "team"]
        .into_iter()
        .map(|t| {
            let mut r = org_row("Admin");
            r[2] = t;
            r
        })
        .collect();
    grid.push(vec![
        "Manager",
        "Contoso",
        "account",
        "none",
        "organization",
        "none",
        "organization",
        "none",
        "none",
        "none",
        "none",
    ]);
    grid.push(vec![
        "Old", "Contoso", "account", "none", "user", "none", "none", "none", "none", "none", "none",
    ]);
    grid.push(vec![
        "Rep",
        "Contoso",
        "account",
        "none",
        "business_unit",
        "user",
        "user",
        "none",
        "none",
        "none",
        "none",
    ]);
    let grid: Vec<&[&str]> = grid.iter().map(Vec::as_slice).collect();
    expect(&review, "role_privileges", &grid);
    expect(
        &review,
        "role_misc_privileges",
        &[&["Admin", "all"], &["Manager", "prvExportToExcel"]],
    );

    // Effective privileges: every table × privilege for the administrator, then each user's
    // cells with the role and how it is held; erin (disabled) has none.
    let effective = rows(&review, "effective_privileges");
    let (admin, others): (Vec<_>, Vec<_>) = effective.iter().partition(|r| r[0] == "admin");
    assert_eq!(admin.len(), 5 * 8 + 1, "{admin:?}");
    assert!(admin.iter().all(|r| r[4] == "Admin" && r[5] == "direct"));
    assert!(admin.contains(&&vec![
        "admin".to_owned(),
        String::new(),
        "prvExportToExcel".to_owned(),
        String::new(),
        "Admin".to_owned(),
        "direct".to_owned(),
        String::new()
    ]));
    let others: Vec<Vec<&str>> = others
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    assert_eq!(
        others,
        [
            [
                "alice",
                "account",
                "read",
                "business_unit",
                "Rep",
                "direct",
                ""
            ],
            ["alice", "account", "write", "user", "Rep", "direct", ""],
            ["alice", "account", "delete", "user", "Rep", "direct", ""],
            [
                "bob",
                "account",
                "read",
                "organization",
                "Manager",
                "team",
                "Managers"
            ],
            [
                "bob",
                "account",
                "delete",
                "organization",
                "Manager",
                "team",
                "Managers"
            ],
            [
                "bob",
                "",
                "prvExportToExcel",
                "",
                "Manager",
                "team",
                "Managers"
            ],
            ["carol", "account", "read", "user", "Old", "direct", ""],
        ]
    );
    expect(
        &review,
        "column_profiles",
        &[
            &[
                "Credit",
                "alice",
                "",
                "yes",
                "account",
                "creditlimit",
                "yes",
                "no",
                "no",
            ],
            &[
                "Credit",
                "bob",
                "Managers",
                "yes",
                "account",
                "creditlimit",
                "yes",
                "no",
                "no",
            ],
        ],
    );
    expect(
        &review,
        "shares",
        &[
            &[
                "bob",
                "team Managers",
                "account",
                "a2",
                "=HYPERLINK(\"x\")",
                "bob",
                "read",
                "",
            ],
            &[
                "carol",
                "",
                "account",
                "a1",
                "Acme, Inc.",
                "alice",
                "read, write",
                "",
            ],
            &[
                "dave",
                "",
                "account",
                "a1",
                "Acme, Inc.",
                "alice",
                "read",
                "creditlimit",
            ],
        ],
    );
    expect(
        &review,
        "system_administrators",
        &[&["admin", "Contoso", "yes", "Admin", "direct", ""]],
    );
    let mut deletes: Vec<Vec<&str>> = ["account", "businessunit", "role", "systemuser", "team"]
        .into_iter()
        .map(|t| vec!["admin", "Contoso", t, "Admin", "direct", ""])
        .collect();
    deletes.push(vec![
        "bob", "Sales", "account", "Manager", "team", "Managers",
    ]);
    let deletes: Vec<&[&str]> = deletes.iter().map(Vec::as_slice).collect();
    expect(&review, "organization_delete", &deletes);
    expect(
        &review,
        "users_without_roles",
        &[&["dave", "Sales", "yes", ""]],
    );
    expect(
        &review,
        "inactive_users",
        &[
            &["bob", "Sales", "", "", "Manager"],
            &["carol", "Sales", "", "", "Old"],
            &["dave", "Sales", "", "", ""],
            &["admin", "Contoso", "2026-05-19T00:00:00Z", "200", "Admin"],
        ],
    );
    expect(
        &review,
        "deprecated_role_holders",
        &[&["carol", "yes", "Old", "direct", "", "Rep", "use Rep"]],
    );
    expect(
        &review,
        "rule_violations",
        &[&[
            "bob",
            "yes",
            "Manager requires Rep",
            "requires",
            "holds Manager (through team Managers) without Rep",
        ]],
    );
    // No licence in the catalogue: the view is empty.
    expect(&review, "licences", &[]);
    let summary = rows(&review, "summary");
    assert_eq!(summary[0], ["organization", "small"]);
    assert_eq!(summary[1], ["revision", "7"]);
    assert_eq!(summary[2], ["generated", "2026-12-05T00:00:00Z"]);
    assert_eq!(summary[3], ["inactive_days", "90"]);
    assert_eq!(summary[4], ["user_access_audited", "no"]);
    assert!(summary.contains(&vec!["rows: user_roles".to_owned(), "5".to_owned()]));
}

#[test]
fn the_licence_view_compares_each_user_with_the_cheapest_fitting_set() {
    let mut org = small();
    let ops: Vec<Operation> = serde_json::from_value(json!([
        {"op": "add_licence", "name": "Professional", "price": 4, "default": "organization",
            "all_misc": true, "all_apps": true},
        {"op": "add_licence", "name": "Basic", "price": 2, "default": "organization"},
        {"op": "set_user_licence", "user": "alice", "licences": ["Professional"]},
        {"op": "set_user_licence", "user": "bob", "licences": ["Basic"]},
    ]))
    .unwrap();
    strata_ops::apply_all(&mut org, &ops).unwrap();
    let review = org.access_review(&options(&org));
    expect(
        &review,
        "licences",
        &[
            &["admin", "", "0", "", "0", "fits", ""],
            &[
                "alice",
                "Professional",
                "4",
                "Basic",
                "2",
                "over_licensed",
                "",
            ],
            &[
                "bob",
                "Basic",
                "2",
                "Professional",
                "4",
                "under_licensed",
                "prvExportToExcel",
            ],
            &[
                "carol",
                "",
                "0",
                "Basic",
                "2",
                "under_licensed",
                "account read user > none",
            ],
            &["dave", "", "0", "", "0", "fits", ""],
        ],
    );
}

#[test]
fn inactive_days_moves_the_threshold() {
    let org = small();
    let mut o = options(&org);
    o.inactive_days = 365;
    let review = org.access_review(&o);
    let users: Vec<String> = rows(&review, "inactive_users")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(users, ["bob", "carol", "dave"]);
    o.inactive_days = 0;
    let review = org.access_review(&o);
    assert_eq!(rows(&review, "inactive_users").len(), 5);
}

#[test]
fn times_are_rfc_3339() {
    assert_eq!(strata_engine::rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(strata_engine::rfc3339(NOW), "2026-12-05T00:00:00Z");
    assert_eq!(
        strata_engine::rfc3339(951_782_400_000 + 3_723_999),
        "2000-02-29T01:02:03Z"
    );
    assert_eq!(strata_engine::rfc3339(-1_000), "1969-12-31T23:59:59Z");
}

#[test]
fn the_demo_has_a_row_in_every_view_it_has_data_for() {
    let org = strata_demo::organization(20).unwrap();
    let review = org.access_review(&ReviewOptions {
        organization: "demo".into(),
        revision: 1,
        now_ms: NOW,
        inactive_days: 90,
        last_seen: HashMap::new(),
    });
    // Every user of the demo holds a role: that view alone is empty, and it says so.
    let roleless = org
        .user_ids()
        .filter(|u| org.role_holdings(*u).is_empty())
        .count();
    assert_eq!(roleless, 0);
    for v in &review.views {
        if v.name == "users_without_roles" {
            assert!(v.rows.is_empty());
            continue;
        }
        assert!(!v.rows.is_empty(), "the demo's `{}` view is empty", v.name);
    }
    // The deprecated Work 365 role's holder, and the enabled users all unseen.
    assert!(
        rows(&review, "deprecated_role_holders")
            .iter()
            .any(|r| r[0] == "legacy_user")
    );
    let enabled = org.user_ids().filter(|u| org.user(*u).enabled).count();
    assert_eq!(rows(&review, "inactive_users").len(), enabled);
}

fn sheet_rows(book: &mut Xlsx<Cursor<Vec<u8>>>, title: &str) -> Vec<Vec<String>> {
    let range = book.worksheet_range(title).unwrap();
    range
        .rows()
        .map(|r| r.iter().map(ToString::to_string).collect())
        .collect()
}

#[test]
fn the_workbook_opens_with_a_sheet_per_view() {
    let org = small();
    let review = org.access_review(&options(&org));
    let bytes = xlsx(&review).unwrap();
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    let titles: Vec<&str> = review.views.iter().map(|v| v.title).collect();
    assert_eq!(book.sheet_names(), titles);
    for v in &review.views {
        let rows = sheet_rows(&mut book, v.title);
        assert_eq!(rows.len(), v.rows.len() + 1, "{}", v.name);
        assert_eq!(rows[0], v.columns.to_vec(), "{}", v.name);
        // Every cell as the views say (numbers read back as numbers).
        for (r, row) in v.rows.iter().enumerate() {
            let texts: Vec<String> = row.iter().map(Cell::text).collect();
            assert_eq!(rows[r + 1], texts, "{} row {r}", v.name);
        }
    }
    let shares = sheet_rows(&mut book, "Shares");
    // A formula-like name is text in the workbook, as it is.
    assert_eq!(shares[1][4], "=HYPERLINK(\"x\")");
    let grid = sheet_rows(&mut book, "Role privileges");
    assert_eq!(
        grid[6][0..5],
        ["Manager", "Contoso", "account", "none", "organization"]
    );
}

#[test]
fn the_demo_workbook_has_as_many_rows_as_its_views() {
    let org = strata_demo::organization(20).unwrap();
    let review = org.access_review(&ReviewOptions {
        organization: "demo".into(),
        now_ms: NOW,
        inactive_days: 90,
        ..ReviewOptions::default()
    });
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(xlsx(&review).unwrap())).unwrap();
    for v in &review.views {
        let range = book.worksheet_range(v.title).unwrap();
        assert_eq!(range.height(), v.rows.len() + 1, "{}", v.name);
    }
}

#[test]
fn csv_quotes_as_rfc_4180_and_defuses_formulas() {
    let t = |s: &str| csv_field(&Cell::Text(s.to_owned()));
    assert_eq!(t("plain"), "plain");
    assert_eq!(t("a,b"), "\"a,b\"");
    assert_eq!(t("say \"hi\""), "\"say \"\"hi\"\"\"");
    assert_eq!(t("two\nlines"), "\"two\nlines\"");
    assert_eq!(t("cr\rhere"), "\"cr\rhere\"");
    assert_eq!(t("=1+2"), "'=1+2");
    assert_eq!(t("+1"), "'+1");
    assert_eq!(t("-1"), "'-1");
    assert_eq!(t("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(t("\tx"), "'\tx");
    assert_eq!(
        t("=HYPERLINK(\"x\",\"y\")"),
        "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
    );
    assert_eq!(t("a=b"), "a=b");
    assert_eq!(t(""), "");
    // Numbers and times are not text: never prefixed.
    assert_eq!(csv_field(&Cell::Number(-3)), "-3");
    assert_eq!(csv_field(&Cell::Time(0)), "1970-01-01T00:00:00Z");

    let org = small();
    let review = org.access_review(&options(&org));
    let shares = csv_view(view(&review, "shares"));
    assert_eq!(
        shares,
        "user,through,table,record,name,owner,rights,column\r\n\
         bob,team Managers,account,a2,\"'=HYPERLINK(\"\"x\"\")\",bob,read,\r\n\
         carol,,account,a1,\"Acme, Inc.\",alice,\"read, write\",\r\n\
         dave,,account,a1,\"Acme, Inc.\",alice,read,creditlimit\r\n"
    );
}

#[test]
fn the_csv_zip_holds_a_file_per_view() {
    let org = small();
    let review = org.access_review(&options(&org));
    let bytes = csv_zip(&review).unwrap();
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    assert_eq!(zip.len(), review.views.len());
    for v in &review.views {
        let mut text = String::new();
        zip.by_name(&format!("{}.csv", v.name))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, csv_view(v));
        assert_eq!(
            text.matches("\r\n").count(),
            v.rows.len() + 1 + extra_breaks(v)
        );
    }
}

/// Line breaks inside quoted fields (none in these views).
fn extra_breaks(v: &ReviewView) -> usize {
    v.rows
        .iter()
        .flatten()
        .map(|c| c.text().matches("\r\n").count())
        .sum()
}

/// The workbook writer keeps any text as written: XML's special characters, control
/// characters (OOXML's `_xHHHH_`), a literal `_x0041_`, spaces at either end, and numbers.
#[test]
fn the_workbook_writer_keeps_text_as_written() {
    use std::borrow::Cow;
    use strata_app::xlsx::{Book, StyleSpec, Value};
    let texts = [
        "<a & b>",
        "tab\there",
        "bell\u{7}",
        "_x0041_ stays",
        "  spaced  ",
        "ünïcödé ✓",
    ];
    let mut book = Book::new(
        &[StyleSpec {
            bold: true,
            ..StyleSpec::default()
        }],
        2,
    );
    let rows = texts.iter().enumerate().map(|(i, t)| {
        vec![
            (Value::Text(Cow::Borrowed(*t)), 0),
            (Value::Number(i as i64 - 2), 1),
        ]
    });
    book.sheet("Odd 'text' & <more>", &["text", "n"], 1, &[10.0, 4.0], rows)
        .unwrap();
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(book.finish().unwrap())).unwrap();
    assert_eq!(book.sheet_names(), ["Odd 'text' & <more>"]);
    let rows = sheet_rows(&mut book, "Odd 'text' & <more>");
    assert_eq!(rows[0], ["text", "n"]);
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(rows[i + 1], [(*t).to_owned(), (i as i64 - 2).to_string()]);
    }
}

/// A cell longer than a sheet's cell holds is refused as `invalid`, naming the view and asking
/// for CSV — never an internal error, never a cut text.
#[test]
fn a_cell_too_long_for_the_workbook_asks_for_csv() {
    let org = small();
    let mut review = org.access_review(&options(&org));
    let long = "r".repeat(strata_app::xlsx::MAX_CELL_CHARS + 1);
    let view = review
        .views
        .iter_mut()
        .find(|v| v.name == "user_roles")
        .unwrap();
    view.rows[0][0] = Cell::Text(long);
    let e = xlsx(&review).unwrap_err();
    assert_eq!(e.code, "invalid");
    assert!(
        e.to_string().contains("user_roles") && e.to_string().contains("csv"),
        "{e}"
    );
    // The CSV files take it whole.
    assert!(csv_zip(&review).is_ok());
}
