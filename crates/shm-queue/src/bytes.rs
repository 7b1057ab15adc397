//! Queues of variable-length byte messages, SPSC and MPMC, in a named segment or on the heap.
//!
//! A [`ByteQueue`] carries messages of `0..=max_message` bytes; the maximum is fixed at creation
//! and stored in the segment header's `param` (the capacity, in messages, is its `count`).
//! Producers and consumers are role handles ([`BytesProducer`], [`BytesConsumer`]) claimed in the
//! segment by process identity and released on drop; a claim left by a dead process is taken
//! over. An SPSC queue ([`Flavor::Spsc`], `ObjectKind::SpscBytes`) has one role of each kind, an
//! MPMC queue ([`Flavor::Mpmc`], `ObjectKind::MpmcBytes`) has [`MAX_ROLES`] of each.
//!
//! # Algorithm
//!
//! A byte queue is the [one ring](crate::ring) with a byte-message payload: `capacity` fixed
//! slots of (`len: u32`, `max_message` bytes). An SPSC queue runs the ring's SPSC protocol
//! (Lamport, cached indices, no CAS), an MPMC queue its MPMC protocol (per-slot stamps), with
//! the ring's one recovery protocol for producers and consumers that die mid-operation. A
//! consumer looks at a message's length before it takes it, so
//! [`BytesConsumer::pop_into`] with a short buffer loses nothing. The price of fixed slots is
//! space: every slot reserves `max_message` bytes.
//!
//! # Zero copy
//!
//! [`BytesProducer::try_loan`] (and `loan`, `loan_timeout`) lends a slot for writing in place:
//! fill the [`Loan`], then [`commit`](Loan::commit) it; a message is written once, straight
//! into shared memory. [`BytesConsumer::try_read`] (and `read`, `read_timeout`) lends the next
//! message for reading in place ([`Received`]); dropping it consumes the message. No peer can
//! write a lent slot through this API while it is lent.
//!
//! # Errors
//!
//! One enum per operation: `try_push` [`BytesTryPushError`], `push` [`BytesPushError`],
//! `push_timeout` [`BytesPushTimeoutError`] (each hands the message back, `TooLarge`
//! included; the loans hand the length back); pops into a `Vec` and reads in place return the
//! typed queues' [`TryPopError`], [`PopError`] and [`PopTimeoutError`]; pops into a buffer
//! [`TryPopIntoError`], [`PopIntoError`] and [`PopIntoTimeoutError`] (with `TooSmall`, the
//! message staying queued).
//!
//! # Ending
//!
//! A blocked pop returns on a push, on [`ByteQueue::close`] (after the remaining messages),
//! on its timeout, or with `Disconnected` once the queue is drained and every producer that
//! ever claimed a role has dropped it or died (a dead producer is noticed within one sleep
//! slice, [`WaitStrategy::slice`]). A consumer on a queue no producer has attached to yet
//! waits. When one short-lived producer leaves before the next one has arrived, a consumer on
//! a drained queue sees `Disconnected`: a process that expects more producers keeps a producer
//! handle of its own or pops with a timeout. Likewise a blocked push on a full queue returns
//! `Disconnected` once every consumer is gone.
//!
//! Everything read from the segment is checked by the ring's one rule. A length above the
//! maximum, an impossible index, or a stamp that no healthy ring can hold at the position
//! looked at *poisons* the queue: from then on every push and pop, in every process, fails at
//! once with `Corrupt`; it never wedges and never delivers garbage. What is lost: every message
//! still in the queue (none of them can be trusted any more); make a new queue.
//!
//! # Examples
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_queue::bytes::{ByteQueue, Flavor};
//!
//! let name = SegmentName::unique();
//! let q = ByteQueue::builder(&name).flavor(Flavor::Spsc).capacity(8).max_message(64).create()?;
//! let tx = q.producer()?;
//! // Another process opens it by name: flavor, capacity and maximum come from the header.
//! let other = ByteQueue::builder(&name).open()?;
//! assert_eq!(other.flavor(), Flavor::Spsc);
//! let mut rx = other.consumer()?;
//! tx.push(b"hello".as_slice())?;
//! assert_eq!(rx.pop()?, b"hello");
//! let mut buf = [0u8; 2];
//! tx.push(b"longer".as_slice())?;
//! assert!(rx.try_pop_into(&mut buf).is_err()); // too small: the message stays queued
//! assert_eq!(&*rx.try_read()?, b"longer"); // read in place; the drop consumes it
//! assert!(rx.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{
    corrupt_geometry, knob_methods, Fail, Knobs, PopError, PopTimeoutError, RoleError, TryPopError,
};
use crate::ring::{Dest, Geometry, Ring, Rx, Tx, Wait};
use crate::role::Prober;
use shm_core::{CreateError, Home, ObjectKind, OpenError, Segment, SegmentName, WaitStrategy};
use std::error::Error;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

pub use crate::ring::{Flavor, MAX_MESSAGE_LIMIT, MAX_ROLES};

/// Every way a push can fail (each operation's public error has a subset). Every variant
/// hands the message back.
#[derive(PartialEq, Eq)]
pub(crate) enum AnyPushError<M> {
    /// The message is longer than the queue's maximum.
    TooLarge {
        /// The message.
        msg: M,
        /// The queue's maximum message length.
        max: usize,
    },
    /// The queue is full (non-blocking push).
    Full(M),
    /// The queue was closed.
    Closed(M),
    /// The queue stayed full until the timeout.
    Timeout(M),
    /// The queue is full and every consumer that ever attached has gone.
    Disconnected(M),
    /// The queue is poisoned: a stamp or length read from it could not be right (another
    /// process wrote garbage into it). Every later push and pop fails the same way.
    Corrupt(M),
}

impl<M> fmt::Debug for AnyPushError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyPushError::TooLarge { max, .. } => write!(f, "TooLarge {{ max: {max}, .. }}"),
            AnyPushError::Full(_) => f.write_str("Full(..)"),
            AnyPushError::Closed(_) => f.write_str("Closed(..)"),
            AnyPushError::Timeout(_) => f.write_str("Timeout(..)"),
            AnyPushError::Disconnected(_) => f.write_str("Disconnected(..)"),
            AnyPushError::Corrupt(_) => f.write_str("Corrupt(..)"),
        }
    }
}

impl<M> fmt::Display for AnyPushError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyPushError::TooLarge { max, .. } => {
                write!(f, "message longer than the queue's maximum of {max} bytes")
            }
            AnyPushError::Full(_) => f.write_str("push to a full queue"),
            AnyPushError::Closed(_) => f.write_str("push to a closed queue"),
            AnyPushError::Timeout(_) => f.write_str("push timed out: the queue stayed full"),
            AnyPushError::Disconnected(_) => {
                f.write_str("push to a full queue whose consumers are all gone")
            }
            AnyPushError::Corrupt(_) => {
                f.write_str("push to a poisoned queue: its shared state is corrupt")
            }
        }
    }
}

