//! Errors as pages. Handlers return [`AppError`] (or a bare status); the
//! [`error_pages`] middleware turns any error response that is not already a
//! page into the site's branded error page, so users never see a stack trace
//! or a blank body.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::chrome::Chrome;
use crate::tenancy::Site;
use crate::tenancy::db::is_unavailable;
use crate::tenancy::sessions;

/// An error a handler can return.
#[derive(Debug)]
pub enum AppError {
    NotFound,
    Forbidden,
    /// The database is down or the pool exhausted: 503, retry later.
    Unavailable,
    /// Anything unexpected: logged in full, shown as a plain 500.
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        let e = e.into();
        let unavailable = match (
            e.downcast_ref::<sqlx::Error>(),
            e.downcast_ref::<tower_sessions::session::Error>(),
        ) {
            (Some(db), _) => is_unavailable(db),
            (_, Some(tower_sessions::session::Error::Store(store))) => {
                sessions::is_unavailable(store)
            }
            _ => false,
        };
        if unavailable {
            AppError::Unavailable
        } else {
            AppError::Internal(e)
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND.into_response(),
            AppError::Forbidden => StatusCode::FORBIDDEN.into_response(),
            AppError::Unavailable => {
                tracing::warn!("database unavailable");
                StatusCode::SERVICE_UNAVAILABLE.into_response()
            }
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

#[derive(Template)]
#[template(path = "errors/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub status: u16,
    pub title: &'static str,
    pub message: String,
    /// Whether a link to the start page helps (on a suspended workspace it
    /// would only lead back here).
    pub home_link: bool,
}

/// Title and explanation shown for a status.
fn describe(status: StatusCode, site: Option<&Site>) -> (&'static str, String) {
    let suspended = matches!(site, Some(Site::Tenant(t)) if t.is_suspended());
    match status.as_u16() {
        400 => ("Bad request", "The request could not be understood.".into()),
        401 => ("Sign in required", "Please sign in to continue.".into()),
        403 if suspended => (
            "Workspace suspended",
            "This workspace has been suspended. Please contact your administrator.".into(),
        ),
        403 => (
            "Not allowed",
            "You do not have permission to do that. If you submitted a form, reload the page and try again.".into(),
        ),
        404 => ("Page not found", "There is nothing at this address.".into()),
        405 => ("Method not allowed", "This address does not accept that kind of request.".into()),
        408 => ("Request timeout", "The request took too long. Please try again.".into()),
        413 => ("Too large", "What you sent is larger than this site accepts.".into()),
        429 => ("Too many requests", "Too many attempts in a short time. Wait a little, then try again.".into()),
        431 => ("Too large", "The request's headers are larger than this site accepts. Clearing this site's cookies may help.".into()),
        _ if status.is_client_error() => (
            "Invalid request",
            "What was sent could not be accepted. Go back, check the form and try again.".into(),
        ),
        503 => (
            "Temporarily unavailable",
            "We cannot reach the database right now. Please try again in a moment.".into(),
        ),
        _ => (
            "Something went wrong",
            "An unexpected error occurred. It has been logged; please try again.".into(),
        ),
    }
}

/// Renders a complete error page for a status on a site.
pub fn error_page(status: StatusCode, site: Option<&Site>) -> Response {
    let chrome = match site {
        Some(site) => Chrome::for_site(site),
        None => Chrome {
            site_name: "Tenantry".into(),
            tenant: None,
        },
    };
    let (title, message) = describe(status, site);
    let suspended = matches!(site, Some(Site::Tenant(t)) if t.is_suspended());
    let page = ErrorPage {
        chrome,
        status: status.as_u16(),
        title,
        message,
        home_link: !(suspended && status == StatusCode::FORBIDDEN),
    };
    let body = page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "error page failed to render");
        format!("{} {}", status.as_u16(), title)
    });
    (status, Html(body)).into_response()
}

/// The page for a host that serves no site: names no tenant.
pub fn unknown_host(status: StatusCode) -> Response {
    error_page(status, None)
}

/// Middleware: replaces the body of any 4xx/5xx response that is not HTML
/// with the site's error page, keeping status and headers.
pub async fn error_pages(req: Request, next: Next) -> Response {
    let site = req.extensions().get::<Site>().cloned();
    let response = next.run(req).await;
    let status = response.status();
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_html {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let page = error_page(status, site.as_ref());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, page.into_body())
}
