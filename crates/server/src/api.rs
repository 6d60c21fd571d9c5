//! The native JSON API under `/api/v1` and the OpenID AuthZEN endpoints under `/access/v1`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json_, json};
use strata_engine::{Organization, Owner, Ownership, Privilege, RecordId, UserId};
use strata_ops::{Operation, to_json};
use strata_store::AuditQuery;

use crate::auth::{Caller, authenticate};
use crate::error::ApiError;
use crate::state::{Loaded, OrgHandle, blocking, now_ms};
use crate::{AppState, limits};

type ApiResult = Result<Response, ApiError>;

/// Parses a JSON body, naming the path of the offending field on error.
pub(crate) fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    if let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        if !ct.starts_with("application/json") {
            return Err(ApiError::new(
                "unsupported_media_type",
                format!("send JSON (Content-Type: application/json), not `{ct}`"),
            ));
        }
    }
    if body.len() > limits::MAX_BODY_BYTES {
        return Err(ApiError::new(
            "payload_too_large",
            format!("the body is larger than {} bytes", limits::MAX_BODY_BYTES),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let code = if inner.is_syntax() || inner.is_eof() {
            "malformed_json"
        } else {
            "invalid_body"
        };
        let message = inner.to_string();
        // Internally tagged operations report unknown fields without a path: take the name.
        let unknown = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned());
        let err = ApiError::new(code, message);
        match (path.as_str(), unknown) {
            (".", Some(name)) => err.at(name),
            (".", None) => err,
            (_, _) => err.at(path),
        }
    })
}

fn ok(value: Json_) -> ApiResult {
    Ok((StatusCode::OK, Json(value)).into_response())
}

async fn auth(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let caller = authenticate(
        &state.store,
        &state.keys,
        state.root_key_hash.as_deref(),
        state.oidc.as_ref(),
        headers,
    )
    .await?;
    state.metrics.authenticated();
    Ok(caller)
}

fn require_root(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Root => Ok(()),
        Caller::User { .. } | Caller::Identity(_) => Err(ApiError::forbidden(
            "only the server's root key administers organizations",
        )),
    }
}

/// The organisation a caller may use, checked against the path.
fn org_for(state: &AppState, caller: &Caller, org: &str) -> Result<Arc<OrgHandle>, ApiError> {
    match caller {
        Caller::User { org: own, .. } if own != org => Err(ApiError::forbidden(format!(
            "this API key belongs to organization `{own}`, not `{org}`"
        ))),
        _ => state.registry.get(org),
    }
}

/// The calling user inside the organisation (`None` for the root key), refused when disabled.
fn acting(loaded: &Loaded, caller: &Caller) -> Result<Option<UserId>, ApiError> {
    match caller {
        Caller::Root => Ok(None),
        Caller::Identity(identity) => {
            let org = &loaded.org;
            let by_oid = identity.object_id.as_ref().and_then(|oid| {
                org.user_ids().find(|u| {
                    org.record(org.user(*u).record)
                        .field("azureactivedirectoryobjectid")
                        == &strata_engine::Value::Text(oid.clone())
                })
            });
            let id = by_oid
                .or_else(|| org.user_id(&identity.subject))
                .ok_or_else(|| {
                    ApiError::unauthenticated(format!(
                        "no user of this organization matches the token's subject `{}`",
                        identity.subject
                    ))
                })?;
            if !org.user(id).enabled {
                return Err(ApiError::new(
                    "user_disabled",
                    format!("user `{}` is disabled", org.user(id).name),
                ));
            }
            Ok(Some(id))
        }
        Caller::User { user, .. } => {
            let id = loaded.org.user_id(user).ok_or_else(|| {
                ApiError::unauthenticated(format!("the key's user `{user}` no longer exists"))
            })?;
            if !loaded.org.user(id).enabled {
                return Err(ApiError::new(
                    "user_disabled",
                    format!("user `{user}` is disabled"),
                ));
            }
            Ok(Some(id))
        }
    }
}

/// The user a question is about: the caller by default; another user needs read access to
/// that user's record (the root key may ask about anyone).
fn subject(
    loaded: &Loaded,
    caller: Option<UserId>,
    asked: Option<&str>,
) -> Result<UserId, ApiError> {
    let org = &loaded.org;
    let target = match asked {
        Some(name) => org
            .user_id(name)
            .ok_or_else(|| ApiError::not_found(format!("unknown user `{name}`")).at("user"))?,
        None => caller.ok_or_else(|| {
            ApiError::new("invalid_body", "name the `user` the question is about").at("user")
        })?,
    };
    if let Some(c) = caller
        && c != target
        && !org.check(c, Privilege::Read, org.user(target).record)
    {
        return Err(ApiError::forbidden(format!(
            "user `{}` may not ask about user `{}`: no read access to that user's record",
            org.user(c).name,
            org.user(target).name
        )));
    }
    Ok(target)
}

fn record_id(org: &Organization, key: &str) -> Result<RecordId, ApiError> {
    org.record_id(key)
        .ok_or_else(|| ApiError::not_found(format!("record `{key}` does not exist")))
}

