//! Impersonation, the workspace's side. A super-admin mints a one-time link
//! in the control panel (`control_panel::impersonate`); `GET /impersonate`
//! redeems it here into a normal session of that user in the tenant's
//! schema, marked in its data as an impersonation and by whom. Such a
//! session shows a banner on every page (`_nav.html`), ends for good 30
//! minutes after it began, cannot change the user's password, and is
//! recorded in the tenant's own `operator_access` table, which its admins
//! read at `GET /audit`, as well as in the control panel's audit log.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sqlx::{AssertSqlSafe, Executor};
use time::OffsetDateTime;
use tower_sessions::{Expiry, Session};

use super::auth::Empty;
use super::member::{Member, TenantAdmin, WorkspaceNav};
use crate::control_panel::audit;
use crate::state::AppState;
use crate::tenancy::{SchemaName, Site, Tenant, TenantDb, db};
use crate::web::auth::{sign_in, sign_out};
use crate::web::client::ClientAddr;
use crate::web::{AppError, AppResult, Chrome, CsrfForm, Flash, IncomingFlash, Page, Refusal};

/// Session data keys of an impersonation (beside the owner's id).
pub const IMPERSONATED_BY: &str = "impersonated_by";
pub const IMPERSONATION_ID: &str = "impersonation_id";
/// Unix time at which the impersonation ends, whatever the session's own
/// expiry says (the member guard checks it too).
pub const IMPERSONATION_UNTIL: &str = "impersonation_until";

/// How long an impersonated session lasts, from redemption (absolute).
pub const LIFETIME: time::Duration = time::Duration::minutes(30);

/// Expired, used, forged, or meant for another workspace: one answer for
/// all, which tells a guesser nothing.
pub const BAD_LINK: Refusal = Refusal {
    title: "This link cannot be used",
    message: "This sign-in link from the control panel is not valid here: it may have expired \
              (links last one minute), been used already, or be meant for another workspace. \
              Open the workspace again from the control panel.",
};

pub const INACTIVE_USER: Refusal = Refusal {
    title: "Account deactivated",
    message: "The account this link was made for is deactivated, so the workspace cannot be \
              opened as that user.",
};

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(sqlx::FromRow)]
struct Redeemed {
    user_id: i64,
    super_admin_email: String,
}

#[derive(sqlx::FromRow)]
struct Started {
    id: i64,
    expires_at: OffsetDateTime,
}

