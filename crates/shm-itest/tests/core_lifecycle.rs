//! Segment lifecycle across real processes: leftovers of creators that died before publishing
//! (0-byte, all-zero, short and half-written files, forged directly), a FIFO at a segment's
//! name, the listing's users and creator liveness, and removal that refuses a segment in use.
//!
//! Creators are `shm-itest` children (roles `core.*`) killed with `SIGKILL` inside `create`:
//! right after `shm_open` (a 0-byte file), right after sizing (all zeros), and inside `init`
//! (a header with state 0 naming the dead creator). Users are real child processes too: the
//! `core.open-hold` role (a handle of this crate), `sh` holding the file open (`exec 3<`), and
//! `python3` mapping it with `mmap` (then closing the descriptor). Every child is killed and
//! reaped by a guard, and a [`Watchdog`] kills children and aborts if a test hangs. Each test
//! uses its own unique names and removes them.
#![cfg(target_os = "linux")]

use shm_core::header::{offsets, HEADER_SIZE, MAGIC, VERSION};
use shm_core::{
    inspect, list_segments, CreateError, Liveness, ObjectKind, OpenError, ProcessId, RemoveError,
    Segment, SegmentInfo, SegmentName, SegmentState, Users,
};
use shm_itest::{expect_line, join_bounded, kill_and_join, NameGuard, Watchdog};
use shm_process::{Process, ProcessBuilder};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

/// Short open timeout for segments that will never be published.
const SHORT: Duration = Duration::from_millis(100);

const CHILD: &str = shm_itest::child_binary!();

/// A child process, killed and reaped on drop.
struct User {
    child: Child,
}

