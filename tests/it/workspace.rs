//! The tenant app over real HTTP against real PostgreSQL: branding, sign-in,
//! sessions in the tenant's own schema, the task board, users and accounts.

use reqwest::header::{COOKIE, IF_NONE_MATCH, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};
use tenantry::tenancy::sessions::SiteSessionStore;
use tower_sessions::SessionStore;
use tower_sessions::session::Id;

use crate::harness::{ACME, GLOBEX, PASSWORD, Sent, TestApp, TestDb, csrf_for, csrf_from, header};

async fn two_tenants() -> TestApp {
    TestApp::start(TestDb::two_tenants().await).await
}

/// A client signed in as `email`; returns it and its session id.
async fn signed_in(app: &TestApp, host: &str, email: &str, password: &str) -> (Client, String) {
    let (client, response) = app.signed_in_as(host, email, password).await;
    let id = session_cookie(&response).expect("a session cookie is set at login");
    (client, id)
}

async fn admin_of(app: &TestApp, host: &str, slug: &str) -> (Client, String) {
    signed_in(app, host, &format!("admin@{slug}.test"), PASSWORD).await
}

/// The `Set-Cookie` line of the session cookie, if the response sets one.
fn session_set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tenantry_session="))
        .map(str::to_owned)
}

fn session_cookie(response: &Response) -> Option<String> {
    let line = session_set_cookie(response)?;
    let value = line.split(';').next()?.strip_prefix("tenantry_session=")?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// GET with only the given session cookie (a fresh client, no jar).
async fn get_with_session(app: &TestApp, host: &str, path: &str, session: &str) -> Response {
    app.client()
        .get(app.url(host, path))
        .header(COOKIE, format!("tenantry_session={session}"))
        .sent()
        .await
}

fn assert_to_login(response: &Response) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login");
}

/// To the sign-in page, which will return to `path` afterwards.
fn assert_to_login_then(response: &Response, path: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let next = path.replace('/', "%2F");
    assert_eq!(
        response.headers()[LOCATION],
        format!("/login?next={next}").as_str()
    );
}

async fn sessions_in(db: &TestDb, table: &str) -> i64 {
    db.count(&format!("SELECT count(*) FROM {table}")).await
}

