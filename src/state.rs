//! The state every handler can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::config::SiteConfig;
use crate::tenancy::TenantRegistry;
use crate::web::csrf::CsrfKey;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub registry: Arc<TenantRegistry>,
    pub site: Arc<SiteConfig>,
    pub csrf: CsrfKey,
}

impl AppState {
    pub async fn new(
        pool: PgPool,
        registry: Arc<TenantRegistry>,
        site: SiteConfig,
    ) -> Result<AppState, sqlx::Error> {
        let csrf = CsrfKey::load_or_create(&pool).await?;
        Ok(AppState {
            pool,
            registry,
            site: Arc::new(site),
            csrf,
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

impl FromRef<AppState> for Arc<SiteConfig> {
    fn from_ref(state: &AppState) -> Arc<SiteConfig> {
        state.site.clone()
    }
}