fn privilege(name: &str, field: &str) -> Result<Privilege, ApiError> {
    Privilege::from_name(name).ok_or_else(|| {
        ApiError::new("unknown_privilege", format!("unknown privilege `{name}` (create read write delete append append_to assign share)")).at(field)
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadParams {
    #[serde(default)]
    min_revision: Option<u64>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    privilege: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    orderby: Option<String>,
    #[serde(default)]
    count: Option<bool>,
}

/// Authenticates, finds the organisation the caller may use, and waits for `min_revision`.
async fn open(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    org: &str,
    min_revision: Option<u64>,
) -> Result<(Caller, Arc<OrgHandle>), ApiError> {
    let caller = auth(state, headers).await?;
    let handle = org_at(state, &caller, org, min_revision).await?;
    note_access(state, &handle, &caller);
    Ok((caller, handle))
}

/// The organisation a caller may use, once this node has applied `min_revision` of it. An
/// organisation this node does not know yet is looked for in the store when the request
/// carries a revision (it may have been created on another node a moment ago).
async fn org_at(
    state: &Arc<AppState>,
    caller: &Caller,
    org: &str,
    min_revision: Option<u64>,
) -> Result<Arc<OrgHandle>, ApiError> {
    let handle = match org_for(state, caller, org) {
        Err(e) if e.code == "unknown_organization" && min_revision.is_some() => {
            let (app, name) = (Arc::clone(state), org.to_owned());
            blocking(&state.store, move |store| app.registry.find(store, &name)).await?
        }
        other => other?,
    };
    ready(state, &handle, min_revision).await?;
    Ok(handle)
}

/// User access auditing (D12): when the organisation audits user access, the first request of
/// a user in each interval is recorded.
fn note_access(state: &AppState, handle: &Arc<OrgHandle>, caller: &Caller) {
    let (name, retention) = {
        let loaded = handle.read();
        let settings = loaded.org.audit_settings();
        if !(settings.enabled && settings.user_access) {
            return;
        }
        match acting(&loaded, caller) {
            Ok(Some(u)) => (loaded.org.user(u).name.clone(), settings.retention_days),
            _ => return,
        }
    };
    let key = (handle.name.clone(), name.clone());
    {
        let mut seen = state
            .access_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen
            .get(&key)
            .is_some_and(|at| at.elapsed() < limits::USER_ACCESS_INTERVAL)
        {
            return;
        }
        seen.insert(key, std::time::Instant::now());
    }
    let store = Arc::clone(&state.store);
    let org = handle.name.clone();
    tokio::task::spawn_blocking(move || {
        let record = strata_store::AuditRecord {
            action: "user_access".to_owned(),
            table: Some("systemuser".to_owned()),
            record: Some(name.clone()),
            user: Some(name),
            impersonator: None,
            detail: json!({ "interval_hours": limits::USER_ACCESS_INTERVAL.as_secs() / 3600 }),
        };
        let now = now_ms();
        if let Err(e) = store.write(&org, &mut |tx| {
            tx.append_audit(&record, now, retention).map(|_| ())
        }) {
            tracing::warn!(%org, error = %e, "user access audit");
        }
    });
}

async fn ready(
    state: &AppState,
    handle: &Arc<OrgHandle>,
    min_revision: Option<u64>,
) -> Result<(), ApiError> {
    match min_revision {
        Some(r) => {
            handle
                .wait_for(&state.store, r, state.follow.min_revision_wait)
                .await
        }
        None if handle.read().dirty => Err(ApiError::new(
            "database_unreachable",
            format!(
                "organization `{}` is being rebuilt from the database after a failed write",
                handle.name
            ),
        )),
        None => Ok(()),
    }
}

// ----- organisations -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrg {
    name: String,
}

pub(crate) async fn create_org(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    require_root(&auth(&state, &headers).await?)?;
    let req: NewOrg = parse(&headers, &body)?;
    let registry = Arc::clone(&state);
    let name = req.name.clone();
    blocking(&state.store, move |store| {
        registry.registry.create(store, &name).map(|_| ())
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": req.name, "revision": 0 })),
    )
        .into_response())
}

pub(crate) async fn list_orgs(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    require_root(&auth(&state, &headers).await?)?;
    let list: Vec<Json_> = state
        .registry
        .list()
        .into_iter()
        .map(|(n, r)| json!({ "name": n, "revision": r }))
        .collect();
    ok(json!({ "organizations": list }))
}

pub(crate) async fn delete_org(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> ApiResult {
    require_root(&auth(&state, &headers).await?)?;
    let registry = Arc::clone(&state);
    blocking(&state.store, move |store| {
        registry.registry.delete(store, &org)
    })
    .await?;
    state.keys.clear();
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- writes -----

/// Parses one operation. Internally tagged enums lose the path of an error inside them, so
/// the offending field is recovered from the message: the unknown or missing field's name, or
/// the field holding the value of the wrong type.
fn parse_operation(value: &Json_, prefix: &str) -> Result<Operation, ApiError> {
    let join = |name: &str| {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        }
    };
    serde_path_to_error::deserialize::<_, Operation>(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        let err = ApiError::new("invalid_body", message.clone());
        if path != "." {
            return err.at(join(&path));
        }
        match guess_field(value, &message) {
            Some(name) => err.at(join(&name)),
            None if prefix.is_empty() => err,
            None => err.at(prefix.to_owned()),
        }
    })
}

fn quoted(message: &str, after: &str) -> Option<String> {
    let rest = &message[message.find(after)? + after.len()..];
    let rest = rest.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name.to_owned())
}

fn guess_field(value: &Json_, message: &str) -> Option<String> {
    if let Some(name) =
        quoted(message, "unknown field ").or_else(|| quoted(message, "missing field "))
    {
        return Some(name);
    }
    let object = value.as_object()?;
    let rest = message.strip_prefix("invalid type: ")?;
    let (kind, literal) = match rest.split_once(", expected") {
        Some((found, _)) => match found.split_once(' ') {
            Some((k, v)) => (k, Some(v.trim_matches('"').trim_matches('`'))),
            None => (found, None),
        },
        None => return None,
    };
    let matches_kind = |v: &Json_| match kind {
        "string" => v.is_string(),
        "integer" | "floating" => v.is_number(),
        "boolean" => v.is_boolean(),
        "map" => v.is_object(),
        "sequence" => v.is_array(),
        "null" | "unit" => v.is_null(),
        _ => false,
    };
    let candidates: Vec<&String> = object
        .iter()
        .filter(|(k, v)| *k != "op" && matches_kind(v))
        .filter(|(_, v)| match (literal, v) {
            (Some(l), Json_::String(s)) => s == l,
            (Some(l), other) if !other.is_string() => {
                serde_json::from_str::<Json_>(l).ok().as_ref() == Some(*other)
            }
            _ => true,
        })
        .map(|(k, _)| k)
        .collect();
    match candidates.as_slice() {
        [one] => Some((*one).clone()),
        _ => None,
    }
}

/// The query of a write: `min_revision` makes this node apply that revision first (a user or
/// a key created a moment ago on another node is then known here).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteParams {
    #[serde(default)]
    min_revision: Option<u64>,
}

