//! `$batch` on the Dataverse Web API against a real server over TCP: the exact body
//! dynamics-web-api sends, `Content-ID` references (`$1` in URLs, in `@odata.bind` and in
//! `@odata.id`), change sets that commit together or not at all (refused while planned or by
//! the engine when written), `Prefer: odata.continue-on-error`, who acts (the outer request's
//! caller and its `MSCRMCallerID`, never an inner header), bad input and the limits, and
//! authentication. Responses are read the way dynamics-web-api reads them: the first line is
//! the delimiter, change sets answer inside `--changesetresponse_…`, each part has an
//! `HTTP/1.1 <code>` line and its JSON runs from the first `{` to the last `}`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, reason = "each test binary uses part of the shared helpers")]
mod common;

use std::collections::BTreeMap;

use common::{Client, Fixture, Response};
use serde_json::{Value, json};

use common::web::{DENIED, DUPLICATE, INVALID, LIMIT, NOT_FOUND, V, api};
const SYNTAX: &str = common::web::BAD_QUERY;

/// The fixture's organisation with a `contact` table (with `firstname`, as dynamics-web-api's
/// example creates) that `account.primarycontactid` looks up and whose `parentcustomerid`
/// looks up an account, Rep's privileges on contacts, `con1` (alice's), and `nobody`, a Sales
/// user without any role.
struct Web {
    f: Fixture,
    nobody: String,
}

impl Web {
    fn new() -> Web {
        let f = Fixture::new();
        let rep = json!({
            "account": {"create": "user", "read": "business_unit", "write": "user", "delete": "user",
                "append": "user", "append_to": "user", "assign": "user", "share": "user"},
            "contact": {"create": "user", "read": "business_unit", "write": "user", "delete": "user",
                "append": "user", "append_to": "user"}
        });
        f.root().write(
            &f.org,
            &json!([
                {"op": "add_table", "name": "contact", "columns": [{"name": "fullname"}, {"name": "firstname"}]},
                {"op": "add_relationship", "name": "account_primary_contact", "parent": "contact",
                 "child": "account", "lookup": "primarycontactid", "behavior": "referential"},
                {"op": "add_relationship", "name": "contact_customer_accounts", "parent": "account",
                 "child": "contact", "lookup": "parentcustomerid", "behavior": "referential"},
                {"op": "set_role_privileges", "role": "Rep", "privileges": rep},
                {"op": "insert_record", "id": "con1", "table": "contact", "owner": "alice",
                 "fields": {"fullname": "Con One"}},
                {"op": "add_user", "name": "nobody", "business_unit": "Sales"}
            ]),
        );
        let nobody = f.as_(&f.keys.admin).key_for(&f.org, "nobody");
        Web { f, nobody }
    }

    fn admin(&self) -> Client {
        self.f.as_(&self.f.keys.admin)
    }

    fn alice(&self) -> Client {
        self.f.as_(&self.f.keys.alice)
    }

    fn carol(&self) -> Client {
        self.f.as_(&self.f.keys.carol)
    }

    fn nobody(&self) -> Client {
        self.f.as_(&self.nobody)
    }

    /// The service root as the server writes it in links: `http://127.0.0.1:port/api/data/v9.2/`.
    fn base(&self) -> String {
        format!("http://{}{V}", self.f.server.addr)
    }

    /// A record's GUID, from the native API.
    fn guid(&self, key: &str) -> String {
        let r = self
            .f
            .root()
            .get(&self.f.url(&format!("/records/{key}?user=admin")))
            .expect(200);
        r["guid"].as_str().unwrap().to_owned()
    }

