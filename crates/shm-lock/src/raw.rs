//! The raw robust-lock contract ([`RawRobustLock`]) and its implementation ([`RawLock`]), the
//! one lock under `Lock`, `RLock`, `Condition` and `Barrier`.
//!
//! See [`RawLock`] for the state table and the algorithm.

use shm_core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shm_core::sync::Poll;
use shm_core::{Deadline, EventCount, WaitStrategy};
use shm_core::{Liveness, LivenessProbe, OsProbe, ThreadWord};
use std::fmt;

const INCONSISTENT: u32 = 1;

/// How an acquisition that succeeded found the protected state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Acquired {
    /// Consistent: the previous holder released it normally.
    Clean,
    /// Flagged inconsistent: a holder died holding the lock (just now, or earlier and nobody
    /// has called [`mark_consistent`](RawRobustLock::mark_consistent) since).
    OwnerDied,
}

/// Why a raw acquisition failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawLockError {
    /// `try_lock`: a thread that may be alive holds the lock.
    WouldBlock,
    /// `lock_until`: the deadline passed.
    Timeout,
    /// The calling thread holds the lock already.
    Deadlock,
}

/// A robust lock that can live in memory shared between processes: the contract under the
/// generic [`RobustMutex`](crate::RobustMutex) and
/// [`RobustReentrantMutex`](crate::RobustReentrantMutex), as `lock_api::RawMutex` is for
/// `lock_api::Mutex`. Owner death is part of it: an acquisition reports whether a previous
/// holder died holding the lock.
///
/// # Safety
///
/// Implementations must guarantee:
/// - **Exclusion.** After `try_lock` or `lock_until` returned `Ok`, no other thread gets `Ok`
///   until the calling thread calls `unlock`, or its thread stops running (then it may be taken
///   over). A holder whose liveness is unknown is never taken over.
/// - **Owner death.** `Ok(Acquired::OwnerDied)` is returned exactly when the state is flagged
///   inconsistent at acquisition; a takeover from a dead holder sets the flag, and only
///   `mark_consistent` clears it.
/// - **Ownership.** `is_owned_by_current_thread` is true exactly while the calling thread
///   holds the lock (the re-entrant wrapper relies on it for soundness of its depth count).
/// - `Deadlock` is returned, instead of waiting, when the calling thread holds the lock.
/// - `lock_until` returns by `deadline` (plus scheduling delay).
pub unsafe trait RawRobustLock: Sync {
    /// Tries to acquire without waiting.
    ///
    /// # Errors
    ///
    /// [`RawLockError::WouldBlock`] if a thread that may be alive holds it,
    /// [`RawLockError::Deadlock`] if the calling thread holds it.
    fn try_lock(&self) -> Result<Acquired, RawLockError>;

    /// Acquires, waiting per `strategy` until `deadline`.
    ///
    /// # Errors
    ///
    /// [`RawLockError::Timeout`] when the deadline passed, [`RawLockError::Deadlock`] if the
    /// calling thread holds it.
    fn lock_until(
        &self,
        strategy: &WaitStrategy,
        deadline: Deadline,
    ) -> Result<Acquired, RawLockError>;

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The calling thread holds the lock.
    unsafe fn unlock(&self);

    /// Whether some thread holds the lock (a snapshot).
    fn is_locked(&self) -> bool;

    /// Whether the calling thread holds the lock.
    fn is_owned_by_current_thread(&self) -> bool;

    /// Whether the state is flagged inconsistent (a snapshot).
    fn is_inconsistent(&self) -> bool;

    /// Clears the inconsistent flag: the protected state has been repaired.
    ///
    /// # Safety
    ///
    /// The calling thread holds the lock.
    unsafe fn mark_consistent(&self);
}

