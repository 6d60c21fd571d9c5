//! Dry runs: a batch of operations authorized exactly as a write (same caller, same rules),
//! applied to the organisation in memory under an undo-journal checkpoint, its changes and its
//! access difference taken, and rolled back — nothing written to the store, no audit entry, no
//! revision (docs/semantics.md D54–D56).
//!
//! A dry run holds the organisation's writer's turn throughout (writers of that organisation
//! wait; other organisations do not). It takes the access after the batch in steps: each
//! applies the batch under the write lock, takes users' access until 2 ms have passed and a
//! read waits, and rolls back, so that readers go on between steps; then it compares with
//! before under a read lock.
//! No store IO happens under either lock, and its cost is about the readable sets of the users
//! the batch affects (D54).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::RwLockWriteGuard;

use serde_json::{Value as Json, json};
use strata_engine::{AccessDifference, Change, Organization, TakingAfter, UserDifference, UserId};
use strata_ops::Operation;
use strata_store::{Revision, Store};

use crate::actor::Actor;
use crate::error::AppError;
use crate::registry::OrgHandle;

/// How long a dry run holds the organisation's write lock taking access after its batch, at
/// least, before it lets a waiting read in (longer only when applying the batch takes
/// longer): readers wait at most about this plus the batch's apply and rollback (D54). In
/// nanoseconds; [`set_dry_run_slice`].
static DRY_RUN_SLICE_NS: AtomicU64 = AtomicU64::new(2_000_000);

