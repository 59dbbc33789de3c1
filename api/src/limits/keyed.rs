//! A governor keyed limiter (GCRA) with bounded state: idle keys are evicted once the map
//! grows past its cap, and if it is still full the state is started afresh.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

type Governor<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// How often (in checks) the key count is compared with the cap.
const SWEEP_EVERY: u64 = 1024;

pub enum Verdict {
    Allowed {
        limit: u32,
        remaining: u32,
        /// Until the whole burst is available again.
        reset: Duration,
        window: Duration,
    },
    Refused(ApiError),
}

pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limit: u32,
    window: Duration,
    quota: Quota,
    max_keys: usize,
    checks: AtomicU64,
    clock: DefaultClock,
    state: RwLock<Governor<K>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `limit` requests per `window`, all of them usable at once.
    pub fn new(limit: u32, window: Duration, max_keys: usize) -> Self {
        let burst = NonZeroU32::new(limit.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = (window / burst.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        let clock = DefaultClock::default();
        Self {
            limit: burst.get(),
            window,
            quota,
            max_keys,
            checks: AtomicU64::new(0),
            state: RwLock::new(Self::fresh(quota, &clock)),
            clock,
        }
    }

    fn fresh(quota: Quota, clock: &DefaultClock) -> Governor<K> {
        RateLimiter::<K, _, _, governor::middleware::NoOpMiddleware<_>>::new(
            quota,
            DefaultKeyedStateStore::default(),
            clock.clone(),
        )
        .with_middleware::<StateInformationMiddleware>()
    }

    /// Counts one request for `key`.
    pub fn check(&self, key: K) -> Verdict {
        let verdict = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            match state.check_key(&key) {
                Ok(snapshot) => {
                    let remaining = snapshot.remaining_burst_capacity();
                    Verdict::Allowed {
                        limit: self.limit,
                        remaining,
                        reset: self.quota.replenish_interval() * (self.limit - remaining),
                        window: self.window,
                    }
                }
                Err(not_until) => Verdict::Refused(super::too_many(
                    self.limit,
                    self.window,
                    not_until.wait_time_from(self.clock.now()),
                )),
            }
        };
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            self.sweep();
        }
        verdict
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.state.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops keys whose limit has fully recovered; if the map is still over its cap (a flood
    /// of distinct keys within one window), starts afresh rather than grow without bound.
    pub fn sweep(&self) {
        if self.len() <= self.max_keys {
            return;
        }
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        state.retain_recent();
        state.shrink_to_fit();
        if state.len() > self.max_keys {
            tracing::warn!(
                keys = state.len(),
                max_keys = self.max_keys,
                "rate limiter over its key cap; state reset"
            );
            *state = Self::fresh(self.quota, &self.clock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_refuses_past_its_burst_with_a_retry_time() {
        let limiter = KeyedLimiter::new(3, Duration::from_secs(900), 100);
        for expected_remaining in [2, 1, 0] {
            match limiter.check("a") {
                Verdict::Allowed { remaining, .. } => assert_eq!(remaining, expected_remaining),
                Verdict::Refused(_) => panic!("within the limit"),
            }
        }
        match limiter.check("a") {
            Verdict::Refused(ApiError::RateLimited {
                retry_after_secs, ..
            }) => assert!((1..=300).contains(&retry_after_secs)),
            _ => panic!("past the limit"),
        }
        assert!(matches!(limiter.check("b"), Verdict::Allowed { .. }));
    }

    #[test]
    fn a_flood_of_distinct_keys_keeps_the_state_bounded() {
        let max_keys = 10_000;
        let limiter = KeyedLimiter::new(100, Duration::from_secs(900), max_keys);
        for i in 0..1_000_000u32 {
            let _ = limiter.check(std::net::IpAddr::from(i.to_be_bytes()));
        }
        assert!(
            limiter.len() <= max_keys + SWEEP_EVERY as usize,
            "{} keys",
            limiter.len()
        );
    }
}
