//! `strata bench soak`: a mixed workload — checks, lists, record reads, writes, Web API calls and
//! console pages — at a fixed rate (by default half of the capacity measured first) against a
//! `strata serve` process on loopback, for a set time. Every 10 s it samples the server's
//! resident memory and open files and the interval's latency and errors; it writes the samples
//! as CSV and an SVG plot, prints them, and judges the run: no errors, memory flat after the
//! warm-up (≤ 5 % growth), the p99 of the last fifth (at most 5 minutes) within 20 % of the
//! first's.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use crate::bench_cmd::percentile;
use crate::bench_writes::{
    Conn, ORG, ROOT, Server, USERS, create_op, create_org, futures_join_all, runtime, user_key,
};

/// Connections of the load generator.
const CONNECTIONS: usize = 8;
/// Records in the organisation before the run.
const SEED_RECORDS: usize = 2_000;
/// Seconds between samples.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// One request of the mix, by its number.
#[derive(Clone, Copy)]
enum Kind {
    Check,
    List,
    Read,
    Write,
    WebApi,
    Console,
}

impl Kind {
    /// A kind by its name in `--only`.
    fn named(name: &str) -> anyhow::Result<Kind> {
        Ok(match name {
            "check" => Kind::Check,
            "list" => Kind::List,
            "read" => Kind::Read,
            "write" => Kind::Write,
            "webapi" => Kind::WebApi,
            "console" => Kind::Console,
            _ => bail!("--only takes check, list, read, write, webapi or console, not `{name}`"),
        })
    }

    /// Out of 20 requests: 6 checks, 3 lists, 3 reads, 4 writes (updates), 2 Web API calls, 2 console
    /// pages.
    fn of(n: usize) -> Kind {
        match n % 20 {
            0..=5 => Kind::Check,
            6..=8 => Kind::List,
            9..=11 => Kind::Read,
            12..=15 => Kind::Write,
            16 | 17 => Kind::WebApi,
            _ => Kind::Console,
        }
    }
}

/// What every connection needs to send any kind of request.
struct Credentials {
    admin: String,
    cookie: String,
    /// Every request of this kind (`--only`), instead of the mix.
    only: Option<Kind>,
}

/// The latencies and errors since the last sample.
#[derive(Default)]
struct Interval {
    ms: Vec<f64>,
    errors: usize,
    first_error: Option<String>,
}

/// One sample.
struct Sample {
    at_s: f64,
    rss_mib: f64,
    /// Of the resident memory, transparent huge pages (none since D134).
    huge_mib: f64,
    open_files: usize,
    requests: usize,
    errors: usize,
    p50: f64,
    p99: f64,
}

/// Sends request `n` of connection `c`; an error is a failed or non-2xx/3xx answer.
async fn one(conn: &mut Conn, who: &Credentials, c: usize, n: usize) -> anyhow::Result<()> {
    let user = format!("u{}", (c * 7 + n) % USERS);
    let record = format!("seed-{}", (c * 131 + n * 17) % SEED_RECORDS);
    let root = format!("Authorization: Bearer {ROOT}");
    let admin = format!("Authorization: Bearer {}", who.admin);
    let kind = who.only.unwrap_or_else(|| Kind::of(n));
    let (method, path, credentials, body): (&str, String, &str, Vec<u8>) = match kind {
        Kind::Check => (
            "POST",
            format!("/api/v1/orgs/{ORG}/check"),
            &root,
            json!({"user": user, "privilege": "read", "record": record})
                .to_string()
                .into_bytes(),
        ),
        Kind::List => (
            "GET",
            format!("/api/v1/orgs/{ORG}/tables/account/records?user={user}&limit=20"),
            &root,
            Vec::new(),
        ),
        Kind::Read => (
            "GET",
            format!("/api/v1/orgs/{ORG}/records/{record}?user=admin"),
            &root,
            Vec::new(),
        ),
        Kind::Write => {
            // An update of an existing record by its owner: the data stays the same size, so
            // memory that grows is memory that leaks.
            let n = (c * 131 + n * 17) % SEED_RECORDS;
            (
                "POST",
                format!("/api/v1/orgs/{ORG}/operations"),
                &root,
                json!([{"op": "update", "as": format!("u{}", n % USERS),
                    "record": format!("seed-{n}"), "fields": {"name": format!("soak {c} {n}")}}])
                .to_string()
                .into_bytes(),
            )
        }
        Kind::WebApi => (
            "GET",
            "/api/data/v9.2/accounts?$select=name&$top=5".to_owned(),
            &admin,
            Vec::new(),
        ),
        Kind::Console => ("GET", "/console/users".to_owned(), &who.cookie, Vec::new()),
    };
    let (status, _, answer) = conn.call_as(method, &path, credentials, &body).await?;
    if !(200..400).contains(&status) {
        bail!(
            "{method} {path}: {status} {}",
            String::from_utf8_lossy(&answer[..answer.len().min(300)])
        );
    }
    Ok(())
}

