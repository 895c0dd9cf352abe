//! Signing super-admins in and out.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{Admin, ClientAddr, audit, chrome};
use crate::password;
use crate::state::AppState;
use crate::tenancy::PublicDb;
use crate::tenancy::db;
use crate::web::throttle::{self, Attempt};
use crate::web::{AppError, Chrome, CsrfForm, CsrfToken, Flash, IncomingFlash, auth};

/// The command that creates the first super-admin, shown on first run.
pub const CREATE_COMMAND: &str =
    "echo 'a-long-password' | tenantry superadmin create --email you@example.com --password-stdin";

/// Failed logins for one email within [`THROTTLE_MINUTES`] before further
/// attempts are refused, counted from the audit log. This is on top of the
/// in-memory [`throttle`] both sites use (per address and per account, per
/// instance): the audit log is shared by every instance and survives a
/// restart, so a super-admin account (the keys to every tenant) gets a
/// cluster-wide limit too.
pub const MAX_FAILURES: i64 = 10;
pub const THROTTLE_MINUTES: i32 = 15;

#[derive(Template, WebTemplate)]
#[template(path = "control_panel/login.html")]
pub struct LoginPage {
    chrome: Chrome,
    flash: IncomingFlash,
    csrf: String,
    email: String,
    error: Option<String>,
    /// No super-admin exists yet: the page explains how to create one.
    first_run: Option<&'static str>,
}

async fn first_run(state: &AppState) -> Result<Option<&'static str>, AppError> {
    let mut tx = db::begin_public(&state.pool).await?;
    let any: bool = db::query_scalar("SELECT EXISTS (SELECT 1 FROM public.super_admins)")
        .fetch_one(&mut *tx)
        .await?;
    Ok((!any).then_some(CREATE_COMMAND))
}

/// `GET /login`: the sign-in form (or `/` when already signed in).
pub async fn login_page(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    flash: IncomingFlash,
) -> Result<Response, AppError> {
    if auth::signed_in(&session).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(LoginPage {
        chrome: chrome(),
        flash,
        csrf: csrf.0,
        email: String::new(),
        error: None,
        first_run: first_run(&state).await?,
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: 303 to `/` on success; otherwise the form again with 401
/// and one message that does not say which of the two was wrong.
pub async fn login(
    State(state): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    ClientAddr(addr): ClientAddr,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, AppError> {
    let email = password::clean_email(&form.email).ok();
    let typed: String = form.email.trim().chars().take(254).collect();
    // Who the audit log names: the email as stored when it is one.
    let who = email.clone().unwrap_or_else(|| typed.clone());

    // Too many recent failures from this address or for this account (this
    // instance's count), or for this email across every instance (the audit
    // log's): refuse without checking, so guessing a password online is slow.
    let attempt = Attempt::new("control-panel", addr.as_deref().unwrap_or("unknown"), &who);
    // Reads in a transaction: behind a transaction-mode PgBouncer, an
    // unnamed statement must be parsed and run on one server connection.
    let mut tx = db::begin_public(&state.pool).await?;
    let recent_failures: i64 = db::query_scalar(
        "SELECT count(*) FROM public.audit_log
          WHERE at > now() - make_interval(mins => $2) AND action = $3 AND actor = $1",
    )
    .bind(&who)
    .bind(THROTTLE_MINUTES)
    .bind(audit::LOGIN_FAILED)
    .fetch_one(&mut *tx)
    .await?;
    let refused = match state.throttle.check(&attempt) {
        Err(wait) => Some(wait),
        Ok(()) if recent_failures >= MAX_FAILURES => Some(std::time::Duration::from_secs(
            u64::try_from(THROTTLE_MINUTES).unwrap_or(15) * 60,
        )),
        Ok(()) => None,
    };
    if let Some(wait) = refused {
        tracing::warn!(email = %who, ?addr, "control-panel login throttled");
        let (message, retry_after) = throttle::refusal(wait);
        let page = LoginPage {
            chrome: chrome(),
            flash: IncomingFlash::default(),
            csrf: csrf.0,
            email: typed,
            error: Some(message),
            first_run: None,
        };
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            page,
        )
            .into_response());
    }

    let account: Option<(i64, String)> = match &email {
        Some(email) => {
            db::query_as(
                "SELECT id, password_hash FROM public.super_admins WHERE lower(email) = $1",
            )
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?
        }
        None => None,
    };
    // An unknown account (or an absurd password) still costs one hash, so
    // timing does not tell which emails exist.
    let given = if form.password.len() > password::MAX_LENGTH {
        String::new()
    } else {
        form.password
    };
    let ok = password::verify(given, account.as_ref().map(|(_, h)| h.clone())).await;
    // The transaction starts after hashing, so no connection waits on argon2.
    let mut db = PublicDb::begin(&state.pool).await?;

    match account {
        Some((id, _)) if ok => {
            state.throttle.record_success(&attempt);
            auth::sign_in(&session, id).await?;
            db::query("UPDATE public.super_admins SET last_login_at = now() WHERE id = $1")
                .bind(id)
                .execute(db.conn())
                .await?;
            let email = email.unwrap_or_default();
            audit::record(db.conn(), &email, addr.as_deref(), audit::LOGIN, None, "").await?;
            db.commit().await?;
            Ok(Redirect::to("/").into_response())
        }
        _ => {
            state.throttle.record_failure(&attempt);
            let detail = if account.is_some() {
                "wrong password"
            } else {
                "unknown email"
            };
            audit::record(
                db.conn(),
                &who,
                addr.as_deref(),
                audit::LOGIN_FAILED,
                None,
                detail,
            )
            .await?;
            db.commit().await?;
            tracing::info!(email = %who, "failed control-panel login");
            let page = LoginPage {
                chrome: chrome(),
                flash: IncomingFlash::default(),
                csrf: csrf.0,
                email: typed,
                error: Some("That email and password do not match a super-admin account.".into()),
                first_run: first_run(&state).await?,
            };
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

/// `POST /logout`: ends the session (its row is deleted at once).
pub async fn logout(
    admin: Admin,
    session: Session,
    mut db: PublicDb,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    admin.audit(db.conn(), audit::LOGOUT, None, "").await?;
    db.commit().await?;
    auth::sign_out(&session).await?;
    Ok((
        Flash::success("You have signed out."),
        Redirect::to("/login"),
    )
        .into_response())
}
