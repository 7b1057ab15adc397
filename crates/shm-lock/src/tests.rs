//! Unit tests on the heap home (threads of one process). The multi-process tests are in
//! `tests/`.

#![cfg(not(loom))]

use crate::*;
use shm_core::sync::atomic::Ordering;
use shm_core::{Deadline, WaitStrategy};
use std::cell::UnsafeCell;
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
fn try_lock_and_deadlock_detection() {
    let lock = Lock::new();
    let g = lock.lock().unwrap();
    assert!(matches!(lock.try_lock(), Err(LockError::Deadlock)));
    assert!(matches!(lock.lock(), Err(LockError::Deadlock)));
    std::thread::scope(|s| {
        s.spawn(|| assert!(matches!(lock.try_lock(), Err(LockError::WouldBlock))));
    });
    drop(g);
    assert!(lock.try_lock().is_ok());
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn try_lock_for_times_out() {
    let lock = Lock::new();
    let _g = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(
                lock.try_lock_for(Duration::from_millis(20)),
                Err(LockError::Timeout)
            ))
        });
    });
}

#[test]
fn rlock_is_exclusive_between_threads() {
    let lock = RLock::new();
    let g = lock.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert!(matches!(lock.try_lock(), Err(LockError::WouldBlock))));
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

/// A foreign owner word that the injected liveness check calls dead.
const DEAD: u64 = 0x1234_0000_0042;

#[test]
fn owner_died_is_reported_and_stays_flagged_until_marked() {
    let lock = Lock::new();
    let r = lock.as_ref();
    r.raw().owner.store(DEAD, Ordering::Relaxed);
    let dead = |w: u64| w != DEAD;
    let e = r.lock_with_alive(Deadline::NEVER, &dead).unwrap_err();
    assert!(e.is_owner_died());
    let g = e.into_guard().unwrap();
    assert!(g.is_inconsistent());
    drop(g); // not marked: stays flagged
    let e = lock.lock().unwrap_err();
    let g = e.into_guard().expect("still flagged");
    g.mark_consistent();
    drop(g);
    assert!(lock.lock().is_ok());
}

#[test]
fn owner_died_with_a_busy_poll_waiter() {
    let lock = Lock::new();
    let r = lock
        .as_ref()
        .with_strategy(WaitStrategy::busy_poll().with_slice(Duration::from_millis(1)));
    r.raw().owner.store(DEAD, Ordering::Relaxed);
    let e = r
        .lock_with_alive(Deadline::NEVER, &|w| w != DEAD)
        .unwrap_err();
    assert!(e.into_guard().is_some());
}

#[test]
#[cfg_attr(miri, ignore)] // reads /proc
fn exited_holder_thread_is_detected() {
    let lock = Lock::new();
    std::thread::scope(|s| {
        s.spawn(|| std::mem::forget(lock.lock().unwrap()));
    });
    let g = lock.lock().unwrap_err().into_guard().expect("owner died");
    g.mark_consistent();
    drop(g);
    let rl = RLock::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let a = rl.lock().unwrap();
            std::mem::forget(rl.lock().unwrap());
            std::mem::forget(a);
        });
    });
    // (`lock`, not `try_lock`: a joined thread can linger in /proc for a moment.)
    let e = rl.lock().unwrap_err();
    let g = e.into_guard().expect("owner died");
    assert_eq!(g.depth(), 1);
    g.mark_consistent();
}

#[test]
fn lock_error_debug_and_display_need_no_debug_guard() {
    struct NoDebug;
    let e: LockError<NoDebug> = LockError::OwnerDied(NoDebug);
    assert_eq!(format!("{e:?}"), "OwnerDied(..)");
    assert!(e.to_string().contains("died"));
    assert!(LockError::<NoDebug>::Timeout.into_guard().is_none());
}

#[test]
fn semaphore_counts() {
    let s = Semaphore::new(2);
    s.acquire();
    s.try_acquire().unwrap();
    assert_eq!(s.try_acquire(), Err(AcquireError::WouldBlock));
    s.release().unwrap();
    s.release().unwrap();
    s.release().unwrap(); // unbounded
    assert_eq!(s.value(), 3);
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn semaphore_timeout_and_wake() {
    let s = Semaphore::new(0);
    assert_eq!(
        s.acquire_timeout(Duration::from_millis(10)),
        Err(AcquireError::Timeout)
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
    assert_eq!(s.release(), Err(ReleaseError::AboveBound { bound: 1 }));
    s.acquire();
    s.release().unwrap();
    assert_eq!(s.release(), Err(ReleaseError::AboveBound { bound: 1 }));
    let max = Semaphore::new(u32::MAX);
    assert_eq!(max.release(), Err(ReleaseError::Overflow));
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
#[should_panic(expected = "another lock")]
fn condition_rejects_foreign_guard() {
    let cond = Condition::new();
    let other = Lock::new();
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
    let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let r2 = runs.clone();
    b.set_action(move || {
        r2.fetch_add(1, Ordering::Relaxed);
        Ok(())
    });
    let mut idx: Vec<u32> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(|| b.wait().unwrap())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    idx.sort();
    assert_eq!(idx, vec![0, 1, 2]);
    assert_eq!(runs.load(Ordering::Relaxed), 1);
    assert!(!b.is_broken());
    assert_eq!(b.n_waiting(), 0);
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn barrier_timeout_breaks_then_reset_repairs() {
    let b = Barrier::new(2);
    assert!(matches!(
        b.wait_timeout(Duration::from_millis(10)),
        Err(BarrierError::Timeout)
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

#[test]
#[cfg_attr(miri, ignore)] // reads /proc
fn barrier_dead_waiter_thread_breaks_it() {
    let mut b = Barrier::new(3);
    b.set_strategy(WaitStrategy::default().with_slice(Duration::from_millis(5)));
    // A waiter thread that "dies" while waiting cannot be made in-process, so fake its slot:
    // a thread arrives, and we break it by killing nothing but replacing its identity by a
    // thread that has exited.
    let dead_word = std::thread::spawn(crate::ident::current).join().unwrap();
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
#[cfg_attr(miri, ignore)] // reads /proc
fn garbage_owner_words_are_recovered_not_trusted() {
    // Words another process could write: an impossible pid, pid 0 with bits set, our pid with
    // a wrong start time.
    let me = std::process::id() as u64;
    for w in [u64::MAX, 0xffff_ffff_0000_0000, me | (0xdead_beef << 32)] {
        let raw = Lock::new();
        raw.as_ref().raw().owner.store(w, Ordering::Relaxed);
        raw.as_ref().raw().count.store(u32::MAX, Ordering::Relaxed);
        let g = raw
            .try_lock()
            .unwrap_err()
            .into_guard()
            .expect("dead owner");
        g.mark_consistent();
    }
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
