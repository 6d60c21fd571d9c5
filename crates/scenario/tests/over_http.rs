//! The scenario corpus (`tests/scenarios/`) runs against a real Strata server over HTTP, started
//! in this process on a free port: every step must pass, and as many as against the engine.
//! The corpus runs twice: on the memory store, and on PostgreSQL when `STRATA_TEST_POSTGRES`
//! names a server (a fresh database; skipped with a note when unset, a failure under CI).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The corpus's files (`find tests/scenarios -name '*.yaml' | wc -l`).
const CORPUS_FILES: usize = 133;

use common::{ROOT_KEY, Result, Server};
use strata_scenario::{EngineTarget, HttpTarget, Target, run_paths};
use strata_store::postgres_testing::{self, ScratchDatabase};
use strata_store::{AuditKey, MemoryStore, PostgresStore, Store};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

#[test]
fn corpus_passes_over_http_as_against_the_engine() -> Result<()> {
    corpus_over_http(Arc::new(MemoryStore::new()?), "memory store")
}

#[test]
fn corpus_passes_over_http_on_postgres() -> Result<()> {
    let Some(server) = postgres_testing::server_from_env()? else {
        eprintln!(
            "note: corpus_passes_over_http_on_postgres: skipped, STRATA_TEST_POSTGRES is not set"
        );
        return Ok(());
    };
    let scratch = ScratchDatabase::create(&server)?;
    let store = PostgresStore::open_with_key(scratch.url(), AuditKey::new([9; 32]))?;
    corpus_over_http(Arc::new(store), "PostgreSQL store")
}

/// Runs the corpus against the engine, then over HTTP against a server on `store`: the same
/// steps pass, and every scenario's organisation is gone afterwards.
fn corpus_over_http(store: Arc<dyn Store>, backend: &str) -> Result<()> {
    let root = corpus();
    let files = strata_scenario::collect_files(std::slice::from_ref(&root))?;
    assert!(
        files.len() == CORPUS_FILES,
        "the corpus has {} files, not the {CORPUS_FILES} it holds (a file or folder went missing, or one was added: update CORPUS_FILES): {}",
        files.len(),
        root.display()
    );

    let mut engine_out = Vec::new();
    let engine = run_paths(
        std::slice::from_ref(&root),
        &mut || Box::new(EngineTarget::new()) as Box<dyn Target>,
        &mut engine_out,
    );
    let engine_text = String::from_utf8_lossy(&engine_out);
    assert_eq!(engine.failed, 0, "{engine_text}");

    let server = Server::start_on(store)?;
    let url = server.url.clone();
    let started = Instant::now();
    let mut out = Vec::new();
    // Small pages, so that listing follows cursors.
    let summary = run_paths(
        std::slice::from_ref(&root),
        &mut || Box::new(HttpTarget::new(&url, ROOT_KEY).with_page_size(2)) as Box<dyn Target>,
        &mut out,
    );
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out);
    eprintln!(
        "over HTTP on the {backend}: {} files, {} passed, {} failed in {took:.2?}",
        files.len(),
        summary.passed,
        summary.failed
    );
    assert_eq!(summary.failed, 0, "{text}");
    assert_eq!(summary.load_errors, 0, "{text}");
    assert_eq!(summary.passed, engine.passed, "{text}");

    // Every scenario's organisation was deleted when its target was dropped.
    let client =
        strata_scenario::http_client::HttpClient::new(&url, std::time::Duration::from_secs(10))?;
    let auth = format!("Bearer {ROOT_KEY}");
    let listed = client.request("GET", "/api/v1/orgs", &[("Authorization", &auth)], None)?;
    assert_eq!(listed.status, 200);
    let orgs: serde_json::Value = serde_json::from_slice(&listed.body)?;
    assert_eq!(orgs["organizations"], serde_json::json!([]), "{orgs}");

    server.stop()
}

#[test]
fn a_setup_refusal_names_the_line_of_the_failing_operation() -> Result<()> {
    let server = Server::start()?;
    // Validation accepts this; the engine refuses a role for an access team (line 15).
    let source = "\
format: 1
name: refused setup
business_units:
  - name: Contoso
tables:
  - name: account
roles:
  - name: Reader
    privileges:
      account: { read: organization }
users:
  - { name: alice }
teams:
  - { name: Owners, type: owner, roles: [Reader] }
  - { name: Deal Room, type: access, members: [alice], roles: [Reader] }
records:
  - { id: a1, table: account, owner: alice }
steps:
  - check: { user: alice, privilege: read, record: a1 }
    expect: allow
";
    let scenario =
        strata_scenario::load_str(source).map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let engine_error = EngineTarget::new().load(&scenario).err();
    let mut http = HttpTarget::new(&server.url, ROOT_KEY);
    let http_error = http.load(&scenario).err();
    assert!(http_error.is_some(), "the server accepted a refused setup");
    assert_eq!(http_error, engine_error);
    assert_eq!(http_error.map(|e| e.line), Some(15));
    drop(http);
    // A wrong root key is a load error that says so.
    let mut http = HttpTarget::new(&server.url, "wrong");
    let refused = http.load(&strata_scenario::Scenario::default());
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.message.contains("unauthenticated")),
        "{refused:?}"
    );
    server.stop()
}

