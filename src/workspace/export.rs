//! `POST /export`: a tenant's admin downloads their own workspace's archive
//! (data portability): the same archive as `tenantry tenant export`, of
//! this host's tenant only. Audited in the operator's log (the tenant's
//! admins see every export of their workspace, the panel's too, on `/audit`). Members get 403, and so does an
//! operator's impersonated session: operators export from the panel, where
//! it is recorded as theirs.

use axum::extract::State;
use axum::response::Response;

use super::auth::Empty;
use super::member::TenantAdmin;
use crate::control_panel::audit;
use crate::portability;
use crate::state::AppState;
use crate::tenancy::{Slug, db};
use crate::web::client::ClientAddr;
use crate::web::{AppError, AppResult, CsrfForm};

pub async fn export(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    TenantAdmin(admin): TenantAdmin,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> AppResult<Response> {
    if admin.user.impersonated_by.is_some() {
        return Err(AppError::Forbidden);
    }
    let tenant = admin.db.tenant().clone();
    let user = admin.user;
    drop(admin.db);
    // This host's tenant, never a name from the request.
    let slug = Slug::parse(&tenant.slug)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored slug {}: {e}", tenant.slug)))?;
    let export = portability::export_tenant(&state.pool, &slug)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut tx = db::begin_public(&state.pool).await?;
    audit::record(
        &mut tx,
        &user.email,
        addr.as_deref(),
        audit::WORKSPACE_EXPORT,
        Some(slug.as_str()),
        &export.summary(),
    )
    .await?;
    tx.commit().await?;
    Ok(export.into_download())
}

/// One download of this workspace's archive, as `/audit` lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct ExportRow {
    pub at: String,
    pub at_iso: String,
    pub actor: String,
    /// Whether an operator (a super-admin, from the panel) took it.
    pub by_operator: bool,
}

/// The newest downloads of the tenant's archive, from the operator's log:
/// the panel's and its own admins'. Only since the tenant was created (a
/// slug deleted and made again starts afresh).
pub async fn recent(
    pool: &sqlx::PgPool,
    tenant: &crate::tenancy::Tenant,
) -> AppResult<Vec<ExportRow>> {
    let mut tx = db::begin_public(pool).await?;
    Ok(db::query_as(
        "SELECT to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS at,
                to_char(l.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS at_iso,
                l.actor, l.action = $3 AS by_operator
           FROM public.audit_log l JOIN public.tenants t ON t.slug = l.tenant_slug
          WHERE t.id = $1 AND l.at >= t.created_at AND l.action IN ($2, $3)
          ORDER BY l.id DESC LIMIT 50",
    )
    .bind(tenant.id)
    .bind(audit::WORKSPACE_EXPORT)
    .bind(audit::TENANT_EXPORT)
    .fetch_all(&mut *tx)
    .await?)
}
