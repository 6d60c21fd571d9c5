//! Faults other than a crash (issue 15, RELIABILITY.md "Crashes and faults"): a full disk and
//! corruption, with real `strata serve` processes over TCP.
//!
//! - A full disk: on a small filesystem made for the test (tmpfs of 16 MiB, or an ext4 loop
//!   device), filled up, writes fail with `storage_full` (507), reads keep working, nothing
//!   acknowledged is lost, and writes resume once space returns. The test needs to mount (root):
//!   it says it is skipped when it cannot.
//! - Corruption: a byte flipped in the SQLite file, in a row of one organisation's operation
//!   log, isolates that organisation (named by `/readyz`, `corrupt_log` for its requests, `strata
//!   log verify` fails) while the others keep serving and taking writes; a byte flipped in a
//!   checkpoint is detected (`corrupt_checkpoint`) and the checkpoint is not used: the
//!   organisation is served from its whole log, the same state as a fresh replay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

mod common;

use serde_json::{Value, json};
use sha2::Digest as _;
use strata_scenario::http_client::HttpClient;
use strata_store::{SqliteStore, Store, load_organization};

const ROOT: &str = "root-key-for-the-fault-tests";

struct Node {
    child: Child,
    client: HttpClient,
}

impl Node {
    fn start(db: &Path, extra: &[&str]) -> Node {
        let (child, url) = common::spawn_serving(
            Command::new(env!("CARGO_BIN_EXE_strata"))
                .args([
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--root-key",
                    ROOT,
                    "--db",
                ])
                .arg(db)
                .args(extra),
        );
        Node {
            child,
            client: HttpClient::new(&url, Duration::from_secs(30)).unwrap(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let auth = format!("Bearer {ROOT}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        let body = body.map(Value::to_string);
        let r = self
            .client
            .request(method, path, &headers, body.as_deref().map(str::as_bytes))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        )
    }

    fn write(&self, org: &str, ops: &Value) -> (u16, Value) {
        self.call("POST", &format!("/api/v1/orgs/{org}/operations"), Some(ops))
    }

    fn create_org(&self, org: &str, audit: bool) {
        let (status, body) = self.call("POST", "/api/v1/orgs", Some(&json!({ "name": org })));
        assert_eq!(status, 201, "{body}");
        let mut ops = vec![
            json!({"op": "add_business_unit", "name": "Root"}),
            json!({"op": "add_table", "name": "account", "columns": [{"name": "name"}]}),
            json!({"op": "add_role", "name": "Admin", "system_administrator": true}),
            json!({"op": "add_user", "name": "admin", "business_unit": "Root"}),
            json!({"op": "assign_role", "principal": "admin", "role": "Admin"}),
        ];
        if audit {
            ops.push(json!({"op": "set_audit", "enabled": true, "tables": ["account"]}));
        }
        let (status, body) = self.write(org, &Value::Array(ops));
        assert_eq!(status, 200, "{body}");
    }

    fn insert(&self, org: &str, id: &str, name: &str) -> (u16, Value) {
        self.write(
            org,
            &json!([{"op": "insert_record", "table": "account", "id": id, "owner": "admin",
                "fields": {"name": name}}]),
        )
    }

    fn read(&self, org: &str, id: &str) -> (u16, Value) {
        self.call(
            "GET",
            &format!("/api/v1/orgs/{org}/records/{id}?user=admin"),
            None,
        )
    }

    fn digest(&self, org: &str) -> (u16, Value) {
        self.call("GET", &format!("/api/v1/orgs/{org}/digest"), None)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A small filesystem mounted for a test, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
    _holder: tempfile::TempDir,
}

impl SmallDisk {
    /// tmpfs of 16 MiB, or an ext4 loop device of 32 MiB; the reason when neither mounts.
    fn mount() -> Result<SmallDisk, String> {
        let holder = tempfile::tempdir().unwrap();
        let dir = holder.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let run = |args: &[&str]| {
            Command::new(args[0])
                .args(&args[1..])
                .output()
                .map_err(|e| e.to_string())
                .and_then(|o| {
                    if o.status.success() {
                        Ok(())
                    } else {
                        Err(String::from_utf8_lossy(&o.stderr).trim().to_owned())
                    }
                })
        };
        let target = dir.to_str().unwrap();
        let tmpfs = run(&["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", target]);
        let Err(tmpfs_error) = tmpfs else {
            return Ok(SmallDisk {
                dir,
                _holder: holder,
            });
        };
        let image = holder.path().join("disk.img");
        let image = image.to_str().unwrap();
        let loop_device = run(&["truncate", "-s", "32M", image])
            .and_then(|()| run(&["mkfs.ext4", "-q", "-F", image]))
            .and_then(|()| run(&["mount", "-o", "loop", image, target]));
        match loop_device {
            Ok(()) => Ok(SmallDisk {
                dir,
                _holder: holder,
            }),
            Err(e) => Err(format!("tmpfs: {tmpfs_error}; loop device: {e}")),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).output();
    }
}

/// Writes `path` until the filesystem is full (4 KiB at a time at the end).
fn fill(path: &Path) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path).unwrap();
    for size in [1 << 20, 4096, 512] {
        let chunk = vec![0xA5u8; size];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
    }
    let _ = file.sync_all();
}

#[test]
fn a_full_disk_refuses_writes_clearly_and_loses_nothing() {
    let disk = match SmallDisk::mount() {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!(
                "note: a_full_disk_refuses_writes_clearly_and_loses_nothing: skipped, cannot mount a small filesystem ({e})"
            );
            return;
        }
    };
    let db = disk.dir.join("full.db");
    let mut node = Node::start(&db, &["--checkpoint-every", "0"]);
    node.create_org("o", true);
    // The records the model holds (users' own records).
    let (_, digest) = node.digest("o");
    let base = digest["records"].as_u64().unwrap() as usize;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let id = format!("before{i}");
        let (status, body) = node.insert("o", &id, &"x".repeat(200));
        assert_eq!(status, 200, "{body}");
        acknowledged.push(id);
    }

    // The disk fills up: writes go on until one is refused, with `storage_full` (507).
    let filler = disk.dir.join("filler");
    fill(&filler);
    let mut refused = None;
    for i in 0..2000 {
        let id = format!("full{i}");
        let (status, body) = node.insert("o", &id, &"y".repeat(2000));
        if status == 200 {
            acknowledged.push(id);
        } else {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("no write was refused on a full disk");
    let after_fill = acknowledged.len() - 20;
    assert_eq!(status, 507, "{body}");
    assert_eq!(body["error"]["code"], "storage_full", "{body}");
    let message = body["error"]["message"].clone();
    // Refused again, the same way, and reads keep working.
    let (status, body) = node.insert("o", "refused-again", "z");
    assert_eq!(
        (status, &body["error"]["code"]),
        (507, &json!("storage_full")),
        "{body}"
    );
    for id in &acknowledged {
        let (status, body) = node.read("o", id);
        assert_eq!(status, 200, "{id}: {body}");
    }
    let (status, digest) = node.digest("o");
    assert_eq!(status, 200, "{digest}");
    assert_eq!(digest["records"], base + acknowledged.len(), "{digest}");
    let (status, body) = node.call("GET", "/healthz", None);
    assert_eq!(status, 200, "{body}");

    // Space returns: writes resume.
    std::fs::remove_file(&filler).unwrap();
    let (status, body) = node.insert("o", "after", "space is back");
    assert_eq!(status, 200, "{body}");
    acknowledged.push("after".to_owned());

    // Nothing acknowledged was lost, and the chains verify, after a kill and a restart too; the
    // state served after the refusals is the log's.
    let (_, served) = node.digest("o");
    node.kill();
    let store = SqliteStore::open(&db).unwrap();
    let (org, _) = load_organization(&store, "o").unwrap();
    for id in &acknowledged {
        assert!(org.record_id(id).is_some(), "{id} was lost");
    }
    assert!(org.record_id("refused-again").is_none());
    assert!(matches!(
        store.verify_audit("o").unwrap(),
        strata_store::Verification::Intact { .. }
    ));
    drop(store);
    let node = Node::start(&db, &[]);
    let (status, after) = node.digest("o");
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["records"], base + acknowledged.len(), "{after}");
    assert_eq!(after["sha256"], served["sha256"], "{after} {served}");
    eprintln!(
        "figures: full disk: {} writes acknowledged ({after_fill} after the filler), then 507 storage_full ({message}); all {} present after the restart",
        acknowledged.len(),
        acknowledged.len()
    );
}

