//! Creating a tenant together with its first admin: the tenancy core's
//! provisioning transaction plus the workspace's first user.

use crate::tenancy::db;
use sqlx::PgPool;

use crate::tenancy::migrate::TENANT_MIGRATIONS;
use crate::tenancy::provision::{self, NewTenant, ProvisionError};

pub struct FirstAdmin {
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
}

/// Provisions the tenant and creates its first admin in one transaction.
pub async fn create_tenant(
    pool: &PgPool,
    root_domain: &str,
    tenant: &NewTenant,
    admin: &FirstAdmin,
) -> Result<provision::Provisioning, ProvisionError> {
    let mut p = provision::begin(pool, tenant, root_domain, &TENANT_MIGRATIONS).await?;
    db::query(
        "INSERT INTO users (email, display_name, password_hash, role) VALUES ($1, $2, $3, 'admin')",
    )
    .bind(&admin.email)
    .bind(&admin.display_name)
    .bind(&admin.password_hash)
    .execute(p.conn())
    .await?;
    db::query("UPDATE public.tenants SET user_count = 1 WHERE id = $1")
        .bind(p.tenant_id)
        .execute(p.conn())
        .await?;
    Ok(p)
}
