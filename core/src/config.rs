//! Typed configuration, parsed once from variables the binary hands over; secrets wrapped.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;

mod security;

pub use security::SecurityConfig;

/// The shortest accepted JWT secret, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// A missing or invalid setting, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {var} {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

fn invalid(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// A whole number from `name`, `default` when unset, refused outside `min..=max`.
fn bounded_number(
    var: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(text) = var(name) else {
        return Ok(default);
    };
    let value: u64 = text
        .parse()
        .map_err(|_| invalid(name, "must be a whole number"))?;
    if value < min || value > max {
        return Err(invalid(name, format!("must be between {min} and {max}")));
    }
    Ok(value)
}

/// `CORS_ORIGINS`: comma-separated `scheme://host[:port]`, nothing more (a browser's `Origin`
/// never has a path, so an entry with one could never match).
fn cors_origins(text: Option<String>) -> Result<Vec<String>, ConfigError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|entry| entry.trim().trim_end_matches('/'))
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let authority = entry
                .strip_prefix("https://")
                .or_else(|| entry.strip_prefix("http://"));
            match authority {
                Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '*', ' ']) => {
                    Ok(entry.to_string())
                }
                _ => Err(invalid(
                    "CORS_ORIGINS",
                    format!("holds {entry:?}; each origin is scheme://host[:port], such as https://app.example"),
                )),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmProviderKind {
    Simulated,
    OpenAi,
}

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub provider: LlmProviderKind,
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub model: String,
    pub simulated_latency: Duration,
    pub request_timeout: Duration,
    pub use_json_schema: bool,
    /// Call-level retries of transient errors before the job-level backoff takes over.
    pub call_retries: u32,
    pub call_retry_base: Duration,
    pub call_retry_cap: Duration,
}

/// How a failed run is retried: base x factor^(attempt-1), capped, with jitter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub base: Duration,
    pub factor: f64,
    pub cap: Duration,
}

impl RetryConfig {
    /// The delay before the attempt after `attempt` (1-based), before jitter.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30) as i32;
        let millis = self.base.as_millis() as f64 * self.factor.powi(exponent);
        Duration::from_millis(millis.min(self.cap.as_millis() as f64) as u64)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `None` with no Redis either: the embedded default on SQLite.
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub jwt_secret: Option<SecretString>,
    pub api_addr: SocketAddr,
    pub worker_concurrency: usize,
    pub llm: LlmConfig,
    pub lease_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub reconcile_interval: Duration,
    /// A run still unfinished this long after it started fails.
    pub run_timeout: Duration,
    pub breaker: crate::breaker::BreakerConfig,
    /// Requests and tokens per minute allowed for `NEGOTIATION_MODEL`, shared by all workers.
    pub rate_limits: crate::limits::RateLimits,
    pub retry: RetryConfig,
    pub log_json: bool,
    /// Exact origins allowed to call the API from a browser; none means same-origin only.
    pub cors_origins: Vec<String>,
    /// Where a worker serves Prometheus metrics (`/metrics`); none when unset.
    pub metrics_addr: Option<SocketAddr>,
    /// Mark auth cookies `Secure`; off only for plain-HTTP local development.
    pub cookie_secure: bool,
    /// The SQLite file of the embedded default.
    pub sqlite_path: String,
    pub security: SecurityConfig,
}

