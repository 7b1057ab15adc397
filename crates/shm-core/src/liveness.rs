//! Is the process (or thread) named by an identity still running? One answer for the whole
//! workspace: [`Liveness`], asked through a [`LivenessProbe`].
//!
//! # The three answers
//!
//! | answer | meaning | what a caller may do |
//! |---|---|---|
//! | [`Liveness::Alive`] | the process exists, is not a zombie, and started when the identity says | wait for it |
//! | [`Liveness::Dead`] | no such pid, a zombie (exited, not yet reaped), or the pid now belongs to a process that started later | take over its lock or role, report `OwnerDied`/`Disconnected` |
//! | [`Liveness::Unknown`] | the pid exists but its start time cannot be read (`/proc` missing, or another user's process under `hidepid`) | treat as alive: **never** take anything on a guess |
//!
//! # How the OS probe decides ([`OsProbe`])
//!
//! 1. Pid 0 and pids above `i32::MAX` are no process: `Dead`.
//! 2. `kill(pid, 0)`: `ESRCH` means no such process (`Dead`); success or `EPERM` means it
//!    exists (it may be another user's).
//! 3. `/proc/<pid>/stat`: state `Z`/`X` is a zombie (`Dead`); a start time different from the
//!    recorded one means the pid was reused (`Dead`); otherwise `Alive`. A recorded start time of
//!    0 (the recorder could not read its own) compares the pid only.
//! 4. If `/proc/<pid>/stat` cannot be read although the pid exists, `kill` is asked again (the
//!    process may just have been reaped): `Dead` if it is gone, else `Unknown`.
//!
//! Thread ids share the pid space on Linux, so the same probe answers for a [`ThreadWord`]:
//! `/proc/<tid>/stat` exists exactly while that thread runs (a thread that exited is `Dead`).
//!
//! Under `--cfg loom` and under miri there is no OS to ask: the OS probe answers `Unknown` for
//! every non-zero word, and [`ThreadWord`]s come from a process-local counter.
//!
//! # Injecting deaths (loom models, heap homes)
//!
//! Algorithms that decide on liveness (lock-owner takeover, role claims) take a
//! `&dyn LivenessProbe` (or a generic `P: LivenessProbe`) instead of asking the OS themselves.
//! Production code passes [`OsProbe`]; a loom model passes a closure, which is a probe too
//! (`impl<F: Fn(u64) -> Liveness> LivenessProbe for F`), and flips a loom atomic to "kill" a
//! participant at a point loom chooses. Under `--cfg loom`, [`ThreadWord::current`] uses a
//! loom thread-local, so call it inside `loom::model` (each model thread gets its own word);
//! the model `liveness::loom_tests::injected_death_allows_takeover_and_never_before` in this
//! crate is a complete example. Outside loom it looks like this:
//!
//! ```
//! use shm_core::{Liveness, LivenessProbe, ThreadWord};
//! use shm_core::sync::atomic::{AtomicBool, Ordering};
//!
//! // In a loom model these would be loom's atomics (shm_core::sync::atomic under --cfg loom).
//! let victim = ThreadWord::current();
//! let killed = AtomicBool::new(false);
//! let probe = |word: u64| {
//!     if word == victim.get() && killed.load(Ordering::Acquire) {
//!         Liveness::Dead
//!     } else {
//!         Liveness::Alive
//!     }
//! };
//! assert_eq!(victim.liveness_with(&probe), Liveness::Alive);
//! killed.store(true, Ordering::Release); // the victim "dies" here
//! assert_eq!(victim.liveness_with(&probe), Liveness::Dead);
//! assert_eq!(probe.word_liveness(0), Liveness::Alive); // a probe answers what it is told
//! ```

use crate::os;
use crate::ProcessId;
use std::fmt;
use std::num::NonZeroU64;

/// Whether a process or thread is still running. See the [module docs](self) for how the
/// answer is found and what each answer allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// It runs, and it is the same process (or thread) as recorded.
    Alive,
    /// It exited, is a zombie, or its id now belongs to a later process.
    Dead,
    /// It exists, but whether it is the recorded one cannot be told (no `/proc`, `hidepid`).
    /// Treat as alive: never take a lock or role from an `Unknown` holder.
    Unknown,
}

impl Liveness {
    /// True only for [`Liveness::Dead`]: the one answer that lets a caller take something over.
    pub const fn is_dead(self) -> bool {
        matches!(self, Liveness::Dead)
    }

