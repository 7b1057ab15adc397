//! Multi-process tests of `shm_process` with real children: the child binary
//! `shm-itest` started in its `process.*` roles.
//!
//! No test asserts how long anything takes; waits for an outcome are bounded generously and
//! fail when the bound passes. A [`Watchdog`] per test kills its children if the test hangs.
//!
//! Linux only: daemon children need `PR_SET_PDEATHSIG`, and the checks read `/proc`.
#![cfg(any(target_os = "linux", target_os = "android"))]

use shm_core::{Liveness, ProcessId};
use shm_itest::Watchdog;
use shm_process::{ExitStatus, Process, ProcessBuilder, ROLE_ENV, UNKNOWN_ROLE_EXIT_CODE};
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

const CHILD: &str = shm_itest::child_binary!();

/// Bound on waiting for an outcome (a child ending, a grandchild dying).
const OUTCOME_BOUND: Duration = Duration::from_secs(10);

/// A builder for the helper binary in `role`, as a daemon so that a failing test's children
/// die with the test's thread.
fn child(role: &str) -> ProcessBuilder {
    Process::builder(format!("process.{role}"))
        .program(CHILD)
        .daemon(true)
}

fn join_bounded(p: &mut Process) -> ExitStatus {
    match p.join_timeout(OUTCOME_BOUND).expect("join_timeout") {
        Some(status) => status,
        None => {
            let _ = p.kill();
            panic!(
                "child {} (role {}) did not end within {OUTCOME_BOUND:?}",
                p.pid(),
                p.role()
            );
        }
    }
}

/// Reads all of the child's piped stdout, then joins it.
fn output_of(w: &Watchdog, builder: ProcessBuilder) -> (ExitStatus, String) {
    let mut p = w.start(builder.stdout(Stdio::piped()));
    let mut out = String::new();
    p.take_stdout()
        .expect("piped stdout")
        .read_to_string(&mut out)
        .expect("read child stdout");
    (join_bounded(&mut p), out)
}

/// Polls `cond` until it holds or `OUTCOME_BOUND` passes.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > OUTCOME_BOUND {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// State letter and start time from `/proc/<pid>/stat`, zombies included.
fn proc_stat(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.to_owned();
    let start_time = fields.nth(18)?.parse().ok()?;
    Some((state, start_time))
}

#[test]
fn exit_code_round_trip() {
    let w = Watchdog::new();
    for code in [0, 3, 42] {
        let mut p = w.start(child("exit").arg(code.to_string()));
        let status = join_bounded(&mut p);
        assert_eq!(status.code(), Some(code));
        assert_eq!(status.signal(), None);
        assert_eq!(status.success(), code == 0);
        assert_eq!(p.exitcode(), Some(code));
        assert!(!p.is_alive());
        // join again: the same status, at once.
        assert_eq!(p.join().unwrap(), status);
    }
}

#[test]
fn args_arrive_in_order() {
    let w = Watchdog::new();
    let args = ["seg-7f3a", "with space", "ünïcödé", "--flag", "-", ""];
    let (status, out) = output_of(&w, child("echo-args").args(args));
    assert!(status.success(), "{status}");
    assert_eq!(out.lines().collect::<Vec<_>>(), args);

    let (status, out) = output_of(&w, child("echo-args"));
    assert!(status.success(), "{status}");
    assert_eq!(out, "");
}

#[test]
fn env_and_role_arrive() {
    let w = Watchdog::new();
    let (status, out) = output_of(
        &w,
        child("check-env")
            .arg("SHM_CORE_TEST_VAR")
            .env("SHM_CORE_TEST_VAR", "value 1")
            // The role given to the builder wins over an explicit env entry.
            .env(ROLE_ENV, "something-else"),
    );
    assert!(status.success(), "{status}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "role=process.check-env",
            // Roles::run removes the variable before the role runs, so the role's own children
            // started with plain Commands do not re-enter it.
            "role_env=unset",
            "SHM_CORE_TEST_VAR=value 1",
            r#"args=["SHM_CORE_TEST_VAR"]"#,
        ]
    );
}

