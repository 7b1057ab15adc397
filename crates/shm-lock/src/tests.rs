//! Unit tests on the heap home (threads of one process). The multi-process tests are in
//! `crates/shm-itest/tests/lock_*.rs`.

#![cfg(not(loom))]

use crate::*;
use shm_core::{Deadline, Liveness, ThreadWord, WaitStrategy};
use std::cell::UnsafeCell;
use std::error::Error;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const THREADS: usize = if cfg!(miri) { 2 } else { 4 };
const ITERS: usize = if cfg!(miri) { 50 } else { 20_000 };

struct Counter(UnsafeCell<u64>);
// SAFETY: only accessed under the lock in these tests.
unsafe impl Sync for Counter {}

impl Counter {
    fn get(&self) -> *mut u64 {
        self.0.get()
    }
}

/// A foreign owner word that the injected probe calls dead.
const DEAD: u64 = 0x1234_0000_0042;
/// A foreign owner word that the injected probe cannot tell about.
const UNKNOWN: u64 = 0x1234_0000_0043;

fn probe(word: u64) -> Liveness {
    match word {
        DEAD => Liveness::Dead,
        UNKNOWN => Liveness::Unknown,
        _ => Liveness::Alive,
    }
}

#[test]
fn lock_excludes_threads() {
    let lock = Arc::new(Lock::new());
    let counter = Arc::new(Counter(UnsafeCell::new(0)));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (lock, counter) = (lock.clone(), counter.clone());
            std::thread::spawn(move || {
                for _ in 0..ITERS {
                    let _g = lock.lock().unwrap();
                    // SAFETY: we hold the lock, the only access path to the counter.
                    unsafe { *counter.get() += 1 };
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let _g = lock.lock().unwrap();
    // SAFETY: all writers joined.
    assert_eq!(unsafe { *counter.get() }, (THREADS * ITERS) as u64);
}

#[test]
fn rlock_excludes_threads_with_nesting() {
    let lock = Arc::new(RLock::new());
    let counter = Arc::new(Counter(UnsafeCell::new(0)));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (lock, counter) = (lock.clone(), counter.clone());
            std::thread::spawn(move || {
                for _ in 0..ITERS {
                    let outer = lock.lock().unwrap();
                    let inner = lock.lock().unwrap();
                    assert_eq!(inner.depth(), 2);
                    // SAFETY: we hold the lock.
                    unsafe { *counter.get() += 1 };
                    drop(inner);
                    drop(outer);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // SAFETY: all writers joined.
    assert_eq!(unsafe { *counter.get() }, (THREADS * ITERS) as u64);
}

#[test]
fn errors_per_operation_and_deadlock_detection() {
    let lock = Lock::new();
    let g = lock.lock().unwrap();
    assert_eq!(lock.try_lock().err(), Some(TryLockError::WouldBlock));
    assert_eq!(lock.lock().err(), Some(LockError::Deadlock));
    assert_eq!(
        lock.try_lock_for(Duration::from_secs(5)).err(),
        Some(LockTimeoutError::Deadlock)
    );
    assert_eq!(lock.recover().err(), Some(DeadlockError));
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(lock.try_lock().err(), Some(TryLockError::WouldBlock)));
    });
    drop(g);
    assert!(lock.try_lock().is_ok());
}

/// The E0515 of the old API: an error that borrowed the lock could not leave the function.
#[test]
fn question_mark_works_in_a_box_dyn_error_function() {
    fn locked_work(lock: &Lock, rlock: &RLock, cond: &Condition) -> Result<u32, Box<dyn Error>> {
        let _g = lock.lock()?;
        let _r = rlock.try_lock()?;
        let g = cond.try_lock_for(Duration::from_secs(1))?;
        let _g = cond.wait_timeout(g, Duration::from_millis(1))?;
        let s = Semaphore::new(1);
        s.try_acquire()?;
        s.release()?;
        BoundedSemaphore::new(1).release()?;
        Ok(1)
    }
    let err = locked_work(&Lock::new(), &RLock::new(), &Condition::new()).unwrap_err();
    assert!(err.downcast_ref::<AboveBoundError>().is_some());
    fn check<E: Error + Send + Sync + 'static>() {}
    check::<LockError>();
    check::<TryLockError>();
    check::<LockTimeoutError>();
    check::<DeadlockError>();
    check::<OwnerDiedError>();
    check::<ReentrantTimeoutError>();
    check::<BarrierError>();
    check::<BarrierTimeoutError>();
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn try_lock_for_times_out() {
    let lock = Lock::new();
    let _g = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(
                lock.try_lock_for(Duration::from_millis(20)).err(),
                Some(LockTimeoutError::Timeout)
            )
        });
    });
}

