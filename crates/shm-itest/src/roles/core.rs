//! Child roles (of the `shm-itest` binary) for `shm-core`'s cross-process segment tests (`tests/segment.rs`): the child
//! that [`shm_process::Process`] starts in a role. Not meant to be run by hand.
//!
//! Every segment is a `RawArray` of `'i'` elements whose element `i` holds [`pattern`]`(i)`.
//! Arguments are `NAME COUNT [...]`. Roles:
//!
//! - `open-check NAME COUNT`: opens the segment, checks kind, layout, count, that it is not the
//!   creator and the contents, prints `ok`, exits 0 (or a code from [`Fail`]).
//! - `create-persist NAME COUNT`: creates and fills the segment, persists it, prints `created`,
//!   exits 0.
//! - `race NAME COUNT`: reads stdin to its end (the parent's "go"), then `open_or_create`s the
//!   segment (the init sleeps a little, then fills it); prints `creator=true` or
//!   `creator=false`, checks the contents, persists the segment if it created it, exits 0.
//! - `slow-create NAME COUNT MS`: creates the segment; the init prints `initialising`, sleeps
//!   `MS` milliseconds, then fills it. Prints `ready`, reads stdin to its end, exits 0 (which
//!   unlinks the name).
//! - `hang-create NAME COUNT`: creates the segment; the init prints `initialising` and sleeps
//!   (60 s at most) so the parent can kill it mid-initialisation.
//! - `create-persist-hold NAME COUNT`: creates, fills and persists the segment, prints `ready`,
//!   sleeps (60 s at most) so the parent can kill it.
//! - `die-after-open NAME COUNT` / `die-after-size NAME COUNT`: creates the segment, but stops
//!   inside `create` right after `shm_open` (a 0-byte file) or right after sizing it (all
//!   zeros, no header), prints `paused` and sleeps (60 s at most) so the parent can kill it
//!   there (the `test-hooks` feature of shm-core).
//! - `open-hold NAME COUNT`: opens and checks the segment, prints `ready`, holds it until its
//!   stdin ends (or it is killed).
//!
//! - `list-under-truncation NAME`: writes `/dev/shm/NAME` with our magic, has a thread cut it
//!   to zero bytes and grow it again in a loop, and calls `list_segments` meanwhile (a few
//!   thousand times at most, for a few seconds at most). Prints `ok`, exits 0; a `SIGBUS` here
//!   means `list_segments` read a header that was no longer backed by the file.
//!
//! A top-level run of `shm-itest` prints `top-level run` and exits 0.

use shm_core::{ElementLayout, ObjectKind, Segment, SegmentName, TypeCode};
use shm_process::Roles;
use std::io::Write;
use std::ptr::NonNull;
use std::time::Duration;

/// Longest any role sleeps, so that a forgotten child cannot outlive a test run by much.
const LONG_SLEEP: Duration = Duration::from_secs(60);

/// The value of element `i` in every test segment.
fn pattern(i: usize) -> i32 {
    (i as i32).wrapping_mul(7).wrapping_add(3)
}

/// Exit codes of a failed check (printed on stderr too).
#[derive(Debug, Clone, Copy)]
enum Fail {
    Args = 10,
    Open = 11,
    Kind = 12,
    Layout = 13,
    Count = 14,
    Contents = 15,
    Lifetime = 16,
    Create = 17,
}

fn fail(why: Fail, detail: impl std::fmt::Display) -> i32 {
    eprintln!("segment-child: {why:?}: {detail}");
    why as i32
}

