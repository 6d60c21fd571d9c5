//! Checks every name a scenario uses before anything runs, and refuses cycles in the unit
//! tree, the position tree and the manager chains, naming the line.

use std::collections::{HashMap, HashSet};

use strata_engine::{Depth, ModelError};

use crate::spec::{LoadError, PrincipalRef, Scenario, StepKind};

type Result<T> = std::result::Result<T, LoadError>;

struct Known<'a> {
    units: HashSet<&'a str>,
    tables: HashSet<&'a str>,
    lookups: HashSet<(&'a str, &'a str)>,
    roles: HashSet<&'a str>,

    users: HashSet<&'a str>,
    teams: HashSet<&'a str>,
    templates: HashSet<&'a str>,
    records: HashMap<&'a str, &'a str>,
    apps: HashSet<&'a str>,
}

fn need(set: &HashSet<&str>, name: &str, kind: &str, line: usize) -> Result<()> {
    if set.contains(name) {
        Ok(())
    } else {
        Err(LoadError::new(line, format!("unknown {kind} `{name}`")))
    }
}

impl Known<'_> {
    fn principal(&self, p: &PrincipalRef, line: usize) -> Result<()> {
        match p {
            PrincipalRef::User(u) => need(&self.users, u, "user", line),
            PrincipalRef::Team(t) => need(&self.teams, t, "team", line),
            PrincipalRef::Organization => Ok(()),
        }
    }

    fn record(&self, id: &str, line: usize) -> Result<()> {
        if self.records.contains_key(id) {
            Ok(())
        } else {
            Err(LoadError::new(line, format!("unknown record `{id}`")))
        }
    }

    fn lookup(&self, record: &str, lookup: &str, line: usize) -> Result<()> {
        let table = self.records.get(record).copied().unwrap_or("");
        if self.lookups.contains(&(table, lookup)) {
            Ok(())
        } else {
            Err(LoadError::new(
                line,
                format!("unknown lookup `{lookup}` on table `{table}` (record `{record}`)"),
            ))
        }
    }
}

fn unique<'a>(
    items: impl Iterator<Item = (&'a str, usize)>,
    kind: &str,
) -> Result<HashSet<&'a str>> {
    let mut set = HashSet::new();
    for (name, line) in items {
        if !set.insert(name) {
            return Err(LoadError::new(
                line,
                format!("{kind} `{name}` is defined twice"),
            ));
        }
    }
    Ok(set)
}

/// Refuses a cycle in a parent map, naming the first entity (in file order) on it.
fn acyclic<'a>(items: &[(&'a str, Option<&'a str>, usize)], kind: &str) -> Result<()> {
    let parents: HashMap<&str, Option<&str>> = items.iter().map(|(n, p, _)| (*n, *p)).collect();
    for (name, _, line) in items {
        let mut cur = parents.get(name).copied().flatten();
        let mut steps = 0;
        while let Some(c) = cur {
            if c == *name {
                return Err(LoadError::new(
                    *line,
                    format!("{kind} `{name}` is its own ancestor (a cycle)"),
                ));
            }
            steps += 1;
            if steps > items.len() {
                break;
            }
            cur = parents.get(c).copied().flatten();
        }
    }
    Ok(())
}

