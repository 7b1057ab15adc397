//! `Lock` and `RLock`: owning handles (a named segment or a heap block) over the generic
//! wrappers of `mutex.rs`. Every method is the wrapper's, written once by `handle!`.

use crate::error::TryLockError;
use crate::mutex::{
    LockGuard, LockRef, LockState, RLockGuard, RLockRef, RLockState, LOCK_STATE_SIZE,
    RLOCK_STATE_SIZE,
};
use crate::object::{self, Builder, Object};
use shm_core::{Home, ObjectKind, OpenError, Segment, SegmentName, WaitStrategy};
use std::fmt;
use std::ptr::NonNull;
use std::time::Duration;

macro_rules! handle {
    (
        $(#[$doc:meta])*
        $name:ident, $view:ident, $guard:ident, $state:ident, $size:expr, $kind:expr,
        lock: $lock_err:ty, timeout: $timeout_err:ty, recover: $recover:ty
    ) => {
        $(#[$doc])*
        pub struct $name {
            home: Home,
            strategy: WaitStrategy,
        }

        impl $name {
            /// A process-local lock on the heap (threads, tests, loom and miri).
            pub fn new() -> $name {
                $name {
                    home: object::heap_home($state::new()),
                    strategy: WaitStrategy::default(),
                }
            }

            /// A builder for the lock named `name`.
            pub fn builder(name: &SegmentName) -> Builder<$name> {
                Builder::new(name)
            }

            /// The borrowed lock (all of this handle's methods go through it).
            #[inline]
            pub fn as_ref(&self) -> $view<'_> {
                // SAFETY: the home holds an initialised state at its start (written on
                // create, all-zero on the heap, size checked on open) and lives as long as
                // `self`.
                unsafe { $view::from_ptr(self.home.as_ptr().cast()) }
                    .with_wait_strategy(self.strategy)
            }

            #[doc = concat!("See [`", stringify!($view), "::lock`].")]
            ///
            /// # Errors
            ///
            #[doc = concat!("As [`", stringify!($view), "::lock`].")]
            #[inline]
            pub fn lock(&self) -> Result<$guard<'_>, $lock_err> {
                self.as_ref().lock()
            }

            #[doc = concat!("See [`", stringify!($view), "::try_lock`].")]
            ///
            /// # Errors
            ///
            #[doc = concat!("As [`", stringify!($view), "::try_lock`].")]
            pub fn try_lock(&self) -> Result<$guard<'_>, TryLockError> {
                self.as_ref().try_lock()
            }

            #[doc = concat!("See [`", stringify!($view), "::try_lock_for`].")]
            ///
            /// # Errors
            ///
            #[doc = concat!("As [`", stringify!($view), "::try_lock_for`].")]
            pub fn try_lock_for(&self, timeout: Duration) -> Result<$guard<'_>, $timeout_err> {
                self.as_ref().try_lock_for(timeout)
            }

            #[doc = concat!("See [`", stringify!($view), "::recover`]: takes the lock even if a holder died.")]
            pub fn recover(&self) -> $recover {
                self.as_ref().recover()
            }

            /// Whether some thread holds the lock (a snapshot).
            pub fn is_locked(&self) -> bool {
                self.as_ref().is_locked()
            }

            /// Whether the lock is flagged: a holder died and nobody has marked it consistent.
            pub fn is_inconsistent(&self) -> bool {
                self.as_ref().is_inconsistent()
            }

            /// Sets how blocked calls wait.
            pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
                self.strategy = strategy;
            }

            /// The segment, unless the lock lives on the heap.
            pub fn segment(&self) -> Option<&Segment> {
                self.home.segment()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::new()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("home", &self.home)
                    .field("locked", &self.is_locked())
                    .field("inconsistent", &self.is_inconsistent())
                    .finish()
            }
        }

        impl Object for $name {
            const KIND: ObjectKind = $kind;
            fn body_len(_: &Builder<Self>) -> Result<usize, String> {
                Ok($size)
            }
            fn init(_: &Builder<Self>, body: NonNull<u8>) {
                // SAFETY: the body is at least $size bytes, 128-aligned, and not yet shared.
                unsafe { body.cast::<$state>().as_ptr().write($state::new()) }
            }
            fn from_home(home: Home, b: Builder<Self>) -> Result<Self, OpenError> {
                object::check_body(&home, $size)?;
                Ok($name {
                    home,
                    strategy: b.knobs.strategy,
                })
            }
        }
    };
}

handle!(
    /// A robust lock in a named segment (or on the heap): Python's `multiprocessing.Lock`, with
    /// guards, timeouts and owner-death reporting. A [`LockRef`] over a [`LockState`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::SegmentName;
    /// use shm_lock::Lock;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let name = SegmentName::unique();
    /// let lock = Lock::builder(&name).create()?;
    /// let other = Lock::builder(&name).open()?; // as another process would
    /// {
    ///     let _guard = lock.lock()?;
    ///     assert!(other.try_lock().is_err());
    /// }
    /// assert!(other.try_lock().is_ok());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Two processes, with a holder that may die (`no_run`):
    ///
    /// ```no_run
    /// # use shm_core::SegmentName;
    /// use shm_lock::{Lock, LockError};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let name = SegmentName::unique();
    /// // Process 1
    /// let lock = Lock::builder(&name).create()?;
    /// // Process 2
    /// let lock = Lock::builder(&name).open()?;
    /// let guard = match lock.lock() {
    ///     Ok(g) => g,
    ///     Err(LockError::OwnerDied) => {
    ///         let g = lock.recover()?;
    ///         // … repair the protected data …
    ///         g.mark_consistent();
    ///         g
    ///     }
    ///     Err(e) => return Err(e.into()),
    /// };
    /// # drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    Lock, LockRef, LockGuard, LockState, LOCK_STATE_SIZE, ObjectKind::Lock,
    lock: crate::LockError,
    timeout: crate::LockTimeoutError,
    recover: Result<LockGuard<'_>, crate::DeadlockError>
);

handle!(
    /// A robust re-entrant lock in a named segment (or on the heap): Python's
    /// `multiprocessing.RLock`. An [`RLockRef`] over an [`RLockState`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_core::SegmentName;
    /// use shm_lock::RLock;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let name = SegmentName::unique();
    /// let lock = RLock::builder(&name).open_or_create()?;
    /// let a = lock.lock()?;
    /// let b = lock.lock()?;
    /// assert_eq!(b.depth(), 2);
    /// drop(b);
    /// drop(a);
    /// # Ok(())
    /// # }
    /// ```
    RLock, RLockRef, RLockGuard, RLockState, RLOCK_STATE_SIZE, ObjectKind::RLock,
    lock: crate::OwnerDiedError,
    timeout: crate::ReentrantTimeoutError,
    recover: RLockGuard<'_>
);