impl<M> Error for AnyPushError<M> {}

/// Every way a pop can fail (each operation's public error has a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnyPopError {
    /// The queue is empty (non-blocking pop).
    Empty,
    /// The queue was closed and is drained.
    Closed,
    /// The queue stayed empty until the timeout.
    Timeout,
    /// The queue is drained and every producer that ever attached has gone.
    Disconnected,
    /// The buffer is shorter than the next message, which stays queued.
    TooSmall {
        /// The message's length.
        needed: usize,
    },
    /// The queue is poisoned: a stamp or length read from it could not be right (another
    /// process wrote garbage into it). The messages still in it are lost; every later push
    /// and pop fails the same way.
    Corrupt,
}

impl fmt::Display for AnyPopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyPopError::Empty => f.write_str("pop from an empty queue"),
            AnyPopError::Closed => f.write_str("pop from a closed, drained queue"),
            AnyPopError::Timeout => f.write_str("pop timed out: the queue stayed empty"),
            AnyPopError::Disconnected => {
                f.write_str("pop from a drained queue whose producers are all gone")
            }
            AnyPopError::TooSmall { needed } => {
                write!(f, "buffer too small: the next message has {needed} bytes")
            }
            AnyPopError::Corrupt => {
                f.write_str("pop from a poisoned queue: its shared state is corrupt")
            }
        }
    }
}

impl Error for AnyPopError {}

