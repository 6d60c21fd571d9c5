//! The business unit tree, the users list (a page of the `systemuser` records the signed-in
//! user may read, from the engine's list and its cursor) and a user's page with the role
//! assignments and the enabled switch, changed through the application layer.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use strata_engine::{After, BusinessUnitId, ListQuery, Organization, Principal, Privilege, UserId};
use strata_ops::Operation;

use super::audit::READ_AUDIT;
use super::{Change, Console, encode, read, redirect, role_link, user_link};
use crate::error::ApiError;
use crate::request::OrgRequest;

/// Users on one page of the list, by default.
const PAGE: usize = 50;

/// The most users on one page.
const MAX_PAGE: usize = 500;

/// D76: a unit is named to a user who may read it (Read on `businessunit` at a depth covering
/// it, as `explain_on_unit` decides; System Administrators every unit). Units they may not read
/// keep their place in the tree without a name, so the shape of what they may read is right.
fn may_read_unit(org: &Organization, me: UserId, unit: BusinessUnitId) -> bool {
    if org.system_administrator(me).is_some() {
        return true;
    }
    org.table_id("businessunit")
        .is_some_and(|t| org.explain_on_unit(me, t, Privilege::Read, unit).allowed)
}

/// Whether every acting user may see `user` (themselves, System Administrators, or Read on the
/// user's `systemuser` record) — the rule the role questions use (D42).
pub(crate) fn may_see_user(org: &Organization, request: &OrgRequest, user: UserId) -> bool {
    request.acting.each().all(|me| {
        me == user
            || org.system_administrator(me).is_some()
            || org.check(me, Privilege::Read, org.user(user).record)
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct UnitParams {
    /// A move to preview: the unit …
    #[serde(default, rename = "move")]
    moving: Option<String>,
    /// … and its new parent.
    #[serde(default)]
    to: Option<String>,
}

/// `GET /console/units`: the tree, the forms to add a unit and to move one, and a move's
/// preview: the dry run of the `move_business_unit` the confirmation would write (D54).
pub(crate) async fn units(c: Console, Query(p): Query<UnitParams>) -> Response {
    let csrf = c.csrf.clone();
    let tree = read(&c, move |org, request| {
        let me = request.acting.user();
        let units = org.units();
        let visible = |u: BusinessUnitId| me.is_none_or(|me| may_read_unit(org, me, u));
        fn branch(
            org: &Organization,
            unit: BusinessUnitId,
            visible: &dyn Fn(BusinessUnitId) -> bool,
        ) -> Markup {
            let units = org.units();
            let children = units.children(unit);
            html! {
                li {
                    @if visible(unit) {
                        span.unit data-unit=(units.name(unit)) { (units.name(unit)) }
                    } @else {
                        span.unit.hidden-unit title="a unit you may not read" { "(not readable)" }
                    }
                    @if !children.is_empty() {
                        ul { @for child in children { (branch(org, *child, visible)) } }
                    }
                }
            }
        }
        let names: Vec<&str> = units
            .ids()
            .filter(|u| visible(*u))
            .map(|u| units.name(u))
            .collect();
        let options = |id: &str, label: &str, name: &str| {
            html! {
                div.field {
                    label for=(id) { (label) }
                    select id=(id) name=(name) { @for n in &names { option value=(n) { (n) } } }
                }
            }
        };
        html! {
            p.small { "The tree of business units; a unit you may not read (Read on business units at a depth that covers it) is shown without its name." }
            @match units.root() {
                Some(root) => { ul.tree #units aria-label="Business units" { (branch(org, root, &visible)) } }
                None => { p { "This organization has no business units yet." } }
            }
            h2 { "Add a business unit" }
            form.question method="post" action="/console/units/change" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="add";
                div.field { label for="new-unit" { "Name" } input #new-unit type="text" name="name" required; }
                (options("new-parent", "Parent", "parent"))
                button type="submit" { "Add" }
            }
            h2 { "Rename a business unit" }
            form.question method="post" action="/console/units/change" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="rename";
                (options("rename-unit", "Unit", "unit"))
                div.field { label for="rename-name" { "New name" } input #rename-name type="text" name="name" required; }
                button type="submit" { "Rename" }
            }
            h2 { "Move a business unit" }
            form.question method="get" action="/console/units" {
                (options("move", "Unit", "move"))
                (options("to", "New parent", "to"))
                button type="submit" { "Preview the move" }
            }
        }
    })
    .await;
    let preview = match (p.moving, p.to) {
        (Some(unit), Some(parent)) => {
            let op = Operation::MoveBusinessUnit {
                name: unit.clone(),
                parent: parent.clone(),
            };
            let found = super::dry_run(&c, vec![op]).await;
            html! {
                section.pending #move-preview aria-labelledby="move-title" {
                    h2 #move-title { "Moving " (unit) " under " (parent) }
                    @match &found {
                        Ok(dry) => {
                            (super::roles::dry_run_view(dry))
                            form.inline method="post" action="/console/units/change" {
                                input type="hidden" name="csrf" value=(c.csrf);
                                input type="hidden" name="action" value="move";
                                input type="hidden" name="unit" value=(unit);
                                input type="hidden" name="parent" value=(parent);
                                button #confirm-move type="submit" { "Confirm the move" }
                            }
                            a href="/console/units" { "Cancel" }
                        }
                        Err(e) => { (super::error_box(e)) }
                    }
                }
            }
        }
        _ => html! {},
    };
    match tree {
        Ok(tree) => c.page("Business units", html! { (preview) (tree) }),
        Err(e) => c.error("Business units", &e),
    }
}

/// `POST /console/units/change`: `action` = `add` (`name`, `parent`), `rename` (`unit`,
/// `name`) or `move` (`unit`, `parent`), written as the signed-in user.
pub(crate) async fn change_unit(change: Change) -> Response {
    let field = |k: &str| change.field(k).map(str::to_owned);
    let op = match change.field("action") {
        Ok("add") => field("name").and_then(|name| {
            Ok(Operation::AddBusinessUnit {
                name,
                parent: Some(field("parent")?),
            })
        }),
        Ok("rename") => field("unit").and_then(|name| {
            Ok(Operation::RenameBusinessUnit {
                name,
                new_name: field("name")?,
            })
        }),
        Ok("move") => field("unit").and_then(|name| {
            Ok(Operation::MoveBusinessUnit {
                name,
                parent: field("parent")?,
            })
        }),
        _ => Err(ApiError::new("invalid_body", "unknown action").at("action")),
    };
    let c = &change.console;
    let what = match &op {
        Ok(Operation::AddBusinessUnit { name, parent }) => format!(
            "Business unit `{name}` added under `{}`",
            parent.as_deref().unwrap_or("")
        ),
        Ok(Operation::MoveBusinessUnit { name, parent }) => {
            format!("Business unit `{name}` moved under `{parent}`")
        }
        Ok(Operation::RenameBusinessUnit { name, new_name }) => {
            format!("Business unit `{name}` renamed `{new_name}`")
        }
        _ => String::new(),
    };
    match op {
        Ok(op) => match super::write(c, vec![op]).await {
            Ok(revision) => c.flash(false, format!("{what} (revision {revision}).")),
            Err(e) => c.flash(true, format!("Refused: {}", e.message)),
        },
        Err(e) => c.flash(true, format!("Refused: {}", e.message)),
    }
    redirect("/console/units")
}

#[derive(Deserialize, Default)]
pub(crate) struct ListParams {
    #[serde(default)]
    after: Option<u32>,
    /// Users per page (1 to [`MAX_PAGE`]; [`PAGE`] by default).
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    find: Option<String>,
}

/// `GET /console/users`: the users whose `systemuser` record the signed-in user may read, a
/// page at a time, from the engine's list (the same readable set as the API's lists, D77).
pub(crate) async fn list(c: Console, Query(p): Query<ListParams>) -> Response {
    if let Some(name) = p.find.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        return redirect(&format!("/console/users/{}", encode(name)));
    }
    let limit = p.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    // The page from the engine's list, then the users' last access from the audit without the
    // organisation's lock, then the page rendered.
    let listed = read(&c, move |org, request| -> Result<_, ApiError> {
        let Some(me) = request.acting.user() else {
            return Err(ApiError::new("invalid_body", "the console reads as a user"));
        };
        let table = org
            .table_id("systemuser")
            .ok_or_else(|| strata_app::AppError::internal("no `systemuser` table"))?;
        let query = ListQuery {
            limit,
            after: p.after.map(|record| After {
                values: Vec::new(),
                record,
            }),
            count: true,
            work_budget: Some(crate::limits::MAX_LIST_WORK),
            ..ListQuery::default()
        };
        let found = org
            .list(me, table, &query)
            .map_err(|e| ApiError::new("bad_query", e.to_string()))?;
        let users: Vec<(UserId, String)> = found
            .records
            .iter()
            .filter_map(|r| org.user_id(&org.record(*r).key))
            .map(|u| (u, org.user(u).name.clone()))
            .collect();
        Ok((users, found.next, found.total))
    })
    .await
    .and_then(|r| r);
    let (listed, next, total) = match listed {
        Ok(l) => l,
        Err(e) => return c.error("Users", &e),
    };
    let seen = match last_seen(&c, listed.clone()).await {
        Ok(seen) => seen,
        Err(e) => return c.error("Users", &e),
    };
    let after = p.after;
    let page = read(&c, move |org, request| -> Result<Markup, ApiError> {
        let Some(me) = request.acting.user() else {
            return Err(ApiError::new("invalid_body", "the console reads as a user"));
        };
        let users: Vec<UserId> = listed.iter().map(|(u, _)| *u).collect();
        let units = org.units();
        Ok(html! {
            form.inline method="get" action="/console/users" {
                label for="find" { "Open a user by name" }
                input #find type="text" name="find" required;
                button type="submit" { "Open" }
            }
            @if let Some(total) = total { p.small { (total) " users you may read." } }
            table.list #users {
                thead { tr { th scope="col" { "User" } th scope="col" { "Business unit" } th scope="col" { "Manager" } th scope="col" { "Direct roles" } th scope="col" { "Teams" } th scope="col" { "Status" } th scope="col" { "Last seen" } } }
                tbody {
                    @for u in &users {
                        @let user = org.user(*u);
                        tr {
                            td.user-name { (user_link(&user.name)) }
                            td { (if may_read_unit(org, me, user.business_unit) { units.name(user.business_unit) } else { "(not readable)" }) }
                            td { @if let Some(m) = user.manager { @if may_see_user(org, request, m) { (user_link(&org.user(m).name)) } } }
                            td { (user.roles.len()) }
                            td { (user.teams.len()) }
                            td { (if user.enabled { "enabled" } else { "disabled" }) }
                            td.last-seen { (seen_text(seen.as_ref(), *u)) }
                        }
                    }
                }
            }
            nav.pages aria-label="Pages" {
                @if after.is_some() { a href="/console/users" { "First page" } " " }
                @if let Some(next) = &next { a rel="next" href={ "/console/users?after=" (next.record) @if limit != PAGE { "&limit=" (limit) } } { "Next page" } }
            }
        })
    })
    .await;
    match page.and_then(|p| p) {
        Ok(body) => c.page("Users", body),
        Err(e) => c.error("Users", &e),
    }
}

/// D81: each user's last access (the latest `user_access` entry of the audit, as the access
/// review finds it), for readers of the audit only (`prvReadAuditSummary`, as the audit screen);
/// `None` for the others. The users are those the page already shows (D77, D42). The audit is
/// read without the organisation's lock.
async fn last_seen(
    c: &Console,
    users: Vec<(UserId, String)>,
) -> Result<Option<HashMap<UserId, i64>>, ApiError> {
    let may = {
        let loaded = c.request.handle.read().await;
        c.request.require_misc(&loaded.org, READ_AUDIT).is_ok()
    };
    if !may || users.is_empty() {
        return Ok(may.then(HashMap::new));
    }
    let organization = c.request.handle.name.clone();
    crate::blocking(&c.state.store, move |store| {
        Ok(strata_app::review::last_seen(store, &organization, &users)?)
    })
    .await
    .map(Some)
}

/// A user's last access as RFC 3339, `never`, or why it is not shown.
fn seen_text(seen: Option<&HashMap<UserId, i64>>, user: UserId) -> String {
    match seen {
        None => "(needs prvReadAuditSummary)".to_owned(),
        Some(seen) => seen
            .get(&user)
            .map_or_else(|| "never".to_owned(), |ms| super::audit::rfc3339(*ms)),
    }
}

/// `GET /console/users/{user}`.
pub(crate) async fn show(c: Console, Path(name): Path<String>) -> Response {
    let csrf = c.csrf.clone();
    let title = format!("User {name}");
    // Only a user the page may show has their last access looked up.
    let lookup = name.clone();
    let found = read(&c, move |org, request| {
        org.user_id(&lookup)
            .filter(|u| may_see_user(org, request, *u))
            .map(|u| (u, lookup))
    })
    .await;
    let seen = match found {
        Ok(Some(user)) => last_seen(&c, vec![user]).await,
        Ok(None) => Ok(Some(HashMap::new())),
        Err(e) => Err(e),
    };
    let seen = match seen {
        Ok(seen) => seen,
        Err(e) => return c.error(&title, &e),
    };
    let page = read(&c, move |org, request| -> Result<Markup, ApiError> {
        let u = org
            .user_id(&name)
            .ok_or_else(|| ApiError::not_found(format!("unknown user `{name}`")))?;
        if !may_see_user(org, request, u) {
            return Err(ApiError::new(
                "denied",
                format!("you may not read user `{name}` (no Read on that user's record)"),
            ));
        }
        let me = request.acting.user();
        let unit_name = |b: BusinessUnitId| {
            if me.is_none_or(|me| may_read_unit(org, me, b)) {
                org.units().name(b).to_owned()
            } else {
                "(not readable)".to_owned()
            }
        };
        let user = org.user(u);
        let through_teams: Vec<(String, String)> = user
            .teams
            .iter()
            .flat_map(|t| {
                let team = org.team(*t);
                team.roles
                    .iter()
                    .map(|r| (org.role(*r).name.clone(), team.name.clone()))
            })
            .collect();
        let profiles: Vec<&str> = org
            .profile_ids()
            .map(|p| org.profile(p))
            .filter(|p| {
                p.members.iter().any(|m| match m {
                    Principal::User(x) => *x == u,
                    Principal::Team(t) => user.teams.contains(t),
                    Principal::Organization => false,
                })
            })
            .map(|p| p.name.as_str())
            .collect();
        let licences: Vec<&str> = org
            .user_licences(u)
            .into_iter()
            .map(|l| l.name.as_str())
            .collect();
        let assignable: Vec<&str> = org
            .role_ids()
            .map(|r| org.role(r))
            .filter(|r| !r.deleted && r.deprecation.is_none())
            .filter(|r| !user.roles.iter().any(|a| org.role(a.role).name == r.name))
            .map(|r| r.name.as_str())
            .collect();
        let action = format!("/console/users/{}/change", encode(&user.name));
        Ok(html! {
            dl.facts {
                dt { "Business unit" } dd { (unit_name(user.business_unit)) }
                dt { "Manager" } dd { @match user.manager { Some(m) if may_see_user(org, request, m) => (user_link(&org.user(m).name)), Some(_) => "(not readable)", None => "none" } }
                dt { "Position" } dd { (user.position.map_or("none".to_owned(), |p| org.position(p).name.clone())) }
                dt { "Status" } dd #status { (if user.enabled { "enabled" } else { "disabled" }) }
                dt { "Last seen" } dd #last-seen { (seen_text(seen.as_ref(), u)) }
                dt { "System Administrator" } dd { (if org.system_administrator(u).is_some() { "yes" } else { "no" }) }
                dt { "Licences" } dd { @if licences.is_empty() { "none" } @else { (licences.join(", ")) } }
                dt { "Column security profiles" } dd { @if profiles.is_empty() { "none" } @else { (profiles.join(", ")) } }
            }
            h2 { "Roles" }
            table.list #roles {
                thead { tr { th scope="col" { "Role" } th scope="col" { "How" } th scope="col" { "Action" } } }
                tbody {
                    @for a in &user.roles {
                        @let role = &org.role(a.role).name;
                        tr {
                            td { (role_link(role)) }
                            td { "direct" @if let Some(b) = a.business_unit { " in " (unit_name(b)) } }
                            td {
                                form.inline method="post" action=(action) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="action" value="remove_role";
                                    input type="hidden" name="role" value=(role);
                                    button type="submit" aria-label={ "Remove role " (role) } { "Remove" }
                                }
                            }
                        }
                    }
                    @for (role, team) in &through_teams {
                        tr { td { (role_link(role)) } td { "through team " strong { (team) } } td {} }
                    }
                }
            }
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="assign_role";
                label for="assign" { "Assign a role" }
                select #assign name="role" required {
                    @for r in &assignable { option value=(r) { (r) } }
                }
                button type="submit" { "Assign" }
            }
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="move";
                label for="unit" { "Move to the business unit" }
                select #unit name="business_unit" required {
                    @for b in org.units().ids().filter(|b| me.is_none_or(|me| may_read_unit(org, me, *b))) {
                        option value=(org.units().name(b)) selected[b == user.business_unit] { (org.units().name(b)) }
                    }
                }
                button type="submit" { "Move" }
            }
            h2 { "Teams" }
            @if user.teams.is_empty() { p { "none" } }
            ul { @for t in &user.teams { li { (org.team(*t).name) } } }
            h2 { "Status" }
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value=(if user.enabled { "disable" } else { "enable" });
                button type="submit" { (if user.enabled { "Disable this user" } else { "Enable this user" }) }
            }
            p { a href={ "/console/access?user=" (encode(&user.name)) } { "Check this user's access to a record" } }
        })
    })
    .await;
    match page.and_then(|p| p) {
        Ok(body) => c.page(&title, body),
        Err(e) => c.error(&title, &e),
    }
}

