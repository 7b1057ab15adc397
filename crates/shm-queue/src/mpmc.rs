//! A bounded multi-producer multi-consumer ring of fixed-size elements, across processes.
//!
//! Vyukov's bounded queue (crossbeam's `ArrayQueue`): every slot carries a sequence *stamp*
//! that says which position it is ready for and in which state, so producers and consumers
//! agree on a slot with one compare-and-swap and never take a lock. This version also survives
//! processes that die in the middle of an operation.
//!
//! # Stamps
//!
//! Positions are free-running `u64`s; position `p` lives in slot `p % capacity`, whose stamp
//! is `4 * p + state`:
//!
//! | state | meaning | next |
//! |---|---|---|
//! | 0 `EMPTY` | free for the producer of position `p` | a producer claims it (CAS to 1) |
//! | 1 `CLAIMED` | a producer is writing position `p` | it publishes (CAS to 2) |
//! | 2 `FULL` | holds the item of position `p` | a consumer takes it: `4 * (p + capacity)` |
//! | 3 `SKIPPED` | its producer died before publishing | a consumer passes it: `4 * (p + capacity)` |
//!
//! A producer claims the slot itself (stamp `EMPTY` to `CLAIMED`) and then advances `tail`;
//! any producer that finds the slot at `tail` already claimed helps advance `tail`, so a producer
//! that dies between the two steps blocks nobody. A consumer advances `head` with a CAS from a
//! `FULL` or `SKIPPED` slot, then reads the item and hands the slot to the next lap.
//!
//! # Processes that die mid-operation: the exact guarantee
//!
//! Before claiming position `p`, a producer writes `p + 1` into the `pending` word of its role
//! slot ([`crate::role`]) and clears it after publishing (every `pending` store is `Release`
//! and every load `Acquire`, so whoever reads a later value also sees the publish). A consumer blocked on a slot that stays
//! `CLAIMED` checks, once per sleep slice of its [`WaitStrategy`], whether any **live**
//! producer has `pending == p + 1`. If none has, the claimer is dead (a live claimer keeps
//! `pending == p + 1` until its publish, and a dead holder's slot is reset only when taken
//! over), so the consumer marks the slot `SKIPPED` with a CAS that fails if the producer did
//! publish meanwhile. Therefore:
//!
//! - every item whose `push` returned `Ok` is delivered exactly once (unless a consumer dies
//!   holding it, below);
//! - an item whose producer was killed inside `push` is either delivered whole or skipped,
//!   never delivered torn; [`MpmcQueue::skipped`] counts the skipped slots;
//! - consumers are never blocked for good by a dead producer: they wait at most about one
//!   sleep slice (default 50 ms) longer, then go on, and once the queue is drained and every
//!   producer is gone, blocking pops return [`PopError::Disconnected`]. Non-blocking pops
//!   (`try_pop`) never check liveness and report a slot stuck behind a dead producer as
//!   `Empty`.
//!
//! # Corrupt stamps
//!
//! A stamp that no healthy ring can hold at the position looked at (ahead of `head` or `tail`
//! while that index did not move, or behind it by anything but one lap) *poisons* the queue:
//! from then on every push and pop fails at once with `Corrupt`, in every process. What is
//! lost: every item still in the queue (it can no longer be told from garbage); make a new
//! queue.
//!
//! Symmetrically, consumers announce the position they take; a producer blocked on a full
//! queue whose oldest slot was taken by a consumer that then died recycles that slot (the item
//! died with its consumer).
//!
//! # Layout (the body; `#[repr(C)]`, offsets pinned at compile time)
//!
//! | offset | field |
//! |---|---|
//! | 0 | `tail: u64` |
//! | 128 | `head: u64` |
//! | 256 | `state: u32` (closed, poisoned), then the `not_empty` and `not_full` eventcounts |
//! | 384 | `skipped: u64`, slots abandoned by dead producers and skipped |
//! | 512 | [`MAX_PRODUCERS`] producer [`RoleSlot`]s, then [`MAX_CONSUMERS`] consumer ones |
//! | 512 + 128 * 64 | `capacity` slots: `stamp: u64`, then the `T` (repr(C)) |
//!
//! # Examples
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_queue::MpmcQueue;
//!
//! let name = SegmentName::unique();
//! let q = MpmcQueue::<u64>::builder(&name).capacity(16).create().unwrap();
//! let (mut p1, mut p2) = (q.producer().unwrap(), q.producer().unwrap());
//! let mut c = q.consumer().unwrap();
//! p1.push(1).unwrap();
//! p2.push(2).unwrap();
//! assert_eq!(c.pop(), Ok(1));
//! assert_eq!(c.pop(), Ok(2));
//! assert_eq!(c.try_pop(), Err(shm_queue::TryPopError::Empty));
//! ```

use crate::error::{
    knob_methods, BadGeometry, Fail, Knobs, PopError, PopTimeoutError, PushError, PushTimeoutError,
    RoleError, TryPopError, TryPushError,
};
use crate::role::{self, Prober, RoleSlot, Waited};
use crate::spsc::{body_len, index, opened_capacity, CacheLine, Corrupt, SyncBlock, CLOSED};
use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::sync::Poll;
use shm_core::{
    CreateError, Deadline, Element, Home, ObjectKind, OpenError, Segment, SegmentName, WaitStrategy,
};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Duration;

/// Most producer handles that can be attached at once.
pub const MAX_PRODUCERS: usize = 32;
/// Most consumer handles that can be attached at once.
pub const MAX_CONSUMERS: usize = 32;

const EMPTY: u64 = 0;
const CLAIMED: u64 = 1;
const FULL: u64 = 2;
const SKIPPED: u64 = 3;

/// Most consecutive abandoned slots one poll skips (bounds the work of a poll on a segment
/// that another process scribbled over).
const MAX_SKIPS_PER_POLL: usize = 1024;

