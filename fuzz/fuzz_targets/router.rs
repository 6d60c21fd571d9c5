//! The whole HTTP router, in process: the real axum app over the memory store with the demo
//! organisation (`demo`) loaded, one request per input sent with tower's `oneshot` on a tokio
//! runtime made once per process.
//!
//! The input is a request as text: `METHOD PATH` on the first line, then `Name: value`
//! header lines up to an empty line, then the body. In header values `$ROOT`, `$ADMIN` and
//! `$USER` stand for the root key, a System Administrator's API key and a sales
//! representative's, so that the fuzzer reaches past authentication.
//!
//! Properties: no panic (a handler that panics is a crash, not a 500), and a refused request
//! (4xx or 5xx) changes nothing: the organisation's revision in the store, and, for a method
//! other than GET and HEAD, the digest (SHA-256 of the canonical dump, with the revision in
//! memory) the server reports, are those of before the request. The digest is taken without
//! its index rebuilds (`indexes=false`: they were half of the target's time); every
//! `INDEX_CHECK_EVERY`th refused write asks for them too, and they must equal a rebuild (a
//! corrupted index stays corrupted, so a sample finds it). The world (store, demo, app, keys) is
//! made afresh after every `FRESH_EVERY` accepted writes, so that an execution's cost does not
//! grow with everything the fuzzer created before it.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use libfuzzer_sys::fuzz_target;
use strata_store::{MemoryStore, Store};
use tower::ServiceExt as _;

const ROOT: &str = "root-key-for-the-fuzzer-0123456789";
const ORG: &str = "demo";

struct World {
    store: Arc<dyn Store>,
    app: axum::Router,
    admin: String,
    user: String,
}

async fn send(app: &axum::Router, request: Request<Body>) -> (u16, Vec<u8>) {
    let Ok(response) = app.clone().oneshot(request).await;
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (status, body)
}

fn root_request(method: &str, path: &str, body: Option<serde_json::Value>) -> Request<Body> {
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    match Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ROOT}"))
        .header("content-type", "application/json")
        .body(body)
    {
        Ok(r) => r,
        Err(e) => panic!("a request of the fuzzer's own does not build: {e}"),
    }
}

/// The one runtime of the process.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => panic!("tokio runtime: {e}"),
        }
    })
}

/// Accepted writes after which the world is made afresh: the organisation grows with what
/// the fuzzer creates, and each digest (a canonical dump) costs more as it does — after a
/// few hundred thousand inputs a tenth of the executions a second of a fresh world.
const FRESH_EVERY: u64 = 1_000;

/// A fresh world: the demo in a new memory store, the app over it, two API keys.
fn fresh_world() -> World {
    let runtime = runtime();
    {
        let store: Arc<dyn Store> = match MemoryStore::new() {
            Ok(s) => Arc::new(s),
            Err(e) => panic!("memory store: {e}"),
        };
        let ops = strata_demo::operations(strata_fuzz::DEMO_RECORDS);
        let loaded = strata_app::Loader::new(store.as_ref(), ORG, strata_app::Actor::System)
            .and_then(|mut loader| loader.append(&ops, &mut |_| {}));
        if let Err(e) = loaded {
            panic!("the demo does not load: {e}");
        }
        let app = match strata_server::router(&strata_server::ServerConfig {
            store: Arc::clone(&store),
            root_key: Some(ROOT.to_owned()),
        }) {
            Ok(app) => app,
            Err(e) => panic!("router: {e:?}"),
        };
        let key = |user: &str| {
            let request = root_request(
                "POST",
                &format!("/api/v1/orgs/{ORG}/api-keys"),
                Some(serde_json::json!({ "user": user })),
            );
            let (status, body) = runtime.block_on(send(&app, request));
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            match json["key"].as_str() {
                Some(k) if status < 300 => k.to_owned(),
                _ => panic!(
                    "api key for {user}: {status} {}",
                    String::from_utf8_lossy(&body)
                ),
            }
        };
        let admin = key("admin");
        let user = key("rep_east");
        World {
            store,
            app,
            admin,
            user,
        }
    }
}

