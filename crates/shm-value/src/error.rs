//! Errors of [`Value::update`](crate::Value::update) and
//! [`Value::try_update_for`](crate::Value::try_update_for): one enum per operation, naming
//! only what that operation can do. Both are `'static + Send + Sync`, so `?` works in a
//! function returning `Result<_, Box<dyn Error>>`.

use std::fmt;

const OWNER_DIED: &str = "update not run: a previous holder of the value's lock died holding it, \
     and nobody has marked the value consistent since (lock() returns the guard to repair it with)";

/// Why [`Value::update`](crate::Value::update) did not run its closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    /// A previous holder of the value's lock died holding it (or a later holder left it
    /// flagged): the value may be half-updated, so the closure was **not** run, and the lock
    /// was released with the flag kept. Take the lock with [`Value::recover`], repair the
    /// value, call
    /// [`mark_consistent`](crate::ValueGuard::mark_consistent), and update again.
    ///
    /// [`Value::recover`]: crate::Value::recover
    OwnerDied,
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::OwnerDied => f.write_str(OWNER_DIED),
        }
    }
}

impl std::error::Error for UpdateError {}

/// Why [`Value::try_update_for`](crate::Value::try_update_for) did not run its closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateTimeoutError {
    /// The lock was not free within the timeout.
    Timeout,
    /// As [`UpdateError::OwnerDied`].
    OwnerDied,
}

impl fmt::Display for UpdateTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateTimeoutError::Timeout => {
                f.write_str("update not run: timed out waiting for the value's lock")
            }
            UpdateTimeoutError::OwnerDied => f.write_str(OWNER_DIED),
        }
    }
}

impl std::error::Error for UpdateTimeoutError {}

impl From<UpdateError> for UpdateTimeoutError {
    fn from(e: UpdateError) -> Self {
        match e {
            UpdateError::OwnerDied => UpdateTimeoutError::OwnerDied,
        }
    }
}
