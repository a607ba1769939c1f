//! How the server's threads ask the kernel for CPU time.
//!
//! A write that waits to be searchable waits for a tantivy commit: a handful of
//! threads handing work to each other (the request's task, the committing thread,
//! an indexing thread, the segment updater), each needing a few hundred
//! microseconds to a few milliseconds of CPU. Under a search load both cores are
//! busy with searches, and each hand-over waits for a core. Linux's EEVDF
//! scheduler (6.6 on) picks the runnable thread with the earliest virtual
//! deadline, and a thread's deadline is its time slice away: a thread that asks
//! for a shorter slice (`sched_setattr`'s `sched_runtime`, honoured for normal
//! threads since 6.12) runs sooner when it wakes, and for shorter stretches; its
//! share of the CPU over time, set by its nice value, stays the same.
//!
//! So the server's threads ask for [`SHORT_SLICE`] at start-up, before any other
//! thread exists: every thread inherits it, tantivy's included. The search threads
//! go back to the default slice (and a lower priority, `search_pool.rs`): a search
//! runs for milliseconds and gains nothing from waking sooner. On kernels without
//! custom slices the request is accepted and ignored, or refused; either way
//! nothing else changes. Measured in docs/decisions.md (the round on write visibility).
//!
//! Written by hand: `sched_setattr` has no wrapper in `libc`, and no crate for
//! it is kept up.

/// The slice the server's threads ask for: the shortest the kernel accepts.
const SHORT_SLICE_NS: u64 = 100_000;

/// `struct sched_attr` of `sched_setattr(2)`, as of Linux 4.13 (`SCHED_ATTR_SIZE_VER1`).
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

/// Asks for the short slice for the calling thread and the threads it starts later.
pub fn shorten_time_slice() {
    set_time_slice(SHORT_SLICE_NS);
}

/// Goes back to the kernel's default slice for the calling thread.
pub(crate) fn default_time_slice() {
    set_time_slice(0);
}

/// The calling thread's scheduling attributes, if the kernel tells them.
#[cfg(target_os = "linux")]
fn current_attr() -> Option<SchedAttr> {
    let size = std::mem::size_of::<SchedAttr>() as u32;
    let mut attr = SchedAttr::default();
    // SAFETY: sched_getattr writes at most `size` bytes of `attr`, a live
    // `struct sched_attr` of that size; pid 0 is the calling thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut SchedAttr,
            size,
            0,
        )
    };
    (r == 0).then_some(attr)
}

/// Sets the calling thread's slice (0: the default), keeping its policy and nice
/// value. Fails quietly: the slice is a hint.
fn set_time_slice(nanoseconds: u64) {
    #[cfg(target_os = "linux")]
    {
        let Some(mut attr) = current_attr() else {
            return;
        };
        // Only normal threads have slices; leave a real-time or batch policy alone.
        if attr.sched_policy != libc::SCHED_OTHER as u32 {
            return;
        }
        attr.size = std::mem::size_of::<SchedAttr>() as u32;
        attr.sched_flags = 0;
        attr.sched_runtime = nanoseconds;
        // SAFETY: sched_setattr reads `attr.size` bytes of `attr`, a live
        // `struct sched_attr`; pid 0 is the calling thread.
        if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) } != 0 {
            tracing::debug!(
                err = %std::io::Error::last_os_error(),
                "the kernel refused a custom time slice"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nanoseconds;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn slice() -> u64 {
        current_attr().expect("sched_getattr").sched_runtime
    }

    fn kernel_at_least(major: u32, minor: u32) -> bool {
        // SAFETY: uname fills the struct it is given.
        let mut name: libc::utsname = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::uname(&mut name) }, 0);
        // SAFETY: `release` is NUL-terminated by uname.
        let release = unsafe { std::ffi::CStr::from_ptr(name.release.as_ptr()) };
        let mut parts = release
            .to_str()
            .unwrap()
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
    }

    /// Runs on a thread of its own: the slice is inherited by threads started later.
    #[test]
    fn a_short_slice_is_inherited_and_can_be_given_back() {
        std::thread::spawn(|| {
            let default = slice();
            shorten_time_slice();
            let shortened = slice();
            let child = std::thread::spawn(slice).join().unwrap();
            default_time_slice();
            let restored = slice();
            if kernel_at_least(6, 12) {
                assert_eq!(shortened, SHORT_SLICE_NS);
                assert_eq!(child, SHORT_SLICE_NS);
                assert_eq!(restored, default);
            } else {
                // Older kernels keep no custom slice for normal threads.
                assert_eq!((shortened, child, restored), (default, default, default));
            }
        })
        .join()
        .unwrap();
    }
}
