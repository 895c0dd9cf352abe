//! A managed Citus cluster for tests and development: a coordinator and one
//! worker, each a managed PostgreSQL cluster (see the parent module) started
//! from the same server binaries with the Citus extension preloaded.
//!
//! ```text
//! <dir>/coordinator   the coordinator: catalogue (public), LISTEN/NOTIFY,
//!                     advisory locks, migrations; schema-based sharding on
//! <dir>/worker        a worker, holding tenant schemas the coordinator places there
//! ```
//!
//! Both nodes hold tenant schemas (the coordinator has `shouldhaveshards`),
//! so new schemas alternate between them. Citus needs the same database on
//! every node, each with the extension and its own node list:
//! [`CitusCluster::create_database`] does that. The nodes connect to each
//! other as the superuser, with the one password both share, which each
//! database keeps in `pg_dist_authinfo` (readable by superusers only).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use super::{ManagedCluster, start, write_private};

/// The host name the nodes know each other by (both listen on loopback).
pub const NODE_HOST: &str = "127.0.0.1";

/// What every Citus node needs: the extension preloaded, and logical
/// decoding for moves that keep a schema writable. Citus runs a maintenance
/// worker per database (it also runs rebalances): the default eight
/// background workers run out with a few databases ("could not start
/// maintenance background worker"), as the tests make one per test.
const NODE_SETTINGS: &[(&str, &str)] = &[
    ("shared_preload_libraries", "citus"),
    ("wal_level", "logical"),
    ("max_worker_processes", "64"),
];

/// A running coordinator and worker. Dropping it stops both (when this
/// process started them).
pub struct CitusCluster {
    coordinator: ManagedCluster,
    worker: ManagedCluster,
}

/// Starts (initialising on first use) a coordinator in `<dir>/coordinator`
/// and a worker in `<dir>/worker`; `settings` are extra `-c` options for both
/// (say [`super::FAST_UNSAFE_SETTINGS`]). Fails if Citus is not installed.
pub fn start_citus(dir: &Path, settings: &[(&str, &str)]) -> Result<CitusCluster> {
    let bindir = super::find_bindir()?;
    if let Some(missing) = missing_extension(&bindir) {
        bail!("{missing}");
    }
    let mut worker_settings: Vec<(&str, &str)> = NODE_SETTINGS.to_vec();
    worker_settings.extend_from_slice(settings);
    let mut coordinator_settings = worker_settings.clone();
    coordinator_settings.push(("citus.enable_schema_based_sharding", "on"));

    let coordinator = start(&dir.join("coordinator"), &coordinator_settings)
        .context("cannot start the Citus coordinator")?;
    let mut worker =
        start(&dir.join("worker"), &worker_settings).context("cannot start the Citus worker")?;
    share_password(&coordinator, &mut worker)?;
    Ok(CitusCluster {
        coordinator,
        worker,
    })
}

