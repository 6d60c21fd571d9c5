//! Role rules (D45–D47): the rules in force that the signed-in user may read, added and
//! removed as `add_role_rule` / `remove_role_rule` operations, and the violations report —
//! under the API's rules (`admin_rules.rs`): Read on `role` to list, each rule only when its
//! roles lie within it, the report with `prvCheckAccessOfOthers` naming only the users the
//! asker may ask about.

use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;
use strata_engine::{Depth, Organization, Privilege, RoleRule, UserId};
use strata_ops::Operation;

use super::{Change, Console, read, redirect, role_link, user_link};
use crate::error::ApiError;
use crate::request::{CHECK_ACCESS_OF_OTHERS, may_ask_about};

/// Whether `user` may read a rule: Read on `role` over the unit of every role it names (D47).
fn may_read_rule(org: &Organization, user: UserId, rule: &RoleRule) -> bool {
    rule.roles().into_iter().all(|r| {
        crate::request::require_role_read(org, user, org.role(r).business_unit, "roles").is_ok()
    })
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `GET /console/rules`.
pub(crate) async fn rules(c: Console) -> Response {
    let csrf = c.csrf.clone();
    let body = read(&c, move |org, request| -> Result<Markup, ApiError> {
        if let Some(table) = org.table_id("role") {
            for u in request.acting.each() {
                if org.system_administrator(u).is_none()
                    && org.max_depth(u, table, Privilege::Read) == Depth::None
                {
                    return Err(ApiError::new(
                        "denied",
                        format!(
                            "user `{}` may not read role rules: that needs Read on `role`",
                            org.user(u).name
                        ),
                    ));
                }
            }
        }
        let rules: Vec<Value> = org
            .role_rules()
            .iter()
            .filter(|r| request.acting.each().all(|u| may_read_rule(org, u, r)))
            .map(|r| strata_ops::rule_json(org, r))
            .collect();
        let violations: Result<Vec<Value>, ApiError> = request
            .require_misc(org, CHECK_ACCESS_OF_OTHERS)
            .map(|()| {
                org.rule_violations()
                    .iter()
                    .filter(|v| {
                        request
                            .acting
                            .each()
                            .all(|me| may_ask_about(org, me, v.user).is_ok())
                    })
                    .map(|v| strata_ops::violation_json(org, v))
                    .collect()
            });
        let roles: Vec<&str> = org
            .role_ids()
            .filter(|r| !org.role(*r).deleted)
            .map(|r| org.role(r).name.as_str())
            .collect();
        Ok(html! {
            table.list #rules {
                thead { tr { th scope="col" { "Role" } th scope="col" { "Rule" } th scope="col" { "Action" } } }
                tbody {
                    @for r in &rules {
                        tr {
                            td { (role_link(str_of(r, "role"))) }
                            td { (str_of(r, "text")) }
                            td {
                                form.inline method="post" action="/console/rules/change" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="action" value="remove";
                                    input type="hidden" name="role" value=(str_of(r, "role"));
                                    input type="hidden" name="kind" value=(str_of(r, "kind"));
                                    @let others = match (r.get("requires"), r.get("excludes")) {
                                        (Some(req), _) => req.as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
                                        (_, Some(ex)) => ex.as_str().unwrap_or("").to_owned(),
                                        _ => String::new(),
                                    };
                                    input type="hidden" name="others" value=(others);
                                    button type="submit" aria-label={ "Remove the rule: " (str_of(r, "text")) } { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
            @if rules.is_empty() { p { "No rule you may read is in force." } }
            h2 { "Add a rule" }
            form.question method="post" action="/console/rules/change" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="add";
                div.field {
                    label for="rule-role" { "Role" }
                    select #rule-role name="role" { @for r in &roles { option value=(r) { (r) } } }
                }
                div.field {
                    label for="rule-kind" { "Rule" }
                    select #rule-kind name="kind" {
                        option value="requires" { "requires one of" }
                        option value="excludes" { "excludes" }
                        option value="direct_only" { "is assigned directly only" }
                    }
                }
                div.field {
                    label for="rule-others" { "Other roles" }
                    input #rule-others type="text" name="others" aria-describedby="rule-others-hint";
                    span.small #rule-others-hint { "comma-separated; none for direct only" }
                }
                button type="submit" { "Add the rule" }
            }
            h2 { "Violations" }
            @match &violations {
                Ok(list) if list.is_empty() => { p #violations { "Nobody you may ask about breaks a rule." } }
                Ok(list) => {
                    table.list #violations {
                        thead { tr { th scope="col" { "User" } th scope="col" { "Rule" } th scope="col" { "What would satisfy it" } } }
                        tbody {
                            @for v in list {
                                tr {
                                    td { (user_link(str_of(v, "user"))) }
                                    td { (str_of(&v["rule"], "text")) }
                                    td { (str_of(v, "message")) }
                                }
                            }
                        }
                    }
                }
                Err(e) => { p.small { "The violations report: " (e.message) } }
            }
        })
    })
    .await;
    match body.and_then(|b| b) {
        Ok(b) => c.page("Role rules", b),
        Err(e) => c.error("Role rules", &e),
    }
}

/// `POST /console/rules/change`: `action` = `add` | `remove`, with `role`, `kind`
/// (`requires` | `excludes` | `direct_only`) and `others` (comma-separated role names).
pub(crate) async fn change(change: Change) -> Response {
    let c = &change.console;
    let form = &change.form;
    let get = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (role, kind) = (get("role"), get("kind"));
    let others: Vec<String> = get("others")
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let (requires, excludes, direct_only) = match kind.as_str() {
        "requires" => (Some(others), None, false),
        "excludes" => (None, others.first().cloned(), false),
        "direct_only" => (None, None, true),
        other => {
            c.flash(true, format!("Refused: unknown kind of rule `{other}`"));
            return redirect("/console/rules");
        }
    };
    let op = match get("action").as_str() {
        "add" => Operation::AddRoleRule {
            role,
            requires,
            excludes,
            direct_only,
        },
        "remove" => Operation::RemoveRoleRule {
            role,
            requires,
            excludes,
            direct_only,
        },
        _ => {
            c.flash(true, "Refused: unknown action");
            return redirect("/console/rules");
        }
    };
    let what = if matches!(op, Operation::AddRoleRule { .. }) {
        "Rule added"
    } else {
        "Rule removed"
    };
    match super::write(c, vec![op]).await {
        Ok(revision) => c.flash(false, format!("{what} (revision {revision}).")),
        Err(e) => c.flash(true, format!("Refused: {}", e.message)),
    }
    redirect("/console/rules")
}
