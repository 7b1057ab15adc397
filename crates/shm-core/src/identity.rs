//! Process identity that survives pid reuse.

use crate::os;
use std::fmt;

/// A process identity: its pid and its start time.
///
/// Pids are recycled; the pair (pid, start time) is not. The start time is the kernel's
/// `starttime` of `/proc/<pid>/stat` (clock ticks since boot), which never changes for the
/// life of a process and differs for a later process that reuses the pid. Segments record the
/// identity of their creator and of the endpoints that hold a role, so that a waiter can tell a
/// dead peer from a slow one.
///
/// # Examples
///
/// ```
/// use shm_core::ProcessId;
///
/// let me = ProcessId::current();
/// assert!(me.is_alive());
/// assert_eq!(me.pid(), std::process::id());
/// assert_eq!(ProcessId::of(me.pid()), Some(me));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessId {
    pid: u32,
    start_time: u64,
}

impl ProcessId {
    /// The identity of the calling process.
    ///
    /// Falls back to a start time of 0 if `/proc` cannot be read, in which case liveness checks
    /// compare the pid only.
    pub fn current() -> ProcessId {
        let pid = std::process::id();
        ProcessId {
            pid,
            start_time: os::process_start_time(pid).unwrap_or(0),
        }
    }

    /// The identity of the live process `pid`, or `None` if there is no such process (or it is a
    /// zombie: it has exited and only waits to be reaped).
    pub fn of(pid: u32) -> Option<ProcessId> {
        if pid == 0 {
            return None;
        }
        let start_time = os::process_start_time(pid)?;
        Some(ProcessId { pid, start_time })
    }

    /// Rebuilds an identity from the two numbers stored in a segment.
    ///
    /// The values come from shared memory and are not trusted: an identity with pid 0 is
    /// never alive.
    pub const fn from_parts(pid: u32, start_time: u64) -> ProcessId {
        ProcessId { pid, start_time }
    }

    /// The process id.
    pub const fn pid(&self) -> u32 {
        self.pid
    }

    /// The start time in clock ticks since boot (0 if unknown).
    pub const fn start_time(&self) -> u64 {
        self.start_time
    }

    /// Whether this process is still running.
    ///
    /// False when the pid does not exist, belongs to a zombie, or was reused by a later
    /// process (its start time differs). A start time of 0 (unknown) compares the pid only.
    pub fn is_alive(&self) -> bool {
        if self.pid == 0 || self.pid > i32::MAX as u32 {
            return false;
        }
        match os::process_start_time(self.pid) {
            Some(t) => self.start_time == 0 || t == self.start_time,
            None => false,
        }
    }

    /// Packs the identity into one `u64` for a single atomic word: the pid in the low 32 bits
    /// and the low 32 bits of the start time in the high ones.
    ///
    /// Used where a role claim must be one compare-and-swap. Zero means "nobody".
    pub const fn to_word(&self) -> u64 {
        (self.pid as u64) | ((self.start_time & 0xffff_ffff) << 32)
    }

    /// Inverse of [`to_word`](Self::to_word). The start time keeps only its low 32 bits, which
    /// is still enough to tell a reused pid (it would have to start exactly 2^32 ticks later).
    pub const fn from_word(word: u64) -> ProcessId {
        ProcessId {
            pid: word as u32,
            start_time: word >> 32,
        }
    }

    /// Whether a packed word names a live process (see [`to_word`](Self::to_word)).
    pub fn word_is_alive(word: u64) -> bool {
        let id = ProcessId::from_word(word);
        if id.pid == 0 || id.pid > i32::MAX as u32 {
            return false;
        }
        match os::process_start_time(id.pid) {
            Some(t) => id.start_time == 0 || (t & 0xffff_ffff) == id.start_time,
            None => false,
        }
    }
}

impl fmt::Debug for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ProcessId(pid {}, started at tick {})",
            self.pid, self.start_time
        )
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {}", self.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn current_is_alive_and_round_trips() {
        let me = ProcessId::current();
        assert!(me.is_alive());
        assert!(ProcessId::word_is_alive(me.to_word()));
        assert_eq!(ProcessId::from_word(me.to_word()).pid(), me.pid());
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn reused_pid_is_not_alive() {
        let me = ProcessId::current();
        let other = ProcessId::from_parts(me.pid(), me.start_time() + 1);
        assert!(!other.is_alive());
        assert!(!ProcessId::from_parts(0, 0).is_alive());
        assert!(!ProcessId::from_parts(u32::MAX, 0).is_alive());
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // The pid could in principle be reused at once; the identity must still not match a
        // process that started later, so only assert when the pid is free.
        if let Some(id) = ProcessId::of(pid) {
            assert!(id.is_alive());
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn zombie_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let id = ProcessId::from_parts(pid, 0);
        // Wait until it has exited but do not reap it yet: it is a zombie.
        let mut waited = 0;
        while id.is_alive() && waited < 10_000 {
            std::thread::sleep(std::time::Duration::from_millis(1));
            waited += 1;
        }
        assert!(
            !id.is_alive(),
            "an exited, unreaped child must count as dead"
        );
        child.wait().unwrap();
    }
}
