//! `strata bench`: the generated organisation (`bench generate`) and the list benchmark
//! (`bench list`), in process.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use strata_demo::generate;
use strata_engine::{CompareOp, Filter, ListQuery, Order, Organization, Value};
use strata_store::Store;

use crate::server_cmd;

const CHUNK: usize = 100_000;

/// The generated organisation, built in memory chunk by chunk with a progress bar; `each` gets
/// the setup operations, then every chunk of record operations, once they applied.
fn generated(
    records: usize,
    seed: u64,
    mut each: impl FnMut(&[strata_ops::Operation]) -> anyhow::Result<()>,
) -> anyhow::Result<Organization> {
    let mut org = Organization::new();
    let setup = generate::setup(seed);
    strata_ops::apply_all(&mut org, &setup)
        .map_err(|(i, e)| anyhow!("setup operation {i}: {}", e.message))?;
    each(&setup)?;
    let bar = indicatif::ProgressBar::new(records as u64);
    let mut from = 0;
    while from < records {
        let to = (from + CHUNK).min(records);
        let ops = generate::records(seed, from, to);
        strata_ops::apply_all(&mut org, &ops)
            .map_err(|(i, e)| anyhow!("record operation {i}: {}", e.message))?;
        each(&ops)?;
        bar.inc((to - from) as u64);
        from = to;
    }
    bar.finish_and_clear();
    Ok(org)
}

pub(crate) fn build(records: usize, seed: u64) -> anyhow::Result<(Organization, Duration)> {
    let start = Instant::now();
    let org = generated(records, seed, |_| Ok(()))?;
    Ok((org, start.elapsed()))
}

/// `strata bench generate`: the generated organisation, stored as an organisation of a file.
pub fn generate_into(db: &Path, org: &str, records: usize, seed: u64) -> anyhow::Result<()> {
    let store = server_cmd::open_store(db)?;
    // Through the application layer, by the system: each chunk is stored with its audit
    // entries in one transaction once it applied in memory, so the log replays.
    let mut loader = strata_app::Loader::new(store.as_ref(), org, strata_app::Actor::System)
        .map_err(|e| anyhow!(e))?;
    loader
        .append(&generate::setup(seed), &mut |_| {})
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
    println!(
        "organization `{org}` in {}: {records} generated records (seed {seed}), revision {}",
        server_cmd::shown(db),
        store.revision(org)?
    );
    Ok(())
}