/// `GET /impersonate?token=…`: redeems the link into a session as its user
/// (with a new session id, as a login does), then 303 to the board.
pub async fn redeem(
    State(state): State<AppState>,
    site: Site,
    session: Session,
    ClientAddr(addr): ClientAddr,
    Query(query): Query<TokenQuery>,
) -> AppResult<Response> {
    let Site::Tenant(tenant) = site else {
        return Err(AppError::NotFound);
    };
    let Some(hash) = crate::web::token::hash_of(&query.token) else {
        return Err(AppError::Refused(BAD_LINK));
    };
    // Used up here, at once and exactly once, and only on the tenant it was
    // made for (a link shown to another tenant's host stays unused), while
    // that tenant is active.
    let redeemed: Option<Redeemed> = {
        let mut tx = db::begin_public(&state.pool).await?;
        let found = db::query_as(
            "UPDATE public.impersonation_tokens k SET used_at = now()
               FROM public.tenants t
              WHERE k.token_hash = $1 AND k.used_at IS NULL AND k.expires_at > now()
                AND k.tenant_id = $2 AND t.id = k.tenant_id AND t.status = 'active'
          RETURNING k.user_id, k.super_admin_email",
        )
        .bind(&hash)
        .bind(tenant.id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        found
    };
    let Some(Redeemed {
        user_id,
        super_admin_email,
    }) = redeemed
    else {
        tracing::warn!(
            tenant = tenant.schema.as_str(),
            ?addr,
            "impersonation link refused"
        );
        return Err(AppError::Refused(BAD_LINK));
    };
    let mut tdb = TenantDb::begin(&state.tenants, tenant.clone()).await?;
    let user: Option<(String, String)> = tdb
        .query_as("SELECT display_name, email FROM users WHERE id = $1 AND active")
        .bind(user_id)
        .fetch_optional(tdb.conn())
        .await?;
    let Some((name, email)) = user else {
        return Err(AppError::Refused(INACTIVE_USER));
    };
    let started: Started = tdb
        .query_as(
            "INSERT INTO operator_access
                 (super_admin, user_id, user_name, user_email, client_addr, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + $6::interval)
             RETURNING id, expires_at",
        )
        .bind(&super_admin_email)
        .bind(user_id)
        .bind(&name)
        .bind(&email)
        .bind(addr.as_deref())
        .bind(LIFETIME)
        .fetch_one(tdb.conn())
        .await?;
    tdb.commit().await?;
    sign_in(&session, user_id).await?;
    session.insert(IMPERSONATED_BY, &super_admin_email).await?;
    session.insert(IMPERSONATION_ID, started.id).await?;
    session
        .insert(IMPERSONATION_UNTIL, started.expires_at.unix_timestamp())
        .await?;
    session.set_expiry(Some(Expiry::AtDateTime(started.expires_at)));
    tracing::info!(
        tenant = tenant.schema.as_str(),
        by = %super_admin_email,
        user_id,
        "impersonation started"
    );
    Ok((
        Flash::success(format!(
            "You are viewing {} as {name} for at most 30 minutes.",
            crate::branding::of(&tenant).display_name
        )),
        Redirect::to("/"),
    )
        .into_response())
}

/// How an impersonation ended, as `operator_access.end_reason` has it.
#[derive(Clone, Copy)]
pub enum EndReason {
    /// "End" in the banner.
    Ended,
    /// Signed out otherwise.
    SignedOut,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::Ended => "ended",
            EndReason::SignedOut => "signed_out",
        }
    }
}

