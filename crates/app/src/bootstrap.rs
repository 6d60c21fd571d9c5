//! Bootstrap: an organisation created, and bulk loads (the demo build, the generator's load, a
//! scenario's setup), written with their audit entries like every other write.

use strata_engine::Organization;
use strata_ops::{BatchStep, Operation};
use strata_store::{AuditRecord, Revision, Store, StoreError, Transaction};

use crate::actor::Actor;
use crate::error::AppError;
use crate::now_ms;

/// The audit entry of an organisation's creation (its first entry, at revision 0).
fn created_entry(name: &str, actor: &Actor) -> AuditRecord {
    AuditRecord {
        action: "create_organization".to_owned(),
        table: None,
        record: None,
        user: Some(actor.user().unwrap_or(actor.system_name()).to_owned()),
        impersonator: actor.impersonator().map(str::to_owned),
        detail: serde_json::json!({ "name": name }),
        detail_text: None,
    }
}

/// Creates an empty organisation in the store, with the audit entry of its creation: one
/// transaction, so an organisation is never there unaudited (not even after a crash).
///
/// # Errors
///
/// `duplicate_organization` (nothing written), `bad_name`, the store's errors.
pub fn create_organization(store: &dyn Store, name: &str, actor: &Actor) -> Result<(), AppError> {
    let now = now_ms();
    let retention = Organization::new().audit_settings().retention_days;
    let entry = created_entry(name, actor);
    store.create_organization(name, now, &mut |tx| {
        tx.append_audit(&entry, now, retention).map(|_| ())
    })?;
    Ok(())
}

/// A bulk load of a new organisation by the system: each [`Loader::append`] applies its
/// operations in memory (consecutive setup operations in one setup session, as a replay does),
/// derives their audit entries as the write path does, and appends operations and entries in
/// one transaction. The organisation is created in the store by the first append's
/// transaction, once its operations applied, with the audit entry of its creation.
pub struct Loader<'a> {
    store: &'a dyn Store,
    name: String,
    actor: Actor,
    org: Organization,
    revision: Revision,
    created: bool,
}

impl std::fmt::Debug for Loader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader")
            .field("name", &self.name)
            .field("actor", &self.actor)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl<'a> Loader<'a> {
    /// A load of the organisation `name` by `actor` (the root key or the system: a bulk load is
    /// not authorized operation by operation).
    ///
    /// # Errors
    ///
    /// `bad_actor` for a user.
    pub fn new(store: &'a dyn Store, name: &str, actor: Actor) -> Result<Self, AppError> {
        if actor.user().is_some() {
            return Err(AppError::new(
                "bad_actor",
                "an organisation is loaded by the system, not by a user",
            ));
        }
        Ok(Loader {
            store,
            name: name.to_owned(),
            actor,
            org: Organization::new(),
            revision: 0,
            created: false,
        })
    }

    /// Applies `ops`, then appends them with their audit entries in one transaction (which,
    /// on the first call, creates the organisation with the audit entry of its creation). `progress` is told of each operation
    /// applied and each operation stored. Returns the revision after the append.
    ///
    /// # Errors
    ///
    /// The first refused operation (at `/i`), or the store's error; memory then holds what
    /// the refused chunk applied, and the loader must not be used again.
    pub fn append(
        &mut self,
        ops: &[Operation],
        progress: &mut dyn FnMut(u64),
    ) -> Result<Revision, AppError> {
        let mut befores: Vec<Option<serde_json::Value>> = Vec::new();
        let mut audits: Vec<Vec<AuditRecord>> = Vec::with_capacity(ops.len());
        let actor = &self.actor;
        // The time the rows are written with: the records are stamped so (D165).
        let now = now_ms();
        self.org.set_clock(now);
        strata_ops::apply_all_observed(&mut self.org, ops, |org, _, op, step| match step {
            BatchStep::Before => befores.push(crate::audit::before(org, op)),
            BatchStep::After(changes) => {
                let before = befores.pop().flatten();
                audits.push(crate::audit::entries_by(org, op, before, changes, actor));
                progress(1);
            }
        })
        .map_err(|(i, e)| AppError::from(e).at(format!("/{i}")))?;
        let retention = self.org.audit_settings().retention_days;
        let created = (!self.created).then(|| {
            (
                created_entry(&self.name, &self.actor),
                Organization::new().audit_settings().retention_days,
            )
        });
        let mut append = |tx: &mut dyn Transaction| -> Result<(), StoreError> {
            if let Some((entry, retention)) = &created {
                tx.append_audit(entry, now, *retention)?;
            }
            for (op, entries) in ops.iter().zip(&audits) {
                tx.append_operation(op, now)?;
                for e in entries {
                    tx.append_audit(e, now, retention)?;
                }
                progress(1);
            }
            Ok(())
        };
        // The first chunk creates the organisation in its transaction: it is never in the
        // store without its creation's audit entry and its first operations.
        self.revision = if self.created {
            self.store.write(&self.name, &mut append)?
        } else {
            self.store
                .create_organization(&self.name, now, &mut append)?
        };
        self.created = true;
        Ok(self.revision)
    }

    /// The organisation as loaded, and its revision.
    #[must_use]
    pub fn finish(self) -> (Organization, Revision) {
        (self.org, self.revision)
    }
}
