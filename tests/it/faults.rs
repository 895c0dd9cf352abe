//! Crash safety: processes killed in the middle of provisioning or of a
//! migration rollout leave every tenant whole.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use tenantry::branding::Color;
use tenantry::database::TENANT_MIGRATIONS;
use tenantry::onboarding::NewTenant;
use tenantry::tenancy::Slug;
use tenantry::tenancy::migrate::latest_version;
use tenantry::tenancy::provision::{self};

use crate::harness::{PASSWORD, ROOT, TestDb, spawn_cli};

/// Starts `tenantry` on the test database with piped output.
fn spawn(db: &TestDb, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let mut all = vec![("DATABASE_URL", db.url.as_str())];
    all.extend_from_slice(env);
    spawn_cli(&all, args)
}

/// Reads the child's `pipe` line by line, with `read`, on a blocking thread.
async fn read_lines<P, T>(
    pipe: P,
    read: impl FnOnce(Box<dyn Iterator<Item = String>>) -> T + Send + 'static,
) -> T
where
    P: std::io::Read + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        read(Box::new(BufReader::new(pipe).lines().map_while(Result::ok)))
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn killing_tenant_create_midway_leaves_nothing() {
    let db = TestDb::new().await;
    let mut child = spawn(
        &db,
        &[
            "tenant",
            "create",
            "crashy",
            "--name",
            "Crashy",
            "--admin-email",
            "a@crashy.test",
            "--password-stdin",
        ],
        &[("TENANTRY_TEST_PAUSE", "after-schema")],
    );
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{PASSWORD}").unwrap();
    }
    // Wait until it says it has created the schema (inside its transaction).
    let stderr = child.stderr.take().unwrap();
    let paused = read_lines(stderr, |mut lines| {
        lines.any(|line| line.contains("paused at after-schema"))
    })
    .await;
    assert!(paused, "provisioning reached the pause point");
    child.kill().unwrap();
    child.wait().unwrap();

    // The server notices the client is gone and rolls back; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while db.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'").await > 0 {
        assert!(Instant::now() < deadline, "the killed transaction is still open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(db.count("SELECT count(*) FROM tenants").await, 0);
    assert_eq!(db.count("SELECT count(*) FROM tenant_domains").await, 0);
    assert!(!db.schema_exists("t_crashy").await);
    // And the same tenant can then be created.
    db.create_tenant("crashy").await;
    assert!(db.schema_exists("t_crashy").await);
}

#[tokio::test]
async fn killing_migrate_midway_then_rerunning_completes_every_tenant() {
    let db = TestDb::new().await;
    // 200 tenants whose schemas have no migration applied yet.
    let nothing = Migrator::with_migrations(Vec::new());
    for i in 0..200 {
        let new = NewTenant {
            slug: Slug::parse(&format!("behind-{i:03}")).unwrap(),
            display_name: format!("Behind {i}"),
            primary_color: Color::parse("#4f46e5").unwrap(),
            accent_color: Color::parse("#0ea5e9").unwrap(),
        };
        provision::begin(&db.pool, &new.catalogue(), ROOT, &nothing)
            .await
            .unwrap()
            .commit()
            .await
            .unwrap();
    }

    let mut child = spawn(&db, &["migrate", "--jobs", "4"], &[]);
    let stdout = child.stdout.take().unwrap();
    let seen = read_lines(stdout, |lines| {
        lines
            .filter(|line| line.contains("applied"))
            .take(40)
            .count()
    })
    .await;
    assert_eq!(seen, 40, "the rollout was under way");
    child.kill().unwrap();
    child.wait().unwrap();

    let latest = latest_version(&TENANT_MIGRATIONS);
    let done = db
        .count(&format!(
            "SELECT count(*) FROM tenants WHERE schema_version = {latest}"
        ))
        .await;
    assert!(
        (40..200).contains(&done),
        "killed midway: {done} of 200 migrated"
    );

    let out = spawn(&db, &["migrate", "--jobs", "4"], &[])
        .wait_with_output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db.assert_count(
        &format!("SELECT count(*) FROM tenants WHERE schema_version = {latest}"),
        200,
    )
    .await;
    // Every schema's own ledger agrees, and every schema has its tables.
    let ledgers: i64 = db
        .count(
            "SELECT count(*) FROM pg_namespace n
              WHERE n.nspname LIKE 't\\_behind\\_%'
                AND EXISTS (SELECT 1 FROM pg_tables t WHERE t.schemaname = n.nspname AND t.tablename = 'tasks')",
        )
        .await;
    assert_eq!(ledgers, 200);
    let out = spawn(&db, &["migrate", "--all"], &[])
        .wait_with_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("200 up to date, 0 failed"), "{stdout}");
}

/// The database goes away under a running server and comes back: health
/// says so, pages answer a clear 503, and the very next requests after the
/// restart succeed without restarting the app.
#[tokio::test]
async fn database_outage_gives_503_pages_and_recovers_by_itself() {
    let dir = std::env::temp_dir().join(format!("tenantry-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A cluster of this test's own: stopping the shared one would stop every test.
    let start = |dir: std::path::PathBuf| {
        tenantry::devdb::start(&dir, tenantry::devdb::FAST_UNSAFE_SETTINGS).unwrap()
    };
    let mut cluster = start(dir.clone());
    let db = TestDb::on_cluster(&cluster, "outage", 4).await;
    db.create_tenant("acme").await;
    let app = crate::harness::TestApp::start(db).await;
    let client = app.client();
    let get = |host: &'static str, path: &'static str| {
        let request = client.get(app.url(host, path)).send();
        async move { request.await.unwrap() }
    };
    assert_eq!(get("localhost", "/readyz").await.status(), 200);
    assert_eq!(get("localhost", "/login").await.status(), 200);

    cluster.stop();
    assert_eq!(get("localhost", "/readyz").await.status(), 503);
    assert_eq!(
        get("acme.localhost", "/healthz").await.status(),
        200,
        "the process is alive"
    );
    let page = get("localhost", "/login").await;
    assert_eq!(page.status(), 503);
    let body = page.text().await.unwrap();
    assert!(body.contains("Temporarily unavailable"), "{body}");
    assert!(
        !body.contains("sqlx") && !body.contains("Connection refused"),
        "{body}"
    );

    let cluster = start(dir.clone());
    assert_eq!(get("localhost", "/readyz").await.status(), 200);
    assert_eq!(get("localhost", "/login").await.status(), 200);
    assert_eq!(get("acme.localhost", "/theme.css").await.status(), 200);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
