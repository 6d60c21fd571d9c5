//! The naive oracle: the rules of `docs/semantics.md`, written from the text with plain data and
//! plain loops. Nothing here is precomputed or indexed: grants are recomputed on every call, a unit
//! is in a subtree when walking its parents reaches the top, inheritance recurses up the lookups and
//! hierarchy walks manager chains and position parents.

use std::collections::BTreeMap;

use super::spec::{
    Applies, CREATE, Depth, HierSpec, OnDelete, Own, PRIVILEGE_BITS, Spec, TeamKind, Who,
};

/// Every right but Create: what the parent's owner inherits through a reparent link (D8).
pub const INHERITED_MASK: u32 = 851_991;
/// Read, Write, Append, AppendTo: what hierarchy gives over a direct report (D3).
pub const HIERARCHY_DIRECT: u32 = 0x1 | 0x2 | 0x4 | 0x10;
/// Read: what hierarchy gives over reports further down.
pub const HIERARCHY_INDIRECT: u32 = 0x1;
/// `limits::MAX_PARENT_CHAIN`.
pub const MAX_LINKS: usize = 32;

/// Kinds of grant path, as bit flags.
pub mod kind {
    pub const OWNERSHIP: u16 = 1;
    pub const TEAM_OWNERSHIP: u16 = 1 << 1;
    pub const ROLE_DEPTH: u16 = 1 << 2;
    pub const SHARE: u16 = 1 << 3;
    pub const TEAM_SHARE: u16 = 1 << 4;
    pub const ORGANIZATION_SHARE: u16 = 1 << 5;
    pub const INHERITED: u16 = 1 << 6;
    pub const HIERARCHY: u16 = 1 << 7;
    pub const SYSTEM_ADMINISTRATOR: u16 = 1 << 8;
    pub const NAMES: [&str; 9] = [
        "ownership",
        "team_ownership",
        "role_depth",
        "share",
        "team_share",
        "organization_share",
        "inherited",
        "hierarchy",
        "system_administrator",
    ];

    pub fn names(kinds: u16) -> String {
        let v: Vec<&str> = (0..9)
            .filter(|i| kinds & (1 << i) != 0)
            .map(|i| NAMES[i])
            .collect();
        format!("{{{}}}", v.join(", "))
    }
}

#[derive(Clone, Debug)]
pub struct Role {
    pub team_only: bool,
    pub sysadmin: bool,
    /// (table, privilege) -> depth.
    pub privileges: BTreeMap<(usize, usize), Depth>,
}

#[derive(Clone, Debug)]
pub struct User {
    pub unit: usize,
    pub enabled: bool,
    pub roles: Vec<(usize, Option<usize>)>,
    pub manager: Option<usize>,
    pub position: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct Team {
    pub kind: TeamKind,
    pub unit: usize,
    pub members: Vec<usize>,
    pub roles: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Rel {
    pub reparent: Applies,
    pub share: Applies,
    pub delete: OnDelete,
}

#[derive(Clone, Debug)]
pub struct Record {
    pub table: usize,
    pub owner: Own,
    pub unit: usize,
    pub active: bool,
    /// False once deleted.
    pub alive: bool,
    pub lookups: Vec<(usize, usize)>,
    /// At most one share per principal (a second share adds rights to the first).
    pub shares: Vec<(Who, u32)>,
}

/// The organisation as the oracle sees it: users' own records come first among the records
/// (record `u` is user `u`'s `systemuser` record), record access teams come after the spec's teams.
#[derive(Clone, Debug)]
pub struct World {
    pub units: Vec<Option<usize>>,
    pub org_owned: Vec<bool>,
    pub rels: Vec<Rel>,
    pub roles: Vec<Role>,
    pub positions: Vec<Option<usize>>,
    pub users: Vec<User>,
    pub teams: Vec<Team>,
    pub records: Vec<Record>,
    pub hierarchy: Option<HierSpec>,
    /// For each of the spec's deletes, whether it ran.
    pub deleted_ok: Vec<bool>,
}

/// One grant: a role privilege held by the user, at a depth, measured from an anchor unit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Grant {
    pub role: usize,
    pub depth: Depth,
    pub anchor: usize,
    /// The team holding the role; `None` for a direct role.
    pub team: Option<usize>,
    pub team_only: bool,
}

impl Grant {
    /// A grant is personal unless it comes from a `team_only` role.
    pub fn personal(&self) -> bool {
        !self.team_only
    }
}

/// Why the oracle denies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Denied {
    Disabled,
    Deleted,
    NoPrivilege,
    NoAccessPath,
}

