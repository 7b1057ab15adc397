//! Queues of fixed-size elements over the one ring: [`Queue<T, P>`], its [`Builder`], and the
//! one family of endpoints [`Producer<T, P>`] and [`Consumer<T, P>`], for either protocol `P`
//! ([`Spsc`] or [`Mpmc`]). [`SpscQueue<T>`](crate::SpscQueue) and
//! [`MpmcQueue<T>`](crate::MpmcQueue) are `Queue<T, Spsc>` and `Queue<T, Mpmc>`; their
//! modules ([`spsc`](crate::spsc), [`mpmc`](crate::mpmc)) say what each protocol guarantees.
//!
//! SPSC endpoints also lend the ring's memory in place: [`Producer::write_chunk`] and
//! [`Consumer::read_chunk`] (rtrb's chunks), which move many elements with one index store.

use crate::error::{
    knob_methods, BadGeometry, Fail, Knobs, PopError, PopTimeoutError, PushError, PushTimeoutError,
    RoleError, TryPopError, TryPushError,
};
use crate::ring::{Geometry, Mpmc, Protocol, Ring, Rx, Spsc, Tx, Wait};
use crate::role::Prober;
use shm_core::{CreateError, Element, Home, OpenError, Segment, SegmentName, WaitStrategy};
use std::error::Error;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// A named queue of `T` in shared memory, with protocol `P` ([`Spsc`] or [`Mpmc`]); usually
/// written [`SpscQueue<T>`](crate::SpscQueue) or [`MpmcQueue<T>`](crate::MpmcQueue).
///
/// Made by [`builder`](Self::builder) (or [`heap`](Self::heap) for threads of one process);
/// hand out endpoints with [`producer`](Self::producer) and [`consumer`](Self::consumer). The
/// creator's queue (and every endpoint made from it) keeps the segment's name until the last of
/// them is dropped.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_queue::SpscQueue;
///
/// let name = SegmentName::unique();
/// let q = SpscQueue::<u32>::builder(&name).capacity(8).create()?;
/// let mut tx = q.producer()?;
/// // Another process would do this:
/// let opened = SpscQueue::<u32>::builder(&name).open()?;
/// let mut rx = opened.consumer()?;
/// tx.push(42)?;
/// assert_eq!(rx.pop()?, 42);
/// assert!(q.producer().is_err()); // one producer at a time
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
pub struct Queue<T: Element, P: Protocol> {
    ring: Arc<Ring>,
    strategy: WaitStrategy,
    _t: PhantomData<fn() -> (T, P)>,
}

impl<T: Element, P: Protocol> Clone for Queue<T, P> {
    fn clone(&self) -> Self {
        Queue {
            ring: Arc::clone(&self.ring),
            strategy: self.strategy,
            _t: PhantomData,
        }
    }
}

impl<T: Element, P: Protocol> Queue<T, P> {
    /// A builder for the queue named `name`.
    pub fn builder(name: &SegmentName) -> Builder<T, P> {
        Builder {
            name: name.clone(),
            capacity: None,
            knobs: Knobs::default(),
            spin_only: false,
            _t: PhantomData,
        }
    }

