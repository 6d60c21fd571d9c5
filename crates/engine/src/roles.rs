//! Roles as things to manage: the administration of roles (rename, copy, delete with a
//! replacement, deprecate, replace a role by another for all its holders, edit one cell of the
//! grid) and the questions an administrator asks about them (holders, comparisons of two roles
//! and of two users' effective permissions, who may assign a role).

use crate::derive::{AdminSource, Via};
use crate::error::{ActionError, ModelError};
use crate::ids::{AppId, BusinessUnitId, Principal, RoleId, TableId, TeamId, UserId};
use crate::journal::NameKind;
use crate::model::{Deprecation, RoleAssignment};
use crate::organization::{Organization, RoleDefinition, Setup};
use crate::privilege::{Depth, Privilege};

/// A user who holds a role directly.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DirectHolder {
    /// The user.
    pub user: UserId,
    /// The unit the assignment names (ownership across units), if any.
    pub business_unit: Option<BusinessUnitId>,
}

/// Who holds a role: users directly, teams, and the members of those teams, and the apps the
/// role is associated with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleHolders {
    /// Users who hold it directly, in user order.
    pub users: Vec<DirectHolder>,
    /// Owner and group teams that hold it, in team order.
    pub teams: Vec<TeamId>,
    /// Members of those teams, with the team they hold it through (one row per team).
    pub through_teams: Vec<(UserId, TeamId)>,
    /// Apps associated with the role.
    pub apps: Vec<AppId>,
}

impl RoleHolders {
    /// Nobody holds the role and no app is associated with it.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.teams.is_empty() && self.apps.is_empty()
    }
}

/// One cell of two role grids side by side.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RoleCell {
    /// Table.
    pub table: TableId,
    /// Privilege.
    pub privilege: Privilege,
    /// The first role's depth.
    pub left: Depth,
    /// The second role's depth.
    pub right: Depth,
}

impl RoleCell {
    /// The two depths differ.
    #[must_use]
    pub fn differs(&self) -> bool {
        self.left != self.right
    }
}

/// A miscellaneous privilege of either role.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MiscCell {
    /// The `prv` name.
    pub name: String,
    /// The first role (user) holds it.
    pub left: bool,
    /// The second role (user) holds it.
    pub right: bool,
}

impl MiscCell {
    /// Held by one side only.
    #[must_use]
    pub fn differs(&self) -> bool {
        self.left != self.right
    }
}

/// Two roles side by side: every privilege of every table either role names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleComparison {
    /// Table by table (table id order), each privilege in [`Privilege::ALL`] order.
    pub cells: Vec<RoleCell>,
    /// Miscellaneous privileges of either role, by name.
    pub misc: Vec<MiscCell>,
}

/// Where a user's effective depth comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CellSource {
    /// The System Administrator role (directly or through a team): every privilege.
    SystemAdministrator(AdminSource),
    /// A role, held directly or through a team.
    Role {
        /// The role.
        role: RoleId,
        /// Direct, or through which team.
        via: Via,
    },
}

/// What one user holds for one privilege on one table.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Effective {
    /// The highest depth (`Depth::None` when nothing grants it).
    pub depth: Depth,
    /// Every role (and how it is held) that gives that highest depth.
    pub sources: Vec<CellSource>,
}

/// One cell of two users' effective permissions side by side.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UserCell {
    /// Table.
    pub table: TableId,
    /// Privilege.
    pub privilege: Privilege,
    /// The first user's.
    pub left: Effective,
    /// The second user's.
    pub right: Effective,
}

impl UserCell {
    /// The two depths differ.
    #[must_use]
    pub fn differs(&self) -> bool {
        self.left.depth != self.right.depth
    }
}

/// A miscellaneous privilege either user holds, with its sources on each side.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UserMisc {
    /// The `prv` name.
    pub name: String,
    /// The first user's sources (empty: not held).
    pub left: Vec<CellSource>,
    /// The second user's sources.
    pub right: Vec<CellSource>,
}

impl UserMisc {
    /// Held by one user only.
    #[must_use]
    pub fn differs(&self) -> bool {
        self.left.is_empty() != self.right.is_empty()
    }
}

