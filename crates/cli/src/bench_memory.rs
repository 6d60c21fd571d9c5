//! `strata bench memory`: where the generated organisation's memory goes, structure by
//! structure (the engine's `Organization::memory_usage`), beside the process's resident memory
//! (`VmRSS`) and its peak (`VmHWM`) after the build, and again after a load from checkpoint
//! bytes (the start-up path: the bytes, their decoding and the organisation built from them).

use std::time::Instant;

use anyhow::anyhow;
use serde_json::json;
use strata_engine::{MemoryUsage, Organization};

use crate::bench_cmd;

const MIB: f64 = 1_048_576.0;

/// A line of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`); `None` off Linux.
fn status_bytes(field: &str) -> Option<u64> {
    process_status_bytes("self", field)
}

/// A memory figure (`VmRSS`, `VmHWM`) of a process (`self` or its id), from `/proc`.
pub(crate) fn process_status_bytes(process: &str, field: &str) -> Option<u64> {
    proc_kib(&format!("/proc/{process}/status"), field).map(|kib| kib * 1024)
}

/// A field of a `/proc` file given in kB (`VmRSS:` of `status`, `AnonHugePages:` of
/// `smaps_rollup`), in KiB; `None` when the file or the field is missing.
pub(crate) fn proc_kib(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.trim_start_matches(field)
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Resets the peak resident memory to the current one (Linux: `5` to `clear_refs`).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Phase {
    name: &'static str,
    seconds: f64,
    usage: MemoryUsage,
    rss: Option<u64>,
    peak: Option<u64>,
    checkpoint_bytes: Option<usize>,
}

fn records_of(org: &Organization) -> usize {
    org.table_ids().map(|t| org.table_records(t).len()).sum()
}

fn gib(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "-".to_owned(),
        |b| format!("{:.2} GiB", b as f64 / MIB / 1024.0),
    )
}

/// `strata bench memory`.
pub fn run(records: usize, seed: u64, checkpoint: bool, as_json: bool) -> anyhow::Result<()> {
    let start = Instant::now();
    let (org, _) = bench_cmd::build(records, seed)?;
    let built = Phase {
        name: "built from operations",
        seconds: start.elapsed().as_secs_f64(),
        usage: org.memory_usage(),
        rss: status_bytes("VmRSS"),
        peak: status_bytes("VmHWM"),
        checkpoint_bytes: None,
    };
    let total_records = records_of(&org);
    let mut phases = vec![built];
    if checkpoint {
        // The load before D120 (format 3: the state alone, the record index rebuilt), then
        // the load now (format 4: the record index stored), each from its own bytes, the
        // organisation before it dropped and the peak reset.
        let bytes = strata_checkpoint::encode_state(&org.state_ref());
        drop(org);
        let (loaded, phase) = load(bytes, "loaded from a format 3 checkpoint (index rebuilt)")?;
        phases.push(phase);
        let bytes = strata_checkpoint::encode(&loaded);
        drop(loaded);
        let (loaded, phase) = load(bytes, "loaded from a format 4 checkpoint (index stored)")?;
        phases.push(phase);
        drop(loaded);
    }
    if as_json {
        let out: Vec<_> = phases
            .iter()
            .map(|p| {
                let rows: serde_json::Map<String, serde_json::Value> = p
                    .usage
                    .rows()
                    .iter()
                    .map(|(name, bytes)| ((*name).to_owned(), json!(bytes)))
                    .collect();
                json!({
                    "phase": p.name,
                    "records": total_records,
                    "seconds": p.seconds,
                    "structures": rows,
                    "accounted_bytes": p.usage.total(),
                    "rss_bytes": p.rss,
                    "peak_rss_bytes": p.peak,
                    "checkpoint_bytes": p.checkpoint_bytes,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    for p in &phases {
        print_phase(p, total_records);
    }
    Ok(())
}

/// Decodes checkpoint bytes as a server does (the bytes dropped once decoded), the peak reset
/// before.
fn load(bytes: Vec<u8>, name: &'static str) -> anyhow::Result<(Organization, Phase)> {
    let size = bytes.len();
    let reset = reset_peak();
    let start = Instant::now();
    let (loaded, index_problem) =
        strata_checkpoint::decode_owned(bytes).map_err(|e| anyhow!("decode: {e}"))?;
    if let Some(e) = index_problem {
        return Err(anyhow!("the checkpoint's record index was rebuilt: {e}"));
    }
    let seconds = start.elapsed().as_secs_f64();
    let phase = Phase {
        name,
        seconds,
        usage: loaded.memory_usage(),
        rss: status_bytes("VmRSS"),
        peak: status_bytes("VmHWM").filter(|_| reset),
        checkpoint_bytes: Some(size),
    };
    Ok((loaded, phase))
}

fn print_phase(p: &Phase, records: usize) {
    let total = p.usage.total();
    println!(
        "{} records, {} in {:.1} s: resident {}, peak {}{}",
        records,
        p.name,
        p.seconds,
        gib(p.rss),
        gib(p.peak),
        p.checkpoint_bytes.map_or_else(String::new, |b| format!(
            " (checkpoint {:.1} MiB)",
            b as f64 / MIB
        ))
    );
    let per = |b: usize| b as f64 / records.max(1) as f64;
    let mut rows: Vec<Vec<String>> = p
        .usage
        .rows()
        .iter()
        .map(|(name, bytes)| {
            vec![
                (*name).to_owned(),
                format!("{:.1}", *bytes as f64 / MIB),
                format!("{:.1}", per(*bytes)),
                format!("{:.1} %", 100.0 * *bytes as f64 / total.max(1) as f64),
            ]
        })
        .collect();
    rows.push(vec![
        "total accounted".to_owned(),
        format!("{:.1}", total as f64 / MIB),
        format!("{:.1}", per(total)),
        "100.0 %".to_owned(),
    ]);
    if let Some(rss) = p.rss {
        let rest = rss as f64 - total as f64;
        rows.push(vec![
            "resident, not accounted".to_owned(),
            format!("{:.1}", rest / MIB),
            format!("{:.1}", rest / records.max(1) as f64),
            String::new(),
        ]);
    }
    let index = p.usage.index_bitmaps + p.usage.index_inherited + p.usage.index_columns;
    crate::table::print(&["STRUCTURE", "MIB", "BYTES/RECORD", "SHARE"], &rows);
    println!(
        "record index: {:.1} bytes per record; peak resident {:.0} bytes per record\n",
        per(index),
        p.peak.map_or(0.0, |b| b as f64 / records.max(1) as f64)
    );
}
