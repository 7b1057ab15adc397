//! `Pipe`: a duplex or one-way connection of byte messages between two processes.
//!
//! One segment (`ObjectKind::Pipe`) holds two end slots and one or two SPSC byte rings
//! ([`crate::bytes`]): the ring *to the creator* always, and the ring *to the opener* when the
//! pipe is duplex. The creating process gets one end from [`PipeBuilder::create`]; another
//! process takes the other end with [`PipeBuilder::open`] ([`PipeBuilder::open_or_create`]
//! gives whichever end is due: the creator's if it created the pipe, else the opener's). Each
//! end is claimed atomically in the segment by process identity (a second opener gets the
//! [end-taken error](PipeBuilder::open); the claim of a dead process is taken over).
//!
//! In a one-way pipe (`duplex(false)`) the creating end receives and the opening end sends.
//!
//! Python's semantics (`send_bytes`, `recv_bytes`, `recv_bytes_into`, `poll`), without its
//! pitfalls: [`PipeEnd::recv_bytes`] returns the messages the peer sent and then
//! [`RecvError::Disconnected`] (Python's `EOFError`) once the peer dropped its end or died (a
//! killed peer is noticed within one sleep slice of a blocked receive, and at the end of every
//! timed receive or [`poll`](PipeEnd::poll) that found nothing); [`PipeEnd::send_bytes`] fails
//! with [`SendError::Disconnected`] (Python's `BrokenPipeError`) once the receiving end dropped
//! or died (a drop is seen at once; a death by a send blocked on a full pipe, within one sleep
//! slice); a receive buffer that is too short is [`RecvIntoError::TooSmall`] and loses nothing.
//!
//! Each call has its own error enum, named and shaped as the queues' are (crossbeam-channel's
//! convention): only what that call can end with, the rejected message handed back
//! ([`into_inner`](SendError::into_inner)). Sends: [`TrySendError`] (`Full`), [`SendError`]
//! (waits, so never `Full` nor `Timeout`), [`SendTimeoutError`] (`Timeout`). Receives:
//! [`TryRecvError`] (`Empty`), [`RecvError`] (waits: never `Empty` nor `Timeout`),
//! [`RecvTimeoutError`] (`Timeout`), and into a buffer [`TryRecvIntoError`],
//! [`RecvIntoError`], [`RecvIntoTimeoutError`] (each with `TooSmall`).
//!
//! The header's `count` is the capacity in messages of each direction, its `param` the maximum
//! message length (low 32 bits) and the duplex flag (bit 32).
//!
//! # Examples
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_queue::pipe::Pipe;
//!
//! let name = SegmentName::unique();
//! // Process 1:
//! let a = Pipe::builder(&name).duplex(true).max_message(256).capacity(8).create()?;
//! // Process 2 (here the same process, for the example):
//! let b = Pipe::builder(&name).open()?;
//! b.send_bytes(b"ping")?;
//! assert!(a.poll(None));
//! assert_eq!(a.recv_bytes()?, b"ping");
//! a.send_bytes(b"pong")?;
//! let mut buf = [0u8; 16];
//! let n = b.recv_into(&mut buf)?;
//! assert_eq!(&buf[..n], b"pong");
//! drop(a);
//! assert!(b.recv_bytes().is_err()); // end of stream
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::bytes::{pop_msg, push_msg, AnyPopError, AnyPushError, MAX_MESSAGE_LIMIT};
use crate::error::Fail;
use crate::error::{corrupt_geometry, knob_methods, BadGeometry, Knobs, RoleError};
use crate::ring::{Dest, Flavor, Geometry, Ring, Rx, Tx, Wait};
use crate::role::{self, Peers, Prober, RoleSlot};
use shm_core::{
    CreateError, Home, ObjectKind, OpenError, Segment, SegmentBuilder, SegmentName, WaitStrategy,
};
use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// The block at the start of a pipe's body: the two end slots (creator's, opener's).
#[repr(C)]
struct PipeHead {
    ends: [RoleSlot; 2],
}

/// Offset of the first ring (after the head, 128-aligned).
const RING_OFFSET: usize = std::mem::size_of::<PipeHead>();

#[cfg(not(loom))]
const _: () = assert!(RING_OFFSET == 256);

/// Duplex flag in the header's `param`.
const DUPLEX_BIT: u64 = 1 << 32;

/// Which end of a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// The end that created the segment.
    Creator,
    /// The end that opened it.
    Opener,
}

/// The namespace of pipes: see [`Pipe::builder`] and the [module docs](self).
#[derive(Debug)]
pub struct Pipe(());

impl Pipe {
    /// A builder for the pipe named `name`.
    pub fn builder(name: &SegmentName) -> PipeBuilder {
        PipeBuilder {
            name: name.clone(),
            duplex: true,
            max_message: 4096,
            capacity: 16,
            knobs: Knobs::default(),
        }
    }

    /// Both ends of a pipe on the heap (this process only: tests, threads, miri).
    ///
    /// # Errors
    ///
    /// As [`PipeBuilder::create`] for the geometry.
    pub fn heap_pair(
        duplex: bool,
        capacity: u64,
        max_message: usize,
    ) -> Result<(PipeEnd, PipeEnd), CreateError> {
        let (len, ring_len) = geometry(duplex, capacity, max_message)?;
        let home = Home::heap(len);
        // SAFETY: a fresh, zeroed, 128-aligned block of `len` bytes, used by nobody else yet.
        unsafe { init(&home, duplex, capacity, max_message, ring_len) };
        let home = Arc::new(home);
        let a = PipeEnd::attach(
            home.clone(),
            End::Creator,
            duplex,
            capacity,
            max_message,
            Prober::heap(),
            WaitStrategy::default(),
        )
        .map_err(AttachError::unexpected)?;
        let b = PipeEnd::attach(
            home,
            End::Opener,
            duplex,
            capacity,
            max_message,
            Prober::heap(),
            WaitStrategy::default(),
        )
        .map_err(AttachError::unexpected)?;
        Ok((a, b))
    }
}

