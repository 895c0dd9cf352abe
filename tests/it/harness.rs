//! Test harness: a real PostgreSQL (the managed cluster, started once per
//! test process in a temporary directory, or the server named by
//! `TENANTRY_TEST_DATABASE_URL`), a fresh database per test, and the real app
//! served over real HTTP on a loopback port.

// Not every test module uses every helper.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use reqwest::header::LOCATION;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, SqlSafeStr};
use tenantry::branding::{Color, clean_display_name};
use tenantry::config::{PublicUrl, SiteConfig};
use tenantry::database::TENANT_MIGRATIONS;
use tenantry::onboarding::NewTenant;
use tenantry::onboarding::{self, FirstAdmin};
use tenantry::state::AppState;
use tenantry::tenancy::{Slug, TenantRegistry};
use tokio::net::TcpListener;

pub const ROOT: &str = "localhost";
pub const PASSWORD: &str = "correct-horse-battery";
/// The hosts of the tenants [`TestDb::two_tenants`] provisions.
pub const ACME: &str = "acme.localhost";
pub const GLOBEX: &str = "globex.localhost";

/// `postgres://…@host:port` of the server tests create databases on.
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("TENANTRY_TEST_DATABASE_URL") {
            return url.trim_end_matches('/').to_owned();
        }
        if let Some(citus) = citus_cluster() {
            return citus.url("").trim_end_matches('/').to_owned();
        }
        let cluster = cluster_for_process("tenantry-test-", |dir| {
            tenantry::devdb::start(dir, tenantry::devdb::FAST_UNSAFE_SETTINGS)
                .expect("start the managed test cluster")
        });
        cluster.url("").trim_end_matches('/').to_owned()
    })
}

/// Whether `TENANTRY_TEST_CITUS=1`: the tests run on a managed Citus
/// cluster (a coordinator and one worker, both holding tenant schemas)
/// instead of the plain managed PostgreSQL.
pub fn citus_mode() -> bool {
    std::env::var("TENANTRY_TEST_CITUS").is_ok_and(|v| v == "1")
}

/// The Citus cluster of this test process in [`citus_mode`], started on
/// first use; `None` otherwise.
pub fn citus_cluster() -> Option<&'static tenantry::devdb::CitusCluster> {
    static CLUSTER: OnceLock<Option<&'static tenantry::devdb::CitusCluster>> = OnceLock::new();
    *CLUSTER.get_or_init(|| {
        citus_mode().then(|| {
            cluster_for_process("tenantry-test-citus-", |dir| {
                tenantry::devdb::start_citus(dir, tenantry::devdb::FAST_UNSAFE_SETTINGS)
                    .expect("start the Citus test cluster (TENANTRY_TEST_CITUS=1)")
            })
        })
    })
}

/// In [`citus_mode`], a test that cannot hold on a Citus cluster returns
/// early: `true` (and says why on stderr) when the caller should skip.
pub fn skip_on_citus(why: &str) -> bool {
    if citus_mode() {
        eprintln!("skipped on Citus (TENANTRY_TEST_CITUS=1): {why}");
    }
    citus_mode()
}

/// A cluster for the whole test process, started by `start` in
/// `<tmp>/<prefix><pid>` (after removing those of earlier runs whose process
/// is gone). It is owned by a thread that lives as long as the process: the
/// server is started with a parent-death signal tied to the thread that
/// spawned it, so it stops when the test process exits.
pub fn cluster_for_process<C: Send + Sync + 'static>(
    prefix: &'static str,
    start: impl FnOnce(&std::path::Path) -> C + Send + 'static,
) -> &'static C {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        remove_stale_clusters(prefix);
        let dir = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
        let cluster: &'static C = Box::leak(Box::new(start(&dir)));
        tx.send(cluster).unwrap();
        loop {
            std::thread::park();
        }
    });
    rx.recv().expect("test cluster started")
}

/// Test clusters (`<tmp>/<prefix><pid>`) of earlier runs whose process is gone.
fn remove_stale_clusters(prefix: &str) {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh, empty database with the public migrations applied. A clone is
/// the same database (for a second app instance on it).
#[derive(Clone)]
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
}

