//! The log audit: the API runs as a real process at trace level while every kind of secret
//! passes through it; none may appear in its output, and the security events must.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use arian_tests::Backing;
use serde_json::{Value, json};

use super::{PASSWORD, SECRET, cookie, set_cookies};

#[tokio::test]
async fn tokens_and_passwords_never_reach_the_logs_while_security_events_do() -> anyhow::Result<()>
{
    let backing = Backing::embedded();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_api-under-test"));
    command
        .env_clear()
        .envs(backing.vars(&[
            ("API_ADDR", addr.as_str()),
            ("RUST_LOG", "trace"),
            ("LOG_FORMAT", "json"),
        ]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(up, "the API process did not come up");

    let credentials = json!({"username": "audited", "password": PASSWORD});
    let registered = http
        .post(format!("{base}/api/auth/register"))
        .json(&credentials)
        .send()
        .await?;
    let refresh_cookie = refresh_cookie_of(&registered);
    let body: Value = registered.json().await?;
    let access = body["token"].as_str().unwrap_or_default().to_string();
    let user_id = body["user"]["id"].as_str().unwrap_or_default().to_string();
    let wrong = "Wrong-password-4711";
    http.post(format!("{base}/api/auth/login"))
        .json(&json!({"username": "audited", "password": wrong}))
        .send()
        .await?;
    let refresh = |token: String| {
        http.post(format!("{base}/api/auth/refresh"))
            .header("cookie", format!("arian_refresh={token}"))
            .json(&json!({}))
            .send()
    };
    let rotated = refresh(refresh_cookie.clone()).await?;
    let rotated_cookie = refresh_cookie_of(&rotated);
    refresh(refresh_cookie.clone()).await?; // reuse: a security event that ends the session
    let relogin: Value = http
        .post(format!("{base}/api/auth/login"))
        .json(&credentials)
        .send()
        .await?
        .json()
        .await?;
    let access_again = relogin["token"].as_str().unwrap_or_default().to_string();
    let key: Value = http
        .post(format!("{base}/api/api-keys"))
        .bearer_auth(&access_again)
        .json(&json!({"name": "audit"}))
        .send()
        .await?
        .json()
        .await?;
    let api_key = key["data"]["key"].as_str().unwrap_or_default().to_string();
    http.get(format!("{base}/api/negotiations"))
        .bearer_auth(&api_key)
        .send()
        .await?;
    http.get(format!("{base}/api/negotiations"))
        .bearer_auth("forged.token.value")
        .send()
        .await?;

    let _ = child.kill();
    let _ = child.wait();
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_string(&mut output)?;
    }
    if let Some(mut err) = child.stderr.take() {
        out_of(&mut err, &mut output)?;
    }
    assert!(output.len() > 1000, "the process logged: {output}");
    for (name, secret) in [
        ("password", PASSWORD),
        ("wrong password", wrong),
        ("access token", access.as_str()),
        ("second access token", access_again.as_str()),
        ("refresh token", refresh_cookie.as_str()),
        ("rotated refresh token", rotated_cookie.as_str()),
        ("api key", api_key.as_str()),
        ("JWT secret", SECRET),
    ] {
        assert!(!secret.is_empty(), "{name} was captured");
        assert!(!output.contains(secret), "the logs hold the {name}");
    }
    let lines: Vec<Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let event = |message: &str| {
        lines
            .iter()
            .find(|l| l["message"] == message)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let failed = event("failed login");
    assert_eq!(failed["user_id"], json!(user_id), "{failed}");
    assert_eq!(failed["client_ip"], "127.0.0.1", "{failed}");
    let reuse = event("refresh token reused; session revoked");
    assert_eq!(reuse["user_id"], json!(user_id), "{reuse}");
    let denied = event("request denied");
    assert_eq!(denied["span"]["client_ip"], "127.0.0.1", "{denied}");
    backing.cleanup().await;
    Ok(())
}

fn refresh_cookie_of(response: &reqwest::Response) -> String {
    cookie(&set_cookies(response), "arian_refresh").unwrap_or_default()
}

fn out_of(reader: &mut impl Read, into: &mut String) -> std::io::Result<()> {
    let mut text = String::new();
    reader.read_to_string(&mut text)?;
    into.push_str(&text);
    Ok(())
}