/// `strata bench replay`: the replay of a stored organisation, with and without verifying its
/// log (SQLite only: the unverified read exists for this measurement).
pub fn replay(db: &Path, org: &str, runs: usize) -> anyhow::Result<()> {
    let store = server_cmd::open_store(db)?;
    let server_cmd::Database::Sqlite(sqlite) = store.as_ref() else {
        return Err(anyhow!("bench replay measures a SQLite file"));
    };
    let runs = runs.max(1);
    let (mut plain, mut verified, mut unverified_load, mut load) = (vec![], vec![], vec![], vec![]);
    let mut rows = 0;
    for run in 0..runs {
        let start = Instant::now();
        let entries = sqlite.operations_unverified(org)?;
        plain.push(start.elapsed().as_secs_f64());
        rows = entries.len();
        drop(entries);
        let start = Instant::now();
        let checked = sqlite.operations(org, 0)?;
        verified.push(start.elapsed().as_secs_f64());
        if checked.len() != rows {
            return Err(anyhow!("{} rows verified, {rows} read", checked.len()));
        }
        drop(checked);
        // The whole load, as at start-up, with and without verification (in turn first, so
        // that neither always runs on the heap the other left).
        for verify in [run % 2 == 0, run % 2 == 1] {
            let start = Instant::now();
            if verify {
                drop(strata_store::load_organization(sqlite, org)?);
                load.push(start.elapsed().as_secs_f64());
            } else {
                let entries = sqlite.operations_unverified(org)?;
                drop(strata_store::replay(org, entries, &mut |_, _| {})?);
                unverified_load.push(start.elapsed().as_secs_f64());
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (plain, verified, unverified_load, load) = (
        median(&mut plain),
        median(&mut verified),
        median(&mut unverified_load),
        median(&mut load),
    );
    let check = verified - plain;
    println!("organization `{org}`: {rows} operations, median of {runs} runs");
    println!("read and parse, not verified    {plain:>8.3} s");
    println!("read and parse, verified        {verified:>8.3} s");
    println!(
        "  verification (MACs, gaps, head) {check:>6.3} s  ({:.2} µs per operation)",
        check * 1e6 / rows.max(1) as f64
    );
    println!("load (read + replay), not verified {unverified_load:>6.3} s");
    println!("load (read + replay), verified  {load:>8.3} s");
    println!(
        "verification / unverified load  {:>7.1} %",
        100.0 * check / unverified_load
    );
    Ok(())
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn time(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    f(); // warm up
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.99))
}

/// `strata bench list`: lists per kind of reader on the generated organisation.
pub fn list(records: usize, seed: u64, runs: usize) -> anyhow::Result<()> {
    let (mut org, built) = build(records, seed)?;
    let total: usize = org.table_ids().map(|t| org.table_records(t).len()).sum();
    println!(
        "generated organisation: {} units, {} users, {} records in {:.1} s ({:.0} records/s)",
        org.units().len(),
        org.user_ids().count(),
        total,
        built.as_secs_f64(),
        total as f64 / built.as_secs_f64()
    );
    let start = Instant::now();
    org.rebuild_record_index();
    let rebuild = start.elapsed();
    let (bitmaps, columns) = org.record_index_bytes();
    let per_record = |bytes: usize| bytes as f64 / total.max(1) as f64;
    println!(
        "record index: rebuilt in {:.2} s; {:.1} bytes per record: {:.1} in security bitmaps ({:.1} MiB), {:.1} in column indexes ({:.1} MiB)",
        rebuild.as_secs_f64(),
        per_record(bitmaps + columns),
        per_record(bitmaps),
        bitmaps as f64 / 1_048_576.0,
        per_record(columns),
        columns as f64 / 1_048_576.0,
    );
    let account = org
        .table_id("account")
        .ok_or_else(|| anyhow!("no account table"))?;
    // One untimed pass over every reader first: right after the rebuild the machine is still
    // settling (freed memory, cold caches), which otherwise lands on the first rows measured.
    for (name, _) in generate::READERS {
        if let Some(user) = org.user_id(name) {
            let q = ListQuery {
                limit: 50,
                count: true,
                ..ListQuery::default()
            };
            std::hint::black_box(org.list(user, account, &q).ok());
        }
    }
    println!();
    println!(
        "readable accounts ({} in the table), {runs} runs each; milliseconds",
        org.table_records(account).len()
    );
    println!(
        "| reader | readable | first page p50 | p99 | page 100 p50 | p99 | count p50 | p99 | Oslo by name p50 | p99 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, kind) in generate::READERS {
        let user = org.user_id(name).ok_or_else(|| anyhow!("no user {name}"))?;
        let page = |after| ListQuery {
            filter: None,
            order: Vec::new(),
            after,
            limit: 50,
            count: false,
            plan: strata_engine::Plan::Auto,
            work_budget: None,
            impersonator: None,
        };
        let first = time(runs, || {
            std::hint::black_box(org.list(user, account, &page(None)).ok());
        });
        // The cursor of the 99th page, then time the 100th.
        let mut after = None;
        for _ in 0..99 {
            match org.list(user, account, &page(after.clone()))?.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let hundredth = time(runs, || {
            std::hint::black_box(org.list(user, account, &page(after.clone())).ok());
        });
        let mut readable = 0;
        let count = time(runs, || {
            let q = ListQuery {
                count: true,
                ..page(None)
            };
            readable = org
                .list(user, account, &q)
                .ok()
                .and_then(|p| p.total)
                .unwrap_or(0);
        });
        let oslo = ListQuery {
            filter: Some(Filter::Compare {
                column: "city".into(),
                op: CompareOp::Eq,
                value: Value::Text("Oslo".into()),
            }),
            order: vec![Order {
                column: "name".into(),
                descending: false,
            }],
            ..page(None)
        };
        let filtered = time(runs, || {
            std::hint::black_box(org.list(user, account, &oslo).ok());
        });
        println!(
            "| {kind} | {readable} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            first.0, first.1, hundredth.0, hundredth.1, count.0, count.1, filtered.0, filtered.1
        );
    }
    Ok(())
}

/// `strata bench export`: the generated organisation's accounts as CSV files for the
/// PostgreSQL row-level security comparison (`bench/rls.sh`): units and their closure, the
/// account read grants of users without teams or reports, accounts, and shares to users.
pub fn export(records: usize, seed: u64, dir: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    use strata_engine::{Depth, Owner, Principal, Privilege};
    let (org, _) = build(records, seed)?;
    std::fs::create_dir_all(dir)?;
    let file = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            dir.join(name),
        )?))
    };
    let units = org.units();
    let mut closure = file("unit_closure.csv")?;
    for u in units.ids() {
        for a in units.ancestors(u) {
            writeln!(closure, "{},{}", units.name(a), units.name(u))?;
        }
    }
    let account = org
        .table_id("account")
        .ok_or_else(|| anyhow!("no account table"))?;
    let mut grants = file("grants.csv")?;
    for u in org.user_ids() {
        let user = org.user(u);
        if !user.teams.is_empty() || !org.hierarchy_reports(u).is_empty() {
            continue;
        }
        for g in org.grants(u, account, Privilege::Read) {
            let depth = match g.depth {
                Depth::User => "user",
                Depth::BusinessUnit => "business_unit",
                Depth::ParentChild => "parent_child",
                Depth::Organization => "organization",
                Depth::None => continue,
            };
            writeln!(grants, "{},{depth},{}", user.name, units.name(g.anchor))?;
        }
    }
    let mut accounts = file("accounts.csv")?;
    let mut shares = file("shares.csv")?;
    for r in org.table_records(account) {
        let rec = org.record(*r);
        let owner = match rec.owner {
            Owner::User(u) => org.user(u).name.clone(),
            Owner::Team(t) => format!("team:{}", org.team(t).name),
            Owner::None => String::new(),
        };
        let text = |c: &str| match rec.field(c) {
            Value::Text(t) => t.clone(),
            other => other.to_string(),
        };
        writeln!(
            accounts,
            "{},{},{},{},{},{},{}",
            rec.key,
            r.get(),
            owner,
            units.name(rec.business_unit),
            text("name"),
            text("city"),
            text("revenue")
        )?;
        for s in &rec.shares {
            if let (Principal::User(u), true) = (s.principal, s.mask.contains(Privilege::Read)) {
                writeln!(shares, "{},{}", rec.key, org.user(u).name)?;
            }
        }
    }
    for (name, _) in generate::READERS {
        let user = org.user_id(name).ok_or_else(|| anyhow!("no user {name}"))?;
        let readable = org.readable_set(user, account).len();
        println!("{name}\t{readable}");
    }
    Ok(())
}

