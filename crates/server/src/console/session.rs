//! The console's sessions: a sign-in with an API key opens a server-side session named by a
//! random 256-bit id (the cookie holds only that id, never the key); the session remembers the
//! key's hash (so that a revoked key ends it), a per-session CSRF token, the role editor's
//! pending changes and one message for the next page. Sessions live in memory with an idle
//! and an absolute expiry (D74): a restart signs everyone out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use strata_engine::{Depth, Privilege};

use crate::error::ApiError;

/// The cookie's name.
pub(crate) const COOKIE: &str = "strata_console";

/// A session ends after this long without a request.
pub(crate) const IDLE: Duration = Duration::from_secs(60 * 60);

/// A session ends this long after its sign-in, however busy.
pub(crate) const ABSOLUTE: Duration = Duration::from_secs(12 * 60 * 60);

/// The most sessions kept; past it the oldest are dropped.
pub(crate) const MAX_SESSIONS: usize = 10_000;

/// The most cells one pending role change may hold (a write takes at most
/// [`crate::limits::MAX_BATCH`] operations).
pub(crate) const MAX_DRAFT_CELLS: usize = 5_000;

/// A message shown once on the next page.
#[derive(Clone, Debug)]
pub(crate) struct Flash {
    /// Whether it reports a refusal or failure.
    pub(crate) error: bool,
    pub(crate) text: String,
}

/// The pending change of one role: cells, (table, privilege) → the new depth, and
/// miscellaneous privileges → held or not (D82).
#[derive(Clone, Debug, Default)]
pub(crate) struct Draft {
    pub(crate) cells: BTreeMap<(String, Privilege), Depth>,
    pub(crate) misc: BTreeMap<String, bool>,
}

impl Draft {
    /// The pending changes, cells and miscellaneous privileges.
    pub(crate) fn len(&self) -> usize {
        self.cells.len() + self.misc.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.misc.is_empty()
    }
}

/// What a refusal is shown on: a cell of the grid or a miscellaneous privilege.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Pending {
    Cell(String, Privilege),
    Misc(String),
}

/// One signed-in administrator.
#[derive(Debug)]
pub(crate) struct Session {
    /// The organisation the key belongs to.
    pub(crate) org: String,
    /// The user the key acts as.
    pub(crate) user: String,
    /// What signed in: checked again on every request.
    pub(crate) credential: Credential,
    /// The token every change must carry.
    pub(crate) csrf: String,
    created: Instant,
    seen: Instant,
    /// Pending role grid changes, per role name.
    pub(crate) drafts: HashMap<String, Draft>,
    /// The refusal of the last save or dry run per role: the cell or miscellaneous privilege
    /// that caused it, when one did, and the message.
    pub(crate) refusals: HashMap<String, (Option<Pending>, String)>,
    pub(crate) flash: Option<Flash>,
}

/// What a session was opened with.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    /// SHA-256 of an API key (a revoked key ends the session).
    Key(String),
    /// An OIDC sign-in: who the id token named (the user must stay the one it maps to).
    Token(crate::oidc::Identity),
}

/// Every session, by id.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
    /// OIDC sign-ins under way.
    pub(crate) logins: super::oidc::PendingLogins,
}

/// 32 random bytes, hex.
pub(crate) fn random_id() -> Result<String, ApiError> {
    let mut buf = [0u8; 32];
    crate::auth::random_fill(&mut buf)?;
    Ok(hex::encode(buf))
}

/// Compares two secrets in time independent of where they first differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a session; answers its id.
    pub(crate) fn open(
        &self,
        org: String,
        user: String,
        credential: Credential,
    ) -> Result<String, ApiError> {
        let id = random_id()?;
        let csrf = random_id()?;
        let now = Instant::now();
        let mut all = self.lock();
        all.retain(|_, s| s.live(now));
        if all.len() >= MAX_SESSIONS {
            // The least recently seen goes.
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        all.insert(
            id.clone(),
            Session {
                org,
                user,
                credential,
                csrf,
                created: now,
                seen: now,
                drafts: HashMap::new(),
                refusals: HashMap::new(),
                flash: None,
            },
        );
        Ok(id)
    }

    /// Runs `f` on a live session (and marks it seen); `None` when there is none or it expired
    /// (an expired one is removed).
    pub(crate) fn with<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        let now = Instant::now();
        let mut all = self.lock();
        let live = all.get(id).is_some_and(|s| s.live(now));
        if !live {
            all.remove(id);
            return None;
        }
        let session = all.get_mut(id)?;
        session.seen = now;
        Some(f(session))
    }

    /// Ends a session.
    pub(crate) fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

