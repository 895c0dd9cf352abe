//! Database access for handlers: a transaction pinned to the site's schema.
//!
//! `TenantDb` opens a transaction whose first statement is
//! `SET LOCAL search_path TO "t_<slug>"`, sent with `BEGIN` in one round trip
//! (see [`begin_sql`]).
//! The setting dies with the transaction, so a pooled connection can never
//! carry one tenant's schema into another's request (early return, panic and
//! PgBouncer in transaction mode included), and `public` is not on the path:
//! a table missing from the tenant's schema fails loudly. A statement can
//! also name the schema itself ([`in_schema`]) and run without a pin
//! (`TenantPool::fetch_optional`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgRow};
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{AssertSqlSafe, FromRow, Postgres, Transaction};

use super::affinity::{InFlight, TenantPool};
use super::schema::SchemaName;
use super::tenant::Tenant;

static PREPARED: AtomicBool = AtomicBool::new(true);

/// Whether queries use named prepared statements cached per connection (the
/// default). Turn off behind a transaction-mode PgBouncer older than 1.21,
/// which cannot carry named statements from one transaction to the next:
/// queries then use unnamed statements, parsed inside their transaction.
pub fn use_prepared_statements(on: bool) {
    PREPARED.store(on, Ordering::Relaxed);
}

pub fn prepared_statements() -> bool {
    PREPARED.load(Ordering::Relaxed)
}

static DIRECT: AtomicBool = AtomicBool::new(true);

/// Whether the database URL reaches PostgreSQL itself, so that a
/// connection's session settings stay its own. Not behind a transaction
/// pooler (`DATABASE_LISTEN_URL` set): there a server connection serves
/// other clients in turn, and only a transaction's own settings are safe.
pub fn connect_directly(on: bool) {
    DIRECT.store(on, Ordering::Relaxed);
}

pub fn connected_directly() -> bool {
    DIRECT.load(Ordering::Relaxed)
}

/// A query on a shared (public) statement text, prepared when allowed.
pub fn query(sql: &'static str) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(sql).persistent(prepared_statements())
}

/// [`query`], mapping rows to `T`.
pub fn query_as<T>(sql: &'static str) -> QueryAs<'static, Postgres, T, PgArguments>
where
    T: for<'r> FromRow<'r, PgRow>,
{
    sqlx::query_as(sql).persistent(prepared_statements())
}

/// [`query`], returning the first column.
pub fn query_scalar<T>(sql: &'static str) -> QueryScalar<'static, Postgres, T, PgArguments>
where
    (T,): for<'r> FromRow<'r, PgRow>,
{
    sqlx::query_scalar(sql).persistent(prepared_statements())
}

/// Whether a database error means "the database is not reachable right now"
/// (as opposed to a bug): such requests answer 503, not 500.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    )
}

/// `BEGIN` plus the schema pin, as one simple-protocol round trip.
///
/// It also asks for generic plans. A tenant's statements are its own (see
/// [`TenantDb::query`]), so with thousands of busy tenants each one runs only
/// a few times on its connection, and PostgreSQL's default plans the first
/// five runs of a prepared statement afresh: at 10,000 tenants nine runs in
/// ten were planned, and planning cost twice what executing did. A generic
/// plan is made once, on the first run. (The tenant queries are point and
/// index-ordered lookups whose plan does not depend on the values; one whose
/// plan would should be written as two statements.)
pub fn begin_sql(schema: &SchemaName) -> String {
    format!(
        "BEGIN; {}; SET LOCAL plan_cache_mode TO force_generic_plan",
        pin_sql(schema)
    )
}

/// The schema pin alone, for a transaction already open (on Citus, sent
/// apart from the DDL before it: a coordinator takes one statement per
/// message).
pub fn pin_sql(schema: &SchemaName) -> String {
    format!("SET LOCAL search_path TO {}", schema.quoted())
}

/// Opens a transaction with `begin()` as its first statement, passing over
/// pooled connections that turn out to be dead.
///
/// The pool does not ping connections before handing them out (that would
/// cost a round trip on every request); instead, a connection the database
/// closed (after a restart, say) fails at `BEGIN`, where nothing has happened
/// yet, so it is safe to drop it and try the next. One attempt more than the
/// pool holds is enough to reach a freshly opened connection.
pub(crate) async fn begin_on_live_connection(
    pool: &PgPool,
    begin: impl Fn() -> String,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut attempts = pool.options().get_max_connections() + 1;
    loop {
        match pool.begin_with(AssertSqlSafe(begin())).await {
            Err(e) if attempts > 1 && is_dead_connection(&e) => {
                tracing::debug!(error = %e, "dropping a dead pooled connection");
                attempts -= 1;
            }
            result => return result,
        }
    }
}

/// A transaction with the default search path (for the shared catalogue).
pub async fn begin_public(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    begin_on_live_connection(pool, || "BEGIN".to_owned()).await
}

/// Where a statement names its tenant's schema itself: `FROM {schema}.tasks`
/// (see [`in_schema`]).
pub const SCHEMA_MARK: &str = "{schema}";

/// `sql` as `schema`'s own statement text.
///
/// PostgreSQL re-plans a cached statement whenever `search_path` differs
/// from when it was planned, so one shared statement serving tenants in
/// turn is re-planned on nearly every use. Each (schema, statement) pair
/// is therefore its own text, and so its own prepared statement in sqlx's
/// bounded per-connection cache, planned once: a statement that names the
/// schema ([`SCHEMA_MARK`]) gets it quoted in place, any other a per-schema
/// comment. Inside a [`TenantDb`] isolation comes from the transaction's
/// `SET LOCAL`, not from the text; a statement run without one
/// ([`TenantPool::fetch_optional`]) must name the schema wherever it names
/// a table.
pub fn in_schema(schema: &SchemaName, sql: &str) -> String {
    if sql.contains(SCHEMA_MARK) {
        sql.replace(SCHEMA_MARK, &schema.quoted())
    } else {
        format!("/* {} */ {sql}", schema.as_str())
    }
}

/// An error that means the connection itself is gone, not the query.
pub(super) fn is_dead_connection(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("57P")),
        sqlx::Error::Protocol(msg) => msg.contains("closed"),
        _ => false,
    }
}

