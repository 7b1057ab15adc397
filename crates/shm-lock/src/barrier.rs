//! `Barrier`: `parties` threads (in any processes) wait for each other; robust against dead
//! waiters, and bounded by the caller's deadline everywhere.

use crate::error::{BarrierError, BarrierTimeoutError};
use crate::mutex::LockGuard;
use crate::object::{self, Builder, Object};
use crate::raw::{Acquired, RawLock, RawLockError, RawRobustLock};
use shm_core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shm_core::sync::Poll;
use shm_core::{Deadline, EventCount, Home, ObjectKind, OpenError, Segment, WaitStrategy};
use shm_core::{Liveness, LivenessProbe, OsProbe, ThreadWord};
use std::error::Error;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::time::Duration;

/// The action run by the last thread to arrive.
pub(crate) type Action = Box<dyn Fn() -> Result<(), Box<dyn Error + Send + Sync>> + Send + Sync>;

/// Most parties a barrier can have.
pub const MAX_PARTIES: u32 = 4096;

/// How long a timed-out waiter tries for the internal lock to break the barrier.
const BREAK_GRACE: Duration = Duration::from_millis(10);

/// `phase`: arrivals are being counted.
const FILLING: u32 = 0;
/// `phase`: the last arrival runs the action (the internal lock is free meanwhile).
const ACTION: u32 = 1;

/// Fixed part of a barrier's control block (64 bytes), followed by `parties` slots of 8 bytes.
///
/// | field | meaning |
/// |---|---|
/// | `lock` | robust lock over everything below (a holder that died breaks the barrier) |
/// | `ec` | waiters sleep on it; every end of a round notifies it |
/// | `round` | low 32 bits: the generation, bumped when a round passes, breaks or is reset; high 32 bits: bit `g % 32` is set when round `g` ended broken |
/// | `count` | arrivals in this round, `0..=parties` (anything else: corrupt, breaks) |
/// | `broken` | 1 while broken (until `reset`) |
/// | `phase` | `FILLING`, or `ACTION` while the last arrival runs the action (outside the lock) |
/// | slots | thread identity words of this round's arrivals (`0..count`) |
///
/// A waiter of round `g` reads `round` once: if the generation moved on by at most 32, the bit
/// of `g` tells how its round ended, in the same atomic read (no race with later rounds).
#[repr(C, align(8))]
struct BarrierHead {
    lock: RawLock,
    ec: EventCount,
    round: AtomicU64,
    count: AtomicU32,
    broken: AtomicU32,
    phase: AtomicU32,
    _reserved: AtomicU32,
    _reserved2: AtomicU64,
}

/// Size of the fixed part: 64 bytes (loom's atomics are larger, hence computed).
const HEAD_SIZE: usize = std::mem::size_of::<BarrierHead>();
#[cfg(not(loom))]
const _: () = {
    assert!(HEAD_SIZE == 64);
    assert!(std::mem::offset_of!(BarrierHead, ec) == 24);
    assert!(std::mem::offset_of!(BarrierHead, round) == 32);
    assert!(std::mem::offset_of!(BarrierHead, count) == 40);
};

/// Bytes per slot (8; loom's atomics are larger, hence computed).
const SLOT_SIZE: usize = std::mem::size_of::<AtomicU64>();

fn body_len_for(parties: u32) -> usize {
    HEAD_SIZE + SLOT_SIZE * parties as usize
}

fn gen_of(round: u64) -> u32 {
    round as u32
}

/// The `round` word after round `gen` ended (`broken` or passed).
fn next_round(round: u64, broken: bool) -> u64 {
    let gen = gen_of(round);
    let bit = 1u64 << (32 + gen % 32);
    let hist = if broken { round | bit } else { round & !bit };
    (hist & !0xffff_ffff) | u64::from(gen.wrapping_add(1))
}

/// How round `gen` ended, from a `round` word: `None` while it runs.
fn outcome(round: u64, gen: u32, index: u32) -> Option<Result<u32, BarrierError>> {
    let dist = gen_of(round).wrapping_sub(gen);
    if dist == 0 {
        return None;
    }
    if dist > 32 {
        // So many rounds ended since that the record of ours is gone: it cannot be confirmed.
        return Some(Err(BarrierError::Broken));
    }
    Some(if round & (1u64 << (32 + gen % 32)) != 0 {
        Err(BarrierError::Broken)
    } else {
        Ok(index)
    })
}

