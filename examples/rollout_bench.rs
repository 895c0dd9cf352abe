//! Rolls new migrations out over the tenants already in `DATABASE_URL` (seed
//! them with `seed_tenants`), to compare settings:
//!
//!     DATABASE_URL=… cargo run --release --example rollout_bench -- JOBS ROUNDS
//!
//! Each round adds one column (and an index) to every tenant's `tasks`.

use std::borrow::Cow;
use std::time::Instant;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use tenantry::database::TENANT_MIGRATIONS;
use tenantry::tenancy::migrate::{self};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let jobs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4);
    let rounds: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let pool = tenantry::database::pool(&url, jobs as u32)?;
    let mut migrations: Vec<Migration> = TENANT_MIGRATIONS.iter().cloned().collect();
    let start: i64 = sqlx::query_scalar("SELECT COALESCE(max(schema_version), 0) FROM tenants")
        .fetch_one(&pool)
        .await?;
    for v in 90_000..=start.max(90_000 - 1) {
        migrations.push(extra(v));
    }
    for round in 0..rounds {
        let version = start.max(89_999) + 1 + round;
        migrations.push(extra(version));
        let migrator = Migrator::with_migrations(migrations.clone());
        let t = Instant::now();
        let s = migrate::rollout(&pool, &migrator, jobs, false, |_, _| {}).await?;
        println!(
            "migration {version}: {} tenants in {:.1?} ({} failed)",
            s.migrated,
            t.elapsed(),
            s.failed.len()
        );
    }
    Ok(())
}

fn extra(version: i64) -> Migration {
    let sql = format!(
        "ALTER TABLE tasks ADD COLUMN c{version} integer NOT NULL DEFAULT 0;
         CREATE INDEX tasks_c{version}_idx ON tasks (c{version});"
    );
    Migration::new(
        version,
        Cow::Owned(format!("add c{version}")),
        MigrationType::Simple,
        sqlx::AssertSqlSafe(sql).into_sql_str(),
        false,
    )
}
