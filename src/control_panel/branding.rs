//! The branding editor: name, colours, theme and logo of a tenant, with the
//! form's values and the colour fields' message (also used by the create
//! form). The form is `multipart/form-data` for the logo, so its CSRF token
//! is checked here.

use axum::extract::multipart::MultipartError;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::tenants::detail::{self, DetailForms};
use super::tenants::{back_to, parse_slug};
use super::{SuperAdmin, audit};
use crate::branding::{Color, Theme, clean_display_name};
use crate::state::AppState;
use crate::tenancy::PublicDb;
use crate::tenancy::db;
use crate::web::{AppError, FieldErrors, Flash, Page};

/// A colour field's message.
pub const COLOR_HINT: &str = "choose a colour written as #rrggbb, such as #4f46e5";

/// The values of the branding form as typed (or as stored).
#[derive(Clone, Debug, Default)]
pub struct BrandingValues {
    pub display_name: String,
    pub primary_color: String,
    pub accent_color: String,
    pub theme: String,
}

/// The largest logo accepted.
pub const MAX_LOGO_BYTES: usize = 512 * 1024;

/// What an uploaded logo is, judged by its bytes (never by its name).
pub fn sniff_image(bytes: &[u8]) -> Result<&'static str, &'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok("image/png");
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return Ok("image/jpeg");
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok("image/webp");
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    if head.contains("<svg") || head.trim_start().starts_with("<?xml") {
        return Err(
            "SVG logos are refused because they can carry script; upload a PNG, JPEG or WebP",
        );
    }
    Err("the logo must be a PNG, JPEG or WebP image")
}

/// The form's parts, as sent.
#[derive(Default)]
struct Upload {
    csrf_tokens: Vec<String>,
    display_name: String,
    primary_color: String,
    accent_color: String,
    theme: String,
    logo: Vec<u8>,
    remove_logo: bool,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, MultipartError> {
    let mut upload = Upload::default();
    while let Some(field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "logo" => upload.logo = field.bytes().await?.to_vec(),
            "csrf_token" => upload.csrf_tokens.push(field.text().await?),
            "display_name" => upload.display_name = field.text().await?,
            "primary_color" => upload.primary_color = field.text().await?,
            "accent_color" => upload.accent_color = field.text().await?,
            "theme" => upload.theme = field.text().await?,
            "remove_logo" => upload.remove_logo = !field.text().await?.is_empty(),
            _ => {}
        }
    }
    Ok(upload)
}

enum LogoChange {
    Keep,
    Remove,
    Set {
        bytes: Vec<u8>,
        content_type: &'static str,
        sha256: String,
    },
}

impl LogoChange {
    fn as_str(&self) -> &'static str {
        match self {
            LogoChange::Keep => "keep",
            LogoChange::Remove => "remove",
            LogoChange::Set { .. } => "set",
        }
    }
}

