//! `Lock` and `RLock`: robust mutual exclusion across processes.

use crate::error::LockError;
use crate::ident;
use crate::object::{self, Builder, Object};
use crate::raw::{self, AcquireFail, Acquired, RawLock};
use shm_core::sync::atomic::Ordering;
use shm_core::{Deadline, Home, ObjectKind, OpenError, Segment, WaitStrategy};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

/// Control block of a robust lock, embeddable in any segment body (32 bytes, align 8,
/// atomics only; all-zero bytes are a valid unlocked state).
#[repr(C, align(8))]
pub struct LockState(RawLock);

/// Size of a [`LockState`] in bytes.
pub const LOCK_STATE_SIZE: usize = 32;

/// Control block of a robust re-entrant lock, embeddable in any segment body (32 bytes,
/// align 8, atomics only; all-zero bytes are a valid unlocked state).
#[repr(C, align(8))]
pub struct RLockState(RawLock);

/// Size of an [`RLockState`] in bytes.
pub const RLOCK_STATE_SIZE: usize = 32;

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<LockState>() == LOCK_STATE_SIZE);
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RLockState>() == RLOCK_STATE_SIZE);
#[cfg(not(loom))]
const _: () = assert!(std::mem::align_of::<RLockState>() == 8);
#[cfg(not(loom))]
const _: () = assert!(std::mem::align_of::<LockState>() == 8);

impl LockState {
    /// An unlocked control block.
    pub fn new() -> LockState {
        LockState(RawLock::new())
    }
}

impl Default for LockState {
    fn default() -> Self {
        LockState::new()
    }
}

impl fmt::Debug for LockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_raw(f, "LockState", &self.0)
    }
}

impl RLockState {
    /// An unlocked control block.
    pub fn new() -> RLockState {
        RLockState(RawLock::new())
    }
}

impl Default for RLockState {
    fn default() -> Self {
        RLockState::new()
    }
}

impl fmt::Debug for RLockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_raw(f, "RLockState", &self.0)
    }
}

fn debug_raw(f: &mut fmt::Formatter<'_>, name: &str, raw: &RawLock) -> fmt::Result {
    f.debug_struct(name)
        .field("owner", &raw.owner_word())
        .field("inconsistent", &raw.is_inconsistent())
        .finish()
}

fn finish<G>(r: Acquired, make: impl FnOnce() -> G) -> Result<G, LockError<G>> {
    match r {
        Ok(false) => Ok(make()),
        Ok(true) => Err(LockError::OwnerDied(make())),
        Err(AcquireFail::WouldBlock) => Err(LockError::WouldBlock),
        Err(AcquireFail::Timeout) => Err(LockError::Timeout),
        Err(AcquireFail::Deadlock) => Err(LockError::Deadlock),
    }
}

// ---------------------------------------------------------------------------------------------
// Lock

/// A borrowed robust lock over an embedded [`LockState`].
///
/// # Examples
///
/// ```
/// use shm_lock::{LockRef, LockState};
/// use std::ptr::NonNull;
///
/// let mut state = LockState::new();
/// // SAFETY: `state` is initialised and outlives `lock`.
/// let lock = unsafe { LockRef::from_ptr(NonNull::from(&mut state)) };
/// let guard = lock.lock().unwrap();
/// assert!(lock.try_lock().is_err());
/// drop(guard);
/// assert!(lock.try_lock().is_ok());
/// ```
#[derive(Clone, Copy)]
pub struct LockRef<'a> {
    raw: &'a RawLock,
    strategy: WaitStrategy,
}

