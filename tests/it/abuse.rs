//! Issue 5, parts 4 and 5: login throttling (per site and client address,
//! per account), sign-in timing that does not reveal accounts, security
//! headers, and https hardening behind a trusted proxy.

use std::time::{Duration, Instant};

use reqwest::header::{RETRY_AFTER, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};

use crate::harness::{AppOptions, PASSWORD, TestApp, TestDb, csrf_for};

const ACME: &str = "acme.localhost";
const GLOBEX: &str = "globex.localhost";

async fn two_tenants(options: AppOptions) -> TestApp {
    let db = TestDb::new().await;
    db.create_tenant_named("acme", "Acme Inc").await;
    db.create_tenant_named("globex", "Globex Corporation").await;
    db.create_super_admin("root@panel.test").await;
    TestApp::start_opts(db, options).await
}

/// POSTs the login form of `host` with `extra` headers.
async fn login(
    app: &TestApp,
    client: &Client,
    host: &str,
    email: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> Response {
    let token = csrf_for(client, &app.url(host, "/login")).await;
    let mut request = client.post(app.url(host, "/login")).form(&[
        ("email", email),
        ("password", password),
        ("csrf_token", &token),
    ]);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// A 429 that re-renders the login form with a clear wait and `Retry-After`.
async fn assert_throttled(response: Response) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry), "Retry-After {retry}");
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Too many failed sign-in attempts. Try again in"),
        "{page}"
    );
    assert!(page.contains("name=\"password\""), "the login form again");
}

