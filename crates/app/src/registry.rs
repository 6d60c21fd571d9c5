//! The organisation registry: each organisation in memory with its revision, the one write path
//! (catch-up → authorize → apply → audit → append in one transaction → publish), catch-up and
//! the follower's pass, the start-up load and the isolation of a corrupt log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{RwLockReadGuard, RwLockWriteGuard};

use strata_engine::Organization;
use strata_ops::Operation;
use strata_store::{LogEntry, Revision, Store, StoreError};

use crate::LoadProgress;
use crate::actor::Actor;
use crate::error::AppError;

/// An organisation in memory.
#[derive(Debug)]
pub struct Loaded {
    /// The organisation.
    pub org: Organization,
    /// The revision of the last operation applied.
    pub revision: Revision,
    /// Memory may hold what the store does not (a commit failed and the store could not be
    /// read back): rebuilt from the store before it is used again.
    pub dirty: bool,
}

/// One organisation served: readers share it; one writer at a time changes it.
///
/// The lock is tokio's: a writer holds it across its database commit (memory and store change
/// together), and a reader waiting for it yields its async worker instead of blocking it, so a
/// slow commit in one organisation never stalls requests to others. Async code reads with
/// [`OrgHandle::read`]; blocking tasks and the follower thread with
/// [`OrgHandle::read_blocking`].
#[derive(Debug)]
pub struct OrgHandle {
    /// The organisation's name.
    pub name: String,
    state: tokio::sync::RwLock<Loaded>,
    writer: tokio::sync::Mutex<()>,
    applied: tokio::sync::watch::Sender<Revision>,
    /// A read waiting for a revision has started a catch-up that has not finished.
    catching_up: AtomicBool,
    /// Moved each time the organisation may change ([`OrgHandle::generation`]).
    generation: AtomicU64,
    /// The revision of the newest checkpoint known (loaded from, or taken): periodic
    /// checkpoints count the operations after it.
    checkpointed: AtomicU64,
}

/// Generations of every organisation in this process: each new handle, and each change of
/// one, takes the next, so that a generation names one state of one handle.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// What a write did.
#[derive(Debug, Clone)]
pub struct Written {
    /// The revision after the write (a consistency token for reads).
    pub revision: Revision,
    /// Per operation, the names of what changed.
    pub changes: Vec<usize>,
}

impl OrgHandle {
    fn new(name: &str, loaded: Loaded) -> Self {
        let (applied, _) = tokio::sync::watch::channel(loaded.revision);
        OrgHandle {
            name: name.to_owned(),
            state: tokio::sync::RwLock::new(loaded),
            writer: tokio::sync::Mutex::new(()),
            applied,
            catching_up: AtomicBool::new(false),
            generation: AtomicU64::new(GENERATIONS.fetch_add(1, Ordering::Relaxed)),
            checkpointed: AtomicU64::new(0),
        }
    }

    /// The revision of the newest checkpoint this node knows of (0 = none).
    pub fn checkpointed(&self) -> Revision {
        self.checkpointed.load(Ordering::Acquire)
    }

    pub(crate) fn set_checkpointed(&self, revision: Revision) {
        self.checkpointed.fetch_max(revision, Ordering::AcqRel);
    }

