//! Web parts shared by both sites: page chrome and the [`Page`] extractor,
//! error pages, CSRF, forms, flash messages, security headers, static files.

pub mod auth;
pub mod chrome;
pub mod client;
pub mod csrf;
pub mod errors;
mod extract;
pub mod flash;
pub mod forms;
pub mod page;
pub mod security;
pub mod static_files;
pub mod throttle;
pub mod token;

pub use chrome::Chrome;
pub use csrf::CsrfToken;
pub use errors::{AppError, AppResult, ErrorKind, Refusal};
pub use flash::{Flash, IncomingFlash};
pub use forms::{CsrfForm, FieldErrors};
pub use page::Page;

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
