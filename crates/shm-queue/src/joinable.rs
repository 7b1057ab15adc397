//! `JoinableQueue`: an MPMC byte-message queue that counts unfinished tasks.
//!
//! Python's `JoinableQueue`, with the queues' verbs (Python's `put`/`get` are
//! [`JoinableProducer::push`]/[`JoinableConsumer::pop`], searchable by those names): every push
//! adds an unfinished task, a consumer calls
//! [`JoinableQueue::task_done`] once per item it took and finished, and
//! [`JoinableQueue::join`] waits until every item ever put has been marked done.
//! `task_done` called more times than items were taken is an error
//! ([`TaskDoneError::TooManyCalls`]), not a silently negative count.
//!
//! One segment (`ObjectKind::JoinableQueue`; `count` = capacity, `param` = maximum message
//! length) holds a 128-byte counter line followed by an MPMC byte ring ([`crate::bytes`]):
//!
//! | word | meaning |
//! |---|---|
//! | `done` | how many times `task_done` succeeded (only grows) |
//! | `taken` | items popped and not yet marked done (bounds `task_done`) |
//! | `event` | eventcount that `join` sleeps on; notified by every `task_done` |
//!
//! # The count of unfinished items, and producers that die
//!
//! No counter is raised by `push`: an item counts from the moment it is committed to the ring,
//! so a producer killed anywhere inside `push` can never leave a count without an item behind
//! it. `join` returns once, read in this order, `done`, the ring's count of positions
//! skipped because their producer died mid-push, `head` and `tail` satisfy
//! `tail == head` (every position claimed by a producer was taken or skipped) and
//! `done + skipped == head` (every item taken was marked done). A producer that died between
//! claiming a position and publishing it is skipped by a blocked consumer or by `join`
//! itself, once per sleep slice. (An item whose producer died mid-`push` is never delivered:
//! `push` had not returned.)
//!
//! A consumer that dies between taking an item and calling `task_done` leaves the item
//! unfinished: `join` then waits forever, so cross-process code should prefer
//! [`join_timeout`](JoinableQueue::join_timeout). A poisoned ring (see [`crate::bytes`]) can
//! never be joined: [`join`](JoinableQueue::join) reports it.
//!
//! # Examples
//!
//! ```
//! use shm_queue::joinable::{JoinTimeoutError, JoinableQueue, TaskDoneError};
//! use std::time::Duration;
//!
//! let q = JoinableQueue::heap(4, 32)?;
//! let (tx, rx) = (q.producer()?, q.consumer()?);
//! tx.push(b"job".as_slice()).unwrap();
//! assert_eq!(q.join_timeout(Duration::from_millis(1)), Err(JoinTimeoutError::Timeout));
//! assert_eq!(rx.pop().unwrap(), b"job");
//! q.task_done().unwrap();
//! assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
//! q.join()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::bytes::{
    narrow_pop, pop_msg, push_msg, AnyPopError, AnyPushError, BytesPushError,
    BytesPushTimeoutError, BytesTryPushError, MAX_MESSAGE_LIMIT,
};
use crate::error::{
    corrupt_geometry, knob_methods, BadGeometry, Knobs, PopError, PopTimeoutError, RoleError,
    TryPopError,
};
use crate::ring::{Dest, Flavor, Geometry, Ring, Rx, Tx, Wait};
use crate::role::Prober;
use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::sync::Poll;
use shm_core::{
    CreateError, Deadline, EventCount, Home, ObjectKind, OpenError, Segment, SegmentName,
    WaitStrategy,
};
use std::error::Error;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

/// The counter line at the start of the body.
#[repr(C, align(128))]
struct Counters {
    done: AtomicU64,
    taken: AtomicU64,
    event: EventCount,
}

/// Offset of the ring.
const RING_OFFSET: usize = std::mem::size_of::<Counters>();

#[cfg(not(loom))]
const _: () = assert!(RING_OFFSET == 128);

/// `task_done` was called more often than items were taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskDoneError {
    /// Every item taken has already been marked done.
    TooManyCalls,
}

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done() called more times than items were taken")
    }
}

impl Error for TaskDoneError {}

/// Why [`JoinableQueue::join`] returned without every item done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// The queue is poisoned (its shared state is corrupt): it can never be joined.
    Corrupt,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("join on a poisoned queue: its shared state is corrupt")
    }
}

