//! Opaque secrets handed to clients (refresh tokens, API keys): 256 random bits, stored only
//! as their SHA-256.

use sha2::{Digest, Sha256};

/// The prefix every personal API key starts with, so scanners and the auth extractor know it.
pub const API_KEY_PREFIX: &str = "arian_";

/// 256 random bits as 64 hex characters.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A new personal API key.
pub fn new_api_key() -> String {
    format!("{API_KEY_PREFIX}{}", random_token())
}

/// The stored form of a presented secret.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
