//! `strata bench writes` and `strata bench mixed` run against real `strata serve` processes and
//! print their tables, as `strata bench names` prints its own (small counts here; BENCHMARKS.md
//! has the full runs). The PostgreSQL rows are measured when `STRATA_TEST_POSTGRES` names a
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::strata;

#[test]
fn bench_writes_prints_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_string_lossy();
    let mut args = vec![
        "bench", "writes", "--writes", "200", "--bulk", "2000", "--dir", &dir,
    ];
    let postgres = strata_store::postgres_testing::server_from_env().unwrap();
    if let Some(url) = &postgres {
        args.extend(["--postgres", url]);
    }
    let (code, out, err) = strata(&args);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("SQLite") || l.starts_with("PostgreSQL"))
        .collect();
    // Each write alone and group commit, 16 and 64 clients (PostgreSQL: one node, two, and two
    // with a write leader); the bulk rows, native and through the Web API.
    let expected = if postgres.is_some() {
        4 + 10 + 4
    } else {
        4 + 2
    };
    assert_eq!(rows.len(), expected, "{out}");
    for row in rows {
        let numbers: Vec<f64> = row
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert!(numbers.iter().all(|&n| n >= 0.0), "{row}");
        if row.contains(" commit") || row.contains(" alone ") {
            // Nodes, clients, creates/s, shares/s, creates per commit, store ms per commit,
            // server µs per create, KiB written per create, the load generator's µs per create.
            assert_eq!(numbers.len(), 9, "{row}");
            assert!(numbers[2] > 0.0 && numbers[3] > 0.0, "{row}");
            if row.contains("each write alone") {
                // Creates per commit, from the server's counters: one.
                assert_eq!(numbers[4], 1.0, "{row}");
            }
        } else {
            // Nodes, records/s, requests per commit, store ms per commit, server µs per
            // record, the load generator's µs per record.
            assert_eq!(numbers.len(), 6, "{row}");
            assert!(numbers[1] > 0.0 && numbers[4] > 0.0, "{row}");
            assert!(
                numbers[2] >= 1.0,
                "a commit holds at least one request: {row}"
            );
        }
    }
    assert!(out.contains("group commit"), "{out}");
    assert!(out.contains("SQLite, Web API CreateMultiple"), "{out}");
    if postgres.is_some() {
        assert!(out.contains("group commit, write leader"), "{out}");
    }
}

/// `strata bench writes` with `args`, its SQLite files in a fresh temporary folder.
fn bench_writes(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_string_lossy();
    let mut all = vec!["bench", "writes", "--dir", &dir];
    all.extend(args);
    strata(&all)
}

#[test]
fn bench_writes_measures_the_client_counts_asked_for() {
    let (code, out, err) = bench_writes(&[
        "--writes",
        "200",
        "--bulk",
        "0",
        "--clients",
        "3,5",
        "--no-alone",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.starts_with("SQLite"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows.iter().all(|r| r[2] == "group"), "{out}");
    assert_eq!((rows[0][4], rows[1][4]), ("3", "5"), "{out}");
    // At most as many creates in one commit as there are clients.
    for row in &rows {
        let per_commit: f64 = row[7].parse().unwrap();
        let clients: f64 = row[4].parse().unwrap();
        assert!((1.0..=clients).contains(&per_commit), "{out}");
    }
    let (code, _, err) = bench_writes(&["--clients", "0"]);
    assert_ne!(code, 0);
    assert!(err.contains("at least 1"), "{err}");
}

#[test]
fn bench_mixed_prints_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = strata(&[
        "bench",
        "mixed",
        "--seconds",
        "1",
        "--rate",
        "100",
        "--records",
        "200",
        "--dry-runs",
        "--dir",
        &dir.path().to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("dry runs of a unit move (10101 users compared each)"),
        "{out}"
    );
    for condition in ["idle", "while writing", "while dry runs repeat"] {
        let row = out
            .lines()
            .find(|l| l.starts_with(condition))
            .unwrap_or_else(|| panic!("{condition}: {out}"));
        let checks: usize = row
            .split_whitespace()
            .nth(match condition {
                "idle" => 2,
                "while writing" => 3,
                _ => 5,
            })
            .unwrap()
            .parse()
            .unwrap();
        assert!(checks > 0, "{row}");
    }
}

#[test]
fn bench_soak_samples_and_judges_a_short_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (code, stdout, err) = strata(&[
        "bench",
        "soak",
        "--minutes",
        "0.35",
        "--rate",
        "100",
        "--out",
        &out.to_string_lossy(),
        "--dir",
        &dir.path().to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains(" 0 errors;"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("soak.csv")).unwrap();
    assert!(csv.lines().count() >= 3, "{csv}");
    // D134: the server's heap is never in transparent huge pages (which khugepaged fills).
    assert!(csv.starts_with("seconds,rss_mib,huge_pages_mib,"), "{csv}");
    for row in csv.lines().skip(1) {
        assert_eq!(row.split(',').nth(2), Some("0.0"), "{csv}");
    }
    let svg = std::fs::read_to_string(out.join("soak.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
}

/// `strata bench names` names the keys asked for and prints a row per run; a count out of its
/// range is refused.
#[test]
fn bench_names_prints_a_row_per_run() {
    let (code, out, err) = strata(&["bench", "names", "--keys", "20000", "--runs", "2"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    for row in &rows {
        assert_eq!(row[1], "20000", "{out}");
        let slowest_at: usize = row[4].parse().unwrap();
        assert!(slowest_at < 20_000, "{out}");
        assert!(row[2].parse::<f64>().unwrap() > 0.0, "{out}");
    }
    let (code, _, err) = strata(&["bench", "names", "--keys", "0"]);
    assert_ne!(code, 0);
    assert!(err.contains("--keys"), "{err}");
}

/// `strata bench writes --guid-ids`: the native bulk row's records take GUIDs (the row says
/// so), and the load succeeds (every id a valid, distinct GUID the server accepts).
#[test]
fn bench_writes_bulk_with_guid_ids() {
    let (code, out, err) = bench_writes(&[
        "--writes",
        "0",
        "--bulk",
        "3000",
        "--no-alone",
        "--guid-ids",
    ]);
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("SQLite, GUID ids"))
        .unwrap_or_else(|| panic!("no GUID row: {out}"));
    let numbers: Vec<f64> = row
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers[1] > 0.0, "{row}");
}

/// `strata bench records`: both designs, each run, with the figures of each.
#[test]
fn bench_records_prints_both_designs_per_run() {
    let (code, out, err) = strata(&["bench", "records", "--records", "70000", "--runs", "2"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(rows.len(), 4, "{out}");
    for (row, design) in rows.iter().zip(["vector", "chunks", "vector", "chunks"]) {
        assert!(row.contains(design), "{out}");
        let numbers: Vec<f64> = row
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        // run, records, µs per append, slowest ms, slowest at, ns per read
        assert_eq!(numbers.len(), 6, "{out}");
        assert_eq!(numbers[1], 70_000.0, "{out}");
        assert!(numbers[4] < 70_000.0, "{out}");
    }
    let (code, _, err) = strata(&["bench", "records", "--records", "0"]);
    assert_ne!(code, 0);
    assert!(err.contains("--records"), "{err}");
}
