//! The organisation registry: each organisation in memory with its revision, the one write path
//! (catch-up → authorize → apply → audit → append in one transaction → publish), catch-up and
//! the follower's pass, the start-up load and the isolation of a corrupt log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{RwLockReadGuard, RwLockWriteGuard};

use strata_engine::Organization;
use strata_ops::Operation;
use strata_store::{LogEntry, Revision, Store, StoreError, StoredOperation};

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
/// Writes are queued and committed in groups by one committer at a time (D95), which holds
/// the write lock only while it applies — never across the database commit (D96) — so a
/// reader waits microseconds at most. The lock is tokio's: a reader waiting for it yields its
/// async worker instead of blocking it, so one organisation never stalls requests to others. Async code reads with
/// [`OrgHandle::read`]; blocking tasks and the follower thread with
/// [`OrgHandle::read_blocking`].
#[derive(Debug)]
pub struct OrgHandle {
    /// The organisation's name.
    pub name: String,
    state: tokio::sync::RwLock<Loaded>,
    /// The writer's turn ([`OrgHandle::writer`]).
    writer: Mutex<()>,
    /// Writes waiting for their group's commit.
    queue: Mutex<Queue>,
    /// Wakes a committer waiting, with a commit in flight, for the next write or the end of
    /// that commit ([`Queue::waiting`]).
    wake: std::sync::Condvar,
    applied: tokio::sync::watch::Sender<Revision>,
    /// Catch-ups asked by reads waiting for a revision ([`OrgHandle::wait_for`]): one running,
    /// and whether a read asked again while it ran.
    catching_up: Mutex<CatchUps>,
    /// Writes asked of this node ([`OrgHandle::write`]): how the server sees which
    /// organisations it writes, to take their write leases (D150).
    writes_asked: AtomicU64,
    /// Moved each time the organisation may change ([`OrgHandle::generation`]).
    generation: AtomicU64,
    /// The revision of the newest checkpoint known (loaded from, or taken): periodic
    /// checkpoints count the operations after it.
    checkpointed: AtomicU64,
    /// Reads waiting for the lock (not those that found it free): a dry run lets the lock go
    /// between its steps only when one waits (D54).
    readers_waiting: AtomicUsize,
}

/// Counts a read waiting for the lock while it lives (dropped too when the waiting future is).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A long read of an organisation ([`OrgHandle::read_long_blocking`]): the state, read, in the
/// writer's turn.
pub struct LongRead<'a> {
    // Declared first, so dropped first: the read lock goes before the turn.
    loaded: RwLockReadGuard<'a, Loaded>,
    _turn: std::sync::MutexGuard<'a, ()>,
}

impl std::fmt::Debug for LongRead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LongRead(revision {})", self.loaded.revision)
    }
}

