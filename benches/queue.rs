//! Queue benches: one-way throughput and round trip of `u64`s through shm-queue's SPSC and
//! MPMC rings, cross-thread and cross-process, beside `rtrb` and crossbeam's `ArrayQueue`
//! between two threads, and two processes ping-ponging one atomic (the floor of any
//! cross-process round trip). Every figure in a group reads as a ratio from one run.
//!
//! Budget (ARCHITECTURE.md): SPSC round trip between two processes within 1.2x of the atomic
//! ping-pong; SPSC and MPMC throughput between two processes at least that of `rtrb` and
//! `ArrayQueue` between two threads.
//!
//! Cross-process peers are this bench binary re-run in a role (checked at the top of `main`,
//! before criterion starts). Run: `cargo bench --bench queue` (measurements),
//! `cargo test --bench queue` (each once, quick).

use criterion::{black_box, Criterion, Throughput};
use crossbeam_queue::ArrayQueue;
use shm_core::sync::atomic::{AtomicU64, Ordering};
use shm_core::{ObjectKind, Segment, SegmentName, WaitStrategy};
use shm_process::{Process, Roles};
use shm_queue::{mpmc, spsc, MpmcQueue, PopError, SpscQueue};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

const CAP: usize = 4096;

fn atomic_of(seg: &Segment) -> &AtomicU64 {
    // SAFETY: the body is at least 8 bytes, 128-byte aligned, used only as one atomic u64.
    unsafe { &*seg.body().as_ptr().cast::<AtomicU64>() }
}

fn name_arg(args: &[String], i: usize) -> SegmentName {
    SegmentName::new(&args[i]).expect("segment name argument")
}

// ---- child roles -------------------------------------------------------------------------

/// Pops from the SPSC queue until Disconnected.
fn spsc_sink(args: &[String]) -> i32 {
    let q = SpscQueue::<u64>::builder(&name_arg(args, 0))
        .open()
        .expect("open");
    let mut rx = q.consumer().expect("consumer");
    rx.set_wait_strategy(WaitStrategy::busy_poll());
    let mut buf = [0u64; 256];
    loop {
        if rx.pop_slice(&mut buf) > 0 {
            continue;
        }
        match rx.pop() {
            Ok(v) => {
                black_box(v);
            }
            Err(_) => return 0,
        }
    }
}

/// Pops from the MPMC queue until Disconnected.
fn mpmc_sink(args: &[String]) -> i32 {
    let q = MpmcQueue::<u64>::builder(&name_arg(args, 0))
        .open()
        .expect("open");
    let mut rx = q.consumer().expect("consumer");
    rx.set_wait_strategy(WaitStrategy::busy_poll());
    while let Ok(v) = rx.pop() {
        black_box(v);
    }
    0
}

/// Echoes every item of queue 0 into queue 1 until Disconnected.
fn spsc_echo(args: &[String]) -> i32 {
    let ping = SpscQueue::<u64>::builder(&name_arg(args, 0))
        .open()
        .expect("open");
    let pong = SpscQueue::<u64>::builder(&name_arg(args, 1))
        .open()
        .expect("open");
    let mut rx = ping.consumer().expect("consumer");
    let mut tx = pong.producer().expect("producer");
    rx.set_wait_strategy(WaitStrategy::busy_poll());
    while let Ok(v) = rx.pop() {
        if tx.push(v).is_err() {
            return 1;
        }
    }
    0
}

