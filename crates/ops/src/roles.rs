//! Roles as things to manage: the role administration operations (applied in a setup session,
//! authorized for users through the `role` system table, D42–D44) and the JSON of the
//! questions about roles, shared by the server and the CLI.

use serde_json::{Value as J, json};
use strata_engine::{
    CellSource, Depth, Effective, Inheritance, Organization, Principal, Privilege, RoleId, Setup,
    UserId, Via,
};

use crate::authorize::{denied, on_unit};
use crate::{OpError, Operation};

fn role(org: &Organization, name: &str) -> Result<RoleId, OpError> {
    org.role_id(name)
        .ok_or_else(|| OpError::unknown("role", name))
}

fn depth(role: &str, name: &str) -> Result<Depth, OpError> {
    Depth::from_name(name).ok_or_else(|| {
        OpError::invalid(
            "unknown_depth",
            format!("role `{role}`: unknown depth `{name}` (none user business_unit parent_child organization)"),
        )
    })
}

/// Applies a role administration operation in a setup session.
pub(crate) fn apply_role_setup(setup: &mut Setup<'_>, op: &Operation) -> Result<(), OpError> {
    let org = setup.org();
    match op {
        Operation::RenameRole { role: r, name } => {
            let id = role(org, r)?;
            setup.rename_role(id, name)?;
        }
        Operation::CopyRole { role: r, name } => {
            let id = role(org, r)?;
            setup.copy_role(id, name)?;
        }
        Operation::DeleteRole {
            role: r,
            replacement,
        } => {
            let id = role(org, r)?;
            let to = replacement.as_deref().map(|n| role(org, n)).transpose()?;
            setup.delete_role(id, to)?;
        }
        Operation::DeprecateRole {
            role: r,
            deprecated,
            message,
            successors,
        } => {
            let id = role(org, r)?;
            let deprecation = if *deprecated {
                let list = successors
                    .iter()
                    .map(|s| role(org, s))
                    .collect::<Result<Vec<_>, _>>()?;
                Some((message.clone(), list))
            } else {
                if !message.is_empty() || !successors.is_empty() {
                    return Err(OpError::invalid(
                        "invalid",
                        format!("role `{r}`: `deprecated: false` takes no message or successors"),
                    ));
                }
                None
            };
            setup.set_role_deprecation(id, deprecation)?;
        }
        Operation::ReplaceRole {
            role: r,
            replacement,
        } => {
            let (from, to) = (role(org, r)?, role(org, replacement)?);
            setup.replace_role(from, to)?;
        }
        Operation::SetRolePrivilege {
            role: r,
            table,
            privilege,
            depth: d,
        } => {
            let id = role(org, r)?;
            let t = org
                .table_id(table)
                .ok_or_else(|| OpError::unknown("table", table))?;
            let p = crate::apply::privilege(privilege)?;
            let d = depth(r, d)?;
            setup.set_role_privilege(id, t, p, d)?;
        }
        Operation::SetRoleMiscPrivilege {
            role: r,
            privilege,
            held,
        } => {
            let id = role(org, r)?;
            setup.set_role_misc_privilege(id, privilege, *held)?;
        }
        _ => return Err(OpError::invalid("not_setup", "not a role operation")),
    }
    Ok(())
}

/// The grid of `role` with one cell changed, as (table, privilege, depth) triples.
fn grid_with(
    org: &Organization,
    id: RoleId,
    cell: Option<(strata_engine::TableId, Privilege, Depth)>,
) -> Vec<(strata_engine::TableId, Privilege, Depth)> {
    let mut grid: Vec<_> = org
        .role(id)
        .privileges
        .iter()
        .flat_map(|(t, depths)| {
            Privilege::ALL
                .into_iter()
                .map(move |p| (*t, p, depths[p.index()]))
        })
        .collect();
    if let Some((t, p, d)) = cell {
        grid.retain(|(gt, gp, _)| (*gt, *gp) != (t, p));
        grid.push((t, p, d));
    }
    grid
}

