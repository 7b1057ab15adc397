//! Child roles (of the `shm-itest` binary) for `shm-queue`'s multi-process tests of byte queues, `JoinableQueue` and
//! `Pipe` (`tests/bytes.rs`, `tests/joinable.rs`, `tests/pipe.rs`). Not meant to be run by hand.
//!
//! Roles (arguments after the role name; exit code 0 on success, 1 on a failed check):
//!
//! - `push-random NAME SEED COUNT MAX`: opens the MPMC byte queue NAME, pushes COUNT messages of
//!   pseudo-random sizes `0..=MAX` (content from SEED), then checks that a message of MAX + 1
//!   bytes is refused with `TooLarge` and handed back.
//! - `pop-check NAME SEED COUNT MAX`: pops COUNT messages and checks them against SEED.
//! - `push-forever NAME SEED MAX`: pushes `message(SEED, i, MAX)` for i = 0, 1, … into the MPMC
//!   queue NAME until killed (or for at most a minute).
//! - `hold-producer NAME`: claims a producer of the byte queue NAME (either flavor), pushes
//!   `from holder`, prints `ready`, sleeps.
//! - `joinable-worker NAME`: takes items from the joinable queue NAME and marks each done, until
//!   the queue is closed or its producers are gone; then checks that one more `task_done` is
//!   refused; prints the number of items.
//! - `joinable-put NAME COUNT`: puts COUNT items into the joinable queue NAME.
//! - `pipe-echo NAME`: opens the pipe NAME and sends every message back reversed, until EOF.
//! - `pipe-send NAME COUNT`: opens the pipe NAME, sends COUNT messages `msg-i`, exits.
//! - `pipe-oc-send NAME CAPACITY COUNT`: takes an end of the one-way pipe NAME (32-byte
//!   messages) with `open_or_create`, sends COUNT messages `msg-i` if it is the sending end,
//!   exits; exit code 3 if both ends are held by live processes, 4 if it created the pipe.
//! - `pipe-hold NAME`: opens the pipe NAME, prints `ready`, sleeps (to be killed).
//! - `pipe-create-hold NAME`: creates the pipe NAME (duplex), prints `ready`, sleeps.
//! - `bytes-expect-corrupt NAME`: consumes the byte queue NAME (either flavor) (prints `ready` first)
//!   until a pop reports `Corrupt`, checks that every later pop does too, prints the number of
//!   messages it got.
//! - `joinable-put-forever NAME`: puts 1 KiB items into the joinable queue NAME (prints
//!   `ready` first) until killed (or for at most a minute).

use shm_core::SegmentName;
use shm_process::Roles;
use shm_queue::bytes::{ByteQueue, BytesTryPushError, Flavor};
use shm_queue::joinable::{JoinableQueue, TaskDoneError};
use shm_queue::pipe::{end_taken, End, Pipe, RecvError};
use shm_queue::{PopError, PopTimeoutError, TryPopError};
use std::io::Write;
use std::time::Duration;

/// Longest any role sleeps, so that a forgotten child cannot outlive a test run by much.
const LONG_SLEEP: Duration = Duration::from_secs(60);

/// The test messages: a deterministic pseudo-random size in `0..=max` and content.
fn message(seed: u64, i: u64, max: usize) -> Vec<u8> {
    let mut x = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = (next() % (max as u64 + 1)) as usize;
    (0..len).map(|_| next() as u8).collect()
}

fn name(args: &[String], i: usize) -> Option<SegmentName> {
    SegmentName::new(args.get(i)?).ok()
}

fn num(args: &[String], i: usize) -> Option<u64> {
    args.get(i)?.parse().ok()
}

fn ready() {
    println!("ready");
    let _ = std::io::stdout().flush();
}