#[repr(C)]
struct MpmcCtl {
    tail: CacheLine<AtomicU64>,
    head: CacheLine<AtomicU64>,
    sync: CacheLine<SyncBlock>,
    skipped: CacheLine<AtomicU64>,
    producers: [RoleSlot; MAX_PRODUCERS],
    consumers: [RoleSlot; MAX_CONSUMERS],
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(MpmcCtl, tail) == 0);
    assert!(offset_of!(MpmcCtl, head) == 128);
    assert!(offset_of!(MpmcCtl, sync) == 256);
    assert!(offset_of!(MpmcCtl, skipped) == 384);
    assert!(offset_of!(MpmcCtl, producers) == 512);
    assert!(offset_of!(MpmcCtl, consumers) == 512 + 128 * MAX_PRODUCERS);
    assert!(std::mem::size_of::<MpmcCtl>() == 512 + 128 * (MAX_PRODUCERS + MAX_CONSUMERS));
};

impl MpmcCtl {
    fn new() -> MpmcCtl {
        MpmcCtl {
            tail: CacheLine(AtomicU64::new(0)),
            head: CacheLine(AtomicU64::new(0)),
            sync: CacheLine(SyncBlock::new()),
            skipped: CacheLine(AtomicU64::new(0)),
            producers: std::array::from_fn(|_| RoleSlot::new()),
            consumers: std::array::from_fn(|_| RoleSlot::new()),
        }
    }
}

/// One slot: the stamp, then the item.
#[repr(C)]
struct Slot<T> {
    stamp: AtomicU64,
    value: T,
}

/// What one attempt to take an item found.
enum Take<T> {
    Item(T),
    Empty,
    /// An impossible stamp: the queue is now poisoned.
    Corrupt,
    /// The slot at `head` (position `.0`) is claimed by a producer that has not published.
    Stuck(u64),
}

struct Shared<T> {
    home: Home,
    ctl: NonNull<MpmcCtl>,
    slots: NonNull<Slot<T>>,
    cap: u64,
    prober: Prober,
    me: u64,
    _t: PhantomData<T>,
}

// SAFETY: the memory is accessed through atomics, and an item only by the one producer that
// claimed its slot's stamp (before publishing) or the one consumer that advanced `head` past a
// FULL stamp (after acquiring it); T: Element is Send + Sync plain data.
unsafe impl<T: Element> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Element> Sync for Shared<T> {}

impl<T: Element> Shared<T> {
    const CTL: usize = std::mem::size_of::<MpmcCtl>();
    const SLOT: usize = std::mem::size_of::<Slot<T>>();

    /// Initialises the control block and the `cap` slot stamps at `p`.
    ///
    /// # Safety
    ///
    /// `p` must be valid for writes of `CTL + cap * SLOT` bytes, 128-byte aligned, unused.
    unsafe fn init(p: NonNull<u8>, cap: u64) {
        // SAFETY: guaranteed by the caller.
        unsafe { ptr::write(p.cast::<MpmcCtl>().as_ptr(), MpmcCtl::new()) };
        // SAFETY: CTL bytes are inside the block; CTL is a multiple of 128.
        let slots = unsafe { p.as_ptr().add(Self::CTL) }.cast::<Slot<T>>();
        for i in 0..cap {
            // SAFETY: i < cap slots fit in the block; the stamp of position i is 4 * i.
            let stamp = unsafe { ptr::addr_of_mut!((*slots.add(i as usize)).stamp) };
            // SAFETY: `stamp` is valid for writes and aligned (from the pointer above).
            unsafe { ptr::write(stamp, AtomicU64::new(i.wrapping_mul(4))) };
        }
    }

    fn from_home(home: Home, cap: u64, prober: Prober) -> Shared<T> {
        const { assert!(std::mem::align_of::<T>() <= 128) };
        let base = home.as_ptr();
        // SAFETY: the home holds CTL + cap * SLOT bytes (checked by the callers).
        let slots = unsafe { base.add(Self::CTL) }.cast::<Slot<T>>();
        Shared {
            ctl: base.cast(),
            slots,
            home,
            cap,
            me: prober.me(),
            prober,
            _t: PhantomData,
        }
    }

    fn heap(cap: u64) -> Result<Shared<T>, BadGeometry> {
        let len = body_len(Self::CTL, Self::SLOT, cap)?;
        let home = Home::heap(len);
        // SAFETY: a fresh block of `len` bytes, 128-byte aligned.
        unsafe { Self::init(home.as_ptr(), cap) };
        Ok(Self::from_home(home, cap, Prober::heap()))
    }

    fn ctl(&self) -> &MpmcCtl {
        // SAFETY: an initialised control block of atomics inside `home`, alive with self.
        unsafe { self.ctl.as_ref() }
    }

    fn slot(&self, pos: u64) -> *mut Slot<T> {
        let i = index(pos, self.cap);
        debug_assert!((i as u64) < self.cap);
        // SAFETY: i < cap slots follow the control block.
        unsafe { self.slots.as_ptr().add(i) }
    }

    fn stamp(&self, pos: u64) -> &AtomicU64 {
        let slot = self.slot(pos);
        // SAFETY: the slot is inside `home` and its stamp was initialised as an atomic.
        unsafe { &*ptr::addr_of!((*slot).stamp) }
    }

