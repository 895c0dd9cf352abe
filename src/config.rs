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

    /// With no database URL, run a managed Citus cluster (a coordinator and
    /// one worker, both holding tenants) under the data dir instead of a
    /// single PostgreSQL: for development and benchmarks (docs/CITUS.md).
    #[arg(
        long,
        env = "TENANTRY_MANAGED_CITUS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub managed_citus: bool,

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

    /// Seconds a connection may move no byte before it is closed (an HTTP/1
    /// connection between requests also meets the header timeout).
    #[arg(long, env = "TENANTRY_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Connections open at once; further ones wait to be accepted.
    #[arg(long, env = "TENANTRY_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Seconds requests in flight get to finish on shutdown (SIGTERM).
    #[arg(long, env = "TENANTRY_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Seconds between writes of the in-memory request counters to the
    /// usage tables.
    #[arg(long, env = "TENANTRY_USAGE_FLUSH_SECS", default_value_t = 60)]
    pub usage_flush_secs: u64,

    /// Seconds between two batches of tenants measured for the usage
    /// figures (schema size, tasks, active sessions).
    #[arg(long, env = "TENANTRY_USAGE_REFRESH_SECS", default_value_t = 60)]
    pub usage_refresh_secs: u64,

    /// Tenants measured per batch, the ones measured longest ago first.
    #[arg(long, env = "TENANTRY_USAGE_BATCH", default_value_t = 100)]
    pub usage_batch: u32,

    /// Tenant schemas kept made and migrated ahead of time, so that a new
    /// tenant gets one renamed instead of waiting for its migrations
    /// (0: every tenant's schema is created when it is).
    #[arg(long, env = "TENANTRY_SPARE_SCHEMAS", default_value_t = 4)]
    pub spare_schemas: usize,

    #[command(flatten)]
    pub site: SiteConfig,
}

impl ServeConfig {
    /// When the usage jobs run.
    pub fn usage_schedule(&self) -> crate::usage::collect::Schedule {
        use std::time::Duration;
        crate::usage::collect::Schedule {
            flush: Duration::from_secs(self.usage_flush_secs.max(1)),
            refresh: Duration::from_secs(self.usage_refresh_secs.max(1)),
            batch: self.usage_batch.max(1),
        }
    }

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

    /// Where people open the control panel, as `scheme://base-domain[:port]`
    /// (e.g. `https://example.com` behind a proxy): the links to tenants that
    /// the CLI and the pages print use its scheme and port. Unset, the CLI
    /// prints `http` and the port of the listen address, and the pages link
    /// on the port they were reached on.
    #[arg(long, env = "TENANTRY_PUBLIC_URL", global = true)]
    pub public_url: Option<PublicUrl>,

    /// Bearer token for `GET /metrics` on the root domain; unset, the
    /// endpoint answers 404.
    #[arg(
        long,
        env = "TENANTRY_METRICS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
}

impl SiteConfig {
    /// The base domain as hosts are compared: lower-case, no trailing dot.
    pub fn root_domain(&self) -> String {
        self.base_domain
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase()
    }

    /// Refuses a public URL on another host than the base domain: its
    /// tenants' links would name hosts that do not serve them.
    pub fn check(&self) -> Result<(), String> {
        match &self.public_url {
            Some(url) if url.host != self.root_domain() => Err(format!(
                "the public URL's host {:?} is not the base domain {:?} \
                 (TENANTRY_PUBLIC_URL and TENANTRY_BASE_DOMAIN must agree)",
                url.host,
                self.root_domain()
            )),
            _ => Ok(()),
        }
    }

    /// The address people open for the site on `domain` (a tenant's, or the
    /// base domain): the public URL's scheme and port, else `http` and the
    /// port of `bind`.
    pub fn site_url(&self, domain: &str, bind: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.site(domain),
            None => PublicUrl::listening_on(bind).site(domain),
        }
    }
}

/// `scheme://host[:port]`: where people reach the server (the setting
/// `TENANTRY_PUBLIC_URL`). The port is kept only when it is not the scheme's
/// default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    https: bool,
    host: String,
    port: Option<u16>,
}

impl PublicUrl {
    /// Plain HTTP on the port of `bind`, as `tenantry serve` listens.
    pub fn listening_on(bind: SocketAddr) -> PublicUrl {
        PublicUrl {
            https: false,
            host: String::new(),
            port: Some(bind.port()).filter(|&p| p != 80),
        }
    }

    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// `:port`, or nothing for the scheme's default port.
    pub fn port_suffix(&self) -> String {
        self.port.map(|p| format!(":{p}")).unwrap_or_default()
    }

    /// `scheme://<domain>[:port]/`: the same scheme and port on another host.
    pub fn site(&self, domain: &str) -> String {
        format!("{}://{domain}{}/", self.scheme(), self.port_suffix())
    }
}

impl std::str::FromStr for PublicUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<PublicUrl, String> {
        let usage = || format!("{s:?} is not http://HOST[:PORT] or https://HOST[:PORT]");
        let lower = s.trim().to_ascii_lowercase();
        let (https, rest) = if let Some(rest) = lower.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = lower.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(usage());
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@', '[', ']']) {
            return Err(usage());
        }
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => {
                let port: u16 = port.parse().map_err(|_| usage())?;
                if port == 0 {
                    return Err(usage());
                }
                (host, Some(port))
            }
            None => (authority, None),
        };
        let host = host.trim_end_matches('.');
        if host.is_empty() {
            return Err(usage());
        }
        let default_port = if https { 443 } else { 80 };
        Ok(PublicUrl {
            https,
            host: host.to_owned(),
            port: port.filter(|&p| p != default_port),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PublicUrl;

    fn site(url: &str, domain: &str) -> String {
        url.parse::<PublicUrl>().unwrap().site(domain)
    }

    #[test]
    fn public_url_keeps_scheme_and_port_only_when_not_the_default() {
        assert_eq!(
            site("https://example.com", "acme.example.com"),
            "https://acme.example.com/"
        );
        assert_eq!(
            site("https://Example.com:443/", "a.example.com"),
            "https://a.example.com/"
        );
        assert_eq!(
            site("http://example.com:80", "a.example.com"),
            "http://a.example.com/"
        );
        assert_eq!(
            site("https://example.com:8443", "a.example.com"),
            "https://a.example.com:8443/"
        );
        assert_eq!(
            site("http://localhost:8080", "acme.localhost"),
            "http://acme.localhost:8080/"
        );
        let bind = "127.0.0.1:8181".parse().unwrap();
        assert_eq!(
            PublicUrl::listening_on(bind).site("acme.localhost"),
            "http://acme.localhost:8181/"
        );
        let bind = "0.0.0.0:80".parse().unwrap();
        assert_eq!(
            PublicUrl::listening_on(bind).site("acme.localhost"),
            "http://acme.localhost/"
        );
    }

    #[test]
    fn public_url_refuses_anything_but_scheme_host_and_port() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://",
            "https://:8443",
            "https://example.com/app",
            "https://example.com?x=1",
            "https://user@example.com",
            "https://example.com:",
            "https://example.com:0",
            "https://example.com:99999",
            "https://[::1]:8080",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad} was accepted");
        }
    }
}
