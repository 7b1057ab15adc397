//! The one family of endpoints: a producer end ([`Tx`]) and a consumer end ([`Rx`]) of a
//! [`Ring`] of either flavor, with the non-blocking, blocking and timed forms of every
//! operation written once. The queue types wrap these with their payload (an element, a byte
//! message) and their error enums.

pub(crate) use super::mpmc::Accept;
use super::spsc::{RxCursor, TxCursor};
use super::{Flavor, Ring, CANCELLED, CLOSED};
use crate::error::{Fail, RoleError};
use crate::role::{self, RoleSlot, Waited};
use shm_core::sync::atomic::Ordering;
use shm_core::sync::Poll;
use shm_core::{Deadline, Element, WaitStrategy};
use std::cell::Cell;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

/// Whether and how long an operation may wait. A timed operation reads the clock only once it
/// has found that it must wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Do not wait.
    No,
    /// Wait up to the timeout (`None`: without limit).
    For(Option<Duration>),
}

/// Whether a timed-out wait of `timeout` really waited: only then is it worth one liveness
/// probe of the peers at its end (a zero timeout is a non-blocking call, which never probes).
fn waited(timeout: Option<Duration>) -> bool {
    timeout.is_none_or(|t| !t.is_zero())
}

/// Where a received byte message goes.
pub(crate) enum Dest<'a> {
    /// Into a buffer (which must be long enough: else `TooSmall`, the message staying queued).
    Slice(&'a mut [u8]),
    /// Into a vector, replacing its contents.
    Vec(&'a mut Vec<u8>),
}

/// The strategy an endpoint with `strategy` really waits with on `ring`.
fn effective(ring: &Ring, strategy: WaitStrategy) -> WaitStrategy {
    if ring.is_busy_poll_only() {
        WaitStrategy::busy_poll().with_slice(strategy.slice)
    } else {
        strategy
    }
}

/// Which side of a ring an endpoint is: its cursor type, and the role slots it claims.
pub(crate) trait Side: fmt::Debug {
    /// The side's name, for `Debug`.
    const NAME: &'static str;
    /// A cursor starting where the segment's index for this side says.
    fn cursor(ring: &Ring) -> Self;
    /// This side's role slots.
    fn slots(ring: &Ring) -> &[RoleSlot];
}

impl Side for TxCursor {
    const NAME: &'static str = "Tx";
    fn cursor(ring: &Ring) -> Self {
        TxCursor::new(ring)
    }
    fn slots(ring: &Ring) -> &[RoleSlot] {
        ring.producers()
    }
}

impl Side for RxCursor {
    const NAME: &'static str = "Rx";
    fn cursor(ring: &Ring) -> Self {
        RxCursor::new(ring)
    }
    fn slots(ring: &Ring) -> &[RoleSlot] {
        ring.consumers()
    }
}

/// An endpoint: a claimed role of one side of a ring, with that side's cursor and wait
/// strategy. Releases the role on drop (and wakes the other side, which may now be
/// disconnected).
pub(crate) struct End<C: Side> {
    ring: Arc<Ring>,
    cur: C,
    role: usize,
    strategy: WaitStrategy,
    /// Non-blocking calls that found the ring stuck on a peer that may be dead (MPMC): every
    /// [`PROBE_EVERY`]th of them probes the peer's liveness (an OS call) and recovers.
    stuck: Cell<u32>,
}

/// How many non-blocking calls in a row that find an MPMC ring stuck on a peer's unfinished
/// position pass before one of them probes whether that peer died: a poller gets past a dead
/// peer too, and one racing a live peer's push or pop pays an OS call only now and then.
const PROBE_EVERY: u32 = 64;

/// A producer end.
pub(crate) type Tx = End<TxCursor>;
/// A consumer end.
pub(crate) type Rx = End<RxCursor>;

impl<C: Side> fmt::Debug for End<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(C::NAME)
            .field("ring", &self.ring)
            .field("role", &self.role)
            .finish()
    }
}

impl<C: Side> End<C> {
    /// Claims a role of this side of `ring`.
    pub(crate) fn attach(ring: &Arc<Ring>, strategy: WaitStrategy) -> Result<End<C>, RoleError> {
        let p = ring.prober();
        let claim = role::claim(C::slots(ring), p.me(), p)?;
        Ok(End {
            cur: C::cursor(ring),
            ring: Arc::clone(ring),
            role: claim.index,
            strategy,
            stuck: Cell::new(0),
        })
    }

