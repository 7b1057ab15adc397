//! A single-producer single-consumer ring of fixed-size elements, across processes.
//!
//! Lamport's ring: the producer owns `tail`, the consumer owns `head`, each on its own
//! 128-byte line, and each side keeps a cached copy of the other's index so that most
//! operations touch no line the other side writes (rtrb's technique). Positions are free-running
//! `u64`s (they never wrap in practice: 2^64 pushes); a position's slot is `position % capacity`.
//!
//! The producer and consumer roles are claimed in the segment ([`crate::role`]): at most one
//! live process holds each; a role held by a dead process is taken over by the next claim.
//!
//! # Segment layout (the body; `#[repr(C)]`, offsets pinned at compile time)
//!
//! | offset | field |
//! |---|---|
//! | 0 | `tail: u64`, next position to write (written by the producer only) |
//! | 128 | `head: u64`, next position to read (written by the consumer only) |
//! | 256 | `closed: u32`, 0 or 1; then the `not_empty` and `not_full` eventcounts |
//! | 384 | the producer's [`RoleSlot`] |
//! | 512 | the consumer's [`RoleSlot`] |
//! | 640 | `capacity` elements of `T` |
//!
//! Invariant (when nobody tampers with the segment): `head <= tail <= head + capacity`.
//! Each side checks it whenever it reads the other's index (`tail - head`, wrapping, must not
//! exceed the capacity); an index that breaks it (say `tail = u64::MAX`, or `head > tail`)
//! *poisons* the queue: from then on every push and pop, on both sides, fails at once with
//! `Corrupt` (batch calls move nothing). What is lost: every item still in the ring, which
//! can no longer be told from garbage; make a new queue. Positions are reduced modulo the
//! capacity before use, so not even a corrupt segment makes an access outside the ring.
//!
//! # Examples
//!
//! In one process (a heap ring, no segment):
//!
//! ```
//! let (mut tx, mut rx) = shm_queue::spsc::channel::<u64>(4);
//! tx.push(1).unwrap();
//! assert_eq!(tx.push_slice(&[2, 3, 4, 5]), 3); // only 3 fit
//! assert_eq!(rx.pop(), Ok(1));
//! let mut out = [0u64; 8];
//! assert_eq!(rx.pop_slice(&mut out), 3);
//! assert_eq!(&out[..3], &[2, 3, 4]);
//! ```
//!
//! Across processes:
//!
//! ```no_run
//! use shm_core::SegmentName;
//! use shm_queue::SpscQueue;
//!
//! let name = SegmentName::new("orders").unwrap();
//! // Process 1: create the queue and produce.
//! let q = SpscQueue::<u64>::builder(&name).capacity(1024).create()?;
//! let mut tx = q.producer()?;
//! for i in 0..100 {
//!     tx.push(i)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ```no_run
//! # use shm_core::SegmentName;
//! # use shm_queue::SpscQueue;
//! # let name = SegmentName::new("orders").unwrap();
//! // Process 2: open it by name and consume until the producer is gone.
//! let q = SpscQueue::<u64>::builder(&name).open()?;
//! let mut rx = q.consumer()?;
//! while let Ok(v) = rx.pop() {
//!     println!("{v}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::error::{
    corrupt_geometry, knob_methods, BadGeometry, Fail, Knobs, PopError, PopTimeoutError, PushError,
    PushTimeoutError, RoleError, TryPopError, TryPushError,
};
use crate::role::{self, Prober, RoleSlot, Waited};
use shm_core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shm_core::{
    CreateError, Deadline, Element, EventCount, Home, ObjectKind, OpenError, Segment, SegmentName,
    WaitStrategy,
};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Duration;

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

/// Flags and eventcounts shared by both ring kinds.
///
/// | `state` bits | meaning |
/// |---|---|
/// | 0 ([`CLOSED`]) | closed: pushes fail, pops drain what is left |
/// | any other | poisoned: an index or stamp read from the segment could not be right; every operation fails with `Corrupt` |
#[repr(C)]
pub(crate) struct SyncBlock {
    /// The state word (table above).
    pub(crate) state: AtomicU32,
    _reserved: AtomicU32,
    /// Notified after a push (consumers wait on it).
    pub(crate) not_empty: EventCount,
    /// Notified after a pop (producers wait on it).
    pub(crate) not_full: EventCount,
}

impl SyncBlock {
    pub(crate) fn new() -> SyncBlock {
        SyncBlock {
            state: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
            not_empty: EventCount::new(),
            not_full: EventCount::new(),
        }
    }

    /// The state word: 0 on the fast path (open, healthy).
    #[inline]
    pub(crate) fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state() & CLOSED != 0
    }

    /// Whether the queue is poisoned (see the state table).
    pub(crate) fn is_poisoned(&self) -> bool {
        self.state() & !CLOSED != 0
    }

    pub(crate) fn close(&self) {
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    /// Poisons the queue (an impossible index or stamp was read) and wakes every waiter, who
    /// then fails with `Corrupt`. Irreversible.
    #[cold]
    pub(crate) fn poison(&self) {
        self.state.fetch_or(POISONED, Ordering::AcqRel);
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}

/// The control block at the start of the body.
#[repr(C)]
pub(crate) struct SpscCtl {
    tail: CacheLine<AtomicU64>,
    head: CacheLine<AtomicU64>,
    sync: CacheLine<SyncBlock>,
    producer: [RoleSlot; 1],
    consumer: [RoleSlot; 1],
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(SpscCtl, tail) == 0);
    assert!(offset_of!(SpscCtl, head) == 128);
    assert!(offset_of!(SpscCtl, sync) == 256);
    assert!(offset_of!(SpscCtl, producer) == 384);
    assert!(offset_of!(SpscCtl, consumer) == 512);
    assert!(std::mem::size_of::<SpscCtl>() == 640);
};

impl SpscCtl {
    fn new() -> SpscCtl {
        SpscCtl {
            tail: CacheLine(AtomicU64::new(0)),
            head: CacheLine(AtomicU64::new(0)),
            sync: CacheLine(SyncBlock::new()),
            producer: [RoleSlot::new()],
            consumer: [RoleSlot::new()],
        }
    }
}

/// An impossible index or stamp was read; the queue is now poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// Reduces a position to a slot index (`< cap`).
#[inline]
pub(crate) fn index(pos: u64, cap: u64) -> usize {
    let i = if cap.is_power_of_two() {
        pos & (cap - 1)
    } else {
        pos % cap
    };
    i as usize
}

