//! Runs scenarios against the engine in this process.

use std::collections::BTreeMap;

use strata_engine::{
    AccessMask, Cascade, CascadeType, DeleteBehavior, Organization, Owner, Ownership, Principal,
    Privilege, TeamType,
};
use strata_ops::{
    CascadeOp, ColumnOp, Fields, HierarchyOp, OpErrorKind, Operation, PermissionOp, SettingsOp,
    to_json,
};

use crate::spec::{LoadError, Outcome, PrincipalRef, Scenario, Step, StepKind};
use crate::{Observed, Target};

/// The in-process engine as a scenario target.
#[derive(Debug, Default)]
pub struct EngineTarget {
    org: Organization,
}

impl EngineTarget {
    /// A target with an empty organisation.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The organisation as it stands.
    #[must_use]
    pub fn organization(&self) -> &Organization {
        &self.org
    }
}

fn fields(list: &[(String, strata_engine::Value)]) -> Fields {
    list.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()
}

fn depth_first<T>(
    items: &[T],
    name: impl Fn(&T) -> &str,
    parent: impl Fn(&T) -> Option<&str>,
) -> Vec<&T> {
    let mut placed: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    let mut pending: Vec<&T> = items.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        // In file order, each item as soon as its parent is placed: a file written parents
        // first keeps its order (and so its ids, which an export relies on).
        let mut rest = Vec::new();
        for i in pending {
            if parent(i).is_none_or(|p| placed.contains(&p)) {
                placed.push(name(i));
                out.push(i);
            } else {
                rest.push(i);
            }
        }
        if rest.len() == before {
            // Validation refuses cycles and unknown parents; keep going so the engine names them.
            out.extend(rest);
            break;
        }
        pending = rest;
    }
    out
}