/// Why Citus cannot run here, or `None` when its library is installed with
/// the server binaries found in `bindir` (in `pg_config --pkglibdir` of that
/// installation, else `../lib`).
pub fn missing_extension(bindir: &Path) -> Option<String> {
    // Follow links (e.g. /usr/local/bin/postgres) to the installation itself.
    let real = std::fs::canonicalize(bindir.join("postgres")).unwrap_or(bindir.join("postgres"));
    let real_bindir = real.parent().unwrap_or(bindir);
    let libdir = std::process::Command::new(real_bindir.join("pg_config"))
        .arg("--pkglibdir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .unwrap_or_else(|| real_bindir.join("../lib"));
    let lib = libdir.join("citus.so");
    (!lib.is_file()).then(|| format!("Citus is not installed ({} not found)", lib.display()))
}

impl CitusCluster {
    /// Connection URL for `database` on the coordinator: what the app,
    /// migrations and the CLI use.
    pub fn url(&self, database: &str) -> String {
        self.coordinator.url(database)
    }

    /// Connection URL for `database` on the worker (for inspection).
    pub fn worker_url(&self, database: &str) -> String {
        self.worker.url(database)
    }

    pub fn coordinator(&self) -> &ManagedCluster {
        &self.coordinator
    }

    pub fn worker(&self) -> &ManagedCluster {
        &self.worker
    }

    /// `(host, port)` of the coordinator, then of the worker, as Citus names them.
    pub fn nodes(&self) -> [(String, u16); 2] {
        [
            (NODE_HOST.to_owned(), self.coordinator.port),
            (NODE_HOST.to_owned(), self.worker.port),
        ]
    }

    /// Creates `database` on both nodes (if missing) and wires it into a
    /// Citus cluster: the extension on both, the nodes' password, the
    /// coordinator registered as such and holding schemas too, the worker
    /// added. Idempotent.
    pub async fn create_database(&self, database: &str) -> Result<()> {
        let password = &self.coordinator.password;
        let authinfo = format!("password={password}");

        // The worker first: adding it to the coordinator's node list checks
        // that its database has the extension, and connects with the password.
        super::ensure_database(&self.worker, database).await?;
        let mut worker = PgConnection::connect(&self.worker.url(database)).await?;
        prepare_node(&mut worker, &authinfo).await?;
        worker.close().await?;

        super::ensure_database(&self.coordinator, database).await?;
        let mut coordinator = PgConnection::connect(&self.coordinator.url(database)).await?;
        prepare_node(&mut coordinator, &authinfo).await?;
        let (cport, wport) = (
            i32::from(self.coordinator.port),
            i32::from(self.worker.port),
        );
        let listed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodename = $1 AND nodeport = $2)",
        )
        .bind(NODE_HOST)
        .bind(wport)
        .fetch_one(&mut coordinator)
        .await?;
        // A restarted node may have had to take a new port (its last one
        // was taken): point the node list at where the nodes are now.
        let moved: Option<i32> = sqlx::query_scalar(
            "SELECT nodeid FROM pg_dist_node WHERE groupid <> 0 AND nodeport <> $1 LIMIT 1",
        )
        .bind(wport)
        .fetch_optional(&mut coordinator)
        .await?;
        if let (false, Some(nodeid)) = (listed, moved) {
            sqlx::query("SELECT citus_update_node($1, $2, $3)")
                .bind(nodeid)
                .bind(NODE_HOST)
                .bind(wport)
                .execute(&mut coordinator)
                .await
                .context("citus_update_node (the worker's new port)")?;
        }
        let coordinator_listed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_node WHERE groupid = 0 AND nodeport = $1)",
        )
        .bind(cport)
        .fetch_one(&mut coordinator)
        .await?;
        if listed || moved.is_some() {
            if !coordinator_listed {
                sqlx::query("SELECT citus_set_coordinator_host($1, $2)")
                    .bind(NODE_HOST)
                    .bind(cport)
                    .execute(&mut coordinator)
                    .await
                    .context("citus_set_coordinator_host (its new port)")?;
            }
        } else {
            sqlx::query("SELECT citus_set_coordinator_host($1, $2)")
                .bind(NODE_HOST)
                .bind(cport)
                .execute(&mut coordinator)
                .await
                .context("citus_set_coordinator_host")?;
            // The coordinator's first connection to the worker's new
            // database can fail while that node is busy (seen with several
            // databases set up at once): try again before giving up.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let added = sqlx::query("SELECT citus_add_node($1, $2)")
                    .bind(NODE_HOST)
                    .bind(wport)
                    .execute(&mut coordinator)
                    .await;
                match added {
                    Ok(_) => break,
                    Err(e) if attempt < 5 => {
                        tracing::debug!(error = %e, attempt, "citus_add_node failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(300 * attempt)).await;
                    }
                    Err(e) => return Err(e).context("citus_add_node (the worker)"),
                }
            }
            sqlx::query("SELECT citus_set_node_property($1, $2, 'shouldhaveshards', true)")
                .bind(NODE_HOST)
                .bind(cport)
                .execute(&mut coordinator)
                .await
                .context("citus_set_node_property (the coordinator holds schemas)")?;
        }
        coordinator.close().await?;
        Ok(())
    }
}

/// Gives the worker's superuser the coordinator's password (the nodes log
/// in to each other with one `pg_dist_authinfo` entry), once: the worker's
/// password file is rewritten to match. On a thread of its own, so it can be
/// called from inside or outside a runtime.
fn share_password(coordinator: &ManagedCluster, worker: &mut ManagedCluster) -> Result<()> {
    let shared = coordinator.password.clone();
    if worker.password == shared {
        return Ok(());
    }
    let url = worker.url("postgres");
    let sql = format!(
        "ALTER ROLE {} PASSWORD '{}'",
        super::SUPERUSER,
        shared.replace('\'', "''")
    );
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
                    .block_on(async {
                        let mut conn = PgConnection::connect(&url).await?;
                        conn.execute(AssertSqlSafe(sql)).await?;
                        conn.close().await?;
                        anyhow::Ok(())
                    })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("setting the worker's password panicked"))?
    })
    .context("cannot give the Citus worker the coordinator's password")?;
    write_private(&worker.data_dir.join("pg-password"), &shared)?;
    worker.password = shared;
    Ok(())
}

/// The extension and the superuser's password for node-to-node connections.
async fn prepare_node(conn: &mut PgConnection, authinfo: &str) -> Result<()> {
    conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
        .await
        .context("CREATE EXTENSION citus")?;
    sqlx::query(
        "INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) VALUES (0, $1, $2)
         ON CONFLICT (nodeid, rolename) DO UPDATE SET authinfo = EXCLUDED.authinfo",
    )
    .bind(super::SUPERUSER)
    .bind(authinfo)
    .execute(&mut *conn)
    .await
    .context("pg_dist_authinfo")?;
    Ok(())
}
