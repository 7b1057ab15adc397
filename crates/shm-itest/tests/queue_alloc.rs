//! Issue 11's audit items about a `Pipe`'s per-call costs, checked across processes with a
//! counting allocator (this test binary's global allocator counts the allocations of each
//! thread):
//!
//! - `try_recv_into` receives without allocating (`try_recv_bytes` allocated for every
//!   message, and there was no non-blocking receive into a buffer);
//! - `try_send_bytes` on a full pipe whose receiver lives does not ask `/proc` about it on
//!   every attempt (reading `/proc/PID/stat` allocates its path and contents, so an attempt
//!   that allocates nothing read nothing there).
//!
//! No test asserts a duration; a watchdog kills the children of a hung test.
#![cfg(target_os = "linux")]

use shm_core::{SegmentName, WaitStrategy};
use shm_itest::roles::queue::kill::check_message;
use shm_itest::{child, drain, expect_line, join_ok, kill_and_join, wait_ready, Watchdog};
use shm_queue::pipe::{Pipe, SendTimeoutError, TryRecvIntoError, TrySendError};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::Stdio;
use std::time::{Duration, Instant};

const CHILD: &str = shm_itest::child_binary!();
const BOUND: Duration = Duration::from_secs(20);

/// The system allocator, counting the allocations of each thread.
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the count is a
// thread-local `Cell` (const-initialised, no destructor: touching it never allocates).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees (`ptr` came from `System`).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by this thread while `f` ran, and its result.
fn allocations<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    let n = ALLOCS.with(Cell::get) - before;
    // The counter counts (else every "nothing allocated" below would be vacuous).
    let before = ALLOCS.with(Cell::get);
    drop(std::hint::black_box(Box::new(0u64)));
    assert_eq!(
        ALLOCS.with(Cell::get) - before,
        1,
        "the allocation counter is broken"
    );
    (n, r)
}

/// A sender process sends 50 self-checking messages: the parent receives them with
/// `try_recv_into` into one buffer (polling through `Empty`), then gets `Disconnected`, and
/// not one of those calls allocates.
#[test]
fn pipe_try_recv_into_from_another_process_allocates_nothing() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let rx = Pipe::builder(&name)
        .duplex(false)
        .capacity(4)
        .max_message(1024)
        .create()
        .unwrap();
    let mut p = w.start(
        child(CHILD, "queue.kill-pipe-send")
            .args([name.as_str(), "4", "50"])
            .stdout(Stdio::piped()),
    );
    drain(expect_line(&mut p, "ready"));
    let mut buf = vec![0u8; 1024];
    let (mut seq, mut calls, mut allocs) = (0u64, 0u64, 0u64);
    let until = Instant::now() + BOUND;
    loop {
        let (n, r) = allocations(|| rx.try_recv_into(&mut buf));
        allocs += n;
        calls += 1;
        match r {
            Ok(len) => {
                assert_eq!(check_message(&buf[..len]), Ok((4, seq)));
                seq += 1;
            }
            Err(TryRecvIntoError::Empty) => {
                assert!(Instant::now() < until, "{seq} messages within {BOUND:?}");
                std::thread::yield_now();
            }
            Err(TryRecvIntoError::Disconnected) => break,
            Err(e) => panic!("try_recv_into after {seq} messages: {e}"),
        }
    }
    assert_eq!(seq, 50);
    assert_eq!(
        allocs, 0,
        "{allocs} allocations in {calls} try_recv_into calls"
    );
    join_ok(&mut p);
}

/// The receiving process lives but does not receive: the parent fills the pipe, then 2000
/// `try_send_bytes` all fail with `Full`, none of them allocating (so none read `/proc`).
#[test]
fn pipe_try_send_on_a_full_pipe_never_reads_proc() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let tx = Pipe::builder(&name)
        .duplex(true)
        .capacity(2)
        .max_message(64)
        .create()
        .unwrap();
    let mut p = w.start(
        child(CHILD, "queue.pipe-hold")
            .arg(name.as_str())
            .stdout(Stdio::piped()),
    );
    wait_ready(&mut p);
    let msg = b"to a receiver that is alive and busy".as_slice();
    tx.send_bytes_timeout(msg, BOUND).unwrap();
    tx.send_bytes_timeout(msg, BOUND).unwrap();
    let (allocs, full) = allocations(|| {
        (0..2000)
            .filter(|_| matches!(tx.try_send_bytes(msg), Err(TrySendError::Full(_))))
            .count()
    });
    assert_eq!(full, 2000);
    assert_eq!(
        allocs, 0,
        "{allocs} allocations in 2000 try_send_bytes on a full pipe"
    );
    // A send that sleeps through slices does ask about the receiver (where a dead one is
    // noticed): that shows as allocations, so the zero above means no `/proc` read.
    let mut tx = tx;
    tx.set_wait_strategy(WaitStrategy::sleep().with_slice(Duration::from_millis(1)));
    let (allocs, r) = allocations(|| tx.send_bytes_timeout(msg, Duration::from_millis(30)));
    assert!(matches!(r, Err(SendTimeoutError::Timeout(_))));
    assert!(
        allocs > 0,
        "a sleeping send probed the receiver without allocating"
    );
    assert_eq!(kill_and_join(&mut p).signal(), Some(9));
}
