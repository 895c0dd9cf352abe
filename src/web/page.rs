//! The [`Page`] extractor: what every rendered page takes from its request.

use axum::extract::FromRequestParts;

use axum::http::request::Parts;

use super::{AppError, Chrome, CsrfToken, IncomingFlash};
use crate::tenancy::Site;

/// The parts of a page that come from the request rather than the handler:
/// the frame of the site it is on, the token its forms carry and the flash
/// waiting to be shown. Page structs keep these as their `chrome`, `csrf`
/// and `flash` fields, which is what the templates read.
#[derive(Clone, Debug)]
pub struct Page {
    pub chrome: Chrome,
    pub csrf: CsrfToken,
    pub flash: IncomingFlash,
}

impl Page {
    /// The same page with no flash: a form shown again after an invalid
    /// submission is answering that submission, not a redirect.
    pub fn without_flash(self) -> Page {
        Page {
            flash: IncomingFlash(None),
            ..self
        }
    }
}

/// Reads the request's [`Site`] and [`CsrfToken`], both put into its
/// extensions by site dispatch (so a missing one is a 500, as with those
/// extractors), and its [`IncomingFlash`].
impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Page, AppError> {
        let site = Site::from_request_parts(parts, state).await?;
        let csrf = CsrfToken::from_request_parts(parts, state).await?;
        let Ok(flash) = IncomingFlash::from_request_parts(parts, state).await;
        Ok(Page {
            chrome: Chrome::for_site(&site),
            csrf,
            flash,
        })
    }
}
