//! Multi-process tests of the byte-message queues: real children (the child binary
//! `shm-itest`, roles `queue.*`) push and pop across processes, and a producer is SIGKILLed.
//!
//! No test asserts a duration. A watchdog aborts the test binary (and with it the daemon
//! children) if a test hangs.
#![cfg(target_os = "linux")]

use shm_core::SegmentName;
use shm_itest::{child, join_ok_within, wait_ready, Watchdog};
use shm_process::ProcessBuilder;
use shm_queue::bytes::{ByteQueue, BytesTryPushError, Flavor, PopIntoTimeoutError};
use shm_queue::RoleError;
use shm_queue::{PopError, PopTimeoutError, TryPopError};
use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();
const OUTCOME_BOUND: Duration = Duration::from_secs(20);

/// The same messages as the child's `message`.
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

/// An MPMC byte queue named `name`, created by this process.
fn mpmc_queue(name: &SegmentName, capacity: u64, max: usize) -> ByteQueue {
    ByteQueue::builder(name)
        .flavor(Flavor::Mpmc)
        .capacity(capacity)
        .max_message(max)
        .create()
        .unwrap()
}

/// A child in `role` over the queue `name`, for the messages `message(seed, 0..count, max)`.
fn message_child(
    role: &str,
    name: &SegmentName,
    seed: u64,
    count: u64,
    max: usize,
) -> ProcessBuilder {
    child(CHILD, role).args([
        name.as_str().to_owned(),
        seed.to_string(),
        count.to_string(),
        max.to_string(),
    ])
}

#[test]
fn child_pushes_random_sizes_parent_checks_and_short_buffer() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let (max, count, seed) = (300usize, 500u64, 7u64);
    let q = mpmc_queue(&name, 8, max);
    let rx = q.consumer().unwrap();
    let mut p = message_child("queue.push-random", &name, seed, count, max)
        .start()
        .unwrap();
    let mut buf = vec![0u8; max];
    let mut sizes = HashSet::new();
    let mut checked_short = false;
    for i in 0..count {
        let want = message(seed, i, max);
        sizes.insert(want.len());
        if !checked_short && want.len() >= 2 {
            // A buffer one byte short: the size is reported, the message stays queued.
            let short = &mut buf[..want.len() - 1];
            let r = rx.pop_into_timeout(short, OUTCOME_BOUND);
            assert_eq!(r, Err(PopIntoTimeoutError::TooSmall { needed: want.len() }));
            checked_short = true;
        }
        let n = rx.pop_into_timeout(&mut buf, OUTCOME_BOUND).unwrap();
        assert_eq!(&buf[..n], &want[..], "message {i}");
    }
    assert!(checked_short);
    assert!(sizes.len() > 100, "sizes should vary: {}", sizes.len());
    join_ok_within(&mut p, OUTCOME_BOUND);
    // The child has gone: the queue is drained and its only producer left.
    assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
}

#[test]
fn parent_pushes_child_checks_including_oversize() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let (max, count, seed) = (200usize, 400u64, 11u64);
    let q = mpmc_queue(&name, 4, max);
    let tx = q.producer().unwrap();
    let mut p = message_child("queue.pop-check", &name, seed, count, max)
        .start()
        .unwrap();
    let big = vec![1u8; max + 1];
    match tx.try_push(big.clone()) {
        Err(BytesTryPushError::TooLarge { msg, max: m }) => assert_eq!((msg, m), (big, max)),
        other => panic!("oversize push: {other:?}"),
    }
    for i in 0..count {
        tx.push_timeout(message(seed, i, max), OUTCOME_BOUND)
            .unwrap();
    }
    join_ok_within(&mut p, OUTCOME_BOUND);
    assert!(q.is_empty());
}

#[test]
fn two_producer_processes_all_messages_arrive() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let (max, count) = (64usize, 300u64);
    let q = mpmc_queue(&name, 16, max);
    let rx = q.consumer().unwrap();
    let mut expected: Vec<Vec<u8>> = Vec::new();
    let mut kids = Vec::new();
    for seed in [100u64, 200] {
        expected.extend((0..count).map(|i| message(seed, i, max)));
        kids.push(
            message_child("queue.push-random", &name, seed, count, max)
                .start()
                .unwrap(),
        );
    }
    // Pop exactly what was sent: with producers that come and go, `Disconnected` may be seen
    // between the first child leaving and the second arriving (see the bytes module docs).
    let mut got = Vec::new();
    while got.len() < expected.len() {
        match rx.pop_timeout(OUTCOME_BOUND) {
            Ok(m) => got.push(m),
            Err(PopTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("pop after {} messages: {e}", got.len()),
        }
    }
    for k in &mut kids {
        join_ok_within(k, OUTCOME_BOUND);
    }
    got.sort();
    expected.sort();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the multiset of messages differs");
}

#[test]
fn close_delivers_remaining_then_closed() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let q = mpmc_queue(&name, 4, 32);
    let rx = q.consumer().unwrap();
    let mut p = child(CHILD, "queue.hold-producer")
        .arg(name.as_str())
        .stdout(Stdio::piped())
        .start()
        .unwrap();
    wait_ready(&mut p);
    q.close();
    assert!(q.is_closed());
    // The producer is alive, but the queue is closed: the message, then Closed.
    assert_eq!(rx.pop().unwrap(), b"from holder");
    assert_eq!(rx.pop(), Err(PopError::Closed));
    let tx = q.producer().unwrap();
    assert!(matches!(
        tx.try_push(b"late"),
        Err(BytesTryPushError::Closed(_))
    ));
    p.kill().unwrap();
    let _ = p.join_timeout(OUTCOME_BOUND).unwrap();
}