pub(crate) async fn operations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(params): Query<WriteParams>,
    body: Bytes,
) -> ApiResult {
    let (caller, handle) = open(&state, &headers, &org, params.min_revision).await?;
    let ops = match parse::<Json_>(&headers, &body)? {
        Json_::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| parse_operation(v, &format!("[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        one => vec![parse_operation(&one, "")?],
    };
    if ops.is_empty() || ops.len() > limits::MAX_BATCH {
        return Err(ApiError::new(
            "bad_batch",
            format!("send 1 to {} operations", limits::MAX_BATCH),
        ));
    }
    let on_behalf = on_behalf_of(&headers)?;
    let (user, impersonator) = {
        let loaded = handle.read();
        let me = acting(&loaded, &caller)?;
        if let Some(me) = me {
            let caller_name = loaded.org.user(me).name.clone();
            let name = match &on_behalf {
                Some(other) => {
                    if loaded.org.user_id(other).is_none() {
                        return Err(ApiError::not_found(format!(
                            "unknown user `{other}` in MSCRMCallerID"
                        )));
                    }
                    other.clone()
                }
                None => caller_name.clone(),
            };
            for (i, op) in ops.iter().enumerate() {
                if op.is_setup() && on_behalf.is_some() {
                    return Err(ApiError::new(
                        "bad_actor",
                        "administration is not done on behalf of another user",
                    )
                    .at(format!("/{i}")));
                }
                if op.actor().is_some_and(|a| a != name) {
                    return Err(ApiError::forbidden(format!(
                        "this request acts as `{name}`; `as` may not name another user"
                    ))
                    .at(format!("/{i}/as")));
                }
            }
            (Some(name), on_behalf.is_some().then_some(caller_name))
        } else {
            if on_behalf.is_some() {
                return Err(ApiError::new(
                    "bad_actor",
                    "the root key acts as the system; name the user with `as` instead of MSCRMCallerID",
                ));
            }
            (None, None)
        }
    };
    // A user's actions run as that user, whatever `as` says (it may only repeat the name).
    let ops: Vec<Operation> = match &user {
        None => ops,
        Some(name) => ops.into_iter().map(|op| with_actor(op, name)).collect(),
    };
    let written = handle
        .write(Arc::clone(&state.store), ops, user, impersonator)
        .await?;
    state.metrics.wrote(written.changes.len());
    ok(json!({ "revision": written.revision, "changes": written.changes }))
}

/// The user named by `MSCRMCallerID` (Dataverse's impersonation header) or
/// `X-Strata-On-Behalf-Of`: the caller acts on that user's behalf (D7).
fn on_behalf_of(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    for name in ["mscrmcallerid", "x-strata-on-behalf-of"] {
        if let Some(v) = headers.get(name) {
            let text = v.to_str().map_err(|_| {
                ApiError::new("bad_header", format!("the {name} header is not text"))
            })?;
            return Ok(Some(text.trim().to_owned()));
        }
    }
    Ok(None)
}

/// Sets the acting user of an action.
fn with_actor(op: Operation, name: &str) -> Operation {
    let mut value = serde_json::to_value(&op).unwrap_or(Json_::Null);
    if op.is_setup() {
        return op;
    }
    value["as"] = Json_::String(name.to_owned());
    serde_json::from_value(value).unwrap_or(op)
}

// ----- questions -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckRequest {
    #[serde(default)]
    user: Option<String>,
    privilege: String,
    #[serde(default)]
    record: Option<String>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    min_revision: Option<u64>,
}

fn decide(
    loaded: &Loaded,
    caller: &Caller,
    req: &CheckRequest,
) -> Result<strata_engine::Decision, ApiError> {
    let org = &loaded.org;
    let me = acting(loaded, caller)?;
    let user = subject(loaded, me, req.user.as_deref())?;
    let p = privilege(&req.privilege, "privilege")?;
    match (&req.record, &req.table) {
        (Some(r), None) => Ok(org.explain(user, p, record_id(org, r).map_err(|e| e.at("record"))?)),
        (None, Some(t)) => {
            let table = org
                .table_id(t)
                .ok_or_else(|| ApiError::not_found(format!("unknown table `{t}`")).at("table"))?;
            let owner = match &req.owner {
                Some(o) => match strata_ops::resolve_principal(org, o)
                    .map_err(|e| ApiError::from(e).at("owner"))?
                {
                    strata_engine::Principal::User(u) => Owner::User(u),
                    strata_engine::Principal::Team(t) => Owner::Team(t),
                    strata_engine::Principal::Organization => {
                        return Err(ApiError::new(
                            "bad_owner",
                            "the organization cannot own a record",
                        )
                        .at("owner"));
                    }
                },
                None if org.table(table).ownership == Ownership::UserOrTeam => Owner::User(user),
                None => Owner::None,
            };
            Ok(org.explain_create(user, table, owner, None))
        }
        _ => Err(ApiError::new(
            "invalid_body",
            "give `record`, or `table` (and `owner`) for a create check",
        )
        .at("record")),
    }
}

pub(crate) async fn check(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Bytes,
) -> ApiResult {
    let caller = auth(&state, &headers).await?;
    let req: CheckRequest = parse(&headers, &body)?;
    let handle = org_at(&state, &caller, &org, req.min_revision).await?;
    let loaded = handle.read();
    let decision = decide(&loaded, &caller, &req)?;
    state.metrics.decided(1);
    ok(json!({ "allowed": decision.allowed, "revision": loaded.revision }))
}

pub(crate) async fn explain(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Bytes,
) -> ApiResult {
    let caller = auth(&state, &headers).await?;
    let req: CheckRequest = parse(&headers, &body)?;
    let handle = org_at(&state, &caller, &org, req.min_revision).await?;
    let loaded = handle.read();
    let decision = decide(&loaded, &caller, &req)?;
    let mut out = strata_ops::decision_json(&loaded.org, &decision);
    out["revision"] = json!(loaded.revision);
    ok(out)
}

pub(crate) async fn read_record(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((org, key)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let (caller, handle) = open(&state, &headers, &org, params.min_revision).await?;
    let loaded = handle.read();
    let o = &loaded.org;
    let me = acting(&loaded, &caller)?;
    let user = subject(&loaded, me, params.user.as_deref())?;
    let r = record_id(o, &key)?;
    let fields = o.read_record(user, r).ok_or_else(|| {
        ApiError::new(
            "denied",
            o.render_decision(&o.explain(user, Privilege::Read, r)),
        )
    })?;
    let rec = o.record(r);
    let fields: serde_json::Map<String, Json_> =
        fields.into_iter().map(|(k, v)| (k, to_json(&v))).collect();
    ok(json!({
        "id": rec.key,
        "table": o.table(rec.table).name,
        "owner": match rec.owner { Owner::None => Json_::Null, owner => Json_::String(o.owner_name(owner)) },
        "business_unit": o.units().name(rec.business_unit),
        "state": if rec.state == strata_engine::RecordState::Active { "active" } else { "inactive" },
        "fields": fields,
        "revision": loaded.revision,
    }))
}

pub(crate) async fn record_access(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((org, key)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let (caller, handle) = open(&state, &headers, &org, params.min_revision).await?;
    let loaded = handle.read();
    let o = &loaded.org;
    let me = acting(&loaded, &caller)?;
    let user = subject(&loaded, me, params.user.as_deref())?;
    let mask = o.access(user, record_id(o, &key)?);
    let rights: Vec<&str> = Privilege::RECORD_RIGHTS
        .into_iter()
        .filter(|p| mask.contains(*p))
        .map(Privilege::name)
        .collect();
    ok(
        json!({ "user": o.user(user).name, "record": key, "rights": rights, "access_rights": mask.bits(), "AccessRights": mask.dataverse_names(), "revision": loaded.revision }),
    )
}

pub(crate) async fn who_has_access(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((org, key)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let (caller, handle) = open(&state, &headers, &org, params.min_revision).await?;
    let loaded = handle.read();
    let o = &loaded.org;
    let me = acting(&loaded, &caller)?;
    let r = record_id(o, &key)?;
    if let Some(me) = me
        && !o.check(me, Privilege::Read, r)
    {
        return Err(ApiError::new(
            "denied",
            format!(
                "user `{}` cannot read record `{key}`, so cannot ask who else can",
                o.user(me).name
            ),
        ));
    }
    let p = privilege(params.privilege.as_deref().unwrap_or("read"), "privilege")?;
    let users: Vec<String> = o
        .who_has_access(r, p)
        .into_iter()
        .map(|u| o.user(u).name.clone())
        .collect();
    ok(json!({ "record": key, "privilege": p.name(), "users": users, "revision": loaded.revision }))
}

/// One page of the records of `table` on which `user` holds `privilege`, from a cursor (the
/// next record's id, as this server gave it); `fields` names the limit and cursor in errors.
fn page_of(
    o: &Organization,
    user: UserId,
    privilege: Privilege,
    table: strata_engine::TableId,
    limit: Option<usize>,
    cursor: Option<&str>,
    fields: (&str, &str),
) -> Result<(Vec<RecordId>, Option<String>), ApiError> {
    let limit = limit.unwrap_or(limits::DEFAULT_PAGE);
    if limit == 0 || limit > limits::MAX_PAGE {
        return Err(ApiError::new(
            "bad_page_size",
            format!("limit must be 1 to {}", limits::MAX_PAGE),
        )
        .at(fields.0));
    }
    let after: u32 = match cursor {
        None => 0,
        Some(c) => c.parse().map_err(|_| {
            ApiError::new(
                "bad_cursor",
                format!("cursor `{c}` is not one this server gave"),
            )
            .at(fields.1)
        })?,
    };
    let mut page = Vec::with_capacity(limit.min(1024));
    if privilege == Privilege::Read {
        // The record index answers reads as a set; a page is a range of it.
        for id in o.readable_set(user, table).range(after..) {
            if page.len() == limit {
                return Ok((page, Some(id.to_string())));
            }
            page.push(RecordId::from_raw(id));
        }
        return Ok((page, None));
    }
    for r in o.table_records(table).iter().filter(|r| r.get() >= after) {
        if o.check(user, privilege, *r) {
            if page.len() == limit {
                return Ok((page, Some(r.get().to_string())));
            }
            page.push(*r);
        }
    }
    Ok((page, None))
}

pub(crate) async fn list_records(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((org, table)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let (caller, handle) = open(&state, &headers, &org, params.min_revision).await?;
    let loaded = handle.read();
    let o = &loaded.org;
    let me = acting(&loaded, &caller)?;
    let user = subject(&loaded, me, params.user.as_deref())?;
    let t = o
        .table_id(&table)
        .ok_or_else(|| ApiError::not_found(format!("unknown table `{table}`")))?;
    let limit = params.limit.unwrap_or(limits::DEFAULT_PAGE);
    if limit == 0 || limit > limits::MAX_PAGE {
        return Err(ApiError::new(
            "bad_page_size",
            format!("limit must be 1 to {}", limits::MAX_PAGE),
        )
        .at("limit"));
    }
    let filter = params
        .filter
        .as_deref()
        .map(strata_ops::parse_filter)
        .transpose()
        .map_err(|e| ApiError::new("bad_filter", e.to_string()).at("filter"))?;
    let order = params
        .orderby
        .as_deref()
        .map(strata_ops::parse_order)
        .transpose()
        .map_err(|e| ApiError::new("bad_order", e.to_string()).at("orderby"))?
        .unwrap_or_default();
    // The cursor is bound to this query: table, user, filter and order.
    let query_id = crate::auth::hash_secret(&format!(
        "{table}\n{}\n{}\n{}",
        o.user(user).name,
        params.filter.as_deref().unwrap_or_default(),
        params.orderby.as_deref().unwrap_or_default()
    ))[..16]
        .to_owned();
    let after = params
        .cursor
        .as_deref()
        .map(|c| cursor::decode(c, &query_id))
        .transpose()?;
    let query = strata_engine::ListQuery {
        filter,
        order,
        after,
        limit,
        count: params.count.unwrap_or(false),
        plan: strata_engine::Plan::Auto,
    };
    let page = o.list(user, t, &query).map_err(|e| {
        let field = match e {
            strata_engine::ListError::BadCursor => "cursor",
            strata_engine::ListError::UnknownColumn { .. }
                if query
                    .order
                    .iter()
                    .any(|x| e.to_string().contains(&format!("`{}`", x.column))) =>
            {
                "orderby"
            }
            _ => "filter",
        };
        let code = match e {
            strata_engine::ListError::UnknownColumn { .. } => "unknown_column",
            strata_engine::ListError::BadValue { .. } => "bad_value",
            strata_engine::ListError::BadCursor => "bad_cursor",
        };
        ApiError::new(code, e.to_string()).at(field)
    })?;
    let records: Vec<String> = page
        .records
        .iter()
        .map(|r| o.record(*r).key.clone())
        .collect();
    let next = page.next.as_ref().map(|a| cursor::encode(a, &query_id));
    state.metrics.decided(records.len());
    let mut out = json!({ "table": table, "records": records, "next_cursor": next, "revision": loaded.revision });
    if let Some(total) = page.total {
        out["count"] = json!(total);
    }
    ok(out)
}

pub(crate) async fn app_access(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((org, app)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let (caller, handle) = open(&state, &headers, &org, params.min_revision).await?;
    let loaded = handle.read();
    let o = &loaded.org;
    let me = acting(&loaded, &caller)?;
    let user = subject(&loaded, me, params.user.as_deref())?;
    let a = o
        .app_id(&app)
        .ok_or_else(|| ApiError::not_found(format!("unknown app `{app}`")))?;
    let why = o.app_access(user, a).map(|w| match w {
        strata_engine::AppAccess::SystemAdministrator(_) => "system_administrator".to_owned(),
        strata_engine::AppAccess::Maker => "maker".to_owned(),
        strata_engine::AppAccess::Role { role, team } => match team {
            None => format!("role `{}`", o.role(role).name),
            Some(t) => format!(
                "role `{}` through team `{}`",
                o.role(role).name,
                o.team(t).name
            ),
        },
    });
    ok(
        json!({ "app": app, "user": o.user(user).name, "allowed": why.is_some(), "reason": why, "revision": loaded.revision }),
    )
}

pub(crate) async fn revision(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> ApiResult {
    let caller = auth(&state, &headers).await?;
    let handle = org_for(&state, &caller, &org)?;
    let loaded = handle.read();
    acting(&loaded, &caller)?;
    ok(json!({ "revision": loaded.revision }))
}

/// List cursors: the last record's order values and id, bound to the query that made them,
/// as hex text.
mod cursor {
    use crate::error::ApiError;

    pub(super) fn encode(after: &strata_engine::After, query: &str) -> String {
        let values: Vec<serde_json::Value> = after.values.iter().map(strata_ops::to_json).collect();
        hex::encode(serde_json::json!({ "q": query, "v": values, "id": after.record }).to_string())
    }

    pub(super) fn decode(text: &str, query: &str) -> Result<strata_engine::After, ApiError> {
        let bad = || {
            ApiError::new(
                "bad_cursor",
                format!("cursor `{text}` is not one this server gave for this query"),
            )
            .at("cursor")
        };
        let bytes = hex::decode(text).map_err(|_| bad())?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if value["q"] != query {
            return Err(bad());
        }
        let record = value["id"]
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(bad)?;
        let values = value["v"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|v| strata_ops::from_json("cursor", v).map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        Ok(strata_engine::After { values, record })
    }
}

// ----- the model -----

pub(crate) async fn model(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let (caller, handle) = open(&state, &headers, &org, params.min_revision).await?;
    let loaded = handle.read();
    if let Some(me) = acting(&loaded, &caller)?
        && loaded.org.system_administrator(me).is_none()
    {
        return Err(ApiError::new(
            "denied",
            format!(
                "user `{}` is not a System Administrator: only they read the whole model",
                loaded.org.user(me).name
            ),
        ));
    }
    let mut out = strata_ops::model_json(&loaded.org);
    out["revision"] = json!(loaded.revision);
    ok(out)
}

pub(crate) async fn user_privileges(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path((org, user)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let (caller, handle) = open(&state, &headers, &org, params.min_revision).await?;
    let loaded = handle.read();
    let me = acting(&loaded, &caller)?;
    let target = subject(&loaded, me, Some(&user))?;
    let mut out = strata_ops::privileges_json(&loaded.org, target);
    out["revision"] = json!(loaded.revision);
    ok(out)
}

// ----- audit -----

fn require_audit_reader(loaded: &Loaded, caller: &Caller) -> Result<(), ApiError> {
    if let Some(me) = acting(loaded, caller)?
        && !loaded.org.holds_misc(me, "prvReadAuditSummary")
    {
        return Err(ApiError::new(
            "denied",
            format!(
                "user `{}` lacks prvReadAuditSummary",
                loaded.org.user(me).name
            ),
        ));
    }
    Ok(())
}

pub(crate) async fn audit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let caller = auth(&state, &headers).await?;
    let handle = org_for(&state, &caller, &org)?;
    require_audit_reader(&handle.read(), &caller)?;
    let number = |k: &str| -> Result<Option<i64>, ApiError> {
        params
            .get(k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::new("bad_query", format!("`{k}` must be a number")).at(k)
                })
            })
            .transpose()
    };
    for k in params.keys() {
        if !["record", "user", "from", "to", "after", "limit"].contains(&k.as_str()) {
            return Err(
                ApiError::new("bad_query", format!("unknown query parameter `{k}`")).at(k.clone()),
            );
        }
    }
    let limit = number("limit")?.unwrap_or(100);
    if limit < 1 || limit as usize > limits::MAX_PAGE {
        return Err(ApiError::new(
            "bad_page_size",
            format!("limit must be 1 to {}", limits::MAX_PAGE),
        )
        .at("limit"));
    }
    let query = AuditQuery {
        record: params.get("record").cloned(),
        user: params.get("user").cloned(),
        from_ms: number("from")?,
        to_ms: number("to")?,
        after_seq: number("after")?.unwrap_or(0).max(0) as u64,
        limit: limit as usize + 1,
    };
    let mut entries = blocking(&state.store, move |store| Ok(store.audit(&org, &query)?)).await?;
    let next = (entries.len() > limit as usize).then(|| {
        entries.truncate(limit as usize);
        entries.last().map_or(0, |e| e.seq)
    });
    ok(json!({ "entries": entries, "next_after": next }))
}

pub(crate) async fn audit_verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> ApiResult {
    let caller = auth(&state, &headers).await?;
    let handle = org_for(&state, &caller, &org)?;
    require_audit_reader(&handle.read(), &caller)?;
    match blocking(&state.store, move |store| Ok(store.verify_audit(&org)?)).await? {
        strata_store::Verification::Intact { entries } => {
            ok(json!({ "intact": true, "entries": entries }))
        }
        strata_store::Verification::Tampered { seq, problem } => {
            ok(json!({ "intact": false, "seq": seq, "problem": problem }))
        }
    }
}

// ----- AuthZEN 1.0 -----

#[derive(Deserialize, Clone)]
pub(crate) struct AzSubject {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    id: String,
}

#[derive(Deserialize, Clone)]
pub(crate) struct AzAction {
    name: String,
}

#[derive(Deserialize, Clone)]
pub(crate) struct AzResource {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize, Clone)]
pub(crate) struct AzEvaluation {
    #[serde(default)]
    subject: Option<AzSubject>,
    #[serde(default)]
    action: Option<AzAction>,
    #[serde(default)]
    resource: Option<AzResource>,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "accepted as AuthZEN defines it; Strata decides without context"
    )]
    context: Option<Json_>,
}

#[derive(Deserialize)]
pub(crate) struct AzEvaluations {
    #[serde(flatten)]
    defaults: AzEvaluation,
    #[serde(default)]
    evaluations: Vec<AzEvaluation>,
}

fn az_org(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<Arc<OrgHandle>, ApiError> {
    match caller {
        Caller::User { org, .. } => state.registry.get(org),
        Caller::Root | Caller::Identity(_) => {
            let org = headers
                .get("x-strata-organization")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        "invalid_body",
                        "with the root key or a bearer token, name the organization in `X-Strata-Organization`",
                    )
                })?;
            state.registry.get(org)
        }
    }
}

