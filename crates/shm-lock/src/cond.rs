//! `Condition`: a condition variable with its own robust re-entrant lock, in one segment.

use crate::error::{OwnerDiedError, ReentrantTimeoutError, TryLockError};
use crate::mutex::{RLockGuard, RLockRef, RLockState, RLOCK_STATE_SIZE};
use crate::object::{self, Builder, Object};
use crate::raw::Acquired;
use shm_core::sync::atomic::{AtomicU32, Ordering};
use shm_core::{Deadline, EventCount, Home, ObjectKind, OpenError, Segment, WaitStrategy};
use std::fmt;
use std::ptr::NonNull;
use std::time::Duration;

/// Control block of a condition (48 bytes).
///
/// | field | meaning |
/// |---|---|
/// | `lock` | the condition's robust re-entrant lock |
/// | `ec` | waiters sleep on it (the one wait loop) |
/// | `seq` | bumped by every notify; a waiter returns once it differs from what it read under the lock |
#[repr(C, align(8))]
pub(crate) struct CondState {
    lock: RLockState,
    ec: EventCount,
    seq: AtomicU32,
    _reserved: AtomicU32,
}

const COND_STATE_SIZE: usize = 48;
#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<CondState>() == COND_STATE_SIZE);
    assert!(std::mem::offset_of!(CondState, ec) == RLOCK_STATE_SIZE);
    assert!(std::mem::offset_of!(CondState, seq) == 40);
};

impl CondState {
    fn new() -> CondState {
        CondState {
            lock: RLockState::new(),
            ec: EventCount::new(),
            seq: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
        }
    }
}

/// A condition variable across processes: Python's `multiprocessing.Condition`, with its
/// lock, a robust [`RLock`](crate::RLock) as Python's default, in the same segment.
///
/// Waiting takes a guard of the condition's own lock by value, so waiting without holding the
/// lock does not compile; a guard of another lock is a panic. As in Python, a wait releases
/// every level the thread holds and restores them after. `notify` never waits for anybody
/// (Python's waits for each woken waiter, and hangs if that waiter was killed): it wakes every
/// current waiter, which re-checks its predicate. Wake-ups may be spurious: wait in a loop or
/// use [`wait_while`](Condition::wait_while).
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_lock::Condition;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::unique();
/// let cond = Condition::builder(&name).create()?;
/// let guard = cond.lock()?;
/// let (guard, timed_out) = cond.wait_timeout(guard, Duration::from_millis(1))?;
/// assert!(timed_out);
/// cond.notify_all(); // never blocks
/// drop(guard);
/// # Ok(())
/// # }
/// ```
///
/// Waiting needs a guard of the condition's re-entrant lock; a plain `Lock`'s guard does not
/// type-check, and the guard given to `wait` cannot be used afterwards:
///
/// ```compile_fail
/// let cond = shm_lock::Condition::new();
/// let other = shm_lock::Lock::new();
/// let guard = other.lock().unwrap();
/// let _ = cond.wait(guard); // expected `RLockGuard`, found `LockGuard`
/// ```
///
/// ```compile_fail
/// let cond = shm_lock::Condition::new();
/// let guard = cond.lock().unwrap();
/// let _again = cond.wait(guard);
/// guard.mark_consistent(); // use of moved value
/// ```
pub struct Condition {
    home: Home,
    strategy: WaitStrategy,
}

impl Condition {
    /// A process-local condition on the heap.
    pub fn new() -> Condition {
        Condition {
            home: object::heap_home(CondState::new()),
            strategy: WaitStrategy::default(),
        }
    }

    /// A builder for the condition named `name`.
    pub fn builder(name: &shm_core::SegmentName) -> Builder<Condition> {
        Builder::new(name)
    }

    fn state(&self) -> &CondState {
        // SAFETY: the home holds an initialised CondState at its start (written on create,
        // size checked on open) and lives as long as `self`; atomics only.
        unsafe { self.home.as_ptr().cast::<CondState>().as_ref() }
    }