/// Body bytes of a ring: a control block of `ctl` bytes, then `cap` slots of `slot` bytes.
pub(crate) fn body_len(ctl: usize, slot: usize, cap: u64) -> Result<usize, BadGeometry> {
    if cap == 0 {
        return Err(BadGeometry::ZeroCapacity);
    }
    usize::try_from(cap)
        .ok()
        .and_then(|c| c.checked_mul(slot))
        .and_then(|b| b.checked_add(ctl))
        .filter(|&b| b <= isize::MAX as usize / 2)
        .ok_or(BadGeometry::TooLarge { capacity: cap })
}

/// The validated capacity of an opened segment (the opener adopts it from the header).
pub(crate) fn opened_capacity(seg: &Segment, ctl: usize, slot: usize) -> Result<u64, OpenError> {
    let cap = seg.header().count();
    let need = body_len(ctl, slot, cap).map_err(|_| {
        corrupt_geometry(
            "capacity",
            format!("the header records an impossible capacity {cap}"),
        )
    })?;
    if seg.body_len() < need {
        return Err(corrupt_geometry(
            "body",
            format!(
                "a capacity of {cap} needs {need} bytes of body, the segment has {}",
                seg.body_len()
            ),
        ));
    }
    Ok(cap)
}

/// The memory of one ring and the pointers into it.
struct Shared<T> {
    home: Home,
    ctl: NonNull<SpscCtl>,
    slots: NonNull<T>,
    cap: u64,
    prober: Prober,
    me: u64,
    /// Busy-poll-only queue: no endpoint ever sleeps, so nobody notifies.
    spin_only: bool,
    _t: PhantomData<T>,
}

// SAFETY: the ring's memory is only accessed through atomics and through the slot protocol
// (a slot is written only by the producer before it publishes `tail`, read only by the
// consumer after it acquires it); T: Element is Send + Sync plain data.
unsafe impl<T: Element> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Element> Sync for Shared<T> {}

impl<T: Element> Shared<T> {
    const CTL: usize = std::mem::size_of::<SpscCtl>();

    /// Initialises a control block at `p`.
    ///
    /// # Safety
    ///
    /// `p` must be valid for writes of a `SpscCtl`, 128-byte aligned, and not in use.
    unsafe fn init(p: NonNull<u8>) {
        // SAFETY: guaranteed by the caller.
        unsafe { ptr::write(p.cast::<SpscCtl>().as_ptr(), SpscCtl::new()) }
    }

    fn from_home(home: Home, cap: u64, prober: Prober, spin_only: bool) -> Shared<T> {
        const { assert!(std::mem::align_of::<T>() <= 128) };
        let base = home.as_ptr();
        // SAFETY: the home holds at least CTL + cap * size_of::<T>() bytes (checked by the
        // callers with `body_len`/`opened_capacity`), so CTL is inside it; CTL is a multiple
        // of 128, so the slots are aligned for T.
        let slots = unsafe { base.add(Self::CTL) }.cast::<T>();
        Shared {
            ctl: base.cast(),
            slots,
            home,
            cap,
            me: prober.me(),
            prober,
            spin_only,
            _t: PhantomData,
        }
    }

    fn heap(cap: u64, spin_only: bool) -> Result<Shared<T>, BadGeometry> {
        let len = body_len(Self::CTL, std::mem::size_of::<T>(), cap)?;
        let home = Home::heap(len);
        // SAFETY: a fresh, 128-aligned block of `len` >= CTL bytes.
        unsafe { Self::init(home.as_ptr()) };
        Ok(Self::from_home(home, cap, Prober::heap(), spin_only))
    }

    /// The strategy a handle with `strategy` really waits with.
    fn strategy(&self, strategy: WaitStrategy) -> WaitStrategy {
        if self.spin_only {
            WaitStrategy::busy_poll().with_slice(strategy.slice)
        } else {
            strategy
        }
    }

    fn ctl(&self) -> &SpscCtl {
        // SAFETY: ctl points to an initialised control block inside `home`, which lives as
        // long as self; it is made of atomics only, so shared access is fine.
        unsafe { self.ctl.as_ref() }
    }

    fn slot(&self, pos: u64) -> *mut T {
        let i = index(pos, self.cap);
        debug_assert!((i as u64) < self.cap);
        // SAFETY: i < cap, and the home holds cap slots after the control block.
        unsafe { self.slots.as_ptr().add(i) }
    }

    /// Items in the ring; 0 once poisoned or when the indices read are impossible.
    fn len(&self) -> usize {
        let c = self.ctl();
        let head = c.head.0.load(Ordering::Acquire);
        let tail = c.tail.0.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head);
        if n > self.cap || c.sync.0.is_poisoned() {
            0
        } else {
            n as usize
        }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if let Home::Heap(_) = self.home {
            // SAFETY: on the heap home this is the last user of the control block written in
            // `init`; dropping it releases loom's bookkeeping (a no-op for std atomics).
            unsafe { ptr::drop_in_place(self.ctl.as_ptr()) }
        }
    }
}

/// Creates a heap ring of `capacity` elements for use inside one process (threads), with its
/// two endpoints. The same algorithm as the shared-memory ring; loom and miri run on it.
///
/// # Panics
///
/// If `capacity` is zero or too large to allocate.
///
/// # Examples
///
/// ```
/// let (mut tx, mut rx) = shm_queue::spsc::channel::<i32>(2);
/// let t = std::thread::spawn(move || {
///     for i in 0..100 {
///         tx.push(i).unwrap();
///     }
/// });
/// for i in 0..100 {
///     assert_eq!(rx.pop(), Ok(i));
/// }
/// t.join().unwrap();
/// assert_eq!(rx.pop(), Err(shm_queue::PopError::Disconnected));
/// ```
pub fn channel<T: Element>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    channel_with(capacity, false)
}

/// Like [`channel`], but busy-poll-only (see [`SpscBuilder::busy_poll_only`]).
///
/// # Panics
///
/// If `capacity` is zero or too large to allocate.
///
/// # Examples
///
/// ```
/// let (mut tx, mut rx) = shm_queue::spsc::busy_poll_channel::<u8>(2);
/// tx.push(1).unwrap();
/// assert_eq!(rx.pop(), Ok(1));
/// ```
pub fn busy_poll_channel<T: Element>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    channel_with(capacity, true)
}

fn channel_with<T: Element>(capacity: usize, spin_only: bool) -> (Producer<T>, Consumer<T>) {
    let shared = match Shared::<T>::heap(capacity as u64, spin_only) {
        Ok(s) => Arc::new(s),
        Err(e) => panic!("spsc::channel({capacity}): {e}"),
    };
    let q = SpscQueue {
        shared,
        strategy: WaitStrategy::default(),
    };
    let (Ok(p), Ok(c)) = (q.producer(), q.consumer()) else {
        unreachable!("a fresh heap ring has free roles")
    };
    (p, c)
}

