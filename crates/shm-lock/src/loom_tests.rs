//! loom models of the lock family on the heap home. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom cargo test
//! --release -p shm-lock --lib loom`. A lost wake-up leaves a thread asleep in the modelled
//! futex, which loom reports as a deadlock; a broken exclusion is a data race on a loom
//! `UnsafeCell`. Deaths are injected through a `LivenessProbe` closure.

use crate::raw::{Acquired, RawLockError};
use crate::{
    AboveBoundError, Barrier, BarrierError, BoundedSemaphore, Condition, Event, Lock, LockState,
    RLock, RawRobustLock, Semaphore,
};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use loom::sync::Arc;
use shm_core::{Liveness, ThreadWord};

struct Shared<L> {
    lock: L,
    data: UnsafeCell<u32>,
}

// SAFETY: `data` is only touched under `lock` (which is what the models check).
unsafe impl<L: Sync> Sync for Shared<L> {}

fn shared<L>(lock: L) -> Arc<Shared<L>> {
    Arc::new(Shared {
        lock,
        data: UnsafeCell::new(0),
    })
}

#[test]
fn loom_lock_excludes_and_never_loses_a_wakeup() {
    loom::model(|| {
        let s = shared(Lock::new());
        let s2 = s.clone();
        let t = loom::thread::spawn(move || {
            let _g = s2.lock.lock().unwrap();
            // SAFETY: under the lock.
            s2.data.with_mut(|p| unsafe { *p += 1 });
        });
        {
            let _g = s.lock.lock().unwrap();
            // SAFETY: under the lock.
            s.data.with_mut(|p| unsafe { *p += 1 });
        }
        t.join().unwrap();
        let _g = s.lock.lock().unwrap();
        // SAFETY: under the lock.
        assert_eq!(s.data.with(|p| unsafe { *p }), 2);
    });
}

/// Lets the other threads run far enough to go to sleep (loom explores the schedules in
/// between, but a bounded number of preemptions alone rarely reaches a sleeping waiter).
fn let_others_sleep() {
    for _ in 0..5 {
        loom::thread::yield_now();
    }
}

/// The holder releases while a waiter sleeps (or is about to): the release must wake it.
#[test]
fn loom_lock_release_wakes_a_sleeping_waiter() {
    loom::model(|| {
        let s = shared(Lock::new());
        let g = s.lock.lock().unwrap();
        let s2 = s.clone();
        let t = loom::thread::spawn(move || {
            let _g = s2.lock.lock().unwrap();
            // SAFETY: under the lock.
            s2.data.with_mut(|p| unsafe { *p += 1 });
        });
        let_others_sleep();
        // SAFETY: under the lock.
        s.data.with_mut(|p| unsafe { *p += 1 });
        drop(g);
        t.join().unwrap();
        // SAFETY: the other thread joined.
        assert_eq!(s.data.with(|p| unsafe { *p }), 2);
    });
}

#[test]
fn loom_rlock_nested_excludes() {
    loom::model(|| {
        let s = shared(RLock::new());
        let s2 = s.clone();
        let t = loom::thread::spawn(move || {
            let _a = s2.lock.lock().unwrap();
            let _b = s2.lock.lock().unwrap();
            // SAFETY: under the lock.
            s2.data.with_mut(|p| unsafe { *p += 1 });
        });
        {
            let _a = s.lock.lock().unwrap();
            // SAFETY: under the lock.
            s.data.with_mut(|p| unsafe { *p += 1 });
        }
        t.join().unwrap();
        // SAFETY: the other thread joined.
        assert_eq!(s.data.with(|p| unsafe { *p }), 2);
    });
}

