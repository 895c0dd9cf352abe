//! The control panel over real HTTP against the real app and PostgreSQL:
//! login, tenants, branding, domains, suspension, deletion and the audit log.

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use reqwest::{Client, Response, StatusCode};

use crate::harness::{
    PASSWORD, ROOT, Sent, TestApp, TestAppBuilder, TestDb, csrf_for, csrf_from, header, location,
};

const ADMIN: &str = "root@panel.test";

/// A signed-in super-admin's browser.
struct Panel {
    app: TestApp,
    client: Client,
    csrf: String,
}

impl Panel {
    /// A fresh database with `tenants` provisioned and a signed-in super-admin.
    async fn start(tenants: &[&str]) -> Panel {
        let db = TestDb::new().await;
        db.create_super_admin(ADMIN).await;
        for slug in tenants {
            db.create_tenant(slug).await;
        }
        Panel::open(db).await
    }

    /// Starts the app on `db` (which has the super-admin) and signs in.
    async fn open(db: TestDb) -> Panel {
        Panel::open_with(TestApp::builder(db)).await
    }

    /// Starts `app` (whose database has the super-admin) and signs in.
    async fn open_with(app: TestAppBuilder) -> Panel {
        let app = app.start().await;
        let client = app.super_admin(ADMIN).await;
        let csrf = app.csrf(&client, "localhost", "/").await;
        Panel { app, client, csrf }
    }

    fn url(&self, path: &str) -> String {
        self.app.url("localhost", path)
    }

    async fn get(&self, path: &str) -> Response {
        self.app.get(&self.client, ROOT, path).await
    }

    async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.text().await.unwrap()
    }

    /// POSTs a urlencoded form with this browser's CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut all = vec![("csrf_token", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.app.post(&self.client, ROOT, path, &all).await
    }

    /// POSTs the branding form (multipart) of `slug`.
    async fn brand(&self, slug: &str, form: Form) -> Response {
        self.client
            .post(self.url(&format!("/tenants/{slug}/branding")))
            .multipart(form)
            .sent()
            .await
    }

    fn db(&self) -> &TestDb {
        &self.app.db
    }

    async fn audit_count(&self, action: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1")
            .bind(action)
            .fetch_one(&self.db().pool)
            .await
            .unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.db().count(sql).await
    }

    async fn assert_count(&self, sql: &str, expected: i64) {
        self.db().assert_count(sql, expected).await;
    }

    async fn tenant_count(&self) -> i64 {
        self.db().count("SELECT count(*) FROM tenants").await
    }

    /// Polls `host` `path` until it answers `status`, for at most a
    /// second; returns the page.
    async fn until_status(&self, host: &str, path: &str, status: u16) -> String {
        self.within_a_second(host, path, |s, _| s == status).await.1
    }

    /// Polls `host` `path` until `check` holds, for at most a second.
    async fn within_a_second(
        &self,
        host: &str,
        path: &str,
        check: impl Fn(StatusCode, &str) -> bool,
    ) -> (StatusCode, String) {
        let started = Instant::now();
        loop {
            let response = self.client.get(self.app.url(host, path)).sent().await;
            let status = response.status();
            let body = response.text().await.unwrap();
            if check(status, &body) {
                return (status, body);
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{host}{path} did not change within a second: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The page of a 422 answer; `what` names the request in a failure.
async fn unprocessable(response: Response, what: &str) -> String {
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}"
    );
    response.text().await.unwrap()
}

/// The valid fields of the create form, with `overrides` replacing some.
fn create_fields<'a>(overrides: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("slug", "newco"),
        ("display_name", "Newco Ltd"),
        ("admin_email", "boss@newco.test"),
        ("admin_password", "a-long-secret-pw"),
        ("primary_color", "#1D4ED8"),
        ("accent_color", "#f59e0b"),
    ];
    for (key, value) in overrides {
        fields.iter_mut().find(|(k, _)| k == key).unwrap().1 = value;
    }
    fields
}

/// A branding form: valid values, with the logo part as given.
fn branding_form(csrf: &str, primary: &str, logo: Option<(&str, Vec<u8>)>) -> Form {
    let form = Form::new()
        .text("csrf_token", csrf.to_owned())
        .text("display_name", "Acme Rebranded")
        .text("primary_color", primary.to_owned())
        .text("accent_color", "#10b981")
        .text("theme", "dark");
    let (name, bytes) = logo.unwrap_or(("", Vec::new()));
    form.part("logo", Part::bytes(bytes).file_name(name.to_owned()))
}

