//! Database access for handlers: a transaction pinned to the site's schema.
//!
//! `TenantDb` opens a transaction whose first statement is
//! `SET LOCAL search_path TO "t_<slug>"`, sent with `BEGIN` in one round trip.
//! The setting dies with the transaction, so a pooled connection can never
//! carry one tenant's schema into another's request (early return, panic and
//! PgBouncer in transaction mode included), and `public` is not on the path:
//! a table missing from the tenant's schema fails loudly.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Postgres, Transaction};

use super::registry::{Site, Tenant};
use super::schema::SchemaName;

/// `BEGIN` plus the schema pin, as one simple-protocol round trip.
pub fn begin_sql(schema: &SchemaName) -> String {
    format!("BEGIN; SET LOCAL search_path TO {}", schema.quoted())
}

/// Opens a transaction on `pool` pinned to `schema`.
pub async fn begin_in_schema(
    pool: &PgPool,
    schema: &SchemaName,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin_with(AssertSqlSafe(begin_sql(schema))).await
}

/// A transaction in the current tenant's schema. Dropped without
/// [`TenantDb::commit`], it rolls back.
pub struct TenantDb {
    tx: Transaction<'static, Postgres>,
    tenant: Arc<Tenant>,
}

impl TenantDb {
    pub async fn begin(pool: &PgPool, tenant: Arc<Tenant>) -> Result<TenantDb, sqlx::Error> {
        let tx = begin_in_schema(pool, &tenant.schema).await?;
        Ok(TenantDb { tx, tenant })
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// `sql` tagged with this tenant's schema, for use with sqlx's query
    /// functions: `sqlx::query(db.sql("SELECT … FROM tasks")).fetch_all(db.conn())`.
    ///
    /// PostgreSQL re-plans a cached statement whenever `search_path` differs
    /// from when it was planned, so one shared statement serving tenants in
    /// turn is re-planned on nearly every use. A per-schema comment gives each
    /// (schema, statement) pair its own prepared statement in sqlx's bounded
    /// per-connection cache, planned once. Isolation still comes from the
    /// `SET LOCAL` of the transaction, not from the tag.
    pub fn sql(&self, sql: &'static str) -> AssertSqlSafe<String> {
        AssertSqlSafe(format!("/* {} */ {sql}", self.tenant.schema.as_str()))
    }

    pub fn tenant(&self) -> &Arc<Tenant> {
        &self.tenant
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// A transaction with the default search path, for the shared catalogue.
pub struct PublicDb {
    tx: Transaction<'static, Postgres>,
}

impl PublicDb {
    pub async fn begin(pool: &PgPool) -> Result<PublicDb, sqlx::Error> {
        Ok(PublicDb {
            tx: pool.begin().await?,
        })
    }

    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

/// Why a database extractor could not open its transaction.
#[derive(Debug)]
pub enum DbRejection {
    /// The request is not for a tenant site (a routing bug).
    NotATenant,
    /// The database is unreachable or the pool exhausted.
    Unavailable(sqlx::Error),
}

impl IntoResponse for DbRejection {
    fn into_response(self) -> Response {
        match self {
            DbRejection::NotATenant => {
                tracing::error!("TenantDb used outside a tenant site");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            DbRejection::Unavailable(e) => {
                tracing::error!(error = %e, "database unavailable");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
        }
    }
}

impl<S> FromRequestParts<S> for TenantDb
where
    PgPool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = DbRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, DbRejection> {
        let Some(Site::Tenant(tenant)) = parts.extensions.get::<Site>() else {
            return Err(DbRejection::NotATenant);
        };
        let pool = PgPool::from_ref(state);
        TenantDb::begin(&pool, tenant.clone())
            .await
            .map_err(DbRejection::Unavailable)
    }
}

impl<S> FromRequestParts<S> for PublicDb
where
    PgPool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = DbRejection;

    async fn from_request_parts(_: &mut Parts, state: &S) -> Result<Self, DbRejection> {
        let pool = PgPool::from_ref(state);
        PublicDb::begin(&pool)
            .await
            .map_err(DbRejection::Unavailable)
    }
}
