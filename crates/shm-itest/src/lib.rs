//! Support for shm-ipc's multi-process tests (not published).
//!
//! The tests in `tests/` start the `shm-itest` binary (`src/main.rs`) in named roles, each
//! registered by a module of [`roles`] under a prefix naming its crate (`lock.hold`,
//! `queue.spsc-produce`, ...). This library gives them:
//!
//! - [`Watchdog`]: kills a hung test's children and aborts the test binary;
//! - [`NameGuard`]: unlinks a segment name on drop (for segments a child created);
//! - [`SharedCounter`]: a `u64` in a segment that children bump to report progress;
//! - [`child`], [`start`], [`join_bounded`], [`join_within`], [`join_ok`], [`join_ok_within`],
//!   [`kill_and_join`]: start the child binary in a role and end it with bounded waits;
//! - [`output_within`], [`output_ok_within`], [`expect_line`], [`wait_ready`], [`next_line`],
//!   [`drain`]: read what a child prints on its
//!   piped stdout;
//! - [`eventually`]: poll a condition until it holds or a bound passes;
//! - [`child_binary!`]: the path of the child binary, for tests in this crate.
//!
//! No test asserts how long anything takes: bounds are generous and only catch hangs.

// The role modules were binaries: their docs link their private helpers.
#![allow(rustdoc::private_intra_doc_links)]

pub mod roles;

use shm_core::sync::atomic::AtomicU64;
use shm_core::{ElementLayout, Liveness, ObjectKind, ProcessId, Segment, SegmentName, TypeCode};
use shm_process::{ExitStatus, Process, ProcessBuilder};
use std::io::{BufRead, BufReader, Read};
use std::process::ChildStdout;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// Starts `program` (the [`child_binary!`]) in `role` with `args`, as [`child`] does; panics if
/// it cannot be started.
pub fn start(program: &str, role: &str, args: &[&str]) -> Process {
    child(program, role)
        .args(args.iter().copied())
        .start()
        .expect("start child")
}

/// Joins `p`, waiting at most [`OUTCOME_BOUND`]; past that, kills it and panics.
pub fn join_bounded(p: &mut Process) -> ExitStatus {
    join_within(p, OUTCOME_BOUND)
}

/// Joins `p`, waiting at most `bound`; past that, kills and reaps it and panics.
pub fn join_within(p: &mut Process, bound: Duration) -> ExitStatus {
    match p.join_timeout(bound).expect("join_timeout") {
        Some(status) => status,
        None => {
            let _ = p.kill();
            let _ = p.join();
            panic!(
                "child {} (role `{}`) still running after {bound:?}",
                p.pid(),
                p.role()
            );
        }
    }
}

/// Joins `p` (at most [`OUTCOME_BOUND`], as [`join_bounded`]) and asserts it exited successfully.
pub fn join_ok(p: &mut Process) {
    join_ok_within(p, OUTCOME_BOUND);
}

/// Joins `p` (at most `bound`, as [`join_within`]) and asserts it exited successfully.
pub fn join_ok_within(p: &mut Process, bound: Duration) {
    let status = join_within(p, bound);
    assert!(status.success(), "child {} failed: {status:?}", p.role());
}

/// Reads all of `p`'s piped stdout (nothing if it was not piped), then joins it within `bound`
/// (as [`join_within`]); returns its exit status and its output.
pub fn output_within(p: &mut Process, bound: Duration) -> (ExitStatus, String) {
    let mut out = String::new();
    if let Some(mut stdout) = p.take_stdout() {
        stdout.read_to_string(&mut out).expect("read child stdout");
    }
    (join_within(p, bound), out)
}

/// As [`output_within`], and asserts the child exited successfully; returns its output.
pub fn output_ok_within(p: &mut Process, bound: Duration) -> String {
    let (status, out) = output_within(p, bound);
    assert!(status.success(), "child {} failed: {status:?}", p.role());
    out
}

/// Takes `p`'s piped stdout and reads its first line, which must be `line` (surrounding
/// whitespace ignored); returns the reader for the rest of the output. Panics if the child's
/// stdout was not piped or it printed something else (or nothing) first.
pub fn expect_line(p: &mut Process, line: &str) -> BufReader<ChildStdout> {
    let out = p.take_stdout().expect("piped stdout");
    let mut reader = BufReader::new(out);
    let mut got = String::new();
    reader.read_line(&mut got).expect("read child line");
    assert_eq!(got.trim(), line, "child {} said {got:?}", p.role());
    reader
}

/// Waits until `p` prints `ready` as its first line on its piped stdout (see [`expect_line`]),
/// then closes the pipe (a child that prints more after `ready` must not rely on it).
pub fn wait_ready(p: &mut Process) {
    drop(expect_line(p, "ready"));
}

/// The next line a child prints (without the line end); empty at the end of its output.
pub fn next_line(out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    out.read_line(&mut line).expect("read child stdout");
    line.trim_end().to_owned()
}

/// Reads and discards the rest of a child's output in a background thread, so that the child
/// never blocks on a full pipe.
pub fn drain(mut out: BufReader<ChildStdout>) {
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
}

/// Polls `cond` (every few milliseconds) until it holds, or `bound` passes; returns whether it
/// held. Callers assert on the result, so a condition that never holds fails the test instead
/// of hanging it.
pub fn eventually(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
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

/// A shared `u64` counter for children to report progress through: a one-element `RawValue`
/// segment of typecode `Q` made by the test (the queue roles open it by name). The creating
/// handle unlinks it on drop.
#[derive(Debug)]
pub struct SharedCounter(Segment);

impl SharedCounter {
    /// Creates the counter segment `name` (value 0); panics if it cannot.
    pub fn create(name: &SegmentName) -> SharedCounter {
        let seg = Segment::builder(name, ObjectKind::RawValue)
            .layout(ElementLayout::of_typecode(TypeCode::ULongLong))
            .count(1)
            .body_len(8)
            .create(|_, _| {})
            .expect("create counter");
        SharedCounter(seg)
    }

    /// The counter.
    pub fn get(&self) -> &AtomicU64 {
        // SAFETY: the body is 8 bytes (made so in `create`), 128-byte aligned, lives as long
        // as `self.0`, and every process uses it only as one atomic u64.
        unsafe { &*self.0.body().as_ptr().cast::<AtomicU64>() }
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

    /// Guards `name`.
    pub fn new(name: SegmentName) -> NameGuard {
        NameGuard(name)
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