fn push_random(args: &[String]) -> i32 {
    let (Some(n), Some(seed), Some(count), Some(max)) =
        (name(args, 0), num(args, 1), num(args, 2), num(args, 3))
    else {
        eprintln!("push-random: bad arguments {args:?}");
        return 100;
    };
    let max = max as usize;
    let q = match ByteQueue::builder(&n).flavor(Flavor::Mpmc).open() {
        Ok(q) => q,
        Err(e) => {
            eprintln!("push-random: open: {e}");
            return 1;
        }
    };
    let Ok(tx) = q.producer() else { return 1 };
    for i in 0..count {
        if let Err(e) = tx.push(message(seed, i, max)) {
            eprintln!("push-random: push {i}: {e}");
            return 1;
        }
    }
    let big = vec![0xAB; max + 1];
    match tx.try_push(big) {
        Err(BytesTryPushError::TooLarge { msg, max: m }) if msg.len() == max + 1 && m == max => 0,
        other => {
            eprintln!("push-random: oversize push gave {other:?}");
            1
        }
    }
}

fn pop_check(args: &[String]) -> i32 {
    let (Some(n), Some(seed), Some(count), Some(max)) =
        (name(args, 0), num(args, 1), num(args, 2), num(args, 3))
    else {
        return 100;
    };
    let Ok(q) = ByteQueue::builder(&n).flavor(Flavor::Mpmc).open() else {
        return 1;
    };
    let Ok(rx) = q.consumer() else { return 1 };
    for i in 0..count {
        match rx.pop_timeout(Duration::from_secs(20)) {
            Ok(m) if m == message(seed, i, max as usize) => {}
            other => {
                eprintln!("pop-check: message {i}: {other:?}");
                return 1;
            }
        }
    }
    0
}

fn push_forever(args: &[String]) -> i32 {
    let (Some(n), Some(seed), Some(max)) = (name(args, 0), num(args, 1), num(args, 2)) else {
        return 100;
    };
    let Ok(q) = ByteQueue::builder(&n).flavor(Flavor::Mpmc).open() else {
        return 1;
    };
    let Ok(tx) = q.producer() else { return 1 };
    let until = std::time::Instant::now() + LONG_SLEEP;
    let mut i = 0;
    while std::time::Instant::now() < until {
        if tx.push(message(seed, i, max as usize)).is_err() {
            return 1;
        }
        i += 1;
    }
    0
}

fn hold_producer(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    // The opener adopts the flavor (SPSC or MPMC) from the segment.
    let Ok(q) = ByteQueue::builder(&n).open() else {
        return 1;
    };
    let Ok(tx) = q.producer() else { return 1 };
    if tx.push(b"from holder".as_slice()).is_err() {
        return 1;
    }
    ready();
    std::thread::sleep(LONG_SLEEP);
    drop(tx);
    0
}

fn joinable_worker(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    let Ok(q) = JoinableQueue::builder(&n).open() else {
        return 1;
    };
    let Ok(rx) = q.consumer() else { return 1 };
    let mut got = 0u64;
    loop {
        match rx.pop_timeout(Duration::from_secs(20)) {
            Ok(_) => {
                got += 1;
                if q.task_done().is_err() {
                    eprintln!("joinable-worker: task_done refused after a get");
                    return 1;
                }
            }
            Err(PopTimeoutError::Closed | PopTimeoutError::Disconnected) => break,
            Err(e) => {
                eprintln!("joinable-worker: {e}");
                return 1;
            }
        }
    }
    // Every item taken was marked done: one more call is refused.
    if q.task_done() != Err(TaskDoneError::TooManyCalls) {
        eprintln!("joinable-worker: extra task_done was accepted");
        return 1;
    }
    println!("{got}");
    0
}

fn joinable_put(args: &[String]) -> i32 {
    let (Some(n), Some(count)) = (name(args, 0), num(args, 1)) else {
        return 100;
    };
    let Ok(q) = JoinableQueue::builder(&n).open() else {
        return 1;
    };
    let Ok(tx) = q.producer() else { return 1 };
    for i in 0..count {
        if tx.push(i.to_le_bytes()).is_err() {
            return 1;
        }
    }
    0
}

fn pipe_echo(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    let end = match Pipe::builder(&n).open() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("pipe-echo: {e}");
            return 1;
        }
    };
    loop {
        match end.recv_bytes() {
            Ok(mut m) => {
                m.reverse();
                if let Err(e) = end.send_bytes(m) {
                    eprintln!("pipe-echo: send: {e}");
                    return 1;
                }
            }
            Err(RecvError::Disconnected) => return 0,
            Err(e) => {
                eprintln!("pipe-echo: {e}");
                return 1;
            }
        }
    }
}

