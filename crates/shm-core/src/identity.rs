//! Process identity that survives pid reuse.

use crate::liveness::{Liveness, LivenessProbe, OsProbe};
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
/// use shm_core::{Liveness, ProcessId};
///
///
/// let me = ProcessId::current();
/// assert_eq!(me.liveness(), Liveness::Alive);
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
        use std::sync::atomic::{AtomicU64, Ordering};
        // Cached per pid (a forked child has another pid and recomputes).
        static CACHED_PID: AtomicU64 = AtomicU64::new(0);
        static CACHED_START: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        if CACHED_PID.load(Ordering::Acquire) == u64::from(pid) {
            return ProcessId {
                pid,
                start_time: CACHED_START.load(Ordering::Relaxed),
            };
        }
        let start_time = os::process_start_time(pid).unwrap_or(0);
        CACHED_START.store(start_time, Ordering::Relaxed);
        CACHED_PID.store(u64::from(pid), Ordering::Release);
        ProcessId { pid, start_time }
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

    /// Whether this process is still running, asked of the OS (see [`crate::liveness`]).
    ///
    /// [`Liveness::Dead`] when the pid does not exist, belongs to a zombie, or was reused by a
    /// later process (its start time differs); [`Liveness::Unknown`] when the pid exists but
    /// `/proc` cannot tell whether it is this process. A start time of 0 (unknown when recorded)
    /// compares the pid only.
    pub fn liveness(&self) -> Liveness {
        OsProbe.process_liveness(*self)
    }

    /// Whether this process is still running, asked of `probe` (tests, loom models).
    pub fn liveness_with<P: LivenessProbe + ?Sized>(&self, probe: &P) -> Liveness {
        probe.process_liveness(*self)
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

    /// Whether the process (or thread, see [`ThreadWord`](crate::ThreadWord)) named by a packed
    /// word still runs, asked of the OS. Only the low 32 bits of the start time are compared.
    pub fn word_liveness(word: u64) -> Liveness {
        OsProbe.word_liveness(word)
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
    use std::time::Duration;

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn current_is_alive_and_round_trips() {
        let me = ProcessId::current();
        assert_eq!(me.liveness(), Liveness::Alive);
        assert_eq!(ProcessId::word_liveness(me.to_word()), Liveness::Alive);
        assert_eq!(ProcessId::from_word(me.to_word()).pid(), me.pid());
        assert_ne!(
            me.start_time(),
            0,
            "/proc is readable in the test environment"
        );
        assert_eq!(ProcessId::current(), me, "cached identity is the same");
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn reused_pid_is_dead() {
        let me = ProcessId::current();
        // The same pid with another start time: a later process that reused the pid.
        let other = ProcessId::from_parts(me.pid(), me.start_time() + 1);
        assert_eq!(other.liveness(), Liveness::Dead);
        assert_eq!(
            ProcessId::word_liveness(other.to_word()),
            Liveness::Dead,
            "the word form compares the low 32 bits of the start time"
        );
        assert_eq!(ProcessId::from_parts(0, 0).liveness(), Liveness::Dead);
        assert_eq!(
            ProcessId::from_parts(u32::MAX, 0).liveness(),
            Liveness::Dead
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn reaped_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = ProcessId::of(child.id());
        child.wait().unwrap();
        // Recorded while it ran (if it had not already exited), it must be dead once reaped:
        // even if the pid is reused at once, the start time differs.
        if let Some(id) = id {
            assert_eq!(id.liveness(), Liveness::Dead);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn running_child_is_alive_then_dead() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let id = ProcessId::of(child.id()).expect("a running child has an identity");
        assert_eq!(id.liveness(), Liveness::Alive);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(id.liveness(), Liveness::Dead);
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn zombie_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let id = ProcessId::from_parts(pid, 0);
        // Wait until it has exited but do not reap it yet: it is a zombie, and kill(pid, 0)
        // still succeeds on it, so only /proc's state tells.
        let mut waited = 0;
        while id.liveness() != Liveness::Dead && waited < 10_000 {
            std::thread::sleep(Duration::from_millis(1));
            waited += 1;
        }
        assert_eq!(
            crate::os::pid_exists(pid),
            crate::os::Exists::Yes,
            "unreaped: the pid still exists"
        );
        assert_eq!(
            id.liveness(),
            Liveness::Dead,
            "an exited, unreaped child must count as dead"
        );
        child.wait().unwrap();
    }

    #[test]
    fn injected_probe_answers_unknown() {
        let unknown = |_: u64| Liveness::Unknown;
        let id = ProcessId::from_parts(42, 7);
        assert_eq!(id.liveness_with(&unknown), Liveness::Unknown);
        assert!(id.liveness_with(&unknown).may_be_alive());
    }
}
