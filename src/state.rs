//! The state every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::config::SiteConfig;
use crate::tenancy::{TenantPool, TenantRegistry};
use crate::usage::Counters;
use crate::web::csrf::CsrfKey;

#[derive(Clone)]
pub struct AppState {
    /// The catalogue, the control panel, jobs: everything but tenants' data.
    pub pool: PgPool,
    /// Tenants' transactions, each tenant on its own share of connections.
    pub tenants: TenantPool,
    pub registry: Arc<TenantRegistry>,
    pub site: Arc<SiteConfig>,
    pub csrf: CsrfKey,
    /// Requests per site, counted in memory until the usage flush.
    pub usage: Arc<Counters>,
}

impl AppState {
    /// A state whose tenant connections are as many as `pool` holds.
    pub async fn new(
        pool: PgPool,
        registry: Arc<TenantRegistry>,
        site: SiteConfig,
    ) -> Result<AppState, sqlx::Error> {
        let tenants = TenantPool::beside(&pool, pool.options().get_max_connections());
        AppState::with_tenant_pool(pool, tenants, registry, site).await
    }

    pub async fn with_tenant_pool(
        pool: PgPool,
        tenants: TenantPool,
        registry: Arc<TenantRegistry>,
        site: SiteConfig,
    ) -> Result<AppState, sqlx::Error> {
        let csrf = CsrfKey::load_or_create(&pool).await?;
        Ok(AppState {
            pool,
            tenants,
            registry,
            site: Arc::new(site),
            csrf,
            usage: Counters::new(),
        })
    }

    /// The root domain as hosts are compared.
    pub fn root_domain(&self) -> &str {
        self.registry.root_domain()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> PgPool {
        state.pool.clone()
    }
}

impl FromRef<AppState> for TenantPool {
    fn from_ref(state: &AppState) -> TenantPool {
        state.tenants.clone()
    }
}

impl FromRef<AppState> for Arc<SiteConfig> {
    fn from_ref(state: &AppState) -> Arc<SiteConfig> {
        state.site.clone()
    }
}
