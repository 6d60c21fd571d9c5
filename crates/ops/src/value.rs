//! Column values to and from JSON.

use strata_engine::Value;

use crate::OpError;

/// A JSON value as a column value: null, boolean, integer, number or string.
pub fn from_json(column: &str, value: &serde_json::Value) -> Result<Value, OpError> {
    Ok(match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(f)) => Value::Float(f),
            (None, None) => {
                return Err(OpError::invalid(
                    "bad_value",
                    format!("column `{column}`: number out of range"),
                ));
            }
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            return Err(OpError::invalid(
                "bad_value",
                format!("column `{column}`: a value is null, a boolean, a number or a string"),
            ));
        }
    })
}

/// A column value as JSON.
#[must_use]
pub fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        Value::Text(s) => serde_json::Value::String(s.clone()),
    }
}

/// A decision as JSON: the answer, every grant path with its kind, and the readable text.
#[must_use]
pub fn decision_json(
    org: &strata_engine::Organization,
    d: &strata_engine::Decision,
) -> serde_json::Value {
    let paths: Vec<serde_json::Value> = d
        .paths
        .iter()
        .map(|p| serde_json::json!({ "kind": p.kind().name(), "text": org.describe_path(p) }))
        .collect();
    let denial = d.denial.as_ref().map(|x| match x {
        strata_engine::Denial::UserDisabled => "user_disabled",
        strata_engine::Denial::RecordDeleted => "record_deleted",
        strata_engine::Denial::NoPrivilege => "no_privilege",
        strata_engine::Denial::NoAccessPath { .. } => "no_access_path",
    });
    serde_json::json!({
        "allowed": d.allowed,
        "user": org.user(d.user).name,
        "privilege": d.privilege.name(),
        "table": org.table(d.table).name,
        "record": d.record.map(|r| org.record(r).key.to_string()),
        "paths": paths,
        "denial": denial,
        "would_grant": d.remedy.as_ref().map(|r| serde_json::json!({
            "depth": r.needed.name(),
            "roles": r.roles.iter().map(|x| org.role(*x).name.clone()).collect::<Vec<_>>(),
        })),
        "explanation": org.render_decision(d),
    })
}

/// An organisation's configuration as JSON (no records): units, tables, relationships, roles
/// with their grids, positions, users, teams, templates, profiles, apps, settings and audit
/// switches — what an administration console shows.
#[must_use]
pub fn model_json(org: &strata_engine::Organization) -> serde_json::Value {
    use serde_json::{Value as J, json};
    use strata_engine::{Depth, Ownership, Privilege, TeamType};
    let units = org.units();
    let unit_list: Vec<J> = units
        .ids()
        .map(|u| json!({ "name": units.name(u), "parent": units.parent(u).map(|p| units.name(p)) }))
        .collect();
    let tables: Vec<J> = org
        .table_ids()
        .map(|t| {
            let table = org.table(t);
            let columns: Vec<J> = table.columns.iter().map(|c| json!({ "name": c.name, "secured": c.secured })).collect();
            let ownership = match table.ownership {
                Ownership::UserOrTeam => "user_or_team",
                Ownership::Organization => "organization",
                Ownership::BusinessUnit => "business_unit",
            };
            json!({ "name": table.name, "ownership": ownership, "built_in": table.built_in, "columns": columns })
        })
        .collect();
    let relationships: Vec<J> = org
        .relationship_ids()
        .map(|r| {
            let rel = org.relationship(r);
            json!({ "name": rel.name, "parent": org.table(rel.parent).name, "child": org.table(rel.child).name,
                "lookup": rel.lookup, "cascade": format!("{:?}", rel.cascade) })
        })
        .collect();
    let roles: Vec<J> = org
        .role_ids()
        .map(|r| {
            let role = org.role(r);
            let grid: serde_json::Map<String, J> = role
                .privileges
                .iter()
                .map(|(t, depths)| {
                    let row: serde_json::Map<String, J> = Privilege::ALL
                        .into_iter()
                        .filter(|p| depths[p.index()] != Depth::None)
                        .map(|p| (p.name().to_owned(), J::String(depths[p.index()].name().to_owned())))
                        .collect();
                    (org.table(*t).name.clone(), J::Object(row))
                })
                .collect();
            json!({ "name": role.name, "business_unit": units.name(role.business_unit),
                "inheritance": if role.inheritance == strata_engine::Inheritance::TeamOnly { "team_only" } else { "user_and_team" },
                "system_administrator": role.system_administrator, "privileges": grid, "misc": role.misc,
                "deprecation": role.deprecation.as_ref().map(|d| json!({ "message": d.message,
                    "successors": d.successors.iter().map(|s| org.role(*s).name.as_str()).collect::<Vec<_>>() })) })
        })
        .collect();
    let users: Vec<J> = org
        .user_ids()
        .map(|u| {
            let user = org.user(u);
            let roles: Vec<J> = user
                .roles
                .iter()
                .map(|a| json!({ "role": org.role(a.role).name, "business_unit": a.business_unit.map(|b| units.name(b)) }))
                .collect();
            let teams: Vec<&str> = user.teams.iter().map(|t| org.team(*t).name.as_str()).collect();
            json!({ "name": user.name, "business_unit": units.name(user.business_unit), "roles": roles,
                "manager": user.manager.map(|m| org.user(m).name.clone()),
                "position": user.position.map(|p| org.position(p).name.clone()),
                "enabled": user.enabled, "teams": teams })
        })
        .collect();
    let teams: Vec<J> = org
        .team_ids()
        .map(|t| {
            let team = org.team(t);
            let kind = match team.kind {
                TeamType::Owner => "owner",
                TeamType::Access => "access",
                TeamType::SecurityGroup => "security_group",
                TeamType::OfficeGroup => "office_group",
            };
            let members: Vec<&str> = team.members.iter().map(|m| org.user(*m).name.as_str()).collect();
            let roles: Vec<&str> = team.roles.iter().map(|r| org.role(*r).name.as_str()).collect();
            json!({ "name": team.name, "type": kind, "business_unit": units.name(team.business_unit),
                "members": members, "roles": roles,
                "record": team.record_team.map(|(r, _)| org.record(r).key.to_string()),
                "template": team.record_team.map(|(_, tpl)| org.template(tpl).name.clone()) })
        })
        .collect();
    let profiles: Vec<J> = org
        .profile_ids()
        .map(|p| {
            let profile = org.profile(p);
            let members: Vec<String> = profile.members.iter().map(|m| org.principal_name(*m)).collect();
            let permissions: Vec<J> = profile
                .permissions
                .iter()
                .map(|c| json!({ "table": org.table(c.table).name, "column": c.column, "read": c.read, "update": c.update, "create": c.create }))
                .collect();
            json!({ "name": profile.name, "members": members, "permissions": permissions })
        })
        .collect();
    let settings = org.settings();
    let audit = org.audit_settings();
    json!({
        "business_units": unit_list,
        "tables": tables,
        "relationships": relationships,
        "roles": roles,
        "users": users,
        "teams": teams,
        "field_security_profiles": profiles,
        "settings": {
            "share_to_previous_owner_on_assign": settings.share_to_previous_owner_on_assign,
            "ownership_across_business_units": settings.ownership_across_business_units,
            "do_not_remove_roles_on_change_business_unit": settings.do_not_remove_roles_on_change_business_unit,
            "always_move_record_to_owner_business_unit": settings.always_move_record_to_owner_business_unit,
            "hierarchy": settings.hierarchy.as_ref().map(|h| json!({
                "model": format!("{:?}", h.model).to_lowercase(), "depth": h.depth,
                "managers_must_be_in_same_or_parent_business_unit": h.managers_must_be_in_same_or_parent_business_unit })),
        },
        "audit": { "enabled": audit.enabled, "retention_days": audit.retention_days, "user_access": audit.user_access,
            "tables": audit.tables, "columns_off": audit.columns_off },
    })
}

