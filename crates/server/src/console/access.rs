//! The access questions: check access (a user and a record → each of the 8 privileges with
//! every path that grants it, or what is missing and which role would fix it), two users
//! compared, and app access with its diagnosis and the smallest role set. Each is the API's
//! answer (the same engine question and the same JSON of `strata-ops`), asked under the same
//! rule of whom the signed-in user may ask about (D27).

use axum::extract::Query;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use strata_engine::{Organization, Privilege, RecordId};

use super::{Console, read, role_link, user_link};
use crate::error::ApiError;
use crate::request::OrgRequest;

#[derive(Deserialize, Default)]
pub(crate) struct CheckParams {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    record: Option<String>,
}

/// A text field: its value when given and not blank.
fn given(v: Option<&String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn record_id(org: &Organization, key: &str) -> Result<RecordId, ApiError> {
    org.record_id(key)
        .or_else(|| key.parse().ok().and_then(|g| org.record_by_guid(g)))
        .ok_or_else(|| ApiError::not_found(format!("record `{key}` does not exist")))
}

/// The user a question is about: the one named (D27 decides whether the signed-in user may
/// ask), or the signed-in user.
fn subject(
    org: &Organization,
    request: &OrgRequest,
    name: Option<&str>,
) -> Result<strata_engine::UserId, ApiError> {
    request.subject(org, name)
}

fn text_input(id: &str, label: &str, value: Option<&str>, hint: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) type="text" name=(id) value=[value] aria-describedby={ (id) "-hint" };
            span.small id={ (id) "-hint" } { (hint) }
        }
    }
}