/// The oracle's full answer for one (user, privilege, record).
#[derive(Clone, Debug)]
pub struct Answer {
    /// Every kind of path that allows.
    pub kinds: u16,
    pub denied: Option<Denied>,
    pub grants: Vec<Grant>,
}

impl Answer {
    pub fn allowed(&self) -> bool {
        self.denied.is_none()
    }
}

fn has(mask: u32, privilege: usize) -> bool {
    mask & PRIVILEGE_BITS[privilege] != 0
}

impl World {
    /// Builds the oracle's organisation from a spec, as the setup calls would build it.
    pub fn new(spec: &Spec) -> World {
        let users: Vec<User> = spec
            .users
            .iter()
            .map(|u| User {
                unit: u.unit,
                enabled: u.enabled,
                roles: u.roles.clone(),
                manager: u.manager,
                position: u.position,
            })
            .collect();
        let mut teams: Vec<Team> = spec
            .teams
            .iter()
            .map(|t| Team {
                kind: t.kind,
                unit: t.unit,
                members: t.members.clone(),
                roles: t.roles.clone(),
            })
            .collect();
        let mut org_owned = vec![false];
        org_owned.extend(spec.tables.iter().copied());
        let mut records = Vec::new();
        // Each user's own `systemuser` record: owned by the user, in the user's unit.
        for (i, u) in users.iter().enumerate() {
            records.push(Record {
                table: 0,
                owner: Own::User(i),
                unit: u.unit,
                active: true,
                alive: true,
                lookups: Vec::new(),
                shares: Vec::new(),
            });
        }
        let first = records.len();
        for r in &spec.records {
            let owner_unit = match r.owner {
                Own::User(u) => users[u].unit,
                Own::Team(t) => teams[t].unit,
                Own::Nobody => 0,
            };
            records.push(Record {
                table: r.table,
                owner: r.owner,
                unit: r.unit.unwrap_or(owner_unit),
                active: r.active,
                alive: true,
                lookups: r.lookups.iter().map(|(rel, p)| (*rel, first + p)).collect(),
                shares: Vec::new(),
            });
        }
        let add_share = |rec: &mut Record, who: Who, mask: u32| {
            if let Some(s) = rec.shares.iter_mut().find(|s| s.0 == who) {
                s.1 |= mask;
            } else {
                rec.shares.push((who, mask));
            }
        };
        for s in &spec.shares {
            add_share(&mut records[first + s.record], s.who, s.mask);
        }
        // Record access teams: one access team per (record, template), shared the template's rights.
        let mut access_teams: Vec<((usize, usize), usize)> = Vec::new();
        for m in &spec.access_members {
            let key = (m.record, m.template);
            let team = match access_teams.iter().find(|(k, _)| *k == key) {
                Some((_, t)) => *t,
                None => {
                    let t = teams.len();
                    teams.push(Team {
                        kind: TeamKind::Access,
                        unit: records[first + m.record].unit,
                        members: Vec::new(),
                        roles: Vec::new(),
                    });
                    access_teams.push((key, t));
                    add_share(
                        &mut records[first + m.record],
                        Who::Team(t),
                        spec.templates[m.template].rights,
                    );
                    t
                }
            };
            if !teams[team].members.contains(&m.user) {
                teams[team].members.push(m.user);
            }
        }
        let mut world = World {
            units: spec.units.clone(),
            org_owned,
            rels: spec
                .rels
                .iter()
                .map(|r| Rel {
                    reparent: r.reparent,
                    share: r.share,
                    delete: r.delete,
                })
                .collect(),
            roles: spec
                .roles
                .iter()
                .map(|r| Role {
                    team_only: r.team_only,
                    sysadmin: r.sysadmin,
                    privileges: r
                        .privileges
                        .iter()
                        .map(|(t, p, d)| ((*t, *p), *d))
                        .collect(),
                })
                .collect(),
            positions: spec.positions.clone(),
            users,
            teams,
            records,
            hierarchy: spec.hierarchy.clone(),
            deleted_ok: Vec::new(),
        };
        world.deleted_ok = spec
            .deletes
            .iter()
            .map(|d| world.delete(first + d))
            .collect();
        world
    }

