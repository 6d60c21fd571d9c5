//! Questions about apps (D6, D51): why a user can or cannot open an app (every reason), who can
//! open it, the table privileges it needs, and the smallest set of roles that would let a user
//! open it and do its work.

use crate::error::ModelError;
use crate::ids::{AppId, BusinessUnitId, RoleId, TableId, UserId};
use crate::limits::{MAX_APP_NEEDS, MAX_ROLE_SET_SEARCH};
use crate::organization::Organization;
use crate::privilege::{Depth, Privilege};
use crate::queries::AppAccess;

/// One table privilege an app's work needs, at least at `depth` (D51).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AppNeed {
    /// Table.
    pub table: TableId,
    /// Privilege.
    pub privilege: Privilege,
    /// The smallest depth that does (never `Depth::None`; `Depth::User` unless the app says so).
    pub depth: Depth,
}

/// Why a user cannot open an app. Grows as the model does (licences add their reasons).
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum AppBlock {
    /// The user is disabled and opens nothing.
    UserDisabled,
    /// No role of the user, directly or through a team, is associated with the app; `roles`
    /// are the app's roles (empty when the app has none, so only System Administrators and
    /// makers open it).
    NoAssociatedRole {
        /// The roles associated with the app.
        roles: Vec<RoleId>,
    },
    /// Licensing is enforced and none of the user's licences includes the app (D49): a role
    /// associated with it does not open it.
    NoLicence,
}

impl AppBlock {
    /// A stable, machine-readable name (a reason, not an error code).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            AppBlock::UserDisabled => "user_disabled",
            AppBlock::NoAssociatedRole { .. } => "no_associated_role",
            AppBlock::NoLicence => "no_licence",
        }
    }
}

/// A need of the app that the user's roles do not meet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MissingNeed {
    /// The need.
    pub need: AppNeed,
    /// The deepest depth the user holds for it (`Depth::None` when none).
    pub held: Depth,
}

/// Why a user can or cannot open an app and do its work.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AppDiagnosis {
    /// How the user opens the app, or `None`.
    pub access: Option<AppAccess>,
    /// Every reason the user cannot open it (empty exactly when `access` is some).
    pub blocks: Vec<AppBlock>,
    /// The app's needs the user's roles do not meet (whether or not the user opens it).
    pub missing: Vec<MissingNeed>,
}

/// One role of a [`RoleSet`], and where to assign it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct RoleToAssign {
    /// The role.
    pub role: RoleId,
    /// `None`: assigned in the user's own unit (the classic model). In the ownership-across-
    /// units model, a role not usable in the user's unit is assigned in its own unit: it then
    /// opens the app and meets needs only at Organization depth (D51).
    pub business_unit: Option<BusinessUnitId>,
}

/// The smallest set of roles to give a user (D51).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RoleSet {
    /// The roles to assign, in id order (empty when the user already opens the app and meets
    /// its needs).
    pub roles: Vec<RoleToAssign>,
    /// Proven smallest; `false` when the search reached [`MAX_ROLE_SET_SEARCH`] and this is the
    /// best set found by then.
    pub exact: bool,
    /// The roles the answer was chosen among (D51), after removing roles whose contribution
    /// another candidate's contains.
    pub candidates: usize,
    /// Branches explored.
    pub searched: u64,
}

/// Why no role set can be given.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RoleSetError {
    /// Roles are not assigned to disabled users (D31).
    #[error("user `{user}` is disabled: roles are assigned to enabled users only")]
    UserDisabled {
        /// The user.
        user: String,
    },
    /// No combination of the roles the user may be given opens the app or meets every need.
    #[error(
        "no set of roles usable in business unit `{unit}` lets user `{user}` {what} (System Administrator aside)"
    )]
    Unreachable {
        /// The user.
        user: String,
        /// The user's unit.
        unit: String,
        /// What cannot be met, in words.
        what: String,
        /// Whether opening the app is among what cannot be met.
        open: bool,
        /// The needs no candidate role meets.
        needs: Vec<AppNeed>,
    },
}

impl RoleSetError {
    /// A stable, machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            RoleSetError::UserDisabled { .. } => "assignee_disabled",
            RoleSetError::Unreachable { .. } => "no_role_set",
        }
    }
}

