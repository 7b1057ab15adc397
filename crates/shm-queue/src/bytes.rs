//! Queues of variable-length byte messages, SPSC and MPMC, in a named segment or on the heap.
//!
//! A [`ByteQueue`] carries messages of `0..=max_message` bytes; the maximum is fixed at creation
//! and stored in the segment header's `param` (the capacity, in messages, is its `count`).
//! Producers and consumers are role handles ([`BytesProducer`], [`BytesConsumer`]) claimed in the
//! segment by process identity and released on drop; a claim left by a dead process is taken
//! over. An SPSC queue ([`Flavor::Spsc`], `ObjectKind::SpscBytes`) has one slot per role, an MPMC
//! queue ([`Flavor::Mpmc`], `ObjectKind::MpmcBytes`) has [`MAX_ROLES`] of each.
//!
//! # Algorithm
//!
//! Both modes use the same ring: `capacity` fixed slots of `(stamp u64, len u32, max bytes)`
//! with a per-slot sequence stamp (Vyukov's bounded MPMC queue, crossbeam's `ArrayQueue`).
//! One algorithm for both modes was chosen over a contiguous length-prefixed ring for SPSC: it
//! is the simpler one to get right (no wrap markers, no partial frees), a consumer can look at a
//! message's length before claiming it (so [`BytesConsumer::pop_into`] with a short buffer loses
//! nothing), and the SPSC mode still never contends (one producer, one consumer). The price is
//! space: every slot reserves `max_message` bytes.
//!
//! | stamp of slot `pos % cap` | meaning |
//! |---|---|
//! | `2 * pos` | free for the producer that claims position `pos` |
//! | `2 * pos + 1` | holds the message of position `pos` |
//! | `2 * (pos + cap)` | consumed; free for position `pos + cap` |
//!
//! (Stamps are doubled positions so that "full at `pos`" and "free for `pos + cap`" differ
//! even when `cap` is 1.)
//!
//! `head` (next position to pop) and `tail` (next to push) only grow; `0 <= tail - head <= cap`
//! in a healthy ring. A producer announces the position it is about to claim in its role slot's
//! `pending` word before it claims it (and a consumer likewise), so a waiter that finds a
//! position claimed but never finished can tell a slow live peer from a dead one and, once the
//! claimer is dead, skip the position (see [`crate::role`]). Such recovery runs in blocking
//! waits, once per sleep slice.
//!
//! # Errors
//!
//! One enum per operation: `try_push` [`BytesTryPushError`], `push` [`BytesPushError`],
//! `push_timeout` [`BytesPushTimeoutError`] (each hands the message back, `TooLarge`
//! included); pops into a `Vec` return the typed queues' [`TryPopError`], [`PopError`] and
//! [`PopTimeoutError`]; pops into a buffer [`TryPopIntoError`], [`PopIntoError`] and
//! [`PopIntoTimeoutError`] (with `TooSmall`, the message staying queued).
//!
//! # Ending
//!
//! A blocked pop returns on a push, on [`ByteQueue::close`] (after the remaining messages),
//! on its timeout, or with `Disconnected` once the queue is drained and every
//! producer that ever claimed a role has dropped it or died (a dead producer is noticed within
//! one sleep slice, [`WaitStrategy::slice`]). Note what that means for producers that come and
//! go: when one short-lived producer leaves before the next one has arrived, a consumer on a
//! drained queue sees `Disconnected`. A process that expects more producers keeps a producer
//! handle of its own (as the parent in `examples/queue_pipe.rs` does) or pops with a timeout.
//! Likewise a blocked push on a full queue returns `Disconnected` once every consumer is gone.
//!
//! Everything read from the segment is checked. A length above the maximum, or a stamp that no
//! healthy ring can hold at the position looked at (say one ahead of a `head` that did not
//! move), *poisons* the queue: from then on every push and pop, in every process, fails at once
//! with `Corrupt` (`BytesPushError::Corrupt`, `PopError::Corrupt`, ...); it never wedges
//! and never delivers garbage. What is lost: every message still in the queue (none of them
//! can be trusted any more); make a new queue. Nothing read from the segment can make this
//! code panic, index out of bounds, or spin forever.
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
//! let rx = other.consumer()?;
//! tx.push(b"hello".as_slice()).unwrap();
//! assert_eq!(rx.pop().unwrap(), b"hello");
//! let mut buf = [0u8; 2];
//! tx.push(b"longer".as_slice()).unwrap();
//! assert!(rx.try_pop_into(&mut buf).is_err()); // too small: the message stays queued
//! assert_eq!(rx.try_pop().unwrap(), b"longer");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{
    corrupt_geometry, knob_methods, BadGeometry, Fail, Knobs, PopError, PopTimeoutError, RoleError,
    TryPopError,
};
use crate::role::{self, Prober, RoleSlot, Waited};
use shm_core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shm_core::sync::Poll;
use shm_core::{
    CreateError, Deadline, EventCount, Home, ObjectKind, OpenError, Segment, SegmentName,
    WaitStrategy,
};
use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

/// Role slots of each kind in an MPMC queue (producers and consumers alike).
pub const MAX_ROLES: usize = 16;

/// Largest `max_message` accepted (lengths are stored as `u32`).
pub const MAX_MESSAGE_LIMIT: usize = u32::MAX as usize - 64;

/// One 128-byte line.
#[repr(C, align(128))]
struct Line<T>(T);

/// The state word, the two eventcounts, and the count of skipped positions.
///
/// | `state` bits | meaning |
/// |---|---|
/// | 0 ([`CLOSED`]) | closed: pushes fail, pops drain what is left |
/// | any other | poisoned: a stamp or length read from the ring could not be right |
#[repr(C)]
struct SyncWords {
    state: AtomicU32,
    not_empty: EventCount,
    not_full: EventCount,
    /// Positions skipped because their producer died before publishing them.
    skipped: AtomicU64,
}

/// State bit: closed.
const CLOSED: u32 = 1;
/// State bit: poisoned.
const POISONED: u32 = 2;

/// The control block at the start of a ring's memory.
#[repr(C)]
struct Control {
    head: Line<AtomicU64>,
    tail: Line<AtomicU64>,
    sync: Line<SyncWords>,
    producers: [RoleSlot; MAX_ROLES],
    consumers: [RoleSlot; MAX_ROLES],
}

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::offset_of!(Control, head) == 0);
    assert!(std::mem::offset_of!(Control, tail) == 128);
    assert!(std::mem::offset_of!(Control, sync) == 256);
    assert!(std::mem::offset_of!(Control, producers) == 384);
    assert!(std::mem::offset_of!(Control, consumers) == 384 + 128 * MAX_ROLES);
    assert!(std::mem::size_of::<Control>() == 384 + 256 * MAX_ROLES);
    assert!(std::mem::size_of::<SlotHead>() == 16);
};

