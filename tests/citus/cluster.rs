//! The Citus cluster of this test process (a coordinator and one worker,
//! started once in a temporary directory) and a fresh database on it per test.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::PgPool;
use tenantry::devdb::{self, CitusCluster};

use crate::harness::TestDb;

/// Why the suite cannot run here, or `None`.
pub fn missing() -> Option<String> {
    match devdb::find_bindir() {
        Ok(bindir) => devdb::citus::missing_extension(&bindir),
        Err(e) => Some(e.to_string()),
    }
}

/// The cluster, started on first use by a thread that lives as long as the
/// process (the servers get a parent-death signal tied to that thread).
pub fn cluster() -> &'static CitusCluster {
    static CLUSTER: OnceLock<&'static CitusCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            remove_stale_clusters();
            let dir = std::env::temp_dir().join(format!("tenantry-citus-{}", std::process::id()));
            let cluster = devdb::start_citus(&dir, devdb::FAST_UNSAFE_SETTINGS)
                .expect("start the Citus test cluster");
            let cluster: &'static CitusCluster = Box::leak(Box::new(cluster));
            tx.send(cluster).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().expect("Citus test cluster started")
    })
}

/// Test clusters of earlier runs whose process is gone.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("tenantry-citus-"))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh database on both nodes, wired into the cluster, with the public
/// migrations applied on the coordinator.
pub struct CitusDb {
    pub name: String,
    pub db: TestDb,
}

impl CitusDb {
    pub async fn new() -> CitusDb {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "citus_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let cluster = cluster();
        // One database wired at a time: the nodes' catalogues are shared.
        static WIRING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        {
            let _one = WIRING.lock().await;
            cluster
                .create_database(&name)
                .await
                .expect("create the test database on both nodes");
        }
        let url = cluster.url(&name);
        let pool = tenantry::database::pool(&url, 8).unwrap();
        tenantry::database::migrate_public(&pool)
            .await
            .expect("public migrations");
        CitusDb {
            name,
            db: TestDb { url, pool },
        }
    }

    /// Another handle on the same database (for a `TestApp`, which takes one).
    pub fn test_db(&self) -> TestDb {
        TestDb {
            url: self.db.url.clone(),
            pool: self.db.pool.clone(),
        }
    }

    /// A pool on this database on the worker, to look at what lives there.
    pub fn worker_pool(&self) -> PgPool {
        tenantry::database::pool(&cluster().worker_url(&self.name), 2).unwrap()
    }

    /// `(host, port)` of the coordinator and the worker.
    pub fn nodes(&self) -> [(String, u16); 2] {
        cluster().nodes()
    }
}
