//! Real-browser tests: headless Chromium driven through ChromeDriver against
//! the real server and a real PostgreSQL. Each main page is checked with
//! axe-core and photographed at a desktop and a phone size into
//! `target/screenshots/`. A test binary of its own, so the HTTP suite does
//! not wait for a browser. Without Chromium, ChromeDriver or axe-core on the
//! machine its test is reported as ignored (failed under `CI`): see
//! `tests/common/suite.rs`.

#[path = "../it/harness.rs"]
mod harness;

mod driver;
#[path = "../common/suite.rs"]
mod suite;

use std::process::ExitCode;
use std::time::Duration;

use fantoccini::Locator;

use crate::driver::{Browser, Driver, rgb};
use crate::harness::{PASSWORD, TestApp, TestDb};
use crate::suite::{Runtime, Suite};

fn main() -> ExitCode {
    let multi = Runtime::MultiThread { worker_threads: 2 };
    let mut suite = Suite::new(driver::missing());
    suite::add!(suite, multi, tenants_in_a_real_browser);
    suite.run()
}

const ACME_PRIMARY: &str = "#0f766e";
const ACME_ACCENT: &str = "#f59e0b";
/// A light primary: the header's text must switch to the dark text colour.
const GLOBEX_PRIMARY: &str = "#fbbf24";

/// The whole story in one browser run (one server, one ChromeDriver): the
/// super-admin sets a tenant up, its admin and a member use it, and a second
/// tenant in the same browser shows only its own branding and data.
async fn tenants_in_a_real_browser() {
    let db = TestDb::new().await;
    db.create_super_admin("root@tenantry.test").await;
    let app = TestApp::start(db).await;
    let chromedriver = Driver::start();
    let browser = chromedriver.session("main").await;

    super_admin_creates_and_runs_a_tenant(&app, &browser).await;
    tenant_admin_works_on_the_board(&app, &browser).await;
    let member = chromedriver.session("member").await;
    member_sees_the_board_but_not_admin_pages(&app, &member).await;
    member.close().await;
    second_tenant_shows_only_its_own(&app, &browser).await;
    operator_views_a_workspace_as_a_member(&app, &browser).await;
    browser.close().await;
}

