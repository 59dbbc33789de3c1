//! The OpenAI-compatible provider against a fake server: the request it sends, the answers it
//! reads, the errors it classifies, and a whole batch played over HTTP.

use std::sync::Arc;
use std::time::Duration;

use arian_api::startup::InProcessWorkers;
use arian_core::config::{Config, LlmProviderKind};
use arian_core::engine::{Negotiation, Terms};
use arian_core::llm::{LlmError, LlmProvider, OpenAiConfig, OpenAiProvider, TurnContext};
use arian_core::{Catalog, Speaker};
use arian_tests::fake_llm::{FakeLlm, Script, completion, negotiating_turn, well_behaved};
use arian_tests::{Backing, TestApp, scenario_body};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

fn provider(base_url: &str, timeout: Duration) -> OpenAiProvider {
    OpenAiProvider::new(OpenAiConfig {
        base_url: base_url.to_string(),
        api_key: "sk-test".to_string().into(),
        model: "gpt-4o-mini".into(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: timeout,
        max_response_bytes: 64 * 1024,
        use_json_schema: true,
    })
    .expect("provider")
}

async fn play_first_turn(provider: &OpenAiProvider) -> Result<arian_core::llm::LlmReply, LlmError> {
    let catalog = Catalog::builtin();
    let input = arian_core::scenario_file::input_from_file(&scenario_body("01")).expect("input");
    let scenario = input.validate(&catalog).expect("scenario");
    let negotiation = Negotiation::new(&scenario);
    let next = negotiation.next_turn().expect("first turn");
    let terms = Terms::for_speaker(&scenario, Speaker::User);
    let context = TurnContext {
        run_id: "run-1",
        scenario: &scenario,
        technique: catalog
            .technique("technique.legitimieren")
            .expect("technique"),
        tactic: catalog.tactic("tactic.zeitdruck").expect("tactic"),
        personality: None,
        next,
        history: negotiation.turns(),
        terms: &terms,
        can_accept: false,
        correction: None,
    };
    provider.play_turn(&context).await
}

#[tokio::test]
async fn openai_provider_sends_the_turn_schema_and_reads_usage() {
    let fenced: Script = Arc::new(|_, request| {
        completion(
            &format!("```json\n{}\n```", negotiating_turn(request)),
            321,
            123,
        )
    });
    let fake = FakeLlm::start(fenced).await;
    let reply = play_first_turn(&provider(&fake.base_url, Duration::from_secs(5)))
        .await
        .expect("a reply");
    assert_eq!((reply.usage.input, reply.usage.output), (321, 123));
    assert_eq!(reply.raw["action"], "continue");

    let request = &fake.requests()[0];
    assert_eq!(request["model"], "gpt-4o-mini");
    let format = &request["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["name"], "negotiation_turn");
    assert_eq!(format["json_schema"]["strict"], true);
    let offer = &format["json_schema"]["schema"]["properties"]["offer"];
    let required: Vec<&str> = offer["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        required,
        [
            "Chocolate Bar 50g",
            "Protein Biscuit 80g",
            "Preis pro Einheit",
            "Volumen pro Monat",
            "Zahlungsziel"
        ]
    );
    assert_eq!(offer["properties"]["Chocolate Bar 50g"]["minimum"], 0.95);
    assert_eq!(offer["properties"]["Chocolate Bar 50g"]["maximum"], 1.35);
    assert_eq!(request["messages"][0]["role"], "system");
}

/// Whether an error is the one a case expects.
type Expectation = fn(&LlmError) -> bool;

#[tokio::test]
async fn openai_provider_classifies_error_answers() {
    let cases: Vec<(Script, Expectation)> = vec![
        (
            Arc::new(|_, _| {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "7")],
                    axum::Json(
                        json!({"error": {"type": "requests", "code": "rate_limit_exceeded"}}),
                    ),
                )
                    .into_response()
            }),
            |e| {
                *e == LlmError::RateLimited {
                    retry_after: Some(Duration::from_secs(7)),
                }
            },
        ),
        (
            Arc::new(|_, _| {
                (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}))).into_response()
            }),
            |e| *e == LlmError::QuotaExhausted,
        ),
        (
            Arc::new(|_, _| StatusCode::SERVICE_UNAVAILABLE.into_response()),
            |e| *e == LlmError::Server(503),
        ),
        (
            Arc::new(|_, _| StatusCode::UNAUTHORIZED.into_response()),
            |e| *e == LlmError::Auth(401),
        ),
        (
            Arc::new(|_, _| {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": {"code": "context_length_exceeded"}})),
                )
                    .into_response()
            }),
            |e| *e == LlmError::ContextTooLong,
        ),
        (
            Arc::new(|_, _| completion(&"x".repeat(100_000), 1, 1)),
            |e| matches!(e, LlmError::Malformed(m) if m.contains("larger")),
        ),
        (
            Arc::new(|_, _| (StatusCode::OK, axum::Json(json!({"choices": []}))).into_response()),
            |e| matches!(e, LlmError::Malformed(_)),
        ),
    ];
    for (index, (script, expected)) in cases.into_iter().enumerate() {
        let fake = FakeLlm::start(script).await;
        let error = play_first_turn(&provider(&fake.base_url, Duration::from_secs(5)))
            .await
            .expect_err("an error");
        assert!(expected(&error), "case {index}: {error:?}");
        assert_eq!(
            error.is_transient(),
            matches!(
                error,
                LlmError::RateLimited { .. } | LlmError::Server(_) | LlmError::Malformed(_)
            ),
            "case {index}"
        );
    }
}

