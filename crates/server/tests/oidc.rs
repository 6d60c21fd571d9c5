//! OIDC bearer tokens: validated against issuer, audience, expiry and the JWKS; `oid` maps to
//! the user whose `azureactivedirectoryobjectid` holds it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use strata_server::oidc::{JwksSource, OidcConfig};
use strata_server::{ServerConfig, ServerOptions, router_with};
use strata_store::{MemoryStore, Store};
use tower::ServiceExt;

const SECRET: &[u8] = b"a-test-signing-secret-of-32-bytes!!";

fn token(claims: Value, kid: &str, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn now() -> i64 {
    strata_server::now_ms() / 1000
}

async fn call(app: &axum::Router, bearer: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::post(path)
        .header("authorization", format!("Bearer {bearer}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn bearer_tokens_from_the_configured_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = write_jwks(dir.path());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new().unwrap());
    let config = ServerConfig {
        store: Arc::clone(&store),
        root_key: Some("root".into()),
    };
    let app = router_with(&config, &for_tokens(&jwks, Some("o"), false)).unwrap();
    organisation_with_object_ids(&app, "oid-123", "oid-bob").await;

    let claims = |sub: &str, oid: Option<&str>, aud: &str, exp: i64| {
        let mut c =
            json!({ "iss": "https://login.example/tenant", "aud": aud, "sub": sub, "exp": exp });
        if let Some(o) = oid {
            c["oid"] = json!(o);
        }
        c
    };
    let check = json!({ "privilege": "read", "record": "a1" });
    // `oid` maps to alice through her azureactivedirectoryobjectid.
    let good = token(
        claims("opaque-subject", Some("oid-123"), "strata", now() + 600),
        "k1",
        SECRET,
    );
    let (status, body) = call(&app, &good, "/api/v1/orgs/o/check", check.clone()).await;
    assert_eq!(
        (status, body["allowed"].clone()),
        (StatusCode::OK, json!(true)),
        "{body}"
    );
    // Without `oid`, `sub` does not silently name a user (issue 9, finding 3): `sub` = `bob`
    // or `alice` is nobody unless the configuration maps subjects to user names.
    for sub in ["bob", "alice"] {
        let t = token(claims(sub, None, "strata", now() + 600), "k1", SECRET);
        let (status, body) = call(&app, &t, "/api/v1/orgs/o/check", check.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // A token is bound to its organisation: another one's path is refused.
    let (status, _) = call(&app, "root", "/api/v1/orgs", json!({ "name": "other" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = call(&app, &good, "/api/v1/orgs/other/check", check.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Configured to map `sub` to user names, with the organisation in the token's claim.
    let app2 = router_with(&config, &for_tokens(&jwks, None, true)).unwrap();
    let mut c = claims("bob", None, "strata", now() + 600);
    c["strata_organization"] = json!("o");
    let bob = token(c, "k1", SECRET);
    let (status, body) = call(&app2, &bob, "/api/v1/orgs/o/check", check.clone()).await;
    assert_eq!(
        (status, body["allowed"].clone()),
        (StatusCode::OK, json!(false)),
        "{body}"
    );
    let (status, body) = call(&app2, &bob, "/api/v1/orgs/other/check", check.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // No organisation claim: refused.
    let bob = token(claims("bob", None, "strata", now() + 600), "k1", SECRET);
    let (status, body) = call(&app2, &bob, "/api/v1/orgs/o/check", check.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Refused: expired, another audience, a forged signature, an unknown key, an unknown user.
    for bad in [
        token(claims("bob", None, "strata", now() - 600), "k1", SECRET),
        token(claims("bob", None, "other-app", now() + 600), "k1", SECRET),
        token(
            claims("bob", None, "strata", now() + 600),
            "k1",
            b"another-secret-another-secret-123",
        ),
        token(claims("bob", None, "strata", now() + 600), "k9", SECRET),
        token(
            claims("mallory", Some("oid-unknown"), "strata", now() + 600),
            "k1",
            SECRET,
        ),
    ] {
        let (status, body) = call(&app, &bad, "/api/v1/orgs/o/check", check.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
}

/// Writes the JWKS of the test key under `dir`.
fn write_jwks(dir: &std::path::Path) -> std::path::PathBuf {
    let jwks = dir.join("jwks.json");
    let k = base64_url(SECRET);
    std::fs::write(
        &jwks,
        json!({ "keys": [{ "kty": "oct", "kid": "k1", "alg": "HS256", "k": k }] }).to_string(),
    )
    .unwrap();
    jwks
}

/// Options that take the test issuer's tokens.
fn for_tokens(
    jwks: &std::path::Path,
    organization: Option<&str>,
    subject_is_user_name: bool,
) -> ServerOptions {
    ServerOptions {
        oidc: Some(OidcConfig {
            issuer: "https://login.example/tenant".into(),
            audience: "strata".into(),
            jwks: JwksSource::File(jwks.to_owned()),
            organization: organization.map(str::to_owned),
            subject_is_user_name,
            sign_in: None,
        }),
        ..ServerOptions::default()
    }
}

/// A server that takes tokens for organisation `o`, with the JWKS written under `dir`.
fn server_for_tokens(dir: &std::path::Path) -> axum::Router {
    let config = ServerConfig {
        store: Arc::new(MemoryStore::new().unwrap()),
        root_key: Some("root".into()),
    };
    router_with(&config, &for_tokens(&write_jwks(dir), Some("o"), false)).unwrap()
}

/// Creates `o` with alice (who may read `a1`) and bob (who may not), and their object ids.
async fn organisation_with_object_ids(app: &axum::Router, alice: &str, bob: &str) {
    let (status, _) = call(app, "root", "/api/v1/orgs", json!({ "name": "o" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let setup = json!([
        { "op": "add_business_unit", "name": "Root" },
        { "op": "add_table", "name": "account" },
        { "op": "add_role", "name": "Reader", "privileges": { "account": { "read": "organization" } } },
        { "op": "add_user", "name": "alice" },
        { "op": "set_user_fields", "user": "alice", "fields": { "azureactivedirectoryobjectid": alice } },
        { "op": "add_user", "name": "bob" },
        { "op": "set_user_fields", "user": "bob", "fields": { "azureactivedirectoryobjectid": bob } },
        { "op": "assign_role", "principal": "alice", "role": "Reader" },
        { "op": "insert_record", "id": "a1", "table": "account", "owner": "bob" }
    ]);
    let (status, body) = call(app, "root", "/api/v1/orgs/o/operations", setup).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Who a token with `oid` signs in as: `Ok(true)` alice (she may read `a1`), `Ok(false)` bob,
/// `Err` the refusal's status and code.
async fn signs_in_as(app: &axum::Router, oid: &str) -> Result<bool, (StatusCode, Value)> {
    let claims = json!({
        "iss": "https://login.example/tenant", "aud": "strata", "sub": "opaque",
        "exp": now() + 600, "oid": oid
    });
    let check = json!({ "privilege": "read", "record": "a1" });
    let t = token(claims, "k1", SECRET);
    match call(app, &t, "/api/v1/orgs/o/check", check).await {
        (StatusCode::OK, body) => Ok(body["allowed"] == json!(true)),
        (status, body) => Err((status, body["error"]["code"].clone())),
    }
}

/// Users are found by `oid` through an index of the organisation, rebuilt when it changes: an
/// object id changed, moved to another user or cleared by an administrator, a disabled user, an
/// organisation deleted and created again with other object ids — the next token sees each.
#[tokio::test]
async fn object_ids_follow_every_change_of_the_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let app = server_for_tokens(dir.path());
    organisation_with_object_ids(&app, "oid-alice", "oid-bob").await;
    let unknown = Err((StatusCode::UNAUTHORIZED, json!("unauthenticated")));
    assert_eq!(signs_in_as(&app, "oid-alice").await, Ok(true));
    assert_eq!(signs_in_as(&app, "oid-bob").await, Ok(false));
    assert_eq!(signs_in_as(&app, "oid-nobody").await, unknown);
    let write = |ops: Value| {
        let app = app.clone();
        async move {
            let (status, body) = call(&app, "root", "/api/v1/orgs/o/operations", ops).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    // Alice's object id changed: the old one signs in as nobody, the new one as alice.
    write(json!([{ "op": "set_user_fields", "user": "alice",
                   "fields": { "azureactivedirectoryobjectid": "oid-alice-2" } }]))
    .await;
    assert_eq!(signs_in_as(&app, "oid-alice").await, unknown);
    assert_eq!(signs_in_as(&app, "oid-alice-2").await, Ok(true));
    // Her old one given to bob: it is bob's now.
    write(json!([{ "op": "set_user_fields", "user": "bob",
                   "fields": { "azureactivedirectoryobjectid": "oid-alice" } }]))
    .await;
    assert_eq!(signs_in_as(&app, "oid-alice").await, Ok(false));
    assert_eq!(signs_in_as(&app, "oid-bob").await, unknown);
    // Cleared.
    write(json!([{ "op": "set_user_fields", "user": "bob",
                   "fields": { "azureactivedirectoryobjectid": null } }]))
    .await;
    assert_eq!(signs_in_as(&app, "oid-alice").await, unknown);
    // Disabled: found, and refused as disabled.
    write(json!([{ "op": "set_user_enabled", "user": "alice", "enabled": false }])).await;
    assert_eq!(
        signs_in_as(&app, "oid-alice-2").await,
        Err((StatusCode::FORBIDDEN, json!("user_disabled")))
    );
    // Deleted and created again at the same revision, the object ids swapped.
    let request = Request::delete("/api/v1/orgs/o")
        .header("authorization", "Bearer root")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    organisation_with_object_ids(&app, "oid-bob", "oid-alice").await;
    assert_eq!(signs_in_as(&app, "oid-bob").await, Ok(true));
    assert_eq!(signs_in_as(&app, "oid-alice").await, Ok(false));
    assert_eq!(signs_in_as(&app, "oid-alice-2").await, unknown);
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

// ----- the console's sign-in: authorization code with PKCE -----

/// What the fake issuer puts in its next id token.
#[derive(Default)]
struct Behaviour {
    oid: String,
    /// A nonce other than the one the sign-in sent.
    nonce: Option<String>,
}

/// A code the fake issuer handed out.
struct Issued {
    challenge: String,
    nonce: String,
    redirect_uri: String,
}

#[derive(Default)]
struct Provider {
    behaviour: std::sync::Mutex<Behaviour>,
    codes: std::sync::Mutex<std::collections::HashMap<String, Issued>>,
    next: std::sync::atomic::AtomicU64,
}

const CLIENT_ID: &str = "strata-console";
const CLIENT_SECRET: &str = "console-client-secret";

/// The fake issuer: `/authorize` hands out a code and sends the browser back; `/token` checks
/// the client, the redirect URI and the PKCE verifier against the challenge, and answers an id
/// token signed with the test key.
fn provider_router(provider: Arc<Provider>) -> axum::Router {
    use axum::extract::{Form, Query, State};
    use axum::response::IntoResponse;
    use std::collections::HashMap;
    async fn authorize(
        State(p): State<Arc<Provider>>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::response::Response {
        let ok = q.get("response_type").map(String::as_str) == Some("code")
            && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && q.get("code_challenge_method").map(String::as_str) == Some("S256")
            && q.get("scope")
                .is_some_and(|s| s.split(' ').any(|x| x == "openid"));
        if !ok {
            return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
        }
        let n = p.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let code = format!("code-{n}");
        let redirect_uri = q["redirect_uri"].clone();
        p.codes.lock().unwrap().insert(
            code.clone(),
            Issued {
                challenge: q["code_challenge"].clone(),
                nonce: q["nonce"].clone(),
                redirect_uri: redirect_uri.clone(),
            },
        );
        let to = format!(
            "{redirect_uri}?code={code}&state={}",
            url_encode(&q["state"])
        );
        (StatusCode::FOUND, [("location", to)]).into_response()
    }
    async fn token_endpoint(
        State(p): State<Arc<Provider>>,
        Form(f): Form<HashMap<String, String>>,
    ) -> axum::response::Response {
        let refuse = |why: &str| {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": "invalid_grant", "error_description": why })),
            )
                .into_response()
        };
        let Some(issued) = f
            .get("code")
            .and_then(|c| p.codes.lock().unwrap().remove(c))
        else {
            return refuse("unknown or used code");
        };
        if f.get("grant_type").map(String::as_str) != Some("authorization_code")
            || f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
            || f.get("redirect_uri") != Some(&issued.redirect_uri)
        {
            return refuse("wrong client or redirect_uri");
        }
        let verifier = f.get("code_verifier").cloned().unwrap_or_default();
        use sha2::Digest;
        if verifier.len() < 43
            || base64_url(&sha2::Sha256::digest(verifier.as_bytes())) != issued.challenge
        {
            return refuse("the code_verifier does not match the code_challenge");
        }
        let b = p.behaviour.lock().unwrap();
        let claims = json!({
            "iss": "https://login.example/tenant", "aud": CLIENT_ID, "sub": "opaque",
            "oid": b.oid, "nonce": b.nonce.clone().unwrap_or(issued.nonce),
            "exp": now() + 600, "iat": now()
        });
        axum::Json(json!({
            "access_token": "not-used", "token_type": "Bearer",
            "id_token": token(claims, "k1", SECRET)
        }))
        .into_response()
    }
    axum::Router::new()
        .route("/authorize", axum::routing::get(authorize))
        .route("/token", axum::routing::post(token_endpoint))
        .with_state(provider)
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Page {
    status: StatusCode,
    location: String,
    /// The console's session cookie (`strata_console=…`), when set.
    cookie: Option<String>,
    /// The sign-in's binding cookie (`strata_console_login=…`), when set to a value.
    login: Option<String>,
    body: String,
}

async fn get(app: &axum::Router, path: &str, cookie: Option<&str>) -> Page {
    let mut request = Request::get(path).header("host", "strata.test");
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let cookies: Vec<String> = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let named = |name: &str| {
        cookies
            .iter()
            .find(|c| c.starts_with(name) && c.len() > name.len())
            .cloned()
    };
    let (status, location, cookie, login) = (
        response.status(),
        header("location").unwrap_or_default(),
        named("strata_console="),
        named("strata_console_login="),
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    Page {
        status,
        location,
        cookie,
        login,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// One sign-in: the console's start, the issuer's authorize (through `tamper`), and the
/// console's callback (through `tamper_back`) from the same browser (its login cookie);
/// answers the callback's page, its path and the login cookie.
async fn sign_in_through(
    app: &axum::Router,
    issuer: &axum::Router,
    tamper: impl Fn(&str) -> String,
    tamper_back: impl Fn(&str) -> String,
) -> (Page, String, String) {
    let started = get(app, "/console/oidc/start", None).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let login = started.login.expect("a login cookie");
    let to = started.location;
    assert!(
        to.contains("code_challenge_method=S256")
            && to.contains("&state=")
            && to.contains("&nonce=")
            && to.contains("redirect_uri=http%3A%2F%2Fstrata.test%2Fconsole%2Foidc%2Fcallback"),
        "{to}"
    );
    let path = &to[to.find("/authorize").unwrap()..];
    let answer = get(issuer, &tamper(path), None).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
    let back = answer
        .location
        .strip_prefix("http://strata.test")
        .unwrap()
        .to_owned();
    let back = tamper_back(&back);
    (get(app, &back, Some(&login)).await, back, login)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_sign_in_with_authorization_code_and_pkce() {
    let provider = Arc::new(Provider::default());
    let issuer = provider_router(Arc::clone(&provider));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = issuer.clone();
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let mut options = for_tokens(&write_jwks(dir.path()), Some("o"), false);
    if let Some(oidc) = options.oidc.as_mut() {
        oidc.sign_in = Some(strata_server::oidc::OidcSignIn {
            authorization_endpoint: format!("{base}/authorize"),
            token_endpoint: format!("{base}/token"),
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            redirect_uri: None,
        });
    }
    let config = ServerConfig {
        store: Arc::new(MemoryStore::new().unwrap()),
        root_key: Some("root".into()),
    };
    let app = router_with(&config, &options).unwrap();
    organisation_with_object_ids(&app, "oid-alice", "oid-bob").await;
    let same = |p: &str| p.to_owned();
    let refused = |page: &Page, status: StatusCode, why: &str| {
        assert_eq!(page.status, status, "{}", page.body);
        assert!(page.cookie.is_none(), "no session: {:?}", page.cookie);
        assert!(
            page.body.contains("Single sign-on failed") && page.body.contains(why),
            "{why}: {}",
            page.body
        );
    };

    // The sign-in page offers the issuer.
    let page = get(&app, "/console/sign-in", None).await;
    assert!(
        page.body
            .contains("Sign in with https://login.example/tenant"),
        "{}",
        page.body
    );

    // Success: a session for alice (by her oid), through a page of this site.
    provider.behaviour.lock().unwrap().oid = "oid-alice".into();
    let (page, callback, login) = sign_in_through(&app, &issuer, same, same).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("url=/console/users"), "{}", page.body);
    let cookie = page.cookie.expect("a session cookie");
    let users = get(&app, "/console/users", Some(&cookie)).await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);
    assert!(users.body.contains("alice"), "{}", users.body);

    // The same state again (a replayed answer, from the same browser): refused.
    let again = get(&app, &callback, Some(&login)).await;
    refused(&again, StatusCode::BAD_REQUEST, "no sign-in under way");

    // A state the console never issued: refused, even with a good code.
    let (page, _, _) = sign_in_through(&app, &issuer, same, |back| {
        let at = back.find("state=").unwrap();
        format!("{}state=forged-state", &back[..at])
    })
    .await;
    refused(&page, StatusCode::BAD_REQUEST, "did not start");

    // Someone else's answer (login CSRF): a good code and state, but not this browser's sign-in.
    let started = get(&app, "/console/oidc/start", None).await;
    let path = &started.location[started.location.find("/authorize").unwrap()..];
    let answer = get(&issuer, path, None).await;
    let back = answer.location.strip_prefix("http://strata.test").unwrap();
    refused(
        &get(&app, back, None).await,
        StatusCode::BAD_REQUEST,
        "did not start",
    );
    // Its own browser could still finish it: the refusal consumed nothing.
    let page = get(&app, back, started.login.as_deref()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);

    // A code bound to another challenge: the console's verifier does not match it.
    let (page, _, _) = sign_in_through(
        &app,
        &issuer,
        |path| {
            let at = path.find("code_challenge=").unwrap() + "code_challenge=".len();
            let end = path[at..].find('&').map_or(path.len(), |e| at + e);
            format!(
                "{}{}{}",
                &path[..at],
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                &path[end..]
            )
        },
        same,
    )
    .await;
    refused(
        &page,
        StatusCode::UNAUTHORIZED,
        "token endpoint refused the code",
    );

    // A token for an oid no user holds: nobody, never a fallback to `sub` or another user.
    provider.behaviour.lock().unwrap().oid = "oid-nobody".into();
    let (page, _, _) = sign_in_through(&app, &issuer, same, same).await;
    refused(&page, StatusCode::UNAUTHORIZED, "oid-nobody");

    // A nonce other than the one sent.
    {
        let mut b = provider.behaviour.lock().unwrap();
        b.oid = "oid-alice".into();
        b.nonce = Some("another-nonce".into());
    }
    let (page, _, _) = sign_in_through(&app, &issuer, same, same).await;
    refused(&page, StatusCode::UNAUTHORIZED, "nonce");

    // The issuer's own refusal.
    let started = get(&app, "/console/oidc/start", None).await;
    let to = &started.location;
    let state = &to[to.find("&state=").unwrap() + 7..];
    let state = &state[..state.find('&').unwrap()];
    let page = get(
        &app,
        &format!("/console/oidc/callback?error=access_denied&state={state}"),
        started.login.as_deref(),
    )
    .await;
    refused(&page, StatusCode::UNAUTHORIZED, "access_denied");

    // The session follows the user's object id: changed by an administrator, it ends.
    let (status, body) = call(
        &app,
        "root",
        "/api/v1/orgs/o/operations",
        json!([{ "op": "set_user_fields", "user": "alice",
                 "fields": { "azureactivedirectoryobjectid": "oid-alice-2" } }]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let users = get(&app, "/console/users", Some(&cookie)).await;
    assert_eq!(users.status, StatusCode::SEE_OTHER);
    assert_eq!(users.location, "/console/sign-in?why=revoked");
}
