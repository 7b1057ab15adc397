//! The one ring under every queue: a control block and a slot array, written once, with two
//! protocols over it and two kinds of slot payload.
//!
//! Every queue type of this crate ([`SpscQueue`](crate::SpscQueue),
//! [`MpmcQueue`](crate::MpmcQueue), [`ByteQueue`](crate::bytes::ByteQueue),
//! [`JoinableQueue`](crate::joinable::JoinableQueue) and each direction of a
//! [`Pipe`](crate::pipe::Pipe)) is a `Ring` with a `Geometry` (protocol, capacity, payload),
//! driven through one family of endpoints: a producer end (`Tx`) and a consumer end (`Rx`),
//! one generic type over the side. None of them reaches into another's memory.
//!
//! # Protocols ([`Flavor`])
//!
//! - **SPSC** (module `spsc`): Lamport's ring. The producer owns `tail`, the consumer owns
//!   `head`, each on its own 128-byte line, and each side caches the other's index (rtrb's
//!   technique), so most operations touch no line the other side writes. Batches and chunks
//!   reserve or release many slots with one index store.
//! - **MPMC** (module `mpmc`): Vyukov's bounded queue (crossbeam's `ArrayQueue`): every slot
//!   starts with a sequence *stamp*; producers take a position with a CAS on `tail`, consumers
//!   with a CAS on `head`, and the stamp tells whose turn a slot is:
//!
//!   | stamp of slot `pos % cap` | meaning |
//!   |---|---|
//!   | `2 * pos` | free for the producer of position `pos` |
//!   | `2 * pos + 1` | holds the item of position `pos` |
//!   | `2 * (pos + cap)` | consumed; free for position `pos + cap` |
//!
//! # Payloads
//!
//! - a fixed element (`T: shm_core::Element`, typecode or `record!`), one per slot;
//! - a byte message of `0..=max` bytes, a `u32` length then the bytes, one per slot.
//!
//! # Slot layout
//!
//! | flavor | slot |
//! |---|---|
//! | SPSC, fixed | the element (slots are contiguous `T`s: chunks are plain slices) |
//! | SPSC, bytes | `len: u32`, 4 bytes pad, `max` bytes; 8-aligned |
//! | MPMC, fixed | `stamp: u64`, the element at its alignment; a multiple of 8 |
//! | MPMC, bytes | `stamp: u64`, `len: u32`, 4 bytes pad, `max` bytes; a multiple of 64 |
//!
//! # Control block (`#[repr(C)]`, offsets pinned at compile time)
//!
//! | offset | field |
//! |---|---|
//! | 0 | `tail: u64`, next position to write |
//! | 128 | `head: u64`, next position to read |
//! | 256 | `state: u32` (closed, poisoned), the `not_empty` and `not_full` eventcounts, `skipped: u64` |
//! | 384 | [`MAX_ROLES`] producer [`RoleSlot`]s, then as many consumer ones |
//! | 384 + 256 * [`MAX_ROLES`] | the slots |
//!
//! An SPSC ring uses the first role slot of each side only.
//!
//! # One rule for what is read from shared memory
//!
//! Positions are free-running `u64`s; a position's slot is `pos % cap` (a mask when `cap` is a
//! power of two), so no value read from the segment can make an access outside the ring. Then:
//!
//! - an index read from the other side must be within `cap` of our own (`tail - head`,
//!   wrapping, in `0..=cap`);
//! - a stamp must be one a healthy ring can hold at the position looked at (ahead of an index
//!   that moved meanwhile is fine, behind by exactly one lap is fine);
//! - a length must be at most the ring's maximum.
//!
//! Anything else *poisons* the ring (a bit in the shared state word): from then on every push
//! and pop, in every process, fails at once with `Corrupt`. What is lost: every item still in
//! the ring, which can no longer be told from garbage; make a new queue. A poisoned ring never
//! delivers garbage and never wedges.
//!
//! # Processes that die mid-operation: one recovery protocol
//!
//! Roles are claimed in the role slots by process identity and taken over from a holder that is
//! [`Dead`](shm_core::Liveness::Dead) (never from one whose liveness is `Unknown`).
//!
//! - SPSC: a producer or consumer writes its index only after its slot work is done, so a
//!   process killed anywhere leaves either the old index (its half-done work is invisible) or
//!   the new one (its work is complete). The next holder of the role starts from the index in
//!   the segment.
//! - MPMC: before it takes a position, a producer writes `pos + 1` into the `pending` word of
//!   its role slot, and clears it after it published the stamp (consumers likewise). A
//!   consumer blocked on a position that a producer took (`tail` moved past it) but never
//!   published checks, once per sleep slice of its wait strategy (and when its deadline passes,
//!   and on every 64th non-blocking poll that finds it so), whether any live producer still
//!   announces that position; if none does, the producer died, and the consumer skips the
//!   position and every dead one after it (counted in `skipped`). Announcements are cleared
//!   lazily: a published position is never stuck, so a stale one misleads nobody.
//!   Symmetrically, a producer that finds the slot it needs taken by a consumer that died
//!   before freeing it frees it (the item died with its consumer).
//!
//! # Waiting
//!
//! A push that finds the ring full and a pop that finds it empty wait through
//! [`EventCount::wait_until`](shm_core::EventCount::wait_until), the workspace's one wait loop;
//! a push or pop wakes the other side with `notify_one`, which costs a compiler fence and one
//! load of a line nobody writes while nobody sleeps. A *busy-poll-only* ring (a creation-time
//! flag) skips even that.

