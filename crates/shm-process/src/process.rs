//! The parent side: [`ProcessBuilder`], [`Process`], [`ExitStatus`], [`join_children`].

use crate::role::{encode, ArgsError};
use crate::roles::{ARGS_ENV, DAEMON_ENV, ERROR_FD_ENV, NAME_ENV, ROLE_ENV};
use serde::Serialize;
use shm_core::sys::{self, PidFd};
use shm_core::ProcessId;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Longest sleep between two polls of [`Process::join_timeout`] where there is no pidfd.
const MAX_POLL_SLEEP: Duration = Duration::from_millis(20);

/// Adds what was being done to an OS error, keeping its kind.
fn context(err: io::Error, what: impl fmt::Display) -> io::Error {
    io::Error::new(err.kind(), format!("{what}: {err}"))
}

/// Locks `m`, ignoring poison: every value behind these mutexes stays consistent across a
/// panic (they are set once or taken whole).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Configures and starts a child [`Process`]; made by [`Process::builder`] or
/// [`Role::builder`](crate::Role::builder).
///
/// By default the child runs the current executable, inherits the environment, the working
/// directory and the three standard streams, is named `<role>-<n>` and is not a daemon.
///
/// # Examples
///
/// ```no_run
/// use shm_process::Process;
/// use std::process::Stdio;
///
/// let mut child = Process::builder("consumer")
///     .typed_args(&("queue-7f3a", 10_u32))?
///     .name("consumer-A")
///     .env("RUST_LOG", "debug")
///     .daemon(true)
///     .stdout(Stdio::null())
///     .start()?;
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use = "a ProcessBuilder does nothing until `start` is called"]
pub struct ProcessBuilder {
    role: String,
    name: Option<String>,
    typed: Option<String>,
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
    /// Sends `value` to the child, which receives it typed through
    /// [`Roles::register`](crate::Roles::register) (prefer [`Role::builder`](crate::Role::builder),
    /// which checks the type at compile time). A later call replaces the value.
    ///
    /// # Errors
    ///
    /// [`ArgsError`] if `value` cannot be serialized or is longer than
    /// [`MAX_ARGS_LEN`](crate::MAX_ARGS_LEN) as JSON.
    pub fn typed_args<T: Serialize + ?Sized>(mut self, value: &T) -> Result<Self, ArgsError> {
        self.typed = Some(encode(value)?);
        Ok(self)
    }

