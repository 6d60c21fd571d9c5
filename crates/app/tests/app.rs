//! The application layer: bootstrap and writes are audited with their actor; a name beginning
//! with `#` (the system actors' mark) is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use serde_json::json;
use strata_app::{Actor, Loader, Registry};
use strata_ops::Operation;
use strata_store::{AuditQuery, MemoryStore, Store};

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
