//! What a change would do to access: a dry run applies a change under an undo-journal
//! checkpoint, takes what the access of the users it affects is afterwards, rolls it back and
//! compares with before — privileges gained or lost (from the derived grants) and, per table,
//! how many records each user gains or loses Read on (from the record index's readable sets,
//! never a loop of checks).
//!
//! Which users are recomputed, and how (docs/semantics.md D55):
//! - a user whose own facts changed (grants, System Administrator status, enabled, teams,
//!   hierarchy reach, or a report's teams; a new user) gets whole readable sets compared, per
//!   table;
//! - every other user's readable set can differ only on the records whose index facts changed
//!   (the records the batch changed in place or created, and their descendants, whose inherited
//!   access follows them): for those users only the readable set ∩ those records is compared —
//!   each bitmap of the union intersected with a small set, no record visited;
//! - a rebuilt record index (a unit moved, columns declared) or a change of the tables under
//!   hierarchy security makes every user's whole sets compared.
//!
//! The journal (`journal.rs`) tells what changed, by its before-images: nothing is snapshotted
//! before the change.

use std::collections::{BTreeMap, HashMap, HashSet};

use roaring::RoaringBitmap;

use crate::derive::{Grant, Via};
use crate::error::ModelError;
use crate::ids::{RecordId, TableId, UserId};
use crate::index::Readable;
use crate::journal::SinceCheckpoint;
use crate::organization::Organization;
use crate::privilege::{Depth, Privilege};

/// How a change would change access, user by user (only users whose access changes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessDifference {
    /// Users whose access changes, by name.
    pub users: Vec<UserDifference>,
}

/// How one user's access would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDifference {
    /// The user (its id in the organisation after the change; a user that existed before keeps
    /// its id).
    pub user: UserId,
    /// The user's name.
    pub name: String,
    /// The change creates the user.
    pub new: bool,
    /// Enabled before → after (a new user was not enabled before).
    pub enabled: (bool, bool),
    /// System Administrator before → after.
    pub system_administrator: (bool, bool),
    /// Per table and privilege whose grants change.
    pub privileges: Vec<PrivilegeDifference>,
    /// Per table whose readable records change.
    pub records: Vec<ReadDifference>,
}

/// One privilege on one table whose grants change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivilegeDifference {
    /// The table's name.
    pub table: String,
    /// The privilege.
    pub privilege: Privilege,
    /// The deepest grant before (`none` when none; System Administrator status aside).
    pub before: Depth,
    /// The deepest grant after.
    pub after: Depth,
    /// Grants held before and not after.
    pub lost: Vec<GrantSource>,
    /// Grants held after and not before.
    pub gained: Vec<GrantSource>,
}

/// Where a grant comes from, by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GrantSource {
    /// Its depth.
    pub depth: Depth,
    /// The role.
    pub role: String,
    /// The team holding the role, when not assigned directly.
    pub team: Option<String>,
    /// The role's privileges act for the team only (D4).
    pub team_only: bool,
    /// The unit its depth is measured from.
    pub business_unit: String,
}

/// The records of one table a user gains or loses Read on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadDifference {
    /// The table's name.
    pub table: String,
    /// Records readable after and not before.
    pub gained: u64,
    /// Records readable before and not after.
    pub lost: u64,
}

/// A user's grants by name, keyed by (table, privilege).
type NamedGrants = BTreeMap<(TableId, Privilege), Vec<GrantSource>>;

/// One user's access on one side of the change.
#[derive(Debug, Default)]
struct Side {
    enabled: bool,
    admin: bool,
    grants: NamedGrants,
    /// Readable records per table (whole sets, or within the touched records).
    read: HashMap<TableId, RoaringBitmap>,
}

/// The access taken in the state after a dry run's change ([`Organization::dry_run_after`]),
/// to compare with the state before it ([`Organization::access_difference`]).
#[derive(Debug)]
pub struct AccessAfter(After);

/// A dry run's access after its change, being taken over one or more steps
/// ([`Organization::dry_run_step`]).
#[derive(Debug)]
pub struct TakingAfter {
    /// Users whose whole access is compared, and the others (within the touched records).
    whole_users: Vec<UserId>,
    within_users: Vec<UserId>,
    /// The number of records after the change (a later step must find the same).
    records_after: usize,
    /// What is taken so far (boxed: a step hands it back and forth).
    after: Box<After>,
}

impl TakingAfter {
    /// The access taken when every user's is; otherwise this taking back, for the next step.
    ///
    /// # Errors
    ///
    /// Users whose access is not taken yet (the taking, unchanged).
    pub fn finish(self) -> Result<AccessAfter, TakingAfter> {
        if self.after.whole.len() == self.whole_users.len()
            && self.after.within.len() == self.within_users.len()
        {
            Ok(AccessAfter(*self.after))
        } else {
            Err(self)
        }
    }
}