/// A named single-producer single-consumer queue of `T` in shared memory.
///
/// Made by [`SpscQueue::builder`]; hand out the endpoints with [`producer`](Self::producer) and
/// [`consumer`](Self::consumer). The creator's queue (and every endpoint made from it) keeps the
/// segment's name until the last of them is dropped. See the [module docs](self).
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_queue::SpscQueue;
///
/// let name = SegmentName::unique();
/// let q = SpscQueue::<u32>::builder(&name).capacity(8).create().unwrap();
/// let mut tx = q.producer().unwrap();
/// // Another process would do this:
/// let opened = SpscQueue::<u32>::builder(&name).open().unwrap();
/// let mut rx = opened.consumer().unwrap();
/// tx.push(42).unwrap();
/// assert_eq!(rx.pop(), Ok(42));
/// assert!(q.producer().is_err()); // one producer at a time
/// ```
///
/// Only plain, pointer-free elements can live in shared memory:
///
/// ```compile_fail
/// let (tx, rx) = shm_queue::spsc::channel::<String>(4);
/// ```
///
/// and a producer cannot pop:
///
/// ```compile_fail
/// let (mut tx, _rx) = shm_queue::spsc::channel::<u64>(4);
/// let _ = tx.pop();
/// ```
pub struct SpscQueue<T: Element> {
    shared: Arc<Shared<T>>,
    /// The wait strategy handed to new endpoints.
    strategy: WaitStrategy,
}

impl<T: Element> SpscQueue<T> {
    /// A builder for the queue named `name`.
    pub fn builder(name: &SegmentName) -> SpscBuilder<T> {
        SpscBuilder {
            name: name.clone(),
            capacity: None,
            knobs: Knobs::default(),
            spin_only: false,
            _t: PhantomData,
        }
    }

    /// Claims the producer role.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if a live process (maybe this one) holds it. A role held by a dead
    /// process is taken over.
    pub fn producer(&self) -> Result<Producer<T>, RoleError> {
        let s = &self.shared;
        let claim = role::claim(&s.ctl().producer, s.me, &s.prober)?;
        let tail = s.ctl().tail.0.load(Ordering::Acquire);
        Ok(Producer {
            shared: Arc::clone(s),
            tail,
            // Nothing seen yet: the first push reads (and checks) the consumer's head.
            cached_head: tail.wrapping_sub(s.cap),
            role: claim.index,
            strategy: self.strategy,
        })
    }

    /// Claims the consumer role.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if a live process (maybe this one) holds it. A role held by a dead
    /// process is taken over.
    pub fn consumer(&self) -> Result<Consumer<T>, RoleError> {
        let s = &self.shared;
        let claim = role::claim(&s.ctl().consumer, s.me, &s.prober)?;
        let head = s.ctl().head.0.load(Ordering::Acquire);
        Ok(Consumer {
            shared: Arc::clone(s),
            head,
            // Nothing seen yet: the first pop reads (and checks) the producer's tail.
            cached_tail: head,
            role: claim.index,
            strategy: self.strategy,
        })
    }

    /// Items in the queue (exact when nobody pushes or pops meanwhile).
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full.
    pub fn is_full(&self) -> bool {
        self.len() as u64 >= self.shared.cap
    }

    /// How many items fit.
    pub fn capacity(&self) -> usize {
        self.shared.cap as usize
    }

    /// Closes the queue: later pushes fail with `Closed`, pops deliver what is left and then
    /// fail with `Closed`; blocked callers wake up. Closing cannot be undone.
    pub fn close(&self) {
        self.shared.ctl().sync.0.close()
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.ctl().sync.0.is_closed()
    }

    /// The role slots and the poisoned flag, for read-only snapshots (`inspect`).
    pub(crate) fn inspect_parts(&self) -> crate::inspect::Parts<'_> {
        let c = self.shared.ctl();
        crate::inspect::Parts {
            producers: &c.producer,
            consumers: &c.consumer,
            poisoned: c.sync.0.is_poisoned(),
        }
    }

    /// The segment, if the queue lives in one (not for [`channel`]).
    pub fn segment(&self) -> Option<&Segment> {
        self.shared.home.segment()
    }

    /// Whether the queue is busy-poll-only (see [`SpscBuilder::busy_poll_only`]).
    pub fn is_busy_poll_only(&self) -> bool {
        self.shared.spin_only
    }
}

