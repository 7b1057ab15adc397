//! The generic safe wrappers over a [`RawRobustLock`]: [`RobustMutex`] and
//! [`RobustReentrantMutex`], borrowed views of a lock that lives somewhere (a segment, another
//! object's segment, the heap), and their guards. `Lock` and `RLock` are owning handles over
//! them (see `handle.rs`).

use crate::error::{
    DeadlockError, LockError, LockTimeoutError, OwnerDiedError, ReentrantTimeoutError, TryLockError,
};
use crate::raw::{Acquired, RawLock, RawLockError, RawRobustLock};
use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::{Deadline, WaitStrategy};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

/// The control block of a [`Lock`](crate::Lock): a [`RawLock`] (24 bytes, all-zero is
/// unlocked), embeddable in any segment body.
pub type LockState = RawLock;

/// Size of a [`LockState`] in bytes.
pub const LOCK_STATE_SIZE: usize = crate::raw::RAW_LOCK_SIZE;

/// The control block of an [`RLock`](crate::RLock): a [`RawLock`] and the depth count (32
/// bytes, all-zero is unlocked), embeddable in any segment body.
pub type RLockState = ReentrantState<RawLock>;

/// Size of an [`RLockState`] in bytes.
pub const RLOCK_STATE_SIZE: usize = 32;

/// A borrowed robust lock over a [`LockState`] (see [`RobustMutex`]).
pub type LockRef<'a> = RobustMutex<'a, RawLock>;

/// A borrowed robust re-entrant lock over an [`RLockState`] (see [`RobustReentrantMutex`]).
pub type RLockRef<'a> = RobustReentrantMutex<'a, RawLock>;

/// The guard of a [`Lock`](crate::Lock) or [`LockRef`].
pub type LockGuard<'a> = MutexGuard<'a, RawLock>;

/// The guard of an [`RLock`](crate::RLock) or [`RLockRef`] (one level).
pub type RLockGuard<'a> = ReentrantMutexGuard<'a, RawLock>;

fn no_deadline<T>(r: RawLockError) -> T {
    // The contract: Timeout only when a deadline passed, WouldBlock only from try_lock.
    unreachable!("RawRobustLock contract broken: {r:?} from lock_until without a deadline")
}

// ---------------------------------------------------------------------------------------------
// RobustMutex

/// A robust mutual-exclusion lock over a raw lock `R` that lives elsewhere (a `Copy` view).
///
/// Acquisitions report owner death: if a holder died holding the lock, [`lock`](Self::lock)
/// returns [`LockError::OwnerDied`] *without* holding it, and keeps saying so to every caller
/// until one takes it with [`recover`](Self::recover) and calls
/// [`mark_consistent`](MutexGuard::mark_consistent) (see the crate docs, "Owner death").
///
/// # Examples
///
/// ```
/// use shm_lock::{LockRef, LockState};
///
/// let state = LockState::new();
/// let lock = LockRef::new(&state);
/// let guard = lock.lock()?;
/// assert!(lock.try_lock().is_err());
/// drop(guard);
/// assert!(lock.try_lock().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RobustMutex<'a, R: RawRobustLock = RawLock> {
    raw: &'a R,
    strategy: WaitStrategy,
}

impl<R: RawRobustLock> Clone for RobustMutex<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: RawRobustLock> Copy for RobustMutex<'_, R> {}

impl<'a, R: RawRobustLock> RobustMutex<'a, R> {
    /// A lock over `raw`, waiting with the default [`WaitStrategy`].
    pub fn new(raw: &'a R) -> Self {
        RobustMutex {
            raw,
            strategy: WaitStrategy::default(),
        }
    }

    /// A lock over the raw lock at `raw`.
    ///
    /// # Safety
    ///
    /// `raw` points to an initialised `R` (for [`RawLock`]: [`RawLock::new`] or all-zero
    /// bytes) that stays mapped for `'a`. Others may write it through atomics meanwhile.
    pub unsafe fn from_ptr(raw: NonNull<R>) -> Self {
        // SAFETY: the caller guarantees a live, initialised R for 'a; raw locks are atomics
        // only, so a shared reference is fine while other threads and processes use it.
        RobustMutex::new(unsafe { raw.as_ref() })
    }

