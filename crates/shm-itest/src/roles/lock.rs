//! Child roles (of the `shm-itest` binary) for `shm-lock`'s multi-process tests (`tests/processes.rs`): the child that
//! `shm_process::Process` starts in a role. Not meant to be run by hand.
//!
//! Roles (names are segment names; exit 0 on success, 1 on a setup error, others as noted):
//!
//! - `lock-count LOCK COUNTER N`: N increments of the plain `u64` in the `Bytes` segment
//!   COUNTER, each under the `Lock`.
//! - `rlock-count RLOCK COUNTER N`: the same under the `RLock`, locked twice (nested).
//! - `hold lock|rlock NAME sleep|exit`: locks, prints `locked`, then sleeps 60 s (to be
//!   killed) or forgets the guard and exits 0 without unlocking.
//! - `sem-acquire SEM N`: acquires N times (each with a 20 s timeout; exit 2 on timeout).
//! - `sem-release SEM N`: releases N times.
//! - `event-wait EVENT`: prints `waiting`, waits up to 20 s; exit 0 if set, 2 if not.
//! - `cond-consumer COND COUNTER N`: takes N items: waits while the counter is 0, decrements.
//! - `lock-loop LOCK COUNTER`: prints `started`, then increments under the lock until killed
//!   (at most 60 s), repairing the counter flag if it finds a dead holder.
//! - `cond-hold COND`: locks the condition's lock, notifies, prints `locked`, sleeps 60 s
//!   holding it (to be killed).
//! - `barrier-wait BARRIER [TIMEOUT_MS]`: waits; prints the index; exit 3 broken, 4 timeout.
//! - `barrier-action BARRIER abort|reset|hang`: waits with an action that opens a *second
//!   handle* to the same barrier and calls `abort` or `reset` on it (the hang of issue 10), or
//!   prints `action` and sleeps 60 s (to be killed); prints the outcome; exit 0 passed,
//!   3 broken, 4 timed out (20 s), 5 the action failed.

use shm_core::{ObjectKind, Segment, SegmentName};
use shm_lock::{Barrier, BarrierTimeoutError, Condition, Event, Lock, LockError, RLock, Semaphore};
use shm_process::Roles;
use std::io::Write;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn name(args: &[String], i: usize) -> SegmentName {
    SegmentName::new(args.get(i).map_or("", String::as_str)).expect("segment name argument")
}

fn num(args: &[String], i: usize) -> u64 {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .expect("number argument")
}

fn counter(name: &SegmentName) -> (Segment, *mut u64) {
    let seg = Segment::builder(name, ObjectKind::Bytes)
        .open()
        .expect("open counter");
    assert!(seg.body_len() >= 8);
    let p = seg.body().as_ptr().cast::<u64>();
    (seg, p)
}

fn say(s: &str) {
    println!("{s}");
    let _ = std::io::stdout().flush();
}

fn lock_count(args: &[String]) -> i32 {
    let lock = Lock::builder(&name(args, 0)).open().expect("open lock");
    let (_seg, p) = counter(&name(args, 1));
    for _ in 0..num(args, 2) {
        let g = lock.lock().unwrap_or_else(|e| panic!("lock: {e}"));
        // SAFETY: the counter is 8 aligned bytes of the mapped body, only touched under the lock.
        unsafe { p.write(p.read() + 1) };
        drop(g);
    }
    0
}

fn rlock_count(args: &[String]) -> i32 {
    let lock = RLock::builder(&name(args, 0)).open().expect("open rlock");
    let (_seg, p) = counter(&name(args, 1));
    for _ in 0..num(args, 2) {
        let outer = lock.lock().unwrap_or_else(|e| panic!("lock: {e}"));
        let inner = lock.lock().unwrap_or_else(|e| panic!("nested lock: {e}"));
        // SAFETY: as in lock_count.
        unsafe { p.write(p.read() + 1) };
        drop(inner);
        drop(outer);
    }
    0
}

fn hold(args: &[String]) -> i32 {
    let n = name(args, 1);
    let exit = args.get(2).map(String::as_str) == Some("exit");
    match args.first().map(String::as_str) {
        Some("lock") => {
            let lock = Lock::builder(&n).open().expect("open lock");
            let g = lock.lock().unwrap_or_else(|e| panic!("lock: {e}"));
            say("locked");
            if exit {
                std::mem::forget(g);
                std::mem::forget(lock);
                return 0;
            }
            std::thread::sleep(LONG);
        }
        Some("rlock") => {
            let lock = RLock::builder(&n).open().expect("open rlock");
            let g = lock.lock().unwrap_or_else(|e| panic!("lock: {e}"));
            let g2 = lock.lock().unwrap_or_else(|e| panic!("lock: {e}"));
            say("locked");
            if exit {
                std::mem::forget(g2);
                std::mem::forget(g);
                std::mem::forget(lock);
                return 0;
            }
            std::thread::sleep(LONG);
        }
        _ => return 1,
    }
    0
}