/// Builds a pipe in a named segment.
#[derive(Debug, Clone)]
#[must_use]
pub struct PipeBuilder {
    name: SegmentName,
    duplex: bool,
    max_message: usize,
    capacity: u64,
    knobs: Knobs,
}

impl PipeBuilder {
    /// Both directions (default) or one (creator receives, opener sends). Create only.
    pub fn duplex(mut self, duplex: bool) -> Self {
        self.duplex = duplex;
        self
    }

    /// Longest message in bytes (default 4096). Create only.
    pub fn max_message(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }

    /// Messages each direction can hold (default 16). Create only.
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    knob_methods!();

    /// Creates the pipe and returns the creator's end (which unlinks the name on drop).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] for an impossible geometry; the segment's errors.
    pub fn create(self) -> Result<PipeEnd, CreateError> {
        let (len, ring_len) = geometry(self.duplex, self.capacity, self.max_message)?;
        let (duplex, cap, max) = (self.duplex, self.capacity, self.max_message);
        let seg = self
            .segment(duplex, cap, max)
            .body_len(len)
            // SAFETY: the unpublished body is 128-aligned and `len` bytes long.
            .create(|body, _| unsafe { init_at(body, duplex, cap, max, ring_len) })?;
        PipeEnd::attach(
            Arc::new(Home::Segment(seg)),
            End::Creator,
            duplex,
            cap,
            max,
            Prober::os(),
            self.knobs.strategy,
        )
        .map_err(AttachError::unexpected)
    }

    /// Opens the other end of an existing pipe; geometry and direction come from the header.
    ///
    /// # Errors
    ///
    /// The segment's errors (missing, another kind, a corrupt header, …);
    /// [`OpenError::CorruptBody`] for a header whose geometry does not fit its body; and, if a
    /// live process (or one whose liveness cannot be told) holds the opener's end, the
    /// end-taken error: [`OpenError::Busy`] naming the holder (see also [`end_taken`]).
    pub fn open(self) -> Result<PipeEnd, OpenError> {
        let seg = self
            .knobs
            .apply(Segment::builder(&self.name, ObjectKind::Pipe))
            .open()?;
        adopt(seg, self.knobs.strategy)
    }

    /// Opens the pipe and takes the opener's end, or, if there is none, creates it (with this
    /// builder's direction, capacity and maximum) and takes the creator's end; race-free: of
    /// two processes that call it, one creates and one opens. An opened pipe's direction and
    /// maximum message come from its header; its capacity is checked, as the queues' is.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`OpenError::WrongCount`] if an existing pipe has another
    /// capacity; [`OpenError::InvalidParameter`] for a geometry that could not be created.
    pub fn open_or_create(self) -> Result<PipeEnd, OpenError> {
        let (len, ring_len) = geometry(self.duplex, self.capacity, self.max_message)?;
        let (duplex, cap, max) = (self.duplex, self.capacity, self.max_message);
        let seg = self
            .segment(duplex, cap, max)
            .body_len(len)
            // SAFETY: the unpublished body is 128-aligned and `len` bytes long.
            .open_or_create(|body, _| unsafe { init_at(body, duplex, cap, max, ring_len) })?;
        adopt(seg, self.knobs.strategy)
    }

    /// The segment builder with this builder's knobs and the header fields of a pipe.
    fn segment(&self, duplex: bool, cap: u64, max: usize) -> SegmentBuilder {
        let param = max as u64 | if duplex { DUPLEX_BIT } else { 0 };
        self.knobs
            .apply(Segment::builder(&self.name, ObjectKind::Pipe))
            .count(cap)
            .param(param)
    }
}

/// The end of an opened (or just created) pipe that is due to this process: the creator's if
/// it created the segment, else the opener's; geometry and direction from the header.
fn adopt(seg: Segment, strategy: WaitStrategy) -> Result<PipeEnd, OpenError> {
    let param = seg.header().param();
    let cap = seg.header().count();
    let max = (param & 0xffff_ffff) as usize;
    if max > MAX_MESSAGE_LIMIT || param >> 33 != 0 {
        return Err(corrupt_geometry(
            "param",
            format!("the header records {param:#x}: no maximum message and direction flag"),
        ));
    }
    let duplex = param & DUPLEX_BIT != 0;
    let end = if seg.is_creator() {
        End::Creator
    } else {
        End::Opener
    };
    let home = Arc::new(Home::Segment(seg));
    PipeEnd::attach(home, end, duplex, cap, max, Prober::os(), strategy).map_err(|e| match e {
        AttachError::Geometry(detail) => corrupt_geometry("body", detail),
        AttachError::EndTaken(e) => end_taken_error(end, e),
    })
}

/// The error of an opener that found its end of the pipe held by a live process (shm-core's
/// `OpenError` has no variant for a held role): `EBUSY`, wrapping the [`RoleError`].
fn end_taken_error(end: End, e: RoleError) -> OpenError {
    let RoleError::Busy { holder } = e;
    OpenError::Busy {
        what: match end {
            End::Creator => "the creator's end of the pipe",
            End::Opener => "the opener's end of the pipe",
        },
        holder,
    }
}