/// One AuthZEN evaluation: subject = user, action = privilege, resource = record.
fn az_decide(
    loaded: &Loaded,
    caller: &Caller,
    e: &AzEvaluation,
    at: &str,
) -> Result<(bool, Json_), ApiError> {
    let o = &loaded.org;
    let subject = e.subject.as_ref().ok_or_else(|| {
        ApiError::new("invalid_body", "missing `subject`").at(format!("{at}subject"))
    })?;
    if subject.kind.as_deref().is_some_and(|k| k != "user") {
        return Err(ApiError::new("invalid_body", "subject.type must be `user`")
            .at(format!("{at}subject.type")));
    }
    let action = e.action.as_ref().ok_or_else(|| {
        ApiError::new("invalid_body", "missing `action`").at(format!("{at}action"))
    })?;
    let resource = e.resource.as_ref().ok_or_else(|| {
        ApiError::new("invalid_body", "missing `resource`").at(format!("{at}resource"))
    })?;
    let me = acting(loaded, caller)?;
    let user =
        subject_of(loaded, me, &subject.id).map_err(|err| err.at(format!("{at}subject.id")))?;
    let p = privilege(&action.name, &format!("{at}action.name"))?;
    let id = resource.id.as_deref().ok_or_else(|| {
        ApiError::new("invalid_body", "missing resource.id").at(format!("{at}resource.id"))
    })?;
    let Some(r) = o.record_id(id) else {
        return Ok((
            false,
            json!({ "reason": format!("record `{id}` does not exist") }),
        ));
    };
    if let Some(kind) = &resource.kind {
        let table = &o.table(o.record(r).table).name;
        if kind != table {
            return Ok((
                false,
                json!({ "reason": format!("record `{id}` is a `{table}`, not a `{kind}`") }),
            ));
        }
    }
    let d = o.explain(user, p, r);
    let kinds: Vec<&str> = d.paths.iter().map(|p| p.kind().name()).collect();
    Ok((
        d.allowed,
        json!({ "reason": o.render_decision(&d), "grants": kinds }),
    ))
}

