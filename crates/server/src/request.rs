//! The one opening of every organisation request: authenticate → organisation (the caller's
//! own) → `min_revision` → the acting principal, resolved once (an unknown or disabled user
//! is an error, never the system; impersonation through `MSCRMCallerID` needs
//! `prvActOnBehalfOfAnotherUser`) → user-access audit. Handlers take [`OrgRequest`] as an
//! extractor, so none of them can forget a step; and the rules of whose view a request reads
//! (D27) live here: [`OrgRequest::reader`] for data, [`OrgRequest::subject`] for questions
//! about access.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use strata_engine::{Organization, Privilege, UserId};

use crate::auth::{Caller, authenticate};
use crate::error::ApiError;
use crate::{AppState, blocking, limits};
use strata_app::{AppError, OrgHandle};

/// The miscellaneous privilege that lets a user ask about another user's access (D27).
pub const CHECK_ACCESS_OF_OTHERS: &str = "prvCheckAccessOfOthers";

/// Who acts in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acting {
    /// The server's root key: hosting administration and the system. Data reads name a user.
    Root,
    /// A user of the organisation.
    User(UserId),
    /// `impersonator` (the caller) acts on behalf of `user` (D7): every decision must hold for
    /// both, and data is what both may read.
    OnBehalf {
        /// The user the request acts as.
        user: UserId,
        /// The calling user.
        impersonator: UserId,
    },
}

impl Acting {
    /// The user the request acts as (`None` for the root key).
    pub(crate) fn user(self) -> Option<UserId> {
        match self {
            Acting::Root => None,
            Acting::User(u) | Acting::OnBehalf { user: u, .. } => Some(u),
        }
    }

    /// The impersonating caller, when there is one.
    pub(crate) fn impersonator(self) -> Option<UserId> {
        match self {
            Acting::OnBehalf { impersonator, .. } => Some(impersonator),
            _ => None,
        }
    }

    /// Every user whose privileges bound the request: the user, then the impersonator.
    pub(crate) fn each(self) -> impl Iterator<Item = UserId> {
        self.user().into_iter().chain(self.impersonator())
    }

    /// The acting principal of a write, by name.
    pub(crate) fn actor(self, org: &Organization) -> strata_app::Actor {
        let name = |u: UserId| org.user(u).name.clone();
        match self {
            Acting::Root => strata_app::Actor::Root,
            Acting::User(u) => strata_app::Actor::User(name(u)),
            Acting::OnBehalf { user, impersonator } => strata_app::Actor::OnBehalf {
                user: name(user),
                impersonator: name(impersonator),
            },
        }
    }
}

/// Whom a request impersonates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OnBehalf {
    /// `MSCRMCallerID` (or `X-Strata-On-Behalf-Of`): the user's GUID (`systemuserid`) or name.
    User(String),
    /// `CallerObjectId`: the user's Microsoft Entra object id (`azureactivedirectoryobjectid`).
    ObjectId(String),
}

impl OnBehalf {
    fn header(&self) -> &'static str {
        match self {
            OnBehalf::User(_) => "MSCRMCallerID",
            OnBehalf::ObjectId(_) => "CallerObjectId",
        }
    }
}

/// The user a request impersonates: `MSCRMCallerID` (Dataverse's impersonation header),
/// `X-Strata-On-Behalf-Of`, or `CallerObjectId`; more than one is an error.
pub(crate) fn on_behalf_of(headers: &HeaderMap) -> Result<Option<OnBehalf>, ApiError> {
    let mut found = None;
    for name in ["mscrmcallerid", "x-strata-on-behalf-of", "callerobjectid"] {
        if let Some(v) = headers.get(name) {
            let text = v.to_str().map_err(|_| {
                ApiError::new("bad_header", format!("the {name} header is not text")).at(name)
            })?;
            if found.is_some() {
                return Err(ApiError::new(
                    "bad_header",
                    "name the impersonated user once: MSCRMCallerID or CallerObjectId",
                )
                .at(name));
            }
            let text = text.trim().to_owned();
            found = Some(if name == "callerobjectid" {
                OnBehalf::ObjectId(text)
            } else {
                OnBehalf::User(text)
            });
        }
    }
    Ok(found)
}