/// The operations that set up a scenario's organisation, each with the line it comes from.
#[must_use]
pub fn setup_operations(s: &Scenario) -> Vec<(usize, Operation)> {
    let settings = &s.settings;
    let mut ops = vec![(
        1,
        Operation::Settings(SettingsOp {
            share_to_previous_owner_on_assign: settings.share_to_previous_owner_on_assign,
            ownership_across_business_units: settings.ownership_across_business_units,
            do_not_remove_roles_on_change_business_unit: settings
                .do_not_remove_roles_on_change_business_unit,
            always_move_record_to_owner_business_unit: settings
                .always_move_record_to_owner_business_unit,
            hierarchy: None,
        }),
    )];
    for u in depth_first(&s.business_units, |u| &u.name, |u| u.parent.as_deref()) {
        ops.push((
            u.line,
            Operation::AddBusinessUnit {
                name: u.name.clone(),
                parent: u.parent.clone(),
            },
        ));
    }
    for t in &s.tables {
        let ownership = t
            .organization_owned
            .map(|o| if o { "organization" } else { "user_or_team" }.to_owned());
        let columns = t
            .columns
            .iter()
            .map(|c| ColumnOp {
                name: c.name.clone(),
                secured: c.secured,
            })
            .collect();
        ops.push((
            t.line,
            Operation::AddTable {
                name: t.name.clone(),
                ownership,
                columns,
                entity_set: t.entity_set.clone(),
            },
        ));
    }
    if let Some(h) = &settings.hierarchy {
        let Some((_, Operation::Settings(first))) = ops.first() else {
            return ops;
        };
        let mut with_hierarchy = first.clone();
        with_hierarchy.hierarchy = Some(HierarchyOp {
            model: if h.position_model {
                "position"
            } else {
                "manager"
            }
            .to_owned(),
            depth: h.depth,
            tables: h
                .tables
                .as_ref()
                .map(|list| list.iter().map(|(t, _)| t.clone()).collect()),
            managers_must_be_in_same_or_parent_business_unit: h
                .managers_must_be_in_same_or_parent_business_unit,
        });
        ops.push((h.line, Operation::Settings(with_hierarchy)));
    }
    if let Some((line, audit)) = &s.audit {
        ops.push((*line, audit.clone()));
    }
    for r in &s.relationships {
        ops.push((
            r.line,
            Operation::AddRelationship {
                name: r.name.clone(),
                parent: r.parent.clone(),
                child: r.child.clone(),
                lookup: r.lookup.clone(),
                behavior: "custom".to_owned(),
                cascade: Some(cascade_op(r.cascade)),
            },
        ));
    }
    for r in &s.roles {
        let mut privileges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (table, privilege, depth, _) in &r.privileges {
            privileges
                .entry(table.clone())
                .or_default()
                .insert(privilege.name().to_owned(), depth.name().to_owned());
        }
        ops.push((
            r.line,
            Operation::AddRole {
                name: r.name.clone(),
                business_unit: r.business_unit.clone(),
                inheritance: Some(
                    if r.team_only {
                        "team_only"
                    } else {
                        "user_and_team"
                    }
                    .to_owned(),
                ),
                system_administrator: r.system_administrator,
                privileges,
                misc: r.misc.clone(),
            },
        ));
        if r.deleted {
            ops.push((
                r.line,
                Operation::DeleteRole {
                    role: r.name.clone(),
                    replacement: None,
                },
            ));
        }
    }
    for p in depth_first(&s.positions, |p| &p.name, |p| p.parent.as_deref()) {
        ops.push((
            p.line,
            Operation::AddPosition {
                name: p.name.clone(),
                parent: p.parent.clone(),
            },
        ));
    }
    for u in s.users.iter().filter(|u| u.after_record.is_none()) {
        ops.extend(add_user(u));
    }
    for t in &s.teams {
        ops.push((
            t.line,
            Operation::AddTeam {
                name: t.name.clone(),
                kind: Some(team_type(t.kind).to_owned()),
                business_unit: t.business_unit.clone(),
            },
        ));
    }
    for t in &s.templates {
        let rights = t.rights.privileges().map(|p| p.name().to_owned()).collect();
        ops.push((
            t.line,
            Operation::AddTemplate {
                name: t.name.clone(),
                table: t.table.clone(),
                rights,
            },
        ));
    }
    for r in &s.records {
        ops.push((
            r.line,
            Operation::InsertRecord {
                id: r.id.clone(),
                table: r.table.clone(),
                owner: r.owner.as_ref().map(ToString::to_string),
                business_unit: r.business_unit.clone(),
                state: Some(if r.active { "active" } else { "inactive" }.to_owned()),
                fields: fields(&r.fields),
            },
        ));
        for more in &r.more_fields {
            ops.push((
                r.line,
                Operation::Update {
                    actor: None,
                    record: r.id.clone(),
                    fields: fields(more),
                },
            ));
        }
        if r.deleted {
            ops.push((
                r.line,
                Operation::Delete {
                    actor: None,
                    record: r.id.clone(),
                },
            ));
        }
        for u in s
            .users
            .iter()
            .filter(|u| u.after_record.as_deref() == Some(r.id.as_str()))
        {
            ops.extend(add_user(u));
        }
    }
    for p in &s.profiles {
        ops.push((
            p.line,
            Operation::AddProfile {
                name: p.name.clone(),
                members: p.members.iter().map(|(m, _)| m.to_string()).collect(),
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
            },
        ));
    }
    for f in &s.field_shares {
        ops.push((
            f.line,
            Operation::AddFieldShare {
                record: f.record.clone(),
                column: f.column.clone(),
                principal: f.principal.to_string(),
                read: f.read,
                update: f.update,
            },
        ));
    }
    for a in &s.apps {
        ops.push((
            a.line,
            Operation::AddApp {
                name: a.name.clone(),
                roles: a.roles.iter().map(|(r, _)| r.clone()).collect(),
            },
        ));
        if !a.needs.is_empty() {
            let mut needs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            for (table, privilege, depth, _) in &a.needs {
                needs
                    .entry(table.clone())
                    .or_default()
                    .insert(privilege.name().to_owned(), depth.name().to_owned());
            }
            ops.push((
                a.line,
                Operation::SetAppNeeds {
                    app: a.name.clone(),
                    needs,
                },
            ));
        }
    }
    // Relations between the entities above, as system actions.
    for u in &s.users {
        for r in &u.roles {
            ops.push((
                r.line,
                Operation::AssignRole {
                    actor: None,
                    principal: u.name.clone(),
                    role: r.role.clone(),
                    business_unit: r.business_unit.clone(),
                },
            ));
        }
    }
    for u in &s.users {
        if let Some(m) = &u.manager {
            ops.push((
                u.line,
                Operation::SetManager {
                    actor: None,
                    user: u.name.clone(),
                    manager: Some(m.clone()),
                },
            ));
        }
    }
    for t in &s.teams {
        for (m, line) in &t.members {
            ops.push((
                *line,
                Operation::AddTeamMember {
                    actor: None,
                    team: t.name.clone(),
                    user: m.clone(),
                },
            ));
        }
        for (r, line) in &t.roles {
            ops.push((
                *line,
                Operation::AssignRole {
                    actor: None,
                    principal: format!("team:{}", t.name),
                    role: r.clone(),
                    business_unit: None,
                },
            ));
        }
    }
    for r in &s.records {
        for (lookup, parent) in &r.lookups {
            ops.push((
                r.line,
                Operation::Associate {
                    actor: None,
                    record: r.id.clone(),
                    lookup: lookup.clone(),
                    parent: parent.clone(),
                },
            ));
        }
    }
    for (record, lookup, parent, line) in &s.lookups {
        ops.push((
            *line,
            Operation::Associate {
                actor: None,
                record: record.clone(),
                lookup: lookup.clone(),
                parent: parent.clone(),
            },
        ));
    }
    for sh in &s.shares {
        if let Some((template, users)) = &sh.access_team {
            for u in users {
                ops.push((
                    sh.line,
                    Operation::AddAccessTeamMember {
                        actor: None,
                        record: sh.record.clone(),
                        template: template.clone(),
                        user: u.clone(),
                    },
                ));
            }
            continue;
        }
        let rights = sh
            .rights
            .privileges()
            .map(|p| p.name().to_owned())
            .collect();
        ops.push((
            sh.line,
            Operation::Share {
                actor: None,
                record: sh.record.clone(),
                principal: sh.principal.to_string(),
                rights,
            },
        ));
    }
    for a in &s.access_team_members {
        for u in &a.users {
            ops.push((
                a.line,
                Operation::AddAccessTeamMember {
                    actor: None,
                    record: a.record.clone(),
                    template: a.template.clone(),
                    user: u.clone(),
                },
            ));
        }
    }
    for u in s.users.iter().filter(|u| !u.enabled) {
        ops.push((
            u.line,
            Operation::SetUserEnabled {
                user: u.name.clone(),
                enabled: false,
            },
        ));
    }
    ops.extend(crate::licences::setup_operations(s));
    // Deprecations after the assignments (a deprecated role can no longer be assigned), each
    // before its successors' (a successor may not be deprecated when it is named).
    for r in deprecation_order(s) {
        if let Some((message, successors)) = &r.deprecation {
            ops.push((
                r.line,
                Operation::DeprecateRole {
                    role: r.name.clone(),
                    deprecated: true,
                    message: message.clone(),
                    successors: successors.iter().map(|(n, _)| n.clone()).collect(),
                },
            ));
        }
    }
    // Role rules last: assignments of the setup that break them are reported, not refused
    // (D46).
    ops.extend(s.role_rules.iter().cloned());
    ops
}

