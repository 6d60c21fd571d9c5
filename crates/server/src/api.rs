//! The native JSON API under `/api/v1` and the OpenID AuthZEN endpoints under `/access/v1`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json_, json};
use strata_engine::{Organization, Owner, Ownership, Privilege, RecordId, UserId};
use strata_ops::{Operation, to_json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::request::{OrgRequest, authenticate_request, may_ask_about, ready};
use crate::schema;
use crate::{AppState, blocking, limits};
use strata_app::{AppError, now_ms, run_as};

type ApiResult = Result<Response, ApiError>;

pub(crate) use crate::json::parse;

fn ok(value: Json_) -> ApiResult {
    Ok((StatusCode::OK, Json(value)).into_response())
}

/// A 200 answer built from its type (the type the OpenAPI document describes, `schema.rs`).
fn answer<T: serde::Serialize>(value: T) -> ApiResult {
    Ok((StatusCode::OK, Json(value)).into_response())
}

async fn auth(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    authenticate_request(state, headers).await
}

fn require_root(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Root => Ok(()),
        Caller::User { .. } | Caller::Identity(_) => Err(ApiError::forbidden(
            "only the server's root key administers organizations",
        )),
    }
}

fn record_id(org: &Organization, key: &str) -> Result<RecordId, ApiError> {
    org.record_id(key)
        .or_else(|| key.parse().ok().and_then(|g| org.record_by_guid(g)))
        .ok_or_else(|| ApiError::not_found(format!("record `{key}` does not exist")))
}

fn privilege(name: &str, field: &str) -> Result<Privilege, ApiError> {
    Privilege::from_name(name).ok_or_else(|| {
        ApiError::new("unknown_privilege", format!("unknown privilege `{name}` (create read write delete append append_to assign share)")).at(field)
    })
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct DigestParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    /// Whether to rebuild the indexes and compare (default true).
    #[serde(default)]
    indexes: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
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
    /// Lists: the columns to return with each record (comma-separated).
    #[serde(default)]
    select: Option<String>,
}

// ----- organisations -----

#[derive(Deserialize, utoipa::ToSchema)]
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
        Ok(registry.registry.create(store, &name).map(|_| ())?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(schema::OrgAnswer {
            name: req.name,
            revision: 0,
        }),
    )
        .into_response())
}

pub(crate) async fn list_orgs(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    require_root(&auth(&state, &headers).await?)?;
    let organizations = state
        .registry
        .list()
        .into_iter()
        .map(|(name, revision)| schema::OrgAnswer { name, revision })
        .collect();
    answer(schema::OrgList { organizations })
}

pub(crate) async fn delete_org(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(org): Path<String>,
) -> ApiResult {
    require_root(&auth(&state, &headers).await?)?;
    let registry = Arc::clone(&state);
    blocking(&state.store, move |store| {
        Ok(registry.registry.delete(store, &org)?)
    })
    .await?;
    state.keys.clear();
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ----- writes -----

/// The query of a write: `min_revision` makes this node apply that revision first (a user or
/// a key created a moment ago on another node is then known here).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct WriteParams {
    #[serde(default)]
    #[allow(dead_code, reason = "read by the request opening (OrgRequest)")]
    min_revision: Option<u64>,
    /// Try the batch and answer what it would change, writing nothing (D54).
    #[serde(default)]
    dry_run: Option<bool>,
}

