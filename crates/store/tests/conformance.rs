//! One conformance suite, run against every backend: the memory store and PostgreSQL must
//! behave exactly like SQLite. SQLite and PostgreSQL also get the tests only a database can
//! have: restart, and tampering with the stored rows by plain SQL.
//!
//! The PostgreSQL tests run when `STRATA_TEST_POSTGRES` names a server (each test in a fresh
//! database of its own); without it they print a note and pass, except under CI, where they
//! fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use strata_ops::Operation;
use strata_store::postgres_testing::{self, ScratchDatabase};
use strata_store::{
    ApiKeyRecord, AuditKey, AuditOrder, AuditQuery, AuditRecord, LogDamage, MemoryStore,
    PostgresStore, SqliteStore, Store, StoreError, Verification, load_organization,
};

/// Runs SQL written against shared tables (as PostgreSQL keeps them: `operations` and `audit`,
/// rows by `org`) on a SQLite file, whose log and audit are tables of each organisation
/// (D161): in each statement, `operations` and `audit` become the tables of the organisation
/// the statement names (`org = 'x'`; the first it names, or `o`), except the target of an
/// `INSERT … SELECT 'x', …`, which becomes x's; the `org` conditions and columns go.
fn sqlite_execute(path: &Path, sql: &str) {
    use rusqlite::OptionalExtension;
    let conn = rusqlite::Connection::open(path).unwrap();
    let quoted = |text: &str, after: &str| -> Option<String> {
        let rest = text.split_once(after)?.1;
        Some(rest.split('\'').next()?.to_owned())
    };
    let number = |org: &str| -> i64 {
        conn.query_row(
            "SELECT number FROM organizations WHERE name = ?1",
            [org],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
        .unwrap_or_else(|| panic!("no organisation `{org}`"))
    };
    let mut out = String::new();
    for statement in sql.split(';') {
        let touches = statement
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == "operations" || w == "audit");
        if !touches {
            out.push_str(statement);
            out.push(';');
            continue;
        }
        let org = quoted(statement, "org = '").unwrap_or_else(|| "o".to_owned());
        let target = statement
            .trim_start()
            .starts_with("INSERT")
            .then(|| quoted(statement, "SELECT '"))
            .flatten();
        let mut text = statement
            .replace(&format!("org = '{org}' AND "), "")
            .replace(&format!(" AND org = '{org}'"), "")
            .replace(&format!(" WHERE org = '{org}'"), "")
            .replace("(org, ", "(")
            .replace("SELECT org, ", "SELECT ");
        if let Some(target) = &target {
            text = text.replace(&format!("SELECT '{target}', "), "SELECT ");
        }
        // The words `operations` and `audit`, not `audit_head_seq` or `'audit refused'`.
        let (mut first, mut quoted) = (true, false);
        let mut word = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            if c == '\'' {
                quoted = !quoted;
            }
            if !quoted && (c.is_ascii_alphanumeric() || c == '_') {
                word.push(c);
                continue;
            }
            let table = match word.as_str() {
                "operations" => Some("log"),
                "audit" => Some("audit"),
                _ => None,
            };
            match table {
                Some(table) => {
                    let of = match (&target, first) {
                        (Some(target), true) => target.as_str(),
                        _ => org.as_str(),
                    };
                    first = false;
                    out.push_str(&format!("{table}_{}", number(of)));
                }
                None => out.push_str(&word),
            }
            word.clear();
            out.push(c);
        }
        out.pop();
        out.push(';');
    }
    conn.execute_batch(&out).unwrap();
}

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
        detail_text: None,
    }
}

/// Writes each operation in its own transaction with one audit entry, at times 1000, 2000…;
/// every other entry hands its detail over as text (`detail_text`, as a create does, D155),
/// which reads back and verifies as the value it stands for.
fn fill(store: &dyn Store, org: &str) {
    for (i, o) in setup_ops().iter().enumerate() {
        let at = 1000 * (i as i64 + 1);
        let mut entry = audit(
            &o.name(),
            &format!("r{}", i % 3),
            if i % 2 == 0 { "alice" } else { "bob" },
        );
        if i % 2 == 1 {
            entry.detail_text = Some(entry.detail.to_string());
            entry.detail = serde_json::Value::Null;
        }
        store
            .write(org, &mut |tx| {
                tx.append_operation(o, at)?;
                tx.append_audit(&entry, at, if i < 4 { 1 } else { -1 })?;
                Ok(())
            })
            .unwrap();
    }
}

fn conformance(store: &dyn Store) {
    // Organisations.
    assert!(matches!(
        store.create_organization("bad name!", 0, &mut |_| Ok(())),
        Err(StoreError::BadName(_))
    ));
    store
        .create_organization("contoso", 0, &mut |_| Ok(()))
        .unwrap();
    store
        .create_organization("fabrikam", 0, &mut |_| Ok(()))
        .unwrap();
    assert!(matches!(
        store.create_organization("contoso", 0, &mut |_| Ok(())),
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
    // Every detail reads back as its value, those handed over as text included.
    for e in &all {
        assert_eq!(e.record.detail, json!({"name": {"old": null, "new": "x"}}));
        assert_eq!(e.record.detail_text, None);
    }
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

    // Inside a write: the revision its lock holds, and the log up to it (a node that is behind
    // reads what other nodes wrote before applying its own operations).
    let mut seen = None;
    let looked = store.write("fabrikam", &mut |tx| {
        let base = tx.revision();
        let tail = tx.operations_after(base - 2)?;
        seen = Some((base, tail.iter().map(|e| e.revision).collect::<Vec<_>>()));
        Err(StoreError::Aborted("looking only".into()))
    });
    assert!(matches!(looked, Err(StoreError::Aborted(_))));
    assert_eq!(seen, Some((n, vec![n - 1, n])));
    assert_eq!(store.revision("fabrikam").unwrap(), n);

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
    // An organisation made again under the name starts empty: no row of the old one is left.
    store
        .create_organization("contoso", 0, &mut |_| Ok(()))
        .unwrap();
    assert_eq!(store.revision("contoso").unwrap(), 0);
    assert!(store.operations("contoso", 0).unwrap().is_empty());
    assert!(
        store
            .audit("contoso", &AuditQuery::default())
            .unwrap()
            .is_empty()
    );
    assert!(store.api_keys("contoso").unwrap().is_empty());
    assert!(matches!(
        store.verify_audit("contoso").unwrap(),
        Verification::Intact { entries: 0 }
    ));
    store.delete_organization("contoso").unwrap();
}

/// The audit read newest first and oldest first, by table and by action, and paged in both
/// directions with the `seq` cursor: every backend answers the same entries in the same order.
fn audit_orders_and_filters(store: &dyn Store) {
    store
        .create_organization("northwind", 0, &mut |_| Ok(()))
        .unwrap();
    // 12 entries: tables account / contact / none in turn, a user_access entry every fourth.
    let table_of = |i: u64| match i % 3 {
        0 => Some("account".to_owned()),
        1 => Some("contact".to_owned()),
        _ => None,
    };
    let action_of = |i: u64| if i % 4 == 3 { "user_access" } else { "update" };
    for i in 0..12u64 {
        store
            .write("northwind", &mut |tx| {
                let at = 1000 * (i as i64 + 1);
                tx.append_operation(&setup_ops()[0], at)?;
                tx.append_audit(
                    &AuditRecord {
                        action: action_of(i).to_owned(),
                        table: table_of(i),
                        record: Some(format!("r{i}")),
                        user: Some(if i % 2 == 0 { "alice" } else { "bob" }.to_owned()),
                        impersonator: None,
                        detail: json!({"i": i}),
                        detail_text: None,
                    },
                    at,
                    -1,
                )?;
                Ok(())
            })
            .unwrap();
    }
    let seqs = |q: AuditQuery| {
        store
            .audit("northwind", &q)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    let all = |order| AuditQuery {
        order,
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(
        seqs(all(AuditOrder::Ascending)),
        (1..=12).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(all(AuditOrder::Descending)),
        (1..=12).rev().collect::<Vec<_>>(),
        "newest first"
    );
    // The limit takes the first entries in the order asked: the newest.
    assert_eq!(
        seqs(AuditQuery {
            limit: 3,
            ..all(AuditOrder::Descending)
        }),
        vec![12, 11, 10]
    );
    // By table, both orders; entries about no table never match a table.
    assert_eq!(
        seqs(AuditQuery {
            table: Some("contact".into()),
            ..all(AuditOrder::Ascending)
        }),
        vec![2, 5, 8, 11]
    );
    assert_eq!(
        seqs(AuditQuery {
            table: Some("account".into()),
            ..all(AuditOrder::Descending)
        }),
        vec![10, 7, 4, 1]
    );
    assert!(
        seqs(AuditQuery {
            table: Some("Account".into()),
            ..all(AuditOrder::Ascending)
        })
        .is_empty(),
        "table names match exactly"
    );
    // A user's access history: their user_access entries, newest first.
    assert_eq!(
        seqs(AuditQuery {
            user: Some("bob".into()),
            action: Some("user_access".into()),
            ..all(AuditOrder::Descending)
        }),
        vec![12, 8, 4]
    );
    assert!(
        seqs(AuditQuery {
            user: Some("alice".into()),
            action: Some("user_access".into()),
            ..all(AuditOrder::Descending)
        })
        .is_empty()
    );
    // Paging newest first with `before_seq`, and back with `after_seq` ascending.
    let page = |after_seq, before_seq, order| {
        seqs(AuditQuery {
            after_seq,
            before_seq,
            order,
            limit: 5,
            ..AuditQuery::default()
        })
    };
    assert_eq!(
        page(0, None, AuditOrder::Descending),
        vec![12, 11, 10, 9, 8]
    );
    assert_eq!(
        page(0, Some(8), AuditOrder::Descending),
        vec![7, 6, 5, 4, 3]
    );
    assert_eq!(page(0, Some(3), AuditOrder::Descending), vec![2, 1]);
    assert_eq!(page(2, None, AuditOrder::Ascending), vec![3, 4, 5, 6, 7]);
    assert_eq!(page(7, None, AuditOrder::Ascending), vec![8, 9, 10, 11, 12]);
    // Both bounds, both orders; an empty window; a cursor past every entry.
    assert_eq!(page(3, Some(7), AuditOrder::Ascending), vec![4, 5, 6]);
    assert_eq!(page(3, Some(7), AuditOrder::Descending), vec![6, 5, 4]);
    assert!(page(5, Some(6), AuditOrder::Descending).is_empty());
    assert!(page(u64::MAX, None, AuditOrder::Ascending).is_empty());
    assert_eq!(
        page(0, Some(u64::MAX), AuditOrder::Descending),
        vec![12, 11, 10, 9, 8]
    );
    // With the other filters: table and time together, newest first.
    assert_eq!(
        seqs(AuditQuery {
            table: Some("contact".into()),
            from_ms: Some(3000),
            to_ms: Some(11_000),
            ..all(AuditOrder::Descending)
        }),
        vec![8, 5]
    );
    store.delete_organization("northwind").unwrap();
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

/// The WAL is copied into the database file by the store's own thread (D151), not left to
/// grow: after a few MiB of commits the file holds them while the store is still open.
#[test]
fn sqlite_store_copies_its_wal_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    let mut entry = audit("update", "x", "alice");
    entry.detail = json!({"note": "x".repeat(2_000)});
    // About 8 MiB: 2,000 pages and more.
    for _ in 0..40 {
        store
            .write("o", &mut |tx| {
                for _ in 0..100 {
                    tx.append_audit(&entry, 1, 30)?;
                }
                Ok(())
            })
            .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&path).unwrap().len() < 4 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the WAL was not copied into the database file"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        store
            .audit(
                "o",
                &AuditQuery {
                    limit: 10_000,
                    ..AuditQuery::default()
                }
            )
            .unwrap()
            .len(),
        4_000
    );
}

/// The audit indexed in batches (D142): every query the same whether its entries are in the
/// indexes, in the unindexed tail, or on both sides.
#[test]
fn sqlite_store_reads_the_audit_across_its_index_batches() {
    for batch in [1, 2, 5, 7, 12, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("strata.db"))
            .unwrap()
            .with_audit_index_batch(batch);
        audit_orders_and_filters(&store);
    }
}

/// A transaction told that its audit entries complete a batch (D157) puts them straight into
/// the indexes, whatever it then appends: only the rows that waited before it are updated
/// into them (a trigger counts the updates), the organisation's indexed head is its last
/// entry, and queries read the same; a small write told of nothing waits for its batch as
/// before.
#[test]
fn sqlite_store_indexes_a_batch_it_is_told_of_as_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let store = SqliteStore::open(&path).unwrap().with_audit_index_batch(8);
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    sqlite_execute(
        &path,
        "CREATE TABLE updated (n INTEGER NOT NULL);
         INSERT INTO updated VALUES (0);
         CREATE TRIGGER count_indexing AFTER UPDATE OF indexed ON audit
         BEGIN UPDATE updated SET n = n + 1; END;",
    );
    let write = |told: usize, entries: usize, record: &str| {
        store
            .write("o", &mut |tx| {
                if told > 0 {
                    tx.expect_audit_entries(told);
                }
                for _ in 0..entries {
                    tx.append_audit(&audit("update", record, "alice"), 1, 30)?;
                }
                Ok(())
            })
            .unwrap();
    };
    let rows = || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let unindexed: i64 = conn
            .query_row("SELECT count(*) FROM audit_1 WHERE indexed = 0", [], |r| {
                r.get(0)
            })
            .unwrap();
        let head: i64 = conn
            .query_row(
                "SELECT audit_indexed_seq FROM organizations WHERE name = 'o'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let updated: i64 = conn
            .query_row("SELECT n FROM updated", [], |r| r.get(0))
            .unwrap();
        (unindexed, head, updated)
    };
    // 3 entries told of nothing: they wait for their batch.
    write(0, 3, "a");
    assert_eq!(rows(), (3, 0, 0));
    // 20 told of: the 3 waiting are updated into the indexes at the commit, the 20 go in
    // indexed (untold, the 4 before the batch's 8th would have been updated too).
    write(20, 20, "b");
    assert_eq!(rows(), (0, 23, 3));
    // Told of more than it appends: what it appends is indexed all the same.
    write(50, 2, "c");
    assert_eq!(rows(), (0, 25, 3));
    // Told of fewer than a batch: waits as before.
    write(3, 3, "d");
    assert_eq!(rows(), (3, 25, 3));
    let count = |record: &str| {
        store
            .audit(
                "o",
                &AuditQuery {
                    record: Some(record.to_owned()),
                    limit: 100,
                    ..AuditQuery::default()
                },
            )
            .unwrap()
            .len()
    };
    assert_eq!(
        (count("a"), count("b"), count("c"), count("d")),
        (3, 20, 2, 3)
    );
    assert_eq!(
        store.verify_audit("o").unwrap(),
        Verification::Intact { entries: 28 }
    );
}

/// Rows a SQLite transaction's chainer hashed (D158), appended in two batches, store exactly
/// the rows that appending each operation and entry would: the same log (MACs included), the
/// same audit (hashes included), both verified, in a store of the same key. Rows that do not
/// continue the transaction's heads — another row appended since, or another organisation's
/// chainer — are refused, and nothing of the write is kept.
fn chained_rows_are_the_rows_appended(appended: &dyn Store, chained: &dyn Store) {
    for store in [appended, chained] {
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        store.create_organization("p", 0, &mut |_| Ok(())).unwrap();
        store.create_organization("q", 0, &mut |_| Ok(())).unwrap();
    }
    let ops = setup_ops();
    let entries = |i: usize| -> Vec<AuditRecord> {
        let mut text = audit("create", &format!("r{i}"), "alice");
        text.detail_text = Some(text.detail.to_string());
        text.detail = serde_json::Value::Null;
        // None, one, two entries in turn, one of them with its detail as text.
        [audit("update", &format!("r{i}"), "bob"), text][..i % 3].to_vec()
    };
    appended
        .write("o", &mut |tx| {
            for (i, o) in ops.iter().enumerate() {
                tx.append_operation(o, 5_000)?;
                for e in entries(i) {
                    tx.append_audit(&e, 5_000, 30)?;
                }
            }
            Ok(())
        })
        .unwrap();
    let stored = |i: usize| strata_store::StoredOperation::new(&ops[i]).unwrap();
    chained
        .write("o", &mut |tx| {
            let mut chainer = tx.chainer().expect("a database store chains ahead");
            let first = chainer.chain((0..4).map(|i| (stored(i), entries(i))), 5_000, 30);
            let second = chainer.chain((4..ops.len()).map(|i| (stored(i), entries(i))), 5_000, 30);
            tx.append_chained(first)?;
            tx.append_chained(second)?;
            assert_eq!(tx.revision(), ops.len() as u64);
            Ok(())
        })
        .unwrap();
    let all = AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    };
    assert_eq!(
        appended.operations("o", 0).unwrap(),
        chained.operations("o", 0).unwrap()
    );
    assert_eq!(
        appended.audit("o", &all).unwrap(),
        chained.audit("o", &all).unwrap()
    );
    let entries_written = (0..ops.len()).map(|i| i % 3).sum::<usize>() as u64;
    assert_eq!(
        chained.verify_audit("o").unwrap(),
        Verification::Intact {
            entries: entries_written
        }
    );
    assert_eq!(load_organization(chained, "o").unwrap().1, ops.len() as u64);

    // Another row appended after the chainer was made: its rows no longer continue the heads.
    let refused = chained.write("o", &mut |tx| {
        let mut chainer = tx.chainer().unwrap();
        let rows = chainer.chain([(stored(0), entries(1))], 6_000, 30);
        tx.append_operation(&ops[1], 6_000)?;
        tx.append_chained(rows)
    });
    assert!(
        matches!(refused, Err(StoreError::Aborted(_))),
        "{refused:?}"
    );
    // Another organisation's chainer, from the very same heads (two empty organisations):
    // only the organisation tells them apart.
    let mut other = None;
    chained
        .write("p", &mut |tx| {
            other = tx.chainer();
            Err(StoreError::Aborted("a chainer only".into()))
        })
        .unwrap_err();
    let mut other = other.unwrap();
    let refused = chained.write("q", &mut |tx| {
        let rows = other.chain([(stored(0), entries(1))], 6_000, 30);
        tx.append_chained(rows)
    });
    assert!(
        matches!(refused, Err(StoreError::Aborted(_))),
        "{refused:?}"
    );
    assert_eq!(chained.revision("o").unwrap(), ops.len() as u64);
    assert_eq!(chained.revision("p").unwrap(), 0);
    assert_eq!(chained.revision("q").unwrap(), 0);
    assert_eq!(
        chained.verify_audit("o").unwrap(),
        Verification::Intact {
            entries: entries_written
        }
    );
}

