//! A tenant migration rollout interrupted by a database restart: every tenant
//! is either wholly migrated or untouched, and a rerun finishes the job.
//!
//! The test runs a PostgreSQL cluster of its own, since restarting the shared
//! one would break every other test running at the same time.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, SqlSafeStr};
use tenantry::branding::Color;
use tenantry::database::TENANT_MIGRATIONS;
use tenantry::onboarding::NewTenant;
use tenantry::tenancy::Slug;
use tenantry::tenancy::migrate::{self, Outcome, latest_version};
use tenantry::tenancy::provision::{self};

use crate::harness::{ROOT, TestDb};

const TENANTS: usize = 200;
/// The new migration: a column and its index.
const NEW_VERSION: i64 = 90_001;
/// Released with it: a slow step after it.
const NEXT_VERSION: i64 = 90_002;

/// This build's tenant migrations plus the release's two. The sleeps hold
/// each tenant's transaction open, with the column added but not yet
/// indexed, and with the first migration applied and recorded but not the
/// second, so the restart is sure to land in the middle of some tenants'
/// rollout: if either were committed on its own, those tenants would be
/// left half-migrated.
fn with_new_migrations() -> Migrator {
    let mut migrations: Vec<Migration> = TENANT_MIGRATIONS.iter().cloned().collect();
    for (version, description, sql) in [
        (
            NEW_VERSION,
            "task priority with index",
            "ALTER TABLE tasks ADD COLUMN priority integer NOT NULL DEFAULT 0;
             SELECT pg_sleep(0.01);
             CREATE INDEX tasks_priority_idx ON tasks (priority);",
        ),
        (
            NEXT_VERSION,
            "describe task priority",
            "SELECT pg_sleep(0.03);
             COMMENT ON COLUMN tasks.priority IS 'higher comes first';",
        ),
    ] {
        migrations.push(Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            sqlx::AssertSqlSafe(sql).into_sql_str(),
            false,
        ));
    }
    Migrator::with_migrations(migrations)
}

/// What one tenant has of the release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    column: bool,
    index: bool,
    comment: bool,
    /// Ledger rows for [`NEW_VERSION`] and for [`NEXT_VERSION`].
    ledger_rows: (i64, i64),
    schema_version: i64,
}

impl State {
    /// All of the release (`true`) or none of it.
    fn all_or_none(applied: bool) -> State {
        let ledger_row = i64::from(applied);
        let schema_version = if applied {
            latest_version(&with_new_migrations())
        } else {
            latest_version(&TENANT_MIGRATIONS)
        };
        State {
            column: applied,
            index: applied,
            comment: applied,
            ledger_rows: (ledger_row, ledger_row),
            schema_version,
        }
    }

    fn full() -> State {
        State::all_or_none(true)
    }

    fn untouched() -> State {
        State::all_or_none(false)
    }
}