    /// Counts a non-blocking call that found the ring stuck on a peer; whether this one
    /// should probe the peer's liveness.
    fn probe_now(&self) -> bool {
        let n = self.stuck.get().wrapping_add(1);
        self.stuck.set(n);
        n.is_multiple_of(PROBE_EVERY)
    }

    pub(crate) fn ring(&self) -> &Ring {
        &self.ring
    }

    pub(crate) fn arc(&self) -> &Arc<Ring> {
        &self.ring
    }

    pub(crate) fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    pub(crate) fn strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// The payload of the slot at `pos` (see [`Ring::payload`]).
    #[inline(always)]
    pub(crate) fn payload(&self, pos: u64) -> NonNull<u8> {
        self.ring.payload(pos)
    }
}

impl<C: Side> Drop for End<C> {
    fn drop(&mut self) {
        let ring = &*self.ring;
        role::release(C::slots(ring), self.role, ring.prober().me());
        ring.wake_all();
    }
}

impl Tx {
    /// One non-blocking attempt at a free slot: its position (the slot is ours until
    /// [`commit`](Self::commit)), or `NotNow` (full), `Closed`, `Corrupt`.
    #[inline(always)]
    fn attempt(&self, flavor: Flavor) -> Result<u64, Fail> {
        let ring = &*self.ring;
        let state = ring.state();
        if state != 0 {
            return Err(if state & !CLOSED != 0 {
                Fail::Corrupt
            } else {
                Fail::Closed
            });
        }
        match flavor {
            Flavor::Spsc => match ring.spsc_free(&self.cur, 1) {
                Ok(0) => Err(Fail::NotNow),
                Ok(_) => Ok(self.cur.tail()),
                Err(_) => Err(Fail::Corrupt),
            },
            Flavor::Mpmc => match ring.mpmc_claim(self.role) {
                Ok(Some(pos)) => Ok(pos),
                Ok(None) => Err(Fail::NotNow),
                Err(_) => Err(Fail::Corrupt),
            },
        }
    }

    /// A free slot's position, waiting as `wait` says: the slot is ours until
    /// [`commit`](Self::commit) (which must follow, in MPMC rings). `NotNow` (full, without
    /// waiting), `Timeout`, `Closed`, `Disconnected` (full and every consumer gone),
    /// `Corrupt`.
    #[inline(always)]
    pub(crate) fn claim(&self, wait: Wait) -> Result<u64, Fail> {
        self.claim_in(self.ring.flavor(), wait)
    }

    /// [`claim`](Self::claim) on a ring known to be of `flavor` (a constant at the typed
    /// queues' call sites, so that their fast path has no branch on the protocol).
    #[inline(always)]
    pub(crate) fn claim_in(&self, flavor: Flavor, wait: Wait) -> Result<u64, Fail> {
        match self.attempt(flavor) {
            Err(Fail::NotNow) => self.claim_slow(wait),
            r => r,
        }
    }

    #[cold]
    fn claim_slow(&self, wait: Wait) -> Result<u64, Fail> {
        let ring = &*self.ring;
        let Wait::For(timeout) = wait else {
            if ring.peers_left(ring.consumers()) {
                return Err(Fail::Disconnected);
            }
            // Full. If a consumer holds the slot we need, now and then ask whether it died
            // (then the slot is freed and the push goes on): a poller gets past a dead
            // consumer as a blocked push does.
            if ring.tail_held() && self.probe_now() && ring.free_dead_pop() {
                return self.attempt(ring.flavor());
            }
            return Err(Fail::NotNow);
        };
        let flavor = ring.flavor();
        let attempt = |p: Poll| match self.attempt(flavor) {
            Ok(pos) => Some(Ok(pos)),
            Err(Fail::NotNow) => {
                if p == Poll::Slice && ring.free_dead_pop() {
                    return match self.attempt(flavor) {
                        Err(Fail::NotNow) => None,
                        r => Some(r),
                    };
                }
                None
            }
            Err(f) => Some(Err(f)),
        };
        // Only now, with the ring full, is the clock read for the deadline.
        match ring.sync().not_full.wait_until(
            &effective(ring, self.strategy),
            Deadline::from_timeout(timeout),
            role::watching(ring.consumers(), ring.prober(), attempt),
        ) {
            Some(Waited::Ready(r)) => r,
            Some(Waited::PeersGone) => Err(Fail::Disconnected),
            // The deadline passed, maybe before any sleep slice checked the consumers: what a
            // slice does, once (free a dead consumer's slot, look again), unless the call did
            // not wait at all (a zero timeout is a non-blocking push: no liveness probes).
            None if !waited(timeout) => Err(Fail::Timeout),
            None => match attempt(Poll::Slice) {
                Some(r) => r,
                None if ring.peers_gone(ring.consumers()) => Err(Fail::Disconnected),
                None => Err(Fail::Timeout),
            },
        }
    }

