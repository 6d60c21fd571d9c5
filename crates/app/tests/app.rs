//! The application layer: bootstrap and writes are audited with their actor; a name beginning
//! with `#` (the system actors' mark) is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::json;
use strata_app::{Actor, Loader, Registry};
use strata_ops::Operation;
use strata_store::{
    ApiKeyRecord, AuditEntry, AuditQuery, LogEntry, MemoryStore, Store, StoreError, Transaction,
    Verification,
};

fn ops(value: serde_json::Value) -> Vec<Operation> {
    serde_json::from_value(value).unwrap()
}

fn audit(store: &dyn Store, org: &str) -> Vec<(String, Option<String>)> {
    let query = AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    };
    store
        .audit(org, &query)
        .unwrap()
        .into_iter()
        .map(|e| (e.record.action, e.record.user))
        .collect()
}

fn setup() -> Vec<Operation> {
    ops(json!([
        {"op": "add_business_unit", "name": "Root"},
        {"op": "add_table", "name": "note"},
        {"op": "set_audit", "enabled": true, "tables": ["note"]},
        {"op": "add_role", "name": "Writer", "privileges": {"note": {"create": "user", "read": "user"}}},
        {"op": "add_user", "name": "writer"},
        {"op": "assign_role", "principal": "writer", "role": "Writer"}
    ]))
}

#[test]
fn a_bulk_load_writes_its_creation_and_audit_entries_by_the_system() {
    let store = MemoryStore::new().unwrap();
    let mut loader = Loader::new(&store, "o", Actor::System).unwrap();
    let revision = loader.append(&setup(), &mut |_| {}).unwrap();
    assert_eq!(revision, 6);
    let entries = audit(&store, "o");
    assert_eq!(
        entries[0],
        ("create_organization".to_owned(), Some("#system".to_owned()))
    );
    // Audit is switched on by the third operation: it and those after it are audited.
    let actions: Vec<&str> = entries.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "create_organization",
            "set_audit",
            "add_role",
            "add_user",
            "assign_role"
        ]
    );
    assert!(entries.iter().all(|(_, u)| u.as_deref() == Some("#system")));
    assert!(matches!(
        store.verify_audit("o").unwrap(),
        strata_store::Verification::Intact { entries: 5 }
    ));
    assert!(Loader::new(&store, "p", Actor::User("writer".into())).is_err());
}

#[test]
fn writes_are_audited_with_their_actor() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new().unwrap());
    let registry = Registry::default();
    let handle = registry.create(store.as_ref(), "o").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(handle.write(Arc::clone(&store), setup(), Actor::Root))
        .unwrap();
    let create = ops(json!([{"op": "create", "table": "note", "id": "n1", "fields": {}}]));
    let create = create
        .into_iter()
        .map(|op| strata_app::run_as(op, "writer"))
        .collect();
    runtime
        .block_on(handle.write(Arc::clone(&store), create, Actor::User("writer".into())))
        .unwrap();
    let entries = audit(store.as_ref(), "o");
    assert_eq!(
        entries[0],
        ("create_organization".to_owned(), Some("#root".to_owned()))
    );
    assert_eq!(
        entries[1],
        ("set_audit".to_owned(), Some("#root".to_owned()))
    );
    assert_eq!(
        entries.last().unwrap(),
        &("create".to_owned(), Some("writer".to_owned()))
    );
    // An unknown acting user is an error, never the system.
    let org = &handle.read_blocking().org;
    assert_eq!(
        Actor::user_of(org, "nobody").unwrap_err().code,
        "unknown_user"
    );
}

#[test]
fn a_user_name_never_begins_with_a_hash() {
    let mut org = strata_engine::Organization::new();
    let refused = strata_ops::apply_all(
        &mut org,
        &ops(json!([
            {"op": "add_business_unit", "name": "Root"},
            {"op": "add_user", "name": "#root"}
        ])),
    )
    .unwrap_err();
    assert_eq!(refused.0, 1);
    assert_eq!(refused.1.code, "bad_name");
}

/// A store whose connection is lost right after its first write of any kind (as a crash of the
/// process between two store calls would leave it): every call after it fails.
struct LostAfterOneWrite {
    inner: MemoryStore,
    lost: std::sync::atomic::AtomicBool,
}