/// A user's own setup: added (enabled: disabled at the end of the setup, since a disabled user
/// cannot join a record's access team), the columns of their record, their position.
fn add_user(u: &crate::spec::UserSpec) -> Vec<(usize, Operation)> {
    let mut ops = vec![(
        u.line,
        Operation::AddUser {
            name: u.name.clone(),
            business_unit: u.business_unit.clone(),
            enabled: true,
        },
    )];
    for run in std::iter::once(&u.fields).chain(&u.more_fields) {
        if !run.is_empty() {
            ops.push((
                u.line,
                Operation::SetUserFields {
                    user: u.name.clone(),
                    fields: fields(run),
                },
            ));
        }
    }
    if u.position.is_some() {
        ops.push((
            u.line,
            Operation::SetPosition {
                user: u.name.clone(),
                position: u.position.clone(),
            },
        ));
    }
    ops
}

/// The deprecated roles, each before the deprecated roles it names as successors (file order
/// otherwise).
fn deprecation_order(s: &Scenario) -> Vec<&crate::spec::RoleSpec> {
    let mut pending: Vec<&crate::spec::RoleSpec> =
        s.roles.iter().filter(|r| r.deprecation.is_some()).collect();
    let mut out = Vec::new();
    while !pending.is_empty() {
        let named = |r: &crate::spec::RoleSpec| {
            pending.iter().any(|p| {
                p.deprecation
                    .as_ref()
                    .is_some_and(|(_, list)| list.iter().any(|(n, _)| *n == r.name))
                    && p.name != r.name
            })
        };
        let next = pending.iter().position(|r| !named(r)).unwrap_or(0);
        out.push(pending.remove(next));
    }
    out
}

