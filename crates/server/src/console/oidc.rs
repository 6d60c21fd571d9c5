//! OIDC sign-in to the console: the authorization code flow with PKCE (RFC 7636, S256) and a
//! nonce (D84). `GET /console/oidc/start` keeps a pending login server-side — keyed by a
//! random `state`, holding the nonce, the PKCE verifier and the callback URL, for 10 minutes,
//! at most [`MAX_PENDING`] — and sends the browser to the issuer's authorization endpoint.
//! A `SameSite=Lax` cookie holding the `state` binds the sign-in to the browser that started it.
//! `GET /console/oidc/callback` takes the pending login of its `state` (once, and only from
//! that browser), exchanges the
//! code at the token endpoint with the verifier, validates the id token with the bearer
//! tokens' validator (issuer, the client id as audience, expiry, signature by the JWKS) and
//! the nonce, finds the user exactly as a bearer token's (`oid`, never a fallback) and opens
//! a session as an API key's sign-in does. Every failure goes back to the sign-in page with
//! the reason and no session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{DOCTYPE, html};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::session::{self, Credential};
use super::{Sessions, encode, html_response, redirect, sign_in_refusal};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::oidc::OidcSignIn;
use crate::request::{calling_user, org_at};

/// How long a sign-in may take between the start and the callback.
pub(crate) const PENDING_FOR: Duration = Duration::from_secs(10 * 60);

/// The most sign-ins under way at once; past it the oldest is dropped.
pub(crate) const MAX_PENDING: usize = 1_000;

/// The cookie that binds a sign-in to the browser that started it (login CSRF): `SameSite=Lax`,
/// since the callback is a navigation from the issuer's site, which a `Strict` cookie misses.
pub(crate) const LOGIN_COOKIE: &str = "strata_console_login";

fn login_cookie(value: &str, max_age: u64, tls: bool) -> String {
    format!(
        "{LOGIN_COOKIE}={value}; Path=/console/oidc; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if tls { "; Secure" } else { "" }
    )
}

/// The login cookie's value, when the request carries one.
fn login_cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LOGIN_COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// The largest token endpoint answer read.
const MAX_TOKEN_ANSWER: u64 = 64 * 1024;

/// A sign-in under way.
#[derive(Debug)]
struct PendingLogin {
    nonce: String,
    verifier: String,
    redirect_uri: String,
    created: Instant,
}

/// The sign-ins under way, by `state`.
#[derive(Debug, Default)]
pub(crate) struct PendingLogins {
    by_state: Mutex<HashMap<String, PendingLogin>>,
}

impl PendingLogins {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingLogin>> {
        self.by_state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn begin(&self, state: String, login: PendingLogin) {
        let now = Instant::now();
        let mut all = self.lock();
        all.retain(|_, l| now.duration_since(l.created) < PENDING_FOR);
        while all.len() >= MAX_PENDING {
            let Some(oldest) = all
                .iter()
                .min_by_key(|(_, l)| l.created)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            all.remove(&oldest);
        }
        all.insert(state, login);
    }

