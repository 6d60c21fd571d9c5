//! Runs scenarios against the engine in this process.

use strata_engine::{
    AccessMask, ActionError, Actor, ColumnPermission, CreateRecord, FieldShare, HierarchyModel,
    HierarchySettings, Inheritance, ModelError, NewRecord, Organization, Owner, Ownership,
    Principal, Privilege, RecordState, RoleDefinition, Settings, ShareMode,
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

fn at(line: usize) -> impl Fn(ModelError) -> LoadError {
    move |e| LoadError::new(line, e.to_string())
}

fn missing(line: usize, kind: &str, name: &str) -> LoadError {
    LoadError::new(line, format!("unknown {kind} `{name}`"))
}

/// Builds an organisation from a validated scenario.
pub fn build(s: &Scenario) -> Result<Organization, LoadError> {
    let mut org = Organization::new();
    {
        let mut setup = org.setup();
        setup
            .set_settings(Settings {
                share_to_previous_owner_on_assign: s.settings.share_to_previous_owner_on_assign,
                ownership_across_business_units: s.settings.ownership_across_business_units,
                do_not_remove_roles_on_change_business_unit: s
                    .settings
                    .do_not_remove_roles_on_change_business_unit,
                always_move_record_to_owner_business_unit: s
                    .settings
                    .always_move_record_to_owner_business_unit,
                hierarchy: None,
            })
            .map_err(at(1))?;
        // Units in dependency order (validation has refused cycles and unknown parents).
        let mut pending: Vec<_> = s.business_units.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for u in pending {
                let parent = match &u.parent {
                    None => None,
                    Some(p) => match setup.org().business_unit_id(p) {
                        Some(id) => Some(id),
                        None => {
                            rest.push(u);
                            continue;
                        }
                    },
                };
                setup
                    .add_business_unit(&u.name, parent)
                    .map_err(at(u.line))?;
            }
            if rest.len() == before {
                let u = rest[0];
                return Err(missing(
                    u.line,
                    "business unit",
                    u.parent.as_deref().unwrap_or(""),
                ));
            }
            pending = rest;
        }
        let root = setup.org().units().root();
        let unit = |setup: &strata_engine::Setup<'_>, name: &Option<String>, line: usize| match name
        {
            None => root.ok_or_else(|| LoadError::new(line, "no root business unit")),
            Some(n) => setup
                .org()
                .business_unit_id(n)
                .ok_or_else(|| missing(line, "business unit", n)),
        };
        for t in &s.tables {
            let ownership = t.organization_owned.map(|o| {
                if o {
                    Ownership::Organization
                } else {
                    Ownership::UserOrTeam
                }
            });
            let columns = t
                .columns
                .iter()
                .map(|c| strata_engine::Column {
                    name: c.name.clone(),
                    secured: c.secured,
                })
                .collect();
            setup
                .add_table(&t.name, ownership, columns)
                .map_err(at(t.line))?;
        }
        let table = |setup: &strata_engine::Setup<'_>, name: &str, line: usize| {
            setup
                .org()
                .table_id(name)
                .ok_or_else(|| missing(line, "table", name))
        };
        if let Some(h) = &s.settings.hierarchy {
            let tables = match &h.tables {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .map(|(t, line)| table(&setup, t, *line))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let mut settings = setup.org().settings().clone();
            settings.hierarchy = Some(HierarchySettings {
                model: if h.position_model {
                    HierarchyModel::Position
                } else {
                    HierarchyModel::Manager
                },
                depth: h.depth,
                tables,
                managers_must_be_in_same_or_parent_business_unit: h
                    .managers_must_be_in_same_or_parent_business_unit,
            });
            setup.set_settings(settings).map_err(at(h.line))?;
        }
        for r in &s.relationships {
            let parent = table(&setup, &r.parent, r.line)?;
            let child = table(&setup, &r.child, r.line)?;
            setup
                .add_relationship(&r.name, parent, child, &r.lookup, r.cascade)
                .map_err(at(r.line))?;
        }
        for r in &s.roles {
            let mut privileges = Vec::new();
            for (t, p, d, line) in &r.privileges {
                let id = table(&setup, t, *line)?;
                if setup.org().table(id).ownership == Ownership::Organization
                    && !matches!(
                        d,
                        strata_engine::Depth::None | strata_engine::Depth::Organization
                    )
                {
                    return Err(LoadError::new(
                        *line,
                        ModelError::DepthNotAllowed {
                            role: r.name.clone(),
                            table: t.clone(),
                            privilege: p.name(),
                            depth: d.name(),
                        }
                        .to_string(),
                    ));
                }
                privileges.push((id, *p, *d));
            }
            setup
                .add_role(RoleDefinition {
                    name: r.name.clone(),
                    business_unit: Some(unit(&setup, &r.business_unit, r.line)?),
                    inheritance: if r.team_only {
                        Inheritance::TeamOnly
                    } else {
                        Inheritance::UserAndTeam
                    },
                    system_administrator: r.system_administrator,
                    privileges,
                    misc: r.misc.clone(),
                })
                .map_err(at(r.line))?;
        }
        let mut pending: Vec<_> = s.positions.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for p in pending {
                let parent = match &p.parent {
                    None => None,
                    Some(name) => match setup.org().position_id(name) {
                        Some(id) => Some(id),
                        None => {
                            rest.push(p);
                            continue;
                        }
                    },
                };
                setup.add_position(&p.name, parent).map_err(at(p.line))?;
            }
            if rest.len() == before {
                return Err(LoadError::new(
                    rest[0].line,
                    format!("position `{}` is its own ancestor (a cycle)", rest[0].name),
                ));
            }
            pending = rest;
        }
        for u in &s.users {
            let bu = unit(&setup, &u.business_unit, u.line)?;
            let id = setup.add_user(&u.name, bu, u.enabled).map_err(at(u.line))?;
            for r in &u.roles {
                let role = setup
                    .org()
                    .role_id(&r.role)
                    .ok_or_else(|| missing(r.line, "role", &r.role))?;
                let in_unit = match &r.business_unit {
                    None => None,
                    Some(b) => Some(
                        setup
                            .org()
                            .business_unit_id(b)
                            .ok_or_else(|| missing(r.line, "business unit", b))?,
                    ),
                };
                setup
                    .assign_user_role(id, role, in_unit)
                    .map_err(at(r.line))?;
            }
            if let Some(p) = &u.position {
                let pos = setup
                    .org()
                    .position_id(p)
                    .ok_or_else(|| missing(u.line, "position", p))?;
                setup.set_position(id, Some(pos));
            }
            setup.set_user_fields(id, u.fields.clone());
        }
        for u in &s.users {
            if let Some(m) = &u.manager {
                let (Some(id), Some(mid)) = (setup.org().user_id(&u.name), setup.org().user_id(m))
                else {
                    return Err(missing(u.line, "user", m));
                };
                setup.set_manager(id, Some(mid)).map_err(at(u.line))?;
            }
        }
        for t in &s.teams {
            let bu = unit(&setup, &t.business_unit, t.line)?;
            let id = setup.add_team(&t.name, t.kind, bu).map_err(at(t.line))?;
            for (m, line) in &t.members {
                let user = setup
                    .org()
                    .user_id(m)
                    .ok_or_else(|| missing(*line, "user", m))?;
                setup.add_team_member(id, user);
            }
            for (r, line) in &t.roles {
                let role = setup
                    .org()
                    .role_id(r)
                    .ok_or_else(|| missing(*line, "role", r))?;
                setup.assign_team_role(id, role).map_err(at(*line))?;
            }
        }
        for t in &s.templates {
            let tid = table(&setup, &t.table, t.line)?;
            setup
                .add_template(&t.name, tid, t.rights)
                .map_err(at(t.line))?;
        }
        for r in &s.records {
            let tid = table(&setup, &r.table, r.line)?;
            let owner = match &r.owner {
                None => Owner::None,
                Some(p) => match resolve(setup.org(), p).map_err(|m| LoadError::new(r.line, m))? {
                    Principal::User(u) => Owner::User(u),
                    Principal::Team(t) => Owner::Team(t),
                    Principal::Organization => {
                        return Err(LoadError::new(
                            r.line,
                            format!("record `{}`: the organization cannot own a record", r.id),
                        ));
                    }
                },
            };
            if owner == Owner::None && setup.org().table(tid).ownership == Ownership::UserOrTeam {
                return Err(LoadError::new(
                    r.line,
                    format!("record `{}`: table `{}` needs an owner", r.id, r.table),
                ));
            }
            let business_unit = match &r.business_unit {
                None => None,
                b => Some(unit(&setup, b, r.line)?),
            };
            setup
                .add_record(NewRecord {
                    key: r.id.clone(),
                    table: tid,
                    owner,
                    business_unit,
                    state: if r.active {
                        RecordState::Active
                    } else {
                        RecordState::Inactive
                    },
                    fields: r.fields.clone(),
                })
                .map_err(at(r.line))?;
        }
        for r in &s.records {
            for (lookup, parent) in &r.lookups {
                let (Some(child), Some(parent_id)) =
                    (setup.org().record_id(&r.id), setup.org().record_id(parent))
                else {
                    return Err(missing(r.line, "record", parent));
                };
                let tid = setup.org().record(child).table;
                let rel = setup
                    .org()
                    .relationship_by_lookup(tid, lookup)
                    .ok_or_else(|| missing(r.line, "lookup", lookup))?;
                setup
                    .set_lookup(child, rel, parent_id)
                    .map_err(at(r.line))?;
            }
        }
        for sh in &s.shares {
            let record = setup
                .org()
                .record_id(&sh.record)
                .ok_or_else(|| missing(sh.line, "record", &sh.record))?;
            let p = resolve(setup.org(), &sh.principal).map_err(|m| LoadError::new(sh.line, m))?;
            setup.share(record, p, sh.rights).map_err(at(sh.line))?;
        }
        for a in &s.access_team_members {
            let record = setup
                .org()
                .record_id(&a.record)
                .ok_or_else(|| missing(a.line, "record", &a.record))?;
            let template = setup
                .org()
                .template_id(&a.template)
                .ok_or_else(|| missing(a.line, "access team template", &a.template))?;
            for u in &a.users {
                let user = setup
                    .org()
                    .user_id(u)
                    .ok_or_else(|| missing(a.line, "user", u))?;
                setup
                    .add_access_team_member(record, template, user)
                    .map_err(at(a.line))?;
            }
        }
        for p in &s.profiles {
            let mut members = Vec::new();
            for (m, line) in &p.members {
                members.push(resolve(setup.org(), m).map_err(|e| LoadError::new(*line, e))?);
            }
            let mut permissions = Vec::new();
            for perm in &p.permissions {
                permissions.push(ColumnPermission {
                    table: table(&setup, &perm.table, perm.line)?,
                    column: perm.column.clone(),
                    read: perm.read,
                    update: perm.update,
                    create: perm.create,
                });
            }
            setup
                .add_profile(&p.name, members, permissions)
                .map_err(at(p.line))?;
        }
        for f in &s.field_shares {
            let record = setup
                .org()
                .record_id(&f.record)
                .ok_or_else(|| missing(f.line, "record", &f.record))?;
            let principal =
                resolve(setup.org(), &f.principal).map_err(|m| LoadError::new(f.line, m))?;
            setup
                .add_field_share(
                    record,
                    FieldShare {
                        column: f.column.clone(),
                        principal,
                        read: f.read,
                        update: f.update,
                    },
                )
                .map_err(at(f.line))?;
        }
        for a in &s.apps {
            let mut roles = Vec::new();
            for (r, line) in &a.roles {
                roles.push(
                    setup
                        .org()
                        .role_id(r)
                        .ok_or_else(|| missing(*line, "role", r))?,
                );
            }
            setup.add_app(&a.name, roles).map_err(at(a.line))?;
        }
    }
    Ok(org)
}

