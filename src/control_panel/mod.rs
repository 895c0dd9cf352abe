//! The control panel, served on the root domain.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::state::AppState;
use crate::tenancy::Site;
use crate::web::Chrome;

#[derive(Template, WebTemplate)]
#[template(path = "control_panel/home.html")]
struct Home {
    chrome: Chrome,
    tenant_count: usize,
}

async fn home(State(state): State<AppState>) -> Home {
    Home {
        chrome: Chrome::for_site(&Site::ControlPanel),
        tenant_count: state.registry.len(),
    }
}

pub fn router(state: AppState) -> Router {
    Router::new().route("/", get(home)).with_state(state)
}
