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
        Node::start_on(db.as_os_str(), extra)
    }

    /// A node on `db`: a SQLite file or a PostgreSQL URL.
    fn start_on(db: &std::ffi::OsStr, extra: &[&str]) -> Node {
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
        SmallDisk::mount_sized(16)
    }

    /// tmpfs of `mib` MiB, or an ext4 loop device of twice that; the reason when neither
    /// mounts.
    fn mount_sized(mib: u64) -> Result<SmallDisk, String> {
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
        let size = format!("size={mib}m");
        let tmpfs = run(&["mount", "-t", "tmpfs", "-o", &size, "tmpfs", target]);
        let Err(tmpfs_error) = tmpfs else {
            return Ok(SmallDisk {
                dir,
                _holder: holder,
            });
        };
        let image = holder.path().join("disk.img");
        let image = image.to_str().unwrap();
        let image_size = format!("{}M", 2 * mib);
        let loop_device = run(&["truncate", "-s", &image_size, image])
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
            skip_outside_ci(&format!(
                "a_full_disk_refuses_writes_clearly_and_loses_nothing: cannot mount a small filesystem ({e})"
            ));
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

// ---------------------------------------------------------------------------------------------
// A full disk on PostgreSQL
// ---------------------------------------------------------------------------------------------

/// A PostgreSQL cluster of the test's own (its data directory in a temporary folder, its port
/// free), stopped when dropped.
struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    /// initdb and start; `wal_dir` puts the write-ahead log elsewhere (`initdb --waldir`).
    fn start(bin: PathBuf, wal_dir: Option<&Path>) -> OwnPostgres {
        let dir = tempfile::tempdir().unwrap();
        common::chown_postgres(dir.path());
        let mut initdb = common::as_postgres(&bin.join("initdb"));
        initdb.arg("-D").arg(dir.path().join("data")).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        if let Some(wal) = wal_dir {
            // Small segments, so that a full disk is met at the next segment, not 16 MiB on.
            initdb.arg("--waldir").arg(wal).arg("--wal-segsize=1");
        }
        let out = initdb.output().unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = OwnPostgres { bin, dir, port: 0 };
        for _ in 0..10 {
            pg.port = common::free_port();
            if pg.pg_ctl_start() {
                return pg;
            }
        }
        panic!("could not start PostgreSQL: {}", pg.log())
    }

    /// Starts the server (synchronous commits: what it acknowledged is written); false when it
    /// does not start.
    fn pg_ctl_start(&self) -> bool {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        common::as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// Whether the postmaster is running.
    fn running(&self) -> bool {
        common::as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("status")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The server's log.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Runs SQL with psql on the `postgres` database.
    fn sql(&self, sql: &str) {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql `{sql}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self, database: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = common::as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Polls `f` for at most `limit`.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The PostgreSQL full-disk test's environment, or why it is skipped: a small filesystem and
/// the PostgreSQL binaries.
fn postgres_on_small_disk(test: &str, mib: u64) -> Option<(SmallDisk, PathBuf)> {
    let Some(bin) = common::postgres_bin() else {
        skip_outside_ci(&format!(
            "{test}: no PostgreSQL binaries (/usr/lib/postgresql/*/bin or STRATA_TEST_PG_BIN)"
        ));
        return None;
    };
    match SmallDisk::mount_sized(mib) {
        Ok(disk) => Some((disk, bin)),
        Err(e) => {
            skip_outside_ci(&format!("{test}: cannot mount a small filesystem ({e})"));
            None
        }
    }
}

/// A test that cannot run here says why; in CI (`CI` set: `.ci/run` runs as root with
/// PostgreSQL installed) it fails instead, so that it is never skipped unseen.
fn skip_outside_ci(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run this test: {why}"
    );
    eprintln!("note: skipped: {why}");
}

/// A write refused by a full disk on PostgreSQL: 507 `storage_full` (SQLSTATE 53100), or 503
/// with a code while the database is unavailable. Never another answer, never a crash.
fn assert_full_disk_refusal(status: u16, body: &Value) {
    let code = body["error"]["code"].as_str().unwrap_or("");
    assert!(
        (status == 507 && code == "storage_full")
            || (status == 503 && code == "database_unreachable"),
        "a write on a full disk: {status} {body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// What of PostgreSQL's lives on the small filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnSmallDisk {
    /// The database, in a tablespace there (the write-ahead log on the ordinary disk).
    Tablespace,
    /// The write-ahead log (`initdb --waldir`, 1 MiB segments): a full disk makes PostgreSQL
    /// PANIC and restart.
    WriteAheadLog,
}

/// PostgreSQL with its database in a tablespace on a small filesystem (the write-ahead log on
/// the ordinary disk): the disk fills while `strata serve` writes; writes are refused with
/// 507 `storage_full` (SQLSTATE 53100, "could not extend file"), reads, the digest and
/// `/healthz` keep answering, the refused writes leave nothing, the next write after the
/// filler is removed succeeds, and after a restart of the node every acknowledged write is
/// there with the state it served.
#[test]
fn a_full_disk_on_postgres_refuses_writes_clearly_and_loses_nothing() {
    full_disk_on_postgres(
        "a_full_disk_on_postgres_refuses_writes_clearly_and_loses_nothing",
        OnSmallDisk::Tablespace,
    );
}

/// PostgreSQL with its write-ahead log on a small filesystem: when it fills, PostgreSQL
/// PANICs and restarts (or stops, when its recovery finds no space either); the node refuses
/// writes with 507 `storage_full` or 503 `database_unreachable`, never crashes, keeps serving
/// reads, and writes again by itself once space returns (and PostgreSQL runs again); nothing
/// acknowledged is lost.
#[test]
fn a_full_write_ahead_log_on_postgres_is_survived_and_loses_nothing() {
    full_disk_on_postgres(
        "a_full_write_ahead_log_on_postgres_is_survived_and_loses_nothing",
        OnSmallDisk::WriteAheadLog,
    );
}

fn full_disk_on_postgres(test: &str, placement: OnSmallDisk) {
    let Some((disk, bin)) = postgres_on_small_disk(test, 24) else {
        return;
    };
    let place = disk.dir.join("pg");
    std::fs::create_dir(&place).unwrap();
    common::chown_postgres(&place);
    let pg = match placement {
        OnSmallDisk::Tablespace => {
            let pg = OwnPostgres::start(bin, None);
            pg.sql(&format!(
                "CREATE TABLESPACE small LOCATION '{}'",
                place.display()
            ));
            pg.sql("CREATE DATABASE strata TABLESPACE small");
            pg
        }
        OnSmallDisk::WriteAheadLog => {
            let pg = OwnPostgres::start(bin, Some(&place.join("wal")));
            // Copied file by file: the template is not written to the small write-ahead log.
            pg.sql("CREATE DATABASE strata STRATEGY FILE_COPY");
            pg
        }
    };
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("audit-key");
    let url = pg.url("strata");
    let args = [
        "--checkpoint-every",
        "0",
        "--audit-key-file",
        key_file.to_str().unwrap(),
    ];
    let mut node = Node::start_on(std::ffi::OsStr::new(&url), &args);
    node.create_org("o", true);
    let (_, digest) = node.digest("o");
    let base = digest["records"].as_u64().unwrap() as usize;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let id = format!("before{i}");
        let (status, body) = node.insert("o", &id, &"x".repeat(200));
        assert_eq!(status, 200, "{body}");
        acknowledged.push(id);
    }

    // The disk fills up: writes go on until one is refused.
    let filler = disk.dir.join("filler");
    fill(&filler);
    let mut refused = Vec::new();
    let mut refusals = Vec::new();
    for i in 0..5000 {
        let id = format!("full{i}");
        let (status, body) = node.insert("o", &id, &"y".repeat(2000));
        if status == 200 {
            acknowledged.push(id);
        } else {
            assert_full_disk_refusal(status, &body);
            if status == 507 {
                refused.push(id);
            }
            refusals.push(format!("{status} {}", body["error"]["code"]));
            break;
        }
    }
    assert!(!refusals.is_empty(), "no write was refused on a full disk");
    let after_fill = acknowledged.len() - 20;
    let first_refusal = refusals[0].clone();
    if placement == OnSmallDisk::Tablespace {
        assert!(first_refusal.starts_with("507"), "{first_refusal}");
    }
    // The next writes: refused the same way, or taken where a page still had room (a refused
    // transaction's space is free again).
    for i in 0..3 {
        let id = format!("refused-again{i}");
        let (status, body) = node.insert("o", &id, &"z".repeat(2000));
        if status == 200 {
            acknowledged.push(id);
            continue;
        }
        assert_full_disk_refusal(status, &body);
        refusals.push(format!("{status} {}", body["error"]["code"]));
        // A 503 may have lost the connection after a commit: its outcome is unknown; a 507
        // was rolled back.
        if status == 507 {
            refused.push(id);
        }
    }
    // Reads keep working; the node lives.
    for id in &acknowledged {
        let (status, body) = node.read("o", id);
        assert_eq!(status, 200, "{id}: {body}");
    }
    let (status, digest) = node.digest("o");
    assert_eq!(status, 200, "{digest}");
    // Every acknowledged write, and at most the writes answered 503 (outcome unknown, D126).
    let records = digest["records"].as_u64().unwrap() as usize;
    assert!(
        (base + acknowledged.len()..=base + acknowledged.len() + refusals.len()).contains(&records),
        "{digest}"
    );
    assert_eq!(node.call("GET", "/healthz", None).0, 200);
    assert!(
        node.child.try_wait().unwrap().is_none(),
        "the node exited on a full disk"
    );
    if placement == OnSmallDisk::Tablespace {
        assert!(pg.running(), "PostgreSQL stopped: {}", pg.log());
    }
    let panicked = pg.log().contains("PANIC");

    // Space returns: writes resume without a restart of the node (PostgreSQL is started again
    // if its recovery found no space and it stopped, as its operator would).
    std::fs::remove_file(&filler).unwrap();
    let mut restarted_postgres = false;
    if !pg.running() {
        assert!(pg.pg_ctl_start(), "PostgreSQL did not start: {}", pg.log());
        restarted_postgres = true;
    }
    // A new id each attempt: an attempt answered 503 may have committed (D126).
    let (mut resumed, mut attempt) = (None, 0);
    assert!(
        eventually(Duration::from_secs(60), || {
            attempt += 1;
            let id = format!("after{attempt}");
            let (status, body) = node.insert("o", &id, "space is back");
            resumed = Some((status, body));
            if status == 200 {
                acknowledged.push(id);
            }
            status == 200
        }),
        "writes did not resume: {resumed:?}"
    );
    assert!(
        node.child.try_wait().unwrap().is_none(),
        "the node exited while PostgreSQL came back"
    );
    assert!(
        eventually(Duration::from_secs(30), || node
            .call("GET", "/readyz", None)
            .0
            == 200),
        "the node did not become ready again"
    );

    // Nothing acknowledged was lost, nothing refused with `storage_full` is there, after a kill
    // and a restart.
    let (_, served) = node.digest("o");
    let served_records = served["records"].as_u64().unwrap() as usize;
    node.kill();
    let node = Node::start_on(std::ffi::OsStr::new(&url), &args);
    for id in &acknowledged {
        let (status, body) = node.read("o", id);
        assert_eq!(status, 200, "{id} was lost: {body}");
    }
    for id in &refused {
        let (status, _) = node.read("o", id);
        assert_eq!(status, 404, "{id} was refused but is there");
    }
    let (status, after) = node.digest("o");
    assert_eq!(status, 200, "{after}");
    // Every acknowledged write, and at most the writes answered 503 whose outcome is unknown
    // (the refusals, and the attempts before writes resumed).
    assert!(
        served_records >= base + acknowledged.len()
            && served_records <= base + acknowledged.len() + refusals.len() + attempt,
        "{served}"
    );
    assert_eq!(after["records"], served["records"], "{after}");
    assert_eq!(after["sha256"], served["sha256"], "{after} {served}");
    let (status, verified) = node.call("GET", "/api/v1/orgs/o/audit/verify", None);
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["intact"], json!(true), "{verified}");
    eprintln!(
        "figures: {placement:?} on a full disk, PostgreSQL: {} writes acknowledged ({after_fill} after the filler), refusals {refusals:?} (first {first_refusal}); PostgreSQL PANICked: {panicked}, started again by the test: {restarted_postgres}; all present after the node's restart, the refused absent",
        acknowledged.len(),
    );
}
