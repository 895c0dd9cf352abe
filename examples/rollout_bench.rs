//! Rolls new migrations out over the tenants already in `DATABASE_URL` (seed
//! them with `seed_tenants`), to compare settings:
//!
//!     DATABASE_URL=… cargo run --release --example rollout_bench -- JOBS ROUNDS [FORM]
//!
//! Each round adds one column (and an index) to every tenant's `tasks`, in
//! one of two forms (FORM):
//!
//! - `default`: `ADD COLUMN c integer NOT NULL DEFAULT 0` (versions 90,000…);
//! - `split` (the default): `ADD COLUMN c integer` then `ALTER COLUMN c SET
//!   DEFAULT 0` (versions 91,000…). Same result on an empty table; on
//!   PostgreSQL 15 an `ADD COLUMN` with a `DEFAULT` costs a scan that grows
//!   with the whole database's catalogue (docs/BENCHMARKS.md).

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
    let base = match args.next().as_deref() {
        Some("default") => DEFAULT_FORM,
        None | Some("split") => SPLIT_FORM,
        Some(other) => anyhow::bail!("FORM is `default` or `split`, not {other:?}"),
    };
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let pool = tenantry::database::pool(&url, jobs as u32)?;
    let mut migrations: Vec<Migration> = TENANT_MIGRATIONS.iter().cloned().collect();
    let start: i64 = sqlx::query_scalar("SELECT COALESCE(max(schema_version), 0) FROM tenants")
        .fetch_one(&pool)
        .await?;
    // The extra versions earlier runs applied (every tenant has the same).
    let schema: String = sqlx::query_scalar("SELECT schema_name FROM tenants ORDER BY id LIMIT 1")
        .fetch_one(&pool)
        .await?;
    let sql = format!(
        "SELECT version FROM \"{schema}\"._sqlx_migrations WHERE version >= {DEFAULT_FORM} ORDER BY version"
    );
    let applied: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_all(&pool)
        .await?;
    migrations.extend(applied.into_iter().map(extra));
    for round in 0..rounds {
        let version = start.max(base - 1) + 1 + round;
        migrations.push(extra(version));
        let migrator = Migrator::with_migrations(migrations.clone());
        let t = Instant::now();
        let (mut done, mut lap) = (0usize, Instant::now());
        let s = migrate::rollout(&pool, &migrator, jobs, false, |_, _| {
            done += 1;
            if done % 1000 == 0 {
                println!("  {done} tenants: the last 1,000 in {:.1?}", lap.elapsed());
                lap = Instant::now();
            }
        })
        .await?;
        println!(
            "migration {version}: {} tenants in {:.1?} ({} failed)",
            s.migrated,
            t.elapsed(),
            s.failed.len()
        );
        if let Some((schema, why)) = s.failed.first() {
            println!("  first failure: {schema}: {why}");
        }
    }
    Ok(())
}

/// First versions of each form: a version's text must stay what the
/// ledgers recorded, so the form is a function of the version.
const DEFAULT_FORM: i64 = 90_000;
const SPLIT_FORM: i64 = 91_000;

fn extra(version: i64) -> Migration {
    let sql = if version < SPLIT_FORM {
        // The text (spaces included) as earlier versions of this program
        // wrote it: ledgers hold its checksum.
        format!(
            "ALTER TABLE tasks ADD COLUMN c{version} integer NOT NULL DEFAULT 0;\n         \
             CREATE INDEX tasks_c{version}_idx ON tasks (c{version});"
        )
    } else {
        format!(
            "ALTER TABLE tasks ADD COLUMN c{version} integer;
             ALTER TABLE tasks ALTER COLUMN c{version} SET DEFAULT 0;
             CREATE INDEX tasks_c{version}_idx ON tasks (c{version});"
        )
    };
    Migration::new(
        version,
        Cow::Owned(format!("add c{version}")),
        MigrationType::Simple,
        sqlx::AssertSqlSafe(sql).into_sql_str(),
        false,
    )
}