    /// Publishes the slot taken by [`claim`](Self::claim) at `pos`.
    #[inline(always)]
    pub(crate) fn commit(&self, pos: u64) {
        self.commit_in(self.ring.flavor(), pos)
    }

    /// [`commit`](Self::commit) on a ring known to be of `flavor`.
    #[inline(always)]
    pub(crate) fn commit_in(&self, flavor: Flavor, pos: u64) {
        match flavor {
            Flavor::Spsc => self.ring.spsc_publish(&self.cur, 1),
            Flavor::Mpmc => self.ring.mpmc_publish(pos),
        }
    }

    /// Pushes `value`, waiting as `wait` says; hands it back on failure.
    #[inline(always)]
    pub(crate) fn push<T: Element>(&self, value: T, wait: Wait) -> Result<(), (Fail, T)> {
        self.push_in(self.ring.flavor(), value, wait)
    }

    /// [`push`](Self::push) on a ring known to be of `flavor`.
    #[inline(always)]
    pub(crate) fn push_in<T: Element>(
        &self,
        flavor: Flavor,
        value: T,
        wait: Wait,
    ) -> Result<(), (Fail, T)> {
        match self.claim_in(flavor, wait) {
            Ok(pos) => {
                // SAFETY: the slot at `pos` is ours (claimed, not yet published): no consumer
                // reads it and no producer writes it until `commit`; an element ring's payload
                // is aligned for T and holds one.
                unsafe { self.payload(pos).cast::<T>().as_ptr().write(value) };
                self.commit_in(flavor, pos);
                Ok(())
            }
            Err(f) => Err((f, value)),
        }
    }

    /// Pushes one byte message (at most the ring's maximum: the caller checked), waiting as
    /// `wait` says.
    #[inline(always)]
    pub(crate) fn push_bytes(&self, msg: &[u8], wait: Wait) -> Result<(), Fail> {
        debug_assert!(msg.len() <= self.ring.max_message());
        let pos = self.claim(wait)?;
        let ring = &*self.ring;
        // SAFETY: the slot is ours until commit (as in `push`); its message area has room for
        // max >= msg.len() bytes; `msg` is not in the ring.
        unsafe { copy_bytes(msg.as_ptr(), ring.msg_data(pos), msg.len()) };
        ring.msg_len(pos).store(msg.len() as u32, Ordering::Relaxed);
        self.commit(pos);
        Ok(())
    }

    /// Marks the byte slot claimed at `pos` as a cancelled loan and publishes it (MPMC rings,
    /// whose consumers pass over it); nothing at all in SPSC rings (the slot was never
    /// published: the next claim gets it again).
    pub(crate) fn cancel_bytes(&self, pos: u64) {
        if self.ring.flavor() == Flavor::Mpmc {
            self.ring.msg_len(pos).store(CANCELLED, Ordering::Relaxed);
            self.commit(pos);
        }
    }

    /// Up to `want` free slots from the tail, without waiting (SPSC rings): the first
    /// position and how many. `Closed`, `Corrupt`.
    #[inline]
    pub(crate) fn free_run(&self, want: u64) -> Result<(u64, u64), Fail> {
        debug_assert_eq!(self.ring.flavor(), Flavor::Spsc);
        let state = self.ring.state();
        if state != 0 {
            return Err(if state & !CLOSED != 0 {
                Fail::Corrupt
            } else {
                Fail::Closed
            });
        }
        let free = self
            .ring
            .spsc_free(&self.cur, want)
            .map_err(|_| Fail::Corrupt)?;
        Ok((self.cur.tail(), free.min(want)))
    }