impl Config {
    /// Parses the configuration from a variable lookup (the binaries pass the environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let database_url = var("DATABASE_URL");
        let redis_url = var("REDIS_URL");
        match (&database_url, &redis_url) {
            (Some(_), None) => {
                return Err(invalid("REDIS_URL", "is required when DATABASE_URL is set"));
            }
            (None, Some(_)) => {
                return Err(invalid("DATABASE_URL", "is required when REDIS_URL is set"));
            }
            _ => {}
        }
        let jwt_secret = var("JWT_SECRET");
        if jwt_secret
            .as_ref()
            .is_some_and(|s| s.len() < MIN_JWT_SECRET_BYTES)
        {
            return Err(invalid(
                "JWT_SECRET",
                format!("must be at least {MIN_JWT_SECRET_BYTES} bytes"),
            ));
        }
        let provider = match var("LLM_PROVIDER").as_deref() {
            None | Some("simulated") => LlmProviderKind::Simulated,
            Some("openai") => LlmProviderKind::OpenAi,
            Some(_) => return Err(invalid("LLM_PROVIDER", "must be simulated or openai")),
        };
        let api_key = var("LLM_API_KEY")
            .or_else(|| var("OPENAI_API_KEY"))
            .map(SecretString::from);
        if provider == LlmProviderKind::OpenAi && api_key.is_none() {
            return Err(invalid(
                "LLM_API_KEY",
                "is required when LLM_PROVIDER is openai (or set OPENAI_API_KEY)",
            ));
        }
        let base_url = var("LLM_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into());
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(invalid("LLM_BASE_URL", "must be an http or https URL"));
        }
        let number = |name: &'static str, default: u64, min: u64, max: u64| {
            bounded_number(&var, name, default, min, max)
        };
        let flag = |name: &'static str, default: bool| match var(name).as_deref() {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(_) => Err(invalid(name, "must be true or false")),
        };
        let factor = match var("RETRY_FACTOR") {
            None => 2.0,
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|f| (1.0..=10.0).contains(f))
                .ok_or_else(|| invalid("RETRY_FACTOR", "must be a number from 1 to 10"))?,
        };
        let api_addr = var("API_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .map_err(|_| {
                invalid(
                    "API_ADDR",
                    "must be a socket address such as 127.0.0.1:8080",
                )
            })?;
        let log_json = match var("LOG_FORMAT").as_deref() {
            None | Some("json") => true,
            Some("pretty") => false,
            Some(_) => return Err(invalid("LOG_FORMAT", "must be json or pretty")),
        };
        Ok(Self {
            database_url,
            redis_url,
            redis_prefix: var("REDIS_PREFIX").unwrap_or_else(|| "arian".into()),
            jwt_secret: jwt_secret.map(SecretString::from),
            api_addr,
            worker_concurrency: number("WORKER_CONCURRENCY", 8, 1, 10_000)? as usize,
            llm: LlmConfig {
                provider,
                base_url,
                api_key,
                model: var("NEGOTIATION_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                simulated_latency: Duration::from_millis(number(
                    "SIMULATED_LATENCY_MS",
                    0,
                    0,
                    600_000,
                )?),
                request_timeout: Duration::from_secs(number("LLM_TIMEOUT_SECS", 60, 1, 3_600)?),
                use_json_schema: flag("LLM_JSON_SCHEMA", true)?,
                call_retries: number("LLM_RETRY_MAX", 3, 0, 20)? as u32,
                call_retry_base: Duration::from_millis(number(
                    "LLM_RETRY_BASE_MS",
                    1_000,
                    1,
                    600_000,
                )?),
                call_retry_cap: Duration::from_millis(number(
                    "LLM_RETRY_CAP_MS",
                    30_000,
                    1,
                    3_600_000,
                )?),
            },
            lease_timeout: Duration::from_secs(number("LEASE_TIMEOUT_SECS", 15, 1, 3_600)?),
            shutdown_timeout: Duration::from_secs(number("SHUTDOWN_TIMEOUT_SECS", 30, 0, 3_600)?),
            reconcile_interval: Duration::from_secs(number(
                "RECONCILE_INTERVAL_SECS",
                5,
                1,
                3_600,
            )?),
            run_timeout: Duration::from_secs(match var("RUN_TIMEOUT") {
                Some(_) => number("RUN_TIMEOUT", 1_800, 1, 604_800)?,
                None => number("RUN_TIMEOUT_SECS", 1_800, 1, 604_800)?,
            }),
            rate_limits: crate::limits::RateLimits {
                requests_per_minute: number("LLM_RPM_LIMIT", 0, 0, 100_000_000)? as u32,
                tokens_per_minute: number("LLM_TPM_LIMIT", 0, 0, 4_000_000_000)? as u32,
            },
            breaker: crate::breaker::BreakerConfig {
                threshold: number("BREAKER_FAILURE_THRESHOLD", 5, 1, 1_000)? as u32,
                open_for: Duration::from_secs(number("BREAKER_OPEN_SECS", 30, 1, 3_600)?),
                probe_for: Duration::from_secs(number("LLM_TIMEOUT_SECS", 60, 1, 3_600)? + 5),
            },
            retry: RetryConfig {
                max_attempts: number("MAX_ATTEMPTS", 3, 1, 100)? as u32,
                base: Duration::from_millis(number("RETRY_BASE_MS", 2_000, 1, 3_600_000)?),
                factor,
                cap: Duration::from_millis(number("RETRY_CAP_MS", 30_000, 1, 86_400_000)?),
            },
            log_json,
            cookie_secure: flag("COOKIE_SECURE", true)?,
            cors_origins: cors_origins(var("CORS_ORIGINS"))?,
            metrics_addr: var("METRICS_ADDR")
                .map(|v| v.parse())
                .transpose()
                .map_err(|_| {
                    invalid(
                        "METRICS_ADDR",
                        "must be a socket address such as 127.0.0.1:9100",
                    )
                })?,
            sqlite_path: var("SQLITE_PATH").unwrap_or_else(|| "arian.sqlite".into()),
            security: SecurityConfig::from_lookup(&var)?,
        })
    }

    /// True when neither PostgreSQL nor Redis is configured.
    pub fn is_embedded(&self) -> bool {
        self.database_url.is_none()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_simulated_setup() {
        let config = parse(&[]).expect("defaults parse");
        assert!(config.is_embedded());
        assert_eq!(config.api_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.llm.provider, LlmProviderKind::Simulated);
        assert_eq!(config.retry.delay_after(1), Duration::from_secs(2));
        assert_eq!(config.retry.delay_after(3), Duration::from_secs(8));
        assert_eq!(config.retry.delay_after(10), Duration::from_secs(30));
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("WORKER_CONCURRENCY", "lots")], "WORKER_CONCURRENCY"),
            (&[("API_ADDR", "nowhere")], "API_ADDR"),
            (&[("LLM_PROVIDER", "magic")], "LLM_PROVIDER"),
            (&[("LLM_PROVIDER", "openai")], "LLM_API_KEY"),
            (&[("DATABASE_URL", "postgres://x")], "REDIS_URL"),
            (&[("JWT_SECRET", "short")], "JWT_SECRET"),
            (&[("COOKIE_SECURE", "maybe")], "COOKIE_SECURE"),
            (
                &[("CORS_ORIGINS", "http://ok.example/path")],
                "CORS_ORIGINS",
            ),
            (&[("CORS_ORIGINS", "*")], "CORS_ORIGINS"),
        ];
        for (vars, expected) in cases {
            let err = parse(vars).expect_err("invalid config");
            assert_eq!(err.var, *expected);
        }
    }

    #[test]
    fn the_openai_key_falls_back_to_openai_api_key() {
        let config =
            parse(&[("LLM_PROVIDER", "openai"), ("OPENAI_API_KEY", "sk-test")]).expect("parses");
        assert!(config.llm.api_key.is_some());
    }
}
