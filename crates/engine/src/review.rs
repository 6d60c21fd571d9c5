//! The access review (seed 002: "Regular Audits: Review user access quarterly"; "Document
//! Roles: Maintain spreadsheet of role → permission mappings"): every view an auditor goes
//! through, as rows of typed cells, computed from the organisation alone. The clock and the
//! user-access audit are inputs ([`ReviewOptions`]); the files (XLSX, CSV) are written by the
//! application layer. Names, never ids; times as RFC 3339 (docs/review.md, D70–D72).

use std::collections::{BTreeSet, HashMap};

use crate::derive::Via;
use crate::ids::{Principal, RoleId, TableId, TeamId, UserId};
use crate::licences::Uncovered;
use crate::organization::Organization;
use crate::privilege::{Depth, Privilege};
use crate::roles::CellSource;
use crate::rules::{Holding, ViolationKind};

/// One cell of a review row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Text (a name, a list of names, a sentence).
    Text(String),
    /// A privilege depth (the writers colour it).
    Depth(Depth),
    /// A whole number.
    Number(i64),
    /// A time, in milliseconds since the Unix epoch (written as RFC 3339, UTC).
    Time(i64),
    /// Yes or no.
    Flag(bool),
    /// Nothing.
    Empty,
}

impl Cell {
    /// The cell as text: a depth's name, a time in RFC 3339, `yes`/`no`, a number's digits.
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Depth(d) => d.name().to_owned(),
            Cell::Number(n) => n.to_string(),
            Cell::Time(ms) => rfc3339(*ms),
            Cell::Flag(true) => "yes".to_owned(),
            Cell::Flag(false) => "no".to_owned(),
            Cell::Empty => String::new(),
        }
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

/// A time in milliseconds since the Unix epoch as RFC 3339 in UTC, to the second
/// (`2026-12-05T02:00:35Z`).
#[must_use]
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        crate::date::Date::from_days(days),
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// One view of the review: a sheet of the workbook, a file of the CSV folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewView {
    /// File name stem and identifier (`user_roles`).
    pub name: &'static str,
    /// Title, the workbook's sheet name (at most 31 characters).
    pub title: &'static str,
    /// Column headers.
    pub columns: &'static [&'static str],
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

/// What the review needs besides the organisation.
#[derive(Clone, Debug, Default)]
pub struct ReviewOptions {
    /// The organisation's name (for the summary).
    pub organization: String,
    /// The revision reviewed.
    pub revision: u64,
    /// Now, in milliseconds since the Unix epoch.
    pub now_ms: i64,
    /// Users not seen for this many days are listed as inactive.
    pub inactive_days: u32,
    /// Each user's latest access in the user-access audit, in milliseconds (absent: none).
    pub last_seen: HashMap<UserId, i64>,
}

/// The default of `inactive_days`: a quarter, as seed 002 reviews quarterly and keeps
/// 90 days of audit.
pub const DEFAULT_INACTIVE_DAYS: u32 = 90;

/// The largest `inactive_days` (100 years).
pub const MAX_INACTIVE_DAYS: u32 = 36_500;

/// The whole review: the summary, then every view, in a fixed order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessReview {
    /// The views, the summary first.
    pub views: Vec<ReviewView>,
}

/// `direct` or `team`, and the team's name.
fn via_cells(org: &Organization, via: Via) -> [Cell; 2] {
    match via {
        Via::Direct => [text("direct"), Cell::Empty],
        Via::Team { team, .. } => [text("team"), text(&org.team(team).name)],
    }
}

fn source_cells(org: &Organization, source: &CellSource) -> [Cell; 3] {
    match source {
        CellSource::SystemAdministrator(a) => {
            let [held, team] = via_cells(
                org,
                a.team.map_or(Via::Direct, |team| Via::Team {
                    team,
                    team_only: false,
                }),
            );
            [text(&org.role(a.role).name), held, team]
        }
        CellSource::Role { role, via } => {
            let [held, team] = via_cells(org, *via);
            [text(&org.role(*role).name), held, team]
        }
    }
}

/// One row per way a holding holds its role: `direct`, then each team.
fn holding_vias(h: &Holding) -> Vec<Via> {
    let mut out = Vec::new();
    if h.direct {
        out.push(Via::Direct);
    }
    out.extend(h.teams.iter().map(|t| Via::Team {
        team: *t,
        team_only: false,
    }));
    out
}