#[tokio::test]
async fn a_hanging_provider_times_out() {
    let hang: Script = Arc::new(|_, _| {
        std::thread::sleep(Duration::from_millis(1500));
        completion("{}", 1, 1)
    });
    let fake = FakeLlm::start(hang).await;
    let error = play_first_turn(&provider(&fake.base_url, Duration::from_millis(300)))
        .await
        .expect_err("a timeout");
    assert_eq!(error, LlmError::Timeout);
}

/// An embedded app whose in-process worker plays against `fake`, and a registered user's token.
async fn app_against(
    fake: &FakeLlm,
    extra: &[(&str, &str)],
    user: &str,
) -> anyhow::Result<(Backing, TestApp, InProcessWorkers, String)> {
    let backing = Backing::embedded();
    let mut vars = vec![
        ("LLM_PROVIDER", "openai"),
        ("LLM_API_KEY", "sk-test"),
        ("LLM_BASE_URL", fake.base_url.as_str()),
    ];
    vars.extend_from_slice(extra);
    let config: Config = backing.config(&vars);
    assert_eq!(config.llm.provider, LlmProviderKind::OpenAi);
    let app = TestApp::spawn(config).await?;
    let workers = app.workers(1)?;
    let token = app.register(user).await?;
    Ok((backing, app, workers, token))
}

