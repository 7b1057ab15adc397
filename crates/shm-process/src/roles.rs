//! The child side: [`Roles`], the dispatcher a program's `main` calls first.

use crate::role::{decode, Role};
use serde::de::DeserializeOwned;
use shm_core::sys;
use std::fmt;
use std::io::{self, Write};
use std::sync::{Mutex, OnceLock};

/// The environment variable that carries the role name from parent to child.
///
/// Set by [`ProcessBuilder::start`](crate::ProcessBuilder::start) (it overrides a value given
/// with [`env`](crate::ProcessBuilder::env)); read by [`current_role`]; removed from the
/// child's environment by [`Roles::run`] before the role function runs, so that programs the
/// role starts in turn (with [`std::process::Command`], say) do not inherit it and re-enter
/// the role.
pub const ROLE_ENV: &str = "SHM_IPC_ROLE";
/// The JSON of the typed argument ([`Role::builder`]).
pub(crate) const ARGS_ENV: &str = "SHM_IPC_ARGS";
/// The child's [`name`](crate::ProcessBuilder::name).
pub(crate) const NAME_ENV: &str = "SHM_IPC_NAME";
/// `1` for a daemon child.
pub(crate) const DAEMON_ENV: &str = "SHM_IPC_DAEMON";
/// The descriptor number of the pipe that carries the error message back.
pub(crate) const ERROR_FD_ENV: &str = "SHM_IPC_ERROR_FD";

/// The exit code of a child started in a role that its program does not know
/// (see [`Roles::run`]).
pub const UNKNOWN_ROLE_EXIT_CODE: i32 = 2;

/// The exit code of a child whose argument does not decode as its role's type (a parent and a
/// child built from different sources, or a role name reused with another type).
pub const BAD_ARGS_EXIT_CODE: i32 = 3;

/// The exit code of a child whose role function returned `Err` (Python's exit code for an
/// uncaught exception).
pub const ERROR_EXIT_CODE: i32 = 1;

/// Longest error message sent back to the parent, in bytes (less than `PIPE_BUF`, so the
/// write is atomic and never blocks).
const MAX_ERROR_LEN: usize = 4000;

/// What the parent handed this process, read from the environment once.
#[derive(Debug)]
pub(crate) struct Startup {
    pub(crate) role: Option<String>,
    pub(crate) args: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) daemon: bool,
    error_fd: Option<i32>,
}

/// The [`Startup`] of this process: read on the first call, kept after [`Roles::run`] removes
/// the variables.
pub(crate) fn startup() -> &'static Startup {
    static STARTUP: OnceLock<Startup> = OnceLock::new();
    STARTUP.get_or_init(|| {
        let var = |key: &str| {
            std::env::var_os(key)
                .filter(|v| !v.is_empty())
                .map(|v| v.to_string_lossy().into_owned())
        };
        let role = var(ROLE_ENV);
        let in_role = role.is_some();
        Startup {
            role,
            args: var(ARGS_ENV).filter(|_| in_role),
            name: var(NAME_ENV).filter(|_| in_role),
            daemon: in_role && var(DAEMON_ENV).as_deref() == Some("1"),
            error_fd: var(ERROR_FD_ENV)
                .filter(|_| in_role)
                .and_then(|fd| fd.parse().ok()),
        }
    })
}

/// The pipe to the parent for the error message, once [`Roles::run`] has taken it.
static ERROR_PIPE: Mutex<Option<io::PipeWriter>> = Mutex::new(None);

/// Prints why this role failed (as Python prints a traceback) and sends `message` to the
/// parent ([`Process::error`](crate::Process::error)); only the first message is sent.
pub(crate) fn report_failure(message: &str) {
    let me = startup();
    eprintln!(
        "Process {} (role `{}`, pid {}) failed: {message}",
        me.name.as_deref().unwrap_or("?"),
        me.role.as_deref().unwrap_or("?"),
        std::process::id()
    );
    let mut pipe = ERROR_PIPE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mut w) = pipe.take() {
        let mut end = message.len().min(MAX_ERROR_LEN);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let _ = w.write_all(&message.as_bytes()[..end]);
    }
}

/// The role this process was started in, or `None` in a normal, top-level run.
///
/// Read from [`ROLE_ENV`] on the first call (an empty value counts as no role) and remembered,
/// so it stays available inside the role function after [`Roles::run`] has removed the
/// variable.
pub fn current_role() -> Option<String> {
    startup().role.clone()
}

/// The string arguments given to this process, without the program name: `argv[1..]`.
///
/// In a child these are the [`arg`](crate::ProcessBuilder::arg)s its parent gave. Arguments
/// that are not UTF-8 (which [`Process`](crate::Process) never passes) are converted lossily.
pub fn role_args() -> Vec<String> {
    std::env::args_os()
        .skip(1)
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect()
}

/// A registered role: runs it and returns the exit code (having reported any failure).
pub(crate) type RoleFn = Box<dyn FnOnce() -> i32>;