/// Two users' effective permissions side by side, from the derived grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserComparison {
    /// Every privilege of every table either user holds anything on (every table when either
    /// is a System Administrator), table id order, privileges in [`Privilege::ALL`] order.
    pub cells: Vec<UserCell>,
    /// Miscellaneous privileges either user holds, by name.
    pub misc: Vec<UserMisc>,
}

/// A user who may assign a role, and the units whose principals they may give it to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assigner {
    /// The user.
    pub user: UserId,
    /// Units (within the role's own subtree, where the role is usable) for which D20 and D11
    /// hold, in unit order.
    pub units: Vec<BusinessUnitId>,
}

impl Organization {
    /// A role that is not deprecated, or `role_deprecated` naming its successors.
    pub(crate) fn check_not_deprecated(&self, role: RoleId) -> Result<(), ModelError> {
        let r = &self.roles[role.index()];
        let Some(d) = &r.deprecation else {
            return Ok(());
        };
        let names: Vec<String> = d
            .successors
            .iter()
            .map(|s| format!("`{}`", self.roles[s.index()].name))
            .collect();
        let mut instead = if names.is_empty() {
            "no successor role is named".to_owned()
        } else {
            format!("assign {} instead", names.join(" or "))
        };
        if !d.message.is_empty() {
            instead.push_str(&format!(" ({})", d.message));
        }
        Err(ModelError::RoleDeprecated {
            role: r.name.clone(),
            instead,
        })
    }

    /// Who holds `role`: users directly, teams, the teams' members, and associated apps.
    #[must_use]
    pub fn role_holders(&self, role: RoleId) -> RoleHolders {
        let mut out = RoleHolders::default();
        for (i, u) in self.users.iter().enumerate() {
            for a in u.roles.iter().filter(|a| a.role == role) {
                out.users.push(DirectHolder {
                    user: UserId::from_index(i),
                    business_unit: a.business_unit,
                });
            }
        }
        for (i, t) in self.teams.iter().enumerate() {
            if t.roles.contains(&role) {
                let team = TeamId::from_index(i);
                out.teams.push(team);
                out.through_teams
                    .extend(t.members.iter().map(|m| (*m, team)));
            }
        }
        out.through_teams.sort();
        for (i, a) in self.apps.iter().enumerate() {
            if a.roles.contains(&role) {
                out.apps.push(AppId::from_index(i));
            }
        }
        out
    }

    /// The apps a role opens (D6: the apps it is associated with).
    #[must_use]
    pub fn role_apps(&self, role: RoleId) -> Vec<AppId> {
        self.role_holders(role).apps
    }

    /// Two roles' grids and miscellaneous privileges side by side.
    #[must_use]
    pub fn compare_roles(&self, left: RoleId, right: RoleId) -> RoleComparison {
        let (l, r) = (&self.roles[left.index()], &self.roles[right.index()]);
        let mut tables: Vec<TableId> = l
            .privileges
            .keys()
            .chain(r.privileges.keys())
            .copied()
            .collect();
        if l.system_administrator || r.system_administrator {
            tables = self.table_ids().collect();
        }
        tables.sort();
        tables.dedup();
        let depth = |role: &crate::model::Role, t, p| {
            if role.system_administrator {
                Depth::Organization
            } else {
                role.depth(t, p)
            }
        };
        let cells = tables
            .into_iter()
            .flat_map(|t| {
                Privilege::ALL.into_iter().map(move |p| RoleCell {
                    table: t,
                    privilege: p,
                    left: depth(l, t, p),
                    right: depth(r, t, p),
                })
            })
            .collect();
        let holds = |role: &crate::model::Role, name: &str| {
            role.system_administrator || role.misc.iter().any(|m| m.eq_ignore_ascii_case(name))
        };
        let misc = misc_names(l.misc.iter().chain(&r.misc))
            .into_iter()
            .map(|name| MiscCell {
                left: holds(l, &name),
                right: holds(r, &name),
                name,
            })
            .collect();
        RoleComparison { cells, misc }
    }

