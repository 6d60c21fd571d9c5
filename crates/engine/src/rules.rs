//! Role rules: constraints on which roles a user may hold together (issue 11 §2, seeds 000 and
//! 004). A rule **requires** (role A needs one of roles B, C…), **excludes** (role A never
//! with role B for the same user) or is **direct only** (role A must be assigned to the user
//! directly, not obtained through a team).
//!
//! A user *holds* a role when it is assigned to the user directly or to one of the user's
//! owner or group teams (access teams hold no roles); only direct-only rules look at how it is
//! held. Rules are part of the model: in [`Organization`], journaled, in the canonical dump.
//! They are checked when a batch ends ([`RuleGuard`], docs/semantics.md D45), and reported for
//! assignments that predate them ([`Organization::rule_violations`], D46).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::ids::{RoleId, TeamId, UserId};
use crate::organization::{Organization, Setup};

/// One role rule, by role ids.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleRule {
    /// A user who holds `role` must hold at least one of `any_of` (sorted, no duplicates).
    Requires {
        /// The role the rule is about.
        role: RoleId,
        /// The roles that satisfy it.
        any_of: Vec<RoleId>,
    },
    /// A user never holds `role` and `other` together (symmetric).
    Excludes {
        /// The role the rule is about.
        role: RoleId,
        /// The role it never goes with.
        other: RoleId,
    },
    /// `role` must be assigned to the user directly: holding it only through teams breaks the
    /// rule.
    DirectOnly {
        /// The role the rule is about.
        role: RoleId,
    },
}

impl RoleRule {
    /// A requirement, with its options sorted and deduplicated.
    #[must_use]
    pub fn requires(role: RoleId, any_of: impl IntoIterator<Item = RoleId>) -> RoleRule {
        let set: BTreeSet<RoleId> = any_of.into_iter().collect();
        RoleRule::Requires {
            role,
            any_of: set.into_iter().collect(),
        }
    }

    /// The role the rule is about.
    #[must_use]
    pub fn role(&self) -> RoleId {
        match self {
            RoleRule::Requires { role, .. }
            | RoleRule::Excludes { role, .. }
            | RoleRule::DirectOnly { role } => *role,
        }
    }

    /// `requires`, `excludes` or `direct_only`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            RoleRule::Requires { .. } => "requires",
            RoleRule::Excludes { .. } => "excludes",
            RoleRule::DirectOnly { .. } => "direct_only",
        }
    }

    /// Every role the rule names.
    #[must_use]
    pub fn roles(&self) -> Vec<RoleId> {
        match self {
            RoleRule::Requires { role, any_of } => std::iter::once(*role)
                .chain(any_of.iter().copied())
                .collect(),
            RoleRule::Excludes { role, other } => vec![*role, *other],
            RoleRule::DirectOnly { role } => vec![*role],
        }
    }

    /// Whether two rules say the same thing (excludes is symmetric).
    #[must_use]
    pub fn same_as(&self, other: &RoleRule) -> bool {
        match (self, other) {
            (
                RoleRule::Excludes { role: a, other: b },
                RoleRule::Excludes { role: c, other: d },
            ) => (a, b) == (c, d) || (a, b) == (d, c),
            _ => self == other,
        }
    }

    /// The rule as text, role names as they are (`Omnichannel administrator requires System
    /// Administrator`): the form of the violations report and of scenario files.
    #[must_use]
    pub fn text(&self, org: &Organization) -> String {
        self.render(org, "")
    }

    /// The rule as text with role names in backticks (for messages).
    #[must_use]
    pub fn quoted(&self, org: &Organization) -> String {
        self.render(org, "`")
    }

    fn render(&self, org: &Organization, q: &str) -> String {
        let name = |r: RoleId| format!("{q}{}{q}", org.role(r).name);
        match self {
            RoleRule::Requires { role, any_of } => match any_of.as_slice() {
                [one] => format!("{} requires {}", name(*role), name(*one)),
                many => format!(
                    "{} requires one of {}",
                    name(*role),
                    many.iter().map(|r| name(*r)).collect::<Vec<_>>().join(", ")
                ),
            },
            RoleRule::Excludes { role, other } => {
                format!("{} excludes {}", name(*role), name(*other))
            }
            RoleRule::DirectOnly { role } => format!("{} is direct only", name(*role)),
        }
    }
}

