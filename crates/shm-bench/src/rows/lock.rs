//! Lock rows: uncontended lock + unlock in one process, and the hand-off of a lock between
//! two processes.
//!
//! The hand-off scheme is the same for every line (and for the Python script's
//! `lock_handoff` case): both sides share one lock and a `u64` counter on its own 128-byte
//! line, and loop `lock; if counter % 2 == my_parity { counter += 1 }; unlock`, the measuring
//! side with parity 0, the other with parity 1. A batch of the measuring side's increments is
//! timed; one hand-off is half of one of its increments (the lock goes over and comes back).

use super::{arg, exit, finish};
use super::{case, python, Case, Group, Kind, Miss, Who, ONE, TWO};
use crate::error::BoxError;
use crate::harness::{self, child_args, spin_until, Cfg, Child, Placement, Words};
use crossbeam_utils::CachePadded;
use raw_sync::locks::{LockImpl, LockInit, Mutex as RawSyncMutex};
use raw_sync::Timeout;
use shm_core::SegmentName;
use shm_lock::{Lock, RLock};
use shm_process::Roles;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const UNCONTENDED: &str = "lock-uncontended";
const HANDOFF: &str = "lock-handoff";

/// Lock + unlock pairs per sample of the uncontended table.
const UNCONTENDED_BATCH: u64 = 1000;
/// Increments of the measuring side per sample of the hand-off table, sides on two cores.
const HANDOFF_BATCH: u64 = 1000;
/// The same with both sides on one core, where a hand-off waits for the scheduler to
/// preempt the spinning side (milliseconds): small batches, so that a cell fits its time.
const HANDOFF_BATCH_SAME_CORE: u64 = 10;
/// How long a side waits for the lock, or for its turn, before calling the cell failed.
const PATIENCE: Duration = Duration::from_secs(10);

/// Words of the hand-off's [`Words`] segment.
const COUNTER: usize = 0;
const STOP: usize = 1;
const READY: usize = 2;

/// The lock tables.
pub fn groups() -> Vec<Group> {
    vec![
        Group {
            key: UNCONTENDED,
            area: "lock",
            title: "Uncontended lock + unlock, one process",
            op: "lock then unlock, timed in batches of 1000",
            kind: Kind::Latency,
            placements: ONE,
        },
        Group {
            key: HANDOFF,
            area: "lock",
            title: "Lock hand-off between two processes",
            op: "one hand-off: the lock passes to the other process, which increments a shared \
                 counter it guards; timed in batches",
            kind: Kind::Latency,
            placements: TWO,
        },
    ]
}

/// The lock cases.
pub fn cases() -> Vec<Case> {
    vec![
        // Uncontended.
        case(UNCONTENDED, "shm-lock Lock", Who::Ours, "-", |c, p| {
            harness::pin_to(p.parent_cpu());
            let lock = Lock::builder(&SegmentName::unique())
                .create()
                .map_err(|e| format!("creating the lock: {e}"))?;
            uncontended(c, || {
                let g = lock.lock().map_err(|e| format!("lock: {e}"))?;
                drop(black_box(g));
                Ok(())
            })
        }),
        case(UNCONTENDED, "shm-lock RLock", Who::Ours, "-", |c, p| {
            harness::pin_to(p.parent_cpu());
            let lock = RLock::builder(&SegmentName::unique())
                .create()
                .map_err(|e| format!("creating the rlock: {e}"))?;
            uncontended(c, || {
                let g = lock.lock().map_err(|e| format!("lock: {e}"))?;
                drop(black_box(g));
                Ok(())
            })
        }),
        case(UNCONTENDED, "std::sync::Mutex", Who::Peer, "-", |c, p| {
            harness::pin_to(p.parent_cpu());
            let m = Mutex::new(());
            let m = black_box(&m);
            uncontended(c, || {
                let g = m.lock().map_err(|_| "std mutex poisoned".to_string())?;
                drop(black_box(g));
                Ok(())
            })
        }),
        case(UNCONTENDED, "parking_lot::Mutex", Who::Peer, "-", |c, p| {
            harness::pin_to(p.parent_cpu());
            let m = parking_lot::Mutex::new(());
            let m = black_box(&m);
            uncontended(c, || {
                drop(black_box(m.lock()));
                Ok(())
            })
        }),
        case(
            UNCONTENDED,
            "raw_sync Mutex (shared_memory)",
            Who::Peer,
            "-",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let rs = RsMutex::create()?;
                uncontended(c, || {
                    let g = rs.lock.lock().map_err(|e| format!("raw_sync lock: {e}"))?;
                    drop(black_box(g));
                    Ok(())
                })
            },
        ),
        python::line(UNCONTENDED, "Python mp.Lock", "-", "lock_uncontended", 1),
        // Hand-off.
        case(
            HANDOFF,
            "shm-lock Lock",
            Who::Ours,
            "adaptive, try_lock_for",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let name = SegmentName::unique();
                let lock = Lock::builder(&name)
                    .create()
                    .map_err(|e| format!("creating the lock: {e}"))?;
                process_handoff(c, p, &lock, "lock", name.as_str())
            },
        ),
        case(
            HANDOFF,
            "shm-lock RLock",
            Who::Ours,
            "adaptive, try_lock_for",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let name = SegmentName::unique();
                let lock = RLock::builder(&name)
                    .create()
                    .map_err(|e| format!("creating the rlock: {e}"))?;
                process_handoff(c, p, &lock, "rlock", name.as_str())
            },
        ),
        case(
            HANDOFF,
            "raw_sync Mutex (shared_memory)",
            Who::Peer,
            "pthread_mutex_timedlock",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let rs = RsMutex::create()?;
                let id = rs.os_id();
                process_handoff(c, p, &rs, "rawsync", &id)
            },
        ),
        case(
            HANDOFF,
            "std::sync::Mutex, two threads",
            Who::Ceiling,
            "std lock (spin, futex)",
            threads_handoff,
        ),
        python::line(HANDOFF, "Python mp.Lock", "blocking", "lock_handoff", 1),
    ]
}