fn png(size: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    bytes.resize(size.max(bytes.len()), 7);
    bytes
}

#[tokio::test]
async fn login_logout_and_csrf() {
    let db = TestDb::new().await;
    let app = TestApp::start(db).await;
    let client = app.client();
    let login_url = app.url("localhost", "/login");

    // First run: the login page says how to create a super-admin.
    let page = client.get(&login_url).sent().await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("No super-admin exists yet"), "{html}");
    assert!(html.contains("tenantry superadmin create"));
    app.db.create_super_admin(ADMIN).await;
    let html = client.get(&login_url).sent_text().await;
    assert!(!html.contains("No super-admin exists yet"));
    let csrf = csrf_from(&html);
    // Anonymous visits hold their token in a cookie, not a session row.
    assert_eq!(app.db.count("SELECT count(*) FROM cp_sessions").await, 0);

    // No token, or a wrong one: 403 page.
    for token in [None, Some("nope")] {
        let mut fields = vec![("email", ADMIN), ("password", PASSWORD)];
        if let Some(token) = token {
            fields.push(("csrf_token", token));
        }
        let response = client.post(&login_url).form(&fields).sent().await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.text().await.unwrap().contains("Not allowed"));
    }

    // Wrong password and unknown email: 401, one generic message, email kept.
    for (email, password) in [(ADMIN, "wrong-password"), ("who@panel.test", PASSWORD)] {
        let response = client
            .post(&login_url)
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let html = response.text().await.unwrap();
        assert!(
            html.contains("do not match a super-admin account"),
            "{html}"
        );
        assert!(html.contains(&format!("value=\"{email}\"")));
        assert!(!html.contains(password));
    }
    assert_eq!(app.db.count("SELECT count(*) FROM cp_sessions").await, 0);

    // Good credentials (any case of the email): a session and a 303 to `/`.
    let response = client
        .post(&login_url)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "Root@Panel.TEST"),
            ("password", PASSWORD),
        ])
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("tenantry_session="))
        .expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(!cookie.contains("Domain="), "host-only: {cookie}");
    assert_eq!(app.db.count("SELECT count(*) FROM cp_sessions").await, 1);
    let home = app.get(&client, "localhost", "/").await;
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(
        html.contains("No tenants yet — create the first one"),
        "{html}"
    );
    assert!(html.contains(ADMIN));
    // Signed in, the login page sends you on.
    let again = client.get(&login_url).sent().await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);

    // Logout: 303 to /login, the session row is gone, pages need login again.
    let logout = app
        .post(
            &client,
            "localhost",
            "/logout",
            &[("csrf_token", csrf.as_str())],
        )
        .await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logout), "/login");
    assert_eq!(app.db.count("SELECT count(*) FROM cp_sessions").await, 0);
    let home = app.get(&client, "localhost", "/").await;
    assert_eq!(home.status(), StatusCode::SEE_OTHER);

    let audit: Vec<(String, String)> =
        sqlx::query_as("SELECT action, actor FROM audit_log ORDER BY id")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    let actions: Vec<&str> = audit.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["login_failed", "login_failed", "login", "logout"],
        "{audit:?}"
    );
    assert_eq!(audit[2].1, ADMIN);
    let addr: Option<String> = app
        .db
        .scalar("SELECT client_addr FROM audit_log WHERE action = 'login'")
        .await;
    assert_eq!(addr.as_deref(), Some("127.0.0.1"));
}

/// Failures for an account from elsewhere (as the audit log records them)
/// do not lock its owner out: today's code refused the right password for
/// 15 minutes after ten failures from anywhere (issue 12, part 4).
#[tokio::test]
async fn failures_from_elsewhere_do_not_lock_the_account() {
    let db = TestDb::new().await;
    db.create_super_admin(ADMIN).await;
    sqlx::query(
        "INSERT INTO audit_log (actor, action, client_addr)
         SELECT $1, 'login_failed', '198.51.100.7' FROM generate_series(1, 50)",
    )
    .bind(ADMIN)
    .execute(&db.pool)
    .await
    .unwrap();
    let app = TestApp::start(db).await;
    let client = app.client();
    let response = app.sign_in(&client, "localhost", "ROOT@panel.test").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.db.count("SELECT count(*) FROM cp_sessions").await, 1);
}

