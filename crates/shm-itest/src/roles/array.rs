//! Child roles (of the `shm-itest` binary) for `shm-array`'s multi-process tests (`tests/cross_process.rs`), started in
//! a role by [`shm_process::Process`]. Not meant to be run by hand.
//!
//! Roles (`NAME` is a segment name):
//!
//! - `seed002 VALUE ARRAY`: seed 002's `func`: stores 3.333333333333333 into the
//!   `Value<f64>` and negates every element of the `Array<i32>`.
//! - `add NAME N`: `N` times `fetch_add(0, 1)` and, under `lock()`, `g[1] += 1` on an
//!   `Array<i64>`.
//! - `hold NAME`: locks the `Array<i64>`, writes 999 into element 0, prints `held`, sleeps
//!   until killed.
//! - `open-len NAME LEN`: opens the `Array<i32>` expecting `LEN` elements; prints the error.
//! - `write-points NAME N`: `N` rounds of `copy_from_slice` of equal points into a
//!   `RawArray` of points (x = y = round, w = round as f64).
//! - `rewrite NAME`: forever, under one `lock()` each round, fills the `Array<i64>` with the
//!   round number through `ArrayGuard::update` (so every consistent state has all elements
//!   equal); prints `running` after the first round. The test SIGKILLs it at some moment.
//!
//! Exit code 0 on success, 3 for bad arguments, 4 if opening failed, 5 if a lock failed.

use shm_array::{Array, RawArray};
use shm_core::{OpenError, SegmentName};
use shm_process::Roles;
use shm_value::Value;
use std::io::Write;
use std::time::Duration;

shm_core::record! {
    /// The record of the `write-points` role (format `"iid"`).
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Point { x: i32, y: i32, w: f64 }
}

fn name(args: &[String], i: usize) -> Option<SegmentName> {
    SegmentName::new(args.get(i)?).ok()
}

fn num(args: &[String], i: usize) -> Option<u64> {
    args.get(i)?.parse().ok()
}

fn seed002(args: &[String]) -> i32 {
    let (Some(v), Some(a)) = (name(args, 0), name(args, 1)) else {
        return 3;
    };
    let (Ok(num), Ok(arr)) = (Value::<f64>::open(&v), Array::<i32>::open(&a)) else {
        return 4;
    };
    num.store(3.333333333333333);
    let Ok(mut g) = arr.lock() else { return 5 };
    g.update(|s| s.iter_mut().for_each(|x| *x = -*x));
    0
}

fn add(args: &[String]) -> i32 {
    let (Some(a), Some(n)) = (name(args, 0), num(args, 1)) else {
        return 3;
    };
    let Ok(arr) = Array::<i64>::open(&a) else {
        return 4;
    };
    for _ in 0..n {
        if arr.fetch_add(0, 1).is_err() {
            return 3;
        }
        let Ok(g) = arr.lock() else { return 5 };
        if g.get(1).and_then(|x| g.set(1, x + 1)).is_err() {
            return 5;
        }
    }
    0
}

fn hold(args: &[String]) -> i32 {
    let Some(a) = name(args, 0) else { return 3 };
    let Ok(arr) = Array::<i64>::open(&a) else {
        return 4;
    };
    let Ok(g) = arr.lock() else { return 5 };
    let _ = g.set(0, 999);
    println!("held");
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(60));
    0
}

fn rewrite(args: &[String]) -> i32 {
    let Some(a) = name(args, 0) else { return 3 };
    let Ok(arr) = Array::<i64>::open(&a) else {
        return 4;
    };
    for k in 1i64.. {
        let Ok(mut g) = arr.lock() else { return 5 };
        g.update(|s| s.fill(k));
        drop(g);
        if k == 1 {
            println!("running");
            let _ = std::io::stdout().flush();
        }
    }
    0
}

fn open_len(args: &[String]) -> i32 {
    let (Some(a), Some(n)) = (name(args, 0), num(args, 1)) else {
        return 3;
    };
    match Array::<i32>::builder(&a).len(n as usize).open() {
        Ok(_) => 0,
        Err(OpenError::WrongCount { expected, found }) => {
            println!("WrongCount {expected} {found}");
            4
        }
        Err(e) => {
            println!("{e}");
            6
        }
    }
}

fn write_points(args: &[String]) -> i32 {
    let (Some(a), Some(n)) = (name(args, 0), num(args, 1)) else {
        return 3;
    };
    let Ok(arr) = RawArray::<Point>::open(&a) else {
        return 4;
    };
    let mut buf = vec![Point { x: 0, y: 0, w: 0.0 }; arr.len()];
    for k in 0..n as i32 {
        buf.fill(Point {
            x: k,
            y: k,
            w: k as f64,
        });
        if arr.copy_from_slice(&buf).is_err() {
            return 3;
        }
    }
    0
}

/// Registers this module's roles, each named `array.<role>`.
pub fn register(roles: Roles) -> Roles {
    roles
        .role("array.seed002", seed002)
        .role("array.add", add)
        .role("array.hold", hold)
        .role("array.rewrite", rewrite)
        .role("array.open-len", open_len)
        .role("array.write-points", write_points)
}
