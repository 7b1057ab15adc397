//! Multi-process tests of shm-lock with real children: the child binary
//! `shm-itest` started in its `lock.*` roles.
//!
//! No test asserts how long anything takes; waits for an outcome are bounded generously and
//! fail when the bound passes. A [`Watchdog`] per test kills its children if the test hangs.
#![cfg(target_os = "linux")]

use shm_core::{ObjectKind, Segment, SegmentName, WaitStrategy};
use shm_itest::{drain, eventually, expect_line, join_bounded, Watchdog, OUTCOME_BOUND};
use shm_lock::{
    AboveBoundError, Barrier, BarrierError, BoundedSemaphore, Condition, Event, Lock, LockError,
    RLock, Semaphore, TryLockError,
};
use shm_process::{Process, ProcessBuilder};
use std::process::Stdio;
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();
fn child(role: &str, args: &[&str]) -> ProcessBuilder {
    shm_itest::child(CHILD, &format!("lock.{role}"))
        .stdout(Stdio::null())
        .args(args.iter().copied())
}

/// Starts a child with piped stdout and waits for it to print `line`.
fn start_and_expect(w: &Watchdog, b: ProcessBuilder, line: &str) -> Process {
    let mut p = w.start(b.stdout(Stdio::piped()));
    // Keep reading in the background so the child never blocks on a full pipe.
    drain(expect_line(&mut p, line));
    p
}

fn counter_segment(name: &SegmentName) -> Segment {
    Segment::builder(name, ObjectKind::Bytes)
        .body_len(8)
        .create(|_, _| {})
        .expect("create counter")
}

fn read_counter(seg: &Segment) -> u64 {
    // SAFETY: 8 aligned bytes of the body; read after every writer has exited.
    unsafe { seg.body().as_ptr().cast::<u64>().read() }
}

const PER_CHILD: &str = "100000";

#[test]
fn lock_four_processes_count_exactly() {
    let w = Watchdog::new();
    let (ln, cn) = (SegmentName::unique(), SegmentName::unique());
    let _lock = Lock::builder(&ln).create().unwrap();
    let counter = counter_segment(&cn);
    let mut kids: Vec<_> = (0..4)
        .map(|_| w.start(child("lock-count", &[ln.as_str(), cn.as_str(), PER_CHILD])))
        .collect();
    for k in &mut kids {
        assert_eq!(join_bounded(k).exitcode(), 0);
    }
    assert_eq!(read_counter(&counter), 400_000);
}

#[test]
fn rlock_four_processes_count_exactly_with_nesting() {
    let w = Watchdog::new();
    let (ln, cn) = (SegmentName::unique(), SegmentName::unique());
    let _lock = RLock::builder(&ln).create().unwrap();
    let counter = counter_segment(&cn);
    let mut kids: Vec<_> = (0..4)
        .map(|_| w.start(child("rlock-count", &[ln.as_str(), cn.as_str(), PER_CHILD])))
        .collect();
    for k in &mut kids {
        assert_eq!(join_bounded(k).exitcode(), 0);
    }
    assert_eq!(read_counter(&counter), 400_000);
}