/// What is taken in the state after the change.
#[derive(Debug)]
struct After {
    /// Users whose whole access is compared.
    whole: Vec<(UserId, Side)>,
    /// The other users' readable records within the touched records.
    within: Vec<(UserId, Side)>,
    /// Touched records per table.
    touched: HashMap<TableId, RoaringBitmap>,
    /// Names after the change (a superset of those before).
    user_names: Vec<String>,
    table_names: Vec<String>,
    users_before: usize,
}

impl Organization {
    /// Runs `change` as a dry run: the organisation is changed, its access difference is
    /// taken, and the change is rolled back — the organisation ends exactly as it was (the
    /// undo journal, `journal.rs`). `change` returns what the caller wants to know of the state
    /// after it (it is called in that state); a change that fails is rolled back and its error
    /// returned inside `Ok`. [`Organization::dry_run_after`] and
    /// [`Organization::access_difference`] are its two halves, for a caller that compares
    /// under a read lock.
    ///
    /// # Errors
    ///
    /// Only a rollback that could not be done (the organisation must then be rebuilt).
    pub fn dry_run<T, E>(
        &mut self,
        change: impl FnOnce(&mut Organization) -> Result<T, E>,
    ) -> Result<Result<(T, AccessDifference), E>, ModelError> {
        Ok(self
            .dry_run_after(change)?
            .map(|(out, after)| (out, self.access_difference(after))))
    }

    /// The first half of [`Organization::dry_run`]: `change` applied under a checkpoint, the
    /// access of the users it may affect taken in the state after it, and the change rolled
    /// back. Give the result to [`Organization::access_difference`] before the organisation
    /// changes again.
    ///
    /// # Errors
    ///
    /// Only a rollback that could not be done (the organisation must then be rebuilt).
    pub fn dry_run_after<T, E>(
        &mut self,
        change: impl FnOnce(&mut Organization) -> Result<T, E>,
    ) -> Result<Result<(T, AccessAfter), E>, ModelError> {
        Ok(self
            .dry_run_step(None, None, &|| false, change)?
            .map(|(out, taking)| {
                let Ok(after) = taking.finish() else {
                    unreachable!("a step with no deadline takes every user")
                };
                (out, after)
            }))
    }

    /// [`Organization::dry_run_after`] in steps, so that a caller holding a lock can let
    /// readers in between them (D54): `change` is applied under a checkpoint, the access after
    /// it is taken user by user, and the change is rolled back. A step ends once `slice` has
    /// passed (or as long as the change took, whichever is longer) and `waiting` says someone
    /// waits for the lock; it takes at least one user, and every user with no slice. The first step (`taking` is `None`) also finds
    /// which users the change may affect; give each step the [`TakingAfter`] the one before
    /// returned, with the same change applied to the same state, until [`TakingAfter::finish`]
    /// gives the access for [`Organization::access_difference`].
    ///
    /// # Errors
    ///
    /// A rollback that could not be done, or a change that did not leave the organisation the
    /// size it left it at the first step (either way the organisation must be rebuilt).
    pub fn dry_run_step<T, E>(
        &mut self,
        taking: Option<TakingAfter>,
        slice: Option<std::time::Duration>,
        waiting: &dyn Fn() -> bool,
        change: impl FnOnce(&mut Organization) -> Result<T, E>,
    ) -> Result<Result<(T, TakingAfter), E>, ModelError> {
        let started = std::time::Instant::now();
        let checkpoint = self.checkpoint();
        let out = match change(self) {
            Ok(out) => out,
            Err(e) => {
                self.rollback(checkpoint)?;
                return Ok(Err(e));
            }
        };
        let applying = started.elapsed();
        let mut taking = match taking {
            Some(taking) => taking,
            None => {
                let Some(since) = self.since_checkpoint(&checkpoint) else {
                    self.rollback(checkpoint)?;
                    return Err(ModelError::Other(
                        "the dry run's checkpoint was closed by the change".to_owned(),
                    ));
                };
                self.plan_after(&since)
            }
        };
        let same = taking.after.user_names.len() == self.users.len()
            && taking.records_after == self.records.len();
        if same {
            let deadline = slice.map(|slice| std::time::Instant::now() + slice.max(applying));
            self.take_after(&mut taking, deadline, waiting);
        }
        self.rollback(checkpoint)?;
        if !same {
            return Err(ModelError::Other(
                "the dry run's change did not apply the same way again".to_owned(),
            ));
        }
        Ok(Ok((out, taking)))
    }