    /// A queue of `capacity` elements on the heap, for threads of one process: the same
    /// algorithm as in a segment (loom and miri run on it).
    ///
    /// # Panics
    ///
    /// If `capacity` is zero or too large to allocate.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shm_queue::MpmcQueue::<u64>::heap(4);
    /// let (mut a, mut b) = (q.producer()?, q.producer()?);
    /// a.push(1)?;
    /// b.push(2)?;
    /// let mut rx = q.consumer()?;
    /// assert_eq!((rx.pop()?, rx.pop()?), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heap(capacity: usize) -> Self {
        Self::heap_with(capacity, false)
    }

    pub(crate) fn heap_with(capacity: usize, spin_only: bool) -> Self {
        let geo = Geometry::fixed::<T>(P::FLAVOR, capacity as u64);
        match Ring::heap(geo, spin_only) {
            Ok(ring) => Queue {
                ring: Arc::new(ring),
                strategy: WaitStrategy::default(),
                _t: PhantomData,
            },
            Err(e) => panic!("a heap queue of capacity {capacity}: {e}"),
        }
    }

    /// A producer endpoint: claims a producer role (SPSC: the one; MPMC: one of
    /// [`MAX_ROLES`](crate::ring::MAX_ROLES)).
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if live processes (maybe this one) hold every producer role. A role
    /// held by a dead process is taken over.
    pub fn producer(&self) -> Result<Producer<T, P>, RoleError> {
        Ok(Producer {
            tx: Tx::attach(&self.ring, self.strategy)?,
            _t: PhantomData,
        })
    }

    /// A consumer endpoint: claims a consumer role.
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if live processes (maybe this one) hold every consumer role. A role
    /// held by a dead process is taken over.
    pub fn consumer(&self) -> Result<Consumer<T, P>, RoleError> {
        Ok(Consumer {
            rx: Rx::attach(&self.ring, self.strategy)?,
            _t: PhantomData,
        })
    }

    /// Items in the queue (exact when nobody pushes or pops meanwhile).
    pub fn len(&self) -> usize {
        self.ring.len() as usize
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full.
    pub fn is_full(&self) -> bool {
        self.ring.len() >= self.ring.capacity()
    }

    /// How many items fit.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// Closes the queue: later pushes fail with `Closed`, pops deliver what is left and then
    /// fail with `Closed`; blocked callers wake up. Closing cannot be undone.
    pub fn close(&self) {
        self.ring.close()
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }

    /// Whether the queue is poisoned: an index or stamp read from the segment could not be
    /// right, and every operation now fails with `Corrupt`.
    pub fn is_poisoned(&self) -> bool {
        self.ring.is_poisoned()
    }

    /// Positions passed over because their producer died between taking the position and
    /// publishing the item (MPMC; always 0 for SPSC, whose dead producer never published).
    pub fn skipped(&self) -> u64 {
        self.ring.skipped()
    }

    /// The segment, if the queue lives in one (not for [`heap`](Self::heap) queues).
    pub fn segment(&self) -> Option<&Segment> {
        self.ring.segment()
    }

    /// Whether the queue is busy-poll-only (see [`Builder::busy_poll_only`]).
    pub fn is_busy_poll_only(&self) -> bool {
        self.ring.is_busy_poll_only()
    }

    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }

    /// A heap queue whose liveness answers come from `prober` (tests inject deaths).
    #[cfg(test)]
    pub(crate) fn heap_probed(capacity: usize, prober: Prober) -> Self {
        let geo = Geometry::fixed::<T>(P::FLAVOR, capacity as u64);
        let ring = Ring::heap_probed(geo, false, prober).expect("a valid test geometry");
        Queue {
            ring: Arc::new(ring),
            strategy: WaitStrategy::default(),
            _t: PhantomData,
        }
    }
}

impl<T: Element, P: Protocol> fmt::Debug for Queue<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(P::QUEUE)
            .field("name", &self.segment().map(|s| s.name().as_str()))
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Builds a [`Queue`]: create, open, or open-or-create by name.
#[must_use]
pub struct Builder<T, P> {
    name: SegmentName,
    capacity: Option<u64>,
    knobs: Knobs,
    spin_only: bool,
    _t: PhantomData<fn() -> (T, P)>,
}

