//! Role rules as operations (`add_role_rule`, `remove_role_rule`), and their enforcement at
//! the end of every batch (docs/semantics.md D45–D47): which users an operation may change the
//! held roles of, noted before it runs; rules and violations as JSON (the server's and the
//! CLI's one shape).

use serde_json::{Value, json};
use strata_engine::{
    Change, Holding, Organization, Principal, RoleId, RoleRule, RuleError, RuleGuard, Violation,
    ViolationKind,
};

use crate::{OpError, Operation};

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

impl From<RuleError> for OpError {
    fn from(e: RuleError) -> Self {
        OpError::invalid(e.code(), e.to_string())
    }
}

fn role(org: &Organization, name: &str) -> Result<RoleId, OpError> {
    org.role_id(name)
        .ok_or_else(|| OpError::unknown("role", name))
}

/// The rule an `add_role_rule` or `remove_role_rule` names, resolved: exactly one of
/// `requires` (a non-empty list), `excludes` and `direct_only: true`.
pub(crate) fn resolve_rule(
    org: &Organization,
    name: &str,
    requires: Option<&[String]>,
    excludes: Option<&str>,
    direct_only: bool,
) -> Result<RoleRule, OpError> {
    let subject = role(org, name)?;
    match (requires, excludes, direct_only) {
        (Some(list), None, false) => {
            if list.is_empty() {
                return Err(OpError::invalid(
                    "bad_rule",
                    format!("rule on role `{name}`: `requires` names no role"),
                ));
            }
            let any_of = list
                .iter()
                .map(|r| role(org, r))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RoleRule::requires(subject, any_of))
        }
        (None, Some(other), false) => Ok(RoleRule::Excludes {
            role: subject,
            other: role(org, other)?,
        }),
        (None, None, true) => Ok(RoleRule::DirectOnly { role: subject }),
        _ => Err(OpError::invalid(
            "bad_rule",
            format!(
                "rule on role `{name}`: give exactly one of `requires` (roles), `excludes` (a role) and `direct_only: true`"
            ),
        )),
    }
}

/// The rule of a rule operation.
pub(crate) fn rule_of(org: &Organization, op: &Operation) -> Result<RoleRule, OpError> {
    match op {
        Operation::AddRoleRule {
            role,
            requires,
            excludes,
            direct_only,
        }
        | Operation::RemoveRoleRule {
            role,
            requires,
            excludes,
            direct_only,
        } => resolve_rule(
            org,
            role,
            requires.as_deref(),
            excludes.as_deref(),
            *direct_only,
        ),
        _ => Err(OpError::invalid("not_setup", "not a role rule operation")),
    }
}

/// A guard for a batch when rules are in force or the batch adds one; `None` costs nothing.
pub(crate) fn guard_for(org: &Organization, ops: &[Operation]) -> Option<RuleGuard> {
    let adds = ops
        .iter()
        .any(|op| matches!(op, Operation::AddRoleRule { .. }));
    (adds || !org.role_rules().is_empty()).then(RuleGuard::new)
}

/// Notes, before operation `i` runs, every user whose held roles it may change: the principal
/// of a role assignment or removal (each member of a team), the user joining or leaving a
/// team, the user moved to another unit (D13 may drop roles). Any new operation that changes
/// which roles a user holds must be listed here.
pub(crate) fn note(guard: &mut RuleGuard, org: &Organization, op: &Operation, i: usize) {
    match op {
        Operation::AssignRole { principal, .. } | Operation::RemoveRole { principal, .. } => {
            match crate::resolve_principal(org, principal) {
                Ok(Principal::User(u)) => guard.note_user(org, u, i),
                Ok(Principal::Team(t)) => guard.note_team(org, t, i),
                Ok(Principal::Organization) | Err(_) => {}
            }
        }
        Operation::AddTeamMember { user, .. }
        | Operation::RemoveTeamMember { user, .. }
        | Operation::MoveUser { user, .. } => {
            if let Some(u) = org.user_id(user) {
                guard.note_user(org, u, i);
            }
        }
        // Replacing a role (and deleting one with a replacement) changes the roles of every
        // holder: each user holding it directly and each member of a team holding it.
        Operation::ReplaceRole { role, .. }
        | Operation::DeleteRole {
            role,
            replacement: Some(_),
        } => {
            if let Some(r) = org.role_id(role) {
                let holders = org.role_holders(r);
                for h in &holders.users {
                    guard.note_user(org, h.user, i);
                }
                for t in &holders.teams {
                    guard.note_team(org, *t, i);
                }
            }
        }
        _ => {}
    }
}