/// The lock rows' child roles.
pub fn roles(r: Roles) -> Roles {
    r.role("l-handoff", |a| exit(handoff_child(child_args(a))))
}

/// Times `op` (one lock + unlock) in batches.
fn uncontended(cfg: &Cfg, op: impl FnMut() -> Result<(), BoxError>) -> Result<Vec<f64>, Miss> {
    let mut op = op;
    Ok(harness::per_batch(cfg, UNCONTENDED_BATCH, |_| op())?)
}

// ---- hand-off ----------------------------------------------------------------------------

/// A lock of the hand-off table: runs a closure with the lock held, waiting at most
/// [`PATIENCE`] for it (or, where the lock has no timed form, with a wait that cannot hang).
trait Handoff {
    fn with<R>(&self, f: impl FnOnce() -> R) -> Result<R, BoxError>;
}

impl Handoff for Lock {
    #[inline]
    fn with<R>(&self, f: impl FnOnce() -> R) -> Result<R, BoxError> {
        let g = self
            .try_lock_for(PATIENCE)
            .map_err(|e| format!("Lock::try_lock_for: {e}"))?;
        let r = f();
        drop(g);
        Ok(r)
    }
}

impl Handoff for RLock {
    #[inline]
    fn with<R>(&self, f: impl FnOnce() -> R) -> Result<R, BoxError> {
        let g = self
            .try_lock_for(PATIENCE)
            .map_err(|e| format!("RLock::try_lock_for: {e}"))?;
        let r = f();
        drop(g);
        Ok(r)
    }
}

impl Handoff for RsMutex {
    #[inline]
    fn with<R>(&self, f: impl FnOnce() -> R) -> Result<R, BoxError> {
        let g = self
            .lock
            .try_lock(Timeout::Val(PATIENCE))
            .map_err(|e| format!("raw_sync try_lock: {e}"))?;
        let r = f();
        drop(g);
        Ok(r)
    }
}

/// Threads of one process: a panicking peer poisons the mutex instead of hanging us.
impl Handoff for Mutex<()> {
    #[inline]
    fn with<R>(&self, f: impl FnOnce() -> R) -> Result<R, BoxError> {
        let g = self
            .lock()
            .map_err(|_| "std mutex poisoned (the other thread panicked)".to_string())?;
        let r = f();
        drop(g);
        Ok(r)
    }
}

/// One turn: lock, increment the counter if it is `parity`'s turn, unlock. True if it did.
#[inline]
fn take_turn<L: Handoff>(lock: &L, counter: &AtomicU64, parity: u64) -> Result<bool, BoxError> {
    lock.with(|| {
        // Relaxed: the lock orders these accesses.
        let c = counter.load(Ordering::Relaxed);
        if c % 2 == parity {
            counter.store(c + 1, Ordering::Relaxed);
            true
        } else {
            false
        }
    })
}

/// Takes turns until this side (parity 0) has incremented once.
fn increment_once<L: Handoff>(lock: &L, counter: &AtomicU64) -> Result<(), BoxError> {
    let mut tries = 0u32;
    let mut since: Option<Instant> = None;
    loop {
        if take_turn(lock, counter, 0)? {
            return Ok(());
        }
        tries = tries.wrapping_add(1);
        if tries.is_multiple_of(1024)
            && since.get_or_insert_with(Instant::now).elapsed() >= PATIENCE
        {
            return Err(format!(
                "the other side did not take its turn in {PATIENCE:?} (counter {})",
                counter.load(Ordering::Relaxed)
            )
            .into());
        }
    }
}

