//! Errors of the engine: a model that breaks an invariant, and an action that is refused.

use thiserror::Error;

/// The model cannot take this change: it would break an invariant whoever asks.
/// Every variant names the entity; [`ModelError::code`] gives a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// A stored state (a checkpoint's parts) names an entity that does not exist.
    #[error("the stored state is inconsistent: {0}")]
    BadState(String),
    /// A second unit without a parent.
    #[error("business unit `{unit}` has no parent, but `{root}` is already the root")]
    SecondRoot { unit: String, root: String },
    /// The root unit cannot be moved.
    #[error("business unit `{unit}` is the root and cannot be moved")]
    MoveRoot { unit: String },
    /// A tree or chain would loop back on itself.
    #[error("{what} `{name}` would be its own ancestor (a cycle)")]
    Cycle { what: &'static str, name: String },
    /// A tree deeper than its limit.
    #[error("{what} under `{name}` would be deeper than the limit of {limit} levels")]
    TooDeep {
        what: &'static str,
        name: String,
        limit: usize,
    },
    /// Two entities of one kind with one name.
    #[error("{kind} `{name}` is defined twice")]
    Duplicate { kind: &'static str, name: String },
    /// A reference to something that does not exist.
    #[error("unknown {kind} `{name}`")]
    Unknown { kind: &'static str, name: String },
    /// A name that is empty or too long.
    #[error("{kind} name `{name}` must be 1 to {limit} bytes long")]
    BadName {
        kind: &'static str,
        name: String,
        limit: usize,
    },
    /// Organization-owned tables take only `none` or `organization`.
    #[error(
        "role `{role}` gives `{privilege}` on organization-owned table `{table}` at depth `{depth}`; only `none` and `organization` are allowed"
    )]
    DepthNotAllowed {
        role: String,
        table: String,
        privilege: &'static str,
        depth: &'static str,
    },
    /// Access teams hold no roles.
    #[error("team `{team}` is an access team and cannot hold role `{role}`")]
    RoleOnAccessTeam { team: String, role: String },
    /// A role is usable only in its own unit and the units below it.
    #[error("role `{role}` belongs to business unit `{role_unit}` and cannot be used in `{unit}`")]
    RoleNotUsable {
        role: String,
        role_unit: String,
        unit: String,
    },
    /// Something about a record that cannot be honoured.
    #[error("record `{record}`: {problem}")]
    Record { record: String, problem: String },
    /// The System Administrator role is not editable.
    #[error("role `{role}` is the System Administrator role and cannot be edited")]
    SystemAdministratorNotEditable { role: String },
    /// A collection outgrew its limit.
    #[error("too many {kind}: the limit is {limit}")]
    TooMany { kind: &'static str, limit: usize },
    /// A principal-like name that collides with principal syntax or hides characters.
    #[error("{kind} name `{name}` is refused: {problem}")]
    ReservedName {
        kind: &'static str,
        name: String,
        problem: &'static str,
    },
    /// A column the system keeps for every record (D165), named by a write or a declaration.
    #[error(
        "column `{column}` is kept by the system for every record and cannot be set or declared"
    )]
    SystemColumn { column: String },
    /// A column the table does not declare (tables that declare columns are closed).
    #[error("table `{table}` has no column `{column}`")]
    UnknownColumn { table: String, column: String },
    /// Roles go to enabled users only (reference §2.3).
    #[error("user `{user}` is disabled: roles are assigned to enabled users only")]
    AssigneeDisabled { user: String },
    /// Any other request that cannot be honoured whoever asks.
    #[error("{0}")]
    Other(String),
    /// A deprecated role is not assigned any more: the message names the roles to use instead.
    #[error("role `{role}` is deprecated and cannot be assigned: {instead}")]
    RoleDeprecated { role: String, instead: String },
    /// A role still held (by users or teams) or associated with apps cannot be deleted without
    /// a replacement.
    #[error("role `{role}` is still {holders}")]
    RoleInUse { role: String, holders: String },
}

impl ModelError {
    /// A stable, machine-readable code for this error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::BadState(_) => "bad_state",
            ModelError::SecondRoot { .. } => "second_root",
            ModelError::MoveRoot { .. } => "move_root",
            ModelError::Cycle { .. } => "cycle",
            ModelError::TooDeep { .. } => "too_deep",
            ModelError::Duplicate { .. } => "duplicate",
            ModelError::Unknown { .. } => "unknown_reference",
            ModelError::BadName { .. } => "bad_name",
            ModelError::DepthNotAllowed { .. } => "depth_not_allowed",
            ModelError::RoleOnAccessTeam { .. } => "role_on_access_team",
            ModelError::RoleNotUsable { .. } => "role_not_usable",
            ModelError::Record { .. } => "invalid_record",
            ModelError::SystemAdministratorNotEditable { .. } => {
                "system_administrator_not_editable"
            }
            ModelError::TooMany { .. } => "limit_exceeded",
            ModelError::AssigneeDisabled { .. } => "assignee_disabled",
            ModelError::ReservedName { .. } => "bad_name",
            ModelError::UnknownColumn { .. } => "unknown_column",
            ModelError::SystemColumn { .. } => "system_column",
            ModelError::Other(_) => "invalid",
            ModelError::RoleDeprecated { .. } => "role_deprecated",
            ModelError::RoleInUse { .. } => "role_in_use",
        }
    }

    pub(crate) fn unknown(kind: &'static str, name: impl Into<String>) -> Self {
        ModelError::Unknown {
            kind,
            name: name.into(),
        }
    }

    pub(crate) fn record(record: &str, problem: impl Into<String>) -> Self {
        ModelError::Record {
            record: record.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Why an action was refused. A refused action changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ActionError {
    /// The acting user (or a principal the action needs privileges from) lacks a privilege or access.
    #[error("denied: {0}")]
    Denied(String),
    /// The request cannot be honoured whoever asks.
    #[error("invalid: {0}")]
    Invalid(#[from] ModelError),
}

impl ActionError {
    /// A stable, machine-readable code: `denied` or the model error's code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ActionError::Denied(_) => "denied",
            ActionError::Invalid(e) => e.code(),
        }
    }
}