    /// `delete_record` (D15): children through a `cascade` relationship are deleted too,
    /// `remove_link` children lose the lookup, and a `restrict` child anywhere in the cascade
    /// refuses the whole delete. Users' own records are never deleted. Returns whether it ran.
    pub fn delete(&mut self, record: usize) -> bool {
        if !self.records[record].alive || self.records[record].table == 0 {
            return false;
        }
        let mut doomed = vec![record];
        let mut unlink = Vec::new();
        let mut i = 0;
        while i < doomed.len() {
            let current = doomed[i];
            for (child, rec) in self.records.iter().enumerate() {
                if !rec.alive {
                    continue;
                }
                for (rel, parent) in &rec.lookups {
                    if *parent != current {
                        continue;
                    }
                    match self.rels[*rel].delete {
                        OnDelete::Cascade => {
                            if !doomed.contains(&child) {
                                doomed.push(child);
                            }
                        }
                        OnDelete::RemoveLink => unlink.push((child, *rel, current)),
                        OnDelete::Restrict => return false,
                    }
                }
            }
            i += 1;
        }
        for (child, rel, parent) in unlink {
            if !doomed.contains(&child) {
                self.records[child].lookups.retain(|l| *l != (rel, parent));
            }
        }
        for d in doomed {
            let rec = &mut self.records[d];
            rec.alive = false;
            rec.lookups.clear();
            rec.shares.clear();
        }
        true
    }

    /// Whether `unit` is `top` or below it: walk up the parents.
    pub fn in_subtree(&self, top: usize, unit: usize) -> bool {
        let mut cur = Some(unit);
        while let Some(u) = cur {
            if u == top {
                return true;
            }
            cur = self.units[u];
        }
        false
    }

    pub fn is_member(&self, user: usize, team: usize) -> bool {
        self.teams[team].members.contains(&user)
    }

    /// The owner and group teams of the user (the teams whose roles count).
    fn role_teams(&self, user: usize) -> Vec<usize> {
        (0..self.teams.len())
            .filter(|t| self.teams[*t].kind != TeamKind::Access && self.is_member(user, *t))
            .collect()
    }

    /// Rule 2: the System Administrator role, held directly or by an owner/group team of the user.
    pub fn is_sysadmin(&self, user: usize) -> bool {
        self.users[user]
            .roles
            .iter()
            .any(|(r, _)| self.roles[*r].sysadmin)
            || self
                .role_teams(user)
                .iter()
                .any(|t| self.teams[*t].roles.iter().any(|r| self.roles[*r].sysadmin))
    }

    /// Rule 3: every grant of (table, privilege), recomputed from the roles.
    pub fn grants(&self, user: usize, table: usize, privilege: usize) -> Vec<Grant> {
        let u = &self.users[user];
        let mut out = Vec::new();
        for (role, assigned_in) in &u.roles {
            let depth = self.roles[*role]
                .privileges
                .get(&(table, privilege))
                .copied()
                .unwrap_or(Depth::None);
            if depth != Depth::None {
                out.push(Grant {
                    role: *role,
                    depth,
                    anchor: assigned_in.unwrap_or(u.unit),
                    team: None,
                    team_only: false,
                });
            }
        }
        for t in self.role_teams(user) {
            for role in &self.teams[t].roles {
                let depth = self.roles[*role]
                    .privileges
                    .get(&(table, privilege))
                    .copied()
                    .unwrap_or(Depth::None);
                if depth != Depth::None {
                    out.push(Grant {
                        role: *role,
                        depth,
                        anchor: self.teams[t].unit,
                        team: Some(t),
                        team_only: self.roles[*role].team_only,
                    });
                }
            }
        }
        out
    }

    /// Whether the user acts for a principal (rules 4, 5, 6): the user with a personal grant, a team
    /// of the user with a personal grant or a `team_only` grant from that team, the organisation with a
    /// personal grant.
    fn acts_for(&self, user: usize, grants: &[Grant], who: Who) -> bool {
        let personal = grants.iter().any(Grant::personal);
        match who {
            Who::User(u) => u == user && personal,
            Who::Org => personal,
            Who::Team(t) => {
                self.is_member(user, t)
                    && (personal || grants.iter().any(|g| g.team_only && g.team == Some(t)))
            }
        }
    }

    fn owner_principal(owner: Own) -> Option<Who> {
        match owner {
            Own::User(u) => Some(Who::User(u)),
            Own::Team(t) => Some(Who::Team(t)),
            Own::Nobody => None,
        }
    }

