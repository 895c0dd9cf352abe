//! Issue 5, part 1: the isolation battery against the app connected
//! directly to PostgreSQL, with a pool far smaller than the concurrency.

use crate::battery::{self, Spec};
use crate::harness::{AppOptions, TestApp, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_mixed_requests_across_100_tenants_never_leak() {
    let spec = Spec {
        tenants: std::env::var("BATTERY_TENANTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100),
        users_per_tenant: 2,
        requests: std::env::var("BATTERY_REQUESTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000),
        concurrency: 64,
        seed: 0x7e57_5eed,
    };
    let db = TestDb::new().await;
    battery::provision(&db, &spec).await;
    // Four connections for 64 concurrent clients: every connection serves
    // every tenant in turn, all the time.
    let options = AppOptions {
        pool_size: 4,
        ..AppOptions::default()
    };
    let app = TestApp::start_opts(db, options).await;
    let report = battery::run(&app.db, &[app.addr.port()], spec).await;
    battery::assert_clean(&report, &spec);
}