impl Session {
    fn live(&self, now: Instant) -> bool {
        now.duration_since(self.seen) < IDLE && now.duration_since(self.created) < ABSOLUTE
    }
}

/// The session id the request's cookie names.
pub(crate) fn cookie_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value of a session (`Secure` when the server speaks TLS).
pub(crate) fn set_cookie(id: &str, tls: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict{}",
        if tls { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the cookie.
pub(crate) fn clear_cookie(tls: bool) -> String {
    format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if tls { "; Secure" } else { "" }
    )
}

/// Refuses a change that a browser says comes from another site (D75): `Sec-Fetch-Site` other
/// than `same-origin`, or an `Origin` whose host is not the request's `Host` (`null` only with
/// `Sec-Fetch-Site: same-origin`). Clients that send neither (scripts) still need the session's
/// CSRF token.
pub(crate) fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = |why: String| {
        Err(ApiError::forbidden(format!(
            "cross-site request refused: {why}"
        )))
    };
    let site = headers
        .get("sec-fetch-site")
        .map(|s| s.to_str().unwrap_or(""));
    if let Some(site) = site
        && site != "same-origin"
    {
        return refuse(format!("Sec-Fetch-Site is `{site}`"));
    }
    if let Some(origin) = headers.get(axum::http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        // Under `Referrer-Policy: no-referrer` browsers send `Origin: null` with a form's POST;
        // their `Sec-Fetch-Site` (which no page can forge) then vouches for it.
        if origin == "null" && site == Some("same-origin") {
            return Ok(());
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let origin_host = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .unwrap_or("");
        if host.is_empty() || origin_host != host {
            return refuse(format!("Origin `{origin}` is not this server"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                *k,
                v.parse()
                    .unwrap_or_else(|_| axum::http::HeaderValue::from_static("")),
            );
        }
        h
    }

    #[test]
    fn cookie_is_read_only_when_well_formed() {
        let id = "ab".repeat(32);
        let h = headers(&[("cookie", &format!("x=1; {COOKIE}={id}; y=2"))]);
        assert_eq!(cookie_id(&h).as_deref(), Some(id.as_str()));
        let h = headers(&[("cookie", &format!("{COOKIE}=short"))]);
        assert_eq!(cookie_id(&h), None);
    }

    #[test]
    fn the_cookie_is_secure_under_tls() {
        let id = "ab".repeat(32);
        let tls = set_cookie(&id, true);
        assert!(
            tls.ends_with("; Secure") && tls.contains("HttpOnly; SameSite=Strict"),
            "{tls}"
        );
        assert!(!set_cookie(&id, false).contains("Secure"));
        assert!(clear_cookie(true).contains("Max-Age=0; Secure"));
    }

    #[test]
    fn cross_site_changes_are_refused() {
        assert!(same_origin(&headers(&[("host", "a:1"), ("origin", "http://a:1")])).is_ok());
        assert!(same_origin(&headers(&[("host", "a:1"), ("origin", "http://evil")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        let null = [("sec-fetch-site", "same-origin"), ("origin", "null")];
        assert!(same_origin(&headers(&null)).is_ok());
        assert!(same_origin(&headers(&[("origin", "null")])).is_err());
        assert!(same_origin(&HeaderMap::new()).is_ok());
    }

    #[test]
    fn sessions_expire_and_close() {
        let s = Sessions::default();
        let id = s
            .open("o".into(), "u".into(), Credential::Key("h".into()))
            .unwrap_or_default();
        assert_eq!(id.len(), 64);
        assert_eq!(s.with(&id, |x| x.user.clone()).as_deref(), Some("u"));
        s.close(&id);
        assert!(s.with(&id, |_| ()).is_none());
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
    }
}
