//! Errors of the queues: one small enum per operation, rejected items handed back; and the
//! builder knobs every queue shares.

use shm_core::{CreateError, OpenError, ProcessId, SegmentBuilder, WaitStrategy};
use std::error::Error;
use std::fmt;
use std::time::Duration;

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

/// A geometry (capacity, maximum message) a builder was given that no queue can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadGeometry {
    /// A capacity of zero (or none given to a creator).
    ZeroCapacity,
    /// The capacity times the slot size does not fit in memory.
    TooLarge { capacity: u64 },
    /// A maximum message length over the limit.
    MaxMessage { max: usize, limit: usize },
}

impl BadGeometry {
    fn parameter(self) -> &'static str {
        match self {
            BadGeometry::ZeroCapacity | BadGeometry::TooLarge { .. } => "capacity",
            BadGeometry::MaxMessage { .. } => "max_message",
        }
    }

    fn reason(self) -> String {
        match self {
            BadGeometry::ZeroCapacity => "a queue needs a capacity of at least 1".to_owned(),
            BadGeometry::TooLarge { capacity } => {
                format!("a queue of capacity {capacity} does not fit in memory")
            }
            BadGeometry::MaxMessage { max, limit } => {
                format!("{max} bytes is over the limit of {limit}")
            }
        }
    }
}

impl fmt::Display for BadGeometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.parameter(), self.reason())
    }
}

impl From<BadGeometry> for CreateError {
    fn from(b: BadGeometry) -> Self {
        CreateError::InvalidParameter {
            parameter: b.parameter(),
            reason: b.reason(),
        }
    }
}

impl From<BadGeometry> for OpenError {
    fn from(b: BadGeometry) -> Self {
        OpenError::InvalidParameter {
            parameter: b.parameter(),
            reason: b.reason(),
        }
    }
}

/// The error of an opener that found a header whose geometry cannot be right, or a body too
/// small for it: the segment is corrupt.
pub(crate) fn corrupt_geometry(what: &'static str, detail: String) -> OpenError {
    OpenError::CorruptBody { what, detail }
}

/// The knobs every queue builder has (the workspace's builder convention): the file mode of a
/// creator, how long an opener waits for the creator to publish, and the wait strategy of the
/// handles made from the queue.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Knobs {
    pub(crate) mode: Option<u32>,
    pub(crate) open_timeout: Option<Duration>,
    pub(crate) strategy: WaitStrategy,
}

impl Knobs {
    /// `b` with the mode and open timeout set (where given).
    pub(crate) fn apply(&self, mut b: SegmentBuilder) -> SegmentBuilder {
        if let Some(m) = self.mode {
            b = b.mode(m);
        }
        if let Some(t) = self.open_timeout {
            b = b.open_timeout(t);
        }
        b
    }
}

/// The three knob methods of a builder with a `knobs: Knobs` field.
macro_rules! knob_methods {
    () => {
        /// The file mode of the segment (creator only; default `0o600`). An opener ignores
        /// it.
        pub fn mode(mut self, mode: u32) -> Self {
            self.knobs.mode = Some(mode);
            self
        }

        /// How long `open` waits for the creator to publish the segment (default 5 s).
        pub fn open_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.knobs.open_timeout = Some(timeout);
            self
        }

        /// How the handles made from this queue wait when they block (default:
        /// [`WaitStrategy::default`](shm_core::WaitStrategy::default), spin then sleep); each
        /// handle can change its own with `set_wait_strategy`.
        pub fn wait_strategy(mut self, strategy: shm_core::WaitStrategy) -> Self {
            self.knobs.strategy = strategy;
            self
        }
    };
}
pub(crate) use knob_methods;