async fn super_admin_creates_and_runs_a_tenant(app: &TestApp, b: &Browser) {
    let cp = |path: &str| app.url("localhost", path);

    // Sign in.
    b.goto(&cp("/")).await;
    assert_eq!(b.path().await, "/login");
    b.check_page("cp-login").await;
    sign_in(b, "root@tenantry.test", "No tenants yet").await;
    assert_eq!(b.path().await, "/");
    b.check_page("cp-tenants-empty").await;

    // Create a tenant with colours; the preview follows the colour field.
    b.click_text("Create a tenant").await;
    b.wait_for_text("Create a tenant").await;
    b.fill("#display_name", "Acme Inc").await;
    b.fill("#slug", "acme").await;
    b.fill("#admin_email", "admin@acme.test").await;
    b.fill("#admin_password", PASSWORD).await;
    b.set_value("#primary_color", "#7c3aed").await;
    assert_eq!(
        b.style(".cp-preview-bar", "background-color").await,
        rgb("#7c3aed")
    );
    assert_eq!(b.text("[data-preview-name]").await, "Acme Inc");
    b.set_value("#primary_color", ACME_PRIMARY).await;
    b.set_value("#accent_color", ACME_ACCENT).await;
    assert_eq!(
        b.style(".cp-preview-bar", "background-color").await,
        rgb(ACME_PRIMARY)
    );
    assert_eq!(
        b.style(".cp-preview-accent", "background-color").await,
        rgb(ACME_ACCENT)
    );
    b.check_page("cp-new").await;
    b.click_text("Create tenant").await;
    b.wait_for_text("Tenant acme is ready").await;
    assert_eq!(b.path().await, "/tenants/acme");

    // Branding editor: a logo, and the preview follows a colour change.
    let logo = std::env::temp_dir().join(format!("tenantry-logo-{}.png", std::process::id()));
    std::fs::write(&logo, driver::logo_png(96, [15, 118, 110])).unwrap();
    b.find("#logo")
        .await
        .send_keys(logo.to_str().unwrap())
        .await
        .unwrap();
    b.find("[data-preview-logo]:not([hidden])").await;
    b.set_value("#primary_color", "#1d4ed8").await;
    assert_eq!(
        b.style(".cp-preview-bar", "background-color").await,
        rgb("#1d4ed8")
    );
    b.set_value("#primary_color", ACME_PRIMARY).await;
    assert_eq!(
        b.style(".cp-preview-bar", "background-color").await,
        rgb(ACME_PRIMARY)
    );
    b.click_text("Save branding").await;
    b.wait_for_text("Branding saved").await;
    std::fs::remove_file(&logo).unwrap();
    assert!(b.text(".cp-facts").await.contains("Branding version"));
    b.check_page_at("cp-branding", Some("#branding-h")).await;

    // A custom domain, which then serves the tenant.
    b.fill("#domain", "tasks.acme.test").await;
    b.click_text("Add domain").await;
    b.wait_for_text("tasks.acme.test").await;
    assert!(b.flash().await.contains("tasks.acme.test"));
    app.wait_for_host("tasks.acme.test").await;
    b.goto(&app.url("tasks.acme.test", "/login")).await;
    b.wait_for_text("Sign in to Acme Inc").await;

    // Suspend (after the confirmation), see the suspended page, reactivate.
    b.goto(&cp("/tenants/acme")).await;
    b.click_text("Suspend acme").await;
    let question = b.client.get_alert_text().await.unwrap();
    assert!(question.contains("Suspend acme?"), "{question}");
    b.client.accept_alert().await.unwrap();
    b.wait_for_text("Reactivate acme").await;
    assert!(b.text("h1").await.contains("Suspended"));
    let tenant_home = app.url("acme.localhost", "/");
    eventually(b, &tenant_home, "Workspace suspended").await;
    assert_eq!(
        b.style(".topbar", "background-color").await,
        rgb(ACME_PRIMARY)
    );
    b.check_page("suspended").await;

    b.goto(&cp("/tenants/acme")).await;
    b.click_text("Reactivate acme").await;
    b.wait_for_text("acme is active again").await;
    assert!(b.text("h1").await.contains("Active"));

    // The list, with a second tenant for company.
    app.db
        .create_tenant_named("globex", "Globex Corporation")
        .await;
    b.goto(&cp("/")).await;
    b.wait_for_text("Globex Corporation").await;
    assert!(b.body().await.contains("Acme Inc"));
    b.check_page_at("cp-tenants", Some("#tenant-list")).await;

    // The usage dashboard above the list, once the jobs have run (called
    // here instead of waiting for their timers), over a few weeks of
    // history so that every chart has bars to draw.
    seed_usage_history(&app.db).await;
    tenantry::usage::collect::flush(&app.db.pool, &app.usage)
        .await
        .unwrap();
    tenantry::usage::collect::refresh(&app.db.pool, 100)
        .await
        .unwrap();
    b.goto(&cp("/")).await;
    b.wait_for_text("Usage at a glance").await;
    assert!(b.exists("svg.chart-svg[role='img'][aria-label]").await);
    assert!(b.exists("[data-chart-table='chart-busiest']").await);
    b.check_page("cp-dashboard").await;
    // The charts take their colours from the theme's custom properties:
    // in the dark theme too they read (and axe finds nothing).
    b.js("document.documentElement.dataset.theme = 'dark';")
        .await;
    assert_eq!(
        b.style(".chart-svg rect.chart-s1", "fill").await,
        rgb("#a5b4fc")
    );
    b.check_page("cp-dashboard-dark").await;
    b.goto(&cp("/tenants/acme")).await;
    b.wait_for_text("Requests, last 7 days").await;
    assert!(b.exists("[data-chart='chart-tenant-requests']").await);
    b.check_page_at("cp-tenant-usage", Some("#usage-h")).await;
    b.goto(&cp("/?sort=size&dir=desc")).await;
    b.wait_for_text("Globex Corporation").await;
    b.check_page_at("cp-tenants-sorted", Some("#tenant-list"))
        .await;
    assert_eq!(
        b.js("return document.querySelector('th[aria-sort]').textContent.trim();")
            .await,
        "Size▼"
    );

    // The nodes page, through the nav: one plain PostgreSQL node.
    b.click_text("Nodes").await;
    b.wait_for_text("single PostgreSQL node").await;
    assert_eq!(b.path().await, "/nodes");
    b.check_page("cp-nodes").await;
}