impl BarrierHead {
    fn new() -> BarrierHead {
        BarrierHead {
            lock: RawLock::new(),
            ec: EventCount::new(),
            round: AtomicU64::new(0),
            count: AtomicU32::new(0),
            broken: AtomicU32::new(0),
            phase: AtomicU32::new(FILLING),
            _reserved: AtomicU32::new(0),
            _reserved2: AtomicU64::new(0),
        }
    }
}

/// Writes the initial state (the same as all-zero bytes outside loom).
///
/// # Safety
///
/// `body` is valid for writes of `body_len_for(parties)` bytes, 128-aligned, and unshared.
unsafe fn init_body(body: NonNull<u8>, parties: u32) {
    // SAFETY: per the contract, the head fits at the 128-aligned start.
    unsafe {
        body.cast::<BarrierHead>()
            .as_ptr()
            .write(BarrierHead::new())
    };
    for i in 0..parties as usize {
        // SAFETY: slot `i` lies inside the body; SLOT_SIZE-aligned (HEAD_SIZE is a multiple).
        let slot = unsafe { body.as_ptr().add(HEAD_SIZE + SLOT_SIZE * i) };
        // SAFETY: as above; writing a fresh atomic into unshared memory.
        unsafe { slot.cast::<AtomicU64>().write(AtomicU64::new(0)) };
    }
}

/// A barrier across processes: Python's `multiprocessing.Barrier`.
///
/// `wait` returns the arrival index (`0` for the first, `parties - 1` for the last, which also
/// runs the action if this handle has one). The action runs *outside* the barrier's internal
/// lock, so it may call [`abort`](Barrier::abort) or [`reset`](Barrier::reset) itself (the
/// last arrival's `wait` then returns [`BarrierError::Broken`]). A timeout, `abort`, a failing
/// action, or a waiter that died breaks the barrier: every waiter gets
/// [`BarrierError::Broken`] instead of waiting forever (a dead waiter is noticed within one
/// wait slice, [`WaitStrategy::slice`]). `reset` makes it usable again.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_lock::Barrier;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let name = SegmentName::unique();
/// let b = Barrier::builder(&name).parties(1).action(|| Ok(())).create()?;
/// assert_eq!(b.wait()?, 0);
/// let opened = Barrier::builder(&name).open()?; // adopts the parties
/// assert_eq!(opened.parties(), 1);
/// # Ok(())
/// # }
/// ```
pub struct Barrier {
    home: Home,
    strategy: WaitStrategy,
    parties: u32,
    action: Option<Action>,
}

impl Barrier {
    /// A process-local barrier on the heap.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 or above [`MAX_PARTIES`].
    pub fn new(parties: u32) -> Barrier {
        assert!(
            (1..=MAX_PARTIES).contains(&parties),
            "Barrier::new: parties must be in 1..={MAX_PARTIES}"
        );
        let home = Home::heap(body_len_for(parties));
        // SAFETY: the block is body_len_for(parties) bytes, 128-aligned, and not yet shared;
        // the head and the slots are written in place.
        unsafe { init_body(home.as_ptr(), parties) };
        Barrier {
            home,
            strategy: WaitStrategy::default(),
            parties,
            action: None,
        }
    }

    /// A builder for the barrier named `name` (set [`Builder::parties`] to create it).
    pub fn builder(name: &shm_core::SegmentName) -> Builder<Barrier> {
        Builder::new(name)
    }

    /// Sets the action this handle runs when its thread arrives last.
    pub fn set_action(
        &mut self,
        action: impl Fn() -> Result<(), Box<dyn Error + Send + Sync>> + Send + Sync + 'static,
    ) {
        self.action = Some(Box::new(action));
    }

    fn head(&self) -> &BarrierHead {
        // SAFETY: the home holds a BarrierHead at its start (all-zero is the initial state;
        // size checked on open) and lives as long as `self`; atomics only.
        unsafe { self.home.as_ptr().cast::<BarrierHead>().as_ref() }
    }

