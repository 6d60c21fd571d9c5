//! One conformance suite, run against every backend: the memory store must behave exactly like
//! SQLite. SQLite also gets the tests only a file can have: restart and tampering with the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;
use strata_ops::Operation;
use strata_store::{
    ApiKeyRecord, AuditKey, AuditQuery, AuditRecord, MemoryStore, SqliteStore, Store, StoreError,
    Verification, load_organization,
};

fn op(json: serde_json::Value) -> Operation {
    serde_json::from_value(json).unwrap()
}

fn setup_ops() -> Vec<Operation> {
    vec![
        op(json!({"op": "add_business_unit", "name": "Contoso"})),
        op(json!({"op": "add_business_unit", "name": "Sales", "parent": "Contoso"})),
        op(json!({"op": "add_table", "name": "account"})),
        op(
            json!({"op": "add_role", "name": "Rep", "privileges": {"account": {"read": "business_unit", "create": "user", "write": "user"}}}),
        ),
        op(json!({"op": "add_user", "name": "alice", "business_unit": "Sales"})),
        op(json!({"op": "add_user", "name": "bob", "business_unit": "Sales"})),
        op(json!({"op": "assign_role", "principal": "alice", "role": "Rep"})),
        op(json!({"op": "assign_role", "principal": "bob", "role": "Rep"})),
        op(
            json!({"op": "create", "as": "alice", "table": "account", "id": "a1", "fields": {"name": "Contoso Ltd"}}),
        ),
    ]
}

fn audit(action: &str, record: &str, user: &str) -> AuditRecord {
    AuditRecord {
        action: action.to_owned(),
        table: Some("account".to_owned()),
        record: Some(record.to_owned()),
        user: Some(user.to_owned()),
        impersonator: None,
        detail: json!({"name": {"old": null, "new": "x"}}),
    }
}

/// Writes each operation in its own transaction with one audit entry, at times 1000, 2000…
fn fill(store: &dyn Store, org: &str) {
    for (i, o) in setup_ops().iter().enumerate() {
        let at = 1000 * (i as i64 + 1);
        store
            .write(org, &mut |tx| {
                tx.append_operation(o, at)?;
                tx.append_audit(
                    &audit(
                        &o.name(),
                        &format!("r{}", i % 3),
                        if i % 2 == 0 { "alice" } else { "bob" },
                    ),
                    at,
                    if i < 4 { 1 } else { -1 },
                )?;
                Ok(())
            })
            .unwrap();
    }
}

