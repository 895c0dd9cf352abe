//! Tenant migrations: the core's own (`src/tenancy/migrations`, its sessions
//! table) and the application's (a `Migrator` it passes in), in every
//! schema. (The application's public migrations are sqlx's as they are.)
//!
//! They use sqlx's embedded files and ledger format (`_sqlx_migrations` for
//! the application's, `_tenantry_core_migrations` for the core's, one of
//! each per schema), but a runner of our own: sqlx's takes one advisory lock per
//! *database*, which would serialise 10,000 schemas, and runs each migration
//! in its own transaction, which would need a session-level `search_path`.
//! Here a tenant's pending migrations, its ledger rows and its summary in
//! `public.tenants.schema_version` commit in **one** transaction under a
//! per-schema lock, pinned with `SET LOCAL`: a failure leaves that tenant as it
//! was, the pooled connection stays clean, and a rerun resumes. A migration
//! file is sent one statement at a time ([`split_statements`]), which a Citus
//! coordinator can forward to a worker; its checksum is still sqlx's, over the
//! whole file, so existing ledgers match.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sqlx::migrate::{Migration, Migrator};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Executor};

use super::db::{self, begin_sql};
use super::schema::SchemaName;
use super::sql_split::split_statements;

/// The core's own tenant migrations (its sessions table), applied to every
/// tenant schema before the application's, with a ledger of their own
/// (`_tenantry_core_migrations`), so the two sets never meet.
pub static CORE_TENANT_MIGRATIONS: Migrator = sqlx::migrate!("src/tenancy/migrations");

/// The core's catalogue in `public` (tenants, domains, the change
/// notification): see [`migrate_catalogue`].
static CATALOGUE: Migrator = sqlx::migrate!("src/tenancy/catalogue");

/// Applies the core's catalogue migrations to `public`, with a ledger of
/// their own (`public._tenantry_catalogue_migrations`). Run it after the
/// application's public migrations, if it has any.
pub async fn migrate_catalogue(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    let mut catalogue = Migrator::with_migrations(CATALOGUE.iter().cloned().collect());
    catalogue.dangerous_set_table_name("_tenantry_catalogue_migrations");
    catalogue.run(pool).await
}

const CORE_LEDGER: &str = "_tenantry_core_migrations";
const APP_LEDGER: &str = "_sqlx_migrations";

fn up(migrator: &Migrator) -> impl Iterator<Item = &Migration> {
    migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
}

