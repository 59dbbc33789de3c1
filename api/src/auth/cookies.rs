//! Auth cookies: the access token under a `__Host-` name for the whole site, and the refresh
//! token under a `__Secure-` name scoped to the auth routes. Both httpOnly and SameSite=Strict.

use axum::http::{HeaderMap, HeaderValue, header};

use super::tokens::ACCESS_TTL;

/// Where the refresh cookie is sent: the auth routes only.
pub const REFRESH_PATH: &str = "/api/auth";

/// The access cookie's name: `__Host-` prefixed whenever the cookie is `Secure`.
pub fn access_name(secure: bool) -> &'static str {
    if secure {
        "__Host-arian_access"
    } else {
        "arian_access"
    }
}

/// The refresh cookie's name: `__Secure-` prefixed whenever the cookie is `Secure` (a
/// `__Host-` cookie must use `Path=/`, and this one is scoped to the auth routes).
pub fn refresh_name(secure: bool) -> &'static str {
    if secure {
        "__Secure-arian_refresh"
    } else {
        "arian_refresh"
    }
}

fn cookie(name: &str, value: &str, path: &str, max_age: u64, secure: bool) -> String {
    let secure_attr = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age}{secure_attr}"
    )
}

pub fn access(token: &str, secure: bool) -> String {
    cookie(
        access_name(secure),
        token,
        "/",
        ACCESS_TTL.as_secs(),
        secure,
    )
}

pub fn refresh(token: &str, max_age: u64, secure: bool) -> String {
    cookie(refresh_name(secure), token, REFRESH_PATH, max_age, secure)
}

/// `Set-Cookie` values that delete both cookies.
pub fn cleared(secure: bool) -> [String; 2] {
    [
        cookie(access_name(secure), "", "/", 0, secure),
        cookie(refresh_name(secure), "", REFRESH_PATH, 0, secure),
    ]
}

/// The value of the named cookie in a request, if sent.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Appends `Set-Cookie` headers, skipping any value that is not a valid header.
pub fn set(headers: &mut HeaderMap, values: impl IntoIterator<Item = String>) {
    for value in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(header::SET_COOKIE, value);
        }
    }
}
