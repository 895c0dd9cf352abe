//! Login throttling: too many failed sign-ins from one client address, or
//! for one account, on one site, and further attempts are refused for a
//! while with a clear "try again in N seconds".
//!
//! Kept in memory: cheap, and a restart forgets it. With several instances
//! each counts on its own, so the limits are per instance.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures within how long.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub failures: usize,
    pub window: Duration,
}

/// Failures per client address, then per account.
pub const PER_ADDRESS: Limit = Limit {
    failures: 20,
    window: Duration::from_secs(10 * 60),
};
pub const PER_ACCOUNT: Limit = Limit {
    failures: 10,
    window: Duration::from_secs(15 * 60),
};

/// Keys are kept at most this long after their last failure.
const KEEP: Duration = Duration::from_secs(15 * 60);
/// Above this many keys, stale ones are pruned on the next failure.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// What a login attempt is counted against.
pub struct Attempt {
    address: String,
    account: String,
}

impl Attempt {
    /// `site` keeps one site's counts apart from another's.
    pub fn new(site: &str, address: &str, account: &str) -> Attempt {
        Attempt {
            address: format!("{site}|addr|{address}"),
            account: format!("{site}|acct|{}", account.trim().to_lowercase()),
        }
    }
}

impl LoginThrottle {
    /// `Err(wait)` when this attempt must be refused for `wait`.
    pub fn check(&self, attempt: &Attempt) -> Result<(), Duration> {
        let now = Instant::now();
        let map = self.failures.lock().expect("throttle lock");
        let wait = |key: &str, limit: Limit| {
            let times = map.get(key)?;
            let recent: Vec<&Instant> = times
                .iter()
                .filter(|t| now.duration_since(**t) < limit.window)
                .collect();
            (recent.len() >= limit.failures)
                .then(|| limit.window - now.duration_since(*recent[recent.len() - limit.failures]))
        };
        match (
            wait(&attempt.address, PER_ADDRESS),
            wait(&attempt.account, PER_ACCOUNT),
        ) {
            (None, None) => Ok(()),
            (a, b) => Err(a.max(b).unwrap_or_default()),
        }
    }

    pub fn record_failure(&self, attempt: &Attempt) {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < KEEP));
        }
        for key in [&attempt.address, &attempt.account] {
            let times = map.entry(key.clone()).or_default();
            times.push_back(now);
            while times.len() > PER_ADDRESS.failures.max(PER_ACCOUNT.failures) {
                times.pop_front();
            }
        }
    }

    /// A good sign-in clears the account's failures (not the address's).
    pub fn record_success(&self, attempt: &Attempt) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(&attempt.account);
    }
}

/// "2 minutes", "45 seconds": how long to wait, for people.
pub fn human_wait(wait: Duration) -> String {
    let secs = wait.as_secs().max(1);
    if secs >= 120 {
        format!("{} minutes", secs.div_ceil(60))
    } else {
        format!("{secs} seconds")
    }
}

/// What a refused sign-in shows, and its `Retry-After` (whole seconds).
pub fn refusal(wait: Duration) -> (String, u64) {
    let secs = wait.as_secs().max(1);
    (
        format!(
            "Too many failed sign-in attempts. Try again in {}.",
            human_wait(wait)
        ),
        secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_is_refused_after_its_limit_and_cleared_by_success() {
        let throttle = LoginThrottle::default();
        let attempt = Attempt::new("t1", "10.0.0.1", "Ada@Example.com");
        for _ in 0..PER_ACCOUNT.failures {
            assert!(throttle.check(&attempt).is_ok());
            throttle.record_failure(&attempt);
        }
        let wait = throttle.check(&attempt).unwrap_err();
        assert!(wait > Duration::from_secs(60) && wait <= PER_ACCOUNT.window);
        // Same account in another case, another site: counted separately per site.
        assert!(
            throttle
                .check(&Attempt::new("t1", "10.0.0.2", "ada@example.com"))
                .is_err()
        );
        assert!(
            throttle
                .check(&Attempt::new("t2", "10.0.0.1", "ada@example.com"))
                .is_ok()
        );
        throttle.record_success(&attempt);
        assert!(throttle.check(&attempt).is_ok());
    }

    #[test]
    fn address_is_refused_after_its_limit() {
        let throttle = LoginThrottle::default();
        for i in 0..PER_ADDRESS.failures {
            throttle.record_failure(&Attempt::new("cp", "10.0.0.9", &format!("user{i}@x.test")));
        }
        assert!(
            throttle
                .check(&Attempt::new("cp", "10.0.0.9", "new@x.test"))
                .is_err()
        );
        assert!(
            throttle
                .check(&Attempt::new("cp", "10.0.0.10", "new@x.test"))
                .is_ok()
        );
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(human_wait(Duration::from_secs(45)), "45 seconds");
        assert_eq!(human_wait(Duration::from_secs(601)), "11 minutes");
    }
}
