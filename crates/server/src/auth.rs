//! Authentication: API keys (random, stored as SHA-256, each bound to a user of one
//! organisation) and the server's root key (hosting administration).

use std::sync::Arc;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use strata_store::{ApiKeyRecord, Store};

use crate::error::ApiError;
use strata_app::AppError;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The holder of the root key: administers organisations and acts as the system.
    Root,
    /// A bearer token from the configured OIDC issuer; the user is found in each organisation.
    Identity(crate::oidc::Identity),
    /// A user of one organisation.
    User {
        /// The organisation the key belongs to.
        org: String,
        /// The user the key acts as.
        user: String,
    },
}

/// SHA-256 of a secret, hex.
#[must_use]
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_hex(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    random_fill(&mut buf)?;
    Ok(hex::encode(buf))
}

/// Fills `buf` from the operating system's random source (`getrandom(2)`: one system call,
/// no file opened — a Web API `CreateMultiple` takes a new id per record).
pub(crate) fn random_fill(buf: &mut [u8]) -> Result<(), ApiError> {
    getrandom::fill(buf).map_err(|e| AppError::internal(format!("random: {e}")).into())
}

/// Creates an API key for a user; returns the stored record and the secret (shown once).
pub fn create_api_key(
    store: &dyn Store,
    org: &str,
    user: &str,
    now_ms: i64,
) -> Result<(ApiKeyRecord, String), ApiError> {
    let secret = format!("strata_{}", random_hex(24)?);
    let record = ApiKeyRecord {
        id: format!("key_{}", random_hex(6)?),
        organization: org.to_owned(),
        user: user.to_owned(),
        key_hash: hash_secret(&secret),
        created_ms: now_ms,
        revoked_ms: None,
    };
    store.put_api_key(&record)?;
    Ok((record, secret))
}

/// Registers a known secret as a user's API key (`strata demo --admin-key`).
pub fn register_api_key(
    store: &dyn Store,
    org: &str,
    user: &str,
    secret: &str,
    now_ms: i64,
) -> Result<ApiKeyRecord, ApiError> {
    let key_hash = hash_secret(secret);
    if let Some(existing) = store.api_key_by_hash(&key_hash)? {
        return Ok(existing);
    }
    let record = ApiKeyRecord {
        id: format!("key_{}", random_hex(6)?),
        organization: org.to_owned(),
        user: user.to_owned(),
        key_hash,
        created_ms: now_ms,
        revoked_ms: None,
    };
    store.put_api_key(&record)?;
    Ok(record)
}

/// The secret a request presents: `Authorization: Bearer …` or `X-Api-Key: …`.
fn presented(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let text = v
            .to_str()
            .map_err(|_| ApiError::unauthenticated("the Authorization header is not text"))?;
        let token = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthenticated("use `Authorization: Bearer <key>`"))?;
        return Ok(Some(token.trim().to_owned()));
    }
    if let Some(v) = headers.get("x-api-key") {
        let text = v
            .to_str()
            .map_err(|_| ApiError::unauthenticated("the X-Api-Key header is not text"))?;
        return Ok(Some(text.trim().to_owned()));
    }
    Ok(None)
}

/// Recently verified API keys, so that a request does not read the store: an entry is trusted
/// for [`KEY_CACHE_TTL`], so a key revoked from another process stops working within that time
/// (at once when revoked through this server).
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    entries: std::sync::RwLock<
        std::collections::HashMap<String, (Option<ApiKeyRecord>, std::time::Instant)>,
    >,
}

/// How long a verified (or unknown) key is remembered.
pub(crate) const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl KeyCache {
    /// The key of this hash: from the cache, or else read from the store in a blocking task
    /// (a store call may wait on the disk or the network).
    pub(crate) async fn get(
        &self,
        store: &Arc<dyn Store>,
        hash: &str,
    ) -> Result<Option<ApiKeyRecord>, ApiError> {
        if let Some((record, at)) = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(hash)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(record.clone());
        }
        let record = crate::blocking(store, {
            let hash = hash.to_owned();
            move |store| Ok(store.api_key_by_hash(&hash)?)
        })
        .await?;
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() > 100_000 {
            entries.clear();
        }
        entries.insert(hash.to_owned(), (record.clone(), std::time::Instant::now()));
        Ok(record)
    }

    /// Forgets every cached key (after a revocation or an organisation's removal).
    pub(crate) fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Whether a presented secret is a JWT (three base64url parts).
fn looks_like_jwt(secret: &str) -> bool {
    secret.starts_with("ey") && secret.split('.').count() == 3
}

/// Authenticates a request.
pub(crate) async fn authenticate(
    store: &Arc<dyn Store>,
    keys: &KeyCache,
    root_key_hash: Option<&str>,
    oidc: Option<&crate::oidc::Oidc>,
    headers: &HeaderMap,
) -> Result<Caller, ApiError> {
    let secret = presented(headers)?.ok_or_else(|| {
        ApiError::unauthenticated(
            "this request needs an API key or a bearer token (Authorization: Bearer …)",
        )
    })?;
    if looks_like_jwt(&secret) {
        return match oidc {
            Some(o) => o.validate(&secret).map(Caller::Identity),
            None => Err(ApiError::unauthenticated(
                "bearer tokens are not accepted: this server has no OIDC issuer configured",
            )),
        };
    }
    let hash = hash_secret(&secret);
    if root_key_hash.is_some_and(|r| r == hash) {
        return Ok(Caller::Root);
    }
    match keys.get(store, &hash).await? {
        Some(k) if k.revoked_ms.is_none() => Ok(Caller::User {
            org: k.organization,
            user: k.user,
        }),
        Some(_) => Err(ApiError::unauthenticated("this API key was revoked")),
        None => Err(ApiError::unauthenticated("unknown API key")),
    }
}
