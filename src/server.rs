//! `tenantry serve`: the web server, with a graceful shutdown that also stops
//! the managed database when we started it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::config::{DbConfig, ServeConfig};
use crate::database::Database;
use crate::state::AppState;
use crate::tenancy::TenantRegistry;
use crate::tenancy::sessions::sweep_expired;

pub async fn run(db_config: &DbConfig, config: &ServeConfig) -> Result<()> {
    config.site.check().map_err(anyhow::Error::msg)?;
    let db = Database::open(db_config, db_config.db_pool_size).await?;
    let root = config.site.root_domain();
    let registry = TenantRegistry::start(db.pool.clone(), &db.direct_url, &root)
        .await
        .context("cannot load the tenant catalogue")?;
    tracing::info!(tenants = registry.len(), "tenant registry loaded");
    warn_if_no_super_admin(&db).await;

    tokio::spawn(sweep_expired(
        db.pool.clone(),
        registry.clone(),
        Duration::from_secs(15 * 60),
    ));
    let state = AppState::new(db.pool.clone(), registry, config.site.clone()).await?;
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    tracing::info!(
        "listening on http://{} — control panel at {}, tenants at {}",
        config.bind,
        config.site.site_url(&root, config.bind),
        config.site.site_url(&format!("<slug>.{root}"), config.bind),
    );
    // With the peer address recorded, so the audit log can name the client.
    let app = crate::app::router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("shutting down");
    db.pool.close().await;
    drop(db);
    Ok(())
}

async fn warn_if_no_super_admin(db: &Database) {
    let count = async {
        let mut tx = crate::tenancy::db::begin_public(&db.pool).await?;
        crate::tenancy::db::query_scalar::<i64>("SELECT count(*) FROM public.super_admins")
            .fetch_one(&mut *tx)
            .await
    };
    if let Ok(0) = count.await {
        tracing::warn!(
            "no super-admin exists yet; create one with: \
             echo 'a-long-password' | tenantry superadmin create --email you@example.com --password-stdin"
        );
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