fn holder_dies(kind: &str, mode: &str) {
    let w = Watchdog::new();
    let n = SegmentName::unique();
    let strategy = WaitStrategy::default().with_slice(Duration::from_millis(10));
    let lock = Lock::builder(&n).wait_strategy(strategy);
    let rlock = RLock::builder(&n).wait_strategy(strategy);
    let (l, r) = if kind == "lock" {
        (Some(lock.create().unwrap()), None)
    } else {
        (None, Some(rlock.create().unwrap()))
    };
    let mut p = start_and_expect(&w, child("hold", &[kind, n.as_str(), mode]), "locked");
    if mode == "sleep" {
        // The lock is held by a live process.
        match (&l, &r) {
            (Some(l), _) => assert_eq!(l.try_lock().err(), Some(TryLockError::WouldBlock)),
            (_, Some(r)) => assert_eq!(r.try_lock().err(), Some(TryLockError::WouldBlock)),
            _ => unreachable!(),
        }
        p.kill().unwrap();
    }
    // Not reaped yet on purpose in the `sleep` case: a zombie holder counts as dead.
    match (&l, &r) {
        (Some(l), _) => {
            assert_eq!(l.lock().err(), Some(LockError::OwnerDied));
            assert!(!l.is_locked(), "OwnerDied leaves the lock free");
            // Told again until someone recovers and marks it consistent.
            assert_eq!(l.try_lock().err(), Some(TryLockError::OwnerDied));
            let g = l.recover().expect("recover");
            assert!(g.is_inconsistent());
            g.mark_consistent();
            drop(g);
            let g = l.lock().expect("consistent again");
            assert!(!g.is_inconsistent());
        }
        (_, Some(r)) => {
            assert_eq!(r.lock().err(), Some(shm_lock::OwnerDiedError));
            let g = r.recover();
            assert_eq!(g.depth(), 1, "the dead holder's depth is discarded");
            g.mark_consistent();
            drop(g);
            let g = r.lock().expect("consistent again");
            drop(g);
        }
        _ => unreachable!(),
    }
    let code = join_bounded(&mut p).exitcode();
    if mode == "exit" {
        assert_eq!(code, 0);
    }
}

#[test]
fn lock_holder_killed_gives_owner_died() {
    holder_dies("lock", "sleep");
}

#[test]
fn rlock_holder_killed_gives_owner_died() {
    holder_dies("rlock", "sleep");
}

#[test]
fn lock_holder_exiting_without_unlock_gives_owner_died() {
    holder_dies("lock", "exit");
}

#[test]
fn rlock_holder_exiting_without_unlock_gives_owner_died() {
    holder_dies("rlock", "exit");
}

#[test]
fn opening_checks_the_kind() {
    let n = SegmentName::unique();
    let _l = Lock::builder(&n).create().unwrap();
    let e = RLock::builder(&n).open().unwrap_err();
    assert!(matches!(e, shm_core::OpenError::WrongKind { .. }), "{e}");
    assert!(Lock::builder(&n).open_or_create().is_ok());
}

#[test]
fn semaphore_counts_across_processes() {
    let w = Watchdog::new();
    let n = SegmentName::unique();
    let s = Semaphore::builder(&n).value(0).create().unwrap();
    let mut taker = w.start(child("sem-acquire", &[n.as_str(), "3"]));
    for _ in 0..3 {
        s.release().unwrap();
    }
    assert_eq!(join_bounded(&mut taker).exitcode(), 0);
    assert_eq!(s.value(), 0);
    let mut giver = w.start(child("sem-release", &[n.as_str(), "5"]));
    assert_eq!(join_bounded(&mut giver).exitcode(), 0);
    assert_eq!(s.value(), 5);
}

#[test]
fn bounded_semaphore_over_release_is_an_error_for_openers_too() {
    let n = SegmentName::unique();
    let s = BoundedSemaphore::builder(&n).value(2).create().unwrap();
    let other = BoundedSemaphore::builder(&n).open().unwrap();
    assert_eq!(other.initial_value(), 2, "the opener adopts the bound");
    assert_eq!(other.release(), Err(AboveBoundError { bound: 2 }));
    s.acquire();
    other.release().unwrap();
    assert_eq!(s.release(), Err(AboveBoundError { bound: 2 }));
    assert_eq!(s.value(), 2);
}

#[test]
fn event_wakes_a_waiter_in_another_process() {
    let w = Watchdog::new();
    let n = SegmentName::unique();
    let e = Event::builder(&n).create().unwrap();
    let mut p = start_and_expect(&w, child("event-wait", &[n.as_str()]), "waiting");
    e.set();
    assert_eq!(join_bounded(&mut p).exitcode(), 0);
}