pub(crate) async fn operations(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    Query(params): Query<WriteParams>,
    body: Bytes,
) -> ApiResult {
    let value = crate::json::strict_value(&headers, &body)?;
    let is_array = value.is_array();
    let ops = match value {
        Json_::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match Operation::create_from_value(v) {
                Some(op) => Ok(op),
                None => crate::json::from_value::<Operation>(v, &format!("/{i}")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        one => vec![crate::json::from_value::<Operation>(&one, "")?],
    };
    if ops.is_empty() || ops.len() > limits::MAX_BATCH {
        return Err(ApiError::new(
            "bad_batch",
            format!("send 1 to {} operations", limits::MAX_BATCH),
        ));
    }
    let at = |i: usize, field: &str| {
        if is_array {
            format!("/{i}{field}")
        } else {
            field.to_owned()
        }
    };
    let actor = {
        let loaded = request.handle.read().await;
        let actor = request.acting.actor(&loaded.org);
        if let Some(user) = actor.user() {
            for (i, op) in ops.iter().enumerate() {
                if op.is_setup() && actor.impersonator().is_some() {
                    return Err(ApiError::new(
                        "bad_actor",
                        "administration is not done on behalf of another user",
                    )
                    .at(at(i, "")));
                }
                if op.actor().is_some_and(|a| a != user) {
                    return Err(ApiError::forbidden(format!(
                        "this request acts as `{user}`; `as` may not name another user"
                    ))
                    .at(at(i, "/as")));
                }
            }
        }
        actor
    };
    // A user's actions run as that user, whatever `as` says (it may only repeat the name).
    let ops: Vec<Operation> = match actor.user() {
        None => ops,
        Some(name) => ops.into_iter().map(|op| run_as(op, name)).collect(),
    };
    if params.dry_run == Some(true) {
        return crate::dryrun::answer(&state, &request, ops, actor).await;
    }
    let written = request
        .handle
        .write(Arc::clone(&state.store), ops, actor)
        .await?;
    state.metrics.wrote(written.changes.len());
    answer(schema::OperationsAnswer {
        changes: schema::OperationsChanges::Counts(written.changes),
        difference: None,
        dry_run: None,
        revision: written.revision,
    })
}

// ----- questions -----

/// A check or an explanation: `record`, or `table` (and `owner`) for a create check.
#[derive(Deserialize, utoipa::ToSchema)]
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
    org: &Organization,
    request: &OrgRequest,
    req: &CheckRequest,
) -> Result<strata_engine::Decision, ApiError> {
    let user = request
        .subject(org, req.user.as_deref())
        .map_err(|e| match e.field.as_deref() {
            Some("user") => e.at("/user"),
            _ => e,
        })?;
    let p = privilege(&req.privilege, "/privilege")?;
    match (&req.record, &req.table) {
        (Some(r), None) => {
            let id = record_id(org, r).map_err(|e| e.at("/record"))?;
            request
                .may_ask_about_record(org, Some(user), id, r)
                .map_err(|e| e.at("/record"))?;
            Ok(org.explain(user, p, id))
        }
        (None, Some(t)) => {
            let table = org
                .table_id(t)
                .ok_or_else(|| ApiError::not_found(format!("unknown table `{t}`")).at("/table"))?;
            let owner = match &req.owner {
                Some(o) => match strata_ops::resolve_principal(org, o)
                    .map_err(|e| ApiError::from(e).at("/owner"))?
                {
                    strata_engine::Principal::User(u) => Owner::User(u),
                    strata_engine::Principal::Team(t) => Owner::Team(t),
                    strata_engine::Principal::Organization => {
                        return Err(ApiError::new(
                            "bad_owner",
                            "the organization cannot own a record",
                        )
                        .at("/owner"));
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
        .at("/record")),
    }
}

pub(crate) async fn check(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req: CheckRequest = parse(&headers, &body)?;
    if let Some(revision) = req.min_revision {
        ready(&state, &request.handle, revision).await?;
    }
    let loaded = request.handle.read().await;
    let decision = decide(&loaded.org, &request, &req)?;
    state.metrics.decided(1);
    answer(schema::AllowedAnswer {
        allowed: decision.allowed,
        revision: loaded.revision,
    })
}

pub(crate) async fn explain(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req: CheckRequest = parse(&headers, &body)?;
    if let Some(revision) = req.min_revision {
        ready(&state, &request.handle, revision).await?;
    }
    let loaded = request.handle.read().await;
    let decision = decide(&loaded.org, &request, &req)?;
    let mut out = strata_ops::decision_json(&loaded.org, &decision);
    out["revision"] = json!(loaded.revision);
    ok(out)
}

pub(crate) async fn read_record(
    request: OrgRequest,
    Path((_, key)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let loaded = request.handle.read().await;
    let o = &loaded.org;
    let (user, impersonator) = request.reader(o, params.user.as_deref())?;
    let r = record_id(o, &key)?;
    // The refusal explains the reader who may not read it (the user, or the impersonator).
    for reader in std::iter::once(user).chain(impersonator) {
        if !o.check(reader, Privilege::Read, r) {
            return Err(ApiError::new(
                "denied",
                o.render_decision(&o.explain(reader, Privilege::Read, r)),
            ));
        }
    }
    let fields = o.read_record_as(user, impersonator, r).unwrap_or_default();
    let rec = o.record(r);
    let fields: serde_json::Map<String, Json_> =
        fields.into_iter().map(|(k, v)| (k, to_json(&v))).collect();
    let time = strata_engine::Stamps::text;
    let writer = |u: Option<strata_engine::UserId>| u.map(|u| o.user(u).name.clone());
    answer(schema::RecordAnswer {
        business_unit: o.units().name(rec.business_unit).to_owned(),
        created_by: writer(rec.stamps.creator()),
        created_on: time(rec.stamps.created_at),
        fields,
        guid: o.record_guid(r).to_string(),
        id: rec.key.to_string(),
        modified_by: writer(rec.stamps.modifier()),
        modified_on: time(rec.stamps.modified_at),
        owner: match rec.owner {
            Owner::None => None,
            owner => Some(o.owner_name(owner)),
        },
        revision: loaded.revision,
        state: if rec.state == strata_engine::RecordState::Active {
            "active"
        } else {
            "inactive"
        },
        table: o.table(rec.table).name.clone(),
    })
}

pub(crate) async fn record_access(
    request: OrgRequest,
    Path((_, key)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let loaded = request.handle.read().await;
    let o = &loaded.org;
    let user = request.subject(o, params.user.as_deref())?;
    let record = record_id(o, &key)?;
    request.may_ask_about_record(o, Some(user), record, &key)?;
    let mask = o.access(user, record);
    let rights: Vec<&'static str> = Privilege::RECORD_RIGHTS
        .into_iter()
        .filter(|p| mask.contains(*p))
        .map(Privilege::name)
        .collect();
    answer(schema::RecordAccessAnswer {
        dataverse_names: mask.dataverse_names(),
        access_rights: mask.bits(),
        record: key,
        revision: loaded.revision,
        rights,
        user: o.user(user).name.clone(),
    })
}

/// Who may do what to a record: a question about other users' access (D27) — for the root
/// key, System Administrators, and users with `prvCheckAccessOfOthers` and read access to the
/// record; the answer names only users whose `systemuser` record the asker may read.
pub(crate) async fn who_has_access(
    request: OrgRequest,
    Path((_, key)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
    let p = privilege(params.privilege.as_deref().unwrap_or("read"), "privilege")?;
    let handle = Arc::clone(&request.handle);
    tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        let r = record_id(o, &key)?;
        request.require_misc(o, crate::request::CHECK_ACCESS_OF_OTHERS)?;
        request.acting_may_read(o, None, r, &key, "who else can")?;
        let users: Vec<String> = o
            .who_has_access(r, p)
            .into_iter()
            .filter(|u| {
                request
                    .acting
                    .each()
                    .all(|me| may_ask_about(o, me, *u).is_ok())
            })
            .map(|u| o.user(u).name.clone())
            .collect();
        answer(schema::WhoHasAccessAnswer {
            privilege: p.name(),
            record: key,
            revision: loaded.revision,
            users,
        })
    })
    .await
    .map_err(|e| AppError::internal(format!("who-has-access task failed: {e}")))?
}

/// The most record checks one AuthZEN search page makes for a privilege other than read; past
/// it the page ends early with a token to go on from (never an unbounded scan).
const SEARCH_CHECKS_PER_PAGE: usize = 100_000;

/// One page of the records of `table` on which `user` holds `privilege`, from a signed token
/// (bound to the query by `query`); `fields` names the limit and token in errors. A page may
/// hold fewer records than `limit` with a token, when it made its checks' worth.
fn page_of(
    o: &Organization,
    cursors: &crate::cursor::Cursors,
    query: &str,
    (user, privilege, table, readers): (UserId, Privilege, strata_engine::TableId, &[UserId]),
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
        Some(c) => cursors.decode(c, query).map_err(|e| e.at(fields.1))?.record,
    };
    let token = |id: u32| {
        cursors.encode(
            &strata_engine::After {
                values: Vec::new(),
                record: id,
            },
            query,
        )
    };
    let mut page = Vec::with_capacity(limit.min(1024));
    if privilege == Privilege::Read {
        // The record index answers reads as a set; a page is a range of it (intersected with
        // what each bounding reader reads).
        let mut set = o.readable_set(user, table);
        for r in readers {
            set &= o.readable_set(*r, table);
        }
        for id in set.range(after..) {
            if page.len() == limit {
                return Ok((page, Some(token(id))));
            }
            page.push(RecordId::from_raw(id));
        }
        return Ok((page, None));
    }
    let records = o.table_records(table);
    let start = records.partition_point(|r| r.get() < after);
    for (checked, r) in records[start..].iter().enumerate() {
        if page.len() == limit || checked == SEARCH_CHECKS_PER_PAGE {
            return Ok((page, Some(token(r.get()))));
        }
        if o.check(user, privilege, *r) && readers.iter().all(|u| o.check(*u, Privilege::Read, *r))
        {
            page.push(*r);
        }
    }
    Ok((page, None))
}

pub(crate) async fn list_records(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Path((_, table)): Path<(String, String)>,
    Query(params): Query<ReadParams>,
) -> ApiResult {
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
    // A list may read many records: a blocking task, so that it never holds up the async
    // workers that answer other requests and organisations.
    let app = Arc::clone(&state);
    let handle = Arc::clone(&request.handle);
    let out = tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        let (user, impersonator) = request.reader(o, params.user.as_deref())?;
        let t = o
            .table_id(&table)
            .ok_or_else(|| ApiError::not_found(format!("unknown table `{table}`")))?;
        // The cursor is bound to this query: organisation, table, readers, filter and order.
        let query_id = format!(
            "{}\n{table}\n{}\n{}\n{}\n{}",
            handle.name,
            o.user(user).name,
            impersonator
                .map(|i| o.user(i).name.as_str())
                .unwrap_or_default(),
            params.filter.as_deref().unwrap_or_default(),
            params.orderby.as_deref().unwrap_or_default()
        );
        let after = params
            .cursor
            .as_deref()
            .map(|c| app.cursors.decode(c, &query_id))
            .transpose()?;
        let query = strata_engine::ListQuery {
            filter,
            order,
            after,
            limit,
            count: params.count.unwrap_or(false),
            plan: strata_engine::Plan::Auto,
            work_budget: Some(limits::MAX_LIST_WORK),
            impersonator,
        };
        let select: Option<Vec<&str>> = params.select.as_deref().map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        });
        if let Some(columns) = &select {
            if columns.len() > limits::MAX_SELECT {
                return Err(ApiError::new(
                    "bad_select",
                    format!("select names at most {} columns", limits::MAX_SELECT),
                )
                .at("select"));
            }
            if let Some(c) = columns.iter().find(|c| !o.has_column(t, c)) {
                return Err(ApiError::new(
                    "unknown_column",
                    format!("table `{table}` has no column `{c}`"),
                )
                .at("select"));
            }
        }
        let page = o
            .list(user, t, &query)
            .map_err(|e| list_error(&e, &query))?;
        let rows = select.map(|columns| {
            let rows: Vec<schema::ListRow> = page
                .records
                .iter()
                .map(|r| {
                    let fields: serde_json::Map<String, Json_> = columns
                        .iter()
                        .map(|c| {
                            let v = o.list_column_value(user, impersonator, *r, c);
                            ((*c).to_owned(), to_json(&v))
                        })
                        .collect();
                    schema::ListRow {
                        fields,
                        id: o.record(*r).key.to_string(),
                    }
                })
                .collect();
            rows
        });
        let records: Vec<String> = page
            .records
            .iter()
            .map(|r| o.record(*r).key.to_string())
            .collect();
        let next = page.next.as_ref().map(|a| app.cursors.encode(a, &query_id));
        let out = schema::ListAnswer {
            count: page.total.map(|t| t as u64),
            next_cursor: next,
            records,
            revision: loaded.revision,
            rows,
            table,
        };
        Ok::<_, ApiError>((out, page.records.len()))
    })
    .await
    .map_err(|e| AppError::internal(format!("list task failed: {e}")))??;
    state.metrics.decided(out.1);
    answer(out.0)
}

