//! A random organisation as plain data: what the generator draws from a seed, what the shrinker
//! cuts down, and what both the oracle and the engine are built from.
//!
//! Index spaces: units, roles, positions, users, teams, templates, relationships and records are
//! positions in their vectors. Tables are numbered as the oracle sees them: 0 is the built-in
//! `systemuser` table (whose records are the users' own records), 1.. are `Spec::tables`.

use std::fmt;

/// Privileges by oracle index, in this order.
pub const PRIVILEGE_NAMES: [&str; 8] = [
    "create",
    "read",
    "write",
    "delete",
    "append",
    "append_to",
    "assign",
    "share",
];
/// Dataverse `AccessRights` bit of each privilege (same order as `PRIVILEGE_NAMES`).
pub const PRIVILEGE_BITS: [u32; 8] = [0x20, 0x1, 0x2, 0x1_0000, 0x4, 0x10, 0x8_0000, 0x4_0000];
/// Oracle index of Create.
pub const CREATE: usize = 0;
/// Oracle index of Read.
pub const READ: usize = 1;

/// Depth of a privilege in a role (ordered: a larger depth includes the smaller ones).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Depth {
    None,
    User,
    BusinessUnit,
    ParentChild,
    Organization,
}

/// A cascade setting of a relationship (assign, share, unshare, reparent).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Applies {
    /// Cascade All.
    All,
    /// Cascade Active.
    Active,
    /// Cascade User-Owned.
    UserOwned,
    /// Cascade None.
    Never,
}

/// What deleting a parent does (irrelevant to decisions, but configured at random).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OnDelete {
    Cascade,
    RemoveLink,
    Restrict,
}

/// Team type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TeamKind {
    Owner,
    Access,
    SecurityGroup,
    OfficeGroup,
}

/// A principal: who a record is shared with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Who {
    User(usize),
    Team(usize),
    Org,
}

/// A record owner.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Own {
    User(usize),
    Team(usize),
    Nobody,
}

/// A one-to-many relationship between two user-or-team owned tables.
#[derive(Clone, Debug)]
pub struct RelSpec {
    pub parent: usize,
    pub child: usize,
    pub assign: Applies,
    pub share: Applies,
    pub unshare: Applies,
    pub reparent: Applies,
    pub delete: OnDelete,
}

/// A security role.
#[derive(Clone, Debug)]
pub struct RoleSpec {
    pub unit: usize,
    pub team_only: bool,
    pub sysadmin: bool,
    /// (table, privilege index, depth); at most one entry per (table, privilege).
    pub privileges: Vec<(usize, usize, Depth)>,
}

/// A user.
#[derive(Clone, Debug)]
pub struct UserSpec {
    pub unit: usize,
    pub enabled: bool,
    /// (role, unit of the assignment in the ownership-across-units model).
    pub roles: Vec<(usize, Option<usize>)>,
    pub manager: Option<usize>,
    pub position: Option<usize>,
}

/// A team (never a record access team: those come from `AccessMember`).
#[derive(Clone, Debug)]
pub struct TeamSpec {
    pub kind: TeamKind,
    pub unit: usize,
    pub members: Vec<usize>,
    pub roles: Vec<usize>,
}

/// An access team template.
#[derive(Clone, Debug)]
pub struct TemplateSpec {
    pub table: usize,
    pub rights: u32,
}

/// A record of a generated table.
#[derive(Clone, Debug)]
pub struct RecordSpec {
    pub table: usize,
    pub owner: Own,
    /// `None`: the owner's unit (the root for organization-owned records).
    pub unit: Option<usize>,
    pub active: bool,
    /// (relationship, parent record); parents always come earlier, so there are no cycles.
    pub lookups: Vec<(usize, usize)>,
}

/// An explicit share of a generated record.
#[derive(Clone, Debug)]
pub struct ShareSpec {
    pub record: usize,
    pub who: Who,
    pub mask: u32,
}

/// A member of the access team of (record, template).
#[derive(Clone, Debug)]
pub struct AccessMember {
    pub record: usize,
    pub template: usize,
    pub user: usize,
}

/// Hierarchy security settings.
#[derive(Clone, Debug)]
pub struct HierSpec {
    pub manager_model: bool,
    pub depth: u8,
    pub tables: Option<Vec<usize>>,
    pub same_or_parent: bool,
}