    /// Publishes `n` slots written from the tail on (SPSC rings; `n` at most what
    /// [`free_run`](Self::free_run) gave).
    #[inline]
    pub(crate) fn commit_run(&self, n: u64) {
        if n > 0 {
            self.ring.spsc_publish(&self.cur, n);
        }
    }

    /// Copies `items` into the ring, in order, as far as they fit, without waiting; how many.
    pub(crate) fn push_slice<T: Element>(&self, items: &[T]) -> usize {
        if items.is_empty() {
            return 0;
        }
        if self.ring.flavor() == Flavor::Mpmc {
            let mut n = 0;
            for &v in items {
                if self.push(v, Wait::No).is_err() {
                    break;
                }
                n += 1;
            }
            return n;
        }
        let Ok((pos, n)) = self.free_run(items.len() as u64) else {
            return 0;
        };
        // SAFETY: n slots from `pos` are free and ours (free_run); contiguous `T` slots.
        unsafe { copy_run(&self.ring, pos, n as usize, items.as_ptr(), true) };
        self.commit_run(n);
        n as usize
    }
}

/// Copies `len` bytes from `src` to `dst`: inline for messages of up to 64 bytes (whole
/// unaligned words, the last one overlapping the one before, so no byte outside either range
/// is touched), `memcpy` above. A small message costs a few moves instead of a library call.
///
/// # Safety
///
/// `src` is valid for reads and `dst` for writes of `len` bytes, and they do not overlap.
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    use std::ptr::{read_unaligned as rd, write_unaligned as wr};
    // SAFETY: every access below lies within [0, len) of its range, which the caller
    // guarantees valid (and not overlapping); unaligned reads and writes of plain integers.
    unsafe {
        if len > 64 {
            std::ptr::copy_nonoverlapping(src, dst, len);
        } else if len >= 16 {
            let mut i = 0;
            while i + 16 < len {
                wr(dst.add(i).cast::<u128>(), rd(src.add(i).cast::<u128>()));
                i += 16;
            }
            let j = len - 16;
            wr(dst.add(j).cast::<u128>(), rd(src.add(j).cast::<u128>()));
        } else if len >= 8 {
            let (a, b) = (rd(src.cast::<u64>()), rd(src.add(len - 8).cast::<u64>()));
            wr(dst.cast::<u64>(), a);
            wr(dst.add(len - 8).cast::<u64>(), b);
        } else if len >= 4 {
            let (a, b) = (rd(src.cast::<u32>()), rd(src.add(len - 4).cast::<u32>()));
            wr(dst.cast::<u32>(), a);
            wr(dst.add(len - 4).cast::<u32>(), b);
        } else {
            for i in 0..len {
                *dst.add(i) = *src.add(i);
            }
        }
    }
}

/// Copies `n` elements between `items` and the ring's slots from `pos` on (SPSC element
/// rings, whose slots are contiguous `T`s), in two runs when they wrap.
///
/// # Safety
///
/// The `n` slots from `pos` are ours (free for a write, published for a read); `items` is valid
/// for `n` elements and not in the ring.
unsafe fn copy_run<T>(ring: &Ring, pos: u64, n: usize, items: *const T, into_ring: bool) {
    let cap = ring.capacity() as usize;
    let start = ring.index_of(pos);
    let first = n.min(cap - start);
    let at = ring.payload(pos).cast::<T>().as_ptr();
    let base = ring
        .payload(pos.wrapping_sub(start as u64))
        .cast::<T>()
        .as_ptr();
    let items = items.cast_mut();
    // SAFETY: the first run ends at or before the end of the ring, the rest (n - first < cap)
    // starts at slot 0; all are ours (the caller), and `items` holds n elements.
    unsafe {
        if into_ring {
            std::ptr::copy_nonoverlapping(items, at, first);
            std::ptr::copy_nonoverlapping(items.add(first), base, n - first);
        } else {
            std::ptr::copy_nonoverlapping(at, items, first);
            std::ptr::copy_nonoverlapping(base, items.add(first), n - first);
        }
    }
}

