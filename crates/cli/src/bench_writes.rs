//! `strata bench writes` and `strata bench mixed`: writes and checks over HTTP against real
//! `strata serve` processes (this binary, started on a port the system picks).
//!
//! `writes`: record creates and shares, one operation per request, from 16 and 64 keep-alive
//! connections, on SQLite (and on PostgreSQL with one and two nodes on one organisation when
//! `--postgres` names a server), with group commit and, in the same run, with each write
//! committed on its own (`--group-commit-max 1`: the design before group commit); then bulk
//! loads (batches of 1,000 creates per request). Every figure is durable: a write is counted
//! when the server answered it, which it does after its commit.
//!
//! `mixed`: the check's latency over HTTP while nothing else runs, then while writers keep a
//! paced rate of writes on the same organisation.
//!
//! The load generator is a small HTTP/1.1 client on one thread (tokio, keep-alive): on two
//! cores, it leaves the server as much of the machine as it can.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::bench_cmd::percentile;

pub(crate) const ROOT: &str = "bench-writes-root-key";
pub(crate) const ORG: &str = "o";
pub(crate) const USERS: usize = 100;

/// One `strata serve` process.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
}

impl Server {
    pub(crate) fn start(
        db: &str,
        key_file: &Path,
        group_max: Option<usize>,
    ) -> anyhow::Result<Server> {
        Server::start_with(db, key_file, group_max, false)
    }

    /// A node that advertises where it listens, so that it may take write leases and other
    /// nodes forward writes to it (D150).
    pub(crate) fn start_leading(
        db: &str,
        key_file: &Path,
        group_max: Option<usize>,
    ) -> anyhow::Result<Server> {
        Server::start_with(db, key_file, group_max, true)
    }

    fn start_with(
        db: &str,
        key_file: &Path,
        group_max: Option<usize>,
        advertise: bool,
    ) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("the strata binary")?;
        let mut command = Command::new(exe);
        let listen = if advertise {
            // A port the system gives now, for the node to listen on and advertise.
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            format!("127.0.0.1:{port}")
        } else {
            "127.0.0.1:0".to_owned()
        };
        command.args(["serve", "--db", db, "--listen", &listen]);
        if advertise {
            command.args(["--advertise-url", &format!("http://{listen}")]);
        }
        command
            .args(["--root-key", ROOT, "--audit-key-file"])
            .arg(key_file)
            .args(["--checkpoint-every", "0"])
            .env("STRATA_LOG", "warn")
            .env_remove("STRATA_AUDIT_KEY_FILE")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(n) = group_max {
            command.args(["--group-commit-max", &n.to_string()]);
        }
        let mut child = command.spawn().context("starting strata serve")?;
        let url = serving_url(&mut child)?;
        let addr = url.trim_start_matches("http://").to_owned();
        Ok(Server { child, addr })
    }
}

/// Reads a `strata serve` child's output until it names the address it serves on; returns
/// the URL (`http://127.0.0.1:PORT`) and leaves the rest of the output drained by a thread.
/// The child is killed when it stops before serving.
pub(crate) fn serving_url(child: &mut Child) -> anyhow::Result<String> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no output from strata serve"))?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let url = loop {
        let Some(line) = lines.next() else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("strata serve stopped before serving");
        };
        let line = line?;
        if let Some(at) = line.find("http://127.0.0.1:") {
            let url: String = line[at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            break url
                .trim_end_matches(|c: char| !c.is_ascii_digit())
                .to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    Ok(url)
}

/// A scratch folder in `dir`, or in the system's temporary folder.
pub(crate) fn scratch_dir(dir: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    Ok(match dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    })
}

