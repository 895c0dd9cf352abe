//! The tenant registry: every tenant and domain, in memory.
//!
//! Loaded from `public` at start and kept fresh by `LISTEN tenantry_catalogue`
//! (a trigger sends the changed tenant's id on commit), so resolving a host
//! never queries the catalogue and a change made by any instance reaches every
//! instance at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};

pub use super::tenant::{Site, Tenant, TenantStatus};

use super::branding::{Branding, Color, LogoRef, Theme};
use super::db;
use super::schema::SchemaName;

pub const CHANNEL: &str = "tenantry_catalogue";

#[derive(Default)]
struct Maps {
    by_domain: HashMap<String, Arc<Tenant>>,
    by_id: HashMap<i64, Arc<Tenant>>,
}

impl Maps {
    fn insert(&mut self, tenant: Tenant) {
        self.remove(tenant.id);
        let tenant = Arc::new(tenant);
        for domain in &tenant.domains {
            self.by_domain.insert(domain.clone(), tenant.clone());
        }
        self.by_id.insert(tenant.id, tenant);
    }

    fn remove(&mut self, id: i64) {
        if let Some(old) = self.by_id.remove(&id) {
            for domain in &old.domains {
                // Only drop the entry if it still points at this tenant: a
                // domain may have moved to another tenant in the meantime.
                if self.by_domain.get(domain).is_some_and(|t| t.id == id) {
                    self.by_domain.remove(domain);
                }
            }
        }
    }
}

pub struct TenantRegistry {
    root_domain: String,
    maps: RwLock<Maps>,
    pool: PgPool,
}

const SELECT_TENANTS: &str = "
    SELECT t.id, t.slug, t.schema_name, t.status, t.display_name, t.primary_color,
           t.accent_color, t.theme, t.logo_content_type, t.logo_sha256, t.branding_version,
           COALESCE(array_agg(d.domain ORDER BY d.is_default DESC, d.domain)
                    FILTER (WHERE d.domain IS NOT NULL), '{}') AS domains
      FROM public.tenants t
      LEFT JOIN public.tenant_domains d ON d.tenant_id = t.id
     WHERE ($1::bigint IS NULL OR t.id = $1)
       -- A tenant being deleted is served nowhere (see provision::delete).
       AND t.status <> 'deleting'
     GROUP BY t.id";

type TenantRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Vec<String>,
);

fn tenant_from_row(row: TenantRow) -> Option<Tenant> {
    let (
        id,
        slug,
        schema,
        status,
        name,
        primary,
        accent,
        theme,
        logo_type,
        logo_sha,
        version,
        domains,
    ) = row;
    let parsed = (|| {
        Some(Tenant {
            id,
            schema: SchemaName::from_stored(&schema)?,
            slug,
            status: if status == "suspended" {
                TenantStatus::Suspended
            } else {
                TenantStatus::Active
            },
            branding: Branding {
                display_name: name,
                primary: Color::parse(&primary)?,
                accent: Color::parse(&accent)?,
                theme: Theme::parse(&theme)?,
                logo: logo_type
                    .zip(logo_sha)
                    .map(|(content_type, sha256)| LogoRef {
                        content_type,
                        sha256,
                    }),
                version,
            },
            domains,
        })
    })();
    if parsed.is_none() {
        tracing::error!(tenant_id = id, "tenant row failed validation; not served");
    }
    parsed
}

impl TenantRegistry {
    /// Loads every tenant, then keeps the map fresh from `LISTEN` on a
    /// dedicated connection to `listen_url` (a direct connection: a
    /// transaction-mode PgBouncer cannot carry `LISTEN`).
    pub async fn start(
        pool: PgPool,
        listen_url: &str,
        root_domain: &str,
    ) -> Result<Arc<TenantRegistry>, sqlx::Error> {
        let registry = Arc::new(TenantRegistry {
            root_domain: root_domain.to_owned(),
            maps: RwLock::new(Maps::default()),
            pool,
        });
        // LISTEN before the first load, so no change can fall between them.
        let mut listener = PgListener::connect(listen_url).await?;
        listener.listen(CHANNEL).await?;
        registry.reload_all().await?;
        tokio::spawn(registry.clone().follow(listener));
        Ok(registry)
    }

