//! One `tower_sessions::SessionStore` for every site: a tenant's sessions
//! live in its own schema's `tenantry_sessions` table (created by the core's own
//! tenant migration, `src/tenancy/migrations`), the root site's in a table
//! the application names. Which one a call uses comes from the site in
//! scope (the task-local the dispatcher sets), so a session id from one
//! tenant means nothing in another, and dropping a tenant's schema drops its
//! sessions.
//!
//! Each row also holds its session's owner (`owner_id`): the integer the
//! application stores under its owner key in the session data (an account
//! id), so all of one account's sessions can be ended with one statement.
//!
//! A store call with no site in scope (say, a `Session` moved into a spawned
//! task) is an error, never a silent default.

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, Postgres, Transaction};
use time::OffsetDateTime;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};

use super::affinity::{InFlight, TenantPool};
use super::db::{begin_public, in_schema, prepared_statements};
use super::registry::{Site, TenantRegistry};
use super::resolve::current_site;
use super::schema::SchemaName;

/// Where the sessions go, as the application chooses.
#[derive(Clone, Copy, Debug)]
pub struct SessionConfig {
    /// The root site's sessions table, schema-qualified, with the columns of
    /// the tenant table (`id`, `data`, `expiry_date`, `owner_id`); `None`
    /// when the root site keeps no sessions. An application constant, never
    /// input.
    pub root_table: Option<&'static str>,
    /// The session data key whose integer value is the session's owner.
    pub owner_key: &'static str,
}

#[derive(Clone, Debug)]
pub struct SiteSessionStore {
    pool: PgPool,
    tenants: TenantPool,
    config: SessionConfig,
}

impl SiteSessionStore {
    /// A store whose tenant sessions go through `tenants`, the connections
    /// the tenants' pages use (so a session is read on a warm backend).
    pub fn with_pools(
        pool: PgPool,
        tenants: TenantPool,
        config: SessionConfig,
    ) -> SiteSessionStore {
        SiteSessionStore {
            pool,
            tenants,
            config,
        }
    }

    /// A store with tenant connections of its own, as many as `pool` holds.
    pub fn new(pool: PgPool, config: SessionConfig) -> SiteSessionStore {
        let tenants = TenantPool::beside(&pool, pool.options().get_max_connections());
        SiteSessionStore::with_pools(pool, tenants, config)
    }

    /// A transaction for the site in scope and the name of its sessions
    /// table. Tenant transactions are pinned to the tenant's schema like any
    /// `TenantDb` (and PgBouncer's transaction mode keeps each one on one
    /// server connection).
    async fn begin(&self) -> Result<(Transaction<'static, Postgres>, Table, Option<InFlight>)> {
        match current_site() {
            Some(Site::ControlPanel) => {
                let Some(table) = self.config.root_table else {
                    return Err(Error::Backend(
                        "this application keeps no sessions on the root site".into(),
                    ));
                };
                let tx = begin_public(&self.pool).await.map_err(backend)?;
                Ok((tx, Table::Root(table), None))
            }
            Some(Site::Tenant(t)) => {
                let (tx, in_flight) = self.tenants.begin(&t).await.map_err(backend)?;
                Ok((tx, Table::Tenant(t.schema.clone()), Some(in_flight)))
            }
            None => Err(Error::Backend(
                "session store used with no site in scope (was a Session moved into a spawned task?)"
                    .into(),
            )),
        }
    }
}

enum Table {
    Root(&'static str),
    Tenant(SchemaName),
}

impl Table {
    /// The statement for this site: `{t}` becomes the table. Tenant
    /// statements name the table through the pinned search path and are
    /// the schema's own text ([`in_schema`]), so each is prepared once per
    /// connection.
    fn sql(&self, template: &str) -> AssertSqlSafe<String> {
        AssertSqlSafe(match self {
            Table::Root(table) => template.replace("{t}", table),
            Table::Tenant(schema) => {
                in_schema(schema, &template.replace("{t}", "tenantry_sessions"))
            }
        })
    }
}

/// Store errors are strings; this prefix marks "the database is down".
const UNAVAILABLE: &str = "database unavailable: ";

fn backend(e: sqlx::Error) -> Error {
    if super::db::is_unavailable(&e) {
        Error::Backend(format!("{UNAVAILABLE}{e}"))
    } else {
        Error::Backend(e.to_string())
    }
}

/// Whether a store error means the database could not be reached.
pub fn is_unavailable(e: &Error) -> bool {
    matches!(e, Error::Backend(msg) if msg.starts_with(UNAVAILABLE))
}

impl SiteSessionStore {
    fn owner(&self, record: &Record) -> Option<i64> {
        record
            .data
            .get(self.config.owner_key)
            .and_then(serde_json::Value::as_i64)
    }
}

fn data_json(record: &Record) -> Result<serde_json::Value> {
    serde_json::to_value(&record.data).map_err(|e| Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for SiteSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let (mut tx, table, _in_flight) = self.begin().await?;
        let data = data_json(record)?;
        loop {
            let inserted = sqlx::query(table.sql(
                "INSERT INTO {t} (id, data, expiry_date, owner_id) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO NOTHING",
            ))
            .persistent(prepared_statements())
            .bind(record.id.to_string())
            .bind(&data)
            .bind(record.expiry_date)
            .bind(self.owner(record))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                break;
            }
            // A 128-bit collision: astronomically rare, but never overwrite.
            record.id = Id::default();
        }
        tx.commit().await.map_err(backend)
    }

