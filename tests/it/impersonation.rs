//! Impersonation over real HTTP and PostgreSQL: a super-admin opens a
//! tenant's workspace as one of its users with a one-time link from the
//! control panel; the session says so on every page, ends on "End", after
//! 30 minutes or with a suspension, cannot change the password, and both
//! audit logs record it. Bad links are refused with a page saying why.

use reqwest::header::LOCATION;
use reqwest::{Client, Response, StatusCode};

use crate::harness::{PASSWORD, TestApp, TestDb, admin_hash};

const OPERATOR: &str = "root@example.com";
const ACME: &str = "acme.localhost";
const GLOBEX: &str = "globex.localhost";
const JANE: &str = "jane@acme.test";
const BAD_LINK: &str = "This link cannot be used";

/// Two tenants, the super-admin, and Jane Doe, a member of acme.
async fn start() -> (TestApp, i64) {
    let db = TestDb::new().await;
    db.create_super_admin(OPERATOR).await;
    db.create_tenant_named("acme", "Acme Inc").await;
    db.create_tenant_named("globex", "Globex Corporation").await;
    let jane: i64 = sqlx::query_scalar(
        "INSERT INTO t_acme.users (email, display_name, password_hash, role)
         VALUES ($1, 'Jane Doe', $2, 'member') RETURNING id",
    )
    .bind(JANE)
    .bind(admin_hash().await)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    (TestApp::start(db).await, jane)
}

/// Posts the detail page's "Open as this user" form of `slug` for `user`.
async fn mint(app: &TestApp, panel: &Client, slug: &str, user: &str) -> Response {
    let page = format!("/tenants/{slug}");
    let action = format!("/tenants/{slug}/impersonate");
    app.post_form(panel, "localhost", &page, &action, &[("user_id", user)])
        .await
}

/// Mints a link for `user` of acme and returns its token, checking that the
/// panel sends the browser to acme's `/impersonate` on the panel's port.
async fn token_for(app: &TestApp, panel: &Client, user: i64) -> String {
    let response = mint(app, panel, "acme", &user.to_string()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let prefix = format!("//{ACME}:{}/impersonate?token=", app.addr.port());
    let token = location
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("redirect to {location}"));
    assert_eq!(token.len(), 64, "256 bits in hex");
    token.to_owned()
}

async fn redeem(app: &TestApp, client: &Client, host: &str, token: &str) -> Response {
    client
        .get(app.url(host, &format!("/impersonate?token={token}")))
        .send()
        .await
        .unwrap()
}

/// A fresh browser signed in to acme as Jane through a link.
async fn impersonating(app: &TestApp, panel: &Client, jane: i64) -> Client {
    let token = token_for(app, panel, jane).await;
    let browser = app.client();
    let response = redeem(app, &browser, ACME, &token).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/");
    browser
}

async fn get(app: &TestApp, client: &Client, host: &str, path: &str) -> Response {
    client.get(app.url(host, path)).send().await.unwrap()
}

async fn page(app: &TestApp, client: &Client, path: &str) -> String {
    let response = get(app, client, ACME, path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.text().await.unwrap()
}

fn assert_to_login(response: &Response) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert!(location.starts_with("/login"), "{location}");
}

/// A refusal page: 403 with the message.
async fn assert_refused(response: Response, says: &str) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let sets_session = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("tenantry_session="));
    assert!(!sets_session, "no session for a refused link");
    let body = response.text().await.unwrap();
    assert!(body.contains(says), "{body}");
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db.count(sql).await
}

async fn sessions_of(app: &TestApp, user: i64) -> i64 {
    count(
        app,
        &format!("SELECT count(*) FROM t_acme.tenantry_sessions WHERE owner_id = {user}"),
    )
    .await
}

fn banner() -> String {
    format!(
        "Viewing as <strong>Jane Doe</strong> — signed in by <strong>{OPERATOR}</strong> \
         from the control panel"
    )
}