/// `POST /console/users/{user}/change`: `action` = `assign_role` | `remove_role` (with `role`),
/// `move` (with `business_unit`), `disable` | `enable`, written by the signed-in user through the application layer.
pub(crate) async fn change(Path(name): Path<String>, change: Change) -> Response {
    let back = format!("/console/users/{}", encode(&name));
    let op = match change.field("action") {
        Ok("assign_role") | Ok("remove_role") => match change.field("role") {
            Ok(role) => {
                if change.form.get("action").map(String::as_str) == Some("assign_role") {
                    Operation::AssignRole {
                        actor: None,
                        principal: name.clone(),
                        role: role.to_owned(),
                        business_unit: None,
                    }
                } else {
                    Operation::RemoveRole {
                        actor: None,
                        principal: name.clone(),
                        role: role.to_owned(),
                    }
                }
            }
            Err(e) => {
                change.console.flash(true, e.message.clone());
                return redirect(&back);
            }
        },
        Ok("move") => match change.field("business_unit") {
            Ok(unit) => Operation::MoveUser {
                actor: None,
                user: name.clone(),
                business_unit: unit.to_owned(),
            },
            Err(e) => {
                change.console.flash(true, e.message.clone());
                return redirect(&back);
            }
        },
        Ok("disable") | Ok("enable") => Operation::SetUserEnabled {
            user: name.clone(),
            enabled: change.form.get("action").map(String::as_str) == Some("enable"),
        },
        _ => {
            change.console.flash(true, "unknown action");
            return redirect(&back);
        }
    };
    let what = match &op {
        Operation::AssignRole { role, .. } => format!("Role `{role}` assigned to `{name}`"),
        Operation::RemoveRole { role, .. } => format!("Role `{role}` removed from `{name}`"),
        Operation::MoveUser { business_unit, .. } => {
            format!("User `{name}` moved to business unit `{business_unit}`")
        }
        Operation::SetUserEnabled { enabled: true, .. } => format!("User `{name}` enabled"),
        _ => format!("User `{name}` disabled"),
    };
    let c = &change.console;
    match super::write(c, vec![op]).await {
        Ok(revision) => c.flash(false, format!("{what} (revision {revision}).")),
        Err(e) => c.flash(true, format!("Refused: {}", e.message)),
    }
    redirect(&back)
}