fn resolve(org: &Organization, p: &PrincipalRef) -> Result<Principal, String> {
    match p {
        PrincipalRef::User(u) => org
            .user_id(u)
            .map(Principal::User)
            .ok_or_else(|| format!("unknown user `{u}`")),
        PrincipalRef::Team(t) => org
            .team_id(t)
            .map(Principal::Team)
            .ok_or_else(|| format!("unknown team `{t}`")),
        PrincipalRef::Organization => Ok(Principal::Organization),
    }
}

fn outcome(result: Result<Vec<strata_engine::Change>, ActionError>) -> Observed {
    match result {
        Ok(_) => Observed::Outcome {
            outcome: Outcome::Ok,
            message: String::new(),
        },
        Err(ActionError::Denied(m)) => Observed::Outcome {
            outcome: Outcome::Denied,
            message: m,
        },
        Err(e @ ActionError::Invalid(_)) => Observed::Outcome {
            outcome: Outcome::Invalid,
            message: e.to_string(),
        },
    }
}

fn invalid(message: String) -> Observed {
    Observed::Outcome {
        outcome: Outcome::Invalid,
        message,
    }
}

impl EngineTarget {
    fn user(&self, name: &str) -> Result<strata_engine::UserId, String> {
        self.org
            .user_id(name)
            .ok_or_else(|| format!("unknown user `{name}`"))
    }

