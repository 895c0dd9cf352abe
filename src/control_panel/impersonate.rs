//! Opening a tenant's workspace as one of its users (`POST
//! /tenants/{slug}/impersonate`): the panel mints a one-time token (256
//! random bits, stored as its SHA-256 in `public.impersonation_tokens`,
//! bound to the tenant and the user, valid for a minute, single use) and
//! sends the browser to `<tenant>/impersonate?token=…`, where the workspace
//! redeems it (`workspace::impersonation`). Audited here when minted and
//! there when ended; the tenant's admins see it on their own audit page.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::tenants::{back_to, parse_slug};
use super::{SuperAdmin, TenantLinks, audit};
use crate::state::AppState;
use crate::tenancy::{PublicDb, TenantDb, db};
use crate::web::token::OneTimeToken;
use crate::web::{AppError, AppResult, CsrfForm, Flash};

/// How long a minted link can be redeemed.
pub const TOKEN_LIFETIME: time::Duration = time::Duration::seconds(60);

/// Used and expired tokens are deleted this long after they expire (by
/// later mints, so the table stays small without a job).
const KEEP_EXPIRED: time::Duration = time::Duration::hours(1);

/// An active user of a tenant, as the detail page's picker lists them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ActiveUser {
    pub id: i64,
    pub display_name: String,
    pub email: String,
    pub role: String,
}

/// How many users the picker lists (admins first, then by name).
pub const PICKER_SIZE: i64 = 200;

/// The active users of `slug`'s workspace, for the picker (none when the
/// registry does not serve the tenant).
pub async fn active_users(state: &AppState, slug: &str) -> AppResult<Vec<ActiveUser>> {
    let Some(tenant) = state.registry.by_slug(slug) else {
        return Ok(Vec::new());
    };
    let mut tdb = TenantDb::begin(&state.tenants, tenant).await?;
    let users = tdb
        .query_as(
            "SELECT id, display_name, email, role FROM users WHERE active
              ORDER BY role = 'admin' DESC, lower(display_name), id LIMIT $1",
        )
        .bind(PICKER_SIZE)
        .fetch_all(tdb.conn())
        .await?;
    Ok(users)
}

#[derive(Deserialize)]
pub struct ImpersonateForm {
    #[serde(default)]
    user_id: String,
}

/// `POST /tenants/{slug}/impersonate` (`user_id`): 303 to the tenant's
/// `/impersonate?token=…` on the same scheme and port as the panel's other
/// links to it; back to the tenant's page with a message when the tenant
/// is suspended or the user is not an active one.
pub async fn start(
    admin: SuperAdmin,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<ImpersonateForm>,
) -> AppResult<Response> {
    let slug = parse_slug(&slug)?;
    let refuse = |message: String| -> AppResult<Response> {
        Ok((Flash::error(message), back_to(&slug)).into_response())
    };
    let Some(tenant) = state.registry.by_slug(slug.as_str()) else {
        return Err(AppError::NotFound);
    };
    // The default domain comes first.
    let Some(domain) = tenant.domains.first().cloned() else {
        return Err(AppError::NotFound);
    };
    let Some(user_id) = form.user_id.trim().parse::<i64>().ok().filter(|id| *id > 0) else {
        return refuse("Choose a user to open the workspace as.".into());
    };
    let user: Option<(String, String)> = {
        let mut tdb = TenantDb::begin(&state.tenants, tenant.clone()).await?;
        tdb.query_as("SELECT display_name, email FROM users WHERE id = $1 AND active")
            .bind(user_id)
            .fetch_optional(tdb.conn())
            .await?
    };
    let Some((name, email)) = user else {
        return refuse(format!(
            "That user is not an active user of {slug}: the workspace was not opened."
        ));
    };
    let mut public = PublicDb::begin(&state.pool).await?;
    let status: Option<String> =
        db::query_scalar("SELECT status FROM public.tenants WHERE id = $1 FOR SHARE")
            .bind(tenant.id)
            .fetch_optional(public.conn())
            .await?;
    match status.as_deref() {
        Some("active") => {}
        Some("suspended") => {
            return refuse(format!(
                "{slug} is suspended: its workspace cannot be opened until it is reactivated."
            ));
        }
        _ => return Err(AppError::NotFound),
    }
    db::query("DELETE FROM public.impersonation_tokens WHERE expires_at < now() - $1::interval")
        .bind(KEEP_EXPIRED)
        .execute(public.conn())
        .await?;
    let token = OneTimeToken::new();
    db::query(
        "INSERT INTO public.impersonation_tokens
             (token_hash, tenant_id, user_id, super_admin_id, super_admin_email, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + $6::interval)",
    )
    .bind(&token.hash)
    .bind(tenant.id)
    .bind(user_id)
    .bind(admin.id)
    .bind(&admin.email)
    .bind(TOKEN_LIFETIME)
    .execute(public.conn())
    .await?;
    admin
        .audit(
            public.conn(),
            audit::IMPERSONATION_START,
            Some(slug.as_str()),
            &format!("as {name} <{email}>"),
        )
        .await?;
    public.commit().await?;
    tracing::info!(tenant = %slug, by = %admin.email, user_id, "impersonation link minted");
    let base = TenantLinks::new(&state.site, &headers).url(&domain);
    Ok(Redirect::to(&format!("{base}impersonate?token={}", token.token)).into_response())
}
