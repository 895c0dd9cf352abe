//! The signed-in user of a tenant, as an extractor.
//!
//! [`Member`] reads the session id from the cookie (without loading the
//! session record through the store), opens the request's one [`TenantDb`]
//! transaction and, in a single query, finds the live session and its active
//! user. The handler gets both, so a page costs one transaction and no
//! session write. A page that only reads can have its data found in the
//! same statement, run on its own without a transaction ([`Visit::read`]
//! and [`member_sql!`]: the board does): one round trip for the session and
//! the page. No session, an expired one or an inactive user: 303 to
//! `/login` (with `?next=` the page asked for).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{FromRow, Row};
use tower_sessions::session::Id;
use tower_sessions::{Expiry, Session};

use crate::tenancy::{Site, Tenant, TenantDb, TenantPool};
use crate::web::AppError;
use crate::web::auth::{SESSION_LIFETIME, sign_in_location};

/// A user of the tenant, as pages need them.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: String,
    /// Set when this session is a super-admin's impersonation of the user
    /// (see `impersonation`): that super-admin's email.
    pub impersonated_by: Option<String>,
    /// The impersonation's row in `operator_access`, likewise.
    pub impersonation_id: Option<i64>,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// The statement that finds the live session (`$1`) and its active user,
/// as a CTE `me` in front of a page's own SQL, which selects one JSON
/// value, `json_build_array(me, <the page's data>)`. Every table is named
/// with its schema (`{schema}.users`, see `tenancy::db::in_schema`), so
/// the statement can run outside a pinned transaction ([`Visit::read`]):
/// `member_sql!("SELECT json_build_array(me, null) FROM me")` alone, or with
/// the page's data beside the member (the board), so a page can cost one
/// statement. It takes no parameter beyond the session's.
///
/// One column, few parameters and a compact text ([`crate::compact_sql!`]):
/// sqlx keeps every tenant's copy of the statement, its text and a
/// description of each column and parameter, for as long as the
/// connection lives. At 10,000 busy tenants that was most of the server's
/// heap (nine columns then; `docs/BENCHMARKS.md`, "Per-tenant memory in
/// the server").
///
/// A session counts as stale, and is renewed, once it has used up half its
/// life ([`SESSION_LIFETIME`]): the interval is written into the text (a
/// test holds the two together) rather than sent with every request.
///
/// The store copies the session's owner into `tenantry_sessions.owner_id`,
/// so the session and its user are found together.
macro_rules! member_sql {
    ($page:literal) => {
        $crate::compact_sql!(concat!(
            "WITH me AS (
               SELECT u.id, u.email, u.display_name, u.role,
                      s.expiry_date < now() + interval '7 days' AS stale,
                      s.data->'impersonated_by' AS impersonated_by,
                      s.data->'impersonation_id' AS impersonation_id
                 FROM {schema}.tenantry_sessions s
                 JOIN {schema}.users u ON u.id = s.owner_id
                WHERE s.id = $1 AND s.expiry_date > now() AND u.active
                  AND coalesce((s.data->>'impersonation_until')::bigint
                               > extract(epoch FROM now()), true))
             ",
            $page
        ))
    };
}
pub(crate) use member_sql;

/// The member, the first element of a [`member_sql!`] statement's value.
#[derive(Deserialize)]
struct Me {
    #[serde(flatten)]
    user: User,
    stale: bool,
}

/// The row of a [`member_sql!`] statement: the member, and the page's data
/// (`P`, deserialized from the value's second element).
pub struct WithMember<P> {
    user: User,
    stale: bool,
    page: P,
}

impl<'r, P: DeserializeOwned> FromRow<'r, PgRow> for WithMember<P> {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let Json((Me { user, stale }, page)) = row.try_get(0)?;
        Ok(WithMember { user, stale, page })
    }
}

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

/// A request to a tenant's page with a session cookie, the session not
/// checked yet: [`Visit::sign_in`] makes it a [`Member`] (or a redirect to
/// `/login`), and [`Visit::read`], for a page that only reads, the user and
/// the page's data.
pub struct Visit {
    tenants: TenantPool,
    tenant: Arc<Tenant>,
    session_id: Id,
    session: Session,
    /// The request's method and URI, for where "sign in first" sends it
    /// (worked out only then: the board is the hottest page).
    method: Method,
    uri: Uri,
}

