//! A tenant's page (`GET /tenants/{slug}`), which holds the branding, domain,
//! status and delete forms. The handlers of those forms show it again, with
//! 422, through [`invalid`] when what was sent is not accepted.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::parse_slug;
use super::placement::Placement;
use crate::branding::Color;
use crate::control_panel::audit::{self, AuditRow};
use crate::control_panel::branding::BrandingValues;
use crate::control_panel::dashboard::TenantUsage;
use crate::control_panel::impersonate::{self, ActiveUser};
use crate::control_panel::preview::Preview;
use crate::control_panel::{PanelNav, SuperAdmin, TenantLinks};
use crate::state::AppState;
use crate::tenancy::db;
use crate::tenancy::{Slug, TenantStatus};
use crate::web::{AppError, Chrome, FieldErrors, IncomingFlash, Page};

/// A tenant as the detail page shows it, read from the catalogue (the
/// registry may lag a committed change by a moment; the page must not).
#[derive(Debug, sqlx::FromRow)]
pub struct TenantRow {
    pub id: i64,
    pub slug: String,
    pub schema_name: String,
    pub display_name: String,
    pub status: String,
    pub primary_color: String,
    pub accent_color: String,
    pub theme: String,
    pub logo_content_type: Option<String>,
    pub logo_bytes: Option<i32>,
    pub logo_sha256: Option<String>,
    pub branding_version: i64,
    pub user_count: i32,
    pub created: String,
}

impl TenantRow {
    pub fn is_suspended(&self) -> bool {
        self.status == TenantStatus::Suspended.as_str()
    }

    /// Cache-busting query of the logo preview.
    pub fn logo_version(&self) -> Option<String> {
        self.logo_sha256
            .as_ref()
            .map(|s| s.chars().take(16).collect())
    }

    /// "1 user", "3 users".
    pub fn users(&self) -> String {
        match self.user_count {
            1 => "1 user".into(),
            n => format!("{n} users"),
        }
    }

    pub fn logo_kib(&self) -> String {
        let bytes = self.logo_bytes.unwrap_or(0);
        format!("{:.1} KiB", f64::from(bytes) / 1024.0)
    }
}

pub async fn load_tenant(
    conn: &mut sqlx::PgConnection,
    slug: &Slug,
) -> Result<TenantRow, AppError> {
    db::query_as(
        "SELECT id, slug, schema_name, display_name, status, primary_color, accent_color, theme,
                logo_content_type, octet_length(logo) AS logo_bytes, logo_sha256,
                branding_version, user_count,
                to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC' AS created
           FROM public.tenants WHERE slug = $1",
    )
    .bind(slug.as_str())
    .fetch_optional(conn)
    .await?
    .ok_or(AppError::NotFound)
}

#[derive(Debug, sqlx::FromRow)]
pub struct DomainRow {
    pub domain: String,
    pub is_default: bool,
}

/// What the detail page's forms show when they are re-rendered after an
/// invalid submission (all empty for a plain `GET`).
#[derive(Clone, Debug, Default)]
pub struct DetailForms {
    pub branding: Option<BrandingValues>,
    pub domain: String,
    pub confirm_slug: String,
    pub errors: FieldErrors,
}

#[derive(Template, WebTemplate)]
#[template(path = "control_panel/detail.html")]
pub struct DetailPage {
    chrome: Chrome,
    nav: PanelNav,
    flash: IncomingFlash,
    csrf: String,
    t: TenantRow,
    domains: Vec<DomainRow>,
    recent: Vec<AuditRow>,
    placement: Placement,
    usage: TenantUsage,
    links: TenantLinks,
    /// Whom the workspace can be opened as.
    active_users: Vec<ActiveUser>,
    branding: BrandingValues,
    preview: Preview,
    domain_value: String,
    confirm_value: String,
    errors: FieldErrors,
    root: String,
}

impl DetailPage {
    fn tenant_url(&self, domain: &str) -> String {
        self.links.url(domain)
    }

    fn primary_domain(&self) -> &str {
        self.domains
            .iter()
            .find(|d| d.is_default)
            .map_or("", |d| d.domain.as_str())
    }

    /// The page, allowing its "Open as this user" form to be answered with
    /// a redirect to the tenant's site (browsers apply the CSP's
    /// `form-action` to a form's redirects too).
    fn into_response_with_status(self, status: StatusCode) -> Response {
        let source = self.links.csp_source(self.primary_domain());
        match crate::web::security::csp_with_form_action(&source) {
            Some(csp) => (status, [(header::CONTENT_SECURITY_POLICY, csp)], self).into_response(),
            None => (status, self).into_response(),
        }
    }
}

/// Builds the detail page of `slug`, with `forms` as typed.
pub async fn detail_page(
    state: &AppState,
    admin: &SuperAdmin,
    Page {
        chrome,
        csrf,
        flash,
    }: Page,
    headers: &HeaderMap,
    slug: &Slug,
    forms: DetailForms,
) -> Result<DetailPage, AppError> {
    let mut tx = db::begin_public(&state.pool).await?;
    let t = load_tenant(&mut tx, slug).await?;
    let domains: Vec<DomainRow> = db::query_as(
        "SELECT domain, is_default FROM public.tenant_domains
          WHERE tenant_id = $1 ORDER BY is_default DESC, domain",
    )
    .bind(t.id)
    .fetch_all(&mut *tx)
    .await?;
    let recent = audit::newest(&mut tx, Some(slug.as_str()), None, 8).await?;
    let usage = TenantUsage::load(&mut tx, t.id).await?;
    drop(tx);
    let placement = Placement::load(&state.pool, &t.schema_name).await?;
    let active_users = if t.is_suspended() {
        Vec::new()
    } else {
        impersonate::active_users(state, slug.as_str()).await?
    };
    let branding = forms.branding.unwrap_or_else(|| BrandingValues {
        display_name: t.display_name.clone(),
        primary_color: t.primary_color.clone(),
        accent_color: t.accent_color.clone(),
        theme: t.theme.clone(),
    });
    Ok(DetailPage {
        chrome,
        nav: admin.nav(&csrf, "tenants"),
        flash,
        csrf: csrf.0,
        preview: Preview::new(
            &branding.display_name,
            if Color::parse(&branding.primary_color).is_some() {
                &branding.primary_color
            } else {
                &t.primary_color
            },
            &branding.theme,
            t.logo_version()
                .map(|v| format!("/tenants/{}/logo?v={v}", t.slug)),
        ),
        branding,
        t,
        domains,
        recent,
        placement,
        usage,
        links: TenantLinks::new(&state.site, headers),
        active_users,
        domain_value: forms.domain,
        confirm_value: forms.confirm_slug,
        errors: forms.errors,
        root: state.root_domain().to_owned(),
    })
}

/// The detail page re-rendered with 422 after an invalid form.
pub async fn invalid(
    state: &AppState,
    admin: &SuperAdmin,
    page: Page,
    headers: &HeaderMap,
    slug: &Slug,
    forms: DetailForms,
) -> Result<Response, AppError> {
    let page = detail_page(state, admin, page.without_flash(), headers, slug, forms).await?;
    Ok(page.into_response_with_status(StatusCode::UNPROCESSABLE_ENTITY))
}

/// `GET /tenants/{slug}`.
pub async fn detail(
    admin: SuperAdmin,
    page: Page,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    let page = detail_page(
        &state,
        &admin,
        page,
        &headers,
        &slug,
        DetailForms::default(),
    )
    .await?;
    Ok(page.into_response_with_status(StatusCode::OK))
}