#[test]
fn sqlite_store_takes_rows_chained_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let key = AuditKey::new([7; 32]);
    let appended = SqliteStore::open_with_key(&dir.path().join("a.db"), key.clone()).unwrap();
    let chained = SqliteStore::open_with_key(&dir.path().join("b.db"), key).unwrap();
    chained_rows_are_the_rows_appended(&appended, &chained);
}

/// A store that hashes as it appends makes no chainer, and refuses chained rows (another
/// store's), appending nothing: the memory store, and PostgreSQL, whose appends only gather
/// the rows for one statement at the end, so that the appending thread hashes while the
/// trying one applies (D158).
fn makes_no_chainer(store: &dyn Store) {
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&sqlite_dir.path().join("s.db")).unwrap();
    sqlite.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    let mut rows = None;
    sqlite
        .write("o", &mut |tx| {
            let mut chainer = tx.chainer().unwrap();
            rows = Some(chainer.chain([], 1, 30));
            Err(StoreError::Aborted("rows only".into()))
        })
        .unwrap_err();
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    let refused = store.write("o", &mut |tx| {
        assert!(tx.chainer().is_none());
        tx.append_chained(rows.take().unwrap())
    });
    assert!(
        matches!(refused, Err(StoreError::Aborted(_))),
        "{refused:?}"
    );
    assert_eq!(store.revision("o").unwrap(), 0);
}

#[test]
fn memory_store_makes_no_chainer() {
    makes_no_chainer(&MemoryStore::new().unwrap());
}

#[test]
fn postgres_store_makes_no_chainer() {
    let Some(server) = postgres("postgres_store_makes_no_chainer") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = PostgresStore::open(scratch.url(), &dir.path().join("audit-key")).unwrap();
    makes_no_chainer(&store);
}

#[test]
fn memory_store_reads_the_audit_in_both_orders() {
    audit_orders_and_filters(&MemoryStore::new().unwrap());
}

#[test]
fn sqlite_store_reads_the_audit_in_both_orders() {
    let dir = tempfile::tempdir().unwrap();
    audit_orders_and_filters(&SqliteStore::open(&dir.path().join("strata.db")).unwrap());
}

#[test]
fn postgres_store_reads_the_audit_in_both_orders() {
    let Some(server) = postgres("postgres_store_reads_the_audit_in_both_orders") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = PostgresStore::open(scratch.url(), &dir.path().join("audit-key")).unwrap();
    audit_orders_and_filters(&store);
}

