//! Runs scenarios against a running Strata server over its native JSON API (`/api/v1`).
//!
//! Each loaded scenario gets a fresh organisation (created and, when the target is dropped or
//! loads the next scenario, deleted with the root key). The setup goes in as one batch of
//! operations; actions are operations with `as`; questions use the question endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value as Json, json};
use strata_engine::{GrantKind, Privilege, Value};
use strata_ops::Operation;

use crate::engine_target::{setup_operations, step_operation};
use crate::http_client::{HttpClient, encode_component as enc};
use crate::spec::{Expect, LoadError, Outcome, Scenario, Step, StepKind};
use crate::{Observed, Target};

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The server's most operations in one write (`strata_server::limits::MAX_BATCH`).
const MAX_BATCH: usize = 10_000;
/// The server's largest page of lists (`strata_server::limits::MAX_PAGE`).
const MAX_PAGE: usize = 5_000;
/// Most pages followed for one list, against a server that never stops.
const MAX_PAGES: usize = 100_000;

/// Error codes that mean the request itself, not the scenario's action, was at fault: never an
/// `invalid` outcome.
const TRANSPORT_CODES: &[&str] = &[
    "unauthenticated",
    "forbidden",
    "user_disabled",
    "unknown_organization",
    "unknown_route",
    "method_not_allowed",
    "payload_too_large",
    "unsupported_media_type",
    "malformed_json",
    "invalid_body",
    "bad_batch",
    "revision_not_reached",
];

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A running Strata server as a scenario target.
pub struct HttpTarget {
    client: Result<HttpClient, String>,
    authorization: String,
    org: Option<String>,
    page_size: usize,
}

impl std::fmt::Debug for HttpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTarget")
            .field("client", &self.client)
            .field("root_key", &"..")
            .field("org", &self.org)
            .field("page_size", &self.page_size)
            .finish()
    }
}

/// A non-2xx answer: status, `error.code`, `error.message`, `error.field`.
#[derive(Debug)]
struct ApiError {
    status: u16,
    code: String,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn is(&self, status: u16, code: &str) -> bool {
        self.status == status && self.code == code
    }

    fn describe(&self) -> String {
        let field = self
            .field
            .as_ref()
            .map(|f| format!(" (field `{f}`)"))
            .unwrap_or_default();
        format!(
            "HTTP {} {}: {}{field}",
            self.status, self.code, self.message
        )
    }
}

/// A failed request: the server could not be reached or answered an error.
#[derive(Debug)]
enum CallError {
    Transport(String),
    Api(ApiError),
}

impl CallError {
    fn describe(&self) -> String {
        match self {
            CallError::Transport(m) => m.clone(),
            CallError::Api(e) => e.describe(),
        }
    }
}

impl From<String> for CallError {
    fn from(m: String) -> Self {
        CallError::Transport(m)
    }
}

impl HttpTarget {
    /// A target for the server at `base_url` (`http://host:port`), administered with its root
    /// key. Nothing is sent until a scenario is loaded.
    #[must_use]
    pub fn new(base_url: &str, root_key: &str) -> Self {
        HttpTarget {
            client: HttpClient::new(base_url, TIMEOUT),
            authorization: format!("Bearer {root_key}"),
            org: None,
            page_size: MAX_PAGE,
        }
    }

    /// Sets the page size of lists (1 to 5000); every page is followed whatever the size.
    #[must_use]
    pub fn with_page_size(mut self, size: usize) -> Self {
        self.page_size = size.clamp(1, MAX_PAGE);
        self
    }

    /// The organisation of the loaded scenario.
    #[must_use]
    pub fn organization(&self) -> Option<&str> {
        self.org.as_deref()
    }

    fn call(&self, method: &str, path: &str, body: Option<&Json>) -> Result<Json, CallError> {
        self.call_as(&self.authorization, method, path, body)
    }