/// A whole organisation.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Parent of each unit; unit 0 is the root, a parent always comes before its children.
    pub units: Vec<Option<usize>>,
    /// Generated tables (table `i + 1`): true when organization-owned.
    pub tables: Vec<bool>,
    pub rels: Vec<RelSpec>,
    pub roles: Vec<RoleSpec>,
    /// Parent of each position (a parent always comes first).
    pub positions: Vec<Option<usize>>,
    pub users: Vec<UserSpec>,
    pub teams: Vec<TeamSpec>,
    pub templates: Vec<TemplateSpec>,
    pub records: Vec<RecordSpec>,
    pub shares: Vec<ShareSpec>,
    pub access_members: Vec<AccessMember>,
    /// Records deleted after setup (`delete_record` as the system), in order.
    pub deletes: Vec<usize>,
    pub across_units: bool,
    pub hierarchy: Option<HierSpec>,
}

impl Spec {
    /// Number of tables as the oracle numbers them (`systemuser` included).
    pub fn table_count(&self) -> usize {
        self.tables.len() + 1
    }

    /// Whether table `t` (oracle numbering) is organization-owned.
    pub fn org_owned(&self, t: usize) -> bool {
        t > 0 && self.tables[t - 1]
    }

    /// Whether a role may be used in a unit: the role's unit is the unit or one of its ancestors.
    pub fn role_usable(&self, role: usize, unit: usize) -> bool {
        let top = self.roles[role].unit;
        let mut cur = Some(unit);
        while let Some(u) = cur {
            if u == top {
                return true;
            }
            cur = self.units[u];
        }
        false
    }
}

// ----- a small seeded PRNG (splitmix64) -----

/// Deterministic random numbers from a seed.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// True with this probability in percent.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const APPLIES: [Applies; 4] = [
    Applies::All,
    Applies::Active,
    Applies::UserOwned,
    Applies::Never,
];
const RECORD_RIGHT_BITS: [u32; 7] = [0x1, 0x2, 0x4, 0x10, 0x1_0000, 0x4_0000, 0x8_0000];

fn random_depth(rng: &mut Rng, org_owned: bool) -> Depth {
    if org_owned {
        return if rng.chance(50) {
            Depth::Organization
        } else {
            Depth::None
        };
    }
    match rng.below(10) {
        0 | 1 => Depth::None,
        2..=4 => Depth::User,
        5 | 6 => Depth::BusinessUnit,
        7 | 8 => Depth::ParentChild,
        _ => Depth::Organization,
    }
}

