//! A PgBouncer in transaction pooling mode in front of the test server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::suite::Helper;

/// Stopped when dropped.
pub struct PgBouncer(Helper);

/// The PgBouncer binary, if installed (Debian puts it in /usr/sbin).
pub fn binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")]);
    candidates
        .map(|dir| dir.join("pgbouncer"))
        .find(|p| p.is_file())
}

/// `postgres://user:password@host:port/db` → (user, password, host, port, db).
fn split_url(url: &str) -> (String, Option<String>, String, u16, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (creds, rest) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let (user, password) = match creds.split_once(':') {
        Some((u, p)) => (u.to_owned(), Some(p.to_owned())),
        None => (creds.to_owned(), None),
    };
    let (hostport, db) = rest.split_once('/').unwrap_or((rest, "postgres"));
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
    (
        user,
        password,
        host.to_owned(),
        port.parse().unwrap(),
        db.to_owned(),
    )
}

/// Why the PgBouncer tests cannot run here (`None` when they can): the
/// binary is missing. See `tests/common/suite.rs` for what follows.
pub fn missing() -> Option<String> {
    match binary() {
        Some(_) => None,
        None => Some("pgbouncer not found; apt-get install pgbouncer".to_owned()),
    }
}

impl PgBouncer {
    /// Starts PgBouncer for the server of `database_url`.
    pub fn start(database_url: &str) -> PgBouncer {
        let binary = binary().expect("pgbouncer is installed");
        let (user, password, host, port, _) = split_url(database_url);
        let (listen_port, dir) = Helper::prepare("pgbouncer");
        let auth_type = if password.is_some() {
            "scram-sha-256"
        } else {
            "trust"
        };
        std::fs::write(
            dir.join("userlist.txt"),
            format!("\"{user}\" \"{}\"\n", password.unwrap_or_default()),
        )
        .unwrap();
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {listen_port}\nunix_socket_dir =\n\
                 auth_type = {auth_type}\nauth_file = {}\npool_mode = transaction\n\
                 default_pool_size = 4\nmax_client_conn = 1000\n\
                 ignore_startup_parameters = extra_float_digits\n\
                 logfile = {}\n",
                dir.join("userlist.txt").display(),
                dir.join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        make_readable(&dir);
        let mut cmd = Command::new(binary);
        cmd.arg(dir.join("pgbouncer.ini"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        tenantry::devdb::run_unprivileged(&mut cmd).unwrap();
        let child = cmd.spawn().expect("start pgbouncer");
        PgBouncer(Helper::started(child, (listen_port, dir), 10, "pgbouncer"))
    }

    /// `database_url` with host and port replaced by this PgBouncer's.
    pub fn url_for(&self, database_url: &str) -> String {
        let (user, password, _, _, db) = split_url(database_url);
        let creds = match password {
            Some(p) => format!("{user}:{p}"),
            None => user,
        };
        format!("postgres://{creds}@127.0.0.1:{}/{db}", self.0.port)
    }
}

/// The unprivileged user PgBouncer runs as must read its files (and write its log).
fn make_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}
