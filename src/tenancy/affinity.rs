//! Tenant-affine connections: each tenant has a home connection, so each
//! PostgreSQL backend serves a stable share of the tenants.
//!
//! A backend keeps what it learns about a schema (catalogue entries, the
//! plans of its prepared statements) for as long as it lives. A backend that
//! serves every tenant in turn holds all of them — its memory grows with the
//! number of tenants, and with a bounded statement cache it re-prepares
//! nearly every statement once the busy tenants outnumber what the cache
//! holds. So tenant transactions run on `N` one-connection pools ("slots"),
//! and a tenant's requests go to its home slot: with 10,000 busy tenants and
//! 16 slots, each backend sees 625 of them, always the same ones.
//!
//! One tenant's burst must not queue on one connection, though: a tenant's
//! share widens with its own load. A request that finds `k` others of its
//! tenant in flight may take any idle slot among the `k + 1` from the home
//! slot on, and otherwise waits for the `(k + 1)`-th. Many tenants with a
//! request or two each stay at home; one tenant with sixteen requests in
//! flight spreads over sixteen slots.
//!
//! And a backend's caches must stay bounded however many tenants there are:
//! each slot counts the distinct tenants its connection has served, and past
//! [`TENANTS_PER_BACKEND`] the connection is closed when it is next released
//! (its successor starts empty). With enough slots for the busy tenants
//! (`TENANTRY_DB_POOL_SIZE`) that never happens, and each backend stays warm.
//!
//! A tenant's work on its connection is a pinned transaction
//! ([`TenantPool::begin`]) or one read-only statement that names the
//! tenant's schema itself, run on its own ([`TenantPool::fetch_optional`]),
//! after which the slot keeps the connection for its next user instead of
//! handing it back to the pool (`slot`: no check on release).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, PgRow};
use sqlx::query::QueryAs;
use sqlx::{AssertSqlSafe, FromRow, Postgres, SqlSafeStr, Transaction};

use super::db::{begin_sql, in_schema, is_dead_connection, prepared_statements};
use super::slot::Slot;
use super::tenant::Tenant;

/// Counters of requests in flight, by a hash of the tenant (a collision
/// only widens two tenants' share a little).
const LOAD_BUCKETS: usize = 4096;

/// A statement for [`TenantPool::fetch_optional`] to add its parameters to.
pub type Read<T> = QueryAs<'static, Postgres, T, PgArguments>;

/// The most tenants one backend serves before it is replaced. A backend
/// keeps ~200 KiB per tenant it has served (catalogue entries, and the plans
/// of the board's three statements; measured in `docs/BENCHMARKS.md`): this
/// many stay under 64 MiB.
pub const TENANTS_PER_BACKEND: usize = 250;

/// The tenant-affine connections of one database.
#[derive(Clone, Debug)]
pub struct TenantPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    slots: Box<[Slot]>,
    load: Box<[AtomicU32]>,
}

/// Holds a tenant's place in its load count while its transaction lives.
#[derive(Debug)]
pub struct InFlight {
    pool: Arc<Inner>,
    bucket: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.pool.load[self.bucket].fetch_sub(1, Ordering::Relaxed);
    }
}

impl TenantPool {
    /// `slots` one-connection pools with the settings of `like` (its
    /// connect options, lifetimes and checks), opened lazily.
    pub fn beside(like: &PgPool, slots: u32) -> TenantPool {
        TenantPool::bounded(like, slots, TENANTS_PER_BACKEND)
    }

    /// [`TenantPool::beside`], each connection replaced once it has served
    /// more than `tenants_per_backend` tenants.
    pub fn bounded(like: &PgPool, slots: u32, tenants_per_backend: usize) -> TenantPool {
        let options: PgPoolOptions = like.options().clone().max_connections(1).min_connections(0);
        let connect = (*like.connect_options()).clone();
        let slots = (0..slots.max(1))
            .map(|_| Slot::open(&options, &connect, tenants_per_backend))
            .collect();
        TenantPool {
            inner: Arc::new(Inner {
                slots,
                load: (0..LOAD_BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            }),
        }
    }

    /// Opens a transaction pinned to `tenant`'s schema on one of its slots.
    pub async fn begin(
        &self,
        tenant: &Tenant,
    ) -> Result<(Transaction<'static, Postgres>, InFlight), sqlx::Error> {
        let sql = begin_sql(&tenant.schema);
        self.on_tenant_connection(tenant, |conn, _| {
            Transaction::begin(conn, Some(AssertSqlSafe(sql.clone()).into_sql_str()))
        })
        .await
    }

    /// Runs `sql`, one read-only statement that names `tenant`'s schema
    /// wherever it names a table (`{schema}.tasks`, see [`in_schema`]), on
    /// one of the tenant's connections as a transaction of its own: no
    /// `BEGIN` with the pin, and no `ROLLBACK`, each a round trip. Its row,
    /// if there is one. `bind` adds the parameters.
    ///
    /// With unnamed statements (an older PgBouncer in front) it runs in a
    /// pinned transaction instead: only a transaction keeps an unnamed
    /// statement's Parse and Bind on one server connection.
    pub async fn fetch_optional<T>(
        &self,
        tenant: &Tenant,
        sql: &'static str,
        bind: impl Fn(Read<T>) -> Read<T>,
    ) -> Result<Option<T>, sqlx::Error>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let text = in_schema(&tenant.schema, sql);
        let query =
            || bind(sqlx::query_as(AssertSqlSafe(text.clone())).persistent(prepared_statements()));
        if !prepared_statements() {
            let (mut tx, _in_flight) = self.begin(tenant).await?;
            return query().fetch_optional(&mut *tx).await;
        }
        let (row, _in_flight) = self
            .on_tenant_connection(tenant, |mut conn, slot| {
                let query = query();
                async move {
                    let row = query.fetch_optional(&mut *conn).await?;
                    slot.keep(conn);
                    Ok(row)
                }
            })
            .await?;
        Ok(row)
    }