/// Answers every odd value of the atomic with the next even one; stops at `u64::MAX`.
fn atomic_pong(args: &[String]) -> i32 {
    let seg = Segment::builder(&name_arg(args, 0), ObjectKind::RawValue)
        .open()
        .expect("open");
    let a = atomic_of(&seg);
    loop {
        let v = a.load(Ordering::Acquire);
        if v == u64::MAX {
            return 0;
        }
        if v % 2 == 1 {
            a.store(v + 1, Ordering::Release);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Echoes 8-byte messages over a Unix stream socket until it reads `u64::MAX`.
fn unix_echo(args: &[String]) -> i32 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(&args[0]) else {
        return 1;
    };
    let mut buf = [0u8; 8];
    loop {
        if s.read_exact(&mut buf).is_err() {
            return 1;
        }
        if u64::from_le_bytes(buf) == u64::MAX {
            return 0;
        }
        if s.write_all(&buf).is_err() {
            return 1;
        }
    }
}

fn start(role: &str, args: &[&str]) -> Process {
    Process::builder(role)
        .args(args.iter().copied())
        .daemon(true)
        .start()
        .expect("start bench child")
}

// ---- one-way throughput ------------------------------------------------------------------

/// One-way throughput between this thread and a consumer thread that lives for the whole
/// bench: a batch of `iters` pushes counts as done when the consumer has popped them all.
fn one_way_threads<P, C: Send + 'static>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    (mut p, mut c): (P, C),
    push: impl Fn(&mut P, u64) -> bool,
    pop: fn(&mut C) -> Option<u64>,
) {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (done2, stop2) = (Arc::clone(&done), Arc::clone(&stop));
    let t = thread::spawn(move || {
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            match pop(&mut c) {
                Some(v) => {
                    black_box(v);
                    n += 1;
                    done2.store(n, Ordering::Release);
                }
                None => std::hint::spin_loop(),
            }
        }
    });
    let mut target = 0u64;
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                while !push(&mut p, i) {
                    std::hint::spin_loop();
                }
            }
            target += iters;
            while done.load(Ordering::Acquire) < target {
                std::hint::spin_loop();
            }
            start.elapsed()
        })
    });
    stop.store(true, Ordering::Relaxed);
    t.join().expect("consumer thread");
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_one_way_u64");
    g.throughput(Throughput::Elements(1));

    one_way_threads(
        &mut g,
        "shm_queue::spsc/threads",
        spsc::channel::<u64>(CAP),
        |tx, i| tx.try_push(i).is_ok(),
        |rx| rx.try_pop().ok(),
    );
    one_way_threads(
        &mut g,
        "shm_queue::spsc(busy_poll_only)/threads",
        spsc::busy_poll_channel::<u64>(CAP),
        |tx, i| tx.try_push(i).is_ok(),
        |rx| rx.try_pop().ok(),
    );
    one_way_threads(
        &mut g,
        "shm_queue::mpmc/threads",
        mpmc::channel::<u64>(CAP),
        |tx, i| tx.try_push(i).is_ok(),
        |rx| rx.try_pop().ok(),
    );
    one_way_threads(
        &mut g,
        "rtrb/threads",
        rtrb::RingBuffer::<u64>::new(CAP),
        |tx, i| tx.push(i).is_ok(),
        |rx| rx.pop().ok(),
    );
    let q = Arc::new(ArrayQueue::<u64>::new(CAP));
    one_way_threads(
        &mut g,
        "crossbeam::ArrayQueue/threads",
        (Arc::clone(&q), q),
        |q, i| q.push(i).is_ok(),
        |q| q.pop(),
    );

    // Cross-process: the child pops until we drop our producer; a batch counts as done when
    // the queue is empty again.
    for busy in [false, true] {
        let name = SegmentName::unique();
        let mut b = SpscQueue::<u64>::builder(&name).capacity(CAP);
        if busy {
            b = b.busy_poll_only();
        }
        let q = b.create().expect("create");
        let mut tx = q.producer().expect("producer");
        let mut child = start("spsc-sink", &[name.as_str()]);
        let id = if busy {
            "shm_queue::spsc(busy_poll_only)/processes"
        } else {
            "shm_queue::spsc/processes"
        };
        g.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    while tx.try_push(i).is_err() {
                        std::hint::spin_loop();
                    }
                }
                while !q.is_empty() {
                    std::hint::spin_loop();
                }
                start.elapsed()
            })
        });
        drop(tx);
        let _ = child.join();
    }

    let name = SegmentName::unique();
    let q = MpmcQueue::<u64>::builder(&name)
        .capacity(CAP)
        .create()
        .expect("create");
    let mut tx = q.producer().expect("producer");
    let mut child = start("mpmc-sink", &[name.as_str()]);
    g.bench_function("shm_queue::mpmc/processes", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                while tx.try_push(i).is_err() {
                    std::hint::spin_loop();
                }
            }
            while !q.is_empty() {
                std::hint::spin_loop();
            }
            start.elapsed()
        })
    });
    drop(tx);
    let _ = child.join();
    g.finish();
}