impl Control {
    fn new() -> Control {
        Control {
            head: Line(AtomicU64::new(0)),
            tail: Line(AtomicU64::new(0)),
            sync: Line(SyncWords {
                state: AtomicU32::new(0),
                not_empty: EventCount::new(),
                not_full: EventCount::new(),
                skipped: AtomicU64::new(0),
            }),
            producers: std::array::from_fn(|_| RoleSlot::new()),
            consumers: std::array::from_fn(|_| RoleSlot::new()),
        }
    }
}

/// The head of every slot; `max` payload bytes follow it.
#[repr(C)]
struct SlotHead {
    stamp: AtomicU64,
    len: AtomicU32,
    _pad: u32,
}

/// Single or multiple producers and consumers: the flavor of a byte queue, recorded in its
/// segment's kind (an opener adopts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// One producer and one consumer (`ObjectKind::SpscBytes`).
    Spsc,
    /// Up to [`MAX_ROLES`] producers and consumers (`ObjectKind::MpmcBytes`).
    Mpmc,
}

impl Flavor {
    fn kind(self) -> ObjectKind {
        match self {
            Flavor::Spsc => ObjectKind::SpscBytes,
            Flavor::Mpmc => ObjectKind::MpmcBytes,
        }
    }

    pub(crate) fn roles(self) -> usize {
        match self {
            Flavor::Spsc => 1,
            Flavor::Mpmc => MAX_ROLES,
        }
    }
}

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

impl<M> AnyPushError<M> {
    fn with<N>(self, n: N) -> AnyPushError<N> {
        match self {
            AnyPushError::TooLarge { max, .. } => AnyPushError::TooLarge { msg: n, max },
            AnyPushError::Full(_) => AnyPushError::Full(n),
            AnyPushError::Closed(_) => AnyPushError::Closed(n),
            AnyPushError::Timeout(_) => AnyPushError::Timeout(n),
            AnyPushError::Disconnected(_) => AnyPushError::Disconnected(n),
            AnyPushError::Corrupt(_) => AnyPushError::Corrupt(n),
        }
    }
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

/// Where a popped message goes.
pub(crate) enum Dest<'a> {
    Slice(&'a mut [u8]),
    Vec(&'a mut Vec<u8>),
}

/// Outcome of one non-blocking attempt.
enum Try<T> {
    Done(T),
    /// Full (push) or empty (pop).
    NotNow,
}

/// A ring of byte messages over memory it is handed (a segment body or a heap block, at some
/// offset). Process-local: pointers and the validated geometry.
pub(crate) struct Ring {
    ctl: NonNull<Control>,
    slots: NonNull<u8>,
    cap: u64,
    max: usize,
    stride: usize,
    roles: usize,
    prober: Prober,
}

// SAFETY: the ring only hands out shared references to atomics in memory that outlives it (its
// owner keeps the home alive), and payload bytes are written only by the producer that claimed
// the slot and read only by the consumer that claimed it (the stamp protocol).
unsafe impl Send for Ring {}
// SAFETY: as above: all shared state is atomics; payload access is serialised by the stamps.
unsafe impl Sync for Ring {}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.cap)
            .field("max_message", &self.max)
            .field("roles", &self.roles)
            .finish()
    }
}

impl Ring {
    fn stride(max: usize) -> Option<usize> {
        std::mem::size_of::<SlotHead>()
            .checked_add(max)?
            .checked_next_multiple_of(64)
    }

    /// Bytes a ring of `cap` slots of `max` bytes needs (a multiple of 128), or `None` on
    /// overflow.
    pub(crate) fn bytes_needed(cap: u64, max: usize) -> Option<usize> {
        let cap = usize::try_from(cap).ok()?;
        let slots = Self::stride(max)?.checked_mul(cap)?;
        std::mem::size_of::<Control>()
            .checked_add(slots)?
            .checked_next_multiple_of(128)
            .filter(|&n| n <= isize::MAX as usize)
    }

    /// Writes a fresh ring into `base`.
    ///
    /// # Safety
    ///
    /// `base` is 128-aligned, valid for writes of [`bytes_needed(cap, max)`](Self::bytes_needed)
    /// bytes (which is `Some`), and nobody else uses that memory during the call.
    pub(crate) unsafe fn init(base: NonNull<u8>, cap: u64, max: usize) {
        let stride = Self::stride(max).unwrap_or(0);
        // SAFETY: the caller guarantees room and alignment for the control block.
        unsafe { base.cast::<Control>().as_ptr().write(Control::new()) };
        let first = std::mem::size_of::<Control>();
        for i in 0..cap as usize {
            // SAFETY: slot i starts at first + i * stride < bytes_needed; 8-aligned because the
            // control block and the stride are multiples of 64.
            let slot = unsafe { base.as_ptr().add(first + i * stride) }.cast::<SlotHead>();
            let head = SlotHead {
                stamp: AtomicU64::new(free_stamp(i as u64)),
                len: AtomicU32::new(0),
                _pad: 0,
            };
            // SAFETY: see above; the slot head is in bounds and aligned.
            unsafe { slot.write(head) };
        }
    }

    /// A ring over memory initialised by [`init`](Self::init) (here or in another process), if
    /// `len` bytes are enough for the geometry.
    ///
    /// # Safety
    ///
    /// `base` is 128-aligned and valid for reads and writes of `len` bytes for as long as the
    /// ring lives, and holds a ring written by `init` (a corrupt one is fine: nothing read from
    /// it is trusted).
    pub(crate) unsafe fn attach(
        base: NonNull<u8>,
        len: usize,
        cap: u64,
        max: usize,
        roles: usize,
        prober: Prober,
    ) -> Option<Ring> {
        let need = Self::bytes_needed(cap, max)?;
        if cap == 0 || max > MAX_MESSAGE_LIMIT || need > len || roles == 0 || roles > MAX_ROLES {
            return None;
        }
        // SAFETY: size_of::<Control>() <= need <= len.
        let slots = unsafe { base.add(std::mem::size_of::<Control>()) };
        Some(Ring {
            ctl: base.cast(),
            slots,
            cap,
            max,
            stride: Self::stride(max)?,
            roles,
            prober,
        })
    }

    fn ctl(&self) -> &Control {
        // SAFETY: `attach` checked that the memory holds a control block; it is atomics only.
        unsafe { self.ctl.as_ref() }
    }

    /// The head of the slot of position `pos`.
    fn slot(&self, pos: u64) -> (&SlotHead, *mut u8) {
        let i = (pos % self.cap) as usize;
        // SAFETY: i < cap, so the slot lies within bytes_needed (checked in attach).
        let p = unsafe { self.slots.as_ptr().add(i * self.stride) };
        // SAFETY: the slot head was written by init; it is atomics (and a plain pad never read).
        let head = unsafe { &*p.cast::<SlotHead>() };
        // SAFETY: the payload follows the head within the stride.
        let data = unsafe { p.add(std::mem::size_of::<SlotHead>()) };
        (head, data)
    }

