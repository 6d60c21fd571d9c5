//! The answers about apps and columns as JSON (D51–D53), shared by the server and the CLI: the
//! apps with their roles and needs, who can open an app, why a user cannot, the smallest role
//! set, who can read or update a column, and a column decision.

use serde_json::{Value, json};
use strata_engine::{
    AppAccess, AppBlock, AppId, ColumnAccess, ColumnHolder, ColumnSource, ColumnVerdict,
    Organization, RoleSet, RoleSetError, UserId,
};

use crate::OpError;

/// An app: name, associated roles, needs (table, privilege, least depth).
#[must_use]
pub fn app_json(org: &Organization, app: AppId) -> Value {
    let a = org.app(app);
    let roles: Vec<&str> = a.roles.iter().map(|r| org.role(*r).name.as_str()).collect();
    let needs: Vec<Value> = a
        .needs
        .iter()
        .map(|n| {
            json!({ "table": org.table(n.table).name, "privilege": n.privilege.name(), "depth": n.depth.name() })
        })
        .collect();
    json!({ "name": a.name, "roles": roles, "needs": needs })
}

/// Every app of the organisation.
#[must_use]
pub fn apps_json(org: &Organization) -> Value {
    let apps: Vec<Value> = org.app_ids().map(|a| app_json(org, a)).collect();
    json!({ "apps": apps })
}

/// How a user opens an app, in words (`role `R``, `role `R` through team `T``,
/// `system_administrator`, `maker`).
#[must_use]
pub fn app_access_text(org: &Organization, access: AppAccess) -> String {
    match access {
        AppAccess::SystemAdministrator(_) => "system_administrator".to_owned(),
        AppAccess::Maker => "maker".to_owned(),
        AppAccess::Role { role, team: None } => format!("role `{}`", org.role(role).name),
        AppAccess::Role {
            role,
            team: Some(t),
        } => format!(
            "role `{}` through team `{}`",
            org.role(role).name,
            org.team(t).name
        ),
    }
}

/// One way a user opens an app, as JSON.
#[must_use]
pub fn app_access_json(org: &Organization, user: UserId, access: AppAccess) -> Value {
    let (via, role, team) = match access {
        AppAccess::SystemAdministrator(a) => ("system_administrator", Some(a.role), a.team),
        AppAccess::Maker => ("maker", None, None),
        AppAccess::Role { role, team } => (
            if team.is_some() { "team" } else { "direct" },
            Some(role),
            team,
        ),
    };
    json!({
        "user": org.user(user).name,
        "via": via,
        "role": role.map(|r| org.role(r).name.clone()),
        "team": team.map(|t| org.team(t).name.clone()),
        "text": app_access_text(org, access),
    })
}