/// Waits until `check` holds for the page at `path`, or panics after 3 s.
async fn wait_for_page(app: &TestApp, host: &str, path: &str, check: impl Fn(&str) -> bool) {
    let client = app.client();
    for _ in 0..300 {
        let body = app.get(&client, host, path).await.text().await.unwrap();
        if check(&body) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{host}{path} never changed as expected");
}

// ---- branding ----

#[tokio::test]
async fn each_tenant_has_its_own_branded_login_page_and_theme() {
    let app = two_tenants().await;
    app.db.exec("UPDATE tenants SET primary_color = '#ffcc00', accent_color = '#112233', theme = 'dark',
                branding_version = branding_version + 1 WHERE slug = 'globex'").await;
    wait_for_page(&app, GLOBEX, "/theme.css", |css| css.contains("#ffcc00")).await;
    let client = app.client();

    let acme = app.get(&client, ACME, "/login").await;
    assert_eq!(acme.status(), 200);
    let acme = acme.text().await.unwrap();
    assert!(acme.contains("Sign in to Acme Inc"));
    assert!(acme.contains("data-theme=\"light\""));
    assert!(acme.contains("/theme.css?v="));
    assert!(!acme.contains("Globex"));

    let globex = app
        .get(&client, GLOBEX, "/login")
        .await
        .text()
        .await
        .unwrap();
    assert!(globex.contains("Sign in to Globex Corporation"));
    assert!(globex.contains("data-theme=\"dark\""));
    assert!(
        globex.contains(">GC<"),
        "initials stand in for a missing logo"
    );
    assert!(!globex.contains("Acme"));
    assert!(!globex.contains("style=\""), "no inline styles");

    // The stylesheets: each tenant's colours, readable text on the primary.
    let css = app.get(&client, ACME, "/theme.css").await;
    assert_eq!(css.status(), 200);
    assert!(header(&css, "content-type").starts_with("text/css"));
    assert_eq!(css.headers()["cache-control"], "no-cache");
    let etag = header(&css, "etag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag: {etag}"
    );
    let body = css.text().await.unwrap();
    assert!(body.contains("--primary: #4f46e5;"), "{body}");
    assert!(body.contains("--on-primary: #ffffff;"), "{body}");

    let globex_css = app.get(&client, GLOBEX, "/theme.css").await;
    let globex_etag = header(&globex_css, "etag").to_owned();
    assert_ne!(etag, globex_etag);
    let body = globex_css.text().await.unwrap();
    assert!(body.contains("--primary: #ffcc00;"));
    assert!(
        body.contains("--on-primary: #111827;"),
        "dark text on yellow: {body}"
    );
    assert!(body.contains("--accent: #112233;"));

    // Conditional requests.
    let again = client
        .get(app.url(ACME, "/theme.css"))
        .header(IF_NONE_MATCH, &etag)
        .sent()
        .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.text().await.unwrap().is_empty());
    let stale = client
        .get(app.url(GLOBEX, "/theme.css"))
        .header(IF_NONE_MATCH, &etag)
        .sent()
        .await;
    assert_eq!(stale.status(), 200, "another tenant's ETag does not match");

    // A favicon from the initials; no logo uploaded, so /brand/logo is 404.
    let icon = app.get(&client, GLOBEX, "/favicon.svg").await;
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    assert!(icon.text().await.unwrap().contains(">GC</text>"));
    assert_eq!(app.get(&client, ACME, "/brand/logo").await.status(), 404);
}

// ---- signing in ----

#[tokio::test]
async fn login_good_and_bad_and_where_the_session_lands() {
    let app = two_tenants().await;
    let client = app.client();

    // Before signing in, the board sends you to the login page.
    assert_to_login(&app.get(&client, ACME, "/").await);

    let wrong = app
        .sign_in_with(&client, ACME, "admin@acme.test", "not-the-password", &[])
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        session_cookie(&wrong).is_none(),
        "no session for a failed login"
    );
    let wrong = wrong.text().await.unwrap();
    let unknown = app.sign_in(&client, ACME, "nobody@acme.test").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let unknown = unknown.text().await.unwrap();
    let message = "That email and password do not match an active account.";
    assert!(wrong.contains(message) && unknown.contains(message));
    assert!(unknown.contains("value=\"nobody@acme.test\""), "email kept");
    assert!(!unknown.contains(PASSWORD), "password never echoed");
    assert_eq!(sessions_in(&app.db, "t_acme.tenantry_sessions").await, 0);

    // The email is matched without regard to case or surrounding spaces.
    let good = app.sign_in(&client, ACME, "  Admin@ACME.test ").await;
    assert_eq!(good.status(), StatusCode::SEE_OTHER);
    assert_eq!(good.headers()[LOCATION], "/");
    let cookie = session_set_cookie(&good).unwrap();
    let id = session_cookie(&good).unwrap();

    // Cookie flags: HttpOnly, SameSite=Lax, whole site, host-only, no Secure over http.
    let flags = cookie.to_ascii_lowercase();
    assert!(flags.contains("; httponly"), "{cookie}");
    assert!(flags.contains("; samesite=lax"), "{cookie}");
    assert!(flags.contains("; path=/"), "{cookie}");
    assert!(!flags.contains("domain="), "host-only: {cookie}");
    assert!(!flags.contains("; secure"), "{cookie}");
    assert!(flags.contains("max-age="), "{cookie}");

    // The row is in acme's schema and nowhere else, owned by the admin.
    let owner: i64 =
        sqlx::query_scalar("SELECT owner_id FROM t_acme.tenantry_sessions WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    let admin_id: i64 = app
        .db
        .scalar("SELECT id FROM t_acme.users WHERE email = 'admin@acme.test'")
        .await;
    assert_eq!(owner, admin_id);
    assert_eq!(sessions_in(&app.db, "t_acme.tenantry_sessions").await, 1);
    assert_eq!(sessions_in(&app.db, "t_globex.tenantry_sessions").await, 0);
    assert_eq!(sessions_in(&app.db, "public.cp_sessions").await, 0);

    let board = app.get(&client, ACME, "/").await;
    assert_eq!(board.status(), 200);
    let board = board.text().await.unwrap();
    assert!(board.contains("New task") && board.contains("To do") && board.contains("Done"));
    assert!(board.contains("action=\"/logout\""));
    assert!(board.contains("href=\"/admin/users\""), "admins see Users");

    // Reading pages writes no session: the row is unchanged.
    let before: String = app
        .db
        .scalar("SELECT data::text || expiry_date::text FROM t_acme.tenantry_sessions")
        .await;
    for _ in 0..3 {
        let page = app.get(&client, ACME, "/").await;
        assert!(
            session_set_cookie(&page).is_none(),
            "no cookie churn on reads"
        );
    }
    let after: String = app
        .db
        .scalar("SELECT data::text || expiry_date::text FROM t_acme.tenantry_sessions")
        .await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn one_tenants_cookie_and_credentials_mean_nothing_to_another() {
    let app = two_tenants().await;
    let (_, acme_session) = admin_of(&app, ACME, "acme").await;
    assert_eq!(
        get_with_session(&app, ACME, "/", &acme_session)
            .await
            .status(),
        200
    );

    // The same cookie value on globex is unknown.
    assert_to_login(&get_with_session(&app, GLOBEX, "/", &acme_session).await);
    assert_to_login_then(
        &get_with_session(&app, GLOBEX, "/account", &acme_session).await,
        "/account",
    );

    // acme's admin has no account on globex.
    let client = app.client();
    let response = app.sign_in(&client, GLOBEX, "admin@acme.test").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sessions_in(&app.db, "t_globex.tenantry_sessions").await, 0);
}

#[tokio::test]
async fn login_cycles_the_session_id() {
    let app = two_tenants().await;

    let client = app.client();
    let first = app.sign_in(&client, ACME, "admin@acme.test").await;
    let first_id = session_cookie(&first).unwrap();

    // Signing in again over an existing session: a new id, the old row gone.
    let second = app.sign_in(&client, ACME, "admin@acme.test").await;
    assert_eq!(second.status(), StatusCode::SEE_OTHER);
    let second_id = session_cookie(&second).unwrap();
    assert_ne!(first_id, second_id);
    assert_to_login(&get_with_session(&app, ACME, "/", &first_id).await);
    assert_eq!(
        get_with_session(&app, ACME, "/", &second_id).await.status(),
        200
    );
    assert_eq!(sessions_in(&app.db, "t_acme.tenantry_sessions").await, 1);
}

#[tokio::test]
async fn a_planted_session_cookie_is_replaced_at_login() {
    let app = two_tenants().await;
    // A real but anonymous session row, as a fixation attacker would plant.
    let planted = Id::default().to_string();
    sqlx::query(
        "INSERT INTO t_acme.tenantry_sessions (id, data, expiry_date) VALUES ($1, '{}', now() + interval '1 day')",
    )
    .bind(&planted)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let client = app.client();
    // Get the CSRF cookie and token first, then send both with the planted id.
    let page = app.get(&client, ACME, "/login").await;
    let csrf_cookie = page
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tenantry_csrf="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let token = csrf_from(&page.text().await.unwrap());
    let response = app
        .client()
        .post(app.url(ACME, "/login"))
        .header(COOKIE, format!("{csrf_cookie}; tenantry_session={planted}"))
        .form(&[
            ("email", "admin@acme.test"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let new_id = session_cookie(&response).unwrap();
    assert_ne!(new_id, planted, "the session id changes at login");
    assert_eq!(
        app.db
            .count(&format!(
                "SELECT count(*) FROM t_acme.tenantry_sessions WHERE id = '{planted}'"
            ))
            .await,
        0,
        "the planted row is deleted"
    );
    assert_to_login(&get_with_session(&app, ACME, "/", &planted).await);
}

#[tokio::test]
async fn logout_deletes_the_session_row_and_the_old_cookie_is_useless() {
    let app = two_tenants().await;
    let (client, id) = admin_of(&app, ACME, "acme").await;
    assert_eq!(sessions_in(&app.db, "t_acme.tenantry_sessions").await, 1);

    // Logging out needs the CSRF token.
    let forged = client.post(app.url(ACME, "/logout")).sent().await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(sessions_in(&app.db, "t_acme.tenantry_sessions").await, 1);

    let response = app.post_form(&client, ACME, "/", "/logout", &[]).await;
    assert_to_login(&response);
    let cleared = session_set_cookie(&response).expect("the cookie is cleared");
    assert!(
        cleared.contains("Max-Age=0") || cleared.contains("max-age=0"),
        "{cleared}"
    );
    assert_eq!(sessions_in(&app.db, "t_acme.tenantry_sessions").await, 0);

    assert_to_login(&app.get(&client, ACME, "/").await);
    assert_to_login(&get_with_session(&app, ACME, "/", &id).await);
    let page = app.get(&client, ACME, "/login").await.text().await.unwrap();
    assert!(page.contains("You have signed out."));
}

// ---- the task board ----

async fn task_ids(db: &TestDb, schema: &str) -> Vec<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM {schema}.tasks ORDER BY id"
    )))
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn task_create_edit_move_and_delete() {
    let app = two_tenants().await;
    let (client, _) = admin_of(&app, ACME, "acme").await;
    let admin_id: i64 = app.db.scalar("SELECT id FROM t_acme.users").await;
    let admin_id = admin_id.to_string();

    let created = app
        .post_form(
            &client,
            ACME,
            "/",
            "/tasks",
            &[
                ("title", "Ship the <b>launch</b> plan"),
                ("description", "Line one\r\nLine two"),
                ("status", "todo"),
                ("assignee_id", &admin_id),
                ("due_date", "2030-06-15"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(created.headers()[LOCATION], "/");
    let second = app
        .post_form(
            &client,
            ACME,
            "/",
            "/tasks",
            &[
                ("title", "Second"),
                ("description", ""),
                ("status", "doing"),
                ("assignee_id", ""),
            ],
        )
        .await;
    assert_eq!(second.status(), StatusCode::SEE_OTHER);

    let board = app.get(&client, ACME, "/").await.text().await.unwrap();
    assert!(board.contains("Task created."), "flash shown");
    let again = app.get(&client, ACME, "/").await.text().await.unwrap();
    assert!(!again.contains("Task created."), "a flash shows once");
    assert!(
        board.contains("Ship the &#60;b&#62;launch&#60;/b&#62; plan")
            || board.contains("Ship the &lt;b&gt;launch&lt;/b&gt; plan"),
        "titles are escaped"
    );
    assert!(!board.contains("<b>launch</b>"));
    assert!(board.contains("Jun 15, 2030") && board.contains("datetime=\"2030-06-15\""));
    assert!(board.contains("Admin"), "assignee name shown");
    assert!(board.contains("Unassigned"));
    assert!(board.contains("aria-label=\"1 task\">1<"), "column counts");
    // Newest first: "Second" was created last, but it is in Doing; within
    // the whole page the To do card comes before the Doing column anyway.
    let stored: (String, String, Option<String>) = app
        .db
        .row(
            "SELECT description, status, due_date::text FROM t_acme.tasks WHERE title LIKE 'Ship%'",
        )
        .await;
    assert_eq!(
        stored,
        (
            "Line one\nLine two".into(),
            "todo".into(),
            Some("2030-06-15".into())
        )
    );

    let ids = task_ids(&app.db, "t_acme").await;
    let id = ids[0];
    let edit_path = format!("/tasks/{id}");
    let edit = app.get(&client, ACME, &edit_path).await;
    assert_eq!(edit.status(), 200);
    let edit = edit.text().await.unwrap();
    assert!(edit.contains("value=\"2030-06-15\""));
    assert!(edit.contains(&format!("<option value=\"{admin_id}\" selected>")));

    let saved = app
        .post_form(
            &client,
            ACME,
            &edit_path,
            &edit_path,
            &[
                ("title", "Ship the plan"),
                ("description", "Updated"),
                ("status", "doing"),
                ("assignee_id", ""),
                ("due_date", ""),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let stored: (String, String, String, Option<i64>, Option<String>) = sqlx::query_as(
        "SELECT title, description, status, assignee_id, due_date::text FROM t_acme.tasks WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        stored,
        (
            "Ship the plan".into(),
            "Updated".into(),
            "doing".into(),
            None,
            None
        )
    );

    let moved = app
        .post_form(
            &client,
            ACME,
            "/",
            &format!("/tasks/{id}/move"),
            &[("status", "done")],
        )
        .await;
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    let status: String = sqlx::query_scalar("SELECT status FROM t_acme.tasks WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "done");
    let bad_move = app
        .post_form(
            &client,
            ACME,
            "/",
            &format!("/tasks/{id}/move"),
            &[("status", "lost")],
        )
        .await;
    assert_eq!(bad_move.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A script may leave out everything but the title: a new To do task.
    let minimal = app
        .post_form(&client, ACME, "/", "/tasks", &[("title", "Just a title")])
        .await;
    assert_eq!(minimal.status(), StatusCode::SEE_OTHER);
    let status: String = app
        .db
        .scalar("SELECT status FROM t_acme.tasks WHERE title = 'Just a title'")
        .await;
    assert_eq!(status, "todo");
    app.db
        .exec("DELETE FROM t_acme.tasks WHERE title = 'Just a title'")
        .await;

    let confirm = app.get(&client, ACME, &format!("/tasks/{id}/delete")).await;
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.unwrap().contains("Delete this task?"));
    let deleted = app
        .post_form(&client, ACME, "/", &format!("/tasks/{id}/delete"), &[])
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get(&client, ACME, &edit_path).await.status(), 404);
    assert_eq!(task_ids(&app.db, "t_acme").await, vec![ids[1]]);
    assert!(task_ids(&app.db, "t_globex").await.is_empty());
}

#[tokio::test]
async fn invalid_tasks_are_refused_with_messages() {
    let app = two_tenants().await;
    let (client, _) = admin_of(&app, ACME, "acme").await;
    let globex_admin: i64 = app.db.scalar("SELECT id FROM t_globex.users").await;
    let long_title = "x".repeat(201);
    let long_description = "é".repeat(10_001);
    let just_fits = "é".repeat(10_000);
    let other_tenants_user = (globex_admin + 1000).to_string();
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[
                ("title", "  "),
                ("description", "kept text"),
                ("status", "todo"),
            ],
            "Give the task a title.",
        ),
        (
            &[("title", &long_title), ("status", "todo")],
            "A title is at most 200 characters.",
        ),
        (
            &[
                ("title", "ok"),
                ("description", &long_description),
                ("status", "todo"),
            ],
            "A description is at most 10000 characters.",
        ),
        (
            &[("title", "ok"), ("status", "someday")],
            "Choose To do, Doing or Done.",
        ),
        (
            &[
                ("title", "ok"),
                ("status", "todo"),
                ("due_date", "2026-02-30"),
            ],
            "Enter a date such as 2026-12-31.",
        ),
        (
            &[
                ("title", "ok"),
                ("status", "todo"),
                ("assignee_id", &other_tenants_user),
            ],
            "Choose someone from the list.",
        ),
    ];
    for (fields, message) in cases {
        let response = app.post_form(&client, ACME, "/", "/tasks", fields).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{message}"
        );
        let page = response.text().await.unwrap();
        assert!(page.contains(message), "{message}");
        assert!(page.contains("class=\"field-error\""));
        assert!(page.contains("aria-invalid=\"true\""));
    }
    let response = app
        .post_form(
            &client,
            ACME,
            "/",
            "/tasks",
            &[
                ("title", "  "),
                ("description", "kept text"),
                ("status", "doing"),
            ],
        )
        .await;
    let page = response.text().await.unwrap();
    assert!(
        page.contains(">kept text</textarea>"),
        "typed values are kept"
    );
    assert!(page.contains("<option value=\"doing\" selected>"));
    assert!(task_ids(&app.db, "t_acme").await.is_empty());

    // Exactly at the limits is fine.
    let title = "t".repeat(200);
    let ok = app
        .post_form(
            &client,
            ACME,
            "/",
            "/tasks",
            &[
                ("title", &title),
                ("description", &just_fits),
                ("status", "todo"),
            ],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);

    // An edit with bad input re-renders the edit page.
    let id = task_ids(&app.db, "t_acme").await[0];
    let path = format!("/tasks/{id}");
    let bad = app
        .post_form(
            &client,
            ACME,
            &path,
            &path,
            &[("title", ""), ("status", "todo")],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("Edit task"));

    // No or a wrong CSRF token: 403. Too large a body: 413.
    let no_token = app
        .post(
            &client,
            ACME,
            "/tasks",
            &[("title", "sneaky"), ("status", "todo")],
        )
        .await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let wrong_token = app
        .post(
            &client,
            ACME,
            "/tasks",
            &[
                ("title", "sneaky"),
                ("status", "todo"),
                ("csrf_token", "00"),
            ],
        )
        .await;
    assert_eq!(wrong_token.status(), StatusCode::FORBIDDEN);
    let token = csrf_for(&client, &app.url(ACME, "/")).await;
    let huge = "d".repeat(2 * 1024 * 1024);
    let too_large = app
        .post(
            &client,
            ACME,
            "/tasks",
            &[
                ("title", "big"),
                ("status", "todo"),
                ("description", &huge),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(task_ids(&app.db, "t_acme").await.len(), 1);
}

#[tokio::test]
async fn another_tenants_task_is_not_found() {
    let app = two_tenants().await;
    app.db
        .exec("INSERT INTO t_globex.tasks (title) VALUES ('Globex secret plan')")
        .await;
    let globex_id = task_ids(&app.db, "t_globex").await[0];
    let (client, _) = admin_of(&app, ACME, "acme").await;

    for path in [
        format!("/tasks/{globex_id}"),
        format!("/tasks/{globex_id}/delete"),
        "/tasks/999999".into(),
        "/tasks/abc".into(),
        "/tasks/-1".into(),
    ] {
        let response = app.get(&client, ACME, &path).await;
        assert_eq!(response.status(), 404, "GET {path}");
        assert!(!response.text().await.unwrap().contains("Globex secret"));
    }
    let edit = format!("/tasks/{globex_id}");
    let update = app
        .post_form(
            &client,
            ACME,
            "/",
            &edit,
            &[("title", "stolen"), ("status", "done")],
        )
        .await;
    assert_eq!(update.status(), 404);
    let moved = app
        .post_form(
            &client,
            ACME,
            "/",
            &format!("{edit}/move"),
            &[("status", "done")],
        )
        .await;
    assert_eq!(moved.status(), 404);
    let deleted = app
        .post_form(&client, ACME, "/", &format!("{edit}/delete"), &[])
        .await;
    assert_eq!(deleted.status(), 404);

    let (title, status): (String, String) =
        app.db.row("SELECT title, status FROM t_globex.tasks").await;
    assert_eq!(
        (title.as_str(), status.as_str()),
        ("Globex secret plan", "todo")
    );
    let board = app.get(&client, ACME, "/").await.text().await.unwrap();
    assert!(!board.contains("Globex"));
}

// ---- users ----

async fn user_count(db: &TestDb, slug: &str) -> i32 {
    sqlx::query_scalar("SELECT user_count FROM tenants WHERE slug = $1")
        .bind(slug)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn user_id(db: &TestDb, email: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM t_acme.users WHERE email = $1")
        .bind(email)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

/// An admin's action on one user (`role`, `deactivate`, `reactivate`),
/// posted with the users page's token.
async fn user_action(
    app: &TestApp,
    admin: &Client,
    id: i64,
    action: &str,
    fields: &[(&str, &str)],
) -> Response {
    let path = format!("/admin/users/{id}/{action}");
    app.post_form(admin, ACME, "/admin/users", &path, fields)
        .await
}

async fn add_member(app: &TestApp, admin: &Client, email: &str, role: &str) -> Response {
    app.post_form(
        admin,
        ACME,
        "/admin/users",
        "/admin/users",
        &[
            ("email", email),
            ("display_name", "Mia Member"),
            ("password", PASSWORD),
            ("role", role),
        ],
    )
    .await
}

#[tokio::test]
async fn admins_manage_users_and_members_cannot() {
    let app = two_tenants().await;
    let (admin, _) = admin_of(&app, ACME, "acme").await;
    assert_eq!(app.get(&admin, ACME, "/admin/users").await.status(), 200);

    let created = add_member(&app, &admin, "Mia@Acme.test", "member").await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(created.headers()[LOCATION], "/admin/users");
    assert_eq!(user_count(&app.db, "acme").await, 2);
    assert_eq!(user_count(&app.db, "globex").await, 1);
    let list = app
        .get(&admin, ACME, "/admin/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("mia@acme.test") && list.contains("Mia Member"));

    // Bad input: 422, messages, values kept, never the password.
    let duplicate = add_member(&app, &admin, "MIA@acme.test", "member").await;
    assert_eq!(duplicate.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = duplicate.text().await.unwrap();
    assert!(page.contains("already has this email"));
    assert!(!page.contains(PASSWORD));
    let bad = app
        .post_form(
            &admin,
            ACME,
            "/admin/users",
            "/admin/users",
            &[
                ("email", "not-an-email"),
                ("display_name", "Kim"),
                ("password", "short"),
                ("role", "owner"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = bad.text().await.unwrap();
    assert!(page.contains("enter a valid email address"));
    assert!(page.contains("a password is at least 10 characters"));
    assert!(page.contains("Choose Admin or Member."));
    assert!(page.contains("value=\"Kim\""));
    assert_eq!(user_count(&app.db, "acme").await, 2);

    // The member signs in: the board works, the users pages are forbidden.
    let (member, _) = signed_in(&app, ACME, "mia@acme.test", PASSWORD).await;
    let board = app.get(&member, ACME, "/").await;
    assert_eq!(board.status(), 200);
    assert!(
        !board
            .text()
            .await
            .unwrap()
            .contains("href=\"/admin/users\"")
    );
    let forbidden = app.get(&member, ACME, "/admin/users").await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(forbidden.text().await.unwrap().contains("Not allowed"));
    let token = csrf_for(&member, &app.url(ACME, "/")).await;
    let attempt = app
        .post(
            &member,
            ACME,
            "/admin/users",
            &[
                ("email", "x@acme.test"),
                ("display_name", "X"),
                ("password", PASSWORD),
                ("role", "admin"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(attempt.status(), StatusCode::FORBIDDEN);
    let admin_id = user_id(&app.db, "admin@acme.test").await;
    let attempt = app
        .post(
            &member,
            ACME,
            &format!("/admin/users/{admin_id}/deactivate"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(attempt.status(), StatusCode::FORBIDDEN);
    assert_eq!(user_count(&app.db, "acme").await, 2);

    // Promote the member: now they see the users page.
    let mia = user_id(&app.db, "mia@acme.test").await;
    let promoted = user_action(&app, &admin, mia, "role", &[("role", "admin")]).await;
    assert_eq!(promoted.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get(&member, ACME, "/admin/users").await.status(), 200);

    // A not-logged-in visitor is sent to the login page.
    assert_to_login_then(
        &app.get(&app.client(), ACME, "/admin/users").await,
        "/admin/users",
    );
    // Another tenant's user id is not found.
    let globex_admin: i64 = app.db.scalar("SELECT id FROM t_globex.users").await;
    let missing = user_action(&app, &admin, globex_admin + 1000, "deactivate", &[]).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn deactivation_ends_sessions_at_once_and_reactivation_restores_access() {
    let app = two_tenants().await;
    let (admin, _) = admin_of(&app, ACME, "acme").await;
    add_member(&app, &admin, "mia@acme.test", "member").await;
    let mia = user_id(&app.db, "mia@acme.test").await;
    let (member, member_session) = signed_in(&app, ACME, "mia@acme.test", PASSWORD).await;
    let (_, other_session) = signed_in(&app, ACME, "mia@acme.test", PASSWORD).await;
    assert_eq!(app.get(&member, ACME, "/").await.status(), 200);

    let done = user_action(&app, &admin, mia, "deactivate", &[]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    app.db
        .assert_count(
            &format!("SELECT count(*) FROM t_acme.tenantry_sessions WHERE owner_id = {mia}"),
            0,
        )
        .await;
    assert_to_login(&app.get(&member, ACME, "/").await);
    assert_to_login(&get_with_session(&app, ACME, "/", &member_session).await);
    assert_to_login(&get_with_session(&app, ACME, "/", &other_session).await);
    assert_eq!(user_count(&app.db, "acme").await, 1);
    assert_eq!(
        app.sign_in(&app.client(), ACME, "mia@acme.test")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // The admin is still signed in.
    assert_eq!(app.get(&admin, ACME, "/").await.status(), 200);

    let back = user_action(&app, &admin, mia, "reactivate", &[]).await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(user_count(&app.db, "acme").await, 2);
    signed_in(&app, ACME, "mia@acme.test", PASSWORD).await;
}

#[tokio::test]
async fn the_last_active_admin_stays() {
    let app = two_tenants().await;
    let (admin, _) = admin_of(&app, ACME, "acme").await;
    let me = user_id(&app.db, "admin@acme.test").await;
    let is_active_admin = |db: &TestDb| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT role = 'admin' AND active FROM t_acme.users WHERE id = $1",
            )
            .bind(me)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };

    let demote = user_action(&app, &admin, me, "role", &[("role", "member")]).await;
    assert_eq!(demote.status(), StatusCode::SEE_OTHER);
    let page = app
        .get(&admin, ACME, "/admin/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("last active admin: make someone else an admin first"),
        "{page}"
    );
    assert!(is_active_admin(&app.db).await);
    let deactivate = user_action(&app, &admin, me, "deactivate", &[]).await;
    assert_eq!(deactivate.status(), StatusCode::SEE_OTHER);
    let page = app
        .get(&admin, ACME, "/admin/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("cannot be deactivated"));
    assert!(is_active_admin(&app.db).await);

    // With a second admin, the first may step down.
    add_member(&app, &admin, "boss@acme.test", "admin").await;
    let demote = user_action(&app, &admin, me, "role", &[("role", "member")]).await;
    assert_eq!(demote.status(), StatusCode::SEE_OTHER);
    assert_eq!(demote.headers()[LOCATION], "/");
    assert!(!is_active_admin(&app.db).await);
    assert_eq!(app.get(&admin, ACME, "/admin/users").await.status(), 403);
}

// ---- account ----

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    let app = two_tenants().await;
    let (laptop, laptop_session) = admin_of(&app, ACME, "acme").await;
    let (phone, _) = admin_of(&app, ACME, "acme").await;
    let account = app.get(&laptop, ACME, "/account").await;
    assert_eq!(account.status(), 200);
    assert!(account.text().await.unwrap().contains("admin@acme.test"));

    let wrong = app
        .post_form(
            &laptop,
            ACME,
            "/account",
            "/account/password",
            &[
                ("current_password", "guess-guess-guess"),
                ("new_password", "a-brand-new-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("That is not your current password.")
    );
    let short = app
        .post_form(
            &laptop,
            ACME,
            "/account",
            "/account/password",
            &[("current_password", PASSWORD), ("new_password", "short")],
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get(&phone, ACME, "/").await.status(),
        200,
        "nothing changed yet"
    );

    let changed = app
        .post_form(
            &laptop,
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
    assert_eq!(changed.headers()[LOCATION], "/account");

    assert_to_login(&app.get(&phone, ACME, "/").await);
    let page = app.get(&laptop, ACME, "/account").await;
    assert_eq!(page.status(), 200, "this session stays");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Your other session was signed out.")
    );
    assert_eq!(
        get_with_session(&app, ACME, "/", &laptop_session)
            .await
            .status(),
        200
    );
    assert_eq!(sessions_in(&app.db, "t_acme.tenantry_sessions").await, 1);

    assert_eq!(
        app.sign_in(&app.client(), ACME, "admin@acme.test")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    signed_in(&app, ACME, "admin@acme.test", "a-brand-new-password").await;
}

// ---- suspension ----

#[tokio::test]
async fn a_suspended_workspace_shows_a_branded_403_on_every_page() {
    let app = two_tenants().await;
    let (client, _) = admin_of(&app, ACME, "acme").await;
    app.db
        .exec("UPDATE tenants SET status = 'suspended' WHERE slug = 'acme'")
        .await;
    wait_for_page(&app, ACME, "/login", |page| {
        page.contains("Workspace suspended")
    })
    .await;
    for path in ["/", "/login", "/account", "/admin/users", "/tasks/1"] {
        let response = app.get(&client, ACME, path).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let page = response.text().await.unwrap();
        assert!(
            page.contains("Workspace suspended") && page.contains("Acme Inc"),
            "{path}"
        );
        assert!(page.contains("/theme.css?v="), "branded");
    }
    let post = app
        .post_form(&app.client(), GLOBEX, "/login", "/login", &[])
        .await;
    assert_eq!(
        post.status(),
        StatusCode::UNAUTHORIZED,
        "globex is unaffected"
    );
    let response = app.post(&client, ACME, "/tasks", &[("title", "x")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get(&client, ACME, "/theme.css").await.status(), 200);
    assert_eq!(app.get(&client, ACME, "/favicon.svg").await.status(), 200);
}

// ---- the session store and its sweep ----

#[tokio::test]
async fn the_session_store_needs_a_site_in_scope() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    let app = TestApp::start(db).await;
    let store = SiteSessionStore::new(app.db.pool.clone(), tenantry::web::auth::SESSIONS);
    let err = store.load(&Id::default()).await.unwrap_err();
    assert!(err.to_string().contains("no site in scope"), "{err}");

    let site = app.registry.resolve(ACME).unwrap();
    let found = tenantry::tenancy::resolve::with_site(site, store.load(&Id::default())).await;
    assert!(found.unwrap().is_none());
}

#[tokio::test]
async fn expired_sessions_are_swept_from_every_schema() {
    let app = two_tenants().await;
    app.db.exec("INSERT INTO t_acme.tenantry_sessions (id, data, expiry_date) VALUES
             ('old-a', '{}', now() - interval '1 minute'), ('live-a', '{}', now() + interval '1 day');
         INSERT INTO t_globex.tenantry_sessions (id, data, expiry_date) VALUES ('old-g', '{}', now() - interval '1 second');
         INSERT INTO public.cp_sessions (id, data, expiry_date) VALUES ('old-cp', '{}', now() - interval '1 hour');").await;
    let pool = app.db.pool_of(1);
    let removed = tenantry::tenancy::sessions::sweep_expired(
        &pool,
        &app.registry,
        &tenantry::web::auth::SESSIONS,
    )
    .await
    .unwrap();
    assert_eq!(removed, 3, "the three expired sessions");
    let remaining = app
        .db
        .count(
            "SELECT (SELECT count(*) FROM t_acme.tenantry_sessions) + (SELECT count(*) FROM t_globex.tenantry_sessions)
                  + (SELECT count(*) FROM public.cp_sessions)",
        )
        .await;
    assert_eq!(remaining, 1);
    app.db
        .assert_count(
            "SELECT count(*) FROM t_acme.tenantry_sessions WHERE id = 'live-a'",
            1,
        )
        .await;
}

#[tokio::test]
async fn saving_an_ended_session_does_not_bring_it_back() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    let app = TestApp::start(db).await;
    let store = SiteSessionStore::new(app.db.pool.clone(), tenantry::web::auth::SESSIONS);
    let site = app.registry.resolve(ACME).unwrap();
    tenantry::tenancy::resolve::with_site(site, async {
        let mut record = tower_sessions::session::Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut record).await.unwrap();
        assert!(store.load(&record.id).await.unwrap().is_some());
        // Ended elsewhere (logout, deactivation) while a request was in flight…
        store.delete(&record.id).await.unwrap();
        // …whose save at the end must not re-create it.
        record.data.insert("user_id".into(), serde_json::json!(1));
        store.save(&record).await.unwrap();
        assert!(store.load(&record.id).await.unwrap().is_none());
    })
    .await;
    assert_eq!(sessions_in(&app.db, "t_acme.tenantry_sessions").await, 0);
}

#[tokio::test]
async fn an_aging_session_is_renewed_once_and_fresh_ones_are_not_written() {
    let app = two_tenants().await;
    let (client, id) = admin_of(&app, ACME, "acme").await;
    let expiry = |db: &TestDb| {
        let pool = db.pool.clone();
        let id = id.clone();
        async move {
            sqlx::query_scalar::<_, f64>(
                "SELECT extract(epoch FROM expiry_date - now())::float8 / 86400 FROM t_acme.tenantry_sessions WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert!(expiry(&app.db).await > 13.9);
    app.db
        .exec("UPDATE t_acme.tenantry_sessions SET expiry_date = now() + interval '2 days'")
        .await;
    let page = app.get(&client, ACME, "/").await;
    assert_eq!(page.status(), 200);
    assert_eq!(
        session_cookie(&page).as_deref(),
        Some(id.as_str()),
        "same id, new expiry"
    );
    assert!(expiry(&app.db).await > 13.9, "renewed to the full lifetime");
    let page = app.get(&client, ACME, "/").await;
    assert!(
        session_set_cookie(&page).is_none(),
        "a fresh session is not written again"
    );
}

#[tokio::test]
async fn theme_css_honours_weak_and_listed_etags() {
    let app = two_tenants().await;
    let client = app.client();
    let css = app.get(&client, ACME, "/theme.css").await;
    let etag = header(&css, "etag").to_owned();
    for listed in [
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let response = client
            .get(app.url(ACME, "/theme.css"))
            .header(IF_NONE_MATCH, &listed)
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{listed}");
        assert_eq!(header(&response, "etag"), etag);
    }
}

#[tokio::test]
async fn a_long_column_shows_its_newest_cards_and_its_full_count() {
    let app = two_tenants().await;
    app.db.exec("INSERT INTO t_acme.tasks (title, status, created_at)
         SELECT 'Finished ' || n, 'done', now() - n * interval '1 minute' FROM generate_series(1, 105) n;
         INSERT INTO t_acme.tasks (title, status) VALUES ('Open one', 'todo');
         -- Rows written behind the app's back: bring the counts it keeps along.
         UPDATE t_acme.task_counts c
            SET n = (SELECT count(*) FROM t_acme.tasks t WHERE t.status = c.status);").await;
    let (client, _) = admin_of(&app, ACME, "acme").await;
    let board = app.get(&client, ACME, "/").await.text().await.unwrap();
    assert!(board.contains("aria-label=\"105 tasks\">105<"));
    assert!(board.contains("aria-label=\"1 task\">1<"));
    assert!(board.contains("Showing the newest 20 of 105."));
    assert!(board.contains("<a href=\"/columns/done\">Show all 105</a>"));
    assert!(board.contains(">Finished 1<") && board.contains(">Finished 20<"));
    assert!(!board.contains(">Finished 21<"), "older cards are left off");
    assert!(board.contains("106 tasks in Acme Inc"));
    // Every move button posts through the one token-carrying form.
    assert!(board.contains("<form id=\"move\" method=\"post\""));
    assert!(board.contains("form=\"move\" formaction=\"/tasks/"));

    // The column's own page has every card, fifty at a time, newest first.
    let mut path = "/columns/done".to_owned();
    let mut seen = Vec::new();
    loop {
        let page = app.get(&client, ACME, &path).await;
        assert_eq!(page.status(), 200, "{path}");
        let page = page.text().await.unwrap();
        assert!(page.contains("105 tasks, newest first"));
        assert!(
            page.contains("form=\"move\" formaction=\"/tasks/"),
            "cards can move"
        );
        seen.extend(page.match_indices(">Finished ").map(|(i, _)| {
            page[i + 10..]
                .split('<')
                .next()
                .unwrap()
                .parse::<u32>()
                .unwrap()
        }));
        let Some(at) = page.find("?before=") else {
            break;
        };
        let id: String = page[at + 8..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        path = format!("/columns/done?before={id}");
    }
    assert_eq!(
        seen,
        (1..=105).collect::<Vec<_>>(),
        "each card once, in order"
    );
    let todo = app
        .get(&client, ACME, "/columns/todo")
        .await
        .text()
        .await
        .unwrap();
    assert!(todo.contains(">Open one<") && !todo.contains("?before="));
    for bad in [
        "/columns/lost",
        "/columns/done?before=x",
        "/columns/done?before=-1",
    ] {
        assert_eq!(app.get(&client, ACME, bad).await.status(), 404, "{bad}");
    }
}

#[tokio::test]
async fn a_logo_brands_the_pages_and_the_favicon() {
    let app = two_tenants().await;
    let png: &[u8] = b"\x89PNG\r\n\x1a\nnot-really-an-image";
    let sha = "ab".repeat(32);
    sqlx::query(
        "UPDATE tenants SET logo = $1, logo_content_type = 'image/png', logo_sha256 = $2,
                branding_version = branding_version + 1 WHERE slug = 'acme'",
    )
    .bind(png)
    .bind(&sha)
    .execute(&app.db.pool)
    .await
    .unwrap();
    wait_for_page(&app, ACME, "/login", |page| page.contains("/brand/logo?v=")).await;
    let client = app.client();

    let logo = app.get(&client, ACME, "/brand/logo").await;
    assert_eq!(logo.status(), 200);
    assert_eq!(logo.headers()["content-type"], "image/png");
    let etag = header(&logo, "etag").to_owned();
    assert_eq!(etag, format!("\"{sha}\""));
    assert_eq!(logo.bytes().await.unwrap().as_ref(), png);
    let again = client
        .get(app.url(ACME, "/brand/logo"))
        .header(IF_NONE_MATCH, &etag)
        .sent()
        .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let icon = app.get(&client, ACME, "/favicon.svg").await;
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    let icon_etag = header(&icon, "etag").to_owned();
    assert!(
        icon.text()
            .await
            .unwrap()
            .contains("href=\"data:image/png;base64,iVBORw0KGgpub3Qt")
    );
    let again = client
        .get(app.url(ACME, "/favicon.svg"))
        .header(IF_NONE_MATCH, &icon_etag)
        .sent()
        .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // globex has no logo: initials, and no logo of acme's.
    assert_eq!(app.get(&client, GLOBEX, "/brand/logo").await.status(), 404);
    let login = app
        .get(&client, GLOBEX, "/login")
        .await
        .text()
        .await
        .unwrap();
    assert!(!login.contains("/brand/logo"));
}

/// The count in each column's heading: To do, Doing, Done.
fn column_counts(board: &str) -> [usize; 3] {
    ["todo", "doing", "done"].map(|status| {
        let column = board
            .find(&format!("class=\"column column-{status}\""))
            .unwrap_or_else(|| panic!("no {status} column"));
        let label = &board[column..];
        let start = label.find("aria-label=\"").unwrap() + "aria-label=\"".len();
        let digits: String = label[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    })
}

/// What `task_counts` holds against a count of the rows themselves.
async fn stored_counts(db: &TestDb) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
    let kept = sqlx::query_as("SELECT status, n FROM t_acme.task_counts ORDER BY status")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    let counted = sqlx::query_as(
        "SELECT s.status, (SELECT count(*) FROM t_acme.tasks t WHERE t.status = s.status)
           FROM t_acme.task_counts s ORDER BY s.status",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    (kept, counted)
}

#[tokio::test]
async fn column_counts_follow_every_change_to_a_task() {
    let app = two_tenants().await;
    let (client, _) = admin_of(&app, ACME, "acme").await;
    let board = || async { app.get(&client, ACME, "/").await.text().await.unwrap() };
    assert_eq!(column_counts(&board().await), [0, 0, 0]);
    for (title, status) in [("A", "todo"), ("B", "todo"), ("C", "doing")] {
        let created = app
            .post_form(
                &client,
                ACME,
                "/",
                "/tasks",
                &[("title", title), ("status", status)],
            )
            .await;
        assert_eq!(created.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(column_counts(&board().await), [2, 1, 0]);
    let db = &app.db;
    let id = |title: &'static str| {
        let sql = format!("SELECT id FROM t_acme.tasks WHERE title = '{title}'");
        async move { db.scalar::<i64>(&sql).await }
    };
    let (a, b, c) = (id("A").await, id("B").await, id("C").await);
    let move_to = |task: i64, status: &'static str| {
        let path = format!("/tasks/{task}/move");
        let client = client.clone();
        let app = &app;
        async move {
            app.post_form(&client, ACME, "/", &path, &[("status", status)])
                .await
                .status()
        }
    };
    assert_eq!(move_to(a, "done").await, StatusCode::SEE_OTHER);
    assert_eq!(column_counts(&board().await), [1, 1, 1]);
    assert_eq!(
        move_to(a, "done").await,
        StatusCode::SEE_OTHER,
        "a move to where it is"
    );
    assert_eq!(column_counts(&board().await), [1, 1, 1]);
    let edit = format!("/tasks/{b}");
    let saved = app
        .post_form(
            &client,
            ACME,
            &edit,
            &edit,
            &[("title", "B"), ("status", "doing")],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(column_counts(&board().await), [0, 2, 1]);
    let deleted = app
        .post_form(&client, ACME, "/", &format!("/tasks/{c}/delete"), &[])
        .await;
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert_eq!(column_counts(&board().await), [0, 1, 1]);

    // Moves of one task racing each other still leave the counts true.
    let racing: Vec<_> = (0..12)
        .map(|n| move_to(a, ["todo", "doing", "done"][n % 3]))
        .collect();
    for status in futures_util::future::join_all(racing).await {
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    let (kept, counted) = stored_counts(&app.db).await;
    assert_eq!(kept, counted);
    let shown = column_counts(&board().await);
    assert_eq!(shown.iter().sum::<usize>(), 2);
    let globex: i64 = app
        .db
        .scalar("SELECT sum(n)::bigint FROM t_globex.task_counts")
        .await;
    assert_eq!(globex, 0, "the other tenant's counts are untouched");
}
