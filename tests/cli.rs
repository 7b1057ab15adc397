//! The `shm-ipc` tool against real segments and real child processes.
//!
//! Child processes are this test executable run again with [`ROLE_ENV`] set: the ignored
//! `child_role` entry point then plays the role (create a segment and hold it, hold a lock,
//! map a segment) and prints [`READY`]. Parents kill them with SIGKILL where a crash is the point.
//!
//! Every test uses names under its own prefix and removes them all at the end; `gc` and `ls`
//! always run with `--prefix`, because other tests on this machine have segments of their own.

use serde_json::Value as Json;
use shm_core::{ObjectKind, Segment, SegmentName};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

const ROLE_ENV: &str = "SHM_IPC_CLI_TEST_ROLE";
/// What a child prints once its role is set up.
const READY: &str = "child-role-ready";
/// Generous: children are slow on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Support

/// A prefix no other test (here or in another process) uses; names are `{prefix}_{what}`.
fn unique_prefix() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "clt{:x}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes every name it was given, whatever the test did.
struct Cleanup(Vec<String>);

impl Cleanup {
    fn name(&mut self, prefix: &str, what: &str) -> String {
        let n = format!("{prefix}_{what}");
        assert!(SegmentName::new(&n).is_ok(), "{n}");
        self.0.push(n.clone());
        n
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.0 {
            if let Ok(name) = SegmentName::new(n) {
                let _ = Segment::unlink_name(&name);
            }
        }
    }
}

fn shm_path(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(name)
}

/// A child process that is killed and reaped when dropped.
struct ChildGuard(Child);

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL, then reap (so that it is dead, not a zombie).
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this executable in `role` with `args`, and waits until it prints [`READY`].
fn spawn_role(role: &str, args: &[&str]) -> ChildGuard {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_role",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE_ENV, format!("{role} {}", args.join(" ")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = ChildGuard(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest prints "test child_role ... " before the role's own output.
            if line.ends_with(READY) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(READY_TIMEOUT)
        .unwrap_or_else(|_| panic!("child role {role} {args:?} did not get ready"));
    guard
}

