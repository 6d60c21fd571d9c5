//! `strata bench crash`: the crash checker (issue 15). A real `strata serve` process on a SQLite
//! file or a PostgreSQL database takes a mixed stream of writes — records created, updated and
//! deleted, shares granted and revoked, roles assigned and removed, team members added and
//! removed, batches of several operations — from several clients over HTTP; at a random moment
//! it is killed with SIGKILL, restarted on the same database, and checked:
//!
//! - every acknowledged write is in the log at the revision its answer gave, operation for
//!   operation (none lost);
//! - every write in flight at the kill is wholly in the log or wholly absent (none half-applied),
//!   and nothing else is there (a refused write, or one never sent, is absent);
//! - the log's revisions run 1, 2, 3… with no gap up to the store's revision, its chain verifies
//!   (`Store::operations`, as `strata log verify` reads it) and so does the audit chain
//!   (`Store::verify_audit`);
//! - the restarted server's digest (`GET …/digest`: it loaded the newest checkpoint and the log
//!   after it) equals the SHA-256 of the canonical dump of a fresh replay of the whole log, and
//!   its indexes equal a rebuild.
//!
//! The checker only talks HTTP to the server and reads the store through `strata-store`, so it
//! holds any correct write path to these promises. It prints a table; a lost, half-applied or
//! failed check makes it exit with an error.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};
use sha2::Digest as _;
use strata_ops::Operation;
use strata_scenario::http_client::HttpClient;
use strata_store::postgres_testing::ScratchDatabase;
use strata_store::{PostgresStore, SqliteStore, Store, Verification, load_organization};

use crate::table;

const ROOT_KEY: &str = "root-key-of-the-crash-checker";
const ORG: &str = "crash";

/// What `strata bench crash` is asked to do.
#[derive(Debug, Clone)]
pub struct CrashOptions {
    /// Kill and restart cycles.
    pub cycles: usize,
    /// Concurrent writing clients.
    pub clients: usize,
    /// The kill comes at a random moment between these, after the clients start (ms).
    pub min_ms: u64,
    pub max_ms: u64,
    /// The seed of the random choices (writes and kill moments).
    pub seed: u64,
    /// `--checkpoint-every` of the server (0 = no checkpoints).
    pub checkpoint_every: u64,
    /// A PostgreSQL server (a scratch database is made on it and dropped after); SQLite in a
    /// temporary folder otherwise.
    pub postgres: Option<String>,
    /// Keep the scratch SQLite folder here instead of a temporary one.
    pub dir: Option<PathBuf>,
    /// The checker's own test: pretend, after the first kill, that a write never sent was
    /// acknowledged (`lost`) or that an acknowledged one was in flight with one more
    /// operation (`half`), so that the checks must fail.
    pub inject: Option<Inject>,
}

/// A fault the checker pretends to see, to show that its checks can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    Lost,
    Half,
}

impl std::str::FromStr for Inject {
    type Err = String;
    fn from_str(s: &str) -> Result<Inject, String> {
        match s {
            "lost" => Ok(Inject::Lost),
            "half" => Ok(Inject::Half),
            _ => Err(format!("`{s}`: lost or half")),
        }
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Where the server's data lives, and how the checker opens it.
pub(crate) enum Db {
    Sqlite(PathBuf),
    Postgres {
        scratch: ScratchDatabase,
        key_file: PathBuf,
    },
}

impl Db {
    fn arg(&self) -> &std::ffi::OsStr {
        match self {
            Db::Sqlite(path) => path.as_os_str(),
            Db::Postgres { scratch, .. } => std::ffi::OsStr::new(scratch.url()),
        }
    }
    fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        Ok(match self {
            Db::Sqlite(path) => Box::new(SqliteStore::open(path)?),
            Db::Postgres { scratch, key_file } => {
                Box::new(PostgresStore::open(scratch.url(), key_file)?)
            }
        })
    }
    fn name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "SQLite",
            Db::Postgres { .. } => "PostgreSQL",
        }
    }
}