/// Draws an organisation from a seed.
pub fn generate(seed: u64) -> Spec {
    let mut rng = Rng::new(seed);

    // Units: sometimes a chain, sometimes a bushy tree.
    let n_units = 1 + rng.below(8);
    let chainy = rng.chance(50);
    let mut units = vec![None];
    for i in 1..n_units {
        let parent = if chainy && rng.chance(70) {
            i - 1
        } else {
            rng.below(i)
        };
        units.push(Some(parent));
    }

    // Tables: two user-or-team owned tables, sometimes a third (organization-owned or not).
    let mut tables = vec![false, false];
    match rng.below(10) {
        0..=3 => tables.push(true),
        4 | 5 => tables.push(false),
        _ => {}
    }
    let user_tables: Vec<usize> = (0..tables.len())
        .filter(|i| !tables[*i])
        .map(|i| i + 1)
        .collect();

    // Relationships between user-or-team owned tables.
    let mut rels = Vec::new();
    for _ in 0..1 + rng.below(2) {
        let parent = rng.pick(&user_tables);
        let child = rng.pick(&user_tables);
        let rel = match rng.below(3) {
            0 => RelSpec {
                parent,
                child,
                assign: Applies::All,
                share: Applies::All,
                unshare: Applies::All,
                reparent: Applies::All,
                delete: OnDelete::Cascade,
            },
            1 => RelSpec {
                parent,
                child,
                assign: Applies::Never,
                share: Applies::Never,
                unshare: Applies::Never,
                reparent: Applies::Never,
                delete: if rng.chance(50) {
                    OnDelete::RemoveLink
                } else {
                    OnDelete::Restrict
                },
            },
            _ => RelSpec {
                parent,
                child,
                assign: rng.pick(&APPLIES),
                share: rng.pick(&APPLIES),
                unshare: rng.pick(&APPLIES),
                reparent: rng.pick(&APPLIES),
                delete: rng.pick(&[OnDelete::Cascade, OnDelete::RemoveLink, OnDelete::Restrict]),
            },
        };
        rels.push(rel);
    }

    // Now and then a chain of records longer than `limits::MAX_PARENT_CHAIN` through a
    // parental self-relationship.
    let long_chain = rng.chance(5);
    if long_chain {
        // Table 1 is always user-or-team owned.
        rels[0] = RelSpec {
            parent: 1,
            child: 1,
            assign: Applies::All,
            share: Applies::All,
            unshare: Applies::All,
            reparent: Applies::All,
            delete: OnDelete::Cascade,
        };
    }
    let across_units = rng.chance(20);
    let mut spec = Spec {
        units,
        tables,
        rels,
        roles: Vec::new(),
        positions: Vec::new(),
        users: Vec::new(),
        teams: Vec::new(),
        templates: Vec::new(),
        records: Vec::new(),
        shares: Vec::new(),
        access_members: Vec::new(),
        deletes: Vec::new(),
        across_units,
        hierarchy: None,
    };
    let n_units = spec.units.len();
    let n_tables = spec.table_count();

    // Roles.
    let with_admin = rng.chance(30);
    let n_roles = 2 + rng.below(5);
    for i in 0..n_roles {
        let unit = if rng.chance(60) {
            0
        } else {
            rng.below(n_units)
        };
        let density = 30 + rng.below(60) as u64;
        let mut privileges = Vec::new();
        for t in 0..n_tables {
            if t == 0 && rng.chance(50) {
                continue;
            }
            for p in 0..8 {
                if rng.chance(density) {
                    let d = random_depth(&mut rng, spec.org_owned(t));
                    privileges.push((t, p, d));
                }
            }
        }
        spec.roles.push(RoleSpec {
            unit,
            team_only: rng.chance(35),
            sysadmin: with_admin && i == n_roles - 1,
            privileges,
        });
    }

    // Positions.
    for i in 0..rng.below(5) {
        let parent = (i > 0 && rng.chance(75)).then(|| rng.below(i));
        spec.positions.push(parent);
    }

    // Users.
    let n_users = 2 + rng.below(9);
    for _ in 0..n_users {
        let unit = rng.below(n_units);
        let mut roles = Vec::new();
        for r in 0..spec.roles.len() {
            if !rng.chance(35) {
                continue;
            }
            if across_units && rng.chance(50) {
                let usable: Vec<usize> = (0..n_units).filter(|u| spec.role_usable(r, *u)).collect();
                let a = rng.pick(&usable);
                roles.push((r, Some(a)));
                if rng.chance(20) {
                    let b = rng.pick(&usable);
                    if b != a {
                        roles.push((r, Some(b)));
                    }
                }
            } else if spec.role_usable(r, unit) {
                roles.push((r, None));
            }
        }
        let position =
            (!spec.positions.is_empty() && rng.chance(70)).then(|| rng.below(spec.positions.len()));
        spec.users.push(UserSpec {
            unit,
            enabled: rng.chance(85),
            roles,
            manager: None,
            position,
        });
    }
    // Managers: a manager always comes earlier in a random order, so there is no cycle.
    let mut order: Vec<usize> = (0..n_users).collect();
    for i in (1..n_users).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    let chain = rng.chance(40);
    for i in 1..n_users {
        if rng.chance(65) {
            let m = if chain && rng.chance(60) {
                order[i - 1]
            } else {
                order[rng.below(i)]
            };
            spec.users[order[i]].manager = Some(m);
        }
    }

    // Teams.
    for _ in 0..rng.below(5) {
        let kind = rng.pick(&[
            TeamKind::Owner,
            TeamKind::Access,
            TeamKind::SecurityGroup,
            TeamKind::OfficeGroup,
        ]);
        let unit = rng.below(n_units);
        let members = (0..n_users).filter(|_| rng.chance(40)).collect();
        let mut roles = Vec::new();
        if kind != TeamKind::Access {
            for r in 0..spec.roles.len() {
                if rng.chance(30) && spec.role_usable(r, unit) {
                    roles.push(r);
                }
            }
        }
        spec.teams.push(TeamSpec {
            kind,
            unit,
            members,
            roles,
        });
    }
    let owner_teams: Vec<usize> = (0..spec.teams.len())
        .filter(|t| spec.teams[*t].kind != TeamKind::Access)
        .collect();

    // Access team templates.
    for _ in 0..rng.below(3) {
        let mut rights = 0;
        while rights == 0 {
            for bit in RECORD_RIGHT_BITS {
                if rng.chance(40) {
                    rights |= bit;
                }
            }
        }
        spec.templates.push(TemplateSpec {
            table: rng.pick(&user_tables),
            rights,
        });
    }

    // Records.
    let n_records = if long_chain {
        33 + rng.below(6)
    } else {
        3 + rng.below(23)
    };
    for i in 0..n_records {
        let table = if long_chain {
            1
        } else {
            1 + rng.below(spec.tables.len())
        };
        let mut lookups = Vec::new();
        for (ri, rel) in spec.rels.iter().enumerate() {
            if long_chain && ri == 0 && i > 0 {
                lookups.push((0, i - 1));
                continue;
            }
            if rel.child != table || !rng.chance(65) {
                continue;
            }
            let parents: Vec<usize> = (0..i)
                .filter(|p| spec.records[*p].table == rel.parent)
                .collect();
            if !parents.is_empty() {
                lookups.push((ri, rng.pick(&parents)));
            }
        }
        let owner = if spec.org_owned(table) {
            Own::Nobody
        } else if let Some(&(_, p)) = lookups.first()
            && rng.chance(40)
        {
            spec.records[p].owner
        } else if !owner_teams.is_empty() && rng.chance(30) {
            Own::Team(rng.pick(&owner_teams))
        } else {
            Own::User(rng.below(n_users))
        };
        let unit = (across_units && rng.chance(50)).then(|| rng.below(n_units));
        spec.records.push(RecordSpec {
            table,
            owner,
            unit,
            active: rng.chance(75),
            lookups,
        });
    }

    // Explicit shares.
    for _ in 0..rng.below(2 * n_records + 1) {
        let record = rng.below(n_records);
        let who = match rng.below(20) {
            0..=8 => Who::User(rng.below(n_users)),
            9..=15 if !spec.teams.is_empty() => Who::Team(rng.below(spec.teams.len())),
            _ => Who::Org,
        };
        let mut mask = 0;
        while mask == 0 {
            for bit in PRIVILEGE_BITS {
                if rng.chance(35) {
                    mask |= bit;
                }
            }
        }
        spec.shares.push(ShareSpec { record, who, mask });
    }

    // Record access team members.
    if !spec.templates.is_empty() {
        for _ in 0..rng.below(6) {
            let template = rng.below(spec.templates.len());
            let table = spec.templates[template].table;
            let records: Vec<usize> = (0..n_records)
                .filter(|r| spec.records[*r].table == table)
                .collect();
            if records.is_empty() {
                continue;
            }
            spec.access_members.push(AccessMember {
                record: rng.pick(&records),
                template,
                user: rng.below(n_users),
            });
        }
    }

    // Deletes after setup.
    if rng.chance(30) {
        for _ in 0..1 + rng.below(3) {
            spec.deletes.push(rng.below(n_records));
        }
    }

    // Hierarchy security.
    let model = rng.below(10);
    if model >= 4 {
        let tables = if rng.chance(50) {
            None
        } else {
            Some((0..n_tables).filter(|_| rng.chance(50)).collect())
        };
        spec.hierarchy = Some(HierSpec {
            manager_model: model < 7,
            depth: 1 + rng.below(3) as u8,
            tables,
            same_or_parent: rng.chance(70),
        });
    }
    spec
}