#[tokio::test]
async fn every_page_but_login_requires_login() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    let app = TestApp::start(db).await;
    let client = app.client();
    for path in [
        "/",
        "/tenants/new",
        "/tenants/acme",
        "/tenants/acme/logo",
        "/audit",
        "/nodes",
    ] {
        let response = app.get(&client, "localhost", path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        // The sign-in page remembers the page asked for.
        let expected = match path {
            "/" => "/login".to_owned(),
            _ => format!("/login?next={}", path.replace('/', "%2F")),
        };
        assert_eq!(location(&response), expected, "{path}");
    }
    // Forms with a valid token but no login change nothing.
    let csrf = csrf_for(&client, &app.url("localhost", "/login")).await;
    for (path, fields) in [
        ("/tenants", create_fields(&[])),
        ("/tenants/acme/suspend", vec![]),
        ("/tenants/acme/delete", vec![("confirm_slug", "acme")]),
        ("/tenants/acme/domains", vec![("domain", "x.example.com")]),
        ("/tenants/acme/move", vec![("node", "localhost:5432")]),
        ("/nodes/rebalance", vec![]),
    ] {
        let mut all = vec![("csrf_token", csrf.as_str())];
        all.extend(fields);
        let response = app.post(&client, "localhost", path, &all).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), "/login", "{path}");
    }
    assert_eq!(app.db.count("SELECT count(*) FROM tenants").await, 1);
    app.db
        .assert_count("SELECT count(*) FROM tenants WHERE status = 'active'", 1)
        .await;
    assert_eq!(app.db.count("SELECT count(*) FROM tenant_domains").await, 1);
}

#[tokio::test]
async fn creating_a_tenant_provisions_its_schema() {
    let panel = Panel::start(&[]).await;
    let form = panel.page("/tenants/new").await;
    for field in [
        "slug",
        "display_name",
        "admin_email",
        "admin_password",
        "primary_color",
        "accent_color",
    ] {
        assert!(form.contains(&format!("name=\"{field}\"")), "{field}");
        assert!(form.contains(&format!("<label for=\"{field}\"")), "{field}");
    }
    assert!(form.contains("/static/js/branding.js"));
    for script in ["/static/js/branding.js", "/static/js/confirm.js"] {
        let response = panel.get(script).await;
        assert_eq!(response.status(), 200, "{script}");
        assert!(header(&response, "content-type").starts_with("text/javascript"));
    }

    let response = panel.post("/tenants", &create_fields(&[])).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/tenants/newco");
    assert!(panel.db().schema_exists("t_newco").await);
    assert_eq!(panel.count("SELECT count(*) FROM t_newco.users").await, 1);
    let (primary, user_count): (String, i32) = panel
        .db()
        .row("SELECT primary_color, user_count FROM tenants WHERE slug = 'newco'")
        .await;
    assert_eq!(primary, "#1d4ed8", "stored lower-case");
    assert_eq!(user_count, 1);
    assert_eq!(panel.audit_count("tenant_create").await, 1);

    // The detail page, with a flash that shows once.
    let html = panel.page("/tenants/newco").await;
    assert!(html.contains("Newco Ltd"));
    assert!(html.contains("newco.localhost"));
    assert!(html.contains("is ready at newco.localhost"), "{html}");
    assert!(html.contains("Open tenant"));
    let html = panel.page("/tenants/newco").await;
    assert!(!html.contains("is ready at"), "the flash shows once");

    // The tenant is served within a second, in its colours.
    let (_, css) = panel
        .within_a_second("newco.localhost", "/theme.css", |s, b| {
            s == 200 && b.contains("--primary: #1d4ed8")
        })
        .await;
    assert!(css.contains("--accent: #f59e0b"));

    // It is on the list, with its domain and user count.
    let list = panel.page("/").await;
    assert!(list.contains("Newco Ltd") && list.contains("newco.localhost"));
}