#[test]
fn memory_store_detects_tampering() {
    let store = MemoryStore::new().unwrap();
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
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
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
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
fn tampered_sqlite(tamper: &str) -> Verification {
    tampered_sqlite_batched(tamper, strata_store::AUDIT_INDEX_BATCH)
}

/// [`tampered_sqlite`] with the audit indexed in batches of `batch` rows (D142).
fn tampered_sqlite_batched(tamper: &str, batch: u64) -> Verification {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let key = AuditKey::new([7; 32]);
    let open = || {
        SqliteStore::open_with_key(&path, key.clone())
            .unwrap()
            .with_audit_index_batch(batch)
    };
    {
        let store = open();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        fill(&store, "o");
        assert!(matches!(
            store.verify_audit("o").unwrap(),
            Verification::Intact { .. }
        ));
    }
    sqlite_execute(&path, tamper);
    open().verify_audit("o").unwrap()
}

/// The same on a fresh PostgreSQL database: plain SQL as anyone with write access to the
/// database could run.
fn tampered_postgres(server: &str, tamper: &str) -> Verification {
    let scratch = ScratchDatabase::create(server).unwrap();
    let key = AuditKey::new([7; 32]);
    {
        let store = PostgresStore::open_with_key(scratch.url(), key.clone()).unwrap();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        fill(&store, "o");
        assert!(matches!(
            store.verify_audit("o").unwrap(),
            Verification::Intact { .. }
        ));
    }
    postgres_testing::execute(scratch.url(), tamper).unwrap();
    PostgresStore::open_with_key(scratch.url(), key)
        .unwrap()
        .verify_audit("o")
        .unwrap()
}

fn an_edited_entry_is_detected(tampered: &dyn Fn(&str) -> Verification) {
    let v = tampered("UPDATE audit SET user_name = 'mallory' WHERE seq = 4");
    assert!(matches!(v, Verification::Tampered { seq: 4, .. }), "{v:?}");
    let v = tampered(
        "UPDATE audit SET detail = '{\"name\":{\"old\":null,\"new\":\"y\"}}' WHERE seq = 2",
    );
    assert!(matches!(v, Verification::Tampered { seq: 2, .. }), "{v:?}");
    let v = tampered("UPDATE audit SET detail = 'not json' WHERE seq = 3");
    assert!(matches!(v, Verification::Tampered { seq: 3, .. }), "{v:?}");
}

fn a_deleted_entry_is_detected(tampered: &dyn Fn(&str) -> Verification) {
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

fn an_inserted_entry_is_detected(tampered: &dyn Fn(&str) -> Verification) {
    let v = tampered(
        "UPDATE audit SET seq = seq + 100 WHERE seq >= 6 AND org = 'o';
         UPDATE audit SET seq = seq - 99 WHERE seq >= 100 AND org = 'o';
         INSERT INTO audit (org, seq, revision, at_ms, retention_days, action, table_name, record, user_name, impersonator, detail, hash)
         SELECT org, 6, revision, at_ms, retention_days, 'delete', table_name, record, 'mallory', NULL, detail, hash FROM audit WHERE seq = 5;",
    );
    assert!(matches!(v, Verification::Tampered { seq: 6, .. }), "{v:?}");
}

#[test]
fn sqlite_detects_an_edited_entry() {
    an_edited_entry_is_detected(&tampered_sqlite);
}

/// The `indexed` flag (D142) is not in the chain; an entry taken out of the indexes by hand,
/// which every query would then miss, is found by the verification all the same.
#[test]
fn sqlite_detects_an_entry_taken_out_of_the_indexes() {
    let tampered = |tamper: &str| tampered_sqlite_batched(tamper, 2);
    let v = tampered("UPDATE audit SET indexed = 0 WHERE seq = 3");
    assert!(matches!(v, Verification::Tampered { seq: 3, .. }), "{v:?}");
    let v = tampered("UPDATE audit SET indexed = 2 WHERE seq = 4");
    assert!(matches!(v, Verification::Tampered { seq: 4, .. }), "{v:?}");
    // The tail after the last batch is read by `seq`, indexed or not: no finding.
    let v = tampered(
        "UPDATE audit SET indexed = 1 WHERE seq > (SELECT audit_indexed_seq FROM organizations)",
    );
    assert!(matches!(v, Verification::Intact { .. }), "{v:?}");
}

#[test]
fn sqlite_detects_a_deleted_entry() {
    a_deleted_entry_is_detected(&tampered_sqlite);
}

#[test]
fn sqlite_detects_an_inserted_entry() {
    an_inserted_entry_is_detected(&tampered_sqlite);
}

#[test]
fn a_wrong_audit_key_fails_verification() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    {
        let store = SqliteStore::open_with_key(&path, AuditKey::new([1; 32])).unwrap();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        fill(&store, "o");
    }
    let store = SqliteStore::open_with_key(&path, AuditKey::new([2; 32])).unwrap();
    assert!(matches!(
        store.verify_audit("o").unwrap(),
        Verification::Tampered { seq: 1, .. }
    ));
    // The operation log too: its head's seal does not hold under another key.
    assert_corrupt(
        load_result(&store, "o"),
        "o",
        setup_ops().len() as u64,
        LogDamage::Head,
        "another key",
    );
}

// ----- PostgreSQL -----

/// The server of `STRATA_TEST_POSTGRES`, or `None` after a note (a failure under CI).
fn postgres(test: &str) -> Option<String> {
    postgres_testing::server_or_skip(test)
}

#[test]
fn postgres_store_conforms() {
    let Some(server) = postgres("postgres_store_conforms") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = PostgresStore::open(scratch.url(), &dir.path().join("audit-key")).unwrap();
    conformance(&store);
}

/// A write on one store wakes another store's `wait_for_change` (LISTEN/NOTIFY, delivered on
/// commit); a write that rolls back wakes nobody.
#[test]
fn postgres_notifies_other_stores_of_writes() {
    let Some(server) = postgres("postgres_notifies_other_stores_of_writes") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-key");
    let writer = PostgresStore::open(scratch.url(), &key).unwrap();
    let follower = PostgresStore::open(scratch.url(), &key).unwrap();
    writer.create_organization("o", 1, &mut |_| Ok(())).unwrap();
    // The listener is connected once its first "look again" has moved the counter.
    let start = std::time::Instant::now();
    while follower.change_seen() == 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let seen = follower.change_seen();
    let rolled_back = writer.write("o", &mut |tx| {
        tx.append_operation(&setup_ops()[0], 1)?;
        Err(StoreError::Aborted("no".into()))
    });
    assert!(rolled_back.is_err());
    assert_eq!(
        follower.wait_for_change(seen, std::time::Duration::from_millis(300)),
        seen,
        "a rolled-back write notified"
    );
    let start = std::time::Instant::now();
    writer
        .write("o", &mut |tx| {
            tx.append_operation(&setup_ops()[0], 1).map(|_| ())
        })
        .unwrap();
    let moved = follower.wait_for_change(seen, std::time::Duration::from_secs(5));
    assert!(moved > seen, "no notification");
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    // The writer does not wake for its own writes (D145): its memory holds them already.
    while writer.change_seen() == 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (own, seen) = (writer.change_seen(), follower.change_seen());
    writer
        .write("o", &mut |tx| {
            tx.append_operation(&setup_ops()[0], 2).map(|_| ())
        })
        .unwrap();
    assert!(follower.wait_for_change(seen, std::time::Duration::from_secs(5)) > seen);
    assert_eq!(
        writer.wait_for_change(own, std::time::Duration::from_millis(300)),
        own,
        "a store woke for its own write"
    );
}

/// The audit's indexed text columns compare bytes whatever the database's collation (D152),
/// and a query by each still finds its entries.
#[test]
fn postgres_audit_text_columns_compare_bytes() {
    let Some(server) = postgres("postgres_audit_text_columns_compare_bytes") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = PostgresStore::open(scratch.url(), &dir.path().join("audit-key")).unwrap();
    postgres_testing::execute(
        scratch.url(),
        r#"DO $$ BEGIN
            IF (SELECT count(*) FROM information_schema.columns
                WHERE table_name = 'audit' AND column_name IN ('table_name', 'record', 'user_name')
                AND collation_name = 'C') <> 3 THEN
                RAISE EXCEPTION 'the audit''s text columns are not collated "C"';
            END IF;
        END $$;"#,
    )
    .unwrap();
    audit_orders_and_filters(&store);
}

/// Write leases (D150): the first node to claim takes the lease and renews it; another node's
/// claim is answered with the holder while the lease runs, and takes it once it ran out or was
/// given up; a node that only reads takes nothing. A row changed in the database by hand (a
/// URL of the attacker's) is not followed: its MAC does not hold.
#[test]
fn postgres_write_leases_are_taken_renewed_run_out_and_cannot_be_forged() {
    let Some(server) =
        postgres("postgres_write_leases_are_taken_renewed_run_out_and_cannot_be_forged")
    else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit-key");
    let a = PostgresStore::open(scratch.url(), &key).unwrap();
    let b = PostgresStore::open(scratch.url(), &key).unwrap();
    let orgs = ["o".to_owned(), "p".to_owned()];
    let claim = |node: &'static str, ttl_ms: i64| strata_store::LeaseClaim {
        node,
        url: if node == "a" {
            "http://a:1"
        } else {
            "http://b:1"
        },
        ttl_ms,
    };
    let holders = |leases: Vec<strata_store::WriteLease>| {
        let mut h: Vec<(String, String)> = leases
            .into_iter()
            .map(|l| {
                assert!(l.remaining_ms > 0, "{l:?}");
                (l.organization, l.node)
            })
            .collect();
        h.sort();
        h
    };
    let pair = |o: &str, n: &str| (o.to_owned(), n.to_owned());
    // Nobody holds a lease: a reader learns nothing, a claim takes both.
    assert!(b.write_leases(&orgs, None).unwrap().is_empty());
    assert_eq!(
        holders(a.write_leases(&orgs, Some(&claim("a", 60_000))).unwrap()),
        [pair("o", "a"), pair("p", "a")]
    );
    // B's claim is answered with A; A renews.
    assert_eq!(
        holders(b.write_leases(&orgs, Some(&claim("b", 60_000))).unwrap()),
        [pair("o", "a"), pair("p", "a")]
    );
    assert_eq!(
        holders(a.write_leases(&orgs[..1], Some(&claim("a", 300))).unwrap()),
        [pair("o", "a")]
    );
    // A's lease of `o` runs out: B takes it; `p` is still A's.
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert_eq!(
        holders(b.write_leases(&orgs, Some(&claim("b", 60_000))).unwrap()),
        [pair("o", "b"), pair("p", "a")]
    );
    // A gives up its leases: B takes `p`.
    a.release_write_leases("a").unwrap();
    assert_eq!(
        holders(b.write_leases(&orgs, Some(&claim("b", 60_000))).unwrap()),
        [pair("o", "b"), pair("p", "b")]
    );
    // Someone with the database points `o`'s lease at a server of theirs: not followed, by a
    // reader or a claimer; nor is a row inserted by hand.
    postgres_testing::execute(
        scratch.url(),
        "UPDATE write_leases SET url = 'http://attacker:80' WHERE org = 'o';
         INSERT INTO write_leases (org, node, url, mac, expires_ms)
         VALUES ('q', 'x', 'http://attacker:80', 'ff', 9999999999999)",
    )
    .unwrap();
    let all = ["o".to_owned(), "p".to_owned(), "q".to_owned()];
    assert_eq!(
        holders(a.write_leases(&all, None).unwrap()),
        [pair("p", "b")]
    );
    assert_eq!(
        holders(a.write_leases(&all, Some(&claim("a", 60_000))).unwrap()),
        [pair("p", "b")]
    );
}

#[test]
fn postgres_detects_an_edited_entry() {
    if let Some(server) = postgres("postgres_detects_an_edited_entry") {
        an_edited_entry_is_detected(&|sql| tampered_postgres(&server, sql));
    }
}

#[test]
fn postgres_detects_a_deleted_entry() {
    if let Some(server) = postgres("postgres_detects_a_deleted_entry") {
        a_deleted_entry_is_detected(&|sql| tampered_postgres(&server, sql));
    }
}

#[test]
fn postgres_detects_an_inserted_entry() {
    if let Some(server) = postgres("postgres_detects_an_inserted_entry") {
        an_inserted_entry_is_detected(&|sql| tampered_postgres(&server, sql));
    }
}

#[test]
fn postgres_restart_gives_back_the_same_state() {
    let Some(server) = postgres("postgres_restart_gives_back_the_same_state") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("audit-key");
    let before = {
        let store = PostgresStore::open(scratch.url(), &key_file).unwrap();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        fill(&store, "o");
        load_organization(&store, "o").unwrap()
    };
    let store = PostgresStore::open(scratch.url(), &key_file).unwrap();
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

#[test]
fn postgres_refuses_another_audit_key_and_a_lost_key_file() {
    let Some(server) = postgres("postgres_refuses_another_audit_key_and_a_lost_key_file") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("audit-key");
    {
        let store = PostgresStore::open(scratch.url(), &key_file).unwrap();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        fill(&store, "o");
    }
    assert!(key_file.exists(), "the key file is created on first use");
    // Another key would chain new entries under the wrong key: refused before any write.
    let err = PostgresStore::open_with_key(scratch.url(), AuditKey::new([2; 32])).unwrap_err();
    assert_eq!(err.code(), "audit_key", "{err}");
    assert!(err.to_string().contains("not the key"), "{err}");
    // A missing key file is not replaced by a fresh key.
    let other = dir.path().join("elsewhere");
    let err = PostgresStore::open(scratch.url(), &other).unwrap_err();
    assert_eq!(err.code(), "audit_key", "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!other.exists());
    // The right key still opens it, intact.
    let store = PostgresStore::open(scratch.url(), &key_file).unwrap();
    assert!(matches!(
        store.verify_audit("o").unwrap(),
        Verification::Intact { .. }
    ));
}

/// Two stores on one database (two processes, as far as PostgreSQL can tell), two writers each
/// on the same organisation, and a reader: revisions come out 1, 2, 3… with no gap or
/// duplicate, the reader never sees a later revision without every earlier one, and the audit
/// chain is intact.
#[test]
fn postgres_concurrent_writers_get_consecutive_revisions() {
    let Some(server) = postgres("postgres_concurrent_writers_get_consecutive_revisions") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let key = AuditKey::new([3; 32]);
    let a: Arc<dyn Store> =
        Arc::new(PostgresStore::open_with_key(scratch.url(), key.clone()).unwrap());
    let b: Arc<dyn Store> = Arc::new(PostgresStore::open_with_key(scratch.url(), key).unwrap());
    a.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    const WRITERS: usize = 4;
    const WRITES: usize = 25;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (store, done) = (Arc::clone(&b), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let log = store.operations("o", 0).unwrap();
                assert!(
                    log.iter()
                        .enumerate()
                        .all(|(i, e)| e.revision == i as u64 + 1),
                    "a gap in the log: {:?}",
                    log.iter().map(|e| e.revision).collect::<Vec<_>>()
                );
                reads += 1;
            }
            reads
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(if w % 2 == 0 { &a } else { &b });
            std::thread::spawn(move || {
                let op = setup_ops()[0].clone();
                let mut revisions = Vec::new();
                for i in 0..WRITES {
                    let mut mine = 0;
                    store
                        .write("o", &mut |tx| {
                            mine = tx.append_operation(&op, i as i64)?;
                            tx.append_audit(
                                &audit("create", &format!("w{w}"), "alice"),
                                i as i64,
                                -1,
                            )?;
                            Ok(())
                        })
                        .unwrap();
                    revisions.push(mine);
                }
                revisions
            })
        })
        .collect();
    let all = joined_revisions(writers);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let n = (WRITERS * WRITES) as u64;
    assert_eq!(all, (1..=n).collect::<Vec<_>>());
    assert_eq!(a.revision("o").unwrap(), n);
    assert_eq!(
        b.verify_audit("o").unwrap(),
        Verification::Intact { entries: n }
    );
}

/// The revisions writer threads got, in order.
fn joined_revisions(threads: Vec<std::thread::JoinHandle<Vec<u64>>>) -> Vec<u64> {
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    all
}