/// The organisation with its seed records, an API key of its System Administrator and a
/// console session of theirs.
async fn prepare(addr: &str) -> anyhow::Result<Credentials> {
    create_org(addr).await?;
    let mut conn = Conn::open(addr).await?;
    for chunk in (0..SEED_RECORDS).collect::<Vec<_>>().chunks(1000) {
        let ops: Vec<Value> = chunk.iter().map(|&n| create_op("seed", n)).collect();
        conn.write(&Value::Array(ops)).await?;
    }
    let admin = user_key(addr, "admin").await?;
    let form = format!("key={}", crate::remote::encode(&admin));
    let (status, cookie, body) = conn
        .call_as(
            "POST",
            "/console/sign-in",
            "Sec-Fetch-Site: same-origin",
            form.as_bytes(),
        )
        .await?;
    let Some(cookie) = cookie.filter(|_| (200..400).contains(&status)) else {
        bail!(
            "console sign-in: {status} {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    };
    Ok(Credentials {
        admin,
        cookie: format!("Cookie: {cookie}"),
        only: None,
    })
}

/// Requests a second the mix reaches unpaced from the connections, over `span`.
async fn capacity(addr: &str, who: &Credentials, span: Duration) -> anyhow::Result<f64> {
    let until = Instant::now() + span;
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(Conn::open(addr).await?);
    }
    let start = Instant::now();
    let tasks = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| async move {
            let mut n = 0;
            while Instant::now() < until {
                one(&mut conn, who, c + 100, n).await?;
                n += 1;
            }
            Ok::<_, anyhow::Error>(n)
        });
    let mut total = 0;
    for done in futures_join_all(tasks).await {
        total += done?;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// A field of a `/proc` file given in kB, as MiB (0 when missing).
fn proc_mib(file: &str, field: &str) -> f64 {
    crate::bench_memory::proc_kib(file, field).map_or(0.0, |kib| kib as f64 / 1024.0)
}

/// The server's resident memory (MiB), the part of it in transparent huge pages (MiB) and its
/// open files, from /proc.
fn resources(pid: u32) -> (f64, f64, usize) {
    let rss = proc_mib(&format!("/proc/{pid}/status"), "VmRSS:");
    let huge = proc_mib(&format!("/proc/{pid}/smaps_rollup"), "AnonHugePages:");
    let files = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    (rss, huge, files)
}

/// The paced run: samples every [`SAMPLE_EVERY`].
async fn paced(
    addr: &str,
    pid: u32,
    who: &Credentials,
    rate: f64,
    span: Duration,
) -> anyhow::Result<(Vec<Sample>, Option<String>)> {
    let start = Instant::now();
    let until = start + span;
    let interval = Mutex::new(Interval::default());
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(Conn::open(addr).await?);
    }
    let period = Duration::from_secs_f64(CONNECTIONS as f64 / rate.max(1.0));
    let interval_ref = &interval;
    let workers = conns
        .into_iter()
        .enumerate()
        .map(|(c, mut conn)| async move {
            let first = start + period.mul_f64(c as f64 / CONNECTIONS as f64);
            let mut n = 0usize;
            loop {
                let due = first + period.mul_f64(n as f64);
                if due >= until {
                    return;
                }
                tokio::time::sleep_until(due.into()).await;
                let asked = Instant::now();
                let result = one(&mut conn, who, c, n).await;
                let ms = asked.elapsed().as_secs_f64() * 1000.0;
                let failed = {
                    let mut i = interval_ref
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    i.ms.push(ms);
                    match result {
                        Err(e) => {
                            i.errors += 1;
                            i.first_error.get_or_insert_with(|| e.to_string());
                            true
                        }
                        Ok(()) => false,
                    }
                };
                // A broken connection is opened again.
                if failed && let Ok(fresh) = Conn::open(addr).await {
                    conn = fresh;
                }
                n += 1;
            }
        });
    let sampler = async {
        let mut samples = Vec::new();
        let mut first_error = None;
        let mut next = start + SAMPLE_EVERY;
        while next <= until + Duration::from_millis(500) {
            tokio::time::sleep_until(next.into()).await;
            let mut taken = std::mem::take(
                &mut *interval_ref
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            taken.ms.sort_by(f64::total_cmp);
            let (rss_mib, huge_mib, open_files) = resources(pid);
            let (p50, p99) = if taken.ms.is_empty() {
                (0.0, 0.0)
            } else {
                (percentile(&taken.ms, 0.5), percentile(&taken.ms, 0.99))
            };
            if first_error.is_none() {
                first_error = taken.first_error;
            }
            samples.push(Sample {
                at_s: (next - start).as_secs_f64(),
                rss_mib,
                huge_mib,
                open_files,
                requests: taken.ms.len(),
                errors: taken.errors,
                p50,
                p99,
            });
            next += SAMPLE_EVERY;
        }
        (samples, first_error)
    };
    let (_, sampled) = tokio::join!(futures_join_all(workers), sampler);
    Ok(sampled)
}

/// An SVG of memory and p99 over time, one chart above the other.
fn svg(samples: &[Sample]) -> String {
    let (w, h, pad) = (720.0, 200.0, 40.0);
    let end = samples.last().map_or(1.0, |s| s.at_s).max(1.0);
    let chart = |top: f64, title: &str, value: &dyn Fn(&Sample) -> f64| {
        let max = samples.iter().map(value).fold(0.0, f64::max).max(1e-9) * 1.1;
        let points: Vec<String> = samples
            .iter()
            .map(|s| {
                let x = pad + (w - 2.0 * pad) * s.at_s / end;
                let y = top + h - pad - (h - 2.0 * pad) * value(s) / max;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        format!(
            r##"<text x="{pad}" y="{ty}" font-size="13">{title} (max of axis {max:.2})</text>
<line x1="{pad}" y1="{base}" x2="{right}" y2="{base}" stroke="#999"/>
<line x1="{pad}" y1="{axis_top}" x2="{pad}" y2="{base}" stroke="#999"/>
<text x="{right}" y="{label}" font-size="11" text-anchor="end">{minutes:.1} min</text>
<polyline fill="none" stroke="#1f5fa8" stroke-width="1.5" points="{points}"/>
"##,
            ty = top + 16.0,
            base = top + h - pad,
            axis_top = top + pad,
            right = w - pad,
            label = top + h - pad + 14.0,
            minutes = end / 60.0,
            points = points.join(" "),
        )
    };
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{}" font-family="sans-serif">
{}{}</svg>
"#,
        2.0 * h,
        chart(0.0, "server resident memory, MiB", &|s| s.rss_mib),
        chart(h, "p99 latency of the interval, ms", &|s| s.p99),
    )
}

/// `strata bench soak`.
pub(crate) fn run(
    minutes: f64,
    rate: Option<f64>,
    out: &Path,
    dir: Option<&Path>,
    only: Option<&str>,
) -> anyhow::Result<()> {
    let only = only.map(Kind::named).transpose()?;
    let scratch = crate::bench_writes::scratch_dir(dir)?;
    let db = scratch.path().join("soak.db");
    let server = Server::start(
        &db.to_string_lossy(),
        &scratch.path().join("audit-key"),
        None,
    )?;
    let pid = server.child_id();
    let rt = runtime()?;
    let who = Credentials {
        only,
        ..rt.block_on(prepare(&server.addr))?
    };
    let rate = match rate {
        Some(r) => r,
        None => {
            let measured = rt.block_on(capacity(&server.addr, &who, Duration::from_secs(15)))?;
            println!(
                "capacity: {measured:.0} requests/s from {CONNECTIONS} connections (the mix, unpaced, 15 s)"
            );
            measured / 2.0
        }
    };
    let span = Duration::from_secs_f64(minutes * 60.0);
    println!(
        "soak: {rate:.0} requests/s for {minutes} min — per 20 requests 6 checks, 3 lists, 3 record reads, 4 writes (updates of existing records), 2 Web API calls, 2 console pages"
    );
    let (samples, first_error) = rt.block_on(paced(&server.addr, pid, &who, rate, span))?;
    if samples.len() < 2 {
        bail!("the run is too short to sample: give it at least 20 s");
    }
    std::fs::create_dir_all(out)?;
    let mut csv =
        String::from("seconds,rss_mib,huge_pages_mib,open_files,requests,errors,p50_ms,p99_ms\n");
    let mut rows = Vec::new();
    for s in &samples {
        csv.push_str(&format!(
            "{:.0},{:.1},{:.1},{},{},{},{:.3},{:.3}\n",
            s.at_s, s.rss_mib, s.huge_mib, s.open_files, s.requests, s.errors, s.p50, s.p99
        ));
        rows.push(vec![
            format!("{:.0}", s.at_s),
            format!("{:.1}", s.rss_mib),
            format!("{:.1}", s.huge_mib),
            s.open_files.to_string(),
            s.requests.to_string(),
            s.errors.to_string(),
            format!("{:.3}", s.p50),
            format!("{:.3}", s.p99),
        ]);
    }
    std::fs::write(out.join("soak.csv"), csv)?;
    std::fs::write(out.join("soak.svg"), svg(&samples))?;
    crate::table::print(
        &[
            "S",
            "RSS MIB",
            "HUGE PAGES MIB",
            "OPEN FILES",
            "REQUESTS",
            "ERRORS",
            "P50 MS",
            "P99 MS",
        ],
        &rows,
    );
    // Judged: warm-up is the first sixth; the windows are a fifth of the run, at most 5 min.
    let n = samples.len();
    let warm = (n / 6).max(1).min(n - 1);
    let window = (n / 5).clamp(1, 30);
    let errors: usize = samples.iter().map(|s| s.errors).sum();
    // Memory: the mean of the last window against the mean of the window that follows the
    // warm-up (one sample is too noisy: the allocator returns pages in bursts).
    let mean_of = |part: &[Sample], f: fn(&Sample) -> f64| {
        part.iter().map(f).sum::<f64>() / part.len().max(1) as f64
    };
    let after_warm = &samples[warm..(warm + window).min(n)];
    let (rss_from, rss_to) = (
        mean_of(after_warm, |s| s.rss_mib),
        mean_of(&samples[n - window..], |s| s.rss_mib),
    );
    let growth = (rss_to / rss_from.max(1e-9) - 1.0) * 100.0;
    let (first, last) = (
        mean_of(&samples[..window], |s| s.p99),
        mean_of(&samples[n - window..], |s| s.p99),
    );
    let drift = (last / first.max(1e-9) - 1.0) * 100.0;
    let requests: usize = samples.iter().map(|s| s.requests).sum();
    println!(
        "{requests} requests, {errors} errors{}; memory {rss_from:.1} → {rss_to:.1} MiB (mean of the {window} samples after the warm-up, of the last {window}: {growth:+.1} %, goal ≤ 5 %); p99 first {window}×10 s {first:.3} ms, last {last:.3} ms ({drift:+.1} %, goal within 20 %)",
        first_error.map_or(String::new(), |e| format!(" (first: {e})")),
    );
    let met = errors == 0 && growth <= 5.0 && drift.abs() <= 20.0;
    println!(
        "judged: {}",
        if met { "goals met" } else { "goals NOT met" }
    );
    println!(
        "samples: {}; plot: {}",
        out.join("soak.csv").display(),
        out.join("soak.svg").display()
    );
    Ok(())
}
