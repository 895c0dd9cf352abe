//! Issue 13, part 3: `GET /metrics` for the operator's monitoring.

use reqwest::StatusCode;

use crate::harness::{Sent, TestApp, TestDb};

const TOKEN: &str = "s3cret-scrape-token";

/// `GET /metrics` on `host` with `token`.
async fn get_metrics(app: &TestApp, host: &str, token: &str) -> reqwest::Response {
    app.client()
        .get(app.url(host, "/metrics"))
        .bearer_auth(token)
        .sent()
        .await
}

async fn scrape(app: &TestApp) -> prometheus_parse::Scrape {
    let body = get_metrics(app, "localhost", TOKEN).await;
    assert_eq!(body.status(), StatusCode::OK);
    let text = body.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format")
}

/// The value of `name` with these labels (0 when absent).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_need_the_token_and_count_requests_by_site_route_and_status() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    let app = TestApp::builder(db).metrics_token(TOKEN).start().await;
    let client = app.client();

    // Only on the root domain, and only with the token.
    let anonymous = app.get(&client, "localhost", "/metrics").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = get_metrics(&app, "localhost", "not-the-token").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let on_a_tenant = get_metrics(&app, "acme.localhost", TOKEN).await;
    assert_eq!(on_a_tenant.status(), StatusCode::NOT_FOUND);

    let before = scrape(&app).await;
    let login = [("site", "tenant"), ("route", "/login"), ("status", "200")];
    let seen = value(&before, "tenantry_http_requests_total", &login);
    for _ in 0..3 {
        let page = app.get(&client, "acme.localhost", "/login").await;
        assert_eq!(page.status(), StatusCode::OK);
    }
    app.sign_in_with(
        &client,
        "acme.localhost",
        "admin@acme.test",
        "wrong-password",
        &[],
    )
    .await;
    let after = scrape(&app).await;
    // Other tests share the process's counters: at least ours were added.
    assert!(value(&after, "tenantry_http_requests_total", &login) >= seen + 3.0);
    assert!(
        value(
            &after,
            "tenantry_sign_ins_total",
            &[("site", "tenant"), ("outcome", "failure")]
        ) >= 1.0
    );
    assert!(
        after.samples.iter().any(|s| s
            .metric
            .starts_with("tenantry_http_request_duration_seconds")),
        "a latency histogram"
    );
    assert!(value(&after, "tenantry_tenants", &[("status", "active")]) >= 1.0);
    assert!(value(&after, "tenantry_db_pool_max", &[]) >= 1.0);
    assert!(value(&after, "tenantry_registry_tenants", &[]) >= 1.0);
    // Bounded labels: never a tenant's name.
    assert!(
        after
            .samples
            .iter()
            .all(|s| !s.labels.values().any(|v| v.contains("acme")))
    );
}

#[tokio::test]
async fn without_a_token_setting_metrics_are_not_there() {
    let app = TestApp::start(TestDb::new().await).await;
    let response = get_metrics(&app, "localhost", TOKEN).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