/// Finds the user whose object id a token's `oid` names ([`crate::oidc::ObjectIds`]).
pub(crate) type ObjectIdLookup<'a> = &'a dyn Fn(&str) -> Option<UserId>;

/// The calling user inside the organisation (`None` for the root key), refused when unknown
/// or disabled.
pub(crate) fn calling_user(
    org: &Organization,
    caller: &Caller,
    by_object_id: ObjectIdLookup<'_>,
) -> Result<Option<UserId>, ApiError> {
    let id = match caller {
        Caller::Root => return Ok(None),
        Caller::Identity(identity) => {
            let found = if identity.subject_is_user_name {
                org.user_id(&identity.subject)
            } else {
                identity.object_id.as_deref().and_then(by_object_id)
            };
            found.ok_or_else(|| {
                ApiError::unauthenticated(if identity.subject_is_user_name {
                    format!(
                        "no user of this organization is named by the token's subject `{}`",
                        identity.subject
                    )
                } else {
                    format!(
                        "no user of this organization has the token's `oid` {} as azureactivedirectoryobjectid",
                        identity
                            .object_id
                            .as_deref()
                            .map_or("(absent)".to_owned(), |o| format!("`{o}`"))
                    )
                })
            })?
        }
        Caller::User { user, .. } => org.user_id(user).ok_or_else(|| {
            ApiError::unauthenticated(format!("the key's user `{user}` no longer exists"))
        })?,
    };
    if !org.user(id).enabled {
        return Err(ApiError::new(
            "user_disabled",
            format!("user `{}` is disabled", org.user(id).name),
        ));
    }
    Ok(Some(id))
}

/// Resolves who acts: the caller, or the user the caller impersonates.
pub(crate) fn resolve_acting(
    org: &Organization,
    caller: &Caller,
    on_behalf: Option<&OnBehalf>,
    by_object_id: ObjectIdLookup<'_>,
) -> Result<Acting, ApiError> {
    let me = calling_user(org, caller, by_object_id)?;
    match (me, on_behalf) {
        (None, None) => Ok(Acting::Root),
        (None, Some(_)) => Err(ApiError::new(
            "bad_actor",
            "the root key acts as the system; name the user with `user` or `as` instead of MSCRMCallerID",
        )
        .at("MSCRMCallerID")),
        (Some(me), None) => Ok(Acting::User(me)),
        (Some(me), Some(other)) => {
            let user = match other {
                // Dataverse clients send the user's GUID (`systemuserid`); Strata's, the name.
                OnBehalf::User(name) => org.user_id(name).or_else(|| {
                    name.parse::<strata_engine::Guid>()
                        .ok()
                        .and_then(|g| org.user_by_guid(g))
                }),
                OnBehalf::ObjectId(oid) => by_object_id(oid),
            };
            let (OnBehalf::User(name) | OnBehalf::ObjectId(name)) = other;
            let user = user.ok_or_else(|| {
                ApiError::not_found(format!("unknown user `{name}` in {}", other.header()))
                    .at(other.header())
            })?;
            if user == me {
                return Ok(Acting::User(me));
            }
            if !org.holds_misc(me, strata_engine::ACT_ON_BEHALF) {
                return Err(ApiError::new(
                    "denied",
                    format!(
                        "user `{}` lacks {} and cannot act on behalf of `{name}`",
                        org.user(me).name,
                        strata_engine::ACT_ON_BEHALF
                    ),
                ));
            }
            if !org.user(user).enabled {
                return Err(ApiError::new(
                    "user_disabled",
                    format!("user `{name}` is disabled"),
                ));
            }
            Ok(Acting::OnBehalf {
                user,
                impersonator: me,
            })
        }
    }
}

/// An authenticated request to one organisation, opened once for every route.
#[derive(Debug)]
pub(crate) struct OrgRequest {
    /// The organisation, at `min_revision` or later.
    pub(crate) handle: Arc<OrgHandle>,
    /// Who acts.
    pub(crate) acting: Acting,
}