pub(crate) mod endpoint;
mod mpmc;
mod spsc;

pub(crate) use endpoint::{Dest, Rx, Tx, Wait};

use crate::error::{corrupt_geometry, BadGeometry};
use crate::role::{self, Prober, RoleSlot};
use shm_core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shm_core::{EventCount, Home, ObjectKind, OpenError, Segment};
use std::fmt;
use std::ptr::{self, NonNull};
use std::sync::Arc;

/// Role slots of each side in an MPMC ring (producers and consumers alike).
pub const MAX_ROLES: usize = 32;

/// Largest `max_message` a byte ring accepts (lengths are stored as `u32`, and `u32::MAX`
/// marks a cancelled loan).
pub const MAX_MESSAGE_LIMIT: usize = u32::MAX as usize - 64;

/// The length word of a message whose loan was dropped uncommitted (MPMC only): consumers
/// pass over it.
pub(crate) const CANCELLED: u32 = u32::MAX;

/// A value alone on a 128-byte line: the fixed pad type of every cross-process layout (not
/// crossbeam's `CachePadded`, whose size depends on the target).
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub struct CacheLine<T>(pub T);

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<CacheLine<AtomicU64>>() == 128);

/// State bit: the queue was closed.
pub(crate) const CLOSED: u32 = 1;
/// State bit: the queue is poisoned.
pub(crate) const POISONED: u32 = 2;

/// The state word, the two eventcounts and the count of skipped positions.
///
/// | `state` bits | meaning |
/// |---|---|
/// | 0 ([`CLOSED`]) | closed: pushes fail, pops drain what is left |
/// | any other | poisoned: every operation fails with `Corrupt` |
#[repr(C)]
pub(crate) struct SyncBlock {
    state: AtomicU32,
    _reserved: AtomicU32,
    /// Notified after a push (consumers wait on it).
    pub(crate) not_empty: EventCount,
    /// Notified after a pop (producers wait on it).
    pub(crate) not_full: EventCount,
    /// Positions passed over because their producer died before publishing them, or because
    /// their loan was cancelled (MPMC only).
    skipped: AtomicU64,
}

/// The control block at the start of every ring.
#[repr(C)]
pub(crate) struct Ctl {
    tail: CacheLine<AtomicU64>,
    head: CacheLine<AtomicU64>,
    sync: CacheLine<SyncBlock>,
    producers: [RoleSlot; MAX_ROLES],
    consumers: [RoleSlot; MAX_ROLES],
}

/// Bytes of the control block (a multiple of 128).
pub(crate) const CTL_LEN: usize = std::mem::size_of::<Ctl>();