fn team_type(kind: TeamType) -> &'static str {
    match kind {
        TeamType::Owner => "owner",
        TeamType::Access => "access",
        TeamType::SecurityGroup => "security_group",
        TeamType::OfficeGroup => "office_group",
    }
}

fn cascade_op(c: Cascade) -> CascadeOp {
    let name = |t: CascadeType| {
        Some(
            match t {
                CascadeType::Cascade => "cascade",
                CascadeType::Active => "active",
                CascadeType::UserOwned => "user_owned",
                CascadeType::None => "none",
            }
            .to_owned(),
        )
    };
    CascadeOp {
        assign: name(c.assign),
        share: name(c.share),
        unshare: name(c.unshare),
        reparent: name(c.reparent),
        delete: Some(
            match c.delete {
                DeleteBehavior::Cascade => "cascade",
                DeleteBehavior::RemoveLink => "remove_link",
                DeleteBehavior::Restrict => "restrict",
            }
            .to_owned(),
        ),
    }
}

/// Builds an organisation from a validated scenario.
pub fn build(s: &Scenario) -> Result<Organization, LoadError> {
    let ops = setup_operations(s);
    let list: Vec<Operation> = ops.iter().map(|(_, op)| op.clone()).collect();
    let mut org = Organization::new();
    strata_ops::apply_all(&mut org, &list).map_err(|(i, e)| LoadError::new(ops[i].0, e.message))?;
    Ok(org)
}

