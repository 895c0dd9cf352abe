//! CSRF protection for forms: a signed double-submit token.
//!
//! Each browser gets a random, HttpOnly `tenantry_csrf` cookie (no database
//! row for anonymous visitors). A form's hidden `csrf_token` is the HMAC of
//! that cookie and the site under a key every instance shares, so it can only
//! be produced by our own pages, and only for the site that rendered it.
//! tower-http's `CsrfLayer` (Origin / Sec-Fetch-Site) is a second line.

use std::sync::Arc;

use crate::tenancy::db;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sqlx::PgPool;

use crate::tenancy::Site;

const COOKIE: &str = "tenantry_csrf";

/// The key tokens are signed with, shared by all instances through the database.
#[derive(Clone)]
pub struct CsrfKey(Arc<Vec<u8>>);

impl CsrfKey {
    /// Loads the key from `public.app_secrets`, creating it on first start.
    pub async fn load_or_create(pool: &PgPool) -> Result<CsrfKey, sqlx::Error> {
        let mut fresh = vec![0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
        let mut tx = db::begin_public(pool).await?;
        db::query(
            "INSERT INTO public.app_secrets (name, value) VALUES ('csrf', $1) ON CONFLICT DO NOTHING",
        )
        .bind(&fresh)
        .execute(&mut *tx)
        .await?;
        let key: Vec<u8> =
            db::query_scalar("SELECT value FROM public.app_secrets WHERE name = 'csrf'")
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(CsrfKey(Arc::new(key)))
    }

    fn token_for(&self, site: &Site, nonce: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        match site {
            Site::ControlPanel => mac.update(b"control-panel"),
            Site::Tenant(t) => mac.update(format!("tenant:{}", t.id).as_bytes()),
        }
        mac.update(b"|");
        mac.update(nonce.as_bytes());
        super::hex(&mac.finalize().into_bytes())
    }
}

/// The token the current page's forms must carry.
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

impl CsrfToken {
    /// Whether `submitted` is this token (compared in constant time).
    pub fn matches(&self, submitted: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), submitted.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CsrfToken {
    type Rejection = super::AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<CsrfToken, super::AppError> {
        parts.extensions.get::<CsrfToken>().cloned().ok_or_else(|| {
            super::AppError::Internal(anyhow::anyhow!("no CSRF token: the layer is missing"))
        })
    }
}

/// Reads one cookie from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Middleware (inside site dispatch): makes sure the browser has a CSRF
/// cookie and puts the matching form token into the request's extensions.
pub async fn provide_token(key: CsrfKey, mut req: Request, next: Next) -> Response {
    let existing = cookie(req.headers(), COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let (nonce, is_new) = match existing {
        Some(nonce) => (nonce, false),
        None => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).expect("the OS random source works");
            (super::hex(&bytes), true)
        }
    };
    let site = req.extensions().get::<Site>().cloned();
    if let Some(site) = site {
        let token = key.token_for(&site, &nonce);
        req.extensions_mut().insert(CsrfToken(token));
    }
    let mut response = next.run(req).await;
    if is_new {
        let cookie = format!("{COOKIE}={nonce}; Path=/; HttpOnly; SameSite=Lax");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
