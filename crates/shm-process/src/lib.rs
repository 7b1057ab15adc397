//! # shm-process
//!
//! Start the current executable again in a named role: Python's `multiprocessing.Process`.
//!
//! Python's `spawn` start method runs the main module again in a fresh interpreter, and the
//! `if __name__ == "__main__":` guard keeps the child from doing what the parent does. Here the
//! parent re-executes its own binary with a *role name*; the child's `main` calls
//! [`Roles::run`] first thing, which runs the function registered for that role and exits, and
//! does nothing in a normal, top-level run.
//!
//! ## Items
//!
//! - [`Role<A>`]: a role name tied to the type of its argument. The parent starts a child with
//!   [`Role::builder`]`(&args)`; the child registers the role's function with
//!   [`Roles::register`] and receives `args: A`, decoded. Parent and child name the same
//!   `const`, so the argument type cannot disagree. Any serde value is an argument; a
//!   [`SegmentName`](shm_core::SegmentName) is one (shm-core's `serde` feature, on here), and
//!   [`Shared<K>`] is a name that knows its kind (`Shared<Lock>`), which the child
//!   [`open`](Shared::open)s.
//! - Role functions return `Result<(), E>` with `E: Display`: an `Err` is printed by the child
//!   (as Python prints a traceback) and ends it with exit code 1, and the parent reads the
//!   message with [`Process::error`].
//! - [`Process`]: the parent's handle, with Python's attributes: [`name`](Process::name),
//!   [`pid`](Process::pid), [`exitcode`](Process::exitcode), [`is_alive`](Process::is_alive)
//!   (`&self`), [`terminate`](Process::terminate), [`kill`](Process::kill),
//!   [`join`](Process::join) and [`join_timeout`](Process::join_timeout) (waiting on a pidfd).
//! - [daemon](ProcessBuilder::daemon) children die with their parent, even a `SIGKILL`ed one;
//!   a non-daemon child whose handle is dropped while it runs is reported on stderr and joined
//!   when the parent's role function returns ([`join_children`]).
//! - [`current_process`] (name, pid, parent pid, role) and [`cpu_count`].
//! - [`pool`]: Python's `Pool` over shared-memory queues: registered, typed tasks; `apply`,
//!   `map`, `starmap`, `imap` and their async forms; a killed worker fails only its task.
//! - The older string form stays for programs that pass plain argv: [`ProcessBuilder::arg`],
//!   [`Roles::role`] with `fn(&[String]) -> i32`, [`role_args`].
//!
//! ## Example
//!
//! The whole program: the same binary is the parent (top-level run) and the child (role
//! `worker`).
//!
//! ```no_run
//! use serde::{Deserialize, Serialize};
//! use shm_core::SegmentName;
//! use shm_process::{Process, Role, Roles};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Job {
//!     counter: SegmentName,
//!     rounds: u32,
//! }
//!
//! const WORKER: Role<Job> = Role::new("worker");
//!
//! // Process 2: the role function gets its arguments typed.
//! fn worker(job: Job) -> Result<(), Box<dyn std::error::Error>> {
//!     if job.rounds == 0 {
//!         return Err("nothing to do".into()); // printed by the child; exit code 1
//!     }
//!     println!("{} rounds on {}", job.rounds, job.counter);
//!     Ok(())
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // In a child started in role "worker" this runs `worker` and exits; otherwise it returns.
//!     Roles::new().register(WORKER, worker).run();
//!
//!     // Process 1: start the child with a typed argument.
//!     let job = Job { counter: SegmentName::unique(), rounds: 3 };
//!     let mut child = WORKER.builder(&job)?.start()?;
//!     let status = child.join()?;
//!     assert!(status.success(), "{}: {status} {:?}", child.name(), child.error());
//!     Ok(())
//! }
//! ```
//!
//! ## From Python
//!
//! | Python | here |
//! |---|---|
//! | `def f(q, n): ...` | `fn f((q, n): (Shared<SpscQueue<u64>>, u32)) -> Result<(), E>` |
//! | `if __name__ == "__main__":` | `Roles::new().register(F, f).run();` first in `main` |
//! | `Process(target=f, args=(q, n), name="w", daemon=True)` | `F.builder(&(q, n))?.name("w").daemon(true)` |
//! | `p.start()` | [`ProcessBuilder::start`] |
//! | `p.join()`, `p.join(5)` | [`Process::join`], [`Process::join_timeout`] |
//! | `p.is_alive()`, `p.exitcode`, `p.pid`, `p.name` | the methods of the same names |
//! | `p.terminate()`, `p.kill()` | [`Process::terminate`], [`Process::kill`] |
//! | the child's traceback | its stderr, and [`Process::error`] in the parent |
//! | `current_process().name`, `os.getppid()` | [`current_process`]`().name()`, `.parent_pid()` |
//! | `os.process_cpu_count()` | [`cpu_count`] |
//!
//! ## How it travels
//!
//! The role, the child's name, whether it is a daemon and the JSON of its argument go in
//! environment variables ([`ROLE_ENV`] and the `SHM_IPC_*` names next to it), which
//! [`Roles::run`] removes before the role function runs, so that processes the role starts in
//! turn do not inherit them. An argument's JSON is at most [`MAX_ARGS_LEN`] bytes (the kernel's
//! limit for one environment string); pass bigger data through a segment and send its name.
//! An error message comes back through a pipe the child inherits.
//!
//! ## Platform
//!
//! Linux (and Android): daemon children need `prctl(PR_SET_PDEATHSIG)`, and joins wait on a
//! pidfd (with a fallback to polling on kernels before 5.3).

#![deny(unsafe_op_in_unsafe_fn)]

mod current;
pub mod pool;
mod process;
mod role;
mod roles;
mod shared;

pub use current::{cpu_count, current_process, CurrentProcess};
pub use pool::{AsyncResult, Pool, Registry, Task};
pub use process::{join_children, ExitStatus, Process, ProcessBuilder};
pub use role::{ArgsError, Role, MAX_ARGS_LEN};
pub use roles::{
    current_role, role_args, Roles, BAD_ARGS_EXIT_CODE, ERROR_EXIT_CODE, ROLE_ENV,
    UNKNOWN_ROLE_EXIT_CODE,
};
pub use shared::{OpenByName, Shared};