/// A list's error, naming the query parameter at fault.
pub(crate) fn list_error(
    e: &strata_engine::ListError,
    query: &strata_engine::ListQuery,
) -> ApiError {
    let field = match e {
        strata_engine::ListError::BadCursor => "cursor",
        strata_engine::ListError::UnknownColumn { column, .. }
            if query.order.iter().any(|x| &x.column == column) =>
        {
            "orderby"
        }
        _ => "filter",
    };
    ApiError::new(list_error_code(e), e.to_string()).at(field)
}

/// The stable code of a list's refusal.
pub(crate) fn list_error_code(e: &strata_engine::ListError) -> &'static str {
    match e {
        strata_engine::ListError::UnknownColumn { .. } => "unknown_column",
        strata_engine::ListError::BadValue { .. } => "bad_value",
        strata_engine::ListError::BadCursor => "bad_cursor",
        strata_engine::ListError::TooExpensive { .. } => "query_too_expensive",
    }
}

pub(crate) async fn revision(request: OrgRequest) -> ApiResult {
    let loaded = request.handle.read().await;
    answer(schema::RevisionAnswer {
        revision: loaded.revision,
    })
}

// ----- the model -----

pub(crate) async fn model(request: OrgRequest) -> ApiResult {
    let loaded = request.handle.read().await;
    request.require_system_administrator(&loaded.org, "read the whole model")?;
    let mut out = strata_ops::model_json(&loaded.org);
    out["revision"] = json!(loaded.revision);
    ok(out)
}

