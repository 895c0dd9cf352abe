//! Signing in and out, the parts both sites share. Each site keeps its own
//! accounts (super-admins in `public`, users in the tenant's schema); the
//! session only remembers the account's id, under the store's owner key, so
//! all of an account's sessions can be ended at once.

use tower_sessions::Session;

use crate::tenancy::sessions::SessionConfig;

/// Where both sites keep their sessions: a tenant's in its schema (the
/// core's table), the control panel's in `public.cp_sessions`; the
/// signed-in account's id under `user_id` in the session data.
pub const SESSIONS: SessionConfig = SessionConfig {
    root_table: Some("public.cp_sessions"),
    owner_key: OWNER_KEY,
};

/// The session data key holding the signed-in account's id.
const OWNER_KEY: &str = "user_id";

/// How long a session lasts without being renewed (logging in renews it).
pub const SESSION_LIFETIME: time::Duration = time::Duration::days(14);

/// Starts an authenticated session for `account_id`, with a new session id
/// (the old one, possibly planted by an attacker, is deleted).
pub async fn sign_in(
    session: &Session,
    account_id: i64,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.insert(OWNER_KEY, account_id).await?;
    Ok(())
}

/// The signed-in account's id, if any.
pub async fn signed_in(session: &Session) -> Result<Option<i64>, tower_sessions::session::Error> {
    session.get::<i64>(OWNER_KEY).await
}

/// Ends the session: its row is deleted at once and the cookie cleared.
pub async fn sign_out(session: &Session) -> Result<(), tower_sessions::session::Error> {
    session.flush().await
}

/// Where to go after signing in: `next` when it is a path on this site (no
/// scheme, no host, not `//` or `/\`, which browsers read as another host),
/// else `/`.
pub fn after_sign_in(next: &str) -> String {
    safe_next(next).unwrap_or_else(|| "/".to_owned())
}

/// `next` if it is a same-site path.
pub fn safe_next(next: &str) -> Option<String> {
    let next = next.trim();
    let same_site = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    same_site.then(|| next.to_owned())
}

/// The sign-in page, remembering a page that was asked for with `GET` so
/// that signing in returns there (`/` needs no reminder).
pub fn sign_in_location(method: &axum::http::Method, uri: &axum::http::Uri) -> String {
    let wanted = uri.path_and_query().map_or("/", |p| p.as_str());
    if method != axum::http::Method::GET || wanted == "/" || safe_next(wanted).is_none() {
        return "/login".to_owned();
    }
    let query = serde_urlencoded::to_string([("next", wanted)]).unwrap_or_default();
    format!("/login?{query}")
}

/// `?next=` of the sign-in page.
#[derive(serde::Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    pub next: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_site_paths_are_followed() {
        assert_eq!(after_sign_in("/tasks/42"), "/tasks/42");
        assert_eq!(after_sign_in("/tasks?x=1&y=2"), "/tasks?x=1&y=2");
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "evil.example",
            "javascript:alert(1)",
            "/a\r\nSet-Cookie: x=1",
            " //evil.example",
            "/\t/evil.example",
        ] {
            assert_eq!(after_sign_in(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn the_sign_in_page_remembers_gets_only() {
        let uri: axum::http::Uri = "/tasks/42?tab=a".parse().unwrap();
        assert_eq!(
            sign_in_location(&axum::http::Method::GET, &uri),
            "/login?next=%2Ftasks%2F42%3Ftab%3Da"
        );
        assert_eq!(sign_in_location(&axum::http::Method::POST, &uri), "/login");
        let root: axum::http::Uri = "/".parse().unwrap();
        assert_eq!(sign_in_location(&axum::http::Method::GET, &root), "/login");
    }
}