#[test]
fn sigkilled_producer_wakes_blocked_pop_with_disconnected() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let q = mpmc_queue(&name, 2, 32);
    let rx = q.consumer().unwrap();
    let mut p = child(CHILD, "queue.hold-producer")
        .arg(name.as_str())
        .stdout(Stdio::piped())
        .start()
        .unwrap();
    wait_ready(&mut p);
    assert_eq!(rx.pop().unwrap(), b"from holder");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        p.kill().unwrap();
        p.join_timeout(OUTCOME_BOUND)
            .unwrap()
            .expect("killed child reaped")
    });
    // Blocks (the producer lives, holding its role) until the kill, then reports the loss.
    assert_eq!(rx.pop(), Err(PopError::Disconnected));
    let st = killer.join().unwrap();
    assert!(!st.success());
}

#[test]
fn kind_and_missing_segment_are_errors() {
    let name = SegmentName::unique();
    assert!(ByteQueue::builder(&name).open().is_err());
    let _q = ByteQueue::builder(&name)
        .flavor(Flavor::Spsc)
        .create()
        .unwrap();
    assert!(ByteQueue::builder(&name)
        .flavor(Flavor::Mpmc)
        .open()
        .is_err());
    let o = ByteQueue::builder(&name)
        .flavor(Flavor::Spsc)
        .open()
        .unwrap();
    assert_eq!(o.capacity(), 64);
    assert_eq!(o.max_message(), 4096);
}

/// The producer is SIGKILLed at an arbitrary moment while it pushes as fast as it can (so
/// often in the middle of a push): the consumer gets an unbroken prefix of the sequence, every
/// message intact, and then `Disconnected`, never a hang or a torn message.
#[test]
fn producer_sigkilled_mid_stream_leaves_intact_prefix() {
    let _w = Watchdog::new();
    for (round, delay_us) in [(0u64, 0u64), (1, 37), (2, 211), (3, 1000)] {
        let name = SegmentName::unique();
        let (max, seed) = (96usize, 1000 + round);
        let q = mpmc_queue(&name, 4, max);
        let rx = q.consumer().unwrap();
        let mut p = child(CHILD, "queue.push-forever")
            .args([name.as_str().to_owned(), seed.to_string(), max.to_string()])
            .start()
            .unwrap();
        let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = received.clone();
        let killer = std::thread::spawn(move || {
            while seen.load(std::sync::atomic::Ordering::Relaxed) < 200 {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_micros(delay_us));
            p.kill().unwrap();
            p.join_timeout(OUTCOME_BOUND).unwrap().expect("reaped")
        });
        let mut i = 0u64;
        loop {
            match rx.pop_timeout(OUTCOME_BOUND) {
                Ok(m) => {
                    assert_eq!(m, message(seed, i, max), "round {round}: message {i}");
                    i += 1;
                    received.store(i, std::sync::atomic::Ordering::Relaxed);
                }
                Err(PopTimeoutError::Disconnected) => break,
                Err(e) => panic!("round {round}: pop after {i} messages: {e}"),
            }
        }
        assert!(i >= 200);
        assert!(!killer.join().unwrap().success());
    }
}

#[test]
fn dead_holders_role_is_taken_over() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let q = ByteQueue::builder(&name)
        .flavor(Flavor::Spsc)
        .capacity(4)
        .max_message(32)
        .create()
        .unwrap();
    let rx = q.consumer().unwrap();
    let mut p = child(CHILD, "queue.hold-producer")
        .args([name.as_str(), "spsc"])
        .stdout(Stdio::piped())
        .start()
        .unwrap();
    wait_ready(&mut p);
    // The only producer slot is held by a live process.
    match q.producer() {
        Err(RoleError::Busy { holder }) => assert_eq!(holder.pid(), p.pid()),
        other => panic!("expected Busy, got {other:?}"),
    }
    p.kill().unwrap();
    p.join_timeout(OUTCOME_BOUND).unwrap().expect("reaped");
    // Its holder is dead: the claim is taken over, and what it pushed is still there.
    let tx = q.producer().unwrap();
    tx.push(b"mine".as_slice()).unwrap();
    assert_eq!(rx.try_pop().unwrap(), b"from holder");
    assert_eq!(rx.try_pop().unwrap(), b"mine");
}

/// A consumer's first pop on an MPMC byte queue no producer has attached to yet waits
/// (issue 11: it used to be `Disconnected`): the parent is blocked in `pop` before the
/// producer process even starts; it gets every message, then `Disconnected` once the producer
/// has left.
#[test]
fn first_pop_waits_for_a_producer_process_that_has_not_attached_yet() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let (max, count, seed) = (64usize, 20u64, 5u64);
    let q = mpmc_queue(&name, 4, max);
    let rx = q.consumer().unwrap();
    let (pid_tx, pid_rx) = std::sync::mpsc::channel();
    // The thread that starts the child must outlive it (a daemon child dies with the thread
    // that started it), so it also reaps it.
    let late = {
        let name = name.clone();
        std::thread::spawn(move || {
            // Start the producer only once the parent is surely waiting.
            std::thread::sleep(Duration::from_millis(200));
            let mut p = message_child("queue.push-random", &name, seed, count, max)
                .start()
                .unwrap();
            let _ = pid_tx.send(p.pid());
            shm_itest::join_bounded(&mut p)
        })
    };
    assert_eq!(
        rx.pop(),
        Ok(message(seed, 0, max)),
        "the first pop must wait, not fail"
    );
    w.watch_pid(pid_rx.recv().unwrap());
    for i in 1..count {
        assert_eq!(rx.pop_timeout(OUTCOME_BOUND), Ok(message(seed, i, max)));
    }
    assert_eq!(
        rx.pop_timeout(OUTCOME_BOUND),
        Err(PopTimeoutError::Disconnected)
    );
    assert!(late.join().unwrap().success());
}