fn lock_loop(args: &[String]) -> i32 {
    let lock = Lock::builder(&name(args, 0)).open().expect("open lock");
    let (_seg, p) = counter(&name(args, 1));
    say("started");
    let end = std::time::Instant::now() + LONG;
    while std::time::Instant::now() < end {
        for _ in 0..1000 {
            // A previous victim's death is the parent's to repair: take the lock anyway and
            // leave the flag.
            let g = match lock.lock() {
                Ok(g) => g,
                Err(LockError::OwnerDied) => lock.recover().expect("recover"),
                Err(e) => panic!("lock: {e}"),
            };
            // SAFETY: as in lock_count.
            unsafe { p.write(p.read() + 1) };
            drop(g);
        }
    }
    0
}

fn sem_acquire(args: &[String]) -> i32 {
    let s = Semaphore::builder(&name(args, 0)).open().expect("open sem");
    for _ in 0..num(args, 1) {
        if s.acquire_timeout(Duration::from_secs(20)).is_err() {
            return 2;
        }
    }
    0
}

fn sem_release(args: &[String]) -> i32 {
    let s = Semaphore::builder(&name(args, 0)).open().expect("open sem");
    for _ in 0..num(args, 1) {
        s.release().expect("release");
    }
    0
}

fn event_wait(args: &[String]) -> i32 {
    let e = Event::builder(&name(args, 0)).open().expect("open event");
    say("waiting");
    if e.wait_timeout(Duration::from_secs(20)) {
        0
    } else {
        2
    }
}

fn cond_consumer(args: &[String]) -> i32 {
    let c = Condition::builder(&name(args, 0))
        .open()
        .expect("open cond");
    let (_seg, p) = counter(&name(args, 1));
    for _ in 0..num(args, 2) {
        let g = c.lock().unwrap_or_else(|e| panic!("lock: {e}"));
        // SAFETY: the counter is only touched under the condition's lock.
        let g = c
            .wait_while(g, || unsafe { p.read() } == 0)
            .unwrap_or_else(|e| panic!("wait: {e}"));
        // SAFETY: as above.
        unsafe { p.write(p.read() - 1) };
        c.notify_all();
        drop(g);
    }
    0
}

fn cond_hold(args: &[String]) -> i32 {
    let c = Condition::builder(&name(args, 0))
        .open()
        .expect("open cond");
    let g = c.lock().unwrap_or_else(|e| panic!("lock: {e}"));
    c.notify_all(); // before saying so: the parent kills us once it reads the line
    say("locked");
    std::thread::sleep(LONG);
    drop(g);
    0
}

fn barrier_strategy() -> shm_core::WaitStrategy {
    shm_core::WaitStrategy::default().with_slice(Duration::from_millis(10))
}

fn barrier_code(r: Result<u32, BarrierTimeoutError>) -> i32 {
    match r {
        Ok(i) => {
            say(&i.to_string());
            0
        }
        Err(BarrierTimeoutError::Broken) => {
            say("broken");
            3
        }
        Err(BarrierTimeoutError::Timeout) => {
            say("timeout");
            4
        }
        Err(e) => {
            say(&format!("error: {e}"));
            5
        }
    }
}

fn barrier_wait(args: &[String]) -> i32 {
    let b = Barrier::builder(&name(args, 0))
        .wait_strategy(barrier_strategy())
        .open()
        .expect("open barrier");
    let r = match args.get(1).and_then(|t| t.parse().ok()) {
        Some(ms) => b.wait_timeout(Duration::from_millis(ms)),
        None => b.wait().map_err(BarrierTimeoutError::from),
    };
    barrier_code(r)
}

fn barrier_action(args: &[String]) -> i32 {
    let n = name(args, 0);
    let mode = args.get(1).cloned().unwrap_or_default();
    let second = n.clone();
    let b = Barrier::builder(&n)
        .wait_strategy(barrier_strategy())
        .action(move || {
            if mode == "hang" {
                say("action");
                std::thread::sleep(LONG); // to be killed inside the action
                return Ok(());
            }
            let again = Barrier::builder(&second).open()?;
            if mode == "reset" {
                again.reset();
            } else {
                again.abort();
            }
            Ok(())
        })
        .open()
        .expect("open barrier");
    barrier_code(b.wait_timeout(Duration::from_secs(20)))
}

/// Registers this module's roles, each named `lock.<role>`.
pub fn register(roles: Roles) -> Roles {
    roles
        .role("lock.lock-count", lock_count)
        .role("lock.rlock-count", rlock_count)
        .role("lock.hold", hold)
        .role("lock.lock-loop", lock_loop)
        .role("lock.sem-acquire", sem_acquire)
        .role("lock.sem-release", sem_release)
        .role("lock.event-wait", event_wait)
        .role("lock.cond-consumer", cond_consumer)
        .role("lock.cond-hold", cond_hold)
        .role("lock.barrier-wait", barrier_wait)
        .role("lock.barrier-action", barrier_action)
}