/// The operation of an action step.
#[must_use]
pub fn step_operation(kind: &StepKind) -> Option<Operation> {
    let who = |a: &Option<String>| a.clone();
    Some(match kind {
        StepKind::Create {
            actor,
            table,
            id,
            owner,
            lookups,
            fields: f,
        } => Operation::Create {
            actor: who(actor),
            table: table.clone(),
            id: id.clone(),
            owner: owner.as_ref().map(ToString::to_string),
            business_unit: None,
            state: None,
            lookups: lookups.iter().cloned().collect(),
            fields: fields(f),
        },
        StepKind::Update {
            actor,
            record,
            fields: f,
        } => Operation::Update {
            actor: who(actor),
            record: record.clone(),
            fields: fields(f),
        },
        StepKind::Delete { actor, record } => Operation::Delete {
            actor: who(actor),
            record: record.clone(),
        },
        StepKind::Assign {
            actor,
            record,
            owner,
        } => Operation::Assign {
            actor: who(actor),
            record: record.clone(),
            owner: owner.to_string(),
        },
        StepKind::Share {
            actor,
            record,
            principal,
            rights,
            modify,
        } => {
            let rights = rights.privileges().map(|p| p.name().to_owned()).collect();
            let (actor, record, principal) = (who(actor), record.clone(), principal.to_string());
            if *modify {
                Operation::ModifyShare {
                    actor,
                    record,
                    principal,
                    rights,
                }
            } else {
                Operation::Share {
                    actor,
                    record,
                    principal,
                    rights,
                }
            }
        }
        StepKind::Revoke {
            actor,
            record,
            principal,
        } => Operation::Revoke {
            actor: who(actor),
            record: record.clone(),
            principal: principal.to_string(),
        },
        StepKind::Associate {
            actor,
            record,
            lookup,
            parent,
        } => Operation::Associate {
            actor: who(actor),
            record: record.clone(),
            lookup: lookup.clone(),
            parent: parent.clone(),
        },
        StepKind::Disassociate {
            actor,
            record,
            lookup,
        } => Operation::Disassociate {
            actor: who(actor),
            record: record.clone(),
            lookup: lookup.clone(),
        },
        StepKind::AddAccessTeamMember {
            actor,
            record,
            template,
            user,
        } => Operation::AddAccessTeamMember {
            actor: who(actor),
            record: record.clone(),
            template: template.clone(),
            user: user.clone(),
        },
        StepKind::AssignRole {
            actor,
            principal,
            role,
            business_unit,
        } => Operation::AssignRole {
            actor: who(actor),
            principal: principal.to_string(),
            role: role.clone(),
            business_unit: business_unit.clone(),
        },
        StepKind::RemoveRole {
            actor,
            principal,
            role,
        } => Operation::RemoveRole {
            actor: who(actor),
            principal: principal.to_string(),
            role: role.clone(),
        },
        StepKind::AddTeamMember { actor, team, user } => Operation::AddTeamMember {
            actor: who(actor),
            team: team.clone(),
            user: user.clone(),
        },
        StepKind::RemoveTeamMember { actor, team, user } => Operation::RemoveTeamMember {
            actor: who(actor),
            team: team.clone(),
            user: user.clone(),
        },
        StepKind::MoveUser {
            actor,
            user,
            business_unit,
        } => Operation::MoveUser {
            actor: who(actor),
            user: user.clone(),
            business_unit: business_unit.clone(),
        },
        StepKind::SetManager {
            actor,
            user,
            manager,
        } => Operation::SetManager {
            actor: who(actor),
            user: user.clone(),
            manager: manager.clone(),
        },
        _ => return None,
    })
}

impl EngineTarget {
    fn user(&self, name: &str) -> Result<strata_engine::UserId, String> {
        self.org
            .user_id(name)
            .ok_or_else(|| format!("unknown user `{name}`"))
    }

    fn app(&self, name: &str) -> Result<strata_engine::AppId, String> {
        self.org
            .app_id(name)
            .ok_or_else(|| format!("unknown app `{name}`"))
    }

    fn owner(&self, p: &PrincipalRef) -> Result<Owner, String> {
        match strata_ops::resolve_principal(&self.org, &p.to_string()).map_err(|e| e.message)? {
            Principal::User(u) => Ok(Owner::User(u)),
            Principal::Team(t) => Ok(Owner::Team(t)),
            Principal::Organization => Err("the organization cannot own a record".to_owned()),
        }
    }

