//! Who holds a lock: a 64-bit *thread identity word*, and whether its thread is still alive.
//!
//! The word is `tid | (start_time & 0xffff_ffff) << 32`, the [`ProcessId`] word of the kernel
//! thread id (`gettid`) and that thread's start time. Thread ids share the pid space, so the
//! word names one thread on the whole machine, and `/proc/<tid>/stat` tells whether that thread
//! still runs (a thread that exited disappears from `/proc`; a zombie counts as dead; the start
//! time defeats tid reuse). That is how a waiter detects a holder thread that died, in another
//! process or in its own.
//!
//! The word is computed once per thread and cached in a thread-local (the fast path reads only
//! the thread-local). Limits: a process made with `fork()` without `exec` inherits the forking
//! thread's cached word and must not use locks it did not open after the fork (shm-ipc starts
//! children by re-executing, which is fine). If `/proc` cannot be read, liveness checks answer
//! "alive" (a dead holder is then never detected, but a live one is never robbed).
//!
//! Under loom and miri the words come from a process-local counter and every owner counts as
//! alive; tests of the owner-died path hand in their own liveness function.

use shm_core::ProcessId;
use std::cell::Cell;

#[cfg(not(loom))]
thread_local! {
    static ME: Cell<u64> = const { Cell::new(0) };
}
#[cfg(loom)]
loom::thread_local! {
    static ME: Cell<u64> = Cell::new(0);
}

/// Whether `/proc` answered for this process (set when the first identity is computed).
static PROC_WORKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The identity word of the calling thread (never 0).
#[inline]
pub(crate) fn current() -> u64 {
    ME.with(|c| {
        let w = c.get();
        if w != 0 {
            w
        } else {
            let w = compute();
            c.set(w);
            w
        }
    })
}

#[cfg(all(target_os = "linux", not(miri), not(loom)))]
fn compute() -> u64 {
    // SAFETY: gettid(2) has no preconditions and cannot fail.
    let tid = unsafe { libc::gettid() } as u32;
    match ProcessId::of(tid) {
        Some(id) => {
            PROC_WORKS.store(true, std::sync::atomic::Ordering::Relaxed);
            id.to_word()
        }
        None => ProcessId::from_parts(tid, 0).to_word(),
    }
}

#[cfg(not(all(target_os = "linux", not(miri), not(loom))))]
fn compute() -> u64 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    // Counter ids never collide with each other within a process; the high half marks them.
    let n = NEXT.fetch_add(1, Ordering::Relaxed).max(1);
    ProcessId::from_parts(n, 0xfeed).to_word()
}

/// Whether the thread named by `word` is still alive (`true` when it cannot be told).
pub(crate) fn is_alive(word: u64) -> bool {
    if cfg!(any(miri, loom)) || !PROC_WORKS.load(std::sync::atomic::Ordering::Relaxed) {
        return true;
    }
    ProcessId::word_is_alive(word)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_and_distinct_per_thread() {
        let a = current();
        assert_ne!(a, 0);
        assert_eq!(a, current());
        let b = std::thread::spawn(current).join().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn exited_thread_is_dead_and_current_is_alive() {
        let me = current();
        assert!(is_alive(me));
        let other = std::thread::spawn(current).join().unwrap();
        // A joined thread leaves /proc shortly after the join returns.
        let mut tries = 0;
        while is_alive(other) && tries < 5000 {
            std::thread::sleep(std::time::Duration::from_millis(1));
            tries += 1;
        }
        assert!(!is_alive(other));
    }
}