fn describe_holding(org: &Organization, h: &Holding) -> String {
    let teams: Vec<String> = h
        .teams
        .iter()
        .map(|t| format!("team {}", org.team(*t).name))
        .collect();
    match (h.direct, teams.is_empty()) {
        (true, true) => "directly".to_owned(),
        (true, false) => format!("directly and through {}", teams.join(", ")),
        (false, _) => format!("through {}", teams.join(", ")),
    }
}

struct Context<'a> {
    org: &'a Organization,
    /// Users by name.
    users: Vec<UserId>,
    /// Live roles by name.
    roles: Vec<RoleId>,
    /// Tables by name.
    tables: Vec<TableId>,
}

impl Context<'_> {
    fn user_name(&self, u: UserId) -> Cell {
        text(&self.org.user(u).name)
    }

    fn unit_of_user(&self, u: UserId) -> Cell {
        text(self.org.units().name(self.org.user(u).business_unit))
    }

    fn team_names(&self, teams: &[TeamId]) -> Vec<String> {
        let mut names: Vec<String> = teams
            .iter()
            .map(|t| self.org.team(*t).name.clone())
            .collect();
        names.sort();
        names
    }

    fn enabled_users(&self) -> impl Iterator<Item = UserId> + '_ {
        self.users
            .iter()
            .copied()
            .filter(|u| self.org.user(*u).enabled)
    }

    /// Every role a user holds, by role name, with each way it is held (direct first, then
    /// teams by name).
    fn held(&self, u: UserId) -> Vec<(RoleId, Via)> {
        let mut rows: Vec<(RoleId, Via)> = self
            .org
            .role_holdings(u)
            .iter()
            .flat_map(|(r, h)| holding_vias(h).into_iter().map(move |v| (*r, v)))
            .collect();
        let key = |(r, v): &(RoleId, Via)| {
            (
                self.org.role(*r).name.clone(),
                match v {
                    Via::Direct => String::new(),
                    Via::Team { team, .. } => format!(" {}", self.org.team(*team).name),
                },
            )
        };
        rows.sort_by_key(key);
        rows
    }
}

fn user_roles(c: &Context) -> ReviewView {
    let org = c.org;
    let mut rows = Vec::new();
    for &u in &c.users {
        let user = org.user(u);
        for (r, via) in c.held(u) {
            let role = org.role(r);
            let assigned_in = match via {
                Via::Direct => user
                    .roles
                    .iter()
                    .find(|a| a.role == r)
                    .and_then(|a| a.business_unit)
                    .map_or(Cell::Empty, |b| text(org.units().name(b))),
                Via::Team { .. } => Cell::Empty,
            };
            let [held, team] = via_cells(org, via);
            rows.push(vec![
                c.user_name(u),
                c.unit_of_user(u),
                Cell::Flag(user.enabled),
                text(&role.name),
                text(org.units().name(role.business_unit)),
                held,
                team,
                assigned_in,
                Cell::Flag(role.deprecation.is_some()),
            ]);
        }
    }
    ReviewView {
        name: "user_roles",
        title: "Users and roles",
        columns: &[
            "user",
            "business_unit",
            "enabled",
            "role",
            "role_business_unit",
            "held",
            "team",
            "assigned_in",
            "deprecated",
        ],
        rows,
    }
}

fn role_privileges(c: &Context) -> ReviewView {
    let org = c.org;
    let mut rows = Vec::new();
    for &r in &c.roles {
        let role = org.role(r);
        for &t in &c.tables {
            let depths: Vec<Depth> = Privilege::ALL
                .into_iter()
                .map(|p| {
                    if role.system_administrator {
                        Depth::Organization
                    } else {
                        role.depth(t, p)
                    }
                })
                .collect();
            if depths.iter().all(|d| *d == Depth::None) {
                continue;
            }
            let mut row = vec![
                text(&role.name),
                text(org.units().name(role.business_unit)),
                text(&org.table(t).name),
            ];
            row.extend(depths.into_iter().map(Cell::Depth));
            rows.push(row);
        }
    }
    ReviewView {
        name: "role_privileges",
        title: "Role privileges",
        columns: &[
            "role",
            "business_unit",
            "table",
            "create",
            "read",
            "write",
            "delete",
            "append",
            "append_to",
            "assign",
            "share",
        ],
        rows,
    }
}

