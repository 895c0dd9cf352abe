//! Errors as pages: one error type, one layer that renders it.
//!
//! Handlers and extractors return [`AppError`] (through [`AppResult`]). Its
//! response carries the typed [`ErrorKind`] in its extensions, and the
//! [`error_pages`] layer, once around the whole app, renders the page from
//! that kind and the site the dispatcher recorded on the response. A
//! response with no kind that is not already a page (axum's own
//! rejections, the body limit, a caught panic, a timeout) is named from its
//! status, once, in [`ErrorKind::from_status`]. Users never see a stack
//! trace or a blank body.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::chrome::Chrome;
use crate::tenancy::Site;
use crate::tenancy::db::is_unavailable;
use crate::tenancy::sessions;

/// Everything a handler or an extractor can fail with.
#[derive(Debug)]
pub enum AppError {
    /// 400: a request that cannot be read (a malformed form body).
    BadRequest,
    /// 303 to the sign-in page at this location (which remembers the page
    /// that was asked for).
    SignInRequired(String),
    /// 403: not allowed (a wrong CSRF token, a member on an admin page).
    Forbidden,
    /// 403: the tenant is suspended.
    Suspended,
    NotFound,
    /// 413: a body over the limit.
    TooLarge,
    /// 422 for a form that cannot be shown again with its messages.
    InvalidForm,
    /// 429, with `Retry-After` in seconds.
    TooManyRequests {
        retry_after: u64,
    },
    /// 503: the database is down or the pool exhausted; retry later.
    Unavailable,
    /// 403 with a title and explanation of its own, for a refusal whose
    /// reason the page must name (a one-time link that is no good).
    Refused(Refusal),
    /// 500: anything unexpected, logged in full, shown as a plain page.
    Internal(anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

/// What the page of an [`AppError::Refused`] says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub title: &'static str,
    pub message: &'static str,
}

/// What an error page says: the typed part of an [`AppError`], carried in
/// the response's extensions to the [`error_pages`] layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    SignInRequired,
    Forbidden,
    Suspended,
    NotFound,
    MethodNotAllowed,
    Timeout,
    TooLarge,
    HeadersTooLarge,
    InvalidForm,
    TooManyRequests,
    Unavailable,
    Refused(Refusal),
    Internal,
}

impl ErrorKind {
    /// The kind of an error response that did not come from [`AppError`].
    pub fn from_status(status: StatusCode) -> ErrorKind {
        match status.as_u16() {
            400 => ErrorKind::BadRequest,
            401 => ErrorKind::SignInRequired,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            408 => ErrorKind::Timeout,
            413 => ErrorKind::TooLarge,
            429 => ErrorKind::TooManyRequests,
            431 => ErrorKind::HeadersTooLarge,
            503 => ErrorKind::Unavailable,
            s if (400..500).contains(&s) => ErrorKind::InvalidForm,
            _ => ErrorKind::Internal,
        }
    }

    fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::SignInRequired => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden | ErrorKind::Suspended | ErrorKind::Refused(_) => {
                StatusCode::FORBIDDEN
            }
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Timeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::InvalidForm => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Title and explanation.
    fn describe(self) -> (&'static str, &'static str) {
        match self {
            ErrorKind::BadRequest => ("Bad request", "The request could not be understood."),
            ErrorKind::SignInRequired => ("Sign in required", "Please sign in to continue."),
            ErrorKind::Suspended => (
                "Workspace suspended",
                "This workspace has been suspended. Please contact your administrator.",
            ),
            ErrorKind::Forbidden => (
                "Not allowed",
                "You do not have permission to do that. If you submitted a form, reload the page and try again.",
            ),
            ErrorKind::NotFound => ("Page not found", "There is nothing at this address."),
            ErrorKind::MethodNotAllowed => (
                "Method not allowed",
                "This address does not accept that kind of request.",
            ),
            ErrorKind::Timeout => (
                "Request timeout",
                "The request took too long. Please try again.",
            ),
            ErrorKind::TooLarge => (
                "Too large",
                "What you sent is larger than this site accepts.",
            ),
            ErrorKind::HeadersTooLarge => (
                "Too large",
                "The request's headers are larger than this site accepts. Clearing this site's cookies may help.",
            ),
            ErrorKind::InvalidForm => (
                "Invalid request",
                "What was sent could not be accepted. Go back, check the form and try again.",
            ),
            ErrorKind::TooManyRequests => (
                "Too many requests",
                "Too many attempts in a short time. Wait a little, then try again.",
            ),
            ErrorKind::Unavailable => (
                "Temporarily unavailable",
                "We cannot reach the database right now. Please try again in a moment.",
            ),
            ErrorKind::Refused(r) => (r.title, r.message),
            ErrorKind::Internal => (
                "Something went wrong",
                "An unexpected error occurred. It has been logged; please try again.",
            ),
        }
    }
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

impl AppError {
    fn kind(&self) -> ErrorKind {
        match self {
            AppError::BadRequest => ErrorKind::BadRequest,
            AppError::SignInRequired(_) => ErrorKind::SignInRequired,
            AppError::Forbidden => ErrorKind::Forbidden,
            AppError::Suspended => ErrorKind::Suspended,
            AppError::NotFound => ErrorKind::NotFound,
            AppError::TooLarge => ErrorKind::TooLarge,
            AppError::InvalidForm => ErrorKind::InvalidForm,
            AppError::TooManyRequests { .. } => ErrorKind::TooManyRequests,
            AppError::Unavailable => ErrorKind::Unavailable,
            AppError::Refused(r) => ErrorKind::Refused(*r),
            AppError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let kind = self.kind();
        let mut response = match self {
            AppError::SignInRequired(location) => return Redirect::to(&location).into_response(),
            AppError::TooManyRequests { retry_after } => (
                kind.status(),
                [(header::RETRY_AFTER, retry_after.to_string())],
            )
                .into_response(),
            AppError::Unavailable => {
                tracing::warn!("database unavailable");
                kind.status().into_response()
            }
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                kind.status().into_response()
            }
            _ => kind.status().into_response(),
        };
        response.extensions_mut().insert(kind);
        response
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

/// Renders a complete error page of `kind` on a site (`None`: a host that
/// serves no site, so the page names no tenant).
pub fn error_page(kind: ErrorKind, site: Option<&Site>) -> Response {
    render(kind, kind.status(), site)
}

/// The page of `kind`, showing `status` (a foreign 4xx keeps its own).
fn render(kind: ErrorKind, status: StatusCode, site: Option<&Site>) -> Response {
    let chrome = match site {
        Some(site) => Chrome::for_site(site),
        None => Chrome {
            site_name: "Tenantry".into(),
            tenant: None,
        },
    };
    let (title, message) = kind.describe();
    let page = ErrorPage {
        chrome,
        status: status.as_u16(),
        title,
        message: message.to_owned(),
        // On a suspended workspace the start page would only lead back here.
        home_link: kind != ErrorKind::Suspended,
    };
    let body = page.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "error page failed to render");
        format!("{} {}", status.as_u16(), title)
    });
    let mut response = (status, Html(body)).into_response();
    response.extensions_mut().insert(kind);
    response
}

/// The page for a host that serves no site: names no tenant.
pub fn unknown_host(status: StatusCode) -> Response {
    error_page(ErrorKind::from_status(status), None)
}

/// The one error-page layer, around the whole app: an error response
/// becomes the page of its [`ErrorKind`] on the site it was for (keeping
/// its status and headers). Pages a handler rendered itself (a form shown
/// again with its messages) carry no kind and pass through.
pub async fn error_pages(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let kind = match response.extensions().get::<ErrorKind>() {
        Some(kind) if !is_html => *kind,
        Some(_) => return response,
        None if is_html => return response,
        None => ErrorKind::from_status(status),
    };
    let site = response.extensions().get::<Site>().cloned();
    let (mut parts, _) = response.into_parts();
    let page = render(kind, status, site.as_ref());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, page.into_body())
}