pub(crate) async fn user_privileges(
    request: OrgRequest,
    Path((_, user)): Path<(String, String)>,
    Query(_params): Query<ReadParams>,
) -> ApiResult {
    let loaded = request.handle.read().await;
    let target = request.subject(&loaded.org, Some(&user))?;
    let mut out = strata_ops::privileges_json(&loaded.org, target);
    out["revision"] = json!(loaded.revision);
    ok(out)
}

// ----- audit -----

/// The audit, as its reader may see it: `prvReadAuditSummary`, then each entry only when the
/// reader may read the record it is about (an entry about a record that no longer exists, or
/// about nothing, only for System Administrators and the root key), with secured column
/// values the reader may not read on that record replaced by null.
pub(crate) async fn audit(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
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
        if ![
            "record",
            "user",
            "table",
            "action",
            "from",
            "to",
            "after",
            "before",
            "order",
            "limit",
            "min_revision",
        ]
        .contains(&k.as_str())
        {
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
    let order = match params.get("order").map(String::as_str) {
        None | Some("asc") => strata_store::AuditOrder::Ascending,
        Some("desc") => strata_store::AuditOrder::Descending,
        Some(other) => {
            return Err(ApiError::new(
                "bad_query",
                format!("`order` must be `asc` or `desc`, not `{other}`"),
            )
            .at("order"));
        }
    };
    let cursor = |k: &str| number(k).map(|n| n.map(|n| n.max(0) as u64));
    let query = crate::audit_pages::PageQuery {
        record: params.get("record").cloned(),
        user: params.get("user").cloned(),
        table: params.get("table").cloned(),
        action: params.get("action").cloned(),
        from_ms: number("from")?,
        to_ms: number("to")?,
        order,
        after: cursor("after")?,
        before: cursor("before")?,
        limit: limit as usize,
    };
    let page = crate::audit_pages::read(&state, &request, query).await?;
    answer(schema::AuditPage {
        entries: page
            .entries
            .into_iter()
            .map(|e| serde_json::to_value(e).unwrap_or_default())
            .collect(),
        next_after: page.after,
        next_before: page.before,
    })
}

pub(crate) async fn audit_verify(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
) -> ApiResult {
    {
        let loaded = request.handle.read().await;
        request.require_misc(&loaded.org, "prvReadAuditSummary")?;
    }
    let org = request.handle.name.clone();
    match blocking(&state.store, move |store| Ok(store.verify_audit(&org)?)).await? {
        strata_store::Verification::Intact { entries } => {
            answer(schema::AuditVerification::Intact(schema::AuditIntact {
                entries,
                intact: true,
            }))
        }
        strata_store::Verification::Tampered { seq, problem } => {
            answer(schema::AuditVerification::Tampered(schema::AuditTampered {
                intact: false,
                problem,
                seq,
            }))
        }
    }
}

// ----- AuthZEN 1.0 -----

/// The subject: a user (`type` is `user`) by name.
#[derive(Deserialize, Clone, utoipa::ToSchema)]
pub(crate) struct AzSubject {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    id: String,
}

/// The action: a privilege's name.
#[derive(Deserialize, Clone, utoipa::ToSchema)]
pub(crate) struct AzAction {
    name: String,
}

/// The resource: a record (`type` its table).
#[derive(Deserialize, Clone, utoipa::ToSchema)]
pub(crate) struct AzResource {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// An AuthZEN evaluation: subject = user, action = privilege, resource = record.
#[derive(Deserialize, Clone, utoipa::ToSchema)]
pub(crate) struct AzEvaluation {
    #[serde(default)]
    subject: Option<AzSubject>,
    #[serde(default)]
    action: Option<AzAction>,
    #[serde(default)]
    resource: Option<AzResource>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    #[allow(
        dead_code,
        reason = "accepted as AuthZEN defines it; Strata decides without context"
    )]
    context: Option<Json_>,
}

