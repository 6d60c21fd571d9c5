//! The scenario corpus's questions asked through the Dataverse Web API agree with the engine.
//!
//! Every file of `tests/scenarios/` is built twice: in this process ([`EngineTarget`]) and in an
//! organisation of a real server started by the test ([`HttpTarget`], which replays the same
//! operations). Then, for a deterministic sample of the enabled users, the record tables and the
//! live records, each user asks the Web API with the user's own API key:
//!
//! - `GET <set>?$select=<primary id>` with small pages (every `@odata.nextLink` followed) must
//!   list exactly the records of the engine's `list_readable` (a 403 `0x80040220`, no Read
//!   privilege on the table at all, is the empty list);
//! - `systemusers(<self>)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess` must answer the
//!   engine's `access(user, record)` in Dataverse's text form.
//!
//! Files whose steps change the organisation are compared again once those steps ran on both
//! (with the same outcomes). Before comparing, the GUIDs are checked to be the same on both sides
//! (`WhoAmI` for every sampled user, the native record read for a few records), so that the
//! engine's GUIDs can name what the Web API answers.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use strata_engine::{Organization, Privilege, RecordId, TableId, UserId};
use strata_scenario::engine_target::step_operation;
use strata_scenario::http_client::{HttpClient, encode_component as enc};
use strata_scenario::{EngineTarget, HttpTarget, Observed, StepKind, Target};

use common::{ROOT_KEY, Result, Server};

/// The corpus's files (`find tests/scenarios -name '*.yaml' | wc -l`).
const CORPUS_FILES: usize = 133;
/// Most users compared per file (and per state of its organisation).
const MAX_USERS: usize = 12;
/// Most record tables compared per file.
const MAX_TABLES: usize = 8;
/// Most records whose `RetrievePrincipalAccess` each sampled user asks per file.
const MAX_RECORDS: usize = 40;
/// Records whose GUID is checked against the native read per file.
const GUID_CHECKS: usize = 3;
/// `Prefer: odata.maxpagesize`, by turns: the corpus's tables are small, so most pages are
/// tiny and lists take several of them.
const PAGE_SIZES: [usize; 4] = [1, 2, 3, 37];
/// Most pages followed for one list, against a server that never stops.
const MAX_PAGES: usize = 10_000;
/// The Web API's root.
const WEB_API: &str = "/api/data/v9.2/";
/// Mismatches printed in the failure message (all are counted).
const MAX_SHOWN: usize = 40;

#[derive(Debug, Default)]
struct Tally {
    files: usize,
    states: usize,
    users: usize,
    lists: usize,
    pages: usize,
    listed: usize,
    refused: usize,
    counts: usize,
    access: usize,
    guids: usize,
}

impl Tally {
    fn comparisons(&self) -> usize {
        self.lists + self.counts + self.access + self.guids
    }
}

/// An answer: status and JSON body (`Null` when empty).
struct Answer {
    status: u16,
    body: Json,
}

impl Answer {
    fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }
}

/// One scenario's organisation on the server, and its users' API keys.
struct Remote<'a> {
    client: &'a HttpClient,
    base_url: &'a str,
    org: String,
    keys: HashMap<String, String>,
}

