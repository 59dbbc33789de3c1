//! Forged, altered and misused tokens, and a server that refuses to start with a weak key.

use arian_tests::{Backing, TestApp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::{SECRET, me_status, sign_up};

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn sign(header: Header, claims: &Value, secret: &str) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).expect("a key");
    encode(&header, claims, &key).expect("signs")
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

#[tokio::test]
async fn forged_altered_and_misused_tokens_are_refused() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let session = sign_up(&app, "target").await?;
    let payload = session.access.split('.').nth(1).expect("a JWT");
    let genuine: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
    let with = |changes: Value| {
        let mut claims = genuine.clone();
        for (key, value) in changes.as_object().expect("object") {
            if value.is_null() {
                claims.as_object_mut().expect("object").remove(key);
            } else {
                claims[key] = value.clone();
            }
        }
        claims
    };
    let hs256 = || Header::new(Algorithm::HS256);

    // The harness itself: a token re-signed from the genuine claims is accepted.
    assert_eq!(
        me_status(&app, &sign(hs256(), &genuine, SECRET)).await?,
        200
    );

    let mut jwk_header = hs256();
    jwk_header.jwk = Some(serde_json::from_value(json!({
        "kty": "oct", "k": URL_SAFE_NO_PAD.encode("attacker-key-attacker-key-attacker-key")
    }))?);
    let mut jku_header = hs256();
    jku_header.jku = Some("https://attacker.example/keys.json".into());
    let (head, body, _) = {
        let mut parts = session.access.split('.');
        (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            (),
        )
    };
    let tampered_body = b64(&with(
        json!({"sub": "00000000-0000-0000-0000-000000000000"}),
    ));
    let signature = session.access.rsplit('.').next().unwrap_or_default();
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!("{}.{body}.", b64(&json!({"alg": "none", "typ": "JWT"}))),
        ),
        (
            "alg none with the genuine signature",
            format!(
                "{}.{body}.{signature}",
                b64(&json!({"alg": "none", "typ": "JWT"}))
            ),
        ),
        (
            "HS512 with the real key",
            sign(Header::new(Algorithm::HS512), &genuine, SECRET),
        ),
        (
            "another key",
            sign(
                hs256(),
                &genuine,
                "another-secret-that-is-long-enough-012345",
            ),
        ),
        (
            "tampered payload",
            format!("{head}.{tampered_body}.{signature}"),
        ),
        ("embedded jwk", sign(jwk_header, &genuine, SECRET)),
        ("jku header", sign(jku_header, &genuine, SECRET)),
        (
            "expired",
            sign(
                hs256(),
                &with(json!({"exp": now() - 60, "iat": now() - 3600})),
                SECRET,
            ),
        ),
        (
            "issued in the future",
            sign(hs256(), &with(json!({"iat": now() + 3600})), SECRET),
        ),
        (
            "not yet valid",
            sign(hs256(), &with(json!({"nbf": now() + 3600})), SECRET),
        ),
        ("no exp", sign(hs256(), &with(json!({"exp": null})), SECRET)),
        ("no iat", sign(hs256(), &with(json!({"iat": null})), SECRET)),
        ("no iss", sign(hs256(), &with(json!({"iss": null})), SECRET)),
        (
            "wrong iss",
            sign(hs256(), &with(json!({"iss": "someone-else"})), SECRET),
        ),
        (
            "wrong aud",
            sign(hs256(), &with(json!({"aud": "arian-ws"})), SECRET),
        ),
        (
            "ticket typ",
            sign(hs256(), &with(json!({"typ": "ws-ticket"})), SECRET),
        ),
        (
            "exp as a string",
            sign(
                hs256(),
                &with(json!({"exp": (now() + 600).to_string()})),
                SECRET,
            ),
        ),
        (
            "sub as a number",
            sign(hs256(), &with(json!({"sub": 42})), SECRET),
        ),
        (
            "aud as an object",
            sign(hs256(), &with(json!({"aud": {"x": 1}})), SECRET),
        ),
        (
            "no session",
            sign(hs256(), &with(json!({"sid": null})), SECRET),
        ),
        ("garbage", "not.a.token".into()),
    ];
    for (attack, token) in &cases {
        assert_eq!(me_status(&app, token).await?, 401, "{attack}");
        let cookie = app
            .http
            .get(app.url("/api/auth/me"))
            .header("cookie", format!("arian_access={token}"))
            .send()
            .await?;
        assert_eq!(cookie.status(), 401, "{attack} as a cookie");
    }

    // A ticket for the WebSocket is not an access token.
    let ticket = app
        .http
        .post(app.url("/api/ws/ticket"))
        .bearer_auth(&session.access)
        .send()
        .await?
        .json::<Value>()
        .await?;
    let ticket = ticket["ticket"].as_str().unwrap_or_default();
    assert!(!ticket.is_empty());
    assert_eq!(me_status(&app, ticket).await?, 401, "ticket as bearer");
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_cookie_for_one_user_and_a_bearer_for_another_is_refused() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let alice = sign_up(&app, "alice-mix").await?;
    let mallory = sign_up(&app, "mallory-mix").await?;
    let response = app
        .http
        .get(app.url("/api/auth/me"))
        .bearer_auth(&mallory.access)
        .header("cookie", format!("arian_access={}", alice.access))
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    backing.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_server_refuses_to_start_with_a_missing_or_short_jwt_secret() -> anyhow::Result<()> {
    let backing = Backing::embedded();
    let vars = backing.vars(&[("JWT_SECRET", "")]);
    let lookup = |vars: Vec<(String, String)>| {
        move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    };
    let config = arian_core::config::Config::from_lookup(lookup(vars))?;
    let error = arian_api::startup::run_server(config)
        .await
        .expect_err("no secret, no server");
    assert!(format!("{error:#}").contains("JWT_SECRET"), "{error:#}");

    let short = arian_core::config::Config::from_lookup(lookup(
        backing.vars(&[("JWT_SECRET", "only-twenty-bytes-xx")]),
    ))
    .expect_err("a short secret is refused");
    assert_eq!(short.var, "JWT_SECRET");
    assert!(short.to_string().contains("32 bytes"), "{short}");
    backing.cleanup().await;
    Ok(())
}
