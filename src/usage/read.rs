//! Usage as the control panel reads it: from `public.tenant_usage`,
//! `public.tenant_events`,
//! `public.usage_daily` and `public.usage_site_daily` only (a few rows per
//! page, whatever the number of tenants), never from the schemas.

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::tenancy::db;

/// One tenant's figures, as the detail page shows them.
#[derive(Clone, Debug, Default)]
pub struct TenantFigures {
    pub size_bytes: Option<i64>,
    pub tasks: Option<i64>,
    pub active_sessions: Option<i64>,
    pub last_activity: Option<OffsetDateTime>,
    pub refreshed_at: Option<OffsetDateTime>,
    /// Requests in the last 7 UTC days, today included.
    pub requests_7d: i64,
    /// Requests per UTC day, the last 30 days, oldest first: `YYYY-MM-DD`.
    pub per_day: Vec<(String, i64)>,
}

pub async fn tenant(conn: &mut PgConnection, tenant_id: i64) -> Result<TenantFigures, sqlx::Error> {
    type Row = (
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<OffsetDateTime>,
        Option<OffsetDateTime>,
    );
    let row: Option<Row> = db::query_as(
        "SELECT size_bytes, tasks, active_sessions, last_activity, refreshed_at
           FROM public.tenant_usage WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(&mut *conn)
    .await?;
    let per_day: Vec<(String, i64)> = db::query_as(
        "SELECT to_char(d, 'YYYY-MM-DD'), COALESCE(u.requests, 0)::bigint
           FROM generate_series((now() AT TIME ZONE 'UTC')::date - 29,
                                (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d
           LEFT JOIN public.usage_daily u ON u.tenant_id = $1 AND u.day = d::date
          ORDER BY d",
    )
    .bind(tenant_id)
    .fetch_all(&mut *conn)
    .await?;
    let requests_7d = per_day.iter().rev().take(7).map(|(_, n)| n).sum();
    let mut figures = TenantFigures {
        requests_7d,
        per_day,
        ..TenantFigures::default()
    };
    if let Some((size, tasks, sessions, last, refreshed)) = row {
        figures.size_bytes = size;
        figures.tasks = tasks;
        figures.active_sessions = sessions;
        figures.last_activity = last;
        figures.refreshed_at = refreshed;
    }
    Ok(figures)
}

/// The panel home's dashboard figures.
#[derive(Clone, Debug, Default)]
pub struct Dashboard {
    /// Per week (Monday, `YYYY-MM-DD`), the last 12: created, suspended, deleted.
    pub weeks: Vec<(String, i64, i64, i64)>,
    /// Per UTC day, the last 30: tenant apps, control panel.
    pub days: Vec<(String, i64, i64)>,
    /// The 10 tenants with most requests in the last 7 days: slug, name, requests.
    pub busiest: Vec<(String, String, i64)>,
    /// The 10 largest tenants as last measured: slug, name, bytes.
    pub largest: Vec<(String, String, i64)>,
    /// Tenants by status now: active, suspended.
    pub active: i64,
    pub suspended: i64,
    /// The tenant schemas' measured sizes, summed.
    pub tenant_bytes: i64,
}

pub async fn dashboard(conn: &mut PgConnection) -> Result<Dashboard, sqlx::Error> {
    let weeks: Vec<(String, i64, i64, i64)> = db::query_as(
        "WITH weeks AS (
             SELECT generate_series(
                        date_trunc('week', now() AT TIME ZONE 'UTC') - interval '11 weeks',
                        date_trunc('week', now() AT TIME ZONE 'UTC'),
                        interval '1 week') AS week
         ), events AS (
             SELECT date_trunc('week', e.at AT TIME ZONE 'UTC') AS week, e.event
               FROM public.tenant_events e
              WHERE e.at AT TIME ZONE 'UTC' >= (SELECT min(week) FROM weeks)
         )
         SELECT to_char(w.week, 'YYYY-MM-DD'),
                count(e.event) FILTER (WHERE e.event = 'created'),
                count(e.event) FILTER (WHERE e.event = 'suspended'),
                count(e.event) FILTER (WHERE e.event = 'deleted')
           FROM weeks w LEFT JOIN events e ON e.week = w.week
          GROUP BY w.week ORDER BY w.week",
    )
    .fetch_all(&mut *conn)
    .await?;
    let days: Vec<(String, i64, i64)> = db::query_as(
        "SELECT to_char(d, 'YYYY-MM-DD'), COALESCE(t.requests, 0)::bigint,
                COALESCE(c.requests, 0)::bigint
           FROM generate_series((now() AT TIME ZONE 'UTC')::date - 29,
                                (now() AT TIME ZONE 'UTC')::date, interval '1 day') AS d
           LEFT JOIN public.usage_site_daily t ON t.site = 'tenant' AND t.day = d::date
           LEFT JOIN public.usage_site_daily c ON c.site = 'control_panel' AND c.day = d::date
          ORDER BY d",
    )
    .fetch_all(&mut *conn)
    .await?;
    let busiest: Vec<(String, String, i64)> = db::query_as(
        "SELECT t.slug, t.display_name, sum(u.requests)::bigint AS requests
           FROM public.usage_daily u
           JOIN public.tenants t ON t.id = u.tenant_id
          WHERE u.day > (now() AT TIME ZONE 'UTC')::date - 7
          GROUP BY t.id
          ORDER BY requests DESC, t.slug
          LIMIT 10",
    )
    .fetch_all(&mut *conn)
    .await?;
    let largest: Vec<(String, String, i64)> = db::query_as(
        "SELECT t.slug, t.display_name, u.size_bytes
           FROM public.tenant_usage u
           JOIN public.tenants t ON t.id = u.tenant_id
          WHERE u.size_bytes IS NOT NULL
          ORDER BY u.size_bytes DESC, t.slug
          LIMIT 10",
    )
    .fetch_all(&mut *conn)
    .await?;
    let (active, suspended, tenant_bytes): (i64, i64, i64) = db::query_as(
        "SELECT count(*) FILTER (WHERE status = 'active'),
                count(*) FILTER (WHERE status = 'suspended'),
                (SELECT COALESCE(sum(size_bytes), 0)::bigint FROM public.tenant_usage)
           FROM public.tenants",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Dashboard {
        weeks,
        days,
        busiest,
        largest,
        active,
        suspended,
        tenant_bytes,
    })
}

/// "just now", "5 min ago", "3 h ago", "2 days ago", else the date.
pub fn ago(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - at).whole_seconds().max(0);
    match secs {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        86400..172800 => "yesterday".to_owned(),
        172800..2592000 => format!("{} days ago", secs / 86400),
        _ => utc_date(at),
    }
}

/// `YYYY-MM-DD` in UTC.
pub fn utc_date(at: OffsetDateTime) -> String {
    let d = at.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// `YYYY-MM-DD HH:MM UTC`.
pub fn utc_minute(at: OffsetDateTime) -> String {
    let t = at.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", utc_date(t), t.hour(), t.minute())
}

/// RFC 3339 for a `<time datetime>`.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let t = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        utc_date(t),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_reads_like_a_person_would_say_it() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let before = |s: i64| now - time::Duration::seconds(s);
        assert_eq!(ago(before(5), now), "just now");
        assert_eq!(ago(before(-5), now), "just now");
        assert_eq!(ago(before(600), now), "10 min ago");
        assert_eq!(ago(before(7300), now), "2 h ago");
        assert_eq!(ago(before(90_000), now), "yesterday");
        assert_eq!(ago(before(5 * 86400), now), "5 days ago");
        assert_eq!(ago(before(40 * 86400), now), utc_date(before(40 * 86400)));
        assert_eq!(utc_minute(now), "2027-01-15 08:00 UTC");
    }
}