    /// Names the child (Python's `name=`): [`Process::name`] in the parent,
    /// [`current_process`](crate::current_process)`().name()` in the child. Default
    /// `<role>-<n>`, `n` counting the children this process started.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Appends one string argument; the child sees it in argv (see
    /// [`role_args`](crate::role_args)). For typed values use [`typed_args`](Self::typed_args).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several string arguments, in order.
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
    /// [`ROLE_ENV`] and the other `SHM_IPC_*` variables this crate passes cannot be set this
    /// way: the builder's values win.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Runs `path` instead of the current executable.
    ///
    /// The program should dispatch on its role with [`Roles::run`](crate::Roles::run) (it is
    /// usually another binary of the same project, such as a test helper).
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
    /// The kernel ties that signal to the *thread* that forks the child, so daemons are
    /// forked from one thread of this crate that lives as long as the process: a daemon
    /// started from a short-lived thread still lives until the whole parent process ends.
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
    /// - [`io::ErrorKind::InvalidInput`] if the role is empty or holds a NUL byte, or the
    ///   name, an argument or an environment entry holds a NUL byte;
    /// - [`io::ErrorKind::Unsupported`] for a [daemon](Self::daemon) outside Linux and Android;
    /// - the error of [`std::env::current_exe`] if the current executable cannot be found;
    /// - the error of `pipe`, `fork` or `exec` (the program does not exist, is not
    ///   executable, …).
    ///
    /// Every error says which role and program it was about.
    pub fn start(self) -> io::Result<Process> {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let ProcessBuilder {
            role,
            name,
            typed,
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
        let n = STARTED.fetch_add(1, Ordering::Relaxed) + 1;
        let name = name.unwrap_or_else(|| format!("{role}-{n}"));
        if name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot start role `{role}`: the name {name:?} holds a NUL byte"),
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
        cmd.env(NAME_ENV, &name);
        cmd.env(DAEMON_ENV, if daemon { "1" } else { "0" });
        match &typed {
            Some(json) => cmd.env(ARGS_ENV, json),
            None => cmd.env_remove(ARGS_ENV),
        };
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
        // The channel for the child's error message: it inherits the writing end.
        let (error_reader, error_writer) = io::pipe().map_err(|e| {
            context(
                e,
                format_args!("cannot start role `{role}`: cannot make its error pipe"),
            )
        })?;
        let fd = sys::inherit_pipe(&mut cmd, &error_writer);
        cmd.env(ERROR_FD_ENV, fd.to_string());

        let spawned = if daemon {
            spawn_from_process_thread(cmd)
        } else {
            cmd.spawn()
        };
        let child = spawned.map_err(|e| {
            context(
                e,
                format_args!("cannot start role `{role}` ({shown_program})"),
            )
        })?;
        // Only the child holds the writing end now: its exit ends the pipe.
        drop(error_writer);
        let pid = child.id();
        // The child is ours and not reaped, so its pid cannot have been reused yet. `None` if it
        // has already exited (a zombie) or /proc cannot be read; no pidfd before Linux 5.3.
        let identity = ProcessId::of(pid);
        let pidfd = PidFd::open(pid).ok();
        Ok(Process {
            child: Mutex::new(Some(child)),
            status: OnceLock::new(),
            pidfd,
            error_pipe: Mutex::new(Some(error_reader)),
            error: OnceLock::new(),
            name,
            role,
            daemon,
            identity,
            pid,
        })
    }
}

/// A child process started in a role: Python's `multiprocessing.Process`.
///
/// Made by [`Process::builder`] or [`Role::builder`](crate::Role::builder). The handle is the
/// only one that reaps the child (nothing else in the parent may wait for its pid), so it
/// never signals a pid that another process may have taken since.
///
/// | Python | here |
/// |---|---|
/// | `p.name`, `p.pid`, `p.daemon` | [`name`](Self::name), [`pid`](Self::pid), [`is_daemon`](Self::is_daemon) |
/// | `p.is_alive()` | [`is_alive`](Self::is_alive) (`&self`) |
/// | `p.exitcode` | [`exitcode`](Self::exitcode) (`&self`): code, or minus the signal |
/// | `p.join()`, `p.join(timeout)` | [`join`](Self::join), [`join_timeout`](Self::join_timeout) |
/// | `p.terminate()`, `p.kill()` | [`terminate`](Self::terminate), [`kill`](Self::kill) |
/// | the child's traceback | [`error`](Self::error) |
///
/// Dropping the handle of a running child: a daemon is killed and reaped; a non-daemon is left
/// running, reported on stderr, and joined by [`join_children`] (which
/// [`Roles::run`](crate::Roles::run) calls when the role function returns).
///
/// # Examples
///
/// ```no_run
/// use shm_process::Process;
/// use std::time::Duration;
///
/// let mut child = Process::builder("worker").daemon(true).start()?;
/// assert!(child.is_alive());
/// if child.join_timeout(Duration::from_secs(5))?.is_none() {
///     child.terminate()?;
///     child.join()?;
/// }
/// println!("{} ended with {:?}", child.name(), child.exitcode()); // e.g. Some(-15)
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Process {
    /// `None` only once `Drop` handed a running non-daemon child to [`join_children`].
    child: Mutex<Option<Child>>,
    /// Set once the child has been reaped (under the `child` lock or with `&mut self`): from
    /// then on its pid may belong to another process and must not be signalled.
    status: OnceLock<ExitStatus>,
    /// Readable once the child has ended; `None` before Linux 5.3 (then joins poll).
    pidfd: Option<PidFd>,
    error_pipe: Mutex<Option<io::PipeReader>>,
    error: OnceLock<Option<String>>,
    name: String,
    role: String,
    daemon: bool,
    identity: Option<ProcessId>,
    pid: u32,
}

impl Process {
    /// Starts configuring a child that runs in `role` (see [`ProcessBuilder`]). For a typed
    /// argument checked at compile time, use [`Role::builder`](crate::Role::builder).
    pub fn builder(role: impl Into<String>) -> ProcessBuilder {
        ProcessBuilder {
            role: role.into(),
            name: None,
            typed: None,
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

    /// The child's name (Python's `name`): the one given to [`ProcessBuilder::name`], or
    /// `<role>-<n>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id.
    ///
    /// Once the child has been reaped (a status was returned), the pid may be reused by an
    /// unrelated process.
    pub fn pid(&self) -> u32 {
        self.pid
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

    /// Checks without blocking whether the child has ended, reaping it (under the lock) if so.
    fn poll(&self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status.get() {
            return Ok(Some(*status));
        }
        let mut child = lock(&self.child);
        if let Some(status) = self.status.get() {
            return Ok(Some(*status));
        }
        let Some(child) = child.as_mut() else {
            return Ok(None);
        };
        match child.try_wait() {
            Ok(Some(status)) => Ok(Some(*self.status.get_or_init(|| ExitStatus(status)))),
            Ok(None) => Ok(None),
            Err(e) => Err(context(e, self.describe("cannot check on"))),
        }
    }

    /// Waits for the child to end and returns its status; a second call returns the same
    /// status at once.
    ///
    /// Waits on the child's pidfd (Linux 5.3+), then reaps it.
    ///
    /// # Errors
    ///
    /// The error of `poll` or `waitpid`, e.g. when something else in the parent has reaped the
    /// child.
    pub fn join(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status.get() {
            return Ok(*status);
        }
        if let Some(fd) = &self.pidfd {
            fd.wait_ended(None)
                .map_err(|e| context(e, self.describe("cannot wait for")))?;
        }
        let what = self.describe("cannot wait for");
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let Some(child) = child.as_mut() else {
            return Err(io::Error::other(what));
        };
        let status = child.wait().map(ExitStatus).map_err(|e| context(e, what))?;
        Ok(*self.status.get_or_init(|| status))
    }

    /// Returns the child's status if it has ended, without blocking.
    ///
    /// # Errors
    ///
    /// As for [`join`](Self::join).
    pub fn try_join(&mut self) -> io::Result<Option<ExitStatus>> {
        self.poll()
    }

    /// Waits at most `timeout` for the child to end: `Ok(None)` if it is still running.
    ///
    /// Sleeps in `poll(2)` on the child's pidfd, so it returns as soon as the child ends; on
    /// kernels without pidfds (before 5.3) it polls `waitpid(WNOHANG)` instead, sleeping from
    /// 1 ms, doubling, up to 20 ms. The deadline is on the monotonic clock; a timeout too large
    /// to represent waits without limit.
    ///
    /// # Errors
    ///
    /// As for [`join`](Self::join).
    pub fn join_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status.get() {
            return Ok(Some(*status));
        }
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return self.join().map(Some);
        };
        if let Some(fd) = &self.pidfd {
            let ended = fd
                .wait_ended(Some(timeout))
                .map_err(|e| context(e, self.describe("cannot wait for")))?;
            return if ended { self.poll() } else { Ok(None) };
        }
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.poll()? {
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

    /// Whether the child is still running (Python's `is_alive`).
    ///
    /// Takes `&self` and never blocks. A child that has ended is reaped here, as Python's
    /// `is_alive` does; its status stays available from [`exitcode`](Self::exitcode) and
    /// [`join`](Self::join). False also when its status cannot be read.
    pub fn is_alive(&self) -> bool {
        matches!(self.poll(), Ok(None))
    }

    /// The child's exit code with Python's convention, or `None` while it runs: the code it
    /// exited with, or minus the number of the signal that killed it (`-9` after
    /// [`kill`](Self::kill), `-15` after [`terminate`](Self::terminate)).
    ///
    /// Does not block; reaps the child if it has ended. See [`ExitStatus::exitcode`].
    pub fn exitcode(&self) -> Option<i32> {
        self.poll().ok().flatten().map(|s| s.exitcode())
    }

    /// The message the child's role function failed with, once the child has ended: the
    /// `Err` it returned, a panic's message (`"panicked: ..."`), an unknown role or an argument
    /// that did not decode. `None` while the child runs, after a success, or when it was
    /// killed before it could say anything.
    ///
    /// The child also printed it to its stderr, with its name, role and pid.
    pub fn error(&self) -> Option<&str> {
        if self.status.get().is_none() && !matches!(self.poll(), Ok(Some(_))) {
            return None;
        }
        self.error
            .get_or_init(|| {
                let mut pipe = lock(&self.error_pipe).take()?;
                let mut message = Vec::new();
                let mut buf = [0u8; 4096];
                // Read only what is there: a grandchild may still hold the writing end.
                while matches!(sys::pipe_readable(&pipe, Some(Duration::ZERO)), Ok(true)) {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => message.extend_from_slice(&buf[..n]),
                    }
                }
                (!message.is_empty()).then(|| String::from_utf8_lossy(&message).into_owned())
            })
            .as_deref()
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

    /// Sends signal `sig` (a number such as [`sys::SIGTERM`](shm_core::sys::SIGTERM); 0 only
    /// checks that the pid is still ours).
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
        // Reaping happens under this lock (or with `&mut self`), so the child cannot be reaped
        // between the check and the kill.
        let child = lock(&self.child);
        if self.status.get().is_some() || child.is_none() {
            return Ok(());
        }
        // The pid is our unreaped child, so it names that child and not a process that reused
        // the pid.
        sys::kill(self.pid, sig).map_err(|err| {
            context(
                err,
                format_args!("{} with signal {sig}", self.describe("cannot signal")),
            )
        })
    }

    fn child_mut(&mut self) -> Option<&mut Child> {
        self.child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
    }

    /// Takes the writing end of the child's standard input, if it was [`Stdio::piped`].
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child_mut()?.stdin.take()
    }

    /// Takes the reading end of the child's standard output, if it was [`Stdio::piped`].
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child_mut()?.stdout.take()
    }

