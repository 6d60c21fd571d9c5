//! Load shedding (D97): over the limit of requests in flight, a request is answered at once
//! with 503 `server_busy` and `Retry-After`, health and readiness still answer, and the server
//! serves again once the load passes; a credential over its per-second limit gets 429
//! `rate_limited` with `Retry-After` while others go on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared fixture")]
mod common;

use std::time::{Duration, Instant};

use common::{Db, Server, setup_org};
use serde_json::json;

#[test]
fn over_the_requests_in_flight_a_request_is_refused_at_once() {
    let db = Db::new();
    let server = Server::start_with(
        &db.path,
        strata_server::ServerOptions {
            max_in_flight: 1,
            min_revision_wait: Duration::from_secs(3),
            ..strata_server::ServerOptions::default()
        },
    );
    setup_org(&server, "o", "O");
    let root = server.root();
    let revision = root.revision("o");
    // One request holds the only place: it waits for a revision that does not come.
    let waiting = {
        let root = root.clone();
        std::thread::spawn(move || {
            root.get(&format!(
                "/api/v1/orgs/o/records/a001?user=admin&min_revision={}",
                revision + 10
            ))
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let refused = root.get("/api/v1/orgs/o/revision");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "not refused at once"
    );
    refused.expect_error(503, "server_busy");
    assert_eq!(refused.header("retry-after"), Some("1"));
    // A load balancer still sees the node.
    server.client(None).get("/healthz").expect(200);
    waiting
        .join()
        .unwrap()
        .expect_error(503, "revision_not_reached");
    // The load passed: served again.
    root.get("/api/v1/orgs/o/revision").expect(200);
}

#[test]
fn a_credential_over_its_rate_is_limited_and_others_go_on() {
    let db = Db::new();
    let server = Server::start_with(
        &db.path,
        strata_server::ServerOptions {
            key_rate: 1.0,
            key_burst: 3.0,
            ..strata_server::ServerOptions::default()
        },
    );
    let root = server.root();
    root.post("/api/v1/orgs", &json!({"name": "o"})).expect(201);
    for _ in 0..2 {
        root.get("/api/v1/orgs/o/revision").expect(200);
    }
    let limited = root.get("/api/v1/orgs/o/revision");
    limited.expect_error(429, "rate_limited");
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // Another credential (here an unknown one) has its own allowance: it is refused for
    // being unknown, not for the root key's rate.
    server
        .client(Some("not-a-key"))
        .get("/api/v1/orgs/o/revision")
        .expect_error(401, "unauthenticated");
    server.client(None).get("/readyz").expect(200);
    std::thread::sleep(Duration::from_millis(1100));
    root.get("/api/v1/orgs/o/revision").expect(200);
}
