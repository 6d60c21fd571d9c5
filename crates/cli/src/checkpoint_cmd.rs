//! `strata checkpoint` (take a checkpoint of organisations on a database now) and
//! `strata bench startup` (start-up from the whole log against start-up from a checkpoint and
//! the log after it, on a generated organisation, in one run).

use std::path::Path;
use std::time::Instant;

use anyhow::anyhow;
use strata_store::Store;

use crate::server_cmd;

/// Takes a checkpoint of `org` (every organisation when `None`): the organisation loaded as a
/// server loads it, encoded, stored at its revision.
pub fn run(db: &Path, org: Option<&str>, list: bool) -> anyhow::Result<()> {
    let store = server_cmd::open_existing_store(db)?;
    let names = match org {
        Some(org) => vec![org.to_owned()],
        None => store.organizations()?.into_iter().map(|(n, _)| n).collect(),
    };
    if list {
        let mut rows = Vec::new();
        for name in &names {
            for c in store.checkpoints(name)? {
                // A format this build does not read is skipped at start-up (the log is replayed).
                let format = if strata_checkpoint::reads(c.format) {
                    c.format.to_string()
                } else {
                    format!("{} (not read by this build)", c.format)
                };
                rows.push(vec![
                    name.clone(),
                    c.revision.to_string(),
                    format,
                    c.length.to_string(),
                    strata_engine::rfc3339(c.at_ms),
                ]);
            }
        }
        crate::table::print(
            &["organization", "revision", "format", "bytes", "taken"],
            &rows,
        );
        return Ok(());
    }
    for name in &names {
        let start = Instant::now();
        let (organization, revision, from) =
            strata_app::checkpoint::load(store.as_ref(), name, &mut |_, _| {})
                .map_err(|e| anyhow!("{e}"))?;
        let loaded = start.elapsed().as_secs_f64();
        if revision == 0 {
            println!("`{name}` has an empty log: no checkpoint");
            continue;
        }
        let start = Instant::now();
        let bytes = strata_checkpoint::encode(&organization);
        let encoded = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let written = store.put_checkpoint(
            name,
            revision,
            strata_checkpoint::FORMAT_VERSION,
            &bytes,
            strata_app::now_ms(),
        )?;
        let stored = start.elapsed().as_secs_f64();
        let source = match from.checkpoint {
            Some(r) => format!("checkpoint {r} + {} operations", from.replayed),
            None => format!("the whole log ({} operations)", from.replayed),
        };
        if written {
            println!(
                "checkpoint of `{name}` at revision {revision}: {} bytes (loaded from {source} in {loaded:.2} s, encoded in {encoded:.2} s, stored in {stored:.2} s)",
                bytes.len()
            );
        } else {
            println!("`{name}` has a checkpoint at revision {revision} already");
        }
    }
    Ok(())
}

