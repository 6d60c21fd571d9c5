//! The security suite over every surface (issue 15, "Security regression"): each finding of the
//! security issue (issue 9) that a surface can express, replayed through the native API, the
//! Dataverse Web API (with `$batch` and `MSCRMCallerID` impersonation), the admin console (its
//! HTTP forms and pages with a signed-in session and its CSRF token) and the imports (solution
//! roles over the API and the console, and the Web API's `…Multiple` bulk messages), side by
//! side, as a table of (finding, surface, request, expected refusal).
//!
//! Every case checks three things: the refusal (status and stable code: the native error code,
//! Dataverse's code with Strata's, the console's error box or its "Refused" message); that the
//! answer leaks nothing (no secured value, no value of a record the caller cannot read, no
//! other organisation's data: the model's values carry markers the answers are searched for);
//! and that a refused request changed nothing (both organisations' revision and digest).
//! A finding a surface cannot express is listed with the reason, so that a new route has to
//! be placed in the table. The route matrix checks that every route of every surface (native
//! routes from the route table, Web API entity sets from the service document, console pages
//! from the console's router) is refused without credentials and with another organisation's.
//!
//! In process: the router over the memory store, one request at a time through tower.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};
use strata_server::{ServerConfig, router};
use strata_store::{MemoryStore, Store};
use tower::ServiceExt;

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

const ROOT: &str = "root-key-of-the-surface-suite";
const ORG: &str = "contoso";
const OTHER: &str = "other";
const HOST: &str = "strata.test";

/// Values no answer in the suite may hold: secured column values (`creditlimit`,
/// `annualincome`, which only the administrator and the Credit Viewers read) and the secret
/// table's record (only the administrator's).
const SECRETS: [&str; 3] = ["987654321", "424242424", "SECRET-LAUNCH"];

/// The names of the records only the administrator, HR and the auditor read: no answer to the
/// sales representatives (alice, bob) holds them (added to their cases by [`hidden_from`]).
const HIDDEN: &str = "HIDDEN-SUPPORT";

/// Dataverse's codes.
const DENIED: &str = "0x80040220";
const UNAUTHENTICATED: &str = "0x80040326";
const NOT_FOUND: &str = "0x80040217";
const NO_RESOURCE: &str = "0x8006088a";
const LIMIT: &str = "0x8004431a";
const BAD_QUERY: &str = "0x80060888";
const INVALID: &str = "0x80040203";

