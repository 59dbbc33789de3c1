//! Security settings: trusted proxies, rate limits, session lifetime, slow-client timeouts and
//! WebSocket limits, parsed from the same variables as the rest of the configuration.

use std::time::Duration;

use ipnet::IpNet;

use super::{ConfigError, bounded_number, invalid};

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityConfig {
    /// Peers whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`, IPs or CIDRs).
    pub trusted_proxies: Vec<IpNet>,
    /// General API requests per client IP and window.
    pub general_limit: u32,
    pub general_window: Duration,
    /// Failed logins or registrations per client IP, and failed logins per account, per window.
    pub auth_failures_per_ip: u32,
    pub auth_failures_per_account: u32,
    pub auth_window: Duration,
    /// Batch creations and starts per user and window (each counted on its own).
    pub enqueue_limit: u32,
    pub enqueue_window: Duration,
    /// Keys a limiter keeps before it evicts the idle ones.
    pub limiter_max_keys: usize,
    /// Absolute lifetime of a refresh-token family.
    pub refresh_ttl: Duration,
    /// A connection that has not sent its request headers within this is closed.
    pub header_read_timeout: Duration,
    /// A request not answered within this gets 408.
    pub request_timeout: Duration,
    /// Connections one address may hold open (trusted proxies are exempt).
    pub max_connections_per_ip: usize,
    pub ws_max_connections_per_user: usize,
    pub ws_idle_timeout: Duration,
    pub ws_ping_interval: Duration,
    pub ws_max_messages_per_minute: u32,
    /// How often an open WebSocket re-checks that its session is still live.
    pub ws_session_check: Duration,
}

impl SecurityConfig {
    pub fn from_lookup(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let number = |name: &'static str, default: u64, min: u64, max: u64| {
            bounded_number(var, name, default, min, max)
        };
        let secs = |name: &'static str, default: u64, max: u64| {
            number(name, default, 1, max).map(Duration::from_secs)
        };
        let count = |name: &'static str, default: u64| number(name, default, 1, 1_000_000_000);
        Ok(Self {
            trusted_proxies: trusted_proxies(var("TRUSTED_PROXIES"))?,
            general_limit: count("RATE_LIMIT_GENERAL", 100)? as u32,
            general_window: secs("RATE_LIMIT_GENERAL_WINDOW_SECS", 900, 86_400)?,
            auth_failures_per_ip: count("RATE_LIMIT_AUTH_FAILURES", 5)? as u32,
            auth_failures_per_account: count("RATE_LIMIT_ACCOUNT_FAILURES", 10)? as u32,
            auth_window: secs("RATE_LIMIT_AUTH_WINDOW_SECS", 900, 86_400)?,
            enqueue_limit: count("RATE_LIMIT_ENQUEUE", 10)? as u32,
            enqueue_window: secs("RATE_LIMIT_ENQUEUE_WINDOW_SECS", 3_600, 86_400)?,
            limiter_max_keys: number("RATE_LIMIT_MAX_KEYS", 100_000, 100, 100_000_000)? as usize,
            refresh_ttl: secs("REFRESH_TTL_SECS", 7 * 86_400, 7 * 86_400)?,
            header_read_timeout: secs("HEADER_READ_TIMEOUT_SECS", 10, 600)?,
            request_timeout: secs("REQUEST_TIMEOUT_SECS", 60, 3_600)?,
            max_connections_per_ip: number("MAX_CONNECTIONS_PER_IP", 256, 1, 1_000_000)? as usize,
            ws_max_connections_per_user: number("WS_MAX_CONNECTIONS_PER_USER", 5, 1, 1_000)?
                as usize,
            ws_idle_timeout: secs("WS_IDLE_TIMEOUT_SECS", 60, 3_600)?,
            ws_ping_interval: secs("WS_PING_INTERVAL_SECS", 20, 3_600)?,
            ws_max_messages_per_minute: count("WS_MAX_MESSAGES_PER_MIN", 60)? as u32,
            ws_session_check: secs("WS_SESSION_CHECK_SECS", 2, 60)?,
        })
    }
}

/// `TRUSTED_PROXIES`: comma-separated IPs or CIDRs; a bare IP is a one-address network.
fn trusted_proxies(text: Option<String>) -> Result<Vec<IpNet>, ConfigError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    invalid(
                        "TRUSTED_PROXIES",
                        format!("holds {entry:?}, which is neither an IP address nor a CIDR"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<SecurityConfig, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SecurityConfig::from_lookup(&|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_follow_the_security_policy() {
        let config = parse(&[]).expect("defaults parse");
        assert_eq!(config.general_limit, 100);
        assert_eq!(config.general_window, Duration::from_secs(900));
        assert_eq!(config.auth_failures_per_ip, 5);
        assert_eq!(config.enqueue_limit, 10);
        assert_eq!(config.refresh_ttl, Duration::from_secs(7 * 86_400));
        assert!(config.trusted_proxies.is_empty());
    }

    #[test]
    fn trusted_proxies_take_addresses_and_networks_and_name_a_bad_entry() {
        let config = parse(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")]).expect("parses");
        assert_eq!(config.trusted_proxies.len(), 3);
        let error = parse(&[("TRUSTED_PROXIES", "10.0.0.0/8,proxy.local")]).expect_err("refused");
        assert_eq!(error.var, "TRUSTED_PROXIES");
        assert!(error.message.contains("proxy.local"));
        let error = parse(&[("REFRESH_TTL_SECS", "99999999")]).expect_err("refused");
        assert_eq!(error.var, "REFRESH_TTL_SECS");
    }
}
