//! Start the current executable again in a named role: Python's `Process`.
//!
//! Python's `spawn` start method runs the main module again in a fresh interpreter, and the
//! `if __name__ == "__main__":` guard keeps the child from doing what the parent does. Here the
//! parent re-executes its own binary (or another program) with a *role name* and string
//! arguments, typically the names of shared segments; the child's `main` calls
//! [`Roles::run`] first thing, which runs the function registered for that role and exits with
//! its code, and does nothing in a normal, top-level run.
//!
//! - The role travels in the environment variable [`ROLE_ENV`] (`SHM_IPC_ROLE`).
//! - The arguments travel in argv: the child's argv is `[program, args...]`, so
//!   [`role_args`] (or `std::env::args().skip(1)`) reads them.
//! - A [`Process`] is the parent's handle: [`join`](Process::join),
//!   [`join_timeout`](Process::join_timeout), [`is_alive`](Process::is_alive),
//!   [`exitcode`](Process::exitcode) (Python's convention: the exit code, or minus the signal
//!   number), [`terminate`](Process::terminate), [`kill`](Process::kill).
//! - A [daemon](ProcessBuilder::daemon) child dies with its parent.
//!
//! # Examples
//!
//! The whole program: the same binary is the parent (top-level run) and the child (role
//! `worker`).
//!
//! ```no_run
//! use shm_process::{Process, Roles};
//!
//! fn worker(args: &[String]) -> i32 {
//!     // Process 2: open the segments named in `args` and work on them.
//!     println!("worker got {args:?}");
//!     0
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     // In a child started in role "worker" this runs `worker` and exits; otherwise it returns.
//!     Roles::new().role("worker", worker).run();
//!
//!     // Process 1: create the segments, then start the child with their names.
//!     let mut child = Process::builder("worker").arg("segment-name").start()?;
//!     let status = child.join()?;
//!     assert!(status.success());
//!     Ok(())
//! }
//! ```
//!
//! # Platform
//!
//! Unix. Daemon children need `prctl(PR_SET_PDEATHSIG)` and are Linux (and Android) only:
//! elsewhere [`ProcessBuilder::start`] refuses them with [`io::ErrorKind::Unsupported`].

pub mod pool;
pub use pool::{AsyncResult, Pool, Registry, Task};

use shm_core::sys;
use shm_core::ProcessId;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The environment variable that carries the role name from parent to child.
///
/// Set by [`ProcessBuilder::start`] (it overrides a value given with
/// [`env`](ProcessBuilder::env)); read by [`current_role`]; removed from the child's environment
/// by [`Roles::run`] before the role function runs, so that programs the role starts in turn
/// (with [`std::process::Command`], say) do not inherit it and re-enter the role.
pub const ROLE_ENV: &str = "SHM_IPC_ROLE";

/// The exit code of a child started in a role that its program does not know
/// (see [`Roles::run`]).
pub const UNKNOWN_ROLE_EXIT_CODE: i32 = 2;

/// Longest sleep between two polls of [`Process::join_timeout`].
const MAX_POLL_SLEEP: Duration = Duration::from_millis(20);

/// Adds what was being done to an OS error, keeping its kind.
fn context(err: io::Error, what: impl fmt::Display) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

// ---------------------------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------------------------