    fn len(&self) -> usize {
        let c = self.ctl();
        let head = c.head.0.load(Ordering::Acquire);
        let tail = c.tail.0.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head);
        if (n as i64) < 0 || c.sync.0.is_poisoned() {
            0
        } else {
            n.min(self.cap) as usize
        }
    }

    /// One attempt to push. `Ok(false)`: full; `Err`: an impossible stamp (or our claim was
    /// judged abandoned, which only a tampered segment can cause): the queue is poisoned.
    fn try_push(&self, role: usize, value: T) -> Result<bool, Corrupt> {
        let Some(pos) = self.claim(role)? else {
            return Ok(false);
        };
        let c = self.ctl();
        let slot = self.slot(pos);
        // SAFETY: we own the slot: its stamp is CLAIMED for our position, so no consumer
        // reads it and no other producer writes it until we publish.
        unsafe { ptr::write(ptr::addr_of_mut!((*slot).value), value) };
        let base = pos.wrapping_mul(4);
        let ok = self
            .stamp(pos)
            .compare_exchange(
                base + CLAIMED,
                base + FULL,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok();
        c.producers[role].pending().store(0, Ordering::Release);
        c.sync.0.not_empty.notify_one();
        if ok {
            Ok(true)
        } else {
            c.sync.0.poison();
            Err(Corrupt)
        }
    }

    /// Whether `s`, the stamp of position `pos`'s slot, is one lap behind with a state in
    /// `states` (a bit set of states): the only way a healthy ring's stamp is behind.
    fn lap_behind(&self, s: u64, pos: u64, states: u64) -> bool {
        let d = s.wrapping_sub(pos.wrapping_sub(self.cap).wrapping_mul(4));
        d <= SKIPPED && states & (1 << d) != 0
    }

    /// Claims the next position for writing (stamp EMPTY to CLAIMED, announced in our role
    /// slot's `pending` first) and helps `tail` past it; `None` if the queue is full; `Err`
    /// (and the queue poisoned) on an impossible stamp.
    fn claim(&self, role: usize) -> Result<Option<u64>, Corrupt> {
        let c = self.ctl();
        let pending = c.producers[role].pending();
        let mut pos = c.tail.0.load(Ordering::Acquire);
        loop {
            let stamp = self.stamp(pos);
            let base = pos.wrapping_mul(4);
            let s = stamp.load(Ordering::Acquire);
            let d = s.wrapping_sub(base);
            if d == EMPTY {
                // Announce the claim before making it (see the module docs).
                pending.store(pos.wrapping_add(1), Ordering::Release);
                if stamp
                    .compare_exchange_weak(
                        base,
                        base + CLAIMED,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_err()
                {
                    // Not ours: withdraw the announcement, so that it never vouches for a
                    // claim another (perhaps dead) producer made.
                    pending.store(0, Ordering::Release);
                    pos = c.tail.0.load(Ordering::Acquire);
                    continue;
                }
                let _ = c.tail.0.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                return Ok(Some(pos));
            } else if d <= SKIPPED {
                // Position `pos` is already claimed: help `tail` past it.
                let _ = c.tail.0.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                pos = c.tail.0.load(Ordering::Acquire);
            } else {
                // An older lap (the slot is not free yet: full), or a newer one (our tail is
                // stale). If `tail` has not moved: full, if the stamp is one lap behind (its
                // item not yet taken, or being taken); anything else cannot be.
                let t = c.tail.0.load(Ordering::Acquire);
                if t == pos {
                    if self.lap_behind(s, pos, 1 << CLAIMED | 1 << FULL | 1 << SKIPPED) {
                        return Ok(None);
                    }
                    c.sync.0.poison();
                    return Err(Corrupt);
                }
                pos = t;
            }
        }
    }

    /// One attempt to take an item.
    fn take(&self, role: usize) -> Take<T> {
        let c = self.ctl();
        if c.sync.0.state() & !CLOSED != 0 {
            return Take::Corrupt;
        }
        let pending = c.consumers[role].pending();
        let mut pos = c.head.0.load(Ordering::Acquire);
        let mut skips = 0;
        loop {
            let stamp = self.stamp(pos);
            let base = pos.wrapping_mul(4);
            let s = stamp.load(Ordering::Acquire);
            let d = s.wrapping_sub(base);
            if d == FULL || d == SKIPPED {
                pending.store(pos.wrapping_add(1), Ordering::Release);
                if let Err(h) = c.head.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    pending.store(0, Ordering::Release);
                    pos = h;
                    continue;
                }
                let slot = self.slot(pos);
                // SAFETY: we advanced `head` past a FULL stamp we acquired: the producer's
                // write is visible and no one else reads or writes this slot until we hand it
                // to the next lap below. (For SKIPPED the value is read and discarded.)
                let value = unsafe { ptr::read(ptr::addr_of!((*slot).value)) };
                let next = pos.wrapping_add(self.cap).wrapping_mul(4);
                let ok = stamp
                    .compare_exchange(s, next, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok();
                pending.store(0, Ordering::Release);
                c.sync.0.not_full.notify_one();
                if d == FULL && ok {
                    return Take::Item(value);
                }
                // Skipped (or recycled under us by a producer that judged us dead, which only
                // a tampered segment can cause): go on with the next position.
                skips += 1;
                if skips >= MAX_SKIPS_PER_POLL {
                    return Take::Empty;
                }
                pos = pos.wrapping_add(1);
            } else if d == EMPTY {
                return Take::Empty;
            } else if d == CLAIMED {
                return Take::Stuck(pos);
            } else {
                // One lap behind (the previous item is being taken): nothing here yet. Ahead:
                // our `head` is stale, unless it has not moved, which cannot be.
                let h = c.head.0.load(Ordering::Acquire);
                if h == pos {
                    if self.lap_behind(s, pos, 1 << FULL | 1 << SKIPPED) {
                        return Take::Empty;
                    }
                    c.sync.0.poison();
                    return Take::Corrupt;
                }
                pos = h;
            }
        }
    }

    /// The slow-path check of a blocked consumer: marks the slot of position `pos` SKIPPED if
    /// its claimer is dead. Returns whether it was skipped.
    fn skip_if_abandoned(&self, pos: u64) -> bool {
        let c = self.ctl();
        if role::any_live_pending(&c.producers, pos.wrapping_add(1), &self.prober) {
            return false;
        }
        let base = pos.wrapping_mul(4);
        // Help `tail` past it first, in case the claimer died before doing so.
        let _ = c.tail.0.compare_exchange(
            pos,
            pos.wrapping_add(1),
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
        let skipped = self
            .stamp(pos)
            .compare_exchange(
                base + CLAIMED,
                base + SKIPPED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok();
        if skipped {
            c.skipped.0.fetch_add(1, Ordering::Relaxed);
        }
        skipped
    }

    /// The slow-path check of a blocked producer: if the oldest slot (position `tail - cap`)
    /// was taken by a consumer that died before handing it on, hand it on. Returns whether it
    /// did.
    fn recycle_if_abandoned(&self) -> bool {
        let c = self.ctl();
        let tail = c.tail.0.load(Ordering::Acquire);
        let p = tail.wrapping_sub(self.cap);
        let base = p.wrapping_mul(4);
        let stamp = self.stamp(p);
        let s = stamp.load(Ordering::Acquire);
        let d = s.wrapping_sub(base);
        if d != FULL && d != SKIPPED {
            return false;
        }
        let head = c.head.0.load(Ordering::Acquire);
        // Not yet taken by any consumer: the queue is simply full.
        if (head.wrapping_sub(p) as i64) <= 0 {
            return false;
        }
        if role::any_live_pending(&c.consumers, p.wrapping_add(1), &self.prober) {
            return false;
        }
        stamp
            .compare_exchange(s, tail.wrapping_mul(4), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if let Home::Heap(_) = self.home {
            // SAFETY: the last user of the heap control block written in `init` (a no-op for
            // std atomics; releases loom's bookkeeping). Slot stamps are left as they are.
            unsafe { ptr::drop_in_place(self.ctl.as_ptr()) }
        }
    }
}

/// Creates a heap MPMC queue of `capacity` items for use inside one process (threads): the
/// same algorithm as the shared-memory queue. Endpoints come from the returned queue.
///
/// # Panics
///
/// If `capacity` is zero or too large to allocate.
///
/// # Examples
///
/// ```
/// let q = shm_queue::mpmc::heap::<u32>(8);
/// let mut p = q.producer().unwrap();
/// let mut c = q.consumer().unwrap();
/// p.push(5).unwrap();
/// assert_eq!(c.pop(), Ok(5));
/// ```
pub fn heap<T: Element>(capacity: usize) -> MpmcQueue<T> {
    match Shared::<T>::heap(capacity as u64) {
        Ok(s) => MpmcQueue {
            shared: Arc::new(s),
            strategy: WaitStrategy::default(),
        },
        Err(e) => panic!("mpmc::heap({capacity}): {e}"),
    }
}

/// Creates a heap MPMC queue with one producer and one consumer (more with
/// [`Producer::try_clone`] / [`Consumer::try_clone`]).
///
/// # Panics
///
/// If `capacity` is zero or too large to allocate.
pub fn channel<T: Element>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let q = heap::<T>(capacity);
    let (Ok(p), Ok(c)) = (q.producer(), q.consumer()) else {
        unreachable!("a fresh heap queue has free roles")
    };
    (p, c)
}

/// A named multi-producer multi-consumer queue of `T` in shared memory.
///
/// Made by [`MpmcQueue::builder`]; up to [`MAX_PRODUCERS`] producers and [`MAX_CONSUMERS`]
/// consumers attach at once, from any processes. See the [module docs](self) for the
/// algorithm and what happens when a process dies.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_queue::MpmcQueue;
///
/// let name = SegmentName::unique();
/// let q = MpmcQueue::<i32>::builder(&name).capacity(4).create().unwrap();
/// let opened = MpmcQueue::<i32>::builder(&name).open().unwrap();
/// let mut p = q.producer().unwrap();
/// let mut c = opened.consumer().unwrap();
/// assert_eq!(p.push_slice(&[1, 2, 3, 4, 5]), 4);
/// assert!(q.is_full());
/// let mut out = [0; 8];
/// assert_eq!(c.pop_slice(&mut out), 4);
/// assert_eq!(&out[..4], &[1, 2, 3, 4]);
/// ```
pub struct MpmcQueue<T: Element> {
    shared: Arc<Shared<T>>,
    /// The wait strategy handed to new endpoints.
    strategy: WaitStrategy,
}

impl<T: Element> MpmcQueue<T> {
    /// A builder for the queue named `name`.
    pub fn builder(name: &SegmentName) -> MpmcBuilder<T> {
        MpmcBuilder {
            name: name.clone(),
            capacity: None,
            knobs: Knobs::default(),
            _t: PhantomData,
        }
    }

    /// Attaches a producer.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if [`MAX_PRODUCERS`] live producers are attached. Slots of dead
    /// producers are taken over.
    pub fn producer(&self) -> Result<Producer<T>, RoleError> {
        let s = &self.shared;
        let claim = role::claim(&s.ctl().producers, s.me, &s.prober)?;
        Ok(Producer {
            shared: Arc::clone(s),
            role: claim.index,
            strategy: self.strategy,
        })
    }

    /// Attaches a consumer.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if [`MAX_CONSUMERS`] live consumers are attached.
    pub fn consumer(&self) -> Result<Consumer<T>, RoleError> {
        let s = &self.shared;
        let claim = role::claim(&s.ctl().consumers, s.me, &s.prober)?;
        Ok(Consumer {
            shared: Arc::clone(s),
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

    /// Closes the queue: later pushes fail with `Closed`; pops deliver what is left, then fail
    /// with `Closed`; blocked callers wake up.
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
            producers: &c.producers,
            consumers: &c.consumers,
            poisoned: c.sync.0.is_poisoned(),
        }
    }

    /// How many slots claimed by producers that died before publishing have been skipped.
    pub fn skipped(&self) -> u64 {
        self.shared.ctl().skipped.0.load(Ordering::Relaxed)
    }

    /// The segment, if the queue lives in one.
    pub fn segment(&self) -> Option<&Segment> {
        self.shared.home.segment()
    }
}

impl<T: Element> fmt::Debug for MpmcQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpmcQueue")
            .field("name", &self.segment().map(|s| s.name().as_str()))
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Builds an [`MpmcQueue`]: create, open, or open-or-create by name.
#[must_use]
pub struct MpmcBuilder<T> {
    name: SegmentName,
    capacity: Option<u64>,
    knobs: Knobs,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for MpmcBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpmcBuilder")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<T: Element> MpmcBuilder<T> {
    /// The capacity in items (required to create; an opener adopts the segment's, and checks
    /// it if given).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity as u64);
        self
    }

    knob_methods!();

    fn segment(&self) -> shm_core::SegmentBuilder {
        let mut b = Segment::builder(&self.name, ObjectKind::MpmcQueue).layout(T::LAYOUT);
        if let Some(c) = self.capacity {
            b = b.count(c);
        }
        self.knobs.apply(b)
    }

    fn body_len(&self) -> Result<(usize, u64), BadGeometry> {
        let cap = self.capacity.ok_or(BadGeometry::ZeroCapacity)?;
        Ok((body_len(Shared::<T>::CTL, Shared::<T>::SLOT, cap)?, cap))
    }

    /// Creates the queue (the name must be free).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] for a missing, zero or too large capacity; the
    /// segment's errors.
    pub fn create(self) -> Result<MpmcQueue<T>, CreateError> {
        let (len, cap) = self.body_len()?;
        let seg = self.segment().body_len(len).create(|p, _| {
            // SAFETY: a fresh body of `len` bytes, 128-byte aligned, nobody else yet.
            unsafe { Shared::<T>::init(p, cap) }
        })?;
        Ok(self.wrap(seg, cap))
    }

    /// Opens an existing queue, checking kind and element layout, adopting its capacity
    /// (checked if this builder was given one).
    ///
    /// # Errors
    ///
    /// The segment's errors; [`OpenError::CorruptBody`] for an impossible geometry.
    pub fn open(self) -> Result<MpmcQueue<T>, OpenError> {
        let seg = self.segment().open()?;
        let cap = opened_capacity(&seg, Shared::<T>::CTL, Shared::<T>::SLOT)?;
        Ok(self.wrap(seg, cap))
    }

    /// Opens the queue, or creates it if there is none (race-free).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`OpenError::InvalidParameter`] for a capacity that could not
    /// be created.
    pub fn open_or_create(self) -> Result<MpmcQueue<T>, OpenError> {
        let (len, cap) = self.body_len()?;
        let seg = self.segment().body_len(len).open_or_create(|p, _| {
            // SAFETY: a fresh body of `len` bytes, 128-byte aligned, nobody else yet.
            unsafe { Shared::<T>::init(p, cap) }
        })?;
        let cap = opened_capacity(&seg, Shared::<T>::CTL, Shared::<T>::SLOT)?;
        Ok(self.wrap(seg, cap))
    }

    fn wrap(&self, seg: Segment, cap: u64) -> MpmcQueue<T> {
        MpmcQueue {
            shared: Arc::new(Shared::from_home(Home::Segment(seg), cap, Prober::os())),
            strategy: self.knobs.strategy,
        }
    }
}

/// A producer endpoint of an [`MpmcQueue`]. Releases its role slot on drop.
#[must_use = "dropping the producer releases the role at once"]
pub struct Producer<T: Element> {
    shared: Arc<Shared<T>>,
    role: usize,
    strategy: WaitStrategy,
}

impl<T: Element> Producer<T> {
    /// Attaches another producer to the same queue.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if [`MAX_PRODUCERS`] are attached.
    pub fn try_clone(&self) -> Result<Producer<T>, RoleError> {
        MpmcQueue {
            shared: Arc::clone(&self.shared),
            strategy: self.strategy,
        }
        .producer()
    }

    /// Sets how blocked pushes wait (default: spin, then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Pushes without waiting.
    ///
    /// # Errors
    ///
    /// [`TryPushError`], with the item: `Full`, `Closed`, `Disconnected` (full and every
    /// consumer that attached dropped its handle), `Corrupt`.
    pub fn try_push(&mut self, value: T) -> Result<(), TryPushError<T>> {
        let state = self.shared.ctl().sync.0.state();
        if state != 0 {
            return Err(if state & !CLOSED != 0 {
                TryPushError::Corrupt(value)
            } else {
                TryPushError::Closed(value)
            });
        }
        match self.shared.try_push(self.role, value) {
            Ok(true) => Ok(()),
            Ok(false) => {
                let s = &self.shared;
                let gone = role::peers(&s.ctl().consumers, &s.prober, false) == role::Peers::Gone;
                Err(if gone {
                    TryPushError::Disconnected(value)
                } else {
                    TryPushError::Full(value)
                })
            }
            Err(Corrupt) => Err(TryPushError::Corrupt(value)),
        }
    }

    /// Pushes, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PushError`], with the item: `Closed`; `Disconnected` if the queue is full and every
    /// consumer that attached has dropped its handle or died; `Corrupt`.
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

    /// Push, waiting up to `timeout` (`None`: without limit); the clock is read only once the
    /// queue is found full.
    fn push_within(&mut self, value: T, timeout: Option<Duration>) -> Result<(), (Fail, T)> {
        match self.try_push(value) {
            Ok(()) => Ok(()),
            Err(TryPushError::Full(v)) => {
                let shared = Arc::clone(&self.shared);
                let ctl = shared.ctl();
                let strategy = self.strategy;
                let r = ctl.sync.0.not_full.wait_until(
                    &strategy,
                    Deadline::from_timeout(timeout),
                    role::watching(&ctl.consumers, &shared.prober, |p| {
                        if p == Poll::Slice {
                            shared.recycle_if_abandoned();
                        }
                        match self.try_push(v) {
                            Ok(()) => Some(Ok(())),
                            Err(TryPushError::Full(_)) => None,
                            Err(e) => Some(Err(e.fail())),
                        }
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

    /// Test hook: claims the next slot and never publishes it, as a producer killed at the
    /// worst moment would leave it. Returns whether a slot was claimed. Not part of the API.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn claim_and_abandon_for_test(&mut self) -> bool {
        matches!(self.shared.claim(self.role), Ok(Some(_)))
    }

    /// Pushes items of `items` in order without waiting until the queue is full; returns how
    /// many were pushed. A closed queue takes none.
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        let mut n = 0;
        for &v in items {
            if self.try_push(v).is_err() {
                break;
            }
            n += 1;
        }
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

    /// Closes the queue (see [`MpmcQueue::close`]).
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
        role::release(&s.ctl().producers, self.role, s.me);
        s.ctl().sync.0.not_empty.notify_all();
    }
}

impl<T: Element> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpmc::Producer")
            .field("role", &self.role)
            .field("capacity", &self.shared.cap)
            .finish()
    }
}

/// A consumer endpoint of an [`MpmcQueue`]. Releases its role slot on drop.
#[must_use = "dropping the consumer releases the role at once"]
pub struct Consumer<T: Element> {
    shared: Arc<Shared<T>>,
    role: usize,
    strategy: WaitStrategy,
}

impl<T: Element> Consumer<T> {
    /// Attaches another consumer to the same queue.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if [`MAX_CONSUMERS`] are attached.
    pub fn try_clone(&self) -> Result<Consumer<T>, RoleError> {
        MpmcQueue {
            shared: Arc::clone(&self.shared),
            strategy: self.strategy,
        }
        .consumer()
    }

    /// Sets how blocked pops wait (default: spin, then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// One poll of a blocking pop; on `Slice` polls, skips slots abandoned by dead producers.
    fn poll(&mut self, slow: bool) -> Option<Result<T, Fail>> {
        for _ in 0..MAX_SKIPS_PER_POLL {
            match self.shared.take(self.role) {
                Take::Item(v) => return Some(Ok(v)),
                Take::Corrupt => return Some(Err(Fail::Corrupt)),
                Take::Stuck(pos) if slow && self.shared.skip_if_abandoned(pos) => continue,
                Take::Empty | Take::Stuck(_) => break,
            }
        }
        if self.shared.ctl().sync.0.is_closed() {
            return Some(match self.shared.take(self.role) {
                Take::Item(v) => Ok(v),
                Take::Corrupt => Err(Fail::Corrupt),
                _ => Err(Fail::Closed),
            });
        }
        None
    }

    /// Pops without waiting.
    ///
    /// # Errors
    ///
    /// [`TryPopError`]: `Empty` (also when the oldest item is still being written, or its
    /// producer died mid-push: only blocking pops look into that); `Closed` once a closed
    /// queue is drained; `Disconnected` once it is drained and every producer has dropped its
    /// handle; `Corrupt`.
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        if let Take::Item(v) = self.shared.take(self.role) {
            return Ok(v);
        }
        let s = &self.shared;
        let gone = role::peers(&s.ctl().producers, &s.prober, false) == role::Peers::Gone;
        match self.poll(false) {
            Some(r) => r.map_err(TryPopError::from_fail),
            None if gone => Err(TryPopError::Disconnected),
            None => Err(TryPopError::Empty),
        }
    }

    /// Pops, waiting while the queue is empty.
    ///
    /// # Errors
    ///
    /// [`PopError`]: `Closed` or `Disconnected` (every producer dropped its handle or died),
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
        if let Take::Item(v) = self.shared.take(self.role) {
            return Ok(v);
        }
        let shared = Arc::clone(&self.shared);
        let ctl = shared.ctl();
        let strategy = self.strategy;
        match ctl.sync.0.not_empty.wait_until(
            &strategy,
            Deadline::from_timeout(timeout),
            role::watching(&ctl.producers, &shared.prober, |p| {
                self.poll(p == Poll::Slice)
            }),
        ) {
            Some(Waited::Ready(r)) => r,
            None => Err(Fail::Timeout),
            Some(Waited::PeersGone) => Err(Fail::Disconnected),
        }
    }

    /// Pops up to `out.len()` items into `out` without waiting; returns how many.
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize {
        let mut n = 0;
        while n < out.len() {
            match self.shared.take(self.role) {
                Take::Item(v) => out[n] = v,
                _ => break,
            }
            n += 1;
        }
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

    /// Closes the queue (see [`MpmcQueue::close`]).
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
    /// Test hook: writes an impossible stamp or index, as a process scribbling over the
    /// segment would: 0, the stamp at `head` two laps ahead; 1, `tail = u64::MAX`; otherwise
    /// the stamp at `tail` more than a lap behind.
    pub(crate) fn forge_index(&self, what: u8) {
        let s = &self.shared;
        let c = s.ctl();
        let head = c.head.0.load(Ordering::Acquire);
        let tail = c.tail.0.load(Ordering::Acquire);
        match what {
            0 => s.stamp(head).store(
                head.wrapping_add(2 * s.cap).wrapping_mul(4) + FULL,
                Ordering::Release,
            ),
            1 => c.tail.0.store(u64::MAX, Ordering::Release),
            _ => s.stamp(tail).store(
                tail.wrapping_sub(3 * s.cap).wrapping_mul(4) + FULL,
                Ordering::Release,
            ),
        }
    }
}

impl<T: Element> Drop for Consumer<T> {
    fn drop(&mut self) {
        let s = &self.shared;
        role::release(&s.ctl().consumers, self.role, s.me);
        s.ctl().sync.0.not_full.notify_all();
    }
}

impl<T: Element> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mpmc::Consumer")
            .field("role", &self.role)
            .field("capacity", &self.shared.cap)
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn smoke_capacity_len() {
        let q = heap::<u64>(3);
        let mut p = q.producer().unwrap();
        let mut c = q.consumer().unwrap();
        assert_eq!(c.try_pop(), Err(TryPopError::Empty));
        for i in 0..3 {
            p.try_push(i).unwrap();
        }
        assert!(q.is_full());
        assert_eq!(q.len(), 3);
        assert_eq!(p.try_push(7), Err(TryPushError::Full(7)));
        assert_eq!(
            p.push_timeout(7, Duration::from_millis(1)),
            Err(PushTimeoutError::Timeout(7))
        );
        for round in 0..10u64 {
            assert_eq!(c.pop(), Ok(round));
            p.push(round + 3).unwrap();
        }
        let mut out = [0u64; 8];
        assert_eq!(c.pop_slice(&mut out), 3);
        assert_eq!(&out[..3], &[10, 11, 12]);
        assert!(q.is_empty());
        assert_eq!(
            c.pop_timeout(Duration::from_millis(1)),
            Err(PopTimeoutError::Timeout)
        );
    }

    #[test]
    fn capacity_one_laps() {
        let (mut p, mut c) = channel::<u8>(1);
        for i in 0..20 {
            p.push(i).unwrap();
            assert_eq!(p.try_push(99), Err(TryPushError::Full(99)));
            assert_eq!(c.pop(), Ok(i));
        }
    }

    #[test]
    fn close_and_disconnect() {
        let (mut p, mut c) = channel::<u8>(4);
        p.push(1).unwrap();
        c.close();
        assert_eq!(p.try_push(2), Err(TryPushError::Closed(2)));
        assert_eq!(c.pop(), Ok(1));
        assert_eq!(c.pop(), Err(PopError::Closed));

        let (mut p, mut c) = channel::<u8>(4);
        let p2 = p.try_clone().unwrap();
        p.push(1).unwrap();
        drop(p);
        assert_eq!(c.pop(), Ok(1));
        assert_eq!(c.try_pop(), Err(TryPopError::Empty)); // p2 still attached
        drop(p2);
        assert_eq!(c.pop(), Err(PopError::Disconnected));

        let (mut p, c) = channel::<u8>(1);
        p.push(1).unwrap();
        drop(c);
        assert_eq!(p.push(2), Err(PushError::Disconnected(2)));
    }

    #[test]
    fn role_table_limit() {
        let q = heap::<u8>(2);
        let ps: Vec<_> = (0..MAX_PRODUCERS).map(|_| q.producer().unwrap()).collect();
        assert!(matches!(q.producer(), Err(RoleError::Busy { .. })));
        drop(ps);
        assert!(q.producer().is_ok());
    }

    #[test]
    fn threads_mpmc_exactly_once_in_order_per_producer() {
        let per: u64 = if cfg!(miri) { 30 } else { 20_000 };
        let q = Arc::new(heap::<u64>(8));
        let mut handles = Vec::new();
        for t in 0..3u64 {
            let mut p = q.producer().unwrap();
            handles.push(std::thread::spawn(move || {
                for i in 0..per {
                    p.push((t << 32) | i).unwrap();
                }
                Vec::new()
            }));
        }
        for _ in 0..2 {
            let mut c = q.consumer().unwrap();
            handles.push(std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(v) = c.pop() {
                    got.push(v);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            let got = h.join().unwrap();
            // Each consumer sees each producer's items in increasing order.
            let mut last = [None::<u64>; 3];
            for &v in &got {
                let t = (v >> 32) as usize;
                assert!(last[t].is_none_or(|l| l < (v & 0xffff_ffff)));
                last[t] = Some(v & 0xffff_ffff);
            }
            all.extend(got);
        }
        all.sort_unstable();
        let want: Vec<u64> = (0..3u64)
            .flat_map(|t| (0..per).map(move |i| (t << 32) | i))
            .collect();
        assert_eq!(all, want);
    }

    /// A producer that died between claiming a slot and publishing it: a blocked consumer
    /// skips the slot, delivers what follows, then reports Disconnected.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn consumer_skips_slot_of_dead_claimer() {
        let name = SegmentName::unique();
        let q = MpmcQueue::<u64>::builder(&name)
            .capacity(4)
            .create()
            .unwrap();
        let mut c = q.consumer().unwrap();
        c.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(2)));
        let s = &q.shared;
        let ctl = s.ctl();
        // Forge a dead producer in slot 0 that claimed position 0 and died.
        let dead = shm_core::ProcessId::from_parts(0x7fff_fff0, 1).to_word();
        let r = role::claim(&ctl.producers, dead, &Prober::heap()).unwrap();
        ctl.producers[r.index].pending().store(1, Ordering::Relaxed);
        s.stamp(0).store(CLAIMED, Ordering::Release);
        // A live producer pushes two more items after it.
        let mut p = q.producer().unwrap();
        p.push(10).unwrap();
        p.push(11).unwrap();
        assert_eq!(q.len(), 3);
        assert_eq!(c.try_pop(), Err(TryPopError::Empty)); // stuck behind the dead claim
        assert_eq!(c.pop(), Ok(10));
        assert_eq!(q.skipped(), 1);
        assert_eq!(c.pop(), Ok(11));
        drop(p);
        assert_eq!(c.pop(), Err(PopError::Disconnected));
    }

    /// The same forged claim by a *live* process is never skipped: the consumer keeps
    /// waiting (here until its timeout).
    #[cfg_attr(miri, ignore)]
    #[test]
    fn consumer_does_not_skip_slot_of_live_claimer() {
        let name = SegmentName::unique();
        let q = MpmcQueue::<u64>::builder(&name)
            .capacity(4)
            .create()
            .unwrap();
        let mut c = q.consumer().unwrap();
        c.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(2)));
        let s = &q.shared;
        let ctl = s.ctl();
        let live = shm_core::ProcessId::current().to_word();
        let r = role::claim(&ctl.producers, live, &Prober::heap()).unwrap();
        ctl.producers[r.index].pending().store(1, Ordering::Relaxed);
        s.stamp(0).store(CLAIMED, Ordering::Release);
        let mut p = q.producer().unwrap();
        p.push(10).unwrap();
        assert_eq!(
            c.pop_timeout(Duration::from_millis(30)),
            Err(PopTimeoutError::Timeout)
        );
        assert_eq!(q.skipped(), 0);
        // The claimer "publishes": the consumer goes on.
        s.stamp(0).store(FULL, Ordering::Release);
        assert!(c.pop().is_ok());
        assert_eq!(c.pop(), Ok(10));
    }

    /// A consumer that died after taking a slot and before handing it on: a blocked producer
    /// recycles the slot.
    #[cfg_attr(miri, ignore)]
    #[test]
    fn producer_recycles_slot_of_dead_consumer() {
        let name = SegmentName::unique();
        let q = MpmcQueue::<u64>::builder(&name)
            .capacity(2)
            .create()
            .unwrap();
        let mut p = q.producer().unwrap();
        p.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(2)));
        let mut c = q.consumer().unwrap();
        p.push(1).unwrap();
        p.push(2).unwrap();
        let ctl = q.shared.ctl();
        // Forge: a dead consumer advanced head past position 0 and died holding it.
        let dead = shm_core::ProcessId::from_parts(0x7fff_fff0, 1).to_word();
        let r = role::claim(&ctl.consumers, dead, &Prober::heap()).unwrap();
        ctl.consumers[r.index].pending().store(1, Ordering::Relaxed);
        ctl.head.0.store(1, Ordering::Release);
        p.push_timeout(3, Duration::from_secs(10)).unwrap();
        assert_eq!(c.pop(), Ok(2));
        assert_eq!(c.pop(), Ok(3));
    }

    /// A stamp ahead of `head` (or of `tail`), or more than a lap behind, poisons the queue:
    /// `Corrupt` at once on every call, never `Empty`/`Full` forever.
    #[test]
    fn impossible_stamp_poisons_instead_of_wedging() {
        // Ahead of head.
        let (mut p, mut c) = channel::<u64>(4);
        p.push(1).unwrap();
        p.push(2).unwrap();
        assert_eq!(c.pop(), Ok(1));
        c.shared.stamp(1).store(4 * 9 + FULL, Ordering::Release);
        for _ in 0..3 {
            assert_eq!(c.try_pop(), Err(TryPopError::Corrupt));
            assert_eq!(c.pop(), Err(PopError::Corrupt));
            assert_eq!(p.try_push(3), Err(TryPushError::Corrupt(3)));
        }
        assert_eq!(c.pop_slice(&mut [0; 2]), 0);
        // Ahead of tail.
        let (mut p, mut c) = channel::<u64>(2);
        p.shared.stamp(0).store(4 * 40, Ordering::Release);
        assert_eq!(p.try_push(1), Err(TryPushError::Corrupt(1)));
        assert_eq!(c.pop(), Err(PopError::Corrupt));
        // More than one lap behind tail (a corrupt tail far ahead of the ring).
        let (mut p, _c) = channel::<u64>(2);
        p.shared.ctl().tail.0.store(u64::MAX, Ordering::Release);
        assert_eq!(
            p.push_timeout(1, Duration::from_secs(10)),
            Err(PushTimeoutError::Corrupt(1))
        );
    }

    /// A consumer's first pop before any producer attached waits (with its timeout).
    #[test]
    fn first_pop_before_any_producer_waits() {
        let q = heap::<u64>(2);
        let mut c = q.consumer().unwrap();
        assert_eq!(c.try_pop(), Err(TryPopError::Empty));
        assert_eq!(
            c.pop_timeout(Duration::from_millis(20)),
            Err(PopTimeoutError::Timeout)
        );
        let mut p = q.producer().unwrap();
        p.push(3).unwrap();
        drop(p);
        assert_eq!(c.pop(), Ok(3));
        assert_eq!(c.pop(), Err(PopError::Disconnected));
    }

    #[cfg_attr(miri, ignore)]
    #[test]
    fn segment_open_checks() {
        let name = SegmentName::unique();
        let q = MpmcQueue::<u32>::builder(&name)
            .capacity(8)
            .create()
            .unwrap();
        assert!(matches!(
            MpmcQueue::<u64>::builder(&name).open(),
            Err(OpenError::WrongLayout { .. })
        ));
        assert!(matches!(
            crate::SpscQueue::<u32>::builder(&name).open(),
            Err(OpenError::WrongKind { .. })
        ));
        let o = MpmcQueue::<u32>::builder(&name).open().unwrap();
        assert_eq!(o.capacity(), 8);
        let mut p = q.producer().unwrap();
        let mut c = o.consumer().unwrap();
        p.push(3).unwrap();
        assert_eq!(c.pop(), Ok(3));
        assert!(format!("{q:?}").contains("MpmcQueue"));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// Two producers, one consumer: each item exactly once.
    #[test]
    fn mpmc_two_producers() {
        loom::model(|| {
            let q = heap::<u32>(2);
            let mut c = q.consumer().unwrap();
            let mut ts = Vec::new();
            for v in [1u32, 2] {
                let mut p = q.producer().unwrap();
                ts.push(loom::thread::spawn(move || {
                    p.set_wait_strategy(WaitStrategy::sleep());
                    p.push(v).unwrap();
                }));
            }
            drop(q);
            c.set_wait_strategy(WaitStrategy::sleep());
            let mut got = vec![c.pop().unwrap(), c.pop().unwrap()];
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            for t in ts {
                t.join().unwrap();
            }
            assert_eq!(c.pop(), Err(PopError::Disconnected));
        });
    }

    /// A producer that claims a slot and dies (its role slot taken over, which resets its
    /// announcement) is skipped by the consumer's slow path; a live producer's claim racing
    /// with it never is (its push would fail).
    #[test]
    fn mpmc_abandoned_claim_skipped_live_claim_not() {
        loom::model(|| {
            let q = heap::<u32>(2);
            let shared = Arc::clone(&q.shared);
            let mut c = q.consumer().unwrap();
            let mut b = q.producer().unwrap();
            drop(q);
            let a = loom::thread::spawn(move || {
                let me = shared.me;
                let r = role::claim(&shared.ctl().producers, me, &shared.prober).unwrap();
                let claimed = matches!(shared.claim(r.index), Ok(Some(_)));
                role::release(&shared.ctl().producers, r.index, me);
                claimed
            });
            let tb = loom::thread::spawn(move || b.push(7).unwrap());
            let got = loop {
                match c.poll(true) {
                    Some(Ok(v)) => break v,
                    Some(Err(e)) => panic!("{e:?}"),
                    None => loom::thread::yield_now(),
                }
            };
            assert_eq!(got, 7);
            assert!(a.join().unwrap());
            tb.join().unwrap();
        });
    }

    /// One producer laps a ring of one slot while two consumers race for the items.
    #[test]
    fn mpmc_two_consumers_lap() {
        loom::model(|| {
            let q = heap::<u32>(1);
            let mut p = q.producer().unwrap();
            let mut ts = Vec::new();
            for _ in 0..2 {
                let mut c = q.consumer().unwrap();
                ts.push(loom::thread::spawn(move || c.try_pop().ok()));
            }
            drop(q);
            p.set_wait_strategy(WaitStrategy::sleep());
            p.push(1).unwrap();
            let _ = p.try_push(2);
            drop(p);
            let got: Vec<u32> = ts.into_iter().filter_map(|t| t.join().unwrap()).collect();
            // Never the same item twice, never an item out of order.
            assert!(got.len() <= 2);
            if got.len() == 2 {
                assert_ne!(got[0], got[1]);
            }
        });
    }
}
