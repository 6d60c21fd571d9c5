//! Batches: operations applied all or nothing. A refused operation undoes the ones before it
//! through the organisation's undo journal ([`Organization::checkpoint`]), in time
//! proportional to what they changed — never by replaying the organisation's log.

use strata_engine::{Change, Checkpoint, Organization};

use crate::{OpError, Operation, apply, apply_on_behalf, authorize_setup};

/// A batch applied and not yet committed: its checkpoint and each operation's changes.
pub type OpenBatch = (Checkpoint, Vec<Vec<Change>>);

/// Where a batch is, when it calls its hook.
#[derive(Clone, Copy, Debug)]
pub enum BatchStep<'a> {
    /// Before the operation is applied: the organisation as the operation will find it. An
    /// `Err` refuses the operation (authorization).
    Before,
    /// After the operation was applied, with its changes. An `Err` refuses it all the same.
    After(&'a [Change]),
}

/// Authorizes a setup operation sent by `user` (by name) the way a write request is
/// authorized: with [`authorize_setup`] for a user of the organisation, not at all for the
/// system (`None`).
///
/// # Errors
///
/// `unknown_user` when `user` names nobody (never taken as the system); the refusal of
/// [`authorize_setup`].
pub fn authorize_as(org: &Organization, user: Option<&str>, op: &Operation) -> Result<(), OpError> {
    match user {
        None => Ok(()),
        // An unknown user is an error, never the system.
        Some(name) => {
            let uid = org.user_id(name).ok_or_else(|| {
                OpError::invalid(
                    "unknown_user",
                    format!("the acting user `{name}` does not exist"),
                )
            })?;
            authorize_setup(org, uid, op)
        }
    }
}

/// Applies `ops` in order, all or nothing, and keeps them. Setup operations are authorized
/// for `user` ([`authorize_as`]); actions run as their `as` user, on behalf of `on_behalf`
/// when given ([`apply_on_behalf`]). Returns each operation's changes (none for setup
/// operations).
///
/// # Errors
///
/// The index and refusal of the first refused operation; the organisation is then exactly as
/// it was before the call, and dense ids a later operation gets are the same as if the batch
/// had never been sent.
pub fn apply_batch(
    org: &mut Organization,
    ops: &[Operation],
    on_behalf: Option<&str>,
    user: Option<&str>,
) -> Result<Vec<Vec<Change>>, (usize, OpError)> {
    let (checkpoint, changes) =
        apply_batch_open(org, ops, on_behalf, |org, _, op, step| match step {
            BatchStep::Before => authorize_as(org, user, op),
            BatchStep::After(_) => Ok(()),
        })?;
    org.commit(checkpoint)
        .map_err(|e| (ops.len().saturating_sub(1), OpError::from(e)))?;
    Ok(changes)
}

/// Applies `ops` in order, all or nothing, calling `hook` before and after each one (with the
/// operation's index), and leaves the batch's checkpoint open: the caller commits it
/// ([`Organization::commit`]) once the batch is durable, or rolls it back
/// ([`Organization::rollback`], microseconds) when it cannot be stored.
///
/// # Errors
///
/// The index and refusal of the first operation refused by the engine or by `hook`; the
/// organisation is then exactly as it was before the call (the checkpoint is rolled back).
pub fn apply_batch_open(
    org: &mut Organization,
    ops: &[Operation],
    on_behalf: Option<&str>,
    mut hook: impl FnMut(&Organization, usize, &Operation, BatchStep<'_>) -> Result<(), OpError>,
) -> Result<OpenBatch, (usize, OpError)> {
    let checkpoint = org.checkpoint();
    let mut all = Vec::with_capacity(ops.len());
    // Role rules are checked against the state the whole batch leaves (D45).
    let mut guard = crate::rules::guard_for(org, ops);
    for (i, op) in ops.iter().enumerate() {
        if let Some(guard) = guard.as_mut() {
            crate::rules::note(guard, org, op, i);
        }
        let applied = hook(org, i, op, BatchStep::Before)
            .and_then(|()| match on_behalf {
                Some(imp) => apply_on_behalf(org, op, imp),
                None => apply(org, op),
            })
            .and_then(|changes| {
                hook(org, i, op, BatchStep::After(&changes))?;
                Ok(changes)
            });
        match applied {
            Ok(changes) => all.push(changes),
            Err(e) => {
                return Err(match org.rollback(checkpoint) {
                    Ok(()) => (i, e),
                    Err(r) => (i, OpError::from(r)),
                });
            }
        }
    }
    if let Some(Err((i, e))) = guard.map(|g| g.finish(org)) {
        return Err(match org.rollback(checkpoint) {
            Ok(()) => (i, OpError::from(e)),
            Err(r) => (i, OpError::from(r)),
        });
    }
    Ok((checkpoint, all))
}