impl User {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills and reaps the child now.
    fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for User {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `cmd` (watched by `w`), waits for it to print a line (`ready` once it holds the file).
fn start(w: &Watchdog, mut cmd: Command) -> User {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn user");
    w.watch_pid(child.id());
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("read");
    let user = User { child };
    assert_eq!(line.trim(), "ready", "the user child failed to start");
    user
}

/// A process that holds the file open (a descriptor, no mapping).
fn holder(w: &Watchdog, name: &SegmentName) -> User {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("exec 3<\"$1\" && echo ready && exec sleep 120")
        .arg("sh")
        .arg(shm_path(name));
    start(w, cmd)
}

/// A process that maps the file (and closes its descriptor).
fn mapper(w: &Watchdog, name: &SegmentName) -> User {
    let script = "import mmap,sys\n\
                  f=open(sys.argv[1],'r+b')\n\
                  m=mmap.mmap(f.fileno(),0)\n\
                  f.close()\n\
                  print('ready',flush=True)\n\
                  sys.stdin.read()\n";
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script).arg(shm_path(name));
    start(w, cmd)
}

fn shm_path(name: &SegmentName) -> PathBuf {
    PathBuf::from("/dev/shm").join(name.as_str())
}

/// Writes a file straight into `/dev/shm`, as a creator killed at some point leaves it.
fn forge(name: &SegmentName, bytes: &[u8]) {
    std::fs::write(shm_path(name), bytes).expect("write /dev/shm file");
}

/// Makes the file look `by` older.
fn backdate(name: &SegmentName, by: Duration) {
    let f = std::fs::File::options()
        .write(true)
        .open(shm_path(name))
        .expect("open to backdate");
    f.set_modified(SystemTime::now() - by).expect("set mtime");
}

fn builder(name: &SegmentName) -> shm_core::SegmentBuilder {
    Segment::builder(name, ObjectKind::RawArray).body_len(64)
}

fn find(name: &SegmentName) -> SegmentInfo {
    let listed = list_segments()
        .expect("list_segments")
        .into_iter()
        .find(|i| &i.name == name)
        .expect("listed");
    let inspected = inspect(name).expect("inspect");
    assert_eq!(listed.state, inspected.state);
    inspected
}

/// The identity of a process that has exited and been reaped.
fn dead_process() -> ProcessId {
    let mut child = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let id = ProcessId::of(child.id()).expect("a running child has an identity");
    child.kill().expect("kill");
    child.wait().expect("reap");
    assert_eq!(id.liveness(), Liveness::Dead);
    id
}

/// A header as a creator leaves it when killed after writing the creator fields but before
/// the checksum and the state word: magic, version, kind, sizes and creator, state 0.
fn half_written_header(creator: ProcessId, body_len: u64) -> Vec<u8> {
    let mut b = vec![0u8; HEADER_SIZE + body_len as usize];
    let mut put = |o: usize, v: &[u8]| b[o..o + v.len()].copy_from_slice(v);
    put(offsets::MAGIC, &MAGIC.to_le_bytes());
    put(offsets::VERSION, &VERSION.to_le_bytes());
    put(offsets::KIND, &ObjectKind::RawArray.as_u32().to_le_bytes());
    put(offsets::BODY_OFFSET, &(HEADER_SIZE as u64).to_le_bytes());
    put(offsets::BODY_LEN, &body_len.to_le_bytes());
    put(
        offsets::TOTAL_SIZE,
        &(HEADER_SIZE as u64 + body_len).to_le_bytes(),
    );
    put(offsets::CREATOR_PID, &creator.pid().to_le_bytes());
    put(offsets::CREATOR_START, &creator.start_time().to_le_bytes());
    b
}

/// Creates a fresh segment at `name`, proving the name was reclaimed, and removes it again.
fn assert_creatable(name: &SegmentName) {
    let seg = builder(name)
        .create(|_, _| {})
        .expect("create takes the name");
    assert!(seg.is_creator());
    assert_eq!(find(name).state, SegmentState::Ready);
    drop(seg);
    assert!(!Segment::exists(name), "the creator's drop unlinks");
}

// ------------------------------------------------------------------------------------------
// Leftovers without a header: reclaimed after the grace period, never while in use
// ------------------------------------------------------------------------------------------

#[test]
fn leftovers_without_a_header_are_reclaimed_after_the_grace_period() {
    let _w = Watchdog::new();
    let cases: [(&str, Vec<u8>, SegmentState); 3] = [
        ("0-byte", vec![], SegmentState::Empty),
        ("all-zero", vec![0u8; 4096], SegmentState::NoHeader),
        ("short", vec![0u8; 100], SegmentState::NoHeader),
    ];
    for (what, bytes, state) in cases {
        let name = SegmentName::unique();
        let _c = NameGuard::new(name.clone());
        forge(&name, &bytes);
        let info = find(&name);
        assert_eq!(info.state, state, "{what}");
        assert_eq!(info.creator, None, "{what}");
        assert!(info.users.is_unused(), "{what}: {:?}", info.users);
        // Young: a creator may be between shm_open and writing its header.
        assert!(!info.is_abandoned(), "{what}");
        let err = builder(&name).create(|_, _| {}).unwrap_err();
        assert!(
            matches!(err, CreateError::AlreadyExists { .. }),
            "{what}: {err:?}"
        );
        match builder(&name).open_timeout(SHORT).open() {
            Err(OpenError::Initialising { .. }) | Err(OpenError::Truncated { .. }) => {}
            other => panic!("{what}: expected Initialising or Truncated, got {other:?}"),
        }
        // Old enough and unused: reclaimed by create.
        backdate(&name, Duration::from_secs(60));
        assert!(find(&name).is_abandoned(), "{what}");
        assert_creatable(&name);
    }
}

#[test]
fn open_or_create_reclaims_an_old_all_zero_leftover() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    forge(&name, &[0u8; 4096]);
    backdate(&name, Duration::from_secs(60));
    let seg = builder(&name)
        .open_timeout(Duration::from_secs(20))
        .open_or_create(|_, _| {})
        .expect("open_or_create");
    assert!(
        seg.is_creator(),
        "the leftover was reclaimed, not waited for"
    );
}

#[test]
fn leftover_held_open_by_a_live_process_is_kept() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    forge(&name, &[0u8; 4096]);
    backdate(&name, Duration::from_secs(60));
    let user = holder(&w, &name);
    let info = find(&name);
    assert_eq!(info.users, Users::Known(vec![user.pid()]));
    assert!(!info.is_abandoned(), "a live process holds it open");
    let err = builder(&name).create(|_, _| {}).unwrap_err();
    assert!(matches!(err, CreateError::AlreadyExists { .. }), "{err:?}");
    user.kill();
    assert!(find(&name).users.is_unused());
    assert_creatable(&name);
}

// ------------------------------------------------------------------------------------------
// Half-written headers: the creator's liveness decides
// ------------------------------------------------------------------------------------------