/// The public push errors of the byte queues, one per operation; each hands the message back.
macro_rules! bytes_push_errors {
    ($(
        $(#[$m:meta])*
        $name:ident { $( $(#[$vm:meta])* $var:ident : $msg:literal ),* $(,)? }
    )+) => {$(
        $(#[$m])*
        #[derive(PartialEq, Eq)]
        pub enum $name<M> {
            /// The message is longer than the queue's maximum.
            TooLarge {
                /// The message.
                msg: M,
                /// The queue's maximum message length.
                max: usize,
            },
            $( $(#[$vm])* $var(M), )*
            /// The queue is poisoned: a stamp or length read from it could not be right
            /// (another process wrote garbage into it). Every later push and pop fails the
            /// same way.
            Corrupt(M),
        }

        impl<M> $name<M> {
            /// The rejected message.
            pub fn into_inner(self) -> M {
                match self {
                    $name::TooLarge { msg, .. } => msg,
                    $( $name::$var(m) => m, )*
                    $name::Corrupt(m) => m,
                }
            }

            /// The same error in the form every push shares.
            #[allow(dead_code)]
            pub(crate) fn widen(self) -> AnyPushError<M> {
                match self {
                    $name::TooLarge { msg, max } => AnyPushError::TooLarge { msg, max },
                    $( $name::$var(m) => AnyPushError::$var(m), )*
                    $name::Corrupt(m) => AnyPushError::Corrupt(m),
                }
            }

            /// The public form of `e`, which this operation can end with.
            #[allow(unreachable_patterns)]
            #[inline]
            pub(crate) fn narrow(e: AnyPushError<M>) -> Self {
                match e {
                    AnyPushError::TooLarge { msg, max } => $name::TooLarge { msg, max },
                    $( AnyPushError::$var(m) => $name::$var(m), )*
                    AnyPushError::Corrupt(m) => $name::Corrupt(m),
                    other => unreachable!("{other:?} cannot end {}", stringify!($name)),
                }
            }
        }

        impl<M> fmt::Debug for $name<M> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::TooLarge { max, .. } => write!(f, "TooLarge {{ max: {max}, .. }}"),
                    $( $name::$var(_) => f.write_str(concat!(stringify!($var), "(..)")), )*
                    $name::Corrupt(_) => f.write_str("Corrupt(..)"),
                }
            }
        }

        impl<M> fmt::Display for $name<M> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::TooLarge { max, .. } => {
                        write!(f, "message longer than the queue's maximum of {max} bytes")
                    }
                    $( $name::$var(_) => f.write_str($msg), )*
                    $name::Corrupt(_) => {
                        f.write_str("push to a poisoned queue: its shared state is corrupt")
                    }
                }
            }
        }

        impl<M> Error for $name<M> {}
    )+};
}

bytes_push_errors! {
    /// Why [`BytesProducer::try_push`] did not push.
    BytesTryPushError {
        /// The queue is full.
        Full: "push to a full queue",
        /// The queue was closed.
        Closed: "push to a closed queue",
        /// The queue is full and every consumer that ever attached has gone.
        Disconnected: "push to a full queue whose consumers are all gone",
    }

    /// Why [`BytesProducer::push`], which waits while the queue is full, did not push.
    BytesPushError {
        /// The queue was closed.
        Closed: "push to a closed queue",
        /// The queue is full and every consumer that ever attached has gone.
        Disconnected: "push to a full queue whose consumers are all gone",
    }

    /// Why [`BytesProducer::push_timeout`] did not push.
    BytesPushTimeoutError {
        /// The queue stayed full until the timeout.
        Timeout: "push timed out: the queue stayed full",
        /// The queue was closed.
        Closed: "push to a closed queue",
        /// The queue is full and every consumer that ever attached has gone.
        Disconnected: "push to a full queue whose consumers are all gone",
    }
}

/// The errors of pops into a caller's buffer, one per operation: those of the pops into a
/// `Vec`, and `TooSmall`.
macro_rules! pop_into_errors {
    ($(
        $(#[$m:meta])*
        $name:ident { $( $(#[$vm:meta])* $var:ident : $msg:literal ),* $(,)? }
    )+) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            /// The buffer is shorter than the next message, which stays queued.
            TooSmall {
                /// The message's length.
                needed: usize,
            },
            $( $(#[$vm])* $var, )*
            /// The queue is poisoned: a stamp or length read from it could not be right
            /// (another process wrote garbage into it). The messages still in it are lost;
            /// every later push and pop fails the same way.
            Corrupt,
        }

        impl $name {
            /// The public form of `e`, which this operation can end with.
            #[allow(unreachable_patterns)]
            #[inline]
            pub(crate) fn narrow(e: AnyPopError) -> Self {
                match e {
                    AnyPopError::TooSmall { needed } => $name::TooSmall { needed },
                    $( AnyPopError::$var => $name::$var, )*
                    AnyPopError::Corrupt => $name::Corrupt,
                    other => unreachable!("{other:?} cannot end {}", stringify!($name)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::TooSmall { needed } => {
                        write!(f, "buffer too small: the next message has {needed} bytes")
                    }
                    $( $name::$var => f.write_str($msg), )*
                    $name::Corrupt => {
                        f.write_str("pop from a poisoned queue: its shared state is corrupt")
                    }
                }
            }
        }

        impl Error for $name {}
    )+};
}

pop_into_errors! {
    /// Why [`BytesConsumer::try_pop_into`] returned no message.
    TryPopIntoError {
        /// The queue is empty.
        Empty: "pop from an empty queue",
        /// The queue was closed and is drained.
        Closed: "pop from a closed, drained queue",
        /// The queue is drained and every producer that ever attached has gone.
        Disconnected: "pop from a drained queue whose producers are all gone",
    }

    /// Why [`BytesConsumer::pop_into`], which waits while the queue is empty, returned no
    /// message.
    PopIntoError {
        /// The queue was closed and is drained.
        Closed: "pop from a closed, drained queue",
        /// The queue is drained and every producer that ever attached has gone.
        Disconnected: "pop from a drained queue whose producers are all gone",
    }

    /// Why [`BytesConsumer::pop_into_timeout`] returned no message.
    PopIntoTimeoutError {
        /// The queue stayed empty until the timeout.
        Timeout: "pop timed out: the queue stayed empty",
        /// The queue was closed and is drained.
        Closed: "pop from a closed, drained queue",
        /// The queue is drained and every producer that ever attached has gone.
        Disconnected: "pop from a drained queue whose producers are all gone",
    }
}

/// What a pop into a `Vec` (never `TooSmall`) failed with, for the typed queues' pop errors
/// ([`TryPopError`], [`PopError`], [`PopTimeoutError`]), which have the same shapes.
pub(crate) fn narrow_pop(e: AnyPopError) -> Fail {
    match e {
        AnyPopError::Empty => Fail::NotNow,
        AnyPopError::Timeout => Fail::Timeout,
        AnyPopError::Closed => Fail::Closed,
        AnyPopError::Disconnected => Fail::Disconnected,
        AnyPopError::Corrupt | AnyPopError::TooSmall { .. } => Fail::Corrupt,
    }
}

impl<M> AnyPushError<M> {
    /// The error for `f` (what a ring operation ended with), handing `msg` back.
    #[inline]
    pub(crate) fn from_fail(f: Fail, msg: M) -> AnyPushError<M> {
        match f {
            Fail::NotNow => AnyPushError::Full(msg),
            Fail::Timeout => AnyPushError::Timeout(msg),
            Fail::Closed => AnyPushError::Closed(msg),
            Fail::Disconnected => AnyPushError::Disconnected(msg),
            Fail::Corrupt | Fail::TooSmall(_) => AnyPushError::Corrupt(msg),
        }
    }
}

impl AnyPopError {
    /// The error for `f` (what a ring operation ended with).
    #[inline]
    pub(crate) fn from_fail(f: Fail) -> AnyPopError {
        match f {
            Fail::NotNow => AnyPopError::Empty,
            Fail::Timeout => AnyPopError::Timeout,
            Fail::Closed => AnyPopError::Closed,
            Fail::Disconnected => AnyPopError::Disconnected,
            Fail::TooSmall(needed) => AnyPopError::TooSmall { needed },
            Fail::Corrupt => AnyPopError::Corrupt,
        }
    }
}

/// The segment kind of a byte queue of `flavor`.
fn kind(flavor: Flavor) -> ObjectKind {
    match flavor {
        Flavor::Spsc => ObjectKind::SpscBytes,
        Flavor::Mpmc => ObjectKind::MpmcBytes,
    }
}

/// Pushes `msg` through `tx`, waiting as `wait` says (the one push of byte queues,
/// JoinableQueue and Pipe).
#[inline(always)]
pub(crate) fn push_msg<M: AsRef<[u8]>>(tx: &Tx, msg: M, wait: Wait) -> Result<(), AnyPushError<M>> {
    let bytes = msg.as_ref();
    let max = tx.ring().max_message();
    if bytes.len() > max {
        return Err(AnyPushError::TooLarge { msg, max });
    }
    tx.push_bytes(bytes, wait)
        .map_err(|f| AnyPushError::from_fail(f, msg))
}

/// Pops one message through `rx` into `dest`, waiting as `wait` says; its length.
#[inline(always)]
pub(crate) fn pop_msg(rx: &Rx, dest: &mut Dest<'_>, wait: Wait) -> Result<usize, AnyPopError> {
    rx.pop_bytes(dest, wait).map_err(AnyPopError::from_fail)
}

/// A queue of byte messages: the handle to its memory, from which role handles are taken.
///
/// See the [module docs](self) for the algorithm and an example.
#[derive(Debug, Clone)]
pub struct ByteQueue {
    ring: Arc<Ring>,
    /// The wait strategy handed to new role handles.
    strategy: WaitStrategy,
}

/// Builds a [`ByteQueue`]: create, open, or open-or-create by name. Defaults: 64 messages of
/// at most 4096 bytes, MPMC.
#[derive(Debug, Clone)]
#[must_use]
pub struct ByteQueueBuilder {
    name: SegmentName,
    flavor: Option<Flavor>,
    capacity: u64,
    max_message: usize,
    knobs: Knobs,
}

impl ByteQueueBuilder {
    /// The flavor (creating: default [`Flavor::Mpmc`]; opening: checked if given, adopted
    /// from the segment otherwise).
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = Some(flavor);
        self
    }

    /// The capacity in messages (creating; an opener adopts the segment's).
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// The largest message in bytes (creating; an opener adopts the segment's), at most
    /// [`MAX_MESSAGE_LIMIT`].
    pub fn max_message(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }

    knob_methods!();

    fn segment(&self, flavor: Flavor) -> shm_core::SegmentBuilder {
        self.knobs.apply(
            Segment::builder(&self.name, kind(flavor))
                .count(self.capacity)
                .param(self.max_message as u64),
        )
    }

    fn geometry(&self) -> Geometry {
        Geometry::bytes(
            self.flavor.unwrap_or(Flavor::Mpmc),
            self.capacity,
            self.max_message,
        )
    }

    /// Creates the queue (the name must be free).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] for a zero capacity, a maximum over
    /// [`MAX_MESSAGE_LIMIT`] or a ring too large for memory; the segment's errors.
    pub fn create(self) -> Result<ByteQueue, CreateError> {
        let geo = self.geometry();
        let len = geo.body_len()?;
        let seg = self
            .segment(geo.flavor)
            .body_len(len)
            // SAFETY: the body is 128-aligned, `len` bytes (the geometry's), and not yet
            // published to anyone.
            .create(|body, _| unsafe { Ring::init(body, &geo) })?;
        Self::adopt(seg, geo.flavor, self.knobs).map_err(|e| CreateError::Invalid {
            reason: e.to_string(),
        })
    }

    /// Opens an existing queue, adopting its flavor, capacity and maximum from the header.
    ///
    /// # Errors
    ///
    /// The segment's errors (missing, another kind — including the other flavor when one was
    /// given); [`OpenError::CorruptBody`] for a header whose geometry cannot be right.
    pub fn open(self) -> Result<ByteQueue, OpenError> {
        let bare = |f: Flavor| {
            self.knobs
                .apply(Segment::builder(&self.name, kind(f)))
                .open()
        };
        let (seg, flavor) = match self.flavor {
            Some(f) => (bare(f)?, f),
            None => match bare(Flavor::Mpmc) {
                Ok(seg) => (seg, Flavor::Mpmc),
                Err(OpenError::WrongKind {
                    found: ObjectKind::SpscBytes,
                    ..
                }) => (bare(Flavor::Spsc)?, Flavor::Spsc),
                Err(e) => return Err(e),
            },
        };
        Self::adopt(seg, flavor, self.knobs)
    }

    /// Opens the queue, or creates it if there is none (race-free).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`create`](Self::create) (the latter as
    /// [`OpenError::InvalidParameter`] or [`OpenError::Create`]).
    pub fn open_or_create(self) -> Result<ByteQueue, OpenError> {
        if self.flavor.is_none() {
            // No flavor stated: an existing queue of either flavor is adopted.
            match self.clone().open() {
                Err(OpenError::NotFound { .. }) => {}
                other => return other,
            }
        }
        let geo = self.geometry();
        let len = geo.body_len()?;
        let seg = self
            .segment(geo.flavor)
            .body_len(len)
            // SAFETY: the body is 128-aligned, `len` bytes (the geometry's), and not yet
            // published to anyone.
            .open_or_create(|body, _| unsafe { Ring::init(body, &geo) })?;
        Self::adopt(seg, geo.flavor, self.knobs)
    }

    fn adopt(seg: Segment, flavor: Flavor, knobs: Knobs) -> Result<ByteQueue, OpenError> {
        let param = seg.header().param();
        let max = usize::try_from(param)
            .ok()
            .filter(|&m| m <= MAX_MESSAGE_LIMIT)
            .ok_or_else(|| {
                corrupt_geometry("max_message", format!("the header records {param} bytes"))
            })?;
        let geo = Geometry::opened(&seg, 0, |cap| Geometry::bytes(flavor, cap, max))?;
        let ring = Ring::attach(Arc::new(Home::Segment(seg)), 0, geo, Prober::os(), false)
            .map_err(|detail| corrupt_geometry("body", detail))?;
        Ok(ByteQueue {
            ring: Arc::new(ring),
            strategy: knobs.strategy,
        })
    }
}

impl ByteQueue {
    /// A builder for the queue named `name`.
    pub fn builder(name: &SegmentName) -> ByteQueueBuilder {
        ByteQueueBuilder {
            name: name.clone(),
            flavor: None,
            capacity: 64,
            max_message: 4096,
            knobs: Knobs::default(),
        }
    }

    /// A queue on the heap, for threads of one process (the same ring; loom and miri run on
    /// it).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] for an impossible geometry.
    pub fn heap(
        flavor: Flavor,
        capacity: u64,
        max_message: usize,
    ) -> Result<ByteQueue, CreateError> {
        let ring = Ring::heap(Geometry::bytes(flavor, capacity, max_message), false)?;
        Ok(ByteQueue {
            ring: Arc::new(ring),
            strategy: WaitStrategy::default(),
        })
    }

    /// A heap queue whose liveness answers come from `prober` (tests inject deaths).
    #[cfg(test)]
    fn heap_probed(flavor: Flavor, capacity: u64, max: usize, prober: Prober) -> ByteQueue {
        let geo = Geometry::bytes(flavor, capacity, max);
        let ring = Ring::heap_probed(geo, false, prober).expect("a valid test geometry");
        ByteQueue {
            ring: Arc::new(ring),
            strategy: WaitStrategy::default(),
        }
    }

    /// Claims a producer role.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if live processes hold every producer role.
    pub fn producer(&self) -> Result<BytesProducer, RoleError> {
        Ok(BytesProducer {
            tx: Tx::attach(&self.ring, self.strategy)?,
        })
    }

    /// Claims a consumer role.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if live processes hold every consumer role.
    pub fn consumer(&self) -> Result<BytesConsumer, RoleError> {
        Ok(BytesConsumer {
            rx: Rx::attach(&self.ring, self.strategy)?,
        })
    }

    /// Closes the queue: pushes fail with `Closed`, pops drain what is left and then fail with
    /// `Closed`; blocked callers wake up.
    pub fn close(&self) {
        self.ring.close();
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }

    /// Whether the queue is poisoned (its shared state is corrupt).
    pub fn is_poisoned(&self) -> bool {
        self.ring.is_poisoned()
    }

    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Messages in the queue (exact when nobody pushes or pops meanwhile).
    pub fn len(&self) -> usize {
        self.ring.len() as usize
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity in messages.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.ring.max_message()
    }

    /// Test hook: writes `stamp` into the slot of position `pos` (MPMC queues), as a process
    /// scribbling over the segment would.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn forge_stamp(&self, pos: u64, stamp: u64) {
        self.ring.forge_stamp(pos, stamp);
    }

    /// Test hook: sets the poisoned bit of the state word, as a process scribbling over the
    /// segment, or one that read an impossible index, would.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn forge_poisoned(&self) {
        self.ring.poison();
    }

    /// Test hook: writes `value` into `tail` (`which == 0`) or `head` (otherwise).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn forge_index(&self, which: u8, value: u64) {
        self.ring.forge_index(which, value);
    }

    /// Positions passed over (MPMC): taken by a producer that died before publishing, or by a
    /// loan dropped uncommitted. Always 0 for SPSC queues, where neither publishes anything.
    pub fn skipped(&self) -> u64 {
        self.ring.skipped()
    }

    /// The flavor.
    pub fn flavor(&self) -> Flavor {
        self.ring.flavor()
    }

    /// The segment, if the queue lives in one.
    pub fn segment(&self) -> Option<&Segment> {
        self.ring.segment()
    }
}

/// A producer of a [`ByteQueue`]; releases its role on drop. `Send`, not `Sync`: one
/// operation at a time.
#[must_use = "dropping the producer releases its role"]
#[derive(Debug)]
pub struct BytesProducer {
    tx: Tx,
}

impl BytesProducer {
    /// Sets how blocked pushes wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.tx.set_wait_strategy(strategy);
    }

    /// Pushes without waiting.
    ///
    /// # Errors
    ///
    /// [`BytesTryPushError`], with the message: `TooLarge`, `Full`, `Closed`,
    /// `Disconnected` (full and every consumer gone), `Corrupt`.
    #[inline(always)]
    pub fn try_push<M: AsRef<[u8]>>(&self, msg: M) -> Result<(), BytesTryPushError<M>> {
        push_msg(&self.tx, msg, Wait::No).map_err(BytesTryPushError::narrow)
    }

    /// Pushes, waiting while the queue is full. The message is in shared memory when this
    /// returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`BytesPushError`], with the message: `TooLarge`, `Closed`, `Disconnected`, `Corrupt`.
    pub fn push<M: AsRef<[u8]>>(&self, msg: M) -> Result<(), BytesPushError<M>> {
        push_msg(&self.tx, msg, Wait::For(None)).map_err(BytesPushError::narrow)
    }

    /// Pushes, waiting at most `timeout` while the queue is full.
    ///
    /// # Errors
    ///
    /// [`BytesPushTimeoutError`]: as [`push`](Self::push), and `Timeout`.
    pub fn push_timeout<M: AsRef<[u8]>>(
        &self,
        msg: M,
        timeout: Duration,
    ) -> Result<(), BytesPushTimeoutError<M>> {
        push_msg(&self.tx, msg, Wait::For(Some(timeout))).map_err(BytesPushTimeoutError::narrow)
    }

    fn loan_with(&mut self, len: usize, wait: Wait) -> Result<Loan<'_>, AnyPushError<usize>> {
        let max = self.tx.ring().max_message();
        if len > max {
            return Err(AnyPushError::TooLarge { msg: len, max });
        }
        let pos = self
            .tx
            .claim(wait)
            .map_err(|f| AnyPushError::from_fail(f, len))?;
        Ok(Loan {
            tx: &self.tx,
            pos,
            len,
            done: false,
        })
    }

    /// Lends the next free slot for a message of exactly `len` bytes, written in place: fill
    /// the [`Loan`] (it derefs to `&mut [u8]`), then [`commit`](Loan::commit) it. Dropping it
    /// uncommitted publishes nothing. Without waiting.
    ///
    /// # Errors
    ///
    /// [`BytesTryPushError`], with `len`: `TooLarge`, `Full`, `Closed`, `Disconnected`,
    /// `Corrupt`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::bytes::{ByteQueue, Flavor};
    ///
    /// let q = ByteQueue::heap(Flavor::Spsc, 4, 1 << 20)?;
    /// let (mut tx, mut rx) = (q.producer()?, q.consumer()?);
    /// let mut loan = tx.try_loan(5)?;
    /// loan.copy_from_slice(b"hello"); // written once, in shared memory
    /// loan.commit();
    /// let msg = rx.try_read()?;
    /// assert_eq!(&*msg, b"hello"); // read in place
    /// drop(msg); // consumed
    /// assert!(q.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_loan(&mut self, len: usize) -> Result<Loan<'_>, BytesTryPushError<usize>> {
        self.loan_with(len, Wait::No)
            .map_err(BytesTryPushError::narrow)
    }

    /// Like [`try_loan`](Self::try_loan), waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`BytesPushError`], with `len`: `TooLarge`, `Closed`, `Disconnected`, `Corrupt`.
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>, BytesPushError<usize>> {
        self.loan_with(len, Wait::For(None))
            .map_err(BytesPushError::narrow)
    }

    /// Like [`try_loan`](Self::try_loan), waiting at most `timeout` while the queue is full.
    ///
    /// # Errors
    ///
    /// [`BytesPushTimeoutError`]: as [`loan`](Self::loan), and `Timeout`.
    pub fn loan_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<Loan<'_>, BytesPushTimeoutError<usize>> {
        self.loan_with(len, Wait::For(Some(timeout)))
            .map_err(BytesPushTimeoutError::narrow)
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.tx.ring().max_message()
    }
}