    fn question(&self, kind: &StepKind) -> Result<Observed, String> {
        let org = &self.org;
        Ok(match kind {
            StepKind::Check {
                user,
                privilege,
                record,
                table,
                owner,
            } => {
                let u = self.user(user)?;
                let decision = match (record, table) {
                    (Some(r), _) => match org.record_id(r) {
                        Some(id) => org.explain(u, *privilege, id),
                        None => {
                            return Ok(Observed::Decision {
                                allowed: false,
                                kinds: Vec::new(),
                                explanation: format!("record `{r}` does not exist"),
                            });
                        }
                    },
                    (None, Some(t)) => {
                        let tid = org
                            .table_id(t)
                            .ok_or_else(|| format!("unknown table `{t}`"))?;
                        let owner = match owner {
                            Some(p) => self.owner(p)?,
                            None if org.table(tid).ownership == Ownership::UserOrTeam => {
                                Owner::User(u)
                            }
                            None => Owner::None,
                        };
                        org.explain_create(u, tid, owner, None)
                    }
                    (None, None) => {
                        return Err("check names neither a record nor a table".to_owned());
                    }
                };
                Observed::Decision {
                    allowed: decision.allowed,
                    kinds: decision.paths.iter().map(|p| p.kind()).collect(),
                    explanation: org.render_decision(&decision),
                }
            }
            StepKind::Access { user, record } => {
                let mask = match org.record_id(record) {
                    Some(r) => org.access(self.user(user)?, r),
                    None => AccessMask::NONE,
                };
                Observed::Rights(
                    Privilege::RECORD_RIGHTS
                        .into_iter()
                        .filter(|p| mask.contains(*p))
                        .collect(),
                )
            }
            StepKind::List { user, table } => {
                let tid = org
                    .table_id(table)
                    .ok_or_else(|| format!("unknown table `{table}`"))?;
                let ids = org.list_readable(self.user(user)?, tid);
                Observed::Names(
                    ids.into_iter()
                        .map(|r| org.record(r).key.to_string())
                        .collect(),
                )
            }
            StepKind::Read { user, record } => match org.record_id(record) {
                Some(r) => {
                    let u = self.user(user)?;
                    Observed::Fields {
                        fields: org.read_record(u, r),
                        kinds: org
                            .explain(u, Privilege::Read, r)
                            .paths
                            .iter()
                            .map(|p| p.kind())
                            .collect(),
                    }
                }
                None => Observed::Fields {
                    fields: None,
                    kinds: Vec::new(),
                },
            },
            StepKind::WhoHasAccess { record, privilege } => match org.record_id(record) {
                Some(r) => Observed::Names(
                    org.who_has_access(r, *privilege)
                        .into_iter()
                        .map(|u| org.user(u).name.clone())
                        .collect(),
                ),
                None => Observed::Names(Vec::new()),
            },
            StepKind::RoleHolders { role } => {
                let r = org
                    .role_id(role)
                    .ok_or_else(|| format!("unknown role `{role}`"))?;
                let h = org.role_holders(r);
                let mut names: Vec<String> = h
                    .users
                    .iter()
                    .map(|d| org.user(d.user).name.clone())
                    .collect();
                names.extend(
                    h.teams
                        .iter()
                        .map(|t| format!("team:{}", org.team(*t).name)),
                );
                Observed::Names(names)
            }
            StepKind::OpenApp { user, app } => {
                let a = org
                    .app_id(app)
                    .ok_or_else(|| format!("unknown app `{app}`"))?;
                let access = org.app_access(self.user(user)?, a);
                Observed::Decision {
                    allowed: access.is_some(),
                    kinds: Vec::new(),
                    explanation: match access {
                        Some(why) => format!("allow: {why:?}"),
                        None => "deny: no role of the user or the user's teams is associated with the app, and the user is neither a maker nor a System Administrator".to_owned(),
                    },
                }
            }
            StepKind::AppReasons { user, app } => {
                let a = self.app(app)?;
                Observed::Names(
                    org.diagnose_app(self.user(user)?, a)
                        .blocks
                        .iter()
                        .map(|b| b.name().to_owned())
                        .collect(),
                )
            }
            StepKind::RolesNeeded { user, app } => {
                match org.roles_needed(self.user(user)?, self.app(app)?) {
                    Ok(set) => Observed::Names(
                        set.roles
                            .iter()
                            .map(|g| org.role(g.role).name.clone())
                            .collect(),
                    ),
                    Err(e) => Observed::Outcome {
                        outcome: Outcome::Invalid,
                        message: e.to_string(),
                    },
                }
            }
            StepKind::WhoCanOpen { app } => Observed::Names(
                org.who_can_open(self.app(app)?)
                    .into_iter()
                    .map(|(u, _)| org.user(u).name.clone())
                    .collect(),
            ),
            StepKind::ColumnCheck {
                user,
                record,
                column,
                update,
            } => {
                let r = org
                    .record_id(record)
                    .ok_or_else(|| format!("unknown record `{record}`"))?;
                let v = org
                    .explain_column(self.user(user)?, r, column, *update)
                    .map_err(|e| e.to_string())?;
                Observed::Decision {
                    allowed: v.allowed,
                    kinds: Vec::new(),
                    explanation: org.render_column_verdict(&v),
                }
            }
            StepKind::ColumnHolders {
                table,
                column,
                update,
            } => {
                let t = org
                    .table_id(table)
                    .ok_or_else(|| format!("unknown table `{table}`"))?;
                let holders = org
                    .column_holders(t, column)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| {
                        format!("column `{table}.{column}` is not secured: record access decides")
                    })?;
                Observed::Names(
                    holders
                        .into_iter()
                        .filter(|h| {
                            if *update {
                                h.access.update
                            } else {
                                h.access.read
                            }
                        })
                        .map(|h| org.user(h.user).name.clone())
                        .collect(),
                )
            }
            StepKind::GrantingRoles {
                user,
                privilege,
                record,
            } => {
                let r = org
                    .record_id(record)
                    .ok_or_else(|| format!("unknown record `{record}`"))?;
                let d = org.explain(self.user(user)?, *privilege, r);
                Observed::Names(
                    d.remedy
                        .map(|x| x.roles)
                        .unwrap_or_default()
                        .iter()
                        .map(|r| org.role(*r).name.clone())
                        .collect(),
                )
            }
            StepKind::RuleViolations { user } => Observed::Names(
                org.rule_violations()
                    .iter()
                    .filter(|v| user.as_ref().is_none_or(|u| org.user(v.user).name == *u))
                    .map(|v| v.line(org))
                    .collect(),
            ),
            StepKind::CheapestLicence { user } => crate::licences::cheapest(
                &strata_ops::user_report_json(org, &org.user_licence_report(self.user(user)?)),
            ),
            StepKind::LicenceFit { user } => crate::licences::fit(&strata_ops::user_report_json(
                org,
                &org.user_licence_report(self.user(user)?),
            )),
            StepKind::LicenceExceeds { role, licence } => crate::licences::exceeds(
                &strata_ops::exceeds_json(org, licence, Some(role)).map_err(|e| e.message)?,
            ),
            _ => return Err("not a question".to_owned()),
        })
    }
}

