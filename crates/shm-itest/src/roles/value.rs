//! Child roles (of the `shm-itest` binary) for `shm-value`'s multi-process tests (`tests/cross_process.rs`), started in
//! a role by [`shm_process::Process`]. Not meant to be run by hand.
//!
//! Roles (`NAME` is a segment name):
//!
//! - `update NAME N [GO]`: `N` times `Value<i64>::update(|x| x + 1)`.
//! - `fetch-add NAME N [GO]`: `N` times `Value<i64>::fetch_add(1)`.
//! - `raw-fetch-add NAME N [GO]`: `N` times `RawValue<u64>::fetch_add(1)`.
//!
//! With `GO` (the name of a `RawValue<u32>`), the loop starts only once that value is
//! nonzero (waiting at most 30 s), so that all children run at the same time.
//! - `hold NAME`: locks the `Value<i64>`, stores 999 (a half-done update), prints `held`,
//!   and sleeps until killed.
//! - `store-f64 NAME`: stores 3.333333333333333 into a `Value<f64>`.
//!
//! Exit code 0 on success, 3 for bad arguments, 4 if opening failed, 5 if a lock failed.

use shm_core::SegmentName;
use shm_process::Roles;
use shm_value::{RawValue, Value};
use std::io::Write;
use std::time::Duration;

fn parse(args: &[String]) -> Option<(SegmentName, u64)> {
    let name = SegmentName::new(args.first()?).ok()?;
    let n = args.get(1).map_or(Some(0), |s| s.parse().ok())?;
    Some((name, n))
}

/// Waits until the `RawValue<u32>` named by `args[2]` (if given) is nonzero.
fn wait_for_go(args: &[String]) {
    let Some(go) = args.get(2).and_then(|a| SegmentName::new(a).ok()) else {
        return;
    };
    let Ok(go) = RawValue::<u32>::open(&go) else {
        return;
    };
    let start = std::time::Instant::now();
    while go.load() == 0 && start.elapsed() < Duration::from_secs(30) {
        std::thread::yield_now();
    }
}

fn with_value<T: shm_value::AtomicElement>(
    args: &[String],
    f: impl FnOnce(Value<T>, u64) -> i32,
) -> i32 {
    let Some((name, n)) = parse(args) else {
        eprintln!("bad arguments {args:?}");
        return 3;
    };
    match Value::<T>::open(&name) {
        Ok(v) => {
            wait_for_go(args);
            f(v, n)
        }
        Err(e) => {
            eprintln!("open {name}: {e}");
            4
        }
    }
}

/// Registers this module's roles, each named `value.<role>`.
pub fn register(roles: Roles) -> Roles {
    roles
        .role("value.update", |args| {
            with_value::<i64>(args, |v, n| {
                for _ in 0..n {
                    if let Err(e) = v.update(|x| x + 1) {
                        eprintln!("update: {e}");
                        return 5;
                    }
                }
                0
            })
        })
        .role("value.fetch-add", |args| {
            with_value::<i64>(args, |v, n| {
                for _ in 0..n {
                    v.fetch_add(1);
                }
                0
            })
        })
        .role("value.raw-fetch-add", |args| {
            let Some((name, n)) = parse(args) else {
                return 3;
            };
            let Ok(v) = RawValue::<u64>::open(&name) else {
                return 4;
            };
            wait_for_go(args);
            for _ in 0..n {
                v.fetch_add(1);
            }
            0
        })
        .role("value.hold", |args| {
            with_value::<i64>(args, |v, _| {
                let Ok(g) = v.lock() else {
                    return 5;
                };
                g.set(999);
                println!("held");
                let _ = std::io::stdout().flush();
                std::thread::sleep(Duration::from_secs(60));
                0
            })
        })
        .role("value.store-f64", |args| {
            with_value::<f64>(args, |v, _| {
                v.store(3.333333333333333);
                0
            })
        })
}
