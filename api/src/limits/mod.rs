//! Request rate limits: a general limit per client IP, a limit per user on batch creation and
//! start, and failure-only limits on login and registration. 429 answers carry `Retry-After`
//! and `RateLimit-*` headers.

mod failures;
mod keyed;

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use arian_core::config::SecurityConfig;

pub use failures::{Attempt, FailureLimiter};
pub use keyed::{KeyedLimiter, Verdict};

use crate::client_ip::ClientIp;
use crate::error::ApiError;
use crate::state::AppState;

/// Every limiter of one API process.
// FIXME(api-limits): kept in process memory (governor), so N API replicas allow N times the
// configured rates; the LLM limits are already shared through Redis, these are not yet.
pub struct Limits {
    pub general: KeyedLimiter<IpAddr>,
    pub enqueue: KeyedLimiter<String>,
    pub auth_failures_per_ip: FailureLimiter,
    pub auth_failures_per_account: FailureLimiter,
}

impl Limits {
    pub fn new(config: &SecurityConfig) -> Self {
        let max_keys = config.limiter_max_keys;
        Self {
            general: KeyedLimiter::new(config.general_limit, config.general_window, max_keys),
            enqueue: KeyedLimiter::new(config.enqueue_limit, config.enqueue_window, max_keys),
            auth_failures_per_ip: FailureLimiter::new(
                config.auth_failures_per_ip,
                config.auth_window,
                max_keys,
            ),
            auth_failures_per_account: FailureLimiter::new(
                config.auth_failures_per_account,
                config.auth_window,
                max_keys,
            ),
        }
    }

    /// Counts one batch creation or start for a user; refused past the hourly limit.
    pub fn enqueue(&self, user_id: &str, action: &str) -> Result<(), ApiError> {
        match self.enqueue.check(format!("{action}:{user_id}")) {
            Verdict::Allowed { .. } => Ok(()),
            Verdict::Refused(refusal) => {
                tracing::warn!(limit = "enqueue", action, user_id, "rate limit hit");
                Err(refusal)
            }
        }
    }
}

/// A refusal, rendered as 429 with its headers.
pub fn too_many(limit: u32, window: Duration, retry_after: Duration) -> ApiError {
    ApiError::RateLimited {
        limit,
        window_secs: window.as_secs(),
        retry_after_secs: retry_after.as_secs().max(1),
    }
}

/// IPv6 clients are limited per /64, the block one subscriber usually holds.
pub fn limiter_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

/// The general limit on `/api`, keyed by client IP; answers carry the `RateLimit-*` headers.
pub async fn general(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let ip = request
        .extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0);
    match state.limits.general.check(limiter_key(ip)) {
        Verdict::Allowed {
            limit,
            remaining,
            reset,
            window,
        } => {
            let mut response = next.run(request).await;
            rate_headers(response.headers_mut(), limit, remaining, reset, window);
            response
        }
        Verdict::Refused(refusal) => {
            tracing::warn!(limit = "general", client_ip = %ip, "rate limit hit");
            refusal.into_response()
        }
    }
}

/// `RateLimit-Limit`, `-Remaining`, `-Reset` (seconds) and `-Policy` (limit;w=window).
pub fn rate_headers(
    headers: &mut HeaderMap,
    limit: u32,
    remaining: u32,
    reset: Duration,
    window: Duration,
) {
    if headers.contains_key("ratelimit-limit") {
        // A narrower limit (login failures, enqueue) already described this answer.
        return;
    }
    let reset_secs = reset.as_secs() + u64::from(reset.subsec_nanos() > 0);
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(reset_secs));
    if let Ok(policy) = HeaderValue::from_str(&format!("{limit};w={}", window.as_secs())) {
        headers.insert("ratelimit-policy", policy);
    }
}