    /// Updates a session that exists; never re-creates one. A session ended
    /// while a request of it was in flight (logout elsewhere, deactivation, a
    /// password change) stays ended when that request saves at its end.
    async fn save(&self, record: &Record) -> Result<()> {
        let (mut tx, table, _in_flight) = self.begin().await?;
        sqlx::query(
            table.sql("UPDATE {t} SET data = $2, expiry_date = $3, owner_id = $4 WHERE id = $1"),
        )
        .persistent(prepared_statements())
        .bind(record.id.to_string())
        .bind(data_json(record)?)
        .bind(record.expiry_date)
        .bind(self.owner(record))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let (mut tx, table, _in_flight) = self.begin().await?;
        let row: Option<(serde_json::Value, OffsetDateTime)> = sqlx::query_as(
            table.sql("SELECT data, expiry_date FROM {t} WHERE id = $1 AND expiry_date > now()"),
        )
        .persistent(prepared_statements())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        // Read-only: dropping the transaction rolls it back without a wait.
        drop(tx);
        let Some((data, expiry_date)) = row else {
            return Ok(None);
        };
        let data = serde_json::from_value(data).map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let (mut tx, table, _in_flight) = self.begin().await?;
        sqlx::query(table.sql("DELETE FROM {t} WHERE id = $1"))
            .persistent(prepared_statements())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }
}

/// Ends every session of one owner in the schema on `conn`'s search path
/// (call it inside a `TenantDb` transaction), except `keep` if given.
pub async fn end_sessions_of(
    conn: &mut sqlx::PgConnection,
    owner: i64,
    keep: Option<&Id>,
) -> std::result::Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM tenantry_sessions WHERE owner_id = $1 AND id <> $2")
        .persistent(prepared_statements())
        .bind(owner)
        .bind(keep.map(Id::to_string).unwrap_or_default())
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Ends every session of a tenant (when it is suspended, say), inside the
/// caller's transaction on any search path.
pub async fn end_all_sessions(
    conn: &mut sqlx::PgConnection,
    schema: &SchemaName,
) -> std::result::Result<u64, sqlx::Error> {
    let sql = format!("DELETE FROM {}.tenantry_sessions", schema.quoted());
    Ok(conn.execute(AssertSqlSafe(sql)).await?.rows_affected())
}

/// How many schemas one sweep connection visits before it is replaced: a
/// backend keeps every schema it touched in its caches, so one connection
/// over 10,000 schemas grew to 195 MiB.
const SCHEMAS_PER_SWEEP_CONNECTION: usize = 500;

/// Deletes expired sessions of the root site and of every tenant the
/// registry serves, one statement per schema (a Citus coordinator cannot
/// forward a multi-statement string to a worker), on connections of the
/// sweep's own, each closed after [`SCHEMAS_PER_SWEEP_CONNECTION`] schemas,
/// so no backend of the pool learns every schema. Returns how many
/// sessions went.
pub async fn sweep_expired(
    pool: &PgPool,
    registry: &TenantRegistry,
    config: &SessionConfig,
) -> std::result::Result<u64, sqlx::Error> {
    let mut removed = 0;
    if let Some(table) = config.root_table {
        let root = format!("DELETE FROM {table} WHERE expiry_date <= now()");
        removed += pool.execute(AssertSqlSafe(root)).await?.rows_affected();
    }
    for schemas in registry.schemas().chunks(SCHEMAS_PER_SWEEP_CONNECTION) {
        let mut conn = pool.connect_options().connect().await?;
        for schema in schemas {
            let sql = format!(
                "DELETE FROM {}.tenantry_sessions WHERE expiry_date <= now()",
                schema.quoted()
            );
            // A schema dropped since the registry was read fails; the next
            // sweep will not list it.
            match conn.execute(AssertSqlSafe(sql)).await {
                Ok(done) => removed += done.rows_affected(),
                Err(e) => {
                    tracing::debug!(error = %e, schema = schema.as_str(), "session sweep failed");
                }
            }
        }
        let _ = conn.close().await;
    }
    Ok(removed)
}