impl<'a> LockRef<'a> {
    /// A lock over `state`.
    ///
    /// # Safety
    ///
    /// `state` points to a [`LockState`] initialised with [`LockState::new`] (or all-zero
    /// bytes) that stays mapped for `'a`.
    pub unsafe fn from_ptr(state: NonNull<LockState>) -> LockRef<'a> {
        // SAFETY: the caller guarantees a live, initialised LockState for 'a; it is atomics
        // only, so shared references are fine even while other processes use it.
        let raw = unsafe { &state.as_ref().0 };
        LockRef {
            raw,
            strategy: WaitStrategy::default(),
        }
    }

    /// The same lock, waiting with `strategy`.
    pub fn with_strategy(mut self, strategy: WaitStrategy) -> LockRef<'a> {
        self.strategy = strategy;
        self
    }

    /// Acquires the lock, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] (holding the guard) if a previous holder died holding it or
    /// the state was left flagged, [`LockError::Deadlock`] if this thread holds it already.
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'a>, LockError<LockGuard<'a>>> {
        self.lock_until(Deadline::NEVER)
    }

    /// Acquires the lock if that needs no waiting. On contention, checks once whether the
    /// holder is alive (and takes the lock over if not).
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if a live thread holds it; otherwise as [`lock`](Self::lock).
    pub fn try_lock(&self) -> Result<LockGuard<'a>, LockError<LockGuard<'a>>> {
        let r = self.raw.try_acquire(ident::current(), &raw::alive);
        finish(r, || LockGuard::new(self.raw))
    }

    /// Acquires the lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] if it did not get it in time; otherwise as [`lock`](Self::lock).
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'a>, LockError<LockGuard<'a>>> {
        self.lock_until(Deadline::after(timeout))
    }

    #[inline]
    fn lock_until(&self, deadline: Deadline) -> Result<LockGuard<'a>, LockError<LockGuard<'a>>> {
        let r = self
            .raw
            .acquire(ident::current(), &self.strategy, deadline, &raw::alive);
        finish(r, || LockGuard::new(self.raw))
    }

    /// Whether some thread holds the lock (a snapshot).
    pub fn is_locked(&self) -> bool {
        self.raw.owner_word() != 0
    }

    /// Whether the state is flagged inconsistent (a holder died and nobody marked it).
    pub fn is_inconsistent(&self) -> bool {
        self.raw.is_inconsistent()
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn raw(&self) -> &'a RawLock {
        self.raw
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn lock_with_alive(
        &self,
        deadline: Deadline,
        alive: &dyn Fn(u64) -> bool,
    ) -> Result<LockGuard<'a>, LockError<LockGuard<'a>>> {
        let r = self
            .raw
            .acquire(ident::current(), &self.strategy, deadline, alive);
        finish(r, || LockGuard::new(self.raw))
    }
}

impl fmt::Debug for LockRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_raw(f, "LockRef", self.raw)
    }
}

/// Proof of holding a [`LockRef`]/[`Lock`]; releases on drop. Not `Send`: the owner is the
/// thread.
///
/// ```compile_fail
/// let lock = shm_lock::Lock::new();
/// let guard = lock.lock().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(guard)); // a guard cannot move to another thread
/// });
/// ```
#[must_use = "the lock is released when the guard drops"]
pub struct LockGuard<'a> {
    raw: &'a RawLock,
    _not_send: PhantomData<*const ()>,
}

impl<'a> LockGuard<'a> {
    fn new(raw: &'a RawLock) -> LockGuard<'a> {
        LockGuard {
            raw,
            _not_send: PhantomData,
        }
    }

    /// Clears the owner-died flag: the protected data is consistent again.
    pub fn mark_consistent(&self) {
        self.raw.mark_consistent();
    }

    /// Whether the protected data is flagged inconsistent.
    pub fn is_inconsistent(&self) -> bool {
        self.raw.is_inconsistent()
    }

    pub(crate) fn raw_ptr(&self) -> *const RawLock {
        self.raw
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.raw.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_raw(f, "LockGuard", self.raw)
    }
}

/// A robust lock in a named segment (or on the heap): Python's `multiprocessing.Lock`, with
/// guards, timeouts and owner-death recovery.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_lock::Lock;
///
/// let name = SegmentName::unique();
/// let lock = Lock::builder(&name).create().unwrap();
/// let other = Lock::builder(&name).open().unwrap(); // as another process would
/// {
///     let _guard = lock.lock().unwrap();
///     assert!(other.try_lock().is_err());
/// }
/// assert!(other.try_lock().is_ok());
/// ```
///
/// Two processes (`no_run`):
///
/// ```no_run
/// # use shm_core::SegmentName;
/// # use shm_lock::Lock;
/// # let name = SegmentName::unique();
/// // Process 1
/// let lock = Lock::builder(&name).create().unwrap();
/// // Process 2
/// let lock = Lock::builder(&name).open().unwrap();
/// let guard = match lock.lock() {
///     Ok(g) => g,
///     Err(e) => {
///         let g = e.into_guard().expect("only OwnerDied is possible from lock()");
///         // … repair the protected data …
///         g.mark_consistent();
///         g
///     }
/// };
/// # drop(guard);
/// ```
pub struct Lock {
    home: Home,
    strategy: WaitStrategy,
}

impl Lock {
    /// A process-local lock on the heap (tests, loom, miri, or threads only).
    pub fn new() -> Lock {
        Lock {
            home: object::heap_home::<LockState>(LockState::new()),
            strategy: WaitStrategy::default(),
        }
    }