    fn slot(&self, i: u32) -> &AtomicU64 {
        debug_assert!(i < self.parties);
        let i = i.min(self.parties - 1) as usize;
        // SAFETY: the body holds HEAD_SIZE + SLOT_SIZE * parties bytes (checked on
        // create/open) and `i < parties`, so the offset stays inside the home.
        let p = unsafe { self.home.as_ptr().add(HEAD_SIZE + SLOT_SIZE * i) };
        // SAFETY: `p` is inside the home, 8-aligned (the base is 128-aligned, HEAD_SIZE a
        // multiple of 8), and slots are atomics only, valid for any bit pattern.
        unsafe { p.cast::<AtomicU64>().as_ref() }
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn slot_for_test(&self, i: u32) -> &AtomicU64 {
        self.slot(i)
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn corrupt_count_for_test(&self, count: u32) {
        self.head().count.store(count, Ordering::Relaxed);
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn raw_lock_for_test(&self) -> &RawLock {
        &self.head().lock
    }

    /// Takes the internal lock until `deadline` (`None` when it passed). A holder that died
    /// (or a lock word forged to name this thread, which our code never leaves held) breaks
    /// the current round.
    fn inner(&self, deadline: Deadline) -> Option<LockGuard<'_>> {
        let raw = &self.head().lock;
        let clean = match raw.lock_until(&self.strategy, deadline) {
            Ok(Acquired::Clean) => true,
            Ok(Acquired::OwnerDied) | Err(RawLockError::Deadlock) => false,
            Err(_) => return None,
        };
        let g = LockGuard::assume_held(raw);
        if !clean {
            self.break_locked();
            g.mark_consistent();
        }
        Some(g)
    }

    /// Ends the current round (lock held): broken or passed; wakes every waiter.
    fn end_round_locked(&self, broken: bool) {
        let h = self.head();
        if broken {
            h.broken.store(1, Ordering::Relaxed);
        }
        h.count.store(0, Ordering::Relaxed);
        h.phase.store(FILLING, Ordering::Relaxed);
        let r = h.round.load(Ordering::Relaxed);
        h.round.store(next_round(r, broken), Ordering::Release);
        h.ec.notify_all();
    }

    fn break_locked(&self) {
        self.end_round_locked(true);
    }

    /// Waits until `parties` threads have called `wait`; returns the arrival index.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Broken`] if the barrier is or becomes broken,
    /// [`BarrierError::ActionFailed`] if this thread ran the action and it failed.
    ///
    /// # Panics
    ///
    /// If the action panics (the barrier is broken first), the panic resumes here.
    pub fn wait(&self) -> Result<u32, BarrierError> {
        match self.wait_until(Deadline::NEVER) {
            Ok(i) => Ok(i),
            Err(BarrierTimeoutError::ActionFailed(e)) => Err(BarrierError::ActionFailed(e)),
            // Timeout cannot happen without a deadline.
            Err(_) => Err(BarrierError::Broken),
        }
    }

    /// As [`wait`](Self::wait), for at most `timeout`, which bounds every step including the
    /// internal lock. A timeout breaks the barrier.
    ///
    /// # Errors
    ///
    /// [`BarrierTimeoutError::Timeout`] when this wait timed out, otherwise as
    /// [`wait`](Self::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, BarrierTimeoutError> {
        self.wait_until(Deadline::after(timeout))
    }

    fn wait_until(&self, deadline: Deadline) -> Result<u32, BarrierTimeoutError> {
        let h = self.head();
        let me = ThreadWord::current().get();
        loop {
            let g = self.inner(deadline).ok_or(BarrierTimeoutError::Timeout)?;
            if h.broken.load(Ordering::Relaxed) != 0 {
                return Err(BarrierTimeoutError::Broken);
            }
            let gen = gen_of(h.round.load(Ordering::Relaxed));
            let c = h.count.load(Ordering::Relaxed);
            if h.phase.load(Ordering::Relaxed) == ACTION && c == self.parties {
                // The previous round's action still runs: enter once that round ended.
                drop(g);
                match self.wait_round(gen, 0, deadline) {
                    Err(BarrierTimeoutError::Timeout) => return Err(BarrierTimeoutError::Timeout),
                    _ => continue,
                }
            }
            if c >= self.parties {
                // Corrupt: written by someone else. Break rather than index out of bounds.
                self.break_locked();
                return Err(BarrierTimeoutError::Broken);
            }
            self.slot(c).store(me, Ordering::Relaxed);
            h.count.store(c + 1, Ordering::Relaxed);
            if c + 1 < self.parties {
                drop(g);
                return self.wait_round(gen, c, deadline);
            }
            let Some(action) = &self.action else {
                self.end_round_locked(false);
                return Ok(c);
            };
            h.phase.store(ACTION, Ordering::Relaxed);
            drop(g);
            return self.run_action(action, gen, c, deadline);
        }
    }

    /// The last arrival of round `gen` runs the action without the lock, then ends the round
    /// unless someone broke or reset it meanwhile.
    fn run_action(
        &self,
        action: &Action,
        gen: u32,
        c: u32,
        deadline: Deadline,
    ) -> Result<u32, BarrierTimeoutError> {
        let h = self.head();
        let result = catch_unwind(AssertUnwindSafe(action));
        let g = self.inner(deadline);
        let ours = g.is_some() && gen_of(h.round.load(Ordering::Relaxed)) == gen;
        match result {
            Ok(Ok(())) => {
                if ours {
                    self.end_round_locked(false);
                    return Ok(c);
                }
                drop(g);
                let r = h.round.load(Ordering::Acquire);
                match outcome(r, gen, c) {
                    Some(o) => o.map_err(Into::into),
                    // Still our round, but the lock could not be had in time.
                    None => Err(BarrierTimeoutError::Timeout),
                }
            }
            Ok(Err(e)) => {
                if ours {
                    self.break_locked();
                }
                Err(BarrierTimeoutError::ActionFailed(e))
            }
            Err(panic) => {
                if ours {
                    self.break_locked();
                }
                drop(g);
                resume_unwind(panic)
            }
        }
    }

    /// Waits (without the lock) for round `gen` to end; `c` is this thread's arrival index.
    fn wait_round(&self, gen: u32, c: u32, deadline: Deadline) -> Result<u32, BarrierTimeoutError> {
        let h = self.head();
        let got = h.ec.wait_until(&self.strategy, deadline, |poll| {
            if let Some(o) = outcome(h.round.load(Ordering::Acquire), gen, c) {
                return Some(o.map_err(BarrierTimeoutError::from));
            }
            if poll == Poll::Slice && self.some_waiter_died(gen, deadline, &OsProbe) {
                return Some(Err(BarrierTimeoutError::Broken));
            }
            None
        });
        if let Some(r) = got {
            return r;
        }
        // Timed out: break the round, if the internal lock can be had promptly.
        let Some(_g) = self.inner(Deadline::after(BREAK_GRACE)) else {
            return Err(BarrierTimeoutError::Timeout);
        };
        if let Some(o) = outcome(h.round.load(Ordering::Relaxed), gen, c) {
            return o.map_err(Into::into);
        }
        self.break_locked();
        Err(BarrierTimeoutError::Timeout)
    }

    /// Whether an arrival of round `gen` died (then the round is broken here).
    fn some_waiter_died(&self, gen: u32, deadline: Deadline, probe: &dyn LivenessProbe) -> bool {
        let h = self.head();
        let Some(_g) = self.inner(deadline) else {
            return false;
        };
        if gen_of(h.round.load(Ordering::Relaxed)) != gen {
            return false;
        }
        let n = h.count.load(Ordering::Relaxed).min(self.parties);
        let dead = (0..n).any(|i| {
            let w = self.slot(i).load(Ordering::Relaxed);
            w != 0 && probe.word_liveness(w) == Liveness::Dead
        });
        if dead {
            self.break_locked();
        }
        dead
    }

    /// Breaks the barrier: current and later waiters get [`BarrierError::Broken`] until
    /// [`reset`](Self::reset). May be called from the action.
    pub fn abort(&self) {
        if let Some(_g) = self.inner(Deadline::NEVER) {
            self.break_locked();
        }
    }

    /// Returns the barrier to its initial state; threads waiting now (and an action running
    /// now) get [`BarrierError::Broken`]. May be called from the action.
    pub fn reset(&self) {
        let h = self.head();
        let Some(_g) = self.inner(Deadline::NEVER) else {
            return;
        };
        let waiting =
            h.count.load(Ordering::Relaxed) != 0 || h.phase.load(Ordering::Relaxed) == ACTION;
        self.end_round_locked(waiting);
        h.broken.store(0, Ordering::Relaxed);
    }

    /// How many are waiting in the current round.
    pub fn n_waiting(&self) -> u32 {
        self.head().count.load(Ordering::Relaxed).min(self.parties)
    }

    /// How many must arrive.
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        self.head().broken.load(Ordering::Relaxed) != 0
    }

