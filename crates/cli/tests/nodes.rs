//! Several nodes on one PostgreSQL database (issue 5): real `strata serve` processes over real
//! TCP. A write on one node is read on another with its revision; a node killed in the middle
//! of a write stream catches up when restarted; nodes report not ready while PostgreSQL is
//! stopped and recover by themselves; after 1,000 concurrent mixed writes on two nodes, both —
//! and a third started afterwards — hold the same state (digest of the canonical dump, with the
//! indexes equal to a rebuild).
//!
//! The tests run when `STRATA_TEST_POSTGRES` names a server (each in a fresh database; the
//! outage test starts a PostgreSQL of its own, since it stops it), print a note when it is not
//! set, and fail under CI without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use serde_json::{Value, json};
use strata_scenario::http_client::HttpClient;
use strata_store::postgres_testing::{self, ScratchDatabase};

const ROOT: &str = "root-key-for-the-node-tests";

/// The server of `STRATA_TEST_POSTGRES`, or `None` after a note (a failure under CI).
fn postgres(test: &str) -> Option<String> {
    postgres_testing::server_or_skip(test)
}

/// A fresh database on the server of `STRATA_TEST_POSTGRES`, a folder and the audit key file
/// in it; `None` after a note (a failure under CI).
fn scratch(test: &str) -> Option<(ScratchDatabase, tempfile::TempDir, PathBuf)> {
    let server = postgres(test)?;
    let scratch = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("audit-key");
    Some((scratch, dir, key_file))
}

/// A `strata serve` process.
struct Node {
    child: Child,
    client: HttpClient,
}

impl Node {
    /// Starts a node on `db` on a free port, with short waits so that the tests stay quick.
    fn start(db: &str, key_file: &Path, extra: &[&str]) -> Node {
        Node::start_at(db, key_file, "127.0.0.1:0", extra)
    }

    /// Starts a node that advertises where it listens (a free port): it may take write leases,
    /// and the other nodes forward writes to it (D150).
    fn start_leading(db: &str, key_file: &Path) -> Node {
        let listen = format!("127.0.0.1:{}", common::free_port());
        let url = format!("http://{listen}");
        Node::start_at(
            db,
            key_file,
            &listen,
            &["--advertise-url", &url, "--write-lease-ms", "900"],
        )
    }

    fn start_at(db: &str, key_file: &Path, listen: &str, extra: &[&str]) -> Node {
        let (child, url) = common::spawn_serving(
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args(["serve", "--db", db, "--listen", listen])
                .args(["--root-key", ROOT, "--audit-key-file"])
                .arg(key_file)
                .args(["--min-revision-timeout-ms", "3000", "--max-lag-ms", "1500"])
                .args(["--poll-ms", "200"])
                .args(extra),
        );
        Node {
            child,
            client: HttpClient::new(&url, Duration::from_secs(30)).unwrap(),
        }
    }