fn subject_of(loaded: &Loaded, me: Option<UserId>, name: &str) -> Result<UserId, ApiError> {
    subject(loaded, me, Some(name))
}

pub(crate) async fn az_evaluation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = auth(&state, &headers).await?;
    let handle = az_org(&state, &caller, &headers)?;
    let e: AzEvaluation = parse(&headers, &body)?;
    let loaded = handle.read();
    let (decision, context) = az_decide(&loaded, &caller, &e, "")?;
    state.metrics.decided(1);
    ok(json!({ "decision": decision, "context": context }))
}

pub(crate) async fn az_evaluations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = auth(&state, &headers).await?;
    let handle = az_org(&state, &caller, &headers)?;
    let req: AzEvaluations = parse(&headers, &body)?;
    if req.evaluations.len() > limits::MAX_EVALUATIONS {
        return Err(ApiError::new(
            "bad_batch",
            format!(
                "at most {} evaluations per request",
                limits::MAX_EVALUATIONS
            ),
        )
        .at("evaluations"));
    }
    let loaded = handle.read();
    let list = if req.evaluations.is_empty() {
        vec![req.defaults.clone()]
    } else {
        req.evaluations.clone()
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.into_iter().enumerate() {
        let merged = AzEvaluation {
            subject: e.subject.or_else(|| req.defaults.subject.clone()),
            action: e.action.or_else(|| req.defaults.action.clone()),
            resource: e.resource.or_else(|| req.defaults.resource.clone()),
            context: None,
        };
        let (decision, context) =
            az_decide(&loaded, &caller, &merged, &format!("evaluations[{i}]."))?;
        out.push(json!({ "decision": decision, "context": context }));
    }
    state.metrics.decided(out.len());
    ok(json!({ "evaluations": out }))
}