#[test]
fn rlock_is_exclusive_between_threads() {
    let lock = RLock::new();
    let g = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(lock.try_lock().err(), Some(TryLockError::WouldBlock)));
        if !cfg!(miri) {
            s.spawn(|| {
                assert_eq!(
                    lock.try_lock_for(Duration::from_millis(5)).err(),
                    Some(ReentrantTimeoutError::Timeout)
                )
            });
        }
    });
    let g2 = lock.try_lock().unwrap();
    assert!(lock.as_ref().is_owned_by_current_thread());
    drop(g);
    drop(g2);
    assert!(!lock.as_ref().is_owned_by_current_thread());
    std::thread::scope(|s| {
        s.spawn(|| assert!(lock.try_lock().is_ok()));
    });
}

#[test]
fn owner_died_is_reported_without_holding_and_stays_flagged_until_marked() {
    let state = LockState::new();
    let lock = LockRef::new(&state);
    state.forge_owner(DEAD);
    let s = WaitStrategy::sleep().with_slice(Duration::from_millis(1));
    assert_eq!(
        state.lock_with(&s, Deadline::NEVER, &probe),
        Ok(Acquired::OwnerDied)
    );
    // SAFETY: just acquired above.
    unsafe { state.unlock() };
    // Every acquirer is told, and none holds it after the error.
    assert_eq!(lock.lock().err(), Some(LockError::OwnerDied));
    assert!(!lock.is_locked());
    assert_eq!(lock.try_lock().err(), Some(TryLockError::OwnerDied));
    assert_eq!(
        lock.try_lock_for(Duration::from_millis(1)).err(),
        Some(LockTimeoutError::OwnerDied)
    );
    // Recovering without marking leaves the flag.
    let g = lock.recover().unwrap();
    assert!(g.is_inconsistent());
    drop(g);
    assert!(lock.is_inconsistent());
    let g = lock.recover().unwrap();
    g.mark_consistent();
    drop(g);
    assert!(!lock.is_inconsistent());
    assert!(lock.lock().is_ok());
}

#[test]
fn an_unknown_owner_is_never_robbed() {
    let state = LockState::new();
    state.forge_owner(UNKNOWN);
    let s = WaitStrategy::sleep().with_slice(Duration::from_millis(1));
    assert_eq!(state.try_lock_with(&probe), Err(RawLockError::WouldBlock));
    if !cfg!(miri) {
        assert_eq!(
            state.lock_with(&s, Deadline::after(Duration::from_millis(20)), &probe),
            Err(RawLockError::Timeout)
        );
    }
    assert_eq!(state.owner_word(), UNKNOWN);
    assert!(!state.is_inconsistent());
}

#[test]
fn owner_died_with_a_busy_poll_waiter() {
    let state = LockState::new();
    state.forge_owner(DEAD);
    let s = WaitStrategy::busy_poll().with_slice(Duration::from_millis(1));
    assert_eq!(
        state.lock_with(&s, Deadline::NEVER, &probe),
        Ok(Acquired::OwnerDied)
    );
}

#[test]
fn rlock_owner_died_and_recover() {
    let state = RLockState::new();
    let lock = RLockRef::new(&state);
    state.raw().forge_owner(DEAD);
    assert_eq!(state.raw().try_lock_with(&probe), Ok(Acquired::OwnerDied));
    // SAFETY: just acquired above.
    unsafe { state.raw().unlock() };
    assert_eq!(lock.lock().err(), Some(OwnerDiedError));
    let g = lock.recover();
    assert_eq!(g.depth(), 1);
    // Re-entering while recovering is not an error.
    let inner = lock.lock().unwrap();
    assert!(inner.is_inconsistent());
    inner.mark_consistent();
    drop(inner);
    drop(g);
    assert!(lock.lock().is_ok());
}

