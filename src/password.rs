//! Password hashing with argon2id, off the async worker threads.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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
    WAITING.fetch_add(1, Ordering::Relaxed);
    let _permit = hashing_permits().acquire().await;
    WAITING.fetch_sub(1, Ordering::Relaxed);
    tokio::task::spawn_blocking(work).await
}

/// The memory of one argon2 computation (19 MiB with the default
/// parameters), mapped for it and unmapped after it, so that sign-ins keep
/// no memory: when these buffers came from malloc (glibc's, then), 64
/// concurrent verifications added ~1.2 GB of resident memory a round,
/// without bound. It asks for transparent huge pages: 4 KiB pages cost the
/// kernel ~4,900 faults and ~10 ms per hash here, a third of the hash
/// (`docs/BENCHMARKS.md`).
struct Blocks {
    start: std::ptr::NonNull<Block>,
    len: usize,
}

impl Blocks {
    fn new(len: usize) -> Option<Blocks> {
        let bytes = len.checked_mul(std::mem::size_of::<Block>())?;
        // SAFETY: a fresh private anonymous mapping, checked for failure.
        // Its pages read as zeros, a valid `Block` (plain `u64`s), and it is
        // page-aligned, more than `Block`'s 64 bytes.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: advice on the mapping just made; refused advice (no THP
        // on this kernel) only leaves the default pages.
        unsafe { libc::madvise(start, bytes, libc::MADV_HUGEPAGE) };
        Some(Blocks {
            start: std::ptr::NonNull::new(start.cast())?,
            len,
        })
    }
}

impl AsMut<[Block]> for Blocks {
    fn as_mut(&mut self) -> &mut [Block] {
        // SAFETY: `len` initialised blocks (zeros) that only `self` reaches.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe {
            libc::munmap(
                self.start.as_ptr().cast(),
                self.len * std::mem::size_of::<Block>(),
            )
        };
    }
}

/// argon2 of `password` and `salt` into `out`, in [`Blocks`] of its own.
fn compute(argon2: &Argon2, password: &[u8], salt: &[u8], out: &mut [u8]) -> anyhow::Result<()> {
    let blocks = Blocks::new(argon2.params().block_count())
        .ok_or_else(|| anyhow::anyhow!("no memory for a password hash"))?;
    argon2
        .hash_password_into_with_memory(password, salt, out, blocks)
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// Hashes with argon2id (the crate's default parameters), as a PHC string.
fn hash_now(password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no random salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default());
    compute(&argon2, password, &salt, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(Salt::new(&salt)?),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `stored` (any argon2 variant
/// and parameters it names), compared in constant time.
fn verify_now(password: &[u8], stored: &str) -> bool {
    let Ok(phc) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(phc.algorithm.as_str()),
        Version::try_from(phc.version.unwrap_or(Version::V0x13.into())),
        Params::try_from(&phc),
    ) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    compute(&argon2, password, salt, &mut out).is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
}

/// Hashes with argon2id (the crate's default algorithm and parameters).
pub async fn hash(password: String) -> anyhow::Result<String> {
    run_hashing(move || hash_now(password.as_bytes())).await?
}

/// Verifies against a stored hash. With no stored hash (unknown account) it
/// verifies against a dummy so both cases take as long.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    run_hashing(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        verify_now(password.as_bytes(), &stored) && stored != DUMMY_HASH
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
mod compatibility_tests {
    use argon2::{Argon2, PasswordHasher, PasswordVerifier};

    /// Hashes stored before (made by the argon2 crate itself) still verify,
    /// and ours verify with the crate: the same PHC strings either way.
    #[tokio::test]
    async fn hashes_verify_both_ways_and_wrong_passwords_do_not() {
        let ours = super::hash("correct-horse-battery".into()).await.unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(
            Argon2::default()
                .verify_password(b"correct-horse-battery", ours.as_str())
                .is_ok()
        );
        let theirs = Argon2::default()
            .hash_password(b"correct-horse-battery")
            .unwrap()
            .to_string();
        assert!(super::verify("correct-horse-battery".into(), Some(theirs.clone())).await);
        assert!(!super::verify("correct-horse-batterx".into(), Some(theirs)).await);
        assert!(!super::verify("wrong".into(), Some(ours.clone())).await);
        assert!(!super::verify("correct-horse-battery".into(), None).await);
        assert!(!super::verify("x".into(), Some("not a hash".into())).await);
        let other = super::hash("correct-horse-battery".into()).await.unwrap();
        assert_ne!(ours, other, "each hash has its own salt");
    }

    /// Other parameters than ours, as a hash from elsewhere may carry.
    #[tokio::test]
    async fn a_hash_with_other_parameters_verifies() {
        let params = argon2::Params::new(8192, 3, 1, Some(24)).unwrap();
        let argon2 = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let theirs = argon2
            .hash_password(b"another-password")
            .unwrap()
            .to_string();
        assert!(super::verify("another-password".into(), Some(theirs.clone())).await);
        assert!(!super::verify("another-passwore".into(), Some(theirs)).await);
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