    /// The same lock, waiting with `strategy`.
    pub fn with_wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// How blocked calls wait.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// The raw lock.
    pub fn raw(&self) -> &'a R {
        self.raw
    }

    fn guard(&self) -> MutexGuard<'a, R> {
        MutexGuard {
            raw: self.raw,
            _not_send: PhantomData,
        }
    }

    /// Turns an acquisition into a guard, or into `OwnerDied` after releasing again.
    #[inline]
    fn checked(&self, a: Acquired) -> Result<MutexGuard<'a, R>, ()> {
        match a {
            Acquired::Clean => Ok(self.guard()),
            Acquired::OwnerDied => {
                // SAFETY: we just acquired it. The flag stays set for the next acquirer.
                unsafe { self.raw.unlock() };
                Err(())
            }
        }
    }

    /// Acquires the lock, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] if a previous holder died holding it (the lock is not held:
    /// use [`recover`](Self::recover)); [`LockError::Deadlock`] if this thread holds it.
    #[inline]
    pub fn lock(&self) -> Result<MutexGuard<'a, R>, LockError> {
        match self.raw.lock_until(&self.strategy, Deadline::NEVER) {
            Ok(a) => self.checked(a).map_err(|()| LockError::OwnerDied),
            Err(RawLockError::Deadlock) => Err(LockError::Deadlock),
            Err(e) => no_deadline(e),
        }
    }

    /// Acquires the lock if that needs no waiting. On contention, checks once whether the
    /// holder is alive (and takes the lock over if it is dead).
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if a thread holds it (this one included),
    /// [`TryLockError::OwnerDied`] as for [`lock`](Self::lock).
    pub fn try_lock(&self) -> Result<MutexGuard<'a, R>, TryLockError> {
        match self.raw.try_lock() {
            Ok(a) => self.checked(a).map_err(|()| TryLockError::OwnerDied),
            Err(_) => Err(TryLockError::WouldBlock),
        }
    }

    /// Acquires the lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockTimeoutError::Timeout`] if a live thread held it all along; otherwise as
    /// [`lock`](Self::lock).
    pub fn try_lock_for(&self, timeout: Duration) -> Result<MutexGuard<'a, R>, LockTimeoutError> {
        match self
            .raw
            .lock_until(&self.strategy, Deadline::after(timeout))
        {
            Ok(a) => self.checked(a).map_err(|()| LockTimeoutError::OwnerDied),
            Err(RawLockError::Deadlock) => Err(LockTimeoutError::Deadlock),
            Err(_) => Err(LockTimeoutError::Timeout),
        }
    }

    /// Acquires the lock whether or not it is flagged: the way to take a lock whose owner died.
    /// Check [`MutexGuard::is_inconsistent`], repair the protected data, then call
    /// [`MutexGuard::mark_consistent`]; a guard dropped without that leaves the lock flagged.
    ///
    /// # Errors
    ///
    /// [`DeadlockError`] if this thread holds it.
    pub fn recover(&self) -> Result<MutexGuard<'a, R>, DeadlockError> {
        match self.raw.lock_until(&self.strategy, Deadline::NEVER) {
            Ok(_) => Ok(self.guard()),
            Err(RawLockError::Deadlock) => Err(DeadlockError),
            Err(e) => no_deadline(e),
        }
    }

    /// Whether some thread holds the lock (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Whether the lock is flagged: a holder died and nobody has marked it consistent since.
    pub fn is_inconsistent(&self) -> bool {
        self.raw.is_inconsistent()
    }
}

impl<R: RawRobustLock> fmt::Debug for RobustMutex<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobustMutex")
            .field("locked", &self.is_locked())
            .field("inconsistent", &self.is_inconsistent())
            .finish()
    }
}

/// Proof of holding a [`RobustMutex`]; releases on drop. Not `Send`: the owner is the thread.
///
/// ```compile_fail
/// let lock = shm_lock::Lock::new();
/// let guard = lock.lock().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // a guard cannot move to another thread
/// });
/// ```
#[must_use = "the lock is released when the guard drops"]
pub struct MutexGuard<'a, R: RawRobustLock = RawLock> {
    raw: &'a R,
    _not_send: PhantomData<*const ()>,
}