    /// Rule 4, depth part: whether the grant's depth, measured from its anchor, covers the unit.
    fn depth_covers(&self, g: &Grant, unit: usize) -> bool {
        match g.depth {
            Depth::None | Depth::User => false,
            Depth::BusinessUnit => unit == g.anchor,
            Depth::ParentChild => self.in_subtree(g.anchor, unit),
            Depth::Organization => true,
        }
    }

    /// The smallest depth that reaches `unit` from `anchor`.
    pub fn needed_depth(&self, anchor: usize, unit: usize) -> Depth {
        if anchor == unit {
            Depth::BusinessUnit
        } else if self.in_subtree(anchor, unit) {
            Depth::ParentChild
        } else {
            Depth::Organization
        }
    }

    /// Rule 4: ownership and role depth, for an existing record or a record about to be created.
    fn ownership_and_depth(&self, user: usize, grants: &[Grant], owner: Own, unit: usize) -> u16 {
        let mut kinds = 0;
        for g in grants {
            match owner {
                Own::User(o) if o == user && g.personal() => kinds |= kind::OWNERSHIP,
                Own::Team(t)
                    if self.is_member(user, t)
                        && (g.personal() || (g.team_only && g.team == Some(t))) =>
                {
                    kinds |= kind::TEAM_OWNERSHIP;
                }
                _ => {}
            }
            if self.depth_covers(g, unit) {
                kinds |= kind::ROLE_DEPTH;
            }
        }
        kinds
    }

    fn cascade_applies(applies: Applies, child: &Record, parent: &Record) -> bool {
        match applies {
            Applies::All => true,
            Applies::Active => child.active,
            Applies::UserOwned => child.owner == parent.owner,
            Applies::Never => false,
        }
    }

    /// Rule 6: walk up the lookups of `record`; `links` is how many links were walked already.
    ///
    /// Each link is judged on its own cascade (applied to that link's child): reparent passes the
    /// parent's owner (every right but Create) and sharees, share passes the sharees (their mask
    /// without Create). The text does not say what a link through which nothing cascades does to
    /// the rest of the walk; the oracle reads "through a link" as: the ancestors' access reaches
    /// the record only through links that cascade, so such a link ends the walk (a referential
    /// lookup must not leak a grandparent's access to a grandchild).
    fn inherited(
        &self,
        user: usize,
        grants: &[Grant],
        privilege: usize,
        record: usize,
        links: usize,
    ) -> bool {
        if links >= MAX_LINKS {
            return false;
        }
        let child = &self.records[record];
        for (rel, parent_id) in &child.lookups {
            let parent = &self.records[*parent_id];
            let rel = &self.rels[*rel];
            let reparent = Self::cascade_applies(rel.reparent, child, parent);
            let share = Self::cascade_applies(rel.share, child, parent);
            // A link through which nothing cascades passes nothing, not even what its parent
            // inherits from further up: the grandparent's access reaches the record only
            // *through* every link of the way ("referential: nothing cascades").
            if !reparent && !share {
                continue;
            }
            if reparent
                && has(INHERITED_MASK, privilege)
                && let Some(owner) = Self::owner_principal(parent.owner)
                && self.acts_for(user, grants, owner)
            {
                return true;
            }
            // Either cascade passes the parent's sharees' rights.
            for (who, mask) in &parent.shares {
                let without_create = mask & !PRIVILEGE_BITS[CREATE];
                if has(without_create, privilege) && self.acts_for(user, grants, *who) {
                    return true;
                }
            }
            if self.inherited(user, grants, privilege, *parent_id, links + 1) {
                return true;
            }
        }
        false
    }

    /// Whether hierarchy security is on and applies to the table.
    fn hierarchy_applies(&self, table: usize) -> bool {
        match &self.hierarchy {
            None => false,
            Some(h) => match &h.tables {
                None => !self.org_owned[table],
                Some(list) => list.contains(&table),
            },
        }
    }