    /// Sets how blocked calls wait (the slice is also how soon a dead waiter is noticed).
    pub fn set_wait_strategy(&mut self, strategy: WaitStrategy) {
        self.strategy = strategy;
    }

    /// The segment, unless the barrier lives on the heap.
    pub fn segment(&self) -> Option<&Segment> {
        self.home.segment()
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .field("action", &self.action.is_some())
            .field("home", &self.home)
            .finish()
    }
}

impl Builder<Barrier> {
    /// How many must arrive (`1..=MAX_PARTIES`). Required to create; an opener that sets it
    /// gets [`OpenError::Mismatch`] if the segment records another number.
    pub fn parties(mut self, parties: u32) -> Self {
        self.parties = Some(parties);
        self
    }

    /// The action this handle runs when its thread arrives last (not stored in the segment:
    /// each process sets its own).
    pub fn action(
        mut self,
        action: impl Fn() -> Result<(), Box<dyn Error + Send + Sync>> + Send + Sync + 'static,
    ) -> Self {
        self.action = Some(Box::new(action));
        self
    }
}

impl Object for Barrier {
    const KIND: ObjectKind = ObjectKind::Barrier;
    fn body_len(b: &Builder<Self>) -> Result<usize, String> {
        match b.parties {
            Some(p) if (1..=MAX_PARTIES).contains(&p) => Ok(body_len_for(p)),
            Some(p) => Err(format!("must be in 1..={MAX_PARTIES}, got {p}")),
            None => Err("required to create a barrier".into()),
        }
    }
    const PARAMETER: &'static str = "parties";
    fn count(b: &Builder<Self>) -> u64 {
        b.parties.map_or(0, u64::from)
    }
    fn init(b: &Builder<Self>, body: NonNull<u8>) {
        // SAFETY: the body is body_len(b) bytes (checked parties), 128-aligned, unshared.
        unsafe { init_body(body, b.parties.unwrap_or(0)) }
    }
    fn from_home(home: Home, mut b: Builder<Self>) -> Result<Self, OpenError> {
        let count = home
            .segment()
            .map_or(b.parties.map_or(0, u64::from), |s| s.header().count());
        let parties = u32::try_from(count)
            .ok()
            .filter(|p| (1..=MAX_PARTIES).contains(p))
            .ok_or_else(|| OpenError::CorruptBody {
                what: "barrier parties",
                detail: format!("{count} is not in 1..={MAX_PARTIES}"),
            })?;
        object::check_adopted("parties", b.parties, parties)?;
        object::check_body(&home, body_len_for(parties))?;
        Ok(Barrier {
            home,
            strategy: b.knobs.strategy,
            parties,
            action: b.action.take(),
        })
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The broken/reset-round race of the old single `broken_tag`: a waiter of round 0 that
    /// wakes only after its round broke, a reset, and a later round broke too, must still see
    /// its own round as broken; and one whose round passed must see it passed although a
    /// later round broke.
    #[test]
    fn each_round_keeps_its_own_outcome() {
        let r0 = 0u64;
        let broke = next_round(r0, true); // round 0 broken
        let reset = next_round(broke, false); // round 1 ended by a reset with nobody waiting
        let broke_again = next_round(reset, true); // round 2 broken
        assert!(matches!(
            outcome(broke_again, 0, 1),
            Some(Err(BarrierError::Broken))
        ));
        assert!(matches!(outcome(broke_again, 1, 1), Some(Ok(1))));
        assert!(outcome(broke_again, 3, 0).is_none(), "round 3 still runs");

        let passed = next_round(r0, false);
        let later_broke = next_round(passed, true);
        assert!(matches!(outcome(later_broke, 0, 4), Some(Ok(4))));

        // 32 rounds later the record of round 0 is gone: it cannot be confirmed as passed.
        let mut r = passed;
        for _ in 0..32 {
            r = next_round(r, false);
        }
        assert!(matches!(outcome(r, 0, 0), Some(Err(BarrierError::Broken))));
        // Generations wrap around.
        let near_wrap = u64::from(u32::MAX);
        assert!(matches!(
            outcome(next_round(near_wrap, false), u32::MAX, 2),
            Some(Ok(2))
        ));
    }
}
