//! OIDC bearer tokens: a JWT is validated against a configured issuer, audience and JWKS (from a
//! file, or a URL fetched at start and again when an unknown key id appears, at most every 30 s).
//! A token belongs to one organisation: the one the configuration binds the issuer to, or else
//! the one its `strata_organization` claim names; it is refused anywhere else. Inside it, the
//! token's `oid` claim maps to the user whose `azureactivedirectoryobjectid` column holds it
//! (a column only System Administrators set, D29). `sub` maps to the user of that name only
//! when the configuration says so (`subject_is_user_name`): never as a silent fallback.

use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

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

    /// Validates a token: signature, issuer, audience, expiry.
    pub(crate) fn validate(&self, token: &str) -> Result<Identity, ApiError> {
        let bad = |m: String| ApiError::unauthenticated(format!("invalid bearer token: {m}"));
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
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| bad(e.to_string()))?;
        let claims = data.claims;
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
