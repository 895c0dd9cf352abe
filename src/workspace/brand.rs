//! The tenant's branding as HTTP resources: `/theme.css`, `/brand/logo` and
//! `/favicon.svg`. All answer conditional requests with 304.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;
use crate::tenancy::{PublicDb, Site, Tenant, db};
use crate::web::AppError;
use crate::web::chrome::initials;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/theme.css", get(theme_css))
        .route("/brand/logo", get(logo))
        .route("/favicon.svg", get(favicon))
}

/// The logo's bytes, read from the catalogue (the registry keeps only its hash).
async fn logo_bytes(db: &mut PublicDb, tenant_id: i64) -> Result<Option<Vec<u8>>, AppError> {
    let logo: Option<Option<Vec<u8>>> =
        db::query_scalar("SELECT logo FROM public.tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_optional(db.conn())
            .await?;
    Ok(logo.flatten())
}

fn tenant(site: Site) -> Result<std::sync::Arc<Tenant>, AppError> {
    match site {
        Site::Tenant(t) => Ok(t),
        Site::ControlPanel => Err(AppError::NotFound),
    }
}

/// Answers 304 when the client already has `etag`, else `body`.
fn conditional(
    headers: &HeaderMap,
    etag: &str,
    content_type: &str,
    body: impl IntoResponse,
) -> Response {
    let etag_value = HeaderValue::from_str(etag).expect("etag is plain ASCII");
    let cache = [
        (header::ETAG, etag_value),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            // If-None-Match compares weakly: `W/"x"` matches `"x"`.
            v.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
        });
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let content_type = HeaderValue::from_str(content_type).expect("known content type");
    (cache, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The tenant's colours as CSS custom properties.
async fn theme_css(site: Site, headers: HeaderMap) -> Result<Response, AppError> {
    let t = tenant(site)?;
    let b = crate::branding::of(&t);
    let etag = format!("\"theme-{}-{}\"", t.id, b.version);
    let css = format!(
        ":root {{\n  --primary: {};\n  --on-primary: {};\n  --accent: {};\n  --on-accent: {};\n}}\n",
        b.primary,
        b.primary.readable_text(),
        b.accent,
        b.accent.readable_text(),
    );
    Ok(conditional(&headers, &etag, "text/css; charset=utf-8", css))
}

async fn logo(site: Site, headers: HeaderMap, mut db: PublicDb) -> Result<Response, AppError> {
    let t = tenant(site)?;
    let Some(logo) = &crate::branding::of(&t).logo else {
        return Err(AppError::NotFound);
    };
    let etag = format!("\"{}\"", logo.sha256);
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(conditional(&headers, &etag, &logo.content_type, ()));
    }
    let Some(bytes) = logo_bytes(&mut db, t.id).await? else {
        return Err(AppError::NotFound);
    };
    Ok(conditional(&headers, &etag, &logo.content_type, bytes))
}

/// The favicon: the tenant's logo on a rounded tile when it has one (the
/// image inlined, since an SVG icon cannot load other files), else its
/// initials on its primary colour.
async fn favicon(site: Site, headers: HeaderMap, mut db: PublicDb) -> Result<Response, AppError> {
    let t = tenant(site)?;
    let b = crate::branding::of(&t);
    let logo_tag = b.logo.as_ref().map_or("none", |l| l.sha256.as_str());
    let etag = format!("\"favicon-{}-{}-{}\"", t.id, b.version, logo_tag);
    if let Some(logo) = &b.logo {
        if headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == etag.as_bytes())
        {
            return Ok(conditional(&headers, &etag, "image/svg+xml", ()));
        }
        if let Some(bytes) = logo_bytes(&mut db, t.id).await? {
            let svg = format!(
                r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="14" fill="#ffffff"/><image x="4" y="4" width="56" height="56" preserveAspectRatio="xMidYMid meet" href="data:{};base64,{}"/></svg>"##,
                logo.content_type,
                base64(&bytes),
            );
            return Ok(conditional(&headers, &etag, "image/svg+xml", svg));
        }
    }
    let svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="14" fill="{}"/><text x="32" y="43" font-family="system-ui, sans-serif" font-size="28" font-weight="700" text-anchor="middle" fill="{}">{}</text></svg>"##,
        b.primary,
        b.primary.readable_text(),
        xml_escape(&initials(&b.display_name)),
    );
    Ok(conditional(&headers, &etag, "image/svg+xml", svg))
}

/// Standard base64 with padding (RFC 4648), for a data URI.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(input.as_bytes()), expected);
        }
    }
}