/// Links to a tenant open on the port the panel was reached on or, with
/// `TENANTRY_PUBLIC_URL`, with its scheme and port (behind a proxy).
#[tokio::test]
async fn links_to_tenants_use_the_reached_port_or_the_public_url() {
    let panel = Panel::start(&["acme"]).await;
    let port = panel.app.addr.port();
    let here = format!("href=\"//acme.localhost:{port}/\"");
    assert!(panel.page("/").await.contains(&here), "list: {here}");
    assert!(
        panel.page("/tenants/acme").await.contains(&here),
        "detail: {here}"
    );

    let db = TestDb::new().await;
    db.create_super_admin(ADMIN).await;
    db.create_tenant("acme").await;
    let app = TestApp::builder(db).public_url("https://localhost:8443".parse().unwrap());
    let panel = Panel::open_with(app).await;
    let public = "href=\"https://acme.localhost:8443/\"";
    let list = panel.page("/").await;
    assert!(list.contains(public), "list: {public}\n{list}");
    let detail = panel.page("/tenants/acme").await;
    assert!(detail.contains(public), "detail: {public}\n{detail}");
    assert!(!detail.contains("href=\"//acme.localhost"), "{detail}");
}

#[tokio::test]
async fn invalid_tenant_input_is_422_and_creates_nothing() {
    let panel = Panel::start(&["acme"]).await;
    // A default domain held by another tenant (put there behind our back).
    panel.db().exec("INSERT INTO tenant_domains (domain, tenant_id) SELECT 'taken.localhost', id FROM tenants").await;
    let cases: &[(&str, &str, &str)] = &[
        (
            "slug",
            "Bad Slug!",
            "lower-case letters, digits and hyphens",
        ),
        ("slug", "pgadmin", "may not start with"),
        ("slug", "acme", "already exists"),
        ("slug", "taken", "already in use"),
        ("display_name", "   ", "enter a name"),
        ("primary_color", "red;}body{display:none", "#rrggbb"),
        ("accent_color", "#abc", "#rrggbb"),
        ("admin_email", "not-an-email", "valid email"),
        ("admin_password", "short", "at least 10"),
    ];
    for (field, value, message) in cases {
        let response = panel
            .post("/tenants", &create_fields(&[(field, value)]))
            .await;
        let html = unprocessable(response, &format!("{field}={value}")).await;
        let error = format!("id=\"{field}-error\"");
        assert!(html.contains(&error), "{field}: no message beside it");
        assert!(html.contains(message), "{field}={value}: {html}");
        assert!(
            !html.contains("a-long-secret-pw"),
            "the password is never echoed"
        );
        if *field != "display_name" {
            assert!(html.contains("value=\"Newco Ltd\""), "typed values kept");
        }
    }
    assert_eq!(panel.tenant_count().await, 1);
    assert!(!panel.db().schema_exists("t_newco").await);
    assert!(!panel.db().schema_exists("t_taken").await);
    assert_eq!(panel.audit_count("tenant_create").await, 0);

    // No CSRF token: 403, nothing created.
    let response = panel
        .client
        .post(panel.url("/tenants"))
        .form(&create_fields(&[]))
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(panel.tenant_count().await, 1);
}