/// The robust lock word: 24 bytes (`#[repr(C)]`, align 8, atomics only; all-zero bytes are an
/// unlocked, consistent lock), embeddable in any segment body ([`LockState`](crate::LockState)
/// is its name as `Lock`'s state).
///
/// # State
///
/// | field | values | meaning |
/// |---|---|---|
/// | `owner` | `0` | free |
/// | | a thread identity word ([`ThreadWord`]) | held by that thread |
/// | `ec` | eventcount | waiters sleep on it; an unlock notifies it |
/// | `flags` | bit 0 `INCONSISTENT` | a holder died; cleared by `mark_consistent` |
///
/// Lock: one `compare_exchange(0 -> me)` on `owner` (Acquire) and one load of `flags`.
/// Unlock: one store of 0 to `owner` (Release), then the eventcount's notify, which makes a
/// syscall only if a waiter announced itself. The owner *is* the lock word, so there is no
/// window in which the lock is held without an owner that waiters can check: a holder killed at
/// any instruction leaves either a free lock or its own identity in `owner`.
///
/// A waiter waits through [`EventCount::wait_until`], the one wait loop of the workspace (its
/// spin phase, its sleep, its fast fence): it retries the compare-and-swap on every poll, and
/// after every sleep slice without a wake-up it asks the [`LivenessProbe`] about the owner. Only
/// a [`Liveness::Dead`] owner is taken over, by `compare_exchange(dead -> me)` (so exactly one
/// waiter wins), which also sets `INCONSISTENT`. An `Unknown` owner is waited for like a live
/// one: nothing is taken on a guess.
///
/// Every bit pattern another process can write is a valid state: an unknown owner word is
/// alive, dead or unknown, and `flags` only changes what is reported.
#[repr(C, align(8))]
pub struct RawLock {
    owner: AtomicU64,
    ec: EventCount,
    flags: AtomicU32,
    _reserved: AtomicU32,
}

/// Size of a [`RawLock`] in bytes.
pub const RAW_LOCK_SIZE: usize = 24;

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<RawLock>() == RAW_LOCK_SIZE);
    assert!(std::mem::align_of::<RawLock>() == 8);
    assert!(std::mem::offset_of!(RawLock, owner) == 0);
    assert!(std::mem::offset_of!(RawLock, ec) == 8);
    assert!(std::mem::offset_of!(RawLock, flags) == 16);
};

impl RawLock {
    /// An unlocked, consistent lock.
    pub fn new() -> RawLock {
        RawLock {
            owner: AtomicU64::new(0),
            ec: EventCount::new(),
            flags: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
        }
    }

    /// The raw owner word (0 when free), for diagnostics (`shm-ipc inspect`).
    pub fn owner_word(&self) -> u64 {
        self.owner.load(Ordering::Relaxed)
    }

    /// Writes the owner word as another process could (unit tests and loom models).
    #[cfg(test)]
    pub(crate) fn forge_owner(&self, word: u64) {
        self.owner.store(word, Ordering::Relaxed);
    }

