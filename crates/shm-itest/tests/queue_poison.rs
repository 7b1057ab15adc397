//! Multi-process tests of poisoned queues (issue 11): an index or stamp overwritten in the
//! segment while a consumer process waits in `pop` gives that process (and every other
//! caller) a specific `Corrupt` error at once, never garbage and never a silent wedge.
//!
//! The parent plays the adversary: it writes into the segment as any process mapping it could.
//! No test asserts a duration; a watchdog kills the children and aborts on a hang.
#![cfg(target_os = "linux")]

use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::SegmentName;
use shm_itest::{eventually, expect_line, join_ok, next_line, Watchdog};
use shm_process::Process;
use shm_queue::bytes::{ByteQueue, BytesPushTimeoutError, Flavor};
use shm_queue::{PushTimeoutError, SpscQueue, TryPushError};
use std::io::BufReader;
use std::process::{ChildStdout, Stdio};
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();
const BOUND: Duration = Duration::from_secs(30);

/// Starts the child in `role` on `name` and waits for its `ready` line; returns it with the
/// rest of its stdout.
fn start_ready(w: &Watchdog, role: &str, name: &SegmentName) -> (Process, BufReader<ChildStdout>) {
    let mut p = w.start(
        shm_itest::child(CHILD, role)
            .arg(name.as_str())
            .stdout(Stdio::piped()),
    );
    let out = expect_line(&mut p, "ready");
    (p, out)
}

/// Waits (bounded) until `done()`.
fn wait_until(what: &str, done: impl FnMut() -> bool) {
    assert!(eventually(BOUND, done), "{what}: not within {BOUND:?}");
}

/// Joins the child, which must succeed, and returns the number it printed last.
fn finish(mut p: Process, mut out: BufReader<ChildStdout>) -> u64 {
    let line = next_line(&mut out);
    join_ok(&mut p);
    line.trim().parse().expect("a count")
}

/// Regression: an SPSC queue whose `tail` was overwritten (`u64::MAX`; behind `head`; more
/// than the capacity ahead) used to pop garbage forever. The consumer process, blocked in
/// `pop`, gets `Corrupt` (after the items pushed before), and so does the producer.
#[test]
fn spsc_corrupt_tail_gives_corrupt_to_the_consumer_process() {
    let _w = Watchdog::new();
    for forged in [u64::MAX, 1, 2 + 9] {
        let w = Watchdog::new();
        let name = SegmentName::unique();
        let q = SpscQueue::<u64>::builder(&name)
            .capacity(8)
            .create()
            .unwrap();
        let mut tx = q.producer().unwrap();
        let (p, out) = start_ready(&w, "queue.spsc-expect-corrupt", &name);
        tx.push(10).unwrap();
        tx.push(11).unwrap();
        wait_until("the child pops both items", || q.is_empty());
        // The control block starts with `tail: u64` (offset 0, pinned by the layout).
        // SAFETY: the body is 128-aligned and at least 640 bytes; offset 0 is the atomic tail.
        let tail = unsafe { &*q.segment().unwrap().body().as_ptr().cast::<AtomicU64>() };
        tail.store(forged, Ordering::Release);
        assert_eq!(finish(p, out), 2, "tail {forged}: items before the damage");
        assert_eq!(
            tx.try_push(12),
            Err(TryPushError::Corrupt(12)),
            "tail {forged}"
        );
        assert_eq!(
            tx.push_timeout(12, BOUND),
            Err(PushTimeoutError::Corrupt(12)),
            "tail {forged}"
        );
    }
}

/// Regression: a slot stamp ahead of `head` used to wedge the byte queue (every pop
/// `Corrupt`, nothing consumed, a blocked pop never woken). The consumer process blocked in
/// `pop` now gets `Corrupt`, on every later call too, and so does the producer.
#[test]
fn byte_queue_stamp_ahead_of_head_poisons_for_every_process() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = ByteQueue::builder(&name)
        .flavor(Flavor::Mpmc)
        .capacity(4)
        .max_message(16)
        .create()
        .unwrap();
    let tx = q.producer().unwrap();
    let (p, out) = start_ready(&w, "queue.bytes-expect-corrupt", &name);
    tx.push(b"a".as_slice()).unwrap();
    tx.push(b"b".as_slice()).unwrap();
    wait_until("the child pops both messages", || q.is_empty());
    // Position 2 (head): a stamp two laps ahead (stamps are 2 * position, +1 when full).
    q.forge_stamp(2, 2 * (2 + 8) + 1);
    assert_eq!(finish(p, out), 2);
    assert!(matches!(
        tx.push_timeout(b"c".as_slice(), BOUND),
        Err(BytesPushTimeoutError::Corrupt(_))
    ));
}