/// Validates a parsed scenario.
pub fn validate(s: &Scenario) -> Result<()> {
    let units = unique(
        s.business_units.iter().map(|u| (u.name.as_str(), u.line)),
        "business unit",
    )?;
    let roots: Vec<_> = s
        .business_units
        .iter()
        .filter(|u| u.parent.is_none())
        .collect();
    match roots.as_slice() {
        [_] => {}
        [] => {
            return Err(LoadError::new(
                s.business_units.first().map_or(1, |u| u.line),
                "no business unit is the root (one must have no parent)",
            ));
        }
        [first, second, ..] => {
            return Err(LoadError::new(
                second.line,
                format!(
                    "business unit `{}` has no parent, but `{}` is already the root",
                    second.name, first.name
                ),
            ));
        }
    }
    for u in &s.business_units {
        if let Some(p) = &u.parent {
            need(&units, p, "business unit", u.line)?;
        }
    }
    acyclic(
        &s.business_units
            .iter()
            .map(|u| (u.name.as_str(), u.parent.as_deref(), u.line))
            .collect::<Vec<_>>(),
        "business unit",
    )?;
    let mut tables = unique(s.tables.iter().map(|t| (t.name.as_str(), t.line)), "table")?;
    for (name, _) in strata_engine::BUILT_IN_TABLES {
        tables.insert(name);
    }
    let mut lookups = HashSet::new();
    for r in &s.relationships {
        need(&tables, &r.parent, "table", r.line)?;
        need(&tables, &r.child, "table", r.line)?;
        if !lookups.insert((r.child.as_str(), r.lookup.as_str())) {
            return Err(LoadError::new(
                r.line,
                format!("lookup `{}.{}` is defined twice", r.child, r.lookup),
            ));
        }
    }
    unique(
        s.relationships.iter().map(|r| (r.name.as_str(), r.line)),
        "relationship",
    )?;
    // Deleted roles (tombstones, an extension) have no name others can use.
    let roles = unique(
        s.roles
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| (r.name.as_str(), r.line)),
        "role",
    )?;
    for r in &s.roles {
        if let Some(u) = &r.business_unit {
            need(&units, u, "business unit", r.line)?;
        }
        if let Some((_, successors)) = &r.deprecation {
            for (successor, line) in successors {
                need(&roles, successor, "role", *line)?;
            }
        }
        for (table, privilege, depth, line) in &r.privileges {
            need(&tables, table, "table", *line)?;
            let organization_owned = s
                .tables
                .iter()
                .any(|t| t.name == *table && t.organization_owned == Some(true));
            if organization_owned && !matches!(depth, Depth::None | Depth::Organization) {
                return Err(LoadError::new(
                    *line,
                    ModelError::DepthNotAllowed {
                        role: r.name.clone(),
                        table: table.clone(),
                        privilege: privilege.name(),
                        depth: depth.name(),
                    }
                    .to_string(),
                ));
            }
        }
    }
    let positions = unique(
        s.positions.iter().map(|p| (p.name.as_str(), p.line)),
        "position",
    )?;
    for p in &s.positions {
        if let Some(parent) = &p.parent {
            need(&positions, parent, "position", p.line)?;
        }
    }
    acyclic(
        &s.positions
            .iter()
            .map(|p| (p.name.as_str(), p.parent.as_deref(), p.line))
            .collect::<Vec<_>>(),
        "position",
    )?;
    let users = unique(s.users.iter().map(|u| (u.name.as_str(), u.line)), "user")?;
    for u in &s.users {
        if let Some(b) = &u.business_unit {
            need(&units, b, "business unit", u.line)?;
        }
        for r in &u.roles {
            need(&roles, &r.role, "role", r.line)?;
            if let Some(b) = &r.business_unit {
                need(&units, b, "business unit", r.line)?;
            }
        }
        if let Some(m) = &u.manager {
            need(&users, m, "user", u.line)?;
        }
        if let Some(p) = &u.position {
            need(&positions, p, "position", u.line)?;
        }
    }
    acyclic(
        &s.users
            .iter()
            .map(|u| (u.name.as_str(), u.manager.as_deref(), u.line))
            .collect::<Vec<_>>(),
        "manager chain of user",
    )?;
    let teams = unique(s.teams.iter().map(|t| (t.name.as_str(), t.line)), "team")?;
    for t in &s.teams {
        if let Some(b) = &t.business_unit {
            need(&units, b, "business unit", t.line)?;
        }
        for (m, line) in &t.members {
            need(&users, m, "user", *line)?;
        }
        for (r, line) in &t.roles {
            need(&roles, r, "role", *line)?;
        }
    }
    let templates = unique(
        s.templates.iter().map(|t| (t.name.as_str(), t.line)),
        "access team template",
    )?;
    for t in &s.templates {
        need(&tables, &t.table, "table", t.line)?;
    }
    let mut records: HashMap<&str, &str> = s
        .users
        .iter()
        .map(|u| (u.name.as_str(), "systemuser"))
        .collect();
    for r in &s.records {
        need(&tables, &r.table, "table", r.line)?;
        // A deleted record (extension) frees its id at once: others cannot name it.
        if r.deleted {
            continue;
        }
        if records.insert(r.id.as_str(), r.table.as_str()).is_some() {
            return Err(LoadError::new(
                r.line,
                format!(
                    "record `{}` is defined twice (record ids and user names share one namespace)",
                    r.id
                ),
            ));
        }
    }
    let apps = unique(s.apps.iter().map(|a| (a.name.as_str(), a.line)), "app")?;
    let mut known = Known {
        units,
        tables,
        lookups,
        roles,

        users,
        teams,
        templates,
        records,
        apps,
    };
    for r in &s.records {
        if let Some(o) = &r.owner {
            known.principal(o, r.line)?;
        }
        if let Some(b) = &r.business_unit {
            need(&known.units, b, "business unit", r.line)?;
        }
        if r.deleted && !r.lookups.is_empty() {
            return Err(LoadError::new(
                r.line,
                format!("record `{}`: a deleted record has no lookups", r.id),
            ));
        }
        for (lookup, parent) in &r.lookups {
            known.lookup(&r.id, lookup, r.line)?;
            known.record(parent, r.line)?;
        }
    }
    for u in &s.users {
        if let Some(r) = &u.after_record {
            known.record(r, u.line)?;
        }
    }
    for (record, lookup, parent, line) in &s.lookups {
        known.record(record, *line)?;
        known.lookup(record, lookup, *line)?;
        known.record(parent, *line)?;
    }
    for sh in &s.shares {
        known.record(&sh.record, sh.line)?;
        known.principal(&sh.principal, sh.line)?;
        if let Some((template, users)) = &sh.access_team {
            need(&known.templates, template, "access team template", sh.line)?;
            for u in users {
                need(&known.users, u, "user", sh.line)?;
            }
        }
    }
    for a in &s.access_team_members {
        known.record(&a.record, a.line)?;
        need(
            &known.templates,
            &a.template,
            "access team template",
            a.line,
        )?;
        for u in &a.users {
            need(&known.users, u, "user", a.line)?;
        }
    }
    unique(
        s.profiles.iter().map(|p| (p.name.as_str(), p.line)),
        "field security profile",
    )?;
    for p in &s.profiles {
        for (m, line) in &p.members {
            known.principal(m, *line)?;
        }
        for perm in &p.permissions {
            need(&known.tables, &perm.table, "table", perm.line)?;
        }
    }
    for f in &s.field_shares {
        known.record(&f.record, f.line)?;
        known.principal(&f.principal, f.line)?;
    }
    for a in &s.apps {
        for (r, line) in &a.roles {
            need(&known.roles, r, "role", *line)?;
        }
        for (t, _, _, line) in &a.needs {
            need(&known.tables, t, "table", *line)?;
        }
    }
    if let Some(h) = &s.settings.hierarchy {
        for (t, line) in h.tables.iter().flatten() {
            need(&known.tables, t, "table", *line)?;
        }
    }
    crate::licences::validate(s)?;
    for step in &s.steps {
        validate_step(&mut known, &step.kind, step.line)?;
    }
    Ok(())
}