impl Server {
    /// The server process's id.
    pub(crate) fn child_id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One keep-alive HTTP/1.1 connection.
pub(crate) struct Conn {
    stream: BufReader<TcpStream>,
    head: String,
    line: String,
}

impl Conn {
    pub(crate) async fn open(addr: &str) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            head: String::new(),
            line: String::new(),
        })
    }

    /// Sends one request with the root key; the status and the body.
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        self.call_as(method, path, &format!("Authorization: Bearer {ROOT}"), body)
            .await
            .map(|(status, _, body)| (status, body))
    }

    /// Sends one request with `credentials` (a header line); the status, the `Set-Cookie`
    /// value (if any) and the body.
    pub(crate) async fn call_as(
        &mut self,
        method: &str,
        path: &str,
        credentials: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Option<String>, Vec<u8>)> {
        use std::fmt::Write as _;
        self.head.clear();
        let _ = write!(
            self.head,
            "{method} {path} HTTP/1.1\r\nHost: bench\r\n{credentials}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            if path.starts_with("/console") {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            },
            body.len()
        );
        let stream = self.stream.get_mut();
        stream.write_all(self.head.as_bytes()).await?;
        stream.write_all(body).await?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await?;
        let status: u16 = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("not an HTTP answer: {:?}", self.line))?;
        let mut length = 0;
        let mut cookie = None;
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await? == 0 {
                bail!("the server closed the connection");
            }
            let line = self.line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                } else if name.eq_ignore_ascii_case("set-cookie") {
                    cookie = value.trim().split(';').next().map(str::to_owned);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("chunked answers are not read by the bench client");
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, cookie, body))
    }

    /// Sends operations; fails unless they were written.
    pub(crate) async fn write(&mut self, ops: &Value) -> anyhow::Result<()> {
        let path = format!("/api/v1/orgs/{ORG}/operations");
        let (status, body) = self.call("POST", &path, ops.to_string().as_bytes()).await?;
        if status != 200 {
            bail!(
                "a write was refused ({status}): {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(())
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The organisation's model: two units, an audited account table, a role that may create,
/// write and share its own accounts, and `USERS` users holding it.
fn model() -> Value {
    let columns: Vec<Value> = ["name".to_owned(), "region".to_owned()]
        .into_iter()
        .chain((1..=extra_columns()).map(|c| format!("c{c}")))
        .map(|name| json!({ "name": name }))
        .collect();
    let mut ops = vec![
        json!({"op": "add_business_unit", "name": "Root"}),
        json!({"op": "add_business_unit", "name": "East", "parent": "Root"}),
        json!({"op": "add_business_unit", "name": "West", "parent": "Root"}),
        json!({"op": "add_table", "name": "account", "columns": columns}),
        json!({"op": "set_audit", "enabled": true, "tables": ["account"]}),
        json!({"op": "add_role", "name": "Rep", "privileges": {"account": {
            "create": "user", "read": "business_unit", "write": "user", "share": "user"
        }}}),
        json!({"op": "add_role", "name": "Admin", "system_administrator": true}),
        json!({"op": "add_user", "name": "admin", "business_unit": "Root"}),
        json!({"op": "assign_role", "principal": "admin", "role": "Admin"}),
    ];
    for u in 0..USERS {
        let unit = if u % 2 == 0 { "East" } else { "West" };
        ops.push(json!({"op": "add_user", "name": format!("u{u}"), "business_unit": unit}));
        ops.push(json!({"op": "assign_role", "principal": format!("u{u}"), "role": "Rep"}));
    }
    Value::Array(ops)
}

pub(crate) async fn create_org(addr: &str) -> anyhow::Result<()> {
    let mut conn = Conn::open(addr).await?;
    created(
        &mut conn,
        "/api/v1/orgs",
        &json!({ "name": ORG }),
        "the organisation",
    )
    .await?;
    conn.write(&model()).await
}

/// POSTs `body` to `path` with the root key; its answer, which must be 201 (`what` was
/// created).
async fn created(conn: &mut Conn, path: &str, body: &Value, what: &str) -> anyhow::Result<Value> {
    let (status, answer) = conn.call("POST", path, body.to_string().as_bytes()).await?;
    if status != 201 {
        bail!(
            "creating {what} ({status}): {}",
            String::from_utf8_lossy(&answer)
        );
    }
    Ok(serde_json::from_slice(&answer)?)
}

/// Declared columns of the account table besides `name` and `region` (`--columns`): the
/// benchmark's setting, for every organisation it makes.
static EXTRA_COLUMNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn extra_columns() -> usize {
    EXTRA_COLUMNS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The `n`th record of a figure, created by the user who owns it.
pub(crate) fn create_op(figure: &str, n: usize) -> Value {
    json!({"op": "create", "as": format!("u{}", n % USERS), "table": "account",
        "id": format!("{figure}-{n}"), "fields": record_fields(n)})
}

/// The columns the `n`th created record is given.
fn record_fields(n: usize) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("name".to_owned(), json!(format!("bench {n}")));
    fields.insert("region".to_owned(), json!("n"));
    for c in 1..=extra_columns() {
        // A value per record and column, in no order: each column index takes every record.
        fields.insert(format!("c{c}"), json!((n * 7919 + c * 104_729) % 1_000_003));
    }
    fields
}

/// Its owner shares it with the next user.
fn share_op(figure: &str, n: usize) -> Value {
    json!({"op": "share", "as": format!("u{}", n % USERS), "record": format!("{figure}-{n}"),
        "principal": format!("u{}", (n + 1) % USERS), "rights": ["read", "write"]})
}

/// Writes per second: `writes` requests of `per_request` operations made by `op`, from
/// `clients` connections spread over `addrs`.
fn throughput(
    addrs: &[&str],
    clients: usize,
    writes: usize,
    per_request: usize,
    op: &(dyn Fn(usize) -> Value + Sync),
) -> anyhow::Result<f64> {
    let path = format!("/api/v1/orgs/{ORG}/operations");
    let credentials = format!("Authorization: Bearer {ROOT}");
    let seconds = drive(addrs, clients, writes, &|n| {
        let body = match per_request {
            1 => json!([op(n)]),
            k => Value::Array((n * k..(n + 1) * k).map(op).collect()),
        };
        Request {
            path: &path,
            credentials: &credentials,
            body: body.to_string().into_bytes(),
        }
    })?;
    Ok((writes * per_request) as f64 / seconds)
}

/// One request of a load: where it goes, its credentials (a header line) and its JSON body.
struct Request<'a> {
    path: &'a str,
    credentials: &'a str,
    body: Vec<u8>,
}

/// Sends `requests` POST requests made by `request` from `clients` connections spread over
/// `addrs`, each failing the load unless it succeeds; the seconds they took.
fn drive<'a>(
    addrs: &[&str],
    clients: usize,
    requests: usize,
    request: &(dyn Fn(usize) -> Request<'a> + Sync),
) -> anyhow::Result<f64> {
    let rt = runtime()?;
    rt.block_on(async {
        let mut conns = Vec::with_capacity(clients);
        for c in 0..clients {
            conns.push(Conn::open(addrs[c % addrs.len()]).await?);
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let start = Instant::now();
        let tasks = conns.into_iter().map(|mut conn| {
            let next = &next;
            async move {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= requests {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let r = request(n);
                    let (status, _, body) =
                        conn.call_as("POST", r.path, r.credentials, &r.body).await?;
                    if !(200..300).contains(&status) {
                        bail!(
                            "a write was refused ({status}): {}",
                            String::from_utf8_lossy(&body[..body.len().min(300)])
                        );
                    }
                }
            }
        });
        for done in futures_join_all(tasks).await {
            done?;
        }
        Ok(start.elapsed().as_secs_f64())
    })
}

/// The servers' group-commit counters summed: commits, writes, µs in the store.
fn commit_counters(addrs: &[&str]) -> anyhow::Result<[u64; 3]> {
    runtime()?.block_on(async {
        let mut sums = [0; 3];
        for addr in addrs {
            let mut conn = Conn::open(addr).await?;
            let (status, body) = conn.call("GET", "/metrics", b"").await?;
            if status != 200 {
                bail!("/metrics answered {status}");
            }
            let text = String::from_utf8_lossy(&body);
            for line in text.lines() {
                let Some((name, value)) = line.split_once(' ') else {
                    continue;
                };
                let slot = match name {
                    "strata_group_commits_total" => 0,
                    "strata_group_commit_writes_total" => 1,
                    "strata_group_commit_store_microseconds_total" => 2,
                    _ => continue,
                };
                sums[slot] += value.trim().parse::<u64>()?;
            }
        }
        Ok(sums)
    })
}

/// A server process's processor time (ms, user and system, every thread) and the bytes it
/// caused to be written to storage, from `/proc` (zeros elsewhere).
fn process_counters(pid: u32) -> [u64; 2] {
    // `utime` and `stime` are fields 14 and 15, in ticks of 1/100 s (USER_HZ on Linux), after
    // the command name in parentheses, which may hold spaces.
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let fields: Vec<u64> = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            Some((fields.get(11)? + fields.get(12)?) * 10)
        })
        .unwrap_or(0);
    let written = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0);
    [cpu, written]
}

