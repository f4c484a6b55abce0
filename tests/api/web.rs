//! The web app over a real socket: sign-in, sessions, the calls page and its role rule, CSRF,
//! security headers and both languages. (The browser tests drive the same pages in Chromium.)

use callgrade::domain::Role;
use callgrade::jobs::Registry;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

pub(crate) const PASSWORD: &str = "a long enough password";

/// A client that shows redirects instead of following them, and keeps no cookies of its own.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

pub(crate) async fn create_user(app: &TestApp, name: &str, role: Role, manager: Option<&str>) {
    callgrade::accounts::create_user(&app.store, name, role, manager, PASSWORD)
        .await
        .expect("create user");
}

/// Signs in and returns the `Cookie` header value that carries the session.
pub(crate) async fn sign_in(app: &TestApp, name: &str) -> String {
    let r = browser()
        .post(app.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("username", name),
            ("password", PASSWORD),
            ("next", "/calls"),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    assert_eq!(r.headers()[LOCATION], "/calls");
    session_cookie(&r).expect("a session cookie")
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("callgrade_session=") && !c.starts_with("callgrade_session=;"))
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
}

pub(crate) async fn get(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    browser()
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("get")
}

async fn sign_in_sign_out_and_a_disabled_user_s_session_stops(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    create_user(&app, "Anna.QA", Role::Qa, None).await;

    // Not signed in: the calls page sends to the sign-in page, and back afterwards.
    let r = get(&app, "/calls?status=done", "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/login?next=/calls%3Fstatus%3Ddone");

    // A wrong password: 401, the form again with the reason, no cookie.
    let r = browser()
        .post(app.url("/login"))
        .form(&[("username", "anna.qa"), ("password", "wrong password!")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&r).is_none());
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Wrong username or password"));

    // The right one (the name in any case): a session; the cookie is HttpOnly and SameSite.
    let r = browser()
        .post(app.url("/login"))
        .form(&[("username", "ANNA.qa"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let raw = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        raw.contains("HttpOnly") && raw.contains("SameSite=Lax"),
        "{raw}"
    );
    assert!(!raw.contains("Secure"), "plain HTTP: {raw}");
    let cookie = session_cookie(&r).unwrap();
    let r = get(&app, "/calls", &cookie).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("anna.qa"));
    // Only a hash of the secret is stored.
    let secret = cookie.split_once('=').unwrap().1;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE id_hash = $1")
        .bind(secret.to_string())
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);

    // Sign out: the same cookie no longer works.
    let r = browser()
        .post(app.url("/logout"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get(&app, "/calls", &cookie).await.status(),
        StatusCode::SEE_OTHER
    );

    // Disabling a user ends their open session at once.
    let cookie = sign_in(&app, "anna.qa").await;
    assert_eq!(get(&app, "/calls", &cookie).await.status(), StatusCode::OK);
    assert!(app.store.disable_user("anna.qa").await.unwrap());
    let r = get(&app, "/calls", &cookie).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .starts_with("/login"));
    // ... and they cannot sign in again.
    let r = browser()
        .post(app.url("/login"))
        .form(&[("username", "anna.qa"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn a_password_change_ends_every_session(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    create_user(&app, "boris", Role::Head, None).await;
    let first = sign_in(&app, "boris").await;
    let second = sign_in(&app, "boris").await;
    callgrade::accounts::reset_password(&app.store, "boris", "another long password")
        .await
        .unwrap();
    for cookie in [first, second] {
        assert_eq!(
            get(&app, "/calls", &cookie).await.status(),
            StatusCode::SEE_OTHER
        );
    }
}

async fn a_manager_sees_only_their_own_calls(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    create_user(&app, "mila", Role::Manager, Some("m-1")).await;
    create_user(&app, "head", Role::Head, None).await;
    app.upload_call("m-1").await;
    app.upload_call("m-2").await;
    let mila = sign_in(&app, "mila").await;
    // Asking for a colleague's calls still shows only her own.
    let page = get(&app, "/calls?manager=m-2", &mila)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(">m-1<"), "{page}");
    assert!(!page.contains(">m-2<"), "a colleague's call leaked: {page}");
    let head = sign_in(&app, "head").await;
    let page = get(&app, "/calls", &head).await.text().await.unwrap();
    assert!(page.contains(">m-1<") && page.contains(">m-2<"));
    let page = get(&app, "/calls?manager=m-2", &head)
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(">m-1<") && page.contains(">m-2<"));
}

async fn cross_site_posts_are_refused_and_pages_carry_a_strict_policy(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    create_user(&app, "anna", Role::Qa, None).await;
    let cookie = sign_in(&app, "anna").await;
    // A form on another site posting sign-out (or anything) with the user's cookie: 403.
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = browser()
            .post(app.url("/logout"))
            .header(COOKIE, &cookie)
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{header}: {value}");
    }
    assert_eq!(get(&app, "/calls", &cookie).await.status(), StatusCode::OK);
    // Our own origin passes.
    let host = app.base_url.trim_start_matches("http://").to_string();
    let r = browser()
        .post(app.url("/logout"))
        .header(COOKIE, &cookie)
        .header("origin", format!("http://{host}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Every page: a nonce-based script policy without 'unsafe-inline', no framing.
    for path in ["/login", "/no-such-page"] {
        let r = get(&app, path, "").await;
        let csp = r.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_string();
        let script_src = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .expect("script-src");
        assert!(script_src.contains("'nonce-"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let nonce = script_src
            .split("'nonce-")
            .nth(1)
            .unwrap()
            .trim_end_matches('\'');
        let html = r.text().await.unwrap();
        assert!(html.contains(&format!("nonce=\"{nonce}\"")), "{html}");
    }
    // The 404 of a page is a page; the API's stays JSON.
    let r = get(&app, "/no-such-page", "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let r = get(&app, "/api/v1/no-such", "").await;
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    // The API takes no cookies: a signed-in browser is still unauthenticated there.
    let cookie = sign_in(&app, "anna").await;
    assert_eq!(
        get(&app, "/api/v1/calls", &cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn both_languages_render_and_the_choice_is_remembered(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    create_user(&app, "anna", Role::Qa, None).await;
    // From Accept-Language before sign-in.
    let r = browser()
        .get(app.url("/login"))
        .header("accept-language", "ru-RU,ru;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<html lang=\"ru\">") && html.contains("Войти"),
        "{html}"
    );
    let r = browser().get(app.url("/login")).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("Sign in"));

    // Chosen in the page: a cookie, and the user's stored choice.
    let cookie = sign_in(&app, "anna").await;
    let r = browser()
        .post(app.url("/language"))
        .header(COOKIE, &cookie)
        .form(&[("lang", "ru"), ("back", "/calls")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/calls");
    let lang_cookie = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        lang_cookie.starts_with("callgrade_lang=ru"),
        "{lang_cookie}"
    );
    // Without the language cookie (another browser), the stored choice still applies.
    let html = get(&app, "/calls", &cookie).await.text().await.unwrap();
    assert!(html.contains("Звонки") && html.contains("Выйти"), "{html}");
    let user = app.store.user_by_name("anna").await.unwrap().unwrap();
    assert_eq!(user.language.as_deref(), Some("ru"));
}

async fn sign_in_is_rate_limited_per_user(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    create_user(&app, "anna", Role::Qa, None).await;
    for _ in 0..5 {
        let r = browser()
            .post(app.url("/login"))
            .form(&[("username", "anna"), ("password", "not the password")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Now even the right password waits out the window.
    let r = browser()
        .post(app.url("/login"))
        .form(&[("username", "anna"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert!(session_cookie(&r).is_none());
}

async fn assets_are_hashed_immutable_and_gzipped(_backend: Backend) {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    let html = get(&app, "/login", "").await.text().await.unwrap();
    let css = html
        .split("href=\"")
        .map(|s| s.split('"').next().unwrap())
        .find(|h| h.starts_with("/assets/app.") && h.ends_with(".css"))
        .expect("stylesheet link")
        .to_string();
    let r = browser()
        .get(app.url(&css))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let r = get(&app, "/assets/app.0000000000.css", "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

on_both_backends!(
    sign_in_sign_out_and_a_disabled_user_s_session_stops,
    a_password_change_ends_every_session,
    a_manager_sees_only_their_own_calls,
    cross_site_posts_are_refused_and_pages_carry_a_strict_policy,
    both_languages_render_and_the_choice_is_remembered,
    sign_in_is_rate_limited_per_user,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_served_hashed_immutable_and_gzipped() {
    assets_are_hashed_immutable_and_gzipped(Backend::Sqlite).await;
}

/// A request without a body keeps its connection (an earlier middleware order closed every
/// connection after one answer: the body-timeout wrapper hid that the body was empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_body_keep_the_connection_open() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    for path in ["/login", "/api/v1/openapi.json", "/api/v1/calls"] {
        let r = get(&app, path, "").await;
        assert!(
            r.headers().get("connection").is_none(),
            "{path}: {:?}",
            r.headers().get("connection")
        );
    }
}