#[derive(Deserialize)]
pub(crate) struct AzSearch {
    subject: AzSubject,
    action: AzAction,
    resource: AzResource,
    #[serde(default)]
    page: Option<AzPage>,
}

#[derive(Deserialize)]
pub(crate) struct AzPage {
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

pub(crate) async fn az_search_resource(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let caller = auth(&state, &headers).await?;
    let handle = az_org(&state, &caller, &headers)?;
    let req: AzSearch = parse(&headers, &body)?;
    let loaded = handle.read();
    let o = &loaded.org;
    let me = acting(&loaded, &caller)?;
    let user = subject_of(&loaded, me, &req.subject.id).map_err(|e| e.at("subject.id"))?;
    let p = privilege(&req.action.name, "action.name")?;
    let kind = req.resource.kind.as_deref().ok_or_else(|| {
        ApiError::new("invalid_body", "missing resource.type").at("resource.type")
    })?;
    let table = o.table_id(kind).ok_or_else(|| {
        ApiError::not_found(format!("unknown table `{kind}`")).at("resource.type")
    })?;
    let page = req.page.as_ref();
    let (found, next) = page_of(
        o,
        user,
        p,
        table,
        page.and_then(|p| p.limit),
        page.and_then(|p| p.next_token.as_deref())
            .filter(|t| !t.is_empty()),
        ("page.limit", "page.next_token"),
    )?;
    let results: Vec<Json_> = found
        .into_iter()
        .map(|r| json!({ "type": kind, "id": o.record(r).key }))
        .collect();
    ok(json!({ "results": results, "page": { "next_token": next.unwrap_or_default() } }))
}

// ----- keys (used by tests and the CLI against a server) -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    user: String,
}

