//! `strata bench console`: the admin console's pages timed as the server serves them. Builds the
//! demo organisation (or, with `--records N`, the generated one of the other benchmarks with
//! `bench admin`'s roles, app and licences, its accounts and contacts audited), stores it in
//! memory through the application layer,
//! serves it in process on a port the system picks, signs in as a System Administrator, and
//! requests every screen N times over loopback; prints each page's server time (the console's
//! `Server-Timing` header: the handler, rendering included) at p50 and p99, the round trip at
//! p50 and the page's size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::json;
use strata_demo::generate;
use strata_ops::Operation;
use strata_store::{MemoryStore, Store};

use crate::bench_cmd::percentile;

/// The organisation's name in the store.
const ORG: &str = "bench";

/// Record operations per load chunk.
const CHUNK: usize = 100_000;

/// What the screens are asked about in one organisation.
struct Subjects {
    admin: &'static str,
    user: &'static str,
    role: &'static str,
    record: &'static str,
    left: &'static str,
    right: &'static str,
    app_user: &'static str,
    app: &'static str,
}

const DEMO: Subjects = Subjects {
    admin: "admin",
    user: "rep_east",
    role: "Sales Representative",
    record: "acc-0001",
    left: "rep_east2",
    right: "mgr_na",
    app_user: "stuck_user",
    app: "Customer Service Workspace",
};

const GENERATED: Subjects = Subjects {
    admin: "bench_admin",
    user: "reader_unit",
    role: "Read Own",
    record: "r0",
    left: "reader_unit",
    right: "reader_manager",
    app_user: "bench_newcomer",
    app: "Bench Workspace",
};

/// Percent-encodes a query value or path segment.
fn encode(text: &str) -> String {
    crate::remote::encode(text)
}

/// Every screen: its name and path.
fn screens(s: &Subjects) -> Vec<(&'static str, String)> {
    vec![
        ("business units", "/console/units".to_owned()),
        ("users", "/console/users".to_owned()),
        ("a user", format!("/console/users/{}", encode(s.user))),
        ("teams", "/console/teams".to_owned()),
        ("roles", "/console/roles".to_owned()),
        ("role editor", format!("/console/roles/{}", encode(s.role))),
        ("rules", "/console/rules".to_owned()),
        (
            "check access",
            format!(
                "/console/access?user={}&record={}",
                encode(s.user),
                encode(s.record)
            ),
        ),
        (
            "who has access",
            format!("/console/who?record={}&privilege=read", encode(s.record)),
        ),
        (
            "compare users",
            format!(
                "/console/compare?left={}&right={}",
                encode(s.left),
                encode(s.right)
            ),
        ),
        (
            "app access",
            format!(
                "/console/apps?user={}&app={}",
                encode(s.app_user),
                encode(s.app)
            ),
        ),
        ("licences", "/console/licences".to_owned()),
        ("audit", "/console/audit".to_owned()),
        ("access review", "/console/review".to_owned()),
        ("import roles", "/console/import".to_owned()),
    ]
}

/// The organisation's operations: the demo's, or the generated one's setup with the records
/// in chunks, `bench admin`'s model and a System Administrator to sign in as.
fn load(store: &dyn Store, records: Option<usize>, seed: u64) -> anyhow::Result<String> {
    let mut loader =
        strata_app::Loader::new(store, ORG, strata_app::Actor::System).map_err(|e| anyhow!(e))?;
    let Some(records) = records else {
        let ops = strata_demo::operations(strata_demo::DEFAULT_RECORDS_PER_TABLE);
        loader
            .append(&ops, &mut |_| {})
            .map_err(|e| anyhow!("demo operation: {e}"))?;
        return Ok(format!(
            "the demo organisation ({} records per table)",
            strata_demo::DEFAULT_RECORDS_PER_TABLE
        ));
    };
    // Audited as an organisation that audits its data: every record's creation is an entry,
    // so the audit page reads the newest of as many entries as there are records.
    let mut setup = generate::setup(seed);
    setup.push(serde_json::from_value(json!({
        "op": "set_audit", "enabled": true, "retention_days": -1, "user_access": true,
        "tables": ["account", "contact"]
    }))?);
    loader
        .append(&setup, &mut |_| {})
        .map_err(|e| anyhow!("setup operation: {e}"))?;
    let bar = indicatif::ProgressBar::new(records as u64);
    let mut from = 0;
    while from < records {
        let to = (from + CHUNK).min(records);
        loader
            .append(&generate::records(seed, from, to), &mut |_| {})
            .map_err(|e| anyhow!("record operation: {e}"))?;
        bar.inc((to - from) as u64);
        from = to;
    }
    bar.finish_and_clear();
    let users: Vec<String> = (0..10_000).map(|i| format!("u{i}")).collect();
    let mut extra = crate::bench_admin::admin_model(seed, &users)?;
    let admin: Vec<Operation> = serde_json::from_value(json!([
        { "op": "add_role", "name": "Bench Administrator", "system_administrator": true },
        { "op": "add_user", "name": GENERATED.admin, "business_unit": "U0" },
        { "op": "assign_role", "principal": GENERATED.admin, "role": "Bench Administrator" }
    ]))?;
    extra.extend(admin);
    loader
        .append(&extra, &mut |_| {})
        .map_err(|e| anyhow!("bench model operation: {e}"))?;
    Ok(format!(
        "the generated organisation ({records} records, seed {seed}, audited) with 100 extra roles, an app and licences"
    ))
}