    /// A number that names the organisation's state in memory: read under [`OrgHandle::read`],
    /// the same generation means the same state of the same organisation (the same handle, and
    /// no write lock taken since). It moves each time the write lock is taken — a write, a
    /// catch-up, a rebuild — even one that changes nothing, and no two handles share one.
    /// Unlike the revision, it also moves when memory is rebuilt from a log that was replaced
    /// (the organisation deleted and created again elsewhere), which may revisit a revision
    /// with other contents. For caches of what is derived from the organisation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reads the organisation (async code: waiting yields the worker).
    pub async fn read(&self) -> RwLockReadGuard<'_, Loaded> {
        self.state.read().await
    }

    /// Reads the organisation from a blocking task or a thread outside the async runtime
    /// (never from async code: it would block the worker).
    pub fn read_blocking(&self) -> RwLockReadGuard<'_, Loaded> {
        self.state.blocking_read()
    }

    /// Writes the organisation (blocking tasks and threads only). The generation moves while
    /// the lock is held, so a reader never sees a new state under an old generation.
    pub(crate) fn write_lock(&self) -> RwLockWriteGuard<'_, Loaded> {
        let guard = self.state.blocking_write();
        self.generation.store(
            GENERATIONS.fetch_add(1, Ordering::Relaxed),
            Ordering::Release,
        );
        guard
    }

    /// The revision this node has applied.
    pub fn applied(&self) -> Revision {
        *self.applied.borrow()
    }

    /// Waits (at most `timeout`) until this node has applied `min_revision`; when it has not
    /// yet, it also fetches what the store has (without waiting for the follower). Fails with
    /// `revision_not_reached` after the timeout: never a stale answer.
    pub async fn wait_for(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        min_revision: Revision,
        timeout: std::time::Duration,
    ) -> Result<(), AppError> {
        let mut rx = self.applied.subscribe();
        if *rx.borrow() >= min_revision && !self.read().await.dirty {
            return Ok(());
        }
        if !self.catching_up.swap(true, Ordering::AcqRel) {
            let (handle, store) = (Arc::clone(self), Arc::clone(store));
            tokio::task::spawn_blocking(move || {
                if let Err(e) = handle.catch_up(store.as_ref()) {
                    tracing::debug!(org = %handle.name, error = %e.message, "catch-up for a read");
                }
                handle.catching_up.store(false, Ordering::Release);
            });
        }
        let reached = tokio::time::timeout(timeout, rx.wait_for(|r| *r >= min_revision))
            .await
            .is_ok_and(|r| r.is_ok());
        match reached {
            true if !self.read().await.dirty => Ok(()),
            _ => Err(AppError::new(
                "revision_not_reached",
                format!(
                    "this node has applied revision {} of organization `{}`, not revision {min_revision}, and did not reach it within {} ms (it is behind, or cannot reach the database): retry later or on another node",
                    self.applied(),
                    self.name,
                    timeout.as_millis()
                ),
            )),
        }
    }

    /// Applies what the store has after this node's revision (operations written by other
    /// nodes, in order); rebuilds from the store when memory is dirty or the store's log is
    /// shorter than memory (the organisation was deleted and created again elsewhere).
    pub fn catch_up(&self, store: &dyn Store) -> Result<(), AppError> {
        let (applied, dirty) = {
            let loaded = self.read_blocking();
            (loaded.revision, loaded.dirty)
        };
        if dirty {
            return self.rebuild(store);
        }
        // Read outside the lock: readers go on meanwhile.
        let entries = store.operations(&self.name, applied)?;
        if entries.is_empty() {
            if store.revision(&self.name)? < applied {
                return self.rebuild(store);
            }
            return Ok(());
        }
        let mut state = self.write_lock();
        if state.dirty {
            drop(state);
            return self.rebuild(store);
        }
        let fresh: Vec<&LogEntry> = entries
            .iter()
            .filter(|e| e.revision > state.revision)
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let result = apply_entries(&mut state, &self.name, &fresh);
        let revision = state.revision;
        drop(state);
        self.applied.send_replace(revision);
        result
    }

    /// Rebuilds memory from the store (marking it dirty if the store cannot be read).
    fn rebuild(&self, store: &dyn Store) -> Result<(), AppError> {
        let mut state = self.write_lock();
        let result = reload(store, &self.name).map(|loaded| *state = loaded);
        if result.is_err() {
            state.dirty = true;
        }
        let revision = state.revision;
        drop(state);
        self.applied.send_replace(revision);
        result
    }

    /// Applies operations and persists them with their audit entries in one transaction.
    /// All or nothing: a refused operation, or a failed commit, leaves memory and store as they
    /// were.
    pub async fn write(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        ops: Vec<Operation>,
        actor: Actor,
    ) -> Result<Written, AppError> {
        let _writer = self.writer.lock().await;
        let handle = Arc::clone(self);
        tokio::task::spawn_blocking(move || handle.write_blocking(store.as_ref(), &ops, &actor))
            .await
            .map_err(|e| AppError::internal(format!("write task failed: {e}")))?
    }

    /// The write under the organisation's lock in the store (a row lock on PostgreSQL): first
    /// what other nodes committed since this node's revision, then the new operations, each
    /// authorized against that state, then the append — so every node's operations apply in
    /// the order of their revisions.
    fn write_blocking(
        &self,
        store: &dyn Store,
        ops: &[Operation],
        actor: &Actor,
    ) -> Result<Written, AppError> {
        let (user, impersonator) = (actor.user(), actor.impersonator());
        let mut state = self.write_lock();
        if state.dirty {
            *state = reload(store, &self.name)?;
        }
        let now = now_ms();
        let mut counts = Vec::with_capacity(ops.len());
        let mut refused: Option<AppError> = None;
        // The batch's checkpoint, open until the store has committed or failed.
        let mut open: Option<strata_engine::Checkpoint> = None;
        // Memory holds exactly the revision `state.revision` of the store.
        let mut consistent = true;
        let committed = store.write(&self.name, &mut |tx| {
            let base = tx.revision();
            if base < state.revision {
                return Err(StoreError::Corrupt(format!(
                    "organization `{}`: the store is at revision {base}, behind this node's {}",
                    self.name, state.revision
                )));
            }
            if base > state.revision {
                // Other nodes wrote: apply their operations first, in order.
                let entries = tx.operations_after(state.revision)?;
                let entries: Vec<&LogEntry> = entries.iter().collect();
                consistent = false;
                apply_entries(&mut state, &self.name, &entries)
                    .map_err(|e| StoreError::Corrupt(e.message))?;
                if state.revision != base {
                    return Err(StoreError::Corrupt(format!(
                        "organization `{}`: the log ends at {}, not at the revision {base} it was locked at",
                        self.name, state.revision
                    )));
                }
                consistent = true;
            }
            // All or nothing through the engine's undo journal: a refused operation rolls the
            // batch back in microseconds, never by replaying the log.
            let mut befores = Vec::with_capacity(ops.len());
            let mut audits = Vec::with_capacity(ops.len());
            let batch = strata_ops::apply_batch_open(
                &mut state.org,
                ops,
                impersonator,
                |org, i, op, step| match step {
                    strata_ops::BatchStep::Before => {
                        strata_ops::authorize_as(org, user, op)?;
                        befores.push(crate::audit::before(org, op));
                        Ok(())
                    }
                    strata_ops::BatchStep::After(changes) => {
                        let before = befores.get_mut(i).and_then(Option::take);
                        audits.push(crate::audit::entries_by(org, op, before, changes, actor));
                        Ok(())
                    }
                },
            );
            match batch {
                Ok((checkpoint, changes)) => {
                    counts = changes.iter().map(Vec::len).collect();
                    open = Some(checkpoint);
                }
                Err((i, e)) => {
                    let mut err = AppError::from(e);
                    if ops.len() > 1 {
                        err = err.at(format!("/{i}"));
                    }
                    refused = Some(err);
                    return Err(StoreError::Aborted(String::new()));
                }
            }
            let retention = state.org.audit_settings().retention_days;
            for (op, entries) in ops.iter().zip(&audits) {
                tx.append_operation(op, now)?;
                for e in entries {
                    tx.append_audit(e, now, retention)?;
                }
            }
            Ok(())
        });
        // The batch is kept with the commit, and undone when the store failed.
        let undone = match open.take() {
            Some(checkpoint) if committed.is_ok() => state.org.commit(checkpoint),
            Some(checkpoint) => state.org.rollback(checkpoint),
            None => Ok(()),
        };
        if undone.is_err() {
            consistent = false;
        }
        let result = match committed {
            Ok(revision) if consistent => {
                state.revision = revision;
                Ok(Written {
                    revision,
                    changes: counts,
                })
            }
            Ok(revision) => {
                // Memory could not close the batch's journal: rebuild it from the store, which
                // holds the batch.
                match reload(store, &self.name) {
                    Ok(loaded) => *state = loaded,
                    Err(_) => state.dirty = true,
                }
                Ok(Written {
                    revision,
                    changes: counts,
                })
            }
            Err(e) => {
                if !consistent {
                    // Memory may hold what the store does not: rebuild it from the store.
                    match reload(store, &self.name) {
                        Ok(loaded) => *state = loaded,
                        Err(_) => state.dirty = true,
                    }
                }
                Err(refused.unwrap_or_else(|| e.into()))
            }
        };
        let revision = state.revision;
        drop(state);
        self.applied.send_replace(revision);
        result
    }
}

