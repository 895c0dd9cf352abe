//! Rolling a new tenant migration out over many tenants.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use tenantry::tenancy::migrate::{self, TENANT_MIGRATIONS};

use crate::harness::TestDb;

fn with_new_migration() -> Migrator {
    let mut migrations: Vec<Migration> = TENANT_MIGRATIONS.iter().cloned().collect();
    migrations.push(Migration::new(
        90_000,
        Cow::Borrowed("add task priority"),
        MigrationType::Simple,
        sqlx::AssertSqlSafe("ALTER TABLE tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;")
            .into_sql_str(),
        false,
    ));
    Migrator::with_migrations(migrations)
}

#[tokio::test]
async fn new_migration_over_fifty_tenants_with_one_failure() {
    let db = TestDb::new().await;
    for i in 0..50 {
        db.create_tenant(&format!("tenant-{i:02}")).await;
    }
    // Tenant 7 already has the column: its migration fails, the others go on.
    sqlx::raw_sql("ALTER TABLE t_tenant_07.tasks ADD COLUMN priority integer")
        .execute(&db.pool)
        .await
        .unwrap();

    let migrator = with_new_migration();
    let pool = db.pool_of(4);
    let mut reported = Vec::new();
    let summary = migrate::rollout(&pool, &migrator, 4, false, |schema, outcome| {
        reported.push((schema.to_owned(), format!("{outcome:?}")));
    })
    .await
    .unwrap();
    assert_eq!(summary.migrated, 49, "{summary:?}");
    assert_eq!(summary.failed.len(), 1, "{summary:?}");
    assert_eq!(summary.failed[0].0, "t_tenant_07");
    assert!(
        summary.failed[0].1.contains("add task priority"),
        "{summary:?}"
    );
    assert_eq!(reported.len(), 50, "one report per tenant");

    assert_eq!(
        db.count("SELECT count(*) FROM tenants WHERE schema_version = 90000")
            .await,
        49
    );
    assert_eq!(
        db.count("SELECT count(*) FROM t_tenant_12._sqlx_migrations WHERE version = 90000")
            .await,
        1
    );
    // The failed tenant was left exactly as it was.
    assert_eq!(
        db.count("SELECT count(*) FROM t_tenant_07._sqlx_migrations WHERE version = 90000")
            .await,
        0
    );

    // Fix the tenant and rerun: only it is visited.
    sqlx::raw_sql("ALTER TABLE t_tenant_07.tasks DROP COLUMN priority")
        .execute(&db.pool)
        .await
        .unwrap();
    let summary = migrate::rollout(&pool, &migrator, 4, false, |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (summary.migrated, summary.skipped, summary.failed.len()),
        (1, 49, 0)
    );

    // A rerun is a no-op, and so is a full verification of every ledger.
    let summary = migrate::rollout(&pool, &migrator, 4, false, |_, _| {})
        .await
        .unwrap();
    assert_eq!((summary.migrated, summary.skipped), (0, 50));
    let summary = migrate::rollout(&pool, &migrator, 4, true, |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (summary.migrated, summary.current, summary.failed.len()),
        (0, 50, 0)
    );
}

#[tokio::test]
async fn a_changed_migration_file_is_reported_not_applied() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    let mut migrations: Vec<Migration> = TENANT_MIGRATIONS.iter().cloned().collect();
    let first = migrations[0].clone();
    migrations[0] = Migration::new(
        first.version,
        first.description.clone(),
        first.migration_type,
        sqlx::AssertSqlSafe("SELECT 'edited after release';").into_sql_str(),
        false,
    );
    let summary = migrate::rollout(
        &db.pool,
        &Migrator::with_migrations(migrations),
        2,
        true,
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.failed.len(), 1);
    assert!(summary.failed[0].1.contains("checksum"), "{summary:?}");
}