/// Authorizes a role administration operation for a user who is not a System Administrator
/// (D42–D44): Write on `role` over the role's unit to rename, deprecate or edit a cell (with
/// D11 for the resulting grid); Create on `role` and D11 to copy; Delete on `role` to delete;
/// moving holders (replace, delete with a replacement) as `remove_role` and `assign_role`
/// would allow for each holder; moving app associations is customization.
pub(crate) fn authorize_role_setup(
    org: &Organization,
    user: UserId,
    op: &Operation,
) -> Result<(), OpError> {
    let write = |r: &str| -> Result<RoleId, OpError> {
        let id = role(org, r)?;
        on_unit(
            org,
            user,
            "role",
            Privilege::Write,
            org.role(id).business_unit,
        )?;
        Ok(id)
    };
    match op {
        Operation::RenameRole { role: r, .. } | Operation::DeprecateRole { role: r, .. } => {
            write(r).map(|_| ())
        }
        Operation::CopyRole { role: r, name } => {
            let id = role(org, r)?;
            let source = org.role(id);
            on_unit(org, user, "role", Privilege::Create, source.business_unit)?;
            org.check_no_escalation(
                user,
                Principal::Organization,
                source.business_unit,
                name,
                source.system_administrator,
                grid_with(org, id, None),
                &source.misc,
            )
            .map_err(denied)
        }
        Operation::SetRolePrivilege {
            role: r,
            table,
            privilege,
            depth: d,
        } => {
            let id = write(r)?;
            let t = org
                .table_id(table)
                .ok_or_else(|| OpError::unknown("table", table))?;
            let cell = (t, crate::apply::privilege(privilege)?, depth(r, d)?);
            let source = org.role(id);
            org.check_no_escalation(
                user,
                Principal::Organization,
                source.business_unit,
                r,
                source.system_administrator,
                grid_with(org, id, Some(cell)),
                &source.misc,
            )
            .map_err(denied)
        }
        // D82: Write on `role`, and D11 for the miscellaneous privileges that result (taking one
        // away hands nothing out, but the rest must still be within the editor's own).
        Operation::SetRoleMiscPrivilege {
            role: r,
            privilege,
            held,
        } => {
            let id = write(r)?;
            let source = org.role(id);
            let mut misc: Vec<String> = source
                .misc
                .iter()
                .filter(|m| *m != privilege)
                .cloned()
                .collect();
            if *held {
                misc.push(privilege.clone());
            }
            org.check_no_escalation(
                user,
                Principal::Organization,
                source.business_unit,
                r,
                source.system_administrator,
                grid_with(org, id, None),
                &misc,
            )
            .map_err(denied)
        }
        Operation::DeleteRole {
            role: r,
            replacement,
        } => {
            let id = role(org, r)?;
            on_unit(
                org,
                user,
                "role",
                Privilege::Delete,
                org.role(id).business_unit,
            )?;
            if let Some(to) = replacement {
                let to = role(org, to)?;
                org.check_role_transfer(user, id, to)?;
                if !org.role_apps(id).is_empty() {
                    return Err(denied(format!(
                        "role `{r}` is associated with apps: moving app associations is customization, for System Administrators only"
                    )));
                }
            }
            Ok(())
        }
        Operation::ReplaceRole {
            role: r,
            replacement,
        } => {
            let (from, to) = (role(org, r)?, role(org, replacement)?);
            org.check_role_transfer(user, from, to)
                .map_err(OpError::from)
        }
        _ => Err(OpError::invalid("not_setup", "not a role operation")),
    }
}

// ----- the questions, as JSON -----

fn inheritance(i: Inheritance) -> &'static str {
    if i == Inheritance::TeamOnly {
        "team_only"
    } else {
        "user_and_team"
    }
}

fn via_json(org: &Organization, via: Via) -> J {
    match via {
        Via::Direct => json!("direct"),
        Via::Team { team, team_only } => {
            json!({ "team": org.team(team).name, "team_only": team_only })
        }
    }
}

fn source_json(org: &Organization, s: &CellSource) -> J {
    match s {
        CellSource::SystemAdministrator(a) => json!({
            "role": org.role(a.role).name,
            "system_administrator": true,
            "via": a.team.map_or(json!("direct"), |t| json!({ "team": org.team(t).name, "team_only": false })),
        }),
        CellSource::Role { role, via } => {
            json!({ "role": org.role(*role).name, "via": via_json(org, *via) })
        }
    }
}

fn effective_json(org: &Organization, e: &Effective) -> J {
    let sources: Vec<J> = e.sources.iter().map(|s| source_json(org, s)).collect();
    json!({ "depth": e.depth.name(), "sources": sources })
}

/// A role described: unit, inheritance, deprecation, the grid (table → privilege → depth
/// name, granted cells only), miscellaneous privileges and the apps it opens.
#[must_use]
pub fn role_json(org: &Organization, id: RoleId) -> J {
    let r = org.role(id);
    let grid: serde_json::Map<String, J> = r
        .privileges
        .iter()
        .map(|(t, depths)| {
            let row: serde_json::Map<String, J> = Privilege::ALL
                .into_iter()
                .filter(|p| depths[p.index()] != Depth::None)
                .map(|p| (p.name().to_owned(), json!(depths[p.index()].name())))
                .collect();
            (org.table(*t).name.clone(), J::Object(row))
        })
        .collect();
    let deprecation = r.deprecation.as_ref().map(|d| {
        let successors: Vec<&str> = d
            .successors
            .iter()
            .map(|s| org.role(*s).name.as_str())
            .collect();
        json!({ "message": d.message, "successors": successors })
    });
    let apps: Vec<&str> = org
        .role_apps(id)
        .into_iter()
        .map(|a| org.app(a).name.as_str())
        .collect();
    json!({
        "name": r.name,
        "business_unit": org.units().name(r.business_unit),
        "inheritance": inheritance(r.inheritance),
        "system_administrator": r.system_administrator,
        "deprecated": r.deprecation.is_some(),
        "deprecation": deprecation,
        "privileges": grid,
        "misc": r.misc,
        "apps": apps,
    })
}

