//! A tenant's status: suspending, reactivating and deleting it.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::detail::{self, DetailForms};
use super::{back_to, parse_slug};
use crate::control_panel::SuperAdmin;
use crate::control_panel::audit;
use crate::control_panel::auth::Empty;
use crate::state::AppState;
use crate::tenancy::db;
use crate::tenancy::{PublicDb, Slug, TenantStatus};
use crate::tenancy::{provision, sessions};
use crate::web::{AppError, CsrfForm, Flash, Page};

/// The tenant's status, locked for the rest of the transaction.
async fn lock_status(db: &mut PublicDb, slug: &Slug) -> Result<String, AppError> {
    // A tenant being deleted is gone already: it cannot be suspended or
    // reactivated (set_status would change nothing, yet it would be audited).
    db::query_scalar(
        "SELECT status FROM public.tenants WHERE slug = $1 AND status <> 'deleting' FOR UPDATE",
    )
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
    let ended = sessions::end_all_sessions(db.conn(), &slug.schema_name()).await?;
    crate::workspace::impersonation::end_all_for_suspension(db.conn(), &slug.schema_name()).await?;
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
    page: Page,
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
        return detail::invalid(&state, &admin, page, &headers, &slug, forms).await;
    }
    let users: Option<i32> = {
        let mut db = PublicDb::begin(&state.pool).await?;
        db::query_scalar("SELECT user_count FROM public.tenants WHERE slug = $1")
            .bind(slug.as_str())
            .fetch_optional(db.conn())
            .await?
    };
    let detail = format!(
        "schema {} dropped with {} user(s)",
        slug.schema_name(),
        users.unwrap_or(0)
    );
    // Out of routing on every instance first, then the schema goes; the
    // audit entry commits with the drop.
    let audit_it = async |conn: &mut sqlx::PgConnection| {
        admin
            .audit(conn, audit::TENANT_DELETE, Some(slug.as_str()), &detail)
            .await
    };
    if !provision::delete_with(&state.pool, slug.as_str(), audit_it).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(tenant = %slug, by = %admin.email, "tenant deleted in the control panel");
    Ok((
        Flash::success(format!(
            "Tenant {slug} was deleted, with its schema and all its data."
        )),
        Redirect::to("/"),
    )
        .into_response())
}