#[tokio::test]
async fn workspace_logins_are_throttled_per_account_and_per_address() {
    let app = two_tenants(AppOptions::default()).await;
    let client = app.client();
    // Per account: ten failures, then even the right password waits.
    for _ in 0..10 {
        let response = login(
            &app,
            &client,
            ACME,
            "admin@acme.test",
            "wrong-password",
            &[],
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = login(&app, &client, ACME, "ADMIN@acme.test", PASSWORD, &[]).await;
    assert_throttled(response).await;
    assert_eq!(
        app.db
            .count("SELECT count(*) FROM t_acme.sessions WHERE user_id IS NOT NULL")
            .await,
        0
    );
    // Another workspace counts on its own.
    let response = login(&app, &client, GLOBEX, "admin@globex.test", PASSWORD, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Per address: twenty failures for twenty accounts, then a real account
    // from that address waits too.
    let other = app.client();
    for i in 0..20 {
        let email = format!("nobody{i}@globex.test");
        let response = login(&app, &other, GLOBEX, &email, "wrong-password", &[]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let response = login(&app, &other, GLOBEX, "admin@globex.test", PASSWORD, &[]).await;
    assert_throttled(response).await;
    // Without a trusted proxy, a forged X-Forwarded-For changes nothing.
    let forged = [("x-forwarded-for", "198.51.100.7")];
    let response = login(&app, &other, GLOBEX, "admin@globex.test", PASSWORD, &forged).await;
    assert_throttled(response).await;
}

#[tokio::test]
async fn control_panel_logins_are_throttled_per_address_with_the_same_message() {
    let app = two_tenants(AppOptions::default()).await;
    let client = app.client();
    for i in 0..20 {
        let email = format!("guess{i}@panel.test");
        let response = login(&app, &client, "localhost", &email, "wrong-password", &[]).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let response = login(&app, &client, "localhost", "root@panel.test", PASSWORD, &[]).await;
    assert_throttled(response).await;
    // The tenant sites count separately from the control panel.
    let response = login(&app, &client, ACME, "admin@acme.test", PASSWORD, &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// An unknown email is checked against a dummy hash, so it takes as long
/// as a wrong password for a real account: timing does not say which
/// addresses have accounts.
#[tokio::test]
async fn unknown_emails_take_as_long_as_known_ones() {
    let app = two_tenants(AppOptions::default()).await;
    let client = app.client();
    let token = csrf_for(&client, &app.url(ACME, "/login")).await;
    let attempt = |email: String| {
        let request = client.post(app.url(ACME, "/login")).form(&[
            ("email", email.as_str()),
            ("password", "wrong-password"),
            ("csrf_token", &token),
        ]);
        async move {
            let started = Instant::now();
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            response.bytes().await.unwrap();
            started.elapsed()
        }
    };
    // Warm up (connection, statement cache), then alternate the two kinds.
    attempt("warm@acme.test".into()).await;
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..7 {
        known.push(attempt("admin@acme.test".into()).await);
        unknown.push(attempt(format!("nobody{i}@acme.test")).await);
    }
    let (known, unknown) = (median(known), median(unknown));
    // Hashing costs tens of milliseconds, a lookup well under one: without
    // the dummy hash the unknown email would be many times faster.
    assert!(
        unknown * 3 >= known && known * 3 >= unknown,
        "known {known:?} vs unknown {unknown:?}"
    );
}

const CSP_PARTS: [&str; 4] = [
    "default-src 'self'",
    "script-src 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
];

fn assert_security_headers(what: &str, response: &Response) {
    let h = response.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in CSP_PARTS {
        assert!(csp.contains(part), "{what}: CSP {csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["referrer-policy"], "same-origin", "{what}");
    assert!(
        h.get("strict-transport-security").is_none(),
        "{what}: no HSTS over http"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_pages_have_no_inline_script() {
    let app = two_tenants(AppOptions::default()).await;
    let client = app.client();
    for (host, path) in [
        (ACME, "/login"),
        (ACME, "/"),
        (ACME, "/theme.css"),
        (ACME, "/no/such/page"),
        ("localhost", "/login"),
        ("nowhere.test", "/"),
        (ACME, "/healthz"),
        (ACME, "/static/css/app.css"),
    ] {
        let response = client.get(app.url(host, path)).send().await.unwrap();
        let what = format!("{host}{path}");
        assert_security_headers(&what, &response);
        let body = response.text().await.unwrap();
        // CSP forbids inline script; the pages must not need any.
        assert!(
            !body.contains("<script>") && !body.contains(" onclick="),
            "{what}"
        );
    }
    // Over plain http, and without a trusted proxy, cookies are not Secure
    // and an https claim from the client is ignored.
    let response = client
        .get(app.url(ACME, "/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

fn cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn behind_a_trusted_https_proxy_cookies_are_secure_and_hsts_is_sent() {
    let options = AppOptions {
        trust_proxy: true,
        ..AppOptions::default()
    };
    let app = two_tenants(options).await;
    let client = app.client();
    let https = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "203.0.113.1"),
    ];

    // The login page sets the CSRF cookie; signing in sets the session.
    let mut request = client.get(app.url(ACME, "/login"));
    for (name, value) in https {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    let set = cookies(&response);
    assert!(!set.is_empty());
    assert!(set.iter().all(|c| c.contains("; Secure")), "{set:?}");
    let response = login(&app, &client, ACME, "admin@acme.test", PASSWORD, &https).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set = cookies(&response);
    assert!(
        set.iter().any(|c| c.starts_with("tenantry_session=")),
        "{set:?}"
    );
    assert!(set.iter().all(|c| c.contains("; Secure")), "{set:?}");

    // The same proxy forwarding plain http: no HSTS, no Secure.
    let response = client
        .get(app.url(ACME, "/login"))
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
    assert!(cookies(&response).iter().all(|c| !c.contains("Secure")));

    // The throttle counts the forwarded client address.
    let anon = app.client();
    for i in 0..20 {
        let email = format!("nobody{i}@acme.test");
        let response = login(&app, &anon, ACME, &email, "wrong", &https).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = login(&app, &anon, ACME, "admin@acme.test", PASSWORD, &https).await;
    assert_throttled(response).await;
    let elsewhere = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "203.0.113.2"),
    ];
    let response = login(&app, &anon, ACME, "admin@acme.test", PASSWORD, &elsewhere).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}
