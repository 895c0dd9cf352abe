//! Opening the database: the configured URL or the managed local cluster, one
//! bounded pool, and pending public migrations applied.

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DbConfig;
use crate::devdb::{self, ManagedCluster};
use crate::tenancy::migrate;

/// Name of the database created on the managed cluster.
const MANAGED_DATABASE: &str = "tenantry";

pub struct Database {
    pub pool: PgPool,
    /// A direct connection URL (never through PgBouncer): LISTEN, migrations.
    pub direct_url: String,
    /// The managed cluster, when we run one; dropping it stops the server.
    pub cluster: Option<ManagedCluster>,
}

impl Database {
    /// The server's database: the pool on `DATABASE_URL` (which may go
    /// through PgBouncer), after pending public migrations are applied over
    /// the direct connection.
    pub async fn open(config: &DbConfig, pool_size: u32) -> Result<Database> {
        Self::connect(config, pool_size, false).await
    }

    /// For the CLI: the pool itself goes straight to PostgreSQL, since
    /// provisioning and migrations take locks a transaction pooler would split.
    pub async fn open_direct(config: &DbConfig, pool_size: u32) -> Result<Database> {
        Self::connect(config, pool_size, true).await
    }

    async fn connect(config: &DbConfig, pool_size: u32, direct: bool) -> Result<Database> {
        crate::tenancy::db::use_prepared_statements(config.db_prepared_statements);
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
        let direct_url = config.database_listen_url.clone().unwrap_or(url.clone());
        let migrations = pool(&direct_url, 1)?;
        migrate::migrate_public(&migrations)
            .await
            .context("cannot apply the public migrations")?;
        migrations.close().await;
        let pool = pool(if direct { &direct_url } else { &url }, pool_size)?;
        Ok(Database {
            pool,
            direct_url,
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
        // No ping per checkout (a round trip on every request). A connection
        // that sat idle for a while is pinged, since the database may have
        // restarted meanwhile; busy ones are not, and transactions still step
        // over a dead one at BEGIN (tenancy::db).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > Duration::from_secs(1) {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .max_lifetime(Duration::from_secs(30 * 60))
        .idle_timeout(Duration::from_secs(10 * 60))
        .connect_lazy_with(options))
}