// ----- shrinking -----

fn shift(i: usize, removed: usize) -> usize {
    if i > removed { i - 1 } else { i }
}

/// Smaller organisations derived from `spec`, each one step simpler, all still valid.
pub fn candidates(spec: &Spec) -> Vec<Spec> {
    let mut out = Vec::new();
    // Whole features off first: they cut the most.
    if spec.hierarchy.is_some() {
        let mut s = spec.clone();
        s.hierarchy = None;
        out.push(s);
    }
    if let Some(h) = &spec.hierarchy
        && h.tables.is_some()
    {
        let mut s = spec.clone();
        if let Some(h) = &mut s.hierarchy {
            h.tables = None;
        }
        out.push(s);
    }
    if !spec.access_members.is_empty() {
        let mut s = spec.clone();
        s.access_members.clear();
        out.push(s);
    }
    if !spec.shares.is_empty() {
        let mut s = spec.clone();
        s.shares.clear();
        out.push(s);
    }
    if !spec.deletes.is_empty() {
        let mut s = spec.clone();
        s.deletes.clear();
        out.push(s);
    }
    for i in 0..spec.deletes.len() {
        let mut s = spec.clone();
        s.deletes.remove(i);
        out.push(s);
    }
    if spec.records.iter().any(|r| !r.lookups.is_empty()) {
        let mut s = spec.clone();
        for r in &mut s.records {
            r.lookups.clear();
        }
        out.push(s);
    }
    for i in (0..spec.records.len()).rev() {
        out.push(remove_record(spec, i));
    }
    for i in 0..spec.shares.len() {
        let mut s = spec.clone();
        s.shares.remove(i);
        out.push(s);
    }
    for i in 0..spec.access_members.len() {
        let mut s = spec.clone();
        s.access_members.remove(i);
        out.push(s);
    }
    for (ri, r) in spec.records.iter().enumerate() {
        for li in 0..r.lookups.len() {
            let mut s = spec.clone();
            s.records[ri].lookups.remove(li);
            out.push(s);
        }
        if r.unit.is_some() {
            let mut s = spec.clone();
            s.records[ri].unit = None;
            out.push(s);
        }
    }
    for (ri, r) in spec.records.iter().enumerate() {
        if r.owner != Own::Nobody && r.owner != Own::User(0) {
            let mut s = spec.clone();
            s.records[ri].owner = Own::User(0);
            out.push(s);
        }
        if !r.active {
            let mut s = spec.clone();
            s.records[ri].active = true;
            out.push(s);
        }
    }
    for (ui, u) in spec.users.iter().enumerate() {
        if !u.enabled {
            let mut s = spec.clone();
            s.users[ui].enabled = true;
            out.push(s);
        }
    }
    for t in (1..spec.table_count()).rev() {
        if let Some(s) = remove_table(spec, t) {
            out.push(s);
        }
    }
    for i in (0..spec.users.len()).rev() {
        if let Some(s) = remove_user(spec, i) {
            out.push(s);
        }
    }
    for i in (0..spec.teams.len()).rev() {
        if let Some(s) = remove_team(spec, i) {
            out.push(s);
        }
    }
    for i in (0..spec.templates.len()).rev() {
        out.push(remove_template(spec, i));
    }
    for i in (0..spec.roles.len()).rev() {
        out.push(remove_role(spec, i));
    }
    for i in (0..spec.rels.len()).rev() {
        out.push(remove_rel(spec, i));
    }
    for i in (1..spec.units.len()).rev() {
        if let Some(s) = remove_unit(spec, i) {
            out.push(s);
        }
    }
    for i in (0..spec.positions.len()).rev() {
        if let Some(s) = remove_position(spec, i) {
            out.push(s);
        }
    }
    for (ri, r) in spec.roles.iter().enumerate() {
        for pi in 0..r.privileges.len() {
            let mut s = spec.clone();
            s.roles[ri].privileges.remove(pi);
            out.push(s);
        }
        if r.sysadmin {
            let mut s = spec.clone();
            s.roles[ri].sysadmin = false;
            out.push(s);
        }
    }
    for (ui, u) in spec.users.iter().enumerate() {
        for ai in 0..u.roles.len() {
            let mut s = spec.clone();
            s.users[ui].roles.remove(ai);
            out.push(s);
        }
        if u.manager.is_some() {
            let mut s = spec.clone();
            s.users[ui].manager = None;
            out.push(s);
        }
        if u.position.is_some() {
            let mut s = spec.clone();
            s.users[ui].position = None;
            out.push(s);
        }
    }
    for (ti, t) in spec.teams.iter().enumerate() {
        for mi in 0..t.members.len() {
            let mut s = spec.clone();
            s.teams[ti].members.remove(mi);
            out.push(s);
        }
        for ri in 0..t.roles.len() {
            let mut s = spec.clone();
            s.teams[ti].roles.remove(ri);
            out.push(s);
        }
    }
    for (si, sh) in spec.shares.iter().enumerate() {
        for bit in PRIVILEGE_BITS {
            if sh.mask & bit != 0 && sh.mask != bit {
                let mut s = spec.clone();
                s.shares[si].mask &= !bit;
                out.push(s);
            }
        }
    }
    if spec.across_units
        && spec
            .users
            .iter()
            .all(|u| u.roles.iter().all(|(_, a)| a.is_none()))
        && spec.records.iter().all(|r| r.unit.is_none())
    {
        let mut s = spec.clone();
        s.across_units = false;
        out.push(s);
    }
    out
}