/// One writer's `write_known` from the revision it last wrote is sent in one round trip, its
/// row claimed only if it is still as the store left it (D144); writers on two stores (two
/// nodes) that overtake each other fall back to the locked write, read what the other wrote
/// and still get consecutive revisions with an intact audit chain and log.
#[test]
fn postgres_writes_in_one_round_trip_from_their_own_head() {
    let Some(server) = postgres("postgres_writes_in_one_round_trip_from_their_own_head") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let key = AuditKey::new([5; 32]);
    let a = Arc::new(PostgresStore::open_with_key(scratch.url(), key.clone()).unwrap());
    let b = Arc::new(PostgresStore::open_with_key(scratch.url(), key).unwrap());
    a.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    let op = setup_ops()[0].clone();
    // Writes from a writer's own head, alone: every one claimed, none overtaken.
    let write = |store: &PostgresStore, known: &mut u64, i: i64| {
        let mut calls = 0;
        let revision = store
            .write_known("o", *known, &mut |tx| {
                calls += 1;
                if tx.revision() > *known {
                    tx.operations_after(*known)?;
                }
                tx.append_operation(&op, i)?;
                tx.append_audit(&audit("create", &format!("r{i}"), "alice"), i, -1)
                    .map(|_| ())
            })
            .unwrap();
        *known = revision;
        calls
    };
    let mut known = 0;
    for i in 0..10 {
        assert_eq!(write(&a, &mut known, i), 1);
    }
    assert_eq!(known, 10);
    assert_eq!(a.claimed_writes(), (10, 0));
    // Another node writes: the first store's next claim is overtaken (nothing of it written)
    // and its write made again under the lock, after the other's.
    let mut known_b = 10;
    assert_eq!(write(&b, &mut known_b, 100), 1);
    assert_eq!(write(&a, &mut known, 11), 2);
    assert_eq!((known_b, known), (11, 12));
    assert_eq!(a.claimed_writes(), (11, 1));
    // Two nodes writing at once, each from what it last wrote.
    let threads: Vec<_> = [Arc::clone(&a), Arc::clone(&b)]
        .into_iter()
        .enumerate()
        .map(|(t, store)| {
            std::thread::spawn(move || {
                let op = setup_ops()[0].clone();
                let mut known = 12;
                let mut revisions = Vec::new();
                for i in 0..40 {
                    let revision = store
                        .write_known("o", known, &mut |tx| {
                            if tx.revision() > known {
                                tx.operations_after(known)?;
                            }
                            tx.append_operation(&op, i)?;
                            tx.append_audit(&audit("create", &format!("t{t}-{i}"), "bob"), i, -1)
                                .map(|_| ())
                        })
                        .unwrap();
                    known = revision;
                    revisions.push(revision);
                }
                revisions
            })
        })
        .collect();
    let all = joined_revisions(threads);
    assert_eq!(all, (13..=92).collect::<Vec<_>>());
    assert_eq!(b.operations("o", 0).unwrap().len(), 92);
    assert_eq!(
        b.verify_audit("o").unwrap(),
        Verification::Intact { entries: 92 }
    );
}

/// A claim is made only on the row exactly as this store left it: a head moved back (the last
/// rows removed) or a seal altered sends the write the locked way, which refuses the damaged
/// head as before, and nothing is written.
#[test]
fn postgres_a_claim_never_passes_over_a_damaged_head() {
    let Some(server) = postgres("postgres_a_claim_never_passes_over_a_damaged_head") else {
        return;
    };
    let tampers = [
        "DELETE FROM operations WHERE org = 'o' AND revision = 3; UPDATE organizations SET revision = 2, log_head_mac = (SELECT mac FROM operations WHERE org = 'o' AND revision = 2) WHERE name = 'o'",
        "UPDATE organizations SET log_head_seal = 'x' WHERE name = 'o'",
        "UPDATE organizations SET audit_head_seal = 'x' WHERE name = 'o'",
    ];
    for tamper in tampers {
        let scratch = ScratchDatabase::create(&server).unwrap();
        let store = PostgresStore::open_with_key(scratch.url(), AuditKey::new([6; 32])).unwrap();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        let op = setup_ops()[0].clone();
        let mut known = 0;
        for i in 0..3 {
            known = store
                .write_known("o", known, &mut |tx| {
                    tx.append_operation(&op, i).map(|_| ())
                })
                .unwrap();
        }
        postgres_testing::execute(scratch.url(), tamper).unwrap();
        let err = store
            .write_known("o", known, &mut |tx| {
                tx.append_operation(&op, 9).map(|_| ())
            })
            .unwrap_err();
        assert!(
            matches!(err, StoreError::CorruptLog { .. } | StoreError::Corrupt(_)),
            "{tamper}: {err:?}"
        );
        let (claimed, overtaken) = store.claimed_writes();
        assert_eq!((claimed, overtaken), (4, 1), "{tamper}");
    }
}

