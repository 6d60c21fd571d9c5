//! Licences (seed 003): the organisation's catalogue of licences — a relative price and use
//! rights, as a ceiling depth per table and privilege plus the miscellaneous privileges and apps
//! a licence allows — the licences each user holds, how they cap what the user's roles give
//! (docs/semantics.md D48–D50), and the administrator's questions: the cheapest licence set that
//! covers a user's roles, the organisation's licence report ("the right mix") and the cells
//! where a role exceeds a licence.
//!
//! Licensing is enforced once the catalogue holds a licence (D48): until then nothing is capped,
//! so organisations and scenario files without licences behave as before. The cap itself lives
//! in the derived grants (`derive.rs` calls [`Organization::cap_depth`]), so checks, lists and
//! explanations read one source.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ModelError;
use crate::ids::{AppId, RoleId, TableId, TeamId, UserId};
use crate::limits::MAX_NAME_LEN;
use crate::model::Ownership;
use crate::organization::{Organization, Setup};
use crate::privilege::{Depth, Privilege};

/// At most this many licences in a catalogue (the cheapest-set search is exponential in the
/// worst case; Dataverse sells a handful).
pub const MAX_LICENCES: usize = 64;

/// At most this many licences held by one user.
pub const MAX_USER_LICENCES: usize = 16;

/// A licence of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Licence {
    /// Name, unique in the catalogue.
    pub name: String,
    /// Relative price (seed 003: Professional 4, Basic 2, Essential 1).
    pub price: u32,
    /// The ceiling of every privilege on a table the licence does not list.
    pub default_ceiling: Depth,
    /// Ceilings per listed table ([`Privilege::index`]); a listed table's privilege not named
    /// is `none`.
    pub ceilings: BTreeMap<TableId, [Depth; 8]>,
    /// Every miscellaneous privilege is allowed.
    pub all_misc: bool,
    /// Miscellaneous privileges allowed (by `prv` name, case-insensitive).
    pub misc: Vec<String>,
    /// Every app is allowed.
    pub all_apps: bool,
    /// Apps allowed.
    pub apps: Vec<AppId>,
}

impl Licence {
    /// The ceiling of a privilege on a table.
    #[must_use]
    pub fn ceiling(&self, table: TableId, privilege: Privilege) -> Depth {
        self.ceilings
            .get(&table)
            .map_or(self.default_ceiling, |d| d[privilege.index()])
    }

    /// Whether the licence allows a miscellaneous privilege.
    #[must_use]
    pub fn allows_misc(&self, name: &str) -> bool {
        self.all_misc || self.misc.iter().any(|m| m.eq_ignore_ascii_case(name))
    }

    /// Whether the licence allows an app.
    #[must_use]
    pub fn allows_app(&self, app: AppId) -> bool {
        self.all_apps || self.apps.contains(&app)
    }
}

/// The catalogue and who holds what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Licensing {
    /// The catalogue, in the order licences were added.
    pub(crate) licences: Vec<Licence>,
    /// Per user, the licences held (indices into `licences`, sorted); users holding none are
    /// absent.
    pub(crate) holders: BTreeMap<UserId, Vec<usize>>,
}

impl Licensing {
    pub(crate) fn is_empty(&self) -> bool {
        self.licences.is_empty() && self.holders.is_empty()
    }
}

/// Whether a ceiling covers a depth on a table: on an organization-owned table privileges are
/// on or off, so any ceiling above `none` lets the role's depth through (D49).
#[must_use]
pub fn ceiling_covers(ownership: Ownership, ceiling: Depth, depth: Depth) -> bool {
    if depth == Depth::None {
        return true;
    }
    match ownership {
        Ownership::Organization => ceiling > Depth::None,
        _ => ceiling >= depth,
    }
}

fn capped(ownership: Ownership, ceiling: Depth, depth: Depth) -> Depth {
    if ceiling_covers(ownership, ceiling, depth) {
        depth
    } else if ownership == Ownership::Organization {
        Depth::None
    } else {
        ceiling
    }
}

/// One cell a user's roles give: the deepest depth of a privilege on a table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct NeedCell {
    /// Table.
    pub table: TableId,
    /// Privilege.
    pub privilege: Privilege,
    /// The deepest depth the user's roles give.
    pub depth: Depth,
}

