//! The role editor: the privilege × depth grid grouped as Dataverse's role editor groups tables
//! (D73), a cell clicked to cycle its depth, a row or a column set at once, tables searched.
//! The pending change lives in the session (D78); while there is one, every page shows it as a
//! diff and a dry run of its access difference through the application layer (who gains or
//! loses what, D54–D56), and a refusal (an escalation, D11) is shown on the cell that caused it.
//! Saving writes the cells as `set_role_privilege` operations on the one write path.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use strata_engine::{Depth, Organization, Ownership, Privilege, RoleId, TableId};
use strata_ops::Operation;

use super::session::{Draft, MAX_DRAFT_CELLS, Pending};
use super::{Change, Console, circle, depth_label, encode, legend, read, redirect, role_link};
use crate::error::ApiError;
use crate::request::OrgRequest;

/// The groups of Dataverse's role editor, in its order; tables it does not list are Custom
/// Entities.
pub(crate) const GROUPS: [&str; 8] = [
    "Core Records",
    "Sales",
    "Service",
    "Marketing",
    "Business Management",
    "Service Management",
    "Customization",
    "Custom Entities",
];

/// D73: the group of a table, by Dataverse's standard logical names; every other table
/// (solution tables such as `msdyn_…` included, as Dataverse's editor shows them) is a Custom
/// Entity.
pub(crate) fn group_of(table: &str) -> &'static str {
    match table {
        "account"
        | "contact"
        | "activitypointer"
        | "email"
        | "phonecall"
        | "task"
        | "appointment"
        | "letter"
        | "fax"
        | "annotation"
        | "connection"
        | "queue"
        | "queueitem"
        | "report"
        | "userquery"
        | "userform"
        | "post"
        | "feedback"
        | "knowledgearticle"
        | "sharepointsite"
        | "sharepointdocumentlocation"
        | "mailbox"
        | "socialactivity"
        | "socialprofile"
        | "template"
        | "position"
        | "customeraddress"
        | "recurringappointmentmaster" => "Core Records",
        "lead" | "opportunity" | "quote" | "salesorder" | "invoice" | "product" | "pricelevel"
        | "competitor" | "discounttype" | "salesliterature" | "goal" | "goalrollupquery"
        | "metric" | "opportunityproduct" | "quotedetail" | "salesorderdetail"
        | "invoicedetail" | "territory" | "uom" | "uomschedule" => "Sales",
        "incident"
        | "contract"
        | "contractdetail"
        | "kbarticle"
        | "entitlement"
        | "knowledgebaserecord"
        | "incidentresolution"
        | "serviceappointment" => "Service",
        "campaign" | "campaignactivity" | "campaignresponse" | "list" | "bulkoperation" => {
            "Marketing"
        }
        "businessunit"
        | "systemuser"
        | "team"
        | "role"
        | "transactioncurrency"
        | "organization"
        | "fieldsecurityprofile"
        | "equipment"
        | "teamtemplate"
        | "connectionrole"
        | "businessunitnewsarticle"
        | "import"
        | "importmap"
        | "duplicaterule"
        | "emailserverprofile"
        | "systemuserroles"
        | "teamroles" => "Business Management",
        "calendar" | "sla" | "routingrule" | "service" | "site" | "resourcegroup"
        | "convertrule" => "Service Management",
        "entity"
        | "attribute"
        | "relationship"
        | "solution"
        | "publisher"
        | "webresource"
        | "pluginassembly"
        | "plugintype"
        | "sdkmessageprocessingstep"
        | "workflow"
        | "systemform"
        | "savedquery"
        | "appmodule"
        | "customcontrol"
        | "optionset"
        | "sitemap" => "Customization",
        _ => "Custom Entities",
    }
}

/// The depths a cell may take: none or organization on organization-owned tables (as the
/// engine requires), every depth elsewhere.
fn depths_of(org: &Organization, table: TableId) -> &'static [Depth] {
    if org.table(table).ownership == Ownership::Organization {
        &[Depth::None, Depth::Organization]
    } else {
        &Depth::ALL
    }
}

/// The next depth of a cell when clicked.
fn cycle(org: &Organization, table: TableId, depth: Depth) -> Depth {
    let depths = depths_of(org, table);
    let at = depths.iter().position(|d| *d == depth).unwrap_or(0);
    depths[(at + 1) % depths.len()]
}

fn role_id(org: &Organization, name: &str) -> Result<RoleId, ApiError> {
    org.role_id(name)
        .ok_or_else(|| ApiError::not_found(format!("unknown role `{name}`")))
}

