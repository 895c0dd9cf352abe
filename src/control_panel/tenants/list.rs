//! The tenant list (`GET /`): every tenant, newest first, searchable and
//! paged.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use sqlx::AssertSqlSafe;

use crate::control_panel::{PanelNav, SuperAdmin, TenantLinks};
use crate::state::AppState;
use crate::tenancy::db;
use crate::web::{AppError, Chrome, IncomingFlash, Page};

pub const PAGE_SIZE: i64 = 50;

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
    Page {
        chrome,
        csrf,
        flash,
    }: Page,
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
        chrome,
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
