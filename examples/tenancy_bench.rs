//! Benchmark of the tenancy core at scale: provisioning time as the number of
//! tenants grows (creating the schema, and taking a spare one), a no-op
//! migration rollout, and one new migration rolled out to every tenant.
//!
//!     cargo run --release --example tenancy_bench -- [TENANTS] [JOBS]
//!
//! Uses `DATABASE_URL` when set (the database should be empty), otherwise a
//! fresh managed cluster in a temporary directory, deleted afterwards.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{PgPool, SqlSafeStr};
use tenantry::branding::Color;
use tenantry::database::TENANT_MIGRATIONS;
use tenantry::onboarding::NewTenant;
use tenantry::onboarding::{FirstAdmin, create_tenant};
use tenantry::tenancy::Slug;
use tenantry::tenancy::migrate::{self};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn describe(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{label:<34} n={:<6} mean={mean:>8.2?} p50={:>8.2?} p95={:>8.2?} max={:>8.2?}",
        samples.len(),
        percentile(samples, 0.5),
        percentile(samples, 0.95),
        samples[samples.len() - 1],
    );
}

/// Creates the tenant `slug` with `admin` and commits: how long it took.
async fn timed_create(pool: &PgPool, admin: &FirstAdmin, slug: &str) -> anyhow::Result<Duration> {
    let new = NewTenant {
        slug: Slug::parse(slug)?,
        display_name: format!("Bench {slug}"),
        primary_color: Color::parse("#4f46e5").unwrap(),
        accent_color: Color::parse("#0ea5e9").unwrap(),
    };
    let t = Instant::now();
    create_tenant(pool, "localhost", &new, admin)
        .await?
        .commit()
        .await?;
    Ok(t.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let tenants: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let jobs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);

    let temp = std::env::temp_dir().join(format!("tenantry-bench-{}", std::process::id()));
    let (url, cluster) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let cluster = tenantry::devdb::start(&temp, &[])?;
            tenantry::devdb::ensure_database(&cluster, "bench").await?;
            (cluster.url("bench"), Some(cluster))
        }
    };
    let pool = tenantry::database::pool(&url, jobs as u32)?;
    tenantry::database::migrate_public(&pool).await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    println!("PostgreSQL {version}; {tenants} tenants; {jobs} jobs");

    let admin = FirstAdmin {
        email: "admin@bench.test".into(),
        display_name: "Admin".into(),
        password_hash: tenantry::password::hash("bench-password".into()).await?,
    };
    let mut first = Vec::new();
    let mut last = Vec::new();
    let started = Instant::now();
    for i in 0..tenants {
        let took = timed_create(&pool, &admin, &format!("bench-{i:05}")).await?;
        if i < 100 {
            first.push(took);
        }
        if i + 100 >= tenants {
            last.push(took);
        }
    }
    println!("created {tenants} tenants in {:.1?}", started.elapsed());
    describe("tenant create (first 100)", &mut first);
    describe(&format!("tenant create (last 100 of {tenants})"), &mut last);

    // The same, each taking a spare schema (made beforehand, untimed, as
    // the server's job makes them between sign-ups).
    tenantry::tenancy::spares::refill(&pool, &TENANT_MIGRATIONS, 100).await?;
    // With DATABASE_URL, the database may hold tenants of its own already.
    let present: i64 = sqlx::query_scalar("SELECT count(*) FROM public.tenants")
        .fetch_one(&pool)
        .await?;
    let mut spared = Vec::new();
    for i in 0..100 {
        spared.push(timed_create(&pool, &admin, &format!("spare-{i:03}")).await?);
    }
    describe(
        &format!("tenant create, spare ({present} present)"),
        &mut spared,
    );
    let mut hashes = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        tenantry::password::hash("bench-password".into()).await?;
        hashes.push(t.elapsed());
    }
    describe("one password hash", &mut hashes);

    let t = Instant::now();
    let s = migrate::rollout(&pool, &TENANT_MIGRATIONS, jobs, false, |_, _| {}).await?;
    println!(
        "no-op rollout: {:.1?} ({} skipped, {} visited)",
        t.elapsed(),
        s.skipped,
        s.migrated + s.current
    );
    let t = Instant::now();
    let s = migrate::rollout(&pool, &TENANT_MIGRATIONS, jobs, true, |_, _| {}).await?;
    println!(
        "verify every ledger (--all): {:.1?} ({} up to date, {} failed)",
        t.elapsed(),
        s.current,
        s.failed.len()
    );

    let mut migrations: Vec<Migration> = TENANT_MIGRATIONS.iter().cloned().collect();
    migrations.push(Migration::new(
        90_000,
        Cow::Borrowed("add task priority"),
        MigrationType::Simple,
        // The default set apart from the ADD COLUMN: on PostgreSQL 15 an
        // `ADD COLUMN … DEFAULT` costs a scan that grows with the whole
        // catalogue (about 50 ms per tenant at 10,000; docs/BENCHMARKS.md).
        sqlx::AssertSqlSafe(
            "ALTER TABLE tasks ADD COLUMN priority integer;
             ALTER TABLE tasks ALTER COLUMN priority SET DEFAULT 0;
             CREATE INDEX tasks_priority_idx ON tasks (priority);",
        )
        .into_sql_str(),
        false,
    ));
    let next = Migrator::with_migrations(migrations);
    let t = Instant::now();
    let s = migrate::rollout(&pool, &next, jobs, false, |_, _| {}).await?;
    println!(
        "one new migration over {tenants} tenants: {:.1?} ({} migrated, {} failed)",
        t.elapsed(),
        s.migrated,
        s.failed.len()
    );
    let t = Instant::now();
    let s = migrate::rollout(&pool, &next, jobs, false, |_, _| {}).await?;
    println!(
        "no-op rollout afterwards: {:.1?} ({} skipped)",
        t.elapsed(),
        s.skipped
    );

    pool.close().await;
    if let Some(mut cluster) = cluster {
        cluster.stop();
        let _ = std::fs::remove_dir_all(&temp);
    }
    Ok(())
}