impl Error for JoinError {}

/// Why [`JoinableQueue::join_timeout`] returned without every item done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinTimeoutError {
    /// Items were still unfinished at the timeout.
    Timeout,
    /// The queue is poisoned (its shared state is corrupt): it can never be joined.
    Corrupt,
}

impl fmt::Display for JoinTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JoinTimeoutError::Timeout => "join timed out: items are still unfinished",
            JoinTimeoutError::Corrupt => "join on a poisoned queue: its shared state is corrupt",
        })
    }
}

impl Error for JoinTimeoutError {}

#[derive(Debug)]
struct Shared {
    /// The ring; it keeps the memory (the home) alive.
    ring: Arc<Ring>,
    counters: NonNull<Counters>,
}

// SAFETY: `counters` points into the ring's home, which lives as long as the ring (held
// here); it is atomics only.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    fn counters(&self) -> &Counters {
        // SAFETY: written by init at the start of the body (which Ring::attach checked is
        // larger than RING_OFFSET); atomics only; the ring keeps the home alive.
        unsafe { self.counters.as_ref() }
    }
}

/// A joinable MPMC queue of byte messages. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct JoinableQueue {
    shared: Arc<Shared>,
    strategy: WaitStrategy,
}

/// Builds a [`JoinableQueue`] in a named segment.
#[derive(Debug, Clone)]
#[must_use]
pub struct JoinableQueueBuilder {
    name: SegmentName,
    capacity: u64,
    max_message: usize,
    knobs: Knobs,
}

impl JoinableQueueBuilder {
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

    fn segment(&self) -> shm_core::SegmentBuilder {
        self.knobs.apply(
            Segment::builder(&self.name, ObjectKind::JoinableQueue)
                .count(self.capacity)
                .param(self.max_message as u64),
        )
    }

    /// Creates the queue; its handle unlinks the name on drop.
    ///
    /// # Errors
    ///
    /// [`CreateError::InvalidParameter`] for an impossible geometry; the segment's errors.
    pub fn create(self) -> Result<JoinableQueue, CreateError> {
        let (cap, max) = (self.capacity, self.max_message);
        let len = body_len(cap, max)?;
        let seg = self
            .segment()
            .body_len(len)
            // SAFETY: the unpublished body is 128-aligned and `len` bytes long.
            .create(|body, _| unsafe { init(body, cap, max) })?;
        JoinableQueue::from_home(Home::Segment(seg), cap, max, Prober::os(), self.knobs)
            .map_err(|reason| CreateError::Invalid { reason })
    }

    /// Opens an existing queue, adopting its capacity and maximum message.
    ///
    /// # Errors
    ///
    /// The segment's errors; [`OpenError::CorruptBody`] for a geometry that does not fit the
    /// body.
    pub fn open(self) -> Result<JoinableQueue, OpenError> {
        let seg = self
            .knobs
            .apply(Segment::builder(&self.name, ObjectKind::JoinableQueue))
            .open()?;
        Self::adopt(seg, self.knobs)
    }

    /// Opens the queue, or creates it with this builder's geometry if there is none.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`OpenError::InvalidParameter`] for a geometry that could not
    /// be created.
    pub fn open_or_create(self) -> Result<JoinableQueue, OpenError> {
        let (cap, max) = (self.capacity, self.max_message);
        let len = body_len(cap, max)?;
        let seg = self
            .segment()
            .body_len(len)
            // SAFETY: the unpublished body is 128-aligned and `len` bytes long.
            .open_or_create(|body, _| unsafe { init(body, cap, max) })?;
        Self::adopt(seg, self.knobs)
    }

    fn adopt(seg: Segment, knobs: Knobs) -> Result<JoinableQueue, OpenError> {
        let cap = seg.header().count();
        let param = seg.header().param();
        let max = usize::try_from(param)
            .ok()
            .filter(|&m| m <= MAX_MESSAGE_LIMIT)
            .ok_or_else(|| {
                corrupt_geometry("max_message", format!("the header records {param} bytes"))
            })?;
        JoinableQueue::from_home(Home::Segment(seg), cap, max, Prober::os(), knobs)
            .map_err(|detail| corrupt_geometry("body", detail))
    }
}

