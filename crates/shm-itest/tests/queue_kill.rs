//! SIGKILL at the worst moment, for the one-ring queues (issue 11): a child process is killed
//! while it holds a loan, a write chunk or an in-place read, or somewhere inside a loop of
//! `put`s; the survivors deliver every committed item exactly once, intact, and nobody hangs.
//!
//! Every item is self-checking (tag, sequence number and check word, compared whole: see
//! `shm_itest::roles::queue::kill`). The child tells the parent (a line on its stdout) that it
//! holds the slot, then the parent kills it. No test asserts a duration: bounds only catch
//! hangs, and a watchdog kills the children of a hung test.
#![cfg(target_os = "linux")]

use shm_core::{SegmentName, WaitStrategy};
use shm_itest::roles::queue::kill::support::{self, byte_queue, rng, short_slices};
use shm_itest::roles::queue::kill::{check_item, check_message, layout, message, Item};
use shm_itest::{drain, eventually, join_ok, kill_and_join, next_line, Watchdog};
use shm_process::Process;
use shm_queue::bytes::{
    ByteQueue, BytesConsumer, BytesProducer, BytesPushTimeoutError, BytesTryPushError, Flavor,
};
use shm_queue::joinable::JoinableQueue;
use shm_queue::pipe::{Pipe, RecvTimeoutError};
use shm_queue::{MpmcQueue, PopTimeoutError, SpscQueue, TryPopError};
use std::io::BufReader;
use std::process::ChildStdout;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();
const BOUND: Duration = Duration::from_secs(20);

/// Starts the child in `role` with `args` (watched by `w`) and waits for its `ready` line.
fn start_ready(w: &Watchdog, role: &str, args: &[&str]) -> (Process, BufReader<ChildStdout>) {
    support::start_ready(w, CHILD, role, args)
}

/// Pops (each wait bounded) until `Disconnected`; the `(tag, seq)` of every message, in
/// order. Panics on a torn message or another error.
fn pop_all(rx: &BytesConsumer) -> Vec<(u64, u64)> {
    let mut got = Vec::new();
    loop {
        match rx.pop_timeout(BOUND) {
            Ok(m) => got.push(check_message(&m).unwrap_or_else(|e| panic!("{e}"))),
            Err(PopTimeoutError::Disconnected) => return got,
            Err(e) => panic!("pop after {} messages: {e}", got.len()),
        }
    }
}

/// The sequence numbers of `tag` in `got`, in the order received.
fn seqs(got: &[(u64, u64)], tag: u64) -> Vec<u64> {
    got.iter().filter(|m| m.0 == tag).map(|m| m.1).collect()
}

/// An MPMC byte queue: producer A commits three messages, takes a loan for a fourth, writes
/// half of it and is SIGKILLed holding it. The parent's consumer, blocked at the loaned
/// position while producer B fills the ring behind it, skips the position once A is dead
/// (the queue's `skipped` count says so) and delivers every committed message exactly once:
/// A's three, B's twenty, each producer's in order, the half-written loan never.
#[test]
fn mpmc_producer_killed_holding_a_loan_is_skipped_by_a_blocked_consumer() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = byte_queue(&name, Flavor::Mpmc, 8, 1024);
    let mut rx = q.consumer().unwrap();
    rx.set_wait_strategy(short_slices());
    let n = name.as_str();
    let (mut a, mut a_out) =
        start_ready(&w, "queue.kill-bytes-produce", &[n, "1", "0", "3", "700"]);
    assert_eq!(next_line(&mut a_out), "loaned");
    let (mut b, b_out) = start_ready(&w, "queue.kill-bytes-produce", &[n, "2", "0", "20"]);
    drain(b_out);
    let got = std::thread::scope(|s| {
        let consumer = s.spawn(move || pop_all(&rx));
        // The consumer took A's three messages and waits at the loaned position; B filled the
        // ring behind it (8 positions from the loan on) and waits too.
        assert!(
            eventually(BOUND, || q.len() == 8),
            "the ring never filled behind the loan (len {})",
            q.len()
        );
        assert_eq!(kill_and_join(&mut a).signal(), Some(9));
        consumer.join().unwrap()
    });
    join_ok(&mut b);
    assert_eq!(seqs(&got, 1), [0, 1, 2], "A's committed messages");
    assert_eq!(seqs(&got, 2), (0..20).collect::<Vec<_>>(), "B's messages");
    assert_eq!(got.len(), 23, "nothing else: {got:?}");
    let skipped = layout::word(q.segment().unwrap(), layout::SKIPPED);
    assert_eq!(
        skipped.load(Ordering::SeqCst),
        1,
        "the loan's position is counted as skipped"
    );
    assert!(q.is_empty());
}