/// Configures and starts a child [`Process`]; made by [`Process::builder`].
///
/// By default the child runs the current executable, inherits the environment, the working
/// directory and the three standard streams, and is not a daemon.
///
/// # Examples
///
/// ```no_run
/// use shm_process::Process;
/// use std::process::Stdio;
///
/// let mut child = Process::builder("consumer")
///     .args(["queue-7f3a", "counter-7f3a"])
///     .env("RUST_LOG", "debug")
///     .daemon(true)
///     .stdout(Stdio::null())
///     .start()?;
/// child.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "a ProcessBuilder does nothing until `start` is called"]
pub struct ProcessBuilder {
    role: String,
    args: Vec<String>,
    envs: Vec<(OsString, OsString)>,
    program: Option<PathBuf>,
    current_dir: Option<PathBuf>,
    daemon: bool,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

impl ProcessBuilder {
    /// Appends one argument; the child sees it in argv (see [`role_args`]).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments, in order.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child, on top of the inherited environment.
    ///
    /// [`ROLE_ENV`] cannot be set this way: the role given to [`Process::builder`] wins.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs `path` instead of the current executable.
    ///
    /// The program should dispatch on its role with [`Roles::run`] (it is usually another binary
    /// of the same project, such as a test helper).
    ///
    /// Without this, the child runs the very binary image the parent runs: on Linux it is
    /// started through `/proc/self/exe`, so that a binary replaced on disk since the parent
    /// started (an upgrade, a rebuild) cannot hand the child a different build, with perhaps a
    /// different segment layout. Its `argv[0]` is still [`std::env::current_exe`].
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// Sets the child's working directory (default: the parent's).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Makes the child a daemon: it dies when its parent dies (default `false`).
    ///
    /// A daemon child is started with `prctl(PR_SET_PDEATHSIG, SIGKILL)`, so the kernel kills
    /// it when the parent dies, however the parent dies (even by `SIGKILL`, where no destructor
    /// runs). If the parent died between the `fork` and the `prctl`, the child notices (its
    /// parent pid has changed) and exits at once with code 1 before running the program.
    /// Dropping the [`Process`] of a daemon that is still running also kills and reaps it.
    ///
    /// **The death signal follows the spawning thread**, not the parent process: the kernel
    /// sends it when the thread that called [`start`](Self::start) exits, even if the rest of
    /// the parent process goes on. Start daemon children from a thread that lives as long as
    /// they should (the main thread, typically).
    ///
    /// This differs from Python, which terminates daemon children from an `atexit` handler,
    /// and so not when the parent is killed.
    ///
    /// Linux and Android only; elsewhere [`start`](Self::start) returns
    /// [`io::ErrorKind::Unsupported`] for a daemon.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Sets the child's standard input (default: inherited).
    pub fn stdin(mut self, stdin: impl Into<Stdio>) -> Self {
        self.stdin = Some(stdin.into());
        self
    }

    /// Sets the child's standard output (default: inherited). With [`Stdio::piped`], take the
    /// reading end with [`Process::take_stdout`].
    pub fn stdout(mut self, stdout: impl Into<Stdio>) -> Self {
        self.stdout = Some(stdout.into());
        self
    }

    /// Sets the child's standard error (default: inherited).
    pub fn stderr(mut self, stderr: impl Into<Stdio>) -> Self {
        self.stderr = Some(stderr.into());
        self
    }

    /// Starts the child.
    ///
    /// # Errors
    ///
    /// - [`io::ErrorKind::InvalidInput`] if the role is empty or holds a NUL byte, or an
    ///   argument or environment entry holds a NUL byte;
    /// - [`io::ErrorKind::Unsupported`] for a [daemon](Self::daemon) outside Linux and Android;
    /// - the error of [`std::env::current_exe`] if the current executable cannot be found;
    /// - the error of `fork`/`exec` (the program does not exist, is not executable, …).
    ///
    /// Every error says which role and program it was about.
    pub fn start(self) -> io::Result<Process> {
        let ProcessBuilder {
            role,
            args,
            envs,
            program,
            current_dir,
            daemon,
            stdin,
            stdout,
            stderr,
        } = self;

        if role.is_empty() || role.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot start a process in role {role:?}: \
                     a role must be a non-empty string without NUL bytes"
                ),
            ));
        }

        let mut cmd = match &program {
            Some(path) => Command::new(path),
            None => sys::command_for_current_exe().map_err(|e| {
                context(
                    e,
                    format_args!("cannot start role `{role}`: cannot find the current executable"),
                )
            })?,
        };
        let shown_program = program.as_deref().map_or_else(
            || "the current executable".to_owned(),
            |p| p.display().to_string(),
        );

        cmd.args(&args);
        for (key, value) in &envs {
            cmd.env(key, value);
        }
        cmd.env(ROLE_ENV, &role);
        if let Some(dir) = &current_dir {
            cmd.current_dir(dir);
        }
        if let Some(s) = stdin {
            cmd.stdin(s);
        }
        if let Some(s) = stdout {
            cmd.stdout(s);
        }
        if let Some(s) = stderr {
            cmd.stderr(s);
        }
        if daemon {
            sys::set_parent_death_signal(&mut cmd).map_err(|e| {
                context(
                    e,
                    format_args!("cannot start role `{role}` ({shown_program}) as a daemon"),
                )
            })?;
        }

        let child = cmd.spawn().map_err(|e| {
            context(
                e,
                format_args!("cannot start role `{role}` ({shown_program})"),
            )
        })?;
        // The child is ours and not reaped, so its pid cannot have been reused yet. `None` if it
        // has already exited (a zombie) or /proc cannot be read.
        let identity = ProcessId::of(child.id());
        Ok(Process {
            child,
            role,
            daemon,
            identity,
            status: None,
        })
    }
}

