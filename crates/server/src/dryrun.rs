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
