//! Uncontended lock acquire+release: shm-lock's `Lock` and `RLock` (in a real segment) beside
//! `std::sync::Mutex`, `parking_lot::Mutex` and `raw_sync`'s process-shared mutex, in one
//! group so that every figure reads as a ratio from one run. The budget (ARCHITECTURE.md) is
//! `Lock` within 1.0x of `std::sync::Mutex`.
//!
//! Also: contended acquire+release while another thread, or for `Lock` another *process*
//! (this bench binary re-run in the role `locker`), hammers the same lock: a figure for the
//! slow path and the cross-process hand-off.
//!
//! Run: `cargo bench --bench lock` (measurements), `cargo test --bench lock` (each once).

use criterion::{black_box, criterion_group, Criterion};
use raw_sync::locks::{LockImpl, LockInit, Mutex as RawSyncMutex};
use shm_core::SegmentName;
use shm_lock::{Event, Lock, RLock};
use shm_process::{Process, Roles};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A heap buffer holding a raw_sync mutex (its lock lives in the buffer, as it would in a
/// shared segment).
struct RawSyncBox {
    lock: Box<dyn LockImpl>,
    _buf: Vec<u64>,
}

// SAFETY: raw_sync's mutex is a process-shared pthread mutex in `_buf`, usable from any thread.
unsafe impl Send for RawSyncBox {}
// SAFETY: as above.
unsafe impl Sync for RawSyncBox {}

fn raw_sync_mutex() -> RawSyncBox {
    let mut buf = vec![0u64; 64];
    let mem = buf.as_mut_ptr().cast::<u8>();
    assert!(RawSyncMutex::size_of(Some(mem)) <= 256);
    // SAFETY: `buf` is 512 zeroed, 8-aligned bytes that outlive the lock (moved with it; a
    // Vec's heap buffer does not move); the data pointer is the buffer's last 8 bytes.
    let (lock, _) = unsafe { RawSyncMutex::new(mem, mem.add(504)) }.expect("raw_sync mutex");
    RawSyncBox { lock, _buf: buf }
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_uncontended");
    let name = SegmentName::unique();
    let lock = Lock::builder(&name).create().expect("create lock");
    let rname = SegmentName::unique();
    let rlock = RLock::builder(&rname).create().expect("create rlock");
    let std_m = std::sync::Mutex::new(0u64);
    let pl_m = parking_lot::Mutex::new(0u64);
    let rs = raw_sync_mutex();

    g.bench_function("shm_lock::Lock", |b| {
        b.iter(|| drop(black_box(lock.lock()).ok()))
    });
    g.bench_function("shm_lock::RLock", |b| {
        b.iter(|| drop(black_box(rlock.lock()).ok()))
    });
    g.bench_function("std::sync::Mutex", |b| {
        b.iter(|| drop(black_box(std_m.lock())))
    });
    g.bench_function("parking_lot::Mutex", |b| {
        b.iter(|| drop(black_box(pl_m.lock())))
    });
    g.bench_function("raw_sync::Mutex", |b| {
        b.iter(|| drop(black_box(rs.lock.lock())))
    });
    g.finish();
}

/// Two threads take turns on one lock; reports the time per acquire+release of the measuring
/// thread while the other thread competes.
fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_contended");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(300));

    fn run<L: Send + Sync + 'static>(
        iters: u64,
        lock: Arc<L>,
        take: impl Fn(&L) + Send + Sync + Copy + 'static,
    ) -> Duration {
        let stop = Arc::new(AtomicBool::new(false));
        let (l2, s2) = (lock.clone(), stop.clone());
        let t = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                take(&l2);
            }
        });
        let start = Instant::now();
        for _ in 0..iters {
            take(&lock);
        }
        let d = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
        d
    }

    let name = SegmentName::unique();
    let lock = Arc::new(Lock::builder(&name).create().expect("create lock"));
    g.bench_function("shm_lock::Lock", |b| {
        b.iter_custom(|n| {
            run(n, lock.clone(), |l: &Lock| {
                drop(black_box(l.lock().ok()));
            })
        })
    });
    // The same lock, hammered by another process until `stop` is set.
    let stop_name = SegmentName::unique();
    let stop = Event::builder(&stop_name)
        .create()
        .expect("create stop event");
    let mut locker = Process::builder("locker")
        .arg(name.as_str())
        .arg(stop_name.as_str())
        .daemon(true)
        .start()
        .expect("start the locker process");
    g.bench_function("shm_lock::Lock (other process)", |b| {
        b.iter(|| drop(black_box(lock.lock().ok())))
    });
    stop.set();
    let _ = locker.join();

    let std_m = Arc::new(std::sync::Mutex::new(0u64));
    g.bench_function("std::sync::Mutex", |b| {
        b.iter_custom(|n| {
            run(n, std_m.clone(), |m: &std::sync::Mutex<u64>| {
                *m.lock().unwrap() += 1;
            })
        })
    });
    let pl = Arc::new(parking_lot::Mutex::new(0u64));
    g.bench_function("parking_lot::Mutex", |b| {
        b.iter_custom(|n| {
            run(n, pl.clone(), |m: &parking_lot::Mutex<u64>| {
                *m.lock() += 1;
            })
        })
    });
    g.finish();
}

/// The `locker` role: locks and unlocks the lock named by the first argument until the event
/// named by the second is set.
fn locker(args: &[String]) -> i32 {
    let open = || -> Option<(Lock, Event)> {
        let lock = Lock::builder(&SegmentName::new(args.first()?).ok()?)
            .open()
            .ok()?;
        let stop = Event::builder(&SegmentName::new(args.get(1)?).ok()?)
            .open()
            .ok()?;
        Some((lock, stop))
    };
    let Some((lock, stop)) = open() else {
        return 1;
    };
    while !stop.is_set() {
        for _ in 0..256 {
            drop(black_box(lock.lock().ok()));
        }
    }
    0
}

/// The criterion group (its generated function has no docs of its own).
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group!(benches, uncontended, contended);
}

fn main() {
    Roles::new().role("locker", locker).run();
    group::benches();
    Criterion::default().configure_from_args().final_summary();
}