    /// Test forgery: a producer `who` claimed position `tail` (announced in a fresh producer
    /// role slot, `tail` advanced) and never published it, as a producer killed mid-push
    /// leaves it.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn forge_abandoned_push(&self, who: u64) {
        let c = self.ctl();
        let r = role::claim(self.producers(), who, &Prober::heap()).unwrap();
        let pos = c.tail.0.load(Ordering::Acquire);
        self.producers()[r.index]
            .pending()
            .store(pos + 1, Ordering::Release);
        c.tail.0.store(pos + 1, Ordering::Release);
    }

    pub(crate) fn producers(&self) -> &[RoleSlot] {
        &self.ctl().producers[..self.roles]
    }

    pub(crate) fn consumers(&self) -> &[RoleSlot] {
        &self.ctl().consumers[..self.roles]
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.cap
    }

    pub(crate) fn max_message(&self) -> usize {
        self.max
    }

    pub(crate) fn close(&self) {
        let s = &self.ctl().sync.0;
        s.state.fetch_or(CLOSED, Ordering::AcqRel);
        s.not_empty.notify_all();
        s.not_full.notify_all();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.ctl().sync.0.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Whether the ring is poisoned (every operation fails with `Corrupt`).
    pub(crate) fn is_poisoned(&self) -> bool {
        self.ctl().sync.0.state.load(Ordering::Acquire) & !CLOSED != 0
    }

    /// Poisons the ring and wakes every waiter. Irreversible.
    #[cold]
    pub(crate) fn poison(&self) {
        let s = &self.ctl().sync.0;
        s.state.fetch_or(POISONED, Ordering::AcqRel);
        s.not_empty.notify_all();
        s.not_full.notify_all();
    }

    /// Positions skipped because their producer died before publishing them.
    pub(crate) fn skipped(&self) -> u64 {
        self.ctl().sync.0.skipped.load(Ordering::Acquire)
    }

    /// `head` and `tail`, read in that order.
    pub(crate) fn positions(&self) -> (u64, u64) {
        let c = self.ctl();
        let head = c.head.0.load(Ordering::Acquire);
        (head, c.tail.0.load(Ordering::Acquire))
    }

    /// Messages queued (exact when quiescent; clamped to `0..=cap` against garbage; 0 once
    /// poisoned, when none can be popped).
    pub(crate) fn len(&self) -> u64 {
        if self.is_poisoned() {
            return 0;
        }
        let c = self.ctl();
        let tail = c.tail.0.load(Ordering::Acquire);
        let head = c.head.0.load(Ordering::Acquire);
        tail.saturating_sub(head).min(self.cap)
    }

    /// Wakes every waiter (used when a role is released).
    pub(crate) fn wake_all(&self) {
        let s = &self.ctl().sync.0;
        s.not_empty.notify_all();
        s.not_full.notify_all();
    }

    /// One non-blocking push attempt. `role` is the producer's role slot index.
    fn try_push_once(&self, msg: &[u8], role: usize) -> Result<Try<()>, ()> {
        let c = self.ctl();
        let pending = c.producers.get(role).map(RoleSlot::pending);
        let mut pos = c.tail.0.load(Ordering::Relaxed);
        loop {
            let (slot, data) = self.slot(pos);
            let stamp = slot.stamp.load(Ordering::Acquire);
            let free = free_stamp(pos);
            if stamp == free {
                if let Some(p) = pending {
                    p.store(pos.wrapping_add(1), Ordering::Relaxed);
                }
                match c.tail.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        debug_assert!(msg.len() <= self.max);
                        // SAFETY: we own slot `pos` (stamp == pos and we won the tail CAS), its
                        // payload has room for max >= msg.len() bytes, and no consumer reads it
                        // before the Release store of the stamp below.
                        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), data, msg.len()) };
                        slot.len.store(msg.len() as u32, Ordering::Relaxed);
                        slot.stamp.store(full_stamp(pos), Ordering::Release);
                        if let Some(p) = pending {
                            p.store(0, Ordering::Release);
                        }
                        c.sync.0.not_empty.notify_all();
                        return Ok(Try::Done(()));
                    }
                    Err(now) => pos = now,
                }
            } else {
                // Another producer got here first (the stamp is ahead: look again), or the
                // slot still holds the previous lap's message, claimed or published (exactly
                // one lap behind: full). Anything else, with a tail that did not move, is
                // impossible in a healthy ring.
                let now = c.tail.0.load(Ordering::Acquire);
                if now == pos {
                    if let Some(p) = pending {
                        p.store(0, Ordering::Relaxed);
                    }
                    if stamp.wrapping_sub(free_stamp(pos.wrapping_sub(self.cap))) <= 1 {
                        return Ok(Try::NotNow);
                    }
                    self.poison();
                    return Err(());
                }
                pos = now;
            }
        }
    }

    /// One non-blocking pop attempt into `dest`. `role` is the consumer's role slot index.
    fn try_pop_once(&self, dest: &mut Dest<'_>, role: usize) -> Result<Try<usize>, AnyPopError> {
        let c = self.ctl();
        let pending = c.consumers.get(role).map(RoleSlot::pending);
        let mut pos = c.head.0.load(Ordering::Relaxed);
        loop {
            let (slot, data) = self.slot(pos);
            let stamp = slot.stamp.load(Ordering::Acquire);
            let want = pos.wrapping_add(1);
            let full = full_stamp(pos);
            if stamp == full {
                let len = slot.len.load(Ordering::Relaxed) as usize;
                if len > self.max {
                    // A length no producer can have written: poison, consume nothing.
                    self.poison();
                    return Err(AnyPopError::Corrupt);
                }
                {
                    match dest {
                        Dest::Slice(buf) if buf.len() < len => {
                            return Err(AnyPopError::TooSmall { needed: len });
                        }
                        Dest::Slice(_) => {}
                        Dest::Vec(v) => {
                            v.clear();
                            v.resize(len, 0);
                        }
                    }
                }
                if let Some(p) = pending {
                    p.store(want, Ordering::Relaxed);
                }
                match c
                    .head
                    .0
                    .compare_exchange_weak(pos, want, Ordering::AcqRel, Ordering::Relaxed)
                {
                    Ok(_) => {
                        let out = match dest {
                            Dest::Slice(buf) => buf.as_mut_ptr(),
                            Dest::Vec(v) => v.as_mut_ptr(),
                        };
                        // SAFETY: we own slot `pos` (stamp == pos + 1 seen with Acquire, so
                        // the producer's payload writes are visible, and we won the head
                        // CAS); len <= max bytes lie in the payload and fit in `out`
                        // (checked above).
                        unsafe { std::ptr::copy_nonoverlapping(data, out, len) };
                        slot.stamp
                            .store(free_stamp(pos.wrapping_add(self.cap)), Ordering::Release);
                        if let Some(p) = pending {
                            p.store(0, Ordering::Release);
                        }
                        c.sync.0.not_full.notify_all();
                        return Ok(Try::Done(len));
                    }
                    Err(now) => pos = now,
                }
            } else if stamp == free_stamp(pos) {
                // Not published yet (or not even claimed).
                if let Some(p) = pending {
                    p.store(0, Ordering::Relaxed);
                }
                return Ok(Try::NotNow);
            } else {
                // Ahead: another consumer took it (look again). Exactly one lap behind and
                // full: the previous message's consumer has not freed the slot yet (nothing
                // here yet). Anything else, with a head that did not move, is impossible in a
                // healthy ring.
                let now = c.head.0.load(Ordering::Acquire);
                if now == pos {
                    if let Some(p) = pending {
                        p.store(0, Ordering::Relaxed);
                    }
                    if stamp == full_stamp(pos.wrapping_sub(self.cap)) {
                        return Ok(Try::NotNow);
                    }
                    self.poison();
                    return Err(AnyPopError::Corrupt);
                }
                pos = now;
            }
        }
    }

    /// Consumer-side recovery: if the position at `head` was claimed by a producer that died
    /// before publishing it, skip it. Returns whether a position was skipped.
    pub(crate) fn skip_dead_push(&self) -> bool {
        let c = self.ctl();
        let pos = c.head.0.load(Ordering::Acquire);
        let tail = c.tail.0.load(Ordering::Acquire);
        if tail <= pos {
            return false;
        }
        let (slot, _) = self.slot(pos);
        if slot.stamp.load(Ordering::Acquire) != free_stamp(pos) {
            return false;
        }
        if role::any_live_pending(self.producers(), pos.wrapping_add(1), &self.prober) {
            return false;
        }
        // The claimer is dead or finished; if it finished, the stamp moved on.
        if slot.stamp.load(Ordering::Acquire) != free_stamp(pos) {
            return false;
        }
        if c.head
            .0
            .compare_exchange(pos, pos + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        slot.stamp
            .store(free_stamp(pos.wrapping_add(self.cap)), Ordering::Release);
        // Counted after `head` moved past it (JoinableQueue's `join` relies on that order).
        c.sync.0.skipped.fetch_add(1, Ordering::AcqRel);
        c.sync.0.not_full.notify_all();
        true
    }

    /// Producer-side recovery: if the slot at `tail` was claimed by a consumer that died before
    /// freeing it, free it. Returns whether a slot was freed.
    fn free_dead_pop(&self) -> bool {
        let c = self.ctl();
        let pos = c.tail.0.load(Ordering::Acquire);
        let Some(prev) = pos.checked_sub(self.cap) else {
            return false;
        };
        let head = c.head.0.load(Ordering::Acquire);
        if head <= prev {
            return false;
        }
        let (slot, _) = self.slot(pos);
        let full = full_stamp(prev);
        if slot.stamp.load(Ordering::Acquire) != full {
            return false;
        }
        if role::any_live_pending(self.consumers(), prev.wrapping_add(1), &self.prober) {
            return false;
        }
        // A live consumer finishing now stores the same value; the CAS makes it idempotent.
        let freed = slot
            .stamp
            .compare_exchange(full, free_stamp(pos), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if freed {
            c.sync.0.not_full.notify_all();
        }
        freed
    }

    /// Push with an optional wait. `deadline: None` means do not wait.
    pub(crate) fn push<M: AsRef<[u8]>>(
        &self,
        msg: M,
        role: usize,
        strategy: &WaitStrategy,
        wait: Wait,
    ) -> Result<(), AnyPushError<M>> {
        let bytes = msg.as_ref();
        if bytes.len() > self.max {
            return Err(AnyPushError::TooLarge { msg, max: self.max });
        }
        let attempt = |p: Poll| -> Option<Result<(), AnyPushError<()>>> {
            let state = self.ctl().sync.0.state.load(Ordering::Acquire);
            if state != 0 {
                return Some(Err(if state & !CLOSED != 0 {
                    AnyPushError::Corrupt(())
                } else {
                    AnyPushError::Closed(())
                }));
            }
            match self.try_push_once(bytes, role) {
                Ok(Try::Done(())) => Some(Ok(())),
                Err(()) => Some(Err(AnyPushError::Corrupt(()))),
                Ok(Try::NotNow) => {
                    if p == Poll::Slice && self.free_dead_pop() {
                        return match self.try_push_once(bytes, role) {
                            Ok(Try::Done(())) => Some(Ok(())),
                            Err(()) => Some(Err(AnyPushError::Corrupt(()))),
                            Ok(Try::NotNow) => None,
                        };
                    }
                    None
                }
            }
        };
        let out = match wait {
            Wait::No => match attempt(Poll::Check) {
                Some(r) => r,
                None => {
                    let gone =
                        role::peers(self.consumers(), &self.prober, false) == role::Peers::Gone;
                    Err(if gone {
                        AnyPushError::Disconnected(())
                    } else {
                        AnyPushError::Full(())
                    })
                }
            },
            Wait::For(timeout) => match attempt(Poll::Check) {
                Some(r) => r,
                None => {
                    // Only now, with the queue full, is the clock read for the deadline.
                    let ec = &self.ctl().sync.0.not_full;
                    let d = Deadline::from_timeout(timeout);
                    match ec.wait_until(
                        strategy,
                        d,
                        role::watching(self.consumers(), &self.prober, attempt),
                    ) {
                        Some(Waited::Ready(r)) => r,
                        // A short timeout may end before any sleep slice checked the consumers.
                        None if waited(timeout) && self.peers_gone(self.consumers()) => {
                            Err(AnyPushError::Disconnected(()))
                        }
                        None => Err(AnyPushError::Timeout(())),
                        Some(Waited::PeersGone) => Err(AnyPushError::Disconnected(())),
                    }
                }
            },
        };
        out.map_err(|e| e.with(msg))
    }

    /// Pop with an optional wait into `dest`; the message's length on success.
    pub(crate) fn pop(
        &self,
        dest: &mut Dest<'_>,
        role: usize,
        strategy: &WaitStrategy,
        wait: Wait,
    ) -> Result<usize, AnyPopError> {
        let mut attempt = |p: Poll| -> Option<Result<usize, AnyPopError>> {
            if self.is_poisoned() {
                return Some(Err(AnyPopError::Corrupt));
            }
            match self.try_pop_once(dest, role) {
                Ok(Try::Done(n)) => return Some(Ok(n)),
                Err(e) => return Some(Err(e)),
                Ok(Try::NotNow) => {}
            }
            if p == Poll::Slice && self.skip_dead_push() {
                match self.try_pop_once(dest, role) {
                    Ok(Try::Done(n)) => return Some(Ok(n)),
                    Err(e) => return Some(Err(e)),
                    Ok(Try::NotNow) => {}
                }
            }
            // Closed only once drained (the check above saw no message).
            self.is_closed().then_some(Err(AnyPopError::Closed))
        };
        match wait {
            Wait::No => {
                let gone = role::peers(self.producers(), &self.prober, false) == role::Peers::Gone;
                match attempt(Poll::Check) {
                    Some(r) => r,
                    None if gone => Err(AnyPopError::Disconnected),
                    None => Err(AnyPopError::Empty),
                }
            }
            Wait::For(timeout) => {
                if let Some(r) = attempt(Poll::Check) {
                    return r;
                }
                // Only now, with the queue empty, is the clock read for the deadline.
                let ec = &self.ctl().sync.0.not_empty;
                let d = Deadline::from_timeout(timeout);
                match ec.wait_until(
                    strategy,
                    d,
                    role::watching(self.producers(), &self.prober, &mut attempt),
                ) {
                    Some(Waited::Ready(r)) => r,
                    // A short timeout may end before any sleep slice checked the producers:
                    // check them now, then look once more for what they left.
                    None if self.peers_gone(self.producers()) => {
                        attempt(Poll::Check).unwrap_or(Err(AnyPopError::Disconnected))
                    }
                    None => Err(AnyPopError::Timeout),
                    Some(Waited::PeersGone) => Err(AnyPopError::Disconnected),
                }
            }
        }
    }

    /// Waits until a message is ready to pop (`Ok`), or reports why none will come: `Closed`
    /// (closed and drained), `Disconnected` (drained, producers gone) or `Timeout`.
    pub(crate) fn wait_readable(
        &self,
        strategy: &WaitStrategy,
        timeout: Option<Duration>,
    ) -> Result<(), AnyPopError> {
        let mut ready = |_: Poll| -> Option<Result<(), AnyPopError>> {
            if self.is_poisoned() {
                return Some(Err(AnyPopError::Corrupt));
            }
            let c = self.ctl();
            let pos = c.head.0.load(Ordering::Acquire);
            let (slot, _) = self.slot(pos);
            if slot.stamp.load(Ordering::Acquire) == full_stamp(pos) {
                return Some(Ok(()));
            }
            self.is_closed().then_some(Err(AnyPopError::Closed))
        };
        if let Some(r) = ready(Poll::Check) {
            return r;
        }
        let ec = &self.ctl().sync.0.not_empty;
        match ec.wait_until(
            strategy,
            Deadline::from_timeout(timeout),
            role::watching(self.producers(), &self.prober, &mut ready),
        ) {
            Some(Waited::Ready(r)) => r,
            None if self.peers_gone(self.producers()) => {
                ready(Poll::Check).unwrap_or(Err(AnyPopError::Disconnected))
            }
            None => Err(AnyPopError::Timeout),
            Some(Waited::PeersGone) => Err(AnyPopError::Disconnected),
        }
    }

    /// Whether every peer in `slots` that ever arrived has released its role or died (one OS
    /// call per held slot).
    fn peers_gone(&self, slots: &[RoleSlot]) -> bool {
        role::peers(slots, &self.prober, true) == role::Peers::Gone
    }

    /// Claims a producer role slot.
    pub(crate) fn claim_producer(&self) -> Result<role::Claim, RoleError> {
        role::claim(self.producers(), self.prober.me(), &self.prober)
    }

    /// Claims a consumer role slot.
    pub(crate) fn claim_consumer(&self) -> Result<role::Claim, RoleError> {
        role::claim(self.consumers(), self.prober.me(), &self.prober)
    }

    /// Releases a producer slot and wakes waiting consumers (they may now be disconnected).
    pub(crate) fn release_producer(&self, index: usize) {
        role::release(self.producers(), index, self.prober.me());
        self.wake_all();
    }

    /// Releases a consumer slot and wakes waiting producers.
    pub(crate) fn release_consumer(&self, index: usize) {
        role::release(self.consumers(), index, self.prober.me());
        self.wake_all();
    }
}

/// The stamp of a slot free for position `pos`.
fn free_stamp(pos: u64) -> u64 {
    pos.wrapping_mul(2)
}

/// The stamp of a slot holding the message of position `pos`.
fn full_stamp(pos: u64) -> u64 {
    pos.wrapping_mul(2).wrapping_add(1)
}

/// Whether a timed-out push of `timeout` really waited: only then is it worth one liveness
/// probe of the consumers at its end (a zero timeout is a non-blocking push, which never
/// probes). Timed pops and `poll` always probe once at the end, so that even a zero-timeout
/// `poll` sees a dead sender (as Python's `poll()` reports a closed peer).
fn waited(timeout: Option<Duration>) -> bool {
    timeout.is_none_or(|t| !t.is_zero())
}

/// Whether and how long a ring operation may wait. A timed operation reads the clock only
/// once it has found that it must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Do not wait.
    No,
    /// Wait up to the timeout (`None`: without limit).
    For(Option<Duration>),
}