/// An SPSC byte queue: the producer child commits N messages (some pushed, some through loans),
/// takes a loan for the next, writes half of it and is SIGKILLed holding it. Nothing of the
/// loan is delivered; a second producer child takes over the dead one's role (once while the
/// dead one is still an unreaped zombie) and continues the sequence from where the ring's
/// `tail` says; the parent's consumer gets every committed
/// message once, in order, then `Disconnected`.
#[test]
fn spsc_bytes_producer_killed_mid_loan_successor_takes_over() {
    let w = Watchdog::new();
    for first in [0u64, 50, 53] {
        let name = SegmentName::unique();
        let q = byte_queue(&name, Flavor::Spsc, 4, 4096);
        let mut rx = q.consumer().unwrap();
        rx.set_wait_strategy(short_slices());
        let n = name.as_str();
        let count = first.to_string();
        let (mut a, mut a_out) = start_ready(
            &w,
            "queue.kill-bytes-produce",
            &[n, "7", "0", &count, "3000"],
        );
        for seq in 0..first {
            let m = rx.pop_timeout(BOUND).unwrap();
            assert_eq!(check_message(&m), Ok((7, seq)), "first {first}");
        }
        assert_eq!(next_line(&mut a_out), "loaned", "first {first}");
        // Once, the successor comes while the dead producer is a zombie (not reaped yet):
        // dead all the same.
        a.kill().unwrap();
        let zombie = first == 50;
        if zombie {
            assert!(eventually(BOUND, || in_state(a.pid(), 'Z')));
        } else {
            assert_eq!(kill_and_join(&mut a).signal(), Some(9));
        }
        assert!(
            matches!(
                rx.try_pop(),
                Err(TryPopError::Empty | TryPopError::Disconnected)
            ),
            "first {first}: the half-written loan was delivered"
        );
        // The successor claims the dead producer's role before it says `ready`.
        let (mut b, b_out) = start_ready(&w, "queue.kill-bytes-produce", &[n, "7", &count, "50"]);
        drain(b_out);
        for seq in first..first + 50 {
            let m = rx.pop_timeout(BOUND).unwrap();
            assert_eq!(check_message(&m), Ok((7, seq)), "first {first}");
        }
        join_ok(&mut b);
        if zombie {
            assert_eq!(kill_and_join(&mut a).signal(), Some(9));
        }
        assert_eq!(rx.pop_timeout(BOUND), Err(PopTimeoutError::Disconnected));
    }
}

/// The same for `SpscQueue<T>` and `write_chunk`: the producer child commits N items in chunks,
/// takes a chunk of 6 slots, fills half of it and is SIGKILLed; nothing of that chunk is
/// delivered, a successor child continues, and the consumer gets every committed item once,
/// in order, intact.
#[test]
fn spsc_typed_producer_killed_mid_write_chunk_successor_takes_over() {
    let w = Watchdog::new();
    for first in [0u64, 40] {
        let name = SegmentName::unique();
        let q = SpscQueue::<Item>::builder(&name)
            .capacity(16)
            .create()
            .unwrap();
        let mut rx = q.consumer().unwrap();
        rx.set_wait_strategy(short_slices());
        let n = name.as_str();
        let count = first.to_string();
        let (mut a, mut a_out) =
            start_ready(&w, "queue.kill-chunk-produce", &[n, "0", &count, "6"]);
        for seq in 0..first {
            let it = rx.pop_timeout(BOUND).unwrap();
            assert_eq!(check_item(&it), Ok((0, seq)), "first {first}");
        }
        assert_eq!(next_line(&mut a_out), "chunked", "first {first}");
        assert_eq!(kill_and_join(&mut a).signal(), Some(9));
        assert_eq!(
            rx.slots(),
            0,
            "first {first}: the half-filled chunk was published"
        );
        let (mut b, b_out) = start_ready(&w, "queue.kill-chunk-produce", &[n, &count, "40"]);
        drain(b_out);
        for seq in first..first + 40 {
            let it = rx.pop_timeout(BOUND).unwrap();
            assert_eq!(check_item(&it), Ok((0, seq)), "first {first}");
        }
        join_ok(&mut b);
        assert_eq!(rx.pop_timeout(BOUND), Err(PopTimeoutError::Disconnected));
    }
}

