//! Rolling a new tenant migration out over many tenants.

use sha2::Digest;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, Migrator};
use tenantry::database::TENANT_MIGRATIONS;
use tenantry::tenancy::migrate::{self};

use crate::harness::{TestDb, migrator_with};

fn with_new_migration() -> Migrator {
    migrator_with(
        90_000,
        "add task priority",
        "ALTER TABLE tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;",
    )
}

#[tokio::test]
async fn new_migration_over_fifty_tenants_with_one_failure() {
    let db = TestDb::new().await;
    for i in 0..50 {
        db.create_tenant(&format!("tenant-{i:02}")).await;
    }
    // Tenant 7 already has the column: its migration fails, the others go on.
    db.exec("ALTER TABLE t_tenant_07.tasks ADD COLUMN priority integer")
        .await;

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

    db.assert_count(
        &format!(
            "SELECT count(*) FROM tenants WHERE schema_version = {}",
            migrate::latest_version(&migrator)
        ),
        49,
    )
    .await;
    db.assert_count(
        "SELECT count(*) FROM t_tenant_12._sqlx_migrations WHERE version = 90000",
        1,
    )
    .await;
    // The failed tenant was left exactly as it was.
    db.assert_count(
        "SELECT count(*) FROM t_tenant_07._sqlx_migrations WHERE version = 90000",
        0,
    )
    .await;

    // Fix the tenant and rerun: only it is visited.
    db.exec("ALTER TABLE t_tenant_07.tasks DROP COLUMN priority")
        .await;
    let rerun = async |verify: bool| {
        migrate::rollout(&pool, &migrator, 4, verify, |_, _| {})
            .await
            .unwrap()
    };
    let summary = rerun(false).await;
    assert_eq!(
        (summary.migrated, summary.skipped, summary.failed.len()),
        (1, 49, 0)
    );

    // A rerun is a no-op, and so is a full verification of every ledger.
    let summary = rerun(false).await;
    assert_eq!((summary.migrated, summary.skipped), (0, 50));
    let summary = rerun(true).await;
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

#[tokio::test]
async fn a_migration_with_quoted_semicolons_applies_statement_by_statement() {
    if crate::harness::skip_on_citus(
        "its migration adds a trigger: Citus refuses triggers on distributed tables \
         (\"triggers are not supported on distributed tables\") unless \
         citus.enable_unsafe_triggers is on; the splitter itself is covered by unit tests",
    ) {
        return;
    }
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    let sql = r#"-- Touches updated_at; the body holds semicolons.
CREATE FUNCTION touch_task() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    NEW.updated_at := now(); -- not the end;
    NEW.description := NEW.description || $$;$$ || E'\';' || 'it''s;';
    RETURN NEW;
END
$body$;
/* a /* nested; */ comment; */
CREATE TRIGGER "touch;task" BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION touch_task()"#;
    let migrator = migrator_with(90_001, "touch tasks", sql);
    let summary = migrate::rollout(&db.pool, &migrator, 1, false, |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (summary.migrated, summary.failed.len()),
        (1, 0),
        "{summary:?}"
    );

    db.exec(
        "INSERT INTO t_acme.tasks (title) VALUES ('x');
         UPDATE t_acme.tasks SET title = 'y'",
    )
    .await;
    let description: String = db.scalar("SELECT description FROM t_acme.tasks").await;
    assert_eq!(description, ";';it's;");

    // The ledger holds sqlx's checksum of the whole text, as before.
    let checksum: Vec<u8> = db
        .scalar("SELECT checksum FROM t_acme._sqlx_migrations WHERE version = 90001")
        .await;
    let expected = migrator.iter().find(|m| m.version == 90_001).unwrap();
    assert_eq!(checksum.as_slice(), expected.checksum.as_ref());
    assert_eq!(checksum, sha2::Sha384::digest(sql).to_vec());
    let first: Vec<u8> = db
        .scalar("SELECT checksum FROM t_acme._sqlx_migrations WHERE version = 1")
        .await;
    assert_eq!(
        first.as_slice(),
        TENANT_MIGRATIONS.iter().next().unwrap().checksum.as_ref()
    );
}
