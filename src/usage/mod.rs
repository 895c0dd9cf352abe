//! Usage at a glance: how much each tenant is used, collected without a
//! query per request and without sweeping every schema at once.
//!
//! - [`Counters`]: requests and last activity per tenant (and the control
//!   panel's requests), counted in memory by [`count`] as requests pass.
//! - [`collect`]: the two jobs. `flush` adds the counters to
//!   `public.usage_daily` (a row per tenant per UTC day) about once a
//!   minute; `refresh` measures a bounded batch of the stalest tenants
//!   (schema size, tasks, active sessions) into `public.tenant_usage`.
//! - [`read`]: what the control panel's pages read back (always from those
//!   tables, never from the schemas themselves).
//!
//! This is the application's module: it names the app's tables (tasks). The
//! tenancy core only lends it generic parts (schema sizes, the schema pin).

pub mod collect;
pub mod read;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use time::{Date, OffsetDateTime};

use crate::tenancy::Site;

/// Which site a counted request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SiteKey {
    ControlPanel,
    Tenant(i64),
}

/// What was counted for one site on one day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    pub requests: u64,
    pub last: OffsetDateTime,
}

/// Counted and not yet flushed: (site, UTC day) → tally.
pub type Counted = HashMap<(SiteKey, Date), Tally>;

/// Shards of the map, so requests to different tenants rarely wait on the
/// same lock (each lock is held for one hash-map update).
const SHARDS: usize = 16;

/// The in-memory counters of one running app (each app instance has its
/// own; the flush adds them up in the database).
pub struct Counters {
    shards: [Mutex<Counted>; SHARDS],
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
        }
    }
}

impl Counters {
    pub fn new() -> Arc<Counters> {
        Arc::new(Counters::default())
    }

    fn shard(&self, site: SiteKey) -> &Mutex<Counted> {
        let n = match site {
            SiteKey::ControlPanel => 0,
            SiteKey::Tenant(id) => id.unsigned_abs() as usize,
        };
        &self.shards[n % SHARDS]
    }

    /// Counts one request to `site` at `at`.
    pub fn record(&self, site: SiteKey, at: OffsetDateTime) {
        let at = at.to_offset(time::UtcOffset::UTC);
        let mut shard = self.shard(site).lock().unwrap_or_else(|e| e.into_inner());
        shard
            .entry((site, at.date()))
            .and_modify(|t| {
                t.requests += 1;
                t.last = t.last.max(at);
            })
            .or_insert(Tally {
                requests: 1,
                last: at,
            });
    }

    /// Takes everything counted so far, leaving the counters empty.
    pub fn take(&self) -> Counted {
        let mut all = Counted::new();
        for shard in &self.shards {
            let taken = std::mem::take(&mut *shard.lock().unwrap_or_else(|e| e.into_inner()));
            all.extend(taken);
        }
        all
    }

    /// Puts back what [`Counters::take`] took and could not be written, so
    /// a failed flush loses nothing (the next one writes it).
    pub fn restore(&self, counted: Counted) {
        for ((site, day), tally) in counted {
            let mut shard = self.shard(site).lock().unwrap_or_else(|e| e.into_inner());
            shard
                .entry((site, day))
                .and_modify(|t| {
                    t.requests += tally.requests;
                    t.last = t.last.max(tally.last);
                })
                .or_insert(tally);
        }
    }
}

/// Layer around the whole app: counts each request a site answered (the
/// health checks and static files, answered before the dispatch, are not
/// counted). A hash-map update under a sharded lock: no query.
pub async fn count(counters: Arc<Counters>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let site = match response.extensions().get::<Site>() {
        Some(Site::ControlPanel) => Some(SiteKey::ControlPanel),
        Some(Site::Tenant(t)) => Some(SiteKey::Tenant(t.id)),
        None => None,
    };
    if let Some(site) = site {
        counters.record(site, OffsetDateTime::now_utc());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-`day` `hh`:`mm` UTC.
    fn at(day: u8, hh: u8, mm: u8) -> OffsetDateTime {
        Date::from_calendar_date(2026, time::Month::December, day)
            .unwrap()
            .with_hms(hh, mm, 0)
            .unwrap()
            .assume_utc()
    }

    #[test]
    fn counts_per_site_and_day_and_puts_back_what_was_not_written() {
        let c = Counters::default();
        let a = SiteKey::Tenant(1);
        c.record(a, at(1, 23, 59));
        c.record(a, at(2, 0, 1));
        c.record(a, at(2, 0, 3));
        c.record(SiteKey::Tenant(17), at(2, 0, 2));
        c.record(SiteKey::ControlPanel, at(2, 0, 2));
        let taken = c.take();
        assert_eq!(taken.len(), 4);
        let day = at(2, 0, 0).date();
        assert_eq!(
            taken[&(a, day)],
            Tally {
                requests: 2,
                last: at(2, 0, 3)
            }
        );
        assert!(c.take().is_empty());
        c.record(a, at(2, 0, 2));
        c.restore(taken);
        let again = c.take();
        assert_eq!(again[&(a, day)].requests, 3);
        assert_eq!(again[&(a, day)].last, at(2, 0, 3));
    }
}