/// Runs one scenario file against both targets: (summary, step lines of the failures).
fn both(
    server: &Server,
    path: &std::path::Path,
) -> (
    (strata_scenario::Summary, Vec<String>),
    (strata_scenario::Summary, Vec<String>),
) {
    let failures = |out: &[u8]| -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .filter(|l| l.contains(": step ") || l.contains(": load error: "))
            .map(|l| l.split(": expected").next().unwrap_or_default().to_owned())
            .collect()
    };
    let paths = [path.to_path_buf()];
    let mut out = Vec::new();
    let engine = run_paths(
        &paths,
        &mut || Box::new(EngineTarget::new()) as Box<dyn Target>,
        &mut out,
    );
    let engine = (engine, failures(&out));
    let mut out = Vec::new();
    let http = run_paths(
        &paths,
        &mut || {
            Box::new(HttpTarget::new(&server.url, ROOT_KEY).with_page_size(1)) as Box<dyn Target>
        },
        &mut out,
    );
    (engine, (http, failures(&out)))
}

#[test]
fn awkward_names_pages_numbers_and_wrong_expectations_agree_with_the_engine() -> Result<()> {
    let server = Server::start()?;
    let source = r#"format: 1
name: awkward names
business_units:
  - name: Contoso
tables:
  - name: account
roles:
  - name: Reader & Writer
    privileges:
      account: { read: organization, write: organization, create: organization, delete: user }
  - name: Nothing
    privileges: {}
apps:
  - name: Sales Hub/EU?
    roles: [Reader & Writer]
users:
  - { name: "ann smith", roles: [Reader & Writer] }
  - { name: "bob+1", roles: [Nothing] }
records:
  - { id: "a/1 x", table: account, owner: "ann smith", fields: { name: "Ä&B", score: 3, ratio: 0.25 } }
  - { id: "a?2#", table: account, owner: "ann smith" }
  - { id: "a%3", table: account, owner: "ann smith" }
  - { id: gone, table: account, owner: "ann smith" }
steps:
  - delete: { as: "ann smith", record: gone }
    expect: ok
  - list: { user: "ann smith", table: account }
    expect: ["a/1 x", "a?2#", "a%3"]
  - list: { user: "bob+1", table: account }
    expect: []
  - read: { user: "ann smith", record: "a/1 x" }
    expect: { name: "Ä&B", score: 3, ratio: 0.25 }
  - read: { user: "bob+1", record: "a/1 x" }
    expect: deny
  - access: { user: "ann smith", record: "a%3" }
    expect: [read, write, delete]
  - access: { user: "ann smith", record: gone }
    expect: []
  - who_has_access: { record: "a?2#", privilege: write }
    expect: ["ann smith"]
  - open_app: { user: "ann smith", app: "Sales Hub/EU?" }
    expect: allow
  - open_app: { user: "bob+1", app: "Sales Hub/EU?" }
    expect: deny
  - check: { user: "ann smith", privilege: read, record: gone }
    expect: deny
  - check: { user: "bob+1", privilege: create, table: account }
    expect: deny
  - update: { as: "ann smith", record: "a/1 x", fields: { ratio: 1.5 } }
    expect: ok
  - read: { user: "ann smith", record: "a/1 x" }
    expect: { ratio: 1.5 }
  - update: { as: "bob+1", record: "a/1 x", fields: { ratio: 2 } }
    expect: denied
  - create: { as: "ann smith", table: account, id: "a/1 x", owner: "ann smith" }
    expect: invalid
  - list: { user: "ann smith", table: account }
    expect: ["a/1 x"]
  - check: { user: "ann smith", privilege: read, record: "a%3" }
    expect: allow
    reason: share
  - read: { user: "ann smith", record: "a/1 x" }
    expect: { score: 4 }
  - update: { as: "bob+1", record: "a/1 x", fields: { ratio: 2 } }
    expect: ok
  - access: { user: "bob+1", record: "a%3" }
    expect: [read]
  - who_has_access: { record: gone, privilege: read }
    expect: []
  - check: { user: "bob+1", privilege: read, record: gone }
    expect: allow
"#;
    let dir = std::env::temp_dir().join(format!("strata-over-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("awkward.yaml");
    std::fs::write(&path, source)?;
    let ((engine, engine_failures), (http, http_failures)) = both(&server, &path);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(engine.load_errors, 0, "{engine_failures:?}");
    // Steps 17 to 23 but 22 expect the wrong thing.
    let failed: Vec<&str> = engine_failures
        .iter()
        .filter_map(|l| l.split(": step ").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(
        failed,
        ["17", "18", "19", "20", "21", "23"],
        "{engine_failures:?}"
    );
    assert_eq!((engine.passed, engine.failed), (17, 6));
    assert_eq!(http, engine, "{http_failures:?}");
    assert_eq!(http_failures, engine_failures);
    server.stop()
}
