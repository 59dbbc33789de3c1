//! Bad input gets a clear error naming the field, and other users' ids answer 404.

use arian_tests::{Backing, TestApp, scenario_body};
use serde_json::json;

#[tokio::test]
async fn bad_input_is_rejected_with_the_field_that_is_wrong() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let token = app.register("validator").await?;

    let mut body = scenario_body("01");
    body["products"][0]["attrs"]["minPrice"] = json!(9.0);
    let (code, answer) = app.post(&token, "/api/negotiations", &body).await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("products[0].attrs.minPrice")),
        "{answer}"
    );

    let mut body = scenario_body("01");
    body["scenario"]["selectedTactics"] = json!(["tactic.zeitdruck", "tactic.unknown"]);
    let (code, answer) = app.post(&token, "/api/negotiations", &body).await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("scenario.selectedTactics[1]")),
        "{answer}"
    );

    let mut body = scenario_body("01");
    body.as_object_mut().expect("object").remove("title");
    let (code, answer) = app.post(&token, "/api/negotiations", &body).await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("title")),
        "{answer}"
    );

    let mut body = scenario_body("01");
    body["scenario"]["dimensions"][1]["maxValue"] = json!("lots");
    let (code, answer) = app.post(&token, "/api/negotiations", &body).await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("scenario.dimensions[1].maxValue")),
        "{answer}"
    );

    let response = app
        .http
        .post(app.url("/api/negotiations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    let response = app
        .http
        .post(app.url("/api/negotiations"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await?;
    assert_eq!(response.status(), 415);

    let (_, created) = app
        .post(&token, "/api/negotiations", &scenario_body("01"))
        .await?;
    let id = created["data"]["id"].as_str().expect("id");
    let (code, answer) = app
        .post(
            &token,
            &format!("/api/simulations/queue/{id}"),
            &json!({"repetitions": 0}),
        )
        .await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("repetitions")),
        "{answer}"
    );
    let (code, answer) = app
        .post(
            &token,
            &format!("/api/simulations/queue/{id}"),
            &json!({"personalities": ["personality.nobody"]}),
        )
        .await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("personalities[0]")),
        "{answer}"
    );

    let (code, answer) = app
        .post(
            &token,
            "/api/auth/register",
            &json!({"username": "x", "password": "correct-Horse-battery-9"}),
        )
        .await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("username"))
    );
    let (code, answer) = app
        .post(
            &token,
            "/api/auth/register",
            &json!({"username": "shorty", "password": "short"}),
        )
        .await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("password"))
    );
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn another_users_ids_answer_404_and_anonymous_calls_401() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let owner = app.register("owner").await?;
    let intruder = app.register("intruder").await?;

    let (_, created) = app
        .post(&owner, "/api/negotiations", &scenario_body("02"))
        .await?;
    let negotiation_id = created["data"]["id"].as_str().expect("id").to_string();
    let (code, batch) = app
        .post(
            &owner,
            &format!("/api/simulations/queue/{negotiation_id}"),
            &json!({}),
        )
        .await?;
    assert_eq!(code, 201);
    assert_eq!(batch["totalSimulations"], 4);
    let queue_id = batch["queueId"].as_str().expect("queue id").to_string();
    let (_, runs) = app
        .get(&owner, &format!("/api/simulations/queue/{queue_id}/runs"))
        .await?;
    let run_id = runs["data"][0]["id"].as_str().expect("run id").to_string();

    for path in [
        format!("/api/negotiations/{negotiation_id}"),
        format!("/api/simulations/queue/{queue_id}/status"),
        format!("/api/simulations/queue/{queue_id}/results"),
        format!("/api/simulations/queue/{queue_id}/runs"),
        format!("/api/simulation-runs/{run_id}"),
    ] {
        let (code, _) = app.get(&intruder, &path).await?;
        assert_eq!(code, 404, "{path}");
    }
    let (code, _) = app
        .post(
            &intruder,
            &format!("/api/simulations/queue/{negotiation_id}"),
            &json!({}),
        )
        .await?;
    assert_eq!(code, 404);
    let (code, _) = app
        .post(
            &intruder,
            &format!("/api/simulations/queue/{queue_id}/start"),
            &json!({}),
        )
        .await?;
    assert_eq!(code, 404);
    for verb in ["pause", "resume", "stop", "retry", "restart-failed"] {
        let path = format!("/api/simulations/queue/{queue_id}/{verb}");
        let (code, _) = app.post(&intruder, &path, &json!({})).await?;
        assert_eq!(code, 404, "{verb}");
    }
    let (_, status) = app
        .get(&owner, &format!("/api/simulations/queue/{queue_id}/status"))
        .await?;
    assert_eq!(
        status["data"]["status"], "pending",
        "the intruder changed nothing"
    );
    let (_, list) = app.get(&intruder, "/api/negotiations").await?;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(0));

    let response = app.http.get(app.url("/api/negotiations")).send().await?;
    assert_eq!(response.status(), 401);
    let response = app
        .http
        .get(app.url("/api/negotiations"))
        .bearer_auth("not-a-token")
        .send()
        .await?;
    assert_eq!(response.status(), 401);

    let (code, answer) = app
        .post(
            "",
            "/api/auth/login",
            &json!({"username": "owner", "password": "wrong-Password-123"}),
        )
        .await?;
    assert_eq!(code, 401, "{answer}");
    let (code, answer) = app
        .post(
            "",
            "/api/auth/login",
            &json!({"username": "owner", "password": "correct-Horse-battery-9"}),
        )
        .await?;
    assert_eq!(code, 200, "{answer}");
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_batch() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let token = app.register("idem").await?;
    let (_, created) = app
        .post(&token, "/api/negotiations", &scenario_body("01"))
        .await?;
    let id = created["data"]["id"].as_str().expect("id");
    let send = || {
        app.http
            .post(app.url(&format!("/api/simulations/queue/{id}")))
            .bearer_auth(&token)
            .header("idempotency-key", "k-1")
            .json(&json!({}))
            .send()
    };
    let first: serde_json::Value = send().await?.json().await?;
    let second = send().await?;
    assert_eq!(second.status(), 200);
    let second: serde_json::Value = second.json().await?;
    assert_eq!(first["queueId"], second["queueId"]);
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn health_and_readiness_answer() -> anyhow::Result<()> {
    let backing = Backing::distributed().await?;
    let app = TestApp::spawn(backing.config(&[])).await?;
    let health = app.http.get(app.url("/health")).send().await?;
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = app.http.get(app.url("/ready")).send().await?.json().await?;
    assert_eq!(
        ready,
        json!({"status": "ready", "database": "ok", "redis": "ok"})
    );
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn hostile_input_gets_json_errors_never_a_500() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let token = app.register("hostile").await?;

    let mut body = scenario_body("01");
    body["description"] = json!("a\u{0}b");
    let (code, answer) = app.post(&token, "/api/negotiations", &body).await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("description")),
        "{answer}"
    );

    let mut body = scenario_body("01");
    body["products"][0]["attrs"]["maxPrice"] = json!(1.7976931348623157e308);
    let (code, answer) = app.post(&token, "/api/negotiations", &body).await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("products[0].attrs.maxPrice")),
        "{answer}"
    );

    let mut body = scenario_body("01");
    body["description"] = json!("x".repeat(20_000));
    let (code, answer) = app.post(&token, "/api/negotiations", &body).await?;
    assert_eq!(
        (code, answer["error"]["field"].as_str()),
        (422, Some("description")),
        "{answer}"
    );

    for path in [
        "/api/negotiations/%00",
        "/api/simulations/queue/%FF/status",
        "/api/simulation-runs/not-an-id",
        "/api/nowhere",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await?;
        assert_eq!(response.status(), 404, "{path}");
        let answer: serde_json::Value = response.json().await?;
        assert_eq!(answer["error"]["code"], "not_found", "{path}");
    }
    let response = app
        .http
        .delete(app.url("/api/negotiations"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), 405);

    let (_, created) = app
        .post(&token, "/api/negotiations", &scenario_body("01"))
        .await?;
    let id = created["data"]["id"].as_str().expect("id");
    let (_, batch) = app
        .post(&token, &format!("/api/simulations/queue/{id}"), &json!({}))
        .await?;
    let queue_id = batch["queueId"].as_str().expect("queue id");
    let (code, runs) = app
        .get(
            &token,
            &format!("/api/simulations/queue/{queue_id}/runs?offset=9223372036854775808"),
        )
        .await?;
    assert_eq!(
        (code, runs["data"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    let (code, answer) = app
        .get(
            &token,
            &format!("/api/simulations/queue/{queue_id}/runs?offset=abc"),
        )
        .await?;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );

    let huge = format!("{{\"title\": \"{}\"}}", "x".repeat(6 * 1024 * 1024));
    let response = app
        .http
        .post(app.url("/api/negotiations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await?;
    assert_eq!(response.status(), 413);
    let response = app
        .http
        .post(app.url("/api/negotiations"))
        .bearer_auth(&token)
        .header("content-type", "application/jsonx")
        .body("{}")
        .send()
        .await?;
    assert_eq!(response.status(), 415);
    let response = app
        .http
        .get(app.url("/api/negotiations"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await?;
    assert_eq!(
        response.status(),
        200,
        "the auth scheme is case-insensitive"
    );
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn every_response_carries_security_headers_and_cookie_writes_need_an_allowed_origin()
-> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[("CORS_ORIGINS", "https://app.example")])).await?;
    let register = app
        .http
        .post(app.url("/api/auth/register"))
        .json(&json!({"username": "cookieuser", "password": "correct-Horse-battery-9"}))
        .send()
        .await?;
    let cookie = register.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(cookie.starts_with("arian_access="), "{cookie}");

    for (path, status) in [
        ("/health", 200),
        ("/api/negotiations", 401),
        ("/api/nowhere", 404),
    ] {
        let response = app.http.get(app.url(path)).send().await?;
        assert_eq!(response.status(), status, "{path}");
        for header in [
            "strict-transport-security",
            "x-content-type-options",
            "x-frame-options",
            "content-security-policy",
            "referrer-policy",
            "cache-control",
        ] {
            assert!(
                response.headers().contains_key(header),
                "{path} lacks {header}"
            );
        }
        assert_eq!(response.headers()["x-frame-options"], "DENY");
    }

    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/api/negotiations"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("https://app.example").await?;
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let refused = preflight("https://evil.example").await?;
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let body = scenario_body("01").to_string();
    let post = |origin: Option<&'static str>, content_type: &'static str| {
        let mut request = app
            .http
            .post(app.url("/api/negotiations"))
            .header("cookie", &cookie)
            .header("content-type", content_type)
            .body(body.clone());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(
        post(Some("https://evil.example"), "application/json")
            .await?
            .status(),
        403
    );
    assert_eq!(
        post(Some("https://app.example"), "text/plain")
            .await?
            .status(),
        403
    );
    assert_eq!(
        post(None, "application/x-www-form-urlencoded")
            .await?
            .status(),
        403
    );
    let response = app
        .http
        .get(app.url("/api/negotiations"))
        .header("cookie", &cookie)
        .send()
        .await?;
    let listed: serde_json::Value = response.json().await?;
    assert_eq!(
        listed["data"].as_array().map(Vec::len),
        Some(0),
        "refused writes created nothing"
    );
    assert_eq!(
        post(Some("https://app.example"), "application/json")
            .await?
            .status(),
        201
    );

    let big = json!({"username": "x".repeat(20_000), "password": "correct-Horse-battery-9"});
    let response = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&big)
        .send()
        .await?;
    assert_eq!(response.status(), 413, "auth bodies are capped at 16 KB");
    backing.cleanup().await;
    Ok(())
}