/// A `batch` step: the operations all or nothing, as the write path applies a request's batch
/// (a user's actions run as that user; setup operations are authorized for them).
fn batch(
    org: &mut Organization,
    ops: &[Operation],
    caller: Option<&str>,
) -> Result<Vec<strata_engine::Change>, strata_ops::OpError> {
    let mut list = ops.to_vec();
    if let Some(user) = caller {
        for op in &mut list {
            if let Some(slot) = op.actor_mut() {
                match slot {
                    Some(other) if other != user => {
                        return Err(strata_ops::OpError {
                            kind: OpErrorKind::Invalid,
                            code: "bad_actor",
                            message: format!(
                                "the operation acts as `{other}`, but the caller is `{user}`"
                            ),
                        });
                    }
                    _ => *slot = Some(user.to_owned()),
                }
            }
        }
    }
    strata_ops::apply_batch(org, &list, None, caller)
        .map(|changes| changes.into_iter().flatten().collect())
        .map_err(|(_, e)| e)
}

impl Target for EngineTarget {
    fn load(&mut self, scenario: &Scenario) -> Result<(), LoadError> {
        self.org = build(scenario)?;
        Ok(())
    }

    fn run(&mut self, step: &Step) -> Observed {
        let applied = match &step.kind {
            StepKind::Operation { caller, op } => Some(strata_ops::apply_checked(
                &mut self.org,
                op,
                caller.as_deref(),
            )),
            StepKind::Batch { caller, ops } => Some(batch(&mut self.org, ops, caller.as_deref())),
            StepKind::DryRun { caller, ops } => {
                return crate::dry_run::on_engine(&mut self.org, caller.as_deref(), ops);
            }
            kind => {
                step_operation(kind).map(|op| strata_ops::apply_checked(&mut self.org, &op, None))
            }
        };
        if let Some(applied) = applied {
            return match applied {
                Ok(_) => Observed::Outcome {
                    outcome: Outcome::Ok,
                    message: String::new(),
                },
                Err(e) => Observed::Outcome {
                    outcome: match e.kind {
                        OpErrorKind::Denied => Outcome::Denied,
                        OpErrorKind::Invalid => Outcome::Invalid,
                    },
                    message: e.message,
                },
            };
        }
        self.question(&step.kind).unwrap_or_else(Observed::Error)
    }
}