    /// One request with a key; the status and the JSON body (`null` when there is none).
    fn call(&self, method: &str, path: &str, key: &str, body: Option<&Value>) -> (u16, Value) {
        self.try_call(method, path, key, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn try_call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let auth = format!("Bearer {key}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let body = body.map(Value::to_string);
        let r = self
            .client
            .request(method, path, &headers, body.as_deref().map(str::as_bytes))?;
        let value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        Ok((r.status, value))
    }

    /// Writes operations; the revision, or the failure.
    fn write(&self, org: &str, key: &str, ops: &Value) -> Result<u64, (u16, Value)> {
        let (status, body) = self.call(
            "POST",
            &format!("/api/v1/orgs/{org}/operations"),
            key,
            Some(ops),
        );
        match status {
            200 => Ok(body["revision"].as_u64().unwrap()),
            _ => Err((status, body)),
        }
    }

    /// The digest of `org` once this node has applied `revision`.
    fn digest(&self, org: &str, revision: u64) -> Value {
        let (status, body) = self.call(
            "GET",
            &format!("/api/v1/orgs/{org}/digest?min_revision={revision}"),
            ROOT,
            None,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["indexes_current"], true, "{body}");
        assert_eq!(body["record_index_current"], true, "{body}");
        body
    }

    /// A record of `o` as the administrator sees it.
    fn record(&self, id: &str) -> (u16, Value) {
        self.call(
            "GET",
            &format!("/api/v1/orgs/o/records/{id}?user=admin"),
            ROOT,
            None,
        )
    }

    fn ready(&self) -> u16 {
        self.try_call("GET", "/readyz", ROOT, None)
            .map_or(0, |(status, _)| status)
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it is true, at most `limit`.
fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const USERS: usize = 8;
const TEAMS: usize = 3;

/// The organisation's model: units, a table, roles, users, owner teams, a few records.
fn model() -> Value {
    let mut ops = vec![
        json!({"op": "add_business_unit", "name": "Root"}),
        json!({"op": "add_business_unit", "name": "East", "parent": "Root"}),
        json!({"op": "add_business_unit", "name": "West", "parent": "Root"}),
        json!({"op": "add_table", "name": "account", "columns": [{"name": "name"}, {"name": "region"}]}),
        json!({"op": "set_audit", "enabled": true, "tables": ["account"]}),
        json!({"op": "add_role", "name": "Admin", "system_administrator": true}),
        json!({"op": "add_role", "name": "Rep", "privileges": {"account": {
            "create": "user", "read": "business_unit", "write": "user", "share": "user"
        }}}),
        json!({"op": "add_role", "name": "Viewer", "privileges": {"account": {"read": "organization"}}}),
    ];
    for u in 0..USERS {
        let unit = if u % 2 == 0 { "East" } else { "West" };
        ops.push(json!({"op": "add_user", "name": format!("u{u}"), "business_unit": unit}));
        ops.push(json!({"op": "assign_role", "principal": format!("u{u}"), "role": "Rep"}));
    }
    ops.push(json!({"op": "add_user", "name": "admin", "business_unit": "Root"}));
    ops.push(json!({"op": "assign_role", "principal": "admin", "role": "Admin"}));
    for t in 0..TEAMS {
        ops.push(json!({"op": "add_team", "name": format!("t{t}"), "type": "owner", "business_unit": "Root"}));
    }
    for i in 0..10 {
        ops.push(
            json!({"op": "insert_record", "id": format!("seed{i}"), "table": "account",
            "owner": format!("u{}", i % USERS), "fields": {"name": format!("seed {i}")}}),
        );
    }
    Value::Array(ops)
}

/// Creates `org` on `node` with the model; returns the revision.
fn create_org(node: &Node, org: &str) -> u64 {
    let (status, body) = node.call("POST", "/api/v1/orgs", ROOT, Some(&json!({ "name": org })));
    assert_eq!(status, 201, "{body}");
    node.write(org, ROOT, &model()).unwrap()
}

/// A write on one node with its revision, then a read on the other node carrying it, sees the
/// write — for records, checks and lists, with a user's API key, both ways. A revision the
/// node cannot reach fails after the timeout; organisations created or deleted on one node
/// appear and go on the other.
#[test]
fn a_write_on_one_node_is_read_on_another_with_its_revision() {
    let Some((scratch, _dir, key_file)) =
        scratch("a_write_on_one_node_is_read_on_another_with_its_revision")
    else {
        return;
    };
    let a = Node::start(scratch.url(), &key_file, &[]);
    let b = Node::start(scratch.url(), &key_file, &[]);

    // Created on A: B answers a read carrying A's revision (it looks the organisation up).
    let setup = create_org(&a, "o");
    let (status, body) = b.call(
        "GET",
        &format!("/api/v1/orgs/o/records/seed1?user=admin&min_revision={setup}"),
        ROOT,
        None,
    );
    assert_eq!(status, 200, "{body}");

    // A user's key, made on A, used on B.
    let (status, body) = a.call(
        "POST",
        "/api/v1/orgs/o/api-keys",
        ROOT,
        Some(&json!({"user": "u0"})),
    );
    assert_eq!(status, 201, "{body}");
    let key = body["key"].as_str().unwrap().to_owned();

    let nodes = [&a, &b];
    for i in 0..20 {
        let (writer, reader) = (nodes[i % 2], nodes[(i + 1) % 2]);
        let id = format!("w{i}");
        let revision = writer
            .write(
                "o",
                &key,
                &json!({"op": "create", "table": "account", "id": id, "fields": {"name": format!("written {i}")}}),
            )
            .unwrap_or_else(|e| panic!("write {i}: {e:?}"));
        let (status, body) = reader.call(
            "GET",
            &format!("/api/v1/orgs/o/records/{id}?min_revision={revision}"),
            &key,
            None,
        );
        assert_eq!(status, 200, "read {i} on the other node: {body}");
        let (status, body) = reader.call(
            "POST",
            "/api/v1/orgs/o/check",
            &key,
            Some(&json!({"privilege": "write", "record": id, "min_revision": revision})),
        );
        assert_eq!((status, &body["allowed"]), (200, &json!(true)), "{body}");
        assert!(body["revision"].as_u64().unwrap() >= revision, "{body}");
        let (status, body) = reader.call(
            "GET",
            &format!("/api/v1/orgs/o/tables/account/records?min_revision={revision}&limit=1000"),
            &key,
            None,
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.to_string().contains(&format!("\"{id}\"")), "{body}");
    }

    // A user created on A a moment ago writes on B at once: the write carries A's revision.
    let made = a
        .write(
            "o",
            ROOT,
            &json!([{"op": "add_user", "name": "newbie", "business_unit": "East"},
                    {"op": "assign_role", "principal": "newbie", "role": "Rep"}]),
        )
        .unwrap();
    let (status, body) = a.call(
        "POST",
        "/api/v1/orgs/o/api-keys",
        ROOT,
        Some(&json!({"user": "newbie"})),
    );
    assert_eq!(status, 201, "{body}");
    let newbie = body["key"].as_str().unwrap().to_owned();
    let create =
        json!({"op": "create", "table": "account", "id": "by-newbie", "fields": {"name": "n"}});
    let (status, body) = b.call(
        "POST",
        &format!("/api/v1/orgs/o/operations?min_revision={made}"),
        &newbie,
        Some(&create),
    );
    assert_eq!(status, 200, "{body}");
    // A write waiting for a revision nobody wrote fails after the timeout and writes nothing.
    let (status, body) = b.call(
        "POST",
        "/api/v1/orgs/o/operations?min_revision=1000000",
        &newbie,
        Some(&json!({"op": "create", "table": "account", "id": "never", "fields": {}})),
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "revision_not_reached", "{body}");
    let (status, _) = a.call("GET", "/api/v1/orgs/o/records/never?user=admin", ROOT, None);
    assert_eq!(status, 404);

    // A revision nobody wrote: a clear error after the timeout, never a stale answer.
    let start = Instant::now();
    let (status, body) = b.call(
        "GET",
        "/api/v1/orgs/o/records/w1?min_revision=1000000",
        &key,
        None,
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "revision_not_reached", "{body}");
    assert!(start.elapsed() >= Duration::from_millis(2900), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("within 3000 ms"),
        "{body}"
    );

    // Created and deleted on B: A follows without being asked.
    let (status, _) = b.call(
        "POST",
        "/api/v1/orgs",
        ROOT,
        Some(&json!({"name": "spare"})),
    );
    assert_eq!(status, 201);
    let listed = |node: &Node| {
        let (_, body) = node.call("GET", "/api/v1/orgs", ROOT, None);
        body.to_string().contains("\"spare\"")
    };
    eventually(Duration::from_secs(5), "A lists `spare`", || listed(&a));
    let (status, _) = b.call("DELETE", "/api/v1/orgs/spare", ROOT, None);
    assert_eq!(status, 204);
    eventually(Duration::from_secs(5), "A drops `spare`", || !listed(&a));

    let last = a
        .write(
            "o",
            ROOT,
            &json!({"op": "share", "record": "w0", "principal": "u1", "rights": ["read"]}),
        )
        .unwrap();
    assert_eq!(a.digest("o", last)["sha256"], b.digest("o", last)["sha256"]);
}

/// Writes stream to two nodes; one is killed with SIGKILL in the middle (its writes in flight
/// may or may not have committed) and restarted while the stream goes on through the other.
/// The restarted node catches up: every acknowledged write is there, and both nodes hold the
/// same state.
#[test]
fn a_node_killed_during_a_write_stream_catches_up_when_restarted() {
    let Some((scratch, _dir, key_file)) =
        scratch("a_node_killed_during_a_write_stream_catches_up_when_restarted")
    else {
        return;
    };
    let a = Node::start(scratch.url(), &key_file, &[]);
    let b = Arc::new(Mutex::new(Some(Node::start(scratch.url(), &key_file, &[]))));
    create_org(&a, "o");

    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let last = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let a = Arc::new(a);
    // Two writers: one on A only, one on B while B is up (and on A while it is down).
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (a, b, acknowledged, last, sent) = (
                Arc::clone(&a),
                Arc::clone(&b),
                Arc::clone(&acknowledged),
                Arc::clone(&last),
                Arc::clone(&sent),
            );
            std::thread::spawn(move || {
                for i in 0..150 {
                    let id = format!("k{w}-{i}");
                    let op = json!({"op": "insert_record", "table": "account", "id": id,
                        "owner": format!("u{}", i % USERS), "fields": {"name": id}});
                    let url = if w == 1 {
                        b.lock().unwrap().as_ref().map(|n| n.client.clone())
                    } else {
                        None
                    };
                    let result = match url {
                        Some(client) => {
                            let node = NodeRef(client);
                            node.write(&op)
                        }
                        None => a.write("o", ROOT, &op).map_err(|e| format!("{e:?}")),
                    };
                    sent.fetch_add(1, Ordering::SeqCst);
                    if let Ok(revision) = result {
                        acknowledged.lock().unwrap().push(id);
                        last.fetch_max(revision, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();

    eventually(Duration::from_secs(30), "100 writes sent", || {
        sent.load(Ordering::SeqCst) >= 100
    });
    if let Some(mut node) = b.lock().unwrap().take() {
        node.kill();
    }
    eventually(Duration::from_secs(30), "180 writes sent", || {
        sent.load(Ordering::SeqCst) >= 180
    });
    let restarted = Node::start(scratch.url(), &key_file, &[]);
    *b.lock().unwrap() = Some(restarted);
    for w in writers {
        w.join().unwrap();
    }

    let last = last.load(Ordering::SeqCst);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 250,
        "{} acknowledged",
        acknowledged.len()
    );
    let b = b.lock().unwrap().take().unwrap();
    let (da, db) = (a.digest("o", last), b.digest("o", last));
    assert_eq!(da["revision"], db["revision"]);
    assert_eq!(da["sha256"], db["sha256"], "{da} {db}");
    for id in &acknowledged {
        let (status, body) = b.record(id);
        assert_eq!(
            status, 200,
            "acknowledged {id} is missing on the restarted node: {body}"
        );
    }
}

/// A counter of the node's `/metrics`.
fn metric(node: &Node, name: &str) -> u64 {
    let r = node.client.request("GET", "/metrics", &[], None).unwrap();
    let text = String::from_utf8(r.body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name}"))
}

fn forwarded(node: &Node) -> u64 {
    metric(node, "strata_writes_forwarded_total")
}

/// Two nodes that advertise themselves (D150): one takes the organisation's write lease and
/// every write; the other forwards its writes to it, authenticated and authorized by the
/// leader as the caller, and answers once it holds the write itself (a read on it right after
/// sees the write, without `min_revision`). Refusals come back as they are; a Web API write is
/// forwarded too. When the leader is killed, the other node writes itself (the connection
/// fails before anything is sent) and takes the lease; the state equals a fresh node's.
#[test]
fn writes_go_to_the_write_leader_and_fall_back_when_it_dies() {
    let Some((scratch, _dir, key_file)) =
        scratch("writes_go_to_the_write_leader_and_fall_back_when_it_dies")
    else {
        return;
    };
    let a = Node::start_leading(scratch.url(), &key_file);
    let b = Node::start_leading(scratch.url(), &key_file);
    create_org(&a, "o");
    let create = |id: &str, user: &str| json!({"op": "create", "as": user, "table": "account", "id": id, "fields": {"name": id}});
    // Writes on both until one forwards to the other.
    let mut n = 0;
    eventually(Duration::from_secs(10), "a node forwards", || {
        for node in [&a, &b] {
            node.write("o", ROOT, &create(&format!("warm{n}"), "u0"))
                .unwrap();
            n += 1;
        }
        forwarded(&a) + forwarded(&b) > 0
    });
    let (leader, follower) = if forwarded(&b) > 0 {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let before = forwarded(follower);
    let leader_commits = metric(leader, "strata_group_commits_total");

    // Forwarded writes, read on the follower at once (no min_revision) and on the leader.
    for i in 0..20 {
        let id = format!("f{i}");
        let revision = follower.write("o", ROOT, &create(&id, "u1")).unwrap();
        let (status, body) = follower.record(&id);
        assert_eq!(
            status, 200,
            "the follower does not hold its forwarded write: {body}"
        );
        assert!(body["revision"].as_u64().unwrap() <= revision, "{body}");
    }
    assert_eq!(
        forwarded(follower),
        before + 20,
        "every write was forwarded"
    );
    assert!(metric(leader, "strata_group_commits_total") > leader_commits);
    assert_eq!(forwarded(leader), 0, "the leader forwards nothing");

    // The leader authenticates and authorizes: a bad key, an unknown user, a denied write.
    let (status, body) = follower.call(
        "POST",
        "/api/v1/orgs/o/operations",
        "not-a-key",
        Some(&create("bad-key", "u1")),
    );
    assert_eq!(status, 401, "{body}");
    let refused = follower.write(
        "o",
        ROOT,
        &json!({"op": "share", "as": "u2", "record": "f0", "principal": "u3", "rights": ["read"]}),
    );
    assert!(matches!(refused, Err((403, _))), "{refused:?}");
    // A caller's own `Strata-Forwarded` header only makes the node write itself.
    let auth = format!("Bearer {ROOT}");
    let r = follower
        .client
        .request(
            "POST",
            "/api/v1/orgs/o/operations",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
                ("Strata-Forwarded", "me"),
            ],
            Some(create("self", "u1").to_string().as_bytes()),
        )
        .unwrap();
    assert_eq!(r.status, 200);

    // A Web API create, with a user's API key, forwarded like the others.
    let (status, key) = follower.call(
        "POST",
        "/api/v1/orgs/o/api-keys",
        ROOT,
        Some(&json!({"user": "admin"})),
    );
    assert_eq!(status, 201, "{key}");
    let key = format!("Bearer {}", key["key"].as_str().unwrap());
    let before = forwarded(follower);
    let r = follower
        .client
        .request(
            "POST",
            "/api/data/v9.2/accounts",
            &[
                ("Authorization", key.as_str()),
                ("Content-Type", "application/json"),
            ],
            Some(br#"{"name":"by the web api"}"#),
        )
        .unwrap();
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(forwarded(follower), before + 1);

    // Both hold the same state.
    let (_, revision) = leader.call("GET", "/api/v1/orgs/o/revision", ROOT, None);
    let revision = revision["revision"].as_u64().unwrap();
    assert_eq!(
        leader.digest("o", revision)["sha256"],
        follower.digest("o", revision)["sha256"]
    );

    // The leader dies: the follower writes itself, then takes the lease.
    let (mut leader, follower) = if forwarded(&b) > 0 { (a, b) } else { (b, a) };
    leader.kill();
    let mut last = 0;
    for i in 0..30 {
        last = follower
            .write("o", ROOT, &create(&format!("after{i}"), "u1"))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(metric(&follower, "strata_writes_leader_unreachable_total") >= 1);
    let fresh = Node::start(scratch.url(), &key_file, &[]);
    assert_eq!(
        follower.digest("o", last)["sha256"],
        fresh.digest("o", last)["sha256"]
    );
}

/// A node's client for the writer threads (a `Node` cannot be shared while it is replaced).
struct NodeRef(HttpClient);

impl NodeRef {
    fn write(&self, op: &Value) -> Result<u64, String> {
        let auth = format!("Bearer {ROOT}");
        let body = op.to_string();
        let r = self.0.request(
            "POST",
            "/api/v1/orgs/o/operations",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            Some(body.as_bytes()),
        )?;
        let value: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        match r.status {
            200 => Ok(value["revision"].as_u64().unwrap()),
            s => Err(format!("{s}: {value}")),
        }
    }
}

/// 1,000 concurrent mixed writes — records, shares, role changes, team membership, some by
/// users and so authorized against each node's state — spread over two nodes; afterwards both,
/// and a third node started from the database, hold the same state.
#[test]
fn two_nodes_take_1000_concurrent_mixed_writes_and_agree_with_a_fresh_third() {
    let Some((scratch, _dir, key_file)) =
        scratch("two_nodes_take_1000_concurrent_mixed_writes_and_agree_with_a_fresh_third")
    else {
        return;
    };
    let a = Arc::new(Node::start(scratch.url(), &key_file, &[]));
    let b = Arc::new(Node::start(scratch.url(), &key_file, &[]));
    create_org(&a, "o");

    const THREADS: usize = 8;
    const PER_THREAD: usize = 125;
    let last = Arc::new(AtomicU64::new(0));
    // Per kind of write (records, shares, roles, membership): accepted and refused.
    let outcomes: Arc<Mutex<[(usize, usize); 4]>> = Arc::default();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (a, b, last, outcomes) = (
                Arc::clone(&a),
                Arc::clone(&b),
                Arc::clone(&last),
                Arc::clone(&outcomes),
            );
            std::thread::spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ (t as u64 + 1);
                let mut next = move |n: usize| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng % n as u64) as usize
                };
                let user = format!("u{t}");
                let mut created = 0;
                for i in 0..PER_THREAD {
                    let node = if (t + i) % 2 == 0 { &a } else { &b };
                    let (op, key) = match i % 8 {
                        // Records, as the system and as a user (authorized by the node).
                        0 | 1 => {
                            created += 1;
                            (
                                json!({"op": "insert_record", "table": "account",
                                    "id": format!("r{t}-{}", created - 1),
                                    "owner": format!("u{}", next(USERS)),
                                    "fields": {"name": format!("r{t}"), "region": if next(2) == 0 { "n" } else { "s" }}}),
                                ROOT,
                            )
                        }
                        2 => {
                            created += 1;
                            (
                                json!({"op": "create", "as": user, "table": "account",
                                    "id": format!("r{t}-{}", created - 1), "fields": {"name": "by a user"}}),
                                ROOT,
                            )
                        }
                        // Shares of any thread's records (some do not exist yet: refused).
                        3 | 4 => (
                            json!({"op": "share", "record": format!("r{}-{}", next(THREADS), next(created.max(1))),
                                "principal": format!("team:t{}", next(TEAMS)), "rights": ["read", "write"]}),
                            ROOT,
                        ),
                        // Role changes: Viewer on and off for another thread's user.
                        5 => (
                            if next(2) == 0 {
                                json!({"op": "assign_role", "principal": format!("u{}", next(USERS)), "role": "Viewer"})
                            } else {
                                json!({"op": "remove_role", "principal": format!("u{}", next(USERS)), "role": "Viewer"})
                            },
                            ROOT,
                        ),
                        // Team membership.
                        6 => (
                            if next(2) == 0 {
                                json!({"op": "add_team_member", "team": format!("t{}", next(TEAMS)), "user": format!("u{}", next(USERS))})
                            } else {
                                json!({"op": "remove_team_member", "team": format!("t{}", next(TEAMS)), "user": format!("u{}", next(USERS))})
                            },
                            ROOT,
                        ),
                        // A user sharing: allowed or denied depending on what other nodes wrote.
                        _ => (
                            json!({"op": "share", "as": format!("u{}", next(USERS)),
                                "record": format!("r{}-{}", next(THREADS), next(created.max(1))),
                                "principal": format!("u{}", next(USERS)), "rights": ["read"]}),
                            ROOT,
                        ),
                    };
                    let kind = match i % 8 {
                        0..=2 => 0,
                        3 | 4 | 7 => 1,
                        5 => 2,
                        _ => 3,
                    };
                    match node.write("o", key, &op) {
                        Ok(revision) => {
                            last.fetch_max(revision, Ordering::SeqCst);
                            outcomes.lock().unwrap()[kind].0 += 1;
                        }
                        Err((status, body)) => {
                            assert!(
                                status == 400 || status == 403 || status == 404 || status == 409,
                                "write {t}/{i}: {status} {body}"
                            );
                            outcomes.lock().unwrap()[kind].1 += 1;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let outcomes = *outcomes.lock().unwrap();
    let total: usize = outcomes.iter().map(|(a, r)| a + r).sum();
    assert_eq!(total, THREADS * PER_THREAD);
    // Records, shares, role changes and membership changes: each mostly accepted.
    for (kind, (accepted, refused)) in outcomes.iter().enumerate() {
        assert!(accepted > refused, "kind {kind}: {outcomes:?}");
    }
    eprintln!("accepted and refused per kind (records, shares, roles, membership): {outcomes:?}");
    let last = last.load(Ordering::SeqCst);

    let c = Node::start(scratch.url(), &key_file, &[]);
    let (da, db, dc) = (
        a.digest("o", last),
        b.digest("o", last),
        c.digest("o", last),
    );
    for d in [&da, &db, &dc] {
        assert_eq!(d["revision"], json!(last), "{d}");
    }
    assert_eq!(da["sha256"], db["sha256"], "A and B differ");
    assert_eq!(da["sha256"], dc["sha256"], "A and the fresh C differ");
    assert!(da["records"].as_u64().unwrap() > 300, "{da}");
}

/// A PostgreSQL server of the test's own, which it may stop and start.
struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    durable: bool,
}

impl OwnPostgres {
    /// Starts one, or `None` when no PostgreSQL binaries are installed (an error under CI).
    /// It runs with `fsync=off` and `synchronous_commit=off`, for speed: a commit it has
    /// acknowledged can be lost when it is killed.
    fn start() -> Option<OwnPostgres> {
        OwnPostgres::start_with(false)
    }

    /// Starts one with `synchronous_commit=on`, so that a commit PostgreSQL acknowledged
    /// survives its processes being killed (`fsync` stays off: the machine does not crash,
    /// the operating system keeps what was written).
    fn start_durable() -> Option<OwnPostgres> {
        OwnPostgres::start_with(true)
    }

    fn start_with(durable: bool) -> Option<OwnPostgres> {
        let bin = common::postgres_bin();
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but no PostgreSQL binaries were found (/usr/lib/postgresql/*/bin or STRATA_TEST_PG_BIN)"
            );
            eprintln!("note: no PostgreSQL binaries: the outage test is skipped");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        common::chown_postgres(dir.path());
        let data = dir.path().join("data");
        let out = common::as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for _ in 0..10 {
            let port = common::free_port();
            if pg_ctl_start(&bin, dir.path(), port, durable) {
                return Some(OwnPostgres {
                    bin,
                    dir,
                    port,
                    durable,
                });
            }
        }
        panic!("could not start PostgreSQL")
    }

    fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl_start(&self) -> bool {
        pg_ctl_start(&self.bin, self.dir.path(), self.port, self.durable)
    }

    /// `pg_ctl restart -m immediate`: every server process killed mid-transaction (no
    /// checkpoint, crash recovery at start), then started again with the same options.
    fn restart_immediately(&self) {
        let status = common::as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-m", "immediate", "-w", "-t", "60", "restart"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl restart -m immediate");
    }

    fn stop(&self) {
        let status = common::as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl stop");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = common::as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Starts the server of `dir` on `port`; false when it does not start.
fn pg_ctl_start(bin: &Path, dir: &Path, port: u16, durable: bool) -> bool {
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit={}",
        dir.display(),
        if durable { "on" } else { "off" }
    );
    common::as_postgres(&bin.join("pg_ctl"))
        .arg("-D")
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("log"))
        .args(["-w", "-t", "30", "-o", &options, "start"])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// PostgreSQL stops: both nodes report not ready (reads carrying a revision they have not
/// applied fail, writes fail, nothing stale is answered); it starts again: both recover by
/// themselves, and follow each other's writes again.
#[test]
fn nodes_report_not_ready_while_postgres_is_stopped_and_recover() {
    if postgres("nodes_report_not_ready_while_postgres_is_stopped_and_recover").is_none() {
        return;
    }
    let Some(pg) = OwnPostgres::start() else {
        return;
    };
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("audit-key");
    let a = Node::start(&url, &key_file, &[]);
    let b = Node::start(&url, &key_file, &[]);
    let before = create_org(&a, "o");
    b.digest("o", before);
    assert_eq!((a.ready(), b.ready()), (200, 200));

    pg.stop();
    eventually(Duration::from_secs(10), "A and B not ready", || {
        a.ready() == 503 && b.ready() == 503
    });
    let (status, body) = b.call("GET", "/readyz", ROOT, None);
    assert_eq!(status, 503, "{body}");
    let op = json!({"op": "insert_record", "table": "account", "id": "during", "owner": "u0"});
    let (status, body) = a.write("o", ROOT, &op).unwrap_err();
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("database_unreachable")),
        "{body}"
    );
    let (status, body) = b.call(
        "GET",
        &format!(
            "/api/v1/orgs/o/records/seed1?user=admin&min_revision={}",
            before + 1
        ),
        ROOT,
        None,
    );
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &json!("revision_not_reached")),
        "{body}"
    );
    // What the node holds is still answered without a revision to wait for.
    let (status, _) = b.call("GET", "/api/v1/orgs/o/records/seed1?user=admin", ROOT, None);
    assert_eq!(status, 200);

    std::thread::sleep(Duration::from_secs(1));
    assert!(pg.pg_ctl_start(), "PostgreSQL did not start again");
    eventually(Duration::from_secs(20), "A and B ready again", || {
        a.ready() == 200 && b.ready() == 200
    });
    let revision = a.write("o", ROOT, &op).unwrap();
    assert_eq!(revision, before + 1);
    let (status, body) = b.call(
        "GET",
        &format!("/api/v1/orgs/o/records/during?user=admin&min_revision={revision}"),
        ROOT,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let back = b
        .write(
            "o",
            ROOT,
            &json!({"op": "share", "record": "during", "principal": "team:t0", "rights": ["read"]}),
        )
        .unwrap();
    assert_eq!(a.digest("o", back)["sha256"], b.digest("o", back)["sha256"]);
}

/// PostgreSQL faults while two nodes take writes (issue 15, RELIABILITY.md): four clients write
/// to both nodes; PostgreSQL is killed mid-transaction and restarted (`pg_ctl restart -m
/// immediate`, a throwaway cluster of the test's own), twice; a node is killed with SIGKILL and
/// restarted. Writes fail while the database is gone (never hang) and resume by themselves.
/// The history check: every acknowledged write is in the log at the revision it was answered
/// with, and visible on every node — the two and a third started afterwards — read in revision
/// order with its revision; all three hold the state of a fresh replay of the log.
#[test]
fn postgres_killed_mid_transaction_and_a_node_killed_lose_no_acknowledged_write() {
    if postgres("postgres_killed_mid_transaction_and_a_node_killed_lose_no_acknowledged_write")
        .is_none()
    {
        return;
    }
    // With `synchronous_commit=off`, PostgreSQL itself loses commits it acknowledged when it
    // is killed, and so Strata would lose acknowledged writes (RELIABILITY.md, D113).
    let Some(pg) = OwnPostgres::start_durable() else {
        return;
    };
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("audit-key");
    let a = Node::start(&url, &key_file, &[]);
    let mut b = Node::start(&url, &key_file, &[]);
    create_org(&a, "o");

    let clients = Arc::new(Mutex::new([a.client.clone(), b.client.clone()]));
    let acknowledged: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (clients, acknowledged, failed, stop) = (
                Arc::clone(&clients),
                Arc::clone(&acknowledged),
                Arc::clone(&failed),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let id = format!("f{w}-{i}");
                    let op = json!({"op": "insert_record", "table": "account", "id": id,
                        "owner": format!("u{}", i % USERS), "fields": {"name": id}});
                    let client = clients.lock().unwrap()[(w + i) % 2].clone();
                    match NodeRef(client).write(&op) {
                        Ok(revision) => acknowledged.lock().unwrap().push((revision, id)),
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let acked = || acknowledged.lock().unwrap().len();
    let more = |n: usize, what: &str| {
        let target = acked() + n;
        eventually(Duration::from_secs(60), what, || acked() >= target);
    };

    more(60, "writes before the faults");
    pg.restart_immediately();
    more(60, "writes after PostgreSQL was killed and restarted");
    b.kill();
    more(30, "writes while node B is down");
    let b2 = Node::start(&url, &key_file, &[]);
    clients.lock().unwrap()[1] = b2.client.clone();
    more(60, "writes after node B was restarted");
    pg.restart_immediately();
    more(60, "writes after PostgreSQL was killed again");
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let c = Node::start(&url, &key_file, &[]);

    let mut history = acknowledged.lock().unwrap().clone();
    history.sort();
    let revisions: std::collections::BTreeSet<u64> = history.iter().map(|(r, _)| *r).collect();
    assert_eq!(
        revisions.len(),
        history.len(),
        "two writes acknowledged with one revision"
    );
    let last = history.last().unwrap().0;
    // In the log, at the revision each was answered with.
    let store = strata_store::PostgresStore::open(&url, &key_file).unwrap();
    let log = strata_store::Store::operations(&store, "o", 0).unwrap();
    for (revision, id) in &history {
        let entry = &log[(*revision - 1) as usize];
        assert_eq!(entry.revision, *revision);
        assert!(
            matches!(&entry.operation, strata_ops::Operation::InsertRecord { id: logged, .. } if logged == id),
            "revision {revision} is not {id}: {:?}",
            entry.operation
        );
    }
    let (replayed, _) = strata_store::load_organization(&store, "o").unwrap();
    let replay = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(replayed.canonical_dump().as_bytes()))
    };
    // On every node, in revision order, with its revision; the state of a fresh replay.
    for (name, node) in [("A", &a), ("B", &b2), ("C", &c)] {
        assert_eq!(
            node.digest("o", last)["sha256"],
            replay.as_str(),
            "node {name}"
        );
        for (revision, id) in &history {
            let (status, body) = node.call(
                "GET",
                &format!("/api/v1/orgs/o/records/{id}?user=admin&min_revision={revision}"),
                ROOT,
                None,
            );
            assert_eq!(status, 200, "node {name}: {id} at {revision}: {body}");
        }
    }
    eprintln!(
        "figures: PostgreSQL killed twice and a node once: {} writes acknowledged, {} failed while the database or node was gone, revision {last}",
        history.len(),
        failed.load(Ordering::SeqCst)
    );
}

/// Many clients writing on SQLite and on PostgreSQL (one node, and two nodes taking writes to
/// one organisation together): every write is acknowledged, the two nodes end with the same
/// digest, and every write acknowledged on one node is answered on the other with its revision,
/// idle and under a write load. Small by default; `bench/nodes.sh` runs it large and prints the
/// figures: write throughput (records/s, shares/s) and the write-to-visible lag (p50/p99).
/// Clients open one connection per request.
#[test]
fn writes_from_many_clients_on_one_and_two_nodes() {
    let writes: usize = env_or("STRATA_BENCH_WRITES", 160);
    let clients: usize = env_or("STRATA_BENCH_CLIENTS", 8);
    let samples: usize = env_or("STRATA_BENCH_LAG_SAMPLES", 50);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("audit-key");
    println!("{writes} single-operation writes per figure, {clients} concurrent clients");

    let sqlite = dir.path().join("bench.db");
    let s = Node::start(sqlite.to_str().unwrap(), &key_file, &[]);
    create_org(&s, "o");
    let r = throughput(&[&s], writes, clients, &record_op);
    let sh = throughput(&[&s], writes, clients, &share_op);
    println!("SQLite, 1 node:      {r:>7.0} records/s  {sh:>7.0} shares/s");
    drop(s);

    let Some(server) = postgres("writes_from_many_clients_on_one_and_two_nodes (PostgreSQL part)")
    else {
        return;
    };
    let scratch = ScratchDatabase::create(&server).unwrap();
    let pg_key = dir.path().join("pg-audit-key");
    let a = Node::start(scratch.url(), &pg_key, &[]);
    let b = Node::start(scratch.url(), &pg_key, &[]);
    create_org(&a, "o");
    let r1 = throughput(&[&a], writes, clients, &record_op);
    let sh1 = throughput(&[&a], writes, clients, &share_op);
    println!("PostgreSQL, 1 node:  {r1:>7.0} records/s  {sh1:>7.0} shares/s");
    create_org(&a, "o2");
    let r2 = throughput_org(&[&a, &b], "o2", writes, clients, &record_op);
    let sh2 = throughput_org(&[&a, &b], "o2", writes, clients, &share_op);
    println!(
        "PostgreSQL, 2 nodes: {r2:>7.0} records/s  {sh2:>7.0} shares/s  (one organisation, writes alternating between the nodes)"
    );
    let last = a.write("o2", ROOT, &record_op(999, 0)).unwrap();
    assert_eq!(
        a.digest("o2", last)["sha256"],
        b.digest("o2", last)["sha256"]
    );

    let (p50, p99, max) = lag(&a, &b, samples, None);
    println!(
        "write on A → visible on B, idle:            p50 {p50:.2} ms  p99 {p99:.2} ms  max {max:.2} ms  ({samples} samples)"
    );
    let (p50, p99, max) = lag(&a, &b, samples, Some(4));
    println!(
        "write on A → visible on B, 4 writers busy:  p50 {p50:.2} ms  p99 {p99:.2} ms  max {max:.2} ms  ({samples} samples)"
    );
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn record_op(client: usize, i: usize) -> Value {
    json!({"op": "insert_record", "table": "account", "id": format!("b{client}-{i}"),
        "owner": format!("u{}", i % USERS), "fields": {"name": format!("bench {i}"), "region": "n"}})
}

/// Shares the records `record_op` made, each to another user.
fn share_op(client: usize, i: usize) -> Value {
    json!({"op": "share", "record": format!("b{client}-{i}"),
        "principal": format!("u{}", (i + 1) % USERS), "rights": ["read", "write"]})
}

fn throughput(nodes: &[&Node], writes: usize, clients: usize, op: &OpMaker) -> f64 {
    throughput_org(nodes, "o", writes, clients, op)
}

type OpMaker = dyn Fn(usize, usize) -> Value + Sync;

/// Writes per second: `clients` threads, each sending its share of `writes` one operation per
/// request, spread over `nodes`.
fn throughput_org(nodes: &[&Node], org: &str, writes: usize, clients: usize, op: &OpMaker) -> f64 {
    let per = writes / clients;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..clients {
            scope.spawn(move || {
                for i in 0..per {
                    let node = nodes[(c + i) % nodes.len()];
                    node.write(org, ROOT, &op(c, i))
                        .unwrap_or_else(|e| panic!("bench write: {e:?}"));
                }
            });
        }
    });
    (per * clients) as f64 / start.elapsed().as_secs_f64()
}

/// Milliseconds from a write acknowledged by `a` to a read on `b` carrying its revision being
/// answered: p50, p99, max. With `busy`, that many threads keep writing to both nodes.
fn lag(a: &Node, b: &Node, samples: usize, busy: Option<usize>) -> (f64, f64, f64) {
    create_org(a, "lag");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut lags: Vec<f64> = std::thread::scope(|scope| {
        for t in 0..busy.unwrap_or(0) {
            let stop = &stop;
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let node = if i % 2 == 0 { a } else { b };
                    node.write("lag", ROOT, &record_op(100 + t, i)).unwrap();
                    i += 1;
                }
            });
        }
        let mut lags = Vec::with_capacity(samples);
        for i in 0..samples {
            let revision = a.write("lag", ROOT, &record_op(99, i)).unwrap();
            let acked = Instant::now();
            let (status, body) = b.call(
                "GET",
                &format!("/api/v1/orgs/lag/records/b99-{i}?user=admin&min_revision={revision}"),
                ROOT,
                None,
            );
            assert_eq!(status, 200, "{body}");
            lags.push(acked.elapsed().as_secs_f64() * 1000.0);
        }
        stop.store(true, Ordering::Relaxed);
        lags
    });
    let (status, _) = a.call("DELETE", "/api/v1/orgs/lag", ROOT, None);
    assert_eq!(status, 204);
    lags.sort_by(f64::total_cmp);
    let at = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    (at(0.5), at(0.99), lags[lags.len() - 1])
}