/// A running `strata serve`.
pub(crate) struct Server {
    child: Child,
    client: HttpClient,
}

impl Server {
    /// Starts a server on `db`; returns it once `/readyz` answers 200, with the time that took.
    pub(crate) fn start(db: &Db, checkpoint_every: u64) -> anyhow::Result<(Server, Duration)> {
        let started = Instant::now();
        let exe = std::env::current_exe().context("cannot find the strata executable")?;
        let mut command = Command::new(exe);
        command
            .arg("serve")
            .arg("--db")
            .arg(db.arg())
            .args(["--listen", "127.0.0.1:0", "--root-key", ROOT_KEY])
            .args(["--checkpoint-every", &checkpoint_every.to_string()])
            .args(["--poll-ms", "200"])
            .env_remove("STRATA_AUDIT_KEY_FILE")
            .env("STRATA_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Db::Postgres { key_file, .. } = db {
            command.arg("--audit-key-file").arg(key_file);
        }
        let mut child = command.spawn().context("cannot start strata serve")?;
        let url = crate::bench_writes::serving_url(&mut child)?;
        let server = Server {
            child,
            client: HttpClient::new(&url, Duration::from_secs(30)).map_err(|e| anyhow!(e))?,
        };
        loop {
            if let Ok((200, _)) = server.call("GET", "/readyz", None) {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("strata serve was not ready within 120 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok((server, started.elapsed()))
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), String> {
        call(&self.client, method, path, body)
    }

    /// SIGKILL, and the process reaped.
    /// The server process's peak resident memory so far, in bytes (Linux).
    pub(crate) fn peak_rss(&self) -> Option<u64> {
        crate::bench_memory::process_status_bytes(&self.child.id().to_string(), "VmHWM")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request with the root key; the status and the JSON body (`null` when there is none).
fn call(
    client: &HttpClient,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value), String> {
    let auth = format!("Bearer {ROOT_KEY}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let body = body.map(Value::to_string);
    let r = client.request(method, path, &headers, body.as_deref().map(str::as_bytes))?;
    Ok((
        r.status,
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    ))
}

/// The organisation's model: units, a table with audit on, roles.
fn model() -> Value {
    json!([
        {"op": "add_business_unit", "name": "Root"},
        {"op": "add_business_unit", "name": "East", "parent": "Root"},
        {"op": "add_business_unit", "name": "West", "parent": "Root"},
        {"op": "add_table", "name": "account", "columns": [{"name": "name"}, {"name": "region"}]},
        {"op": "set_audit", "enabled": true, "tables": ["account"]},
        {"op": "add_role", "name": "Rep", "privileges": {"account": {
            "create": "user", "read": "business_unit", "write": "user", "share": "user"}}},
        {"op": "add_role", "name": "Viewer", "privileges": {"account": {"read": "organization"}}}
    ])
}

/// One write a client sent.
struct Sent {
    client: usize,
    ops: Vec<Operation>,
    outcome: Outcome,
}

/// What became of a write.
#[derive(Debug)]
enum Outcome {
    /// 200 with this revision (the batch's last operation).
    Acknowledged(u64),
    /// An answer other than 200: must be absent.
    Refused(u16, String),
    /// No connection could be made (the server was gone): never sent, must be absent.
    NotSent,
    /// Sent, and no answer came: in flight at the kill.
    InFlight,
}

/// What a client knows from acknowledged writes only.
struct ClientState {
    prefix: String,
    records: Vec<String>,
    next_record: usize,
    shares: Vec<(String, String)>,
    viewer: [bool; 2],
    member: [bool; 2],
}

impl ClientState {
    fn user(&self, i: usize) -> String {
        format!("{}{}", self.prefix, ["a", "b"][i])
    }
    fn team(&self) -> String {
        format!("team:{}t", self.prefix)
    }
    fn new_record(&mut self, rng: &mut Rng) -> (String, Value) {
        let id = format!("{}r{}", self.prefix, self.next_record);
        self.next_record += 1;
        let region = ["n", "s"][rng.below(2)];
        let op = json!({"op": "insert_record", "table": "account", "id": id,
            "owner": self.user(rng.below(2)),
            "fields": {"name": format!("record {id}"), "region": region}});
        (id, op)
    }
}

/// The next write of a client, and how to update its state if it is acknowledged.
type Apply = Box<dyn FnOnce(&mut ClientState) + Send>;

fn next_write(state: &mut ClientState, rng: &mut Rng, n: usize) -> (Vec<Value>, Apply) {
    let live = state.records.len();
    let roll = rng.below(100);
    if roll < 28 || live == 0 {
        let (id, op) = state.new_record(rng);
        return (vec![op], Box::new(move |s| s.records.push(id)));
    }
    let pick = state.records[rng.below(live)].clone();
    if roll < 42 {
        let op = json!({"op": "update", "record": pick, "fields": {"name": format!("update {n}")}});
        return (vec![op], Box::new(|_| {}));
    }
    if roll < 50 {
        let op = json!({"op": "delete", "record": pick});
        return (
            vec![op],
            Box::new(move |s| {
                s.records.retain(|r| *r != pick);
                s.shares.retain(|(r, _)| *r != pick);
            }),
        );
    }
    if roll < 62 {
        let principal = if rng.below(2) == 0 {
            state.user(1)
        } else {
            state.team()
        };
        let rights = [json!(["read"]), json!(["read", "write"])][rng.below(2)].clone();
        let op = json!({"op": "share", "record": pick, "principal": principal, "rights": rights});
        return (
            vec![op],
            Box::new(move |s| {
                if !s.shares.contains(&(pick.clone(), principal.clone())) {
                    s.shares.push((pick, principal));
                }
            }),
        );
    }
    if roll < 69 && !state.shares.is_empty() {
        let (record, principal) = state.shares[rng.below(state.shares.len())].clone();
        let op = json!({"op": "revoke", "record": record, "principal": principal});
        return (
            vec![op],
            Box::new(move |s| {
                s.shares
                    .retain(|x| *x != (record.clone(), principal.clone()))
            }),
        );
    }
    if roll < 77 {
        let i = rng.below(2);
        let user = state.user(i);
        let on = state.viewer[i];
        let verb = if on { "remove_role" } else { "assign_role" };
        let op = json!({"op": verb, "principal": user, "role": "Viewer"});
        return (vec![op], Box::new(move |s| s.viewer[i] = !on));
    }
    if roll < 85 {
        let i = rng.below(2);
        let user = state.user(i);
        let on = state.member[i];
        let verb = if on {
            "remove_team_member"
        } else {
            "add_team_member"
        };
        let op = json!({"op": verb, "team": format!("{}t", state.prefix), "user": user});
        return (vec![op], Box::new(move |s| s.member[i] = !on));
    }
    // A batch: new records, one of them shared, an update of an older one.
    let count = 2 + rng.below(3);
    let mut ops = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..count {
        let (id, op) = state.new_record(rng);
        ops.push(op);
        ids.push(id);
    }
    let team = state.team();
    ops.push(json!({"op": "share", "record": ids[0], "principal": team, "rights": ["read"]}));
    ops.push(json!({"op": "update", "record": pick, "fields": {"region": format!("batch {n}")}}));
    let first = ids[0].clone();
    (
        ops,
        Box::new(move |s| {
            s.records.extend(ids);
            s.shares.push((first, team));
        }),
    )
}

/// One client's writes until `stop`: each with its outcome. A write without an answer ends it.
fn client_run(url: &str, cycle: usize, k: usize, seed: u64, stop: &AtomicBool) -> Vec<Sent> {
    let mut sent = Vec::new();
    let Ok(client) = HttpClient::new(url, Duration::from_secs(30)) else {
        return sent;
    };
    let mut rng = Rng::new(seed ^ ((cycle as u64) << 20) ^ k as u64);
    let prefix = format!("c{cycle}k{k}");
    let mut state = ClientState {
        prefix: prefix.clone(),
        records: Vec::new(),
        next_record: 0,
        shares: Vec::new(),
        viewer: [false; 2],
        member: [false; 2],
    };
    // The client's own users and team, in one batch.
    let first: Vec<Value> = vec![
        json!({"op": "add_user", "name": format!("{prefix}a"), "business_unit": "East"}),
        json!({"op": "add_user", "name": format!("{prefix}b"), "business_unit": "West"}),
        json!({"op": "add_team", "name": format!("{prefix}t"), "type": "owner", "business_unit": "Root"}),
        json!({"op": "assign_role", "principal": format!("{prefix}a"), "role": "Rep"}),
        json!({"op": "assign_role", "principal": format!("{prefix}b"), "role": "Rep"}),
    ];
    let mut pending: Option<(Vec<Value>, Apply)> = Some((first, Box::new(|_| {})));
    let path = format!("/api/v1/orgs/{ORG}/operations");
    for n in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let (values, apply) = pending
            .take()
            .unwrap_or_else(|| next_write(&mut state, &mut rng, n));
        let ops = match values
            .iter()
            .map(|v| serde_json::from_value::<Operation>(v.clone()))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(ops) => ops,
            // A bug of the checker's: shown as a refusal, never sent.
            Err(e) => {
                sent.push(Sent {
                    client: k,
                    ops: Vec::new(),
                    outcome: Outcome::Refused(0, format!("the checker built a bad operation: {e}")),
                });
                continue;
            }
        };
        let outcome = match call(&client, "POST", &path, Some(&Value::Array(values))) {
            Ok((200, body)) => match body["revision"].as_u64() {
                Some(revision) => {
                    apply(&mut state);
                    Outcome::Acknowledged(revision)
                }
                None => Outcome::Refused(200, format!("no revision in {body}")),
            },
            Ok((status, body)) => Outcome::Refused(status, body.to_string()),
            Err(e) if e.contains("cannot connect") => Outcome::NotSent,
            Err(_) => Outcome::InFlight,
        };
        let done = matches!(outcome, Outcome::NotSent | Outcome::InFlight);
        sent.push(Sent {
            client: k,
            ops,
            outcome,
        });
        if done {
            break;
        }
    }
    sent
}

/// The figures of one store.
#[derive(Default)]
struct Figures {
    cycles: usize,
    acknowledged: usize,
    acknowledged_ops: usize,
    in_flight: usize,
    in_flight_present: usize,
    refused: usize,
    lost: usize,
    half_applied: usize,
    failures: Vec<String>,
    ready: Vec<Duration>,
    revision: u64,
}

/// What the checker remembers across cycles: every acknowledged write, with the revision of
/// its first operation in the log once found.
struct Ledger {
    acknowledged: Vec<(u64, Vec<Operation>)>,
    /// The log's revision after the last verification: rows up to it are accounted for.
    accounted: u64,
}

/// `strata bench crash`.
pub fn run(options: &CrashOptions) -> anyhow::Result<()> {
    let scratch_dir = tempfile::tempdir()?;
    let dir = options
        .dir
        .clone()
        .unwrap_or_else(|| scratch_dir.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let db = match &options.postgres {
        Some(url) => Db::Postgres {
            scratch: ScratchDatabase::create(url)
                .map_err(|e| anyhow!("cannot make a scratch database on {url}: {e}"))?,
            key_file: dir.join("audit-key"),
        },
        None => {
            let path = dir.join("crash.db");
            if path.exists() {
                bail!(
                    "{} exists already: the checker starts from an empty database",
                    path.display()
                );
            }
            Db::Sqlite(path)
        }
    };
    println!(
        "crash checker on {}: {} cycles, {} clients, kill after {}–{} ms, seed {}, checkpoint every {} operations",
        db.name(),
        options.cycles,
        options.clients,
        options.min_ms,
        options.max_ms,
        options.seed,
        options.checkpoint_every
    );
    let figures = cycles(&db, options)?;
    print_figures(db.name(), &figures);
    println!(
        "figures: store={} cycles={} acknowledged={} in_flight={} lost={} half_applied={} failures={}",
        db.name(),
        figures.cycles,
        figures.acknowledged,
        figures.in_flight,
        figures.lost,
        figures.half_applied,
        figures.failures.len()
    );
    if figures.lost > 0 || figures.half_applied > 0 || !figures.failures.is_empty() {
        for f in figures.failures.iter().take(20) {
            eprintln!("failure: {f}");
        }
        bail!(
            "{}: {} lost, {} half-applied, {} verification failures",
            db.name(),
            figures.lost,
            figures.half_applied,
            figures.failures.len()
        );
    }
    Ok(())
}

fn cycles(db: &Db, options: &CrashOptions) -> anyhow::Result<Figures> {
    let mut figures = Figures::default();
    let (mut server, _) = Server::start(db, options.checkpoint_every)?;
    let (status, body) = server
        .call("POST", "/api/v1/orgs", Some(&json!({ "name": ORG })))
        .map_err(|e| anyhow!(e))?;
    if status != 201 {
        bail!("cannot create the organisation: {status} {body}");
    }
    let (status, body) = server
        .call(
            "POST",
            &format!("/api/v1/orgs/{ORG}/operations"),
            Some(&model()),
        )
        .map_err(|e| anyhow!(e))?;
    let setup = body["revision"].as_u64().filter(|_| status == 200);
    let Some(setup) = setup else {
        bail!("cannot write the model: {status} {body}");
    };
    let mut ledger = Ledger {
        acknowledged: Vec::new(),
        accounted: setup,
    };
    let mut rng = Rng::new(options.seed);
    let mut shown_refusals = 0;
    for cycle in 0..options.cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let url = server.client.base_url();
        let handles: Vec<_> = (0..options.clients)
            .map(|k| {
                let stop = Arc::clone(&stop);
                let url = url.clone();
                let seed = options.seed;
                std::thread::spawn(move || client_run(&url, cycle, k, seed, &stop))
            })
            .collect();
        let span = options.max_ms.saturating_sub(options.min_ms);
        let wait = options.min_ms + rng.next() % (span + 1);
        std::thread::sleep(Duration::from_millis(wait));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        let mut sent = Vec::new();
        for h in handles {
            sent.extend(h.join().map_err(|_| anyhow!("a client thread panicked"))?);
        }
        let (restarted, ready) = Server::start(db, options.checkpoint_every)?;
        server = restarted;
        figures.ready.push(ready);
        figures.cycles += 1;
        for s in &sent {
            if let Outcome::Refused(status, body) = &s.outcome {
                figures.refused += 1;
                if shown_refusals < 5 {
                    shown_refusals += 1;
                    eprintln!("note: cycle {cycle}: a write was refused: {status} {body}");
                }
            }
        }
        if cycle == 0 {
            inject(options.inject, &mut sent)?;
        }
        verify(cycle, db, &server, sent, &mut ledger, &mut figures)?;
        if (cycle + 1) % 10 == 0 || cycle + 1 == options.cycles {
            println!(
                "  {} cycles: {} writes acknowledged, {} in flight at the kills, revision {}",
                cycle + 1,
                figures.acknowledged,
                figures.in_flight,
                figures.revision
            );
        }
    }
    Ok(figures)
}

/// The checker's self-test: a fault added to what the clients saw.
fn inject(fault: Option<Inject>, sent: &mut Vec<Sent>) -> anyhow::Result<()> {
    let never: Operation = serde_json::from_value(json!({"op": "insert_record",
        "table": "account", "id": "never-sent", "owner": "c0k0a"}))?;
    match fault {
        None => {}
        Some(Inject::Lost) => {
            let revision = sent
                .iter()
                .filter_map(|s| match s.outcome {
                    Outcome::Acknowledged(r) => Some(r),
                    _ => None,
                })
                .max()
                .ok_or_else(|| anyhow!("nothing was acknowledged"))?;
            sent.push(Sent {
                client: 0,
                ops: vec![never],
                outcome: Outcome::Acknowledged(revision),
            });
        }
        Some(Inject::Half) => {
            let s = sent
                .iter_mut()
                .find(|s| matches!(s.outcome, Outcome::Acknowledged(_)))
                .ok_or_else(|| anyhow!("nothing was acknowledged"))?;
            s.ops.push(never);
            s.outcome = Outcome::InFlight;
        }
    }
    Ok(())
}

/// The checks after a restart; what fails is added to `figures`.
fn verify(
    cycle: usize,
    db: &Db,
    server: &Server,
    sent: Vec<Sent>,
    ledger: &mut Ledger,
    figures: &mut Figures,
) -> anyhow::Result<()> {
    let mut fail = |what: String| figures.failures.push(format!("cycle {cycle}: {what}"));
    let store = db.open()?;
    // The log, verified (MACs, no gap, sealed head), and gap-free from 1.
    let entries = match store.operations(ORG, 0) {
        Ok(entries) => entries,
        Err(e) => {
            fail(format!(
                "the operation log does not verify: {e} ({})",
                e.code()
            ));
            return Ok(());
        }
    };
    let revision = store.revision(ORG)?;
    if entries.len() as u64 != revision
        || entries
            .iter()
            .enumerate()
            .any(|(i, e)| e.revision != i as u64 + 1)
    {
        fail(format!(
            "the log's revisions are not 1..={revision} without a gap ({} rows)",
            entries.len()
        ));
        return Ok(());
    }
    if revision < ledger.accounted {
        fail(format!(
            "the revision went back from {} to {revision}",
            ledger.accounted
        ));
        return Ok(());
    }
    figures.revision = revision;
    match store.verify_audit(ORG) {
        Ok(Verification::Intact { .. }) => {}
        Ok(Verification::Tampered { seq, problem }) => {
            fail(format!("the audit chain breaks at {seq}: {problem}"))
        }
        Err(e) => fail(format!("the audit chain cannot be read: {e}")),
    }
    let row = |r: u64| &entries[(r - 1) as usize].operation;
    let mut claimed = vec![false; entries.len() + 1];
    for r in 1..=ledger.accounted {
        claimed[r as usize] = true;
    }

    // Every acknowledged write of earlier cycles is still where it was found.
    for (start, ops) in &ledger.acknowledged {
        let intact = start + ops.len() as u64 - 1 <= revision
            && ops
                .iter()
                .enumerate()
                .all(|(i, op)| row(start + i as u64) == op);
        if !intact {
            figures.lost += 1;
            fail(format!(
                "the write of {} operations found at revision {start} is gone",
                ops.len()
            ));
        }
    }
    // This cycle's: each is a run of its operations in the log ending at or before the revision
    // its answer gave (at it exactly, unless a write path answers with a later revision, as a
    // group commit may), and one client's writes appear in the order they were acknowledged.
    let mut in_flight = Vec::new();
    let mut acknowledged = Vec::new();
    for s in sent {
        match s.outcome {
            Outcome::Acknowledged(r) => acknowledged.push((r, s.client, s.ops)),
            Outcome::InFlight => {
                figures.in_flight += 1;
                in_flight.push(s.ops);
            }
            Outcome::Refused(..) | Outcome::NotSent => {}
        }
    }
    acknowledged.sort_by_key(|(r, _, _)| *r);
    let mut last_of_client: std::collections::HashMap<usize, u64> = Default::default();
    for (r, client, ops) in acknowledged {
        figures.acknowledged += 1;
        figures.acknowledged_ops += ops.len();
        let n = ops.len() as u64;
        let fits = |start: u64, claimed: &[bool]| {
            ops.iter().enumerate().all(|(i, op)| {
                let x = start + i as u64;
                !claimed[x as usize] && row(x) == op
            })
        };
        let lowest = ledger.accounted + 1;
        let found = (r >= n && r <= revision && r - n + 1 >= lowest)
            .then(|| {
                (lowest..=r - n + 1)
                    .rev()
                    .find(|&start| fits(start, &claimed))
            })
            .flatten();
        let Some(start) = found else {
            figures.lost += 1;
            fail(format!(
                "an acknowledged write of {n} operations answered with revision {r} is not in the log"
            ));
            continue;
        };
        for x in start..start + n {
            claimed[x as usize] = true;
        }
        if let Some(previous) = last_of_client.insert(client, start)
            && previous > start
        {
            fail(format!(
                "client {client}'s writes are out of order in the log: {previous} before {start}"
            ));
        }
        ledger.acknowledged.push((start, ops));
    }
    // A write in flight is wholly there (a contiguous run of unclaimed rows) or wholly absent.
    for ops in in_flight {
        let n = ops.len();
        let whole = (ledger.accounted + 1..=revision).find(|&start| {
            start + n as u64 - 1 <= revision
                && ops.iter().enumerate().all(|(i, op)| {
                    let x = start + i as u64;
                    !claimed[x as usize] && row(x) == op
                })
        });
        if let Some(start) = whole {
            figures.in_flight_present += 1;
            for x in start..start + n as u64 {
                claimed[x as usize] = true;
            }
            continue;
        }
        let partly = ops.iter().any(|op| {
            (ledger.accounted + 1..=revision).any(|x| !claimed[x as usize] && row(x) == op)
        });
        if partly {
            figures.half_applied += 1;
            fail(format!(
                "a write of {n} operations in flight is half in the log"
            ));
        }
    }
    let unexplained: Vec<u64> = (1..=revision).filter(|&x| !claimed[x as usize]).collect();
    if let Some(first) = unexplained.first() {
        fail(format!(
            "{} rows of the log are no write's (refused, never sent or half-applied), the first at {first}: {:?}",
            unexplained.len(),
            row(*first)
        ));
    }
    ledger.accounted = revision;

    // The served state equals a fresh replay of the whole log.
    let (org, replayed) = match load_organization(store.as_ref(), ORG) {
        Ok(loaded) => loaded,
        Err(e) => {
            fail(format!("the log does not replay: {e}"));
            return Ok(());
        }
    };
    let replay_digest = hex::encode(sha2::Sha256::digest(org.canonical_dump().as_bytes()));
    match server.call(
        "GET",
        &format!("/api/v1/orgs/{ORG}/digest?min_revision={revision}"),
        None,
    ) {
        Ok((200, body)) => {
            if body["revision"].as_u64() != Some(replayed) || replayed != revision {
                fail(format!(
                    "served revision {} and replayed {replayed}, the log's {revision}",
                    body["revision"]
                ));
            }
            if body["sha256"].as_str() != Some(replay_digest.as_str()) {
                fail(format!(
                    "the served digest {} is not the replay's {replay_digest}",
                    body["sha256"]
                ));
            }
            if body["indexes_current"] != true || body["record_index_current"] != true {
                fail(format!("the served indexes are not a rebuild's: {body}"));
            }
        }
        Ok((status, body)) => fail(format!("the digest: {status} {body}")),
        Err(e) => fail(format!("the digest: {e}")),
    }
    Ok(())
}

fn print_figures(store: &str, f: &Figures) {
    let mut ready: Vec<Duration> = f.ready.clone();
    ready.sort();
    let median = ready.get(ready.len() / 2).copied().unwrap_or_default();
    let max = ready.last().copied().unwrap_or_default();
    table::print(
        &[
            "store",
            "cycles",
            "writes acknowledged (operations)",
            "in flight at the kill (present after)",
            "refused",
            "lost",
            "half-applied",
            "verification failures",
            "restart to ready p50 (max)",
            "final revision",
        ],
        &[vec![
            store.to_owned(),
            f.cycles.to_string(),
            format!("{} ({})", f.acknowledged, f.acknowledged_ops),
            format!("{} ({})", f.in_flight, f.in_flight_present),
            f.refused.to_string(),
            f.lost.to_string(),
            f.half_applied.to_string(),
            f.failures.len().to_string(),
            format!(
                "{:.0} ms ({:.0} ms)",
                median.as_secs_f64() * 1000.0,
                max.as_secs_f64() * 1000.0
            ),
            f.revision.to_string(),
        ]],
    );
}

/// The default seed: the time.
#[must_use]
pub fn time_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}