/// The other side's loop (parity 1), until `stop` is non-zero.
fn other_side<L: Handoff>(lock: &L, counter: &AtomicU64, stop: &AtomicU64) -> Result<(), BoxError> {
    let mut tries = 0u32;
    let mut since: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) != 0 {
            return Ok(());
        }
        if take_turn(lock, counter, 1)? {
            tries = 0;
            since = None;
            continue;
        }
        tries = tries.wrapping_add(1);
        if tries.is_multiple_of(1024)
            && since.get_or_insert_with(Instant::now).elapsed() >= PATIENCE
        {
            return Err(format!(
                "the measuring side did not take its turn in {PATIENCE:?} (counter {})",
                counter.load(Ordering::Relaxed)
            )
            .into());
        }
    }
}

fn handoff_batch(cfg: &Cfg, p: Placement) -> u64 {
    match p {
        Placement::Same => HANDOFF_BATCH_SAME_CORE,
        _ => cfg.batch(HANDOFF_BATCH),
    }
}

/// The measuring side: samples in ns per hand-off, and the number of its increments.
fn measure_handoff<L: Handoff>(
    cfg: &Cfg,
    p: Placement,
    lock: &L,
    counter: &AtomicU64,
) -> Result<(Vec<f64>, u64), BoxError> {
    let mut incs = 0u64;
    let samples = harness::per_batch(cfg, handoff_batch(cfg, p), |_| {
        increment_once(lock, counter)?;
        incs += 1;
        Ok::<(), BoxError>(())
    })?;
    // One increment of ours is two hand-offs: to the other side and back.
    Ok((samples.into_iter().map(|s| s / 2.0).collect(), incs))
}

/// After the run: the counter is `2 × ours − 1` (the other side has not answered our last
/// increment) or `2 × ours`.
fn check_counter(counter: u64, incs: u64) -> Result<(), Miss> {
    if incs > 0 && (counter == 2 * incs - 1 || counter == 2 * incs) {
        Ok(())
    } else {
        Err(Miss::Failed(format!(
            "counter is {counter} after {incs} increments of the measuring side: \
             the lock did not exclude"
        )))
    }
}

/// The hand-off between this process and a child that opens `lock` by `what` and `id`.
fn process_handoff<L: Handoff>(
    cfg: &Cfg,
    p: Placement,
    lock: &L,
    what: &str,
    id: &str,
) -> Result<Vec<f64>, Miss> {
    let w = Words::create()?;
    let child = Child::start(
        "l-handoff",
        p.child_cpu(),
        &[what.into(), w.name(), id.into()],
    )?;
    let r = if spin_until(PATIENCE, || w.word(READY).load(Ordering::Acquire) != 0) {
        measure_handoff(cfg, p, lock, w.word(COUNTER))
    } else {
        Err("the hand-off child did not start".into())
    };
    w.word(STOP).store(1, Ordering::Release);
    let (samples, incs) = match r {
        Ok((s, n)) => (finish(child, Ok::<_, BoxError>(s))?, n),
        Err(e) => return finish(child, Err(e)),
    };
    check_counter(w.word(COUNTER).load(Ordering::Acquire), incs)?;
    Ok(samples)
}

/// The child of a hand-off: `[kind, words, lock id]`.
fn handoff_child(a: &[String]) -> Result<(), BoxError> {
    let w = Words::open(arg(a, 1)?)?;
    let id = arg(a, 2)?;
    let name = || SegmentName::new(id).map_err(|e| format!("bad segment name {id}: {e}"));
    let (counter, stop) = (w.word(COUNTER), w.word(STOP));
    match arg(a, 0)? {
        "lock" => {
            let lock = Lock::builder(&name()?)
                .open()
                .map_err(|e| format!("opening the lock: {e}"))?;
            w.word(READY).store(1, Ordering::Release);
            other_side(&lock, counter, stop)
        }
        "rlock" => {
            let lock = RLock::builder(&name()?)
                .open()
                .map_err(|e| format!("opening the rlock: {e}"))?;
            w.word(READY).store(1, Ordering::Release);
            other_side(&lock, counter, stop)
        }
        "rawsync" => {
            let rs = RsMutex::open(id)?;
            w.word(READY).store(1, Ordering::Release);
            other_side(&rs, counter, stop)
        }
        other => Err(format!("unknown hand-off lock {other:?}").into()),
    }
}