impl<T, P: Protocol> fmt::Debug for Builder<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("protocol", &P::FLAVOR)
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<T: Element, P: Protocol> Builder<T, P> {
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
    /// exchange pushes and pops skip the wake-up protocol. For endpoints that own a core each.
    /// Ignored by `open`.
    pub fn busy_poll_only(mut self) -> Self {
        self.spin_only = true;
        self
    }

    fn segment(&self) -> shm_core::SegmentBuilder {
        let mut b = Segment::builder(&self.name, P::KIND)
            .layout(T::LAYOUT)
            .param(u64::from(self.spin_only));
        if let Some(c) = self.capacity {
            b = b.count(c);
        }
        self.knobs.apply(b)
    }

    fn geometry(&self) -> Result<(Geometry, usize), BadGeometry> {
        let geo = Geometry::fixed::<T>(P::FLAVOR, self.capacity.unwrap_or(0));
        Ok((geo, geo.body_len()?))
    }

    /// Creates the queue (the name must be free).
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] without a capacity of at least 1, or one too large;
    /// the segment's errors (the name is taken, OS errors).
    pub fn create(self) -> Result<Queue<T, P>, CreateError> {
        let (geo, len) = self.geometry()?;
        let seg = self.segment().body_len(len).create(|p, _| {
            // SAFETY: a fresh body of `len` bytes (the geometry's), 128-byte aligned, nobody
            // else yet.
            unsafe { Ring::init(p, &geo) }
        })?;
        self.wrap(seg).map_err(|e| CreateError::Invalid {
            reason: e.to_string(),
        })
    }

    /// Opens an existing queue, checking its kind and element layout, and adopting its
    /// capacity (checked if this builder was given one) and busy-poll-only flag.
    ///
    /// # Errors
    ///
    /// The segment's errors (missing, another kind or element type, `WrongCount` for another
    /// capacity, …); [`OpenError::CorruptBody`] for a header whose geometry cannot be right.
    pub fn open(self) -> Result<Queue<T, P>, OpenError> {
        let seg = self.segment().open()?;
        self.wrap(seg)
    }

    /// Opens the queue, or creates it if there is none (race-free; see
    /// [`Segment::is_creator`] through [`Queue::segment`]).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`OpenError::InvalidParameter`] for a capacity that could not
    /// be created; [`OpenError::Create`] if creating failed.
    pub fn open_or_create(self) -> Result<Queue<T, P>, OpenError> {
        let (geo, len) = self.geometry()?;
        let seg = self.segment().body_len(len).open_or_create(|p, _| {
            // SAFETY: a fresh body of `len` bytes (the geometry's), 128-byte aligned, nobody
            // else yet.
            unsafe { Ring::init(p, &geo) }
        })?;
        self.wrap(seg)
    }

    fn wrap(&self, seg: Segment) -> Result<Queue<T, P>, OpenError> {
        let geo = Geometry::opened(&seg, 0, |cap| Geometry::fixed::<T>(P::FLAVOR, cap))?;
        // The creator's choice, whatever this builder said (bit 0 of the header's param).
        let spin_only = seg.header().param() & 1 != 0;
        let ring = Ring::attach(
            Arc::new(Home::Segment(seg)),
            0,
            geo,
            Prober::os(),
            spin_only,
        )
        .map_err(|detail| OpenError::CorruptBody {
            what: "ring",
            detail,
        })?;
        Ok(Queue {
            ring: Arc::new(ring),
            strategy: self.knobs.strategy,
            _t: PhantomData,
        })
    }
}

/// The methods every endpoint of a [`Queue`] has, over its ring end `$end`.
macro_rules! endpoint_methods {
    ($end:ident) => {
        /// Items in the queue.
        pub fn len(&self) -> usize {
            self.$end.ring().len() as usize
        }

        /// Whether the queue is empty.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Whether the queue is full.
        pub fn is_full(&self) -> bool {
            self.$end.ring().len() >= self.$end.ring().capacity()
        }

        /// How many items fit.
        pub fn capacity(&self) -> usize {
            self.$end.ring().capacity() as usize
        }

        /// Closes the queue (see [`Queue::close`]).
        pub fn close(&self) {
            self.$end.ring().close()
        }

        /// Whether the queue was closed.
        pub fn is_closed(&self) -> bool {
            self.$end.ring().is_closed()
        }

        #[allow(dead_code)]
        pub(crate) fn ring(&self) -> &Ring {
            self.$end.ring()
        }

        #[allow(dead_code)]
        pub(crate) fn ring_arc(&self) -> &Arc<Ring> {
            self.$end.arc()
        }
    };
}

