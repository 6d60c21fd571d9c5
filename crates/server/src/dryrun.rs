//! Dry runs over HTTP: `POST /api/v1/orgs/{org}/operations?dry_run=true` takes the body of a
//! write, authorizes and applies it in memory and rolls it back (`strata_app`'s `dry_run`), and
//! answers what it would change and the access difference (docs/semantics.md D54–D56).

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strata_app::{Actor, MaySee};
use strata_engine::Organization;
use strata_ops::Operation;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{OrgRequest, may_ask_about};

/// Answers a dry run of `ops` by `actor` (already checked as the write checks them).
pub(crate) async fn answer(
    state: &Arc<AppState>,
    request: &OrgRequest,
    ops: Vec<Operation>,
    actor: Actor,
) -> Result<Response, ApiError> {
    let may_see = may_see(&actor);
    let found = request
        .handle
        .dry_run(Arc::clone(&state.store), ops, actor, may_see)
        .await?;
    Ok((StatusCode::OK, Json(found.to_json())).into_response())
}

/// Whom the caller may see in the difference (D56): the root key and the system everyone; a
/// user the users D27 lets them ask about — with impersonation, both users must be allowed
/// (the impersonator may always see the user it acts for).
pub(crate) fn may_see(actor: &Actor) -> Arc<MaySee> {
    let (user, impersonator) = (
        actor.user().map(str::to_owned),
        actor.impersonator().map(str::to_owned),
    );
    Arc::new(move |org: &Organization, target| {
        let allowed = |asker: Option<&str>, exempt: Option<&str>| match asker {
            None => true,
            Some(name) => match org.user_id(name) {
                None => false,
                Some(asker) => {
                    exempt.is_some_and(|e| org.user_id(e) == Some(target))
                        || may_ask_about(org, asker, target).is_ok()
                }
            },
        };
        allowed(user.as_deref(), None) && allowed(impersonator.as_deref(), user.as_deref())
    })
}

/// The dry run in the OpenAPI document: the `dry_run` parameter of the operations route and
/// the answer's schema.
pub(crate) fn document(paths: &mut serde_json::Map<String, serde_json::Value>, operations: &str) {
    use serde_json::json;
    let Some(post) = paths.get_mut(operations).and_then(|p| p.get_mut("post")) else {
        return;
    };
    if let Some(parameters) = post
        .get_mut("parameters")
        .and_then(serde_json::Value::as_array_mut)
    {
        parameters.push(json!({
            "name": "dry_run", "in": "query", "required": false, "schema": { "type": "boolean" },
            "description": "authorize and apply the batch in memory, answer its changes and access difference, and roll it back: nothing written, no audit, no revision (D54)"
        }));
    }
    let source = json!({ "type": "object", "properties": {
        "depth": { "type": "string" }, "role": { "type": "string" },
        "team": { "type": ["string", "null"] }, "team_only": { "type": "boolean" },
        "business_unit": { "type": "string" } } });
    let before_after = json!({ "type": "object", "properties": {
        "before": { "type": "boolean" }, "after": { "type": "boolean" } } });
    post["responses"]["200"]["content"]["application/json"]["schema"] = json!({
        "description": "a write: `{revision, changes}` (per operation, how many changes); a dry run: the object below",
        "type": "object",
        "properties": {
            "dry_run": { "type": "boolean" },
            "revision": { "type": "integer", "description": "the revision the batch was tried on (unchanged)" },
            "changes": { "type": "array", "items": { "type": "object", "properties": {
                "op": { "type": "string" },
                "changes": { "type": "array", "items": { "type": "object" } } } } },
            "difference": { "type": "object", "properties": {
                "withheld": { "type": "integer", "description": "users whose access changes whom the caller may not ask about (D56)" },
                "users": { "type": "array", "items": { "type": "object", "properties": {
                    "user": { "type": "string" },
                    "new": { "type": "boolean" },
                    "enabled": before_after,
                    "system_administrator": before_after,
                    "privileges": { "type": "array", "items": { "type": "object", "properties": {
                        "table": { "type": "string" }, "privilege": { "type": "string" },
                        "before": { "type": "string" }, "after": { "type": "string" },
                        "lost": { "type": "array", "items": source },
                        "gained": { "type": "array", "items": source } } } },
                    "records": { "type": "array", "items": { "type": "object", "properties": {
                        "table": { "type": "string" },
                        "gained": { "type": "integer" },
                        "lost": { "type": "integer" } } } } } } } } }
        }
    });
}