    /// The pending login of `state`, removed (a state is used once); `None` when unknown,
    /// used or expired.
    fn take(&self, state: &str) -> Option<PendingLogin> {
        let login = self.lock().remove(state)?;
        (login.created.elapsed() < PENDING_FOR).then_some(login)
    }
}

/// Base64url without padding (RFC 4648 §5), as PKCE and JWTs write it.
pub(crate) fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The S256 code challenge of a verifier: base64url(SHA-256(verifier)).
pub(crate) fn code_challenge(verifier: &str) -> String {
    base64_url(&Sha256::digest(verifier.as_bytes()))
}

/// 256 random bits, base64url.
fn random_token() -> Result<String, ApiError> {
    let mut buf = [0u8; 32];
    crate::auth::random_fill(&mut buf)?;
    Ok(base64_url(&buf))
}

/// The sign-in configuration, or why there is none.
fn configured(state: &AppState) -> Option<(&crate::oidc::Oidc, &OidcSignIn)> {
    let oidc = state.oidc.as_ref()?;
    Some((oidc, oidc.config().sign_in.as_ref()?))
}

/// The callback URL: the configured one, or this server's from the request's `Host`.
fn redirect_uri(state: &AppState, config: &OidcSignIn, headers: &HeaderMap) -> Option<String> {
    if let Some(uri) = &config.redirect_uri {
        return Some(uri.clone());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let fine = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    let scheme = if state.tls { "https" } else { "http" };
    fine.then(|| format!("{scheme}://{host}/console/oidc/callback"))
}

/// `GET /console/oidc/start`: a pending login, and the browser sent to the issuer.
pub(crate) async fn start(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
) -> Response {
    let Some((_, config)) = configured(&state) else {
        return sign_in_refusal(
            &state,
            StatusCode::NOT_FOUND,
            "Single sign-on is not configured on this server.",
        );
    };
    let Some(callback) = redirect_uri(&state, config, &headers) else {
        return sign_in_refusal(
            &state,
            StatusCode::BAD_REQUEST,
            "Single sign-on: the request does not name this server's host.",
        );
    };
    let tokens = (random_token(), random_token(), random_token());
    let (Ok(login_state), Ok(nonce), Ok(verifier)) = tokens else {
        return sign_in_refusal(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Single sign-on: no randomness for the sign-in.",
        );
    };
    let challenge = code_challenge(&verifier);
    let separator = if config.authorization_endpoint.contains('?') {
        '&'
    } else {
        '?'
    };
    let location = format!(
        "{}{separator}response_type=code&client_id={}&redirect_uri={}&scope=openid&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        config.authorization_endpoint,
        encode(&config.client_id),
        encode(&callback),
        encode(&login_state),
        encode(&nonce),
        encode(&challenge),
    );
    let cookie = login_cookie(&login_state, PENDING_FOR.as_secs(), state.tls);
    sessions.logins.begin(
        login_state,
        PendingLogin {
            nonce,
            verifier,
            redirect_uri: callback,
            created: Instant::now(),
        },
    );
    let mut r = redirect(&location);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize, Default)]
pub(crate) struct CallbackParams {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// The token endpoint's answer (the id token is all the console uses).
#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
}

/// Exchanges the code at the token endpoint (blocking: on a blocking thread).
fn exchange(config: &OidcSignIn, code: &str, login: &PendingLogin) -> Result<String, String> {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &login.redirect_uri),
        ("client_id", &config.client_id),
        ("code_verifier", &login.verifier),
    ];
    if let Some(secret) = &config.client_secret {
        form.push(("client_secret", secret));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .into();
    let mut response = agent
        .post(&config.token_endpoint)
        .header("accept", "application/json")
        .send_form(form)
        .map_err(|e| format!("the token endpoint refused the code: {e}"))?;
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_TOKEN_ANSWER)
        .read_to_string()
        .map_err(|e| format!("the token endpoint's answer could not be read: {e}"))?;
    let answer: TokenAnswer = serde_json::from_str(&text)
        .map_err(|e| format!("the token endpoint's answer is not JSON: {e}"))?;
    answer
        .id_token
        .ok_or_else(|| "the token endpoint's answer holds no id_token".to_owned())
}