/// The child side's dispatcher: the counterpart of Python's `if __name__ == "__main__":`.
///
/// Register each role with [`register`](Self::register) (typed) or [`role`](Self::role)
/// (string argv), then call [`run`](Self::run) first thing in `main`:
///
/// - in a process started in a known role, `run` removes the `SHM_IPC_*` variables from the
///   environment, runs the role's function, joins the non-daemon children it left running
///   ([`join_children`](crate::join_children)), and exits the process;
/// - in a process started in a role that is not registered, `run` prints a message naming the
///   role and the known ones to stderr and exits with code [`UNKNOWN_ROLE_EXIT_CODE`] (2);
/// - in a normal, top-level run, `run` returns and `main` goes on.
///
/// Exit codes of a typed role: 0 for `Ok`, [`ERROR_EXIT_CODE`] (1) for `Err` (the message is
/// printed to stderr and sent to the parent), [`BAD_ARGS_EXIT_CODE`] (3) if the argument does
/// not decode, 101 for a panic (its message is sent to the parent too).
///
/// # Examples
///
/// ```no_run
/// use shm_process::{Role, Roles};
///
/// const PRODUCER: Role<String> = Role::new("producer");
///
/// fn producer(queue: String) -> Result<(), std::io::Error> {
///     println!("producing into {queue}");
///     Ok(())
/// }
///
/// fn main() {
///     Roles::new()
///         .register(PRODUCER, producer)
///         .role("legacy", |args| if args.is_empty() { 1 } else { 0 })
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

    /// Registers `f` for `role`: in a child started with [`Role::builder`]`(&args)`, `f`
    /// receives `args` decoded as `A`.
    ///
    /// `f` returns `Ok(())` (exit code 0) or an error, which the child prints to stderr with
    /// its name, role and pid, sends to the parent ([`Process::error`](crate::Process::error))
    /// and exits with [`ERROR_EXIT_CODE`]. A later registration of the same name replaces an
    /// earlier one.
    pub fn register<A, E, F>(self, role: Role<A>, f: F) -> Self
    where
        A: DeserializeOwned + 'static,
        E: fmt::Display,
        F: FnOnce(A) -> Result<(), E> + 'static,
    {
        self.register_raw(
            role.name(),
            Box::new(move || match decode::<A>(startup().args.as_deref()) {
                Err(message) => {
                    report_failure(&message);
                    BAD_ARGS_EXIT_CODE
                }
                Ok(args) => match f(args) {
                    Ok(()) => 0,
                    Err(e) => {
                        // `{:#}`: error types that keep a chain (anyhow) print all of it.
                        report_failure(&format!("{e:#}"));
                        ERROR_EXIT_CODE
                    }
                },
            }),
        )
    }

    /// Registers `f` for the role `name` in the string form: `f` gets the child's
    /// [`role_args`] and returns its exit code. A later registration of the same name replaces
    /// an earlier one.
    pub fn role(self, name: impl Into<String>, f: impl FnOnce(&[String]) -> i32 + 'static) -> Self {
        self.register_raw(name, Box::new(move || f(&role_args())))
    }

    /// Registers a role function that reports its own failures (for roles built in this crate,
    /// such as the pool's worker).
    pub(crate) fn register_raw(mut self, name: impl Into<String>, f: RoleFn) -> Self {
        let name = name.into();
        self.roles.retain(|(known, _)| *known != name);
        self.roles.push((name, f));
        self
    }

    /// Runs this process's role and exits, or returns in a top-level run (see [`Roles`]).
    ///
    /// Call it first thing in `main`, before starting threads: in a role it removes variables
    /// from the environment, which is only sound while no other thread reads the environment.
    ///
    /// The exit code goes to [`std::process::exit`] after stdout and stderr are flushed;
    /// destructors of values still alive elsewhere do not run, so drop what needs dropping
    /// (segments to unlink, say) inside the role function. A panic in the role function is
    /// caught: its message (already printed by the panic hook) goes to the parent, and the
    /// child exits with code 101, as an uncaught panic would.
    pub fn run(mut self) {
        let me = startup();
        let Some(role) = me.role.as_deref() else {
            return;
        };
        // Keep the role from leaking into processes the role function starts with plain
        // `Command`s: a copy of this binary would otherwise re-enter the role. What they said
        // stays readable through `startup`. (Safe to call in edition 2021; in edition 2024
        // this needs `unsafe` and the single-thread argument in the docs above.)
        for key in [ROLE_ENV, ARGS_ENV, NAME_ENV, DAEMON_ENV, ERROR_FD_ENV] {
            std::env::remove_var(key);
        }
        if let Some(fd) = me.error_fd {
            *ERROR_PIPE.lock().unwrap_or_else(|e| e.into_inner()) = sys::take_inherited_pipe(fd);
        }

        let code = match self.take(role) {
            Some(f) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                Ok(code) => code,
                Err(payload) => {
                    let what = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_owned());
                    report_failure(&format!("panicked: {what}"));
                    101
                }
            },
            None => {
                report_failure(&self.unknown_role_message(role));
                UNKNOWN_ROLE_EXIT_CODE
            }
        };
        crate::process::join_children();
        let _ = io::stdout().flush();
        let _ = io::stderr().flush();
        std::process::exit(code);
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

    #[test]
    fn roles_take_and_replace() {
        const A: Role<u8> = Role::new("a");
        let mut roles = Roles::new()
            .role("a", |_| 1)
            .role("b", |_| 2)
            .register(A, |_: u8| Ok::<(), String>(()));
        assert_eq!(roles.names().collect::<Vec<_>>(), ["b", "a"]);
        assert!(roles.take("c").is_none());
        assert!(roles.take("a").is_some());
        assert_eq!(format!("{roles:?}"), r#"Roles { roles: ["b"] }"#);
        let f = roles.take("b").unwrap();
        assert_eq!(f(), 2);
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
}