/// A throughput and what it cost: writes per commit and the store's time per commit (ms),
/// from the servers' counters before and after; the servers' processor time per write (µs)
/// and bytes written to storage per write.
struct Measured {
    rate: f64,
    per_commit: f64,
    store_ms: f64,
    cpu_us: f64,
    disk_bytes: f64,
    /// The load generator's processor time per write (µs): it shares the machine.
    client_us: f64,
}

fn measured(
    servers: &[&Server],
    writes: usize,
    run: impl FnOnce() -> anyhow::Result<f64>,
) -> anyhow::Result<Measured> {
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr.as_str()).collect();
    let process = || {
        servers.iter().fold([0, 0], |sum, s| {
            let [cpu, disk] = process_counters(s.child_id());
            [sum[0] + cpu, sum[1] + disk]
        })
    };
    let before = commit_counters(&addrs)?;
    let [cpu_before, disk_before] = process();
    let [client_before, _] = process_counters(std::process::id());
    let rate = run()?;
    let [client_after, _] = process_counters(std::process::id());
    let [cpu_after, disk_after] = process();
    let after = commit_counters(&addrs)?;
    let commits = after[0].saturating_sub(before[0]).max(1) as f64;
    let writes = writes.max(1) as f64;
    Ok(Measured {
        rate,
        per_commit: after[1].saturating_sub(before[1]) as f64 / commits,
        store_ms: after[2].saturating_sub(before[2]) as f64 / commits / 1000.0,
        cpu_us: cpu_after.saturating_sub(cpu_before) as f64 * 1000.0 / writes,
        disk_bytes: disk_after.saturating_sub(disk_before) as f64 / writes,
        client_us: client_after.saturating_sub(client_before) as f64 * 1000.0 / writes,
    })
}