    /// Every user's GUID by name.
    fn users(&self) -> BTreeMap<String, String> {
        let page = self
            .admin()
            .get(&api("systemusers?$select=domainname"))
            .expect(200);
        page["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u["domainname"].as_str().unwrap().to_owned(),
                    u["systemuserid"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// The organisation's revision, from the native API (root key).
    fn revision(&self) -> u64 {
        self.f.root().revision(&self.f.org)
    }

    /// How many accounts named `name` the administrator reads.
    fn accounts_named(&self, name: &str) -> usize {
        let literal = name.replace('\'', "''");
        let filter = format!("name eq '{literal}'").replace(' ', "%20");
        self.admin()
            .get(&api(&format!("accounts?$select=name&$filter={filter}")))
            .expect(200)["value"]
            .as_array()
            .unwrap()
            .len()
    }
}

// ---------------------------------------------------------------------------------------------
// Writing a batch as dynamics-web-api does
// ---------------------------------------------------------------------------------------------

/// One request of a batch.
#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    url: String,
    content_id: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

fn req(method: &'static str, url: impl Into<String>) -> Req {
    Req {
        method,
        url: url.into(),
        content_id: None,
        headers: Vec::new(),
        body: None,
    }
}

fn get(url: impl Into<String>) -> Req {
    req("GET", url).header("Accept", "application/json")
}

/// A JSON request: `Content-Type: application/json` and the body.
fn send(method: &'static str, url: impl Into<String>, body: &Value) -> Req {
    let mut r = req(method, url).header("Content-Type", "application/json");
    r.body = Some(body.to_string());
    r
}

impl Req {
    fn id(mut self, id: &str) -> Req {
        self.content_id = Some(id.to_owned());
        self
    }

    fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A part of a batch: a request on its own or a change set.
enum Item {
    One(Req),
    Set(Vec<Req>),
}

/// The batch boundary the tests use.
const BOUNDARY: &str = "dwa_batch_5b8d1f0e-0c41-4b7c-9f6e-2d7a41c3e9b0";

fn write_request(out: &mut String, r: &Req) {
    out.push_str("Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
    if let Some(id) = &r.content_id {
        out.push_str(&format!("Content-ID: {id}\r\n"));
    }
    out.push_str(&format!("\r\n{} {} HTTP/1.1\r\n", r.method, r.url));
    for (name, value) in &r.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    if let Some(body) = &r.body {
        out.push_str(body);
        out.push_str("\r\n\r\n");
    }
}

/// A batch body laid out as dynamics-web-api lays it out (CRLF, a leading line break, change
/// sets closed by a line break).
fn batch_body(items: &[Item]) -> String {
    let mut out = String::from("\r\n");
    for (n, item) in items.iter().enumerate() {
        out.push_str(&format!("--{BOUNDARY}\r\n"));
        match item {
            Item::One(r) => write_request(&mut out, r),
            Item::Set(requests) => {
                let set = format!("changeset_4e1c0d7a-{n:04}");
                out.push_str(&format!(
                    "Content-Type: multipart/mixed;boundary={set}\r\n\r\n"
                ));
                for r in requests {
                    out.push_str(&format!("--{set}\r\n"));
                    write_request(&mut out, r);
                }
                out.push_str(&format!("--{set}--\r\n\r\n"));
            }
        }
    }
    out.push_str(&format!("--{BOUNDARY}--\r\n"));
    out
}

/// POSTs a raw batch body with the headers dynamics-web-api sends.
fn post_raw(c: &Client, content_type: &str, body: &str, extra: &[(&str, &str)]) -> Response {
    let mut headers = vec![
        ("Accept", "application/json"),
        ("OData-MaxVersion", "4.0"),
        ("OData-Version", "4.0"),
        ("Content-Type", content_type),
    ];
    headers.extend_from_slice(extra);
    c.raw("POST", &api("$batch"), &headers, body.as_bytes())
}

/// POSTs a batch of `items`.
fn batch(c: &Client, items: &[Item], extra: &[(&str, &str)]) -> Response {
    let content_type = format!("multipart/mixed;boundary={BOUNDARY}");
    post_raw(c, &content_type, &batch_body(items), extra)
}

const CONTINUE: (&str, &str) = ("Prefer", "odata.continue-on-error");

// ---------------------------------------------------------------------------------------------
// Reading a batch response as dynamics-web-api does
// ---------------------------------------------------------------------------------------------

/// One answer of a batch response.
#[derive(Debug)]
struct Part {
    /// Inside a `--changesetresponse_…` part.
    in_change_set: bool,
    content_id: Option<String>,
    status: u16,
    headers: Vec<(String, String)>,
    /// From the first `{` to the last `}` of the part, when there is one.
    json: Option<Value>,
    text: String,
}

impl Part {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The GUID of `OData-EntityId`, checked to be `<base><set>(<guid>)`.
    #[track_caller]
    fn entity(&self, base: &str, set: &str) -> String {
        let id = self
            .header("odata-entityid")
            .unwrap_or_else(|| panic!("no OData-EntityId: {}", self.text));
        let guid = id
            .strip_prefix(&format!("{base}{set}("))
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("OData-EntityId `{id}` is not {base}{set}(<guid>)"));
        assert_eq!(guid.len(), 36, "{guid}");
        guid.to_owned()
    }

    /// A created entity's answer: 204, no body, `OData-EntityId`; returns the GUID.
    #[track_caller]
    fn created(&self, base: &str, set: &str, content_id: &str) -> String {
        assert_eq!(self.status, 204, "{}", self.text);
        assert!(self.in_change_set, "{}", self.text);
        assert_eq!(
            self.content_id.as_deref(),
            Some(content_id),
            "{}",
            self.text
        );
        assert!(self.json.is_none(), "{}", self.text);
        self.entity(base, set)
    }

    /// A Dataverse error: the status, `error.code`, Strata's code, and words of the message.
    /// Returns the message.
    #[track_caller]
    fn error(&self, status: u16, code: &str, strata: &str, words: &[&str]) -> String {
        assert_eq!(self.status, status, "{}", self.text);
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{}",
            self.text
        );
        let body = self
            .json
            .as_ref()
            .unwrap_or_else(|| panic!("an error part without JSON: {}", self.text));
        assert_eq!(body["error"]["code"], json!(code), "{body}");
        assert_eq!(body["error"]["strata_code"], json!(strata), "{body}");
        let message = body["error"]["message"].as_str().unwrap().to_owned();
        for w in words {
            assert!(message.contains(w), "message {message:?} lacks {w:?}");
        }
        message
    }
}

/// The parts of a batch response (`status` is the outer status expected), checked to be shaped
/// as dynamics-web-api expects.
#[track_caller]
fn parts(r: &Response, status: u16) -> Vec<Part> {
    assert_eq!(r.status, status, "{}", r.brief());
    let content_type = r.header("content-type").unwrap();
    let boundary = content_type
        .strip_prefix("multipart/mixed; boundary=")
        .unwrap_or_else(|| panic!("content type `{content_type}`"));
    assert!(boundary.starts_with("batchresponse_"), "{boundary}");
    assert_eq!(r.header("odata-version"), Some("4.0"));
    let text = r.text();
    assert!(text.contains("--batchresponse_"), "{text}");
    let delimiter = &text[..text.find("\r\n").unwrap()];
    assert_eq!(delimiter, format!("--{boundary}"));
    assert!(text.ends_with(&format!("--{boundary}--\r\n")), "{text}");
    split(&text, false)
}

/// Splits on the first line, as dynamics-web-api's `parseBatchResponse` does.
fn split(text: &str, in_change_set: bool) -> Vec<Part> {
    let delimiter = &text[..text.find("\r\n").unwrap()];
    let mut pieces: Vec<&str> = text.split(delimiter).collect();
    assert_eq!(pieces.remove(0), "");
    assert!(pieces.pop().unwrap().starts_with("--"));
    let mut out = Vec::new();
    for piece in pieces {
        if piece.contains("--changesetresponse_") {
            assert!(!in_change_set, "a change set in a change set: {piece}");
            let trimmed = piece.trim();
            assert!(
                trimmed.starts_with("Content-Type: multipart/mixed; boundary=changesetresponse_")
            );
            let inner = trimmed[trimmed.find("\r\n").unwrap() + 1..].trim();
            out.extend(split(inner, true));
            continue;
        }
        let body = piece.strip_prefix("\r\n").unwrap_or(piece);
        let (mime, rest) = body.split_once("\r\n\r\n").unwrap();
        let mime: Vec<(&str, &str)> = mime
            .split("\r\n")
            .map(|l| l.split_once(": ").unwrap())
            .collect();
        assert!(
            mime.contains(&("Content-Type", "application/http")),
            "{piece}"
        );
        assert!(
            mime.contains(&("Content-Transfer-Encoding", "binary")),
            "{piece}"
        );
        let content_id = mime
            .iter()
            .find(|(k, _)| *k == "Content-ID")
            .map(|(_, v)| (*v).to_owned());
        let (head, _) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut words = status_line.splitn(3, ' ');
        assert_eq!(words.next(), Some("HTTP/1.1"), "{piece}");
        let status: u16 = words.next().unwrap().parse().unwrap();
        let reason = words.next().unwrap();
        // dynamics-web-api's status pattern: `HTTP/1.1 <code> <word characters and spaces>`.
        assert!(
            !reason.is_empty()
                && reason
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '_'),
            "{status_line}"
        );
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let json = match (piece.find('{'), piece.rfind('}')) {
            (Some(a), Some(b)) => Some(
                serde_json::from_str(&piece[a..=b])
                    .unwrap_or_else(|e| panic!("a part's JSON ({e}): {piece}")),
            ),
            _ => None,
        };
        out.push(Part {
            in_change_set,
            content_id,
            status,
            headers,
            json,
            text: piece.to_owned(),
        });
    }
    out
}

/// Asserts a Dataverse error as a whole response; returns the message.
#[track_caller]
fn web_error(r: &Response, status: u16, code: &str, strata: &str, words: &[&str]) -> String {
    let e = r.expect_error(status, code);
    assert_eq!(e["strata_code"], json!(strata), "{e}");
    let message = e["message"].as_str().unwrap().to_owned();
    for w in words {
        assert!(message.contains(w), "message {message:?} lacks {w:?}");
    }
    message
}

// ---------------------------------------------------------------------------------------------
// The client's own body
// ---------------------------------------------------------------------------------------------

#[test]
fn the_body_dynamics_web_api_sends_is_answered_as_it_reads_it() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();
    let host = w.f.server.addr;
    // startBatch(); create({collection:"contacts", data:{firstname:"John"}, contentId:"1"});
    // retrieveMultiple({collection:"accounts", select:["name"], top:1}); executeBatch()
    let uuid = "c1bd45c1-dd81-470d-b897-e965846aad2f";
    let set = "9f0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
    let body = format!(
        "\r\n--dwa_batch_{uuid}\r\n\
         Content-Type: multipart/mixed;boundary=changeset_{set}\r\n\r\n\
         --changeset_{set}\r\n\
         Content-Type: application/http\r\n\
         Content-Transfer-Encoding: binary\r\n\
         Content-ID: 1\r\n\r\n\
         POST http://{host}/api/data/v9.2/contacts HTTP/1.1\r\n\
         Content-Type: application/json\r\n\r\n\
         {{\"firstname\":\"John\"}}\r\n\r\n\
         --changeset_{set}--\r\n\r\n\
         --dwa_batch_{uuid}\r\n\
         Content-Type: application/http\r\n\
         Content-Transfer-Encoding: binary\r\n\r\n\
         GET http://{host}/api/data/v9.2/accounts?$select=name&$top=1 HTTP/1.1\r\n\
         Accept: application/json\r\n\r\n\
         --dwa_batch_{uuid}--\r\n"
    );
    let before = w.revision();
    let r = post_raw(
        &alice,
        &format!("multipart/mixed;boundary=dwa_batch_{uuid}"),
        &body,
        &[],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 2, "{}", r.text());
    let id = answers[0].created(&base, "contacts", "1");
    assert_eq!(
        answers[0].header("location"),
        answers[0].header("odata-entityid")
    );
    let list = &answers[1];
    assert!(!list.in_change_set);
    assert_eq!((list.status, list.content_id.as_deref()), (200, None));
    assert!(
        list.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let list = list.json.as_ref().unwrap();
    assert_eq!(
        list["@odata.context"],
        json!(format!("{base}$metadata#accounts(name)"))
    );
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
    assert!(list["value"][0]["name"].is_string(), "{list}");
    // The record exists, alice's, as the native API sees it too.
    assert!(w.revision() > before);
    let contact = alice.get(&api(&format!("contacts({id})"))).expect(200);
    assert_eq!(contact["firstname"], json!("John"));
    let native =
        w.f.root()
            .get(&w.f.url(&format!("/records/{id}?user=alice")))
            .expect(200);
    assert_eq!(native["owner"], json!("alice"));

    // The same batch in LF line endings and with a quoted boundary reads the same.
    let lf = body.replace("\r\n", "\n").replace("John", "Jane");
    let r = post_raw(
        &alice,
        &format!("multipart/mixed; boundary=\"dwa_batch_{uuid}\""),
        &lf,
        &[],
    );
    let answers = parts(&r, 200);
    let id = answers[0].created(&base, "contacts", "1");
    assert_eq!(
        alice.get(&api(&format!("contacts({id})"))).expect(200)["firstname"],
        json!("Jane")
    );
    assert_eq!(answers[1].status, 200);
}

// ---------------------------------------------------------------------------------------------
// Content-ID references
// ---------------------------------------------------------------------------------------------

#[test]
fn content_id_references_in_bind_values_urls_and_refs() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();

    // A contact bound to the account created before it: "parentcustomerid@odata.bind": "$1".
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Ref Parent"})).id("1"),
            send(
                "POST",
                api("contacts"),
                &json!({"fullname": "Ref Child", "parentcustomerid@odata.bind": "$1"}),
            )
            .id("2"),
        ])],
        &[],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 2);
    let account = answers[0].created(&base, "accounts", "1");
    let contact = answers[1].created(&base, "contacts", "2");
    let read = alice.get(&api(&format!("contacts({contact})"))).expect(200);
    assert_eq!(read["_parentcustomerid_value"], json!(account));
    assert_eq!(
        alice.get(&api(&format!("accounts({account})"))).expect(200)["name"],
        json!("Ref Parent")
    );

    // PATCH $1 (Dataverse's "reference URIs in URL and navigation properties"): the account
    // created first is updated and bound to the contact created second, in one change set.
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Patch Me"})).id("1"),
            send("POST", api("contacts"), &json!({"fullname": "Primary"})).id("2"),
            send(
                "PATCH",
                "$1",
                &json!({"name": "Patched", "primarycontactid@odata.bind": "$2"}),
            )
            .header("If-Match", "*")
            .id("3"),
        ])],
        &[],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 3, "{}", r.text());
    let account = answers[0].created(&base, "accounts", "1");
    let contact = answers[1].created(&base, "contacts", "2");
    assert_eq!(answers[2].status, 204, "{}", answers[2].text);
    assert_eq!(answers[2].content_id.as_deref(), Some("3"));
    assert_eq!(answers[2].entity(&base, "accounts"), account);
    let read = alice.get(&api(&format!("accounts({account})"))).expect(200);
    assert_eq!(read["name"], json!("Patched"));
    assert_eq!(read["_primarycontactid_value"], json!(contact));

    // PUT $1/primarycontactid/$ref with {"@odata.id": "$2"} (Dataverse's "reference URIs in
    // URL and request body using @odata.id"); the collection side with `$3` as the URL and an
    // existing contact by its absolute URL; and with `$2` as the URL and `$3` in @odata.id.
    // (account → contact and contact → account lookups both exist: no pair of them may point
    // at each other, which would be a cycle.)
    let con1 = w.guid("con1");
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Ref Account"})).id("1"),
            send("POST", api("contacts"), &json!({"fullname": "Ref Contact"})).id("2"),
            send("POST", api("accounts"), &json!({"name": "Ref Customer"})).id("3"),
            send(
                "PUT",
                "$1/primarycontactid/$ref",
                &json!({"@odata.id": "$2"}),
            )
            .id("4"),
            send(
                "POST",
                "$3/contact_customer_accounts/$ref",
                &json!({"@odata.id": format!("{base}contacts({con1})")}),
            )
            .id("5"),
            send(
                "POST",
                "$2/account_primary_contact/$ref",
                &json!({"@odata.id": "$3"}),
            )
            .id("6"),
        ])],
        &[],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 6, "{}", r.text());
    let account = answers[0].created(&base, "accounts", "1");
    let contact = answers[1].created(&base, "contacts", "2");
    let customer = answers[2].created(&base, "accounts", "3");
    for a in &answers[3..] {
        assert_eq!(a.status, 204, "{}", a.text);
        assert!(a.in_change_set && a.json.is_none(), "{}", a.text);
    }
    let read = alice.get(&api(&format!("accounts({account})"))).expect(200);
    assert_eq!(read["_primarycontactid_value"], json!(contact));
    let read = alice.get(&api(&format!("contacts({con1})"))).expect(200);
    assert_eq!(read["_parentcustomerid_value"], json!(customer));
    let read = alice
        .get(&api(&format!("accounts({customer})")))
        .expect(200);
    assert_eq!(read["_primarycontactid_value"], json!(contact));

    // DELETE $1 after creating it: the set creates and deletes, nothing is left.
    let chosen = "5d0b9f2e-7c1a-4e3b-9a8d-6f5e4d3c2b1a";
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send(
                "POST",
                api("accounts"),
                &json!({"accountid": chosen, "name": "Short Lived"}),
            )
            .id("1"),
            req("DELETE", "$1").id("2"),
        ])],
        &[],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers[1].status, 204, "{}", answers[1].text);
    web_error(
        &alice.get(&api(&format!("accounts({chosen})"))),
        404,
        NOT_FOUND,
        "not_found",
        &[],
    );

    // A reference is the change set's: `$1` outside a change set, or to another change set's
    // Content-ID, names nothing (400, as Dataverse answers a reference not declared before).
    let before = w.revision();
    let r = batch(
        &alice,
        &[
            Item::Set(vec![
                send("POST", api("accounts"), &json!({"name": "Set One"})).id("1"),
            ]),
            Item::Set(vec![
                send("PATCH", "$1", &json!({"name": "Renamed"})).id("2"),
            ]),
            Item::One(send("PATCH", "$1", &json!({"name": "Renamed"}))),
        ],
        &[CONTINUE],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 3, "{}", r.text());
    answers[0].created(&base, "accounts", "1");
    for a in &answers[1..] {
        assert!(!a.in_change_set);
        a.error(400, SYNTAX, "odata_syntax", &["$1", "does not exist"]);
    }
    assert_eq!(w.accounts_named("Set One"), 1);
    assert_eq!(w.accounts_named("Renamed"), 0);
    assert!(w.revision() > before);

    // Return=representation inside a change set: 204 with the id (nothing is written yet).
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Represented"}))
                .header("Prefer", "return=representation")
                .id("1"),
            send("PATCH", "$1", &json!({"name": "Represented 2"}))
                .header("Prefer", "return=representation")
                .id("2"),
        ])],
        &[],
    );
    let answers = parts(&r, 200);
    let account = answers[0].created(&base, "accounts", "1");
    assert_eq!((answers[1].status, answers[1].json.is_none()), (204, true));
    assert_eq!(
        alice.get(&api(&format!("accounts({account})"))).expect(200)["name"],
        json!("Represented 2")
    );
}

