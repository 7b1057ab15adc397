//! Read-only snapshots of a lock's state, for tools such as `shm-ipc inspect`.
//!
//! A snapshot is a few relaxed loads: it never blocks, never takes the lock, and may be stale
//! by the time it is read. Every field comes from shared memory that any process can write.

use crate::lock::{Lock, LockRef, RLock, RLockRef};
use crate::raw::{RawLock, INCONSISTENT};
use shm_core::sync::atomic::Ordering;

/// What a [`Lock`], [`RLock`] (or a lock embedded in a `Value`, `Array` or `Condition`) looks
/// like right now.
///
/// # Examples
///
/// ```
/// use shm_lock::Lock;
///
/// let lock = Lock::new();
/// assert_eq!(lock.snapshot().holder, None);
/// let guard = lock.lock().unwrap();
/// assert!(lock.snapshot().holder.is_some());
/// drop(guard);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSnapshot {
    /// The holder's thread identity word (a `ThreadWord`: the kernel thread id in the low 32
    /// bits), or `None` when the lock is free. Ask `shm_core`'s liveness probe whether that
    /// thread still runs.
    pub holder: Option<u64>,
    /// A holder died and nobody has marked the protected state consistent since.
    pub inconsistent: bool,
    /// An `RLock`'s recursion depth (0 for a `Lock`, and for a free `RLock`).
    pub depth: u32,
    /// Threads announced as sleeping on the lock (too high after a waiter died: harmless).
    pub waiters: u32,
}

fn snapshot(raw: &RawLock, reentrant: bool) -> LockSnapshot {
    let owner = raw.owner.load(Ordering::Relaxed);
    LockSnapshot {
        holder: (owner != 0).then_some(owner),
        inconsistent: raw.flags.load(Ordering::Relaxed) & INCONSISTENT != 0,
        depth: if reentrant && owner != 0 {
            raw.count.load(Ordering::Relaxed)
        } else {
            0
        },
        waiters: raw.waiters.load(Ordering::Relaxed),
    }
}

impl LockRef<'_> {
    /// A snapshot of the lock's state (see [`LockSnapshot`]).
    pub fn snapshot(&self) -> LockSnapshot {
        snapshot(self.raw_lock(), false)
    }
}

impl RLockRef<'_> {
    /// A snapshot of the lock's state (see [`LockSnapshot`]).
    pub fn snapshot(&self) -> LockSnapshot {
        snapshot(self.raw_lock(), true)
    }
}

impl Lock {
    /// A snapshot of the lock's state (see [`LockSnapshot`]).
    pub fn snapshot(&self) -> LockSnapshot {
        self.as_ref().snapshot()
    }
}

impl RLock {
    /// A snapshot of the lock's state (see [`LockSnapshot`]).
    pub fn snapshot(&self) -> LockSnapshot {
        self.as_ref().snapshot()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn snapshots_follow_the_lock() {
        let lock = Lock::new();
        let free = lock.snapshot();
        assert_eq!(free.holder, None);
        assert!(!free.inconsistent);
        let g = lock.lock().unwrap();
        let held = lock.snapshot();
        assert!(held.holder.is_some());
        assert_eq!(held.depth, 0);
        drop(g);
        assert_eq!(lock.snapshot().holder, None);

        let r = RLock::new();
        let a = r.lock().unwrap();
        let b = r.lock().unwrap();
        let s = r.snapshot();
        assert_eq!(s.depth, 2);
        assert_eq!(s.holder, lock.lock().map(|_| held.holder).unwrap());
        drop(b);
        drop(a);
        assert_eq!(r.snapshot().depth, 0);
        assert_eq!(r.snapshot().holder, None);
    }
}
