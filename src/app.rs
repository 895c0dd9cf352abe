//! The router tree: health checks and static files on every host, then each
//! request dispatched by host to the control panel or the tenant app.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware;
use axum::routing::get;
use sqlx::PgPool;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::csrf::CsrfLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::state::AppState;
use crate::tenancy::resolve::SiteDispatch;
use crate::tenancy::sessions::SiteSessionStore;
use crate::web::auth::{SESSION_LIFETIME, SESSIONS};
use crate::web::{csrf, errors, flash, security, static_files};
use crate::{control_panel, workspace};

/// Largest request body accepted anywhere (the logo upload fits in it).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    crate::metrics::install();
    let dispatch = SiteDispatch {
        registry: state.registry.clone(),
        control_panel: site_layers(control_panel::router(state.clone()), &state),
        tenant_app: site_layers(workspace::router(state.clone()), &state),
        trust_proxy: state.site.trust_proxy,
        unknown_host: errors::unknown_host,
    };

    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state(state.pool.clone()))
        .route("/static/{*path}", get(static_files::serve))
        .route_layer(middleware::from_fn(crate::metrics::route_label))
        .fallback(move |req: Request| dispatch.clone().dispatch(req))
        .layer(middleware::from_fn(security::limit_headers));

    let trust_proxy = state.site.trust_proxy;
    let usage = state.usage.clone();
    security::add_headers(router)
        .layer(middleware::from_fn(move |req, next| {
            security::https_hardening(trust_proxy, req, next)
        }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        // The one error-page layer: every error response, a site's or not
        // (a timeout), becomes a page, branded with the site it was for.
        .layer(middleware::from_fn(errors::error_pages))
        // Counts every request by site kind, route pattern and status.
        .layer(middleware::from_fn(crate::metrics::track))
        // And per tenant, in memory, for the usage figures.
        .layer(middleware::from_fn(move |req, next| {
            crate::usage::count(usage.clone(), req, next)
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", id, method = %req.method(), path = req.uri().path())
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(RequestIds::new()))
}

/// What each site's router gets, innermost first: a panic becomes a 500;
/// sessions in the site's own table; flash messages; the CSRF cookie and
/// token; an Origin check for unsafe methods; the request body limit (413).
/// Error pages are rendered once, outside (see `router`).
fn site_layers(router: Router, state: &AppState) -> Router {
    let sessions = SessionManagerLayer::new(SiteSessionStore::with_pools(
        state.pool.clone(),
        state.tenants.clone(),
        SESSIONS,
    ))
    .with_name("tenantry_session")
    .with_http_only(true)
    .with_same_site(SameSite::Lax)
    // `Secure` is added per request when a trusted proxy says https.
    .with_secure(false)
    .with_expiry(Expiry::OnInactivity(SESSION_LIFETIME));
    let key = state.csrf.clone();
    router
        .route_layer(middleware::from_fn(crate::metrics::route_label))
        .layer(CatchPanicLayer::new())
        .layer(sessions)
        .layer(middleware::from_fn(flash::clear_shown))
        .layer(middleware::from_fn(move |req, next| {
            csrf::provide_token(key.clone(), req, next)
        }))
        .layer(CsrfLayer::new())
        // Inside the dispatch, so a 413 is branded with the site too.
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
}

/// 200 while the database answers, 503 otherwise.
async fn readyz(State(pool): State<PgPool>) -> (StatusCode, &'static str) {
    let ping = async {
        let mut tx = crate::tenancy::db::begin_public(&pool).await?;
        crate::tenancy::db::query_scalar::<i32>("SELECT 1")
            .fetch_one(&mut *tx)
            .await
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// Request ids: a per-process random prefix and a counter, cheap and unique
/// enough to find one request in the logs.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    fn new() -> RequestIds {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        RequestIds {
            prefix: format!("{:08x}", nanos ^ std::process::id()).into(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}