// ---------------------------------------------------------------------------------------------
// Atomicity
// ---------------------------------------------------------------------------------------------

#[test]
fn a_change_set_refused_at_a_later_request_writes_nothing() {
    let w = Web::new();
    let alice = w.alice();
    let c001 = w.guid("c001");
    let a001 = w.guid("a001");
    let chosen = "1c9e5a3b-2d4f-4b6a-8e7d-0f1a2b3c4d5e";
    let account = api(&format!("accounts({chosen})"));

    // The 2nd request updates a record alice may not write (Support's): the engine refuses it
    // when the set is written, and the 1st request's record is not created.
    let before = w.revision();
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send(
                "POST",
                api("accounts"),
                &json!({"accountid": chosen, "name": "Atomic"}),
            )
            .id("1"),
            send(
                "PATCH",
                api(&format!("accounts({c001})")),
                &json!({"name": "taken"}),
            )
            .header("If-Match", "*")
            .id("2"),
        ])],
        &[],
    );
    let answers = parts(&r, 403);
    assert_eq!(answers.len(), 1, "{}", r.text());
    assert!(!answers[0].in_change_set);
    answers[0].error(403, DENIED, "denied", &[]);
    assert_eq!(w.revision(), before);
    web_error(&alice.get(&account), 404, NOT_FOUND, "not_found", &[]);
    assert_eq!(
        w.carol()
            .get(&api(&format!("accounts({c001})")))
            .expect(200)["name"],
        json!("Contoso c001")
    );

    // The 2nd request updates a missing record with If-Match: * (404 while planned): the part
    // answers that request's error, with its Content-ID.
    let missing = "7e6d5c4b-3a29-4f18-8e07-d6c5b4a39281";
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send(
                "POST",
                api("accounts"),
                &json!({"accountid": chosen, "name": "Atomic"}),
            )
            .id("1"),
            send(
                "PATCH",
                api(&format!("accounts({missing})")),
                &json!({"name": "nobody's"}),
            )
            .header("If-Match", "*")
            .id("2"),
        ])],
        &[],
    );
    let answers = parts(&r, 404);
    assert_eq!(answers.len(), 1, "{}", r.text());
    assert_eq!(answers[0].content_id.as_deref(), Some("2"));
    answers[0].error(404, NOT_FOUND, "not_found", &[missing]);
    assert_eq!(w.revision(), before);
    web_error(&alice.get(&account), 404, NOT_FOUND, "not_found", &[]);
    web_error(
        &alice.get(&api(&format!("accounts({missing})"))),
        404,
        NOT_FOUND,
        "not_found",
        &[],
    );

    // An update alice may make, then a delete she may not: the update is undone too.
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send(
                "PATCH",
                api(&format!("accounts({a001})")),
                &json!({"name": "changed"}),
            )
            .header("If-Match", "*")
            .id("1"),
            req("DELETE", api(&format!("accounts({c001})"))).id("2"),
        ])],
        &[],
    );
    parts(&r, 403)[0].error(403, DENIED, "denied", &[]);
    assert_eq!(w.revision(), before);
    assert_eq!(
        alice.get(&api(&format!("accounts({a001})"))).expect(200)["name"],
        json!("Contoso a001")
    );
    w.carol()
        .get(&api(&format!("accounts({c001})")))
        .expect(200);

    // A user without any privilege: refused at the first request, nothing written.
    let r = batch(
        &w.nobody(),
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "nobody's"})).id("1"),
        ])],
        &[],
    );
    parts(&r, 403)[0].error(403, DENIED, "denied", &[]);
    assert_eq!(w.revision(), before);
    assert_eq!(w.accounts_named("nobody's"), 0);
}