// ---- round trip --------------------------------------------------------------------------

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_round_trip_u64");

    // Cross-thread: an echo thread per peer, stopped by a sentinel.
    {
        let (mut ping_tx, mut ping_rx) = spsc::channel::<u64>(CAP);
        let (mut pong_tx, mut pong_rx) = spsc::channel::<u64>(CAP);
        let echo = thread::spawn(move || {
            ping_rx.set_wait_strategy(WaitStrategy::busy_poll());
            while let Ok(v) = ping_rx.pop() {
                if v == u64::MAX || pong_tx.push(v).is_err() {
                    break;
                }
            }
        });
        pong_rx.set_wait_strategy(WaitStrategy::busy_poll());
        g.bench_function("shm_queue::spsc/threads", |b| {
            b.iter(|| {
                ping_tx.push(1).expect("push");
                black_box(pong_rx.pop().expect("pop"))
            })
        });
        let _ = ping_tx.push(u64::MAX);
        let _ = echo.join();
    }
    {
        let (mut ping_tx, mut ping_rx) = rtrb::RingBuffer::<u64>::new(CAP);
        let (mut pong_tx, mut pong_rx) = rtrb::RingBuffer::<u64>::new(CAP);
        let echo = thread::spawn(move || loop {
            if let Ok(v) = ping_rx.pop() {
                if v == u64::MAX {
                    break;
                }
                while pong_tx.push(v).is_err() {}
            }
        });
        g.bench_function("rtrb/threads", |b| {
            b.iter(|| {
                while ping_tx.push(1).is_err() {}
                loop {
                    if let Ok(v) = pong_rx.pop() {
                        break black_box(v);
                    }
                }
            })
        });
        while ping_tx.push(u64::MAX).is_err() {}
        let _ = echo.join();
    }
    {
        let ping = Arc::new(ArrayQueue::<u64>::new(CAP));
        let pong = Arc::new(ArrayQueue::<u64>::new(CAP));
        let (ping2, pong2) = (Arc::clone(&ping), Arc::clone(&pong));
        let echo = thread::spawn(move || loop {
            if let Some(v) = ping2.pop() {
                if v == u64::MAX {
                    break;
                }
                while pong2.push(v).is_err() {}
            }
        });
        g.bench_function("crossbeam::ArrayQueue/threads", |b| {
            b.iter(|| {
                while ping.push(1).is_err() {}
                loop {
                    if let Some(v) = pong.pop() {
                        break black_box(v);
                    }
                }
            })
        });
        while ping.push(u64::MAX).is_err() {}
        let _ = echo.join();
    }
    // Cross-process: SPSC echo child.
    for busy in [false, true] {
        let (n1, n2) = (SegmentName::unique(), SegmentName::unique());
        let make = |n: &SegmentName| {
            let b = SpscQueue::<u64>::builder(n).capacity(CAP);
            let b = if busy { b.busy_poll_only() } else { b };
            b.create().expect("create")
        };
        let (ping, pong) = (make(&n1), make(&n2));
        let id = if busy {
            "shm_queue::spsc(busy_poll_only)/processes"
        } else {
            "shm_queue::spsc/processes"
        };
        let mut tx = ping.producer().expect("producer");
        let mut rx = pong.consumer().expect("consumer");
        rx.set_wait_strategy(WaitStrategy::busy_poll());
        let mut child = start("spsc-echo", &[n1.as_str(), n2.as_str()]);
        g.bench_function(id, |b| {
            b.iter(|| {
                tx.push(1).expect("push");
                match rx.pop() {
                    Ok(v) => black_box(v),
                    Err(PopError::Disconnected) => panic!("echo child died"),
                    Err(e) => panic!("pop: {e}"),
                }
            })
        });
        drop(tx);
        let _ = child.join();
    }
    // Peer: a blocking Unix stream socket between two processes (both sides sleep in the
    // kernel between messages; the usual IPC baseline).
    {
        use std::io::{Read, Write};
        let path = std::env::temp_dir().join(format!("shm-ipc-bench-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let path_str = path.to_string_lossy().into_owned();
        let mut child = start("unix-echo", &[path_str.as_str()]);
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 8];
        g.bench_function("unix_socket/processes", |b| {
            b.iter(|| {
                s.write_all(&1u64.to_le_bytes()).expect("write");
                s.read_exact(&mut buf).expect("read");
                black_box(buf)
            })
        });
        let _ = s.write_all(&u64::MAX.to_le_bytes());
        let _ = child.join();
        let _ = std::fs::remove_file(&path);
    }
    // The floor: two processes ping-ponging one atomic.
    {
        let name = SegmentName::unique();
        let seg = Segment::builder(&name, ObjectKind::RawValue)
            .layout(shm_core::ElementLayout::of_typecode(
                shm_core::TypeCode::ULongLong,
            ))
            .count(1)
            .body_len(8)
            .create(|_, _| {})
            .expect("create");
        let a = atomic_of(&seg);
        let mut child = start("atomic-pong", &[name.as_str()]);
        let mut v = 0u64;
        g.bench_function("atomic_ping_pong/processes", |b| {
            b.iter(|| {
                a.store(v + 1, Ordering::Release);
                while a.load(Ordering::Acquire) != v + 2 {
                    std::hint::spin_loop();
                }
                v += 2;
            })
        });
        a.store(u64::MAX, Ordering::Release);
        let _ = child.join();
    }
    g.finish();
}

fn main() {
    Roles::new()
        .role("spsc-sink", spsc_sink)
        .role("mpmc-sink", mpmc_sink)
        .role("spsc-echo", spsc_echo)
        .role("atomic-pong", atomic_pong)
        .role("unix-echo", unix_echo)
        .run();
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    round_trip(&mut c);
    c.final_summary();
}
