//! Applying operations to an organisation: names are resolved, then the engine's setup
//! session or authorized actions do the work.

use strata_engine::{
    AccessMask, Actor, BusinessUnitId, Cascade, CascadeType, Change, Column, ColumnPermission,
    CreateRecord, DeleteBehavior, Depth, FieldShare, HierarchyModel, HierarchySettings,
    Inheritance, NewRecord, Organization, Owner, Ownership, Principal, Privilege, RecordId,
    RecordState, RoleDefinition, Settings, Setup, ShareMode, TableId, TeamType, UserId, Value,
};

use crate::{Fields, OpError, Operation, SettingsOp, from_json};

/// A principal written as `alice`, `team:Sales` or `organization`.
pub fn resolve_principal(org: &Organization, text: &str) -> Result<Principal, OpError> {
    if text == "organization" {
        return Ok(Principal::Organization);
    }
    if let Some(team) = text.strip_prefix("team:") {
        let team = team.trim_start();
        return org
            .team_id(team)
            .map(Principal::Team)
            .ok_or_else(|| OpError::unknown("team", team));
    }
    org.user_id(text)
        .map(Principal::User)
        .ok_or_else(|| OpError::unknown("user", text))
}

fn owner(org: &Organization, text: &str) -> Result<Owner, OpError> {
    match resolve_principal(org, text)? {
        Principal::User(u) => Ok(Owner::User(u)),
        Principal::Team(t) => Ok(Owner::Team(t)),
        Principal::Organization => Err(OpError::invalid(
            "bad_owner",
            "the organization cannot own a record",
        )),
    }
}

fn user(org: &Organization, name: &str) -> Result<UserId, OpError> {
    org.user_id(name)
        .ok_or_else(|| OpError::unknown("user", name))
}

/// The user who acts: an unknown name is `unknown_user`, never the system.
fn acting(org: &Organization, name: &str) -> Result<UserId, OpError> {
    org.user_id(name).ok_or_else(|| {
        OpError::invalid("unknown_user", format!("unknown user `{name}` cannot act"))
    })
}

fn record(org: &Organization, key: &str) -> Result<RecordId, OpError> {
    org.record_id(key)
        .ok_or_else(|| OpError::unknown("record", key))
}

fn table(org: &Organization, name: &str) -> Result<TableId, OpError> {
    org.table_id(name)
        .ok_or_else(|| OpError::unknown("table", name))
}

fn unit(org: &Organization, name: &str) -> Result<BusinessUnitId, OpError> {
    org.business_unit_id(name)
        .ok_or_else(|| OpError::unknown("business unit", name))
}

fn opt_unit(org: &Organization, name: Option<&String>) -> Result<Option<BusinessUnitId>, OpError> {
    name.map(|n| unit(org, n)).transpose()
}

fn actor(
    org: &Organization,
    name: Option<&String>,
    impersonator: Option<UserId>,
) -> Result<Actor, OpError> {
    match (name, impersonator) {
        (None, None) => Ok(Actor::System),
        (Some(n), None) => acting(org, n).map(Actor::User),
        (Some(n), Some(i)) => Ok(Actor::OnBehalf {
            user: acting(org, n)?,
            impersonator: i,
        }),
        (None, Some(_)) => Err(OpError::invalid(
            "bad_actor",
            "impersonation needs the user acted for (`as`)",
        )),
    }
}

pub(crate) fn fields(f: &Fields) -> Result<Vec<(String, Value)>, OpError> {
    f.iter()
        .map(|(k, v)| Ok((k.clone(), from_json(k, v)?)))
        .collect()
}

pub(crate) fn privilege(name: &str) -> Result<Privilege, OpError> {
    Privilege::from_name(name).ok_or_else(|| {
        OpError::invalid(
            "unknown_privilege",
            format!("unknown privilege `{name}` (create read write delete append append_to assign share)"),
        )
    })
}

fn rights(list: &[String]) -> Result<AccessMask, OpError> {
    list.iter()
        .try_fold(AccessMask::NONE, |m, r| Ok(m.with(privilege(r)?)))
}