#[test]
fn a_change_set_the_engine_refuses_when_written_writes_nothing() {
    let w = Web::new();
    let alice = w.alice();
    let before = w.revision();
    let chosen = "2b4d6f80-1a3c-4e5f-9b7d-8c6e4a2f0d1b";

    // The same id twice: each create plans (the id is free before the set), the engine
    // refuses the second when the set is written.
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send(
                "POST",
                api("accounts"),
                &json!({"accountid": chosen, "name": "Twice 1"}),
            )
            .id("1"),
            send(
                "POST",
                api("accounts"),
                &json!({"accountid": chosen, "name": "Twice 2"}),
            )
            .id("2"),
        ])],
        &[],
    );
    let answers = parts(&r, 409);
    assert_eq!(answers.len(), 1, "{}", r.text());
    answers[0].error(409, DUPLICATE, "duplicate", &[]);
    assert_eq!(w.revision(), before);
    web_error(
        &alice.get(&api(&format!("accounts({chosen})"))),
        404,
        NOT_FOUND,
        "not_found",
        &[],
    );
    assert_eq!(w.accounts_named("Twice 1"), 0);

    // A lookup to a record of the wrong table through `$ref`: `$2` is an account, and
    // primarycontactid looks up a contact. The planner does not know the table of what
    // `$2` will be bound to at write time; the engine does.
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Wrong 1"})).id("1"),
            send("POST", api("accounts"), &json!({"name": "Wrong 2"})).id("2"),
            send(
                "PUT",
                "$1/primarycontactid/$ref",
                &json!({"@odata.id": "$2"}),
            )
            .id("3"),
        ])],
        &[],
    );
    let answers = parts(&r, 400);
    assert_eq!(answers.len(), 1, "{}", r.text());
    answers[0].error(
        400,
        INVALID,
        "invalid_record",
        &["primarycontactid", "refers to table `contact`"],
    );
    assert_eq!(w.revision(), before);
    assert_eq!(w.accounts_named("Wrong 1"), 0);
    assert_eq!(w.accounts_named("Wrong 2"), 0);

    // A lookup bound in a create to a record of the wrong table: refused while planned.
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Bound 1"})).id("1"),
            send(
                "POST",
                api("accounts"),
                &json!({"name": "Bound 2", "primarycontactid@odata.bind": "$1"}),
            )
            .id("2"),
        ])],
        &[],
    );
    parts(&r, 400)[0].error(400, INVALID, "bad_reference", &["primarycontactid"]);
    assert_eq!(w.revision(), before);
    assert_eq!(w.accounts_named("Bound 1"), 0);

    // A lookup to a record alice may not append to (Support's account): the engine's
    // authorization refuses it at write time.
    let c001 = w.guid("c001");
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Append 1"})).id("1"),
            send(
                "POST",
                api("contacts"),
                &json!({"fullname": "Append 2", "parentcustomerid@odata.bind": format!("/accounts({c001})")}),
            )
            .id("2"),
        ])],
        &[],
    );
    parts(&r, 403)[0].error(403, DENIED, "denied", &[]);
    assert_eq!(w.revision(), before);
    assert_eq!(w.accounts_named("Append 1"), 0);
}

