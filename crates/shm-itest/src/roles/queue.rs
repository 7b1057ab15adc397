//! Child roles (of the `shm-itest` binary) for the multi-process tests of `shm-queue`
//! (`tests/queue_spsc.rs`, `tests/queue_mpmc.rs`; the byte queues' roles are in [`bytes`], the
//! SIGKILL tests' in [`kill`]).
//!
//! Started by the tests in a role (see `shm_process`), with segment names as arguments.
//! Exit codes: 0 done, 3 bad arguments, 4 open failed, 5 an operation failed.

pub mod bytes;
pub mod kill;

use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::{ObjectKind, Segment, SegmentName};
use shm_process::Roles;
use shm_queue::{MpmcQueue, PopError, PopTimeoutError, SpscQueue, TryPopError};
use std::io::Write;

fn name(args: &[String], i: usize) -> Option<SegmentName> {
    SegmentName::new(args.get(i)?).ok()
}

fn num(args: &[String], i: usize) -> Option<u64> {
    args.get(i)?.parse().ok()
}

/// A shared `u64` counter: a one-element segment made by the test.
struct Counter(Segment);

impl Counter {
    fn open(name: &SegmentName) -> Option<Counter> {
        Segment::builder(name, ObjectKind::RawValue)
            .open()
            .ok()
            .filter(|s| s.body_len() >= 8)
            .map(Counter)
    }

    fn get(&self) -> &AtomicU64 {
        // SAFETY: the body is at least 8 bytes (checked in `open`), 128-byte aligned, and is
        // only ever accessed as one atomic u64.
        unsafe { &*self.0.body().as_ptr().cast::<AtomicU64>() }
    }
}

/// `spsc-produce NAME N MODE`: pushes 0..N (MODE `one` by one, `slice` in batches).
fn spsc_produce(args: &[String]) -> i32 {
    let (Some(n), Some(count), Some(mode)) = (name(args, 0), num(args, 1), args.get(2)) else {
        return 3;
    };
    let Ok(q) = SpscQueue::<u64>::builder(&n).open() else {
        return 4;
    };
    let Ok(mut p) = q.producer() else { return 4 };
    if mode == "slice" {
        let mut next = 0u64;
        let mut buf = [0u64; 256];
        while next < count {
            let k = ((count - next) as usize).min(buf.len());
            for (j, b) in buf[..k].iter_mut().enumerate() {
                *b = next + j as u64;
            }
            let mut done = 0;
            while done < k {
                let m = p.push_slice(&buf[done..k]);
                if m == 0 {
                    // Full: block for one item, which also sleeps if the consumer is slow.
                    if p.push(buf[done]).is_err() {
                        return 5;
                    }
                    done += 1;
                } else {
                    done += m;
                }
            }
            next += k as u64;
        }
    } else {
        for i in 0..count {
            if p.push(i).is_err() {
                return 5;
            }
        }
    }
    0
}

/// `spsc-forever NAME COUNTER`: pushes 0, 1, 2, … and bumps COUNTER after each push returns,
/// until killed.
fn spsc_forever(args: &[String]) -> i32 {
    let (Some(n), Some(cn)) = (name(args, 0), name(args, 1)) else {
        return 3;
    };
    let (Ok(q), Some(counter)) = (SpscQueue::<u64>::builder(&n).open(), Counter::open(&cn)) else {
        return 4;
    };
    let Ok(mut p) = q.producer() else { return 4 };
    let mut i = 0u64;
    loop {
        if p.push(i).is_err() {
            return 5;
        }
        i += 1;
        counter.get().store(i, Ordering::SeqCst);
    }
}

/// `mpmc-produce NAME TAG N`: pushes `TAG << 32 | i` for i in 0..N.
fn mpmc_produce(args: &[String]) -> i32 {
    let (Some(n), Some(tag), Some(count)) = (name(args, 0), num(args, 1), num(args, 2)) else {
        return 3;
    };
    let Ok(q) = MpmcQueue::<u64>::builder(&n).open() else {
        return 4;
    };
    let Ok(mut p) = q.producer() else { return 4 };
    for i in 0..count {
        if p.push((tag << 32) | i).is_err() {
            return 5;
        }
    }
    0
}