    async fn follow(self: Arc<Self>, mut listener: PgListener) {
        loop {
            match listener.try_recv().await {
                Ok(Some(note)) => match note.payload().parse::<i64>() {
                    Ok(id) => {
                        if let Err(e) = self.reload_one(id).await {
                            tracing::warn!(error = %e, tenant_id = id, "tenant reload failed; reloading all");
                            self.reload_all_until_ok().await;
                        }
                    }
                    Err(_) => tracing::warn!(payload = note.payload(), "ignoring odd notification"),
                },
                Ok(None) | Err(_) => {
                    tracing::warn!("lost the catalogue LISTEN connection; reconnecting");
                    // Re-LISTEN first, then reload: changes made while we were
                    // away are picked up by the reload, later ones by LISTEN.
                    while let Err(e) = listener.listen(CHANNEL).await {
                        tracing::warn!(error = %e, "catalogue LISTEN failed; retrying in 1 s");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    self.reload_all_until_ok().await;
                    tracing::info!("catalogue LISTEN connection restored");
                }
            }
        }
    }

    async fn reload_all_until_ok(&self) {
        while let Err(e) = self.reload_all().await {
            tracing::warn!(error = %e, "catalogue reload failed; retrying in 1 s");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Replaces the whole map with the catalogue's current contents.
    pub async fn reload_all(&self) -> Result<(), sqlx::Error> {
        let rows: Vec<TenantRow> = db::query_as(SELECT_TENANTS)
            .bind(None::<i64>)
            .fetch_all(&mut *db::begin_public(&self.pool).await?)
            .await?;
        let mut maps = Maps::default();
        for tenant in rows.into_iter().filter_map(tenant_from_row) {
            maps.insert(tenant);
        }
        let count = maps.by_id.len();
        *self.maps.write().expect("registry lock poisoned") = maps;
        tracing::debug!(tenants = count, "tenant registry loaded");
        Ok(())
    }

    /// Reloads one tenant (or forgets it, if it is gone).
    pub async fn reload_one(&self, id: i64) -> Result<(), sqlx::Error> {
        let row: Option<TenantRow> = db::query_as(SELECT_TENANTS)
            .bind(Some(id))
            .fetch_optional(&mut *db::begin_public(&self.pool).await?)
            .await?;
        let mut maps = self.maps.write().expect("registry lock poisoned");
        match row.and_then(tenant_from_row) {
            Some(tenant) => maps.insert(tenant),
            None => maps.remove(id),
        }
        Ok(())
    }

    /// The site a normalised host serves, if any.
    pub fn resolve(&self, host: &str) -> Option<Site> {
        if host == self.root_domain {
            return Some(Site::ControlPanel);
        }
        let maps = self.maps.read().expect("registry lock poisoned");
        maps.by_domain.get(host).cloned().map(Site::Tenant)
    }

    /// Whether the tenant with this id is still served (not deleted, not
    /// being deleted).
    pub fn is_served(&self, id: i64) -> bool {
        let maps = self.maps.read().expect("registry lock poisoned");
        maps.by_id.contains_key(&id)
    }

    pub fn by_slug(&self, slug: &str) -> Option<Arc<Tenant>> {
        let maps = self.maps.read().expect("registry lock poisoned");
        maps.by_id.values().find(|t| t.slug == slug).cloned()
    }

    /// Every tenant's schema, for maintenance that visits them all.
    pub fn schemas(&self) -> Vec<SchemaName> {
        let maps = self.maps.read().expect("registry lock poisoned");
        maps.by_id.values().map(|t| t.schema.clone()).collect()
    }

    pub fn root_domain(&self) -> &str {
        &self.root_domain
    }

    pub fn len(&self) -> usize {
        self.maps
            .read()
            .expect("registry lock poisoned")
            .by_id
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
