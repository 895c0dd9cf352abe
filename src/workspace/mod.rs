//! The tenant app, served on each tenant's domains: sign-in, the task board,
//! users, the account page, and impersonation by the operator's
//! super-admins with its audit page. Every page is branded with the tenant's look.

mod account;
mod auth;
mod board;
mod brand;
mod dates;
mod export;
pub mod impersonation;
mod member;
mod task_form;
mod tasks;
mod users;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;
use crate::tenancy::Site;
use crate::web::AppError;

pub use board::BOARD_SQL;
pub use member::{Member, TenantAdmin, User};

/// A suspended tenant's pages answer 403 (rendered as the branded "workspace
/// suspended" page); its stylesheet and logo stay up so that page is branded.
async fn refuse_if_suspended(site: Site, req: Request, next: Next) -> Response {
    match site {
        Site::Tenant(t) if t.is_suspended() => AppError::Suspended.into_response(),
        _ => next.run(req).await,
    }
}

pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(board::board))
        .route("/columns/{status}", get(board::column))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/tasks", post(tasks::create))
        .route("/tasks/{id}", get(tasks::edit_form).post(tasks::update))
        .route("/tasks/{id}/move", post(tasks::move_task))
        .route(
            "/tasks/{id}/delete",
            get(tasks::delete_form).post(tasks::delete),
        )
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/{id}/role", post(users::change_role))
        .route("/admin/users/{id}/deactivate", post(users::deactivate))
        .route("/admin/users/{id}/reactivate", post(users::reactivate))
        .route("/impersonate", get(impersonation::redeem))
        .route("/impersonation/end", post(impersonation::end))
        .route("/audit", get(impersonation::page))
        .route("/export", post(export::export))
        .route_layer(middleware::from_fn(refuse_if_suspended));
    Router::new()
        .merge(pages)
        .merge(brand::router())
        .with_state(state)
}