#[cfg(not(loom))]
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(Ctl, tail) == 0);
    assert!(offset_of!(Ctl, head) == 128);
    assert!(offset_of!(Ctl, sync) == 256);
    assert!(offset_of!(Ctl, producers) == 384);
    assert!(offset_of!(Ctl, consumers) == 384 + 128 * MAX_ROLES);
    assert!(CTL_LEN == 384 + 256 * MAX_ROLES);
    assert!(offset_of!(SyncBlock, skipped) == 24);
};

impl Ctl {
    fn new() -> Ctl {
        Ctl {
            tail: CacheLine(AtomicU64::new(0)),
            head: CacheLine(AtomicU64::new(0)),
            sync: CacheLine(SyncBlock {
                state: AtomicU32::new(0),
                _reserved: AtomicU32::new(0),
                not_empty: EventCount::new(),
                not_full: EventCount::new(),
                skipped: AtomicU64::new(0),
            }),
            producers: std::array::from_fn(|_| RoleSlot::new()),
            consumers: std::array::from_fn(|_| RoleSlot::new()),
        }
    }
}

/// Single or multiple producers and consumers: the protocol of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// One producer and one consumer (Lamport's ring with cached indices).
    Spsc,
    /// Up to [`MAX_ROLES`] producers and consumers (per-slot stamps).
    Mpmc,
}

impl Flavor {
    /// Role slots per side.
    pub(crate) fn roles(self) -> usize {
        match self {
            Flavor::Spsc => 1,
            Flavor::Mpmc => MAX_ROLES,
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A ring protocol, as a type: [`Spsc`] or [`Mpmc`] (the `P` of
/// [`Queue<T, P>`](crate::typed::Queue) and its endpoints). Sealed.
pub trait Protocol: sealed::Sealed + Send + Sync + 'static {
    /// The protocol's [`Flavor`].
    const FLAVOR: Flavor;
    /// The segment kind of an element queue of this protocol.
    const KIND: ObjectKind;
    /// Names for `Debug`.
    #[doc(hidden)]
    const QUEUE: &'static str;
    #[doc(hidden)]
    const PRODUCER: &'static str;
    #[doc(hidden)]
    const CONSUMER: &'static str;
}

/// The SPSC protocol, as a type: one producer and one consumer (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spsc {}

/// The MPMC protocol, as a type: up to [`MAX_ROLES`] producers and consumers (see the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mpmc {}

impl sealed::Sealed for Spsc {}
impl sealed::Sealed for Mpmc {}

impl Protocol for Spsc {
    const FLAVOR: Flavor = Flavor::Spsc;
    const KIND: ObjectKind = ObjectKind::SpscQueue;
    const QUEUE: &'static str = "SpscQueue";
    const PRODUCER: &'static str = "spsc::Producer";
    const CONSUMER: &'static str = "spsc::Consumer";
}

impl Protocol for Mpmc {
    const FLAVOR: Flavor = Flavor::Mpmc;
    const KIND: ObjectKind = ObjectKind::MpmcQueue;
    const QUEUE: &'static str = "MpmcQueue";
    const PRODUCER: &'static str = "mpmc::Producer";
    const CONSUMER: &'static str = "mpmc::Consumer";
}

/// What one slot carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payload {
    /// One fixed-size element of `size` bytes and alignment `align` (at most 128).
    Fixed { size: usize, align: usize },
    /// One byte message of at most `max` bytes.
    Bytes { max: usize },
}

/// Byte-message slot header after the stamp: `len: u32` and a pad.
const LEN_WORD: usize = 8;

/// Everything that decides a ring's memory: protocol, capacity and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) flavor: Flavor,
    pub(crate) cap: u64,
    pub(crate) payload: Payload,
}

/// Derived slot geometry: bytes per slot and where the payload starts in one.
#[derive(Debug, Clone, Copy)]
struct Slots {
    stride: usize,
    /// Offset of the payload (for bytes: of the length word) in a slot.
    data: usize,
}

impl Geometry {
    /// A ring of `cap` elements of `T`.
    pub(crate) fn fixed<T>(flavor: Flavor, cap: u64) -> Geometry {
        Geometry {
            flavor,
            cap,
            payload: Payload::Fixed {
                size: std::mem::size_of::<T>(),
                align: std::mem::align_of::<T>(),
            },
        }
    }

