//! Indexes derived from the configured model and rebuilt on every change to it: each user's
//! flattened privilege grants, System Administrator status, and hierarchy reach.

use crate::ids::{BusinessUnitId, RoleId, TableId, TeamId, UserId};
use crate::model::{HierarchyModel, Inheritance, Ownership};
use crate::organization::Organization;
use crate::privilege::{Depth, Privilege};

/// Where a grant comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Via {
    /// A role assigned to the user.
    Direct,
    /// A role held by a team the user belongs to.
    Team {
        /// The team.
        team: TeamId,
        /// The role's member's privilege inheritance is `team_only` (D4).
        team_only: bool,
    },
}

/// One privilege a user holds on one table: from one role, at one depth, measured from one unit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Grant {
    /// Table.
    pub table: TableId,
    /// Privilege.
    pub privilege: Privilege,
    /// Depth (never `Depth::None`).
    pub depth: Depth,
    /// The unit the depth is measured from: the user's unit, the assignment's unit in the
    /// matrix model, or the team's unit for team roles.
    pub anchor: BusinessUnitId,
    /// The role.
    pub role: RoleId,
    /// Direct, or through a team.
    pub via: Via,
}

impl Grant {
    /// Whether the grant acts for the user personally (not `team_only`).
    #[must_use]
    pub fn is_personal(&self) -> bool {
        !matches!(
            self.via,
            Via::Team {
                team_only: true,
                ..
            }
        )
    }
}

/// Where a user's System Administrator status comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AdminSource {
    /// The System Administrator role.
    pub role: RoleId,
    /// The team holding it, when not assigned directly.
    pub team: Option<TeamId>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Derived {
    /// Per user: grants sorted by (table, privilege), deepest first.
    pub(crate) grants: Vec<Vec<Grant>>,
    /// Per user: System Administrator through some role.
    pub(crate) admin: Vec<Option<AdminSource>>,
    /// Per manager: the reports hierarchy security reaches, with their level (1 = direct).
    pub(crate) reports: Vec<Vec<(UserId, u8)>>,
    /// Per table: hierarchy security applies.
    pub(crate) hierarchy_tables: Vec<bool>,
}

impl Derived {
    pub(crate) fn build(org: &Organization) -> Derived {
        let (grants, admin) = (0..org.users.len())
            .map(|i| user_grants(org, UserId::from_index(i)))
            .unzip();
        Derived {
            grants,
            admin,
            reports: build_reports(org),
            hierarchy_tables: hierarchy_tables(org),
        }
    }
}

/// Every grant of one user, sorted by (table, privilege), deepest first, and where the user's
/// System Administrator status comes from.
fn user_grants(org: &Organization, uid: UserId) -> (Vec<Grant>, Option<AdminSource>) {
    let user = &org.users[uid.index()];
    let mut list = Vec::new();
    let mut admin_source = None;
    for assignment in &user.roles {
        let role = &org.roles[assignment.role.index()];
        if role.system_administrator && admin_source.is_none() {
            admin_source = Some(AdminSource {
                role: assignment.role,
                team: None,
            });
        }
        let anchor = org.assignment_unit(uid, *assignment);
        push_role_grants(&mut list, org, assignment.role, anchor, Via::Direct);
    }
    for team_id in &user.teams {
        let team = &org.teams[team_id.index()];
        for role_id in &team.roles {
            let role = &org.roles[role_id.index()];
            let team_only = role.inheritance == Inheritance::TeamOnly;
            if role.system_administrator && admin_source.is_none() {
                admin_source = Some(AdminSource {
                    role: *role_id,
                    team: Some(*team_id),
                });
            }
            let via = Via::Team {
                team: *team_id,
                team_only,
            };
            push_role_grants(&mut list, org, *role_id, team.business_unit, via);
        }
    }
    // D48/D49: the user's licences cap what the roles give (System Administrators excepted).
    if org.licensing_enforced() && admin_source.is_none() {
        for g in &mut list {
            g.depth = org.cap_depth(uid, g.table, g.privilege, g.depth);
        }
        list.retain(|g| g.depth > Depth::None);
    }
    list.sort_by(|a, b| {
        (a.table, a.privilege, std::cmp::Reverse(a.depth)).cmp(&(
            b.table,
            b.privilege,
            std::cmp::Reverse(b.depth),
        ))
    });
    list.dedup();
    (list, admin_source)
}

fn hierarchy_tables(org: &Organization) -> Vec<bool> {
    org.tables
        .iter()
        .enumerate()
        .map(|(i, t)| match &org.settings.hierarchy {
            None => false,
            Some(h) => match &h.tables {
                None => t.ownership == Ownership::UserOrTeam,
                Some(list) => list.contains(&TableId::from_index(i)),
            },
        })
        .collect()
}

impl Organization {
    /// Recomputes the grants of some users (after their roles or teams changed).
    pub(crate) fn refresh_users(&mut self, users: &[UserId]) {
        if self.derived.grants.len() != self.users.len() {
            self.refresh();
            return;
        }
        for u in users {
            let (grants, admin) = user_grants(self, *u);
            self.replace_grants(*u, grants, admin);
        }
    }

    /// Whether the derived indexes equal a full rebuild (for tests of the incremental updates).
    #[doc(hidden)]
    #[must_use]
    pub fn indexes_are_current(&self) -> bool {
        self.derived == Derived::build(self)
    }

