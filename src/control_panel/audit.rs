//! The audit log: who did what, when, to which tenant. Every panel action
//! writes one row, in the same transaction as the change it records.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;
use sqlx::PgConnection;

use super::{PanelNav, SuperAdmin};
use crate::state::AppState;
use crate::tenancy::db;
use crate::web::{AppError, Chrome, Page};

pub const LOGIN: &str = "login";
pub const LOGIN_FAILED: &str = "login_failed";
pub const LOGOUT: &str = "logout";
pub const TENANT_CREATE: &str = "tenant_create";
pub const BRANDING_CHANGE: &str = "branding_change";
pub const DOMAIN_ADD: &str = "domain_add";
pub const DOMAIN_REMOVE: &str = "domain_remove";
pub const TENANT_SUSPEND: &str = "tenant_suspend";
pub const TENANT_REACTIVATE: &str = "tenant_reactivate";
pub const TENANT_DELETE: &str = "tenant_delete";
pub const TENANT_MOVE: &str = "tenant_move";
pub const REBALANCE_START: &str = "rebalance_start";
pub const IMPERSONATION_START: &str = "impersonation_start";
pub const IMPERSONATION_END: &str = "impersonation_end";
pub const TENANT_EXPORT: &str = "tenant_export";
/// A tenant's admin downloaded their workspace's archive (from the tenant
/// app; the actor is that user's email).
pub const WORKSPACE_EXPORT: &str = "workspace_export";

/// Writes one audit row on `conn` (schema-qualified, so it works on any
/// search path, the provisioning transaction's included).
pub async fn record(
    conn: &mut PgConnection,
    actor: &str,
    addr: Option<&str>,
    action: &str,
    tenant: Option<&str>,
    detail: &str,
) -> Result<(), sqlx::Error> {
    db::query(
        "INSERT INTO public.audit_log (actor, action, tenant_slug, detail, client_addr)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(actor)
    .bind(action)
    .bind(tenant)
    .bind(detail)
    .bind(addr)
    .execute(conn)
    .await?;
    Ok(())
}

impl SuperAdmin {
    /// Records an action of this super-admin.
    pub async fn audit(
        &self,
        conn: &mut PgConnection,
        action: &str,
        tenant: Option<&str>,
        detail: &str,
    ) -> Result<(), sqlx::Error> {
        record(
            conn,
            &self.email,
            self.addr.as_deref(),
            action,
            tenant,
            detail,
        )
        .await
    }
}

/// A human label for an action.
pub fn describe(action: &str) -> &'static str {
    match action {
        LOGIN => "Signed in",
        LOGIN_FAILED => "Failed sign-in",
        LOGOUT => "Signed out",
        TENANT_CREATE => "Created tenant",
        BRANDING_CHANGE => "Changed branding",
        DOMAIN_ADD => "Added domain",
        DOMAIN_REMOVE => "Removed domain",
        TENANT_SUSPEND => "Suspended tenant",
        TENANT_REACTIVATE => "Reactivated tenant",
        TENANT_DELETE => "Deleted tenant",
        TENANT_MOVE => "Moved tenant",
        REBALANCE_START => "Started rebalance",
        IMPERSONATION_START => "Opened workspace as user",
        IMPERSONATION_END => "Ended impersonation",
        TENANT_EXPORT => "Exported tenant",
        WORKSPACE_EXPORT => "Workspace admin exported",
        _ => "Other",
    }
}

/// One row as pages show it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub tenant_slug: Option<String>,
    pub detail: String,
    pub client_addr: Option<String>,
}

impl AuditRow {
    pub fn label(&self) -> &'static str {
        describe(&self.action)
    }

    /// A CSS modifier for the action's badge.
    pub fn tone(&self) -> &'static str {
        match self.action.as_str() {
            LOGIN_FAILED | TENANT_DELETE | TENANT_SUSPEND => "badge-danger",
            TENANT_CREATE | TENANT_REACTIVATE => "badge-success",
            _ => "",
        }
    }
}

pub const PAGE_SIZE: i64 = 50;

const SELECT: &str = "
    SELECT id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS at,
           actor, action, tenant_slug, detail, client_addr
      FROM public.audit_log
     WHERE ($1::text IS NULL OR tenant_slug = $1)
       AND ($2::bigint IS NULL OR id < $2)
     ORDER BY id DESC
     LIMIT $3";

/// The newest entries (about `tenant` if given), older than `before` if given.
pub async fn newest(
    conn: &mut sqlx::PgConnection,
    tenant: Option<&str>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    db::query_as(SELECT)
        .bind(tenant)
        .bind(before)
        .bind(limit)
        .fetch_all(conn)
        .await
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "control_panel/audit.html")]
pub struct AuditPage {
    chrome: Chrome,
    nav: PanelNav,
    rows: Vec<AuditRow>,
    tenant: Option<String>,
    /// The `before` cursor of the next (older) page, if there is one.
    older: Option<i64>,
    /// Whether this is not the first page.
    paged: bool,
}

impl AuditPage {
    fn tenant_query(&self) -> String {
        match &self.tenant {
            Some(t) => format!("tenant={t}&"),
            None => String::new(),
        }
    }
}

/// `GET /audit`: the log, newest first, 50 to a page (keyset pagination, so
/// any page is as fast as the first).
pub async fn page(
    admin: SuperAdmin,
    page: Page,
    State(state): State<AppState>,
    Query(q): Query<AuditQuery>,
) -> Result<AuditPage, AppError> {
    // Only a valid slug can filter; anything else shows everything.
    let tenant = q.tenant.filter(|t| crate::tenancy::Slug::parse(t).is_ok());
    let mut tx = db::begin_public(&state.pool).await?;
    let mut rows = newest(&mut tx, tenant.as_deref(), q.before, PAGE_SIZE + 1).await?;
    let older = if rows.len() as i64 > PAGE_SIZE {
        rows.truncate(PAGE_SIZE as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok(AuditPage {
        chrome: page.chrome,
        nav: admin.nav(&page.csrf, "audit"),
        rows,
        tenant,
        older,
        paged: q.before.is_some(),
    })
}