    /// A ring of `cap` messages of at most `max` bytes.
    pub(crate) fn bytes(flavor: Flavor, cap: u64, max: usize) -> Geometry {
        Geometry {
            flavor,
            cap,
            payload: Payload::Bytes { max },
        }
    }

    fn slots(&self) -> Option<Slots> {
        let stamp: usize = match self.flavor {
            Flavor::Spsc => 0,
            Flavor::Mpmc => 8,
        };
        match self.payload {
            Payload::Fixed { size, align } => {
                if align == 0 || !align.is_power_of_two() || align > 128 {
                    return None;
                }
                let data = stamp.checked_next_multiple_of(align)?;
                let stride = match self.flavor {
                    Flavor::Spsc => size,
                    Flavor::Mpmc => (data + size).checked_next_multiple_of(align.max(8))?,
                };
                (stride > 0).then_some(Slots { stride, data })
            }
            Payload::Bytes { max } => {
                if max > MAX_MESSAGE_LIMIT {
                    return None;
                }
                let unit = match self.flavor {
                    Flavor::Spsc => 8,
                    // Producers on different slots do not share a cache line.
                    Flavor::Mpmc => 64,
                };
                let stride = (stamp + LEN_WORD)
                    .checked_add(max)?
                    .checked_next_multiple_of(unit)?;
                Some(Slots {
                    stride,
                    data: stamp,
                })
            }
        }
    }

    /// Bytes of memory the ring needs (a multiple of 128), or why there is no such ring.
    pub(crate) fn body_len(&self) -> Result<usize, BadGeometry> {
        if self.cap == 0 {
            return Err(BadGeometry::ZeroCapacity);
        }
        if let Payload::Bytes { max } = self.payload {
            if max > MAX_MESSAGE_LIMIT {
                return Err(BadGeometry::MaxMessage {
                    max,
                    limit: MAX_MESSAGE_LIMIT,
                });
            }
        }
        let too_large = BadGeometry::TooLarge { capacity: self.cap };
        let slots = self.slots().ok_or(too_large)?;
        usize::try_from(self.cap)
            .ok()
            .and_then(|c| c.checked_mul(slots.stride))
            .and_then(|b| b.checked_add(CTL_LEN))
            .and_then(|b| b.checked_next_multiple_of(128))
            .filter(|&b| b <= isize::MAX as usize / 2)
            .ok_or(too_large)
    }

    /// The geometry of an opened segment, whose header records the capacity as its count: it
    /// must fit the body from `offset` on.
    pub(crate) fn opened(
        seg: &Segment,
        offset: usize,
        make: impl FnOnce(u64) -> Geometry,
    ) -> Result<Geometry, OpenError> {
        let cap = seg.header().count();
        let geo = make(cap);
        let need = geo.body_len().map_err(|b| {
            corrupt_geometry(
                "capacity",
                format!("the header records an impossible ring: {b}"),
            )
        })?;
        let have = seg.body_len().saturating_sub(offset);
        if have < need {
            return Err(corrupt_geometry(
                "body",
                format!(
                    "a ring of capacity {cap} needs {need} bytes of body, the segment has {have}"
                ),
            ));
        }
        Ok(geo)
    }
}

/// An impossible index, stamp or length was read; the ring is now poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// A ring over memory it is handed (a segment body or a heap block, at some offset), with the
/// validated geometry. Process-local: pointers, the geometry, and who we are.
pub(crate) struct Ring {
    ctl: NonNull<Ctl>,
    slots: NonNull<u8>,
    geo: Geometry,
    stride: usize,
    data: usize,
    /// `cap - 1` when the capacity is a power of two.
    mask: Option<u64>,
    /// The byte payload's maximum (0 for fixed elements).
    max: usize,
    prober: Prober,
    spin_only: bool,
    /// Keeps the memory alive (shared by the rings of one pipe); declared last.
    home: Arc<Home>,
}

// SAFETY: the ring only hands out shared references to atomics in memory that `home` keeps
// alive; payload bytes are written only by the producer that owns the slot and read only by the
// consumer that owns it (the protocols), and every pointer stays inside the home.
unsafe impl Send for Ring {}
// SAFETY: as above: shared state is atomics, payload access is serialised by the protocols.
unsafe impl Sync for Ring {}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("flavor", &self.geo.flavor)
            .field("capacity", &self.geo.cap)
            .field("payload", &self.geo.payload)
            .field("busy_poll_only", &self.spin_only)
            .finish()
    }
}

