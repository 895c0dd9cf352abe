//! Settings: each one an environment variable and a command-line flag.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the database is. Shared by every command.
#[derive(clap::Args, Clone, Debug)]
pub struct DbConfig {
    /// PostgreSQL to use; unset runs a managed local cluster under the data dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Direct connection to PostgreSQL (not through a transaction-mode
    /// PgBouncer) for LISTEN/NOTIFY, migrations and the CLI; defaults to the
    /// database URL.
    #[arg(
        long,
        env = "DATABASE_LISTEN_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_listen_url: Option<String>,

    /// Where the managed cluster lives.
    #[arg(
        long,
        env = "TENANTRY_DATA_DIR",
        default_value = ".tenantry",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Connections in the pool.
    #[arg(
        long,
        env = "TENANTRY_DB_POOL_SIZE",
        default_value_t = 16,
        global = true
    )]
    pub db_pool_size: u32,

    /// Use named prepared statements; set to false behind a transaction-mode
    /// PgBouncer older than 1.21.
    #[arg(
        long,
        env = "TENANTRY_DB_PREPARED_STATEMENTS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub db_prepared_statements: bool,
}

/// Settings of the web server.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeConfig {
    /// Listen address.
    #[arg(long, env = "TENANTRY_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    #[command(flatten)]
    pub site: SiteConfig,
}

/// What the router needs to know about the outside world.
#[derive(clap::Args, Clone, Debug)]
pub struct SiteConfig {
    /// Root domain: it serves the control panel; tenants live under it.
    #[arg(
        long,
        env = "TENANTRY_BASE_DOMAIN",
        default_value = "localhost",
        global = true
    )]
    pub base_domain: String,

    /// Trust X-Forwarded-Proto/-Host from a reverse proxy in front.
    #[arg(
        long,
        env = "TENANTRY_TRUST_PROXY",
        default_value_t = false,
        global = true
    )]
    pub trust_proxy: bool,
}

impl SiteConfig {
    /// The base domain as hosts are compared: lower-case, no trailing dot.
    pub fn root_domain(&self) -> String {
        self.base_domain
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase()
    }
}