/// Message `seq` of the tests whose consumer child holds a slot.
fn msg(seq: u64) -> Vec<u8> {
    message(5, seq, 100 + seq as usize)
}

/// A byte queue of `flavor` (capacity 4) whose consumer child (`kill-read-hold`) reads
/// message 0 in place and holds it, while the parent's producer (short sleep slices) fills the
/// ring with messages 1..=3: the push of message 4 finds it full. Returns the queue, the
/// producer and the child.
fn full_with_slot_0_read_by_a_child(
    w: &Watchdog,
    name: &SegmentName,
    flavor: Flavor,
) -> (ByteQueue, BytesProducer, Process) {
    let q = byte_queue(name, flavor, 4, 256);
    let mut tx = q.producer().unwrap();
    tx.set_wait_strategy(short_slices());
    let (c, mut c_out) = start_ready(w, "queue.kill-read-hold", &[name.as_str()]);
    tx.push(msg(0)).unwrap();
    assert_eq!(next_line(&mut c_out), "holding 0");
    for seq in 1..4 {
        tx.push(msg(seq)).unwrap();
    }
    // The slot of position 4 is the one lent to the child: full.
    assert!(matches!(
        tx.try_push(msg(4)),
        Err(BytesTryPushError::Full(_))
    ));
    (q, tx, c)
}

/// An MPMC byte queue: a consumer child reads message 0 in place (`read`) and is SIGKILLed
/// holding the `Received`. The parent's producer, blocked on the full ring at the held slot,
/// frees it once the consumer is dead (message 0 is lost with its consumer) and carries on;
/// a new consumer gets messages 1..=4, intact and in order.
#[test]
fn mpmc_consumer_killed_holding_a_received_is_freed_by_a_blocked_producer() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let (q, tx, c) = full_with_slot_0_read_by_a_child(&w, &name, Flavor::Mpmc);
    std::thread::scope(|s| {
        let killer = s.spawn(move || {
            let mut c = c;
            // Give the push below time to block (not needed for correctness).
            std::thread::sleep(Duration::from_millis(50));
            kill_and_join(&mut c)
        });
        tx.push_timeout(msg(4), BOUND)
            .expect("the blocked push frees the dead consumer's slot");
        assert_eq!(killer.join().unwrap().signal(), Some(9));
    });
    let rx = q.consumer().unwrap();
    for seq in 1..=4 {
        assert_eq!(rx.try_pop().map(|m| check_message(&m)), Ok(Ok((5, seq))));
    }
    assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    // And the ring keeps going round.
    for seq in 5..13 {
        tx.push_timeout(msg(seq), BOUND).unwrap();
        assert_eq!(rx.try_pop().map(|m| check_message(&m)), Ok(Ok((5, seq))));
    }
}

/// An SPSC byte queue: a consumer child reads message 0 in place and is SIGKILLed holding the
/// `Received`. The SPSC protocol writes `head` only when the slot is released, so nothing was
/// consumed (a blocked push reports `Disconnected` while no consumer lives); a successor
/// consumer takes over the dead one's role and gets message 0 again,
/// then the rest, in order; the parent's producer, blocked on the full ring meanwhile, carries
/// on once the successor frees slots.
#[test]
fn spsc_consumer_killed_holding_a_received_successor_reads_it_again() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let (q, tx, mut c) = full_with_slot_0_read_by_a_child(&w, &name, Flavor::Spsc);
    assert_eq!(kill_and_join(&mut c).signal(), Some(9));
    // The dead consumer is gone but freed nothing: still full, and a push that waits finds
    // that nobody will ever free a slot.
    assert!(matches!(
        tx.try_push(msg(4)),
        Err(BytesTryPushError::Full(_))
    ));
    assert!(matches!(
        tx.push_timeout(msg(4), BOUND),
        Err(BytesPushTimeoutError::Disconnected(_))
    ));
    let mut rx = q.consumer().expect("take over the dead consumer's role");
    rx.set_wait_strategy(short_slices());
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            for seq in 4..20 {
                tx.push_timeout(msg(seq), BOUND).unwrap();
            }
        });
        for seq in 0..20 {
            let m = rx.read_timeout(BOUND).unwrap();
            assert_eq!(check_message(&m), Ok((5, seq)));
        }
        producer.join().unwrap();
    });
    // The producer handle went with its thread: drained and gone.
    assert_eq!(rx.try_pop(), Err(TryPopError::Disconnected));
}

