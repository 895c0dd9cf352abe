//! The tenant app, served on each tenant's domains.

mod brand;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;
use crate::tenancy::Site;
use crate::web::Chrome;

#[derive(Template, WebTemplate)]
#[template(path = "workspace/home.html")]
struct Home {
    chrome: Chrome,
}

async fn home(site: Site) -> Home {
    Home {
        chrome: Chrome::for_site(&site),
    }
}

/// A suspended tenant's pages answer 403 (rendered as the branded "workspace
/// suspended" page); its stylesheet and logo stay up so that page is branded.
async fn refuse_if_suspended(site: Site, req: Request, next: Next) -> Response {
    match site {
        Site::Tenant(t) if t.is_suspended() => StatusCode::FORBIDDEN.into_response(),
        _ => next.run(req).await,
    }
}

pub fn router(state: AppState) -> Router {
    let pages = Router::new()
        .route("/", get(home))
        .route_layer(middleware::from_fn(refuse_if_suspended));
    Router::new()
        .merge(pages)
        .merge(brand::router())
        .with_state(state)
}