/// A batch: each evaluation takes what it leaves out from the batch's own fields.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AzEvaluations {
    #[serde(flatten)]
    defaults: AzEvaluation,
    #[serde(default)]
    evaluations: Vec<AzEvaluation>,
}

/// One AuthZEN evaluation: subject = user, action = privilege, resource = record. A subject
/// other than the caller is a question about another user's access (D27).
fn az_decide(
    o: &Organization,
    request: &OrgRequest,
    e: &AzEvaluation,
    at: &str,
) -> Result<(bool, schema::AzContext), ApiError> {
    let subject = e.subject.as_ref().ok_or_else(|| {
        ApiError::new("invalid_body", "missing `subject`").at(format!("{at}/subject"))
    })?;
    if subject.kind.as_deref().is_some_and(|k| k != "user") {
        return Err(ApiError::new("invalid_body", "subject.type must be `user`")
            .at(format!("{at}/subject/type")));
    }
    let action = e.action.as_ref().ok_or_else(|| {
        ApiError::new("invalid_body", "missing `action`").at(format!("{at}/action"))
    })?;
    let resource = e.resource.as_ref().ok_or_else(|| {
        ApiError::new("invalid_body", "missing `resource`").at(format!("{at}/resource"))
    })?;
    let user = request
        .subject(o, Some(&subject.id))
        .map_err(|err| err.at(format!("{at}/subject/id")))?;
    let p = privilege(&action.name, &format!("{at}/action/name"))?;
    let id = resource.id.as_deref().ok_or_else(|| {
        ApiError::new("invalid_body", "missing resource.id").at(format!("{at}/resource/id"))
    })?;
    let Some(r) = o.record_id(id) else {
        return Ok((
            false,
            schema::AzContext {
                grants: None,
                reason: format!("record `{id}` does not exist"),
            },
        ));
    };
    if let Some(kind) = &resource.kind {
        let table = &o.table(o.record(r).table).name;
        if kind != table {
            return Ok((
                false,
                schema::AzContext {
                    grants: None,
                    reason: format!("record `{id}` is a `{table}`, not a `{kind}`"),
                },
            ));
        }
    }
    request
        .may_ask_about_record(o, Some(user), r, id)
        .map_err(|err| err.at(format!("{at}/resource/id")))?;
    let d = o.explain(user, p, r);
    let kinds: Vec<&'static str> = d.paths.iter().map(|p| p.kind().name()).collect();
    Ok((
        d.allowed,
        schema::AzContext {
            grants: Some(kinds),
            reason: o.render_decision(&d),
        },
    ))
}

