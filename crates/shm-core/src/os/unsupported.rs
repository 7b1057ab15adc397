//! Platforms without an implementation: every call fails with `Unsupported`.
//!
//! The types mirror `linux.rs` so that the rest of the crate compiles unchanged; the file and
//! mapping types are uninhabited, since no open can succeed.
#![allow(dead_code)]

use std::convert::Infallible;
use std::ffi::CStr;
use std::io;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use super::{Exists, FileStat, FutexWait, OpenFailure, ProcStat, UsersScan};

pub(crate) const SHM_DIR: &str = "";

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "shm-ipc supports Linux only for now",
    )
}

/// Never constructed here: every open fails first.
#[derive(Debug)]
pub(crate) struct ShmFile {
    never: Infallible,
}
pub(crate) fn shm_create_exclusive(_: &CStr, _: u32) -> io::Result<ShmFile> {
    Err(unsupported())
}
pub(crate) fn shm_open(_: &CStr, _: bool) -> Result<ShmFile, OpenFailure> {
    Err(OpenFailure::Io(unsupported()))
}
pub(crate) fn shm_lstat(_: &str) -> io::Result<FileStat> {
    Err(unsupported())
}
impl ShmFile {
    pub(crate) fn stat(&self) -> io::Result<FileStat> {
        match self.never {}
    }
    pub(crate) fn read_exact_at(&self, _: &mut [u8], _: u64) -> io::Result<()> {
        match self.never {}
    }
    pub(crate) fn set_len(&self, _: u64) -> io::Result<()> {
        match self.never {}
    }
    pub(crate) fn map(&self, _: usize) -> io::Result<Mapping> {
        match self.never {}
    }
    pub(crate) fn try_lock_shared(&self) -> io::Result<bool> {
        match self.never {}
    }
    pub(crate) fn try_lock_exclusive(&self) -> io::Result<bool> {
        match self.never {}
    }
}
/// Never constructed here.
#[derive(Debug)]
pub(crate) struct Mapping {
    never: Infallible,
}
impl Mapping {
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        match self.never {}
    }
    pub(crate) fn len(&self) -> usize {
        match self.never {}
    }
}
pub(crate) fn shm_unlink(_: &CStr) -> io::Result<()> {
    Err(unsupported())
}
pub(crate) fn shm_names() -> io::Result<Vec<String>> {
    Err(unsupported())
}
pub(crate) fn euid() -> u32 {
    0
}
pub(crate) fn scan_shm_users() -> UsersScan {
    UsersScan::default()
}
pub(crate) fn pid_exists(_: u32) -> Exists {
    Exists::Unknown
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