/// A closure that panics in the middle of a write leaves nothing behind, and the store goes on.
#[test]
fn postgres_a_panicking_write_commits_nothing() {
    let Some(server) = postgres("postgres_a_panicking_write_commits_nothing") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let store = PostgresStore::open_with_key(scratch.url(), AuditKey::new([4; 32])).unwrap();
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    fill(&store, "o");
    let n = setup_ops().len() as u64;
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        store.write("o", &mut |tx| {
            tx.append_operation(&setup_ops()[0], 1)?;
            panic!("the caller fails mid-write");
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(store.revision("o").unwrap(), n);
    // Every pooled connection still works (none was returned inside a transaction).
    for _ in 0..20 {
        store
            .write("o", &mut |tx| {
                tx.append_audit(&audit("x", "r", "alice"), 1, -1)
                    .map(|_| ())
            })
            .unwrap();
    }
    assert_eq!(store.revision("o").unwrap(), n);
    assert_eq!(
        store.verify_audit("o").unwrap(),
        Verification::Intact { entries: n + 20 }
    );
}

/// The store may be called, and dropped, inside an async task (a current-thread runtime, as
/// `#[tokio::test]` uses): it waits for its own runtime on a plain channel.
#[test]
fn postgres_works_inside_an_async_context() {
    let Some(server) = postgres("postgres_works_inside_an_async_context") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let url = scratch.url().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let revision = runtime.block_on(async move {
        let store = PostgresStore::open_with_key(&url, AuditKey::new([5; 32])).unwrap();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        fill(&store, "o");
        let revision = store.revision("o").unwrap();
        drop(store);
        revision
    });
    assert_eq!(revision, setup_ops().len() as u64);
}

#[test]
fn a_bad_database_url_is_refused_with_its_code() {
    let key = || AuditKey::new([1; 32]);
    for url in [
        "postgresql://postgres:secret@127.0.0.1:notaport/db",
        "postgres://127.0.0.1/db?sslmode=bogus",
        "mysql://127.0.0.1/db",
    ] {
        let err = PostgresStore::open_with_key(url, key()).unwrap_err();
        assert_eq!(err.code(), "bad_database_url", "{url}: {err}");
        assert!(
            !err.to_string().contains("secret"),
            "the password is shown: {err}"
        );
    }
}

#[test]
fn an_unreachable_database_is_refused_with_its_code() {
    // Nothing listens on port 1.
    let err = PostgresStore::open_with_key(
        "postgresql://postgres:secret@127.0.0.1:1/postgres",
        AuditKey::new([1; 32]),
    )
    .unwrap_err();
    assert_eq!(err.code(), "database_unreachable", "{err}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1"), "the target is named: {text}");
    assert!(!text.contains("secret"), "the password is shown: {text}");
    // A server that is there, but not the database.
    if let Some(server) = postgres("an_unreachable_database_is_refused_with_its_code") {
        let scratch = ScratchDatabase::create(&server).unwrap();
        let missing = format!("{}_missing", scratch.url());
        let err = PostgresStore::open_with_key(&missing, AuditKey::new([1; 32])).unwrap_err();
        assert_eq!(err.code(), "database_unreachable", "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}

#[test]
fn database_urls_are_recognised_and_redacted() {
    assert!(strata_store::is_postgres_url("postgres://h/db"));
    assert!(strata_store::is_postgres_url("postgresql://h/db"));
    assert!(!strata_store::is_postgres_url("strata.db"));
    assert!(!strata_store::is_postgres_url(
        Path::new("./postgres/strata.db").to_str().unwrap()
    ));
    assert_eq!(
        strata_store::redact_database_url("postgresql://u:pw@h:5432/db?password=x&sslmode=disable"),
        "postgresql://u:***@h:5432/db?password=***&sslmode=disable"
    );
    assert_eq!(
        strata_store::redact_database_url("postgres://u@h/db"),
        "postgres://u@h/db"
    );
}

// ----- The operation log's chain -----

/// What loading the organisation `o` says: its revision, or the error.
fn load_result(store: &dyn Store, org: &str) -> Result<u64, StoreError> {
    load_organization(store, org).map(|(_, revision)| revision)
}

/// Opens a fresh SQLite database with a filled organisation `o` (and `p`, empty), lets
/// `tamper` edit the file with plain SQL, reopens it and loads `org`.
fn tampered_log_sqlite(tamper: &str, org: &str) -> Result<u64, StoreError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let key = AuditKey::new([7; 32]);
    {
        let store = SqliteStore::open_with_key(&path, key.clone()).unwrap();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        store.create_organization("p", 0, &mut |_| Ok(())).unwrap();
        fill(&store, "o");
        assert_eq!(load_result(&store, "o").unwrap(), setup_ops().len() as u64);
    }
    sqlite_execute(&path, tamper);
    let store = SqliteStore::open_with_key(&path, key).unwrap();
    load_result(&store, org)
}

/// The same on a fresh PostgreSQL database.
fn tampered_log_postgres(server: &str, tamper: &str, org: &str) -> Result<u64, StoreError> {
    let scratch = ScratchDatabase::create(server).unwrap();
    let key = AuditKey::new([7; 32]);
    {
        let store = PostgresStore::open_with_key(scratch.url(), key.clone()).unwrap();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        store.create_organization("p", 0, &mut |_| Ok(())).unwrap();
        fill(&store, "o");
        assert_eq!(load_result(&store, "o").unwrap(), setup_ops().len() as u64);
    }
    postgres_testing::execute(scratch.url(), tamper).unwrap();
    let store = PostgresStore::open_with_key(scratch.url(), key).unwrap();
    load_result(&store, org)
}

/// Asserts a typed `corrupt_log` error naming `o`, `revision` and `damage`.
#[track_caller]
fn assert_corrupt(
    result: Result<u64, StoreError>,
    org: &str,
    revision: u64,
    damage: LogDamage,
    case: &str,
) {
    match result {
        Err(e @ StoreError::CorruptLog { .. }) => {
            assert_eq!(e.code(), "corrupt_log");
            let text = e.to_string();
            let StoreError::CorruptLog {
                organization,
                revision: r,
                damage: d,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!(
                (organization.as_str(), r, d),
                (org, revision, damage),
                "{case}: {text}"
            );
            assert!(text.contains(&format!("`{org}`")), "{case}: {text}");
        }
        other => panic!("{case}: expected corrupt_log, got {other:?}"),
    }
}

/// Every kind of tampering with the rows of a log, by plain SQL (the same statements on SQLite
/// and PostgreSQL).
fn log_tampering_is_detected(load: &dyn Fn(&str, &str) -> Result<u64, StoreError>) {
    let n = setup_ops().len() as u64;
    assert_eq!(load("SELECT 1", "o").unwrap(), n, "an untouched log loads");
    // Edited: the operation, the time, the MAC.
    assert_corrupt(
        load(
            "UPDATE operations SET operation = replace(operation, 'Contoso Ltd', 'Mallory Ltd') WHERE org = 'o' AND revision = 9",
            "o",
        ),
        "o",
        9,
        LogDamage::Edited,
        "edited operation",
    );
    assert_corrupt(
        load(
            "UPDATE operations SET operation = replace(operation, '\"Sales\"', '\"Contoso\"') WHERE org = 'o' AND revision = 5",
            "o",
        ),
        "o",
        5,
        LogDamage::Edited,
        "a user moved to another unit",
    );
    assert_corrupt(
        load(
            "UPDATE operations SET at_ms = at_ms + 1 WHERE org = 'o' AND revision = 4",
            "o",
        ),
        "o",
        4,
        LogDamage::Edited,
        "edited time",
    );
    assert_corrupt(
        load(
            "UPDATE operations SET mac = NULL WHERE org = 'o' AND revision = 3",
            "o",
        ),
        "o",
        3,
        LogDamage::Edited,
        "removed MAC",
    );
    assert_corrupt(
        load(
            "UPDATE operations SET mac = (SELECT mac FROM operations WHERE org = 'o' AND revision = 2) WHERE org = 'o' AND revision = 3",
            "o",
        ),
        "o",
        3,
        LogDamage::Edited,
        "another row's MAC",
    );
    // Appended: a forged row after the last one, the head left alone or moved to it.
    let forged = "INSERT INTO operations (org, revision, at_ms, operation, mac)
        SELECT org, 10, at_ms, replace(operation, 'Contoso Ltd', 'Forged'), mac FROM operations WHERE org = 'o' AND revision = 9;";
    assert_corrupt(
        load(forged, "o"),
        "o",
        10,
        LogDamage::Appended,
        "appended row",
    );
    assert_corrupt(
        load(
            &format!("{forged} UPDATE organizations SET revision = 10 WHERE name = 'o';"),
            "o",
        ),
        "o",
        10,
        LogDamage::Head,
        "appended row, head moved",
    );
    // Inserted in the middle: later rows shifted up by one.
    assert_corrupt(
        load(
            "UPDATE operations SET revision = revision + 100 WHERE org = 'o' AND revision >= 6;
             UPDATE operations SET revision = revision - 99 WHERE org = 'o' AND revision >= 100;
             INSERT INTO operations (org, revision, at_ms, operation, mac)
             SELECT org, 6, at_ms, operation, mac FROM operations WHERE org = 'o' AND revision = 5;",
            "o",
        ),
        "o",
        6,
        LogDamage::Edited,
        "inserted row",
    );
    // Deleted in the middle: the gap.
    assert_corrupt(
        load(
            "DELETE FROM operations WHERE org = 'o' AND revision = 5",
            "o",
        ),
        "o",
        5,
        LogDamage::Gap,
        "deleted row",
    );
    assert_corrupt(
        load(
            "DELETE FROM operations WHERE org = 'o' AND revision = 1",
            "o",
        ),
        "o",
        1,
        LogDamage::Gap,
        "deleted first row",
    );
    // Deleted at the end: detected against the sealed head, also when the head is moved back
    // to the row before (its seal does not match; only an old copy of the seal would).
    assert_corrupt(
        load(
            "DELETE FROM operations WHERE org = 'o' AND revision = 9",
            "o",
        ),
        "o",
        9,
        LogDamage::Truncated,
        "deleted last row",
    );
    assert_corrupt(
        load(
            "DELETE FROM operations WHERE org = 'o' AND revision >= 7",
            "o",
        ),
        "o",
        7,
        LogDamage::Truncated,
        "deleted last rows",
    );
    assert_corrupt(
        load(
            "DELETE FROM operations WHERE org = 'o' AND revision = 9;
             UPDATE organizations SET revision = 8, log_head_mac = (SELECT mac FROM operations WHERE org = 'o' AND revision = 8) WHERE name = 'o';",
            "o",
        ),
        "o",
        8,
        LogDamage::Head,
        "deleted last row, head moved back",
    );
    // Reordered: two rows swap places.
    assert_corrupt(
        load(
            "UPDATE operations SET revision = -5 WHERE org = 'o' AND revision = 5;
             UPDATE operations SET revision = 5 WHERE org = 'o' AND revision = 6;
             UPDATE operations SET revision = 6 WHERE org = 'o' AND revision = -5;",
            "o",
        ),
        "o",
        5,
        LogDamage::Edited,
        "reordered rows",
    );
    // Every MAC cleared, as if the log predated them: not chained again at start-up.
    assert_corrupt(
        load(
            "UPDATE operations SET mac = NULL WHERE org = 'o';
             UPDATE organizations SET log_head_mac = NULL, log_head_seal = NULL WHERE name = 'o';",
            "o",
        ),
        "o",
        9,
        LogDamage::Head,
        "MACs cleared",
    );
    // Another organisation's log, copied with its MACs and its head: the MACs name `o`.
    assert_corrupt(
        load(
            "INSERT INTO operations (org, revision, at_ms, operation, mac)
             SELECT 'p', revision, at_ms, operation, mac FROM operations WHERE org = 'o';
             UPDATE organizations SET revision = 9,
               log_head_mac = (SELECT log_head_mac FROM organizations WHERE name = 'o'),
               log_head_seal = (SELECT log_head_seal FROM organizations WHERE name = 'o')
             WHERE name = 'p';",
            "p",
        ),
        "p",
        9,
        LogDamage::Head,
        "copied log and head",
    );
    assert_corrupt(
        load(
            "INSERT INTO operations (org, revision, at_ms, operation, mac)
             SELECT 'p', revision, at_ms, operation, mac FROM operations WHERE org = 'o';",
            "p",
        ),
        "p",
        1,
        LogDamage::Appended,
        "copied log",
    );
}

#[test]
fn sqlite_detects_log_tampering() {
    log_tampering_is_detected(&tampered_log_sqlite);
}

#[test]
fn postgres_detects_log_tampering() {
    if let Some(server) = postgres("postgres_detects_log_tampering") {
        log_tampering_is_detected(&|sql, org| tampered_log_postgres(&server, sql, org));
    }
}

/// The follower's read (`operations(after)`) checks the rows it returns from the anchor on;
/// a write refuses a head that was moved; the memory store does the same.
fn log_reads_and_writes_check_the_chain(store: &dyn Store, tamper: &dyn Fn(&str)) {
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    fill(store, "o");
    assert_eq!(store.operations("o", 4).unwrap().len(), 5);
    assert_eq!(store.operations("o", 9).unwrap().len(), 0);
    tamper("edit 6");
    assert_corrupt(
        store.operations("o", 4).map(|e| e.len() as u64),
        "o",
        6,
        LogDamage::Edited,
        "catch-up past an edited row",
    );
    // Rows at or before the anchor were checked by the read that reached them.
    assert_eq!(store.operations("o", 6).unwrap().len(), 3);
    assert_corrupt(
        load_result(store, "o"),
        "o",
        6,
        LogDamage::Edited,
        "full load",
    );
    tamper("move head");
    let err = store
        .write("o", &mut |tx| {
            tx.append_operation(&setup_ops()[0], 1).map(|_| ())
        })
        .unwrap_err();
    assert_corrupt(Err(err), "o", 8, LogDamage::Head, "write on a moved head");
}

#[test]
fn memory_store_checks_its_log() {
    let store = MemoryStore::new().unwrap();
    log_reads_and_writes_check_the_chain(&store, &|what| {
        store.tamper_log("o", &mut |rows, head| match what {
            "edit 6" => rows[5].at_ms += 1,
            _ => {
                rows.pop();
                head.0 -= 1;
                head.1 = rows.last().unwrap().mac.clone().unwrap();
            }
        });
    });
}

#[test]
fn sqlite_reads_and_writes_check_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let store = SqliteStore::open_with_key(&path, AuditKey::new([7; 32])).unwrap();
    log_reads_and_writes_check_the_chain(&store, &|what| {
        sqlite_execute(
            &path,
            match what {
                "edit 6" => "UPDATE operations SET at_ms = at_ms + 1 WHERE revision = 6",
                _ => "DELETE FROM operations WHERE revision = 9;
                 UPDATE organizations SET revision = 8, log_head_mac = (SELECT mac FROM operations WHERE revision = 8);",
            },
        );
    });
}

/// A log written before rows carried MACs is chained once, when the store first opens with
/// the key (its rows trusted as they are then); it then loads, takes writes, and is checked.
fn legacy_logs_are_chained_once(open: &dyn Fn() -> Box<dyn Store>, sql: &dyn Fn(&str)) {
    let n = setup_ops().len() as u64;
    {
        let store = open();
        store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
        store
            .create_organization("empty", 0, &mut |_| Ok(()))
            .unwrap();
        fill(store.as_ref(), "o");
    }
    // As the schema migration leaves a database written by an earlier version.
    sql("UPDATE operations SET mac = NULL;
         UPDATE organizations SET log_head_mac = NULL, log_head_seal = NULL;
         DELETE FROM schema_migrations WHERE version = 1000;");
    let store = open();
    assert_eq!(load_result(store.as_ref(), "o").unwrap(), n);
    assert_eq!(load_result(store.as_ref(), "empty").unwrap(), 0);
    let carol = op(json!({"op": "add_user", "name": "carol", "business_unit": "Sales"}));
    store
        .write("o", &mut |tx| tx.append_operation(&carol, 1).map(|_| ()))
        .unwrap();
    assert_eq!(load_result(store.as_ref(), "o").unwrap(), n + 1);
    drop(store);
    // Once only: MACs cleared afterwards are damage, not a log to chain.
    sql("UPDATE operations SET mac = NULL WHERE revision = 2");
    assert_corrupt(
        load_result(open().as_ref(), "o"),
        "o",
        2,
        LogDamage::Edited,
        "a MAC cleared after chaining",
    );
}

/// A file written before organisations had tables of their own (D161): its shared
/// `operations` and `audit` tables, as the schema's first migrations made them.
const SHARED_TABLES: &str = "CREATE TABLE operations (
        org TEXT NOT NULL, revision INTEGER NOT NULL, at_ms INTEGER NOT NULL,
        operation TEXT NOT NULL, mac TEXT, PRIMARY KEY (org, revision)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE audit (
        org TEXT NOT NULL, seq INTEGER NOT NULL, revision INTEGER NOT NULL,
        at_ms INTEGER NOT NULL, retention_days INTEGER NOT NULL, action TEXT NOT NULL,
        table_name TEXT, record TEXT, user_name TEXT, impersonator TEXT, detail TEXT NOT NULL,
        hash TEXT NOT NULL, indexed INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (org, seq)
    ) STRICT;
    CREATE INDEX audit_by_record ON audit (org, record, seq) WHERE indexed = 1;
    CREATE INDEX audit_by_user ON audit (org, user_name, seq) WHERE indexed = 1;
    CREATE INDEX audit_by_time ON audit (org, at_ms) WHERE indexed = 1;
    CREATE INDEX audit_by_table ON audit (org, table_name, seq) WHERE indexed = 1;";

/// Puts a file's organisations back into the shared tables, as an earlier version left them.
fn back_to_shared_tables(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let orgs: Vec<(String, i64)> = conn
        .prepare("SELECT name, number FROM organizations")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut sql = SHARED_TABLES.to_owned();
    let columns = "seq, revision, at_ms, retention_days, action, table_name, record, user_name, impersonator, detail, hash, indexed";
    for (org, n) in &orgs {
        sql.push_str(&format!(
            "INSERT INTO operations (org, revision, at_ms, operation, mac) SELECT '{org}', revision, at_ms, operation, mac FROM log_{n};
             INSERT INTO audit (org, {columns}) SELECT '{org}', {columns} FROM audit_{n};
             DROP TABLE log_{n}; DROP TABLE audit_{n};"
        ));
    }
    sql.push_str(
        "DROP INDEX organizations_by_number;
         ALTER TABLE organizations DROP COLUMN number;
         DELETE FROM schema_migrations WHERE version = 6;",
    );
    conn.execute_batch(&sql).unwrap();
}

/// Every table of the file whose name starts with `prefix`.
fn tables_named(path: &Path, prefix: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ?1 || '%' ORDER BY name",
    )
    .unwrap()
    .query_map([prefix], |r| r.get(0))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// D161: opened by this version, a file with the shared tables moves every organisation's
/// rows into tables of its own, once, and reads exactly as before: the same log (its chain
/// intact), the same audit (indexed and unindexed rows, its chain intact), writes going on.
#[test]
fn sqlite_moves_the_shared_tables_to_tables_per_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let key = AuditKey::new([7; 32]);
    let open = || {
        SqliteStore::open_with_key(&path, key.clone())
            .unwrap()
            .with_audit_index_batch(4)
    };
    let n = setup_ops().len() as u64;
    let by_record = AuditQuery {
        record: Some("r1".to_owned()),
        limit: 1_000,
        ..AuditQuery::default()
    };
    let before = {
        let store = open();
        for org in ["o", "p", "empty"] {
            store.create_organization(org, 0, &mut |_| Ok(())).unwrap();
        }
        fill(&store, "o");
        fill(&store, "p");
        (
            all_audit(&store, "o"),
            all_audit(&store, "p"),
            store.audit("o", &by_record).unwrap(),
        )
    };
    back_to_shared_tables(&path);
    assert!(tables_named(&path, "log_").is_empty());
    let store = open();
    assert_eq!(tables_named(&path, "log_"), ["log_1", "log_2", "log_3"]);
    assert!(tables_named(&path, "operations").is_empty());
    for org in ["o", "p"] {
        assert_eq!(load_result(&store, org).unwrap(), n);
        assert!(matches!(
            store.verify_audit(org).unwrap(),
            Verification::Intact { .. }
        ));
    }
    assert_eq!(load_result(&store, "empty").unwrap(), 0);
    assert_eq!(
        (
            all_audit(&store, "o"),
            all_audit(&store, "p"),
            store.audit("o", &by_record).unwrap()
        ),
        before
    );
    // Writes go on where the moved rows end.
    let carol = op(json!({"op": "add_user", "name": "carol", "business_unit": "Sales"}));
    store
        .write("o", &mut |tx| {
            tx.append_operation(&carol, 1)?;
            tx.append_audit(&audit("update", "r1", "carol"), 20_000, -1)
                .map(|_| ())
        })
        .unwrap();
    assert_eq!(load_result(&store, "o").unwrap(), n + 1);
    assert_eq!(
        store.audit("o", &by_record).unwrap().len(),
        before.2.len() + 1
    );
    // Once: opened again, nothing moves.
    drop(store);
    let store = open();
    assert_eq!(load_result(&store, "o").unwrap(), n + 1);
    // Deleted, an organisation's tables go with it; a new one gets tables of its own.
    store.delete_organization("p").unwrap();
    assert_eq!(tables_named(&path, "log_"), ["log_1", "log_2"]);
    assert_eq!(tables_named(&path, "audit_"), ["audit_1", "audit_2"]);
    store.create_organization("q", 0, &mut |_| Ok(())).unwrap();
    fill(&store, "q");
    assert_eq!(load_result(&store, "q").unwrap(), n);
    assert_eq!(load_result(&store, "o").unwrap(), n + 1);
}

#[test]
fn sqlite_chains_legacy_logs_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    legacy_logs_are_chained_once(
        &|| Box::new(SqliteStore::open_with_key(&path, AuditKey::new([7; 32])).unwrap()),
        &|sql| sqlite_execute(&path, sql),
    );
}

#[test]
fn postgres_chains_legacy_logs_once() {
    let Some(server) = postgres("postgres_chains_legacy_logs_once") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    legacy_logs_are_chained_once(
        &|| Box::new(PostgresStore::open_with_key(scratch.url(), AuditKey::new([7; 32])).unwrap()),
        &|sql| postgres_testing::execute(scratch.url(), sql).unwrap(),
    );
}

// ----- Creation: the organisation and its first entries in one transaction -----

/// The audit entry of an organisation's creation, as the application writes it.
fn created(name: &str) -> AuditRecord {
    AuditRecord {
        action: "create_organization".to_owned(),
        table: None,
        record: None,
        user: Some("#root".to_owned()),
        impersonator: None,
        detail: json!({ "name": name }),
        detail_text: None,
    }
}

fn all_audit(store: &dyn Store, org: &str) -> Vec<strata_store::AuditEntry> {
    store
        .audit(
            org,
            &AuditQuery {
                limit: 1_000,
                ..AuditQuery::default()
            },
        )
        .unwrap()
}

/// An organisation is created with what its creation appends (the audit entry of its creation,
/// and a bulk load's first operations) in one transaction: all of it, chained, or nothing.
fn creation_is_one_transaction(store: &dyn Store) {
    // Created with its audit entry: the first entry of the chain, which later writes extend.
    let revision = store
        .create_organization("o", 5, &mut |tx| {
            tx.append_audit(&created("o"), 5, -1).map(|_| ())
        })
        .unwrap();
    assert_eq!(revision, 0);
    let entries = all_audit(store, "o");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0].seq, entries[0].revision, entries[0].at_ms),
        (1, 0, 5)
    );
    assert_eq!(entries[0].record, created("o"));
    fill(store, "o");
    let n = setup_ops().len() as u64;
    assert_eq!(
        store.verify_audit("o").unwrap(),
        Verification::Intact { entries: n + 1 }
    );

    // A name in use: refused before the closure runs, and nothing written.
    let mut called = false;
    let err = store.create_organization("o", 6, &mut |tx| {
        called = true;
        tx.append_audit(&created("o"), 6, -1).map(|_| ())
    });
    assert!(
        matches!(err, Err(StoreError::DuplicateOrganization(_))),
        "{err:?}"
    );
    assert!(!called);
    assert_eq!(all_audit(store, "o").len() as u64, n + 1);
    assert_eq!(store.revision("o").unwrap(), n);

    // A closure that fails after appending (an audit entry, an operation) leaves no
    // organisation: not listed, unknown, and the name free again.
    let err = store.create_organization("p", 7, &mut |tx| {
        tx.append_audit(&created("p"), 7, -1)?;
        tx.append_operation(&setup_ops()[0], 7)?;
        Err(StoreError::Aborted(
            "the audit entry could not be written".to_owned(),
        ))
    });
    assert!(matches!(err, Err(StoreError::Aborted(_))), "{err:?}");
    assert_eq!(store.organizations().unwrap(), vec![("o".to_owned(), n)]);
    assert!(matches!(
        store.revision("p"),
        Err(StoreError::UnknownOrganization(_))
    ));

    // A bulk load's first chunk: the creation's entry, then operations, in one transaction.
    let revision = store
        .create_organization("p", 8, &mut |tx| {
            tx.append_audit(&created("p"), 8, -1)?;
            for o in &setup_ops()[..3] {
                tx.append_operation(o, 8)?;
                tx.append_audit(&audit(&o.name(), "r", "alice"), 8, -1)?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(revision, 3);
    assert_eq!(store.operations("p", 0).unwrap().len(), 3);
    assert_eq!(
        store.verify_audit("p").unwrap(),
        Verification::Intact { entries: 4 }
    );
    let entries = all_audit(store, "p");
    assert_eq!(entries[0].record, created("p"));
    assert_eq!(
        entries.iter().map(|e| e.revision).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(
        store.organizations().unwrap(),
        vec![("o".to_owned(), n), ("p".to_owned(), 3)]
    );
}

#[test]
fn memory_store_creates_an_organisation_in_one_transaction() {
    creation_is_one_transaction(&MemoryStore::new().unwrap());
}

#[test]
fn sqlite_store_creates_an_organisation_in_one_transaction() {
    let dir = tempfile::tempdir().unwrap();
    creation_is_one_transaction(&SqliteStore::open(&dir.path().join("strata.db")).unwrap());
}

#[test]
fn postgres_store_creates_an_organisation_in_one_transaction() {
    let Some(server) = postgres("postgres_store_creates_an_organisation_in_one_transaction") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let store = PostgresStore::open_with_key(scratch.url(), AuditKey::new([7; 32])).unwrap();
    creation_is_one_transaction(&store);
}

/// When the database itself refuses the audit entry (a trigger, as a full disk or a broken
/// constraint would), the organisation is not created either.
fn a_refused_audit_entry_leaves_no_organisation(store: &dyn Store, refuse_audit: &dyn Fn()) {
    refuse_audit();
    let err = store.create_organization("o", 1, &mut |tx| {
        tx.append_audit(&created("o"), 1, -1).map(|_| ())
    });
    assert!(matches!(err, Err(StoreError::Database(_))), "{err:?}");
    assert_eq!(store.organizations().unwrap(), vec![]);
    assert!(matches!(
        store.revision("o"),
        Err(StoreError::UnknownOrganization(_))
    ));
    // Without an audit entry, the same creation goes through: only the entry was refused.
    store.create_organization("o", 1, &mut |_| Ok(())).unwrap();
    assert_eq!(store.organizations().unwrap(), vec![("o".to_owned(), 0)]);
}

#[test]
fn sqlite_a_refused_audit_entry_leaves_no_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let store = SqliteStore::open(&path).unwrap();
    // The audit's table is made with the organisation (D161): the database refuses the
    // entry where the creation's transaction moves the audit's head.
    a_refused_audit_entry_leaves_no_organisation(&store, &|| {
        sqlite_execute(
            &path,
            "CREATE TRIGGER refuse_audit BEFORE UPDATE OF audit_head_seq ON organizations
             WHEN NEW.audit_head_seq > 0
             BEGIN SELECT RAISE(ABORT, 'audit refused'); END;",
        );
    });
}

#[test]
fn postgres_a_refused_audit_entry_leaves_no_organisation() {
    let Some(server) = postgres("postgres_a_refused_audit_entry_leaves_no_organisation") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let store = PostgresStore::open_with_key(scratch.url(), AuditKey::new([7; 32])).unwrap();
    a_refused_audit_entry_leaves_no_organisation(&store, &|| {
        postgres_testing::execute(
            scratch.url(),
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$;
             CREATE TRIGGER refuse_audit BEFORE INSERT ON audit
               FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
        )
        .unwrap();
    });
}

// ----- The audit chain belongs to its organisation -----

/// HMAC-SHA-256, hex: to write seals as an earlier version did.
fn hmac_hex(key: [u8; 32], message: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut inner = Sha256::new();
    inner.update(key.map(|b| b ^ 0x36));
    inner.update([0x36u8; 32]);
    inner.update(message.as_bytes());
    let mut outer = Sha256::new();
    outer.update(key.map(|b| b ^ 0x5c));
    outer.update([0x5cu8; 32]);
    outer.update(inner.finalize());
    hex::encode(outer.finalize())
}

/// Two organisations, `o` with nine entries and `p` with two of its own.
fn two_chains(store: &dyn Store) {
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    store.create_organization("p", 0, &mut |_| Ok(())).unwrap();
    fill(store, "o");
    store
        .write("p", &mut |tx| {
            tx.append_audit(&audit("create", "x", "carol"), 1, -1)?;
            tx.append_audit(&audit("delete", "x", "carol"), 2, -1)?;
            Ok(())
        })
        .unwrap();
}

/// Another organisation's whole chain (its entries, head and anchor) put in place of an
/// organisation's own: the seals name the organisation, so it does not verify there (it used
/// to: neither the entries nor the seals named it).
fn a_chain_moved_to_another_organisation_is_detected(
    open: &dyn Fn() -> Box<dyn Store>,
    sql: &dyn Fn(&str),
) {
    two_chains(open().as_ref());
    sql("DELETE FROM audit WHERE org = 'p';
         INSERT INTO audit (org, seq, revision, at_ms, retention_days, action, table_name, record, user_name, impersonator, detail, hash)
         SELECT 'p', seq, revision, at_ms, retention_days, action, table_name, record, user_name, impersonator, detail, hash FROM audit WHERE org = 'o';
         UPDATE organizations SET (audit_head_seq, audit_head_hash, audit_head_seal, audit_anchor_seq, audit_anchor_hash, audit_anchor_seal) =
           (SELECT audit_head_seq, audit_head_hash, audit_head_seal, audit_anchor_seq, audit_anchor_hash, audit_anchor_seal FROM organizations WHERE name = 'o')
         WHERE name = 'p';");
    let store = open();
    let v = store.verify_audit("p").unwrap();
    assert!(matches!(v, Verification::Tampered { seq: 9, .. }), "{v:?}");
    assert!(matches!(
        store.verify_audit("o").unwrap(),
        Verification::Intact { entries: 9 }
    ));
    // Nor is it taken up and sealed by the next write there.
    let err = store.write("p", &mut |tx| {
        tx.append_audit(&audit("update", "x", "carol"), 3, -1)
            .map(|_| ())
    });
    assert!(matches!(err, Err(StoreError::Corrupt(_))), "{err:?}");
    assert!(matches!(
        store.verify_audit("p").unwrap(),
        Verification::Tampered { .. }
    ));
}

/// The last entries removed and the head moved back over them by hand: verification says so
/// (it did already), and the next write refuses to extend that head instead of sealing it
/// anew, which used to hide the removal for good.
fn a_moved_back_head_is_not_sealed_by_the_next_write(
    open: &dyn Fn() -> Box<dyn Store>,
    sql: &dyn Fn(&str),
) {
    two_chains(open().as_ref());
    sql("DELETE FROM audit WHERE org = 'o' AND seq = 9;
         UPDATE organizations SET audit_head_seq = 8, audit_head_hash = (SELECT hash FROM audit WHERE org = 'o' AND seq = 8) WHERE name = 'o';");
    let store = open();
    let err = store.write("o", &mut |tx| {
        tx.append_audit(&audit("update", "r0", "alice"), 10_000, -1)
            .map(|_| ())
    });
    assert!(matches!(err, Err(StoreError::Corrupt(_))), "{err:?}");
    assert!(
        err.unwrap_err()
            .to_string()
            .contains("sealed head of the audit chain"),
        "the error says what is wrong"
    );
    assert!(matches!(
        store.verify_audit("o").unwrap(),
        Verification::Tampered { .. }
    ));
    // Nor by an expiry, which moves the anchor: refused the same way when the anchor was
    // moved by hand.
    sql("UPDATE organizations SET audit_anchor_seq = 1, audit_anchor_hash = (SELECT hash FROM audit WHERE org = 'p' AND seq = 1), audit_anchor_seal = 'forged' WHERE name = 'p';
         DELETE FROM audit WHERE org = 'p' AND seq = 1;");
    let err = store.expire_audit("p", i64::MAX);
    assert!(matches!(err, Err(StoreError::Corrupt(_))), "{err:?}");
    // The other organisation's writes go on.
    store
        .write("p", &mut |tx| {
            tx.append_audit(&audit("update", "x", "carol"), 3, -1)
                .map(|_| ())
        })
        .unwrap();
}

/// Heads and anchors sealed before seals named the organisation are re-sealed once, when a
/// store first opens with the key: only those whose old seal holds.
fn legacy_audit_seals_are_resealed_once(
    open: &dyn Fn() -> Box<dyn Store>,
    sql: &dyn Fn(&str),
    key: [u8; 32],
) {
    let last_of_o = |store: &dyn Store| {
        let entries = all_audit(store, "o");
        let last = entries.last().unwrap();
        (last.seq, last.hash.clone())
    };
    let anchor = {
        let store = open();
        two_chains(store.as_ref());
        let fourth = all_audit(store.as_ref(), "o")[3].hash.clone();
        // The first four entries of `o` expire: the fourth becomes its anchor.
        assert_eq!(store.expire_audit("o", 10 * 86_400_000).unwrap(), 4);
        fourth
    };
    // As an earlier version sealed them: `o`'s head and anchor under the old form, `p`'s head
    // sealed wrongly.
    let (seq, hash) = last_of_o(open().as_ref());
    sql(&format!(
        "UPDATE organizations SET audit_head_seal = '{}', audit_anchor_seal = '{}' WHERE name = 'o';
         UPDATE organizations SET audit_head_seal = 'forged' WHERE name = 'p';
         DELETE FROM schema_migrations WHERE version = 1001;",
        hmac_hex(key, &format!("head\n{seq}\n{hash}")),
        hmac_hex(key, &format!("anchor\n4\n{anchor}")),
    ));
    let store = open();
    assert_eq!(
        store.verify_audit("o").unwrap(),
        Verification::Intact { entries: 5 }
    );
    store
        .write("o", &mut |tx| {
            tx.append_audit(&audit("update", "r0", "alice"), 10_000, -1)
                .map(|_| ())
        })
        .unwrap();
    assert_eq!(
        store.verify_audit("o").unwrap(),
        Verification::Intact { entries: 6 }
    );
    // A seal that did not hold is not laundered.
    assert!(matches!(
        store.verify_audit("p").unwrap(),
        Verification::Tampered { .. }
    ));
    // Once only: a seal of the old form written afterwards is damage.
    let (seq, hash) = last_of_o(store.as_ref());
    drop(store);
    sql(&format!(
        "UPDATE organizations SET audit_head_seal = '{}' WHERE name = 'o'",
        hmac_hex(key, &format!("head\n{seq}\n{hash}"))
    ));
    assert!(matches!(
        open().verify_audit("o").unwrap(),
        Verification::Tampered { .. }
    ));
}

fn sqlite_at(path: &Path) -> (impl Fn() -> Box<dyn Store> + '_, impl Fn(&str) + '_) {
    (
        move || -> Box<dyn Store> {
            Box::new(SqliteStore::open_with_key(path, AuditKey::new([7; 32])).unwrap())
        },
        move |sql: &str| sqlite_execute(path, sql),
    )
}

fn postgres_at(url: &str) -> (impl Fn() -> Box<dyn Store> + '_, impl Fn(&str) + '_) {
    (
        move || -> Box<dyn Store> {
            Box::new(PostgresStore::open_with_key(url, AuditKey::new([7; 32])).unwrap())
        },
        move |sql: &str| postgres_testing::execute(url, sql).unwrap(),
    )
}

#[test]
fn sqlite_audit_chains_belong_to_their_organisation() {
    for test in [
        a_chain_moved_to_another_organisation_is_detected,
        a_moved_back_head_is_not_sealed_by_the_next_write,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.db");
        let (open, sql) = sqlite_at(&path);
        test(&open, &sql);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let (open, sql) = sqlite_at(&path);
    legacy_audit_seals_are_resealed_once(&open, &sql, [7; 32]);
}

#[test]
fn postgres_audit_chains_belong_to_their_organisation() {
    let Some(server) = postgres("postgres_audit_chains_belong_to_their_organisation") else {
        return;
    };
    for test in [
        a_chain_moved_to_another_organisation_is_detected,
        a_moved_back_head_is_not_sealed_by_the_next_write,
    ] {
        let scratch = ScratchDatabase::create(&server).unwrap();
        let (open, sql) = postgres_at(scratch.url());
        test(&open, &sql);
    }
    let scratch = ScratchDatabase::create(&server).unwrap();
    let (open, sql) = postgres_at(scratch.url());
    legacy_audit_seals_are_resealed_once(&open, &sql, [7; 32]);
}

// ----- Checkpoints -----

/// Bytes of `n` with no period (so that chunks moved around change them).
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            (x ^ (x >> 27)) as u8 ^ seed
        })
        .collect()
}

/// Nine MiB: three chunks of at most 4 MiB.
const BIG: usize = 9 << 20;

/// Checkpoints as every backend keeps them: written at a revision its log holds, read back
/// exactly (chunked when large), one per revision, the newest `KEEP_CHECKPOINTS` kept, the log
/// untouched (the tail after a checkpoint reads and verifies), gone with their organisation.
fn checkpoint_conformance(store: &dyn Store) {
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    store.create_organization("p", 0, &mut |_| Ok(())).unwrap();
    fill(store, "o");
    let n = setup_ops().len() as u64;
    assert!(store.checkpoints("o").unwrap().is_empty());
    assert_eq!(store.read_checkpoint("o", n).unwrap(), None);
    // Only at a revision the log holds.
    for revision in [0, n + 1] {
        assert!(matches!(
            store.put_checkpoint("o", revision, 1, b"x", 5),
            Err(StoreError::Aborted(_))
        ));
    }
    assert!(matches!(
        store.put_checkpoint("p", 1, 1, b"x", 5),
        Err(StoreError::Aborted(_))
    ));
    assert!(matches!(
        store.put_checkpoint("nope", 1, 1, b"x", 5),
        Err(StoreError::UnknownOrganization(_))
    ));
    assert!(matches!(
        store.checkpoints("nope"),
        Err(StoreError::UnknownOrganization(_))
    ));
    let small = pattern(1000, 1);
    assert!(store.put_checkpoint("o", 5, 1, &small, 100).unwrap());
    // One per revision: the second is not written.
    assert!(!store.put_checkpoint("o", 5, 1, b"other", 200).unwrap());
    assert_eq!(store.read_checkpoint("o", 5).unwrap(), Some(small.clone()));
    assert_eq!(store.read_checkpoint("o", 4).unwrap(), None);
    let big = pattern(BIG, 2);
    assert!(store.put_checkpoint("o", n, 1, &big, 300).unwrap());
    assert_eq!(
        store.checkpoints("o").unwrap(),
        vec![
            strata_store::CheckpointInfo {
                revision: n,
                format: 1,
                length: BIG as u64,
                at_ms: 300
            },
            strata_store::CheckpointInfo {
                revision: 5,
                format: 1,
                length: 1000,
                at_ms: 100
            },
        ]
    );
    assert_eq!(store.read_checkpoint("o", n).unwrap().unwrap(), big);
    // A third: the oldest goes.
    assert!(store.put_checkpoint("o", 7, 2, b"seven", 400).unwrap());
    assert_eq!(strata_store::KEEP_CHECKPOINTS, 2);
    let kept: Vec<u64> = store
        .checkpoints("o")
        .unwrap()
        .iter()
        .map(|c| c.revision)
        .collect();
    assert_eq!(kept, vec![n, 7]);
    assert_eq!(store.read_checkpoint("o", 5).unwrap(), None);
    assert_eq!(
        store.read_checkpoint("o", 7).unwrap().as_deref(),
        Some(&b"seven"[..])
    );
    // The log is untouched: it loads whole, and the tail after a checkpoint verifies.
    assert_eq!(load_result(store, "o").unwrap(), n);
    store
        .write("o", &mut |tx| {
            tx.append_operation(&setup_ops()[0], 99_000)?;
            Ok(())
        })
        .unwrap();
    let tail = store.operations("o", n).unwrap();
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0].revision, n + 1);
    assert_eq!(store.read_checkpoint("o", n).unwrap().unwrap(), big);
    // Gone with the organisation.
    store.delete_organization("o").unwrap();
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    fill(store, "o");
    assert!(store.checkpoints("o").unwrap().is_empty());
    assert_eq!(store.read_checkpoint("o", n).unwrap(), None);
}

#[test]
fn memory_store_keeps_checkpoints() {
    checkpoint_conformance(&MemoryStore::new().unwrap());
}

#[test]
fn sqlite_store_keeps_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    checkpoint_conformance(&SqliteStore::open(&path).unwrap());
    // Foreign keys are not enforced (D151): the checkpoints left out and the organisation
    // deleted took their chunks with them.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM checkpoint_chunks c WHERE NOT EXISTS (SELECT 1 FROM checkpoints k WHERE k.org = c.org AND k.revision = c.revision)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

#[test]
fn postgres_store_keeps_checkpoints() {
    let Some(server) = postgres("postgres_store_keeps_checkpoints") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = PostgresStore::open(scratch.url(), &dir.path().join("audit-key")).unwrap();
    checkpoint_conformance(&store);
}

/// Fills `o` and `p`, and writes checkpoints of `o` at revision 5 (small) and 9 (three chunks).
fn checkpointed(store: &dyn Store) {
    store.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    store.create_organization("p", 0, &mut |_| Ok(())).unwrap();
    fill(store, "o");
    fill(store, "p");
    assert!(
        store
            .put_checkpoint("o", 5, 1, &pattern(1000, 1), 10)
            .unwrap()
    );
    assert!(
        store
            .put_checkpoint("o", 9, 1, &pattern(BIG, 2), 20)
            .unwrap()
    );
}

/// Asserts a typed `corrupt_checkpoint` error naming `o` and revision 9.
#[track_caller]
fn assert_corrupt_checkpoint(result: Result<Option<Vec<u8>>, StoreError>, case: &str) {
    match result {
        Err(e @ StoreError::CorruptCheckpoint { .. }) => {
            assert_eq!(e.code(), "corrupt_checkpoint");
            let text = e.to_string();
            assert!(
                text.contains("`o`") && text.contains("revision 9"),
                "{case}: {text}"
            );
        }
        Err(e) => panic!("{case}: expected corrupt_checkpoint, got {e:?}"),
        Ok(b) => panic!(
            "{case}: expected corrupt_checkpoint, got {:?} bytes",
            b.map(|b| b.len())
        ),
    }
}

/// Every kind of damage to a stored checkpoint, by plain SQL (the same statements on SQLite
/// and PostgreSQL): `read` tampers, reopens and reads the checkpoint of `o` at 9.
/// What reading a checkpoint gives.
type Read = Result<Option<Vec<u8>>, StoreError>;

fn checkpoint_tampering_is_detected(read: &dyn Fn(&str) -> Read) {
    assert_eq!(
        read("SELECT 1").unwrap(),
        Some(pattern(BIG, 2)),
        "an untouched checkpoint reads"
    );
    let cases = [
        (
            "torn: a middle chunk missing",
            "DELETE FROM checkpoint_chunks WHERE org = 'o' AND revision = 9 AND seq = 1",
        ),
        (
            "torn: the last chunk missing",
            "DELETE FROM checkpoint_chunks WHERE org = 'o' AND revision = 9 AND seq = 2",
        ),
        (
            "torn: every chunk missing",
            "DELETE FROM checkpoint_chunks WHERE org = 'o' AND revision = 9",
        ),
        (
            "a length that does not add up",
            "UPDATE checkpoints SET length = length + 1 WHERE org = 'o' AND revision = 9",
        ),
        (
            "bytes replaced",
            "UPDATE checkpoint_chunks SET bytes = (SELECT bytes FROM checkpoint_chunks WHERE org = 'o' AND revision = 5 AND seq = 0) WHERE org = 'o' AND revision = 9 AND seq = 2",
        ),
        (
            "chunks reordered",
            "UPDATE checkpoint_chunks SET seq = seq + 10 WHERE org = 'o' AND revision = 9 AND seq < 2;
             UPDATE checkpoint_chunks SET seq = 1 WHERE org = 'o' AND revision = 9 AND seq = 10;
             UPDATE checkpoint_chunks SET seq = 0 WHERE org = 'o' AND revision = 9 AND seq = 11",
        ),
        (
            "the format edited",
            "UPDATE checkpoints SET format = 2 WHERE org = 'o' AND revision = 9",
        ),
        (
            "the time edited",
            "UPDATE checkpoints SET at_ms = 21 WHERE org = 'o' AND revision = 9",
        ),
        (
            "the MAC edited",
            "UPDATE checkpoints SET mac = '00' WHERE org = 'o' AND revision = 9",
        ),
        (
            "the log MAC it names edited",
            "UPDATE checkpoints SET log_mac = (SELECT mac FROM operations WHERE org = 'o' AND revision = 8) WHERE org = 'o' AND revision = 9",
        ),
        (
            "the log row at its revision edited",
            "UPDATE operations SET mac = (SELECT mac FROM operations WHERE org = 'o' AND revision = 8) WHERE org = 'o' AND revision = 9",
        ),
        (
            "the log row at its revision removed",
            "DELETE FROM operations WHERE org = 'o' AND revision = 9",
        ),
    ];
    for (case, sql) in cases {
        assert_corrupt_checkpoint(read(sql), case);
    }
}

/// A checkpoint copied to another organisation (whose log has a row at the same revision) or
/// to another revision is refused there.
fn a_moved_checkpoint_is_refused(read: &dyn Fn(&str, &str, u64) -> Read) {
    let copy = "INSERT INTO checkpoints (org, revision, format, at_ms, length, log_mac, mac) SELECT 'p', revision, format, at_ms, length, log_mac, mac FROM checkpoints WHERE org = 'o';
                INSERT INTO checkpoint_chunks (org, revision, seq, bytes) SELECT 'p', revision, seq, bytes FROM checkpoint_chunks WHERE org = 'o'";
    assert!(matches!(
        read(copy, "p", 9),
        Err(StoreError::CorruptCheckpoint { .. })
    ));
    let moved = "INSERT INTO checkpoints (org, revision, format, at_ms, length, log_mac, mac) SELECT org, 8, format, at_ms, length, log_mac, mac FROM checkpoints WHERE org = 'o' AND revision = 9;
                 INSERT INTO checkpoint_chunks (org, revision, seq, bytes) SELECT org, 8, seq, bytes FROM checkpoint_chunks WHERE org = 'o' AND revision = 9";
    assert!(matches!(
        read(moved, "o", 8),
        Err(StoreError::CorruptCheckpoint { .. })
    ));
}

fn tampered_checkpoint_sqlite(
    tamper: &str,
    org: &str,
    revision: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let key = AuditKey::new([7; 32]);
    checkpointed(&SqliteStore::open_with_key(&path, key.clone()).unwrap());
    sqlite_execute(&path, tamper);
    SqliteStore::open_with_key(&path, key)
        .unwrap()
        .read_checkpoint(org, revision)
}

fn tampered_checkpoint_postgres(
    server: &str,
    tamper: &str,
    org: &str,
    revision: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    let scratch = ScratchDatabase::create(server).unwrap();
    let key = AuditKey::new([7; 32]);
    checkpointed(&PostgresStore::open_with_key(scratch.url(), key.clone()).unwrap());
    postgres_testing::execute(scratch.url(), tamper).unwrap();
    PostgresStore::open_with_key(scratch.url(), key)
        .unwrap()
        .read_checkpoint(org, revision)
}

#[test]
fn sqlite_refuses_a_damaged_checkpoint() {
    checkpoint_tampering_is_detected(&|sql| tampered_checkpoint_sqlite(sql, "o", 9));
    a_moved_checkpoint_is_refused(&tampered_checkpoint_sqlite);
}

#[test]
fn postgres_refuses_a_damaged_checkpoint() {
    if let Some(server) = postgres("postgres_refuses_a_damaged_checkpoint") {
        checkpoint_tampering_is_detected(&|sql| tampered_checkpoint_postgres(&server, sql, "o", 9));
        a_moved_checkpoint_is_refused(&|sql, org, revision| {
            tampered_checkpoint_postgres(&server, sql, org, revision)
        });
    }
}

/// A checkpoint read with another key is refused (its MAC is under the log's key).
#[test]
fn a_checkpoint_under_another_key_is_refused() {
    // A database refuses to open with another key already (the key's fingerprint); the MAC is
    // the second line, shown with two memory stores (each with a random key).
    let store = MemoryStore::new().unwrap();
    checkpointed(&store);
    let other = MemoryStore::new().unwrap();
    other.create_organization("o", 0, &mut |_| Ok(())).unwrap();
    fill(&other, "o");
    let mut stolen = None;
    store.tamper_checkpoints("o", &mut |c| stolen = c.get(&9).cloned());
    other.tamper_checkpoints("o", &mut |c| {
        c.insert(9, stolen.clone().unwrap());
    });
    // The log rows differ too (another key, another chain): refused either way.
    assert!(matches!(
        other.read_checkpoint("o", 9),
        Err(StoreError::CorruptCheckpoint { .. })
    ));
}

/// The memory store's hook: a torn checkpoint and a changed byte are refused.
#[test]
fn memory_store_refuses_a_damaged_checkpoint() {
    type Damage = fn(&mut strata_store::RawCheckpoint);
    let damages: [(&str, Damage); 5] = [
        ("torn", |c| {
            c.chunks.remove(1);
        }),
        ("last chunk missing", |c| {
            c.chunks.pop();
        }),
        ("a byte changed", |c| c.chunks[0].1[10] ^= 1),
        ("length", |c| c.length -= 1),
        ("format", |c| c.format = 9),
    ];
    for (case, damage) in damages {
        let store = MemoryStore::new().unwrap();
        checkpointed(&store);
        assert_eq!(store.read_checkpoint("o", 9).unwrap().unwrap().len(), BIG);
        store.tamper_checkpoints("o", &mut |c| {
            if let Some(c) = c.get_mut(&9) {
                damage(c);
            }
        });
        assert_corrupt_checkpoint(store.read_checkpoint("o", 9), case);
        // The other checkpoint still reads.
        assert_eq!(
            store.read_checkpoint("o", 5).unwrap(),
            Some(pattern(1000, 1))
        );
    }
}

/// A writer that holds revision `known` reads, inside its write, what another writer committed
/// after it (`write_known`: on PostgreSQL read together with the lock), verified; asked from
/// another revision, it reads that instead. Then a row after `known` is edited (`tamper`): the
/// read inside the write fails as `corrupt_log` and nothing is written.
fn catch_up_inside_a_write(writer: &dyn Store, other: &dyn Store, tamper: &dyn Fn()) {
    writer.create_organization("c", 0, &mut |_| Ok(())).unwrap();
    fill(other, "c");
    let n = other.revision("c").unwrap();
    let expected = |from: u64| (from + 1..=n).collect::<Vec<u64>>();
    for known in [0, 2, n - 1, n] {
        let (mut seen, mut again, mut at) = (Vec::new(), Vec::new(), 0);
        let err = writer
            .write_known("c", known, &mut |tx| {
                // The last call counts: a store may call the closure a first time from the head
                // it last committed itself (PostgreSQL, D144).
                at = tx.revision();
                seen = tx.operations_after(known)?;
                again = tx.operations_after(1)?;
                Err(StoreError::Aborted("nothing to write".to_owned()))
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Aborted(_)), "{err}");
        assert_eq!(at, n, "after {known}");
        let revisions = |entries: &[strata_store::LogEntry]| -> Vec<u64> {
            entries.iter().map(|e| e.revision).collect()
        };
        assert_eq!(revisions(&seen), expected(known), "after {known}");
        assert_eq!(revisions(&again), expected(1), "after 1, announced {known}");
        assert_eq!(seen, other.operations("c", known).unwrap());
    }
    // The rows appended by a write that knew its revision are the rows `write` appends.
    let stored = strata_store::StoredOperation::new(&setup_ops()[0]).unwrap();
    assert_eq!(
        stored.as_str(),
        serde_json::to_string(&setup_ops()[0]).unwrap()
    );
    let revision = writer
        .write_known("c", n, &mut |tx| {
            tx.append_stored(stored.clone(), 77).map(|_| ())
        })
        .unwrap();
    assert_eq!(revision, n + 1);
    let last = other.operations("c", n).unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].operation, setup_ops()[0]);
    assert_eq!(last[0].at_ms, 77);
    tamper();
    let err = writer
        .write_known("c", n - 2, &mut |tx| {
            tx.operations_after(n - 2)?;
            tx.append_operation(&setup_ops()[0], 1).map(|_| ())
        })
        .unwrap_err();
    assert_corrupt(
        Err(err),
        "c",
        n,
        LogDamage::Edited,
        "catch-up inside a write",
    );
    assert_eq!(writer.revision("c").unwrap(), n + 1);
}

