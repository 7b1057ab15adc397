//! Multi-process tests of `JoinableQueue`: worker processes take items and mark them done,
//! `join` returns once every item put is done, and over-calling `task_done` is an error.
//!
//! No test asserts a duration; a watchdog aborts the binary (and the daemon children) on a hang.
#![cfg(target_os = "linux")]

use shm_core::SegmentName;
use shm_itest::{child, join_ok_within, output_ok_within, Watchdog};
use shm_process::Process;
use shm_queue::joinable::{JoinTimeoutError, JoinableQueue, TaskDoneError};
use std::process::Stdio;
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();
const OUTCOME_BOUND: Duration = Duration::from_secs(20);

#[test]
fn workers_in_other_processes_finish_and_join_returns() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let q = JoinableQueue::builder(&name)
        .capacity(8)
        .max_message(16)
        .create()
        .unwrap();
    let tx = q.producer().unwrap();
    let mut workers: Vec<Process> = (0..2)
        .map(|_| {
            child(CHILD, "queue.joinable-worker")
                .arg(name.as_str())
                .stdout(Stdio::piped())
                .start()
                .unwrap()
        })
        .collect();
    let items = 300u64;
    for i in 0..items {
        tx.push_timeout(i.to_le_bytes(), OUTCOME_BOUND).unwrap();
    }
    // Every item put is marked done by the workers: join returns (bounded, so a bug fails
    // instead of hanging).
    assert_eq!(
        q.join_timeout(OUTCOME_BOUND),
        Ok(()),
        "join did not return; unfinished {}",
        q.unfinished()
    );
    assert_eq!(q.unfinished(), 0);
    assert!(q.is_empty());
    // Nothing is taken and not done: one more task_done is an error here too.
    assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
    drop(tx); // workers see Disconnected and exit, after checking their own over-call
    let total: u64 = workers
        .iter_mut()
        .map(|w| {
            output_ok_within(w, OUTCOME_BOUND)
                .trim()
                .parse::<u64>()
                .expect("count")
        })
        .sum();
    assert_eq!(total, items);
}

#[test]
fn join_waits_for_items_put_by_another_process() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let q = JoinableQueue::builder(&name)
        .capacity(4)
        .max_message(8)
        .create()
        .unwrap();
    let rx = q.consumer().unwrap();
    let mut p = child(CHILD, "queue.joinable-put")
        .args([name.as_str(), "10"])
        .start()
        .unwrap();
    let mut taken = 0;
    while taken < 10 {
        let m = rx.pop_timeout(OUTCOME_BOUND).unwrap();
        assert_eq!(m, (taken as u64).to_le_bytes());
        taken += 1;
        // Items put and not all done: join must not return yet.
        assert_eq!(
            q.join_timeout(Duration::ZERO),
            Err(JoinTimeoutError::Timeout)
        );
        q.task_done().unwrap();
    }
    join_ok_within(&mut p, OUTCOME_BOUND);
    assert_eq!(q.join_timeout(OUTCOME_BOUND), Ok(()));
    assert_eq!(q.task_done(), Err(TaskDoneError::TooManyCalls));
}

/// Regression (issue 11): `join()` never returned after a producer was SIGKILLed inside
/// `put` (the unfinished count was raised before the push). A producer process putting 1 KiB
/// items into a small queue is SIGKILLed at a pseudo-random moment, many times over; the
/// parent drains what arrived (a dead producer's half-claimed position is skipped), marks each
/// item done, and `join` must return every time, with nothing left unfinished.
#[test]
fn producer_sigkilled_inside_put_never_strands_join() {
    let w = Watchdog::new();
    let mut x: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
        | 1;
    let mut rand = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let trials = 16;
    for trial in 0..trials {
        let name = SegmentName::unique();
        let mut q = JoinableQueue::builder(&name)
            .capacity(2)
            .max_message(1024)
            .create()
            .unwrap();
        let strategy = shm_core::WaitStrategy::sleep().with_slice(Duration::from_millis(5));
        q.set_wait_strategy(strategy);
        let mut rx = q.consumer().unwrap();
        rx.set_wait_strategy(strategy);
        let mut p = w.start(
            child(CHILD, "queue.joinable-put-forever")
                .arg(name.as_str())
                .stdout(Stdio::piped()),
        );
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(p.take_stdout().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
        // Take a random number of items, then kill the producer at a random moment.
        let mut taken = 0u64;
        for _ in 0..rand(40) {
            let m = rx.pop_timeout(OUTCOME_BOUND).unwrap();
            assert_eq!(m.len(), 1024);
            assert_eq!(m[..8], taken.to_le_bytes(), "trial {trial}: order");
            taken += 1;
            q.task_done().unwrap();
        }
        let spin = rand(200_000);
        for _ in 0..spin {
            std::hint::spin_loop();
        }
        shm_itest::kill_and_join(&mut p);
        // Drain what the dead producer completed: every item whole, in order.
        loop {
            match rx.pop_timeout(OUTCOME_BOUND) {
                Ok(m) => {
                    assert_eq!(m.len(), 1024, "trial {trial}: a torn item");
                    assert_eq!(m[..8], taken.to_le_bytes(), "trial {trial}: order");
                    taken += 1;
                    q.task_done().unwrap();
                }
                Err(shm_queue::PopTimeoutError::Disconnected) => break,
                Err(e) => panic!("trial {trial}: {e}"),
            }
        }
        assert_eq!(
            q.join_timeout(OUTCOME_BOUND),
            Ok(()),
            "trial {trial}: join did not return after the producer was killed \
             ({taken} items taken, unfinished {})",
            q.unfinished()
        );
        assert_eq!(q.unfinished(), 0, "trial {trial}");
        q.join().unwrap();
    }
}