/// A child process started in a role: Python's `multiprocessing.Process`.
///
/// Made by [`Process::builder`]. The handle is the only one that reaps the child: nothing else
/// in the parent should wait for it (in particular the parent must not set `SIGCHLD` to
/// `SIG_IGN`, which makes the kernel reap children on its own).
///
/// # Signals and pid reuse
///
/// [`signal`](Self::signal), [`terminate`](Self::terminate) and [`kill`](Self::kill) only
/// send a signal while the child has not been reaped: until then its pid cannot be reused.
/// Once a status has been collected they do nothing and return `Ok(())`, as Python does.
///
/// # Drop
///
/// - A daemon child that is still running is killed (`SIGKILL`) and reaped.
/// - A child that has finished is reaped, so it does not linger as a zombie.
/// - A non-daemon child that is still running is left running, and becomes a zombie when it
///   ends until the parent exits. Python joins non-daemon children at exit; here, call
///   [`join`](Self::join) explicitly when the parent must wait for them.
///
/// # Examples
///
/// ```no_run
/// use shm_process::Process;
/// use std::time::Duration;
///
/// let mut child = Process::builder("worker").daemon(true).start()?;
/// if child.join_timeout(Duration::from_secs(5))?.is_none() {
///     child.terminate()?;
///     child.join()?;
/// }
/// println!("worker ended with {:?}", child.exitcode()); // e.g. Some(-15)
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Process {
    child: std::process::Child,
    role: String,
    daemon: bool,
    identity: Option<ProcessId>,
    /// `Some` once the child has been reaped: from then on its pid may belong to another
    /// process and must not be signalled.
    status: Option<ExitStatus>,
}

impl Process {
    /// Starts configuring a child that runs in `role` (see [`ProcessBuilder`]).
    pub fn builder(role: impl Into<String>) -> ProcessBuilder {
        ProcessBuilder {
            role: role.into(),
            args: Vec::new(),
            envs: Vec::new(),
            program: None,
            current_dir: None,
            daemon: false,
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }

    /// The child's process id.
    ///
    /// Once the child has been reaped (a status was returned), the pid may be reused by an
    /// unrelated process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's (pid, start time) identity, taken right after it started; for recording in a
    /// segment, or checking liveness from elsewhere.
    ///
    /// `None` if the child had already exited by then, or `/proc` could not be read.
    pub fn identity(&self) -> Option<ProcessId> {
        self.identity
    }

    /// The role the child was started in.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Whether the child was started as a [daemon](ProcessBuilder::daemon).
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// Waits for the child to end and returns its status; a second call returns the same
    /// status at once.
    ///
    /// # Errors
    ///
    /// The error of `waitpid`, e.g. when something else in the parent has reaped the child.
    pub fn join(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self
            .child
            .wait()
            .map(ExitStatus)
            .map_err(|e| context(e, self.describe("cannot wait for")))?;
        self.status = Some(status);
        Ok(status)
    }

    /// Returns the child's status if it has ended, without blocking.
    ///
    /// # Errors
    ///
    /// As for [`join`](Self::join).
    pub fn try_join(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let status = ExitStatus(status);
                self.status = Some(status);
                Ok(Some(status))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(context(e, self.describe("cannot check on"))),
        }
    }

