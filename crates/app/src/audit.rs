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

/// A created record's audited columns, in `String` order (as `serde_json::Map`, a
/// `BTreeMap`, keeps its keys).
fn audited_fields<'a>(
    rec: &'a strata_engine::Record,
    settings: &strata_engine::AuditSettings,
    table: &str,
) -> Vec<(&'a str, &'a strata_engine::Value)> {
    let mut fields: Vec<(&str, &strata_engine::Value)> = rec
        .fields
        .iter()
        .filter(|(c, _)| column_on(settings, table, c))
        .map(|(c, v)| (&**c, v))
        .collect();
    fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
    fields
}

/// A create's detail, `{"fields":{column: value, …},"owner":name}` with the audited columns,
/// written as `json!(…).to_string()` writes that value (keys sorted, compact) without making
/// the value: one per record of a bulk load. `create_detail_is_the_json_value_s_text` holds
/// it to the value's text ([`create_detail_value`]).
fn create_detail(fields: &[(&str, &strata_engine::Value)], owner: &Json) -> String {
    use std::io::Write as _;
    let mut out: Vec<u8> = Vec::with_capacity(32 + fields.len() * 24);
    out.extend_from_slice(b"{\"fields\":{");
    for (i, (column, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, column);
        out.push(b':');
        let _ = match value {
            strata_engine::Value::Null => out.write_all(b"null"),
            strata_engine::Value::Bool(b) => write!(out, "{b}"),
            strata_engine::Value::Int(n) => write!(out, "{n}"),
            strata_engine::Value::Text(t) => serde_json::to_writer(&mut out, t).map_err(Into::into),
            float => serde_json::to_writer(&mut out, &to_json(float)).map_err(Into::into),
        };
    }
    out.extend_from_slice(b"},\"owner\":");
    let _ = serde_json::to_writer(&mut out, owner);
    out.push(b'}');
    // serde_json and the digits above write UTF-8 only; were it otherwise, the value's text.
    String::from_utf8(out).unwrap_or_else(|_| create_detail_value(fields, owner).to_string())
}

/// The value a create's detail stands for.
fn create_detail_value(fields: &[(&str, &strata_engine::Value)], owner: &Json) -> Json {
    let fields: serde_json::Map<String, Json> = fields
        .iter()
        .map(|(c, v)| ((*c).to_owned(), to_json(v)))
        .collect();
    json!({ "owner": owner, "fields": fields })
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
            detail_text: None,
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
                    // Written straight as text: a bulk load makes one of these per record.
                    let rec = org.record(*record);
                    let detail = create_detail(
                        &audited_fields(rec, settings, &table),
                        &owner_name(org, rec.owner),
                    );
                    let mut e = entry("create", Some(table), Some(key), Json::Null);
                    e.detail_text = Some(detail);
                    out.push(e);
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
        detail_text: None,
    };
    let now = crate::now_ms();
    store.write(org, &mut |tx| {
        tx.append_audit(&record, now, retention_days).map(|_| ())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The create's detail written as text is the text of the value it stands for, for any
    /// values: escapes, control characters, non-ASCII, surrogate pairs, extreme integers,
    /// floats, booleans; columns in every order, one left out of the audit; owned and unowned
    /// records.
    #[test]
    fn create_detail_is_the_json_value_s_text() {
        let ops: Vec<Operation> = serde_json::from_value(json!([
            {"op": "add_business_unit", "name": "Root"},
            {"op": "add_table", "name": "thing", "columns": [
                {"name": "b"}, {"name": "a"}, {"name": "ab"}, {"name": "a_b"}, {"name": "z9"},
                {"name": "hidden"}]},
            {"op": "add_table", "name": "place", "ownership": "organization",
             "columns": [{"name": "b"}, {"name": "a"}]},
            {"op": "set_audit", "enabled": true, "tables": ["thing", "place"],
             "columns_off": ["thing.hidden"]},
            {"op": "add_user", "name": "Zoë \"q\""},
        ]))
        .unwrap();
        let mut org = Organization::new();
        strata_ops::apply_all(&mut org, &ops).unwrap();
        let texts = [
            "",
            "plain",
            "quote \" and \\ back",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}\u{7f}",
            "é ü ß",
            "😀 pair",
            "\u{2028}\u{2029}",
            "</script>",
            "{\"json\":1}",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut creates = Vec::new();
        for i in 0..400 {
            let (table, columns): (&str, &[&str]) = if i % 5 == 0 {
                ("place", &["b", "a"])
            } else {
                ("thing", &["z9", "hidden", "b", "a_b", "ab", "a"])
            };
            let mut fields = serde_json::Map::new();
            for column in columns {
                let (kind, pick, sign) = (next() % 8, next(), next() % 2 == 0);
                let value = match kind {
                    0 => json!(texts[(pick % texts.len() as u64) as usize]),
                    1 => json!(pick as i64),
                    2 => json!([i64::MIN, i64::MAX, 0, -1][(pick % 4) as usize]),
                    3 => json!(
                        f64::from_bits(pick % 0x7ff0_0000_0000_0000)
                            * if sign { -1.0 } else { 1.0 }
                    ),
                    4 => json!([0.1, -0.0, 1e300, 5e-324, 1.5][(pick % 5) as usize]),
                    5 => json!(sign),
                    6 => Json::Null,
                    _ => continue,
                };
                fields.insert((*column).to_owned(), value);
            }
            let mut create =
                json!({"op": "create", "table": table, "id": format!("r{i}"), "fields": fields});
            if table == "thing" {
                create["owner"] = json!("Zoë \"q\"");
            }
            creates.push(serde_json::from_value::<Operation>(create).unwrap());
        }
        strata_ops::apply_all(&mut org, &creates).unwrap();
        let settings = org.audit_settings();
        let mut wide = 0;
        for i in 0..400 {
            let record = org.record_id(&format!("r{i}")).unwrap();
            let table = org.table(org.record(record).table).name.clone();
            let rec = org.record(record);
            let (fields, owner) = (
                audited_fields(rec, settings, &table),
                owner_name(&org, rec.owner),
            );
            let text = create_detail(&fields, &owner);
            let value = create_detail_value(&fields, &owner);
            assert_eq!(text, value.to_string(), "r{i}");
            assert_eq!(serde_json::from_str::<Json>(&text).unwrap(), value, "r{i}");
            assert!(!text.contains("\"hidden\""), "r{i}: {text}");
            wide += usize::from(fields.len() >= 3);
        }
        // Not a test of empty details: most records carry several audited columns.
        assert!(
            wide > 200,
            "{wide} records with three audited columns or more"
        );
    }
}
