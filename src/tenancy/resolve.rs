//! Host resolution and site dispatch: the first thing every request meets
//! after the health checks.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tower::ServiceExt;

use super::host::normalize_host;
use super::registry::{Site, TenantRegistry};

tokio::task_local! {
    /// The site of the request being served. Set around the whole site router,
    /// so code that runs inside it without access to the request (the session
    /// store) knows whose schema to use.
    static CURRENT_SITE: Site;
}

/// The site in scope, or `None` outside a request (a spawned task, say).
pub fn current_site() -> Option<Site> {
    CURRENT_SITE.try_with(Clone::clone).ok()
}

/// Runs `fut` with `site` in scope, as the dispatcher does for each request.
pub async fn with_site<F: Future>(site: Site, fut: F) -> F::Output {
    CURRENT_SITE.scope(site, fut).await
}

/// Answers for a host that serves no site. Given by the application, so it
/// can render its own page; it must name no tenant.
pub type UnknownHost = fn(StatusCode) -> Response;

/// Sends each request to the control-panel or the tenant router by its host.
#[derive(Clone)]
pub struct SiteDispatch {
    pub registry: Arc<TenantRegistry>,
    pub control_panel: Router,
    pub tenant_app: Router,
    pub trust_proxy: bool,
    pub unknown_host: UnknownHost,
}

impl SiteDispatch {
    pub async fn dispatch(self, mut req: Request) -> Response {
        let Some(raw_host) = request_host(&req, self.trust_proxy) else {
            return (self.unknown_host)(StatusCode::BAD_REQUEST);
        };
        let Some(site) = normalize_host(&raw_host).and_then(|h| self.registry.resolve(&h)) else {
            return (self.unknown_host)(StatusCode::NOT_FOUND);
        };
        let router = match site {
            Site::ControlPanel => self.control_panel,
            Site::Tenant(_) => self.tenant_app,
        };
        req.extensions_mut().insert(site.clone());
        let mut response = match with_site(site.clone(), router.oneshot(req)).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        // The tenant was deleted while this request was being served (its
        // schema may have vanished under it): answer as for any unknown
        // host, never with a 5xx.
        if let Site::Tenant(tenant) = &site {
            let status = response.status();
            if (status.is_server_error() || status == StatusCode::NOT_FOUND)
                && !self.registry.is_served(tenant.id)
            {
                tracing::info!(
                    tenant = tenant.slug,
                    %status,
                    "tenant deleted during the request; answered as gone"
                );
                return (self.unknown_host)(StatusCode::NOT_FOUND);
            }
        }
        // Which site answered, for layers outside the dispatch (the
        // application's error pages are branded with it).
        response.extensions_mut().insert(site);
        response
    }
}

/// The host the client asked for: `X-Forwarded-Host` when a trusted proxy is
/// in front, else `Host`, else the URI's authority (HTTP/2).
fn request_host(req: &Request, trust_proxy: bool) -> Option<String> {
    let headers: &HeaderMap = req.headers();
    let header_str = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(',').next().unwrap_or("").trim().to_owned())
    };
    if trust_proxy && let Some(host) = header_str("x-forwarded-host") {
        return Some(host);
    }
    // RFC 9112 §3.2: more than one Host is a bad request (two could be read
    // differently by a proxy in front and by us).
    let mut hosts = headers.get_all(header::HOST).iter();
    if let Some(host) = hosts.next() {
        if hosts.next().is_some() {
            return None;
        }
        return host.to_str().ok().map(str::to_owned);
    }
    req.uri().authority().map(|a| a.as_str().to_owned())
}
