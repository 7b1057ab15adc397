//! Value rows: one atomic increment, and one increment under the value's lock, in one
//! process. Every line counts its increments and checks the final value against the count.

use super::{case, python, Case, Group, Kind, Miss, Who, ONE};
use crate::error::{BoxError, Failure};
use crate::harness::{self, Cfg};
use shm_core::SegmentName;
use shm_process::Roles;
use shm_value::{RawValue, Value};
use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

const ATOMIC: &str = "value-atomic";
const LOCKED: &str = "value-locked";

/// Increments per sample of the atomic table.
const ATOMIC_BATCH: u64 = 1000;
/// Increments per sample of the locked table.
const LOCKED_BATCH: u64 = 100;

/// The value tables.
pub fn groups() -> Vec<Group> {
    vec![
        Group {
            key: ATOMIC,
            area: "value",
            title: "Atomic increment, one process",
            op: "one fetch_add, timed in batches of 1000",
            kind: Kind::Latency,
            placements: ONE,
        },
        Group {
            key: LOCKED,
            area: "value",
            title: "Locked increment, one process",
            op: "one read-modify-write under the value's lock, timed in batches of 100",
            kind: Kind::Latency,
            placements: ONE,
        },
    ]
}

fn create_value() -> Result<Value<i64>, BoxError> {
    Ok(Value::<i64>::create(&SegmentName::unique(), 0)
        .map_err(|e| Failure::new("creating the value", e))?)
}

/// The value cases.
pub fn cases() -> Vec<Case> {
    vec![
        case(
            ATOMIC,
            "shm-value Value<i64> fetch_add",
            Who::Ours,
            "-",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let v = create_value()?;
                counted(
                    c,
                    ATOMIC_BATCH,
                    || {
                        black_box(v.fetch_add(1));
                        Ok(())
                    },
                    || v.load(),
                )
            },
        ),
        case(
            ATOMIC,
            "shm-value RawValue<i64> fetch_add",
            Who::Ours,
            "-",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let v = RawValue::<i64>::create(&SegmentName::unique(), 0)
                    .map_err(|e| format!("creating the raw value: {e}"))?;
                counted(
                    c,
                    ATOMIC_BATCH,
                    || {
                        black_box(v.fetch_add(1));
                        Ok(())
                    },
                    || v.load(),
                )
            },
        ),
        case(ATOMIC, "std AtomicI64 fetch_add", Who::Peer, "-", |c, p| {
            harness::pin_to(p.parent_cpu());
            let a = AtomicI64::new(0);
            let a = black_box(&a);
            // SeqCst, as Value's fetch_add (the same instruction on x86-64).
            counted(
                c,
                ATOMIC_BATCH,
                || {
                    black_box(a.fetch_add(1, Ordering::SeqCst));
                    Ok(())
                },
                || a.load(Ordering::SeqCst),
            )
        }),
        // Locked.
        case(
            LOCKED,
            "shm-value Value<i64> update (locked)",
            Who::Ours,
            "-",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let v = create_value()?;
                counted(
                    c,
                    LOCKED_BATCH,
                    || {
                        black_box(v.update(|x| x + 1).map_err(|e| format!("update: {e}"))?);
                        Ok(())
                    },
                    || v.load(),
                )
            },
        ),
        case(
            LOCKED,
            "shm-value Value<i64> lock guard += 1",
            Who::Ours,
            "-",
            |c, p| {
                harness::pin_to(p.parent_cpu());
                let v = create_value()?;
                counted(
                    c,
                    LOCKED_BATCH,
                    || {
                        let g = v.lock().map_err(|e| format!("lock: {e}"))?;
                        g.set(g.get() + 1);
                        drop(g);
                        Ok(())
                    },
                    || v.load(),
                )
            },
        ),
        case(LOCKED, "std::sync::Mutex<i64>", Who::Peer, "-", |c, p| {
            harness::pin_to(p.parent_cpu());
            let m = Mutex::new(0i64);
            let m = black_box(&m);
            let read = || m.lock().map_or(-1, |g| *g);
            counted(
                c,
                LOCKED_BATCH,
                || {
                    *m.lock().map_err(|_| "std mutex poisoned".to_string())? += 1;
                    Ok(())
                },
                read,
            )
        }),
        case(LOCKED, "parking_lot::Mutex<i64>", Who::Peer, "-", |c, p| {
            harness::pin_to(p.parent_cpu());
            let m = parking_lot::Mutex::new(0i64);
            let m = black_box(&m);
            counted(
                c,
                LOCKED_BATCH,
                || {
                    *m.lock() += 1;
                    Ok(())
                },
                || *m.lock(),
            )
        }),
        python::line(
            LOCKED,
            "Python mp.Value, with get_lock()",
            "-",
            "value_locked_inc",
            1,
        ),
    ]
}

/// The value rows' child roles (none: every row is one process).
pub fn roles(r: Roles) -> Roles {
    r
}

/// Times `inc` (adds 1) in batches of `batch`, then checks that `read` shows every increment.
fn counted(
    cfg: &Cfg,
    batch: u64,
    mut inc: impl FnMut() -> Result<(), BoxError>,
    read: impl FnOnce() -> i64,
) -> Result<Vec<f64>, Miss> {
    let mut n = 0i64;
    let samples = harness::per_batch(cfg, batch, |_| {
        inc()?;
        n += 1;
        Ok::<(), BoxError>(())
    })?;
    check_count(read(), n)?;
    Ok(samples)
}

fn check_count(found: i64, expected: i64) -> Result<(), Miss> {
    if found == expected && expected > 0 {
        Ok(())
    } else {
        Err(Miss::Failed(format!(
            "the value is {found} after {expected} increments"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Placement;
    use std::time::Duration;

    #[test]
    fn every_rust_line_runs_and_counts() {
        let cfg = Cfg {
            samples: 500,
            max_time: Duration::from_millis(5),
            warmup: Duration::ZERO,
            python: false,
            ..Cfg::quick()
        };
        for c in cases() {
            match (c.run)(&cfg, Placement::Single) {
                Ok(s) => assert!(s.len() >= 5, "{}", c.line),
                Err(Miss::Skipped(_)) => assert!(c.line.starts_with("Python")),
                Err(Miss::Failed(e)) => panic!("{}: {e}", c.line),
            }
        }
    }

    #[test]
    fn a_lost_increment_fails_the_cell() {
        let cfg = Cfg {
            samples: 200,
            warmup: Duration::ZERO,
            ..Cfg::quick()
        };
        let r = counted(&cfg, 100, || Ok(()), || 0);
        assert!(matches!(r, Err(Miss::Failed(_))));
        assert!(check_count(7, 7).is_ok());
    }
}