/// One answer: status, the server's time (ms, from `Server-Timing`), the round trip (ms) and
/// the body's size. A page showing a refusal is an error: the bench times answers, not
/// refusals.
fn fetch(agent: &ureq::Agent, url: &str, cookie: &str) -> anyhow::Result<(u16, f64, f64, usize)> {
    let start = Instant::now();
    let mut response = agent
        .get(url)
        .header("Cookie", cookie)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let server = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("dur=").nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| anyhow!("GET {url}: no Server-Timing header"))?;
    let body = response
        .body_mut()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_vec()?;
    let marker: &[u8] = b"class=\"refusal\"";
    if body.windows(marker.len()).any(|w| w == marker) {
        let text = String::from_utf8_lossy(&body);
        let at = text.find("class=\"refusal\"").unwrap_or(0);
        bail!(
            "GET {url} shows a refusal: {}",
            text[at..].chars().take(300).collect::<String>()
        );
    }
    Ok((
        status,
        server,
        start.elapsed().as_secs_f64() * 1e3,
        body.len(),
    ))
}

/// `strata bench console`.
pub fn run(records: Option<usize>, seed: u64, runs: usize) -> anyhow::Result<()> {
    let runs = runs.max(1);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new().map_err(|e| anyhow!(e))?);
    let started = Instant::now();
    let described = load(store.as_ref(), records, seed)?;
    let subjects = if records.is_some() { &GENERATED } else { &DEMO };
    let key = strata_server::auth::create_api_key(
        store.as_ref(),
        ORG,
        subjects.admin,
        strata_server::now_ms(),
    )
    .map_err(|e| anyhow!("api key: {e:?}"))?
    .1;
    println!(
        "{described}: stored in memory in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = strata_server::ServerConfig {
        store,
        root_key: None,
    };
    let server = runtime.spawn(strata_server::serve(config, listener, async move {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let measured = measure(&agent, &base, &key, subjects, runs);
    let _ = stop.send(());
    let _ = runtime.block_on(server);
    let rows = measured?;
    println!();
    println!("{runs} requests per page after one warm-up; milliseconds");
    crate::table::print(
        &[
            "PAGE",
            "PATH",
            "SERVER P50",
            "SERVER P99",
            "ROUND TRIP P50",
            "BYTES",
        ],
        &rows,
    );
    Ok(())
}

/// Signs in and times every screen.
fn measure(
    agent: &ureq::Agent,
    base: &str,
    key: &str,
    subjects: &Subjects,
    runs: usize,
) -> anyhow::Result<Vec<Vec<String>>> {
    // The server may take a moment to accept.
    let mut signed_in = None;
    for _ in 0..100 {
        match agent
            .post(&format!("{base}/console/sign-in"))
            .header("Origin", base)
            .header("Sec-Fetch-Site", "same-origin")
            .send_form([("key", key)])
        {
            Ok(r) => {
                signed_in = Some(r);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    let response = signed_in.ok_or_else(|| anyhow!("the console did not answer"))?;
    if response.status().as_u16() != 303 {
        bail!("sign-in answered {}", response.status());
    }
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow!("sign-in set no cookie"))?
        .to_owned();
    let mut rows = Vec::new();
    for (name, path) in screens(subjects) {
        let url = format!("{base}{path}");
        let (status, _, _, _) = fetch(agent, &url, &cookie)?;
        if status != 200 {
            bail!("{name} ({path}) answered {status}");
        }
        let (mut server, mut trip, mut bytes) = (Vec::new(), Vec::new(), 0);
        for _ in 0..runs {
            let (status, s, t, b) = fetch(agent, &url, &cookie)?;
            if status != 200 {
                bail!("{name} ({path}) answered {status}");
            }
            server.push(s);
            trip.push(t);
            bytes = b;
        }
        server.sort_by(f64::total_cmp);
        trip.sort_by(f64::total_cmp);
        rows.push(vec![
            name.to_owned(),
            path,
            format!("{:.3}", percentile(&server, 0.5)),
            format!("{:.3}", percentile(&server, 0.99)),
            format!("{:.3}", percentile(&trip, 0.5)),
            bytes.to_string(),
        ]);
    }
    Ok(rows)
}
