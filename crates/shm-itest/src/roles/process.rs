//! Child roles (of the `shm-itest` binary) for the multi-process tests of `shm-process`
//! (`tests/process.rs`, `tests/process_typed.rs`). Not meant to be run by hand.
//!
//! Roles:
//!
//! - `exit CODE`: exits with `CODE`.
//! - `echo-args ARGS...`: prints each argument on a line of its own.
//! - `check-env NAME`: prints `role=…`, `role_env=…` and `NAME=…` (`unset` when absent).
//! - `sleep [SECONDS]`: sleeps (default 60 s), then exits 0.
//! - `ignore-term`: ignores `SIGTERM`, prints `ready`, sleeps 60 s.
//! - `spawn-daemon-grandchild wait|exit`: starts a daemon grandchild in role `sleep`, prints its
//!   pid, reads stdin to its end, then sleeps 60 s (`wait`) or exits without dropping the
//!   grandchild's handle (`exit`).
//! - `spawn-self`: starts `echo-argv0` from the default program (the current executable) and
//!   exits with its code.
//! - `echo-argv0`: prints `argv0=…` and `exe=…`.
//!
//! Typed roles (`Role<A>` consts below, used by `tests/process_typed.rs`): `typed-echo`,
//! `fail`, `panic`, `whoami`, `drop-non-daemon`, `set-event`,
//! `daemon-from-thread`.
//!
//! A top-level run of `shm-itest` prints `top-level run` and exits 0.

use serde::{Deserialize, Serialize};
use shm_core::SegmentName;
use shm_lock::Event;
use shm_process::{
    current_process, current_role, role_args, Process, Role, Roles, Shared, ROLE_ENV,
};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

/// Longest any role sleeps, so that a forgotten child cannot outlive a test run by much.
const LONG_SLEEP: Duration = Duration::from_secs(60);

fn exit_with(args: &[String]) -> i32 {
    match args.first().map(|a| a.parse::<i32>()) {
        Some(Ok(code)) => code,
        _ => {
            eprintln!("exit: expected an exit code, got {args:?}");
            100
        }
    }
}

fn echo_args(args: &[String]) -> i32 {
    for arg in args {
        println!("{arg}");
    }
    0
}

fn check_env(args: &[String]) -> i32 {
    let show = |v: Option<String>| v.unwrap_or_else(|| "unset".to_owned());
    println!("role={}", show(current_role()));
    println!("role_env={}", show(std::env::var(ROLE_ENV).ok()));
    for name in args {
        println!("{name}={}", show(std::env::var(name).ok()));
    }
    println!("args={:?}", role_args());
    0
}

fn sleep(args: &[String]) -> i32 {
    let secs = args.first().and_then(|a| a.parse().ok()).unwrap_or(60u64);
    std::thread::sleep(Duration::from_secs(secs).min(LONG_SLEEP));
    0
}

fn ignore_term(_: &[String]) -> i32 {
    // SAFETY: installing SIG_IGN for SIGTERM takes no handler function and is done before any
    // other thread exists in this process.
    let previous = unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    if previous == libc::SIG_ERR {
        eprintln!(
            "ignore-term: signal() failed: {}",
            std::io::Error::last_os_error()
        );
        return 1;
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    std::thread::sleep(LONG_SLEEP);
    0
}

fn spawn_daemon_grandchild(args: &[String]) -> i32 {
    let grandchild = match Process::builder("process.sleep")
        .arg("60")
        .daemon(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .start()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("spawn-daemon-grandchild: {e}");
            return 1;
        }
    };
    println!("{}", grandchild.pid());
    let _ = std::io::stdout().flush();
    // Wait for the parent's go-ahead: the end of stdin.
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    match args.first().map(String::as_str) {
        Some("exit") => {
            // Leave without the handle's Drop (which would kill the grandchild itself): only
            // the kernel's parent-death signal may end it.
            std::mem::forget(grandchild);
            0
        }
        _ => {
            std::thread::sleep(LONG_SLEEP);
            drop(grandchild);
            0
        }
    }
}

fn spawn_self(_: &[String]) -> i32 {
    match Process::builder("process.echo-argv0")
        .start()
        .and_then(|mut p| p.join())
    {
        Ok(status) => status.exitcode(),
        Err(e) => {
            eprintln!("spawn-self: {e}");
            1
        }
    }
}