/// Whether the process `pid` is in `state` (`T` stopped, `Z` zombie: in `/proc/PID/stat`).
fn in_state(pid: u32, state: char) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| Some(s[s.rfind(')')? + 1..].trim_start().starts_with(state)))
        .unwrap_or(false)
}

/// Whether the last position taken by a producer of the MPMC ring at offset `ring` of `seg`'s
/// body (`cap` slots of `stride` bytes, each starting with its stamp) is not published yet:
/// a producer is in the middle of a push.
fn mid_push(seg: &shm_core::Segment, ring: usize, cap: u64, stride: usize) -> bool {
    let word = |at: usize| layout::word(seg, ring + at).load(Ordering::SeqCst);
    let (head, tail) = (word(layout::HEAD), word(layout::TAIL));
    let pos = tail.wrapping_sub(1);
    // Stamp `2 * pos`: taken (the tail moved past it), not published (that is `2 * pos + 1`).
    tail != head && word(layout::CTL_LEN + (pos % cap) as usize * stride) == 2 * pos
}

/// Freezes `p` (`SIGSTOP`) after a random pause, up to `tries` times, until `caught()` holds
/// while it is frozen, and SIGKILLs it there; lets it run on (`SIGCONT`) otherwise. Returns
/// whether it was caught (if never, it is killed at the last freeze).
fn kill_frozen_when(
    p: &Process,
    rand: &mut impl FnMut(u64) -> u64,
    tries: usize,
    caught: impl Fn() -> bool,
) -> bool {
    for _ in 0..tries {
        std::thread::sleep(Duration::from_micros(rand(300)));
        p.signal(libc::SIGSTOP).unwrap();
        // Stopping takes microseconds: poll without sleeping (bounded).
        let until = std::time::Instant::now() + BOUND;
        while !in_state(p.pid(), 'T') {
            assert!(std::time::Instant::now() < until, "SIGSTOP did not stop it");
            std::thread::yield_now();
        }
        if caught() {
            p.kill().unwrap();
            return true;
        }
        p.signal(libc::SIGCONT).unwrap();
    }
    p.kill().unwrap();
    false
}

/// A `JoinableQueue` (short sleep slices) fed by a producer child putting self-checking
/// messages of up to 256 KiB in a loop, while this thread takes them (with `get_timeout`, or
/// polling `try_get` when `!blocking`) and marks each done; after a random number of items the
/// producer is frozen (`SIGSTOP`) at random moments until it holds a claimed, unpublished
/// position (its slot's stamp says so), and SIGKILLed there. Returns the queue once every item
/// before the dead put was taken (each checked: whole, in sequence) and done, the producer
/// reaped.
fn joinable_with_a_put_killed_midway(
    w: &Watchdog,
    rand: &mut (impl FnMut(u64) -> u64 + Send),
    ctx: &str,
    blocking: bool,
) -> JoinableQueue {
    // Catching the producer inside a put is a matter of luck (a few hundred freezes usually
    // do it; on a loaded machine, sometimes not 2000): a fresh queue and producer per try.
    for _ in 0..5 {
        if let Some(q) = try_joinable_with_a_put_killed_midway(w, rand, ctx, blocking) {
            return q;
        }
    }
    panic!("{ctx}: the producer was never frozen inside a put, in 5 tries of 2000 freezes");
}

/// One try of [`joinable_with_a_put_killed_midway`]: `None` if the producer was never caught
/// inside a put (it is killed and reaped all the same).
fn try_joinable_with_a_put_killed_midway(
    w: &Watchdog,
    rand: &mut (impl FnMut(u64) -> u64 + Send),
    ctx: &str,
    blocking: bool,
) -> Option<JoinableQueue> {
    let (cap, max) = (8u64, 256usize << 10);
    let name = SegmentName::unique();
    let mut q = JoinableQueue::builder(&name)
        .capacity(cap)
        .max_message(max)
        .create()
        .unwrap();
    q.set_wait_strategy(short_slices());
    let mut rx = q.consumer().unwrap();
    rx.set_wait_strategy(short_slices());
    let args = [name.as_str(), "joinable", "3", &max.to_string()];
    let (mut p, out) = start_ready(w, "queue.kill-push-loop", &args);
    drain(out);
    let after = rand(60);
    let taken = AtomicU64::new(0);
    let killed = AtomicBool::new(false);
    let seg = q.segment().unwrap();
    let stride = layout::mpmc_bytes_stride(max);
    let caught = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let _ = eventually(BOUND, || taken.load(Ordering::Relaxed) >= after);
            let caught = kill_frozen_when(&p, rand, 2000, || {
                mid_push(seg, layout::JOINABLE_RING, cap, stride)
            });
            killed.store(true, Ordering::SeqCst);
            caught
        });
        loop {
            let r = if blocking {
                rx.pop_timeout(BOUND)
            } else {
                // Polling: after the kill, `Empty` means drained up to the dead put.
                let dead = killed.load(Ordering::SeqCst);
                match rx.try_pop() {
                    Ok(m) => Ok(m),
                    Err(TryPopError::Empty) if dead => Err(PopTimeoutError::Disconnected),
                    Err(TryPopError::Empty) => {
                        std::thread::yield_now();
                        continue;
                    }
                    Err(e) => panic!("{ctx}: try_get: {e}"),
                }
            };
            match r {
                Ok(m) => {
                    let want = taken.load(Ordering::Relaxed);
                    assert_eq!(check_message(&m), Ok((3, want)), "{ctx}");
                    taken.store(want + 1, Ordering::Relaxed);
                    q.task_done().unwrap();
                }
                Err(PopTimeoutError::Disconnected) => break,
                Err(e) => panic!("{ctx}: get: {e}"),
            }
        }
        killer.join().unwrap()
    });
    assert_eq!(kill_and_join(&mut p).signal(), Some(9), "{ctx}");
    caught.then_some(q)
}

