//! The pool worker role (of the `shm-itest` binary) for `shm_process::pool`'s multi-process
//! tests (`tests/pool.rs`), and the task registry that the tests and the workers share.
//!
//! Role: [`WORKER_ROLE`] (`shm-process.pool-worker`), started by a [`Pool`] built with
//! `.program(child_binary!())`; it serves the tasks of [`registry`].
//!
//! [`Pool`]: shm_process::pool::Pool

use shm_process::pool::{Registry, Task, WORKER_ROLE};
use shm_process::Roles;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Longest a task sleeps, so that a forgotten worker cannot outlive a test run by much.
const LONG_SLEEP: Duration = Duration::from_secs(60);

/// How often this process's initializer ran, and the tag it was given.
static INIT_CALLS: AtomicU64 = AtomicU64::new(0);
static INIT_TAG: AtomicU64 = AtomicU64::new(0);

/// The tasks of the pool tests, in registration order.
#[derive(Debug, Clone, Copy)]
pub struct PoolTasks {
    /// `x * x`.
    pub square: Task<u64, u64>,
    /// The worker's pid (the argument is ignored).
    pub pid: Task<u64, u32>,
    /// Sleeps the given milliseconds (at most 60 s), then returns the worker's pid.
    pub hold: Task<u64, u32>,
    /// Creates the file at the given path, then sleeps the given milliseconds (at most 60 s)
    /// and returns the worker's pid: a task whose start a test can see.
    pub announce_hold: Task<(String, u64), u32>,
    /// Returns its argument, but aborts the worker (SIGABRT) when it is 3.
    pub abort_on_3: Task<u64, u64>,
    /// `Err` for odd numbers, the number otherwise.
    pub fail_odd: Task<u64, u64>,
    /// Panics for 2, returns the number otherwise.
    pub panic_on_2: Task<u64, u64>,
    /// The initializer: counts its calls and keeps its tag.
    pub init: Task<u64, ()>,
    /// `(pid, initializer calls, tag)` of the worker.
    pub init_state: Task<u64, (u32, u64, u64)>,
    /// An initializer that fails.
    pub bad_init: Task<u64, ()>,
    /// `a + b`, for starmap.
    pub add: Task<(i64, i64), i64>,
}

/// The registry of the pool tests, and its typed handles.
pub fn registry() -> (Registry, PoolTasks) {
    let mut r = Registry::new();
    let tasks = PoolTasks {
        square: r.register("square", |x: u64| x * x),
        pid: r.register("pid", |_: u64| std::process::id()),
        hold: r.register("hold", |ms: u64| {
            std::thread::sleep(Duration::from_millis(ms).min(LONG_SLEEP));
            std::process::id()
        }),
        announce_hold: r.register_star("announce_hold", |path: String, ms: u64| {
            let _ = std::fs::write(&path, b"started");
            std::thread::sleep(Duration::from_millis(ms).min(LONG_SLEEP));
            std::process::id()
        }),
        abort_on_3: r.register("abort_on_3", |x: u64| {
            if x == 3 {
                std::process::abort();
            }
            x
        }),
        fail_odd: r.register_fallible("fail_odd", |x: u64| {
            if x % 2 == 1 {
                Err(format!("{x} is odd"))
            } else {
                Ok(x)
            }
        }),
        panic_on_2: r.register("panic_on_2", |x: u64| {
            assert!(x != 2, "two is not allowed");
            x
        }),
        init: r.register("init", |tag: u64| {
            INIT_CALLS.fetch_add(1, Ordering::SeqCst);
            INIT_TAG.store(tag, Ordering::SeqCst);
        }),
        init_state: r.register("init_state", |_: u64| {
            (
                std::process::id(),
                INIT_CALLS.load(Ordering::SeqCst),
                INIT_TAG.load(Ordering::SeqCst),
            )
        }),
        bad_init: r.register_fallible("bad_init", |_: u64| Err::<(), _>("no database")),
        add: r.register_star("add", |a: i64, b: i64| a + b),
    };
    (r, tasks)
}

fn serve(args: &[String]) -> i32 {
    match registry().0.serve(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("pool worker: {e}");
            1
        }
    }
}

/// Registers the pool worker role.
pub fn register(roles: Roles) -> Roles {
    roles.role(WORKER_ROLE, serve)
}