impl<T: Element> fmt::Debug for SpscQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscQueue")
            .field("name", &self.segment().map(|s| s.name().as_str()))
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Builds an [`SpscQueue`]: create, open, or open-or-create by name.
#[must_use]
pub struct SpscBuilder<T> {
    name: SegmentName,
    capacity: Option<u64>,
    knobs: Knobs,
    spin_only: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for SpscBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscBuilder")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<T: Element> SpscBuilder<T> {
    /// The capacity in items (required to create; an opener adopts the segment's, and checks
    /// it if given).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity as u64);
        self
    }

    knob_methods!();

    /// Creates a *busy-poll-only* queue (a creation-time property, stored in the segment and
    /// adopted by every opener): blocked pushes and pops on it always busy-poll, whatever the
    /// handle's [`WaitStrategy`] says (dead peers are still noticed once per slice), and in
    /// exchange pushes and pops skip the wake-up protocol, whose `SeqCst` fence costs more
    /// than the rest of a push. For endpoints that own a core each. Ignored by `open`.
    ///
    /// Measured cross-thread on the 2-core development machine: about 19 ns per item
    /// one-way with the default protocol, 7–8 ns busy-poll-only (`rtrb`: 6–7 ns).
    pub fn busy_poll_only(mut self) -> Self {
        self.spin_only = true;
        self
    }

    fn segment(&self) -> shm_core::SegmentBuilder {
        let mut b = Segment::builder(&self.name, ObjectKind::SpscQueue)
            .layout(T::LAYOUT)
            .param(u64::from(self.spin_only));
        if let Some(c) = self.capacity {
            b = b.count(c);
        }
        self.knobs.apply(b)
    }

    fn body_len(&self) -> Result<usize, BadGeometry> {
        let cap = self.capacity.ok_or(BadGeometry::ZeroCapacity)?;
        body_len(Shared::<T>::CTL, std::mem::size_of::<T>(), cap)
    }

    /// Creates the queue (the name must be free).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] without a capacity of at least 1, or one too large;
    /// the segment's errors (the name is taken, OS errors).
    pub fn create(self) -> Result<SpscQueue<T>, CreateError> {
        let len = self.body_len()?;
        let cap = self.capacity.unwrap_or(0);
        let seg = self.segment().body_len(len).create(|p, _| {
            // SAFETY: a fresh body of `len` >= CTL bytes, 128-byte aligned, nobody else yet.
            unsafe { Shared::<T>::init(p) }
        })?;
        Ok(self.wrap(seg, cap))
    }

    /// Opens an existing queue, checking its kind and element layout, and adopting its
    /// capacity (checked if this builder was given one) and busy-poll-only flag.
    ///
    /// # Errors
    ///
    /// The segment's errors (missing, another kind or element type, `WrongCount` for another
    /// capacity, …); [`OpenError::CorruptBody`] for a header whose geometry cannot be right.
    pub fn open(self) -> Result<SpscQueue<T>, OpenError> {
        let seg = self.segment().open()?;
        let cap = opened_capacity(&seg, Shared::<T>::CTL, std::mem::size_of::<T>())?;
        Ok(self.wrap(seg, cap))
    }

    /// Opens the queue, or creates it if there is none (race-free; see
    /// [`Segment::is_creator`] through [`SpscQueue::segment`]).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`OpenError::InvalidParameter`] for a capacity that could not
    /// be created; [`OpenError::Create`] if creating failed.
    pub fn open_or_create(self) -> Result<SpscQueue<T>, OpenError> {
        let len = self.body_len()?;
        let seg = self.segment().body_len(len).open_or_create(|p, _| {
            // SAFETY: a fresh body of `len` >= CTL bytes, 128-byte aligned, nobody else yet.
            unsafe { Shared::<T>::init(p) }
        })?;
        let cap = opened_capacity(&seg, Shared::<T>::CTL, std::mem::size_of::<T>())?;
        Ok(self.wrap(seg, cap))
    }

    fn wrap(&self, seg: Segment, cap: u64) -> SpscQueue<T> {
        // The creator's choice, whatever this builder said (bit 0 of the header's param).
        let spin_only = seg.header().param() & 1 != 0;
        SpscQueue {
            shared: Arc::new(Shared::from_home(
                Home::Segment(seg),
                cap,
                Prober::os(),
                spin_only,
            )),
            strategy: self.knobs.strategy,
        }
    }
}

/// The producer endpoint of an [`SpscQueue`] or a [`channel`]. Releases the role on drop.
#[must_use = "dropping the producer releases the role at once"]
pub struct Producer<T: Element> {
    shared: Arc<Shared<T>>,
    /// Our own position (the segment's `tail` is only written by us).
    tail: u64,
    /// Last `head` seen.
    cached_head: u64,
    role: usize,
    strategy: WaitStrategy,
}

impl<T: Element> Producer<T> {
    /// Sets how blocked pushes wait (default: [`WaitStrategy::default`], spin then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Free slots, refreshing the cached head if fewer than `want` seem free. `Err` (and the
    /// queue poisoned) if the head read breaks `head <= tail <= head + cap`.
    #[inline]
    fn free(&mut self, want: u64) -> Result<u64, Corrupt> {
        let cap = self.shared.cap;
        // The cached head passed the check below (or is the initial `tail - cap`).
        let free = cap - self.tail.wrapping_sub(self.cached_head);
        if free >= want {
            return Ok(free);
        }
        let head = self.shared.ctl().head.0.load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        if used > cap {
            self.shared.ctl().sync.0.poison();
            return Err(Corrupt);
        }
        self.cached_head = head;
        Ok(cap - used)
    }

    #[inline]
    fn publish(&mut self, n: u64) {
        self.tail = self.tail.wrapping_add(n);
        let ctl = self.shared.ctl();
        ctl.tail.0.store(self.tail, Ordering::Release);
        if !self.shared.spin_only {
            ctl.sync.0.not_empty.notify_one();
        }
    }

    /// Pushes without waiting.
    ///
    /// # Errors
    ///
    /// [`TryPushError`], with the item: `Full`, `Closed`, `Disconnected` (full and the
    /// consumer dropped its handle), `Corrupt`.
    #[inline]
    pub fn try_push(&mut self, value: T) -> Result<(), TryPushError<T>> {
        let state = self.shared.ctl().sync.0.state();
        if state != 0 {
            return Err(if state & !CLOSED != 0 {
                TryPushError::Corrupt(value)
            } else {
                TryPushError::Closed(value)
            });
        }
        match self.free(1) {
            Ok(0) => {
                let s = &self.shared;
                let gone = role::peers(&s.ctl().consumer, &s.prober, false) == role::Peers::Gone;
                return Err(if gone {
                    TryPushError::Disconnected(value)
                } else {
                    TryPushError::Full(value)
                });
            }
            Ok(_) => {}
            Err(Corrupt) => return Err(TryPushError::Corrupt(value)),
        }
        // SAFETY: the slot at `tail` is free (tail - head < cap): the consumer does not read it
        // until we publish the new tail below.
        unsafe { ptr::write(self.shared.slot(self.tail), value) };
        self.publish(1);
        Ok(())
    }