/// A slot lent for writing one message in place (see [`BytesProducer::try_loan`]). Derefs to
/// the message's `len` bytes (holding whatever the slot held before: overwrite them). Nothing
/// is published until [`commit`](Self::commit); dropping it uncommitted cancels it (an MPMC
/// queue's consumers pass over the slot).
#[must_use = "a loan publishes nothing unless committed"]
pub struct Loan<'a> {
    tx: &'a Tx,
    pos: u64,
    len: usize,
    done: bool,
}

impl Loan<'_> {
    /// Publishes the message.
    pub fn commit(mut self) {
        let ring = self.tx.ring();
        ring.msg_len(self.pos)
            .store(self.len as u32, shm_core::sync::atomic::Ordering::Relaxed);
        self.tx.commit(self.pos);
        self.done = true;
    }

    /// Shortens the message to `len` bytes (no-op if it is not longer).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl Deref for Loan<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the slot is ours until commit or drop (claimed, not published: no consumer
        // reads it, no producer writes it); len <= max bytes lie in its message area.
        unsafe { std::slice::from_raw_parts(self.tx.ring().msg_data(self.pos), self.len) }
    }
}

impl DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.tx.ring().msg_data(self.pos), self.len) }
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.tx.cancel_bytes(self.pos);
        }
    }
}