    /// Runs `first` on one of `tenant`'s connections (see the module's doc
    /// for which), passing over connections the database closed: one that
    /// fails at its first statement (a `BEGIN`, or a read) has changed
    /// nothing, so the next one is tried, up to one more than there are
    /// slots (a freshly opened connection).
    async fn on_tenant_connection<'a, T, F>(
        &'a self,
        tenant: &Tenant,
        first: impl Fn(PoolConnection<Postgres>, &'a Slot) -> F,
    ) -> Result<(T, InFlight), sqlx::Error>
    where
        F: Future<Output = Result<T, sqlx::Error>>,
    {
        let n = self.inner.slots.len();
        let hash = mix(tenant.id as u64);
        let home = (hash % n as u64) as usize;
        let bucket = ((hash >> 32) % LOAD_BUCKETS as u64) as usize;
        let others = self.inner.load[bucket].fetch_add(1, Ordering::Relaxed) as usize;
        let in_flight = InFlight {
            pool: self.inner.clone(),
            bucket,
        };
        let mut attempts = n + 1;
        loop {
            let (conn, slot) = self.connection(home, others).await?;
            slot.served.note(tenant.id);
            match first(conn, slot).await {
                Err(e) if attempts > 1 && is_dead_connection(&e) => {
                    tracing::debug!(error = %e, "dropping a dead tenant connection");
                    attempts -= 1;
                }
                result => return result.map(|t| (t, in_flight)),
            }
        }
    }

    /// An idle connection among the `others + 1` slots from `home` on, or
    /// else the `(others + 1)`-th slot's once it is free.
    async fn connection(
        &self,
        home: usize,
        others: usize,
    ) -> Result<(PoolConnection<Postgres>, &Slot), sqlx::Error> {
        let slots = &self.inner.slots;
        let n = slots.len();
        for i in 0..(others + 1).min(n) {
            let slot = &slots[(home + i) % n];
            if let Some(conn) = slot.try_take() {
                return Ok((conn, slot));
            }
        }
        let slot = &slots[(home + others) % n];
        Ok((slot.take().await?, slot))
    }

    /// Connections open, and idle, over all slots.
    pub fn size(&self) -> (u32, usize) {
        self.inner.slots.iter().fold((0, 0), |(open, idle), s| {
            let kept = usize::from(s.has_kept());
            (open + s.pool.size(), idle + s.pool.num_idle() + kept)
        })
    }

    /// Hands connections kept unused for `idle` after a read back to their
    /// pools, whose idle timeout and checks then apply (a job calls this).
    pub fn release_idle(&self, idle: Duration) {
        for slot in &self.inner.slots {
            slot.release_idle(idle);
        }
    }

    /// How many slots (the most connections this pool opens).
    pub fn slots(&self) -> usize {
        self.inner.slots.len()
    }

    pub async fn close(&self) {
        for slot in &self.inner.slots {
            // Closed first, so that no read keeps its connection after.
            let closed = slot.pool.close();
            slot.release_idle(Duration::ZERO);
            closed.await;
        }
    }
}

/// A 64-bit mix (splitmix64's finaliser): consecutive tenant ids land on
/// unrelated slots and buckets.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::mix;

    #[test]
    fn tenants_spread_evenly_over_slots() {
        let mut per_slot = [0u32; 16];
        for id in 1..=10_000u64 {
            per_slot[(mix(id) % 16) as usize] += 1;
        }
        let (min, max) = (
            per_slot.iter().min().unwrap(),
            per_slot.iter().max().unwrap(),
        );
        assert!(*min > 550 && *max < 700, "{per_slot:?}");
    }
}
