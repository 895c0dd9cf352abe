//! Web parts shared by both sites: page chrome, error pages, security headers.

pub mod chrome;
pub mod errors;
pub mod security;
pub mod static_files;

pub use chrome::Chrome;
pub use errors::AppError;
