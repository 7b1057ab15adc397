//! A bounded multi-producer multi-consumer queue of fixed-size elements, across processes.
//!
//! [`MpmcQueue<T>`] is [`Queue<T, Mpmc>`](crate::typed::Queue): the [one ring](crate::ring)
//! with its MPMC protocol, Vyukov's bounded queue (crossbeam's `ArrayQueue`). Every slot carries
//! a sequence *stamp* that says which position it is ready for, so producers and consumers agree
//! on a slot with one compare-and-swap and never take a lock; up to
//! [`MAX_ROLES`](crate::ring::MAX_ROLES) producer and consumer handles at once.
//!
//! # Processes that die mid-operation: the exact guarantee
//!
//! Before it takes position `p`, a producer writes `p + 1` into the `pending` word of its role
//! slot and clears it after publishing (consumers likewise). A consumer blocked on a position
//! whose producer took it but never published checks, once per sleep slice of its
//! [`WaitStrategy`](shm_core::WaitStrategy), whether any **live** producer still announces
//! `p + 1`; if none does, the producer died, and the consumer passes the position over
//! ([`MpmcQueue::skipped`](crate::typed::Queue::skipped) counts them). Therefore:
//!
//! - every item whose `push` returned `Ok` is delivered exactly once (unless a consumer dies
//!   holding it, below);
//! - an item whose producer was killed inside `push` is either delivered whole or skipped,
//!   never delivered torn;
//! - consumers are never blocked for good by a dead producer: a blocked pop waits at most about
//!   one sleep slice (default 50 ms) longer, a timed pop checks when its deadline passes, and
//!   pollers get past too: a `try_pop` that finds the head taken and unpublished reports
//!   `Empty`, and every 64th such call asks whether the producer died (an OS call), so that
//!   a polling loop goes on after a few dozen polls. Every dead position in a row is passed
//!   over at once, and nothing queued behind one is reported as `Closed` or `Disconnected`.
//!
//! Symmetrically, a producer on a full queue whose oldest slot was taken by a consumer that
//! then died frees that slot (the item died with its consumer), blocked, timed or polling alike.
//!
//! # Corrupt stamps
//!
//! A stamp that no healthy ring can hold at the position looked at (ahead of `head` or `tail`
//! while that index did not move, or behind it by anything but one lap) *poisons* the queue:
//! from then on every push and pop fails at once with `Corrupt`, in every process. What is
//! lost: every item still in the queue (it can no longer be told from garbage); make a new
//! queue.
//!
//! # Examples
//!
//! ```
//! use shm_core::SegmentName;
//! use shm_queue::MpmcQueue;
//!
//! let name = SegmentName::unique();
//! let q = MpmcQueue::<u64>::builder(&name).capacity(16).create()?;
//! let (mut p1, mut p2) = (q.producer()?, q.producer()?);
//! let mut c = q.consumer()?;
//! p1.push(1)?;
//! p2.push(2)?;
//! assert_eq!(c.pop()?, 1);
//! assert_eq!(c.pop()?, 2);
//! assert_eq!(c.try_pop(), Err(shm_queue::TryPopError::Empty));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::ring::Mpmc;
use shm_core::Element;

/// Most producer handles that can be attached at once.
pub const MAX_PRODUCERS: usize = crate::ring::MAX_ROLES;
/// Most consumer handles that can be attached at once.
pub const MAX_CONSUMERS: usize = crate::ring::MAX_ROLES;

/// A named multi-producer multi-consumer queue of `T` in shared memory (see the
/// [module docs](self)).
pub type MpmcQueue<T> = crate::typed::Queue<T, Mpmc>;

/// Builds an [`MpmcQueue`].
pub type MpmcBuilder<T> = crate::typed::Builder<T, Mpmc>;

/// A producer endpoint of an [`MpmcQueue`].
pub type Producer<T> = crate::typed::Producer<T, Mpmc>;

/// A consumer endpoint of an [`MpmcQueue`].
pub type Consumer<T> = crate::typed::Consumer<T, Mpmc>;

/// A heap queue of `capacity` elements for threads of one process (the same algorithm; loom
/// and miri run on it).
///
/// # Panics
///
/// If `capacity` is zero or too large to allocate.
pub fn heap<T: Element>(capacity: usize) -> MpmcQueue<T> {
    MpmcQueue::heap(capacity)
}

/// A heap queue with one producer and one consumer endpoint.
///
/// # Panics
///
/// If `capacity` is zero or too large to allocate.
///
/// # Examples
///
/// ```
/// let (mut tx, mut rx) = shm_queue::mpmc::channel::<u16>(2);
/// tx.push(5)?;
/// assert_eq!(rx.pop()?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn channel<T: Element>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    crate::typed::heap_pair(capacity, false)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::error::RoleError;
    use crate::role::{self, Prober};
    use crate::{
        PopError, PopTimeoutError, PushError, PushTimeoutError, TryPopError, TryPushError,
    };
    use shm_core::{OpenError, SegmentName, WaitStrategy};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

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
        let ps: Vec<_> = (0..crate::ring::MAX_ROLES)
            .map(|_| q.producer().unwrap())
            .collect();
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
        // Forge a dead producer that took position 0 and died before publishing it.
        let dead = shm_core::ProcessId::from_parts(0x7fff_fff0, 1).to_word();
        q.ring().forge_abandoned_push(dead);
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
        let live = shm_core::ProcessId::current().to_word();
        q.ring().forge_abandoned_push(live);
        let mut p = q.producer().unwrap();
        p.push(10).unwrap();
        assert_eq!(
            c.pop_timeout(Duration::from_millis(30)),
            Err(PopTimeoutError::Timeout)
        );
        assert_eq!(q.skipped(), 0);
        // The claimer "publishes": the consumer goes on.
        q.ring().forge_stamp(0, 1);
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
        // Forge: a dead consumer advanced head past position 0 and died holding it.
        let dead = shm_core::ProcessId::from_parts(0x7fff_fff0, 1).to_word();
        let r = role::claim(q.ring().consumers(), dead, &Prober::heap()).unwrap();
        q.ring().consumers()[r.index]
            .pending()
            .store(1, Ordering::Relaxed);
        q.ring().forge_index(1, 1);
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
        c.ring().forge_stamp(1, 2 * 9 + 1);
        for _ in 0..3 {
            assert_eq!(c.try_pop(), Err(TryPopError::Corrupt));
            assert_eq!(c.pop(), Err(PopError::Corrupt));
            assert_eq!(p.try_push(3), Err(TryPushError::Corrupt(3)));
        }
        assert_eq!(c.pop_slice(&mut [0; 2]), 0);
        // Ahead of tail.
        let (mut p, mut c) = channel::<u64>(2);
        p.ring().forge_stamp(0, 2 * 40);
        assert_eq!(p.try_push(1), Err(TryPushError::Corrupt(1)));
        assert_eq!(c.pop(), Err(PopError::Corrupt));
        // More than one lap behind tail (a corrupt tail far ahead of the ring).
        let (mut p, _c) = channel::<u64>(2);
        p.ring().forge_index(0, u64::MAX);
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