/// A producer endpoint of a [`Queue`]: [`spsc::Producer<T>`](crate::spsc::Producer) or
/// [`mpmc::Producer<T>`](crate::mpmc::Producer). Releases its role on drop. `Send`, not
/// `Sync`: one operation at a time.
#[must_use = "dropping the producer releases the role at once"]
pub struct Producer<T: Element, P: Protocol> {
    tx: Tx,
    _t: PhantomData<fn(T) -> P>,
}

impl<T: Element, P: Protocol> Producer<T, P> {
    /// Sets how blocked pushes wait (default: the queue's, [`WaitStrategy::default`]: spin,
    /// then sleep).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.tx.set_wait_strategy(strategy);
    }

    /// Pushes without waiting.
    ///
    /// # Errors
    ///
    /// [`TryPushError`], with the item: `Full`, `Closed`, `Disconnected` (full and every
    /// consumer dropped its handle), `Corrupt`.
    #[inline(always)]
    pub fn try_push(&mut self, value: T) -> Result<(), TryPushError<T>> {
        self.tx
            .push_in(P::FLAVOR, value, Wait::No)
            .map_err(|(f, v)| TryPushError::from_fail(f, v))
    }

    /// Pushes, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`PushError`], with the item: `Closed`, `Disconnected` (the queue is full and every
    /// consumer dropped its handle or died), `Corrupt`.
    #[inline(always)]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        self.tx
            .push_in(P::FLAVOR, value, Wait::For(None))
            .map_err(|(f, v)| PushError::from_fail(f, v))
    }

    /// Pushes, waiting up to `timeout` while the queue is full. The clock is read only once
    /// the queue is found full.
    ///
    /// # Errors
    ///
    /// [`PushTimeoutError`]: as [`push`](Self::push), and `Timeout`.
    #[inline]
    pub fn push_timeout(&mut self, value: T, timeout: Duration) -> Result<(), PushTimeoutError<T>> {
        self.tx
            .push_in(P::FLAVOR, value, Wait::For(Some(timeout)))
            .map_err(|(f, v)| PushTimeoutError::from_fail(f, v))
    }

    /// Pushes as many items of `items` as fit, in order, without waiting; returns how many. A
    /// closed or poisoned queue takes none. SPSC: one index store for the whole batch.
    pub fn push_slice(&mut self, items: &[T]) -> usize {
        self.tx.push_slice(items)
    }

    endpoint_methods!(tx);
}

impl<T: Element> Producer<T, Mpmc> {
    /// Another producer endpoint of the same queue (another role).
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if every producer role is held by a live process.
    pub fn try_clone(&self) -> Result<Producer<T, Mpmc>, RoleError> {
        let ring = Arc::clone(self.tx.arc());
        Ok(Producer {
            tx: Tx::attach(&ring, self.tx.strategy())?,
            _t: PhantomData,
        })
    }

    /// Test hook: takes a position and never publishes it, as a producer killed inside `push`
    /// leaves it. Returns whether a position was taken.
    #[cfg(any(test, feature = "test-hooks"))]
    #[doc(hidden)]
    pub fn claim_and_abandon_for_test(&mut self) -> bool {
        self.tx.claim(Wait::No).is_ok()
    }
}

impl<T: Element, P: Protocol> fmt::Debug for Producer<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(P::PRODUCER)
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// A consumer endpoint of a [`Queue`]: [`spsc::Consumer<T>`](crate::spsc::Consumer) or
/// [`mpmc::Consumer<T>`](crate::mpmc::Consumer). Releases its role on drop. `Send`, not
/// `Sync`: one operation at a time.
#[must_use = "dropping the consumer releases the role at once"]
pub struct Consumer<T: Element, P: Protocol> {
    rx: Rx,
    _t: PhantomData<fn() -> (T, P)>,
}