impl Remote<'_> {
    fn get(&self, key: &str, path: &str, prefer: Option<&str>) -> Result<Answer> {
        let authorization = format!("Bearer {key}");
        let mut headers = vec![("Authorization", authorization.as_str())];
        if let Some(p) = prefer {
            headers.push(("Prefer", p));
        }
        let response = self.client.request("GET", path, &headers, None)?;
        let body = if response.body.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&response.body).map_err(|e| {
                format!(
                    "GET {path}: HTTP {} with a body that is not JSON ({e})",
                    response.status
                )
            })?
        };
        Ok(Answer {
            status: response.status,
            body,
        })
    }

    /// The user's API key, made with the root key the first time.
    fn key(&mut self, user: &str) -> Result<String> {
        if let Some(k) = self.keys.get(user) {
            return Ok(k.clone());
        }
        let path = format!("/api/v1/orgs/{}/api-keys", enc(&self.org));
        let body = serde_json::to_vec(&json!({ "user": user }))?;
        let authorization = format!("Bearer {ROOT_KEY}");
        let response = self.client.request(
            "POST",
            &path,
            &[
                ("Authorization", &authorization),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
        )?;
        let answer: Json = serde_json::from_slice(&response.body)?;
        let key = answer["key"]
            .as_str()
            .ok_or_else(|| format!("POST {path} for `{user}` answered no key: {answer}"))?
            .to_owned();
        self.keys.insert(user.to_owned(), key.clone());
        Ok(key)
    }

    /// The GUID of a record as the native read names it, read as `reader`.
    fn native_guid(&self, record: &str, reader: &str) -> Result<String> {
        let path = format!(
            "/api/v1/orgs/{}/records/{}?user={}",
            enc(&self.org),
            enc(record),
            enc(reader)
        );
        let answer = self.get(ROOT_KEY, &path, None)?;
        answer.body["guid"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "GET {path}: HTTP {} without a guid: {}",
                    answer.status, answer.body
                )
                .into()
            })
    }

    /// Every record id the user lists in `set` (`None` for a 403 `0x80040220`), following every
    /// next link; the number of pages.
    fn list(
        &self,
        key: &str,
        set: &str,
        id: &str,
        page_size: usize,
    ) -> Result<(Option<Vec<String>>, usize)> {
        let prefer = format!("odata.maxpagesize={page_size}");
        let mut path = format!("{WEB_API}{}?$select={id}", enc(set));
        let mut ids = Vec::new();
        for page in 1..=MAX_PAGES {
            let answer = self.get(key, &path, Some(&prefer))?;
            if page == 1 && answer.status == 403 && answer.error_code() == "0x80040220" {
                return Ok((None, 1));
            }
            if answer.status != 200 {
                return Err(format!("GET {path}: HTTP {}: {}", answer.status, answer.body).into());
            }
            let value = answer.body["value"]
                .as_array()
                .ok_or_else(|| format!("GET {path}: no `value`: {}", answer.body))?;
            if value.len() > page_size {
                return Err(format!(
                    "GET {path}: {} records on a page of at most {page_size}",
                    value.len()
                )
                .into());
            }
            for item in value {
                let guid = item[id]
                    .as_str()
                    .ok_or_else(|| format!("GET {path}: a record without `{id}`: {item}"))?;
                ids.push(guid.to_owned());
            }
            match &answer.body["@odata.nextLink"] {
                Json::Null => return Ok((Some(ids), page)),
                Json::String(next) => {
                    path = next
                        .strip_prefix(self.base_url)
                        .ok_or_else(|| format!("a next link off this server: {next}"))?
                        .to_owned();
                }
                other => return Err(format!("GET {path}: a next link {other}").into()),
            }
        }
        Err(format!("{set}: more than {MAX_PAGES} pages").into())
    }

    /// `GET <set>/$count` as the user (`None` for a 403 `0x80040220`).
    fn count(&self, key: &str, set: &str) -> Result<Option<u64>> {
        let path = format!("{WEB_API}{}/$count", enc(set));
        let answer = self.get(key, &path, None)?;
        if answer.status == 403 && answer.error_code() == "0x80040220" {
            return Ok(None);
        }
        match (answer.status, answer.body.as_u64()) {
            (200, Some(n)) => Ok(Some(n)),
            _ => Err(format!("GET {path}: HTTP {}: {}", answer.status, answer.body).into()),
        }
    }
}

/// At most `cap` of `items`, evenly spread, in order.
fn spread<T: Copy>(items: &[T], cap: usize) -> Vec<T> {
    if items.len() <= cap {
        return items.to_vec();
    }
    (0..cap).map(|i| items[i * items.len() / cap]).collect()
}

/// The tables whose records the Web API lists: every declared table, and `systemuser`.
fn record_tables(o: &Organization) -> Vec<TableId> {
    let tables: Vec<TableId> = o
        .table_ids()
        .filter(|&t| !o.table(t).built_in || o.table(t).name == "systemuser")
        .collect();
    spread(&tables, MAX_TABLES)
}