/// Records the end of the impersonation `id` in both audit logs (once: an
/// ended one is left as it is).
async fn record_end(
    state: &AppState,
    tenant: &std::sync::Arc<Tenant>,
    id: i64,
    reason: EndReason,
    addr: Option<&str>,
) -> AppResult<()> {
    let mut tdb = TenantDb::begin(&state.tenants, tenant.clone()).await?;
    let ended: Option<(String, String, String)> = tdb
        .query_as(
            "UPDATE operator_access SET ended_at = now(), end_reason = $2
              WHERE id = $1 AND ended_at IS NULL
          RETURNING super_admin, user_name, user_email",
        )
        .bind(id)
        .bind(reason.as_str())
        .fetch_optional(tdb.conn())
        .await?;
    tdb.commit().await?;
    if let Some((by, name, email)) = ended {
        let mut tx = db::begin_public(&state.pool).await?;
        audit::record(
            &mut tx,
            &by,
            addr,
            audit::IMPERSONATION_END,
            Some(&tenant.slug),
            &format!("as {name} <{email}>"),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// `POST /impersonation/end`, the banner's "End": records the end and
/// deletes the session.
pub async fn end(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    member: Member,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> AppResult<Response> {
    let Member {
        user, db, session, ..
    } = member;
    let tenant = db.tenant().clone();
    drop(db);
    let Some(id) = user.impersonation_id else {
        // Not an impersonation: an ordinary sign-out.
        sign_out(&session).await?;
        return Ok((
            Flash::success("You have signed out."),
            Redirect::to("/login"),
        )
            .into_response());
    };
    record_end(&state, &tenant, id, EndReason::Ended, addr.as_deref()).await?;
    sign_out(&session).await?;
    Ok((
        Flash::success(format!(
            "You are no longer viewing the workspace as {}.",
            user.display_name
        )),
        Redirect::to("/login"),
    )
        .into_response())
}

/// For a sign-out of any kind: if the session is an impersonation, its end
/// is recorded.
pub async fn signing_out(
    state: &AppState,
    site: &Site,
    session: &Session,
    addr: Option<&str>,
) -> AppResult<()> {
    let Site::Tenant(tenant) = site else {
        return Ok(());
    };
    if let Some(id) = session.get::<i64>(IMPERSONATION_ID).await? {
        record_end(state, tenant, id, EndReason::SignedOut, addr).await?;
    }
    Ok(())
}

/// Closes the open impersonations of the tenant in `schema` as ended by its
/// suspension (which deletes its sessions), inside the caller's transaction
/// on any search path.
pub async fn end_all_for_suspension(
    conn: &mut sqlx::PgConnection,
    schema: &SchemaName,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "UPDATE {}.operator_access SET ended_at = now(), end_reason = 'suspended'
          WHERE ended_at IS NULL AND expires_at > now()",
        schema.quoted()
    );
    Ok(conn.execute(AssertSqlSafe(sql)).await?.rows_affected())
}

/// One impersonation as the tenant's audit page shows it.
#[derive(sqlx::FromRow)]
pub struct AccessRow {
    pub super_admin: String,
    pub user_name: String,
    pub user_email: String,
    pub started: String,
    pub started_iso: String,
    /// When it ended (or expired), if it has.
    pub ended: Option<String>,
    /// `ended`, `signed_out`, `suspended`, `expired`, `closed` (its
    /// session went another way: deactivation, a password change) or
    /// `active`.
    pub state: String,
}

impl AccessRow {
    pub fn how(&self) -> &'static str {
        match self.state.as_str() {
            "ended" => "Ended from the banner",
            "signed_out" => "Signed out",
            "suspended" => "Ended: workspace suspended",
            "expired" => "Expired after 30 minutes",
            "closed" => "Session ended",
            _ => "In progress",
        }
    }

    pub fn is_active(&self) -> bool {
        self.state == "active"
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace/audit.html")]
pub struct AuditPage {
    chrome: Chrome,
    flash: IncomingFlash,
    nav: WorkspaceNav,
    csrf: String,
    rows: Vec<AccessRow>,
    /// Downloads of the workspace's archive.
    exports: Vec<super::export::ExportRow>,
}

/// How many impersonations the page lists (the newest).
const SHOWN: i64 = 200;

/// `GET /audit` (admins only): who from the operator's side opened this
/// workspace as whom, when, and when that ended.
pub async fn page(
    Page {
        chrome,
        csrf,
        flash,
    }: Page,
    State(state): State<AppState>,
    TenantAdmin(mut member): TenantAdmin,
) -> AppResult<AuditPage> {
    let db = &mut member.db;
    let rows: Vec<AccessRow> = db
        .query_as(
            "SELECT a.super_admin, a.user_name, a.user_email,
                    to_char(a.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
                        AS started,
                    to_char(a.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
                        AS started_iso,
                    to_char(coalesce(a.ended_at, a.expires_at) AT TIME ZONE 'UTC',
                            'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS ended,
                    CASE
                        WHEN a.ended_at IS NOT NULL THEN a.end_reason
                        WHEN a.expires_at <= now() THEN 'expired'
                        WHEN NOT EXISTS (
                            SELECT 1 FROM tenantry_sessions s
                             WHERE s.data->>'impersonation_id' = a.id::text
                               AND s.expiry_date > now()) THEN 'closed'
                        ELSE 'active'
                    END AS state
               FROM operator_access a
              ORDER BY a.id DESC
              LIMIT $1",
        )
        .bind(SHOWN)
        .fetch_all(db.conn())
        .await?;
    let rows = rows
        .into_iter()
        .map(|mut r| {
            // Only a finished one has an end time to show.
            if r.state == "active" || r.state == "closed" {
                r.ended = None;
            }
            r
        })
        .collect();
    let tenant = member.db.tenant().clone();
    drop(member.db);
    let exports = super::export::recent(&state.pool, &tenant).await?;
    Ok(AuditPage {
        chrome,
        flash,
        nav: WorkspaceNav::new(&member.user, "audit"),
        csrf: csrf.0,
        rows,
        exports,
    })
}