impl<'a, R: RawRobustLock> MutexGuard<'a, R> {
    /// Clears the owner-died flag: the protected data is consistent again.
    pub fn mark_consistent(&self) {
        // SAFETY: the guard proves that this thread holds the lock.
        unsafe { self.raw.mark_consistent() }
    }

    /// Whether the protected data is flagged inconsistent (only after
    /// [`recover`](RobustMutex::recover)).
    pub fn is_inconsistent(&self) -> bool {
        self.raw.is_inconsistent()
    }

    /// A guard for a lock the caller holds (crate-internal users of the raw lock).
    pub(crate) fn assume_held(raw: &'a R) -> Self {
        MutexGuard {
            raw,
            _not_send: PhantomData,
        }
    }
}

impl<R: RawRobustLock> Drop for MutexGuard<'_, R> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard proves that this thread holds the lock.
        unsafe { self.raw.unlock() }
    }
}

impl<R: RawRobustLock> fmt::Debug for MutexGuard<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("inconsistent", &self.is_inconsistent())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// RobustReentrantMutex

/// The control block of a re-entrant lock: a raw lock and the holder's nesting depth
/// (`#[repr(C)]`; for [`RawLock`] 32 bytes, all-zero is unlocked).
///
/// | field | meaning |
/// |---|---|
/// | `raw` | the lock |
/// | `depth` | how many guards the holder has (written only by the holder; any value is valid) |
#[repr(C, align(8))]
pub struct ReentrantState<R = RawLock> {
    raw: R,
    depth: AtomicU64,
}

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<RLockState>() == RLOCK_STATE_SIZE);
    assert!(std::mem::align_of::<RLockState>() == 8);
    assert!(std::mem::offset_of!(RLockState, depth) == 24);
};

impl<R: RawRobustLock> ReentrantState<R> {
    /// A control block over `raw` with depth 0.
    pub fn with_raw(raw: R) -> Self {
        ReentrantState {
            raw,
            depth: AtomicU64::new(0),
        }
    }

    /// The raw lock.
    pub fn raw(&self) -> &R {
        &self.raw
    }
}

impl ReentrantState<RawLock> {
    /// An unlocked control block.
    pub fn new() -> Self {
        ReentrantState::with_raw(RawLock::new())
    }
}

impl Default for ReentrantState<RawLock> {
    fn default() -> Self {
        ReentrantState::new()
    }
}

impl<R: RawRobustLock + fmt::Debug> fmt::Debug for ReentrantState<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReentrantState")
            .field("raw", &self.raw)
            .field("depth", &self.depth.load(Ordering::Relaxed))
            .finish()
    }
}

/// Why a re-entrant acquisition failed (internal).
enum Fail {
    OwnerDied,
    Raw(RawLockError),
}

/// A robust re-entrant lock over a [`ReentrantState`] that lives elsewhere (a `Copy` view):
/// the thread that holds it may lock it again, and each guard releases one level.
///
/// Errors as [`RobustMutex`], except that re-locking is never a deadlock (so `lock` can only
/// report [`OwnerDiedError`]), and re-entering a lock this thread holds never reports owner
/// death (the thread took it through [`recover`](Self::recover) already).
///
/// # Examples
///
/// ```
/// use shm_lock::{RLockRef, RLockState};
///
/// let state = RLockState::new();
/// let lock = RLockRef::new(&state);
/// let outer = lock.lock()?;
/// let inner = lock.lock()?; // re-entrant
/// assert_eq!(inner.depth(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!lock.is_locked());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RobustReentrantMutex<'a, R: RawRobustLock = RawLock> {
    state: &'a ReentrantState<R>,
    strategy: WaitStrategy,
}

impl<R: RawRobustLock> Clone for RobustReentrantMutex<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R: RawRobustLock> Copy for RobustReentrantMutex<'_, R> {}

impl<'a, R: RawRobustLock> RobustReentrantMutex<'a, R> {
    /// A re-entrant lock over `state`, waiting with the default [`WaitStrategy`].
    pub fn new(state: &'a ReentrantState<R>) -> Self {
        RobustReentrantMutex {
            state,
            strategy: WaitStrategy::default(),
        }
    }