impl std::ops::Deref for LongRead<'_> {
    type Target = Loaded;
    fn deref(&self) -> &Loaded {
        &self.loaded
    }
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
            writer: Mutex::new(()),
            queue: Mutex::new(Queue::default()),
            wake: std::sync::Condvar::new(),
            applied,
            catching_up: Mutex::new(CatchUps::default()),
            writes_asked: AtomicU64::new(0),
            generation: AtomicU64::new(GENERATIONS.fetch_add(1, Ordering::Relaxed)),
            checkpointed: AtomicU64::new(0),
            readers_waiting: AtomicUsize::new(0),
        }
    }

    /// How many writes this node has been asked to make ([`OrgHandle::write`], refused ones
    /// included) since it loaded the organisation.
    pub fn writes_asked(&self) -> u64 {
        self.writes_asked.load(Ordering::Relaxed)
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
        if let Ok(loaded) = self.state.try_read() {
            return loaded;
        }
        let _waiting = Waiting::new(&self.readers_waiting);
        self.state.read().await
    }

    /// Reads the organisation from a blocking task or a thread outside the async runtime
    /// (never from async code: it would block the worker).
    pub fn read_blocking(&self) -> RwLockReadGuard<'_, Loaded> {
        if let Ok(loaded) = self.state.try_read() {
            return loaded;
        }
        let _waiting = Waiting::new(&self.readers_waiting);
        self.state.blocking_read()
    }

    /// Whether a read waits for the lock now.
    pub(crate) fn readers_waiting(&self) -> bool {
        self.readers_waiting.load(Ordering::SeqCst) > 0
    }

    /// Reads the organisation for a long time (an export, a review, a digest: a blocking task or
    /// a thread, never async code), in the writer's turn. A write that arrives meanwhile waits for
    /// the turn, not in the lock's queue: tokio's lock is fair, so a writer queued on it would
    /// hold up every read after it — the checks — until the long read ends. Writes wait for a
    /// long read either way; checks no longer do. Two long reads take turns.
    pub fn read_long_blocking(&self) -> LongRead<'_> {
        let turn = self.writer();
        LongRead {
            loaded: self.state.blocking_read(),
            _turn: turn,
        }
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
        if self.ask_catch_up() {
            let (handle, store) = (Arc::clone(self), Arc::clone(store));
            tokio::task::spawn_blocking(move || {
                /// Ends the catch-ups when one panics, so that the next read asks anew.
                struct Over<'a>(&'a OrgHandle);
                impl Drop for Over<'_> {
                    fn drop(&mut self) {
                        if !std::thread::panicking() {
                            return;
                        }
                        *self
                            .0
                            .catching_up
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) =
                            CatchUps::default();
                    }
                }
                let _over = Over(&handle);
                loop {
                    if let Err(e) = handle.catch_up(store.as_ref()) {
                        tracing::debug!(org = %handle.name, error = %e.message, "catch-up for a read");
                    }
                    if !handle.catch_up_again() {
                        break;
                    }
                }
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

    /// Asks for a catch-up: true when the caller is to run it (none was running). One that
    /// is running may have read the log before the revision its new asker waits for was
    /// committed, so it runs once more when it ends ([`OrgHandle::catch_up_again`]) — a
    /// waiting read never depends on the follower's next wake-up.
    fn ask_catch_up(&self) -> bool {
        let mut asked = self
            .catching_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if asked.running {
            asked.again = true;
            false
        } else {
            asked.running = true;
            true
        }
    }

    /// Whether the catch-up that just ended is to run again (a read asked while it ran);
    /// otherwise it is over.
    fn catch_up_again(&self) -> bool {
        let mut asked = self
            .catching_up
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        asked.running = std::mem::take(&mut asked.again);
        asked.running
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
            let _writer = self.writer();
            return self.rebuild(store);
        }
        // Read outside the lock and the writer's turn: readers, and this node's committer, go
        // on meanwhile (what it commits meanwhile is in these entries too, the same rows of the
        // same log, and skipped below as already applied).
        let entries = store.operations(&self.name, applied)?;
        let _writer = self.writer();
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

    /// Rebuilds memory from the store (marking it dirty if the store cannot be read). The
    /// caller holds the writer's turn.
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

    /// Applies operations and persists them with their audit entries, all or nothing: a
    /// refused operation, or a failed commit, leaves memory and store as they were.
    ///
    /// Group commit (D95): the write joins the organisation's queue; one committer at a time
    /// takes every queued write, authorizes and applies each against the state the ones before
    /// it leave, and commits them together — one transaction, one fsync — then answers each.
    /// A refused write is answered with its refusal and never holds the others back; an
    /// accepted one is answered only once its commit is durable, with its own revision.
    pub async fn write(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        ops: Vec<Operation>,
        actor: Actor,
    ) -> Result<Written, AppError> {
        self.writes_asked.fetch_add(1, Ordering::Relaxed);
        // The log rows' text, written here on the request's own thread rather than by the
        // committer, which every write of the organisation waits for.
        let stored = ops
            .iter()
            .map(StoredOperation::new)
            .collect::<Result<Vec<_>, _>>()?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let start = {
            let mut queue = self.queue();
            if queue.operations > 0 && queue.operations + ops.len() > MAX_QUEUED_OPERATIONS {
                return Err(AppError::new(
                    "server_busy",
                    format!(
                        "organization `{}` has {} operations waiting to be committed, its limit ({MAX_QUEUED_OPERATIONS}): retry in a second",
                        self.name, queue.operations
                    ),
                ));
            }
            queue.operations += ops.len();
            queue.pending.push_back(Pending {
                ops,
                stored,
                actor,
                reply,
            });
            if queue.waiting {
                self.wake.notify_all();
            }
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            let committer = Committer {
                handle: Arc::clone(self),
                store,
                done: false,
            };
            tokio::task::spawn_blocking(move || committer.run());
        }
        answer.await.map_err(|_| {
            AppError::internal("the write's commit ended without an answer: retry".to_owned())
        })?
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The writer's turn: held by the committer across a group and its commit, and by
    /// whatever else changes memory (catch-up, rebuild, dry run) before it takes the write
    /// lock, so that memory changes in the order of the log. Readers never take it.
    pub(crate) fn writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next group of queued writes: at least one, then as many as fit in
    /// the group limit ([`set_group_operations`]); `None` when the queue is empty (the committer then ends).
    /// With `keep_running` (a commit of the committer's is still in flight), an empty queue
    /// leaves the committer running.
    fn next_group(&self, keep_running: bool) -> Option<Vec<Pending>> {
        let mut queue = self.queue();
        let group = take_group(&mut queue);
        if group.is_empty() {
            if !keep_running {
                queue.running = false;
            }
            return None;
        }
        Some(group)
    }

    /// With a commit in flight: waits for the next group (returned, to be tried while the
    /// commit runs) or for the commit to end (`done`, set by the commit's thread before it
    /// wakes this one under the queue's lock: `None`).
    fn next_or_landed(&self, done: &AtomicBool) -> Option<Vec<Pending>> {
        let mut queue = self.queue();
        loop {
            let group = take_group(&mut queue);
            if !group.is_empty() {
                return Some(group);
            }
            if done.load(Ordering::Acquire) {
                return None;
            }
            queue.waiting = true;
            queue = self
                .wake
                .wait(queue)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            queue.waiting = false;
        }
    }

    /// Tells a committer waiting in [`OrgHandle::next_or_landed`] that its commit ended.
    fn landed(&self, done: &AtomicBool) {
        done.store(true, Ordering::Release);
        let queue = self.queue();
        if queue.waiting {
            self.wake.notify_all();
        }
    }

    /// Tries a group ahead of its commit (D130), under the write lock, against the committed
    /// state — and, when `prior` is given (the group whose commit is in flight), against the
    /// state that group leaves: its accepted operations are applied first, as its landing
    /// will apply them. Everything is rolled back before the lock is released, so readers
    /// still see only what is committed. Returns the group's outcomes and the rows of its
    /// accepted writes (their stored texts moved into the job); the group back when it cannot
    /// be tried ahead (memory is dirty, or the prior group no longer applies).
    fn try_ahead(
        &self,
        mut group: Vec<Pending>,
        prior: Option<&Flight>,
    ) -> Result<(Flight, Job), Vec<Pending>> {
        let mut state = self.write_lock();
        if state.dirty {
            return Err(group);
        }
        let opened = state.org.checkpoint_for_try();
        let mut base = state.revision;
        if let Some(prior) = prior {
            let applied = prior
                .accepted()
                .all(|p| strata_ops::apply_all(&mut state.org, &p.ops).is_ok());
            if !applied {
                if state.org.rollback(opened).is_err() {
                    state.dirty = true;
                }
                return Err(group);
            }
            base += prior.operations;
        }
        // The time its log rows will be written with (the job's), its records stamped so (D165).
        let now = now_ms();
        state.org.set_clock(now);
        let retention = state.org.audit_settings().retention_days;
        let mut outcomes: Vec<Option<Result<Vec<usize>, AppError>>> = vec![None; group.len()];
        let mut rows = Vec::new();
        let mut operations = 0;
        for (i, pending) in group.iter_mut().enumerate() {
            match try_batch(&mut state.org, pending) {
                Ok((counts, audits)) => {
                    outcomes[i] = Some(Ok(counts));
                    operations += pending.ops.len() as Revision;
                    rows.push((i, std::mem::take(&mut pending.stored), audits));
                }
                Err(e) => outcomes[i] = Some(Err(e)),
            }
        }
        if state.org.rollback(opened).is_err() {
            // Memory may hold the tried writes: rebuilt from the store before it is used.
            state.dirty = true;
            drop(state);
            let mut job = Job {
                base,
                now: 0,
                retention,
                rows,
            };
            job.restore(&mut group);
            return Err(group);
        }
        drop(state);
        Ok((
            Flight {
                group,
                outcomes,
                base,
                operations,
            },
            Job {
                base,
                now,
                retention,
                rows,
            },
        ))
    }

    /// Lands a group tried ahead once its commit returned: applies its accepted operations
    /// (as a replay of the log would) and publishes the revision, or fails its accepted writes
    /// with the store's error; answers every write of the group. The group back, its texts
    /// restored, when the store had moved past the revision it was tried at (another node
    /// wrote): nothing was written, and it is to be committed the usual way.
    fn land(
        &self,
        store: &dyn Store,
        flight: Flight,
        mut job: Job,
        result: Result<Revision, StoreError>,
    ) -> Landed {
        if matches!(&result, Err(StoreError::Aborted(m)) if m == MOVED) {
            let mut group = flight.group;
            job.restore(&mut group);
            return Landed::Moved(group);
        }
        if flight.operations == 0 && matches!(&result, Err(StoreError::Aborted(m)) if m.is_empty())
        {
            // Every write refused at the revision the store holds: answered with the refusals.
            flight.answer(None);
            return Landed::Committed;
        }
        let mut state = self.write_lock();
        let failed = match result {
            Ok(revision) => {
                let ready = !state.dirty
                    && state.revision == flight.base
                    && flight.base + flight.operations == revision;
                follow_commit(
                    &mut state,
                    store,
                    &self.name,
                    ready,
                    (revision, job.now),
                    flight.accepted(),
                );
                None
            }
            Err(e) => {
                if state.dirty {
                    reload_into(&mut state, store, &self.name);
                }
                Some(AppError::from(e))
            }
        };
        let revision = state.revision;
        drop(state);
        self.applied.send_replace(revision);
        let landed = match failed {
            None => Landed::Committed,
            Some(_) => Landed::Failed,
        };
        flight.answer(failed.as_ref());
        landed
    }

    /// Commits one group under the organisation's lock in the store (a row lock on
    /// PostgreSQL): first what other nodes committed since this node's revision, then each
    /// write, authorized against the state the writes before it leave, then the append — so
    /// every node's operations apply in the order of their revisions.
    ///
    /// Readers never wait for the database (D96): the group is applied under the write lock
    /// (microseconds an operation), its rows taken, and memory rolled back to the committed
    /// state before the lock is released; the transaction commits with no lock held, and the
    /// accepted operations are then applied again, as a replay of the log would, under a
    /// second short write lock. Memory always holds exactly the committed revision.
    ///
    /// A group of at least [`STREAM_OPERATIONS`] operations is **streamed** (D143): a thread
    /// of its own tries the writes under the write lock and hands each operation's audit
    /// entries over as soon as it is applied, while this thread appends its rows to the
    /// transaction — the try and the rows overlap on two processors. A write refused after
    /// some of its rows were appended aborts the transaction, and the group is committed
    /// again the serial way (nothing of the first attempt is kept: memory is rolled back and
    /// the transaction never commits).
    fn commit_group(&self, store: &dyn Store, group: &[Pending]) -> Vec<Result<Written, AppError>> {
        let operations: usize = group.iter().map(|p| p.ops.len()).sum();
        let stream = operations >= STREAM_OPERATIONS.load(Ordering::Relaxed);
        match self.commit_group_as(store, group, stream) {
            Some(answers) => answers,
            None => self
                .commit_group_as(store, group, false)
                .unwrap_or_else(|| unreachable!("a serial group is never restarted")),
        }
    }

    /// [`OrgHandle::commit_group`], streamed or serial; `None` when a streamed group must be
    /// committed again the serial way.
    fn commit_group_as(
        &self,
        store: &dyn Store,
        group: &[Pending],
        stream: bool,
    ) -> Option<Vec<Result<Written, AppError>>> {
        let writer = self.writer();
        let mut guard = Some(self.write_lock());
        if let Some(state) = guard.as_mut()
            && state.dirty
        {
            match reload(store, &self.name) {
                Ok(loaded) => **state = loaded,
                Err(e) => return Some(group.iter().map(|_| Err(e.clone())).collect()),
            }
        }
        let now = now_ms();
        // A streamed write was refused after some of its rows were appended.
        let mut restart = false;
        // Per write: the changes counted, or its refusal.
        let mut outcomes: Vec<Option<Result<Vec<usize>, AppError>>> = vec![None; group.len()];
        // The revision the group starts from, once other nodes' operations are applied.
        let mut base = 0;
        // Memory holds exactly the revision `state.revision` of the store.
        let mut consistent = true;
        // The revision memory holds (the writer's turn keeps it): the store may read what
        // other nodes wrote after it together with its lock.
        let known = guard.as_ref().map_or(0, |state| state.revision);
        let started = std::time::Instant::now();
        let committed = store.write_known(&self.name, known, &mut |tx| {
            // Called again (D144: another node overtook the first call, of which nothing was
            // written): memory holds what the store committed; the group is tried again.
            if guard.is_none() {
                if !consistent {
                    return Err(StoreError::Aborted(
                        "memory may still hold the group's first try".to_owned(),
                    ));
                }
                guard = Some(self.write_lock());
            }
            let Some(state) = guard.as_mut() else {
                unreachable!("the write lock was taken above")
            };
            base = tx.revision();
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
                apply_entries(state, &self.name, &entries)
                    .map_err(|e| StoreError::Corrupt(e.message))?;
                if state.revision != base {
                    return Err(StoreError::Corrupt(format!(
                        "organization `{}`: the log ends at {}, not at the revision {base} it was locked at",
                        self.name, state.revision
                    )));
                }
                consistent = true;
            }
            // The group's records are stamped with the time its log rows get (D165).
            state.org.set_clock(now);
            let retention = state.org.audit_settings().retention_days;
            if stream {
                // About an entry an operation (a create's or an update's).
                tx.expect_audit_entries(group.iter().map(|p| p.ops.len()).sum());
                let Some(state) = guard.take() else {
                    unreachable!("the write lock is held until here")
                };
                let streamed = stream_group(tx, state, group, now, retention)?;
                if !streamed.rolled_back {
                    consistent = false;
                }
                for (i, outcome) in streamed.outcomes.into_iter().enumerate() {
                    outcomes[i] = Some(outcome);
                }
                restart = streamed.restart;
                if restart || !outcomes.iter().flatten().any(Result::is_ok) {
                    return Err(StoreError::Aborted(String::new()));
                }
                return Ok(());
            }
            let mut rows = Vec::with_capacity(group.len());
            // The whole group is undone in memory before the commit (and applied again after).
            let opened = state.org.checkpoint_for_try();
            for (i, pending) in group.iter().enumerate() {
                match try_batch(&mut state.org, pending) {
                    Ok((counts, audits)) => {
                        outcomes[i] = Some(Ok(counts));
                        rows.push((i, audits));
                    }
                    Err(e) => outcomes[i] = Some(Err(e)),
                }
            }
            if state.org.rollback(opened).is_err() {
                // Memory may hold the group: rebuilt from the store after the commit.
                consistent = false;
            }
            // Readers go on while the transaction is written and committed.
            guard = None;
            if rows.is_empty() {
                return Err(StoreError::Aborted(String::new()));
            }
            tx.expect_audit_entries(audit_entries(rows.iter().map(|(_, a)| a)));
            for (i, audits) in &rows {
                // The log rows' text, made by the request (copied: a store may call this
                // closure again).
                for (text, entries) in group[*i].stored.iter().zip(audits) {
                    append_rows(tx, text, entries, now, retention)?;
                }
            }
            Ok(())
        });
        if restart {
            // Nothing was committed: the serial way, from the start, on memory as committed.
            if !consistent {
                let mut state = guard.take().unwrap_or_else(|| self.write_lock());
                reload_into(&mut state, store, &self.name);
            }
            drop(guard);
            drop(writer);
            return None;
        }
        let mut state = match guard.take() {
            Some(state) => state,
            None => self.write_lock(),
        };
        let failed = match committed {
            Ok(revision) => {
                let accepted: Vec<&Pending> = group
                    .iter()
                    .zip(&outcomes)
                    .filter(|(_, o)| matches!(o, Some(Ok(_))))
                    .map(|(p, _)| p)
                    .collect();
                let operations: usize = accepted.iter().map(|p| p.ops.len()).sum();
                COMMITS.count(accepted.len(), operations, started.elapsed());
                let ready = consistent && base + operations as Revision == revision;
                follow_commit(
                    &mut state,
                    store,
                    &self.name,
                    ready,
                    (revision, now),
                    accepted,
                );
                None
            }
            Err(e) => {
                if !consistent {
                    // Memory may hold what the store does not: rebuilt from the store.
                    reload_into(&mut state, store, &self.name);
                }
                Some(AppError::from(e))
            }
        };
        let revision = state.revision;
        drop(state);
        drop(writer);
        self.applied.send_replace(revision);
        Some(answers(group, outcomes, base, failed.as_ref()))
    }
}

