//! Tenants: the list, the create form, the detail page (which holds the
//! branding, domain, status and delete forms), suspension and deletion.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sqlx::AssertSqlSafe;

use super::audit::{self, AuditRow};
use super::auth::Empty;
use super::{PanelNav, SuperAdmin, TenantLinks, chrome};
use crate::branding::{Color, clean_display_name};
use crate::onboarding::NewTenant;
use crate::onboarding::{self, FirstAdmin};
use crate::password;
use crate::state::AppState;
use crate::tenancy::db;
use crate::tenancy::provision::{self, ProvisionError};
use crate::tenancy::{PublicDb, Slug, TenantStatus};
use crate::web::{AppError, Chrome, CsrfForm, CsrfToken, FieldErrors, Flash, IncomingFlash};

pub const PAGE_SIZE: i64 = 50;

/// A colour field's message.
pub const COLOR_HINT: &str = "choose a colour written as #rrggbb, such as #4f46e5";

/// A path's slug, or 404: nothing else ever reaches a query.
pub fn parse_slug(slug: &str) -> Result<Slug, AppError> {
    Slug::parse(slug).map_err(|_| AppError::NotFound)
}

// ---- the list --------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct ListRow {
    pub slug: String,
    pub display_name: String,
    pub status: String,
    pub domain: Option<String>,
    pub user_count: i32,
    pub created: String,
    pub primary_color: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "control_panel/tenants.html")]
pub struct ListPage {
    chrome: Chrome,
    nav: PanelNav,
    flash: IncomingFlash,
    rows: Vec<ListRow>,
    q: String,
    total: i64,
    page: i64,
    pages: i64,
    links: TenantLinks,
}

impl ListPage {
    fn tenant_url(&self, domain: &str) -> String {
        self.links.url(domain)
    }

    /// The query string of another page of the same search.
    fn page_link(&self, page: i64) -> String {
        let mut pairs = vec![("page", page.to_string())];
        if !self.q.is_empty() {
            pairs.insert(0, ("q", self.q.clone()));
        }
        format!(
            "/?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }

    fn first_shown(&self) -> i64 {
        (self.page - 1) * PAGE_SIZE + 1
    }

    fn last_shown(&self) -> i64 {
        self.first_shown() + self.rows.len() as i64 - 1
    }
}

/// `%q%` for LIKE, with LIKE's own wildcards escaped.
fn like_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

const LIST_WHERE: &str =
    "($1::text IS NULL OR t.slug ILIKE $1 ESCAPE '\\' OR t.display_name ILIKE $1 ESCAPE '\\')";

/// `GET /`: every tenant, newest first, 50 to a page, searchable by slug or
/// name. Two queries per page whatever the number of tenants: the user count
/// is a column the tenant app maintains, never a query per row.
pub async fn list(
    admin: SuperAdmin,
    csrf: CsrfToken,
    flash: IncomingFlash,
    headers: HeaderMap,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<ListPage, AppError> {
    let q: String = query.q.trim().chars().take(100).collect();
    let pattern = (!q.is_empty()).then(|| like_pattern(&q));
    let mut tx = db::begin_public(&state.pool).await?;
    let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM public.tenants t WHERE {LIST_WHERE}"
    )))
    .persistent(db::prepared_statements())
    .bind(&pattern)
    .fetch_one(&mut *tx)
    .await?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let page = query
        .page
        .and_then(|p| p.parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let rows: Vec<ListRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT t.slug, t.display_name, t.status, d.domain, t.user_count,
                to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS created,
                t.primary_color
           FROM public.tenants t
           LEFT JOIN public.tenant_domains d ON d.tenant_id = t.id AND d.is_default
          WHERE {LIST_WHERE}
          ORDER BY t.created_at DESC, t.id DESC
          LIMIT $2 OFFSET $3"
    )))
    .persistent(db::prepared_statements())
    .bind(&pattern)
    .bind(PAGE_SIZE)
    .bind((page - 1) * PAGE_SIZE)
    .fetch_all(&mut *tx)
    .await?;
    Ok(ListPage {
        chrome: chrome(),
        nav: admin.nav(&csrf, "tenants"),
        flash,
        rows,
        q,
        total,
        page,
        pages,
        links: TenantLinks::new(&state.site, &headers),
    })
}

// ---- create ----------------------------------------------------------------