/// Runs the tool (killed, and the test failed, if it does not finish within a minute).
fn tool(args: &[&str]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_shm-ipc"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // The hung child is ours: kill it by its pid.
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the tool hung on {args:?}");
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked"),
        "the tool panicked on {args:?}: {err}"
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the tool with `--json` and parses its output; it must exit with `code`.
fn tool_json(args: &[&str], code: i32) -> Json {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = tool(&a);
    assert_eq!(
        o.status.code(),
        Some(code),
        "{a:?}: stdout {} stderr {}",
        stdout(&o),
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{a:?}: not JSON ({e}): {}", stdout(&o)))
}

/// `ls --json --prefix P`, as a map from name to entry.
fn ls(prefix: &str) -> std::collections::BTreeMap<String, Json> {
    let v = tool_json(&["ls", "--prefix", prefix], 0);
    v["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

fn exists(name: &str) -> bool {
    shm_path(name).exists()
}

/// Waits (bounded) until `f` holds: `ls` sees another process's state a moment later.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting until {what}");
}

// ---------------------------------------------------------------------------------------------
// Child roles

/// Not a test: the entry point of the child processes the tests start (see the module docs).
/// Without the role variable it does nothing.
#[test]
#[ignore = "child-process entry point, started by the other tests"]
fn child_role() {
    let Ok(spec) = std::env::var(ROLE_ENV) else {
        return;
    };
    let mut words = spec.split_whitespace();
    let role = words.next().unwrap_or_default();
    let name = SegmentName::new(words.next().unwrap_or_default()).unwrap();
    let ready = || {
        println!("{READY}");
        std::io::stdout().flush().unwrap();
    };
    let forever = || -> ! {
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    };
    match role {
        // Creates a Lock, keeps the name, takes the lock and waits to be killed.
        "hold-lock" => {
            let lock = shm_lock::Lock::builder(&name).create().unwrap();
            lock.segment().unwrap().persist();
            let guard = lock.lock().unwrap();
            ready();
            let _keep = guard;
            forever();
        }
        // Creates a Value<i64>, keeps the name, and waits to be killed.
        "create-value" => {
            let v = shm_value::Value::<i64>::builder(&name)
                .value(42)
                .create()
                .unwrap();
            v.segment().unwrap().persist();
            ready();
            let _keep = v;
            forever();
        }
        // Opens (maps) an existing Value<i64> and waits to be killed.
        "map-value" => {
            let v = shm_value::Value::<i64>::builder(&name).open().unwrap();
            ready();
            let _keep = v;
            forever();
        }
        // Creates an MPMC queue of 'i', keeps the name, pushes three items as its producer and
        // waits to be killed.
        "queue-producer" => {
            let q = shm_queue::MpmcQueue::<i32>::builder(&name)
                .capacity(8)
                .create()
                .unwrap();
            q.segment().unwrap().persist();
            let mut tx = q.producer().unwrap();
            for i in 0..3 {
                tx.push(i).unwrap();
            }
            ready();
            let _keep = (q, tx);
            forever();
        }
        // Starts creating a segment and waits, mid-create (header written, never published),
        // to be killed.
        "stuck-in-create" => {
            let _ = Segment::builder(&name, ObjectKind::RawArray)
                .count(8)
                .body_len(64)
                .create(|_body, _len| {
                    ready();
                    forever()
                });
            unreachable!("the init closure never returns");
        }
        other => panic!("unknown child role {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn help_version_and_usage_errors() {
    let o = tool(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for word in ["ls", "inspect", "rm", "gc", "--json", "exit codes"] {
        assert!(text.contains(word), "help lacks {word}: {text}");
    }
    let o = tool(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("shm-ipc "));
    for bad in [
        &[][..],
        &["nope"],
        &["ls", "--force"],
        &["rm"],
        &["gc", "extra"],
    ] {
        let o = tool(bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(stdout(&o).is_empty(), "{bad:?}");
        assert!(stderr(&o).contains("shm-ipc:"), "{bad:?}: {}", stderr(&o));
    }
}

#[test]
fn bad_and_missing_names_are_clear_errors() {
    for (arg, says) in [
        ("../../etc/passwd", "character '/'"),
        ("has space", "character ' '"),
        ("..", "starts with '.'"),
        ("/dev/shm/foo", "without /dev/shm/"),
        ("this-name-is-longer-than-thirty-bytes", "at most 30"),
    ] {
        for cmd in [&["inspect", arg][..], &["rm", arg], &["rm", "--force", arg]] {
            let o = tool(cmd);
            assert_eq!(o.status.code(), Some(1), "{cmd:?}");
            assert!(stderr(&o).contains(says), "{cmd:?}: {}", stderr(&o));
        }
    }
    let missing = format!("{}_missing", unique_prefix());
    for cmd in [&["inspect", &missing][..], &["rm", &missing]] {
        let o = tool(cmd);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}");
        assert!(stderr(&o).contains("no such segment"), "{}", stderr(&o));
    }
    let o = tool(&["gc", "--dry-run", "--prefix", "../x"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--prefix"), "{}", stderr(&o));
}

#[test]
fn ls_and_inspect_show_kinds_creators_and_values() {
    let prefix = unique_prefix();
    let mut names = Cleanup(Vec::new());
    let value_name = names.name(&prefix, "value");
    let array_name = names.name(&prefix, "array");
    let sem_name = names.name(&prefix, "sem");
    let event_name = names.name(&prefix, "event");
    let barrier_name = names.name(&prefix, "barrier");
    let n = |s: &str| SegmentName::new(s).unwrap();
    let value = shm_value::Value::<f64>::builder(&n(&value_name))
        .value(2.5)
        .create()
        .unwrap();
    let array = shm_array::RawArray::<i32>::builder(&n(&array_name))
        .len(3)
        .create()
        .unwrap();
    array.copy_from_slice(&[1, 2, 3]).unwrap();
    let sem = shm_lock::Semaphore::builder(&n(&sem_name))
        .value(3)
        .create()
        .unwrap();
    let event = shm_lock::Event::builder(&n(&event_name)).create().unwrap();
    event.set();
    let barrier = shm_lock::Barrier::builder(&n(&barrier_name))
        .parties(4)
        .create()
        .unwrap();

    let listed = ls(&format!("{prefix}_"));
    assert_eq!(listed.len(), 5, "{listed:#?}");
    let v = &listed[&value_name];
    assert_eq!(v["kind"], "Value");
    assert_eq!(v["format"], "d");
    assert_eq!(v["state"], "ready");
    assert_eq!(v["creator"]["pid"], std::process::id());
    assert_eq!(v["creator"]["liveness"], "alive");
    assert_eq!(listed[&array_name]["count"], 3);

    // The table for people names every segment and its kind.
    let o = tool(&["ls", "--prefix", &format!("{prefix}_")]);
    assert_eq!(o.status.code(), Some(0));
    let table = stdout(&o);
    assert!(table.starts_with("NAME"), "{table}");
    for (name, kind) in [
        (&value_name, "Value"),
        (&array_name, "RawArray"),
        (&sem_name, "Semaphore"),
        (&event_name, "Event"),
        (&barrier_name, "Barrier"),
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(name.as_str()))
            .unwrap();
        assert!(line.contains(kind), "{line}");
    }

    let i = tool_json(&["inspect", &value_name], 0);
    assert_eq!(i["kind"], "Value");
    assert_eq!(i["typecode"], "d");
    assert_eq!(i["creator_pid"], std::process::id());
    assert_eq!(i["live"]["value"], 2.5);
    assert_eq!(i["live"]["lock_holder"], "free");
    let i = tool_json(&["inspect", &array_name], 0);
    assert_eq!(i["live"]["len"], 3);
    assert_eq!(i["live"]["elements"], serde_json::json!([1, 2, 3]));
    // A locked Array: elements are read only while its lock is free.
    let locked_name = names.name(&prefix, "locked");
    let locked = shm_array::Array::<i16>::builder(&n(&locked_name))
        .len(20)
        .create()
        .unwrap();
    locked.set(19, -7).unwrap();
    let i = tool_json(&["inspect", &locked_name], 0);
    assert_eq!(i["live"]["len"], 20);
    assert_eq!(i["live"]["elements"].as_array().unwrap().len(), 16, "{i:#}");
    assert_eq!(i["live"]["elements_shown"], 16);
    assert_eq!(i["live"]["lock_holder"], "free");
    let held = locked.lock().unwrap();
    let i = tool_json(&["inspect", &locked_name], 0);
    assert_eq!(i["live"]["elements"], "not read: the lock is held", "{i:#}");
    assert_eq!(i["live"]["lock_holder"], "alive", "{i:#}");
    drop(held);
    drop(locked);
    assert_eq!(tool_json(&["inspect", &sem_name], 0)["live"]["value"], 3);
    assert_eq!(tool_json(&["inspect", &event_name], 0)["live"]["set"], true);
    let b = tool_json(&["inspect", &barrier_name], 0);
    assert_eq!(b["live"]["parties"], 4);
    assert_eq!(b["live"]["waiting"], 0);
    assert_eq!(b["live"]["broken"], false);

    // The human form of inspect has the same facts.
    let o = tool(&["inspect", &value_name]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(text.contains("kind:") && text.contains("Value"), "{text}");
    assert!(text.contains("value:") && text.contains("2.5"), "{text}");
    drop((value, array, sem, event, barrier));
}

#[test]
fn inspect_says_a_killed_holders_lock_holder_is_dead() {
    let prefix = unique_prefix();
    let mut names = Cleanup(Vec::new());
    let lock = names.name(&prefix, "lock");
    let child = spawn_role("hold-lock", &[&lock]);
    let i = tool_json(&["inspect", &lock], 0);
    assert_eq!(i["kind"], "Lock");
    assert_eq!(i["creator_pid"], child.pid());
    // The holder is the child's test thread (a thread id, not the pid).
    let thread = i["live"]["holder_thread"].as_u64().unwrap();
    assert_eq!(i["live"]["holder"], "alive", "{i:#}");
    assert_eq!(i["creator"], "alive");
    child.kill();
    let i = tool_json(&["inspect", &lock], 0);
    assert_eq!(i["live"]["holder_thread"], thread, "{i:#}");
    assert_eq!(i["live"]["holder"], "dead", "{i:#}");
    assert_eq!(i["live"]["inconsistent"], false);
    assert_eq!(i["creator"], "dead");
    let text = stdout(&tool(&["inspect", &lock]));
    assert!(text.contains("holder:") && text.contains("dead"), "{text}");

    // The next locker learns of the death; until somebody repairs the data, inspect shows the
    // lock free but flagged inconsistent.
    let opened = shm_lock::Lock::builder(&SegmentName::new(&lock).unwrap())
        .open()
        .unwrap();
    assert!(matches!(opened.lock(), Err(shm_lock::LockError::OwnerDied)));
    let i = tool_json(&["inspect", &lock], 0);
    assert_eq!(i["live"]["holder"], "free", "{i:#}");
    assert_eq!(i["live"]["inconsistent"], true, "{i:#}");
    let guard = opened.recover().unwrap();
    guard.mark_consistent();
    drop(guard);
    let i = tool_json(&["inspect", &lock], 0);
    assert_eq!(i["live"]["inconsistent"], false, "{i:#}");
}

#[test]
fn corrupt_and_foreign_segments_are_clear_errors() {
    let prefix = unique_prefix();
    let mut names = Cleanup(Vec::new());
    let bad_sum = names.name(&prefix, "badsum");
    let truncated = names.name(&prefix, "trunc");
    let foreign = names.name(&prefix, "foreign");
    for n in [&bad_sum, &truncated] {
        let l = shm_lock::Lock::builder(&SegmentName::new(n).unwrap())
            .create()
            .unwrap();
        l.segment().unwrap().persist();
    }
    // A header field changed behind the checksum's back.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&bad_sum))
        .unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&7u64.to_le_bytes(), 32).unwrap();
    // A file shorter than its header says.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(shm_path(&truncated))
        .unwrap();
    f.set_len(270).unwrap();
    // Somebody else's file.
    std::fs::write(shm_path(&foreign), b"hello, not a segment").unwrap();

    for (name, says) in [
        (&bad_sum, "checksum"),
        (&truncated, "corrupt"),
        (&foreign, "not an shm-ipc segment"),
    ] {
        let o = tool(&["inspect", name]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stdout(&o));
        assert!(stderr(&o).contains(says), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(name.as_str()), "{}", stderr(&o));
    }
    // A FIFO at a name: listed with --all, a clear error, never a hang.
    let fifo = names.name(&prefix, "fifo");
    let made = Command::new("mkfifo")
        .arg(shm_path(&fifo))
        .status()
        .unwrap();
    assert!(made.success());
    let all = tool_json(&["ls", "--all", "--prefix", &format!("{prefix}_")], 0);
    let states: Vec<(&str, &str)> = all["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert!(
        states.contains(&(fifo.as_str(), "not-a-file")),
        "{states:?}"
    );
    assert!(
        states.contains(&(foreign.as_str(), "foreign")),
        "{states:?}"
    );
    assert!(
        states.contains(&(bad_sum.as_str(), "corrupt")),
        "{states:?}"
    );
    // Without --all, only shm-ipc segments (corrupt ones included).
    let ours = ls(&format!("{prefix}_"));
    assert!(
        ours.contains_key(&bad_sum) && !ours.contains_key(&fifo) && !ours.contains_key(&foreign)
    );
    let o = tool(&["inspect", &fifo]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("fifo"), "{}", stderr(&o));
    let o = tool(&["rm", &fifo]);
    assert_eq!(o.status.code(), Some(1));
    assert!(shm_path(&fifo).symlink_metadata().is_ok());
    let o = tool(&["rm", "--force", &fifo]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(shm_path(&fifo).symlink_metadata().is_err());

    // rm refuses a foreign file without --force and removes it with it.
    let o = tool(&["rm", &foreign]);
    assert_eq!(o.status.code(), Some(1));
    assert!(exists(&foreign));
    let o = tool(&["rm", "--force", &foreign]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!exists(&foreign));
    let _ = ObjectKind::Lock;
}

#[test]
fn gc_removes_what_dead_creators_left_and_nothing_in_use() {
    let prefix = unique_prefix();
    let filter = format!("{prefix}_");
    let mut names = Cleanup(Vec::new());
    let orphan = names.name(&prefix, "orphan");
    let shared = names.name(&prefix, "shared");
    let mine = names.name(&prefix, "mine");
    let empty = names.name(&prefix, "empty");
    let zeros = names.name(&prefix, "zeros");
    let midway = names.name(&prefix, "midway");

    // A creator killed after publishing, nobody maps it: garbage.
    spawn_role("create-value", &[&orphan]).kill();
    // A creator killed while another live process maps its segment: in use.
    let creator = spawn_role("create-value", &[&shared]);
    let user = spawn_role("map-value", &[&shared]);
    creator.kill();
    // Ours: the creator (this process) is alive and maps it.
    let _mine = shm_value::Value::<i64>::builder(&SegmentName::new(&mine).unwrap())
        .value(1)
        .create()
        .unwrap();
    // A creator killed while initialising (its header names it, but it never published).
    spawn_role("stuck-in-create", &[&midway]).kill();
    // Creators killed mid-create: a 0-byte file and an all-zero one, left alone for longer
    // than shm-core's grace time (they name no creator that could be asked).
    for (n, len) in [(&empty, 0), (&zeros, 4096)] {
        let f = std::fs::File::create(shm_path(n)).unwrap();
        f.set_len(len).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
            .unwrap();
    }

    let listed = ls(&filter);
    assert_eq!(listed[&orphan]["creator"]["liveness"], "dead");
    assert_eq!(listed[&shared]["creator"]["liveness"], "dead");
    assert_eq!(
        listed[&shared]["users"],
        serde_json::json!([user.pid()]),
        "{:#}",
        listed[&shared]
    );
    assert_eq!(listed[&empty]["state"], "empty", "{listed:#?}");
    assert_eq!(listed[&zeros]["state"], "no-header", "{listed:#?}");
    assert_eq!(listed[&midway]["state"], "initialising", "{listed:#?}");
    assert_eq!(listed[&midway]["creator"]["liveness"], "dead");

    let i = tool_json(&["inspect", &midway], 0);
    assert_eq!(i["state"], "initialising", "{i:#}");
    assert_eq!(i["creator"], "dead", "{i:#}");
    assert_eq!(i["abandoned"], true, "{i:#}");
    let i = tool_json(&["inspect", &empty], 0);
    assert_eq!(i["state"], "empty", "{i:#}");
    assert_eq!(i["abandoned"], true, "{i:#}");

    // A dry run says what would go and removes nothing.
    let dry = tool_json(&["gc", "--dry-run", "--prefix", &filter], 0);
    let would: Vec<&str> = dry["would_remove"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let mut expect = vec![
        orphan.as_str(),
        empty.as_str(),
        zeros.as_str(),
        midway.as_str(),
    ];
    expect.sort();
    let mut got = would.clone();
    got.sort();
    assert_eq!(got, expect, "{dry:#}");
    for n in [&orphan, &shared, &mine, &empty, &zeros, &midway] {
        assert!(exists(n), "dry run removed {n}");
    }

    let done = tool_json(&["gc", "--prefix", &filter], 0);
    assert_eq!(done["removed"].as_array().unwrap().len(), 4, "{done:#}");
    for n in [&orphan, &empty, &zeros, &midway] {
        assert!(!exists(n), "gc left {n}");
    }
    for n in [&shared, &mine] {
        assert!(exists(n), "gc removed {n}, which is in use");
    }
    let kept = done["kept"].as_array().unwrap();
    let why = |n: &str| {
        kept.iter()
            .find(|e| e["name"] == n)
            .map(|e| e["reason"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert!(why(&shared).contains(&user.pid().to_string()), "{done:#}");

    // rm refuses the segment in use, and removes it with --force.
    let o = tool(&["rm", &shared]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    assert!(exists(&shared));
    // Once its last user is gone, gc takes it.
    user.kill();
    eventually("the killed user's mapping is gone", || {
        ls(&filter)[&shared]["users"] == serde_json::json!([])
    });
    let done = tool_json(&["gc", "--prefix", &filter], 0);
    assert_eq!(done["removed"][0]["name"], shared.as_str(), "{done:#}");
    assert!(!exists(&shared));
    assert!(exists(&mine));
}

#[test]
fn rm_force_removes_a_segment_in_use() {
    let prefix = unique_prefix();
    let mut names = Cleanup(Vec::new());
    let name = names.name(&prefix, "busy");
    let creator = spawn_role("create-value", &[&name]);
    let o = tool(&["rm", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&creator.pid().to_string()),
        "{}",
        stderr(&o)
    );
    assert!(exists(&name));
    let v = tool_json(&["rm", "--force", &name], 0);
    assert_eq!(v["removed"], serde_json::json!([name.as_str()]));
    assert!(!exists(&name));
    // The creator still has its mapping: removal only took the name.
    creator.kill();
}

#[test]
fn inspect_shows_queue_length_and_role_holders() {
    let prefix = unique_prefix();
    let mut names = Cleanup(Vec::new());
    let name = names.name(&prefix, "queue");
    let child = spawn_role("queue-producer", &[&name]);
    let q = shm_queue::MpmcQueue::<i32>::builder(&SegmentName::new(&name).unwrap())
        .open()
        .unwrap();
    let rx = q.consumer().unwrap();
    let i = tool_json(&["inspect", &name], 0);
    assert_eq!(i["kind"], "MpmcQueue");
    assert_eq!(i["typecode"], "i");
    let live = &i["live"];
    assert_eq!(live["len"], 3, "{i:#}");
    assert_eq!(live["capacity"], 8);
    assert_eq!(live["closed"], false);
    let me = serde_json::json!([{"pid": std::process::id(), "liveness": "alive"}]);
    assert_eq!(live["consumers"], me, "{i:#}");
    assert_eq!(
        live["producers"],
        serde_json::json!([{"pid": child.pid(), "liveness": "alive"}])
    );
    let pid = child.pid();
    child.kill();
    let i = tool_json(&["inspect", &name], 0);
    assert_eq!(
        i["live"]["producers"],
        serde_json::json!([{"pid": pid, "liveness": "dead"}]),
        "{i:#}"
    );
    let text = stdout(&tool(&["inspect", &name]));
    assert!(text.contains(&format!("{pid} (dead)")), "{text}");
    drop((rx, q));
}

/// Every kind of segment, its body overwritten with garbage: `ls` and `inspect` answer with a
/// value or a clear error, never a panic or a hang.
#[test]
fn garbage_bodies_never_crash_or_hang_the_tool() {
    let prefix = unique_prefix();
    let mut names = Cleanup(Vec::new());
    let mut made: Vec<String> = Vec::new();
    macro_rules! make {
        ($what:literal, |$n:ident| $create:expr) => {{
            let name = names.name(&prefix, $what);
            let $n = SegmentName::new(&name).unwrap();
            let obj = $create.unwrap();
            obj.segment().unwrap().persist();
            drop(obj);
            made.push(name);
        }};
    }
    make!("lock", |n| shm_lock::Lock::builder(&n).create());
    make!("rlock", |n| shm_lock::RLock::builder(&n).create());
    make!("sem", |n| shm_lock::Semaphore::builder(&n)
        .value(2)
        .create());
    make!("bsem", |n| shm_lock::BoundedSemaphore::builder(&n)
        .value(2)
        .create());
    make!("event", |n| shm_lock::Event::builder(&n).create());
    make!("cond", |n| shm_lock::Condition::builder(&n).create());
    make!("barrier", |n| shm_lock::Barrier::builder(&n)
        .parties(3)
        .create());
    make!("value", |n| shm_value::Value::<i64>::builder(&n)
        .value(5)
        .create());
    make!("rawvalue", |n| shm_value::RawValue::<f64>::builder(&n)
        .value(1.5)
        .create());
    make!("array", |n| shm_array::Array::<i32>::builder(&n)
        .len(40)
        .create());
    make!("rawarray", |n| shm_array::RawArray::<u8>::builder(&n)
        .len(5)
        .create());
    make!("spsc", |n| shm_queue::SpscQueue::<u32>::builder(&n)
        .capacity(4)
        .create());
    make!("mpmc", |n| shm_queue::MpmcQueue::<i64>::builder(&n)
        .capacity(4)
        .create());
    make!("bytes", |n| shm_queue::bytes::ByteQueue::builder(&n)
        .capacity(4)
        .create());
    make!("spscbytes", |n| shm_queue::bytes::ByteQueue::builder(&n)
        .flavor(shm_queue::bytes::Flavor::Spsc)
        .capacity(4)
        .create());
    make!("joinable", |n| shm_queue::joinable::JoinableQueue::builder(
        &n
    )
    .capacity(4)
    .create());

    // Untouched, every kind inspects cleanly.
    for name in &made {
        let i = tool_json(&["inspect", name], 0);
        assert!(i["live"].is_object(), "{i:#}");
    }
    for fill in [0xffu8, 0xa5, 0x01] {
        for name in &made {
            let path = shm_path(name);
            let len = std::fs::metadata(&path).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            use std::os::unix::fs::FileExt;
            // The header stays valid; everything after it is garbage.
            f.write_all_at(&vec![fill; (len - 256) as usize], 256)
                .unwrap();
        }
        let listed = ls(&format!("{prefix}_"));
        assert_eq!(listed.len(), made.len(), "{listed:#?}");
        for name in &made {
            for args in [&["inspect", name][..], &["--json", "inspect", name]] {
                let o = tool(args);
                let code = o.status.code();
                assert!(
                    code == Some(0) || code == Some(1),
                    "{args:?} with body {fill:#x}: {code:?} {}",
                    stderr(&o)
                );
                if code == Some(1) {
                    assert!(
                        stderr(&o).contains(name.as_str()),
                        "{args:?}: {}",
                        stderr(&o)
                    );
                }
            }
        }
    }
}

/// A process that maps the segment without shm-ipc (Python's `mmap`, no lock held) still
/// counts as a user: gc keeps the segment of a dead creator while it lives.
#[test]
fn a_foreign_mapper_keeps_a_segment_in_use() {
    let prefix = unique_prefix();
    let filter = format!("{prefix}_");
    let mut names = Cleanup(Vec::new());
    let name = names.name(&prefix, "pymapped");
    spawn_role("create-value", &[&name]).kill();
    let script = format!(
        "import mmap, os, sys, time\n\
         fd = os.open('/dev/shm/{name}', os.O_RDWR)\n\
         m = mmap.mmap(fd, 0)\n\
         os.close(fd)\n\
         print('{READY}', flush=True)\n\
         time.sleep(600)\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let python = ChildGuard(child);
    assert_eq!(line.trim(), READY);
    let listed = ls(&filter);
    assert_eq!(listed[&name]["creator"]["liveness"], "dead");
    assert_eq!(listed[&name]["users"], serde_json::json!([python.pid()]));
    let done = tool_json(&["gc", "--prefix", &filter], 0);
    assert_eq!(done["removed"], serde_json::json!([]), "{done:#}");
    assert!(exists(&name));
    let o = tool(&["rm", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&python.pid().to_string()),
        "{}",
        stderr(&o)
    );
    python.kill();
    eventually("python's mapping is gone", || {
        ls(&filter)[&name]["users"] == serde_json::json!([])
    });
    let done = tool_json(&["gc", "--prefix", &filter], 0);
    assert_eq!(done["removed"][0]["name"], name.as_str(), "{done:#}");
    assert!(!exists(&name));
}

#[test]
fn ls_shows_a_managers_objects_together() {
    let prefix = unique_prefix();
    let mut names = Cleanup(Vec::new());
    let mgr_name = names.name(&prefix, "mgr");
    let mgr = shm_manager::Manager::create(&SegmentName::new(&mgr_name).unwrap()).unwrap();
    mgr.dict::<String, i64>("data")
        .unwrap()
        .insert("num", &1)
        .unwrap();
    mgr.list::<i64>("l").unwrap().push(&2).unwrap();
    let _lock = mgr.lock("lk").unwrap();

    // Every object of the manager is named under the manager's name: one prefix lists them all.
    let listed = ls(&mgr_name);
    let kinds: Vec<(String, String)> = listed
        .iter()
        .map(|(n, e)| (n.clone(), e["kind"].as_str().unwrap_or("?").to_owned()))
        .collect();
    assert_eq!(listed.len(), 4, "{kinds:?}");
    assert_eq!(listed[&mgr_name]["kind"], "Manager", "{kinds:?}");
    for kind in ["Dict", "List", "Lock"] {
        assert!(
            kinds
                .iter()
                .any(|(n, k)| k == kind && n.starts_with(&format!("{mgr_name}."))),
            "no {kind} under {mgr_name}: {kinds:?}"
        );
    }
    // The table for people lists them on consecutive lines, the manager first.
    let table = stdout(&tool(&["ls", "--prefix", &prefix]));
    let rows: Vec<&str> = table.lines().filter(|l| l.contains(&mgr_name)).collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert!(rows[0].contains("Manager"), "{table}");

    // The creating manager removes every object it made.
    drop(_lock);
    drop(mgr);
    assert!(ls(&mgr_name).is_empty());
}
