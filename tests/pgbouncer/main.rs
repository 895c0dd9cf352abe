//! The app behind PgBouncer in transaction pooling mode. A test binary of its
//! own: it switches the process to unnamed statements, as an operator would.
//! Without `pgbouncer` on the machine its tests are reported as ignored
//! (failed under `CI`): see `tests/common/suite.rs`.

#[path = "../it/harness.rs"]
mod harness;

#[path = "../it/battery.rs"]
mod battery;
mod bouncer;
#[path = "../common/suite.rs"]
mod suite;

use std::process::ExitCode;
use std::time::Duration;

use tenantry::tenancy::TenantRegistry;

use crate::bouncer::PgBouncer;
use reqwest::StatusCode;
use reqwest::multipart::Form;

use crate::battery::Spec;
use crate::harness::{ROOT, Sent, TestApp, TestDb};
use crate::suite::{Runtime, Suite};

fn main() -> ExitCode {
    let mut suite = Suite::new(bouncer::missing());
    suite::add!(
        suite,
        Runtime::CurrentThread,
        provisioning_and_tenant_queries_work_through_pgbouncer
    );
    let multi = Runtime::MultiThread { worker_threads: 2 };
    suite::add!(
        suite,
        multi,
        isolation_battery_through_pgbouncer_with_two_instances,
        the_panel_pages_answer_through_pgbouncer_under_load
    );
    suite.run()
}

async fn provisioning_and_tenant_queries_work_through_pgbouncer() {
    tenantry::tenancy::db::use_prepared_statements(false);
    let db = TestDb::new().await;
    let bouncer = PgBouncer::start(&db.url);
    let pooled = tenantry::database::pool(&bouncer.url_for(&db.url), 4).unwrap();
    let registry =
        TenantRegistry::start(pooled.clone(), &db.url, ROOT, tenantry::branding::PROFILE)
            .await
            .unwrap();

    // Provisioning through the pooler (as the control panel does).
    let through = TestDb {
        url: bouncer.url_for(&db.url),
        pool: pooled.clone(),
    };
    through.create_tenant("acme").await;
    through.create_tenant("globex").await;
    for _ in 0..100 {
        if registry.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(registry.len(), 2);
    assert!(db.schema_exists("t_acme").await && db.schema_exists("t_globex").await);
    drop(bouncer);
}

/// Issue 5, part 2: the isolation battery with two app instances sharing
/// one transaction-mode PgBouncer (4 server connections for both), each
/// request sent to either instance at random; then a branding change made
/// through one instance is served by the other within a second (its
/// registry LISTENs on the direct connection).
async fn isolation_battery_through_pgbouncer_with_two_instances() {
    let _ = tracing_subscriber::fmt().with_env_filter("warn").try_init();
    tenantry::tenancy::db::use_prepared_statements(false);
    let spec = Spec::full(100, 0xb0_0c3e);
    let db = TestDb::new().await;
    battery::provision(&db, &spec).await;
    db.create_super_admin("root@panel.test").await;
    let bouncer = PgBouncer::start(&db.url);
    let through = bouncer.url_for(&db.url);
    let instance = || {
        TestApp::builder(db.clone())
            .pool_size(4)
            .database_url(through.clone())
            .start()
    };
    let (one, two) = (instance().await, instance().await);

    let report = battery::run(&db, &[one.addr.port(), two.addr.port()], spec).await;
    battery::assert_clean(&report, &spec);

    // Rebrand a tenant through instance one's control panel...
    let panel = one.super_admin("root@panel.test").await;
    let token = one.csrf(&panel, ROOT, "/").await;
    let form = Form::new()
        .text("csrf_token", token)
        .text("display_name", "Rebranded Seven")
        .text("primary_color", "#123456")
        .text("accent_color", "#0ea5e9")
        .text("theme", "dark");
    let host = format!("{}.{ROOT}", battery::slug(7));
    let browser = two.client();
    let response = panel
        .post(one.url(ROOT, &format!("/tenants/{}/branding", battery::slug(7))))
        .multipart(form)
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // ...and instance two serves it within a second.
    let seen = battery::within(Duration::from_secs(1), async || {
        let page = two.get(&browser, &host, "/login").await;
        let css = two.get(&browser, &host, "/theme.css").await;
        page.text().await.unwrap().contains("Rebranded Seven")
            && css.text().await.unwrap().contains("#123456")
    })
    .await;
    assert!(
        seen.is_some(),
        "instance two did not serve the new branding within 1 s"
    );
    drop(bouncer);
}

/// The control panel's pages that read the node and usage figures (the
/// home page's dashboard, a tenant's placement, the nodes page), requested
/// side by side through the pooler without prepared statements: every one
/// answers 200. A statement sent outside a transaction can be parsed on one
/// server connection and executed on another ("unnamed prepared statement
/// does not exist"), which is why each of those reads runs in a transaction.
async fn the_panel_pages_answer_through_pgbouncer_under_load() {
    tenantry::tenancy::db::use_prepared_statements(false);
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    db.create_super_admin("root@panel.test").await;
    let bouncer = PgBouncer::start(&db.url);
    let app = TestApp::builder(db.clone())
        .pool_size(4)
        .database_url(bouncer.url_for(&db.url))
        .start()
        .await;
    let panel = app.super_admin("root@panel.test").await;
    let pages = ["/", "/tenants/acme", "/nodes"];
    let requests = (0..60).map(|i| {
        let (app, panel) = (&app, panel.clone());
        async move {
            let path = pages[i % pages.len()];
            (path, app.get(&panel, ROOT, path).await.status())
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let failed: Vec<_> = answers
        .iter()
        .filter(|(_, status)| *status != StatusCode::OK)
        .collect();
    assert!(failed.is_empty(), "through PgBouncer: {failed:?}");
}