#[test]
#[cfg_attr(miri, ignore)] // asks the OS
fn exited_holder_thread_is_detected() {
    let lock = Lock::new();
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(lock.lock().unwrap()));
    });
    // (`lock`, not `try_lock`: a joined thread can linger in /proc for a moment.)
    assert_eq!(lock.lock().err(), Some(LockError::OwnerDied));
    lock.recover().unwrap().mark_consistent();
    assert!(lock.lock().is_ok());
    let rl = RLock::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let a = rl.lock().unwrap();
            std::mem::forget(rl.lock().unwrap());
            std::mem::forget(a);
        });
    });
    assert_eq!(rl.lock().err(), Some(OwnerDiedError));
    let g = rl.recover();
    assert_eq!(g.depth(), 1);
    g.mark_consistent();
}

#[test]
#[cfg_attr(miri, ignore)] // asks the OS
fn garbage_owner_words_are_recovered_not_trusted() {
    // Words another process could write: an impossible pid, pid 0 with bits set, our pid with
    // a wrong start time.
    let me = u64::from(std::process::id());
    for w in [u64::MAX, 0xffff_ffff_0000_0000, me | (0xdead_beef << 32)] {
        let state = RLockState::new();
        state.raw().forge_owner(w);
        let lock = RLockRef::new(&state);
        assert_eq!(lock.try_lock().err(), Some(TryLockError::OwnerDied));
        let g = lock.recover();
        g.mark_consistent();
    }
}

#[test]
fn a_scribbled_depth_never_releases_a_lock_held_by_another_thread() {
    let state = RLockState::new();
    let lock = RLockRef::new(&state);
    let a = lock.lock().unwrap();
    let b = lock.lock().unwrap();
    // Another process scribbles depth 0 over our depth 2: the first drop releases early…
    let depth = (&state as *const RLockState).cast::<u8>().wrapping_add(24);
    // SAFETY: offset 24 of an RLockState is its AtomicU64 depth (pinned by a const assert);
    // the test stands in for another process writing that field.
    let depth = unsafe { &*depth.cast::<std::sync::atomic::AtomicU64>() };
    depth.store(0, Ordering::Relaxed);
    drop(b);
    std::thread::scope(|s| {
        let other = s.spawn(|| {
            let g = lock.lock().unwrap();
            std::thread::sleep(Duration::from_millis(if cfg!(miri) { 1 } else { 20 }));
            let still = lock.is_locked();
            drop(g);
            still
        });
        while !lock.is_locked() {
            std::thread::yield_now();
        }
        drop(a); // …but the second drop must not release the other thread's hold.
        assert!(
            other.join().unwrap(),
            "the other thread's hold was released"
        );
    });
}

