//! Extractors for the tenancy core's types, rejecting with [`AppError`]:
//! the site a request is for, and its transactions. (The core itself knows
//! nothing of the web layer's errors.)

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use sqlx::PgPool;

use super::AppError;
use crate::tenancy::{PublicDb, Site, TenantDb, TenantPool};

/// The site the dispatcher resolved for this request.
impl<S: Send + Sync> FromRequestParts<S> for Site {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Site, AppError> {
        parts
            .extensions
            .get::<Site>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no site resolved for the request")))
    }
}

/// The request's transaction, pinned to its tenant's schema.
impl<S> FromRequestParts<S> for TenantDb
where
    TenantPool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Some(Site::Tenant(tenant)) = parts.extensions.get::<Site>() else {
            return Err(AppError::Internal(anyhow::anyhow!(
                "TenantDb used outside a tenant site"
            )));
        };
        let pool = TenantPool::from_ref(state);
        Ok(TenantDb::begin(&pool, tenant.clone()).await?)
    }
}

/// A transaction on the shared catalogue.
impl<S> FromRequestParts<S> for PublicDb
where
    PgPool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(_: &mut Parts, state: &S) -> Result<Self, AppError> {
        let pool = PgPool::from_ref(state);
        Ok(PublicDb::begin(&pool).await?)
    }
}
