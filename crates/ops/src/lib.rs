//! Operations on an organisation, by name: the serializable commands shared by the scenario
//! runner, the store's operation log, the server and the CLI.
//!
//! Every change to an organisation is an [`Operation`]. Applying the same operations in the same
//! order to an empty organisation gives the same state, which is how the store rebuilds memory
//! and how several nodes follow one log. Entities are named as in scenario files: users, teams
//! and units by name, records by id, principals as `alice`, `team:Sales` or `organization`.

mod app_answers;
mod apply;
mod authorize;
mod batch;
mod filter;
mod licences;
mod roles;
mod rules;
mod value;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use app_answers::{
    app_access_json, app_access_text, app_block_text, app_diagnosis_json, app_json, apps_json,
    column_holders_json, column_source_json, column_verdict_json, role_set_error, role_set_json,
};
pub use apply::{
    apply, apply_all, apply_all_at, apply_all_observed, apply_as, apply_on_behalf,
    resolve_principal,
};
pub use authorize::authorize_setup;
pub use batch::{BatchStep, OpenBatch, apply_batch, apply_batch_open, authorize_as};
pub use filter::{
    MAX_FILTER_CHARS, MAX_FILTER_DEPTH, MAX_FILTER_TERMS, MAX_IN_VALUES, MAX_ORDER_COLUMNS,
    SyntaxError, UnprintableFilter, parse_filter, parse_order, print_filter,
};
pub use licences::{
    LicenceOp, catalogue_json, exceeds_json, licence, licence_op, report_json, report_totals_json,
    user_report_json,
};
pub use roles::{
    assigners_json, compare_roles_json, compare_users_json, role_holders_json, role_json,
};
pub use rules::{apply_checked, rule_json, violation_json};
pub use value::{decision_json, from_json, model_json, privileges_json, to_json};

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OpError {
    /// Denied (a privilege is missing) or invalid (nobody may do this).
    pub kind: OpErrorKind,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What is wrong, naming the entity.
    pub message: String,
}

/// The two kinds of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpErrorKind {
    /// The acting user lacks a privilege or access.
    Denied,
    /// The request cannot be honoured whoever asks.
    Invalid,
}

impl OpError {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        OpError {
            kind: OpErrorKind::Invalid,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn unknown(kind: &str, name: &str) -> Self {
        Self::invalid("unknown_reference", format!("unknown {kind} `{name}`"))
    }
}

impl From<strata_engine::ActionError> for OpError {
    fn from(e: strata_engine::ActionError) -> Self {
        match &e {
            strata_engine::ActionError::Denied(m) => OpError {
                kind: OpErrorKind::Denied,
                code: "denied",
                message: m.clone(),
            },
            strata_engine::ActionError::Invalid(inner) => OpError {
                kind: OpErrorKind::Invalid,
                code: inner.code(),
                message: inner.to_string(),
            },
        }
    }
}

impl From<strata_engine::ModelError> for OpError {
    fn from(e: strata_engine::ModelError) -> Self {
        OpError {
            kind: OpErrorKind::Invalid,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

fn yes() -> bool {
    true
}

fn thirty() -> i64 {
    30
}

fn three() -> u8 {
    3
}

/// Hierarchy security settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HierarchyOp {
    /// `manager` or `position`.
    pub model: String,
    /// Levels below the manager that are reachable.
    #[serde(default = "three")]
    pub depth: u8,
    /// Tables; absent = every user-or-team owned table.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// Manager model only.
    #[serde(default = "yes")]
    pub managers_must_be_in_same_or_parent_business_unit: bool,
}

/// Organisation settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsOp {
    #[serde(default)]
    pub share_to_previous_owner_on_assign: bool,
    #[serde(default)]
    pub ownership_across_business_units: bool,
    #[serde(default)]
    pub do_not_remove_roles_on_change_business_unit: bool,
    #[serde(default = "yes")]
    pub always_move_record_to_owner_business_unit: bool,
    #[serde(default)]
    pub hierarchy: Option<HierarchyOp>,
}

impl Default for SettingsOp {
    fn default() -> Self {
        SettingsOp {
            share_to_previous_owner_on_assign: false,
            ownership_across_business_units: false,
            do_not_remove_roles_on_change_business_unit: false,
            always_move_record_to_owner_business_unit: true,
            hierarchy: None,
        }
    }
}

/// A column of a new table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnOp {
    pub name: String,
    #[serde(default)]
    pub secured: bool,
}

/// A custom cascade configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CascadeOp {
    #[serde(default)]
    pub assign: Option<String>,
    #[serde(default)]
    pub share: Option<String>,
    #[serde(default)]
    pub unshare: Option<String>,
    #[serde(default)]
    pub reparent: Option<String>,
    #[serde(default)]
    pub delete: Option<String>,
}