/// When and by whom (D165): `2026-12-07T22:30:00Z by alice`, the system when no user wrote.
fn stamp(org: &Organization, at: u32, by: Option<strata_engine::UserId>) -> String {
    let when = strata_engine::Stamps::text(at).unwrap_or_else(|| "at an unknown time".to_owned());
    let who = by.map_or("the system", |u| org.user(u).name.as_str());
    format!("{when} by {who}")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `GET /console/access?user=U&record=R`.
pub(crate) async fn check(c: Console, Query(p): Query<CheckParams>) -> Response {
    let (user, record) = (given(p.user.as_ref()), given(p.record.as_ref()));
    let form = html! {
        form.question method="get" action="/console/access" {
            (text_input("user", "User", user.as_deref(), "blank: yourself"))
            (text_input("record", "Record", record.as_deref(), "its key (acc-0001) or GUID"))
            button type="submit" { "Check access" }
        }
    };
    let Some(record) = record else {
        return c.page("Check access", form);
    };
    let answer = read(&c, move |org, request| -> Result<Markup, ApiError> {
        let u = subject(org, request, user.as_deref())?;
        let r = record_id(org, &record)?;
        request.may_ask_about_record(org, Some(u), r, &record)?;
        let decisions: Vec<Value> = Privilege::ALL
            .into_iter()
            .map(|p| strata_ops::decision_json(org, &org.explain(u, p, r)))
            .collect();
        let rec = org.record(r);
        Ok(html! {
            p #subject {
                "User " (user_link(&org.user(u).name)) " on " strong { (rec.key) }
                " (" (org.table(rec.table).name) ", owned by " (org.owner_name(rec.owner)) ", in " (org.units().name(rec.business_unit)) ")"
            }
            p #stamps {
                "Created " (stamp(org, rec.stamps.created_at, rec.stamps.creator()))
                "; last changed " (stamp(org, rec.stamps.modified_at, rec.stamps.modifier()))
            }
            table.list #access {
                thead { tr { th scope="col" { "Privilege" } th scope="col" { "Allowed" } th scope="col" { "How, or what is missing" } } }
                tbody {
                    @for d in &decisions {
                        @let allowed = d["allowed"].as_bool().unwrap_or(false);
                        tr.allowed[allowed].denied[!allowed] data-privilege=(str_of(d, "privilege")) {
                            th scope="row" { (str_of(d, "privilege")) }
                            td.verdict { (if allowed { "✔ allowed" } else { "✘ denied" }) }
                            td {
                                @if allowed {
                                    ul.paths { @for path in d["paths"].as_array().into_iter().flatten() {
                                        li data-kind=(str_of(path, "kind")) { (str_of(path, "text")) }
                                    } }
                                } @else {
                                    p.explanation { (str_of(d, "explanation")) }
                                    @if let Some(fix) = d.get("would_grant").filter(|v| !v.is_null()) {
                                        p.fix {
                                            "Would be granted by " (str_of(fix, "depth")) " depth, held through any of: "
                                            @for (i, role) in fix["roles"].as_array().into_iter().flatten().filter_map(Value::as_str).enumerate() {
                                                @if i > 0 { ", " }
                                                (role_link(role))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        })
    })
    .await;
    match answer.and_then(|a| a) {
        Ok(a) => c.page("Check access", html! { (form) (a) }),
        Err(e) => c.refused("Check access", form, &e),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct CompareParams {
    #[serde(default)]
    left: Option<String>,
    #[serde(default)]
    right: Option<String>,
    #[serde(default)]
    all: Option<String>,
}

fn sources(side: &Value) -> Markup {
    html! {
        @for (i, s) in side["sources"].as_array().into_iter().flatten().enumerate() {
            @if i > 0 { "; " }
            (role_link(str_of(s, "role")))
            @match s.get("via") {
                Some(Value::Object(t)) => { " through team " (t.get("team").and_then(Value::as_str).unwrap_or("")) }
                _ => {}
            }
        }
    }
}

/// `GET /console/compare?left=U&right=V`: two users' effective permissions side by side, the
/// cells that differ first (all with `all=1`).
pub(crate) async fn compare(c: Console, Query(p): Query<CompareParams>) -> Response {
    let (left, right) = (given(p.left.as_ref()), given(p.right.as_ref()));
    let all = p.all.is_some();
    let form = html! {
        form.question method="get" action="/console/compare" {
            (text_input("left", "First user", left.as_deref(), ""))
            (text_input("right", "Second user", right.as_deref(), ""))
            div.field { label { input type="checkbox" name="all" value="1" checked[all]; " show cells that are the same too" } }
            button type="submit" { "Compare" }
        }
    };
    let (Some(left), Some(right)) = (left, right) else {
        return c.page("Compare users", form);
    };
    let answer = read(&c, move |org, request| -> Result<Markup, ApiError> {
        let l = subject(org, request, Some(&left))?;
        let r = subject(org, request, Some(&right))?;
        let cmp = strata_ops::compare_users_json(org, l, r);
        let cells: Vec<&Value> = cmp["cells"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| all || c["differs"].as_bool() == Some(true))
            .collect();
        let misc: Vec<&Value> = cmp["misc"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| all || c["differs"].as_bool() == Some(true))
            .collect();
        Ok(html! {
            p #differences { (cmp["differences"].as_u64().unwrap_or(0)) " differences between " (user_link(&left)) " and " (user_link(&right)) "." }
            table.list #cells {
                thead { tr { th scope="col" { "Table" } th scope="col" { "Privilege" } th scope="col" { (left) } th scope="col" { (right) } } }
                tbody {
                    @for cell in &cells {
                        tr.differs[cell["differs"].as_bool() == Some(true)] {
                            td { (str_of(cell, "table")) } td { (str_of(cell, "privilege")) }
                            @for side in [&cell["left"], &cell["right"]] {
                                td {
                                    @let depth = strata_engine::Depth::from_name(str_of(side, "depth")).unwrap_or_default();
                                    span.circle aria-hidden="true" { (super::circle(depth)) } " " (super::depth_label(depth))
                                    br; span.small { (sources(side)) }
                                }
                            }
                        }
                    }
                }
            }
            @if !misc.is_empty() {
                h2 { "Miscellaneous privileges" }
                table.list {
                    thead { tr { th scope="col" { "Privilege" } th scope="col" { (left) } th scope="col" { (right) } } }
                    tbody {
                        @for m in &misc {
                            tr {
                                td { code { (str_of(m, "name")) } }
                                @for side in ["left", "right"] {
                                    td { (if m[side].as_array().is_some_and(|a| !a.is_empty()) { "✔ held" } else { "—" }) }
                                }
                            }
                        }
                    }
                }
            }
        })
    })
    .await;
    match answer.and_then(|a| a) {
        Ok(a) => c.page("Compare users", html! { (form) (a) }),
        Err(e) => c.refused("Compare users", form, &e),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct AppParams {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    app: Option<String>,
}

/// `GET /console/apps?user=U&app=A`: whether the user opens the app and does its work, every
/// reason why not, and the smallest set of roles that would (D51).
pub(crate) async fn apps(c: Console, Query(p): Query<AppParams>) -> Response {
    let (user, app) = (given(p.user.as_ref()), given(p.app.as_ref()));
    let names = read(&c, |org, _| {
        org.app_ids()
            .map(|a| org.app(a).name.clone())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let form = html! {
        form.question method="get" action="/console/apps" {
            (text_input("user", "User", user.as_deref(), "blank: yourself"))
            div.field {
                label for="app" { "App" }
                select #app name="app" {
                    @for n in &names { option value=(n) selected[app.as_deref() == Some(n.as_str())] { (n) } }
                }
            }
            button type="submit" { "Diagnose" }
        }
    };
    let Some(app) = app else {
        return c.page("App access", form);
    };
    let answer = read(&c, move |org, request| -> Result<Markup, ApiError> {
        let u = subject(org, request, user.as_deref())?;
        let a = org
            .app_id(&app)
            .ok_or_else(|| ApiError::not_found(format!("unknown app `{app}`")))?;
        let d = strata_ops::app_diagnosis_json(org, u, a);
        let allowed = d["allowed"].as_bool() == Some(true);
        let set = if allowed {
            None
        } else {
            Some(
                org.roles_needed(u, a)
                    .map(|s| strata_ops::role_set_json(org, u, a, &s))
                    .map_err(|e| ApiError::from(strata_ops::role_set_error(&e))),
            )
        };
        Ok(html! {
            p #verdict.allowed[allowed].denied[!allowed] {
                strong { (user_link(str_of(&d, "user"))) (if allowed { " opens " } else { " cannot open " }) (str_of(&d, "app")) } ": " (str_of(&d, "reason"))
            }
            @if let Some(missing) = d["missing"].as_array().filter(|m| !m.is_empty()) {
                h2 { "Needs not met" }
                ul { @for m in missing { li { (str_of(m, "table")) " " (str_of(m, "privilege")) ": needs " (str_of(m, "depth")) ", holds " (str_of(m, "held")) } } }
            }
            @match &set {
                Some(Ok(s)) => {
                    h2 { "Smallest role set" }
                    @let roles: Vec<&str> = s["roles"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    @if roles.is_empty() { p { "No role set found." } }
                    @else {
                        p #role-set { "Assign " @for (i, r) in roles.iter().enumerate() { @if i > 0 { " and " } (role_link(r)) } " to open the app and meet its needs"
                            @if s["exact"].as_bool() != Some(true) { " (the search stopped at its limit: a smaller set may exist)" } "." }
                    }
                }
                Some(Err(e)) => { (super::error_box(e)) }
                None => {}
            }
        })
    })
    .await;
    match answer.and_then(|a| a) {
        Ok(a) => c.page("App access", html! { (form) (a) }),
        Err(e) => c.refused("App access", form, &e),
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct WhoParams {
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    privilege: Option<String>,
}

/// The most users the who-has-access screen lists with their reasons.
const WHO_SHOWN: usize = 200;

/// `GET /console/who?record=R&privilege=P`: who holds a privilege on a record, each with the
/// paths that grant it — the API's `who-has-access` rule (D27: `prvCheckAccessOfOthers`, Read
/// on the record, only users the asker may ask about).
pub(crate) async fn who(c: Console, Query(p): Query<WhoParams>) -> Response {
    let record = given(p.record.as_ref());
    let privilege = given(p.privilege.as_ref()).unwrap_or_else(|| "read".to_owned());
    let form = html! {
        form.question method="get" action="/console/who" {
            (text_input("record", "Record", record.as_deref(), "its key or GUID"))
            div.field {
                label for="privilege" { "Privilege" }
                select #privilege name="privilege" {
                    @for x in Privilege::RECORD_RIGHTS { option value=(x.name()) selected[x.name() == privilege] { (x.name()) } }
                }
            }
            button type="submit" { "Who has access" }
        }
    };
    let Some(record) = record else {
        return c.page("Who has access", form);
    };
    let answer = read(&c, move |org, request| -> Result<Markup, ApiError> {
        let p = Privilege::from_name(&privilege).ok_or_else(|| {
            ApiError::new("unknown_privilege", format!("unknown privilege `{privilege}`"))
                .at("privilege")
        })?;
        let r = record_id(org, &record)?;
        request.require_misc(org, crate::request::CHECK_ACCESS_OF_OTHERS)?;
        request.acting_may_read(org, None, r, &record, "who else can")?;
        let users: Vec<strata_engine::UserId> = org
            .who_has_access(r, p)
            .into_iter()
            .filter(|u| {
                request
                    .acting
                    .each()
                    .all(|me| crate::request::may_ask_about(org, me, *u).is_ok())
            })
            .collect();
        Ok(html! {
            p #who-count { (users.len()) " users may " (p.name()) " " strong { (record) } " (among those you may ask about)." }
            table.list #who {
                thead { tr { th scope="col" { "User" } th scope="col" { "Why" } } }
                tbody {
                    @for u in users.iter().take(WHO_SHOWN) {
                        @let d = org.explain(*u, p, r);
                        tr {
                            td { (user_link(&org.user(*u).name)) }
                            td { ul.paths { @for path in &d.paths { li { (org.describe_path(path)) } } } }
                        }
                    }
                }
            }
            @if users.len() > WHO_SHOWN { p.small { "The first " (WHO_SHOWN) " are shown." } }
        })
    })
    .await;
    match answer.and_then(|a| a) {
        Ok(a) => c.page("Who has access", html! { (form) (a) }),
        Err(e) => c.refused("Who has access", form, &e),
    }
}

/// The most users the licence screen lists.
const LICENCE_LINES_SHOWN: usize = 500;

/// `GET /console/licences`: each user's licences, the cheapest set that covers what their roles
/// give, the fit and the totals — the API's licence report and its rule (System Administrators,
/// or `prvCheckAccessOfOthers` with only the users the asker may ask about).
pub(crate) async fn licences(c: Console) -> Response {
    let answer = read(&c, |org, request| -> Result<Markup, ApiError> {
        if request
            .acting
            .each()
            .any(|u| org.system_administrator(u).is_none())
        {
            request.require_misc(org, crate::request::CHECK_ACCESS_OF_OTHERS)?;
        }
        let lines: Vec<_> = org
            .licence_report()
            .users
            .into_iter()
            .filter(|l| {
                request
                    .acting
                    .each()
                    .all(|u| crate::request::may_ask_about(org, u, l.user).is_ok())
            })
            .collect();
        // The totals count every line; only the lines shown are rendered as JSON.
        let report = strata_ops::report_totals_json(org, &lines);
        let shown: Vec<Value> = lines
            .iter()
            .take(LICENCE_LINES_SHOWN)
            .map(|l| strata_ops::user_report_json(org, l))
            .collect();
        let names = |v: &Value| -> String {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" + ")
        };

        Ok(html! {
            p #licence-totals {
                "Licensing is " (if report["enforced"].as_bool() == Some(true) { "enforced" } else { "not enforced" }) ". "
                "Held: " strong { (report["total_held"]) } "; the cheapest that fits: " strong { (report["total_cheapest"]) }
                " (savings " (report["savings"]) "); " (report["over_licensed"]) " over-licensed, "
                (report["under_licensed"]) " under-licensed users."
            }
            table.list #licences {
                thead { tr { th scope="col" { "User" } th scope="col" { "Holds" } th scope="col" { "Price" } th scope="col" { "Cheapest that fits" } th scope="col" { "Fit" } } }
                tbody {
                    @for u in &shown {
                        tr {
                            td { (user_link(str_of(u, "user"))) }
                            td { (names(&u["held"])) }
                            td { (u["held_price"]) }
                            td {
                                @if let Some(c) = u.get("cheapest").filter(|c| !c.is_null()) {
                                    (names(&c["licences"])) " (" (c["price"]) ")"
                                } @else { "none covers it" }
                            }
                            td { (str_of(u, "fit")) }
                        }
                    }
                }
            }
            @if lines.len() > LICENCE_LINES_SHOWN { p.small { "The first " (LICENCE_LINES_SHOWN) " users are shown; the totals count them all." } }
        })
    })
    .await;
    match answer.and_then(|a| a) {
        Ok(a) => c.page("Licences", a),
        Err(e) => c.error("Licences", &e),
    }
}