/// D76 for teams: a team is shown to a user whose Read on `team` covers the team's unit (System
/// Administrators every team).
fn may_read_team(org: &Organization, me: UserId, unit: BusinessUnitId) -> bool {
    if org.system_administrator(me).is_some() {
        return true;
    }
    org.table_id("team")
        .is_some_and(|t| org.explain_on_unit(me, t, Privilege::Read, unit).allowed)
}

/// The most record access teams listed.
const RECORD_TEAMS_SHOWN: usize = 200;

/// An access mask as its privileges' names.
fn rights_text(mask: strata_engine::AccessMask) -> String {
    let names: Vec<&str> = mask.privileges().map(Privilege::name).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// D83: access team templates (customization: listed to System Administrators, who alone
/// create them) and the record access teams made from them, each listed to a user who may read
/// its record, with the members that user may see.
fn templates_view(org: &Organization, request: &OrgRequest, me: UserId, csrf: &str) -> Markup {
    let admin = org.system_administrator(me).is_some();
    let record_teams: Vec<(
        strata_engine::TeamId,
        strata_engine::RecordId,
        strata_engine::TemplateId,
    )> = org
        .team_ids()
        .filter_map(|t| org.team(t).record_team.map(|(r, tpl)| (t, r, tpl)))
        .filter(|(_, r, _)| {
            request
                .acting
                .each()
                .all(|u| org.check(u, Privilege::Read, *r))
        })
        .collect();
    let tables: Vec<&str> = org
        .table_ids()
        .map(|t| org.table(t))
        .filter(|t| t.ownership == strata_engine::Ownership::UserOrTeam)
        .map(|t| t.name.as_str())
        .collect();
    html! {
        h2 #templates-title { "Access team templates" }
        @if admin {
            table.list #templates aria-labelledby="templates-title" {
                thead { tr { th scope="col" { "Template" } th scope="col" { "Table" } th scope="col" { "Access rights" } th scope="col" { "Mask" } th scope="col" { "Record teams" } } }
                tbody {
                    @for tpl in org.template_ids() {
                        @let template = org.template(tpl);
                        tr data-template=(template.name) {
                            td { (template.name) }
                            td { (org.table(template.table).name) }
                            td { (rights_text(template.rights)) }
                            td { code { (template.rights.bits()) } }
                            td { (org.team_ids().filter(|t| org.team(*t).record_team.is_some_and(|(_, x)| x == tpl)).count()) }
                        }
                    }
                }
            }
            h3 { "Add a template" }
            form.question method="post" action="/console/teams/change" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="add_template";
                div.field { label for="template-name" { "Name" } input #template-name type="text" name="name" required; }
                div.field {
                    label for="template-table" { "Table" }
                    select #template-table name="table" required { @for t in &tables { option value=(t) { (t) } } }
                }
                fieldset {
                    legend { "Access rights" }
                    @for p in Privilege::ALL {
                        label.check { input type="checkbox" name={ "right:" (p.name()) } value="1" id={ "right-" (p.name()) }; " " (p.name()) }
                    }
                }
                button type="submit" { "Add the template" }
            }
        } @else {
            p.small { "Access team templates are customization: System Administrators see and add them." }
        }
        h2 #record-teams-title { "Record access teams" }
        p.small { (record_teams.len()) " record access teams on records you may read." }
        table.list #record-teams aria-labelledby="record-teams-title" {
            thead { tr { th scope="col" { "Record" } th scope="col" { "Table" } th scope="col" { "Template" } th scope="col" { "Rights" } th scope="col" { "Members" } } }
            tbody {
                @for (t, r, tpl) in record_teams.iter().take(RECORD_TEAMS_SHOWN) {
                    @let record = org.record(*r);
                    @let template = org.template(*tpl);
                    @let members: Vec<UserId> = org.team(*t).members.iter().copied().filter(|u| may_see_user(org, request, *u)).collect();
                    tr {
                        td { a href={ "/console/access?record=" (encode(&record.key)) } { (record.key) } }
                        td { (org.table(record.table).name) }
                        td { (template.name) }
                        td { (rights_text(template.rights)) }
                        td {
                            @for (i, u) in members.iter().enumerate() {
                                @if i > 0 { ", " }
                                (user_link(&org.user(*u).name))
                            }
                        }
                    }
                }
            }
        }
        @if record_teams.len() > RECORD_TEAMS_SHOWN { p.small { "The first " (RECORD_TEAMS_SHOWN) " are shown." } }
    }
}

