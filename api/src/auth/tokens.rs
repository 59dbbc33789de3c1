//! Signed tokens: HS256 access JWTs and WebSocket tickets, each with one accepted algorithm,
//! every claim required, their own `typ` and audience, and no keys taken from the header.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const ISSUER: &str = "arian";
pub const AUDIENCE: &str = "arian-api";
pub const TICKET_AUDIENCE: &str = "arian-ws";
pub const ACCESS_TTL: Duration = Duration::from_secs(4 * 3600);
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Clock skew tolerated on `exp`, `nbf` and `iat`, for HTTP and WebSocket alike.
pub const LEEWAY_SECS: u64 = 5;

const ACCESS_TYP: &str = "access";
const TICKET_TYP: &str = "ws-ticket";

/// An access token's claims. `sid` names the refresh family (the session) it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    pub typ: String,
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    access: Validation,
    ticket: Validation,
}

fn validation(audience: &str) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation
}

impl TokenKeys {
    pub fn new(secret: &SecretString) -> anyhow::Result<Self> {
        let bytes = secret.expose_secret().as_bytes();
        anyhow::ensure!(
            bytes.len() >= arian_core::config::MIN_JWT_SECRET_BYTES,
            "configuration error: JWT_SECRET must be at least {} bytes",
            arian_core::config::MIN_JWT_SECRET_BYTES
        );
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes)?,
            decoding: DecodingKey::from_secret(bytes)?,
            access: validation(AUDIENCE),
            ticket: validation(TICKET_AUDIENCE),
        })
    }

    /// Issues an access token for a user's session.
    pub fn issue(&self, user_id: &str, session: &str) -> Result<String, ApiError> {
        self.sign(user_id, session, AUDIENCE, ACCESS_TYP, ACCESS_TTL, None)
    }

    /// Issues a single-use WebSocket ticket; `jti` is what marks it spent.
    pub fn issue_ticket(&self, user_id: &str, session: &str) -> Result<String, ApiError> {
        let jti = uuid::Uuid::new_v4().to_string();
        self.sign(
            user_id,
            session,
            TICKET_AUDIENCE,
            TICKET_TYP,
            TICKET_TTL,
            Some(jti),
        )
    }

    fn sign(
        &self,
        user_id: &str,
        session: &str,
        audience: &str,
        typ: &str,
        ttl: Duration,
        jti: Option<String>,
    ) -> Result<String, ApiError> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            iss: ISSUER.into(),
            aud: audience.into(),
            iat: now,
            exp: now + ttl.as_secs(),
            nbf: None,
            typ: typ.into(),
            sid: session.to_string(),
            jti,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        self.decode(token, &self.access, ACCESS_TYP)
    }

    pub fn verify_ticket(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = self.decode(token, &self.ticket, TICKET_TYP)?;
        claims
            .jti
            .is_some()
            .then_some(claims)
            .ok_or(ApiError::Unauthorized)
    }

    fn decode(&self, token: &str, validation: &Validation, typ: &str) -> Result<Claims, ApiError> {
        // A token naming its own key (jwk, jku, x5u, x5c) is refused outright, whatever it is
        // signed with: keys come from our configuration only.
        let header = jsonwebtoken::decode_header(token).map_err(|_| ApiError::Unauthorized)?;
        if header.jwk.is_some()
            || header.jku.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
            || header.alg != Algorithm::HS256
        {
            return Err(ApiError::Unauthorized);
        }
        let data = decode::<Claims>(token, &self.decoding, validation)
            .map_err(|_| ApiError::Unauthorized)?;
        if data.claims.typ != typ || data.claims.iat > now_plus_leeway() {
            return Err(ApiError::Unauthorized);
        }
        Ok(data.claims)
    }
}

/// A token issued in the future (beyond the leeway) is forged or from a broken clock.
fn now_plus_leeway() -> u64 {
    jsonwebtoken::get_current_timestamp() + LEEWAY_SECS
}
