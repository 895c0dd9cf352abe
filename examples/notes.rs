//! A small app of its own on the tenancy core alone: a notes list per
//! tenant, with the author's name remembered in the tenant's own session.
//!
//!     DATABASE_URL=postgres://… cargo run --example notes -- create acme
//!     DATABASE_URL=postgres://… cargo run --example notes -- serve
//!     open http://acme.localhost:3000/
//!
//! It uses `tenantry::tenancy` only: hosts (registry and dispatch),
//! schemas (`TenantDb`), sessions (`SiteSessionStore`), provisioning and
//! migrations (its own, in `examples/notes/migrations`).

use std::sync::Arc;

use axum::extract::{Extension, Form};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Router, http::StatusCode};
use sqlx::migrate::Migrator;
use tenantry::tenancy::registry::NO_PROFILE;
use tenantry::tenancy::resolve::SiteDispatch;
use tenantry::tenancy::sessions::{SessionConfig, SiteSessionStore};
use tenantry::tenancy::{Site, Slug, TenantDb, TenantPool, TenantRegistry, migrate, provision};
use tower_sessions::{Session, SessionManagerLayer};

static NOTES: Migrator = sqlx::migrate!("examples/notes/migrations");
const ROOT: &str = "localhost";
/// Tenants keep sessions; the root site (a plain welcome page) does not.
const SESSIONS: SessionConfig = SessionConfig {
    root_table: None,
    owner_key: "owner",
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")?;
    let pool = sqlx::PgPool::connect(&url).await?;
    migrate::migrate_catalogue(&pool).await?;
    match std::env::args().nth(1).as_deref() {
        Some("create") => {
            let slug = std::env::args().nth(2).unwrap_or_default();
            let slug = Slug::parse(&slug).map_err(|e| anyhow::anyhow!("{e}"))?;
            let new = provision::NewTenant {
                slug,
                profile: vec![],
            };
            provision::begin(&pool, &new, ROOT, &NOTES)
                .await?
                .commit()
                .await?;
            println!("created; open http://{}.{ROOT}:3000/", new.slug);
        }
        Some("migrate") => {
            let summary = migrate::rollout(&pool, &NOTES, 4, false, |_, _| {}).await?;
            println!(
                "{} migrated, {} failed",
                summary.migrated,
                summary.failed.len()
            );
        }
        _ => serve(pool, &url).await?,
    }
    Ok(())
}

async fn serve(pool: sqlx::PgPool, url: &str) -> anyhow::Result<()> {
    let registry = TenantRegistry::start(pool.clone(), url, ROOT, NO_PROFILE).await?;
    // Tenants' transactions on tenant-affine connections (four of them).
    let tenants = TenantPool::beside(&pool, 4);
    let sessions = SessionManagerLayer::new(SiteSessionStore::with_pools(
        pool.clone(),
        tenants.clone(),
        SESSIONS,
    ))
    .with_secure(false);
    let tenant_app = Router::new()
        .route("/", get(list).post(add))
        .layer(sessions)
        // Cross-site form posts are refused (Origin / Sec-Fetch-Site).
        .layer(tower_http::csrf::CsrfLayer::new())
        .layer(Extension(tenants));
    let dispatch = SiteDispatch {
        registry,
        control_panel: Router::new().route("/", get(|| async { "Notes: open <slug>.localhost" })),
        tenant_app,
        trust_proxy: false,
        unknown_host: |status| (status, "no such tenant").into_response(),
    };
    let app = Router::new().fallback(move |req| dispatch.clone().dispatch(req));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// The request's transaction, pinned to its tenant's schema.
async fn tenant_db(pool: &TenantPool, site: Site) -> Result<TenantDb, StatusCode> {
    let Site::Tenant(tenant) = site else {
        return Err(StatusCode::NOT_FOUND);
    };
    TenantDb::begin(pool, Arc::clone(&tenant))
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

async fn list(
    Extension(pool): Extension<TenantPool>,
    Extension(site): Extension<Site>,
    session: Session,
) -> Result<Html<String>, StatusCode> {
    let mut db = tenant_db(&pool, site.clone()).await?;
    let notes: Vec<(String, String)> = db
        .query_as("SELECT author, body FROM notes ORDER BY id DESC LIMIT 50")
        .fetch_all(db.conn())
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let author: String = session
        .get("author")
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let slug = match &site {
        Site::Tenant(t) => t.slug.clone(),
        Site::ControlPanel => String::new(),
    };
    let items: String = notes
        .iter()
        .map(|(a, b)| format!("<li><b>{}</b>: {}</li>", escape(a), escape(b)))
        .collect();
    Ok(Html(format!(
        "<!doctype html><title>{slug} notes</title><h1>{slug} notes</h1>\
         <form method=post><input name=author placeholder=Name value=\"{}\">\
         <input name=body placeholder=Note required><button>Add</button></form><ul>{items}</ul>",
        escape(&author)
    )))
}

#[derive(serde::Deserialize)]
struct NewNote {
    author: String,
    body: String,
}

async fn add(
    Extension(pool): Extension<TenantPool>,
    Extension(site): Extension<Site>,
    session: Session,
    Form(note): Form<NewNote>,
) -> Result<Response, StatusCode> {
    let body = note.body.trim();
    if body.is_empty() || body.chars().count() > 500 {
        return Err(StatusCode::UNPROCESSABLE_ENTITY);
    }
    let author = note.author.trim().chars().take(50).collect::<String>();
    let mut db = tenant_db(&pool, site).await?;
    db.query("INSERT INTO notes (author, body) VALUES ($1, $2)")
        .bind(&author)
        .bind(body)
        .execute(db.conn())
        .await
        .and(Ok(()))
        .map_err(|_: sqlx::Error| StatusCode::INTERNAL_SERVER_ERROR)?;
    db.commit()
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let _ = session.insert("author", author).await;
    Ok(Redirect::to("/").into_response())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
