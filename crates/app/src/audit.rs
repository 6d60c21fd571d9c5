//! Audit entries from what an operation changed (D12), user access entries, and the audit as a
//! reader may see it.

use serde_json::{Value as Json, json};
use strata_engine::{Change, Organization, Owner, Principal, Privilege, RecordId, UserId};
use strata_ops::{Operation, to_json};
use strata_store::{AuditEntry, AuditRecord};

pub use crate::actor::{ROOT_ACTOR, SYSTEM_ACTOR};

fn record_of(org: &Organization, r: strata_engine::RecordId) -> (String, String) {
    let rec = org.record(r);
    (org.table(rec.table).name.clone(), rec.key.to_string())
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

/// What an operation is about to replace, for the audit's old values: a role's privileges, a
/// user's columns, enabled state or position.
pub fn before(org: &Organization, op: &Operation) -> Option<Json> {
    match op {
        Operation::SetRolePrivileges { role, .. } => role_before(org, role),
        Operation::SetRolePrivilege { role, .. } | Operation::SetRoleMiscPrivilege { role, .. } => {
            role_before(org, role)
        }
        // The holders that move, so that the one audit entry names them.
        Operation::ReplaceRole { role, .. } | Operation::DeleteRole { role, .. } => Some(
            strata_ops::role_holders_json(org, org.role_id(role)?, |_| true),
        ),
        Operation::DeprecateRole { role, .. } | Operation::RenameRole { role, .. } => {
            Some(strata_ops::role_json(org, org.role_id(role)?))
        }
        Operation::SetUserFields { user, fields } => {
            let u = org.user(org.user_id(user)?);
            let record = org.record(u.record);
            let old: serde_json::Map<String, Json> = fields
                .keys()
                .map(|c| (c.clone(), to_json(record.field(c))))
                .collect();
            Some(Json::Object(old))
        }
        Operation::SetUserEnabled { user, .. } => Some(json!(org.user(org.user_id(user)?).enabled)),
        Operation::SetPosition { user, .. } => {
            let u = org.user(org.user_id(user)?);
            Some(json!(u.position.map(|p| org.position(p).name.clone())))
        }
        Operation::SetUserLicence { user, .. } => {
            let held: Vec<&str> = org
                .user_licences(org.user_id(user)?)
                .iter()
                .map(|l| l.name.as_str())
                .collect();
            Some(json!(held))
        }
        _ => None,
    }
}

fn role_before(org: &Organization, role: &str) -> Option<Json> {
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

/// The audit entry of a setup operation: the record it is about (a user's, a team's, an
/// inserted record) when there is one, and old → new values where it replaces some.
fn setup_entry(
    org: &Organization,
    op: &Operation,
    before: Option<Json>,
) -> Option<(Option<String>, Option<String>, Json)> {
    let user_entry = |name: &str, detail: Json| {
        Some((Some("systemuser".to_owned()), Some(name.to_owned()), detail))
    };
    match op {
        Operation::SetUserFields { user, fields } => {
            let settings = org.audit_settings();
            let old = before.unwrap_or(Json::Null);
            let changed: serde_json::Map<String, Json> = fields
                .iter()
                // Changes to users are security changes: audited whenever the environment
                // audits, except the columns switched off.
                .filter(|(c, _)| !settings.columns_off.contains(&format!("systemuser.{c}")))
                .filter(|(c, new)| old.get(c.as_str()) != Some(*new))
                .map(|(c, new)| {
                    (
                        c.clone(),
                        json!({ "old": old.get(c.as_str()).cloned().unwrap_or(Json::Null), "new": new }),
                    )
                })
                .collect();
            if changed.is_empty() {
                return None;
            }
            user_entry(user, Json::Object(changed))
        }
        Operation::SetUserEnabled { user, enabled } => {
            user_entry(user, json!({ "old": before, "new": enabled }))
        }
        Operation::SetPosition { user, position } => {
            user_entry(user, json!({ "old": before, "new": position }))
        }
        Operation::SetUserLicence { user, licences } => {
            user_entry(user, json!({ "old": before, "new": licences }))
        }
        Operation::AddUser { name, .. } => {
            user_entry(name, serde_json::to_value(op).unwrap_or(Json::Null))
        }
        // The unit's entry under its new name, the name as old → new.
        Operation::RenameBusinessUnit { name, new_name } if name != new_name => Some((
            Some("businessunit".to_owned()),
            Some(new_name.clone()),
            json!({ "name": { "old": name, "new": new_name } }),
        )),
        Operation::RenameBusinessUnit { .. } => None,
        Operation::AddTeam { name, .. } => Some((
            Some("team".to_owned()),
            Some(name.clone()),
            serde_json::to_value(op).unwrap_or(Json::Null),
        )),
        Operation::InsertRecord { id, table, .. } => Some((
            Some(table.clone()),
            Some(id.clone()),
            serde_json::to_value(op).unwrap_or(Json::Null),
        )),
        Operation::AddFieldShare { record, .. } => {
            let table = org
                .record_id(record)
                .map(|r| org.table(org.record(r).table).name.clone());
            Some((
                table,
                Some(record.clone()),
                serde_json::to_value(op).unwrap_or(Json::Null),
            ))
        }
        _ => {
            let mut detail = serde_json::to_value(op).unwrap_or(Json::Null);
            if let Some(old) = before {
                detail = json!({ "old": old, "new": detail });
            }
            Some((None, None, detail))
        }
    }
}

/// [`strata_engine::AuditSettings::column_on`] without writing `table.column` when no column
/// is switched off (the usual case: every audited create and update asks it per column).
fn column_on(settings: &strata_engine::AuditSettings, table: &str, column: &str) -> bool {
    settings.table_on(table)
        && (settings.columns_off.is_empty() || settings.column_on(table, column))
}

/// The audit entries of one operation a batch or a load applied, by `actor`.
pub fn entries_by(
    org: &Organization,
    op: &Operation,
    before: Option<Json>,
    changes: &[Change],
    actor: &crate::Actor,
) -> Vec<AuditRecord> {
    entries(
        org,
        op,
        before,
        changes,
        Some(actor.audited(op)),
        actor.impersonator(),
    )
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
        return setup_entry(org, op, before)
            .map(|(table, record, detail)| entry(&op.name(), table, record, detail))
            .into_iter()
            .collect();
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
                        .filter(|(c, _)| column_on(settings, &table, c))
                        .map(|(c, v)| (c.to_string(), to_json(v)))
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
                    .filter(|(c, _, _)| column_on(settings, &table, c))
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
                    "old": old.map(|r| org.record(r).key.to_string()),
                    "new": new.map(|r| org.record(r).key.to_string()),
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

/// The record an audit entry is about: a record by id, a user's or a team's own record by name.
fn entry_record(org: &Organization, table: &str, key: &str) -> Option<RecordId> {
    match table {
        "systemuser" => org.user_id(key).map(|u| org.user(u).record),
        _ => org
            .record_id(key)
            .filter(|r| org.table(org.record(*r).table).name == table),
    }
}

/// An audit entry as the reader sees it (D27 for the audit): `None` when the reader may not
/// read the record it is about (a record that no longer exists: unless the reader's Read on
/// its table has organization depth; entries about no record are for System Administrators
/// and the root key); otherwise the entry with every secured column value the reader may not
/// read on that record replaced by null.
///
/// `readers` are the users whose view bounds the read: the acting user, and the impersonator
/// (none for the root key).
pub fn as_seen_by(
    org: &Organization,
    readers: &[UserId],
    mut entry: AuditEntry,
) -> Option<AuditEntry> {
    if readers
        .iter()
        .all(|u| org.system_administrator(*u).is_some())
    {
        return Some(entry);
    }
    let (Some(table), Some(key)) = (&entry.record.table, &entry.record.record) else {
        return None;
    };
    let table_id = org.table_id(table)?;
    let record = entry_record(org, table, key);
    match record {
        Some(r) if readers.iter().all(|u| org.check(*u, Privilege::Read, r)) => {}
        Some(_) => return None,
        // A record that no longer exists: for readers whose Read reaches every record of its
        // table (organization depth).
        None if readers.iter().all(|u| {
            org.max_depth(*u, table_id, Privilege::Read) == strata_engine::Depth::Organization
        }) => {}
        None => return None,
    }
    let hidden = |column: &str| {
        org.table(table_id).is_secured(column)
            && readers
                .iter()
                .any(|u| !org.column_access(*u, table_id, column, record).read)
    };
    let mask = |map: &mut serde_json::Map<String, Json>, nested: bool| {
        for (column, value) in map.iter_mut() {
            if hidden(column) {
                *value = if nested {
                    json!({ "old": null, "new": null })
                } else {
                    Json::Null
                };
            }
        }
    };
    match entry.record.action.as_str() {
        "create" | "insert_record" => {
            if let Some(fields) = entry
                .record
                .detail
                .get_mut("fields")
                .and_then(Json::as_object_mut)
            {
                mask(fields, false);
            }
        }
        "update" | "set_user_fields" => {
            if let Some(columns) = entry.record.detail.as_object_mut() {
                mask(columns, true);
            }
        }
        _ => {}
    }
    Some(entry)
}

/// Writes the user access entry of `user` (D12: the first request of a user in each interval,
/// when the organisation audits user access), in a transaction of its own.
///
/// # Errors
///
/// The store's.
pub fn record_user_access(
    store: &dyn strata_store::Store,
    org: &str,
    user: &str,
    interval: std::time::Duration,
    retention_days: i64,
) -> Result<(), crate::AppError> {
    let record = AuditRecord {
        action: "user_access".to_owned(),
        table: Some("systemuser".to_owned()),
        record: Some(user.to_owned()),
        user: Some(user.to_owned()),
        impersonator: None,
        detail: json!({ "interval_hours": interval.as_secs() / 3600 }),
    };
    let now = crate::now_ms();
    store.write(org, &mut |tx| {
        tx.append_audit(&record, now, retention_days).map(|_| ())
    })?;
    Ok(())
}
