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

    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "TENANTRY_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Seconds a keep-alive connection may sit idle before it is closed.
    #[arg(long, env = "TENANTRY_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Connections open at once; further ones wait to be accepted.
    #[arg(long, env = "TENANTRY_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Seconds requests in flight get to finish on shutdown (SIGTERM).
    #[arg(long, env = "TENANTRY_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    #[command(flatten)]
    pub site: SiteConfig,
}

impl ServeConfig {
    pub fn connection_limits(&self) -> crate::http_server::ConnectionLimits {
        use std::time::Duration;
        crate::http_server::ConnectionLimits {
            header_read_timeout: Duration::from_secs(self.header_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        }
    }
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