/// What a user's roles give, uncapped: what a licence must cover for the user to use them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Need {
    /// Table privileges, deepest per (table, privilege), sorted.
    pub cells: Vec<NeedCell>,
    /// Miscellaneous privileges (as the roles name them, sorted, case-folded duplicates
    /// removed).
    pub misc: Vec<String>,
    /// Apps associated with one of the user's roles.
    pub apps: Vec<AppId>,
    /// The user is a System Administrator: not capped by licences (D48), needs none.
    pub system_administrator: bool,
}

/// A licence cap that takes away part of what a role gives (for explanations).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LicenceCap {
    /// The role.
    pub role: RoleId,
    /// The team it is held through, if any.
    pub team: Option<TeamId>,
    /// What the role gives.
    pub role_depth: Depth,
    /// What the user's licences allow.
    pub ceiling: Depth,
}

/// The cheapest licence set for a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cheapest {
    /// Licence names, in catalogue order (empty: the user needs no licence).
    pub licences: Vec<String>,
    /// Total relative price.
    pub price: u64,
}

/// How a user's licences compare with what the user needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LicenceFit {
    /// The licences held cover the roles and cost what the cheapest covering set costs.
    Fits,
    /// The licences held cover the roles but a cheaper set would too.
    OverLicensed,
    /// The licences held do not cover the roles (some access is capped away).
    UnderLicensed,
}

impl LicenceFit {
    /// `fits`, `over_licensed`, `under_licensed`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            LicenceFit::Fits => "fits",
            LicenceFit::OverLicensed => "over_licensed",
            LicenceFit::UnderLicensed => "under_licensed",
        }
    }
}

/// Something a user's roles give that the user's licences do not cover.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Uncovered {
    /// A table privilege above the ceiling.
    Cell {
        /// The cell needed.
        need: NeedCell,
        /// The ceiling of the licences held.
        ceiling: Depth,
    },
    /// A miscellaneous privilege no licence held allows.
    Misc(String),
    /// An app no licence held allows.
    App(AppId),
}

/// One user's line of the licence report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserLicenceReport {
    /// The user.
    pub user: UserId,
    /// Licence names held, in catalogue order.
    pub held: Vec<String>,
    /// Their total price.
    pub held_price: u64,
    /// The cheapest covering set, `None` when no set of the catalogue covers the user.
    pub cheapest: Option<Cheapest>,
    /// Fits, over- or under-licensed.
    pub fit: LicenceFit,
    /// What the held licences do not cover.
    pub uncovered: Vec<Uncovered>,
}

/// The organisation's licence report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenceReport {
    /// Whether licensing is enforced (D48).
    pub enforced: bool,
    /// Per enabled user, by name.
    pub users: Vec<UserLicenceReport>,
    /// What the licences held cost today.
    pub total_held: u64,
    /// What the cheapest covering sets cost (users no set covers count what they hold).
    pub total_cheapest: u64,
}

/// One cell where a role gives more than a licence allows.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Excess {
    /// A table privilege.
    Cell {
        /// Table.
        table: TableId,
        /// Privilege.
        privilege: Privilege,
        /// The role's depth.
        role_depth: Depth,
        /// The licence's ceiling.
        ceiling: Depth,
    },
    /// A miscellaneous privilege the licence does not allow.
    Misc(String),
    /// An app associated with the role that the licence does not allow.
    App(AppId),
}

impl Organization {
    /// The licence catalogue, in the order licences were added.
    #[must_use]
    pub fn licences(&self) -> &[Licence] {
        &self.licensing.licences
    }

    /// A licence by name.
    #[must_use]
    pub fn licence(&self, name: &str) -> Option<&Licence> {
        self.licensing.licences.iter().find(|l| l.name == name)
    }

    fn licence_index(&self, name: &str) -> Option<usize> {
        self.licensing.licences.iter().position(|l| l.name == name)
    }

    /// Whether licensing is enforced: the catalogue holds at least one licence (D48).
    #[must_use]
    pub fn licensing_enforced(&self) -> bool {
        !self.licensing.licences.is_empty()
    }

    fn held(&self, user: UserId) -> &[usize] {
        self.licensing
            .holders
            .get(&user)
            .map_or(&[], |v| v.as_slice())
    }

    /// The licences a user holds, in catalogue order.
    #[must_use]
    pub fn user_licences(&self, user: UserId) -> Vec<&Licence> {
        self.held(user)
            .iter()
            .map(|i| &self.licensing.licences[*i])
            .collect()
    }