/// `GET /console/oidc/callback`: the issuer's answer → a session, or the sign-in page with why.
pub(crate) async fn callback(
    State(state): State<Arc<AppState>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    // Every answer clears the login cookie: a sign-in ends here, one way or the other.
    let clear = login_cookie("", 0, state.tls);
    let with_cleared = |mut r: Response| {
        if let Ok(v) = HeaderValue::from_str(&clear) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    };
    let refuse = |status: StatusCode, why: &str| {
        with_cleared(sign_in_refusal(
            &state,
            status,
            &format!("Single sign-on failed: {why}"),
        ))
    };
    let Some((oidc, config)) = configured(&state) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "it is not configured on this server.",
        );
    };
    // The state first: an answer to no sign-in of this browser, or of ours, is refused whatever
    // else it says (a code of someone else's sign-in must not sign this browser in).
    let bound = match (params.state.as_deref(), login_cookie_value(&headers)) {
        (Some(s), Some(c)) => !s.is_empty() && super::same_secret(s, &c),
        _ => false,
    };
    if !bound {
        return refuse(
            StatusCode::BAD_REQUEST,
            "this answer is to a sign-in this browser did not start (its state is not this browser's): start again.",
        );
    }
    let Some(login) = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .and_then(|s| sessions.logins.take(s))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "this answer is to no sign-in under way (an unknown, used or expired state): start again.",
        );
    };
    if let Some(error) = &params.error {
        let detail = params.error_description.as_deref().unwrap_or("");
        return refuse(
            StatusCode::UNAUTHORIZED,
            &format!("the issuer answered `{error}` {detail}"),
        );
    }
    let Some(code) = params.code.filter(|c| !c.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "the issuer sent no code.");
    };
    let config_owned = config.clone();
    let nonce = login.nonce.clone();
    let exchanged =
        tokio::task::spawn_blocking(move || exchange(&config_owned, &code, &login)).await;
    let id_token = match exchanged {
        Ok(Ok(t)) => t,
        Ok(Err(why)) => return refuse(StatusCode::UNAUTHORIZED, &why),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let identity = match oidc.validate_id_token(&id_token, &config.client_id, &nonce) {
        Ok(i) => i,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &e.message),
    };
    // The user, exactly as a bearer token's: its organisation, then `oid` (or `sub` when so
    // configured), enabled.
    let caller = Caller::Identity(identity.clone());
    let handle = match org_at(&state, &caller, &identity.organization).await {
        Ok(h) => h,
        Err(e) => return refuse(StatusCode::UNAUTHORIZED, &e.message),
    };
    let user = {
        let loaded = handle.read().await;
        let by_object_id = |oid: &str| state.object_ids.user(&handle, &loaded.org, oid);
        match calling_user(&loaded.org, &caller, &by_object_id) {
            Ok(Some(u)) => loaded.org.user(u).name.clone(),
            Ok(None) => return refuse(StatusCode::UNAUTHORIZED, "the token names no user."),
            Err(e) => return refuse(StatusCode::UNAUTHORIZED, &e.message),
        }
    };
    let id = match sessions.open(
        identity.organization.clone(),
        user,
        Credential::Token(identity),
    ) {
        Ok(id) => id,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.message),
    };
    // The callback is a navigation that began at the issuer (another site): a `SameSite=Strict`
    // cookie set here is not sent on a redirect of that navigation, so this page moves on to
    // the console itself, a navigation of this site.
    let mut r = html_response(
        StatusCode::OK,
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta http-equiv="refresh" content="0;url=/console/users";
                    title { "Signed in — Strata console" }
                }
                body { main #main { p #signed-in { "Signed in. " a href="/console/users" { "Continue to the console" } } } }
            }
        },
    );
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, state.tls)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    with_cleared(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            code_challenge(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(base64_url(b"f"), "Zg");
        assert_eq!(base64_url(b"foob"), "Zm9vYg");
    }

    #[test]
    fn a_state_is_used_once_and_the_count_is_bounded() {
        let logins = PendingLogins::default();
        let login = || PendingLogin {
            nonce: "n".into(),
            verifier: "v".into(),
            redirect_uri: "r".into(),
            created: Instant::now(),
        };
        logins.begin("s".into(), login());
        assert!(logins.take("s").is_some());
        assert!(logins.take("s").is_none());
        for i in 0..MAX_PENDING + 10 {
            logins.begin(format!("s{i}"), login());
        }
        assert_eq!(logins.lock().len(), MAX_PENDING);
        let old = PendingLogin {
            created: Instant::now()
                .checked_sub(PENDING_FOR + Duration::from_secs(1))
                .unwrap_or_else(Instant::now),
            ..login()
        };
        logins.lock().insert("old".into(), old);
        assert!(logins.take("old").is_none());
    }
}