pub(crate) async fn az_evaluation(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let e: AzEvaluation = parse(&headers, &body)?;
    let loaded = request.handle.read().await;
    let (decision, context) = az_decide(&loaded.org, &request, &e, "")?;
    state.metrics.decided(1);
    answer(schema::AzDecision { context, decision })
}

/// Batches up to this many evaluations are decided on the async worker.
const SMALL_BATCH: usize = 64;

/// Every evaluation of a batch, each merged with the batch's defaults.
fn evaluate_all(
    o: &Organization,
    request: &OrgRequest,
    req: AzEvaluations,
) -> Result<Vec<schema::AzDecision>, ApiError> {
    let AzEvaluations {
        defaults,
        evaluations,
    } = req;
    let list = if evaluations.is_empty() {
        vec![defaults.clone()]
    } else {
        evaluations
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.into_iter().enumerate() {
        let merged = AzEvaluation {
            subject: e.subject.or_else(|| defaults.subject.clone()),
            action: e.action.or_else(|| defaults.action.clone()),
            resource: e.resource.or_else(|| defaults.resource.clone()),
            context: None,
        };
        let (decision, context) = az_decide(o, request, &merged, &format!("/evaluations/{i}"))?;
        out.push(schema::AzDecision { context, decision });
    }
    Ok(out)
}

pub(crate) async fn az_evaluations(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req: AzEvaluations = parse(&headers, &body)?;
    if req.evaluations.len() > limits::MAX_EVALUATIONS {
        return Err(ApiError::new(
            "bad_batch",
            format!(
                "at most {} evaluations per request",
                limits::MAX_EVALUATIONS
            ),
        )
        .at("/evaluations"));
    }
    // A large batch runs on a blocking thread: its decisions never hold up an async worker.
    let out = if req.evaluations.len() > SMALL_BATCH {
        let handle = Arc::clone(&request.handle);
        tokio::task::spawn_blocking(move || {
            evaluate_all(&handle.read_blocking().org, &request, req)
        })
        .await
        .map_err(|e| AppError::internal(format!("evaluations task failed: {e}")))??
    } else {
        evaluate_all(&request.handle.read().await.org, &request, req)?
    };
    state.metrics.decided(out.len());
    answer(schema::AzDecisions { evaluations: out })
}

/// A search: the records of `resource.type` on which the subject holds the action.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AzSearch {
    subject: AzSubject,
    action: AzAction,
    resource: AzResource,
    #[serde(default)]
    page: Option<AzPage>,
}