pub(crate) async fn create_key(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    body: Bytes,
) -> ApiResult {
    let caller = auth(&state, &headers).await?;
    let handle = org_for(&state, &caller, &org)?;
    let req: NewKey = parse(&headers, &body)?;
    {
        let loaded = handle.read();
        if let Some(me) = acting(&loaded, &caller)?
            && loaded.org.system_administrator(me).is_none()
        {
            return Err(ApiError::new(
                "denied",
                "only System Administrators create API keys",
            ));
        }
        if loaded.org.user_id(&req.user).is_none() {
            return Err(ApiError::not_found(format!("unknown user `{}`", req.user)).at("user"));
        }
    }
    let user = req.user.clone();
    let (record, secret) = blocking(&state.store, move |store| {
        crate::auth::create_api_key(store, &org, &user, now_ms())
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": record.id, "user": record.user, "key": secret })),
    )
        .into_response())
}

/// `GET /api/v1/orgs/{org}/digest`: the SHA-256 of the organisation's canonical dump (every
/// entity, in id order) at this node's revision, and whether its derived indexes and record
/// index equal a rebuild — two nodes with the same digest at the same revision hold the same
/// state. The root key, or a System Administrator of the organisation.
pub(crate) async fn digest(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let (caller, handle) = open(&state, &headers, &org, params.min_revision).await?;
    let answer = tokio::task::spawn_blocking(move || {
        let loaded = handle.read();
        if let Some(me) = acting(&loaded, &caller)?
            && loaded.org.system_administrator(me).is_none()
        {
            return Err(ApiError::forbidden(
                "the digest is for the root key and System Administrators",
            ));
        }
        use sha2::Digest as _;
        let dump = loaded.org.canonical_dump();
        Ok(json!({
            "revision": loaded.revision,
            "sha256": hex::encode(sha2::Sha256::digest(dump.as_bytes())),
            "records": loaded.org.record_ids().count(),
            "indexes_current": loaded.org.indexes_are_current(),
            "record_index_current": loaded.org.record_index_is_current(),
        }))
    })
    .await
    .map_err(|e| ApiError::internal(format!("digest task failed: {e}")))??;
    ok(answer)
}
