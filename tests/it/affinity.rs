//! Tenant-affine connections: a tenant's transactions come back to the
//! same backend, one tenant's burst spreads over all of them, and the pin
//! to the schema holds on every one.

use std::time::Duration;

use tenantry::tenancy::{TenantDb, TenantPool, TenantRegistry};

use crate::harness::{ROOT, TestDb};

async fn registry_of(db: &TestDb, tenants: usize) -> std::sync::Arc<TenantRegistry> {
    for n in 0..tenants {
        db.create_tenant(&format!("ten-{n}")).await;
    }
    TenantRegistry::start(db.pool_of(2), &db.url, ROOT, tenantry::branding::PROFILE)
        .await
        .unwrap()
}

/// The backend and the schema a transaction of `slug` runs on.
async fn backend_of(pool: &TenantPool, registry: &TenantRegistry, slug: &str) -> (i32, String) {
    let mut db = TenantDb::begin(pool, registry.by_slug(slug).unwrap())
        .await
        .unwrap();
    db.query_as("SELECT pg_backend_pid(), current_schema()::text")
        .fetch_one(db.conn())
        .await
        .unwrap()
}

#[tokio::test]
async fn each_tenant_comes_back_to_its_own_connection() {
    let db = TestDb::new().await;
    let registry = registry_of(&db, 12).await;
    let pool = TenantPool::beside(&db.pool_of(4), 4);
    let mut homes = std::collections::HashSet::new();
    for n in 0..12 {
        let slug = format!("ten-{n}");
        let (home, schema) = backend_of(&pool, &registry, &slug).await;
        assert_eq!(schema, format!("t_{}", slug.replace('-', "_")));
        for _ in 0..5 {
            assert_eq!(
                backend_of(&pool, &registry, &slug).await,
                (home, schema.clone())
            );
        }
        homes.insert(home);
    }
    assert!(
        homes.len() > 1,
        "twelve tenants share out over the connections"
    );
    assert!(homes.len() <= 4);
}

#[tokio::test]
async fn one_tenants_burst_spreads_over_every_connection() {
    let db = TestDb::new().await;
    let registry = registry_of(&db, 2).await;
    let pool = TenantPool::beside(&db.pool_of(4), 4);
    let tenant = registry.by_slug("ten-0").unwrap();
    let mut held = Vec::new();
    let mut pids = std::collections::HashSet::new();
    for _ in 0..4 {
        let mut tx = TenantDb::begin(&pool, tenant.clone()).await.unwrap();
        let pid: i32 = tx
            .query_scalar("SELECT pg_backend_pid()")
            .fetch_one(tx.conn())
            .await
            .unwrap();
        pids.insert(pid);
        held.push(tx);
    }
    assert_eq!(pids.len(), 4, "four transactions at once, four connections");

    // A fifth waits for one of them rather than failing, and gets its
    // tenant's schema whichever connection it lands on.
    let fifth = tokio::spawn({
        let (pool, tenant) = (pool.clone(), tenant.clone());
        async move {
            let mut tx = TenantDb::begin(&pool, tenant).await.unwrap();
            let schema: String = tx
                .query_scalar("SELECT current_schema()::text")
                .fetch_one(tx.conn())
                .await
                .unwrap();
            schema
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!fifth.is_finished(), "every connection is taken");
    held.clear();
    assert_eq!(fifth.await.unwrap(), "t_ten_0");

    // The other tenant, on connections t0 used, sees only its own schema.
    for _ in 0..8 {
        let (_, schema) = backend_of(&pool, &registry, "ten-1").await;
        assert_eq!(schema, "t_ten_1");
    }
}