/// Runs futures concurrently on the current thread and collects their outputs in order.
pub(crate) async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in set.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// One row of the writes table.
struct Row {
    store: &'static str,
    nodes: usize,
    commit: &'static str,
    clients: usize,
    creates: Measured,
    shares: Measured,
}

/// The creates and shares figures for one setup, records named by `figure`.
fn figure(
    servers: &[&Server],
    figure_name: &str,
    clients: usize,
    writes: usize,
) -> anyhow::Result<(Measured, Measured)> {
    let addrs: Vec<&str> = servers.iter().map(|s| s.addr.as_str()).collect();
    let creates = measured(servers, writes, || {
        throughput(&addrs, clients, writes, 1, &|n| create_op(figure_name, n))
    })?;
    let shares = measured(servers, writes, || {
        throughput(&addrs, clients, writes, 1, &|n| share_op(figure_name, n))
    })?;
    Ok((creates, shares))
}

/// One store and way of committing, measured at 16 and 64 clients.
struct Setup<'a> {
    store: &'static str,
    commit: &'static str,
    /// Names this setup's records apart from the others'.
    prefix: &'a str,
}

impl Setup<'_> {
    /// Adds the rows of this setup on the nodes at `addrs` (the clients spread over them).
    fn measure(
        &self,
        rows: &mut Vec<Row>,
        servers: &[&Server],
        writes: usize,
        client_counts: &[usize],
    ) -> anyhow::Result<()> {
        for &clients in client_counts {
            let name = format!("{}{clients}", self.prefix);
            let (creates, shares) = figure(servers, &name, clients, writes)?;
            eprintln!(
                "{}, {} node(s), {}, {clients} clients: {:.0} creates/s, {:.0} shares/s",
                self.store,
                servers.len(),
                self.commit,
                creates.rate,
                shares.rate,
            );
            rows.push(Row {
                store: self.store,
                nodes: servers.len(),
                commit: self.commit,
                clients,
                creates,
                shares,
            });
        }
        Ok(())
    }
}

/// Records a second created in batches of 1,000 from `clients` clients; with `guid_ids`,
/// each record's id is a random-looking GUID (a different one for every `n`), as clients that
/// choose their own ids give them (the Web API's own are time-ordered, D156).
fn bulk_rate(addr: &str, records: usize, clients: usize, guid_ids: bool) -> anyhow::Result<f64> {
    let rate = throughput(&[addr], clients, records / 1000, 1000, &|n| {
        let mut op = create_op("bulk", n);
        if guid_ids {
            op["id"] = json!(guid_of(n));
        }
        op
    })?;
    eprintln!("bulk: {rate:.0} records/s");
    Ok(rate)
}

