//! Who is asking: the client's address, for the audit log and the login
//! throttle.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::config::SiteConfig;

/// The client's address (see [`client_addr`]) as an extractor.
pub struct ClientAddr(pub Option<String>);

impl<S> FromRequestParts<S> for ClientAddr
where
    Arc<SiteConfig>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<ClientAddr, Self::Rejection> {
        let site = Arc::<SiteConfig>::from_ref(state);
        Ok(ClientAddr(client_addr(parts, site.trust_proxy)))
    }
}

/// The client's address: the first `X-Forwarded-For` hop behind a trusted
/// proxy, else the peer address when the server records it. Without a
/// trusted proxy `X-Forwarded-For` is ignored: any client can send it, and
/// a throttle keyed on it would be evaded by changing it.
pub fn client_addr(parts: &Parts, trust_proxy: bool) -> Option<String> {
    if trust_proxy
        && let Some(forwarded) = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 64)
    {
        return Some(forwarded.to_owned());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}