/// Flips one bit of every occurrence of `marker` in `file` that `pick` accepts (given the byte
/// before it); returns how many were flipped.
fn flip(file: &Path, marker: &[u8], pick: impl Fn(u8) -> bool) -> usize {
    let mut bytes = std::fs::read(file).unwrap();
    let mut flipped = 0;
    let mut at = 1;
    while at + marker.len() <= bytes.len() {
        if &bytes[at..at + marker.len()] == marker && pick(bytes[at - 1]) {
            bytes[at + marker.len() / 2] ^= 0x01;
            flipped += 1;
        }
        at += 1;
    }
    std::fs::write(file, bytes).unwrap();
    flipped
}

fn sha256_of_replay(store: &dyn Store, org: &str) -> String {
    let (org, _) = load_organization(store, org).unwrap();
    hex::encode(sha2::Sha256::digest(org.canonical_dump().as_bytes()))
}

#[test]
fn a_flipped_byte_isolates_its_organisation_and_a_bad_checkpoint_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("corrupt.db");
    let mut node = Node::start(&db, &["--checkpoint-every", "0"]);
    // `victim`'s log gets a flipped byte; `ck`'s checkpoint gets one; `bystander` is untouched.
    // Audit is off for `victim` and `ck`, so their markers are only in the log (and `ck`'s in
    // its checkpoint).
    node.create_org("victim", false);
    node.create_org("bystander", true);
    node.create_org("ck", false);
    for i in 0..5 {
        assert_eq!(
            node.insert("victim", &format!("v{i}"), "victim record").0,
            200
        );
        assert_eq!(
            node.insert("bystander", &format!("b{i}"), "bystander").0,
            200
        );
        assert_eq!(node.insert("ck", &format!("c{i}"), "ck record").0, 200);
    }
    assert_eq!(
        node.insert("victim", "v-marked", "victimrowmarkerqq").0,
        200
    );
    assert_eq!(node.insert("ck", "ckrecordmarkerqq", "marked").0, 200);
    node.kill();
    // A checkpoint of `ck`; the command's clean close moves the WAL into the main file.
    let (code, out, err) =
        common::strata(&["checkpoint", "--db", db.to_str().unwrap(), "--org", "ck"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = common::strata(&["log", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let wal = dir.path().join("corrupt.db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the WAL was not checkpointed"
    );
    let ck_digest = sha256_of_replay(&SqliteStore::open(&db).unwrap(), "ck");
    let checkpoint = SqliteStore::open(&db).unwrap().checkpoints("ck").unwrap();
    assert_eq!(checkpoint.len(), 1);

    // One byte flipped in the victim's log row (inside its JSON), one in the checkpoint's bytes
    // (where the record's id is preceded by its length, not by a quote).
    assert_eq!(flip(&db, b"victimrowmarkerqq", |_| true), 1);
    assert!(flip(&db, b"ckrecordmarkerqq", |before| before != b'"') >= 1);

    // Detected by the store and by `strata log verify`.
    let store = SqliteStore::open(&db).unwrap();
    let e = store.operations("victim", 0).unwrap_err();
    assert_eq!(e.code(), "corrupt_log", "{e}");
    let e = store
        .read_checkpoint("ck", checkpoint[0].revision)
        .unwrap_err();
    assert_eq!(e.code(), "corrupt_checkpoint", "{e}");
    drop(store);
    let (code, out, _) = common::strata(&["log", "verify", "--db", db.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("`victim` was TAMPERED WITH"), "{out}");
    assert!(out.contains("`bystander` is intact"), "{out}");

    // The server isolates the victim and says so; the others serve and take writes.
    let node = Node::start(&db, &["--checkpoint-every", "0"]);
    let (status, body) = node.call("GET", "/readyz", None);
    assert_eq!(status, 503, "{body}");
    let text = body.to_string();
    assert!(text.contains("victim"), "{text}");
    assert!(
        !text.contains("bystander") && !text.contains("\"ck\""),
        "{text}"
    );
    let (status, body) = node.read("victim", "v1");
    assert_eq!(
        (status, &body["error"]["code"]),
        (500, &json!("corrupt_log")),
        "{body}"
    );
    let (status, body) = node.insert("victim", "v-after", "refused");
    assert_eq!(
        (status, &body["error"]["code"]),
        (500, &json!("corrupt_log")),
        "{body}"
    );
    for i in 0..5 {
        let (status, body) = node.read("bystander", &format!("b{i}"));
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = node.insert("bystander", "b-after", "still served");
    assert_eq!(status, 200, "{body}");
    // `ck` was loaded from its whole log, not the damaged checkpoint: the same state.
    let (status, body) = node.digest("ck");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sha256"], ck_digest, "{body}");
    assert_eq!(node.read("ck", "ckrecordmarkerqq").0, 200);
}