    /// Waits at most `timeout` for the child to end: `Ok(None)` if it is still running.
    ///
    /// Polls with `waitpid(WNOHANG)`, sleeping between polls (from 1 ms, doubling, up to
    /// 20 ms, and never past the deadline, which is on the monotonic clock). A timeout too large
    /// to represent waits without limit.
    ///
    /// # Errors
    ///
    /// As for [`join`](Self::join).
    pub fn join_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.join().map(Some);
        };
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.try_join()? {
                return Ok(Some(status));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(MAX_POLL_SLEEP);
        }
    }

    /// Whether the child is still running (Python's `is_alive`). Reaps it if it has ended.
    ///
    /// False also when its status cannot be read (see [`try_join`](Self::try_join)).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.try_join(), Ok(None))
    }

    /// The child's exit code with Python's convention, or `None` while it runs: the code it
    /// exited with, or minus the number of the signal that killed it (`-9` after
    /// [`kill`](Self::kill), `-15` after [`terminate`](Self::terminate)).
    ///
    /// Does not block; reaps the child if it has ended. See [`ExitStatus::exitcode`].
    pub fn exitcode(&mut self) -> Option<i32> {
        self.try_join().ok().flatten().map(|s| s.exitcode())
    }

    /// Sends `SIGTERM` (Python's `terminate`). Does nothing once the child has been reaped.
    ///
    /// # Errors
    ///
    /// As for [`signal`](Self::signal).
    pub fn terminate(&self) -> io::Result<()> {
        self.signal(sys::SIGTERM)
    }

    /// Sends `SIGKILL` (Python's `kill`). Does nothing once the child has been reaped.
    ///
    /// # Errors
    ///
    /// As for [`signal`](Self::signal).
    pub fn kill(&self) -> io::Result<()> {
        self.signal(sys::SIGKILL)
    }

    /// Sends signal `sig` (a signal number such as [`sys::SIGTERM`](shm_core::sys::SIGTERM); 0 only checks that the pid is still ours).
    ///
    /// Does nothing and returns `Ok(())` once the child has been reaped, since its pid may then
    /// belong to another process. A child that has ended but is not yet reaped (a zombie) can
    /// still be signalled, to no effect.
    ///
    /// # Errors
    ///
    /// The error of `kill(2)`: [`io::ErrorKind::InvalidInput`] for an invalid signal number,
    /// for instance.
    pub fn signal(&self, sig: i32) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        // The pid is our unreaped child (`status` is `None` and only this handle reaps it), so
        // it names that child and not a process that reused the pid.
        sys::kill(self.child.id(), sig).map_err(|err| {
            context(
                err,
                format_args!("{} with signal {sig}", self.describe("cannot signal")),
            )
        })?;
        Ok(())
    }

    /// Takes the writing end of the child's standard input, if it was [`Stdio::piped`].
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Takes the reading end of the child's standard output, if it was [`Stdio::piped`].
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Takes the reading end of the child's standard error, if it was [`Stdio::piped`].
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    fn describe(&self, what: &str) -> String {
        format!("{what} child {} (role `{}`)", self.child.id(), self.role)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        match self.try_join() {
            Ok(None) if self.daemon => {
                // Still ours and unreaped: safe to kill, then reap so no zombie remains.
                let _ = self.kill();
                let _ = self.child.wait();
            }
            // Finished (and now reaped), a running non-daemon (left running), or unknowable.
            _ => {}
        }
    }
}

/// How a child process ended: an exit code or a signal.
///
/// A thin wrapper over [`std::process::ExitStatus`] (convert with [`From`]) that adds
/// Python's single-number form, [`exitcode`](Self::exitcode).
///
/// # Examples
///
/// ```no_run
/// use shm_process::Process;
///
/// let mut child = Process::builder("worker").start()?;
/// child.kill()?;
/// let status = child.join()?;
/// assert_eq!(status.signal(), Some(9));
/// assert_eq!(status.exitcode(), -9);
/// assert_eq!(status.to_string(), "killed by signal 9 (SIGKILL)");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExitStatus(std::process::ExitStatus);

impl ExitStatus {
    /// Whether the child exited with code 0.
    pub fn success(&self) -> bool {
        self.0.success()
    }

    /// The exit code, if the child exited (rather than being killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.0.code()
    }

    /// The number of the signal that killed the child, if one did.
    pub fn signal(&self) -> Option<i32> {
        sys::exit_signal(&self.0)
    }

    /// Whether the child dumped core when a signal killed it.
    pub fn core_dumped(&self) -> bool {
        sys::exit_core_dumped(&self.0)
    }

    /// Python's `exitcode`: the exit code, or minus the signal number if a signal killed the
    /// child.
    ///
    /// A status from [`Process`] is always one or the other; a status that is neither (only
    /// possible for one converted from elsewhere, e.g. a stopped process) gives
    /// `i32::MIN`.
    pub fn exitcode(&self) -> i32 {
        match (self.code(), self.signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => -sig,
            (None, None) => i32::MIN,
        }
    }
}

impl From<std::process::ExitStatus> for ExitStatus {
    fn from(status: std::process::ExitStatus) -> Self {
        ExitStatus(status)
    }
}

