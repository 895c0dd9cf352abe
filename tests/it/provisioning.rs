//! Provisioning is one transaction; bad slugs never reach the database.

use sqlx::migrate::Migrator;
use tenantry::branding::Color;
use tenantry::database::TENANT_MIGRATIONS;
use tenantry::onboarding::NewTenant;
use tenantry::tenancy::Slug;
use tenantry::tenancy::provision::{self, ProvisionError};

use crate::harness::{PASSWORD, ROOT, TestDb, cli, migrator_with};

/// The real tenant migrations followed by one that fails.
fn failing_migrator() -> Migrator {
    migrator_with(
        99_999,
        "fails on purpose",
        "CREATE TABLE extra (id int); SELECT 1 / 0;",
    )
}

fn new_tenant(slug: &str) -> NewTenant {
    NewTenant {
        slug: Slug::parse(slug).unwrap(),
        display_name: "Doomed Ltd".into(),
        primary_color: Color::parse("#123456").unwrap(),
        accent_color: Color::parse("#654321").unwrap(),
    }
}

/// Begins provisioning `slug` (see [`new_tenant`]) with `migrator`.
async fn begin(
    db: &TestDb,
    slug: &str,
    migrator: &Migrator,
) -> Result<provision::Provisioning, ProvisionError> {
    provision::begin(&db.pool, &new_tenant(slug).catalogue(), ROOT, migrator).await
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_behind() {
    let db = TestDb::new().await;
    let result = begin(&db, "doomed", &failing_migrator()).await;
    let err = result.err().expect("provisioning must fail");
    assert!(matches!(err, ProvisionError::Migrate(_)), "{err}");
    assert!(err.to_string().contains("fails on purpose"), "{err}");

    assert_eq!(db.count("SELECT count(*) FROM tenants").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM tenant_domains").await, 0);
    assert!(!db.schema_exists("t_doomed").await);

    // The same slug then provisions cleanly.
    db.create_tenant("doomed").await;
    assert!(db.schema_exists("t_doomed").await);
    assert_eq!(db.count("SELECT count(*) FROM t_doomed.users").await, 1);
}

#[tokio::test]
async fn an_uncommitted_provisioning_leaves_nothing_behind() {
    let db = TestDb::new().await;
    let p = begin(&db, "halfway", &TENANT_MIGRATIONS).await.unwrap();
    drop(p); // e.g. the first admin's insert failed
    // The rollback is sent when the connection is next used; any query will do.
    assert_eq!(db.count("SELECT count(*) FROM tenants").await, 0);
    assert!(!db.schema_exists("t_halfway").await);
}

#[tokio::test]
async fn provisioning_creates_row_domain_schema_ledger_and_admin() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    let (schema, version): (String, i64) = db
        .row("SELECT schema_name, schema_version FROM tenants WHERE slug = 'acme'")
        .await;
    assert_eq!(schema, "t_acme");
    assert_eq!(
        version,
        tenantry::tenancy::migrate::latest_version(&TENANT_MIGRATIONS)
    );
    db.assert_count(
        "SELECT count(*) FROM tenant_domains WHERE domain = 'acme.localhost' AND is_default",
        1,
    )
    .await;
    assert_eq!(
        db.count("SELECT count(*) FROM t_acme._sqlx_migrations")
            .await,
        TENANT_MIGRATIONS.iter().count() as i64
    );
    db.assert_count("SELECT count(*) FROM t_acme.users WHERE role = 'admin'", 1)
        .await;
    // The tenant's tables live in its schema only, never in public.
    assert_eq!(db.count("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('users', 'tasks', 'sessions')").await, 0);
}

#[tokio::test]
async fn duplicate_slug_is_refused() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    let err = provision::begin(
        &db.pool,
        &new_tenant("acme").catalogue(),
        ROOT,
        &TENANT_MIGRATIONS,
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, ProvisionError::SlugTaken(_)), "{err}");
    assert_eq!(db.count("SELECT count(*) FROM tenants").await, 1);
}

#[tokio::test]
async fn bad_slugs_are_refused_with_a_message_and_change_nothing() {
    let db = TestDb::new().await;
    let long = "a".repeat(64);
    let bad = [
        "Bad Slug!",
        "public",
        "pg_x",
        "pgadmin",
        "a",
        long.as_str(),
        "x'; drop schema public cascade; --",
    ];
    for slug in bad {
        let out = cli(
            &db,
            &[
                "tenant",
                "create",
                slug,
                "--name",
                "Bad",
                "--admin-email",
                "a@b.test",
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{slug}: {stderr}");
        assert!(stderr.contains("slug"), "{slug}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{slug}: one line, got {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{slug}: {stderr}");
    }
    assert_eq!(db.count("SELECT count(*) FROM tenants").await, 0);
    db.assert_count(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%'",
        0,
    )
    .await;
    assert!(db.schema_exists("public").await);
}

#[tokio::test]
async fn delete_drops_schema_rows_and_domains() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    db.create_tenant("globex").await;
    assert!(provision::delete(&db.pool, "acme").await.unwrap());
    assert!(!db.schema_exists("t_acme").await);
    assert!(db.schema_exists("t_globex").await);
    assert_eq!(db.count("SELECT count(*) FROM tenants").await, 1);
    assert_eq!(db.count("SELECT count(*) FROM tenant_domains").await, 1);
    assert!(!provision::delete(&db.pool, "acme").await.unwrap());
}

#[tokio::test]
async fn a_failed_provisioning_gives_its_spare_schema_back() {
    let db = TestDb::new().await;
    db.exec("CREATE SCHEMA t_clash").await;
    tenantry::tenancy::spares::refill(&db.pool, &TENANT_MIGRATIONS, 1)
        .await
        .unwrap();
    let id: i64 = db.scalar("SELECT id FROM tenant_spares").await;

    let err = begin(&db, "clash", &TENANT_MIGRATIONS).await.err().unwrap();
    assert!(matches!(err, ProvisionError::SchemaExists(_)), "{err}");
    assert_eq!(db.count("SELECT count(*) FROM tenants").await, 0);
    db.assert_count(
        &format!("SELECT count(*) FROM tenant_spares WHERE id = {id}"),
        1,
    )
    .await;
    assert!(db.schema_exists(&format!("tenantry_spare_{id}")).await);
}