/// Regression (issue 11, extended): a `JoinableQueue` producer is SIGKILLed in the middle of a
/// `put` (see [`joinable_with_a_put_killed_midway`]), at random points of the stream, over
/// several trials, while the parent takes items with `get_timeout`: the stream ends with
/// `Disconnected`, the dead put's position is skipped, and `join` returns with nothing
/// unfinished.
#[test]
fn joinable_producer_killed_mid_put_join_returns() {
    let w = Watchdog::new();
    let (seed, mut rand) = rng();
    for trial in 0..10 {
        let ctx = format!("seed {seed}, trial {trial}");
        let q = joinable_with_a_put_killed_midway(&w, &mut rand, &ctx, true);
        assert_eq!(
            q.join_timeout(BOUND),
            Ok(()),
            "{ctx}: join did not return (unfinished {})",
            q.unfinished()
        );
        assert_eq!(q.unfinished(), 0, "{ctx}");
        assert!(q.is_empty(), "{ctx}");
        let skipped = layout::word(
            q.segment().unwrap(),
            layout::JOINABLE_RING + layout::SKIPPED,
        );
        assert_eq!(
            skipped.load(Ordering::SeqCst),
            1,
            "{ctx}: the dead put's position"
        );
    }
}

/// The same with a worker that polls (`try_get`) and a `join_timeout` shorter than the sleep
/// slice, called until it returns: it must, once every item before the dead put is done.
#[test]
fn joinable_short_join_timeouts_return_after_a_put_killed_midway() {
    let w = Watchdog::new();
    let (seed, mut rand) = rng();
    let ctx = format!("seed {seed}");
    let mut q = joinable_with_a_put_killed_midway(&w, &mut rand, &ctx, false);
    q.set_wait_strategy(WaitStrategy::default());
    assert!(
        eventually(BOUND, || q.join_timeout(Duration::from_millis(5)).is_ok()),
        "{ctx}: join_timeout never returned Ok (unfinished {})",
        q.unfinished()
    );
}

/// How a consumer or producer that never blocks for a whole sleep slice polls.
#[derive(Debug, Clone, Copy)]
enum Polling {
    /// `try_pop` / `try_push`, a millisecond apart.
    Try,
    /// `pop_timeout` / `push_timeout` of 5 ms (shorter than the default 50 ms sleep slice).
    ShortTimeout,
}

/// An MPMC byte queue whose position 0 was loaned by producer A, killed holding it; the
/// parent's live producer pushed message 1 behind it. Returns whether a consumer polling as
/// `how` (default wait strategy) gets message 1 within `BOUND`.
fn consumer_polling_gets_past_a_dead_loan(how: Polling) -> bool {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = byte_queue(&name, Flavor::Mpmc, 8, 1024);
    let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
    let (mut a, mut a_out) = start_ready(
        &w,
        "queue.kill-bytes-produce",
        &[name.as_str(), "1", "0", "0", "500"],
    );
    assert_eq!(next_line(&mut a_out), "loaned");
    tx.push(message(2, 1, 100)).unwrap();
    // A is alive: its position is not skipped.
    assert_eq!(rx.try_pop(), Err(TryPopError::Empty));
    assert_eq!(kill_and_join(&mut a).signal(), Some(9));
    eventually(BOUND, || {
        let got = match how {
            Polling::Try => {
                let r = rx.try_pop();
                if r.is_err() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                r.ok()
            }
            Polling::ShortTimeout => rx.pop_timeout(Duration::from_millis(5)).ok(),
        };
        got.is_some_and(|m| check_message(&m) == Ok((2, 1)))
    })
}

