//! Errors of the queues: one small enum per operation, rejected items handed back.

use shm_core::{CreateError, OpenError, ProcessId};
use std::error::Error;
use std::fmt;

/// Why a push did not happen. Every variant hands the item back.
///
/// Which variants an operation can return: `try_push`: `Full`, `Closed`; `push`: `Closed`,
/// `Disconnected`; `push_timeout`: `Timeout`, `Closed`, `Disconnected`.
#[derive(PartialEq, Eq)]
pub enum PushError<T> {
    /// The queue is full (non-blocking push).
    Full(T),
    /// The queue was closed; nothing more can be pushed.
    Closed(T),
    /// The queue stayed full until the timeout.
    Timeout(T),
    /// The queue is full and every consumer that ever attached has dropped its handle or died,
    /// so nobody will make room.
    Disconnected(T),
    /// The queue is poisoned: an index or stamp read from the segment could not be right
    /// (another process wrote garbage into it). Every later push and pop fails the same way.
    Corrupt(T),
}

impl<T> PushError<T> {
    /// The rejected item.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v)
            | PushError::Closed(v)
            | PushError::Timeout(v)
            | PushError::Disconnected(v)
            | PushError::Corrupt(v) => v,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            PushError::Full(_) => "Full",
            PushError::Closed(_) => "Closed",
            PushError::Timeout(_) => "Timeout",
            PushError::Disconnected(_) => "Disconnected",
            PushError::Corrupt(_) => "Corrupt",
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(..)", self.what())
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "push to a full queue",
            PushError::Closed(_) => "push to a closed queue",
            PushError::Timeout(_) => "push timed out: the queue stayed full",
            PushError::Disconnected(_) => "push to a full queue whose consumers are all gone",
            PushError::Corrupt(_) => "push to a poisoned queue: its shared state is corrupt",
        })
    }
}

impl<T> Error for PushError<T> {}

/// Why a pop returned no item.
///
/// `try_pop`: `Empty`, `Closed`, `Disconnected`; `pop`: `Closed`, `Disconnected`;
/// `pop_timeout`: `Timeout`, `Closed`, `Disconnected`. `Closed` and `Disconnected` are only
/// returned once every remaining item has been delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// The queue is empty (non-blocking pop).
    Empty,
    /// The queue was closed and is drained.
    Closed,
    /// The queue stayed empty until the timeout.
    Timeout,
    /// The queue is drained and every producer that ever attached has dropped its handle or
    /// died.
    Disconnected,
    /// The queue is poisoned: an index or stamp read from the segment could not be right
    /// (another process wrote garbage into it). The items still in it are lost; every later
    /// push and pop fails the same way.
    Corrupt,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PopError::Empty => "pop from an empty queue",
            PopError::Closed => "pop from a closed, drained queue",
            PopError::Timeout => "pop timed out: the queue stayed empty",
            PopError::Disconnected => "pop from a drained queue whose producers are all gone",
            PopError::Corrupt => "pop from a poisoned queue: its shared state is corrupt",
        })
    }
}

impl Error for PopError {}

/// Why a producer or consumer role could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleError {
    /// Every slot of the role is held by a live process (the first holder is named; it may be
    /// this process itself).
    Busy {
        /// A live holder.
        holder: ProcessId,
    },
}

impl fmt::Display for RoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleError::Busy { holder } => write!(f, "role already held by live {holder}"),
        }
    }
}

impl Error for RoleError {}

/// Why a queue could not be created or opened.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A capacity of zero was asked for.
    ZeroCapacity,
    /// The capacity times the element size does not fit in memory.
    TooLarge {
        /// The capacity asked for.
        capacity: u64,
    },
    /// Creating the segment failed.
    Create(CreateError),
    /// Opening the segment failed (missing, another kind, another element type, …).
    Open(OpenError),
    /// The segment's body is smaller than its capacity needs: it is corrupt or not a queue of
    /// this layout.
    BodyTooSmall {
        /// Bytes the queue needs.
        expected: u64,
        /// Bytes the body has.
        found: u64,
    },
    /// The stored capacity is zero or does not fit this platform.
    BadCapacity {
        /// The capacity stored in the header.
        found: u64,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroCapacity => f.write_str("a queue needs a capacity of at least 1"),
            BuildError::TooLarge { capacity } => {
                write!(f, "a queue of capacity {capacity} does not fit in memory")
            }
            BuildError::Create(e) => write!(f, "cannot create the queue: {e}"),
            BuildError::Open(e) => write!(f, "cannot open the queue: {e}"),
            BuildError::BodyTooSmall { expected, found } => write!(
                f,
                "queue segment body too small: needs {expected} bytes, has {found}"
            ),
            BuildError::BadCapacity { found } => {
                write!(f, "queue segment stores an invalid capacity {found}")
            }
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BuildError::Create(e) => Some(e),
            BuildError::Open(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CreateError> for BuildError {
    fn from(e: CreateError) -> Self {
        BuildError::Create(e)
    }
}

impl From<OpenError> for BuildError {
    fn from(e: OpenError) -> Self {
        BuildError::Open(e)
    }
}