impl Ring {
    /// Writes a fresh ring of geometry `geo` at `base`.
    ///
    /// # Safety
    ///
    /// `base` is 128-aligned, valid for writes of `geo.body_len()` bytes (which is `Ok`), and
    /// nobody else uses that memory during the call.
    pub(crate) unsafe fn init(base: NonNull<u8>, geo: &Geometry) {
        // SAFETY: the caller guarantees room and alignment for the control block.
        unsafe { base.cast::<Ctl>().as_ptr().write(Ctl::new()) };
        let Some(s) = geo.slots() else { return };
        #[cfg(loom)]
        if let Payload::Bytes { .. } = geo.payload {
            for i in 0..geo.cap as usize {
                // SAFETY: (loom only) a byte slot's payload starts with its 8-byte length
                // word, inside the body; a loom atomic must be constructed, not zeroed.
                unsafe {
                    let p = base.as_ptr().add(CTL_LEN + i * s.stride + s.data);
                    p.cast::<AtomicU32>().write(AtomicU32::new(0));
                }
            }
        }
        if geo.flavor == Flavor::Mpmc {
            for i in 0..geo.cap {
                // SAFETY: slot i starts at CTL_LEN + i * stride < body_len; 8-aligned (the
                // control block is a multiple of 128, the MPMC stride a multiple of 8).
                let p = unsafe { base.as_ptr().add(CTL_LEN + i as usize * s.stride) };
                // SAFETY: see above; the stamp is the slot's first 8 bytes.
                unsafe {
                    p.cast::<AtomicU64>()
                        .write(AtomicU64::new(mpmc::free_stamp(i)))
                };
            }
        }
    }

    /// A ring over the memory of `home` from `offset` on, written by [`init`](Self::init)
    /// with `geo` (here or in another process; a corrupt one is fine: nothing read from it is
    /// trusted).
    ///
    /// # Errors
    ///
    /// What is wrong, if the geometry is impossible or does not fit the memory.
    pub(crate) fn attach(
        home: Arc<Home>,
        offset: usize,
        geo: Geometry,
        prober: Prober,
        spin_only: bool,
    ) -> Result<Ring, String> {
        let need = geo.body_len().map_err(|b| b.to_string())?;
        let slots = geo
            .slots()
            .ok_or_else(|| format!("no ring has the geometry {geo:?}"))?;
        let avail = home.len().saturating_sub(offset);
        if need > avail || !offset.is_multiple_of(128) {
            return Err(format!(
                "a ring of {} slots of {} bytes needs {need} bytes at offset {offset}, the \
                 memory has {}",
                geo.cap,
                slots.stride,
                home.len()
            ));
        }
        // SAFETY: offset + need <= home.len(): the control block and the slots lie inside.
        let base = unsafe { home.as_ptr().add(offset) };
        // SAFETY: as above.
        let first = unsafe { base.add(CTL_LEN) };
        Ok(Ring {
            ctl: base.cast(),
            slots: first,
            stride: slots.stride,
            data: slots.data,
            mask: geo.cap.is_power_of_two().then(|| geo.cap - 1),
            max: match geo.payload {
                Payload::Bytes { max } => max,
                Payload::Fixed { .. } => 0,
            },
            geo,
            prober,
            spin_only,
            home,
        })
    }

    /// A fresh ring on the heap, for use inside one process (threads; loom and miri).
    pub(crate) fn heap(geo: Geometry, spin_only: bool) -> Result<Ring, BadGeometry> {
        Ring::heap_probed(geo, spin_only, Prober::heap())
    }

    /// [`heap`](Self::heap) with liveness answers from `prober` (tests inject deaths).
    pub(crate) fn heap_probed(
        geo: Geometry,
        spin_only: bool,
        prober: Prober,
    ) -> Result<Ring, BadGeometry> {
        let len = geo.body_len()?;
        let home = Home::heap(len);
        // SAFETY: a fresh, zeroed, 128-aligned block of `len` bytes.
        unsafe { Ring::init(home.as_ptr(), &geo) };
        Ring::attach(Arc::new(home), 0, geo, prober, spin_only)
            .map_err(|_| BadGeometry::TooLarge { capacity: geo.cap })
    }

