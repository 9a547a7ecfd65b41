//! The portal's session: the cookie that carries the JSON API's token, who it belongs to (the
//! same checks as the API's [`CurrentUser`]), and the CSRF tokens of its forms.
//!
//! - **Session cookie** `ccare_session`: the JWT `/api/auth/employee-login` would answer with,
//!   `HttpOnly; SameSite=Lax; Path=/portal`, `Max-Age` the token's lifetime, and `Secure` when
//!   the request came over HTTPS (the URI's scheme, or `X-Forwarded-Proto: https` /
//!   `Forwarded: proto=https` from the reverse proxy). Its name is not the legacy
//!   `access_token`, so the JSON API (which still honours that legacy cookie) never accepts it:
//!   the JSON API stays a bearer-header API, and only the portal's forms, each CSRF-checked,
//!   act on the cookie. Lax rather than Strict so that a link to a portal page from elsewhere
//!   (an e-mail) opens it signed in; every change is a POST, which Lax never sends cross-site.
//! - **CSRF token** of a session's forms: HMAC-SHA256 keyed with the session's token, of a fixed
//!   label, in hex. Only someone holding the HttpOnly cookie can compute it; it changes with
//!   every login and dies with the session; nothing is stored.
//! - **Login form**: a pre-session cookie `ccare_login` (random, `HttpOnly; SameSite=Strict`)
//!   and the same value in the form (double submit), so a foreign page cannot log a browser in
//!   to someone else's account (login CSRF).

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;

use super::pages;

/// The session cookie: the token.
pub(crate) const SESSION_COOKIE: &str = "ccare_session";
/// The login form's pre-session cookie (login CSRF).
pub(crate) const LOGIN_COOKIE: &str = "ccare_login";
/// Where the portal's cookies are sent.
const COOKIE_PATH: &str = "/portal";
/// How long a login form stays usable.
const LOGIN_COOKIE_SECONDS: u64 = 3600;
/// What a session's CSRF token is the HMAC of.
const CSRF_LABEL: &[u8] = b"ccare portal form v1";

/// A signed-in portal user: the API's checks passed on the session cookie's token.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) user: CurrentUser,
    /// The token of this session's forms.
    pub(crate) csrf: String,
    /// Whether the request came over HTTPS (cookies set in answer to it are `Secure`).
    pub(crate) secure: bool,
}

impl Session {
    /// Whether `given` is this session's CSRF token.
    pub(crate) fn csrf_matches(&self, given: &str) -> bool {
        constant_time_eq(self.csrf.as_bytes(), given.trim().as_bytes())
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name && !value.is_empty()).then(|| value.to_string())
        })
}