/// The ceiling: the same scheme between two threads of this process over a
/// `std::sync::Mutex`, the counter on its own cache line as in the process rows.
fn threads_handoff(cfg: &Cfg, p: Placement) -> Result<Vec<f64>, Miss> {
    struct Shared {
        lock: Mutex<()>,
        counter: CachePadded<AtomicU64>,
        stop: CachePadded<AtomicU64>,
    }
    harness::pin_to(p.parent_cpu());
    let s = Arc::new(Shared {
        lock: Mutex::new(()),
        counter: CachePadded::new(AtomicU64::new(0)),
        stop: CachePadded::new(AtomicU64::new(0)),
    });
    let s2 = Arc::clone(&s);
    let cpu = p.child_cpu();
    let t = std::thread::spawn(move || {
        harness::pin_to(cpu);
        other_side(&s2.lock, &s2.counter, &s2.stop)
    });
    let r = measure_handoff(cfg, p, &s.lock, &s.counter);
    s.stop.store(1, Ordering::Release);
    let other = t
        .join()
        .map_err(|_| Miss::Failed("the other thread panicked".into()))?;
    let (samples, incs) = r?;
    other?;
    check_counter(s.counter.load(Ordering::Acquire), incs)?;
    Ok(samples)
}

// ---- raw_sync ----------------------------------------------------------------------------

/// Size of the `shared_memory` mapping of the raw_sync rows.
const RS_LEN: usize = 4096;
/// Offset of the mutex's (unused) data word: its own 128-byte line.
const RS_DATA: usize = 128;

/// raw_sync's process-shared (pthread) mutex at the start of a `shared_memory` mapping.
struct RsMutex {
    // Declared first: dropped before the mapping it points into.
    lock: Box<dyn LockImpl>,
    shmem: shared_memory::Shmem,
}

impl RsMutex {
    fn create() -> Result<RsMutex, BoxError> {
        let shmem = shared_memory::ShmemConf::new()
            .size(RS_LEN)
            .create()
            .map_err(|e| format!("shared_memory create: {e}"))?;
        let base = shmem.as_ptr();
        if RawSyncMutex::size_of(Some(base)) > RS_DATA {
            return Err("raw_sync's mutex does not fit its slot".into());
        }
        // SAFETY: the mapping is RS_LEN bytes, page-aligned and private to this process until
        // a child opens it; the mutex takes 0..size_of (checked above to end before RS_DATA)
        // and its data pointer is the 8 bytes at RS_DATA, inside the mapping.
        let (lock, _) = unsafe { RawSyncMutex::new(base, base.add(RS_DATA)) }
            .map_err(|e| format!("raw_sync mutex: {e}"))?;
        Ok(RsMutex { lock, shmem })
    }

    fn open(os_id: &str) -> Result<RsMutex, BoxError> {
        let shmem = shared_memory::ShmemConf::new()
            .os_id(os_id)
            .open()
            .map_err(|e| format!("shared_memory open: {e}"))?;
        if shmem.len() < RS_LEN {
            return Err("shared_memory segment too short".into());
        }
        let base = shmem.as_ptr();
        // SAFETY: the creator initialised the mutex at offset 0 of this RS_LEN-byte mapping
        // (checked above) before it started us; the data pointer is inside the mapping.
        let (lock, _) = unsafe { RawSyncMutex::from_existing(base, base.add(RS_DATA)) }
            .map_err(|e| format!("raw_sync mutex: {e}"))?;
        Ok(RsMutex { lock, shmem })
    }

    fn os_id(&self) -> String {
        self.shmem.get_os_id().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_check() {
        assert!(check_counter(19, 10).is_ok());
        assert!(check_counter(20, 10).is_ok());
        assert!(check_counter(21, 10).is_err());
        assert!(check_counter(18, 10).is_err());
        assert!(check_counter(0, 0).is_err());
    }

    #[test]
    fn handoff_between_threads_counts_every_turn() {
        let cfg = Cfg {
            samples: 50,
            max_time: Duration::from_millis(20),
            warmup: Duration::ZERO,
            ..Cfg::quick()
        };
        let s = threads_handoff(&cfg, Placement::Split).unwrap();
        assert!(s.len() >= 5 && s.iter().all(|x| *x > 0.0));
    }

    #[test]
    fn raw_sync_mutex_in_shared_memory() {
        let rs = RsMutex::create().unwrap();
        let other = RsMutex::open(&rs.os_id()).unwrap();
        let counter = AtomicU64::new(0);
        assert!(take_turn(&rs, &counter, 0).unwrap());
        assert!(!take_turn(&other, &counter, 0).unwrap());
        assert!(take_turn(&other, &counter, 1).unwrap());
        assert_eq!(counter.load(Ordering::Relaxed), 2);
    }
}
