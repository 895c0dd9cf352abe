//! The registry follows the catalogue through LISTEN/NOTIFY.

use std::time::{Duration, Instant};

use tenantry::tenancy::{Site, TenantRegistry};

use crate::harness::{ROOT, TestDb};

async fn wait_until(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what} not seen within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

fn name_of(registry: &TenantRegistry, host: &str) -> Option<String> {
    match registry.resolve(host) {
        Some(Site::Tenant(t)) => Some(tenantry::branding::of(&t).display_name.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn changes_reach_a_second_instance_within_a_second() {
    let db = TestDb::new().await;
    // Two instances: each with its own pool and its own LISTEN connection.
    let first = TenantRegistry::start(db.pool_of(2), &db.url, ROOT, tenantry::branding::PROFILE)
        .await
        .unwrap();
    let second = TenantRegistry::start(db.pool_of(2), &db.url, ROOT, tenantry::branding::PROFILE)
        .await
        .unwrap();
    assert!(second.is_empty());

    db.create_tenant_named("acme", "Acme Inc").await;
    wait_until("new tenant", || {
        name_of(&second, "acme.localhost").is_some()
    })
    .await;
    wait_until("new tenant on first", || {
        name_of(&first, "acme.localhost").is_some()
    })
    .await;

    db.exec(
        "UPDATE tenants SET display_name = 'Acme Renamed', branding_version = branding_version + 1",
    )
    .await;
    wait_until("rename", || {
        name_of(&second, "acme.localhost").as_deref() == Some("Acme Renamed")
    })
    .await;

    db.exec(
        "INSERT INTO tenant_domains (domain, tenant_id) SELECT 'tasks.acme.com', id FROM tenants",
    )
    .await;
    wait_until("new domain", || {
        name_of(&second, "tasks.acme.com").is_some()
    })
    .await;

    db.exec("DELETE FROM tenant_domains WHERE domain = 'tasks.acme.com'")
        .await;
    wait_until("removed domain", || {
        name_of(&second, "tasks.acme.com").is_none()
    })
    .await;

    tenantry::tenancy::provision::delete(&db.pool, "acme")
        .await
        .unwrap();
    wait_until("deleted tenant", || {
        second.resolve("acme.localhost").is_none()
    })
    .await;
    assert!(matches!(second.resolve(ROOT), Some(Site::ControlPanel)));
}

#[tokio::test]
async fn a_rolled_back_change_is_not_seen() {
    let db = TestDb::new().await;
    db.create_tenant_named("acme", "Acme Inc").await;
    let registry = TenantRegistry::start(db.pool_of(2), &db.url, ROOT, tenantry::branding::PROFILE)
        .await
        .unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("UPDATE tenants SET display_name = 'Never'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        name_of(&registry, "acme.localhost").as_deref(),
        Some("Acme Inc")
    );
}
