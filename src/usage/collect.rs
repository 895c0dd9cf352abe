//! The usage jobs: [`flush`] writes the in-memory counters to `public`,
//! [`refresh`] measures a bounded batch of tenants.

use std::collections::HashMap;

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgPool};
use time::Date;

use super::{Counted, Counters, SiteKey};
use crate::tenancy::{Slug, db, nodes};

/// When the usage jobs run, and how many tenants a refresh measures.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub flush: std::time::Duration,
    pub refresh: std::time::Duration,
    pub batch: u32,
}

/// Days of per-tenant request history kept.
pub const KEEP_DAYS: i32 = 400;

/// What one [`flush`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub requests: u64,
    /// Tenants with requests in it.
    pub tenants: usize,
}

impl Flushed {
    /// The job's log line; empty when nothing was counted.
    pub fn summary(&self) -> String {
        match (self.requests, self.tenants) {
            (0, _) => String::new(),
            (r, t) => format!(
                "{r} request{} added ({t} tenant{} with requests)",
                if r == 1 { "" } else { "s" },
                if t == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Adds what `counters` counted since the last flush to the daily rows
/// (additively, so several instances flushing add up) and moves each
/// tenant's last activity forward, in one transaction. If it fails, the
/// counts go back into the counters for the next flush.
pub async fn flush(pool: &PgPool, counters: &Counters) -> Result<Flushed, sqlx::Error> {
    let counted = counters.take();
    if counted.is_empty() {
        return Ok(Flushed::default());
    }
    match write(pool, &counted).await {
        Ok(flushed) => Ok(flushed),
        Err(e) => {
            counters.restore(counted);
            Err(e)
        }
    }
}

async fn write(pool: &PgPool, counted: &Counted) -> Result<Flushed, sqlx::Error> {
    // In key order, so two instances flushing at once take row locks in the
    // same order (no deadlock).
    let mut rows: Vec<_> = counted.iter().collect();
    rows.sort_by_key(|((site, day), _)| (*site != SiteKey::ControlPanel, site_id(*site), *day));

    let (mut ids, mut days, mut requests, mut lasts) = (vec![], vec![], vec![], vec![]);
    let mut per_site: HashMap<(&'static str, Date), i64> = HashMap::new();
    let mut total = 0;
    for ((site, day), tally) in &rows {
        let n = i64::try_from(tally.requests).unwrap_or(i64::MAX);
        total += tally.requests;
        let kind = match site {
            SiteKey::ControlPanel => "control_panel",
            SiteKey::Tenant(id) => {
                ids.push(*id);
                days.push(*day);
                requests.push(n);
                lasts.push(tally.last);
                "tenant"
            }
        };
        *per_site.entry((kind, *day)).or_default() += n;
    }
    let mut sites: Vec<_> = per_site.into_iter().collect();
    sites.sort();
    let (mut site_kinds, mut site_days, mut site_requests) = (vec![], vec![], vec![]);
    for ((kind, day), n) in sites {
        site_kinds.push(kind);
        site_days.push(day);
        site_requests.push(n);
    }

    let mut tx = db::begin_public(pool).await?;
    db::query(
        "INSERT INTO public.usage_daily AS u (tenant_id, day, requests, last_activity)
         SELECT * FROM unnest($1::bigint[], $2::date[], $3::bigint[], $4::timestamptz[])
          ORDER BY 1, 2
         ON CONFLICT (tenant_id, day) DO UPDATE
            SET requests = u.requests + EXCLUDED.requests,
                last_activity = GREATEST(u.last_activity, EXCLUDED.last_activity)",
    )
    .bind(&ids)
    .bind(&days)
    .bind(&requests)
    .bind(&lasts)
    .execute(&mut *tx)
    .await?;
    db::query(
        "INSERT INTO public.usage_site_daily AS s (site, day, requests)
         SELECT * FROM unnest($1::text[], $2::date[], $3::bigint[]) ORDER BY 1, 2
         ON CONFLICT (site, day) DO UPDATE SET requests = s.requests + EXCLUDED.requests",
    )
    .bind(&site_kinds)
    .bind(&site_days)
    .bind(&site_requests)
    .execute(&mut *tx)
    .await?;
    // The list's "last activity" column; only tenants that still exist.
    let tenants = db::query_scalar::<i64>(
        "WITH latest AS (
             SELECT id, max(last) AS last
               FROM unnest($1::bigint[], $2::timestamptz[]) AS x (id, last)
              GROUP BY id
         ), moved AS (
             INSERT INTO public.tenant_usage AS tu (tenant_id, last_activity)
             SELECT l.id, l.last FROM latest l JOIN public.tenants t ON t.id = l.id
              ORDER BY l.id
             ON CONFLICT (tenant_id) DO UPDATE
                SET last_activity = GREATEST(tu.last_activity, EXCLUDED.last_activity)
             RETURNING 1
         )
         SELECT count(*) FROM latest",
    )
    .bind(&ids)
    .bind(&lasts)
    .fetch_one(&mut *tx)
    .await?;
    db::query("DELETE FROM public.usage_daily WHERE day < current_date - $1::integer")
        .bind(KEEP_DAYS)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Flushed {
        requests: total,
        tenants: usize::try_from(tenants).unwrap_or(0),
    })
}

fn site_id(site: SiteKey) -> i64 {
    match site {
        SiteKey::ControlPanel => 0,
        SiteKey::Tenant(id) => id,
    }
}

/// What one [`refresh`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    pub measured: usize,
    /// Slugs whose schema could not be read (their old figures are kept).
    pub failed: Vec<String>,
}

impl Refreshed {
    /// The job's log line; empty when there was no tenant to measure.
    pub fn summary(&self) -> String {
        if self.measured == 0 && self.failed.is_empty() {
            return String::new();
        }
        let mut line = format!(
            "measured {} tenant{} (stalest first)",
            self.measured,
            if self.measured == 1 { "" } else { "s" }
        );
        if !self.failed.is_empty() {
            line.push_str(&format!("; not readable: {}", self.failed.join(", ")));
        }
        line
    }
}

/// Measures the `batch` tenants measured longest ago (never-measured ones
/// first): the size of each one's schema (one query for the batch, on
/// whichever node holds it), its tasks and its active sessions (one small
/// query in each schema), written to `public.tenant_usage` in one
/// transaction. A batch at a time, so 10,000 schemas are never swept at
/// once; every tenant comes round again after `tenants / batch` runs.
pub async fn refresh(pool: &PgPool, batch: u32) -> Result<Refreshed, sqlx::Error> {
    let stalest: Vec<(i64, String)> = {
        let mut tx = db::begin_public(pool).await?;
        db::query_as(
            "SELECT t.id, t.slug
               FROM public.tenants t
               LEFT JOIN public.tenant_usage u ON u.tenant_id = t.id
              WHERE t.status <> 'deleting'
              ORDER BY u.refreshed_at ASC NULLS FIRST, t.id
              LIMIT $1",
        )
        .bind(i64::from(batch.max(1)))
        .fetch_all(&mut *tx)
        .await?
    };
    if stalest.is_empty() {
        return Ok(Refreshed::default());
    }
    let tenants: Vec<(i64, Slug)> = stalest
        .into_iter()
        .filter_map(|(id, slug)| Slug::parse(&slug).ok().map(|s| (id, s)))
        .collect();
    let schemas: Vec<String> = tenants
        .iter()
        .map(|(_, s)| s.schema_name().as_str().to_owned())
        .collect();
    // A connection of its own, closed after the batch: measuring a schema
    // loads its relations into the backend's caches, and a pooled backend
    // that measured every tenant in turn would grow without bound (after a
    // 10,000-tenant benchmark, a public pool's backend held 78 MiB, the
    // tenant pool's at most 53: `tenancy::affinity` bounds those).
    let mut conn = pool.connect_options().connect().await?;
    let measured = measure(&mut conn, &tenants, &schemas).await;
    let _ = conn.close().await;
    let (done, (ids, size_col, task_col, session_col)) = measured?;
    let mut tx = db::begin_public(pool).await?;
    db::query(
        "INSERT INTO public.tenant_usage AS tu
                (tenant_id, size_bytes, tasks, active_sessions, refreshed_at)
         SELECT x.id, x.size, x.tasks, x.sessions, now()
           FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
                AS x (id, size, tasks, sessions)
           JOIN public.tenants t ON t.id = x.id
          ORDER BY x.id
         ON CONFLICT (tenant_id) DO UPDATE
            SET size_bytes = COALESCE(EXCLUDED.size_bytes, tu.size_bytes),
                tasks = COALESCE(EXCLUDED.tasks, tu.tasks),
                active_sessions = COALESCE(EXCLUDED.active_sessions, tu.active_sessions),
                refreshed_at = EXCLUDED.refreshed_at",
    )
    .bind(&ids)
    .bind(&size_col)
    .bind(&task_col)
    .bind(&session_col)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done)
}

/// The columns of one batch's `tenant_usage` rows: ids, sizes, tasks and
/// sessions (`None` for a schema that could not be read).
type Figures = (
    Vec<i64>,
    Vec<Option<i64>>,
    Vec<Option<i64>>,
    Vec<Option<i64>>,
);

/// Sizes (one query for the batch) and each schema's counts, on `conn`.
async fn measure(
    conn: &mut PgConnection,
    tenants: &[(i64, Slug)],
    schemas: &[String],
) -> Result<(Refreshed, Figures), sqlx::Error> {
    let sizes = nodes::tenant_sizes(conn, schemas).await?;
    let mut done = Refreshed::default();
    let (mut ids, mut size_col, mut task_col, mut session_col) = (vec![], vec![], vec![], vec![]);
    for (id, slug) in tenants {
        let schema = slug.schema_name();
        let counts = figures_in_schema(conn, &schema).await;
        let (tasks, sessions) = match counts {
            Ok((tasks, sessions)) => {
                done.measured += 1;
                (Some(tasks), Some(sessions))
            }
            Err(e) => {
                tracing::debug!(tenant = %slug, error = %e, "usage: schema not readable");
                done.failed.push(slug.as_str().to_owned());
                (None, None)
            }
        };
        ids.push(*id);
        size_col.push(sizes.get(schema.as_str()).copied());
        task_col.push(tasks);
        session_col.push(sessions);
    }
    Ok((done, (ids, size_col, task_col, session_col)))
}

/// Tasks and unexpired sessions of one tenant, read in its own schema (the
/// task count from the board's kept per-column counts, not a count over
/// the tasks). Not prepared: the job visits a different schema each time.
async fn figures_in_schema(
    conn: &mut PgConnection,
    schema: &crate::tenancy::SchemaName,
) -> Result<(i64, i64), sqlx::Error> {
    let mut tx = conn
        .begin_with(AssertSqlSafe(db::begin_sql(schema)))
        .await?;
    let figures: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COALESCE(sum(n), 0)::bigint FROM task_counts),
                (SELECT count(*) FROM tenantry_sessions WHERE expiry_date > now())",
    )
    .persistent(false)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(figures)
}