    /// A builder for the lock named `name`.
    pub fn builder(name: &shm_core::SegmentName) -> Builder<Lock> {
        Builder::new(name)
    }

    /// The borrowed lock.
    pub fn as_ref(&self) -> LockRef<'_> {
        // SAFETY: the home holds an initialised LockState at its start (written on create or
        // checked for size on open) and lives as long as `self`.
        unsafe { LockRef::from_ptr(self.home.as_ptr().cast()) }.with_strategy(self.strategy)
    }

    /// See [`LockRef::lock`].
    ///
    /// # Errors
    ///
    /// As [`LockRef::lock`].
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.as_ref().lock()
    }

    /// See [`LockRef::try_lock`].
    ///
    /// # Errors
    ///
    /// As [`LockRef::try_lock`].
    pub fn try_lock(&self) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.as_ref().try_lock()
    }

    /// See [`LockRef::try_lock_for`].
    ///
    /// # Errors
    ///
    /// As [`LockRef::try_lock_for`].
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_>, LockError<LockGuard<'_>>> {
        self.as_ref().try_lock_for(timeout)
    }

    /// Sets how blocked calls wait.
    pub fn set_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// The segment, unless the lock lives on the heap.
    pub fn segment(&self) -> Option<&Segment> {
        self.home.segment()
    }
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("home", &self.home)
            .field("state", &self.as_ref())
            .finish()
    }
}