/// A role's grid as written (table → privilege → depth), resolved.
pub(crate) fn grid(
    org: &Organization,
    role: &str,
    privileges: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
) -> Result<Vec<(TableId, Privilege, Depth)>, OpError> {
    let mut grants = Vec::new();
    for (t, row) in privileges {
        let tid = table(org, t)?;
        for (p, d) in row {
            let depth = Depth::from_name(d).ok_or_else(|| {
                OpError::invalid(
                    "unknown_depth",
                    format!("role `{role}`: unknown depth `{d}` (none user business_unit parent_child organization)"),
                )
            })?;
            grants.push((tid, privilege(p)?, depth));
        }
    }
    Ok(grants)
}

/// An app's needs as written (table → privilege → least depth), resolved (D51).
fn app_needs(
    org: &Organization,
    app: &str,
    needs: &std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
) -> Result<Vec<strata_engine::AppNeed>, OpError> {
    let mut out = Vec::new();
    for (t, row) in needs {
        let tid = table(org, t)?;
        for (p, d) in row {
            let depth = Depth::from_name(d)
                .filter(|d| *d != Depth::None)
                .ok_or_else(|| {
                    OpError::invalid(
                        "unknown_depth",
                        format!("app `{app}`: need `{p}` on `{t}` has depth `{d}` (user business_unit parent_child organization)"),
                    )
                })?;
            out.push(strata_engine::AppNeed {
                table: tid,
                privilege: privilege(p)?,
                depth,
            });
        }
    }
    Ok(out)
}

fn state(text: Option<&String>) -> Result<RecordState, OpError> {
    match text.map(String::as_str) {
        None | Some("active") => Ok(RecordState::Active),
        Some("inactive") => Ok(RecordState::Inactive),
        Some(other) => Err(OpError::invalid(
            "bad_state",
            format!("unknown state `{other}` (active inactive)"),
        )),
    }
}

fn cascade_type(text: &str) -> Result<CascadeType, OpError> {
    match text {
        "cascade" => Ok(CascadeType::Cascade),
        "active" => Ok(CascadeType::Active),
        "user_owned" => Ok(CascadeType::UserOwned),
        "none" => Ok(CascadeType::None),
        other => Err(OpError::invalid(
            "bad_cascade",
            format!("unknown cascade `{other}` (cascade active user_owned none)"),
        )),
    }
}

/// The cascade configuration of a relationship behaviour.
pub(crate) fn cascade(
    behavior: &str,
    custom: Option<&crate::CascadeOp>,
) -> Result<Cascade, OpError> {
    let mut c = match behavior {
        "parental" => Cascade::PARENTAL,
        "referential" | "custom" => Cascade::REFERENTIAL,
        "referential_restrict_delete" => Cascade::REFERENTIAL_RESTRICT_DELETE,
        other => {
            return Err(OpError::invalid(
                "bad_behavior",
                format!(
                    "unknown behavior `{other}` (parental referential referential_restrict_delete custom)"
                ),
            ));
        }
    };
    match (custom, behavior) {
        (Some(op), "custom") => {
            if let Some(v) = &op.assign {
                c.assign = cascade_type(v)?;
            }
            if let Some(v) = &op.share {
                c.share = cascade_type(v)?;
            }
            if let Some(v) = &op.unshare {
                c.unshare = cascade_type(v)?;
            }
            if let Some(v) = &op.reparent {
                c.reparent = cascade_type(v)?;
            }
            if let Some(v) = &op.delete {
                c.delete = match v.as_str() {
                    "cascade" => DeleteBehavior::Cascade,
                    "remove_link" => DeleteBehavior::RemoveLink,
                    "restrict" => DeleteBehavior::Restrict,
                    other => {
                        return Err(OpError::invalid(
                            "bad_cascade",
                            format!(
                                "unknown delete behaviour `{other}` (cascade remove_link restrict)"
                            ),
                        ));
                    }
                };
            }
            Ok(c)
        }
        (Some(_), _) => Err(OpError::invalid(
            "bad_cascade",
            "`cascade` is only for `behavior: custom`",
        )),
        (None, _) => Ok(c),
    }
}

