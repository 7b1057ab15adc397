//! Support for shm-ipc's multi-process tests (not published).
//!
//! The tests in `tests/` start the `shm-itest` binary (`src/main.rs`) in named roles, each
//! registered by a module of [`roles`] under a prefix naming its crate (`lock.hold`,
//! `queue.spsc-produce`, ...). This library gives them:
//!
//! - [`Watchdog`]: kills a hung test's children and aborts the test binary;
//! - [`NameGuard`]: unlinks a segment name on drop (for segments a child created);
//! - [`child`], [`join_bounded`], [`kill_and_join`]: start the child binary in a role and end
//!   it with bounded waits;
//! - [`child_binary!`]: the path of the child binary, for tests in this crate.
//!
//! No test asserts how long anything takes: bounds are generous and only catch hangs.

// The role modules were binaries: their docs link their private helpers.
#![allow(rustdoc::private_intra_doc_links)]

pub mod roles;

use shm_core::{Liveness, ProcessId, Segment, SegmentName};
use shm_process::{ExitStatus, Process, ProcessBuilder};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// After this long a test counts as hung: its [`Watchdog`] kills its children.
pub const HANG_BOUND: Duration = Duration::from_secs(120);

/// Bound on waiting for an outcome (a child ending, a line arriving) in the helpers here.
pub const OUTCOME_BOUND: Duration = Duration::from_secs(60);

/// The path of the `shm-itest` child binary; usable in this crate's integration tests (Cargo
/// sets `CARGO_BIN_EXE_shm-itest` for them).
#[macro_export]
macro_rules! child_binary {
    () => {
        env!("CARGO_BIN_EXE_shm-itest")
    };
}

/// A builder for `program` (the [`child_binary!`]) in `role`, as a daemon so that a failing
/// test's children die with the test's thread.
pub fn child(program: &str, role: &str) -> ProcessBuilder {
    Process::builder(role).program(program).daemon(true)
}

/// Joins `p`, waiting at most [`OUTCOME_BOUND`]; past that, kills it and panics.
pub fn join_bounded(p: &mut Process) -> ExitStatus {
    match p.join_timeout(OUTCOME_BOUND).expect("join_timeout") {
        Some(status) => status,
        None => {
            let _ = p.kill();
            let _ = p.join();
            panic!(
                "child {} (role `{}`) still running after {OUTCOME_BOUND:?}",
                p.pid(),
                p.role()
            );
        }
    }
}

/// Kills `p` with `SIGKILL` and reaps it (bounded).
pub fn kill_and_join(p: &mut Process) -> ExitStatus {
    p.kill().expect("kill child");
    join_bounded(p)
}

/// Kills the watched processes if the test is still running after its bound, and aborts the
/// test binary if even that does not unblock it (iceoryx2's testing watchdog does the same
/// with a panic in a thread of its own). Dropping it at the end of the test stops it.
#[derive(Debug)]
pub struct Watchdog {
    watched: Arc<Mutex<Vec<Watched>>>,
    done: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A process the watchdog may kill: by identity (safe against pid reuse) or by bare pid.
#[derive(Debug, Clone, Copy)]
enum Watched {
    Id(ProcessId),
    Pid(u32),
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog::new()
    }
}

impl Watchdog {
    /// A watchdog with the bound [`HANG_BOUND`].
    pub fn new() -> Watchdog {
        Watchdog::with_bound(HANG_BOUND)
    }

    /// A watchdog with bound `hang`.
    pub fn with_bound(hang: Duration) -> Watchdog {
        let watched: Arc<Mutex<Vec<Watched>>> = Arc::default();
        let (done, wait) = mpsc::channel::<()>();
        let list = Arc::clone(&watched);
        let thread = std::thread::spawn(move || {
            if wait.recv_timeout(hang) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            eprintln!("watchdog: test still running after {hang:?}; killing its children");
            for w in list.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                match *w {
                    // The identity check keeps us from killing a process that reused the pid.
                    Watched::Id(id) if id.liveness() == Liveness::Alive => {
                        let _ = shm_core::sys::kill(id.pid(), shm_core::sys::SIGKILL);
                    }
                    Watched::Id(_) => {}
                    Watched::Pid(pid) => {
                        let _ = shm_core::sys::kill(pid, shm_core::sys::SIGKILL);
                    }
                }
            }
            if wait.recv_timeout(Duration::from_secs(20)) == Err(RecvTimeoutError::Timeout) {
                eprintln!("watchdog: test still hung after killing its children; aborting");
                std::process::abort();
            }
        });
        Watchdog {
            watched,
            done: Some(done),
            thread: Some(thread),
        }
    }

    /// A watchdog (bound [`HANG_BOUND`]) that watches `pids`.
    pub fn watching(pids: impl IntoIterator<Item = u32>) -> Watchdog {
        let w = Watchdog::new();
        for pid in pids {
            w.watch_pid(pid);
        }
        w
    }

    fn push(&self, w: Watched) {
        self.watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(w);
    }

    /// Watches the process with identity `id` (nothing for `None`).
    pub fn watch_id(&self, id: Option<ProcessId>) {
        if let Some(id) = id {
            self.push(Watched::Id(id));
        }
    }

    /// Watches `p`: by its identity if it has one, else by its pid.
    pub fn watch(&self, p: &Process) {
        match p.identity() {
            Some(id) => self.push(Watched::Id(id)),
            None => self.push(Watched::Pid(p.pid())),
        }
    }

    /// Watches the process `pid` (prefer [`watch`](Self::watch): a bare pid may be reused).
    pub fn watch_pid(&self, pid: u32) {
        match ProcessId::of(pid) {
            Some(id) => self.push(Watched::Id(id)),
            None => self.push(Watched::Pid(pid)),
        }
    }

    /// Starts `builder` and watches the child.
    pub fn start(&self, builder: ProcessBuilder) -> Process {
        let p = builder.start().expect("start child");
        self.watch(&p);
        p
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Unlinks a segment name on drop, ignoring errors (for segments whose creator is a child
/// that persisted or died, so that a failing test leaves nothing in /dev/shm).
#[derive(Debug)]
pub struct NameGuard(pub SegmentName);

impl NameGuard {
    /// A fresh unique name, guarded.
    pub fn unique() -> NameGuard {
        NameGuard(SegmentName::unique())
    }

    /// The guarded name.
    pub fn name(&self) -> &SegmentName {
        &self.0
    }
}

impl Drop for NameGuard {
    fn drop(&mut self) {
        let _ = Segment::unlink_name(&self.0);
    }
}