fn remove_record(spec: &Spec, i: usize) -> Spec {
    let mut s = spec.clone();
    s.records.remove(i);
    for r in &mut s.records {
        r.lookups.retain(|(_, p)| *p != i);
        for (_, p) in &mut r.lookups {
            *p = shift(*p, i);
        }
    }
    s.shares.retain(|sh| sh.record != i);
    for sh in &mut s.shares {
        sh.record = shift(sh.record, i);
    }
    s.access_members.retain(|m| m.record != i);
    for m in &mut s.access_members {
        m.record = shift(m.record, i);
    }
    s.deletes.retain(|d| *d != i);
    for d in &mut s.deletes {
        *d = shift(*d, i);
    }
    s
}

fn remove_user(spec: &Spec, i: usize) -> Option<Spec> {
    if spec.users.len() <= 1 || spec.records.iter().any(|r| r.owner == Own::User(i)) {
        return None;
    }
    let mut s = spec.clone();
    s.users.remove(i);
    for u in &mut s.users {
        if u.manager == Some(i) {
            u.manager = None;
        }
        u.manager = u.manager.map(|m| shift(m, i));
    }
    for r in &mut s.records {
        if let Own::User(o) = r.owner {
            r.owner = Own::User(shift(o, i));
        }
    }
    for t in &mut s.teams {
        t.members.retain(|m| *m != i);
        for m in &mut t.members {
            *m = shift(*m, i);
        }
    }
    s.shares.retain(|sh| sh.who != Who::User(i));
    for sh in &mut s.shares {
        if let Who::User(u) = sh.who {
            sh.who = Who::User(shift(u, i));
        }
    }
    s.access_members.retain(|m| m.user != i);
    for m in &mut s.access_members {
        m.user = shift(m.user, i);
    }
    Some(s)
}