#[test]
fn half_written_header_of_a_dead_creator_is_creator_died_and_reclaimed() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    let dead = dead_process();
    forge(&name, &half_written_header(dead, 64));

    // The opener stops at once instead of waiting out a long timeout.
    match builder(&name).open_timeout(Duration::from_secs(600)).open() {
        Err(OpenError::CreatorDied { creator, .. }) => assert_eq!(creator, dead),
        other => panic!("expected CreatorDied, got {other:?}"),
    }
    let info = find(&name);
    assert_eq!(info.state, SegmentState::Initialising);
    assert_eq!(info.creator, Some(dead));
    assert_eq!(info.creator_liveness, Some(Liveness::Dead));
    assert_eq!(info.kind, Some(ObjectKind::RawArray));
    assert!(info.is_abandoned());
    // No grace period needed: the header names a dead creator.
    assert_creatable(&name);
}

#[test]
fn half_written_header_of_a_reused_pid_counts_as_dead() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    let me = ProcessId::current();
    // Our pid, but another start time: a creator whose pid this process reused.
    let ghost = ProcessId::from_parts(me.pid(), me.start_time() + 1);
    forge(&name, &half_written_header(ghost, 64));
    assert_eq!(find(&name).creator_liveness, Some(Liveness::Dead));
    let err = builder(&name).open_timeout(SHORT).open().unwrap_err();
    assert!(matches!(err, OpenError::CreatorDied { .. }), "{err:?}");
    assert_creatable(&name);
}

#[test]
fn half_written_header_of_a_live_creator_is_kept() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    let alive = start(&w, {
        let mut c = Command::new("sh");
        c.arg("-c").arg("echo ready && exec sleep 120");
        c
    });
    let creator = ProcessId::of(alive.pid()).expect("identity");
    forge(&name, &half_written_header(creator, 64));
    backdate(&name, Duration::from_secs(3600));
    let info = find(&name);
    assert_eq!(info.creator_liveness, Some(Liveness::Alive));
    assert!(!info.is_abandoned(), "its creator may still publish it");
    let err = builder(&name).open_timeout(SHORT).open().unwrap_err();
    assert!(matches!(err, OpenError::Initialising { .. }), "{err:?}");
    let err = builder(&name).create(|_, _| {}).unwrap_err();
    assert!(matches!(err, CreateError::AlreadyExists { .. }), "{err:?}");
    // The creator dies: now the name is reclaimed.
    alive.kill();
    let err = builder(&name).open_timeout(SHORT).open().unwrap_err();
    assert!(matches!(err, OpenError::CreatorDied { .. }), "{err:?}");
    assert_creatable(&name);
}

// ------------------------------------------------------------------------------------------
// A FIFO at the name: an error everywhere, never a hang
// ------------------------------------------------------------------------------------------

fn make_fifo(name: &SegmentName) {
    let path =
        std::ffi::CString::new(shm_path(name).into_os_string().into_encoded_bytes()).expect("path");
    // SAFETY: mkfifo reads a valid NUL-terminated path.
    let ret = unsafe { libc::mkfifo(path.as_ptr(), 0o600) };
    assert_eq!(ret, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

#[test]
fn fifo_at_the_name_is_an_error_never_a_hang() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    make_fifo(&name);

    assert!(Segment::exists(&name), "the name is taken");
    match builder(&name).open_timeout(SHORT).open() {
        Err(OpenError::NotRegularFile { found, .. }) => assert_eq!(found, "FIFO"),
        other => panic!("expected NotRegularFile, got {other:?}"),
    }
    match builder(&name).create(|_, _| {}) {
        Err(CreateError::NotRegularFile { found, .. }) => assert_eq!(found, "FIFO"),
        other => panic!("expected NotRegularFile, got {other:?}"),
    }
    match builder(&name).open_timeout(SHORT).open_or_create(|_, _| {}) {
        Err(OpenError::Create(CreateError::NotRegularFile { .. })) => {}
        other => panic!("expected Create(NotRegularFile), got {other:?}"),
    }
    let info = find(&name);
    assert_eq!(info.state, SegmentState::NotRegularFile { found: "FIFO" });
    assert!(!info.is_abandoned());
    match shm_core::inventory::remove(&name) {
        Err(RemoveError::NotRegularFile { .. }) => {}
        other => panic!("expected NotRegularFile, got {other:?}"),
    }
    shm_core::inventory::remove_forced(&name).expect("a forced removal unlinks it");
    assert!(!Segment::exists(&name));
}

#[test]
fn creator_drop_with_a_fifo_at_its_name_neither_hangs_nor_removes_it() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    let seg = builder(&name).create(|_, _| {}).expect("create");
    Segment::unlink_name(&name).expect("unlink");
    make_fifo(&name);
    drop(seg);
    let info = find(&name);
    assert_eq!(
        info.state,
        SegmentState::NotRegularFile { found: "FIFO" },
        "the drop left the FIFO alone"
    );
}