/// An MPMC byte queue of capacity 2 whose slot 0 is held (read in place) by consumer C,
/// killed holding it; every other slot is free. Returns whether a producer polling as `how`
/// (default wait strategy) gets a slot within `BOUND`.
fn producer_polling_gets_past_a_dead_read(how: Polling) -> bool {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = byte_queue(&name, Flavor::Mpmc, 2, 256);
    let (tx, rx) = (q.producer().unwrap(), q.consumer().unwrap());
    let (mut c, mut c_out) = start_ready(&w, "queue.kill-read-hold", &[name.as_str()]);
    tx.push(message(5, 0, 100)).unwrap();
    assert_eq!(next_line(&mut c_out), "holding 0");
    tx.push(message(5, 1, 100)).unwrap();
    assert_eq!(rx.try_pop().map(|m| check_message(&m)), Ok(Ok((5, 1))));
    // Position 2 is slot 0, still lent to C (alive): full.
    assert!(matches!(
        tx.try_push(message(5, 2, 100)),
        Err(BytesTryPushError::Full(_))
    ));
    assert_eq!(kill_and_join(&mut c).signal(), Some(9));
    eventually(BOUND, || match how {
        Polling::Try => {
            let ok = tx.try_push(message(5, 2, 100)).is_ok();
            if !ok {
                std::thread::sleep(Duration::from_millis(1));
            }
            ok
        }
        Polling::ShortTimeout => tx
            .push_timeout(message(5, 2, 100), Duration::from_millis(5))
            .is_ok(),
    })
}

/// A consumer that polls with `try_pop` gets past a dead producer's unpublished position
/// (here: a loan), as a blocked one does: the message a live producer published behind it
/// arrives.
#[test]
fn mpmc_try_pop_polling_gets_past_a_dead_producers_loan() {
    assert!(consumer_polling_gets_past_a_dead_loan(Polling::Try));
}

/// The same for a consumer that waits with timeouts shorter than its sleep slice.
#[test]
fn mpmc_short_pop_timeouts_get_past_a_dead_producers_loan() {
    assert!(consumer_polling_gets_past_a_dead_loan(
        Polling::ShortTimeout
    ));
}

/// A producer that polls with `try_push` gets the slot a dead consumer held (read in place).
#[test]
fn mpmc_try_push_polling_gets_past_a_dead_consumers_read() {
    assert!(producer_polling_gets_past_a_dead_read(Polling::Try));
}

/// The same for a producer that waits with timeouts shorter than its sleep slice.
#[test]
fn mpmc_short_push_timeouts_get_past_a_dead_consumers_read() {
    assert!(producer_polling_gets_past_a_dead_read(
        Polling::ShortTimeout
    ));
}

/// An MPMC byte queue in which `dead` producer children each took a loan (positions
/// `0..dead`) and were SIGKILLed holding it, after producer B (a child) pushed three messages
/// behind them and exited: every producer is gone, three messages are queued behind the dead
/// positions.
fn dead_loans_then_three_messages(w: &Watchdog, name: &SegmentName, dead: usize) -> ByteQueue {
    let q = byte_queue(name, Flavor::Mpmc, 8, 1024);
    let n = name.as_str();
    let mut holders = Vec::new();
    for tag in 0..dead {
        let tag = (10 + tag).to_string();
        let (a, mut a_out) =
            start_ready(w, "queue.kill-bytes-produce", &[n, &tag, "0", "0", "500"]);
        assert_eq!(next_line(&mut a_out), "loaned");
        holders.push(a);
    }
    let (mut b, b_out) = start_ready(w, "queue.kill-bytes-produce", &[n, "2", "0", "3"]);
    drain(b_out);
    join_ok(&mut b);
    for a in &mut holders {
        assert_eq!(kill_and_join(a).signal(), Some(9));
    }
    assert_eq!(q.len(), dead + 3);
    q
}

