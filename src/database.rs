//! Opening the database: the configured URL or the managed local cluster, one
//! bounded pool, and pending public migrations applied.

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DbConfig;
use crate::devdb::{self, ManagedCluster};
use crate::tenancy::migrate;

/// Name of the database created on the managed cluster.
const MANAGED_DATABASE: &str = "tenantry";

pub struct Database {
    pub pool: PgPool,
    /// URL for the registry's LISTEN connection.
    pub listen_url: String,
    /// The managed cluster, when we run one; dropping it stops the server.
    pub cluster: Option<ManagedCluster>,
}

impl Database {
    /// Connects (starting the managed cluster when no URL is configured) with
    /// a pool of `pool_size`, and applies pending public migrations.
    pub async fn open(config: &DbConfig, pool_size: u32) -> Result<Database> {
        let (url, cluster) = match &config.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let cluster = devdb::start(&config.data_dir, &[])?;
                devdb::ensure_database(&cluster, MANAGED_DATABASE)
                    .await
                    .context("cannot create the managed database")?;
                (cluster.url(MANAGED_DATABASE), Some(cluster))
            }
        };
        let pool = pool(&url, pool_size)?;
        migrate::migrate_public(&pool)
            .await
            .context("cannot apply the public migrations")?;
        let listen_url = config.database_listen_url.clone().unwrap_or(url);
        Ok(Database {
            pool,
            listen_url,
            cluster,
        })
    }
}

/// The one bounded pool. Connections are recycled after a while: a backend
/// that has touched thousands of schemas holds a large catalogue cache.
pub fn pool(url: &str, size: u32) -> Result<PgPool> {
    let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a valid URL")?;
    let options = options
        .application_name("tenantry")
        .statement_cache_capacity(256);
    Ok(PgPoolOptions::new()
        .max_connections(size.max(1))
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .max_lifetime(Duration::from_secs(30 * 60))
        .idle_timeout(Duration::from_secs(10 * 60))
        .connect_lazy_with(options))
}
