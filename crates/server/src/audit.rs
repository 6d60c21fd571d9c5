//! Audit entries from what an operation changed (D12).

use serde_json::{Value as Json, json};
use strata_engine::{Change, Organization, Owner, Principal};
use strata_ops::{Operation, to_json};
use strata_store::AuditRecord;

fn record_of(org: &Organization, r: strata_engine::RecordId) -> (String, String) {
    let rec = org.record(r);
    (org.table(rec.table).name.clone(), rec.key.clone())
}

fn owner_name(org: &Organization, o: Owner) -> Json {
    match o {
        Owner::None => Json::Null,
        o => Json::String(org.owner_name(o)),
    }
}

fn principal_name(org: &Organization, p: Principal) -> String {
    org.principal_name(p)
}

/// The audit entries of one applied operation, after it was applied.
/// What an operation is about to replace, for the audit's old value: a role's privileges.
pub fn before(org: &Organization, op: &Operation) -> Option<Json> {
    let Operation::SetRolePrivileges { role, .. } = op else {
        return None;
    };
    let r = org.role(org.role_id(role)?);
    let grid: serde_json::Map<String, Json> = r
        .privileges
        .iter()
        .map(|(t, depths)| {
            let row: serde_json::Map<String, Json> = strata_engine::Privilege::ALL
                .into_iter()
                .filter(|p| depths[p.index()] != strata_engine::Depth::None)
                .map(|p| {
                    (
                        p.name().to_owned(),
                        Json::String(depths[p.index()].name().to_owned()),
                    )
                })
                .collect();
            (org.table(*t).name.clone(), Json::Object(row))
        })
        .collect();
    Some(json!({ "privileges": grid, "misc": r.misc }))
}