#[test]
fn semaphore_counts() {
    let s = Semaphore::new(2);
    s.acquire();
    s.try_acquire().unwrap();
    assert_eq!(s.try_acquire(), Err(WouldBlockError));
    s.release().unwrap();
    s.release().unwrap();
    s.release().unwrap(); // unbounded
    assert_eq!(s.value(), 3);
    assert_eq!(Semaphore::new(u32::MAX).release(), Err(OverflowError));
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn semaphore_timeout_and_wake() {
    let s = Semaphore::new(0);
    assert_eq!(
        s.acquire_timeout(Duration::from_millis(10)),
        Err(TimeoutError)
    );
    std::thread::scope(|sc| {
        sc.spawn(|| s.acquire());
        std::thread::sleep(Duration::from_millis(10));
        s.release().unwrap();
    });
    assert_eq!(s.value(), 0);
}

#[test]
fn bounded_semaphore_rejects_over_release() {
    let s = BoundedSemaphore::new(1);
    assert_eq!(s.release(), Err(AboveBoundError { bound: 1 }));
    s.acquire();
    s.release().unwrap();
    assert_eq!(s.release(), Err(AboveBoundError { bound: 1 }));
    assert_eq!(s.value(), 1);
    assert_eq!(s.initial_value(), 1);
}

#[test]
fn event_set_wait_clear() {
    let e = Event::new();
    assert!(!e.is_set());
    std::thread::scope(|s| {
        s.spawn(|| e.wait());
        e.set();
    });
    assert!(e.is_set());
    e.clear();
    assert!(!e.is_set());
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn event_wait_timeout() {
    let e = Event::new();
    assert!(!e.wait_timeout(Duration::from_millis(5)));
    e.set();
    assert!(e.wait_timeout(Duration::from_millis(5)));
}

#[test]
fn condition_producer_consumer() {
    let cond = Condition::new();
    let items = Counter(UnsafeCell::new(0));
    let n = if cfg!(miri) { 5 } else { 200 };
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..n {
                let g = cond.lock().unwrap();
                // SAFETY: under the condition's lock.
                let g = cond.wait_while(g, || unsafe { *items.get() } == 0).unwrap();
                // SAFETY: under the condition's lock.
                unsafe { *items.get() -= 1 };
                drop(g);
            }
        });
        for _ in 0..n {
            let g = cond.lock().unwrap();
            // SAFETY: under the condition's lock.
            unsafe { *items.get() += 1 };
            cond.notify_one();
            drop(g);
        }
    });
    // SAFETY: all threads joined.
    assert_eq!(unsafe { *items.get() }, 0);
}

#[test]
fn condition_wait_releases_every_level_and_restores_them() {
    let cond = Condition::new();
    let flag = AtomicU32::new(0);
    std::thread::scope(|s| {
        let outer = cond.lock().unwrap();
        let inner = cond.lock().unwrap();
        s.spawn(|| {
            // Only possible if the waiter released both levels.
            let g = cond.lock().unwrap();
            flag.store(1, Ordering::Relaxed);
            cond.notify_all();
            drop(g);
        });
        let inner = cond
            .wait_while(inner, || flag.load(Ordering::Relaxed) == 0)
            .unwrap();
        assert_eq!(inner.depth(), 2);
        drop(inner);
        assert!(cond.lock_ref().is_owned_by_current_thread());
        drop(outer);
        assert!(!cond.lock_ref().is_locked());
    });
}

#[test]
#[should_panic(expected = "another lock")]
fn condition_rejects_foreign_guard() {
    let cond = Condition::new();
    let other = RLock::new();
    let g = other.lock().unwrap();
    let _ = cond.wait(g);
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn condition_wait_timeout_and_notify_without_waiters() {
    let cond = Condition::new();
    cond.notify_all();
    let g = cond.lock().unwrap();
    let (g, timed_out) = cond.wait_timeout(g, Duration::from_millis(5)).unwrap();
    assert!(timed_out);
    drop(g);
}

#[test]
fn barrier_passes_threads_and_runs_action_once() {
    let mut b = Barrier::new(3);
    let runs = Arc::new(AtomicU32::new(0));
    let r2 = runs.clone();
    b.set_action(move || {
        r2.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    for _ in 0..if cfg!(miri) { 1 } else { 20 } {
        let mut idx: Vec<u32> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3).map(|_| s.spawn(|| b.wait().unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2]);
    }
    assert_eq!(
        runs.load(Ordering::Relaxed),
        if cfg!(miri) { 1 } else { 20 }
    );
    assert!(!b.is_broken());
    assert_eq!(b.n_waiting(), 0);
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn barrier_timeout_breaks_then_reset_repairs() {
    let b = Barrier::new(2);
    assert!(matches!(
        b.wait_timeout(Duration::from_millis(10)),
        Err(BarrierTimeoutError::Timeout)
    ));
    assert!(b.is_broken());
    assert!(matches!(b.wait(), Err(BarrierError::Broken)));
    b.reset();
    assert!(!b.is_broken());
    let r = std::thread::scope(|s| {
        let h = s.spawn(|| b.wait());
        let mine = b.wait();
        (mine.unwrap(), h.join().unwrap().unwrap())
    });
    assert_eq!(r.0 + r.1, 1);
}

#[test]
fn barrier_abort_wakes_waiter() {
    let b = Barrier::new(2);
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait());
        while b.n_waiting() == 0 {
            std::thread::yield_now();
        }
        b.abort();
        assert!(matches!(h.join().unwrap(), Err(BarrierError::Broken)));
    });
}