/// The ring's geometry.
fn geometry(cap: u64, max: usize) -> Geometry {
    Geometry::bytes(Flavor::Mpmc, cap, max)
}

fn body_len(cap: u64, max: usize) -> Result<usize, BadGeometry> {
    geometry(cap, max)
        .body_len()?
        .checked_add(RING_OFFSET)
        .ok_or(BadGeometry::TooLarge { capacity: cap })
}

/// Writes the counters and the ring.
///
/// # Safety
///
/// `base` is 128-aligned, valid for `body_len(cap, max)` bytes, used by nobody else meanwhile.
unsafe fn init(base: NonNull<u8>, cap: u64, max: usize) {
    let c = Counters {
        done: AtomicU64::new(0),
        taken: AtomicU64::new(0),
        event: EventCount::new(),
    };
    // SAFETY: the counters fit at the aligned start.
    unsafe { base.cast::<Counters>().as_ptr().write(c) };
    // SAFETY: the ring follows at RING_OFFSET (128-aligned), in bounds.
    unsafe { Ring::init(base.add(RING_OFFSET), &geometry(cap, max)) };
}

impl JoinableQueue {
    /// A builder for the queue named `name`.
    pub fn builder(name: &SegmentName) -> JoinableQueueBuilder {
        JoinableQueueBuilder {
            name: name.clone(),
            capacity: 64,
            max_message: 4096,
            knobs: Knobs::default(),
        }
    }

    /// A queue on the heap (this process only).
    ///
    /// # Errors
    ///
    /// As [`JoinableQueueBuilder::create`] for the geometry.
    pub fn heap(capacity: u64, max_message: usize) -> Result<JoinableQueue, CreateError> {
        let len = body_len(capacity, max_message)?;
        let home = Home::heap(len);
        // SAFETY: fresh zeroed 128-aligned block of `len` bytes.
        unsafe { init(home.as_ptr(), capacity, max_message) };
        JoinableQueue::from_home(
            home,
            capacity,
            max_message,
            Prober::heap(),
            Knobs::default(),
        )
        .map_err(|reason| CreateError::Invalid { reason })
    }

    fn from_home(
        home: Home,
        cap: u64,
        max: usize,
        prober: Prober,
        knobs: Knobs,
    ) -> Result<JoinableQueue, String> {
        let counters = home.as_ptr().cast::<Counters>();
        let ring = Ring::attach(
            Arc::new(home),
            RING_OFFSET,
            geometry(cap, max),
            prober,
            false,
        )?;
        Ok(JoinableQueue {
            shared: Arc::new(Shared {
                ring: Arc::new(ring),
                counters,
            }),
            strategy: knobs.strategy,
        })
    }

    /// Claims a producer role (one of [`MAX_ROLES`](crate::ring::MAX_ROLES)).
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if every producer slot is held by a live process.
    pub fn producer(&self) -> Result<JoinableProducer, RoleError> {
        Ok(JoinableProducer {
            tx: Tx::attach(&self.shared.ring, self.strategy)?,
        })
    }

    /// Claims a consumer role (one of [`MAX_ROLES`](crate::ring::MAX_ROLES)).
    ///
    /// # Errors
    ///
    /// [`RoleError::Busy`] if every consumer slot is held by a live process.
    pub fn consumer(&self) -> Result<JoinableConsumer, RoleError> {
        Ok(JoinableConsumer {
            shared: self.shared.clone(),
            rx: Rx::attach(&self.shared.ring, self.strategy)?,
        })
    }