// ---------------------------------------------------------------------------------------------
// Requests in process
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn req(method: &'static str, path: impl Into<String>) -> Req {
    Req {
        method,
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn get(path: impl Into<String>) -> Req {
    req("GET", path)
}

fn post(path: impl Into<String>) -> Req {
    req("POST", path)
}

impl Req {
    fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn key(self, key: &str) -> Req {
        self.header("Authorization", &format!("Bearer {key}"))
    }

    fn json(mut self, body: &Value) -> Req {
        self.body = body.to_string().into_bytes();
        self.header("Content-Type", "application/json")
    }

    fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Req {
        self.body = body.into();
        self.header("Content-Type", content_type)
    }

    /// A console request of `session` (its cookie).
    fn session(self, s: &Session) -> Req {
        self.header("Cookie", &s.cookie)
    }

    /// A console form (URL-encoded).
    fn form(self, pairs: &[(&str, &str)]) -> Req {
        self.raw("application/x-www-form-urlencoded", form_encode(pairs))
    }

    /// `METHOD path` for the table.
    fn line(&self) -> String {
        let path: String = self.path.chars().take(90).collect();
        let more = if self.path.chars().count() > 90 {
            "…"
        } else {
            ""
        };
        let mut extra = String::new();
        for (k, _) in &self.headers {
            if k.eq_ignore_ascii_case("MSCRMCallerID") || k.eq_ignore_ascii_case("CallerObjectId") {
                let _ = write!(extra, " [{k}]");
            }
        }
        format!("{} {path}{more}{extra}", self.method)
    }
}

struct Reply {
    status: u16,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn brief(&self) -> String {
        let t = self.text();
        if t.chars().count() > 400 {
            format!("{}…", t.chars().take(400).collect::<String>())
        } else {
            t
        }
    }
}

async fn send(app: &axum::Router, r: &Req) -> Reply {
    let mut b = axum::http::Request::builder()
        .method(r.method)
        .uri(&r.path)
        .header("host", HOST);
    for (k, v) in &r.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    let request = b.body(axum::body::Body::from(r.body.clone())).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 26)
        .await
        .unwrap()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent-encodes a query value or path segment.
fn enc(s: &str) -> String {
    form_encode(&[("x", s)])[2..].to_owned()
}

/// A Web API path.
fn api(rest: &str) -> String {
    format!("/api/data/v9.2/{rest}")
}

/// A native path of `org`.
fn native(org: &str, rest: &str) -> String {
    format!("/api/v1/orgs/{org}{rest}")
}

// ---------------------------------------------------------------------------------------------
// The organisations
// ---------------------------------------------------------------------------------------------

/// The model of both organisations; `label` (`CONTOSO-DATA`, `OTHER-DATA`) is in every name
/// that only this organisation holds, so that an answer holding the other's can be found.
fn model(label: &str, secrets: bool) -> Value {
    // Secured values and hidden names only in contoso: the other organisation's are plain.
    let (credit, income, hidden, secret) = if secrets {
        (
            987_654_321_000_u64,
            424_242_424_u64,
            "HIDDEN-SUPPORT",
            "SECRET-LAUNCH",
        )
    } else {
        (11, 22, "hidden", "secret")
    };
    let mut ops = vec![
        json!({"op": "add_business_unit", "name": "Contoso"}),
        json!({"op": "add_business_unit", "name": "Sales", "parent": "Contoso"}),
        json!({"op": "add_business_unit", "name": "Support", "parent": "Contoso"}),
        json!({"op": "add_business_unit", "name": format!("{label} unit"), "parent": "Contoso"}),
        json!({"op": "add_table", "name": "account", "columns": [
            {"name": "name"}, {"name": "creditlimit", "secured": true}]}),
        json!({"op": "add_table", "name": "secret", "columns": [{"name": "name"}]}),
        json!({"op": "add_table", "name": "systemuser", "columns": [
            {"name": "annualincome", "secured": true}, {"name": "jobtitle"},
            {"name": "windowsliveid"}, {"name": "applicationid"}]}),
        json!({"op": "set_audit", "enabled": true, "tables": ["account", "secret", "systemuser"]}),
        json!({"op": "add_role", "name": "Admin", "system_administrator": true}),
        json!({"op": "add_role", "name": "Rep", "privileges": {
            "account": {"create": "user", "read": "business_unit", "write": "user", "delete": "user",
                "append": "user", "append_to": "user", "assign": "user", "share": "user"},
            "systemuser": {"read": "business_unit", "write": "user"}}}),
        json!({"op": "add_role", "name": "HR", "privileges": {
            "systemuser": {"read": "organization", "write": "organization"},
            "team": {"read": "organization", "write": "organization"},
            "role": {"read": "organization", "write": "organization", "create": "organization"},
            "account": {"read": "organization"}}}),
        json!({"op": "add_role", "name": "Auditor",
            "misc": ["prvReadAuditSummary", "prvCheckAccessOfOthers"],
            "privileges": {"account": {"read": "organization"}, "systemuser": {"read": "organization"}}}),
        json!({"op": "add_role", "name": format!("{label} role")}),
        json!({"op": "add_position", "name": "Director"}),
        json!({"op": "add_position", "name": "Clerk", "parent": "Director"}),
        json!({"op": "add_user", "name": "admin", "business_unit": "Contoso"}),
        json!({"op": "add_user", "name": "alice", "business_unit": "Sales"}),
        json!({"op": "add_user", "name": "bob", "business_unit": "Sales"}),
        json!({"op": "add_user", "name": "carol", "business_unit": "Support"}),
        json!({"op": "add_user", "name": "audrey", "business_unit": "Contoso"}),
        json!({"op": "add_user", "name": "erin", "business_unit": "Sales", "enabled": false}),
        json!({"op": "add_user", "name": format!("{label}-user"), "business_unit": "Sales"}),
        json!({"op": "assign_role", "principal": "admin", "role": "Admin"}),
        json!({"op": "assign_role", "principal": "alice", "role": "Rep"}),
        json!({"op": "assign_role", "principal": "bob", "role": "Rep"}),
        json!({"op": "assign_role", "principal": "carol", "role": "HR"}),
        json!({"op": "assign_role", "principal": "audrey", "role": "Auditor"}),
        json!({"op": "add_team", "name": "Admins", "type": "owner", "business_unit": "Contoso"}),
        json!({"op": "assign_role", "principal": "team:Admins", "role": "Admin"}),
        json!({"op": "add_team", "name": "HR Team", "type": "owner", "business_unit": "Support"}),
        json!({"op": "add_team_member", "team": "HR Team", "user": "carol"}),
        json!({"op": "add_team", "name": format!("{label} team"), "type": "owner", "business_unit": "Sales"}),
        json!({"op": "add_profile", "name": "Credit Viewers", "members": ["bob"], "permissions": [
            {"table": "account", "column": "creditlimit", "read": true}]}),
        json!({"op": "add_app", "name": "Sales Hub", "roles": ["Rep"]}),
        json!({"op": "set_user_fields", "user": "admin", "fields": {
            "annualincome": income, "azureactivedirectoryobjectid": format!("{label}-admin-oid")}}),
    ];
    for i in 1..=5 {
        ops.push(json!({"op": "insert_record", "id": format!("a00{i}"), "table": "account",
            "owner": "alice", "fields": {"name": format!("{label} a00{i}"), "creditlimit": credit + i}}));
    }
    for i in 1..=3 {
        ops.push(json!({"op": "insert_record", "id": format!("c00{i}"), "table": "account",
            "owner": "admin", "fields": {"name": format!("{label} {hidden} c00{i}"), "creditlimit": credit + 10 + i}}));
    }
    ops.push(
        json!({"op": "insert_record", "id": "k1", "table": "secret", "owner": "admin",
        "fields": {"name": format!("{label} {secret} codes")}}),
    );
    Value::Array(ops)
}

/// API keys of one organisation's users.
#[derive(Clone, Debug, Default)]
struct Keys(BTreeMap<&'static str, String>);

impl Keys {
    fn of(&self, user: &str) -> &str {
        self.0
            .get(user)
            .unwrap_or_else(|| panic!("no key for {user}"))
    }
}

/// A signed-in console session.
#[derive(Clone, Debug)]
struct Session {
    cookie: String,
    csrf: String,
}

struct World {
    app: axum::Router,
    /// Contoso's keys.
    k: Keys,
    /// The other organisation's keys.
    o: Keys,
    /// Contoso's users' GUIDs by name.
    users: BTreeMap<String, String>,
}

impl World {
    async fn new() -> World {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new().unwrap());
        let app = router(&ServerConfig {
            store,
            root_key: Some(ROOT.into()),
        })
        .unwrap();
        let mut w = World {
            app,
            k: Keys::default(),
            o: Keys::default(),
            users: BTreeMap::new(),
        };
        w.k = w.organisation(ORG, "CONTOSO-DATA", true).await;
        w.o = w.organisation(OTHER, "OTHER-DATA", false).await;
        let page = w
            .ok(&get(api("systemusers?$select=domainname")).key(w.k.of("admin")))
            .await;
        for u in page["value"].as_array().unwrap() {
            w.users.insert(
                u["domainname"].as_str().unwrap().to_owned(),
                u["systemuserid"].as_str().unwrap().to_owned(),
            );
        }
        w
    }

    async fn organisation(&self, org: &str, label: &str, secrets: bool) -> Keys {
        let r = self
            .send(&post("/api/v1/orgs").key(ROOT).json(&json!({"name": org})))
            .await;
        assert_eq!(r.status, 201, "{}", r.brief());
        self.ok(&post(native(org, "/operations"))
            .key(ROOT)
            .json(&model(label, secrets)))
            .await;
        let mut keys = Keys::default();
        let key_of = |by: String, user: &'static str| {
            post(native(org, "/api-keys"))
                .key(&by)
                .json(&json!({"user": user}))
        };
        let admin = self.send(&key_of(ROOT.into(), "admin")).await;
        assert_eq!(admin.status, 201, "{}", admin.brief());
        let admin = admin.json()["key"].as_str().unwrap().to_owned();
        for user in ["alice", "bob", "carol", "audrey", "erin"] {
            let r = self.send(&key_of(admin.clone(), user)).await;
            assert_eq!(r.status, 201, "{}", r.brief());
            keys.0
                .insert(user, r.json()["key"].as_str().unwrap().to_owned());
        }
        keys.0.insert("admin", admin);
        keys
    }

    async fn send(&self, r: &Req) -> Reply {
        send(&self.app, r).await
    }

    /// Sends `r`, expects 200 or 201, answers the JSON.
    async fn ok(&self, r: &Req) -> Value {
        let reply = self.send(r).await;
        assert!(
            reply.status == 200 || reply.status == 201,
            "{}: {}",
            r.line(),
            reply.brief()
        );
        reply.json()
    }

    /// A user's GUID in contoso.
    fn user(&self, name: &str) -> &str {
        self.users
            .get(name)
            .unwrap_or_else(|| panic!("no user {name}"))
    }

    /// A GUID from the native API (root key, read as the administrator).
    async fn guid(&self, record: &str) -> String {
        let r = self
            .ok(&get(native(ORG, &format!("/records/{record}?user=admin"))).key(ROOT))
            .await;
        r["guid"].as_str().unwrap().to_owned()
    }

    /// The GUID of a team, unit or role by name, from the Web API (contoso's administrator).
    async fn entity(&self, set: &str, id_column: &str, name: &str) -> String {
        let r = self
            .ok(&get(api(&format!("{set}(name='{}')", enc(name)))).key(self.k.of("admin")))
            .await;
        r[id_column].as_str().unwrap().to_owned()
    }

    /// Both organisations' revision and digest.
    async fn snapshot(&self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for org in [ORG, OTHER] {
            let d = self.ok(&get(native(org, "/digest")).key(ROOT)).await;
            out.push((
                d["revision"].as_u64().unwrap(),
                d["sha256"].as_str().unwrap().to_owned(),
            ));
        }
        out
    }

    /// Signs in to the console with `key`.
    async fn sign_in(&self, key: &str) -> Session {
        let r = self
            .send(&post("/console/sign-in").form(&[("key", key)]))
            .await;
        assert_eq!(r.status, 303, "{}", r.brief());
        let cookie = r.header("set-cookie").split(';').next().unwrap().to_owned();
        let page = self
            .send(&get("/console/users").header("Cookie", &cookie))
            .await;
        assert_eq!(page.status, 200, "{}", page.brief());
        let text = page.text();
        let at = text.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
        Session {
            cookie,
            csrf: text[at..at + 64].to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table of cases
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Surface {
    Native,
    WebApi,
    Console,
    Import,
}

impl Surface {
    fn name(self) -> &'static str {
        match self {
            Surface::Native => "native API",
            Surface::WebApi => "Web API",
            Surface::Console => "console",
            Surface::Import => "imports",
        }
    }
}

/// What a refused request is answered.
#[derive(Clone, Debug)]
enum Expect {
    /// A native error: status and `error.code`.
    Api(u16, &'static str),
    /// A Web API error: status, Dataverse's `error.code` and `strata_code`.
    Web(u16, &'static str, &'static str),
    /// A `$batch`: the outer status and a part's `strata_code`.
    Batch(u16, &'static str),
    /// A console page: status and the code of its error box.
    Page(u16, &'static str),
    /// A console change: 303 back to a page whose message starts with "Refused" and holds
    /// these words.
    Flash(&'static [&'static str]),
    /// A console request sent back to the sign-in page.
    SignIn,
    /// Answered with this status, not a refusal (the caller's own data, a role skipped): what
    /// matters is that nothing leaks or changes.
    Answered(u16),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Api(s, c) => write!(f, "{s} {c}"),
            Expect::Web(s, c, sc) => write!(f, "{s} {c} ({sc})"),
            Expect::Batch(s, c) => write!(f, "{s}, part {c}"),
            Expect::Page(s, c) => write!(f, "{s} page, {c}"),
            Expect::Flash(words) => write!(f, "303, \"Refused: …{}…\"", words.join("…")),
            Expect::SignIn => write!(f, "303 to sign-in"),
            Expect::Answered(s) => write!(f, "{s}, nothing of contoso's"),
        }
    }
}

struct Case {
    finding: &'static str,
    surface: Surface,
    what: String,
    request: Req,
    expect: Expect,
    /// Besides [`SECRETS`], text the answer must not hold.
    absent: Vec<String>,
}

/// Adds [`HIDDEN`] to the texts the answers of the cases sent with any of `credentials` (keys,
/// session cookies) must not hold.
fn hidden_from(cases: &mut [Case], credentials: &[&str]) {
    for c in cases {
        if c.request
            .headers
            .iter()
            .any(|(_, v)| credentials.iter().any(|k| v.contains(k)))
        {
            c.absent.push(HIDDEN.to_owned());
        }
    }
}

/// `c`, whose answer must not hold `texts` either.
fn absent_of(mut c: Case, texts: &[&str]) -> Case {
    c.absent.extend(texts.iter().map(|t| (*t).to_owned()));
    c
}

fn case(finding: &'static str, surface: Surface, what: &str, request: Req, expect: Expect) -> Case {
    Case {
        finding,
        surface,
        what: what.to_owned(),
        request,
        expect,
        absent: Vec::new(),
    }
}

/// A finding a surface cannot express, and why.
struct Gap {
    finding: &'static str,
    surface: Surface,
    why: &'static str,
}

fn gap(finding: &'static str, surface: Surface, why: &'static str) -> Gap {
    Gap {
        finding,
        surface,
        why,
    }
}

impl World {
    /// Checks one case; the failure, if any.
    async fn check(&self, c: &Case) -> Result<(), String> {
        let before = self.snapshot().await;
        let r = self.send(&c.request).await;
        let text = r.text();
        let json = r.json();
        let fail = |why: String| Err(format!("{why}; answer {}: {}", r.status, r.brief()));
        match &c.expect {
            Expect::Api(status, code) => {
                if r.status != *status || json["error"]["code"] != json!(code) {
                    return fail(format!("expected {status} {code}"));
                }
                if json["error"]["message"].as_str().is_none_or(str::is_empty) {
                    return fail("an error without a message".into());
                }
            }
            Expect::Web(status, code, strata) => {
                if r.status != *status
                    || json["error"]["code"] != json!(code)
                    || json["error"]["strata_code"] != json!(strata)
                {
                    return fail(format!("expected {status} {code} ({strata})"));
                }
            }
            Expect::Batch(status, strata) => {
                if r.status != *status || !text.contains(&format!("\"strata_code\":\"{strata}\"")) {
                    return fail(format!("expected a batch {status} with a part {strata}"));
                }
            }
            Expect::Page(status, code) => {
                if r.status != *status || !text.contains(&format!("<strong>{code}</strong>")) {
                    return fail(format!("expected a {status} page showing {code}"));
                }
            }
            Expect::Flash(words) => {
                let to = r.header("location").to_owned();
                if r.status != 303 || to.is_empty() || to.starts_with("/console/sign-in") {
                    return fail("expected 303 back to a console page".into());
                }
                let cookie = c
                    .request
                    .headers
                    .iter()
                    .find(|(k, _)| k == "Cookie")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let page = self.send(&get(&to).header("Cookie", &cookie)).await;
                let page_text = page.text();
                let flash = page_text
                    .split("id=\"flash\"")
                    .nth(1)
                    .and_then(|s| s.split_once('>'))
                    .and_then(|(_, s)| s.split('<').next())
                    .unwrap_or("");
                if !flash.starts_with("Refused") || !words.iter().all(|w| flash.contains(w)) {
                    return Err(format!(
                        "expected a flash `Refused: …{}…` on {to}, got {flash:?}",
                        words.join("…")
                    ));
                }
                if let Some(s) = SECRETS
                    .iter()
                    .copied()
                    .chain(c.absent.iter().map(String::as_str))
                    .find(|s| page_text.contains(*s))
                {
                    return Err(format!("the page after the refusal shows `{s}`"));
                }
            }
            Expect::SignIn => {
                if r.status != 303 || !r.header("location").starts_with("/console/sign-in") {
                    return fail("expected 303 to /console/sign-in".into());
                }
            }
            Expect::Answered(status) => {
                if r.status != *status {
                    return fail(format!("expected {status}"));
                }
            }
        }
        if let Some(s) = SECRETS
            .iter()
            .map(|s| (*s).to_owned())
            .chain(c.absent.iter().cloned())
            .find(|s| text.contains(s.as_str()))
        {
            return fail(format!("the answer holds `{s}`"));
        }
        let after = self.snapshot().await;
        if after != before {
            return Err(format!(
                "a refused request changed the state: {before:?} → {after:?}"
            ));
        }
        Ok(())
    }

    /// Runs every case, prints the table, and fails listing every case that did not hold.
    async fn run(&self, title: &str, cases: &[Case], gaps: &[Gap]) {
        let mut failures = Vec::new();
        let mut table = format!(
            "\n{title}: {} cases\n{:<28} {:<11} {:<46} {}\n",
            cases.len(),
            "finding",
            "surface",
            "request",
            "expected"
        );
        for c in cases {
            let outcome = self.check(c).await;
            let _ = writeln!(
                table,
                "{:<28} {:<11} {:<46} {}{}",
                c.finding,
                c.surface.name(),
                format!("{} — {}", c.what, c.request.line()),
                c.expect,
                if outcome.is_ok() { "" } else { "   ✘" }
            );
            if let Err(e) = outcome {
                failures.push(format!(
                    "[{} / {}] {} ({}): {e}",
                    c.finding,
                    c.surface.name(),
                    c.what,
                    c.request.line()
                ));
            }
        }
        for g in gaps {
            let _ = writeln!(
                table,
                "{:<28} {:<11} not expressible: {}",
                g.finding,
                g.surface.name(),
                g.why
            );
        }
        println!("{table}");
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// $batch bodies and role files
// ---------------------------------------------------------------------------------------------

const BOUNDARY: &str = "batch_surfaces";

/// One request of a batch: method, URL, headers, JSON body.
type Part = (
    &'static str,
    String,
    Vec<(&'static str, String)>,
    Option<String>,
);

fn write_part(out: &mut String, (method, url, headers, body): &Part, id: usize) {
    out.push_str("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    let _ = write!(out, "Content-ID: {id}\r\n\r\n{method} {url} HTTP/1.1\r\n");
    for (k, v) in headers {
        let _ = write!(out, "{k}: {v}\r\n");
    }
    if body.is_some() {
        out.push_str("Content-Type: application/json\r\n");
    }
    out.push_str("\r\n");
    if let Some(b) = body {
        let _ = write!(out, "{b}\r\n");
    }
}

/// A batch of single requests (`change_set: false`) or one change set.
fn batch_body(parts: &[Part], change_set: bool) -> String {
    let mut out = String::new();
    if change_set {
        let _ = write!(
            out,
            "--{BOUNDARY}\r\nContent-Type: multipart/mixed;boundary=changeset_s\r\n\r\n"
        );
        for (i, p) in parts.iter().enumerate() {
            out.push_str("--changeset_s\r\n");
            write_part(&mut out, p, i + 1);
        }
        out.push_str("--changeset_s--\r\n");
    } else {
        for (i, p) in parts.iter().enumerate() {
            let _ = write!(out, "--{BOUNDARY}\r\n");
            write_part(&mut out, p, i + 1);
        }
    }
    let _ = write!(out, "--{BOUNDARY}--\r\n");
    out
}

fn batch(key: &str, parts: &[Part], change_set: bool) -> Req {
    post(api("$batch")).key(key).raw(
        &format!("multipart/mixed;boundary={BOUNDARY}"),
        batch_body(parts, change_set),
    )
}

fn part(method: &'static str, url: String, body: Option<Value>) -> Part {
    (method, url, Vec::new(), body.map(|b| b.to_string()))
}

/// A role file naming `privileges` (`prvX`, level) for the role `name`.
fn role_xml(name: &str, privileges: &[(&str, &str)]) -> String {
    let mut out = format!("<Role name=\"{name}\">\n  <RolePrivileges>\n");
    for (p, level) in privileges {
        let _ = writeln!(out, "    <RolePrivilege name=\"{p}\" level=\"{level}\" />");
    }
    out.push_str("  </RolePrivileges>\n</Role>\n");
    out
}

/// HR's grid as a role file, plus `extra`.
fn hr_xml(extra: &[(&str, &str)]) -> String {
    let mut privileges = vec![
        ("prvReadUser", "Global"),
        ("prvWriteUser", "Global"),
        ("prvReadTeam", "Global"),
        ("prvWriteTeam", "Global"),
        ("prvReadRole", "Global"),
        ("prvWriteRole", "Global"),
        ("prvCreateRole", "Global"),
        ("prvReadAccount", "Global"),
    ];
    privileges.extend_from_slice(extra);
    role_xml("HR", &privileges)
}

/// A console upload of `file` (multipart), with `csrf`.
fn upload(s: &Session, csrf: &str, name: &str, file: &[u8]) -> Req {
    let b = "----surfaces-upload";
    let mut body = Vec::new();
    let _ = write!(
        body_text(&mut body),
        "--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/xml\r\n\r\n"
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    post("/console/import/preview")
        .session(s)
        .raw(&format!("multipart/form-data; boundary={b}"), body)
}

/// `write!` into a byte buffer.
fn body_text(buf: &mut Vec<u8>) -> ByteWriter<'_> {
    ByteWriter(buf)
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The findings, surface by surface
// ---------------------------------------------------------------------------------------------

const F1: &str = "1 reading as another user";
const F1R: &str = "1/D9 secured values read";
const F2: &str = "2/9 deep or costly input";
const F3: &str = "3 identity attributes";
const F4: &str = "4 column security on writes";
const F5: &str = "5 escalation through teams";
const F6: &str = "6 self-promotion";
const F10: &str = "10 audit reads";
const F11: &str = "11 tampering";

/// Findings 1, 2 and 9: reading as another user, and deep or costly input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_as_another_user_and_costly_input_are_refused_on_every_surface() {
    let w = World::new().await;
    let (alice, carol) = (w.k.of("alice"), w.k.of("carol"));
    let c001 = w.guid("c001").await;
    let a001 = w.guid("a001").await;
    let admin_guid = w.user("admin").to_owned();
    let as_admin = |r: Req| r.header("MSCRMCallerID", &admin_guid);
    let alice_console = w.sign_in(alice).await;
    let carol_console = w.sign_in(carol).await;
    // An auditor who may ask about others (prvCheckAccessOfOthers, Read on users) but cannot
    // read the secret table: a question about another user on its record is refused as a read.
    let audrey = w.k.of("audrey");
    let audrey_console = w.sign_in(audrey).await;
    let k1 = w.guid("k1").await;
    let target = |id: &str| enc(&format!(r#"{{"@odata.id":"accounts({id})"}}"#));
    let n = Surface::Native;
    let web = Surface::WebApi;
    let con = Surface::Console;
    let imp = Surface::Import;

    let parens = format!("{}name%20eq%201{}", "(".repeat(2_700), ")".repeat(2_700));
    let odata_parens = format!("{}name%20eq%20'x'{}", "(".repeat(2_700), ")".repeat(2_700));
    let many = vec!["name%20eq%201"; 501].join("%20or%20");
    let odata_many = vec!["name%20eq%20'x'"; 501].join("%20or%20");
    let deep_json = format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000));
    let deep_xml = format!(
        "<Role name=\"Deep\">{}{}</Role>",
        "<a>".repeat(5_000),
        "</a>".repeat(5_000)
    );

    let mut cases = vec![
        // 1. Data is read as the caller; questions about others need prvCheckAccessOfOthers.
        case(F1, n, "record ?user=admin", get(native(ORG, "/records/c001?user=admin")).key(alice), Expect::Api(403, "denied")),
        case(F1, n, "list ?user=admin", get(native(ORG, "/tables/account/records?user=admin&count=true")).key(alice), Expect::Api(403, "denied")),
        case(F1, n, "check about admin", post(native(ORG, "/check")).key(alice).json(&json!({"user": "admin", "privilege": "read", "record": "c001"})), Expect::Api(403, "denied")),
        case(F1, n, "privileges of admin", get(native(ORG, "/users/admin/privileges")).key(alice), Expect::Api(403, "denied")),
        case(F1, n, "MSCRMCallerID without the privilege", as_admin(get(native(ORG, "/records/c001"))).key(alice), Expect::Api(403, "denied")),
        case(F1, n, "an operation `as` admin", post(native(ORG, "/operations")).key(alice).json(&json!({"op": "update", "as": "admin", "record": "c001", "fields": {"name": "x"}})), Expect::Api(403, "forbidden")),
        case(F1, n, "AuthZEN subject admin", post("/access/v1/evaluation").key(alice).json(&json!({"subject": {"type": "user", "id": "admin"}, "action": {"name": "read"}, "resource": {"type": "account", "id": "c001"}})), Expect::Api(403, "denied")),
        case(F1, web, "retrieve as admin (MSCRMCallerID)", as_admin(get(api(&format!("accounts({c001})")))).key(alice), Expect::Web(403, DENIED, "denied")),
        case(F1, web, "list as admin (MSCRMCallerID)", as_admin(get(api("accounts?$select=name,creditlimit"))).key(alice), Expect::Web(403, DENIED, "denied")),
        case(F1, web, "as admin by Entra object id", get(api("accounts?$select=name")).key(alice).header("CallerObjectId", "CONTOSO-DATA-admin-oid"), Expect::Web(403, DENIED, "denied")),
        case(F1, web, "create as admin (MSCRMCallerID)", as_admin(post(api("accounts"))).key(alice).json(&json!({"name": "as admin"})), Expect::Web(403, DENIED, "denied")),
        case(F1, web, "RetrievePrincipalAccess about admin", get(api(&format!("systemusers({admin_guid})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)?@p1={}", target(&c001)))).key(alice), Expect::Web(403, DENIED, "denied")),
        case(F1, web, "RetrieveUserPrivileges of admin", get(api(&format!("systemusers({admin_guid})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()"))).key(alice), Expect::Web(403, DENIED, "denied")),
        case(F1, web, "$batch with MSCRMCallerID", as_admin(batch(alice, &[part("GET", api(&format!("accounts({c001})")), None)], false)), Expect::Web(403, DENIED, "denied")),
        case(F1, web, "$batch part with admin's key and MSCRMCallerID (ignored)", batch(alice, &[("GET", api(&format!("accounts({c001})")), vec![("Authorization", format!("Bearer {}", w.k.of("admin"))), ("MSCRMCallerID", admin_guid.clone())], None)], false), Expect::Batch(403, "denied")),
        case(F1, con, "check access of admin", get("/console/access?user=admin&record=c001").session(&alice_console), Expect::Page(403, "denied")),
        absent_of(case(F1, n, "check about admin on a record the asker cannot read", post(native(ORG, "/check")).key(audrey).json(&json!({"user": "admin", "privilege": "read", "record": "k1"})), Expect::Api(403, "denied")), &["owner", "admin"]),
        absent_of(case(F1, n, "explain about admin on a record the asker cannot read", post(native(ORG, "/explain")).key(audrey).json(&json!({"user": "admin", "privilege": "read", "record": "k1"})), Expect::Api(403, "denied")), &["owner", "admin"]),
        case(F1, n, "effective rights of admin on a record the asker cannot read", get(native(ORG, "/records/k1/access?user=admin")).key(audrey), Expect::Api(403, "denied")),
        case(F1, n, "column check about admin on a record the asker cannot read", post(native(ORG, "/columns/check")).key(audrey).json(&json!({"user": "admin", "record": "k1", "column": "name"})), Expect::Api(403, "denied")),
        case(F1, n, "AuthZEN evaluation about admin on a record the asker cannot read", post("/access/v1/evaluation").key(audrey).json(&json!({"subject": {"type": "user", "id": "admin"}, "action": {"name": "read"}, "resource": {"type": "secret", "id": "k1"}})), Expect::Api(403, "denied")),
        case(F1, web, "RetrievePrincipalAccess about admin on a record the asker cannot read", get(api(&format!("systemusers({admin_guid})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)?@p1={}", enc(&format!(r#"{{"@odata.id":"secrets({k1})"}}"#))))).key(audrey), Expect::Web(403, DENIED, "denied")),
        absent_of(case(F1, con, "check access of admin on a record the asker cannot read", get("/console/access?user=admin&record=k1").session(&audrey_console), Expect::Page(403, "denied")), &["owned by"]),
        case(F1, con, "who has access (no prvCheckAccessOfOthers)", get("/console/who?record=a001&privilege=read").session(&alice_console), Expect::Page(403, "denied")),
        case(F1, con, "compare admin with audrey", get("/console/compare?left=admin&right=audrey").session(&alice_console), Expect::Page(403, "denied")),
        case(F1, con, "admin's user page", get("/console/users/admin").session(&alice_console), Expect::Page(403, "denied")),
        case(F1, con, "app access of admin", get(format!("/console/apps?user=admin&app={}", enc("Sales Hub"))).session(&alice_console), Expect::Page(403, "denied")),
        case(F1, imp, "role import as admin (MSCRMCallerID)", as_admin(post(native(ORG, "/roles/import?dry_run=true"))).key(carol).raw("application/xml", hr_xml(&[])), Expect::Api(403, "denied")),
        case(F1, imp, "bulk import (CreateMultiple) as admin", as_admin(post(api("accounts/Microsoft.Dynamics.CRM.CreateMultiple"))).key(alice).json(&json!({"Targets": [{"name": "as admin"}]})), Expect::Web(403, DENIED, "denied")),
        absent_of(case(F1, n, "AuthZEN search about admin in a table the asker cannot read", post("/access/v1/search/resource").key(w.k.of("audrey")).json(&json!({"subject": {"type": "user", "id": "admin"}, "action": {"name": "read"}, "resource": {"type": "secret"}})), Expect::Answered(200)), &["k1"]),
        absent_of(case(F1, n, "AuthZEN search about admin, writable records", post("/access/v1/search/resource").key(w.k.of("audrey")).json(&json!({"subject": {"type": "user", "id": "admin"}, "action": {"name": "write"}, "resource": {"type": "secret"}})), Expect::Answered(200)), &["k1"]),
        // Secured values and unreadable records leave by no read (D9): answered, never shown.
        case(F1R, n, "record read", get(native(ORG, "/records/a001")).key(alice), Expect::Answered(200)),
        case(F1R, n, "list with the secured column", get(native(ORG, "/tables/account/records?select=name,creditlimit&limit=50")).key(alice), Expect::Answered(200)),
        absent_of(case(F1R, n, "filter on a secured value", get(native(ORG, "/tables/account/records?filter=creditlimit%20eq%20987654321001&count=true")).key(alice), Expect::Answered(200)), &["a001", "\"count\":1"]),
        case(F1R, n, "explain", post(native(ORG, "/explain")).key(alice).json(&json!({"privilege": "read", "record": "a002"})), Expect::Answered(200)),
        case(F1R, n, "export with records (not an administrator)", get(native(ORG, "/export?records=true")).key(carol), Expect::Api(403, "denied")),
        case(F1R, n, "access review (not an administrator)", get(native(ORG, "/review?format=csv")).key(alice), Expect::Api(403, "denied")),
        case(F1R, web, "retrieve with the secured column", get(api(&format!("accounts({a001})?$select=name,creditlimit"))).key(alice), Expect::Answered(200)),
        case(F1R, web, "list with the secured column", get(api("accounts?$select=name,creditlimit")).key(alice), Expect::Answered(200)),
        absent_of(case(F1R, web, "$filter on a secured value", get(api("accounts?$select=name&$filter=creditlimit%20eq%20987654321001")).key(alice), Expect::Answered(200)), &["a001"]),
        case(F1R, web, "$batch retrieve with the secured column", batch(alice, &[part("GET", api(&format!("accounts({a001})?$select=creditlimit")), None)], false), Expect::Answered(200)),
        case(F1R, web, "an unreadable record", get(api(&format!("accounts({c001})?$select=name"))).key(alice), Expect::Web(403, DENIED, "denied")),
        case(F1R, web, "who shares an unreadable record", get(api(&format!("RetrieveSharedPrincipalsAndAccess(Target=@p1)?@p1={}", target(&c001)))).key(alice), Expect::Web(403, DENIED, "denied")),
        case(F1R, con, "access review download (not an administrator)", get("/console/review/download?format=csv").session(&alice_console), Expect::Page(403, "denied")),
        // 2 and 9. Every recursive parser has a depth limit; query cost is bounded.
        case(F2, n, "filter of 2,700 parentheses", get(native(ORG, &format!("/tables/account/records?filter={parens}"))).key(alice), Expect::Api(400, "bad_filter")),
        case(F2, n, "filter of 501 comparisons", get(native(ORG, &format!("/tables/account/records?filter={many}"))).key(alice), Expect::Api(400, "bad_filter")),
        case(F2, n, "JSON nested 50,000 deep", post(native(ORG, "/operations")).key(alice).raw("application/json", deep_json.clone()), Expect::Api(400, "invalid_body")),
        case(F2, web, "$filter of 2,700 parentheses", get(api(&format!("accounts?$filter={odata_parens}"))).key(alice), Expect::Web(400, LIMIT, "odata_limit")),
        case(F2, web, "$filter of 501 comparisons", get(api(&format!("accounts?$filter={odata_many}"))).key(alice), Expect::Web(400, LIMIT, "odata_limit")),
        case(F2, web, "JSON body nested 50,000 deep", post(api("accounts")).key(alice).raw("application/json", deep_json.clone()), Expect::Web(400, INVALID, "invalid_body")),
        case(F2, web, "$batch part with a 501-term $filter", batch(alice, &[part("GET", api(&format!("accounts?$filter={odata_many}")), None)], false), Expect::Batch(400, "odata_limit")),
        case(F2, web, "$batch of 1,001 requests", batch(alice, &vec![part("GET", api("WhoAmI()"), None); 1_001], false), Expect::Web(400, LIMIT, "odata_limit")),
        case(F2, web, "$batch: a change set inside a change set", post(api("$batch")).key(alice).raw(&format!("multipart/mixed;boundary={BOUNDARY}"), format!("--{BOUNDARY}\r\nContent-Type: multipart/mixed;boundary=cs1\r\n\r\n--cs1\r\nContent-Type: multipart/mixed;boundary=cs2\r\n\r\n--cs2\r\nContent-Type: application/http\r\n\r\nPOST {} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{{\"name\":\"x\"}}\r\n--cs2--\r\n--cs1--\r\n--{BOUNDARY}--\r\n", api("accounts"))), Expect::Web(400, BAD_QUERY, "odata_syntax")),
        case(F2, web, "$batch of 33 list queries", batch(alice, &vec![part("GET", api("accounts?$select=name"), None); 33], false), Expect::Batch(400, "odata_limit")),
        case(F2, imp, "role XML nested 5,000 deep (API)", post(native(ORG, "/roles/import?dry_run=true")).key(carol).raw("application/xml", deep_xml.clone()), Expect::Api(400, "solution_too_deep")),
        case(F2, imp, "role XML nested 5,000 deep (console)", upload(&carol_console, &carol_console.csrf, "Deep.xml", deep_xml.as_bytes()), Expect::Page(400, "solution_too_deep")),
        case(F2, imp, "CreateMultiple of 1,001 targets", post(api("accounts/Microsoft.Dynamics.CRM.CreateMultiple")).key(alice).json(&json!({"Targets": vec![json!({"name": "x"}); 1_001]})), Expect::Web(400, LIMIT, "odata_limit")),
    ];
    let gaps = [
        gap(
            F1,
            imp,
            "the role import has no user parameter: it acts as the caller (impersonation is refused above)",
        ),
        gap(
            F1R,
            imp,
            "imports read no record; the role export holds no record value",
        ),
        gap(
            F2,
            con,
            "the console takes no filter language; its forms are bounded by the body limit",
        ),
    ];
    hidden_from(&mut cases, &[alice, &alice_console.cookie]);
    w.run("findings 1, 2 and 9", &cases, &gaps).await;

    // The answers the attacks aimed at still work for the caller (the refusals are the rules',
    // not broken requests).
    w.ok(&get(native(ORG, "/records/a001")).key(alice)).await;
    w.ok(&get(api(&format!("accounts({a001})"))).key(alice))
        .await;
    let own = w
        .ok(&get(api(&format!(
            "systemusers({})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()",
            w.user("alice")
        )))
        .key(alice))
        .await;
    assert!(
        own["RolePrivileges"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    // A search about another user still lists what both read: every account.
    let found = w
        .ok(&post("/access/v1/search/resource")
            .key(w.k.of("audrey"))
            .json(&json!({
            "subject": {"type": "user", "id": "admin"}, "action": {"name": "read"},
            "resource": {"type": "account"}})))
        .await;
    assert_eq!(
        found["results"].as_array().map(Vec::len),
        Some(8),
        "{found}"
    );
}

/// Findings 3 to 6: identity attributes, column security on writes, team membership as role
/// assignment (D28), and no self-promotion (D29, D11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_and_secured_columns_are_refused_on_every_surface() {
    let w = World::new().await;
    let (alice, carol) = (w.k.of("alice"), w.k.of("carol"));
    let base = format!("http://{HOST}/api/data/v9.2/");
    let a001 = w.guid("a001").await;
    let (carol_id, admin_id, alice_id) = (
        w.user("carol").to_owned(),
        w.user("admin").to_owned(),
        w.user("alice").to_owned(),
    );
    let admins = w.entity("teams", "teamid", "Admins").await;
    let hr_team = w.entity("teams", "teamid", "HR Team").await;
    let admin_role = w.entity("roles", "roleid", "Admin").await;
    let contoso = w.entity("businessunits", "businessunitid", "Contoso").await;
    let carol_console = w.sign_in(carol).await;
    let user_ref =
        |id: &str| json!({"@odata.type": "Microsoft.Dynamics.CRM.systemuser", "systemuserid": id});
    let odata_id = |rest: String| json!({"@odata.id": format!("{base}{rest}")});
    let op = |key: &str, op: Value| post(native(ORG, "/operations")).key(key).json(&op);
    let patch =
        |key: &str, path: String, body: Value| req("PATCH", api(&path)).key(key).json(&body);
    let change = |user: &str, pairs: &[(&str, &str)]| {
        let mut form = vec![("csrf", carol_console.csrf.as_str())];
        form.extend_from_slice(pairs);
        post(format!("/console/users/{user}/change"))
            .session(&carol_console)
            .form(&form)
    };
    let (n, web, con, imp) = (
        Surface::Native,
        Surface::WebApi,
        Surface::Console,
        Surface::Import,
    );
    let denied = || Expect::Api(403, "denied");
    let web_denied = || Expect::Web(403, DENIED, "denied");
    // The console's role editor: a pending change giving HR (carol's own role) impersonation.
    let edit = post("/console/roles/HR/edit")
        .session(&carol_console)
        .form(&[
            ("csrf", carol_console.csrf.as_str()),
            ("misc", "prvActOnBehalfOfAnotherUser"),
        ]);
    let r = w.send(&edit).await;
    assert_eq!(r.status, 303, "{}", r.brief());

    let mut cases = vec![
        // 3. Identity attributes: System Administrators only.
        case(
            F3,
            n,
            "set admin's Entra object id",
            op(
                carol,
                json!({"op": "set_user_fields", "user": "admin", "fields": {"azureactivedirectoryobjectid": "carol-oid"}}),
            ),
            denied(),
        ),
        case(
            F3,
            n,
            "take admin's object id for herself",
            op(
                carol,
                json!({"op": "set_user_fields", "user": "carol", "fields": {"azureactivedirectoryobjectid": "CONTOSO-DATA-admin-oid"}}),
            ),
            denied(),
        ),
        case(
            F3,
            n,
            "set an application id",
            op(
                carol,
                json!({"op": "set_user_fields", "user": "erin", "fields": {"applicationid": "admin-app"}}),
            ),
            denied(),
        ),
        case(
            F3,
            web,
            "PATCH admin's Entra object id",
            patch(
                carol,
                format!("systemusers({admin_id})"),
                json!({"azureactivedirectoryobjectid": "carol-oid"}),
            ),
            web_denied(),
        ),
        case(
            F3,
            web,
            "PATCH her own Entra object id",
            patch(
                carol,
                format!("systemusers({carol_id})"),
                json!({"azureactivedirectoryobjectid": "CONTOSO-DATA-admin-oid"}),
            ),
            web_denied(),
        ),
        case(
            F3,
            web,
            "$batch change set setting an identity",
            batch(
                carol,
                &[
                    part(
                        "PATCH",
                        api(&format!("systemusers({carol_id})")),
                        Some(json!({"jobtitle": "ok"})),
                    ),
                    part(
                        "PATCH",
                        api(&format!("systemusers({carol_id})")),
                        Some(json!({"windowsliveid": "admin@example.com"})),
                    ),
                ],
                true,
            ),
            Expect::Batch(403, "denied"),
        ),
        // 4. Column security on every write of a column.
        case(
            F4,
            n,
            "update a secured column",
            op(
                alice,
                json!({"op": "update", "record": "a001", "fields": {"creditlimit": 5}}),
            ),
            denied(),
        ),
        case(
            F4,
            n,
            "create with a secured column",
            op(
                alice,
                json!({"op": "create", "table": "account", "id": "n1", "fields": {"name": "n1", "creditlimit": 5}}),
            ),
            denied(),
        ),
        case(
            F4,
            n,
            "raise her own salary",
            op(
                alice,
                json!({"op": "set_user_fields", "user": "alice", "fields": {"annualincome": 1}}),
            ),
            denied(),
        ),
        case(
            F4,
            n,
            "set another user's salary",
            op(
                carol,
                json!({"op": "set_user_fields", "user": "bob", "fields": {"annualincome": 1}}),
            ),
            denied(),
        ),
        case(
            F4,
            web,
            "PATCH a secured column",
            patch(
                alice,
                format!("accounts({a001})"),
                json!({"creditlimit": 5}),
            ),
            web_denied(),
        ),
        case(
            F4,
            web,
            "POST with a secured column",
            post(api("accounts"))
                .key(alice)
                .json(&json!({"name": "n2", "creditlimit": 5})),
            web_denied(),
        ),
        case(
            F4,
            web,
            "PATCH her own salary",
            patch(
                alice,
                format!("systemusers({alice_id})"),
                json!({"annualincome": 1}),
            ),
            web_denied(),
        ),
        case(
            F4,
            web,
            "$batch change set with a secured column",
            batch(
                alice,
                &[
                    part(
                        "PATCH",
                        api(&format!("accounts({a001})")),
                        Some(json!({"name": "changed"})),
                    ),
                    part(
                        "PATCH",
                        api(&format!("accounts({a001})")),
                        Some(json!({"creditlimit": 5})),
                    ),
                ],
                true,
            ),
            Expect::Batch(403, "denied"),
        ),
        case(
            F4,
            imp,
            "CreateMultiple with a secured column",
            post(api("accounts/Microsoft.Dynamics.CRM.CreateMultiple"))
                .key(alice)
                .json(&json!({"Targets": [{"name": "ok"}, {"name": "n3", "creditlimit": 5}]})),
            web_denied(),
        ),
        case(
            F4,
            imp,
            "UpdateMultiple of a secured column",
            post(api("accounts/Microsoft.Dynamics.CRM.UpdateMultiple"))
                .key(alice)
                .json(&json!({"Targets": [{"accountid": a001, "creditlimit": 5}]})),
            web_denied(),
        ),
        case(
            F4,
            imp,
            "UpsertMultiple of a secured column",
            post(api("accounts/Microsoft.Dynamics.CRM.UpsertMultiple"))
                .key(alice)
                .json(&json!({"Targets": [{"accountid": a001, "creditlimit": 5}]})),
            web_denied(),
        ),
        // 5. Team membership is role assignment (D28).
        case(
            F5,
            n,
            "join the Admins team",
            op(
                carol,
                json!({"op": "add_team_member", "team": "Admins", "user": "carol"}),
            ),
            denied(),
        ),
        case(
            F5,
            n,
            "put another user in Admins",
            op(
                carol,
                json!({"op": "add_team_member", "team": "Admins", "user": "alice"}),
            ),
            denied(),
        ),
        case(
            F5,
            n,
            "give her own team System Administrator",
            op(
                carol,
                json!({"op": "assign_role", "principal": "team:HR Team", "role": "Admin"}),
            ),
            denied(),
        ),
        case(
            F5,
            web,
            "AddMembersTeam on Admins",
            post(api(&format!(
                "teams({admins})/Microsoft.Dynamics.CRM.AddMembersTeam"
            )))
            .key(carol)
            .json(&json!({"Members": [user_ref(&carol_id)]})),
            web_denied(),
        ),
        case(
            F5,
            web,
            "teammembership_association $ref",
            post(api(&format!(
                "teams({admins})/teammembership_association/$ref"
            )))
            .key(carol)
            .json(&odata_id(format!("systemusers({carol_id})"))),
            web_denied(),
        ),
        case(
            F5,
            web,
            "teamroles_association $ref (Admin on her team)",
            post(api(&format!("teams({hr_team})/teamroles_association/$ref")))
                .key(carol)
                .json(&odata_id(format!("roles({admin_role})"))),
            web_denied(),
        ),
        case(
            F5,
            web,
            "$batch change set joining Admins",
            batch(
                carol,
                &[part(
                    "POST",
                    api(&format!(
                        "teams({admins})/Microsoft.Dynamics.CRM.AddMembersTeam"
                    )),
                    Some(json!({"Members": [user_ref(&carol_id)]})),
                )],
                true,
            ),
            Expect::Batch(403, "denied"),
        ),
        // 6. No self-promotion; no administration of a user who holds more (D29, D11).
        case(
            F6,
            n,
            "move herself to the root unit",
            op(
                carol,
                json!({"op": "move_user", "user": "carol", "business_unit": "Contoso"}),
            ),
            denied(),
        ),
        case(
            F6,
            n,
            "set her own position to the top",
            op(
                carol,
                json!({"op": "set_position", "user": "carol", "position": "Director"}),
            ),
            denied(),
        ),
        case(
            F6,
            n,
            "make herself admin's manager",
            op(
                carol,
                json!({"op": "set_manager", "user": "admin", "manager": "carol"}),
            ),
            denied(),
        ),
        case(
            F6,
            n,
            "assign herself Admin",
            op(
                carol,
                json!({"op": "assign_role", "principal": "carol", "role": "Admin"}),
            ),
            denied(),
        ),
        case(
            F6,
            n,
            "disable the only administrator",
            op(
                carol,
                json!({"op": "set_user_enabled", "user": "admin", "enabled": false}),
            ),
            denied(),
        ),
        case(
            F6,
            n,
            "give her own role impersonation",
            op(
                carol,
                json!({"op": "set_role_misc_privilege", "role": "HR", "privilege": "prvActOnBehalfOfAnotherUser", "held": true}),
            ),
            denied(),
        ),
        case(
            F6,
            web,
            "PATCH her own unit",
            patch(
                carol,
                format!("systemusers({carol_id})"),
                json!({"businessunitid@odata.bind": format!("/businessunits({contoso})")}),
            ),
            web_denied(),
        ),
        case(
            F6,
            web,
            "PATCH admin's manager to herself",
            patch(
                carol,
                format!("systemusers({admin_id})"),
                json!({"parentsystemuserid@odata.bind": format!("/systemusers({carol_id})")}),
            ),
            web_denied(),
        ),
        case(
            F6,
            web,
            "PATCH admin disabled",
            patch(
                carol,
                format!("systemusers({admin_id})"),
                json!({"isdisabled": true}),
            ),
            web_denied(),
        ),
        case(
            F6,
            web,
            "systemuserroles_association $ref (Admin on herself)",
            post(api(&format!(
                "systemusers({carol_id})/systemuserroles_association/$ref"
            )))
            .key(carol)
            .json(&odata_id(format!("roles({admin_role})"))),
            web_denied(),
        ),
        case(
            F6,
            web,
            "$batch change set moving herself",
            batch(
                carol,
                &[part(
                    "PATCH",
                    api(&format!("systemusers({carol_id})")),
                    Some(
                        json!({"businessunitid@odata.bind": format!("/businessunits({contoso})")}),
                    ),
                )],
                true,
            ),
            Expect::Batch(403, "denied"),
        ),
        case(
            F6,
            con,
            "move herself (user form)",
            change("carol", &[("action", "move"), ("business_unit", "Contoso")]),
            Expect::Flash(&["carol"]),
        ),
        case(
            F6,
            con,
            "assign herself Admin (user form)",
            change("carol", &[("action", "assign_role"), ("role", "Admin")]),
            Expect::Flash(&["Admin"]),
        ),
        case(
            F6,
            con,
            "disable the administrator (user form)",
            change("admin", &[("action", "disable")]),
            Expect::Flash(&["admin"]),
        ),
        case(
            F6,
            con,
            "save impersonation on her own role (role editor)",
            post("/console/roles/HR/save")
                .session(&carol_console)
                .form(&[("csrf", carol_console.csrf.as_str())]),
            Expect::Flash(&["prvActOnBehalfOfAnotherUser"]),
        ),
        case(
            F6,
            imp,
            "import her role with impersonation (API)",
            post(native(ORG, "/roles/import")).key(carol).raw(
                "application/xml",
                hr_xml(&[("prvActOnBehalfOfAnotherUser", "Global")]),
            ),
            denied(),
        ),
        case(
            F6,
            imp,
            "import her role with impersonation (API, dry run)",
            post(native(ORG, "/roles/import?dry_run=true"))
                .key(carol)
                .raw(
                    "application/xml",
                    hr_xml(&[("prvActOnBehalfOfAnotherUser", "Global")]),
                ),
            denied(),
        ),
        case(
            F6,
            imp,
            "import Rep with organisation-wide delete",
            post(native(ORG, "/roles/import")).key(carol).raw(
                "application/xml",
                role_xml(
                    "Rep",
                    &[("prvReadAccount", "Local"), ("prvDeleteAccount", "Global")],
                ),
            ),
            denied(),
        ),
        case(
            F6,
            imp,
            "import her role with impersonation (console)",
            upload(
                &carol_console,
                &carol_console.csrf,
                "HR.xml",
                hr_xml(&[("prvActOnBehalfOfAnotherUser", "Global")]).as_bytes(),
            ),
            Expect::Page(403, "denied"),
        ),
        case(
            F6,
            imp,
            "import over System Administrator (skipped)",
            post(native(ORG, "/roles/import")).key(carol).raw(
                "application/xml",
                role_xml("Admin", &[("prvReadAccount", "Basic")]),
            ),
            Expect::Answered(200),
        ),
    ];
    let gaps = [
        gap(F3, con, "no console form sets a user's columns"),
        gap(F3, imp, "role files carry no user"),
        gap(
            F4,
            con,
            "no console form writes a record's or a user's columns",
        ),
        gap(
            F5,
            con,
            "the console's teams screen adds templates, not members",
        ),
        gap(F5, imp, "role files carry no team membership"),
    ];
    hidden_from(&mut cases, &[alice]);
    w.run("findings 3 to 6", &cases, &gaps).await;

    // What carol and alice may still do: the refusals above are the rules', not broken requests.
    w.ok(&op(
        carol,
        json!({"op": "set_user_fields", "user": "erin", "fields": {"jobtitle": "Clerk"}}),
    ))
    .await;
    let r = w
        .send(&patch(
            alice,
            format!("accounts({a001})"),
            json!({"name": "CONTOSO-DATA renamed"}),
        ))
        .await;
    assert_eq!(r.status, 204, "{}", r.brief());
    let r = w
        .send(&patch(
            alice,
            format!("systemusers({alice_id})"),
            json!({"jobtitle": "Rep"}),
        ))
        .await;
    assert_eq!(r.status, 204, "{}", r.brief());
}

/// Finding 10: the audit as its reader may see it — secured values and records the reader
/// cannot read stay out — on the native API and the console; the Web API answers no audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reads_hold_no_secured_value_and_no_unreadable_record_on_any_surface() {
    let w = World::new().await;
    let (alice, audrey) = (w.k.of("alice"), w.k.of("audrey"));
    // Changes of secured values and of the secret record, by the administrator.
    w.ok(&post(native(ORG, "/operations"))
        .key(w.k.of("admin"))
        .json(&json!([
            {"op": "update", "record": "c001", "fields": {"creditlimit": 987_654_321_999_u64}},
            {"op": "update", "record": "k1", "fields": {"name": "SECRET-LAUNCH new codes"}},
            {"op": "set_user_fields", "user": "admin", "fields": {"annualincome": 4_242_424_240_u64}}
        ])))
    .await;
    let audrey_console = w.sign_in(audrey).await;
    let alice_console = w.sign_in(alice).await;
    let (n, web, con) = (Surface::Native, Surface::WebApi, Surface::Console);
    let mut cases = vec![
        case(
            F10,
            n,
            "the audit without prvReadAuditSummary",
            get(native(ORG, "/audit")).key(alice),
            Expect::Api(403, "denied"),
        ),
        case(
            F10,
            n,
            "an auditor reads the audit",
            get(native(ORG, "/audit?limit=5000")).key(audrey),
            Expect::Answered(200),
        ),
        case(
            F10,
            n,
            "an auditor reads the secret record's audit",
            get(native(ORG, "/audit?record=k1")).key(audrey),
            Expect::Answered(200),
        ),
        case(
            F10,
            n,
            "an auditor reads the secret table's audit",
            get(native(ORG, "/audit?table=secret")).key(audrey),
            Expect::Answered(200),
        ),
        case(
            F10,
            web,
            "audits entity set",
            get(api("audits")).key(audrey),
            Expect::Web(404, NO_RESOURCE, "odata_unknown"),
        ),
        case(
            F10,
            web,
            "the secret table's records",
            get(api("secrets?$select=name")).key(audrey),
            Expect::Web(403, DENIED, "denied"),
        ),
        case(
            F10,
            con,
            "the audit without prvReadAuditSummary",
            get("/console/audit").session(&alice_console),
            Expect::Page(403, "denied"),
        ),
        case(
            F10,
            con,
            "an auditor's audit page",
            get("/console/audit").session(&audrey_console),
            Expect::Answered(200),
        ),
        case(
            F10,
            con,
            "an auditor's audit of the secret record",
            get("/console/audit?record=k1").session(&audrey_console),
            Expect::Answered(200),
        ),
        case(
            F10,
            con,
            "an auditor's audit of admin's user record",
            get("/console/audit?user=admin").session(&audrey_console),
            Expect::Answered(200),
        ),
    ];
    let gaps = [gap(
        F10,
        Surface::Import,
        "imports write; they read no audit",
    )];
    hidden_from(&mut cases, &[alice, &alice_console.cookie]);
    w.run("finding 10", &cases, &gaps).await;

    // The auditor does see the entries she may: the update of c001, its secured value hidden.
    let page = w
        .ok(&get(native(ORG, "/audit?record=c001")).key(audrey))
        .await;
    let update = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "update")
        .unwrap_or_else(|| panic!("no update of c001 for the auditor: {page}"));
    assert_eq!(
        update["detail"]["creditlimit"],
        json!({"old": null, "new": null}),
        "{update}"
    );
    let admin = w
        .ok(&get(native(ORG, "/audit?record=c001")).key(w.k.of("admin")))
        .await;
    assert!(
        admin.to_string().contains("987654321999"),
        "the administrator reads the value: {admin}"
    );
}

/// Flips the last hexadecimal digit of `text`.
fn flip_last_hex(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = chars
        .iter()
        .rposition(char::is_ascii_hexdigit)
        .expect("a hex digit");
    chars[at] = if chars[at] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

/// The value of the hidden input `name` on a console page.
fn hidden(page: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = page
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} on the page: {page}"))
        + needle.len();
    page[at..].split('"').next().unwrap().to_owned()
}

/// Finding 11 and tampering: signed cursors and `$skiptoken`s altered or carried to another
/// reader or organisation, keys altered or of another organisation, console sessions, CSRF
/// tokens and pending imports altered or replayed from another organisation, strict bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_tokens_and_another_organisations_credentials_are_refused() {
    let w = World::new().await;
    let (alice, bob) = (w.k.of("alice"), w.k.of("bob"));
    let (other_admin, other_alice) = (w.o.of("admin"), w.o.of("alice"));
    let a001 = w.guid("a001").await;
    // A record created through the Web API: its GUID is random, its own.
    let created = w
        .send(
            &post(api("accounts"))
                .key(alice)
                .json(&json!({"name": "CONTOSO-DATA web"})),
        )
        .await;
    assert_eq!(created.status, 204, "{}", created.brief());
    let web_record = created
        .header("odata-entityid")
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_owned();
    // Native cursors and Web API next links, as alice gets them.
    let page = w
        .ok(&get(native(ORG, "/tables/account/records?limit=2")).key(alice))
        .await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let list = |c: &str| native(ORG, &format!("/tables/account/records?limit=2&cursor={c}"));
    let other_list = native(
        OTHER,
        &format!("/tables/account/records?limit=2&cursor={cursor}"),
    );
    let first = w
        .ok(&get(api("accounts?$select=name"))
            .key(alice)
            .header("Prefer", "odata.maxpagesize=2"))
        .await;
    let next = first["@odata.nextLink"].as_str().unwrap().to_owned();
    let next = next
        .strip_prefix(&format!("http://{HOST}"))
        .unwrap()
        .to_owned();
    let (token_at, _) = next.split_once("skiptoken=").unwrap();
    let token = &next[token_at.len() + "skiptoken=".len()..];
    let altered_next = format!("{token_at}skiptoken={}", flip_last_hex(token));
    // Console sessions in both organisations, and a pending import of the other's.
    let contoso = w.sign_in(w.k.of("carol")).await;
    let other = w.sign_in(w.o.of("carol")).await;
    let preview = w
        .send(&upload(
            &other,
            &other.csrf,
            "Imported.xml",
            role_xml("Imported", &[("prvReadAccount", "Basic")]).as_bytes(),
        ))
        .await;
    assert_eq!(preview.status, 200, "{}", preview.brief());
    let other_preview = hidden(&preview.text(), "preview");
    let altered_cookie = Session {
        cookie: flip_last_hex(&contoso.cookie),
        csrf: contoso.csrf.clone(),
    };
    let enable_erin = |s: &Session, csrf: &str| {
        post("/console/users/erin/change")
            .session(s)
            .form(&[("csrf", csrf), ("action", "enable")])
    };
    let (n, web, con, imp) = (
        Surface::Native,
        Surface::WebApi,
        Surface::Console,
        Surface::Import,
    );
    let contoso_data = || vec!["CONTOSO-DATA".to_owned()];
    let mut cases = vec![
        case(
            F11,
            n,
            "a cursor with one digit changed",
            get(list(&flip_last_hex(&cursor))).key(alice),
            Expect::Api(400, "bad_cursor"),
        ),
        case(
            F11,
            n,
            "alice's cursor presented by bob",
            get(list(&cursor)).key(bob),
            Expect::Api(400, "bad_cursor"),
        ),
        case(
            F11,
            n,
            "a cursor carried to another organisation",
            get(other_list).key(other_alice),
            Expect::Api(400, "bad_cursor"),
        ),
        case(
            F11,
            n,
            "a key with one character changed",
            get(native(ORG, "/records/a001")).key(&flip_last_hex(alice)),
            Expect::Api(401, "unauthenticated"),
        ),
        case(
            F11,
            n,
            "another organisation's key",
            get(native(ORG, "/records/a001")).key(other_admin),
            Expect::Api(403, "forbidden"),
        ),
        case(
            F11,
            n,
            "another organisation's key writing",
            post(native(ORG, "/operations"))
                .key(other_admin)
                .json(&json!({"op": "delete", "record": "a001"})),
            Expect::Api(403, "forbidden"),
        ),
        case(
            F11,
            n,
            "a disabled user's key",
            get(native(ORG, "/records/a001")).key(w.k.of("erin")),
            Expect::Api(403, "user_disabled"),
        ),
        case(
            F11,
            n,
            "duplicate JSON keys (update, then delete)",
            post(native(ORG, "/operations")).key(alice).raw(
                "application/json",
                r#"{"op":"update","op":"delete","record":"a001","fields":{}}"#,
            ),
            Expect::Api(400, "invalid_body"),
        ),
        case(
            F11,
            n,
            "an update of an undeclared column",
            post(native(ORG, "/operations"))
                .key(alice)
                .json(&json!({"op": "update", "record": "a001", "fields": {"nosuchcolumn": 1}})),
            Expect::Api(400, "unknown_column"),
        ),
        case(
            F11,
            n,
            "a user named like a principal",
            post(native(ORG, "/operations"))
                .key(w.k.of("admin"))
                .json(&json!({"op": "add_user", "name": "team:Admins", "business_unit": "Sales"})),
            Expect::Api(400, "bad_name"),
        ),
        case(
            F11,
            n,
            "the root key acting as a user who does not exist",
            post(native(ORG, "/operations"))
                .key(ROOT)
                .json(&json!({"op": "delete", "as": "ghost", "record": "a001"})),
            Expect::Api(404, "unknown_user"),
        ),
        case(
            F11,
            web,
            "a $skiptoken with one digit changed",
            get(&altered_next)
                .key(alice)
                .header("Prefer", "odata.maxpagesize=2"),
            Expect::Web(400, INVALID, "bad_cursor"),
        ),
        case(
            F11,
            web,
            "alice's next link followed by bob",
            get(&next).key(bob).header("Prefer", "odata.maxpagesize=2"),
            Expect::Web(400, INVALID, "bad_cursor"),
        ),
        case(
            F11,
            web,
            "a next link followed in another organisation",
            get(&next)
                .key(other_alice)
                .header("Prefer", "odata.maxpagesize=2"),
            Expect::Web(400, INVALID, "bad_cursor"),
        ),
        case(
            F11,
            web,
            "a key with one character changed",
            get(api("WhoAmI()")).key(&flip_last_hex(alice)),
            Expect::Web(401, UNAUTHENTICATED, "unauthenticated"),
        ),
        case(
            F11,
            web,
            "another organisation's key on a record of this one",
            get(api(&format!("accounts({web_record})"))).key(other_admin),
            Expect::Web(404, NOT_FOUND, "not_found"),
        ),
        case(
            F11,
            web,
            "duplicate JSON keys",
            req("PATCH", api(&format!("accounts({a001})")))
                .key(alice)
                .raw("application/json", r#"{"name":"x","name":"y"}"#),
            Expect::Web(400, INVALID, "invalid_body"),
        ),
        case(
            F11,
            web,
            "$batch part with duplicate JSON keys",
            batch(
                alice,
                &[(
                    "PATCH",
                    api(&format!("accounts({a001})")),
                    vec![],
                    Some(r#"{"name":"x","name":"y"}"#.to_owned()),
                )],
                true,
            ),
            Expect::Batch(400, "invalid_body"),
        ),
        case(
            F11,
            web,
            "an undeclared property",
            req("PATCH", api(&format!("accounts({a001})")))
                .key(alice)
                .json(&json!({"nosuchcolumn": 1})),
            Expect::Web(400, BAD_QUERY, "unknown_column"),
        ),
        case(
            F11,
            con,
            "a session cookie with one digit changed",
            get("/console/users").session(&altered_cookie),
            Expect::SignIn,
        ),
        case(
            F11,
            con,
            "a change with an altered session cookie",
            enable_erin(&altered_cookie, &contoso.csrf),
            Expect::SignIn,
        ),
        case(
            F11,
            con,
            "a change with a CSRF token with one digit changed",
            enable_erin(&contoso, &flip_last_hex(&contoso.csrf)),
            Expect::Page(403, "forbidden"),
        ),
        case(
            F11,
            con,
            "a change with another organisation's CSRF token",
            enable_erin(&contoso, &other.csrf),
            Expect::Page(403, "forbidden"),
        ),
        case(
            F11,
            con,
            "another organisation's session with this one's CSRF token",
            enable_erin(&other, &contoso.csrf),
            Expect::Page(403, "forbidden"),
        ),
        case(
            F11,
            con,
            "a change posted from another site",
            enable_erin(&contoso, &contoso.csrf).header("Origin", "http://evil.test"),
            Expect::Page(403, "forbidden"),
        ),
        case(
            F11,
            con,
            "another organisation's pending import applied",
            post("/console/import/apply").session(&contoso).form(&[
                ("csrf", contoso.csrf.as_str()),
                ("preview", other_preview.as_str()),
            ]),
            Expect::Page(404, "not_found"),
        ),
        case(
            F11,
            imp,
            "another organisation's key importing",
            post(native(ORG, "/roles/import"))
                .key(other_admin)
                .raw("application/xml", hr_xml(&[])),
            Expect::Api(403, "forbidden"),
        ),
        case(
            F11,
            imp,
            "another organisation's key trying an import",
            post(native(ORG, "/roles/import?dry_run=true"))
                .key(other_admin)
                .raw("application/xml", hr_xml(&[])),
            Expect::Api(403, "forbidden"),
        ),
        case(
            F11,
            imp,
            "an import with an altered key",
            post(native(ORG, "/roles/import"))
                .key(&flip_last_hex(w.k.of("admin")))
                .raw("application/xml", hr_xml(&[])),
            Expect::Api(401, "unauthenticated"),
        ),
        case(
            F11,
            imp,
            "another organisation's key, bulk import",
            post(api("accounts/Microsoft.Dynamics.CRM.UpdateMultiple"))
                .key(other_admin)
                .json(&json!({"Targets": [{"accountid": web_record, "name": "x"}]})),
            Expect::Web(404, NOT_FOUND, "not_found"),
        ),
    ];
    for c in &mut cases {
        if c.request
            .headers
            .iter()
            .any(|(_, v)| v.contains(other_admin) || v.contains(other_alice) || v == &other.cookie)
        {
            c.absent = contoso_data();
        }
    }
    hidden_from(&mut cases, &[alice, bob]);
    w.run("finding 11 and tampering", &cases, &[]).await;

    // Untampered, each still works.
    w.ok(&get(list(&cursor)).key(alice)).await;
    w.ok(&get(&next)
        .key(alice)
        .header("Prefer", "odata.maxpagesize=2"))
        .await;
    let r = w.send(&enable_erin(&contoso, &contoso.csrf)).await;
    assert_eq!(r.status, 303, "{}", r.brief());
}

// ---------------------------------------------------------------------------------------------
// The route matrix of every surface
// ---------------------------------------------------------------------------------------------

/// The console's routes, as (METHOD, path), read from its router in the source.
fn console_routes() -> Vec<(String, String)> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/console/mod.rs"))
        .unwrap();
    let start = src
        .find("pub(crate) fn routes()")
        .expect("console routes()");
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").expect("end of routes()")];
    let mut out = Vec::new();
    for args in common::route_args(body) {
        let path = args.split('"').nth(1).expect("a path literal").to_owned();
        for m in ["get", "post"] {
            let needle = format!("{m}(");
            let found = args.match_indices(&needle).any(|(i, _)| {
                !args[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if found {
                out.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(out.len() >= 30, "too few console routes parsed: {out:?}");
    out
}

/// A route template with its parameters filled with names both organisations hold.
fn fill(template: &str) -> String {
    template
        .replace("{org}", ORG)
        .replace("{user}", "alice")
        .replace("{other}", "bob")
        .replace("{id}", "a001")
        .replace("{table}", "account")
        .replace("{app}", "Sales%20Hub")
        .replace("{role}", "Rep")
        .replace("{privilege}", "read")
        .replace("{column}", "creditlimit")
        .replace("{licence}", "Full")
}

/// The route matrix: every native route (the route table), every Web API entity set (the
/// service document) and the Web API's other routes, and every console route (its router) is
/// refused without credentials, with a key that does not exist, and with another
/// organisation's credentials — or, where the credentials name their own organisation (the Web
/// API, AuthZEN, the console), answered about that organisation only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_every_surface_refuses_no_credentials_and_another_organisation() {
    let w = World::new().await;
    let other_admin = w.o.of("admin");
    let bad_key = "strata_no-such-key-0123456789abcdef";
    let mut cases = Vec::new();
    let (n, web, con) = (Surface::Native, Surface::WebApi, Surface::Console);
    const M: &str = "route matrix";
    let absent = |mut c: Case| {
        c.absent = vec!["CONTOSO-DATA".to_owned()];
        c
    };

    // Native routes.
    let public = ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"];
    let native_routes = strata_server::native_routes();
    for (method, template, reads_body) in &native_routes {
        let method: &'static str = match method.as_str() {
            "get" => "GET",
            "post" => "POST",
            "put" => "PUT",
            "delete" => "DELETE",
            other => panic!("a native route with method {other}"),
        };
        let path = fill(template);
        let subject = json!({"type": "user", "id": "alice"});
        let body = match template.as_str() {
            "/access/v1/evaluation" => json!({"subject": subject, "action": {"name": "read"},
                "resource": {"type": "account", "id": "a001"}}),
            "/access/v1/evaluations" => json!({"subject": subject, "action": {"name": "read"},
                "evaluations": [{"resource": {"type": "account", "id": "a001"}}]}),
            "/access/v1/search/resource" => json!({"subject": subject, "action": {"name": "read"},
                "resource": {"type": "account"}}),
            _ => json!({}),
        };
        let with_body = |r: Req| if *reads_body { r.json(&body) } else { r };
        let what = format!("{method} {template}");
        if public.contains(&template.as_str()) {
            cases.push(case(
                M,
                n,
                &format!("{what}, public"),
                get(&path),
                Expect::Answered(200),
            ));
            continue;
        }
        cases.push(case(
            M,
            n,
            &format!("{what}, no credentials"),
            with_body(req(method, &path)),
            Expect::Api(401, "unauthenticated"),
        ));
        cases.push(case(
            M,
            n,
            &format!("{what}, unknown key"),
            with_body(req(method, &path).key(bad_key)),
            Expect::Api(401, "unauthenticated"),
        ));
        let foreign = with_body(req(method, &path).key(other_admin));
        if template.starts_with("/access/v1/") {
            // AuthZEN names no organisation: the key's own is asked about.
            cases.push(absent(case(
                M,
                n,
                &format!("{what}, another organisation's key"),
                foreign,
                Expect::Answered(200),
            )));
        } else {
            cases.push(absent(case(
                M,
                n,
                &format!("{what}, another organisation's key"),
                foreign,
                Expect::Api(403, "forbidden"),
            )));
        }
    }

    // Web API: every entity set, and the routes that are not sets.
    let document = w.ok(&get(api("")).key(w.k.of("admin"))).await;
    let sets: Vec<String> = document["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap().to_owned())
        .collect();
    for set in [
        "accounts",
        "secrets",
        "systemusers",
        "teams",
        "businessunits",
        "roles",
    ] {
        assert!(sets.iter().any(|s| s == set), "{set} is not in {sets:?}");
    }
    let created = w
        .send(
            &post(api("accounts"))
                .key(w.k.of("alice"))
                .json(&json!({"name": "CONTOSO-DATA web"})),
        )
        .await;
    assert_eq!(created.status, 204, "{}", created.brief());
    let entity = created.header("odata-entityid").to_owned();
    let record = entity
        .strip_prefix(&format!("http://{HOST}/api/data/v9.2/"))
        .unwrap()
        .to_owned();
    let mut web_routes: Vec<(&'static str, String, Option<Value>)> =
        sets.iter().map(|s| ("GET", api(s), None)).collect();
    web_routes.extend([
        ("GET", api(""), None),
        ("GET", api("$metadata"), None),
        ("GET", api("WhoAmI()"), None),
        ("GET", api("EntityDefinitions"), None),
        ("GET", api(&record), None),
        ("PATCH", api(&record), Some(json!({"name": "x"}))),
        ("DELETE", api(&record), None),
        ("POST", api("accounts"), Some(json!({"name": "x"}))),
    ]);
    for (method, path, body) in &web_routes {
        let method: &'static str = method;
        // A PATCH with `If-Match: *` updates only: never an upsert that creates.
        let with_body = |r: Req| {
            let r = if method == "PATCH" {
                r.header("If-Match", "*")
            } else {
                r
            };
            match body {
                Some(b) => r.json(b),
                None => r,
            }
        };
        let what = format!("{method} {}", path.trim_start_matches("/api/data/v9.2/"));
        cases.push(case(
            M,
            web,
            &format!("{what}, no credentials"),
            with_body(req(method, path)),
            Expect::Web(401, UNAUTHENTICATED, "unauthenticated"),
        ));
        cases.push(case(
            M,
            web,
            &format!("{what}, unknown key"),
            with_body(req(method, path).key(bad_key)),
            Expect::Web(401, UNAUTHENTICATED, "unauthenticated"),
        ));
        // Another organisation's key reads its own organisation: contoso's record is not there,
        // and nothing of contoso's is answered.
        if method == "POST" {
            // A create with another organisation's key creates there: not a refusal to check.
            continue;
        }
        let expect = if path.contains(&record) {
            Expect::Web(404, NOT_FOUND, "not_found")
        } else {
            Expect::Answered(200)
        };
        cases.push(absent(case(
            M,
            web,
            &format!("{what}, another organisation's key"),
            with_body(req(method, path).key(other_admin)),
            expect,
        )));
    }
    cases.push(case(
        M,
        web,
        "POST $batch, no credentials",
        post(api("$batch")).raw(
            &format!("multipart/mixed;boundary={BOUNDARY}"),
            batch_body(&[part("GET", api("WhoAmI()"), None)], false),
        ),
        Expect::Web(401, UNAUTHENTICATED, "unauthenticated"),
    ));
    cases.push(absent(case(
        M,
        web,
        "POST $batch, another organisation's key",
        batch(other_admin, &[part("GET", api(&record), None)], false),
        Expect::Batch(404, "not_found"),
    )));

    // Console routes: signed out, with an altered session, and with another organisation's
    // session (its own pages hold nothing of contoso's; a change with contoso's CSRF token is
    // refused).
    let contoso = w.sign_in(w.k.of("carol")).await;
    let other = w.sign_in(w.o.of("carol")).await;
    let public_console = [
        "/console",
        "/console/",
        "/console/sign-in",
        "/console/oidc/start",
        "/console/oidc/callback",
        "/console/assets/{file}",
    ];
    let routes = console_routes();
    for (method, template) in &routes {
        if public_console.contains(&template.as_str()) {
            continue;
        }
        let path = fill(template);
        let what = format!("{method} {template}");
        let altered = Session {
            cookie: flip_last_hex(&contoso.cookie),
            csrf: contoso.csrf.clone(),
        };
        if method == "GET" {
            cases.push(case(
                M,
                con,
                &format!("{what}, signed out"),
                get(&path),
                Expect::SignIn,
            ));
            cases.push(case(
                M,
                con,
                &format!("{what}, altered session"),
                get(&path).session(&altered),
                Expect::SignIn,
            ));
            let page = get(&path).session(&other);
            let status = w.send(&page).await.status;
            // The page of the session's own organisation, a refusal for its user there, or none
            // of that name there: never an error, never contoso's data (the absent texts).
            assert!(
                matches!(status, 200 | 403 | 404),
                "{what} with another organisation's session: {status}"
            );
            cases.push(absent(case(
                M,
                con,
                &format!("{what}, another organisation's session"),
                page,
                Expect::Answered(status),
            )));
        } else {
            let form = [("csrf", contoso.csrf.as_str())];
            cases.push(case(
                M,
                con,
                &format!("{what}, signed out"),
                post(&path).form(&form),
                Expect::SignIn,
            ));
            cases.push(case(
                M,
                con,
                &format!("{what}, altered session"),
                post(&path).session(&altered).form(&form),
                Expect::SignIn,
            ));
            let foreign = if template == "/console/import/preview" {
                upload(&other, &contoso.csrf, "HR.xml", hr_xml(&[]).as_bytes())
            } else {
                post(&path).session(&other).form(&form)
            };
            cases.push(absent(case(
                M,
                con,
                &format!("{what}, another organisation's session"),
                foreign,
                Expect::Page(403, "forbidden"),
            )));
        }
    }
    for template in public_console {
        assert!(
            routes.iter().any(|(_, p)| p == template),
            "{template} is no longer a console route: update the matrix"
        );
    }
    let gaps = [gap(
        M,
        Surface::Import,
        "the import routes are native and console routes, in the matrix above",
    )];
    w.run("route matrix", &cases, &gaps).await;
    println!(
        "route matrix: {} native routes, {} Web API routes ({} entity sets), {} console routes",
        native_routes.len(),
        web_routes.len() + 1,
        sets.len(),
        routes.len()
    );
}
