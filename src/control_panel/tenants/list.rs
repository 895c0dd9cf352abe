//! The tenant list (`GET /`): every tenant, newest first unless sorted by
//! another column, searchable and paged, with each tenant's usage figures
//! (read from `public.tenant_usage`, which jobs keep: see `crate::usage`)
//! and, on the first page of the whole list, the usage dashboard.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use sqlx::AssertSqlSafe;

use time::OffsetDateTime;

use crate::control_panel::dashboard::Dashboard;
use crate::control_panel::nodes::human_bytes;
use crate::control_panel::{PanelNav, SuperAdmin, TenantLinks};
use crate::state::AppState;
use crate::tenancy::db;
use crate::usage::read::{ago, rfc3339, utc_minute};
use crate::web::{AppError, Chrome, IncomingFlash, Page};

pub const PAGE_SIZE: i64 = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    dir: Option<String>,
}

/// A column the list sorts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Created,
    Name,
    Size,
    Users,
    Tasks,
    Sessions,
    Activity,
}

impl SortKey {
    pub const ALL: [SortKey; 7] = [
        SortKey::Created,
        SortKey::Name,
        SortKey::Size,
        SortKey::Users,
        SortKey::Tasks,
        SortKey::Sessions,
        SortKey::Activity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Created => "created",
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Users => "users",
            SortKey::Tasks => "tasks",
            SortKey::Sessions => "sessions",
            SortKey::Activity => "activity",
        }
    }

    /// The key named in a query string; anything else is not a key.
    pub fn parse(s: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Names A to Z; numbers and dates largest (newest) first.
    fn first_dir(self) -> Dir {
        match self {
            SortKey::Name => Dir::Asc,
            _ => Dir::Desc,
        }
    }

    /// The column's SQL: only these fixed texts ever reach the ORDER BY.
    fn column(self) -> &'static str {
        match self {
            SortKey::Created => "t.created_at",
            SortKey::Name => "lower(t.display_name)",
            SortKey::Size => "u.size_bytes",
            SortKey::Users => "t.user_count",
            SortKey::Tasks => "u.tasks",
            SortKey::Sessions => "u.active_sessions",
            SortKey::Activity => "u.last_activity",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

impl Dir {
    fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }

    fn flip(self) -> Dir {
        match self {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        }
    }
}

/// The list's order: `?sort=size&dir=desc`; an unknown value falls back to
/// the default, newest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub dir: Dir,
}

impl Default for Sort {
    fn default() -> Sort {
        Sort {
            key: SortKey::Created,
            dir: Dir::Desc,
        }
    }
}

impl Sort {
    pub fn parse(sort: Option<&str>, dir: Option<&str>) -> Sort {
        let Some(key) = sort.and_then(SortKey::parse) else {
            return Sort::default();
        };
        let dir = match dir {
            Some("asc") => Dir::Asc,
            Some("desc") => Dir::Desc,
            _ => key.first_dir(),
        };
        Sort { key, dir }
    }

    fn is_default(self) -> bool {
        self == Sort::default()
    }

    /// `ORDER BY` for this sort: figures not measured yet last either way,
    /// then newest first, so pages never overlap.
    fn order_by(self) -> String {
        let dir = match self.dir {
            Dir::Asc => "ASC",
            Dir::Desc => "DESC",
        };
        match self.key {
            SortKey::Created => format!("t.created_at {dir}, t.id {dir}"),
            key => format!(
                "{} {dir} NULLS LAST, t.created_at DESC, t.id DESC",
                key.column()
            ),
        }
    }
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
    pub size_bytes: Option<i64>,
    pub tasks: Option<i64>,
    pub active_sessions: Option<i64>,
    pub last_activity: Option<OffsetDateTime>,
}

impl ListRow {
    /// A measured figure, or a dash until the job has measured it.
    fn figure(v: Option<i64>) -> String {
        v.map_or_else(|| "—".to_owned(), crate::control_panel::charts::thousands)
    }

    pub fn size(&self) -> String {
        self.size_bytes.map_or_else(|| "—".to_owned(), human_bytes)
    }

    pub fn tasks_shown(&self) -> String {
        ListRow::figure(self.tasks)
    }

    pub fn sessions_shown(&self) -> String {
        ListRow::figure(self.active_sessions)
    }

    /// "5 min ago", with the exact time for a `<time>` element and its title.
    pub fn activity(&self) -> Option<(String, String, String)> {
        self.last_activity.map(|at| {
            (
                ago(at, OffsetDateTime::now_utc()),
                rfc3339(at),
                utc_minute(at),
            )
        })
    }
}

