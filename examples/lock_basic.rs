//! Seed 000's lock example, across real processes: ten processes each print a line under one
//! shared [`Lock`], so no two lines interleave.
//!
//! ```python
//! def f(l, i):
//!     l.acquire()
//!     try:
//!         print('hello world', i)
//!     finally:
//!         l.release()
//!
//! if __name__ == '__main__':
//!     lock = Lock()
//!     for num in range(10):
//!         Process(target=f, args=(lock, num)).start()
//! ```
//!
//! Run: `cargo run --example lock_basic`. Each child opens the lock by name; the parent
//! created it and removes it when it ends.

use shm_core::SegmentName;
use shm_lock::{Lock, LockError};
use shm_process::{Process, Roles};
use std::error::Error;
use std::io::Write;

/// The child: `f(lock, i)`.
fn f(args: &[String]) -> i32 {
    match print_under_lock(args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("f: {e}");
            1
        }
    }
}

fn print_under_lock(args: &[String]) -> Result<(), Box<dyn Error>> {
    let (Some(name), Some(i)) = (args.first(), args.get(1)) else {
        return Err("usage: f LOCK_NAME I".into());
    };
    let lock = Lock::builder(&SegmentName::new(name)?).open()?;
    let guard = match lock.lock() {
        Ok(guard) => guard,
        // A previous holder died holding the lock. What it protected here is a line on
        // stdout, which needs no repair: take the lock, mark it consistent, carry on.
        Err(LockError::OwnerDied) => {
            let guard = lock.recover()?;
            guard.mark_consistent();
            guard
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "hello world {i}")?;
    out.flush()?;
    drop(guard);
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    Roles::new().role("f", f).run();

    let name = SegmentName::unique();
    let lock = Lock::builder(&name).create()?;
    let mut children = Vec::new();
    for num in 0..10 {
        let child = Process::builder("f")
            .arg(name.as_str())
            .arg(num.to_string())
            .start()?;
        children.push(child);
    }
    for mut child in children {
        let status = child.join()?;
        assert!(status.success(), "a child failed: {status:?}");
    }
    drop(lock); // the creator removes the segment
    Ok(())
}