/// A search's page: the previous page's token and a size.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AzPage {
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

pub(crate) async fn az_search_resource(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req: AzSearch = parse(&headers, &body)?;
    let handle = Arc::clone(&request.handle);
    let app = Arc::clone(&state);
    tokio::task::spawn_blocking(move || {
        let loaded = handle.read_blocking();
        let o = &loaded.org;
        let user = request
            .subject(o, Some(&req.subject.id))
            .map_err(|e| e.at("/subject/id"))?;
        let p = privilege(&req.action.name, "/action/name")?;
        let kind = req.resource.kind.as_deref().ok_or_else(|| {
            ApiError::new("invalid_body", "missing resource.type").at("/resource/type")
        })?;
        let table = o.table_id(kind).ok_or_else(|| {
            ApiError::not_found(format!("unknown table `{kind}`")).at("/resource/type")
        })?;
        let page = req.page.as_ref();
        // Only records the asker may read too (D35): a search is never a way to list records
        // the caller cannot read.
        let readers = request.bounding_readers(user);
        let asker: Vec<&str> = readers.iter().map(|r| o.user(*r).name.as_str()).collect();
        let query = format!(
            "authzen\n{}\n{}\n{}\n{kind}\n{}",
            handle.name,
            o.user(user).name,
            p.name(),
            asker.join("\n")
        );
        let (found, next) = page_of(
            o,
            &app.cursors,
            &query,
            (user, p, table, &readers),
            page.and_then(|p| p.limit),
            page.and_then(|p| p.next_token.as_deref())
                .filter(|t| !t.is_empty()),
            ("/page/limit", "/page/next_token"),
        )?;
        let results = found
            .into_iter()
            .map(|r| schema::AzFound {
                id: o.record(r).key.to_string(),
                kind: kind.to_owned(),
            })
            .collect();
        answer(schema::AzSearchAnswer {
            page: schema::AzNextPage {
                next_token: next.unwrap_or_default(),
            },
            results,
        })
    })
    .await
    .map_err(|e| AppError::internal(format!("search task failed: {e}")))?
}