#[derive(Deserialize, Default, Clone, Debug)]
pub struct NewForm {
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub admin_email: String,
    #[serde(default)]
    pub admin_password: String,
    #[serde(default)]
    pub primary_color: String,
    #[serde(default)]
    pub accent_color: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "control_panel/new.html")]
pub struct NewPage {
    chrome: Chrome,
    nav: PanelNav,
    form: NewForm,
    errors: FieldErrors,
    root: String,
    preview: Preview,
}

/// `GET /tenants/new`.
pub async fn new_page(
    admin: SuperAdmin,
    csrf: CsrfToken,
    State(state): State<AppState>,
) -> NewPage {
    NewPage {
        chrome: chrome(),
        nav: admin.nav(&csrf, "new"),
        form: NewForm {
            primary_color: "#4f46e5".into(),
            accent_color: "#0ea5e9".into(),
            ..NewForm::default()
        },
        errors: FieldErrors::default(),
        root: state.root_domain().to_owned(),
        preview: Preview::new("", "#4f46e5", "light", None),
    }
}

/// `POST /tenants`: provisions the tenant and its first admin in one
/// transaction (with the audit row), then 303 to its page.
pub async fn create(
    admin: SuperAdmin,
    csrf: CsrfToken,
    State(state): State<AppState>,
    CsrfForm(mut form): CsrfForm<NewForm>,
) -> Result<Response, AppError> {
    let root = state.root_domain().to_owned();
    let mut errors = FieldErrors::default();
    form.slug = form.slug.trim().chars().take(64).collect();
    let slug = errors.check("slug", Slug::parse(&form.slug.to_ascii_lowercase()));
    let name = errors.check("display_name", clean_display_name(&form.display_name));
    let email = errors.check("admin_email", password::clean_email(&form.admin_email));
    errors.check("admin_password", password::check_new(&form.admin_password));
    let primary = errors.check(
        "primary_color",
        Color::parse(&form.primary_color).ok_or(COLOR_HINT),
    );
    let accent = errors.check(
        "accent_color",
        Color::parse(&form.accent_color).ok_or(COLOR_HINT),
    );

    // Cheap checks for a taken slug or domain before the slow hash; the
    // provisioning transaction still has the last word.
    if let Some(slug) = &slug {
        let (slug_taken, domain_taken): (bool, bool) = db::query_as(
            "SELECT EXISTS (SELECT 1 FROM public.tenants WHERE slug = $1),
                    EXISTS (SELECT 1 FROM public.tenant_domains WHERE domain = $2)",
        )
        .bind(slug.as_str())
        .bind(provision::default_domain(slug, &root))
        .fetch_one(&mut *db::begin_public(&state.pool).await?)
        .await?;
        if slug_taken {
            errors.add(
                "slug",
                format!("a tenant with the slug \"{slug}\" already exists"),
            );
        } else if domain_taken {
            errors.add(
                "slug",
                format!(
                    "the domain {} is already in use",
                    provision::default_domain(slug, &root)
                ),
            );
        }
    }

    let rerender = |form: NewForm, errors: FieldErrors| {
        let page = NewPage {
            chrome: chrome(),
            nav: admin.nav(&csrf, "new"),
            preview: Preview::new(&form.display_name, &form.primary_color, "light", None),
            form: NewForm {
                admin_password: String::new(),
                ..form
            },
            errors,
            root: root.clone(),
        };
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    };

    let (Some(slug), Some(name), Some(email), Some(primary), Some(accent)) =
        (slug, name, email, primary, accent)
    else {
        return Ok(rerender(form, errors));
    };
    if !errors.is_empty() {
        return Ok(rerender(form, errors));
    }

    let admin_name: String = email
        .split('@')
        .next()
        .unwrap_or("Admin")
        .chars()
        .take(100)
        .collect();
    let first_admin = FirstAdmin {
        email: email.clone(),
        display_name: if admin_name.trim().is_empty() {
            "Admin".into()
        } else {
            admin_name
        },
        password_hash: password::hash(std::mem::take(&mut form.admin_password)).await?,
    };
    let new = NewTenant {
        slug: slug.clone(),
        display_name: name,
        primary_color: primary,
        accent_color: accent,
    };
    let mut p = match onboarding::create_tenant(&state.pool, &root, &new, &first_admin).await {
        Ok(p) => p,
        Err(
            e @ (ProvisionError::SlugTaken(_)
            | ProvisionError::DomainTaken(_)
            | ProvisionError::SchemaExists(_)),
        ) => {
            errors.add("slug", e.to_string());
            return Ok(rerender(form, errors));
        }
        Err(e) => return Err(anyhow::Error::from(e).into()),
    };
    let detail = format!(
        "name \"{}\", first admin {email}, colours {primary} / {accent}",
        new.display_name
    );
    admin
        .audit(p.conn(), audit::TENANT_CREATE, Some(slug.as_str()), &detail)
        .await?;
    let domain = p.default_domain.clone();
    p.commit().await?;
    tracing::info!(tenant = %slug, by = %admin.email, "tenant created in the control panel");
    Ok((
        Flash::success(format!(
            "Tenant {slug} is ready at {domain}. Its first admin, {email}, can sign in there now."
        )),
        Redirect::to(&format!("/tenants/{slug}")),
    )
        .into_response())
}

