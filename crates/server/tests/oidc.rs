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
