//! # shm-lock
//!
//! Python's `multiprocessing` synchronisation primitives across processes, in named
//! shared-memory segments, and still usable when a process dies at the worst moment.
//!
//! ## Items
//!
//! - [`Lock`] / [`LockRef`] / [`LockGuard`] over a [`LockState`]: a robust mutex. Guards, not
//!   free `release()` calls; `lock`, `try_lock`, `try_lock_for`.
//! - [`RLock`] / [`RLockRef`] / [`RLockGuard`] over an [`RLockState`]: the re-entrant variant
//!   (owned by one thread of one process, with a depth count).
//! - [`Semaphore`], [`BoundedSemaphore`]: counting semaphores; `release` by any process;
//!   over-releasing a bounded one is [`ReleaseError::AboveBound`].
//! - [`Event`]: `set`, `clear`, `is_set`, `wait`, `wait_timeout`.
//! - [`Condition`]: a condition variable with its own lock; waiting takes the guard by value;
//!   `notify` never blocks.
//! - [`Barrier`]: `parties` processes meet; timeouts, `abort`, a failing action or a dead
//!   waiter break it instead of stranding the others.
//!
//! Each named primitive is made with a [`Builder`] (`create`, `open`, `open_or_create`); its
//! [`ObjectKind`](shm_core::ObjectKind) is written into the segment and checked on open.
//! [`LockState`] and [`RLockState`] (32 bytes each) can also be embedded in another object's
//! segment and used through [`LockRef::from_ptr`] / [`RLockRef::from_ptr`]; that is how
//! `Value` and `Array` carry their `RLock`. Every primitive also has a heap home (`new`),
//! which is what the loom models and miri tests run on.
//!
//! Blocked callers spin briefly, then sleep in the kernel on a shared futex (no CPU), in
//! slices of [`WaitStrategy::slice`](shm_core::WaitStrategy) after which they check for dead
//! peers.
//!
//! ## Owner death
//!
//! The owner of a `Lock`/`RLock` is recorded *in the lock word itself*: a 64-bit word holding
//! the kernel thread id (`gettid`) and that thread's start time. Acquiring is one
//! compare-and-swap of that word from 0; releasing is one swap back to 0 plus a load of the
//! waiter count (a `FUTEX_WAKE` only if somebody sleeps). Because the owner *is* the lock
//! word, a holder killed at any instruction leaves either a free lock or its own identity.
//!
//! A waiter that slept a whole slice without a wake-up, a `try_lock` that finds the lock
//! held, and a timed attempt whose time is up each check whether the owner thread still runs
//! (`/proc/<tid>/stat`, with the start time defeating tid reuse; zombies count as dead). If
//! it does not, the waiter takes the lock over with a compare-and-swap (exactly one waiter
//! wins) and gets [`LockError::OwnerDied`] *with the guard inside*. This covers a holder
//! process that was killed or exited without unlocking, and a holder *thread* that exited
//! while other threads of its process live on.
//!
//! Why not the kernel's robust-futex list (`set_robust_list`, what `PTHREAD_MUTEX_ROBUST`
//! uses)? glibc owns each thread's single robust-list head; registering our own would break
//! pthread robust mutexes in the same thread. The cost of our approach: a dead holder is
//! noticed after up to one wait slice (50 ms by default) rather than at once, and it needs
//! `/proc` (without it, holders always count as alive: never robbed, never recovered).
//!
//! **If the new owner does not mark the state consistent** (drops the guard without calling
//! `mark_consistent`), the lock stays *flagged*: it is released normally, and every later
//! acquirer also gets [`LockError::OwnerDied`] until one of them marks it. Unlike pthreads'
//! `ENOTRECOVERABLE`, the lock never becomes permanently unusable; the warning simply repeats
//! until somebody takes responsibility for the data.
//!
//! Limits: a process created with `fork()` without `exec` must not use locks through state
//! inherited from its parent thread (the thread identity is cached per thread); shm-ipc
//! starts children by re-executing. A holder stopped with `SIGSTOP` is alive, so its lock
//! stays held.
//!
//! ## Example
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_lock::{Lock, LockError};
//!
//! let name = SegmentName::unique();
//! let lock = Lock::builder(&name).create().unwrap();
//! let opened = Lock::builder(&name).open().unwrap();
//! let guard = lock.lock().unwrap();
//! // Another thread (or process) finds it held…
//! std::thread::scope(|s| {
//!     s.spawn(|| assert!(matches!(opened.try_lock(), Err(LockError::WouldBlock))));
//! });
//! // …and the holding thread itself gets `Deadlock` instead of hanging.
//! assert!(matches!(opened.try_lock(), Err(LockError::Deadlock)));
//! drop(guard);
//! let _guard = opened.lock().unwrap();
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::multiple_unsafe_ops_per_block)]

mod barrier;
mod cond;
mod error;
mod ident;
mod lock;
mod object;
mod raw;
mod sem;

pub use barrier::{Barrier, MAX_PARTIES};
pub use cond::Condition;
pub use error::{AcquireError, BarrierError, LockError, ReleaseError};
pub use lock::{
    Lock, LockGuard, LockRef, LockState, RLock, RLockGuard, RLockRef, RLockState, LOCK_STATE_SIZE,
    RLOCK_STATE_SIZE,
};
pub use object::Builder;
pub use sem::{BoundedSemaphore, Event, Semaphore};

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(test)]
mod tests;