/// If `e` is the error of an [`open`](PipeBuilder::open) that found its end held by a live
/// process: the [`RoleError`] naming the holder (the same as matching
/// [`OpenError::Busy`]).
pub fn end_taken(e: &OpenError) -> Option<RoleError> {
    match e {
        OpenError::Busy { holder, .. } => Some(RoleError::Busy { holder: *holder }),
        _ => None,
    }
}

/// Why an end could not be attached to a pipe's memory.
enum AttachError {
    /// The geometry does not fit the memory (what is wrong).
    Geometry(String),
    /// A live process (or one whose liveness cannot be told) holds the end or its roles.
    EndTaken(RoleError),
}

impl AttachError {
    /// For a creator, whose fresh memory fits and whose end is free: an error here means the
    /// memory was not what was just made.
    fn unexpected(self) -> CreateError {
        CreateError::Invalid {
            reason: match self {
                AttachError::Geometry(d) => d,
                AttachError::EndTaken(e) => format!("the creator's end of a new pipe: {e}"),
            },
        }
    }
}

/// Total body bytes and bytes per ring.
fn geometry(duplex: bool, cap: u64, max: usize) -> Result<(usize, usize), BadGeometry> {
    let ring = ring_geometry(cap, max).body_len()?;
    let rings = if duplex { 2 } else { 1 };
    let len = ring
        .checked_mul(rings)
        .and_then(|r| r.checked_add(RING_OFFSET))
        .ok_or(BadGeometry::TooLarge { capacity: cap })?;
    Ok((len, ring))
}

/// The geometry of each of a pipe's rings: SPSC, byte messages.
fn ring_geometry(cap: u64, max: usize) -> Geometry {
    Geometry::bytes(Flavor::Spsc, cap, max)
}

/// Initialises a pipe in `home`.
///
/// # Safety
///
/// As [`init_at`], for `home`'s memory.
unsafe fn init(home: &Home, duplex: bool, cap: u64, max: usize, ring_len: usize) {
    // SAFETY: forwarded to the caller.
    unsafe { init_at(home.as_ptr(), duplex, cap, max, ring_len) }
}

/// Initialises a pipe at `base`.
///
/// # Safety
///
/// `base` is 128-aligned, valid for writes of `geometry(duplex, cap, max).0` bytes (with
/// `ring_len` its second part), and used by nobody else during the call.
unsafe fn init_at(
    base: std::ptr::NonNull<u8>,
    duplex: bool,
    cap: u64,
    max: usize,
    ring_len: usize,
) {
    let head = PipeHead {
        ends: [RoleSlot::new(), RoleSlot::new()],
    };
    // SAFETY: the head fits at the start (RING_OFFSET bytes), aligned.
    unsafe { base.cast::<PipeHead>().as_ptr().write(head) };
    // SAFETY: the first ring lies at RING_OFFSET, 128-aligned, ring_len bytes in bounds.
    unsafe { Ring::init(base.add(RING_OFFSET), &ring_geometry(cap, max)) };
    if duplex {
        // SAFETY: the second ring follows the first, in bounds for a duplex geometry.
        unsafe { Ring::init(base.add(RING_OFFSET + ring_len), &ring_geometry(cap, max)) };
    }
}

/// Every way a send can fail (each operation's public error has a subset).
#[derive(PartialEq, Eq)]
pub(crate) enum AnySendError<M> {
    /// The message is longer than the pipe's maximum.
    TooLarge {
        /// The message.
        msg: M,
        /// The maximum.
        max: usize,
    },
    /// The receiving end dropped or died.
    Disconnected(M),
    /// The pipe is full (non-blocking send).
    Full(M),
    /// The pipe stayed full until the timeout.
    Timeout(M),
    /// This end of a one-way pipe cannot send.
    NotWritable(M),
    /// The pipe is poisoned: its shared state is corrupt (see [`AnyRecvError::Corrupt`]).
    Corrupt(M),
}

impl<M> fmt::Debug for AnySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnySendError::TooLarge { max, .. } => write!(f, "TooLarge {{ max: {max}, .. }}"),
            AnySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
            AnySendError::Full(_) => f.write_str("Full(..)"),
            AnySendError::Timeout(_) => f.write_str("Timeout(..)"),
            AnySendError::NotWritable(_) => f.write_str("NotWritable(..)"),
            AnySendError::Corrupt(_) => f.write_str("Corrupt(..)"),
        }
    }
}

/// Every way a receive can fail (each operation's public error has a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AnyRecvError {
    /// End of stream: the sending end dropped or died, and everything it sent was received.
    Disconnected,
    /// Nothing to receive (non-blocking receive).
    Empty,
    /// Nothing arrived before the timeout.
    Timeout,
    /// The buffer is shorter than the next message, which stays in the pipe.
    TooSmall {
        /// The message's length.
        needed: usize,
    },
    /// This end of a one-way pipe cannot receive.
    NotReadable,
    /// The pipe is poisoned: a stamp or length read from it could not be right (another
    /// process wrote garbage into it). The messages in that direction are lost; every later
    /// receive fails the same way.
    Corrupt,
}