/// What a user can do: every privilege per table with its best depth and where each grant
/// comes from, miscellaneous privileges, System Administrator status.
#[must_use]
pub fn privileges_json(
    org: &strata_engine::Organization,
    user: strata_engine::UserId,
) -> serde_json::Value {
    use serde_json::{Value as J, json};
    let mut tables: serde_json::Map<String, J> = serde_json::Map::new();
    for g in org.all_grants(user) {
        let table = tables
            .entry(org.table(g.table).name.clone())
            .or_insert_with(|| json!({}));
        let via = match g.via {
            strata_engine::Via::Direct => J::Null,
            strata_engine::Via::Team { team, team_only } => {
                json!({ "team": org.team(team).name, "team_only": team_only })
            }
        };
        let entry = json!({ "depth": g.depth.name(), "role": org.role(g.role).name, "from_unit": org.units().name(g.anchor), "via": via });
        if let Some(list) = table.get_mut(g.privilege.name()).and_then(J::as_array_mut) {
            list.push(entry);
        } else {
            table[g.privilege.name()] = J::Array(vec![entry]);
        }
    }
    let u = org.user(user);
    let mut misc: Vec<String> = u
        .roles
        .iter()
        .map(|a| a.role)
        .chain(
            u.teams
                .iter()
                .flat_map(|t| org.team(*t).roles.iter().copied()),
        )
        .flat_map(|r| org.role(r).misc.clone())
        // D49: a miscellaneous privilege the user's licences do not allow is not held.
        .filter(|m| org.system_administrator(user).is_some() || org.licence_allows_misc(user, m))
        .collect();
    misc.sort();
    misc.dedup();
    json!({
        "user": u.name,
        "enabled": u.enabled,
        "business_unit": org.units().name(u.business_unit),
        "system_administrator": org.system_administrator(user).map(|a| org.role(a.role).name.clone()),
        "tables": tables,
        "misc": misc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (fuzz/regressions/cursor): a float written as JSON must read back as
    /// the same float — records, the operation log and cursors carry values as JSON.
    #[test]
    fn floats_read_back_as_themselves() -> Result<(), Box<dyn std::error::Error>> {
        for x in [
            7.777_777_777_777_778e189,
            7.777_777_777_777_778e28,
            0.1,
            1e308,
            -5e-324,
        ] {
            let text = to_json(&Value::Float(x)).to_string();
            let back = from_json("c", &serde_json::from_str(&text)?)?;
            assert_eq!(back, Value::Float(x), "{text}");
        }
        Ok(())
    }
}
