//! Multi-process tests of the SPSC ring with real children (`shm-itest`, roles `queue.*`).
//!
//! No test asserts a duration; a watchdog kills the children of a hung test. The transfer
//! tests move 10M items (debug builds included: about a second each here).
#![cfg(target_os = "linux")]

use shm_core::sync::atomic::Ordering;
use shm_core::SegmentName;
use shm_itest::{start, SharedCounter, Watchdog};
use shm_queue::{PopError, SpscQueue};
use std::time::{Duration, Instant};

const CHILD: &str = shm_itest::child_binary!();
const ITEMS: u64 = 10_000_000;

fn run_transfer(mode: &str) {
    let name = SegmentName::unique();
    let q = SpscQueue::<u64>::builder(&name)
        .capacity(4096)
        .create()
        .unwrap();
    let mut rx = q.consumer().unwrap();
    let mut child = start(
        CHILD,
        "queue.spsc-produce",
        &[name.as_str(), &ITEMS.to_string(), mode],
    );
    let _dog = Watchdog::watching([child.pid()]);
    let mut expect = 0u64;
    let mut buf = vec![0u64; 512];
    loop {
        let n = if mode == "slice" {
            rx.pop_slice(&mut buf)
        } else {
            0
        };
        if n > 0 {
            for &v in &buf[..n] {
                assert_eq!(v, expect, "out of order or lost");
                expect += 1;
            }
            continue;
        }
        match rx.pop() {
            Ok(v) => {
                assert_eq!(v, expect, "out of order or lost");
                expect += 1;
            }
            Err(PopError::Disconnected) => break,
            Err(e) => panic!("pop: {e}"),
        }
    }
    assert_eq!(expect, ITEMS, "items lost");
    let status = child.join().unwrap();
    assert!(status.success(), "child: {status}");
}

#[test]
fn child_to_parent_in_order_one_by_one() {
    run_transfer("one");
}

#[test]
fn child_to_parent_in_order_slices() {
    run_transfer("slice");
}

/// The producer is SIGKILLed mid-stream: the consumer gets every item whose push returned
/// (the child bumps a shared counter after each), in order, then Disconnected; it never hangs.
#[test]
fn killed_producer_every_returned_push_delivered_then_disconnected() {
    let name = SegmentName::unique();
    let cname = SegmentName::unique();
    let cseg = SharedCounter::create(&cname);
    let q = SpscQueue::<u64>::builder(&name)
        .capacity(64)
        .create()
        .unwrap();
    let mut rx = q.consumer().unwrap();
    let mut child = start(
        CHILD,
        "queue.spsc-forever",
        &[name.as_str(), cname.as_str()],
    );
    let _dog = Watchdog::watching([child.pid()]);
    let mut got = Vec::new();
    // Consume a while, then kill while it is pushing.
    let bound = Instant::now() + Duration::from_secs(60);
    while cseg.get().load(Ordering::SeqCst) < 20_000 {
        assert!(Instant::now() < bound, "child made no progress");
        if let Ok(v) = rx.pop_timeout(Duration::from_millis(100)) {
            got.push(v);
        }
    }
    child.kill().unwrap();
    let status = child.join().unwrap();
    assert_eq!(status.signal(), Some(9));
    let returned = cseg.get().load(Ordering::SeqCst);
    loop {
        match rx.pop() {
            Ok(v) => got.push(v),
            Err(PopError::Disconnected) => break,
            Err(e) => panic!("pop: {e}"),
        }
    }
    assert!(got.len() as u64 >= returned, "{} < {returned}", got.len());
    // At most the one item pushed after the last counter bump.
    assert!(got.len() as u64 <= returned + 1);
    for (i, &v) in got.iter().enumerate() {
        assert_eq!(v, i as u64);
    }
    // The dead producer's role is taken over.
    let _p = q.producer().expect("take over the dead producer's role");
}

/// A consumer's first pop on a queue no producer has attached to yet waits (issue 11: it used
/// to be `Disconnected`, so programs held a dummy producer): the parent is blocked in `pop`
/// before the producer process even starts; it gets every item, then `Disconnected` once the
/// producer has left.
#[test]
fn first_pop_waits_for_a_producer_that_has_not_attached_yet() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = SpscQueue::<u64>::builder(&name)
        .capacity(8)
        .create()
        .unwrap();
    let mut rx = q.consumer().unwrap();
    let (pid_tx, pid_rx) = std::sync::mpsc::channel();
    // The thread that starts the child must outlive it (a daemon child dies with the thread
    // that started it), so it also reaps it.
    let late = {
        let name = name.clone();
        std::thread::spawn(move || {
            // Start the producer only once the parent is surely waiting.
            std::thread::sleep(Duration::from_millis(200));
            let mut child = start(CHILD, "queue.spsc-produce", &[name.as_str(), "100", "one"]);
            let _ = pid_tx.send(child.pid());
            shm_itest::join_bounded(&mut child)
        })
    };
    assert_eq!(rx.pop(), Ok(0), "the first pop must wait, not fail");
    w.watch_pid(pid_rx.recv().unwrap());
    for i in 1..100 {
        assert_eq!(rx.pop(), Ok(i));
    }
    assert_eq!(rx.pop(), Err(PopError::Disconnected));
    assert!(late.join().unwrap().success());
}