    /// True for [`Liveness::Alive`] and [`Liveness::Unknown`]: the holder must be respected.
    pub const fn may_be_alive(self) -> bool {
        !self.is_dead()
    }
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Liveness::Alive => "alive",
            Liveness::Dead => "dead",
            Liveness::Unknown => "unknown",
        })
    }
}

/// Answers whether the holder of an identity word still runs.
///
/// A word is a [`ProcessId::to_word`] (pid and the low 32 bits of its start time) or a
/// [`ThreadWord`] (the same format for a thread). [`OsProbe`] asks the operating system; tests
/// and loom models inject their own answers, and any `Fn(u64) -> Liveness` is a probe. See the
/// [module docs](self) for an example.
pub trait LivenessProbe {
    /// The liveness of the holder named by `word`.
    fn word_liveness(&self, word: u64) -> Liveness;

    /// The liveness of a full process identity. By default the identity's word is asked.
    fn process_liveness(&self, id: ProcessId) -> Liveness {
        self.word_liveness(id.to_word())
    }
}

impl<F: Fn(u64) -> Liveness + ?Sized> LivenessProbe for F {
    fn word_liveness(&self, word: u64) -> Liveness {
        self(word)
    }
}

/// The operating system's answer (`kill(pid, 0)` and `/proc/<pid>/stat`), as described in the
/// [module docs](self). The default probe everywhere outside tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OsProbe;

impl LivenessProbe for OsProbe {
    fn word_liveness(&self, word: u64) -> Liveness {
        os_liveness(word as u32, word >> 32, 0xffff_ffff)
    }

    fn process_liveness(&self, id: ProcessId) -> Liveness {
        os_liveness(id.pid(), id.start_time(), u64::MAX)
    }
}

/// What the OS says about `pid`, compared with the recorded start time (`mask` selects the bits
/// of the real start time that were recorded).
#[cfg(not(any(loom, miri)))]
fn os_liveness(pid: u32, recorded_start: u64, mask: u64) -> Liveness {
    if pid == 0 || pid > i32::MAX as u32 {
        return Liveness::Dead;
    }
    if os::pid_exists(pid) == os::Exists::No {
        return Liveness::Dead;
    }
    let stat = os::proc_stat(pid);
    let recheck = || {
        if os::pid_exists(pid) == os::Exists::No {
            Liveness::Dead
        } else {
            Liveness::Unknown
        }
    };
    decide(stat, recorded_start, mask, recheck)
}

/// Under loom and miri there is no OS to ask (see the module docs).
#[cfg(any(loom, miri))]
fn os_liveness(pid: u32, _recorded_start: u64, _mask: u64) -> Liveness {
    if pid == 0 {
        Liveness::Dead
    } else {
        Liveness::Unknown
    }
}

/// The decision of steps 3 and 4, apart from the OS so that tests can forge every input.
#[cfg_attr(any(loom, miri), allow(dead_code))]
fn decide(
    stat: os::ProcStat,
    recorded_start: u64,
    mask: u64,
    recheck: impl FnOnce() -> Liveness,
) -> Liveness {
    match stat {
        os::ProcStat::Zombie => Liveness::Dead,
        os::ProcStat::Running { start_time } => {
            if recorded_start == 0 || start_time & mask == recorded_start {
                Liveness::Alive
            } else {
                Liveness::Dead
            }
        }
        os::ProcStat::Unreadable => recheck(),
    }
}

/// The identity of a thread, as a lock records its owner: one `u64` word, never 0.
///
/// On Linux the word is `tid | (start_time & 0xffff_ffff) << 32`, the [`ProcessId`] word
/// format applied to the kernel thread id (`gettid`) and that thread's start time. Thread ids
/// share the pid space, so the word names one thread on the whole machine, in any process, and
/// [`liveness`](Self::liveness) tells whether that thread still runs (a thread that exited is
/// [`Liveness::Dead`]; the start time defeats tid reuse).
///
/// The word is computed once per thread and cached in a thread-local, so
/// [`current`](Self::current) costs one thread-local read after the first call. A process made
/// with `fork()` without `exec` inherits the forking thread's cached word and must not use locks
/// from the child (shm-ipc starts children by re-executing, which is fine).
///
/// If `/proc` cannot be read, the start time part is 0 and liveness compares the tid only.
/// Under loom and miri the words come from a process-local counter (they name no OS thread) and
/// [`liveness`](Self::liveness) is [`Liveness::Unknown`]: models inject a [`LivenessProbe`] and
/// call [`liveness_with`](Self::liveness_with).
///
/// # Examples
///
/// ```
/// use shm_core::{Liveness, ThreadWord};
///
/// let me = ThreadWord::current();
/// assert_ne!(me.get(), 0);
/// assert_eq!(me, ThreadWord::current());
/// let other = std::thread::spawn(ThreadWord::current).join().unwrap();
/// assert_ne!(me, other);
/// # #[cfg(not(miri))]
/// assert_eq!(me.liveness(), Liveness::Alive);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThreadWord(NonZeroU64);