/// Who holds a role: `users` (direct), `teams`, `through_teams` (each member with the team),
/// and `apps`. `may_see(user)` says whether a user may be named (the others are left out).
pub fn role_holders_json(org: &Organization, id: RoleId, may_see: impl Fn(UserId) -> bool) -> J {
    let h = org.role_holders(id);
    let units = org.units();
    let users: Vec<J> = h
        .users
        .iter()
        .filter(|d| may_see(d.user))
        .map(|d| {
            json!({ "user": org.user(d.user).name, "business_unit": d.business_unit.map(|b| units.name(b)) })
        })
        .collect();
    let teams: Vec<J> = h
        .teams
        .iter()
        .map(|t| {
            let team = org.team(*t);
            json!({ "team": team.name, "business_unit": units.name(team.business_unit), "members": team.members.len() })
        })
        .collect();
    let through: Vec<J> = h
        .through_teams
        .iter()
        .filter(|(u, _)| may_see(*u))
        .map(|(u, t)| json!({ "user": org.user(*u).name, "team": org.team(*t).name }))
        .collect();
    let apps: Vec<&str> = h.apps.iter().map(|a| org.app(*a).name.as_str()).collect();
    json!({ "role": org.role(id).name, "users": users, "teams": teams, "through_teams": through, "apps": apps })
}

/// Two roles side by side: `cells` (table, privilege, both depths, `differs`) and `misc`.
#[must_use]
pub fn compare_roles_json(org: &Organization, left: RoleId, right: RoleId) -> J {
    let c = org.compare_roles(left, right);
    let cells: Vec<J> = c
        .cells
        .iter()
        .map(|cell| {
            json!({ "table": org.table(cell.table).name, "privilege": cell.privilege.name(),
                "left": cell.left.name(), "right": cell.right.name(), "differs": cell.differs() })
        })
        .collect();
    let misc: Vec<J> = c
        .misc
        .iter()
        .map(
            |m| json!({ "name": m.name, "left": m.left, "right": m.right, "differs": m.differs() }),
        )
        .collect();
    let differences = c.cells.iter().filter(|c| c.differs()).count()
        + c.misc.iter().filter(|m| m.differs()).count();
    json!({ "left": org.role(left).name, "right": org.role(right).name, "cells": cells, "misc": misc, "differences": differences })
}

/// Two users' effective permissions side by side: `cells` (table, privilege, each side's
/// depth and sources, `differs`) and `misc` (each side's sources).
#[must_use]
pub fn compare_users_json(org: &Organization, left: UserId, right: UserId) -> J {
    let c = org.compare_users(left, right);
    let cells: Vec<J> = c
        .cells
        .iter()
        .map(|cell| {
            json!({ "table": org.table(cell.table).name, "privilege": cell.privilege.name(),
                "left": effective_json(org, &cell.left), "right": effective_json(org, &cell.right),
                "differs": cell.differs() })
        })
        .collect();
    let misc: Vec<J> = c
        .misc
        .iter()
        .map(|m| {
            let side = |s: &[CellSource]| -> Vec<J> { s.iter().map(|x| source_json(org, x)).collect() };
            json!({ "name": m.name, "left": side(&m.left), "right": side(&m.right), "differs": m.differs() })
        })
        .collect();
    let differences = c.cells.iter().filter(|c| c.differs()).count()
        + c.misc.iter().filter(|m| m.differs()).count();
    let user = |u: UserId| {
        let x = org.user(u);
        json!({ "name": x.name, "enabled": x.enabled, "business_unit": org.units().name(x.business_unit),
            "system_administrator": org.system_administrator(u).is_some() })
    };
    json!({ "left": user(left), "right": user(right), "cells": cells, "misc": misc, "differences": differences })
}

/// Who may assign a role, and to principals of which units. `may_see(user)` as for holders.
pub fn assigners_json(org: &Organization, id: RoleId, may_see: impl Fn(UserId) -> bool) -> J {
    let units = org.units();
    let users: Vec<J> = org
        .who_may_assign(id)
        .into_iter()
        .filter(|a| may_see(a.user))
        .map(|a| {
            let names: Vec<&str> = a.units.iter().map(|u| units.name(*u)).collect();
            json!({ "user": org.user(a.user).name, "business_units": names })
        })
        .collect();
    json!({ "role": org.role(id).name, "deprecated": org.role(id).deprecation.is_some(), "assigners": users })
}