impl FromRequestParts<Arc<AppState>> for OrgRequest {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let caller = authenticate_request(state, &parts.headers).await?;
        let org = match org_in_path(parts.uri.path()) {
            Some(org) => org,
            None => organization_header(&caller, &parts.headers)?,
        };
        let min_revision = min_revision_in(parts.uri.query())?;
        let handle = org_at(state, &caller, &org).await?;
        if let Some(revision) = min_revision {
            ready(state, &handle, revision).await?;
        }
        let on_behalf = on_behalf_of(&parts.headers)?;
        // One read of the organisation: its state, who acts, and whether to audit the access.
        let (acting, access) = {
            let loaded = handle.read().await;
            if loaded.dirty {
                return Err(ApiError::new(
                    "database_unreachable",
                    format!(
                        "organization `{}` is being rebuilt from the database after a failed write",
                        handle.name
                    ),
                ));
            }
            let by_object_id = |oid: &str| state.object_ids.user(&handle, &loaded.org, oid);
            let acting = resolve_acting(&loaded.org, &caller, on_behalf.as_ref(), &by_object_id)?;
            (acting, access_to_audit(&loaded.org, acting))
        };
        let request = OrgRequest { handle, acting };
        if let Some((name, retention)) = access {
            request.note_access(state, name, retention);
        }
        Ok(request)
    }
}

/// Authenticates a request and counts it.
pub(crate) async fn authenticate_request(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
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

/// The organisation an authenticated request is to: the one its path names, else the
/// caller's own (the Web API's and AuthZEN's paths name none).
pub(crate) async fn organization_of(
    state: &AppState,
    path: &str,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
    let caller = authenticate_request(state, headers).await?;
    match org_in_path(path) {
        Some(org) => Ok(org),
        None => organization_header(&caller, headers),
    }
}

/// The organisation named by `/api/v1/orgs/{org}/…`.
fn org_in_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/v1/orgs/")?;
    let name = rest.split('/').next()?;
    if name.is_empty() {
        return None;
    }
    // Path segments arrive percent-encoded.
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The organisation of a request outside `/orgs/{org}` (AuthZEN): the key's own, the
/// token's own, or the root key's `X-Strata-Organization`.
fn organization_header(caller: &Caller, headers: &HeaderMap) -> Result<String, ApiError> {
    let named = headers
        .get("x-strata-organization")
        .map(|v| {
            v.to_str().map(str::to_owned).map_err(|_| {
                ApiError::new("bad_header", "X-Strata-Organization is not text")
                    .at("X-Strata-Organization")
            })
        })
        .transpose()?;
    match (caller, named) {
        (Caller::User { org, .. }, _) => Ok(org.clone()),
        (Caller::Identity(identity), _) => Ok(identity.organization.clone()),
        (Caller::Root, Some(org)) => Ok(org),
        (Caller::Root, None) => Err(ApiError::new(
            "invalid_body",
            "with the root key, name the organization in `X-Strata-Organization`",
        )
        .at("X-Strata-Organization")),
    }
}

/// `min_revision` in a query string.
fn min_revision_in(query: Option<&str>) -> Result<Option<u64>, ApiError> {
    let Some(query) = query else {
        return Ok(None);
    };
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("min_revision=") {
            return value.parse().map(Some).map_err(|_| {
                ApiError::new(
                    "bad_query",
                    format!("`min_revision` must be a revision number, not `{value}`"),
                )
                .at("min_revision")
            });
        }
    }
    Ok(None)
}

/// The organisation a caller may use, checked against the name asked for.
pub(crate) fn org_for(
    state: &AppState,
    caller: &Caller,
    org: &str,
) -> Result<Arc<OrgHandle>, ApiError> {
    let own = match caller {
        Caller::User { org: own, .. } => Some(own),
        Caller::Identity(identity) => Some(&identity.organization),
        Caller::Root => None,
    };
    match own {
        Some(own) if own != org => Err(ApiError::forbidden(format!(
            "these credentials belong to organization `{own}`, not `{org}`"
        ))),
        _ => Ok(state.registry.get(org)?),
    }
}

/// The organisation a caller may use. One this node does not know yet is looked for in the
/// store (it may have been created on another node a moment ago): only for credentials that
/// may use it, so the cost is never an anonymous caller's to choose.
pub(crate) async fn org_at(
    state: &Arc<AppState>,
    caller: &Caller,
    org: &str,
) -> Result<Arc<OrgHandle>, ApiError> {
    match org_for(state, caller, org) {
        Err(e) if e.code == "unknown_organization" => {
            let (app, name) = (Arc::clone(state), org.to_owned());
            blocking(&state.store, move |store| {
                Ok(app.registry.find(store, &name)?)
            })
            .await
        }
        other => other,
    }
}

