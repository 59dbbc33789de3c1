//! The WebSocket: handshakes without credentials, with a token in the URL, from a foreign
//! origin or with a replayed ticket are refused; events reach only the batch owner; floods,
//! big messages, idle clients and revoked sessions are cut off.

use std::time::Duration;

use arian_tests::{Backing, TestApp};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Session, sign_up};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const ORIGIN: &str = "https://app.example";

/// Opens `/ws{query}` with extra headers; the HTTP status when the handshake is refused.
async fn open(
    app: &TestApp,
    query: &str,
    headers: &[(&'static str, String)],
) -> Result<Socket, u16> {
    let mut request = format!("ws://{}/ws{query}", app.addr)
        .into_client_request()
        .map_err(|_| 0u16)?;
    for (name, value) in headers {
        request
            .headers_mut()
            .insert(*name, value.parse().map_err(|_| 0u16)?);
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(_) => Err(0),
    }
}

async fn ticket(app: &TestApp, session: &Session) -> anyhow::Result<String> {
    let (status, body) = app
        .post(&session.access, "/api/ws/ticket", &json!({}))
        .await?;
    anyhow::ensure!(status == 200, "ticket: {status} {body}");
    Ok(body["ticket"].as_str().unwrap_or_default().to_string())
}

async fn with_ticket(app: &TestApp, session: &Session) -> anyhow::Result<Socket> {
    let ticket = ticket(app, session).await?;
    open(app, &format!("?ticket={ticket}"), &[])
        .await
        .map_err(|status| anyhow::anyhow!("handshake refused with {status}"))
}

/// The next text message within `wait`, skipping pings.
async fn next_text(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??;
        match message.ok()? {
            Message::Text(text) => return serde_json::from_str(&text).ok(),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// The close code the server ends the socket with, within `wait`.
async fn close_code(socket: &mut Socket, wait: Duration) -> Option<CloseCode> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()?
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Some(CloseCode::Abnormal),
        }
    }
}

#[tokio::test]
async fn websocket_handshakes_without_valid_credentials_are_refused() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[("CORS_ORIGINS", ORIGIN)])).await?;
    let session = sign_up(&app, "watcher").await?;
    let cookie = format!("arian_access={}", session.access);

    assert_eq!(open(&app, "", &[]).await.err(), Some(401), "anonymous");
    let in_url = format!("?token={}", session.access);
    assert_eq!(
        open(&app, &in_url, &[]).await.err(),
        Some(401),
        "JWT in the URL"
    );
    let as_ticket = format!("?ticket={}", session.access);
    assert_eq!(
        open(&app, &as_ticket, &[]).await.err(),
        Some(401),
        "JWT as a ticket"
    );
    let foreign = [
        ("cookie", cookie.clone()),
        ("origin", "https://evil.example".into()),
    ];
    assert_eq!(
        open(&app, "", &foreign).await.err(),
        Some(403),
        "cross-site"
    );
    assert_eq!(
        open(&app, "", &[("cookie", cookie.clone())]).await.err(),
        Some(403),
        "cookie without an Origin"
    );
    assert!(
        open(
            &app,
            "",
            &[("cookie", cookie.clone()), ("origin", ORIGIN.into())]
        )
        .await
        .is_ok()
    );
    let own_origin = format!("http://{}", app.addr);
    assert!(
        open(&app, "", &[("cookie", cookie), ("origin", own_origin)])
            .await
            .is_ok(),
        "the server's own origin is always allowed"
    );

    let doubled = format!("?ticket=garbage&ticket={}", ticket(&app, &session).await?);
    assert_eq!(
        open(&app, &doubled, &[]).await.err(),
        Some(400),
        "ambiguous ticket"
    );
    let plain = app.http.get(app.url("/ws")).send().await?;
    assert_eq!(plain.status(), 400, "not an upgrade");
    let error: Value = plain.json().await?;
    assert_eq!(error["error"]["code"], "bad_request");

    let ticket = ticket(&app, &session).await?;
    let query = format!("?ticket={ticket}");
    assert!(
        open(&app, &query, &[]).await.is_ok(),
        "a fresh ticket works"
    );
    assert_eq!(
        open(&app, &query, &[]).await.err(),
        Some(401),
        "a replayed ticket does not"
    );
    backing.cleanup().await;
    Ok(())
}

fn small_batch() -> Value {
    // Scenario 01's own selection: six runs.
    json!({})
}