/// One reason a user cannot open an app, in words.
#[must_use]
pub fn app_block_text(org: &Organization, user: UserId, app: AppId, block: &AppBlock) -> String {
    let name = &org.app(app).name;
    match block {
        AppBlock::UserDisabled => "the user is disabled and opens nothing".to_owned(),
        AppBlock::NoAssociatedRole { roles } if roles.is_empty() => format!(
            "app `{name}` has no associated role: only System Administrators and makers open it"
        ),
        AppBlock::NoAssociatedRole { roles } => format!(
            "no role of the user, directly or through a team, is associated with app `{name}`; its roles: {}",
            roles
                .iter()
                .map(|r| format!("`{}`", org.role(*r).name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        AppBlock::NoLicence => {
            let held: Vec<&str> = org
                .user_licences(user)
                .iter()
                .map(|l| l.name.as_str())
                .collect();
            format!(
                "none of the user's licences ({}) includes app `{name}`",
                if held.is_empty() {
                    "none".to_owned()
                } else {
                    held.join(", ")
                }
            )
        }
        _ => format!("{block:?}"),
    }
}

/// Why the user can or cannot open the app and do its work: `allowed`, `reason` (how, or
/// every reason why not — never null), `reasons` (codes with the app's roles), `missing` needs.
#[must_use]
pub fn app_diagnosis_json(org: &Organization, user: UserId, app: AppId) -> Value {
    let d = org.diagnose_app(user, app);
    let reasons: Vec<Value> = d
        .blocks
        .iter()
        .map(|b| {
            let roles: Vec<&str> = match b {
                AppBlock::NoAssociatedRole { roles } => {
                    roles.iter().map(|r| org.role(*r).name.as_str()).collect()
                }
                _ => Vec::new(),
            };
            json!({ "code": b.name(), "text": app_block_text(org, user, app, b), "roles": roles })
        })
        .collect();
    let missing: Vec<Value> = d
        .missing
        .iter()
        .map(|m| {
            json!({
                "table": org.table(m.need.table).name,
                "privilege": m.need.privilege.name(),
                "depth": m.need.depth.name(),
                "held": m.held.name(),
            })
        })
        .collect();
    let reason = match d.access {
        Some(a) => app_access_text(org, a),
        None => d
            .blocks
            .iter()
            .map(|b| app_block_text(org, user, app, b))
            .collect::<Vec<_>>()
            .join("; "),
    };
    json!({
        "app": org.app(app).name,
        "user": org.user(user).name,
        "allowed": d.access.is_some(),
        "reason": reason,
        "access": d.access.map(|a| app_access_json(org, user, a)),
        "reasons": reasons,
        "missing": missing,
    })
}

/// The smallest role set as JSON.
#[must_use]
pub fn role_set_json(org: &Organization, user: UserId, app: AppId, set: &RoleSet) -> Value {
    let roles: Vec<&str> = set
        .roles
        .iter()
        .map(|g| org.role(g.role).name.as_str())
        .collect();
    // Where each role is assigned: `null` in the user's own unit (D51).
    let assignments: Vec<Value> = set
        .roles
        .iter()
        .map(|g| {
            json!({
                "role": org.role(g.role).name,
                "business_unit": g.business_unit.map(|u| org.units().name(u)),
            })
        })
        .collect();
    json!({
        "app": org.app(app).name,
        "user": org.user(user).name,
        "roles": roles,
        "assignments": assignments,
        "exact": set.exact,
        "candidates": set.candidates,
        "searched": set.searched,
    })
}

/// A role set refusal as an operation error (its stable code).
#[must_use]
pub fn role_set_error(e: &RoleSetError) -> OpError {
    OpError::invalid(e.code(), e.to_string())
}

fn access_json(a: ColumnAccess) -> Value {
    json!({ "read": a.read, "update": a.update, "create": a.create })
}

/// One source of a column permission as JSON.
#[must_use]
pub fn column_source_json(org: &Organization, source: ColumnSource, access: ColumnAccess) -> Value {
    let (kind, profile, team, role) = match source {
        ColumnSource::SystemAdministrator(a) => {
            ("system_administrator", None, a.team, Some(a.role))
        }
        ColumnSource::Profile { profile, team } => ("profile", Some(profile), team, None),
        ColumnSource::FieldShare { team } => ("field_share", None, team, None),
    };
    let mut out = access_json(access);
    out["kind"] = json!(kind);
    out["profile"] = json!(profile.map(|p| org.profile(p).name.clone()));
    out["team"] = json!(team.map(|t| org.team(t).name.clone()));
    out["role"] = json!(role.map(|r| org.role(r).name.clone()));
    out["text"] = json!(org.describe_column_source(source));
    out
}

/// Who can read or update a column: `secured`, and per user the union and every source.
#[must_use]
pub fn column_holders_json(
    org: &Organization,
    table: &str,
    column: &str,
    holders: Option<&[ColumnHolder]>,
) -> Value {
    let users: Vec<Value> = holders
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let sources: Vec<Value> = h
                .sources
                .iter()
                .map(|(s, a)| column_source_json(org, *s, *a))
                .collect();
            json!({
                "user": org.user(h.user).name,
                "read": h.access.read,
                "update": h.access.update,
                "create": h.access.create,
                "sources": sources,
            })
        })
        .collect();
    json!({
        "table": table,
        "column": column,
        "secured": holders.is_some(),
        "note": if holders.is_some() { Value::Null } else { json!("the column is not secured: record access alone decides who reads and updates it") },
        "users": users,
    })
}

/// A column decision as JSON: the answer, the record decision and the column's sources.
#[must_use]
pub fn column_verdict_json(org: &Organization, v: &ColumnVerdict) -> Value {
    let sources: Vec<Value> = v
        .sources
        .iter()
        .map(|(s, a)| column_source_json(org, *s, *a))
        .collect();
    json!({
        "allowed": v.allowed,
        "user": org.user(v.record.user).name,
        "record": v.record.record.map(|r| org.record(r).key.to_string()),
        "table": org.table(v.record.table).name,
        "column": v.column,
        "access": if v.update { "update" } else { "read" },
        "secured": v.secured,
        "record_allowed": v.record.allowed,
        "column_permission": access_json(v.access),
        "sources": sources,
        "record_decision": crate::decision_json(org, &v.record),
        "explanation": org.render_column_verdict(v),
    })
}