/// With every producer gone (one killed holding a loan, one exited), a blocked `pop` skips the
/// dead producer's position and delivers the three messages behind it before `Disconnected`.
#[test]
fn mpmc_pop_gets_past_a_dead_loan_before_disconnected() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = dead_loans_then_three_messages(&w, &name, 1);
    let mut rx = q.consumer().unwrap();
    rx.set_wait_strategy(short_slices());
    assert_eq!(pop_all(&rx), [(2, 0), (2, 1), (2, 2)]);
    let skipped = layout::word(q.segment().unwrap(), layout::SKIPPED);
    assert_eq!(skipped.load(Ordering::SeqCst), 1);
}

/// A blocking `pop` gets past two dead producers' positions in a row and delivers the three
/// messages behind them before `Disconnected`.
#[test]
fn mpmc_pop_gets_past_two_dead_loans_in_a_row_before_disconnected() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = dead_loans_then_three_messages(&w, &name, 2);
    let rx = q.consumer().unwrap();
    let got = pop_all(&rx);
    assert_eq!(
        got,
        [(2, 0), (2, 1), (2, 2)],
        "the messages behind the dead loans"
    );
}

/// A `pop_timeout` shorter than the sleep slice, with every producer gone and a dead
/// producer's position in front of three queued messages, must not report `Disconnected`
/// (which means drained).
#[test]
fn mpmc_short_pop_timeout_never_reports_disconnected_with_messages_queued() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = dead_loans_then_three_messages(&w, &name, 1);
    let rx = q.consumer().unwrap();
    let r = rx.pop_timeout(Duration::from_millis(5));
    assert!(
        !matches!(r, Err(PopTimeoutError::Disconnected)),
        "Disconnected with {} messages queued",
        q.len()
    );
}

/// `close` then `pop`: the messages queued behind a dead producer's position are drained
/// before `Closed`.
#[test]
fn mpmc_closed_queue_drains_messages_behind_a_dead_loan() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let q = dead_loans_then_three_messages(&w, &name, 1);
    let mut rx = q.consumer().unwrap();
    rx.set_wait_strategy(short_slices());
    q.close();
    let mut got = Vec::new();
    loop {
        match rx.pop_timeout(BOUND) {
            Ok(m) => got.push(check_message(&m).unwrap()),
            Err(PopTimeoutError::Closed) => break,
            Err(e) => panic!("pop after {} messages: {e}", got.len()),
        }
    }
    assert_eq!(
        got,
        [(2, 0), (2, 1), (2, 2)],
        "the messages behind the dead loan"
    );
}

/// A one-way pipe whose sending process is SIGKILLed at a random point of a stream of
/// self-checking messages (often in the middle of a send), over several trials: the receiver
/// gets an unbroken, intact prefix of the stream and then end of stream; a second sender
/// process takes over the dead one's end and everything it sends arrives, in order.
#[test]
fn pipe_sender_killed_at_random_points_successor_takes_over_the_end() {
    let w = Watchdog::new();
    let (seed, mut rand) = rng();
    for trial in 0..6 {
        let ctx = format!("seed {seed}, trial {trial}");
        let name = SegmentName::unique();
        let mut rx = Pipe::builder(&name)
            .duplex(false)
            .capacity(4)
            .max_message(4096)
            .create()
            .unwrap();
        rx.set_wait_strategy(short_slices());
        let (mut a, a_out) = start_ready(&w, "queue.kill-pipe-send", &[name.as_str(), "1"]);
        drain(a_out);
        let (after, delay_us) = (rand(100), rand(1000));
        let got = AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _ = eventually(BOUND, || got.load(Ordering::Relaxed) >= after);
                std::thread::sleep(Duration::from_micros(delay_us));
                a.kill().unwrap();
            });
            loop {
                match rx.recv_bytes_timeout(BOUND) {
                    Ok(m) => {
                        let want = got.load(Ordering::Relaxed);
                        assert_eq!(check_message(&m), Ok((1, want)), "{ctx}");
                        got.store(want + 1, Ordering::Relaxed);
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(e) => panic!("{ctx}: recv: {e}"),
                }
            }
        });
        assert_eq!(kill_and_join(&mut a).signal(), Some(9), "{ctx}");
        assert!(
            got.load(Ordering::Relaxed) >= after,
            "{ctx}: end of stream before the kill"
        );
        let (mut b, b_out) = start_ready(&w, "queue.kill-pipe-send", &[name.as_str(), "2", "30"]);
        drain(b_out);
        for seq in 0..30 {
            let m = rx.recv_bytes_timeout(BOUND).unwrap();
            assert_eq!(check_message(&m), Ok((2, seq)), "{ctx}");
        }
        join_ok(&mut b);
        assert_eq!(
            rx.recv_bytes_timeout(BOUND),
            Err(RecvTimeoutError::Disconnected)
        );
    }
}