    /// One attempt: `Ok` or `Err(current owner)`.
    #[inline]
    fn try_once(&self, me: u64) -> Result<Acquired, u64> {
        match self
            .owner
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Ok(self.flagged()),
            Err(cur) => Err(cur),
        }
    }

    #[inline]
    fn flagged(&self) -> Acquired {
        if self.flags.load(Ordering::Relaxed) & INCONSISTENT != 0 {
            Acquired::OwnerDied
        } else {
            Acquired::Clean
        }
    }

    /// Takes the lock over from `cur` if the probe says that owner is dead.
    fn take_over(&self, cur: u64, me: u64, probe: &dyn LivenessProbe) -> bool {
        if cur == 0 || cur == me || probe.word_liveness(cur) != Liveness::Dead {
            return false;
        }
        if self
            .owner
            .compare_exchange(cur, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.flags.fetch_or(INCONSISTENT, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// [`RawRobustLock::try_lock`] asking `probe` about a holder (one check on contention).
    pub(crate) fn try_lock_with(
        &self,
        probe: &dyn LivenessProbe,
    ) -> Result<Acquired, RawLockError> {
        let me = ThreadWord::current().get();
        match self.try_once(me) {
            Ok(a) => Ok(a),
            Err(cur) if cur == me => Err(RawLockError::Deadlock),
            Err(cur) => {
                if self.take_over(cur, me, probe) {
                    Ok(Acquired::OwnerDied)
                } else {
                    // The holder may have released it in between.
                    self.try_once(me).map_err(|_| RawLockError::WouldBlock)
                }
            }
        }
    }

    /// [`RawRobustLock::lock_until`] asking `probe` about a holder.
    #[inline]
    pub(crate) fn lock_with(
        &self,
        strategy: &WaitStrategy,
        deadline: Deadline,
        probe: &dyn LivenessProbe,
    ) -> Result<Acquired, RawLockError> {
        let me = ThreadWord::current().get();
        match self.try_once(me) {
            Ok(a) => Ok(a),
            Err(cur) if cur == me => Err(RawLockError::Deadlock),
            Err(_) => self.lock_slow(me, strategy, deadline, probe),
        }
    }

    #[cold]
    fn lock_slow(
        &self,
        me: u64,
        strategy: &WaitStrategy,
        deadline: Deadline,
        probe: &dyn LivenessProbe,
    ) -> Result<Acquired, RawLockError> {
        let got = self.ec.wait_until(strategy, deadline, |poll| {
            let cur = match self.try_once(me) {
                Ok(a) => return Some(a),
                Err(cur) => cur,
            };
            // After every slice without a wake-up (busy-polling waits get them by the clock).
            if poll == Poll::Slice && self.take_over(cur, me, probe) {
                return Some(Acquired::OwnerDied);
            }
            None
        });
        match got {
            Some(a) => Ok(a),
            // A last chance for a dead holder, so that a timed attempt on a lock whose owner
            // died reports it instead of a timeout.
            None if self.take_over(self.owner.load(Ordering::Relaxed), me, probe) => {
                Ok(Acquired::OwnerDied)
            }
            None => Err(RawLockError::Timeout),
        }
    }

    /// Whether the calling thread holds the lock.
    #[inline]
    pub(crate) fn held_by_me(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == ThreadWord::current().get()
    }

    /// Releases (the caller holds it).
    #[inline]
    fn release(&self) {
        self.owner.store(0, Ordering::Release);
        // The eventcount's notify fences (or, with membarrier, lets the waiter fence for us)
        // between the store above and its check for waiters.
        self.ec.notify_one();
    }
}

impl Default for RawLock {
    fn default() -> Self {
        RawLock::new()
    }
}

impl fmt::Debug for RawLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawLock")
            .field("owner", &self.owner_word())
            .field("inconsistent", &self.is_inconsistent())
            .finish()
    }
}

// SAFETY: exclusion by the compare-and-swap from 0 (or from a dead owner, which the probe
// answered `Dead` for: `OsProbe` says so only for a thread that no longer runs, and never for an
// unknown one); the flag is set on every takeover and cleared only by `mark_consistent`;
// `owner` holds the holder's thread word, unique among running threads, so
// `is_owned_by_current_thread` is exact; `Deadlock` is checked before any wait; waits are
// bounded by `EventCount::wait_until`'s deadline.
unsafe impl RawRobustLock for RawLock {
    #[inline]
    fn try_lock(&self) -> Result<Acquired, RawLockError> {
        self.try_lock_with(&OsProbe)
    }

    #[inline]
    fn lock_until(
        &self,
        strategy: &WaitStrategy,
        deadline: Deadline,
    ) -> Result<Acquired, RawLockError> {
        self.lock_with(strategy, deadline, &OsProbe)
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.release();
    }

    fn is_locked(&self) -> bool {
        self.owner.load(Ordering::Relaxed) != 0
    }

    #[inline]
    fn is_owned_by_current_thread(&self) -> bool {
        self.held_by_me()
    }

    fn is_inconsistent(&self) -> bool {
        self.flagged() == Acquired::OwnerDied
    }

    unsafe fn mark_consistent(&self) {
        self.flags.fetch_and(!INCONSISTENT, Ordering::Relaxed);
    }
}