    /// Pushes, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PushError`], with the item: `Closed`, `Disconnected` (the queue is full and the
    /// consumer dropped its handle or died), `Corrupt`.
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        self.push_within(value, None)
            .map_err(|(f, v)| PushError::from_fail(f, v))
    }

    /// Pushes, waiting up to `timeout` while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PushTimeoutError`]: as [`push`](Self::push), and `Timeout`.
    pub fn push_timeout(&mut self, value: T, timeout: Duration) -> Result<(), PushTimeoutError<T>> {
        self.push_within(value, Some(timeout))
            .map_err(|(f, v)| PushTimeoutError::from_fail(f, v))
    }

    /// Push, waiting up to `timeout` (`None`: without limit). The clock is read only once the
    /// queue is found full: a push into a queue with room costs no clock read.
    fn push_within(&mut self, value: T, timeout: Option<Duration>) -> Result<(), (Fail, T)> {
        match self.try_push(value) {
            Ok(()) => Ok(()),
            Err(TryPushError::Full(v)) => {
                let shared = Arc::clone(&self.shared);
                let ctl = shared.ctl();
                let strategy = shared.strategy(self.strategy);
                let r = ctl.sync.0.not_full.wait_until(
                    &strategy,
                    Deadline::from_timeout(timeout),
                    role::watching(&ctl.consumer, &shared.prober, |_| match self.try_push(v) {
                        Ok(()) => Some(Ok(())),
                        Err(TryPushError::Full(_)) => None,
                        Err(e) => Some(Err(e.fail())),
                    }),
                );
                match r {
                    Some(Waited::Ready(r)) => r.map_err(|f| (f, v)),
                    None => Err((Fail::Timeout, v)),
                    Some(Waited::PeersGone) => Err((Fail::Disconnected, v)),
                }
            }
            Err(e) => Err((e.fail(), e.into_inner())),
        }
    }

    /// Pushes as many items of `items` as fit, in order, without waiting; returns how many.
    /// A closed queue takes none.
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        if items.is_empty() || self.shared.ctl().sync.0.state() != 0 {
            return 0;
        }
        let Ok(free) = self.free(items.len() as u64) else {
            return 0;
        };
        let n = free.min(items.len() as u64) as usize;
        if n == 0 {
            return 0;
        }
        let cap = self.shared.cap as usize;
        let start = index(self.tail, self.shared.cap);
        let first = n.min(cap - start);
        // SAFETY: `n` slots from `tail` are free (checked above); the first run of `first`
        // slots ends at or before the end of the ring, the rest starts at slot 0; `items`
        // does not overlap the ring.
        unsafe {
            ptr::copy_nonoverlapping(items.as_ptr(), self.shared.slot(self.tail), first);
        }
        if n > first {
            // SAFETY: as above: the wrapped run of n - first < cap slots starts at slot 0.
            unsafe {
                ptr::copy_nonoverlapping(
                    items.as_ptr().add(first),
                    self.shared.slots.as_ptr(),
                    n - first,
                );
            }
        }
        self.publish(n as u64);
        n
    }

    /// Items in the queue.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full.
    pub fn is_full(&self) -> bool {
        self.len() as u64 >= self.shared.cap
    }

    /// How many items fit.
    pub fn capacity(&self) -> usize {
        self.shared.cap as usize
    }

    /// Closes the queue (see [`SpscQueue::close`]).
    pub fn close(&self) {
        self.shared.ctl().sync.0.close()
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.ctl().sync.0.is_closed()
    }
}

impl<T: Element> Drop for Producer<T> {
    fn drop(&mut self) {
        let s = &self.shared;
        role::release(&s.ctl().producer, self.role, s.me);
        s.ctl().sync.0.not_empty.notify_all();
    }
}

impl<T: Element> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("spsc::Producer")
            .field("tail", &self.tail)
            .field("capacity", &self.shared.cap)
            .finish()
    }
}

/// The consumer endpoint of an [`SpscQueue`] or a [`channel`]. Releases the role on drop.
#[must_use = "dropping the consumer releases the role at once"]
pub struct Consumer<T: Element> {
    shared: Arc<Shared<T>>,
    /// Our own position (the segment's `head` is only written by us).
    head: u64,
    /// Last `tail` seen.
    cached_tail: u64,
    role: usize,
    strategy: WaitStrategy,
}

impl<T: Element> Consumer<T> {
    /// Sets how blocked pops wait (default: [`WaitStrategy::default`], spin then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Items ready, refreshing the cached tail if fewer than `want` seem ready. `Err` (and
    /// the queue poisoned) if the queue is poisoned or the tail read breaks
    /// `head <= tail <= head + cap`: never more than the capacity, never garbage.
    #[inline]
    fn ready(&mut self, want: u64) -> Result<u64, Corrupt> {
        let sync = &self.shared.ctl().sync.0;
        // One load of a line that only changes on close or poison: a poisoned queue stops
        // delivering at once, also the items this side had already seen.
        if sync.state() & !CLOSED != 0 {
            return Err(Corrupt);
        }
        // The cached tail passed the check below (or is the initial `head`).
        let ready = self.cached_tail.wrapping_sub(self.head);
        if ready >= want {
            return Ok(ready);
        }
        let tail = self.shared.ctl().tail.0.load(Ordering::Acquire);
        let ready = tail.wrapping_sub(self.head);
        if ready > self.shared.cap {
            sync.poison();
            return Err(Corrupt);
        }
        self.cached_tail = tail;
        Ok(ready)
    }

    #[inline]
    fn release(&mut self, n: u64) {
        self.head = self.head.wrapping_add(n);
        let ctl = self.shared.ctl();
        ctl.head.0.store(self.head, Ordering::Release);
        if !self.shared.spin_only {
            ctl.sync.0.not_full.notify_one();
        }
    }

    /// An item, `Some(Err(Corrupt))` on a poisoned queue, or `None` if none is ready.
    #[inline]
    fn take(&mut self) -> Option<Result<T, Fail>> {
        match self.ready(1) {
            Ok(0) => None,
            Ok(_) => {
                // SAFETY: head < tail (acquired, and tail - head <= cap checked): the producer
                // wrote this slot before publishing and will not write it again until we
                // publish the new head below.
                let v = unsafe { ptr::read(self.shared.slot(self.head)) };
                self.release(1);
                Some(Ok(v))
            }
            Err(Corrupt) => Some(Err(Fail::Corrupt)),
        }
    }

    /// One poll of a pop: an item, `Closed`, `Corrupt`, or nothing yet.
    fn poll(&mut self) -> Option<Result<T, Fail>> {
        if let Some(r) = self.take() {
            return Some(r);
        }
        if self.shared.ctl().sync.0.is_closed() {
            // Items pushed before the close are still delivered.
            return Some(self.take().unwrap_or(Err(Fail::Closed)));
        }
        None
    }

