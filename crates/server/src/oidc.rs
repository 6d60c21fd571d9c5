//! OIDC bearer tokens: a JWT is validated against a configured issuer, audience and JWKS (from a
//! file, or a URL fetched at start and again when an unknown key id appears, at most every 30 s).
//! A token belongs to one organisation: the one the configuration binds the issuer to, or else
//! the one its `strata_organization` claim names; it is refused anywhere else. Inside it, the
//! token's `oid` claim maps to the user whose `azureactivedirectoryobjectid` column holds it
//! (a column only System Administrators set, D29). `sub` maps to the user of that name only
//! when the configuration says so (`subject_is_user_name`): never as a silent fallback. The
//! users are found by `oid` through an index per organisation ([`ObjectIds`]), rebuilt when the
//! organisation changes, not by a scan of every user per request.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use strata_app::OrgHandle;
use strata_engine::{Organization, UserId, Value};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};

use crate::error::ApiError;

/// Where the signing keys come from.
#[derive(Clone, Debug)]
pub enum JwksSource {
    /// A JWKS document on disk.
    File(PathBuf),
    /// A JWKS URL.
    Url(String),
}

/// OIDC settings.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// The signing keys.
    pub jwks: JwksSource,
    /// The organisation every token of this issuer belongs to; `None`: each token names its
    /// own in the `strata_organization` claim.
    pub organization: Option<String>,
    /// Map `sub` to the user of that name (instead of `oid` to `azureactivedirectoryobjectid`).
    pub subject_is_user_name: bool,
    /// Console sign-in with the authorization code flow and PKCE, when set (docs/console.md).
    pub sign_in: Option<OidcSignIn>,
}

/// The console's OIDC sign-in (authorization code with PKCE, S256): the issuer's endpoints and
/// this server's client registration.
#[derive(Clone, Debug)]
pub struct OidcSignIn {
    /// Where the browser is sent to sign in.
    pub authorization_endpoint: String,
    /// Where the code is exchanged for tokens.
    pub token_endpoint: String,
    /// The client id registered at the issuer; the id token's `aud`.
    pub client_id: String,
    /// The client secret, for a confidential client (sent as `client_secret_post`).
    pub client_secret: Option<String>,
    /// The callback URL registered at the issuer (`…/console/oidc/callback`); without it, the
    /// URL is made from the request's host and the server's scheme.
    pub redirect_uri: Option<String>,
}

/// The claim naming a token's organisation when the configuration binds none.
pub const ORGANIZATION_CLAIM: &str = "strata_organization";

/// Who a valid token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The `sub` claim.
    pub subject: String,
    /// The `oid` claim (Entra object id), when present.
    pub object_id: Option<String>,
    /// The organisation the token belongs to.
    pub organization: String,
    /// Whether `sub` names the user (configured), rather than `oid` identifying them.
    pub subject_is_user_name: bool,
}

#[derive(Debug)]
pub(crate) struct Oidc {
    config: OidcConfig,
    keys: RwLock<(JwkSet, Instant)>,
}

