//! Tenant-affine connections: a tenant's transactions come back to the
//! same backend, one tenant's burst spreads over all of them, and the pin
//! to the schema holds on every one.

use std::sync::Arc;
use std::time::Duration;

use tenantry::tenancy::{Tenant, TenantDb, TenantPool, TenantRegistry};

use crate::harness::{ROOT, TestDb};

async fn registry_of(db: &TestDb, tenants: usize) -> Arc<TenantRegistry> {
    for n in 0..tenants {
        db.create_tenant(&format!("ten-{n}")).await;
    }
    TenantRegistry::start(db.pool_of(2), &db.url, ROOT, tenantry::branding::PROFILE)
        .await
        .unwrap()
}

/// One tenant, `ten-0`, and a pool of one slot.
async fn one_tenant_on_one_slot(db: &TestDb) -> (TenantPool, Arc<Tenant>) {
    let registry = registry_of(db, 1).await;
    let pool = TenantPool::beside(&db.pool_of(1), 1);
    (pool, registry.by_slug("ten-0").unwrap())
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

/// A backend's caches grow with every schema it serves: past its bound the
/// connection is replaced (the next transaction starts on a fresh backend),
/// and the new one is pinned to the right schema like the old.
#[tokio::test]
async fn a_connection_is_replaced_once_it_has_served_its_share_of_tenants() {
    let db = TestDb::new().await;
    let registry = registry_of(&db, 5).await;
    let pool = TenantPool::bounded(&db.pool_of(2), 1, 3);
    let (first, _) = backend_of(&pool, &registry, "ten-0").await;
    for n in [1, 2, 0, 1, 2] {
        let (pid, _) = backend_of(&pool, &registry, &format!("ten-{n}")).await;
        assert_eq!(pid, first, "three tenants stay on one backend");
    }
    // The fourth tenant is served, and then its connection is retired.
    let (pid, schema) = backend_of(&pool, &registry, "ten-3").await;
    assert_eq!((pid, schema.as_str()), (first, "t_ten_3"));
    let (second, schema) = backend_of(&pool, &registry, "ten-4").await;
    assert_ne!(second, first, "a fresh backend after the fourth tenant");
    assert_eq!(schema, "t_ten_4");
    let observer = db.pool_of(1);
    let mut gone = false;
    for _ in 0..50 {
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)")
                .bind(first)
                .fetch_one(&observer)
                .await
                .unwrap();
        if !alive {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the retired backend has exited");
    // The fresh one counts from zero: three more tenants stay on it.
    for n in [0, 1] {
        let (pid, _) = backend_of(&pool, &registry, &format!("ten-{n}")).await;
        assert_eq!(pid, second);
    }
}

/// A tenant's statements are planned once, generically, on their first run
/// (`tenancy::db::begin_sql`): PostgreSQL's default plans each of a prepared
/// statement's first five runs afresh, and with thousands of busy tenants
/// most of a statement's runs on a connection are among its first five.
#[tokio::test]
async fn a_tenant_statement_is_planned_once_for_all_its_runs() {
    let db = TestDb::new().await;
    let (pool, tenant) = one_tenant_on_one_slot(&db).await;
    for _ in 0..3 {
        let mut tx = TenantDb::begin(&pool, tenant.clone()).await.unwrap();
        let found: i64 = tx
            .query_scalar("SELECT count(*) FROM tasks WHERE title = $1")
            .bind("none")
            .fetch_one(tx.conn())
            .await
            .unwrap();
        assert_eq!(found, 0);
        tx.commit().await.unwrap();
    }
    let mut tx = TenantDb::begin(&pool, tenant).await.unwrap();
    let plans: (i64, i64) = tx
        .query_as(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements
              WHERE statement LIKE '%SELECT count(*) FROM tasks WHERE title = $1'",
        )
        .fetch_one(tx.conn())
        .await
        .unwrap();
    assert_eq!(plans, (3, 0), "(generic, custom) plans of three runs");
}

/// So is a read on its own, which has no transaction to ask for it in: a
/// tenant connection asks for generic plans when it opens.
#[tokio::test]
async fn a_read_on_its_own_is_planned_once_too() {
    let db = TestDb::new().await;
    let (pool, tenant) = one_tenant_on_one_slot(&db).await;
    let sql = "SELECT count(*) FROM {schema}.tasks WHERE title = $1";
    for _ in 0..3 {
        let found = pool
            .fetch_optional(&tenant, sql, |q| q.bind("none"))
            .await
            .unwrap();
        assert_eq!(found, Some((0i64,)));
    }
    let plans: Option<(i64, i64)> = pool
        .fetch_optional(
            &tenant,
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements
              WHERE statement LIKE '%.tasks WHERE title = $1'",
            |q| q,
        )
        .await
        .unwrap();
    assert_eq!(plans, Some((3, 0)), "(generic, custom) plans of three runs");
}

/// A read on its own (`TenantPool::fetch_optional`, how the board is read)
/// is one statement, its own transaction, outside any pin: it reaches
/// the tenant's tables because it names their schema. The connection's
/// search path is the default then, so the schema a transaction of another
/// tenant pinned just before on the same connection is not on it: a table
/// named without a schema is not found instead of being that tenant's.
#[tokio::test]
async fn a_read_on_its_own_reaches_only_the_schema_it_names() {
    let db = TestDb::new().await;
    let registry = registry_of(&db, 2).await;
    let pool = TenantPool::beside(&db.pool_of(1), 1);
    let (zero, one) = (
        registry.by_slug("ten-0").unwrap(),
        registry.by_slug("ten-1").unwrap(),
    );
    let mut tx = TenantDb::begin(&pool, one.clone()).await.unwrap();
    tx.query("INSERT INTO tasks (title) VALUES ('only in ten-1')")
        .execute(tx.conn())
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let tasks = |tenant: Arc<Tenant>| {
        let pool = pool.clone();
        async move {
            pool.fetch_optional(&tenant, "SELECT count(*) FROM {schema}.tasks", |q| q)
                .await
                .unwrap()
                .map(|(n,): (i64,)| n)
        }
    };
    assert_eq!(tasks(one.clone()).await, Some(1));
    assert_eq!(tasks(zero.clone()).await, Some(0));

    // No pinned transaction around it: the connection's own path.
    let (path,): (String,) = pool
        .fetch_optional(&zero, "SELECT current_setting('search_path')", |q| q)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(path, "\"$user\", public");

    let mut tx = TenantDb::begin(&pool, one).await.unwrap();
    tx.query("SELECT 1").execute(tx.conn()).await.unwrap();
    tx.commit().await.unwrap();
    let unnamed = pool
        .fetch_optional::<(i64,)>(&zero, "SELECT count(*) FROM tasks", |q| q)
        .await;
    let err = unnamed.expect_err("a table without its schema is not found");
    assert!(
        err.to_string().contains("\"tasks\" does not exist"),
        "{err}"
    );
}

/// The board's statement names the schema of every table it reads (it
/// runs outside a pinned transaction): with nothing on the search path it
/// still runs.
#[tokio::test]
async fn the_board_names_the_schema_of_every_table_it_reads() {
    let db = TestDb::new().await;
    let registry = registry_of(&db, 1).await;
    let tenant = registry.by_slug("ten-0").unwrap();
    let mut conn = db.pool_of(1).acquire().await.unwrap();
    sqlx::query("SET search_path = ''")
        .execute(&mut *conn)
        .await
        .unwrap();
    let sql = tenantry::tenancy::db::in_schema(&tenant.schema, tenantry::workspace::BOARD_SQL);
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind("no such session")
        .fetch_optional(&mut *conn)
        .await
        .unwrap();
    assert!(row.is_none());
}

/// A read keeps its connection for the slot's next user rather than
/// handing it back to the pool, unless someone waits for it there: then
/// the waiter gets it at once (not after the pool's acquire timeout).
#[tokio::test]
async fn a_read_hands_its_connection_to_whoever_waits_for_it() {
    let db = TestDb::new().await;
    let (pool, tenant) = one_tenant_on_one_slot(&db).await;
    let sql = "SELECT count(*) FROM {schema}.tasks";
    let held = TenantDb::begin(&pool, tenant.clone()).await.unwrap();
    let read = tokio::spawn({
        let (pool, tenant) = (pool.clone(), tenant.clone());
        async move { pool.fetch_optional::<(i64,)>(&tenant, sql, |q| q).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let write = tokio::spawn({
        let (pool, tenant) = (pool.clone(), tenant.clone());
        async move {
            let mut tx = TenantDb::begin(&pool, tenant).await?;
            tx.query("INSERT INTO tasks (title) VALUES ('after the read')")
                .execute(tx.conn())
                .await?;
            tx.commit().await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(held);
    let (read, write) = tokio::time::timeout(Duration::from_secs(3), async {
        (read.await.unwrap(), write.await.unwrap())
    })
    .await
    .expect("the read and then the write got the connection in turn");
    assert_eq!(read.unwrap(), Some((0,)));
    write.unwrap();
    assert_eq!(
        pool.fetch_optional::<(i64,)>(&tenant, sql, |q| q)
            .await
            .unwrap(),
        Some((1,))
    );
}

/// A connection kept after a read counts as idle, and closing the pool
/// closes it too instead of waiting for it.
#[tokio::test]
async fn a_kept_connection_is_idle_and_closes_with_the_pool() {
    let db = TestDb::new().await;
    let registry = registry_of(&db, 1).await;
    let pool = TenantPool::beside(&db.pool_of(2), 2);
    let tenant = registry.by_slug("ten-0").unwrap();
    let found = pool
        .fetch_optional::<(i32,)>(&tenant, "SELECT 1", |q| q)
        .await
        .unwrap();
    assert_eq!(found, Some((1,)));
    assert_eq!(pool.size(), (1, 1), "one connection open, and idle");
    tokio::time::timeout(Duration::from_secs(3), pool.close())
        .await
        .expect("the pool closes with a connection kept");
    assert_eq!(pool.size().0, 0);
}