#[tokio::test]
async fn a_user_never_receives_another_users_batch_events() -> anyhow::Result<()> {
    let backing = Backing::distributed().await?;
    let app = TestApp::spawn(backing.config(&[])).await?;
    let owner = sign_up(&app, "owner-ws").await?;
    let snoop = sign_up(&app, "snoop-ws").await?;
    let mut owner_socket = with_ticket(&app, &owner).await?;
    let mut snoop_socket = with_ticket(&app, &snoop).await?;

    let workers = app.workers(1)?;
    let queue_id = app.start_batch(&owner.access, &small_batch()).await?;
    let mut kinds = Vec::new();
    while let Some(event) = next_text(&mut owner_socket, Duration::from_secs(60)).await {
        assert_eq!(event["queueId"], json!(queue_id));
        let kind = event["type"].as_str().unwrap_or_default().to_string();
        kinds.push(kind.clone());
        if kind == "queue_completed" {
            break;
        }
    }
    for expected in [
        "simulation_started",
        "negotiation_round",
        "simulation_completed",
        "queue_progress",
        "queue_completed",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "no {expected} in {kinds:?}"
        );
    }
    workers.shutdown().await;

    // A stop by the owner is announced too, and only to the owner.
    let (_, negotiation) = app
        .post(
            &owner.access,
            "/api/negotiations",
            &arian_tests::scenario_body("01"),
        )
        .await?;
    let create = format!(
        "/api/simulations/queue/{}",
        negotiation["data"]["id"].as_str().unwrap_or_default()
    );
    let (_, batch) = app.post(&owner.access, &create, &json!({})).await?;
    let stopped_id = batch["queueId"].as_str().unwrap_or_default().to_string();
    let stop = format!("/api/simulations/queue/{stopped_id}/stop");
    let (status, answer) = app.post(&owner.access, &stop, &json!({})).await?;
    assert_eq!(status, 200, "{answer}");
    // Late events of the first batch may still be on their way; skip them.
    let event = loop {
        let event = next_text(&mut owner_socket, Duration::from_secs(5)).await;
        let event = event.expect("a stop event");
        if event["queueId"] != json!(queue_id) {
            break event;
        }
    };
    assert_eq!(event["type"], "queue_completed");
    assert_eq!(event["queueId"], json!(stopped_id));
    assert_eq!(event["data"]["reason"], "stopped_by_user");

    assert_eq!(
        next_text(&mut snoop_socket, Duration::from_millis(500)).await,
        None,
        "the other user saw nothing"
    );
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn logging_out_closes_the_users_open_websockets() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app =
        TestApp::spawn(backing.config(&[("CORS_ORIGINS", ORIGIN), ("WS_SESSION_CHECK_SECS", "1")]))
            .await?;
    let session = sign_up(&app, "revoked-ws").await?;
    let cookie = format!(
        "arian_access={}; arian_refresh={}",
        session.access, session.refresh
    );
    let mut socket = open(
        &app,
        "",
        &[("cookie", cookie.clone()), ("origin", ORIGIN.into())],
    )
    .await
    .map_err(|s| anyhow::anyhow!("handshake {s}"))?;
    let response = app
        .http
        .post(app.url("/api/auth/logout"))
        .header("cookie", cookie)
        .header("origin", ORIGIN)
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(response.status(), 204);
    assert_eq!(
        close_code(&mut socket, Duration::from_secs(5)).await,
        Some(CloseCode::Policy)
    );
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn websocket_floods_big_messages_idle_clients_and_extra_connections_are_cut_off()
-> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[
        ("WS_MAX_CONNECTIONS_PER_USER", "2"),
        ("WS_MAX_MESSAGES_PER_MIN", "5"),
        ("WS_IDLE_TIMEOUT_SECS", "2"),
        ("WS_PING_INTERVAL_SECS", "1"),
    ]))
    .await?;
    let session = sign_up(&app, "flooder-ws").await?;

    // ping/pong, then a flood past the message limit.
    let mut chatty = with_ticket(&app, &session).await?;
    chatty
        .send(Message::Text(json!({"type": "ping"}).to_string().into()))
        .await?;
    assert_eq!(
        next_text(&mut chatty, Duration::from_secs(2)).await,
        Some(json!({"type": "pong"}))
    );
    for _ in 0..6 {
        let _ = chatty
            .send(Message::Text(json!({"type": "ping"}).to_string().into()))
            .await;
    }
    assert_eq!(
        close_code(&mut chatty, Duration::from_secs(3)).await,
        Some(CloseCode::Policy)
    );

    // A message over 4 KB ends the connection.
    let mut big = with_ticket(&app, &session).await?;
    let _ = big.send(Message::Text("x".repeat(64 * 1024).into())).await;
    let code = close_code(&mut big, Duration::from_secs(3)).await;
    assert!(
        matches!(
            code,
            Some(CloseCode::Size | CloseCode::Abnormal | CloseCode::Protocol)
        ),
        "{code:?}"
    );

    // The per-user cap: two open, the third refused.
    let mut first = with_ticket(&app, &session).await?;
    let _second = with_ticket(&app, &session).await?;
    let third_ticket = ticket(&app, &session).await?;
    assert_eq!(
        open(&app, &format!("?ticket={third_ticket}"), &[])
            .await
            .err(),
        Some(429)
    );

    // A client that never answers pings (it does not read) is closed as idle. Reading late,
    // it may meet the reset before the close frame (its queued pongs hit a closed socket);
    // either way the socket is gone, where an open one would time out here (None).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let code = close_code(&mut first, Duration::from_secs(3)).await;
    assert!(
        matches!(code, Some(CloseCode::Normal | CloseCode::Abnormal)),
        "{code:?}"
    );
    backing.cleanup().await;
    Ok(())
}
