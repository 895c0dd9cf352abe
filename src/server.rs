//! `tenantry serve`: the web server, with a graceful shutdown that also stops
//! the managed database when we started it.

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::config::{DbConfig, ServeConfig};
use crate::database::Database;
use crate::state::AppState;
use crate::tenancy::{TenantPool, TenantRegistry};

pub async fn run(db_config: &DbConfig, config: &ServeConfig) -> Result<()> {
    config.site.check().map_err(anyhow::Error::msg)?;
    let (public_size, tenant_slots) = split_pool(db_config.db_pool_size);
    let db = Database::open(db_config, public_size).await?;
    let tenants = TenantPool::beside(&db.pool, tenant_slots);
    let root = config.site.root_domain();
    let registry = TenantRegistry::start(
        db.pool.clone(),
        &db.direct_url,
        &root,
        crate::branding::PROFILE,
    )
    .await
    .context("cannot load the tenant catalogue")?;
    tracing::info!(tenants = registry.len(), "tenant registry loaded");
    warn_if_pool_is_small(registry.len(), tenant_slots, db_config.db_pool_size);
    warn_if_no_super_admin(&db).await;

    let state = AppState::with_tenant_pool(
        db.pool.clone(),
        tenants.clone(),
        registry.clone(),
        config.site.clone(),
    )
    .await?;
    let usage = state.usage.clone();
    let jobs = crate::jobs::serve_jobs(
        db.pool.clone(),
        tenants.clone(),
        registry,
        usage.clone(),
        config.usage_schedule(),
        config.spare_schemas,
    );
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
    let app = crate::app::router(state);
    crate::http_server::serve(listener, app, config.connection_limits(), shutdown_signal()).await?;
    jobs.shutdown().await;
    // What was counted since the last flush is not lost.
    if let Err(e) = crate::usage::collect::flush(&db.pool, &usage).await {
        tracing::warn!(error = %e, "usage: last counts not written");
    }
    tracing::info!("requests finished; closing the database pool");
    tenants.close().await;
    db.pool.close().await;
    // Stops the managed cluster when we started it.
    drop(db);
    tracing::info!("shut down");
    Ok(())
}

/// The configured connections, shared out: a quarter (at least one) for the
/// catalogue, the control panel and jobs, the rest (at least one) for
/// tenants' pages, each tenant on its own share of them.
fn split_pool(size: u32) -> (u32, u32) {
    let public = (size / 4).max(1);
    (public, size.saturating_sub(public).max(1))
}

/// Each tenant connection serves at most `TENANTS_PER_BACKEND` tenants
/// before it is replaced (`tenancy::affinity`): with more tenants than the
/// slots hold, a backend that sees them all busy keeps starting cold.
///
/// Tenants get their home slot by a hash, so the busiest slot holds more
/// than the mean: sized for a mean of four fifths of the bound (200 tenants,
/// with the bound 3.5 standard deviations above), no slot outgrows it.
/// Sized at the bound itself, the busiest slots were replaced over and over.
fn warn_if_pool_is_small(tenants: usize, slots: u32, pool_size: u32) {
    let per_backend = crate::tenancy::affinity::TENANTS_PER_BACKEND;
    let needed = tenants.div_ceil(per_backend * 4 / 5) as u32;
    if needed > slots {
        // The smallest pool whose tenant share holds them.
        let suggested = (needed..)
            .find(|&size| split_pool(size).1 >= needed)
            .expect("a pool of 4/3 × needed suffices");
        tracing::warn!(
            tenants,
            tenant_connections = slots,
            "each tenant connection serves at most {per_backend} tenants before it is replaced: \
             when most of them are busy, TENANTRY_DB_POOL_SIZE={suggested} (now {pool_size}) \
             keeps every backend warm"
        );
    }
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
    tracing::info!("shutdown signal received");
}