fn settings(org: &Organization, s: &SettingsOp) -> Result<Settings, OpError> {
    let hierarchy = match &s.hierarchy {
        None => None,
        Some(h) => Some(HierarchySettings {
            model: match h.model.as_str() {
                "manager" => HierarchyModel::Manager,
                "position" => HierarchyModel::Position,
                other => {
                    return Err(OpError::invalid(
                        "bad_hierarchy",
                        format!("unknown hierarchy model `{other}` (manager position)"),
                    ));
                }
            },
            depth: h.depth,
            tables: h
                .tables
                .as_ref()
                .map(|list| list.iter().map(|t| table(org, t)).collect())
                .transpose()?,
            managers_must_be_in_same_or_parent_business_unit: h
                .managers_must_be_in_same_or_parent_business_unit,
        }),
    };
    Ok(Settings {
        share_to_previous_owner_on_assign: s.share_to_previous_owner_on_assign,
        ownership_across_business_units: s.ownership_across_business_units,
        do_not_remove_roles_on_change_business_unit: s.do_not_remove_roles_on_change_business_unit,
        always_move_record_to_owner_business_unit: s.always_move_record_to_owner_business_unit,
        hierarchy,
    })
}

fn apply_setup(setup: &mut Setup<'_>, op: &Operation) -> Result<(), OpError> {
    let org = setup.org();
    match op {
        Operation::Settings(s) => {
            let s = settings(org, s)?;
            setup.set_settings(s)?;
        }
        Operation::SetAudit {
            enabled,
            retention_days,
            user_access,
            tables,
            columns_off,
        } => {
            for t in tables {
                table(org, t)?;
            }
            setup.set_audit(strata_engine::AuditSettings {
                enabled: *enabled,
                retention_days: *retention_days,
                user_access: *user_access,
                tables: tables.iter().cloned().collect(),
                columns_off: columns_off.iter().cloned().collect(),
            })?;
        }
        Operation::AddBusinessUnit { name, parent } => {
            let parent = opt_unit(org, parent.as_ref())?;
            setup.add_business_unit(name, parent)?;
        }
        Operation::MoveBusinessUnit { name, parent } => {
            let (u, p) = (unit(org, name)?, unit(org, parent)?);
            setup.move_business_unit(u, p)?;
        }
        Operation::RenameBusinessUnit { name, new_name } => {
            setup.rename_business_unit(unit(org, name)?, new_name)?;
        }
        Operation::AddTable {
            name,
            ownership,
            columns,
            entity_set,
        } => {
            let ownership = match ownership.as_deref() {
                None => None,
                Some("user_or_team") => Some(Ownership::UserOrTeam),
                Some("organization") => Some(Ownership::Organization),
                Some(other) => {
                    return Err(OpError::invalid(
                        "bad_ownership",
                        format!("table `{name}`: ownership `{other}` (user_or_team organization)"),
                    ));
                }
            };
            let columns = columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    secured: c.secured,
                })
                .collect();
            let id = setup.add_table(name, ownership, columns)?;
            if let Some(set) = entity_set {
                setup.set_entity_set(id, set)?;
            }
        }
        Operation::AddColumns { table: t, columns } => {
            let tid = table(org, t)?;
            let columns = columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    secured: c.secured,
                })
                .collect();
            setup.add_columns(tid, columns)?;
        }
        Operation::AddRelationship {
            name,
            parent,
            child,
            lookup,
            behavior,
            cascade: custom,
        } => {
            let (p, c) = (table(org, parent)?, table(org, child)?);
            let cascade = cascade(behavior, custom.as_ref())?;
            setup.add_relationship(name, p, c, lookup, cascade)?;
        }
        Operation::AddRole {
            name,
            business_unit,
            inheritance,
            system_administrator,
            privileges,
            misc,
        } => {
            let grants = grid(org, name, privileges)?;
            let inheritance = match inheritance.as_deref() {
                None | Some("user_and_team") => Inheritance::UserAndTeam,
                Some("team_only") => Inheritance::TeamOnly,
                Some(other) => {
                    return Err(OpError::invalid(
                        "bad_inheritance",
                        format!("role `{name}`: inheritance `{other}` (user_and_team team_only)"),
                    ));
                }
            };
            let def = RoleDefinition {
                name: name.clone(),
                business_unit: opt_unit(org, business_unit.as_ref())?,
                inheritance,
                system_administrator: *system_administrator,
                privileges: grants,
                misc: misc.clone(),
            };
            setup.add_role(def)?;
        }
        Operation::SetRolePrivileges {
            role,
            privileges,
            misc,
        } => {
            let id = org
                .role_id(role)
                .ok_or_else(|| OpError::unknown("role", role))?;
            let grants = grid(org, role, privileges)?;
            setup.set_role_privileges(id, grants, misc.clone())?;
        }
        Operation::SetUserEnabled {
            user: name,
            enabled,
        } => {
            let u = user(org, name)?;
            setup.set_user_enabled(u, *enabled);
        }
        Operation::SetAppRoles { app, roles } => {
            let a = org
                .app_id(app)
                .ok_or_else(|| OpError::unknown("app", app))?;
            let roles = roles
                .iter()
                .map(|r| org.role_id(r).ok_or_else(|| OpError::unknown("role", r)))
                .collect::<Result<_, _>>()?;
            setup.set_app_roles(a, roles);
        }
        Operation::AddPosition { name, parent } => {
            let parent = parent
                .as_ref()
                .map(|p| {
                    org.position_id(p)
                        .ok_or_else(|| OpError::unknown("position", p))
                })
                .transpose()?;
            setup.add_position(name, parent)?;
        }
        Operation::AddUser {
            name,
            business_unit,
            enabled,
        } => {
            let bu = match business_unit {
                Some(b) => unit(org, b)?,
                None => org.units().root().ok_or_else(|| {
                    OpError::invalid("no_root", "add the root business unit first")
                })?,
            };
            setup.add_user(name, bu, *enabled)?;
        }
        Operation::SetUserFields {
            user: name,
            fields: f,
        } => {
            let (u, f) = (user(org, name)?, fields(f)?);
            setup.set_user_fields(u, f)?;
        }
        Operation::SetPosition {
            user: name,
            position,
        } => {
            let u = user(org, name)?;
            let p = position
                .as_ref()
                .map(|p| {
                    org.position_id(p)
                        .ok_or_else(|| OpError::unknown("position", p))
                })
                .transpose()?;
            setup.set_position(u, p);
        }
        Operation::AddTeam {
            name,
            kind,
            business_unit,
        } => {
            let kind = match kind.as_deref() {
                None | Some("owner") => TeamType::Owner,
                Some("access") => TeamType::Access,
                Some("security_group") => TeamType::SecurityGroup,
                Some("office_group") => TeamType::OfficeGroup,
                Some(other) => {
                    return Err(OpError::invalid(
                        "bad_team_type",
                        format!(
                            "team `{name}`: type `{other}` (owner access security_group office_group)"
                        ),
                    ));
                }
            };
            let bu = match business_unit {
                Some(b) => unit(org, b)?,
                None => org.units().root().ok_or_else(|| {
                    OpError::invalid("no_root", "add the root business unit first")
                })?,
            };
            setup.add_team(name, kind, bu)?;
        }
        Operation::AddTemplate {
            name,
            table: t,
            rights: r,
        } => {
            let (tid, mask) = (table(org, t)?, rights(r)?);
            setup.add_template(name, tid, mask)?;
        }
        Operation::InsertRecord {
            id,
            table: t,
            owner: o,
            business_unit,
            state: st,
            fields: f,
        } => {
            let new = NewRecord {
                key: id.clone(),
                table: table(org, t)?,
                owner: o.as_ref().map_or(Ok(Owner::None), |o| owner(org, o))?,
                business_unit: opt_unit(org, business_unit.as_ref())?,
                state: state(st.as_ref())?,
                fields: fields(f)?,
            };
            setup.add_record(new)?;
        }
        Operation::AddProfile {
            name,
            members,
            permissions,
        } => {
            let members = members
                .iter()
                .map(|m| resolve_principal(org, m))
                .collect::<Result<_, _>>()?;
            let permissions = permissions
                .iter()
                .map(|p| {
                    Ok(ColumnPermission {
                        table: table(org, &p.table)?,
                        column: p.column.clone(),
                        read: p.read,
                        update: p.update,
                        create: p.create,
                    })
                })
                .collect::<Result<_, OpError>>()?;
            setup.add_profile(name, members, permissions)?;
        }
        Operation::AddFieldShare {
            record: r,
            column,
            principal,
            read,
            update,
        } => {
            let rid = record(org, r)?;
            let share = FieldShare {
                column: column.clone(),
                principal: resolve_principal(org, principal)?,
                read: *read,
                update: *update,
            };
            setup.add_field_share(rid, share)?;
        }
        Operation::AddApp { name, roles } => {
            let roles = roles
                .iter()
                .map(|r| org.role_id(r).ok_or_else(|| OpError::unknown("role", r)))
                .collect::<Result<_, _>>()?;
            setup.add_app(name, roles)?;
        }
        Operation::SetAppNeeds { app, needs } => {
            let a = org
                .app_id(app)
                .ok_or_else(|| OpError::unknown("app", app))?;
            let needs = app_needs(org, app, needs)?;
            setup.set_app_needs(a, needs)?;
        }
        Operation::RenameRole { .. }
        | Operation::CopyRole { .. }
        | Operation::DeleteRole { .. }
        | Operation::DeprecateRole { .. }
        | Operation::ReplaceRole { .. }
        | Operation::SetRolePrivilege { .. }
        | Operation::SetRoleMiscPrivilege { .. } => crate::roles::apply_role_setup(setup, op)?,
        Operation::AddRoleRule { .. } => {
            let rule = crate::rules::rule_of(org, op)?;
            setup.add_role_rule(rule)?;
        }
        Operation::RemoveRoleRule { .. } => {
            let rule = crate::rules::rule_of(org, op)?;
            setup.remove_role_rule(&rule)?;
        }
        Operation::AddLicence(_)
        | Operation::SetLicence(_)
        | Operation::RemoveLicence { .. }
        | Operation::SetUserLicence { .. } => crate::licences::apply(setup, op)?,
        _ => return Err(OpError::invalid("not_setup", "not a setup operation")),
    }
    Ok(())
}

