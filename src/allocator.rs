//! The memory allocator: jemalloc, with two arenas, giving freed memory
//! back to the operating system.
//!
//! With glibc's malloc a seventh of the server's CPU went to `malloc` and
//! `free`, and more the longer it ran: after boards over 10,000 tenants the
//! same one-tenant board cost 0.18–0.20 ms of server CPU instead of 0.17
//! (likely its free lists, fragmented among the statements each connection
//! keeps). With jemalloc it is 0.13–0.16 ms at any spread, for the same
//! resident memory (`docs/BENCHMARKS.md`, "The allocator").
//!
//! [`CONFIG`]: two arenas are plenty for a two-worker runtime (jemalloc makes
//! four per core otherwise, each holding memory of its own), and freed pages
//! go back after a second unused instead of ten. jemalloc returns them only
//! while it allocates, and runs no thread of its own here, so [`trim`],
//! which `tenantry serve` runs every [`TRIM_PERIOD`] (`crate::jobs`),
//! returns what an idle server's last requests freed.

use std::time::Duration;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its options from this symbol before the first allocation
/// (its name carries the crate's symbol prefix). `_RJEM_MALLOC_CONF` in the
/// environment still overrides it.
#[unsafe(export_name = "_rjem_malloc_conf")]
static CONFIG: Option<&'static std::ffi::c_char> = Some(
    // SAFETY: a pointer to the first byte of a NUL-terminated static string.
    unsafe { &*c"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0".as_ptr() },
);

/// How often `tenantry serve` trims.
pub const TRIM_PERIOD: Duration = Duration::from_secs(10);

/// Returns every arena's unused pages to the operating system.
pub fn trim() {
    // `MALLCTL_ARENAS_ALL` (4096) names all arenas at once.
    let name = c"arena.4096.purge";
    // SAFETY: `name` is NUL-terminated, and `purge` reads and writes nothing.
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if status != 0 {
        tracing::debug!(status, "jemalloc refused to purge");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// Resident memory of this process, in bytes.
    fn rss() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        // SAFETY: sysconf only reads a constant of the system.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        pages * usize::try_from(page).unwrap()
    }

    #[test]
    fn the_allocator_reads_its_configuration() {
        let mut narenas: libc::c_uint = 0;
        let mut len = std::mem::size_of::<libc::c_uint>();
        // SAFETY: `opt.narenas` is an unsigned int, written into `narenas`.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"opt.narenas".as_ptr(),
                (&raw mut narenas).cast(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!((status, narenas), (0, 2));
    }

    #[test]
    fn freed_memory_goes_back_when_trimmed() {
        // 64 KiB blocks, every other one freed: 16 MiB of holes between
        // live blocks, which free() alone keeps for a while. RSS is the
        // whole process's, and other tests map and unmap memory meanwhile:
        // three tries, one of which must show the drop.
        let mut seen = Vec::new();
        for _ in 0..3 {
            let blocks: Vec<Vec<u8>> = (0..512).map(|_| vec![1u8; 64 * 1024]).collect();
            let live: Vec<Vec<u8>> = blocks.into_iter().step_by(2).collect();
            let before = rss();
            super::trim();
            let after = rss();
            drop(live);
            if before.saturating_sub(after) > 8 << 20 {
                return;
            }
            seen.push((before, after));
        }
        panic!("RSS before and after each trim: {seen:?}");
    }
}