impl<T: Element, P: Protocol> Consumer<T, P> {
    /// Sets how blocked pops wait (default: the queue's, [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.rx.set_wait_strategy(strategy);
    }

    /// Pops without waiting.
    ///
    /// # Errors
    ///
    /// [`TryPopError`]: `Empty`; `Closed` once a closed queue is drained; `Disconnected` once
    /// the queue is drained and every producer has dropped its handle (a producer that *died*
    /// is only noticed by the blocking forms); `Corrupt`.
    #[inline(always)]
    pub fn try_pop(&mut self) -> Result<T, TryPopError> {
        self.rx
            .pop_in(P::FLAVOR, Wait::No)
            .map_err(TryPopError::from_fail)
    }

    /// Pops, waiting while the queue is empty. A queue no producer has attached to yet is
    /// waited on, too.
    ///
    /// # Errors
    ///
    /// [`PopError`]: `Closed` or `Disconnected` (every producer that attached dropped its
    /// handle or died), each only once the queue is drained; `Corrupt`.
    #[inline(always)]
    pub fn pop(&mut self) -> Result<T, PopError> {
        self.rx
            .pop_in(P::FLAVOR, Wait::For(None))
            .map_err(PopError::from_fail)
    }

    /// Pops, waiting up to `timeout` while the queue is empty. The clock is read only once the
    /// queue is found empty.
    ///
    /// # Errors
    ///
    /// [`PopTimeoutError`]: as [`pop`](Self::pop), and `Timeout`.
    #[inline]
    pub fn pop_timeout(&mut self, timeout: Duration) -> Result<T, PopTimeoutError> {
        self.rx
            .pop_in(P::FLAVOR, Wait::For(Some(timeout)))
            .map_err(PopTimeoutError::from_fail)
    }

    /// Pops up to `out.len()` items into `out`, in order, without waiting; returns how many.
    /// SPSC: one index store for the whole batch.
    pub fn pop_slice(&mut self, out: &mut [T]) -> usize {
        self.rx.pop_slice(out)
    }

    endpoint_methods!(rx);

    /// Test hook: writes an impossible index or stamp, as a process scribbling over the
    /// segment would. SPSC: 0, `tail = u64::MAX`; 1, `head` one past `tail`; otherwise `tail`
    /// more than the capacity past `head`. MPMC: 0, the stamp at `head` two laps ahead; 1,
    /// `tail = u64::MAX`; otherwise the stamp at `tail` more than a lap behind.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn forge_index(&self, what: u8) {
        let ring = self.rx.ring();
        let (head, tail) = ring.positions();
        let cap = ring.capacity();
        use crate::ring::Flavor;
        match (P::FLAVOR, what) {
            (Flavor::Spsc, 0) | (Flavor::Mpmc, 1) => ring.forge_index(0, u64::MAX),
            (Flavor::Spsc, 1) => ring.forge_index(1, tail.wrapping_add(1)),
            (Flavor::Spsc, _) => ring.forge_index(0, head.wrapping_add(cap).wrapping_add(1)),
            (Flavor::Mpmc, 0) => {
                ring.forge_stamp(head, head.wrapping_add(2 * cap).wrapping_mul(2) + 1)
            }
            (Flavor::Mpmc, _) => {
                ring.forge_stamp(tail, tail.wrapping_sub(3 * cap).wrapping_mul(2) + 1)
            }
        }
    }
}

impl<T: Element, P: Protocol> fmt::Debug for Consumer<T, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(P::CONSUMER)
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T: Element> Consumer<T, Mpmc> {
    /// Another consumer endpoint of the same queue (another role).
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if every consumer role is held by a live process.
    pub fn try_clone(&self) -> Result<Consumer<T, Mpmc>, RoleError> {
        let ring = Arc::clone(self.rx.arc());
        Ok(Consumer {
            rx: Rx::attach(&ring, self.rx.strategy())?,
            _t: PhantomData,
        })
    }
}

/// Why a chunk could not be lent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Fewer slots than asked for are free (writing) or ready (reading): this many.
    TooFew {
        /// Slots free or ready now.
        available: usize,
    },
    /// The queue is closed (and, reading, drained).
    Closed,
    /// The queue is poisoned: its shared state is corrupt.
    Corrupt,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::TooFew { available } => {
                write!(f, "only {available} slots are available for the chunk")
            }
            ChunkError::Closed => f.write_str("chunk of a closed queue"),
            ChunkError::Corrupt => {
                f.write_str("chunk of a poisoned queue: its shared state is corrupt")
            }
        }
    }
}