    /// Which users the change may affect, in the state after it (nothing taken yet).
    fn plan_after(&self, since: &SinceCheckpoint) -> TakingAfter {
        let everything = since.index_rebuilt
            || since.unit_moved
            || since
                .hierarchy_tables
                .as_ref()
                .is_some_and(|h| *h != self.derived.hierarchy_tables);
        let mut touched: HashMap<TableId, RoaringBitmap> = HashMap::new();
        let mut whole: HashSet<UserId> = HashSet::new();
        if everything {
            whole.extend(self.user_ids());
        } else {
            // Records changed or created, and their descendants.
            let mut pending: Vec<RecordId> = since.records_touched.clone();
            pending.extend((since.records..self.records.len()).map(RecordId::from_index));
            let mut seen = HashSet::new();
            while let Some(r) = pending.pop() {
                if seen.insert(r) {
                    touched
                        .entry(self.record(r).table)
                        .or_default()
                        .insert(r.get());
                    pending.extend(self.children(r).iter().map(|(_, child)| *child));
                }
            }
            whole.extend((since.users..self.users.len()).map(UserId::from_index));
            for (u, (grants, admin)) in &since.grants {
                if self.derived.grants[u.index()] != *grants
                    || self.derived.admin[u.index()] != *admin
                {
                    whole.insert(*u);
                }
            }
            let mut teams_changed = HashSet::new();
            for (u, (enabled, teams)) in &since.users_then {
                let now = &self.users[u.index()];
                if now.teams != *teams {
                    teams_changed.insert(*u);
                    whole.insert(*u);
                }
                if now.enabled != *enabled {
                    whole.insert(*u);
                }
            }
            if let Some(reports) = &since.reports {
                for (i, then) in reports.iter().enumerate().take(since.users) {
                    if self.derived.reports[i] != *then {
                        whole.insert(UserId::from_index(i));
                    }
                }
            }
            // A manager reaches what a report's teams own and are shared.
            if !teams_changed.is_empty() {
                let reaches =
                    |list: &[(UserId, u8)]| list.iter().any(|(r, _)| teams_changed.contains(r));
                for (i, now) in self.derived.reports.iter().enumerate() {
                    let then = since.reports.as_ref().and_then(|r| r.get(i));
                    if reaches(now) || then.is_some_and(|t| reaches(t)) {
                        whole.insert(UserId::from_index(i));
                    }
                }
            }
        }
        let mut whole: Vec<UserId> = whole.into_iter().collect();
        whole.sort_unstable();
        let mut within = Vec::new();
        if !touched.is_empty() {
            let whole: HashSet<UserId> = whole.iter().copied().collect();
            within.extend(
                self.user_ids()
                    .take(since.users)
                    .filter(|u| !whole.contains(u)),
            );
        }
        TakingAfter {
            whole_users: whole,
            within_users: within,
            records_after: self.records.len(),
            after: Box::new(After {
                whole: Vec::new(),
                within: Vec::new(),
                touched,
                user_names: self.users.iter().map(|u| u.name.clone()).collect(),
                table_names: self.tables.iter().map(|t| t.name.clone()).collect(),
                users_before: since.users,
            }),
        }
    }

    /// Takes the access of the users `taking` has left, in the state after the change, until
    /// `deadline` has passed and `waiting` says someone waits (at least one user).
    fn take_after(
        &self,
        taking: &mut TakingAfter,
        deadline: Option<std::time::Instant>,
        waiting: &dyn Fn() -> bool,
    ) {
        let all_tables: Vec<TableId> = self.table_ids().collect();
        let past = |taken: usize| {
            taken > 0 && deadline.is_some_and(|d| std::time::Instant::now() >= d) && waiting()
        };
        let mut taken = 0;
        while taking.after.whole.len() < taking.whole_users.len() && !past(taken) {
            let u = taking.whole_users[taking.after.whole.len()];
            taking
                .after
                .whole
                .push((u, self.side(u, &all_tables, None)));
            taken += 1;
        }
        while taking.after.within.len() < taking.within_users.len() && !past(taken) {
            let u = taking.within_users[taking.after.within.len()];
            let side = self.side(u, &[], Some(&taking.after.touched));
            taking.after.within.push((u, side));
            taken += 1;
        }
    }

    /// One user's access: grants, and readable records of `tables` (whole sets) or, with
    /// `within`, of its tables within its records.
    fn side(
        &self,
        user: UserId,
        tables: &[TableId],
        within: Option<&HashMap<TableId, RoaringBitmap>>,
    ) -> Side {
        let u = &self.users[user.index()];
        let mut read = HashMap::new();
        match within {
            None => {
                for t in tables {
                    let set = self.readable_set(user, *t);
                    if !set.is_empty() {
                        read.insert(*t, set);
                    }
                }
            }
            Some(within) => {
                for (t, records) in within {
                    let set = readable_within(&self.readable(user, *t), records);
                    if !set.is_empty() {
                        read.insert(*t, set);
                    }
                }
            }
        }
        Side {
            enabled: u.enabled,
            admin: self.derived.admin[user.index()].is_some(),
            grants: if within.is_some() {
                NamedGrants::new()
            } else {
                self.named_grants(user)
            },
            read,
        }
    }