fn apply_action(
    org: &mut Organization,
    op: &Operation,
    imp: Option<UserId>,
) -> Result<Vec<Change>, OpError> {
    let changes = match op {
        Operation::Create {
            actor: a,
            table: t,
            id,
            owner: o,
            business_unit,
            state: st,
            lookups,
            fields: f,
        } => {
            let new = CreateRecord {
                key: id.clone(),
                table: table(org, t)?,
                owner: o.as_ref().map(|o| owner(org, o)).transpose()?,
                business_unit: opt_unit(org, business_unit.as_ref())?,
                state: state(st.as_ref())?,
                lookups: lookups
                    .iter()
                    .map(|(l, p)| Ok((l.clone(), record(org, p)?)))
                    .collect::<Result<_, OpError>>()?,
                fields: fields(f)?,
            };
            org.create_record(actor(org, a.as_ref(), imp)?, new)?
        }
        Operation::Update {
            actor: a,
            record: r,
            fields: f,
        } => {
            let (a, r, f) = (actor(org, a.as_ref(), imp)?, record(org, r)?, fields(f)?);
            org.update_record(a, r, f)?
        }
        Operation::Delete {
            actor: a,
            record: r,
        } => {
            let (a, r) = (actor(org, a.as_ref(), imp)?, record(org, r)?);
            org.delete_record(a, r)?
        }
        Operation::Assign {
            actor: a,
            record: r,
            owner: o,
        } => {
            let (a, r, o) = (
                actor(org, a.as_ref(), imp)?,
                record(org, r)?,
                owner(org, o)?,
            );
            org.assign_record(a, r, o)?
        }
        Operation::Share {
            actor: a,
            record: r,
            principal,
            rights: list,
        }
        | Operation::ModifyShare {
            actor: a,
            record: r,
            principal,
            rights: list,
        } => {
            let mode = if matches!(op, Operation::Share { .. }) {
                ShareMode::Grant
            } else {
                ShareMode::Modify
            };
            let (a, r, p, m) = (
                actor(org, a.as_ref(), imp)?,
                record(org, r)?,
                resolve_principal(org, principal)?,
                rights(list)?,
            );
            org.share_record(a, r, p, m, mode)?
        }
        Operation::Revoke {
            actor: a,
            record: r,
            principal,
        } => {
            let (a, r, p) = (
                actor(org, a.as_ref(), imp)?,
                record(org, r)?,
                resolve_principal(org, principal)?,
            );
            org.revoke_share(a, r, p)?
        }
        Operation::Associate {
            actor: a,
            record: r,
            lookup,
            parent,
        } => {
            let (a, r, p) = (
                actor(org, a.as_ref(), imp)?,
                record(org, r)?,
                record(org, parent)?,
            );
            org.associate(a, r, lookup, p)?
        }
        Operation::Disassociate {
            actor: a,
            record: r,
            lookup,
        } => {
            let (a, r) = (actor(org, a.as_ref(), imp)?, record(org, r)?);
            org.disassociate(a, r, lookup)?
        }
        Operation::AddAccessTeamMember {
            actor: a,
            record: r,
            template,
            user: u,
        }
        | Operation::RemoveAccessTeamMember {
            actor: a,
            record: r,
            template,
            user: u,
        } => {
            let (a, r, u) = (actor(org, a.as_ref(), imp)?, record(org, r)?, user(org, u)?);
            let t = org
                .template_id(template)
                .ok_or_else(|| OpError::unknown("access team template", template))?;
            if matches!(op, Operation::AddAccessTeamMember { .. }) {
                org.add_access_team_member(a, r, t, u)?
            } else {
                org.remove_access_team_member(a, r, t, u)?
            }
        }
        Operation::AssignRole {
            actor: a,
            principal,
            role,
            business_unit,
        } => {
            let (a, p) = (
                actor(org, a.as_ref(), imp)?,
                resolve_principal(org, principal)?,
            );
            let role = org
                .role_id(role)
                .ok_or_else(|| OpError::unknown("role", role))?;
            let bu = opt_unit(org, business_unit.as_ref())?;
            org.assign_role(a, p, role, bu)?
        }
        Operation::RemoveRole {
            actor: a,
            principal,
            role,
        } => {
            let (a, p) = (
                actor(org, a.as_ref(), imp)?,
                resolve_principal(org, principal)?,
            );
            let role = org
                .role_id(role)
                .ok_or_else(|| OpError::unknown("role", role))?;
            org.remove_role(a, p, role)?
        }
        Operation::AddTeamMember {
            actor: a,
            team,
            user: u,
        }
        | Operation::RemoveTeamMember {
            actor: a,
            team,
            user: u,
        } => {
            let (a, u) = (actor(org, a.as_ref(), imp)?, user(org, u)?);
            let t = org
                .team_id(team)
                .ok_or_else(|| OpError::unknown("team", team))?;
            if matches!(op, Operation::AddTeamMember { .. }) {
                org.add_team_member(a, t, u)?
            } else {
                org.remove_team_member(a, t, u)?
            }
        }
        Operation::MoveUser {
            actor: a,
            user: u,
            business_unit,
        } => {
            let (a, u, b) = (
                actor(org, a.as_ref(), imp)?,
                user(org, u)?,
                unit(org, business_unit)?,
            );
            org.move_user(a, u, b)?
        }
        Operation::SetManager {
            actor: a,
            user: u,
            manager,
        } => {
            let (a, u) = (actor(org, a.as_ref(), imp)?, user(org, u)?);
            let m = manager.as_ref().map(|m| user(org, m)).transpose()?;
            org.set_manager(a, u, m)?
        }
        _ => return Err(OpError::invalid("not_an_action", "not an action")),
    };
    Ok(changes)
}