/// What a streamed group's try found ([`stream_group`]).
struct Streamed {
    /// Per write: the changes counted, or its refusal.
    outcomes: Vec<Result<Vec<usize>, AppError>>,
    /// Memory was rolled back to the committed state.
    rolled_back: bool,
    /// A write was refused after some of its rows were appended: the transaction must not
    /// commit.
    restart: bool,
}

/// How many audit entries these writes' operations have.
fn audit_entries<'a>(
    writes: impl Iterator<Item = &'a Vec<Vec<strata_store::AuditRecord>>>,
) -> usize {
    writes.flatten().map(Vec::len).sum()
}

/// One operation's rows: its log row (the request's text, copied: a store may call the
/// transaction's closure again) and its audit entries.
fn append_rows(
    tx: &mut dyn strata_store::Transaction,
    text: &StoredOperation,
    entries: &[strata_store::AuditRecord],
    now: i64,
    retention: i64,
) -> Result<(), StoreError> {
    tx.append_stored(text.clone(), now)?;
    for e in entries {
        tx.append_audit(e, now, retention)?;
    }
    Ok(())
}

/// Tries `group` on a thread of its own, holding `state` (the write lock, let go once the
/// group is rolled back), and appends each applied operation's rows to `tx` on this thread
/// as they come (D143). Appending stops at a write refused after some of its rows were
/// appended (`restart`); the try always runs to its end and rolls back.
fn stream_group(
    tx: &mut dyn strata_store::Transaction,
    mut state: RwLockWriteGuard<'_, Loaded>,
    group: &[Pending],
    now: i64,
    retention: i64,
) -> Result<Streamed, StoreError> {
    /// Operations applied (the write, and each operation's index and audit entries), handed
    /// over in batches so that the two threads seldom wait for each other; a write refused
    /// after some of its operations were handed over.
    enum Tried {
        Applied(usize, Vec<(usize, Vec<strata_store::AuditRecord>)>),
        /// The same, already hashed by the transaction's chainer (D158).
        Chained(strata_store::ChainedRows),
        Refused,
    }
    const HANDED: usize = 64;
    // The trier also hashes the rows it hands over where the store gives a chainer (SQLite,
    // D158): the appending thread, which bounds a bulk load there, then only inserts them.
    let mut chainer = tx.chainer();
    std::thread::scope(|scope| {
        let (send, tried) = std::sync::mpsc::channel::<Tried>();
        let trier = scope.spawn(move || {
            let opened = state.org.checkpoint_for_try();
            let mut outcomes = Vec::with_capacity(group.len());
            // Hashed as they are handed over: a write refused with none of its operations
            // handed over leaves the chains as they were.
            let mut hand = |i: usize, ops: Vec<(usize, Vec<strata_store::AuditRecord>)>| {
                let tried = match chainer.as_mut() {
                    Some(chainer) => Tried::Chained(
                        chainer.chain(
                            ops.into_iter()
                                .map(|(op, entries)| (group[i].stored[op].clone(), entries)),
                            now,
                            retention,
                        ),
                    ),
                    None => Tried::Applied(i, ops),
                };
                // The receiver lives until this thread ends: a send cannot fail.
                let _ = send.send(tried);
            };
            for (i, pending) in group.iter().enumerate() {
                let (mut batch, mut handed) = (Vec::with_capacity(HANDED), false);
                let outcome = try_batch_each(&mut state.org, pending, |op, entries| {
                    batch.push((op, entries));
                    if batch.len() == HANDED {
                        hand(i, std::mem::replace(&mut batch, Vec::with_capacity(HANDED)));
                        handed = true;
                    }
                });
                match (&outcome, handed) {
                    (Ok(_), _) if !batch.is_empty() => hand(i, batch),
                    // Refused with none of its rows handed over: as if never tried.
                    (Err(_), true) => {
                        let _ = send.send(Tried::Refused);
                    }
                    _ => {}
                }
                outcomes.push(outcome);
            }
            let rolled_back = state.org.rollback(opened).is_ok();
            // Readers go on while the rows are written and committed.
            drop(state);
            (outcomes, rolled_back)
        });
        let (mut restart, mut failed) = (false, None);
        for tried in tried {
            if restart || failed.is_some() {
                continue; // the try goes on to its end; nothing more is appended
            }
            match tried {
                Tried::Applied(i, ops) => {
                    for (op, entries) in ops {
                        let text = &group[i].stored[op];
                        if let Err(e) = append_rows(tx, text, &entries, now, retention) {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                Tried::Chained(rows) => {
                    if let Err(e) = tx.append_chained(rows) {
                        failed = Some(e);
                    }
                }
                Tried::Refused => restart = true,
            }
        }
        let (outcomes, rolled_back) = trier
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(Streamed {
            outcomes,
            rolled_back,
            restart,
        })
    })
}

/// Each write's answer: an accepted write's revision is the group's base and the operations
/// up to its own; a refused one its refusal; with `failed`, every accepted write the failure.
fn answers(
    group: &[Pending],
    outcomes: Vec<Option<Result<Vec<usize>, AppError>>>,
    base: Revision,
    failed: Option<&AppError>,
) -> Vec<Result<Written, AppError>> {
    let mut at = base;
    group
        .iter()
        .zip(outcomes)
        .map(|(pending, outcome)| match (outcome, failed) {
            (Some(Ok(changes)), None) => {
                at += pending.ops.len() as Revision;
                Ok(Written {
                    revision: at,
                    changes,
                })
            }
            (Some(Ok(_)), Some(e)) => Err(e.clone()),
            (Some(Err(refused)), _) => Err(refused),
            (None, Some(e)) => Err(e.clone()),
            (None, None) => Err(AppError::internal(
                "the write was not tried: retry".to_owned(),
            )),
        })
        .collect()
}

/// How a group tried ahead ended.
enum Landed {
    /// Committed as it was tried, and applied.
    Committed,
    /// Its commit failed (each accepted write was answered with the error): a group tried on
    /// top of it is tried again.
    Failed,
    /// The store had moved past the revision it was tried at; nothing was written.
    Moved(Vec<Pending>),
}

/// The abort of a group tried ahead whose store moved meanwhile (another node wrote).
const MOVED: &str = "the organization moved on in the store since the group was tried";

/// A group tried ahead (D130), whose commit is in flight: its writes, their outcomes, the
/// revision it was tried at and the operations it adds.
struct Flight {
    group: Vec<Pending>,
    outcomes: Vec<Option<Result<Vec<usize>, AppError>>>,
    base: Revision,
    operations: Revision,
}

impl Flight {
    /// The accepted writes, in order.
    fn accepted(&self) -> impl Iterator<Item = &Pending> {
        self.group
            .iter()
            .zip(&self.outcomes)
            .filter(|(_, o)| matches!(o, Some(Ok(_))))
            .map(|(p, _)| p)
    }

    /// Answers every write (with `failed`, every accepted one gets the failure).
    fn answer(self, failed: Option<&AppError>) {
        let results = answers(&self.group, self.outcomes, self.base, failed);
        for (pending, result) in self.group.into_iter().zip(results) {
            // The caller may have gone (a closed connection): the write stands.
            let _ = pending.reply.send(result);
        }
    }
}

/// What the commit of a group tried ahead writes: per accepted write (its place in the
/// group), its operations' stored texts and audit entries, after the revision `base`.
struct Job {
    base: Revision,
    now: i64,
    retention: i64,
    rows: Vec<(
        usize,
        Vec<StoredOperation>,
        Vec<Vec<strata_store::AuditRecord>>,
    )>,
}

impl Job {
    /// Gives the stored texts back to the group's writes (to commit them the usual way).
    fn restore(&mut self, group: &mut [Pending]) {
        for (i, stored, _) in self.rows.drain(..) {
            if let Some(pending) = group.get_mut(i) {
                pending.stored = stored;
            }
        }
    }

    /// Commits the rows in one transaction, if the store is still at `base` (else
    /// [`MOVED`], nothing written).
    fn commit(&self, store: &dyn Store, org: &str) -> Result<Revision, StoreError> {
        let started = std::time::Instant::now();
        let committed = store.write_known(org, self.base, &mut |tx| {
            if tx.revision() != self.base {
                return Err(StoreError::Aborted(MOVED.to_owned()));
            }
            if self.rows.is_empty() {
                // Every write refused, against the store's own revision: nothing to write.
                return Err(StoreError::Aborted(String::new()));
            }
            tx.expect_audit_entries(audit_entries(self.rows.iter().map(|(_, _, a)| a)));
            for (_, stored, audits) in &self.rows {
                for (text, entries) in stored.iter().zip(audits) {
                    append_rows(tx, text, entries, self.now, self.retention)?;
                }
            }
            Ok(())
        });
        if committed.is_ok() {
            let operations = self.rows.iter().map(|(_, stored, _)| stored.len()).sum();
            COMMITS.count(self.rows.len(), operations, started.elapsed());
        }
        committed
    }
}

/// What the process's group commits did since it started (every organisation): for the
/// metrics (`strata_group_commits_total` …) and the write benchmark's table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Store transactions committed.
    pub commits: u64,
    /// Writes (requests) they held.
    pub writes: u64,
    /// Operations they held.
    pub operations: u64,
    /// Time spent in the store's transactions, their fsync included (µs).
    pub store_micros: u64,
}

struct CommitCounters {
    commits: AtomicU64,
    writes: AtomicU64,
    operations: AtomicU64,
    store_micros: AtomicU64,
}

impl CommitCounters {
    fn count(&self, writes: usize, operations: usize, took: std::time::Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes as u64, Ordering::Relaxed);
        self.operations
            .fetch_add(operations as u64, Ordering::Relaxed);
        self.store_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

static COMMITS: CommitCounters = CommitCounters {
    commits: AtomicU64::new(0),
    writes: AtomicU64::new(0),
    operations: AtomicU64::new(0),
    store_micros: AtomicU64::new(0),
};

/// The process's group-commit counters so far.
pub fn commit_stats() -> CommitStats {
    CommitStats {
        commits: COMMITS.commits.load(Ordering::Relaxed),
        writes: COMMITS.writes.load(Ordering::Relaxed),
        operations: COMMITS.operations.load(Ordering::Relaxed),
        store_micros: COMMITS.store_micros.load(Ordering::Relaxed),
    }
}

/// The next group of queued writes: at least one (none when the queue is empty), then as
/// many as fit in the group limit ([`set_group_operations`]).
fn take_group(queue: &mut Queue) -> Vec<Pending> {
    let limit = GROUP_OPERATIONS.load(Ordering::Relaxed);
    let mut group = Vec::new();
    let mut operations = 0;
    while let Some(next) = queue.pending.front() {
        if !group.is_empty() && operations + next.ops.len().max(1) > limit {
            break;
        }
        operations += next.ops.len().max(1);
        if let Some(taken) = queue.pending.pop_front() {
            queue.operations -= taken.ops.len();
            group.push(taken);
        }
    }
    group
}

/// A write waiting in an organisation's queue.
struct Pending {
    ops: Vec<Operation>,
    /// Each operation as its log row stores it.
    stored: Vec<StoredOperation>,
    actor: Actor,
    reply: tokio::sync::oneshot::Sender<Result<Written, AppError>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("operations", &self.ops.len())
            .finish_non_exhaustive()
    }
}

/// An organisation's queued writes.
#[derive(Debug, Default)]
struct Queue {
    pending: std::collections::VecDeque<Pending>,
    /// The operations of the pending writes.
    operations: usize,
    /// A committer is draining the queue.
    running: bool,
    /// The committer waits for a write or for its commit in flight ([`OrgHandle::wake`]).
    waiting: bool,
}

/// At most this many operations wait in an organisation's queue; a write that would add more
/// is refused with `server_busy` (a write alone is always taken, whatever its size, when the
/// queue is empty). Bounds the memory a flood of writes can take.
pub const MAX_QUEUED_OPERATIONS: usize = 100_000;

/// The default of [`set_group_operations`].
pub const DEFAULT_GROUP_OPERATIONS: usize = 4096;

/// At most this many operations in one group (a bigger write is a group of its own).
static GROUP_OPERATIONS: AtomicUsize = AtomicUsize::new(DEFAULT_GROUP_OPERATIONS);

/// Whether committers try the next group while a commit is in flight (D130, D131).
static PIPELINED: AtomicBool = AtomicBool::new(false);

/// The least number of operations a group holds to be streamed unless set
/// ([`set_stream_operations`]).
pub const DEFAULT_STREAM_OPERATIONS: usize = 256;

/// Groups of at least this many operations are streamed ([`OrgHandle::commit_group`], D143).
static STREAM_OPERATIONS: AtomicUsize = AtomicUsize::new(DEFAULT_STREAM_OPERATIONS);

/// Sets the least number of operations a group must hold to be streamed, for every
/// organisation of the process (`strata serve --group-commit-stream`; D143): 1 streams every
/// group, `usize::MAX` none.
pub fn set_stream_operations(least: usize) {
    STREAM_OPERATIONS.store(least.max(1), Ordering::Relaxed);
}

/// Turns pipelined group commit (D130) on or off for every organisation of the process
/// (`strata serve --group-commit-pipeline`; off by default, D131).
pub fn set_pipelined(on: bool) {
    PIPELINED.store(on, Ordering::Relaxed);
}

/// Sets how many operations one group commit may hold at most, for every organisation of the
/// process (`strata serve --group-commit-max`); 1 commits each write on its own, as before
/// group commit (for comparison). A write bigger than the limit is a group of its own.
pub fn set_group_operations(limit: usize) {
    GROUP_OPERATIONS.store(limit.max(1), Ordering::Relaxed);
}

/// The catch-ups reads asked for ([`OrgHandle::ask_catch_up`]).
#[derive(Debug, Default)]
struct CatchUps {
    running: bool,
    again: bool,
}

/// Drains an organisation's queue, group by group, on a blocking thread. Dropped without
/// finishing (a panic, a runtime shutting down), it lets the next write start another and
/// answers what it held with an error — never a write left waiting for ever.
struct Committer {
    handle: Arc<OrgHandle>,
    store: Arc<dyn Store>,
    done: bool,
}

/// How long a committer keeps the writer's turn while its commits follow each other without
/// a pause: then it lands the one in flight and lets whoever waits for the turn (a catch-up,
/// a dry run, a checkpoint's encoding) have it.
const TURN_HELD_AT_MOST: std::time::Duration = std::time::Duration::from_millis(20);

/// After a group tried ahead found that another node had written, the committer commits the
/// usual way (catching up under the store's lock) for this long before it tries ahead again.
const SERIAL_AFTER_MOVED: std::time::Duration = std::time::Duration::from_millis(50);

/// A group in flight with more operations than this is landed before the next group is
/// tried (which then needs not apply it once more): for big writes, the extra apply costs more
/// than the overlap saves.
const TRY_ON_TOP_AT_MOST: Revision = 256;

/// A commit running on a thread of its own: its group and where its result arrives.
struct InFlight {
    flight: Flight,
    result: std::sync::mpsc::Receiver<(Job, Result<Revision, StoreError>)>,
    /// Set when the commit has ended.
    done: Arc<AtomicBool>,
}

/// Wakes the committer when dropped: the commit in flight has ended.
struct Ended(Arc<OrgHandle>, Arc<AtomicBool>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.landed(&self.1);
    }
}

impl Committer {
    /// Drains the queue (D130): each group is tried ahead under the writer's turn — against
    /// the committed state and the group whose commit is in flight — and its commit started
    /// on a blocking thread; the committer meanwhile takes and tries the next group, then
    /// waits for the commit before it, lands it (applies and answers), and starts the next.
    /// So one group's database commit runs while the next group is tried, and the revisions
    /// still follow the order the groups were tried in. When no runtime can run the commit,
    /// or another node wrote recently, each group is committed the usual way
    /// ([`OrgHandle::commit_group`]).
    fn run(mut self) {
        let handle = Arc::clone(&self.handle);
        let store = Arc::clone(&self.store);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let mut flying: Option<InFlight> = None;
        // The writer's turn, held while a commit is in flight, and since when.
        let mut turn: Option<std::sync::MutexGuard<'_, ()>> = None;
        let mut held = std::time::Instant::now();
        let mut serial_until: Option<std::time::Instant> = None;
        loop {
            if flying.is_some()
                && held.elapsed() > TURN_HELD_AT_MOST
                && let Some(moved) = flying.take().and_then(|f| self.wait(f))
            {
                serial_until = Some(std::time::Instant::now() + SERIAL_AFTER_MOVED);
                turn = None;
                self.serial(moved);
            }
            if flying.is_none() && turn.is_some() {
                turn = None;
                std::thread::yield_now();
            }
            let next = match &flying {
                Some(f) => handle.next_or_landed(&f.done),
                None => handle.next_group(false),
            };
            let Some(group) = next else {
                match flying.take() {
                    None => break,
                    Some(f) => {
                        if let Some(moved) = self.wait(f) {
                            serial_until = Some(std::time::Instant::now() + SERIAL_AFTER_MOVED);
                            turn = None;
                            self.serial(moved);
                        }
                        continue;
                    }
                }
            };
            // Off unless asked for (D131); `--group-commit-max 1` keeps the design before group
            // commit, for comparison.
            let grouped =
                PIPELINED.load(Ordering::Relaxed) && GROUP_OPERATIONS.load(Ordering::Relaxed) > 1;
            let ahead = match (&runtime, serial_until) {
                (Some(rt), until)
                    if grouped && until.is_none_or(|t| std::time::Instant::now() >= t) =>
                {
                    rt
                }
                _ => {
                    let moved = flying.take().and_then(|f| self.wait(f));
                    turn = None;
                    if let Some(moved) = moved {
                        self.serial(moved);
                    }
                    self.serial(group);
                    continue;
                }
            };
            // A big group in flight: applying it once more costs more than waiting for it.
            if flying
                .as_ref()
                .is_some_and(|f| f.flight.operations > TRY_ON_TOP_AT_MOST)
                && let Some(moved) = flying.take().and_then(|f| self.wait(f))
            {
                serial_until = Some(std::time::Instant::now() + SERIAL_AFTER_MOVED);
                turn = None;
                self.serial(moved);
            }
            if turn.is_none() {
                turn = Some(handle.writer());
                held = std::time::Instant::now();
            }
            let tried = handle.try_ahead(group, flying.as_ref().map(|f| &f.flight));
            // The group before this one lands first: this one was tried on top of it.
            let landed = flying.take().map(|f| self.wait_landed(f));
            let (flight, job) = match (tried, landed) {
                (Ok(tried), None | Some(Landed::Committed)) => tried,
                (tried, landed) => {
                    let group = match tried {
                        Ok((flight, mut job)) => {
                            let mut group = flight.group;
                            job.restore(&mut group);
                            group
                        }
                        Err(group) => group,
                    };
                    turn = None;
                    if let Some(Landed::Moved(moved)) = landed {
                        serial_until = Some(std::time::Instant::now() + SERIAL_AFTER_MOVED);
                        self.serial(moved);
                    }
                    // Not tried, or tried on top of a group that did not commit as tried.
                    self.serial(group);
                    continue;
                }
            };
            let (sender, result) = std::sync::mpsc::sync_channel(1);
            let done = Arc::new(AtomicBool::new(false));
            let (store, org, ended) = (Arc::clone(&store), Arc::clone(&handle), Arc::clone(&done));
            ahead.spawn_blocking(move || {
                // Tells the committer when the commit ends, even by a panic.
                let _ended = Ended(Arc::clone(&org), ended);
                let result = job.commit(store.as_ref(), &org.name);
                let _ = sender.send((job, result));
            });
            flying = Some(InFlight {
                flight,
                result,
                done,
            });
        }
        drop(turn);
        self.done = true;
    }

    /// Waits for a commit in flight and lands it; the group back when it is to be committed
    /// the usual way.
    fn wait(&self, f: InFlight) -> Option<Vec<Pending>> {
        match self.wait_landed(f) {
            Landed::Moved(group) => Some(group),
            Landed::Committed | Landed::Failed => None,
        }
    }

    fn wait_landed(&self, f: InFlight) -> Landed {
        match f.result.recv() {
            Ok((job, result)) => self.handle.land(self.store.as_ref(), f.flight, job, result),
            Err(_) => {
                // The commit's thread ended without a result (it panicked): whether it
                // committed is unknown, so memory is rebuilt from the store, and the writes
                // are told to retry.
                let mut state = self.handle.write_lock();
                reload_into(&mut state, self.store.as_ref(), &self.handle.name);
                let revision = state.revision;
                drop(state);
                self.handle.applied.send_replace(revision);
                f.flight.answer(Some(&AppError::internal(
                    "the write's commit ended without an answer: retry".to_owned(),
                )));
                Landed::Failed
            }
        }
    }

    /// Commits a group the usual way (the writer's turn not held by the caller) and answers it.
    fn serial(&self, group: Vec<Pending>) {
        let results = self.handle.commit_group(self.store.as_ref(), &group);
        for (pending, result) in group.into_iter().zip(results) {
            // The caller may have gone (a closed connection): the write stands.
            let _ = pending.reply.send(result);
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if !self.done {
            let mut queue = self.handle.queue();
            queue.running = false;
            queue.pending.clear();
            queue.operations = 0;
        }
    }
}

/// One write of a group: authorized and applied as `pending.actor` against the organisation
/// as the writes before it left it, its audit entries derived; all or nothing (a refusal
/// rolls back its own operations only). Returns the changes counted per operation and the
/// audit entries per operation.
fn try_batch(
    org: &mut Organization,
    pending: &Pending,
) -> Result<(Vec<usize>, Vec<Vec<strata_store::AuditRecord>>), AppError> {
    let mut audits = Vec::with_capacity(pending.ops.len());
    let counts = try_batch_each(org, pending, |_, entries| audits.push(entries))?;
    Ok((counts, audits))
}

/// [`try_batch`], each operation's audit entries handed to `emit` with the operation's index
/// as soon as it is applied (before the batch's later operations are tried, which may still
/// refuse the batch).
fn try_batch_each(
    org: &mut Organization,
    pending: &Pending,
    mut emit: impl FnMut(usize, Vec<strata_store::AuditRecord>),
) -> Result<Vec<usize>, AppError> {
    let (ops, actor) = (&pending.ops, &pending.actor);
    let (user, impersonator) = (actor.user(), actor.impersonator());
    let mut befores = Vec::with_capacity(ops.len());
    let batch =
        strata_ops::apply_batch_open(org, ops, impersonator, |org, i, op, step| match step {
            strata_ops::BatchStep::Before => {
                strata_ops::authorize_as(org, user, op)?;
                befores.push(crate::audit::before(org, op));
                Ok(())
            }
            strata_ops::BatchStep::After(changes) => {
                let before = befores.get_mut(i).and_then(Option::take);
                emit(i, crate::audit::entries_by(org, op, before, changes, actor));
                Ok(())
            }
        });
    match batch {
        Ok((checkpoint, changes)) => {
            // Kept inside the group's checkpoint.
            org.commit(checkpoint)
                .map_err(|e| AppError::from(strata_ops::OpError::from(e)))?;
            Ok(changes.iter().map(Vec::len).collect())
        }
        Err((i, e)) => {
            let mut err = AppError::from(e);
            if ops.len() > 1 {
                err = err.at(format!("/{i}"));
            }
            Err(err)
        }
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
    let times: Vec<i64> = entries.iter().map(|e| e.at_ms).collect();
    match strata_ops::apply_all_at(&mut state.org, &ops, &times) {
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

/// Rebuilds memory from the store in place, or marks it dirty when the store cannot be read
/// (reads are then refused and the follower rebuilds it).
/// Memory after a commit that reached `revision`: the accepted writes applied again when
/// memory is where the commit started and they lead to `revision` (`ready`), else — memory
/// could not follow the commit — rebuilt from the store, which holds it.
fn follow_commit<'a>(
    state: &mut Loaded,
    store: &dyn Store,
    org: &str,
    ready: bool,
    (revision, now): (Revision, i64),
    accepted: impl IntoIterator<Item = &'a Pending>,
) {
    // Stamped at the time the rows were written with, as a replay will (D165).
    state.org.set_clock(now);
    let redone = ready
        && accepted
            .into_iter()
            .all(|p| strata_ops::apply_all(&mut state.org, &p.ops).is_ok());
    if redone {
        state.revision = revision;
    } else {
        reload_into(state, store, org);
    }
}

fn reload_into(state: &mut Loaded, store: &dyn Store, org: &str) {
    match reload(store, org) {
        Ok(loaded) => *state = loaded,
        Err(_) => state.dirty = true,
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
        read_seconds = format!("{:.2}", from.times.read.as_secs_f64()),
        decode_seconds = format!("{:.2}", from.times.decode.as_secs_f64()),
        build_seconds = format!("{:.2}", from.times.build.as_secs_f64()),
        tail_seconds = format!("{:.2}", from.times.tail.as_secs_f64()),
        records_per_second = format!("{:.0}", records as f64 / secs.max(1e-9)),
        "organization loaded (from its newest valid checkpoint and the log after it, or the whole log), record index included"
    );
    let handle = OrgHandle::new(name, loaded);
    // Periodic checkpoints count from the one used (a newer one that failed its checks is
    // replaced by the next).
    handle.set_checkpointed(from.checkpoint.unwrap_or(0));
    Ok(Arc::new(handle))
}
