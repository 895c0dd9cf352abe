//! The tenant registry: every tenant and domain, in memory.
//!
//! Loaded from `public` at start and kept fresh by `LISTEN tenantry_catalogue`
//! (a trigger sends the changed tenant's id on commit), so resolving a host
//! never queries the catalogue and a change made by any instance reaches every
//! instance at once.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::{AssertSqlSafe, Row};

pub use super::tenant::{Site, Tenant, TenantStatus};

use super::db;
use super::schema::SchemaName;

/// The application's own columns of `public.tenants`, read with every
/// tenant and kept as its [`Tenant::profile`]: the core knows a tenant's
/// id, slug, schema, status and domains; what else a tenant has (a name, a
/// look) is the application's.
#[derive(Clone, Copy)]
pub struct ProfileColumns {
    /// A select list over `public.tenants t`, such as `"t.display_name"`.
    pub select: &'static str,
    /// Builds the profile from the row (read the columns by name). `None`
    /// means the row is not valid: the tenant is not served, and logged.
    pub parse: fn(&PgRow) -> Option<Arc<dyn Any + Send + Sync>>,
}

/// No columns of the application's: every profile is `()`.
pub const NO_PROFILE: ProfileColumns = ProfileColumns {
    select: "NULL::int AS no_profile",
    parse: |_| Some(Arc::new(())),
};

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
    profile: ProfileColumns,
    /// [`select_tenants`] for this profile, built once.
    select: String,
    /// When the map last took in a change from the catalogue.
    refreshed: std::sync::Mutex<std::time::Instant>,
}

/// The registry's query: the core's columns, the domains, then the
/// application's profile columns.
fn select_tenants(profile: &ProfileColumns) -> String {
    format!(
        "SELECT t.id, t.slug, t.schema_name, t.status,
                COALESCE(array_agg(d.domain ORDER BY d.is_default DESC, d.domain)
                         FILTER (WHERE d.domain IS NOT NULL), '{{}}') AS domains,
                {}
           FROM public.tenants t
           LEFT JOIN public.tenant_domains d ON d.tenant_id = t.id
          WHERE ($1::bigint IS NULL OR t.id = $1)
            -- A tenant being deleted is served nowhere (see provision::delete).
            AND t.status <> 'deleting'
          GROUP BY t.id",
        profile.select
    )
}

fn tenant_from_row(row: &PgRow, profile: &ProfileColumns) -> Option<Tenant> {
    let id: i64 = row.try_get("id").ok()?;
    let parsed = (|| {
        let status: String = row.try_get("status").ok()?;
        Some(Tenant {
            id,
            schema: SchemaName::from_stored(&row.try_get::<String, _>("schema_name").ok()?)?,
            slug: row.try_get("slug").ok()?,
            status: if status == "suspended" {
                TenantStatus::Suspended
            } else {
                TenantStatus::Active
            },
            domains: row.try_get("domains").ok()?,
            profile: (profile.parse)(row)?,
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
        profile: ProfileColumns,
    ) -> Result<Arc<TenantRegistry>, sqlx::Error> {
        let registry = Arc::new(TenantRegistry {
            root_domain: root_domain.to_owned(),
            maps: RwLock::new(Maps::default()),
            pool,
            select: select_tenants(&profile),
            profile,
            refreshed: std::sync::Mutex::new(std::time::Instant::now()),
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
        let rows: Vec<PgRow> = sqlx::query(AssertSqlSafe(self.select.as_str()))
            .persistent(db::prepared_statements())
            .bind(None::<i64>)
            .fetch_all(&mut *db::begin_public(&self.pool).await?)
            .await?;
        let mut maps = Maps::default();
        for tenant in rows
            .iter()
            .filter_map(|r| tenant_from_row(r, &self.profile))
        {
            maps.insert(tenant);
        }
        let count = maps.by_id.len();
        *self.maps.write().expect("registry lock poisoned") = maps;
        self.mark_refreshed();
        tracing::debug!(tenants = count, "tenant registry loaded");
        Ok(())
    }

    /// Reloads one tenant (or forgets it, if it is gone).
    pub async fn reload_one(&self, id: i64) -> Result<(), sqlx::Error> {
        let row: Option<PgRow> = sqlx::query(AssertSqlSafe(self.select.as_str()))
            .persistent(db::prepared_statements())
            .bind(Some(id))
            .fetch_optional(&mut *db::begin_public(&self.pool).await?)
            .await?;
        let mut maps = self.maps.write().expect("registry lock poisoned");
        match row.and_then(|r| tenant_from_row(&r, &self.profile)) {
            Some(tenant) => maps.insert(tenant),
            None => maps.remove(id),
        }
        drop(maps);
        self.mark_refreshed();
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

    fn mark_refreshed(&self) {
        *self.refreshed.lock().expect("registry lock poisoned") = std::time::Instant::now();
    }

    /// How long since the map last took in a change (or a full reload).
    pub fn since_refresh(&self) -> Duration {
        self.refreshed
            .lock()
            .expect("registry lock poisoned")
            .elapsed()
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
