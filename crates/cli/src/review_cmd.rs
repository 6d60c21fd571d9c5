//! `strata review --org O --format xlsx|csv [--out PATH] [--inactive-days N]`: the access
//! review (seed 002, docs/review.md). From a database, the engine's views and the user-access
//! audit of that database, written here (the operator of the database reviews everyone); from
//! a server, the file its `…/review` route answers (D70 decides there); from a scenario file,
//! its organisation with no audit. `bench_review` times it on the generated organisation.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use clap::ValueEnum;
use strata_app::review::{self, ReviewFormat};
use strata_engine::{AccessReview, ReviewOptions};

use crate::args::Source;
use crate::remote::encode;
use crate::server_cmd;
use crate::table;

/// The file format of the review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FileFormat {
    /// One workbook, a sheet per view.
    Xlsx,
    /// One CSV file per view: a folder, or a zip when --out ends in `.zip`.
    Csv,
}

/// Where the files go: `--out`, or a name with the organisation and the date in the current
/// folder (a workbook, or a folder of CSV files).
fn destination(out: Option<&Path>, org: &str, now_ms: i64, format: FileFormat) -> PathBuf {
    if let Some(p) = out {
        return p.to_path_buf();
    }
    match format {
        FileFormat::Xlsx => PathBuf::from(review::file_name(org, now_ms, ReviewFormat::Xlsx)),
        FileFormat::Csv => {
            let zip = review::file_name(org, now_ms, ReviewFormat::Csv);
            PathBuf::from(zip.trim_end_matches(".zip"))
        }
    }
}

fn is_zip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).map_err(|e| anyhow!("cannot write `{}`: {e}", path.display()))
}

/// `strata review`.
pub(crate) fn run(
    source: &Source,
    format: FileFormat,
    out: Option<&Path>,
    inactive_days: u32,
) -> anyhow::Result<()> {
    if inactive_days > strata_engine::MAX_INACTIVE_DAYS {
        bail!(
            "--inactive-days must be at most {}",
            strata_engine::MAX_INACTIVE_DAYS
        );
    }
    let now_ms = strata_app::now_ms();
    if let Some(server) = source.server() {
        let path = destination(out, server.org, now_ms, format);
        let query = format!(
            "/api/v1/orgs/{}/review?format={}&inactive_days={inactive_days}",
            encode(server.org),
            match format {
                FileFormat::Xlsx => "xlsx",
                FileFormat::Csv => "csv",
            }
        );
        let bytes = download(server.url, server.key, &query)?;
        match format {
            FileFormat::Csv if !is_zip(&path) => {
                let files = unzip(&bytes, &path)?;
                println!("wrote {} CSV files to {}", files, path.display());
            }
            _ => {
                write_file(&path, &bytes)?;
                println!("wrote {} ({} bytes)", path.display(), bytes.len());
            }
        }
        return Ok(());
    }
    let (answer, name) = local(source, now_ms, inactive_days)?;
    let path = destination(out, &name, now_ms, format);
    let bytes = match format {
        FileFormat::Xlsx => Some(review::xlsx(&answer).map_err(|e| anyhow!(e))?),
        FileFormat::Csv if is_zip(&path) => Some(review::csv_zip(&answer).map_err(|e| anyhow!(e))?),
        FileFormat::Csv => None,
    };
    match bytes {
        Some(bytes) => {
            write_file(&path, &bytes)?;
            println!("wrote {} ({} bytes)", path.display(), bytes.len());
        }
        None => {
            let files = review::csv_folder(&answer, &path).map_err(|e| anyhow!(e))?;
            println!("wrote {} CSV files to {}", files.len(), path.display());
        }
    }
    let rows: Vec<Vec<String>> = answer
        .views
        .iter()
        .map(|v| vec![v.name.to_owned(), v.rows.len().to_string()])
        .collect();
    table::print(&["VIEW", "ROWS"], &rows);
    Ok(())
}

/// The review of a database's organisation (with its user-access audit) or a scenario's.
fn local(
    source: &Source,
    now_ms: i64,
    inactive_days: u32,
) -> anyhow::Result<(AccessReview, String)> {
    let mut options = ReviewOptions {
        now_ms,
        inactive_days,
        ..ReviewOptions::default()
    };
    let org = match (&source.scenario, &source.db, &source.org) {
        (None, Some(db), Some(name)) => {
            let store = server_cmd::open_existing_store(db)?;
            let (org, revision) = strata_store::load_organization(store.as_ref(), name)?;
            options.last_seen = review::last_seen(store.as_ref(), name, &review::user_names(&org))
                .map_err(|e| anyhow!(e))?;
            options.revision = revision;
            options.organization = name.clone();
            org
        }
        (Some(path), _, _) => {
            options.organization = source.org.clone().unwrap_or_else(|| {
                path.file_stem().map_or_else(
                    || "scenario".to_owned(),
                    |s| s.to_string_lossy().into_owned(),
                )
            });
            crate::question_cmd::organisation(source)?
        }
        _ => bail!(
            "name the organisation: --db FILE --org NAME, --server URL --org NAME --key KEY, or --scenario FILE"
        ),
    };
    let name = options.organization.clone();
    Ok((org.access_review(&options), name))
}