impl Error for ChunkError {}

impl ChunkError {
    fn from_fail(f: Fail) -> ChunkError {
        match f {
            Fail::Closed => ChunkError::Closed,
            _ => ChunkError::Corrupt,
        }
    }
}

impl<T: Element> Producer<T, Spsc> {
    /// Free slots now (a fresh look at the consumer's index when the cached one says fewer than
    /// the capacity).
    pub fn slots(&mut self) -> usize {
        self.tx
            .free_run(self.tx.ring().capacity())
            .map_or(0, |(_, n)| n as usize)
    }

    /// Lends the next `n` free slots for writing in place: fill them through
    /// [`WriteChunk::as_mut_slices`], then [`commit`](WriteChunk::commit) how many to publish
    /// (one index store for all). Dropping the chunk publishes nothing. rtrb's `write_chunk`.
    ///
    /// # Errors
    ///
    /// [`ChunkError::TooFew`] if fewer than `n` slots are free (nothing is lent: ask for
    /// `available`), `Closed`, `Corrupt`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut tx, mut rx) = shm_queue::spsc::channel::<u32>(4);
    /// let mut chunk = tx.write_chunk(3)?;
    /// let (a, b) = chunk.as_mut_slices();
    /// for (i, v) in a.iter_mut().chain(b.iter_mut()).enumerate() {
    ///     *v = i as u32 * 10;
    /// }
    /// chunk.commit_all();
    /// assert_eq!(rx.pop()?, 0);
    /// let chunk = rx.read_chunk(2)?;
    /// let (a, b) = chunk.as_slices();
    /// assert_eq!([a, b].concat(), [10, 20]);
    /// chunk.commit_all();
    /// assert!(rx.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_chunk(&mut self, n: usize) -> Result<WriteChunk<'_, T>, ChunkError> {
        let (pos, free) = self.tx.free_run(n as u64).map_err(ChunkError::from_fail)?;
        if (free as usize) < n {
            return Err(ChunkError::TooFew {
                available: free as usize,
            });
        }
        Ok(WriteChunk {
            tx: &self.tx,
            pos,
            len: n,
            _t: PhantomData,
        })
    }
}

impl<T: Element> Consumer<T, Spsc> {
    /// Items ready now (a fresh look at the producer's index when the cached one says none).
    pub fn slots(&mut self) -> usize {
        self.rx
            .ready_run(self.rx.ring().capacity())
            .map_or(0, |(_, n)| n as usize)
    }

    /// Lends the next `n` published items for reading in place: read them through
    /// [`ReadChunk::as_slices`], then [`commit`](ReadChunk::commit) how many to consume (one
    /// index store for all). Dropping the chunk consumes nothing. rtrb's `read_chunk`.
    ///
    /// # Errors
    ///
    /// [`ChunkError::TooFew`] if fewer than `n` items are ready (nothing is lent: ask for
    /// `available`); `Closed` if the queue is closed and nothing is left; `Corrupt`.
    pub fn read_chunk(&mut self, n: usize) -> Result<ReadChunk<'_, T>, ChunkError> {
        let (pos, ready) = self.rx.ready_run(n as u64).map_err(ChunkError::from_fail)?;
        if (ready as usize) < n {
            if ready == 0 && self.rx.ring().is_closed() {
                // Closed, and nothing was published before the close: re-check, since an item
                // may have landed between the two reads.
                if self.rx.ready_run(1).map_or(0, |(_, k)| k) == 0 {
                    return Err(ChunkError::Closed);
                }
            }
            return Err(ChunkError::TooFew {
                available: ready as usize,
            });
        }
        Ok(ReadChunk {
            rx: &self.rx,
            pos,
            len: n,
            _t: PhantomData,
        })
    }
}

/// The two runs of `len` slots from `pos` (the second non-empty when they wrap).
fn runs(ring: &Ring, pos: u64, len: usize) -> ((*mut u8, usize), (*mut u8, usize)) {
    let cap = ring.capacity() as usize;
    let start = ring.index_of(pos);
    let first = len.min(cap - start);
    let at = ring.payload(pos).as_ptr();
    let base = ring.payload(pos.wrapping_sub(start as u64)).as_ptr();
    ((at, first), (base, len - first))
}

