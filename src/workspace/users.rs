//! Managing a workspace's users (admins only).

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sqlx::PgPool;

use super::auth::Empty;
use super::member::{TenantAdmin, WorkspaceNav, parse_id};
use crate::password;
use crate::tenancy::sessions::end_sessions_of;
use crate::tenancy::{Tenant, TenantDb, TenantPool, db};
use crate::web::{AppError, Chrome, CsrfForm, FieldErrors, Flash, IncomingFlash, Page};

#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub active: bool,
    pub created_at: time::OffsetDateTime,
}

impl Row {
    pub fn joined(&self) -> String {
        let d = self.created_at.date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub role: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "workspace/users.html")]
struct UsersPage {
    chrome: Chrome,
    flash: IncomingFlash,
    nav: WorkspaceNav,
    csrf: String,
    me: i64,
    users: Vec<Row>,
    active_count: usize,
    form: NewUserForm,
    errors: FieldErrors,
}

async fn users_page(
    Page {
        chrome,
        csrf,
        flash,
    }: Page,
    admin: &mut TenantAdmin,
    form: NewUserForm,
    errors: FieldErrors,
) -> Result<UsersPage, AppError> {
    let member = &mut admin.0;
    let db = &mut member.db;
    let users: Vec<Row> = db
        .query_as(
            "SELECT id, email, display_name, role, active, created_at FROM users
          ORDER BY active DESC, lower(display_name), id",
        )
        .fetch_all(db.conn())
        .await?;
    Ok(UsersPage {
        chrome,
        flash,
        nav: WorkspaceNav::new(&member.user, "users"),
        csrf: csrf.0,
        me: member.user.id,
        active_count: users.iter().filter(|u| u.active).count(),
        users,
        form,
        errors,
    })
}

/// `GET /admin/users`.
pub async fn list(page: Page, mut admin: TenantAdmin) -> Result<impl IntoResponse, AppError> {
    let form = NewUserForm {
        role: "member".into(),
        ..NewUserForm::default()
    };
    users_page(page, &mut admin, form, FieldErrors::default()).await
}