    /// Every role a user holds and how: directly, or through a team.
    fn held_roles_via(&self, user: UserId) -> Vec<(RoleId, Via)> {
        let u = &self.users[user.index()];
        let mut out: Vec<(RoleId, Via)> = u.roles.iter().map(|a| (a.role, Via::Direct)).collect();
        for t in &u.teams {
            for r in &self.teams[t.index()].roles {
                let team_only =
                    self.roles[r.index()].inheritance == crate::model::Inheritance::TeamOnly;
                out.push((
                    *r,
                    Via::Team {
                        team: *t,
                        team_only,
                    },
                ));
            }
        }
        let mut seen = Vec::with_capacity(out.len());
        out.retain(|x| {
            let new = !seen.contains(x);
            if new {
                seen.push(*x);
            }
            new
        });
        out
    }

    /// What a user effectively holds for one privilege on one table, from the derived grants.
    #[must_use]
    pub fn effective(&self, user: UserId, table: TableId, privilege: Privilege) -> Effective {
        if let Some(admin) = self.system_administrator(user) {
            return Effective {
                depth: Depth::Organization,
                sources: vec![CellSource::SystemAdministrator(admin)],
            };
        }
        let grants = self.grants(user, table, privilege);
        // Sorted deepest first.
        let Some(top) = grants.first().map(|g| g.depth) else {
            return Effective::default();
        };
        let mut sources = Vec::new();
        for g in grants.iter().take_while(|g| g.depth == top) {
            let s = CellSource::Role {
                role: g.role,
                via: g.via,
            };
            if !sources.contains(&s) {
                sources.push(s);
            }
        }
        Effective {
            depth: top,
            sources,
        }
    }

    /// Two users' effective permissions side by side: every privilege of every table either
    /// holds anything on, with the depth and its source roles, and their miscellaneous
    /// privileges.
    #[must_use]
    pub fn compare_users(&self, left: UserId, right: UserId) -> UserComparison {
        let admin =
            self.system_administrator(left).is_some() || self.system_administrator(right).is_some();
        let mut tables: Vec<TableId> = if admin {
            self.table_ids().collect()
        } else {
            self.all_grants(left)
                .iter()
                .chain(self.all_grants(right))
                .map(|g| g.table)
                .collect()
        };
        tables.sort();
        tables.dedup();
        let cells = tables
            .into_iter()
            .flat_map(|t| {
                Privilege::ALL.into_iter().map(move |p| UserCell {
                    table: t,
                    privilege: p,
                    left: self.effective(left, t, p),
                    right: self.effective(right, t, p),
                })
            })
            .collect();
        let (lr, rr) = (self.held_roles_via(left), self.held_roles_via(right));
        let names = misc_names(
            lr.iter()
                .chain(&rr)
                .flat_map(|(r, _)| self.roles[r.index()].misc.iter()),
        );
        let sources = |user: UserId, held: &[(RoleId, Via)], name: &str| -> Vec<CellSource> {
            if let Some(a) = self.system_administrator(user) {
                return vec![CellSource::SystemAdministrator(a)];
            }
            held.iter()
                .filter(|(r, _)| {
                    self.roles[r.index()]
                        .misc
                        .iter()
                        .any(|m| m.eq_ignore_ascii_case(name))
                })
                .map(|(role, via)| CellSource::Role {
                    role: *role,
                    via: *via,
                })
                .collect()
        };
        let misc = names
            .into_iter()
            .map(|name| UserMisc {
                left: sources(left, &lr, &name),
                right: sources(right, &rr, &name),
                name,
            })
            .collect();
        UserComparison { cells, misc }
    }

    /// Who may assign `role` (D20 and D11 applied to every enabled user): for each, the units
    /// within the role's subtree whose principals (other than themselves, D29) they could give
    /// it to. A deprecated role is assigned by nobody.
    #[must_use]
    pub fn who_may_assign(&self, role: RoleId) -> Vec<Assigner> {
        if self.roles[role.index()].deprecation.is_some() || self.roles[role.index()].deleted {
            return Vec::new();
        }
        let home = self.roles[role.index()].business_unit;
        let units: Vec<BusinessUnitId> = self
            .units
            .ids()
            .filter(|u| self.units.contains(home, *u))
            .collect();
        let mut out = Vec::new();
        for (i, u) in self.users.iter().enumerate() {
            if !u.enabled {
                continue;
            }
            let user = UserId::from_index(i);
            // Fast paths: a System Administrator assigns it everywhere it is usable; a user
            // without Assign on `role` nowhere (D20), whatever the unit.
            if self.derived.admin[i].is_some() {
                out.push(Assigner {
                    user,
                    units: units.clone(),
                });
                continue;
            }
            if self
                .grants(user, crate::organization::ROLE, Privilege::Assign)
                .is_empty()
            {
                continue;
            }
            let may: Vec<BusinessUnitId> = units
                .iter()
                .copied()
                .filter(|unit| {
                    self.require_role_authority(user, Principal::Organization, *unit, role)
                        .is_ok()
                        && self
                            .require_no_escalation(user, Principal::Organization, *unit, role)
                            .is_ok()
                })
                .collect();
            if !may.is_empty() {
                out.push(Assigner { user, units: may });
            }
        }
        out
    }