fn remove_team(spec: &Spec, i: usize) -> Option<Spec> {
    if spec.records.iter().any(|r| r.owner == Own::Team(i)) {
        return None;
    }
    let mut s = spec.clone();
    s.teams.remove(i);
    for r in &mut s.records {
        if let Own::Team(o) = r.owner {
            r.owner = Own::Team(shift(o, i));
        }
    }
    s.shares.retain(|sh| sh.who != Who::Team(i));
    for sh in &mut s.shares {
        if let Who::Team(t) = sh.who {
            sh.who = Who::Team(shift(t, i));
        }
    }
    Some(s)
}

fn remove_template(spec: &Spec, i: usize) -> Spec {
    let mut s = spec.clone();
    s.templates.remove(i);
    s.access_members.retain(|m| m.template != i);
    for m in &mut s.access_members {
        m.template = shift(m.template, i);
    }
    s
}

fn remove_role(spec: &Spec, i: usize) -> Spec {
    let mut s = spec.clone();
    s.roles.remove(i);
    for u in &mut s.users {
        u.roles.retain(|(r, _)| *r != i);
        for (r, _) in &mut u.roles {
            *r = shift(*r, i);
        }
    }
    for t in &mut s.teams {
        t.roles.retain(|r| *r != i);
        for r in &mut t.roles {
            *r = shift(*r, i);
        }
    }
    s
}

fn remove_rel(spec: &Spec, i: usize) -> Spec {
    let mut s = spec.clone();
    s.rels.remove(i);
    for r in &mut s.records {
        r.lookups.retain(|(rel, _)| *rel != i);
        for (rel, _) in &mut r.lookups {
            *rel = shift(*rel, i);
        }
    }
    s
}