/// Every miscellaneous privilege the roles name, case-folded duplicates removed, sorted.
fn misc_names(org: &Organization, roles: &[RoleId]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in roles {
        for m in &org.role(*r).misc {
            if seen.insert(m.to_ascii_lowercase()) {
                out.push(m.clone());
            }
        }
    }
    out.sort_by_key(|m| m.to_ascii_lowercase());
    out
}

fn role_misc(c: &Context) -> ReviewView {
    let org = c.org;
    let mut rows = Vec::new();
    for &r in &c.roles {
        let role = org.role(r);
        if role.system_administrator {
            rows.push(vec![text(&role.name), text("all")]);
            continue;
        }
        for m in misc_names(org, &[r]) {
            rows.push(vec![text(&role.name), text(m)]);
        }
    }
    ReviewView {
        name: "role_misc_privileges",
        title: "Role misc privileges",
        columns: &["role", "privilege"],
        rows,
    }
}

/// Each enabled user's effective table privileges, one row per source, by user, table,
/// privilege.
fn effective_cells(c: &Context, u: UserId) -> Vec<(TableId, Privilege, crate::roles::Effective)> {
    let org = c.org;
    let tables: Vec<TableId> = if org.system_administrator(u).is_some() {
        c.tables.clone()
    } else {
        let set: BTreeSet<TableId> = org.all_grants(u).iter().map(|g| g.table).collect();
        let mut t: Vec<TableId> = set.into_iter().collect();
        t.sort_by(|a, b| org.table(*a).name.cmp(&org.table(*b).name));
        t
    };
    let mut out = Vec::new();
    for t in tables {
        for p in Privilege::ALL {
            let e = org.effective(u, t, p);
            if e.depth != Depth::None {
                out.push((t, p, e));
            }
        }
    }
    out
}

fn effective_privileges(c: &Context, all_misc: &[String]) -> (ReviewView, ReviewView) {
    let org = c.org;
    let mut rows = Vec::new();
    let mut delete_rows = Vec::new();
    for u in c.enabled_users() {
        for (t, p, e) in effective_cells(c, u) {
            for s in &e.sources {
                let mut row = vec![
                    c.user_name(u),
                    text(&org.table(t).name),
                    text(p.name()),
                    Cell::Depth(e.depth),
                ];
                row.extend(source_cells(org, s));
                if p == Privilege::Delete && e.depth == Depth::Organization {
                    let mut d = vec![c.user_name(u), c.unit_of_user(u), text(&org.table(t).name)];
                    d.extend(source_cells(org, s));
                    delete_rows.push(d);
                }
                rows.push(row);
            }
        }
        // Miscellaneous privileges: held through a role and allowed by a licence (D48).
        if let Some(admin) = org.system_administrator(u) {
            for m in all_misc {
                let mut row = vec![c.user_name(u), Cell::Empty, text(m), Cell::Empty];
                row.extend(source_cells(org, &CellSource::SystemAdministrator(admin)));
                rows.push(row);
            }
            continue;
        }
        let held = c.held(u);
        let names = misc_names(org, &held.iter().map(|(r, _)| *r).collect::<Vec<_>>());
        for m in names {
            if !org.holds_misc(u, &m) {
                continue;
            }
            for (r, via) in held
                .iter()
                .filter(|(r, _)| org.role(*r).misc.iter().any(|x| x.eq_ignore_ascii_case(&m)))
            {
                let mut row = vec![c.user_name(u), Cell::Empty, text(&m), Cell::Empty];
                row.extend(source_cells(
                    org,
                    &CellSource::Role {
                        role: *r,
                        via: *via,
                    },
                ));
                rows.push(row);
            }
        }
    }
    (
        ReviewView {
            name: "effective_privileges",
            title: "Effective privileges",
            columns: &[
                "user",
                "table",
                "privilege",
                "depth",
                "role",
                "held",
                "team",
            ],
            rows,
        },
        ReviewView {
            name: "organization_delete",
            title: "Organisation-wide delete",
            columns: &["user", "business_unit", "table", "role", "held", "team"],
            rows: delete_rows,
        },
    )
}