/// Waits (bounded) until this node has applied `min_revision`.
pub(crate) async fn ready(
    state: &AppState,
    handle: &Arc<OrgHandle>,
    min_revision: u64,
) -> Result<(), ApiError> {
    Ok(handle
        .wait_for(&state.store, min_revision, state.follow.min_revision_wait)
        .await?)
}

/// The user whose access is to be audited, with the retention in force, when the organisation
/// audits user access (D12): the caller (the impersonator when there is one).
pub(crate) fn access_to_audit(org: &Organization, acting: Acting) -> Option<(String, i64)> {
    let user = acting.impersonator().or(acting.user())?;
    let settings = org.audit_settings();
    (settings.enabled && settings.user_access)
        .then(|| (org.user(user).name.clone(), settings.retention_days))
}

impl OrgRequest {
    /// Refuses anyone but a System Administrator (of every acting user) or the root key.
    pub(crate) fn require_system_administrator(
        &self,
        org: &Organization,
        what: &str,
    ) -> Result<(), ApiError> {
        for u in self.acting.each() {
            if org.system_administrator(u).is_none() {
                return Err(ApiError::new(
                    "denied",
                    format!(
                        "user `{}` is not a System Administrator: only they {what}",
                        org.user(u).name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses unless every acting user holds a miscellaneous privilege.
    pub(crate) fn require_misc(&self, org: &Organization, privilege: &str) -> Result<(), ApiError> {
        for u in self.acting.each() {
            if !org.holds_misc(u, privilege) {
                return Err(ApiError::new(
                    "denied",
                    format!("user `{}` lacks {privilege}", org.user(u).name),
                ));
            }
        }
        Ok(())
    }

    /// Whose data a read returns (D27): the acting user, and the impersonator whose view also
    /// bounds it. A user may name only themselves in `user`; the root key must name someone.
    pub(crate) fn reader(
        &self,
        org: &Organization,
        asked: Option<&str>,
    ) -> Result<(UserId, Option<UserId>), ApiError> {
        match self.acting {
            Acting::Root => {
                let name = asked.ok_or_else(|| {
                    ApiError::new(
                        "invalid_body",
                        "the root key reads as a user: name them in `user`",
                    )
                    .at("user")
                })?;
                let user = known_user(org, name)?;
                Ok((user, None))
            }
            acting => {
                let user = acting
                    .user()
                    .ok_or_else(|| AppError::internal("no acting user"))?;
                if let Some(name) = asked
                    && org.user_id(name) != Some(user)
                {
                    return Err(ApiError::new(
                        "denied",
                        format!(
                            "data is read as the caller (D27): `user` may name only `{}`; to act as another user, impersonate with MSCRMCallerID (which needs {})",
                            org.user(user).name,
                            strata_engine::ACT_ON_BEHALF
                        ),
                    )
                    .at("user"));
                }
                Ok((user, acting.impersonator()))
            }
        }
    }

    /// The user a question about access is about (D27): the acting user by default. Another
    /// user may be asked about by the root key, System Administrators, and users who hold
    /// `prvCheckAccessOfOthers` and Read on that user's `systemuser` record (every acting
    /// user, when impersonating).
    pub(crate) fn subject(
        &self,
        org: &Organization,
        asked: Option<&str>,
    ) -> Result<UserId, ApiError> {
        let target = match (asked, self.acting.user()) {
            (Some(name), _) => known_user(org, name)?,
            (None, Some(u)) => u,
            (None, None) => {
                return Err(
                    ApiError::new("invalid_body", "name the `user` the question is about")
                        .at("user"),
                );
            }
        };
        // About the acting user: no more to ask (an impersonator may already act as them).
        if Some(target) != self.acting.user() {
            for u in self.acting.each() {
                may_ask_about(org, u, target)?;
            }
        }
        Ok(target)
    }

    /// The acting users whose own reading bounds the records a question about `subject`
    /// answers with (D35): a search of what another user may act on lists only records each
    /// acting user may read too, as data is always read as the caller (D34) — the acting users
    /// other than `subject` (none for the root key; an impersonator bounds a question about the
    /// user they impersonate, D7).
    pub(crate) fn bounding_readers(&self, subject: UserId) -> Vec<UserId> {
        self.acting.each().filter(|u| *u != subject).collect()
    }

    /// Refuses a question about `subject`'s access to `record` (`key` as the asker named it)
    /// when an acting user other than `subject` cannot read the record (D35): the answer would
    /// show the record's owner, unit, sharing and the path to it — data read as someone the
    /// asker is not. The refusal is the one a read of the record gives (it tells no more).
    pub(crate) fn may_ask_about_record(
        &self,
        org: &Organization,
        subject: Option<UserId>,
        record: strata_engine::RecordId,
        key: &str,
    ) -> Result<(), ApiError> {
        self.acting_may_read(
            org,
            subject,
            record,
            key,
            "about another user's access to it",
        )
    }

    /// `denied` unless every acting user but `except` may read `record` ("… cannot read record
    /// `key`, so cannot ask `question`").
    pub(crate) fn acting_may_read(
        &self,
        org: &Organization,
        except: Option<UserId>,
        record: strata_engine::RecordId,
        key: &str,
        question: &str,
    ) -> Result<(), ApiError> {
        match self
            .acting
            .each()
            .find(|u| Some(*u) != except && !org.check(*u, Privilege::Read, record))
        {
            Some(me) => Err(ApiError::new(
                "denied",
                format!(
                    "user `{}` cannot read record `{key}`, so cannot ask {question}",
                    org.user(me).name
                ),
            )),
            None => Ok(()),
        }
    }

    /// User access auditing (D12): the first request of a user in each interval is recorded.
    pub(crate) fn note_access(&self, state: &AppState, name: String, retention: i64) {
        let key = (self.handle.name.clone(), name.clone());
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
            if seen.len() > 1_000_000 {
                seen.clear();
            }
            seen.insert(key, std::time::Instant::now());
        }
        let store = Arc::clone(&state.store);
        let org = self.handle.name.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = strata_app::audit::record_user_access(
                store.as_ref(),
                &org,
                &name,
                limits::USER_ACCESS_INTERVAL,
                retention,
            ) {
                tracing::warn!(%org, error = %e.message, "user access audit");
            }
        });
    }
}

/// A user by name, or `not_found` at `user`.
fn known_user(org: &Organization, name: &str) -> Result<UserId, ApiError> {
    org.user_id(name)
        .ok_or_else(|| ApiError::not_found(format!("unknown user `{name}`")).at("user"))
}

/// Whether `asker` may ask about `target`'s access (D27).
pub(crate) fn may_ask_about(
    org: &Organization,
    asker: UserId,
    target: UserId,
) -> Result<(), ApiError> {
    if asker == target || org.system_administrator(asker).is_some() {
        return Ok(());
    }
    if !org.holds_misc(asker, CHECK_ACCESS_OF_OTHERS) {
        return Err(ApiError::new(
            "denied",
            format!(
                "user `{}` may not ask about user `{}`: that needs {CHECK_ACCESS_OF_OTHERS} (D27)",
                org.user(asker).name,
                org.user(target).name
            ),
        ));
    }
    if !org.check(asker, Privilege::Read, org.user(target).record) {
        return Err(ApiError::new(
            "denied",
            format!(
                "user `{}` may not ask about user `{}`: no read access to that user's record",
                org.user(asker).name,
                org.user(target).name
            ),
        ));
    }
    Ok(())
}

/// Whether `user` may read the definitions of roles that belong to `unit` (D42, D47, D50):
/// Read on the `role` system table at a depth covering the unit (System Administrators
/// always). An organisation without a `role` table refuses (never open). `what` names what is
/// read, for the refusal.
pub(crate) fn require_role_read(
    org: &Organization,
    user: UserId,
    unit: strata_engine::BusinessUnitId,
    what: &str,
) -> Result<(), ApiError> {
    let Some(table) = org.table_id("role") else {
        return Err(AppError::internal("no `role` table").into());
    };
    let decision = org.explain_on_unit(user, table, Privilege::Read, unit);
    if decision.allowed {
        return Ok(());
    }
    Err(ApiError::new(
        "denied",
        format!(
            "user `{}` may not read {what}: {}",
            org.user(user).name,
            org.render_decision(&decision)
        ),
    ))
}