    /// Pops without waiting.
    ///
    /// # Errors
    ///
    /// [`TryPopError`]: `Empty`; `Closed` once a closed queue is drained; `Disconnected` once
    /// the queue is drained and the producer has dropped its handle (a producer that *died* is
    /// only noticed by the blocking forms); `Corrupt`.
    #[inline]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        if let Some(r) = self.take() {
            return r.map_err(TryPopError::from_fail);
        }
        let s = &self.shared;
        let gone = role::peers(&s.ctl().producer, &s.prober, false) == role::Peers::Gone;
        match self.poll() {
            Some(r) => r.map_err(TryPopError::from_fail),
            None if gone => Err(TryPopError::Disconnected),
            None => Err(TryPopError::Empty),
        }
    }

    /// Pops, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`PopError`]: `Closed` or `Disconnected` (the producer dropped its handle or died),
    /// each only once the queue is drained; `Corrupt`.
    pub fn pop(&mut self) -> Result<T, PopError> {
        self.pop_within(None).map_err(PopError::from_fail)
    }

    /// Pops, waiting up to `timeout` while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`PopTimeoutError`]: as [`pop`](Self::pop), and `Timeout`.
    pub fn pop_timeout(&mut self, timeout: Duration) -> Result<T, PopTimeoutError> {
        self.pop_within(Some(timeout))
            .map_err(PopTimeoutError::from_fail)
    }

    /// Pop, waiting up to `timeout` (`None`: without limit); the clock is read only once the
    /// queue is found empty.
    fn pop_within(&mut self, timeout: Option<Duration>) -> Result<T, Fail> {
        if let Some(r) = self.take() {
            return r;
        }
        let shared = Arc::clone(&self.shared);
        let ctl = shared.ctl();
        let strategy = shared.strategy(self.strategy);
        match ctl.sync.0.not_empty.wait_until(
            &strategy,
            Deadline::from_timeout(timeout),
            role::watching(&ctl.producer, &shared.prober, |_| self.poll()),
        ) {
            Some(Waited::Ready(r)) => r,
            None => Err(Fail::Timeout),
            Some(Waited::PeersGone) => Err(Fail::Disconnected),
        }
    }

    /// Pops up to `out.len()` items into `out`, in order, without waiting; returns how many.
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize {
        if out.is_empty() {
            return 0;
        }
        let Ok(ready) = self.ready(out.len() as u64) else {
            return 0;
        };
        let n = ready.min(out.len() as u64) as usize;
        if n == 0 {
            return 0;
        }
        let cap = self.shared.cap as usize;
        let start = index(self.head, self.shared.cap);
        let first = n.min(cap - start);
        // SAFETY: `n` slots from `head` are published (n <= tail - head, acquired); the first
        // run ends at or before the end of the ring; `out` does not overlap the ring.
        unsafe {
            ptr::copy_nonoverlapping(self.shared.slot(self.head), out.as_mut_ptr(), first);
        }
        if n > first {
            // SAFETY: as above: the wrapped run of n - first slots starts at slot 0.
            unsafe {
                ptr::copy_nonoverlapping(
                    self.shared.slots.as_ptr(),
                    out.as_mut_ptr().add(first),
                    n - first,
                );
            }
        }
        self.release(n as u64);
        n
    }

    /// Items in the queue.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full.
    pub fn is_full(&self) -> bool {
        self.len() as u64 >= self.shared.cap
    }

    /// How many items fit.
    pub fn capacity(&self) -> usize {
        self.shared.cap as usize
    }

    /// Closes the queue (see [`SpscQueue::close`]).
    pub fn close(&self) {
        self.shared.ctl().sync.0.close()
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.ctl().sync.0.is_closed()
    }
}

#[cfg(any(test, feature = "test-hooks"))]
impl<T: Element> Consumer<T> {
    /// Test hook: writes an impossible index into the control block, as a process scribbling
    /// over the segment would: 0, `tail = u64::MAX`; 1, `head` one past `tail`; otherwise
    /// `tail` more than the capacity past `head`.
    pub(crate) fn forge_index(&self, what: u8) {
        let c = self.shared.ctl();
        let head = c.head.0.load(Ordering::Acquire);
        match what {
            0 => c.tail.0.store(u64::MAX, Ordering::Release),
            1 => c.head.0.store(
                c.tail.0.load(Ordering::Acquire).wrapping_add(1),
                Ordering::Release,
            ),
            _ => c.tail.0.store(
                head.wrapping_add(self.shared.cap).wrapping_add(1),
                Ordering::Release,
            ),
        }
    }
}

impl<T: Element> Drop for Consumer<T> {
    fn drop(&mut self) {
        let s = &self.shared;
        role::release(&s.ctl().consumer, self.role, s.me);
        s.ctl().sync.0.not_full.notify_all();
    }
}

