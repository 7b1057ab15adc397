//! Unit tests on the heap home (run under miri too) and single-process segment tests.

use crate::{RawValue, UpdateError, UpdateTimeoutError, Value};
use shm_core::{CBool, CChar, OpenError, SegmentName, WChar};
use shm_lock::TryLockError;
use std::sync::Arc;

const THREADS: usize = if cfg!(miri) { 2 } else { 4 };
const ITERS: usize = if cfg!(miri) { 20 } else { 10_000 };

#[test]
fn every_typecode_round_trips() {
    macro_rules! check {
        ($($ty:ty: $a:expr, $b:expr;)+) => {$(
            let v = RawValue::<$ty>::new($a);
            assert_eq!(v.load(), $a);
            v.store($b);
            assert_eq!(v.load(), $b);
            assert_eq!(v.swap($a), $b);
            assert_eq!(v.compare_exchange($a, $b), Ok($a));
            assert_eq!(v.compare_exchange($a, $b), Err($b));
            let l = Value::<$ty>::new($a);
            assert_eq!(l.load(), $a);
            l.store($b);
            assert_eq!(l.lock().unwrap().get(), $b);
        )+};
    }
    check! {
        i8: -5, 7; u8: 200, 1; i16: -300, 300; u16: 65535, 2; i32: -1, i32::MAX;
        u32: 7, u32::MAX; i64: i64::MIN, 3; u64: u64::MAX, 0; f32: 1.5, -2.25;
        f64: 3.333333333333333, -0.5; CChar: CChar(b'a'), CChar(0);
        CBool: CBool::TRUE, CBool::FALSE; WChar: WChar::from('é'), WChar(0);
    }
}

#[test]
fn integer_operations() {
    let v = RawValue::<i32>::new(10);
    assert_eq!(v.fetch_add(5), 10);
    assert_eq!(v.fetch_sub(20), 15);
    assert_eq!(v.load(), -5);
    assert_eq!(v.fetch_max(3), -5);
    assert_eq!(v.fetch_min(-9), 3);
    assert_eq!(v.load(), -9);
    v.store(0b1100);
    assert_eq!(v.fetch_and(0b1010), 0b1100);
    assert_eq!(v.fetch_or(0b0001), 0b1000);
    assert_eq!(v.fetch_xor(0b1111), 0b1001);
    assert_eq!(v.load(), 0b0110);
    // Wrapping, as Python's Value('B', 256) and std's atomics.
    let b = Value::<u8>::new(255);
    assert_eq!(b.fetch_add(1), 255);
    assert_eq!(b.load(), 0);
    // Signedness decides max/min.
    let u = Value::<u8>::new(1);
    u.fetch_max(200);
    assert_eq!(u.load(), 200);
    let s = Value::<i8>::new(1);
    s.fetch_max(-100);
    assert_eq!(s.load(), 1);
}

#[test]
fn float_fetch_update() {
    let v = Value::<f64>::new(1.0);
    assert_eq!(v.fetch_update(|x| Some(x * 2.5)), Ok(1.0));
    assert_eq!(v.load(), 2.5);
    assert_eq!(v.fetch_update(|_| None), Err(2.5));
    // Bitwise comparison: -0.0 is not 0.0.
    v.store(-0.0);
    assert!(v.compare_exchange(0.0, 1.0).is_err());
    v.store(f64::NAN);
    let nan = v.load();
    assert!(v.compare_exchange(nan, 1.0).is_ok());
}

#[test]
fn update_and_guard() {
    let v = Value::<i64>::new(1);
    assert_eq!(v.update(|x| x * 10).unwrap(), 10);
    {
        let g = v.lock().unwrap();
        g.set(g.get() + 1);
        // Re-entrant: update and lock work while this thread holds the lock.
        assert_eq!(v.update(|x| x + 1).unwrap(), 12);
        let inner = v.try_lock().unwrap();
        assert_eq!(inner.get(), 12);
        assert!(!inner.is_inconsistent());
    }
    let lock = v.get_lock();
    let held = lock.lock().unwrap();
    assert_eq!(v.update(|x| x - 2).unwrap(), 10);
    drop(held);
    assert!(!v.is_inconsistent());
    assert!(format!("{v:?}").contains("Value"));
}