impl Rx {
    /// One non-blocking attempt at a published item that `accept` agrees to: its position
    /// (the slot is ours until [`release`](Self::release)), or `NotNow` (empty), `Corrupt`,
    /// or what `accept` rejected it with.
    #[inline(always)]
    fn attempt(&self, flavor: Flavor, accept: &mut impl FnMut(u64) -> Accept) -> Result<u64, Fail> {
        let ring = &*self.ring;
        // One load of a line that changes only on close, poison or a sleeper's arrival: a
        // poisoned ring stops delivering at once, also what this side had already seen.
        if ring.state() & !CLOSED != 0 {
            return Err(Fail::Corrupt);
        }
        match flavor {
            Flavor::Spsc => match ring.spsc_ready(&self.cur, 1) {
                Ok(0) => Err(Fail::NotNow),
                Ok(_) => {
                    let pos = self.cur.head();
                    match accept(pos) {
                        Accept::Take => Ok(pos),
                        Accept::Reject(f) => Err(f),
                        // No SPSC producer publishes a cancelled loan.
                        Accept::Skip => {
                            ring.poison();
                            Err(Fail::Corrupt)
                        }
                    }
                }
                Err(_) => Err(Fail::Corrupt),
            },
            Flavor::Mpmc => match ring.mpmc_take(self.role, accept) {
                Ok(Some(pos)) => Ok(pos),
                Ok(None) => Err(Fail::NotNow),
                Err(f) => Err(f),
            },
        }
    }

    /// A published item's position, waiting as `wait` says (the slot is ours until
    /// [`release`](Self::release), which must follow in MPMC rings): `NotNow` (empty, without
    /// waiting), `Timeout`, `Closed` and `Disconnected` (each only once drained), `Corrupt`,
    /// or what `accept` rejected the next item with.
    #[inline(always)]
    pub(crate) fn take(&self, wait: Wait, accept: impl FnMut(u64) -> Accept) -> Result<u64, Fail> {
        self.take_in(self.ring.flavor(), wait, accept)
    }

    /// [`take`](Self::take) on a ring known to be of `flavor`.
    #[inline(always)]
    pub(crate) fn take_in(
        &self,
        flavor: Flavor,
        wait: Wait,
        mut accept: impl FnMut(u64) -> Accept,
    ) -> Result<u64, Fail> {
        match self.attempt(flavor, &mut accept) {
            Err(Fail::NotNow) => self.take_slow(wait, &mut accept),
            r => r,
        }
    }

    #[cold]
    fn take_slow(&self, wait: Wait, accept: &mut impl FnMut(u64) -> Accept) -> Result<u64, Fail> {
        let ring = &*self.ring;
        let flavor = ring.flavor();
        let Wait::For(timeout) = wait else {
            // Empty now. While the queue is open and producers are attached, that is the
            // answer: two loads of lines nobody writes meanwhile, and no second look at the
            // producer's index (a non-blocking pop that finds the queue empty stays cheap).
            // Closed, or every producer gone (read before the last look, so that a producer
            // that pushed and left is not reported gone with its item queued): look once more.
            let closed = ring.is_closed();
            let gone = ring.peers_left(ring.producers());
            if !closed && !gone {
                // If a producer took the head position and has not published it, now and then
                // ask whether it died (then its position is passed over): a poller gets past a
                // dead producer as a blocked pop does.
                if ring.head_stuck() && self.probe_now() && ring.skip_dead_pushes() {
                    return self.attempt(flavor, accept);
                }
                return Err(Fail::NotNow);
            }
            // Closed, or every producer gone: what is queued behind a dead producer's position
            // is still delivered before Closed or Disconnected.
            ring.skip_dead_pushes();
            return match self.attempt(flavor, accept) {
                Err(Fail::NotNow) if closed => Err(Fail::Closed),
                Err(Fail::NotNow) => Err(Fail::Disconnected),
                r => r,
            };
        };
        let mut attempt = |p: Poll| -> Option<Result<u64, Fail>> {
            // The close is read before the look: what was pushed before a close we see is
            // seen by the look (never `Closed` with an item queued).
            let closed = ring.is_closed();
            match self.attempt(flavor, accept) {
                Err(Fail::NotNow) => {}
                r => return Some(r),
            }
            // Nothing at the head. Once per sleep slice (and on a closed ring, whose last items
            // may sit behind a dead producer's position), pass over every position whose
            // producer died before publishing it, then look again.
            if (p == Poll::Slice || closed) && ring.skip_dead_pushes() {
                match self.attempt(flavor, accept) {
                    Err(Fail::NotNow) => {}
                    r => return Some(r),
                }
            }
            // Closed only once drained (the attempts above found nothing).
            closed.then_some(Err(Fail::Closed))
        };
        // Only now, with the ring empty, is the clock read for the deadline.
        match ring.sync().not_empty.wait_until(
            &effective(ring, self.strategy),
            Deadline::from_timeout(timeout),
            role::watching(ring.producers(), ring.prober(), &mut attempt),
        ) {
            Some(Waited::Ready(r)) => r,
            Some(Waited::PeersGone) => Err(Fail::Disconnected),
            // The deadline passed, maybe before any sleep slice: what a slice does, once (pass
            // over dead producers' positions, look again), then whether the producers are gone.
            None => match attempt(Poll::Slice) {
                Some(r) => r,
                None if ring.peers_gone(ring.producers()) => Err(Fail::Disconnected),
                None => Err(Fail::Timeout),
            },
        }
    }