// ------------------------------------------------------------------------------------------
// Users and removal
// ------------------------------------------------------------------------------------------

/// Rewrites the creator fields of a published segment to `creator` and reseals the checksum
/// (as if `creator` had made it and died).
fn set_creator(name: &SegmentName, creator: ProcessId) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(shm_path(name))
        .expect("open");
    let mut h = [0u8; HEADER_SIZE];
    f.read_exact_at(&mut h, 0).expect("read header");
    h[offsets::CREATOR_PID..offsets::CREATOR_PID + 4].copy_from_slice(&creator.pid().to_le_bytes());
    h[offsets::CREATOR_START..offsets::CREATOR_START + 8]
        .copy_from_slice(&creator.start_time().to_le_bytes());
    shm_core::header::reseal(&mut h);
    f.write_all_at(&h, 0).expect("write header");
}

#[test]
fn listing_shows_a_live_user_of_a_segment_whose_creator_died() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    builder(&name).create(|_, _| {}).expect("create").persist(); // our handle is gone; the file stays
    set_creator(&name, dead_process());
    let user = mapper(&w, &name);

    let info = find(&name);
    assert_eq!(info.state, SegmentState::Ready);
    assert_eq!(info.creator_liveness, Some(Liveness::Dead));
    assert_eq!(info.users, Users::Known(vec![user.pid()]));
    assert!(!info.is_abandoned(), "creator dead is not unused");
    match info.remove() {
        Err(RemoveError::InUse { users, .. }) => assert_eq!(users.seen(), [user.pid()]),
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(Segment::exists(&name));

    user.kill();
    let info = find(&name);
    assert!(info.users.is_unused(), "{:?}", info.users);
    assert!(info.is_abandoned());
    info.remove().expect("removed once unused");
    assert!(!Segment::exists(&name));
}

#[test]
fn removal_refuses_a_segment_in_use_and_forced_removal_does_not() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    // Our own handle is a user: this process maps it and holds its lock.
    let seg = builder(&name).create(|_, _| {}).expect("create");
    seg.persist();
    let me = std::process::id();
    let info = find(&name);
    assert!(info.locked);
    assert_eq!(info.users, Users::Known(vec![me]));
    match Segment::remove(&name) {
        Err(RemoveError::InUse { users, locked, .. }) => {
            assert_eq!(users.seen(), [me]);
            assert!(!locked, "refused on the /proc scan already");
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    drop(seg);
    // A process holding a descriptor is a user too.
    let user = holder(&w, &name);
    let err = Segment::remove(&name).unwrap_err();
    assert!(matches!(err, RemoveError::InUse { .. }), "{err:?}");
    assert!(err.to_string().contains(&user.pid().to_string()), "{err}");
    // Forced: unlinked although in use.
    Segment::remove_forced(&name).expect("forced");
    assert!(!Segment::exists(&name));
    let err = Segment::remove(&name).unwrap_err();
    assert!(matches!(err, RemoveError::NotFound { .. }), "{err:?}");
    user.kill();
}

#[test]
fn removal_of_a_listed_segment_that_was_recreated_is_refused() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    builder(&name).create(|_, _| {}).expect("create").persist();
    let info = find(&name);
    Segment::remove(&name).expect("unused: removed");
    builder(&name)
        .create(|_, _| {})
        .expect("re-create")
        .persist();
    match info.remove() {
        Err(RemoveError::Changed { .. }) => {}
        other => panic!("expected Changed, got {other:?}"),
    }
    assert!(Segment::exists(&name), "the new segment is left alone");
}

#[test]
fn opener_holds_the_segment_in_use() {
    let _w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    builder(&name).create(|_, _| {}).expect("create").persist();
    let opened = Segment::builder(&name, ObjectKind::RawArray)
        .open()
        .expect("open");
    assert!(inspect(&name).expect("inspect").locked);
    assert!(Segment::remove(&name).is_err());
    drop(opened);
    let info = inspect(&name).expect("inspect");
    assert!(!info.locked);
    assert!(info.users.is_unused());
    Segment::remove(&name).expect("removed");
}

