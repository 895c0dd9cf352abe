//! Background jobs: work that runs on a timer beside the web server, in one
//! place, each logged by name and stopped on shutdown: session sweep,
//! deletion finisher, throttle cleanup, spare tenant schemas
//! (`crate::tenancy::spares`), the usage flush and refresh
//! (`crate::usage::collect`), the metrics upkeep (`crate::metrics`), the
//! tenant connections kept after a read and idle since
//! (`crate::tenancy::affinity`) and the allocator's trim
//! (`crate::allocator`).
//!
//! A job is a function run every period that returns a one-line summary of
//! what it did (empty when nothing); failures are logged and the job runs
//! again at its next tick. `tenantry serve` registers its jobs in
//! [`serve_jobs`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::tenancy::{TenantPool, TenantRegistry};
use crate::usage::Counters;
use crate::usage::collect::Schedule;

/// The running jobs; dropping it without [`Jobs::shutdown`] aborts them.
pub struct Jobs {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Default for Jobs {
    fn default() -> Jobs {
        Jobs {
            tasks: JoinSet::new(),
            stop: watch::channel(false).0,
        }
    }
}

impl Jobs {
    /// Runs `job` every `period`, the first time after one period.
    pub fn every<F, Fut>(&mut self, name: &'static str, period: Duration, mut job: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<String>> + Send,
    {
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => {}
                    _ = stop.changed() => return,
                }
                let started = Instant::now();
                let outcome = tokio::select! {
                    outcome = job() => outcome,
                    _ = stop.changed() => return,
                };
                match outcome {
                    Ok(summary) if summary.is_empty() => {
                        tracing::debug!(job = name, took = ?started.elapsed(), "job ran");
                    }
                    Ok(summary) => {
                        tracing::info!(job = name, took = ?started.elapsed(), "{summary}");
                    }
                    Err(e) => tracing::warn!(job = name, error = format!("{e:#}"), "job failed"),
                }
            }
        });
    }

    /// Stops every job (one in the middle of a run is cancelled at its next
    /// await: each run is one transaction or less, so nothing is half-done).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            self.tasks.shutdown().await;
        }
    }
}

/// The jobs `tenantry serve` runs; `spares` is how many spare tenant
/// schemas to keep ready.
pub fn serve_jobs(
    pool: PgPool,
    tenants: TenantPool,
    registry: Arc<TenantRegistry>,
    usage: Arc<Counters>,
    schedule: Schedule,
    spares: usize,
) -> Jobs {
    let mut jobs = Jobs::default();
    jobs.every("metrics-upkeep", crate::metrics::UPKEEP_PERIOD, || async {
        crate::metrics::upkeep();
        Ok(String::new())
    });
    jobs.every("tenant-connections", Duration::from_secs(1), move || {
        tenants.release_idle(Duration::from_secs(1));
        async { Ok(String::new()) }
    });
    jobs.every("memory-trim", crate::allocator::TRIM_PERIOD, || async {
        crate::allocator::trim();
        Ok(String::new())
    });
    {
        // Often, so that a burst of sign-ups that took them all finds new
        // ones soon; when they are all there a run is one short transaction
        // (the lock, the count, a look for stale spares).
        let pool = pool.clone();
        jobs.every("spare-schemas", Duration::from_secs(2), move || {
            let pool = pool.clone();
            async move {
                let done = crate::tenancy::spares::refill(
                    &pool,
                    &crate::database::TENANT_MIGRATIONS,
                    spares,
                )
                .await?;
                Ok(done.summary())
            }
        });
    }
    {
        let (pool, usage) = (pool.clone(), usage.clone());
        jobs.every("usage-flush", schedule.flush, move || {
            let (pool, usage) = (pool.clone(), usage.clone());
            async move { Ok(crate::usage::collect::flush(&pool, &usage).await?.summary()) }
        });
    }
    {
        let pool = pool.clone();
        jobs.every("usage-refresh", schedule.refresh, move || {
            let pool = pool.clone();
            async move {
                Ok(crate::usage::collect::refresh(&pool, schedule.batch)
                    .await?
                    .summary())
            }
        });
    }
    {
        let (pool, registry) = (pool.clone(), registry.clone());
        jobs.every("session-sweep", Duration::from_secs(15 * 60), move || {
            let (pool, registry) = (pool.clone(), registry.clone());
            async move {
                let removed = crate::tenancy::sessions::sweep_expired(
                    &pool,
                    &registry,
                    &crate::web::auth::SESSIONS,
                )
                .await?;
                Ok(plural(removed, "expired session", "removed"))
            }
        });
    }
    {
        let pool = pool.clone();
        jobs.every("finish-deletions", Duration::from_secs(60), move || {
            let pool = pool.clone();
            async move {
                let done = crate::tenancy::provision::finish_stale_deletions(&pool).await?;
                Ok(if done.is_empty() {
                    String::new()
                } else {
                    format!("finished deleting tenants: {}", done.join(", "))
                })
            }
        });
    }
    {
        let pool = pool.clone();
        jobs.every(
            "sign-in-throttle-cleanup",
            Duration::from_secs(10 * 60),
            move || {
                let pool = pool.clone();
                async move {
                    let removed = crate::web::throttle::forget_old(&pool).await?;
                    Ok(plural(removed, "old sign-in failure record", "forgotten"))
                }
            },
        );
    }
    jobs
}

/// "3 expired sessions removed"; empty for none.
fn plural(n: u64, what: &str, done: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!("1 {what} {done}"),
        n => format!("{n} {what}s {done}"),
    }
}
