//! Errors of the queues: one small enum per operation, rejected items handed back; and the
//! builder knobs every queue shares.

use shm_core::{CreateError, OpenError, ProcessId};
use std::error::Error;
use std::fmt;

/// Every way a queue operation can fail, before it is narrowed to the operation's own enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fail {
    /// Full (a push) or empty (a pop), and the call does not wait.
    NotNow,
    /// The deadline passed.
    Timeout,
    /// Closed (and, for a pop, drained).
    Closed,
    /// The peers that ever attached are all gone (and, for a pop, the queue is drained).
    Disconnected,
    /// Poisoned.
    Corrupt,
    /// The caller's buffer is shorter than the next message (of this many bytes), which stays
    /// queued.
    TooSmall(usize),
}

/// Error enums whose variants hand the rejected item back, one per operation.
macro_rules! item_errors {
    ($(
        $(#[$m:meta])*
        $name:ident { $( $(#[$vm:meta])* $var:ident = $fail:ident : $msg:literal ),+ $(,)? }
    )+) => {$(
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub enum $name<T> {
            $( $(#[$vm])* $var(T), )+
        }

        impl<T> $name<T> {
            /// The rejected item.
            pub fn into_inner(self) -> T {
                match self {
                    $( $name::$var(v) => v, )+
                }
            }

            /// What went wrong, without the item.
            #[allow(dead_code)]
            pub(crate) fn fail(&self) -> Fail {
                match self {
                    $( $name::$var(_) => Fail::$fail, )+
                }
            }

            /// The error for `f` (one this operation can end with), handing `v` back.
            #[allow(dead_code, unreachable_patterns)]
            pub(crate) fn from_fail(f: Fail, v: T) -> Self {
                match f {
                    $( Fail::$fail => $name::$var(v), )+
                    _ => unreachable!("{f:?} cannot end {}", stringify!($name)),
                }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$var(_) => f.write_str(concat!(stringify!($var), "(..)")), )+
                }
            }
        }

        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $( $name::$var(_) => $msg, )+
                })
            }
        }

        impl<T> Error for $name<T> {}
    )+};
}

/// Error enums of pops, one per operation.
macro_rules! pop_errors {
    ($(
        $(#[$m:meta])*
        $name:ident { $( $(#[$vm:meta])* $var:ident = $fail:ident : $msg:literal ),+ $(,)? }
    )+) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vm])* $var, )+
        }

        impl $name {
            /// What went wrong.
            #[allow(dead_code)]
            pub(crate) fn fail(&self) -> Fail {
                match self {
                    $( $name::$var => Fail::$fail, )+
                }
            }

            /// The error for `f` (one this operation can end with).
            #[allow(dead_code, unreachable_patterns)]
            pub(crate) fn from_fail(f: Fail) -> Self {
                match f {
                    $( Fail::$fail => $name::$var, )+
                    _ => unreachable!("{f:?} cannot end {}", stringify!($name)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $( $name::$var => $msg, )+
                })
            }
        }

        impl Error for $name {}
    )+};
}

item_errors! {
    /// Why [`try_push`](crate::spsc::Producer::try_push) did not push; the item is handed back.
    TryPushError {
        /// The queue is full.
        Full = NotNow: "push to a full queue",
        /// The queue was closed; nothing more can be pushed.
        Closed = Closed: "push to a closed queue",
        /// The queue is full and every consumer that ever attached has dropped its handle or
        /// died, so nobody will make room.
        Disconnected = Disconnected: "push to a full queue whose consumers are all gone",
        /// The queue is poisoned: an index or stamp read from the segment could not be right
        /// (another process wrote garbage into it). Every later push and pop fails the same way.
        Corrupt = Corrupt: "push to a poisoned queue: its shared state is corrupt",
    }

    /// Why [`push`](crate::spsc::Producer::push), which waits while the queue is full, did not
    /// push; the item is handed back.
    PushError {
        /// The queue was closed.
        Closed = Closed: "push to a closed queue",
        /// The queue is full and every consumer that ever attached has dropped its handle or
        /// died.
        Disconnected = Disconnected: "push to a full queue whose consumers are all gone",
        /// The queue is poisoned (see [`TryPushError::Corrupt`]).
        Corrupt = Corrupt: "push to a poisoned queue: its shared state is corrupt",
    }

    /// Why [`push_timeout`](crate::spsc::Producer::push_timeout) did not push; the item is
    /// handed back.
    PushTimeoutError {
        /// The queue stayed full until the timeout.
        Timeout = Timeout: "push timed out: the queue stayed full",
        /// The queue was closed.
        Closed = Closed: "push to a closed queue",
        /// The queue is full and every consumer that ever attached has dropped its handle or
        /// died.
        Disconnected = Disconnected: "push to a full queue whose consumers are all gone",
        /// The queue is poisoned (see [`TryPushError::Corrupt`]).
        Corrupt = Corrupt: "push to a poisoned queue: its shared state is corrupt",
    }
}

pop_errors! {
    /// Why [`try_pop`](crate::spsc::Consumer::try_pop) returned no item. `Closed` and
    /// `Disconnected` come only once every remaining item has been delivered.
    TryPopError {
        /// The queue is empty.
        Empty = NotNow: "pop from an empty queue",
        /// The queue was closed and is drained.
        Closed = Closed: "pop from a closed, drained queue",
        /// The queue is drained and every producer that ever attached has dropped its handle
        /// (a producer that died is noticed by the blocking forms).
        Disconnected = Disconnected: "pop from a drained queue whose producers are all gone",
        /// The queue is poisoned: an index or stamp read from the segment could not be right
        /// (another process wrote garbage into it). The items still in it are lost; every
        /// later push and pop fails the same way.
        Corrupt = Corrupt: "pop from a poisoned queue: its shared state is corrupt",
    }

    /// Why [`pop`](crate::spsc::Consumer::pop), which waits while the queue is empty,
    /// returned no item.
    PopError {
        /// The queue was closed and is drained.
        Closed = Closed: "pop from a closed, drained queue",
        /// The queue is drained and every producer that ever attached has dropped its handle or
        /// died. (A queue no producer has attached to yet is waited on.)
        Disconnected = Disconnected: "pop from a drained queue whose producers are all gone",
        /// The queue is poisoned (see [`TryPopError::Corrupt`]).
        Corrupt = Corrupt: "pop from a poisoned queue: its shared state is corrupt",
    }

    /// Why [`pop_timeout`](crate::spsc::Consumer::pop_timeout) returned no item.
    PopTimeoutError {
        /// The queue stayed empty until the timeout.
        Timeout = Timeout: "pop timed out: the queue stayed empty",
        /// The queue was closed and is drained.
        Closed = Closed: "pop from a closed, drained queue",
        /// The queue is drained and every producer that ever attached has dropped its handle or
        /// died.
        Disconnected = Disconnected: "pop from a drained queue whose producers are all gone",
        /// The queue is poisoned (see [`TryPopError::Corrupt`]).
        Corrupt = Corrupt: "pop from a poisoned queue: its shared state is corrupt",
    }
}

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

// The knobs every queue builder has, and the macro that writes their three methods: the
// workspace's one builder core, from shm-core.
pub(crate) use shm_core::{knob_methods, Knobs};
