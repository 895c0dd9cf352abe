//! Host routing over real HTTP.

use crate::harness::{Sent, TestApp, TestDb, header};

async fn app_with_tenants() -> TestApp {
    let db = TestDb::two_tenants().await;
    db.exec("INSERT INTO tenant_domains (domain, tenant_id) SELECT 'tasks.acme.com', id FROM tenants WHERE slug = 'acme'").await;
    let app = TestApp::start(db).await;
    app.wait_for_host("tasks.acme.com").await;
    app
}

#[tokio::test]
async fn each_host_reaches_its_site() {
    let app = app_with_tenants().await;
    let client = app.client();
    let get = |host: &str, path: &str| client.get(app.url(host, path)).send();

    // The panel's pages need a signed-in super-admin; its login page does not.
    let panel = get("localhost", "/").await.unwrap();
    assert_eq!(panel.status(), 303);
    let panel = get("localhost", "/login").await.unwrap();
    assert_eq!(panel.status(), 200);
    assert!(
        panel
            .text()
            .await
            .unwrap()
            .contains("Tenantry control panel")
    );

    for host in [
        "acme.localhost",
        "ACME.LocalHost",
        "tasks.acme.com",
        "Tasks.Acme.Com",
    ] {
        let page = get(host, "/").await.unwrap();
        // The tenant app answers (the board redirects to login once it exists).
        assert!(
            page.status().is_success() || page.status().is_redirection(),
            "{host}: {}",
            page.status()
        );
        let css = get(host, "/theme.css").await.unwrap().text().await.unwrap();
        assert!(css.contains("--primary: #4f46e5"), "{host}: {css}");
    }

    let globex = get("globex.localhost", "/login")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!globex.contains("Acme"), "globex's pages never name acme");
}

#[tokio::test]
async fn unknown_hosts_get_a_404_that_names_no_tenant() {
    let app = app_with_tenants().await;
    let client = app.client();
    for host in [
        "nope.localhost",
        "acme.localhost.evil.com",
        "evil.com",
        "127.0.0.1",
    ] {
        for path in ["/", "/login", "/theme.css"] {
            let response = app.get(&client, host, path).await;
            assert_eq!(response.status(), 404, "{host}{path}");
            let body = response.text().await.unwrap();
            assert!(
                body.contains("Page not found"),
                "{host}{path}: a page, not a blank body"
            );
            assert!(
                !body.contains("Acme") && !body.contains("Globex"),
                "{host}{path}"
            );
        }
    }
}

#[tokio::test]
async fn health_checks_answer_on_every_host() {
    let app = app_with_tenants().await;
    let client = app.client();
    for host in ["localhost", "acme.localhost", "nope.example", "127.0.0.1"] {
        let health = app.get(&client, host, "/healthz").await;
        assert_eq!(health.status(), 200, "{host}");
        assert_eq!(health.text().await.unwrap(), "ok");
        let ready = app.get(&client, host, "/readyz").await;
        assert_eq!(ready.status(), 200, "{host}");
    }
}

/// Raw HTTP, for requests a normal client will not send. Returns the status line.
async fn raw_status(app: &TestApp, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    response.lines().next().unwrap_or("").to_owned()
}

#[tokio::test]
async fn host_header_variants() {
    let app = app_with_tenants().await;
    let port = app.addr.port();
    // HTTP/1.0 without Host: 400.
    let line = raw_status(&app, "GET / HTTP/1.0\r\n\r\n").await;
    assert!(line.contains(" 400 "), "{line}");
    // Trailing dot and port are ignored.
    let request = format!(
        "GET /theme.css HTTP/1.1\r\nHost: acme.localhost.:{port}\r\nConnection: close\r\n\r\n"
    );
    let line = raw_status(&app, &request).await;
    assert!(line.contains(" 200 "), "{line}");
    // Forwarded hosts are ignored unless a proxy is trusted.
    let request = "GET /theme.css HTTP/1.1\r\nHost: nope.localhost\r\n\
                   X-Forwarded-Host: acme.localhost\r\nConnection: close\r\n\r\n";
    let line = raw_status(&app, request).await;
    assert!(line.contains(" 404 "), "{line}");
}

#[tokio::test]
async fn static_assets_are_served_with_cache_headers() {
    let app = app_with_tenants().await;
    let client = app.client();
    let css = app
        .get(&client, "acme.localhost", "/static/css/app.css")
        .await;
    assert_eq!(css.status(), 200);
    assert!(header(&css, "content-type").starts_with("text/css"));
    assert!(header(&css, "cache-control").contains("max-age"));
    let etag = css.headers()["etag"].clone();
    let again = client
        .get(app.url("acme.localhost", "/static/css/app.css"))
        .header("if-none-match", etag)
        .sent()
        .await;
    assert_eq!(again.status(), 304);
    for path in [
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/css/../../Cargo.toml",
        "/static/nope.css",
    ] {
        let response = app.get(&client, "localhost", path).await;
        assert!(
            response.status() == 404 || response.status() == 400,
            "{path}: {}",
            response.status()
        );
    }
}