impl From<ExitStatus> for std::process::ExitStatus {
    fn from(status: ExitStatus) -> Self {
        status.0
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code(), self.signal()) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(sig)) => {
                write!(f, "killed by signal {sig}")?;
                if let Some(name) = sys::signal_name(sig) {
                    write!(f, " ({name})")?;
                }
                if self.core_dumped() {
                    write!(f, ", core dumped")?;
                }
                Ok(())
            }
            (None, None) => write!(f, "{}", self.0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Child side
// ---------------------------------------------------------------------------------------------

/// The role read from [`ROLE_ENV`] at the first call, kept after [`Roles::run`] removes the
/// variable.
fn role_cell() -> &'static Option<String> {
    static ROLE: OnceLock<Option<String>> = OnceLock::new();
    ROLE.get_or_init(|| {
        std::env::var_os(ROLE_ENV)
            .filter(|role| !role.is_empty())
            .map(|role| role.to_string_lossy().into_owned())
    })
}

/// The role this process was started in, or `None` in a normal, top-level run.
///
/// Read from [`ROLE_ENV`] on the first call (an empty value counts as no role) and remembered,
/// so it stays available inside the role function after [`Roles::run`] has removed the
/// variable.
pub fn current_role() -> Option<String> {
    role_cell().clone()
}

/// The arguments given to this process, without the program name: `argv[1..]`.
///
/// In a child these are the [`arg`](ProcessBuilder::arg)s its parent gave. Arguments that are
/// not UTF-8 (which [`Process`] never passes) are converted lossily.
pub fn role_args() -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect()
}

/// The role function type: takes the [`role_args`], returns the process exit code.
type RoleFn = Box<dyn FnOnce(&[String]) -> i32>;

/// The child side's dispatcher: the counterpart of Python's `if __name__ == "__main__":`.
///
/// Register each role with [`role`](Self::role), then call [`run`](Self::run) first thing in
/// `main`:
///
/// - in a process started in a known role, `run` removes [`ROLE_ENV`] from the environment,
///   runs the role's function with [`role_args`], and exits the process with the code it
///   returns;
/// - in a process started in a role that is not registered, `run` prints a message naming the
///   role and the known ones to stderr and exits with code [`UNKNOWN_ROLE_EXIT_CODE`] (2);
/// - in a normal, top-level run, `run` returns and `main` goes on.
///
/// # Examples
///
/// ```no_run
/// use shm_process::Roles;
///
/// fn producer(args: &[String]) -> i32 {
///     println!("producing into {}", args[0]);
///     0
/// }
///
/// fn main() {
///     Roles::new()
///         .role("producer", producer)
///         .role("consumer", |args| if args.is_empty() { 1 } else { 0 })
///         .run();
///     // Top-level run only from here on.
/// }
/// ```
#[must_use = "a Roles does nothing until `run` is called"]
#[derive(Default)]
pub struct Roles {
    roles: Vec<(String, RoleFn)>,
}

impl Roles {
    /// No roles yet.
    pub fn new() -> Self {
        Roles::default()
    }

    /// Registers `f` for the role `name`; a later registration of the same name replaces an
    /// earlier one.
    pub fn role(
        mut self,
        name: impl Into<String>,
        f: impl FnOnce(&[String]) -> i32 + 'static,
    ) -> Self {
        let name = name.into();
        self.roles.retain(|(known, _)| *known != name);
        self.roles.push((name, Box::new(f)));
        self
    }

    /// Runs this process's role and exits, or returns in a top-level run (see [`Roles`]).
    ///
    /// Call it first thing in `main`, before starting threads: in a role it removes
    /// [`ROLE_ENV`] from the environment, which is only sound while no other thread reads the
    /// environment.
    ///
    /// The role function's exit code goes to [`std::process::exit`] after stdout and stderr are
    /// flushed; destructors of values still alive elsewhere do not run, so drop what needs
    /// dropping (segments to unlink, say) inside the role function. A panic in the role
    /// function unwinds out of `run` as from any other call in `main` (exit code 101 with the
    /// default panic handler).
    pub fn run(mut self) {
        let Some(role) = role_cell().as_deref() else {
            return;
        };
        // Keep the role from leaking into processes the role function starts with plain
        // `Command`s: a copy of this binary would otherwise re-enter the role. The role stays
        // readable through `current_role`. (Safe to call in edition 2021; in edition 2024 this
        // needs `unsafe` and the single-thread argument in the docs above.)
        std::env::remove_var(ROLE_ENV);

        match self.take(role) {
            Some(f) => {
                let code = f(&role_args());
                let _ = io::stdout().flush();
                let _ = io::stderr().flush();
                std::process::exit(code);
            }
            None => {
                eprintln!("{}", self.unknown_role_message(role));
                std::process::exit(UNKNOWN_ROLE_EXIT_CODE);
            }
        }
    }

