//! Process management calls (signals, parent death signal, pidfd), for `shm-process` through
//! [`crate::sys`].

use std::io;
use std::process::{Command, ExitStatus};
use std::time::Duration;

pub(crate) const SIGKILL: i32 = libc::SIGKILL;
pub(crate) const SIGTERM: i32 = libc::SIGTERM;

/// `kill(pid, sig)`.
pub(crate) fn kill(pid: u32, sig: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, sig) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `getppid()`.
pub(crate) fn parent_pid() -> u32 {
    // SAFETY: getppid has no preconditions and cannot fail.
    unsafe { libc::getppid() as u32 }
}

/// The signal that ended a status, if one did, and whether it dumped core.
pub(crate) fn exit_signal(status: &ExitStatus) -> (Option<i32>, bool) {
    use std::os::unix::process::ExitStatusExt;
    (status.signal(), status.core_dumped())
}

/// A status as `waitpid` would report it (for tests and conversions).
pub(crate) fn exit_status_from_raw(raw: i32) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(raw)
}

/// A command that runs the binary image of the current process (`/proc/self/exe` where it
/// exists, with `argv[0]` set to [`std::env::current_exe`]).
pub(crate) fn command_for_current_exe() -> io::Result<Command> {
    let exe = std::env::current_exe()?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::unix::process::CommandExt;
        let self_exe = std::path::Path::new("/proc/self/exe");
        if self_exe.exists() {
            let mut cmd = Command::new(self_exe);
            cmd.arg0(&exe);
            return Ok(cmd);
        }
    }
    Ok(Command::new(exe))
}

/// Makes the command's child receive `SIGKILL` when the spawning thread dies; a child whose
/// parent already died before the `prctl` took effect exits at once with code 1.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn set_parent_death_signal(cmd: &mut Command) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    // Captured before the fork: the pid the child must see as its parent.
    let parent = std::process::id() as libc::pid_t;
    let hook = move || -> io::Result<()> {
        // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a field of the calling (child) process; it
        // is async-signal-safe, allocates nothing and takes no lock held across fork.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        if rc == -1 {
            // `last_os_error` only reads errno: no allocation.
            return Err(io::Error::last_os_error());
        }
        // SAFETY: getppid has no preconditions and is async-signal-safe.
        let ppid = unsafe { libc::getppid() };
        if ppid != parent {
            // The parent died before the prctl above took effect, so no death signal will
            // come: leave now, as the signal would have made us.
            // SAFETY: _exit is async-signal-safe and ends this forked child without running
            // any of the parent's atexit handlers or destructors.
            unsafe { libc::_exit(1) };
        }
        Ok(())
    };
    // SAFETY: `pre_exec` runs `hook` in the forked child before exec, where only
    // async-signal-safe operations are allowed; `hook` calls only prctl, getppid and _exit
    // and builds an io::Error from errno, none of which allocates or takes a lock.
    unsafe { cmd.pre_exec(hook) };
    Ok(())
}

/// Daemon children need `PR_SET_PDEATHSIG`, which only Linux has.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn set_parent_death_signal(_cmd: &mut Command) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "daemon children need prctl(PR_SET_PDEATHSIG), which only Linux and Android have",
    ))
}

/// `pidfd_open(pid, 0)`.
#[cfg(target_os = "linux")]
pub(crate) fn pidfd_open(pid: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory
    // is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a descriptor the kernel just opened for us and nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// No pidfd outside Linux.
#[cfg(not(target_os = "linux"))]
pub(crate) fn pidfd_open(_pid: u32) -> io::Result<std::os::fd::OwnedFd> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "pidfd_open is Linux only",
    ))
}

/// Polls `fd` for readability for at most `timeout` (`None`: without limit); true if it
/// became readable (for a pidfd: the process ended). Retries on `EINTR` with the time left.
pub(crate) fn poll_readable(
    fd: std::os::fd::BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
    loop {
        let ms: libc::c_int = match deadline {
            // No timeout, or one too far to represent: no limit.
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                // Round up so that a short wait does not become a busy poll.
                let ms = left.as_nanos().div_ceil(1_000_000);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd that lives across the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 {
            return Ok(true);
        }
        if rc == 0 {
            // A wait longer than poll's millisecond range comes back early: go on until the
            // deadline really passed.
            match deadline {
                Some(d) if std::time::Instant::now() < d => continue,
                _ => return Ok(false),
            }
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The names of the common signals, for messages.
pub(crate) fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

/// Lets `cmd`'s child inherit `fd` under the same number (clears `FD_CLOEXEC` in the child
/// between fork and exec); returns that number.
pub(crate) fn inherit_fd(cmd: &mut Command, fd: std::os::fd::BorrowedFd<'_>) -> i32 {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    let hook = move || -> io::Result<()> {
        // SAFETY: fcntl(F_SETFD) on a descriptor of this (forked) process changes only its
        // flags; it is async-signal-safe and allocates nothing.
        if unsafe { libc::fcntl(raw, libc::F_SETFD, 0) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: `hook` runs between fork and exec and calls only fcntl (async-signal-safe); the
    // descriptor stays open in the parent until after the spawn, because the caller keeps
    // `fd` borrowed while it spawns.
    unsafe { cmd.pre_exec(hook) };
    raw
}

/// Takes ownership of descriptor `raw`, inherited from the parent, if it is an open pipe:
/// marks it close-on-exec again (so the process's own children do not inherit it).
pub(crate) fn take_inherited_pipe(raw: i32) -> Option<std::io::PipeWriter> {
    use std::os::fd::{FromRawFd, OwnedFd};
    if raw < 3 {
        return None;
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is writable storage for one `stat`; fstat on a closed descriptor fails
    // with EBADF and writes nothing.
    if unsafe { libc::fstat(raw, st.as_mut_ptr()) } == -1 {
        return None;
    }
    // SAFETY: fstat succeeded, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return None;
    }
    // SAFETY: fcntl(F_SETFD) only changes the flags of a descriptor we checked is open.
    if unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
        return None;
    }
    // SAFETY: the descriptor is open, is a pipe the parent passed to this process for this
    // purpose (named in an environment variable only the parent sets), and nothing else in
    // this process owns it: the caller takes it once.
    Some(std::io::PipeWriter::from(unsafe {
        OwnedFd::from_raw_fd(raw)
    }))
}