/// Shared state of a [`ByteQueue`] and its role handles.
#[derive(Debug)]
struct Shared {
    ring: Ring,
    flavor: Flavor,
    // Keeps the memory the ring points into alive; declared after `ring`.
    home: Home,
}

/// A queue of byte messages: the handle to its memory, from which role handles are taken.
///
/// See the [module docs](self) for the algorithm and an example.
#[derive(Debug, Clone)]
pub struct ByteQueue {
    shared: Arc<Shared>,
    /// The wait strategy handed to new role handles.
    strategy: WaitStrategy,
}

/// Builds a [`ByteQueue`] in a named segment.
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
    /// SPSC or MPMC (create: default MPMC). An opener adopts the segment's flavor; if this is
    /// set, it is checked (`WrongKind`).
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = Some(flavor);
        self
    }

    /// Capacity in messages (create only; default 64: an opener adopts the segment's).
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Longest message in bytes (create only; default 4096: an opener adopts the segment's).
    pub fn max_message(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }

    knob_methods!();

    fn segment(&self, flavor: Flavor) -> shm_core::SegmentBuilder {
        self.knobs.apply(
            Segment::builder(&self.name, flavor.kind())
                .count(self.capacity)
                .param(self.max_message as u64),
        )
    }

    /// Creates the segment (exclusively); its handle unlinks the name on drop.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] for a zero capacity or one too large, or a maximum
    /// over [`MAX_MESSAGE_LIMIT`]; the segment's errors.
    pub fn create(self) -> Result<ByteQueue, CreateError> {
        let len = check_geometry(self.capacity, self.max_message)?;
        let (cap, max) = (self.capacity, self.max_message);
        let flavor = self.flavor.unwrap_or(Flavor::Mpmc);
        let seg = self
            .segment(flavor)
            .body_len(len)
            // SAFETY: the body is 128-aligned, `len` = bytes_needed(cap, max) bytes, and not yet
            // published to anyone.
            .create(|body, _| unsafe { Ring::init(body, cap, max) })?;
        ByteQueue::from_home(
            Home::Segment(seg),
            cap,
            max,
            flavor,
            Prober::os(),
            self.knobs,
        )
        .map_err(|reason| CreateError::Invalid { reason })
    }

    /// Opens an existing queue, adopting its flavor (SPSC or MPMC, checked if set here),
    /// capacity and maximum message from the header.
    ///
    /// # Errors
    ///
    /// The segment's errors (missing, another kind, …); [`OpenError::CorruptBody`] for a
    /// header whose geometry does not fit its body.
    pub fn open(self) -> Result<ByteQueue, OpenError> {
        let bare = |f: Flavor| {
            self.knobs
                .apply(Segment::builder(&self.name, f.kind()))
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

    /// Opens the queue (adopting its flavor unless one is stated), or creates it (with this
    /// builder's flavor, capacity and maximum) if there is none; race-free for a stated
    /// flavor.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`OpenError::InvalidParameter`] for a geometry that could not
    /// be created.
    pub fn open_or_create(self) -> Result<ByteQueue, OpenError> {
        if self.flavor.is_none() {
            // No flavor stated: an existing queue of either flavor is adopted.
            match self.clone().open() {
                Err(OpenError::NotFound { .. }) => {}
                other => return other,
            }
        }
        let len = check_geometry(self.capacity, self.max_message)?;
        let (cap, max) = (self.capacity, self.max_message);
        let flavor = self.flavor.unwrap_or(Flavor::Mpmc);
        let seg = self
            .segment(flavor)
            .body_len(len)
            // SAFETY: the body is 128-aligned, `len` = bytes_needed(cap, max) bytes, and not yet
            // published to anyone.
            .open_or_create(|body, _| unsafe { Ring::init(body, cap, max) })?;
        Self::adopt(seg, flavor, self.knobs)
    }

    /// A queue over an opened segment, with the geometry its header records.
    fn adopt(seg: Segment, flavor: Flavor, knobs: Knobs) -> Result<ByteQueue, OpenError> {
        let cap = seg.header().count();
        let param = seg.header().param();
        let max = usize::try_from(param)
            .ok()
            .filter(|&m| m <= MAX_MESSAGE_LIMIT)
            .ok_or_else(|| {
                corrupt_geometry("max_message", format!("the header records {param} bytes"))
            })?;
        ByteQueue::from_home(Home::Segment(seg), cap, max, flavor, Prober::os(), knobs)
            .map_err(|detail| corrupt_geometry("body", detail))
    }
}

/// Validates a geometry for creation and returns the bytes it needs.
pub(crate) fn check_geometry(cap: u64, max: usize) -> Result<usize, BadGeometry> {
    if cap == 0 {
        return Err(BadGeometry::ZeroCapacity);
    }
    if max > MAX_MESSAGE_LIMIT {
        return Err(BadGeometry::MaxMessage {
            max,
            limit: MAX_MESSAGE_LIMIT,
        });
    }
    Ring::bytes_needed(cap, max).ok_or(BadGeometry::TooLarge { capacity: cap })
}

/// Attaches a ring at `offset` of `home`, checking the geometry against the home's size; on
/// failure, what is wrong.
pub(crate) fn attach_at(
    home: &Home,
    offset: usize,
    cap: u64,
    max: usize,
    roles: usize,
    prober: Prober,
) -> Result<Ring, String> {
    let need = Ring::bytes_needed(cap, max)
        .filter(|_| cap != 0)
        .ok_or_else(|| format!("no ring has a capacity of {cap} messages of {max} bytes"))?;
    let avail = home.len().saturating_sub(offset);
    let too_small = || {
        format!(
            "a ring of {cap} messages of {max} bytes needs {need} bytes at offset {offset}, \
             the body has {}",
            home.len()
        )
    };
    if need > avail || !offset.is_multiple_of(128) {
        return Err(too_small());
    }
    // SAFETY: offset <= home.len(), so the pointer stays within (or one past) the home.
    let base = unsafe { home.as_ptr().add(offset) };
    // SAFETY: base is 128-aligned (home is, offset is a multiple of 128), valid for `avail`
    // bytes as long as `home` lives (the callers keep it next to the ring), and holds a ring
    // written by init (or garbage, which the ring never trusts).
    unsafe { Ring::attach(base, avail, cap, max, roles, prober) }.ok_or_else(too_small)
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

    /// A queue on the heap (this process only: tests, loom, miri, threads).
    ///
    /// # Errors
    ///
    /// As [`ByteQueueBuilder::create`] for the geometry.
    ///
    /// # Examples
    ///
    /// ```
    /// use shm_queue::bytes::{ByteQueue, BytesTryPushError, Flavor};
    ///
    /// let q = ByteQueue::heap(Flavor::Spsc, 2, 4)?;
    /// let (tx, rx) = (q.producer()?, q.consumer()?);
    /// assert!(matches!(tx.try_push(b"12345".as_slice()), Err(BytesTryPushError::TooLarge { .. })));
    /// tx.try_push(b"1234".as_slice()).unwrap();
    /// assert_eq!(rx.try_pop().unwrap(), b"1234");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heap(
        flavor: Flavor,
        capacity: u64,
        max_message: usize,
    ) -> Result<ByteQueue, CreateError> {
        let len = check_geometry(capacity, max_message)?;
        let home = Home::heap(len);
        // SAFETY: a fresh, zeroed, 128-aligned heap block of exactly `len` bytes.
        unsafe { Ring::init(home.as_ptr(), capacity, max_message) };
        ByteQueue::from_home(
            home,
            capacity,
            max_message,
            flavor,
            Prober::heap(),
            Knobs::default(),
        )
        .map_err(|reason| CreateError::Invalid { reason })
    }

    fn from_home(
        home: Home,
        cap: u64,
        max: usize,
        flavor: Flavor,
        prober: Prober,
        knobs: Knobs,
    ) -> Result<ByteQueue, String> {
        let ring = attach_at(&home, 0, cap, max, flavor.roles(), prober)?;
        Ok(ByteQueue {
            shared: Arc::new(Shared { ring, flavor, home }),
            strategy: knobs.strategy,
        })
    }

    /// Claims the producer role (SPSC: the only one; MPMC: one of [`MAX_ROLES`]), taking over a
    /// dead process's claim if needed.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if every producer slot is held by a live process.
    pub fn producer(&self) -> Result<BytesProducer, RoleError> {
        let claim = self.shared.ring.claim_producer()?;
        Ok(BytesProducer {
            shared: self.shared.clone(),
            role: claim.index,
            strategy: self.strategy,
            _not_sync: PhantomData,
        })
    }

    /// Claims a consumer role.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if every consumer slot is held by a live process.
    pub fn consumer(&self) -> Result<BytesConsumer, RoleError> {
        let claim = self.shared.ring.claim_consumer()?;
        Ok(BytesConsumer {
            shared: self.shared.clone(),
            role: claim.index,
            strategy: self.strategy,
            _not_sync: PhantomData,
        })
    }

    /// Closes the queue: pushes fail with `Closed`, pops drain what is left and then fail with
    /// `Closed`; waiters wake up. Irreversible.
    pub fn close(&self) {
        self.shared.ring.close();
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.ring.is_closed()
    }

    /// The ring, for read-only snapshots (`inspect`).
    pub(crate) fn ring(&self) -> &Ring {
        &self.shared.ring
    }

    /// Messages queued: exact when nobody is pushing or popping.
    pub fn len(&self) -> usize {
        self.shared.ring.len() as usize
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capacity in messages.
    pub fn capacity(&self) -> usize {
        self.shared.ring.capacity() as usize
    }

    /// Longest message in bytes.
    pub fn max_message(&self) -> usize {
        self.shared.ring.max_message()
    }

    /// Test hook (feature `test-hooks`): overwrites the stamp of position `pos`'s slot, as a
    /// process scribbling over the segment would. Not part of the API.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn forge_stamp(&self, pos: u64, stamp: u64) {
        self.shared
            .ring
            .slot(pos)
            .0
            .stamp
            .store(stamp, Ordering::Release);
    }

    /// SPSC or MPMC.
    pub fn flavor(&self) -> Flavor {
        self.shared.flavor
    }

    /// The segment, unless the queue lives on the heap.
    pub fn segment(&self) -> Option<&Segment> {
        self.shared.home.segment()
    }
}

/// The producer role of a [`ByteQueue`]; released on drop.
///
/// `Send` but not `Sync`: a handle holds one role slot, whose `pending` word describes one
/// operation at a time. Give each thread a handle of its own.
///
/// ```compile_fail
/// fn sync<T: Sync>() {}
/// sync::<shm_queue::bytes::BytesProducer>();
/// ```
#[must_use = "dropping the producer releases its role"]
pub struct BytesProducer {
    shared: Arc<Shared>,
    role: usize,
    strategy: WaitStrategy,
    /// One role slot, one operation at a time: `Send` but not `Sync`.
    _not_sync: PhantomData<Cell<()>>,
}

impl fmt::Debug for BytesProducer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BytesProducer")
            .field("role", &self.role)
            .field("ring", &self.shared.ring)
            .finish()
    }
}

