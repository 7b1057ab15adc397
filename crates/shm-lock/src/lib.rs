//! # shm-lock
//!
//! Python's `multiprocessing` synchronisation primitives across processes, in named
//! shared-memory segments, and still usable when a process dies at the worst moment.
//!
//! ## Items
//!
//! - [`RawRobustLock`]: the contract of a raw robust lock (an `unsafe trait`, as
//!   `lock_api::RawMutex`), with owner death in it; [`RawLock`] implements it.
//! - [`RobustMutex`] / [`RobustReentrantMutex`]: the generic safe wrappers over a raw lock,
//!   with guards ([`MutexGuard`], [`ReentrantMutexGuard`]); `lock`, `try_lock`,
//!   `try_lock_for`, `recover`.
//! - [`Lock`] and [`RLock`]: those wrappers in a named segment (or on the heap), Python's
//!   `Lock` and `RLock`. [`LockRef`] / [`RLockRef`] are the wrappers over a [`LockState`] /
//!   [`RLockState`] embedded in another object's segment (`Value` and `Array` carry an RLock
//!   that way).
//! - [`Semaphore`], [`BoundedSemaphore`]: counting semaphores; `release` by any process;
//!   over-releasing a bounded one is an [`AboveBoundError`].
//! - [`Event`]: `set`, `clear`, `is_set`, `wait`, `wait_timeout`.
//! - [`Condition`]: a condition variable over its own robust `RLock` (Python's default);
//!   waiting takes the guard by value; `notify` never blocks.
//! - [`Barrier`]: `parties` threads meet; timeouts, `abort`, a failing action or a dead
//!   waiter break it instead of stranding the others; its action may abort or reset it.
//!
//! Python's names beside ours:
//!
//! | Python | shm-lock |
//! |---|---|
//! | `lock.acquire()` / `lock.release()` | `let guard = lock.lock()?;` / `drop(guard)` |
//! | `lock.acquire(False)` | [`try_lock`](RobustMutex::try_lock) |
//! | `lock.acquire(timeout=t)` | [`try_lock_for(t)`](RobustMutex::try_lock_for) |
//! | (a dead holder: `acquire` hangs) | [`LockError::OwnerDied`], then [`recover`](RobustMutex::recover) |
//! | `sem.acquire()` / `sem.release()` | [`acquire`](Semaphore::acquire) / [`release`](Semaphore::release) |
//! | `cond.wait(t)` / `cond.wait_for(p)` | [`wait_timeout`](Condition::wait_timeout) / [`wait_while`](Condition::wait_while) (negated) |
//! | `barrier.wait()` | [`wait`](Barrier::wait), [`wait_timeout`](Barrier::wait_timeout) |
//!
//! Each named primitive is made with a [`Builder`] (`create`, `open`, `open_or_create`; knobs
//! `mode`, `open_timeout`, `wait_strategy`, and `value` or `parties`); its
//! [`ObjectKind`](shm_core::ObjectKind) and parameters are written into the segment, checked
//! and adopted on open. Every primitive also has a heap home (`new`), which is what the loom
//! models and miri tests run on.
//!
//! Every blocking call waits through shm-core's one wait loop,
//! [`EventCount::wait_until`](shm_core::EventCount::wait_until): a bounded spin, then sleep on
//! a shared futex in slices of [`WaitStrategy::slice`](shm_core::WaitStrategy), after each of
//! which it checks for dead peers. A deadline given by the caller bounds every wait, internal
//! locks included. Errors are per operation ([`LockError`], [`TryLockError`],
//! [`LockTimeoutError`]; the re-entrant lock, which cannot deadlock, [`OwnerDiedError`] and
//! [`ReentrantTimeoutError`]; …), `'static + Send + Sync`, so `?` works in any function returning
//! `Result<_, Box<dyn Error>>`.
//!
//! ## Owner death
//!
//! The owner of a lock is recorded *in the lock word itself*: a 64-bit thread identity word
//! (thread id and start time, [`ThreadWord`](shm_core::ThreadWord)). Acquiring is one
//! compare-and-swap from 0; releasing is one store of 0 plus a check for sleepers. A holder
//! killed at any instruction leaves either a free lock or its own identity. A waiter that slept
//! a whole slice, a `try_lock` that finds the lock held, and a timed attempt whose time is up
//! ask whether the owner thread still runs; only a *dead* one (never an unknown one) is taken
//! over, by exactly one compare-and-swap winner, which flags the lock **inconsistent**.
//!
//! The design, between pthread's `EOWNERDEAD` and std's poisoning:
//!
//! 1. While a lock is flagged, `lock()`, `try_lock()` and `try_lock_for()` return
//!    [`LockError::OwnerDied`] (and the matching variants), a plain `'static` error: the lock
//!    is **not** held after it, so `?` can pass it up like any error.
//! 2. The flag stays, and every later acquirer in every process gets the same error, until
//!    someone takes the lock through the explicit recovery path, `recover()`, which returns a
//!    guard even though the lock is flagged.
//! 3. Under that guard, repair the protected data and call
//!    [`mark_consistent`](MutexGuard::mark_consistent). A guard dropped without it leaves the
//!    lock flagged for the next one. Owner death is thus never lost silently, and, unlike
//!    pthread's `ENOTRECOVERABLE`, a lock is never unusable for good.
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_lock::{Lock, LockError};
//! use std::error::Error;
//!
//! /// Adds one to a counter kept under `lock`, repairing it if a holder died mid-update.
//! fn increment(lock: &Lock, counter: &mut u64) -> Result<(), Box<dyn Error>> {
//!     let guard = match lock.lock() {
//!         Ok(guard) => guard,
//!         Err(LockError::OwnerDied) => {
//!             let guard = lock.recover()?;
//!             // … check and repair what the dead holder left half-done …
//!             guard.mark_consistent();
//!             guard
//!         }
//!         Err(e) => return Err(e.into()),
//!     };
//!     *counter += 1;
//!     drop(guard);
//!     Ok(())
//! }
//!
//! # fn main() -> Result<(), Box<dyn Error>> {
//! let name = SegmentName::unique();
//! let lock = Lock::builder(&name).create()?;
//! let mut counter = 0;
//! increment(&lock, &mut counter)?;
//! let _guard = lock.lock()?; // `?` on a lock error: it borrows nothing
//! assert_eq!(counter, 1);
//! # Ok(())
//! # }
//! ```
//!
//! Why not the kernel's robust-futex list (`set_robust_list`, what `PTHREAD_MUTEX_ROBUST`
//! uses)? glibc owns each thread's single robust-list head; registering our own would break
//! pthread robust mutexes in the same thread. The cost of our approach: a dead holder is
//! noticed after up to one wait slice (50 ms by default) rather than at once, and it needs the
//! OS to tell (without `/proc`, holders count as [`Unknown`](shm_core::Liveness): never
//! robbed, never recovered). A holder stopped with `SIGSTOP` is alive, so its lock stays held.
//! A process made with `fork()` without `exec` must not use locks from the child.
//!
//! ## Example
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_lock::{Lock, LockError, TryLockError};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let name = SegmentName::unique();
//! let lock = Lock::builder(&name).create()?;
//! let opened = Lock::builder(&name).open()?;
//! let guard = lock.lock()?;
//! // Another thread (or process) finds it held…
//! std::thread::scope(|s| {
//!     s.spawn(|| assert_eq!(opened.try_lock().err(), Some(TryLockError::WouldBlock)));
//! });
//! // …and the holding thread itself gets `Deadlock` instead of hanging.
//! assert_eq!(opened.lock().err(), Some(LockError::Deadlock));
//! drop(guard);
//! let _guard = opened.lock()?;
//! # Ok(())
//! # }
//! ```
//!
//! A guard cannot outlive its lock:
//!
//! ```compile_fail
//! let guard = {
//!     let lock = shm_lock::Lock::new();
//!     lock.lock().unwrap()
//! };
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod barrier;
mod cond;
mod error;
mod handle;
mod mutex;
mod object;
mod raw;
mod sem;

pub use barrier::{Barrier, MAX_PARTIES};
pub use cond::Condition;
pub use error::{
    AboveBoundError, BarrierError, BarrierTimeoutError, DeadlockError, LockError, LockTimeoutError,
    OverflowError, OwnerDiedError, ReentrantTimeoutError, TimeoutError, TryLockError,
    WouldBlockError,
};
pub use handle::{Lock, RLock};
pub use mutex::{
    LockGuard, LockRef, LockState, MutexGuard, RLockGuard, RLockRef, RLockState,
    ReentrantMutexGuard, ReentrantState, RobustMutex, RobustReentrantMutex, LOCK_STATE_SIZE,
    RLOCK_STATE_SIZE,
};
pub use object::Builder;
pub use raw::{Acquired, RawLock, RawLockError, RawRobustLock, RAW_LOCK_SIZE};
pub use sem::{BoundedSemaphore, Event, Semaphore};

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(test)]
mod tests;