    /// Recomputes hierarchy reach (after a manager, position or unit changed).
    pub(crate) fn refresh_hierarchy(&mut self) {
        let reports = build_reports(self);
        self.replace_reports(reports);
    }
}

fn push_role_grants(
    list: &mut Vec<Grant>,
    org: &Organization,
    role_id: RoleId,
    anchor: BusinessUnitId,
    via: Via,
) {
    let role = &org.roles[role_id.index()];
    for (table, depths) in &role.privileges {
        for privilege in Privilege::ALL {
            let depth = depths[privilege.index()];
            if depth > Depth::None {
                list.push(Grant {
                    table: *table,
                    privilege,
                    depth,
                    anchor,
                    role: role_id,
                    via,
                });
            }
        }
    }
}

/// For each manager, the users whose records hierarchy security lets them reach (D3).
fn build_reports(org: &Organization) -> Vec<Vec<(UserId, u8)>> {
    let mut reports: Vec<Vec<(UserId, u8)>> = vec![Vec::new(); org.users.len()];
    let Some(h) = &org.settings.hierarchy else {
        return reports;
    };
    match h.model {
        HierarchyModel::Manager => {
            for (index, user) in org.users.iter().enumerate() {
                let report = UserId::from_index(index);
                let report_unit = user.business_unit;
                let mut cur = user.manager;
                let mut level = 1u8;
                while let Some(manager) = cur {
                    if level > h.depth || manager == report {
                        break;
                    }
                    let manager_unit = org.users[manager.index()].business_unit;
                    let allowed = !h.managers_must_be_in_same_or_parent_business_unit
                        || manager_unit == report_unit
                        || org.units.parent(report_unit) == Some(manager_unit);
                    if allowed {
                        add_report(&mut reports[manager.index()], report, level);
                    }
                    cur = org.users[manager.index()].manager;
                    level += 1;
                }
            }
        }
        HierarchyModel::Position => {
            let mut holders: Vec<Vec<UserId>> = vec![Vec::new(); org.positions.len()];
            for (index, user) in org.users.iter().enumerate() {
                if let Some(p) = user.position {
                    holders[p.index()].push(UserId::from_index(index));
                }
            }
            for (index, user) in org.users.iter().enumerate() {
                let report = UserId::from_index(index);
                let Some(position) = user.position else {
                    continue;
                };
                let mut cur = org.positions[position.index()].parent;
                let mut level = 1u8;
                while let Some(p) = cur {
                    if level > h.depth {
                        break;
                    }
                    for manager in &holders[p.index()] {
                        if *manager != report {
                            add_report(&mut reports[manager.index()], report, level);
                        }
                    }
                    cur = org.positions[p.index()].parent;
                    level += 1;
                }
            }
        }
    }
    reports
}

fn add_report(list: &mut Vec<(UserId, u8)>, report: UserId, level: u8) {
    if let Some(entry) = list.iter_mut().find(|(r, _)| *r == report) {
        entry.1 = entry.1.min(level);
    } else {
        list.push((report, level));
    }
}

impl Organization {
    /// The grants a user holds for one privilege on one table (empty when none).
    #[must_use]
    pub fn grants(&self, user: UserId, table: TableId, privilege: Privilege) -> &[Grant] {
        let all = &self.derived.grants[user.index()];
        let start = all.partition_point(|g| (g.table, g.privilege) < (table, privilege));
        let end =
            start + all[start..].partition_point(|g| g.table == table && g.privilege == privilege);
        &all[start..end]
    }

    /// Every grant a user holds, sorted by table and privilege.
    #[must_use]
    pub fn all_grants(&self, user: UserId) -> &[Grant] {
        &self.derived.grants[user.index()]
    }

    /// Whether (and through which role) the user is a System Administrator.
    #[must_use]
    pub fn system_administrator(&self, user: UserId) -> Option<AdminSource> {
        self.derived.admin[user.index()]
    }

    /// The users a manager reaches through hierarchy security, with their level (1 = direct).
    #[must_use]
    pub fn hierarchy_reports(&self, manager: UserId) -> &[(UserId, u8)] {
        &self.derived.reports[manager.index()]
    }

    /// Whether hierarchy security applies to a table.
    #[must_use]
    pub fn hierarchy_applies(&self, table: TableId) -> bool {
        self.derived
            .hierarchy_tables
            .get(table.index())
            .copied()
            .unwrap_or(false)
    }

    /// The highest depth a user holds for a privilege on a table, from any role.
    #[must_use]
    pub fn max_depth(&self, user: UserId, table: TableId, privilege: Privilege) -> Depth {
        if self.system_administrator(user).is_some() {
            return Depth::Organization;
        }
        self.grants(user, table, privilege)
            .iter()
            .map(|g| g.depth)
            .max()
            .unwrap_or(Depth::None)
    }

    /// Whether a user holds a miscellaneous privilege (by `prv` name, case-insensitive).
    #[must_use]
    pub fn holds_misc(&self, user: UserId, name: &str) -> bool {
        if self.system_administrator(user).is_some() {
            return true;
        }
        let u = &self.users[user.index()];
        let role_has = |r: RoleId| {
            self.roles[r.index()]
                .misc
                .iter()
                .any(|m| m.eq_ignore_ascii_case(name))
        };
        (u.roles.iter().any(|a| role_has(a.role))
            || u.teams
                .iter()
                .any(|t| self.teams[t.index()].roles.iter().any(|r| role_has(*r))))
            && self.licence_allows_misc(user, name)
    }
}
