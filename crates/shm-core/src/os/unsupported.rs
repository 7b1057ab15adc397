//! Platforms without an implementation: every call fails with `Unsupported`.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

pub(crate) const SHM_DIR: &str = "";

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "shm-ipc supports Linux only for now",
    )
}

pub(crate) fn shm_create_exclusive(_: &CStr, _: u32) -> io::Result<File> {
    Err(unsupported())
}
pub(crate) fn shm_open_rw(_: &CStr) -> io::Result<File> {
    Err(unsupported())
}
pub(crate) fn shm_open_ro(_: &CStr) -> io::Result<File> {
    Err(unsupported())
}
pub(crate) fn shm_unlink(_: &CStr) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn shm_names() -> io::Result<Vec<String>> {
    Err(unsupported())
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exists {
    Yes,
    No,
    Unknown,
}
pub(crate) fn pid_exists(_: u32) -> Exists {
    Exists::Unknown
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcStat {
    Running { start_time: u64 },
    Zombie,
    Unreadable,
}
pub(crate) fn proc_stat(_: u32) -> ProcStat {
    ProcStat::Unreadable
}
pub(crate) fn process_start_time(_: u32) -> Option<u64> {
    None
}
pub(crate) fn gettid() -> u32 {
    // No thread ids here: a per-thread counter stands in (liveness answers Unknown anyway).
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    std::thread_local!(static ID: u32 = NEXT.fetch_add(1, Ordering::Relaxed));
    ID.with(|id| *id)
}
pub(crate) fn monotonic_now() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FutexWait {
    Woken,
    TimedOut,
}
pub(crate) fn futex_wait(_: &AtomicU32, _: u32, _: Option<Duration>) -> FutexWait {
    std::thread::sleep(Duration::from_micros(50));
    FutexWait::Woken
}
pub(crate) fn futex_wake(_: &AtomicU32, _: u32) -> usize {
    0
}
pub(crate) fn membarrier_register_global_expedited() -> bool {
    false
}
pub(crate) fn membarrier_global_expedited() -> bool {
    false
}
pub(crate) fn yield_now() {
    std::thread::yield_now();
}
