//! Cross-process tests of `shm_core::Segment` with real children (the child binary
//! `shm-itest`, roles `core.*`), and every open error provoked on purpose by writing
//! files into `/dev/shm` or by rewriting a real segment's header bytes.
//!
//! Every test uses its own `SegmentName::unique()` and removes what it creates (a creator's
//! handle unlinks on drop; after killing a creator, a [`NameGuard`](shm_itest::NameGuard) unlinks by name). A
//! [`Watchdog`] per test kills its children if the test hangs. No test asserts how long
//! anything takes.
//!
//! Linux only: the tests write into `/dev/shm` and daemon children need `PR_SET_PDEATHSIG`.
#![cfg(any(target_os = "linux", target_os = "android"))]

use shm_core::header::{offsets, HEADER_SIZE, MAGIC, STATE_READY, VERSION};
use shm_core::{
    list_segments, CreateError, ElementLayout, Liveness, NameError, ObjectKind, OpenError, Segment,
    SegmentInfo, SegmentName, SegmentState, TypeCode,
};
use shm_itest::{join_within, next_line, output_within, NameGuard, Watchdog};
use shm_process::{ExitStatus, Process, ProcessBuilder};
use std::fs::OpenOptions;
use std::io::{BufReader, Read};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Stdio;
use std::ptr::NonNull;
use std::time::Duration;

const CHILD: &str = shm_itest::child_binary!();

/// Bound on waiting for an outcome (a child ending).
const OUTCOME_BOUND: Duration = Duration::from_secs(20);

/// Short open timeout for segments that will never be published.
const SHORT: Duration = Duration::from_millis(100);

// ------------------------------------------------------------------------------------------
// Harness
// ------------------------------------------------------------------------------------------

/// The helper binary in `role` on segment `name` with `count` elements, as a daemon so that a
/// failing test's children die with the test's thread.
fn child(role: &str, name: &SegmentName, count: u64) -> ProcessBuilder {
    shm_itest::child(CHILD, &format!("core.{role}"))
        .arg(name.as_str())
        .arg(count.to_string())
}

/// Starts `builder` with piped stdout, reads all of it, joins the child.
fn output_of(w: &Watchdog, builder: ProcessBuilder) -> (ExitStatus, String) {
    let mut p = w.start(builder.stdout(Stdio::piped()));
    output_within(&mut p, OUTCOME_BOUND)
}

fn pattern(i: usize) -> i32 {
    (i as i32).wrapping_mul(7).wrapping_add(3)
}

fn fill(body: NonNull<u8>, len: usize) {
    let p = body.as_ptr().cast::<i32>();
    for i in 0..len / 4 {
        // SAFETY: the body is `len` bytes, 128-byte aligned and not yet published.
        unsafe { p.add(i).write_volatile(pattern(i)) };
    }
}

/// Panics unless the first `count` elements of `seg` hold the pattern.
fn assert_pattern(seg: &Segment, count: usize) {
    assert!(seg.body_len() >= count * 4, "body too small: {seg:?}");
    let p = seg.body().as_ptr().cast::<i32>();
    for i in 0..count {
        // SAFETY: the body is at least `count * 4` bytes (checked above) and 128-byte aligned.
        let v = unsafe { p.add(i).read_volatile() };
        assert_eq!(v, pattern(i), "element {i}");
    }
}

fn int_array(name: &SegmentName, count: u64) -> shm_core::SegmentBuilder {
    Segment::builder(name, ObjectKind::RawArray)
        .layout(ElementLayout::of_typecode(TypeCode::Int))
        .count(count)
        .body_len(count as usize * 4)
}

fn create_int_array(name: &SegmentName, count: u64) -> Segment {
    int_array(name, count).create(fill).expect("create")
}

fn shm_path(name: &SegmentName) -> PathBuf {
    PathBuf::from("/dev/shm").join(name.as_str())
}

fn find(name: &SegmentName) -> Option<SegmentInfo> {
    list_segments()
        .expect("list_segments")
        .into_iter()
        .find(|info| info.name == *name)
}

