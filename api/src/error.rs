//! The API's one error type: a status and `{"error": {code, message, field?}}`, with internal
//! causes logged once and never shown to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use arian_core::ValidationError;
use arian_core::queue::QueueError;
use arian_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("{message}")]
    BadRequest {
        field: Option<String>,
        message: String,
    },
    #[error("authentication required")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error(
        "a write authenticated by the session cookie must come from an allowed origin and be \
         sent as application/json"
    )]
    CrossSiteWrite,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited {
        limit: u32,
        window_secs: u64,
        retry_after_secs: u64,
    },
    #[error("service temporarily unavailable")]
    Unavailable { retry_after_secs: u64 },
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(error.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, Option<&str>) {
        match self {
            ApiError::Validation { field, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                Some(field),
            ),
            ApiError::BadRequest { field, .. } => {
                (StatusCode::BAD_REQUEST, "bad_request", field.as_deref())
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials", None),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", None),
            ApiError::Forbidden | ApiError::CrossSiteWrite => {
                (StatusCode::FORBIDDEN, "forbidden", None)
            }
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", None),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None),
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", None)
            }
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", None),
            ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, field) = self.parts();
        match &self {
            ApiError::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            // Denials are security events; the request span names the client IP and user.
            ApiError::Unauthorized | ApiError::Forbidden | ApiError::CrossSiteWrite => {
                tracing::warn!(status = status.as_u16(), "request denied")
            }
            ApiError::NotFound => tracing::info!("not found or not the caller's"),
            _ => {}
        }
        let mut error = json!({"code": code, "message": self.to_string()});
        if let Some(field) = field {
            error["field"] = json!(field);
        }
        let mut response = (status, axum::Json(json!({"error": error}))).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unavailable { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            ApiError::RateLimited {
                limit,
                window_secs,
                retry_after_secs,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                crate::limits::rate_headers(
                    headers,
                    limit,
                    0,
                    std::time::Duration::from_secs(retry_after_secs),
                    std::time::Duration::from_secs(window_secs),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        ApiError::Validation {
            field: error.field,
            message: error.message,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::IdempotencyMismatch => ApiError::Validation {
                field: "Idempotency-Key".into(),
                message: "this key was used with a different request".into(),
            },
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        tracing::warn!(error = %error, "queue unavailable");
        ApiError::Unavailable {
            retry_after_secs: 5,
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// An id from the path. Anything but a UUID names nothing, so it is 404 before any query.
#[derive(Debug, Clone)]
pub struct IdPath(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(id) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
        uuid::Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
        Ok(IdPath(id))
    }
}