/// `<prefix>_<pid>_<n>`: a database name no other test of any running
/// process uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = unique_name("test");
        if let Some(citus) = citus_cluster() {
            // On both nodes, wired into the cluster; one at a time, as the
            // nodes' catalogues are shared (see tests/citus/cluster.rs).
            static WIRING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
            let _one = WIRING.lock().await;
            citus
                .create_database(&name)
                .await
                .expect("create the test database on both Citus nodes");
        } else {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect(&format!("{}/postgres", server_url()))
                .await
                .expect("connect to the test server");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .expect("create test database");
            admin.close().await;
        }
        TestDb::migrated(format!("{}/{name}", server_url()), 8).await
    }

    /// The existing database at `url`, with the public migrations applied,
    /// and a pool of `pool_size` connections on it.
    pub async fn migrated(url: String, pool_size: u32) -> TestDb {
        let pool = tenantry::database::pool(&url, pool_size).unwrap();
        tenantry::database::migrate_public(&pool)
            .await
            .expect("public migrations");
        TestDb { url, pool }
    }

    /// The database `name` on a cluster of a test's own (created if need
    /// be), with the public migrations applied.
    pub async fn on_cluster(
        cluster: &tenantry::devdb::ManagedCluster,
        name: &str,
        pool_size: u32,
    ) -> TestDb {
        tenantry::devdb::ensure_database(cluster, name)
            .await
            .unwrap();
        TestDb::migrated(cluster.url(name), pool_size).await
    }

    /// A fresh database with Acme (`Acme Inc`, on [`ACME`]) and Globex
    /// (`Globex Corporation`, on [`GLOBEX`]).
    pub async fn two_tenants() -> TestDb {
        let db = TestDb::new().await;
        db.create_tenant_named("acme", "Acme Inc").await;
        db.create_tenant_named("globex", "Globex Corporation").await;
        db
    }

    /// A pool of its own on this database, of `size` connections.
    pub fn pool_of(&self, size: u32) -> PgPool {
        tenantry::database::pool(&self.url, size).unwrap()
    }

    /// Provisions a tenant with an admin `admin@<slug>.test` / [`PASSWORD`].
    pub async fn create_tenant(&self, slug: &str) {
        self.create_tenant_named(slug, &format!("{slug} Inc")).await;
    }

    pub async fn create_tenant_named(&self, slug: &str, name: &str) {
        let new = NewTenant {
            slug: Slug::parse(slug).unwrap(),
            display_name: clean_display_name(name).unwrap(),
            primary_color: Color::parse("#4f46e5").unwrap(),
            accent_color: Color::parse("#0ea5e9").unwrap(),
        };
        let admin = FirstAdmin {
            email: format!("admin@{slug}.test"),
            display_name: "Admin".into(),
            password_hash: admin_hash().await,
        };
        self.provision(&new, &admin).await;
    }

    /// Provisions `new` with its first admin, as onboarding does.
    pub async fn provision(&self, new: &NewTenant, admin: &FirstAdmin) {
        onboarding::create_tenant(&self.pool, ROOT, new, admin)
            .await
            .expect("provision tenant")
            .commit()
            .await
            .unwrap();
    }

    pub async fn schema_exists(&self, schema: &str) -> bool {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.scalar(sql).await
    }

    /// Asserts that `sql` counts `expected`.
    pub async fn assert_count(&self, sql: &str, expected: i64) {
        assert_eq!(self.count(sql).await, expected, "{sql}");
    }

    /// Runs `sql` (one statement or several, no parameters).
    pub async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// The one value `sql` selects.
    pub async fn scalar<T>(&self, sql: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The one row `sql` selects.
    pub async fn row<T>(&self, sql: &str) -> T
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// The admin password's hash, computed once (argon2 is slow on purpose).
pub async fn admin_hash() -> String {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_init(|| async { tenantry::password::hash(PASSWORD.into()).await.unwrap() })
        .await
        .clone()
}

/// The real application, served on a loopback port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: TestDb,
    pub registry: Arc<TenantRegistry>,
    /// The app's in-memory request counters (for the usage jobs).
    pub usage: Arc<tenantry::usage::Counters>,
}

/// Makes the router a [`TestApp`] serves from the app's state.
type MakeRouter = Box<dyn FnOnce(AppState) -> axum::Router + Send>;

/// How a [`TestApp`] is started: [`TestApp::builder`], then [`start`].
///
/// [`start`]: TestAppBuilder::start
#[must_use]
pub struct TestAppBuilder {
    db: TestDb,
    pool_size: u32,
    database_url: Option<String>,
    trust_proxy: bool,
    limits: tenantry::http_server::ConnectionLimits,
    public_url: Option<PublicUrl>,
    metrics_token: Option<String>,
    make_router: MakeRouter,
}

impl TestAppBuilder {
    /// Connections in the app's pool (8 unless told).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// Where the app's pool connects (e.g. through PgBouncer); the test
    /// database's own URL unless told. The registry always uses the latter.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// As `TENANTRY_TRUST_PROXY`.
    pub fn trust_proxy(mut self, trust: bool) -> Self {
        self.trust_proxy = trust;
        self
    }