/// Writes `bytes` at `offset` of the segment's file, as a hostile or buggy process might.
fn patch(name: &SegmentName, offset: usize, bytes: &[u8]) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm_path(name))
        .expect("open segment file");
    f.write_all_at(bytes, offset as u64).expect("patch header");
}

fn read_header(name: &SegmentName) -> [u8; HEADER_SIZE] {
    let f = std::fs::File::open(shm_path(name)).expect("open segment file");
    let mut h = [0u8; HEADER_SIZE];
    f.read_exact_at(&mut h, 0).expect("read header");
    h
}

/// The header checksum (the one definition, in shm-core's `header` module).
fn checksum_of(h: &[u8; HEADER_SIZE]) -> u64 {
    shm_core::header::checksum(h)
}

/// Writes a valid checksum for the header as it now is (a writer that means harm, or a bug).
fn reseal(name: &SegmentName) {
    let h = read_header(name);
    patch(name, offsets::CHECKSUM, &checksum_of(&h).to_le_bytes());
}

/// Writes a file straight into `/dev/shm` and removes it on drop.
struct ShmFile(SegmentName);

impl ShmFile {
    fn new(bytes: &[u8]) -> ShmFile {
        let name = SegmentName::unique();
        std::fs::write(shm_path(&name), bytes).expect("write /dev/shm file");
        ShmFile(name)
    }
}

impl Drop for ShmFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(shm_path(&self.0));
    }
}

fn open_any(name: &SegmentName) -> Result<Segment, OpenError> {
    Segment::builder(name, ObjectKind::RawArray)
        .open_timeout(SHORT)
        .open()
}

// ------------------------------------------------------------------------------------------
// 1. One process creates, another opens
// ------------------------------------------------------------------------------------------

#[test]
fn parent_creates_child_opens_and_checks_contents() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let seg = create_int_array(&name, 100);
    assert!(seg.is_creator() && seg.unlinks_on_drop());
    let (status, out) = output_of(&w, child("open-check", &name, 100));
    assert!(status.success(), "child: {status}, stdout {out:?}");
    assert_eq!(out, "ok\n");
    // The opener's exit did not unlink the name.
    assert!(Segment::exists(&name));
    // A child that expects another count cannot open it (WrongCount): exit code 11.
    let (status, _) = output_of(&w, child("open-check", &name, 99));
    assert_eq!(status.code(), Some(11), "{status}");
    drop(seg);
    assert!(!Segment::exists(&name), "the creator's drop unlinks");
}

#[test]
fn child_creates_and_persists_parent_opens_then_unlinks_by_name() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _cleanup = NameGuard::new(name.clone());
    let mut p = w.start(child("create-persist", &name, 33).stdout(Stdio::piped()));
    let pid = p.pid();
    let mut out = String::new();
    p.take_stdout().unwrap().read_to_string(&mut out).unwrap();
    let status = join_within(&mut p, OUTCOME_BOUND);
    assert!(status.success(), "child: {status}");
    assert_eq!(out, "created\n");
    assert!(Segment::exists(&name), "persisted past its creator's exit");

    let seg = Segment::builder(&name, ObjectKind::RawArray)
        .layout(ElementLayout::of_typecode(TypeCode::Int))
        .count(33)
        .open()
        .expect("open");
    assert!(!seg.is_creator());
    assert!(!seg.unlinks_on_drop());
    assert_eq!(seg.header().kind(), ObjectKind::RawArray);
    assert_eq!(seg.header().count(), 33);
    assert_eq!(seg.header().creator().pid(), pid);
    assert_eq!(seg.header().creator().liveness(), Liveness::Dead);
    assert!(seg.is_ready());
    assert_pattern(&seg, 33);
    drop(seg);
    assert!(Segment::exists(&name), "an opener never unlinks");

    Segment::unlink_name(&name).expect("unlink by name");
    assert!(!Segment::exists(&name));
    let again = Segment::unlink_name(&name).unwrap_err();
    assert_eq!(again.kind(), std::io::ErrorKind::NotFound);
}

