//! Role packs (`packs/`, docs/export.md): a product's tables, relationships, roles, column
//! security profiles, apps, role rules and licences as a scenario fragment, importable into any
//! organisation (`strata import pack`) and the source of the demo's products.
//!
//! [`plan`] turns a pack into the operations that bring an organisation to it, by name (D67):
//! what is missing is created; a role whose grid, miscellaneous privileges or deprecation
//! differ, an app whose roles or needs differ and a licence whose use rights differ are
//! updated in place; a table gains the columns it lacks; what already matches is left alone,
//! so applying a pack twice changes nothing the second time. What cannot be applied (a rule or
//! an app naming a role the organisation lacks, a licence's table it lacks, a column whose
//! security differs) is skipped and said so.

use std::collections::{BTreeMap, BTreeSet};

use strata_engine::{Depth, Organization, Privilege, RoleRule};
use strata_ops::{CascadeOp, ColumnOp, LicenceOp, Operation, PermissionOp};

use crate::spec::{LoadError, ProfileSpec, RelationshipSpec, RoleSpec, Scenario, TableSpec};

/// The packs compiled into the binary: (name, file text).
pub const BUILT_IN: [(&str, &str); 4] = [
    (
        "customer-service-workspace",
        include_str!("../../../packs/customer-service-workspace.yaml"),
    ),
    (
        "omnichannel",
        include_str!("../../../packs/omnichannel.yaml"),
    ),
    ("work365", include_str!("../../../packs/work365.yaml")),
    ("licences", include_str!("../../../packs/licences.yaml")),
];

/// The top-level keys a pack may hold.
const PACK_KEYS: [&str; 10] = [
    "format",
    "name",
    "description",
    "tables",
    "relationships",
    "roles",
    "field_security",
    "apps",
    "role_rules",
    "licences",
];

/// A built-in pack by name.
#[must_use]
pub fn built_in(name: &str) -> Option<&'static str> {
    BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Parses a pack: a scenario fragment with only [`PACK_KEYS`], roles of the root unit,