    /// The home's segment, if the ring lives in one.
    pub(crate) fn segment(&self) -> Option<&Segment> {
        self.home.segment()
    }

    #[inline(always)]
    pub(crate) fn ctl(&self) -> &Ctl {
        // SAFETY: `attach` checked that the memory holds a control block; it is atomics only,
        // and `home` keeps it alive.
        unsafe { self.ctl.as_ref() }
    }

    #[inline(always)]
    pub(crate) fn sync(&self) -> &SyncBlock {
        &self.ctl().sync.0
    }

    #[inline(always)]
    pub(crate) fn flavor(&self) -> Flavor {
        self.geo.flavor
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> u64 {
        self.geo.cap
    }

    /// The byte payload's maximum message length (0 for fixed elements).
    pub(crate) fn max_message(&self) -> usize {
        self.max
    }

    pub(crate) fn is_busy_poll_only(&self) -> bool {
        self.spin_only
    }

    pub(crate) fn prober(&self) -> &Prober {
        &self.prober
    }

    /// The slot index of position `pos` (`< cap`).
    #[inline(always)]
    pub(crate) fn index_of(&self, pos: u64) -> usize {
        (match self.mask {
            Some(m) => pos & m,
            None => pos % self.geo.cap,
        }) as usize
    }

    /// The start of the slot of position `pos`.
    #[inline(always)]
    fn slot(&self, pos: u64) -> *mut u8 {
        let i = self.index_of(pos);
        // SAFETY: i < cap, and `attach` checked the memory holds cap slots of `stride` bytes.
        unsafe { self.slots.as_ptr().add(i * self.stride) }
    }

    /// The payload of the slot of position `pos` (for bytes: its length word, then at
    /// [`msg_data`](Self::msg_data) the bytes). Aligned for the payload.
    #[inline(always)]
    pub(crate) fn payload(&self, pos: u64) -> NonNull<u8> {
        // SAFETY: `data` is inside the slot (Geometry::slots), so the pointer is in bounds and
        // non-null.
        unsafe { NonNull::new_unchecked(self.slot(pos).add(self.data)) }
    }

    /// The stamp of the slot of position `pos` (MPMC rings only).
    #[inline]
    fn stamp(&self, pos: u64) -> &AtomicU64 {
        debug_assert_eq!(self.geo.flavor, Flavor::Mpmc);
        // SAFETY: an MPMC slot starts with its stamp, written by `init`, 8-aligned; atomics.
        unsafe { &*self.slot(pos).cast::<AtomicU64>() }
    }

    /// The length word of the byte message in the slot of `pos` (byte rings only).
    #[inline]
    pub(crate) fn msg_len(&self, pos: u64) -> &AtomicU32 {
        debug_assert!(matches!(self.geo.payload, Payload::Bytes { .. }));
        // SAFETY: a byte slot's payload starts with a 4-aligned u32 (the slot and `data` are
        // multiples of 8); any bit pattern is a valid AtomicU32, so even a slot never written
        // through this type (zeroed memory) is fine to view so.
        unsafe { &*self.payload(pos).as_ptr().cast::<AtomicU32>() }
    }

    /// The message bytes (`max` of them) of the slot of `pos` (byte rings only).
    #[inline]
    pub(crate) fn msg_data(&self, pos: u64) -> *mut u8 {
        // SAFETY: the bytes follow the length word within the stride.
        unsafe { self.payload(pos).as_ptr().add(LEN_WORD) }
    }

    /// Checks a message length read from the segment (the one rule for lengths).
    #[inline]
    pub(crate) fn check_len(&self, len: u32) -> Result<usize, Corrupt> {
        let len = len as usize;
        if len > self.max {
            self.poison();
            return Err(Corrupt);
        }
        Ok(len)
    }

    /// The state word: 0 on the fast path (open, healthy).
    #[inline(always)]
    pub(crate) fn state(&self) -> u32 {
        self.sync().state.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state() & CLOSED != 0
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.state() & !CLOSED != 0
    }

    /// Closes the ring and wakes every waiter.
    pub(crate) fn close(&self) {
        self.sync().state.fetch_or(CLOSED, Ordering::AcqRel);
        self.wake_all();
    }

    /// Poisons the ring (an impossible index, stamp or length was read) and wakes every
    /// waiter, who then fails with `Corrupt`. Irreversible.
    #[cold]
    pub(crate) fn poison(&self) {
        self.sync().state.fetch_or(POISONED, Ordering::AcqRel);
        self.wake_all();
    }

    pub(crate) fn wake_all(&self) {
        let s = self.sync();
        s.not_empty.notify_all();
        s.not_full.notify_all();
    }

    /// Positions passed over (MPMC: dead producers, cancelled loans).
    pub(crate) fn skipped(&self) -> u64 {
        self.sync().skipped.load(Ordering::Acquire)
    }

    /// `(head, tail)` as read now (`head` first).
    pub(crate) fn positions(&self) -> (u64, u64) {
        let c = self.ctl();
        let head = c.head.0.load(Ordering::Acquire);
        (head, c.tail.0.load(Ordering::Acquire))
    }

    /// Items in the ring (exact when nobody pushes or pops meanwhile); 0 once poisoned or when
    /// the indices read are impossible, at most the capacity.
    pub(crate) fn len(&self) -> u64 {
        let (head, tail) = self.positions();
        let n = tail.wrapping_sub(head);
        if self.is_poisoned() || (n as i64) < 0 {
            0
        } else {
            n.min(self.geo.cap)
        }
    }

    pub(crate) fn producers(&self) -> &[RoleSlot] {
        &self.ctl().producers[..self.geo.flavor.roles()]
    }

    pub(crate) fn consumers(&self) -> &[RoleSlot] {
        &self.ctl().consumers[..self.geo.flavor.roles()]
    }

    /// Whether every peer in `slots` that ever arrived has released its role or died (one OS
    /// call per held slot).
    pub(crate) fn peers_gone(&self, slots: &[RoleSlot]) -> bool {
        role::peers(slots, &self.prober, true) == role::Peers::Gone
    }

    /// Whether every peer in `slots` that ever arrived has released its role (one load; a
    /// peer that died is not noticed).
    #[inline]
    pub(crate) fn peers_left(&self, slots: &[RoleSlot]) -> bool {
        role::peers(slots, &self.prober, false) == role::Peers::Gone
    }

    /// Test forgery: writes `value` into `tail` (`which == 0`) or `head` (otherwise), as a
    /// process scribbling over the segment would.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn forge_index(&self, which: u8, value: u64) {
        let c = self.ctl();
        if which == 0 {
            c.tail.0.store(value, Ordering::Release)
        } else {
            c.head.0.store(value, Ordering::Release)
        }
    }