/// The audit entries of one applied operation, after it was applied; `before` is what
/// [`before`] saw.
pub fn entries(
    org: &Organization,
    op: &Operation,
    before: Option<Json>,
    changes: &[Change],
    user: Option<&str>,
    impersonator: Option<&str>,
) -> Vec<AuditRecord> {
    let settings = org.audit_settings();
    if !settings.enabled {
        return Vec::new();
    }
    let entry =
        |action: &str, table: Option<String>, record: Option<String>, detail: Json| AuditRecord {
            action: action.to_owned(),
            table,
            record,
            user: user.map(str::to_owned),
            impersonator: impersonator.map(str::to_owned),
            detail,
        };
    if op.is_setup() {
        let mut detail = serde_json::to_value(op).unwrap_or(Json::Null);
        if let Some(old) = before {
            detail = json!({ "old": old, "new": detail });
        }
        return vec![entry(&op.name(), None, None, detail)];
    }
    let mut out = Vec::new();
    for change in changes {
        match change {
            Change::RecordCreated { record } => {
                let (table, key) = record_of(org, *record);
                if settings.table_on(&table) {
                    let fields: serde_json::Map<String, Json> = org
                        .record(*record)
                        .fields
                        .iter()
                        .filter(|(c, _)| settings.column_on(&table, c))
                        .map(|(c, v)| (c.clone(), to_json(v)))
                        .collect();
                    let owner = owner_name(org, org.record(*record).owner);
                    out.push(entry(
                        "create",
                        Some(table),
                        Some(key),
                        json!({ "owner": owner, "fields": fields }),
                    ));
                }
            }
            Change::RecordUpdated { record, columns } => {
                let (table, key) = record_of(org, *record);
                let changed: serde_json::Map<String, Json> = columns
                    .iter()
                    .filter(|(c, _, _)| settings.column_on(&table, c))
                    .map(|(c, old, new)| {
                        (
                            c.clone(),
                            json!({ "old": to_json(old), "new": to_json(new) }),
                        )
                    })
                    .collect();
                if !changed.is_empty() {
                    out.push(entry(
                        "update",
                        Some(table),
                        Some(key),
                        Json::Object(changed),
                    ));
                }
            }
            Change::RecordDeleted { record } => {
                let (table, key) = record_of(org, *record);
                if settings.table_on(&table) {
                    out.push(entry("delete", Some(table), Some(key), Json::Null));
                }
            }
            Change::OwnerChanged {
                record,
                old,
                new,
                old_unit,
                new_unit,
            } => {
                let (table, key) = record_of(org, *record);
                if settings.table_on(&table) {
                    let detail = json!({
                        "old_owner": owner_name(org, *old),
                        "new_owner": owner_name(org, *new),
                        "old_business_unit": org.units().name(*old_unit),
                        "new_business_unit": org.units().name(*new_unit),
                    });
                    out.push(entry("assign", Some(table), Some(key), detail));
                }
            }
            Change::RecordMoved {
                record,
                old_unit,
                new_unit,
            } => {
                let (table, key) = record_of(org, *record);
                if settings.table_on(&table) {
                    let detail = json!({ "old_business_unit": org.units().name(*old_unit), "new_business_unit": org.units().name(*new_unit) });
                    out.push(entry("move_record", Some(table), Some(key), detail));
                }
            }
            Change::ShareChanged {
                record,
                principal,
                old,
                new,
            } => {
                let (table, key) = record_of(org, *record);
                let action = if old.is_empty() {
                    "share"
                } else if new.is_empty() {
                    "unshare"
                } else {
                    "modify_share"
                };
                let detail = json!({
                    "principal": principal_name(org, *principal),
                    "old_rights": old.bits(),
                    "new_rights": new.bits(),
                    "old": old.dataverse_names(),
                    "new": new.dataverse_names(),
                });
                out.push(entry(action, Some(table), Some(key), detail));
            }
            Change::LookupChanged {
                record,
                relationship,
                old,
                new,
            } => {
                let (table, key) = record_of(org, *record);
                let rel = org.relationship(*relationship);
                let detail = json!({
                    "relationship": rel.name,
                    "lookup": rel.lookup,
                    "old": old.map(|r| org.record(r).key.clone()),
                    "new": new.map(|r| org.record(r).key.clone()),
                });
                let action = if new.is_some() {
                    "associate"
                } else {
                    "disassociate"
                };
                out.push(entry(action, Some(table), Some(key), detail));
            }
            Change::RoleAssigned { principal, role } | Change::RoleRemoved { principal, role } => {
                let action = if matches!(change, Change::RoleAssigned { .. }) {
                    "assign_role"
                } else {
                    "remove_role"
                };
                let (table, name) = match principal {
                    Principal::Team(t) => ("team", org.team(*t).name.clone()),
                    _ => ("systemuser", principal_name(org, *principal)),
                };
                let detail = json!({ "role": org.role(*role).name });
                out.push(entry(action, Some(table.to_owned()), Some(name), detail));
            }
            Change::TeamMemberAdded { team, user: member }
            | Change::TeamMemberRemoved { team, user: member } => {
                let action = if matches!(change, Change::TeamMemberAdded { .. }) {
                    "add_member"
                } else {
                    "remove_member"
                };
                let detail = json!({ "user": org.user(*member).name });
                out.push(entry(
                    action,
                    Some("team".to_owned()),
                    Some(org.team(*team).name.clone()),
                    detail,
                ));
            }
            Change::UserMoved {
                user: moved,
                old_unit,
                new_unit,
            } => {
                let detail = json!({ "old_business_unit": org.units().name(*old_unit), "new_business_unit": org.units().name(*new_unit) });
                out.push(entry(
                    "move_user",
                    Some("systemuser".to_owned()),
                    Some(org.user(*moved).name.clone()),
                    detail,
                ));
            }
            Change::ManagerChanged {
                user: target,
                old,
                new,
            } => {
                let name = |u: &Option<strata_engine::UserId>| u.map(|u| org.user(u).name.clone());
                let detail = json!({ "old": name(old), "new": name(new) });
                out.push(entry(
                    "set_manager",
                    Some("systemuser".to_owned()),
                    Some(org.user(*target).name.clone()),
                    detail,
                ));
            }
        }
    }
    out
}