/// Every tenant's state, read in one snapshot (a repeatable-read
/// transaction), so a rollout still running cannot skew the picture. On a
/// connection of its own: pooled ones may be dead after the restart.
async fn states(url: &str) -> Vec<(String, State)> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let mut tx = conn
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .unwrap();
    let rows: Vec<(String, bool, bool, bool, i64)> = sqlx::query_as(
        "SELECT t.schema_name,
                a.attname IS NOT NULL,
                EXISTS (SELECT 1 FROM pg_indexes i
                         WHERE i.schemaname = t.schema_name AND i.tablename = 'tasks'
                           AND i.indexname = 'tasks_priority_idx'
                           AND i.indexdef LIKE '%(priority)'),
                col_description(a.attrelid, a.attnum) IS NOT NULL,
                t.schema_version
           FROM public.tenants t
           LEFT JOIN pg_namespace n ON n.nspname = t.schema_name
           LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'tasks'
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'priority'
                                   AND NOT a.attisdropped
          ORDER BY t.id",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let mut states = Vec::with_capacity(rows.len());
    for (schema, column, index, comment, schema_version) in rows {
        // Schema names come from validated slugs (t_behind_NNN).
        let ledger_rows: (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FILTER (WHERE version = {NEW_VERSION}),
                    count(*) FILTER (WHERE version = {NEXT_VERSION})
               FROM \"{schema}\"._sqlx_migrations"
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let state = State {
            column,
            index,
            comment,
            ledger_rows,
            schema_version,
        };
        states.push((schema, state));
    }
    tx.rollback().await.unwrap();
    conn.close().await.unwrap();
    states
}

/// Asserts every tenant is wholly migrated or wholly untouched; returns how
/// many are migrated.
async fn assert_all_or_nothing(url: &str, when: &str) -> usize {
    let states = states(url).await;
    assert_eq!(states.len(), TENANTS, "{when}");
    for (schema, state) in &states {
        assert!(
            *state == State::full() || *state == State::untouched(),
            "{when}: {schema} is half-migrated: {state:?}"
        );
    }
    states.iter().filter(|(_, s)| *s == State::full()).count()
}

/// Removes the cluster's directory when the test ends, pass or fail.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// Multi-threaded: the rollout runs on the workers while this thread stops
// and starts the cluster (blocking calls). The cluster is started from this
// thread, which lives as long as the test (the server's parent-death signal
// is tied to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_interrupted_by_a_database_restart_resumes_with_no_tenant_half_migrated() {
    let dir = std::env::temp_dir().join(format!("tenantry-rollout-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = RemoveOnDrop(dir.clone());
    let start = || {
        tenantry::devdb::start(&dir, tenantry::devdb::FAST_UNSAFE_SETTINGS)
            .expect("start this test's own cluster")
    };
    let mut cluster = start();
    // The URL survives the restart: the cluster comes back on the same port.
    let TestDb { url, pool } = TestDb::on_cluster(&cluster, "rollout", 4).await;

    // 200 tenants, fully migrated with this build's migrations.
    futures_util::stream::iter(0..TENANTS)
        .map(|i| {
            let pool = &pool;
            async move {
                let new = NewTenant {
                    slug: Slug::parse(&format!("behind-{i:03}")).unwrap(),
                    display_name: format!("Behind {i}"),
                    primary_color: Color::parse("#4f46e5").unwrap(),
                    accent_color: Color::parse("#0ea5e9").unwrap(),
                };
                provision::begin(pool, &new.catalogue(), ROOT, &TENANT_MIGRATIONS)
                    .await
                    .unwrap()
                    .commit()
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<()>>()
        .await;
    assert_eq!(assert_all_or_nothing(&url, "before the rollout").await, 0);

    // Roll the release out, 4 tenants at a time, and restart the
    // cluster (fast shutdown: open transactions are cut off) once 40 are done.
    let migrator = Arc::new(with_new_migrations());
    let migrated = Arc::new(AtomicUsize::new(0));
    let rollout = tokio::spawn({
        let (pool, migrator, migrated) = (pool.clone(), migrator.clone(), migrated.clone());
        async move {
            migrate::rollout(&pool, &migrator, 4, false, |_, outcome| {
                if let Outcome::Migrated { .. } = outcome {
                    migrated.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await
        }
    });
    let started = Instant::now();
    while migrated.load(Ordering::Relaxed) < 40 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the rollout never got under way"
        );
        assert!(!rollout.is_finished(), "the rollout ended early");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.stop();
    let before_restart = migrated.load(Ordering::Relaxed);
    assert!(before_restart < TENANTS, "the rollout was still running");
    cluster = start();
    // Mid-rollout, just after the restart.
    let done = assert_all_or_nothing(&url, "just after the restart").await;
    assert!(done >= before_restart, "{done} < {before_restart}");

    let summary = rollout
        .await
        .unwrap()
        .expect("the rollout had listed its tenants before the restart");
    assert!(
        !summary.failed.is_empty(),
        "the restart cut off the tenants in flight: {summary:?}"
    );
    let done = assert_all_or_nothing(&url, "after the interrupted rollout").await;
    // (A tenant whose COMMIT went through as the connection was cut is
    // reported failed yet migrated, hence no equality.)
    assert!(done >= summary.migrated, "{done}: {summary:?}");
    assert!(done < TENANTS, "{done}: {summary:?}");

    // The rerun (a new `tenantry migrate`: a pool of its own) visits only
    // the tenants still behind, and finishes them.
    pool.close().await;
    let pool = tenantry::database::pool(&url, 4).unwrap();
    let summary = migrate::rollout(&pool, &migrator, 4, false, |_, _| {})
        .await
        .unwrap();
    assert!(summary.failed.is_empty(), "{summary:?}");
    assert_eq!(
        (summary.migrated, summary.skipped),
        (TENANTS - done, done),
        "{summary:?}"
    );
    assert_eq!(
        assert_all_or_nothing(&url, "after the rerun").await,
        TENANTS
    );
    // Every schema's own ledger agrees with the catalogue.
    let summary = migrate::rollout(&pool, &migrator, 4, true, |_, _| {})
        .await
        .unwrap();
    assert_eq!(
        (summary.migrated, summary.current, summary.failed.len()),
        (0, TENANTS, 0),
        "{summary:?}"
    );
    pool.close().await;
    drop(cluster);
}
