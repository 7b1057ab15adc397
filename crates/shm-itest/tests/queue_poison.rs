//! Multi-process tests of poisoned queues (issue 11): an index or stamp overwritten in the
//! segment while a consumer process waits in `pop` gives that process (and every other
//! caller) a specific `Corrupt` error at once, never garbage and never a silent wedge.
//!
//! The parent plays the adversary: it writes into the segment as any process mapping it could.
//! No test asserts a duration; a watchdog kills the children and aborts on a hang.
#![cfg(target_os = "linux")]

use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::SegmentName;
use shm_itest::roles::queue::kill::layout;
use shm_itest::roles::queue::kill::support::{self, byte_queue};
use shm_itest::{eventually, join_ok, next_line, NameGuard, Watchdog};
use shm_process::Process;
use shm_queue::bytes::{ByteQueue, BytesPushTimeoutError, Flavor};
use shm_queue::joinable::{JoinError, JoinableQueue};
use shm_queue::pipe::{Pipe, SendError};
use shm_queue::{PopError, PushTimeoutError, SpscQueue, TryPopError, TryPushError};
use std::io::BufReader;
use std::process::ChildStdout;
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();
const BOUND: Duration = Duration::from_secs(30);

/// Starts the child in `role` on `name` and waits for its `ready` line; returns it with the
/// rest of its stdout.
fn start_ready(w: &Watchdog, role: &str, name: &SegmentName) -> (Process, BufReader<ChildStdout>) {
    support::start_ready(w, CHILD, role, &[name.as_str()])
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

/// A byte queue of `flavor` whose consumer process waits in `pop` after two messages, when
/// `forge` overwrites the segment: the consumer gets `Corrupt` after the two messages (and on
/// every later call), and so does the producer.
fn forged_byte_queue_poisons_every_process(flavor: Flavor, forge: impl FnOnce(&ByteQueue)) {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = byte_queue(&name, flavor, 4, 16);
    let tx = q.producer().unwrap();
    let (p, out) = start_ready(&w, "queue.bytes-expect-corrupt", &name);
    tx.push(b"a".as_slice()).unwrap();
    tx.push(b"b".as_slice()).unwrap();
    wait_until("the child pops both messages", || q.is_empty());
    forge(&q);
    assert_eq!(finish(p, out), 2);
    assert!(matches!(
        tx.push_timeout(b"c".as_slice(), BOUND),
        Err(BytesPushTimeoutError::Corrupt(_))
    ));
}

/// Regression: a slot stamp ahead of `head` used to wedge the byte queue (every pop
/// `Corrupt`, nothing consumed, a blocked pop never woken). The consumer process blocked in
/// `pop` now gets `Corrupt`, on every later call too, and so does the producer.
#[test]
fn byte_queue_stamp_ahead_of_head_poisons_for_every_process() {
    // Position 2 (head): a stamp two laps ahead (stamps are 2 * position, +1 when full).
    forged_byte_queue_poisons_every_process(Flavor::Mpmc, |q| q.forge_stamp(2, 2 * (2 + 8) + 1));
}

/// Regression (issue 11: "an SPSC queue whose `head` is corrupt", `head > tail`): the producer
/// process, blocked on the full queue, reads a `head` ahead of its `tail`: it gets `Corrupt`
/// (not "full forever", not a wrap into garbage), and so does the consumer.
#[test]
fn spsc_head_ahead_of_tail_gives_corrupt_to_the_blocked_producer_process() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = SpscQueue::<u64>::builder(&name)
        .capacity(4)
        .create()
        .unwrap();
    let mut rx = q.consumer().unwrap();
    let (p, out) = start_ready(&w, "queue.spsc-push-until-error", &name);
    assert_eq!(rx.pop_timeout(BOUND), Ok(0));
    // Items 1..=4 fill the ring; the producer blocks on item 5.
    wait_until("the producer fills the ring", || q.len() == 4);
    let seg = q.segment().unwrap();
    let tail = layout::word(seg, layout::TAIL).load(Ordering::Acquire);
    layout::word(seg, layout::HEAD).store(tail + 1, Ordering::Release);
    let mut out = out;
    assert_eq!(next_line(&mut out), "corrupt");
    let mut p = p;
    join_ok(&mut p);
    assert_eq!(rx.try_pop(), Err(TryPopError::Corrupt));
    assert_eq!(rx.pop(), Err(PopError::Corrupt));
    assert!(q.is_poisoned());
}

