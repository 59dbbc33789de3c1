//! A JSON body extractor whose rejections name the field that is wrong.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like `axum::Json`, but errors use Arian's error body: 415 for another content type, 400
/// for broken JSON, 422 with the field path for a wrong shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        let bytes =
            Bytes::from_request(request, state)
                .await
                .map_err(|e| ApiError::BadRequest {
                    field: None,
                    message: format!("could not read the body: {e}"),
                })?;
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse(&bytes).map(JsonBody)
    }
}

/// Parses JSON, reporting the path of the first wrong field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let field = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::BadRequest {
                field: None,
                message: format!("malformed JSON: {message}"),
            }
        } else {
            let field = if field == "." {
                missing_field(&message).unwrap_or(field)
            } else {
                field
            };
            ApiError::Validation { field, message }
        }
    })
}

/// serde reports a missing top-level field only in its message: "missing field `title`".
fn missing_field(message: &str) -> Option<String> {
    let start = message.find("missing field `")? + "missing field `".len();
    let end = message[start..].find('`')? + start;
    Some(message[start..end].to_string())
}