#[test]
fn join_timeout_is_none_while_sleeping_and_some_after_kill() {
    let w = Watchdog::new();
    let mut p = w.start(child("sleep").arg("60"));
    assert!(p.join_timeout(Duration::from_millis(50)).unwrap().is_none());
    assert!(p.join_timeout(Duration::ZERO).unwrap().is_none());
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    let id = p.identity().expect("a running child has an identity");
    assert_eq!(id.pid(), p.pid());
    assert!(id.liveness() == Liveness::Alive);

    p.kill().unwrap();
    let status = join_bounded(&mut p);
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(status.exitcode(), -9);
    assert_eq!(p.exitcode(), Some(-9));
    assert!(!p.is_alive());
    assert!(id.liveness() == Liveness::Dead);
    // Reaped: further signals are no-ops, never sent to a pid that may be reused.
    p.kill().unwrap();
    p.terminate().unwrap();
    p.signal(libc::SIGUSR1).unwrap();
    assert_eq!(p.exitcode(), Some(-9));
}

#[test]
fn terminate_gives_minus_15() {
    let w = Watchdog::new();
    let mut p = w.start(child("sleep").arg("60"));
    assert!(p.is_alive());
    p.terminate().unwrap();
    let status = join_bounded(&mut p);
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert_eq!(p.exitcode(), Some(-15));
    assert_eq!(status.to_string(), "killed by signal 15 (SIGTERM)");
}

