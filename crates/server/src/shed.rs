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
    buckets: Mutex<HashMap<[u8; 16], Bucket>>,
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
            buckets: Mutex::new(HashMap::new()),
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
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&credential) {
            let (rate, burst) = (self.key_rate, self.key_burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= MAX_BUCKETS {
                // Every remembered credential is busy: the newest is not let in unlimited.
                return Err(1.0 / self.key_rate);
            }
        }
        let bucket = buckets.entry(credential).or_insert(Bucket {
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
}