/// Compares one state of a scenario's organisation; every disagreement goes to `mismatches`.
fn compare(
    o: &Organization,
    remote: &mut Remote<'_>,
    what: &str,
    tally: &mut Tally,
    mismatches: &mut Vec<String>,
) -> Result<()> {
    tally.states += 1;
    let enabled: Vec<UserId> = o.user_ids().filter(|&u| o.user(u).enabled).collect();
    let users = spread(&enabled, MAX_USERS);
    let tables = record_tables(o);
    let live: Vec<RecordId> = tables
        .iter()
        .flat_map(|&t| o.table_records(t).iter().copied())
        .filter(|&r| o.record(r).alive)
        .collect();
    let records = spread(&live, MAX_RECORDS);
    let key_of_guid: BTreeMap<String, &str> = o
        .record_ids()
        .map(|r| (o.record_guid(r).to_string(), &*o.record(r).key))
        .collect();
    let name = |guid: &str| {
        key_of_guid
            .get(guid)
            .map_or_else(|| format!("?{guid}"), |k| (*k).to_owned())
    };

    // The same GUIDs on both sides: users (WhoAmI with their own key) and records.
    for &u in &users {
        let user = &o.user(u).name;
        let key = remote.key(user)?;
        let who = remote.get(&key, &format!("{WEB_API}WhoAmI()"), None)?;
        tally.guids += 1;
        let expected = o.user_guid(u).to_string();
        if who.body["UserId"].as_str() != Some(expected.as_str()) {
            mismatches.push(format!(
                "{what}: user `{user}`: WhoAmI answered HTTP {} {}, the engine's GUID is {expected}",
                who.status, who.body
            ));
        }
    }
    for &r in records.iter().take(GUID_CHECKS) {
        let Some(reader) = enabled.iter().find(|&&u| o.check(u, Privilege::Read, r)) else {
            continue;
        };
        let record = &o.record(r).key;
        let guid = remote.native_guid(record, &o.user(*reader).name)?;
        tally.guids += 1;
        if guid != o.record_guid(r).to_string() {
            mismatches.push(format!(
                "{what}: record `{record}`: the server's GUID is {guid}, the engine's {}",
                o.record_guid(r)
            ));
        }
    }

    for &u in &users {
        tally.users += 1;
        let user = &o.user(u).name;
        let key = remote.key(user)?;
        for &t in &tables {
            let table = o.table(t);
            let set = table.entity_set();
            let page_size = PAGE_SIZES[tally.lists % PAGE_SIZES.len()];
            let id = format!("{}id", table.name);
            let (listed, pages) = remote.list(&key, &set, &id, page_size)?;
            tally.lists += 1;
            tally.pages += pages;
            tally.refused += usize::from(listed.is_none());
            let listed = listed.unwrap_or_default();
            tally.listed += listed.len();
            let web: BTreeSet<String> = listed.iter().map(|g| name(g)).collect();
            let engine: BTreeSet<String> = o
                .list_readable(u, t)
                .into_iter()
                .map(|r| o.record(r).key.to_string())
                .collect();
            if web != engine || web.len() != listed.len() {
                let only_web: Vec<&String> = web.difference(&engine).collect();
                let only_engine: Vec<&String> = engine.difference(&web).collect();
                mismatches.push(format!(
                    "{what}: user `{user}`, table `{}` ({set}): the Web API lists {} records ({} distinct), the engine {}; only the Web API: {only_web:?}; only the engine: {only_engine:?}",
                    table.name,
                    listed.len(),
                    web.len(),
                    engine.len()
                ));
            }
            let counted = remote.count(&key, &set)?.unwrap_or_default();
            tally.counts += 1;
            if usize::try_from(counted).ok() != Some(engine.len()) {
                mismatches.push(format!(
                    "{what}: user `{user}`, table `{}` ({set}): the Web API counts {counted} records, the engine lists {}",
                    table.name,
                    engine.len()
                ));
            }
        }
        let user_guid = o.user_guid(u);
        for &r in &records {
            let set = o.table(o.record(r).table).entity_set();
            let target = format!("{{\"@odata.id\":\"{set}({})\"}}", o.record_guid(r));
            let path = format!(
                "{WEB_API}systemusers({user_guid})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@p1)?@p1={}",
                enc(&target)
            );
            let answer = remote.get(&key, &path, None)?;
            tally.access += 1;
            let expected = o.access(u, r).dataverse_names();
            let got = answer.body["AccessRights"].as_str();
            if answer.status != 200 || got != Some(expected.as_str()) {
                mismatches.push(format!(
                    "{what}: user `{user}`, record `{}` ({set}): RetrievePrincipalAccess answered HTTP {} {}, the engine `{expected}`",
                    o.record(r).key,
                    answer.status,
                    if answer.status == 200 { got.map_or_else(|| answer.body.to_string(), |g| format!("`{g}`")) } else { answer.body.to_string() },
                ));
            }
        }
    }
    Ok(())
}