impl Object for Lock {
    const KIND: ObjectKind = ObjectKind::Lock;
    fn body_len(_: &Builder<Self>) -> Result<usize, String> {
        Ok(LOCK_STATE_SIZE)
    }
    fn init(_: &Builder<Self>, body: NonNull<u8>) {
        // SAFETY: the body is at least LOCK_STATE_SIZE bytes, 128-aligned, and not yet shared.
        unsafe { body.cast::<LockState>().as_ptr().write(LockState::new()) }
    }
    fn from_home(home: Home, b: Builder<Self>) -> Result<Self, OpenError> {
        object::check_body(&home, LOCK_STATE_SIZE)?;
        Ok(Lock {
            home,
            strategy: b.strategy,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// RLock

/// A borrowed robust re-entrant lock over an embedded [`RLockState`].
///
/// The owning thread may lock it again; each guard releases one level.
///
/// # Examples
///
/// ```
/// use shm_lock::{RLockRef, RLockState};
/// use std::ptr::NonNull;
///
/// let mut state = RLockState::new();
/// // SAFETY: `state` is initialised and outlives `lock`.
/// let lock = unsafe { RLockRef::from_ptr(NonNull::from(&mut state)) };
/// let outer = lock.lock().unwrap();
/// let inner = lock.lock().unwrap(); // re-entrant
/// drop(inner);
/// drop(outer);
/// ```
#[derive(Clone, Copy)]
pub struct RLockRef<'a> {
    raw: &'a RawLock,
    strategy: WaitStrategy,
}

impl<'a> RLockRef<'a> {
    /// A re-entrant lock over `state`.
    ///
    /// # Safety
    ///
    /// `state` points to an [`RLockState`] initialised with [`RLockState::new`] (or all-zero
    /// bytes) that stays mapped for `'a`.
    pub unsafe fn from_ptr(state: NonNull<RLockState>) -> RLockRef<'a> {
        // SAFETY: the caller guarantees a live, initialised RLockState for 'a; atomics only.
        let raw = unsafe { &state.as_ref().0 };
        RLockRef {
            raw,
            strategy: WaitStrategy::default(),
        }
    }

    /// The same lock, waiting with `strategy`.
    pub fn with_strategy(mut self, strategy: WaitStrategy) -> RLockRef<'a> {
        self.strategy = strategy;
        self
    }

    /// Acquires the lock (again, if this thread holds it), waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`LockError::OwnerDied`] (holding the guard) if a previous holder died holding it or
    /// the state was left flagged; [`LockError::RecursionLimit`] after `u32::MAX` levels.
    #[inline]
    pub fn lock(&self) -> Result<RLockGuard<'a>, LockError<RLockGuard<'a>>> {
        self.lock_until(Deadline::NEVER)
    }

    /// Acquires the lock if that needs no waiting (see [`LockRef::try_lock`]).
    ///
    /// # Errors
    ///
    /// [`LockError::WouldBlock`] if another live thread holds it; otherwise as
    /// [`lock`](Self::lock).
    pub fn try_lock(&self) -> Result<RLockGuard<'a>, LockError<RLockGuard<'a>>> {
        let me = ident::current();
        if let Some(r) = self.reenter(me) {
            return r;
        }
        let r = self.raw.try_acquire(me, &raw::alive);
        self.first(r)
    }

    /// Acquires the lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockError::Timeout`] if it did not get it in time; otherwise as [`lock`](Self::lock).
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'a>, LockError<RLockGuard<'a>>> {
        self.lock_until(Deadline::after(timeout))
    }

    #[inline]
    fn lock_until(&self, deadline: Deadline) -> Result<RLockGuard<'a>, LockError<RLockGuard<'a>>> {
        let me = ident::current();
        if let Some(r) = self.reenter(me) {
            return r;
        }
        let r = self.raw.acquire(me, &self.strategy, deadline, &raw::alive);
        self.first(r)
    }

    #[inline]
    fn reenter(&self, me: u64) -> Option<Result<RLockGuard<'a>, LockError<RLockGuard<'a>>>> {
        if self.raw.owner.load(Ordering::Relaxed) != me {
            return None;
        }
        // Only the owner writes `count`; another process may have scribbled on it, which
        // changes nothing but when the lock is released.
        let c = self.raw.count.load(Ordering::Relaxed);
        if c == u32::MAX {
            return Some(Err(LockError::RecursionLimit));
        }
        self.raw
            .count
            .store(c.saturating_add(1).max(2), Ordering::Relaxed);
        Some(Ok(RLockGuard::new(self.raw)))
    }

    #[inline]
    fn first(&self, r: Acquired) -> Result<RLockGuard<'a>, LockError<RLockGuard<'a>>> {
        if r.is_ok() {
            self.raw.count.store(1, Ordering::Relaxed);
        }
        finish(r, || RLockGuard::new(self.raw))
    }

    /// Whether the calling thread holds the lock.
    pub fn is_owned_by_current_thread(&self) -> bool {
        self.raw.held_by_me()
    }

    /// Whether the state is flagged inconsistent.
    pub fn is_inconsistent(&self) -> bool {
        self.raw.is_inconsistent()
    }
}

impl fmt::Debug for RLockRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_raw(f, "RLockRef", self.raw)
    }
}

/// One level of holding an [`RLockRef`]/[`RLock`]; releases that level on drop. Not `Send`.
#[must_use = "the lock level is released when the guard drops"]
pub struct RLockGuard<'a> {
    raw: &'a RawLock,
    _not_send: PhantomData<*const ()>,
}