    /// Hands the slot taken by [`take`](Self::take) at `pos` back to the producers.
    #[inline(always)]
    pub(crate) fn release(&self, pos: u64) {
        self.release_in(self.ring.flavor(), pos)
    }

    /// [`release`](Self::release) on a ring known to be of `flavor`.
    #[inline(always)]
    pub(crate) fn release_in(&self, flavor: Flavor, pos: u64) {
        match flavor {
            Flavor::Spsc => self.ring.spsc_release(&self.cur, 1),
            Flavor::Mpmc => self.ring.mpmc_finish(pos),
        }
    }

    /// Pops an element, waiting as `wait` says.
    #[inline(always)]
    pub(crate) fn pop<T: Element>(&self, wait: Wait) -> Result<T, Fail> {
        self.pop_in(self.ring.flavor(), wait)
    }

    /// [`pop`](Self::pop) on a ring known to be of `flavor`.
    #[inline(always)]
    pub(crate) fn pop_in<T: Element>(&self, flavor: Flavor, wait: Wait) -> Result<T, Fail> {
        let pos = self.take_in(flavor, wait, |_| Accept::Take)?;
        // SAFETY: the slot at `pos` is ours (published and taken): its producer wrote a T
        // before publishing, and nobody writes it until `release`; aligned for T.
        let v = unsafe { self.payload(pos).cast::<T>().as_ptr().read() };
        self.release_in(flavor, pos);
        Ok(v)
    }

    /// The verdict on the byte message at `pos` for a destination with room for `room`
    /// bytes (`None`: any length), and its checked length.
    #[inline(always)]
    fn judge_bytes(&self, pos: u64, room: Option<usize>, len: &mut usize) -> Accept {
        let ring = &*self.ring;
        let word = ring.msg_len(pos).load(Ordering::Relaxed);
        if word == CANCELLED && ring.flavor() == Flavor::Mpmc {
            return Accept::Skip;
        }
        match ring.check_len(word) {
            Err(_) => Accept::Reject(Fail::Corrupt),
            Ok(n) if room.is_some_and(|r| r < n) => Accept::Reject(Fail::TooSmall(n)),
            Ok(n) => {
                *len = n;
                Accept::Take
            }
        }
    }

    /// Pops one byte message into `dest`, waiting as `wait` says; its length.
    #[inline(always)]
    pub(crate) fn pop_bytes(&self, dest: &mut Dest<'_>, wait: Wait) -> Result<usize, Fail> {
        let room = match dest {
            Dest::Slice(b) => Some(b.len()),
            Dest::Vec(_) => None,
        };
        let mut len = 0;
        let pos = self.take(wait, |pos| self.judge_bytes(pos, room, &mut len))?;
        let data = self.ring.msg_data(pos);
        match dest {
            // SAFETY: the slot is ours until release; len <= max bytes lie in its message
            // area and fit in `b` (judged above); `b` is not in the ring.
            Dest::Slice(b) => unsafe { copy_bytes(data, b.as_mut_ptr(), len) },
            Dest::Vec(v) => {
                v.clear();
                // SAFETY: as above; nobody writes the slot while we hold it.
                v.extend_from_slice(unsafe { std::slice::from_raw_parts(data, len) });
            }
        }
        self.release(pos);
        Ok(len)
    }

    /// Takes the next byte message in place, waiting as `wait` says: its position and length
    /// (the caller releases it).
    pub(crate) fn take_bytes(&self, wait: Wait) -> Result<(u64, usize), Fail> {
        let mut len = 0;
        let pos = self.take(wait, |pos| self.judge_bytes(pos, None, &mut len))?;
        Ok((pos, len))
    }