    /// Timeouts and the connection bound, as `tenantry serve` settings.
    pub fn limits(mut self, limits: tenantry::http_server::ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// As `TENANTRY_PUBLIC_URL`.
    pub fn public_url(mut self, url: PublicUrl) -> Self {
        self.public_url = Some(url);
        self
    }

    /// As `TENANTRY_METRICS_TOKEN`.
    pub fn metrics_token(mut self, token: &str) -> Self {
        self.metrics_token = Some(token.to_owned());
        self
    }

    /// Serves `make_router(state)` instead of the application's own router.
    pub fn router(
        mut self,
        make_router: impl FnOnce(AppState) -> axum::Router + Send + 'static,
    ) -> Self {
        self.make_router = Box::new(make_router);
        self
    }

    pub async fn start(self) -> TestApp {
        let TestAppBuilder {
            db,
            pool_size,
            database_url,
            trust_proxy,
            limits,
            public_url,
            metrics_token,
            make_router,
        } = self;
        let pool = match &database_url {
            Some(url) => tenantry::database::pool(url, pool_size).unwrap(),
            None => db.pool_of(pool_size),
        };
        // The registry LISTENs on the direct connection.
        let registry =
            TenantRegistry::start(pool.clone(), &db.url, ROOT, tenantry::branding::PROFILE)
                .await
                .expect("registry");
        let site = SiteConfig {
            base_domain: ROOT.into(),
            trust_proxy,
            public_url,
            metrics_token,
        };
        let state = AppState::new(pool, registry.clone(), site).await.unwrap();
        let usage = state.usage.clone();
        let router = make_router(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Served as `tenantry serve` serves it: peer addresses, limits.
        tokio::spawn(async move {
            tenantry::http_server::serve(listener, router, limits, std::future::pending())
                .await
                .unwrap();
        });
        TestApp {
            addr,
            db,
            registry,
            usage,
        }
    }
}

impl TestApp {
    /// The application's own router on `db`, with the default settings.
    pub async fn start(db: TestDb) -> TestApp {
        Self::builder(db).start().await
    }

    /// The application on `db`, with settings still to choose.
    pub fn builder(db: TestDb) -> TestAppBuilder {
        TestAppBuilder {
            db,
            pool_size: 8,
            database_url: None,
            trust_proxy: false,
            limits: Default::default(),
            public_url: None,
            metrics_token: None,
            make_router: Box::new(tenantry::app::router),
        }
    }

    /// A browser-like client (cookie jar, no redirects followed) that sends
    /// every host name to this server.
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(ToServer(self.addr)))
            // Under the server's 10 s wait for a next request (see battery.rs).
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap()
    }

    /// `http://<host>:<port><path>`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.addr.port())
    }

    /// GETs `path` on `host` with `client`.
    pub async fn get(&self, client: &Client, host: &str, path: &str) -> Response {
        client.get(self.url(host, path)).sent().await
    }

    /// The body of [`TestApp::get`], whatever the status.
    pub async fn get_text(&self, client: &Client, host: &str, path: &str) -> String {
        client.get(self.url(host, path)).sent_text().await
    }

    /// POSTs `fields` urlencoded to `path` on `host`, as they are (a CSRF
    /// token among them or not: see [`TestApp::post_form`]).
    pub async fn post(
        &self,
        client: &Client,
        host: &str,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Response {
        client.post(self.url(host, path)).form(fields).sent().await
    }

    /// Waits (up to 2 s) until the registry serves `host` as a tenant.
    pub async fn wait_for_host(&self, host: &str) {
        for _ in 0..200 {
            if let Some(tenantry::tenancy::Site::Tenant(_)) = self.registry.resolve(host) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{host} never appeared in the registry");
    }

    /// The CSRF token of the form on `host`'s page at `path`, for `client`.
    pub async fn csrf(&self, client: &Client, host: &str, path: &str) -> String {
        csrf_for(client, &self.url(host, path)).await
    }

    /// POSTs a urlencoded form to `action` with the CSRF token of the page
    /// at `form_page`.
    pub async fn post_form(
        &self,
        client: &Client,
        host: &str,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Response {
        let token = self.csrf(client, host, form_page).await;
        let mut body: Vec<(&str, &str)> = fields.to_vec();
        body.push(("csrf_token", &token));
        self.post(client, host, action, &body).await
    }

    /// Signs `client` in to `host` (a tenant's site or the control panel
    /// on [`ROOT`]) as `email` with [`PASSWORD`]: the login page for its
    /// CSRF token, then its form.
    pub async fn sign_in(&self, client: &Client, host: &str, email: &str) -> Response {
        self.sign_in_with(client, host, email, PASSWORD, &[]).await
    }

    /// As [`TestApp::sign_in`], with `password`, the form's POST sent with
    /// the `extra` headers (e.g. `x-forwarded-for`).
    pub async fn sign_in_with(
        &self,
        client: &Client,
        host: &str,
        email: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> Response {
        let token = self.csrf(client, host, "/login").await;
        let mut request = client.post(self.url(host, "/login")).form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &token),
        ]);
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.sent().await
    }

    /// A fresh client signed in to `host` as `email` with `password`, and
    /// the sign-in's answer, which must be a 303 to `/`.
    pub async fn signed_in_as(
        &self,
        host: &str,
        email: &str,
        password: &str,
    ) -> (Client, Response) {
        let client = self.client();
        let response = self.sign_in_with(&client, host, email, password, &[]).await;
        assert_redirect(&response, "/", &format!("sign-in of {email} at {host}"));
        (client, response)
    }

    /// A fresh client signed in to `host` as `email` with [`PASSWORD`].
    pub async fn signed_in(&self, host: &str, email: &str) -> Client {
        self.signed_in_as(host, email, PASSWORD).await.0
    }

    /// A fresh client signed in to the control panel as the super-admin
    /// `email` (see [`TestDb::create_super_admin`]).
    pub async fn super_admin(&self, email: &str) -> Client {
        self.signed_in(ROOT, email).await
    }
}

