//! Transport-level abuse: drip-fed headers, oversized chunked bodies and deeply nested JSON.

use std::time::{Duration, Instant};

use arian_tests::{Backing, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::sign_up;

#[tokio::test]
async fn a_slowloris_client_dripping_headers_is_disconnected() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[("HEADER_READ_TIMEOUT_SECS", "1")])).await?;
    let mut stream = TcpStream::connect(app.addr).await?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await?;
    let started = Instant::now();
    let mut closed_after = None;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if stream
            .write_all(format!("X-Drip-{i}: a\r\n").as_bytes())
            .await
            .is_err()
        {
            closed_after = Some(started.elapsed());
            break;
        }
        let mut buffer = [0u8; 512];
        if let Ok(Ok(read)) =
            tokio::time::timeout(Duration::from_millis(10), stream.read(&mut buffer)).await
        {
            // Either the connection closed (0) or the server answered 408 and will close.
            let answer = String::from_utf8_lossy(&buffer[..read]).to_string();
            assert!(read == 0 || answer.contains("408"), "{answer}");
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after.expect("the drip-fed connection was never closed");
    assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");
    // Well-behaved clients are still served.
    assert_eq!(app.http.get(app.url("/health")).send().await?.status(), 200);
    backing.cleanup().await;
    Ok(())
}

fn chunked(total: usize) -> reqwest::Body {
    let chunk = vec![b' '; 64 * 1024];
    let chunks = total.div_ceil(chunk.len());
    let stream =
        futures::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test]
async fn oversized_chunked_bodies_are_refused_with_413() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let session = sign_up(&app, "chunker").await?;
    for (path, size) in [
        ("/api/negotiations", 6 * 1024 * 1024),
        ("/api/auth/login", 20 * 1024),
    ] {
        let response = app
            .http
            .post(app.url(path))
            .bearer_auth(&session.access)
            .header("content-type", "application/json")
            .body(chunked(size))
            .send()
            .await?;
        assert_eq!(response.status(), 413, "{path}");
    }
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_harm() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let session = sign_up(&app, "nester").await?;
    let depth = 200_000;
    let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let response = app
        .http
        .post(app.url("/api/negotiations"))
        .bearer_auth(&session.access)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await?;
    assert_eq!(error["error"]["code"], "bad_request");
    assert_eq!(app.http.get(app.url("/health")).send().await?.status(), 200);
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_client_that_connects_and_sends_nothing_is_disconnected() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[("HEADER_READ_TIMEOUT_SECS", "1")])).await?;
    let mut silent = TcpStream::connect(app.addr).await?;
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buffer)).await;
    let closed = match read {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => String::from_utf8_lossy(&buffer[..n]).contains("408"),
        Err(_) => false,
    };
    assert!(closed, "a silent connection was still open after 5 s");
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn one_address_cannot_hold_more_connections_than_its_cap() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[("MAX_CONNECTIONS_PER_IP", "3")])).await?;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(app.addr).await?);
    }
    let mut extra = TcpStream::connect(app.addr).await?;
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(3), extra.read(&mut buffer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the fourth connection was not closed: {read:?}"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.http.get(app.url("/health")).send().await?.status(), 200);
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_negotiation_too_large_to_prompt_cheaply_is_refused() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let session = sign_up(&app, "bigspender").await?;
    let mut body = arian_tests::scenario_body("01");
    body["market"]["meta"] = serde_json::json!({"intelligence": "x".repeat(400_000)});
    let (status, error) = app
        .post(&session.access, "/api/negotiations", &body)
        .await?;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["field"], "body");
    backing.cleanup().await;
    Ok(())
}