// ---------------------------------------------------------------------------------------------
// odata.continue-on-error
// ---------------------------------------------------------------------------------------------

#[test]
fn continue_on_error_runs_the_parts_after_a_failure() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();
    let missing = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
    let items = |tag: &str| {
        vec![
            Item::One(send(
                "POST",
                api("accounts"),
                &json!({"name": format!("{tag} one")}),
            )),
            Item::One(
                send(
                    "PATCH",
                    api(&format!("accounts({missing})")),
                    &json!({"name": "x"}),
                )
                .header("If-Match", "*"),
            ),
            Item::One(send(
                "POST",
                api("accounts"),
                &json!({"name": format!("{tag} three")}),
            )),
            Item::Set(vec![
                send(
                    "POST",
                    api("accounts"),
                    &json!({"name": format!("{tag} four")}),
                )
                .id("4"),
            ]),
        ]
    };

    // Without the preference: the batch stops at the failed part, and answers with its status.
    let r = batch(&alice, &items("Stop"), &[]);
    let answers = parts(&r, 404);
    assert_eq!(answers.len(), 2, "{}", r.text());
    assert_eq!(answers[0].status, 204);
    answers[0].entity(&base, "accounts");
    answers[1].error(404, NOT_FOUND, "not_found", &[missing]);
    assert_eq!(w.accounts_named("Stop one"), 1);
    assert_eq!(w.accounts_named("Stop three"), 0);
    assert_eq!(w.accounts_named("Stop four"), 0);

    // With it: every part runs and the batch answers 200.
    let r = batch(&alice, &items("Go"), &[CONTINUE]);
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 4, "{}", r.text());
    assert_eq!(answers[0].status, 204);
    answers[1].error(404, NOT_FOUND, "not_found", &[]);
    assert_eq!(answers[2].status, 204);
    answers[3].created(&base, "accounts", "4");
    for name in ["Go one", "Go three", "Go four"] {
        assert_eq!(w.accounts_named(name), 1, "{name}");
    }

    // A failed change set: without the preference, the part after it is not run; with it, it is.
    for (prefer, after) in [(None, 0), (Some(CONTINUE), 1)] {
        let tag = if prefer.is_some() { "Kept" } else { "Cut" };
        let items = [
            Item::Set(vec![
                send(
                    "POST",
                    api("accounts"),
                    &json!({"name": format!("{tag} in set")}),
                )
                .id("1"),
                send(
                    "PATCH",
                    api(&format!("accounts({missing})")),
                    &json!({"name": "x"}),
                )
                .header("If-Match", "*")
                .id("2"),
            ]),
            Item::One(get(api("WhoAmI()"))),
            Item::One(send(
                "POST",
                api("accounts"),
                &json!({"name": format!("{tag} after")}),
            )),
        ];
        let r = batch(&alice, &items, prefer.as_slice());
        let answers = parts(&r, if prefer.is_some() { 200 } else { 404 });
        assert_eq!(answers.len(), 1 + 2 * after, "{}", r.text());
        answers[0].error(404, NOT_FOUND, "not_found", &[]);
        assert_eq!(w.accounts_named(&format!("{tag} in set")), 0);
        assert_eq!(w.accounts_named(&format!("{tag} after")), after);
    }
}