impl LostAfterOneWrite {
    fn new() -> Self {
        LostAfterOneWrite {
            inner: MemoryStore::new().unwrap(),
            lost: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unreachable(
                "the connection was lost".to_owned(),
            ));
        }
        Ok(())
    }

    /// Runs one write, then loses the connection.
    fn once<T>(&self, write: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.check()?;
        let result = write();
        self.lost.store(true, std::sync::atomic::Ordering::SeqCst);
        result
    }
}

type TxFn<'a> = &'a mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>;

impl Store for LostAfterOneWrite {
    fn create_organization(&self, name: &str, at_ms: i64, f: TxFn<'_>) -> Result<u64, StoreError> {
        self.once(|| self.inner.create_organization(name, at_ms, f))
    }
    fn delete_organization(&self, name: &str) -> Result<(), StoreError> {
        self.once(|| self.inner.delete_organization(name))
    }
    fn organizations(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.check()?;
        self.inner.organizations()
    }
    fn write(&self, org: &str, f: TxFn<'_>) -> Result<u64, StoreError> {
        self.once(|| self.inner.write(org, f))
    }
    fn revision(&self, org: &str) -> Result<u64, StoreError> {
        self.check()?;
        self.inner.revision(org)
    }
    fn operations(&self, org: &str, after: u64) -> Result<Vec<LogEntry>, StoreError> {
        self.check()?;
        self.inner.operations(org, after)
    }
    fn audit(&self, org: &str, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.check()?;
        self.inner.audit(org, query)
    }
    fn verify_audit(&self, org: &str) -> Result<Verification, StoreError> {
        self.check()?;
        self.inner.verify_audit(org)
    }
    fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.inner.derived_key(purpose)
    }
    fn expire_audit(&self, org: &str, now_ms: i64) -> Result<u64, StoreError> {
        self.once(|| self.inner.expire_audit(org, now_ms))
    }
    fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.once(|| self.inner.put_api_key(key))
    }
    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.check()?;
        self.inner.api_key_by_hash(key_hash)
    }
    fn api_keys(&self, org: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.check()?;
        self.inner.api_keys(org)
    }
    fn revoke_api_key(&self, org: &str, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        self.once(|| self.inner.revoke_api_key(org, id, at_ms))
    }
    fn put_checkpoint(
        &self,
        org: &str,
        revision: u64,
        format: u32,
        bytes: &[u8],
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        self.once(|| {
            self.inner
                .put_checkpoint(org, revision, format, bytes, at_ms)
        })
    }
    fn checkpoints(&self, org: &str) -> Result<Vec<strata_store::CheckpointInfo>, StoreError> {
        self.check()?;
        self.inner.checkpoints(org)
    }
    fn read_checkpoint(&self, org: &str, revision: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.inner.read_checkpoint(org, revision)
    }
}

/// Every organisation the store holds has the audit entry of its creation first.
fn every_organisation_is_audited(store: &dyn Store) {
    for (org, _) in store.organizations().unwrap() {
        let entries = audit(store, &org);
        assert_eq!(
            entries.first().map(|(action, _)| action.as_str()),
            Some("create_organization"),
            "organisation `{org}` is in the store without the audit entry of its creation: {entries:?}"
        );
    }
}

/// An organisation and the audit entry of its creation are one store call: however the
/// process ends after that call, the organisation is never in the store unaudited (the
/// creation used to be two calls, the entry written by the second one).
#[test]
fn an_organisation_is_never_stored_without_its_creation_entry() {
    let store = LostAfterOneWrite::new();
    let created = strata_app::bootstrap::create_organization(&store, "o", &Actor::Root);
    every_organisation_is_audited(&store.inner);
    created.unwrap();
    assert_eq!(
        audit(&store.inner, "o"),
        [("create_organization".to_owned(), Some("#root".to_owned()))]
    );

    // A bulk load's first chunk creates the organisation in the same transaction.
    let store = LostAfterOneWrite::new();
    let mut loader = Loader::new(&store, "o", Actor::System).unwrap();
    let loaded = loader.append(&setup(), &mut |_| {});
    every_organisation_is_audited(&store.inner);
    assert_eq!(loaded.unwrap(), 6);
    assert_eq!(store.inner.revision("o").unwrap(), 6);

    // A creation the store refuses leaves nothing: the name is still free.
    let store = MemoryStore::new().unwrap();
    strata_app::bootstrap::create_organization(&store, "o", &Actor::Root).unwrap();
    let err = strata_app::bootstrap::create_organization(&store, "o", &Actor::System).unwrap_err();
    assert_eq!(err.code, "duplicate_organization");
    assert_eq!(audit(&store, "o").len(), 1);
}