    fn record(&self, key: &str) -> Result<strata_engine::RecordId, String> {
        self.org
            .record_id(key)
            .ok_or_else(|| format!("record `{key}` does not exist"))
    }

    fn actor(&self, name: Option<&String>) -> Result<Actor, String> {
        name.map_or(Ok(Actor::System), |n| self.user(n).map(Actor::User))
    }

    fn owner(&self, p: &PrincipalRef) -> Result<Owner, String> {
        match resolve(&self.org, p)? {
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
                Observed::Names(ids.into_iter().map(|r| org.record(r).key.clone()).collect())
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
            _ => return Err("not a question".to_owned()),
        })
    }

    fn action(&mut self, kind: &StepKind) -> Result<Observed, String> {
        Ok(match kind {
            StepKind::Create {
                actor,
                table,
                id,
                owner,
                lookups,
                fields,
            } => {
                let actor = self.actor(actor.as_ref())?;
                let tid = self
                    .org
                    .table_id(table)
                    .ok_or_else(|| format!("unknown table `{table}`"))?;
                let owner = owner.as_ref().map(|p| self.owner(p)).transpose()?;
                let mut links = Vec::new();
                for (lookup, parent) in lookups {
                    links.push((lookup.clone(), self.record(parent)?));
                }
                outcome(self.org.create_record(
                    actor,
                    CreateRecord {
                        key: id.clone(),
                        table: tid,
                        owner,
                        business_unit: None,
                        state: RecordState::Active,
                        lookups: links,
                        fields: fields.clone(),
                    },
                ))
            }
            StepKind::Update {
                actor,
                record,
                fields,
            } => {
                let (a, r) = (self.actor(actor.as_ref())?, self.record(record)?);
                outcome(self.org.update_record(a, r, fields.clone()))
            }
            StepKind::Delete { actor, record } => {
                let (a, r) = (self.actor(actor.as_ref())?, self.record(record)?);
                outcome(self.org.delete_record(a, r))
            }
            StepKind::Assign {
                actor,
                record,
                owner,
            } => {
                let (a, r, o) = (
                    self.actor(actor.as_ref())?,
                    self.record(record)?,
                    self.owner(owner)?,
                );
                outcome(self.org.assign_record(a, r, o))
            }
            StepKind::Share {
                actor,
                record,
                principal,
                rights,
                modify,
            } => {
                let (a, r) = (self.actor(actor.as_ref())?, self.record(record)?);
                let p = resolve(&self.org, principal)?;
                let mode = if *modify {
                    ShareMode::Modify
                } else {
                    ShareMode::Grant
                };
                outcome(self.org.share_record(a, r, p, *rights, mode))
            }
            StepKind::Revoke {
                actor,
                record,
                principal,
            } => {
                let (a, r) = (self.actor(actor.as_ref())?, self.record(record)?);
                let p = resolve(&self.org, principal)?;
                outcome(self.org.revoke_share(a, r, p))
            }
            StepKind::Associate {
                actor,
                record,
                lookup,
                parent,
            } => {
                let (a, r, p) = (
                    self.actor(actor.as_ref())?,
                    self.record(record)?,
                    self.record(parent)?,
                );
                outcome(self.org.associate(a, r, lookup, p))
            }
            StepKind::Disassociate {
                actor,
                record,
                lookup,
            } => {
                let (a, r) = (self.actor(actor.as_ref())?, self.record(record)?);
                outcome(self.org.disassociate(a, r, lookup))
            }
            StepKind::AddAccessTeamMember {
                actor,
                record,
                template,
                user,
            } => {
                let (a, r, u) = (
                    self.actor(actor.as_ref())?,
                    self.record(record)?,
                    self.user(user)?,
                );
                let t = self
                    .org
                    .template_id(template)
                    .ok_or_else(|| format!("unknown access team template `{template}`"))?;
                outcome(self.org.add_access_team_member(a, r, t, u))
            }
            StepKind::AssignRole {
                actor,
                principal,
                role,
                business_unit,
            } => {
                let a = self.actor(actor.as_ref())?;
                let p = resolve(&self.org, principal)?;
                let role = self
                    .org
                    .role_id(role)
                    .ok_or_else(|| format!("unknown role `{role}`"))?;
                let bu = match business_unit {
                    None => None,
                    Some(b) => Some(
                        self.org
                            .business_unit_id(b)
                            .ok_or_else(|| format!("unknown business unit `{b}`"))?,
                    ),
                };
                outcome(self.org.assign_role(a, p, role, bu))
            }
            StepKind::RemoveRole {
                actor,
                principal,
                role,
            } => {
                let a = self.actor(actor.as_ref())?;
                let p = resolve(&self.org, principal)?;
                let role = self
                    .org
                    .role_id(role)
                    .ok_or_else(|| format!("unknown role `{role}`"))?;
                outcome(self.org.remove_role(a, p, role))
            }
            StepKind::AddTeamMember { actor, team, user }
            | StepKind::RemoveTeamMember { actor, team, user } => {
                let (a, u) = (self.actor(actor.as_ref())?, self.user(user)?);
                let t = self
                    .org
                    .team_id(team)
                    .ok_or_else(|| format!("unknown team `{team}`"))?;
                if matches!(kind, StepKind::AddTeamMember { .. }) {
                    outcome(self.org.add_team_member(a, t, u))
                } else {
                    outcome(self.org.remove_team_member(a, t, u))
                }
            }
            StepKind::MoveUser {
                actor,
                user,
                business_unit,
            } => {
                let (a, u) = (self.actor(actor.as_ref())?, self.user(user)?);
                let b = self
                    .org
                    .business_unit_id(business_unit)
                    .ok_or_else(|| format!("unknown business unit `{business_unit}`"))?;
                outcome(self.org.move_user(a, u, b))
            }
            StepKind::SetManager {
                actor,
                user,
                manager,
            } => {
                let (a, u) = (self.actor(actor.as_ref())?, self.user(user)?);
                let m = manager.as_ref().map(|m| self.user(m)).transpose()?;
                outcome(self.org.set_manager(a, u, m))
            }
            _ => return Err("not an action".to_owned()),
        })
    }
}

impl Target for EngineTarget {
    fn load(&mut self, scenario: &Scenario) -> Result<(), LoadError> {
        self.org = build(scenario)?;
        Ok(())
    }

    fn run(&mut self, step: &Step) -> Observed {
        let result = match step.expect {
            crate::spec::Expect::Outcome(_) => self.action(&step.kind),
            _ => self.question(&step.kind),
        };
        match (result, &step.expect) {
            (Ok(o), _) => o,
            (Err(m), crate::spec::Expect::Outcome(_)) => invalid(m),
            (Err(m), _) => Observed::Error(m),
        }
    }
}
