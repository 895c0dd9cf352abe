//! Signing in and out of a workspace.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_sessions::Session;

use crate::state::AppState;
use crate::tenancy::{Site, TenantDb};
use crate::web::auth::{NextQuery, after_sign_in, safe_next, sign_in, sign_out};
use crate::web::client::ClientAddr;
use crate::web::throttle::{self, Attempt};
use crate::web::{AppError, Chrome, CsrfForm, CsrfToken, Flash, IncomingFlash, Page};

#[derive(Template, WebTemplate)]
#[template(path = "workspace/login.html")]
struct LoginPage {
    chrome: Chrome,
    flash: IncomingFlash,
    csrf: String,
    email: String,
    error: Option<String>,
    /// Where to go after signing in (a same-site path), kept in the form.
    next: String,
}

pub async fn login_form(
    Page {
        chrome,
        csrf,
        flash,
    }: Page,
    Query(query): Query<NextQuery>,
) -> impl IntoResponse {
    LoginPage {
        chrome,
        flash,
        csrf: csrf.0,
        email: String::new(),
        error: None,
        next: safe_next(&query.next).unwrap_or_default(),
    }
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

/// One message for every failure, so the form never tells whether an
/// address has an account.
const BAD_LOGIN: &str = "That email and password do not match an active account.";

pub async fn login(
    State(state): State<AppState>,
    site: Site,
    csrf: CsrfToken,
    session: Session,
    ClientAddr(addr): ClientAddr,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, AppError> {
    let Site::Tenant(tenant) = &site else {
        return Err(AppError::NotFound);
    };
    let email = form.email.trim().to_lowercase();
    let next = safe_next(&form.next).unwrap_or_default();
    let page = |csrf: CsrfToken, error: String| LoginPage {
        chrome: Chrome::for_site(&site),
        flash: IncomingFlash(None),
        csrf: csrf.0,
        email: form.email.trim().chars().take(254).collect(),
        error: Some(error),
        next: next.clone(),
    };
    // Still waiting out the delay of earlier failures for this account from
    // this address (shared by every instance): refuse before looking
    // anything up.
    let attempt = Attempt::new(&Attempt::tenant_site(tenant.id), addr.as_deref(), &email);
    if let Err(wait) = throttle::admit(&state.pool, &attempt).await? {
        let (message, retry_after) = throttle::refusal(wait);
        tracing::warn!(
            tenant = tenant.schema.as_str(),
            ?addr,
            "workspace sign-in throttled"
        );
        crate::metrics::sign_in("tenant", "throttled");
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            page(csrf, message),
        )
            .into_response());
    }
    let found: Option<(i64, String, bool)> = if email.is_empty() || email.len() > 254 {
        None
    } else {
        let mut db = TenantDb::begin(&state.tenants, tenant.clone()).await?;
        db.query_as("SELECT id, password_hash, active FROM users WHERE lower(email) = $1")
            .bind(&email)
            .fetch_optional(db.conn())
            .await?
        // The transaction ends here: no connection is held while hashing.
    };
    let (user_id, stored, active) = match found {
        Some((id, hash, active)) => (Some(id), Some(hash), active),
        None => (None, None, false),
    };
    // Always one argon2 verification, whether or not the account exists.
    let given = if form.password.len() > crate::password::MAX_LENGTH {
        String::new()
    } else {
        form.password.clone()
    };
    let ok = crate::password::verify(given, stored).await;
    match user_id {
        Some(id) if ok && active => {
            throttle::succeeded(&state.pool, &attempt).await?;
            crate::metrics::sign_in("tenant", "success");
            sign_in(&session, id).await?;
            Ok((
                Flash::success("Welcome back."),
                Redirect::to(&after_sign_in(&next)),
            )
                .into_response())
        }
        _ => {
            crate::metrics::sign_in("tenant", "failure");
            Ok((StatusCode::UNAUTHORIZED, page(csrf, BAD_LOGIN.into())).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

/// Deletes the session row at once and clears the cookie (and records the
/// end of an impersonation).
pub async fn logout(
    State(state): State<AppState>,
    site: Site,
    session: Session,
    ClientAddr(addr): ClientAddr,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    super::impersonation::signing_out(&state, &site, &session, addr.as_deref()).await?;
    sign_out(&session).await?;
    Ok((
        Flash::success("You have signed out."),
        Redirect::to("/login"),
    )
        .into_response())
}