fn column_profiles(c: &Context) -> ReviewView {
    let org = c.org;
    let mut profiles: Vec<_> = org.profile_ids().collect();
    profiles.sort_by(|a, b| org.profile(*a).name.cmp(&org.profile(*b).name));
    let mut rows = Vec::new();
    for p in profiles {
        let profile = org.profile(p);
        // (user, team) for every member, teams expanded.
        let mut members: Vec<(UserId, Option<TeamId>)> = Vec::new();
        for m in &profile.members {
            match m {
                Principal::User(u) => members.push((*u, None)),
                Principal::Team(t) => {
                    members.extend(org.team(*t).members.iter().map(|u| (*u, Some(*t))))
                }
                Principal::Organization => {}
            }
        }
        members.sort_by(|a, b| {
            (&org.user(a.0).name, a.1.map(|t| &org.team(t).name))
                .cmp(&(&org.user(b.0).name, b.1.map(|t| &org.team(t).name)))
        });
        members.dedup();
        let mut permissions: Vec<_> = profile.permissions.iter().collect();
        permissions.sort_by(|a, b| {
            (&org.table(a.table).name, &a.column).cmp(&(&org.table(b.table).name, &b.column))
        });
        for (u, team) in members {
            for perm in &permissions {
                rows.push(vec![
                    text(&profile.name),
                    c.user_name(u),
                    team.map_or(Cell::Empty, |t| text(&org.team(t).name)),
                    Cell::Flag(org.user(u).enabled),
                    text(&org.table(perm.table).name),
                    text(&perm.column),
                    Cell::Flag(perm.read),
                    Cell::Flag(perm.update),
                    Cell::Flag(perm.create),
                ]);
            }
        }
    }
    ReviewView {
        name: "column_profiles",
        title: "Column security profiles",
        columns: &[
            "profile", "user", "team", "enabled", "table", "column", "read", "update", "create",
        ],
        rows,
    }
}