impl BytesProducer {
    /// Sets how blocked pushes wait (default: [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Pushes without waiting. The message is in shared memory when this returns `Ok`.
    ///
    /// # Errors
    ///
    /// `TooLarge`, `Full`, `Closed`, `Disconnected` (full and no consumer left), `Corrupt`;
    /// each hands the message back.
    pub fn try_push<M: AsRef<[u8]>>(&self, msg: M) -> Result<(), BytesTryPushError<M>> {
        self.shared
            .ring
            .push(msg, self.role, &self.strategy, Wait::No)
            .map_err(BytesTryPushError::narrow)
    }

    /// Pushes, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// `TooLarge`, `Closed`, `Disconnected`, `Corrupt`; each hands the message back.
    pub fn push<M: AsRef<[u8]>>(&self, msg: M) -> Result<(), BytesPushError<M>> {
        self.shared
            .ring
            .push(msg, self.role, &self.strategy, Wait::For(None))
            .map_err(BytesPushError::narrow)
    }

    /// Pushes, waiting at most `timeout` while the queue is full.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push), and `Timeout`.
    pub fn push_timeout<M: AsRef<[u8]>>(
        &self,
        msg: M,
        timeout: Duration,
    ) -> Result<(), BytesPushTimeoutError<M>> {
        self.shared
            .ring
            .push(msg, self.role, &self.strategy, Wait::For(Some(timeout)))
            .map_err(BytesPushTimeoutError::narrow)
    }