#[test]
fn barrier_failing_action_breaks() {
    let mut b = Barrier::new(1);
    b.set_action(|| Err("boom".into()));
    assert!(matches!(b.wait(), Err(BarrierError::ActionFailed(_))));
    assert!(b.is_broken());
}

/// The hang of issue 10: an action that aborts or resets its own barrier through a second
/// handle spun forever. (The heap home has one handle; the action reaches the barrier through
/// a `Weak`, the same memory as a second handle's. The cross-process version is in shm-itest.)
#[test]
fn barrier_action_may_abort_or_reset_its_own_barrier() {
    for reset in [false, true] {
        let shared = Arc::new(std::sync::OnceLock::<std::sync::Weak<Barrier>>::new());
        let s2 = shared.clone();
        let mut b = Barrier::new(2);
        b.set_action(move || {
            let me = s2.get().and_then(std::sync::Weak::upgrade).expect("set");
            if reset {
                me.reset();
            } else {
                me.abort();
            }
            Ok(())
        });
        let b = Arc::new(b);
        shared.set(Arc::downgrade(&b)).unwrap();
        let results = std::thread::scope(|s| {
            let h = s.spawn(|| b.wait());
            let mine = b.wait();
            (mine, h.join().unwrap())
        });
        // Both see their round broken (the action's thread too).
        assert!(matches!(results.0, Err(BarrierError::Broken)));
        assert!(matches!(results.1, Err(BarrierError::Broken)));
        assert_eq!(b.is_broken(), !reset);
        b.reset();
        assert!(!b.is_broken());
    }
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn barrier_wait_timeout_honours_its_deadline_on_a_held_internal_lock() {
    let b = Barrier::new(2);
    // A live thread (this one, from another thread's view) "holds" the internal lock forever.
    b.raw_lock_for_test()
        .forge_owner(ThreadWord::current().get());
    std::thread::scope(|s| {
        let r = s
            .spawn(|| b.wait_timeout(Duration::from_millis(30)))
            .join()
            .unwrap();
        assert!(matches!(r, Err(BarrierTimeoutError::Timeout)));
    });
    // From the thread the forged word names, the word counts as ours: abort works.
    b.abort();
    assert!(b.is_broken());
    assert!(!b.raw_lock_for_test().is_locked());
}

#[test]
#[cfg_attr(miri, ignore)] // asks the OS
fn barrier_dead_waiter_thread_breaks_it() {
    let mut b = Barrier::new(3);
    b.set_wait_strategy(WaitStrategy::default().with_slice(Duration::from_millis(5)));
    // A waiter thread that dies while waiting cannot be made in-process, so a thread arrives
    // and its slot is replaced by the word of a thread that has exited.
    let dead_word = std::thread::spawn(|| ThreadWord::current().get())
        .join()
        .unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait());
        while b.n_waiting() == 0 {
            std::thread::yield_now();
        }
        b.slot_for_test(0).store(dead_word, Ordering::Relaxed);
        assert!(matches!(h.join().unwrap(), Err(BarrierError::Broken)));
    });
    assert!(b.is_broken());
}

#[test]
fn barrier_with_corrupt_count_breaks_instead_of_indexing_out_of_bounds() {
    let b = Barrier::new(2);
    b.corrupt_count_for_test(u32::MAX);
    assert!(matches!(b.wait(), Err(BarrierError::Broken)));
    assert!(b.is_broken());
    b.reset();
    assert!(!b.is_broken());
}