/// Applies one operation. A refused operation changes nothing. Setup operations report no
/// engine changes (the operation itself is the change).
pub fn apply(org: &mut Organization, op: &Operation) -> Result<Vec<Change>, OpError> {
    if op.is_setup() {
        let mut setup = org.setup();
        apply_setup(&mut setup, op)?;
        Ok(Vec::new())
    } else {
        apply_action(org, op, None)
    }
}

/// Applies an action on behalf of its `as` user, called by `impersonator` (D7): the
/// impersonator needs `prvActOnBehalfOfAnotherUser` and every check must pass for both.
pub fn apply_on_behalf(
    org: &mut Organization,
    op: &Operation,
    impersonator: &str,
) -> Result<Vec<Change>, OpError> {
    if op.is_setup() {
        return Err(OpError::invalid(
            "bad_actor",
            "administration is not done on behalf of another user",
        ));
    }
    let imp = acting(org, impersonator)?;
    apply_action(org, op, Some(imp))
}

/// Applies one operation for a caller, the one entry point that names who acts.
///
/// `caller: None` is the system (the root key, setup): no authorization, and an action runs
/// as the user its `as` names. `caller: Some(name)` is a user: an unknown name is refused
/// with `unknown_user` (never treated as the system); a setup operation is authorized by
/// [`crate::authorize_setup`]; an action runs as that user, and an `as` naming anyone else is
/// refused with `bad_actor` (acting for another user is [`apply_on_behalf`]).
pub fn apply_as(
    org: &mut Organization,
    op: &Operation,
    caller: Option<&str>,
) -> Result<Vec<Change>, OpError> {
    let Some(name) = caller else {
        return apply(org, op);
    };
    let uid = acting(org, name)?;
    if op.is_setup() {
        crate::authorize_setup(org, uid, op)?;
        return apply(org, op);
    }
    let mut op = op.clone();
    match op.actor_mut() {
        Some(slot) => match slot {
            Some(other) if other != name => {
                return Err(OpError::invalid(
                    "bad_actor",
                    format!("the operation acts as `{other}`, but the caller is `{name}`"),
                ));
            }
            _ => *slot = Some(name.to_owned()),
        },
        None => return Err(OpError::invalid("not_an_action", "not an action")),
    }
    apply_action(org, &op, None)
}