#[cfg(not(loom))]
std::thread_local! {
    static CURRENT_THREAD_WORD: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}
#[cfg(loom)]
loom::thread_local! {
    static CURRENT_THREAD_WORD: std::cell::Cell<u64> = std::cell::Cell::new(0);
}

impl ThreadWord {
    /// The word of the calling thread (cached after the first call).
    #[inline]
    pub fn current() -> ThreadWord {
        let w = CURRENT_THREAD_WORD.with(|c| {
            let w = c.get();
            if w != 0 {
                w
            } else {
                let w = compute_thread_word();
                c.set(w);
                w
            }
        });
        // compute_thread_word never returns 0.
        ThreadWord(NonZeroU64::new(w).unwrap_or(NonZeroU64::MIN))
    }

    /// A word read back from a segment, or `None` for 0 ("nobody").
    pub const fn from_u64(word: u64) -> Option<ThreadWord> {
        match NonZeroU64::new(word) {
            Some(w) => Some(ThreadWord(w)),
            None => None,
        }
    }

    /// The word, to store in a segment.
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The thread id part (the low 32 bits).
    pub const fn tid(self) -> u32 {
        self.0.get() as u32
    }

    /// Whether the thread still runs, asked of the OS ([`OsProbe`]).
    pub fn liveness(self) -> Liveness {
        OsProbe.word_liveness(self.get())
    }

    /// Whether the thread still runs, asked of `probe` (loom models, tests).
    pub fn liveness_with<P: LivenessProbe + ?Sized>(self, probe: &P) -> Liveness {
        probe.word_liveness(self.get())
    }
}

impl fmt::Debug for ThreadWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ThreadWord(tid {}, start {:#x})",
            self.tid(),
            self.get() >> 32
        )
    }
}

impl fmt::Display for ThreadWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread {}", self.tid())
    }
}

#[cfg(not(any(loom, miri)))]
fn compute_thread_word() -> u64 {
    let tid = os::gettid();
    let start = match os::proc_stat(tid) {
        os::ProcStat::Running { start_time } => start_time,
        _ => 0,
    };
    let w = ProcessId::from_parts(tid, start).to_word();
    if w == 0 {
        // No thread has tid 0; keep the "never 0" promise even if the OS said so.
        1 << 32
    } else {
        w
    }
}

