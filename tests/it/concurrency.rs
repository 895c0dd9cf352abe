//! Issue 5, part 1: the isolation battery against the app connected
//! directly to PostgreSQL, with a pool far smaller than the concurrency;
//! and (issue 12) the same while tenants come and go.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;

use crate::battery::{self, Spec};
use crate::harness::{PASSWORD, Sent, TestApp, TestDb, csrf_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_mixed_requests_across_100_tenants_never_leak() {
    let spec = Spec::full(battery::env_or("BATTERY_TENANTS", 100), 0x7e57_5eed);
    let db = TestDb::new().await;
    battery::provision(&db, &spec).await;
    // Four connections for 64 concurrent clients: every connection serves
    // every tenant in turn, all the time.
    let app = TestApp::builder(db).pool_size(4).start().await;
    let report = battery::run(&app.db, &[app.addr.port()], spec).await;
    battery::assert_clean(&report, &spec);
}

/// Issue 12: the battery again, while other tenants are created, signed
/// into, suspended, reactivated and deleted through the control panel
/// (their users loading pages throughout). No answer anywhere may be a
/// 5xx, and no page may show another tenant's marker: the churned tenants
/// are named `qx9NN`, so the battery's own scan would catch them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_battery_holds_while_tenants_come_and_go() {
    let spec = Spec {
        tenants: 40,
        users_per_tenant: 2,
        requests: 6_000,
        concurrency: 32,
        seed: 0xc4_0a5e,
    };
    let db = TestDb::new().await;
    battery::provision(&db, &spec).await;
    db.create_super_admin("root@panel.test").await;
    let app = Arc::new(TestApp::builder(db).pool_size(4).start().await);
    let stop = Arc::new(AtomicBool::new(false));
    let churn = tokio::spawn(churn(app.clone(), stop.clone()));

    let report = battery::run(&app.db, &[app.addr.port()], spec).await;
    stop.store(true, Ordering::Relaxed);
    let (cycles, failures) = churn.await.unwrap();
    battery::assert_clean(&report, &spec);
    assert!(
        failures.is_empty(),
        "churn failures:\n{}",
        failures.join("\n")
    );
    assert!(cycles >= 3, "only {cycles} tenants came and went");
}

/// Tenants `qx900`, `qx901`… each created, used, suspended, reactivated and
/// deleted while its user keeps loading pages. Returns the cycles run and
/// what went wrong.
async fn churn(app: Arc<TestApp>, stop: Arc<AtomicBool>) -> (usize, Vec<String>) {
    let mut failures = Vec::new();
    let operator = app.super_admin("root@panel.test").await;
    let cp_token = csrf_for(&operator, &app.url("localhost", "/tenants/new")).await;
    let mut cycles = 0;
    while !stop.load(Ordering::Relaxed) && cycles < 100 {
        let slug = format!("qx9{cycles:02}");
        let host = format!("{slug}.localhost");
        app.db
            .create_tenant_named(&slug, &format!("Tenant {slug}"))
            .await;
        app.wait_for_host(&host).await;

        // Its admin signs in and keeps loading pages in the background.
        let user = app.client();
        let response = app
            .sign_in(&user, &host, &format!("admin@{slug}.test"))
            .await;
        if response.status() != StatusCode::SEE_OTHER {
            failures.push(format!("{slug}: sign-in answered {}", response.status()));
        }
        let busy = Arc::new(AtomicBool::new(true));
        let loads = {
            let (app, busy, slug, host) = (app.clone(), busy.clone(), slug.clone(), host.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while busy.load(Ordering::Relaxed) {
                    for path in ["/", "/account", "/theme.css"] {
                        let Ok(response) = user.get(app.url(&host, path)).send().await else {
                            seen.push(format!("{slug}{path}: no answer"));
                            continue;
                        };
                        let status = response.status();
                        let body = response.text().await.unwrap_or_default();
                        if status.is_server_error()
                            || ![200, 303, 403, 404].contains(&status.as_u16())
                        {
                            seen.push(format!("{slug}{path}: {status}"));
                        }
                        let foreign = battery::foreign_markers(&body, &slug);
                        if !foreign.is_empty() {
                            seen.push(format!("{slug}{path}: shows {foreign:?}"));
                        }
                    }
                }
                seen
            })
        };

        tokio::time::sleep(Duration::from_millis(150)).await;
        for (action, form) in [
            ("suspend", vec![]),
            ("reactivate", vec![]),
            ("delete", vec![("confirm_slug", slug.as_str())]),
        ] {
            let mut fields = vec![("csrf_token", cp_token.as_str())];
            fields.extend(form);
            let response = app
                .post(
                    &operator,
                    "localhost",
                    &format!("/tenants/{slug}/{action}"),
                    &fields,
                )
                .await;
            if response.status() != StatusCode::SEE_OTHER {
                failures.push(format!("{slug}: {action} answered {}", response.status()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        busy.store(false, Ordering::Relaxed);
        failures.extend(loads.await.unwrap());
        cycles += 1;
    }
    (cycles, failures)
}

/// Issue 9, part 3: no connection is held while a password is hashed. With
/// a pool of two, twenty super-admins signing in at once must not hold up
/// a signed-in member's board: it answers within a second. (The control
/// panel's sign-in used to keep its transaction open through argon2 and
/// open a second one before closing it: two of them took the whole pool
/// and waited for a third connection.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sign_ins_does_not_starve_other_requests() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    for i in 0..20 {
        db.create_super_admin(&format!("root{i}@panel.test")).await;
    }
    let app = TestApp::builder(db).pool_size(2).trust_proxy(true);
    let app = Arc::new(app.start().await);

    let member = app.signed_in("acme.localhost", "admin@acme.test").await;

    // Each super-admin's browser has its CSRF token before the burst.
    let mut browsers = Vec::new();
    for i in 0..20 {
        let client = app.client();
        let token = csrf_for(&client, &app.url("localhost", "/login")).await;
        browsers.push((i, client, token));
    }
    let mut burst = tokio::task::JoinSet::new();
    for (i, client, token) in browsers {
        let app = app.clone();
        burst.spawn(async move {
            client
                .post(app.url("localhost", "/login"))
                .header("x-forwarded-for", format!("198.51.100.{}", i + 1))
                .form(&[
                    ("email", format!("root{i}@panel.test").as_str()),
                    ("password", PASSWORD),
                    ("csrf_token", &token),
                ])
                .timeout(Duration::from_secs(60))
                .send()
                .await
                .map(|r| r.status())
        });
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let started = std::time::Instant::now();
    let board = member
        .get(app.url("acme.localhost", "/"))
        .timeout(Duration::from_secs(30))
        .sent()
        .await;
    let waited = started.elapsed();
    assert_eq!(board.status(), StatusCode::OK);
    while let Some(status) = burst.join_next().await {
        assert_eq!(status.unwrap().unwrap(), StatusCode::SEE_OTHER);
    }
    assert!(
        waited < Duration::from_secs(1),
        "the board waited {waited:?} behind the sign-ins"
    );
}