#[test]
fn refs_are_copy_send_sync_and_sizes_are_pinned() {
    fn check<T: Copy + Send + Sync + std::fmt::Debug>() {}
    check::<LockRef<'static>>();
    check::<RLockRef<'static>>();
    assert_eq!(std::mem::size_of::<RLockState>(), RLOCK_STATE_SIZE);
    assert_eq!(std::mem::size_of::<LockState>(), LOCK_STATE_SIZE);
}

#[test]
#[cfg_attr(miri, ignore)] // creates segments
fn openers_adopt_recorded_parameters_and_reject_mismatches() {
    use shm_core::{CreateError, OpenError, SegmentName};
    let n = SegmentName::unique();
    let b = Barrier::builder(&n).parties(3).create().unwrap();
    assert_eq!(Barrier::builder(&n).open().unwrap().parties(), 3);
    assert_eq!(Barrier::builder(&n).parties(3).open().unwrap().parties(), 3);
    assert_eq!(Barrier::builder(&n).open_or_create().unwrap().parties(), 3);
    let e = Barrier::builder(&n).parties(2).open().unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Mismatch {
                field: "parties",
                ..
            }
        ),
        "{e}"
    );
    drop(b);
    let e = Barrier::builder(&SegmentName::unique())
        .create()
        .unwrap_err();
    assert!(
        matches!(
            e,
            CreateError::InvalidParameter {
                parameter: "parties",
                ..
            }
        ),
        "{e}"
    );

    let n = SegmentName::unique();
    let _s = BoundedSemaphore::builder(&n).value(4).create().unwrap();
    let opened = BoundedSemaphore::builder(&n).open().unwrap();
    assert_eq!((opened.initial_value(), opened.value()), (4, 4));
    let e = BoundedSemaphore::builder(&n).value(5).open().unwrap_err();
    assert!(
        matches!(e, OpenError::Mismatch { field: "value", .. }),
        "{e}"
    );
}

#[test]
#[cfg_attr(miri, ignore)] // asks the OS
fn condition_wait_reports_owner_died_and_keeps_outer_levels() {
    let mut cond = Condition::new();
    cond.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(2)));
    let outer = cond.lock().unwrap();
    let inner = cond.lock().unwrap();
    let died = AtomicU32::new(0);
    std::thread::scope(|s| {
        // Both levels are released while we wait: another thread takes the lock, notifies,
        // and dies holding it.
        s.spawn(|| {
            let g = cond.lock().unwrap();
            died.store(1, Ordering::Relaxed);
            cond.notify_all();
            std::mem::forget(g);
        });
        let r = cond.wait_while(inner, || died.load(Ordering::Relaxed) == 0);
        // Re-taking the lock after the wake-up found its holder dead.
        assert_eq!(r.err(), Some(OwnerDiedError));
    });
    // Our outer level is held again, flagged; dropping it leaves the flag for the next one.
    assert!(cond.lock_ref().is_owned_by_current_thread());
    assert!(cond.lock_ref().is_inconsistent());
    drop(outer);
    assert!(!cond.lock_ref().is_locked());
    assert_eq!(cond.lock().err(), Some(OwnerDiedError));
    cond.recover().mark_consistent();
    assert!(cond.lock().is_ok());
}

/// Sleeping waiters with sleep slices far longer than the test: a lost wake-up on unlock
/// (say, a broken fence between the releasing store and the check for sleepers) shows as a
/// timed-out acquisition instead of a slice-late one.
#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn sleeping_lock_waiters_lose_no_wakeup() {
    let mut lock = Lock::new();
    lock.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_secs(3600)));
    let counter = Counter(UnsafeCell::new(0));
    const N: u64 = 3000;
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for i in 0..N {
                    let g = lock
                        .try_lock_for(Duration::from_secs(20))
                        .unwrap_or_else(|e| panic!("iteration {i}: {e} (a lost wake-up?)"));
                    // SAFETY: under the lock.
                    unsafe { *counter.get() += 1 };
                    // Hold it a moment, so that the other thread goes to sleep on it.
                    for _ in 0..200 {
                        std::hint::spin_loop();
                    }
                    drop(g);
                }
            });
        }
    });
    // SAFETY: all threads joined.
    assert_eq!(unsafe { *counter.get() }, 2 * N);
}