fn rights_text(mask: crate::privilege::AccessMask) -> String {
    mask.privileges()
        .map(Privilege::name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn shares(c: &Context) -> ReviewView {
    let org = c.org;
    // (user name or "(everyone)", through, table, record, name, owner, rights, column)
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    let push = |principal: Principal, rows: &mut Vec<Vec<Cell>>, rest: &dyn Fn() -> Vec<Cell>| {
        let mut heads: Vec<[Cell; 2]> = Vec::new();
        match principal {
            Principal::User(u) => heads.push([c.user_name(u), Cell::Empty]),
            Principal::Team(t) => {
                let team = org.team(t);
                for m in &team.members {
                    heads.push([c.user_name(*m), text(format!("team {}", team.name))]);
                }
            }
            Principal::Organization => heads.push([text("(everyone)"), text("organization")]),
        }
        for [user, through] in heads {
            let mut row = vec![user, through];
            row.extend(rest());
            rows.push(row);
        }
    };
    for t in &c.tables {
        for r in org.table_records(*t) {
            let record = org.record(*r);
            if !record.alive || (record.shares.is_empty() && record.field_shares.is_empty()) {
                continue;
            }
            let base = || {
                let name = match record.field("name") {
                    crate::model::Value::Null => Cell::Empty,
                    v => text(v.to_string()),
                };
                vec![
                    text(&org.table(*t).name),
                    text(&*record.key),
                    name,
                    text(org.owner_name(record.owner)),
                ]
            };
            for s in &record.shares {
                push(s.principal, &mut rows, &|| {
                    let mut v = base();
                    v.push(text(rights_text(s.mask)));
                    v.push(Cell::Empty);
                    v
                });
            }
            for f in &record.field_shares {
                let rights: Vec<&str> = [(f.read, "read"), (f.update, "update")]
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| n)
                    .collect();
                push(f.principal, &mut rows, &|| {
                    let mut v = base();
                    v.push(text(rights.join(", ")));
                    v.push(text(&f.column));
                    v
                });
            }
        }
    }
    rows.sort_by_cached_key(|r| {
        (
            r[0].text(),
            r[2].text(),
            r[3].text(),
            r[1].text(),
            r[7].text(),
        )
    });
    ReviewView {
        name: "shares",
        title: "Shares",
        columns: &[
            "user", "through", "table", "record", "name", "owner", "rights", "column",
        ],
        rows,
    }
}

fn system_administrators(c: &Context) -> ReviewView {
    let org = c.org;
    let mut rows = Vec::new();
    for &u in &c.users {
        for (r, via) in c.held(u) {
            if !org.role(r).system_administrator {
                continue;
            }
            let [held, team] = via_cells(org, via);
            rows.push(vec![
                c.user_name(u),
                c.unit_of_user(u),
                Cell::Flag(org.user(u).enabled),
                text(&org.role(r).name),
                held,
                team,
            ]);
        }
    }
    ReviewView {
        name: "system_administrators",
        title: "System Administrators",
        columns: &["user", "business_unit", "enabled", "role", "held", "team"],
        rows,
    }
}

fn users_without_roles(c: &Context) -> ReviewView {
    let org = c.org;
    let rows = c
        .users
        .iter()
        .filter(|u| org.role_holdings(**u).is_empty())
        .map(|&u| {
            vec![
                c.user_name(u),
                c.unit_of_user(u),
                Cell::Flag(org.user(u).enabled),
                text(c.team_names(&org.user(u).teams).join(", ")),
            ]
        })
        .collect();
    ReviewView {
        name: "users_without_roles",
        title: "Users without roles",
        columns: &["user", "business_unit", "enabled", "teams"],
        rows,
    }
}

const DAY_MS: i64 = 86_400_000;

fn inactive_users(c: &Context, options: &ReviewOptions) -> ReviewView {
    let since = options
        .now_ms
        .saturating_sub(i64::from(options.inactive_days) * DAY_MS);
    let mut found: Vec<(Option<i64>, UserId)> = c
        .enabled_users()
        .map(|u| (options.last_seen.get(&u).copied(), u))
        .filter(|(seen, _)| seen.is_none_or(|at| at < since))
        .collect();
    // Never seen first, then the longest unseen; names break ties (the users are by name).
    found.sort_by_key(|(seen, _)| *seen);
    let rows = found
        .into_iter()
        .map(|(seen, u)| {
            vec![
                c.user_name(u),
                c.unit_of_user(u),
                seen.map_or(Cell::Empty, Cell::Time),
                seen.map_or(Cell::Empty, |at| {
                    Cell::Number((options.now_ms - at).div_euclid(DAY_MS))
                }),
                text(
                    c.held(u)
                        .iter()
                        .map(|(r, _)| c.org.role(*r).name.clone())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            ]
        })
        .collect();
    ReviewView {
        name: "inactive_users",
        title: "Inactive users",
        columns: &["user", "business_unit", "last_seen", "days_since", "roles"],
        rows,
    }
}

fn deprecated_role_holders(c: &Context) -> ReviewView {
    let org = c.org;
    let mut rows = Vec::new();
    for &u in &c.users {
        for (r, via) in c.held(u) {
            let role = org.role(r);
            let Some(d) = &role.deprecation else {
                continue;
            };
            let [held, team] = via_cells(org, via);
            rows.push(vec![
                c.user_name(u),
                Cell::Flag(org.user(u).enabled),
                text(&role.name),
                held,
                team,
                text(
                    d.successors
                        .iter()
                        .map(|s| org.role(*s).name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                text(&d.message),
            ]);
        }
    }
    ReviewView {
        name: "deprecated_role_holders",
        title: "Deprecated role holders",
        columns: &[
            "user",
            "enabled",
            "role",
            "held",
            "team",
            "successors",
            "message",
        ],
        rows,
    }
}

fn rule_violations(c: &Context) -> ReviewView {
    let org = c.org;
    let role = |r: RoleId| org.role(r).name.clone();
    let mut rows = Vec::new();
    for &u in &c.users {
        for v in org.user_rule_violations(u) {
            let detail = match (&v.kind, &v.rule) {
                (ViolationKind::Missing { held, missing }, r) => format!(
                    "holds {} ({}) without {}",
                    role(r.role()),
                    describe_holding(org, held),
                    missing
                        .iter()
                        .map(|m| role(*m))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
                (
                    ViolationKind::Conflict { held, other_held },
                    crate::rules::RoleRule::Excludes { role: a, other: b },
                ) => format!(
                    "holds {} ({}) and {} ({})",
                    role(*a),
                    describe_holding(org, held),
                    role(*b),
                    describe_holding(org, other_held)
                ),
                (ViolationKind::Conflict { held, .. }, r) => {
                    format!("holds {} ({})", role(r.role()), describe_holding(org, held))
                }
                (ViolationKind::NotDirect { teams }, r) => format!(
                    "holds {} only through {}",
                    role(r.role()),
                    c.team_names(teams)
                        .iter()
                        .map(|t| format!("team {t}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            rows.push(vec![
                c.user_name(u),
                Cell::Flag(org.user(u).enabled),
                text(v.rule.text(org)),
                text(v.rule.kind()),
                text(detail),
            ]);
        }
    }
    ReviewView {
        name: "rule_violations",
        title: "Rule violations",
        columns: &["user", "enabled", "rule", "kind", "detail"],
        rows,
    }
}

fn licences(c: &Context) -> ReviewView {
    let org = c.org;
    let mut rows = Vec::new();
    if !org.licences().is_empty() {
        for u in c.enabled_users() {
            let line = org.user_licence_report(u);
            let uncovered: Vec<String> = line
                .uncovered
                .iter()
                .map(|x| match x {
                    Uncovered::Cell { need, ceiling } => format!(
                        "{} {} {} > {}",
                        org.table(need.table).name,
                        need.privilege.name(),
                        need.depth.name(),
                        ceiling.name()
                    ),
                    Uncovered::Misc(m) => m.clone(),
                    Uncovered::App(a) => format!("app {}", org.app(*a).name),
                })
                .collect();
            rows.push(vec![
                c.user_name(u),
                text(line.held.join(", ")),
                Cell::Number(i64::try_from(line.held_price).unwrap_or(i64::MAX)),
                line.cheapest
                    .as_ref()
                    .map_or(text("(no covering set)"), |ch| text(ch.licences.join(", "))),
                line.cheapest.as_ref().map_or(Cell::Empty, |ch| {
                    Cell::Number(i64::try_from(ch.price).unwrap_or(i64::MAX))
                }),
                text(line.fit.name()),
                text(uncovered.join("; ")),
            ]);
        }
    }
    ReviewView {
        name: "licences",
        title: "Licences",
        columns: &[
            "user",
            "licences",
            "price",
            "cheapest",
            "cheapest_price",
            "fit",
            "not_covered",
        ],
        rows,
    }
}

impl Organization {
    /// The access review: the summary, then users and roles, role privileges (the grid, with
    /// depths), role miscellaneous privileges, effective privileges with their sources,
    /// column security profile members, shares, System Administrators, organisation-wide
    /// delete, users without roles, inactive users, deprecated role holders, rule violations
    /// and licences (docs/review.md). Pure: the clock and the last accesses are in `options`.
    #[must_use]
    pub fn access_review(&self, options: &ReviewOptions) -> AccessReview {
        let mut users: Vec<UserId> = self.user_ids().collect();
        users.sort_by(|a, b| self.user(*a).name.cmp(&self.user(*b).name));
        let mut roles: Vec<RoleId> = self.role_ids().filter(|r| !self.role(*r).deleted).collect();
        roles.sort_by(|a, b| self.role(*a).name.cmp(&self.role(*b).name));
        let mut tables: Vec<TableId> = self.table_ids().collect();
        tables.sort_by(|a, b| self.table(*a).name.cmp(&self.table(*b).name));
        let all_misc = misc_names(self, &roles);
        let c = Context {
            org: self,
            users,
            roles,
            tables,
        };
        let (effective, org_delete) = effective_privileges(&c, &all_misc);
        let mut views = vec![
            user_roles(&c),
            role_privileges(&c),
            role_misc(&c),
            effective,
            column_profiles(&c),
            shares(&c),
            system_administrators(&c),
            org_delete,
            users_without_roles(&c),
            inactive_users(&c, options),
            deprecated_role_holders(&c),
            rule_violations(&c),
            licences(&c),
        ];
        let audit = self.audit_settings();
        let mut summary = vec![
            vec![text("organization"), text(&options.organization)],
            vec![
                text("revision"),
                Cell::Number(i64::try_from(options.revision).unwrap_or(i64::MAX)),
            ],
            vec![text("generated"), Cell::Time(options.now_ms)],
            vec![
                text("inactive_days"),
                Cell::Number(i64::from(options.inactive_days)),
            ],
            vec![
                text("user_access_audited"),
                Cell::Flag(audit.enabled && audit.user_access),
            ],
            vec![text("users"), Cell::Number(c.users.len() as i64)],
            vec![
                text("enabled_users"),
                Cell::Number(c.enabled_users().count() as i64),
            ],
            vec![text("roles"), Cell::Number(c.roles.len() as i64)],
        ];
        summary.extend(views.iter().map(|v| {
            vec![
                text(format!("rows: {}", v.name)),
                Cell::Number(v.rows.len() as i64),
            ]
        }));
        views.insert(
            0,
            ReviewView {
                name: "summary",
                title: "Summary",
                columns: &["item", "value"],
                rows: summary,
            },
        );
        AccessReview { views }
    }
}
