//! Error types of the lock family: one per operation, each `'static + Send + Sync`, so `?`
//! works in a function returning `Result<_, Box<dyn Error>>` or `anyhow::Result`.
//!
//! No error holds a guard. Owner death is reported as [`LockError::OwnerDied`] (and the
//! `OwnerDied` variants of the other enums); the lock is *not* held after that error and stays
//! flagged until somebody takes it through `recover` (see the crate docs, "Owner death").

use std::fmt;

const OWNER_DIED: &str = "the lock's previous owner died holding it: the protected data may be \
                          inconsistent (take the lock with `recover`, repair, `mark_consistent`)";
const DEADLOCK: &str = "the calling thread already holds this lock";

/// Why [`lock`](crate::RobustMutex::lock) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockError {
    /// A previous holder died holding the lock (now, or earlier without anyone marking the
    /// state consistent since). The lock is not held; take it with `recover`.
    OwnerDied,
    /// The calling thread holds this (non-re-entrant) lock already: waiting would never end.
    Deadlock,
}

/// Why the re-entrant [`lock`](crate::RobustReentrantMutex::lock) (or a
/// [`Condition`](crate::Condition) wait) failed: the only way it can, as
/// [`LockError::OwnerDied`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnerDiedError;

/// Why the re-entrant [`try_lock_for`](crate::RobustReentrantMutex::try_lock_for) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReentrantTimeoutError {
    /// As [`LockError::OwnerDied`].
    OwnerDied,
    /// The timeout passed while another live thread held the lock.
    Timeout,
}

/// Why [`try_lock`](crate::RobustMutex::try_lock) (or the re-entrant
/// [`try_lock`](crate::RobustReentrantMutex::try_lock)) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryLockError {
    /// As [`LockError::OwnerDied`].
    OwnerDied,
    /// Another live thread (possibly the calling one, for the non-re-entrant lock) holds it.
    WouldBlock,
}

/// Why [`try_lock_for`](crate::RobustMutex::try_lock_for) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockTimeoutError {
    /// As [`LockError::OwnerDied`].
    OwnerDied,
    /// As [`LockError::Deadlock`].
    Deadlock,
    /// The timeout passed while a live thread held the lock.
    Timeout,
}

/// [`recover`](crate::RobustMutex::recover) on a non-re-entrant lock that the calling thread
/// holds already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeadlockError;

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockError::OwnerDied => OWNER_DIED,
            LockError::Deadlock => DEADLOCK,
        })
    }
}

impl fmt::Display for TryLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryLockError::OwnerDied => OWNER_DIED,
            TryLockError::WouldBlock => "the lock is held by another thread",
        })
    }
}

impl fmt::Display for LockTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LockTimeoutError::OwnerDied => OWNER_DIED,
            LockTimeoutError::Deadlock => DEADLOCK,
            LockTimeoutError::Timeout => "timed out waiting for the lock",
        })
    }
}

impl fmt::Display for DeadlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(DEADLOCK)
    }
}

impl fmt::Display for OwnerDiedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(OWNER_DIED)
    }
}

impl fmt::Display for ReentrantTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReentrantTimeoutError::OwnerDied => OWNER_DIED,
            ReentrantTimeoutError::Timeout => "timed out waiting for the lock",
        })
    }
}

impl std::error::Error for OwnerDiedError {}
impl std::error::Error for ReentrantTimeoutError {}
impl std::error::Error for LockError {}
impl std::error::Error for TryLockError {}
impl std::error::Error for LockTimeoutError {}
impl std::error::Error for DeadlockError {}

impl From<LockError> for LockTimeoutError {
    fn from(e: LockError) -> Self {
        match e {
            LockError::OwnerDied => LockTimeoutError::OwnerDied,
            LockError::Deadlock => LockTimeoutError::Deadlock,
        }
    }
}

impl From<OwnerDiedError> for LockError {
    fn from(_: OwnerDiedError) -> Self {
        LockError::OwnerDied
    }
}

impl From<OwnerDiedError> for TryLockError {
    fn from(_: OwnerDiedError) -> Self {
        TryLockError::OwnerDied
    }
}

impl From<OwnerDiedError> for LockTimeoutError {
    fn from(_: OwnerDiedError) -> Self {
        LockTimeoutError::OwnerDied
    }
}

