//! Personal API keys: shown once, stored hashed, owner-only, unable to mint more keys, and
//! dead the moment they are revoked.

use arian_tests::{Backing, TestApp, scenario_body};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::sign_up;

#[tokio::test]
async fn a_leaked_api_key_is_useless_once_revoked_and_never_stored_in_clear() -> anyhow::Result<()>
{
    let backing = Backing::embedded();
    let app = TestApp::spawn(backing.config(&[])).await?;
    let owner = sign_up(&app, "scripter").await?;
    let stranger = sign_up(&app, "stranger").await?;

    let (status, created) = app
        .post(&owner.access, "/api/api-keys", &json!({"name": "ci"}))
        .await?;
    assert_eq!(status, 201, "{created}");
    let key = created["data"]["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let id = created["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(key.starts_with("arian_") && key.len() > 60, "{key}");

    // The key works as a bearer credential, and ids in bodies cannot switch users.
    let mut body = scenario_body("01");
    body["userId"] = json!(stranger.user_id);
    let (status, negotiation) = app.post(&key, "/api/negotiations", &body).await?;
    assert_eq!(status, 201, "{negotiation}");
    let (_, mine) = app.get(&owner.access, "/api/negotiations").await?;
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(1));
    let (_, theirs) = app.get(&stranger.access, "/api/negotiations").await?;
    assert_eq!(theirs["data"].as_array().map(Vec::len), Some(0));

    // Listed without the secret; stored only as its SHA-256.
    let (_, listed) = app.get(&owner.access, "/api/api-keys").await?;
    assert_eq!(listed["data"][0]["id"], json!(id));
    assert!(!listed.to_string().contains(&key));
    let row = app
        .services
        .store
        .connection()
        .query_one_raw(Statement::from_string(
            app.services.store.backend(),
            "SELECT key_hash FROM api_keys",
        ))
        .await?
        .expect("one key row");
    let stored: String = row.try_get("", "key_hash")?;
    assert_eq!(stored, hex::encode(Sha256::digest(key.as_bytes())));

    // A key cannot mint keys; another user cannot see or revoke it.
    let (status, _) = app
        .post(&key, "/api/api-keys", &json!({"name": "more"}))
        .await?;
    assert_eq!(status, 403);
    let (_, other_list) = app.get(&stranger.access, "/api/api-keys").await?;
    assert_eq!(other_list["data"], json!([]));
    let delete = |token: String| {
        app.http
            .delete(app.url(&format!("/api/api-keys/{id}")))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(delete(stranger.access.clone()).await?.status(), 404);
    assert_eq!(app.get(&key, "/api/negotiations").await?.0, 200);

    assert_eq!(delete(owner.access.clone()).await?.status(), 204);
    assert_eq!(app.get(&key, "/api/negotiations").await?.0, 401);
    assert_eq!(delete(owner.access.clone()).await?.status(), 404);

    let (status, error): (u16, Value) = app
        .post(&owner.access, "/api/api-keys", &json!({"name": ""}))
        .await?;
    assert_eq!(
        (status, error["error"]["field"].clone()),
        (422, json!("name"))
    );
    backing.cleanup().await;
    Ok(())
}
