//! Shedding load: a server over its capacity answers at once, with a status and a
//! `Retry-After` that say when to come back, instead of letting requests queue until they time
//! out (D97).
//!
//! - **Requests in flight**: at most `max_in_flight` requests are being handled at once; one
//!   more is answered `503 server_busy` straight away. Health, readiness and metrics are never
//!   shed (a load balancer must see the node).
//! - **Per credential**: with `key_rate` set, each credential presented (an API key or bearer
//!   token, the root key, a console session) may make `key_rate` requests a second on average,
//!   `key_burst` at once (a token bucket); one more is answered `429 rate_limited` with the
//!   seconds until a request is allowed again. Credentials are told apart by a hash of the
//!   secret, before it is verified, so an unknown key is limited too.
//! - **Writes queued** per organisation are bounded by the application layer
//!   (`strata_app::MAX_QUEUED_OPERATIONS`, `503 server_busy`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The default of [`crate::ServerOptions::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 1024;

/// Credentials remembered at most (buckets full again are forgotten first).
const MAX_BUCKETS: usize = 100_000;

/// A credential's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The server's load limits.
#[derive(Debug)]
pub(crate) struct Shedding {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    /// Requests a second per credential (0: no limit).
    key_rate: f64,
    key_burst: f64,
    buckets: Mutex<Buckets>,
}

/// The credentials' buckets, and when the full table was last swept.
#[derive(Debug, Default)]
struct Buckets {
    map: HashMap<[u8; 16], Bucket>,
    swept: Option<Instant>,
}

/// A request let in: holds its place among those in flight until dropped.
pub(crate) struct Admitted {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Shedding {
    pub(crate) fn new(max_in_flight: usize, key_rate: f64, key_burst: f64) -> Shedding {
        let max_in_flight = max_in_flight.clamp(1, Semaphore::MAX_PERMITS);
        Shedding {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            key_rate: key_rate.max(0.0),
            key_burst: key_burst.max(1.0),
            buckets: Mutex::new(Buckets::default()),
        }
    }

    /// Lets the request in, or answers why not (with `Retry-After`).
    pub(crate) fn admit(&self, request: &Request) -> Result<Admitted, Box<Response>> {
        let path = request.uri().path();
        if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            return Ok(Admitted { _permit: None });
        }
        if self.key_rate > 0.0
            && let Some(credential) = credential(request)
            && let Err(wait) = self.take(credential, Instant::now())
        {
            let seconds = wait.ceil().max(1.0);
            return Err(refusal(
                ApiError::new(
                    "rate_limited",
                    format!(
                        "this credential made more than {} requests a second ({} at once): retry in {seconds} s",
                        self.key_rate, self.key_burst
                    ),
                ),
                seconds as u64,
            ));
        }
        match Arc::clone(&self.in_flight).try_acquire_owned() {
            Ok(permit) => Ok(Admitted {
                _permit: Some(permit),
            }),
            Err(_) => Err(refusal(
                ApiError::new(
                    "server_busy",
                    format!(
                        "the server is handling {} requests, its limit: retry in a second",
                        self.max_in_flight
                    ),
                ),
                1,
            )),
        }
    }

    /// Takes a token from the credential's bucket; the seconds until one is there otherwise.
    fn take(&self, credential: [u8; 16], now: Instant) -> Result<(), f64> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.map.len() >= MAX_BUCKETS && !buckets.map.contains_key(&credential) {
            // Full (a client spraying made-up keys): buckets that refilled are forgotten, at most
            // once a second so that the sweep costs one request in many. Still full, the new
            // credential goes unmetered rather than refused — a sprayer is not held back by a
            // per-credential limit anyway, and legitimate new credentials must not pay for it;
            // the limit of requests in flight still holds.
            if buckets
                .swept
                .is_none_or(|at| now.duration_since(at).as_secs_f64() >= 1.0)
            {
                let (rate, burst) = (self.key_rate, self.key_burst);
                buckets.map.retain(|_, b| {
                    b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst
                });
                buckets.swept = Some(now);
            }
            if buckets.map.len() >= MAX_BUCKETS {
                return Ok(());
            }
        }
        let bucket = buckets.map.entry(credential).or_insert(Bucket {
            tokens: self.key_burst,
            at: now,
        });
        let refilled = (bucket.tokens
            + now.duration_since(bucket.at).as_secs_f64() * self.key_rate)
            .min(self.key_burst);
        bucket.at = now;
        if refilled >= 1.0 {
            bucket.tokens = refilled - 1.0;
            Ok(())
        } else {
            bucket.tokens = refilled;
            Err((1.0 - refilled) / self.key_rate)
        }
    }
}

/// The credential a request presents, as 16 bytes of a hash of it: the API key or bearer
/// token, or else the console's session cookie.
fn credential(request: &Request) -> Option<[u8; 16]> {
    use sha2::Digest as _;
    let headers = request.headers();
    let secret = headers
        .get(axum::http::header::AUTHORIZATION)
        .or_else(|| headers.get("x-api-key"))
        .map(HeaderValue::as_bytes)
        .map(<[u8]>::to_vec)
        .or_else(|| crate::console::session_cookie(headers).map(String::into_bytes))?;
    let hash = sha2::Sha256::digest(&secret);
    let mut out = [0; 16];
    out.copy_from_slice(&hash[..16]);
    Some(out)
}

/// An error answered with `Retry-After`.
fn refusal(error: ApiError, retry_after: u64) -> Box<Response> {
    let mut response = error.into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(retry_after),
    );
    Box::new(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let shed = Shedding::new(10, 2.0, 3.0);
        let t0 = Instant::now();
        let key = [1; 16];
        for _ in 0..3 {
            assert!(shed.take(key, t0).is_ok());
        }
        let wait = shed.take(key, t0).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
        // Half a second later, one more.
        let t1 = t0 + std::time::Duration::from_millis(500);
        assert!(shed.take(key, t1).is_ok());
        assert!(shed.take(key, t1).is_err());
        // Another credential has its own bucket.
        assert!(shed.take([2; 16], t1).is_ok());
    }

    /// A table filled by made-up keys neither refuses a new credential nor frees one that is
    /// over its rate.
    #[test]
    fn a_full_table_meters_known_credentials_and_lets_new_ones_in() {
        let shed = Shedding::new(10, 0.001, 1.0);
        let t0 = Instant::now();
        let key = |i: usize| {
            let mut k = [0; 16];
            k[..8].copy_from_slice(&(i as u64).to_le_bytes());
            k
        };
        for i in 0..MAX_BUCKETS {
            assert!(shed.take(key(i), t0).is_ok());
        }
        // Every bucket is empty and refills in 1,000 s: none is swept.
        assert!(
            shed.take(key(0), t0).is_err(),
            "a known credential stays limited"
        );
        assert!(
            shed.take(key(MAX_BUCKETS), t0).is_ok(),
            "a new credential is let in"
        );
        assert!(shed.take(key(MAX_BUCKETS + 1), t0).is_ok());
        assert!(shed.take(key(1), t0).is_err());
    }
}