/// Why a rule cannot be added or removed, or why a batch breaks one. [`RuleError::code`] gives
/// the stable code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    /// The rule contradicts itself or the rules in force: some role could never be held.
    #[error("rule {rule} contradicts {with}")]
    Contradictory {
        /// The rule refused.
        rule: String,
        /// What it contradicts.
        with: String,
    },
    /// The rule closes a cycle of requirements.
    #[error("rule {rule} closes a cycle of requirements: {cycle}")]
    Cycle {
        /// The rule refused.
        rule: String,
        /// The roles of the cycle, in order.
        cycle: String,
    },
    /// A rule that would stand in the way of assigning the System Administrator role.
    #[error(
        "rule {rule} would constrain the System Administrator role `{role}`, which must stay assignable on its own (D47)"
    )]
    SystemAdministrator {
        /// The rule refused.
        rule: String,
        /// The System Administrator role's name.
        role: String,
    },
    /// The same rule is already in force.
    #[error("rule {rule} is already in force")]
    Duplicate {
        /// The rule.
        rule: String,
    },
    /// Removing a rule that is not in force.
    #[error("no rule {rule} is in force")]
    UnknownRule {
        /// The rule.
        rule: String,
    },
    /// A batch would leave a user breaking a rule.
    #[error("{message}")]
    Violated {
        /// The user, the rule, and what would satisfy it.
        message: String,
    },
}

impl RuleError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::Contradictory { .. } => "contradictory_rule",
            RuleError::Cycle { .. } => "rule_cycle",
            RuleError::SystemAdministrator { .. } => "rule_on_system_administrator",
            RuleError::Duplicate { .. } => "duplicate",
            RuleError::UnknownRule { .. } => "unknown_rule",
            RuleError::Violated { .. } => "role_rule_violated",
        }
    }
}

/// The rules in force, in the order they were added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleRules {
    rules: Vec<RoleRule>,
}

impl RoleRules {
    /// The rules a checkpoint stored (`state.rs`).
    pub(crate) fn from_rules(rules: Vec<RoleRule>) -> RoleRules {
        RoleRules { rules }
    }

    /// The rules, in the order they were added.
    #[must_use]
    pub fn rules(&self) -> &[RoleRule] {
        &self.rules
    }

    /// Whether no rule is in force.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// How a user holds a role: directly, through teams, or both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holding {
    /// Assigned to the user.
    pub direct: bool,
    /// Held by these owner or group teams of the user.
    pub teams: Vec<TeamId>,
}

/// What a user holds: each role and how.
pub type Holdings = BTreeMap<RoleId, Holding>;

/// How one user breaks one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// The user holds the rule's role (`held`) but none of the roles it requires.
    Missing {
        /// How the rule's role is held.
        held: Holding,
        /// The roles of which one is needed.
        missing: Vec<RoleId>,
    },
    /// The user holds both roles of an excludes rule.
    Conflict {
        /// How the rule's role is held.
        held: Holding,
        /// How the other role is held.
        other_held: Holding,
    },
    /// The user holds a direct-only role through teams only.
    NotDirect {
        /// The teams it comes through.
        teams: Vec<TeamId>,
    },
}

/// One user breaking one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The user.
    pub user: UserId,
    /// The rule broken.
    pub rule: RoleRule,
    /// How.
    pub kind: ViolationKind,
}

impl Violation {
    /// `user: rule` with names as they are: the report's one-line form.
    #[must_use]
    pub fn line(&self, org: &Organization) -> String {
        format!("{}: {}", org.user(self.user).name, self.rule.text(org))
    }