impl From<AnyPopError> for AnyRecvError {
    fn from(e: AnyPopError) -> Self {
        match e {
            AnyPopError::Empty => AnyRecvError::Empty,
            AnyPopError::Closed | AnyPopError::Disconnected => AnyRecvError::Disconnected,
            AnyPopError::Timeout => AnyRecvError::Timeout,
            AnyPopError::TooSmall { needed } => AnyRecvError::TooSmall { needed },
            AnyPopError::Corrupt => AnyRecvError::Corrupt,
        }
    }
}

/// The public send errors, one per operation; each hands the message back.
macro_rules! send_errors {
    ($(
        $(#[$m:meta])*
        $name:ident { $( $(#[$vm:meta])* $var:ident : $msg:literal ),* $(,)? }
    )+) => {$(
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub enum $name<M> {
            /// The message is longer than the pipe's maximum.
            TooLarge {
                /// The message.
                msg: M,
                /// The maximum.
                max: usize,
            },
            $( $(#[$vm])* $var(M), )*
            /// The receiving end dropped its end or died (Python's `BrokenPipeError`).
            Disconnected(M),
            /// This end of a one-way pipe cannot send.
            NotWritable(M),
            /// The pipe is poisoned: a stamp or length read from it could not be right
            /// (another process wrote garbage into it); every later call fails the same way.
            Corrupt(M),
        }

        impl<M> $name<M> {
            /// The rejected message.
            pub fn into_inner(self) -> M {
                match self {
                    $name::TooLarge { msg, .. } => msg,
                    $( $name::$var(m) => m, )*
                    $name::Disconnected(m) | $name::NotWritable(m) | $name::Corrupt(m) => m,
                }
            }

            /// The public form of `e`, which this operation can end with.
            #[allow(unreachable_patterns)]
            pub(crate) fn narrow(e: AnySendError<M>) -> Self {
                match e {
                    AnySendError::TooLarge { msg, max } => $name::TooLarge { msg, max },
                    $( AnySendError::$var(m) => $name::$var(m), )*
                    AnySendError::Disconnected(m) => $name::Disconnected(m),
                    AnySendError::NotWritable(m) => $name::NotWritable(m),
                    AnySendError::Corrupt(m) => $name::Corrupt(m),
                    other => unreachable!("{other:?} cannot end {}", stringify!($name)),
                }
            }
        }

        impl<M> fmt::Debug for $name<M> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::TooLarge { max, .. } => write!(f, "TooLarge {{ max: {max}, .. }}"),
                    $( $name::$var(_) => f.write_str(concat!(stringify!($var), "(..)")), )*
                    $name::Disconnected(_) => f.write_str("Disconnected(..)"),
                    $name::NotWritable(_) => f.write_str("NotWritable(..)"),
                    $name::Corrupt(_) => f.write_str("Corrupt(..)"),
                }
            }
        }

        impl<M> fmt::Display for $name<M> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $name::TooLarge { max, .. } => {
                        write!(f, "message longer than the pipe's maximum of {max} bytes")
                    }
                    $( $name::$var(_) => f.write_str($msg), )*
                    $name::Disconnected(_) => {
                        f.write_str("send on a pipe whose receiving end is gone (broken pipe)")
                    }
                    $name::NotWritable(_) => {
                        f.write_str("this end of a one-way pipe cannot send")
                    }
                    $name::Corrupt(_) => {
                        f.write_str("the pipe is poisoned: its shared state is corrupt")
                    }
                }
            }
        }

        impl<M> Error for $name<M> {}
    )+};
}

send_errors! {
    /// Why [`PipeEnd::try_send_bytes`] did not send.
    TrySendError {
        /// The pipe is full.
        Full: "the pipe is full",
    }

    /// Why [`PipeEnd::send_bytes`], which waits while the pipe is full, did not send.
    SendError {}

    /// Why [`PipeEnd::send_bytes_timeout`] did not send.
    SendTimeoutError {
        /// The pipe stayed full until the timeout.
        Timeout: "send timed out: the pipe stayed full",
    }
}

