//! Error types of the lock family.

use std::fmt;

/// Why a lock could not be acquired cleanly.
///
/// [`OwnerDied`](LockError::OwnerDied) is not a failure to lock: the lock *is* held and the
/// guard is inside. It says that a previous holder died while holding it, so the data it
/// protects may be half-updated. Repair it, then call the guard's `mark_consistent`. If the
/// guard is dropped without that, the flag stays: the next acquirer is told again (see the
/// crate docs, "Owner death").
///
/// `Debug` does not require `G: Debug`.
#[non_exhaustive]
pub enum LockError<G> {
    /// Acquired, but a previous holder died holding the lock: the guard is inside.
    OwnerDied(G),
    /// `try_lock`: another live thread holds the lock.
    WouldBlock,
    /// The timeout passed first.
    Timeout,
    /// The calling thread already holds this (non-re-entrant) lock: waiting would never end.
    Deadlock,
    /// An `RLock` was re-entered `u32::MAX` times.
    RecursionLimit,
}

impl<G> LockError<G> {
    /// The guard, for [`OwnerDied`](LockError::OwnerDied); `None` otherwise.
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }

    /// Whether this is [`OwnerDied`](LockError::OwnerDied).
    pub fn is_owner_died(&self) -> bool {
        matches!(self, LockError::OwnerDied(_))
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::Timeout => f.write_str("Timeout"),
            LockError::Deadlock => f.write_str("Deadlock"),
            LockError::RecursionLimit => f.write_str("RecursionLimit"),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::OwnerDied(_) => {
                "lock acquired, but its previous owner died holding it: the protected data may be inconsistent"
            }
            LockError::WouldBlock => "the lock is held by another thread",
            LockError::Timeout => "timed out waiting for the lock",
            LockError::Deadlock => "the calling thread already holds this lock",
            LockError::RecursionLimit => "re-entrant lock nested too deeply",
        })
    }
}

impl<G> std::error::Error for LockError<G> {}

/// Why a semaphore could not be acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcquireError {
    /// `try_acquire`: the value is 0.
    WouldBlock,
    /// The timeout passed first.
    Timeout,
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AcquireError::WouldBlock => "the semaphore's value is 0",
            AcquireError::Timeout => "timed out waiting for the semaphore",
        })
    }
}

impl std::error::Error for AcquireError {}

/// Why a semaphore could not be released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReleaseError {
    /// A `BoundedSemaphore` would go above its initial value (Python's `ValueError`).
    AboveBound {
        /// The bound (the initial value).
        bound: u32,
    },
    /// The value would overflow a `u32`.
    Overflow,
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseError::AboveBound { bound } => {
                write!(f, "semaphore released too many times (bound {bound})")
            }
            ReleaseError::Overflow => f.write_str("semaphore value would overflow"),
        }
    }
}

impl std::error::Error for ReleaseError {}

/// Why a [`Barrier`](crate::Barrier) wait did not pass.
#[non_exhaustive]
pub enum BarrierError {
    /// The barrier is or became broken (abort, reset while waiting, a timeout or failed
    /// action elsewhere, or a waiter process died).
    Broken,
    /// This wait timed out; the barrier is now broken for everyone.
    Timeout,
    /// This process ran the action as the last to arrive and it failed; the barrier is broken.
    ActionFailed(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Debug for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierError::Broken => f.write_str("Broken"),
            BarrierError::Timeout => f.write_str("Timeout"),
            BarrierError::ActionFailed(e) => write!(f, "ActionFailed({e})"),
        }
    }
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierError::Broken => f.write_str("broken barrier"),
            BarrierError::Timeout => f.write_str("timed out waiting at the barrier (now broken)"),
            BarrierError::ActionFailed(e) => write!(f, "barrier action failed: {e}"),
        }
    }
}

impl std::error::Error for BarrierError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BarrierError::ActionFailed(e) => Some(&**e),
            _ => None,
        }
    }
}
