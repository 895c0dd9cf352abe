//! A tenant's data out and in, as the application sees it: the core's
//! schema archive (`tenancy::export`) plus the tenant's catalogue row,
//! branding (with the logo) and domains, in `tenant.json` and
//! `branding/logo`. Used by the CLI (`tenant export`, `tenant import`), the
//! control panel's download and the workspace admin's own download.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::branding::{Color, Theme, clean_display_name};
use crate::control_panel::branding::sniff_image;
use crate::database::TENANT_MIGRATIONS;
use crate::tenancy::db;
use crate::tenancy::export::{self, Archive, ArchiveError, RestoreError};
use crate::tenancy::host::validate_domain;
use crate::tenancy::provision::{self, ProvisionError};
use crate::tenancy::schema::{SchemaName, Slug};

/// The workspace's tables that are never carried: its sessions table from
/// before tenant migration 2 (the core's own sessions table is never
/// carried either). `operator_access`, the tenant's record of operator
/// visits, is history and travels; no session travels with it.
pub const NOT_CARRIED: &[&str] = &["sessions"];

const TENANT_FILE: &str = "tenant.json";
const LOGO_FILE: &str = "branding/logo";

/// The catalogue row, as `tenant.json` holds it.
#[derive(Debug, Serialize, Deserialize)]
struct TenantFile {
    slug: String,
    display_name: String,
    status: String,
    primary_color: String,
    accent_color: String,
    theme: String,
    created_at: String,
    /// The logo's type; its bytes are `branding/logo`.
    logo_content_type: Option<String>,
    domains: Vec<DomainEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DomainEntry {
    domain: String,
    is_default: bool,
}

/// An export, ready to be written or sent.
pub struct Export {
    pub bytes: Vec<u8>,
    /// `<slug>-<YYYY-MM-DD>.tar.gz`.
    pub file_name: String,
    pub tables: usize,
    pub rows: u64,
}

impl Export {
    /// For the audit log and the CLI.
    pub fn summary(&self) -> String {
        format!(
            "{} ({} tables, {} rows, {} bytes)",
            self.file_name,
            self.tables,
            self.rows,
            self.bytes.len()
        )
    }
}

impl Export {
    /// The archive as a download: `Content-Disposition: attachment`, never
    /// cached.
    pub fn into_download(self) -> axum::response::Response {
        use axum::http::header;
        use axum::response::IntoResponse;
        (
            [
                (header::CONTENT_TYPE, "application/gzip".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", self.file_name),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            self.bytes,
        )
            .into_response()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    schema_name: String,
    display_name: String,
    status: String,
    primary_color: String,
    accent_color: String,
    theme: String,
    logo: Option<Vec<u8>>,
    logo_content_type: Option<String>,
    created: String,
    now: i64,
}

/// Exports the tenant `slug` (none if there is no such tenant, or it is
/// being deleted): its schema's data and its catalogue row, read in one
/// `REPEATABLE READ` transaction, so they agree.
pub async fn export_tenant(pool: &PgPool, slug: &Slug) -> anyhow::Result<Option<Export>> {
    let mut tx = pool
        .begin_with(sqlx::AssertSqlSafe(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
        ))
        .await?;
    let row: Option<Row> = db::query_as(
        "SELECT schema_name, display_name, status, primary_color, accent_color, theme,
                logo, logo_content_type,
                to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS created,
                extract(epoch FROM now())::bigint AS now
           FROM public.tenants WHERE slug = $1 AND status <> 'deleting'",
    )
    .bind(slug.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let Some(schema) = SchemaName::from_stored(&row.schema_name) else {
        anyhow::bail!("the stored schema name of {slug} is not valid");
    };
    let domains: Vec<(String, bool)> = db::query_as(
        "SELECT d.domain, d.is_default FROM public.tenant_domains d
           JOIN public.tenants t ON t.id = d.tenant_id
          WHERE t.slug = $1 ORDER BY d.is_default DESC, d.domain",
    )
    .bind(slug.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let mut archive = export::export(
        &mut tx,
        &schema,
        slug.as_str(),
        NOT_CARRIED,
        env!("CARGO_PKG_VERSION"),
    )
    .await?;
    tx.commit().await?;

    let file = TenantFile {
        slug: slug.to_string(),
        display_name: row.display_name,
        status: row.status,
        primary_color: row.primary_color,
        accent_color: row.accent_color,
        theme: row.theme,
        created_at: row.created,
        logo_content_type: row.logo_content_type,
        domains: domains
            .into_iter()
            .map(|(domain, is_default)| DomainEntry { domain, is_default })
            .collect(),
    };
    archive.add_file(TENANT_FILE, serde_json::to_vec_pretty(&file)?);
    if let Some(logo) = row.logo {
        archive.add_file(LOGO_FILE, logo);
    }
    let file_name = format!(
        "{slug}-{}.tar.gz",
        archive.manifest.exported_at.get(..10).unwrap_or("export")
    );
    let tables = archive.manifest.tables.len();
    let rows = archive.manifest.tables.iter().map(|t| t.rows).sum();
    let mtime = u64::try_from(row.now).unwrap_or(0);
    // Compressing is CPU work: off the async workers.
    let bytes = tokio::task::spawn_blocking(move || archive.to_tar_gz(mtime)).await??;
    Ok(Some(Export {
        bytes,
        file_name,
        tables,
        rows,
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<RestoreError> for ImportError {
    fn from(e: RestoreError) -> Self {
        match e {
            RestoreError::Archive(e) => ImportError::Archive(e),
            RestoreError::Provision(ProvisionError::Database(e)) | RestoreError::Database(e) => {
                ImportError::Database(e)
            }
            e => ImportError::Refused(e.to_string()),
        }
    }
}

/// What an import made.
#[derive(Debug)]
pub struct Imported {
    pub schema: String,
    pub default_domain: String,
    /// The custom domains carried over.
    pub domains: Vec<String>,
    /// Custom domains left out, with the reason (another tenant has one,
    /// or it is not valid here).
    pub dropped: Vec<(String, String)>,
    pub tables: usize,
    pub rows: u64,
    /// The tenant migration version the archive was taken at, and the one
    /// the new tenant is at.
    pub from_version: i64,
    pub version: i64,
}

fn corrupt(what: impl std::fmt::Display) -> ImportError {
    ImportError::Archive(ArchiveError::Corrupt(what.to_string()))
}

/// Creates the tenant `slug` from the archive `bytes`, in one transaction:
/// as provisioning does, with the archive's data, branding, logo and
/// custom domains (those another tenant has are left out and reported).
/// The new tenant is active whatever the old one's status was.
pub async fn import_tenant(
    pool: &PgPool,
    root_domain: &str,
    slug: &Slug,
    bytes: &[u8],
) -> Result<Imported, ImportError> {
    let archive = Archive::from_tar_gz(bytes)?;
    export::check_versions(&archive, &TENANT_MIGRATIONS)?;
    let file: TenantFile = serde_json::from_slice(
        archive
            .file(TENANT_FILE)
            .ok_or_else(|| corrupt(format!("no {TENANT_FILE}")))?,
    )
    .map_err(|e| corrupt(format!("{TENANT_FILE}: {e}")))?;
    let display_name = clean_display_name(&file.display_name)
        .map_err(|e| corrupt(format!("display name: {e}")))?;
    let color = |c: &str| {
        Color::parse(c)
            .map(|c| c.to_string())
            .ok_or_else(|| corrupt(format!("colour {c:?} is not #rrggbb")))
    };
    let theme = Theme::parse(&file.theme).ok_or_else(|| corrupt("unknown theme"))?;
    let logo = match (archive.file(LOGO_FILE), &file.logo_content_type) {
        (Some(logo), Some(_)) => {
            let content_type = sniff_image(logo).map_err(|e| corrupt(format!("logo: {e}")))?;
            Some((logo.to_vec(), content_type))
        }
        (None, None) => None,
        _ => return Err(corrupt("the logo and its type do not match")),
    };
    let new = provision::NewTenant {
        slug: slug.clone(),
        profile: vec![
            ("display_name", display_name),
            ("primary_color", color(&file.primary_color)?),
            ("accent_color", color(&file.accent_color)?),
            ("theme", theme.as_str().to_owned()),
        ],
    };

    let mut p = export::restore(
        pool,
        &new,
        root_domain,
        &TENANT_MIGRATIONS,
        &archive,
        NOT_CARRIED,
    )
    .await?;
    let users: i64 = db::query_scalar("SELECT count(*) FROM users WHERE active")
        .fetch_one(p.conn())
        .await?;
    db::query("UPDATE public.tenants SET user_count = $1 WHERE id = $2")
        .bind(i32::try_from(users).unwrap_or(i32::MAX))
        .bind(p.tenant_id)
        .execute(p.conn())
        .await?;
    if let Some((logo, content_type)) = logo {
        let sha256 = crate::web::hex(&Sha256::digest(&logo));
        db::query(
            "UPDATE public.tenants SET logo = $1, logo_content_type = $2, logo_sha256 = $3
              WHERE id = $4",
        )
        .bind(logo)
        .bind(content_type)
        .bind(sha256)
        .bind(p.tenant_id)
        .execute(p.conn())
        .await?;
    }
    let (mut domains, mut dropped) = (Vec::new(), Vec::new());
    for entry in file.domains.iter().filter(|d| !d.is_default) {
        let domain = match validate_domain(&entry.domain, root_domain) {
            Ok(domain) => domain,
            Err(e) => {
                dropped.push((entry.domain.clone(), e.to_string()));
                continue;
            }
        };
        let added: Option<String> = db::query_scalar(
            "INSERT INTO public.tenant_domains (domain, tenant_id) VALUES ($1, $2)
             ON CONFLICT (domain) DO NOTHING RETURNING domain",
        )
        .bind(&domain)
        .bind(p.tenant_id)
        .fetch_optional(p.conn())
        .await?;
        match added {
            Some(domain) => domains.push(domain),
            None => dropped.push((domain, "another tenant has it".to_owned())),
        }
    }
    let imported = Imported {
        schema: p.schema.to_string(),
        default_domain: p.default_domain.clone(),
        domains,
        dropped,
        tables: archive.manifest.tables.len(),
        rows: archive.manifest.tables.iter().map(|t| t.rows).sum(),
        from_version: archive.manifest.schema_version,
        version: crate::tenancy::migrate::latest_version(&TENANT_MIGRATIONS),
    };
    p.commit().await?;
    Ok(imported)
}
