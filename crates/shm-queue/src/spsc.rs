//! A single-producer single-consumer ring of fixed-size elements, across processes.
//!
//! [`SpscQueue<T>`] is [`Queue<T, Spsc>`](crate::typed::Queue): the [one ring](crate::ring)
//! with its SPSC protocol, Lamport's ring. The producer owns `tail`, the consumer owns `head`,
//! each on its own 128-byte line, and each side keeps a cached copy of the other's index so that
//! most operations touch no line the other side writes (rtrb's technique). Positions are
//! free-running `u64`s; a position's slot is `position % capacity`. Batches
//! ([`Producer::push_slice`](crate::typed::Producer::push_slice)) and chunks lent in place
//! ([`Producer::write_chunk`](crate::typed::Producer::write_chunk),
//! [`Consumer::read_chunk`](crate::typed::Consumer::read_chunk)) move many items with one index
//! store.
//!
//! The producer and consumer roles are claimed in the segment ([`crate::role`]): at most one
//! live process holds each; a role held by a dead process is taken over by the next claim.
//!
//! # Segment layout
//!
//! The ring's control block (see [`crate::ring`]), then `capacity` elements of `T`,
//! contiguous.
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

use crate::ring::Spsc;
use shm_core::Element;

pub use crate::ring::CacheLine;
pub use crate::typed::{ChunkError, ReadChunk, WriteChunk};

/// A named single-producer single-consumer queue of `T` in shared memory (see the
/// [module docs](self)).
pub type SpscQueue<T> = crate::typed::Queue<T, Spsc>;

/// Builds an [`SpscQueue`].
pub type SpscBuilder<T> = crate::typed::Builder<T, Spsc>;

/// The producer endpoint of an [`SpscQueue`] or a [`channel`].
pub type Producer<T> = crate::typed::Producer<T, Spsc>;

/// The consumer endpoint of an [`SpscQueue`] or a [`channel`].
pub type Consumer<T> = crate::typed::Consumer<T, Spsc>;

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
    crate::typed::heap_pair(capacity, false)
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
    crate::typed::heap_pair(capacity, true)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::error::RoleError;
    use crate::role::{self, Prober, HEAP_WORD};
    use crate::{
        PopError, PopTimeoutError, PushError, PushTimeoutError, TryPopError, TryPushError,
    };
    use shm_core::{CreateError, OpenError, SegmentName, WaitStrategy};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn geometry() {
        use crate::error::BadGeometry;
        use crate::ring::{Flavor, Geometry, CTL_LEN};
        let g = |cap| Geometry::fixed::<u64>(Flavor::Spsc, cap).body_len();
        assert_eq!(g(0), Err(BadGeometry::ZeroCapacity));
        assert!(matches!(g(u64::MAX), Err(BadGeometry::TooLarge { .. })));
        assert_eq!(g(3).unwrap(), CTL_LEN + 128);
        assert_eq!(g(16).unwrap(), CTL_LEN + 128);
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
        let q = SpscQueue::<u8>::heap(2);
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
            let q = SpscQueue::<u64>::heap(4);
            q.ring().forge_index(1, head);
            q.ring().forge_index(0, tail);
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
        rx.ring().forge_index(1, 7);
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
            let s = Arc::clone(tx.ring_arc());
            move || s.forge_index(1, 9)
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
        let q = SpscQueue::<u64>::heap_probed(2, prober);
        // The other process's consumer holds the role.
        role::claim(q.ring().consumers(), OTHER, &Prober::heap()).unwrap();
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
        role::claim(q.ring().producers(), dead, &Prober::heap()).unwrap();
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