/// Applies log entries that follow `state.revision`, in order, with no gap.
fn apply_entries(state: &mut Loaded, name: &str, entries: &[&LogEntry]) -> Result<(), AppError> {
    let mut expected = state.revision + 1;
    for e in entries {
        if e.revision != expected {
            state.dirty = true;
            return Err(AppError::new(
                "corrupt_store",
                format!(
                    "organization `{name}`: the log has revision {} where {expected} was expected",
                    e.revision
                ),
            ));
        }
        expected += 1;
    }
    let ops: Vec<Operation> = entries.iter().map(|e| e.operation.clone()).collect();
    match strata_ops::apply_all(&mut state.org, &ops) {
        Ok(_) => {
            state.revision = expected - 1;
            Ok(())
        }
        Err((i, e)) => {
            state.dirty = true;
            Err(AppError::new(
                "corrupt_store",
                format!(
                    "organization `{name}`: logged operation {} does not apply here: {}",
                    entries.get(i).map_or(0, |e| e.revision),
                    e.message
                ),
            ))
        }
    }
}

fn reload(store: &dyn Store, org: &str) -> Result<Loaded, AppError> {
    let (org, revision, _) = crate::checkpoint::load(store, org, &mut |_, _| {})?;
    Ok(Loaded {
        org,
        revision,
        dirty: false,
    })
}

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Every organisation the server hosts.
#[derive(Debug, Default)]
pub struct Registry {
    orgs: RwLock<HashMap<String, Arc<OrgHandle>>>,
    /// Organisations not served because their operation log failed verification
    /// (`corrupt_log`), with the error: named by `/readyz` until the organisation is deleted or
    /// the server restarts on a repaired log.
    isolated: Mutex<std::collections::BTreeMap<String, AppError>>,
    /// Held while organisations are added or removed (here, or by the follower after another
    /// node did it), so that the two never undo each other.
    membership: Mutex<()>,
}

