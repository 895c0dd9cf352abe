//! Signing super-admins in and out.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use super::{ClientAddr, SuperAdmin, audit, chrome};
use crate::password;
use crate::state::AppState;
use crate::tenancy::PublicDb;
use crate::tenancy::db;
use crate::web::auth::NextQuery;
use crate::web::throttle::{self, Attempt};
use crate::web::{AppError, Chrome, CsrfForm, CsrfToken, Flash, IncomingFlash, Page, auth};

/// The command that creates the first super-admin, shown on first run.
pub const CREATE_COMMAND: &str =
    "echo 'a-long-password' | tenantry superadmin create --email you@example.com --password-stdin";

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
    /// Where to go after signing in (a same-site path), kept in the form.
    next: String,
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
    Page {
        chrome,
        csrf,
        flash,
    }: Page,
    Query(query): Query<NextQuery>,
) -> Result<Response, AppError> {
    if auth::signed_in(&session).await?.is_some() {
        return Ok(Redirect::to(&auth::after_sign_in(&query.next)).into_response());
    }
    Ok(LoginPage {
        chrome,
        flash,
        csrf: csrf.0,
        email: String::new(),
        error: None,
        first_run: first_run(&state).await?,
        next: auth::safe_next(&query.next).unwrap_or_default(),
    }
    .into_response())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: 303 to `next` (a same-site path) or `/` on success;
/// otherwise the form again with 401 and one message that does not say
/// which of the two was wrong.
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

    let next = auth::safe_next(&form.next).unwrap_or_default();
    let page = |csrf: CsrfToken, error: String, first_run: Option<&'static str>| LoginPage {
        chrome: chrome(),
        flash: IncomingFlash::default(),
        csrf: csrf.0,
        email: typed.clone(),
        error: Some(error),
        first_run,
        next: next.clone(),
    };

    // Still waiting out the delay of earlier failures for this account from
    // this address (shared by every instance): refuse without checking.
    let attempt = Attempt::new("control-panel", addr.as_deref(), &who);
    if let Err(wait) = throttle::admit(&state.pool, &attempt).await? {
        tracing::warn!(email = %who, ?addr, "control-panel sign-in throttled");
        crate::metrics::sign_in("control_panel", "throttled");
        let (message, retry_after) = throttle::refusal(wait);
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            page(csrf, message, None),
        )
            .into_response());
    }

    // The account is read in a transaction of its own that ends before the
    // hash: no connection waits on argon2.
    let account: Option<(i64, String)> = match &email {
        Some(email) => {
            let mut tx = db::begin_public(&state.pool).await?;
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

    match account {
        Some((id, _)) if ok => {
            throttle::succeeded(&state.pool, &attempt).await?;
            crate::metrics::sign_in("control_panel", "success");
            auth::sign_in(&session, id).await?;
            let mut db = PublicDb::begin(&state.pool).await?;
            db::query("UPDATE public.super_admins SET last_login_at = now() WHERE id = $1")
                .bind(id)
                .execute(db.conn())
                .await?;
            let email = email.unwrap_or_default();
            audit::record(db.conn(), &email, addr.as_deref(), audit::LOGIN, None, "").await?;
            db.commit().await?;
            Ok(Redirect::to(&auth::after_sign_in(&next)).into_response())
        }
        _ => {
            let detail = if account.is_some() {
                "wrong password"
            } else {
                "unknown email"
            };
            let mut db = PublicDb::begin(&state.pool).await?;
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
            crate::metrics::sign_in("control_panel", "failure");
            let message = "That email and password do not match a super-admin account.";
            let first_run = first_run(&state).await?;
            Ok((
                StatusCode::UNAUTHORIZED,
                page(csrf, message.into(), first_run),
            )
                .into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

/// `POST /logout`: ends the session (its row is deleted at once).
pub async fn logout(
    admin: SuperAdmin,
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
