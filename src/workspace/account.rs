//! The signed-in user's own account: who they are, and a password change.

use crate::tenancy::TenantPool;
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::member::{Member, WorkspaceNav};
use crate::password;
use crate::tenancy::sessions::end_sessions_of;
use crate::web::{AppError, Chrome, CsrfForm, FieldErrors, Flash, IncomingFlash, Page};

#[derive(Template, WebTemplate)]
#[template(path = "workspace/account.html")]
struct AccountPage {
    chrome: Chrome,
    flash: IncomingFlash,
    nav: WorkspaceNav,
    csrf: String,
    name: String,
    email: String,
    role: String,
    errors: FieldErrors,
}

fn account_page(
    Page {
        chrome,
        csrf,
        flash,
    }: Page,
    member: &Member,
    errors: FieldErrors,
) -> AccountPage {
    AccountPage {
        chrome,
        flash,
        nav: WorkspaceNav::new(&member.user, "account"),
        csrf: csrf.0,
        name: member.user.display_name.clone(),
        email: member.user.email.clone(),
        role: if member.user.is_admin() {
            "Admin".into()
        } else {
            "Member".into()
        },
        errors,
    }
}

/// `GET /account`.
pub async fn show(page: Page, member: Member) -> impl IntoResponse {
    account_page(page, &member, FieldErrors::default())
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// `POST /account/password`: needs the current password; ends every other
/// session of the user.
pub async fn change_password(
    page: Page,
    State(tenants): State<TenantPool>,
    mut member: Member,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, AppError> {
    // Someone viewing the account from the control panel must not take it
    // over: the page says so instead of showing the form.
    if member.user.impersonated_by.is_some() {
        let page = account_page(page.without_flash(), &member, FieldErrors::default());
        return Ok((StatusCode::FORBIDDEN, page).into_response());
    }
    let mut errors = FieldErrors::default();
    let db = &mut member.db;
    let stored: String = db
        .query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(member.user.id)
        .fetch_one(db.conn())
        .await?;
    let new_ok = errors.check("new_password", password::check_new(&form.new_password));
    // Both argon2 runs (checking the current password, hashing the new one)
    // happen with no connection held.
    let hashing = async {
        let current_ok = password::verify(form.current_password, Some(stored)).await;
        let hash = match (current_ok, new_ok) {
            (true, Some(())) => Some(password::hash(form.new_password).await),
            _ => None,
        };
        (current_ok, hash)
    };
    let (db, (current_ok, hash)) = member.db.without_connection(&tenants, hashing).await?;
    member.db = db;
    if !current_ok {
        errors.add("current_password", "That is not your current password.");
    }
    let Some(hash) = hash.filter(|_| errors.is_empty()) else {
        let page = account_page(page.without_flash(), &member, errors);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let hash = hash?;
    let db = &mut member.db;
    db.query("UPDATE users SET password_hash = $2 WHERE id = $1")
        .bind(member.user.id)
        .bind(&hash)
        .execute(db.conn())
        .await?;
    let ended = end_sessions_of(db.conn(), member.user.id, Some(&member.session_id)).await?;
    member.db.commit().await?;
    let message = match ended {
        0 => "Password changed.".to_owned(),
        1 => "Password changed. Your other session was signed out.".to_owned(),
        n => format!("Password changed. Your {n} other sessions were signed out."),
    };
    Ok((Flash::success(message), Redirect::to("/account")).into_response())
}