impl<S> FromRequestParts<S> for Visit
where
    TenantPool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let Some(session) = parts.extensions.get::<Session>().cloned() else {
            return Err(AppError::Internal(anyhow::anyhow!("no session layer")));
        };
        let Some(session_id) = session.id() else {
            return Err(sign_in_required(&parts.method, &parts.uri));
        };
        let Some(Site::Tenant(tenant)) = parts.extensions.get::<Site>().cloned() else {
            return Err(AppError::NotFound);
        };
        Ok(Visit {
            tenants: TenantPool::from_ref(state),
            tenant,
            session_id,
            session,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
        })
    }
}

impl Visit {
    /// The member, with the request's transaction open.
    pub async fn sign_in(self) -> Result<Member, AppError> {
        let mut db = TenantDb::begin(&self.tenants, self.tenant.clone()).await?;
        let sql = member_sql!("SELECT json_build_array(me, null) FROM me");
        let found = fetch_with_member(&mut db, &self.session_id, sql).await?;
        let (user, ()) = self.signed_in(found)?;
        Ok(Member {
            user,
            db,
            session_id: self.session_id,
            session: self.session,
        })
    }

    /// Runs `sql`, a [`member_sql!`] statement, as a transaction of its own
    /// (`TenantPool::fetch_optional`: one round trip, no `BEGIN` or
    /// `ROLLBACK`): the user and the page's data. For pages that only read.
    pub async fn read<P>(self, sql: &'static str) -> Result<(User, P), AppError>
    where
        P: DeserializeOwned + Send + Unpin,
    {
        let id = self.session_id.to_string();
        let found = self
            .tenants
            .fetch_optional(&self.tenant, sql, |q| q.bind(id.clone()))
            .await?;
        self.signed_in(found)
    }

    /// The member found, or sign-in first; renews a session past half its
    /// life.
    fn signed_in<P>(&self, found: Option<WithMember<P>>) -> Result<(User, P), AppError> {
        let Some(found) = found else {
            return Err(sign_in_required(&self.method, &self.uri));
        };
        // An impersonation ends at its fixed time: never renewed.
        if found.stale && found.user.impersonated_by.is_none() {
            // Sliding expiry without a write per request: once the session
            // has used up half its life, renew it (the session layer saves
            // it and re-sends the cookie).
            self.session
                .set_expiry(Some(Expiry::OnInactivity(SESSION_LIFETIME)));
        }
        Ok((found.user, found.page))
    }
}

fn sign_in_required(method: &Method, uri: &Uri) -> AppError {
    AppError::SignInRequired(sign_in_location(method, uri))
}

async fn fetch_with_member<P>(
    db: &mut TenantDb,
    session_id: &Id,
    sql: &'static str,
) -> Result<Option<WithMember<P>>, sqlx::Error>
where
    P: DeserializeOwned + Send + Unpin,
{
    db.query_as(sql)
        .bind(session_id.to_string())
        .fetch_optional(db.conn())
        .await
}

impl Member {
    /// Runs `sql`, a [`member_sql!`] statement, again for this member's
    /// session in its transaction: the page's data (a page shown again
    /// after a failed form), or sign-in when the session ended meanwhile.
    pub async fn page_with<P>(&mut self, sql: &'static str) -> Result<P, AppError>
    where
        P: DeserializeOwned + Send + Unpin,
    {
        match fetch_with_member(&mut self.db, &self.session_id, sql).await? {
            Some(found) => Ok(found.page),
            None => Err(AppError::SignInRequired("/login".into())),
        }
    }
}

impl<S> FromRequestParts<S> for Member
where
    TenantPool: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Visit::from_request_parts(parts, state)
            .await?
            .sign_in()
            .await
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

#[cfg(test)]
mod tests {
    use crate::web::auth::SESSION_LIFETIME;

    #[test]
    fn a_session_is_stale_once_half_its_life_is_used() {
        let sql = member_sql!("SELECT json_build_array(me, null) FROM me");
        let half = SESSION_LIFETIME.whole_days() / 2;
        let stale = format!("s.expiry_date < now() + interval '{half} days' AS stale");
        assert!(sql.contains(&stale), "{sql}");
    }
}
