//! The server's state: the store, and each organisation in memory with its revision.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use strata_engine::Organization;
use strata_ops::Operation;
use strata_store::{Revision, Store, load_organization};

use crate::error::ApiError;

/// An organisation in memory.
#[derive(Debug)]
pub struct Loaded {
    /// The organisation.
    pub org: Organization,
    /// The revision of the last operation applied.
    pub revision: Revision,
}

/// One organisation served: readers share it; one writer at a time changes it.
#[derive(Debug)]
pub struct OrgHandle {
    /// The organisation's name.
    pub name: String,
    state: RwLock<Loaded>,
    writer: tokio::sync::Mutex<()>,
    applied: tokio::sync::watch::Sender<Revision>,
}

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
            state: RwLock::new(loaded),
            writer: tokio::sync::Mutex::new(()),
            applied,
        }
    }

    /// Reads the organisation.
    pub fn read(&self) -> RwLockReadGuard<'_, Loaded> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits (at most `timeout`) until the organisation has applied `min_revision`.
    pub async fn wait_for(
        &self,
        min_revision: Revision,
        timeout: std::time::Duration,
    ) -> Result<(), ApiError> {
        let mut rx = self.applied.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|r| *r >= min_revision)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::new(
                "revision_not_reached",
                format!(
                    "organization `{}` has not reached revision {min_revision} yet",
                    self.name
                ),
            )),
        }
    }

    /// Applies operations and persists them with their audit entries in one transaction.
    /// All or nothing: a refused operation, or a failed commit, leaves memory and store as they
    /// were.
    pub async fn write(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        ops: Vec<Operation>,
        user: Option<String>,
        impersonator: Option<String>,
    ) -> Result<Written, ApiError> {
        let _writer = self.writer.lock().await;
        let handle = Arc::clone(self);
        let written = tokio::task::spawn_blocking(move || {
            handle.write_blocking(
                store.as_ref(),
                &ops,
                user.as_deref(),
                impersonator.as_deref(),
            )
        })
        .await
        .map_err(|e| ApiError::internal(format!("write task failed: {e}")))??;
        self.applied.send_replace(written.revision);
        Ok(written)
    }

    fn write_blocking(
        &self,
        store: &dyn Store,
        ops: &[Operation],
        user: Option<&str>,
        impersonator: Option<&str>,
    ) -> Result<Written, ApiError> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = now_ms();
        let mut audits = Vec::with_capacity(ops.len());
        let mut counts = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let authorized = match user.and_then(|u| state.org.user_id(u)) {
                Some(uid) => strata_ops::authorize_setup(&state.org, uid, op),
                None => Ok(()),
            };
            let before = crate::audit::before(&state.org, op);
            let applied = authorized.and_then(|()| match impersonator {
                Some(imp) => strata_ops::apply_on_behalf(&mut state.org, op, imp),
                None => strata_ops::apply(&mut state.org, op),
            });
            match applied {
                Ok(changes) => {
                    counts.push(changes.len());
                    audits.push(crate::audit::entries(
                        &state.org,
                        op,
                        before,
                        &changes,
                        op.actor().or(user),
                        impersonator,
                    ));
                }
                Err(e) => {
                    if i > 0 {
                        // Earlier operations of this batch changed memory: rebuild it from the store.
                        *state = reload(store, &self.name)?;
                    }
                    let mut err = ApiError::from(e);
                    if ops.len() > 1 {
                        err = err.at(format!("/{i}"));
                    }
                    return Err(err);
                }
            }
        }
        let retention = state.org.audit_settings().retention_days;
        let committed = store.write(&self.name, &mut |tx| {
            for (op, entries) in ops.iter().zip(&audits) {
                tx.append_operation(op, now)?;
                for e in entries {
                    tx.append_audit(e, now, retention)?;
                }
            }
            Ok(())
        });
        match committed {
            Ok(revision) => {
                state.revision = revision;
                Ok(Written {
                    revision,
                    changes: counts,
                })
            }
            Err(e) => {
                *state = reload(store, &self.name)?;
                Err(e.into())
            }
        }
    }
}

/// Runs store work in a blocking task: a store call may wait on the disk (SQLite) or the
/// network (PostgreSQL), which must not hold up the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &Arc<dyn Store>,
    work: impl FnOnce(&dyn Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || work(store.as_ref()))
        .await
        .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
}

fn reload(store: &dyn Store, org: &str) -> Result<Loaded, ApiError> {
    let (org, revision) = load_organization(store, org)?;
    Ok(Loaded { org, revision })
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
}

impl Registry {
    /// Loads every organisation of the store.
    pub fn load(store: &dyn Store) -> Result<Registry, ApiError> {
        let mut orgs = HashMap::new();
        for (name, _) in store.organizations()? {
            let start = std::time::Instant::now();
            let loaded = reload(store, &name)?;
            let records = loaded.org.record_ids().count();
            let secs = start.elapsed().as_secs_f64();
            tracing::info!(
                org = %name,
                revision = loaded.revision,
                records,
                seconds = format!("{secs:.2}"),
                records_per_second = format!("{:.0}", records as f64 / secs.max(1e-9)),
                "organization rebuilt from its log, record index included"
            );
            orgs.insert(name.clone(), Arc::new(OrgHandle::new(&name, loaded)));
        }
        Ok(Registry {
            orgs: RwLock::new(orgs),
        })
    }

    /// The organisation of this name.
    pub fn get(&self, name: &str) -> Result<Arc<OrgHandle>, ApiError> {
        self.orgs
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    "unknown_organization",
                    format!("unknown organization `{name}`"),
                )
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
            .map(|h| (h.name.clone(), h.read().revision))
            .collect();
        list.sort();
        list
    }

    /// Creates an empty organisation in the store and in memory.
    pub fn create(&self, store: &dyn Store, name: &str) -> Result<Arc<OrgHandle>, ApiError> {
        store.create_organization(name, now_ms())?;
        let handle = Arc::new(OrgHandle::new(
            name,
            Loaded {
                org: Organization::new(),
                revision: 0,
            },
        ));
        self.orgs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&handle));
        Ok(handle)
    }

    /// Removes an organisation from the store and from memory.
    pub fn delete(&self, store: &dyn Store, name: &str) -> Result<(), ApiError> {
        store.delete_organization(name)?;
        self.orgs
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
        Ok(())
    }
}
