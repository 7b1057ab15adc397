//! Pool rows: `Pool(2).map` of `x * x` at chunk sizes 1 and 1000, the `apply` round trip, and
//! `apply_async` throughput, ours beside Python's `mp.Pool(2)` doing the same work. Every line
//! checks the values it gets back.
//!
//! The workers are this binary started again in the pool's worker role (see [`roles`]). The
//! cells do not pin: a pool's processes go where the scheduler puts them, on every CPU, as a
//! user's would (the measuring thread is unpinned first, since its workers inherit its
//! affinity).

use super::{case, python, Case, Group, Kind, Miss, Who, ONE};
use crate::harness::{self, Cfg};
use shm_core::WaitStrategy;
use shm_process::pool::{Pool, Registry, Task, WORKER_ROLE};
use shm_process::Roles;

const MAP1: &str = "pool-map-c1";
const MAP1000: &str = "pool-map-c1000";
const APPLY: &str = "pool-apply-rt";
const ASYNC: &str = "pool-apply-async";

/// Workers of every pool row (Python's rows use the same).
const WORKERS: usize = 2;
/// Items per map at chunk size 1 (full run).
const MAP1_ITEMS: u64 = 20_000;
/// Items per map at chunk size 1000 (full run).
const MAP1000_ITEMS: u64 = 200_000;
/// Calls per `apply_async` batch (full run).
const ASYNC_CALLS: u64 = 10_000;

/// The pool tables.
pub fn groups() -> Vec<Group> {
    vec![
        Group {
            key: MAP1,
            area: "pool",
            title: "Pool(2).map of x*x, chunksize 1",
            op: "one task of a map (one item per task), in maps of 20000",
            kind: Kind::Throughput { bytes: None },
            placements: ONE,
        },
        Group {
            key: MAP1000,
            area: "pool",
            title: "Pool(2).map of x*x, chunksize 1000",
            op: "one item of a map (1000 items per task), in maps of 200000",
            kind: Kind::Throughput { bytes: None },
            placements: ONE,
        },
        Group {
            key: APPLY,
            area: "pool",
            title: "Pool(2).apply round trip",
            op: "one apply(x*x): submit, run in a worker, result back",
            kind: Kind::Latency,
            placements: ONE,
        },
        Group {
            key: ASYNC,
            area: "pool",
            title: "Pool(2).apply_async throughput",
            op: "one apply_async(x*x), in batches of 10000 submitted then all gotten",
            kind: Kind::Throughput { bytes: None },
            placements: ONE,
        },
    ]
}

/// The pool rows' registry: the same in the runner and in its worker processes.
fn registry() -> (Registry, Task<u64, u64>) {
    let mut r = Registry::new();
    let square = r.register("square", |x: u64| x.wrapping_mul(x));
    (r, square)
}

/// A pool of [`WORKERS`] workers with `strategy`, from an unpinned thread.
fn pool(strategy: WaitStrategy) -> Result<(Pool, Task<u64, u64>), Miss> {
    harness::unpin();
    let (r, square) = registry();
    let pool = Pool::builder(&r)
        .processes(WORKERS)
        .wait_strategy(strategy)
        .name_prefix("bnch")
        .create()
        .map_err(|e| format!("creating the pool: {e}"))?;
    Ok((pool, square))
}

fn map_cell(
    cfg: &Cfg,
    strategy: WaitStrategy,
    items: u64,
    chunksize: usize,
) -> Result<Vec<f64>, Miss> {
    let (pool, square) = pool(strategy)?;
    let m = cfg.batch(items);
    harness::throughput(cfg, m, |m| {
        let v = pool
            .map_chunked(&square, 0..m, chunksize)
            .map_err(|e| format!("map: {e}"))?;
        check_squares(&v, m)
    })
    .map_err(Miss::from)
}

fn check_squares(v: &[u64], m: u64) -> Result<(), String> {
    let ok = v.len() as u64 == m
        && v.iter()
            .enumerate()
            .all(|(i, &y)| y == (i as u64) * (i as u64));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "wrong map result ({} values for {m} items)",
            v.len()
        ))
    }
}

fn apply_cell(cfg: &Cfg, strategy: WaitStrategy) -> Result<Vec<f64>, Miss> {
    let (pool, square) = pool(strategy)?;
    let mut x = 0u64;
    harness::per_op(cfg, || {
        x = (x + 1) & 0xffff;
        let y = pool.apply(&square, x).map_err(|e| format!("apply: {e}"))?;
        if y == x * x {
            Ok(())
        } else {
            Err(format!("apply({x}) gave {y}"))
        }
    })
    .map_err(Miss::from)
}

fn async_cell(cfg: &Cfg, strategy: WaitStrategy) -> Result<Vec<f64>, Miss> {
    let (pool, square) = pool(strategy)?;
    let m = cfg.batch(ASYNC_CALLS);
    let mut pending = Vec::with_capacity(m as usize);
    harness::throughput(cfg, m, |m| {
        for x in 0..m {
            pending.push(
                pool.apply_async(&square, x)
                    .map_err(|e| format!("apply_async: {e}"))?,
            );
        }
        for (x, r) in (0..m).zip(pending.drain(..)) {
            let y = r.get().map_err(|e| format!("apply_async get: {e}"))?;
            if y != x * x {
                return Err(format!("apply_async({x}) gave {y}"));
            }
        }
        Ok(())
    })
    .map_err(Miss::from)
}

/// The pool cases.
pub fn cases() -> Vec<Case> {
    let default = WaitStrategy::default;
    vec![
        case(
            MAP1,
            "shm-process Pool(2).map",
            Who::Ours,
            "adaptive",
            move |c, _| map_cell(c, default(), MAP1_ITEMS, 1),
        ),
        python::line(
            MAP1,
            "Python mp.Pool(2).map",
            "-",
            "pool_map_c1",
            MAP1_ITEMS,
        ),
        case(
            MAP1000,
            "shm-process Pool(2).map",
            Who::Ours,
            "adaptive",
            move |c, _| map_cell(c, default(), MAP1000_ITEMS, 1000),
        ),
        python::line(
            MAP1000,
            "Python mp.Pool(2).map",
            "-",
            "pool_map_c1000",
            MAP1000_ITEMS,
        ),
        case(
            APPLY,
            "shm-process Pool(2).apply",
            Who::Ours,
            "adaptive",
            move |c, _| apply_cell(c, default()),
        ),
        python::line(APPLY, "Python mp.Pool(2).apply", "-", "pool_apply", 1),
        case(
            ASYNC,
            "shm-process Pool(2).apply_async",
            Who::Ours,
            "adaptive",
            move |c, _| async_cell(c, default()),
        ),
        python::line(
            ASYNC,
            "Python mp.Pool(2).apply_async",
            "-",
            "pool_apply_async",
            ASYNC_CALLS,
        ),
    ]
}

/// The pool rows' child role: a pool worker serving [`registry`].
pub fn roles(r: Roles) -> Roles {
    r.role(WORKER_ROLE, |args| match registry().0.serve(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shm-bench pool worker: {e}");
            1
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_squares_catches_a_wrong_value() {
        assert!(check_squares(&[0, 1, 4], 3).is_ok());
        assert!(check_squares(&[0, 1, 5], 3).is_err());
        assert!(check_squares(&[0, 1], 3).is_err());
    }
}
