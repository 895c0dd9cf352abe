//! The `tenantry` command line.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::branding::{Color, clean_display_name};
use crate::config::{DbConfig, ServeConfig, SiteConfig};
use crate::database::Database;
use crate::database::TENANT_MIGRATIONS;
use crate::onboarding::NewTenant;
use crate::onboarding::{self, FirstAdmin};
use crate::password;
use crate::portability;
use crate::tenancy::migrate::{self, Outcome};
use crate::tenancy::nodes;
use crate::tenancy::provision::{self, unique_violation};
use crate::tenancy::schema::Slug;

#[derive(Parser, Debug)]
#[command(
    name = "tenantry",
    version,
    about = "A multitenant web application: one schema per tenant"
)]
pub struct Cli {
    #[command(flatten)]
    pub db: DbConfig,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the web server (the default).
    Serve(ServeConfig),
    /// Apply public migrations, then tenant migrations to every tenant schema.
    Migrate {
        /// Tenants migrated at once (each uses one connection).
        #[arg(long, default_value_t = 4)]
        jobs: usize,
        /// Visit every tenant's ledger, not only those whose recorded version is behind.
        #[arg(long)]
        all: bool,
    },
    /// Create, list and delete tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage control-panel super-admins.
    #[command(subcommand)]
    Superadmin(SuperadminCommand),
    /// One line per database node: host:port, tenants, bytes.
    Nodes,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum TenantCommand {
    /// Provision a tenant atomically: row, domain, schema, migrations, first admin.
    Create {
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Email of the first admin.
        #[arg(long)]
        admin_email: String,
        /// Display name of the first admin (default: the email's local part).
        #[arg(long)]
        admin_name: Option<String>,
        /// Read the first admin's password from one line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long, default_value = "#4f46e5")]
        primary_color: String,
        #[arg(long, default_value = "#0ea5e9")]
        accent_color: String,
        #[command(flatten)]
        site: SiteConfig,
        /// Where the server listens: the printed link uses its port (unless
        /// a public URL is set).
        #[arg(long, env = "TENANTRY_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
    },
    /// One line per tenant: slug, status, domains.
    List,
    /// Drop a tenant with its schema and domains.
    Delete {
        slug: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Write the tenant's archive (.tar.gz: its data, migration version,
    /// catalogue row, branding, domains; no sessions) to standard output.
    Export { slug: String },
    /// Create tenant SLUG from an archive read on standard input, in one
    /// transaction (data from an older version is migrated forward).
    Import {
        slug: String,
        #[command(flatten)]
        site: SiteConfig,
    },
    /// Move a tenant's schema to another node (Citus only); it keeps serving.
    Move {
        slug: String,
        /// The target node, as `tenantry nodes` prints it.
        #[arg(long, value_name = "HOST:PORT")]
        node: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SuperadminCommand {
    /// Create a super-admin.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from one line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

pub async fn run(cli: Cli) -> Result<()> {
    let command = cli
        .command
        .unwrap_or_else(|| Command::Serve(ServeConfig::parse_from_env()));
    match command {
        Command::Serve(config) => crate::server::run(&cli.db, &config).await,
        Command::Migrate { jobs, all } => migrate(&cli.db, jobs, all).await,
        Command::Tenant(cmd) => tenant(&cli.db, cmd).await,
        Command::Superadmin(SuperadminCommand::Create { email, .. }) => {
            superadmin_create(&cli.db, &email).await
        }
        Command::Nodes => list_nodes(&cli.db).await,
    }
}

impl ServeConfig {
    /// The serve settings from the environment alone (for a bare `tenantry`).
    fn parse_from_env() -> ServeConfig {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeConfig,
        }
        Only::parse_from(["tenantry"]).serve
    }
}

fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if let Err(e) = password::check_new(&password) {
        bail!("{e}");
    }
    Ok(password)
}

async fn migrate(db: &DbConfig, jobs: usize, all: bool) -> Result<()> {
    let jobs = jobs.clamp(1, 64);
    let db = Database::open_direct(db, jobs as u32).await?;
    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} tenants {msg}")
            .expect("valid template"),
    );
    let interactive = !progress.is_hidden();
    let started = std::time::Instant::now();
    let summary = migrate::rollout(
        &db.pool,
        &TENANT_MIGRATIONS,
        jobs,
        all,
        |schema, outcome| {
            if progress.length() == Some(0) {
                progress.set_length(u64::MAX);
            }
            progress.inc(1);
            let line = match outcome {
                Outcome::Migrated { applied, took } => {
                    format!("{schema}: applied {applied} migration(s) in {took:.1?}")
                }
                Outcome::Current => format!("{schema}: up to date"),
                Outcome::Failed(why) => format!("{schema}: FAILED: {why}"),
            };
            if interactive {
                if matches!(outcome, Outcome::Failed(_)) {
                    progress.println(line);
                }
            } else {
                println!("{line}");
            }
        },
    )
    .await?;
    progress.finish_and_clear();
    println!(
        "tenant migrations: {} migrated, {} up to date, {} failed, {} already current (skipped) in {:.1?}",
        summary.migrated,
        summary.current,
        summary.failed.len(),
        summary.skipped,
        started.elapsed()
    );
    if !summary.failed.is_empty() {
        bail!(
            "{} tenant(s) failed to migrate: {}",
            summary.failed.len(),
            summary
                .failed
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

async fn tenant(db: &DbConfig, cmd: TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Create {
            slug,
            name,
            admin_email,
            admin_name,
            primary_color,
            accent_color,
            site,
            bind,
            ..
        } => {
            site.check().map_err(anyhow::Error::msg)?;
            let slug = Slug::parse(&slug).map_err(|e| anyhow::anyhow!("invalid slug: {e}"))?;
            let display_name =
                clean_display_name(&name).map_err(|e| anyhow::anyhow!("invalid --name: {e}"))?;
            let email = password::clean_email(&admin_email)
                .map_err(|e| anyhow::anyhow!("invalid --admin-email: {e}"))?;
            let admin_name = match admin_name {
                Some(n) => clean_display_name(&n)
                    .map_err(|e| anyhow::anyhow!("invalid --admin-name: {e}"))?,
                None => email.split('@').next().unwrap_or("admin").to_owned(),
            };
            let primary =
                Color::parse(&primary_color).context("invalid --primary-color: use #rrggbb")?;
            let accent =
                Color::parse(&accent_color).context("invalid --accent-color: use #rrggbb")?;
            let password = read_password()?;
            let db = Database::open_direct(db, 2).await?;
            let password_hash = password::hash(password).await?;
            let new = NewTenant {
                slug,
                display_name,
                primary_color: primary,
                accent_color: accent,
            };
            let admin = FirstAdmin {
                email,
                display_name: admin_name,
                password_hash,
            };
            let started = std::time::Instant::now();
            let p = onboarding::create_tenant(&db.pool, &site.root_domain(), &new, &admin).await?;
            let domain = p.default_domain.clone();
            let schema = p.schema.clone();
            p.commit().await?;
            println!(
                "created tenant {} (schema {schema}) in {:.1?}: {}",
                new.slug,
                started.elapsed(),
                site.site_url(&domain, bind)
            );
            Ok(())
        }
        TenantCommand::List => {
            let db = Database::open_direct(db, 1).await?;
            let rows: Vec<(String, String, Vec<String>)> = sqlx::query_as(
                "SELECT t.slug, t.status,
                        COALESCE(array_agg(d.domain ORDER BY d.is_default DESC, d.domain)
                                 FILTER (WHERE d.domain IS NOT NULL), '{}')
                   FROM public.tenants t
                   LEFT JOIN public.tenant_domains d ON d.tenant_id = t.id
                  GROUP BY t.id ORDER BY t.slug",
            )
            .fetch_all(&db.pool)
            .await?;
            for (slug, status, domains) in rows {
                println!("{slug}\t{status}\t{}", domains.join(","));
            }
            Ok(())
        }
        TenantCommand::Delete { slug, yes } => {
            if !yes {
                bail!("deleting a tenant drops all its data; add --yes to confirm");
            }
            let db = Database::open_direct(db, 1).await?;
            if !provision::delete(&db.pool, &slug).await? {
                bail!("no tenant with the slug {slug:?}");
            }
            println!("deleted tenant {slug}");
            Ok(())
        }
        TenantCommand::Export { slug } => {
            let slug = Slug::parse(&slug).map_err(|e| anyhow::anyhow!("invalid slug: {e}"))?;
            if std::io::stdout().is_terminal() {
                bail!("the archive is binary: redirect standard output to a file");
            }
            let db = Database::open_direct(db, 1).await?;
            let Some(export) = portability::export_tenant(&db.pool, &slug).await? else {
                bail!("no tenant with the slug {slug:?}");
            };
            let mut out = std::io::stdout().lock();
            out.write_all(&export.bytes)
                .and_then(|()| out.flush())
                .context("cannot write the archive to standard output")?;
            eprintln!("exported tenant {slug}: {}", export.summary());
            Ok(())
        }
        TenantCommand::Import { slug, site } => {
            site.check().map_err(anyhow::Error::msg)?;
            let slug = Slug::parse(&slug).map_err(|e| anyhow::anyhow!("invalid slug: {e}"))?;
            if std::io::stdin().is_terminal() {
                bail!("pipe the archive into standard input (tenantry tenant import SLUG < FILE)");
            }
            let mut bytes = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read the archive from standard input")?;
            let db = Database::open_direct(db, 1).await?;
            let started = std::time::Instant::now();
            let done = portability::import_tenant(&db.pool, &site.root_domain(), &slug, &bytes)
                .await
                .map_err(|e| anyhow::anyhow!("cannot import {slug}: {e}"))?;
            println!(
                "imported tenant {slug} (schema {}) in {:.1?}: {} tables, {} rows, tenant migration version {} -> {}; domains {}",
                done.schema,
                started.elapsed(),
                done.tables,
                done.rows,
                done.from_version,
                done.version,
                std::iter::once(done.default_domain.as_str())
                    .chain(done.domains.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            for (domain, why) in &done.dropped {
                println!("left out domain {domain}: {why}");
            }
            Ok(())
        }
        TenantCommand::Move { slug, node } => {
            let (host, port) = node
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .with_context(|| format!("invalid --node {node:?}: use HOST:PORT"))?;
            let db = Database::open_direct(db, 1).await?;
            if !nodes::is_citus(&db.pool).await? {
                return Err(nodes::NodesError::SingleNode.into());
            }
            let schema: Option<String> =
                sqlx::query_scalar("SELECT schema_name FROM public.tenants WHERE slug = $1")
                    .bind(&slug)
                    .fetch_optional(&db.pool)
                    .await?;
            let Some(schema) = schema else {
                bail!("no tenant with the slug {slug:?}");
            };
            let started = std::time::Instant::now();
            match nodes::move_tenant(&db.pool, &schema, host, port).await? {
                nodes::Moved::Moved => println!(
                    "moved tenant {slug} (schema {schema}) to {host}:{port} in {:.1?}",
                    started.elapsed()
                ),
                nodes::Moved::AlreadyThere => {
                    println!("tenant {slug} (schema {schema}) is already on {host}:{port}")
                }
            }
            Ok(())
        }
    }
}

async fn list_nodes(db: &DbConfig) -> Result<()> {
    let db = Database::open_direct(db, 1).await?;
    for node in nodes::list_nodes(&db.pool).await? {
        println!(
            "{}:{}\t{}\t{}",
            node.host, node.port, node.tenants, node.bytes
        );
    }
    Ok(())
}

async fn superadmin_create(db: &DbConfig, email: &str) -> Result<()> {
    let email =
        password::clean_email(email).map_err(|e| anyhow::anyhow!("invalid --email: {e}"))?;
    let password = read_password()?;
    let db = Database::open_direct(db, 1).await?;
    let hash = password::hash(password).await?;
    let result =
        sqlx::query("INSERT INTO public.super_admins (email, password_hash) VALUES ($1, $2)")
            .bind(&email)
            .bind(&hash)
            .execute(&db.pool)
            .await;
    match result {
        Ok(_) => {
            println!("created super-admin {email}");
            Ok(())
        }
        Err(e) if unique_violation(&e).is_some() => {
            bail!("a super-admin with the email {email} already exists")
        }
        Err(e) => Err(e.into()),
    }
}
