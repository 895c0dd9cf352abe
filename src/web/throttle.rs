//! Sign-in throttling that slows guessing without locking anyone out.
//!
//! Failures are counted per (site, account, client address) in
//! `public.sign_in_failures`, so every instance shares the counts and a
//! restart keeps them. The first [`FREE_FAILURES`] failures cost nothing;
//! each one after that makes that pair wait before its next attempt, twice
//! as long each time (2 s, 4 s, 8 s … up to [`MAX_DELAY`]). The delay holds
//! only for that account *from that address*: the account's owner signing
//! in from anywhere else, and everybody else behind the same address (an
//! office), are not slowed at all. A success forgets the pair's failures;
//! a pair with no failure for [`FORGET_AFTER`] starts afresh.
//!
//! An attempt is counted *before* its password is checked (and forgotten
//! again if it was right), so concurrent guesses cannot all slip in ahead
//! of the first failure being recorded.

use std::time::Duration;

use sqlx::PgPool;

use crate::tenancy::db;

/// Failures of one (account, address) pair that cost no wait.
pub const FREE_FAILURES: i32 = 5;
/// The longest a pair is made to wait between attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// A pair with no failure for this long starts again from zero.
pub const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);

/// What a sign-in attempt is counted against.
pub struct Attempt {
    site: String,
    account: String,
    address: String,
}

impl Attempt {
    /// `site` keeps one site's counts apart from another's: `control-panel`,
    /// or [`Attempt::tenant_site`].
    pub fn new(site: &str, address: Option<&str>, account: &str) -> Attempt {
        Attempt {
            site: site.to_owned(),
            account: account.trim().to_lowercase().chars().take(254).collect(),
            address: address.unwrap_or("unknown").to_owned(),
        }
    }

    /// The site key of a tenant's workspace: by id, so a tenant created
    /// again under a deleted one's slug starts clean.
    pub fn tenant_site(tenant_id: i64) -> String {
        format!("tenant-{tenant_id}")
    }
}

/// The wait after the `failures`-th failure of a pair, if any.
pub fn delay_after(failures: i32) -> Option<Duration> {
    if failures < FREE_FAILURES {
        return None;
    }
    let doublings = u32::try_from(failures - FREE_FAILURES + 1).unwrap_or(u32::MAX);
    let secs = 2u64.checked_pow(doublings).unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_DELAY))
}

/// Counts `attempt` as a failure until it proves otherwise. `Err(wait)`:
/// the pair is still waiting out an earlier delay; refuse without checking
/// the password (nothing is counted).
pub async fn admit(pool: &PgPool, attempt: &Attempt) -> Result<Result<(), Duration>, sqlx::Error> {
    let mut tx = db::begin_public(pool).await?;
    // The row lock taken here orders concurrent attempts of one pair, and
    // the WHERE is checked against the latest committed row.
    let counted: Option<i32> = db::query_scalar(
        "INSERT INTO public.sign_in_failures AS f (site, account, address, failures, last_at)
         VALUES ($1, $2, $3, 1, now())
         ON CONFLICT (site, account, address) DO UPDATE
            SET failures = CASE WHEN f.last_at < now() - make_interval(secs => $4)
                                THEN 1 ELSE f.failures + 1 END,
                last_at = now()
          WHERE f.retry_at IS NULL OR f.retry_at <= now()
         RETURNING f.failures",
    )
    .bind(&attempt.site)
    .bind(&attempt.account)
    .bind(&attempt.address)
    .bind(FORGET_AFTER.as_secs_f64())
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match counted {
        Some(failures) => {
            let delay = delay_after(failures);
            db::query(
                "UPDATE public.sign_in_failures
                    SET retry_at = now() + make_interval(secs => $4)
                  WHERE site = $1 AND account = $2 AND address = $3",
            )
            .bind(&attempt.site)
            .bind(&attempt.account)
            .bind(&attempt.address)
            .bind(delay.map(|d| d.as_secs_f64()))
            .execute(&mut *tx)
            .await?;
            Ok(())
        }
        None => {
            let wait: f64 = db::query_scalar(
                "SELECT greatest(extract(epoch FROM retry_at - now())::float8, 1)
                   FROM public.sign_in_failures
                  WHERE site = $1 AND account = $2 AND address = $3",
            )
            .bind(&attempt.site)
            .bind(&attempt.account)
            .bind(&attempt.address)
            .fetch_one(&mut *tx)
            .await?;
            Err(Duration::from_secs_f64(
                wait.clamp(1.0, MAX_DELAY.as_secs_f64()),
            ))
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// The attempt was right: its pair's failures are forgotten.
pub async fn succeeded(pool: &PgPool, attempt: &Attempt) -> Result<(), sqlx::Error> {
    let mut tx = db::begin_public(pool).await?;
    db::query(
        "DELETE FROM public.sign_in_failures WHERE site = $1 AND account = $2 AND address = $3",
    )
    .bind(&attempt.site)
    .bind(&attempt.account)
    .bind(&attempt.address)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Drops the records of pairs that have started afresh (a background job).
pub async fn forget_old(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut tx = db::begin_public(pool).await?;
    let done = db::query(
        "DELETE FROM public.sign_in_failures
          WHERE last_at < now() - make_interval(secs => $1)
            AND (retry_at IS NULL OR retry_at < now())",
    )
    .bind(FORGET_AFTER.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// "2 minutes", "45 seconds": how long to wait, for people.
pub fn human_wait(wait: Duration) -> String {
    let secs = wait.as_secs().max(1);
    if secs >= 120 {
        format!("{} minutes", secs.div_ceil(60))
    } else if secs == 1 {
        "1 second".to_owned()
    } else {
        format!("{secs} seconds")
    }
}

/// What a refused sign-in shows, and its `Retry-After` (whole seconds).
pub fn refusal(wait: Duration) -> (String, u64) {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    (
        format!(
            "Too many failed sign-in attempts. Try again in {}.",
            human_wait(Duration::from_secs(secs))
        ),
        secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_the_free_failures_and_stop_growing() {
        assert_eq!(delay_after(1), None);
        assert_eq!(delay_after(FREE_FAILURES - 1), None);
        assert_eq!(delay_after(FREE_FAILURES), Some(Duration::from_secs(2)));
        assert_eq!(delay_after(FREE_FAILURES + 1), Some(Duration::from_secs(4)));
        assert_eq!(
            delay_after(FREE_FAILURES + 3),
            Some(Duration::from_secs(16))
        );
        assert_eq!(delay_after(FREE_FAILURES + 20), Some(MAX_DELAY));
        assert_eq!(delay_after(i32::MAX), Some(MAX_DELAY));
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(human_wait(Duration::from_secs(45)), "45 seconds");
        assert_eq!(human_wait(Duration::from_secs(1)), "1 second");
        assert_eq!(human_wait(Duration::from_secs(601)), "11 minutes");
        assert_eq!(refusal(Duration::from_millis(1500)).1, 2);
    }
}