#[test]
fn memory_store_catches_up_inside_a_write() {
    let store = MemoryStore::new().unwrap();
    catch_up_inside_a_write(&store, &store, &|| {
        store.tamper_log("c", &mut |rows, _| {
            let at = rows.len() - 2;
            rows[at].at_ms += 1;
        });
    });
}

#[test]
fn sqlite_catches_up_inside_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strata.db");
    let key = AuditKey::new([7; 32]);
    let writer = SqliteStore::open_with_key(&path, key.clone()).unwrap();
    let other = SqliteStore::open_with_key(&path, key).unwrap();
    catch_up_inside_a_write(&writer, &other, &|| {
        let n = setup_ops().len();
        sqlite_execute(
            &path,
            &format!("UPDATE operations SET at_ms = at_ms + 1 WHERE org = 'c' AND revision = {n}"),
        );
    });
}

#[test]
fn postgres_catches_up_inside_a_write() {
    let Some(server) = postgres("postgres_catches_up_inside_a_write") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let key = AuditKey::new([7; 32]);
    let writer = PostgresStore::open_with_key(scratch.url(), key.clone()).unwrap();
    let other = PostgresStore::open_with_key(scratch.url(), key).unwrap();
    catch_up_inside_a_write(&writer, &other, &|| {
        let n = setup_ops().len();
        postgres_testing::execute(
            scratch.url(),
            &format!("UPDATE operations SET at_ms = at_ms + 1 WHERE org = 'c' AND revision = {n}"),
        )
        .unwrap();
    });
}