#[test]
fn condition_producer_consumer_across_processes() {
    let w = Watchdog::new();
    let (n, cn) = (SegmentName::unique(), SegmentName::unique());
    let c = Condition::builder(&n).create().unwrap();
    let counter = counter_segment(&cn);
    let items = 2000u64;
    let mut consumer = w.start(child(
        "cond-consumer",
        &[n.as_str(), cn.as_str(), &items.to_string()],
    ));
    let p = counter.body().as_ptr().cast::<u64>();
    for _ in 0..items {
        let g = c.lock().unwrap();
        // Keep at most 4 items queued, so both sides wait on the condition.
        // SAFETY: the counter is only touched under the condition's lock.
        let g = c.wait_while(g, || unsafe { p.read() } >= 4).unwrap();
        // SAFETY: as above.
        unsafe { p.write(p.read() + 1) };
        c.notify_all();
        drop(g);
    }
    assert_eq!(join_bounded(&mut consumer).exitcode(), 0);
    assert_eq!(read_counter(&counter), 0);
}

fn barrier(n: &SegmentName, parties: u32) -> Barrier {
    Barrier::builder(n)
        .parties(parties)
        .wait_strategy(WaitStrategy::default().with_slice(Duration::from_millis(10)))
        .create()
        .unwrap()
}

#[test]
fn barrier_three_processes_then_timeout_abort_reset_and_dead_waiter() {
    let w = Watchdog::new();
    let n = SegmentName::unique();
    let b = barrier(&n, 3);

    // A full round: two children and us.
    let mut kids: Vec<_> = (0..2)
        .map(|_| w.start(child("barrier-wait", &[n.as_str()])))
        .collect();
    let mine = b.wait().unwrap();
    assert!(mine < 3);
    for k in &mut kids {
        assert_eq!(join_bounded(k).exitcode(), 0);
    }
    assert!(!b.is_broken());

    // Timeout: a lone child times out and breaks it for everyone.
    let mut k = w.start(child("barrier-wait", &[n.as_str(), "100"]));
    assert_eq!(join_bounded(&mut k).exitcode(), 4);
    assert!(b.is_broken());
    assert!(matches!(b.wait(), Err(BarrierError::Broken)));
    b.reset();
    assert!(!b.is_broken());

    // Abort wakes a waiting child with Broken.
    let mut k = w.start(child("barrier-wait", &[n.as_str()]));
    assert!(eventually(OUTCOME_BOUND, || b.n_waiting() == 1));
    b.abort();
    assert_eq!(join_bounded(&mut k).exitcode(), 3);
    b.reset();

    // Reset while a child waits: it gets Broken, the barrier is usable.
    let mut k = w.start(child("barrier-wait", &[n.as_str()]));
    assert!(eventually(OUTCOME_BOUND, || b.n_waiting() == 1));
    b.reset();
    assert_eq!(join_bounded(&mut k).exitcode(), 3);
    assert!(!b.is_broken());

    // A waiter process dies: the other waiter gets Broken instead of waiting forever.
    let mut victim = w.start(child("barrier-wait", &[n.as_str()]));
    assert!(eventually(OUTCOME_BOUND, || b.n_waiting() == 1));
    let mut survivor = w.start(child("barrier-wait", &[n.as_str()]));
    assert!(eventually(OUTCOME_BOUND, || b.n_waiting() == 2 || b.is_broken()));
    victim.kill().unwrap();
    assert_eq!(join_bounded(&mut survivor).exitcode(), 3);
    assert!(b.is_broken());
    let _ = join_bounded(&mut victim).exitcode();
}