#[tokio::test]
async fn branding_changes_reach_the_tenant_within_a_second() {
    let panel = Panel::start(&["acme"]).await;
    panel.app.wait_for_host("acme.localhost").await;
    let before = panel
        .client
        .get(panel.app.url("acme.localhost", "/theme.css"))
        .sent()
        .await;
    let old_etag = before.headers()["etag"].clone();

    let detail = panel.page("/tenants/acme").await;
    assert!(detail.contains("enctype=\"multipart/form-data\""));
    assert!(detail.contains("data-preview"));

    let logo = png(2048);
    let response = panel
        .brand(
            "acme",
            branding_form(&panel.csrf, "#FF0000", Some(("anything.bin", logo.clone()))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/tenants/acme");

    let (_, css) = panel
        .within_a_second("acme.localhost", "/theme.css", |s, b| {
            s == 200 && b.contains("--primary: #ff0000")
        })
        .await;
    assert!(css.contains("--accent: #10b981"));
    let after = panel
        .client
        .get(panel.app.url("acme.localhost", "/theme.css"))
        .sent()
        .await;
    assert_ne!(
        after.headers()["etag"],
        old_etag,
        "the ETag follows the version"
    );

    let (name, theme, content_type, sha, version): (String, String, String, String, i64) = panel
        .db()
        .row(
            "SELECT display_name, theme, logo_content_type, logo_sha256, branding_version
               FROM tenants WHERE slug = 'acme'",
        )
        .await;
    assert_eq!(
        (name.as_str(), theme.as_str(), content_type.as_str()),
        ("Acme Rebranded", "dark", "image/png")
    );
    assert_eq!(sha.len(), 64);
    assert_eq!(version, 2);
    // The logo is served to the tenant and to the panel's preview.
    panel
        .until_status("acme.localhost", "/brand/logo", 200)
        .await;
    let preview = panel.get("/tenants/acme/logo").await;
    assert_eq!(preview.status(), 200);
    assert_eq!(preview.headers()["content-type"], "image/png");
    assert_eq!(preview.bytes().await.unwrap().to_vec(), logo);

    // Low contrast is flagged on the page.
    let detail = panel.page("/tenants/acme").await;
    assert!(detail.contains("Branding saved"));
    let warning = detail
        .split("data-contrast-warning")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap();
    assert!(!warning.contains("hidden"), "#ff0000 fails AA: {warning}");

    // An empty logo part keeps the logo; remove_logo drops it.
    let response = panel
        .brand("acme", branding_form(&panel.csrf, "#1e3a8a", None))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    panel
        .assert_count("SELECT count(*) FROM tenants WHERE logo IS NOT NULL", 1)
        .await;
    let response = panel
        .brand(
            "acme",
            branding_form(&panel.csrf, "#1e3a8a", None).text("remove_logo", "on"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    panel
        .assert_count(
            "SELECT count(*) FROM tenants WHERE logo IS NULL AND logo_sha256 IS NULL",
            1,
        )
        .await;
    panel
        .until_status("acme.localhost", "/brand/logo", 404)
        .await;
    assert_eq!(panel.audit_count("branding_change").await, 3);
}

#[tokio::test]
async fn invalid_branding_is_422_and_changes_nothing() {
    let panel = Panel::start(&["acme"]).await;
    let svg = b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec();
    let cases: Vec<(&str, Form)> = vec![
        (
            "primary_color",
            branding_form(&panel.csrf, "red;}body{display:none", None),
        ),
        (
            "display_name",
            branding_form(&panel.csrf, "#123456", None).text("display_name", ""),
        ),
        (
            "theme",
            Form::new()
                .text("csrf_token", panel.csrf.clone())
                .text("display_name", "Acme")
                .text("primary_color", "#123456")
                .text("accent_color", "#123456")
                .text("theme", "neon"),
        ),
        (
            "logo",
            branding_form(&panel.csrf, "#123456", Some(("logo.png", svg))),
        ),
        (
            "logo",
            branding_form(
                &panel.csrf,
                "#123456",
                Some(("logo.png", b"just some text, not an image".to_vec())),
            ),
        ),
        (
            "logo",
            branding_form(&panel.csrf, "#123456", Some(("big.png", png(600 * 1024)))),
        ),
    ];
    for (field, form) in cases {
        let response = panel.brand("acme", form).await;
        let html = unprocessable(response, field).await;
        assert!(
            html.contains(&format!("id=\"{field}-error\"")),
            "{field}: {html}"
        );
    }
    // Which message: SVG is named as refused, the size is given.
    let response = panel
        .brand(
            "acme",
            branding_form(&panel.csrf, "#123456", Some(("x.png", png(600 * 1024)))),
        )
        .await;
    assert!(response.text().await.unwrap().contains("512 KiB"));

    // No CSRF part: 403. Over the body limit: 413.
    let form = Form::new()
        .text("display_name", "Hacked")
        .text("primary_color", "#000000")
        .text("accent_color", "#000000")
        .text("theme", "light");
    assert_eq!(
        panel.brand("acme", form).await.status(),
        StatusCode::FORBIDDEN
    );
    let huge = branding_form(&panel.csrf, "#123456", Some(("huge.png", png(1100 * 1024))));
    assert_eq!(
        panel.brand("acme", huge).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );

    let (name, primary, version, has_logo): (String, String, i64, bool) = panel
        .db()
        .row(
            "SELECT display_name, primary_color, branding_version, logo IS NOT NULL
           FROM tenants WHERE slug = 'acme'",
        )
        .await;
    assert_eq!(
        (name.as_str(), primary.as_str(), version, has_logo),
        ("acme Inc", "#4f46e5", 1, false)
    );
    assert_eq!(panel.audit_count("branding_change").await, 0);
}

#[tokio::test]
async fn custom_domains_can_be_added_and_removed() {
    let panel = Panel::start(&["acme", "globex"]).await;
    let response = panel
        .post(
            "/tenants/acme/domains",
            &[("domain", " Tasks.Example.COM ")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/tenants/acme");
    panel.assert_count("SELECT count(*) FROM tenant_domains WHERE domain = 'tasks.example.com' AND NOT is_default", 1).await;
    panel
        .until_status("tasks.example.com", "/theme.css", 200)
        .await;
    assert!(
        panel
            .page("/tenants/acme")
            .await
            .contains("tasks.example.com")
    );

    for (slug, domain, message) in [
        ("globex", "tasks.example.com", "already in use"),
        ("acme", "tasks.example.com", "already in use"),
        ("globex", "localhost", "at least two labels"),
        ("globex", "www.localhost", "reserved"),
        ("globex", "acme.localhost", "reserved"),
        ("globex", "bad_domain!.com", "letters, digits or hyphens"),
        ("globex", "", "enter a domain"),
    ] {
        let response = panel
            .post(&format!("/tenants/{slug}/domains"), &[("domain", domain)])
            .await;
        let html = unprocessable(response, domain).await;
        assert!(html.contains("id=\"domain-error\""), "{domain}");
        assert!(html.contains(message), "{domain}: {message}");
    }
    assert_eq!(panel.count("SELECT count(*) FROM tenant_domains").await, 3);

    // The default domain stays.
    let response = panel
        .post("/tenants/acme/domains/acme.localhost/delete", &[])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("cannot be removed"));
    // Another tenant's domain is not this tenant's to remove.
    let response = panel
        .post("/tenants/globex/domains/tasks.example.com/delete", &[])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = panel
        .post("/tenants/acme/domains/tasks.example.com/delete", &[])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    panel
        .until_status("tasks.example.com", "/theme.css", 404)
        .await;
    assert_eq!(panel.count("SELECT count(*) FROM tenant_domains").await, 2);
    assert_eq!(panel.audit_count("domain_add").await, 1);
    assert_eq!(panel.audit_count("domain_remove").await, 1);
}

#[tokio::test]
async fn suspension_blocks_the_tenant_and_ends_its_sessions() {
    let panel = Panel::start(&["acme"]).await;
    panel.app.wait_for_host("acme.localhost").await;
    // A signed-in user of the tenant. The owner is read first: Citus fails
    // `INSERT … SELECT` from a schema table ("syntax error at or near NOT").
    let owner: i64 = sqlx::query_scalar("SELECT id FROM t_acme.users")
        .fetch_one(&panel.db().pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO t_acme.tenantry_sessions (id, data, expiry_date, owner_id)
         VALUES ('sess-1', '{}', now() + interval '1 day', $1)",
    )
    .bind(owner)
    .execute(&panel.db().pool)
    .await
    .unwrap();

    let response = panel.post("/tenants/acme/suspend", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/tenants/acme");
    panel
        .assert_count("SELECT count(*) FROM t_acme.tenantry_sessions", 0)
        .await;
    let body = panel.until_status("acme.localhost", "/", 403).await;
    assert!(body.contains("Workspace suspended"), "{body}");
    let html = panel.page("/tenants/acme").await;
    assert!(html.contains("Reactivate acme"));
    assert!(panel.page("/").await.contains("Suspended"));

    let response = panel.post("/tenants/acme/reactivate", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    panel
        .within_a_second("acme.localhost", "/", |s, _| s != 403)
        .await;
    panel
        .assert_count("SELECT count(*) FROM tenants WHERE status = 'active'", 1)
        .await;
    assert_eq!(panel.audit_count("tenant_suspend").await, 1);
    assert_eq!(panel.audit_count("tenant_reactivate").await, 1);

    // Without a token: 403, and the status stays.
    let response = panel
        .client
        .post(panel.url("/tenants/acme/suspend"))
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    panel
        .assert_count("SELECT count(*) FROM tenants WHERE status = 'active'", 1)
        .await;
}

#[tokio::test]
async fn deletion_needs_the_slug_typed_again() {
    let panel = Panel::start(&["acme", "globex"]).await;
    panel.app.wait_for_host("acme.localhost").await;
    for wrong in ["", "ACME ", "globex", "acm"] {
        let response = panel
            .post("/tenants/acme/delete", &[("confirm_slug", wrong)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{wrong:?}"
        );
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("id=\"confirm_slug-error\"")
        );
    }
    assert!(panel.db().schema_exists("t_acme").await);

    let response = panel
        .post("/tenants/acme/delete", &[("confirm_slug", "acme")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    assert!(!panel.db().schema_exists("t_acme").await);
    assert!(panel.db().schema_exists("t_globex").await);
    assert_eq!(panel.tenant_count().await, 1);
    panel
        .assert_count(
            "SELECT count(*) FROM tenant_domains WHERE domain = 'acme.localhost'",
            0,
        )
        .await;
    panel
        .until_status("acme.localhost", "/theme.css", 404)
        .await;
    assert!(panel.page("/").await.contains("was deleted"));
    assert_eq!(
        panel.get("/tenants/acme").await.status(),
        StatusCode::NOT_FOUND
    );
    let detail: String = panel
        .db()
        .scalar(
            "SELECT detail FROM audit_log WHERE action = 'tenant_delete' AND tenant_slug = 'acme'",
        )
        .await;
    assert!(detail.contains("t_acme"), "{detail}");
}

#[tokio::test]
async fn the_audit_page_lists_actions_newest_first() {
    let panel = Panel::start(&["acme", "globex"]).await;
    panel.post("/tenants/acme/suspend", &[]).await;
    panel.post("/tenants/globex/suspend", &[]).await;
    let html = panel.page("/audit").await;
    let globex = html.find("/audit?tenant=globex").unwrap();
    let acme = html.find("/audit?tenant=acme").unwrap();
    let login = html.find("data-action=\"login\"").unwrap();
    assert!(globex < acme && acme < login, "newest first");
    assert!(html.contains(ADMIN));

    let html = panel.page("/audit?tenant=acme").await;
    assert!(html.contains("Audit log of acme"));
    assert!(!html.contains("/audit?tenant=globex"));
    let html = panel.page("/audit?tenant=nobody").await;
    assert!(html.contains("Nothing recorded"));
}

#[tokio::test]
async fn the_list_searches_and_pages_through_ten_thousand_tenants() {
    let db = TestDb::new().await;
    db.create_super_admin(ADMIN).await;
    // Catalogue rows only (no schemas): the list never looks inside them.
    // Seeded before the app starts, so the registry loads them in one go.
    db.exec(
        "INSERT INTO tenants (slug, schema_name, display_name, user_count, created_at)
         SELECT 'ten-' || lpad(i::text, 5, '0'), 't_ten_' || lpad(i::text, 5, '0'),
                'Company ' || i, i % 7, now() - i * interval '1 minute'
           FROM generate_series(1, 10000) AS i",
    )
    .await;
    db.exec(
        "INSERT INTO tenant_domains (domain, tenant_id, is_default)
         SELECT slug || '.localhost', id, true FROM tenants",
    )
    .await;
    let panel = Panel::open(db).await;

    let started = Instant::now();
    let first = panel.page("/").await;
    let last = panel.page("/?page=200").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "two list pages took {:?}",
        started.elapsed()
    );
    assert!(first.contains("10000 tenants"));
    assert!(first.contains("page 1 of 200"));
    assert!(first.contains("ten-00001.localhost"), "newest first");
    assert!(!first.contains("ten-00051"));
    assert!(last.contains("ten-10000"), "the oldest is on the last page");
    assert!(last.contains("9951–10000 of 10000"));

    // Search by slug or by name; LIKE wildcards are literal.
    let found = panel.page("/?q=TEN-09999").await;
    assert!(found.contains("1 tenant matching"));
    assert!(found.contains("Company 9999"));
    let found = panel.page("/?q=company+123").await;
    assert!(found.contains("11 tenants matching"), "123 and 1230–1239");
    let none = panel.page("/?q=%25").await;
    assert!(none.contains("No tenant matches"));
    // Out-of-range pages are clamped, not errors.
    assert!(panel.page("/?page=99999").await.contains("page 200 of 200"));
    assert!(panel.page("/?page=abc").await.contains("page 1 of 200"));
}

#[tokio::test]
async fn ip_addresses_are_refused_and_internationalised_domains_are_stored_as_punycode() {
    let panel = Panel::start(&["acme", "globex"]).await;
    const IP: &str =
        "an IP address cannot be a custom domain; use a DNS name such as tasks.example.com";
    const NUMBER: &str =
        "the last part of a domain cannot be a number: browsers read such a name as an IP address";
    for (domain, message) in [
        ("127.0.0.1", IP),
        ("2130706433", IP),
        ("0x7f.0.0.1", IP),
        ("[::1]", IP),
        ("foo.123", NUMBER),
    ] {
        let response = panel
            .post("/tenants/acme/domains", &[("domain", domain)])
            .await;
        let html = unprocessable(response, domain).await;
        assert!(
            html.contains(&format!("id=\"domain-error\">{message}</p>")),
            "{domain}: {html}"
        );
        assert!(html.contains(&format!("value=\"{domain}\"")), "{domain}");
    }
    let stored = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT domain FROM tenant_domains WHERE NOT is_default ORDER BY domain",
        )
        .fetch_all(&panel.db().pool)
        .await
        .unwrap()
    };
    assert_eq!(stored().await, Vec::<String>::new());

    // Stored, listed and audited in its ASCII (punycode) form.
    let response = panel
        .post("/tenants/acme/domains", &[("domain", "bücher.example")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/tenants/acme");
    assert_eq!(stored().await, ["xn--bcher-kva.example"]);
    assert!(
        panel
            .page("/tenants/acme")
            .await
            .contains("xn--bcher-kva.example")
    );
    panel.assert_count("SELECT count(*) FROM audit_log WHERE action = 'domain_add' AND detail LIKE '%xn--bcher-kva.example%'", 1).await;

    // The same domain spelt either way is taken.
    for (slug, domain) in [
        ("globex", "xn--bcher-kva.example"),
        ("acme", "xn--bcher-kva.example"),
        ("globex", "BÜCHER.example."),
    ] {
        let response = panel
            .post(&format!("/tenants/{slug}/domains"), &[("domain", domain)])
            .await;
        let html = unprocessable(response, &format!("{slug} {domain}")).await;
        assert!(
            html.contains("id=\"domain-error\">xn--bcher-kva.example is already in use</p>"),
            "{slug} {domain}: {html}"
        );
    }
    assert_eq!(stored().await, ["xn--bcher-kva.example"]);
    assert_eq!(panel.audit_count("domain_add").await, 1);

    // Browsers send the ASCII form in `Host`: it is served as acme.
    let (_, login) = panel
        .within_a_second("xn--bcher-kva.example", "/login", |s, body| {
            s == 200 && body.contains("acme Inc")
        })
        .await;
    assert!(!login.contains("globex"), "{login}");
    let response = panel
        .client
        .get(panel.app.url("xn--bcher-kva.example", "/theme.css"))
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The flash message set by `response` (a redirect), decoded.
fn flash_of(response: &Response) -> String {
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("tenantry_flash="))
        .expect("a flash cookie");
    let value = cookie.split(';').next().unwrap();
    let fields: Vec<(String, String)> = serde_urlencoded::from_str(value).unwrap();
    fields
        .into_iter()
        .find(|(k, _)| k == "m")
        .map(|(_, m)| m)
        .unwrap_or_default()
}

#[tokio::test]
async fn on_plain_postgresql_placement_says_single_node() {
    if crate::harness::skip_on_citus("tests the page of a single PostgreSQL node") {
        return;
    }
    let panel = Panel::start(&["acme"]).await;
    let html = panel.page("/tenants/acme").await;
    assert!(html.contains("Placement"), "{html}");
    assert!(html.contains("Single PostgreSQL node"), "{html}");
    // A size on disk, human-readable: the schema has tables and indexes.
    let size = html
        .split("data-size>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap();
    assert!(
        size.ends_with(" kB") || size.ends_with(" MB"),
        "size on disk: {size}"
    );
    assert!(
        !html.contains("action=\"/tenants/acme/move\""),
        "no move form"
    );

    let html = panel.page("/nodes").await;
    assert!(html.contains("single PostgreSQL node"), "{html}");
    assert_eq!(html.matches("<tr data-node=").count(), 1, "{html}");
    assert!(
        html.contains("<td class=\"num\" data-tenants>1</td>"),
        "{html}"
    );
    assert!(!html.contains("Rebalance tenants"), "{html}");
    assert!(html.contains("aria-current=\"page\">Nodes</a>"), "{html}");

    // A move or a rebalance is refused plainly, with no change and no audit.
    let response = panel
        .post("/tenants/acme/move", &[("node", "localhost:5432")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/tenants/acme");
    let message = flash_of(&response);
    assert!(message.contains("single PostgreSQL node"), "{message}");
    let response = panel.post("/tenants/acme/move", &[("node", "")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(flash_of(&response).contains("Choose the node"));
    let response = panel
        .post("/tenants/nobody/move", &[("node", "localhost:5432")])
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = panel.post("/nodes/rebalance", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/nodes");
    assert!(flash_of(&response).contains("single PostgreSQL node"));
    assert_eq!(panel.audit_count("tenant_move").await, 0);
    assert_eq!(panel.audit_count("rebalance_start").await, 0);
}