/// Sorts, merges (deepest kept) and validates an app's needs.
pub(crate) fn normalize_needs(
    org: &Organization,
    app: AppId,
    mut needs: Vec<AppNeed>,
) -> Result<Vec<AppNeed>, ModelError> {
    let name = &org.apps[app.index()].name;
    if let Some(n) = needs.iter().find(|n| n.depth == Depth::None) {
        return Err(ModelError::Other(format!(
            "app `{name}`: need `{}` on `{}` has depth `none`, which needs nothing",
            n.privilege,
            org.tables[n.table.index()].name
        )));
    }
    needs.sort_by(|a, b| {
        (a.table, a.privilege, std::cmp::Reverse(a.depth)).cmp(&(
            b.table,
            b.privilege,
            std::cmp::Reverse(b.depth),
        ))
    });
    needs.dedup_by(|later, kept| later.table == kept.table && later.privilege == kept.privilege);
    if needs.len() > MAX_APP_NEEDS {
        return Err(ModelError::TooMany {
            kind: "needs of one app",
            limit: MAX_APP_NEEDS,
        });
    }
    Ok(needs)
}

impl Organization {
    /// Every app id.
    pub fn app_ids(&self) -> impl Iterator<Item = AppId> + use<> {
        (0..self.apps.len()).map(AppId::from_index)
    }

    /// The deepest depth at which the user holds a privilege for their own work, measured
    /// from the user's unit: System Administrator is `Organization`; grants of `team_only`
    /// team roles do not count (they act for the team only, D4); a grant measured from another
    /// unit counts as far as it reaches the user's unit ([`Organization::depth_from`]).
    #[must_use]
    pub fn personal_depth(&self, user: UserId, table: TableId, privilege: Privilege) -> Depth {
        if self.derived.admin[user.index()].is_some() {
            return Depth::Organization;
        }
        let unit = self.users[user.index()].business_unit;
        self.grants(user, table, privilege)
            .iter()
            .filter(|g| g.is_personal())
            .map(|g| self.depth_from(unit, g.depth, g.anchor))
            .max()
            .unwrap_or(Depth::None)
    }

    /// What a grant of `depth` measured from `anchor` is worth measured from `unit` (D51): the
    /// same when the anchor is the unit; Parent:Child from a unit above it still reaches the
    /// unit and below; Business Unit or Parent:Child that does not reach it leaves the user's
    /// own records (User); Organization and User are the same from anywhere.
    #[must_use]
    pub fn depth_from(&self, unit: BusinessUnitId, depth: Depth, anchor: BusinessUnitId) -> Depth {
        match depth {
            Depth::BusinessUnit if anchor != unit => Depth::User,
            Depth::ParentChild if !self.units.contains(anchor, unit) => Depth::User,
            d => d,
        }
    }

    /// Why the user can or cannot open the app, every reason, and which of its needs the user's
    /// roles do not meet (D6, D51).
    #[must_use]
    pub fn diagnose_app(&self, user: UserId, app: AppId) -> AppDiagnosis {
        let u = &self.users[user.index()];
        let access = self.app_access(user, app);
        let mut blocks = Vec::new();
        if access.is_none() {
            if !u.enabled {
                blocks.push(AppBlock::UserDisabled);
            }
            // Every reason: a disabled user may also lack the role (and an enabled user
            // refused lacks it by D6).
            let licensed = self.licence_allows_app(user, app);
            if !licensed && self.derived.admin[user.index()].is_none() {
                blocks.push(AppBlock::NoLicence);
            }
            let enabled_access = self.app_access_ignoring_enabled(user, app);
            let app_roles = &self.apps[app.index()].roles;
            let role_opens = self
                .held_roles(user)
                .iter()
                .any(|(r, _)| app_roles.contains(r));
            // A role that would open the app but for the licence is not missing.
            if enabled_access.is_none() && (licensed || !role_opens) {
                blocks.push(AppBlock::NoAssociatedRole {
                    roles: self.apps[app.index()].roles.clone(),
                });
            }
        }
        let missing = self.apps[app.index()]
            .needs
            .iter()
            .filter_map(|need| {
                let held = if u.enabled {
                    self.personal_depth(user, need.table, need.privilege)
                } else {
                    Depth::None
                };
                (held < need.depth).then_some(MissingNeed { need: *need, held })
            })
            .collect();
        AppDiagnosis {
            access,
            blocks,
            missing,
        }
    }

