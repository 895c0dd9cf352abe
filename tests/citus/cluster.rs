//! The Citus cluster of this test process (a coordinator and one worker,
//! started once in a temporary directory) and a fresh database on it per test.

use std::sync::OnceLock;

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
        crate::harness::cluster_for_process("tenantry-citus-", |dir| {
            devdb::start_citus(dir, devdb::FAST_UNSAFE_SETTINGS)
                .expect("start the Citus test cluster")
        })
    })
}

/// A fresh database on both nodes, wired into the cluster, with the public
/// migrations applied on the coordinator.
pub struct CitusDb {
    pub name: String,
    pub db: TestDb,
}

impl CitusDb {
    pub async fn new() -> CitusDb {
        let name = crate::harness::unique_name("citus");
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
        let db = TestDb::migrated(cluster.url(&name), 8).await;
        CitusDb { name, db }
    }

    /// Another handle on the same database (for a `TestApp`, which takes one).
    pub fn test_db(&self) -> TestDb {
        self.db.clone()
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
