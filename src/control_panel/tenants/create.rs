//! Creating a tenant: the form (`GET /tenants/new`) and provisioning it with
//! its first admin (`POST /tenants`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::branding::{Color, clean_display_name};
use crate::control_panel::audit;
use crate::control_panel::branding::COLOR_HINT;
use crate::control_panel::preview::Preview;
use crate::control_panel::{PanelNav, SuperAdmin};
use crate::onboarding::NewTenant;
use crate::onboarding::{self, FirstAdmin};
use crate::password;
use crate::state::AppState;
use crate::tenancy::Slug;
use crate::tenancy::db;
use crate::tenancy::provision::{self, ProvisionError};
use crate::web::{AppError, Chrome, CsrfForm, FieldErrors, Flash, Page};

#[derive(Deserialize, Default, Clone, Debug)]
pub struct NewForm {
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub admin_email: String,
    #[serde(default)]
    pub admin_password: String,
    #[serde(default)]
    pub primary_color: String,
    #[serde(default)]
    pub accent_color: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "control_panel/new.html")]
pub struct NewPage {
    chrome: Chrome,
    nav: PanelNav,
    form: NewForm,
    errors: FieldErrors,
    root: String,
    preview: Preview,
}

/// `GET /tenants/new`.
pub async fn new_page(admin: SuperAdmin, page: Page, State(state): State<AppState>) -> NewPage {
    NewPage {
        chrome: page.chrome,
        nav: admin.nav(&page.csrf, "new"),
        form: NewForm {
            primary_color: "#4f46e5".into(),
            accent_color: "#0ea5e9".into(),
            ..NewForm::default()
        },
        errors: FieldErrors::default(),
        root: state.root_domain().to_owned(),
        preview: Preview::new("", "#4f46e5", "light", None),
    }
}

/// `POST /tenants`: provisions the tenant and its first admin in one
/// transaction (with the audit row), then 303 to its page.
pub async fn create(
    admin: SuperAdmin,
    page: Page,
    State(state): State<AppState>,
    CsrfForm(mut form): CsrfForm<NewForm>,
) -> Result<Response, AppError> {
    let root = state.root_domain().to_owned();
    let mut errors = FieldErrors::default();
    form.slug = form.slug.trim().chars().take(64).collect();
    let slug = errors.check("slug", Slug::parse(&form.slug.to_ascii_lowercase()));
    let name = errors.check("display_name", clean_display_name(&form.display_name));
    let email = errors.check("admin_email", password::clean_email(&form.admin_email));
    errors.check("admin_password", password::check_new(&form.admin_password));
    let primary = errors.check(
        "primary_color",
        Color::parse(&form.primary_color).ok_or(COLOR_HINT),
    );
    let accent = errors.check(
        "accent_color",
        Color::parse(&form.accent_color).ok_or(COLOR_HINT),
    );

    // Cheap checks for a taken slug or domain before the slow hash; the
    // provisioning transaction still has the last word.
    if let Some(slug) = &slug {
        let (slug_taken, domain_taken): (bool, bool) = db::query_as(
            "SELECT EXISTS (SELECT 1 FROM public.tenants WHERE slug = $1),
                    EXISTS (SELECT 1 FROM public.tenant_domains WHERE domain = $2)",
        )
        .bind(slug.as_str())
        .bind(provision::default_domain(slug, &root))
        .fetch_one(&mut *db::begin_public(&state.pool).await?)
        .await?;
        if slug_taken {
            errors.add(
                "slug",
                format!("a tenant with the slug \"{slug}\" already exists"),
            );
        } else if domain_taken {
            errors.add(
                "slug",
                format!(
                    "the domain {} is already in use",
                    provision::default_domain(slug, &root)
                ),
            );
        }
    }

    let rerender = |form: NewForm, errors: FieldErrors| {
        let new_page = NewPage {
            chrome: page.chrome.clone(),
            nav: admin.nav(&page.csrf, "new"),
            preview: Preview::new(&form.display_name, &form.primary_color, "light", None),
            form: NewForm {
                admin_password: String::new(),
                ..form
            },
            errors,
            root: root.clone(),
        };
        (StatusCode::UNPROCESSABLE_ENTITY, new_page).into_response()
    };

    let (Some(slug), Some(name), Some(email), Some(primary), Some(accent)) =
        (slug, name, email, primary, accent)
    else {
        return Ok(rerender(form, errors));
    };
    if !errors.is_empty() {
        return Ok(rerender(form, errors));
    }

    let admin_name: String = email
        .split('@')
        .next()
        .unwrap_or("Admin")
        .chars()
        .take(100)
        .collect();
    let first_admin = FirstAdmin {
        email: email.clone(),
        display_name: if admin_name.trim().is_empty() {
            "Admin".into()
        } else {
            admin_name
        },
        password_hash: password::hash(std::mem::take(&mut form.admin_password)).await?,
    };
    let new = NewTenant {
        slug: slug.clone(),
        display_name: name,
        primary_color: primary,
        accent_color: accent,
    };
    let mut p = match onboarding::create_tenant(&state.pool, &root, &new, &first_admin).await {
        Ok(p) => p,
        Err(
            e @ (ProvisionError::SlugTaken(_)
            | ProvisionError::DomainTaken(_)
            | ProvisionError::SchemaExists(_)),
        ) => {
            errors.add("slug", e.to_string());
            return Ok(rerender(form, errors));
        }
        Err(e) => return Err(anyhow::Error::from(e).into()),
    };
    let detail = format!(
        "name \"{}\", first admin {email}, colours {primary} / {accent}",
        new.display_name
    );
    admin
        .audit(p.conn(), audit::TENANT_CREATE, Some(slug.as_str()), &detail)
        .await?;
    let domain = p.default_domain.clone();
    p.commit().await?;
    tracing::info!(tenant = %slug, by = %admin.email, "tenant created in the control panel");
    Ok((
        Flash::success(format!(
            "Tenant {slug} is ready at {domain}. Its first admin, {email}, can sign in there now."
        )),
        Redirect::to(&format!("/tenants/{slug}")),
    )
        .into_response())
}