/// `POST /console/teams/change`: `action` = `add_template` (`name`, `table`, `right:<privilege>`
/// for each right), written as the signed-in user.
pub(crate) async fn change_team(change: Change) -> Response {
    let op = match change.field("action") {
        Ok("add_template") => change.field("name").and_then(|name| {
            Ok(Operation::AddTemplate {
                name: name.to_owned(),
                table: change.field("table")?.to_owned(),
                rights: Privilege::ALL
                    .into_iter()
                    .filter(|p| change.form.contains_key(&format!("right:{}", p.name())))
                    .map(|p| p.name().to_owned())
                    .collect(),
            })
        }),
        _ => Err(ApiError::new("invalid_body", "unknown action").at("action")),
    };
    let c = &change.console;
    match op {
        Ok(op) => {
            let what = match &op {
                Operation::AddTemplate { name, table, .. } => {
                    format!("Access team template `{name}` added on `{table}`")
                }
                _ => String::new(),
            };
            match super::write(c, vec![op]).await {
                Ok(revision) => c.flash(false, format!("{what} (revision {revision}).")),
                Err(e) => c.flash(true, format!("Refused: {}", e.message)),
            }
        }
        Err(e) => c.flash(true, format!("Refused: {}", e.message)),
    }
    redirect("/console/teams")
}

