//! The robust lock algorithm shared by `Lock`, `RLock`, `Condition` and `Barrier`.
//!
//! # State
//!
//! | field | values | meaning |
//! |---|---|---|
//! | `owner` | `0` | free |
//! | | thread identity word | held by that thread (see `ident`) |
//! | `seq` | any | futex word: bumped by an unlock that saw `waiters != 0` |
//! | `waiters` | any | threads announced to sleep on `seq` (too high after a waiter died: harmless) |
//! | `flags` | bit 0 `INCONSISTENT` | a holder died; cleared by `mark_consistent` |
//! | `count` | any | recursion depth of an `RLock` (only its owner writes it) |
//!
//! Lock: one `compare_exchange(0 -> me)` on `owner` (Acquire) and one load of `flags`.
//! Unlock: one `swap(0)` on `owner`, then a load of `waiters`; `FUTEX_WAKE` only if it is not 0.
//! The owner *is* the lock word, so there is no window in which a lock is held without an owner
//! that waiters can check: a holder killed at any instruction leaves either a free lock or its
//! own identity in `owner`.
//!
//! A waiter announces itself (`waiters += 1`), reads `seq`, checks `owner` again and sleeps on
//! `seq` for at most one wait slice. All of these are `SeqCst`, and so are the unlocker's swap
//! and its load of `waiters`: either the waiter sees the free lock, or the unlocker sees the
//! waiter and bumps `seq` (then the futex wait returns at once). After a slice without a
//! wake-up the waiter checks whether the owner thread is alive; if not, it takes the lock over
//! with `compare_exchange(dead -> me)` (only one waiter can win) and sets `INCONSISTENT`.
//!
//! Every bit pattern another process can write is a valid state: an unknown owner word is
//! either alive or dead, and any `flags`/`count` value only changes what is reported.

use crate::ident;
use shm_core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use shm_core::sync::{futex_wait, WaitMode, WaitOutcome};
use shm_core::{Deadline, WaitStrategy};

pub(crate) const INCONSISTENT: u32 = 1;

/// The 32-byte control block (see the module docs).
#[repr(C, align(8))]
pub(crate) struct RawLock {
    pub(crate) owner: AtomicU64,
    pub(crate) seq: AtomicU32,
    pub(crate) waiters: AtomicU32,
    pub(crate) flags: AtomicU32,
    pub(crate) count: AtomicU32,
    _reserved: AtomicU64,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawLock>() == 32);
#[cfg(not(loom))]
const _: () = assert!(std::mem::align_of::<RawLock>() == 8);
#[cfg(not(loom))]
const _: () = assert!(std::mem::offset_of!(RawLock, owner) == 0);
#[cfg(not(loom))]
const _: () = assert!(std::mem::offset_of!(RawLock, seq) == 8);
#[cfg(not(loom))]
const _: () = assert!(std::mem::offset_of!(RawLock, waiters) == 12);
#[cfg(not(loom))]
const _: () = assert!(std::mem::offset_of!(RawLock, flags) == 16);
#[cfg(not(loom))]
const _: () = assert!(std::mem::offset_of!(RawLock, count) == 20);

/// Why an acquisition failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcquireFail {
    /// Held by another live thread (try only).
    WouldBlock,
    /// The deadline passed.
    Timeout,
    /// The calling thread holds it already.
    Deadlock,
}

/// A successful acquisition: whether the protected state is flagged inconsistent.
pub(crate) type Acquired = Result<bool, AcquireFail>;

impl RawLock {
    pub(crate) fn new() -> RawLock {
        RawLock {
            owner: AtomicU64::new(0),
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            count: AtomicU32::new(0),
            _reserved: AtomicU64::new(0),
        }
    }