/// Sets how long a dry run holds the write lock at a time taking the access after its batch
/// (2 ms unless set; zero takes one user a step). For tests and benches: the default keeps
/// readers' waits near the 2 ms goal.
pub fn set_dry_run_slice(slice: Duration) {
    DRY_RUN_SLICE_NS.store(
        u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// What a dry run found.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The revision the batch was tried on (unchanged by the dry run).
    pub revision: Revision,
    /// Per operation: its name and the changes it would make (as `describe_change` names them).
    pub changes: Vec<Json>,
    /// How access would change, for the users the caller may see.
    pub difference: AccessDifference,
    /// Users whose access would change and whom the caller may not ask about (not named).
    pub withheld: usize,
    /// How many times the write lock was taken to try the batch (D54: more than once only
    /// when reads waited).
    pub steps: usize,
}

/// Who the caller may see in a difference: called with the organisation as it is (before
/// the batch) and a user who existed before it.
pub type MaySee = dyn Fn(&Organization, UserId) -> bool + Send + Sync;

impl OrgHandle {
    /// Tries `ops` as `actor` would write them, and answers what they would change; changes
    /// nothing. A batch the write would refuse is refused with the write's error (naming the
    /// operation's index in a batch of several). Users the batch creates are always shown;
    /// other users only when `may_see` allows (D56).
    ///
    /// # Errors
    ///
    /// The write's refusal; `corrupt_store` and the like when the organisation cannot be
    /// caught up with the store first.
    pub async fn dry_run(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        ops: Vec<Operation>,
        actor: Actor,
        may_see: Arc<MaySee>,
    ) -> Result<DryRun, AppError> {
        let handle = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            // What other nodes wrote first, as a write would see it.
            handle.catch_up(store.as_ref())?;
            handle.dry_run_blocking(&ops, &actor, may_see.as_ref())
        })
        .await
        .map_err(|e| AppError::internal(format!("dry run task failed: {e}")))?
    }

    fn dry_run_blocking(
        &self,
        ops: &[Operation],
        actor: &Actor,
        may_see: &MaySee,
    ) -> Result<DryRun, AppError> {
        let (user, impersonator) = (actor.user(), actor.impersonator());
        // Memory changes (and is rolled back) in the writer's turn, so it is the same state at
        // every step; readers go on between the steps.
        let _writer = self.writer();
        let mut taking: Option<TakingAfter> = None;
        let mut changes = Vec::new();
        let mut steps = 0;
        let mut held = Duration::ZERO;
        loop {
            // Reads waited for the last step: as long again for them alone (no writer queued,
            // they go at full speed), so that a dry run takes at most half of the lock's time.
            if !held.is_zero() {
                std::thread::sleep(held.min(Duration::from_millis(50)));
            }
            steps += 1;
            let mut state = self.write_lock();
            let held_since = std::time::Instant::now();
            if state.dirty {
                return Err(AppError::new(
                    "database_unreachable",
                    format!(
                        "organization `{}` is being rebuilt from the store: retry",
                        self.name
                    ),
                ));
            }
            let first = taking.is_none();
            let slice = Duration::from_nanos(DRY_RUN_SLICE_NS.load(Ordering::Relaxed));
            let waiting = || self.readers_waiting();
            let tried = state.org.dry_run_step(taking.take(), Some(slice), &waiting, |org| {
                let (checkpoint, applied) =
                    strata_ops::apply_batch_open(org, ops, impersonator, |org, _, op, step| {
                        match step {
                            strata_ops::BatchStep::Before => strata_ops::authorize_as(org, user, op),
                            strata_ops::BatchStep::After(_) => Ok(()),
                        }
                    })?;
                // Names are taken here, where what the batch creates still exists.
                let described: Vec<Json> = if first {
                    ops.iter()
                        .zip(&applied)
                        .map(|(op, changes)| {
                            json!({
                                "op": op.name(),
                                "changes": changes.iter().map(|c| describe_change(org, c)).collect::<Vec<_>>(),
                            })
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                org.commit(checkpoint)
                    .map_err(|e| (ops.len().saturating_sub(1), strata_ops::OpError::from(e)))?;
                Ok(described)
            });
            match tried {
                Ok(Ok((described, step))) => {
                    if first {
                        changes = described;
                    }
                    match step.finish() {
                        Ok(after) => {
                            let revision = state.revision;
                            // The batch is rolled back: the comparison with before reads only,
                            // so readers go on meanwhile (writers still wait).
                            let state = RwLockWriteGuard::downgrade(state);
                            return Ok(dry_run_answer(
                                &state.org, revision, changes, after, may_see, steps,
                            ));
                        }
                        Err(step) => taking = Some(step),
                    }
                    held = held_since.elapsed();
                }
                // The same batch on the same state is refused only the first time.
                Ok(Err((i, e))) if first => {
                    let mut err = AppError::from(e);
                    if ops.len() > 1 {
                        err = err.at(format!("/{i}"));
                    }
                    return Err(err);
                }
                // Rolled back like the first time; memory is as it was.
                Ok(Err((_, e))) => {
                    return Err(AppError::internal(format!(
                        "the dry run's batch was refused when applied again: {e}"
                    )));
                }
                Err(e) => {
                    // A rollback that could not be done, or a step that found another state
                    // after the batch than the first: memory is rebuilt from the store before
                    // its next use.
                    state.dirty = true;
                    return Err(AppError::internal(format!(
                        "the dry run failed ({e}); the organisation is rebuilt from the store"
                    )));
                }
            }
            // The write lock is let go here: readers waiting for it go first (the lock is fair).
        }
    }
}

/// The difference compared with the state before (rolled back), for the users the caller may
/// see.
fn dry_run_answer(
    org: &Organization,
    revision: Revision,
    changes: Vec<Json>,
    after: strata_engine::AccessAfter,
    may_see: &MaySee,
    steps: usize,
) -> DryRun {
    let mut difference = org.access_difference(after);
    let before = difference.users.len();
    difference.users.retain(|d| d.new || may_see(org, d.user));
    DryRun {
        revision,
        changes,
        withheld: before - difference.users.len(),
        difference,
        steps,
    }
}

impl DryRun {
    /// The answer as JSON (the API's and the CLI's `--json`).
    #[must_use]
    pub fn to_json(&self) -> Json {
        json!({
            "dry_run": true,
            "revision": self.revision,
            "changes": self.changes,
            "difference": {
                "users": self.difference.users.iter().map(user_json).collect::<Vec<_>>(),
                "withheld": self.withheld,
            },
        })
    }
}

fn user_json(d: &UserDifference) -> Json {
    let source = |g: &strata_engine::GrantSource| {
        json!({
            "depth": g.depth.name(),
            "role": g.role,
            "team": g.team,
            "team_only": g.team_only,
            "business_unit": g.business_unit,
        })
    };
    json!({
        "user": d.name,
        "new": d.new,
        "enabled": { "before": d.enabled.0, "after": d.enabled.1 },
        "system_administrator": { "before": d.system_administrator.0, "after": d.system_administrator.1 },
        "privileges": d.privileges.iter().map(|p| json!({
            "table": p.table,
            "privilege": p.privilege.name(),
            "before": p.before.name(),
            "after": p.after.name(),
            "lost": p.lost.iter().map(source).collect::<Vec<_>>(),
            "gained": p.gained.iter().map(source).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "records": d.records.iter().map(|r| json!({
            "table": r.table,
            "gained": r.gained,
            "lost": r.lost,
        })).collect::<Vec<_>>(),
    })
}

/// One change by names (in the state after the batch).
#[must_use]
pub fn describe_change(org: &Organization, change: &Change) -> Json {
    let record = |r: strata_engine::RecordId| {
        let rec = org.record(r);
        json!({ "table": org.table(rec.table).name, "record": &*rec.key })
    };
    let unit = |u| org.units().name(u).to_owned();
    let user = |u: UserId| org.user(u).name.clone();
    match change {
        Change::RecordCreated { record: r } => {
            json!({ "change": "record_created", "record": record(*r) })
        }
        Change::RecordUpdated { record: r, columns } => json!({
            "change": "record_updated",
            "record": record(*r),
            "columns": columns.iter().map(|(c, _, _)| c.clone()).collect::<Vec<_>>(),
        }),
        Change::RecordDeleted { record: r } => {
            json!({ "change": "record_deleted", "record": record(*r) })
        }
        Change::OwnerChanged {
            record: r,
            old,
            new,
            old_unit,
            new_unit,
        } => json!({
            "change": "owner_changed",
            "record": record(*r),
            "old": org.owner_name(*old),
            "new": org.owner_name(*new),
            "old_business_unit": unit(*old_unit),
            "new_business_unit": unit(*new_unit),
        }),
        Change::RecordMoved {
            record: r,
            old_unit,
            new_unit,
        } => json!({
            "change": "record_moved",
            "record": record(*r),
            "old_business_unit": unit(*old_unit),
            "new_business_unit": unit(*new_unit),
        }),
        Change::ShareChanged {
            record: r,
            principal,
            old,
            new,
        } => json!({
            "change": "share_changed",
            "record": record(*r),
            "principal": org.principal_name(*principal),
            "old": privileges(*old),
            "new": privileges(*new),
        }),
        Change::LookupChanged {
            record: r,
            relationship,
            old,
            new,
        } => json!({
            "change": "lookup_changed",
            "record": record(*r),
            "relationship": org.relationship(*relationship).name,
            "old": old.map(|p| org.record(p).key.to_string()),
            "new": new.map(|p| org.record(p).key.to_string()),
        }),
        Change::RoleAssigned { principal, role } => json!({
            "change": "role_assigned",
            "principal": org.principal_name(*principal),
            "role": org.role(*role).name,
        }),
        Change::RoleRemoved { principal, role } => json!({
            "change": "role_removed",
            "principal": org.principal_name(*principal),
            "role": org.role(*role).name,
        }),
        Change::TeamMemberAdded { team, user: u } => json!({
            "change": "team_member_added", "team": org.team(*team).name, "user": user(*u),
        }),
        Change::TeamMemberRemoved { team, user: u } => json!({
            "change": "team_member_removed", "team": org.team(*team).name, "user": user(*u),
        }),
        Change::UserMoved {
            user: u,
            old_unit,
            new_unit,
        } => json!({
            "change": "user_moved",
            "user": user(*u),
            "old_business_unit": unit(*old_unit),
            "new_business_unit": unit(*new_unit),
        }),
        Change::ManagerChanged { user: u, old, new } => json!({
            "change": "manager_changed",
            "user": user(*u),
            "old": old.map(user),
            "new": new.map(user),
        }),
    }
}

fn privileges(mask: strata_engine::AccessMask) -> Vec<&'static str> {
    strata_engine::Privilege::ALL
        .into_iter()
        .filter(|p| mask.contains(*p))
        .map(strata_engine::Privilege::name)
        .collect()
}
