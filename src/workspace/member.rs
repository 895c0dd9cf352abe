//! The signed-in user of a tenant, as an extractor.
//!
//! [`Member`] reads the session id from the cookie (without loading the
//! session record through the store), opens the request's one [`TenantDb`]
//! transaction and, in a single query, finds the live session and its active
//! user. The handler gets both, so a page costs one transaction and no
//! session write. No session, an expired one or an inactive user: 303 to
//! `/login` (with `?next=` the page asked for).

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use tower_sessions::session::Id;
use tower_sessions::{Expiry, Session};

use crate::tenancy::{Site, TenantDb, TenantPool};
use crate::web::AppError;
use crate::web::auth::{SESSION_LIFETIME, sign_in_location};

/// A user of the tenant, as pages need them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: String,
    /// Set when this session is a super-admin's impersonation of the user
    /// (see `impersonation`): that super-admin's email.
    #[sqlx(default)]
    pub impersonated_by: Option<String>,
    /// The impersonation's row in `operator_access`, likewise.
    #[sqlx(default)]
    pub impersonation_id: Option<i64>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

#[derive(sqlx::FromRow)]
struct Found {
    #[sqlx(flatten)]
    user: User,
    stale: bool,
}

/// A session is renewed once less than this much of its life is left.
const REFRESH_AFTER_REMAINING: time::Duration = time::Duration::days(7);

/// The signed-in, active user and the request's transaction.
pub struct Member {
    pub user: User,
    pub db: TenantDb,
    /// The session id of this request (to keep when ending other sessions).
    pub session_id: Id,
    pub session: Session,
}

/// A [`Member`] whose role is `admin`; anyone else gets 403.
pub struct TenantAdmin(pub Member);

impl<S> FromRequestParts<S> for Member
where
    TenantPool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Some(session) = parts.extensions.get::<Session>().cloned() else {
            return Err(AppError::Internal(anyhow::anyhow!("no session layer")));
        };
        let sign_in = || AppError::SignInRequired(sign_in_location(&parts.method, &parts.uri));
        let Some(session_id) = session.id() else {
            return Err(sign_in());
        };
        let Some(Site::Tenant(tenant)) = parts.extensions.get::<Site>().cloned() else {
            return Err(AppError::NotFound);
        };
        let pool = TenantPool::from_ref(state);
        let mut db = TenantDb::begin(&pool, tenant).await?;
        // The store copies the session's owner into `tenantry_sessions.owner_id`, so the
        // session and its user are found together.
        let found: Option<Found> = db
            .query_as(
                "SELECT u.id, u.email, u.display_name, u.role,
                    s.expiry_date < now() + $2::interval AS stale,
                    s.data->>'impersonated_by' AS impersonated_by,
                    (s.data->>'impersonation_id')::bigint AS impersonation_id
               FROM tenantry_sessions s JOIN users u ON u.id = s.owner_id
              WHERE s.id = $1 AND s.expiry_date > now() AND u.active
                AND coalesce((s.data->>'impersonation_until')::bigint
                             > extract(epoch FROM now()), true)",
            )
            .bind(session_id.to_string())
            .bind(REFRESH_AFTER_REMAINING)
            .fetch_optional(db.conn())
            .await?;
        match found {
            Some(Found { user, stale }) => {
                // An impersonation ends at its fixed time: never renewed.
                if stale && user.impersonated_by.is_none() {
                    // Sliding expiry without a write per request: once the
                    // session has used up half its life, renew it (the
                    // session layer saves it and re-sends the cookie).
                    session.set_expiry(Some(Expiry::OnInactivity(SESSION_LIFETIME)));
                }
                Ok(Member {
                    user,
                    db,
                    session_id,
                    session,
                })
            }
            None => Err(sign_in()),
        }
    }
}

impl<S> FromRequestParts<S> for TenantAdmin
where
    TenantPool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let member = Member::from_request_parts(parts, state).await?;
        if member.user.is_admin() {
            Ok(TenantAdmin(member))
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// What the navigation bar shows.
#[derive(Clone, Debug)]
pub struct WorkspaceNav {
    pub user_name: String,
    pub is_admin: bool,
    /// `board`, `users`, `audit` or `account`: marks the current link.
    pub current: &'static str,
    /// The super-admin viewing the workspace as this user, if any: every
    /// page shows a banner saying so.
    pub impersonated_by: Option<String>,
}

impl WorkspaceNav {
    pub fn new(user: &User, current: &'static str) -> WorkspaceNav {
        WorkspaceNav {
            user_name: user.display_name.clone(),
            is_admin: user.is_admin(),
            current,
            impersonated_by: user.impersonated_by.clone(),
        }
    }
}

/// A path id: anything that is not a positive integer is simply not found.
pub fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AppError::NotFound)
}