/// The world and the writes it has accepted.
static WORLD: std::sync::Mutex<Option<(World, u64)>> = std::sync::Mutex::new(None);

/// The request an input describes, or `None` when it is not one (a method or URI that
/// `http` itself refuses never reaches a server).
fn request(world: &World, data: &[u8]) -> Option<Request<Body>> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, path) = lines.next()?.split_once(' ')?;
    // The root key may delete the organisation, after which every input would meet a 404:
    // deletions as the root key are left out (the API's own tests cover them).
    if method.eq_ignore_ascii_case("DELETE") && head.contains("$ROOT") {
        return None;
    }
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).ok()?)
        .uri(path);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value
            .trim_start()
            .replace("$ROOT", ROOT)
            .replace("$ADMIN", &world.admin)
            .replace("$USER", &world.user);
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    builder.body(Body::from(body.to_vec())).ok()
}

/// The organisation's digest answer as the root key reads it (status and body), without the
/// index rebuilds.
async fn digest(app: &axum::Router) -> (u16, Vec<u8>) {
    send(
        app,
        root_request(
            "GET",
            &format!("/api/v1/orgs/{ORG}/digest?indexes=false"),
            None,
        ),
    )
    .await
}

/// One refused write in this many has the indexes compared with a rebuild.
const INDEX_CHECK_EVERY: u64 = 64;

/// Asserts that the derived indexes and the record index equal a rebuild.
async fn indexes_are_current(app: &axum::Router, status: u16, body: &[u8]) {
    let (code, answer) = send(
        app,
        root_request("GET", &format!("/api/v1/orgs/{ORG}/digest"), None),
    )
    .await;
    let json: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
    assert!(
        code == 200 && json["indexes_current"] == true && json["record_index_current"] == true,
        "after a refused request ({status}: {}) the indexes differ from a rebuild: {code} {}",
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&answer)
    );
}

static REFUSED_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The digest after the last request that was answered 2xx or 3xx (`None`: not taken since).
static BASELINE: std::sync::Mutex<Option<(u16, Vec<u8>)>> = std::sync::Mutex::new(None);

fuzz_target!(|data: &[u8]| {
    let mut slot = match WORLD.lock() {
        Ok(w) => w,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut baseline = match BASELINE.lock() {
        Ok(b) => b,
        Err(poisoned) => poisoned.into_inner(),
    };
    if slot
        .as_ref()
        .is_none_or(|(_, accepted)| *accepted >= FRESH_EVERY)
    {
        // The old world goes first (its background threads end with it).
        *slot = None;
        *slot = Some((fresh_world(), 0));
        *baseline = None;
    }
    let Some((world, accepted)) = slot.as_mut() else {
        return;
    };
    let Some(request) = request(world, data) else {
        return;
    };
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let revision = world.store.revision(ORG).ok();
    runtime().block_on(async {
        if !safe && baseline.is_none() {
            *baseline = Some(digest(&world.app).await);
        }
        let (status, body) = send(&world.app, request).await;
        if status < 400 {
            // An accepted request may change the organisation: the next refused one is
            // compared with the state after it.
            *baseline = None;
            if !safe {
                *accepted += 1;
            }
            return;
        }
        let after = world.store.revision(ORG).ok();
        assert_eq!(
            revision,
            after,
            "a refused request ({status}: {}) changed the stored revision",
            String::from_utf8_lossy(&body)
        );
        if let (false, Some(before)) = (safe, baseline.as_ref()) {
            let now = digest(&world.app).await;
            assert!(
                *before == now,
                "a refused request ({status}: {}) changed the digest: {} → {}",
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&before.1),
                String::from_utf8_lossy(&now.1)
            );
            let n = REFUSED_WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n % INDEX_CHECK_EVERY == 0 {
                indexes_are_current(&world.app, status, &body).await;
            }
        }
    });
});