    /// One attempt: `Ok(inconsistent)` or `Err(current owner)`.
    #[inline]
    fn try_once(&self, me: u64) -> Result<bool, u64> {
        match self
            .owner
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Ok(self.flags.load(Ordering::Relaxed) & INCONSISTENT != 0),
            Err(cur) => Err(cur),
        }
    }

    /// Takes the lock over from `cur` if that owner is dead.
    fn take_over(&self, cur: u64, me: u64, alive: &dyn Fn(u64) -> bool) -> bool {
        if cur == 0 || cur == me || alive(cur) {
            return false;
        }
        if self
            .owner
            .compare_exchange(cur, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            self.flags.fetch_or(INCONSISTENT, Ordering::Relaxed);
            self.count.store(0, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Tries once without blocking; checks a holder's liveness (one `/proc` read) on contention.
    pub(crate) fn try_acquire(&self, me: u64, alive: &dyn Fn(u64) -> bool) -> Acquired {
        match self.try_once(me) {
            Ok(inc) => Ok(inc),
            Err(cur) if cur == me => Err(AcquireFail::Deadlock),
            Err(cur) => {
                if self.take_over(cur, me, alive) {
                    Ok(true)
                } else {
                    // The holder may have released it in between.
                    self.try_once(me).map_err(|_| AcquireFail::WouldBlock)
                }
            }
        }
    }

    /// Acquires, waiting per `strategy` until `deadline`.
    #[inline]
    pub(crate) fn acquire(
        &self,
        me: u64,
        strategy: &WaitStrategy,
        deadline: Deadline,
        alive: &dyn Fn(u64) -> bool,
    ) -> Acquired {
        match self.try_once(me) {
            Ok(inc) => Ok(inc),
            Err(cur) if cur == me => Err(AcquireFail::Deadlock),
            Err(_) => self.acquire_slow(me, strategy, deadline, alive),
        }
    }

    #[cold]
    fn acquire_slow(
        &self,
        me: u64,
        strategy: &WaitStrategy,
        deadline: Deadline,
        alive: &dyn Fn(u64) -> bool,
    ) -> Acquired {
        #[cfg(not(loom))]
        if strategy.mode == WaitMode::Adaptive && !strategy.spin.is_zero() {
            let until = shm_core::sync::now().saturating_add(strategy.spin);
            loop {
                for _ in 0..32 {
                    std::hint::spin_loop();
                    if self.owner.load(Ordering::Relaxed) == 0 {
                        if let Ok(inc) = self.try_once(me) {
                            return Ok(inc);
                        }
                    }
                }
                let t = shm_core::sync::now();
                if t >= until || deadline.as_monotonic().is_some_and(|d| t >= d) {
                    break;
                }
                std::thread::yield_now();
            }
        }
        let mut last_check = Deadline::after(strategy.slice);
        loop {
            match self.try_once(me) {
                Ok(inc) => return Ok(inc),
                Err(cur) => {
                    if deadline.has_passed() {
                        // A last chance for a dead holder, so that a timed attempt on a lock
                        // whose owner died reports it instead of a timeout.
                        if self.take_over(cur, me, alive) {
                            return Ok(true);
                        }
                        return Err(AcquireFail::Timeout);
                    }
                }
            }
            if strategy.mode == WaitMode::BusyPoll {
                #[cfg(loom)]
                loom::thread::yield_now();
                #[cfg(not(loom))]
                std::hint::spin_loop();
                if last_check.has_passed() {
                    last_check = Deadline::after(strategy.slice);
                    let cur = self.owner.load(Ordering::Relaxed);
                    if self.take_over(cur, me, alive) {
                        return Ok(true);
                    }
                }
                continue;
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            let key = self.seq.load(Ordering::SeqCst);
            // Pairs with the unlocker's swap + load (see the module docs); explicit for loom,
            // which does not model the store-buffer case of SeqCst accesses alone.
            fence(Ordering::SeqCst);
            let cur = self.owner.load(Ordering::SeqCst);
            if cur == 0 {
                self.waiters.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            let outcome = futex_wait(&self.seq, key, deadline.min_after(strategy.slice));
            self.waiters.fetch_sub(1, Ordering::Relaxed);
            if outcome == WaitOutcome::TimedOut && !deadline.has_passed() {
                let cur = self.owner.load(Ordering::Relaxed);
                if self.take_over(cur, me, alive) {
                    return Ok(true);
                }
            }
        }
    }

    /// Releases the lock (the caller is the owner).
    #[inline]
    pub(crate) fn release(&self) {
        self.owner.swap(0, Ordering::SeqCst);
        #[cfg(loom)]
        fence(Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) != 0 {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        shm_core::sync::futex_wake(&self.seq, 1);
    }

    pub(crate) fn mark_consistent(&self) {
        self.flags.fetch_and(!INCONSISTENT, Ordering::Relaxed);
    }

    pub(crate) fn is_inconsistent(&self) -> bool {
        self.flags.load(Ordering::Relaxed) & INCONSISTENT != 0
    }

    pub(crate) fn owner_word(&self) -> u64 {
        self.owner.load(Ordering::Relaxed)
    }

    pub(crate) fn held_by_me(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == ident::current()
    }
}

/// The default liveness check.
pub(crate) fn alive(word: u64) -> bool {
    ident::is_alive(word)
}
