//! A tenant as the core knows it, and the site a request is for.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use super::schema::SchemaName;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

pub struct Tenant {
    pub id: i64,
    pub slug: String,
    pub schema: SchemaName,
    pub status: TenantStatus,
    /// The default `<slug>.<root>` domain first, then custom domains.
    pub domains: Vec<String>,
    /// What the application keeps about the tenant in its own columns of
    /// `public.tenants` (a name, a look…), loaded with the registry's row
    /// (see `registry::ProfileColumns`); read it with [`Tenant::profile`].
    pub profile: Arc<dyn Any + Send + Sync>,
}

impl Tenant {
    pub fn is_suspended(&self) -> bool {
        self.status == TenantStatus::Suspended
    }

    /// The application's profile of this tenant, as the type it loads.
    pub fn profile<P: Any>(&self) -> Option<&P> {
        self.profile.downcast_ref()
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenant")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .field("schema", &self.schema)
            .field("status", &self.status)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

/// What a request's host resolves to.
#[derive(Clone, Debug)]
pub enum Site {
    ControlPanel,
    Tenant(Arc<Tenant>),
}