    /// The queue this producer pushes into.
    pub fn max_message(&self) -> usize {
        self.shared.ring.max_message()
    }
}

impl Drop for BytesProducer {
    fn drop(&mut self) {
        self.shared.ring.release_producer(self.role);
    }
}

/// The consumer role of a [`ByteQueue`]; released on drop.
///
/// `Send` but not `Sync`, like [`BytesProducer`].
#[must_use = "dropping the consumer releases its role"]
pub struct BytesConsumer {
    shared: Arc<Shared>,
    role: usize,
    strategy: WaitStrategy,
    /// One role slot, one operation at a time: `Send` but not `Sync`.
    _not_sync: PhantomData<Cell<()>>,
}

impl fmt::Debug for BytesConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BytesConsumer")
            .field("role", &self.role)
            .field("ring", &self.shared.ring)
            .finish()
    }
}

impl BytesConsumer {
    /// Sets how blocked pops wait (default: [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    fn pop_dest(&self, dest: &mut Dest<'_>, d: Wait) -> Result<usize, AnyPopError> {
        self.shared.ring.pop(dest, self.role, &self.strategy, d)
    }

    /// Pops a message without waiting.
    ///
    /// # Errors
    ///
    /// `Empty`, `Closed` (closed and drained), `Disconnected` (drained and every producer gone),
    /// `Corrupt`.
    pub fn try_pop(&self) -> Result<Vec<u8>, TryPopError> {
        let mut v = Vec::new();
        self.pop_dest(&mut Dest::Vec(&mut v), Wait::No)
            .map(|_| v)
            .map_err(|e| TryPopError::from_fail(narrow_pop(e)))
    }

    /// Pops a message, sleeping while the queue is empty.
    ///
    /// # Errors
    ///
    /// `Closed`, `Disconnected`, `Corrupt`.
    pub fn pop(&self) -> Result<Vec<u8>, PopError> {
        let mut v = Vec::new();
        self.pop_dest(&mut Dest::Vec(&mut v), Wait::For(None))
            .map(|_| v)
            .map_err(|e| PopError::from_fail(narrow_pop(e)))
    }

    /// Pops a message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`pop`](Self::pop), and `Timeout`.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<Vec<u8>, PopTimeoutError> {
        let mut v = Vec::new();
        self.pop_dest(&mut Dest::Vec(&mut v), Wait::For(Some(timeout)))
            .map(|_| v)
            .map_err(|e| PopTimeoutError::from_fail(narrow_pop(e)))
    }

    /// Pops a message into `buf` without waiting; returns its length.
    ///
    /// # Errors
    ///
    /// As [`try_pop`](Self::try_pop), and `TooSmall { needed }` if `buf` is shorter than the
    /// next message, which then stays queued.
    pub fn try_pop_into(&self, buf: &mut [u8]) -> Result<usize, TryPopIntoError> {
        self.pop_dest(&mut Dest::Slice(buf), Wait::No)
            .map_err(TryPopIntoError::narrow)
    }

    /// Pops a message into `buf`, sleeping while the queue is empty; returns its length.
    ///
    /// # Errors
    ///
    /// As [`pop`](Self::pop), and `TooSmall { needed }` (the message stays queued).
    pub fn pop_into(&self, buf: &mut [u8]) -> Result<usize, PopIntoError> {
        self.pop_dest(&mut Dest::Slice(buf), Wait::For(None))
            .map_err(PopIntoError::narrow)
    }

    /// Pops a message into `buf`, waiting at most `timeout`; returns its length.
    ///
    /// # Errors
    ///
    /// As [`pop_into`](Self::pop_into), and `Timeout`.
    pub fn pop_into_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, PopIntoTimeoutError> {
        self.pop_dest(&mut Dest::Slice(buf), Wait::For(Some(timeout)))
            .map_err(PopIntoTimeoutError::narrow)
    }

    /// Longest message in bytes.
    pub fn max_message(&self) -> usize {
        self.shared.ring.max_message()
    }
}

