//! The thin adapter between this crate and shm-lock's raw robust lock.
//!
//! Everything this crate needs from a lock is here: acquire the lock embedded at the start of
//! a body (with a deadline), learn whether a previous holder died holding it, and mark the
//! protected state consistent after repairing it. It stands on the contract
//! ([`RawRobustLock`]), not on the safe wrappers: one acquisition tells whether the state is
//! flagged, and the store repairs it under that same acquisition before clearing the flag.

use shm_core::{Deadline, WaitStrategy};
use shm_lock::{Acquired, RawLock, RawLockError, RawRobustLock, RAW_LOCK_SIZE};
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Bytes the embedded lock occupies at the start of a body.
pub(crate) const LOCK_BYTES: usize = RAW_LOCK_SIZE;

/// Why the lock could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockFail {
    /// The deadline passed while another live (or unknown) thread held it.
    Timeout,
    /// The calling thread holds it already (for example from inside an `update` closure).
    Deadlock,
}

/// The held lock; released on drop. Not `Send`: the owner is the thread.
pub(crate) struct Held<'a> {
    raw: &'a RawLock,
    /// A previous holder died holding the lock (or left it flagged).
    pub(crate) owner_died: bool,
    _not_send: PhantomData<*const ()>,
}

impl Held<'_> {
    /// The protected state is consistent again.
    pub(crate) fn mark_consistent(&self) {
        // SAFETY: a `Held` exists only while this thread holds the lock.
        unsafe { self.raw.mark_consistent() };
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // SAFETY: a `Held` exists only while this thread holds the lock, and is dropped once.
        unsafe { self.raw.unlock() };
    }
}

/// Initialises the lock at `at`.
///
/// # Safety
///
/// `at` points to [`LOCK_BYTES`] writable bytes, 8-aligned, that nobody else uses yet.
pub(crate) unsafe fn init(at: NonNull<u8>) {
    // SAFETY: the caller guarantees exclusive, aligned, large-enough memory.
    unsafe { at.cast::<RawLock>().as_ptr().write(RawLock::new()) };
}

/// Acquires the lock at `at`, waiting until `deadline`.
///
/// # Safety
///
/// `at` points to an initialised lock (or all-zero bytes) that stays mapped for `'a`.
pub(crate) unsafe fn acquire<'a>(
    at: NonNull<u8>,
    strategy: WaitStrategy,
    deadline: Deadline,
) -> Result<Held<'a>, LockFail> {
    // SAFETY: forwarded from the caller; RawLock is atomics only, so a shared reference is
    // fine while other processes use it.
    let raw: &'a RawLock = unsafe { at.cast::<RawLock>().as_ref() };
    let owner_died = match raw.lock_until(&strategy, deadline) {
        Ok(Acquired::Clean) => false,
        Ok(Acquired::OwnerDied) => true,
        Err(RawLockError::Deadlock) => return Err(LockFail::Deadlock),
        Err(RawLockError::Timeout | RawLockError::WouldBlock) => return Err(LockFail::Timeout),
    };
    Ok(Held {
        raw,
        owner_died,
        _not_send: PhantomData,
    })
}