/// A request a test sends and expects an answer to: a transport error
/// fails the test.
pub trait Sent {
    /// Sends it.
    fn sent(self) -> impl Future<Output = Response> + Send;
    /// Sends it and reads the body as text, whatever the status.
    fn sent_text(self) -> impl Future<Output = String> + Send;
}

impl Sent for RequestBuilder {
    async fn sent(self) -> Response {
        self.send().await.unwrap()
    }

    async fn sent_text(self) -> String {
        self.sent().await.text().await.unwrap()
    }
}

/// The `Location` of a redirect.
pub fn location(response: &Response) -> &str {
    response.headers()[LOCATION].to_str().unwrap()
}

/// A 303 to `to`; `what` names the request in a failure.
pub fn assert_redirect(response: &Response, to: &str, what: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{what}");
    assert_eq!(location(response), to, "{what}");
}

/// The value of the header `name`, which must be there and be text.
pub fn header<'r>(response: &'r Response, name: &str) -> &'r str {
    response.headers()[name].to_str().unwrap()
}

/// The tenant migrations of this build followed by one more, `version`
/// `description` running `sql`.
pub fn migrator_with(version: i64, description: &'static str, sql: &'static str) -> Migrator {
    let mut migrations: Vec<Migration> = TENANT_MIGRATIONS.iter().cloned().collect();
    migrations.push(Migration::new(
        version,
        std::borrow::Cow::Borrowed(description),
        MigrationType::Simple,
        sqlx::AssertSqlSafe(sql).into_sql_str(),
        false,
    ));
    Migrator::with_migrations(migrations)
}

/// Resolves every name to the test server, as `*.localhost` does in browsers.
struct ToServer(SocketAddr);

impl reqwest::dns::Resolve for ToServer {
    fn resolve(&self, _: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addr = self.0;
        Box::pin(async move {
            let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(addr));
            Ok(addrs)
        })
    }
}

/// Runs the `tenantry` binary with `DATABASE_URL` set to `db`, feeding `stdin`.
pub fn cli(db: &TestDb, args: &[&str], stdin: &str) -> std::process::Output {
    cli_with_env(&[("DATABASE_URL", db.url.as_str())], args, stdin)
}

pub fn cli_with_env(env: &[(&str, &str)], args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = spawn_cli(env, args);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Starts the `tenantry` binary with `args`, piped stdin, stdout and
/// stderr, and only the settings in `env` (none of the caller's own
/// `TENANTRY_*`, `DATABASE_URL` or `RUST_LOG`).
pub fn spawn_cli(env: &[(&str, &str)], args: &[&str]) -> std::process::Child {
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("TENANTRY_")) {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tenantry")
}

impl TestDb {
    /// A control-panel super-admin with password [`PASSWORD`].
    #[allow(dead_code)] // for the control panel's tests
    pub async fn create_super_admin(&self, email: &str) {
        sqlx::query("INSERT INTO super_admins (email, password_hash) VALUES ($1, $2)")
            .bind(email)
            .bind(admin_hash().await)
            .execute(&self.pool)
            .await
            .unwrap();
    }
}

/// The value of the `csrf_token` hidden field in a page.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let Some(start) = html.find(marker) else {
        let head: String = html.chars().take(2000).collect();
        panic!("page has no csrf_token field:\n{head}");
    };
    let start = start + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// GETs `url` with `client` and returns the CSRF token of the page's form.
pub async fn csrf_for(client: &Client, url: &str) -> String {
    csrf_from(&client.get(url).sent_text().await)
}