/// A column permission of a field security profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionOp {
    pub table: String,
    pub column: String,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub update: bool,
    #[serde(default)]
    pub create: bool,
}

/// Column values: JSON null, booleans, numbers and strings.
pub type Fields = BTreeMap<String, serde_json::Value>;

/// One change to an organisation. `as` names the acting user of an action; absent means the
/// system (no authorization). Setup operations are system operations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Replace the settings.
    Settings(SettingsOp),
    /// Replace the audit switches: the environment, the audited tables, the columns left out.
    SetAudit {
        enabled: bool,
        #[serde(default = "thirty")]
        retention_days: i64,
        #[serde(default)]
        user_access: bool,
        #[serde(default)]
        tables: Vec<String>,
        /// `table.column`
        #[serde(default)]
        columns_off: Vec<String>,
    },
    /// Add a business unit (no parent = the root).
    AddBusinessUnit {
        name: String,
        #[serde(default)]
        parent: Option<String>,
    },
    /// Move a business unit and its subtree.
    MoveBusinessUnit { name: String, parent: String },
    /// Rename a business unit (`new_name` unique among units, as for a new unit).
    RenameBusinessUnit { name: String, new_name: String },
    /// Add a table (or declare columns of a built-in table).
    AddTable {
        name: String,
        #[serde(default)]
        ownership: Option<String>,
        #[serde(default)]
        columns: Vec<ColumnOp>,
        /// The Web API's entity set name (default: the logical name and `s`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entity_set: Option<String>,
    },
    /// Add columns to an existing table (customization: System Administrators).
    AddColumns {
        table: String,
        columns: Vec<ColumnOp>,
    },
    /// Add a relationship.
    AddRelationship {
        name: String,
        parent: String,
        child: String,
        lookup: String,
        behavior: String,
        #[serde(default)]
        cascade: Option<CascadeOp>,
    },
    /// Add a role: `privileges` maps table → privilege → depth.
    AddRole {
        name: String,
        #[serde(default)]
        business_unit: Option<String>,
        #[serde(default)]
        inheritance: Option<String>,
        #[serde(default)]
        system_administrator: bool,
        #[serde(default)]
        privileges: BTreeMap<String, BTreeMap<String, String>>,
        #[serde(default)]
        misc: Vec<String>,
    },
    /// Replace a role's privilege grid and miscellaneous privileges.
    SetRolePrivileges {
        role: String,
        #[serde(default)]
        privileges: BTreeMap<String, BTreeMap<String, String>>,
        #[serde(default)]
        misc: Vec<String>,
    },
    /// Enable or disable a user.
    SetUserEnabled { user: String, enabled: bool },
    /// Replace the roles associated with an app.
    SetAppRoles { app: String, roles: Vec<String> },
    /// Add a position.
    AddPosition {
        name: String,
        #[serde(default)]
        parent: Option<String>,
    },
    /// Add a user.
    AddUser {
        name: String,
        #[serde(default)]
        business_unit: Option<String>,
        #[serde(default = "yes")]
        enabled: bool,
    },
    /// Set columns of a user's own record (system).
    SetUserFields { user: String, fields: Fields },
    /// Set or clear a user's position.
    SetPosition {
        user: String,
        #[serde(default)]
        position: Option<String>,
    },
    /// Add a team: `type` is owner, access, security_group or office_group.
    AddTeam {
        name: String,
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        business_unit: Option<String>,
    },
    /// Add an access team template.
    AddTemplate {
        name: String,
        table: String,
        rights: Vec<String>,
    },
    /// Insert a record as the system (setup and import: any unit, no checks of privileges).
    InsertRecord {
        id: String,
        table: String,
        #[serde(default)]
        owner: Option<String>,
        #[serde(default)]
        business_unit: Option<String>,
        #[serde(default)]
        state: Option<String>,
        #[serde(default)]
        fields: Fields,
    },
    /// Add a field security profile.
    AddProfile {
        name: String,
        #[serde(default)]
        members: Vec<String>,
        #[serde(default)]
        permissions: Vec<PermissionOp>,
    },
    /// Share one secured column of one record (system).
    AddFieldShare {
        record: String,
        column: String,
        principal: String,
        #[serde(default)]
        read: bool,
        #[serde(default)]
        update: bool,
    },
    /// Add an app associated with roles.
    AddApp { name: String, roles: Vec<String> },
    /// Create a record (D1).
    Create {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        table: String,
        id: String,
        #[serde(default)]
        owner: Option<String>,
        #[serde(default)]
        business_unit: Option<String>,
        #[serde(default)]
        state: Option<String>,
        #[serde(default)]
        lookups: BTreeMap<String, String>,
        #[serde(default)]
        fields: Fields,
    },
    /// Update columns.
    Update {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
        fields: Fields,
    },
    /// Delete a record (with its delete cascade).
    Delete {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
    },
    /// Assign a record to a new owner.
    Assign {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
        owner: String,
    },
    /// Share (GrantAccess: adds rights).
    Share {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
        principal: String,
        rights: Vec<String>,
    },
    /// Modify a share (ModifyAccess: replaces rights).
    ModifyShare {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
        principal: String,
        rights: Vec<String>,
    },
    /// Revoke a share.
    Revoke {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
        principal: String,
    },
    /// Set a lookup (reparent).
    Associate {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
        lookup: String,
        parent: String,
    },
    /// Clear a lookup.
    Disassociate {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
        lookup: String,
    },
    /// Add a user to a record's access team.
    AddAccessTeamMember {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
        template: String,
        user: String,
    },
    /// Remove a user from a record's access team.
    RemoveAccessTeamMember {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        record: String,
        template: String,
        user: String,
    },
    /// Assign a role to a user or a team.
    AssignRole {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        principal: String,
        role: String,
        #[serde(default)]
        business_unit: Option<String>,
    },
    /// Remove a role from a user or a team.
    RemoveRole {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        principal: String,
        role: String,
    },
    /// Add a member to a team.
    AddTeamMember {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        team: String,
        user: String,
    },
    /// Remove a member from a team.
    RemoveTeamMember {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        team: String,
        user: String,
    },
    /// Move a user to another unit (D13).
    MoveUser {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        user: String,
        business_unit: String,
    },
    /// Set or clear a user's manager.
    SetManager {
        #[serde(rename = "as", default)]
        actor: Option<String>,
        user: String,
        #[serde(default)]
        manager: Option<String>,
    },
    /// Replace the table privileges an app's work needs (D51): table → privilege → the least
    /// depth that does (`user` for Basic).
    SetAppNeeds {
        app: String,
        #[serde(default)]
        needs: BTreeMap<String, BTreeMap<String, String>>,
    },
    /// Rename a role (not the System Administrator role).
    RenameRole { role: String, name: String },
    /// Copy a role under a new name: same grid, miscellaneous privileges, unit, inheritance.
    CopyRole { role: String, name: String },
    /// Delete a role: refused while it is held or associated with apps, unless `replacement`
    /// names the role every holder and app moves to.
    DeleteRole {
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replacement: Option<String>,
    },
    /// Deprecate a role (assigning it is then refused, naming the successors), or take the
    /// deprecation back with `deprecated: false`.
    DeprecateRole {
        role: String,
        #[serde(default = "yes")]
        deprecated: bool,
        #[serde(default)]
        message: String,
        #[serde(default)]
        successors: Vec<String>,
    },
    /// Replace role `role` by `replacement` for every user and team holding it.
    ReplaceRole { role: String, replacement: String },
    /// Set one cell of a role's grid: one privilege's depth on one table.
    SetRolePrivilege {
        role: String,
        table: String,
        privilege: String,
        depth: String,
    },
    /// Give a role one miscellaneous privilege (`held: true`) or take it away (D82), keeping the
    /// grid and the other miscellaneous privileges.
    SetRoleMiscPrivilege {
        role: String,
        privilege: String,
        #[serde(default = "yes")]
        held: bool,
    },
    /// Add a role rule (D45–D47): exactly one of `requires` (the role needs one of these
    /// roles), `excludes` (never with that role) and `direct_only: true` (assigned to the user
    /// directly, not through a team).
    AddRoleRule {
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requires: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        excludes: Option<String>,
        #[serde(default, skip_serializing_if = "rules::is_false")]
        direct_only: bool,
    },
    /// Remove the role rule in force that says this (written as for `add_role_rule`).
    RemoveRoleRule {
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requires: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        excludes: Option<String>,
        #[serde(default, skip_serializing_if = "rules::is_false")]
        direct_only: bool,
    },
    /// Add a licence to the catalogue (seed 003; the first licence turns licensing on, D48).
    AddLicence(LicenceOp),
    /// Replace a licence's price and use rights.
    SetLicence(LicenceOp),
    /// Remove a licence from the catalogue (refused while a user holds it).
    RemoveLicence { name: String },
    /// Set the licences a user holds (an empty list takes them away).
    SetUserLicence { user: String, licences: Vec<String> },
}