    /// The role names registered so far, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.roles.iter().map(|(name, _)| name.as_str())
    }

    /// Takes the function registered for `role` out of `self`.
    fn take(&mut self, role: &str) -> Option<RoleFn> {
        let at = self.roles.iter().position(|(name, _)| name == role)?;
        Some(self.roles.swap_remove(at).1)
    }

    fn unknown_role_message(&self, role: &str) -> String {
        let program = std::env::args_os().next().map_or_else(
            || "this program".to_owned(),
            |p| p.to_string_lossy().into_owned(),
        );
        let known: Vec<&str> = self.names().collect();
        let known = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        format!(
            "{program}: started in unknown role {role:?} ({ROLE_ENV}={role}); known roles: {known}"
        )
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Roles")
            .field("roles", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn roles_take_and_replace() {
        let mut roles = Roles::new()
            .role("a", |_| 1)
            .role("b", |_| 2)
            .role("a", |args| args.len() as i32 + 10);
        assert_eq!(roles.names().collect::<Vec<_>>(), ["b", "a"]);
        assert!(roles.take("c").is_none());
        let f = roles.take("a").unwrap();
        assert_eq!(f(&["x".to_owned()]), 11);
        assert_eq!(format!("{roles:?}"), r#"Roles { roles: ["b"] }"#);
    }

    #[test]
    fn unknown_role_message_names_role_and_known_ones() {
        let msg = Roles::new()
            .role("x", |_| 0)
            .role("y", |_| 0)
            .unknown_role_message("zz");
        assert!(msg.contains("\"zz\""), "{msg}");
        assert!(msg.contains("known roles: x, y"), "{msg}");
        assert!(Roles::new()
            .unknown_role_message("q")
            .contains("known roles: none"));
    }

    #[test]
    fn exit_status_python_convention_and_display() {
        // Raw wait statuses: exit code in bits 8..16, signal in the low 7 bits, 0x80 core.
        let exited = ExitStatus::from(std::process::ExitStatus::from_raw(3 << 8));
        assert_eq!(
            (exited.code(), exited.signal(), exited.exitcode()),
            (Some(3), None, 3)
        );
        assert!(!exited.success());
        assert_eq!(exited.to_string(), "exit code 3");

        let killed = ExitStatus::from(std::process::ExitStatus::from_raw(libc::SIGKILL));
        assert_eq!(killed.exitcode(), -9);
        assert_eq!(killed.to_string(), "killed by signal 9 (SIGKILL)");

        let cored = ExitStatus::from(std::process::ExitStatus::from_raw(libc::SIGSEGV | 0x80));
        assert!(cored.core_dumped());
        assert_eq!(
            cored.to_string(),
            "killed by signal 11 (SIGSEGV), core dumped"
        );

        let ok = ExitStatus::from(std::process::ExitStatus::from_raw(0));
        assert!(ok.success());
        assert_eq!(std::process::ExitStatus::from(ok).code(), Some(0));
    }

    #[test]
    fn bad_role_names_are_refused() {
        for role in ["", "a\0b"] {
            let err = Process::builder(role).start().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn missing_program_error_has_context() {
        let err = Process::builder("r")
            .program("/nonexistent/shm-ipc-no-such-program")
            .start()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let msg = err.to_string();
        assert!(
            msg.contains("role `r`") && msg.contains("/nonexistent/"),
            "{msg}"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn signalling_after_reap_is_a_no_op() {
        let mut p = Process::builder("r").program("/bin/true").start().unwrap();
        assert!(p.join().unwrap().success());
        assert_eq!(p.exitcode(), Some(0));
        assert!(!p.is_alive());
        // The pid may already belong to someone else: nothing must be sent.
        p.kill().unwrap();
        p.terminate().unwrap();
        assert_eq!(p.join().unwrap().exitcode(), 0);
    }
}