fn actor(known: &Known<'_>, a: Option<&String>, line: usize) -> Result<()> {
    a.map_or(Ok(()), |u| need(&known.users, u, "user", line))
}

fn validate_step<'a>(k: &mut Known<'a>, step: &'a StepKind, line: usize) -> Result<()> {
    match step {
        StepKind::Check {
            user,
            record,
            table,
            owner,
            ..
        } => {
            need(&k.users, user, "user", line)?;
            if let Some(r) = record {
                k.record(r, line)?;
            }
            if let Some(t) = table {
                need(&k.tables, t, "table", line)?;
            }
            if let Some(o) = owner {
                k.principal(o, line)?;
            }
        }
        StepKind::Access { user, record } | StepKind::Read { user, record } => {
            need(&k.users, user, "user", line)?;
            k.record(record, line)?;
        }
        StepKind::List { user, table } => {
            need(&k.users, user, "user", line)?;
            need(&k.tables, table, "table", line)?;
        }
        StepKind::WhoHasAccess { record, .. } => k.record(record, line)?,
        // Roles may be created, renamed or deleted by earlier steps: resolved when the step runs.
        StepKind::RoleHolders { .. } => {}
        StepKind::OpenApp { user, app }
        | StepKind::AppReasons { user, app }
        | StepKind::RolesNeeded { user, app } => {
            need(&k.users, user, "user", line)?;
            need(&k.apps, app, "app", line)?;
        }
        StepKind::WhoCanOpen { app } => need(&k.apps, app, "app", line)?,
        StepKind::ColumnCheck { user, record, .. }
        | StepKind::GrantingRoles { user, record, .. } => {
            need(&k.users, user, "user", line)?;
            k.record(record, line)?;
        }
        StepKind::ColumnHolders { table, .. } => need(&k.tables, table, "table", line)?,
        StepKind::Create {
            actor: a,
            table,
            id,
            owner,
            lookups,
            ..
        } => {
            actor(k, a.as_ref(), line)?;
            need(&k.tables, table, "table", line)?;
            if let Some(o) = owner {
                k.principal(o, line)?;
            }
            for (_, parent) in lookups {
                k.record(parent, line)?;
            }
            // A later step may name the record this step creates.
            k.records.entry(id.as_str()).or_insert(table.as_str());
            for (lookup, _) in lookups {
                if !k.lookups.contains(&(table.as_str(), lookup.as_str())) {
                    return Err(LoadError::new(
                        line,
                        format!("unknown lookup `{lookup}` on table `{table}`"),
                    ));
                }
            }
        }
        StepKind::Update {
            actor: a, record, ..
        }
        | StepKind::Delete { actor: a, record } => {
            actor(k, a.as_ref(), line)?;
            k.record(record, line)?;
        }
        StepKind::Assign {
            actor: a,
            record,
            owner,
        } => {
            actor(k, a.as_ref(), line)?;
            k.record(record, line)?;
            k.principal(owner, line)?;
        }
        StepKind::Share {
            actor: a,
            record,
            principal,
            ..
        }
        | StepKind::Revoke {
            actor: a,
            record,
            principal,
        } => {
            actor(k, a.as_ref(), line)?;
            k.record(record, line)?;
            k.principal(principal, line)?;
        }
        StepKind::Associate {
            actor: a,
            record,
            lookup,
            parent,
        } => {
            actor(k, a.as_ref(), line)?;
            k.record(record, line)?;
            k.record(parent, line)?;
            k.lookup(record, lookup, line)?;
        }
        StepKind::Disassociate {
            actor: a,
            record,
            lookup,
        } => {
            actor(k, a.as_ref(), line)?;
            k.record(record, line)?;
            k.lookup(record, lookup, line)?;
        }
        StepKind::AddAccessTeamMember {
            actor: a,
            record,
            template,
            user,
        } => {
            actor(k, a.as_ref(), line)?;
            k.record(record, line)?;
            need(&k.templates, template, "access team template", line)?;
            need(&k.users, user, "user", line)?;
        }
        StepKind::AssignRole {
            actor: a,
            principal,
            role,
            business_unit,
        } => {
            actor(k, a.as_ref(), line)?;
            k.principal(principal, line)?;
            need(&k.roles, role, "role", line)?;
            if let Some(b) = business_unit {
                need(&k.units, b, "business unit", line)?;
            }
        }
        StepKind::RemoveRole {
            actor: a,
            principal,
            role,
        } => {
            actor(k, a.as_ref(), line)?;
            k.principal(principal, line)?;
            need(&k.roles, role, "role", line)?;
        }
        StepKind::AddTeamMember {
            actor: a,
            team,
            user,
        }
        | StepKind::RemoveTeamMember {
            actor: a,
            team,
            user,
        } => {
            actor(k, a.as_ref(), line)?;
            need(&k.teams, team, "team", line)?;
            need(&k.users, user, "user", line)?;
        }
        StepKind::MoveUser {
            actor: a,
            user,
            business_unit,
        } => {
            actor(k, a.as_ref(), line)?;
            need(&k.users, user, "user", line)?;
            need(&k.units, business_unit, "business unit", line)?;
        }
        // Checked when it runs: an unknown name is an outcome (`unknown_user`, `unknown_reference`).
        StepKind::Operation { .. } | StepKind::Batch { .. } | StepKind::DryRun { .. } => {}
        StepKind::RuleViolations { user } => {
            if let Some(user) = user {
                need(&k.users, user, "user", line)?;
            }
        }
        StepKind::CheapestLicence { user } | StepKind::LicenceFit { user } => {
            need(&k.users, user, "user", line)?;
        }
        StepKind::LicenceExceeds { role, .. } => need(&k.roles, role, "role", line)?,
        StepKind::SetManager {
            actor: a,
            user,
            manager,
        } => {
            actor(k, a.as_ref(), line)?;
            need(&k.users, user, "user", line)?;
            if let Some(m) = manager {
                need(&k.users, m, "user", line)?;
            }
        }
    }
    Ok(())
}