// ---- the detail page --------------------------------------------------------

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

/// The values of the branding form as typed (or as stored).
#[derive(Clone, Debug, Default)]
pub struct BrandingValues {
    pub display_name: String,
    pub primary_color: String,
    pub accent_color: String,
    pub theme: String,
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

/// Text on the primary colour: which colour pages use, and whether even that
/// fails WCAG AA.
#[derive(Clone, Debug)]
pub struct ContrastNote {
    pub text_color: String,
    pub ratio: String,
    pub fails_aa: bool,
}

impl ContrastNote {
    pub fn of(primary: &str) -> Option<ContrastNote> {
        let primary = Color::parse(primary)?;
        let text = primary.readable_text();
        let ratio = primary.contrast(text);
        Some(ContrastNote {
            text_color: text.to_string(),
            ratio: format!("{ratio:.1}"),
            fails_aa: ratio < 4.5,
        })
    }
}

/// What the live preview of the branded header starts with (the script in
/// `static/js/branding.js` keeps it in step with the form).
#[derive(Clone, Debug)]
pub struct Preview {
    pub name: String,
    pub initials: String,
    pub theme: String,
    pub logo: Option<String>,
    pub contrast: Option<ContrastNote>,
}

impl Preview {
    pub fn new(name: &str, primary: &str, theme: &str, logo: Option<String>) -> Preview {
        let name = if name.trim().is_empty() {
            "New tenant"
        } else {
            name.trim()
        };
        Preview {
            name: name.to_owned(),
            initials: crate::web::chrome::initials(name),
            theme: if theme == "dark" { "dark" } else { "light" }.to_owned(),
            logo,
            contrast: ContrastNote::of(primary),
        }
    }
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
    links: TenantLinks,
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
}

/// Builds the detail page of `slug`, with `forms` as typed.
pub async fn detail_page(
    state: &AppState,
    admin: &SuperAdmin,
    csrf: &CsrfToken,
    headers: &HeaderMap,
    slug: &Slug,
    flash: IncomingFlash,
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
    let branding = forms.branding.unwrap_or_else(|| BrandingValues {
        display_name: t.display_name.clone(),
        primary_color: t.primary_color.clone(),
        accent_color: t.accent_color.clone(),
        theme: t.theme.clone(),
    });
    Ok(DetailPage {
        chrome: chrome(),
        nav: admin.nav(csrf, "tenants"),
        flash,
        csrf: csrf.0.clone(),
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
        links: TenantLinks::new(&state.site, headers),
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
    csrf: &CsrfToken,
    headers: &HeaderMap,
    slug: &Slug,
    forms: DetailForms,
) -> Result<Response, AppError> {
    let page = detail_page(
        state,
        admin,
        csrf,
        headers,
        slug,
        IncomingFlash::default(),
        forms,
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `GET /tenants/{slug}`.
pub async fn detail(
    admin: SuperAdmin,
    csrf: CsrfToken,
    flash: IncomingFlash,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<DetailPage, AppError> {
    let slug = parse_slug(&slug)?;
    detail_page(
        &state,
        &admin,
        &csrf,
        &headers,
        &slug,
        flash,
        DetailForms::default(),
    )
    .await
}

/// Where the forms of a tenant's page go back to.
pub fn back_to(slug: &Slug) -> Redirect {
    Redirect::to(&format!("/tenants/{slug}"))
}

// ---- suspend, reactivate, delete --------------------------------------------

/// The tenant's status, locked for the rest of the transaction.
async fn lock_status(db: &mut PublicDb, slug: &Slug) -> Result<String, AppError> {
    db::query_scalar("SELECT status FROM public.tenants WHERE slug = $1 FOR UPDATE")
        .bind(slug.as_str())
        .fetch_optional(db.conn())
        .await?
        .ok_or(AppError::NotFound)
}

/// `POST /tenants/{slug}/suspend`: its pages answer 403 from the next request
/// on (the registry hears of it by NOTIFY), and every session of its users is
/// deleted in the same transaction, so nobody keeps access.
pub async fn suspend(
    admin: SuperAdmin,
    Path(slug): Path<String>,
    mut db: PublicDb,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    if lock_status(&mut db, &slug).await? == TenantStatus::Suspended.as_str() {
        return Ok((
            Flash::success(format!("{slug} is already suspended.")),
            back_to(&slug),
        )
            .into_response());
    }
    provision::set_status(db.conn(), slug.as_str(), TenantStatus::Suspended).await?;
    let sql = format!("DELETE FROM {}.sessions", slug.schema_name().quoted());
    let ended = sqlx::query(AssertSqlSafe(sql))
        .persistent(false)
        .execute(db.conn())
        .await?
        .rows_affected();
    let detail = format!("{ended} session(s) ended");
    admin
        .audit(
            db.conn(),
            audit::TENANT_SUSPEND,
            Some(slug.as_str()),
            &detail,
        )
        .await?;
    db.commit().await?;
    Ok((
        Flash::success(format!(
            "{slug} is suspended: its pages now say so and {ended} signed-in session(s) were ended."
        )),
        back_to(&slug),
    )
        .into_response())
}

/// `POST /tenants/{slug}/reactivate`.
pub async fn reactivate(
    admin: SuperAdmin,
    Path(slug): Path<String>,
    mut db: PublicDb,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    if lock_status(&mut db, &slug).await? == TenantStatus::Active.as_str() {
        return Ok((
            Flash::success(format!("{slug} is already active.")),
            back_to(&slug),
        )
            .into_response());
    }
    provision::set_status(db.conn(), slug.as_str(), TenantStatus::Active).await?;
    admin
        .audit(db.conn(), audit::TENANT_REACTIVATE, Some(slug.as_str()), "")
        .await?;
    db.commit().await?;
    Ok((
        Flash::success(format!("{slug} is active again; its users can sign in.")),
        back_to(&slug),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm_slug: String,
}

/// `POST /tenants/{slug}/delete`: with the slug typed again, drops the
/// catalogue row, the domains and the schema in one transaction.
pub async fn delete(
    admin: SuperAdmin,
    csrf: CsrfToken,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    let typed = form.confirm_slug.trim();
    if typed != slug.as_str() {
        let mut forms = DetailForms {
            confirm_slug: typed.chars().take(64).collect(),
            ..DetailForms::default()
        };
        forms.errors.add(
            "confirm_slug",
            format!("type the slug \"{slug}\" exactly to confirm the deletion"),
        );
        return invalid(&state, &admin, &csrf, &headers, &slug, forms).await;
    }
    let users: Option<i32> = {
        let mut db = PublicDb::begin(&state.pool).await?;
        db::query_scalar("SELECT user_count FROM public.tenants WHERE slug = $1")
            .bind(slug.as_str())
            .fetch_optional(db.conn())
            .await?
    };
    // Out of routing on every instance first, then the schema goes (see
    // provision::delete); the audit entry commits with the drop.
    if !provision::mark_deleting(&state.pool, slug.as_str()).await? {
        return Err(AppError::NotFound);
    }
    tokio::time::sleep(provision::ROUTING_GRACE).await;
    let mut db = PublicDb::begin(&state.pool).await?;
    if !provision::finish_delete_in(db.conn(), slug.as_str()).await? {
        return Err(AppError::NotFound);
    }
    let detail = format!(
        "schema {} dropped with {} user(s)",
        slug.schema_name(),
        users.unwrap_or(0)
    );
    admin
        .audit(
            db.conn(),
            audit::TENANT_DELETE,
            Some(slug.as_str()),
            &detail,
        )
        .await?;
    db.commit().await?;
    tracing::info!(tenant = %slug, by = %admin.email, "tenant deleted in the control panel");
    Ok((
        Flash::success(format!(
            "Tenant {slug} was deleted, with its schema and all its data."
        )),
        Redirect::to("/"),
    )
        .into_response())
}