    /// Marks one taken item as finished (from any process).
    ///
    /// "Taken" is counted right after a pop returns its item, so a `task_done` for that item
    /// in another process, racing with the pop, may be refused; call it after the pop.
    ///
    /// # Errors
    ///
    /// [`TaskDoneError::TooManyCalls`] if every item taken so far was already marked done.
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        let c = self.shared.counters();
        // `taken` first, then `done`: a process killed in between leaves `join` waiting (the
        // safe side), never returning early.
        c.taken
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(1))
            .map_err(|_| TaskDoneError::TooManyCalls)?;
        c.done.fetch_add(1, Ordering::AcqRel);
        c.event.notify_all();
        Ok(())
    }

    /// Whether every item put has been marked done (see the [module docs](self) for the rule
    /// and the order of the reads).
    fn finished(&self) -> bool {
        let done = self.shared.counters().done.load(Ordering::Acquire);
        let skipped = self.shared.ring.skipped();
        let (head, tail) = self.shared.ring.positions();
        tail == head && done.wrapping_add(skipped) == head
    }

    /// Waits until every item put has been marked done (Python's `join`).
    ///
    /// # Errors
    ///
    /// [`JoinError::Corrupt`] if the queue is poisoned.
    pub fn join(&self) -> Result<(), JoinError> {
        self.join_within(None).unwrap_or(Ok(()))
    }

    /// Waits at most `timeout` until every item put has been marked done.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] if items are still unfinished then;
    /// [`JoinTimeoutError::Corrupt`] if the queue is poisoned.
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        match self.join_within(Some(timeout)) {
            Some(Ok(())) => Ok(()),
            Some(Err(JoinError::Corrupt)) => Err(JoinTimeoutError::Corrupt),
            None => Err(JoinTimeoutError::Timeout),
        }
    }

    /// `None` on timeout. The clock is read only if not everything is done at once.
    fn join_within(&self, timeout: Option<Duration>) -> Option<Result<(), JoinError>> {
        let ring = &self.shared.ring;
        let ready = |p: Poll| {
            if ring.is_poisoned() {
                return Some(Err(JoinError::Corrupt));
            }
            if p == Poll::Slice {
                // A producer killed mid-put may have left a claimed, never-published
                // position at `head`: skip it (it never counted).
                ring.skip_dead_pushes();
            }
            self.finished().then_some(Ok(()))
        };
        if let Some(r) = ready(Poll::Check) {
            return Some(r);
        }
        self.shared
            .counters()
            .event
            .wait_until(&self.strategy, Deadline::from_timeout(timeout), ready)
            // The deadline passed, maybe before any sleep slice: what a slice does, once.
            .or_else(|| ready(Poll::Slice))
    }

    /// Sets how `join` waits (default: [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// Items put and not yet marked done (exact when quiescent).
    pub fn unfinished(&self) -> u64 {
        let done = self.shared.counters().done.load(Ordering::Acquire);
        let skipped = self.shared.ring.skipped();
        let (_, tail) = self.shared.ring.positions();
        tail.saturating_sub(skipped).saturating_sub(done)
    }

    /// Messages queued (exact when quiescent).
    pub fn len(&self) -> usize {
        self.shared.ring.len() as usize
    }

    /// Whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Closes the queue (puts fail with `Closed`; gets drain, then fail with `Closed`).
    pub fn close(&self) {
        self.shared.ring.close();
    }

    /// The segment, unless the queue lives on the heap.
    pub fn segment(&self) -> Option<&Segment> {
        self.shared.ring.segment()
    }
}

/// A producer of a [`JoinableQueue`]; released on drop.
#[must_use = "dropping the producer releases its role"]
///
/// `Send`, not `Sync`: one operation at a time.
#[derive(Debug)]
pub struct JoinableProducer {
    tx: Tx,
}

impl JoinableProducer {
    /// Sets how blocked puts wait (default: [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.tx.set_wait_strategy(strategy);
    }

    fn push_with<M: AsRef<[u8]>>(&self, msg: M, d: Wait) -> Result<(), AnyPushError<M>> {
        // No count to raise: the item counts once the ring holds it (module docs).
        push_msg(&self.tx, msg, d)
    }

    /// Puts an item, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// As [`BytesProducer::push`](crate::bytes::BytesProducer::push).
    #[doc(alias = "put")]
    pub fn push<M: AsRef<[u8]>>(&self, msg: M) -> Result<(), BytesPushError<M>> {
        self.push_with(msg, Wait::For(None))
            .map_err(BytesPushError::narrow)
    }

    /// Puts without waiting.
    ///
    /// # Errors
    ///
    /// As [`BytesProducer::try_push`](crate::bytes::BytesProducer::try_push).
    #[doc(alias = "put_nowait")]
    pub fn try_push<M: AsRef<[u8]>>(&self, msg: M) -> Result<(), BytesTryPushError<M>> {
        self.push_with(msg, Wait::No)
            .map_err(BytesTryPushError::narrow)
    }

    /// Puts, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push), and `Timeout`.
    #[doc(alias = "put")]
    pub fn push_timeout<M: AsRef<[u8]>>(
        &self,
        msg: M,
        timeout: Duration,
    ) -> Result<(), BytesPushTimeoutError<M>> {
        self.push_with(msg, Wait::For(Some(timeout)))
            .map_err(BytesPushTimeoutError::narrow)
    }
}

