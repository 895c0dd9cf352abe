//! Search-path isolation: one pooled connection serving two tenants in turn
//! never shows one tenant's rows to the other, even after errors and panics.

use axum::Router;
use axum::middleware;
use axum::routing::get;
use tenantry::tenancy::TenantDb;
use tenantry::tenancy::resolve::SiteDispatch;
use tenantry::web::AppError;

use crate::harness::{TestApp, TestDb};

/// Every task title and the schema the connection resolves names in (asked
/// in a statement of its own: on Citus a function in a statement routed to
/// a worker is evaluated there, without the connection's `search_path`).
async fn probe(mut db: TenantDb) -> Result<String, AppError> {
    let titles: Option<String> =
        sqlx::query_scalar("SELECT string_agg(title, ',' ORDER BY title) FROM tasks")
            .fetch_one(db.conn())
            .await?;
    let schemas: String = sqlx::query_scalar("SELECT current_schemas(false)::text")
        .fetch_one(db.conn())
        .await?;
    Ok(format!("{}|{schemas}", titles.unwrap_or_default()))
}

/// Writes a row, then fails: the transaction must roll back.
async fn fail_after_write(mut db: TenantDb) -> Result<String, AppError> {
    sqlx::query("INSERT INTO tasks (title) VALUES ('leaked')")
        .execute(db.conn())
        .await?;
    sqlx::query("SELECT * FROM no_such_table")
        .execute(db.conn())
        .await?;
    Ok("unreachable".into())
}

/// Changes the search path by hand, then panics mid-transaction.
async fn panic_midway(mut db: TenantDb) -> String {
    sqlx::query("SET search_path TO public")
        .execute(db.conn())
        .await
        .unwrap();
    sqlx::query("INSERT INTO tasks (title) VALUES ('leaked')")
        .execute(db.conn())
        .await
        .unwrap();
    panic!("handler panicked on purpose");
}

/// A table that exists only in public must not be found from a tenant.
async fn public_table(mut db: TenantDb) -> Result<String, AppError> {
    sqlx::query("SELECT count(*) FROM super_admins")
        .execute(db.conn())
        .await?;
    Ok("found public.super_admins".into())
}

fn probe_router(state: tenantry::state::AppState) -> Router {
    let tenant_app = Router::new()
        .route("/probe", get(probe))
        .route("/fail", get(fail_after_write))
        .route("/panic", get(panic_midway))
        .route("/public", get(public_table))
        .with_state(state.clone())
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(middleware::from_fn(tenantry::web::errors::error_pages));
    let dispatch = SiteDispatch {
        registry: state.registry.clone(),
        control_panel: Router::new(),
        tenant_app,
        trust_proxy: false,
        unknown_host: tenantry::web::errors::unknown_host,
    };
    Router::new().fallback(move |req| dispatch.clone().dispatch(req))
}

#[tokio::test]
async fn one_connection_alternating_between_two_tenants() {
    let db = TestDb::new().await;
    db.create_tenant("acme").await;
    db.create_tenant("globex").await;
    db.exec(
        "INSERT INTO t_acme.tasks (title) VALUES ('acme-a'), ('acme-b');
         INSERT INTO t_globex.tasks (title) VALUES ('globex-a');",
    )
    .await;
    // A pool of ONE connection: every request reuses it, tenant after tenant.
    let app = TestApp::builder(db)
        .pool_size(1)
        .router(probe_router)
        .start()
        .await;
    let client = app.client();
    let expect = |host: &str| match host {
        "acme.localhost" => "acme-a,acme-b|{t_acme}",
        _ => "globex-a|{t_globex}",
    };

    for i in 0..1000 {
        let host = if i % 2 == 0 {
            "acme.localhost"
        } else {
            "globex.localhost"
        };
        // Every 10th request misbehaves first, on the other tenant.
        if i % 10 == 0 {
            let other = if i % 2 == 0 {
                "globex.localhost"
            } else {
                "acme.localhost"
            };
            let path = ["/fail", "/panic", "/public"][(i / 10) % 3];
            let response = app.get(&client, other, path).await;
            assert_eq!(response.status(), 500, "{other}{path}");
            let body = response.text().await.unwrap();
            assert!(
                !body.contains("panicked") && !body.contains("no_such_table"),
                "no internals shown: {body}"
            );
        }
        let body = app.get_text(&client, host, "/probe").await;
        assert_eq!(body, expect(host), "request {i} on {host}");
    }

    assert_eq!(app.db.count("SELECT count(*) FROM t_acme.tasks").await, 2);
    assert_eq!(app.db.count("SELECT count(*) FROM t_globex.tasks").await, 1);
    app.db
        .assert_count(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'tasks' AND schemaname = 'public'",
            0,
        )
        .await;
}