/// `mpmc-forever NAME TAG COUNTER`: pushes `TAG << 32 | i` and bumps COUNTER after each push
/// returns, until killed.
fn mpmc_forever(args: &[String]) -> i32 {
    let (Some(n), Some(tag), Some(cn)) = (name(args, 0), num(args, 1), name(args, 2)) else {
        return 3;
    };
    let (Ok(q), Some(counter)) = (MpmcQueue::<u64>::builder(&n).open(), Counter::open(&cn)) else {
        return 4;
    };
    let Ok(mut p) = q.producer() else { return 4 };
    let mut i = 0u64;
    loop {
        if p.push((tag << 32) | i).is_err() {
            return 5;
        }
        i += 1;
        counter.get().store(i, Ordering::SeqCst);
    }
}

/// `mpmc-stall NAME TAG N COUNTER`: pushes `TAG << 32 | i` for i in 0..N (bumping COUNTER
/// after each), then claims one more slot and never publishes it, sets COUNTER to N + 1, and
/// sleeps until killed: the worst moment for a producer to die.
fn mpmc_stall(args: &[String]) -> i32 {
    let (Some(n), Some(tag), Some(count), Some(cn)) =
        (name(args, 0), num(args, 1), num(args, 2), name(args, 3))
    else {
        return 3;
    };
    let (Ok(q), Some(counter)) = (MpmcQueue::<u64>::builder(&n).open(), Counter::open(&cn)) else {
        return 4;
    };
    let Ok(mut p) = q.producer() else { return 4 };
    for i in 0..count {
        if p.push((tag << 32) | i).is_err() {
            return 5;
        }
        counter.get().store(i + 1, Ordering::SeqCst);
    }
    while !p.claim_and_abandon_for_test() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    counter.get().store(count + 1, Ordering::SeqCst);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// `mpmc-consume NAME OUT`: pops until Disconnected, then writes every item received (in
/// order, little-endian u64) to the file OUT.
fn mpmc_consume(args: &[String]) -> i32 {
    let (Some(n), Some(out)) = (name(args, 0), args.get(1)) else {
        return 3;
    };
    let Ok(q) = MpmcQueue::<u64>::builder(&n).open() else {
        return 4;
    };
    let Ok(mut c) = q.consumer() else { return 4 };
    let mut got = Vec::new();
    loop {
        match c.pop() {
            Ok(v) => got.extend_from_slice(&v.to_le_bytes()),
            Err(PopError::Disconnected) => break,
            Err(_) => return 5,
        }
    }
    let Ok(mut f) = std::fs::File::create(out) else {
        return 5;
    };
    if f.write_all(&got).is_err() {
        return 5;
    }
    0
}

/// `spsc-expect-corrupt NAME`: consumes the `SpscQueue<u64>` NAME (prints `ready` first)
/// until a pop reports `Corrupt`; checks that every later pop does too; prints the number of
/// items it got.
fn spsc_expect_corrupt(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 3 };
    let Ok(q) = SpscQueue::<u64>::builder(&n).open() else {
        return 4;
    };
    let Ok(mut c) = q.consumer() else { return 4 };
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut got = 0u64;
    loop {
        match c.pop_timeout(std::time::Duration::from_secs(60)) {
            Ok(_) => got += 1,
            Err(PopTimeoutError::Corrupt) => break,
            Err(e) => {
                eprintln!("spsc-expect-corrupt: {e}");
                return 5;
            }
        }
    }
    if c.try_pop() != Err(TryPopError::Corrupt) || c.pop() != Err(PopError::Corrupt) {
        eprintln!("spsc-expect-corrupt: a later pop was not Corrupt");
        return 5;
    }
    println!("{got}");
    0
}

/// Registers this module's roles and those of [`bytes`] and [`kill`], each named
/// `queue.<role>`.
pub fn register(roles: Roles) -> Roles {
    kill::register(bytes::register(roles))
        .role("queue.spsc-produce", spsc_produce)
        .role("queue.spsc-forever", spsc_forever)
        .role("queue.mpmc-produce", mpmc_produce)
        .role("queue.mpmc-forever", mpmc_forever)
        .role("queue.mpmc-stall", mpmc_stall)
        .role("queue.mpmc-consume", mpmc_consume)
        .role("queue.spsc-expect-corrupt", spsc_expect_corrupt)
}