    /// Up to `want` published items from the head, without waiting (SPSC rings): the first
    /// position and how many. `Corrupt`.
    #[inline]
    pub(crate) fn ready_run(&self, want: u64) -> Result<(u64, u64), Fail> {
        debug_assert_eq!(self.ring.flavor(), Flavor::Spsc);
        if self.ring.state() & !CLOSED != 0 {
            return Err(Fail::Corrupt);
        }
        let ready = self
            .ring
            .spsc_ready(&self.cur, want)
            .map_err(|_| Fail::Corrupt)?;
        Ok((self.cur.head(), ready.min(want)))
    }

    /// Releases `n` items read from the head on (SPSC rings; `n` at most what
    /// [`ready_run`](Self::ready_run) gave).
    #[inline]
    pub(crate) fn release_run(&self, n: u64) {
        if n > 0 {
            self.ring.spsc_release(&self.cur, n);
        }
    }

    /// Copies up to `out.len()` elements out of the ring, in order, without waiting; how
    /// many.
    pub(crate) fn pop_slice<T: Element>(&self, out: &mut [T]) -> usize {
        if out.is_empty() {
            return 0;
        }
        if self.ring.flavor() == Flavor::Mpmc {
            let mut n = 0;
            for slot in out.iter_mut() {
                match self.pop(Wait::No) {
                    Ok(v) => *slot = v,
                    Err(_) => break,
                }
                n += 1;
            }
            return n;
        }
        let Ok((pos, n)) = self.ready_run(out.len() as u64) else {
            return 0;
        };
        // SAFETY: n slots from `pos` are published and ours (ready_run); contiguous `T`s.
        unsafe { copy_run(&self.ring, pos, n as usize, out.as_mut_ptr(), false) };
        self.release_run(n);
        n as usize
    }

    /// Waits until an item is ready to take (`Ok`), or says why none will come: `Closed`
    /// (closed and drained), `Disconnected` (drained, producers gone), `Timeout`, `Corrupt`.
    pub(crate) fn wait_readable(&self, timeout: Option<Duration>) -> Result<(), Fail> {
        let ring = &*self.ring;
        let mut ready = |_: Poll| -> Option<Result<(), Fail>> {
            // The state is read before the look (see `take_slow`).
            let state = ring.state();
            if state & !CLOSED != 0 {
                return Some(Err(Fail::Corrupt));
            }
            let readable = match ring.flavor() {
                Flavor::Spsc => match ring.spsc_readable(&self.cur) {
                    Ok(r) => r,
                    Err(_) => return Some(Err(Fail::Corrupt)),
                },
                Flavor::Mpmc => ring.mpmc_readable(),
            };
            if readable {
                return Some(Ok(()));
            }
            (state & CLOSED != 0).then_some(Err(Fail::Closed))
        };
        if let Some(r) = ready(Poll::Check) {
            return r;
        }
        match ring.sync().not_empty.wait_until(
            &effective(ring, self.strategy),
            Deadline::from_timeout(timeout),
            role::watching(ring.producers(), ring.prober(), &mut ready),
        ) {
            Some(Waited::Ready(r)) => r,
            None if ring.peers_gone(ring.producers()) => {
                ready(Poll::Check).unwrap_or(Err(Fail::Disconnected))
            }
            None => Err(Fail::Timeout),
            Some(Waited::PeersGone) => Err(Fail::Disconnected),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::copy_bytes;

    /// Every length up to past the inline limit: exactly the bytes asked for are copied, in
    /// place, and nothing around the destination range is touched.
    #[test]
    fn copy_bytes_copies_exactly_len_bytes() {
        for len in 0..=80usize {
            let src: Vec<u8> = (0..len + 16).map(|i| (i * 7 + 1) as u8).collect();
            let mut dst = vec![0xEEu8; len + 32];
            // SAFETY: src has len + 16 >= len bytes; dst[8..] has len + 24 >= len bytes.
            unsafe { copy_bytes(src.as_ptr().add(3), dst.as_mut_ptr().add(8), len) };
            assert!(
                dst[..8].iter().all(|&b| b == 0xEE),
                "len {len}: wrote before"
            );
            assert_eq!(&dst[8..8 + len], &src[3..3 + len], "len {len}");
            assert!(
                dst[8 + len..].iter().all(|&b| b == 0xEE),
                "len {len}: wrote after"
            );
        }
    }
}
