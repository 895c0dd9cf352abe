//! `POST /export`: a tenant's admin downloads their own workspace's archive
//! (data portability): the same archive as `tenantry tenant export`, of
//! this host's tenant only. Audited in the operator's log (the tenant's
//! admins see their exports on `/audit`). Members get 403, and so does an
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