    /// Whether `user` may move every holder of `from` to `to` (`replace_role`, and
    /// `delete_role` with a replacement): for each user and team holding `from`, remove it and
    /// assign `to` as `remove_role` and `assign_role` would allow (D20, D11, D29).
    ///
    /// # Errors
    ///
    /// `Denied` naming the holder and what is missing.
    pub fn check_role_transfer(
        &self,
        user: UserId,
        from: RoleId,
        to: RoleId,
    ) -> Result<(), ActionError> {
        if self.derived.admin[user.index()].is_some() {
            return Ok(());
        }
        let holders = self.role_holders(from);
        let principals = holders
            .users
            .iter()
            .map(|h| {
                let unit = self.users[h.user.index()].business_unit;
                (
                    Principal::User(h.user),
                    unit,
                    h.business_unit.unwrap_or(unit),
                )
            })
            .chain(holders.teams.iter().map(|t| {
                let unit = self.teams[t.index()].business_unit;
                (Principal::Team(*t), unit, unit)
            }));
        for (principal, unit, applies_in) in principals {
            let named = |e: ActionError| match e {
                ActionError::Denied(m) => ActionError::Denied(format!(
                    "moving `{}` from role `{}` to `{}`: {m}",
                    self.principal_name(principal),
                    self.roles[from.index()].name,
                    self.roles[to.index()].name
                )),
                other => other,
            };
            self.require_role_authority(user, principal, unit, from)
                .map_err(named)?;
            self.require_role_authority(user, principal, unit, to)
                .map_err(named)?;
            self.require_no_escalation(user, principal, applies_in, to)
                .map_err(named)?;
        }
        Ok(())
    }
}

/// Distinct miscellaneous privilege names (case-insensitive, first spelling kept), sorted.
fn misc_names<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(n)) {
            out.push(n.clone());
        }
    }
    out.sort_by_key(|n| n.to_ascii_lowercase());
    out
}

/// The longest deprecation message, in bytes.
pub const MAX_DEPRECATION_MESSAGE: usize = 1_000;

fn check_message(message: &str) -> Result<(), ModelError> {
    if message.len() > MAX_DEPRECATION_MESSAGE {
        return Err(ModelError::TooMany {
            kind: "bytes in a deprecation message",
            limit: MAX_DEPRECATION_MESSAGE,
        });
    }
    if message.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ModelError::Other(
            "a deprecation message holds no control characters".to_owned(),
        ));
    }
    Ok(())
}

fn editable(org: &Organization, role: RoleId) -> Result<(), ModelError> {
    let r = &org.roles[role.index()];
    if r.system_administrator {
        return Err(ModelError::SystemAdministratorNotEditable {
            role: r.name.clone(),
        });
    }
    Ok(())
}