    fn named_grants(&self, user: UserId) -> NamedGrants {
        let mut out = NamedGrants::new();
        for g in &self.derived.grants[user.index()] {
            out.entry((g.table, g.privilege))
                .or_default()
                .push(self.grant_source(g));
        }
        for list in out.values_mut() {
            list.sort();
            list.dedup();
        }
        out
    }

    fn grant_source(&self, g: &Grant) -> GrantSource {
        let (team, team_only) = match g.via {
            Via::Direct => (None, false),
            Via::Team { team, team_only } => {
                (Some(self.teams[team.index()].name.clone()), team_only)
            }
        };
        GrantSource {
            depth: g.depth,
            role: self.roles[g.role.index()].name.clone(),
            team,
            team_only,
            business_unit: self.units.name(g.anchor).to_owned(),
        }
    }

    /// The second half of [`Organization::dry_run`]: the state before the change (this one,
    /// rolled back, and not changed since) compared with what [`Organization::dry_run_after`]
    /// took after it. Reads only.
    #[must_use]
    pub fn access_difference(&self, after: AccessAfter) -> AccessDifference {
        let after = after.0;
        let all_tables: Vec<TableId> = self.table_ids().collect();
        let table_name = |t: TableId| {
            after
                .table_names
                .get(t.index())
                .cloned()
                .unwrap_or_default()
        };
        let mut users = Vec::new();
        for (u, then) in after.whole {
            let new = u.index() >= after.users_before;
            let before = if new {
                Side::default()
            } else {
                self.side(u, &all_tables, None)
            };
            users.extend(compare(
                u,
                &after.user_names,
                new,
                &before,
                &then,
                &table_name,
            ));
        }
        for (u, then) in after.within {
            let mut before = self.side(u, &[], Some(&after.touched));
            // Grants and status are unchanged for these users.
            before.enabled = then.enabled;
            before.admin = then.admin;
            users.extend(compare(
                u,
                &after.user_names,
                false,
                &before,
                &then,
                &table_name,
            ));
        }
        users.sort_by(|a, b| a.name.cmp(&b.name));
        AccessDifference { users }
    }
}

/// Records of `readable` within `records`: each bitmap of the union intersected with the small
/// set first.
fn readable_within(readable: &Readable<'_>, records: &RoaringBitmap) -> RoaringBitmap {
    match readable {
        Readable::Nothing => RoaringBitmap::new(),
        Readable::All(live) => *live & records,
        Readable::Union { parts, live } => {
            let mut set = RoaringBitmap::new();
            for part in parts {
                set |= *part & records;
            }
            set &= *live;
            set
        }
    }
}

fn compare(
    user: UserId,
    names: &[String],
    new: bool,
    before: &Side,
    after: &Side,
    table_name: &impl Fn(TableId) -> String,
) -> Option<UserDifference> {
    let mut privileges = Vec::new();
    let keys: std::collections::BTreeSet<&(TableId, Privilege)> =
        before.grants.keys().chain(after.grants.keys()).collect();
    let empty = Vec::new();
    for key in keys {
        let b = before.grants.get(key).unwrap_or(&empty);
        let a = after.grants.get(key).unwrap_or(&empty);
        if a == b {
            continue;
        }
        let deepest =
            |list: &[GrantSource]| list.iter().map(|g| g.depth).max().unwrap_or(Depth::None);
        privileges.push(PrivilegeDifference {
            table: table_name(key.0),
            privilege: key.1,
            before: deepest(b),
            after: deepest(a),
            lost: b.iter().filter(|g| !a.contains(g)).cloned().collect(),
            gained: a.iter().filter(|g| !b.contains(g)).cloned().collect(),
        });
    }
    let mut records = Vec::new();
    let tables: std::collections::BTreeSet<&TableId> =
        before.read.keys().chain(after.read.keys()).collect();
    let nothing = RoaringBitmap::new();
    for t in tables {
        let b = before.read.get(t).unwrap_or(&nothing);
        let a = after.read.get(t).unwrap_or(&nothing);
        let (gained, lost) = (a.difference_len(b), b.difference_len(a));
        if gained > 0 || lost > 0 {
            records.push(ReadDifference {
                table: table_name(*t),
                gained,
                lost,
            });
        }
    }
    records.sort_by(|x, y| x.table.cmp(&y.table));
    let unchanged = privileges.is_empty()
        && records.is_empty()
        && before.enabled == after.enabled
        && before.admin == after.admin;
    (!unchanged || new).then(|| UserDifference {
        user,
        name: names.get(user.index()).cloned().unwrap_or_default(),
        new,
        enabled: (before.enabled, after.enabled),
        system_administrator: (before.admin, after.admin),
        privileges,
        records,
    })
}