    /// The ceiling of a privilege on a table for a user: the deepest ceiling of the licences
    /// the user holds (`none` without a licence), `organization` while licensing is not
    /// enforced.
    #[must_use]
    pub fn licence_ceiling(&self, user: UserId, table: TableId, privilege: Privilege) -> Depth {
        if !self.licensing_enforced() {
            return Depth::Organization;
        }
        self.held(user)
            .iter()
            .map(|i| self.licensing.licences[*i].ceiling(table, privilege))
            .max()
            .unwrap_or(Depth::None)
    }

    /// A role's depth as the user's licences let the user use it (D49).
    pub(crate) fn cap_depth(
        &self,
        user: UserId,
        table: TableId,
        privilege: Privilege,
        depth: Depth,
    ) -> Depth {
        if !self.licensing_enforced() {
            return depth;
        }
        let ownership = self.tables[table.index()].ownership;
        capped(
            ownership,
            self.licence_ceiling(user, table, privilege),
            depth,
        )
    }

    /// Whether the user's licences allow a miscellaneous privilege (always, while licensing is
    /// not enforced).
    #[must_use]
    pub fn licence_allows_misc(&self, user: UserId, name: &str) -> bool {
        !self.licensing_enforced()
            || self
                .held(user)
                .iter()
                .any(|i| self.licensing.licences[*i].allows_misc(name))
    }

    /// Whether the user's licences allow an app (always, while licensing is not enforced).
    #[must_use]
    pub fn licence_allows_app(&self, user: UserId, app: AppId) -> bool {
        !self.licensing_enforced()
            || self
                .held(user)
                .iter()
                .any(|i| self.licensing.licences[*i].allows_app(app))
    }

    /// Every role the user holds, with the team it is held through.
    pub(crate) fn held_roles(&self, user: UserId) -> Vec<(RoleId, Option<TeamId>)> {
        let u = &self.users[user.index()];
        let mut out: Vec<(RoleId, Option<TeamId>)> =
            u.roles.iter().map(|a| (a.role, None)).collect();
        for t in &u.teams {
            for r in &self.teams[t.index()].roles {
                out.push((*r, Some(*t)));
            }
        }
        out
    }

    /// The caps that take part of `privilege` on `table` away from the user: each role that
    /// gives more than the user's licences allow (empty while licensing is not enforced, and
    /// for System Administrators).
    #[must_use]
    pub fn licence_caps(
        &self,
        user: UserId,
        table: TableId,
        privilege: Privilege,
    ) -> Vec<LicenceCap> {
        if !self.licensing_enforced() || self.system_administrator(user).is_some() {
            return Vec::new();
        }
        let ownership = self.tables[table.index()].ownership;
        let ceiling = self.licence_ceiling(user, table, privilege);
        let mut out = Vec::new();
        for (role, team) in self.held_roles(user) {
            let depth = self.roles[role.index()].depth(table, privilege);
            if !ceiling_covers(ownership, ceiling, depth) {
                let cap = LicenceCap {
                    role,
                    team,
                    role_depth: depth,
                    ceiling: capped(ownership, ceiling, depth),
                };
                if !out.contains(&cap) {
                    out.push(cap);
                }
            }
        }
        out
    }

