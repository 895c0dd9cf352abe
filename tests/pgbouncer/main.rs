//! The app behind PgBouncer in transaction pooling mode. A test binary of its
//! own: it switches the process to unnamed statements, as an operator would.

#[path = "../it/harness.rs"]
mod harness;

mod bouncer;

use std::time::Duration;

use tenantry::tenancy::TenantRegistry;

use crate::bouncer::PgBouncer;
use crate::harness::{ROOT, TestDb};

#[tokio::test]
async fn provisioning_and_tenant_queries_work_through_pgbouncer() {
    if !bouncer::available() {
        return;
    }
    tenantry::tenancy::db::use_prepared_statements(false);
    let db = TestDb::new().await;
    let bouncer = PgBouncer::start(&db.url);
    let pooled = tenantry::database::pool(&bouncer.url_for(&db.url), 4).unwrap();
    let registry = TenantRegistry::start(pooled.clone(), &db.url, ROOT)
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