/// Removes a generated table (oracle numbering) that no record, relationship or template uses.
fn remove_table(spec: &Spec, t: usize) -> Option<Spec> {
    if t == 0
        || spec.records.iter().any(|r| r.table == t)
        || spec.rels.iter().any(|r| r.parent == t || r.child == t)
        || spec.templates.iter().any(|x| x.table == t)
    {
        return None;
    }
    let mut s = spec.clone();
    s.tables.remove(t - 1);
    for r in &mut s.records {
        r.table = shift(r.table, t);
    }
    for r in &mut s.rels {
        r.parent = shift(r.parent, t);
        r.child = shift(r.child, t);
    }
    for x in &mut s.templates {
        x.table = shift(x.table, t);
    }
    for r in &mut s.roles {
        r.privileges.retain(|(x, _, _)| *x != t);
        for (x, _, _) in &mut r.privileges {
            *x = shift(*x, t);
        }
    }
    if let Some(h) = &mut s.hierarchy
        && let Some(list) = &mut h.tables
    {
        list.retain(|x| *x != t);
        for x in list.iter_mut() {
            *x = shift(*x, t);
        }
    }
    Some(s)
}

/// Removes a leaf unit that nothing refers to.
fn remove_unit(spec: &Spec, i: usize) -> Option<Spec> {
    let used = spec.units.contains(&Some(i))
        || spec.roles.iter().any(|r| r.unit == i)
        || spec
            .users
            .iter()
            .any(|u| u.unit == i || u.roles.iter().any(|(_, a)| *a == Some(i)))
        || spec.teams.iter().any(|t| t.unit == i)
        || spec.records.iter().any(|r| r.unit == Some(i));
    if used {
        return None;
    }
    let mut s = spec.clone();
    s.units.remove(i);
    for p in s.units.iter_mut().flatten() {
        *p = shift(*p, i);
    }
    for r in &mut s.roles {
        r.unit = shift(r.unit, i);
    }
    for u in &mut s.users {
        u.unit = shift(u.unit, i);
        for (_, a) in &mut u.roles {
            *a = a.map(|a| shift(a, i));
        }
    }
    for t in &mut s.teams {
        t.unit = shift(t.unit, i);
    }
    for r in &mut s.records {
        r.unit = r.unit.map(|u| shift(u, i));
    }
    Some(s)
}

/// Removes a leaf position nobody holds.
fn remove_position(spec: &Spec, i: usize) -> Option<Spec> {
    if spec.positions.contains(&Some(i)) || spec.users.iter().any(|u| u.position == Some(i)) {
        return None;
    }
    let mut s = spec.clone();
    s.positions.remove(i);
    for p in s.positions.iter_mut().flatten() {
        *p = shift(*p, i);
    }
    for u in &mut s.users {
        u.position = u.position.map(|p| shift(p, i));
    }
    Some(s)
}

/// Greedy shrinking: keeps the first smaller candidate that still fails, until none does.
pub fn shrink(mut spec: Spec, fails: impl Fn(&Spec) -> bool) -> Spec {
    'outer: loop {
        for candidate in candidates(&spec) {
            if fails(&candidate) {
                spec = candidate;
                continue 'outer;
            }
        }
        return spec;
    }
}

// ----- a readable dump -----

/// Names of the privileges in a mask.
pub fn mask_names(mask: u32) -> String {
    let names: Vec<&str> = (0..8)
        .filter(|p| mask & PRIVILEGE_BITS[*p] != 0)
        .map(|p| PRIVILEGE_NAMES[p])
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join("|")
    }
}

/// The name of a table (oracle numbering).
pub fn table_name(t: usize) -> String {
    if t == 0 {
        "systemuser".to_owned()
    } else {
        format!("t{t}")
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::User(u) => write!(f, "u{u}"),
            Who::Team(t) => write!(f, "T{t}"),
            Who::Org => f.write_str("organization"),
        }
    }
}

