//! The managed local PostgreSQL cluster: what Tenantry runs on when no
//! `DATABASE_URL` is given.
//!
//! The cluster lives in `<data dir>/pgdata`, listens on a free loopback port
//! (no Unix socket, so deep data-dir paths cannot hit the socket path limit)
//! and requires a password that is generated at `initdb` and kept in
//! `<data dir>/pg-password` (mode 0600). PostgreSQL refuses to run as root, so
//! under root the server runs as the `postgres` system user (or `nobody`).
//!
//! We considered the `pgtemp` crate: it makes throw-away clusters for tests,
//! but neither keeps a data directory between runs nor drops root privileges,
//! and both are needed here, so this module does it with the server binaries.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod citus;
pub use citus::{CitusCluster, start_citus};

const SUPERUSER: &str = "tenantry";

/// Settings a throw-away test cluster trades durability for speed with.
pub const FAST_UNSAFE_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
];

/// A running managed cluster. When this process started it, dropping the
/// handle (or calling [`ManagedCluster::stop`]) shuts it down; when it was
/// already running (say, `tenantry serve` in another terminal) it is left alone.
pub struct ManagedCluster {
    port: u16,
    password: String,
    child: Option<Child>,
    data_dir: PathBuf,
}

impl ManagedCluster {
    /// Connection URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Fast shutdown: active connections are closed, data is kept.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: plain kill(2) on the pid of our own child.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGINT);
            }
            let _ = child.wait();
            tracing::info!("managed PostgreSQL stopped");
        }
    }

    pub fn owns_server(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for ManagedCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts (initialising on first use) the cluster under `data_dir`, or attaches
/// to it if another process already runs it. `settings` are extra `-c` options.
pub fn start(data_dir: &Path, settings: &[(&str, &str)]) -> Result<ManagedCluster> {
    let bindir = find_bindir()?;
    fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", data_dir.display()))?;
    let pgdata = data_dir.join("pgdata");
    let owner = ServerUser::pick()?;

    if !pgdata.join("PG_VERSION").exists() {
        init(&bindir, &data_dir, &pgdata, &owner)?;
    }
    let password = fs::read_to_string(data_dir.join("pg-password"))
        .context("the managed cluster's pg-password file is missing; remove the data directory to start afresh")?
        .trim()
        .to_owned();

    if let Some(port) = running_port(&pgdata) {
        tracing::info!(port, "using the managed PostgreSQL already running");
        return Ok(ManagedCluster {
            port,
            password,
            child: None,
            data_dir,
        });
    }

    // Reuse the last port when it is free, so the URL stays the same across
    // restarts (a running app reconnects to a restarted cluster by itself).
    let port_file = data_dir.join("port");
    let port = fs::read_to_string(&port_file)
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .map_or_else(free_port, Ok)?;
    fs::write(&port_file, port.to_string())?;
    let log_path = data_dir.join("postgres.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut cmd = Command::new(bindir.join("postgres"));
    cmd.arg("-D")
        .arg(&pgdata)
        .args(["-p", &port.to_string()])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "unix_socket_directories="])
        .args(["-c", "max_connections=200"]);
    for (key, value) in settings {
        cmd.arg("-c").arg(format!("{key}={value}"));
    }
    cmd.current_dir(&data_dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    owner.apply(&mut cmd);
    // If this process dies without stopping the server (SIGKILL, a panic that
    // aborts), the kernel stops it for us. Set after the uid switch, which
    // would otherwise clear it. Tied to the spawning thread: callers spawn
    // from a thread that lives as long as the process.
    // SAFETY: prctl is async-signal-safe and touches no Rust state.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bindir.join("postgres").display()))?;

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if running_port(&pgdata) == Some(port) {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "PostgreSQL exited ({status}) while starting; see {}",
                log_path.display()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "PostgreSQL did not start within 60 s; see {}",
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::info!(port, data_dir = %data_dir.display(), "managed PostgreSQL started");
    Ok(ManagedCluster {
        port,
        password,
        child: Some(child),
        data_dir,
    })
}

/// Creates `database` on the cluster if it does not exist yet.
pub async fn ensure_database(cluster: &ManagedCluster, database: &str) -> Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&cluster.url("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

fn init(bindir: &Path, data_dir: &Path, pgdata: &Path, owner: &ServerUser) -> Result<()> {
    tracing::info!(pgdata = %pgdata.display(), "initialising the managed PostgreSQL cluster");
    let password = random_password()?;
    // The password file for initdb must be readable by the server user; it is
    // removed right after. Ours stays owner-only.
    let pwfile = data_dir.join("initdb-pwfile");
    write_private(&pwfile, &password)?;
    owner.chown(&pwfile)?;
    fs::create_dir_all(pgdata)?;
    fs::set_permissions(pgdata, fs::Permissions::from_mode(0o700))?;
    owner.chown(pgdata)?;

    let mut cmd = Command::new(bindir.join("initdb"));
    cmd.arg("-D")
        .arg(pgdata)
        .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C"])
        .args(["--auth-host=scram-sha-256", "--auth-local=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .current_dir(data_dir)
        .stdin(Stdio::null());
    owner.apply(&mut cmd);
    let output = cmd
        .output()
        .with_context(|| format!("cannot run {}", bindir.join("initdb").display()))?;
    let _ = fs::remove_file(&pwfile);
    if !output.status.success() {
        let _ = fs::remove_dir_all(pgdata);
        let hint = if owner.ids.is_some() {
            " (as root, PostgreSQL runs as an unprivileged user, who must be able to reach \
             the data directory: set TENANTRY_DATA_DIR to a directory under /var/lib or /tmp)"
        } else {
            ""
        };
        bail!(
            "initdb failed: {}{hint}",
            String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', " ")
        );
    }
    write_private(&data_dir.join("pg-password"), &password)?;
    Ok(())
}

/// The port of a server running on `pgdata` and accepting connections, read
/// from `postmaster.pid` (line 4 is the port, line 8 the status).
fn running_port(pgdata: &Path) -> Option<u16> {
    let pidfile = fs::read_to_string(pgdata.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = pidfile.lines().collect();
    let pid: libc::pid_t = lines.first()?.trim().parse().ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    let ready = lines.get(7).is_some_and(|s| s.trim() == "ready");
    if !alive || !ready {
        return None;
    }
    lines.get(3)?.trim().parse().ok()
}

/// Where the PostgreSQL server binaries are: next to `initdb` on `PATH`, then
/// `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`.
pub fn find_bindir() -> Result<PathBuf> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_server(&dir) {
                return Ok(dir);
            }
            // Debian links only wrappers into PATH; follow the real initdb.
            if let Ok(real) = fs::canonicalize(dir.join("initdb"))
                && let Some(parent) = real.parent()
                && has_server(parent)
            {
                return Ok(parent.to_path_buf());
            }
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    bail!(
        "no PostgreSQL server binaries found (initdb, postgres). Install them \
         (Debian: apt-get install postgresql) or set DATABASE_URL to an existing database"
    )
}

/// The unprivileged user the server runs as when we are root.
struct ServerUser {
    ids: Option<(u32, u32)>,
}

impl ServerUser {
    fn pick() -> Result<ServerUser> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(ServerUser { ids: None });
        }
        for name in ["postgres", "nobody"] {
            if let Some(ids) = lookup_user(name) {
                return Ok(ServerUser { ids: Some(ids) });
            }
        }
        bail!(
            "running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as"
        )
    }

    fn apply(&self, cmd: &mut Command) {
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
            // Tools look at HOME; root's is usually unreadable for them.
            cmd.env("HOME", "/tmp");
        }
    }

    fn chown(&self, path: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.ids {
            chown(path, Some(uid), Some(gid))
                .with_context(|| format!("cannot chown {}", path.display()))?;
        }
        Ok(())
    }
}

/// Makes `cmd` run as the unprivileged server user when we are root (for
/// tools such as PgBouncer that, like PostgreSQL, refuse to run as root).
pub fn run_unprivileged(cmd: &mut Command) -> Result<()> {
    ServerUser::pick()?.apply(cmd);
    Ok(())
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy
    // the two integers out at once and are the only caller on this path.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            None
        } else {
            Some(((*pw).pw_uid, (*pw).pw_gid))
        }
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn random_password() -> Result<String> {
    let mut bytes = [0u8; 24];
    let mut urandom = fs::File::open("/dev/urandom")?;
    urandom.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}