fn say(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn wait_for_stdin_eof() {
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
}

fn parse(args: &[String]) -> Result<(SegmentName, u64), i32> {
    let name = args
        .first()
        .ok_or(())
        .and_then(|n| SegmentName::new(n).map_err(drop));
    let count = args.get(1).ok_or(()).and_then(|c| c.parse().map_err(drop));
    match (name, count) {
        (Ok(name), Ok(count)) => Ok((name, count)),
        _ => Err(fail(
            Fail::Args,
            format!("expected NAME COUNT, got {args:?}"),
        )),
    }
}

fn int_layout() -> ElementLayout {
    ElementLayout::of_typecode(TypeCode::Int)
}

fn builder(name: &SegmentName, count: u64) -> shm_core::SegmentBuilder {
    Segment::builder(name, ObjectKind::RawArray)
        .layout(int_layout())
        .count(count)
        .body_len(count as usize * 4)
}

/// Writes the pattern into a body of `len` bytes.
fn fill(body: NonNull<u8>, len: usize) {
    let p = body.as_ptr().cast::<i32>();
    for i in 0..len / 4 {
        // SAFETY: the body is `len` bytes, 128-byte aligned, and not yet published, so this
        // process is its only writer; `i * 4 + 4 <= len`.
        unsafe { p.add(i).write_volatile(pattern(i)) };
    }
}

/// Checks header and contents of an opened segment.
fn check(seg: &Segment, count: u64) -> Result<(), i32> {
    let h = seg.header();
    if h.kind() != ObjectKind::RawArray {
        return Err(fail(Fail::Kind, h.kind()));
    }
    if h.layout().typecode() != Some(TypeCode::Int) {
        return Err(fail(Fail::Layout, h.layout()));
    }
    if h.count() != count || seg.body_len() < count as usize * 4 {
        return Err(fail(Fail::Count, h.count()));
    }
    let p = seg.body().as_ptr().cast::<i32>();
    for i in 0..count as usize {
        // SAFETY: the body is at least `count * 4` bytes (checked above) and 128-byte aligned;
        // a volatile read of an i32 is sound whatever another process writes there.
        let v = unsafe { p.add(i).read_volatile() };
        if v != pattern(i) {
            return Err(fail(
                Fail::Contents,
                format!("element {i} is {v}, expected {}", pattern(i)),
            ));
        }
    }
    Ok(())
}

fn open_check(args: &[String]) -> i32 {
    let (name, count) = match parse(args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let seg = match Segment::builder(&name, ObjectKind::RawArray)
        .layout(int_layout())
        .count(count)
        .open()
    {
        Ok(seg) => seg,
        Err(e) => return fail(Fail::Open, e),
    };
    if seg.is_creator() || seg.unlinks_on_drop() {
        return fail(Fail::Lifetime, "an opener must never unlink");
    }
    if let Err(code) = check(&seg, count) {
        return code;
    }
    say("ok");
    0
}

fn create_persist(args: &[String]) -> i32 {
    let (name, count) = match parse(args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    match builder(&name, count).create(fill) {
        Ok(seg) => {
            seg.persist();
            drop(seg);
            say("created");
            0
        }
        Err(e) => fail(Fail::Create, e),
    }
}

fn race(args: &[String]) -> i32 {
    let (name, count) = match parse(args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    wait_for_stdin_eof();
    let seg = match builder(&name, count).open_or_create(|body, len| {
        // Widen the window in which the others must wait for READY.
        std::thread::sleep(Duration::from_millis(20));
        fill(body, len);
    }) {
        Ok(seg) => seg,
        Err(e) => return fail(Fail::Open, e),
    };
    if seg.is_creator() {
        // Keep the name for the others: the parent unlinks it at the end.
        seg.persist();
    }
    say(&format!("creator={}", seg.is_creator()));
    match check(&seg, count) {
        Ok(()) => 0,
        Err(code) => code,
    }
}

fn slow_create(args: &[String]) -> i32 {
    let (name, count) = match parse(args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let Some(ms) = args.get(2).and_then(|a| a.parse::<u64>().ok()) else {
        return fail(Fail::Args, format!("expected NAME COUNT MS, got {args:?}"));
    };
    let seg = match builder(&name, count).create(|body, len| {
        say("initialising");
        std::thread::sleep(Duration::from_millis(ms).min(LONG_SLEEP));
        fill(body, len);
    }) {
        Ok(seg) => seg,
        Err(e) => return fail(Fail::Create, e),
    };
    say("ready");
    wait_for_stdin_eof();
    drop(seg);
    0
}

fn hang_create(args: &[String]) -> i32 {
    let (name, count) = match parse(args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    match builder(&name, count).create(|_, _| {
        say("initialising");
        std::thread::sleep(LONG_SLEEP);
    }) {
        Ok(seg) => {
            drop(seg);
            fail(Fail::Lifetime, "was not killed during initialisation")
        }
        Err(e) => fail(Fail::Create, e),
    }
}

fn pause_here() {
    say("paused");
    std::thread::sleep(LONG_SLEEP);
}

fn die_at(args: &[String], stage: shm_core::segment::test_hooks::CreateStage) -> i32 {
    let (name, count) = match parse(args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    shm_core::segment::test_hooks::on_create_stage(stage, pause_here);
    match builder(&name, count).create(fill) {
        Ok(seg) => {
            drop(seg);
            fail(Fail::Lifetime, "was not killed inside create")
        }
        Err(e) => fail(Fail::Create, e),
    }
}

fn die_after_open(args: &[String]) -> i32 {
    die_at(args, shm_core::segment::test_hooks::CreateStage::Opened)
}

fn die_after_size(args: &[String]) -> i32 {
    die_at(args, shm_core::segment::test_hooks::CreateStage::Sized)
}

fn open_hold(args: &[String]) -> i32 {
    let (name, count) = match parse(args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let seg = match builder(&name, count)
        .open_timeout(Duration::from_secs(20))
        .open()
    {
        Ok(seg) => seg,
        Err(e) => return fail(Fail::Open, e),
    };
    if let Err(code) = check(&seg, count) {
        return code;
    }
    say("ready");
    wait_for_stdin_eof();
    drop(seg);
    0
}

fn create_persist_hold(args: &[String]) -> i32 {
    let (name, count) = match parse(args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let seg = match builder(&name, count).create(fill) {
        Ok(seg) => seg,
        Err(e) => return fail(Fail::Create, e),
    };
    seg.persist();
    say("ready");
    // Hold the mapping until killed (or the bound passes).
    std::thread::sleep(LONG_SLEEP);
    drop(seg);
    0
}

fn list_under_truncation(args: &[String]) -> i32 {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let Some(name) = args.first().and_then(|n| SegmentName::new(n).ok()) else {
        return fail(Fail::Args, format!("expected NAME, got {args:?}"));
    };
    let path = std::path::PathBuf::from("/dev/shm").join(name.as_str());
    let magic = shm_core::header::MAGIC.to_le_bytes();
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => return fail(Fail::Create, e),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let toggler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = file.set_len(0);
                let _ = file.set_len(512);
                let _ = file.write_all_at(&magic, 0);
            }
        })
    };
    let started = std::time::Instant::now();
    let mut listed = 0u32;
    while listed < 5000 && started.elapsed() < Duration::from_secs(3) {
        if shm_core::list_segments().is_err() {
            break;
        }
        listed += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = toggler.join();
    let _ = std::fs::remove_file(&path);
    say(&format!("ok {listed}"));
    0
}

/// Registers this module's roles, each named `core.<role>`.
pub fn register(roles: Roles) -> Roles {
    roles
        .role("core.open-check", open_check)
        .role("core.create-persist", create_persist)
        .role("core.race", race)
        .role("core.slow-create", slow_create)
        .role("core.hang-create", hang_create)
        .role("core.create-persist-hold", create_persist_hold)
        .role("core.list-under-truncation", list_under_truncation)
        .role("core.die-after-open", die_after_open)
        .role("core.die-after-size", die_after_size)
        .role("core.open-hold", open_hold)
}