    /// D6 without the enabled test: how the user's roles would open the app.
    fn app_access_ignoring_enabled(&self, user: UserId, app: AppId) -> Option<AppAccess> {
        if self.users[user.index()].enabled {
            return self.app_access(user, app);
        }
        let u = &self.users[user.index()];
        let app_roles = &self.apps[app.index()].roles;
        if let Some(admin) = self.derived.admin[user.index()] {
            return Some(AppAccess::SystemAdministrator(admin));
        }
        if let Some(a) = u.roles.iter().find(|a| app_roles.contains(&a.role)) {
            return Some(AppAccess::Role {
                role: a.role,
                team: None,
            });
        }
        let by_team = u.teams.iter().find_map(|team| {
            self.teams[team.index()]
                .roles
                .iter()
                .find(|r| app_roles.contains(r))
                .map(|role| AppAccess::Role {
                    role: *role,
                    team: Some(*team),
                })
        });
        let maker = || {
            self.table_id("appmodule").is_some_and(|t| {
                !self.grants(user, t, Privilege::Create).is_empty()
                    && !self.grants(user, t, Privilege::Write).is_empty()
            })
        };
        by_team.or_else(|| maker().then_some(AppAccess::Maker))
    }

    /// Every user who can open the app, and how (D6), in user order.
    #[must_use]
    pub fn who_can_open(&self, app: AppId) -> Vec<(UserId, AppAccess)> {
        self.user_ids()
            .filter_map(|u| self.app_access(u, app).map(|a| (u, a)))
            .collect()
    }

    /// The roles a user may be given (D51): roles of the user's unit or a unit above it (a
    /// role is usable in its unit and below), not the System Administrator role, not a role the
    /// user already holds directly.
    #[must_use]
    pub fn assignable_roles(&self, user: UserId) -> Vec<RoleId> {
        let u = &self.users[user.index()];
        self.role_ids()
            .filter(|r| {
                let role = &self.roles[r.index()];
                !role.system_administrator
                    && self.units.contains(role.business_unit, u.business_unit)
                    && !u.roles.iter().any(|a| a.role == *r)
            })
            .collect()
    }

    /// The assignments the smallest role set is chosen among (D51): every role the user may be
    /// given in their own unit and, in the ownership-across-units model, every other role
    /// (System Administrator aside) in its own unit, unless the user holds it there already.
    #[must_use]
    pub fn role_set_candidates(&self, user: UserId) -> Vec<RoleToAssign> {
        let u = &self.users[user.index()];
        let mut out: Vec<RoleToAssign> = self
            .assignable_roles(user)
            .into_iter()
            .map(|role| RoleToAssign {
                role,
                business_unit: None,
            })
            .collect();
        if self.settings.ownership_across_business_units {
            out.extend(
                self.role_ids()
                    .filter(|r| {
                        let role = &self.roles[r.index()];
                        !role.system_administrator
                            && !self.units.contains(role.business_unit, u.business_unit)
                            && !u.roles.iter().any(|a| {
                                a.role == *r && a.business_unit == Some(role.business_unit)
                            })
                    })
                    .map(|r| RoleToAssign {
                        role: r,
                        business_unit: Some(self.roles[r.index()].business_unit),
                    }),
            );
        }
        out.sort_by_key(|g| g.role);
        out
    }

    /// The smallest set of roles that, assigned to the user directly, would let them open the
    /// app and meet each of its needs (D51). Exact by branch and bound; past
    /// [`MAX_ROLE_SET_SEARCH`] branches, the best set found, marked not exact.
    ///
    /// # Errors
    /// A disabled user; no set of the candidate roles suffices.
    pub fn roles_needed(&self, user: UserId, app: AppId) -> Result<RoleSet, RoleSetError> {
        let u = &self.users[user.index()];
        if !u.enabled {
            return Err(RoleSetError::UserDisabled {
                user: u.name.clone(),
            });
        }
        let a = &self.apps[app.index()];
        // The elements to cover: bit 0 = opening the app, bit i + 1 = the i-th unmet need.
        let opens = self.app_access(user, app).is_some();
        let unmet: Vec<AppNeed> = a
            .needs
            .iter()
            .filter(|n| self.personal_depth(user, n.table, n.privilege) < n.depth)
            .copied()
            .collect();
        let mut full: u128 = if opens { 0 } else { 1 };
        for i in 0..unmet.len() {
            full |= 1u128 << (i + 1);
        }
        let unit = u.business_unit;
        let candidates: Vec<(RoleToAssign, u128)> = self
            .role_set_candidates(user)
            .into_iter()
            .map(|given| {
                let role = &self.roles[given.role.index()];
                let anchor = given.business_unit.unwrap_or(unit);
                let mut cover = u128::from(a.roles.contains(&given.role));
                for (i, n) in unmet.iter().enumerate() {
                    if self.depth_from(unit, role.depth(n.table, n.privilege), anchor) >= n.depth {
                        cover |= 1u128 << (i + 1);
                    }
                }
                (given, cover & full)
            })
            .filter(|(_, c)| *c != 0)
            .collect();
        let reachable = candidates.iter().fold(0u128, |acc, (_, c)| acc | c);
        if reachable & full != full {
            let missing = full & !reachable;
            let open = missing & 1 != 0;
            let needs: Vec<AppNeed> = unmet
                .iter()
                .enumerate()
                .filter(|(i, _)| missing & (1u128 << (i + 1)) != 0)
                .map(|(_, n)| *n)
                .collect();
            let mut what: Vec<String> = Vec::new();
            if open {
                what.push(format!("open app `{}`", a.name));
            }
            for n in &needs {
                what.push(format!(
                    "hold `{}` on `{}` at `{}`",
                    n.privilege,
                    self.tables[n.table.index()].name,
                    n.depth
                ));
            }
            return Err(RoleSetError::Unreachable {
                user: u.name.clone(),
                unit: self.units.name(u.business_unit).to_owned(),
                what: what.join(", "),
                open,
                needs,
            });
        }
        let (roles, exact, searched, count) = smallest_cover(full, candidates, MAX_ROLE_SET_SEARCH);
        Ok(RoleSet {
            roles,
            exact,
            candidates: count,
            searched,
        })
    }

