//! Multi-process tests of `shm_process`'s typed roles and Process attributes with real
//! children: the `shm-itest` binary in its `process.*` roles (`Role<A>` consts from
//! `shm_itest::roles::process`).
//!
//! No test asserts how long anything takes; waits are bounded generously and a [`Watchdog`]
//! per test kills its children if the test hangs.
#![cfg(target_os = "linux")]

use shm_core::{Liveness, ProcessId, SegmentName};
use shm_itest::roles::process::{
    Job, DAEMON_FROM_THREAD, DROP_NON_DAEMON, FAIL, PANIC, SET_EVENT, TYPED_ECHO, WHOAMI,
};
use shm_itest::{join_bounded, Watchdog, OUTCOME_BOUND};
use shm_lock::{Event, Lock};
use shm_process::{
    ExitStatus, Process, ProcessBuilder, Shared, BAD_ARGS_EXIT_CODE, ERROR_EXIT_CODE,
    UNKNOWN_ROLE_EXIT_CODE,
};
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

const CHILD: &str = shm_itest::child_binary!();

/// Runs `builder` (on the child binary) to its end; returns status, stdout, stderr and the
/// error message the parent got.
fn run(w: &Watchdog, builder: ProcessBuilder) -> (ExitStatus, String, String, Option<String>) {
    let mut p = w.start(
        builder
            .program(CHILD)
            .daemon(true)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut err_pipe = p.take_stderr().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err_pipe.read_to_string(&mut s).unwrap();
        s
    });
    let mut out = String::new();
    p.take_stdout().unwrap().read_to_string(&mut out).unwrap();
    let status = join_bounded(&mut p);
    let err = err_reader.join().unwrap();
    (status, out, err, p.error().map(str::to_owned))
}

fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < OUTCOME_BOUND {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn a_typed_argument_arrives_typed() {
    let w = Watchdog::new();
    let job = Job {
        segment: SegmentName::unique(),
        n: u64::MAX,
        words: vec![
            "with space".into(),
            "ünïcödé".into(),
            "nul\0inside".into(),
            "\"quoted\"".into(),
            String::new(),
        ],
    };
    let (status, out, err, error) = run(&w, TYPED_ECHO.builder(&job).unwrap());
    assert!(status.success(), "{status}: {err}");
    assert_eq!(error, None);
    let mut lines = out.lines();
    let echoed: Job = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(echoed, job);
    assert_eq!(lines.next(), Some("ok"));
}

#[test]
fn an_argument_of_the_wrong_type_is_refused_by_the_child_with_the_reason() {
    let w = Watchdog::new();
    // Role::builder would not compile with a u64 for TYPED_ECHO: go through the role's name.
    let builder = Process::builder(TYPED_ECHO.name())
        .typed_args(&42u64)
        .unwrap();
    let (status, out, err, error) = run(&w, builder);
    assert_eq!(status.code(), Some(BAD_ARGS_EXIT_CODE), "{err}");
    assert_eq!(out, "", "the role function must not run");
    let error = error.expect("the reason comes back");
    assert!(
        error.contains("cannot decode") && error.contains("Job"),
        "{error}"
    );
    assert!(err.contains(&error), "printed too: {err}");

    // No argument at all for a role that needs one.
    let (status, _, _, error) = run(&w, Process::builder(TYPED_ECHO.name()));
    assert_eq!(status.code(), Some(BAD_ARGS_EXIT_CODE));
    assert!(error.is_some_and(|e| e.contains("cannot decode")));

    // A malformed segment name is caught on arrival.
    let bad = serde_json::json!({"segment": "a/b", "n": 1, "words": []});
    let (status, _, _, error) = run(
        &w,
        Process::builder(TYPED_ECHO.name())
            .typed_args(&bad)
            .unwrap(),
    );
    assert_eq!(status.code(), Some(BAD_ARGS_EXIT_CODE));
    assert!(error.is_some_and(|e| e.contains("cannot decode")));
}

#[test]
fn an_err_is_printed_by_the_child_exits_1_and_reaches_the_parent() {
    let w = Watchdog::new();
    let message = "the widget is broken: ünïcödé";
    let (status, _, err, error) = run(
        &w,
        FAIL.builder(&message.to_owned()).unwrap().name("failer"),
    );
    assert_eq!(status.code(), Some(ERROR_EXIT_CODE));
    assert_eq!(status.exitcode(), 1);
    assert_eq!(error.as_deref(), Some(message));
    assert!(
        err.contains("Process failer (role `process.fail`, pid ") && err.contains(message),
        "stderr: {err}"
    );
}

#[test]
fn a_panic_is_caught_exits_101_and_reaches_the_parent() {
    let w = Watchdog::new();
    let (status, _, err, error) = run(&w, PANIC.builder(&"boom 7".to_owned()).unwrap());
    assert_eq!(status.code(), Some(101), "{err}");
    assert_eq!(error.as_deref(), Some("panicked: boom 7"));
    assert!(err.contains("boom 7"), "the panic hook printed it: {err}");
}

#[test]
fn an_unknown_role_reaches_the_parent_as_an_error() {
    let w = Watchdog::new();
    let (status, _, _, error) = run(&w, Process::builder("process.no-such-typed-role"));
    assert_eq!(status.code(), Some(UNKNOWN_ROLE_EXIT_CODE));
    let error = error.unwrap();
    assert!(
        error.contains("unknown role \"process.no-such-typed-role\""),
        "{error}"
    );
}

#[test]
fn current_process_in_the_child_matches_the_parents_view() {
    let w = Watchdog::new();
    for (name, daemon) in [(Some("alpha"), true), (None, false)] {
        let mut b = WHOAMI.builder(&()).unwrap();
        if let Some(name) = name {
            b = b.name(name);
        }
        let mut p = w.start(b.program(CHILD).daemon(daemon).stdout(Stdio::piped()));
        let mut out = String::new();
        p.take_stdout().unwrap().read_to_string(&mut out).unwrap();
        let status = join_bounded(&mut p);
        assert!(status.success(), "{status}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                format!("name={}", p.name()),
                format!("pid={}", p.pid()),
                format!("ppid={}", std::process::id()),
                "role=process.whoami".to_owned(),
                format!("daemon={daemon}"),
            ]
        );
        match name {
            Some(name) => assert_eq!(p.name(), name),
            None => assert!(
                p.name().starts_with("process.whoami-"),
                "default name {}",
                p.name()
            ),
        }
    }
}