    /// A re-entrant lock over the state at `state`.
    ///
    /// # Safety
    ///
    /// `state` points to an initialised [`ReentrantState`] (for [`RLockState`]:
    /// [`ReentrantState::new`] or all-zero bytes) that stays mapped for `'a`.
    pub unsafe fn from_ptr(state: NonNull<ReentrantState<R>>) -> Self {
        // SAFETY: the caller guarantees a live, initialised state for 'a; atomics only.
        RobustReentrantMutex::new(unsafe { state.as_ref() })
    }

    /// The same lock, waiting with `strategy`.
    pub fn with_wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// How blocked calls wait.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// The control block.
    pub fn state(&self) -> &'a ReentrantState<R> {
        self.state
    }

    fn guard(&self) -> ReentrantMutexGuard<'a, R> {
        ReentrantMutexGuard {
            state: self.state,
            _not_send: PhantomData,
        }
    }

    /// Another level for the holding thread, or `None` if it does not hold the lock.
    #[inline]
    fn reenter(&self) -> Option<ReentrantMutexGuard<'a, R>> {
        if !self.state.raw.is_owned_by_current_thread() {
            return None;
        }
        // Only the holder writes `depth`. 2^64 live guards cannot exist, so saturating is
        // exact for anything but a depth another process scribbled.
        let d = self.state.depth.load(Ordering::Relaxed);
        self.state
            .depth
            .store(d.saturating_add(1).max(2), Ordering::Relaxed);
        Some(self.guard())
    }

    /// The first level after an acquisition; `Err` (released again) if flagged and `strict`.
    #[inline]
    fn first(&self, a: Acquired, strict: bool) -> Result<ReentrantMutexGuard<'a, R>, ()> {
        if strict && a == Acquired::OwnerDied {
            // SAFETY: we just acquired it. The flag stays set for the next acquirer.
            unsafe { self.state.raw.unlock() };
            return Err(());
        }
        self.state.depth.store(1, Ordering::Relaxed);
        Ok(self.guard())
    }

    fn acquire(
        &self,
        deadline: Deadline,
        strict: bool,
    ) -> Result<ReentrantMutexGuard<'a, R>, Fail> {
        if let Some(g) = self.reenter() {
            return Ok(g);
        }
        match self.state.raw.lock_until(&self.strategy, deadline) {
            Ok(a) => self.first(a, strict).map_err(|()| Fail::OwnerDied),
            // Only if this thread holds it, which `reenter` has just ruled out; a lock word
            // forged to name this thread counts as held by it.
            Err(RawLockError::Deadlock) => Ok(self.reenter().unwrap_or_else(|| self.guard())),
            Err(e) => Err(Fail::Raw(e)),
        }
    }

    /// Acquires the lock (again, if this thread holds it), waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`OwnerDiedError`] if a previous holder died holding it (the lock is not held: use
    /// [`recover`](Self::recover)).
    #[inline]
    pub fn lock(&self) -> Result<ReentrantMutexGuard<'a, R>, OwnerDiedError> {
        match self.acquire(Deadline::NEVER, true) {
            Ok(g) => Ok(g),
            Err(Fail::OwnerDied) => Err(OwnerDiedError),
            Err(Fail::Raw(e)) => no_deadline(e),
        }
    }

    /// Acquires the lock if that needs no waiting (see [`RobustMutex::try_lock`]).
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if another thread holds it, [`TryLockError::OwnerDied`]
    /// as for [`lock`](Self::lock).
    pub fn try_lock(&self) -> Result<ReentrantMutexGuard<'a, R>, TryLockError> {
        if let Some(g) = self.reenter() {
            return Ok(g);
        }
        match self.state.raw.try_lock() {
            Ok(a) => self.first(a, true).map_err(|()| TryLockError::OwnerDied),
            Err(_) => Err(TryLockError::WouldBlock),
        }
    }

    /// Acquires the lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ReentrantTimeoutError::Timeout`] if another live thread held it all along,
    /// [`ReentrantTimeoutError::OwnerDied`] as for [`lock`](Self::lock).
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<ReentrantMutexGuard<'a, R>, ReentrantTimeoutError> {
        match self.acquire(Deadline::after(timeout), true) {
            Ok(g) => Ok(g),
            Err(Fail::OwnerDied) => Err(ReentrantTimeoutError::OwnerDied),
            Err(Fail::Raw(_)) => Err(ReentrantTimeoutError::Timeout),
        }
    }

    /// Acquires the lock whether or not it is flagged (see [`RobustMutex::recover`]).
    pub fn recover(&self) -> ReentrantMutexGuard<'a, R> {
        match self.acquire(Deadline::NEVER, false) {
            Ok(g) => g,
            Err(Fail::OwnerDied) => unreachable!("recover accepts a flagged lock"),
            Err(Fail::Raw(e)) => no_deadline(e),
        }
    }

    /// Acquires the lock until `deadline` and returns it with its previous depth set to
    /// `depth` (Condition's re-acquire after a wait). `Err` if the deadline passed.
    pub(crate) fn restore(
        &self,
        deadline: Deadline,
        depth: u64,
    ) -> Result<(ReentrantMutexGuard<'a, R>, Acquired), RawLockError> {
        let a = match self.state.raw.lock_until(&self.strategy, deadline) {
            Ok(a) => a,
            Err(RawLockError::Deadlock) => Acquired::Clean,
            Err(e) => return Err(e),
        };
        self.state.depth.store(depth.max(1), Ordering::Relaxed);
        Ok((self.guard(), a))
    }

    /// Releases every level held by this thread and returns the depth (Condition's wait).
    pub(crate) fn release_all(&self, guard: ReentrantMutexGuard<'a, R>) -> u64 {
        std::mem::forget(guard);
        let d = self.state.depth.swap(0, Ordering::Relaxed);
        // SAFETY: the guard proved that this thread holds the lock.
        unsafe { self.state.raw.unlock() };
        d
    }

    /// Whether the calling thread holds the lock.
    pub fn is_owned_by_current_thread(&self) -> bool {
        self.state.raw.is_owned_by_current_thread()
    }

    /// Whether some thread holds the lock (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.state.raw.is_locked()
    }

    /// Whether the lock is flagged: a holder died and nobody has marked it consistent since.
    pub fn is_inconsistent(&self) -> bool {
        self.state.raw.is_inconsistent()
    }
}

