//! Thin safe wrappers over the process-management calls of the OS layer, for `shm-process`
//! (which, like every crate of the workspace but this one, makes no system call itself).
//!
//! Unix; the pidfd and the parent death signal are Linux only and fail with
//! [`io::ErrorKind::Unsupported`] elsewhere.

use crate::os;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Command, ExitStatus};
use std::time::Duration;

/// The number of `SIGKILL`.
pub const SIGKILL: i32 = os::SIGKILL;
/// The number of `SIGTERM`.
pub const SIGTERM: i32 = os::SIGTERM;

/// Sends signal `sig` to process `pid` (`kill(2)`; 0 only checks that it exists).
///
/// The caller makes sure `pid` still names the process it means (its own unreaped child, say).
///
/// # Errors
///
/// The error of `kill(2)` (`ESRCH`, `EPERM`, `EINVAL`), or `InvalidInput` for a pid out of
/// range.
pub fn kill(pid: u32, sig: i32) -> io::Result<()> {
    os::kill(pid, sig)
}

/// The parent's process id (`getppid(2)`).
pub fn parent_pid() -> u32 {
    os::parent_pid()
}

/// The name of a common signal (`"SIGKILL"` for 9), for messages.
pub fn signal_name(sig: i32) -> Option<&'static str> {
    os::signal_name(sig)
}

/// The signal that ended `status`, if one did.
pub fn exit_signal(status: &ExitStatus) -> Option<i32> {
    os::exit_signal(status).0
}

/// Whether the signal that ended `status` dumped core.
pub fn exit_core_dumped(status: &ExitStatus) -> bool {
    os::exit_signal(status).1
}

/// The status `waitpid` reports as `raw` (exit code in bits 8..16, signal in the low 7 bits).
pub fn exit_status_from_raw(raw: i32) -> ExitStatus {
    os::exit_status_from_raw(raw)
}

/// A [`Command`] that runs the binary image of the current process: on Linux through
/// `/proc/self/exe` (so a binary replaced on disk cannot hand a child another build), with
/// `argv[0]` set to [`std::env::current_exe`].
///
/// # Errors
///
/// The error of [`std::env::current_exe`].
pub fn command_for_current_exe() -> io::Result<Command> {
    os::command_for_current_exe()
}

/// Makes `cmd`'s child receive `SIGKILL` when the thread that spawns it dies
/// (`prctl(PR_SET_PDEATHSIG)` between fork and exec). If the parent died before that took
/// effect, the child exits at once with code 1.
///
/// # Errors
///
/// [`io::ErrorKind::Unsupported`] outside Linux and Android.
pub fn set_parent_death_signal(cmd: &mut Command) -> io::Result<()> {
    os::set_parent_death_signal(cmd)
}

/// Lets `cmd`'s child inherit the writing end of a pipe under the same descriptor number
/// (which is returned, for the child to be told). Keep `pipe` open until the child is
/// spawned, then drop it so that only the child holds it.
pub fn inherit_pipe(cmd: &mut Command, pipe: &std::io::PipeWriter) -> i32 {
    os::inherit_fd(cmd, pipe.as_fd())
}

/// In a child: takes the pipe its parent passed with [`inherit_pipe`] as descriptor `fd`, if
/// that descriptor is an open pipe (`None` otherwise), and marks it close-on-exec so that
/// this process's own children do not inherit it. Call it once per descriptor.
pub fn take_inherited_pipe(fd: i32) -> Option<std::io::PipeWriter> {
    os::take_inherited_pipe(fd)
}

/// Waits at most `timeout` (`None`: without limit) for `pipe` to have data or end-of-file;
/// `Ok(true)` if it has.
///
/// # Errors
///
/// The error of `poll(2)`.
pub fn pipe_readable(pipe: &std::io::PipeReader, timeout: Option<Duration>) -> io::Result<bool> {
    os::poll_readable(pipe.as_fd(), timeout)
}

/// A pidfd: a descriptor that refers to one process and becomes readable when it ends.
///
/// Unlike a pid, it cannot come to name another process after the one it was opened for
/// was reaped.
#[derive(Debug)]
pub struct PidFd(OwnedFd);

impl PidFd {
    /// Opens a pidfd for `pid` (`pidfd_open(2)`). Open it for an unreaped child, so that the
    /// pid cannot have been reused.
    ///
    /// # Errors
    ///
    /// The error of `pidfd_open` (`ESRCH`; `ENOSYS` before Linux 5.3);
    /// [`io::ErrorKind::Unsupported`] outside Linux.
    pub fn open(pid: u32) -> io::Result<PidFd> {
        os::pidfd_open(pid).map(PidFd)
    }

    /// Waits at most `timeout` (`None`: without limit) for the process to end, by polling the
    /// descriptor; `Ok(true)` once it has ended (the status is left for the parent to reap),
    /// `Ok(false)` if the time ran out. `Some(Duration::ZERO)` checks without waiting.
    ///
    /// # Errors
    ///
    /// The error of `poll(2)`.
    pub fn wait_ended(&self, timeout: Option<Duration>) -> io::Result<bool> {
        os::poll_readable(self.0.as_fd(), timeout)
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