impl fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loan").field("len", &self.len).finish()
    }
}

/// A consumer of a [`ByteQueue`]; releases its role on drop. `Send`, not `Sync`: one
/// operation at a time.
#[must_use = "dropping the consumer releases its role"]
#[derive(Debug)]
pub struct BytesConsumer {
    rx: Rx,
}

impl BytesConsumer {
    /// Sets how blocked pops wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.rx.set_wait_strategy(strategy);
    }

    fn pop_vec(&self, wait: Wait) -> Result<Vec<u8>, Fail> {
        let mut v = Vec::new();
        self.rx.pop_bytes(&mut Dest::Vec(&mut v), wait)?;
        Ok(v)
    }

    /// Pops a message without waiting.
    ///
    /// # Errors
    ///
    /// [`TryPopError`]: `Empty`, `Closed` (drained), `Disconnected` (drained, producers gone),
    /// `Corrupt`.
    pub fn try_pop(&self) -> Result<Vec<u8>, TryPopError> {
        self.pop_vec(Wait::No).map_err(TryPopError::from_fail)
    }

    /// Pops a message, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`PopError`]: `Closed`, `Disconnected` (each once drained), `Corrupt`.
    pub fn pop(&self) -> Result<Vec<u8>, PopError> {
        self.pop_vec(Wait::For(None)).map_err(PopError::from_fail)
    }

    /// Pops a message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`PopTimeoutError`]: as [`pop`](Self::pop), and `Timeout`.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<Vec<u8>, PopTimeoutError> {
        self.pop_vec(Wait::For(Some(timeout)))
            .map_err(PopTimeoutError::from_fail)
    }

    /// Pops a message into `buf` without waiting; returns its length.
    ///
    /// # Errors
    ///
    /// [`TryPopIntoError`]: `TooSmall { needed }` (the message stays queued), `Empty`,
    /// `Closed`, `Disconnected`, `Corrupt`.
    #[inline(always)]
    pub fn try_pop_into(&self, buf: &mut [u8]) -> Result<usize, TryPopIntoError> {
        pop_msg(&self.rx, &mut Dest::Slice(buf), Wait::No).map_err(TryPopIntoError::narrow)
    }

    /// Pops a message into `buf`, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`PopIntoError`]: `TooSmall { needed }`, `Closed`, `Disconnected`, `Corrupt`.
    pub fn pop_into(&self, buf: &mut [u8]) -> Result<usize, PopIntoError> {
        pop_msg(&self.rx, &mut Dest::Slice(buf), Wait::For(None)).map_err(PopIntoError::narrow)
    }

    /// Pops a message into `buf`, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`PopIntoTimeoutError`]: as [`pop_into`](Self::pop_into), and `Timeout`.
    pub fn pop_into_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, PopIntoTimeoutError> {
        pop_msg(&self.rx, &mut Dest::Slice(buf), Wait::For(Some(timeout)))
            .map_err(PopIntoTimeoutError::narrow)
    }

    fn read_with(&mut self, wait: Wait) -> Result<Received<'_>, Fail> {
        let (pos, len) = self.rx.take_bytes(wait)?;
        Ok(Received {
            rx: &self.rx,
            pos,
            len,
        })
    }

    /// Lends the next message for reading in place, without waiting: the [`Received`] derefs
    /// to its bytes, in shared memory; dropping it consumes the message. While it is lent, no
    /// producer writes its slot (an MPMC queue's producers wait for it once they have gone
    /// round the ring).
    ///
    /// # Errors
    ///
    /// [`TryPopError`]: `Empty`, `Closed` (drained), `Disconnected` (drained, producers gone),
    /// `Corrupt`.
    pub fn try_read(&mut self) -> Result<Received<'_>, TryPopError> {
        self.read_with(Wait::No).map_err(TryPopError::from_fail)
    }

    /// Like [`try_read`](Self::try_read), waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`PopError`]: `Closed`, `Disconnected` (each once drained), `Corrupt`.
    pub fn read(&mut self) -> Result<Received<'_>, PopError> {
        self.read_with(Wait::For(None)).map_err(PopError::from_fail)
    }

    /// Like [`try_read`](Self::try_read), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`PopTimeoutError`]: as [`read`](Self::read), and `Timeout`.
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<Received<'_>, PopTimeoutError> {
        self.read_with(Wait::For(Some(timeout)))
            .map_err(PopTimeoutError::from_fail)
    }

    /// Messages in the queue.
    pub fn len(&self) -> usize {
        self.rx.ring().len() as usize
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The largest message.
    pub fn max_message(&self) -> usize {
        self.rx.ring().max_message()
    }
}