/// Brings `public.tenants.user_count` (the control panel's figure) up to
/// date after a change has committed: counted in the tenant's own schema,
/// written in a public transaction of its own, so user admin never writes
/// across schemas in one transaction (with Citus the two live on different
/// nodes). Counted after the commit, so it includes concurrent changes.
async fn refresh_user_count(
    pool: &PgPool,
    tenants: &TenantPool,
    tenant: Arc<Tenant>,
) -> Result<(), AppError> {
    let id = tenant.id;
    let count: i64 = {
        let mut db = TenantDb::begin(tenants, tenant).await?;
        db.query_scalar("SELECT count(*) FROM users WHERE active")
            .fetch_one(db.conn())
            .await?
    };
    let mut tx = db::begin_public(pool).await?;
    db::query("UPDATE public.tenants SET user_count = $1 WHERE id = $2")
        .bind(i32::try_from(count).unwrap_or(i32::MAX))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /admin/users`.
pub async fn create(
    page: Page,
    State(pool): State<PgPool>,
    State(tenants): State<TenantPool>,
    mut admin: TenantAdmin,
    CsrfForm(form): CsrfForm<NewUserForm>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::default();
    let email = errors.check("email", password::clean_email(&form.email));
    let name = errors.check(
        "display_name",
        crate::branding::clean_display_name(&form.display_name),
    );
    errors.check("password", password::check_new(&form.password));
    let role = match form.role.as_str() {
        "admin" => Some("admin"),
        "member" => Some("member"),
        _ => {
            errors.add("role", "Choose Admin or Member.");
            None
        }
    };
    if let Some(email) = &email {
        let db = &mut admin.0.db;
        let taken: bool = db
            .query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE lower(email) = $1)")
            .bind(email)
            .fetch_one(db.conn())
            .await?;
        if taken {
            errors.add("email", "Someone in this workspace already has this email.");
        }
    }
    let (Some(email), Some(name), Some(role), true) = (email, name, role, errors.is_empty()) else {
        let mut form = form;
        form.password.clear();
        let page = users_page(page.without_flash(), &mut admin, form, errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    // The request's transaction is set aside while hashing (no connection
    // waits on argon2); the insert below re-checks the email by constraint.
    let (db, hash) = admin
        .0
        .db
        .without_connection(&tenants, password::hash(form.password.clone()))
        .await?;
    admin.0.db = db;
    let hash = hash?;
    let db = &mut admin.0.db;
    let inserted = db
        .query(
            "INSERT INTO users (email, display_name, password_hash, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
        )
        .bind(&email)
        .bind(&name)
        .bind(&hash)
        .bind(role)
        .execute(db.conn())
        .await?;
    if inserted.rows_affected() == 0 {
        // Someone took the address since the check above.
        let mut errors = FieldErrors::default();
        errors.add("email", "Someone in this workspace already has this email.");
        let form = NewUserForm {
            password: String::new(),
            ..form_of(&email, &name, role)
        };
        let page = users_page(page.without_flash(), &mut admin, form, errors).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let tenant = admin.0.db.tenant().clone();
    admin.0.db.commit().await?;
    refresh_user_count(&pool, &tenants, tenant).await?;
    Ok((
        Flash::success(format!("{name} can now sign in.")),
        Redirect::to("/admin/users"),
    )
        .into_response())
}

fn form_of(email: &str, name: &str, role: &str) -> NewUserForm {
    NewUserForm {
        email: email.into(),
        display_name: name.into(),
        password: String::new(),
        role: role.into(),
    }
}

/// The target user, locked for the change; 404 when not in this tenant.
async fn lock_user(db: &mut TenantDb, id: i64) -> Result<(String, String, bool), AppError> {
    db.query_as("SELECT display_name, role, active FROM users WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(db.conn())
        .await?
        .ok_or(AppError::NotFound)
}

/// Locks every active admin row (always first, and in id order, so two
/// admins demoting each other at once neither deadlock nor leave no admin)
/// and returns their ids.
async fn lock_admins(db: &mut TenantDb) -> Result<Vec<i64>, AppError> {
    Ok(db
        .query_scalar("SELECT id FROM users WHERE role = 'admin' AND active ORDER BY id FOR UPDATE")
        .fetch_all(db.conn())
        .await?)
}

fn back(flash: Flash) -> Response {
    (flash, Redirect::to("/admin/users")).into_response()
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /admin/users/{id}/role`.
pub async fn change_role(
    TenantAdmin(mut member): TenantAdmin,
    Path(raw): Path<String>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let role = match form.role.as_str() {
        "admin" => "admin",
        "member" => "member",
        _ => return Err(AppError::InvalidForm),
    };
    let db = &mut member.db;
    let admins = lock_admins(db).await?;
    let (name, current, _) = lock_user(db, id).await?;
    if current == role {
        return Ok(back(Flash::success(format!(
            "{name} is already {}.",
            a_role(role)
        ))));
    }
    if role == "member" && admins == [id] {
        return Ok(back(Flash::error(format!(
            "{name} is the last active admin: make someone else an admin first."
        ))));
    }
    db.query("UPDATE users SET role = $2 WHERE id = $1")
        .bind(id)
        .bind(role)
        .execute(db.conn())
        .await?;
    member.db.commit().await?;
    let flash = Flash::success(format!("{name} is now {}.", a_role(role)));
    if id == member.user.id && role == "member" {
        // They can no longer see the users page.
        return Ok((flash, Redirect::to("/")).into_response());
    }
    Ok(back(flash))
}

fn a_role(role: &str) -> &'static str {
    if role == "admin" {
        "an admin"
    } else {
        "a member"
    }
}

/// `POST /admin/users/{id}/deactivate`: ends their sessions at once.
pub async fn deactivate(
    State(pool): State<PgPool>,
    State(tenants): State<TenantPool>,
    TenantAdmin(mut member): TenantAdmin,
    Path(raw): Path<String>,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let db = &mut member.db;
    let admins = lock_admins(db).await?;
    let (name, role, active) = lock_user(db, id).await?;
    if !active {
        return Ok(back(Flash::success(format!(
            "{name} is already deactivated."
        ))));
    }
    if role == "admin" && admins == [id] {
        return Ok(back(Flash::error(format!(
            "{name} is the last active admin and cannot be deactivated."
        ))));
    }
    db.query("UPDATE users SET active = false WHERE id = $1")
        .bind(id)
        .execute(db.conn())
        .await?;
    end_sessions_of(db.conn(), id, None).await?;
    let tenant = member.db.tenant().clone();
    member.db.commit().await?;
    refresh_user_count(&pool, &tenants, tenant).await?;
    let flash = Flash::success(format!("{name} was deactivated and signed out."));
    if id == member.user.id {
        return Ok((flash, Redirect::to("/login")).into_response());
    }
    Ok(back(flash))
}

/// `POST /admin/users/{id}/reactivate`.
pub async fn reactivate(
    State(pool): State<PgPool>,
    State(tenants): State<TenantPool>,
    TenantAdmin(mut member): TenantAdmin,
    Path(raw): Path<String>,
    CsrfForm(Empty {}): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    let id = parse_id(&raw)?;
    let db = &mut member.db;
    let (name, _, active) = lock_user(db, id).await?;
    if active {
        return Ok(back(Flash::success(format!("{name} is already active."))));
    }
    db.query("UPDATE users SET active = true WHERE id = $1")
        .bind(id)
        .execute(db.conn())
        .await?;
    let tenant = member.db.tenant().clone();
    member.db.commit().await?;
    refresh_user_count(&pool, &tenants, tenant).await?;
    Ok(back(Flash::success(format!("{name} can sign in again."))))
}