    /// The roles that, assigned directly to the user (measured from the user's unit), give
    /// `privilege` on `table` at least at `needed` (D52): usable in the user's unit, not the
    /// System Administrator role.
    pub(crate) fn roles_granting(
        &self,
        user: UserId,
        table: TableId,
        privilege: Privilege,
        needed: Depth,
    ) -> Vec<RoleId> {
        let unit = self.users[user.index()].business_unit;
        self.role_ids()
            .filter(|r| {
                let role = &self.roles[r.index()];
                !role.system_administrator
                    && self.units.contains(role.business_unit, unit)
                    && role.depth(table, privilege) >= needed.max(Depth::User)
            })
            .collect()
    }
}

/// Exact set cover by branch and bound: the smallest subset of `candidates` whose covers union
/// to `full`. Returns the roles (sorted), whether proven smallest, the branches explored and
/// the number of candidates left after dominance.
fn smallest_cover<T: Copy + Ord>(
    full: u128,
    candidates: Vec<(T, u128)>,
    limit: u64,
) -> (Vec<T>, bool, u64, usize) {
    if full == 0 {
        return (Vec::new(), true, 0, 0);
    }
    // Dominance: a candidate whose cover another's contains (the earlier one among equals) is
    // never needed in a smallest set.
    let kept: Vec<(T, u128)> = candidates
        .iter()
        .enumerate()
        .filter(|(i, (_, c))| {
            !candidates
                .iter()
                .enumerate()
                .any(|(j, (_, d))| j != *i && c & d == *c && (c != d || j < *i))
        })
        .map(|(_, x)| *x)
        .collect();
    let mut search = Search {
        covers: kept.iter().map(|(_, c)| *c).collect(),
        full,
        best: greedy(full, &kept),
        chosen: Vec::new(),
        nodes: 0,
        limit,
        exhausted: false,
    };
    search.branch(0);
    let mut roles: Vec<T> = search.best.iter().map(|i| kept[*i].0).collect();
    roles.sort();
    (roles, !search.exhausted, search.nodes, kept.len())
}

/// The greedy cover (most new elements first): the first upper bound.
fn greedy<T>(full: u128, candidates: &[(T, u128)]) -> Vec<usize> {
    let mut covered = 0u128;
    let mut chosen = Vec::new();
    while covered != full {
        let Some((i, _)) = candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| !chosen.contains(i))
            .max_by_key(|(i, (_, c))| ((c & !covered).count_ones(), std::cmp::Reverse(*i)))
        else {
            break;
        };
        chosen.push(i);
        covered |= candidates[i].1;
    }
    chosen
}

struct Search {
    covers: Vec<u128>,
    full: u128,
    best: Vec<usize>,
    chosen: Vec<usize>,
    nodes: u64,
    limit: u64,
    exhausted: bool,
}