/// A message lent for reading in place (see [`BytesConsumer::try_read`]); derefs to its
/// bytes. Dropping it consumes the message.
pub struct Received<'a> {
    rx: &'a Rx,
    pos: u64,
    len: usize,
}

impl Deref for Received<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the slot is ours until drop (published, taken: no producer writes it
        // before we release it); its length was checked against the maximum.
        unsafe { std::slice::from_raw_parts(self.rx.ring().msg_data(self.pos), self.len) }
    }
}

impl Drop for Received<'_> {
    fn drop(&mut self) {
        self.rx.release(self.pos);
    }
}

impl fmt::Debug for Received<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Received").field("len", &self.len).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::role;
    use shm_core::sync::atomic::Ordering;

    fn msg(i: usize, max: usize) -> Vec<u8> {
        let len = (i * 7919) % (max + 1);
        (0..len).map(|j| (i + j * 31) as u8).collect()
    }

    /// Regression (issue 11): `ByteQueue::builder(&n).open()` on an SPSC byte queue failed
    /// with "expected MpmcBytes, found SpscBytes". The opener adopts flavor, capacity and
    /// maximum from the header; a flavor it states is checked.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn opener_adopts_flavor_and_geometry() {
        for flavor in [Flavor::Spsc, Flavor::Mpmc] {
            let name = SegmentName::unique();
            let q = ByteQueue::builder(&name)
                .flavor(flavor)
                .capacity(3)
                .max_message(40)
                .mode(0o600)
                .wait_strategy(WaitStrategy::sleep())
                .create()
                .unwrap();
            let o = ByteQueue::builder(&name)
                .open_timeout(Duration::from_secs(5))
                .open()
                .unwrap();
            assert_eq!((o.flavor(), o.capacity(), o.max_message()), (flavor, 3, 40));
            let other = match flavor {
                Flavor::Spsc => Flavor::Mpmc,
                Flavor::Mpmc => Flavor::Spsc,
            };
            assert!(matches!(
                ByteQueue::builder(&name).flavor(other).open(),
                Err(OpenError::WrongKind { .. })
            ));
            let tx = q.producer().unwrap();
            let rx = o.consumer().unwrap();
            tx.push(b"hi").unwrap();
            assert_eq!(rx.pop().unwrap(), b"hi");
            let again = ByteQueue::builder(&name).open_or_create().unwrap();
            assert_eq!(again.flavor(), flavor);
        }
        assert!(matches!(
            ByteQueue::builder(&SegmentName::unique())
                .capacity(0)
                .create(),
            Err(CreateError::InvalidParameter {
                parameter: "capacity",
                ..
            })
        ));
        assert!(matches!(
            ByteQueue::builder(&SegmentName::unique()).open(),
            Err(OpenError::NotFound { .. })
        ));
    }

    #[test]
    fn geometry() {
        use crate::error::BadGeometry;
        use crate::ring::CTL_LEN;
        let len = |f, cap, max| Geometry::bytes(f, cap, max).body_len();
        // MPMC slots: stamp, length word, payload, rounded up to 64 bytes.
        assert_eq!(len(Flavor::Mpmc, 1, 0), Ok(CTL_LEN + 128));
        assert_eq!(len(Flavor::Mpmc, 2, 48), Ok(CTL_LEN + 128));
        assert_eq!(len(Flavor::Mpmc, 2, 49), Ok(CTL_LEN + 256));
        // SPSC slots: length word and payload, rounded up to 8 bytes.
        assert_eq!(len(Flavor::Spsc, 16, 64), Ok(CTL_LEN + 16 * 72));
        assert_eq!(len(Flavor::Mpmc, 0, 8), Err(BadGeometry::ZeroCapacity));
        assert!(matches!(
            len(Flavor::Spsc, 1, usize::MAX),
            Err(BadGeometry::MaxMessage { .. })
        ));
        assert!(matches!(
            len(Flavor::Mpmc, u64::MAX, 8),
            Err(BadGeometry::TooLarge { .. })
        ));
        assert_eq!(len(Flavor::Spsc, 3, 8).unwrap() % 128, 0);
    }

    #[test]
    fn fifo_wrap_and_sizes() {
        let max = 40;
        for mode in [Flavor::Spsc, Flavor::Mpmc] {
            let q = ByteQueue::heap(mode, 3, max).unwrap();
            let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
            let n = if cfg!(miri) { 20 } else { 200 };
            let mut next = 0;
            for i in 0..n {
                tx.try_push(msg(i, max)).unwrap();
                if i % 2 == 1 {
                    assert_eq!(rx.try_pop().unwrap(), msg(next, max));
                    next += 1;
                }
                if q.len() == 3 {
                    assert!(matches!(tx.try_push(b"x"), Err(BytesTryPushError::Full(_))));
                    while next <= i {
                        assert_eq!(rx.try_pop().unwrap(), msg(next, max));
                        next += 1;
                    }
                }
            }
            while next < n {
                assert_eq!(rx.try_pop().unwrap(), msg(next, max));
                next += 1;
            }
            assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
            assert!(q.is_empty());
        }
    }

    #[test]
    fn too_large_hands_back_and_max_fits() {
        let q = ByteQueue::heap(Flavor::Mpmc, 2, 8).unwrap();
        let tx = q.producer().unwrap();
        let big = vec![1u8; 9];
        match tx.try_push(big.clone()) {
            Err(BytesTryPushError::TooLarge { msg, max }) => {
                assert_eq!(msg, big);
                assert_eq!(max, 8);
            }
            other => panic!("{other:?}"),
        }
        tx.try_push([7u8; 8]).unwrap();
        tx.try_push([]).unwrap();
        let rx = q.consumer().unwrap();
        assert_eq!(rx.try_pop().unwrap(), vec![7u8; 8]);
        assert_eq!(rx.try_pop().unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn short_buffer_keeps_message() {
        let q = ByteQueue::heap(Flavor::Spsc, 2, 16).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        tx.try_push(b"0123456789").unwrap();
        let mut small = [0u8; 4];
        assert_eq!(
            rx.try_pop_into(&mut small),
            Err(TryPopIntoError::TooSmall { needed: 10 })
        );
        assert_eq!(
            rx.pop_into_timeout(&mut small, Duration::ZERO),
            Err(PopIntoTimeoutError::TooSmall { needed: 10 })
        );
        assert_eq!(q.len(), 1);
        let mut big = [0u8; 16];
        assert_eq!(rx.try_pop_into(&mut big), Ok(10));
        assert_eq!(&big[..10], b"0123456789");
    }

    #[test]
    fn close_drains_then_closed() {
        let q = ByteQueue::heap(Flavor::Mpmc, 4, 8).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        tx.try_push(b"a").unwrap();
        q.close();
        assert!(matches!(
            tx.try_push(b"b"),
            Err(BytesTryPushError::Closed(b"b"))
        ));
        assert!(matches!(tx.push(b"b"), Err(BytesPushError::Closed(_))));
        assert_eq!(rx.try_pop().unwrap(), b"a");
        assert_eq!(rx.try_pop(), Err(TryPopError::Closed));
        assert_eq!(rx.pop(), Err(PopError::Closed));
    }

    #[test]
    fn disconnected_after_producers_leave() {
        let q = ByteQueue::heap(Flavor::Mpmc, 4, 8).unwrap();
        let rx = q.consumer().unwrap();
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        let tx = q.producer().unwrap();
        tx.try_push(b"last").unwrap();
        drop(tx);
        assert_eq!(rx.pop().unwrap(), b"last");
        assert_eq!(rx.pop(), Err(PopError::Disconnected));
        assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    }

    #[test]
    fn full_push_disconnected_when_consumers_gone() {
        let q = ByteQueue::heap(Flavor::Spsc, 1, 8).unwrap();
        let tx = q.producer().unwrap();
        let rx = q.consumer().unwrap();
        tx.try_push(b"1").unwrap();
        let r = tx.push_timeout(b"2", Duration::from_millis(1));
        assert!(matches!(r, Err(BytesPushTimeoutError::Timeout(_))), "{r:?}");
        drop(rx);
        assert!(matches!(
            tx.push(b"2"),
            Err(BytesPushError::Disconnected(_))
        ));
    }

    #[test]
    fn spsc_roles_are_exclusive() {
        let q = ByteQueue::heap(Flavor::Spsc, 1, 8).unwrap();
        let tx = q.producer().unwrap();
        assert!(matches!(q.producer(), Err(RoleError::Busy { .. })));
        drop(tx);
        let _tx = q.producer().unwrap();
    }

    #[test]
    fn corrupt_length_poisons_both_sides() {
        let q = ByteQueue::heap(Flavor::Mpmc, 2, 8).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        tx.try_push(b"abc").unwrap();
        tx.try_push(b"def").unwrap();
        q.ring().msg_len(0).store(9, Ordering::Relaxed);
        // Every call, on both sides, fails at once: never garbage, never a wedge.
        for _ in 0..3 {
            assert_eq!(rx.try_pop(), Err(TryPopError::Corrupt));
            assert_eq!(rx.pop(), Err(PopError::Corrupt));
            assert!(matches!(tx.push(b"x"), Err(BytesPushError::Corrupt(_))));
        }
        assert_eq!(
            rx.pop_timeout(Duration::from_secs(5)),
            Err(PopTimeoutError::Corrupt)
        );
        assert_eq!(q.ring().positions(), (0, 2), "nothing was consumed");
        assert_eq!(
            q.len(),
            0,
            "a poisoned queue holds nothing that can be popped"
        );
    }

    /// Regression: a slot stamp ahead of `head` used to make every pop return Corrupt while
    /// consuming nothing, so the queue could never be drained past it (a silent wedge for a
    /// blocking pop). Now it poisons the queue: a specific error at once, for every caller.
    #[test]
    fn stamp_ahead_of_head_poisons_instead_of_wedging() {
        for mode in [Flavor::Spsc, Flavor::Mpmc] {
            let q = ByteQueue::heap(mode, 4, 8).unwrap();
            let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
            tx.try_push(b"a").unwrap();
            tx.try_push(b"b").unwrap();
            assert_eq!(rx.try_pop().unwrap(), b"a");
            match mode {
                // A stamp ahead of head (MPMC); a tail beyond the capacity (SPSC, no stamps).
                Flavor::Mpmc => q.ring().forge_stamp(1, 2 * (1 + 4 * 7) + 1),
                Flavor::Spsc => q.ring().forge_index(0, 1 + 4 * 7),
            }
            if mode == Flavor::Spsc {
                // Published before the damage and already seen (the consumer's cached tail):
                // delivered; the next look at the tail finds the damage.
                assert_eq!(rx.try_pop().unwrap(), b"b");
            }
            assert_eq!(rx.try_pop(), Err(TryPopError::Corrupt));
            assert_eq!(rx.pop(), Err(PopError::Corrupt));
            assert!(matches!(
                tx.try_push(b"c"),
                Err(BytesTryPushError::Corrupt(_))
            ));
            assert!(q.is_poisoned());
        }
        // The producer side: a stamp ahead of `tail` likewise.
        let q = ByteQueue::heap(Flavor::Mpmc, 2, 8).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        q.ring().forge_stamp(0, 1 << 40);
        assert!(matches!(
            tx.try_push(b"x"),
            Err(BytesTryPushError::Corrupt(_))
        ));
        assert_eq!(rx.try_pop(), Err(TryPopError::Corrupt));
        // A stamp more than one lap behind is just as impossible.
        let q = ByteQueue::heap(Flavor::Mpmc, 2, 8).unwrap();
        let tx = q.producer().unwrap();
        tx.try_push(b"1").unwrap();
        tx.try_push(b"2").unwrap();
        q.ring().forge_stamp(0, 1u64.wrapping_sub(8));
        assert!(matches!(
            tx.try_push(b"x"),
            Err(BytesTryPushError::Corrupt(_))
        ));
    }

    /// A ring on the heap whose liveness is checked with the OS, for dead-peer tests.
    fn checked_heap(cap: u64, max: usize) -> ByteQueue {
        ByteQueue::heap_probed(Flavor::Mpmc, cap, max, Prober::os())
    }

    /// A word naming a process that cannot exist (pid above the kernel's limit).
    fn dead_word() -> u64 {
        shm_core::ProcessId::from_parts(0x7fff_fff0, 1).to_word()
    }

    /// A consumer's first pop on a queue no producer has attached to yet waits (with its
    /// timeout) in both modes; `Disconnected` needs producers that came and went.
    #[test]
    fn first_pop_before_any_producer_waits() {
        for mode in [Flavor::Spsc, Flavor::Mpmc] {
            let q = ByteQueue::heap(mode, 2, 8).unwrap();
            let rx = q.consumer().unwrap();
            assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
            assert_eq!(
                rx.pop_timeout(Duration::from_millis(20)),
                Err(PopTimeoutError::Timeout)
            );
            let tx = q.producer().unwrap();
            tx.push(b"x").unwrap();
            drop(tx);
            assert_eq!(rx.pop().unwrap(), b"x");
            assert_eq!(rx.pop(), Err(PopError::Disconnected));
        }
    }

    #[cfg_attr(miri, ignore)] // liveness reads /proc
    #[test]
    fn producer_dead_mid_push_is_skipped_by_blocked_pop() {
        let q = checked_heap(2, 8);
        // A producer claimed position 0 and died before publishing it.
        q.ring().forge_abandoned_push(dead_word());
        let tx = q.producer().unwrap();
        tx.try_push(b"after").unwrap();
        let mut rx = q.consumer().unwrap();
        rx.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(1)));
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        assert_eq!(rx.pop_timeout(Duration::from_secs(10)).unwrap(), b"after");
    }

    #[cfg_attr(miri, ignore)] // liveness reads /proc
    #[test]
    fn consumer_dead_mid_pop_is_freed_by_blocked_push() {
        let q = checked_heap(1, 8);
        let ring = q.ring();
        let mut tx = q.producer().unwrap();
        tx.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(1)));
        tx.try_push(b"a").unwrap();
        // A consumer claimed position 0 and died before freeing its slot.
        let r = role::claim(ring.consumers(), dead_word(), &Prober::heap()).unwrap();
        ring.consumers()[r.index]
            .pending()
            .store(1, Ordering::Relaxed);
        ring.forge_index(1, 1);
        assert!(matches!(tx.try_push(b"b"), Err(BytesTryPushError::Full(_))));
        let rx = q.consumer().unwrap();
        tx.push_timeout(b"b", Duration::from_secs(10)).unwrap();
        assert_eq!(rx.try_pop().unwrap(), b"b");
    }

    /// Two threads exchange messages through a two-slot ring with non-blocking calls only, so
    /// that miri's data-race detector checks the payload copies against the stamp protocol.
    #[test]
    fn threads_try_ops_payload_race_free() {
        let q = ByteQueue::heap(Flavor::Mpmc, 2, 24).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        let n = if cfg!(miri) { 12 } else { 2000 };
        let t = std::thread::spawn(move || {
            for i in 0..n {
                let mut m = msg(i, 24);
                loop {
                    match tx.try_push(m) {
                        Ok(()) => break,
                        Err(BytesTryPushError::Full(back)) => m = back,
                        Err(e) => panic!("{e}"),
                    }
                    std::thread::yield_now();
                }
            }
        });
        let mut buf = [0u8; 24];
        for i in 0..n {
            let len = loop {
                match rx.try_pop_into(&mut buf) {
                    Ok(len) => break len,
                    Err(TryPopIntoError::Empty) => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(&buf[..len], &msg(i, 24)[..]);
        }
        t.join().unwrap();
    }

    #[cfg_attr(miri, ignore)]
    #[test]
    fn threads_mpmc_all_delivered() {
        let q = ByteQueue::heap(Flavor::Mpmc, 8, 32).unwrap();
        let per = 2000usize;
        let producers: Vec<_> = (0..2)
            .map(|t| {
                let tx = q.producer().unwrap();
                std::thread::spawn(move || {
                    for i in 0..per {
                        let mut m = vec![t as u8; 1 + i % 31];
                        m[0] = t as u8;
                        tx.push(m).unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let rx = q.consumer().unwrap();
                std::thread::spawn(move || {
                    let mut counts = [0usize; 2];
                    loop {
                        match rx.pop() {
                            Ok(m) => {
                                assert!(m.iter().all(|&b| b == m[0]));
                                counts[m[0] as usize] += 1;
                            }
                            Err(PopError::Disconnected) => return counts,
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let mut total = [0usize; 2];
        for c in consumers {
            let got = c.join().unwrap();
            total[0] += got[0];
            total[1] += got[1];
        }
        assert_eq!(total, [per, per]);
    }
}