/// The schema version an up-to-date tenant has, as kept in
/// `public.tenants.schema_version`: how many tenant migrations, the core's
/// and the application's `app`, it has applied. (Before the core had
/// migrations of its own this was the newest application version, 1, the
/// same as the count then: existing rows read right.)
pub fn latest_version(app: &Migrator) -> i64 {
    i64::try_from(up(&CORE_TENANT_MIGRATIONS).count() + up(app).count()).unwrap_or(i64::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum TenantMigrateError {
    #[error("migration {version} ({description}) failed: {source}")]
    Migration {
        version: i64,
        description: String,
        source: sqlx::Error,
    },
    #[error("applied migration {0} is not among this build's migrations")]
    Unknown(i64),
    #[error("applied migration {0} differs from this build's file (checksum mismatch)")]
    Changed(i64),
    #[error("migration {0} asks to run outside a transaction, which tenant migrations cannot")]
    NoTransaction(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A ledger in sqlx's format, so `_sqlx_migrations` stays what sqlx's own
/// tools expect.
fn ledger_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE {table} (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
            success BOOLEAN NOT NULL,
            checksum BYTEA NOT NULL,
            execution_time BIGINT NOT NULL
        )"
    )
}

/// Brings one tenant schema up to date inside the caller's transaction, which
/// must already have `search_path` set to exactly that schema (see
/// [`begin_sql`]): the core's migrations, then the application's
/// `migrator`. Returns how many migrations were applied.
pub async fn apply_tenant_migrations(
    conn: &mut PgConnection,
    schema: &SchemaName,
    migrator: &Migrator,
) -> Result<usize, TenantMigrateError> {
    apply_sets(conn, schema, &CORE_TENANT_MIGRATIONS, migrator).await
}

/// [`apply_tenant_migrations`] with the core's set given too: a restore
/// (`export`) first brings a new schema to an archive's versions with
/// subsets of both, then to the latest with the whole sets.
pub(super) async fn apply_sets(
    conn: &mut PgConnection,
    schema: &SchemaName,
    core: &Migrator,
    app: &Migrator,
) -> Result<usize, TenantMigrateError> {
    // Two migrators on one schema wait for each other; other schemas do not.
    db::query("SELECT pg_advisory_xact_lock(hashtext('tenantry.migrate'), hashtext($1))")
        .bind(schema.as_str())
        .execute(&mut *conn)
        .await?;
    let mut count = apply_set(conn, CORE_LEDGER, core).await?;
    count += apply_set(conn, APP_LEDGER, app).await?;
    let version = i64::try_from(up(core).count() + up(app).count()).unwrap_or(i64::MAX);
    db::query("UPDATE public.tenants SET schema_version = $1 WHERE schema_name = $2")
        .bind(version)
        .bind(schema.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(count)
}

/// The applied migrations of a schema's two ledgers, `(version, checksum)`
/// in order: the core's, then the application's. Read with names
/// qualified by `schema`, so any search path will do.
pub(super) async fn applied(
    conn: &mut PgConnection,
    schema: &SchemaName,
) -> Result<(Vec<(i64, Vec<u8>)>, Vec<(i64, Vec<u8>)>), sqlx::Error> {
    let mut sets = Vec::new();
    for ledger in [CORE_LEDGER, APP_LEDGER] {
        let sql = format!(
            "SELECT version, checksum FROM {}.{ledger} WHERE success ORDER BY version",
            schema.quoted()
        );
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(AssertSqlSafe(sql))
            .persistent(false)
            .fetch_all(&mut *conn)
            .await?;
        sets.push(rows);
    }
    let app = sets.pop().unwrap_or_default();
    let core = sets.pop().unwrap_or_default();
    Ok((core, app))
}

/// The names of the two ledger tables every tenant schema has (not data:
/// an export records their versions instead).
pub(super) const LEDGERS: [&str; 2] = [CORE_LEDGER, APP_LEDGER];

/// Applies `migrator`'s pending migrations, recording them in `ledger`
/// (created if missing) after checking what it already holds.
async fn apply_set(
    conn: &mut PgConnection,
    ledger: &'static str,
    migrator: &Migrator,
) -> Result<usize, TenantMigrateError> {
    let has_ledger: bool = db::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(ledger)
        .fetch_one(&mut *conn)
        .await?;
    let applied: Vec<(i64, Vec<u8>)> = if has_ledger {
        let sql = format!("SELECT version, checksum FROM {ledger} ORDER BY version");
        sqlx::query_as(AssertSqlSafe(sql))
            .persistent(db::prepared_statements())
            .fetch_all(&mut *conn)
            .await?
    } else {
        conn.execute(AssertSqlSafe(ledger_ddl(ledger))).await?;
        Vec::new()
    };

    for (version, checksum) in &applied {
        let known = migrator.iter().find(|m| m.version == *version);
        match known {
            None if !migrator.ignore_missing => return Err(TenantMigrateError::Unknown(*version)),
            Some(m) if m.checksum.as_ref() != checksum.as_slice() => {
                return Err(TenantMigrateError::Changed(*version));
            }
            _ => {}
        }
    }

    let record = format!(
        "INSERT INTO {ledger} (version, description, success, checksum, execution_time)
         VALUES ($1, $2, true, $3, $4)"
    );
    let mut count = 0;
    for migration in up(migrator) {
        if applied.iter().any(|(v, _)| *v == migration.version) {
            continue;
        }
        if migration.no_tx {
            return Err(TenantMigrateError::NoTransaction(migration.version));
        }
        let started = Instant::now();
        // One statement per message: a Citus coordinator cannot forward a
        // multi-statement string to a worker. The ledger's checksum stays
        // sqlx's, over the whole file.
        for statement in split_statements(migration.sql.as_str()) {
            conn.execute(AssertSqlSafe(statement))
                .await
                .map_err(|source| TenantMigrateError::Migration {
                    version: migration.version,
                    description: migration.description.to_string(),
                    source,
                })?;
        }
        sqlx::query(AssertSqlSafe(record.as_str()))
            .persistent(db::prepared_statements())
            .bind(migration.version)
            .bind(migration.description.as_ref())
            .bind(migration.checksum.as_ref())
            .bind(i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?;
        count += 1;
    }
    Ok(count)
}

/// What happened to one tenant in a rollout.
#[derive(Debug)]
pub enum Outcome {
    Migrated { applied: usize, took: Duration },
    Current,
    Failed(String),
}

#[derive(Debug, Default)]
pub struct Summary {
    pub migrated: usize,
    pub current: usize,
    pub failed: Vec<(String, String)>,
    /// Tenants whose summary already showed the latest version (not visited).
    pub skipped: usize,
}

/// Migrates every tenant schema that is behind, `jobs` at a time, each in its
/// own transaction. With `verify_all`, visits every schema's ledger instead of
/// trusting `public.tenants.schema_version`. `report` sees each outcome as it
/// lands. A failed tenant does not stop the others.
pub async fn rollout(
    pool: &PgPool,
    migrator: &Migrator,
    jobs: usize,
    verify_all: bool,
    mut report: impl FnMut(&str, &Outcome),
) -> Result<Summary, sqlx::Error> {
    let latest = latest_version(migrator);
    let total: i64 = db::query_scalar("SELECT count(*) FROM public.tenants")
        .fetch_one(pool)
        .await?;
    let names: Vec<String> = db::query_scalar(
        "SELECT schema_name FROM public.tenants
          WHERE $1 OR schema_version <> $2 ORDER BY id",
    )
    .bind(verify_all)
    .bind(latest)
    .fetch_all(pool)
    .await?;

    let mut summary = Summary {
        skipped: usize::try_from(total)
            .unwrap_or(0)
            .saturating_sub(names.len()),
        ..Summary::default()
    };
    let mut results = futures_util::stream::iter(names)
        .map(|name| async move {
            let outcome = match SchemaName::from_stored(&name) {
                Some(schema) => migrate_one(pool, &schema, migrator).await,
                // Never reaches SQL: the stored name failed validation.
                None => Outcome::Failed("the stored schema name is not valid".into()),
            };
            (name, outcome)
        })
        .buffer_unordered(jobs.max(1));
    while let Some((name, outcome)) = results.next().await {
        report(&name, &outcome);
        match outcome {
            Outcome::Migrated { .. } => summary.migrated += 1,
            Outcome::Current => summary.current += 1,
            Outcome::Failed(why) => summary.failed.push((name, why)),
        }
    }
    Ok(summary)
}

async fn migrate_one(pool: &PgPool, schema: &SchemaName, migrator: &Migrator) -> Outcome {
    let started = Instant::now();
    let result = async {
        // A busy table makes the ALTER wait; give up after a while and let a
        // rerun pick this tenant up instead of stalling the whole rollout.
        let begin = format!("{}; SET LOCAL lock_timeout = '10s'", begin_sql(schema));
        // Stepping over pooled connections that died (the database
        // restarted mid-rollout), so only tenants really tried can fail.
        let mut tx = super::db::begin_on_live_connection(pool, || begin.clone()).await?;
        let applied = apply_tenant_migrations(&mut tx, schema, migrator).await?;
        tx.commit().await?;
        Ok::<_, TenantMigrateError>(applied)
    }
    .await;
    match result {
        Ok(0) => Outcome::Current,
        Ok(applied) => Outcome::Migrated {
            applied,
            took: started.elapsed(),
        },
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// The statements of `sql` that add a column with a `DEFAULT`
/// (`ALTER TABLE t ADD [COLUMN] c type … DEFAULT …`). On PostgreSQL 15 each
/// costs a catalogue scan that grows with the whole database: ~50 ms per
/// tenant with 10,000 schemas, against ~1 ms for `ADD COLUMN` followed by
/// `ALTER COLUMN … SET DEFAULT` (docs/BENCHMARKS.md), which gives the same
/// result on a table without rows. Tests keep the shipped migrations free
/// of them.
pub fn adds_column_with_default(sql: &str) -> Vec<&str> {
    split_statements(sql)
        .into_iter()
        .map(str::trim)
        .filter(|statement| {
            let words = statement.to_ascii_uppercase();
            let words: Vec<&str> = words.split_whitespace().collect();
            if words.len() < 2 || words[0] != "ALTER" || words[1] != "TABLE" {
                return false;
            }
            // Each `ADD` clause runs to the next `ADD`, `ALTER` or `DROP`.
            let mut in_add_column = false;
            for (i, word) in words.iter().enumerate() {
                match *word {
                    "ADD" => {
                        let next = words.get(i + 1).copied().unwrap_or_default();
                        in_add_column = !matches!(
                            next,
                            "CONSTRAINT" | "PRIMARY" | "UNIQUE" | "CHECK" | "FOREIGN" | "EXCLUDE"
                        );
                    }
                    "ALTER" | "DROP" => in_add_column = false,
                    w if in_add_column && w.starts_with("DEFAULT") => return true,
                    _ => {}
                }
            }
            false
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::adds_column_with_default;

    #[test]
    fn finds_columns_added_with_a_default() {
        let costly = [
            "ALTER TABLE tasks ADD COLUMN priority integer NOT NULL DEFAULT 0",
            "alter table tasks add priority int default 0",
            "ALTER TABLE tasks ADD COLUMN a int, ADD COLUMN b text DEFAULT ''",
            "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS c boolean DEFAULT(false)",
        ];
        for sql in costly {
            assert_eq!(adds_column_with_default(sql), [sql], "{sql}");
        }
        let fine = [
            "ALTER TABLE tasks ADD COLUMN priority integer",
            "ALTER TABLE tasks ALTER COLUMN priority SET DEFAULT 0",
            "ALTER TABLE tasks ADD COLUMN p int, ALTER COLUMN p SET DEFAULT 0",
            "ALTER TABLE tasks ADD CONSTRAINT p_positive CHECK (priority >= 0)",
            "CREATE TABLE t (id int DEFAULT 0)",
            "INSERT INTO t (a) VALUES (DEFAULT)",
        ];
        for sql in fine {
            assert!(adds_column_with_default(sql).is_empty(), "{sql}");
        }
        let file = "CREATE TABLE t (id int);\nALTER TABLE t ADD COLUMN n int NOT NULL DEFAULT 1;";
        assert_eq!(
            adds_column_with_default(file),
            ["ALTER TABLE t ADD COLUMN n int NOT NULL DEFAULT 1"]
        );
    }

    /// The core's own tenant migrations stay cheap to roll out.
    #[test]
    fn core_tenant_migrations_add_no_column_with_a_default() {
        for migration in super::CORE_TENANT_MIGRATIONS.iter() {
            let costly = adds_column_with_default(migration.sql.as_str());
            assert!(
                costly.is_empty(),
                "core migration {}: {costly:?}",
                migration.version
            );
        }
    }
}
