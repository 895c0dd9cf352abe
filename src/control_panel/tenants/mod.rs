//! The tenant pages of the control panel, one file to a page:
//!
//! - [`list`]: the tenant list (`GET /`)
//! - [`create`]: the create form and provisioning a tenant
//! - [`detail`]: a tenant's page, which the branding and domain handlers
//!   (`super::branding`, `super::domains`) also show again on an invalid form
//! - [`status`]: suspending, reactivating and deleting a tenant
//! - [`export`]: the tenant's archive as a download
//! - [`placement`]: the node holding a tenant, and moving it to another

pub mod create;
pub mod detail;
pub mod export;
pub mod list;
pub mod placement;
pub mod status;

use axum::response::Redirect;

use crate::tenancy::Slug;
use crate::web::AppError;

/// A path's slug, or 404: nothing else ever reaches a query.
pub fn parse_slug(slug: &str) -> Result<Slug, AppError> {
    Slug::parse(slug).map_err(|_| AppError::NotFound)
}

/// Where the forms of a tenant's page go back to.
pub fn back_to(slug: &Slug) -> Redirect {
    Redirect::to(&format!("/tenants/{slug}"))
}