impl Search {
    fn branch(&mut self, covered: u128) {
        if covered == self.full {
            if self.chosen.len() < self.best.len() {
                self.best = self.chosen.clone();
            }
            return;
        }
        self.nodes += 1;
        if self.nodes > self.limit {
            self.exhausted = true;
            return;
        }
        let open = self.full & !covered;
        // Lower bound: each further role covers at most `widest` of what is left.
        let widest = self
            .covers
            .iter()
            .map(|c| (c & open).count_ones())
            .max()
            .unwrap_or(0);
        if widest == 0 {
            return;
        }
        let bound = self.chosen.len() + open.count_ones().div_ceil(widest) as usize;
        if bound >= self.best.len() {
            return;
        }
        // Branch on the open element with the fewest candidates: one of them must be chosen.
        let mut element = 0u32;
        let mut fewest = usize::MAX;
        let mut rest = open;
        while rest != 0 {
            let bit = rest.trailing_zeros();
            rest &= rest - 1;
            let n = self.covers.iter().filter(|c| *c >> bit & 1 == 1).count();
            if n < fewest {
                fewest = n;
                element = bit;
            }
        }
        let mut options: Vec<usize> = (0..self.covers.len())
            .filter(|i| self.covers[*i] >> element & 1 == 1)
            .collect();
        options.sort_by_key(|i| (std::cmp::Reverse((self.covers[*i] & open).count_ones()), *i));
        for i in options {
            self.chosen.push(i);
            self.branch(covered | self.covers[i]);
            self.chosen.pop();
            if self.exhausted {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A xorshift generator from `seed`.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    fn id(i: usize) -> RoleId {
        RoleId::from_index(i)
    }

    /// The smallest cover by trying every subset.
    fn brute(full: u128, c: &[(RoleId, u128)]) -> Option<usize> {
        (0u32..1 << c.len())
            .filter(|m| {
                c.iter()
                    .enumerate()
                    .filter(|(i, _)| m >> i & 1 == 1)
                    .fold(0, |a, (_, (_, x))| a | x)
                    & full
                    == full
            })
            .map(u32::count_ones)
            .min()
            .map(|n| n as usize)
    }

    #[test]
    fn branch_and_bound_matches_brute_force_on_random_covers() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let mut solved = 0;
        for _ in 0..400 {
            let elements = 1 + (next() % 12) as u32;
            let full = (1u128 << elements) - 1;
            let n = 1 + (next() % 12) as usize;
            let c: Vec<(RoleId, u128)> = (0..n)
                .map(|i| {
                    (
                        id(i),
                        u128::from(next()) & full & (u128::from(next()) | u128::from(next())),
                    )
                })
                .collect();
            let reachable = c.iter().fold(0, |a, (_, x)| a | x);
            if reachable != full {
                continue;
            }
            let (roles, exact, _, _) = smallest_cover(full, c.clone(), MAX_ROLE_SET_SEARCH);
            assert!(exact);
            assert_eq!(Some(roles.len()), brute(full, &c), "{c:?}");
            let union = roles.iter().map(|r| c[r.index()].1).fold(0, |a, x| a | x);
            assert_eq!(union, full);
            solved += 1;
        }
        assert!(solved >= 100, "{solved}");
    }

    #[test]
    fn one_hundred_random_roles_are_answered_exactly_within_the_limit() {
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let mut solved = 0;
        for needs in [16u32, 32, 48] {
            let full = (1u128 << needs) - 1;
            let c: Vec<(RoleId, u128)> = (0..100)
                .map(|i| {
                    let cover =
                        (0..4).fold(0u128, |acc, _| acc | 1u128 << (next() % u64::from(needs)));
                    (id(i), cover)
                })
                .collect();
            if c.iter().fold(0, |a, (_, x)| a | x) != full {
                continue;
            }
            let (roles, exact, searched, _) = smallest_cover(full, c.clone(), MAX_ROLE_SET_SEARCH);
            assert!(exact, "{needs} needs: {searched} branches");
            let union = roles.iter().map(|r| c[r.index()].1).fold(0, |a, x| a | x);
            assert_eq!(union, full);
            solved += 1;
        }
        assert!(solved >= 2, "{solved}");
    }

    #[test]
    fn one_hundred_roles_are_answered_exactly() {
        // 100 roles, 60 needs: each role meets 3 needs in a ring; the optimum is 20.
        let full = (1u128 << 60) - 1;
        let c: Vec<(RoleId, u128)> = (0..100)
            .map(|i| {
                let a = (i * 3) % 60;
                let cover = (0..3).fold(0u128, |acc, k| acc | 1u128 << ((a + k) % 60));
                (id(i), cover)
            })
            .collect();
        let (roles, exact, _, _) = smallest_cover(full, c.clone(), MAX_ROLE_SET_SEARCH);
        assert!(exact);
        assert_eq!(roles.len(), 20);
        // Past the limit: the best cover found so far, marked not proven smallest.
        let (roles, exact, searched, _) = smallest_cover(full, c.clone(), 0);
        assert!(!exact);
        assert_eq!(searched, 1);
        let union = roles.iter().map(|r| c[r.index()].1).fold(0, |a, x| a | x);
        assert_eq!(union, full);
        assert!(roles.len() >= 20);
    }
}
