//! Metrics for the operator's monitoring: `GET /metrics` in the Prometheus
//! text format, on the root domain, behind a bearer token.
//!
//! Counters and histograms are recorded in memory as requests pass (no
//! query per request). Gauges that describe the database (pool, tenants by
//! status, tenants behind on migrations) are read when scraped, with one
//! catalogue query. Every label set is bounded: site kind, route pattern,
//! status, outcome; never a tenant.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;
use crate::tenancy::{Site, db, migrate};

/// Request latency buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The process's recorder, installed on first use (every app instance in
/// a process shares it, as the test suite runs several).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("latency buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Installs the recorder (call before serving, so nothing is lost).
pub fn install() {
    handle();
}

/// How often [`upkeep`] should run (the exporter's own default).
pub const UPKEEP_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds the latency samples recorded since the last call into their
/// histograms. The recorder keeps every sample until then, and a scrape
/// is not guaranteed (without a token there is none): unfolded, they cost
/// 8 bytes a request for as long as the process lives (16 MiB more RSS
/// after the ~1.5 million requests of one benchmark sitting).
pub fn upkeep() {
    handle().run_upkeep();
}

/// The route pattern that answered, carried from the router that matched
/// it out to [`track`].
#[derive(Clone)]
struct Route(String);

/// Route layer (inside each router): records which pattern matched.
pub async fn route_label(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(Route(route));
    }
    response
}

/// Layer around the whole app: counts every request and its latency by site
/// kind, route pattern and status.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let response = next.run(req).await;
    let site = match response.extensions().get::<Site>() {
        Some(Site::ControlPanel) => "control_panel",
        Some(Site::Tenant(_)) => "tenant",
        None => "none",
    };
    let route = response
        .extensions()
        .get::<Route>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "tenantry_http_requests_total",
        "site" => site, "route" => route.clone(), "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "tenantry_http_request_duration_seconds",
        "site" => site, "route" => route
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// A sign-in attempt's outcome: `success`, `failure` or `throttled`.
pub fn sign_in(site: &'static str, outcome: &'static str) {
    metrics::counter!("tenantry_sign_ins_total", "site" => site, "outcome" => outcome).increment(1);
}

/// `GET /metrics` (root domain): 404 without `TENANTRY_METRICS_TOKEN`, 401
/// with a wrong or missing bearer token.
pub async fn endpoint(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state
        .site
        .metrics_token
        .as_deref()
        .filter(|t| !t.is_empty())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
        )
            .into_response();
    }
    if let Err(e) = record_gauges(&state).await {
        tracing::warn!(error = %e, "metrics: catalogue gauges not read");
    }
    let handle = handle();
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// The gauges read at scrape time: the pool, the registry, the catalogue.
async fn record_gauges(state: &AppState) -> Result<(), sqlx::Error> {
    let pool = &state.pool;
    metrics::gauge!("tenantry_db_pool_connections").set(f64::from(pool.size()));
    metrics::gauge!("tenantry_db_pool_idle").set(pool.num_idle() as f64);
    metrics::gauge!("tenantry_db_pool_max").set(f64::from(pool.options().get_max_connections()));
    let (open, idle) = state.tenants.size();
    metrics::gauge!("tenantry_db_tenant_pool_connections").set(f64::from(open));
    metrics::gauge!("tenantry_db_tenant_pool_idle").set(idle as f64);
    metrics::gauge!("tenantry_db_tenant_pool_max").set(state.tenants.slots() as f64);
    metrics::gauge!("tenantry_registry_tenants").set(state.registry.len() as f64);
    metrics::gauge!("tenantry_registry_refresh_age_seconds")
        .set(state.registry.since_refresh().as_secs_f64());
    metrics::gauge!("tenantry_password_hashes_waiting").set(crate::password::waiting() as f64);

    let latest = migrate::latest_version(&crate::database::TENANT_MIGRATIONS);
    let mut tx = db::begin_public(pool).await?;
    let rows: Vec<(String, i64, i64)> = db::query_as(
        "SELECT status, count(*), count(*) FILTER (WHERE schema_version <> $1)
           FROM public.tenants GROUP BY status",
    )
    .bind(latest)
    .fetch_all(&mut *tx)
    .await?;
    let mut behind = 0;
    for status in ["active", "suspended", "deleting"] {
        let (count, late) = rows
            .iter()
            .find(|(s, _, _)| s == status)
            .map_or((0, 0), |(_, c, b)| (*c, *b));
        metrics::gauge!("tenantry_tenants", "status" => status).set(count as f64);
        behind += late;
    }
    metrics::gauge!("tenantry_tenants_behind_on_migrations").set(behind as f64);
    metrics::gauge!("tenantry_tenant_schema_version_latest").set(latest as f64);
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
