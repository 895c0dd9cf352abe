//! One `tower_sessions::SessionStore` for every site: sessions of the control
//! panel live in `public.cp_sessions`, a tenant's in its own schema's
//! `sessions` table. Which one a call uses comes from the site in scope (the
//! task-local the dispatcher sets), so a session id from one tenant means
//! nothing in another, and dropping a tenant's schema drops its sessions.
//!
//! A store call with no site in scope (say, a `Session` moved into a spawned
//! task) is an error, never a silent default.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Executor};
use time::OffsetDateTime;
use tower_sessions::SessionStore;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};

use super::registry::{Site, TenantRegistry};
use super::resolve::current_site;

/// The session data key whose value (an integer) is copied into the table's
/// `user_id` column, so all of one user's sessions can be ended at once.
pub const OWNER_KEY: &str = "user_id";

#[derive(Clone, Debug)]
pub struct SiteSessionStore {
    pool: PgPool,
}

impl SiteSessionStore {
    pub fn new(pool: PgPool) -> SiteSessionStore {
        SiteSessionStore { pool }
    }
}

/// The sessions table of the site in scope, schema-qualified and quoted.
fn table() -> Result<String> {
    match current_site() {
        Some(Site::ControlPanel) => Ok("public.cp_sessions".to_owned()),
        Some(Site::Tenant(t)) => Ok(format!("{}.sessions", t.schema.quoted())),
        None => Err(Error::Backend(
            "session store used with no site in scope (was a Session moved into a spawned task?)"
                .into(),
        )),
    }
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

fn owner(record: &Record) -> Option<i64> {
    record
        .data
        .get(OWNER_KEY)
        .and_then(serde_json::Value::as_i64)
}

fn data_json(record: &Record) -> Result<serde_json::Value> {
    serde_json::to_value(&record.data).map_err(|e| Error::Encode(e.to_string()))
}

// The SQL names a schema, so each text is per tenant: `persistent(false)`
// keeps it out of the per-connection statement cache.
#[async_trait]
impl SessionStore for SiteSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (id, data, expiry_date, user_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
            table()?
        );
        let data = data_json(record)?;
        loop {
            let inserted = sqlx::query(AssertSqlSafe(sql.as_str()))
                .persistent(false)
                .bind(record.id.to_string())
                .bind(&data)
                .bind(record.expiry_date)
                .bind(owner(record))
                .execute(&self.pool)
                .await
                .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            // A 128-bit collision: astronomically rare, but never overwrite.
            record.id = Id::default();
        }
    }

    /// Updates a session that exists; never re-creates one. A session ended
    /// while a request of it was in flight (logout elsewhere, deactivation, a
    /// password change) stays ended when that request saves at its end.
    async fn save(&self, record: &Record) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET data = $2, expiry_date = $3, user_id = $4 WHERE id = $1",
            table()?
        );
        sqlx::query(AssertSqlSafe(sql))
            .persistent(false)
            .bind(record.id.to_string())
            .bind(data_json(record)?)
            .bind(record.expiry_date)
            .bind(owner(record))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let sql = format!(
            "SELECT data, expiry_date FROM {} WHERE id = $1 AND expiry_date > now()",
            table()?
        );
        let row: Option<(serde_json::Value, OffsetDateTime)> = sqlx::query_as(AssertSqlSafe(sql))
            .persistent(false)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
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
        let sql = format!("DELETE FROM {} WHERE id = $1", table()?);
        sqlx::query(AssertSqlSafe(sql))
            .persistent(false)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// Ends every session of one user in the schema on `conn`'s search path
/// (call it inside a `TenantDb` transaction), except `keep` if given.
pub async fn end_sessions_of(
    conn: &mut sqlx::PgConnection,
    user_id: i64,
    keep: Option<&Id>,
) -> std::result::Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
        .bind(user_id)
        .bind(keep.map(Id::to_string).unwrap_or_default())
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Deletes expired sessions now and then: the control panel's, then every
/// tenant's, a batch of schemas per round trip on a single connection.
pub async fn sweep_expired(
    pool: PgPool,
    registry: std::sync::Arc<TenantRegistry>,
    every: Duration,
) {
    const BATCH: usize = 100;
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let started = std::time::Instant::now();
        let result = async {
            let mut conn = pool.acquire().await?;
            conn.execute("DELETE FROM public.cp_sessions WHERE expiry_date <= now()")
                .await?;
            for batch in registry.schemas().chunks(BATCH) {
                let sql: String = batch
                    .iter()
                    .map(|s| {
                        format!(
                            "DELETE FROM {}.sessions WHERE expiry_date <= now();",
                            s.quoted()
                        )
                    })
                    .collect();
                // A schema dropped since the registry was read fails its
                // batch; the next sweep will not list it.
                if let Err(e) = conn.execute(AssertSqlSafe(sql)).await {
                    tracing::debug!(error = %e, "session sweep batch failed");
                }
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        match result {
            Ok(()) => tracing::debug!(took = ?started.elapsed(), "expired sessions swept"),
            Err(e) => tracing::warn!(error = %e, "session sweep failed"),
        }
    }
}