#[test]
fn threads_never_lose_updates() {
    let v = Arc::new(Value::<u64>::new(0));
    let c = Arc::new(Value::<u64>::new(0));
    let m = Arc::new(Value::<u64>::new(0));
    let r = Arc::new(RawValue::<u64>::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (v, c, m, r) = (v.clone(), c.clone(), m.clone(), r.clone());
            std::thread::spawn(move || {
                for _ in 0..ITERS {
                    v.update(|x| x + 1).unwrap();
                    c.fetch_add(1);
                    // The two locked forms exclude each other.
                    m.update(|x| x + 1).unwrap();
                    let g = m.lock().unwrap();
                    g.set(g.get() + 1);
                    drop(g);
                    r.fetch_update(|x| Some(x + 1)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(v.load(), (THREADS * ITERS) as u64);
    assert_eq!(c.load(), (THREADS * ITERS) as u64);
    assert_eq!(m.load(), (2 * THREADS * ITERS) as u64);
    assert_eq!(r.load(), (THREADS * ITERS) as u64);
}

/// Whether another thread can take `v`'s lock right now (it is not held by this one).
fn free_for_others(v: &Value<i32>) -> bool {
    std::thread::scope(|s| s.spawn(|| v.try_lock().is_ok()).join().unwrap())
}

#[test]
fn update_releases_the_lock_when_its_closure_panics() {
    let v = Value::<i32>::new(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        v.update(|_| panic!("the closure failed"))
    }));
    assert!(r.is_err());
    assert!(free_for_others(&v));
    assert_eq!(v.update(|x| x + 1), Ok(2));
}

#[test]
fn update_nests_with_guards_and_itself() {
    let v = Value::<i32>::new(0);
    // Inside update's closure, the same thread may lock and update again (they nest in the
    // holding); update's own result is stored last.
    let r = v.update(|x| {
        let g = v.lock().unwrap();
        g.set(100);
        drop(g);
        assert_eq!(v.update(|y| y + 1), Ok(101));
        x + 1
    });
    assert_eq!(r, Ok(1));
    assert_eq!(v.load(), 1);
    assert!(free_for_others(&v));
    // Under a guard, update runs in the guard's holding and leaves it held.
    let g = v.lock().unwrap();
    assert_eq!(v.update(|x| x + 1), Ok(2));
    assert!(!free_for_others(&v));
    drop(g);
    assert!(free_for_others(&v));
}

/// A guard taken inside `update`'s closure nests in update's own level: it still holds the
/// lock after `update` returns (with only the raw lock under `update`, update's release
/// freed it while the guard lived).
#[test]
fn a_guard_taken_inside_update_keeps_the_lock_after_it() {
    let v = Value::<i32>::new(0);
    let mut escaped = None;
    assert_eq!(
        v.update(|x| {
            escaped = Some(v.lock().unwrap());
            x + 1
        }),
        Ok(1)
    );
    let g = escaped.expect("the closure ran");
    assert!(
        !free_for_others(&v),
        "the lock was released while a guard taken in update's closure lives"
    );
    g.set(g.get() + 1);
    drop(g);
    assert!(free_for_others(&v));
    assert_eq!(v.load(), 2);
}

/// An outer guard dropped inside `update`'s closure releases its level only: the lock stays
/// held until update's store (before, it was released there, and another process's update
/// could land between the read and the store and be lost).
#[test]
fn dropping_the_outer_guard_inside_update_keeps_the_lock_until_the_store() {
    let v = Value::<i32>::new(0);
    let outer = v.lock().unwrap();
    let mut free_inside = None;
    assert_eq!(
        v.update(|x| {
            drop(outer);
            free_inside = Some(free_for_others(&v));
            x + 1
        }),
        Ok(1)
    );
    assert_eq!(
        free_inside,
        Some(false),
        "the lock was free between update's read and its store"
    );
    assert!(free_for_others(&v), "update released its level");
    assert_eq!(v.load(), 1);
}

/// The same race with a real competitor: while the closure runs (after dropping the outer
/// guard), another thread's `update` must wait, so neither increment is lost.
#[test]
fn no_increment_is_lost_when_the_closure_drops_the_outer_guard() {
    let v = Value::<i32>::new(0);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let outer = v.lock().unwrap();
        let other = s.spawn(|| {
            started_tx.send(()).unwrap();
            v.update(|x| x + 1).unwrap();
        });
        started_rx.recv().unwrap();
        v.update(|x| {
            drop(outer);
            // Give the other thread time to take a lock released too early.
            for _ in 0..50 {
                std::thread::yield_now();
            }
            x + 1
        })
        .unwrap();
        other.join().unwrap();
    });
    assert_eq!(v.load(), 2);
}

#[test]
fn update_runs_its_closure_exactly_once() {
    let v = Value::<i32>::new(1);
    let mut runs = 0;
    assert_eq!(
        v.update(|x| {
            runs += 1;
            x * 3
        }),
        Ok(3)
    );
    assert_eq!(runs, 1);
}

/// The guard holds no reference to the element: another handle writing while it lives (the
/// lock is re-entrant, so the same thread gets in) is seen by the guard's next read.
fn guard_sees_writes_through(v: &Value<i64>, other: &Value<i64>) {
    v.store(1);
    let g = v.lock().unwrap();
    other.store(5);
    assert_eq!(g.get(), 5);
    assert_eq!(other.update(|x| x + 1), Ok(6));
    assert_eq!(g.get(), 6);
    g.set(7);
    assert_eq!(other.load(), 7);
    drop(g);
    assert_eq!(v.load(), 7);
}

#[test]
fn a_guard_and_the_same_handle_share_no_reference() {
    let v = Value::<i64>::new(0);
    guard_sees_writes_through(&v, &v);
}

#[test]
#[cfg_attr(miri, ignore)] // shm_open
fn a_guard_and_a_second_handle_in_one_thread_share_no_reference() {
    let name = SegmentName::unique();
    let v = Value::<i64>::create(&name, 0).unwrap();
    let other = Value::<i64>::open(&name).unwrap();
    guard_sees_writes_through(&v, &other);
}

/// Leaves `v`'s lock held by a thread that has exited (as a killed holder would).
fn abandon_lock(v: &Arc<Value<i64>>) {
    let v2 = Arc::clone(v);
    std::thread::spawn(move || {
        let g = v2.lock().unwrap();
        g.set(999); // a half-done update
        std::mem::forget(g);
    })
    .join()
    .unwrap();
}

#[test]
#[cfg_attr(miri, ignore)] // liveness is read from /proc
fn update_refuses_after_owner_death_until_marked_consistent() {
    let v = Arc::new(Value::<i64>::new(1));
    abandon_lock(&v);
    let mut ran = false;
    assert_eq!(
        v.update(|x| {
            ran = true;
            x + 1
        }),
        Err(UpdateError::OwnerDied)
    );
    assert!(!ran, "the closure ran on a value whose updater died");
    assert!(v.is_inconsistent());
    // Still flagged: the next update is told again, and so is a timed one.
    assert_eq!(v.update(|x| x + 1), Err(UpdateError::OwnerDied));
    assert_eq!(
        v.try_update_for(std::time::Duration::from_secs(5), |x| x + 1),
        Err(UpdateTimeoutError::OwnerDied)
    );
    assert_eq!(v.lock().err(), Some(shm_lock::LockError::OwnerDied));
    let guard = v.recover();
    assert_eq!(guard.get(), 999);
    // Re-entered under the unmarked guard, update still refuses.
    assert_eq!(v.update(|x| x + 1), Err(UpdateError::OwnerDied));
    guard.set(1);
    guard.mark_consistent();
    assert_eq!(v.update(|x| x + 1), Ok(2));
    drop(guard);
    assert_eq!(v.update(|x| x + 1), Ok(3));
    assert!(!v.is_inconsistent());
}

#[test]
#[cfg_attr(miri, ignore)] // timed futex waits
fn try_update_times_out_while_another_thread_holds_the_lock() {
    let v = Arc::new(Value::<i32>::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let v2 = Arc::clone(&v);
    let t = std::thread::spawn(move || {
        let _g = v2.lock().unwrap();
        tx.send(()).unwrap();
        done_rx.recv().unwrap();
    });
    rx.recv().unwrap();
    let r = v.try_update_for(std::time::Duration::from_millis(20), |x| x + 1);
    assert_eq!(r, Err(UpdateTimeoutError::Timeout));
    assert!(matches!(v.try_lock(), Err(TryLockError::WouldBlock)));
    done_tx.send(()).unwrap();
    t.join().unwrap();
    assert_eq!(v.update(|x| x + 1).unwrap(), 1);
}

#[test]
#[cfg_attr(miri, ignore)] // shm_open
fn segments_check_kind_typecode_and_body() {
    let name = SegmentName::unique();
    let v = Value::<i32>::create(&name, 5).unwrap();
    assert!(v.segment().unwrap().is_creator());
    assert!(matches!(
        Value::<i32>::create(&name, 1),
        Err(shm_core::CreateError::AlreadyExists { .. })
    ));
    let o = Value::<i32>::open(&name).unwrap();
    assert_eq!(o.load(), 5);
    assert_eq!(Value::<i32>::open_or_create(&name, 99).unwrap().load(), 5);
    match Value::<u32>::open(&name) {
        Err(OpenError::WrongLayout { expected, found }) => {
            assert_eq!(expected.format(), "I");
            assert_eq!(found.format(), "i");
        }
        other => panic!("expected WrongLayout, got {other:?}"),
    }
    assert!(matches!(
        RawValue::<i32>::open(&name),
        Err(OpenError::WrongKind { .. })
    ));
    drop((v, o));
    assert!(matches!(
        Value::<i32>::open(&name),
        Err(OpenError::NotFound { .. })
    ));

    // 'l' and 'q' are aliases: i64 opens either (both are i64 here).
    let raw = SegmentName::unique();
    let r = RawValue::<f32>::open_or_create(&raw, 0.5).unwrap();
    assert!(r.segment().unwrap().is_creator());
    assert_eq!(RawValue::<f32>::open(&raw).unwrap().load(), 0.5);
}

#[test]
fn errors_are_static_and_work_with_question_mark() {
    fn run() -> Result<i32, Box<dyn std::error::Error + Send + Sync>> {
        let v = Value::<i32>::new(1);
        Ok(v.update(|x| x + 1)?)
    }
    assert_eq!(run().unwrap(), 2);
    let e: Box<dyn std::error::Error + Send + Sync> = UpdateError::OwnerDied.into();
    assert!(e.to_string().contains("died"));
    assert!(UpdateTimeoutError::Timeout
        .to_string()
        .contains("timed out"));
    assert_eq!(
        UpdateTimeoutError::from(UpdateError::OwnerDied),
        UpdateTimeoutError::OwnerDied
    );
}

#[test]
#[cfg_attr(miri, ignore)] // shm_open
fn builder_knobs_and_the_opener_adopts_the_header() {
    let name = SegmentName::unique();
    let v = Value::<u16>::builder(&name)
        .value(7)
        .mode(0o600)
        .wait_strategy(shm_core::WaitStrategy::busy_poll())
        .create()
        .unwrap();
    // The opener states nothing but the type.
    let o = Value::<u16>::builder(&name)
        .open_timeout(std::time::Duration::from_secs(1))
        .open()
        .unwrap();
    assert_eq!(o.load(), 7);
    assert_eq!(o.update(|x| x + 1), Ok(8));
    // Without `value`, a fresh value is zero (Python's RawValue).
    let zero = RawValue::<f64>::builder(&SegmentName::unique())
        .create()
        .unwrap();
    assert_eq!(zero.load(), 0.0);
    assert!(format!("{:?}", Value::<u8>::builder(&name)).contains("Builder"));
    drop((v, o));
}
