//! Memory given back to the system after a burst of large requests. glibc's malloc keeps what
//! is freed: a 25 MiB body raises its mmap threshold to 25 MiB, after which such buffers come
//! from the heap and stay in the process when freed. A fixed threshold keeps large buffers in
//! their own mappings (unmapped when freed), and a periodic trim returns the heap's free pages.

use std::time::Duration;

/// Allocations from this size on get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// How often free heap pages are returned.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Sets the allocator up for a server (before the runtime starts allocating in earnest).
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` changes a glibc malloc parameter; it has no memory-safety preconditions.
    let _ = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
}

/// Returns the heap's free pages to the system every [`TRIM_EVERY`], for as long as the runtime
/// runs.
pub fn spawn_periodic_trim() {
    tokio::spawn(async {
        let mut every = tokio::time::interval(TRIM_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            trim();
        }
    });
}

fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free memory of glibc's arenas; no precondition.
    let _ = unsafe { libc::malloc_trim(0) };
}