/// One technique and one tactic: a batch of a single run.
fn single_run() -> serde_json::Value {
    json!({"techniques": ["technique.tauschhandel"], "tactics": ["tactic.zeitdruck"]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_plays_against_an_openai_compatible_server() -> anyhow::Result<()> {
    let fake = FakeLlm::start(well_behaved()).await;
    let (backing, app, workers, token) = app_against(&fake, &[], "httpuser").await?;
    let queue_id = app.start_batch(&token, &json!({})).await?;
    let status = app
        .wait_for_batch(&token, &queue_id, Duration::from_secs(30))
        .await?;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["completedCount"], 6);
    // Every run is a deal on turn 4: four paid calls each, none repeated.
    assert_eq!(fake.calls(), 24);
    let (_, results) = app
        .get(
            &token,
            &format!("/api/simulations/queue/{queue_id}/results"),
        )
        .await?;
    assert_eq!(results["data"]["deals"], 6);
    // 6 runs x 4 turns x (300 in, 120 out) at gpt-4o-mini prices.
    let expected = 24.0 * (300.0 * 0.15 + 120.0 * 0.60) / 1_000_000.0;
    assert!((results["data"]["totalCostUsd"].as_f64().unwrap_or_default() - expected).abs() < 1e-9);
    workers.shutdown().await;
    backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn call_level_retries_ride_out_a_429_and_a_503_within_one_attempt() -> anyhow::Result<()> {
    let flaky: Script = Arc::new(|n, request| match n {
        0 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            axum::Json(json!({"error": {"code": "rate_limit_exceeded"}})),
        )
            .into_response(),
        1 => StatusCode::BAD_GATEWAY.into_response(),
        _ => completion(&negotiating_turn(request).to_string(), 300, 120),
    });
    let fake = FakeLlm::start(flaky).await;
    let (backing, app, workers, token) =
        app_against(&fake, &[("LLM_RETRY_BASE_MS", "50")], "retryuser").await?;
    let started = std::time::Instant::now();
    let queue_id = app.start_batch(&token, &single_run()).await?;
    let status = app
        .wait_for_batch(&token, &queue_id, Duration::from_secs(30))
        .await?;
    assert_eq!(status["status"], "completed", "{status}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    let (_, runs) = app
        .get(&token, &format!("/api/simulations/queue/{queue_id}/runs"))
        .await?;
    assert_eq!(
        runs["data"][0]["attempt"], 1,
        "the call-level retries kept the first attempt"
    );
    assert_eq!(fake.calls(), 6, "two failed calls, then four turns");
    workers.shutdown().await;
    backing.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unusable_answer_is_asked_again_once_and_both_calls_are_paid() -> anyhow::Result<()> {
    let sloppy: Script = Arc::new(|n, request| match n {
        0 => completion("Sure! Here is my offer: fifteen percent off.", 200, 50),
        _ => completion(&negotiating_turn(request).to_string(), 300, 120),
    });
    let fake = FakeLlm::start(sloppy).await;
    let (backing, app, workers, token) = app_against(&fake, &[], "reaskuser").await?;
    let queue_id = app.start_batch(&token, &single_run()).await?;
    let status = app
        .wait_for_batch(&token, &queue_id, Duration::from_secs(30))
        .await?;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, runs) = app
        .get(&token, &format!("/api/simulations/queue/{queue_id}/runs"))
        .await?;
    let run_id = runs["data"][0]["id"].as_str().expect("run id");
    let (_, detail) = app
        .get(&token, &format!("/api/simulation-runs/{run_id}"))
        .await?;
    let first = &detail["data"]["turns"][0];
    assert_eq!(first["reasks"], 1);
    assert_eq!(
        (
            first["inputTokens"].as_i64(),
            first["outputTokens"].as_i64()
        ),
        (Some(500), Some(170))
    );
    let correction = fake.requests()[1]["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    assert!(
        correction["content"]
            .as_str()
            .unwrap_or_default()
            .contains("could not be used"),
        "{correction}"
    );
    assert_eq!(fake.calls(), 5);
    workers.shutdown().await;
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn broken_bodies_are_errors_not_panics() {
    let truncated: Script = Arc::new(|_, _| {
        (
            StatusCode::OK,
            "{\"choices\": [{\"message\": {\"content\": \"{\\\"mess",
        )
            .into_response()
    });
    let invalid_utf8: Script =
        Arc::new(|_, _| (StatusCode::OK, vec![0xff_u8, 0xfe, 0x7b, 0x7d]).into_response());
    let fifty_megabytes: Script =
        Arc::new(|_, _| (StatusCode::OK, vec![b' '; 50 * 1024 * 1024]).into_response());
    for (name, script) in [
        ("truncated JSON", truncated),
        ("invalid UTF-8", invalid_utf8),
        ("50 MB body", fifty_megabytes),
    ] {
        let fake = FakeLlm::start(script).await;
        let error = play_first_turn(&provider(&fake.base_url, Duration::from_secs(5)))
            .await
            .expect_err(name);
        assert!(matches!(error, LlmError::Malformed(_)), "{name}: {error:?}");
    }
}

#[tokio::test]
async fn a_body_dripping_one_byte_a_second_times_out() {
    let drip: Script = Arc::new(|_, _| {
        let bytes = futures::stream::unfold(0, |sent| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            (sent < 100).then(|| {
                (
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b" ")),
                    sent + 1,
                )
            })
        });
        (StatusCode::OK, axum::body::Body::from_stream(bytes)).into_response()
    });
    let fake = FakeLlm::start(drip).await;
    let started = std::time::Instant::now();
    let error = play_first_turn(&provider(&fake.base_url, Duration::from_millis(1500)))
        .await
        .expect_err("a timeout");
    assert_eq!(error, LlmError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_reply_without_usage_is_billed_on_an_estimate() {
    let no_usage: Script = Arc::new(|_, request| {
        let body =
            json!({"choices": [{"message": {"content": negotiating_turn(request).to_string()}}]});
        (StatusCode::OK, axum::Json(body)).into_response()
    });
    let fake = FakeLlm::start(no_usage).await;
    let reply = play_first_turn(&provider(&fake.base_url, Duration::from_secs(5)))
        .await
        .expect("a reply");
    assert!(
        reply.usage.input > 100 && reply.usage.output > 10,
        "{:?}",
        reply.usage
    );
}