/// `strata bench startup`: a generated organisation of `records` records in a fresh SQLite
/// file; a checkpoint at the revision `tail` operations before the end; then, timed in the
/// same run, the load from the whole log and the load from the checkpoint and the log after
/// it, and a check that the two give the same organisation (state, names, indexes). Memory:
/// two organisations at once (about 2 GB per million records).
pub fn bench_startup(
    records: usize,
    seed: u64,
    tail: usize,
    dir: Option<&Path>,
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir_in(dir.unwrap_or(&std::env::temp_dir()))?;
    let db = scratch.path().join("startup.db");
    let org = "bench";
    crate::bench_cmd::generate_into(&db, org, records, seed)?;
    let store = server_cmd::open_existing_store(&db)?;
    let head = store.revision(org)?;
    let at = head.saturating_sub(tail as u64).max(1);

    // The checkpoint: the state at `at` (the log replayed that far), encoded and stored.
    let mut entries = store.operations(org, 0)?;
    entries.truncate(usize::try_from(at)?);
    let (at_state, _) = strata_store::replay(org, entries, &mut |_, _| {})?;
    let start = Instant::now();
    let bytes = strata_checkpoint::encode(&at_state);
    let encode_s = start.elapsed().as_secs_f64();
    drop(at_state);
    let start = Instant::now();
    store.put_checkpoint(
        org,
        at,
        strata_checkpoint::FORMAT_VERSION,
        &bytes,
        strata_app::now_ms(),
    )?;
    let store_s = start.elapsed().as_secs_f64();
    let size = bytes.len();
    drop(bytes);

    // The whole log, as a start without a checkpoint (after the checkpoint's state is gone:
    // at ten million records two organisations and a log do not fit in 24 GB together).
    let start = Instant::now();
    let (full, revision) = strata_store::load_organization(store.as_ref(), org)?;
    let full_s = start.elapsed().as_secs_f64();
    if revision != head {
        return Err(anyhow!("loaded revision {revision}, the log is at {head}"));
    }

    // Its parts, timed one by one…
    let start = Instant::now();
    let read = store
        .read_checkpoint(org, at)?
        .ok_or_else(|| anyhow!("the checkpoint is not there"))?;
    let read_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let (state, index) = strata_checkpoint::decode_parts(&read)?;
    let decode_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let built = strata_engine::Organization::from_state_with_index(state, index)?;
    let build_s = start.elapsed().as_secs_f64();
    drop(built);
    // Before D120: the same state, its record index rebuilt (what a format 3 checkpoint does).
    let state = strata_checkpoint::decode_state(&read)?;
    drop(read);
    let start = Instant::now();
    let rebuilt = strata_engine::Organization::from_state(state)?;
    let rebuild_s = start.elapsed().as_secs_f64();
    drop(rebuilt);
    let start = Instant::now();
    let tail_entries = store.operations(org, at)?;
    let tail_read_s = start.elapsed().as_secs_f64();
    let replayed = tail_entries.len();
    drop(tail_entries);

    // …and the load a server does (checkpoint + tail), whole.
    let start = Instant::now();
    let (fast, fast_revision, from) =
        strata_app::checkpoint::load(store.as_ref(), org, &mut |_, _| {})
            .map_err(|e| anyhow!("{e}"))?;
    let fast_s = start.elapsed().as_secs_f64();
    if from.checkpoint != Some(at) || fast_revision != head {
        return Err(anyhow!(
            "the load did not use the checkpoint at {at}: {from:?} at {fast_revision}"
        ));
    }
    let differences = fast.differences(&full);
    let same = differences.is_empty();
    drop((fast, full));
    drop(store);

    // What a user sees: `strata serve` on the file, from its start to `/readyz` answering 200
    // (the store opened, the checkpoint read, verified, decoded and built, the tail replayed),
    // and the server's peak resident memory by then.
    let database = crate::bench_crash::Db::Sqlite(db.clone());
    let (server, serve_time) = crate::bench_crash::Server::start(&database, 0)?;
    let serve_peak = server.peak_rss();
    drop(server);
    let rows = vec![
        vec!["records".to_owned(), records.to_string()],
        vec!["log (operations)".to_owned(), head.to_string()],
        vec!["full replay (read, verify, apply)".to_owned(), secs(full_s)],
        vec!["checkpoint at revision".to_owned(), at.to_string()],
        vec!["checkpoint size".to_owned(), mib(size)],
        vec!["checkpoint encode".to_owned(), secs(encode_s)],
        vec!["checkpoint store".to_owned(), secs(store_s)],
        vec!["  read + verify (MAC)".to_owned(), secs(read_s)],
        vec![
            "  decode (state and record index)".to_owned(),
            secs(decode_s),
        ],
        vec![
            "  build (derived indexes rebuilt, record index from the bytes)".to_owned(),
            secs(build_s),
        ],
        vec![
            "  (before D120: derived indexes and record index rebuilt)".to_owned(),
            secs(rebuild_s),
        ],
        vec![
            format!("  tail read + verify ({replayed} operations)"),
            secs(tail_read_s),
        ],
        vec!["checkpoint load + tail (whole)".to_owned(), secs(fast_s)],
        vec![
            "`strata serve`: start to /readyz 200".to_owned(),
            secs(serve_time.as_secs_f64()),
        ],
        vec![
            "`strata serve`: peak resident memory when ready".to_owned(),
            serve_peak.map_or_else(|| "unknown".to_owned(), gib),
        ],
        vec![
            "speed-up".to_owned(),
            format!("{:.1}×", full_s / fast_s.max(1e-9)),
        ],
        vec![
            "same organisation (state, names, indexes)".to_owned(),
            if same {
                "yes".to_owned()
            } else {
                format!("NO: {differences:?}")
            },
        ],
    ];
    crate::table::print(&["start-up of a generated organisation", "value"], &rows);
    if !same {
        return Err(anyhow!(
            "the checkpoint's load differs from the full replay: {differences:?}"
        ));
    }
    Ok(())
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

fn secs(s: f64) -> String {
    format!("{s:.2} s")
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / (1 << 20) as f64)
}