/// A consumer of a [`JoinableQueue`]; released on drop.
#[must_use = "dropping the consumer releases its role"]
///
/// `Send`, not `Sync`: one operation at a time.
pub struct JoinableConsumer {
    shared: Arc<Shared>,
    rx: Rx,
}

impl fmt::Debug for JoinableConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableConsumer")
            .field("rx", &self.rx)
            .finish()
    }
}

impl JoinableConsumer {
    /// Sets how blocked gets wait (default: [`WaitStrategy::default`]).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.rx.set_wait_strategy(strategy);
    }

    fn pop_with(&self, d: Wait) -> Result<Vec<u8>, AnyPopError> {
        let mut v = Vec::new();
        pop_msg(&self.rx, &mut Dest::Vec(&mut v), d)?;
        self.shared.counters().taken.fetch_add(1, Ordering::AcqRel);
        Ok(v)
    }

    /// Takes an item, sleeping while the queue is empty. Mark it done with
    /// [`JoinableQueue::task_done`].
    ///
    /// # Errors
    ///
    /// As [`BytesConsumer::pop`](crate::bytes::BytesConsumer::pop).
    #[doc(alias = "get")]
    pub fn pop(&self) -> Result<Vec<u8>, PopError> {
        self.pop_with(Wait::For(None))
            .map_err(|e| PopError::from_fail(narrow_pop(e)))
    }

    /// Takes an item without waiting.
    ///
    /// # Errors
    ///
    /// As [`BytesConsumer::try_pop`](crate::bytes::BytesConsumer::try_pop).
    #[doc(alias = "get_nowait")]
    pub fn try_pop(&self) -> Result<Vec<u8>, TryPopError> {
        self.pop_with(Wait::No)
            .map_err(|e| TryPopError::from_fail(narrow_pop(e)))
    }

    /// Takes an item, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// As [`pop`](Self::pop), and `Timeout`.
    #[doc(alias = "get")]
    pub fn pop_timeout(&self, timeout: Duration) -> Result<Vec<u8>, PopTimeoutError> {
        self.pop_with(Wait::For(Some(timeout)))
            .map_err(|e| PopTimeoutError::from_fail(narrow_pop(e)))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_and_errors() {
        let q = JoinableQueue::heap(2, 8).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        assert_eq!(q.join_timeout(Duration::ZERO), Ok(()));
        assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
        tx.push(b"a").unwrap();
        tx.push(b"b").unwrap();
        assert!(matches!(tx.try_push(b"c"), Err(BytesTryPushError::Full(_))));
        assert_eq!(q.unfinished(), 2);
        assert_eq!(rx.pop().unwrap(), b"a");
        q.task_done().unwrap();
        assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
        assert_eq!(
            q.join_timeout(Duration::from_millis(1)),
            Err(JoinTimeoutError::Timeout)
        );
        assert_eq!(rx.try_pop().unwrap(), b"b");
        q.task_done().unwrap();
        assert_eq!(q.join_timeout(Duration::ZERO), Ok(()));
        q.join().unwrap();
    }

    /// A queue on the heap whose liveness is checked with the OS.
    fn checked_heap(cap: u64, max: usize) -> JoinableQueue {
        let home = Home::heap(body_len(cap, max).unwrap());
        // SAFETY: a fresh, zeroed, 128-aligned block of the needed size.
        unsafe { init(home.as_ptr(), cap, max) };
        JoinableQueue::from_home(home, cap, max, Prober::os(), Knobs::default()).unwrap()
    }

    /// A word naming a process that cannot exist (pid above the kernel's limit).
    fn dead_word() -> u64 {
        shm_core::ProcessId::from_parts(0x7fff_fff0, 1).to_word()
    }

    /// Regression (issue 11): `join` never returned after a producer was killed inside
    /// `put`, because the count was raised before the push. A producer killed after claiming
    /// a position and before publishing it now leaves nothing counted: the position is
    /// skipped (by `join` itself here, no consumer needed) and `join` returns.
    #[cfg_attr(miri, ignore)] // liveness reads /proc
    #[test]
    fn producer_killed_mid_put_does_not_strand_join() {
        let mut q = checked_heap(4, 8);
        q.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(1)));
        q.shared.ring.forge_abandoned_push(dead_word());
        assert_eq!(q.join_timeout(Duration::from_secs(10)), Ok(()));
        assert_eq!(q.unfinished(), 0);
        // With a live producer's item behind the dead claim: the consumer skips the claim,
        // gets the item, and join waits for its task_done only.
        q.shared.ring.forge_abandoned_push(dead_word());
        let tx = q.producer().unwrap();
        tx.push(b"live").unwrap();
        let mut rx = q.consumer().unwrap();
        rx.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(1)));
        assert_eq!(
            q.join_timeout(Duration::from_millis(5)),
            Err(JoinTimeoutError::Timeout)
        );
        assert_eq!(rx.pop_timeout(Duration::from_secs(10)).unwrap(), b"live");
        assert_eq!(
            q.join_timeout(Duration::ZERO),
            Err(JoinTimeoutError::Timeout)
        );
        q.task_done().unwrap();
        q.join().unwrap();
    }

    /// A live claimer (say a slow producer, or one whose liveness cannot be told) is never
    /// skipped: join keeps waiting.
    #[cfg_attr(miri, ignore)] // liveness reads /proc
    #[test]
    fn live_claimer_is_not_skipped_by_join() {
        let mut q = checked_heap(4, 8);
        q.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(1)));
        q.shared
            .ring
            .forge_abandoned_push(shm_core::ProcessId::current().to_word());
        assert_eq!(
            q.join_timeout(Duration::from_millis(30)),
            Err(JoinTimeoutError::Timeout)
        );
        assert_eq!(q.unfinished(), 1);
    }

    /// A poisoned queue can never be joined: both joins say so at once, never a wait forever
    /// or a false "all done".
    #[test]
    fn poisoned_queue_join_reports_corrupt() {
        let q = JoinableQueue::heap(2, 4).unwrap();
        let tx = q.producer().unwrap();
        tx.push(b"a").unwrap();
        q.shared.ring.poison();
        assert_eq!(q.join(), Err(JoinError::Corrupt));
        assert_eq!(
            q.join_timeout(Duration::from_secs(10)),
            Err(JoinTimeoutError::Corrupt)
        );
        assert!(matches!(tx.push(b"b"), Err(BytesPushError::Corrupt(_))));
    }

    /// A failed put counts nothing.
    #[test]
    fn failed_put_counts_nothing() {
        let q = JoinableQueue::heap(1, 4).unwrap();
        let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
        tx.push(b"a").unwrap();
        assert!(matches!(tx.try_push(b"b"), Err(BytesTryPushError::Full(_))));
        assert!(matches!(
            tx.try_push(b"toolong"),
            Err(BytesTryPushError::TooLarge { .. })
        ));
        assert_eq!(q.unfinished(), 1);
        rx.pop().unwrap();
        q.task_done().unwrap();
        assert_eq!(q.join_timeout(Duration::ZERO), Ok(()));
    }

    #[cfg_attr(miri, ignore)]
    #[test]
    fn join_wakes_when_worker_finishes() {
        let q = JoinableQueue::heap(4, 8).unwrap();
        let tx = q.producer().unwrap();
        for i in 0..3u8 {
            tx.push([i]).unwrap();
        }
        let rx = q.consumer().unwrap();
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            for _ in 0..3 {
                rx.pop().unwrap();
                q2.task_done().unwrap();
            }
        });
        q.join().unwrap();
        assert_eq!(q.unfinished(), 0);
        t.join().unwrap();
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    /// `join` never misses the `task_done` that brings the count to zero.
    #[test]
    fn loom_join_sees_last_task_done() {
        loom::model(|| {
            let q = JoinableQueue::heap(1, 1).unwrap();
            let tx = q.producer().unwrap();
            let rx = q.consumer().unwrap();
            tx.try_push([1u8]).unwrap();
            let q2 = q.clone();
            let t = loom::thread::spawn(move || {
                assert_eq!(rx.try_pop().unwrap(), vec![1u8]);
                q2.task_done().unwrap();
            });
            q.join().unwrap();
            assert_eq!(q.unfinished(), 0);
            t.join().unwrap();
        });
    }
}