/// profiles without members, and every table its roles, relationships, profiles and apps name
/// declared in it.
///
/// # Errors
///
/// The line and the problem.
pub fn parse(text: &str) -> Result<Scenario, LoadError> {
    let root = crate::yaml::parse(text)
        .map_err(|(line, message)| LoadError::new(line, format!("YAML syntax: {message}")))?;
    if let crate::yaml::NodeKind::Map(entries) = &root.kind {
        for (k, _) in entries {
            let key = k.scalar().unwrap_or_default();
            if !PACK_KEYS.contains(&key) {
                return Err(LoadError::new(
                    k.line,
                    format!(
                        "a pack holds {} only, not `{key}` (packs carry no units, users or records)",
                        PACK_KEYS[3..].join(", ")
                    ),
                ));
            }
        }
    }
    let s = crate::spec::parse_fragment(text)?;
    let declared: BTreeSet<&str> = s.tables.iter().map(|t| t.name.as_str()).collect();
    let need = |table: &str, line: usize| {
        if declared.contains(table) {
            Ok(())
        } else {
            Err(LoadError::new(
                line,
                format!("table `{table}` is not declared in the pack's `tables`"),
            ))
        }
    };
    for r in &s.roles {
        if r.business_unit.is_some() {
            return Err(LoadError::new(
                r.line,
                format!("role `{}`: a pack's roles belong to the root unit", r.name),
            ));
        }
        if r.deleted {
            return Err(LoadError::new(r.line, "a pack holds no deleted roles"));
        }
        for (table, _, _, line) in &r.privileges {
            need(table, *line)?;
        }
    }
    for r in &s.relationships {
        need(&r.parent, r.line)?;
        need(&r.child, r.line)?;
    }
    for p in &s.profiles {
        if !p.members.is_empty() {
            return Err(LoadError::new(
                p.line,
                format!("profile `{}`: a pack's profiles have no members", p.name),
            ));
        }
        for q in &p.permissions {
            need(&q.table, q.line)?;
        }
    }
    for a in &s.apps {
        for (table, _, _, line) in &a.needs {
            need(table, *line)?;
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Operations that create a pack's parts (the demo uses them in its own order).

/// `add_table` for a table of the pack.
#[must_use]
pub fn table_op(t: &TableSpec) -> Operation {
    Operation::AddTable {
        name: t.name.clone(),
        ownership: t
            .organization_owned
            .map(|o| if o { "organization" } else { "user_or_team" }.to_owned()),
        columns: t
            .columns
            .iter()
            .map(|c| ColumnOp {
                name: c.name.clone(),
                secured: c.secured,
            })
            .collect(),
        entity_set: t.entity_set.clone(),
    }
}

/// `add_relationship` for a relationship of the pack.
#[must_use]
pub fn relationship_op(r: &RelationshipSpec) -> Operation {
    let name = |t: strata_engine::CascadeType| {
        Some(
            match t {
                strata_engine::CascadeType::Cascade => "cascade",
                strata_engine::CascadeType::Active => "active",
                strata_engine::CascadeType::UserOwned => "user_owned",
                strata_engine::CascadeType::None => "none",
            }
            .to_owned(),
        )
    };
    let c = r.cascade;
    Operation::AddRelationship {
        name: r.name.clone(),
        parent: r.parent.clone(),
        child: r.child.clone(),
        lookup: r.lookup.clone(),
        behavior: "custom".to_owned(),
        cascade: Some(CascadeOp {
            assign: name(c.assign),
            share: name(c.share),
            unshare: name(c.unshare),
            reparent: name(c.reparent),
            delete: Some(
                match c.delete {
                    strata_engine::DeleteBehavior::Cascade => "cascade",
                    strata_engine::DeleteBehavior::RemoveLink => "remove_link",
                    strata_engine::DeleteBehavior::Restrict => "restrict",
                }
                .to_owned(),
            ),
        }),
    }
}

fn grid(r: &RoleSpec) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut privileges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (table, privilege, depth, _) in &r.privileges {
        privileges
            .entry(table.clone())
            .or_default()
            .insert(privilege.name().to_owned(), depth.name().to_owned());
    }
    privileges
}

/// `add_role` for a role of the pack.
#[must_use]
pub fn role_op(r: &RoleSpec) -> Operation {
    Operation::AddRole {
        name: r.name.clone(),
        business_unit: None,
        inheritance: r.team_only.then(|| "team_only".to_owned()),
        system_administrator: r.system_administrator,
        privileges: grid(r),
        misc: r.misc.clone(),
    }
}

/// `deprecate_role` for a deprecated role of the pack.
#[must_use]
pub fn deprecation_op(r: &RoleSpec) -> Option<Operation> {
    let (message, successors) = r.deprecation.as_ref()?;
    Some(Operation::DeprecateRole {
        role: r.name.clone(),
        deprecated: true,
        message: message.clone(),
        successors: successors.iter().map(|(n, _)| n.clone()).collect(),
    })
}

/// `add_profile` for a profile of the pack, with these members (principals as written).
#[must_use]
pub fn profile_op(p: &ProfileSpec, members: Vec<String>) -> Operation {
    Operation::AddProfile {
        name: p.name.clone(),
        members,
        permissions: p
            .permissions
            .iter()
            .map(|q| PermissionOp {
                table: q.table.clone(),
                column: q.column.clone(),
                read: q.read,
                update: q.update,
                create: q.create,
            })
            .collect(),
    }
}

fn needs(a: &crate::spec::AppSpec) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut needs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (table, privilege, depth, _) in &a.needs {
        needs
            .entry(table.clone())
            .or_default()
            .insert(privilege.name().to_owned(), depth.name().to_owned());
    }
    needs
}

/// `add_app` (and `set_app_needs`) for an app of the pack.
#[must_use]
pub fn app_ops(a: &crate::spec::AppSpec) -> Vec<Operation> {
    let mut ops = vec![Operation::AddApp {
        name: a.name.clone(),
        roles: a.roles.iter().map(|(r, _)| r.clone()).collect(),
    }];
    if !a.needs.is_empty() {
        ops.push(Operation::SetAppNeeds {
            app: a.name.clone(),
            needs: needs(a),
        });
    }
    ops
}

/// The pack's role rules, as `add_role_rule` operations.
#[must_use]
pub fn rule_ops(s: &Scenario) -> Vec<Operation> {
    s.role_rules.iter().map(|(_, op)| op.clone()).collect()
}

/// The pack's licences, as `add_licence` operations.
#[must_use]
pub fn licence_ops(s: &Scenario) -> Vec<Operation> {
    s.licences
        .iter()
        .map(|(l, _)| Operation::AddLicence(l.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Planning an import.

/// What importing does to one part of the organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanLine {
    /// `create`, `update`, `unchanged` or `skip`.
    pub action: &'static str,
    /// `table`, `column`, `relationship`, `role`, `deprecation`, `profile`, `app`, `rule`,
    /// `licence`.
    pub kind: &'static str,
    /// The part's name.
    pub name: String,
    /// What changes, or why it is skipped.
    pub detail: String,
}

/// The operations that bring an organisation to a pack, and what each part becomes.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// The operations, to apply as one batch.
    pub ops: Vec<Operation>,
    /// One line per part of the pack.
    pub lines: Vec<PlanLine>,
}

impl Plan {
    fn line(&mut self, action: &'static str, kind: &'static str, name: &str, detail: String) {
        self.lines.push(PlanLine {
            action,
            kind,
            name: name.to_owned(),
            detail,
        });
    }

    /// How many parts are created, updated, unchanged and skipped.
    #[must_use]
    pub fn counts(&self) -> [usize; 4] {
        let n = |a: &str| self.lines.iter().filter(|l| l.action == a).count();
        [n("create"), n("update"), n("unchanged"), n("skip")]
    }
}

/// A grid as table → privilege → depth, `none` left out.
type Grid = BTreeMap<String, BTreeMap<&'static str, &'static str>>;

fn spec_grid(cells: &[(String, Privilege, Depth, usize)]) -> Grid {
    let mut out = Grid::new();
    for (table, privilege, depth, _) in cells {
        if *depth != Depth::None {
            out.entry(table.clone())
                .or_default()
                .insert(privilege.name(), depth.name());
        } else if let Some(row) = out.get_mut(table) {
            row.remove(privilege.name());
        }
    }
    out.retain(|_, row| !row.is_empty());
    out
}

fn engine_grid<'a>(
    org: &Organization,
    rows: impl Iterator<Item = (&'a strata_engine::TableId, &'a [Depth; 8])>,
) -> Grid {
    let mut out = Grid::new();
    for (table, depths) in rows {
        for p in Privilege::ALL {
            let d = depths[p.index()];
            if d != Depth::None {
                out.entry(org.table(*table).name.clone())
                    .or_default()
                    .insert(p.name(), d.name());
            }
        }
    }
    out
}

fn sorted(list: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = list.into_iter().collect();
    v.sort();
    v.dedup();
    v
}

/// The rule as the violations report writes it, from names.
fn rule_text(op: &Operation) -> String {
    match op {
        Operation::AddRoleRule {
            role,
            requires: Some(list),
            ..
        } => format!(
            "{role} requires {}",
            sorted(list.iter().cloned()).join(", ")
        ),
        Operation::AddRoleRule {
            role,
            excludes: Some(other),
            ..
        } => {
            let mut pair = [role.clone(), other.clone()];
            pair.sort();
            format!("{} excludes {}", pair[0], pair[1])
        }
        Operation::AddRoleRule { role, .. } => format!("{role} is direct only"),
        _ => String::new(),
    }
}

fn existing_rule_text(org: &Organization, rule: &RoleRule) -> String {
    let name = |r: &strata_engine::RoleId| org.role(*r).name.clone();
    match rule {
        RoleRule::Requires { role, any_of } => format!(
            "{} requires {}",
            name(role),
            sorted(any_of.iter().map(name)).join(", ")
        ),
        RoleRule::Excludes { role, other } => {
            let mut pair = [name(role), name(other)];
            pair.sort();
            format!("{} excludes {}", pair[0], pair[1])
        }
        RoleRule::DirectOnly { role } => format!("{} is direct only", name(role)),
    }
}

/// A licence's use rights in a comparable form: price, default, grid, misc, apps.
type LicenceForm = (
    u32,
    &'static str,
    Grid,
    bool,
    Vec<String>,
    bool,
    Vec<String>,
);

fn licence_form_of_op(l: &LicenceOp) -> LicenceForm {
    let mut grid = Grid::new();
    for (table, row) in &l.tables {
        for (p, d) in row {
            if let (Some(p), Some(d)) = (Privilege::from_name(p), Depth::from_name(d))
                && d != Depth::None
            {
                grid.entry(table.clone())
                    .or_default()
                    .insert(p.name(), d.name());
            }
        }
    }
    let default = l
        .default
        .as_deref()
        .and_then(Depth::from_name)
        .unwrap_or(Depth::None)
        .name();
    (
        l.price,
        default,
        grid,
        l.all_misc,
        sorted(l.misc.iter().cloned()),
        l.all_apps,
        sorted(l.apps.iter().cloned()),
    )
}

fn licence_form(org: &Organization, l: &strata_engine::Licence) -> LicenceForm {
    (
        l.price,
        l.default_ceiling.name(),
        engine_grid(org, l.ceilings.iter()),
        l.all_misc,
        sorted(l.misc.iter().cloned()),
        l.all_apps,
        sorted(l.apps.iter().map(|a| org.app(*a).name.clone())),
    )
}

/// The operations that bring `org` to the pack, by name, and a line per part (D67).
#[must_use]
#[allow(
    clippy::too_many_lines,
    reason = "one part of the pack after the other"
)]
pub fn plan(org: &Organization, pack: &Scenario) -> Plan {
    let mut plan = Plan::default();
    // Names the batch creates, so that later parts can rely on them.
    let mut tables: BTreeSet<String> = org.table_ids().map(|t| org.table(t).name.clone()).collect();
    let mut roles: BTreeSet<String> = org.role_ids().map(|r| org.role(r).name.clone()).collect();

    for t in &pack.tables {
        match org.table_id(&t.name) {
            None => {
                plan.ops.push(table_op(t));
                tables.insert(t.name.clone());
                plan.line(
                    "create",
                    "table",
                    &t.name,
                    format!("{} column(s)", t.columns.len()),
                );
            }
            Some(id) => {
                let table = org.table(id);
                let mut missing = Vec::new();
                for c in &t.columns {
                    match table.columns.iter().find(|x| x.name == c.name) {
                        None => missing.push(ColumnOp {
                            name: c.name.clone(),
                            secured: c.secured,
                        }),
                        Some(x) if x.secured != c.secured => plan.line(
                            "skip",
                            "column",
                            &format!("{}.{}", t.name, c.name),
                            format!(
                                "the pack has it {}secured, the organisation {}",
                                if c.secured { "" } else { "not " },
                                if x.secured { "secures it" } else { "does not" }
                            ),
                        ),
                        Some(_) => {}
                    }
                }
                if missing.is_empty() {
                    plan.line("unchanged", "table", &t.name, String::new());
                } else {
                    plan.line(
                        "update",
                        "table",
                        &t.name,
                        format!(
                            "add column(s) {}",
                            missing
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    plan.ops.push(Operation::AddColumns {
                        table: t.name.clone(),
                        columns: missing,
                    });
                }
            }
        }
    }

    for r in &pack.relationships {
        let exists = org
            .relationship_ids()
            .any(|id| org.relationship(id).name == r.name);
        if exists {
            plan.line("unchanged", "relationship", &r.name, String::new());
        } else {
            plan.ops.push(relationship_op(r));
            plan.line(
                "create",
                "relationship",
                &r.name,
                format!("{} → {} ({})", r.parent, r.child, r.lookup),
            );
        }
    }

    for r in &pack.roles {
        let want = spec_grid(&r.privileges);
        let cells: usize = want.values().map(BTreeMap::len).sum();
        match org.role_id(&r.name) {
            None => {
                plan.ops.push(role_op(r));
                roles.insert(r.name.clone());
                plan.line("create", "role", &r.name, format!("{cells} privilege(s)"));
            }
            Some(id) => {
                let role = org.role(id);
                let have = engine_grid(org, role.privileges.iter());
                let misc_differs = sorted(role.misc.iter().cloned()) != sorted(r.misc.clone());
                if have == want && !misc_differs {
                    plan.line("unchanged", "role", &r.name, String::new());
                } else {
                    plan.ops.push(Operation::SetRolePrivileges {
                        role: r.name.clone(),
                        privileges: grid(r),
                        misc: r.misc.clone(),
                    });
                    plan.line(
                        "update",
                        "role",
                        &r.name,
                        format!("grid set to {cells} privilege(s)"),
                    );
                }
            }
        }
    }

    for r in &pack.roles {
        let Some((message, successors)) = &r.deprecation else {
            continue;
        };
        let names: Vec<String> = successors.iter().map(|(n, _)| n.clone()).collect();
        if let Some(missing) = names.iter().find(|n| !roles.contains(*n)) {
            plan.line(
                "skip",
                "deprecation",
                &r.name,
                format!("successor `{missing}` is not a role of the organisation"),
            );
            continue;
        }
        let current = org.role_id(&r.name).and_then(|id| {
            org.role(id).deprecation.as_ref().map(|d| {
                (
                    d.message.clone(),
                    d.successors
                        .iter()
                        .map(|s| org.role(*s).name.clone())
                        .collect::<Vec<_>>(),
                )
            })
        });
        if current.as_ref() == Some(&(message.clone(), names.clone())) {
            plan.line("unchanged", "deprecation", &r.name, String::new());
        } else if let Some(op) = deprecation_op(r) {
            plan.ops.push(op);
            plan.line(
                if current.is_some() {
                    "update"
                } else {
                    "create"
                },
                "deprecation",
                &r.name,
                format!("successors {}", names.join(", ")),
            );
        }
    }

    for p in &pack.profiles {
        if org.profile_id(&p.name).is_some() {
            plan.line(
                "unchanged",
                "profile",
                &p.name,
                "exists; its members and permissions are kept".to_owned(),
            );
        } else {
            plan.ops.push(profile_op(p, Vec::new()));
            plan.line(
                "create",
                "profile",
                &p.name,
                format!("{} column permission(s), no members", p.permissions.len()),
            );
        }
    }

    for a in &pack.apps {
        if let Some((missing, _)) = a.roles.iter().find(|(n, _)| !roles.contains(n)) {
            plan.line(
                "skip",
                "app",
                &a.name,
                format!("role `{missing}` is not a role of the organisation"),
            );
            continue;
        }
        let want_roles = sorted(a.roles.iter().map(|(n, _)| n.clone()));
        match org.app_id(&a.name) {
            None => {
                plan.ops.extend(app_ops(a));
                plan.line(
                    "create",
                    "app",
                    &a.name,
                    format!("roles {}", want_roles.join(", ")),
                );
            }
            Some(id) => {
                let app = org.app(id);
                let have_roles = sorted(app.roles.iter().map(|r| org.role(*r).name.clone()));
                let mut have_needs = Grid::new();
                for n in &app.needs {
                    have_needs
                        .entry(org.table(n.table).name.clone())
                        .or_default()
                        .insert(n.privilege.name(), n.depth.name());
                }
                let want_needs = spec_grid(&a.needs);
                let mut changes = Vec::new();
                if have_roles != want_roles {
                    plan.ops.push(Operation::SetAppRoles {
                        app: a.name.clone(),
                        roles: a.roles.iter().map(|(n, _)| n.clone()).collect(),
                    });
                    changes.push("roles");
                }
                if have_needs != want_needs {
                    plan.ops.push(Operation::SetAppNeeds {
                        app: a.name.clone(),
                        needs: needs(a),
                    });
                    changes.push("needs");
                }
                if changes.is_empty() {
                    plan.line("unchanged", "app", &a.name, String::new());
                } else {
                    plan.line(
                        "update",
                        "app",
                        &a.name,
                        format!("set {}", changes.join(", ")),
                    );
                }
            }
        }
    }

    let existing: BTreeSet<String> = org
        .role_rules()
        .iter()
        .map(|r| existing_rule_text(org, r))
        .collect();
    for mut op in rule_ops(pack) {
        // A `requires` rule keeps the alternatives the organisation has.
        let mut left_out = Vec::new();
        if let Operation::AddRoleRule {
            requires: Some(list),
            ..
        } = &mut op
        {
            left_out = list
                .iter()
                .filter(|n| !roles.contains(*n))
                .cloned()
                .collect();
            if left_out.len() < list.len() {
                list.retain(|n| roles.contains(n));
            } else {
                left_out.clear();
            }
        }
        let text = rule_text(&op);
        let named: Vec<String> = match &op {
            Operation::AddRoleRule {
                role,
                requires,
                excludes,
                ..
            } => std::iter::once(role.clone())
                .chain(requires.iter().flatten().cloned())
                .chain(excludes.iter().cloned())
                .collect(),
            _ => Vec::new(),
        };
        if let Some(missing) = named.iter().find(|n| !roles.contains(*n)) {
            plan.line(
                "skip",
                "rule",
                &text,
                format!("role `{missing}` is not a role of the organisation"),
            );
        } else if existing.contains(&text) {
            plan.line("unchanged", "rule", &text, String::new());
        } else {
            plan.ops.push(op);
            let note = if left_out.is_empty() {
                String::new()
            } else {
                format!("without {} (not in the organisation)", left_out.join(", "))
            };
            plan.line("create", "rule", &text, note);
        }
    }

    for (l, _) in &pack.licences {
        let mut wanted = l.clone();
        let dropped: Vec<String> = wanted
            .tables
            .keys()
            .filter(|t| !tables.contains(*t))
            .cloned()
            .collect();
        wanted.tables.retain(|t, _| tables.contains(t));
        let apps_missing: Vec<String> = wanted
            .apps
            .iter()
            .filter(|a| org.app_id(a).is_none() && !pack.apps.iter().any(|p| p.name == **a))
            .cloned()
            .collect();
        wanted.apps.retain(|a| !apps_missing.contains(a));
        let mut note = String::new();
        if !dropped.is_empty() || !apps_missing.is_empty() {
            let all: Vec<String> = dropped.into_iter().chain(apps_missing).collect();
            note = format!(" (left out, not in the organisation: {})", all.join(", "));
        }
        match org.licence(&l.name) {
            None => {
                plan.ops.push(Operation::AddLicence(wanted));
                plan.line(
                    "create",
                    "licence",
                    &l.name,
                    format!("price {}{note}", l.price),
                );
            }
            Some(current) => {
                if licence_form(org, current) == licence_form_of_op(&wanted) {
                    plan.line("unchanged", "licence", &l.name, note.trim().to_owned());
                } else {
                    plan.ops.push(Operation::SetLicence(wanted));
                    plan.line(
                        "update",
                        "licence",
                        &l.name,
                        format!("price {}{note}", l.price),
                    );
                }
            }
        }
    }
    plan
}