/// The most members listed per team.
const MEMBERS_SHOWN: usize = 20;

/// `GET /console/teams`: the teams the signed-in user may read, with their type, unit,
/// members (those the user may see) and roles.
pub(crate) async fn teams(c: Console) -> Response {
    let csrf = c.csrf.clone();
    let body = read(&c, move |org, request| -> Result<Markup, ApiError> {
        let Some(me) = request.acting.user() else {
            return Err(ApiError::new("invalid_body", "the console reads as a user"));
        };
        let teams: Vec<strata_engine::TeamId> = org
            .team_ids()
            .filter(|t| org.team(*t).record_team.is_none())
            .filter(|t| may_read_team(org, me, org.team(*t).business_unit))
            .collect();
        let kind = |k: strata_engine::TeamType| match k {
            strata_engine::TeamType::Owner => "owner",
            strata_engine::TeamType::Access => "access",
            strata_engine::TeamType::SecurityGroup => "security group",
            strata_engine::TeamType::OfficeGroup => "Office group",
        };
        Ok(html! {
            p.small { (teams.len()) " teams you may read (record access teams are listed with their records)." }
            table.list #teams {
                thead { tr { th scope="col" { "Team" } th scope="col" { "Type" } th scope="col" { "Business unit" } th scope="col" { "Members" } th scope="col" { "Roles" } } }
                tbody {
                    @for t in &teams {
                        @let team = org.team(*t);
                        @let members: Vec<UserId> = team.members.iter().copied().filter(|u| may_see_user(org, request, *u)).collect();
                        tr {
                            td { (team.name) }
                            td { (kind(team.kind)) }
                            td { (if may_read_unit(org, me, team.business_unit) { org.units().name(team.business_unit) } else { "(not readable)" }) }
                            td {
                                (team.members.len())
                                @if !members.is_empty() { ": " }
                                @for (i, u) in members.iter().take(MEMBERS_SHOWN).enumerate() {
                                    @if i > 0 { ", " }
                                    (user_link(&org.user(*u).name))
                                }
                                @if members.len() > MEMBERS_SHOWN { ", …" }
                            }
                            td {
                                @for (i, r) in team.roles.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    (role_link(&org.role(*r).name))
                                }
                            }
                        }
                    }
                }
            }
            (templates_view(org, request, me, &csrf))
        })
    })
    .await;
    match body.and_then(|b| b) {
        Ok(b) => c.page("Teams", b),
        Err(e) => c.error("Teams", &e),
    }
}