    fn call_as(
        &self,
        authorization: &str,
        method: &str,
        path: &str,
        body: Option<&Json>,
    ) -> Result<Json, CallError> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| format!("cannot encode the request: {e}"))?;
        let mut headers = vec![("Authorization", authorization)];
        if bytes.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let response = client.request(method, path, &headers, bytes.as_deref())?;
        let json: Json = if response.body.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&response.body).map_err(|e| {
                format!(
                    "{method} {path}: HTTP {} with a body that is not JSON ({e}): {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                )
            })?
        };
        if (200..300).contains(&response.status) {
            return Ok(json);
        }
        let error = &json["error"];
        let text = |v: &Json| v.as_str().map(str::to_owned);
        Err(CallError::Api(ApiError {
            status: response.status,
            code: text(&error["code"]).unwrap_or_else(|| "unknown".to_owned()),
            message: text(&error["message"]).unwrap_or_else(|| json.to_string()),
            field: text(&error["field"]),
        }))
    }

    /// `/api/v1/orgs/{org}{rest}`.
    fn path(&self, rest: &str) -> Result<String, String> {
        let org = self
            .org
            .as_deref()
            .ok_or_else(|| "no scenario is loaded".to_owned())?;
        Ok(format!("/api/v1/orgs/{}{rest}", enc(org)))
    }

    fn remove_org(&mut self) -> Result<(), String> {
        let Some(org) = self.org.take() else {
            return Ok(());
        };
        let path = format!("/api/v1/orgs/{}", enc(&org));
        self.call("DELETE", &path, None)
            .map(|_| ())
            .map_err(|e| format!("cannot delete organization `{org}`: {}", e.describe()))
    }

    fn create_org(&mut self) -> Result<(), String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "scenario-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.call("POST", "/api/v1/orgs", Some(&json!({ "name": name })))
            .map_err(|e| format!("cannot create organization `{name}`: {}", e.describe()))?;
        self.org = Some(name);
        Ok(())
    }

    /// The setup's operations; the role rules, last, in requests of their own, so that the
    /// setup's assignments that break them are reported rather than refused (D46), as the
    /// engine target's load does.
    fn setup(&self, ops: &[(usize, Operation)]) -> Result<(), LoadError> {
        let split = ops
            .iter()
            .position(|(_, op)| matches!(op, Operation::AddRoleRule { .. }))
            .unwrap_or(ops.len());
        self.setup_part(&ops[..split])?;
        self.setup_part(&ops[split..])
    }

    fn setup_part(&self, ops: &[(usize, Operation)]) -> Result<(), LoadError> {
        let path = self.path("/operations").map_err(|m| LoadError::new(0, m))?;
        for (chunk_index, chunk) in ops.chunks(MAX_BATCH).enumerate() {
            let offset = chunk_index * MAX_BATCH;
            let list: Vec<&Operation> = chunk.iter().map(|(_, op)| op).collect();
            let body = serde_json::to_value(&list)
                .map_err(|e| LoadError::new(0, format!("cannot encode the setup: {e}")))?;
            match self.call("POST", &path, Some(&body)) {
                Ok(_) => {}
                Err(CallError::Transport(m)) => return Err(LoadError::new(0, m)),
                Err(CallError::Api(e)) if TRANSPORT_CODES.contains(&e.code.as_str()) => {
                    return Err(LoadError::new(0, e.describe()));
                }
                Err(CallError::Api(e)) => {
                    // A batch of one names no index: the failing operation is the only one.
                    let index = match &e.field {
                        Some(f) => batch_index(f),
                        None if chunk.len() == 1 => Some(0),
                        None => None,
                    };
                    let line = index
                        .and_then(|i| chunk.get(i))
                        .map_or(0, |(line, _)| *line);
                    let message = if line == 0 {
                        format!(
                            "the server refused the setup (operations {} to {}): {}",
                            offset,
                            offset + chunk.len() - 1,
                            e.describe()
                        )
                    } else {
                        e.message
                    };
                    return Err(LoadError::new(line, message));
                }
            }
        }
        Ok(())
    }

    /// The authorization of a caller: the root key's (None) or an API key of the user, made with
    /// the root key. An unknown user is an `invalid` outcome (`Err`), as `unknown_user` is.
    fn authorization_of(&self, caller: Option<&str>) -> Result<Result<String, Observed>, String> {
        let Some(user) = caller else {
            return Ok(Ok(self.authorization.clone()));
        };
        match self.call(
            "POST",
            &self.path("/api-keys")?,
            Some(&json!({ "user": user })),
        ) {
            Ok(answer) => Ok(Ok(format!(
                "Bearer {}",
                answer["key"]
                    .as_str()
                    .ok_or_else(|| format!("/api-keys answered no `key`: {answer}"))?
            ))),
            Err(CallError::Api(e)) if e.status == 404 => Ok(Err(Observed::Outcome {
                outcome: Outcome::Invalid,
                message: e.message,
            })),
            Err(e) => Err(e.describe()),
        }
    }

    /// An operation done by a user (`operation` steps), with a key of that user.
    fn operation_as(&self, user: &str, op: &Operation) -> Result<Observed, String> {
        match self.authorization_of(Some(user))? {
            Ok(authorization) => self.action_with(&authorization, op),
            Err(invalid) => Ok(invalid),
        }
    }

    /// A dry run (`?dry_run=true`) as `caller` (a key of that user) or the root key.
    fn dry_run(&self, caller: Option<&str>, ops: &[Operation]) -> Result<Observed, String> {
        let authorization = match self.authorization_of(caller)? {
            Ok(authorization) => authorization,
            Err(invalid) => return Ok(invalid),
        };
        let body = serde_json::to_value(ops).map_err(|e| format!("cannot encode {ops:?}: {e}"))?;
        match self.call_as(
            &authorization,
            "POST",
            &format!("{}?dry_run=true", self.path("/operations")?),
            Some(&body),
        ) {
            Ok(answer) => crate::dry_run::lines_of_answer(&answer).map(Observed::Names),
            Err(e) => refusal(e),
        }
    }

    fn action(&self, op: &Operation) -> Result<Observed, String> {
        self.action_with(&self.authorization, op)
    }

    fn action_with(&self, authorization: &str, op: &Operation) -> Result<Observed, String> {
        let body = serde_json::to_value(op).map_err(|e| format!("cannot encode {op:?}: {e}"))?;
        self.send_with(authorization, &body)
    }

    /// A `batch` step: the operations in one request, by the root key or a key of the user.
    fn batch(&self, caller: Option<&String>, ops: &[Operation]) -> Result<Observed, String> {
        let body = serde_json::to_value(ops).map_err(|e| format!("cannot encode {ops:?}: {e}"))?;
        match self.authorization_of(caller.map(String::as_str))? {
            Ok(authorization) => self.send_with(&authorization, &body),
            Err(invalid) => Ok(invalid),
        }
    }

    fn send_with(&self, authorization: &str, body: &Json) -> Result<Observed, String> {
        let body = body.clone();
        match self.call_as(
            authorization,
            "POST",
            &self.path("/operations")?,
            Some(&body),
        ) {
            Ok(_) => Ok(Observed::Outcome {
                outcome: Outcome::Ok,
                message: String::new(),
            }),
            Err(e) => refusal(e),
        }
    }

    fn explain(&self, body: &Json) -> Result<(bool, Vec<GrantKind>, String), CallError> {
        let answer = self.call("POST", &self.path("/explain")?, Some(body))?;
        let allowed = answer["allowed"]
            .as_bool()
            .ok_or_else(|| format!("/explain answered no `allowed`: {answer}"))?;
        let paths = answer["paths"]
            .as_array()
            .ok_or_else(|| format!("/explain answered no `paths`: {answer}"))?;
        let kinds = paths
            .iter()
            .map(|p| {
                let name = p["kind"].as_str().unwrap_or_default();
                GrantKind::from_name(name)
                    .ok_or_else(|| format!("/explain answered an unknown grant kind `{name}`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let explanation = answer["explanation"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok((allowed, kinds, explanation))
    }

    fn question(&self, step: &Step) -> Result<Observed, CallError> {
        Ok(match &step.kind {
            StepKind::Check {
                user,
                privilege,
                record,
                table,
                owner,
            } => {
                let mut body = json!({ "user": user, "privilege": privilege.name() });
                match (record, table) {
                    (Some(r), _) => body["record"] = json!(r),
                    (None, Some(t)) => {
                        body["table"] = json!(t);
                        if let Some(o) = owner {
                            body["owner"] = json!(o.to_string());
                        }
                    }
                    (None, None) => {
                        return Err("check names neither a record nor a table".to_owned().into());
                    }
                }
                let answer = match self.call("POST", &self.path("/check")?, Some(&body)) {
                    Ok(a) => a,
                    // The record does not exist: nobody has access to it.
                    Err(CallError::Api(e))
                        if e.is(404, "not_found") && e.field.as_deref() == Some("/record") =>
                    {
                        return Ok(Observed::Decision {
                            allowed: false,
                            kinds: Vec::new(),
                            explanation: e.message,
                        });
                    }
                    Err(e) => return Err(e),
                };
                let allowed = answer["allowed"]
                    .as_bool()
                    .ok_or_else(|| format!("/check answered no `allowed`: {answer}"))?;
                // The grant paths and the explanation come from /explain, asked when the step
                // names a reason or (for the failure message) when the answer is not the one
                // expected.
                let expected = matches!(step.expect, Expect::Decision(want) if want == allowed);
                if step.reason.is_some() || !expected {
                    let (explained, kinds, explanation) = self.explain(&body)?;
                    if explained != allowed {
                        return Err(format!(
                            "the server's /check answered allowed={allowed} but /explain allowed={explained} for {body}"
                        )
                        .into());
                    }
                    Observed::Decision {
                        allowed,
                        kinds,
                        explanation,
                    }
                } else {
                    Observed::Decision {
                        allowed,
                        kinds: Vec::new(),
                        explanation: if allowed { "allow" } else { "deny" }.to_owned(),
                    }
                }
            }
            StepKind::Access { user, record } => {
                let path = self.path(&format!(
                    "/records/{}/access?user={}",
                    enc(record),
                    enc(user)
                ))?;
                match self.call("GET", &path, None) {
                    Ok(answer) => Observed::Rights(privileges(&answer["rights"])?),
                    Err(CallError::Api(e)) if is_missing_record(&e) => Observed::Rights(Vec::new()),
                    Err(e) => return Err(e),
                }
            }
            StepKind::List { user, table } => {
                let mut names = Vec::new();
                let mut cursor: Option<String> = None;
                for _ in 0..MAX_PAGES {
                    let mut rest = format!(
                        "/tables/{}/records?user={}&limit={}",
                        enc(table),
                        enc(user),
                        self.page_size
                    );
                    if let Some(c) = &cursor {
                        rest.push_str(&format!("&cursor={}", enc(c)));
                    }
                    let answer = self.call("GET", &self.path(&rest)?, None)?;
                    names.extend(strings(&answer["records"], "records")?);
                    match &answer["next_cursor"] {
                        Json::Null => return Ok(Observed::Names(names)),
                        Json::String(next) if cursor.as_ref() != Some(next) => {
                            cursor = Some(next.clone());
                        }
                        other => {
                            return Err(format!(
                                "listing `{table}`: the server answered the cursor {other} after cursor {cursor:?}"
                            )
                            .into());
                        }
                    }
                }
                return Err(format!("listing `{table}`: more than {MAX_PAGES} pages").into());
            }
            StepKind::Read { user, record } => {
                let path = self.path(&format!("/records/{}?user={}", enc(record), enc(user)))?;
                match self.call("GET", &path, None) {
                    Ok(answer) => {
                        let object = answer["fields"]
                            .as_object()
                            .ok_or_else(|| format!("a read answered no `fields`: {answer}"))?;
                        let fields = object.iter().map(|(k, v)| (k.clone(), value(v))).collect();
                        let body = json!({ "user": user, "privilege": "read", "record": record });
                        let (_, kinds, _) = self.explain(&body)?;
                        Observed::Fields {
                            fields: Some(fields),
                            kinds,
                        }
                    }
                    Err(CallError::Api(e)) if e.is(403, "denied") || is_missing_record(&e) => {
                        Observed::Fields {
                            fields: None,
                            kinds: Vec::new(),
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            StepKind::WhoHasAccess { record, privilege } => {
                let path = self.path(&format!(
                    "/records/{}/who-has-access?privilege={}",
                    enc(record),
                    privilege.name()
                ))?;
                match self.call("GET", &path, None) {
                    Ok(answer) => Observed::Names(strings(&answer["users"], "users")?),
                    Err(CallError::Api(e)) if is_missing_record(&e) => Observed::Names(Vec::new()),
                    Err(e) => return Err(e),
                }
            }
            StepKind::RoleHolders { role } => {
                let path = self.path(&format!("/roles/{}/holders", enc(role)))?;
                let answer = self.call("GET", &path, None)?;
                let mut names = Vec::new();
                for u in answer["users"].as_array().into_iter().flatten() {
                    names.push(u["user"].as_str().unwrap_or_default().to_owned());
                }
                for t in answer["teams"].as_array().into_iter().flatten() {
                    names.push(format!("team:{}", t["team"].as_str().unwrap_or_default()));
                }
                Observed::Names(names)
            }
            StepKind::OpenApp { user, app } => {
                let path = self.path(&format!("/apps/{}/access?user={}", enc(app), enc(user)))?;
                let answer = self.call("GET", &path, None)?;
                let allowed = answer["allowed"]
                    .as_bool()
                    .ok_or_else(|| format!("app access answered no `allowed`: {answer}"))?;
                Observed::Decision {
                    allowed,
                    kinds: Vec::new(),
                    explanation: format!(
                        "{}: {}",
                        if allowed { "allow" } else { "deny" },
                        answer["reason"].as_str().unwrap_or_default()
                    ),
                }
            }
            StepKind::AppReasons { user, app } => {
                let path = self.path(&format!("/apps/{}/access?user={}", enc(app), enc(user)))?;
                let answer = self.call("GET", &path, None)?;
                let reasons = answer["reasons"]
                    .as_array()
                    .ok_or_else(|| format!("app access answered no `reasons`: {answer}"))?;
                Observed::Names(
                    reasons
                        .iter()
                        .map(|r| r["code"].as_str().unwrap_or_default().to_owned())
                        .collect(),
                )
            }
            StepKind::RolesNeeded { user, app } => {
                let path = self.path(&format!(
                    "/apps/{}/roles-needed?user={}",
                    enc(app),
                    enc(user)
                ))?;
                match self.call("GET", &path, None) {
                    Ok(answer) => Observed::Names(strings(&answer["roles"], "roles")?),
                    Err(CallError::Api(e))
                        if e.is(422, "no_role_set") || e.is(400, "assignee_disabled") =>
                    {
                        Observed::Outcome {
                            outcome: Outcome::Invalid,
                            message: e.message,
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            StepKind::WhoCanOpen { app } => {
                let answer = self.call("GET", &self.path(&format!("/apps/{}", enc(app)))?, None)?;
                let users = answer["users"]
                    .as_array()
                    .ok_or_else(|| format!("the app answered no `users`: {answer}"))?;
                Observed::Names(
                    users
                        .iter()
                        .map(|u| u["user"].as_str().unwrap_or_default().to_owned())
                        .collect(),
                )
            }
            StepKind::ColumnCheck {
                user,
                record,
                column,
                update,
            } => {
                let body = json!({ "user": user, "record": record, "column": column,
                    "access": if *update { "update" } else { "read" } });
                let answer = self.call("POST", &self.path("/columns/explain")?, Some(&body))?;
                Observed::Decision {
                    allowed: answer["allowed"].as_bool().ok_or_else(|| {
                        format!("a column explain answered no `allowed`: {answer}")
                    })?,
                    kinds: Vec::new(),
                    explanation: answer["explanation"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                }
            }
            StepKind::ColumnHolders {
                table,
                column,
                update,
            } => {
                let path = self.path(&format!(
                    "/tables/{}/columns/{}/access",
                    enc(table),
                    enc(column)
                ))?;
                let answer = self.call("GET", &path, None)?;
                if answer["secured"] != true {
                    return Err(format!(
                        "column `{table}.{column}` is not secured: record access decides"
                    )
                    .into());
                }
                let users = answer["users"]
                    .as_array()
                    .ok_or_else(|| format!("column access answered no `users`: {answer}"))?;
                let key = if *update { "update" } else { "read" };
                Observed::Names(
                    users
                        .iter()
                        .filter(|u| u[key].as_bool() == Some(true))
                        .map(|u| u["user"].as_str().unwrap_or_default().to_owned())
                        .collect(),
                )
            }
            StepKind::GrantingRoles {
                user,
                privilege,
                record,
            } => {
                let body = json!({ "user": user, "privilege": privilege.name(), "record": record });
                let answer = self.call("POST", &self.path("/explain")?, Some(&body))?;
                match &answer["would_grant"] {
                    Json::Null => Observed::Names(Vec::new()),
                    w => Observed::Names(strings(&w["roles"], "roles")?),
                }
            }
            StepKind::RuleViolations { user } => {
                let query = user
                    .as_ref()
                    .map_or(String::new(), |u| format!("?user={}", enc(u)));
                let answer = self.call(
                    "GET",
                    &self.path(&format!("/rules/violations{query}"))?,
                    None,
                )?;
                let list = answer["violations"].as_array().ok_or_else(|| {
                    format!("/rules/violations answered no `violations`: {answer}")
                })?;
                Observed::Names(
                    list.iter()
                        .map(|v| v["line"].as_str().unwrap_or_default().to_owned())
                        .collect(),
                )
            }
            StepKind::CheapestLicence { user } => {
                let path = self.path(&format!("/licences/users/{}", enc(user)))?;
                crate::licences::cheapest(&self.call("GET", &path, None)?)
            }
            StepKind::LicenceFit { user } => {
                let path = self.path(&format!("/licences/users/{}", enc(user)))?;
                crate::licences::fit(&self.call("GET", &path, None)?)
            }
            StepKind::LicenceExceeds { role, licence } => {
                let path = self.path(&format!(
                    "/licences/{}/exceeds?role={}",
                    enc(licence),
                    enc(role)
                ))?;
                crate::licences::exceeds(&self.call("GET", &path, None)?)
            }
            _ => return Err("not a question".to_owned().into()),
        })
    }
}

/// The index of the failing operation in a batch, from the error's field (`/i` or `/i/...`).
fn batch_index(field: &str) -> Option<usize> {
    let rest = field.strip_prefix('/')?;
    rest.split('/').next()?.parse().ok()
}

/// What a refused operation or batch means to a step: a denial (403 `denied`) or, for another
/// 4xx the server answered itself, an invalid request; anything else is an error.
fn refusal(e: CallError) -> Result<Observed, String> {
    match e {
        CallError::Api(e) if e.is(403, "denied") => Ok(Observed::Outcome {
            outcome: Outcome::Denied,
            message: e.message,
        }),
        CallError::Api(e)
            if (400..500).contains(&e.status)
                && e.status != 403
                && !TRANSPORT_CODES.contains(&e.code.as_str()) =>
        {
            Ok(Observed::Outcome {
                outcome: Outcome::Invalid,
                message: e.message,
            })
        }
        e => Err(e.describe()),
    }
}

/// A 404 about the record of the path (not about the user or anything else).
fn is_missing_record(e: &ApiError) -> bool {
    e.is(404, "not_found") && e.field.is_none()
}

fn strings(list: &Json, what: &str) -> Result<Vec<String>, String> {
    list.as_array()
        .ok_or_else(|| format!("the server answered no `{what}` list"))?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("`{what}` holds {v}, not a name"))
        })
        .collect()
}

fn privileges(list: &Json) -> Result<Vec<Privilege>, String> {
    strings(list, "rights")?
        .iter()
        .map(|name| {
            Privilege::from_name(name)
                .ok_or_else(|| format!("the server answered an unknown right `{name}`"))
        })
        .collect()
}

/// A JSON value as a field value: integers are `Int`, other numbers `Float`.
fn value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

impl Target for HttpTarget {
    fn load(&mut self, scenario: &Scenario) -> Result<(), LoadError> {
        self.remove_org().map_err(|m| LoadError::new(0, m))?;
        self.create_org().map_err(|m| LoadError::new(0, m))?;
        self.setup(&setup_operations(scenario))
    }

    fn run(&mut self, step: &Step) -> Observed {
        let observed = match (&step.kind, step_operation(&step.kind)) {
            (StepKind::DryRun { caller, ops }, _) => self.dry_run(caller.as_deref(), ops),
            (StepKind::Operation { caller: None, op }, _) => self.action(op),
            (StepKind::Batch { caller, ops }, _) => self.batch(caller.as_ref(), ops),
            (
                StepKind::Operation {
                    caller: Some(user),
                    op,
                },
                _,
            ) => self.operation_as(user, op),
            (_, Some(op)) => self.action(&op),
            (_, None) => self.question(step).map_err(|e| e.describe()),
        };
        observed.unwrap_or_else(Observed::Error)
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        let _ = self.remove_org();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_json_values() {
        assert_eq!(value(&json!(3)), Value::Int(3));
        assert_eq!(value(&json!(-3)), Value::Int(-3));
        assert_eq!(value(&json!(2.5)), Value::Float(2.5));
        assert_eq!(value(&json!(3.0)), Value::Float(3.0));
        assert_eq!(value(&json!(u64::MAX)), Value::Float(u64::MAX as f64));
        assert_eq!(value(&json!("x")), Value::Text("x".to_owned()));
        assert_eq!(value(&json!(true)), Value::Bool(true));
        assert_eq!(value(&Json::Null), Value::Null);
    }

    #[test]
    fn reads_batch_indexes() {
        assert_eq!(batch_index("/12"), Some(12));
        assert_eq!(batch_index("/3/as"), Some(3));
        assert_eq!(batch_index("record"), None);
        assert_eq!(batch_index("/x"), None);
    }

    #[test]
    fn an_unreachable_server_is_a_load_error() {
        let mut t = HttpTarget::new("http://127.0.0.1:1", "k");
        assert!(t.load(&Scenario::default()).is_err_and(|e| e.line == 0));
        let mut t = HttpTarget::new("https://example.invalid", "k");
        assert!(
            t.load(&Scenario::default())
                .is_err_and(|e| e.message.contains("http://"))
        );
    }
}