// ------------------------------------------------------------------------------------------
// 2. Racing open_or_create
// ------------------------------------------------------------------------------------------

#[test]
fn open_or_create_race_has_exactly_one_creator() {
    const N: usize = 6;
    const COUNT: u64 = 1000;
    let w = Watchdog::new();
    for round in 0..2 {
        let name = SegmentName::unique();
        let _cleanup = NameGuard::new(name.clone());
        let mut children: Vec<Process> = (0..N)
            .map(|_| {
                w.start(
                    child("race", &name, COUNT)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped()),
                )
            })
            .collect();
        // Go: every child is waiting for the end of its stdin.
        let stdins: Vec<_> = children.iter_mut().map(|c| c.take_stdin()).collect();
        drop(stdins);
        let mut creators = 0;
        for c in &mut children {
            let mut out = String::new();
            c.take_stdout().unwrap().read_to_string(&mut out).unwrap();
            let status = join_within(c, OUTCOME_BOUND);
            assert!(status.success(), "round {round}: child {status}, {out:?}");
            match out.as_str() {
                "creator=true\n" => creators += 1,
                "creator=false\n" => {}
                other => panic!("round {round}: unexpected output {other:?}"),
            }
        }
        assert_eq!(creators, 1, "round {round}: exactly one creator");
        let seg = int_array(&name, COUNT).open().expect("open after race");
        assert!(!seg.is_creator());
        assert_pattern(&seg, COUNT as usize);
    }
}

// ------------------------------------------------------------------------------------------
// 3. and 4. Openers and initialisation
// ------------------------------------------------------------------------------------------

#[test]
fn opener_arriving_mid_initialisation_waits_for_ready() {
    const COUNT: u64 = 256;
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _cleanup = NameGuard::new(name.clone());
    let mut p = w.start(
        child("slow-create", &name, COUNT)
            .arg("300")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    );
    let mut out = BufReader::new(p.take_stdout().unwrap());
    assert_eq!(next_line(&mut out), "initialising");
    // The creator is inside its init (which fills the body only after sleeping): the open
    // must wait for READY, then see the whole pattern.
    let seg = int_array(&name, COUNT)
        .open_timeout(OUTCOME_BOUND)
        .open()
        .expect("open during initialisation");
    assert!(!seg.is_creator());
    assert!(seg.is_ready());
    assert_pattern(&seg, COUNT as usize);
    assert_eq!(next_line(&mut out), "ready");
    drop(p.take_stdin());
    let status = join_within(&mut p, OUTCOME_BOUND);
    assert!(status.success(), "child: {status}");
    assert!(!Segment::exists(&name), "the creator unlinked on exit");
    // Our mapping outlives the name.
    assert_pattern(&seg, COUNT as usize);
}

#[test]
fn creator_killed_mid_initialisation_leaves_initialising_not_a_hang() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _cleanup = NameGuard::new(name.clone());
    let mut p = w.start(child("hang-create", &name, 16).stdout(Stdio::piped()));
    let mut out = BufReader::new(p.take_stdout().unwrap());
    assert_eq!(next_line(&mut out), "initialising");

    let info = find(&name).expect("listed while initialising");
    assert_eq!(info.state, SegmentState::Initialising);
    assert_eq!(info.creator_liveness, Some(Liveness::Alive));
    assert_eq!(info.creator.map(|c| c.pid()), Some(p.pid()));

    p.kill().expect("kill");
    let status = join_within(&mut p, OUTCOME_BOUND);
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    // The header names a dead creator: the opener says so at once (even with a long timeout).
    match int_array(&name, 16).open_timeout(OUTCOME_BOUND).open() {
        Err(OpenError::CreatorDied { name: n, creator }) => {
            assert_eq!(n, name.as_str());
            assert_eq!(creator.pid(), p.pid());
        }
        other => panic!("expected CreatorDied, got {other:?}"),
    }
    let info = find(&name).expect("listed after the creator died");
    assert_eq!(info.state, SegmentState::Initialising);
    assert_eq!(info.creator_liveness, Some(Liveness::Dead));
    assert_eq!(info.kind, Some(ObjectKind::RawArray));
    assert!(info.users.is_unused(), "{:?}", info.users);
    assert!(info.is_abandoned());

    // open_or_create reclaims the name and creates a fresh segment.
    let seg = int_array(&name, 16)
        .open_timeout(OUTCOME_BOUND)
        .open_or_create(fill)
        .expect("open_or_create reclaims the leftover");
    assert!(seg.is_creator());
    assert_pattern(&seg, 16);
    drop(seg);
    assert!(!Segment::exists(&name));
    assert!(find(&name).is_none());
}