/// Free slots of an SPSC queue lent for writing in place (see [`Producer::write_chunk`]).
/// Nothing is published until [`commit`](Self::commit).
#[must_use = "a chunk publishes nothing unless committed"]
pub struct WriteChunk<'a, T: Element> {
    tx: &'a Tx,
    pos: u64,
    len: usize,
    _t: PhantomData<&'a mut [T]>,
}

impl<T: Element> WriteChunk<'_, T> {
    /// The slots, as two slices (the second non-empty when the chunk wraps around the end of
    /// the ring). They hold whatever was there before: overwrite what you commit.
    pub fn as_mut_slices(&mut self) -> (&mut [T], &mut [T]) {
        let ((a, n), (b, m)) = runs(self.tx.ring(), self.pos, self.len);
        // SAFETY: the slots are free and ours: the consumer reads none of them before we
        // publish the tail, and no other producer exists (the role); they are contiguous,
        // aligned `T`s (an SPSC element ring), and `T: Element` is valid for any bytes. The
        // two runs do not overlap (n + m = len <= cap), and `&mut self` keeps them unique.
        unsafe {
            (
                std::slice::from_raw_parts_mut(a.cast::<T>(), n),
                std::slice::from_raw_parts_mut(b.cast::<T>(), m),
            )
        }
    }

    /// Slots in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chunk has no slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Publishes the first `n` slots (at most the chunk's length), in one index store.
    pub fn commit(self, n: usize) {
        self.tx.commit_run(n.min(self.len) as u64);
    }

    /// Publishes every slot of the chunk.
    pub fn commit_all(self) {
        let n = self.len;
        self.commit(n)
    }
}

impl<T: Element> fmt::Debug for WriteChunk<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteChunk")
            .field("len", &self.len)
            .finish()
    }
}

/// Published items of an SPSC queue lent for reading in place (see
/// [`Consumer::read_chunk`]). Nothing is consumed until [`commit`](Self::commit).
#[must_use = "a chunk consumes nothing unless committed"]
pub struct ReadChunk<'a, T: Element> {
    rx: &'a Rx,
    pos: u64,
    len: usize,
    _t: PhantomData<&'a [T]>,
}

impl<T: Element> ReadChunk<'_, T> {
    /// The items, in order, as two slices (the second non-empty when the chunk wraps).
    pub fn as_slices(&self) -> (&[T], &[T]) {
        let ((a, n), (b, m)) = runs(self.rx.ring(), self.pos, self.len);
        // SAFETY: the items are published (their writes acquired with the tail) and ours: the
        // producer writes none of these slots before we publish a head past them, and no other
        // consumer exists (the role); contiguous, aligned, initialised `T`s.
        unsafe {
            (
                std::slice::from_raw_parts(a.cast::<T>().cast_const(), n),
                std::slice::from_raw_parts(b.cast::<T>().cast_const(), m),
            )
        }
    }

    /// Items in the chunk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the chunk has no items.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Consumes the first `n` items (at most the chunk's length), in one index store.
    pub fn commit(self, n: usize) {
        self.rx.release_run(n.min(self.len) as u64);
    }

    /// Consumes every item of the chunk.
    pub fn commit_all(self) {
        let n = self.len;
        self.commit(n)
    }
}

impl<T: Element> fmt::Debug for ReadChunk<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadChunk").field("len", &self.len).finish()
    }
}

/// A producer and a consumer of a fresh heap queue.
pub(crate) fn heap_pair<T: Element, P: Protocol>(
    capacity: usize,
    spin_only: bool,
) -> (Producer<T, P>, Consumer<T, P>) {
    let q = Queue::<T, P>::heap_with(capacity, spin_only);
    let (Ok(p), Ok(c)) = (q.producer(), q.consumer()) else {
        unreachable!("a fresh heap queue has free roles")
    };
    (p, c)
}
