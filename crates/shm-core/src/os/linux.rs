//! Linux: POSIX shared memory, shared futexes, `kill` and `/proc` for liveness.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Where `shm_open` names live on Linux.
pub(crate) const SHM_DIR: &str = "/dev/shm";

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `shm_open(name, O_CREAT|O_EXCL|O_RDWR, mode)`, then `fchmod(mode)` so the umask does not
/// narrow the mode the caller asked for.
pub(crate) fn shm_create_exclusive(name: &CStr, mode: u32) -> io::Result<File> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe {
        libc::shm_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
            mode as libc::mode_t,
        )
    })?;
    // SAFETY: `fd` was just returned by shm_open and is owned by nobody else.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // SAFETY: fchmod on a file descriptor we own; no memory is passed.
    cvt(unsafe { libc::fchmod(fd, mode as libc::mode_t) })?;
    Ok(file)
}

/// `shm_open(name, O_RDWR)`.
pub(crate) fn shm_open_rw(name: &CStr) -> io::Result<File> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe { libc::shm_open(name.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by shm_open and is owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `shm_open(name, O_RDONLY)`, for listing.
pub(crate) fn shm_open_ro(name: &CStr) -> io::Result<File> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let fd = cvt(unsafe { libc::shm_open(name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by shm_open and is owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `shm_unlink(name)`.
pub(crate) fn shm_unlink(name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    cvt(unsafe { libc::shm_unlink(name.as_ptr()) }).map(drop)
}

/// The names in the shm namespace (without the leading slash).
pub(crate) fn shm_names() -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(SHM_DIR)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Whether a pid exists, by `kill(pid, 0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exists {
    /// The call succeeded, or failed with `EPERM` (another user's process).
    Yes,
    /// `ESRCH`: no process or thread has this id.
    No,
    /// Any other failure (a seccomp filter, an invalid pid): cannot tell.
    Unknown,
}

/// `kill(pid, 0)`: sends no signal, only checks that `pid` exists. Thread ids work too.
pub(crate) fn pid_exists(pid: u32) -> Exists {
    if pid == 0 || pid > i32::MAX as u32 {
        // 0 and negative pids name process groups, never one process.
        return Exists::No;
    }
    // SAFETY: kill with signal 0 sends nothing and touches no memory; pid is positive, so it
    // names one process, not a group.
    let ret = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if ret == 0 {
        return Exists::Yes;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EPERM) => Exists::Yes,
        Some(libc::ESRCH) => Exists::No,
        _ => Exists::Unknown,
    }
}

/// What `/proc/<pid>/stat` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProcStat {
    /// Running (or sleeping, stopped...), with its `starttime` (clock ticks since boot).
    Running {
        /// Field 22 of the stat line.
        start_time: u64,
    },
    /// A zombie or dead task: it has exited.
    Zombie,
    /// The file could not be read or parsed: no such process, no `/proc`, or `hidepid`.
    Unreadable,
}

/// Reads `/proc/<pid>/stat` (thread ids work too: `/proc/<tid>` exists while the thread runs).
pub(crate) fn proc_stat(pid: u32) -> ProcStat {
    if pid == 0 {
        return ProcStat::Unreadable;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcStat::Unreadable;
    };
    parse_stat(&stat)
}

/// Parses a stat line. The command name (field 2) is in parentheses and may itself contain
/// spaces and ')', so parsing starts after the last ')'.
fn parse_stat(stat: &str) -> ProcStat {
    let Some(close) = stat.rfind(')') else {
        return ProcStat::Unreadable;
    };
    let mut fields = stat[close + 1..].split_ascii_whitespace();
    match fields.next() {
        // field 3, the state
        Some("Z" | "X" | "x") => ProcStat::Zombie,
        Some(_) => match fields.nth(18).map(str::parse::<u64>) {
            // starttime is field 22; field 3 was consumed, so skip fields 4..=21 (18 fields).
            Some(Ok(start_time)) => ProcStat::Running { start_time },
            _ => ProcStat::Unreadable,
        },
        None => ProcStat::Unreadable,
    }
}

/// The start time of a live (not zombie) process, if `/proc` tells it.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    match proc_stat(pid) {
        ProcStat::Running { start_time } => Some(start_time),
        _ => None,
    }
}

/// The kernel thread id of the calling thread (`gettid(2)`).
pub(crate) fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    (unsafe { libc::gettid() }) as u32
}

/// Current `CLOCK_MONOTONIC` time.
pub(crate) fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Result of a futex wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FutexWait {
    /// Woken, or the value had already changed, or a signal interrupted the wait: re-check.
    Woken,
    /// The absolute deadline passed.
    TimedOut,
}

/// `FUTEX_WAIT_BITSET` on a shared (not private) futex word with an absolute
/// `CLOCK_MONOTONIC` deadline, or none.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Option<Duration>) -> FutexWait {
    let ts;
    let ts_ptr = match deadline {
        Some(d) => {
            ts = libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            };
            &ts as *const libc::timespec
        }
        None => std::ptr::null(),
    };
    // SAFETY: `word` is a live, 4-byte aligned atomic for the duration of the call (the kernel
    // only reads it); `ts_ptr` is null or points to a timespec that outlives the call. The
    // futex is shared (no FUTEX_PRIVATE_FLAG) so wakers in other processes reach it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            libc::FUTEX_BITSET_MATCH_ANY,
        )
    };
    if ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
        FutexWait::TimedOut
    } else {
        FutexWait::Woken
    }
}

/// `FUTEX_WAKE` of up to `n` waiters on a shared futex word. Returns how many were woken.
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: `word` is a live, 4-byte aligned atomic; FUTEX_WAKE does not access it beyond
    // using its address as the key.
    let ret = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n) };
    if ret < 0 {
        0
    } else {
        ret as usize
    }
}

/// `membarrier(2)` commands used by the asymmetric fence (uapi/linux/membarrier.h).
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

/// Registers this process to receive `MEMBARRIER_CMD_GLOBAL_EXPEDITED` barriers: from then on
/// a barrier issued by any process runs a full memory barrier on every running thread of this
/// one. False if the kernel (or a seccomp filter, or miri) does not allow it.
pub(crate) fn membarrier_register_global_expedited() -> bool {
    if cfg!(miri) {
        return false;
    }
    // SAFETY: membarrier takes two integer arguments and touches no memory of ours.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
            0 as libc::c_int,
        )
    };
    ret == 0
}

/// Runs a full memory barrier on every running thread of every process that registered with
/// [`membarrier_register_global_expedited`] (and on this one). False if the call failed.
pub(crate) fn membarrier_global_expedited() -> bool {
    if cfg!(miri) {
        return false;
    }
    // SAFETY: as above.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_GLOBAL_EXPEDITED,
            0 as libc::c_int,
        )
    };
    ret == 0
}

/// Yields the CPU to another runnable thread.
pub(crate) fn yield_now() {
    std::thread::yield_now();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse() {
        let line = "1234 (a b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20";
        assert_eq!(parse_stat(line), ProcStat::Running { start_time: 777 });
        let zombie = "1234 (x) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 19 20";
        assert_eq!(parse_stat(zombie), ProcStat::Zombie);
        assert_eq!(parse_stat("garbage"), ProcStat::Unreadable);
        assert_eq!(parse_stat("1 (x) S 1 2"), ProcStat::Unreadable);
    }
}