// ------------------------------------------------------------------------------------------
// 5. Every open error, provoked on purpose
// ------------------------------------------------------------------------------------------

#[test]
fn garbage_file_is_not_ours() {
    let f = ShmFile::new(&[0xab; 512]);
    match open_any(&f.0) {
        Err(OpenError::NotOurs { found_magic }) => assert_eq!(found_magic, 0xabab_abab_abab_abab),
        other => panic!("expected NotOurs, got {other:?}"),
    }
    let info = find(&f.0).expect("list_segments shows foreign files too");
    assert_eq!(info.state, SegmentState::Foreign);
    assert!(!info.is_abandoned(), "gc never takes a foreign file");
}

#[test]
fn foreign_file_with_a_zero_state_word_is_not_ours_at_once() {
    // A foreign file whose bytes 16..20 are zero must not be mistaken for one being
    // initialised (that would make every opener wait out its timeout).
    let mut bytes = [0x11u8; 512];
    bytes[offsets::STATE..offsets::STATE + 4].fill(0);
    let f = ShmFile::new(&bytes);
    let err = Segment::builder(&f.0, ObjectKind::RawArray)
        .open_timeout(OUTCOME_BOUND)
        .open()
        .unwrap_err();
    assert!(matches!(err, OpenError::NotOurs { .. }), "{err:?}");
}

