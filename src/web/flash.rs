//! Flash messages: one line shown on the page after a redirect ("Task
//! created."). Carried in a short-lived cookie, so showing one costs no
//! database write; the page that shows it clears it.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponseParts, Response, ResponseParts};

use super::csrf::cookie;

const COOKIE: &str = "tenantry_flash";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flash {
    /// `success` or `error`: a CSS class.
    pub kind: &'static str,
    pub message: String,
}

impl Flash {
    pub fn success(message: impl Into<String>) -> Flash {
        Flash {
            kind: "success",
            message: message.into(),
        }
    }

    pub fn error(message: impl Into<String>) -> Flash {
        Flash {
            kind: "error",
            message: message.into(),
        }
    }
}

/// Setting a flash on a (redirect) response.
impl IntoResponseParts for Flash {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        let value = serde_urlencoded::to_string([("k", self.kind), ("m", self.message.as_str())])
            .unwrap_or_default();
        let cookie = format!("{COOKIE}={value}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax");
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
        Ok(res)
    }
}

/// The flash waiting for this request, if any (as an extractor).
#[derive(Clone, Debug, Default)]
pub struct IncomingFlash(pub Option<Flash>);

impl<S: Send + Sync> FromRequestParts<S> for IncomingFlash {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = cookie(&parts.headers, COOKIE) else {
            return Ok(IncomingFlash(None));
        };
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap_or_default();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let kind = match get("k").as_deref() {
            Some("error") => "error",
            _ => "success",
        };
        Ok(IncomingFlash(get("m").map(|message| Flash {
            kind,
            message: message.chars().take(300).collect(),
        })))
    }
}

/// Middleware: once a page has been rendered (a 2xx HTML response) for a
/// request that carried a flash, clear it so it shows only once.
pub async fn clear_shown(req: Request, next: Next) -> Response {
    let had_flash = cookie(req.headers(), COOKIE).is_some();
    let mut response = next.run(req).await;
    let shown = response.status().is_success()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let sets_new = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(COOKIE.as_bytes()));
    if had_flash && shown && !sets_new {
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_static("tenantry_flash=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
        );
    }
    response
}
