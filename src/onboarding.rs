//! Creating a tenant together with its first admin: the tenancy core's
//! provisioning transaction plus the workspace's first user.

use sqlx::PgPool;

use crate::branding::Color;
use crate::database::TENANT_MIGRATIONS;
use crate::tenancy::db;
use crate::tenancy::provision::{self, ProvisionError};
use crate::tenancy::schema::Slug;

/// A new tenant as the application creates it: its slug, name and colours.
#[derive(Clone, Debug)]
pub struct NewTenant {
    pub slug: Slug,
    pub display_name: String,
    pub primary_color: Color,
    pub accent_color: Color,
}

impl NewTenant {
    /// The core's part: the slug, and the branding columns of the row.
    pub fn catalogue(&self) -> provision::NewTenant {
        provision::NewTenant {
            slug: self.slug.clone(),
            profile: vec![
                ("display_name", self.display_name.clone()),
                ("primary_color", self.primary_color.to_string()),
                ("accent_color", self.accent_color.to_string()),
            ],
        }
    }
}

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
    let mut p =
        provision::begin(pool, &tenant.catalogue(), root_domain, &TENANT_MIGRATIONS).await?;
    pause_for_tests("after-schema").await;
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

/// Test hook for the crash-safety tests: with `TENANTRY_TEST_PAUSE=<point>`
/// set, tenant creation stops at that point (`after-schema`: the schema is
/// created and migrated, the transaction still open) for
/// `TENANTRY_TEST_PAUSE_MS` (default a minute), so a test can kill the
/// process mid-transaction.
async fn pause_for_tests(point: &str) {
    if std::env::var("TENANTRY_TEST_PAUSE").as_deref() == Ok(point) {
        let ms = std::env::var("TENANTRY_TEST_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60_000);
        eprintln!("paused at {point}");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}
