//! Security headers on every response, https hardening behind a trusted
//! proxy, and limits on request headers.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// Only our own scripts, styles and images; no framing; forms post to us.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// [`CSP`] with forms also allowed to lead to `source` (a CSP host source,
/// such as `acme.example.com` or `https://acme.example.com:8443`), for a
/// page whose form is answered with a redirect to another of our sites:
/// browsers hold redirects after a form to `form-action` too. `None` if
/// `source` cannot be a header value.
pub fn csp_with_form_action(source: &str) -> Option<HeaderValue> {
    let valid = !source.is_empty()
        && source
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:/[]".contains(&b));
    if !valid {
        return None;
    }
    let csp = CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {source}"),
    );
    HeaderValue::from_str(&csp).ok()
}

pub fn add_headers(router: Router) -> Router {
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    fixed.into_iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ))
    })
}

/// Whether the client reached us over https, as far as we can know: only a
/// trusted proxy's `X-Forwarded-Proto` can say so (we serve plain HTTP).
pub fn is_https(req: &axum::extract::Request, trust_proxy: bool) -> bool {
    trust_proxy
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().unwrap_or("").trim() == "https")
}

/// Middleware: over https, every cookie gets `Secure` and the response HSTS.
pub async fn https_hardening(
    trust_proxy: bool,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let https = is_https(&req, trust_proxy);
    let mut response = next.run(req).await;
    if https {
        let headers = response.headers_mut();
        let cookies: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        headers.remove(header::SET_COOKIE);
        for cookie in cookies {
            let text = cookie.to_str().unwrap_or("");
            let secured = if text.to_ascii_lowercase().contains("; secure") {
                cookie
            } else {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
            };
            headers.append(header::SET_COOKIE, secured);
        }
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The longest single request header accepted (as nginx and Apache do).
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) one request may carry.
pub const MAX_HEADERS_TOTAL: usize = 32 * 1024;

/// Middleware: a request whose headers are too large is refused with 431
/// and a plain error page before any work is done for it. (hyper bounds what
/// it buffers for a request head at about 400 KiB and answers 431 itself
/// above that; this is the tighter limit of the application.)
pub async fn limit_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut total = 0;
    for (name, value) in req.headers() {
        let size = name.as_str().len() + value.len();
        total += size;
        if value.len() > MAX_HEADER_BYTES || total > MAX_HEADERS_TOTAL {
            tracing::info!(header = name.as_str(), size, "request headers too large");
            return super::errors::error_page(super::errors::ErrorKind::HeadersTooLarge, None);
        }
    }
    next.run(req).await
}
