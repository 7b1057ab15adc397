//! The SPSC protocol: Lamport's ring with cached indices (see the [module docs](super)).
//!
//! Each side keeps its own index and the last index of the other side it saw, in `Cell`s:
//! endpoints are `Send` but not `Sync`, one operation at a time.

use super::{Corrupt, Ring};
use shm_core::sync::atomic::Ordering;
use std::cell::Cell;

/// A producer's position (`tail`, which only it writes) and the last `head` it saw.
#[derive(Debug)]
pub(crate) struct TxCursor {
    tail: Cell<u64>,
    cached_head: Cell<u64>,
}

impl TxCursor {
    /// Starts from the segment's `tail` (where a dead predecessor left it), with nothing seen
    /// of the consumer yet: the first push reads (and checks) `head`.
    pub(crate) fn new(ring: &Ring) -> TxCursor {
        let tail = ring.ctl().tail.0.load(Ordering::Acquire);
        TxCursor {
            tail: Cell::new(tail),
            cached_head: Cell::new(tail.wrapping_sub(ring.capacity())),
        }
    }

    /// The next position to write.
    #[inline]
    pub(crate) fn tail(&self) -> u64 {
        self.tail.get()
    }
}

/// A consumer's position (`head`, which only it writes) and the last `tail` it saw.
#[derive(Debug)]
pub(crate) struct RxCursor {
    head: Cell<u64>,
    cached_tail: Cell<u64>,
}

impl RxCursor {
    /// Starts from the segment's `head`, with nothing seen of the producer yet.
    pub(crate) fn new(ring: &Ring) -> RxCursor {
        let head = ring.ctl().head.0.load(Ordering::Acquire);
        RxCursor {
            head: Cell::new(head),
            cached_tail: Cell::new(head),
        }
    }

    /// The next position to read.
    #[inline]
    pub(crate) fn head(&self) -> u64 {
        self.head.get()
    }
}

impl Ring {
    /// Free slots from our tail, refreshing the cached head if fewer than `want` seem free.
    /// `Err` (and the ring poisoned) if the head read breaks `head <= tail <= head + cap`.
    #[inline(always)]
    pub(super) fn spsc_free(&self, c: &TxCursor, want: u64) -> Result<u64, Corrupt> {
        let cap = self.geo.cap;
        let tail = c.tail.get();
        // The cached head passed the check below (or is the initial `tail - cap`), and only
        // we move `tail`, by at most what was free: `tail - cached_head <= cap`.
        let free = cap - tail.wrapping_sub(c.cached_head.get());
        if free >= want {
            return Ok(free);
        }
        let head = self.ctl().head.0.load(Ordering::Acquire);
        let used = tail.wrapping_sub(head);
        if used > cap {
            self.poison();
            return Err(Corrupt);
        }
        c.cached_head.set(head);
        Ok(cap - used)
    }

    /// Publishes `n` slots written from our tail on, and wakes a sleeping consumer.
    #[inline(always)]
    pub(super) fn spsc_publish(&self, c: &TxCursor, n: u64) {
        let tail = c.tail.get().wrapping_add(n);
        c.tail.set(tail);
        self.ctl().tail.0.store(tail, Ordering::Release);
        if !self.spin_only {
            self.sync().not_empty.notify_one();
        }
    }

    /// Items ready from our head, refreshing the cached tail if fewer than `want` seem ready.
    /// `Err` (and the ring poisoned) if the tail read breaks `head <= tail <= head + cap`:
    /// never more than the capacity, never garbage.
    #[inline(always)]
    pub(super) fn spsc_ready(&self, c: &RxCursor, want: u64) -> Result<u64, Corrupt> {
        let head = c.head.get();
        // The cached tail passed the check below (or is the initial `head`).
        let ready = c.cached_tail.get().wrapping_sub(head);
        if ready >= want {
            return Ok(ready);
        }
        let tail = self.ctl().tail.0.load(Ordering::Acquire);
        let ready = tail.wrapping_sub(head);
        if ready > self.geo.cap {
            self.poison();
            return Err(Corrupt);
        }
        c.cached_tail.set(tail);
        Ok(ready)
    }

    /// Hands `n` slots read from our head on back to the producer, and wakes it if it sleeps.
    #[inline(always)]
    pub(super) fn spsc_release(&self, c: &RxCursor, n: u64) {
        let head = c.head.get().wrapping_add(n);
        c.head.set(head);
        self.ctl().head.0.store(head, Ordering::Release);
        if !self.spin_only {
            self.sync().not_full.notify_one();
        }
    }

    /// Whether an item is ready at the consumer's head (a fresh look at `tail`); `Err` on an
    /// impossible tail.
    pub(super) fn spsc_readable(&self, c: &RxCursor) -> Result<bool, Corrupt> {
        let tail = self.ctl().tail.0.load(Ordering::Acquire);
        let ready = tail.wrapping_sub(c.head.get());
        if ready > self.geo.cap {
            self.poison();
            return Err(Corrupt);
        }
        Ok(ready > 0)
    }
}