#[test]
fn is_alive_exitcode_and_error_on_shared_references_while_another_thread_kills() {
    let w = Watchdog::new();
    let mut p = w.start(
        Process::builder("process.sleep")
            .arg("60")
            .program(CHILD)
            .daemon(true),
    );
    let shared = &p;
    assert!(shared.is_alive());
    assert_eq!(shared.exitcode(), None);
    assert_eq!(shared.error(), None);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| eventually(|| !shared.is_alive()));
        shared.kill().unwrap();
        assert!(watcher.join().unwrap(), "killed child still alive");
    });
    assert_eq!(shared.exitcode(), Some(-9));
    assert_eq!(shared.error(), None, "a SIGKILLed child says nothing");
    // Reaped by is_alive: join returns the same status, and signals are no-ops.
    assert_eq!(p.join().unwrap().signal(), Some(9));
    p.terminate().unwrap();
}

#[test]
fn join_timeout_on_the_pidfd_returns_once_the_child_is_killed() {
    let w = Watchdog::new();
    let mut p = w.start(
        Process::builder("process.sleep")
            .arg("60")
            .program(CHILD)
            .daemon(true),
    );
    assert!(p.join_timeout(Duration::from_millis(20)).unwrap().is_none());
    let pid = p.pid();
    std::thread::scope(|s| {
        // SIGKILL from elsewhere (not through the handle), as an OOM killer would.
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            // SAFETY: kill(2) has no memory-safety preconditions; the child is unreaped (the
            // main thread is waiting in join_timeout, which reaps only after it ends).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        });
        let status = p
            .join_timeout(OUTCOME_BOUND)
            .unwrap()
            .expect("the killed child ends within the bound");
        assert_eq!(status.exitcode(), -9);
    });
    assert!(!p.is_alive());
}

#[test]
fn a_role_runner_joins_the_non_daemon_children_it_dropped() {
    let w = Watchdog::new();
    let mut p = w.start(
        DROP_NON_DAEMON
            .builder(&())
            .unwrap()
            .program(CHILD)
            .daemon(true)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut out = BufReader::new(p.take_stdout().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let grandchild: u32 = line.trim().parse().expect("grandchild pid");
    let id = ProcessId::of(grandchild).expect("grandchild running");
    w.watch_id(Some(id));
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "returning\n");
    // The role function has returned, but the child waits for its non-daemon grandchild.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        p.is_alive(),
        "the runner must join the dropped non-daemon child"
    );
    assert!(id.liveness() == Liveness::Alive);
    // End the grandchild: then the child exits, having reaped it.
    // SAFETY: kill(2) has no memory-safety preconditions; the identity was alive just above
    // and only its parent (our child, blocked joining it) reaps it.
    unsafe { libc::kill(grandchild as libc::pid_t, libc::SIGKILL) };
    let status = join_bounded(&mut p);
    assert!(status.success(), "{status}");
    assert!(id.liveness() == Liveness::Dead);
    let mut err = String::new();
    p.take_stderr().unwrap().read_to_string(&mut err).unwrap();
    assert!(
        err.contains("dropped while still running") && err.contains(&grandchild.to_string()),
        "the drop says so loudly: {err}"
    );
}

#[test]
fn a_shared_handle_opens_its_kind_in_the_child() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let event = Event::builder(&name).create().unwrap();
    assert!(!event.is_set());
    let (status, _, err, error) = run(&w, SET_EVENT.builder(&Shared::new(&name)).unwrap());
    assert!(status.success(), "{status}: {err}");
    assert_eq!(error, None);
    assert!(
        event.is_set(),
        "the child opened the event by its typed name and set it"
    );

    // Another kind's name, forced through the untyped path: the child's open fails with the
    // kind check's error, which reaches the parent.
    let lock_name = SegmentName::unique();
    let _lock = Lock::builder(&lock_name).create().unwrap();
    let builder = Process::builder(SET_EVENT.name())
        .typed_args(&lock_name)
        .unwrap();
    let (status, _, _, error) = run(&w, builder);
    assert_eq!(status.code(), Some(ERROR_EXIT_CODE));
    assert!(error.is_some(), "the open error comes back");
}

#[test]
fn a_daemon_started_from_a_short_lived_thread_lives_until_its_parent_process_dies() {
    let w = Watchdog::new();
    let mut p = w.start(
        DAEMON_FROM_THREAD
            .builder(&())
            .unwrap()
            .program(CHILD)
            .daemon(true)
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    BufReader::new(p.take_stdout().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grandchild: u32 = line.trim().parse().expect("grandchild pid");
    let id = ProcessId::of(grandchild).expect("grandchild running");
    w.watch_id(Some(id));
    // The thread that started it has ended; the parent-death signal must not have followed it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        id.liveness() == Liveness::Alive,
        "the daemon died with the thread that started it"
    );
    p.kill().unwrap();
    assert_eq!(join_bounded(&mut p).exitcode(), -9);
    assert!(
        eventually(|| id.liveness() == Liveness::Dead),
        "the daemon outlived its SIGKILLed parent"
    );
}
