//! A tenant's custom domains. The default `<slug>.<root>` domain stays.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Empty;
use super::tenants::detail::{self, DetailForms};
use super::tenants::{back_to, parse_slug};
use super::{SuperAdmin, audit};
use crate::state::AppState;
use crate::tenancy::PublicDb;
use crate::tenancy::db;
use crate::tenancy::host::validate_domain;
use crate::tenancy::provision::unique_violation;
use crate::web::{AppError, CsrfForm, Flash, Page};

#[derive(Deserialize)]
pub struct DomainForm {
    #[serde(default)]
    domain: String,
}

/// `POST /tenants/{slug}/domains`: a lower-cased, valid host name that no
/// tenant uses yet and that is not the root domain or under it.
pub async fn add(
    admin: SuperAdmin,
    page: Page,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<DomainForm>,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    let typed: String = form.domain.trim().chars().take(300).collect();
    let invalid = |message: String| {
        let mut forms = DetailForms {
            domain: typed.clone(),
            ..DetailForms::default()
        };
        forms.errors.add("domain", message);
        forms
    };
    let domain = match validate_domain(&typed, state.root_domain()) {
        Ok(domain) => domain,
        Err(e) => {
            let forms = invalid(e.to_string());
            return detail::invalid(&state, &admin, page, &headers, &slug, forms).await;
        }
    };

    let mut db = PublicDb::begin(&state.pool).await?;
    let tenant_id: Option<i64> = db::query_scalar("SELECT id FROM public.tenants WHERE slug = $1")
        .bind(slug.as_str())
        .fetch_optional(db.conn())
        .await?;
    let tenant_id = tenant_id.ok_or(AppError::NotFound)?;
    let inserted = db::query(
        "INSERT INTO public.tenant_domains (domain, tenant_id, is_default) VALUES ($1, $2, false)",
    )
    .bind(&domain)
    .bind(tenant_id)
    .execute(db.conn())
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if unique_violation(&e).is_some() => {
            drop(db);
            let forms = invalid(format!("{domain} is already in use"));
            return detail::invalid(&state, &admin, page, &headers, &slug, forms).await;
        }
        Err(e) => return Err(e.into()),
    }
    admin
        .audit(db.conn(), audit::DOMAIN_ADD, Some(slug.as_str()), &domain)
        .await?;
    db.commit().await?;
    Ok((
        Flash::success(format!(
            "{domain} now serves {slug}. Point its DNS at this server to use it."
        )),
        back_to(&slug),
    )
        .into_response())
}

/// `POST /tenants/{slug}/domains/{domain}/delete`.
pub async fn remove(
    admin: SuperAdmin,
    page: Page,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path((slug, domain)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    let domain = domain.trim().to_ascii_lowercase();
    let mut db = PublicDb::begin(&state.pool).await?;
    let is_default: Option<bool> = db::query_scalar(
        "SELECT d.is_default FROM public.tenant_domains d
           JOIN public.tenants t ON t.id = d.tenant_id
          WHERE t.slug = $1 AND d.domain = $2",
    )
    .bind(slug.as_str())
    .bind(&domain)
    .fetch_optional(db.conn())
    .await?;
    match is_default {
        None => Err(AppError::NotFound),
        Some(true) => {
            drop(db);
            let mut forms = DetailForms::default();
            forms.errors.add(
                "domain",
                format!("{domain} is the default domain of {slug} and cannot be removed"),
            );
            detail::invalid(&state, &admin, page, &headers, &slug, forms).await
        }
        Some(false) => {
            db::query("DELETE FROM public.tenant_domains WHERE domain = $1 AND NOT is_default")
                .bind(&domain)
                .execute(db.conn())
                .await?;
            admin
                .audit(
                    db.conn(),
                    audit::DOMAIN_REMOVE,
                    Some(slug.as_str()),
                    &domain,
                )
                .await?;
            db.commit().await?;
            Ok((
                Flash::success(format!("{domain} no longer serves {slug}.")),
                back_to(&slug),
            )
                .into_response())
        }
    }
}
