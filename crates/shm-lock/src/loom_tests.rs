//! loom models of the wait protocols on the heap home. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p shm-lock --release --lib loom`.
//! A lost wake-up leaves a thread asleep in the modelled futex, which loom reports as a
//! deadlock; a broken exclusion is a data race on the loom `UnsafeCell`.

use crate::{Condition, Event, Lock, RLock, Semaphore};
use loom::cell::UnsafeCell;
use loom::sync::Arc;

struct Shared<L> {
    lock: L,
    data: UnsafeCell<u32>,
}

// SAFETY: `data` is only touched under `lock` (which is what the model checks).
unsafe impl<L: Sync> Sync for Shared<L> {}

#[test]
fn loom_lock_excludes_and_never_loses_a_wakeup() {
    loom::model(|| {
        let s = Arc::new(Shared {
            lock: Lock::new(),
            data: UnsafeCell::new(0),
        });
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

#[test]
fn loom_rlock_nested_excludes() {
    loom::model(|| {
        let s = Arc::new(Shared {
            lock: RLock::new(),
            data: UnsafeCell::new(0),
        });
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

#[test]
fn loom_semaphore_release_wakes_acquirer() {
    loom::model(|| {
        let s = Arc::new(Semaphore::new(0));
        let s2 = s.clone();
        let t = loom::thread::spawn(move || s2.release().unwrap());
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
        let t = loom::thread::spawn(move || e2.set());
        e.wait();
        assert!(e.is_set());
        t.join().unwrap();
    });
}

#[test]
fn loom_condition_notify_wakes_waiter() {
    loom::model(|| {
        let s = Arc::new(Shared {
            lock: Condition::new(),
            data: UnsafeCell::new(0),
        });
        let s2 = s.clone();
        let t = loom::thread::spawn(move || {
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