// ------------------------------------------------------------------------------------------
// Creators killed with SIGKILL inside create
// ------------------------------------------------------------------------------------------

/// The `shm-itest` child in role `core.ROLE NAME COUNT`, stdin and stdout piped.
fn role(role: &str, name: &SegmentName, count: u64) -> ProcessBuilder {
    shm_itest::child(CHILD, &format!("core.{role}"))
        .arg(name.as_str())
        .arg(count.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
}

/// Starts `builder` and waits for the line `want`.
fn start_role(w: &Watchdog, builder: ProcessBuilder, want: &str) -> Process {
    let mut p = w.start(builder);
    expect_line(&mut p, want);
    p
}

fn killed_inside_create(stage: &str, state: SegmentState) {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    let mut creator = start_role(&w, role(stage, &name, 16), "paused");

    // Alive: it holds the file, so nobody takes it, however old it looks.
    let info = find(&name);
    assert_eq!(info.state, state);
    assert!(
        info.users.seen().contains(&creator.pid()),
        "{:?}",
        info.users
    );
    backdate(&name, Duration::from_secs(3600));
    assert!(!find(&name).is_abandoned());
    let err = builder(&name).create(|_, _| {}).unwrap_err();
    assert!(matches!(err, CreateError::AlreadyExists { .. }), "{err:?}");

    let status = kill_and_join(&mut creator);
    assert_eq!(status.signal(), Some(shm_core::sys::SIGKILL));

    // Dead and unused, but the file names no creator: it waits for the grace period.
    let info = find(&name);
    assert_eq!(info.state, state, "the kill left the {state} file");
    assert!(info.users.is_unused(), "{:?}", info.users);
    assert!(info.is_abandoned(), "old enough, unused");
    match builder(&name).open_timeout(SHORT).open() {
        Err(OpenError::Initialising { .. }) => {}
        other => panic!("expected Initialising, got {other:?}"),
    }
    assert_creatable(&name);
}

#[test]
fn creator_killed_right_after_shm_open_leaves_an_empty_file_that_is_reclaimed() {
    killed_inside_create("die-after-open", SegmentState::Empty);
}

#[test]
fn creator_killed_right_after_sizing_leaves_zeros_that_are_reclaimed() {
    killed_inside_create("die-after-size", SegmentState::NoHeader);
}

#[test]
fn creator_killed_inside_init_is_creator_died_for_openers_and_reclaimed_at_once() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    let mut creator = start_role(&w, role("hang-create", &name, 16), "initialising");
    let pid = creator.pid();
    assert_eq!(find(&name).creator_liveness, Some(Liveness::Alive));
    kill_and_join(&mut creator);
    match builder(&name).open_timeout(Duration::from_secs(600)).open() {
        Err(OpenError::CreatorDied { creator, .. }) => assert_eq!(creator.pid(), pid),
        other => panic!("expected CreatorDied, got {other:?}"),
    }
    let info = find(&name);
    assert_eq!(info.state, SegmentState::Initialising);
    assert!(
        info.is_abandoned(),
        "no grace period: the header names a dead creator"
    );
    assert_creatable(&name);
}

#[test]
fn killed_creator_with_a_live_user_is_listed_in_use_and_not_removed() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _c = NameGuard::new(name.clone());
    let mut creator = start_role(&w, role("create-persist-hold", &name, 16), "ready");
    let mut user = start_role(&w, role("open-hold", &name, 16), "ready");
    kill_and_join(&mut creator);

    let info = find(&name);
    assert_eq!(info.state, SegmentState::Ready);
    assert_eq!(info.creator_liveness, Some(Liveness::Dead));
    assert_eq!(info.users, Users::Known(vec![user.pid()]));
    assert!(info.locked, "the user's handle holds the segment's lock");
    assert!(!info.is_abandoned(), "creator dead is not unused");
    let err = info.remove().unwrap_err();
    assert!(matches!(err, RemoveError::InUse { .. }), "{err:?}");
    let err = Segment::remove(&name).unwrap_err();
    assert!(matches!(err, RemoveError::InUse { .. }), "{err:?}");
    assert!(Segment::exists(&name));

    // The user leaves: now it is garbage.
    drop(user.take_stdin());
    assert!(join_bounded(&mut user).success());
    let info = find(&name);
    assert!(info.users.is_unused(), "{:?}", info.users);
    assert!(!info.locked);
    assert!(info.is_abandoned());
    info.remove().expect("removed once unused");
    assert!(!Segment::exists(&name));
}
