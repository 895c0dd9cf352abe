//! Opening the database: the configured URL or the managed local cluster, one
//! bounded pool, and pending public migrations applied.

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DbConfig;
use crate::devdb::{self, CitusCluster, ManagedCluster};
use sqlx::migrate::{MigrateError, Migrator};

/// Name of the database created on the managed cluster.
const MANAGED_DATABASE: &str = "tenantry";

pub struct Database {
    pub pool: PgPool,
    /// A direct connection URL (never through PgBouncer): LISTEN, migrations.
    pub direct_url: String,
    /// The managed cluster, when we run one; dropping it stops the server.
    pub cluster: Option<Managed>,
}

/// A database this process started and stops when dropped.
pub enum Managed {
    Postgres(ManagedCluster),
    /// `TENANTRY_MANAGED_CITUS`: a coordinator and a worker.
    Citus(CitusCluster),
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
        crate::tenancy::db::connect_directly(direct || config.database_listen_url.is_none());
        let (url, cluster) = match &config.database_url {
            Some(url) => (url.clone(), None),
            None if config.managed_citus => {
                // Beside a plain managed cluster's files, not over them.
                let cluster = devdb::start_citus(&config.data_dir.join("citus"), &[])?;
                cluster
                    .create_database(MANAGED_DATABASE)
                    .await
                    .context("cannot create the managed Citus database")?;
                let url = cluster.url(MANAGED_DATABASE);
                (url, Some(Managed::Citus(cluster)))
            }
            None => {
                let cluster = devdb::start(&config.data_dir, &[])?;
                devdb::ensure_database(&cluster, MANAGED_DATABASE)
                    .await
                    .context("cannot create the managed database")?;
                let url = cluster.url(MANAGED_DATABASE);
                (url, Some(Managed::Postgres(cluster)))
            }
        };
        let direct_url = config.database_listen_url.clone().unwrap_or(url.clone());
        let migrations = pool(&direct_url, 1)?;
        migrate_public(&migrations)
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

/// The application's migrations: the shared catalogue in `public`, and the
/// tables of every tenant's workspace (applied after the core's own).
pub static PUBLIC_MIGRATIONS: Migrator = sqlx::migrate!("migrations/public");
pub static TENANT_MIGRATIONS: Migrator = sqlx::migrate!("migrations/tenant");

/// Applies pending public migrations, the application's then the core's
/// catalogue (every command does this first).
pub async fn migrate_public(pool: &PgPool) -> Result<(), MigrateError> {
    PUBLIC_MIGRATIONS.run(pool).await?;
    crate::tenancy::migrate::migrate_catalogue(pool).await
}

/// A bounded pool. Connections are recycled after a while: a backend that
/// has touched thousands of schemas holds a large catalogue cache.
pub fn pool(url: &str, size: u32) -> Result<PgPool> {
    let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a valid URL")?;
    let options = options
        .application_name("tenantry")
        // Per connection: with tenant-affine connections (`tenancy::affinity`)
        // each serves a share of the tenants, and this many statements hold
        // the board's statements of about 340 of them. It also bounds the
        // plans a backend keeps (a few dozen KiB each).
        .statement_cache_capacity(1024);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::sql_split::split_statements;

    /// The shipped tenant migrations stay cheap to roll out over many
    /// schemas: no column added with a DEFAULT (set it apart instead).
    #[test]
    fn tenant_migrations_add_no_column_with_a_default() {
        for migration in TENANT_MIGRATIONS.iter() {
            let costly = crate::tenancy::migrate::adds_column_with_default(migration.sql.as_str());
            assert!(
                costly.is_empty(),
                "migration {}: {costly:?}",
                migration.version
            );
        }
    }

    /// The SHA-384 that every existing tenant ledger holds for version 1.
    const WORKSPACE_CHECKSUM: &str = "8841c7be91eb8fc1d1d409d5e48cb56d3df0c98507beb01265778a70debb3ebeed61a2b34396c58056517be435187b6d";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[tokio::test]
    async fn tenant_migration_checksums_are_unchanged() {
        let embedded: Vec<_> = TENANT_MIGRATIONS.iter().collect();
        let first = embedded.iter().find(|m| m.version == 1).unwrap();
        assert_eq!(hex(&first.checksum), WORKSPACE_CHECKSUM);

        // And it is what sqlx's own migrator reads from the directory.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/tenant");
        let from_disk = Migrator::new(dir).await.unwrap();
        let on_disk: Vec<_> = from_disk
            .iter()
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect();
        let ours: Vec<_> = embedded
            .iter()
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect();
        assert_eq!(ours, on_disk);
    }

    #[test]
    fn every_tenant_migration_splits_into_statements() {
        for m in TENANT_MIGRATIONS.iter() {
            let statements = split_statements(m.sql.as_str());
            assert!(!statements.is_empty(), "migration {}", m.version);
        }
    }
}
