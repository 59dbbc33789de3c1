//! Rate limits: credential stuffing, password guessing across addresses, forged
//! `X-Forwarded-For`, request floods and batch-enqueue floods, all answered 429 with
//! `Retry-After` and `RateLimit-*` headers through the full middleware stack.

use arian_tests::{Backing, TestApp, scenario_body};
use serde_json::json;

use super::{PASSWORD, sign_up};

async fn login(app: &TestApp, username: &str, password: &str, forwarded: Option<&str>) -> u16 {
    let mut request = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": username, "password": password}));
    if let Some(hop) = forwarded {
        request = request.header("x-forwarded-for", hop);
    }
    request.send().await.map_or(0, |r| r.status().as_u16())
}

#[tokio::test]
async fn credential_stuffing_from_one_address_stops_after_five_failures() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[
        ("RATE_LIMIT_AUTH_FAILURES", "5"),
        ("RATE_LIMIT_ACCOUNT_FAILURES", "100"),
    ]))
    .await?;
    sign_up(&app, "stuffed").await?;
    // Successful logins are not counted.
    for _ in 0..6 {
        assert_eq!(login(&app, "stuffed", PASSWORD, None).await, 200);
    }
    for attempt in 0..5 {
        let status = login(&app, &format!("guess{attempt}"), "Wrong-password-1", None).await;
        assert_eq!(status, 401, "failure {attempt}");
    }
    // Even the right password is refused now, before it is checked.
    let response = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"username": "stuffed", "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(response.headers()["ratelimit-remaining"], "0");
    assert_eq!(response.headers()["ratelimit-limit"], "5");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let body: serde_json::Value = response.json().await?;
    assert_eq!(body["error"]["code"], "rate_limited");
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn password_guessing_spread_over_many_addresses_hits_the_account_limit() -> anyhow::Result<()>
{
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[
        ("TRUSTED_PROXIES", "127.0.0.1"),
        ("RATE_LIMIT_AUTH_FAILURES", "5"),
        ("RATE_LIMIT_ACCOUNT_FAILURES", "4"),
    ]))
    .await?;
    sign_up(&app, "victim").await?;
    for hop in 1..=4 {
        let address = format!("198.51.100.{hop}");
        assert_eq!(
            login(&app, "victim", "Wrong-password-1", Some(&address)).await,
            401
        );
    }
    assert_eq!(
        login(&app, "VICTIM", PASSWORD, Some("198.51.100.77")).await,
        429,
        "the account is limited whatever the address or case"
    );
    assert_eq!(
        login(
            &app,
            "someone-else",
            "Wrong-password-1",
            Some("198.51.100.78")
        )
        .await,
        401,
        "other accounts are not"
    );
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_forged_forwarded_for_header_does_not_escape_the_general_limit() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[
        ("RATE_LIMIT_GENERAL", "3"),
        ("CORS_ORIGINS", "https://app.example"),
    ]))
    .await?;
    let call = |hop: String| {
        app.http
            .get(app.url("/api/auth/me"))
            .header("x-forwarded-for", hop)
            .header("origin", "https://app.example")
            .send()
    };
    let mut remaining = Vec::new();
    for i in 0..3 {
        let response = call(format!("203.0.113.{i}")).await?;
        assert_eq!(response.status(), 401, "anonymous, but counted");
        assert_eq!(response.headers()["ratelimit-limit"], "3");
        remaining.push(
            response.headers()["ratelimit-remaining"]
                .to_str()?
                .to_string(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let refused = call("203.0.113.99".into()).await?;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert!(refused.headers().contains_key("ratelimit-reset"));
    assert!(refused.headers().contains_key("content-security-policy"));
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        "https://app.example",
        "the 429 passes through CORS so the browser can read it"
    );
    // Probes are not API traffic.
    assert_eq!(app.http.get(app.url("/health")).send().await?.status(), 200);
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_told_apart_by_the_right_most_untrusted_hop()
-> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[
        ("RATE_LIMIT_GENERAL", "2"),
        ("TRUSTED_PROXIES", "127.0.0.0/8"),
    ]))
    .await?;
    let call = |hops: &'static str| {
        app.http
            .get(app.url("/api/auth/me"))
            .header("x-forwarded-for", hops)
            .send()
    };
    // One client behind the proxy, prepending forged hops to look like others.
    assert_eq!(call("6.6.6.1, 198.51.100.5").await?.status(), 401);
    assert_eq!(call("6.6.6.2, 198.51.100.5").await?.status(), 401);
    assert_eq!(call("6.6.6.3, 198.51.100.5").await?.status(), 429);
    // A different real client has its own budget.
    assert_eq!(call("198.51.100.6").await?.status(), 401);
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_flood_of_batch_creations_and_starts_is_limited_per_user() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[("RATE_LIMIT_ENQUEUE", "2")])).await?;
    let flooder = sign_up(&app, "flooder").await?;
    let bystander = sign_up(&app, "bystander").await?;
    let (_, negotiation) = app
        .post(&flooder.access, "/api/negotiations", &scenario_body("01"))
        .await?;
    let path = format!(
        "/api/simulations/queue/{}",
        negotiation["data"]["id"].as_str().unwrap_or_default()
    );
    let body = json!({});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(app.post(&flooder.access, &path, &body).await?.0);
    }
    assert_eq!(&statuses[..2], &[201, 201], "{statuses:?}");
    assert_eq!(statuses[2], 429);

    let (_, theirs) = app
        .post(&bystander.access, "/api/negotiations", &scenario_body("01"))
        .await?;
    let their_path = format!(
        "/api/simulations/queue/{}",
        theirs["data"]["id"].as_str().unwrap_or_default()
    );
    assert_eq!(
        app.post(&bystander.access, &their_path, &body).await?.0,
        201
    );
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_burst_of_simultaneous_guesses_gets_no_more_checks_than_the_limit() -> anyhow::Result<()>
{
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[
        ("RATE_LIMIT_AUTH_FAILURES", "5"),
        ("RATE_LIMIT_ACCOUNT_FAILURES", "100"),
    ]))
    .await?;
    sign_up(&app, "burst").await?;
    let guesses = (0..30).map(|i| {
        let password = if i == 29 {
            PASSWORD.to_string()
        } else {
            format!("Wrong-guess-{i}")
        };
        let app = &app;
        async move { login(app, "burst", &password, None).await }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s != 429).count();
    assert!(checked <= 5, "{checked} passwords checked: {statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 401, 429].contains(s)),
        "{statuses:?}"
    );
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn pausing_resuming_or_retrying_cannot_sidestep_the_start_limit() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[("RATE_LIMIT_ENQUEUE", "1")])).await?;
    let user = sign_up(&app, "sidestepper").await?;
    let (_, negotiation) = app
        .post(&user.access, "/api/negotiations", &scenario_body("01"))
        .await?;
    let create = format!(
        "/api/simulations/queue/{}",
        negotiation["data"]["id"].as_str().unwrap_or_default()
    );
    let (status, batch) = app.post(&user.access, &create, &json!({})).await?;
    assert_eq!(status, 201, "{batch}");
    let queue = format!(
        "/api/simulations/queue/{}",
        batch["queueId"].as_str().unwrap_or_default()
    );
    // The one start of the hour is spent by pause-then-resume of a never-started batch...
    assert_eq!(
        app.post(&user.access, &format!("{queue}/pause"), &json!({}))
            .await?
            .0,
        200
    );
    assert_eq!(
        app.post(&user.access, &format!("{queue}/resume"), &json!({}))
            .await?
            .0,
        200
    );
    // ...so every other way of delivering runs is refused.
    for verb in ["start", "resume", "retry", "restart-failed"] {
        let (status, _) = app
            .post(&user.access, &format!("{queue}/{verb}"), &json!({}))
            .await?;
        assert_eq!(status, 429, "{verb}");
    }
    backing.cleanup().await;
    Ok(())
}