// ---------------------------------------------------------------------------------------------
// Who acts
// ---------------------------------------------------------------------------------------------

#[test]
fn who_acts_is_the_outer_request_never_an_inner_header() {
    let w = Web::new();
    let users = w.users();
    let admin_auth = format!("Bearer {}", w.f.keys.admin);
    let before = w.revision();

    // nobody's batch with the administrator's Authorization and MSCRMCallerID inside.
    let inner = |r: Req| {
        r.header("Authorization", &admin_auth)
            .header("MSCRMCallerID", &users["admin"])
            .header("X-Strata-On-Behalf-Of", "admin")
    };
    let r = batch(
        &w.nobody(),
        &[
            Item::One(inner(get(api("WhoAmI()")))),
            Item::Set(vec![
                inner(send("POST", api("accounts"), &json!({"name": "smuggled"}))).id("1"),
            ]),
            Item::One(inner(get(api(&format!("accounts({})", w.guid("a001")))))),
        ],
        &[CONTINUE],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 3, "{}", r.text());
    assert_eq!(answers[0].status, 200, "{}", answers[0].text);
    assert_eq!(
        answers[0].json.as_ref().unwrap()["UserId"],
        json!(users["nobody"])
    );
    answers[1].error(403, DENIED, "denied", &[]);
    answers[2].error(403, DENIED, "denied", &[]);
    assert_eq!(w.revision(), before);
    assert_eq!(w.accounts_named("smuggled"), 0);

    // alice naming bob inside: no impersonation (and no refusal for want of
    // prvActOnBehalfOfAnotherUser); the record is hers.
    let r = batch(
        &w.alice(),
        &[
            Item::One(get(api("WhoAmI()")).header("MSCRMCallerID", &users["bob"])),
            Item::Set(vec![
                send("POST", api("accounts"), &json!({"name": "alice's own"}))
                    .header("MSCRMCallerID", &users["bob"])
                    .header("CallerObjectId", "00000000-0000-4000-8000-000000000001")
                    .id("1"),
            ]),
        ],
        &[],
    );
    let answers = parts(&r, 200);
    assert_eq!(
        answers[0].json.as_ref().unwrap()["UserId"],
        json!(users["alice"])
    );
    let id = answers[1].created(&w.base(), "accounts", "1");
    assert_eq!(
        w.alice().get(&api(&format!("accounts({id})"))).expect(200)["_ownerid_value"],
        json!(users["alice"])
    );
}

#[test]
fn the_outer_mscrmcallerid_applies_to_every_part() {
    let w = Web::new();
    let users = w.users();
    let base = w.base();
    let carol = w.carol();
    let as_bob = ("MSCRMCallerID", users["bob"].as_str());
    let a001 = api(&format!("accounts({})", w.guid("a001")));
    let c001 = api(&format!("accounts({})", w.guid("c001")));
    let create = || {
        Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "for bob"})).id("1"),
        ])
    };

    // Without prvActOnBehalfOfAnotherUser the batch is refused as a whole (the request is
    // opened before any part runs), nothing written.
    let before = w.revision();
    let r = batch(&carol, &[create()], &[as_bob]);
    web_error(&r, 403, DENIED, "denied", &["prvActOnBehalfOfAnotherUser"]);
    assert_eq!(w.revision(), before);
    assert_eq!(w.accounts_named("for bob"), 0);

    w.f.root().write(
        &w.f.org,
        &json!([
            {"op": "add_role", "name": "Impersonator", "misc": ["prvActOnBehalfOfAnotherUser"],
             "privileges": {"account": {"read": "organization", "create": "organization"}}},
            {"op": "assign_role", "principal": "carol", "role": "Impersonator"}
        ]),
    );
    let r = batch(
        &carol,
        &[
            Item::One(get(api("WhoAmI()"))),
            create(),
            // Reads are what both read: c001 is carol's but not bob's to read.
            Item::One(get(c001.clone())),
            // a001 both read; creditlimit is bob's to read, not carol's.
            Item::One(get(format!("{a001}?$select=name,creditlimit"))),
        ],
        &[as_bob, CONTINUE],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 4, "{}", r.text());
    assert_eq!(
        answers[0].json.as_ref().unwrap()["UserId"],
        json!(users["bob"])
    );
    let id = answers[1].created(&base, "accounts", "1");
    answers[2].error(403, DENIED, "denied", &[]);
    let read = answers[3].json.as_ref().unwrap();
    assert_eq!(answers[3].status, 200, "{read}");
    assert_eq!(read["name"], json!("Contoso a001"));
    assert_eq!(read["creditlimit"], Value::Null);
    // The created record is bob's, and audited as bob's on behalf of carol.
    let created = w.admin().get(&api(&format!("accounts({id})"))).expect(200);
    assert_eq!(created["_ownerid_value"], json!(users["bob"]));
    let audit = w.admin().get(&w.f.url("/audit?limit=5000")).expect(200);
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "create" && e["record"] == json!(id))
        .unwrap_or_else(|| panic!("no audit entry for {id}"));
    assert_eq!(entry["user"], json!("bob"), "{entry}");
    assert_eq!(entry["impersonator"], json!("carol"), "{entry}");
}