/// Applies operations in order, running consecutive setup operations in one setup session (the
/// derived indexes are rebuilt once per run, not once per operation). Stops at the first
/// refusal and returns its index; operations before it stay applied.
pub fn apply_all(org: &mut Organization, ops: &[Operation]) -> Result<(), (usize, OpError)> {
    apply_all_observed(org, ops, |_, _, _, _| {})
}

/// [`apply_all`], calling `observe` before and after each operation with the organisation as
/// the operation finds it and leaves it (inside a setup session for setup operations: the
/// derived indexes are rebuilt when the run of setup operations ends) and the operation's
/// changes. Bulk loads derive each operation's audit entries this way at [`apply_all`]'s speed.
///
/// # Errors
///
/// The index and refusal of the first refused operation; operations before it stay applied.
pub fn apply_all_observed(
    org: &mut Organization,
    ops: &[Operation],
    observe: impl FnMut(&Organization, usize, &Operation, crate::BatchStep<'_>),
) -> Result<(), (usize, OpError)> {
    apply_run(org, ops, None, observe)
}

/// [`apply_all`] of logged operations, each at the time the log gives it (`at_ms[i]` for
/// `ops[i]`, milliseconds since the Unix epoch): the records they create or change are stamped
/// as the write stamped them (D165). A replay of the log, and a node catching up, apply so.
///
/// # Errors
///
/// The index and refusal of the first refused operation; operations before it stay applied.
pub fn apply_all_at(
    org: &mut Organization,
    ops: &[Operation],
    at_ms: &[i64],
) -> Result<(), (usize, OpError)> {
    apply_run(org, ops, Some(at_ms), |_, _, _, _| {})
}

/// [`apply_all_observed`], setting the organisation's clock to `at_ms[i]` before `ops[i]`
/// when times are given (the clock as it is otherwise).
fn apply_run(
    org: &mut Organization,
    ops: &[Operation],
    at_ms: Option<&[i64]>,
    mut observe: impl FnMut(&Organization, usize, &Operation, crate::BatchStep<'_>),
) -> Result<(), (usize, OpError)> {
    let at = |i: usize| at_ms.and_then(|t| t.get(i).copied());
    let mut i = 0;
    while i < ops.len() {
        if ops[i].is_setup() {
            let mut setup = org.setup();
            while let Some(op) = ops.get(i).filter(|op| op.is_setup()) {
                if let Some(t) = at(i) {
                    setup.set_clock(t);
                }
                observe(setup.org(), i, op, crate::BatchStep::Before);
                apply_setup(&mut setup, op).map_err(|e| (i, e))?;
                observe(setup.org(), i, op, crate::BatchStep::After(&[]));
                i += 1;
            }
        } else {
            if let Some(t) = at(i) {
                org.set_clock(t);
            }
            observe(org, i, &ops[i], crate::BatchStep::Before);
            let changes = apply_action(org, &ops[i], None).map_err(|e| (i, e))?;
            observe(org, i, &ops[i], crate::BatchStep::After(&changes));
            i += 1;
        }
    }
    Ok(())
}