impl Registry {
    /// Loads every organisation of the store.
    pub fn load(store: &dyn Store, progress: Option<&LoadProgress>) -> Result<Registry, AppError> {
        let registry = Registry::default();
        let mut orgs = HashMap::new();
        for (name, _) in store.organizations()? {
            match load_logged(store, &name, progress) {
                Ok(handle) => {
                    orgs.insert(name, handle);
                }
                // One organisation's tampered log, or a logged operation that no longer
                // applies, does not stop the others being served.
                Err(e) if e.code == "corrupt_log" || e.code == "corrupt_store" => {
                    registry.isolate(&name, e);
                }
                Err(e) => return Err(e),
            }
        }
        *registry
            .orgs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = orgs;
        Ok(registry)
    }

    /// Stops serving an organisation whose log failed verification.
    fn isolate(&self, name: &str, error: AppError) {
        tracing::error!(org = %name, error = %error.message, "organization not served: its operation log failed verification or no longer applies");
        self.orgs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        self.isolated_map().insert(name.to_owned(), error);
    }

    fn isolated_map(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, AppError>> {
        self.isolated
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The organisations not served because their log failed verification, with the error.
    pub fn isolated(&self) -> Vec<(String, AppError)> {
        self.isolated_map()
            .iter()
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect()
    }

    fn membership(&self) -> std::sync::MutexGuard<'_, ()> {
        self.membership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The organisation of this name.
    pub fn get(&self, name: &str) -> Result<Arc<OrgHandle>, AppError> {
        self.orgs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| match self.isolated_map().get(name) {
                Some(e) => AppError::new(
                    "corrupt_log",
                    format!("organization `{name}` is not served: {}", e.message),
                ),
                None => AppError::new(
                    "unknown_organization",
                    format!("unknown organization `{name}`"),
                ),
            })
    }

    /// Every organisation's name and revision.
    pub fn list(&self) -> Vec<(String, Revision)> {
        let orgs = self
            .orgs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut list: Vec<_> = orgs
            .values()
            .map(|h| (h.name.clone(), h.applied()))
            .collect();
        list.sort();
        list
    }

    /// Creates an empty organisation in the store and in memory, audited as created by the
    /// root key ([`crate::bootstrap::create_organization`]: the organisation and the audit
    /// entry of its creation in one transaction).
    pub fn create(&self, store: &dyn Store, name: &str) -> Result<Arc<OrgHandle>, AppError> {
        let _membership = self.membership();
        crate::bootstrap::create_organization(store, name, &crate::Actor::Root)?;
        let handle = Arc::new(OrgHandle::new(
            name,
            Loaded {
                org: Organization::new(),
                revision: 0,
                dirty: false,
            },
        ));
        self.orgs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&handle));
        Ok(handle)
    }

    /// Removes an organisation from the store and from memory.
    pub fn delete(&self, store: &dyn Store, name: &str) -> Result<(), AppError> {
        let _membership = self.membership();
        store.delete_organization(name)?;
        self.orgs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        self.isolated_map().remove(name);
        Ok(())
    }

    /// Loads an organisation another node created, if the store has it (a read carrying a
    /// revision of an organisation this node does not know yet).
    pub fn find(&self, store: &dyn Store, name: &str) -> Result<Arc<OrgHandle>, AppError> {
        let _membership = self.membership();
        match self.get(name) {
            Err(e) if e.code == "unknown_organization" => {}
            found => return found,
        }
        let handle = load_logged(store, name, None).map_err(|e| match e.code {
            "unknown_organization" => AppError::new(
                "unknown_organization",
                format!("unknown organization `{name}`"),
            ),
            _ => e,
        })?;
        self.orgs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&handle));
        Ok(handle)
    }

    /// One pass of following the store: organisations created or deleted elsewhere appear or
    /// go, and every organisation applies what the store has after its revision. Returns how
    /// many revisions this node was behind when the pass began.
    pub fn follow(&self, store: &dyn Store) -> Result<u64, AppError> {
        let listed = {
            let _membership = self.membership();
            let listed = store.organizations()?;
            let known: Vec<String> = self
                .orgs
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .keys()
                .cloned()
                .collect();
            let names: std::collections::HashSet<&str> =
                listed.iter().map(|(n, _)| n.as_str()).collect();
            for gone in known.iter().filter(|n| !names.contains(n.as_str())) {
                tracing::info!(org = %gone, "organization deleted on another node");
                self.orgs
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(gone);
            }
            self.isolated_map()
                .retain(|name, _| names.contains(name.as_str()));
            let isolated = self.isolated_map().clone();
            for (name, _) in &listed {
                if !known.contains(name) && !isolated.contains_key(name) {
                    match load_logged(store, name, None) {
                        Ok(handle) => {
                            self.orgs
                                .write()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .insert(name.clone(), handle);
                        }
                        // Deleted again since the listing.
                        Err(e) if e.code == "unknown_organization" => {}
                        Err(e) if e.code == "corrupt_log" => self.isolate(name, e),
                        Err(e) => return Err(e),
                    }
                }
            }
            listed
        };
        let mut behind = 0;
        let mut failed = None;
        for (name, revision) in listed {
            let Ok(handle) = self.get(&name) else {
                continue;
            };
            let (applied, dirty) = {
                let loaded = handle.read_blocking();
                (loaded.revision, loaded.dirty)
            };
            if revision == applied && !dirty {
                continue;
            }
            behind += revision.saturating_sub(applied);
            match handle.catch_up(store) {
                Ok(()) => {}
                Err(e) if e.code == "unknown_organization" => {}
                Err(e) if e.code == "corrupt_log" => {
                    let _membership = self.membership();
                    self.isolate(&name, e);
                }
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(behind),
        }
    }

    /// How many revisions this node is behind the store's listing, summed over organisations.
    pub fn behind(&self, listed: &[(String, Revision)]) -> u64 {
        let isolated: std::collections::HashSet<String> =
            self.isolated_map().keys().cloned().collect();
        listed
            .iter()
            .filter(|(name, _)| !isolated.contains(name))
            .map(|(name, revision)| match self.get(name) {
                Ok(h) => revision.saturating_sub(h.applied()),
                Err(_) => (*revision).max(1),
            })
            .sum()
    }
}

/// Rebuilds an organisation from its log, with a line in the log.
fn load_logged(
    store: &dyn Store,
    name: &str,
    progress: Option<&LoadProgress>,
) -> Result<Arc<OrgHandle>, AppError> {
    let start = std::time::Instant::now();
    let (org, revision, from) = crate::checkpoint::load(store, name, &mut |done, all| {
        if let Some(p) = progress {
            (p.0)(name, done, all);
        }
    })?;
    let loaded = Loaded {
        org,
        revision,
        dirty: false,
    };
    let records = loaded.org.record_ids().count();
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(
        org = %name,
        revision = loaded.revision,
        records,
        checkpoint = from.checkpoint.unwrap_or(0),
        replayed = from.replayed,
        seconds = format!("{secs:.2}"),
        records_per_second = format!("{:.0}", records as f64 / secs.max(1e-9)),
        "organization loaded (from its newest valid checkpoint and the log after it, or the whole log), record index included"
    );
    let handle = OrgHandle::new(name, loaded);
    // Periodic checkpoints count from the one used (a newer one that failed its checks is
    // replaced by the next).
    handle.set_checkpointed(from.checkpoint.unwrap_or(0));
    Ok(Arc::new(handle))
}