// ---------------------------------------------------------------------------------------------
// Bad input and limits
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_batches_are_refused_whole_with_a_dataverse_error() {
    let w = Web::new();
    let alice = w.alice();
    let before = w.revision();
    let body = batch_body(&[Item::One(send(
        "POST",
        api("accounts"),
        &json!({"name": "Malformed"}),
    ))]);
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "no boundary",
            "multipart/mixed".into(),
            body.clone(),
            "without a `boundary`",
        ),
        (
            "an unterminated quoted boundary",
            "multipart/mixed; boundary=\"dwa_batch".into(),
            body.clone(),
            "unterminated",
        ),
        (
            "a boundary of 71 characters",
            format!("multipart/mixed;boundary={}", "b".repeat(71)),
            body.clone(),
            "not a multipart boundary",
        ),
        (
            "not multipart",
            "application/json".into(),
            body.clone(),
            "expected `multipart/mixed`",
        ),
        (
            "another boundary than the body's",
            "multipart/mixed;boundary=batch_other".into(),
            body.clone(),
            "no `--batch_other` delimiter",
        ),
        (
            "no closing delimiter",
            format!("multipart/mixed;boundary={BOUNDARY}"),
            body.replace(&format!("--{BOUNDARY}--\r\n"), ""),
            "without the closing delimiter",
        ),
        (
            "a part without Content-Type",
            format!("multipart/mixed;boundary={BOUNDARY}"),
            body.replace("Content-Type: application/http\r\n", ""),
            "no Content-Type header",
        ),
        (
            "a malformed request line",
            format!("multipart/mixed;boundary={BOUNDARY}"),
            body.replace(" HTTP/1.1\r\n", "\r\n"),
            "not a request line",
        ),
    ];
    for (what, content_type, body, words) in cases {
        let r = post_raw(&alice, &content_type, &body, &[]);
        assert_eq!(r.status, 400, "{what}: {}", r.brief());
        web_error(&r, 400, SYNTAX, "odata_syntax", &["$batch", words]);
    }
    // A missing Content-Type altogether.
    let r = alice.raw("POST", &api("$batch"), &[], body.as_bytes());
    web_error(&r, 400, SYNTAX, "odata_syntax", &["multipart/mixed"]);
    assert_eq!(w.revision(), before);
    assert_eq!(w.accounts_named("Malformed"), 0);

    // Only POST: 405.
    for method in ["GET", "PATCH", "PUT", "DELETE"] {
        let r = alice.raw(method, &api("$batch"), &[], b"");
        web_error(&r, 405, INVALID, "method_not_allowed", &["POST"]);
    }
}

#[test]
fn change_set_rules_and_limits_refuse_the_batch_before_anything_runs() {
    let w = Web::new();
    let alice = w.alice();
    let before = w.revision();
    let first = |name: &str| {
        let mut out = String::new();
        write_request(
            &mut out,
            &send("POST", api("accounts"), &json!({"name": name})),
        );
        format!("\r\n--{BOUNDARY}\r\n{out}")
    };
    let content_type = format!("multipart/mixed;boundary={BOUNDARY}");

    // A change set inside a change set.
    let mut inner = String::new();
    write_request(
        &mut inner,
        &send("POST", api("accounts"), &json!({"name": "Nested inner"})),
    );
    let nested = format!(
        "{}--{BOUNDARY}\r\nContent-Type: multipart/mixed;boundary=cs_outer\r\n\r\n\
         --cs_outer\r\nContent-Type: multipart/mixed;boundary=cs_inner\r\n\r\n\
         --cs_inner\r\n{inner}--cs_inner--\r\n\r\n--cs_outer--\r\n\r\n--{BOUNDARY}--\r\n",
        first("Nested first")
    );
    let r = post_raw(&alice, &content_type, &nested, &[]);
    web_error(
        &r,
        400,
        SYNTAX,
        "odata_syntax",
        &["part 2", "a change set inside a change set"],
    );

    // A GET inside a change set.
    let mut get_part = String::new();
    write_request(&mut get_part, &get(api("accounts")));
    let get_in_set = format!(
        "{}--{BOUNDARY}\r\nContent-Type: multipart/mixed;boundary=cs\r\n\r\n\
         --cs\r\n{get_part}--cs--\r\n\r\n--{BOUNDARY}--\r\n",
        first("Get first")
    );
    let r = post_raw(&alice, &content_type, &get_in_set, &[]);
    web_error(
        &r,
        400,
        SYNTAX,
        "odata_syntax",
        &["a GET inside a change set"],
    );

    // A Content-ID twice.
    let twice = batch_body(&[Item::Set(vec![
        send("POST", api("accounts"), &json!({"name": "Twice a"})).id("1"),
        send("POST", api("accounts"), &json!({"name": "Twice b"})).id("1"),
    ])]);
    let r = post_raw(&alice, &content_type, &twice, &[]);
    web_error(
        &r,
        400,
        SYNTAX,
        "odata_syntax",
        &["the Content-ID `1` is given twice"],
    );

    // 1,001 requests, in and out of change sets: the limit, and none of them runs.
    let mut items: Vec<Item> = (0..500)
        .map(|i| {
            Item::One(send(
                "POST",
                api("accounts"),
                &json!({"name": format!("Limit {i}")}),
            ))
        })
        .collect();
    items.push(Item::Set(
        (500..1001)
            .map(|i| {
                send(
                    "POST",
                    api("accounts"),
                    &json!({"name": format!("Limit {i}")}),
                )
            })
            .collect(),
    ));
    let r = batch(&alice, &items, &[CONTINUE]);
    web_error(&r, 400, LIMIT, "odata_limit", &["1000 requests"]);
    assert_eq!(w.revision(), before);
    for name in [
        "Nested first",
        "Nested inner",
        "Get first",
        "Twice a",
        "Limit 0",
        "Limit 1000",
    ] {
        assert_eq!(w.accounts_named(name), 0, "{name}");
    }

    // 1,000 requests are answered, each.
    let items: Vec<Item> = (0..1000).map(|_| Item::One(get(api("WhoAmI()")))).collect();
    let r = batch(&alice, &items, &[]);
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 1000);
    assert!(answers.iter().all(|a| a.status == 200));
}

#[test]
fn a_batch_holds_only_so_many_queries_of_entity_sets() {
    let w = Web::new();
    let alice = w.alice();
    // Lists and counts may each spend a list's work budget: past 32 in one batch, each further
    // one is refused on its own (retrieves and functions are not counted).
    let mut items: Vec<Item> = (0..32)
        .map(|i| {
            Item::One(get(api(if i % 2 == 0 {
                "accounts?$select=name&$top=1"
            } else {
                "accounts/$count"
            })))
        })
        .collect();
    items.push(Item::One(get(api("WhoAmI()"))));
    items.push(Item::One(get(api("accounts?$select=name"))));
    items.push(Item::One(get(api("WhoAmI()"))));
    let r = batch(&alice, &items, &[CONTINUE]);
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 35);
    assert!(answers[..33].iter().all(|a| a.status == 200), "{answers:?}");
    assert_eq!(answers[33].status, 400);
    assert!(
        answers[33].text.contains("at most 32 queries"),
        "{}",
        answers[33].text
    );
    assert_eq!(answers[34].status, 200);
}

