//! Creating, suspending and deleting tenants, each in one transaction.
//!
//! PostgreSQL DDL is transactional, so provisioning (catalogue row, default
//! domain, schema, every tenant migration, and whatever the application adds
//! such as a first user) either commits whole or leaves nothing behind.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Executor, Postgres, Transaction};

use super::db;
use super::migrate::{TenantMigrateError, apply_tenant_migrations};
use super::registry::TenantStatus;
use super::schema::{SchemaName, Slug};
use super::spares;

/// What a new tenant starts with: its slug, and values for the
/// application's own columns of `public.tenants` (its profile, such as a
/// name), inserted with the catalogue row.
#[derive(Clone, Debug)]
pub struct NewTenant {
    pub slug: Slug,
    /// `(column, value)` pairs. Column names are the application's
    /// constants, never input (they are quoted all the same).
    pub profile: Vec<(&'static str, String)>,
}

/// The catalogue insert for these profile columns.
fn insert_sql(new: &NewTenant) -> String {
    let mut columns = String::from("slug, schema_name");
    let mut values = String::from("$1, $2");
    for (i, (column, _)) in new.profile.iter().enumerate() {
        columns.push_str(&format!(", \"{}\"", column.replace('"', "\"\"")));
        values.push_str(&format!(", ${}", i + 3));
    }
    format!("INSERT INTO public.tenants ({columns}) VALUES ({values}) RETURNING id")
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("a tenant with the slug \"{0}\" already exists")]
    SlugTaken(String),
    #[error("the domain {0} is already in use")]
    DomainTaken(String),
    #[error("the schema {0} already exists in the database; drop it or choose another slug")]
    SchemaExists(String),
    #[error("tenant migrations failed: {0}")]
    Migrate(#[from] TenantMigrateError),
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for ProvisionError {
    fn from(e: sqlx::Error) -> Self {
        ProvisionError::Database(e)
    }
}

/// A tenant being created: everything so far sits in an open transaction
/// pinned to the new schema. Add the application's own rows through
/// [`Provisioning::conn`], then [`Provisioning::commit`]; dropping it rolls
/// everything back.
pub struct Provisioning {
    tx: Transaction<'static, Postgres>,
    pub tenant_id: i64,
    pub schema: SchemaName,
    pub default_domain: String,
}

impl Provisioning {
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// The default domain of a slug under the root domain.
pub fn default_domain(slug: &Slug, root_domain: &str) -> String {
    format!("{slug}.{root_domain}")
}

/// Inserts the tenant and its default domain and gives it a migrated
/// schema, all in one transaction that the caller commits. The schema is a
/// spare made for these migrations renamed (`spares`), or when there is
/// none, created here with every tenant migration applied.
pub async fn begin(
    pool: &PgPool,
    new: &NewTenant,
    root_domain: &str,
    migrator: &Migrator,
) -> Result<Provisioning, ProvisionError> {
    let mut p = start(pool, new, root_domain, Some(migrator)).await?;
    // Sets the catalogue row's version; for a spare, nothing is pending.
    apply_tenant_migrations(&mut p.tx, &p.schema, migrator).await?;
    Ok(p)
}

/// [`begin`] without the migrations: the row, the default domain and an
/// empty schema, pinned, in the open transaction (a restore migrates it
/// in steps of its own).
pub(super) async fn begin_empty(
    pool: &PgPool,
    new: &NewTenant,
    root_domain: &str,
) -> Result<Provisioning, ProvisionError> {
    start(pool, new, root_domain, None).await
}

/// The row, the default domain and the schema, pinned, in a new
/// transaction: a spare made with `spare_of`'s migrations renamed when
/// there is one, else a new empty schema.
async fn start(
    pool: &PgPool,
    new: &NewTenant,
    root_domain: &str,
    spare_of: Option<&Migrator>,
) -> Result<Provisioning, ProvisionError> {
    let mut tx = db::begin_public(pool).await?;
    let (tenant_id, default_domain) = insert_rows(&mut tx, new, root_domain).await?;
    let schema = new.slug.schema_name();
    let spare = match spare_of {
        Some(migrator) => spares::claim(&mut tx, &spares::fingerprint(migrator)).await?,
        None => None,
    };
    let ddl = match spare {
        Some(spare) => format!(
            "ALTER SCHEMA {} RENAME TO {}",
            spare.quoted(),
            schema.quoted()
        ),
        None => format!("CREATE SCHEMA {}", schema.quoted()),
    };
    tx.execute(AssertSqlSafe(ddl)).await.map_err(|e| {
        match e.as_database_error().and_then(|d| d.code()) {
            Some(code) if code == "42P06" => ProvisionError::SchemaExists(schema.to_string()),
            _ => e.into(),
        }
    })?;
    // A message of its own, as a Citus coordinator needs.
    tx.execute(AssertSqlSafe(db::pin_sql(&schema))).await?;
    Ok(Provisioning {
        tx,
        tenant_id,
        schema,
        default_domain,
    })
}

/// The catalogue row and the default domain: the tenant's id and domain.
async fn insert_rows(
    tx: &mut PgConnection,
    new: &NewTenant,
    root_domain: &str,
) -> Result<(i64, String), ProvisionError> {
    let schema = new.slug.schema_name();
    let domain = default_domain(&new.slug, root_domain);

    let insert = insert_sql(new);
    let mut query = sqlx::query_scalar(AssertSqlSafe(insert.as_str()))
        .persistent(db::prepared_statements())
        .bind(new.slug.as_str())
        .bind(schema.as_str());
    for (_, value) in &new.profile {
        query = query.bind(value);
    }
    let tenant_id: i64 =
        query
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(_) => ProvisionError::SlugTaken(new.slug.to_string()),
                None => e.into(),
            })?;

    db::query(
        "INSERT INTO public.tenant_domains (domain, tenant_id, is_default) VALUES ($1, $2, true)",
    )
    .bind(&domain)
    .bind(tenant_id)
    .execute(&mut *tx)
    .await
    .map_err(|e| match unique_violation(&e) {
        Some(_) => ProvisionError::DomainTaken(domain.clone()),
        None => e.into(),
    })?;

    Ok((tenant_id, domain))
}

/// How long every instance gets to stop routing a tenant marked for
/// deletion before its schema is dropped. The registry follows catalogue
/// changes within milliseconds (`LISTEN/NOTIFY`); the contract allows one
/// second, and this is a little more.
pub const ROUTING_GRACE: std::time::Duration = std::time::Duration::from_millis(1200);

/// Deletes a tenant: its catalogue row, its domains and its schema with all
/// its data. Returns false if there was no such tenant.
///
/// In two steps, so that no request meets a half-dropped schema: the tenant
/// is first marked `deleting` (committed, so every instance takes it out of
/// routing), then after [`ROUTING_GRACE`] the row and the schema go in one
/// transaction. A crash in between leaves a `deleting` tenant that is served
/// nowhere; running the deletion again (or the background sweep) finishes it.
pub async fn delete(pool: &PgPool, slug: &str) -> Result<bool, sqlx::Error> {
    delete_with(pool, slug, async |_| Ok(())).await
}

/// [`delete`], with `also` run in the transaction that drops the schema
/// (the application's own rows, such as an audit entry, commit with it).
pub async fn delete_with(
    pool: &PgPool,
    slug: &str,
    also: impl AsyncFnOnce(&mut PgConnection) -> Result<(), sqlx::Error>,
) -> Result<bool, sqlx::Error> {
    if !mark_deleting(pool, slug).await? {
        return Ok(false);
    }
    tokio::time::sleep(ROUTING_GRACE).await;
    let mut tx = db::begin_public(pool).await?;
    if !finish_delete_in(&mut tx, slug).await? {
        return Ok(false);
    }
    also(&mut tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// Step one of [`delete`]: marks the tenant `deleting` and commits. Returns
/// false if there was no such tenant.
pub async fn mark_deleting(pool: &PgPool, slug: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db::begin_public(pool).await?;
    let done = db::query(
        "UPDATE public.tenants SET status = 'deleting', updated_at = now() WHERE slug = $1",
    )
    .bind(slug)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Step two of [`delete`], inside a transaction the caller owns and commits
/// (so it can add its own rows, such as an audit entry): drops the catalogue
/// row, the domains and the schema of a tenant marked `deleting`. Returns
/// false if there was no such tenant.
pub async fn finish_delete_in(conn: &mut PgConnection, slug: &str) -> Result<bool, sqlx::Error> {
    let schema: Option<String> = db::query_scalar(
        "DELETE FROM public.tenants WHERE slug = $1 AND status = 'deleting' RETURNING schema_name",
    )
    .bind(slug)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(schema) = schema else {
        return Ok(false);
    };
    if let Some(schema) = SchemaName::from_stored(&schema) {
        // Requests that were already inside the schema finish first; one
        // stuck for longer than this fails the deletion, to be retried.
        conn.execute("SET LOCAL lock_timeout = '10s'").await?;
        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", schema.quoted());
        conn.execute(AssertSqlSafe(drop)).await?;
    }
    Ok(true)
}

/// Finishes deletions left half-done (marked `deleting` over a minute ago,
/// by a process that died before dropping the schema). Returns the slugs.
pub async fn finish_stale_deletions(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    let stale: Vec<String> = {
        let mut tx = db::begin_public(pool).await?;
        db::query_scalar(
            "SELECT slug FROM public.tenants
              WHERE status = 'deleting' AND updated_at < now() - interval '1 minute'",
        )
        .fetch_all(&mut *tx)
        .await?
    };
    let mut finished = Vec::new();
    for slug in stale {
        let mut tx = db::begin_public(pool).await?;
        if finish_delete_in(&mut tx, &slug).await? {
            tx.commit().await?;
            finished.push(slug);
        }
    }
    Ok(finished)
}

/// Suspends or reactivates a tenant. Returns false if there was no such tenant.
pub async fn set_status(
    conn: &mut PgConnection,
    slug: &str,
    status: TenantStatus,
) -> Result<bool, sqlx::Error> {
    let done = db::query(
        "UPDATE public.tenants SET status = $1, updated_at = now()
              WHERE slug = $2 AND status <> 'deleting'",
    )
    .bind(status.as_str())
    .bind(slug)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The constraint a unique violation broke, if `e` is one.
pub fn unique_violation(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    (db.code().as_deref() == Some("23505")).then(|| db.constraint().unwrap_or("").to_owned())
}