/// A transaction in the current tenant's schema, on one of the tenant's
/// own connections (see `affinity`). Dropped without [`TenantDb::commit`],
/// it rolls back.
pub struct TenantDb {
    tx: Transaction<'static, Postgres>,
    tenant: Arc<Tenant>,
    _in_flight: InFlight,
}

impl TenantDb {
    pub async fn begin(pool: &TenantPool, tenant: Arc<Tenant>) -> Result<TenantDb, sqlx::Error> {
        let (tx, in_flight) = pool.begin(&tenant).await?;
        Ok(TenantDb {
            tx,
            tenant,
            _in_flight: in_flight,
        })
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// `sql` for this tenant ([`in_schema`]).
    fn tagged(&self, sql: &'static str) -> AssertSqlSafe<String> {
        AssertSqlSafe(in_schema(&self.tenant.schema, sql))
    }

    /// A query in this tenant's schema: `db.query("DELETE FROM tasks WHERE id = $1")
    /// .bind(id).execute(db.conn())`.
    pub fn query(&self, sql: &'static str) -> Query<'static, Postgres, PgArguments> {
        sqlx::query(self.tagged(sql)).persistent(prepared_statements())
    }

    /// [`TenantDb::query`], mapping rows to `T`.
    pub fn query_as<T>(&self, sql: &'static str) -> QueryAs<'static, Postgres, T, PgArguments>
    where
        T: for<'r> FromRow<'r, PgRow>,
    {
        sqlx::query_as(self.tagged(sql)).persistent(prepared_statements())
    }

    /// [`TenantDb::query`], returning the first column.
    pub fn query_scalar<T>(
        &self,
        sql: &'static str,
    ) -> QueryScalar<'static, Postgres, T, PgArguments>
    where
        (T,): for<'r> FromRow<'r, PgRow>,
    {
        sqlx::query_scalar(self.tagged(sql)).persistent(prepared_statements())
    }

    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    /// Commits what this transaction did so far, runs `work` holding no
    /// connection (a password hash: tens of milliseconds in which a pooled
    /// connection would serve nobody), then goes on in a new transaction
    /// on the same tenant. What was read before is not locked any more:
    /// writes that depend on it must check again (or use constraints).
    pub async fn without_connection<T>(
        self,
        pool: &TenantPool,
        work: impl Future<Output = T>,
    ) -> Result<(TenantDb, T), sqlx::Error> {
        let tenant = self.tenant.clone();
        self.tx.commit().await?;
        let done = work.await;
        Ok((TenantDb::begin(pool, tenant).await?, done))
    }
}

/// A transaction with the default search path, for the shared catalogue.
pub struct PublicDb {
    tx: Transaction<'static, Postgres>,
}

impl PublicDb {
    pub async fn begin(pool: &PgPool) -> Result<PublicDb, sqlx::Error> {
        Ok(PublicDb {
            tx: begin_public(pool).await?,
        })
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}
