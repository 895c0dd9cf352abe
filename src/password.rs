//! Password hashing with argon2id, off the async worker threads.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 1024;

/// Checks a new password's length.
pub fn check_new(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        return Err(format!("a password is at least {MIN_LENGTH} characters"));
    }
    if password.len() > MAX_LENGTH {
        return Err(format!("a password is at most {MAX_LENGTH} bytes"));
    }
    Ok(())
}

/// At most this many hashes are computed at once (each takes ~19 MiB and a
/// core for tens of milliseconds); further sign-ins wait their turn, so a
/// flood of logins cannot take every core or unbounded memory.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.max(2))
    })
}

/// Hashes waiting for a permit right now (a metric).
static WAITING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many password hashes are waiting for a core.
pub fn waiting() -> usize {
    WAITING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs one argon2 computation on the blocking pool, within the permits.
async fn run_hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    use std::sync::atomic::Ordering;
    static TUNED: std::sync::Once = std::sync::Once::new();
    TUNED.call_once(return_large_allocations);
    WAITING.fetch_add(1, Ordering::Relaxed);
    let _permit = hashing_permits().acquire().await;
    WAITING.fetch_sub(1, Ordering::Relaxed);
    tokio::task::spawn_blocking(work).await
}

/// glibc serves a large allocation from a thread's heap once an equal one
/// was freed (its mmap threshold adapts upwards), and keeps that memory:
/// measured here, 64 concurrent argon2 verifications at a time added
/// ~1.2 GB of resident memory per round, without bound. A fixed threshold
/// puts the 19 MiB argon2 buffers in their own mappings, returned on free.
fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is safe to call at
    // any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

/// Hashes with argon2id (the crate's default algorithm and parameters).
pub async fn hash(password: String) -> anyhow::Result<String> {
    run_hashing(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
    })
    .await?
}

/// Verifies against a stored hash. With no stored hash (unknown account) it
/// verifies against a dummy so both cases take as long.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    run_hashing(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), stored.as_str())
            .is_ok();
        ok && stored != DUMMY_HASH
    })
    .await
    .unwrap_or(false)
}

/// The argon2id hash of a random string nobody knows, with default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$6e5lNEWCWlDp4uLKYoFqgXjUdrI5Rn9RdYvmyW5Ktp4";

/// Lower-cases and checks an email address: something@something, at most 254.
pub fn clean_email(input: &str) -> Result<String, &'static str> {
    let email = input.trim().to_lowercase();
    if email.is_empty() {
        return Err("enter an email address");
    }
    let valid = email.len() <= 254
        && email.split('@').count() == 2
        && email.split('@').all(|part| !part.is_empty())
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    if valid {
        Ok(email)
    } else {
        Err("enter a valid email address, such as ada@example.com")
    }
}

#[cfg(test)]
mod memory_tests {
    /// Resident memory of this process, in MiB.
    fn rss_mib() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
            .map_or(0, |pages| pages * 4096 / (1024 * 1024))
    }

    /// Many sign-ins must not grow the process without bound (before the
    /// fix: ~19 MiB kept per verification, 1.2 GB per 64).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifying_many_passwords_does_not_keep_their_memory() {
        let hash = super::hash("correct-horse-battery".into()).await.unwrap();
        let before = rss_mib();
        for _ in 0..4 {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..24 {
                let hash = hash.clone();
                set.spawn(super::verify("wrong-password".into(), Some(hash)));
            }
            while set.join_next().await.is_some() {}
        }
        let grown = rss_mib().saturating_sub(before);
        assert!(grown < 200, "96 verifications kept {grown} MiB");
    }
}