/// Every producer role of an MPMC byte queue (`MAX_ROLES`) is held by a child that took a loan
/// and was SIGKILLed holding it: a new producer takes over a dead holder's role (while they
/// lived, the roles were all busy), and a blocked consumer skips all the dead positions and
/// delivers what the new producer pushes behind them; `skipped` counts every one.
#[test]
fn all_producer_roles_held_by_dead_loan_holders() {
    let w = Watchdog::new();
    let roles = shm_queue::ring::MAX_ROLES;
    let name = SegmentName::unique();
    let q = byte_queue(&name, Flavor::Mpmc, 2 * roles as u64, 256);
    let mut rx = q.consumer().unwrap();
    rx.set_wait_strategy(short_slices());
    let mut holders: Vec<Process> = (0..roles)
        .map(|i| {
            let tag = (100 + i).to_string();
            let (p, mut out) = start_ready(
                &w,
                "queue.kill-bytes-produce",
                &[name.as_str(), &tag, "0", "0", "200"],
            );
            assert_eq!(next_line(&mut out), "loaned");
            p
        })
        .collect();
    assert!(
        matches!(q.producer(), Err(shm_queue::RoleError::Busy { .. })),
        "every producer role is held by a live process"
    );
    for p in &mut holders {
        assert_eq!(kill_and_join(p).signal(), Some(9));
    }
    let tx = q.producer().expect("take over a dead holder's role");
    for seq in 0..5 {
        tx.push(message(3, seq, 64)).unwrap();
    }
    let got: Vec<_> = (0..5)
        .map(|_| check_message(&rx.pop_timeout(BOUND).unwrap()).unwrap())
        .collect();
    assert_eq!(got, (0..5).map(|seq| (3, seq)).collect::<Vec<_>>());
    let skipped = layout::word(q.segment().unwrap(), layout::SKIPPED);
    assert_eq!(skipped.load(Ordering::SeqCst), roles as u64);
    drop(tx);
    assert_eq!(rx.pop_timeout(BOUND), Err(PopTimeoutError::Disconnected));
}

/// A typed MPMC producer pushing self-checking items in a loop is frozen (`SIGSTOP`) at random
/// moments until it holds a claimed, unpublished position (its slot's stamp says so), and
/// SIGKILLed there, over several trials (a push is a 64-byte write, so a trial that never
/// catches one in 1000 freezes kills at its last: the deterministic case is
/// `queue_mpmc.rs`'s claim-and-abandon test): the consumer gets every item before the kill
/// once, in order, intact, skips the dead position (`skipped` is 1 when one was caught, at
/// most 1 otherwise), and ends with `Disconnected`.
#[test]
fn typed_mpmc_producer_killed_mid_push_is_skipped() {
    let w = Watchdog::new();
    let (seed, mut rand) = rng();
    let cap = 8u64;
    // An MPMC slot of `Item`: its stamp, then the element (8-aligned).
    let stride = 8 + std::mem::size_of::<Item>();
    for trial in 0..4 {
        let ctx = format!("seed {seed}, trial {trial}");
        let name = SegmentName::unique();
        let q = MpmcQueue::<Item>::builder(&name)
            .capacity(cap as usize)
            .create()
            .unwrap();
        let mut rx = q.consumer().unwrap();
        rx.set_wait_strategy(short_slices());
        let (mut p, out) = start_ready(
            &w,
            "queue.kill-push-loop",
            &[name.as_str(), "typed-mpmc", "8"],
        );
        drain(out);
        let seg = q.segment().unwrap();
        let caught = std::thread::scope(|s| {
            let killer =
                s.spawn(|| kill_frozen_when(&p, &mut rand, 1000, || mid_push(seg, 0, cap, stride)));
            let mut want = 0;
            loop {
                match rx.pop_timeout(BOUND) {
                    Ok(it) => {
                        assert_eq!(check_item(&it), Ok((8, want)), "{ctx}");
                        want += 1;
                    }
                    Err(PopTimeoutError::Disconnected) => break,
                    Err(e) => panic!("{ctx}: pop: {e}"),
                }
            }
            killer.join().unwrap()
        });
        assert_eq!(kill_and_join(&mut p).signal(), Some(9), "{ctx}");
        if caught {
            assert_eq!(q.skipped(), 1, "{ctx}: the dead push's position");
        } else {
            assert!(q.skipped() <= 1, "{ctx}: skipped {}", q.skipped());
        }
    }
}
