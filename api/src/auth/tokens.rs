//! Access tokens: HS256 JWTs with one accepted algorithm and every claim required.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const ISSUER: &str = "arian";
pub const AUDIENCE: &str = "arian-api";
pub const ACCESS_TTL: Duration = Duration::from_secs(4 * 3600);
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    pub typ: String,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(secret: &SecretString) -> anyhow::Result<Self> {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes)?,
            decoding: DecodingKey::from_secret(bytes)?,
            validation,
        })
    }

    /// Issues an access token for a user.
    pub fn issue(&self, user_id: &str) -> Result<String, ApiError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + ACCESS_TTL.as_secs(),
            typ: "access".into(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::Unauthorized)?;
        if data.claims.typ != "access" {
            return Err(ApiError::Unauthorized);
        }
        Ok(data.claims)
    }
}

/// The access cookie's name: `__Host-` prefixed whenever the cookie is `Secure`.
pub fn access_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-arian_access"
    } else {
        "arian_access"
    }
}

/// A `Set-Cookie` value for the access token.
pub fn access_cookie(token: &str, secure: bool) -> String {
    let secure_attr = if secure { "; Secure" } else { "" };
    format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure_attr}",
        access_cookie_name(secure),
        ACCESS_TTL.as_secs()
    )
}
