//! Test support: the real server on a loopback port over a SQLite file, a small HTTP/1.1
//! client over `std::net::TcpStream`, and the model every test loads.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use strata_server::ServerConfig;
use strata_store::SqliteStore;

/// The root key every test server is started with.
pub const ROOT: &str = "root-key-for-tests-0123456789";

/// A server running on its own thread and tokio runtime.
pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Starts a server over the SQLite file `db`.
    pub fn start(db: &Path) -> Server {
        Server::start_with(db, strata_server::ServerOptions::default())
    }

    /// Starts a server over the SQLite file `db` with `options`.
    pub fn start_with(db: &Path, options: strata_server::ServerOptions) -> Server {
        let store = Arc::new(SqliteStore::open(db).unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> std::io::Result<()> {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let _ = addr_tx.send(listener.local_addr()?);
                let config = ServerConfig {
                    store,
                    root_key: Some(ROOT.to_owned()),
                };
                strata_server::serve_with(config, options, listener, async move {
                    let _ = rx.await;
                })
                .await
            })
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the server did not start");
        Server {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Shuts the server down gracefully and waits for it to finish.
    pub fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join()
                .expect("the server thread panicked")
                .expect("serve returned an error");
        }
    }

    /// A client presenting `key` (`None`: no credentials).
    pub fn client(&self, key: Option<&str>) -> Client {
        Client {
            addr: self.addr,
            key: key.map(str::to_owned),
        }
    }

    /// A client with the root key.
    pub fn root(&self) -> Client {
        self.client(Some(ROOT))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A temporary directory with a SQLite file in it.
pub struct Db {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Db {
    pub fn new() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strata.db");
        Db { _dir: dir, path }
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body for messages, cut to a readable length.
    pub fn brief(&self) -> String {
        let text = self.text();
        if text.chars().count() > 600 {
            format!("{}…", text.chars().take(600).collect::<String>())
        } else {
            text
        }
    }

    /// The body as JSON; panics (with the body) when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status,
                self.brief()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.brief()
        );
        self.json()
    }

    /// Asserts a JSON error of this status and code; returns the error object.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.brief()
        );
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/json"),
            "error of status {status} is not JSON (content-type `{ct}`): {}",
            self.brief()
        );
        let body = self.json();
        let error = body["error"].clone();
        assert_eq!(error["code"], json!(code), "unexpected error: {body}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without a message: {body}"
        );
        error
    }
}

/// Sends one request over a fresh connection and reads the whole response.
pub fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    // A `Host` among `headers` replaces the default one (the address connected to).
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    head.push_str("Connection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let writer = if body.len() > 64 * 1024 {
        // A large body is written from another thread: the server may answer (and stop
        // reading) before all of it is sent.
        let mut w = stream.try_clone().unwrap();
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Some(std::thread::spawn(move || {
            let _ = w.write_all(&bytes);
        }))
    } else {
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        stream.write_all(&bytes).unwrap();
        None
    };
    let raw = read_to_close(&mut stream)
        .unwrap_or_else(|e| panic!("{method} {path}: reading the response: {e}"));
    if let Some(w) = writer {
        let _ = w.join();
    }
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: not an HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Reads until the server closes (a reset after some bytes counts as the end), then shuts the
/// connection.
fn read_to_close(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if !raw.is_empty() && e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(raw)
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    parse_one(raw).map(|(response, _)| response)
}

/// Writes `request` as it is (from another thread: the server may answer and close before
/// reading all of it) on a fresh connection, and reads every response until the server closes.
pub fn exchange(addr: SocketAddr, request: Vec<u8>) -> Vec<Response> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&request);
    });
    let raw = read_to_close(&mut stream).unwrap_or_else(|e| panic!("reading the responses: {e}"));
    let _ = writer.join();
    let mut responses = Vec::new();
    let mut rest = &raw[..];
    while !rest.is_empty() {
        let (response, used) = parse_one(rest)
            .unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(rest)));
        responses.push(response);
        rest = &rest[used..];
    }
    responses
}

/// One response at the start of `raw`, and how many bytes it took (a response without a
/// length takes the rest).
fn parse_one(raw: &[u8]) -> Option<(Response, usize)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let rest = &raw[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let (body, used) =
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            (dechunk(rest)?, raw.len())
        } else if let Some(len) = find("content-length") {
            let len: usize = len.parse().ok()?;
            (rest.get(..len)?.to_vec(), end + 4 + len)
        } else {
            (rest.to_vec(), raw.len())
        };
    Some((
        Response {
            status,
            headers,
            body,
        },
        used,
    ))
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// A client presenting one key (or none).
#[derive(Clone, Debug)]
pub struct Client {
    pub addr: SocketAddr,
    pub key: Option<String>,
}

impl Client {
    fn auth(&self) -> Option<String> {
        self.key.as_ref().map(|k| format!("Bearer {k}"))
    }