fn fetch(source: &JwksSource) -> Result<JwkSet, String> {
    let text = match source {
        JwksSource::File(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        JwksSource::Url(url) => ureq::get(url)
            .call()
            .map_err(|e| format!("{url}: {e}"))?
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?,
    };
    serde_json::from_str(&text).map_err(|e| format!("the JWKS is not valid: {e}"))
}

impl Oidc {
    pub(crate) fn load(config: OidcConfig) -> Result<Oidc, String> {
        let keys = fetch(&config.jwks)?;
        Ok(Oidc {
            config,
            keys: RwLock::new((keys, Instant::now())),
        })
    }

    fn key(&self, kid: Option<&str>) -> Option<jsonwebtoken::jwk::Jwk> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match kid {
            Some(k) => keys.0.find(k).cloned(),
            None if keys.0.keys.len() == 1 => keys.0.keys.first().cloned(),
            None => None,
        }
    }

    fn refresh(&self) {
        let due = {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            keys.1.elapsed() > Duration::from_secs(30)
        };
        if due
            && matches!(self.config.jwks, JwksSource::Url(_))
            && let Ok(set) = fetch(&self.config.jwks)
        {
            *self
                .keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = (set, Instant::now());
        }
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Validates a token: signature, issuer, audience, expiry.
    pub(crate) fn validate(&self, token: &str) -> Result<Identity, ApiError> {
        self.validate_for(token, &self.config.audience, None, "bearer token")
    }

    /// Validates an id token of the console's sign-in: as a bearer token, but its audience is
    /// the client id (OIDC Core 3.1.3.7) and its `nonce` must be the one the sign-in sent.
    pub(crate) fn validate_id_token(
        &self,
        token: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<Identity, ApiError> {
        self.validate_for(token, client_id, Some(nonce), "id token")
    }

    fn validate_for(
        &self,
        token: &str,
        audience: &str,
        nonce: Option<&str>,
        what: &str,
    ) -> Result<Identity, ApiError> {
        let bad = |m: String| ApiError::unauthenticated(format!("invalid {what}: {m}"));
        let header = decode_header(token).map_err(|e| bad(e.to_string()))?;
        let jwk = match self.key(header.kid.as_deref()) {
            Some(k) => k,
            None => {
                self.refresh();
                self.key(header.kid.as_deref())
                    .ok_or_else(|| bad(format!("unknown key id {:?}", header.kid)))?
            }
        };
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| bad(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| bad(e.to_string()))?;
        let claims = data.claims;
        if let Some(expected) = nonce {
            let got = claims.get("nonce").and_then(|v| v.as_str()).unwrap_or("");
            if !crate::console::same_secret(got, expected) {
                return Err(bad(
                    "its `nonce` is not the one this sign-in sent".to_owned()
                ));
            }
        }
        let subject = claims
            .get("sub")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("no `sub` claim".to_owned()))?
            .to_owned();
        let object_id = claims
            .get("oid")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let organization = match &self.config.organization {
            Some(org) => org.clone(),
            None => claims
                .get(ORGANIZATION_CLAIM)
                .and_then(|v| v.as_str())
                .ok_or_else(|| {
                    bad(format!(
                        "no `{ORGANIZATION_CLAIM}` claim: the token does not say which organization it belongs to"
                    ))
                })?
                .to_owned(),
        };
        Ok(Identity {
            subject,
            object_id,
            organization,
            subject_is_user_name: self.config.subject_is_user_name,
        })
    }
}

/// The column that holds a user's Entra object id, which a token's `oid` claim names.
pub const OBJECT_ID_COLUMN: &str = "azureactivedirectoryobjectid";

/// Per organisation, its users by object id (the [`OBJECT_ID_COLUMN`] of their `systemuser`
/// record), so that a token's `oid` is found in constant time. An index is built from one
/// state of the organisation and used only while the organisation is in that state — the same
/// [`OrgHandle::generation`] — so a changed, cleared or new object id, a disabled user (whose
/// state the caller checks), or an organisation deleted and created again is never answered
/// from an older state. Building one costs a pass over the users, once per change of the
/// organisation that is followed by a request with a token.
#[derive(Debug, Default)]
pub(crate) struct ObjectIds {
    by_org: Mutex<HashMap<String, ObjectIdIndex>>,
}

#[derive(Debug)]
struct ObjectIdIndex {
    handle: Weak<OrgHandle>,
    generation: u64,
    users: Arc<HashMap<String, UserId>>,
}

impl ObjectIds {
    /// The user whose object id is `oid`: the first by id when several hold it, as a scan
    /// would find. `org` must be `handle`'s organisation, read under its lock.
    pub(crate) fn user(
        &self,
        handle: &Arc<OrgHandle>,
        org: &Organization,
        oid: &str,
    ) -> Option<UserId> {
        let generation = handle.generation();
        let cached = self
            .lock()
            .get(&handle.name)
            .filter(|index| index.generation == generation)
            .map(|index| Arc::clone(&index.users));
        let users = match cached {
            Some(users) => users,
            None => {
                // Built outside the lock: another organisation's lookups go on meanwhile.
                let users = Arc::new(index_users(org));
                let mut by_org = self.lock();
                by_org.retain(|_, index| index.handle.strong_count() > 0);
                by_org.insert(
                    handle.name.clone(),
                    ObjectIdIndex {
                        handle: Arc::downgrade(handle),
                        generation,
                        users: Arc::clone(&users),
                    },
                );
                users
            }
        };
        users.get(oid).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ObjectIdIndex>> {
        self.by_org
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Every user holding an object id, by object id (the first by id wins).
fn index_users(org: &Organization) -> HashMap<String, UserId> {
    let mut users = HashMap::new();
    for user in org.user_ids() {
        if let Value::Text(oid) = org.record(org.user(user).record).field(OBJECT_ID_COLUMN) {
            users.entry(oid.clone()).or_insert(user);
        }
    }
    users
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use strata_app::{Actor, Registry};
    use strata_store::{MemoryStore, Store};

    use super::*;

    fn ops(value: serde_json::Value) -> Vec<strata_ops::Operation> {
        serde_json::from_value(value).unwrap()
    }

    /// The index a lookup used, to tell whether the next one built another.
    fn index_of(ids: &ObjectIds, org: &str) -> Arc<HashMap<String, UserId>> {
        Arc::clone(&ids.lock().get(org).unwrap().users)
    }

    /// The name of the user `oid` finds.
    async fn find(ids: &ObjectIds, handle: &Arc<OrgHandle>, oid: &str) -> Option<String> {
        let loaded = handle.read().await;
        ids.user(handle, &loaded.org, oid)
            .map(|u| loaded.org.user(u).name.clone())
    }

    /// One pass over the users per state of the organisation, then lookups in the index: the
    /// scan of every user per request is gone.
    #[tokio::test]
    async fn the_index_is_built_once_per_state_of_the_organisation() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new().unwrap());
        let registry = Registry::default();
        let handle = registry.create(store.as_ref(), "o").unwrap();
        let mut setup = vec![serde_json::json!({"op": "add_business_unit", "name": "Root"})];
        for i in 0..1_000 {
            setup.push(serde_json::json!({"op": "add_user", "name": format!("u{i}")}));
            setup.push(
                serde_json::json!({"op": "set_user_fields", "user": format!("u{i}"),
                "fields": {"azureactivedirectoryobjectid": format!("oid-{i}")}}),
            );
        }
        handle
            .write(Arc::clone(&store), ops(setup.into()), Actor::Root)
            .await
            .unwrap();
        let ids = ObjectIds::default();
        assert_eq!(find(&ids, &handle, "oid-7").await.as_deref(), Some("u7"));
        let first = index_of(&ids, "o");
        assert_eq!(first.len(), 1_000);
        for i in [0, 500, 999] {
            let found = find(&ids, &handle, &format!("oid-{i}")).await;
            assert_eq!(found, Some(format!("u{i}")));
        }
        assert_eq!(find(&ids, &handle, "oid-x").await, None);
        assert!(
            Arc::ptr_eq(&first, &index_of(&ids, "o")),
            "lookups in the same state use the same index"
        );
        // A write: the next lookup builds the index of the new state.
        handle
            .write(
                Arc::clone(&store),
                ops(serde_json::json!([{"op": "set_user_fields", "user": "u7",
                    "fields": {"azureactivedirectoryobjectid": "oid-new"}}])),
                Actor::Root,
            )
            .await
            .unwrap();
        assert_eq!(find(&ids, &handle, "oid-7").await, None);
        assert_eq!(find(&ids, &handle, "oid-new").await.as_deref(), Some("u7"));
        assert!(!Arc::ptr_eq(&first, &index_of(&ids, "o")));
    }
}