fn pipe_send(args: &[String]) -> i32 {
    let (Some(n), Some(count)) = (name(args, 0), num(args, 1)) else {
        return 100;
    };
    let Ok(end) = Pipe::builder(&n).open() else {
        return 1;
    };
    for i in 0..count {
        if end.send_bytes(format!("msg-{i}")).is_err() {
            return 1;
        }
    }
    0
}

fn pipe_oc_send(args: &[String]) -> i32 {
    let (Some(n), Some(cap), Some(count)) = (name(args, 0), num(args, 1), num(args, 2)) else {
        return 100;
    };
    let end = match Pipe::builder(&n)
        .duplex(false)
        .capacity(cap)
        .max_message(32)
        .open_or_create()
    {
        Ok(end) => end,
        Err(e) => {
            eprintln!("pipe-oc-send: {e}");
            return if end_taken(&e).is_some() { 3 } else { 1 };
        }
    };
    if end.end() == End::Creator {
        return 4;
    }
    for i in 0..count {
        if end.send_bytes(format!("msg-{i}")).is_err() {
            return 1;
        }
    }
    0
}

fn pipe_hold(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    let Ok(end) = Pipe::builder(&n).open() else {
        return 1;
    };
    ready();
    std::thread::sleep(LONG_SLEEP);
    drop(end);
    0
}

fn pipe_create_hold(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    let Ok(end) = Pipe::builder(&n)
        .duplex(true)
        .capacity(4)
        .max_message(64)
        .create()
    else {
        return 1;
    };
    ready();
    std::thread::sleep(LONG_SLEEP);
    drop(end);
    0
}

fn bytes_expect_corrupt(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    // Either flavor: the opener adopts it from the segment.
    let Ok(q) = ByteQueue::builder(&n).open() else {
        return 1;
    };
    let Ok(rx) = q.consumer() else { return 1 };
    ready();
    let mut got = 0u64;
    loop {
        match rx.pop_timeout(LONG_SLEEP) {
            Ok(_) => got += 1,
            Err(PopTimeoutError::Corrupt) => break,
            Err(e) => {
                eprintln!("bytes-expect-corrupt: {e}");
                return 1;
            }
        }
    }
    if rx.try_pop() != Err(TryPopError::Corrupt) || rx.pop() != Err(PopError::Corrupt) {
        eprintln!("bytes-expect-corrupt: a later pop was not Corrupt");
        return 1;
    }
    println!("{got}");
    0
}

fn joinable_put_forever(args: &[String]) -> i32 {
    let Some(n) = name(args, 0) else { return 100 };
    let Ok(q) = JoinableQueue::builder(&n).open() else {
        return 1;
    };
    let Ok(tx) = q.producer() else { return 1 };
    ready();
    let start = std::time::Instant::now();
    let mut i = 0u64;
    while start.elapsed() < LONG_SLEEP {
        let mut m = vec![i as u8; 1024];
        m[..8].copy_from_slice(&i.to_le_bytes());
        if let Err(e) = tx.push_timeout(m, LONG_SLEEP) {
            eprintln!("joinable-put-forever: {e}");
            return 1;
        }
        i += 1;
    }
    0
}

/// Registers this module's roles, each named `queue.<role>`.
pub fn register(roles: Roles) -> Roles {
    roles
        .role("queue.bytes-expect-corrupt", bytes_expect_corrupt)
        .role("queue.joinable-put-forever", joinable_put_forever)
        .role("queue.push-random", push_random)
        .role("queue.pop-check", pop_check)
        .role("queue.push-forever", push_forever)
        .role("queue.hold-producer", hold_producer)
        .role("queue.joinable-worker", joinable_worker)
        .role("queue.joinable-put", joinable_put)
        .role("queue.pipe-echo", pipe_echo)
        .role("queue.pipe-send", pipe_send)
        .role("queue.pipe-oc-send", pipe_oc_send)
        .role("queue.pipe-hold", pipe_hold)
        .role("queue.pipe-create-hold", pipe_create_hold)
}