impl Setup<'_> {
    /// Renames a role (the System Administrator role keeps its name, D10).
    pub fn rename_role(&mut self, role: RoleId, name: &str) -> Result<(), ModelError> {
        editable(self.org, role)?;
        crate::organization::check_principal_name("role", name)?;
        let old = self.org.roles[role.index()].name.clone();
        if old == name {
            return Ok(());
        }
        if self.org.role_id(name).is_some() {
            return Err(ModelError::Duplicate {
                kind: "role",
                name: name.to_owned(),
            });
        }
        self.org.set_name(NameKind::Roles, &old, None);
        self.org.set_name(NameKind::Roles, name, Some(role.index()));
        self.org.role_mut(role).name = name.to_owned();
        Ok(())
    }

    /// Copies a role under a new name: the same grid, miscellaneous privileges, unit and
    /// inheritance; not deprecated, held by nobody. The System Administrator role is not copied.
    pub fn copy_role(&mut self, role: RoleId, name: &str) -> Result<RoleId, ModelError> {
        editable(self.org, role)?;
        let r = &self.org.roles[role.index()];
        let privileges = r
            .privileges
            .iter()
            .flat_map(|(t, depths)| {
                Privilege::ALL
                    .into_iter()
                    .map(move |p| (*t, p, depths[p.index()]))
            })
            .filter(|(_, _, d)| *d != Depth::None)
            .collect();
        let def = RoleDefinition {
            name: name.to_owned(),
            business_unit: Some(r.business_unit),
            inheritance: r.inheritance,
            system_administrator: false,
            privileges,
            misc: r.misc.clone(),
        };
        self.add_role(def)
    }

    /// Sets one cell of a role's grid (the System Administrator role is not editable, D10).
    pub fn set_role_privilege(
        &mut self,
        role: RoleId,
        table: TableId,
        privilege: Privilege,
        depth: Depth,
    ) -> Result<(), ModelError> {
        editable(self.org, role)?;
        self.stale = true;
        let name = self.org.roles[role.index()].name.clone();
        // The same rule as a whole grid: organization-owned tables take none or organization.
        self.org
            .privilege_grid(&name, vec![(table, privilege, depth)])?;
        let r = self.org.role_mut(role);
        let row = r.privileges.entry(table).or_insert([Depth::None; 8]);
        row[privilege.index()] = depth;
        if row.iter().all(|d| *d == Depth::None) {
            r.privileges.remove(&table);
        }
        Ok(())
    }

    /// Gives a role one miscellaneous privilege (`held`) or takes it away, keeping the grid and
    /// the other miscellaneous privileges (D82). Holding one it already holds, or removing one it
    /// does not, changes nothing.
    pub fn set_role_misc_privilege(
        &mut self,
        role: RoleId,
        privilege: &str,
        held: bool,
    ) -> Result<(), ModelError> {
        editable(self.org, role)?;
        crate::organization::check_name("miscellaneous privilege", privilege)?;
        let has = self.org.roles[role.index()]
            .misc
            .iter()
            .any(|m| m == privilege);
        if has == held {
            return Ok(());
        }
        self.stale = true;
        let r = self.org.role_mut(role);
        if held {
            r.misc.push(privilege.to_owned());
        } else {
            r.misc.retain(|m| m != privilege);
        }
        Ok(())
    }

    /// Deprecates a role (`Some((message, successors))`: assigning it is refused, naming the
    /// successors) or takes the deprecation back (`None`).
    pub fn set_role_deprecation(
        &mut self,
        role: RoleId,
        deprecation: Option<(String, Vec<RoleId>)>,
    ) -> Result<(), ModelError> {
        editable(self.org, role)?;
        let name = self.org.roles[role.index()].name.clone();
        let deprecation = match deprecation {
            None => None,
            Some((message, successors)) => {
                check_message(&message)?;
                let mut list: Vec<RoleId> = Vec::new();
                for s in successors {
                    if s == role {
                        return Err(ModelError::Other(format!(
                            "role `{name}` cannot be its own successor"
                        )));
                    }
                    let sr = &self.org.roles[s.index()];
                    if sr.deprecation.is_some() {
                        return Err(ModelError::Other(format!(
                            "role `{name}`: successor `{}` is deprecated itself",
                            sr.name
                        )));
                    }
                    if !list.contains(&s) {
                        list.push(s);
                    }
                }
                Some(Deprecation {
                    message,
                    successors: list,
                })
            }
        };
        self.org.role_mut(role).deprecation = deprecation;
        Ok(())
    }

    /// Replaces role `from` by `to` for every user and team holding it, in one change; a user's
    /// assignment keeps its unit. `to` must be assignable (not deprecated) and usable by every
    /// holder. Apps keep their roles. Returns the holders moved.
    pub fn replace_role(&mut self, from: RoleId, to: RoleId) -> Result<RoleHolders, ModelError> {
        editable(self.org, from)?;
        if from == to {
            return Err(ModelError::Other(format!(
                "role `{}` cannot replace itself",
                self.org.roles[from.index()].name
            )));
        }
        self.org.check_not_deprecated(to)?;
        let holders = self.org.role_holders(from);
        for h in &holders.users {
            let unit = h
                .business_unit
                .unwrap_or(self.org.users[h.user.index()].business_unit);
            self.org.check_role_usable(to, unit)?;
        }
        for t in &holders.teams {
            self.org
                .check_role_usable(to, self.org.teams[t.index()].business_unit)?;
        }
        self.stale = true;
        let mut seen = Vec::new();
        for h in &holders.users {
            if seen.contains(&h.user) {
                continue;
            }
            seen.push(h.user);
            let u = self.org.user_mut(h.user);
            let mut roles: Vec<RoleAssignment> = Vec::with_capacity(u.roles.len());
            for a in &u.roles {
                let a = if a.role == from {
                    RoleAssignment {
                        role: to,
                        business_unit: a.business_unit,
                    }
                } else {
                    *a
                };
                if !roles.contains(&a) {
                    roles.push(a);
                }
            }
            u.roles = roles;
        }
        for t in &holders.teams {
            let team = self.org.team_mut(*t);
            team.roles.retain(|r| *r != from);
            if !team.roles.contains(&to) {
                team.roles.push(to);
            }
        }
        Ok(holders)
    }

    /// Deletes a role. While users or teams hold it or apps are associated with it, it is
    /// refused (`role_in_use`) unless `replacement` names a role: then every holder and app
    /// moves to it at once. Deprecations that name it as a successor name the replacement
    /// instead (or drop it). The System Administrator role is not deleted (D10).
    pub fn delete_role(
        &mut self,
        role: RoleId,
        replacement: Option<RoleId>,
    ) -> Result<(), ModelError> {
        editable(self.org, role)?;
        let holders = self.org.role_holders(role);
        let name = self.org.roles[role.index()].name.clone();
        // A role rule names roles by id: a deleted role would leave it meaning nothing.
        let rules = self
            .org
            .role_rules()
            .iter()
            .filter(|r| r.roles().contains(&role))
            .count();
        if rules > 0 {
            return Err(ModelError::RoleInUse {
                role: name,
                holders: format!("named by {rules} role rule(s) (remove them first)"),
            });
        }
        match replacement {
            None if !holders.is_empty() => {
                let mut parts = Vec::new();
                if !holders.users.is_empty() {
                    parts.push(format!("held by {} user(s)", holders.users.len()));
                }
                if !holders.teams.is_empty() {
                    parts.push(format!("held by {} team(s)", holders.teams.len()));
                }
                if !holders.apps.is_empty() {
                    parts.push(format!("associated with {} app(s)", holders.apps.len()));
                }
                return Err(ModelError::RoleInUse {
                    role: name,
                    holders: format!(
                        "{}: name a `replacement` role to move them to",
                        parts.join(" and ")
                    ),
                });
            }
            None => {}
            Some(to) => {
                self.replace_role(role, to)?;
                for a in &holders.apps {
                    let app = self.org.app_mut(*a);
                    app.roles.retain(|r| *r != role);
                    if !app.roles.contains(&to) {
                        app.roles.push(to);
                    }
                }
            }
        }
        self.stale = true;
        // Deprecations naming this role as a successor name the replacement instead.
        for i in 0..self.org.roles.len() {
            let other = RoleId::from_index(i);
            let names_it = self.org.roles[i]
                .deprecation
                .as_ref()
                .is_some_and(|d| d.successors.contains(&role));
            if names_it && let Some(d) = self.org.role_mut(other).deprecation.as_mut() {
                let mut list: Vec<RoleId> = Vec::new();
                for s in d.successors.iter().map(|s| {
                    if *s == role {
                        replacement.unwrap_or(role)
                    } else {
                        *s
                    }
                }) {
                    if s != role && s != other && !list.contains(&s) {
                        list.push(s);
                    }
                }
                d.successors = list;
            }
        }
        self.org.set_name(NameKind::Roles, &name, None);
        let r = self.org.role_mut(role);
        r.deleted = true;
        r.deprecation = None;
        Ok(())
    }
}