    /// Takes the reading end of the child's standard error, if it was [`Stdio::piped`].
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child_mut()?.stderr.take()
    }

    fn describe(&self, what: &str) -> String {
        format!(
            "{what} child {} `{}` (role `{}`)",
            self.pid, self.name, self.role
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !matches!(self.poll(), Ok(None)) {
            // Ended (and now reaped), or unknowable: nothing to do.
            return;
        }
        let Some(mut child) = self
            .child
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        if self.daemon {
            // Still ours and unreaped: safe to kill, then reap so no zombie remains.
            let _ = sys::kill(self.pid, sys::SIGKILL);
            let _ = child.wait();
            return;
        }
        let when = if crate::roles::startup().role.is_some() {
            "when this process's role function returns"
        } else {
            "only if this program calls shm_process::join_children() before it exits"
        };
        eprintln!(
            "shm-process: warning: process `{}` (pid {}, role `{}`) dropped while still running; \
             it was neither joined nor a daemon. It keeps running, and is joined {when}.",
            self.name, self.pid, self.role
        );
        lock(&ORPHANS).push(Orphan {
            name: std::mem::take(&mut self.name),
            child,
        });
    }
}

// A handle may be shared with (or sent to) a thread that watches the child.
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Process>();
    send_and_sync::<ProcessBuilder>();
};