/// A holder "dies" (stops, and the probe starts answering `Dead` for it) at a point loom
/// chooses; two waiters race to take over. Exclusion holds throughout (the victim's and the
/// winners' writes never race: only one takeover wins), an acquisition reports `OwnerDied`
/// exactly when it came after the death, and nobody takes the lock from the victim while the
/// probe calls it alive.
#[test]
fn loom_owner_died_takeover_only_one_wins() {
    loom::model(|| {
        let s = shared(LockState::new());
        let victim = Arc::new(AtomicU64::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let probe = {
            let (victim, killed) = (victim.clone(), killed.clone());
            move |w: u64| {
                if w == victim.load(Ordering::Relaxed) && killed.load(Ordering::Acquire) {
                    Liveness::Dead
                } else {
                    Liveness::Alive
                }
            }
        };
        // The victim takes the lock, writes, and dies holding it.
        let v = {
            let (s, victim, killed) = (s.clone(), victim.clone(), killed.clone());
            loom::thread::spawn(move || {
                victim.store(ThreadWord::current().get(), Ordering::Relaxed);
                if s.lock.try_lock_with(&|_| Liveness::Alive) == Ok(Acquired::Clean) {
                    // SAFETY: under the lock.
                    s.data.with_mut(|p| unsafe { *p += 1 });
                    killed.store(true, Ordering::Release);
                    true
                } else {
                    false
                }
            })
        };
        let takers: Vec<_> = (0..2)
            .map(|_| {
                let (s, probe, killed) = (s.clone(), probe.clone(), killed.clone());
                loom::thread::spawn(move || match s.lock.try_lock_with(&probe) {
                    Ok(a) => {
                        // Told exactly when the victim had died holding it before us.
                        assert_eq!(
                            a == Acquired::OwnerDied,
                            killed.load(Ordering::Acquire),
                            "{a:?}"
                        );
                        // SAFETY: under the lock.
                        s.data.with_mut(|p| unsafe { *p += 1 });
                        // SAFETY: acquired just above.
                        unsafe { s.lock.unlock() };
                        Some(a)
                    }
                    Err(e) => {
                        assert_eq!(e, RawLockError::WouldBlock);
                        None
                    }
                })
            })
            .collect();
        let victim_locked = v.join().unwrap();
        let got: Vec<Option<Acquired>> = takers.into_iter().map(|t| t.join().unwrap()).collect();
        let n = got.iter().flatten().count() as u32 + u32::from(victim_locked);
        // SAFETY: every thread joined.
        assert_eq!(s.data.with(|p| unsafe { *p }), n);
    });
}

/// An owner whose liveness is unknown is never robbed, by any number of waiters.
#[test]
fn loom_unknown_owner_is_never_robbed() {
    loom::model(|| {
        let lock = Arc::new(LockState::new());
        const FOREIGN: u64 = 0x77_0000_0001;
        lock.forge_owner(FOREIGN);
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let lock = lock.clone();
                loom::thread::spawn(move || lock.try_lock_with(&|_| Liveness::Unknown))
            })
            .collect();
        for t in ts {
            assert_eq!(t.join().unwrap(), Err(RawLockError::WouldBlock));
        }
        assert_eq!(lock.owner_word(), FOREIGN);
        assert!(!lock.is_inconsistent());
    });
}

/// A round with two parties and an action: both pass, with distinct indices, the action runs
/// once, and nobody sleeps through the end of the round.
#[test]
fn loom_barrier_round_two_parties() {
    loom::model(|| {
        let runs = Arc::new(AtomicU32::new(0));
        let r2 = runs.clone();
        let mut b = Barrier::new(2);
        b.set_action(move || {
            r2.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        let b = Arc::new(b);
        let b2 = b.clone();
        let t = loom::thread::spawn(move || b2.wait().unwrap());
        let_others_sleep();
        let mine = b.wait().unwrap();
        let theirs = t.join().unwrap();
        assert_eq!(mine + theirs, 1);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert!(!b.is_broken());
    });
}

/// Three parties, no action (a smaller state space per thread).
#[test]
fn loom_barrier_round_three_parties() {
    loom::model(|| {
        let b = Arc::new(Barrier::new(3));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                loom::thread::spawn(move || b.wait().unwrap())
            })
            .collect();
        let mut idx = vec![b.wait().unwrap()];
        idx.extend(ts.into_iter().map(|t| t.join().unwrap()));
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2]);
    });
}

/// `abort` while a party waits: the waiter returns `Broken` (never sleeps on), whether it
/// arrived before or after the abort.
#[test]
fn loom_barrier_abort_wakes_the_waiter() {
    loom::model(|| {
        let b = Arc::new(Barrier::new(2));
        let b2 = b.clone();
        let t = loom::thread::spawn(move || b2.wait());
        let_others_sleep();
        b.abort();
        assert!(matches!(t.join().unwrap(), Err(BarrierError::Broken)));
        assert!(b.is_broken());
    });
}

