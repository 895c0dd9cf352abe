//! Signing in and out, the parts both sites share. Each site keeps its own
//! accounts (super-admins in `public`, users in the tenant's schema); the
//! session only remembers the account's id, under the store's owner key, so
//! all of an account's sessions can be ended at once.

use tower_sessions::Session;

use crate::tenancy::sessions::OWNER_KEY;

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