// ----- keys (used by tests and the CLI against a server) -----

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    user: String,
}

pub(crate) async fn create_key(
    State(state): State<Arc<AppState>>,
    request: OrgRequest,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req: NewKey = parse(&headers, &body)?;
    {
        let loaded = request.handle.read().await;
        request.require_system_administrator(&loaded.org, "create API keys")?;
        if request.acting.impersonator().is_some() {
            return Err(ApiError::new(
                "bad_actor",
                "API keys are not created on behalf of another user",
            ));
        }
        if loaded.org.user_id(&req.user).is_none() {
            return Err(ApiError::not_found(format!("unknown user `{}`", req.user)).at("/user"));
        }
    }
    let user = req.user.clone();
    let org = request.handle.name.clone();
    let (record, secret) = blocking(&state.store, move |store| {
        crate::auth::create_api_key(store, &org, &user, now_ms())
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(schema::KeyAnswer {
            id: record.id,
            key: secret,
            user: record.user,
        }),
    )
        .into_response())
}

/// `GET /api/v1/orgs/{org}/digest`: the SHA-256 of the organisation's canonical dump (every
/// entity, in id order) at this node's revision, and whether its derived indexes and record
/// index equal a rebuild — two nodes with the same digest at the same revision hold the same
/// state. The root key, or a System Administrator of the organisation. `indexes=false` leaves
/// out the two rebuilds (the costly part on a large organisation: the answer then has no
/// `indexes_current` or `record_index_current`).
pub(crate) async fn digest(request: OrgRequest, Query(params): Query<DigestParams>) -> ApiResult {
    let indexes = params.indexes.unwrap_or(true);
    let digest = tokio::task::spawn_blocking(move || {
        // A long read: in the writer's turn, so that checks are not held up (read_long_blocking).
        let loaded = request.handle.read_long_blocking();
        request.require_system_administrator(&loaded.org, "read the digest")?;
        use sha2::Digest as _;
        let dump = loaded.org.canonical_dump();
        Ok::<_, ApiError>(schema::DigestAnswer {
            indexes_current: indexes.then(|| loaded.org.indexes_are_current()),
            record_index_current: indexes.then(|| loaded.org.record_index_is_current()),
            records: loaded.org.record_ids().count(),
            revision: loaded.revision,
            sha256: hex::encode(sha2::Sha256::digest(dump.as_bytes())),
        })
    })
    .await
    .map_err(|e| AppError::internal(format!("digest task failed: {e}")))??;
    answer(digest)
}