/// A bounded semaphore at its bound: one party acquires and releases while another releases
/// once more. Exactly one of the two releases is refused (no over-release), and the value ends
/// at the bound.
#[test]
fn loom_bounded_semaphore_no_over_release() {
    loom::model(|| {
        let s = Arc::new(BoundedSemaphore::new(1));
        let s2 = s.clone();
        let t = loom::thread::spawn(move || {
            s2.acquire();
            s2.release()
        });
        let extra = s.release();
        let theirs = t.join().unwrap();
        let refused = [extra, theirs]
            .iter()
            .filter(|r| **r == Err(AboveBoundError { bound: 1 }))
            .count();
        assert_eq!(refused, 1);
        assert_eq!(s.value(), 1);
    });
}

/// Two parties contend for a bounded semaphore of one: the second sleeps until the first
/// releases (a lost wake-up would leave it asleep: a loom deadlock).
#[test]
fn loom_bounded_semaphore_no_lost_wakeup() {
    loom::model(|| {
        let s = Arc::new(BoundedSemaphore::new(1));
        s.acquire();
        let s2 = s.clone();
        let t = loom::thread::spawn(move || {
            s2.acquire();
            s2.release().unwrap();
        });
        let_others_sleep();
        s.release().unwrap();
        t.join().unwrap();
        assert_eq!(s.value(), 1);
    });
}

#[test]
fn loom_semaphore_release_wakes_acquirer() {
    loom::model(|| {
        let s = Arc::new(Semaphore::new(0));
        let s2 = s.clone();
        let t = loom::thread::spawn(move || {
            let_others_sleep();
            s2.release().unwrap()
        });
        s.acquire();
        t.join().unwrap();
        assert_eq!(s.value(), 0);
    });
}

#[test]
fn loom_event_set_wakes_waiter() {
    loom::model(|| {
        let e = Arc::new(Event::new());
        let e2 = e.clone();
        let t = loom::thread::spawn(move || {
            let_others_sleep();
            e2.set()
        });
        e.wait();
        assert!(e.is_set());
        t.join().unwrap();
    });
}

#[test]
fn loom_condition_notify_wakes_waiter() {
    loom::model(|| {
        let s = shared(Condition::new());
        let s2 = s.clone();
        let t = loom::thread::spawn(move || {
            let_others_sleep();
            let g = s2.lock.lock().unwrap();
            // SAFETY: under the condition's lock.
            s2.data.with_mut(|p| unsafe { *p = 1 });
            s2.lock.notify_one();
            drop(g);
        });
        let g = s.lock.lock().unwrap();
        // SAFETY: under the condition's lock.
        let g = s
            .lock
            .wait_while(g, || s.data.with(|p| unsafe { *p }) == 0)
            .unwrap();
        drop(g);
        t.join().unwrap();
    });
}

/// The action aborts its own barrier (the hang of issue 10): both parties return `Broken`,
/// and nobody sleeps forever.
#[test]
fn loom_barrier_action_aborts_its_own_barrier() {
    loom::model(|| {
        // A std `Weak` back to the barrier (loom's `Arc` has none): no cycle, nothing leaked.
        let me = std::sync::Arc::new(std::sync::OnceLock::<std::sync::Weak<Barrier>>::new());
        let me2 = me.clone();
        let mut b = Barrier::new(2);
        b.set_action(move || {
            let b = me2.get().and_then(std::sync::Weak::upgrade).expect("set");
            b.abort();
            Ok(())
        });
        let b = std::sync::Arc::new(b);
        me.set(std::sync::Arc::downgrade(&b)).ok();
        let b2 = b.clone();
        let t = loom::thread::spawn(move || b2.wait());
        let mine = b.wait();
        let theirs = t.join().unwrap();
        assert!(matches!(mine, Err(BarrierError::Broken)));
        assert!(matches!(theirs, Err(BarrierError::Broken)));
        assert!(b.is_broken());
    });
}
