//! Browser sessions: the cookie, the signed-in user as an extractor, and the UI language.
//!
//! The cookie holds 256 random bits; the database holds only their SHA-256 (as for API tokens),
//! so a copy of the database signs nobody in. `HttpOnly; SameSite=Lax; Path=/`, plus `Secure`
//! and the `__Host-` prefix behind HTTPS (`web.secure_cookies`).

use axum::extract::FromRequestParts;
use axum::http::header::{ACCEPT_LANGUAGE, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};

use super::i18n::Lang;
use crate::auth::{generate_secret, hash_secret, Principal};
use crate::http::AppState;
use crate::store::{SessionLimits, UserRecord};

/// The session cookie's name over plain HTTP.
pub const SESSION_COOKIE: &str = "callgrade_session";
/// The session cookie's name behind HTTPS: the prefix makes the browser refuse it unless it is
/// `Secure`, `Path=/` and has no `Domain` (no subdomain can plant or read it).
pub const SECURE_SESSION_COOKIE: &str = "__Host-callgrade_session";
/// The UI language a visitor chose (also stored on the user).
pub const LANG_COOKIE: &str = "callgrade_lang";

/// Whether cookies for this request are `Secure` (HTTPS).
pub fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.web.secure_cookies.unwrap_or_else(|| {
        headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
    })
}

fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// A cookie's value from the request.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// The session secret this request carries, if any.
pub fn session_secret(state: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, session_cookie_name(secure(state, headers)))
}

/// The user of this request's live session, if it carries one.
pub async fn current_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<UserRecord>, crate::store::StoreError> {
    match session_secret(state, headers) {
        Some(secret) => {
            state
                .store
                .session_user(&hash_secret(&secret), limits(state))
                .await
        }
        None => Ok(None),
    }
}

/// How long sessions live, from the settings.
pub fn limits(state: &AppState) -> SessionLimits {
    let web = &state.config.web;
    SessionLimits {
        idle_ms: i64::try_from(web.session_idle_minutes.max(1) * 60_000).unwrap_or(i64::MAX),
        absolute_ms: i64::try_from(web.session_max_hours.max(1) * 3_600_000).unwrap_or(i64::MAX),
    }
}

/// Starts a session for `user`; the `Set-Cookie` value that carries it.
pub async fn start(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserRecord,
) -> Result<HeaderValue, crate::store::StoreError> {
    let secret = generate_secret();
    state
        .store
        .insert_session(&hash_secret(&secret), user.id)
        .await?;
    let secure = secure(state, headers);
    let cookie = Cookie::build((session_cookie_name(secure), secret))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::hours(
            i64::try_from(state.config.web.session_max_hours.max(1)).unwrap_or(24),
        ))
        .build();
    header_value(&cookie)
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn clear(state: &AppState, headers: &HeaderMap) -> HeaderValue {
    let secure = secure(state, headers);
    let mut cookie = Cookie::build((session_cookie_name(secure), ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build();
    cookie.make_removal();
    header_value(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value remembering the UI language for a year.
pub fn language_cookie(state: &AppState, headers: &HeaderMap, lang: Lang) -> HeaderValue {
    let cookie = Cookie::build((LANG_COOKIE, lang.code()))
        .path("/")
        .same_site(SameSite::Lax)
        .secure(secure(state, headers))
        .max_age(cookie::time::Duration::days(365))
        .build();
    header_value(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn header_value(cookie: &Cookie<'_>) -> Result<HeaderValue, crate::store::StoreError> {
    HeaderValue::from_str(&cookie.to_string())
        .map_err(|e| crate::store::StoreError::Corrupt(format!("cookie: {e}")))
}

/// The UI language of a request: the one chosen (cookie), else the user's stored choice,
/// else the browser's `Accept-Language`, else English.
pub fn language(headers: &HeaderMap, user: Option<&UserRecord>) -> Lang {
    cookie_value(headers, LANG_COOKIE)
        .and_then(|c| Lang::from_code(&c))
        .or_else(|| {
            user.and_then(|u| u.language.as_deref())
                .and_then(Lang::from_code)
        })
        .or_else(|| {
            headers
                .get(ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or(Lang::En)
}

/// The signed-in user of a page. A request without a live session is sent to the sign-in page
/// (and comes back to where it was going afterwards).
pub struct WebUser {
    /// The user.
    pub user: UserRecord,
    /// What they may see, as the API's role rules see it.
    pub principal: Principal,
    /// Their UI language.
    pub lang: Lang,
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = current_user(state, &parts.headers)
            .await
            .map_err(|e| crate::http::ApiError::from(e).into_response())?;
        let Some(user) = user else {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let target = format!("/login?next={}", urlencode(next));
            let mut response = Redirect::to(&target).into_response();
            if session_secret(state, &parts.headers).is_some() {
                // An ended or expired session: drop the stale cookie.
                response
                    .headers_mut()
                    .append(SET_COOKIE, clear(state, &parts.headers));
            }
            return Err(response);
        };
        let lang = language(&parts.headers, Some(&user));
        let principal = Principal {
            role: user.role,
            manager_id: user.manager_id.clone(),
            name: user.username.clone(),
        };
        Ok(WebUser {
            user,
            principal,
            lang,
        })
    }
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after signing in: a path on this site, never another site (`//evil`,
/// `https://...`, `/\evil`).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/calls".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/calls?status=done")), "/calls?status=done");
        assert_eq!(safe_next(Some("//evil.example/x")), "/calls");
        assert_eq!(safe_next(Some("https://evil.example/")), "/calls");
        assert_eq!(safe_next(Some("/\\evil.example")), "/calls");
        assert_eq!(safe_next(None), "/calls");
    }

    #[test]
    fn the_chosen_language_wins_over_the_browser() {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT_LANGUAGE,
            HeaderValue::from_static("ru-RU,ru;q=0.9,en;q=0.8"),
        );
        assert_eq!(language(&headers, None), Lang::Ru);
        headers.insert(COOKIE, HeaderValue::from_static("a=b; callgrade_lang=en"));
        assert_eq!(language(&headers, None), Lang::En);
        assert_eq!(language(&HeaderMap::new(), None), Lang::En);
    }
}