#[test]
fn terminate_is_ignorable_but_kill_is_not() {
    let w = Watchdog::new();
    let mut p = w.start(child("ignore-term").stdout(Stdio::piped()));
    let mut ready = String::new();
    BufReader::new(p.take_stdout().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n");
    p.terminate().unwrap();
    assert!(p
        .join_timeout(Duration::from_millis(100))
        .unwrap()
        .is_none());
    assert!(p.is_alive());
    p.kill().unwrap();
    assert_eq!(join_bounded(&mut p).exitcode(), -9);
}

#[test]
fn exit_after_short_sleep_is_joined_by_join_timeout() {
    let w = Watchdog::new();
    let mut p = w.start(child("sleep").arg("0"));
    assert_eq!(join_bounded(&mut p).exitcode(), 0);
}

/// Starts `spawn-daemon-grandchild MODE` and returns the child and the grandchild's identity.
fn start_with_daemon_grandchild(w: &Watchdog, mode: &str) -> (Process, ProcessId) {
    let mut p = w.start(
        child("spawn-daemon-grandchild")
            .arg(mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    BufReader::new(p.take_stdout().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("grandchild pid, got {line:?}"));
    // The grandchild is not ours to reap, but its parent (our child) has not reaped it either
    // while it runs, so its pid is still its own; its identity guards the checks below.
    let id = ProcessId::of(pid).expect("the daemon grandchild is running");
    w.watch_id(Some(id));
    // Let the child go on (it waits for stdin to close, so that it cannot end, and take the
    // grandchild with it, before we have read the grandchild's identity).
    drop(p.take_stdin());
    (p, id)
}

#[test]
fn daemon_grandchild_dies_when_its_parent_is_killed() {
    let w = Watchdog::new();
    let (mut p, grandchild) = start_with_daemon_grandchild(&w, "wait");
    assert!(grandchild.liveness() == Liveness::Alive);
    p.kill().unwrap();
    assert_eq!(join_bounded(&mut p).exitcode(), -9);
    assert!(
        eventually(|| grandchild.liveness() == Liveness::Dead),
        "daemon grandchild {grandchild:?} outlived its SIGKILLed parent by {OUTCOME_BOUND:?}"
    );
}

#[test]
fn daemon_grandchild_dies_when_its_parent_exits_without_dropping_it() {
    let w = Watchdog::new();
    let (mut p, grandchild) = start_with_daemon_grandchild(&w, "exit");
    assert_eq!(join_bounded(&mut p).exitcode(), 0);
    assert!(
        eventually(|| grandchild.liveness() == Liveness::Dead),
        "daemon grandchild {grandchild:?} outlived its parent by {OUTCOME_BOUND:?}"
    );
}

#[test]
fn dropping_a_running_daemon_kills_and_reaps_it() {
    let w = Watchdog::new();
    let p = w.start(child("sleep").arg("60"));
    let id = p.identity().unwrap();
    assert!(id.liveness() == Liveness::Alive);
    drop(p);
    // Killed and reaped by the drop: neither running nor a zombie.
    assert!(id.liveness() == Liveness::Dead);
    if let Some((state, start_time)) = proc_stat(id.pid()) {
        assert!(
            start_time != id.start_time(),
            "pid {} still ours after drop, state {state}",
            id.pid()
        );
    }
}

#[test]
fn dropping_a_finished_child_reaps_it() {
    let w = Watchdog::new();
    let p = w.start(Process::builder("process.exit").program(CHILD).arg("0"));
    let pid = p.pid();
    let start_time = p.identity().map(|id| id.start_time());
    // Wait until it has exited without reaping it: a zombie.
    assert!(eventually(|| proc_stat(pid).is_some_and(|(s, _)| s == "Z")));
    drop(p);
    if let Some((state, t)) = proc_stat(pid) {
        assert!(
            Some(t) != start_time && state != "Z",
            "pid {pid} still a zombie after drop"
        );
    }
}

#[test]
fn dropping_a_running_non_daemon_leaves_it_running() {
    let w = Watchdog::new();
    let p = w.start(Process::builder("process.sleep").program(CHILD).arg("60"));
    let id = p.identity().unwrap();
    drop(p);
    assert!(
        id.liveness() == Liveness::Alive,
        "a non-daemon child must outlive its handle"
    );
    // Clean up by hand. Nobody has reaped it (it is our child and the handle is gone), so the
    // pid is still its own.
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(id.pid() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0);
    assert!(eventually(|| id.liveness() == Liveness::Dead));
}

#[test]
fn unknown_role_exits_with_code_2_and_says_why() {
    let w = Watchdog::new();
    let mut p = w.start(child("no-such-role").stderr(Stdio::piped()));
    let mut err = String::new();
    p.take_stderr().unwrap().read_to_string(&mut err).unwrap();
    let status = join_bounded(&mut p);
    assert_eq!(status.code(), Some(UNKNOWN_ROLE_EXIT_CODE));
    assert_eq!(UNKNOWN_ROLE_EXIT_CODE, 2);
    assert!(
        err.contains("unknown role \"process.no-such-role\""),
        "{err}"
    );
    assert!(err.contains("process.exit, process.echo-args"), "{err}");
}

#[test]
fn top_level_run_falls_through_the_dispatcher() {
    for role_env in [None, Some("")] {
        let mut cmd = std::process::Command::new(CHILD);
        match role_env {
            None => cmd.env_remove(ROLE_ENV),
            Some(v) => cmd.env(ROLE_ENV, v),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{:?}", out.status);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "top-level run\n");
    }
}

#[test]
fn default_program_is_the_current_executable() {
    let w = Watchdog::new();
    let (status, out) = output_of(&w, child("spawn-self"));
    assert!(status.success(), "{status}");
    let exe = std::fs::canonicalize(CHILD).unwrap();
    let exe = exe.to_str().unwrap();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [format!("argv0={exe}"), format!("exe={exe}")]
    );
}

#[test]
fn missing_program_is_an_error_with_context() {
    let err = Process::builder("exit")
        .program("/nonexistent/shm-core-test-child")
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(err.to_string().contains("role `exit`"), "{err}");
}