/// Whether the request reached us over HTTPS (directly or through the reverse proxy).
pub(crate) fn is_https(headers: &HeaderMap, uri: &Uri) -> bool {
    if uri.scheme_str() == Some("https") {
        return true;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(proto) = header("x-forwarded-proto") {
        return proto
            .split(',')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    }
    header("forwarded").is_some_and(|f| {
        f.split(',').next().is_some_and(|first| {
            first.split(';').any(|pair| {
                pair.trim().split_once('=').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("proto")
                        && v.trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        })
    })
}

/// A `Set-Cookie` value for one of the portal's cookies; `max_age` 0 removes it.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    max_age: u64,
    same_site: &str,
    secure: bool,
) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    );
    // Names are constants and values are tokens (base64url, dots, hex): always a valid header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` of a new session.
pub(crate) fn session_cookie(token: &str, lifetime_s: u64, secure: bool) -> HeaderValue {
    set_cookie(SESSION_COOKIE, token, lifetime_s, "Lax", secure)
}

/// The `Set-Cookie` that ends a session in the browser.
pub(crate) fn clear_session_cookie(secure: bool) -> HeaderValue {
    set_cookie(SESSION_COOKIE, "", 0, "Lax", secure)
}

/// The `Set-Cookie` of a login form's pre-session value.
pub(crate) fn login_cookie(value: &str, secure: bool) -> HeaderValue {
    set_cookie(LOGIN_COOKIE, value, LOGIN_COOKIE_SECONDS, "Strict", secure)
}

pub(crate) fn clear_login_cookie(secure: bool) -> HeaderValue {
    set_cookie(LOGIN_COOKIE, "", 0, "Strict", secure)
}

/// A fresh login form value: 256 random bits in hex.
pub(crate) fn new_login_value() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

/// The CSRF token of the session whose token is `session_token`.
pub(crate) fn csrf_token(session_token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(session_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(CSRF_LABEL);
    hex::encode(mac.finalize().into_bytes())
}

/// `a == b` in time that depends on the lengths only.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `next` if it is a portal page of this site (a relative path under `/portal`), else `None`:
/// an absolute URL, a scheme-relative `//host` or a backslash never leaves the site.
pub(crate) fn safe_next(next: Option<&str>) -> Option<String> {
    let next = next?.trim();
    let bytes = next.as_bytes();
    let relative = bytes.first() == Some(&b'/') && !matches!(bytes.get(1), Some(b'/' | b'\\'));
    let clean = !next.contains('\\') && !next.chars().any(char::is_control);
    let portal = next == "/portal" || next.starts_with("/portal/") || next.starts_with("/portal?");
    (relative && clean && portal).then(|| next.to_string())
}

/// `text` percent-encoded for a query value.
pub(crate) fn encode_query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The login page's address that comes back to this request's page.
fn login_location(parts: &Parts) -> String {
    let here = parts.uri.path_and_query().map(|pq| pq.as_str());
    match safe_next(here).filter(|_| parts.method == axum::http::Method::GET) {
        Some(next) if next != "/portal/" => {
            format!("/portal/login?next={}", encode_query_value(&next))
        }
        _ => "/portal/login".to_string(),
    }
}

impl FromRequestParts<AppState> for Session {
    /// A redirect to the login page (clearing a cookie that no longer works), or an error page.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let secure = is_https(&parts.headers, &parts.uri);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(pages::see_other(&login_location(parts), None));
        };
        // The API's own checks (signature, expiry, the account now: disabled, logged out,
        // password changed) on a request that carries only this token, from the portal channel.
        let (mut checked, ()) = axum::http::Request::new(()).into_parts();
        checked.method = parts.method.clone();
        checked.uri = parts.uri.clone();
        checked.extensions = parts.extensions.clone();
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            pages::see_other(&login_location(parts), Some(clear_session_cookie(secure)))
        })?;
        checked.headers.insert(AUTHORIZATION, bearer);
        checked
            .headers
            .insert("x-ccare-channel", HeaderValue::from_static("portal"));
        match CurrentUser::from_request_parts(&mut checked, state).await {
            Ok(user) => Ok(Session {
                user,
                csrf: csrf_token(&token),
                secure,
            }),
            Err(ApiError::Unauthorized(_)) => Err(pages::see_other(
                &login_location(parts),
                Some(clear_session_cookie(secure)),
            )),
            Err(other) => Err(pages::failure(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_portal_paths_are_honoured_as_next() {
        assert_eq!(safe_next(Some("/portal/")).as_deref(), Some("/portal/"));
        assert_eq!(
            safe_next(Some("/portal/x?y=1")).as_deref(),
            Some("/portal/x?y=1")
        );
        for bad in [
            "https://evil.example/portal/",
            "//evil.example/portal/",
            "/\\evil.example",
            "/portal\\..\\x",
            "/api/auth/me",
            "portal/",
            "/portal/\r\nSet-Cookie: x=1",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_next(None), None);
    }

    #[test]
    fn a_csrf_token_belongs_to_one_session() {
        let a = csrf_token("token a");
        assert_eq!(a, csrf_token("token a"));
        assert_ne!(a, csrf_token("token b"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn https_is_recognised_from_the_proxy_headers() {
        let uri: Uri = "/portal/".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert!(!is_https(&headers, &uri));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(is_https(&headers, &uri));
        let mut headers = HeaderMap::new();
        headers.insert(
            "forwarded",
            HeaderValue::from_static("for=1.2.3.4;proto=https"),
        );
        assert!(is_https(&headers, &uri));
    }

    #[test]
    fn cookies_are_http_only_and_scoped_to_the_portal() {
        let value = session_cookie("abc", 60, true);
        assert_eq!(
            value.to_str().unwrap(),
            "ccare_session=abc; Path=/portal; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