impl<'a> RLockGuard<'a> {
    fn new(raw: &'a RawLock) -> RLockGuard<'a> {
        RLockGuard {
            raw,
            _not_send: PhantomData,
        }
    }

    /// Clears the owner-died flag: the protected data is consistent again.
    pub fn mark_consistent(&self) {
        self.raw.mark_consistent();
    }

    /// Whether the protected data is flagged inconsistent.
    pub fn is_inconsistent(&self) -> bool {
        self.raw.is_inconsistent()
    }

    /// The current recursion depth (1 for the outermost guard).
    pub fn depth(&self) -> u32 {
        self.raw.count.load(Ordering::Relaxed)
    }
}

impl Drop for RLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let c = self.raw.count.load(Ordering::Relaxed);
        if c > 1 {
            self.raw.count.store(c - 1, Ordering::Relaxed);
        } else {
            self.raw.count.store(0, Ordering::Relaxed);
            self.raw.release();
        }
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_raw(f, "RLockGuard", self.raw)
    }
}

/// A robust re-entrant lock in a named segment (or on the heap): Python's
/// `multiprocessing.RLock`.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_lock::RLock;
///
/// let name = SegmentName::unique();
/// let lock = RLock::builder(&name).open_or_create().unwrap();
/// let a = lock.lock().unwrap();
/// let b = lock.lock().unwrap();
/// assert_eq!(b.depth(), 2);
/// drop(b);
/// drop(a);
/// ```
pub struct RLock {
    home: Home,
    strategy: WaitStrategy,
}

impl RLock {
    /// A process-local re-entrant lock on the heap.
    pub fn new() -> RLock {
        RLock {
            home: object::heap_home::<RLockState>(RLockState::new()),
            strategy: WaitStrategy::default(),
        }
    }

    /// A builder for the re-entrant lock named `name`.
    pub fn builder(name: &shm_core::SegmentName) -> Builder<RLock> {
        Builder::new(name)
    }

    /// The borrowed lock.
    pub fn as_ref(&self) -> RLockRef<'_> {
        // SAFETY: the home holds an initialised RLockState at its start and lives as long as
        // `self`.
        unsafe { RLockRef::from_ptr(self.home.as_ptr().cast()) }.with_strategy(self.strategy)
    }

    /// See [`RLockRef::lock`].
    ///
    /// # Errors
    ///
    /// As [`RLockRef::lock`].
    pub fn lock(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        self.as_ref().lock()
    }

    /// See [`RLockRef::try_lock`].
    ///
    /// # Errors
    ///
    /// As [`RLockRef::try_lock`].
    pub fn try_lock(&self) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        self.as_ref().try_lock()
    }

    /// See [`RLockRef::try_lock_for`].
    ///
    /// # Errors
    ///
    /// As [`RLockRef::try_lock_for`].
    pub fn try_lock_for(
        &self,
        timeout: Duration,
    ) -> Result<RLockGuard<'_>, LockError<RLockGuard<'_>>> {
        self.as_ref().try_lock_for(timeout)
    }

    /// Sets how blocked calls wait.
    pub fn set_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// The segment, unless the lock lives on the heap.
    pub fn segment(&self) -> Option<&Segment> {
        self.home.segment()
    }
}

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("home", &self.home)
            .field("state", &self.as_ref())
            .finish()
    }
}

impl Object for RLock {
    const KIND: ObjectKind = ObjectKind::RLock;
    fn body_len(_: &Builder<Self>) -> Result<usize, String> {
        Ok(RLOCK_STATE_SIZE)
    }
    fn init(_: &Builder<Self>, body: NonNull<u8>) {
        // SAFETY: the body is at least RLOCK_STATE_SIZE bytes, 128-aligned, and not yet shared.
        unsafe { body.cast::<RLockState>().as_ptr().write(RLockState::new()) }
    }
    fn from_home(home: Home, b: Builder<Self>) -> Result<Self, OpenError> {
        object::check_body(&home, RLOCK_STATE_SIZE)?;
        Ok(RLock {
            home,
            strategy: b.strategy,
        })
    }
}
