//! The control panel, served on the root domain: super-admins sign in, then
//! create, brand, suspend and delete tenants. Every action is audited.
//!
//! - [`auth`]: login and logout, and the [`SuperAdmin`] guard every other page uses
//! - [`tenants`]: the tenant list, the create form, the detail page, status
//!   changes and deletion, a file each
//! - [`branding`]: the branding editor (multipart, with a logo upload)
//! - [`preview`]: the branded header preview the create and branding forms show
//! - [`domains`]: custom domains
//! - [`impersonate`]: opening a tenant's workspace as one of its users
//! - [`nodes`]: the database nodes, their tenants and sizes, and rebalancing
//! - [`dashboard`]: the usage dashboard on the home page, drawn by [`charts`]
//! - [`audit`]: writing and listing the audit log

pub mod audit;
pub mod auth;
pub mod branding;
pub mod charts;
pub mod dashboard;
pub mod domains;
pub mod impersonate;
pub mod nodes;
pub mod preview;
pub mod tenants;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use axum::routing::{get, post};
use tower_sessions::Session;

use crate::config::SiteConfig;
use crate::state::AppState;
use crate::tenancy::Site;
use crate::tenancy::db;
pub use crate::web::client::{ClientAddr, client_addr};
use crate::web::{AppError, Chrome};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/", get(tenants::list::list))
        .route("/tenants/new", get(tenants::create::new_page))
        .route("/tenants", post(tenants::create::create))
        .route("/tenants/{slug}", get(tenants::detail::detail))
        .route("/tenants/{slug}/logo", get(branding::logo))
        .route("/tenants/{slug}/branding", post(branding::update))
        .route("/tenants/{slug}/domains", post(domains::add))
        .route(
            "/tenants/{slug}/domains/{domain}/delete",
            post(domains::remove),
        )
        .route("/tenants/{slug}/suspend", post(tenants::status::suspend))
        .route(
            "/tenants/{slug}/reactivate",
            post(tenants::status::reactivate),
        )
        .route("/tenants/{slug}/delete", post(tenants::status::delete))
        .route("/tenants/{slug}/impersonate", post(impersonate::start))
        .route("/tenants/{slug}/export", post(tenants::export::export))
        .route(
            "/tenants/{slug}/move",
            post(tenants::placement::move_tenant),
        )
        .route("/nodes", get(nodes::page))
        .route("/nodes/rebalance", post(nodes::rebalance))
        .route("/audit", get(audit::page))
        .route("/metrics", get(crate::metrics::endpoint))
        .with_state(state)
}

/// The page frame of the control panel.
fn chrome() -> Chrome {
    Chrome::for_site(&Site::ControlPanel)
}

/// The signed-in super-admin. As an extractor it is the login guard: with no
/// signed-in super-admin the request is answered with a 303 to `/login`.
#[derive(Clone, Debug)]
pub struct SuperAdmin {
    pub id: i64,
    pub email: String,
    /// The client's address, for the audit log.
    pub addr: Option<String>,
}

impl SuperAdmin {
    /// The top bar's navigation for a page of the signed-in panel.
    pub fn nav(&self, csrf: &crate::web::CsrfToken, current: &'static str) -> PanelNav {
        PanelNav {
            email: self.email.clone(),
            csrf: csrf.0.clone(),
            current,
        }
    }
}

/// What the navigation partial (`control_panel/nav.html`) shows.
#[derive(Clone, Debug)]
pub struct PanelNav {
    pub email: String,
    pub csrf: String,
    /// `tenants`, `new`, `audit` or `nodes`: marks the current link.
    pub current: &'static str,
}

impl FromRequestParts<AppState> for SuperAdmin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<SuperAdmin, AppError> {
        let location = crate::web::auth::sign_in_location(&parts.method, &parts.uri);
        let to_login = || AppError::SignInRequired(location.clone());
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, why)| AppError::Internal(anyhow::anyhow!("no session: {why}")))?;
        let Some(id) = crate::web::auth::signed_in(&session).await? else {
            return Err(to_login());
        };
        let email: Option<String> = {
            let mut tx = db::begin_public(&state.pool).await?;
            db::query_scalar("SELECT email FROM public.super_admins WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        };
        let Some(email) = email else {
            // The account is gone: its session means nothing any more.
            let _ = crate::web::auth::sign_out(&session).await;
            return Err(to_login());
        };
        Ok(SuperAdmin {
            id,
            email,
            addr: client_addr(parts, state.site.trust_proxy),
        })
    }
}

/// How the control panel's pages link to a tenant's domains: with the public
/// URL's scheme and port when one is set (`TENANTRY_PUBLIC_URL`), else
/// scheme-relative on the port the control panel was reached on (from
/// `Host`), so the links also work on a development server such as
/// `localhost:8080`.
#[derive(Clone, Debug)]
pub struct TenantLinks {
    /// `https:` or empty (scheme-relative).
    scheme: String,
    /// `:port` or empty.
    port: String,
}

impl TenantLinks {
    pub fn new(site: &SiteConfig, headers: &axum::http::HeaderMap) -> TenantLinks {
        match &site.public_url {
            Some(url) => TenantLinks {
                scheme: format!("{}:", url.scheme()),
                port: url.port_suffix(),
            },
            None => TenantLinks {
                scheme: String::new(),
                port: port_suffix(headers),
            },
        }
    }

    /// The address of the site on `domain`.
    pub fn url(&self, domain: &str) -> String {
        format!("{}//{domain}{}/", self.scheme, self.port)
    }

    /// The site on `domain` as a CSP source (`[scheme://]host[:port]`).
    pub fn csp_source(&self, domain: &str) -> String {
        if self.scheme.is_empty() {
            format!("{domain}{}", self.port)
        } else {
            format!("{}//{domain}{}", self.scheme, self.port)
        }
    }
}

/// `:port` from the request's `Host`, or nothing.
fn port_suffix(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            if h.starts_with('[') {
                h.rsplit_once("]:").map(|(_, p)| p)
            } else {
                h.rsplit_once(':').map(|(_, p)| p)
            }
        })
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .map(|p| format!(":{p}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(public_url: Option<&str>) -> SiteConfig {
        SiteConfig {
            base_domain: "example.com".into(),
            trust_proxy: false,
            public_url: public_url.map(|u| u.parse().unwrap()),
            metrics_token: None,
        }
    }

    #[test]
    fn tenant_links_and_their_csp_sources_follow_the_public_url_or_the_host() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::HOST,
            "example.com:8080".parse().unwrap(),
        );
        let links = TenantLinks::new(&site(None), &headers);
        assert_eq!(links.url("acme.example.com"), "//acme.example.com:8080/");
        assert_eq!(
            links.csp_source("acme.example.com"),
            "acme.example.com:8080"
        );

        let links = TenantLinks::new(&site(Some("https://example.com")), &headers);
        assert_eq!(links.url("acme.example.com"), "https://acme.example.com/");
        assert_eq!(
            links.csp_source("acme.example.com"),
            "https://acme.example.com"
        );
        let csp = crate::web::security::csp_with_form_action(&links.csp_source("acme.example.com"))
            .unwrap();
        assert!(
            csp.to_str()
                .unwrap()
                .contains("form-action 'self' https://acme.example.com;")
        );
        assert!(crate::web::security::csp_with_form_action("x; script-src *").is_none());
    }
}