/// [`Operation::Create`]'s fields with its tag, read from a JSON value without the buffering
/// an internally tagged enum costs ([`Operation::create_from_value`]); the same fields, types,
/// defaults and refusal of unknown fields as the variant.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateForm {
    #[allow(dead_code, reason = "read to be accepted: the tag")]
    op: CreateTag,
    #[serde(rename = "as", default)]
    actor: Option<String>,
    table: String,
    id: String,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    business_unit: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    lookups: BTreeMap<String, String>,
    #[serde(default)]
    fields: Fields,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum CreateTag {
    Create,
}

/// Matches the actions (the operations with an `as` slot), binding the slot.
macro_rules! actor_slot {
    ($op:expr, $slot:ident => $then:expr, $otherwise:expr) => {
        match $op {
            Operation::Create { actor: $slot, .. }
            | Operation::Update { actor: $slot, .. }
            | Operation::Delete { actor: $slot, .. }
            | Operation::Assign { actor: $slot, .. }
            | Operation::Share { actor: $slot, .. }
            | Operation::ModifyShare { actor: $slot, .. }
            | Operation::Revoke { actor: $slot, .. }
            | Operation::Associate { actor: $slot, .. }
            | Operation::Disassociate { actor: $slot, .. }
            | Operation::AddAccessTeamMember { actor: $slot, .. }
            | Operation::RemoveAccessTeamMember { actor: $slot, .. }
            | Operation::AssignRole { actor: $slot, .. }
            | Operation::RemoveRole { actor: $slot, .. }
            | Operation::AddTeamMember { actor: $slot, .. }
            | Operation::RemoveTeamMember { actor: $slot, .. }
            | Operation::MoveUser { actor: $slot, .. }
            | Operation::SetManager { actor: $slot, .. } => $then,
            _ => $otherwise,
        }
    };
}