fn conformance(store: &dyn Store) {
    // Organisations.
    assert!(matches!(
        store.create_organization("bad name!", 0),
        Err(StoreError::BadName(_))
    ));
    store.create_organization("contoso", 0).unwrap();
    store.create_organization("fabrikam", 0).unwrap();
    assert!(matches!(
        store.create_organization("contoso", 0),
        Err(StoreError::DuplicateOrganization(_))
    ));
    assert!(matches!(
        store.revision("nope"),
        Err(StoreError::UnknownOrganization(_))
    ));
    assert!(matches!(
        store.write("nope", &mut |_| Ok(())),
        Err(StoreError::UnknownOrganization(_))
    ));
    assert_eq!(
        store.organizations().unwrap(),
        vec![("contoso".to_owned(), 0), ("fabrikam".to_owned(), 0)]
    );

    // The log: revisions count up, reads come back in order.
    fill(store, "contoso");
    let n = setup_ops().len() as u64;
    assert_eq!(store.revision("contoso").unwrap(), n);
    assert_eq!(
        store.revision("fabrikam").unwrap(),
        0,
        "organisations are isolated"
    );
    let log = store.operations("contoso", 0).unwrap();
    assert_eq!(log.len() as u64, n);
    assert!(
        log.iter()
            .enumerate()
            .all(|(i, e)| e.revision == i as u64 + 1)
    );
    assert_eq!(
        log.iter().map(|e| e.operation.clone()).collect::<Vec<_>>(),
        setup_ops()
    );
    assert_eq!(store.operations("contoso", n - 2).unwrap().len(), 2);

    // A failed closure writes nothing.
    let err = store.write("contoso", &mut |tx| {
        tx.append_operation(&setup_ops()[0], 99)?;
        tx.append_audit(&audit("create", "x", "alice"), 99, 30)?;
        Err(StoreError::Aborted("refused".to_owned()))
    });
    assert!(matches!(err, Err(StoreError::Aborted(_))));
    assert_eq!(store.revision("contoso").unwrap(), n);
    assert_eq!(
        store
            .audit(
                "contoso",
                &AuditQuery {
                    limit: 100,
                    ..AuditQuery::default()
                }
            )
            .unwrap()
            .len() as u64,
        n
    );

    // Several operations in one transaction.
    let rev = store
        .write("fabrikam", &mut |tx| {
            for o in setup_ops() {
                tx.append_operation(&o, 5)?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(rev, n);

    // The log rebuilds the organisation.
    let (org, revision) = load_organization(store, "contoso").unwrap();
    assert_eq!(revision, n);
    let alice = org.user_id("alice").unwrap();
    let a1 = org.record_id("a1").unwrap();
    assert!(org.check(alice, strata_engine::Privilege::Write, a1));
    assert!(!org.check(
        org.user_id("bob").unwrap(),
        strata_engine::Privilege::Write,
        a1
    ));

    // Audit queries.
    let all = store
        .audit(
            "contoso",
            &AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>()
    );
    assert_eq!(
        all[0].record.detail,
        json!({"name": {"old": null, "new": "x"}})
    );
    assert_eq!(all[3].revision, 4);
    let by_record = store
        .audit(
            "contoso",
            &AuditQuery {
                record: Some("r1".into()),
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(
        by_record.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 5, 8]
    );
    let by_user = store
        .audit(
            "contoso",
            &AuditQuery {
                user: Some("bob".into()),
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert!(
        by_user
            .iter()
            .all(|e| e.record.user.as_deref() == Some("bob"))
            && by_user.len() == 4
    );
    let by_time = store
        .audit(
            "contoso",
            &AuditQuery {
                from_ms: Some(2000),
                to_ms: Some(4000),
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(
        by_time.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
        vec![2000, 3000]
    );
    let page1 = store
        .audit(
            "contoso",
            &AuditQuery {
                limit: 4,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    let page2 = store
        .audit(
            "contoso",
            &AuditQuery {
                limit: 4,
                after_seq: page1[3].seq,
                ..AuditQuery::default()
            },
        )
        .unwrap();
    assert_eq!(page2.first().map(|e| e.seq), Some(5));
    assert_eq!(
        store.verify_audit("contoso").unwrap(),
        Verification::Intact { entries: n }
    );

    // Retention: the first four entries were kept one day; expiry removes them only once due.
    assert_eq!(store.expire_audit("contoso", 1000).unwrap(), 0);
    assert_eq!(store.expire_audit("contoso", 86_400_000 + 4000).unwrap(), 4);
    assert_eq!(
        store.expire_audit("contoso", i64::MAX / 2).unwrap(),
        0,
        "retention -1 keeps entries forever"
    );
    assert_eq!(
        store.verify_audit("contoso").unwrap(),
        Verification::Intact { entries: n - 4 }
    );
    // The chain goes on after expiry.
    store
        .write("contoso", &mut |tx| {
            tx.append_operation(
                &op(
                    json!({"op": "update", "as": "alice", "record": "a1", "fields": {"name": "B"}}),
                ),
                10_000,
            )?;
            tx.append_audit(&audit("update", "a1", "alice"), 10_000, 30)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(
        store.verify_audit("contoso").unwrap(),
        Verification::Intact { entries: n - 3 }
    );

    // API keys.
    let key = ApiKeyRecord {
        id: "k1".into(),
        organization: "contoso".into(),
        user: "alice".into(),
        key_hash: "abc".into(),
        created_ms: 1,
        revoked_ms: None,
    };
    store.put_api_key(&key).unwrap();
    assert!(matches!(
        store.put_api_key(&ApiKeyRecord {
            organization: "nope".into(),
            ..key.clone()
        }),
        Err(StoreError::UnknownOrganization(_))
    ));
    assert_eq!(store.api_key_by_hash("abc").unwrap(), Some(key.clone()));
    assert_eq!(store.api_key_by_hash("zzz").unwrap(), None);
    assert!(store.revoke_api_key("contoso", "k1", 7).unwrap());
    assert!(!store.revoke_api_key("contoso", "k2", 7).unwrap());
    assert_eq!(store.api_keys("contoso").unwrap()[0].revoked_ms, Some(7));

    // Deleting an organisation removes everything of it.
    store.delete_organization("contoso").unwrap();
    assert!(matches!(
        store.operations("contoso", 0),
        Err(StoreError::UnknownOrganization(_))
    ));
    assert_eq!(store.api_key_by_hash("abc").unwrap(), None);
    assert_eq!(
        store.organizations().unwrap(),
        vec![("fabrikam".to_owned(), n)]
    );
}

#[test]
fn memory_store_conforms() {
    conformance(&MemoryStore::new().unwrap());
}

#[test]
fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&SqliteStore::open(&dir.path().join("strata.db")).unwrap());
}

#[test]
fn memory_store_detects_tampering() {
    let store = MemoryStore::new().unwrap();
    store.create_organization("o", 0).unwrap();
    fill(&store, "o");
    store.tamper_audit("o", &mut |entries| {
        entries[2].record.user = Some("mallory".into())
    });
    assert!(matches!(
        store.verify_audit("o").unwrap(),
        Verification::Tampered { seq: 3, .. }
    ));
}

#[test]
fn sqlite_restart_gives_back_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let before = {
        let store = SqliteStore::open(&path).unwrap();
        store.create_organization("o", 0).unwrap();
        fill(&store, "o");
        load_organization(&store, "o").unwrap()
    };
    let store = SqliteStore::open(&path).unwrap();
    let after = load_organization(&store, "o").unwrap();
    assert_eq!(before.1, after.1);
    assert_eq!(before.0.canonical_dump(), after.0.canonical_dump());
    assert_eq!(
        store.verify_audit("o").unwrap(),
        Verification::Intact {
            entries: setup_ops().len() as u64
        }
    );
}

/// Opens a fresh database with a filled organisation, lets `tamper` edit the file with plain
/// SQL (as anyone with write access to the file could), and returns what verification says.
fn tampered(tamper: &str) -> Verification {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let key = AuditKey::new([7; 32]);
    {
        let store = SqliteStore::open_with_key(&path, key.clone()).unwrap();
        store.create_organization("o", 0).unwrap();
        fill(&store, "o");
        assert!(matches!(
            store.verify_audit("o").unwrap(),
            Verification::Intact { .. }
        ));
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(tamper).unwrap();
    drop(conn);
    SqliteStore::open_with_key(&path, key)
        .unwrap()
        .verify_audit("o")
        .unwrap()
}

#[test]
fn sqlite_detects_an_edited_entry() {
    let v = tampered("UPDATE audit SET user_name = 'mallory' WHERE seq = 4");
    assert!(matches!(v, Verification::Tampered { seq: 4, .. }), "{v:?}");
    let v = tampered(
        "UPDATE audit SET detail = '{\"name\":{\"old\":null,\"new\":\"y\"}}' WHERE seq = 2",
    );
    assert!(matches!(v, Verification::Tampered { seq: 2, .. }), "{v:?}");
}

#[test]
fn sqlite_detects_a_deleted_entry() {
    let v = tampered("DELETE FROM audit WHERE seq = 5");
    assert!(matches!(v, Verification::Tampered { seq: 5, .. }), "{v:?}");
    // The last entry, even when the head is moved back by hand.
    let v = tampered("DELETE FROM audit WHERE seq = 9");
    assert!(matches!(v, Verification::Tampered { .. }), "{v:?}");
    let v = tampered(
        "DELETE FROM audit WHERE seq = 9;
         UPDATE organizations SET audit_head_seq = 8, audit_head_hash = (SELECT hash FROM audit WHERE seq = 8);",
    );
    assert!(matches!(v, Verification::Tampered { .. }), "{v:?}");
    // The first entries, passed off as expired.
    let v = tampered(
        "DELETE FROM audit WHERE seq <= 2;
         UPDATE organizations SET audit_anchor_seq = 2, audit_anchor_hash = 'x', audit_anchor_seal = 'y';",
    );
    assert!(matches!(v, Verification::Tampered { .. }), "{v:?}");
}

#[test]
fn sqlite_detects_an_inserted_entry() {
    let v = tampered(
        "UPDATE audit SET seq = seq + 100 WHERE seq >= 6 AND org = 'o';
         UPDATE audit SET seq = seq - 99 WHERE seq >= 100 AND org = 'o';
         INSERT INTO audit (org, seq, revision, at_ms, retention_days, action, table_name, record, user_name, impersonator, detail, hash)
         SELECT org, 6, revision, at_ms, retention_days, 'delete', table_name, record, 'mallory', NULL, detail, hash FROM audit WHERE seq = 5;",
    );
    assert!(matches!(v, Verification::Tampered { seq: 6, .. }), "{v:?}");
}

#[test]
fn a_wrong_audit_key_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    {
        let store = SqliteStore::open_with_key(&path, AuditKey::new([1; 32])).unwrap();
        store.create_organization("o", 0).unwrap();
        fill(&store, "o");
    }
    let store = SqliteStore::open_with_key(&path, AuditKey::new([2; 32])).unwrap();
    assert!(matches!(
        store.verify_audit("o").unwrap(),
        Verification::Tampered { seq: 1, .. }
    ));
}