/// The name of a store's native bulk row.
fn native_row(store: &'static str, guid_ids: bool) -> &'static str {
    match (store, guid_ids) {
        ("SQLite", true) => "SQLite, GUID ids",
        ("PostgreSQL", true) => "PostgreSQL, GUID ids",
        (store, _) => store,
    }
}

/// The `n`th bulk record's GUID: `n` mixed (splitmix64), as a version 4 GUID — scattered, never
/// the same for two `n`, never of the form Strata derives (`53545241-…`).
fn guid_of(n: usize) -> String {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    // The high half is a bijection of `n`; the low half keeps `n` itself, so ids never repeat.
    let (high, low) = (mix(n as u64 ^ 0x9e37_79b9_7f4a_7c15), n as u64);
    let first = match (high >> 32) as u32 {
        0x5354_5241 => 0x5354_5242,
        first => first,
    };
    format!(
        "{first:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (high >> 16) & 0xffff,
        high & 0x0fff,
        0x8000 | ((low >> 48) & 0x3fff),
        low & 0xffff_ffff_ffff
    )
}

/// Records a second created through the Dataverse Web API, `CreateMultiple` of 1,000 targets a
/// request, by an ordinary user (`u0`: a role that creates its own accounts), from `clients`
/// clients.
fn webapi_bulk_rate(addr: &str, records: usize, clients: usize) -> anyhow::Result<f64> {
    let key = runtime()?.block_on(user_key(addr, "u0"))?;
    let credentials = format!("Authorization: Bearer {key}");
    let path = "/api/data/v9.2/accounts/Microsoft.Dynamics.CRM.CreateMultiple";
    let requests = records / 1000;
    let seconds = drive(&[addr], clients, requests, &|n| {
        let targets: Vec<Value> = (n * 1000..(n + 1) * 1000)
            .map(|r| {
                let mut target = record_fields(r);
                target.insert(
                    "@odata.type".to_owned(),
                    json!("Microsoft.Dynamics.CRM.account"),
                );
                Value::Object(target)
            })
            .collect();
        Request {
            path,
            credentials: &credentials,
            body: json!({ "Targets": targets }).to_string().into_bytes(),
        }
    })?;
    let rate = (requests * 1000) as f64 / seconds;
    eprintln!("bulk through the Web API: {rate:.0} records/s");
    Ok(rate)
}

/// A new API key of `user`, made with the root key.
pub(crate) async fn user_key(addr: &str, user: &str) -> anyhow::Result<String> {
    let mut conn = Conn::open(addr).await?;
    let key = created(
        &mut conn,
        &format!("/api/v1/orgs/{ORG}/api-keys"),
        &json!({ "user": user }),
        &format!("an API key for {user}"),
    )
    .await?;
    key["key"]
        .as_str()
        .map(str::to_owned)
        .context("the API key's answer has no key")
}

/// What `strata bench writes` measures.
pub(crate) struct WritesOptions<'a> {
    pub(crate) writes: usize,
    pub(crate) bulk: usize,
    /// The clients of the bulk loads.
    pub(crate) bulk_clients: usize,
    pub(crate) postgres: Option<&'a str>,
    pub(crate) dir: Option<&'a Path>,
    pub(crate) group_max: Option<usize>,
    /// The client counts, a row each.
    pub(crate) clients: &'a [usize],
    /// Whether the rows with each write committed alone are measured too.
    pub(crate) alone: bool,
    /// Declared columns of the account table besides `name` and `region`, set by every create.
    pub(crate) columns: usize,
    /// Whether the native bulk rows' records take random GUIDs as ids.
    pub(crate) guid_ids: bool,
}

