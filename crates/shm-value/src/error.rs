//! Errors of [`Value::update`](crate::Value::update).

use crate::value::ValueGuard;
use shm_core::AtomicElement;
use std::fmt;

/// Why [`Value::update`](crate::Value::update) did not run its closure.
///
/// `Debug` does not require `T: Debug`.
#[non_exhaustive]
pub enum UpdateError<'a, T: AtomicElement> {
    /// A previous holder of the value's lock died holding it (or left it flagged): the value
    /// may be half-updated, so the closure was **not** run. The lock is held by the guard
    /// inside: inspect or repair the value through it, call
    /// [`mark_consistent`](ValueGuard::mark_consistent), drop it, and update again.
    OwnerDied(ValueGuard<'a, T>),
    /// [`try_update_for`](crate::Value::try_update_for): the lock was not free in time.
    Timeout,
    /// The calling thread holds the lock `u32::MAX` levels deep already.
    RecursionLimit,
}

impl<T: AtomicElement> UpdateError<'_, T> {
    /// Whether this is [`OwnerDied`](UpdateError::OwnerDied).
    pub fn is_owner_died(&self) -> bool {
        matches!(self, UpdateError::OwnerDied(_))
    }
}

impl<T: AtomicElement> fmt::Debug for UpdateError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            UpdateError::Timeout => f.write_str("Timeout"),
            UpdateError::RecursionLimit => f.write_str("RecursionLimit"),
        }
    }
}

impl<T: AtomicElement> fmt::Display for UpdateError<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpdateError::OwnerDied(_) => {
                "update not run: a previous holder of the value's lock died holding it, so the \
                 value may be inconsistent (the error holds the lock)"
            }
            UpdateError::Timeout => "update not run: timed out waiting for the value's lock",
            UpdateError::RecursionLimit => "update not run: the value's lock is nested too deeply",
        })
    }
}

impl<T: AtomicElement> std::error::Error for UpdateError<'_, T> {}
