//! Test harness: a fresh PostgreSQL database and Redis prefix per test, the real API on port 0,
//! in-process workers, and a scriptable fake OpenAI-compatible server.

pub mod fake_llm;
pub mod fault;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use arian_api::startup::{self, InProcessWorkers, Services};
use arian_core::config::Config;
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use serde_json::{Value, json};

/// Where the tests find PostgreSQL (a server URL without a database) and Redis.
pub fn postgres_server() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn random_suffix() -> String {
    format!("{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

/// Where a test keeps its data, removed by `cleanup`.
pub enum Backing {
    Distributed {
        database: String,
        redis_prefix: String,
        redis_url: String,
    },
    Embedded {
        sqlite_path: String,
    },
}

impl Backing {
    /// A fresh PostgreSQL database and Redis key prefix.
    pub async fn distributed() -> anyhow::Result<Self> {
        Self::distributed_on(&redis_url()).await
    }

    /// A fresh PostgreSQL database, and a key prefix on the Redis at `redis`.
    pub async fn distributed_on(redis: &str) -> anyhow::Result<Self> {
        let database = format!("arian_test_{}", random_suffix());
        let admin = Database::connect(format!("{}/test", postgres_server()))
            .await
            .context("connecting to PostgreSQL")?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {database}"))
            .await?;
        Ok(Backing::Distributed {
            database,
            redis_prefix: format!("arian-test-{}", random_suffix()),
            redis_url: redis.to_string(),
        })
    }

    pub fn embedded() -> Self {
        let path = std::env::temp_dir().join(format!("arian-test-{}.sqlite", random_suffix()));
        Backing::Embedded {
            sqlite_path: path.to_string_lossy().into_owned(),
        }
    }

    /// Configuration variables for this backing, on top of `extra`.
    pub fn config(&self, extra: &[(&str, &str)]) -> Config {
        let vars = self.vars(extra);
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("test configuration is valid")
    }

    /// The environment a process needs to use this backing, on top of `extra`.
    pub fn vars(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = vec![
            (
                "JWT_SECRET".into(),
                "test-secret-that-is-long-enough-0123456789".into(),
            ),
            ("COOKIE_SECURE".into(), "false".into()),
            ("LEASE_TIMEOUT_SECS".into(), "5".into()),
            ("RECONCILE_INTERVAL_SECS".into(), "1".into()),
            // Functional tests make many requests from one address; the security tests set
            // the real limits themselves.
            ("RATE_LIMIT_GENERAL".into(), "1000000".into()),
            ("RATE_LIMIT_ENQUEUE".into(), "100000".into()),
            ("RATE_LIMIT_AUTH_FAILURES".into(), "100000".into()),
            ("RATE_LIMIT_ACCOUNT_FAILURES".into(), "100000".into()),
        ];
        match self {
            Backing::Distributed {
                database,
                redis_prefix,
                redis_url,
            } => {
                vars.push((
                    "DATABASE_URL".into(),
                    format!("{}/{database}", postgres_server()),
                ));
                vars.push(("REDIS_URL".into(), redis_url.clone()));
                vars.push(("REDIS_PREFIX".into(), redis_prefix.clone()));
            }
            Backing::Embedded { sqlite_path } => {
                vars.push(("SQLITE_PATH".into(), sqlite_path.clone()))
            }
        }
        for (k, v) in extra {
            vars.retain(|(name, _)| name != k);
            vars.push((k.to_string(), v.to_string()));
        }
        vars
    }

    pub async fn cleanup(&self) {
        match self {
            Backing::Distributed {
                database,
                redis_prefix,
                redis_url,
            } => {
                if let Ok(admin) = Database::connect(format!("{}/test", postgres_server())).await {
                    let _ = admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                        ))
                        .await;
                }
                if let Ok(client) = redis::Client::open(redis_url.as_str())
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    // Twice: a worker the test has not stopped yet may still write a wake or
                    // delay key just after the first sweep.
                    for sweep in 0..2 {
                        if sweep > 0 {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                        let keys: Vec<String> = redis::cmd("KEYS")
                            .arg(format!("{redis_prefix}:*"))
                            .query_async(&mut conn)
                            .await
                            .unwrap_or_default();
                        if !keys.is_empty() {
                            let _: Result<(), _> =
                                redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                        }
                    }
                }
            }
            Backing::Embedded { sqlite_path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{sqlite_path}{suffix}"));
                }
            }
        }
    }
}

/// The real API on an ephemeral port, with its services.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub services: Services,
    pub config: Config,
    server: tokio::task::JoinHandle<()>,
}

impl TestApp {
    pub async fn spawn(config: Config) -> anyhow::Result<Self> {
        let sqlite_path = config.sqlite_path.clone();
        let services = startup::connect(&config, &sqlite_path).await?;
        let secret = config
            .jwt_secret
            .clone()
            .unwrap_or_else(|| SecretString::from("x".repeat(40)));
        let state = startup::app_state(
            &config,
            &services,
            arian_api::auth::tokens::TokenKeys::new(&secret)?,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = startup::serve(listener, state, std::future::pending()).await;
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            addr,
            http,
            services,
            config,
            server,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn workers(&self, count: usize) -> anyhow::Result<InProcessWorkers> {
        startup::spawn_workers(&self.config, &self.services, count)
    }

    /// Registers a fresh user and returns its bearer token.
    pub async fn register(&self, name: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .post(self.url("/api/auth/register"))
            .json(&json!({"username": name, "password": "correct-Horse-battery-9"}))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "register answered {}",
            response.status()
        );
        let body: Value = response.json().await?;
        Ok(body["token"]
            .as_str()
            .context("token in the register answer")?
            .to_string())
    }

    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    pub async fn get(&self, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Creates a negotiation from scenario 01 and a batch with `body`, then starts it; returns
    /// the queue id.
    pub async fn start_batch(&self, token: &str, body: &Value) -> anyhow::Result<String> {
        let (code, created) = self
            .post(token, "/api/negotiations", &scenario_body("01"))
            .await?;
        anyhow::ensure!(code == 201, "negotiation: {created}");
        let id = created["data"]["id"].as_str().unwrap_or_default();
        let (code, batch) = self
            .post(token, &format!("/api/simulations/queue/{id}"), body)
            .await?;
        anyhow::ensure!(code == 201, "batch: {batch}");
        let queue_id = batch["queueId"].as_str().unwrap_or_default().to_string();
        let (code, started) = self
            .post(
                token,
                &format!("/api/simulations/queue/{queue_id}/start"),
                &json!({}),
            )
            .await?;
        anyhow::ensure!(code == 200, "start: {started}");
        Ok(queue_id)
    }

    /// Polls a batch's status until it is final or `timeout` passes; returns the last status.
    pub async fn wait_for_batch(
        &self,
        token: &str,
        queue_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (code, body) = self
                .get(token, &format!("/api/simulations/queue/{queue_id}/status"))
                .await?;
            anyhow::ensure!(code == 200, "status answered {code}: {body}");
            let status = body["data"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if ["completed", "stopped", "failed"].contains(&status.as_str())
                || tokio::time::Instant::now() > deadline
            {
                return Ok(body["data"].clone());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A shipped scenario as an API body.
pub fn scenario_body(file: &str) -> Value {
    let (_, text) = arian_core::scenario_file::SHIPPED
        .iter()
        .find(|(name, _)| name.starts_with(file))
        .expect("a shipped scenario");
    let value: Value = serde_json::from_str(text).expect("scenario JSON");
    serde_json::to_value(
        arian_core::scenario_file::input_from_file(&value).expect("scenario shape"),
    )
    .expect("serializable")
}
