//! Spare tenant schemas: a new tenant gets a ready schema renamed, only one
//! made with its own migrations (a failed provisioning giving its spare back
//! is in `provisioning`).

use tenantry::database::TENANT_MIGRATIONS;
use tenantry::tenancy::migrate::latest_version;
use tenantry::tenancy::spares::{Refilled, refill};

use crate::harness::{ACME, TestApp, TestDb, migrator_with};

async fn spare_ids(db: &TestDb) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM tenant_spares ORDER BY id")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

async fn schema_oid(db: &TestDb, schema: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT oid::bigint FROM pg_namespace WHERE nspname = $1")
        .bind(schema)
        .fetch_optional(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_tenant_gets_a_spare_renamed_and_works_like_any_other() {
    let db = TestDb::new().await;
    let made = refill(&db.pool, &TENANT_MIGRATIONS, 2).await.unwrap();
    assert_eq!(
        made,
        Refilled {
            made: 2,
            dropped: 0
        }
    );
    let ids = spare_ids(&db).await;
    assert_eq!(ids.len(), 2);
    let first = format!("tenantry_spare_{}", ids[0]);
    let spare_oid = schema_oid(&db, &first).await.expect("the spare exists");
    // A spare is migrated whole: the tenant tables are there, empty.
    assert_eq!(
        db.count(&format!("SELECT count(*) FROM {first}.tasks"))
            .await,
        0
    );

    db.create_tenant("acme").await;
    // The oldest spare became the tenant's schema (the same schema, renamed).
    assert_eq!(schema_oid(&db, "t_acme").await, Some(spare_oid));
    assert_eq!(schema_oid(&db, &first).await, None);
    assert_eq!(spare_ids(&db).await, ids[1..]);
    let version: i64 = db
        .scalar("SELECT schema_version FROM tenants WHERE slug = 'acme'")
        .await;
    assert_eq!(version, latest_version(&TENANT_MIGRATIONS));
    db.assert_count("SELECT count(*) FROM t_acme.users WHERE role = 'admin'", 1)
        .await;

    // Topped up again; fewer wanted, the newest extra goes.
    let again = refill(&db.pool, &TENANT_MIGRATIONS, 2).await.unwrap();
    assert_eq!(
        again,
        Refilled {
            made: 1,
            dropped: 0
        }
    );
    let fewer = refill(&db.pool, &TENANT_MIGRATIONS, 1).await.unwrap();
    assert_eq!(
        fewer,
        Refilled {
            made: 0,
            dropped: 1
        }
    );
    assert_eq!(spare_ids(&db).await, ids[1..2]);

    // The tenant's admin signs in and works on the board.
    let pool = db.pool.clone();
    let app = TestApp::start(db).await;
    let client = app.signed_in(ACME, "admin@acme.test").await;
    let created = app
        .post_form(
            &client,
            ACME,
            "/",
            "/tasks",
            &[
                ("title", "First on a spare"),
                ("description", ""),
                ("status", "todo"),
                ("assignee_id", ""),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    let board = app.get_text(&client, ACME, "/").await;
    assert!(board.contains("First on a spare"), "{board}");
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM t_acme.tasks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tasks, 1);
}

#[tokio::test]
async fn a_spare_of_other_migrations_is_never_taken_and_dropped_once_stale() {
    let db = TestDb::new().await;
    let other = migrator_with(99_999, "a newer build", "CREATE TABLE extra (id int)");
    refill(&db.pool, &other, 1).await.unwrap();
    let ids = spare_ids(&db).await;
    assert_eq!(ids.len(), 1);

    db.create_tenant("acme").await;
    assert_eq!(spare_ids(&db).await, ids, "the other build's spare stays");
    db.assert_count(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 't_acme' AND tablename = 'extra'",
        0,
    )
    .await;

    // Young, it may still serve the build that made it (a rolling restart).
    let young = refill(&db.pool, &TENANT_MIGRATIONS, 0).await.unwrap();
    assert_eq!(young, Refilled::default());
    db.exec("UPDATE tenant_spares SET created_at = now() - interval '2 hours'")
        .await;
    let stale = refill(&db.pool, &TENANT_MIGRATIONS, 0).await.unwrap();
    assert_eq!(
        stale,
        Refilled {
            made: 0,
            dropped: 1
        }
    );
    assert_eq!(spare_ids(&db).await, Vec::<i64>::new());
    assert!(
        !db.schema_exists(&format!("tenantry_spare_{}", ids[0]))
            .await
    );
}

#[tokio::test]
async fn sign_ups_at_once_each_get_their_own_spare_or_a_new_schema() {
    let db = TestDb::new().await;
    refill(&db.pool, &TENANT_MIGRATIONS, 3).await.unwrap();
    let slugs = ["ann", "bob", "cyd", "dee", "eve"];
    futures_util::future::join_all(slugs.iter().map(|slug| db.create_tenant(slug))).await;
    assert_eq!(spare_ids(&db).await, Vec::<i64>::new());
    for slug in slugs {
        db.assert_count(&format!("SELECT count(*) FROM t_{slug}.users"), 1)
            .await;
    }
    db.assert_count(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry\\_spare\\_%'",
        0,
    )
    .await;
}