/// `strata bench writes`.
pub(crate) fn bench_writes(options: &WritesOptions) -> anyhow::Result<()> {
    let &WritesOptions {
        writes,
        bulk,
        bulk_clients,
        postgres,
        dir,
        group_max,
        clients,
        alone: with_alone,
        columns,
        guid_ids,
    } = options;
    EXTRA_COLUMNS.store(columns, std::sync::atomic::Ordering::Relaxed);
    if clients.contains(&0) {
        bail!("--clients: a client count must be at least 1");
    }
    if bulk_clients == 0 {
        bail!("--bulk-clients: at least 1");
    }
    let scratch = scratch_dir(dir)?;
    let key_file = scratch.path().join("audit-key");
    let mut rows = Vec::new();
    let mut bulk_rows = Vec::new();
    let baseline_writes = (writes / 5).max(100);
    if writes > 0 && with_alone {
        println!(
            "{writes} single-operation writes per figure ({baseline_writes} with each write committed on its own), over HTTP keep-alive connections"
        );
    } else if writes > 0 {
        println!("{writes} single-operation writes per figure, over HTTP keep-alive connections");
    }
    println!(
        "accounts of {} declared columns, each set by every create",
        2 + columns
    );
    let setups = [("each write alone", Some(1)), ("group commit", group_max)];
    // With no single-operation writes, only the group-commit servers run (for the bulk loads).
    let setups = &setups[usize::from(writes == 0 || !with_alone)..];
    for &(commit, group) in setups {
        let alone = commit == "each write alone";
        let db: PathBuf = scratch.path().join(format!("writes-{}.db", rows.len()));
        let server = Server::start(&db.to_string_lossy(), &key_file, group)?;
        runtime()?.block_on(create_org(&server.addr))?;
        let n = if alone { baseline_writes } else { writes };
        let setup = Setup {
            store: "SQLite",
            commit,
            prefix: if alone { "sb" } else { "sg" },
        };
        if writes > 0 {
            setup.measure(&mut rows, &[&server], n, clients)?;
        }
        if !alone && bulk > 0 {
            let on = [&server];
            bulk_rows.push((
                native_row("SQLite", guid_ids),
                measured(&on, bulk, || {
                    bulk_rate(&server.addr, bulk, bulk_clients, guid_ids)
                })?,
            ));
            bulk_rows.push((
                "SQLite, Web API CreateMultiple",
                measured(&on, bulk, || {
                    webapi_bulk_rate(&server.addr, bulk, bulk_clients)
                })?,
            ));
        }
    }
    if let Some(url) = postgres {
        for &(commit, group) in setups {
            let alone = commit == "each write alone";
            let db = strata_store::postgres_testing::ScratchDatabase::create(url)?;
            let mut a = Server::start(db.url(), &key_file, group)?;
            runtime()?.block_on(create_org(&a.addr))?;
            let n = if alone { baseline_writes } else { writes };
            let tag = if alone { "b" } else { "g" };
            let one = Setup {
                store: "PostgreSQL",
                commit,
                prefix: &format!("p{tag}"),
            };
            if writes > 0 {
                one.measure(&mut rows, &[&a], n, clients)?;
                let b = Server::start(db.url(), &key_file, group)?;
                let two = Setup {
                    store: "PostgreSQL",
                    commit,
                    prefix: &format!("q{tag}"),
                };
                two.measure(&mut rows, &[&a, &b], n, clients)?;
                if !alone {
                    // Two nodes that advertise themselves: the one holding the organisation's
                    // write lease takes every write, the other forwards them (D150).
                    drop((a, b));
                    let x = Server::start_leading(db.url(), &key_file, group)?;
                    let y = Server::start_leading(db.url(), &key_file, group)?;
                    // A few writes on both, then the time for the leases to be taken.
                    throughput(&[&x.addr, &y.addr], 4, 200, 1, &|n| create_op("warm", n))?;
                    std::thread::sleep(Duration::from_millis(2500));
                    let led = Setup {
                        store: "PostgreSQL",
                        commit: "group commit, write leader",
                        prefix: "lg",
                    };
                    led.measure(&mut rows, &[&x, &y], n, clients)?;
                    drop((x, y));
                    a = Server::start(db.url(), &key_file, group)?;
                }
            }
            if !alone && bulk > 0 {
                let on = [&a];
                bulk_rows.push((
                    native_row("PostgreSQL", guid_ids),
                    measured(&on, bulk, || {
                        bulk_rate(&a.addr, bulk, bulk_clients, guid_ids)
                    })?,
                ));
                bulk_rows.push((
                    "PostgreSQL, Web API CreateMultiple",
                    measured(&on, bulk, || webapi_bulk_rate(&a.addr, bulk, bulk_clients))?,
                ));
            }
        }
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.store.to_owned(),
                r.nodes.to_string(),
                r.commit.to_owned(),
                r.clients.to_string(),
                format!("{:.0}", r.creates.rate),
                format!("{:.0}", r.shares.rate),
                format!("{:.1}", r.creates.per_commit),
                format!("{:.2}", r.creates.store_ms),
                format!("{:.0}", r.creates.cpu_us),
                format!("{:.0}", r.creates.disk_bytes / 1024.0),
                format!("{:.0}", r.creates.client_us),
            ]
        })
        .collect();
    if !rows.is_empty() {
        crate::table::print(
            &[
                "STORE",
                "NODES",
                "COMMIT",
                "CLIENTS",
                "CREATES/S",
                "SHARES/S",
                "CREATES/COMMIT",
                "STORE MS/COMMIT",
                "SERVER CPU µS/CREATE",
                "DISK KIB/CREATE",
                "CLIENT CPU µS/CREATE",
            ],
            &table,
        );
    }
    if !bulk_rows.is_empty() {
        let table: Vec<Vec<String>> = bulk_rows
            .iter()
            .map(|(store, m)| {
                vec![
                    (*store).to_owned(),
                    "1".to_owned(),
                    format!("{:.0}", m.rate),
                    format!("{:.1}", m.per_commit),
                    format!("{:.2}", m.store_ms),
                    format!("{:.1}", m.cpu_us),
                    format!("{:.1}", m.client_us),
                ]
            })
            .collect();
        println!();
        let heading = format!("BULK (1,000 CREATES A REQUEST, {bulk_clients} CLIENTS)");
        // The processor time per record is steadier than the rate on a shared machine: the
        // figure to compare two builds by.
        crate::table::print(
            &[
                heading.as_str(),
                "NODES",
                "RECORDS/S",
                "REQUESTS/COMMIT",
                "STORE MS/COMMIT",
                "SERVER CPU µS/RECORD",
                "CLIENT CPU µS/RECORD",
            ],
            &table,
        );
    }
    Ok(())
}