#[tokio::test]
async fn a_link_opens_the_workspace_as_the_user_with_a_banner_and_end_deletes_it() {
    let (app, jane) = start().await;
    let panel = app.super_admin(OPERATOR).await;

    // The detail page offers the active users.
    let detail = get(&app, &panel, "localhost", "/tenants/acme").await;
    // Browsers hold a form's redirect to `form-action`: this page lets its
    // forms lead to acme's site, and only there.
    let csp = detail.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    let allowed = format!("form-action 'self' {ACME}:{};", app.addr.port());
    assert!(csp.contains(&allowed), "{csp}");
    let detail = detail.text().await.unwrap();
    assert!(detail.contains("action=\"/tenants/acme/impersonate\""));
    assert!(detail.contains(&format!("<option value=\"{jane}\">Jane Doe · {JANE}")));

    // One browser for both sites, as a super-admin's is.
    let token = token_for(&app, &panel, jane).await;
    let hashed = format!(
        "SELECT count(*) FROM impersonation_tokens
          WHERE token_hash = sha256(convert_to('{token}', 'UTF8'))
            AND user_id = {jane} AND used_at IS NULL
            AND expires_at BETWEEN now() + interval '50 seconds' AND now() + interval '60 seconds'"
    );
    assert_eq!(count(&app, &hashed).await, 1, "stored hashed, for a minute");
    let plain = format!(
        "SELECT count(*) FROM impersonation_tokens WHERE encode(token_hash, 'hex') = '{token}'"
    );
    assert_eq!(count(&app, &plain).await, 0, "never stored as sent");

    let response = redeem(&app, &panel, ACME, &token).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/");
    assert_eq!(sessions_of(&app, jane).await, 1);
    // Absolute expiry 30 minutes from now, never renewed.
    let expiry = "SELECT count(*) FROM t_acme.tenantry_sessions
        WHERE expiry_date BETWEEN now() + interval '29 minutes' AND now() + interval '30 minutes'
          AND data->>'impersonated_by' = 'root@example.com'";
    assert_eq!(count(&app, expiry).await, 1);

    // Every page of the session carries the banner with its End form.
    let board = page(&app, &panel, "/").await;
    assert!(board.contains(&banner()), "{board}");
    assert!(board.contains("action=\"/impersonation/end\""));
    assert!(
        !board.contains("action=\"/logout\""),
        "End replaces Sign out"
    );
    assert!(board.contains("You are viewing Acme Inc as Jane Doe"));
    let task = app
        .post_form(&panel, ACME, "/", "/tasks", &[("title", "Looked at")])
        .await;
    assert_eq!(task.status(), StatusCode::SEE_OTHER);
    let task_id: i64 = app.db.count("SELECT max(id) FROM t_acme.tasks").await;
    for path in [
        "/".to_owned(),
        "/account".to_owned(),
        format!("/tasks/{task_id}"),
    ] {
        assert!(
            page(&app, &panel, &path).await.contains(&banner()),
            "{path}"
        );
    }
    // Jane is a member: the tenant's audit page is for admins.
    assert_eq!(get(&app, &panel, ACME, "/audit").await.status(), 403);
    assert!(!board.contains("href=\"/audit\""));

    // The panel's own session is untouched by the tenant's.
    assert_eq!(get(&app, &panel, "localhost", "/").await.status(), 200);

    // End: without the form's token it is refused; with it the session goes.
    let forged = panel
        .post(app.url(ACME, "/impersonation/end"))
        .form(&[("csrf_token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(sessions_of(&app, jane).await, 1);
    let ended = app
        .post_form(&panel, ACME, "/", "/impersonation/end", &[])
        .await;
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    assert_eq!(ended.headers()[LOCATION], "/login");
    assert_eq!(sessions_of(&app, jane).await, 0);
    assert_to_login(&get(&app, &panel, ACME, "/").await);
    let login = page(&app, &panel, "/login").await;
    assert!(login.contains("no longer viewing the workspace as Jane Doe"));
    assert!(!login.contains("Viewing as"));
}

#[tokio::test]
async fn both_audit_logs_record_the_visit() {
    let (app, jane) = start().await;
    let panel = app.super_admin(OPERATOR).await;
    let browser = impersonating(&app, &panel, jane).await;
    app.post_form(&browser, ACME, "/", "/impersonation/end", &[])
        .await;

    // The panel's log: the start (the link) and the end.
    let panel_log: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT actor, action, tenant_slug, detail FROM audit_log
          WHERE action LIKE 'impersonation%' ORDER BY id",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let as_jane = format!("as Jane Doe <{JANE}>");
    assert_eq!(
        panel_log,
        vec![
            (
                OPERATOR.to_owned(),
                "impersonation_start".to_owned(),
                Some("acme".to_owned()),
                as_jane.clone()
            ),
            (
                OPERATOR.to_owned(),
                "impersonation_end".to_owned(),
                Some("acme".to_owned()),
                as_jane.clone()
            ),
        ]
    );
    let audit = page_on(&app, &panel, "localhost", "/audit?tenant=acme").await;
    assert!(audit.contains("Opened workspace as user") && audit.contains("Ended impersonation"));

    // The tenant's own log, for its admins, linked from their navigation.
    let admin = app.signed_in(ACME, "admin@acme.test").await;
    let board = page(&app, &admin, "/").await;
    assert!(board.contains("href=\"/audit\""));
    let tenant_log = page(&app, &admin, "/audit").await;
    assert!(tenant_log.contains("Operator access"), "{tenant_log}");
    assert!(tenant_log.contains(OPERATOR));
    assert!(tenant_log.contains("Jane Doe") && tenant_log.contains(JANE));
    assert!(tenant_log.contains("Ended from the banner"));
    assert!(tenant_log.contains("data-access=\"ended\""));
    let rows = count(
        &app,
        "SELECT count(*) FROM t_acme.operator_access
          WHERE super_admin = 'root@example.com' AND end_reason = 'ended'
            AND ended_at >= started_at",
    )
    .await;
    assert_eq!(rows, 1);
    // Nothing of it in the other tenant.
    assert_eq!(
        count(&app, "SELECT count(*) FROM t_globex.operator_access").await,
        0
    );

    // A visit in progress, and one that expired, are shown as such.
    let _again = impersonating(&app, &panel, jane).await;
    let tenant_log = page(&app, &admin, "/audit").await;
    assert!(
        tenant_log.contains("data-access=\"active\""),
        "{tenant_log}"
    );
    sqlx::query(
        "UPDATE t_acme.operator_access SET expires_at = now() - interval '1 second'
          WHERE ended_at IS NULL",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let tenant_log = page(&app, &admin, "/audit").await;
    assert!(
        tenant_log.contains("Expired after 30 minutes"),
        "{tenant_log}"
    );

    // Signing out any other way is recorded too.
    let third = impersonating(&app, &panel, jane).await;
    let out = app.post_form(&third, ACME, "/", "/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM t_acme.operator_access WHERE end_reason = 'signed_out'"
        )
        .await,
        1
    );
}

async fn page_on(app: &TestApp, client: &Client, host: &str, path: &str) -> String {
    let response = get(app, client, host, path).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {host}{path}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn a_link_works_once_within_a_minute_and_cannot_be_forged() {
    let (app, jane) = start().await;
    let panel = app.super_admin(OPERATOR).await;

    // Reused.
    let token = token_for(&app, &panel, jane).await;
    let first = app.client();
    assert_eq!(redeem(&app, &first, ACME, &token).await.status(), 303);
    let second = app.client();
    assert_refused(redeem(&app, &second, ACME, &token).await, BAD_LINK).await;
    assert_to_login(&get(&app, &second, ACME, "/").await);
    assert_eq!(sessions_of(&app, jane).await, 1);

    // Expired (the minute is moved into the past rather than waited out).
    let token = token_for(&app, &panel, jane).await;
    sqlx::query(
        "UPDATE impersonation_tokens SET expires_at = now() - interval '1 second'
          WHERE used_at IS NULL",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_refused(redeem(&app, &app.client(), ACME, &token).await, BAD_LINK).await;

    // Forged: well-formed but never minted, malformed, missing, or the
    // stored hash itself sent as the token.
    let forged = "0123456789abcdef".repeat(4);
    let stored: String = sqlx::query_scalar(
        "SELECT encode(token_hash, 'hex') FROM impersonation_tokens ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    for bad in [
        forged,
        "abc".into(),
        String::new(),
        token.to_uppercase(),
        stored,
    ] {
        let browser = app.client();
        assert_refused(redeem(&app, &browser, ACME, &bad).await, BAD_LINK).await;
        assert_to_login(&get(&app, &browser, ACME, "/").await);
    }
    let missing = app.client().get(app.url(ACME, "/impersonate")).send().await;
    assert_refused(missing.unwrap(), BAD_LINK).await;
    assert_eq!(
        sessions_of(&app, jane).await,
        1,
        "only the first redemption"
    );

    // Minting needs the panel's CSRF token and a signed-in super-admin.
    let no_csrf = panel
        .post(app.url("localhost", "/tenants/acme/impersonate"))
        .form(&[("user_id", jane.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    let anonymous = app.client();
    let response = app
        .post_form(
            &anonymous,
            "localhost",
            "/login",
            "/tenants/acme/impersonate",
            &[("user_id", &jane.to_string())],
        )
        .await;
    assert_to_login(&response);
}

#[tokio::test]
async fn a_link_is_refused_on_another_tenants_host() {
    let (app, jane) = start().await;
    let panel = app.super_admin(OPERATOR).await;
    let token = token_for(&app, &panel, jane).await;

    let browser = app.client();
    assert_refused(redeem(&app, &browser, GLOBEX, &token).await, BAD_LINK).await;
    assert_to_login(&get(&app, &browser, GLOBEX, "/").await);
    assert_eq!(
        count(&app, "SELECT count(*) FROM t_globex.tenantry_sessions").await,
        0
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM t_globex.operator_access").await,
        0
    );
    // Or on the control panel's host, which has no such route.
    assert_eq!(
        redeem(&app, &browser, "localhost", &token).await.status(),
        StatusCode::NOT_FOUND
    );
    // Still unused: it opens the tenant it was made for.
    assert_eq!(redeem(&app, &browser, ACME, &token).await.status(), 303);
    assert!(page(&app, &browser, "/").await.contains(&banner()));
    // A user id of acme means nothing to globex's panel form either.
    let response = mint(&app, &panel, "globex", &jane.to_string()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/tenants/globex");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM impersonation_tokens t JOIN tenants n ON n.id = t.tenant_id
              WHERE n.slug = 'globex'"
        )
        .await,
        0,
        "jane's id is no user of globex"
    );
}

#[tokio::test]
async fn a_suspended_tenant_refuses_links_and_suspension_ends_the_visit() {
    let (app, jane) = start().await;
    let panel = app.super_admin(OPERATOR).await;
    let browser = impersonating(&app, &panel, jane).await;
    // A link minted before the suspension.
    let pending = token_for(&app, &panel, jane).await;

    let suspend = app
        .post_form(
            &panel,
            "localhost",
            "/tenants/acme",
            "/tenants/acme/suspend",
            &[],
        )
        .await;
    assert_eq!(suspend.status(), StatusCode::SEE_OTHER);
    assert_eq!(sessions_of(&app, jane).await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM t_acme.operator_access
              WHERE end_reason = 'suspended' AND ended_at IS NOT NULL"
        )
        .await,
        1
    );
    // Its pages say so as soon as the registry has heard of it.
    for _ in 0..200 {
        if get(&app, &browser, ACME, "/login").await.status() == 403 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let response = get(&app, &browser, ACME, "/").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The pending link is refused at once (even before every instance has
    // heard of the suspension), and no session is made.
    let other = app.client();
    let refused = redeem(&app, &other, ACME, &pending).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(sessions_of(&app, jane).await, 0);

    // The panel mints no link for a suspended tenant.
    let before = count(&app, "SELECT count(*) FROM impersonation_tokens").await;
    let response = mint(&app, &panel, "acme", &jane.to_string()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/tenants/acme");
    assert_eq!(
        count(&app, "SELECT count(*) FROM impersonation_tokens").await,
        before
    );
    let detail = page_on(&app, &panel, "localhost", "/tenants/acme").await;
    assert!(detail.contains("suspended: its workspace cannot be opened"));
    assert!(detail.contains("A suspended workspace cannot be opened"));

    // Reactivated, the old session stays ended.
    app.post_form(
        &panel,
        "localhost",
        "/tenants/acme",
        "/tenants/acme/reactivate",
        &[],
    )
    .await;
    for _ in 0..200 {
        if get(&app, &browser, ACME, "/login").await.status() == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_to_login(&get(&app, &browser, ACME, "/").await);
}

#[tokio::test]
async fn a_deactivated_user_cannot_be_opened() {
    let (app, jane) = start().await;
    let panel = app.super_admin(OPERATOR).await;
    let token = token_for(&app, &panel, jane).await;
    sqlx::query("UPDATE t_acme.users SET active = false WHERE id = $1")
        .bind(jane)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_refused(
        redeem(&app, &app.client(), ACME, &token).await,
        "Account deactivated",
    )
    .await;
    assert_eq!(sessions_of(&app, jane).await, 0);

    // Not offered, and not minted.
    let detail = page_on(&app, &panel, "localhost", "/tenants/acme").await;
    assert!(!detail.contains(&format!("<option value=\"{jane}\"")));
    let response = mint(&app, &panel, "acme", &jane.to_string()).await;
    assert_eq!(response.headers()[LOCATION], "/tenants/acme");
    let detail = page_on(&app, &panel, "localhost", "/tenants/acme").await;
    assert!(detail.contains("not an active user of acme"), "{detail}");
    for bad in ["", "x", "-1", "0"] {
        let response = mint(&app, &panel, "acme", bad).await;
        assert_eq!(response.headers()[LOCATION], "/tenants/acme", "{bad:?}");
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM impersonation_tokens").await,
        1
    );

    // Deactivated during the visit: the session ends at once.
    sqlx::query("UPDATE t_acme.users SET active = true WHERE id = $1")
        .bind(jane)
        .execute(&app.db.pool)
        .await
        .unwrap();
    let browser = impersonating(&app, &panel, jane).await;
    sqlx::query("UPDATE t_acme.users SET active = false WHERE id = $1")
        .bind(jane)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_to_login(&get(&app, &browser, ACME, "/").await);
}

#[tokio::test]
async fn an_impersonated_session_cannot_change_the_password_and_ends_after_30_minutes() {
    let (app, jane) = start().await;
    let panel = app.super_admin(OPERATOR).await;
    let browser = impersonating(&app, &panel, jane).await;
    let hash = || async {
        sqlx::query_scalar::<_, String>("SELECT password_hash FROM t_acme.users WHERE id = $1")
            .bind(jane)
            .fetch_one(&app.db.pool)
            .await
            .unwrap()
    };
    let before = hash().await;

    let account = page(&app, &browser, "/account").await;
    assert!(account.contains("The password cannot be changed while root@example.com"));
    assert!(!account.contains("action=\"/account/password\""));
    let refused = app
        .post_form(
            &browser,
            ACME,
            "/account",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a-brand-new-password"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("The password cannot be changed")
    );
    assert_eq!(hash().await, before);
    // Jane herself still can.
    let herself = app.signed_in(ACME, JANE).await;
    let changed = app
        .post_form(
            &herself,
            ACME,
            "/account",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a-brand-new-password"),
            ],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    assert_ne!(hash().await, before);
    // …which ends her other sessions, the impersonation among them.
    assert_to_login(&get(&app, &browser, ACME, "/").await);

    // An aging impersonation is not renewed like a normal session…
    let browser = impersonating(&app, &panel, jane).await;
    sqlx::query(
        "UPDATE t_acme.tenantry_sessions SET expiry_date = now() + interval '1 day'
          WHERE data ? 'impersonated_by'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(get(&app, &browser, ACME, "/").await.status(), 200);
    let renewed = count(
        &app,
        "SELECT count(*) FROM t_acme.tenantry_sessions
          WHERE data ? 'impersonated_by' AND expiry_date > now() + interval '2 days'",
    )
    .await;
    assert_eq!(renewed, 0);
    // …and once its 30 minutes are up it is over, whatever the row's expiry.
    sqlx::query(
        "UPDATE t_acme.tenantry_sessions
            SET data = jsonb_set(data, '{impersonation_until}',
                                 to_jsonb(extract(epoch FROM now())::bigint - 1))
          WHERE data ? 'impersonated_by'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_to_login(&get(&app, &browser, ACME, "/").await);
    // The row's own expiry ends it too.
    let browser = impersonating(&app, &panel, jane).await;
    sqlx::query(
        "UPDATE t_acme.tenantry_sessions SET expiry_date = now() - interval '1 second'
          WHERE data ? 'impersonated_by'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    assert_to_login(&get(&app, &browser, ACME, "/").await);
}