#[cfg(any(loom, miri))]
fn compute_thread_word() -> u64 {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Process-local: never collides with another counter word; the high half marks them.
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed).max(1);
    ProcessId::from_parts(n, 0xfeed).to_word()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decide_covers_every_stat() {
        let never = || -> Liveness { unreachable!("no recheck needed") };
        assert_eq!(
            decide(os::ProcStat::Zombie, 5, u64::MAX, never),
            Liveness::Dead
        );
        let running = os::ProcStat::Running {
            start_time: 0x1_0000_0005,
        };
        assert_eq!(
            decide(running, 0x1_0000_0005, u64::MAX, never),
            Liveness::Alive
        );
        // Reused pid: another start time.
        assert_eq!(
            decide(running, 0x1_0000_0006, u64::MAX, never),
            Liveness::Dead
        );
        // Word form: only the low 32 bits were recorded.
        assert_eq!(decide(running, 5, 0xffff_ffff, never), Liveness::Alive);
        assert_eq!(decide(running, 6, 0xffff_ffff, never), Liveness::Dead);
        // Recorded start 0: pid only.
        assert_eq!(decide(running, 0, u64::MAX, never), Liveness::Alive);
        // /proc unreadable: whatever the re-check says, never a guess.
        assert_eq!(
            decide(os::ProcStat::Unreadable, 5, u64::MAX, || Liveness::Unknown),
            Liveness::Unknown
        );
        assert_eq!(
            decide(os::ProcStat::Unreadable, 5, u64::MAX, || Liveness::Dead),
            Liveness::Dead
        );
    }

    #[test]
    fn answers_and_display() {
        assert!(Liveness::Dead.is_dead());
        assert!(!Liveness::Unknown.is_dead());
        assert!(Liveness::Unknown.may_be_alive());
        assert!(Liveness::Alive.may_be_alive());
        assert_eq!(Liveness::Unknown.to_string(), "unknown");
    }

    #[test]
    fn thread_words_are_stable_distinct_and_nonzero() {
        let a = ThreadWord::current();
        assert_ne!(a.get(), 0);
        assert_eq!(a, ThreadWord::current());
        let b = std::thread::spawn(ThreadWord::current).join().unwrap();
        assert_ne!(a, b);
        assert_eq!(ThreadWord::from_u64(a.get()), Some(a));
        assert_eq!(ThreadWord::from_u64(0), None);
    }

    #[test]
    fn injected_probe_decides() {
        let me = ThreadWord::current();
        let dead = |_: u64| Liveness::Dead;
        let unknown = |_: u64| Liveness::Unknown;
        assert_eq!(me.liveness_with(&dead), Liveness::Dead);
        assert_eq!(me.liveness_with(&unknown), Liveness::Unknown);
        let probe: &dyn LivenessProbe = &dead;
        assert_eq!(
            probe.process_liveness(ProcessId::from_parts(1, 1)),
            Liveness::Dead
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn current_thread_is_alive_and_exited_thread_is_dead() {
        assert_eq!(ThreadWord::current().liveness(), Liveness::Alive);
        let other = std::thread::spawn(ThreadWord::current).join().unwrap();
        // A joined thread leaves /proc shortly after the join returns.
        let mut tries = 0;
        while other.liveness() != Liveness::Dead && tries < 5000 {
            std::thread::sleep(std::time::Duration::from_millis(1));
            tries += 1;
        }
        assert_eq!(other.liveness(), Liveness::Dead);
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn impossible_pids_are_dead() {
        assert_eq!(OsProbe.word_liveness(0), Liveness::Dead);
        assert_eq!(OsProbe.word_liveness(u32::MAX as u64), Liveness::Dead);
        assert_eq!(
            OsProbe.process_liveness(ProcessId::from_parts(0x8000_0000, 0)),
            Liveness::Dead
        );
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use loom::sync::Arc;

    /// The pattern other crates' models follow: a holder word in "shared memory", a probe that
    /// reads a loom atomic, and a death injected at a point loom chooses. The taker takes the
    /// word over only once the probe says Dead, so it never takes it from a live holder.
    #[test]
    fn injected_death_allows_takeover_and_never_before() {
        loom::model(|| {
            const HOLDER: u64 = 7;
            const TAKER: u64 = 9;
            let word = Arc::new(AtomicU64::new(HOLDER));
            let dead = Arc::new(AtomicBool::new(false));
            let holder_done = Arc::new(AtomicBool::new(false));
            let (w2, d2, h2) = (word.clone(), dead.clone(), holder_done.clone());
            let holder = loom::thread::spawn(move || {
                // The holder works while holding the word, then dies without releasing it.
                assert_eq!(w2.load(Ordering::Acquire), HOLDER, "robbed while alive");
                h2.store(true, Ordering::Release);
                d2.store(true, Ordering::Release);
            });
            let probe = |w: u64| {
                if w == HOLDER && dead.load(Ordering::Acquire) {
                    Liveness::Dead
                } else if w == HOLDER {
                    Liveness::Alive
                } else {
                    Liveness::Unknown
                }
            };
            let cur = word.load(Ordering::Acquire);
            if probe.word_liveness(cur).is_dead()
                && word
                    .compare_exchange(cur, TAKER, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                // Dead was observed, so the holder had finished its work.
                assert!(holder_done.load(Ordering::Acquire));
            }
            holder.join().unwrap();
            // After the death the takeover always succeeds; Unknown is never taken.
            let cur = word.load(Ordering::Acquire);
            if cur == HOLDER {
                assert!(probe.word_liveness(cur).is_dead());
            } else {
                assert_eq!(cur, TAKER);
                assert!(!probe.word_liveness(cur).is_dead(), "Unknown is not dead");
            }
        });
    }
}