impl Operation {
    /// A `create` read from its JSON value the quick way (a bulk load sends thousands): what
    /// deserializing an [`Operation`] from `value` gives, or `None` for any other value and for
    /// any the quick way refuses — those go the general way, which names the problem.
    #[must_use]
    pub fn create_from_value(value: &serde_json::Value) -> Option<Operation> {
        if value.get("op").and_then(serde_json::Value::as_str) != Some("create") {
            return None;
        }
        let f = CreateForm::deserialize(value).ok()?;
        Some(Operation::Create {
            actor: f.actor,
            table: f.table,
            id: f.id,
            owner: f.owner,
            business_unit: f.business_unit,
            state: f.state,
            lookups: f.lookups,
            fields: f.fields,
        })
    }

    /// Whether this is a setup operation (system only, applied in a setup session).
    #[must_use]
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            Operation::Settings(_)
                | Operation::SetAudit { .. }
                | Operation::AddBusinessUnit { .. }
                | Operation::MoveBusinessUnit { .. }
                | Operation::RenameBusinessUnit { .. }
                | Operation::AddTable { .. }
                | Operation::AddColumns { .. }
                | Operation::AddRelationship { .. }
                | Operation::AddRole { .. }
                | Operation::AddPosition { .. }
                | Operation::SetRolePrivileges { .. }
                | Operation::SetUserEnabled { .. }
                | Operation::SetAppRoles { .. }
                | Operation::AddUser { .. }
                | Operation::SetUserFields { .. }
                | Operation::SetPosition { .. }
                | Operation::AddTeam { .. }
                | Operation::AddTemplate { .. }
                | Operation::InsertRecord { .. }
                | Operation::AddProfile { .. }
                | Operation::AddFieldShare { .. }
                | Operation::AddApp { .. }
                | Operation::SetAppNeeds { .. }
                | Operation::RenameRole { .. }
                | Operation::CopyRole { .. }
                | Operation::DeleteRole { .. }
                | Operation::DeprecateRole { .. }
                | Operation::ReplaceRole { .. }
                | Operation::SetRolePrivilege { .. }
                | Operation::SetRoleMiscPrivilege { .. }
                | Operation::AddRoleRule { .. }
                | Operation::RemoveRoleRule { .. }
                | Operation::AddLicence(_)
                | Operation::SetLicence(_)
                | Operation::RemoveLicence { .. }
                | Operation::SetUserLicence { .. }
        )
    }

    /// The acting user named by an action (`None` for the system and for setup operations).
    #[must_use]
    pub fn actor(&self) -> Option<&str> {
        actor_slot!(self, actor => actor.as_deref(), None)
    }

    /// The `as` slot of an action (`None` for setup operations).
    pub fn actor_mut(&mut self) -> Option<&mut Option<String>> {
        actor_slot!(self, actor => Some(actor), None)
    }

    /// The operation's name (`create`, `add_user`…).
    #[must_use]
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("op").and_then(|o| o.as_str()).map(str::to_owned))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The quick way of reading a create gives what the general way gives, and leaves every
    /// value it does not take (not a create, unknown or missing fields, wrong types) to it.
    #[test]
    fn a_create_read_the_quick_way_is_the_general_way_s() {
        let cases = [
            json!({"op": "create", "table": "account", "id": "a1"}),
            json!({"op": "create", "as": "rep", "table": "account", "id": "a1", "owner": "rep",
                   "business_unit": "Sales", "state": "inactive",
                   "lookups": {"parent": "a0"}, "fields": {"name": "x", "n": 1.5, "b": null}}),
            json!({"op": "create", "as": null, "table": "t", "id": "i", "owner": null}),
            json!({"op": "create", "table": "t", "id": "i", "bogus": 1}),
            json!({"op": "create", "table": "t"}),
            json!({"op": "create", "table": 5, "id": "i"}),
            json!({"op": "create", "table": "t", "id": "i", "lookups": null}),
            json!({"op": "create", "table": "t", "id": "i", "fields": null}),
            json!({"op": "create", "table": "t", "id": "i", "fields": []}),
            json!({"op": "create", "table": "t", "id": "i", "lookups": {"p": 1}}),
            json!({"op": "Create", "table": "t", "id": "i"}),
            json!({"op": "delete", "record": "a1"}),
            json!({"op": 1, "table": "t", "id": "i"}),
            json!({"table": "t", "id": "i"}),
            json!(["create"]),
        ];
        for value in cases {
            let general = serde_json::from_value::<Operation>(value.clone()).ok();
            let quick = Operation::create_from_value(&value);
            match (&quick, &general) {
                (Some(q), Some(g)) => assert_eq!(q, g, "{value}"),
                (Some(_), None) => {
                    unreachable!("the quick way took what the general refuses: {value}")
                }
                (None, Some(g)) => assert!(
                    !matches!(g, Operation::Create { .. }),
                    "a create left to the general way: {value}"
                ),
                (None, None) => {}
            }
        }
    }

    #[test]
    fn operations_round_trip_through_json() -> Result<(), serde_json::Error> {
        let op: Operation = serde_json::from_str(
            r#"{"op":"create","as":"alice","table":"account","id":"a1","fields":{"name":"Contoso","credit":5}}"#,
        )?;
        assert_eq!(op.actor(), Some("alice"));
        assert_eq!(op.name(), "create");
        let text = serde_json::to_string(&op)?;
        assert_eq!(serde_json::from_str::<Operation>(&text)?, op);
        Ok(())
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err =
            serde_json::from_str::<Operation>(r#"{"op":"delete","record":"a1","recrod":"x"}"#);
        assert!(err.is_err_and(|e| e.to_string().contains("recrod")));
    }
}