    /// The explanation's line for a licence cap.
    #[must_use]
    pub fn describe_licence_cap(
        &self,
        user: UserId,
        table: TableId,
        privilege: Privilege,
        cap: &LicenceCap,
    ) -> String {
        let held = self.user_licences(user);
        let who = match held.as_slice() {
            [] => "the user holds no licence, which".to_owned(),
            [one] => format!("licence {}", one.name),
            many => format!(
                "licences {}",
                many.iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        };
        let via = match cap.team {
            None => String::new(),
            Some(t) => format!(" through team `{}`", self.teams[t.index()].name),
        };
        format!(
            "{who} caps `{privilege}` on `{}` at {} (role `{}`{via} gives `{}`)",
            self.tables[table.index()].name,
            cap.ceiling,
            self.roles[cap.role.index()].name,
            cap.role_depth
        )
    }

    /// What a user's roles give, uncapped: what the user's licences must cover.
    #[must_use]
    pub fn licence_need(&self, user: UserId) -> Need {
        if self.system_administrator(user).is_some() {
            return Need {
                system_administrator: true,
                ..Need::default()
            };
        }
        let mut cells: BTreeMap<(TableId, Privilege), Depth> = BTreeMap::new();
        let mut misc: BTreeMap<String, String> = BTreeMap::new();
        let mut apps: BTreeSet<AppId> = BTreeSet::new();
        for (role, _) in self.held_roles(user) {
            let r = &self.roles[role.index()];
            for (table, depths) in &r.privileges {
                for p in Privilege::ALL {
                    let d = depths[p.index()];
                    if d > Depth::None {
                        let e = cells.entry((*table, p)).or_default();
                        *e = (*e).max(d);
                    }
                }
            }
            for m in &r.misc {
                misc.entry(m.to_ascii_lowercase())
                    .or_insert_with(|| m.clone());
            }
            for (i, app) in self.apps.iter().enumerate() {
                if app.roles.contains(&role) {
                    apps.insert(AppId::from_index(i));
                }
            }
        }
        Need {
            cells: cells
                .into_iter()
                .map(|((table, privilege), depth)| NeedCell {
                    table,
                    privilege,
                    depth,
                })
                .collect(),
            misc: misc.into_values().collect(),
            apps: apps.into_iter().collect(),
            system_administrator: false,
        }
    }

    /// Whether one licence covers one item of a need.
    fn licence_covers_cell(&self, licence: &Licence, cell: &NeedCell) -> bool {
        ceiling_covers(
            self.tables[cell.table.index()].ownership,
            licence.ceiling(cell.table, cell.privilege),
            cell.depth,
        )
    }

    /// What a set of licences (catalogue indices) leaves uncovered of a need.
    fn uncovered_by(&self, set: &[usize], need: &Need) -> Vec<Uncovered> {
        let ls: Vec<&Licence> = set.iter().map(|i| &self.licensing.licences[*i]).collect();
        let mut out = Vec::new();
        for cell in &need.cells {
            if !ls.iter().any(|l| self.licence_covers_cell(l, cell)) {
                let ceiling = ls
                    .iter()
                    .map(|l| l.ceiling(cell.table, cell.privilege))
                    .max()
                    .unwrap_or(Depth::None);
                out.push(Uncovered::Cell {
                    need: *cell,
                    ceiling,
                });
            }
        }
        for m in &need.misc {
            if !ls.iter().any(|l| l.allows_misc(m)) {
                out.push(Uncovered::Misc(m.clone()));
            }
        }
        for a in &need.apps {
            if !ls.iter().any(|l| l.allows_app(*a)) {
                out.push(Uncovered::App(*a));
            }
        }
        out
    }

    /// What the licences a user holds leave uncovered of what the user's roles give.
    #[must_use]
    pub fn licence_uncovered(&self, user: UserId) -> Vec<Uncovered> {
        self.uncovered_by(self.held(user), &self.licence_need(user))
    }

    /// The items of a need, as a bitset per licence: which items each licence covers.
    fn coverage(&self, need: &Need) -> (usize, Vec<Vec<bool>>) {
        let n = need.cells.len() + need.misc.len() + need.apps.len();
        let cover = self
            .licensing
            .licences
            .iter()
            .map(|l| {
                let mut v = Vec::with_capacity(n);
                v.extend(need.cells.iter().map(|c| self.licence_covers_cell(l, c)));
                v.extend(need.misc.iter().map(|m| l.allows_misc(m)));
                v.extend(need.apps.iter().map(|a| l.allows_app(*a)));
                v
            })
            .collect();
        (n, cover)
    }

    /// The cheapest set of catalogue licences that covers a need (fewest licences among equal
    /// prices, then the earliest in the catalogue); `None` when no set covers it. An exact
    /// search: branch on the licences that cover the first uncovered item, bounded by the best
    /// price found.
    #[must_use]
    pub fn cheapest_licences_for(&self, need: &Need) -> Option<Cheapest> {
        let (n, cover) = self.coverage(need);
        let prices: Vec<u64> = self
            .licensing
            .licences
            .iter()
            .map(|l| u64::from(l.price))
            .collect();
        let mut best: Option<(u64, Vec<usize>)> = None;
        let mut chosen = Vec::new();
        let mut covered = vec![false; n];
        search(&cover, &prices, &mut covered, &mut chosen, 0, &mut best);
        best.map(|(price, mut set)| {
            set.sort_unstable();
            Cheapest {
                licences: set
                    .iter()
                    .map(|i| self.licensing.licences[*i].name.clone())
                    .collect(),
                price,
            }
        })
    }

    /// The cheapest licence set that covers a user's roles.
    #[must_use]
    pub fn cheapest_licences(&self, user: UserId) -> Option<Cheapest> {
        self.cheapest_licences_for(&self.licence_need(user))
    }

    /// One user's line of the licence report.
    #[must_use]
    pub fn user_licence_report(&self, user: UserId) -> UserLicenceReport {
        let need = self.licence_need(user);
        let held = self.held(user);
        let held_price: u64 = held
            .iter()
            .map(|i| u64::from(self.licensing.licences[*i].price))
            .sum();
        let uncovered = self.uncovered_by(held, &need);
        let cheapest = self.cheapest_licences_for(&need);
        let fit = if !uncovered.is_empty() {
            LicenceFit::UnderLicensed
        } else if cheapest.as_ref().is_some_and(|c| c.price < held_price) {
            LicenceFit::OverLicensed
        } else {
            LicenceFit::Fits
        };
        UserLicenceReport {
            user,
            held: held
                .iter()
                .map(|i| self.licensing.licences[*i].name.clone())
                .collect(),
            held_price,
            cheapest,
            fit,
            uncovered,
        }
    }

    /// The licence report: every enabled user (by name), what their licences cost today and
    /// what the cheapest covering mix would cost.
    #[must_use]
    pub fn licence_report(&self) -> LicenceReport {
        let mut users: Vec<UserId> = (0..self.users.len())
            .map(UserId::from_index)
            .filter(|u| self.users[u.index()].enabled)
            .collect();
        users.sort_by(|a, b| self.users[a.index()].name.cmp(&self.users[b.index()].name));
        let users: Vec<UserLicenceReport> = users
            .into_iter()
            .map(|u| self.user_licence_report(u))
            .collect();
        let total_held = users.iter().map(|u| u.held_price).sum();
        let total_cheapest = users
            .iter()
            .map(|u| u.cheapest.as_ref().map_or(u.held_price, |c| c.price))
            .sum();
        LicenceReport {
            enforced: self.licensing_enforced(),
            users,
            total_held,
            total_cheapest,
        }
    }

    /// Where a role gives more than a licence allows, cell by cell: table privileges above the
    /// ceiling, miscellaneous privileges and associated apps the licence does not allow. The
    /// System Administrator role is not capped (D48) and exceeds nothing.
    #[must_use]
    pub fn role_exceeds_licence(&self, role: RoleId, licence: &Licence) -> Vec<Excess> {
        let r = &self.roles[role.index()];
        let mut out = Vec::new();
        if r.system_administrator {
            return out;
        }
        for (table, depths) in &r.privileges {
            let ownership = self.tables[table.index()].ownership;
            for p in Privilege::ALL {
                let d = depths[p.index()];
                let ceiling = licence.ceiling(*table, p);
                if !ceiling_covers(ownership, ceiling, d) {
                    out.push(Excess::Cell {
                        table: *table,
                        privilege: p,
                        role_depth: d,
                        ceiling,
                    });
                }
            }
        }
        for m in &r.misc {
            if !licence.allows_misc(m) {
                out.push(Excess::Misc(m.clone()));
            }
        }
        for (i, app) in self.apps.iter().enumerate() {
            let id = AppId::from_index(i);
            if app.roles.contains(&role) && !licence.allows_app(id) {
                out.push(Excess::App(id));
            }
        }
        out
    }

    /// Checks a licence definition against the organisation: a name, ceilings on
    /// organization-owned tables `none` or `organization`.
    fn validate_licence(&self, licence: &Licence) -> Result<(), ModelError> {
        if licence.name.is_empty()
            || licence.name.len() > MAX_NAME_LEN
            || licence.name.trim() != licence.name
        {
            return Err(ModelError::BadName {
                kind: "licence",
                name: licence.name.chars().take(64).collect(),
                limit: MAX_NAME_LEN,
            });
        }
        for (table, depths) in &licence.ceilings {
            let t = &self.tables[table.index()];
            if t.ownership != Ownership::Organization {
                continue;
            }
            for p in Privilege::ALL {
                let d = depths[p.index()];
                if !matches!(d, Depth::None | Depth::Organization) {
                    return Err(ModelError::Other(format!(
                        "licence `{}` caps `{p}` on organization-owned table `{}` at `{d}`; only `none` and `organization` are allowed",
                        licence.name, t.name
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The branch-and-bound search of [`Organization::cheapest_licences_for`].
fn search(
    cover: &[Vec<bool>],
    prices: &[u64],
    covered: &mut Vec<bool>,
    chosen: &mut Vec<usize>,
    price: u64,
    best: &mut Option<(u64, Vec<usize>)>,
) {
    if let Some((b, set)) = best
        && (price > *b || (price == *b && chosen.len() >= set.len()))
    {
        return;
    }
    let Some(item) = covered.iter().position(|c| !c) else {
        let mut set = chosen.clone();
        set.sort_unstable();
        let better = match best {
            None => true,
            Some((b, s)) => (price, set.len(), &set) < (*b, s.len(), s),
        };
        if better {
            *best = Some((price, set));
        }
        return;
    };
    for (l, row) in cover.iter().enumerate() {
        if !row[item] || chosen.contains(&l) {
            continue;
        }
        let before = covered.clone();
        for (c, r) in covered.iter_mut().zip(row) {
            *c |= *r;
        }
        chosen.push(l);
        search(cover, prices, covered, chosen, price + prices[l], best);
        chosen.pop();
        *covered = before;
    }
}

impl Setup<'_> {
    /// Adds a licence to the catalogue (the first one turns licensing on, D48).
    pub fn add_licence(&mut self, licence: Licence) -> Result<(), ModelError> {
        self.stale = true;
        self.org.validate_licence(&licence)?;
        if self.org.licence_index(&licence.name).is_some() {
            return Err(ModelError::Duplicate {
                kind: "licence",
                name: licence.name,
            });
        }
        if self.org.licensing.licences.len() >= MAX_LICENCES {
            return Err(ModelError::TooMany {
                kind: "licences",
                limit: MAX_LICENCES,
            });
        }
        self.org.licensing_mut().licences.push(licence);
        Ok(())
    }

    /// Replaces a licence's price and use rights (found by name).
    pub fn set_licence(&mut self, licence: Licence) -> Result<(), ModelError> {
        self.stale = true;
        self.org.validate_licence(&licence)?;
        let i = self
            .org
            .licence_index(&licence.name)
            .ok_or_else(|| ModelError::Unknown {
                kind: "licence",
                name: licence.name.clone(),
            })?;
        self.org.licensing_mut().licences[i] = licence;
        Ok(())
    }

    /// Removes a licence from the catalogue; refused while a user holds it.
    pub fn remove_licence(&mut self, name: &str) -> Result<(), ModelError> {
        self.stale = true;
        let i = self
            .org
            .licence_index(name)
            .ok_or_else(|| ModelError::Unknown {
                kind: "licence",
                name: name.to_owned(),
            })?;
        let holders: Vec<&str> = self
            .org
            .licensing
            .holders
            .iter()
            .filter(|(_, held)| held.contains(&i))
            .map(|(u, _)| self.org.users[u.index()].name.as_str())
            .collect();
        if !holders.is_empty() {
            return Err(ModelError::Other(format!(
                "licence `{name}` is held by {}: take it from them first",
                holders
                    .iter()
                    .take(10)
                    .map(|u| format!("`{u}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let licensing = self.org.licensing_mut();
        licensing.licences.remove(i);
        for held in licensing.holders.values_mut() {
            for l in held.iter_mut() {
                if *l > i {
                    *l -= 1;
                }
            }
        }
        Ok(())
    }

    /// Replaces the licences a user holds (an empty list takes them all away).
    pub fn set_user_licences(&mut self, user: UserId, names: &[String]) -> Result<(), ModelError> {
        self.stale = true;
        if names.len() > MAX_USER_LICENCES {
            return Err(ModelError::TooMany {
                kind: "licences of one user",
                limit: MAX_USER_LICENCES,
            });
        }
        let mut held = Vec::with_capacity(names.len());
        for n in names {
            let i = self
                .org
                .licence_index(n)
                .ok_or_else(|| ModelError::Unknown {
                    kind: "licence",
                    name: n.clone(),
                })?;
            held.push(i);
        }
        held.sort_unstable();
        held.dedup();
        let licensing = self.org.licensing_mut();
        if held.is_empty() {
            licensing.holders.remove(&user);
        } else {
            licensing.holders.insert(user, held);
        }
        Ok(())
    }
}