/// SIGKILL a process hammering the lock at arbitrary moments: the lock must always be
/// acquirable afterwards, with `OwnerDied` exactly when the victim died holding it.
#[test]
fn killing_a_busy_locker_at_random_moments_never_strands_the_lock() {
    let w = Watchdog::new();
    let (ln, cn) = (SegmentName::unique(), SegmentName::unique());
    let lock = Lock::builder(&ln)
        .wait_strategy(WaitStrategy::default().with_slice(Duration::from_millis(5)))
        .create()
        .unwrap();
    let counter = counter_segment(&cn);
    let mut died = 0;
    for round in 0..8u64 {
        let mut p = start_and_expect(
            &w,
            child("lock-loop", &[ln.as_str(), cn.as_str()]),
            "started",
        );
        std::thread::sleep(Duration::from_micros(300 + 700 * round));
        p.kill().unwrap();
        let _ = join_bounded(&mut p).exitcode();
        let before = read_counter(&counter);
        match lock.lock() {
            Ok(g) => assert!(!g.is_inconsistent()),
            Err(LockError::OwnerDied) => {
                died += 1;
                let g = lock.recover().expect("recover");
                assert!(g.is_inconsistent());
                g.mark_consistent();
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        assert_eq!(read_counter(&counter), before);
    }
    // Not asserted: how often the victim died inside the lock (timing decides).
    eprintln!("victim died holding the lock in {died} of 8 rounds");
}

/// A waiter killed inside `Condition::wait` does not make `notify` block, and a live waiter
/// is still woken.
#[test]
fn condition_notify_never_blocks_on_a_dead_waiter() {
    let w = Watchdog::new();
    let (n, cn) = (SegmentName::unique(), SegmentName::unique());
    let c = Condition::builder(&n).create().unwrap();
    let counter = counter_segment(&cn);
    let mut victim = w.start(child("cond-consumer", &[n.as_str(), cn.as_str(), "1"]));
    // Wait until the victim sleeps in `wait` (it holds no lock then): it is gone from the
    // lock and the counter is 0, so give it a moment, then kill it.
    std::thread::sleep(Duration::from_millis(100));
    victim.kill().unwrap();
    let _ = join_bounded(&mut victim).exitcode();
    c.notify_all();
    c.notify(1);
    let mut consumer = w.start(child("cond-consumer", &[n.as_str(), cn.as_str(), "1"]));
    // (The victim died outside the lock: nothing to recover.)
    let g = c.lock().unwrap();
    let p = counter.body().as_ptr().cast::<u64>();
    // SAFETY: the counter is only touched under the condition's lock.
    unsafe { p.write(p.read() + 1) };
    c.notify_all();
    drop(g);
    assert_eq!(join_bounded(&mut consumer).exitcode(), 0);
    assert_eq!(read_counter(&counter), 0);
}

/// The hang of issue 10: a Barrier action that calls `abort()` or `reset()` on its own
/// barrier through a second handle spun forever. Now both parties return `Broken`, bounded.
#[test]
fn barrier_action_aborting_or_resetting_through_a_second_handle_returns() {
    for how in ["abort", "reset"] {
        let w = Watchdog::new();
        let n = SegmentName::unique();
        let b = barrier(&n, 2);
        // The child arrives first or second; whoever arrives last runs its own action, so
        // make the child last: wait until we are counted, then start it.
        std::thread::scope(|s| {
            let mine = s.spawn(|| b.wait_timeout(Duration::from_secs(20)));
            assert!(eventually(OUTCOME_BOUND, || b.n_waiting() == 1));
            let mut k = w.start(child("barrier-action", &[n.as_str(), how]));
            assert_eq!(
                join_bounded(&mut k).exitcode(),
                3,
                "{how}: the action's own wait is broken"
            );
            let mine = mine.join().unwrap();
            assert!(
                matches!(mine, Err(shm_lock::BarrierTimeoutError::Broken)),
                "{how}: {mine:?}"
            );
        });
        assert_eq!(b.is_broken(), how == "abort");
        b.reset();
        assert!(!b.is_broken());
    }
}

/// The other hang of issue 10: a barrier whose internal lock word was forged to name a live
/// process stranded `wait_timeout`. It must time out (bounded) instead.
#[test]
fn barrier_wait_timeout_on_a_forged_live_lock_word_times_out() {
    let w = Watchdog::new();
    let n = SegmentName::unique();
    let b = barrier(&n, 2);
    // The internal lock is the first word of the body; name this (live) process's main thread.
    let seg = Segment::builder(&n, ObjectKind::Barrier)
        .open()
        .expect("open the barrier segment");
    let word = shm_core::ProcessId::current().to_word();
    // SAFETY: the body starts with the barrier's 8-aligned lock word, an atomic; we write it
    // as a corrupting process would.
    unsafe { &*seg.body().as_ptr().cast::<std::sync::atomic::AtomicU64>() }
        .store(word, std::sync::atomic::Ordering::SeqCst);
    let mut k = w.start(child("barrier-wait", &[n.as_str(), "300"]));
    assert_eq!(join_bounded(&mut k).exitcode(), 4, "timeout expected");
    // Our own handle gives Timeout too (from a thread that the word does not name).
    std::thread::scope(|s| {
        let r = s
            .spawn(|| b.wait_timeout(Duration::from_millis(100)))
            .join()
            .unwrap();
        assert!(
            matches!(r, Err(shm_lock::BarrierTimeoutError::Timeout)),
            "{r:?}"
        );
    });
}

/// The action runs outside the barrier's internal lock: a process killed inside its action
/// holds nothing, and the other waiters see it dead and get `Broken` (bounded), after which
/// a reset makes the barrier usable again.
#[test]
fn a_process_killed_inside_the_barrier_action_breaks_the_round() {
    let w = Watchdog::new();
    let n = SegmentName::unique();
    let b = barrier(&n, 2);
    std::thread::scope(|s| {
        let mine = s.spawn(|| b.wait_timeout(Duration::from_secs(30)));
        assert!(eventually(OUTCOME_BOUND, || b.n_waiting() == 1));
        let mut k = start_and_expect(&w, child("barrier-action", &[n.as_str(), "hang"]), "action");
        k.kill().unwrap();
        let _ = join_bounded(&mut k).exitcode();
        let mine = mine.join().unwrap();
        assert!(
            matches!(mine, Err(shm_lock::BarrierTimeoutError::Broken)),
            "{mine:?}"
        );
    });
    assert!(b.is_broken());
    b.reset();
    let mut k = w.start(child("barrier-wait", &[n.as_str()]));
    assert!(b.wait_timeout(Duration::from_secs(30)).is_ok());
    assert_eq!(join_bounded(&mut k).exitcode(), 0);
}

/// A process that takes a condition's lock while we wait on it, notifies, and is SIGKILLed
/// holding the lock: our wait returns `OwnerDiedError` instead of hanging (not asserted: that
/// it returns well before its 30 s timeout), and the lock is recovered like any other.
#[test]
fn condition_wait_reports_a_lock_holder_killed_meanwhile() {
    let w = Watchdog::new();
    let n = SegmentName::unique();
    let c = Condition::builder(&n)
        .wait_strategy(WaitStrategy::default().with_slice(Duration::from_millis(10)))
        .create()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let g = c.lock().unwrap();
            tx.send(()).unwrap();
            // Woken by the child's notify; re-taking the lock finds its holder dead.
            c.wait_timeout(g, Duration::from_secs(30)).map(|_| ())
        });
        rx.recv().unwrap();
        let mut k = start_and_expect(&w, child("cond-hold", &[n.as_str()]), "locked");
        k.kill().unwrap();
        let _ = join_bounded(&mut k).exitcode();
        assert_eq!(waiter.join().unwrap(), Err(shm_lock::OwnerDiedError));
    });
    assert!(!c.lock_ref().is_locked(), "OwnerDied leaves the lock free");
    let g = c.recover();
    assert!(g.is_inconsistent());
    g.mark_consistent();
    drop(g);
    assert!(c.lock().is_ok());
}
