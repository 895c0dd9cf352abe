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
//! tenant's schema itself, run on its own ([`TenantPool::fetch_optional`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgPool, PgPoolOptions, PgRow};
use sqlx::query::QueryAs;
use sqlx::{AssertSqlSafe, Executor, FromRow, Postgres, SqlSafeStr, Transaction};

use super::db::{
    begin_sql, connected_directly, in_schema, is_dead_connection, prepared_statements,
};
use super::tenant::Tenant;

/// Counters of requests in flight, by a hash of the tenant (a collision
/// only widens two tenants' share a little).
const LOAD_BUCKETS: usize = 4096;

/// For the whole life of a tenant connection, what [`begin_sql`] sets for
/// each transaction (see there why): a read on its own
/// ([`TenantPool::fetch_optional`]) has no transaction to set it in. Only on
/// a direct connection; behind a transaction pooler such a read gets
/// PostgreSQL's default (its first five runs planned each).
const GENERIC_PLANS: &str = "SET plan_cache_mode TO force_generic_plan";

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

/// One connection, and the tenants it has served since it was opened.
#[derive(Debug)]
struct Slot {
    pool: PgPool,
    served: Arc<Served>,
}

#[derive(Debug)]
struct Served {
    bound: usize,
    tenants: Mutex<HashSet<i64>>,
}

impl Served {
    fn tenants(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.tenants.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, tenant: i64) {
        self.tenants().insert(tenant);
    }

    /// Past the bound, the connection is closed at its next release.
    fn outgrown(&self) -> bool {
        self.tenants().len() > self.bound
    }

    fn forget(&self) {
        self.tenants().clear();
    }
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
            .map(|_| {
                let served = Arc::new(Served {
                    bound: tenants_per_backend,
                    tenants: Mutex::default(),
                });
                let (fresh, release) = (served.clone(), served.clone());
                let pool = options
                    .clone()
                    .after_connect(move |conn, _| {
                        fresh.forget();
                        Box::pin(async move {
                            if connected_directly() && prepared_statements() {
                                conn.execute(GENERIC_PLANS).await?;
                            }
                            Ok(())
                        })
                    })
                    .after_release(move |_, _| {
                        let keep = !release.outgrown();
                        if !keep {
                            tracing::debug!(
                                bound = release.bound,
                                "replacing a tenant connection that has served its share of tenants"
                            );
                        }
                        Box::pin(async move { Ok(keep) })
                    })
                    .connect_lazy_with(connect.clone());
                Slot { pool, served }
            })
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
        self.on_tenant_connection(tenant, |conn| {
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
            .on_tenant_connection(tenant, |mut conn| {
                let query = query();
                async move { query.fetch_optional(&mut *conn).await }
            })
            .await?;
        Ok(row)
    }

    /// Runs `first` on one of `tenant`'s connections (see the module's doc
    /// for which), passing over connections the database closed: one that
    /// fails at its first statement (a `BEGIN`, or a read) has changed
    /// nothing, so the next one is tried, up to one more than there are
    /// slots (a freshly opened connection).
    async fn on_tenant_connection<T, F>(
        &self,
        tenant: &Tenant,
        first: impl Fn(PoolConnection<Postgres>) -> F,
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
            match first(conn).await {
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
            if let Some(conn) = slot.pool.try_acquire() {
                return Ok((conn, slot));
            }
        }
        let slot = &slots[(home + others) % n];
        Ok((slot.pool.acquire().await?, slot))
    }

    /// Connections open, and idle, over all slots.
    pub fn size(&self) -> (u32, usize) {
        self.inner.slots.iter().fold((0, 0), |(open, idle), s| {
            (open + s.pool.size(), idle + s.pool.num_idle())
        })
    }

    /// How many slots (the most connections this pool opens).
    pub fn slots(&self) -> usize {
        self.inner.slots.len()
    }

    pub async fn close(&self) {
        for slot in &self.inner.slots {
            slot.pool.close().await;
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