/// `strata bench names`: the map from record keys to records (D153), `runs` fresh maps of
/// `keys` names each; a row per run.
pub fn names(keys: usize, runs: usize) -> anyhow::Result<()> {
    let micros = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e6);
    let rows: Vec<Vec<String>> = (1..=runs)
        .map(|run| {
            let f = strata_engine::record_names_figures(keys);
            vec![
                run.to_string(),
                f.count.to_string(),
                micros(f.per_write),
                format!("{:.1}", f.slowest.as_secs_f64() * 1e3),
                f.slowest_at.to_string(),
                micros(f.per_read),
            ]
        })
        .collect();
    crate::table::print(
        &[
            "RUN",
            "NAMES",
            "µS/NAME",
            "SLOWEST NAME MS",
            "SLOWEST AT",
            "µS/LOOKUP",
        ],
        &rows,
    );
    Ok(())
}

/// `strata bench records`: the records by id kept as one vector grown by an eighth (the
/// design before) and in chunks (today's), each `runs` times with `records` records.
pub fn records(records: usize, runs: usize) -> anyhow::Result<()> {
    use strata_engine::RecordsDesign;
    let micros = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e6);
    let mut rows = Vec::new();
    for run in 1..=runs {
        for (design, name) in [
            (RecordsDesign::Vector, "vector (before)"),
            (RecordsDesign::Chunks, "chunks"),
        ] {
            let f = strata_engine::record_growth_figures(records, design);
            rows.push(vec![
                run.to_string(),
                name.to_owned(),
                f.count.to_string(),
                micros(f.per_write),
                format!("{:.1}", f.slowest.as_secs_f64() * 1e3),
                f.slowest_at.to_string(),
                format!("{:.1}", f.per_read.as_secs_f64() * 1e9),
            ]);
        }
    }
    crate::table::print(
        &[
            "RUN",
            "DESIGN",
            "RECORDS",
            "µS/APPEND",
            "SLOWEST APPEND MS",
            "SLOWEST AT",
            "NS/READ",
        ],
        &rows,
    );
    Ok(())
}
