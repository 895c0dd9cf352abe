//! `POST /tenants/{slug}/export`: a tenant's archive as a download
//! (`portability`), for super-admins, audited.

use axum::extract::{Path, State};
use axum::response::Response;

use super::parse_slug;
use crate::control_panel::SuperAdmin;
use crate::control_panel::audit;
use crate::control_panel::auth::Empty;
use crate::portability;
use crate::state::AppState;
use crate::tenancy::db;
use crate::web::{AppError, CsrfForm};

pub async fn export(
    admin: SuperAdmin,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    let export = portability::export_tenant(&state.pool, &slug)
        .await?
        .ok_or(AppError::NotFound)?;
    let mut tx = db::begin_public(&state.pool).await?;
    admin
        .audit(
            &mut tx,
            audit::TENANT_EXPORT,
            Some(slug.as_str()),
            &export.summary(),
        )
        .await?;
    tx.commit().await?;
    Ok(export.into_download())
}