/// The bytes of a GET, or an error with the server's message.
fn download(url: &str, key: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    let client =
        strata_scenario::http_client::HttpClient::new(url, std::time::Duration::from_secs(600))
            .map_err(|e| anyhow!(e))?;
    let auth = format!("Bearer {key}");
    let response = client
        .request("GET", path, &[("Authorization", &auth)], None)
        .map_err(|e| anyhow!(e))?;
    if response.status != 200 {
        let value: serde_json::Value =
            serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
        bail!(
            "HTTP {}: {}",
            response.status,
            value["error"]["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(response.body)
}

/// Writes every `*.csv` of a zip into `dir` (created if missing); the number of files.
fn unzip(bytes: &[u8], dir: &Path) -> anyhow::Result<usize> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| anyhow!("the server's review is not a zip: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("cannot create `{}`: {e}", dir.display()))?;
    let mut n = 0;
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| anyhow!("review zip: {e}"))?;
        // Only plain `name.csv` entries: never a path out of the folder.
        let name = file
            .name()
            .map_err(|e| anyhow!("review zip: {e}"))?
            .into_owned();
        if name.contains(['/', '\\']) || name.starts_with('.') || !name.ends_with(".csv") {
            bail!("unexpected entry `{name}` in the server's review");
        }
        let mut text = Vec::new();
        file.read_to_end(&mut text)
            .map_err(|e| anyhow!("review zip: {e}"))?;
        write_file(&dir.join(&name), &text)?;
        n += 1;
    }
    Ok(n)
}

/// `strata bench review`: the review of the generated organisation, in memory: the views, then
/// the workbook and the zipped CSV files; prints the time and size of each.
pub(crate) fn bench(records: usize, seed: u64, runs: usize) -> anyhow::Result<()> {
    let (mut org, built) = crate::bench_cmd::build(records, seed)?;
    // The administrators' benchmark model on top: 100 more roles, an app, four licences and a
    // licence for every user (so that the licence view has a line per user).
    let users: Vec<String> = org.user_ids().map(|u| org.user(u).name.clone()).collect();
    strata_ops::apply_all(&mut org, &crate::bench_admin::admin_model(seed, &users)?)
        .map_err(|(i, e)| anyhow!("bench model operation {i}: {}", e.message))?;
    println!(
        "generated organisation with the admin bench's roles and licences: {} users, {} roles, {} records in {:.1} s",
        org.user_ids().count(),
        org.role_ids().count(),
        org.record_count(),
        built.as_secs_f64()
    );
    // A last access for every other user, a year back to now.
    let now_ms = strata_app::now_ms();
    let last_seen = org
        .user_ids()
        .filter(|u| u.index() % 2 == 0)
        .map(|u| (u, now_ms - (u.index() as i64 % 365) * 86_400_000))
        .collect();
    let options = ReviewOptions {
        organization: "bench".into(),
        revision: 1,
        now_ms,
        inactive_days: strata_engine::DEFAULT_INACTIVE_DAYS,
        last_seen,
    };
    let answer = org.access_review(&options);
    let xlsx = review::xlsx(&answer).map_err(|e| anyhow!(e))?;
    let zip = review::csv_zip(&answer).map_err(|e| anyhow!(e))?;
    let csv_bytes: usize = answer.views.iter().map(|v| review::csv_view(v).len()).sum();
    let rows: Vec<Vec<String>> = answer
        .views
        .iter()
        .map(|v| vec![v.name.to_owned(), v.rows.len().to_string()])
        .collect();
    table::print(&["VIEW", "ROWS"], &rows);
    let (views_p50, _) = crate::bench_cmd::time(runs, || {
        let _ = org.access_review(&options);
    });
    let (xlsx_p50, _) = crate::bench_cmd::time(runs, || {
        let _ = review::xlsx(&answer);
    });
    let (zip_p50, _) = crate::bench_cmd::time(runs, || {
        let _ = review::csv_zip(&answer);
    });
    let total: usize = answer.views.iter().map(|v| v.rows.len()).sum();
    println!();
    println!("{runs} runs each (median); {total} rows in all");
    println!("| step | ms | bytes |");
    println!("|---|---:|---:|");
    println!("| the views (engine) | {views_p50:.1} | |");
    println!("| XLSX workbook | {xlsx_p50:.1} | {} |", xlsx.len());
    println!(
        "| CSV zip (deflated; {csv_bytes} bytes unzipped) | {zip_p50:.1} | {} |",
        zip.len()
    );
    println!(
        "| review as XLSX (views + workbook) | {:.1} | |",
        views_p50 + xlsx_p50
    );
    Ok(())
}