    /// A request with extra headers and a raw body.
    pub fn raw(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Response {
        let auth = self.auth();
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        headers.extend_from_slice(extra);
        send(self.addr, method, path, &headers, body)
    }

    pub fn get(&self, path: &str) -> Response {
        self.raw("GET", path, &[], b"")
    }

    pub fn delete(&self, path: &str) -> Response {
        self.raw("DELETE", path, &[], b"")
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: &Value, extra: &[(&str, &str)]) -> Response {
        let mut headers = vec![("Content-Type", "application/json")];
        headers.extend_from_slice(extra);
        self.raw("POST", path, &headers, body.to_string().as_bytes())
    }

    /// POSTs raw bytes as `application/json`.
    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Response {
        self.raw("POST", path, &[("Content-Type", "application/json")], body)
    }

    /// The organisation's revision (asked with this client's key).
    #[track_caller]
    pub fn revision(&self, org: &str) -> u64 {
        let body = self
            .get(&format!("/api/v1/orgs/{org}/revision"))
            .expect(200);
        body["revision"].as_u64().expect("revision")
    }

    /// Writes operations; expects success and returns the new revision.
    #[track_caller]
    pub fn write(&self, org: &str, ops: &Value) -> u64 {
        let body = self
            .post(&format!("/api/v1/orgs/{org}/operations"), ops)
            .expect(200);
        body["revision"].as_u64().expect("revision")
    }

    /// Creates an API key for `user` (this client must be allowed to).
    #[track_caller]
    pub fn key_for(&self, org: &str, user: &str) -> String {
        let body = self
            .post(
                &format!("/api/v1/orgs/{org}/api-keys"),
                &json!({ "user": user }),
            )
            .expect(201);
        assert_eq!(body["user"], json!(user));
        assert!(body["id"].as_str().is_some_and(|i| !i.is_empty()));
        body["key"].as_str().expect("key").to_owned()
    }
}

/// Number of `account` records alice owns in Sales.
pub const SALES_RECORDS: usize = 150;
/// Number of `account` records carol owns in Support.
pub const SUPPORT_RECORDS: usize = 100;

pub fn sales_key(i: usize) -> String {
    format!("a{i:03}")
}

pub fn support_key(i: usize) -> String {
    format!("c{i:03}")
}

/// The model: units, a table with a secured column, roles, users (one disabled), a profile,
/// an app, records (Sales and Support interleaved) and a share. `label` goes into the
/// records' names so that two organisations loaded with it differ in content only.
pub fn model(label: &str) -> Value {
    let mut ops = vec![
        json!({"op": "add_business_unit", "name": "Contoso"}),
        json!({"op": "add_business_unit", "name": "Sales", "parent": "Contoso"}),
        json!({"op": "add_business_unit", "name": "Support", "parent": "Contoso"}),
        json!({"op": "add_table", "name": "account", "columns": [
            {"name": "name"}, {"name": "creditlimit", "secured": true}
        ]}),
        json!({"op": "set_audit", "enabled": true, "tables": ["account"]}),
        json!({"op": "add_role", "name": "Admin", "system_administrator": true}),
        json!({"op": "add_role", "name": "Rep", "privileges": {"account": {
            "create": "user", "read": "business_unit", "write": "user", "delete": "user",
            "append": "user", "append_to": "user", "assign": "user", "share": "user"
        }}}),
        json!({"op": "add_role", "name": "Support Rep", "privileges": {"account": {
            "create": "user", "read": "business_unit", "write": "user", "delete": "user",
            "share": "user"
        }}}),
        json!({"op": "add_role", "name": "Auditor", "misc": ["prvReadAuditSummary", "prvCheckAccessOfOthers"],
            "privileges": {"account": {"read": "organization"}, "systemuser": {"read": "organization"}}}),
        json!({"op": "add_user", "name": "admin", "business_unit": "Contoso"}),
        json!({"op": "add_user", "name": "alice", "business_unit": "Sales"}),
        json!({"op": "add_user", "name": "bob", "business_unit": "Sales"}),
        json!({"op": "add_user", "name": "carol", "business_unit": "Support"}),
        json!({"op": "add_user", "name": "audrey", "business_unit": "Contoso"}),
        json!({"op": "add_user", "name": "erin", "business_unit": "Sales", "enabled": false}),
        json!({"op": "assign_role", "principal": "admin", "role": "Admin"}),
        json!({"op": "assign_role", "principal": "alice", "role": "Rep"}),
        json!({"op": "assign_role", "principal": "bob", "role": "Rep"}),
        json!({"op": "assign_role", "principal": "carol", "role": "Support Rep"}),
        json!({"op": "assign_role", "principal": "audrey", "role": "Auditor"}),
        json!({"op": "add_profile", "name": "Credit Viewers", "members": ["bob"], "permissions": [
            {"table": "account", "column": "creditlimit", "read": true}
        ]}),
        json!({"op": "add_app", "name": "Sales Hub", "roles": ["Rep"]}),
    ];
    for i in 0..SALES_RECORDS {
        ops.push(json!({"op": "insert_record", "id": sales_key(i), "table": "account",
            "owner": "alice", "fields": {"name": format!("{label} {}", sales_key(i)), "creditlimit": 1000 + i}}));
        if i < SUPPORT_RECORDS {
            ops.push(json!({"op": "insert_record", "id": support_key(i), "table": "account",
                "owner": "carol", "fields": {"name": format!("{label} {}", support_key(i)), "creditlimit": 5}}));
        }
    }
    ops.push(
        json!({"op": "insert_record", "id": "b1", "table": "account", "owner": "bob",
        "fields": {"name": format!("{label} b1")}}),
    );
    ops.push(
        json!({"op": "insert_record", "id": "s1", "table": "account", "owner": "carol",
        "fields": {"name": format!("{label} s1"), "creditlimit": 77}}),
    );
    ops.push(json!({"op": "share", "record": "s1", "principal": "alice", "rights": ["read"]}));
    Value::Array(ops)
}

/// The account records alice reads in the model: Sales (hers and bob's) and the share.
pub fn alice_readable() -> std::collections::BTreeSet<String> {
    let mut set: std::collections::BTreeSet<String> = (0..SALES_RECORDS).map(sales_key).collect();
    set.insert("b1".to_owned());
    set.insert("s1".to_owned());
    set
}

/// A server with one organisation loaded with the model, and keys for its users.
pub struct Fixture {
    // Declared before `db`: the server stops before its directory goes.
    pub server: Server,
    pub _db: Db,
    pub org: String,
    pub keys: Keys,
}

/// API keys of the model's users.
#[derive(Clone, Debug)]
pub struct Keys {
    pub admin: String,
    pub alice: String,
    pub bob: String,
    pub carol: String,
    pub audrey: String,
    pub erin: String,
}

/// Creates `org`, loads the model and makes keys (the admin's with the root key, the others
/// with the admin's).
pub fn setup_org(server: &Server, org: &str, label: &str) -> Keys {
    let root = server.root();
    let created = root
        .post("/api/v1/orgs", &json!({ "name": org }))
        .expect(201);
    assert_eq!(created, json!({ "name": org, "revision": 0 }));
    let rev = root.write(org, &model(label));
    assert!(rev > 0);
    let admin = root.key_for(org, "admin");
    let a = server.client(Some(&admin));
    Keys {
        alice: a.key_for(org, "alice"),
        bob: a.key_for(org, "bob"),
        carol: a.key_for(org, "carol"),
        audrey: a.key_for(org, "audrey"),
        erin: a.key_for(org, "erin"),
        admin,
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let db = Db::new();
        let server = Server::start(&db.path);
        let org = "contoso".to_owned();
        let keys = setup_org(&server, &org, "Contoso");
        Fixture {
            server,
            _db: db,
            org,
            keys,
        }
    }

    pub fn as_(&self, key: &str) -> Client {
        self.server.client(Some(key))
    }

    pub fn root(&self) -> Client {
        self.server.root()
    }

    /// `/api/v1/orgs/{org}` + `rest`.
    pub fn url(&self, rest: &str) -> String {
        format!("/api/v1/orgs/{}{rest}", self.org)
    }
}

/// The Web API's service root, as a path, and Dataverse's error codes the tests expect.
pub mod web {
    /// The service root, as a path.
    pub const V: &str = "/api/data/v9.2/";
    /// Dataverse's "principal user is missing privilege" code.
    pub const DENIED: &str = "0x80040220";
    /// Dataverse's "object does not exist" code.
    pub const NOT_FOUND: &str = "0x80040217";
    /// Dataverse's "resource not found for the segment" code.
    pub const NO_RESOURCE: &str = "0x8006088a";
    /// Dataverse's code of an OData query that does not parse or names what does not exist.
    pub const BAD_QUERY: &str = "0x80060888";
    /// Dataverse's code of a limit (`odata_limit`).
    pub const LIMIT: &str = "0x8004431a";
    /// Dataverse's "invalid argument" code.
    pub const INVALID: &str = "0x80040203";
    /// Dataverse's "duplicate record" code.
    pub const DUPLICATE: &str = "0x80040237";

    /// A path under the service root.
    pub fn api(rest: &str) -> String {
        format!("{V}{rest}")
    }
}

/// One request to a router in this process (no socket): the status and the JSON body (`Null`
/// when the body is not JSON).
pub async fn call(
    app: &axum::Router,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(axum::body::Body::empty, |b| {
            axum::body::Body::from(b.to_string())
        }))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A router over `store` with the root key `root`, holding an empty organisation `o`.
pub async fn router_with_org(store: &Arc<dyn strata_store::Store>) -> axum::Router {
    let app = strata_server::router(&ServerConfig {
        store: Arc::clone(store),
        root_key: Some("root".into()),
    })
    .unwrap();
    let (status, body) = call(
        &app,
        "root",
        "POST",
        "/api/v1/orgs",
        Some(json!({ "name": "o" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    app
}

/// The argument text of each `.route(` call in `src`, up to its matching parenthesis: the
/// route tests read the routers' source to check that their matrices list every route.
pub fn route_args(src: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i);
        let end = end
            .unwrap_or_else(|| panic!("an unbalanced `.route(`: {}", &rest[..rest.len().min(80)]));
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}