impl<T: Element> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("spsc::Consumer")
            .field("head", &self.head)
            .field("capacity", &self.shared.cap)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::role::HEAP_WORD;

    #[test]
    fn index_math() {
        assert_eq!(index(5, 4), 1);
        assert_eq!(index(5, 3), 2);
        assert_eq!(index(u64::MAX, 3), (u64::MAX % 3) as usize);
        assert_eq!(body_len(640, 8, 0), Err(BadGeometry::ZeroCapacity));
        assert!(matches!(
            body_len(640, 8, u64::MAX),
            Err(BadGeometry::TooLarge { .. })
        ));
        assert_eq!(body_len(640, 8, 3).unwrap(), 640 + 24);
    }

    #[test]
    fn smoke_and_capacity() {
        let (mut tx, mut rx) = channel::<u64>(3);
        assert_eq!(tx.capacity(), 3);
        assert!(rx.is_empty());
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        for i in 0..3 {
            tx.try_push(i).unwrap();
        }
        assert!(tx.is_full());
        assert_eq!(tx.len(), 3);
        assert_eq!(tx.try_push(9), Err(TryPushError::Full(9)));
        assert_eq!(
            tx.push_timeout(9, Duration::from_millis(1)),
            Err(PushTimeoutError::Timeout(9))
        );
        assert_eq!(rx.try_pop(), Ok(0));
        tx.try_push(3).unwrap();
        for i in 1..4 {
            assert_eq!(rx.pop(), Ok(i));
        }
        assert_eq!(
            rx.pop_timeout(Duration::from_millis(1)),
            Err(PopTimeoutError::Timeout)
        );
    }

    #[test]
    fn slices_wrap_around() {
        let (mut tx, mut rx) = channel::<u32>(5);
        let mut next = 0u32;
        let mut expect = 0u32;
        for round in 0..50usize {
            let batch: Vec<u32> = (next..next + (round % 7) as u32).collect();
            let n = tx.push_slice(&batch);
            next += n as u32;
            let mut out = [0u32; 4];
            let m = rx.pop_slice(&mut out[..(round % 5)]);
            for &v in &out[..m] {
                assert_eq!(v, expect);
                expect += 1;
            }
        }
        while let Ok(v) = rx.try_pop() {
            assert_eq!(v, expect);
            expect += 1;
        }
        assert_eq!(expect, next);
        assert_eq!(tx.push_slice(&[]), 0);
        assert_eq!(rx.pop_slice(&mut []), 0);
    }

    #[test]
    fn close_delivers_rest_then_closed() {
        let (mut tx, mut rx) = channel::<u8>(4);
        tx.push(1).unwrap();
        rx.close();
        assert!(tx.is_closed());
        assert_eq!(tx.try_push(2), Err(TryPushError::Closed(2)));
        assert_eq!(tx.push_slice(&[2]), 0);
        assert_eq!(rx.pop(), Ok(1));
        assert_eq!(rx.pop(), Err(PopError::Closed));
        assert_eq!(rx.try_pop(), Err(TryPopError::Closed));
    }

    #[test]
    fn dropped_producer_disconnects_after_drain() {
        let (mut tx, mut rx) = channel::<i16>(4);
        tx.push(-1).unwrap();
        drop(tx);
        assert_eq!(rx.pop(), Ok(-1));
        assert_eq!(rx.pop(), Err(PopError::Disconnected));
        assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
    }

    #[test]
    fn dropped_consumer_disconnects_full_push() {
        let (mut tx, rx) = channel::<i16>(1);
        tx.push(1).unwrap();
        drop(rx);
        assert_eq!(tx.push(2), Err(PushError::Disconnected(2)));
    }

    #[test]
    fn blocked_pop_wakes_on_close() {
        let (tx, mut rx) = channel::<u64>(2);
        let t = std::thread::spawn(move || rx.pop());
        std::thread::sleep(Duration::from_millis(10));
        tx.close();
        assert_eq!(t.join().unwrap(), Err(PopError::Closed));
    }

    #[test]
    fn threads_in_order() {
        let n: u64 = if cfg!(miri) { 200 } else { 100_000 };
        let (mut tx, mut rx) = channel::<u64>(16);
        let t = std::thread::spawn(move || {
            for i in 0..n {
                tx.push(i).unwrap();
            }
        });
        for i in 0..n {
            assert_eq!(rx.pop(), Ok(i));
        }
        t.join().unwrap();
        assert_eq!(rx.pop(), Err(PopError::Disconnected));
    }

    #[test]
    fn roles_are_exclusive_and_released() {
        let shared = Arc::new(Shared::<u8>::heap(2, false).unwrap());
        let q = SpscQueue {
            shared,
            strategy: WaitStrategy::default(),
        };
        let p = q.producer().unwrap();
        assert!(matches!(q.producer(), Err(RoleError::Busy { .. })));
        drop(p);
        let _p = q.producer().unwrap();
        let _c = q.consumer().unwrap();
        assert!(q.consumer().is_err());
        assert!(format!("{q:?}").contains("capacity: 2"));
    }

    #[test]
    fn busy_poll_channel_threads_and_disconnect() {
        let n: u64 = if cfg!(miri) { 100 } else { 50_000 };
        let (mut tx, mut rx) = busy_poll_channel::<u64>(4);
        let t = std::thread::spawn(move || {
            for i in 0..n {
                tx.push(i).unwrap();
            }
        });
        for i in 0..n {
            assert_eq!(rx.pop(), Ok(i));
        }
        t.join().unwrap();
        assert_eq!(rx.pop(), Err(PopError::Disconnected));
    }

    #[cfg_attr(miri, ignore)]
    #[test]
    fn busy_poll_only_is_adopted_by_openers() {
        let name = SegmentName::unique();
        let q = SpscQueue::<u64>::builder(&name)
            .capacity(2)
            .busy_poll_only()
            .create()
            .unwrap();
        let o = SpscQueue::<u64>::builder(&name).open().unwrap();
        assert!(q.is_busy_poll_only() && o.is_busy_poll_only());
        let plain = SpscQueue::<u64>::builder(&SegmentName::unique())
            .capacity(2)
            .create()
            .unwrap();
        assert!(!plain.is_busy_poll_only());
        let mut tx = q.producer().unwrap();
        let mut rx = o.consumer().unwrap();
        tx.push(1).unwrap();
        assert_eq!(rx.pop(), Ok(1));
        assert_eq!(
            rx.pop_timeout(Duration::from_millis(2)),
            Err(PopTimeoutError::Timeout)
        );
    }

    /// Regression (issue 11): an SPSC queue whose `tail` or `head` was overwritten used to pop
    /// garbage forever. Each impossible index poisons the queue: `Corrupt` at once, on every
    /// call, on both sides.
    #[test]
    fn corrupt_index_poisons_instead_of_popping_garbage() {
        // (what to forge, head, tail)
        let cases: [(&str, u64, u64); 3] = [
            ("tail = u64::MAX", 0, u64::MAX),
            ("head > tail", 5, 2),
            ("tail - head > capacity", 0, 5),
        ];
        for (what, head, tail) in cases {
            let q = SpscQueue {
                shared: Arc::new(Shared::<u64>::heap(4, false).unwrap()),
                strategy: WaitStrategy::default(),
            };
            let ctl = q.shared.ctl();
            ctl.head.0.store(head, Ordering::Release);
            ctl.tail.0.store(tail, Ordering::Release);
            // Endpoints claimed after the damage start from the forged indices.
            let (mut tx, mut rx) = (q.producer().unwrap(), q.consumer().unwrap());
            for _ in 0..3 {
                assert_eq!(rx.try_pop(), Err(TryPopError::Corrupt), "{what}: try_pop");
                assert_eq!(rx.pop(), Err(PopError::Corrupt), "{what}: pop");
                assert_eq!(
                    rx.pop_timeout(Duration::from_secs(10)),
                    Err(PopTimeoutError::Corrupt),
                    "{what}: pop_timeout"
                );
                assert_eq!(rx.pop_slice(&mut [0; 4]), 0, "{what}: pop_slice");
                assert_eq!(
                    tx.try_push(2),
                    Err(TryPushError::Corrupt(2)),
                    "{what}: push"
                );
                assert_eq!(tx.push_slice(&[2]), 0, "{what}: push_slice");
            }
            assert_eq!(rx.len(), 0, "{what}: len");
        }
    }

    /// The producer finds an impossible `head` (ahead of its tail) on its side: poisoned too,
    /// not "full forever".
    #[test]
    fn corrupt_head_seen_by_producer_poisons() {
        let (mut tx, mut rx) = channel::<u64>(2);
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        rx.shared.ctl().head.0.store(7, Ordering::Release);
        assert_eq!(tx.try_push(3), Err(TryPushError::Corrupt(3)));
        assert_eq!(
            tx.push_timeout(3, Duration::from_secs(10)),
            Err(PushTimeoutError::Corrupt(3))
        );
        assert_eq!(rx.try_pop(), Err(TryPopError::Corrupt));
    }

    /// A consumer blocked on an empty queue wakes with `Corrupt` when the producer finds the
    /// queue corrupt (poisoning wakes every waiter).
    #[test]
    fn poison_wakes_a_blocked_pop() {
        let (mut tx, mut rx) = channel::<u64>(1);
        let ctl_head = {
            let s = Arc::clone(&tx.shared);
            move || s.ctl().head.0.store(9, Ordering::Release)
        };
        let t = std::thread::spawn(move || rx.pop());
        std::thread::sleep(Duration::from_millis(20));
        ctl_head();
        assert_eq!(tx.try_push(1), Err(TryPushError::Corrupt(1)));
        assert_eq!(t.join().unwrap(), Err(PopError::Corrupt));
    }

    /// A consumer's first pop on a queue no producer has attached to yet waits (here until
    /// its timeout): `Disconnected` needs producers that came and went.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn first_pop_before_any_producer_waits() {
        let name = SegmentName::unique();
        let q = SpscQueue::<u64>::builder(&name)
            .capacity(2)
            .create()
            .unwrap();
        let mut rx = q.consumer().unwrap();
        assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
        assert_eq!(
            rx.pop_timeout(Duration::from_millis(20)),
            Err(PopTimeoutError::Timeout)
        );
        let mut tx = q.producer().unwrap();
        tx.push(4).unwrap();
        drop(tx);
        assert_eq!(rx.pop(), Ok(4));
        assert_eq!(rx.pop(), Err(PopError::Disconnected));
    }

    /// Regression (issue 10): a consumer whose liveness cannot be told (`Unknown`: another
    /// user's process under `hidepid`, no `/proc`) keeps its role: a second consumer is
    /// refused, so two consumers never race on plain slot reads; once it is `Dead`, the role
    /// is taken over.
    #[test]
    fn unknown_consumer_keeps_its_role() {
        use shm_core::Liveness;
        use std::sync::atomic::AtomicBool;
        const OTHER: u64 = 0x1234;
        let dead = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&dead);
        let prober = Prober::new(HEAP_WORD, move |w: u64| match w {
            OTHER if d.load(Ordering::Relaxed) => Liveness::Dead,
            OTHER => Liveness::Unknown,
            _ => Liveness::Alive,
        });
        let len = body_len(Shared::<u64>::CTL, 8, 2).unwrap();
        let home = Home::heap(len);
        // SAFETY: a fresh, 128-aligned block of `len` >= CTL bytes.
        unsafe { Shared::<u64>::init(home.as_ptr()) };
        let q = SpscQueue {
            shared: Arc::new(Shared::<u64>::from_home(home, 2, prober, false)),
            strategy: WaitStrategy::default(),
        };
        // The other process's consumer holds the role.
        role::claim(&q.shared.ctl().consumer, OTHER, &Prober::heap()).unwrap();
        assert!(matches!(q.consumer(), Err(RoleError::Busy { .. })));
        let mut tx = q.producer().unwrap();
        tx.push(1).unwrap();
        // A full queue whose consumer is Unknown is not Disconnected: the push waits.
        tx.push(2).unwrap();
        assert_eq!(
            tx.push_timeout(3, Duration::from_millis(20)),
            Err(PushTimeoutError::Timeout(3))
        );
        dead.store(true, Ordering::Relaxed);
        let mut rx = q.consumer().unwrap();
        assert_eq!(rx.pop(), Ok(1));
    }

    /// A busy-polling pop notices a producer that died holding its role (its slices come
    /// from the one wait loop, which never sleeps here).
    #[cfg_attr(miri, ignore)]
    #[test]
    fn busy_poll_pop_sees_dead_producer() {
        let name = SegmentName::unique();
        let q = SpscQueue::<u64>::builder(&name)
            .capacity(2)
            .create()
            .unwrap();
        let dead = shm_core::ProcessId::from_parts(0x7fff_fff0, 1).to_word();
        role::claim(&q.shared.ctl().producer, dead, &Prober::heap()).unwrap();
        let mut rx = q.consumer().unwrap();
        rx.set_wait_strategy(WaitStrategy::busy_poll().with_slice(Duration::from_millis(1)));
        assert_eq!(rx.pop(), Err(PopError::Disconnected));
    }

    #[cfg_attr(miri, ignore)]
    #[test]
    fn segment_create_open_checks() {
        let name = SegmentName::unique();
        assert!(matches!(
            SpscQueue::<u64>::builder(&name).create(),
            Err(CreateError::InvalidParameter {
                parameter: "capacity",
                ..
            })
        ));
        let q = SpscQueue::<u64>::builder(&name)
            .capacity(8)
            .create()
            .unwrap();
        assert!(matches!(
            SpscQueue::<u32>::builder(&name).open(),
            Err(OpenError::WrongLayout { .. })
        ));
        assert!(matches!(
            SpscQueue::<u64>::builder(&name).capacity(9).open(),
            Err(OpenError::WrongCount { .. })
        ));
        // The opener adopts the capacity.
        assert_eq!(
            SpscQueue::<u64>::builder(&name).open().unwrap().capacity(),
            8
        );
        let o = SpscQueue::<u64>::builder(&name)
            .capacity(8)
            .open_or_create()
            .unwrap();
        assert!(!o.segment().unwrap().is_creator());
        let mut tx = q.producer().unwrap();
        let mut rx = o.consumer().unwrap();
        tx.push(7).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(rx.pop(), Ok(7));
        drop(q);
        // The producer keeps the segment mapped after the queue handle is gone.
        tx.push(8).unwrap();
        assert_eq!(rx.pop(), Ok(8));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// Items cross in order through a ring that wraps, with the producer blocking on a full
    /// ring and the consumer on an empty one (no lost wake-up: loom reports a deadlock).
    #[test]
    fn spsc_blocking_in_order() {
        loom::model(|| {
            let (mut tx, mut rx) = channel::<u32>(1);
            let t = loom::thread::spawn(move || {
                tx.set_wait_strategy(WaitStrategy::sleep());
                tx.push(1).unwrap();
                tx.push(2).unwrap();
            });
            rx.set_wait_strategy(WaitStrategy::sleep());
            assert_eq!(rx.pop(), Ok(1));
            assert_eq!(rx.pop(), Ok(2));
            // The producer's drop wakes us: Disconnected, never a hang.
            assert_eq!(rx.pop(), Err(PopError::Disconnected));
            t.join().unwrap();
        });
    }

    /// Batch operations and close.
    #[test]
    fn spsc_slices_and_close() {
        loom::model(|| {
            let (mut tx, mut rx) = channel::<u32>(2);
            let t = loom::thread::spawn(move || {
                let n = tx.push_slice(&[1, 2, 3]);
                tx.close();
                n
            });
            let mut got = Vec::new();
            loop {
                let mut buf = [0u32; 2];
                let k = rx.pop_slice(&mut buf);
                got.extend_from_slice(&buf[..k]);
                if k == 0 {
                    match rx.try_pop() {
                        Ok(v) => got.push(v),
                        Err(TryPopError::Closed) => break,
                        Err(_) => loom::thread::yield_now(),
                    }
                }
            }
            let n = t.join().unwrap();
            assert_eq!(got, [1, 2, 3][..n].to_vec());
        });
    }
}