impl fmt::Display for Own {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Own::User(u) => write!(f, "u{u}"),
            Own::Team(t) => write!(f, "T{t}"),
            Own::Nobody => f.write_str("(no owner)"),
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "  units:")?;
        for (i, p) in self.units.iter().enumerate() {
            match p {
                None => write!(f, " U{i}(root)")?,
                Some(p) => write!(f, " U{i}<U{p}")?,
            }
        }
        writeln!(f)?;
        write!(f, "  tables: systemuser(user_or_team)")?;
        for (i, org) in self.tables.iter().enumerate() {
            let kind = if *org { "organization" } else { "user_or_team" };
            write!(f, " t{}({kind})", i + 1)?;
        }
        writeln!(f)?;
        for (i, r) in self.rels.iter().enumerate() {
            writeln!(
                f,
                "  rel{i}: {} -> {} (lookup lk{i} on {}) reparent={:?} share={:?} assign={:?} unshare={:?} delete={:?}",
                table_name(r.child),
                table_name(r.parent),
                table_name(r.child),
                r.reparent,
                r.share,
                r.assign,
                r.unshare,
                r.delete
            )?;
        }
        writeln!(f, "  across_units: {}", self.across_units)?;
        for (i, r) in self.roles.iter().enumerate() {
            let privs: Vec<String> = r
                .privileges
                .iter()
                .map(|(t, p, d)| format!("{}.{}={d:?}", table_name(*t), PRIVILEGE_NAMES[*p]))
                .collect();
            writeln!(
                f,
                "  R{i} @U{} {}{} [{}]",
                r.unit,
                if r.team_only {
                    "team_only"
                } else {
                    "user_and_team"
                },
                if r.sysadmin {
                    " SYSTEM ADMINISTRATOR"
                } else {
                    ""
                },
                privs.join(", ")
            )?;
        }
        for (i, p) in self.positions.iter().enumerate() {
            match p {
                None => writeln!(f, "  P{i}")?,
                Some(p) => writeln!(f, "  P{i} < P{p}")?,
            }
        }
        for (i, u) in self.users.iter().enumerate() {
            let roles: Vec<String> = u
                .roles
                .iter()
                .map(|(r, a)| match a {
                    None => format!("R{r}"),
                    Some(a) => format!("R{r}@U{a}"),
                })
                .collect();
            write!(
                f,
                "  u{i} @U{}{} roles [{}]",
                u.unit,
                if u.enabled { "" } else { " DISABLED" },
                roles.join(", ")
            )?;
            if let Some(m) = u.manager {
                write!(f, " manager u{m}")?;
            }
            if let Some(p) = u.position {
                write!(f, " position P{p}")?;
            }
            writeln!(f)?;
        }
        for (i, t) in self.teams.iter().enumerate() {
            let members: Vec<String> = t.members.iter().map(|m| format!("u{m}")).collect();
            let roles: Vec<String> = t.roles.iter().map(|r| format!("R{r}")).collect();
            writeln!(
                f,
                "  T{i} {:?} @U{} members [{}] roles [{}]",
                t.kind,
                t.unit,
                members.join(", "),
                roles.join(", ")
            )?;
        }
        for (i, t) in self.templates.iter().enumerate() {
            writeln!(
                f,
                "  tpl{i} on {} rights {}",
                table_name(t.table),
                mask_names(t.rights)
            )?;
        }
        for (i, r) in self.records.iter().enumerate() {
            write!(
                f,
                "  r{i} {} owner {}{}{}",
                table_name(r.table),
                r.owner,
                r.unit.map(|u| format!(" unit U{u}")).unwrap_or_default(),
                if r.active { "" } else { " INACTIVE" }
            )?;
            for (rel, p) in &r.lookups {
                write!(f, " lk{rel}->r{p}")?;
            }
            writeln!(f)?;
        }
        for s in &self.shares {
            writeln!(
                f,
                "  share r{} with {}: {}",
                s.record,
                s.who,
                mask_names(s.mask)
            )?;
        }
        for m in &self.access_members {
            writeln!(
                f,
                "  access team of (r{}, tpl{}) member u{}",
                m.record, m.template, m.user
            )?;
        }
        for d in &self.deletes {
            writeln!(f, "  then delete r{d} (as the system)")?;
        }
        match &self.hierarchy {
            None => writeln!(f, "  hierarchy: off")?,
            Some(h) => writeln!(
                f,
                "  hierarchy: {} depth {} tables {} managers_same_or_parent_unit {}",
                if h.manager_model {
                    "manager"
                } else {
                    "position"
                },
                h.depth,
                h.tables
                    .as_ref()
                    .map_or("all user_or_team".to_owned(), |t| {
                        t.iter()
                            .map(|t| table_name(*t))
                            .collect::<Vec<_>>()
                            .join(",")
                    }),
                h.same_or_parent
            )?,
        }
        Ok(())
    }
}