    /// Test forgery: writes `stamp` into the slot of `pos` (MPMC rings).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn forge_stamp(&self, pos: u64, stamp: u64) {
        if self.geo.flavor == Flavor::Mpmc {
            self.stamp(pos).store(stamp, Ordering::Release);
        }
    }

    /// Test forgery: a producer `who` took position `tail` (announced in a fresh producer role
    /// slot, `tail` advanced) and never published it, as a producer killed mid-push leaves
    /// it (MPMC rings).
    #[cfg(test)]
    pub(crate) fn forge_abandoned_push(&self, who: u64) {
        let c = self.ctl();
        let Ok(r) = role::claim(self.producers(), who, &Prober::heap()) else {
            return;
        };
        let pos = c.tail.0.load(Ordering::Acquire);
        self.producers()[r.index]
            .pending()
            .store(pos.wrapping_add(1), Ordering::Release);
        c.tail.0.store(pos.wrapping_add(1), Ordering::Release);
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if let Home::Heap(_) = *self.home {
            // SAFETY: a heap home is used by this process only, and every user of this ring's
            // control block holds the ring: this is the last one. Dropping the block releases
            // loom's bookkeeping (a no-op for std atomics); the memory stays until the home
            // goes.
            unsafe { ptr::drop_in_place(self.ctl.as_ptr()) }
        }
    }
}

#[cfg(all(test, loom))]
mod loom_tests;
