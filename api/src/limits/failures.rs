//! Failure-only limits for login and registration: only failed attempts count, and a key with
//! too many recent failures is refused before its password is checked.
//!
//! Written here rather than with governor: a governor check always spends a cell, so it can
//! neither look before the attempt without counting it nor leave successes uncounted.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

pub struct FailureLimiter {
    max: u32,
    window: Duration,
    max_keys: usize,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration, max_keys: usize) -> Self {
        Self {
            max: max.max(1),
            window,
            max_keys,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// 429 when `key` already has `max` failures within the window.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let Some(times) = failures.get_mut(key) else {
            return Ok(());
        };
        times.retain(|at| now.duration_since(*at) < self.window);
        if times.len() < self.max as usize {
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        let retry_after = self.window.saturating_sub(now.duration_since(oldest));
        Err(super::too_many(self.max, self.window, retry_after))
    }

    /// Counts one failure for `key`.
    pub fn record(&self, key: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= self.max_keys && !failures.contains_key(key) {
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|at| now.duration_since(*at) < self.window)
            });
            if failures.len() >= self.max_keys {
                tracing::warn!(
                    max_keys = self.max_keys,
                    "failure limiter over its key cap; state reset"
                );
                failures.clear();
            }
        }
        let times = failures.entry(key.to_string()).or_default();
        times.push_back(now);
        while times.len() > self.max as usize {
            times.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_count_and_the_limit_holds_before_the_attempt() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(900), 10);
        assert!(limiter.check("ip:1").is_ok());
        limiter.record("ip:1");
        assert!(limiter.check("ip:1").is_ok());
        limiter.record("ip:1");
        assert!(limiter.check("ip:1").is_err());
        assert!(limiter.check("ip:2").is_ok());
    }

    #[test]
    fn the_key_map_stays_within_its_cap() {
        let limiter = FailureLimiter::new(5, Duration::from_secs(900), 1_000);
        for i in 0..100_000 {
            limiter.record(&format!("ip:{i}"));
        }
        assert!(limiter.len() <= 1_000);
    }
}
