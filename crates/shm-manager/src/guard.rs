//! The thin adapter between this crate and shm-lock's robust lock.
//!
//! Everything this crate needs from a lock is here: acquire the lock embedded at the start of
//! a body (with a deadline), learn whether a previous holder died holding it, and mark the
//! protected state consistent after repairing it. When shm-lock's API changes, this file is
//! the only one that has to follow.

use shm_core::{Deadline, WaitStrategy};
use shm_lock::{LockError, LockGuard, LockRef, LockState, LockTimeoutError};
use std::ptr::NonNull;

/// Bytes the embedded lock occupies at the start of a body.
pub(crate) const LOCK_BYTES: usize = shm_lock::LOCK_STATE_SIZE;

/// Why the lock could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockFail {
    /// The deadline passed while another live thread held it.
    Timeout,
    /// The calling thread holds it already (for example from inside an `update` closure).
    Deadlock,
}

/// The held lock; released on drop.
pub(crate) struct Held<'a> {
    guard: LockGuard<'a>,
    /// A previous holder died holding the lock (or left it flagged).
    pub(crate) owner_died: bool,
}

impl Held<'_> {
    /// The protected state is consistent again.
    pub(crate) fn mark_consistent(&self) {
        self.guard.mark_consistent();
    }
}

/// Initialises the lock at `at` (the body is zeroed; a zeroed lock is a valid free lock).
///
/// # Safety
///
/// `at` points to [`LOCK_BYTES`] writable bytes, 8-aligned, that nobody else uses yet.
pub(crate) unsafe fn init(at: NonNull<u8>) {
    // SAFETY: the caller guarantees exclusive, aligned, large-enough memory.
    unsafe { at.cast::<LockState>().as_ptr().write(LockState::new()) };
}

/// Acquires the lock at `at`, waiting until `deadline`.
///
/// # Safety
///
/// `at` points to an initialised lock that stays mapped for `'a`.
pub(crate) unsafe fn acquire<'a>(
    at: NonNull<u8>,
    strategy: WaitStrategy,
    deadline: Deadline,
) -> Result<Held<'a>, LockFail> {
    // SAFETY: forwarded from the caller.
    let lock = unsafe { LockRef::from_ptr(at.cast::<LockState>()) }.with_wait_strategy(strategy);
    let r = match deadline.remaining() {
        None => lock.lock().map_err(|e| match e {
            LockError::OwnerDied => LockTimeoutError::OwnerDied,
            LockError::Deadlock => LockTimeoutError::Deadlock,
        }),
        Some(left) => lock.try_lock_for(left),
    };
    match r {
        Ok(guard) => Ok(Held {
            guard,
            owner_died: false,
        }),
        // The holder died: take the flagged lock through the recovery path; the store repairs
        // its state and marks it consistent.
        Err(LockTimeoutError::OwnerDied) => match lock.recover() {
            Ok(guard) => Ok(Held {
                guard,
                owner_died: true,
            }),
            Err(_) => Err(LockFail::Deadlock),
        },
        Err(LockTimeoutError::Deadlock) => Err(LockFail::Deadlock),
        Err(LockTimeoutError::Timeout) => Err(LockFail::Timeout),
    }
}
