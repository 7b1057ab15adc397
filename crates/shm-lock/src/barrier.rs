//! `Barrier`: `parties` processes wait for each other; robust against dead waiters.

use crate::error::{BarrierError, LockError};
use crate::ident;
use crate::lock::{LockGuard, LockRef, LockState};
use crate::object::{self, Builder, Object};
use shm_core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shm_core::sync::{futex_wait, futex_wake_all, WaitOutcome};
use shm_core::{Deadline, Home, ObjectKind, OpenError, Segment, WaitStrategy};
use std::error::Error;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::time::Duration;

/// The action run by the last process to arrive.
pub(crate) type Action = Box<dyn Fn() -> Result<(), Box<dyn Error + Send + Sync>> + Send + Sync>;

/// Most parties a barrier can have.
pub const MAX_PARTIES: u32 = 4096;

/// Fixed part of a barrier's control block (64 bytes), followed by `parties` slots of 8 bytes.
///
/// | field | meaning |
/// |---|---|
/// | `lock` | robust lock over everything below (a holder that died breaks the barrier) |
/// | `gen` | generation; futex word; bumped when a round passes, breaks or is reset |
/// | `count` | arrivals in this round, `0..parties` (anything else: broken) |
/// | `broken` | 1 while broken (until `reset`) |
/// | `broken_tag` | `1 << 32 \| g` once round `g` ended broken |
/// | slots | thread identity words of this round's arrivals (`0..count`) |
#[repr(C, align(8))]
struct BarrierHead {
    lock: LockState,
    gen: AtomicU32,
    count: AtomicU32,
    broken: AtomicU32,
    _reserved: AtomicU32,
    broken_tag: AtomicU64,
    _reserved2: AtomicU64,
}

/// Size of the fixed part: 64 bytes (loom's atomics are larger, hence computed).
const HEAD_SIZE: usize = std::mem::size_of::<BarrierHead>();
#[cfg(not(loom))]
const _: () = assert!(HEAD_SIZE == 64);
#[cfg(not(loom))]
const _: () = assert!(std::mem::offset_of!(BarrierHead, gen) == 32);

fn tag(gen: u32) -> u64 {
    (1 << 32) | u64::from(gen)
}

fn body_len_for(parties: u32) -> usize {
    HEAD_SIZE + 8 * parties as usize
}