#[test]
fn a_bad_part_is_refused_on_its_own() {
    let w = Web::new();
    let alice = w.alice();
    let base = w.base();

    // A $batch inside a $batch: that part is refused; the part before it ran, and with
    // continue-on-error the part after it runs.
    let r = batch(
        &alice,
        &[
            Item::One(send(
                "POST",
                api("accounts"),
                &json!({"name": "Before inner"}),
            )),
            Item::One(
                req("POST", api("$batch")).header("Content-Type", "multipart/mixed;boundary=x"),
            ),
            Item::One(send(
                "POST",
                api("accounts"),
                &json!({"name": "After inner"}),
            )),
        ],
        &[CONTINUE],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers.len(), 3, "{}", r.text());
    answers[0].entity(&base, "accounts");
    answers[1].error(400, SYNTAX, "odata_syntax", &["a $batch inside a $batch"]);
    assert_eq!(answers[2].status, 204);
    assert_eq!(w.accounts_named("Before inner"), 1);
    assert_eq!(w.accounts_named("After inner"), 1);
    // A FetchXML query in a part is answered as the same request alone is (D162), and refused
    // where it would be ignored, never answered as if it were absent.
    let fetch = "%3Cfetch%3E%3Centity%20name%3D%22account%22%3E%3Cattribute%20name%3D%22name%22%2F%3E%3Cfilter%3E%3Ccondition%20attribute%3D%22name%22%20operator%3D%22eq%22%20value%3D%22Contoso%20a001%22%2F%3E%3C%2Ffilter%3E%3C%2Fentity%3E%3C%2Ffetch%3E";
    let r = batch(
        &alice,
        &[
            Item::One(get(api(&format!("accounts?fetchXml={fetch}")))),
            Item::One(get(api(&format!(
                "accounts({})?fetchXml={fetch}",
                w.guid("a001")
            )))),
        ],
        &[CONTINUE],
    );
    let answers = parts(&r, 200);
    assert_eq!(answers[0].status, 200, "{}", r.text());
    assert!(answers[0].text.contains("Contoso a001"), "{}", r.text());
    answers[1].error(400, INVALID, "odata_unsupported", &["fetchXml"]);
    // A saved query is refused whole.
    let r = batch(
        &alice,
        &[Item::One(get(api(
            "accounts?savedQuery=00000000-0000-0000-0000-000000000001",
        )))],
        &[],
    );
    parts(&r, 400)[0].error(400, INVALID, "odata_unsupported", &["savedQuery"]);
    // In a change set (absolute URL), the set is refused whole.
    let before = w.revision();
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Set inner"})).id("1"),
            send("POST", format!("{base}$batch"), &json!({})).id("2"),
        ])],
        &[],
    );
    parts(&r, 400)[0].error(400, SYNTAX, "odata_syntax", &["a $batch inside a $batch"]);
    assert_eq!(w.revision(), before);

    // An unknown `$7`, as the URL and as a bind value: that part is refused, nothing of its
    // change set written.
    for second in [
        send("PATCH", "$7", &json!({"name": "x"})).id("2"),
        send(
            "POST",
            "$7/primarycontactid/$ref",
            &json!({"@odata.id": "$1"}),
        )
        .id("2"),
        send(
            "POST",
            api("contacts"),
            &json!({"fullname": "Seven", "parentcustomerid@odata.bind": "$7"}),
        )
        .id("2"),
        send(
            "PUT",
            "$1/primarycontactid/$ref",
            &json!({"@odata.id": "$7"}),
        )
        .id("2"),
    ] {
        let r = batch(
            &alice,
            &[Item::Set(vec![
                send("POST", api("accounts"), &json!({"name": "Seven 1"})).id("1"),
                second.clone(),
            ])],
            &[],
        );
        let answers = parts(&r, 400);
        assert_eq!(answers.len(), 1, "{}", r.text());
        assert_eq!(answers[0].content_id.as_deref(), Some("2"));
        answers[0].error(400, SYNTAX, "odata_syntax", &["`$7` does not exist"]);
        assert_eq!(w.revision(), before, "{second:?}");
    }
    assert_eq!(w.accounts_named("Seven 1"), 0);

    // A body with a key twice is refused as it is outside a batch, also once references
    // are being replaced (the body is read strictly, not re-written).
    let mut twice = req("PATCH", "$1")
        .header("Content-Type", "application/json")
        .id("2");
    twice.body = Some(r#"{"name":"Dup a","name":"Dup b"}"#.to_owned());
    let r = batch(
        &alice,
        &[Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Dup"})).id("1"),
            twice,
        ])],
        &[],
    );
    parts(&r, 400)[0].error(400, INVALID, "invalid_body", &["duplicate"]);
    assert_eq!(w.revision(), before);
    assert_eq!(w.accounts_named("Dup"), 0);

    // A part whose URL is not the Web API's, or whose path names nothing: refused alone.
    let r = batch(
        &alice,
        &[
            Item::One(get(format!(
                "http://{}/api/v1/orgs/contoso/revision",
                w.f.server.addr
            ))),
            Item::One(get(api("nopes"))),
            Item::One(get(api("$metadata"))),
        ],
        &[CONTINUE],
    );
    let answers = parts(&r, 200);
    answers[0].error(400, SYNTAX, "odata_syntax", &["not a Web API URL"]);
    answers[1].error(404, "0x8006088a", "odata_unknown", &["nopes"]);
    assert_eq!(answers[2].status, 200, "{}", answers[2].text);
    assert!(
        answers[2]
            .header("content-type")
            .unwrap()
            .starts_with("application/xml")
    );
    assert_eq!(w.revision(), before);
}

// ---------------------------------------------------------------------------------------------
// Authentication
// ---------------------------------------------------------------------------------------------

#[test]
fn a_batch_without_valid_credentials_is_401_and_runs_nothing() {
    let w = Web::new();
    let before = w.revision();
    let admin_auth = format!("Bearer {}", w.f.keys.admin);
    let items = [
        Item::Set(vec![
            send("POST", api("accounts"), &json!({"name": "Anonymous"}))
                .header("Authorization", &admin_auth)
                .id("1"),
        ]),
        Item::One(get(api("WhoAmI()")).header("Authorization", &admin_auth)),
    ];
    for client in [
        w.f.server.client(None),
        w.f.server.client(Some("no-such-key-0123456789abcdef")),
    ] {
        let r = batch(&client, &items, &[CONTINUE]);
        web_error(&r, 401, "0x80040326", "unauthenticated", &[]);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    // A malformed body without credentials: still 401 (nothing is told before authentication).
    let r = post_raw(&w.f.server.client(None), "multipart/mixed", "junk", &[]);
    web_error(&r, 401, "0x80040326", "unauthenticated", &[]);
    // A disabled user's key.
    let r = batch(&w.f.as_(&w.f.keys.erin), &items, &[]);
    web_error(&r, 403, DENIED, "user_disabled", &["erin"]);
    assert_eq!(w.revision(), before);
    assert_eq!(w.accounts_named("Anonymous"), 0);
}