fn echo_argv0(_: &[String]) -> i32 {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    println!("argv0={}", argv0.to_string_lossy());
    match std::env::current_exe() {
        Ok(exe) => println!("exe={}", exe.display()),
        Err(e) => println!("exe=error {e}"),
    }
    0
}

/// Registers this module's roles, each named `process.<role>`.
pub fn register(roles: Roles) -> Roles {
    roles
        .role("process.exit", exit_with)
        .role("process.echo-args", echo_args)
        .role("process.check-env", check_env)
        .role("process.sleep", sleep)
        .role("process.ignore-term", ignore_term)
        .role("process.spawn-daemon-grandchild", spawn_daemon_grandchild)
        .role("process.spawn-self", spawn_self)
        .role("process.echo-argv0", echo_argv0)
        .register(TYPED_ECHO, typed_echo)
        .register(FAIL, fail)
        .register(PANIC, panic)
        .register(WHOAMI, whoami)
        .register(DROP_NON_DAEMON, drop_non_daemon)
        .register(SET_EVENT, set_event)
        .register(DAEMON_FROM_THREAD, daemon_from_thread)
}

// ---------------------------------------------------------------------------------------------
// Typed roles (`Role<A>`): the tests name these consts, so parent and child agree on types.
// ---------------------------------------------------------------------------------------------

/// The argument of [`TYPED_ECHO`]: a segment name, a number and some strings.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Job {
    /// A segment name (checked again on arrival).
    pub segment: SegmentName,
    /// A number.
    pub n: u64,
    /// Strings, with awkward characters.
    pub words: Vec<String>,
}

/// Prints its argument back as JSON (one line), then `ok`.
pub const TYPED_ECHO: Role<Job> = Role::new("process.typed-echo");

fn typed_echo(job: Job) -> Result<(), Box<dyn std::error::Error>> {
    let json = serde_json::to_string(&job)?;
    println!("{json}");
    println!("ok");
    Ok(())
}

/// Fails with its argument as the error message.
pub const FAIL: Role<String> = Role::new("process.fail");

fn fail(message: String) -> Result<(), Box<dyn std::error::Error>> {
    Err(message.into())
}

/// Panics with its argument as the message.
pub const PANIC: Role<String> = Role::new("process.panic");

fn panic(message: String) -> Result<(), String> {
    panic!("{message}");
}

/// Prints `name=`, `pid=`, `ppid=`, `role=`, `daemon=` lines from `current_process()`.
pub const WHOAMI: Role<()> = Role::new("process.whoami");

fn whoami(_: ()) -> Result<(), String> {
    let me = current_process();
    println!("name={}", me.name());
    println!("pid={}", me.pid());
    println!("ppid={}", me.parent_pid());
    println!("role={}", me.role().unwrap_or("none"));
    println!("daemon={}", me.is_daemon());
    Ok(())
}

/// Starts a non-daemon grandchild in role `process.sleep` (60 s), prints its pid, drops its
/// handle while it runs, prints `returning` and returns: the role runner must then join the
/// grandchild before this process exits.
pub const DROP_NON_DAEMON: Role<()> = Role::new("process.drop-non-daemon");

fn drop_non_daemon(_: ()) -> Result<(), std::io::Error> {
    let grandchild = Process::builder("process.sleep")
        .arg("60")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .start()?;
    println!("{}", grandchild.pid());
    drop(grandchild);
    println!("returning");
    std::io::stdout().flush()?;
    Ok(())
}

/// Opens the event it is handed and sets it.
pub const SET_EVENT: Role<Shared<Event>> = Role::new("process.set-event");

fn set_event(event: Shared<Event>) -> Result<(), shm_core::OpenError> {
    event.open()?.set();
    Ok(())
}

/// Starts a daemon grandchild (`process.sleep 60`) from a thread that then ends, prints the
/// grandchild's pid once that thread has been joined, and sleeps (to be killed): the grandchild
/// must outlive the thread and die with this process.
pub const DAEMON_FROM_THREAD: Role<()> = Role::new("process.daemon-from-thread");

fn daemon_from_thread(_: ()) -> Result<(), Box<dyn std::error::Error>> {
    let grandchild = std::thread::spawn(|| {
        Process::builder("process.sleep")
            .arg("60")
            .daemon(true)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .start()
    })
    .join()
    .map_err(|_| "the starting thread panicked")??;
    println!("{}", grandchild.pid());
    std::io::stdout().flush()?;
    std::thread::sleep(LONG_SLEEP);
    drop(grandchild);
    Ok(())
}
