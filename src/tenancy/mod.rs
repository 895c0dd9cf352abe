//! The multitenancy core: which tenant a request belongs to, and how its data
//! is reached, created and migrated. Free of any one application's features.

pub mod branding;
pub mod db;
pub mod host;
pub mod migrate;
pub mod nodes;
pub mod provision;
pub mod registry;
pub mod resolve;
pub mod schema;
pub mod sessions;
pub mod sql_split;
pub mod tenant;

pub use db::{PublicDb, TenantDb};
pub use registry::TenantRegistry;
pub use schema::{SchemaName, Slug};
pub use tenant::{Site, Tenant, TenantStatus};