    /// The condition's lock.
    pub fn lock_ref(&self) -> RLockRef<'_> {
        RLockRef::new(&self.state().lock).with_wait_strategy(self.strategy)
    }

    /// Acquires the condition's lock (see [`RLockRef::lock`]).
    ///
    /// # Errors
    ///
    /// As [`RLockRef::lock`].
    pub fn lock(&self) -> Result<RLockGuard<'_>, OwnerDiedError> {
        self.lock_ref().lock()
    }

    /// Acquires the condition's lock without waiting (see [`RLockRef::try_lock`]).
    ///
    /// # Errors
    ///
    /// As [`RLockRef::try_lock`].
    pub fn try_lock(&self) -> Result<RLockGuard<'_>, TryLockError> {
        self.lock_ref().try_lock()
    }

    /// Acquires the condition's lock, waiting at most `timeout` (see
    /// [`RLockRef::try_lock_for`]).
    ///
    /// # Errors
    ///
    /// As [`RLockRef::try_lock_for`].
    pub fn try_lock_for(&self, timeout: Duration) -> Result<RLockGuard<'_>, ReentrantTimeoutError> {
        self.lock_ref().try_lock_for(timeout)
    }

    /// Acquires the condition's lock even if a holder died (see [`RLockRef::recover`]).
    pub fn recover(&self) -> RLockGuard<'_> {
        self.lock_ref().recover()
    }

    /// Releases the lock (every level this thread holds), sleeps until notified (or
    /// spuriously woken), and locks again.
    ///
    /// # Errors
    ///
    /// [`OwnerDiedError`] if a holder died while this thread waited: this level is released
    /// (levels held by outer guards stay held); take the lock with [`recover`](Self::recover).
    ///
    /// # Panics
    ///
    /// If `guard` belongs to another lock.
    pub fn wait<'a>(&'a self, guard: RLockGuard<'a>) -> Result<RLockGuard<'a>, OwnerDiedError> {
        self.wait_until(guard, Deadline::NEVER).map(|(g, _)| g)
    }

    /// As [`wait`](Self::wait), but for at most `timeout`; the `bool` says whether it timed
    /// out. Re-taking the lock afterwards is not bounded by `timeout` (as `std`'s `Condvar`).
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Panics
    ///
    /// If `guard` belongs to another lock.
    pub fn wait_timeout<'a>(
        &'a self,
        guard: RLockGuard<'a>,
        timeout: Duration,
    ) -> Result<(RLockGuard<'a>, bool), OwnerDiedError> {
        self.wait_until(guard, Deadline::after(timeout))
    }

    /// Waits while `condition()` is true (checked under the lock; Python's `wait_for` with
    /// the predicate negated, as `std`'s `Condvar::wait_while`).
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Panics
    ///
    /// If `guard` belongs to another lock.
    pub fn wait_while<'a>(
        &'a self,
        mut guard: RLockGuard<'a>,
        mut condition: impl FnMut() -> bool,
    ) -> Result<RLockGuard<'a>, OwnerDiedError> {
        while condition() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    fn wait_until<'a>(
        &'a self,
        guard: RLockGuard<'a>,
        deadline: Deadline,
    ) -> Result<(RLockGuard<'a>, bool), OwnerDiedError> {
        let st = self.state();
        assert!(
            std::ptr::eq(guard.state(), &st.lock),
            "Condition::wait: the guard belongs to another lock"
        );
        // Read under the lock: a notify after our release bumps it.
        let key = st.seq.load(Ordering::Relaxed);
        let view = self.lock_ref();
        let depth = view.release_all(guard);
        let woken = st.ec.wait_until(&self.strategy, deadline, |_| {
            (st.seq.load(Ordering::Acquire) != key).then_some(())
        });
        let (guard, a) = view.restore(Deadline::NEVER, depth).unwrap_or_else(|e| {
            unreachable!("RawRobustLock contract broken: {e:?} without a deadline")
        });
        if a == Acquired::OwnerDied {
            drop(guard); // this level; outer guards keep theirs
            return Err(OwnerDiedError);
        }
        Ok((guard, woken.is_none()))
    }

    /// Wakes the waiters (Python's `notify(n)`; every current waiter wakes and re-checks its
    /// predicate, which a condition's waiters must do anyway). Never blocks; no syscall when
    /// nobody waits; need not hold the lock. `n == 0` does nothing.
    pub fn notify(&self, n: u32) {
        if n == 0 {
            return;
        }
        let st = self.state();
        st.seq.fetch_add(1, Ordering::Release);
        st.ec.notify_all();
    }

    /// Wakes the waiters (see [`notify`](Self::notify)).
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }

    /// Sets how blocked calls wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// The segment, unless the condition lives on the heap.
    pub fn segment(&self) -> Option<&Segment> {
        self.home.segment()
    }
}

impl Default for Condition {
    fn default() -> Self {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock_ref())
            .field("home", &self.home)
            .finish()
    }
}

impl Object for Condition {
    const KIND: ObjectKind = ObjectKind::Condition;
    fn body_len(_: &Builder<Self>) -> Result<usize, String> {
        Ok(COND_STATE_SIZE)
    }
    fn init(_: &Builder<Self>, body: NonNull<u8>) {
        // SAFETY: the body is at least COND_STATE_SIZE bytes, 128-aligned, unshared.
        unsafe { body.cast::<CondState>().as_ptr().write(CondState::new()) }
    }
    fn from_home(home: Home, b: Builder<Self>) -> Result<Self, OpenError> {
        object::check_body(&home, COND_STATE_SIZE)?;
        Ok(Condition {
            home,
            strategy: b.knobs.strategy,
        })
    }
}
