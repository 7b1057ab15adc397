//! `Condition`: a condition variable with its own robust lock, in one segment.

use crate::error::LockError;
use crate::lock::{LockGuard, LockRef, LockState};
use crate::object::{self, Builder, Object};
use shm_core::sync::atomic::{fence, AtomicU32, Ordering};
use shm_core::sync::{futex_wait, futex_wake, WaitOutcome};
use shm_core::{Deadline, Home, ObjectKind, OpenError, Segment, WaitStrategy};
use std::fmt;
use std::ptr::NonNull;
use std::time::Duration;

/// Control block of a condition (40 bytes).
///
/// | field | meaning |
/// |---|---|
/// | `lock` | the condition's robust lock |
/// | `seq` | futex word; bumped by a notify that saw `waiters != 0` |
/// | `waiters` | announced waiters (too high after a waiter died: costs a syscall, no more) |
#[repr(C, align(8))]
pub(crate) struct CondState {
    lock: LockState,
    seq: AtomicU32,
    waiters: AtomicU32,
}

const COND_STATE_SIZE: usize = 40;
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<CondState>() == COND_STATE_SIZE);
#[cfg(not(loom))]
const _: () = assert!(std::mem::offset_of!(CondState, seq) == 32);

impl CondState {
    pub(crate) fn new() -> CondState {
        CondState {
            lock: LockState::new(),
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    pub(crate) fn notify(&self, n: u32) {
        // Pairs with the waiter's announcement, made while it held the lock.
        fence(Ordering::SeqCst);
        if n != 0 && self.waiters.load(Ordering::SeqCst) != 0 {
            self.seq.fetch_add(1, Ordering::SeqCst);
            futex_wake(&self.seq, n);
        }
    }
}

/// A condition variable across processes: Python's `multiprocessing.Condition`, with its
/// (robust, non-re-entrant) lock in the same segment.
///
/// Waiting takes the guard of the condition's own lock by value, so waiting without holding
/// the lock does not compile; a guard of another lock is a panic. `notify` never waits for
/// anybody (Python's waits for each woken waiter, and hangs if that waiter was killed).
/// Wake-ups may be spurious: wait in a loop or use [`wait_while`](Condition::wait_while).
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_lock::Condition;
/// use std::time::Duration;
///
/// let name = SegmentName::unique();
/// let cond = Condition::builder(&name).create().unwrap();
/// let guard = cond.lock().unwrap();
/// let (guard, timed_out) = cond.wait_timeout(guard, Duration::from_millis(1)).unwrap();
/// assert!(timed_out);
/// cond.notify_all(); // never blocks
/// drop(guard);
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
        // SAFETY: the home holds an initialised CondState at its start and lives as long as
        // `self`.
        unsafe { self.home.as_ptr().cast::<CondState>().as_ref() }
    }

    /// The condition's lock.
    pub fn lock_ref(&self) -> LockRef<'_> {
        // SAFETY: the LockState is inside our state, which lives as long as `self`.
        unsafe { LockRef::from_ptr(NonNull::from(&self.state().lock)) }.with_strategy(self.strategy)
    }

    /// Acquires the condition's lock.
    ///
    /// # Errors
    ///
    /// As [`LockRef::lock`].
    pub fn lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.lock_ref().lock()
    }

    /// Acquires the condition's lock without waiting.
    ///
    /// # Errors
    ///
    /// As [`LockRef::try_lock`].
    pub fn try_lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.lock_ref().try_lock()
    }

    /// Releases the lock, sleeps until notified (or spuriously woken), and locks again.
    ///
    /// # Errors
    ///
    /// As [`LockRef::lock`] for the re-acquisition ([`LockError::OwnerDied`] carries the guard).
    ///
    /// # Panics
    ///
    /// If `guard` belongs to another lock.
    pub fn wait<'a>(
        &'a self,
        guard: LockGuard<'a>,
    ) -> Result<LockGuard<'a>, LockError<LockGuard<'a>>> {
        self.wait_until(guard, Deadline::NEVER).map(|(g, _)| g)
    }

    /// As [`wait`](Self::wait), but for at most `timeout`; the `bool` says whether it timed out.
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
        guard: LockGuard<'a>,
        timeout: Duration,
    ) -> Result<(LockGuard<'a>, bool), LockError<LockGuard<'a>>> {
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
        mut guard: LockGuard<'a>,
        mut condition: impl FnMut() -> bool,
    ) -> Result<LockGuard<'a>, LockError<LockGuard<'a>>> {
        while condition() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    fn wait_until<'a>(
        &'a self,
        guard: LockGuard<'a>,
        deadline: Deadline,
    ) -> Result<(LockGuard<'a>, bool), LockError<LockGuard<'a>>> {
        let st = self.state();
        assert!(
            std::ptr::eq(
                guard.raw_ptr().cast::<u8>(),
                (&st.lock as *const LockState).cast()
            ),
            "Condition::wait: the guard belongs to another lock"
        );
        st.waiters.fetch_add(1, Ordering::SeqCst);
        let key = st.seq.load(Ordering::SeqCst);
        drop(guard);
        let mut timed_out = false;
        loop {
            let outcome = futex_wait(&st.seq, key, deadline.min_after(self.strategy.slice));
            if st.seq.load(Ordering::SeqCst) != key {
                break;
            }
            if outcome == WaitOutcome::TimedOut {
                if deadline.has_passed() {
                    timed_out = true;
                    break;
                }
                continue;
            }
            break; // spurious
        }
        st.waiters.fetch_sub(1, Ordering::Relaxed);
        match self.lock_ref().lock() {
            Ok(g) => Ok((g, timed_out)),
            Err(e) => Err(e),
        }
    }

    /// Wakes up to `n` waiters. Never blocks; no syscall when nobody waits.
    pub fn notify(&self, n: u32) {
        self.state().notify(n);
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.notify(i32::MAX as u32);
    }

    /// Sets how blocked calls wait.
    pub fn set_strategy(&mut self, strategy: WaitStrategy) {
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
            strategy: b.strategy,
        })
    }
}