/// Check latencies (ms, sorted) from `checkers` connections until `until`, paced at `rate`
/// checks a second in all (0: each connection sends its next check when the last is answered).
async fn checks(
    addr: &str,
    checkers: usize,
    rate: usize,
    until: Instant,
    records: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut conns = Vec::new();
    for _ in 0..checkers {
        conns.push(Conn::open(addr).await?);
    }
    let path = format!("/api/v1/orgs/{ORG}/check");
    let tasks = conns.into_iter().enumerate().map(|(c, mut conn)| {
        let path = &path;
        async move {
            let mut times = Vec::new();
            let mut n = c;
            let start = Instant::now();
            let period = (rate > 0).then(|| Duration::from_secs_f64(checkers as f64 / rate as f64));
            let mut k = 0u32;
            while Instant::now() < until {
                if let Some(period) = period {
                    let due = start + period.mul_f64(f64::from(k) + c as f64 / checkers as f64);
                    if due >= until {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    k += 1;
                }
                let body = json!({"user": format!("u{}", n % USERS), "privilege": "read",
                    "record": format!("seed-{}", n % records)});
                // From when it is sent (tokio's timer wakes up to a millisecond after a due
                // time): a check held up delays the ones behind it on its connection, which
                // this does not count (`MAX MS` shows the longest wait).
                let asked = Instant::now();
                let (status, body) = conn.call("POST", path, body.to_string().as_bytes()).await?;
                if status != 200 {
                    bail!(
                        "a check failed ({status}): {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                times.push(asked.elapsed().as_secs_f64() * 1000.0);
                n += checkers;
            }
            Ok::<_, anyhow::Error>(times)
        }
    });
    let mut all = Vec::new();
    for times in futures_join_all(tasks).await {
        all.extend(times?);
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

/// Paced writes: `rate` per second from `writers` connections until `until`; how many were
/// written.
async fn paced_writes(
    addr: &str,
    writers: usize,
    rate: usize,
    until: Instant,
) -> anyhow::Result<usize> {
    let mut conns = Vec::new();
    for _ in 0..writers {
        conns.push(Conn::open(addr).await?);
    }
    let period = Duration::from_secs_f64(writers as f64 / rate.max(1) as f64);
    let tasks = conns
        .into_iter()
        .enumerate()
        .map(|(w, mut conn)| async move {
            let mut written = 0;
            let start = Instant::now() + period.mul_f64(w as f64 / writers as f64);
            let mut n = 0usize;
            loop {
                let due = start + period.mul_f64(n as f64);
                if due >= until {
                    return Ok::<_, anyhow::Error>(written);
                }
                tokio::time::sleep_until(due.into()).await;
                conn.write(&json!([create_op(&format!("m{w}"), n)])).await?;
                written += 1;
                n += 1;
            }
        });
    let mut total = 0;
    for written in futures_join_all(tasks).await {
        total += written?;
    }
    Ok(total)
}

/// `strata bench mixed`.
/// Users added for the dry runs of `bench mixed --dry-runs`.
const DRY_RUN_USERS: usize = 10_000;

/// Dry runs of a unit move (East under West: every user's access compared, D55) back to
/// back until `until`; their times in milliseconds, sorted.
async fn dry_runs(addr: &str, until: Instant) -> anyhow::Result<Vec<f64>> {
    let mut conn = Conn::open(addr).await?;
    let path = format!("/api/v1/orgs/{ORG}/operations?dry_run=true");
    let body = json!([{"op": "move_business_unit", "name": "East", "parent": "West"}]).to_string();
    let mut times = Vec::new();
    while Instant::now() < until {
        let asked = Instant::now();
        let (status, answer) = conn.call("POST", &path, body.as_bytes()).await?;
        if status != 200 {
            bail!(
                "a dry run failed ({status}): {}",
                String::from_utf8_lossy(&answer)
            );
        }
        times.push(asked.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

pub(crate) fn bench_mixed(
    seconds: u64,
    rate: usize,
    check_rate: usize,
    records: usize,
    dir: Option<&Path>,
    with_dry_runs: bool,
) -> anyhow::Result<()> {
    let scratch = scratch_dir(dir)?;
    let key_file = scratch.path().join("audit-key");
    let db = scratch.path().join("mixed.db");
    let server = Server::start(&db.to_string_lossy(), &key_file, None)?;
    let rt = runtime()?;
    rt.block_on(async {
        create_org(&server.addr).await?;
        let mut conn = Conn::open(&server.addr).await?;
        if with_dry_runs {
            // Users a unit move's dry run compares, as many as the generated organisation's.
            for chunk in (0..DRY_RUN_USERS).collect::<Vec<_>>().chunks(500) {
                let ops: Vec<Value> = chunk
                    .iter()
                    .flat_map(|&n| {
                        let (user, unit) =
                            (format!("x{n}"), if n % 2 == 0 { "East" } else { "West" });
                        [
                            json!({"op": "add_user", "name": user, "business_unit": unit}),
                            json!({"op": "assign_role", "principal": user, "role": "Rep"}),
                        ]
                    })
                    .collect();
                conn.write(&Value::Array(ops)).await?;
            }
        }
        for chunk in (0..records).collect::<Vec<_>>().chunks(1000) {
            let ops: Vec<Value> = chunk.iter().map(|&n| create_op("seed", n)).collect();
            conn.write(&Value::Array(ops)).await?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let span = Duration::from_secs(seconds);
    let idle = rt.block_on(checks(
        &server.addr,
        4,
        check_rate,
        Instant::now() + span,
        records,
    ))?;
    let (busy, written) = rt.block_on(async {
        let until = Instant::now() + span;
        let (busy, written) = tokio::join!(
            checks(&server.addr, 4, check_rate, until, records),
            paced_writes(&server.addr, 16, rate, until)
        );
        Ok::<_, anyhow::Error>((busy?, written?))
    })?;
    let dry = if with_dry_runs {
        let until = Instant::now() + span;
        let (checked, tried) = rt.block_on(async {
            tokio::join!(
                checks(&server.addr, 4, check_rate, until, records),
                dry_runs(&server.addr, until)
            )
        });
        Some((checked?, tried?))
    } else {
        None
    };
    let mut conditions = vec![("idle", &idle, 0), ("while writing", &busy, written)];
    if let Some((checked, _)) = &dry {
        conditions.push(("while dry runs repeat", checked, 0));
    }
    let mut table = Vec::new();
    for (condition, times, writes) in conditions {
        if times.is_empty() {
            bail!("no check was answered");
        }
        table.push(vec![
            condition.to_owned(),
            format!("{:.0}", writes as f64 / span.as_secs_f64()),
            times.len().to_string(),
            format!("{:.3}", percentile(times, 0.5)),
            format!("{:.3}", percentile(times, 0.99)),
            format!("{:.3}", times[times.len() - 1]),
        ]);
    }
    println!(
        "checks over HTTP from 4 keep-alive connections paced at {check_rate}/s in all (0: as fast as answered), {seconds} s each; writes paced at {rate}/s from 16 connections (single-operation creates, SQLite, group commit); {records} records"
    );
    crate::table::print(
        &[
            "CONDITION",
            "WRITES/S",
            "CHECKS",
            "CHECK P50 MS",
            "P99 MS",
            "MAX MS",
        ],
        &table,
    );
    if let Some((_, tried)) = &dry {
        let Some(longest) = tried.last() else {
            bail!("no dry run was answered");
        };
        println!(
            "dry runs of a unit move ({} users compared each): {} in {seconds} s, p50 {:.1} ms, max {longest:.1} ms",
            USERS + 1 + DRY_RUN_USERS,
            tried.len(),
            percentile(tried, 0.5),
        );
    }
    Ok(())
}