/// Whether a step changes the organisation.
fn is_action(kind: &StepKind) -> bool {
    matches!(kind, StepKind::Operation { .. }) || step_operation(kind).is_some()
}

/// Builds one file on both targets and compares it, then again after its actions.
fn compare_file(
    path: &Path,
    shown: &str,
    server: &Server,
    client: &HttpClient,
    tally: &mut Tally,
    mismatches: &mut Vec<String>,
) -> Result<()> {
    let text = std::fs::read_to_string(path)?;
    let scenario = strata_scenario::load_str(&text)
        .map_err(|e| format!("{shown}: line {}: {}", e.line, e.message))?;
    let mut engine = EngineTarget::new();
    engine
        .load(&scenario)
        .map_err(|e| format!("{shown}: the engine: line {}: {}", e.line, e.message))?;
    let mut http = HttpTarget::new(&server.url, ROOT_KEY);
    http.load(&scenario)
        .map_err(|e| format!("{shown}: the server: line {}: {}", e.line, e.message))?;
    let org = http
        .organization()
        .ok_or_else(|| format!("{shown}: the server target holds no organisation"))?
        .to_owned();
    let mut remote = Remote {
        client,
        base_url: &server.url,
        org,
        keys: HashMap::new(),
    };
    tally.files += 1;
    compare(
        engine.organization(),
        &mut remote,
        &format!("{shown} (after the setup)"),
        tally,
        mismatches,
    )?;

    let actions: Vec<_> = scenario
        .steps
        .iter()
        .filter(|s| is_action(&s.kind))
        .collect();
    if actions.is_empty() {
        return Ok(());
    }
    for step in actions {
        let outcome = |o: Observed| match o {
            Observed::Outcome { outcome, .. } => Ok(outcome),
            other => Err(format!(
                "{shown}: line {}: the action answered {other:?}",
                step.line
            )),
        };
        let on_engine = outcome(engine.run(step))?;
        let on_server = outcome(http.run(step))?;
        if on_engine != on_server {
            return Err(format!(
                "{shown}: line {}: the engine's outcome is {on_engine:?}, the server's {on_server:?}",
                step.line
            )
            .into());
        }
    }
    compare(
        engine.organization(),
        &mut remote,
        &format!("{shown} (after the steps)"),
        tally,
        mismatches,
    )
}

#[test]
fn the_corpus_through_the_web_api_agrees_with_the_engine() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let files = strata_scenario::collect_files(std::slice::from_ref(&root))?;
    assert!(
        files.len() == CORPUS_FILES,
        "the corpus has {} files, not the {CORPUS_FILES} it holds (update CORPUS_FILES): {}",
        files.len(),
        root.display()
    );
    let server = Server::start()?;
    let client = HttpClient::new(&server.url, Duration::from_secs(30))?;
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut mismatches = Vec::new();
    for path in &files {
        let shown = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        compare_file(path, &shown, &server, &client, &mut tally, &mut mismatches)?;
    }
    let took = started.elapsed();
    eprintln!(
        "the corpus through the Web API: {} files, {} states, {} user samples, {} lists ({} pages, {} records, {} refused for want of a Read privilege), {} $count, {} RetrievePrincipalAccess, {} GUID checks: {} comparisons, {} mismatches in {took:.2?}",
        tally.files,
        tally.states,
        tally.users,
        tally.lists,
        tally.pages,
        tally.listed,
        tally.refused,
        tally.counts,
        tally.access,
        tally.guids,
        tally.comparisons(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches between the Web API and the engine:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(MAX_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(tally.files, CORPUS_FILES);
    assert!(tally.lists > 0 && tally.access > 0 && tally.listed > 0);
    server.stop()
}