/// A spawn request for [`spawn_from_process_thread`] and where its answer goes.
type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from a thread that lives as long as the process.
///
/// `PR_SET_PDEATHSIG` fires when the thread that forked the child exits, not when the process
/// does; a daemon started from a worker thread would otherwise die with that thread. If the
/// thread cannot be started, spawns from the calling thread.
fn spawn_from_process_thread(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("shm-process-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in queue {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| jobs)
    });
    let Some(jobs) = spawner else {
        let mut cmd = cmd;
        return cmd.spawn();
    };
    let (reply, answer) = mpsc::channel();
    jobs.send((cmd, reply))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// A non-daemon child whose handle was dropped while it ran.
struct Orphan {
    name: String,
    child: Child,
}

static ORPHANS: Mutex<Vec<Orphan>> = Mutex::new(Vec::new());

/// Joins every non-daemon child whose [`Process`] was dropped while it still ran, waiting as
/// long as they run (Python joins non-daemon children at exit); returns how many it joined.
///
/// [`Roles::run`](crate::Roles::run) calls it when a role function returns, so a child's own
/// non-daemon children are joined before it exits. A top-level `main` that drops running
/// children should call it before returning.
pub fn join_children() -> usize {
    let orphans = std::mem::take(&mut *lock(&ORPHANS));
    let n = orphans.len();
    for mut orphan in orphans {
        if let Err(e) = orphan.child.wait() {
            eprintln!(
                "shm-process: cannot join process `{}` (pid {}): {e}",
                orphan.name,
                orphan.child.id()
            );
        }
    }
    n
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_python_convention_and_display() {
        // Raw wait statuses: exit code in bits 8..16, signal in the low 7 bits, 0x80 core.
        let exited = ExitStatus::from(sys::exit_status_from_raw(3 << 8));
        assert_eq!(
            (exited.code(), exited.signal(), exited.exitcode()),
            (Some(3), None, 3)
        );
        assert!(!exited.success());
        assert_eq!(exited.to_string(), "exit code 3");

        let killed = ExitStatus::from(sys::exit_status_from_raw(sys::SIGKILL));
        assert_eq!(killed.exitcode(), -9);
        assert_eq!(killed.to_string(), "killed by signal 9 (SIGKILL)");

        // 11 is SIGSEGV on Linux; 0x80 is the "core dumped" bit of a wait status.
        let cored = ExitStatus::from(sys::exit_status_from_raw(11 | 0x80));
        assert!(cored.core_dumped());
        assert_eq!(
            cored.to_string(),
            "killed by signal 11 (SIGSEGV), core dumped"
        );

        let ok = ExitStatus::from(sys::exit_status_from_raw(0));
        assert!(ok.success());
        assert_eq!(std::process::ExitStatus::from(ok).code(), Some(0));
    }

    #[test]
    fn bad_role_and_process_names_are_refused() {
        for role in ["", "a\0b"] {
            let err = Process::builder(role).start().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
        let err = Process::builder("r").name("x\0").start().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
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
        assert_eq!(p.error(), None);
        // The pid may already belong to someone else: nothing must be sent.
        p.kill().unwrap();
        p.terminate().unwrap();
        assert_eq!(p.join().unwrap().exitcode(), 0);
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn default_names_count_and_given_names_stick() {
        let mut a = Process::builder("r").program("/bin/true").start().unwrap();
        let mut b = Process::builder("r")
            .name("mine")
            .program("/bin/true")
            .start()
            .unwrap();
        let n: u64 = a.name().strip_prefix("r-").unwrap().parse().unwrap();
        assert!(n >= 1);
        assert_eq!(b.name(), "mine");
        a.join().unwrap();
        b.join().unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls the OS")]
    fn is_alive_and_exitcode_take_shared_references() {
        let p = Process::builder("r")
            .program("/bin/sleep")
            .arg("30")
            .start()
            .unwrap();
        let shared = &p;
        assert!(shared.is_alive());
        assert_eq!(shared.exitcode(), None);
        assert_eq!(shared.error(), None);
        shared.kill().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while shared.is_alive() {
            assert!(Instant::now() < deadline, "killed child still alive");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(shared.exitcode(), Some(-9));
    }
}
