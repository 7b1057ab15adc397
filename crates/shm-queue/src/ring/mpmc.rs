//! The MPMC protocol: per-slot stamps (Vyukov's bounded queue) with announced positions for
//! dead-peer recovery (see the [module docs](super)).

use super::{Corrupt, Ring};
use crate::error::Fail;
use crate::role;
use shm_core::sync::atomic::Ordering;

/// Most positions one pop passes over (cancelled loans) before it reports "nothing yet": a
/// bound on the work of one call, whatever the segment holds.
const MAX_SKIPS_PER_POLL: usize = 1024;

/// The stamp of a slot free for position `pos`.
#[inline]
pub(super) fn free_stamp(pos: u64) -> u64 {
    pos.wrapping_mul(2)
}

/// The stamp of a slot holding the item of position `pos`.
#[inline]
pub(super) fn full_stamp(pos: u64) -> u64 {
    pos.wrapping_mul(2).wrapping_add(1)
}

/// What a consumer does with the published item it looks at (decided before it takes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// Take it.
    Take,
    /// Take it and pass over it (a cancelled loan).
    Skip,
    /// Leave it where it is and fail the call (a buffer too small, a corrupt length).
    Reject(Fail),
}

impl Ring {
    /// Takes the next free position for producer `role`: `Some(pos)` (the slot is ours until
    /// [`mpmc_publish`](Self::mpmc_publish)), `None` if the ring is full.
    #[inline(always)]
    pub(super) fn mpmc_claim(&self, role: usize) -> Result<Option<u64>, Corrupt> {
        let c = self.ctl();
        let pending = self.producers()[role].pending();
        let mut pos = c.tail.0.load(Ordering::Relaxed);
        loop {
            let stamp = self.stamp(pos).load(Ordering::Acquire);
            if stamp == free_stamp(pos) {
                // Announced before the CAS that takes it (whose Release publishes this store
                // to whoever reads the new tail): a consumer that finds `pos` taken and never
                // published can tell a live producer from a dead one. Release: a consumer that
                // reads this announcement also sees our previous publish (the announcement of
                // that position is overwritten here, never cleared).
                pending.store(pos.wrapping_add(1), Ordering::Release);
                match c.tail.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(Some(pos)),
                    Err(now) => pos = now,
                }
            } else {
                // Another producer got here first (look again), or the slot still holds the
                // previous lap's item, taken or not (exactly one lap behind: full). Anything
                // else, with a tail that did not move, is impossible in a healthy ring.
                let now = c.tail.0.load(Ordering::Acquire);
                if now == pos {
                    // `tail` was first read Relaxed, so that stamp may be stale; one read after
                    // the Acquire of `tail` is not.
                    if self.stamp(pos).load(Ordering::Acquire) != stamp {
                        continue;
                    }
                    pending.store(0, Ordering::Relaxed);
                    let lap = free_stamp(pos.wrapping_sub(self.geo.cap));
                    if stamp.wrapping_sub(lap) <= 1 {
                        return Ok(None);
                    }
                    self.poison();
                    return Err(Corrupt);
                }
                pos = now;
            }
        }
    }

    /// Publishes the item a producer wrote at `pos`, and wakes a sleeping consumer.
    #[inline(always)]
    pub(super) fn mpmc_publish(&self, pos: u64) {
        // The producer's `pending` announcement stays until its next one (or the role's
        // release): a published position is never stuck, so a stale announcement of it misleads
        // no consumer, and the fast path saves a store.
        self.stamp(pos).store(full_stamp(pos), Ordering::Release);
        if !self.spin_only {
            self.sync().not_empty.notify_one();
        }
    }

    /// Takes the next published position for consumer `role`, after `accept` agreed to it:
    /// `Some(pos)` (the slot is ours until [`mpmc_finish`](Self::mpmc_finish)), `None` if
    /// nothing is ready.
    #[inline(always)]
    pub(super) fn mpmc_take(
        &self,
        role: usize,
        accept: &mut impl FnMut(u64) -> Accept,
    ) -> Result<Option<u64>, Fail> {
        let c = self.ctl();
        let pending = self.consumers()[role].pending();
        let mut pos = c.head.0.load(Ordering::Relaxed);
        let mut skips = 0;
        loop {
            let stamp = self.stamp(pos).load(Ordering::Acquire);
            if stamp == full_stamp(pos) {
                // The producer's payload writes are visible (the stamp was acquired); nobody
                // writes a published slot, so what `accept` reads stays true once we take it.
                let verdict = accept(pos);
                if let Accept::Reject(f) = verdict {
                    return Err(f);
                }
                pending.store(pos.wrapping_add(1), Ordering::Relaxed);
                match c.head.0.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) if verdict == Accept::Skip => {
                        self.mpmc_finish(pos);
                        self.sync().skipped.fetch_add(1, Ordering::AcqRel);
                        skips += 1;
                        if skips >= MAX_SKIPS_PER_POLL {
                            return Ok(None);
                        }
                        pos = pos.wrapping_add(1);
                    }
                    Ok(_) => return Ok(Some(pos)),
                    Err(now) => pos = now,
                }
            } else if stamp == free_stamp(pos) {
                // Not published yet (or not even taken by a producer).
                pending.store(0, Ordering::Relaxed);
                return Ok(None);
            } else {
                // Another consumer took it (look again), or the previous lap's consumer has not
                // freed the slot yet (nothing here yet). Anything else, with a head that did
                // not move, is impossible in a healthy ring.
                let now = c.head.0.load(Ordering::Acquire);
                if now == pos {
                    // `head` was first read Relaxed, so that stamp may be stale; one read after
                    // the Acquire of `head` is not.
                    if self.stamp(pos).load(Ordering::Acquire) != stamp {
                        continue;
                    }
                    pending.store(0, Ordering::Relaxed);
                    // The previous lap's item, not yet freed, or a skipped position whose
                    // stamp the skipper has not moved on yet: nothing here yet.
                    let lap = free_stamp(pos.wrapping_sub(self.geo.cap));
                    if stamp.wrapping_sub(lap) <= 1 {
                        return Ok(None);
                    }
                    self.poison();
                    return Err(Fail::Corrupt);
                }
                pos = now;
            }
        }
    }

    /// Hands the slot a consumer took at `pos` to the next lap, and wakes a sleeping
    /// producer.
    #[inline(always)]
    pub(super) fn mpmc_finish(&self, pos: u64) {
        // As in `mpmc_publish`, the consumer's announcement is cleared lazily: a freed slot is
        // never mistaken for one a dead consumer holds (its stamp moved on).
        self.stamp(pos).store(
            free_stamp(pos.wrapping_add(self.geo.cap)),
            Ordering::Release,
        );
        if !self.spin_only {
            self.sync().not_full.notify_one();
        }
    }

    /// Whether the item at the consumers' `head` is published.
    pub(super) fn mpmc_readable(&self) -> bool {
        let pos = self.ctl().head.0.load(Ordering::Acquire);
        self.stamp(pos).load(Ordering::Acquire) == full_stamp(pos)
    }

    /// Consumer-side recovery: if the position at `head` was taken by a producer that died
    /// before publishing it, pass over it. Returns whether a position was skipped.
    pub(crate) fn skip_dead_push(&self) -> bool {
        if self.geo.flavor != super::Flavor::Mpmc {
            return false;
        }
        let c = self.ctl();
        let pos = c.head.0.load(Ordering::Acquire);
        let tail = c.tail.0.load(Ordering::Acquire);
        let taken = tail.wrapping_sub(pos);
        if taken == 0 || taken > self.geo.cap {
            return false;
        }
        let stamp = self.stamp(pos);
        if stamp.load(Ordering::Acquire) != free_stamp(pos) {
            return false;
        }
        if role::any_live_pending(self.producers(), pos.wrapping_add(1), &self.prober) {
            return false;
        }
        // The producer is dead, or finished: if it finished, the stamp moved on.
        if stamp.load(Ordering::Acquire) != free_stamp(pos) {
            return false;
        }
        if c.head
            .0
            .compare_exchange(
                pos,
                pos.wrapping_add(1),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        stamp.store(
            free_stamp(pos.wrapping_add(self.geo.cap)),
            Ordering::Release,
        );
        // Counted after `head` moved past it (JoinableQueue's `join` relies on that order).
        self.sync().skipped.fetch_add(1, Ordering::AcqRel);
        self.sync().not_full.notify_all();
        true
    }

    /// Whether the position at `head` was taken by a producer and not yet published (two index
    /// loads and a stamp load: no OS call). Always false on SPSC rings.
    pub(crate) fn head_stuck(&self) -> bool {
        if self.geo.flavor != super::Flavor::Mpmc {
            return false;
        }
        let (head, tail) = self.positions();
        let taken = tail.wrapping_sub(head);
        taken != 0
            && taken <= self.geo.cap
            && self.stamp(head).load(Ordering::Acquire) == free_stamp(head)
    }

    /// Whether the slot the next push needs is still held by the consumer that took the
    /// previous lap's item (two index loads and a stamp load: no OS call). Always false on
    /// SPSC rings.
    pub(crate) fn tail_held(&self) -> bool {
        if self.geo.flavor != super::Flavor::Mpmc {
            return false;
        }
        let (head, tail) = self.positions();
        let prev = tail.wrapping_sub(self.geo.cap);
        let past = head.wrapping_sub(prev);
        past != 0
            && past <= self.geo.cap
            && self.stamp(tail).load(Ordering::Acquire) == full_stamp(prev)
    }

    /// [`skip_dead_push`](Self::skip_dead_push) until it finds nothing to pass over (at most
    /// the capacity: a bounded amount of work whatever the segment holds). Whether any was
    /// passed over.
    pub(crate) fn skip_dead_pushes(&self) -> bool {
        let mut any = false;
        for _ in 0..self.geo.cap.min(1 << 16) {
            if !self.skip_dead_push() {
                break;
            }
            any = true;
        }
        any
    }

    /// Producer-side recovery: if the slot at `tail` was taken by a consumer that died before
    /// freeing it, free it (its item died with the consumer). Returns whether one was freed.
    pub(crate) fn free_dead_pop(&self) -> bool {
        if self.geo.flavor != super::Flavor::Mpmc {
            return false;
        }
        let c = self.ctl();
        let pos = c.tail.0.load(Ordering::Acquire);
        let prev = pos.wrapping_sub(self.geo.cap);
        let head = c.head.0.load(Ordering::Acquire);
        // The consumer that took `prev` moved `head` past it.
        let past = head.wrapping_sub(prev);
        if past == 0 || past > self.geo.cap {
            return false;
        }
        let stamp = self.stamp(pos);
        let full = full_stamp(prev);
        if stamp.load(Ordering::Acquire) != full {
            return false;
        }
        if role::any_live_pending(self.consumers(), prev.wrapping_add(1), &self.prober) {
            return false;
        }
        // A live consumer finishing now stores the same value; the CAS makes it idempotent.
        let freed = stamp
            .compare_exchange(full, free_stamp(pos), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if freed {
            self.sync().not_full.notify_all();
        }
        freed
    }
}
