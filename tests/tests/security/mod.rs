//! The security suite: every test attacks the real API and is named for the attack it repels.

mod api_keys;
mod limits;
mod logs;
mod sessions;
mod tokens;
mod transport;
mod websocket;

use anyhow::Context;
use arian_tests::TestApp;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct-Horse-battery-9";
/// The JWT secret every test backing configures.
pub const SECRET: &str = "test-secret-that-is-long-enough-0123456789";

/// What a login hands a client: the access token and both cookies' values.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub access: String,
    pub refresh: String,
}

/// The values of the `Set-Cookie` headers of a response.
pub fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// The value a response sets for cookie `name`.
pub fn cookie(cookies: &[String], name: &str) -> Option<String> {
    cookies.iter().find_map(|line| {
        let pair = line.split(';').next()?;
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_string())
    })
}

async fn session_from(response: reqwest::Response) -> anyhow::Result<Session> {
    let cookies = set_cookies(&response);
    let body: Value = response.json().await?;
    Ok(Session {
        user_id: body["user"]["id"].as_str().context("user id")?.to_string(),
        access: body["token"].as_str().context("token")?.to_string(),
        refresh: cookie(&cookies, "arian_refresh").context("refresh cookie")?,
    })
}

/// Registers `name` and returns its first session.
pub async fn sign_up(app: &TestApp, name: &str) -> anyhow::Result<Session> {
    let response = app
        .http
        .post(app.url("/api/auth/register"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 201, "register: {}", response.status());
    session_from(response).await
}

/// Logs `name` in and returns a new session.
pub async fn log_in(app: &TestApp, name: &str) -> anyhow::Result<Session> {
    let response = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 200, "login: {}", response.status());
    session_from(response).await
}

/// Presents a refresh token; the new session when it was accepted.
pub async fn refresh(app: &TestApp, token: &str) -> anyhow::Result<(u16, Option<Session>)> {
    let response = app
        .http
        .post(app.url("/api/auth/refresh"))
        .header("cookie", format!("arian_refresh={token}"))
        .json(&json!({}))
        .send()
        .await?;
    let status = response.status().as_u16();
    if status != 200 {
        return Ok((status, None));
    }
    Ok((status, Some(session_from(response).await?)))
}

/// The status of `GET /api/auth/me` with a bearer credential.
pub async fn me_status(app: &TestApp, bearer: &str) -> anyhow::Result<u16> {
    Ok(app
        .http
        .get(app.url("/api/auth/me"))
        .bearer_auth(bearer)
        .send()
        .await?
        .status()
        .as_u16())
}
