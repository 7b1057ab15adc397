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
use shm_lock::Lock;
use shm_process::{Process, Roles};
use std::io::Write;

/// The child: `f(lock, i)`.
fn f(args: &[String]) -> i32 {
    let (Some(name), Some(i)) = (args.first(), args.get(1)) else {
        eprintln!("usage: f LOCK_NAME I");
        return 2;
    };
    let lock = match SegmentName::new(name).map(|n| Lock::builder(&n).open()) {
        Ok(Ok(lock)) => lock,
        Ok(Err(e)) => {
            eprintln!("f: cannot open the lock: {e}");
            return 1;
        }
        Err(e) => {
            eprintln!("f: bad lock name: {e}");
            return 1;
        }
    };
    // A previous holder that died is reported, not hidden: printing is harmless, so carry on.
    let guard = lock.lock().or_else(|e| e.into_guard().ok_or(()));
    let Ok(guard) = guard else {
        return 1;
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "hello world {i}");
    let _ = out.flush();
    drop(guard);
    0
}

fn main() {
    Roles::new().role("f", f).run();

    let name = SegmentName::unique();
    let lock = Lock::builder(&name).create().expect("create the lock");
    let mut children = Vec::new();
    for num in 0..10 {
        let child = Process::builder("f")
            .arg(name.as_str())
            .arg(num.to_string())
            .start()
            .expect("start a child");
        children.push(child);
    }
    for mut child in children {
        let status = child.join().expect("join a child");
        assert!(status.success(), "a child failed: {status:?}");
    }
    drop(lock); // the creator removes the segment
}