impl From<OwnerDiedError> for ReentrantTimeoutError {
    fn from(_: OwnerDiedError) -> Self {
        ReentrantTimeoutError::OwnerDied
    }
}

impl From<ReentrantTimeoutError> for LockTimeoutError {
    fn from(e: ReentrantTimeoutError) -> Self {
        match e {
            ReentrantTimeoutError::OwnerDied => LockTimeoutError::OwnerDied,
            ReentrantTimeoutError::Timeout => LockTimeoutError::Timeout,
        }
    }
}

impl From<DeadlockError> for LockError {
    fn from(_: DeadlockError) -> Self {
        LockError::Deadlock
    }
}

/// [`try_acquire`](crate::Semaphore::try_acquire): the semaphore's value is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WouldBlockError;

/// [`acquire_timeout`](crate::Semaphore::acquire_timeout): the timeout passed while the value
/// was 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeoutError;

impl fmt::Display for WouldBlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the semaphore's value is 0")
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for the semaphore")
    }
}

impl std::error::Error for WouldBlockError {}
impl std::error::Error for TimeoutError {}

/// [`Semaphore::release`](crate::Semaphore::release): the value is `u32::MAX` already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OverflowError;

impl fmt::Display for OverflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore value would overflow")
    }
}

impl std::error::Error for OverflowError {}

/// [`BoundedSemaphore::release`](crate::BoundedSemaphore::release) above the initial value
/// (Python's `ValueError: Semaphore released too many times`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AboveBoundError {
    /// The bound (the initial value).
    pub bound: u32,
}

impl fmt::Display for AboveBoundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "semaphore released too many times (bound {})",
            self.bound
        )
    }
}

impl std::error::Error for AboveBoundError {}

/// Why a [`Barrier::wait`](crate::Barrier::wait) did not pass.
#[non_exhaustive]
pub enum BarrierError {
    /// The barrier is or became broken: `abort`, `reset` while waiting, a timeout or failed
    /// action elsewhere, or a waiter that died.
    Broken,
    /// This thread ran the action as the last to arrive and it failed; the barrier is broken.
    ActionFailed(Box<dyn std::error::Error + Send + Sync>),
}

/// Why a [`Barrier::wait_timeout`](crate::Barrier::wait_timeout) did not pass.
#[non_exhaustive]
pub enum BarrierTimeoutError {
    /// As [`BarrierError::Broken`].
    Broken,
    /// As [`BarrierError::ActionFailed`].
    ActionFailed(Box<dyn std::error::Error + Send + Sync>),
    /// This wait timed out. The barrier is broken for everyone, unless its internal lock
    /// could not be taken in time either (a live holder of a corrupt lock word).
    Timeout,
}

impl From<BarrierError> for BarrierTimeoutError {
    fn from(e: BarrierError) -> Self {
        match e {
            BarrierError::Broken => BarrierTimeoutError::Broken,
            BarrierError::ActionFailed(e) => BarrierTimeoutError::ActionFailed(e),
        }
    }
}

impl fmt::Debug for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierError::Broken => f.write_str("Broken"),
            BarrierError::ActionFailed(e) => write!(f, "ActionFailed({e})"),
        }
    }
}

impl fmt::Debug for BarrierTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierTimeoutError::Broken => f.write_str("Broken"),
            BarrierTimeoutError::ActionFailed(e) => write!(f, "ActionFailed({e})"),
            BarrierTimeoutError::Timeout => f.write_str("Timeout"),
        }
    }
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierError::Broken => f.write_str("broken barrier"),
            BarrierError::ActionFailed(e) => write!(f, "barrier action failed: {e}"),
        }
    }
}

impl fmt::Display for BarrierTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BarrierTimeoutError::Broken => f.write_str("broken barrier"),
            BarrierTimeoutError::ActionFailed(e) => write!(f, "barrier action failed: {e}"),
            BarrierTimeoutError::Timeout => f.write_str("timed out waiting at the barrier"),
        }
    }
}

impl std::error::Error for BarrierError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BarrierError::ActionFailed(e) => Some(&**e),
            BarrierError::Broken => None,
        }
    }
}

impl std::error::Error for BarrierTimeoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BarrierTimeoutError::ActionFailed(e) => Some(&**e),
            _ => None,
        }
    }
}