    /// The reports a user reaches, with their level (1 = direct).
    pub fn reports(&self, user: usize) -> Vec<(usize, u8)> {
        let Some(h) = &self.hierarchy else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for report in 0..self.users.len() {
            if report == user {
                continue;
            }
            if h.manager_model {
                // Walk up the report's manager chain looking for the user.
                let mut level: u8 = 0;
                let mut cur = self.users[report].manager;
                while let Some(m) = cur {
                    level += 1;
                    if level > h.depth {
                        break;
                    }
                    if m == user {
                        let mu = self.users[user].unit;
                        let ru = self.users[report].unit;
                        let unit_ok = !h.same_or_parent || mu == ru || self.units[ru] == Some(mu);
                        if unit_ok {
                            out.push((report, level));
                        }
                        break;
                    }
                    cur = self.users[m].manager;
                }
            } else {
                // Walk up the report's position's parents looking for the user's position.
                let (Some(mine), Some(theirs)) =
                    (self.users[user].position, self.users[report].position)
                else {
                    continue;
                };
                let mut level: u8 = 0;
                let mut cur = self.positions[theirs];
                while let Some(p) = cur {
                    level += 1;
                    if level > h.depth {
                        break;
                    }
                    if p == mine {
                        out.push((report, level));
                        break;
                    }
                    cur = self.positions[p];
                }
            }
        }
        out
    }

    /// Rule 7.
    fn hierarchy(&self, user: usize, grants: &[Grant], privilege: usize, record: usize) -> bool {
        let rec = &self.records[record];
        if !self.hierarchy_applies(rec.table) || !grants.iter().any(Grant::personal) {
            return false;
        }
        for (report, level) in self.reports(user) {
            let rights = if level == 1 {
                HIERARCHY_DIRECT
            } else {
                HIERARCHY_INDIRECT
            };
            if !has(rights, privilege) {
                continue;
            }
            match rec.owner {
                Own::User(o) if o == report => return true,
                Own::Team(t) if self.is_member(report, t) => return true,
                _ => {}
            }
            for (who, mask) in &rec.shares {
                let to_report = match who {
                    Who::User(u) => *u == report,
                    Who::Team(t) => self.is_member(report, *t),
                    Who::Org => false,
                };
                if to_report && has(*mask, privilege) {
                    return true;
                }
            }
        }
        false
    }

    /// `check(user, privilege, record)`, with every kind of path that allows.
    pub fn decide(&self, user: usize, privilege: usize, record: usize) -> Answer {
        let deny = |why, grants| Answer {
            kinds: 0,
            denied: Some(why),
            grants,
        };
        let rec = &self.records[record];
        let grants = self.grants(user, rec.table, privilege);
        // 1.
        if !self.users[user].enabled {
            return deny(Denied::Disabled, grants);
        }
        if !rec.alive {
            return deny(Denied::Deleted, grants);
        }
        // 2.
        if self.is_sysadmin(user) {
            return Answer {
                kinds: kind::SYSTEM_ADMINISTRATOR,
                denied: None,
                grants,
            };
        }
        // 3.
        if grants.is_empty() {
            return deny(Denied::NoPrivilege, grants);
        }
        // 4.
        let mut kinds = self.ownership_and_depth(user, &grants, rec.owner, rec.unit);
        // 5.
        for (who, mask) in &rec.shares {
            if has(*mask, privilege) && self.acts_for(user, &grants, *who) {
                kinds |= match who {
                    Who::User(_) => kind::SHARE,
                    Who::Team(_) => kind::TEAM_SHARE,
                    Who::Org => kind::ORGANIZATION_SHARE,
                };
            }
        }
        // 6.
        if self.inherited(user, &grants, privilege, record, 0) {
            kinds |= kind::INHERITED;
        }
        // 7.
        if self.hierarchy(user, &grants, privilege, record) {
            kinds |= kind::HIERARCHY;
        }
        // 8.
        if kinds == 0 {
            return deny(Denied::NoAccessPath, grants);
        }
        Answer {
            kinds,
            denied: None,
            grants,
        }
    }

    /// The unit a new record of this owner belongs to by default.
    pub fn owner_unit(&self, owner: Own) -> usize {
        match owner {
            Own::User(u) => self.users[u].unit,
            Own::Team(t) => self.teams[t].unit,
            Own::Nobody => 0,
        }
    }

    /// `check_create`: rules 1–4 against the new record's owner and unit (D1).
    pub fn decide_create(
        &self,
        user: usize,
        table: usize,
        owner: Own,
        unit: Option<usize>,
    ) -> bool {
        if !self.users[user].enabled {
            return false;
        }
        if self.is_sysadmin(user) {
            return true;
        }
        let grants = self.grants(user, table, CREATE);
        let unit = unit.unwrap_or_else(|| self.owner_unit(owner));
        self.ownership_and_depth(user, &grants, owner, unit) != 0
    }
}