/// D42: reading a role needs Read on `role` over its unit, for every acting user.
fn require_read(org: &Organization, request: &OrgRequest, role: RoleId) -> Result<(), ApiError> {
    let r = org.role(role);
    request.acting.each().try_for_each(|u| {
        crate::request::require_role_read(org, u, r.business_unit, &format!("role `{}`", r.name))
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct ListParams {
    #[serde(default)]
    q: Option<String>,
}

/// `GET /console/roles`: the roles the signed-in user may read, searched by name.
pub(crate) async fn list(c: Console, Query(p): Query<ListParams>) -> Response {
    let q = p.q.unwrap_or_default();
    let query = q.to_lowercase();
    let body = read(&c, move |org, request| {
        let roles: Vec<RoleId> = org
            .role_ids()
            .filter(|r| !org.role(*r).deleted)
            .filter(|r| org.role(*r).name.to_lowercase().contains(&query))
            .filter(|r| require_read(org, request, *r).is_ok())
            .collect();
        html! {
            form.inline method="get" action="/console/roles" role="search" {
                label for="q" { "Search roles" }
                input #q type="search" name="q" value=(q);
                button type="submit" { "Search" }
            }
            p.small { (roles.len()) " roles you may read." }
            table.list {
                thead { tr { th scope="col" { "Role" } th scope="col" { "Business unit" } th scope="col" { "Tables granted" } th scope="col" { "Notes" } } }
                tbody {
                    @for r in &roles {
                        @let role = org.role(*r);
                        tr {
                            td { (role_link(&role.name)) }
                            td { (org.units().name(role.business_unit)) }
                            td { (role.privileges.len()) }
                            td {
                                @if role.system_administrator { "System Administrator (not editable) " }
                                @if role.deprecation.is_some() { "deprecated" }
                            }
                        }
                    }
                }
            }
        }
    })
    .await;
    match body {
        Ok(body) => c.page("Roles", body),
        Err(e) => c.error("Roles", &e),
    }
}

#[derive(Deserialize, Default, Clone)]
pub(crate) struct EditorParams {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    group: Option<String>,
    /// Another role to compare this one with.
    #[serde(default)]
    compare: Option<String>,
}

/// The editor's query string for the same view.
fn view_query(q: &str, group: &str) -> String {
    let mut parts = Vec::new();
    if !q.is_empty() {
        parts.push(format!("q={}", encode(q)));
    }
    if !group.is_empty() {
        parts.push(format!("group={}", encode(group)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The draft as operations, in the draft's order: the cells, then the miscellaneous
/// privileges (a refusal's `/i` names the i-th).
fn draft_ops(role: &str, draft: &Draft) -> Vec<Operation> {
    let cells = draft
        .cells
        .iter()
        .map(|((table, privilege), depth)| Operation::SetRolePrivilege {
            role: role.to_owned(),
            table: table.clone(),
            privilege: privilege.name().to_owned(),
            depth: depth.name().to_owned(),
        });
    let misc = draft
        .misc
        .iter()
        .map(|(privilege, held)| Operation::SetRoleMiscPrivilege {
            role: role.to_owned(),
            privilege: privilege.clone(),
            held: *held,
        });
    cells.chain(misc).collect()
}

/// What a refusal names: `/i` in a batch of several, the one change of a batch of one.
fn refused_cell(draft: &Draft, e: &ApiError) -> Option<Pending> {
    let index = match e.field.as_deref() {
        Some(f) => f
            .strip_prefix('/')?
            .split('/')
            .next()?
            .parse::<usize>()
            .ok()?,
        None if draft.len() == 1 => 0,
        None => return None,
    };
    match index.checked_sub(draft.cells.len()) {
        None => draft
            .cells
            .keys()
            .nth(index)
            .map(|(t, p)| Pending::Cell(t.clone(), *p)),
        Some(i) => draft.misc.keys().nth(i).map(|m| Pending::Misc(m.clone())),
    }
}

/// `GET /console/roles/{role}`: the editor.
pub(crate) async fn editor(
    c: Console,
    Path(name): Path<String>,
    Query(p): Query<EditorParams>,
) -> Response {
    let title = format!("Role {name}");
    let (draft, refusal) = c
        .session(|s| (s.drafts.get(&name).cloned(), s.refusals.get(&name).cloned()))
        .unwrap_or_default();
    let draft = draft.unwrap_or_default();
    // The role must exist and be readable before anything is tried.
    let known = read(&c, {
        let name = name.clone();
        move |org, request| role_id(org, &name).and_then(|r| require_read(org, request, r))
    })
    .await;
    if let Err(e) = known.and_then(|r| r) {
        return c.error(&title, &e);
    }
    // The dry run of the pending change, as the save would write it.
    let (dry, refusal) = if draft.is_empty() {
        (None, refusal)
    } else {
        match super::dry_run(&c, draft_ops(&name, &draft)).await {
            Ok(found) => (Some(found), None),
            Err(e) => (None, Some((refused_cell(&draft, &e), e.message.clone()))),
        }
    };
    let csrf = c.csrf.clone();
    let body = read(&c, move |org, request| {
        let culprits = match (&refusal, request.acting.user()) {
            (Some(_), Some(me)) => beyond_privileges(org, me, &name, &draft),
            _ => BTreeSet::new(),
        };
        let view = View {
            draft: &draft,
            dry: dry.as_ref(),
            refusal: refusal.as_ref(),
            culprits: &culprits,
            csrf: &csrf,
        };
        render_editor(org, &name, &p, &view)
    })
    .await;
    match body {
        Ok(body) => c.page(&title, body),
        Err(e) => c.error(&title, &e),
    }
}

/// The cells of the role, with the pending change, that `me` may not hand out: each cell asked
/// of the engine's own escalation check (D11) on its own, so that a refusal of the whole grid
/// is shown on the cells that cause it.
fn beyond_privileges(
    org: &Organization,
    me: strata_engine::UserId,
    name: &str,
    draft: &Draft,
) -> BTreeSet<Pending> {
    let Some(id) = org.role_id(name) else {
        return BTreeSet::new();
    };
    let role = org.role(id);
    let mut cells: BTreeMap<(String, Privilege), (TableId, Depth)> = BTreeMap::new();
    for (t, depths) in &role.privileges {
        for p in Privilege::ALL {
            cells.insert((org.table(*t).name.clone(), p), (*t, depths[p.index()]));
        }
    }
    for ((table, p), d) in &draft.cells {
        if let Some(t) = org.table_id(table) {
            cells.insert((table.clone(), *p), (t, *d));
        }
    }
    cells
        .into_iter()
        .filter(|(_, (_, d))| *d != Depth::None)
        .filter(|((_, p), (t, d))| {
            org.check_no_escalation(
                me,
                strata_engine::Principal::Organization,
                role.business_unit,
                name,
                role.system_administrator,
                [(*t, *p, *d)],
                &[],
            )
            .is_err()
        })
        .map(|((t, p), _)| Pending::Cell(t, p))
        .chain(
            misc_after(role, draft)
                .into_iter()
                .filter(|m| {
                    org.check_no_escalation(
                        me,
                        strata_engine::Principal::Organization,
                        role.business_unit,
                        name,
                        role.system_administrator,
                        [],
                        std::slice::from_ref(m),
                    )
                    .is_err()
                })
                .map(Pending::Misc),
        )
        .collect()
}

/// The miscellaneous privileges the role holds once the pending change is saved.
fn misc_after(role: &strata_engine::Role, draft: &Draft) -> Vec<String> {
    let mut misc: BTreeSet<String> = role.misc.iter().cloned().collect();
    for (m, held) in &draft.misc {
        if *held {
            misc.insert(m.clone());
        } else {
            misc.remove(m);
        }
    }
    misc.into_iter().collect()
}

/// What the editor shows besides the role.
struct View<'a> {
    draft: &'a Draft,
    dry: Option<&'a strata_app::DryRun>,
    /// The refusal of the pending change: the cell or miscellaneous privilege whose operation
    /// was refused, and why.
    refusal: Option<&'a (Option<Pending>, String)>,
    /// Cells and miscellaneous privileges the signed-in user may not hand out (shown when
    /// there is a refusal).
    culprits: &'a BTreeSet<Pending>,
    csrf: &'a str,
}

#[allow(clippy::too_many_lines, reason = "one template: the whole editor")]
fn render_editor(org: &Organization, name: &str, p: &EditorParams, view: &View<'_>) -> Markup {
    let View {
        draft,
        dry,
        refusal,
        culprits,
        csrf,
    } = *view;
    let Some(id) = org.role_id(name) else {
        return html! { p { "This role no longer exists." } };
    };
    let role = org.role(id);
    let q = p.q.clone().unwrap_or_default();
    let needle = q.to_lowercase();
    let mut tables: Vec<TableId> = org
        .table_ids()
        .filter(|t| org.table(*t).name.to_lowercase().contains(&needle))
        .collect();
    tables.sort_by_key(|t| {
        let n = &org.table(*t).name;
        (GROUPS.iter().position(|g| *g == group_of(n)), n.clone())
    });
    // Tabs: one group at a time, as Dataverse's editor; every group when searching.
    let counts: BTreeMap<&str, usize> = tables.iter().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(group_of(&org.table(*t).name)).or_insert(0) += 1;
        m
    });
    let group = p.group.clone().unwrap_or_default();
    let shown: Vec<TableId> = tables
        .iter()
        .copied()
        .filter(|t| group.is_empty() || group_of(&org.table(*t).name) == group)
        .collect();
    let action = format!("/console/roles/{}/edit", encode(name));
    let save = format!("/console/roles/{}/save", encode(name));
    let base = format!("/console/roles/{}", encode(name));
    let editable = !role.system_administrator;
    let refused_at = refusal.and_then(|(cell, _)| cell.clone());
    let cell_id = |table: &str, p: Privilege| format!("c-{table}-{}", p.name());
    html! {
        dl.facts {
            dt { "Business unit" } dd { (org.units().name(role.business_unit)) }
            dt { "Members inherit" } dd { (if role.inheritance == strata_engine::Inheritance::TeamOnly { "team privileges only" } else { "direct user and team privileges" }) }
            @if let Some(d) = &role.deprecation { dt { "Deprecated" } dd { (d.message) } }
        }
        @if role.system_administrator {
            p.refusal { "The System Administrator role holds every privilege and cannot be edited (D10)." }
        }
        (legend())
        form.inline method="get" action=(base) role="search" {
            label for="q" { "Search tables" }
            input #q type="search" name="q" value=(q);
            button type="submit" { "Search" }
        }
        nav.tabs aria-label="Table groups" {
            a href={ (base) (view_query(&q, "")) } aria-current=[group.is_empty().then_some("page")] { "All (" (tables.len()) ")" }
            @for g in GROUPS {
                @if let Some(n) = counts.get(g) {
                    " " a href={ (base) (view_query(&q, g)) } aria-current=[(group == g).then_some("page")] { (g) " (" (n) ")" }
                }
            }
        }
        div #editor {
            @if !draft.is_empty() {
                section.pending aria-labelledby="pending-title" {
                    h2 #pending-title { "Pending change (" (draft.len()) " cells, not saved)" }
                    table.list #diff {
                        thead { tr { th scope="col" { "Table" } th scope="col" { "Privilege" } th scope="col" { "Now" } th scope="col" { "After saving" } } }
                        tbody {
                            @for ((table, privilege), depth) in &draft.cells {
                                @let now = org.table_id(table).map_or(Depth::None, |t| role.depth(t, *privilege));
                                tr {
                                    td { (table) } td { (privilege.name()) }
                                    td { span.circle aria-hidden="true" { (circle(now)) } " " (depth_label(now)) }
                                    td { span.circle aria-hidden="true" { (circle(*depth)) } " " (depth_label(*depth)) }
                                }
                            }
                            @for (m, held) in &draft.misc {
                                tr {
                                    td { "miscellaneous" } td { code { (m) } }
                                    td { (if *held { "not held" } else { "held" }) }
                                    td { (if *held { "held" } else { "not held" }) }
                                }
                            }
                        }
                    }
                    @if let Some((_, message)) = refusal {
                        div.refusal role="alert" #refusal { p { strong { "Refused: " } (message) } }
                    }
                    @if let Some(dry) = dry { (dry_run_view(dry)) }
                    form.inline method="post" action=(save) {
                        input type="hidden" name="csrf" value=(csrf);
                        button #save type="submit" disabled[refusal.is_some()] { "Save " (draft.len()) " changes" }
                    }
                    form.inline method="post" action=(action) hx-post=(action) hx-target="#editor" hx-select="#editor" hx-swap="outerHTML" hx-select-oob="#flash-area" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="q" value=(q);
                        input type="hidden" name="group" value=(group);
                        button #discard type="submit" name="discard" value="1" { "Discard" }
                    }
                }
            } @else if let Some((_, message)) = refusal {
                div.refusal role="alert" #refusal { p { strong { "Refused: " } (message) } }
            }
            form #grid method="post" action=(action) hx-post=(action) hx-target="#editor" hx-select="#editor" hx-swap="outerHTML" hx-select-oob="#flash-area" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="q" value=(q);
                input type="hidden" name="group" value=(group);
                table.grid {
                    caption { "Privileges of " (name) ": click a cell to change its depth" }
                    thead {
                        tr {
                            th scope="col" { "Table" }
                            @for p in Privilege::ALL { th scope="col" { (p.name()) } }
                            th scope="col" { "Whole row" }
                        }
                        @if editable {
                            tr.setters {
                                th scope="row" { "Whole column (shown tables)" }
                                @for p in Privilege::ALL {
                                    td {
                                        label.visually-hidden for={ "col-" (p.name()) } { "Depth for the whole " (p.name()) " column" }
                                        select id={ "col-" (p.name()) } name={ "column_depth:" (p.name()) } {
                                            @for d in Depth::ALL { option value=(d.name()) { (circle(d)) " " (depth_label(d)) } }
                                        }
                                        button type="submit" name="column" value=(p.name()) aria-label={ "Set the " (p.name()) " column" } { "Set" }
                                    }
                                }
                                td {}
                            }
                        }
                    }
                    @for g in GROUPS {
                        @let rows: Vec<TableId> = shown.iter().copied().filter(|t| group_of(&org.table(*t).name) == g).collect();
                        @if !rows.is_empty() {
                            tbody {
                                tr.group { th colspan="10" scope="rowgroup" { (g) } }
                                @for t in &rows {
                                    @let tname = &org.table(*t).name;
                                    tr {
                                        th scope="row" { (tname) }
                                        @for p in Privilege::ALL {
                                            @let now = role.depth(*t, p);
                                            @let pending = draft.cells.get(&(tname.clone(), p)).copied();
                                            @let shown_depth = pending.unwrap_or(now);
                                            @let refused_change = refused_at.as_ref() == Some(&Pending::Cell(tname.clone(), p));
                                            @let beyond = culprits.contains(&Pending::Cell(tname.clone(), p));
                                            @let refused = refused_change || beyond;
                                            td.refused[refused] {
                                                button.cell.changed[pending.is_some()] type="submit" name="cell" value={ (tname) "|" (p.name()) }
                                                    id=(cell_id(tname, p)) disabled[!editable]
                                                    data-depth=(shown_depth.name())
                                                    aria-label={ (tname) " " (p.name()) ": " (depth_label(shown_depth)) @if pending.is_some() { " (pending, now " (depth_label(now)) ")" } @if beyond { " (refused: beyond your privileges)" } @else if refused_change { " (refused change)" } }
                                                    title={ (depth_label(shown_depth)) @if pending.is_some() { " — was " (depth_label(now)) } } {
                                                    (circle(shown_depth))
                                                }
                                                @if beyond {
                                                    span.cell-refusal { "refused: beyond your privileges" }
                                                } @else if refused_change {
                                                    span.cell-refusal { "refused change" }
                                                }
                                            }
                                        }
                                        td {
                                            @if editable {
                                                label.visually-hidden for={ "row-" (tname) } { "Depth for every privilege of " (tname) }
                                                select id={ "row-" (tname) } name={ "row_depth:" (tname) } {
                                                    @for d in depths_of(org, *t) { option value=(d.name()) { (circle(*d)) " " (depth_label(*d)) } }
                                                }
                                                button type="submit" name="row" value=(tname) aria-label={ "Set every privilege of " (tname) } { "Set" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (misc_view(role, name, p, view))
        }
        (licences_view(org, id))
        (compare_view(org, id, p))
        (manage_view(org, id, csrf))
    }
}

/// The role's miscellaneous privileges (D82): the engine's catalogue and any other the role
/// holds, each toggled into the pending change as the grid's cells are; a refusal shown on the
/// privilege that caused it.
fn misc_view(role: &strata_engine::Role, name: &str, p: &EditorParams, view: &View<'_>) -> Markup {
    let View {
        draft,
        refusal,
        culprits,
        csrf,
        ..
    } = *view;
    let action = format!("/console/roles/{}/edit", encode(name));
    let editable = !role.system_administrator;
    let mut names: BTreeSet<&str> = strata_engine::privilege_names::MISC_PRIVILEGES
        .iter()
        .copied()
        .collect();
    names.extend(role.misc.iter().map(String::as_str));
    names.extend(draft.misc.keys().map(String::as_str));
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_by_key(|n| n.to_lowercase());
    let refused_at = refusal.and_then(|(at, _)| at.clone());
    let q = p.q.clone().unwrap_or_default();
    let group = p.group.clone().unwrap_or_default();
    html! {
        h2 #misc-title { "Miscellaneous privileges" }
        p.small { (role.misc.len()) " held. Click one to give it or take it away; the change is pending until saved." }
        form #misc method="post" action=(action) hx-post=(action) hx-target="#editor" hx-select="#editor" hx-swap="outerHTML" hx-select-oob="#flash-area" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="q" value=(q);
            input type="hidden" name="group" value=(group);
            table.list aria-labelledby="misc-title" {
                thead { tr { th scope="col" { "Privilege" } th scope="col" { "Held" } } }
                tbody {
                    @for m in &names {
                        @let now = role.misc.iter().any(|x| x == m);
                        @let pending = draft.misc.get(*m).copied();
                        @let held = pending.unwrap_or(now);
                        @let key = Pending::Misc((*m).to_owned());
                        @let beyond = culprits.contains(&key);
                        @let refused = beyond || refused_at.as_ref() == Some(&key);
                        tr.refused[refused] {
                            th scope="row" { code { (m) } }
                            td {
                                button.misc.changed[pending.is_some()] type="submit" name="misc" value=(m)
                                    id={ "m-" (m) } disabled[!editable] data-held=(held)
                                    aria-label={ (m) ": " (if held { "held" } else { "not held" }) @if pending.is_some() { " (pending)" } @if beyond { " (refused: beyond your privileges)" } @else if refused { " (refused change)" } } {
                                    (if held { "● held" } else { "○ not held" })
                                }
                                @if beyond {
                                    span.cell-refusal { "refused: beyond your privileges" }
                                } @else if refused {
                                    span.cell-refusal { "refused change" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Each licence of the catalogue, and whether the role (as saved) gives more than it allows,
/// cell by cell: the API's answer (`GET …/licences/{licence}/exceeds?role=`, the same Read on
/// the role this page needs).
fn licences_view(org: &Organization, id: RoleId) -> Markup {
    let role = &org.role(id).name;
    let s = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let answers: Vec<(String, Result<serde_json::Value, strata_ops::OpError>)> = org
        .licences()
        .iter()
        .map(|l| {
            (
                l.name.clone(),
                strata_ops::exceeds_json(org, &l.name, Some(role)),
            )
        })
        .collect();
    html! {
        h2 #licences-title { "Licences" }
        @if answers.is_empty() {
            p { "The organization has no licence catalogue." }
        } @else {
            p.small { "Whether this role, as saved, gives more than each licence allows (a user holding only that licence is capped at its ceilings)." }
            table.list #role-licences aria-labelledby="licences-title" {
                thead { tr { th scope="col" { "Licence" } th scope="col" { "Fits" } th scope="col" { "Where the role exceeds it" } } }
                tbody {
                    @for (licence, answer) in &answers {
                        @let found = answer.as_ref().ok().and_then(|a| a["roles"].as_array()).and_then(|r| r.first());
                        tr data-licence=(licence) {
                            th scope="row" { (licence) }
                            @match found {
                                Some(r) => {
                                    @let exceeds = r["exceeds"].as_array().cloned().unwrap_or_default();
                                    td { (if exceeds.is_empty() { "within" } else { "exceeds" }) }
                                    td {
                                        @if !exceeds.is_empty() {
                                            details {
                                            summary { (exceeds.len()) " beyond it" }
                                            ul {
                                                @for e in &exceeds {
                                                    li {
                                                        @match s(e, "kind").as_str() {
                                                            "privilege" => {
                                                                @let (d, ceiling) = (Depth::from_name(&s(e, "role_depth")).unwrap_or_default(), Depth::from_name(&s(e, "ceiling")).unwrap_or_default());
                                                                (s(e, "table")) " " (s(e, "privilege")) ": " (depth_label(d)) ", the licence allows " (depth_label(ceiling))
                                                            }
                                                            "misc" => { "miscellaneous " code { (s(e, "privilege")) } " is not in the licence" }
                                                            _ => { "app " (s(e, "app")) " is not in the licence" }
                                                        }
                                                    }
                                                }
                                            }
                                            }
                                        }
                                    }
                                }
                                None => {
                                    td colspan="2" { @if let Err(e) = answer { (e.message) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The comparison with another role (`?compare=`): the cells and miscellaneous privileges
/// that differ, from the API's answer.
fn compare_view(org: &Organization, id: RoleId, p: &EditorParams) -> Markup {
    let role = org.role(id);
    let base = format!("/console/roles/{}", encode(&role.name));
    let others: Vec<&str> = org
        .role_ids()
        .filter(|r| *r != id && !org.role(*r).deleted)
        .map(|r| org.role(r).name.as_str())
        .collect();
    let other = p.compare.as_deref().filter(|o| !o.is_empty());
    let answer = other.map(|o| match org.role_id(o) {
        Some(r) => Ok(strata_ops::compare_roles_json(org, id, r)),
        None => Err(ApiError::not_found(format!("unknown role `{o}`"))),
    });
    let s = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    html! {
        h2 { "Compare with another role" }
        form.inline method="get" action=(base) {
            label for="compare" { "Role" }
            select #compare name="compare" {
                @for o in &others { option value=(o) selected[other == Some(*o)] { (o) } }
            }
            button type="submit" { "Compare" }
        }
        @match &answer {
            Some(Ok(cmp)) => {
                p #role-differences { (cmp["differences"].as_u64().unwrap_or(0)) " differences with " (role_link(other.unwrap_or(""))) "." }
                table.list {
                    thead { tr { th scope="col" { "Table" } th scope="col" { "Privilege" } th scope="col" { (role.name) } th scope="col" { (other.unwrap_or("")) } } }
                    tbody {
                        @for cell in cmp["cells"].as_array().into_iter().flatten().filter(|c| c["differs"].as_bool() == Some(true)) {
                            @let (l, r) = (Depth::from_name(&s(cell, "left")).unwrap_or_default(), Depth::from_name(&s(cell, "right")).unwrap_or_default());
                            tr {
                                td { (s(cell, "table")) } td { (s(cell, "privilege")) }
                                td { span.circle aria-hidden="true" { (circle(l)) } " " (depth_label(l)) }
                                td { span.circle aria-hidden="true" { (circle(r)) } " " (depth_label(r)) }
                            }
                        }
                        @for m in cmp["misc"].as_array().into_iter().flatten().filter(|c| c["differs"].as_bool() == Some(true)) {
                            tr {
                                td { "miscellaneous" } td { code { (s(m, "name")) } }
                                td { (if m["left"].as_bool() == Some(true) { "held" } else { "—" }) }
                                td { (if m["right"].as_bool() == Some(true) { "held" } else { "—" }) }
                            }
                        }
                    }
                }
            }
            Some(Err(e)) => { (super::error_box(e)) }
            None => {}
        }
    }
}

/// Copy, rename, deprecate and delete: each an operation written as the signed-in user.
fn manage_view(org: &Organization, id: RoleId, csrf: &str) -> Markup {
    let role = org.role(id);
    let action = format!("/console/roles/{}/manage", encode(&role.name));
    let others: Vec<&str> = org
        .role_ids()
        .filter(|r| *r != id && !org.role(*r).deleted)
        .map(|r| org.role(r).name.as_str())
        .collect();
    html! {
        h2 { "Manage this role" }
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value="copy";
            label for="copy-name" { "Copy as" }
            input #copy-name type="text" name="name" required;
            button type="submit" { "Copy" }
        }
        @if !role.system_administrator {
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="rename";
                label for="rename-name" { "Rename to" }
                input #rename-name type="text" name="name" required;
                button type="submit" { "Rename" }
            }
            @if role.deprecation.is_some() {
                form.inline method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="action" value="undeprecate";
                    button type="submit" { "Take the deprecation back" }
                }
            } @else {
                form.inline method="post" action=(action) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="action" value="deprecate";
                    label for="deprecate-message" { "Deprecate with the message" }
                    input #deprecate-message type="text" name="message";
                    button type="submit" { "Deprecate" }
                }
            }
            form.inline method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="action" value="delete";
                label for="replacement" { "Delete, moving its holders to" }
                select #replacement name="replacement" {
                    option value="" { "(no replacement: only when nobody holds it)" }
                    @for o in &others { option value=(o) { (o) } }
                }
                button type="submit" { "Delete" }
            }
        }
    }
}

/// `POST /console/roles/{role}/manage`: `action` = `copy` | `rename` (`name`), `deprecate`
/// (`message`), `undeprecate`, `delete` (`replacement`, optional).
pub(crate) async fn manage(Path(name): Path<String>, change: Change) -> Response {
    let here = format!("/console/roles/{}", encode(&name));
    let text = |k: &str| change.field(k).map(str::to_owned);
    let op = match change.field("action") {
        Ok("copy") => text("name").map(|n| Operation::CopyRole {
            role: name.clone(),
            name: n,
        }),
        Ok("rename") => text("name").map(|n| Operation::RenameRole {
            role: name.clone(),
            name: n,
        }),
        Ok("deprecate") => Ok(Operation::DeprecateRole {
            role: name.clone(),
            deprecated: true,
            message: change.form.get("message").cloned().unwrap_or_default(),
            successors: Vec::new(),
        }),
        Ok("undeprecate") => Ok(Operation::DeprecateRole {
            role: name.clone(),
            deprecated: false,
            message: String::new(),
            successors: Vec::new(),
        }),
        Ok("delete") => Ok(Operation::DeleteRole {
            role: name.clone(),
            replacement: text("replacement").ok(),
        }),
        _ => Err(ApiError::new("invalid_body", "unknown action").at("action")),
    };
    let c = &change.console;
    let op = match op {
        Ok(op) => op,
        Err(e) => {
            c.flash(true, format!("Refused: {}", e.message));
            return redirect(&here);
        }
    };
    let (what, next) = match &op {
        Operation::CopyRole { name: n, .. } => (
            format!("Role `{name}` copied as `{n}`"),
            format!("/console/roles/{}", encode(n)),
        ),
        Operation::RenameRole { name: n, .. } => (
            format!("Role `{name}` renamed `{n}`"),
            format!("/console/roles/{}", encode(n)),
        ),
        Operation::DeprecateRole {
            deprecated: true, ..
        } => (format!("Role `{name}` deprecated"), here.clone()),
        Operation::DeprecateRole { .. } => {
            (format!("Role `{name}` no longer deprecated"), here.clone())
        }
        _ => (
            format!("Role `{name}` deleted"),
            "/console/roles".to_owned(),
        ),
    };
    match super::write(c, vec![op]).await {
        Ok(revision) => {
            c.session(|s| {
                s.drafts.remove(&name);
                s.refusals.remove(&name);
            });
            c.flash(false, format!("{what} (revision {revision})."));
            redirect(&next)
        }
        Err(e) => {
            c.flash(true, format!("Refused: {}", e.message));
            redirect(&here)
        }
    }
}

/// A dry run's access difference: who gains or loses which privilege, and how many records.
pub(crate) fn dry_run_view(dry: &strata_app::DryRun) -> Markup {
    let users = &dry.difference.users;
    html! {
        section #dry-run aria-labelledby="dry-title" {
            h3 #dry-title { "Dry run: who gains or loses access" }
            @if users.is_empty() {
                p { "No user's access changes" @if dry.withheld > 0 { " that you may see" } "." }
            }
            @for u in users {
                details open[users.len() <= 5] {
                    @let gained = u.privileges.iter().filter(|p| p.after > p.before).count();
                    summary {
                        strong { (u.name) } ": "
                        @if gained > 0 { span.gain { (gained) " gained" } }
                        @if gained > 0 && gained < u.privileges.len() { ", " }
                        @if gained < u.privileges.len() { span.loss { (u.privileges.len() - gained) " lost" } }
                        @if u.privileges.is_empty() { "records only" }
                        @if u.new { " (new user)" }
                    }
                    ul {
                        @for p in &u.privileges {
                            li {
                                (p.table) " " (p.privilege.name()) ": "
                                span.circle aria-hidden="true" { (circle(p.before)) } " " (depth_label(p.before))
                                " → "
                                span.circle aria-hidden="true" { (circle(p.after)) } " " (depth_label(p.after))
                                @if p.after > p.before { " " span.gain { "gained" } } @else { " " span.loss { "lost" } }
                            }
                        }
                        @for r in &u.records {
                            li { (r.table) " records readable: " @if r.gained > 0 { span.gain { "+" (r.gained) } " " } @if r.lost > 0 { span.loss { "−" (r.lost) } } }
                        }
                    }
                }
            }
            @if dry.withheld > 0 {
                p.small { (dry.withheld) " more users whose access changes are not shown: you may not ask about them (D56)." }
            }
        }
    }
}

/// `POST /console/roles/{role}/edit`: `cell=table|privilege` cycles a cell; `row=table` with
/// `row_depth:table`, `column=privilege` with `column_depth:privilege` (the tables shown)
/// set a row or a column; `discard` drops the pending change.
pub(crate) async fn edit(Path(name): Path<String>, change: Change) -> Response {
    let c = &change.console;
    let q = change.form.get("q").cloned().unwrap_or_default();
    let group = change.form.get("group").cloned().unwrap_or_default();
    let back = format!("/console/roles/{}{}", encode(&name), view_query(&q, &group));
    let current = c
        .session(|s| s.drafts.get(&name).cloned())
        .flatten()
        .unwrap_or_default();
    let form = change.form.clone();
    let edited = read(c, {
        let name = name.clone();
        move |org, request| -> Result<Option<Draft>, ApiError> {
            let id = role_id(org, &name)?;
            require_read(org, request, id)?;
            let role = org.role(id);
            let mut draft = current;
            let set = |draft: &mut Draft, table: TableId, p: Privilege, depth: Depth| {
                let key = (org.table(table).name.clone(), p);
                if role.depth(table, p) == depth {
                    draft.cells.remove(&key);
                } else {
                    draft.cells.insert(key, depth);
                }
            };
            let table = |n: &str| {
                org.table_id(n)
                    .ok_or_else(|| ApiError::not_found(format!("unknown table `{n}`")))
            };
            let depth = |field: &str| {
                let v = form.get(field).map(String::as_str).unwrap_or("");
                Depth::from_name(v).ok_or_else(|| {
                    ApiError::new("invalid_body", format!("unknown depth `{v}`")).at(field)
                })
            };
            let privilege = |n: &str| {
                Privilege::from_name(n)
                    .ok_or_else(|| ApiError::new("unknown_privilege", format!("unknown privilege `{n}`")))
            };
            if form.contains_key("discard") {
                return Ok(None);
            } else if let Some(m) = form.get("misc") {
                let m = m.trim();
                if m.is_empty() || m.len() > 100 {
                    return Err(ApiError::new(
                        "invalid_body",
                        "a miscellaneous privilege name is 1 to 100 bytes long",
                    )
                    .at("misc"));
                }
                let now = role.misc.iter().any(|x| x == m);
                let held = !draft.misc.get(m).copied().unwrap_or(now);
                if held == now {
                    draft.misc.remove(m);
                } else {
                    draft.misc.insert(m.to_owned(), held);
                }
            } else if let Some(cell) = form.get("cell") {
                let (t, p) = cell.split_once('|').unwrap_or((cell, ""));
                let (t, p) = (table(t)?, privilege(p)?);
                let now = draft
                    .cells
                    .get(&(org.table(t).name.clone(), p))
                    .copied()
                    .unwrap_or_else(|| role.depth(t, p));
                set(&mut draft, t, p, cycle(org, t, now));
            } else if let Some(row) = form.get("row") {
                let t = table(row)?;
                let d = depth(&format!("row_depth:{row}"))?;
                for p in Privilege::ALL {
                    set(&mut draft, t, p, d);
                }
            } else if let Some(column) = form.get("column") {
                let p = privilege(column)?;
                let d = depth(&format!("column_depth:{column}"))?;
                let q = q.to_lowercase();
                for t in org.table_ids() {
                    let n = &org.table(t).name;
                    let shown = n.to_lowercase().contains(&q)
                        && (group.is_empty() || group_of(n) == group);
                    // A column set skips organization-owned tables for a depth they cannot take.
                    if shown && depths_of(org, t).contains(&d) {
                        set(&mut draft, t, p, d);
                    }
                }
            }
            if draft.len() > MAX_DRAFT_CELLS {
                return Err(ApiError::new(
                    "bad_batch",
                    format!("a pending change holds at most {MAX_DRAFT_CELLS} cells: save or discard first"),
                ));
            }
            Ok(Some(draft))
        }
    })
    .await
    .and_then(|r| r);
    match edited {
        Ok(draft) => {
            c.session(|s| {
                s.refusals.remove(&name);
                match draft {
                    Some(d) if !d.is_empty() => {
                        s.drafts.insert(name.clone(), d);
                    }
                    _ => {
                        s.drafts.remove(&name);
                    }
                }
            });
        }
        Err(e) => c.flash(true, format!("Refused: {}", e.message)),
    }
    redirect(&back)
}

/// `POST /console/roles/{role}/save`: the pending cells written as the signed-in user; a
/// refusal keeps them and marks the cell that caused it.
pub(crate) async fn save(Path(name): Path<String>, change: Change) -> Response {
    let c = &change.console;
    let back = format!("/console/roles/{}", encode(&name));
    let draft = c
        .session(|s| s.drafts.get(&name).cloned())
        .flatten()
        .unwrap_or_default();
    if draft.is_empty() {
        c.flash(true, "There is no pending change to save.");
        return redirect(&back);
    }
    match super::write(c, draft_ops(&name, &draft)).await {
        Ok(revision) => {
            c.session(|s| {
                s.drafts.remove(&name);
                s.refusals.remove(&name);
            });
            c.flash(
                false,
                format!(
                    "Saved {} changes to role `{name}` (revision {revision}).",
                    draft.len()
                ),
            );
        }
        Err(e) => {
            let cell = refused_cell(&draft, &e);
            let message = e.message.clone();
            c.session(|s| {
                s.refusals.insert(name.clone(), (cell, message.clone()));
            });
            c.flash(true, format!("Refused: {message}"));
        }
    }
    redirect(&back)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_tables_fall_in_dataverse_groups() {
        assert_eq!(group_of("account"), "Core Records");
        assert_eq!(group_of("opportunity"), "Sales");
        assert_eq!(group_of("incident"), "Service");
        assert_eq!(group_of("campaign"), "Marketing");
        assert_eq!(group_of("systemuser"), "Business Management");
        assert_eq!(group_of("sla"), "Service Management");
        assert_eq!(group_of("workflow"), "Customization");
        assert_eq!(group_of("msdyn_presence"), "Custom Entities");
        assert_eq!(group_of("w365_invoice"), "Custom Entities");
    }

    #[test]
    fn a_refusal_names_its_cell() {
        let mut draft = Draft::default();
        draft
            .cells
            .insert(("account".into(), Privilege::Read), Depth::User);
        draft
            .cells
            .insert(("contact".into(), Privilege::Write), Depth::User);
        draft.misc.insert("prvExportToExcel".into(), true);
        let e = ApiError::new("denied", "no").at("/1");
        assert_eq!(
            refused_cell(&draft, &e),
            Some(Pending::Cell("contact".to_owned(), Privilege::Write))
        );
        // After the cells, the miscellaneous privileges.
        let e = ApiError::new("denied", "no").at("/2");
        assert_eq!(
            refused_cell(&draft, &e),
            Some(Pending::Misc("prvExportToExcel".to_owned()))
        );
        let e = ApiError::new("denied", "no");
        assert_eq!(refused_cell(&draft, &e), None);
        draft.cells.clear();
        assert_eq!(
            refused_cell(&draft, &e),
            Some(Pending::Misc("prvExportToExcel".to_owned()))
        );
    }
}
