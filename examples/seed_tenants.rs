//! Creates many tenants quickly, for benchmarks: `seed-00000`, `seed-00001`, …
//! (existing ones are skipped), each with admin `admin@<slug>.test`.
//!
//!     DATABASE_URL=… cargo run --release --example seed_tenants -- COUNT [JOBS] [PASSWORD]

use futures_util::StreamExt;
use tenantry::branding::Color;
use tenantry::onboarding::NewTenant;
use tenantry::onboarding::{FirstAdmin, create_tenant};
use tenantry::tenancy::Slug;
use tenantry::tenancy::provision::ProvisionError;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let jobs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);
    let password = args.next().unwrap_or_else(|| "bench-password".into());
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("set DATABASE_URL"))?;
    let pool = tenantry::database::pool(&url, jobs as u32)?;
    tenantry::database::migrate_public(&pool).await?;
    let hash = tenantry::password::hash(password).await?;
    let started = std::time::Instant::now();
    let results: Vec<anyhow::Result<bool>> = futures_util::stream::iter(0..count)
        .map(|i| {
            let (pool, hash) = (pool.clone(), hash.clone());
            async move {
                let slug = Slug::parse(&format!("seed-{i:05}"))?;
                let new = NewTenant {
                    display_name: format!("Seed {i}"),
                    primary_color: Color::parse("#4f46e5").unwrap(),
                    accent_color: Color::parse("#0ea5e9").unwrap(),
                    slug: slug.clone(),
                };
                let admin = FirstAdmin {
                    email: format!("admin@{slug}.test"),
                    display_name: "Admin".into(),
                    password_hash: hash,
                };
                match create_tenant(&pool, "localhost", &new, &admin).await {
                    Ok(p) => {
                        p.commit().await?;
                        Ok(true)
                    }
                    Err(ProvisionError::SlugTaken(_)) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        })
        .buffer_unordered(jobs)
        .collect()
        .await;
    let mut created = 0;
    for r in results {
        created += usize::from(r?);
    }
    println!(
        "created {created} tenants ({} existed) in {:.1?}",
        count - created,
        started.elapsed()
    );
    Ok(())
}