/// A sortable column's header: its link and, for the current sort, its
/// `aria-sort`.
pub struct Header {
    pub label: &'static str,
    pub href: String,
    pub aria_sort: &'static str,
    /// ▲ or ▼ beside the current sort's label.
    pub arrow: &'static str,
    pub class: &'static str,
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
    sort: Sort,
    links: TenantLinks,
    dashboard: Option<Dashboard>,
}

impl ListPage {
    fn tenant_url(&self, domain: &str) -> String {
        self.links.url(domain)
    }

    /// The query string of another page of the same search and sort.
    fn page_link(&self, page: i64) -> String {
        self.link(self.sort, Some(page))
    }

    fn link(&self, sort: Sort, page: Option<i64>) -> String {
        let mut pairs = Vec::new();
        if !self.q.is_empty() {
            pairs.push(("q", self.q.clone()));
        }
        if !sort.is_default() {
            pairs.push(("sort", sort.key.as_str().to_owned()));
            pairs.push(("dir", sort.dir.as_str().to_owned()));
        }
        if let Some(page) = page {
            pairs.push(("page", page.to_string()));
        }
        if pairs.is_empty() {
            return "/".to_owned();
        }
        format!(
            "/?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }

    /// The header of the column sorted by `key` (the key's name, as
    /// `SortKey::as_str`): a link that sorts by it (the other way round
    /// when it is the current sort).
    fn header(&self, key: &str) -> Header {
        let key = SortKey::parse(key).unwrap_or(SortKey::Created);
        let (label, class) = match key {
            SortKey::Created => ("Created", "opt"),
            SortKey::Name => ("Tenant", ""),
            SortKey::Size => ("Size", "num"),
            SortKey::Users => ("Users", "num opt"),
            SortKey::Tasks => ("Tasks", "num opt"),
            SortKey::Sessions => ("Sessions", "num opt"),
            SortKey::Activity => ("Last activity", ""),
        };
        let current = self.sort.key == key;
        let next = if current {
            Sort {
                key,
                dir: self.sort.dir.flip(),
            }
        } else {
            Sort {
                key,
                dir: key.first_dir(),
            }
        };
        let (aria_sort, arrow) = match (current, self.sort.dir) {
            (false, _) => ("", ""),
            (true, Dir::Asc) => ("ascending", "▲"),
            (true, Dir::Desc) => ("descending", "▼"),
        };
        Header {
            label,
            href: self.link(next, None),
            aria_sort,
            arrow,
            class,
        }
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

/// `GET /`: every tenant, newest first (or `?sort=…&dir=…`), 50 to a page,
/// searchable by slug or name. Two queries per page whatever the number of
/// tenants: the user count is a column the tenant app maintains and the
/// other figures a table the usage jobs keep, never a query per row or
/// per schema. The first page of the whole list adds the dashboard.
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
    let sort = Sort::parse(query.sort.as_deref(), query.dir.as_deref());
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
                t.primary_color, u.size_bytes, u.tasks, u.active_sessions, u.last_activity
           FROM public.tenants t
           LEFT JOIN public.tenant_domains d ON d.tenant_id = t.id AND d.is_default
           LEFT JOIN public.tenant_usage u ON u.tenant_id = t.id
          WHERE {LIST_WHERE}
          ORDER BY {}
          LIMIT $2 OFFSET $3",
        sort.order_by()
    )))
    .persistent(db::prepared_statements())
    .bind(&pattern)
    .bind(PAGE_SIZE)
    .bind((page - 1) * PAGE_SIZE)
    .fetch_all(&mut *tx)
    .await?;
    drop(tx);
    let dashboard = if q.is_empty() && page == 1 && total > 0 {
        Some(Dashboard::load(&state.pool).await?)
    } else {
        None
    };
    Ok(ListPage {
        chrome,
        nav: admin.nav(&csrf, "tenants"),
        flash,
        rows,
        q,
        total,
        page,
        pages,
        sort,
        links: TenantLinks::new(&state.site, &headers),
        dashboard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_parse_from_known_names_only() {
        assert_eq!(Sort::parse(None, None), Sort::default());
        assert_eq!(
            Sort::parse(Some("size; DROP"), Some("desc")),
            Sort::default()
        );
        let size = Sort::parse(Some("size"), Some("sideways"));
        assert_eq!((size.key, size.dir), (SortKey::Size, Dir::Desc));
        let name = Sort::parse(Some("name"), None);
        assert_eq!(name.dir, Dir::Asc);
        assert_eq!(
            Sort::parse(Some("tasks"), Some("asc")).order_by(),
            "u.tasks ASC NULLS LAST, t.created_at DESC, t.id DESC"
        );
        for key in SortKey::ALL {
            assert_eq!(SortKey::parse(key.as_str()), Some(key));
        }
    }
}
