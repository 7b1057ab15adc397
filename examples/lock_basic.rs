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
use shm_process::{Role, Roles, Shared};
use std::error::Error;
use std::io::Write;

/// `f(l, i)`: the lock and the line's number.
const F: Role<(Shared<Lock>, u32)> = Role::new("f");

/// The child: `f(lock, i)`.
fn f((lock, i): (Shared<Lock>, u32)) -> Result<(), Box<dyn Error>> {
    let lock = lock.open()?;
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
    Roles::new().register(F, f).run();

    let name = SegmentName::unique();
    let lock = Lock::builder(&name).create()?;
    let mut children = Vec::new();
    for num in 0..10 {
        children.push(F.builder(&(Shared::new(&name), num))?.start()?);
    }
    for mut child in children {
        let status = child.join()?;
        assert!(status.success(), "a child failed: {status:?}");
    }
    drop(lock); // the creator removes the segment
    Ok(())
}