/// One write of many rows (more than one statement's worth on SQLite: 64, 32 … 1 rows a
/// statement): every row is stored, in order, and both chains verify.
fn many_rows_in_one_write(store: &dyn Store) {
    store.create_organization("m", 0, &mut |_| Ok(())).unwrap();
    let ops = setup_ops();
    for n in [1usize, 63, 64, 65, 100, 127] {
        let before = store.revision("m").unwrap();
        let audited = store.audit(
            "m",
            &AuditQuery {
                limit: 100_000,
                ..AuditQuery::default()
            },
        );
        let audited = audited.unwrap().len();
        store
            .write("m", &mut |tx| {
                for i in 0..n {
                    tx.append_operation(&ops[i % ops.len()], i as i64)?;
                    tx.append_audit(&audit("a", &format!("r{i}"), "alice"), i as i64, -1)?;
                    if i % 3 == 0 {
                        tx.append_audit(&audit("b", &format!("r{i}"), "bob"), i as i64, -1)?;
                    }
                }
                Ok(())
            })
            .unwrap();
        let log = store.operations("m", before).unwrap();
        assert_eq!(log.len(), n);
        for (i, e) in log.iter().enumerate() {
            assert_eq!(e.revision, before + i as u64 + 1);
            assert_eq!(e.operation, ops[i % ops.len()]);
            assert_eq!(e.at_ms, i as i64);
        }
        let entries = store
            .audit(
                "m",
                &AuditQuery {
                    limit: 100_000,
                    ..AuditQuery::default()
                },
            )
            .unwrap();
        assert_eq!(entries.len(), audited + n + n.div_ceil(3), "{n} rows");
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=entries.len() as u64).collect::<Vec<_>>());
    }
    let total = store
        .audit(
            "m",
            &AuditQuery {
                limit: 100_000,
                ..AuditQuery::default()
            },
        )
        .unwrap()
        .len() as u64;
    assert_eq!(
        store.verify_audit("m").unwrap(),
        Verification::Intact { entries: total }
    );
}

#[test]
fn memory_store_takes_many_rows_in_one_write() {
    many_rows_in_one_write(&MemoryStore::new().unwrap());
}

#[test]
fn sqlite_takes_many_rows_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open_with_key(&dir.path().join("m.db"), AuditKey::new([5; 32])).unwrap();
    many_rows_in_one_write(&store);
}

#[test]
fn postgres_takes_many_rows_in_one_write() {
    let Some(server) = postgres("postgres_takes_many_rows_in_one_write") else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let store = PostgresStore::open_with_key(scratch.url(), AuditKey::new([5; 32])).unwrap();
    many_rows_in_one_write(&store);
}
