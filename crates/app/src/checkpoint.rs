//! Checkpoints of organisations: taking one (the state in memory encoded by
//! `strata-checkpoint` and stored at its revision, in a transaction of its own), and loading an
//! organisation from the newest checkpoint that verifies and decodes plus the log after it.
//!
//! Invariants: the log stays the source of truth (a checkpoint is only ever a shortcut to a
//! revision the log holds, and the state it gives equals the replay of the log to that
//! revision); a checkpoint that fails its checks, or does not decode, is never used — the next
//! older one is tried, then the whole log; the tail after a checkpoint is read through the
//! log's verification, chained from the log row the checkpoint names.

use std::time::{Duration, Instant};

use strata_engine::Organization;
use strata_store::{Revision, Store, StoreError};

use crate::error::AppError;
use crate::registry::OrgHandle;

/// Take a checkpoint once an organisation has this many operations in its log after its
/// newest checkpoint (the default of `strata serve --checkpoint-every`).
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 100_000;

/// Where a load came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadedFrom {
    /// The checkpoint's revision, when one was used.
    pub checkpoint: Option<Revision>,
    /// Operations replayed after it (the whole log without one).
    pub replayed: usize,
    /// How long each part took (zero without a checkpoint).
    pub times: LoadTimes,
}

/// How long each part of a load from a checkpoint took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadTimes {
    /// Reading the checkpoint and verifying its MAC.
    pub read: Duration,
    /// Decoding its bytes into the state's parts.
    pub decode: Duration,
    /// Building the organisation from them (derived indexes, names, record index checked).
    pub build: Duration,
    /// Reading, verifying and applying the log after it.
    pub tail: Duration,
}

/// A checkpoint taken.
#[derive(Clone, Debug)]
pub struct Taken {
    /// Its revision.
    pub revision: Revision,
    /// Its size in bytes.
    pub bytes: usize,
    /// False when the store had one at this revision already (another node took it).
    pub written: bool,
    /// Time spent encoding (under the organisation's read lock).
    pub encode: Duration,
    /// Time spent storing.
    pub store: Duration,
}

/// Loads an organisation: the newest checkpoint that verifies and decodes, then the log after
/// it; the whole log when there is none. `progress` is told the revisions reached and the
/// revision to reach (the checkpoint's revision at once, then the tail as it applies).
pub fn load(
    store: &dyn Store,
    org: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Organization, Revision, LoadedFrom), AppError> {
    let listed = store.checkpoints(org)?;
    for info in listed.iter().filter(|c| strata_checkpoint::reads(c.format)) {
        match from_checkpoint(store, org, info.revision, progress) {
            Ok(Some(loaded)) => return Ok(loaded),
            Ok(None) => {}
            // The log itself is damaged, or the database fails: a full replay would fail too.
            Err(Fallback::Stop(e)) => return Err(e),
            Err(Fallback::Next(e)) => {
                tracing::warn!(org = %org, revision = info.revision, error = %e, "checkpoint not used: trying an older one or the whole log");
            }
        }
    }
    let (organization, revision) = strata_store::load_organization_with(store, org, progress)?;
    Ok((
        organization,
        revision,
        LoadedFrom {
            checkpoint: None,
            replayed: usize::try_from(revision).unwrap_or(usize::MAX),
            times: LoadTimes::default(),
        },
    ))
}

enum Fallback {
    /// Try an older checkpoint, or the whole log.
    Next(String),
    /// Give up: the same error would come from the whole log.
    Stop(AppError),
}

