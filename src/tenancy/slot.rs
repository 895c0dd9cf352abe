//! One of `affinity`'s connections: a one-connection sqlx pool, the
//! tenants its connection has served, and the connection itself while it
//! is kept between reads.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Executor, Postgres};

use super::db::{connected_directly, prepared_statements};

/// For the whole life of a tenant connection, what `begin_sql` sets for
/// each transaction (see there why): a read on its own
/// (`TenantPool::fetch_optional`) has no transaction to set it in. Only on
/// a direct connection; behind a transaction pooler such a read gets
/// PostgreSQL's default (its first five runs planned each).
const GENERIC_PLANS: &str = "SET plan_cache_mode TO force_generic_plan";

/// Reads kept in a row on a slot's connection before one goes back
/// through the pool, whose checks on release (the connection's age, the
/// tenants it has served) then run.
const KEPT_READS: u32 = 100;

/// One connection, the tenants it has served since it was opened, and the
/// connection itself while it is kept between reads.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) pool: PgPool,
    pub(super) served: Arc<Served>,
    kept: Mutex<Kept>,
}

/// A read on its own leaves nothing to roll back or check on its
/// connection, yet sqlx checks every connection handed back to its pool
/// with a round trip. So after a read the slot keeps the connection for its
/// next user, unless someone already waits for it on the pool.
#[derive(Debug, Default)]
struct Kept {
    conn: Option<(PoolConnection<Postgres>, Instant)>,
    /// Requests waiting on the pool for the slot's connection.
    waiting: usize,
    /// Reads since the connection last went back through the pool.
    reads: u32,
}

impl Slot {
    /// A slot whose pool has `options` (one connection) and `connect`,
    /// opened lazily, its connection replaced once it has served more than
    /// `bound` tenants.
    pub(super) fn open(options: &PgPoolOptions, connect: &PgConnectOptions, bound: usize) -> Slot {
        let served = Arc::new(Served {
            bound,
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
        Slot {
            pool,
            served,
            kept: Mutex::default(),
        }
    }

    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot's connection if it is free now.
    pub(super) fn try_take(&self) -> Option<PoolConnection<Postgres>> {
        let kept = self.kept().conn.take();
        kept.map(|(conn, _)| conn)
            .or_else(|| self.pool.try_acquire())
    }

    /// The slot's connection once it is free.
    pub(super) async fn take(&self) -> Result<PoolConnection<Postgres>, sqlx::Error> {
        let waiting = {
            let mut kept = self.kept();
            if let Some((conn, _)) = kept.conn.take() {
                return Ok(conn);
            }
            kept.waiting += 1;
            Waiting(self)
        };
        let conn = self.pool.acquire().await;
        drop(waiting);
        conn
    }

    /// Takes `conn` back after a read: kept for the next user, or handed
    /// back to the pool (to whoever waits there, or for its checks).
    pub(super) fn keep(&self, conn: PoolConnection<Postgres>) {
        let mut kept = self.kept();
        kept.reads += 1;
        let keep = kept.conn.is_none()
            && kept.waiting == 0
            && kept.reads < KEPT_READS
            && !self.pool.is_closed()
            && !self.served.outgrown();
        if keep {
            kept.conn = Some((conn, Instant::now()));
        } else {
            kept.reads = 0;
            drop(kept);
            drop(conn);
        }
    }

    /// Whether the connection is kept (idle, out of the pool).
    pub(super) fn has_kept(&self) -> bool {
        self.kept().conn.is_some()
    }

    /// Hands the connection back to the pool if it has been kept unused
    /// for `idle` (the pool then closes it once idle for long enough).
    pub(super) fn release_idle(&self, idle: Duration) {
        let mut kept = self.kept();
        if kept
            .conn
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= idle)
        {
            let conn = kept.conn.take();
            drop(kept);
            drop(conn);
        }
    }
}

/// Counts a request among those waiting on a slot's pool while it lives.
struct Waiting<'a>(&'a Slot);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.kept().waiting -= 1;
    }
}

/// The tenants a slot's connection has served since it was opened.
#[derive(Debug)]
pub(super) struct Served {
    bound: usize,
    tenants: Mutex<HashSet<i64>>,
}

impl Served {
    fn tenants(&self) -> MutexGuard<'_, HashSet<i64>> {
        self.tenants.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn note(&self, tenant: i64) {
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