/// A barrier across processes: Python's `multiprocessing.Barrier`.
///
/// `wait` returns the arrival index (`0` for the first, `parties - 1` for the last, which also
/// runs the action if this handle has one). A timeout, [`abort`](Barrier::abort), a failing
/// action, or a waiter process that died breaks the barrier: every waiter gets
/// [`BarrierError::Broken`] instead of waiting forever (a dead waiter is noticed within one
/// wait slice, [`WaitStrategy::slice`]). [`reset`](Barrier::reset) makes it usable again.
///
/// # Examples
///
/// ```
/// use shm_core::SegmentName;
/// use shm_lock::Barrier;
///
/// let name = SegmentName::unique();
/// let b = Barrier::builder(&name).parties(1).action(|| Ok(())).create().unwrap();
/// assert_eq!(b.wait().unwrap(), 0);
/// assert_eq!(b.parties(), 1);
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
        // The zeroed heap block is large enough, and all-zero is the initial state.
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

    /// Sets the action this handle runs when its process arrives last.
    pub fn set_action(
        &mut self,
        action: impl Fn() -> Result<(), Box<dyn Error + Send + Sync>> + Send + Sync + 'static,
    ) {
        self.action = Some(Box::new(action));
    }

    fn head(&self) -> &BarrierHead {
        // SAFETY: the home holds a BarrierHead at its start (zeroed = valid; size checked on
        // open) and lives as long as `self`.
        unsafe { self.home.as_ptr().cast::<BarrierHead>().as_ref() }
    }

    fn slot(&self, i: u32) -> &AtomicU64 {
        debug_assert!(i < self.parties);
        let i = i.min(self.parties - 1) as usize;
        // SAFETY: the body holds HEAD_SIZE + 8 * parties bytes (checked on open/create) and
        // `i < parties`, so the offset stays inside the home.
        let p = unsafe { self.home.as_ptr().add(HEAD_SIZE + 8 * i) };
        // SAFETY: `p` is inside the home, 8-aligned (the base is 128-aligned, HEAD_SIZE is a
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

    fn lock_ref(&self) -> LockRef<'_> {
        // SAFETY: the LockState is inside the head, which lives as long as `self`.
        unsafe { LockRef::from_ptr(NonNull::from(&self.head().lock)) }.with_strategy(self.strategy)
    }

    /// Locks the internal lock; a holder that died breaks the barrier.
    fn inner(&self) -> LockGuard<'_> {
        loop {
            match self.lock_ref().lock() {
                Ok(g) => return g,
                Err(LockError::OwnerDied(g)) => {
                    self.break_locked();
                    g.mark_consistent();
                    return g;
                }
                // Deadlock: this thread holds it already, which our code never does; any
                // other error cannot come from lock(). Retry rather than panic.
                Err(_) => std::thread::yield_now(),
            }
        }
    }

    /// Breaks the current round (lock held).
    fn break_locked(&self) {
        let h = self.head();
        let g = h.gen.load(Ordering::Relaxed);
        h.broken_tag.store(tag(g), Ordering::Relaxed);
        h.broken.store(1, Ordering::Relaxed);
        h.count.store(0, Ordering::Relaxed);
        h.gen.store(g.wrapping_add(1), Ordering::Release);
        futex_wake_all(&h.gen);
    }

    /// Waits until `parties` threads have called `wait`; returns the arrival index.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Broken`] if the barrier is or becomes broken,
    /// [`BarrierError::ActionFailed`] if this process ran the action and it failed.
    ///
    /// # Panics
    ///
    /// If the action panics (the barrier is broken first), the panic resumes here.
    pub fn wait(&self) -> Result<u32, BarrierError> {
        self.wait_until(Deadline::NEVER)
    }

    /// As [`wait`](Self::wait), for at most `timeout`; a timeout breaks the barrier.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Timeout`] when this wait timed out, otherwise as [`wait`](Self::wait).
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32, BarrierError> {
        self.wait_until(Deadline::after(timeout))
    }

    fn wait_until(&self, deadline: Deadline) -> Result<u32, BarrierError> {
        let h = self.head();
        let me = ident::current();
        let g = self.inner();
        if h.broken.load(Ordering::Relaxed) != 0 {
            return Err(BarrierError::Broken);
        }
        let c = h.count.load(Ordering::Relaxed);
        if c >= self.parties {
            // Corrupt: written by someone else. Break rather than index out of bounds.
            self.break_locked();
            return Err(BarrierError::Broken);
        }
        self.slot(c).store(me, Ordering::Relaxed);
        h.count.store(c + 1, Ordering::Relaxed);
        if c + 1 == self.parties {
            if let Some(action) = &self.action {
                match catch_unwind(AssertUnwindSafe(action)) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        self.break_locked();
                        return Err(BarrierError::ActionFailed(e));
                    }
                    Err(panic) => {
                        self.break_locked();
                        drop(g);
                        resume_unwind(panic);
                    }
                }
            }
            h.count.store(0, Ordering::Relaxed);
            let gen = h.gen.load(Ordering::Relaxed);
            h.gen.store(gen.wrapping_add(1), Ordering::Release);
            drop(g);
            futex_wake_all(&h.gen);
            return Ok(c);
        }
        let my_gen = h.gen.load(Ordering::Relaxed);
        drop(g);
        loop {
            if h.gen.load(Ordering::Acquire) != my_gen {
                return if h.broken_tag.load(Ordering::Relaxed) == tag(my_gen) {
                    Err(BarrierError::Broken)
                } else {
                    Ok(c)
                };
            }
            let outcome = futex_wait(&h.gen, my_gen, deadline.min_after(self.strategy.slice));
            if outcome != WaitOutcome::TimedOut {
                continue;
            }
            let timed_out = deadline.has_passed();
            let g = self.inner();
            if h.gen.load(Ordering::Relaxed) == my_gen {
                if timed_out {
                    self.break_locked();
                    return Err(BarrierError::Timeout);
                }
                let n = h.count.load(Ordering::Relaxed).min(self.parties);
                if (0..n).any(|i| !crate::raw::alive(self.slot(i).load(Ordering::Relaxed))) {
                    self.break_locked();
                    return Err(BarrierError::Broken);
                }
            }
            drop(g);
        }
    }

    /// Breaks the barrier: current and later waiters get [`BarrierError::Broken`] until
    /// [`reset`](Self::reset).
    pub fn abort(&self) {
        let _g = self.inner();
        self.break_locked();
    }

    /// Returns the barrier to its initial state; threads waiting now get
    /// [`BarrierError::Broken`].
    pub fn reset(&self) {
        let h = self.head();
        let _g = self.inner();
        let gen = h.gen.load(Ordering::Relaxed);
        if h.count.load(Ordering::Relaxed) != 0 {
            h.broken_tag.store(tag(gen), Ordering::Relaxed);
        }
        h.count.store(0, Ordering::Relaxed);
        h.broken.store(0, Ordering::Relaxed);
        h.gen.store(gen.wrapping_add(1), Ordering::Release);
        futex_wake_all(&h.gen);
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
    pub fn set_strategy(&mut self, strategy: WaitStrategy) {
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
    /// How many must arrive (create only; `1..=MAX_PARTIES`).
    pub fn parties(mut self, parties: u32) -> Self {
        self.parties = parties;
        self
    }

    /// The action this handle runs when its process arrives last (not stored in the segment:
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
        if (1..=MAX_PARTIES).contains(&b.parties) {
            Ok(body_len_for(b.parties))
        } else {
            Err(format!(
                "barrier parties must be in 1..={MAX_PARTIES}, got {}",
                b.parties
            ))
        }
    }
    fn count(b: &Builder<Self>) -> u64 {
        u64::from(b.parties)
    }
    fn init(_: &Builder<Self>, _body: NonNull<u8>) {
        // The zeroed body is the initial state.
    }
    fn from_home(home: Home, mut b: Builder<Self>) -> Result<Self, OpenError> {
        let count = home
            .segment()
            .map_or(u64::from(b.parties), |s| s.header().count());
        let parties = u32::try_from(count)
            .ok()
            .filter(|p| (1..=MAX_PARTIES).contains(p))
            .ok_or(OpenError::Corrupt {
                field: "count",
                expected: u64::from(MAX_PARTIES),
                found: count,
            })?;
        object::check_body(&home, body_len_for(parties))?;
        Ok(Barrier {
            home,
            strategy: b.strategy,
            parties,
            action: b.action.take(),
        })
    }
}
