//! The Strata application layer: the organisations a process serves (the registry), the one
//! write path (resolve the actor → authorize → apply → audit → append in one transaction →
//! publish the revision), catch-up and following, audit derivation, and bootstrap (an
//! organisation created, bulk loads). The server and the `strata` command call it; neither
//! writes operations or audit entries of its own.
//!
//! Architecture invariant: no HTTP. This crate knows the engine, the operations and the store,
//! and runs on tokio (the organisation lock, the revision watch); `.ci/run` checks that it
//! does not depend on axum or hyper.

mod actor;
pub mod audit;
pub mod bootstrap;
pub mod checkpoint;
mod dryrun;
mod error;
mod registry;
pub mod review;
pub mod xlsx;

use std::sync::Arc;

pub use actor::{Actor, ROOT_ACTOR, SYSTEM_ACTOR, run_as};
pub use bootstrap::Loader;
pub use dryrun::{DryRun, MaySee, describe_change, set_dry_run_slice};
pub use error::AppError;
pub use registry::{
    CommitStats, DEFAULT_GROUP_OPERATIONS, DEFAULT_STREAM_OPERATIONS, Loaded, LongRead,
    MAX_QUEUED_OPERATIONS, OrgHandle, Registry, Written, commit_stats, now_ms,
    set_group_operations, set_pipelined, set_stream_operations,
};

/// Called with the organisation, the operations applied and the operations in its log.
pub type LoadProgressFn = dyn Fn(&str, usize, usize) + Send + Sync;

/// A start-up load's progress callback.
#[derive(Clone)]
pub struct LoadProgress(pub Arc<LoadProgressFn>);

impl std::fmt::Debug for LoadProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoadProgress")
    }
}