/// Applies one operation for a caller as [`crate::apply_as`] does, and checks the role rules
/// as a batch of one does (D45): the write path of the scenario runner's engine target.
///
/// # Errors
///
/// The refusal of [`crate::apply_as`], or `role_rule_violated`; the organisation is then as
/// it was.
pub fn apply_checked(
    org: &mut Organization,
    op: &Operation,
    caller: Option<&str>,
) -> Result<Vec<Change>, OpError> {
    let Some(mut guard) = guard_for(org, std::slice::from_ref(op)) else {
        return crate::apply_as(org, op, caller);
    };
    let checkpoint = org.checkpoint();
    note(&mut guard, org, op, 0);
    let result = crate::apply_as(org, op, caller).and_then(|changes| {
        guard.finish(org).map_err(|(_, e)| OpError::from(e))?;
        Ok(changes)
    });
    match result {
        Ok(changes) => {
            org.commit(checkpoint)?;
            Ok(changes)
        }
        Err(e) => {
            org.rollback(checkpoint)?;
            Err(e)
        }
    }
}

/// A rule as JSON: its kind, its roles by name, and its text.
pub fn rule_json(org: &Organization, rule: &RoleRule) -> Value {
    let name = |r: RoleId| org.role(r).name.clone();
    let mut out = json!({ "kind": rule.kind(), "role": name(rule.role()), "text": rule.text(org) });
    match rule {
        RoleRule::Requires { any_of, .. } => {
            out["requires"] = json!(any_of.iter().map(|r| name(*r)).collect::<Vec<_>>());
        }
        RoleRule::Excludes { other, .. } => out["excludes"] = json!(name(*other)),
        RoleRule::DirectOnly { .. } => out["direct_only"] = json!(true),
    }
    out
}

fn holding_json(org: &Organization, h: &Holding) -> Value {
    json!({
        "direct": h.direct,
        "teams": h.teams.iter().map(|t| org.team(*t).name.clone()).collect::<Vec<_>>(),
    })
}

/// One violation as JSON: the user, the rule, how it is broken, the report's line and a
/// sentence saying what would satisfy the rule.
pub fn violation_json(org: &Organization, v: &Violation) -> Value {
    let name = |r: RoleId| org.role(r).name.clone();
    let mut out = json!({
        "user": org.user(v.user).name,
        "rule": rule_json(org, &v.rule),
        "line": v.line(org),
        "message": v.message(org),
    });
    match &v.kind {
        ViolationKind::Missing { held, missing } => {
            out["kind"] = json!("missing");
            out["held"] = holding_json(org, held);
            out["missing"] = json!(missing.iter().map(|r| name(*r)).collect::<Vec<_>>());
        }
        ViolationKind::Conflict { held, other_held } => {
            out["kind"] = json!("conflict");
            out["held"] = holding_json(org, held);
            out["conflicting"] = json!(match &v.rule {
                RoleRule::Excludes { other, .. } => name(*other),
                _ => String::new(),
            });
            out["conflicting_held"] = holding_json(org, other_held);
        }
        ViolationKind::NotDirect { teams } => {
            out["kind"] = json!("not_direct");
            out["held"] = json!({
                "direct": false,
                "teams": teams.iter().map(|t| org.team(*t).name.clone()).collect::<Vec<_>>(),
            });
        }
    }
    out
}