async fn tenant_admin_works_on_the_board(app: &TestApp, b: &Browser) {
    let acme = |path: &str| app.url("acme.localhost", path);
    eventually(b, &acme("/login"), "Sign in to Acme Inc").await;

    // Branded: the header is the tenant's colour, with its logo.
    assert_eq!(
        b.style(".topbar", "background-color").await,
        rgb(ACME_PRIMARY)
    );
    assert_logo_shown(b, ".brand-logo").await;
    assert_logo_shown(b, ".login-logo").await;
    b.check_page("tenant-login").await;

    // Keyboard only: the email field has focus, Tab moves to the password
    // with a visible focus ring, Enter submits.
    b.fill("#email", "admin@acme.test").await;
    let (id, outline) = b.tab_and_focus_outline().await;
    assert_eq!(id, "password");
    assert!(
        outline.starts_with("solid") && !outline.ends_with(" 0px"),
        "focus is not visible: {outline}"
    );
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(&format!("{PASSWORD}{}", fantoccini::key::Key::Enter))
        .await
        .unwrap();
    b.wait_for_text("Welcome back.").await;
    assert_eq!(b.path().await, "/");
    assert_eq!(
        b.style(".topbar", "background-color").await,
        rgb(ACME_PRIMARY)
    );
    assert_logo_shown(b, ".brand-logo").await;
    assert_eq!(
        b.js("return document.getElementById('column-todo').textContent;")
            .await,
        "To do"
    );
    b.check_page("board-empty").await;

    // Create tasks.
    for (title, description, status) in [
        (
            "Draft the launch announcement",
            "Two paragraphs and a screenshot of the board.",
            "todo",
        ),
        ("Book the venue", "", "todo"),
        (
            "Review the pricing page",
            "Check the annual plan discount.",
            "doing",
        ),
        ("Set up the support inbox", "", "done"),
        ("Order stickers", "", "todo"),
    ] {
        open_new_task(b).await;
        b.fill("#title", title).await;
        b.fill("#description", description).await;
        b.select("#status", status).await;
        b.click_text("Add task").await;
        // The previous page said "Task created." too: wait for the card.
        b.wait_for_text_in(&format!(".column-{status}"), title)
            .await;
        assert!(b.flash().await.contains("Task created."));
    }

    // Edit one.
    b.client
        .find(Locator::LinkText("Book the venue"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for_text("Edit task").await;
    b.fill("#title", "Book the venue for the launch party")
        .await;
    b.find("#assignee_id")
        .await
        .select_by_index(1)
        .await
        .unwrap();
    b.click_text("Save changes").await;
    b.wait_for_text("Task saved.").await;
    assert!(
        b.text(".column-todo")
            .await
            .contains("Book the venue for the launch party")
    );

    // Move one along.
    card_button(b, "Draft the launch announcement", "Start").await;
    b.wait_for_text("Moved to Doing.").await;
    assert!(
        b.text(".column-doing")
            .await
            .contains("Draft the launch announcement")
    );
    assert!(
        !b.text(".column-todo")
            .await
            .contains("Draft the launch announcement")
    );

    // Delete one, after the confirmation page.
    card_button(b, "Order stickers", "Delete").await;
    b.wait_for_text("Delete this task?").await;
    b.check_page("task-delete").await;
    b.click_text("Delete task").await;
    b.wait_for_text("Task deleted.").await;
    assert!(!b.body().await.contains("Order stickers"));

    // Create a member.
    b.click_text("Users").await;
    b.wait_for_text("Add a user").await;
    b.fill("#email", "mia@acme.test").await;
    b.fill("#display_name", "Mia Member").await;
    b.fill("#password", PASSWORD).await;
    b.select("#role", "member").await;
    b.click_text("Add user").await;
    b.wait_for_text("Mia Member can now sign in.").await;
    assert!(b.text("table").await.contains("mia@acme.test"));
    b.check_page("users").await;

    // The board with work on it, and a page that does not exist.
    b.goto(&acme("/")).await;
    b.wait_for_text("Review the pricing page").await;
    b.check_page("board").await;
    b.click_text("Book the venue for the launch party").await;
    b.wait_for_text("Edit task").await;
    b.check_page("task-edit").await;
    b.goto(&acme("/account")).await;
    b.wait_for_text("Change your password").await;
    b.check_page("account").await;
    b.goto(&acme("/no/such/page")).await;
    b.wait_for_text("404").await;
    assert_eq!(
        b.style(".topbar", "background-color").await,
        rgb(ACME_PRIMARY)
    );
    b.check_page("404").await;
}

async fn member_sees_the_board_but_not_admin_pages(app: &TestApp, b: &Browser) {
    let acme = |path: &str| app.url("acme.localhost", path);
    b.goto(&acme("/")).await;
    // A separate session: not signed in.
    assert_eq!(b.path().await, "/login");
    sign_in(b, "mia@acme.test", "Welcome back.").await;
    let board = b.body().await;
    assert!(board.contains("Review the pricing page"), "{board}");
    assert!(board.contains("Mia Member"));
    assert!(!b.exists("a[href='/admin/users']").await);
    b.goto(&acme("/admin/users")).await;
    b.wait_for_text("403").await;
    assert!(!b.body().await.contains("mia@acme.test"));
    b.check_page("403").await;
}

async fn second_tenant_shows_only_its_own(app: &TestApp, b: &Browser) {
    sqlx::query(
        "UPDATE tenants SET primary_color = $1, accent_color = '#38bdf8', theme = 'dark', \
         branding_version = branding_version + 1 WHERE slug = 'globex'",
    )
    .bind(GLOBEX_PRIMARY)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let globex = |path: &str| app.url("globex.localhost", path);

    // The registry catches up within a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        b.goto(&globex("/login")).await;
        if b.style(".topbar", "background-color").await == rgb(GLOBEX_PRIMARY) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "globex's colour never arrived"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        b.js("return document.documentElement.dataset.theme;").await,
        "dark"
    );
    // The readable text colour on a light primary is the dark one.
    assert_eq!(b.style(".brand-name", "color").await, rgb("#111827"));
    assert!(!b.exists(".brand-logo").await, "globex has no logo");
    assert_eq!(b.text(".brand-mark").await, "GC");
    let login = b.body().await;
    assert!(login.contains("Sign in to Globex Corporation"));
    assert!(!login.contains("Acme"), "{login}");
    b.check_page("tenant-login-dark").await;

    sign_in(b, "admin@globex.test", "Welcome back.").await;
    let board = b.body().await;
    assert!(board.contains("0 tasks in Globex Corporation"), "{board}");
    for acme_data in ["Acme", "pricing page", "Mia Member", "launch"] {
        assert!(!board.contains(acme_data), "globex shows {acme_data:?}");
    }
    open_new_task(b).await;
    b.fill("#title", "Quarterly planning").await;
    b.fill("#description", "Agenda and owners for Q3.").await;
    b.select("#status", "doing").await;
    b.click_text("Add task").await;
    b.wait_for_text("Task created.").await;
    b.check_page("board-dark").await;

    // Acme's board in the same browser is untouched and still its own.
    b.goto(&app.url("acme.localhost", "/")).await;
    b.wait_for_text("Review the pricing page").await;
    assert!(!b.body().await.contains("Quarterly planning"));
    assert_eq!(
        b.style(".topbar", "background-color").await,
        rgb(ACME_PRIMARY)
    );
}

/// The super-admin opens acme as Mia from its page in the panel: every page
/// of that session carries the banner; "End" closes it; acme's admin then
/// sees the visit on the workspace's audit page.
async fn operator_views_a_workspace_as_a_member(app: &TestApp, b: &Browser) {
    let mia: i64 = sqlx::query_scalar("SELECT id FROM t_acme.users WHERE email = 'mia@acme.test'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    b.goto(&app.url("localhost", "/tenants/acme")).await;
    b.wait_for_text("Open the workspace as a user").await;
    b.select("#impersonate_user", &mia.to_string()).await;
    b.click_text("Open as this user").await;
    b.wait_for_text("Viewing as").await;
    assert_eq!(b.path().await, "/");
    let banner = b.text(".impersonation-banner").await;
    assert!(
        banner.contains("Viewing as Mia Member")
            && banner.contains("signed in by root@tenantry.test from the control panel"),
        "{banner}"
    );
    assert!(b.body().await.contains("Review the pricing page"));
    b.check_page("impersonation-banner").await;
    b.goto(&app.url("acme.localhost", "/account")).await;
    b.wait_for_text("The password cannot be changed").await;
    assert!(b.exists(".impersonation-banner").await);

    b.click_text("End").await;
    b.wait_for_text("no longer viewing the workspace as Mia Member")
        .await;
    assert_eq!(b.path().await, "/login");
    assert!(!b.exists(".impersonation-banner").await);

    sign_in(b, "admin@acme.test", "Welcome back.").await;
    b.click_text("Audit").await;
    b.wait_for_text("Operator access").await;
    assert_eq!(b.path().await, "/audit");
    let table = b.text("table").await;
    assert!(
        table.contains("root@tenantry.test")
            && table.contains("Mia Member")
            && table.contains("Ended from the banner"),
        "{table}"
    );
    b.check_page("tenant-audit").await;
}

/// Signs in on the login page shown as `email` with [`PASSWORD`], and
/// waits for `landing` on the page it leads to.
/// Four weeks of made-up requests and tenant events (the flush adds
/// today's real ones), for the dashboard's photograph.
async fn seed_usage_history(db: &TestDb) {
    db.exec(
        "INSERT INTO usage_site_daily (site, day, requests)
         SELECT 'tenant', (now() AT TIME ZONE 'UTC')::date - d,
                (900 + 400 * sin(d / 2.0) + 25 * (30 - d))::bigint
           FROM generate_series(1, 29) AS d
         UNION ALL
         SELECT 'control_panel', (now() AT TIME ZONE 'UTC')::date - d,
                (60 + 30 * cos(d / 3.0))::bigint
           FROM generate_series(1, 29) AS d;
         INSERT INTO usage_daily (tenant_id, day, requests, last_activity)
         SELECT t.id, (now() AT TIME ZONE 'UTC')::date - d,
                CASE t.slug WHEN 'acme' THEN 640 ELSE 310 END + 20 * d, now() - interval '1 day' * d
           FROM tenants t, generate_series(1, 6) AS d;
         INSERT INTO tenant_events (at, slug, event)
         SELECT now() - interval '1 week' * w - interval '1 hour' * n,
                'old-' || w || '-' || n, e
           FROM generate_series(1, 11) AS w, generate_series(1, 3) AS n,
                LATERAL (VALUES ('created'), (CASE WHEN n = 1 AND w % 3 = 0 THEN 'suspended' END),
                                (CASE WHEN n = 2 AND w % 4 = 1 THEN 'deleted' END)) AS x (e)
          WHERE e IS NOT NULL AND (n <= 1 + w % 3);",
    )
    .await;
}

async fn sign_in(b: &Browser, email: &str, landing: &str) {
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.click_text("Sign in").await;
    b.wait_for_text(landing).await;
}

/// Loads `url` until its page says `text` (changes reach the registry
/// within a second).
async fn eventually(b: &Browser, url: &str, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        b.goto(url).await;
        if b.body().await.contains(text) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} never said {text:?}:\n{}",
            b.body().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn assert_logo_shown(b: &Browser, css: &str) {
    let script = format!(
        "const img = document.querySelector({}); \
         return img && img.complete && img.naturalWidth > 0 && img.getBoundingClientRect().width > 0;",
        serde_json::json!(css)
    );
    for _ in 0..50 {
        if b.js(&script).await == serde_json::json!(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the logo {css} is not shown on {}", b.path().await);
}

/// Opens the board's "New task" disclosure (closed once there are tasks),
/// as a person would: by its summary.
async fn open_new_task(b: &Browser) {
    if b.js("return document.querySelector('details.new-task').open;")
        .await
        != serde_json::json!(true)
    {
        b.find("details.new-task > summary")
            .await
            .click()
            .await
            .unwrap();
    }
    assert!(b.find("#title").await.is_displayed().await.unwrap());
}

/// Clicks the button or link `label` on the board card titled `title`.
async fn card_button(b: &Browser, title: &str, label: &str) {
    let xpath = format!(
        "//li[contains(@class,'task-card')][.//a[normalize-space(.)='{title}']]\
         //*[self::button or self::a][normalize-space(.)='{label}']"
    );
    b.client
        .find(Locator::XPath(&xpath))
        .await
        .unwrap_or_else(|e| panic!("no {label:?} on the card {title:?}: {e}"))
        .click()
        .await
        .unwrap();
}