impl<R: RawRobustLock> fmt::Debug for RobustReentrantMutex<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobustReentrantMutex")
            .field("locked", &self.is_locked())
            .field("inconsistent", &self.is_inconsistent())
            .finish()
    }
}

/// One level of holding a [`RobustReentrantMutex`]; releases that level on drop. Not `Send`.
#[must_use = "the lock level is released when the guard drops"]
pub struct ReentrantMutexGuard<'a, R: RawRobustLock = RawLock> {
    state: &'a ReentrantState<R>,
    _not_send: PhantomData<*const ()>,
}

impl<'a, R: RawRobustLock> ReentrantMutexGuard<'a, R> {
    /// Clears the owner-died flag: the protected data is consistent again.
    pub fn mark_consistent(&self) {
        // SAFETY: the guard proves that this thread holds the lock.
        unsafe { self.state.raw.mark_consistent() }
    }

    /// Whether the protected data is flagged inconsistent.
    pub fn is_inconsistent(&self) -> bool {
        self.state.raw.is_inconsistent()
    }

    /// The current nesting depth (1 for the outermost guard).
    pub fn depth(&self) -> u64 {
        self.state.depth.load(Ordering::Relaxed)
    }

    /// The control block this guard holds.
    pub(crate) fn state(&self) -> &'a ReentrantState<R> {
        self.state
    }
}

impl<R: RawRobustLock> Drop for ReentrantMutexGuard<'_, R> {
    #[inline]
    fn drop(&mut self) {
        let d = self.state.depth.load(Ordering::Relaxed);
        if d > 1 {
            self.state.depth.store(d - 1, Ordering::Relaxed);
        } else if self.state.raw.is_owned_by_current_thread() {
            // (Checked: a depth that another process scribbled must not make us release a
            // lock that another thread took after an early release.)
            self.state.depth.store(0, Ordering::Relaxed);
            // SAFETY: checked just above that this thread holds the lock.
            unsafe { self.state.raw.unlock() }
        }
    }
}

impl<R: RawRobustLock> fmt::Debug for ReentrantMutexGuard<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReentrantMutexGuard")
            .field("depth", &self.depth())
            .field("inconsistent", &self.is_inconsistent())
            .finish()
    }
}