#[test]
fn file_shorter_than_a_header_is_truncated() {
    let f = ShmFile::new(&[0u8; 100]);
    match open_any(&f.0) {
        Err(OpenError::Truncated { expected, found }) => {
            assert_eq!((expected, found), (HEADER_SIZE as u64, 100));
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn empty_file_is_initialising_after_the_timeout() {
    // A creator that has created the name but not sized it yet looks like this.
    let f = ShmFile::new(&[]);
    let err = open_any(&f.0).unwrap_err();
    assert!(matches!(err, OpenError::Initialising { .. }), "{err:?}");
    // All zeros (sized, header not written yet) too.
    let f = ShmFile::new(&[0u8; 1024]);
    let err = open_any(&f.0).unwrap_err();
    assert!(matches!(err, OpenError::Initialising { .. }), "{err:?}");
}

#[test]
fn file_cut_below_total_size_is_truncated() {
    let name = SegmentName::unique();
    let seg = create_int_array(&name, 64); // 256 + 256 bytes
    OpenOptions::new()
        .write(true)
        .open(shm_path(&name))
        .unwrap()
        .set_len(300)
        .unwrap();
    match open_any(&name) {
        Err(OpenError::Truncated { expected, found }) => assert_eq!((expected, found), (512, 300)),
        other => panic!("expected Truncated, got {other:?}"),
    }
    drop(seg); // never touches the (now partly unbacked) body; unlinks
}

#[test]
fn wrong_version_is_reported_before_the_checksum() {
    let name = SegmentName::unique();
    let _seg = create_int_array(&name, 4);
    patch(&name, offsets::VERSION, &(VERSION + 1).to_le_bytes());
    // The checksum covers the version, so it no longer matches: the version wins.
    match open_any(&name) {
        Err(OpenError::UnsupportedVersion { expected, found }) => {
            assert_eq!((expected, found), (VERSION, VERSION + 1));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    reseal(&name);
    let err = open_any(&name).unwrap_err();
    assert!(
        matches!(err, OpenError::UnsupportedVersion { .. }),
        "{err:?}"
    );
}

#[test]
fn flipped_count_byte_is_a_bad_checksum() {
    let name = SegmentName::unique();
    let _seg = create_int_array(&name, 8);
    let h = read_header(&name);
    assert_eq!(
        checksum_of(&h),
        u64::from_le_bytes(
            h[offsets::CHECKSUM..offsets::CHECKSUM + 8]
                .try_into()
                .unwrap()
        ),
        "the test's checksum must agree with the header's"
    );
    patch(&name, offsets::COUNT, &[h[offsets::COUNT] ^ 0x01]);
    match open_any(&name) {
        Err(OpenError::BadChecksum { computed, stored }) => assert_ne!(computed, stored),
        other => panic!("expected BadChecksum, got {other:?}"),
    }
    // With the checksum rewritten to match, the count is what an opener then checks.
    reseal(&name);
    match int_array(&name, 8).open_timeout(SHORT).open() {
        Err(OpenError::WrongCount { expected, found }) => assert_eq!((expected, found), (8, 9)),
        other => panic!("expected WrongCount, got {other:?}"),
    }
}

#[test]
fn header_fields_rewritten_under_a_valid_checksum_are_still_checked() {
    let name = SegmentName::unique();
    let _seg = create_int_array(&name, 8);
    let original = read_header(&name);
    let restore = || patch(&name, 0, &original);
    assert_eq!(open_any(&name).expect("intact").header().count(), 8);

    // total_size disagreeing with body_offset + body_len.
    patch(&name, offsets::TOTAL_SIZE, &1u64.to_le_bytes());
    reseal(&name);
    let err = open_any(&name).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Corrupt {
                field: "total_size",
                ..
            }
        ),
        "{err:?}"
    );
    restore();

    // body_offset other than the header size.
    patch(&name, offsets::BODY_OFFSET, &512u64.to_le_bytes());
    reseal(&name);
    let err = open_any(&name).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Corrupt {
                field: "body_offset",
                ..
            }
        ),
        "{err:?}"
    );
    restore();

    // body_len so large that the file is too short for it.
    let huge = u64::MAX - HEADER_SIZE as u64;
    patch(&name, offsets::BODY_LEN, &huge.to_le_bytes());
    patch(&name, offsets::TOTAL_SIZE, &u64::MAX.to_le_bytes());
    reseal(&name);
    let err = open_any(&name).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Truncated {
                expected: u64::MAX,
                found: 288
            }
        ),
        "{err:?}"
    );
    restore();

    // An unknown kind.
    patch(&name, offsets::KIND, &999u32.to_le_bytes());
    reseal(&name);
    let err = open_any(&name).unwrap_err();
    assert!(
        matches!(err, OpenError::UnknownKind { found: 999 }),
        "{err:?}"
    );
    restore();

    // A typecode field that disagrees with the format string.
    patch(&name, offsets::TYPECODE, &u32::from(b'd').to_le_bytes());
    reseal(&name);
    let err = open_any(&name).unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::Corrupt {
                field: "typecode",
                ..
            }
        ),
        "{err:?}"
    );
    restore();

    // A format string that does not parse.
    patch(&name, offsets::FORMAT, b"\xff");
    reseal(&name);
    let err = open_any(&name).unwrap_err();
    assert!(matches!(err, OpenError::BadLayout(_)), "{err:?}");
    restore();

    // An element size that disagrees with the format.
    patch(&name, offsets::ELEM_SIZE, &8u32.to_le_bytes());
    reseal(&name);
    let err = open_any(&name).unwrap_err();
    assert!(matches!(err, OpenError::BadLayout(_)), "{err:?}");
    restore();

    // A state word that is neither initialising nor ready.
    patch(&name, offsets::STATE, &0xdead_beefu32.to_le_bytes());
    let err = open_any(&name).unwrap_err();
    assert!(
        matches!(err, OpenError::BadState { found: 0xdead_beef }),
        "{err:?}"
    );
    restore();

    // Our magic, but the state word back at 0 (say, a creator that crashed mid-rewrite).
    patch(&name, offsets::STATE, &0u32.to_le_bytes());
    let err = open_any(&name).unwrap_err();
    assert!(matches!(err, OpenError::Initialising { .. }), "{err:?}");
    restore();

    // Restored byte for byte, it opens again.
    assert_eq!(read_header(&name), original);
    assert_eq!(
        u32::from_le_bytes(
            original[offsets::STATE..offsets::STATE + 4]
                .try_into()
                .unwrap()
        ),
        STATE_READY
    );
    assert_eq!(
        u64::from_le_bytes(
            original[offsets::MAGIC..offsets::MAGIC + 8]
                .try_into()
                .unwrap()
        ),
        MAGIC
    );
    assert_eq!(open_any(&name).expect("restored").header().count(), 8);
}