    /// What is wrong and what would satisfy the rule, in a sentence.
    #[must_use]
    pub fn message(&self, org: &Organization) -> String {
        let user = &org.user(self.user).name;
        let role = |r: RoleId| format!("`{}`", org.role(r).name);
        let how = |h: &Holding| describe_holding(org, h);
        let rule = self.rule.quoted(org);
        match (&self.kind, &self.rule) {
            (ViolationKind::Missing { held, missing }, RoleRule::Requires { role: r, .. }) => {
                let need = match missing.as_slice() {
                    [one] => role(*one),
                    many => format!(
                        "one of {}",
                        many.iter().map(|m| role(*m)).collect::<Vec<_>>().join(", ")
                    ),
                };
                format!(
                    "role rule {rule}: user `{user}` holds {} ({}) without {need}: assign {need} first or in the same batch, or remove {}",
                    role(*r),
                    how(held),
                    role(*r)
                )
            }
            (
                ViolationKind::Conflict { held, other_held },
                RoleRule::Excludes { role: a, other: b },
            ) => format!(
                "role rule {rule}: user `{user}` would hold {} ({}) and {} ({}): remove one of them",
                role(*a),
                how(held),
                role(*b),
                how(other_held)
            ),
            (ViolationKind::NotDirect { teams }, RoleRule::DirectOnly { role: r }) => format!(
                "role rule {rule}: user `{user}` would hold {} only through {}: assign it to the user directly",
                role(*r),
                teams
                    .iter()
                    .map(|t| format!("team `{}`", org.team(*t).name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("role rule {rule}: user `{user}` breaks it"),
        }
    }
}

fn describe_holding(org: &Organization, h: &Holding) -> String {
    let teams: Vec<String> = h
        .teams
        .iter()
        .map(|t| format!("team `{}`", org.team(*t).name))
        .collect();
    match (h.direct, teams.is_empty()) {
        (true, true) => "directly".to_owned(),
        (true, false) => format!("directly and through {}", teams.join(", ")),
        (false, _) => format!("through {}", teams.join(", ")),
    }
}

/// The violations of `rules` by a user holding `held`.
fn violations_of(user: UserId, held: &Holdings, rules: &[RoleRule]) -> Vec<Violation> {
    let mut out = Vec::new();
    for rule in rules {
        let kind = match rule {
            RoleRule::Requires { role, any_of } => match held.get(role) {
                Some(h) if !any_of.iter().any(|r| held.contains_key(r)) => {
                    Some(ViolationKind::Missing {
                        held: h.clone(),
                        missing: any_of.clone(),
                    })
                }
                _ => None,
            },
            RoleRule::Excludes { role, other } => match (held.get(role), held.get(other)) {
                (Some(a), Some(b)) => Some(ViolationKind::Conflict {
                    held: a.clone(),
                    other_held: b.clone(),
                }),
                _ => None,
            },
            RoleRule::DirectOnly { role } => match held.get(role) {
                Some(h) if !h.direct => Some(ViolationKind::NotDirect {
                    teams: h.teams.clone(),
                }),
                _ => None,
            },
        };
        if let Some(kind) = kind {
            out.push(Violation {
                user,
                rule: rule.clone(),
                kind,
            });
        }
    }
    out
}

impl Organization {
    /// The role rules in force, in the order they were added.
    #[must_use]
    pub fn role_rules(&self) -> &[RoleRule] {
        self.role_rules.rules()
    }

    /// Every role a user holds, and how: assigned directly, or held by an owner or group team
    /// of the user.
    #[must_use]
    pub fn role_holdings(&self, user: UserId) -> Holdings {
        let u = self.user(user);
        let mut held = Holdings::new();
        for a in &u.roles {
            held.entry(a.role).or_default().direct = true;
        }
        for t in &u.teams {
            for r in &self.team(*t).roles {
                let h = held.entry(*r).or_default();
                if !h.teams.contains(t) {
                    h.teams.push(*t);
                }
            }
        }
        held
    }

    /// How one user breaks the rules in force (empty when they keep them all).
    #[must_use]
    pub fn user_rule_violations(&self, user: UserId) -> Vec<Violation> {
        if self.role_rules.is_empty() {
            return Vec::new();
        }
        violations_of(user, &self.role_holdings(user), self.role_rules())
    }

    /// The violations report: every user breaking a rule in force, by user then rule. Rules
    /// are checked when a batch changes which roles a user holds; this lists the assignments
    /// that predate a rule (D46) or came through a load that checks none (an import, a replay).
    #[must_use]
    pub fn rule_violations(&self) -> Vec<Violation> {
        if self.role_rules.is_empty() {
            return Vec::new();
        }
        self.user_ids()
            .flat_map(|u| self.user_rule_violations(u))
            .collect()
    }

    /// Whether `rule` could join the rules in force: refused when it contradicts them, closes
    /// a cycle of requirements, constrains the System Administrator role or is already in
    /// force.
    ///
    /// # Errors
    ///
    /// The [`RuleError`] naming the rule and what it clashes with.
    pub fn check_new_role_rule(&self, rule: &RoleRule) -> Result<(), RuleError> {
        let text = rule.quoted(self);
        if let Some(existing) = self.role_rules().iter().find(|r| r.same_as(rule)) {
            return Err(RuleError::Duplicate {
                rule: existing.quoted(self),
            });
        }
        // D47: the System Administrator role stays assignable on its own.
        let sa = |r: RoleId| self.role(r).system_administrator;
        let constrains_sa = match rule {
            RoleRule::Requires { role, .. } => sa(*role),
            RoleRule::Excludes { role, other } => sa(*role) || sa(*other),
            RoleRule::DirectOnly { .. } => false,
        };
        if constrains_sa {
            let role = rule
                .roles()
                .into_iter()
                .find(|r| sa(*r))
                .map(|r| self.role(r).name.clone())
                .unwrap_or_default();
            return Err(RuleError::SystemAdministrator { rule: text, role });
        }
        match rule {
            RoleRule::Requires { role, any_of } if any_of.contains(role) => {
                return Err(RuleError::Contradictory {
                    rule: text,
                    with: "itself: a role cannot require itself".to_owned(),
                });
            }
            RoleRule::Requires { any_of, .. } if any_of.is_empty() => {
                return Err(RuleError::Contradictory {
                    rule: text,
                    with: "itself: it requires no role".to_owned(),
                });
            }
            RoleRule::Excludes { role, other } if role == other => {
                return Err(RuleError::Contradictory {
                    rule: text,
                    with: "itself: a role that excludes itself could never be held".to_owned(),
                });
            }
            _ => {}
        }
        let mut all: Vec<RoleRule> = self.role_rules().to_vec();
        all.push(rule.clone());
        if let RoleRule::Requires { role, any_of } = rule
            && let Some(cycle) = requirement_cycle(&all, *role, any_of)
        {
            let names: Vec<String> = cycle
                .iter()
                .map(|r| format!("`{}`", self.role(*r).name))
                .collect();
            return Err(RuleError::Cycle {
                rule: text,
                cycle: names.join(" → "),
            });
        }
        let mentioned: BTreeSet<RoleId> = all.iter().flat_map(RoleRule::roles).collect();
        for x in mentioned {
            if let Some(culprit) = unsatisfiable(&all, x) {
                let with = if culprit.same_as(rule) {
                    format!(
                        "the rules in force: role `{}` could never be held",
                        self.role(x).name
                    )
                } else {
                    format!(
                        "{}: role `{}` could never be held",
                        culprit.quoted(self),
                        self.role(x).name
                    )
                };
                return Err(RuleError::Contradictory { rule: text, with });
            }
        }
        Ok(())
    }

    /// The rule in force that says what `rule` says (excludes is symmetric), when there is one.
    #[must_use]
    pub fn find_role_rule(&self, rule: &RoleRule) -> Option<&RoleRule> {
        self.role_rules().iter().find(|r| r.same_as(rule))
    }
}

/// A cycle of requirements through the new rule `role → any_of`, as roles from `role` back to
/// it, when there is one. Every option of a requirement is an edge.
fn requirement_cycle(rules: &[RoleRule], role: RoleId, any_of: &[RoleId]) -> Option<Vec<RoleId>> {
    let mut edges: BTreeMap<RoleId, BTreeSet<RoleId>> = BTreeMap::new();
    for r in rules {
        if let RoleRule::Requires { role, any_of } = r {
            edges
                .entry(*role)
                .or_default()
                .extend(any_of.iter().copied());
        }
    }
    // Depth-first from each option, looking for `role`, with the path kept.
    for start in any_of {
        let mut stack = vec![(*start, vec![role, *start])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            if at == role {
                return Some(path);
            }
            if !seen.insert(at) {
                continue;
            }
            for next in edges.get(&at).into_iter().flatten() {
                let mut p = path.clone();
                p.push(*next);
                stack.push((*next, p));
            }
        }
    }
    None
}

/// Whether `rules` keep `x` from ever being held: the roles a holder of `x` is forced to hold
/// (requirements with one option left once the excluded ones are struck out) include two that
/// exclude each other, or leave a requirement with no option. Returns the rule that failed.
fn unsatisfiable(rules: &[RoleRule], x: RoleId) -> Option<RoleRule> {
    let excluded = |a: RoleId, b: RoleId| {
        rules.iter().find(|r| {
            matches!(r, RoleRule::Excludes { role, other }
                if (*role == a && *other == b) || (*role == b && *other == a))
        })
    };
    let mut forced: BTreeSet<RoleId> = BTreeSet::from([x]);
    loop {
        for a in &forced {
            for b in &forced {
                if let Some(rule) = excluded(*a, *b) {
                    return Some(rule.clone());
                }
            }
        }
        let mut grew = false;
        for r in rules {
            if let RoleRule::Requires { role, any_of } = r
                && forced.contains(role)
                && !any_of.iter().any(|o| forced.contains(o))
            {
                let open: Vec<RoleId> = any_of
                    .iter()
                    .copied()
                    .filter(|o| forced.iter().all(|f| excluded(*f, *o).is_none()))
                    .collect();
                match open.as_slice() {
                    [] => return Some(r.clone()),
                    [one] => {
                        forced.insert(*one);
                        grew = true;
                    }
                    _ => {}
                }
            }
        }
        if !grew {
            return None;
        }
    }
}

impl Setup<'_> {
    /// Adds a role rule after [`Organization::check_new_role_rule`]. Users who already break
    /// it are reported by [`Organization::rule_violations`], not refused (D46).
    ///
    /// # Errors
    ///
    /// The refusal of [`Organization::check_new_role_rule`].
    pub fn add_role_rule(&mut self, rule: RoleRule) -> Result<(), RuleError> {
        self.org().check_new_role_rule(&rule)?;
        self.org_mut().role_rules_mut().rules.push(rule);
        Ok(())
    }

    /// Removes the rule in force that says what `rule` says.
    ///
    /// # Errors
    ///
    /// [`RuleError::UnknownRule`] when no such rule is in force.
    pub fn remove_role_rule(&mut self, rule: &RoleRule) -> Result<(), RuleError> {
        let org = self.org();
        let Some(i) = org.role_rules().iter().position(|r| r.same_as(rule)) else {
            return Err(RuleError::UnknownRule {
                rule: rule.quoted(org),
            });
        };
        self.org_mut().role_rules_mut().rules.remove(i);
        Ok(())
    }
}

/// Checks the rules at the end of a batch (D45): each user whose held roles an operation may
/// change is noted before that operation with what they held then (the first time only: the
/// state before the batch); when the batch ends, a violation of the rules then in force that
/// the user's holdings before the batch did not already have refuses the batch. Violations
/// that predate the batch (D46) never refuse it, so a batch may repair them one by one.
#[derive(Debug, Default)]
pub struct RuleGuard {
    /// User → (holdings before the batch, the last operation that may have changed them).
    noted: BTreeMap<UserId, (Holdings, usize)>,
}

impl RuleGuard {
    /// A guard with nothing noted.
    #[must_use]
    pub fn new() -> RuleGuard {
        RuleGuard::default()
    }

    /// Notes that operation `op` may change what `user` holds.
    pub fn note_user(&mut self, org: &Organization, user: UserId, op: usize) {
        if user.index() >= org.users.len() {
            return;
        }
        self.noted
            .entry(user)
            .and_modify(|(_, last)| *last = op)
            .or_insert_with(|| (org.role_holdings(user), op));
    }

    /// Notes that operation `op` may change what every member of `team` holds.
    pub fn note_team(&mut self, org: &Organization, team: TeamId, op: usize) {
        if team.index() >= org.teams.len() {
            return;
        }
        for u in org.team(team).members.clone() {
            self.note_user(org, u, op);
        }
    }

    /// Whether anything was noted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.noted.is_empty()
    }

    /// The first new violation, with the index of the last operation that changed that user's
    /// roles.
    ///
    /// # Errors
    ///
    /// [`RuleError::Violated`] naming the user, the rule and what would satisfy it.
    pub fn finish(&self, org: &Organization) -> Result<(), (usize, RuleError)> {
        let rules = org.role_rules();
        if rules.is_empty() {
            return Ok(());
        }
        for (user, (before, op)) in &self.noted {
            if user.index() >= org.users.len() {
                continue;
            }
            let old: Vec<RoleRule> = violations_of(*user, before, rules)
                .into_iter()
                .map(|v| v.rule)
                .collect();
            if let Some(v) = org
                .user_rule_violations(*user)
                .into_iter()
                .find(|v| !old.contains(&v.rule))
            {
                return Err((
                    *op,
                    RuleError::Violated {
                        message: v.message(org),
                    },
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::actions::Actor;
    use crate::ids::Principal;
    use crate::model::{Inheritance, TeamType};
    use crate::organization::RoleDefinition;

    /// Roles `A`…`F`, `SA` (System Administrator), users `u` and `v`, owner team `T` (members
    /// `u`).
    fn org() -> Organization {
        let mut org = Organization::new();
        {
            let mut s = org.setup();
            let root = s.add_business_unit("Root", None).unwrap();
            for name in ["A", "B", "C", "D", "E", "F", "SA"] {
                s.add_role(RoleDefinition {
                    name: name.to_owned(),
                    business_unit: None,
                    inheritance: Inheritance::UserAndTeam,
                    system_administrator: name == "SA",
                    privileges: Vec::new(),
                    misc: Vec::new(),
                })
                .unwrap();
            }
            let u = s.add_user("u", root, true).unwrap();
            s.add_user("v", root, true).unwrap();
            let t = s.add_team("T", TeamType::Owner, root).unwrap();
            s.add_team_member(t, u);
        }
        org
    }

    fn r(org: &Organization, name: &str) -> RoleId {
        org.role_id(name).unwrap()
    }

    fn requires(org: &Organization, a: &str, b: &[&str]) -> RoleRule {
        RoleRule::requires(r(org, a), b.iter().map(|n| r(org, n)))
    }

    fn excludes(org: &Organization, a: &str, b: &str) -> RoleRule {
        RoleRule::Excludes {
            role: r(org, a),
            other: r(org, b),
        }
    }

    fn add(org: &mut Organization, rule: RoleRule) -> Result<(), RuleError> {
        org.setup().add_role_rule(rule)
    }

    fn add_requires(org: &mut Organization, a: &str, b: &[&str]) -> Result<(), RuleError> {
        let rule = requires(org, a, b);
        add(org, rule)
    }

    fn add_excludes(org: &mut Organization, a: &str, b: &str) -> Result<(), RuleError> {
        let rule = excludes(org, a, b);
        add(org, rule)
    }

    fn assign(org: &mut Organization, who: Principal, role: &str) {
        let role = r(org, role);
        org.assign_role(Actor::System, who, role, None).unwrap();
    }

    fn lines(org: &Organization) -> Vec<String> {
        org.rule_violations().iter().map(|v| v.line(org)).collect()
    }

    #[test]
    fn requires_excludes_and_direct_only_are_reported_per_user() {
        let mut o = org();
        let (u, v) = (o.user_id("u").unwrap(), o.user_id("v").unwrap());
        let t = o.team_id("T").unwrap();
        assign(&mut o, Principal::User(u), "A");
        assign(&mut o, Principal::Team(t), "C");
        assign(&mut o, Principal::User(v), "C");
        add_requires(&mut o, "A", &["B", "D"]).unwrap();
        add_excludes(&mut o, "A", "C").unwrap();
        let c = r(&o, "C");
        add(&mut o, RoleRule::DirectOnly { role: c }).unwrap();
        assert_eq!(
            lines(&o),
            [
                "u: A requires one of B, D",
                "u: A excludes C",
                "u: C is direct only"
            ]
        );
        let report = o.user_rule_violations(u);
        assert_eq!(
            report[1].kind,
            ViolationKind::Conflict {
                held: Holding {
                    direct: true,
                    teams: vec![]
                },
                other_held: Holding {
                    direct: false,
                    teams: vec![t]
                },
            }
        );
        assert!(report[2].message(&o).contains("only through team `T`"));
        // A requirement held through a team satisfies it; a direct assignment too.
        assign(&mut o, Principal::Team(t), "D");
        assign(&mut o, Principal::User(u), "C");
        assert_eq!(lines(&o), ["u: A excludes C"]);
        assert!(o.user_rule_violations(v).is_empty());
    }

    #[test]
    fn contradictions_cycles_and_system_administrator_rules_are_refused() {
        let mut o = org();
        add_requires(&mut o, "A", &["B"]).unwrap();
        let e = add_excludes(&mut o, "A", "B").unwrap_err();
        assert_eq!(e.code(), "contradictory_rule");
        assert!(e.to_string().contains("`A` excludes `B`"), "{e}");
        let e = add_excludes(&mut o, "B", "A").unwrap_err();
        assert_eq!(e.code(), "contradictory_rule");
        // Through a chain: A needs B, B needs C, so A cannot exclude C.
        add_requires(&mut o, "B", &["C"]).unwrap();
        let e = add_excludes(&mut o, "C", "A").unwrap_err();
        assert_eq!(e.code(), "contradictory_rule");
        // Every option of a requirement excluded.
        add_excludes(&mut o, "D", "E").unwrap();
        add_excludes(&mut o, "D", "F").unwrap();
        let e = add_requires(&mut o, "D", &["E", "F"]).unwrap_err();
        assert_eq!(e.code(), "contradictory_rule");
        // One option left is fine.
        add_requires(&mut o, "D", &["E", "C"]).unwrap();
        let e = add_requires(&mut o, "C", &["A"]).unwrap_err();
        assert_eq!(e.code(), "rule_cycle");
        assert!(e.to_string().contains("`C` → `A` → `B` → `C`"), "{e}");
        let e = add_requires(&mut o, "A", &["A"]).unwrap_err();
        assert_eq!(e.code(), "contradictory_rule");
        let e = add_excludes(&mut o, "F", "F").unwrap_err();
        assert_eq!(e.code(), "contradictory_rule");
        let e = add_requires(&mut o, "SA", &["A"]).unwrap_err();
        assert_eq!(e.code(), "rule_on_system_administrator");
        let e = add_excludes(&mut o, "A", "SA").unwrap_err();
        assert_eq!(e.code(), "rule_on_system_administrator");
        // Requiring System Administrator is what seed 004 says of Omnichannel administrator.
        add_requires(&mut o, "F", &["SA"]).unwrap();
        let e = add_excludes(&mut o, "B", "A").unwrap_err();
        assert_eq!(e.code(), "contradictory_rule");
        let e = add_requires(&mut o, "A", &["B"]).unwrap_err();
        assert_eq!(e.code(), "duplicate");
        let e = add_excludes(&mut o, "F", "D").unwrap_err();
        assert_eq!(e.code(), "duplicate");
        assert_eq!(o.role_rules().len(), 6);
    }

    #[test]
    fn removal_names_the_rule_and_the_dump_and_journal_carry_rules() {
        let mut o = org();
        let before = o.canonical_dump();
        let checkpoint = o.checkpoint();
        add_excludes(&mut o, "A", "B").unwrap();
        assert_ne!(o.canonical_dump(), before);
        o.rollback(checkpoint).unwrap();
        assert_eq!(o.canonical_dump(), before);
        assert!(o.role_rules().is_empty());
        add_excludes(&mut o, "A", "B").unwrap();
        let rule = excludes(&o, "A", "C");
        let e = o.setup().remove_role_rule(&rule).unwrap_err();
        assert_eq!(e.code(), "unknown_rule");
        let rule = excludes(&o, "B", "A");
        o.setup().remove_role_rule(&rule).unwrap();
        assert!(o.role_rules().is_empty());
    }

    #[test]
    fn the_guard_refuses_new_violations_only() {
        let mut o = org();
        let (u, v) = (o.user_id("u").unwrap(), o.user_id("v").unwrap());
        let t = o.team_id("T").unwrap();
        assign(&mut o, Principal::User(u), "A");
        add_requires(&mut o, "A", &["B"]).unwrap();
        add_excludes(&mut o, "C", "D").unwrap();
        // u already breaks `A requires B`: giving u another role is not refused for it.
        let mut g = RuleGuard::new();
        g.note_user(&o, u, 0);
        assign(&mut o, Principal::User(u), "E");
        assert!(g.finish(&o).is_ok());
        // v taking A without B is refused, naming the rule and what satisfies it.
        let mut g = RuleGuard::new();
        g.note_user(&o, v, 3);
        assign(&mut o, Principal::User(v), "A");
        let (i, e) = g.finish(&o).unwrap_err();
        assert_eq!((i, e.code()), (3, "role_rule_violated"));
        assert!(
            e.to_string().contains(
                "user `v` holds `A` (directly) without `B`: assign `B` first or in the same batch"
            ),
            "{e}"
        );
        // ... and satisfied when B comes in the same batch.
        assign(&mut o, Principal::User(v), "B");
        assert!(g.finish(&o).is_ok());
        // A team role reaches its members.
        let mut g = RuleGuard::new();
        g.note_user(&o, u, 0);
        g.note_team(&o, t, 1);
        assign(&mut o, Principal::User(u), "C");
        assign(&mut o, Principal::Team(t), "D");
        let (i, e) = g.finish(&o).unwrap_err();
        assert_eq!(i, 1);
        assert!(e.to_string().contains("through team `T`"), "{e}");
    }
}