fn from_checkpoint(
    store: &dyn Store,
    org: &str,
    revision: Revision,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Option<(Organization, Revision, LoadedFrom)>, Fallback> {
    let start = Instant::now();
    let bytes = match store.read_checkpoint(org, revision) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(None),
        Err(e @ StoreError::CorruptCheckpoint { .. }) => return Err(Fallback::Next(e.to_string())),
        Err(e) => return Err(Fallback::Stop(e.into())),
    };
    let head = store.revision(org).map_err(|e| Fallback::Stop(e.into()))?;
    let total = usize::try_from(head).unwrap_or(usize::MAX);
    let base = usize::try_from(revision).unwrap_or(usize::MAX);
    progress(0, total);
    let read = start.elapsed();
    // The bytes are dropped once decoded, before the organisation is built from its parts.
    let start = Instant::now();
    let does_not_decode = |e: strata_checkpoint::DecodeError| {
        Fallback::Next(format!("does not decode: {e} ({})", e.code()))
    };
    let (state, index) = strata_checkpoint::decode_parts(&bytes).map_err(does_not_decode)?;
    drop(bytes);
    let decode = start.elapsed();
    let start = Instant::now();
    let (organization, index_problem) = Organization::from_state_repairing_index(state, index)
        .map_err(|e| does_not_decode(e.into()))?;
    let build = start.elapsed();
    if let Some(e) = index_problem {
        tracing::warn!(org = %org, revision, error = %e, "the checkpoint's record index does not fit its records: rebuilt from them (D137)");
    }
    progress(base, total);
    // The tail, verified from the log row the checkpoint was taken after.
    let start = Instant::now();
    let tail = match store.operations(org, revision) {
        Ok(t) => t,
        Err(e @ StoreError::CorruptLog { .. }) => return Err(Fallback::Stop(e.into())),
        Err(e) => return Err(Fallback::Stop(e.into())),
    };
    let replayed = tail.len();
    let (organization, at) =
        strata_store::replay_onto(org, organization, revision, tail, &mut |done, _| {
            progress(base + done, total);
        })
        .map_err(|e| Fallback::Next(format!("the log after it does not apply: {e}")))?;
    Ok(Some((
        organization,
        at,
        LoadedFrom {
            checkpoint: Some(revision),
            replayed,
            times: LoadTimes {
                read,
                decode,
                build,
                tail: start.elapsed(),
            },
        },
    )))
}

impl OrgHandle {
    /// Takes a checkpoint of the organisation as this node holds it: encoded under the read
    /// lock (writers wait, readers go on), stored after the lock is released. Blocking; not
    /// from async code. Refused while memory is dirty, and when nothing was written yet.
    pub fn take_checkpoint(&self, store: &dyn Store) -> Result<Taken, AppError> {
        let start = Instant::now();
        let (bytes, revision) = {
            // In the writer's turn, so that the committer waits for the encoding on its own
            // mutex, not queued on the lock where readers would line up behind it.
            let _writer = self.writer();
            let loaded = self.read_blocking();
            if loaded.dirty {
                return Err(AppError::new(
                    "database_unreachable",
                    format!(
                        "organization `{}` is being rebuilt from the store: no checkpoint now",
                        self.name
                    ),
                ));
            }
            if loaded.revision == 0 {
                return Err(AppError::new(
                    "invalid",
                    format!(
                        "organization `{}` has an empty log: nothing to checkpoint",
                        self.name
                    ),
                ));
            }
            (strata_checkpoint::encode(&loaded.org), loaded.revision)
        };
        let encode = start.elapsed();
        let start = Instant::now();
        let written = store.put_checkpoint(
            &self.name,
            revision,
            strata_checkpoint::FORMAT_VERSION,
            &bytes,
            crate::now_ms(),
        )?;
        self.set_checkpointed(revision);
        Ok(Taken {
            revision,
            bytes: bytes.len(),
            written,
            encode,
            store: start.elapsed(),
        })
    }
}

impl crate::Registry {
    /// Takes a checkpoint of every organisation whose log has grown by at least `every`
    /// operations since its newest checkpoint (0 = never). Returns what was done, per
    /// organisation; one organisation's failure does not stop the others.
    pub fn checkpoint_pass(
        &self,
        store: &dyn Store,
        every: u64,
    ) -> Vec<(String, Result<Taken, AppError>)> {
        let mut out = Vec::new();
        if every == 0 {
            return out;
        }
        for (name, applied) in self.list() {
            let Ok(handle) = self.get(&name) else {
                continue;
            };
            if applied.saturating_sub(handle.checkpointed()) < every {
                continue;
            }
            let result = handle.take_checkpoint(store);
            match &result {
                Ok(t) => tracing::info!(
                    org = %name,
                    revision = t.revision,
                    bytes = t.bytes,
                    encode_seconds = format!("{:.2}", t.encode.as_secs_f64()),
                    store_seconds = format!("{:.2}", t.store.as_secs_f64()),
                    "checkpoint taken"
                ),
                Err(e) => tracing::warn!(org = %name, error = %e, "checkpoint not taken"),
            }
            out.push((name, result));
        }
        out
    }
}