#[test]
fn wrong_kind_layout_and_count() {
    let name = SegmentName::unique();
    let _seg = create_int_array(&name, 8);
    match Segment::builder(&name, ObjectKind::Array)
        .open_timeout(SHORT)
        .open()
    {
        Err(OpenError::WrongKind { expected, found }) => {
            assert_eq!((expected, found), (ObjectKind::Array, ObjectKind::RawArray));
        }
        other => panic!("expected WrongKind, got {other:?}"),
    }
    let err = Segment::builder(&name, ObjectKind::RawArray)
        .layout(ElementLayout::of_typecode(TypeCode::Double))
        .open_timeout(SHORT)
        .open()
        .unwrap_err();
    assert!(matches!(err, OpenError::WrongLayout { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains('d') && msg.contains('i'), "{msg}");
    match int_array(&name, 9).open_timeout(SHORT).open() {
        Err(OpenError::WrongCount { expected, found }) => assert_eq!((expected, found), (9, 8)),
        other => panic!("expected WrongCount, got {other:?}"),
    }
    // Neither layout nor count stated: only the kind is checked.
    let seg = open_any(&name).expect("open without expectations");
    assert_eq!(seg.header().layout().typecode(), Some(TypeCode::Int));
    assert_eq!(seg.header().count(), 8);
}

#[test]
fn platform_aliases_open_each_other_and_nothing_else() {
    let open_as = |name: &SegmentName, tc: TypeCode| {
        Segment::builder(name, ObjectKind::RawValue)
            .layout(ElementLayout::of_typecode(tc))
            .open_timeout(SHORT)
            .open()
    };
    let create_as = |tc: TypeCode| {
        let name = SegmentName::unique();
        let seg = Segment::builder(&name, ObjectKind::RawValue)
            .layout(ElementLayout::of_typecode(tc))
            .count(1)
            .body_len(8)
            .create(|_, _| {})
            .expect("create");
        (name, seg)
    };
    let (l, _l_seg) = create_as(TypeCode::Long);
    open_as(&l, TypeCode::LongLong).expect("'l' opens as 'q'");
    open_as(&l, TypeCode::Long).expect("'l' opens as 'l'");
    let err = open_as(&l, TypeCode::ULongLong).unwrap_err();
    assert!(matches!(err, OpenError::WrongLayout { .. }), "{err:?}");
    let err = open_as(&l, TypeCode::Double).unwrap_err();
    assert!(matches!(err, OpenError::WrongLayout { .. }), "{err:?}");

    let (q, _q_seg) = create_as(TypeCode::LongLong);
    open_as(&q, TypeCode::Long).expect("'q' opens as 'l'");
    let (ul, _ul_seg) = create_as(TypeCode::ULong);
    open_as(&ul, TypeCode::ULongLong).expect("'L' opens as 'Q'");
    let err = open_as(&ul, TypeCode::Long).unwrap_err();
    assert!(matches!(err, OpenError::WrongLayout { .. }), "{err:?}");
}

/// Says whether a `NameError` is the one expected.
type NameCheck = fn(&NameError) -> bool;

#[test]
fn bad_names_are_rejected_before_any_os_call() {
    let cases: [(&str, NameCheck); 8] = [
        ("", |e| *e == NameError::Empty),
        ("/", |e| *e == NameError::Empty),
        ("..", |e| *e == NameError::LeadingDot),
        ("../etc/passwd", |e| {
            matches!(
                e,
                NameError::BadChar {
                    ch: '/',
                    position: 2
                }
            )
        }),
        ("a/b", |e| {
            matches!(
                e,
                NameError::BadChar {
                    ch: '/',
                    position: 1
                }
            )
        }),
        ("a b", |e| matches!(e, NameError::BadChar { ch: ' ', .. })),
        ("nul\0", |e| {
            matches!(e, NameError::BadChar { ch: '\0', .. })
        }),
        ("x123456789012345678901234567890", |e| {
            matches!(e, NameError::TooLong { len: 31 })
        }),
    ];
    for (bad, is_expected) in cases {
        let err = SegmentName::new(bad).unwrap_err();
        assert!(is_expected(&err), "{bad:?}: {err:?}");
        let open = OpenError::from(err.clone());
        assert!(matches!(&open, OpenError::BadName(e) if *e == err));
        assert_eq!(open.to_string(), err.to_string());
        let create = CreateError::from(err.clone());
        assert!(matches!(&create, CreateError::BadName(e) if *e == err));
    }
    assert!(SegmentName::new("/fine-name_1.x").is_ok());
}

#[test]
fn missing_segment_is_not_found() {
    let name = SegmentName::unique();
    match open_any(&name) {
        Err(OpenError::NotFound { name: n }) => assert_eq!(n, name.as_str()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(!Segment::exists(&name));
    assert!(find(&name).is_none());
}

#[test]
fn second_exclusive_create_is_already_exists() {
    let name = SegmentName::unique();
    let first = create_int_array(&name, 4);
    match int_array(&name, 4).create(|_, _| panic!("init must not run")) {
        Err(CreateError::AlreadyExists { name: n }) => assert_eq!(n, name.as_str()),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // The failed create did not remove the first one's name.
    assert!(Segment::exists(&name));
    assert_pattern(&open_any(&name).expect("still there"), 4);
    drop(first);
}

#[test]
fn create_mode_is_what_was_asked_and_enforced_for_others() {
    let mode_of = |name: &SegmentName| {
        std::fs::metadata(shm_path(name))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    let default = SegmentName::unique();
    let _a = create_int_array(&default, 1);
    assert_eq!(mode_of(&default), 0o600);
    let shared = SegmentName::unique();
    let _b = int_array(&shared, 1).mode(0o640).create(fill).unwrap();
    assert_eq!(mode_of(&shared), 0o640, "not narrowed by the umask");
    let none = SegmentName::unique();
    let _c = int_array(&none, 1).mode(0o000).create(fill).unwrap();
    assert_eq!(mode_of(&none), 0o000);

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root bypasses file permissions, so PermissionDenied cannot be provoked here; the
        // mode checks above are what this run can verify.
        eprintln!("running as root: PermissionDenied not testable, checked modes only");
    } else {
        match open_any(&none) {
            Err(OpenError::PermissionDenied { name: n, .. }) => assert_eq!(n, none.as_str()),
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
    }
}

#[test]
fn creator_unlinks_opener_never_does_and_persist_and_unlink_work() {
    // Creator drop unlinks; opener drop does not.
    let name = SegmentName::unique();
    let creator = create_int_array(&name, 4);
    let opener = open_any(&name).unwrap();
    assert!(creator.unlinks_on_drop());
    assert!(!opener.unlinks_on_drop() && !opener.is_creator());
    drop(opener);
    assert!(Segment::exists(&name));
    drop(creator);
    assert!(!Segment::exists(&name));

    // persist keeps the name past the creator's drop.
    let name = SegmentName::unique();
    let _cleanup = NameGuard::new(name.clone());
    let creator = create_int_array(&name, 4);
    creator.persist();
    assert!(!creator.unlinks_on_drop());
    drop(creator);
    assert!(Segment::exists(&name));
    assert_pattern(&open_any(&name).unwrap(), 4);
    Segment::unlink_name(&name).unwrap();

    // unlink removes the name now; mappings stay usable; the later drop is harmless.
    let name = SegmentName::unique();
    let creator = create_int_array(&name, 4);
    let opener = open_any(&name).unwrap();
    creator.unlink().expect("unlink");
    assert!(!creator.unlinks_on_drop());
    assert!(!Segment::exists(&name));
    assert!(matches!(open_any(&name), Err(OpenError::NotFound { .. })));
    assert_eq!(
        creator.unlink().unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert_pattern(&opener, 4);
    assert_pattern(&creator, 4);
    // A new segment may take the name; the old creator's drop must not remove it.
    let successor = create_int_array(&name, 2);
    drop(creator);
    drop(opener);
    assert!(
        Segment::exists(&name),
        "old handles left the new segment alone"
    );
    drop(successor);
    assert!(!Segment::exists(&name));
}

// ------------------------------------------------------------------------------------------
// 6. Segments left by dead creators
// ------------------------------------------------------------------------------------------

#[test]
fn list_segments_finds_a_killed_persisting_creator_and_removes_it() {
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _cleanup = NameGuard::new(name.clone());
    let mut p = w.start(child("create-persist-hold", &name, 12).stdout(Stdio::piped()));
    let mut out = BufReader::new(p.take_stdout().unwrap());
    assert_eq!(next_line(&mut out), "ready");

    let info = find(&name).expect("listed");
    assert_eq!(info.state, SegmentState::Ready);
    assert_eq!(info.creator_liveness, Some(Liveness::Alive));
    assert_eq!(info.creator.map(|c| c.pid()), Some(p.pid()));
    assert_eq!(info.kind, Some(ObjectKind::RawArray));
    assert_eq!(info.format, "i");
    assert_eq!(info.count, Some(12));
    assert_eq!(info.file_len, (HEADER_SIZE + 48) as u64);

    p.kill().expect("kill");
    let status = join_within(&mut p, OUTCOME_BOUND);
    assert_eq!(status.signal(), Some(libc::SIGKILL));

    let info = find(&name).expect("still listed after the creator died");
    assert_eq!(info.state, SegmentState::Ready);
    assert_eq!(info.creator_liveness, Some(Liveness::Dead));
    // Still a perfectly good segment.
    assert_pattern(&int_array(&name, 12).open().expect("open"), 12);
    info.remove().expect("SegmentInfo::remove");
    assert!(!Segment::exists(&name));
    assert!(find(&name).is_none());
}

#[test]
fn list_segments_survives_a_file_truncated_under_it() {
    // Another process may shrink any file in /dev/shm at any moment; listing must not die of
    // SIGBUS reading a header that is no longer backed. Run in a child, so that a SIGBUS shows
    // up as its exit status.
    let w = Watchdog::new();
    let name = SegmentName::unique();
    let _file = ShmFile(name.clone());
    let (status, out) = output_of(
        &w,
        Process::builder("core.list-under-truncation")
            .program(CHILD)
            .daemon(true)
            .arg(name.as_str()),
    );
    assert!(status.success(), "child: {status}, stdout {out:?}");
    assert!(out.starts_with("ok "), "{out:?}");
}

#[test]
fn creator_drop_leaves_a_successor_under_the_same_name_alone() {
    let name = SegmentName::unique();
    let _cleanup = NameGuard::new(name.clone());
    let first = create_int_array(&name, 4);
    // Someone else removes the name (say, a cleanup tool that took it for stale)…
    Segment::unlink_name(&name).expect("unlink by name");
    // …and a new segment takes it.
    let successor = int_array(&name, 2).create(fill).expect("create successor");
    successor.persist();
    drop(first);
    assert!(
        Segment::exists(&name),
        "the first creator's drop removed its successor's name"
    );
    assert_eq!(open_any(&name).expect("successor").header().count(), 2);
}