impl Drop for BytesConsumer {
    fn drop(&mut self) {
        self.shared.ring.release_consumer(self.role);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

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
        assert_eq!(Ring::stride(0), Some(64));
        assert_eq!(Ring::stride(48), Some(64));
        assert_eq!(Ring::stride(49), Some(128));
        assert!(Ring::bytes_needed(u64::MAX, 10).is_none());
        assert_eq!(check_geometry(0, 8), Err(BadGeometry::ZeroCapacity));
        assert!(matches!(
            check_geometry(1, usize::MAX),
            Err(BadGeometry::MaxMessage { .. })
        ));
        assert!(matches!(
            check_geometry(u64::MAX, 8),
            Err(BadGeometry::TooLarge { .. })
        ));
        assert_eq!(Ring::bytes_needed(3, 8).unwrap() % 128, 0);
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
        let (slot, _) = q.shared.ring.slot(0);
        slot.len.store(u32::MAX, Ordering::Relaxed);
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
        assert_eq!(q.shared.ring.positions(), (0, 2), "nothing was consumed");
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
            let (slot, _) = q.shared.ring.slot(1);
            slot.stamp.store(full_stamp(1 + 4 * 7), Ordering::Relaxed);
            assert_eq!(rx.try_pop(), Err(TryPopError::Corrupt));
            assert_eq!(rx.pop(), Err(PopError::Corrupt));
            assert!(matches!(
                tx.try_push(b"c"),
                Err(BytesTryPushError::Corrupt(_))
            ));
            assert!(q.shared.ring.is_poisoned());
        }
        // The producer side: a stamp ahead of `tail` likewise.
        let q = ByteQueue::heap(Flavor::Mpmc, 2, 8).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        let (slot, _) = q.shared.ring.slot(0);
        slot.stamp.store(1 << 40, Ordering::Relaxed);
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
        let (slot, _) = q.shared.ring.slot(0);
        slot.stamp
            .store(full_stamp(0).wrapping_sub(8), Ordering::Relaxed);
        assert!(matches!(
            tx.try_push(b"x"),
            Err(BytesTryPushError::Corrupt(_))
        ));
    }

    /// A ring on the heap whose liveness is checked with the OS, for dead-peer tests.
    fn checked_heap(cap: u64, max: usize) -> ByteQueue {
        let home = Home::heap(check_geometry(cap, max).unwrap());
        // SAFETY: a fresh, zeroed, 128-aligned block of the needed size.
        unsafe { Ring::init(home.as_ptr(), cap, max) };
        ByteQueue::from_home(home, cap, max, Flavor::Mpmc, Prober::os(), Knobs::default()).unwrap()
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
        let ring = &q.shared.ring;
        // A producer claimed position 0 and died before publishing it.
        role::claim(ring.producers(), dead_word(), &Prober::heap()).unwrap();
        ring.producers()[0].pending().store(1, Ordering::Relaxed);
        ring.ctl().tail.0.store(1, Ordering::Relaxed);
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
        let ring = &q.shared.ring;
        let mut tx = q.producer().unwrap();
        tx.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(1)));
        tx.try_push(b"a").unwrap();
        // A consumer claimed position 0 and died before freeing its slot.
        role::claim(ring.consumers(), dead_word(), &Prober::heap()).unwrap();
        ring.consumers()[0].pending().store(1, Ordering::Relaxed);
        ring.ctl().head.0.store(1, Ordering::Relaxed);
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

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::thread;

    /// One producer pushes two messages through a ring of one slot (so it wraps and must wait
    /// for the consumer to free the slot); the consumer gets both, in order, intact.
    #[test]
    fn loom_spsc_wrap_with_blocking() {
        loom::model(|| {
            let q = ByteQueue::heap(Flavor::Spsc, 1, 4).unwrap();
            let mut tx = q.producer().unwrap();
            let mut rx = q.consumer().unwrap();
            tx.set_wait_strategy(WaitStrategy::sleep());
            rx.set_wait_strategy(WaitStrategy::sleep());
            let t = thread::spawn(move || {
                tx.push(b"ab".as_slice()).unwrap();
                tx.push(b"cde".as_slice()).unwrap();
            });
            assert_eq!(rx.pop().unwrap(), b"ab");
            assert_eq!(rx.pop().unwrap(), b"cde");
            t.join().unwrap();
        });
    }

    /// Two producers race for the slots of a two-slot ring; a consumer sees each message once.
    #[test]
    fn loom_mpmc_two_producers() {
        loom::model(|| {
            let q = ByteQueue::heap(Flavor::Mpmc, 2, 2).unwrap();
            let tx1 = q.producer().unwrap();
            let tx2 = q.producer().unwrap();
            let rx = q.consumer().unwrap();
            let a = thread::spawn(move || tx1.try_push([1u8]).unwrap());
            let b = thread::spawn(move || tx2.try_push([2u8, 2]).unwrap());
            a.join().unwrap();
            b.join().unwrap();
            let mut got = vec![rx.try_pop().unwrap(), rx.try_pop().unwrap()];
            got.sort();
            assert_eq!(got, vec![vec![1u8], vec![2u8, 2]]);
            assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
        });
    }

    /// Two consumers race for one message, one with a buffer too short for it: the message is
    /// delivered exactly once, intact, and a `TooSmall` never consumes it.
    #[test]
    fn loom_mpmc_short_buffer_never_consumes() {
        loom::model(|| {
            let q = ByteQueue::heap(Flavor::Mpmc, 2, 4).unwrap();
            let tx = q.producer().unwrap();
            let rx1 = q.consumer().unwrap();
            let rx2 = q.consumer().unwrap();
            tx.try_push(b"abc".as_slice()).unwrap();
            let t = thread::spawn(move || {
                let mut small = [0u8; 2];
                rx1.try_pop_into(&mut small)
            });
            let mut big = [0u8; 4];
            let r2 = rx2.try_pop_into(&mut big);
            let r1 = t.join().unwrap();
            match r1 {
                Err(TryPopIntoError::TooSmall { needed: 3 }) | Err(TryPopIntoError::Empty) => {}
                other => panic!("short buffer: {other:?}"),
            }
            assert_eq!(r2, Ok(3));
            assert_eq!(&big[..3], b"abc");
            assert_eq!(q.len(), 0);
        });
    }

    /// A consumer blocked on an empty queue wakes when the last producer leaves.
    #[test]
    fn loom_pop_wakes_on_producer_drop() {
        loom::model(|| {
            let q = ByteQueue::heap(Flavor::Spsc, 1, 1).unwrap();
            let tx = q.producer().unwrap();
            let mut rx = q.consumer().unwrap();
            rx.set_wait_strategy(WaitStrategy::sleep());
            let t = thread::spawn(move || {
                tx.try_push([9u8]).unwrap();
                drop(tx);
            });
            assert_eq!(rx.pop().unwrap(), vec![9u8]);
            assert_eq!(rx.pop(), Err(PopError::Disconnected));
            t.join().unwrap();
        });
    }
}
