//! Failure-only limits for login and registration. Every attempt is counted before its
//! password is checked, so a burst of simultaneous attempts cannot all slip past one check;
//! an attempt that succeeds is taken back, so successes never count.
//!
//! Written here rather than with governor: a governor check always spends a cell and cannot
//! give one back, so it could not leave successful logins uncounted.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// Keys with failures this old or older are forgotten first when the map is full.
const EVICT_SHARE: usize = 10;

pub struct FailureLimiter {
    max: u32,
    window: Duration,
    max_keys: usize,
    attempts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// An attempt, counted as a failure until `succeeded` takes it back.
#[derive(Debug)]
pub struct Attempt {
    key: String,
    at: Instant,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration, max_keys: usize) -> Self {
        Self {
            max: max.max(1),
            window,
            max_keys: max_keys.max(1),
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key`; 429 when the key already has `max` failures (or attempts
    /// still in flight) within the window.
    pub fn begin(&self, key: &str) -> Result<Attempt, ApiError> {
        let now = Instant::now();
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = attempts.get_mut(key) {
            times.retain(|at| now.duration_since(*at) < self.window);
            if times.len() >= self.max as usize {
                let oldest = times.front().copied().unwrap_or(now);
                let retry_after = self.window.saturating_sub(now.duration_since(oldest));
                return Err(super::too_many(self.max, self.window, retry_after));
            }
        } else if attempts.len() >= self.max_keys {
            self.make_room(&mut attempts, now);
        }
        attempts.entry(key.to_string()).or_default().push_back(now);
        Ok(Attempt {
            key: key.to_string(),
            at: now,
        })
    }

    /// The attempt succeeded: it no longer counts.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = attempts.get_mut(&attempt.key) {
            if let Some(position) = times.iter().position(|at| *at == attempt.at) {
                times.remove(position);
            }
            if times.is_empty() {
                attempts.remove(&attempt.key);
            }
        }
    }

    /// Forgets expired keys, then the least recently failing keys that are not blocked; a
    /// blocked key is never forgotten before its window ends, so a flood cannot unblock it.
    fn make_room(&self, attempts: &mut HashMap<String, VecDeque<Instant>>, now: Instant) {
        attempts.retain(|_, times| {
            times
                .back()
                .is_some_and(|at| now.duration_since(*at) < self.window)
        });
        if attempts.len() < self.max_keys {
            return;
        }
        let mut unblocked: Vec<(Instant, String)> = attempts
            .iter()
            .filter(|(_, times)| times.len() < self.max as usize)
            .filter_map(|(key, times)| times.back().map(|at| (*at, key.clone())))
            .collect();
        unblocked.sort_unstable();
        let evict = (self.max_keys / EVICT_SHARE).max(1);
        for (_, key) in unblocked.into_iter().take(evict) {
            attempts.remove(&key);
        }
        if attempts.len() >= self.max_keys {
            tracing::warn!(
                max_keys = self.max_keys,
                "failure limiter full of blocked keys; new keys are tracked past the cap"
            );
        }
    }

    pub fn len(&self) -> usize {
        self.attempts
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
    fn attempts_count_up_front_and_successes_are_taken_back() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(900), 10);
        let first = limiter.begin("ip:1").expect("first");
        limiter.succeeded(first);
        let _failed = limiter.begin("ip:1").expect("second");
        let _in_flight = limiter
            .begin("ip:1")
            .expect("third: one success was taken back");
        assert!(
            limiter.begin("ip:1").is_err(),
            "two failures or attempts in flight"
        );
        assert!(limiter.begin("ip:2").is_ok());
    }

    #[test]
    fn a_flood_of_new_keys_neither_grows_the_map_nor_unblocks_a_blocked_key() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(900), 1_000);
        for _ in 0..3 {
            let _ = limiter.begin("account:victim");
        }
        for i in 0..100_000 {
            let _ = limiter.begin(&format!("ip:{i}"));
        }
        assert!(limiter.len() <= 1_000, "{} keys", limiter.len());
        assert!(limiter.begin("account:victim").is_err(), "still blocked");
    }
}
