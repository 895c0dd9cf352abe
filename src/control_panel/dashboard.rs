//! The dashboard above the tenant list on the panel's home: tenants over
//! time, requests per day per site, the busiest tenants and the database's
//! size, as server-drawn charts (see [`charts`](super::charts)) with their
//! numbers in tables. Read from the usage tables (`crate::usage::read`):
//! a handful of small queries, whatever the number of tenants.

use sqlx::PgPool;

use super::charts::{Chart, Columns, thousands};
use super::nodes::human_bytes;
use crate::tenancy::{db, nodes};
use crate::usage::read;

/// One figure in the dashboard's summary row.
#[derive(Clone, Debug)]
pub struct Figure {
    pub label: &'static str,
    pub value: String,
    pub note: String,
}

#[derive(Clone, Debug)]
pub struct Dashboard {
    pub figures: Vec<Figure>,
    pub tenants: Chart,
    pub requests: Chart,
    pub busiest: Chart,
    pub largest: Chart,
}

impl Dashboard {
    pub async fn load(pool: &PgPool) -> Result<Dashboard, sqlx::Error> {
        let data = {
            let mut tx = db::begin_public(pool).await?;
            read::dashboard(&mut tx).await?
        };
        let (db_bytes, node_count) = nodes::database_size(pool).await?;
        Ok(Dashboard::from_data(&data, db_bytes, node_count))
    }

    pub fn from_data(data: &read::Dashboard, db_bytes: i64, node_count: i64) -> Dashboard {
        let weeks: Vec<String> = data.weeks.iter().map(|w| w.0.clone()).collect();
        let tenants = Chart::columns(Columns {
            id: "chart-tenants",
            label: "Tenants per week",
            category: "Week of",
            categories: &weeks,
            series: &[
                ("Created", data.weeks.iter().map(|w| w.1).collect()),
                ("Suspended", data.weeks.iter().map(|w| w.2).collect()),
                ("Deleted", data.weeks.iter().map(|w| w.3).collect()),
            ],
            stacked: false,
            label_every: 3,
            empty: "No tenant was created, suspended or deleted in the last 12 weeks.",
        });
        let days: Vec<String> = data.days.iter().map(|d| d.0.clone()).collect();
        let requests = Chart::columns(Columns {
            id: "chart-requests",
            label: "Requests per day",
            category: "Day (UTC)",
            categories: &days,
            series: &[
                ("Tenant apps", data.days.iter().map(|d| d.1).collect()),
                ("Control panel", data.days.iter().map(|d| d.2).collect()),
            ],
            stacked: true,
            label_every: 7,
            empty: "No requests counted yet. Counts are written about once a minute.",
        });
        let named = |rows: &[(String, String, i64)]| -> Vec<(String, String, i64)> {
            rows.iter()
                .map(|(slug, name, n)| (name.clone(), format!("{name} ({slug})"), *n))
                .collect()
        };
        let busiest = Chart::ranking(
            "chart-busiest",
            "Busiest tenants, last 7 days",
            ("Tenant", "Requests"),
            &named(&data.busiest),
            thousands,
            "No tenant has had a request in the last 7 days.",
        );
        let largest = Chart::ranking(
            "chart-largest",
            "Largest tenants on disk",
            ("Tenant", "Size"),
            &named(&data.largest),
            human_bytes,
            "No tenant has been measured yet; sizes are measured a batch of tenants at a time.",
        );
        let week: i64 = data.days.iter().rev().take(7).map(|d| d.1 + d.2).sum();
        let today = data.days.last().map_or(0, |d| d.1 + d.2);
        let figures = vec![
            Figure {
                label: "Tenants",
                value: thousands(data.active + data.suspended),
                note: format!("{} active, {} suspended", data.active, data.suspended),
            },
            Figure {
                label: "Requests, last 7 days",
                value: thousands(week),
                note: format!("{} today (UTC)", thousands(today)),
            },
            Figure {
                label: "Database size",
                value: human_bytes(db_bytes),
                note: if node_count > 1 {
                    format!("on {node_count} nodes")
                } else {
                    "on one node".to_owned()
                },
            },
            Figure {
                label: "Tenant schemas",
                value: human_bytes(data.tenant_bytes),
                note: "as last measured".to_owned(),
            },
        ];
        Dashboard {
            figures,
            tenants,
            requests,
            busiest,
            largest,
        }
    }
}

/// A tenant's usage as its detail page shows it.
#[derive(Clone, Debug)]
pub struct TenantUsage {
    pub figures: read::TenantFigures,
    pub chart: Chart,
}

impl TenantUsage {
    pub async fn load(
        conn: &mut sqlx::PgConnection,
        tenant_id: i64,
    ) -> Result<TenantUsage, sqlx::Error> {
        let figures = read::tenant(conn, tenant_id).await?;
        let days: Vec<String> = figures.per_day.iter().map(|d| d.0.clone()).collect();
        let chart = Chart::columns(Columns {
            id: "chart-tenant-requests",
            label: "Requests per day, last 30 days",
            category: "Day (UTC)",
            categories: &days,
            series: &[("Requests", figures.per_day.iter().map(|d| d.1).collect())],
            stacked: false,
            label_every: 7,
            empty: "No requests counted for this tenant in the last 30 days.",
        });
        Ok(TenantUsage { figures, chart })
    }

    fn measured(v: Option<i64>) -> String {
        v.map_or_else(|| "not measured yet".to_owned(), thousands)
    }

    pub fn size(&self) -> String {
        self.figures
            .size_bytes
            .map_or_else(|| "not measured yet".to_owned(), human_bytes)
    }

    pub fn tasks(&self) -> String {
        TenantUsage::measured(self.figures.tasks)
    }

    pub fn sessions(&self) -> String {
        TenantUsage::measured(self.figures.active_sessions)
    }

    pub fn requests_7d(&self) -> String {
        thousands(self.figures.requests_7d)
    }

    /// "5 min ago (2026-12-02 14:05 UTC)", or none yet.
    pub fn last_activity(&self) -> String {
        self.figures.last_activity.map_or_else(
            || "none yet".to_owned(),
            |at| {
                format!(
                    "{} ({})",
                    read::ago(at, time::OffsetDateTime::now_utc()),
                    read::utc_minute(at)
                )
            },
        )
    }

    /// When the figures were measured, or that they have not been yet.
    pub fn refreshed(&self) -> String {
        self.figures.refreshed_at.map_or_else(
            || "Size, tasks and sessions have not been measured yet; a job measures a batch of tenants every minute or so.".to_owned(),
            |at| format!("Size, tasks and sessions as measured {}.", read::ago(at, time::OffsetDateTime::now_utc())),
        )
    }
}
