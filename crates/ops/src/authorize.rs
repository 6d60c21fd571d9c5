//! Who may administer: setup operations by a user are authorized the Dataverse way, by
//! privileges on the system tables (`businessunit`, `systemuser`, `team`, `role`), with no
//! escalation when defining roles (D11). Customization (tables, relationships, settings,
//! audit switches, profiles, templates, apps, imports) is for System Administrators.

use strata_engine::{BusinessUnitId, Organization, Principal, Privilege, TableId, UserId};

use crate::{OpError, OpErrorKind, Operation};

pub(crate) fn denied(message: String) -> OpError {
    OpError {
        kind: OpErrorKind::Denied,
        code: "denied",
        message,
    }
}

fn table(org: &Organization, name: &str) -> Result<TableId, OpError> {
    org.table_id(name)
        .ok_or_else(|| OpError::unknown("table", name))
}

fn unit(org: &Organization, name: Option<&String>) -> Result<BusinessUnitId, OpError> {
    match name {
        Some(n) => org
            .business_unit_id(n)
            .ok_or_else(|| OpError::unknown("business unit", n)),
        None => org
            .units()
            .root()
            .ok_or_else(|| OpError::invalid("no_root", "add the root business unit first")),
    }
}

/// `privilege` on a record of a business-owned system table in `unit` (a new one for Create):
/// only depth reaches such records.
pub(crate) fn on_unit(
    org: &Organization,
    user: UserId,
    system_table: &str,
    privilege: Privilege,
    unit: BusinessUnitId,
) -> Result<(), OpError> {
    let decision = org.explain_on_unit(user, table(org, system_table)?, privilege, unit);
    if decision.allowed {
        Ok(())
    } else {
        Err(denied(org.render_decision(&decision)))
    }
}

fn user_record(
    org: &Organization,
    user: UserId,
    name: &str,
    privilege: Privilege,
) -> Result<(), OpError> {
    let target = org
        .user_id(name)
        .ok_or_else(|| OpError::unknown("user", name))?;
    let record = org.user(target).record;
    if org.check(user, privilege, record) {
        Ok(())
    } else {
        Err(denied(
            org.render_decision(&org.explain(user, privilege, record)),
        ))
    }
}

/// D29: `user` may change `name`'s unit, manager, position or enabled state.
fn administer(org: &Organization, user: UserId, name: &str, what: &str) -> Result<(), OpError> {
    let target = org
        .user_id(name)
        .ok_or_else(|| OpError::unknown("user", name))?;
    org.check_user_administration(user, target, what)
        .map_err(OpError::from)
}

/// Whether `user` may perform a setup (administration) operation. Actions authorize
/// themselves in the engine; they pass here.
pub fn authorize_setup(org: &Organization, user: UserId, op: &Operation) -> Result<(), OpError> {
    if !op.is_setup() || org.system_administrator(user).is_some() {
        return Ok(());
    }
    match op {
        Operation::AddBusinessUnit { parent, .. } => on_unit(
            org,
            user,
            "businessunit",
            Privilege::Create,
            unit(org, parent.as_ref())?,
        ),
        Operation::MoveBusinessUnit { name, parent } => {
            on_unit(
                org,
                user,
                "businessunit",
                Privilege::Write,
                unit(org, Some(name))?,
            )?;
            on_unit(
                org,
                user,
                "businessunit",
                Privilege::AppendTo,
                unit(org, Some(parent))?,
            )
        }
        Operation::RenameBusinessUnit { name, .. } => on_unit(
            org,
            user,
            "businessunit",
            Privilege::Write,
            unit(org, Some(name))?,
        ),
        Operation::AddUser { business_unit, .. } => on_unit(
            org,
            user,
            "systemuser",
            Privilege::Create,
            unit(org, business_unit.as_ref())?,
        ),
        Operation::SetUserFields { user: name, fields } => {
            user_record(org, user, name, Privilege::Write)?;
            // D9: the same column security as an update of that record (changed values only).
            let record = org
                .user(
                    org.user_id(name)
                        .ok_or_else(|| OpError::unknown("user", name))?,
                )
                .record;
            let values = crate::apply::fields(fields)?;
            let rec = org.record(record);
            org.check_known_columns(rec.table, values.iter().map(|(c, _)| c.as_str()))
                .map_err(OpError::from)?;
            let changed = values
                .iter()
                .filter(|(c, v)| rec.field(c) != v)
                .map(|(c, _)| c.as_str());
            org.check_column_writes(user, rec.table, Some(record), changed)
                .map_err(OpError::from)
        }
        Operation::SetPosition { user: name, .. } => {
            user_record(org, user, name, Privilege::Write)?;
            administer(org, user, name, "change the position of")
        }
        Operation::AddTeam { business_unit, .. } => on_unit(
            org,
            user,
            "team",
            Privilege::Create,
            unit(org, business_unit.as_ref())?,
        ),
        Operation::AddRole {
            name,
            business_unit,
            system_administrator,
            privileges,
            misc,
            ..
        } => {
            let at = unit(org, business_unit.as_ref())?;
            on_unit(org, user, "role", Privilege::Create, at)?;
            let grid = crate::apply::grid(org, name, privileges)?;
            org.check_no_escalation(
                user,
                Principal::Organization,
                at,
                name,
                *system_administrator,
                grid,
                misc,
            )
            .map_err(denied)
        }
        Operation::SetRolePrivileges {
            role,
            privileges,
            misc,
        } => {
            let id = org
                .role_id(role)
                .ok_or_else(|| OpError::unknown("role", role))?;
            let at = org.role(id).business_unit;
            on_unit(org, user, "role", Privilege::Write, at)?;
            let grid = crate::apply::grid(org, role, privileges)?;
            org.check_no_escalation(user, Principal::Organization, at, role, false, grid, misc)
                .map_err(denied)
        }
        Operation::SetUserEnabled {
            user: name,
            enabled,
        } => {
            user_record(org, user, name, Privilege::Write)?;
            administer(org, user, name, if *enabled { "enable" } else { "disable" })
        }
        Operation::RenameRole { .. }
        | Operation::CopyRole { .. }
        | Operation::DeleteRole { .. }
        | Operation::DeprecateRole { .. }
        | Operation::ReplaceRole { .. }
        | Operation::SetRolePrivilege { .. }
        | Operation::SetRoleMiscPrivilege { .. } => {
            crate::roles::authorize_role_setup(org, user, op)
        }
        // D47: a rule constrains the assignment of its roles, so it is role administration:
        // Write on `role` over the unit of every role it names.
        Operation::AddRoleRule { .. } | Operation::RemoveRoleRule { .. } => {
            for id in crate::rules::rule_of(org, op)?.roles() {
                on_unit(
                    org,
                    user,
                    "role",
                    Privilege::Write,
                    org.role(id).business_unit,
                )?;
            }
            Ok(())
        }
        // D50: giving or taking a user's licences is administering that user.
        Operation::SetUserLicence { user: name, .. } => {
            user_record(org, user, name, Privilege::Write)?;
            administer(org, user, name, "change the licences of")
        }
        other => Err(denied(format!(
            "`{}` is customization: only System Administrators may do it",
            other.name()
        ))),
    }
}
