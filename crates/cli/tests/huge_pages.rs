//! D134: `strata` keeps its heap out of transparent huge pages. The allocator asks for them
//! on its arena, and once the kernel's khugepaged reached a server it collapsed each 2 MiB
//! range holding a resident page into a whole huge page: the soak's server grew from 75 to as
//! much as 145 MiB minutes into a run, its heap unchanged (RELIABILITY.md, "Load and soak").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::spawn_serving;
use serde_json::json;

const ROOT: &str = "huge-pages-test-root-key";

/// A field of `/proc/PID/FILE` (its first word).
fn proc_field(pid: u32, file: &str, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/{file}:\n{text}"))
        .to_owned()
}

/// The server, stopped however the test ends.
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_server_holds_no_transparent_huge_page_while_its_heap_grows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db").to_string_lossy().into_owned();
    let (child, url) = spawn_serving(Command::new(env!("CARGO_BIN_EXE_strata")).args([
        "serve",
        "--db",
        &db,
        "--listen",
        "127.0.0.1:0",
        "--root-key",
        ROOT,
    ]));
    let pid = child.id();
    let child = Stop(child);
    // Off for the whole process (what khugepaged and the page faults look at).
    assert_eq!(proc_field(pid, "status", "THP_enabled:"), "0");
    // Some megabytes of heap: an organisation of 20,000 records.
    let auth = format!("Bearer {ROOT}");
    let post = |path: &str, body: serde_json::Value| {
        let mut answer = ureq::post(&format!("{url}{path}"))
            .config()
            .http_status_as_error(false)
            .build()
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        let status = answer.status();
        let text = answer.body_mut().read_to_string().unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
    };
    post("/api/v1/orgs", json!({"name": "o"}));
    post(
        "/api/v1/orgs/o/operations",
        json!([
            {"op": "add_business_unit", "name": "Root"},
            {"op": "add_table", "name": "account", "columns": [{"name": "name"}]},
            {"op": "add_role", "name": "Owner", "privileges": {"account": {"create": "user"}}},
            {"op": "add_user", "name": "u", "business_unit": "Root"},
            {"op": "assign_role", "principal": "u", "role": "Owner"}
        ]),
    );
    for chunk in 0..4 {
        let ops: Vec<serde_json::Value> = (chunk * 5_000..(chunk + 1) * 5_000)
            .map(|n| {
                json!({"op": "create", "as": "u", "table": "account", "id": format!("a{n}"),
                    "fields": {"name": format!("account number {n}")}})
            })
            .collect();
        post("/api/v1/orgs/o/operations", json!(ops));
    }
    let rss: u64 = proc_field(pid, "smaps_rollup", "Rss:").parse().unwrap();
    let huge = proc_field(pid, "smaps_rollup", "AnonHugePages:");
    drop(child);
    assert!(rss > 20 * 1024, "the heap grew: {rss} kB resident");
    assert_eq!(
        huge, "0",
        "kB of transparent huge pages, of {rss} kB resident"
    );
}
