//! Spare tenant schemas, made and migrated ahead of time.
//!
//! Creating a schema and running every tenant migration in it takes tens of
//! milliseconds (each table, index and constraint is catalogue work), while
//! renaming a ready schema takes well under one. So a background job keeps a
//! few spares (`tenantry_spare_<id>`, one row each in `public.tenant_spares`)
//! and provisioning takes one in its own transaction: the row is deleted and
//! the schema renamed to the tenant's. A rollback puts both back; with no
//! spare left, provisioning creates the schema as before.
//!
//! A spare is only taken by a build with the same tenant migrations (the
//! `migrations` column, see [`fingerprint`]): after a rollout, a spare of the
//! old set is never handed out half-migrated; the job drops it once it is
//! an hour old (a rolling restart may still be using it until then) and
//! makes new ones. Spares are in no registry and no catalogue row points at
//! them, so no host reaches them and node counts leave them out.

use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Executor};

use super::db;
use super::migrate::{CORE_TENANT_MIGRATIONS, TenantMigrateError, apply_tenant_migrations};
use super::schema::SchemaName;

/// The tenant migrations a schema made with `app` has applied, as a short
/// digest of every migration's version and checksum (the core's and the
/// application's): equal digests, equal schemas.
pub fn fingerprint(app: &Migrator) -> String {
    let mut digest = Sha256::new();
    for (set, migrator) in [("core", &CORE_TENANT_MIGRATIONS), ("app", app)] {
        for m in migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
        {
            digest.update(format!("{set}:{}:", m.version));
            digest.update(&m.checksum);
        }
    }
    digest.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Takes a spare migrated as `fingerprint` says, inside the caller's
/// transaction (a rollback returns it). Concurrent provisionings each get
/// their own (`SKIP LOCKED`); `None` when there is none.
pub(super) async fn claim(
    conn: &mut PgConnection,
    fingerprint: &str,
) -> Result<Option<SchemaName>, sqlx::Error> {
    let id: Option<i64> = db::query_scalar(
        "DELETE FROM public.tenant_spares
          WHERE id = (SELECT id FROM public.tenant_spares WHERE migrations = $1
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id",
    )
    .bind(fingerprint)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(id.map(SchemaName::spare))
}

/// What one [`refill`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refilled {
    pub made: usize,
    pub dropped: usize,
}

impl Refilled {
    /// A line for the job log; empty when nothing changed.
    pub fn summary(&self) -> String {
        match (self.made, self.dropped) {
            (0, 0) => String::new(),
            (made, 0) => format!("{made} spare schema(s) made"),
            (0, dropped) => format!("{dropped} spare schema(s) dropped"),
            (made, dropped) => format!("{made} spare schema(s) made, {dropped} dropped"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpareError {
    #[error("tenant migrations failed in a spare schema: {0}")]
    Migrate(#[from] TenantMigrateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Makes spares for `app`'s migrations until `want` are ready, drops what is
/// over `want` and the spares of other migrations made over an hour ago.
/// Each spare is made in a transaction of its own, under a lock that keeps
/// two instances from making the same ones twice.
pub async fn refill(pool: &PgPool, app: &Migrator, want: usize) -> Result<Refilled, SpareError> {
    let fingerprint = fingerprint(app);
    let mut done = Refilled::default();
    loop {
        let mut tx = db::begin_public(pool).await?;
        db::query("SELECT pg_advisory_xact_lock(hashtext('tenantry.spares'))")
            .execute(&mut *tx)
            .await?;
        let ready: i64 =
            db::query_scalar("SELECT count(*) FROM public.tenant_spares WHERE migrations = $1")
                .bind(&fingerprint)
                .fetch_one(&mut *tx)
                .await?;
        let ready = usize::try_from(ready).unwrap_or(0);
        let extra: Option<i64> = if ready > want {
            db::query_scalar(
                "SELECT id FROM public.tenant_spares WHERE migrations = $1
                  ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED",
            )
            .bind(&fingerprint)
            .fetch_optional(&mut *tx)
            .await?
        } else {
            db::query_scalar(
                "SELECT id FROM public.tenant_spares
                  WHERE migrations <> $1 AND created_at < now() - interval '1 hour'
                  ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED",
            )
            .bind(&fingerprint)
            .fetch_optional(&mut *tx)
            .await?
        };
        if let Some(id) = extra {
            drop_spare(&mut tx, id).await?;
            tx.commit().await?;
            done.dropped += 1;
        } else if ready < want {
            make_spare(&mut tx, app, &fingerprint).await?;
            tx.commit().await?;
            done.made += 1;
        } else {
            return Ok(done);
        }
    }
}

async fn make_spare(
    conn: &mut PgConnection,
    app: &Migrator,
    fingerprint: &str,
) -> Result<(), SpareError> {
    let id: i64 =
        db::query_scalar("INSERT INTO public.tenant_spares (migrations) VALUES ($1) RETURNING id")
            .bind(fingerprint)
            .fetch_one(&mut *conn)
            .await?;
    let schema = SchemaName::spare(id);
    // One statement per message, as a Citus coordinator needs.
    conn.execute(AssertSqlSafe(format!("CREATE SCHEMA {}", schema.quoted())))
        .await?;
    conn.execute(AssertSqlSafe(db::pin_sql(&schema))).await?;
    apply_tenant_migrations(conn, &schema, app).await?;
    Ok(())
}

async fn drop_spare(conn: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    db::query("DELETE FROM public.tenant_spares WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let drop = format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        SchemaName::spare(id).quoted()
    );
    conn.execute(AssertSqlSafe(drop)).await?;
    Ok(())
}