/// Regression (issue 11, for SPSC byte rings, which have no stamps now: the forgery is an
/// index): a `tail` overwritten with `u64::MAX` while the consumer process waits in `pop`
/// gives it `Corrupt` after the messages pushed before, on every later call too, and the
/// producer `Corrupt` as well.
#[test]
fn spsc_byte_queue_forged_tail_poisons_for_every_process() {
    forged_byte_queue_poisons_every_process(Flavor::Spsc, |q| q.forge_index(0, u64::MAX));
}

/// Regression (issue 11: "JoinableQueue wedges on a slot stamp ahead of `head`"): a worker
/// process waiting in `get` gets `Corrupt` (then on every later get, and its `join` too);
/// the parent's `join` reports `Corrupt` instead of waiting forever, and `put` fails.
#[test]
fn joinable_stamp_ahead_of_head_poisons_get_and_join() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let (cap, max) = (4u64, 16usize);
    let q = JoinableQueue::builder(&name)
        .capacity(cap)
        .max_message(max)
        .create()
        .unwrap();
    let tx = q.producer().unwrap();
    let (p, out) = start_ready(&w, "queue.joinable-expect-corrupt", &name);
    tx.push(b"a".as_slice()).unwrap();
    tx.push(b"b".as_slice()).unwrap();
    wait_until("the worker takes both and marks them done", || {
        q.join_timeout(std::time::Duration::ZERO).is_ok()
    });
    // Position 2 (head): a stamp two laps ahead (2 * position, + 1 when full).
    let slot = layout::JOINABLE_RING + layout::CTL_LEN + 2 * layout::mpmc_bytes_stride(max);
    layout::word(q.segment().unwrap(), slot).store(2 * (2 + 2 * cap) + 1, Ordering::Release);
    assert_eq!(finish(p, out), 2);
    assert_eq!(q.join(), Err(JoinError::Corrupt));
    assert!(matches!(
        tx.push(b"c".as_slice()),
        Err(shm_queue::bytes::BytesPushError::Corrupt(_))
    ));
}

/// Regression (issue 11: "Pipe wedges on a stamp ahead"; a pipe's rings are SPSC now, so the
/// forgery is an index): the receiving process, waiting in `recv_bytes`, gets `Corrupt` once
/// the ring's `tail` is overwritten (after the messages sent before), and the sender's next
/// send fails with `Corrupt` too.
#[test]
fn pipe_forged_tail_gives_corrupt_to_the_receiving_process() {
    let w = Watchdog::new();
    let name = NameGuard::unique();
    let (mut p, mut out) = start_ready(&w, "queue.pipe-recv-expect-corrupt", name.name());
    let tx = Pipe::builder(name.name()).open().unwrap();
    for m in [b"one".as_slice(), b"two"] {
        tx.send_bytes(m).unwrap();
        assert_eq!(next_line(&mut out), "got");
    }
    // The one-way pipe's only ring (to the creating end) starts at PIPE_RING.
    let tail = layout::word(tx.segment().unwrap(), layout::PIPE_RING + layout::TAIL);
    tail.store(u64::MAX, Ordering::Release);
    assert_eq!(
        next_line(&mut out),
        "2",
        "messages received before the damage"
    );
    // The receiver still holds its end: the sender is told about the poison.
    assert!(matches!(
        tx.send_bytes(b"three".as_slice()),
        Err(SendError::Corrupt(_))
    ));
    assert_eq!(shm_itest::kill_and_join(&mut p).signal(), Some(9));
}