/// The public receive errors, one per operation (`into` ones with `TooSmall`).
macro_rules! recv_errors {
    ($(
        $(#[$m:meta])*
        $name:ident $([$small:ident])? { $( $(#[$vm:meta])* $var:ident : $msg:literal ),* $(,)? }
    )+) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $(
                /// The buffer is shorter than the next message, which stays in the pipe.
                $small {
                    /// The message's length.
                    needed: usize,
                },
            )?
            $( $(#[$vm])* $var, )*
            /// End of stream (Python's `EOFError`): the sending end dropped its end or died,
            /// and everything it sent was received. (A pipe whose other end was never opened
            /// is waited on.)
            Disconnected,
            /// This end of a one-way pipe cannot receive.
            NotReadable,
            /// The pipe is poisoned: a stamp or length read from it could not be right
            /// (another process wrote garbage into it). The messages in that direction are
            /// lost; every later receive fails the same way.
            Corrupt,
        }

        impl $name {
            /// The public form of `e`, which this operation can end with.
            #[allow(unreachable_patterns)]
            pub(crate) fn narrow(e: AnyRecvError) -> Self {
                match e {
                    $( AnyRecvError::TooSmall { needed } => $name::$small { needed }, )?
                    $( AnyRecvError::$var => $name::$var, )*
                    AnyRecvError::Disconnected => $name::Disconnected,
                    AnyRecvError::NotReadable => $name::NotReadable,
                    AnyRecvError::Corrupt => $name::Corrupt,
                    other => unreachable!("{other:?} cannot end {}", stringify!($name)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$small { needed } => {
                        write!(f, "buffer too small: the next message has {needed} bytes")
                    } )?
                    $( $name::$var => f.write_str($msg), )*
                    $name::Disconnected => {
                        f.write_str("end of stream: the pipe's sending end is gone")
                    }
                    $name::NotReadable => {
                        f.write_str("this end of a one-way pipe cannot receive")
                    }
                    $name::Corrupt => {
                        f.write_str("the pipe is poisoned: its shared state is corrupt")
                    }
                }
            }
        }

        impl Error for $name {}
    )+};
}

recv_errors! {
    /// Why [`PipeEnd::try_recv_bytes`] returned no message.
    TryRecvError {
        /// Nothing to receive.
        Empty: "nothing to receive",
    }

    /// Why [`PipeEnd::recv_bytes`], which waits for a message, returned none.
    RecvError {}

    /// Why [`PipeEnd::recv_bytes_timeout`] returned no message.
    RecvTimeoutError {
        /// Nothing arrived before the timeout.
        Timeout: "receive timed out",
    }

    /// Why [`PipeEnd::try_recv_into`] returned no message.
    TryRecvIntoError [TooSmall] {
        /// Nothing to receive.
        Empty: "nothing to receive",
    }

    /// Why [`PipeEnd::recv_into`] returned no message.
    RecvIntoError [TooSmall] {}

    /// Why [`PipeEnd::recv_into_timeout`] returned no message.
    RecvIntoTimeoutError [TooSmall] {
        /// Nothing arrived before the timeout.
        Timeout: "receive timed out",
    }
}

/// One end of a [`Pipe`]; the end (and its roles) are released on drop, which the peer sees
/// as end of stream / broken pipe.
#[must_use = "dropping a pipe end closes it"]
pub struct PipeEnd {
    rx: Option<Rx>,
    tx: Option<Tx>,
    end: End,
    index: usize,
    me: u64,
    prober: Prober,
    strategy: WaitStrategy,
    /// One role slot per ring, one operation at a time: `Send` but not `Sync`.
    _not_sync: PhantomData<Cell<()>>,
    // Keeps the memory alive; after the rings.
    home: Arc<Home>,
}

impl fmt::Debug for PipeEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipeEnd")
            .field("end", &self.end)
            .field("can_send", &self.tx.is_some())
            .field("can_recv", &self.rx.is_some())
            .finish()
    }
}

impl PipeEnd {
    fn attach(
        home: Arc<Home>,
        end: End,
        duplex: bool,
        cap: u64,
        max: usize,
        prober: Prober,
        strategy: WaitStrategy,
    ) -> Result<PipeEnd, AttachError> {
        let (len, ring_len) =
            geometry(duplex, cap, max).map_err(|b| AttachError::Geometry(b.to_string()))?;
        if home.len() < len {
            return Err(AttachError::Geometry(format!(
                "a pipe of {cap} messages of {max} bytes needs {len} bytes of body, it has {}",
                home.len()
            )));
        }
        let geo = ring_geometry(cap, max);
        let ring_at = |offset| {
            Ring::attach(Arc::clone(&home), offset, geo, prober.clone(), false)
                .map(Arc::new)
                .map_err(AttachError::Geometry)
        };
        let to_creator = ring_at(RING_OFFSET)?;
        let to_opener = if duplex {
            Some(ring_at(RING_OFFSET + ring_len)?)
        } else {
            None
        };
        // SAFETY: the body starts with a PipeHead written by init (len >= RING_OFFSET checked
        // above); it is atomics only.
        let head = unsafe { &*home.as_ptr().cast::<PipeHead>().as_ptr() };
        let me = prober.me();
        let slot = match end {
            End::Creator => 0,
            End::Opener => 1,
        };
        role::claim(&head.ends[slot..=slot], me, &prober).map_err(AttachError::EndTaken)?;
        let (rx, tx) = match end {
            End::Creator => (Some(to_creator), to_opener),
            End::Opener => (to_opener, Some(to_creator)),
        };
        // Holding the end, the ring roles are ours: take them (over a dead predecessor's). A
        // role taken before a later one fails is released by its endpoint's drop.
        let roles = (|| -> Result<(Option<Rx>, Option<Tx>), RoleError> {
            let rx = rx.map(|r| Rx::attach(&r, strategy)).transpose()?;
            let tx = tx.map(|t| Tx::attach(&t, strategy)).transpose()?;
            Ok((rx, tx))
        })();
        let (rx, tx) = match roles {
            Ok(ends) => ends,
            Err(e) => {
                role::release(&head.ends[slot..=slot], 0, me);
                return Err(AttachError::EndTaken(e));
            }
        };
        Ok(PipeEnd {
            rx,
            tx,
            end,
            index: slot,
            me,
            prober,
            strategy,
            _not_sync: PhantomData,
            home,
        })
    }

    /// Which end this is.
    pub fn end(&self) -> End {
        self.end
    }

    /// Whether this end can send (false for the creator of a one-way pipe).
    pub fn can_send(&self) -> bool {
        self.tx.is_some()
    }

    /// Whether this end can receive (false for the opener of a one-way pipe).
    pub fn can_recv(&self) -> bool {
        self.rx.is_some()
    }

    /// Longest message in bytes.
    pub fn max_message(&self) -> usize {
        self.rx.as_ref().map_or_else(
            || self.tx.as_ref().map_or(0, |t| t.ring().max_message()),
            |r| r.ring().max_message(),
        )
    }

    /// Sets how blocked sends and receives wait.
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
        if let Some(r) = &mut self.rx {
            r.set_wait_strategy(strategy);
        }
        if let Some(t) = &mut self.tx {
            t.set_wait_strategy(strategy);
        }
    }

    /// The segment, unless the pipe lives on the heap.
    pub fn segment(&self) -> Option<&Segment> {
        self.home.segment()
    }

    #[inline(always)]
    fn send_with<M: AsRef<[u8]>>(&self, msg: M, wait: Wait) -> Result<(), AnySendError<M>> {
        let Some(tx) = &self.tx else {
            return Err(AnySendError::NotWritable(msg));
        };
        // One load of the summary word: a receiver that dropped its end is seen at once. A
        // receiver that *died* is judged (an OS call) only in the sleep slices of a blocked
        // send, never on this path: a non-blocking send into a full pipe stays cheap.
        if role::peers(tx.ring().consumers(), &self.prober, false) == Peers::Gone {
            return Err(AnySendError::Disconnected(msg));
        }
        push_msg(tx, msg, wait).map_err(|e| match e {
            AnyPushError::TooLarge { msg, max } => AnySendError::TooLarge { msg, max },
            AnyPushError::Full(m) => AnySendError::Full(m),
            AnyPushError::Closed(m) | AnyPushError::Disconnected(m) => {
                AnySendError::Disconnected(m)
            }
            AnyPushError::Timeout(m) => AnySendError::Timeout(m),
            AnyPushError::Corrupt(m) => AnySendError::Corrupt(m),
        })
    }

    /// Sends a message, waiting while the pipe is full. The message is in shared memory when
    /// this returns `Ok`.
    ///
    /// # Errors
    ///
    /// [`SendError`]: `TooLarge`, `Disconnected` (the receiving end is gone: Python's
    /// `BrokenPipeError`), `NotWritable`, `Corrupt`; each hands the message back.
    pub fn send_bytes<M: AsRef<[u8]>>(&self, msg: M) -> Result<(), SendError<M>> {
        self.send_with(msg, Wait::For(None))
            .map_err(SendError::narrow)
    }

    /// Sends without waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError`]: as [`send_bytes`](Self::send_bytes), and `Full`.
    pub fn try_send_bytes<M: AsRef<[u8]>>(&self, msg: M) -> Result<(), TrySendError<M>> {
        self.send_with(msg, Wait::No).map_err(TrySendError::narrow)
    }

    /// Sends, waiting at most `timeout` while the pipe is full.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError`]: as [`send_bytes`](Self::send_bytes), and `Timeout`.
    pub fn send_bytes_timeout<M: AsRef<[u8]>>(
        &self,
        msg: M,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError<M>> {
        self.send_with(msg, Wait::For(Some(timeout)))
            .map_err(SendTimeoutError::narrow)
    }

    #[inline(always)]
    fn recv_with(&self, dest: &mut Dest<'_>, d: Wait) -> Result<usize, AnyRecvError> {
        let Some(rx) = &self.rx else {
            return Err(AnyRecvError::NotReadable);
        };
        pop_msg(rx, dest, d).map_err(AnyRecvError::from)
    }

    /// Receives a message, sleeping until one arrives.
    ///
    /// # Errors
    ///
    /// [`RecvError`]: `Disconnected` once the sender is gone and everything it sent was
    /// received (Python's `EOFError`); `NotReadable`, `Corrupt`.
    pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_with(&mut Dest::Vec(&mut v), Wait::For(None))
            .map(|_| v)
            .map_err(RecvError::narrow)
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError`]: as [`recv_bytes`](Self::recv_bytes), and `Timeout`.
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        let mut v = Vec::new();
        self.recv_with(&mut Dest::Vec(&mut v), Wait::For(Some(timeout)))
            .map(|_| v)
            .map_err(RecvTimeoutError::narrow)
    }

    /// Receives without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError`]: as [`recv_bytes`](Self::recv_bytes), and `Empty`.
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, TryRecvError> {
        let mut v = Vec::new();
        self.recv_with(&mut Dest::Vec(&mut v), Wait::No)
            .map(|_| v)
            .map_err(TryRecvError::narrow)
    }

    /// Receives a message into `buf`, sleeping until one arrives; returns its length (Python's
    /// `recv_bytes_into`).
    ///
    /// # Errors
    ///
    /// [`RecvIntoError`]: as [`recv_bytes`](Self::recv_bytes), and `TooSmall { needed }` (the
    /// message stays in the pipe).
    pub fn recv_into(&self, buf: &mut [u8]) -> Result<usize, RecvIntoError> {
        self.recv_with(&mut Dest::Slice(buf), Wait::For(None))
            .map_err(RecvIntoError::narrow)
    }

    /// Receives into `buf`, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvIntoTimeoutError`]: as [`recv_into`](Self::recv_into), and `Timeout`.
    pub fn recv_into_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, RecvIntoTimeoutError> {
        self.recv_with(&mut Dest::Slice(buf), Wait::For(Some(timeout)))
            .map_err(RecvIntoTimeoutError::narrow)
    }

    /// Receives into `buf` without waiting; returns the message's length.
    ///
    /// # Errors
    ///
    /// [`TryRecvIntoError`]: as [`recv_into`](Self::recv_into), and `Empty`.
    pub fn try_recv_into(&self, buf: &mut [u8]) -> Result<usize, TryRecvIntoError> {
        self.recv_with(&mut Dest::Slice(buf), Wait::No)
            .map_err(TryRecvIntoError::narrow)
    }

    /// Whether a receive would not block: a message is waiting, or the stream has ended.
    /// Waits up to `timeout` (`None`: without limit; `Some(Duration::ZERO)`: not at all).
    /// `false` for an end that cannot receive.
    pub fn poll(&self, timeout: Option<Duration>) -> bool {
        let Some(rx) = &self.rx else { return false };
        !matches!(rx.wait_readable(timeout), Err(Fail::Timeout))
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        // The ring roles go first (the endpoints' drops), then the end.
        self.rx = None;
        self.tx = None;
        // SAFETY: the head was checked present in attach and the home is still alive.
        let head = unsafe { &*self.home.as_ptr().cast::<PipeHead>().as_ptr() };
        role::release(&head.ends[self.index..=self.index], 0, self.me);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn duplex_both_ways_and_eof() {
        let (a, b) = Pipe::heap_pair(true, 2, 8).unwrap();
        a.send_bytes(b"to b").unwrap();
        b.send_bytes(b"to a").unwrap();
        assert_eq!(b.recv_bytes().unwrap(), b"to b");
        assert_eq!(a.recv_bytes().unwrap(), b"to a");
        assert!(!a.poll(Some(Duration::ZERO)));
        b.send_bytes(b"last").unwrap();
        drop(b);
        assert!(a.poll(Some(Duration::ZERO)));
        assert_eq!(a.recv_bytes().unwrap(), b"last");
        assert!(a.poll(None));
        assert_eq!(a.recv_bytes(), Err(RecvError::Disconnected));
        assert!(matches!(
            a.send_bytes(b"x"),
            Err(SendError::Disconnected(_))
        ));
    }

    /// The creator's first receive, before anyone opened the other end, waits (with its
    /// timeout): end of stream needs a sender that came and went.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn first_recv_before_the_opener_waits() {
        let name = SegmentName::unique();
        let a = Pipe::builder(&name)
            .capacity(2)
            .max_message(8)
            .create()
            .unwrap();
        assert_eq!(a.try_recv_bytes(), Err(TryRecvError::Empty));
        assert_eq!(
            a.recv_bytes_timeout(Duration::from_millis(20)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(!a.poll(Some(Duration::from_millis(5))));
        let b = Pipe::builder(&name).open().unwrap();
        b.send_bytes(b"hi").unwrap();
        drop(b);
        assert_eq!(a.recv_bytes().unwrap(), b"hi");
        assert_eq!(a.recv_bytes(), Err(RecvError::Disconnected));
    }

    /// Regression (issue 11): `try_send_bytes` on a full pipe asked the OS whether the
    /// receiver was alive on every attempt (and every 64th send): the p99 spikes. The
    /// receiver's liveness is now asked only in the sleep slices of a blocked send.
    #[test]
    fn full_pipe_try_send_never_probes_liveness() {
        use std::sync::atomic::AtomicUsize;
        let (len, ring_len) = geometry(true, 1, 8).unwrap();
        let home = Home::heap(len);
        // SAFETY: a fresh, zeroed, 128-aligned block of `len` bytes, used by nobody else yet.
        unsafe { init(&home, true, 1, 8, ring_len) };
        let home = Arc::new(home);
        let probes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&probes);
        let prober = Prober::new(crate::role::HEAP_WORD, move |_: u64| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            shm_core::Liveness::Alive
        });
        let st = WaitStrategy::default();
        let Ok(_a) = PipeEnd::attach(home.clone(), End::Creator, true, 1, 8, Prober::heap(), st)
        else {
            panic!("attach the creator's end")
        };
        let Ok(mut b) = PipeEnd::attach(home, End::Opener, true, 1, 8, prober, st) else {
            panic!("attach the opener's end")
        };
        let before = probes.load(std::sync::atomic::Ordering::Relaxed);
        b.send_bytes(b"fill").unwrap();
        for _ in 0..1000 {
            assert!(matches!(b.try_send_bytes(b"x"), Err(TrySendError::Full(_))));
        }
        for _ in 0..100 {
            b.send_bytes_timeout(b"x", Duration::ZERO).unwrap_err();
        }
        assert_eq!(
            probes.load(std::sync::atomic::Ordering::Relaxed),
            before,
            "a send that did not sleep asked about the receiver's liveness"
        );
        // A send that waits through sleep slices does ask (that is where a dead receiver is
        // noticed).
        b.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(1)));
        assert!(matches!(
            b.send_bytes_timeout(b"x", Duration::from_millis(30)),
            Err(SendTimeoutError::Timeout(_))
        ));
        assert!(probes.load(std::sync::atomic::Ordering::Relaxed) > before);
    }

    /// `open_or_create` gives the creator's end to whoever creates and the opener's to the
    /// next; a third process (here the same one, whose ends are held) gets the end-taken
    /// error, an `OpenError` that [`end_taken`] recognises and that names the holder.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn open_or_create_takes_the_end_that_is_due_and_a_held_end_is_an_open_error() {
        let name = SegmentName::unique();
        let a = Pipe::builder(&name)
            .duplex(false)
            .capacity(2)
            .max_message(8)
            .open_or_create()
            .unwrap();
        assert_eq!(a.end(), End::Creator);
        assert!(a.can_recv() && !a.can_send());
        // A capacity stated to `open_or_create` is checked, as the queues' is.
        assert!(matches!(
            Pipe::builder(&name).capacity(99).open_or_create(),
            Err(OpenError::WrongCount {
                expected: 99,
                found: 2
            })
        ));
        // The opener adopts the direction and maximum message from the header.
        let b = Pipe::builder(&name)
            .duplex(true)
            .capacity(2)
            .max_message(1)
            .open_or_create()
            .unwrap();
        assert_eq!(b.end(), End::Opener);
        assert!(b.can_send() && !b.can_recv());
        assert_eq!(b.max_message(), 8);
        b.send_bytes(b"12345678").unwrap();
        assert_eq!(a.recv_bytes().unwrap(), b"12345678");

        for third in [
            Pipe::builder(&name).open(),
            Pipe::builder(&name).capacity(2).open_or_create(),
        ] {
            let err = third.unwrap_err();
            let Some(held) = end_taken(&err) else {
                panic!("not the end-taken error: {err:?}")
            };
            let RoleError::Busy { holder } = held;
            assert_eq!(holder, shm_core::ProcessId::current());
            assert!(err.to_string().contains("opener's end"), "{err}");
            assert!(matches!(err, OpenError::Busy { .. }), "{err:?}");
        }
        assert_eq!(end_taken(&OpenError::NotFound { name: "x".into() }), None);
        // The end is free again once its holder dropped it.
        drop(b);
        let c = Pipe::builder(&name).open().unwrap();
        assert_eq!(c.end(), End::Opener);
    }

    /// A geometry that cannot be created is `InvalidParameter` from `open_or_create`.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn open_or_create_rejects_an_impossible_geometry() {
        let name = SegmentName::unique();
        let err = Pipe::builder(&name)
            .capacity(0)
            .open_or_create()
            .unwrap_err();
        assert!(
            matches!(
                err,
                OpenError::InvalidParameter {
                    parameter: "capacity",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// Every error is `'static + Send + Sync` (for its message type), `Display` and `Error`,
    /// so `?` moves it into a boxed error; send errors hand the message back.
    #[test]
    fn errors_box_and_hand_the_message_back() {
        fn is_error<E: Error + Send + Sync + 'static>() {}
        is_error::<TrySendError<Vec<u8>>>();
        is_error::<SendError<Vec<u8>>>();
        is_error::<SendTimeoutError<&'static [u8]>>();
        is_error::<TryRecvError>();
        is_error::<RecvError>();
        is_error::<RecvTimeoutError>();
        is_error::<TryRecvIntoError>();
        is_error::<RecvIntoError>();
        is_error::<RecvIntoTimeoutError>();
        let (a, b) = Pipe::heap_pair(true, 1, 4).unwrap();
        b.send_bytes(vec![1]).unwrap();
        let full = b.try_send_bytes(vec![2, 3]).unwrap_err();
        assert_eq!(full.to_string(), "the pipe is full");
        assert_eq!(full.into_inner(), vec![2, 3]);
        let big = b.send_bytes(vec![0; 5]).unwrap_err();
        assert!(matches!(&big, SendError::TooLarge { max: 4, .. }));
        assert_eq!(big.into_inner().len(), 5);
        let boxed = || -> Result<(), Box<dyn Error + Send + Sync>> {
            b.try_send_bytes(b"x")?;
            Ok(())
        };
        assert!(boxed().unwrap_err().to_string().contains("full"));
        drop(a);
        let gone = b.try_send_bytes(b"y").unwrap_err();
        assert!(matches!(gone, TrySendError::Disconnected(m) if m == b"y"));
    }

    #[test]
    fn try_recv_into_does_not_wait() {
        let (a, b) = Pipe::heap_pair(true, 2, 8).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(a.try_recv_into(&mut buf), Err(TryRecvIntoError::Empty));
        b.send_bytes(b"abc").unwrap();
        let mut small = [0u8; 2];
        assert_eq!(
            a.try_recv_into(&mut small),
            Err(TryRecvIntoError::TooSmall { needed: 3 })
        );
        assert_eq!(a.try_recv_into(&mut buf), Ok(3));
        assert_eq!(&buf[..3], b"abc");
        drop(b);
        assert_eq!(
            a.try_recv_into(&mut buf),
            Err(TryRecvIntoError::Disconnected)
        );
    }

    #[test]
    fn one_way_directions() {
        let (a, b) = Pipe::heap_pair(false, 2, 8).unwrap();
        assert!(a.can_recv() && !a.can_send());
        assert!(b.can_send() && !b.can_recv());
        assert!(matches!(a.send_bytes(b"x"), Err(SendError::NotWritable(_))));
        assert_eq!(b.recv_bytes(), Err(RecvError::NotReadable));
        assert!(!b.poll(None));
        b.send_bytes(b"hi").unwrap();
        assert_eq!(a.recv_bytes().unwrap(), b"hi");
    }

    #[test]
    fn small_buffer_too_large_and_full() {
        let (a, b) = Pipe::heap_pair(true, 1, 8).unwrap();
        assert!(matches!(
            b.send_bytes([0u8; 9]),
            Err(SendError::TooLarge { max: 8, .. })
        ));
        b.send_bytes(b"12345").unwrap();
        assert!(matches!(b.try_send_bytes(b"6"), Err(TrySendError::Full(_))));
        assert!(matches!(
            b.send_bytes_timeout(b"6", Duration::from_millis(1)),
            Err(SendTimeoutError::Timeout(_))
        ));
        let mut small = [0u8; 2];
        assert_eq!(
            a.recv_into(&mut small),
            Err(RecvIntoError::TooSmall { needed: 5 })
        );
        let mut buf = [0u8; 8];
        assert_eq!(a.recv_into(&mut buf), Ok(5));
        assert_eq!(a.try_recv_bytes(), Err(TryRecvError::Empty));
        assert_eq!(
            a.recv_bytes_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
    }
}
