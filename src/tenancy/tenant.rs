//! A tenant as the core knows it, and the site a request is for.

use std::sync::Arc;

use super::branding::Branding;
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

#[derive(Debug)]
pub struct Tenant {
    pub id: i64,
    pub slug: String,
    pub schema: SchemaName,
    pub status: TenantStatus,
    pub branding: Branding,
    /// The default `<slug>.<root>` domain first, then custom domains.
    pub domains: Vec<String>,
}

impl Tenant {
    pub fn is_suspended(&self) -> bool {
        self.status == TenantStatus::Suspended
    }
}

/// What a request's host resolves to.
#[derive(Clone, Debug)]
pub enum Site {
    ControlPanel,
    Tenant(Arc<Tenant>),
}