/// `POST /tenants/{slug}/branding`: validates everything, then updates the
/// catalogue row and bumps `branding_version` (the `/theme.css` ETag); the
/// registry hears of it by NOTIFY. 303 back, or the page again with 422.
pub async fn update(
    admin: SuperAdmin,
    page: Page,
    headers: HeaderMap,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    multipart: Multipart,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    let upload = match read_upload(multipart).await {
        Ok(upload) => upload,
        Err(e) => return Ok(e.status().into_response()),
    };
    let csrf_ok = matches!(upload.csrf_tokens.as_slice(), [token] if page.csrf.matches(token));
    if !csrf_ok {
        return Ok(StatusCode::FORBIDDEN.into_response());
    }

    let mut errors = FieldErrors::default();
    let name = errors.check("display_name", clean_display_name(&upload.display_name));
    let primary = errors.check(
        "primary_color",
        Color::parse(&upload.primary_color).ok_or(COLOR_HINT),
    );
    let accent = errors.check(
        "accent_color",
        Color::parse(&upload.accent_color).ok_or(COLOR_HINT),
    );
    let theme = errors.check(
        "theme",
        Theme::parse(&upload.theme).ok_or("choose light or dark"),
    );
    let logo = if !upload.logo.is_empty() {
        if upload.logo.len() > MAX_LOGO_BYTES {
            errors.add(
                "logo",
                format!(
                    "the logo is {} KiB; the largest accepted is 512 KiB",
                    upload.logo.len().div_ceil(1024)
                ),
            );
            None
        } else {
            errors.check("logo", sniff_image(&upload.logo)).map(|ct| {
                let sha256 = crate::web::hex(&Sha256::digest(&upload.logo));
                LogoChange::Set {
                    bytes: upload.logo,
                    content_type: ct,
                    sha256,
                }
            })
        }
    } else if upload.remove_logo {
        Some(LogoChange::Remove)
    } else {
        Some(LogoChange::Keep)
    };

    let (Some(name), Some(primary), Some(accent), Some(theme), Some(logo)) =
        (name, primary, accent, theme, logo)
    else {
        let forms = DetailForms {
            branding: Some(BrandingValues {
                display_name: upload.display_name.chars().take(200).collect(),
                primary_color: upload.primary_color.chars().take(32).collect(),
                accent_color: upload.accent_color.chars().take(32).collect(),
                theme: upload.theme.chars().take(16).collect(),
            }),
            errors,
            ..DetailForms::default()
        };
        return detail::invalid(&state, &admin, page, &headers, &slug, forms).await;
    };

    let mut db = PublicDb::begin(&state.pool).await?;
    let current: Option<(i64, String, String, String, String, bool)> = db::query_as(
        "SELECT id, display_name, primary_color, accent_color, theme, logo IS NOT NULL
           FROM public.tenants WHERE slug = $1 FOR UPDATE",
    )
    .bind(slug.as_str())
    .fetch_optional(db.conn())
    .await?;
    let Some((id, old_name, old_primary, old_accent, old_theme, had_logo)) = current else {
        return Err(AppError::NotFound);
    };

    let mut changes = Vec::new();
    if old_name != name {
        changes.push(format!("name \"{old_name}\" → \"{name}\""));
    }
    if old_primary != primary.to_string() {
        changes.push(format!("primary {old_primary} → {primary}"));
    }
    if old_accent != accent.to_string() {
        changes.push(format!("accent {old_accent} → {accent}"));
    }
    if old_theme != theme.as_str() {
        changes.push(format!("theme {old_theme} → {}", theme.as_str()));
    }
    match &logo {
        LogoChange::Set {
            bytes,
            content_type,
            ..
        } => changes.push(format!(
            "logo {} ({content_type}, {} bytes)",
            if had_logo { "replaced" } else { "uploaded" },
            bytes.len()
        )),
        LogoChange::Remove if had_logo => changes.push("logo removed".into()),
        _ => {}
    }
    if changes.is_empty() {
        return Ok((Flash::success("Nothing changed."), back_to(&slug)).into_response());
    }

    let (bytes, content_type, sha256) = match &logo {
        LogoChange::Set {
            bytes,
            content_type,
            sha256,
        } => (
            Some(bytes.as_slice()),
            Some(*content_type),
            Some(sha256.as_str()),
        ),
        _ => (None, None, None),
    };
    db::query(
        "UPDATE public.tenants
            SET display_name = $2, primary_color = $3, accent_color = $4, theme = $5,
                logo = CASE $6 WHEN 'set' THEN $7 WHEN 'remove' THEN NULL ELSE logo END,
                logo_content_type = CASE $6 WHEN 'set' THEN $8 WHEN 'remove' THEN NULL
                                    ELSE logo_content_type END,
                logo_sha256 = CASE $6 WHEN 'set' THEN $9 WHEN 'remove' THEN NULL
                              ELSE logo_sha256 END,
                branding_version = branding_version + 1,
                updated_at = now()
          WHERE id = $1",
    )
    .bind(id)
    .bind(&name)
    .bind(primary.to_string())
    .bind(accent.to_string())
    .bind(theme.as_str())
    .bind(logo.as_str())
    .bind(bytes)
    .bind(content_type)
    .bind(sha256)
    .execute(db.conn())
    .await?;
    admin
        .audit(
            db.conn(),
            audit::BRANDING_CHANGE,
            Some(slug.as_str()),
            &changes.join("; "),
        )
        .await?;
    db.commit().await?;
    Ok((
        Flash::success("Branding saved. The tenant's pages show it now."),
        back_to(&slug),
    )
        .into_response())
}

/// `GET /tenants/{slug}/logo`: the stored logo, for the editor's preview (the
/// tenant's own `/brand/logo` is on another origin, which the CSP refuses).
pub async fn logo(
    _admin: SuperAdmin,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let slug = parse_slug(&slug)?;
    let mut tx = db::begin_public(&state.pool).await?;
    let row: Option<(Option<Vec<u8>>, Option<String>)> =
        db::query_as("SELECT logo, logo_content_type FROM public.tenants WHERE slug = $1")
            .bind(slug.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let Some((Some(bytes), Some(content_type))) = row else {
        return Err(AppError::NotFound);
    };
    let content_type = HeaderValue::from_str(&content_type).map_err(anyhow::Error::from)?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=86400"),
            ),
        ],
        bytes,
    )
        .into_response())
}
